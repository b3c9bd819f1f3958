// test_sample.cu — the CUDA sampler (ragd_k_sample, engine/cuda/sample.cu) against the C reference
// (ragd_sample_row, engine/sample.c, compiled into this test) BIT FOR BIT: token, nonfinite, logprob
// bits, n_top, every top id and top logprob bit, n_kept. Rows: V in {1, 7, 1000, 151669}, logits ~
// N(0, σ²) with σ in {1, 5, 30}, coarse grids (many exact ties), mostly -inf, NaN / +Inf, ±1e38, a lone
// -0 maximum (lse == 0: the sign of a zero must not show), bans (of the maximum too), every parameter
// combination including greedy; batches of 1..256 rows with aligned and unaligned row strides and some
// inactive rows, whose outputs must keep their poison bytes.
// Also: the launcher's argument checks, and a CUDA-graph replay giving the same bits.
// Prints `sample: N rows, M mismatches` and exits 1 on any mismatch.
//   --quick   fewer and smaller batches (for compute-sanitizer --tool memcheck / racecheck)
//   --bench   timings at V = 151,669 (CUDA events, median of 100 runs after 10 warm-up runs)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "ck.cuh"
#include "engine/cuda/kernels.h"

#define _Noreturn __attribute__((noreturn)) // common.h is C11; the declarations are plain C
extern "C" {
#include "engine/engine.h"
}

static std::mt19937_64 rng(20261202);
static int rnd_int(int n) { return (int)(rng() % (uint64_t)n); }
static double rnd_normal() {
    static std::normal_distribution<double> nd(0.0, 1.0);
    return nd(rng);
}

// one row of logits, of one of several kinds
static void fill_row(float *x, int V, int kind) {
    const float sigmas[3] = {1, 5, 30};
    const float s = sigmas[rnd_int(3)];
    for (int i = 0; i < V; i++) x[i] = (float)(s * rnd_normal());
    switch (kind) {
    case 1: // coarse grid: many exact ties
        for (int i = 0; i < V; i++) x[i] = std::round(x[i] * 2 / s) * 0.5f;
        break;
    case 2: // mostly -inf, a few finite values (sometimes one)
        for (int i = 0; i < V; i++)
            if (rnd_int(64)) x[i] = -INFINITY;
        x[rnd_int(V)] = 1.5f;
        break;
    case 3: // one NaN or +Inf
        x[rnd_int(V)] = rnd_int(2) ? NAN : INFINITY;
        break;
    case 4: // a few ±1e38
        for (int j = 0; j < 3; j++) x[rnd_int(V)] = rnd_int(2) ? 1e38f : -1e38f;
        break;
    case 5: // all equal
        for (int i = 0; i < V; i++) x[i] = 0.25f;
        break;
    case 6: // all -inf
        for (int i = 0; i < V; i++) x[i] = -INFINITY;
        break;
    case 7: // tiny spread (every mass near 1: large buckets)
        for (int i = 0; i < V; i++) x[i] = 3.0f + (float)(1e-4 * rnd_normal());
        break;
    case 8: // a -0 maximum far above the rest: lse == 0 exactly, so lp(-0) would show the sign
        for (int i = 0; i < V; i++) x[i] = -40.0f - std::fabs(x[i]);
        x[rnd_int(V)] = -0.0f;
        break;
    default:
        break;
    }
}

static ragd_sample_params rand_params(const float *x, int V) {
    const float temps[] = {0, 0, 0.3f, 0.7f, 1, 1.5f, 1e-3f, 1e-39f, 1e30f};
    const int topk[] = {0, 0, 1, 2, 5, 20, 50, 1000, 5000};
    const float topp[] = {1, 1, 0.95f, 0.9f, 0.5f, 0.1f, 1e-6f};
    const float minp[] = {0, 0, 0.02f, 0.1f, 0.5f, 1};
    ragd_sample_params p;
    memset(&p, 0, sizeof p);
    p.temperature = temps[rnd_int(9)];
    p.top_k = topk[rnd_int(9)];
    p.top_p = topp[rnd_int(7)];
    p.min_p = minp[rnd_int(6)];
    p.seed = rng();
    p.counter = rng() % 4096;
    p.want_logprob = rnd_int(2);
    p.n_top = rnd_int(3) ? 0 : rnd_int(RAGD_SAMPLE_MAX_TOP + 1);
    p.active = 1;
    if (rnd_int(4) == 0) {
        p.n_ban = 1 + rnd_int(RAGD_SAMPLE_MAX_BAN);
        for (int j = 0; j < p.n_ban; j++) p.ban[j] = rnd_int(V);
        if (rnd_int(2)) p.ban[0] = (int32_t)(std::max_element(x, x + V) - x); // the maximum
    }
    return p;
}

static int g_rows = 0, g_bad = 0;

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static void report(int batch, int r, int V, const ragd_sample_params &p, const ragd_sample_out &g,
                   const ragd_sample_out &c) {
    if (g_bad > 12) return;
    fprintf(stderr,
            "MISMATCH batch %d row %d V %d: T %g top_k %d top_p %g min_p %g lp %d n_top %d n_ban %d\n"
            "  gpu: token %d nonfinite %d logprob %a n_top %d n_kept %d\n"
            "  cpu: token %d nonfinite %d logprob %a n_top %d n_kept %d\n",
            batch, r, V, (double)p.temperature, p.top_k, (double)p.top_p, (double)p.min_p, p.want_logprob, p.n_top,
            p.n_ban, g.token, g.nonfinite, (double)g.logprob, g.n_top, g.n_kept, c.token, c.nonfinite,
            (double)c.logprob, c.n_top, c.n_kept);
    for (int j = 0; j < RAGD_SAMPLE_MAX_TOP; j++)
        if (g.top_ids[j] != c.top_ids[j] || fbits(g.top_lp[j]) != fbits(c.top_lp[j]))
            fprintf(stderr, "  top %d: gpu %d %a, cpu %d %a\n", j, g.top_ids[j], (double)g.top_lp[j], c.top_ids[j],
                    (double)c.top_lp[j]);
}

// One batch: n_rows rows of V logits with stride ld; inactive rows keep their poison.
static void run_batch(int batch, int V, int n_rows, size_t ld, ragd_sample_ws *cws, bool graph) {
    std::vector<float> x((size_t)n_rows * ld, 7.0f);
    std::vector<ragd_sample_params> P(n_rows);
    for (int r = 0; r < n_rows; r++) {
        float *row = &x[(size_t)r * ld];
        int kind = rnd_int(18);
        fill_row(row, V, kind < 9 ? 0 : kind - 9);
        P[r] = rand_params(row, V);
        if (rnd_int(8) == 0) P[r].active = 0;
    }
    float *dx;
    ragd_sample_params *dp;
    ragd_sample_out *dout;
    void *dws;
    const size_t ws_bytes = ragd_k_sample_ws_bytes(n_rows, V);
    CK(cudaMalloc(&dx, x.size() * sizeof(float)));
    CK(cudaMalloc(&dp, n_rows * sizeof(ragd_sample_params)));
    CK(cudaMalloc(&dout, n_rows * sizeof(ragd_sample_out)));
    CK(cudaMalloc(&dws, ws_bytes));
    CK(cudaMemcpy(dx, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dp, P.data(), n_rows * sizeof(ragd_sample_params), cudaMemcpyHostToDevice));
    CK(cudaMemset(dout, 0xA5, n_rows * sizeof(ragd_sample_out)));
    CK(cudaMemset(dws, 0xEE, ws_bytes)); // the kernels must not rely on a zeroed workspace
    cudaStream_t st;
    CK(cudaStreamCreate(&st));
    if (graph) { // captured once, replayed twice (the second replay must give the same bits)
        cudaGraph_t gr;
        cudaGraphExec_t ge;
        CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
        CK(ragd_k_sample(dx, ld, n_rows, V, dp, dout, dws, st));
        CK(cudaStreamEndCapture(st, &gr));
        CK(cudaGraphInstantiate(&ge, gr, 0));
        CK(cudaGraphLaunch(ge, st));
        CK(cudaGraphLaunch(ge, st));
        CK(cudaStreamSynchronize(st));
        CK(cudaGraphExecDestroy(ge));
        CK(cudaGraphDestroy(gr));
    } else {
        CK(ragd_k_sample(dx, ld, n_rows, V, dp, dout, dws, st));
    }
    std::vector<ragd_sample_out> G(n_rows);
    CK(cudaStreamSynchronize(st));
    CK(cudaMemcpy(G.data(), dout, n_rows * sizeof(ragd_sample_out), cudaMemcpyDeviceToHost));
    ragd_sample_out poison;
    memset(&poison, 0xA5, sizeof poison);
    for (int r = 0; r < n_rows; r++) {
        ragd_sample_out c = poison;
        ragd_sample_row(&x[(size_t)r * ld], V, &P[r], cws, &c);
        g_rows++;
        if (memcmp(&c, &G[r], sizeof c)) {
            report(batch, r, V, P[r], G[r], c);
            g_bad++;
        }
    }
    CK(cudaStreamDestroy(st));
    CK(cudaFree(dx));
    CK(cudaFree(dp));
    CK(cudaFree(dout));
    CK(cudaFree(dws));
}

static void check_args() {
    int bad = 0;
    float *dx;
    ragd_sample_params *dp;
    ragd_sample_out *dout;
    char *dws;
    CK(cudaMalloc(&dx, 64 * sizeof(float)));
    CK(cudaMalloc(&dp, sizeof(ragd_sample_params)));
    CK(cudaMalloc(&dout, sizeof(ragd_sample_out)));
    CK(cudaMalloc(&dws, ragd_k_sample_ws_bytes(1, 64) + 16));
    bad += ragd_k_sample(dx, 64, 0, 64, dp, dout, dws, 0) != cudaErrorInvalidValue;
    bad += ragd_k_sample(dx, 63, 1, 64, dp, dout, dws, 0) != cudaErrorInvalidValue;
    bad += ragd_k_sample(dx, 64, 1, 0, dp, dout, dws, 0) != cudaErrorInvalidValue;
    bad += ragd_k_sample(dx, 64, 1, 64, dp, dout, nullptr, 0) != cudaErrorInvalidValue;
    bad += ragd_k_sample(dx, 64, 1, 64, dp, dout, dws + 4, 0) != cudaErrorInvalidValue;
    bad += ragd_k_sample(nullptr, 64, 1, 64, dp, dout, dws, 0) != cudaErrorInvalidValue;
    bad += ragd_k_sample_ws_bytes(0, 64) != 0;
    CK(cudaGetLastError());
    CK(cudaFree(dx));
    CK(cudaFree(dp));
    CK(cudaFree(dout));
    CK(cudaFree(dws));
    printf("sample: launcher argument checks: %s\n", bad ? "FAIL" : "ok");
    g_bad += bad;
}

// ---- benchmark -----------------------------------------------------------------------------------

static void bench() {
    const int V = 151669, max_rows = 256;
    std::vector<float> x((size_t)max_rows * V);
    for (auto &v : x) v = (float)(2.0 * rnd_normal());
    float *dx;
    ragd_sample_params *dp;
    ragd_sample_out *dout;
    void *dws;
    CK(cudaMalloc(&dx, x.size() * sizeof(float)));
    CK(cudaMalloc(&dp, max_rows * sizeof(ragd_sample_params)));
    CK(cudaMalloc(&dout, max_rows * sizeof(ragd_sample_out)));
    CK(cudaMalloc(&dws, ragd_k_sample_ws_bytes(max_rows, V)));
    CK(cudaMemcpy(dx, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice));
    cudaStream_t st;
    CK(cudaStreamCreate(&st));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    struct Case {
        const char *name;
        float t, tp;
        int k, lp, ntop;
        double goal1, goal256;
    } cases[] = {
        {"greedy", 0, 1, 0, 0, 0, 15, 60},
        {"T=0.7 top-p 0.9 logprob top-5", 0.7f, 0.9f, 0, 1, 5, 100, 600},
        {"T=0.7 top-k 20", 0.7f, 1, 20, 0, 0, 0, 0},
        {"T=1 top-p 0.95 min-p 0.05 logprob", 1, 0.95f, 0, 1, 0, 0, 0},
        {"greedy logprob top-20", 0, 1, 0, 1, 20, 0, 0},
    };
    for (const Case &cs : cases) {
        for (int rows : {1, 8, 64, 256}) {
            std::vector<ragd_sample_params> P(rows);
            for (int r = 0; r < rows; r++) {
                memset(&P[r], 0, sizeof P[r]);
                P[r].temperature = cs.t;
                P[r].top_p = cs.tp;
                P[r].min_p = strstr(cs.name, "min-p") ? 0.05f : 0.0f;
                P[r].top_k = cs.k;
                P[r].want_logprob = cs.lp;
                P[r].n_top = cs.ntop;
                P[r].seed = (uint64_t)r;
                P[r].active = 1;
            }
            CK(cudaMemcpy(dp, P.data(), rows * sizeof(ragd_sample_params), cudaMemcpyHostToDevice));
            const std::vector<float> ms =
                ck_time_sorted(st, e0, e1, 110, 10, [&] { CK(ragd_k_sample(dx, V, rows, V, dp, dout, dws, st)); });
            double med = ms[ms.size() / 2] * 1000.0;
            double goal = rows == 1 ? cs.goal1 : (rows == 256 ? cs.goal256 : 0);
            printf("sample bench V=%d rows=%3d %-36s median %8.1f us (min %.1f)%s", V, rows, cs.name, med,
                   ms[0] * 1000.0, goal > 0 ? "" : "\n");
            if (goal > 0) printf("  goal <= %.0f: %s\n", goal, med <= goal ? "met" : "MISSED");
        }
    }
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    CK(cudaStreamDestroy(st));
    CK(cudaFree(dx));
    CK(cudaFree(dp));
    CK(cudaFree(dout));
    CK(cudaFree(dws));
}

int main(int argc, char **argv) {
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    if (argc > 1 && !strcmp(argv[1], "--bench")) {
        bench();
        return 0;
    }
    ragd_sample_ws *cws = ragd_sample_ws_create(151669);
    if (!cws) return 2;
    check_args();
    struct Plan {
        int V, batches, max_rows;
    };
    std::vector<Plan> plans;
    if (quick) plans = {{1, 2, 8}, {7, 2, 16}, {1000, 3, 32}, {151669, 2, 4}};
    else plans = {{1, 10, 64}, {7, 24, 64}, {1000, 24, 160}, {151669, 14, 40}};
    int batch = 0;
    for (const Plan &pl : plans) {
        for (int b = 0; b < pl.batches; b++) {
            int rows = b == 0 ? 1 : 1 + rnd_int(pl.max_rows);
            if (!quick && b == 1 && pl.V <= 1000) rows = 256;
            size_t ld = (size_t)pl.V + (rnd_int(2) ? 0 : 1 + rnd_int(5)); // unaligned rows too
            run_batch(batch++, pl.V, rows, ld, cws, b == 2);
        }
    }
    ragd_sample_ws_free(cws);
    printf("sample: %d rows, %d mismatches\n", g_rows, g_bad);
    if (!quick && g_rows < 3000) { // the plan above must keep covering at least this many rows
        printf("sample: FAIL: fewer than 3000 rows\n");
        return 1;
    }
    return g_bad ? 1 : 0;
}
