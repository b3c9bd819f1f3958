// ck.cuh — checked CUDA / cuBLASLt calls for the GPU test and survey programs: on failure print
// file:line, the call and the error string, and exit(2).
#ifndef RAGD_TESTS_GPU_CK_CUH
#define RAGD_TESTS_GPU_CK_CUH

#include <cstdio>
#include <cstdlib>

#include <cublasLt.h>
#include <cuda_runtime.h>

static inline void ck_fail(const char *file, int line, const char *call, const char *why) {
    fprintf(stderr, "%s:%d: %s: %s\n", file, line, call, why);
    exit(2);
}

#define CK(x)                                                                              \
    do {                                                                                   \
        cudaError_t e_ = (x);                                                              \
        if (e_ != cudaSuccess) ck_fail(__FILE__, __LINE__, #x, cudaGetErrorString(e_));    \
    } while (0)
#define CKB(x)                                                                             \
    do {                                                                                   \
        cublasStatus_t s_ = (x);                                                           \
        if (s_ != CUBLAS_STATUS_SUCCESS) ck_fail(__FILE__, __LINE__, #x, cublasLtGetStatusString(s_)); \
    } while (0)

#include <algorithm>
#include <vector>

// Event-timed runs of f() on stream st: `iters` runs, the first `warm` dropped; the times in ms, sorted.
template <class F>
static std::vector<float> ck_time_sorted(cudaStream_t st, cudaEvent_t e0, cudaEvent_t e1, int iters, int warm, F f) {
    std::vector<float> ms;
    for (int it = 0; it < iters; it++) {
        CK(cudaEventRecord(e0, st));
        f();
        CK(cudaEventRecord(e1, st));
        CK(cudaEventSynchronize(e1));
        float t;
        CK(cudaEventElapsedTime(&t, e0, e1));
        if (it >= warm) ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    return ms;
}

#endif
