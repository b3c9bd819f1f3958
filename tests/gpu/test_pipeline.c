/* test_pipeline.c — the CUDA backend behind the REAL model loader, engine dispatch, tokenizer and
 * tasks of main (everything but HTTP), on the directory make_model.py wrote:
 *   - startup: ragd_model_load + ragd_engine_create (--device cuda) wall time (warm page cache);
 *   - the yes/no ids come from the vocabulary (ragd_rerank_token_ids);
 *   - engine pooling on transformers' token ids vs the transformers references (as test_model);
 *   - ragd's tokenizer on the 200 texts vs transformers' ids;
 *   - ragd_embed_texts (tokenize + batch + pool + normalize) throughput and finiteness.
 * Links src/common, tokenizer, model, engine.c, tasks and the CUDA backend; the CPU backend is a stub
 * (the device machine has no OpenBLAS). Usage: test_pipeline MODEL_DIR REFS_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/backend.h"
#include "tasks/tasks.h"
#include "st_model.h"


static int g_fail = 0;
static void check(bool ok, const char *what) {
    printf("  %-74s %s\n", what, ok ? "PASS" : "FAIL");
    if (!ok) g_fail++;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    const char *refs = argv[2];
    ragd_err err = {0};
    double t0 = ragd_now_s();
    ragd_model *m = NULL;
    if (ragd_model_load(argv[1], &m, &err)) {
        fprintf(stderr, "load: %s\n", ragd_err_msg(&err));
        return 1;
    }
    double t1 = ragd_now_s();
    ragd_engine_opts o = {.device = RAGD_DEVICE_CUDA, .max_batch_tokens = 32768, .max_seqs = 1024, .max_ctx = 32768};
    ragd_engine *e = NULL;
    if (ragd_engine_create(m, &o, &e, &err)) {
        fprintf(stderr, "engine: %s\n", ragd_err_msg(&err));
        return 1;
    }
    double t2 = ragd_now_s();
    const ragd_engine_plan *pl = ragd_engine_get_plan(e);
    printf("startup (warm page cache): model load %.3f s + CUDA engine create %.3f s = %.3f s; plan %.1f MiB\n", t1 - t0,
           t2 - t1, t2 - t0, pl->total / 1048576.0);
    check(t2 - t0 < 2.0, "model directory to ready engine under 2 s");
    int32_t yes = -1, no = -1;
    if (ragd_rerank_token_ids(m, &yes, &no, &err)) fprintf(stderr, "%s\n", ragd_err_msg(&err));
    char w[200];
    snprintf(w, sizeof w, "reranker ids from the vocabulary: yes %d no %d (expected 9693, 2152)", yes, no);
    check(yes == 9693 && no == 2152, w);

    /* engine pooling on transformers' ids */
    size_t sz;
    int32_t *b = st_read_file(refs, "embed_ids.i32", &sz);
    int n = b[0];
    int32_t *start = malloc(sizeof(int32_t) * (size_t)(n + 1)), *ids = malloc(sz);
    size_t p = 1, k = 0;
    start[0] = 0;
    for (int i = 0; i < n; i++) {
        int len = b[p++];
        for (int j = 0; j < len; j++) ids[k++] = b[p++];
        start[i + 1] = (int32_t)k;
    }
    const int E = m->cfg.n_embd;
    float *pooled = malloc(sizeof(float) * (size_t)n * E);
    ragd_batch bt = {n, ids, start, NULL};
    if (ragd_engine_pool(e, &bt, RAGD_POOL_LAST, pooled, &err)) {
        fprintf(stderr, "pool: %s\n", ragd_err_msg(&err));
        return 1;
    }
    float *ref = st_read_file(refs, "embed_last_f32.f32", &sz);
    double worst = 1;
    for (int i = 0; i < n; i++) {
        double d = 0, na = 0, nb = 0;
        for (int j = 0; j < E; j++) {
            double x = pooled[(size_t)i * E + j], y = ref[(size_t)i * E + j];
            d += x * y, na += x * x, nb += y * y;
        }
        worst = fmin(worst, d / sqrt(na * nb));
    }
    snprintf(w, sizeof w, "real loader + engine.c: worst cosine vs transformers fp32 %.6f (>= 0.999)", worst);
    check(worst >= 0.999, w);

    /* tokenizer vs transformers ids; embed_texts */
    char *txt = st_read_file(refs, "texts.txt", &sz);
    const char **texts = malloc(sizeof(char *) * (size_t)n);
    size_t *lens = malloc(sizeof(size_t) * (size_t)n);
    int nt = 0;
    for (char *q = txt; *q && nt < n;) {
        char *nl = strchr(q, '\n');
        texts[nt] = q;
        lens[nt] = nl ? (size_t)(nl - q) : strlen(q);
        nt++;
        q = nl ? nl + 1 : q + strlen(q);
    }
    ragd_embed_opts eo = {.normalize = true};
    int same = 0, same_plus_eos = 0;
    for (int i = 0; i < nt; i++) {
        ragd_tok_ids t = {0};
        if (ragd_embed_prepare(m, texts[i], lens[i], &eo, &t, &err)) {
            fprintf(stderr, "prepare %d: %s\n", i, ragd_err_msg(&err));
            return 1;
        }
        int hl = start[i + 1] - start[i];
        if ((int)t.n == hl && !memcmp(t.ids, ids + start[i], sizeof(int32_t) * (size_t)hl)) same_plus_eos++;
        if ((int)t.n == hl - 1 && !memcmp(t.ids, ids + start[i], sizeof(int32_t) * (size_t)(hl - 1))) same++;
        ragd_tok_ids_free(&t);
    }
    printf("  tokenizer: %d/%d texts equal transformers ids + <|endoftext|>, %d/%d equal without it\n", same_plus_eos,
           nt, same, nt);
    check(same_plus_eos + same == nt, "ragd tokenizer ids == transformers ids for every text");
    float *vec = malloc(sizeof(float) * (size_t)nt * E);
    int failed = -1;
    double t3 = ragd_now_s();
    if (ragd_embed_texts(e, texts, lens, nt, &eo, vec, &failed, &err)) {
        fprintf(stderr, "embed_texts: %s\n", ragd_err_msg(&err));
        return 1;
    }
    double t4 = ragd_now_s();
    int finite = 1;
    for (size_t i = 0; i < (size_t)nt * E; i++) finite &= isfinite(vec[i]) != 0;
    printf("  ragd_embed_texts: %d texts in %.1f ms (tokenize + pack + forward + normalize)\n", nt, (t4 - t3) * 1e3);
    check(finite, "ragd_embed_texts vectors finite");
    ragd_engine_free(e);
    ragd_model_free(m);
    printf("pipeline test: %s (%d failed)\n", g_fail ? "FAIL" : "PASS", g_fail);
    return g_fail ? 1 : 0;
}
