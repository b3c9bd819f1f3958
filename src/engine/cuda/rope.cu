// rope.cu — per-head q/k RMSNorm (Qwen3) and half-split RoPE, in place on the fused QKV output.
//
// Matches Hugging Face's bf16 arithmetic: q_norm output bf16(w * bf16(x * rsqrt(mean(x²)+eps)));
// cos/sin computed in f32 from pos * inv_freq and cast to bf16; out = bf16(bf16(x*cos) +
// bf16(rotate_half(x)*sin)) with rotate_half(x) = cat(-x[hd/2:], x[:hd/2]). One warp per
// (token, head); the warp's reduction order is fixed, so results do not depend on the batch.
#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/kernels.h"

template <int HD>
static __global__ void qk_norm_rope_kernel(bf16 *qkv, const int32_t *pos, const float *inv_freq, const bf16 *qn,
                                           const bf16 *kn, int T, int nH, int nKV, float eps) {
    constexpr int EPL = HD / 64;  // elements per lane in each half
    int gw = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    int nh2 = nH + nKV;
    if (gw >= T * nh2) return;
    int t = gw / nh2, h = gw % nh2;
    int ld = (nH + 2 * nKV) * HD;
    bf16 *p = qkv + (size_t)t * ld + (size_t)h * HD;  // [HD], q head h or k head h-nH
    const bf16 *w = h < nH ? qn : kn;                  // [HD] or NULL
    float x1[EPL], x2[EPL];
#pragma unroll
    for (int e = 0; e < EPL; e++) {
        x1[e] = bf(p[lane * EPL + e]);
        x2[e] = bf(p[HD / 2 + lane * EPL + e]);
    }
    if (w) {
        float ss = 0.f;
#pragma unroll
        for (int e = 0; e < EPL; e++) ss += x1[e] * x1[e] + x2[e] * x2[e];
        for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        float r = rsqrtf(ss / (float)HD + eps);
#pragma unroll
        for (int e = 0; e < EPL; e++) {
            x1[e] = round_bf(bf(w[lane * EPL + e]) * round_bf(x1[e] * r));
            x2[e] = round_bf(bf(w[HD / 2 + lane * EPL + e]) * round_bf(x2[e] * r));
        }
    }
    float fp = (float)pos[t];
#pragma unroll
    for (int e = 0; e < EPL; e++) {
        int i = lane * EPL + e;
        float f = fp * inv_freq[i];
        float c = round_bf(cosf(f)), s = round_bf(sinf(f));
        p[i] = tobf(round_bf(x1[e] * c) + round_bf(-x2[e] * s));
        p[HD / 2 + i] = tobf(round_bf(x2[e] * c) + round_bf(x1[e] * s));
    }
}

cudaError_t ragd_k_qk_norm_rope(bf16 *qkv, const int32_t *pos, const float *inv_freq, const bf16 *qn,
                                const bf16 *kn, int T, int nH, int nKV, int hd, float eps, cudaStream_t st) {
    if (T <= 0 || nH <= 0 || nKV <= 0 || (qn == nullptr) != (kn == nullptr)) return cudaErrorInvalidValue;
    long warps = (long)T * (nH + nKV);
    unsigned blocks = (unsigned)((warps + 7) / 8);
    if (hd == 128)
        qk_norm_rope_kernel<128><<<blocks, 256, 0, st>>>(qkv, pos, inv_freq, qn, kn, T, nH, nKV, eps);
    else if (hd == 64)
        qk_norm_rope_kernel<64><<<blocks, 256, 0, st>>>(qkv, pos, inv_freq, qn, kn, T, nH, nKV, eps);
    else
        return cudaErrorInvalidValue;
    return cudaGetLastError();
}
