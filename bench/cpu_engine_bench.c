/* cpu_engine_bench.c — in-process CPU engine timing (no model load / packing in the figures): prefill
 * (one step() of P tokens, the embed-shaped forward) and greedy decode (1-token steps), plus the memory
 * plan and a hash of every logits row (two builds must print the same hash: bit-identical results).
 *
 * Build (against a Release build's library):
 *   gcc -O2 -Isrc bench/cpu_engine_bench.c build/libragd_core.a -o /tmp/cpu_engine_bench \
 *       $(pkg-config --libs jansson) -lopenblas -lm -lpthread
 * Run: /tmp/cpu_engine_bench MODEL PREFILL_TOKENS DECODE_TOKENS REPS [THREADS]
 * Prints the median of REPS prefills and the median per-token decode time. */
#include <stdio.h>
#include <stdlib.h>

#include "engine/engine.h"
#include "model/model.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL PREFILL_TOKENS DECODE_TOKENS REPS [THREADS]\n", argv[0]);
        return 2;
    }
    int P = atoi(argv[2]), D = atoi(argv[3]), R = atoi(argv[4]), th = argc > 5 ? atoi(argv[5]) : 0;
    ragd_err err = {0};
    ragd_model *m;
    if (ragd_model_load(argv[1], &m, &err)) {
        fprintf(stderr, "%s\n", ragd_err_msg(&err));
        return 1;
    }
    int V = m->cfg.n_vocab;
    ragd_engine_opts o = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = P, .max_seqs = 1, .max_ctx = P + D + 1,
                          .kv_cache = true, .n_threads = th};
    ragd_engine *e;
    double t0 = ragd_now_s();
    if (ragd_engine_create(m, &o, &e, &err)) {
        fprintf(stderr, "%s\n", ragd_err_msg(&err));
        return 1;
    }
    double t_create = ragd_now_s() - t0;
    const ragd_engine_plan *pl = ragd_engine_get_plan(e);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)P);
    float *logits = malloc(sizeof(float) * (size_t)V);
    uint64_t x = 2026;
    for (int i = 0; i < P; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((x >> 33) % (uint64_t)(V < 30000 ? V : 30000));
    }
    double *tp = malloc(sizeof(double) * (size_t)R), *td = malloc(sizeof(double) * (size_t)(R * (D > 0 ? D : 1)));
    int nd = 0;
    uint64_t h = 0xcbf29ce484222325ull;
    int32_t slot = 0;
    for (int r = 0; r < R; r++) {
        ragd_engine_seq_close(e, 0);
        int nc = 0;
        if (ragd_engine_seq_open(e, 0, tok, P, &nc, &err)) {
            fprintf(stderr, "%s\n", ragd_err_msg(&err));
            return 1;
        }
        int32_t ss[2] = {0, P};
        ragd_batch b = {1, tok, ss, NULL};
        double a = ragd_now_s();
        if (ragd_engine_step(e, &b, &slot, NULL, NULL, logits, &err)) {
            fprintf(stderr, "%s\n", ragd_err_msg(&err));
            return 1;
        }
        tp[r] = ragd_now_s() - a;
        if (r == 0) h = fnv(h, logits, sizeof(float) * (size_t)V);
        for (int d = 0; d < D; d++) {
            int32_t next = 0;
            for (int i = 1; i < V; i++)
                if (logits[i] > logits[next]) next = i;
            int32_t s1[2] = {0, 1};
            ragd_batch b1 = {1, &next, s1, NULL};
            a = ragd_now_s();
            if (ragd_engine_step(e, &b1, &slot, NULL, NULL, logits, &err)) {
                fprintf(stderr, "%s\n", ragd_err_msg(&err));
                return 1;
            }
            td[nd++] = ragd_now_s() - a;
            if (r == 0) h = fnv(h, logits, sizeof(float) * (size_t)V);
        }
    }
    qsort(tp, (size_t)R, sizeof *tp, cmp_d);
    qsort(td, (size_t)nd, sizeof *td, cmp_d);
    printf("weights %.1f MiB kv %.1f MiB create %.2f s | prefill %d tok: %.1f tok/s | decode: %.2f tok/s "
           "(median of %d) | logits hash %016llx\n",
           pl->weights / 1048576.0, pl->kv_cache / 1048576.0, t_create, P, P / tp[R / 2],
           nd ? 1.0 / td[nd / 2] : 0.0, nd, (unsigned long long)h);
    ragd_engine_free(e);
    ragd_model_free(m);
    free(tok);
    free(logits);
    free(tp);
    free(td);
    return 0;
}
