// gemm.cu — cuBLASLt projections with a pinned, split-K-free algorithm per shape (see gemm.cuh).
#include <cstring>

#include "engine/cuda/gemm.cuh"

static int set_cols(ragd_gemm *g, int T, ragd_cuda_err *cerr) {
    uint64_t cols = (uint64_t)T;
    RAGD_CKB(cublasLtMatrixLayoutSetAttribute(g->lb, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols));
    RAGD_CKB(cublasLtMatrixLayoutSetAttribute(g->lc, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols));
    return RAGD_CUDA_OK;
}

static uint32_t algo_attr(const cublasLtMatmulAlgo_t *a, cublasLtMatmulAlgoConfigAttributes_t which) {
    uint32_t v = 0;
    size_t written = 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(a, which, &v, sizeof v, &written) != CUBLAS_STATUS_SUCCESS) return 0;
    return v;
}

int ragd_gemm_init(ragd_gemm *g, cublasLtHandle_t lt, int N, int K, int max_T, int out_f32, int accumulate,
                   int bias, size_t ws_size, ragd_cuda_err *cerr) {
    memset(g, 0, sizeof *g);
    g->N = N, g->K = K, g->out_f32 = out_f32, g->accumulate = accumulate, g->bias = bias;
    RAGD_CKB(cublasLtMatmulDescCreate(&g->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    RAGD_CKB(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    RAGD_CKB(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (bias) {
        cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
        cudaDataType_t bt = CUDA_R_16BF;
        RAGD_CKB(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
        RAGD_CKB(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
    }
    cudaDataType_t yt = out_f32 ? CUDA_R_32F : CUDA_R_16BF;
    RAGD_CKB(cublasLtMatrixLayoutCreate(&g->la, CUDA_R_16BF, K, N, K));      // W: col-major K×N
    RAGD_CKB(cublasLtMatrixLayoutCreate(&g->lb, CUDA_R_16BF, K, max_T, K));  // X: col-major K×T
    RAGD_CKB(cublasLtMatrixLayoutCreate(&g->lc, yt, N, max_T, N));           // Y: col-major N×T

    cublasLtMatmulPreference_t pref;
    RAGD_CKB(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t wsb = ws_size;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb);
    enum { NCAND = 32 };
    cublasLtMatmulHeuristicResult_t res[NCAND];
    int n = 0;
    cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(lt, g->desc, g->la, g->lb, g->lc, g->lc, pref, NCAND, res, &n);
    cublasLtMatmulPreferenceDestroy(pref);
    RAGD_CKB(hs);
    static const int probe_T[] = {1, 7, 64, 333, 4096};
    for (int i = 0; i < n; i++) {
        if (res[i].state != CUBLAS_STATUS_SUCCESS || res[i].workspaceSize > ws_size) continue;
        if (algo_attr(&res[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM) > 1) continue;
        if (algo_attr(&res[i].algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME) != CUBLASLT_REDUCTION_SCHEME_NONE) continue;
        bool ok = true;
        for (int T : probe_T) {
            if (T > max_T) continue;
            if (set_cols(g, T, cerr)) return RAGD_CUDA_EDEVICE;
            cublasLtMatmulHeuristicResult_t chk;
            if (cublasLtMatmulAlgoCheck(lt, g->desc, g->la, g->lb, g->lc, g->lc, &res[i].algo, &chk) !=
                    CUBLAS_STATUS_SUCCESS ||
                chk.workspaceSize > ws_size) {
                ok = false;
                break;
            }
        }
        if (!ok) continue;
        g->algo = res[i].algo;
        snprintf(g->info, sizeof g->info, "N=%d K=%d out=%s: algo %u tile %u stages %u swizzle %u custom %u (candidate %d of %d)",
                 N, K, out_f32 ? "f32" : "bf16", algo_attr(&g->algo, CUBLASLT_ALGO_CONFIG_ID),
                 algo_attr(&g->algo, CUBLASLT_ALGO_CONFIG_TILE_ID), algo_attr(&g->algo, CUBLASLT_ALGO_CONFIG_STAGES_ID),
                 algo_attr(&g->algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING),
                 algo_attr(&g->algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION), i + 1, n);
        return set_cols(g, max_T, cerr);
    }
    return ragd_cuda_fail(cerr, "cublasLtMatmulAlgoGetHeuristic", "no split-K-free algorithm valid for every batch size",
                          __FILE__, __LINE__);
}

int ragd_gemm_run(ragd_gemm *g, cublasLtHandle_t lt, const bf16 *W, const bf16 *X, void *Y, int T, const bf16 *bias,
                  void *ws, size_t ws_size, cudaStream_t st, ragd_cuda_err *cerr) {
    if (set_cols(g, T, cerr)) return RAGD_CUDA_EDEVICE;
    if (g->bias)
        RAGD_CKB(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    const float alpha = 1.f, beta = g->accumulate ? 1.f : 0.f;
    RAGD_CKB(cublasLtMatmul(lt, g->desc, &alpha, W, g->la, X, g->lb, &beta, Y, g->lc, Y, g->lc, &g->algo, ws, ws_size,
                            st));
    return RAGD_CUDA_OK;
}

void ragd_gemm_free(ragd_gemm *g) {
    if (g->la) cublasLtMatrixLayoutDestroy(g->la);
    if (g->lb) cublasLtMatrixLayoutDestroy(g->lb);
    if (g->lc) cublasLtMatrixLayoutDestroy(g->lc);
    if (g->desc) cublasLtMatmulDescDestroy(g->desc);
    memset(g, 0, sizeof *g);
}
