/* test_sched_plan.c — the memory-plan refusal (issue 18), CPU backend with a budget (the same arithmetic
 * as on a GPU): with a budget below the plans, ragd_sched_create
 * refuses with RAGD_ENOMEM, the numbers, and for each of --max-batch-tokens / --max-model-len /
 * --max-seqs the largest value that alone would fit; each suggested value then does start (and one more
 * does not: the suggestion is the largest). A budget below the weights says that no setting fits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "sched/sched.h"
#include "test.h"

static ragd_served_model g_sm;
static size_t g_in_use, g_probe, g_reserve; /* mem_in_use, and what the fake probe reports after the engines (0: no probe) */

static ragd_status fake_probe(void *ctx, size_t *in_use, ragd_err *err) {
    (void)ctx, (void)err;
    *in_use = g_probe;
    return RAGD_OK;
}

static ragd_status try_start(size_t budget, int mbt, int ctx, int seqs, ragd_err *err) {
    g_sm.batch_seqs = seqs;
    g_sm.max_len[RAGD_ROLE_CHAT] = ctx;
    atomic_store(&g_sm.ready, false);
    ragd_sched_opts so = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = mbt, .max_seqs = seqs,
                          .kv_block_size = 16, .kv_cache_tokens = 4096, .prefix_cache = true, .max_batch_seqs = seqs, .max_queue = 16,
                          .max_queue_tokens = 1 << 20, .n_threads = 1, .mem_limit = budget,
                          .mem_in_use = g_in_use, .mem_reserve = g_reserve, .mem_probe = g_probe ? fake_probe : NULL};
    ragd_served_model *sms[1] = {&g_sm};
    ragd_sched *s = NULL;
    ragd_status st = ragd_sched_create(&so, sms, 1, &s, err);
    if (s) ragd_sched_free(s);
    return st;
}

/* the value after "NAME " in msg, or -1 */
static int suggested(const char *msg, const char *name) {
    const char *p = strstr(msg, name);
    return p ? atoi(p + strlen(name) + 1) : -1;
}

int main(void) {
    char *dir = golden_path("models", "qwen3-tiny", "");
    ragd_model *m = NULL;
    ragd_err err = {0};
    if (ragd_model_load(dir, &m, &err)) {
        fprintf(stderr, "%s\n", ragd_err_msg(&err));
        return 1;
    }
    g_sm = (ragd_served_model){.name = "tiny", .model = m};
    g_sm.roles[RAGD_ROLE_CHAT] = true;
    enum { MBT = 2048, CTX = 512, SEQS = 16 };
    /* the plan at these settings (a KV pool of 4,096 tokens, so it does not grow into the budget): a
     * generous budget starts; its total is in the served model's plan */
    CHECK(try_start((size_t)1 << 30, MBT, CTX, SEQS, &err) == RAGD_OK);
    const size_t full = g_sm.plan.total, weights = g_sm.plan.weights + g_sm.plan.workspace;
    ragd_err_free(&err);
    printf("plan at mbt %d ctx %d seqs %d: %.2f MiB (weights + workspace %.2f MiB)\n", MBT, CTX, SEQS,
           full / 1048576.0, weights / 1048576.0);
    /* a budget below the plan */
    const size_t budget = weights + (full - weights) * 6 / 10;
    ragd_status st = try_start(budget, MBT, CTX, SEQS, &err);
    CHECK_EQ_INT(st, RAGD_ENOMEM);
    const char *msg = ragd_err_msg(&err);
    printf("refusal: %s\n", msg);
    CHECK(strstr(msg, "but the plans' budget is") != NULL);
    CHECK(strstr(msg, "it would fit with") != NULL);
    int v_mbt = suggested(msg, "--max-batch-tokens"), v_ctx = suggested(msg, "--max-model-len"),
        v_seq = suggested(msg, "--max-seqs");
    ragd_err_free(&err);
    CHECK(v_mbt > 0 || v_ctx > 0 || v_seq > 0);
    /* each suggestion starts, and is the largest that does */
    if (v_mbt > 0) {
        CHECK(v_mbt < MBT);
        CHECK(try_start(budget, v_mbt, CTX, SEQS, &err) == RAGD_OK); ragd_err_free(&err);
        CHECK(try_start(budget, v_mbt + 1, CTX, SEQS, &err) == RAGD_ENOMEM); ragd_err_free(&err);
    }
    if (v_ctx > 0) {
        CHECK(v_ctx < CTX);
        CHECK(try_start(budget, MBT, v_ctx, SEQS, &err) == RAGD_OK); ragd_err_free(&err);
        CHECK(try_start(budget, MBT, v_ctx + 1, SEQS, &err) == RAGD_ENOMEM); ragd_err_free(&err);
    }
    if (v_seq > 0) {
        CHECK(v_seq < SEQS);
        CHECK(try_start(budget, MBT, CTX, v_seq, &err) == RAGD_OK); ragd_err_free(&err);
        CHECK(try_start(budget, MBT, CTX, v_seq + 1, &err) == RAGD_ENOMEM); ragd_err_free(&err);
    }
    /* what the device already holds comes off the budget: the same budget plus that much in use refuses */
    g_in_use = budget;
    st = try_start(2 * budget - 1, MBT, CTX, SEQS, &err);
    CHECK_EQ_INT(st, RAGD_ENOMEM);
    printf("refusal: %s\n", ragd_err_msg(&err));
    CHECK(strstr(ragd_err_msg(&err), "already in use") != NULL);
    ragd_err_free(&err);
    st = try_start(budget, MBT, CTX, SEQS, &err); /* all of it in use */
    CHECK_EQ_INT(st, RAGD_ENOMEM);
    CHECK(strstr(ragd_err_msg(&err), "already holds") != NULL);
    ragd_err_free(&err);
    g_in_use = 0;
    /* after the engines exist, the device (probe) must be within the budget */
    g_probe = ((size_t)1 << 30) + 1;
    st = try_start((size_t)1 << 30, MBT, CTX, SEQS, &err);
    CHECK_EQ_INT(st, RAGD_ENOMEM);
    printf("refusal: %s\n", ragd_err_msg(&err));
    CHECK(strstr(ragd_err_msg(&err), "after creating the engines the device holds") != NULL);
    ragd_err_free(&err);
    g_probe = (size_t)1 << 29;
    CHECK(try_start((size_t)1 << 30, MBT, CTX, SEQS, &err) == RAGD_OK);
    ragd_err_free(&err);
    g_probe = 0;
    /* the reserve for allocations outside the plans comes off the budget too: the plan plus the reserve
     * starts, one byte less refuses and says so; a budget not above the reserve refuses before planning */
    g_reserve = (size_t)64 << 20;
    CHECK(try_start(full + g_reserve, MBT, CTX, SEQS, &err) == RAGD_OK);
    ragd_err_free(&err);
    CHECK_EQ_INT(g_sm.plan.total, full);
    st = try_start(full + g_reserve - 1, MBT, CTX, SEQS, &err);
    CHECK_EQ_INT(st, RAGD_ENOMEM);
    printf("refusal: %s\n", ragd_err_msg(&err));
    CHECK(strstr(ragd_err_msg(&err), "64.0 MiB kept for allocations outside the plans") != NULL);
    ragd_err_free(&err);
    st = try_start(g_reserve, MBT, CTX, SEQS, &err);
    CHECK_EQ_INT(st, RAGD_ENOMEM);
    CHECK(strstr(ragd_err_msg(&err), "not more than the 64.0 MiB kept") != NULL);
    ragd_err_free(&err);
    g_reserve = 0;
    /* below the weights: no setting fits, and the message says what the weights need */
    st = try_start(weights / 2, MBT, CTX, SEQS, &err);
    CHECK_EQ_INT(st, RAGD_ENOMEM);
    msg = ragd_err_msg(&err);
    printf("refusal: %s\n", msg);
    CHECK(strstr(msg, "no single setting") != NULL);
    CHECK(strstr(msg, "weights and workspaces alone need") != NULL);
    ragd_err_free(&err);
    ragd_model_free(m);
    free(dir);
    printf("test_sched_plan: %d passed, %d failed\n", t_passed, t_failed);
    return t_failed ? 1 : 0;
}
