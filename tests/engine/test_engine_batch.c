/* test_engine_batch.c — batch invariance, bit for bit: every reference text of every tiny model is pooled
 * alone, in batches of 3, all together and all together in a shuffled order, with 1 and 2 threads; the
 * vectors must be identical (memcmp). Also rerank scores alone vs batched, and step() logits of two
 * sequences decoded together vs alone (continuous batching must not change a sequence's numbers). */
#include <stdio.h>

#include "engine/engine.h"
#include "golden.h"
#include "test.h"

static void run_model(const char *name) {
    char *dir = golden_path("models", name, "");
    json_t *ref = golden_ref(name);
    ragd_model *m = NULL;
    ragd_err err = {0};
    if (ragd_model_load(dir, &m, &err)) {
        fprintf(stderr, "%s: %s\n", name, ragd_err_msg(&err));
        CHECK(0);
        return;
    }
    int E = m->cfg.n_embd;
    json_t *items = json_object_get(json_object_get(ref, "embed"), "items");
    int n = (int)json_array_size(items);
    int32_t **ids = calloc((size_t)n, sizeof *ids);
    int *len = calloc((size_t)n, sizeof *len);
    int total = 0;
    for (int i = 0; i < n; i++) {
        ids[i] = golden_ids(json_object_get(json_array_get(items, (size_t)i), "ids"), &len[i]);
        total += len[i];
    }
    float *alone = malloc(sizeof(float) * (size_t)n * E), *got = malloc(sizeof(float) * (size_t)n * E);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)total);
    int32_t *ss = malloc(sizeof(int32_t) * (size_t)(n + 1));
    int order[64];
    for (int threads = 1; threads <= 2; threads++) {
        ragd_engine_opts o = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = total, .max_seqs = n, .max_ctx = 512,
                              .n_threads = threads};
        ragd_engine *e = NULL;
        CHECK(ragd_engine_create(m, &o, &e, &err) == RAGD_OK);
        if (!e) break;
        /* mode 0: alone; 1: batches of 3; 2: all; 3: all shuffled */
        for (int mode = 0; mode < 4; mode++) {
            for (int i = 0; i < n; i++) order[i] = i;
            if (mode == 3)
                for (int i = n - 1; i > 0; i--) { /* fixed shuffle */
                    int j = (i * 7 + 3) % (i + 1), t = order[i];
                    order[i] = order[j];
                    order[j] = t;
                }
            int group = mode == 0 ? 1 : mode == 1 ? 3 : n;
            for (int g = 0; g < n; g += group) {
                int cnt = n - g < group ? n - g : group, pos = 0;
                ss[0] = 0;
                for (int k = 0; k < cnt; k++) {
                    int s = order[g + k];
                    memcpy(tok + pos, ids[s], sizeof(int32_t) * (size_t)len[s]);
                    pos += len[s];
                    ss[k + 1] = pos;
                }
                float *outb = malloc(sizeof(float) * (size_t)cnt * E);
                ragd_batch b = {cnt, tok, ss, NULL};
                CHECK(ragd_engine_pool(e, &b, RAGD_POOL_LAST, outb, &err) == RAGD_OK);
                for (int k = 0; k < cnt; k++)
                    memcpy((mode == 0 && threads == 1 ? alone : got) + (size_t)order[g + k] * E, outb + (size_t)k * E,
                           sizeof(float) * E);
                free(outb);
            }
            if (mode == 0 && threads == 1) continue;
            int diff = 0;
            for (int i = 0; i < n; i++) diff += memcmp(alone + (size_t)i * E, got + (size_t)i * E, sizeof(float) * E) != 0;
            if (diff) fprintf(stderr, "%s: threads %d mode %d: %d of %d vectors differ\n", name, threads, mode, diff, n);
            CHECK_EQ_INT(diff, 0);
        }
        ragd_engine_free(e);
    }
    printf("%s: %d texts bit-identical alone / by 3 / all / shuffled, 1 and 2 threads\n", name, n);

    /* step(): two sequences prefilled + decoded together vs each alone */
    if (m->lm_head.data) {
        int V = m->cfg.n_vocab;
        ragd_engine_opts o = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = 1024, .max_seqs = 2, .max_ctx = 512,
                              .kv_cache = true, .n_threads = 2};
        ragd_engine *e = NULL;
        CHECK(ragd_engine_create(m, &o, &e, &err) == RAGD_OK);
        float *la = malloc(sizeof(float) * 2 * V), *lb = malloc(sizeof(float) * 2 * V);
        int a = 0, c = 2; /* texts 0 and 2 */
        int32_t slot0 = 0, slot1 = 1, slots[2] = {0, 1};
        int nc = 0;
        int32_t s1[2] = {0, len[a]};
        ragd_batch ba = {1, ids[a], s1, NULL};
        CHECK(ragd_engine_seq_open(e, 0, ids[a], len[a], &nc, &err) == RAGD_OK);
        CHECK(ragd_engine_step(e, &ba, &slot0, NULL, NULL, la, &err) == RAGD_OK);
        int32_t s2[2] = {0, len[c]};
        ragd_batch bc = {1, ids[c], s2, NULL};
        CHECK(ragd_engine_seq_open(e, 1, ids[c], len[c], &nc, &err) == RAGD_OK);
        CHECK(ragd_engine_step(e, &bc, &slot1, NULL, NULL, la + V, &err) == RAGD_OK);
        ragd_engine_seq_close(e, 0);
        ragd_engine_seq_close(e, 1);
        CHECK(ragd_engine_seq_open(e, 0, ids[a], len[a], &nc, &err) == RAGD_OK);
        CHECK(ragd_engine_seq_open(e, 1, ids[c], len[c], &nc, &err) == RAGD_OK);
        memcpy(tok, ids[a], sizeof(int32_t) * (size_t)len[a]);
        memcpy(tok + len[a], ids[c], sizeof(int32_t) * (size_t)len[c]);
        int32_t s3[3] = {0, len[a], len[a] + len[c]};
        ragd_batch both = {2, tok, s3, NULL};
        CHECK(ragd_engine_step(e, &both, slots, NULL, NULL, lb, &err) == RAGD_OK);
        CHECK(memcmp(la, lb, sizeof(float) * 2 * (size_t)V) == 0);
        /* one decode token each, together */
        int32_t nx[2] = {5, 7}, s4[3] = {0, 1, 2};
        ragd_batch dec = {2, nx, s4, NULL};
        CHECK(ragd_engine_step(e, &dec, slots, NULL, NULL, lb, &err) == RAGD_OK);
        CHECK_EQ_INT(ragd_engine_seq_len(e, 0), len[a] + 1);
        int32_t s5[2] = {0, 1};
        ragd_batch d1 = {1, &nx[1], s5, NULL};
        ragd_engine_seq_close(e, 1);
        CHECK(ragd_engine_seq_open(e, 1, ids[c], len[c], &nc, &err) == RAGD_OK);
        CHECK(ragd_engine_step(e, &bc, &slot1, NULL, NULL, la, &err) == RAGD_OK);
        CHECK(ragd_engine_step(e, &d1, &slot1, NULL, NULL, la, &err) == RAGD_OK);
        CHECK(memcmp(la, lb + V, sizeof(float) * (size_t)V) == 0);
        free(la);
        free(lb);
        ragd_engine_free(e);
    }
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(len);
    free(alone);
    free(got);
    free(tok);
    free(ss);
    ragd_model_free(m);
    json_decref(ref);
    free(dir);
    ragd_err_free(&err);
}

int main(void) {
    for (int k = 0; k < N_GOLDEN_MODELS; k++) run_model(golden_models[k]);
    TEST_DONE();
}
