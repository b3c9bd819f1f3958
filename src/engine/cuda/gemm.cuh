// gemm.cuh — INTERNAL: the projections as cuBLASLt matmuls with ONE pinned algorithm per shape.
//
// Y[T, N] (+)= X[T, K] · W[N, K]^T (+ bias[N]), bf16 operands, f32 accumulation, Y bf16 or f32.
// The algorithm is chosen once at creation (heuristic for T = max_batch_tokens, first candidate with
// no split-K and no reduction scheme that also passes cublasLtMatmulAlgoCheck at several T) and used
// for every T: each output element is then reduced over K in the same order whatever T is, which is
// what makes the projections batch invariant.
#ifndef RAGD_CUDA_GEMM_CUH
#define RAGD_CUDA_GEMM_CUH

#include "engine/cuda/cuda_util.cuh"

struct ragd_gemm {
    int N, K, out_f32, accumulate, bias;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;  // W, X, Y (column-major views of the row-major tensors)
    cublasLtMatmulAlgo_t algo;
    char info[192];
};

// out_f32: Y is f32 (else bf16); accumulate: Y += (beta = 1); bias: bf16 bias epilogue.
int ragd_gemm_init(ragd_gemm *g, cublasLtHandle_t lt, int N, int K, int max_T, int out_f32, int accumulate,
                   int bias, size_t ws_size, ragd_cuda_err *cerr);
// W: [N, K]; X: [T, K]; Y: [T, N]; bias: [N] or NULL.
int ragd_gemm_run(ragd_gemm *g, cublasLtHandle_t lt, const bf16 *W, const bf16 *X, void *Y, int T, const bf16 *bias,
                  void *ws, size_t ws_size, cudaStream_t st, ragd_cuda_err *cerr);
void ragd_gemm_free(ragd_gemm *g);

#endif
