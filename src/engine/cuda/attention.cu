// attention.cu — causal varlen flash attention over packed sequences (no padding), bf16 tensor-core
// MMA (mma.sync m16n8k16) with f32 accumulation and an online softmax. One kernel.
//
// Grid: 1-D, one CTA of 4 warps per (64-row query tile of one sequence, query head), the head the
// fastest index (CTA = tile · nH + head). Each warp owns 16 query rows. GQA: query head h reads kv
// head h / (nH/nKV). Shared memory: the CTA's Q tile and one K and one V tile of 64 keys, XOR-swizzled
// [64][hd] bf16 each (48 KB at hd 128, 24 KB at hd 64), filled by cp.async; rows past the sequence
// end are zero-filled and masked.
//
// Schedule of key tile j: wait for K_j; start V_j; S = Q K_j^T and its softmax (while V_j lands);
// wait for V_j; start K_{j+1}; O += P V_j (while K_{j+1} lands). Two barriers per tile; the first tile
// computes as soon as Q and K_0 are in.
//
// Why this shape: it replaced five other variants after an A/B on the H200 (test_kernels --bench-attn,
// bench/results-cuda.md run 11; long = 256 sequences of 64–512 tokens, short = 1024 of 16–64, Qwen3
// heads 16/8 × 128). The first kernel (K and V double-buffered together in one cp.async group, Q in
// registers, 64 KB, 3 CTAs per SM) took 0.971 ms long / 0.305 ms short and was latency-bound: 46 %
// issue-slot use, 0.7 eligible warps of 3 per scheduler; its Q K^T loop broke after every 16 keys
// (for the diagonal tile), leaving each ldmatrix right before the two MMAs that consume it. Steps:
//  * lean code (0.667 / 0.224 ms): full key tiles run branch-free Q K^T and P V loops with all
//    ldmatrix loads of a head-dim block ahead of its MMAs; ldmatrix and cp.async addresses computed
//    once per thread (the swizzle flips chunk bits only, so chunk pair c is offset ^ (c << 5)); the
//    causal / length mask is one compare per score;
//  * K and V as separate cp.async groups with single buffers, as FlashAttention-2 (0.655 / 0.223);
//  * Q re-read from its smem tile per key tile (8 ldmatrix per warp against 32 for K) instead of
//    held in registers: 32 registers fewer, 128 in all, so 4 CTAs (16 warps) fit per SM, not 3
//    (0.629 / 0.197);
//  * the head as the fastest grid index: the CTAs of one query tile run together, so a K/V tile comes
//    from DRAM once and the heads that read it share it in L2 (a tile-fastest grid sweeps every tile
//    of head 0, then of head 1, …: tens of MB between two reads of one tile) — 0.623 ms long (174
//    TFLOP/s useful) / 0.188 ms short; whole engine, long mix: 538.5k tokens/s against 510k.
// Tried and dropped: scores one key tile ahead (S_{j+1} issued before the softmax of S_j; 64 KB,
// register spills at hd 128: 0.753 / 0.241 ms), two heads per CTA sharing K/V tiles (slower:
// occupancy, not traffic, was the limit), and the FlashAttention-2 warp shape (2 warps × 32 query rows
// per CTA: half the ldmatrix loads per MMA, but 255 registers, so 8 warps per SM instead of 16 —
// bit-identical, 0.611 / 0.220 ms against 0.616 / 0.188: results-cuda run 12).
//
// Batch invariance: a CTA reads only its own sequence and walks its keys in order 0, 64, 128, …, so
// the reduction order of every output row is fixed by the sequence alone (tests/gpu checks alone vs
// packed bit for bit). P is rounded to bf16 before the P·V product (as flash-attention kernels do);
// the row sum uses the same rounded values.
#include <cmath>

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "attention.cu needs sm_80 or newer (cp.async, ldmatrix, bf16 mma): build with CMAKE_CUDA_ARCHITECTURES=90"
#endif

#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/kernels.h"

namespace {

constexpr int BM = RAGD_ATTN_BM, BN = 64, NWARP = 4;
constexpr int NT = NWARP * 32;                                              // threads per CTA
constexpr uint32_t tile_bytes(int hd) { return (uint32_t)(BN * hd * 2); }  // one [64][hd] bf16 tile
static_assert(BM == BN, "the Q tile and the K/V tiles share one layout");

__device__ __forceinline__ uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
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

// Rows [r0, r0+64) of a [L, ld] matrix into a swizzled [BN][HD] tile at shared address s (16-byte
// chunk ch of row r at chunk ch ^ (r & 7)); rows ≥ L are zero-filled. The thread count is a compile-
// time constant, so a thread's column chunk and its swizzle are fixed and its rows step by a constant.
template <int HD>
__device__ __forceinline__ void load_tile(uint32_t s, const bf16 *g, int ld, int r0, int L) {
    constexpr int CH = HD / 8, RSTEP = NT / CH;  // 16-byte chunks per row; rows per pass (8 or 16)
    static_assert(RSTEP % 8 == 0, "a thread's swizzle must not change between passes");
    const int ch = threadIdx.x % CH, r = threadIdx.x / CH;
    const uint32_t dst = s + (uint32_t)(r * HD + ((ch ^ (r & 7)) << 3)) * 2;
    const bf16 *src = g + ch * 8;
#pragma unroll
    for (int i = 0; i < BN / RSTEP; i++) {
        const int gr = r0 + r + i * RSTEP;
        cp_async16(dst + i * RSTEP * HD * 2, src + (size_t)min(gr, L - 1) * ld, gr < L ? 16 : 0);
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

// What a CTA works on, and the thread's place in the MMA layouts (each warp owns 16 query rows; a
// thread holds rows g and g + 8 of them, in the m16n8k16 accumulator layout).
struct Job {
    int q0, L, n_kt, ld, h;
    int start;                 // first token of the sequence
    const bf16 *Qg, *Kg, *Vg;  // [L, ld]: query head h, kv head h / (nH / nKV)
    int warp, g, t4, qi0, qi1;  // qi0, qi1: this thread's two query rows (warp*16 + g, + 8)
    uint32_t qo, ko, vo;       // ldmatrix offsets: Q (A operand, the warp's 16 rows), K (B), V (B, transposed)
};

// CTA blockIdx.x = tile · nH + head: the CTAs of one query tile run together and share its K/V rows
// in L2 (the heads of a GQA group read the same K/V tiles; all heads together read whole rows).
template <int HD>
__device__ __forceinline__ Job job_init(const bf16 *qkv, const int32_t *seq_start, const int2 *tiles, int nH, int nKV) {
    Job b;
    const int2 tile = tiles[blockIdx.x / nH];
    b.h = blockIdx.x % nH;
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

// Keys of tile j the warp needs: all but in the last (diagonal) tile, where its 16 rows see keys up
// to 16·warp + 15 and the sequence may end; 16-key blocks past that are skipped (their probabilities
// are exact zeros, so skipping them changes no bit). A warp whose 16 rows all lie past the sequence
// end (short sequences) computes nothing.
__device__ __forceinline__ int keys_needed(int q0, int warp, int L, bool last, int j) {
    return q0 + 16 * warp >= L ? 0 : last ? min(16 * warp + 16, L - j * BN) : BN;
}

// S[:, 0:16·NB] += Q K^T over the first NB 16-key blocks of the K tile at shared address k, head-dim
// block by block, branch-free: per block the ldmatrix loads come before the 2·NB independent MMAs.
// getq(kk, a) loads Q's fragment of head-dim block kk (the kernel re-reads it from the Q tile).
template <int HD, int NB, class GetQ>
__device__ __forceinline__ void qk_blocks(float (&s)[BN / 8][4], GetQ getq, uint32_t k, uint32_t ko) {
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) {
        uint32_t a[4], b[NB][4];
        getq(kk, a);
#pragma unroll
        for (int np = 0; np < NB; np++) ldsm4(k + np * 16 * HD * 2 + (ko ^ (kk << 5)), b[np]);
#pragma unroll
        for (int np = 0; np < NB; np++) {
            mma16816(s[2 * np], a, b[np][0], b[np][1]);
            mma16816(s[2 * np + 1], a, b[np][2], b[np][3]);
        }
    }
}

// S = Q K^T for the warp's 16 rows × the first `lim` keys (rounded up to 16) of the K tile; the rest
// of S stays 0 (those keys are masked or skipped). Each accumulator sums over the head dimension in
// the same order whatever lim is.
template <int HD, class GetQ>
__device__ __forceinline__ void qk_tile(float (&s)[BN / 8][4], GetQ getq, uint32_t k, uint32_t ko, int lim) {
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

// Online softmax of key tile j (keys j·64 …): in the last tile, scores past the diagonal or the
// sequence end are set to −inf; then the row maxima m0/m1 (in log2 units) move, P comes back rounded
// to bf16 pairs in pf ([nt][row g / row g+8]) with the factors a0/a1 by which O and l must be
// rescaled; l0/l1 (this thread's partial row sums) are updated with the same rounded values. The max
// is taken on raw scores (scale > 0), then p = 2^(s·scale·log2e − m) in one FMA + ex2.
__device__ __forceinline__ void softmax_tile(float (&s)[BN / 8][4], uint32_t (&pf)[BN / 8][2], float &m0, float &m1,
                                             float &l0, float &l1, float &a0, float &a1, bool last, int j,
                                             const Job &b, float scale_log2) {
    // key kb + c is masked for row qi when c > min(qi, L − 1) − kb; c = nt·8 + 2·t4 + (e & 1)
    const int r0 = min(b.qi0, b.L - 1) - j * BN - 2 * b.t4, r1 = min(b.qi1, b.L - 1) - j * BN - 2 * b.t4;
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < BN / 8; nt++) {
        if (last) {
#pragma unroll
            for (int e = 0; e < 4; e++)
                if (nt * 8 + (e & 1) > (e < 2 ? r0 : r1)) s[nt][e] = -INFINITY;
        }
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

// O = O·a + P V over the first `lim` keys of the V tile at shared address v. O is rescaled only when
// some row's max moved (multiplying by 1 would change no bit). Full tiles run branch-free; the
// diagonal tile branches once per 16-key block (each O accumulator sums in the same key order).
template <int HD>
__device__ __forceinline__ void pv_tile(float (&o)[HD / 8][4], const uint32_t (&pf)[BN / 8][2], float a0, float a1,
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

constexpr int SMEM_TILES = 3;  // Q, K, V

template <int HD>
__global__ void __launch_bounds__(NT, 4)
    attn_kernel(const bf16 *qkv, bf16 *out, const int32_t *seq_start, const int2 *tiles, int nH, int nKV,
                float scale_log2) {
    extern __shared__ uint4 smem_raw[];
    constexpr uint32_t TB = tile_bytes(HD);
    const uint32_t sK = smem_addr(smem_raw);  // [BN][HD]
    const uint32_t sV = sK + TB;              // [BN][HD]
    const uint32_t sQ = sV + TB;              // [BM][HD]
    const Job b = job_init<HD>(qkv, seq_start, tiles, nH, nKV);

    load_tile<HD>(sQ, b.Qg, b.ld, b.q0, b.L);
    load_tile<HD>(sK, b.Kg, b.ld, 0, b.L);
    cp_commit();
    float o[HD / 8][4];
#pragma unroll
    for (int i = 0; i < HD / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    float m0 = -1e30f, m1 = -1e30f, l0 = 0.f, l1 = 0.f;

    for (int j = 0; j < b.n_kt; j++) {
        cp_wait<0>();
        __syncthreads();  // K_j (and Q) visible to all; every warp is done with V_{j-1}
        load_tile<HD>(sV, b.Vg, b.ld, j * BN, b.L);
        cp_commit();
        const bool last = j == b.n_kt - 1;
        const int lim = keys_needed(b.q0, b.warp, b.L, last, j);
        float s[BN / 8][4];
        // Q re-read from smem per key tile. A lambda, as in the measured kernel: passing sQ and qo as
        // values compiles to other SASS (other integer scheduling, same registers), never benchmarked
        qk_tile<HD>(s, [&](int kk, uint32_t(&q)[4]) { ldsm4(sQ + (b.qo ^ (kk << 5)), q); }, sK, b.ko, lim);
        uint32_t pf[BN / 8][2];
        float a0, a1;
        softmax_tile(s, pf, m0, m1, l0, l1, a0, a1, last, j, b, scale_log2);
        cp_wait<0>();
        __syncthreads();  // V_j visible to all; every warp is done with K_j
        if (j + 1 < b.n_kt) {
            load_tile<HD>(sK, b.Kg, b.ld, (j + 1) * BN, b.L);
            cp_commit();
        }
        pv_tile<HD>(o, pf, a0, a1, sV, b.vo, lim);
    }
    store_rows<HD>(o, l0, l1, out, b.start, b.h, nH, b.qi0, b.qi1, b.L, b.t4);
}

template <int HD>
cudaError_t launch(const bf16 *qkv, bf16 *out, const int32_t *seq_start, const int2 *tiles, int n_tiles, int nH,
                   int nKV, cudaStream_t st) {
    if ((long long)n_tiles * nH > 0x7fffffff) return cudaErrorInvalidValue;  // 1-D grid
    const int smem = SMEM_TILES * (int)tile_bytes(HD);  // (the limit is raised by ragd_k_attention_init)
    const float scale_log2 = (float)(1.0 / std::sqrt((double)HD) * 1.4426950408889634);
    attn_kernel<HD><<<n_tiles * nH, NT, smem, st>>>(qkv, out, seq_start, tiles, nH, nKV, scale_log2);
    return cudaGetLastError();
}

// The kernel's dynamic smem limit, and all of the unified L1 / smem that can be smem, so the 4 CTAs
// per SM that the registers allow also fit in smem.
template <int HD>
cudaError_t init() {
    cudaError_t e = cudaFuncSetAttribute(attn_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         SMEM_TILES * (int)tile_bytes(HD));
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(attn_kernel<HD>, cudaFuncAttributePreferredSharedMemoryCarveout,
                                 (int)cudaSharedmemCarveoutMaxShared);
    return e;
}

}  // namespace

cudaError_t ragd_k_attention(const bf16 *qkv, bf16 *out, const int32_t *seq_start, const int2 *tiles, int n_tiles,
                             int nH, int nKV, int hd, cudaStream_t st) {
    if (n_tiles <= 0 || nH <= 0 || nKV <= 0 || nH % nKV) return cudaErrorInvalidValue;
    if (hd == 128) return launch<128>(qkv, out, seq_start, tiles, n_tiles, nH, nKV, st);
    if (hd == 64) return launch<64>(qkv, out, seq_start, tiles, n_tiles, nH, nKV, st);
    return cudaErrorInvalidValue;
}

// Sets the kernel's shared memory attributes on the current device. Done once per device at engine
// creation, not per launch: launches may be captured into CUDA graphs.
cudaError_t ragd_k_attention_init() {
    cudaError_t e = init<64>();
    if (e == cudaSuccess) e = init<128>();
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
