/* test_sched_qwen35.c — the generation contract through the scheduler for a hybrid model (the tiny
 * Qwen3.5 fixture of tests/engine/qwen35: Gated DeltaNet layers with per-sequence state): the tokens and
 * logprob bits of every probe (greedy or seeded) are identical
 *   A. alone (one request at a time, whole prompts in one step) — the reference;
 *   B. among 24 other requests submitted at once, prompts prefilled in chunks of 13, with the prefix cache
 *      asked for (it must stay off: no hit tokens, though every other prompt shares a 32-token prefix);
 *   C. with a KV pool so small that sequences are preempted and recomputed (chunks of 16);
 * and a cancelled request leaves no state behind (the next request in its slot gives the reference bits). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "sched/sched.h"
#include "test.h"

enum { N_PROBE = 8, N_OTHER = 24, MAX_NEW = 24, SYS = 32, MAX_LEN = 128, VOCAB = 300 };

typedef struct job {
    ragd_task t;
    int32_t *tokens;
    int32_t seq_start[2];
    int32_t ids[MAX_NEW];
    float lp[MAX_NEW];
    int n;
    int cancel_after; /* > 0: the sink cancels the request after this many tokens (deterministic, on the scheduler thread) */
    bool done;
} job;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;

static bool alive(void *ctx) {
    (void)ctx;
    return true;
}
static void on_gen(void *ctx, const ragd_gen_event *ev) {
    job *j = ctx;
    if (ev->has_token && ev->choice == 0 && j->n < MAX_NEW) {
        j->ids[j->n] = ev->token;
        j->lp[j->n++] = ev->logprob;
    }
    if (j->cancel_after && j->n >= j->cancel_after) atomic_store(&j->t.cancel, true);
}
static void on_done(void *ctx) {
    job *j = ctx;
    pthread_mutex_lock(&g_mu);
    j->done = true;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}
static const ragd_task_sink g_sink = {alive, on_gen, on_done};

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static int rnd(int n) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (int)(g_rng % (uint64_t)n);
}

static void job_init(job *j, int32_t *tokens, int n, bool sampled, uint64_t seed) {
    memset(j, 0, sizeof *j);
    j->tokens = tokens;
    j->seq_start[1] = n;
    ragd_task *t = &j->t;
    t->kind = RAGD_TASK_GENERATE;
    t->tokens = tokens;
    t->seq_start = j->seq_start;
    t->n_seqs = 1;
    t->n_choices = 1;
    t->want_logprobs = true;
    t->gen.max_tokens = MAX_NEW;
    t->gen.ignore_eos = true;
    t->gen.sampling = sampled ? (ragd_sampler_opts){.temperature = 1.5f, .top_p = 0.95f, .seed = seed}
                              : (ragd_sampler_opts){.temperature = 0, .top_p = 1};
    t->sink = &g_sink;
    t->ctx = j;
    t->t_arrival = ragd_now_s();
}

static void wait_all(job **js, int n) {
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < n; i++)
        while (!js[i]->done) pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
}

static ragd_sched *start(ragd_served_model *sm, ragd_metrics *met, int max_seqs, int step_tokens, int64_t kv_tokens) {
    sm->batch_seqs = max_seqs;
    atomic_store(&sm->ready, false);
    ragd_sched_opts so = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = 512, .max_seqs = max_seqs,
                          .max_step_tokens = step_tokens, .kv_block_size = 16, .kv_cache_tokens = kv_tokens,
                          .prefix_cache = true, .max_batch_seqs = max_seqs, .max_queue = 1024,
                          .max_queue_tokens = 1 << 24, .batch_delay_us = 0, .n_threads = 1, .metrics = met};
    ragd_served_model *sms[1] = {sm};
    ragd_sched *s = NULL;
    ragd_err err = {0};
    if (ragd_sched_create(&so, sms, 1, &s, &err)) fprintf(stderr, "sched: %s\n", ragd_err_msg(&err));
    CHECK(s != NULL);
    ragd_err_free(&err);
    return s;
}

static void submit(ragd_sched *s, ragd_served_model *sm, job *j) {
    ragd_err err = {0};
    ragd_status st = ragd_sched_submit(s, sm, &j->t, &err);
    if (st) fprintf(stderr, "submit: %s\n", ragd_err_msg(&err));
    CHECK(st == RAGD_OK);
    ragd_err_free(&err);
}

static double metric(ragd_metrics *m, const char *name) {
    ragd_buf b = {0};
    ragd_metrics_render(m, &b);
    double v = -1;
    size_t n = strlen(name);
    for (const char *p = b.data; p && (p = strstr(p, name)); p += n)
        if ((p == b.data || p[-1] == '\n') && p[n] == ' ') {
            v = atof(p + n + 1);
            break;
        }
    ragd_buf_free(&b);
    return v;
}

static int compare(const char *what, const job *ref, const job *got) {
    int same = 0;
    for (int i = 0; i < N_PROBE; i++)
        same += ref[i].n == got[i].n && !memcmp(ref[i].ids, got[i].ids, sizeof ref[i].ids) &&
                !memcmp(ref[i].lp, got[i].lp, sizeof(float) * (size_t)ref[i].n);
    printf("%-52s %d of %d probes identical (ids and logprob bits)\n", what, same, N_PROBE);
    return same;
}

int main(void) {
    const char *src = getenv("RAGD_SRC") ? getenv("RAGD_SRC") : ".";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/engine/qwen35", src);
    ragd_model *m = NULL;
    ragd_err err = {0};
    if (ragd_model_load(dir, &m, &err)) {
        fprintf(stderr, "%s\n", ragd_err_msg(&err));
        return 1;
    }
    ragd_served_model sm = {.name = "qwen35", .model = m};
    sm.roles[RAGD_ROLE_CHAT] = true;
    sm.max_len[RAGD_ROLE_CHAT] = MAX_LEN;
    ragd_metrics *met = ragd_metrics_create();

    int32_t sys[SYS];
    for (int i = 0; i < SYS; i++) sys[i] = rnd(VOCAB);
    int32_t *ptok[N_PROBE], *otok[N_OTHER];
    int plen[N_PROBE], olen[N_OTHER];
    for (int i = 0; i < N_PROBE + N_OTHER; i++) {
        int n = i % 2 ? SYS + 3 + rnd(60) : 2 + rnd(90); /* odd ones share the 32-token prefix */
        int32_t *p = malloc(sizeof(int32_t) * (size_t)n);
        for (int k = 0; k < n; k++) p[k] = i % 2 && k < SYS ? sys[k] : rnd(VOCAB);
        if (i < N_PROBE) ptok[i] = p, plen[i] = n;
        else otok[i - N_PROBE] = p, olen[i - N_PROBE] = n;
    }
    static job ref[N_PROBE], got[N_PROBE], others[N_OTHER];
    job *all[N_PROBE + N_OTHER];

    /* A: alone, whole prompts */
    ragd_sched *s = start(&sm, met, 4, 512, 0);
    for (int i = 0; i < N_PROBE; i++) {
        job_init(&ref[i], ptok[i], plen[i], i >= N_PROBE / 2, 500 + i);
        submit(s, &sm, &ref[i]);
        job *one = &ref[i];
        wait_all(&one, 1);
        CHECK_EQ_INT(ref[i].t.status, RAGD_OK);
        CHECK_EQ_INT(ref[i].n, MAX_NEW);
    }
    ragd_sched_free(s);

    const struct { int max_seqs, step; int64_t kv; const char *name; } cfgs[] = {
        {8, 13, 0, "B: among 24 others, chunks of 13, prefix cache asked"},
        {8, 16, 2 * MAX_LEN, "C: tiny KV pool (preemption), chunks of 16"},
    };
    for (int c = 0; c < 2; c++) {
        double pre0 = metric(met, "ragd_preemptions_total"), hit0 = metric(met, "ragd_prefix_cache_hit_tokens_total");
        s = start(&sm, met, cfgs[c].max_seqs, cfgs[c].step, cfgs[c].kv);
        int n = 0;
        for (int i = 0; i < N_PROBE; i++) {
            job_init(&got[i], ptok[i], plen[i], i >= N_PROBE / 2, 500 + i);
            all[n++] = &got[i];
        }
        for (int i = 0; i < N_OTHER; i++) {
            job_init(&others[i], otok[i], olen[i], i % 2, 90 + i);
            all[n++] = &others[i];
        }
        for (int i = n - 1; i > 0; i--) {
            int k = rnd(i + 1);
            job *x = all[i];
            all[i] = all[k];
            all[k] = x;
        }
        for (int i = 0; i < n; i++) submit(s, &sm, all[i]);
        wait_all(all, n);
        for (int i = 0; i < n; i++) CHECK_EQ_INT(all[i]->t.status, RAGD_OK);
        CHECK_EQ_INT(compare(cfgs[c].name, ref, got), N_PROBE);
        double pre = metric(met, "ragd_preemptions_total") - pre0,
               hit = metric(met, "ragd_prefix_cache_hit_tokens_total") - hit0;
        printf("  preemptions %.0f, prefix-cache hit tokens %.0f\n", pre, hit);
        CHECK_EQ_INT(hit, 0); /* off for hybrid models */
        if (c == 1) CHECK(pre >= 1);
        CHECK_EQ_INT(metric(met, "ragd_kv_cache_blocks{state=\"used\"}"), 0);
        ragd_sched_free(s);
    }

    /* a request cancelled mid-generation, then every probe again in the same single slot: reference bits */
    s = start(&sm, met, 1, 64, 0);
    job lone;
    job_init(&lone, otok[0], olen[0], false, 1);
    lone.t.gen.max_tokens = MAX_LEN - olen[0] - 1;
    lone.cancel_after = 3;
    submit(s, &sm, &lone);
    job *lp = &lone;
    wait_all(&lp, 1);
    CHECK_EQ_INT(lone.t.status, RAGD_ECANCELLED);
    CHECK(lone.n >= 3 && lone.n < MAX_NEW); /* stopped mid-generation: its slot held state */
    ragd_err_free(&lone.t.err);
    for (int i = 0; i < N_PROBE; i++) {
        job_init(&got[i], ptok[i], plen[i], i >= N_PROBE / 2, 500 + i);
        submit(s, &sm, &got[i]);
        job *one = &got[i];
        wait_all(&one, 1);
    }
    CHECK_EQ_INT(compare("D: one slot, after a cancelled request", ref, got), N_PROBE);
    ragd_sched_free(s);

    for (int i = 0; i < N_PROBE; i++) free(ptok[i]);
    for (int i = 0; i < N_OTHER; i++) free(otok[i]);
    ragd_metrics_free(met);
    ragd_model_free(m);
    TEST_DONE();
}
