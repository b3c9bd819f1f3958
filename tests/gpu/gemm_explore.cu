// gemm_explore.cu — measurement tool (not a test): for each projection shape of the Qwen3-0.6B
// layer, list the split-K-free cuBLASLt algorithms (from the heuristic at several T and from a
// bounded enumeration of algo ids × tiles × stages), and for each one print
//   - whether its output is bit-identical to the pinned algorithm's (the one gemm.cu picks for
//     max_T = 32768) at T = 32768 and on the first 20 / 64 rows alone,
//   - its time at T = 20, 64, 256, 2048, 32768 (median of 15 launches, µs).
// The question it answers: is there an algorithm much faster at small T whose every output bit equals
// the pinned one's, so the engine may switch algorithms by T without losing batch invariance?
// Usage: gemm_explore [max_candidates_per_shape] [lm]
// With "lm": the lm head instead (K = 1024, f32 out, max T = 1024) at the real vocabulary N = 151,669 and
// padded to 151,680 / 151,936: does a padded N get sm90 kernels, and how fast are they?
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "engine/cuda/gemm.cuh"
#include "ck.cuh"


static const int kMaxT = 32768;
static const size_t kWs = 32u << 20;

static uint32_t attr(const cublasLtMatmulAlgo_t *a, cublasLtMatmulAlgoConfigAttributes_t w) {
    uint32_t v = 0;
    size_t n = 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(a, w, &v, sizeof v, &n) != CUBLAS_STATUS_SUCCESS) return 0xffffffffu;
    return v;
}

static void set_T(ragd_gemm *g, int T) {
    uint64_t c = (uint64_t)T;
    CKB(cublasLtMatrixLayoutSetAttribute(g->lb, CUBLASLT_MATRIX_LAYOUT_COLS, &c, sizeof c));
    CKB(cublasLtMatrixLayoutSetAttribute(g->lc, CUBLASLT_MATRIX_LAYOUT_COLS, &c, sizeof c));
}

static bool valid_all_T(cublasLtHandle_t lt, ragd_gemm *g, const cublasLtMatmulAlgo_t *a) {
    const int Ts[] = {1, 7, 20, 64, 333, 4096, g->max_T};
    for (int T : Ts) {
        if (T > g->max_T) continue;
        set_T(g, T);
        cublasLtMatmulHeuristicResult_t chk;
        if (cublasLtMatmulAlgoCheck(lt, g->desc, g->la, g->lb, g->lc, g->lc, a, &chk) != CUBLAS_STATUS_SUCCESS ||
            chk.workspaceSize > kWs)
            return false;
    }
    return true;
}

static bool same_algo(const cublasLtMatmulAlgo_t &a, const cublasLtMatmulAlgo_t &b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

static void describe(const cublasLtMatmulAlgo_t *a, char *buf, size_t n) {
    snprintf(buf, n, "id %u tile %u st %u swz %u cus %u cl %u", attr(a, CUBLASLT_ALGO_CONFIG_ID),
             attr(a, CUBLASLT_ALGO_CONFIG_TILE_ID), attr(a, CUBLASLT_ALGO_CONFIG_STAGES_ID),
             attr(a, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING), attr(a, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION),
             attr(a, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID));
}

struct Shape {
    const char *name;
    int N, K, out_f32, acc, maxT;
};

int main(int argc, char **argv) {
    int max_cand = argc > 1 ? atoi(argv[1]) : 80;
    cublasLtHandle_t lt;
    CKB(cublasLtCreate(&lt));
    void *ws;
    CK(cudaMalloc(&ws, kWs));
    cudaStream_t st;
    CK(cudaStreamCreate(&st));
    ragd_cuda_err cerr_s = {};
    ragd_cuda_err *cerr = &cerr_s;
    const bool lm = argc > 2 && !strcmp(argv[2], "lm");
    const Shape layer_shapes[] = {{"qkv", 4096, 1024, 0, 0, kMaxT}, {"o", 1024, 2048, 1, 1, kMaxT},
                                  {"gate_up", 6144, 1024, 0, 0, kMaxT}, {"down", 1024, 3072, 1, 1, kMaxT}};
    const Shape lm_shapes[] = {{"lm", 151669, 1024, 1, 0, 1024}, {"lm_pad16", 151680, 1024, 1, 0, 1024},
                               {"lm_pad256", 151936, 1024, 1, 0, 1024}};
    std::vector<Shape> shapes(lm ? lm_shapes : layer_shapes, lm ? lm_shapes + 3 : layer_shapes + 4);
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.f, 1.f);
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (const Shape &sh : shapes) {
        ragd_gemm g;
        const int maxT = sh.maxT;
        if (ragd_gemm_init(&g, lt, sh.N, sh.K, maxT, sh.out_f32, sh.acc, 0, kWs, cerr)) {
            fprintf(stderr, "init %s: %s\n", sh.name, cerr->msg);
            return 2;
        }
        printf("\n== %s (N %d, K %d, out %s%s): pinned: %s\n", sh.name, sh.N, sh.K, sh.out_f32 ? "f32" : "bf16",
               sh.acc ? " +=" : "", g.info);
        // inputs
        std::vector<__nv_bfloat16> hW((size_t)sh.N * sh.K), hX((size_t)maxT * sh.K);
        for (auto &v : hW) v = __float2bfloat16(0.03f * nd(rng));
        for (auto &v : hX) v = __float2bfloat16(nd(rng));
        const size_t ysz = (size_t)maxT * sh.N * (sh.out_f32 ? 4 : 2);
        std::vector<float> hY0((size_t)maxT * sh.N);
        for (auto &v : hY0) v = nd(rng);
        __nv_bfloat16 *W, *X;
        void *Y, *Y0, *Yref;
        CK(cudaMalloc(&W, hW.size() * 2));
        CK(cudaMalloc(&X, hX.size() * 2));
        CK(cudaMalloc(&Y, ysz));
        CK(cudaMalloc(&Y0, ysz));
        CK(cudaMalloc(&Yref, ysz));
        CK(cudaMemcpy(W, hW.data(), hW.size() * 2, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(X, hX.data(), hX.size() * 2, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(Y0, hY0.data(), ysz, cudaMemcpyHostToDevice));  // (bf16 outputs: any bits will do)
        CK(cudaMemcpy(Yref, Y0, ysz, cudaMemcpyDeviceToDevice));
        if (ragd_gemm_run(&g, lt, W, X, Yref, maxT, nullptr, ws, kWs, st, cerr)) {
            fprintf(stderr, "run: %s\n", cerr->msg);
            return 2;
        }
        CK(cudaStreamSynchronize(st));
        std::vector<unsigned char> ref(ysz), got(ysz);
        CK(cudaMemcpy(ref.data(), Yref, ysz, cudaMemcpyDeviceToHost));

        // candidates: heuristic at several T, then a bounded enumeration
        std::vector<cublasLtMatmulAlgo_t> cand;
        cand.push_back(g.algo);
        auto add = [&](const cublasLtMatmulAlgo_t &a) {
            if ((int)cand.size() >= max_cand) return;
            uint32_t sk = attr(&a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM), rs = attr(&a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME);
            if ((sk != 0 && sk != 1 && sk != 0xffffffffu) || (rs != CUBLASLT_REDUCTION_SCHEME_NONE && rs != 0xffffffffu)) return;
            for (auto &c : cand)
                if (same_algo(c, a)) return;
            if (!valid_all_T(lt, &g, &a)) return;
            cand.push_back(a);
        };
        cublasLtMatmulPreference_t pref;
        CKB(cublasLtMatmulPreferenceCreate(&pref));
        uint64_t wsb = kWs;
        CKB(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb));
        for (int T : {8, 20, 64, 128, 256, 1024, 4096, kMaxT}) {
            if (T > maxT) continue;
            set_T(&g, T);
            cublasLtMatmulHeuristicResult_t res[64];
            int n = 0;
            if (cublasLtMatmulAlgoGetHeuristic(lt, g.desc, g.la, g.lb, g.lc, g.lc, pref, 64, res, &n) != CUBLAS_STATUS_SUCCESS) continue;
            for (int i = 0; i < n; i++)
                if (res[i].state == CUBLAS_STATUS_SUCCESS) add(res[i].algo);
        }
        int n_heur = (int)cand.size();
        // enumeration: every algo id, every tile, every stage count, split-K off, default swizzle/custom
        int ids[128], nid = 0;
        set_T(&g, 64);
        if (cublasLtMatmulAlgoGetIds(lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_16BF, CUDA_R_16BF,
                                     sh.out_f32 ? CUDA_R_32F : CUDA_R_16BF, sh.out_f32 ? CUDA_R_32F : CUDA_R_16BF, 128,
                                     ids, &nid) == CUBLAS_STATUS_SUCCESS) {
            for (int ii = 0; ii < nid && (int)cand.size() < max_cand; ii++) {
                cublasLtMatmulAlgo_t a;
                if (cublasLtMatmulAlgoInit(lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_16BF, CUDA_R_16BF,
                                           sh.out_f32 ? CUDA_R_32F : CUDA_R_16BF, sh.out_f32 ? CUDA_R_32F : CUDA_R_16BF,
                                           ids[ii], &a) != CUBLAS_STATUS_SUCCESS)
                    continue;
                size_t sz = 0;
                cublasLtMatmulAlgoCapGetAttribute(&a, CUBLASLT_ALGO_CAP_TILE_IDS, nullptr, 0, &sz);
                std::vector<uint32_t> tiles(sz / 4 ? sz / 4 : 1, 0);
                if (sz) cublasLtMatmulAlgoCapGetAttribute(&a, CUBLASLT_ALGO_CAP_TILE_IDS, tiles.data(), sz, &sz);
                sz = 0;
                cublasLtMatmulAlgoCapGetAttribute(&a, CUBLASLT_ALGO_CAP_STAGES_IDS, nullptr, 0, &sz);
                std::vector<uint32_t> stages(sz / 4 ? sz / 4 : 1, 0);
                if (sz) cublasLtMatmulAlgoCapGetAttribute(&a, CUBLASLT_ALGO_CAP_STAGES_IDS, stages.data(), sz, &sz);
                for (uint32_t t : tiles)
                    for (uint32_t s : stages) {
                        cublasLtMatmulAlgo_t b = a;
                        cublasLtMatmulAlgoConfigSetAttribute(&b, CUBLASLT_ALGO_CONFIG_TILE_ID, &t, sizeof t);
                        cublasLtMatmulAlgoConfigSetAttribute(&b, CUBLASLT_ALGO_CONFIG_STAGES_ID, &s, sizeof s);
                        add(b);
                    }
            }
        }
        cublasLtMatmulPreferenceDestroy(pref);
        printf("%d candidates (%d from heuristics), %d algo ids\n", (int)cand.size(), n_heur, nid);
        const int Tt[5] = {lm ? 1 : 20, lm ? 20 : 64, lm ? 64 : 256, lm ? 256 : 2048, maxT};
        printf("%-3s %-48s %6s %6s %6s | T=%-6d T=%-6d T=%-6d T=%-6d T=%-6d (us)\n", "#", "algo", "bitmax", "bit20",
               "bit64", Tt[0], Tt[1], Tt[2], Tt[3], Tt[4]);
        for (size_t ci = 0; ci < cand.size(); ci++) {
            g.algo = cand[ci];
            char d[128];
            describe(&cand[ci], d, sizeof d);
            // bit checks
            const char *b[3];
            const int Tb[3] = {maxT, 20, 64};
            for (int k = 0; k < 3; k++) {
                CK(cudaMemcpy(Y, Y0, ysz, cudaMemcpyDeviceToDevice));
                int T = Tb[k];
                // the small-T calls take rows starting at 1000 (an unaligned place in the big batch)
                size_t off = T == maxT ? 0 : (lm ? 900 : 1000);
                size_t ob = off * sh.N * (sh.out_f32 ? 4 : 2);
                if (ragd_gemm_run(&g, lt, W, X + off * sh.K, (char *)Y + ob, T, nullptr, ws, kWs, st, cerr)) {
                    b[k] = "ERR";
                    cerr->dead = 0;
                    continue;
                }
                CK(cudaStreamSynchronize(st));
                size_t nb = (size_t)T * sh.N * (sh.out_f32 ? 4 : 2);
                CK(cudaMemcpy(got.data(), (char *)Y + ob, nb, cudaMemcpyDeviceToHost));
                b[k] = memcmp(got.data(), ref.data() + ob, nb) ? "DIFF" : "same";
            }
            double us[5];
            for (int k = 0; k < 5; k++) {
                std::vector<float> v;
                for (int r = 0; r < 18; r++) {
                    CK(cudaEventRecord(e0, st));
                    if (ragd_gemm_run(&g, lt, W, X, Y, Tt[k], nullptr, ws, kWs, st, cerr)) {
                        cerr->dead = 0;
                        v.push_back(-1);
                        break;
                    }
                    CK(cudaEventRecord(e1, st));
                    CK(cudaEventSynchronize(e1));
                    float ms;
                    CK(cudaEventElapsedTime(&ms, e0, e1));
                    if (r >= 3) v.push_back(ms);
                }
                std::sort(v.begin(), v.end());
                us[k] = v[v.size() / 2] * 1000.0;
            }
            printf("%-3zu %-48s %6s %6s %6s | %8.1f %8.1f %8.1f %8.1f %8.1f  (%.0f TF/s at max T)\n", ci, d, b[0], b[1],
                   b[2], us[0], us[1], us[2], us[3], us[4], 2.0 * maxT * sh.N * sh.K / (us[4] * 1e-6) / 1e12);
            fflush(stdout);
        }
        CK(cudaFree(W));
        CK(cudaFree(X));
        CK(cudaFree(Y));
        CK(cudaFree(Y0));
        CK(cudaFree(Yref));
        ragd_gemm_free(&g);
    }
    return 0;
}
