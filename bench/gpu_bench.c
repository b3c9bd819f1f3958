/* gpu_bench.c — engine-level throughput of the CUDA backend (embedding-style prefill + last-token
 * pooling) on a model directory, for the length mixes in REFS_DIR/lens_long.txt and lens_short.txt
 * (written by tests/gpu/make_model.py; the long mix is exactly hf_baseline.py's).
 * Sequences are packed greedily into batches of at most MAX_BATCH_TOKENS tokens / 1024 sequences.
 * Reports tokens/s (median of 5 passes, host wall clock, including staging and copies), per-phase
 * time with CUDA events, achieved TFLOP/s, and single short-request latency.
 * Usage: gpu_bench MODEL_DIR REFS_DIR [MAX_BATCH_TOKENS] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/backend.h"
#include "engine/cuda/cuda_api.h"
#include "st_model.h"

static int *read_lens(const char *dir, const char *name, int *n) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", p);
        exit(2);
    }
    int cap = 8192, k = 0, v;
    int *a = malloc(sizeof(int) * (size_t)cap);
    while (k < cap && fscanf(f, "%d", &v) == 1) a[k++] = v;
    fclose(f);
    *n = k;
    return a;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    int n_batches;
    int *b_first, *b_n; /* sequences of batch i: [b_first[i], b_first[i] + b_n[i]) */
} plan_t;

static void run_mix(void *st, const ragd_model *m, const char *name, const int *lens, int n, int max_tokens, int max_seqs) {
    long total = 0;
    for (int i = 0; i < n; i++) total += lens[i];
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)total), *start = malloc(sizeof(int32_t) * (size_t)(n + 1));
    srand(3);
    for (long i = 0; i < total; i++) tok[i] = rand() % 151643;
    start[0] = 0;
    for (int i = 0; i < n; i++) start[i + 1] = start[i] + lens[i];
    plan_t p = {0, malloc(sizeof(int) * (size_t)n), malloc(sizeof(int) * (size_t)n)};
    for (int i = 0; i < n;) {
        int j = i, t = 0;
        while (j < n && j - i < max_seqs && t + lens[j] <= max_tokens) t += lens[j++];
        p.b_first[p.n_batches] = i, p.b_n[p.n_batches] = j - i, p.n_batches++;
        i = j;
    }
    int32_t *bstart = malloc(sizeof(int32_t) * (size_t)(max_seqs + 1));
    float *out = malloc(sizeof(float) * (size_t)max_seqs * (size_t)m->cfg.n_embd);
    ragd_cuda_net *net = ragd_backend_cuda_net(st);
    double times[5];
    for (int pass = -1; pass < 6; pass++) {
        ragd_cuda_net_set_profile(net, pass == 5);
        double t0 = ragd_now_s();
        for (int b = 0; b < p.n_batches; b++) {
            int f = p.b_first[b], k = p.b_n[b];
            for (int i = 0; i <= k; i++) bstart[i] = start[f + i] - start[f];
            ragd_batch bt = {k, tok + start[f], bstart, NULL};
            ragd_err err = {0};
            if (ragd_backend_cuda.pool(st, &bt, RAGD_POOL_LAST, out, &err)) {
                fprintf(stderr, "%s: %s\n", name, ragd_err_msg(&err));
                exit(1);
            }
        }
        double dt = ragd_now_s() - t0;
        if (pass >= 0 && pass < 5) times[pass] = dt;
    }
    qsort(times, 5, sizeof(double), cmp_d);
    double med = times[2];
    /* FLOPs: projections 2·T·N·K per layer, attention 4·hd·nH per causal (query, key) pair */
    const ragd_model_config *c = &m->cfg;
    double E = c->n_embd, F = c->n_ff, Dq = (double)c->n_head * c->head_dim, Dkv = (double)c->n_head_kv * c->head_dim;
    double f_qkv = 2.0 * total * E * (Dq + 2 * Dkv) * c->n_layer, f_o = 2.0 * total * Dq * E * c->n_layer;
    double f_gu = 2.0 * total * E * 2 * F * c->n_layer, f_down = 2.0 * total * F * E * c->n_layer;
    double pairs = 0;
    for (int i = 0; i < n; i++) pairs += (double)lens[i] * (lens[i] + 1) / 2;
    double f_attn = 4.0 * pairs * c->head_dim * c->n_head * c->n_layer;
    double f_all = f_qkv + f_o + f_gu + f_down + f_attn;
    printf("\n== %s: %d sequences, %ld tokens, %d batches (<= %d tokens, <= %d seqs)\n", name, n, total, p.n_batches,
           max_tokens, max_seqs);
    printf("ragd engine: %.0f tokens/s (median of 5: %.1f ms; min %.1f, max %.1f); %.1f TFLOP/s achieved (%.2f GFLOP/token)\n",
           total / med, med * 1e3, times[0] * 1e3, times[4] * 1e3, f_all / med / 1e12, f_all / total / 1e9);
    double ms[RAGD_CUDA_N_PHASES] = {0};
    const char *names[RAGD_CUDA_N_PHASES];
    ragd_cuda_net_profile_read(net, ms, names);
    double sum = 0;
    for (int i = 0; i < RAGD_CUDA_N_PHASES; i++) sum += ms[i];
    double fl[RAGD_CUDA_N_PHASES] = {0};
    fl[2] = f_qkv, fl[4] = f_attn, fl[5] = f_o, fl[7] = f_gu, fl[9] = f_down;
    printf("phase (profiled pass, events around every launch: %.1f ms)\n", sum);
    for (int i = 0; i < RAGD_CUDA_N_PHASES; i++) {
        printf("  %-14s %8.2f ms %5.1f%%", names[i], ms[i], 100 * ms[i] / sum);
        if (fl[i] > 0) printf("  %6.1f TFLOP/s", fl[i] / (ms[i] * 1e-3) / 1e12);
        printf("\n");
    }
    free(tok), free(start), free(p.b_first), free(p.b_n), free(bstart), free(out);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: gpu_bench MODEL_DIR REFS_DIR [MAX_BATCH_TOKENS]\n");
        return 2;
    }
    int max_tokens = argc > 3 ? atoi(argv[3]) : 32768;
    ragd_model *m = st_model_load(argv[1]);
    if (!m) return 2;
    ragd_engine_opts o = {.device = RAGD_DEVICE_CUDA, .max_batch_tokens = max_tokens, .max_seqs = 1024};
    ragd_err err = {0};
    void *st = NULL;
    ragd_engine_plan plan;
    double t0 = ragd_now_s();
    if (ragd_backend_cuda.create(m, &o, &st, &plan, &err)) {
        fprintf(stderr, "create: %s\n", ragd_err_msg(&err));
        return 1;
    }
    printf("engine create (plan + alloc + upload from page cache): %.2f s; plan %.1f MiB (weights %.1f, activations %.1f, workspace %.1f)\n",
           ragd_now_s() - t0, plan.total / 1048576.0, plan.weights / 1048576.0, plan.activations / 1048576.0,
           plan.workspace / 1048576.0);
    printf("  of which GEMM tuning %.0f ms\n", ragd_cuda_net_tune_ms(ragd_backend_cuda_net(st)));
    int nl, ns;
    int *ll = read_lens(argv[2], "lens_long.txt", &nl), *ls = read_lens(argv[2], "lens_short.txt", &ns);
    run_mix(st, m, "long mix (64-512 tokens)", ll, nl, max_tokens, 1024);
    run_mix(st, m, "short mix (16-64 tokens)", ls, ns, max_tokens, 1024);
    /* one short request (20 tokens) alone: engine-level latency */
    int32_t tk[20], ss[2] = {0, 20};
    for (int i = 0; i < 20; i++) tk[i] = 1000 + i * 37;
    float *out = malloc(sizeof(float) * (size_t)m->cfg.n_embd);
    double lat[50];
    for (int i = -5; i < 50; i++) {
        ragd_batch b = {1, tk, ss, NULL};
        double a = ragd_now_s();
        if (ragd_backend_cuda.pool(st, &b, RAGD_POOL_LAST, out, &err)) return 1;
        if (i >= 0) lat[i] = ragd_now_s() - a;
    }
    qsort(lat, 50, sizeof(double), cmp_d);
    printf("\none 20-token sequence alone: median %.3f ms (p10 %.3f, p90 %.3f), engine level\n", lat[25] * 1e3,
           lat[5] * 1e3, lat[45] * 1e3);
    {   /* where the time of one short request goes (events around every launch: an upper bound) */
        ragd_cuda_net *net = ragd_backend_cuda_net(st);
        ragd_cuda_net_set_profile(net, 1);
        for (int i = 0; i < 10; i++) {
            ragd_batch b = {1, tk, ss, NULL};
            if (ragd_backend_cuda.pool(st, &b, RAGD_POOL_LAST, out, &err)) return 1;
        }
        double ms[RAGD_CUDA_N_PHASES] = {0};
        const char *names[RAGD_CUDA_N_PHASES];
        ragd_cuda_net_profile_read(net, ms, names);  /* before set_profile, which clears the sums */
        ragd_cuda_net_set_profile(net, 0);
        printf("one 20-token sequence, GPU time per phase (mean of 10, profiled):");
        for (int i = 0; i < RAGD_CUDA_N_PHASES; i++) printf(" %s %.3f", names[i], ms[i] / 10);
        printf(" ms\n");
    }
    free(out);
    ragd_backend_cuda.destroy(st);
    st_model_free(m);
    return 0;
}
