// attention.cu — causal varlen flash attention over packed sequences (no padding), bf16 tensor-core
// MMA (mma.sync m16n8k16) with f32 accumulation and an online softmax.
//
// Grid: one CTA per (64-row query tile of one sequence, HPC query heads of one GQA group); 4 warps
// per head, 16 query rows each. K/V tiles of 64 keys stream through double-buffered, XOR-swizzled
// shared memory (cp.async) and serve all HPC heads; keys beyond the sequence end are zero-filled
// and masked. HPC = 1 by default: HPC = 2 (half the K/V traffic) measured slower on an H200,
// since occupancy, not traffic, limits this kernel (1 CTA of 8 warps per SM against 3 of 4). GQA: query head h reads
// kv head h / (nH/nKV).
//
// Batch invariance: a CTA reads only its own sequence and walks its keys in order 0, 64, 128, …, so
// the reduction order of every output row is fixed by the sequence alone. P is rounded to bf16
// before the P·V product (as flash-attention kernels do); the row sum uses the same rounded values.
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
        bf16 *k_s = sK + buf * BN * HD, *v_s = sV + buf * BN * HD;
        // keys of this tile the warp needs: all but in the last (diagonal) tile, where its 16 rows see
        // keys up to 16·warp + 15 and the sequence may end; 16-key blocks past that are skipped (their
        // probabilities are exact zeros, so skipping them changes no bit).
        const bool last = j == n_kt - 1;
        // A warp whose 16 rows all lie past the sequence end (short sequences) computes nothing.
        const int lim = q0 + 16 * warp >= L ? 0 : last ? min(16 * warp + 16, L - j * BN) : BN;

        // S = Q K^T for this warp's 16 rows × 64 keys
        float s[BN / 8][4];
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
        // causal / length mask (only the last tile holds the diagonal and the sequence end); the row
        // max is taken on raw scores (scale > 0), then p = 2^(s·scale·log2e − m) in one FMA + ex2
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < BN / 8; nt++) {
            if (last) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int kj = j * BN + nt * 8 + 2 * t4 + (e & 1);
                    int qi = e < 2 ? qi0 : qi1;
                    if (kj > qi || kj >= L) s[nt][e] = -INFINITY;
                }
            }
            mx0 = fmaxf(mx0, fmaxf(s[nt][0], s[nt][1]));
            mx1 = fmaxf(mx1, fmaxf(s[nt][2], s[nt][3]));
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        const float mn0 = fmaxf(m0, mx0 * scale_log2), mn1 = fmaxf(m1, mx1 * scale_log2);
        const float a0 = ex2(m0 - mn0), a1 = ex2(m1 - mn1);
        m0 = mn0;
        m1 = mn1;
        float rs0 = 0.f, rs1 = 0.f;
        uint32_t pf[BN / 8][2];  // P as bf16 pairs: [nt][row g / row g+8]
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
        // rescale O only when some row's max moved (multiplying by 1 would change no bit)
        if (__any_sync(0xffffffffu, a0 != 1.f || a1 != 1.f)) {
#pragma unroll
            for (int nd = 0; nd < HD / 8; nd++) {
                o[nd][0] *= a0;
                o[nd][1] *= a0;
                o[nd][2] *= a1;
                o[nd][3] *= a1;
            }
        }
        // O += P V
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
        __syncthreads();  // the next iteration's prefetch overwrites this buffer
    }

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

int g_heads_per_cta_max = 1;  // benchmark switch (ragd_k_attention_set_heads_per_cta)

template <int HD>
cudaError_t launch(const bf16 *qkv, bf16 *out, const int32_t *seq_start, const int2 *tiles, int n_tiles, int nH,
                   int nKV, cudaStream_t st) {
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

// Raises the dynamic shared memory limit of every attention instantiation on the current device. Done
// once per device at engine creation, not per launch: launches may be captured into CUDA graphs.
cudaError_t ragd_k_attention_init() {
    const int s64 = 4 * BN * 64 * (int)sizeof(bf16), s128 = 4 * BN * 128 * (int)sizeof(bf16);
    cudaError_t e = cudaFuncSetAttribute(attn_kernel<64, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize, s64);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(attn_kernel<64, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, s64);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(attn_kernel<128, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize, s128);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(attn_kernel<128, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, s128);
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
