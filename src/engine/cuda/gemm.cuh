// gemm.cuh — INTERNAL: the projections as cuBLASLt matmuls with pinned, split-K-free algorithms.
//
// Y[T, N] (+)= X[T, K] · W[N, K]^T (+ bias[N]), bf16 operands, f32 accumulation, Y bf16 or f32.
// ragd_gemm_init pins the REFERENCE algorithm (heuristic for T = max_batch_tokens, first candidate
// with no split-K and no reduction scheme that also passes cublasLtMatmulAlgoCheck at several T):
// without split-K each output element is reduced over K in the same order whatever T is, which is
// what makes the projections batch invariant.
//
// ragd_gemm_tune (optional, at startup) then picks a faster algorithm per range of T (buckets 32,
// 128, 512, 2048, 8192, max_T): the candidates are the heuristic's split-K-free ones for that T, timed on the
// device, and a winner is kept only if its output is BIT-IDENTICAL to the reference algorithm's on
// random data (on a full bucket and on a few odd rows at an offset). Measured on an H200, every
// split-K-free sm90 algorithm of cuBLASLt 13 accumulates in the same order (same bits), but this is
// checked on every start rather than assumed: a candidate that differs is never used.
//
// For T ≤ RAGD_GEMM_SKINNY_MAX_T the candidates also include ragd's own weight-streaming kernel
// (gemm_skinny.cu, two pipeline depths), verified the same way.
#ifndef RAGD_CUDA_GEMM_CUH
#define RAGD_CUDA_GEMM_CUH

#include "engine/cuda/cuda_util.cuh"

enum { RAGD_GEMM_MAX_BUCKETS = 16, RAGD_GEMM_SKINNY_MAX_T = 32, RAGD_GEMM_SKINNY_VARIANTS = 2 };

struct ragd_gemm {
    int N, K, out_f32, accumulate, bias, max_T;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;  // W, X, Y (column-major views of the row-major tensors)
    cublasLtMatmulAlgo_t algo;          // the reference algorithm
    int n_bucket;                       // 0: the reference serves every T
    int bucket_T[RAGD_GEMM_MAX_BUCKETS];  // ascending; bucket i serves T ≤ bucket_T[i] (last = max_T)
    cublasLtMatmulAlgo_t bucket_algo[RAGD_GEMM_MAX_BUCKETS];
    int bucket_skinny[RAGD_GEMM_MAX_BUCKETS];  // > 0: the bucket runs ragd_gemm_skinny variant k instead
    char info[192];
    char tune_info[1024];  // per bucket: T range, algorithm, µs (reference µs)
};

// Device scratch for ragd_gemm_tune (contents are overwritten): W ≥ N·K bf16; X ≥ max_T·K bf16;
// Y: y_bytes (timing uses T·N outputs, clamped to what fits; verification 3 × up to 2048 rows).
struct ragd_gemm_scratch {
    bf16 *W, *X;
    void *Y;
    size_t y_bytes;
};

// out_f32: Y is f32 (else bf16); accumulate: Y += (beta = 1); bias: bf16 bias epilogue.
int ragd_gemm_init(ragd_gemm *g, cublasLtHandle_t lt, int N, int K, int max_T, int out_f32, int accumulate,
                   int bias, size_t ws_size, ragd_cuda_err *cerr);
// Times and verifies per-T-bucket algorithms (see above); leaves the reference in place where no
// candidate beats it or none is bit-identical. Needs a non-legacy stream st (it captures CUDA graphs).
int ragd_gemm_tune(ragd_gemm *g, cublasLtHandle_t lt, const ragd_gemm_scratch *sc, void *ws, size_t ws_size,
                   cudaStream_t st, ragd_cuda_err *cerr);
// W: [N, K]; X: [T, K]; Y: [T, N]; bias: [N] or NULL.
int ragd_gemm_run(ragd_gemm *g, cublasLtHandle_t lt, const bf16 *W, const bf16 *X, void *Y, int T, const bf16 *bias,
                  void *ws, size_t ws_size, cudaStream_t st, ragd_cuda_err *cerr);
void ragd_gemm_free(ragd_gemm *g);

// gemm_skinny.cu: whether the kernel implements this shape (K % 64 == 0; no bf16 accumulation), and
// the kernel itself (variant 1..RAGD_GEMM_SKINNY_VARIANTS, 1 ≤ T ≤ RAGD_GEMM_SKINNY_MAX_T; bias only
// with bf16 output). Used through the tuner only.
int ragd_gemm_skinny_fits(int N, int K, int out_f32, int accumulate);
cudaError_t ragd_gemm_skinny(int variant, const bf16 *W, const bf16 *X, void *Y, const bf16 *bias, int T, int N,
                             int K, int out_f32, int accumulate, cudaStream_t st);

#endif
