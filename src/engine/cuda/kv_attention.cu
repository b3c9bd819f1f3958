// kv_attention.cu — generation (step) attention over the KV cache: appending the batch's K/V rows to
// their slots, and causal attention of each new query against its slot's cached keys.
//
// KV block pool per layer: kc, vc: [blocks, bs, nKV * hd] bf16. Token t of the batch belongs to
// sequence tokseq[t] at absolute position pos[t]; position p of sequence i is row p % bs of block
// blocks[blk_start[i] + p / bs]. Its query attends to keys [0, pos[t]] of its sequence (all appended
// before the attention launch, so a prefill chunk sees its own earlier tokens).
//
// Attention: one CTA (128 threads) per (token, query head). Keys are walked in chunks of 128 (one
// key per thread, f32 dot product over hd in index order), online softmax in f32 with a fixed
// reduction tree, then thread d < hd accumulates P·V over the chunk in key order. The result of a
// token depends only on its own query and its slot's keys: batch invariant and independent of how a
// prompt was split into chunks. Simple rather than fast: decode-sized work (a few tokens per
// sequence) is what it is for; long prefills through step pay O(n·ctx) without tensor cores.
#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/kernels.h"

namespace {

constexpr int kThreads = 128;

// the cache row of position p of sequence i (element offset of its [Dkv] row)
__device__ __forceinline__ size_t cache_row(const int32_t *blk_start, const int32_t *blocks, int i, int p, int bs,
                                            size_t Dkv) {
    return ((size_t)blocks[blk_start[i] + p / bs] * bs + (size_t)(p % bs)) * Dkv;
}

__global__ void kv_append_kernel(const bf16 *qkv, bf16 *kc, bf16 *vc, const int32_t *pos, const int32_t *tokseq,
                                 const int32_t *blk_start, const int32_t *blocks, int nH, int nKV, int hd, int bs) {
    const int t = blockIdx.x;
    const size_t Dkv = (size_t)nKV * hd, Dqkv = (size_t)(nH + 2 * nKV) * hd;
    const bf16 *k = qkv + (size_t)t * Dqkv + (size_t)nH * hd;  // [Dkv]
    const bf16 *v = k + Dkv;                                    // [Dkv]
    const size_t row = cache_row(blk_start, blocks, tokseq[t], pos[t], bs, Dkv);
    for (size_t i = threadIdx.x; i < Dkv; i += blockDim.x) {
        kc[row + i] = k[i];
        vc[row + i] = v[i];
    }
}

__device__ __forceinline__ float block_reduce(float v, float *red, bool is_max) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) {
        float u = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, u) : v + u;
    }
    if (lane == 0) red[w] = v;
    __syncthreads();
    float r = red[0];
    for (int i = 1; i < kThreads / 32; i++) r = is_max ? fmaxf(r, red[i]) : r + red[i];
    __syncthreads();
    return r;
}

__global__ void __launch_bounds__(kThreads) kv_attention_kernel(const bf16 *qkv, bf16 *out, const bf16 *kc,
                                                                const bf16 *vc, const int32_t *pos,
                                                                const int32_t *tokseq, const int32_t *blk_start,
                                                                const int32_t *blocks, int nH, int nKV, int hd, int bs,
                                                                float scale) {
    __shared__ float q[128];       // [hd]
    __shared__ float p[kThreads];  // [chunk] probabilities (unnormalized)
    __shared__ float red[kThreads / 32];
    const int t = blockIdx.x, h = blockIdx.y, g = h / (nH / nKV), tid = threadIdx.x;
    const size_t Dkv = (size_t)nKV * hd, Dqkv = (size_t)(nH + 2 * nKV) * hd;
    if (tid < hd) q[tid] = bf(qkv[(size_t)t * Dqkv + (size_t)h * hd + tid]);
    __syncthreads();
    const int si = tokseq[t];
    const bf16 *K = kc + (size_t)g * hd;  // position j at K + cache_row(j), [hd]
    const bf16 *V = vc + (size_t)g * hd;
    const int n = pos[t] + 1;
    float m = -INFINITY, l = 0.f, acc = 0.f;
    for (int j0 = 0; j0 < n; j0 += kThreads) {
        const int j = j0 + tid;
        float s = -INFINITY;
        if (j < n) {
            const uint4 *kr = (const uint4 *)(K + cache_row(blk_start, blocks, si, j, bs, Dkv));  // 8 bf16 per load
            float dot = 0.f;
            for (int d8 = 0; d8 < hd / 8; d8++) {
                uint4 u = kr[d8];
                const bf16 *e = (const bf16 *)&u;
#pragma unroll
                for (int i = 0; i < 8; i++) dot = fmaf(q[d8 * 8 + i], bf(e[i]), dot);
            }
            s = dot * scale;
        }
        const float cm = block_reduce(s, red, true);
        const float mn = fmaxf(m, cm);
        const float e = j < n ? __expf(s - mn) : 0.f;
        p[tid] = e;
        const float cs = block_reduce(e, red, false);  // (its __syncthreads publishes p)
        const float corr = m == -INFINITY ? 0.f : __expf(m - mn);
        l = l * corr + cs;
        if (tid < hd) {
            acc *= corr;
            const int cnt = min(kThreads, n - j0);
            for (int jj = 0; jj < cnt; jj++)
                acc = fmaf(p[jj], bf(V[cache_row(blk_start, blocks, si, j0 + jj, bs, Dkv) + tid]), acc);
        }
        m = mn;
        __syncthreads();
    }
    if (tid < hd) out[(size_t)t * nH * hd + (size_t)h * hd + tid] = tobf(acc / l);
}

}  // namespace

cudaError_t ragd_k_kv_append(const bf16 *qkv, bf16 *kc, bf16 *vc, const int32_t *pos, const int32_t *tokseq,
                             const int32_t *blk_start, const int32_t *blocks, int T, int nH, int nKV, int hd, int bs,
                             cudaStream_t st) {
    if (T <= 0 || nKV <= 0 || nH % nKV || (hd != 64 && hd != 128) || bs <= 0) return cudaErrorInvalidValue;
    kv_append_kernel<<<T, 256, 0, st>>>(qkv, kc, vc, pos, tokseq, blk_start, blocks, nH, nKV, hd, bs);
    return cudaGetLastError();
}

cudaError_t ragd_k_kv_attention(const bf16 *qkv, bf16 *out, const bf16 *kc, const bf16 *vc, const int32_t *pos,
                                const int32_t *tokseq, const int32_t *blk_start, const int32_t *blocks, int T, int nH,
                                int nKV, int hd, int bs, cudaStream_t st) {
    if (T <= 0 || nKV <= 0 || nH % nKV || (hd != 64 && hd != 128) || bs <= 0 || nH > 65535)
        return cudaErrorInvalidValue;
    kv_attention_kernel<<<dim3(T, nH), kThreads, 0, st>>>(qkv, out, kc, vc, pos, tokseq, blk_start, blocks, nH, nKV,
                                                         hd, bs, 1.0f / sqrtf((float)hd));
    return cudaGetLastError();
}
