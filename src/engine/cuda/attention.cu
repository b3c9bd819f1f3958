// attention.cu — causal varlen flash attention over packed sequences (no padding), bf16 tensor-core
// MMA (mma.sync m16n8k16) with f32 accumulation and an online softmax.
//
// Grid: one CTA per (64-row query tile of one sequence, HPC query heads of one GQA group); 4 warps
// per head, 16 query rows each. K/V tiles of 64 keys stream through XOR-swizzled shared memory
// (cp.async); keys beyond the sequence end are zero-filled and masked. GQA: query head h reads kv head
// h / (nH/nKV).
//
// Batch invariance: a CTA reads only its own sequence and walks its keys in order 0, 64, 128, …, so
// the reduction order of every output row is fixed by the sequence alone. P is rounded to bf16
// before the P·V product (as flash-attention kernels do); the row sum uses the same rounded values.
//
// Variants (ragd_k_attention_set_variant, a benchmark switch; 0 is the default). All run the same
// per-row arithmetic in the same order, so they give the same bits (tests/gpu checks it); they differ
// in schedule, buffering and instruction stream. Variant 0 measured 0.970 ms on the long-mix layer
// benchmark (H200), latency-bound: 46 % issue-slot use, 0.7 eligible warps of 3 per scheduler.
//   0  K and V double-buffered together, one cp.async group per tile (64 KB for hd 128, 3 CTAs of 4
//      warps per SM). HPC = 2 (K/V tiles shared by two heads) exists for it only and measured slower,
//      since occupancy, not traffic, limits it (1 CTA of 8 warps per SM against 3 of 4).
//   1  variant 0's schedule with the lean code below (branch-free full tiles, ldmatrix loads issued
//      ahead of their MMAs, precomputed addresses): isolates the instruction-stream gain.
//   2  lean; single K and V buffers in separate cp.async groups (as FlashAttention-2): V_j lands while
//      S_j and its softmax compute, K_{j+1} while P·V_j does; the first tile waits for Q and K_0
//      only. Q held in registers. 32 KB (hd 128), 3 CTAs per SM (registers).
//   3  variant 2 with Q re-read from its own smem tile per key tile: 32 registers fewer, 4 CTAs (16
//      warps) per SM, 48 KB (hd 128).
//   4  lean; S_{j+1} = Q K_{j+1}^T issued before the softmax of S_j (two score sets), so one warp
//      keeps the tensor pipe and the ALU / MUFU busy at once; K double-, V single-buffered, Q in
//      smem; 64 KB, 3 CTAs per SM (some register spills at hd 128).
//   5  variant 3 with the head as the fastest grid index: the CTAs of one query tile run together,
//      so a K/V tile comes from DRAM once and is shared in L2 by the heads that read it (variants
//      0–4 sweep all tiles of head 0, then of head 1, …: tens of MB between two reads of a tile).
// At hd 64 variants 1–3 and 5 fit 4 CTAs per SM, variant 0 and 4 three to four (registers).
#include <cmath>

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "attention.cu needs sm_80 or newer (cp.async, ldmatrix, bf16 mma): build with CMAKE_CUDA_ARCHITECTURES=90"
#endif

#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/kernels.h"

namespace {

constexpr int BM = RAGD_ATTN_BM, BN = 64, NWARP = 4;

__device__ __forceinline__ uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void cp_async16(void *dst, const void *src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldsm_x4(const void *p, uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_t(const void *p, uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(smem_addr(p)));
}

__device__ __forceinline__ void mma16816(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 2^x (flush-to-zero for results below the f32 normal range; ex2(-inf) = 0)
__device__ __forceinline__ float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *(uint32_t *)&v;
}

// Address of 16-byte chunk `ch` of row `r` in a swizzled [rows][HD] bf16 tile.
template <int HD>
__device__ __forceinline__ bf16 *swz(bf16 *s, int r, int ch) {
    return s + r * HD + ((ch ^ (r & 7)) << 3);
}

// Rows [r0, r0+64) of a [L, ld] matrix into a swizzled tile; rows ≥ L are zero-filled.
template <int HD>
__device__ __forceinline__ void load_tile(bf16 *s, const bf16 *g, int ld, int r0, int L) {
    constexpr int CH = HD / 8;
    for (int c = threadIdx.x; c < 64 * CH; c += blockDim.x) {
        int r = c / CH, ch = c % CH, gr = r0 + r;
        const bf16 *src = g + (size_t)min(gr, L - 1) * ld + ch * 8;
        cp_async16(swz<HD>(s, r, ch), src, gr < L ? 16 : 0);
    }
}

// ---- per-warp pieces shared by every variant (each warp owns 16 query rows; a thread holds rows g
// and g + 8 of them, in the m16n8k16 accumulator layout) ----

// Variant 0's S = Q K^T for the warp's 16 rows × the first `lim` keys of the tile (16-key blocks
// past lim stay 0); Q fragments in registers.
template <int HD>
__device__ __forceinline__ void qk_tile(float (&s)[BN / 8][4], const uint32_t (&qf)[HD / 16][4], bf16 *k_s, int lim,
                                        int mi, int mr) {
#pragma unroll
    for (int i = 0; i < BN / 8; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) {
#pragma unroll
        for (int np = 0; np < BN / 16; np++) {
            if (np * 16 >= lim) break;
            uint32_t b0, b1, b2, b3;
            ldsm_x4(swz<HD>(k_s, np * 16 + (mi >> 1) * 8 + mr, kk * 2 + (mi & 1)), b0, b1, b2, b3);
            mma16816(s[2 * np], qf[kk], b0, b1);
            mma16816(s[2 * np + 1], qf[kk], b2, b3);
        }
    }
}

// Online softmax of one key tile: mask(nt, s[nt]) sets masked scores of column block nt to −inf;
// then the row maxima m0/m1 (in log2 units) move, P comes back rounded to bf16 pairs in pf
// ([nt][row g / row g+8]) with the factors a0/a1 by which O and l must be rescaled; l0/l1 (this
// thread's partial row sums) are updated with the same rounded values. The max is taken on raw
// scores (scale > 0), then p = 2^(s·scale·log2e − m) in one FMA + ex2.
template <class Mask>
__device__ __forceinline__ void softmax_tile(float (&s)[BN / 8][4], uint32_t (&pf)[BN / 8][2], float &m0, float &m1,
                                             float &l0, float &l1, float &a0, float &a1, float scale_log2,
                                             Mask mask) {
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < BN / 8; nt++) {
        mask(nt, s[nt]);
        mx0 = fmaxf(mx0, fmaxf(s[nt][0], s[nt][1]));
        mx1 = fmaxf(mx1, fmaxf(s[nt][2], s[nt][3]));
    }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    const float mn0 = fmaxf(m0, mx0 * scale_log2), mn1 = fmaxf(m1, mx1 * scale_log2);
    a0 = ex2(m0 - mn0);
    a1 = ex2(m1 - mn1);
    m0 = mn0;
    m1 = mn1;
    float rs0 = 0.f, rs1 = 0.f;
#pragma unroll
    for (int nt = 0; nt < BN / 8; nt++) {
        // round to bf16 once (one cvt per pair); the row sum uses the same rounded values
        pf[nt][0] = pack_bf16(ex2(fmaf(s[nt][0], scale_log2, -mn0)), ex2(fmaf(s[nt][1], scale_log2, -mn0)));
        pf[nt][1] = pack_bf16(ex2(fmaf(s[nt][2], scale_log2, -mn1)), ex2(fmaf(s[nt][3], scale_log2, -mn1)));
        rs0 += __uint_as_float(pf[nt][0] << 16) + __uint_as_float(pf[nt][0] & 0xffff0000u);
        rs1 += __uint_as_float(pf[nt][1] << 16) + __uint_as_float(pf[nt][1] & 0xffff0000u);
    }
    l0 = l0 * a0 + rs0;
    l1 = l1 * a1 + rs1;
}

// O = O·a + P V over the first `lim` keys of the tile. O is rescaled only when some row's max moved
// (multiplying by 1 would change no bit).
template <int HD>
__device__ __forceinline__ void pv_tile(float (&o)[HD / 8][4], const uint32_t (&pf)[BN / 8][2], float a0, float a1,
                                        bf16 *v_s, int lim, int mi, int mr) {
    if (__any_sync(0xffffffffu, a0 != 1.f || a1 != 1.f)) {
#pragma unroll
        for (int nd = 0; nd < HD / 8; nd++) {
            o[nd][0] *= a0;
            o[nd][1] *= a0;
            o[nd][2] *= a1;
            o[nd][3] *= a1;
        }
    }
#pragma unroll
    for (int kk = 0; kk < BN / 16; kk++) {
        if (kk * 16 >= lim) break;
        uint32_t a[4] = {pf[2 * kk][0], pf[2 * kk][1], pf[2 * kk + 1][0], pf[2 * kk + 1][1]};
#pragma unroll
        for (int np = 0; np < HD / 16; np++) {
            uint32_t b0, b1, b2, b3;
            ldsm_x4_t(swz<HD>(v_s, kk * 16 + (mi & 1) * 8 + mr, np * 2 + (mi >> 1)), b0, b1, b2, b3);
            mma16816(o[2 * np], a, b0, b1);
            mma16816(o[2 * np + 1], a, b2, b3);
        }
    }
}

// out rows qi0 / qi1 (those < L) of head h = O / l, after summing l over the quad.
template <int HD>
__device__ __forceinline__ void store_rows(const float (&o)[HD / 8][4], float l0, float l1, bf16 *out, int start,
                                           int h, int nH, int qi0, int qi1, int L, int t4) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float i0 = 1.f / l0, i1 = 1.f / l1;
    const int ldo = nH * HD;
    bf16 *O = out + (size_t)start * ldo + h * HD;  // [L, ldo]
#pragma unroll
    for (int nd = 0; nd < HD / 8; nd++) {
        int c = nd * 8 + 2 * t4;
        if (qi0 < L) *(uint32_t *)(O + (size_t)qi0 * ldo + c) = pack_bf16(o[nd][0] * i0, o[nd][1] * i0);
        if (qi1 < L) *(uint32_t *)(O + (size_t)qi1 * ldo + c) = pack_bf16(o[nd][2] * i1, o[nd][3] * i1);
    }
}

// Keys of tile j the warp needs: all but in the last (diagonal) tile, where its 16 rows see keys up
// to 16·warp + 15 and the sequence may end; 16-key blocks past that are skipped (their probabilities
// are exact zeros, so skipping them changes no bit). A warp whose 16 rows all lie past the sequence
// end (short sequences) computes nothing.
__device__ __forceinline__ int keys_needed(int q0, int warp, int L, bool last, int j) {
    return q0 + 16 * warp >= L ? 0 : last ? min(16 * warp + 16, L - j * BN) : BN;
}

// ---- variant 0: K/V double-buffered together, one cp.async group per tile ----
template <int HD, int HPC>
__global__ void __launch_bounds__(NWARP * 32 * HPC, HPC == 1 ? 3 : 1)
    attn_kernel(const bf16 *qkv, bf16 *out, const int32_t *seq_start, const int2 *tiles, int nH, int nKV,
                float scale_log2) {
    // Shared memory: K and V double buffers. The Q tile of head i first lands in the second K (i = 0)
    // or V (i = 1) buffer, moves to registers, and only then is that buffer used for prefetching:
    // 64 KB for hd 128, so 3 CTAs fit on an SM.
    extern __shared__ uint4 smem_raw[];
    bf16 *sK = (bf16 *)smem_raw;        // [2][BN][HD]
    bf16 *sV = sK + 2 * BN * HD;        // [2][BN][HD]

    const int2 tile = tiles[blockIdx.x];
    const int h0 = blockIdx.y * HPC, kvh = h0 / (nH / nKV);
    const int hh = (threadIdx.x >> 5) / NWARP;  // which of the CTA's heads this warp serves
    const int q0 = tile.y, h = h0 + hh;
    bf16 *sQ = (hh == 0 ? sK : sV) + BN * HD;  // [BM][HD] (BM == BN)
    const int start = seq_start[tile.x], L = seq_start[tile.x + 1] - start;
    const int ld = (nH + 2 * nKV) * HD;
    const bf16 *Qg0 = qkv + (size_t)start * ld + h0 * HD;               // [L, ld], head h0
    const bf16 *Kg = qkv + (size_t)start * ld + (nH + kvh) * HD;        // [L, ld]
    const bf16 *Vg = qkv + (size_t)start * ld + (nH + nKV + kvh) * HD;  // [L, ld]
    const int warp = (threadIdx.x >> 5) % NWARP, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int mi = lane >> 3, mr = lane & 7;  // ldmatrix: which 8x8 matrix this lane addresses, and row
    const int n_kt = (min(q0 + BM, L) + BN - 1) / BN;

#pragma unroll
    for (int i = 0; i < HPC; i++) load_tile<HD>((i == 0 ? sK : sV) + BN * HD, Qg0 + i * HD, ld, q0, L);
    load_tile<HD>(sK, Kg, ld, 0, L);
    load_tile<HD>(sV, Vg, ld, 0, L);
    cp_commit();

    float o[HD / 8][4];
#pragma unroll
    for (int i = 0; i < HD / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    float m0 = -1e30f, m1 = -1e30f, l0 = 0.f, l1 = 0.f;
    uint32_t qf[HD / 16][4];
    const int qi0 = q0 + warp * 16 + g, qi1 = qi0 + 8;  // this thread's two query rows
    cp_wait<0>();
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++)
        ldsm_x4(swz<HD>(sQ, warp * 16 + (mi & 1) * 8 + mr, kk * 2 + (mi >> 1)), qf[kk][0], qf[kk][1], qf[kk][2],
                qf[kk][3]);
    __syncthreads();  // every warp holds its Q fragments: the Q buffers may be overwritten

    for (int j = 0; j < n_kt; j++) {
        const int buf = j & 1;
        if (j + 1 < n_kt) {
            load_tile<HD>(sK + (buf ^ 1) * BN * HD, Kg, ld, (j + 1) * BN, L);
            load_tile<HD>(sV + (buf ^ 1) * BN * HD, Vg, ld, (j + 1) * BN, L);
        }
        cp_commit();
        cp_wait<1>();
        __syncthreads();
        const bool last = j == n_kt - 1;
        const int lim = keys_needed(q0, warp, L, last, j);
        float s[BN / 8][4];
        qk_tile<HD>(s, qf, sK + buf * BN * HD, lim, mi, mr);
        uint32_t pf[BN / 8][2];
        float a0, a1;
        softmax_tile(s, pf, m0, m1, l0, l1, a0, a1, scale_log2, [&](int nt, float (&sn)[4]) {
            // causal / length mask (only the last tile holds the diagonal and the sequence end)
            if (last) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int kj = j * BN + nt * 8 + 2 * t4 + (e & 1);
                    int qi = e < 2 ? qi0 : qi1;
                    if (kj > qi || kj >= L) sn[e] = -INFINITY;
                }
            }
        });
        pv_tile<HD>(o, pf, a0, a1, sV + buf * BN * HD, lim, mi, mr);
        __syncthreads();  // the next iteration's prefetch overwrites this buffer
    }
    store_rows<HD>(o, l0, l1, out, start, h, nH, qi0, qi1, L, t4);
}

// ==== variants 1–5: variant 0's arithmetic (every output bit the same), a leaner instruction stream ====
// Variant 0's SASS shows its Q K^T loop breaking after every 16 keys (for the diagonal tile), so each
// ldmatrix sits in its own basic block right before the two MMAs that consume it: ~30 cycles of
// exposed latency per two MMAs with only 3 warps per scheduler to cover them. Here:
//  * full key tiles (all but the diagonal one) run branch-free Q K^T and P V loops; the diagonal tile
//    branches once per 16-key block around the whole head dimension (each S / O accumulator still
//    sums its products in variant 0's order);
//  * ldmatrix addresses: per-lane byte offsets computed once; chunk pair c of a row block is at
//    offset ^ (c << 5) (the swizzle flips chunk bits only); row blocks are immediate offsets;
//  * tile loads: a compile-time thread count, so a thread's 16-byte column chunk and its swizzle are
//    fixed and its rows step by a constant (variant 0 divides by blockDim per chunk at run time);
//  * the causal / length mask: one compare per score against a per-row limit.

constexpr int NT = NWARP * 32;              // threads per CTA of variants 1–5 (one query head)
constexpr uint32_t tile_bytes(int hd) { return (uint32_t)(BN * hd * 2); }  // one [64][hd] bf16 tile

__device__ __forceinline__ void cp_async16s(uint32_t dst, const void *src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void ldsm4(uint32_t a, uint32_t (&r)[4]) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}
__device__ __forceinline__ void ldsm4t(uint32_t a, uint32_t (&r)[4]) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

// Rows [r0, r0+64) of a [L, ld] matrix into the swizzled [BN][HD] tile at shared address s (the
// layout of swz); rows ≥ L are zero-filled.
template <int HD>
__device__ __forceinline__ void load_tile_lean(uint32_t s, const bf16 *g, int ld, int r0, int L) {
    constexpr int CH = HD / 8, RSTEP = NT / CH;  // 16-byte chunks per row; rows per pass (8 or 16)
    static_assert(RSTEP % 8 == 0, "a thread's swizzle must not change between passes");
    const int ch = threadIdx.x % CH, r = threadIdx.x / CH;
    const uint32_t dst = s + (uint32_t)(r * HD + ((ch ^ (r & 7)) << 3)) * 2;
    const bf16 *src = g + ch * 8;
#pragma unroll
    for (int i = 0; i < BN / RSTEP; i++) {
        const int gr = r0 + r + i * RSTEP;
        cp_async16s(dst + i * RSTEP * HD * 2, src + (size_t)min(gr, L - 1) * ld, gr < L ? 16 : 0);
    }
}

// Per-lane byte offset of the row this lane addresses with ldmatrix.x4 in a swizzled [rows][HD]
// tile, for a 16×16 block at row 0, chunk pair 0 whose 4 matrices sit at (row half rsel, chunk csel).
// Chunk pair c of the same rows is at offset ^ (c << 5): the chunk index is (2c + csel) ^ (row & 7)
// and a row is ≥ 128 bytes, so the XOR never reaches the row bits.
template <int HD>
__device__ __forceinline__ uint32_t frag_off(int rsel, int csel, int mr) {
    return (uint32_t)((rsel * 8 + mr) * HD * 2) | (uint32_t)((csel ^ mr) << 4);
}

// What a CTA of variants 1–5 works on, and the thread's place in the MMA layouts.
struct Job {
    int q0, L, n_kt, ld, h;
    int start;                 // first token of the sequence
    const bf16 *Qg, *Kg, *Vg;  // [L, ld]: query head h, kv head h / (nH / nKV)
    int warp, g, t4, qi0, qi1;  // qi0, qi1: this thread's two query rows (warp*16 + g, + 8)
    uint32_t qo, ko, vo;       // ldmatrix offsets: Q (A operand, the warp's 16 rows), K (B), V (B, transposed)
};

// Grid: (n_tiles, nH) with the tile index fastest, or with HEADS_FAST a 1-D grid of n_tiles·nH CTAs
// with the head fastest, so the CTAs of one query tile run together and share its K/V rows in L2
// (the two heads of a GQA pair read the same K/V tiles; the 16 heads together read whole rows).
template <int HD, bool HEADS_FAST>
__device__ __forceinline__ Job job_init(const bf16 *qkv, const int32_t *seq_start, const int2 *tiles, int nH, int nKV) {
    Job b;
    const int2 tile = tiles[HEADS_FAST ? blockIdx.x / nH : blockIdx.x];
    b.h = HEADS_FAST ? blockIdx.x % nH : blockIdx.y;
    const int kvh = b.h / (nH / nKV);
    b.q0 = tile.y;
    b.start = seq_start[tile.x];
    b.L = seq_start[tile.x + 1] - b.start;
    b.n_kt = (min(b.q0 + BM, b.L) + BN - 1) / BN;
    b.ld = (nH + 2 * nKV) * HD;
    b.Qg = qkv + (size_t)b.start * b.ld + b.h * HD;
    b.Kg = qkv + (size_t)b.start * b.ld + (nH + kvh) * HD;
    b.Vg = qkv + (size_t)b.start * b.ld + (nH + nKV + kvh) * HD;
    const int lane = threadIdx.x & 31, mi = lane >> 3, mr = lane & 7;
    b.warp = threadIdx.x >> 5;
    b.g = lane >> 2;
    b.t4 = lane & 3;
    b.qi0 = b.q0 + b.warp * 16 + b.g;
    b.qi1 = b.qi0 + 8;
    b.qo = (uint32_t)(b.warp * 16 * HD * 2) + frag_off<HD>(mi & 1, mi >> 1, mr);
    b.ko = frag_off<HD>(mi >> 1, mi & 1, mr);
    b.vo = frag_off<HD>(mi & 1, mi >> 1, mr);
    return b;
}

// S[:, 0:16·NB] += Q K^T over the first NB 16-key blocks of the K tile at shared address k, head-dim
// block by block (each accumulator sums in variant 0's order), branch-free: per block the ldmatrix
// loads come before the 2·NB independent MMAs. getq(kk, q) yields Q's fragment of head-dim block kk.
template <int HD, int NB, class GetQ>
__device__ __forceinline__ void qk_blocks(float (&s)[BN / 8][4], GetQ getq, uint32_t k, uint32_t ko) {
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) {
        uint32_t q[4], b[NB][4];
        getq(kk, q);
#pragma unroll
        for (int np = 0; np < NB; np++) ldsm4(k + np * 16 * HD * 2 + (ko ^ (kk << 5)), b[np]);
#pragma unroll
        for (int np = 0; np < NB; np++) {
            mma16816(s[2 * np], q, b[np][0], b[np][1]);
            mma16816(s[2 * np + 1], q, b[np][2], b[np][3]);
        }
    }
}

// S = Q K^T for the warp's 16 rows × the first `lim` keys (rounded up to 16) of the K tile at shared
// address k; the rest of S stays 0 (those keys are masked or skipped).
template <int HD, class GetQ>
__device__ __forceinline__ void qk_lean(float (&s)[BN / 8][4], GetQ getq, uint32_t k, uint32_t ko, int lim) {
#pragma unroll
    for (int i = 0; i < BN / 8; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
    switch ((lim + 15) >> 4) {
    case 4: qk_blocks<HD, 4>(s, getq, k, ko); break;
    case 3: qk_blocks<HD, 3>(s, getq, k, ko); break;
    case 2: qk_blocks<HD, 2>(s, getq, k, ko); break;
    case 1: qk_blocks<HD, 1>(s, getq, k, ko); break;
    default: break;
    }
}

// Softmax of key tile j (keys j·64 …) for variants 1–5: the mask as one compare per score.
__device__ __forceinline__ void softmax_lean(float (&s)[BN / 8][4], uint32_t (&pf)[BN / 8][2], float &m0, float &m1,
                                             float &l0, float &l1, float &a0, float &a1, bool last, int j,
                                             const Job &b, float scale_log2) {
    // key kb + c is masked for row qi when c > min(qi, L − 1) − kb; c = nt·8 + 2·t4 + (e & 1)
    const int r0 = min(b.qi0, b.L - 1) - j * BN - 2 * b.t4, r1 = min(b.qi1, b.L - 1) - j * BN - 2 * b.t4;
    softmax_tile(s, pf, m0, m1, l0, l1, a0, a1, scale_log2, [&](int nt, float (&sn)[4]) {
        if (last) {
#pragma unroll
            for (int e = 0; e < 4; e++)
                if (nt * 8 + (e & 1) > (e < 2 ? r0 : r1)) sn[e] = -INFINITY;
        }
    });
}

// O = O·a + P V over the first `lim` keys of the V tile at shared address v (O rescaled only when
// some row's max moved).
template <int HD>
__device__ __forceinline__ void pv_lean(float (&o)[HD / 8][4], const uint32_t (&pf)[BN / 8][2], float a0, float a1,
                                        uint32_t v, uint32_t vo, int lim) {
    if (__any_sync(0xffffffffu, a0 != 1.f || a1 != 1.f)) {
#pragma unroll
        for (int nd = 0; nd < HD / 8; nd++) {
            o[nd][0] *= a0;
            o[nd][1] *= a0;
            o[nd][2] *= a1;
            o[nd][3] *= a1;
        }
    }
    auto block = [&](int kk) {
        const uint32_t a[4] = {pf[2 * kk][0], pf[2 * kk][1], pf[2 * kk + 1][0], pf[2 * kk + 1][1]};
#pragma unroll
        for (int np = 0; np < HD / 16; np++) {
            uint32_t bv[4];
            ldsm4t(v + kk * 16 * HD * 2 + (vo ^ (np << 5)), bv);
            mma16816(o[2 * np], a, bv[0], bv[1]);
            mma16816(o[2 * np + 1], a, bv[2], bv[3]);
        }
    };
    if (lim >= BN) {
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) block(kk);
    } else {
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            if (kk * 16 >= lim) break;
            block(kk);
        }
    }
}

template <int HD>
__device__ __forceinline__ void zero_o(float (&o)[HD / 8][4]) {
#pragma unroll
    for (int i = 0; i < HD / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
}

// ---- variant 1: variant 0's schedule (K/V double-buffered together, one cp.async group per tile,
// Q staged in the second K buffer, 64 KB for hd 128, 3 CTAs per SM) with the lean code ----
template <int HD, bool HEADS_FAST = false>
__global__ void __launch_bounds__(NT, HD == 64 ? 4 : 3)
    attn_lean_kernel(const bf16 *qkv, bf16 *out, const int32_t *seq_start, const int2 *tiles, int nH, int nKV,
                     float scale_log2) {
    extern __shared__ uint4 smem_raw[];
    constexpr uint32_t TB = tile_bytes(HD);
    const uint32_t sK = smem_addr(smem_raw);  // [2][BN][HD]
    const uint32_t sV = sK + 2 * TB;          // [2][BN][HD]
    const uint32_t sQ = sK + TB;              // [BM][HD], until the first prefetch
    const Job b = job_init<HD, HEADS_FAST>(qkv, seq_start, tiles, nH, nKV);

    load_tile_lean<HD>(sQ, b.Qg, b.ld, b.q0, b.L);
    load_tile_lean<HD>(sK, b.Kg, b.ld, 0, b.L);
    load_tile_lean<HD>(sV, b.Vg, b.ld, 0, b.L);
    cp_commit();
    float o[HD / 8][4];
    zero_o<HD>(o);
    float m0 = -1e30f, m1 = -1e30f, l0 = 0.f, l1 = 0.f;
    uint32_t qf[HD / 16][4];
    cp_wait<0>();
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) ldsm4(sQ + (b.qo ^ (kk << 5)), qf[kk]);
    __syncthreads();  // every warp holds its Q fragments: the Q buffer may be overwritten

    for (int j = 0; j < b.n_kt; j++) {
        const uint32_t buf = (uint32_t)(j & 1) * TB;
        if (j + 1 < b.n_kt) {
            load_tile_lean<HD>(sK + (TB - buf), b.Kg, b.ld, (j + 1) * BN, b.L);
            load_tile_lean<HD>(sV + (TB - buf), b.Vg, b.ld, (j + 1) * BN, b.L);
        }
        cp_commit();
        cp_wait<1>();
        __syncthreads();
        const bool last = j == b.n_kt - 1;
        const int lim = keys_needed(b.q0, b.warp, b.L, last, j);
        float s[BN / 8][4];
        auto getq = [&](int kk, uint32_t(&q)[4]) {
            q[0] = qf[kk][0], q[1] = qf[kk][1], q[2] = qf[kk][2], q[3] = qf[kk][3];
        };
        qk_lean<HD>(s, getq, sK + buf, b.ko, lim);
        uint32_t pf[BN / 8][2];
        float a0, a1;
        softmax_lean(s, pf, m0, m1, l0, l1, a0, a1, last, j, b, scale_log2);
        pv_lean<HD>(o, pf, a0, a1, sV + buf, b.vo, lim);
        __syncthreads();  // the next iteration's prefetch overwrites this buffer
    }
    store_rows<HD>(o, l0, l1, out, b.start, b.h, nH, b.qi0, b.qi1, b.L, b.t4);
}

// ---- variants 2 and 3: single K and V buffers, K and V in separate cp.async groups ----
// Iteration j: wait for K_j; start V_j; S = Q K_j^T and the softmax (while V_j lands); wait for V_j;
// start K_{j+1}; O += P V_j (while K_{j+1} lands). Two barriers per tile, as in variant 0; the first
// tile computes as soon as Q and K_0 are in (variant 0 waits for Q, K_0 and V_0).
// QSMEM = false (variant 2): Q staged in the V buffer, then held in registers; 32 KB (hd 128),
// registers allow 3 CTAs per SM.
// QSMEM = true (variant 3): Q keeps its own smem tile and is re-read per key tile (8 ldmatrix per
// warp against 32 for K); 32 registers fewer, so 4 CTAs fit (16 warps per SM); 48 KB (hd 128).
template <int HD, bool QSMEM, bool HEADS_FAST = false>
__global__ void __launch_bounds__(NT, QSMEM || HD == 64 ? 4 : 3)
    attn_split_kernel(const bf16 *qkv, bf16 *out, const int32_t *seq_start, const int2 *tiles, int nH, int nKV,
                      float scale_log2) {
    extern __shared__ uint4 smem_raw[];
    constexpr uint32_t TB = tile_bytes(HD);
    const uint32_t sK = smem_addr(smem_raw);       // [BN][HD]
    const uint32_t sV = sK + TB;                   // [BN][HD]
    const uint32_t sQ = QSMEM ? sV + TB : sV;      // [BM][HD]
    const Job b = job_init<HD, HEADS_FAST>(qkv, seq_start, tiles, nH, nKV);

    load_tile_lean<HD>(sQ, b.Qg, b.ld, b.q0, b.L);
    load_tile_lean<HD>(sK, b.Kg, b.ld, 0, b.L);
    cp_commit();
    float o[HD / 8][4];
    zero_o<HD>(o);
    float m0 = -1e30f, m1 = -1e30f, l0 = 0.f, l1 = 0.f;
    uint32_t qf[QSMEM ? 1 : HD / 16][4];
    if constexpr (!QSMEM) {
        cp_wait<0>();
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < HD / 16; kk++) ldsm4(sQ + (b.qo ^ (kk << 5)), qf[kk]);
        // the loop's first barrier keeps V_0 out of sV (= sQ) until every warp holds its fragments
    }

    for (int j = 0; j < b.n_kt; j++) {
        cp_wait<0>();
        __syncthreads();  // K_j visible to all; every warp is done with V_{j-1} (and with Q in sV)
        load_tile_lean<HD>(sV, b.Vg, b.ld, j * BN, b.L);
        cp_commit();
        const bool last = j == b.n_kt - 1;
        const int lim = keys_needed(b.q0, b.warp, b.L, last, j);
        float s[BN / 8][4];
        qk_lean<HD>(s,
                    [&](int kk, uint32_t(&q)[4]) {
                        if constexpr (QSMEM) {
                            ldsm4(sQ + (b.qo ^ (kk << 5)), q);
                        } else {
                            q[0] = qf[kk][0], q[1] = qf[kk][1], q[2] = qf[kk][2], q[3] = qf[kk][3];
                        }
                    },
                    sK, b.ko, lim);
        uint32_t pf[BN / 8][2];
        float a0, a1;
        softmax_lean(s, pf, m0, m1, l0, l1, a0, a1, last, j, b, scale_log2);
        cp_wait<0>();
        __syncthreads();  // V_j visible to all; every warp is done with K_j
        if (j + 1 < b.n_kt) {
            load_tile_lean<HD>(sK, b.Kg, b.ld, (j + 1) * BN, b.L);
            cp_commit();
        }
        pv_lean<HD>(o, pf, a0, a1, sV, b.vo, lim);
    }
    store_rows<HD>(o, l0, l1, out, b.start, b.h, nH, b.qi0, b.qi1, b.L, b.t4);
}

// ---- variant 4: scores one key tile ahead (software pipelining) ----
// Q in its own smem tile, K double-buffered, V single-buffered (64 KB for hd 128, 3 CTAs per SM).
// Iteration j starts with S_j in registers: wait for K_{j+1}; start V_j and K_{j+2}; issue the MMAs
// of S_{j+1} = Q K_{j+1}^T, then the softmax of S_j, which does not depend on them, so the tensor pipe
// and the ALU / MUFU work at the same time within one warp; wait for V_j; O += P V_j. The loop is
// unrolled by two so the two score sets swap roles without register moves.
template <int HD, bool HEADS_FAST = false>
__global__ void __launch_bounds__(NT, 3)
    attn_pipe_kernel(const bf16 *qkv, bf16 *out, const int32_t *seq_start, const int2 *tiles, int nH, int nKV,
                     float scale_log2) {
    extern __shared__ uint4 smem_raw[];
    constexpr uint32_t TB = tile_bytes(HD);
    const uint32_t sQ = smem_addr(smem_raw);  // [BM][HD]
    const uint32_t sK = sQ + TB;              // [2][BN][HD]
    const uint32_t sV = sK + 2 * TB;          // [BN][HD]
    const Job b = job_init<HD, HEADS_FAST>(qkv, seq_start, tiles, nH, nKV);
    const int n_kt = b.n_kt;

    // groups: (Q, K_0), (V_0), (K_1 or nothing)
    load_tile_lean<HD>(sQ, b.Qg, b.ld, b.q0, b.L);
    load_tile_lean<HD>(sK, b.Kg, b.ld, 0, b.L);
    cp_commit();
    load_tile_lean<HD>(sV, b.Vg, b.ld, 0, b.L);
    cp_commit();
    if (n_kt > 1) load_tile_lean<HD>(sK + TB, b.Kg, b.ld, BN, b.L);
    cp_commit();

    float o[HD / 8][4];
    zero_o<HD>(o);
    float m0 = -1e30f, m1 = -1e30f, l0 = 0.f, l1 = 0.f;
    auto getq = [&](int kk, uint32_t(&q)[4]) { ldsm4(sQ + (b.qo ^ (kk << 5)), q); };
    float sa[BN / 8][4], sb[BN / 8][4];

    cp_wait<2>();
    __syncthreads();
    qk_lean<HD>(sa, getq, sK, b.ko, keys_needed(b.q0, b.warp, b.L, n_kt == 1, 0));

    auto step = [&](int j, float(&sc)[BN / 8][4], float(&sn)[BN / 8][4]) {
        cp_wait<0>();
        __syncthreads();  // K_{j+1} (and V_0) visible; every warp is done with V_{j-1} and K_j
        if (j > 0) load_tile_lean<HD>(sV, b.Vg, b.ld, j * BN, b.L);
        cp_commit();
        if (j + 2 < n_kt) load_tile_lean<HD>(sK + (uint32_t)(j & 1) * TB, b.Kg, b.ld, (j + 2) * BN, b.L);
        cp_commit();
        const bool last = j == n_kt - 1;
        if (!last)
            qk_lean<HD>(sn, getq, sK + (uint32_t)((j + 1) & 1) * TB, b.ko,
                        keys_needed(b.q0, b.warp, b.L, j + 1 == n_kt - 1, j + 1));
        uint32_t pf[BN / 8][2];
        float a0, a1;
        softmax_lean(sc, pf, m0, m1, l0, l1, a0, a1, last, j, b, scale_log2);
        cp_wait<1>();
        __syncthreads();  // V_j visible to all
        pv_lean<HD>(o, pf, a0, a1, sV, b.vo, keys_needed(b.q0, b.warp, b.L, last, j));
    };
    for (int j = 0; j < n_kt; j += 2) {
        step(j, sa, sb);
        if (j + 1 < n_kt) step(j + 1, sb, sa);
    }
    store_rows<HD>(o, l0, l1, out, b.start, b.h, nH, b.qi0, b.qi1, b.L, b.t4);
}

template <int HD, int HPC>
cudaError_t launch_hpc(const bf16 *qkv, bf16 *out, const int32_t *seq_start, const int2 *tiles, int n_tiles, int nH,
                       int nKV, cudaStream_t st) {
    static_assert(BM == BN && HPC <= 2, "Q tiles live in the second K/V buffers");
    const int smem = 4 * BN * HD * (int)sizeof(bf16);  // (the limit is raised by ragd_k_attention_init)
    const float scale_log2 = (float)(1.0 / std::sqrt((double)HD) * 1.4426950408889634);
    attn_kernel<HD, HPC><<<dim3(n_tiles, nH / HPC), NWARP * 32 * HPC, smem, st>>>(qkv, out, seq_start, tiles, nH, nKV,
                                                                                  scale_log2);
    return cudaGetLastError();
}

// Variants 1–5: the kernel, its smem in [64][hd] tiles, and its grid order (job_init).
typedef void (*attn_fn)(const bf16 *, bf16 *, const int32_t *, const int2 *, int, int, float);
struct Variant {
    attn_fn k;  // NULL: variant 0
    int smem_tiles;
    bool heads_fast;
};
template <int HD>
Variant variant(int v) {
    switch (v) {
    case 1: return {attn_lean_kernel<HD>, 4, false};
    case 2: return {attn_split_kernel<HD, false>, 2, false};
    case 3: return {attn_split_kernel<HD, true>, 3, false};
    case 4: return {attn_pipe_kernel<HD>, 4, false};
    case 5: return {attn_split_kernel<HD, true, true>, 3, true};
    default: return {nullptr, 0, false};
    }
}

// Smem limits of variants 1–5 (ragd_k_attention_init), and all of the unified L1 / smem that can be
// smem, so the CTAs that the registers allow also fit in smem.
template <int HD>
cudaError_t variants_init() {
    cudaError_t e = cudaSuccess;
    for (int v = 1; v < RAGD_ATTN_VARIANTS && e == cudaSuccess; v++) {
        const Variant x = variant<HD>(v);
        e = cudaFuncSetAttribute(x.k, cudaFuncAttributeMaxDynamicSharedMemorySize, x.smem_tiles * (int)tile_bytes(HD));
        if (e == cudaSuccess)
            e = cudaFuncSetAttribute(x.k, cudaFuncAttributePreferredSharedMemoryCarveout,
                                     (int)cudaSharedmemCarveoutMaxShared);
    }
    return e;
}

template <int HD>
cudaError_t launch_variant(const Variant &x, const bf16 *qkv, bf16 *out, const int32_t *seq_start, const int2 *tiles,
                           int n_tiles, int nH, int nKV, cudaStream_t st) {
    const int smem = x.smem_tiles * (int)tile_bytes(HD);  // (the limit is raised by ragd_k_attention_init)
    const float scale_log2 = (float)(1.0 / std::sqrt((double)HD) * 1.4426950408889634);
    const dim3 grid = x.heads_fast ? dim3(n_tiles * nH) : dim3(n_tiles, nH);
    x.k<<<grid, NT, smem, st>>>(qkv, out, seq_start, tiles, nH, nKV, scale_log2);
    return cudaGetLastError();
}

int g_heads_per_cta_max = 1;  // benchmark switch (ragd_k_attention_set_heads_per_cta)
int g_variant = 0;            // benchmark switch (ragd_k_attention_set_variant)

template <int HD>
cudaError_t launch(const bf16 *qkv, bf16 *out, const int32_t *seq_start, const int2 *tiles, int n_tiles, int nH,
                   int nKV, cudaStream_t st) {
    const Variant x = variant<HD>(g_variant);
    if (x.k) return launch_variant<HD>(x, qkv, out, seq_start, tiles, n_tiles, nH, nKV, st);
    if ((nH / nKV) % 2 == 0 && g_heads_per_cta_max >= 2) return launch_hpc<HD, 2>(qkv, out, seq_start, tiles, n_tiles, nH, nKV, st);
    return launch_hpc<HD, 1>(qkv, out, seq_start, tiles, n_tiles, nH, nKV, st);
}

}  // namespace

cudaError_t ragd_k_attention(const bf16 *qkv, bf16 *out, const int32_t *seq_start, const int2 *tiles, int n_tiles,
                             int nH, int nKV, int hd, cudaStream_t st) {
    if (n_tiles <= 0 || nH <= 0 || nKV <= 0 || nH % nKV || nH > 65535) return cudaErrorInvalidValue;
    if (hd == 128) return launch<128>(qkv, out, seq_start, tiles, n_tiles, nH, nKV, st);
    if (hd == 64) return launch<64>(qkv, out, seq_start, tiles, n_tiles, nH, nKV, st);
    return cudaErrorInvalidValue;
}

extern "C" void ragd_k_attention_set_heads_per_cta(int n) { g_heads_per_cta_max = n; }
extern "C" void ragd_k_attention_set_variant(int v) { g_variant = v; }

// Raises the dynamic shared memory limit of every attention instantiation on the current device. Done
// once per device at engine creation, not per launch: launches may be captured into CUDA graphs.
cudaError_t ragd_k_attention_init() {
    const int s64 = 4 * BN * 64 * (int)sizeof(bf16), s128 = 4 * BN * 128 * (int)sizeof(bf16);
    cudaError_t e = cudaFuncSetAttribute(attn_kernel<64, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize, s64);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(attn_kernel<64, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, s64);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(attn_kernel<128, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize, s128);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(attn_kernel<128, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, s128);
    if (e == cudaSuccess) e = variants_init<64>();
    if (e == cudaSuccess) e = variants_init<128>();
    return e;
}

int ragd_attn_tiles(int n_seqs, const int32_t *seq_start, int2 *tiles, int cap) {
    int max_nt = 0;
    for (int s = 0; s < n_seqs; s++) max_nt = std::max(max_nt, ragd_cdiv(seq_start[s + 1] - seq_start[s], BM));
    int n = 0;
    for (int j = max_nt - 1; j >= 0; j--)  // most keys first: tile j of a sequence reads (j+1)·64 keys
        for (int s = 0; s < n_seqs; s++)
            if (ragd_cdiv(seq_start[s + 1] - seq_start[s], BM) > j) {
                if (n == cap) return -1;
                tiles[n++] = make_int2(s, j * BM);
            }
    return n;
}
