// swiglu.cu — the gated MLP activation between the fused gate|up GEMM and down_proj.
// Hugging Face computes act(gate) in bf16 then multiplies by up in bf16: out = bf16(bf16(silu(g)) * u).
// Elementwise, so trivially batch invariant.
#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/kernels.h"

// Grid: x covers the F/8 chunks of a row, y the tokens (looping when T > 65535): no integer division.
static __global__ void swiglu_kernel(const bf16 *gu, bf16 *out, int T, int F) {
    const int c = (blockIdx.x * blockDim.x + threadIdx.x) * 8;  // column of this thread's 8 outputs
    if (c >= F) return;
    for (int t = blockIdx.y; t < T; t += gridDim.y) {
        uint4 gv = *(const uint4 *)(gu + (size_t)t * 2 * F + c);
        uint4 uv = *(const uint4 *)(gu + (size_t)t * 2 * F + F + c);
        const bf16 *g = (const bf16 *)&gv, *u = (const bf16 *)&uv;
        uint4 ov;
        bf16 *o = (bf16 *)&ov;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            float x = bf(g[k]);
            float s = round_bf(x / (1.f + expf(-x)));
            o[k] = tobf(s * bf(u[k]));
        }
        *(uint4 *)(out + (size_t)t * F + c) = ov;
    }
}

cudaError_t ragd_k_swiglu(const bf16 *gu, bf16 *out, int T, int F, cudaStream_t st) {
    if (T <= 0 || F <= 0 || F % 8) return cudaErrorInvalidValue;
    const int threads = 128;
    dim3 grid((unsigned)((F / 8 + threads - 1) / threads), (unsigned)(T < 65535 ? T : 65535));
    swiglu_kernel<<<grid, threads, 0, st>>>(gu, out, T, F);
    return cudaGetLastError();
}
