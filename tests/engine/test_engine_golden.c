/* test_engine_golden.c — the CPU engine against transformers fp32 references (fixtures/refs, written by
 * tools/make_references.py) for every tiny model: pooled+normalized embeddings and Matryoshka dims
 * (≤ 1e-4 max abs), reranker yes/no logits and scores (≤ 1e-4), first-step logits (≤ 1e-4) and greedy
 * ids (all 32 equal). Input ids come from the references, so tokenizer differences cannot hide here. */
#include <math.h>
#include <stdio.h>

#include "engine/engine.h"
#include "golden.h"
#include "test.h"

#define TOL 1e-4

static void l2(float *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)v[i] * v[i];
    float inv = (float)(1.0 / fmax(sqrt(s), 1e-12));
    for (int i = 0; i < n; i++) v[i] *= inv;
}

static double maxabs(const float *a, const float *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

static void run_model(const char *name) {
    char *dir = golden_path("models", name, "");
    json_t *ref = golden_ref(name);
    ragd_model *m = NULL;
    ragd_err err = {0};
    if (ragd_model_load(dir, &m, &err)) {
        fprintf(stderr, "%s: load failed: %s\n", name, ragd_err_msg(&err));
        CHECK(0);
        return;
    }
    int E = m->cfg.n_embd, V = m->cfg.n_vocab;
    ragd_engine_opts o = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = 512, .max_seqs = 8, .max_ctx = 512,
                          .kv_cache = false, .n_threads = 2};
    ragd_engine *e = NULL;
    CHECK(ragd_engine_create(m, &o, &e, &err) == RAGD_OK);
    if (!e) {
        fprintf(stderr, "%s\n", ragd_err_msg(&err));
        return;
    }

    /* embeddings */
    json_t *emb = json_object_get(ref, "embed");
    const char *pool_name = json_string_value(json_object_get(emb, "pooling"));
    ragd_pooling pool = !strcmp(pool_name, "mean") ? RAGD_POOL_MEAN : !strcmp(pool_name, "cls") ? RAGD_POOL_CLS
                                                                                               : RAGD_POOL_LAST;
    double emax = 0, dmax = 0;
    float *out = malloc(sizeof(float) * E), *tr = malloc(sizeof(float) * E);
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(emb, "items"), i, it) {
        int n, ne;
        int32_t *ids = golden_ids(json_object_get(it, "ids"), &n);
        float *want = golden_floats(json_object_get(it, "embedding"), &ne);
        CHECK_EQ_INT(ne, E);
        int32_t ss[2] = {0, n};
        ragd_batch b = {1, ids, ss, NULL};
        CHECK(ragd_engine_pool(e, &b, pool, out, &err) == RAGD_OK);
        memcpy(tr, out, sizeof(float) * E);
        l2(tr, E);
        emax = fmax(emax, maxabs(tr, want, E));
        const char *k;
        json_t *dv;
        json_object_foreach(json_object_get(it, "dims"), k, dv) {
            int d = atoi(k), nd;
            float *wd = golden_floats(dv, &nd);
            memcpy(tr, out, sizeof(float) * d);
            l2(tr, d);
            dmax = fmax(dmax, maxabs(tr, wd, d));
            free(wd);
        }
        free(ids);
        free(want);
    }
    printf("%-18s embed max abs err %.3g (dims %.3g)\n", name, emax, dmax);
    CHECK(emax <= TOL);
    CHECK(dmax <= TOL);

    /* rerank */
    json_t *rr = json_object_get(ref, "rerank");
    if (rr) {
        int32_t rows[2] = {(int32_t)json_integer_value(json_object_get(rr, "yes_id")),
                           (int32_t)json_integer_value(json_object_get(rr, "no_id"))};
        double smax = 0, lmax = 0;
        size_t ci;
        json_t *cs;
        json_array_foreach(json_object_get(rr, "cases"), ci, cs) {
            json_array_foreach(json_object_get(cs, "items"), i, it) {
                int n;
                int32_t *ids = golden_ids(json_object_get(it, "ids"), &n);
                int32_t ss[2] = {0, n};
                ragd_batch b = {1, ids, ss, NULL};
                float lg[2];
                CHECK(ragd_engine_score(e, &b, rows, 2, lg, &err) == RAGD_OK);
                double ly = json_number_value(json_object_get(it, "logit_yes"));
                double ln = json_number_value(json_object_get(it, "logit_no"));
                double sc = 1.0 / (1.0 + exp(-((double)lg[0] - lg[1])));
                lmax = fmax(lmax, fmax(fabs(lg[0] - ly), fabs(lg[1] - ln)));
                smax = fmax(smax, fabs(sc - json_number_value(json_object_get(it, "score"))));
                free(ids);
            }
        }
        printf("%-18s rerank max abs err: score %.3g, logits %.3g\n", name, smax, lmax);
        CHECK(smax <= TOL);
        CHECK(lmax <= TOL);
    }
    ragd_engine_free(e);

    /* greedy generation through step() and the KV cache */
    json_t *gen = json_object_get(ref, "generate");
    if (gen) {
        ragd_engine_opts og = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = 256, .max_seqs = 2, .max_ctx = 256,
                               .kv_cache = true, .n_threads = 2};
        CHECK(ragd_engine_create(m, &og, &e, &err) == RAGD_OK);
        float *logits = malloc(sizeof(float) * V);
        json_array_foreach(gen, i, it) {
            int n, ng, nf;
            int32_t *ids = golden_ids(json_object_get(it, "prompt_ids"), &n);
            int32_t *want = golden_ids(json_object_get(it, "ids"), &ng);
            float *first = golden_floats(json_object_get(it, "first_logits"), &nf);
            CHECK_EQ_INT(nf, V);
            int slot = (int)(i % 2), n_cached = -1;
            ragd_engine_seq_close(e, slot);
            CHECK(ragd_engine_seq_open(e, slot, ids, n, &n_cached, &err) == RAGD_OK);
            CHECK_EQ_INT(n_cached, 0);
            int32_t ss[2] = {0, n};
            ragd_batch b = {1, ids, ss, NULL};
            CHECK(ragd_engine_step(e, &b, &slot, NULL, NULL, logits, &err) == RAGD_OK);
            double fmaxe = maxabs(logits, first, V);
            int same = 0;
            for (int g = 0; g < ng; g++) {
                int32_t nx = argmax(logits, V);
                if (nx != want[g]) break;
                same++;
                int32_t ss1[2] = {0, 1};
                ragd_batch b1 = {1, &nx, ss1, NULL};
                if (g + 1 < ng) CHECK(ragd_engine_step(e, &b1, &slot, NULL, NULL, logits, &err) == RAGD_OK);
            }
            printf("%-18s generate %zu: first-step logits max abs err %.3g, %d/%d greedy ids equal\n", name, i,
                   fmaxe, same, ng);
            CHECK(fmaxe <= TOL);
            CHECK_EQ_INT(same, ng);
            CHECK_EQ_INT(ragd_engine_seq_len(e, slot), n + ng - 1);
            free(ids);
            free(want);
            free(first);
        }
        free(logits);
        ragd_engine_free(e);
    }
    free(out);
    free(tr);
    ragd_model_free(m);
    json_decref(ref);
    free(dir);
    ragd_err_free(&err);
}

int main(void) {
    for (int k = 0; k < N_GOLDEN_MODELS; k++) run_model(golden_models[k]);
    TEST_DONE();
}
