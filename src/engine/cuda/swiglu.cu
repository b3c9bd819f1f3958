// swiglu.cu — the gated MLP activation between the fused gate|up GEMM and down_proj.
// Hugging Face computes act(gate) in bf16 then multiplies by up in bf16: out = bf16(bf16(silu(g)) * u).
// Elementwise, so trivially batch invariant.
#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/kernels.h"

static __global__ void swiglu_kernel(const bf16 *gu, bf16 *out, int F, size_t n8) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;  // one 8-element chunk of out
    if (i >= n8) return;
    size_t e = i * 8, t = e / F, c = e % F;
    uint4 gv = *(const uint4 *)(gu + t * 2 * F + c);
    uint4 uv = *(const uint4 *)(gu + t * 2 * F + F + c);
    const bf16 *g = (const bf16 *)&gv, *u = (const bf16 *)&uv;
    uint4 ov;
    bf16 *o = (bf16 *)&ov;
#pragma unroll
    for (int k = 0; k < 8; k++) {
        float x = bf(g[k]);
        float s = round_bf(x / (1.f + expf(-x)));
        o[k] = tobf(s * bf(u[k]));
    }
    *(uint4 *)(out + e) = ov;
}

cudaError_t ragd_k_swiglu(const bf16 *gu, bf16 *out, int T, int F, cudaStream_t st) {
    if (T <= 0 || F <= 0 || F % 8) return cudaErrorInvalidValue;
    size_t n8 = (size_t)T * F / 8;
    swiglu_kernel<<<(unsigned)((n8 + 255) / 256), 256, 0, st>>>(gu, out, F, n8);
    return cudaGetLastError();
}
