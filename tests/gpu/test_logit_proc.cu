// test_logit_proc.cu — the device logit processing (ragd_k_logit_proc, engine/cuda/logit_proc.cu:
// structured-output token masks, repetition / frequency / presence penalties, logit_bias) against the
// C reference (ragd_logits_process, engine/sample.c, compiled into this test) BIT FOR BIT on every
// logit, then the device sampler on the processed rows against ragd_sample_row (token, logprob, top
// ids and logprobs, n_kept). Rows: V in {1000, 151669, 151936}, batches of 1..64 rows, masks from
// "everything but a few" to "a handful allowed" (and all-ones words skipped), edits with distinct ids
// (bias ±100 included), some rows without processing and some inactive rows (their logits must not
// change); one batch through a CUDA graph.
// Prints `logit_proc: N rows, M mismatches` and exits 1 on any mismatch.
//   --bench   device time per step at 64 rows × 151,936 ids: the H2D copy of 64 packed masks
//             (19 KB each) + the kernel, masks only and masks + 300 edits per row (median of 50).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "ck.cuh"
#include "engine/cuda/kernels.h"

#define _Noreturn __attribute__((noreturn))
extern "C" {
#include "engine/engine.h"
}

static std::mt19937_64 rng(20261203);
static int rnd_int(int n) { return (int)(rng() % (uint64_t)n); }
static float rnd_normal(float s) { return (float)(std::normal_distribution<double>(0.0, s)(rng)); }
static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

struct Batch {
    int V, rows, W;
    std::vector<float> x;                 // [rows, V]
    std::vector<ragd_sample_params> p;    // [rows]
    std::vector<uint32_t> masks;          // [n_masks, W]
    std::vector<ragd_logit_edit> edits;
    int n_masks = 0;
};

static void make_mask(uint32_t *w, int V, int W, int kind) {
    if (kind == 0) { // nearly everything (inside a string): all-ones words, a few holes
        for (int k = 0; k < W; k++) w[k] = 0xFFFFFFFFu;
        for (int j = 0; j < 200; j++) {
            int i = rnd_int(V);
            w[i >> 5] &= ~(1u << (i & 31));
        }
    } else { // a handful allowed (structural state)
        for (int k = 0; k < W; k++) w[k] = 0;
        int n = 1 + rnd_int(kind == 1 ? 3 : 60);
        for (int j = 0; j < n; j++) {
            int i = rnd_int(V);
            w[i >> 5] |= 1u << (i & 31);
        }
    }
    if (V & 31) w[W - 1] &= (1u << (V & 31)) - 1; // no bits past the vocabulary
}

static Batch make_batch(int V, int rows) {
    Batch b;
    b.V = V, b.rows = rows, b.W = (V + 31) / 32;
    b.x.resize((size_t)rows * V);
    float sig = (float)(1 + rnd_int(3) * 5);
    for (auto &v : b.x) v = rnd_normal(sig);
    b.p.resize(rows);
    std::vector<int> seen(V, -1);
    for (int r = 0; r < rows; r++) {
        ragd_sample_params &p = b.p[r];
        memset(&p, 0, sizeof p);
        p.active = rnd_int(10) != 0;
        p.temperature = rnd_int(4) == 0 ? 0.0f : 0.3f + 0.4f * (float)rnd_int(4);
        p.top_p = rnd_int(2) ? 1.0f : 0.9f;
        p.top_k = rnd_int(3) == 0 ? 40 : 0;
        p.min_p = rnd_int(3) == 0 ? 0.05f : 0.0f;
        p.seed = rng();
        p.counter = (uint64_t)rnd_int(1000);
        p.want_logprob = 1;
        p.n_top = rnd_int(6);
        int kind = rnd_int(6); // 0: nothing, 1-2: mask, 3: edits, 4-5: both
        if (kind == 1 || kind == 2 || kind >= 4) {
            b.masks.resize((size_t)(b.n_masks + 1) * b.W);
            make_mask(b.masks.data() + (size_t)b.n_masks * b.W, V, b.W, rnd_int(3));
            p.mask_row = ++b.n_masks;
        }
        if (kind >= 3) {
            static const float rps[] = {0.0f, 1.0f, 1.3f, 0.7f, 2.0f};
            p.repetition_penalty = rps[rnd_int(5)];
            p.frequency_penalty = rnd_int(2) ? 0.0f : rnd_normal(1.0f);
            p.presence_penalty = rnd_int(2) ? 0.0f : rnd_normal(1.0f);
            p.edit_off = (int)b.edits.size();
            int n = 1 + rnd_int(std::min(V, 400));
            for (int j = 0; j < n; j++) {
                int id = rnd_int(V);
                if (seen[id] == r) continue; // distinct ids per row (engine.c checks it)
                seen[id] = r;
                ragd_logit_edit e{};
                e.id = id;
                e.count = rnd_int(3) ? 0 : (uint32_t)rnd_int(50);
                e.in_seq = rnd_int(2) || e.count;
                e.bias = rnd_int(4) ? 0.0f : (rnd_int(5) == 0 ? (rnd_int(2) ? 100.0f : -100.0f) : rnd_normal(3.0f));
                b.edits.push_back(e);
            }
            p.n_edit = (int)b.edits.size() - p.edit_off;
        }
    }
    return b;
}

static int g_rows = 0, g_bad = 0;

static void run_batch(const Batch &b, ragd_sample_ws *cws, bool graph) {
    const int V = b.V, rows = b.rows;
    float *dx;
    ragd_sample_params *dp;
    uint32_t *dm;
    ragd_logit_edit *de;
    ragd_sample_out *dout;
    void *dws;
    CK(cudaMalloc(&dx, b.x.size() * 4));
    CK(cudaMalloc(&dp, rows * sizeof(ragd_sample_params)));
    CK(cudaMalloc(&dm, std::max<size_t>(b.masks.size(), 1) * 4));
    CK(cudaMalloc(&de, std::max<size_t>(b.edits.size(), 1) * sizeof(ragd_logit_edit)));
    CK(cudaMalloc(&dout, rows * sizeof(ragd_sample_out)));
    CK(cudaMalloc(&dws, ragd_k_sample_ws_bytes(rows, V)));
    CK(cudaMemcpy(dx, b.x.data(), b.x.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dp, b.p.data(), rows * sizeof(ragd_sample_params), cudaMemcpyHostToDevice));
    if (b.masks.size()) CK(cudaMemcpy(dm, b.masks.data(), b.masks.size() * 4, cudaMemcpyHostToDevice));
    if (b.edits.size()) CK(cudaMemcpy(de, b.edits.data(), b.edits.size() * sizeof(ragd_logit_edit), cudaMemcpyHostToDevice));
    cudaStream_t st;
    CK(cudaStreamCreate(&st));
    if (graph) {
        cudaGraph_t g;
        cudaGraphExec_t ge;
        CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
        CK(ragd_k_logit_proc(dx, V, rows, V, dp, dm, de, st));
        CK(ragd_k_sample(dx, V, rows, V, dp, dout, dws, st));
        CK(cudaStreamEndCapture(st, &g));
        CK(cudaGraphInstantiate(&ge, g, 0));
        CK(cudaGraphLaunch(ge, st));
        CK(cudaStreamSynchronize(st));
        CK(cudaGraphExecDestroy(ge));
        CK(cudaGraphDestroy(g));
    } else {
        CK(ragd_k_logit_proc(dx, V, rows, V, dp, dm, de, st));
        CK(ragd_k_sample(dx, V, rows, V, dp, dout, dws, st));
        CK(cudaStreamSynchronize(st));
    }
    std::vector<float> gx(b.x.size());
    std::vector<ragd_sample_out> gout(rows);
    CK(cudaMemcpy(gx.data(), dx, gx.size() * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(gout.data(), dout, rows * sizeof(ragd_sample_out), cudaMemcpyDeviceToHost));
    ragd_step_proc pr = {b.masks.data(), b.n_masks, b.edits.data(), (int)b.edits.size()};
    std::vector<float> cx(b.x);
    for (int r = 0; r < rows; r++) {
        float *row = cx.data() + (size_t)r * V;
        const ragd_sample_params &p = b.p[r];
        ragd_logits_process(row, V, &p, &pr);
        int bad = 0;
        for (int i = 0; i < V; i++) bad += fbits(row[i]) != fbits(gx[(size_t)r * V + i]);
        g_rows++;
        if (bad) {
            if (g_bad < 10)
                printf("MISMATCH V=%d row %d (mask %d, %d edits): %d logits differ\n", V, r, p.mask_row, p.n_edit, bad);
            g_bad++;
            continue;
        }
        if (!p.active) continue;
        ragd_sample_out c;
        ragd_sample_row(row, V, &p, cws, &c);
        const ragd_sample_out &g = gout[r];
        bool same = c.token == g.token && c.nonfinite == g.nonfinite && fbits(c.logprob) == fbits(g.logprob) &&
                    c.n_top == g.n_top && c.n_kept == g.n_kept;
        for (int j = 0; j < RAGD_SAMPLE_MAX_TOP && same; j++)
            same = c.top_ids[j] == g.top_ids[j] && fbits(c.top_lp[j]) == fbits(g.top_lp[j]);
        if (p.mask_row > 0 && same && c.token >= 0) { // the pick is an allowed token
            const uint32_t *w = b.masks.data() + (size_t)(p.mask_row - 1) * b.W;
            same = (w[c.token >> 5] >> (c.token & 31)) & 1u;
        }
        if (!same) {
            if (g_bad < 10)
                printf("MISMATCH V=%d row %d: sample cpu token %d lp %a / gpu token %d lp %a\n", V, r, c.token,
                       (double)c.logprob, g.token, (double)g.logprob);
            g_bad++;
        }
    }
    CK(cudaStreamDestroy(st));
    cudaFree(dx), cudaFree(dp), cudaFree(dm), cudaFree(de), cudaFree(dout), cudaFree(dws);
}

static void bench() {
    const int V = 151936, rows = 64, W = (V + 31) / 32;
    Batch b;
    b.V = V, b.rows = rows, b.W = W;
    b.x.resize((size_t)rows * V);
    for (auto &v : b.x) v = rnd_normal(3.0f);
    b.p.assign(rows, ragd_sample_params{});
    b.masks.resize((size_t)rows * W);
    for (int r = 0; r < rows; r++) make_mask(b.masks.data() + (size_t)r * W, V, W, r % 2 ? 0 : 2);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < 300; j++) b.edits.push_back(ragd_logit_edit{(r * 997 + j * 131) % V, (uint32_t)(j % 3), 1, 0.5f});
    float *dx;
    ragd_sample_params *dp;
    uint32_t *dm, *hm;
    ragd_logit_edit *de;
    CK(cudaMalloc(&dx, b.x.size() * 4));
    CK(cudaMalloc(&dp, rows * sizeof(ragd_sample_params)));
    CK(cudaMalloc(&dm, b.masks.size() * 4));
    CK(cudaMalloc(&de, b.edits.size() * sizeof(ragd_logit_edit)));
    CK(cudaMallocHost(&hm, b.masks.size() * 4));
    memcpy(hm, b.masks.data(), b.masks.size() * 4);
    CK(cudaMemcpy(dx, b.x.data(), b.x.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(de, b.edits.data(), b.edits.size() * sizeof(ragd_logit_edit), cudaMemcpyHostToDevice));
    cudaStream_t st;
    CK(cudaStreamCreate(&st));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (int mode = 0; mode < 3; mode++) { // 0: masks only, 1: masks + 300 edits, 2: pageable mask copy + masks
        for (int r = 0; r < rows; r++) {
            b.p[r] = ragd_sample_params{};
            b.p[r].active = 1;
            b.p[r].mask_row = r + 1;
            if (mode == 1) b.p[r].edit_off = 300 * r, b.p[r].n_edit = 300, b.p[r].repetition_penalty = 1.2f;
        }
        CK(cudaMemcpy(dp, b.p.data(), rows * sizeof(ragd_sample_params), cudaMemcpyHostToDevice));
        const std::vector<float> ms = ck_time_sorted(st, e0, e1, 60, 10, [&] {
            CK(cudaMemcpyAsync(dm, mode == 2 ? b.masks.data() : hm, b.masks.size() * 4, cudaMemcpyHostToDevice, st));
            CK(ragd_k_logit_proc(dx, V, rows, V, dp, dm, de, st));
        });
        static const char *names[] = {"masks only (pinned copy)", "masks + 300 edits/row (pinned copy)",
                                      "masks only (pageable copy, as the server does)"};
        printf("logit_proc bench: 64 rows x %d ids, %s: %.1f us per step (copy %.2f MB + kernel), median of 50\n", V,
               names[mode], ms[ms.size() / 2] * 1e3, b.masks.size() * 4 / 1e6);
    }
    cudaFree(dx), cudaFree(dp), cudaFree(dm), cudaFree(de), cudaFreeHost(hm);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--bench")) {
        bench();
        return 0;
    }
    ragd_sample_ws *cws = ragd_sample_ws_create(151936);
    if (!cws) return 2;
    // argument checks of the launcher
    int bad_args = 0;
    bad_args += ragd_k_logit_proc(nullptr, 64, 1, 64, nullptr, nullptr, nullptr, 0) != cudaErrorInvalidValue;
    float *dx;
    ragd_sample_params *dp;
    CK(cudaMalloc(&dx, 64 * 4));
    CK(cudaMalloc(&dp, sizeof(ragd_sample_params)));
    bad_args += ragd_k_logit_proc(dx, 63, 1, 64, dp, nullptr, nullptr, 0) != cudaErrorInvalidValue;
    bad_args += ragd_k_logit_proc(dx, 64, 0, 64, dp, nullptr, nullptr, 0) != cudaErrorInvalidValue;
    cudaFree(dx), cudaFree(dp);
    if (bad_args) printf("MISMATCH: %d launcher argument checks\n", bad_args);
    g_bad += bad_args;
    const int Vs[] = {1000, 151669, 151936};
    int n = 0;
    for (int V : Vs)
        for (int k = 0; k < 6; k++) {
            int rows = k == 0 ? 1 : (k == 1 ? 64 : 1 + rnd_int(48));
            run_batch(make_batch(V, rows), cws, (n++ % 5) == 2);
        }
    ragd_sample_ws_free(cws);
    printf("logit_proc: %d rows, %d mismatches\n", g_rows, g_bad);
    return g_bad ? 1 : 0;
}
