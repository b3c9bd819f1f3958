// cuda_util.cuh — INTERNAL to src/engine/cuda: checked CUDA calls, the sticky device error, bf16
// helpers shared by the kernels.
//
// Error contract: every CUDA / cuBLASLt call of the backend goes through RAGD_CK / RAGD_CKB inside a
// function that has a `ragd_cuda_err *` named `cerr` in scope. The first failure records
// "file:line: call: CUDA error string" in cerr and sets its sticky flag; every later entry point
// sees the flag and fails with RAGD_CUDA_EDEVICE without touching the device again.
#ifndef RAGD_CUDA_UTIL_CUH
#define RAGD_CUDA_UTIL_CUH

#include <cstdio>
#include <cstdint>

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

extern "C" {
#include "engine/cuda/cuda_api.h"
}

struct ragd_cuda_err {
    int dead;       // sticky: set by the first device failure, never cleared
    char msg[512];  // "file:line: call: error string"
};

// Records the failure (first one wins) and returns RAGD_CUDA_EDEVICE.
static inline int ragd_cuda_fail(ragd_cuda_err *cerr, const char *what, const char *why, const char *file, int line) {
    if (!cerr->dead) {
        snprintf(cerr->msg, sizeof cerr->msg, "%s:%d: %s: %s", file, line, what, why);
        cerr->dead = 1;
    }
    return RAGD_CUDA_EDEVICE;
}

#define RAGD_CK(call)                                                                              \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) return ragd_cuda_fail(cerr, #call, cudaGetErrorString(e_), __FILE__, __LINE__); \
    } while (0)

#define RAGD_CKB(call)                                                                             \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                           \
            return ragd_cuda_fail(cerr, #call, cublasLtGetStatusString(s_), __FILE__, __LINE__);   \
    } while (0)

// Launch check: a launch error (bad configuration) is sticky too.
#define RAGD_CKL() RAGD_CK(cudaGetLastError())

typedef __nv_bfloat16 bf16;

static __device__ __forceinline__ float bf(bf16 x) { return __bfloat162float(x); }
static __device__ __forceinline__ bf16 tobf(float x) { return __float2bfloat16_rn(x); }
static __device__ __forceinline__ float round_bf(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

static inline int ragd_cdiv(int a, int b) { return (a + b - 1) / b; }

// Sum over the block (blockDim.x a multiple of 32, ≤ 1024) in a fixed order; every thread gets it
// (norm.cu, encoder.cu: one block per row).
static __device__ __forceinline__ float block_sum(float v) {
    __shared__ float part[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int w = threadIdx.x >> 5, l = threadIdx.x & 31, nw = blockDim.x >> 5;
    __syncthreads();  // part[] may still be read by a previous call
    if (l == 0) part[w] = v;
    __syncthreads();
    float s = 0.f;
    for (int i = 0; i < nw; i++) s += part[i];
    return s;
}

#endif
