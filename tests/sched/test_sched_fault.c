/* test_sched_fault.c — ragd_sched_mark_not_ready (a GPU that NVML reports unhealthy, issue 15), CPU backend:
 * from another thread, the scheduler marks its models not ready with the reason within a loop, a submit
 * is then refused with RAGD_EUNAVAILABLE naming it, the first reason stays (a second call changes nothing),
 * and a model of the scheduler is not ready before the call only while loading. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "golden.h"
#include "sched/sched.h"
#include "test.h"

static void on_done(void *ctx) { (void)ctx; }
static bool alive(void *ctx) {
    (void)ctx;
    return true;
}
static const ragd_task_sink g_sink = {alive, NULL, on_done};

int main(void) {
    char *dir = golden_path("models", "qwen3-embed-tiny", "");
    ragd_model *m = NULL;
    ragd_err err = {0};
    if (ragd_model_load(dir, &m, &err)) {
        fprintf(stderr, "%s\n", ragd_err_msg(&err));
        return 1;
    }
    ragd_served_model sm = {.name = "embed-tiny", .model = m, .batch_seqs = 8};
    sm.roles[RAGD_ROLE_EMBED] = true;
    sm.max_len[RAGD_ROLE_EMBED] = 64;
    ragd_sched_opts so = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = 256, .max_seqs = 8, .max_batch_seqs = 8,
                          .max_queue = 16, .max_queue_tokens = 1 << 16, .n_threads = 1};
    ragd_served_model *sms[1] = {&sm};
    ragd_sched *s = NULL;
    CHECK(ragd_sched_create(&so, sms, 1, &s, &err) == RAGD_OK);
    if (!s) {
        fprintf(stderr, "%s\n", ragd_err_msg(&err));
        return 1;
    }
    CHECK(atomic_load(&sm.ready));
    CHECK(sm.not_ready_reason == NULL);

    ragd_sched_mark_not_ready(s, "GPU 0 is unhealthy: uncorrectable ECC errors rose from 0 at start to 3");
    for (int i = 0; i < 200 && atomic_load(&sm.ready); i++) usleep(10000);
    CHECK(!atomic_load(&sm.ready));
    CHECK(sm.not_ready_reason && strstr(sm.not_ready_reason, "GPU 0 is unhealthy: uncorrectable ECC errors rose"));
    ragd_sched_mark_not_ready(s, "GPU 0 is unhealthy: something else");
    usleep(50000);
    CHECK(sm.not_ready_reason && !strstr(sm.not_ready_reason, "something else"));

    int32_t toks[4] = {1, 2, 3, 4}, start[2] = {0, 4};
    float out[64 * 8];
    ragd_task t = {.kind = RAGD_TASK_EMBED, .tokens = toks, .seq_start = start, .n_seqs = 1,
                   .embed = {.normalize = true}, .out = out, .sink = &g_sink};
    ragd_status st = ragd_sched_submit(s, &sm, &t, &err);
    CHECK_EQ_INT(st, RAGD_EUNAVAILABLE);
    CHECK(strstr(ragd_err_msg(&err), "GPU 0 is unhealthy") != NULL);
    ragd_err_free(&err);

    ragd_sched_free(s);
    free(sm.not_ready_reason);
    ragd_model_free(m);
    free(dir);
    printf("test_sched_fault: %d passed, %d failed\n", t_passed, t_failed);
    return t_failed ? 1 : 0;
}
