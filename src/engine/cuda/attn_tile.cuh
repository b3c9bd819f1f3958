// attn_tile.cuh — INTERNAL to src/engine/cuda: the building blocks of the tensor-core flash-attention
// kernels (attention.cu: packed prefill for pooling and scoring; paged_attention.cu: generation over the
// paged KV cache, prefill and decode): cp.async tile loads into XOR-swizzled [64][hd] bf16 shared-memory
// tiles, ldmatrix fragment addressing, mma.sync m16n8k16 bf16 with f32 accumulation, and the per-tile
// steps S = Q K^T, online softmax (P rounded to bf16; the row sum uses the rounded values) and O += P V.
//
// Batch invariance rests on these being the same instructions for every row: an output row of a tile
// depends only on its own query row, the key/value tiles and its mask limit — never on the other rows
// of the tile, which is why kernels that pack different rows (query positions, or the heads of a GQA
// group) into a tile get the same bits for a row.
#ifndef RAGD_CUDA_ATTN_TILE_CUH
#define RAGD_CUDA_ATTN_TILE_CUH

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "attention needs sm_80 or newer (cp.async, ldmatrix, bf16 mma): build with CMAKE_CUDA_ARCHITECTURES=90"
#endif

#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/kernels.h"

namespace attn {

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

// Online softmax of one key tile: when `last` (a tile holding keys some row must not see), scores past
// each row's limit are set to −inf; then the row maxima m0/m1 (in log2 units) move, P comes back rounded
// to bf16 pairs in pf ([nt][row g / row g+8]) with the factors a0/a1 by which O and l must be
// rescaled; l0/l1 (this thread's partial row sums) are updated with the same rounded values. The max
// is taken on raw scores (scale > 0), then p = 2^(s·scale·log2e − m) in one FMA + ex2.
// r0 / r1: the thread's mask limits for its rows g and g + 8 — key column c (= nt·8 + 2·t4 + (e & 1)) of
// the tile is masked when c − 2·t4 > r, i.e. r = (last visible key of the row) − (first key of the tile)
// − 2·t4 (callers: ragd_attn_mask_limit).
__device__ __forceinline__ void softmax_tile(float (&s)[BN / 8][4], uint32_t (&pf)[BN / 8][2], float &m0, float &m1,
                                             float &l0, float &l1, float &a0, float &a1, bool last, int r0, int r1,
                                             float scale_log2) {
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

}  // namespace attn

#endif
