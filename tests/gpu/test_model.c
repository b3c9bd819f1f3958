/* test_model.c — the whole CUDA backend (ragd_backend_cuda: C glue + kernels) at a real model shape
 * against transformers references written by make_model.py:
 *   - last-token and mean pooled embeddings vs transformers bf16 and fp32 (max/mean abs error of the
 *     L2-normalized vectors, worst cosine);
 *   - reranker yes/no logits and scores vs transformers bf16 and fp32;
 *   - batch invariance: every text embedded alone, in batches of 7 and all in one shuffled batch
 *     must give bit-identical vectors (and scores alone vs batched);
 *   - error paths: id ≥ vocab, too many sequences, a memory limit that cannot hold the plan, step.
 * Usage: test_model MODEL_DIR REFS_DIR. Exit status 0 only when every check passes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/backend.h"
#include "engine/cuda/cuda_api.h"
#include "st_model.h"

static int g_fail = 0;

static void *read_all(const char *dir, const char *name, size_t *n) { return st_read_file(dir, name, n); }

typedef struct {
    int n;
    int32_t *start; /* [n+1] */
    int32_t *ids;   /* [start[n]] */
} seqs;

static seqs read_seqs(const char *dir, const char *name) {
    size_t sz;
    int32_t *b = read_all(dir, name, &sz);
    seqs s;
    s.n = b[0];
    s.start = malloc(sizeof(int32_t) * (size_t)(s.n + 1));
    size_t total = sz / 4 - 1 - (size_t)s.n;
    s.ids = malloc(sizeof(int32_t) * total);
    size_t p = 1, k = 0;
    s.start[0] = 0;
    for (int i = 0; i < s.n; i++) {
        int len = b[p++];
        for (int j = 0; j < len; j++) s.ids[k++] = b[p++];
        s.start[i + 1] = (int32_t)k;
    }
    free(b);
    return s;
}

/* runs the given subset (idx[0..m)) as one batch; out rows in subset order */
static ragd_status run_subset(void *st, const seqs *s, const int *idx, int m, int score, const int32_t *rows,
                              int n_rows, int width, float *out, ragd_pooling pool) {
    int total = 0;
    for (int i = 0; i < m; i++) total += s->start[idx[i] + 1] - s->start[idx[i]];
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)total), *start = malloc(sizeof(int32_t) * (size_t)(m + 1));
    start[0] = 0;
    for (int i = 0; i < m; i++) {
        int a = s->start[idx[i]], len = s->start[idx[i] + 1] - a;
        memcpy(tok + start[i], s->ids + a, sizeof(int32_t) * (size_t)len);
        start[i + 1] = start[i] + len;
    }
    ragd_batch b = {m, tok, start, NULL};
    ragd_err err = {0};
    ragd_status rc = score ? ragd_backend_cuda.score(st, &b, rows, n_rows, out, &err)
                           : ragd_backend_cuda.pool(st, &b, pool, out, &err);
    if (rc) fprintf(stderr, "forward failed: %s: %s\n", ragd_status_name(rc), ragd_err_msg(&err));
    ragd_err_free(&err);
    free(tok);
    free(start);
    (void)width;
    return rc;
}

static void normalize(float *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)v[i] * v[i];
    float inv = (float)(1.0 / sqrt(s));
    for (int i = 0; i < n; i++) v[i] *= inv;
}

typedef struct {
    double max_abs, mean_abs, min_cos;
} cmp;

/* compares n L2-normalized rows of width E */
static cmp compare_emb(const float *a, const float *b, int n, int E) {
    cmp c = {0, 0, 1};
    float *x = malloc(sizeof(float) * (size_t)E), *y = malloc(sizeof(float) * (size_t)E);
    for (int i = 0; i < n; i++) {
        memcpy(x, a + (size_t)i * E, sizeof(float) * (size_t)E);
        memcpy(y, b + (size_t)i * E, sizeof(float) * (size_t)E);
        normalize(x, E);
        normalize(y, E);
        double dot = 0;
        for (int e = 0; e < E; e++) {
            double d = fabs((double)x[e] - y[e]);
            if (d > c.max_abs) c.max_abs = d;
            c.mean_abs += d;
            dot += (double)x[e] * y[e];
        }
        if (dot < c.min_cos) c.min_cos = dot;
    }
    c.mean_abs /= (double)n * E;
    free(x);
    free(y);
    return c;
}

static void check(bool ok, const char *what) {
    printf("  %-70s %s\n", what, ok ? "PASS" : "FAIL");
    if (!ok) g_fail++;
}

static void emb_block(const char *name, const float *ours, const float *ref_bf, const float *ref_f32, int n, int E) {
    cmp o32 = compare_emb(ours, ref_f32, n, E), obf = compare_emb(ours, ref_bf, n, E),
        h32 = compare_emb(ref_bf, ref_f32, n, E);
    printf("%s (%d texts, normalized vectors)\n", name, n);
    printf("  ragd vs transformers fp32 : max_abs %.3e  mean_abs %.3e  min_cos %.6f\n", o32.max_abs, o32.mean_abs,
           o32.min_cos);
    printf("  ragd vs transformers bf16 : max_abs %.3e  mean_abs %.3e  min_cos %.6f\n", obf.max_abs, obf.mean_abs,
           obf.min_cos);
    printf("  transformers bf16 vs fp32 : max_abs %.3e  mean_abs %.3e  min_cos %.6f\n", h32.max_abs, h32.mean_abs,
           h32.min_cos);
    char w[160];
    snprintf(w, sizeof w, "%s: mean error vs fp32 <= 1.5 x transformers-bf16's (%.2e <= %.2e)", name, o32.mean_abs,
             1.5 * h32.mean_abs);
    check(o32.mean_abs <= 1.5 * h32.mean_abs, w);
    snprintf(w, sizeof w, "%s: worst cosine vs fp32 >= 0.995 (%.6f)", name, o32.min_cos);
    check(o32.min_cos >= 0.995, w);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_model MODEL_DIR REFS_DIR\n");
        return 2;
    }
    const char *refs = argv[2];
    ragd_model *m = st_model_load(argv[1]);
    if (!m) return 2;
    const int E = m->cfg.n_embd;
    ragd_engine_opts o = {.device = RAGD_DEVICE_CUDA, .max_batch_tokens = 65536, .max_seqs = 256};
    ragd_err err = {0};
    void *st = NULL;
    ragd_engine_plan plan;
    double t0 = ragd_now_s();
    ragd_status rc = ragd_backend_cuda.create(m, &o, &st, &plan, &err);
    if (rc) {
        fprintf(stderr, "create: %s\n", ragd_err_msg(&err));
        return 2;
    }
    printf("create: %.2f s; plan MiB: weights %.1f activations %.1f workspace %.1f total %.1f\n", ragd_now_s() - t0,
           plan.weights / 1048576.0, plan.activations / 1048576.0, plan.workspace / 1048576.0, plan.total / 1048576.0);
    printf("%s\n", ragd_cuda_net_gemm_info(ragd_backend_cuda_net(st)));

    /* ---- embeddings */
    seqs es = read_seqs(refs, "embed_ids.i32");
    int n = es.n;
    size_t sz;
    float *ref_last_bf = read_all(refs, "embed_last_bf16.f32", &sz), *ref_last_32 = read_all(refs, "embed_last_f32.f32", &sz);
    float *ref_mean_bf = read_all(refs, "embed_mean_bf16.f32", &sz), *ref_mean_32 = read_all(refs, "embed_mean_f32.f32", &sz);
    float *alone = malloc(sizeof(float) * (size_t)n * E), *b7 = malloc(sizeof(float) * (size_t)n * E),
          *ball = malloc(sizeof(float) * (size_t)n * E), *tmp = malloc(sizeof(float) * (size_t)n * E);
    int *idx = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int i = 0; i < n; i++)
        if (run_subset(st, &es, &idx[i], 1, 0, NULL, 0, E, alone + (size_t)i * E, RAGD_POOL_LAST)) return 1;
    for (int i = 0; i < n; i += 7)
        if (run_subset(st, &es, &idx[i], n - i < 7 ? n - i : 7, 0, NULL, 0, E, b7 + (size_t)i * E, RAGD_POOL_LAST)) return 1;
    srand(7);
    for (int i = n - 1; i > 0; i--) {
        int j = rand() % (i + 1), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    if (run_subset(st, &es, idx, n, 0, NULL, 0, E, tmp, RAGD_POOL_LAST)) return 1;
    for (int i = 0; i < n; i++) memcpy(ball + (size_t)idx[i] * E, tmp + (size_t)i * E, sizeof(float) * (size_t)E);
    int diff7 = 0, diffall = 0;
    for (int i = 0; i < n; i++) {
        diff7 += memcmp(alone + (size_t)i * E, b7 + (size_t)i * E, sizeof(float) * (size_t)E) != 0;
        diffall += memcmp(alone + (size_t)i * E, ball + (size_t)i * E, sizeof(float) * (size_t)E) != 0;
    }
    printf("batch invariance: %d texts (%d tokens): alone vs batches of 7: %d differ; alone vs one shuffled batch: %d differ\n",
           n, es.start[n], diff7, diffall);
    check(diff7 == 0 && diffall == 0, "batch invariance: bit-identical embeddings alone / by 7 / all shuffled");
    emb_block("last-token embeddings", alone, ref_last_bf, ref_last_32, n, E);

    for (int i = 0; i < n; i++) idx[i] = i;
    if (run_subset(st, &es, idx, n, 0, NULL, 0, E, tmp, RAGD_POOL_MEAN)) return 1;
    emb_block("mean-pooled embeddings", tmp, ref_mean_bf, ref_mean_32, n, E);

    /* ---- rerank */
    seqs rs = read_seqs(refs, "rerank_ids.i32");
    float *rr_bf = read_all(refs, "rerank_bf16.f32", &sz), *rr_32 = read_all(refs, "rerank_f32.f32", &sz);
    const int32_t rows[2] = {9693, 2152}; /* yes, no */
    int nr = rs.n;
    float *sc = malloc(sizeof(float) * (size_t)nr * 2), *sc1 = malloc(sizeof(float) * (size_t)nr * 2);
    int *ridx = malloc(sizeof(int) * (size_t)nr);
    for (int i = 0; i < nr; i++) ridx[i] = i;
    if (run_subset(st, &rs, ridx, nr, 1, rows, 2, 2, sc, RAGD_POOL_LAST)) return 1;
    for (int i = 0; i < nr; i++)
        if (run_subset(st, &rs, &ridx[i], 1, 1, rows, 2, 2, sc1 + 2 * i, RAGD_POOL_LAST)) return 1;
    check(memcmp(sc, sc1, sizeof(float) * (size_t)nr * 2) == 0, "rerank: bit-identical logits alone vs batched");
    double lmax32 = 0, lmaxbf = 0, lmaxh = 0, smax32 = 0, smaxbf = 0, smaxh = 0, smean32 = 0, smeanh = 0;
    for (int i = 0; i < nr; i++) {
        for (int k = 0; k < 2; k++) {
            lmax32 = fmax(lmax32, fabs(sc[2 * i + k] - rr_32[2 * i + k]));
            lmaxbf = fmax(lmaxbf, fabs(sc[2 * i + k] - rr_bf[2 * i + k]));
            lmaxh = fmax(lmaxh, fabs(rr_bf[2 * i + k] - rr_32[2 * i + k]));
        }
        double s = 1 / (1 + exp(-(double)(sc[2 * i] - sc[2 * i + 1])));
        double s32 = 1 / (1 + exp(-(double)(rr_32[2 * i] - rr_32[2 * i + 1])));
        double sbf = 1 / (1 + exp(-(double)(rr_bf[2 * i] - rr_bf[2 * i + 1])));
        smax32 = fmax(smax32, fabs(s - s32));
        smaxbf = fmax(smaxbf, fabs(s - sbf));
        smaxh = fmax(smaxh, fabs(sbf - s32));
        smean32 += fabs(s - s32) / nr;
        smeanh += fabs(sbf - s32) / nr;
    }
    printf("rerank (%d pairs): yes/no logits max_abs: ragd vs fp32 %.3e, ragd vs bf16 %.3e, transformers bf16 vs fp32 %.3e\n",
           nr, lmax32, lmaxbf, lmaxh);
    printf("rerank scores: max_abs ragd vs fp32 %.3e (mean %.3e), ragd vs bf16 %.3e, transformers bf16 vs fp32 %.3e (mean %.3e)\n",
           smax32, smean32, smaxbf, smaxh, smeanh);
    char w[160];
    snprintf(w, sizeof w, "rerank: score error vs fp32 <= 1.5 x transformers-bf16's + 1e-3 (%.2e <= %.2e)", smax32,
             1.5 * smaxh + 1e-3);
    check(smax32 <= 1.5 * smaxh + 1e-3, w);

    /* ---- error paths */
    {
        int32_t bad_tok[3] = {1, m->cfg.n_vocab, 2}, ss3[2] = {0, 3};
        ragd_batch b = {1, bad_tok, ss3, NULL};
        ragd_err e2 = {0};
        rc = ragd_backend_cuda.pool(st, &b, RAGD_POOL_LAST, tmp, &e2);
        printf("  id = n_vocab -> %s: %s\n", ragd_status_name(rc), ragd_err_msg(&e2));
        check(rc == RAGD_ERANGE, "error path: token id >= n_vocab is ERANGE");
        ragd_err_free(&e2);
        rc = ragd_backend_cuda.step(st, &b, NULL, NULL, NULL, NULL, &e2);
        check(rc == RAGD_EINVAL, "error path: step without a KV cache is EINVAL");
        ragd_err_free(&e2);
        int32_t many_start[258];
        int32_t many_tok[257];
        for (int i = 0; i < 258; i++) many_start[i] = i;
        for (int i = 0; i < 257; i++) many_tok[i] = 5;
        ragd_batch b2 = {257, many_tok, many_start, NULL};
        rc = ragd_backend_cuda.pool(st, &b2, RAGD_POOL_LAST, tmp, &e2);
        printf("  257 sequences -> %s: %s\n", ragd_status_name(rc), ragd_err_msg(&e2));
        check(rc == RAGD_ERANGE, "error path: more sequences than max_seqs is ERANGE");
        ragd_err_free(&e2);
        /* the engine still works after refused requests */
        float again[4096];
        int one = 0;
        if (E <= 4096 && !run_subset(st, &es, &one, 1, 0, NULL, 0, E, again, RAGD_POOL_LAST))
            check(memcmp(again, alone, sizeof(float) * (size_t)E) == 0, "engine unchanged after refused requests");
    }
    ragd_backend_cuda.destroy(st);
    {
        ragd_engine_opts o2 = o;
        o2.mem_limit = 256u << 20;
        void *st2 = NULL;
        ragd_err e2 = {0};
        rc = ragd_backend_cuda.create(m, &o2, &st2, &plan, &e2);
        printf("  --gpu-memory 256 MiB -> %s: %s\n", ragd_status_name(rc), ragd_err_msg(&e2));
        check(rc == RAGD_ENOMEM && st2 == NULL, "memory plan over the limit is refused with ENOMEM");
        ragd_err_free(&e2);
    }
    printf("model test: %s (%d failed)\n", g_fail ? "FAIL" : "PASS", g_fail);
    st_model_free(m);
    return g_fail ? 1 : 0;
}
