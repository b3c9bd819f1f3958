/* test_engine_errors.c — the engine's refusals: bad limits, a plan over mem_limit (with the numbers),
 * a device this build lacks, a KV pool too small for one sequence, and bad batches (ids outside the
 * vocabulary, too many tokens or sequences, empty sequences, a sequence slot twice or not open, past
 * max_ctx, a full KV pool, step without a KV cache, a score row outside the vocabulary, bad sampling
 * parameters). Each must return the status and a message, never crash, and change nothing. */
#include <stdio.h>

#include "engine/engine.h"
#include "golden.h"
#include "test.h"

static ragd_model *load(const char *name) {
    char *dir = golden_path("models", name, "");
    ragd_model *m = NULL;
    ragd_err err = {0};
    if (ragd_model_load(dir, &m, &err)) fprintf(stderr, "%s: %s\n", name, ragd_err_msg(&err));
    free(dir);
    ragd_err_free(&err);
    return m;
}

#define EXPECT(call, code, needle)                                                                  \
    do {                                                                                            \
        ragd_err _e = {0};                                                                          \
        ragd_err *err = &_e;                                                                        \
        ragd_status _s = (call);                                                                    \
        CHECK_EQ_INT(_s, code);                                                                     \
        if (!strstr(ragd_err_msg(&_e), needle)) {                                                   \
            fprintf(stderr, "message \"%s\" lacks \"%s\"\n", ragd_err_msg(&_e), needle);            \
            CHECK(0);                                                                               \
        }                                                                                           \
        ragd_err_free(&_e);                                                                         \
    } while (0)

int main(void) {
    ragd_model *m = load("qwen3-tiny");
    CHECK(m != NULL);
    if (!m) TEST_DONE();
    ragd_engine *e = NULL;
    ragd_engine_plan plan;
    ragd_engine_opts o = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = 16, .max_seqs = 2, .max_ctx = 32,
                          .kv_cache = true, .n_threads = 1};

    ragd_engine_opts bad = o;
    bad.max_seqs = 0;
    EXPECT(ragd_engine_create(m, &bad, &e, err), RAGD_ERANGE, "max_seqs 0");
    bad = o;
    bad.max_ctx = 1 << 20;
    EXPECT(ragd_engine_create(m, &bad, &e, err), RAGD_ERANGE, "max_position_embeddings");
    bad = o;
    bad.mem_limit = 1000;
    EXPECT(ragd_engine_create(m, &bad, &e, err), RAGD_ENOMEM, "exceeds the limit");
    bad = o;
    bad.kv_blocks = 1; /* max_ctx 32 needs 2 blocks of 16 */
    EXPECT(ragd_engine_create(m, &bad, &e, err), RAGD_ERANGE, "cannot hold one sequence");
    bad = o;
    bad.kv_block_size = 12;
    EXPECT(ragd_engine_create(m, &bad, &e, err), RAGD_EINVAL, "power of two");
#ifndef RAGD_HAVE_CUDA
    bad = o;
    bad.device = RAGD_DEVICE_CUDA;
    EXPECT(ragd_engine_create(m, &bad, &e, err), RAGD_EUNSUPPORTED, "without the CUDA backend");
#endif
    CHECK(e == NULL);

    /* the plan adds up and counts the KV cache exactly */
    ragd_err err0 = {0};
    CHECK(ragd_engine_plan_compute(m, &o, &plan, &err0) == RAGD_OK);
    CHECK_EQ_INT(plan.total, plan.weights + plan.activations + plan.kv_cache + plan.workspace);
    size_t kv = 2ull * m->cfg.n_layer * 2 * 32 * m->cfg.n_head_kv * m->cfg.head_dim * sizeof(float);
    CHECK_EQ_INT(plan.kv_cache, kv);
    ragd_engine_opts nokv = o;
    nokv.kv_cache = false;
    ragd_engine_plan p2;
    CHECK(ragd_engine_plan_compute(m, &nokv, &p2, &err0) == RAGD_OK);
    CHECK_EQ_INT(p2.kv_cache, 0);

    CHECK(ragd_engine_create(m, &o, &e, &err0) == RAGD_OK);
    CHECK(ragd_engine_get_plan(e)->total == plan.total);
    float *out = malloc(sizeof(float) * 4 * (size_t)m->cfg.n_vocab);
    int32_t toks[40] = {1, 2, 3, 4, 5, 6};
    int32_t ss[3] = {0, 3, 6};
    int32_t slots[2] = {0, 1}, same[2] = {1, 1};
    ragd_batch b = {2, toks, ss, NULL};
    EXPECT(ragd_engine_step(e, &b, slots, NULL, NULL, out, err), RAGD_EINVAL, "sequence slot 0 is not open");
    int nc = -1;
    CHECK(ragd_engine_seq_open(e, 0, toks, 3, &nc, &err0) == RAGD_OK);
    CHECK_EQ_INT(nc, 0);
    EXPECT(ragd_engine_seq_open(e, 0, toks, 3, &nc, err), RAGD_EINVAL, "already open");
    EXPECT(ragd_engine_seq_open(e, 2, toks, 3, &nc, err), RAGD_ERANGE, "outside [0, 2)");
    CHECK(ragd_engine_seq_open(e, 1, toks + 3, 3, &nc, &err0) == RAGD_OK);
    ragd_sample_params sp[2] = {{.top_p = 1, .active = 1}, {.temperature = -1, .top_p = 1, .active = 1}};
    ragd_sample_out so[2];
    EXPECT(ragd_engine_step(e, &b, slots, sp, so, out, err), RAGD_ERANGE, "temperature -1");
    CHECK_EQ_INT(ragd_engine_seq_len(e, 1), 0); /* a refused step changes nothing */
    sp[1].temperature = 0;
    { /* logit processing (ragd_step_proc): refused before anything is computed */
        ragd_logit_edit ed[2] = {{.id = 1}, {.id = 1}};
        ragd_step_proc pr = {.edits = ed, .n_edits = 2};
        sp[0].n_edit = 2;
        EXPECT(ragd_engine_step_proc(e, &b, slots, sp, &pr, so, out, err), RAGD_EINVAL, "token 1 edited twice");
        ed[1].id = m->cfg.n_vocab;
        EXPECT(ragd_engine_step_proc(e, &b, slots, sp, &pr, so, out, err), RAGD_ERANGE, "outside the vocabulary");
        sp[0].n_edit = 3;
        EXPECT(ragd_engine_step_proc(e, &b, slots, sp, &pr, so, out, err), RAGD_ERANGE, "outside the step's 2");
        sp[0].n_edit = 0;
        sp[0].mask_row = 1;
        EXPECT(ragd_engine_step_proc(e, &b, slots, sp, &pr, so, out, err), RAGD_ERANGE, "mask row 1 outside 1..0");
        sp[0].mask_row = 0;
        sp[0].repetition_penalty = -1;
        EXPECT(ragd_engine_step_proc(e, &b, slots, sp, &pr, so, out, err), RAGD_ERANGE, "penalties must be finite");
        sp[0].repetition_penalty = 0;
        CHECK_EQ_INT(ragd_engine_seq_len(e, 0), 0);
    }
    CHECK(ragd_engine_step(e, &b, slots, sp, so, out, &err0) == RAGD_OK);
    CHECK_EQ_INT(ragd_engine_seq_len(e, 0), 3);
    CHECK(so[0].token >= 0 && so[0].token < m->cfg.n_vocab && !so[0].nonfinite);

    toks[1] = m->cfg.n_vocab;
    EXPECT(ragd_engine_step(e, &b, slots, NULL, NULL, out, err), RAGD_ERANGE, "outside the vocabulary");
    toks[1] = -1;
    EXPECT(ragd_engine_pool(e, &b, RAGD_POOL_LAST, out, err), RAGD_ERANGE, "token id -1");
    toks[1] = 2;
    EXPECT(ragd_engine_step(e, &b, same, NULL, NULL, out, err), RAGD_EINVAL, "used twice");
    int32_t ss_empty[3] = {0, 0, 6};
    ragd_batch be = {2, toks, ss_empty, NULL};
    EXPECT(ragd_engine_pool(e, &be, RAGD_POOL_LAST, out, err), RAGD_EINVAL, "empty");
    int32_t ss_big[2] = {0, 17};
    ragd_batch bb = {1, toks, ss_big, NULL};
    EXPECT(ragd_engine_pool(e, &bb, RAGD_POOL_LAST, out, err), RAGD_ERANGE, "max_batch_tokens 16");
    int32_t ss3[4] = {0, 1, 2, 3};
    ragd_batch b3 = {3, toks, ss3, NULL};
    int32_t slots3[3] = {0, 1, 2};
    EXPECT(ragd_engine_step(e, &b3, slots3, NULL, NULL, out, err), RAGD_ERANGE, "max_seqs 2");
    int32_t bad_slot = 5, ss1[2] = {0, 1};
    ragd_batch b1 = {1, toks, ss1, NULL};
    EXPECT(ragd_engine_step(e, &b1, &bad_slot, NULL, NULL, out, err), RAGD_ERANGE, "sequence slot 5");
    /* fill slot 0 to max_ctx 32: it holds 3, add 16 + 13, then one more is refused */
    int32_t s16[2] = {0, 16}, s13[2] = {0, 13};
    ragd_batch b16 = {1, toks, s16, NULL}, b13 = {1, toks, s13, NULL};
    int32_t slot0 = 0;
    for (int i = 6; i < 40; i++) toks[i] = i;
    CHECK(ragd_engine_step(e, &b16, &slot0, NULL, NULL, out, &err0) == RAGD_OK);
    CHECK(ragd_engine_step(e, &b13, &slot0, NULL, NULL, out, &err0) == RAGD_OK);
    CHECK_EQ_INT(ragd_engine_seq_len(e, 0), 32);
    EXPECT(ragd_engine_step(e, &b1, &slot0, NULL, NULL, out, err), RAGD_ERANGE, "exceed max_ctx 32");
    CHECK_EQ_INT(ragd_engine_seq_len(e, 0), 32); /* a refused step changes nothing */
    ragd_engine_free(e);

    /* a pool of 2 blocks (one sequence of 32): the second sequence's step is refused with EBUSY */
    ragd_engine_opts small = o;
    small.kv_blocks = 2;
    CHECK(ragd_engine_create(m, &small, &e, &err0) == RAGD_OK);
    CHECK(ragd_engine_seq_open(e, 0, toks, 17, &nc, &err0) == RAGD_OK);
    CHECK(ragd_engine_seq_open(e, 1, toks, 1, &nc, &err0) == RAGD_OK);
    int32_t s17[2] = {0, 16};
    ragd_batch b17 = {1, toks, s17, NULL};
    CHECK(ragd_engine_step(e, &b17, &slot0, NULL, NULL, out, &err0) == RAGD_OK);
    CHECK(ragd_engine_step(e, &b1, &slot0, NULL, NULL, out, &err0) == RAGD_OK); /* 17 positions: 2 blocks */
    CHECK_EQ_INT(ragd_engine_kv_available(e), 0);
    int32_t slot1 = 1;
    EXPECT(ragd_engine_step(e, &b1, &slot1, NULL, NULL, out, err), RAGD_EBUSY, "KV cache full");
    CHECK_EQ_INT(ragd_engine_seq_len(e, 1), 0);
    ragd_engine_seq_close(e, 0);
    CHECK_EQ_INT(ragd_engine_kv_available(e), 2);
    CHECK(ragd_engine_step(e, &b1, &slot1, NULL, NULL, out, &err0) == RAGD_OK);
    ragd_engine_free(e);

    CHECK(ragd_engine_create(m, &nokv, &e, &err0) == RAGD_OK);
    EXPECT(ragd_engine_step(e, &b1, &slot0, NULL, NULL, out, err), RAGD_EINVAL, "without a KV cache");
    int32_t row = m->cfg.n_vocab;
    EXPECT(ragd_engine_score(e, &b1, &row, 1, out, err), RAGD_ERANGE, "score row");
    ragd_engine_free(e);
    ragd_model_free(m);

    free(out);
    ragd_err_free(&err0);
    TEST_DONE();
}
