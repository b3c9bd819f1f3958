// device.cu — device discovery for the CUDA backend (no kernels).
#include <cstdio>
#include <cstring>

#include <cublasLt.h>
#include <cuda_runtime.h>

extern "C" {
#include "engine/cuda/cuda_api.h"
}

extern "C" int ragd_cuda_device_count(char *why, size_t why_len) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (why && why_len) snprintf(why, why_len, "cudaGetDeviceCount: %s", cudaGetErrorString(e));
        cudaGetLastError();  // clear the non-sticky error
        return 0;
    }
    if (n == 0 && why && why_len) snprintf(why, why_len, "no CUDA device present");
    return n;
}

extern "C" int ragd_cuda_device_info(int ordinal, char *name, size_t name_len, size_t *total, size_t *free_bytes) {
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, ordinal);
    if (e != cudaSuccess) return (int)e;
    if (name && name_len) snprintf(name, name_len, "%s", p.name);
    e = cudaSetDevice(ordinal);
    if (e != cudaSuccess) return (int)e;
    size_t f = 0, t = 0;
    e = cudaMemGetInfo(&f, &t);
    if (e != cudaSuccess) return (int)e;
    if (total) *total = t;
    if (free_bytes) *free_bytes = f;
    return 0;
}

extern "C" int ragd_cuda_lib_versions(int *runtime, size_t *cublaslt) {
    int v = 0;
    cudaError_t e = cudaRuntimeGetVersion(&v);  // the runtime library's own; needs no device or driver
    if (runtime) *runtime = e == cudaSuccess ? v : 0;
    if (cublaslt) *cublaslt = cublasLtGetVersion();
    return e == cudaSuccess ? 0 : (int)e;
}
