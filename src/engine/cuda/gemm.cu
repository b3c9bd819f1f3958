// gemm.cu — cuBLASLt projections with pinned, split-K-free algorithms (see gemm.cuh): the
// reference algorithm per shape, and the startup tuning that adds faster, bit-identical algorithms
// per range of T.
#include <algorithm>
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
    g->N = N, g->K = K, g->out_f32 = out_f32, g->accumulate = accumulate, g->bias = bias, g->max_T = max_T;
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

// Y (+)= X·W^T over T rows with algorithm a; the layouts' column count is set to T. Returns cuBLAS's
// status (the callers decide whether a refusal is a device error).
static cublasStatus_t matmul(ragd_gemm *g, cublasLtHandle_t lt, const cublasLtMatmulAlgo_t *a, const bf16 *W,
                             const bf16 *X, void *Y, int T, void *ws, size_t ws_size, cudaStream_t st) {
    uint64_t cols = (uint64_t)T;
    cublasStatus_t s = cublasLtMatrixLayoutSetAttribute(g->lb, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatrixLayoutSetAttribute(g->lc, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    const float alpha = 1.f, beta = g->accumulate ? 1.f : 0.f;
    return cublasLtMatmul(lt, g->desc, &alpha, W, g->la, X, g->lb, &beta, Y, g->lc, Y, g->lc, a, ws, ws_size, st);
}

static const cublasLtMatmulAlgo_t *algo_for(const ragd_gemm *g, int T) {
    for (int i = 0; i < g->n_bucket; i++)
        if (T <= g->bucket_T[i]) return &g->bucket_algo[i];
    return &g->algo;
}

int ragd_gemm_run(ragd_gemm *g, cublasLtHandle_t lt, const bf16 *W, const bf16 *X, void *Y, int T, const bf16 *bias,
                  void *ws, size_t ws_size, cudaStream_t st, ragd_cuda_err *cerr) {
    for (int i = 0; i < g->n_bucket; i++)
        if (T <= g->bucket_T[i]) {
            if (g->bucket_skinny[i]) {
                RAGD_CK(ragd_gemm_skinny(g->bucket_skinny[i], W, X, Y, g->bias ? bias : nullptr, T, g->N, g->K,
                                         g->out_f32, g->accumulate, st));
                return RAGD_CUDA_OK;
            }
            break;
        }
    if (g->bias)
        RAGD_CKB(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    RAGD_CKB(matmul(g, lt, algo_for(g, T), W, X, Y, T, ws, ws_size, st));
    return RAGD_CUDA_OK;
}

// ---- startup tuning

namespace {

constexpr int kTuneMaxT = 16384;  // largest T timed (the top bucket, max_T, is timed at most there)

__device__ __forceinline__ uint32_t mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

// Deterministic pseudo-random fill: f32 values in [-1, 1), or bf16 pairs in [-scale, scale).
__global__ void fill_kernel(uint32_t *p, size_t n_words, uint32_t seed, int f32, float scale) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n_words; i += (size_t)gridDim.x * blockDim.x) {
        uint32_t h = mix32((uint32_t)i * 2654435761U ^ seed);
        if (f32) {
            p[i] = __float_as_uint(((float)(h >> 8) * (1.f / 8388608.f) - 1.f));
        } else {
            float a = scale * ((float)(h & 0xffff) * (1.f / 32768.f) - 1.f);
            float b = scale * ((float)(h >> 16) * (1.f / 32768.f) - 1.f);
            __nv_bfloat162 v = __floats2bfloat162_rn(a, b);
            p[i] = *(uint32_t *)&v;
        }
    }
}

__global__ void count_diff_kernel(const uint32_t *a, const uint32_t *b, size_t n_words, unsigned *count) {
    unsigned c = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n_words; i += (size_t)gridDim.x * blockDim.x)
        c += a[i] != b[i];
    if (c) atomicAdd(count, c);
}

struct Tuner {
    ragd_gemm *g;
    cublasLtHandle_t lt;
    const ragd_gemm_scratch *sc;
    void *ws;
    size_t ws_size;
    cudaStream_t st;
    ragd_cuda_err *cerr;
    size_t esz;  // bytes per output element
    cudaEvent_t e0, e1;

    bool valid(const cublasLtMatmulAlgo_t *a, int T) {
        if (set_cols(g, T, cerr)) return false;
        cublasLtMatmulHeuristicResult_t chk;
        return cublasLtMatmulAlgoCheck(lt, g->desc, g->la, g->lb, g->lc, g->lc, a, &chk) == CUBLAS_STATUS_SUCCESS &&
               chk.workspaceSize <= ws_size;
    }
    // One matmul on the scratch (or offset rows of it) with a cuBLASLt algorithm, or with the skinny
    // kernel's variant `skinny` (> 0; its bias is the scratch W, as the cuBLASLt descriptor's); a refusal
    // is returned, not made sticky.
    int skinny = 0;
    cublasStatus_t mm(const cublasLtMatmulAlgo_t *a, const bf16 *X, void *Y, int T) {
        if (skinny) {
            cudaError_t e = ragd_gemm_skinny(skinny, sc->W, X, Y, g->bias ? sc->W : nullptr, T, g->N, g->K, g->out_f32,
                                             g->accumulate, st);
            if (e != cudaSuccess) cudaGetLastError();
            return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_SUPPORTED;
        }
        return matmul(g, lt, a, sc->W, X, Y, T, ws, ws_size, st);
    }
    // GPU time of one call at T (µs), from a CUDA graph of `reps` calls (so host launch cost is not
    // measured); < 0 when the algorithm is refused.
    int time(const cublasLtMatmulAlgo_t *a, int T, int reps, double *us) {
        *us = -1.0;
        cudaGraph_t gr = nullptr;
        cudaGraphExec_t ge = nullptr;
        RAGD_CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
        bool ok = true;
        for (int r = 0; r < reps && ok; r++) ok = mm(a, sc->X, sc->Y, T) == CUBLAS_STATUS_SUCCESS;
        cudaError_t ce = cudaStreamEndCapture(st, &gr);
        if (!ok) {
            if (gr) cudaGraphDestroy(gr);
            cudaGetLastError();
            return RAGD_CUDA_OK;
        }
        RAGD_CK(ce);
        cudaError_t e = cudaGraphInstantiate(&ge, gr, 0);
        if (e == cudaSuccess) e = cudaGraphLaunch(ge, st);  // warm-up
        if (e == cudaSuccess) e = cudaEventRecord(e0, st);
        if (e == cudaSuccess) e = cudaGraphLaunch(ge, st);
        if (e == cudaSuccess) e = cudaEventRecord(e1, st);
        if (e == cudaSuccess) e = cudaEventSynchronize(e1);
        float ms = 0.f;
        if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, e0, e1);
        if (ge) cudaGraphExecDestroy(ge);
        cudaGraphDestroy(gr);
        RAGD_CK(e);
        *us = ms * 1000.0 / reps;
        return RAGD_CUDA_OK;
    }
    int fill(void *p, size_t bytes, uint32_t seed, int f32, float scale) {
        fill_kernel<<<264, 256, 0, st>>>((uint32_t *)p, bytes / 4, seed, f32, scale);
        RAGD_CK(cudaGetLastError());
        return RAGD_CUDA_OK;
    }
    // Number of differing 32-bit words between candidate and reference outputs: on all `rows` rows, and
    // on `n_lo` rows computed alone at row offset 3; *diff < 0 when the candidate was refused.
    int verify(const cublasLtMatmulAlgo_t *a, int rows, int n_lo, long *diff) {
        const size_t row_b = (size_t)g->N * esz, blk = (size_t)rows * row_b;
        char *Yr = (char *)sc->Y, *Yc = Yr + blk, *Y0 = Yc + blk;
        unsigned *cnt = (unsigned *)((char *)sc->Y + ((sc->y_bytes - 256) & ~(size_t)255));
        if (int rc = fill(Y0, blk, 0x5eed, g->out_f32, 1.f)) return rc;
        RAGD_CK(cudaMemcpyAsync(Yr, Y0, blk, cudaMemcpyDeviceToDevice, st));
        const int sk = skinny;
        skinny = 0;
        cublasStatus_t rs = mm(&g->algo, sc->X, Yr, rows);
        skinny = sk;
        RAGD_CKB(rs);
        RAGD_CK(cudaMemsetAsync(cnt, 0, 4, st));
        *diff = -1;
        RAGD_CK(cudaMemcpyAsync(Yc, Y0, blk, cudaMemcpyDeviceToDevice, st));
        if (mm(a, sc->X, Yc, rows) != CUBLAS_STATUS_SUCCESS) return RAGD_CUDA_OK;
        count_diff_kernel<<<264, 256, 0, st>>>((const uint32_t *)Yr, (const uint32_t *)Yc, blk / 4, cnt);
        RAGD_CK(cudaGetLastError());
        if (n_lo > 0 && n_lo + 3 <= rows) {
            RAGD_CK(cudaMemcpyAsync(Yc, Y0, blk, cudaMemcpyDeviceToDevice, st));
            if (mm(a, sc->X + 3 * (size_t)g->K, Yc + 3 * row_b, n_lo) != CUBLAS_STATUS_SUCCESS) return RAGD_CUDA_OK;
            count_diff_kernel<<<264, 256, 0, st>>>((const uint32_t *)(Yr + 3 * row_b), (const uint32_t *)(Yc + 3 * row_b),
                                                   (size_t)n_lo * row_b / 4, cnt);
            RAGD_CK(cudaGetLastError());
        }
        unsigned c = 0;
        RAGD_CK(cudaMemcpyAsync(&c, cnt, 4, cudaMemcpyDeviceToHost, st));
        RAGD_CK(cudaStreamSynchronize(st));
        *diff = (long)c;
        return RAGD_CUDA_OK;
    }
};

void describe(const cublasLtMatmulAlgo_t *a, char *buf, size_t n) {
    snprintf(buf, n, "algo %u tile %u stages %u custom %u", algo_attr(a, CUBLASLT_ALGO_CONFIG_ID),
             algo_attr(a, CUBLASLT_ALGO_CONFIG_TILE_ID), algo_attr(a, CUBLASLT_ALGO_CONFIG_STAGES_ID),
             algo_attr(a, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION));
}

}  // namespace

int ragd_gemm_tune(ragd_gemm *g, cublasLtHandle_t lt, const ragd_gemm_scratch *sc, void *ws, size_t ws_size,
                   cudaStream_t st, ragd_cuda_err *cerr) {
    Tuner tu{g, lt, sc, ws, ws_size, st, cerr, (size_t)(g->out_f32 ? 4 : 2), nullptr, nullptr};
    g->n_bucket = 0;
    const size_t row_b = (size_t)g->N * tu.esz;
    const int rows_max = (int)std::min<size_t>(2048, sc->y_bytes > 512 ? (sc->y_bytes - 512) / (3 * row_b) : 0);
    const int fit_T = (int)std::min<size_t>((size_t)g->max_T, sc->y_bytes / row_b);
    if (rows_max < 4 || fit_T < 1) {
        snprintf(g->tune_info, sizeof g->tune_info, "not tuned (scratch too small): reference for every T");
        return RAGD_CUDA_OK;
    }
    if (int rc = tu.fill(sc->W, (size_t)g->N * g->K * 2, 0x1234, 0, 0.05f)) return rc;
    if (int rc = tu.fill(sc->X, (size_t)g->max_T * g->K * 2, 0x4321, 0, 1.f)) return rc;
    if (g->bias)
        RAGD_CKB(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &sc->W, sizeof sc->W));
    RAGD_CK(cudaEventCreate(&tu.e0));
    RAGD_CK(cudaEventCreate(&tu.e1));

    // buckets 32, 128, 512, 2048, 8192, max_T (a factor 4 apart: neighbours of a factor 2 mostly
    // picked algorithms within a few % of each other — buckets 8 and 16 were measured to pick the same
    // or within 3 % of bucket 32's — and each bucket costs startup time); timed at min(T, kTuneMaxT):
    // above that the ranking of the algorithms no longer changes much
    // (plus a bucket of its own for T = 1, one decoding sequence: there the best algorithm differs most,
    // e.g. 86 vs 146 µs on the lm head)
    int Tb[RAGD_GEMM_MAX_BUCKETS], nb = 0;
    if (g->max_T > 1) Tb[nb++] = 1;
    for (int t = 32; t < g->max_T && t <= 8192 && nb < RAGD_GEMM_MAX_BUCKETS - 1; t *= 4) Tb[nb++] = t;
    Tb[nb++] = g->max_T;
    cublasLtMatmulPreference_t pref;
    RAGD_CKB(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t wsb = ws_size;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb);
    int rc = RAGD_CUDA_OK, n_differ = 0, n_skinny_differ = 0;
    double us_win[RAGD_GEMM_MAX_BUCKETS], us_ref[RAGD_GEMM_MAX_BUCKETS];
    cublasLtMatmulAlgo_t prev = g->algo;
    int prev_skinny = 0;
    int last_Tt = 0;
    const bool skinny_shape = ragd_gemm_skinny_fits(g->N, g->K, g->out_f32, g->accumulate) != 0;
    // largest T first: each bucket also tries the winner of the bucket above (the heuristic's list
    // for a tiny T may hold only split-K algorithms)
    for (int b = nb - 1; b >= 0 && rc == RAGD_CUDA_OK; b--) {
        const int hi = Tb[b], lo = b ? Tb[b - 1] + 1 : 1, mid = ((lo + hi) / 2) | 1;
        g->bucket_skinny[b] = 0;
        // timed at the bucket's top T (or what the scratch holds)
        // repetitions: ~0.5 ms of GPU time per candidate at most (estimated at 400 TFLOP/s + 3 TB/s), so a
        // wide shape (an lm head takes ~0.3 ms a call at T = 256) cannot stretch startup; the layer shapes
        // keep their 20 repetitions up to T = 512
        const int Tt = std::min(std::min(hi, kTuneMaxT), fit_T);
        const double est_us = 2.0 * g->N * g->K * Tt / 4e8 + 2.0 * g->N * g->K / 3e6;
        const int reps = std::max(2, std::min(std::min(20, 16384 / Tt), (int)(500.0 / est_us)));
        if (b < nb - 1 && Tt == last_Tt) {  // timed at the same T as the bucket above: same winner
            g->bucket_T[b] = hi;
            g->bucket_algo[b] = prev;
            g->bucket_skinny[b] = prev_skinny;
            us_win[b] = us_win[b + 1], us_ref[b] = us_ref[b + 1];
            continue;
        }
        last_Tt = Tt;
        // candidates: the reference, the previous bucket's winner, the heuristic's split-K-free best,
        // and for small T the skinny kernel's variants (skin[i] > 0)
        enum { NC = 8 + RAGD_GEMM_SKINNY_VARIANTS };
        cublasLtMatmulAlgo_t cand[NC];
        int skin[NC];
        int nc = 0;
        auto add = [&](const cublasLtMatmulAlgo_t &a) {
            if (nc == NC - RAGD_GEMM_SKINNY_VARIANTS) return;
            for (int i = 0; i < nc; i++)
                if (!skin[i] && !memcmp(&cand[i], &a, sizeof a)) return;
            if (algo_attr(&a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM) > 1 ||
                algo_attr(&a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME) != CUBLASLT_REDUCTION_SCHEME_NONE)
                return;
            if (!tu.valid(&a, lo) || !tu.valid(&a, mid) || !tu.valid(&a, hi)) return;
            skin[nc] = 0;
            cand[nc++] = a;
        };
        add(g->algo);
        add(prev);
        if (set_cols(g, hi, cerr)) {
            rc = RAGD_CUDA_EDEVICE;
            break;
        }
        cublasLtMatmulHeuristicResult_t res[16];
        int n = 0;
        if (cublasLtMatmulAlgoGetHeuristic(lt, g->desc, g->la, g->lb, g->lc, g->lc, pref, 16, res, &n) ==
            CUBLAS_STATUS_SUCCESS)
            for (int i = 0; i < n; i++)
                if (res[i].state == CUBLAS_STATUS_SUCCESS) add(res[i].algo);
        if (skinny_shape && hi <= RAGD_GEMM_SKINNY_MAX_T)
            for (int v = 1; v <= RAGD_GEMM_SKINNY_VARIANTS; v++) {
                skin[nc] = v;
                cand[nc++] = g->algo;  // (unused by the skinny kernel)
            }
        double us[NC];
        int order[NC];
        for (int i = 0; i < nc && rc == RAGD_CUDA_OK; i++) {
            tu.skinny = skin[i];
            rc = tu.time(&cand[i], Tt, reps, &us[i]);
            order[i] = i;
        }
        tu.skinny = 0;
        if (rc) break;
        for (int i = 1; i < nc; i++)  // insertion sort by time (refused ones last)
            for (int k = i; k > 0; k--) {
                double a = us[order[k - 1]] < 0 ? 1e30 : us[order[k - 1]], c = us[order[k]] < 0 ? 1e30 : us[order[k]];
                if (a <= c) break;
                std::swap(order[k - 1], order[k]);
            }
        int win = 0;  // the reference (cand[0]) unless a faster one verifies
        for (int k = 0; k < nc; k++) {
            int i = order[k];
            if (us[i] < 0) break;
            if (i == 0) break;
            long diff = 0;
            const int rows = std::min(hi, rows_max);
            tu.skinny = skin[i];
            rc = tu.verify(&cand[i], rows, std::max(1, std::min(lo, rows - 3)), &diff);
            tu.skinny = 0;
            if (rc) break;
            if (diff == 0) {
                win = i;
                break;
            }
            if (diff > 0) (skin[i] ? n_skinny_differ : n_differ)++;  // (< 0: refused at the verification size)
        }
        if (rc) break;
        g->bucket_T[b] = hi;
        g->bucket_algo[b] = cand[win];
        g->bucket_skinny[b] = skin[win];
        us_win[b] = us[win], us_ref[b] = us[0];
        prev = skin[win] ? g->algo : cand[win];
        prev_skinny = skin[win];
    }
    cublasLtMatmulPreferenceDestroy(pref);
    cudaEventDestroy(tu.e0);
    cudaEventDestroy(tu.e1);
    if (rc) {
        g->n_bucket = 0;
        return rc;
    }
    g->n_bucket = nb;
    size_t used = 0;
    for (int b = 0; b < nb; b++) {
        char d[96];
        if (g->bucket_skinny[b])
            snprintf(d, sizeof d, "skinny v%d", g->bucket_skinny[b]);
        else
            describe(&g->bucket_algo[b], d, sizeof d);
        int w = snprintf(g->tune_info + used, sizeof g->tune_info - used, "%sT<=%d: %s %.1fus (ref %.1f)", b ? "; " : "",
                         g->bucket_T[b], d, us_win[b], us_ref[b]);
        if (w > 0) used = std::min(sizeof g->tune_info - 1, used + (size_t)w);
    }
    if (n_differ || n_skinny_differ) {
        size_t l = strlen(g->tune_info);
        snprintf(g->tune_info + l, sizeof g->tune_info - l,
                 "; faster candidates rejected as not bit-identical: %d cuBLASLt, %d skinny", n_differ, n_skinny_differ);
    }
    return set_cols(g, g->max_T, cerr);
}

void ragd_gemm_free(ragd_gemm *g) {
    if (g->la) cublasLtMatrixLayoutDestroy(g->la);
    if (g->lb) cublasLtMatrixLayoutDestroy(g->lb);
    if (g->lc) cublasLtMatrixLayoutDestroy(g->lc);
    if (g->desc) cublasLtMatmulDescDestroy(g->desc);
    memset(g, 0, sizeof *g);
}
