/* test_sched_gen.c — the generation contract through the scheduler (CPU, tiny Qwen3 fixture): the
 * tokens of a request — greedy or seeded — and their logprob bits are identical
 *   A. alone (one request at a time, whole prompts in one step, no prefix cache) — the reference;
 *   B. among 63 other requests, submitted at once, prompts prefilled in chunks of 64 tokens;
 *   C. with the prefix cache on (a shared 48-token system prefix; a second pass hits the cache), chunks of
 *      37, and n = 2 choices whose second choice starts from the cache;
 *   D. with a KV pool so small that sequences are preempted and recomputed (chunks of 16);
 * — with logit processing on some probes: structured output (a JSON schema: token masks, the matcher
 * advanced by every token, the choice ended when the value is complete), presence / frequency /
 * repetition penalties and logit_bias — and the scheduler's bookkeeping holds: prefix hits and preemptions counted (metrics), a cancelled
 * request's blocks are released within one step, every block is free or cached when idle. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "golden.h"
#include "grammar/grammar.h"
#include "sched/sched.h"
#include "test.h"

enum { N_PROBE = 20, N_OTHER = 63, MAX_NEW = 48, SYS = 48, MAX_LEN = 256 };

typedef struct job {
    ragd_task t;
    int32_t *tokens;
    int32_t seq_start[2];
    int32_t ids[2][MAX_NEW];
    float lp[2][MAX_NEW];
    int n[2];
    bool done;
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
} job;

static bool alive(void *ctx) {
    (void)ctx;
    return true;
}
static void on_gen(void *ctx, const ragd_gen_event *ev) {
    job *j = ctx;
    if (!ev->has_token) return;
    int c = ev->choice;
    if (j->n[c] < MAX_NEW) {
        j->ids[c][j->n[c]] = ev->token;
        j->lp[c][j->n[c]] = ev->logprob;
        j->n[c]++;
    }
}
static void on_done(void *ctx) {
    job *j = ctx;
    pthread_mutex_lock(j->mu);
    j->done = true;
    pthread_cond_broadcast(j->cv);
    pthread_mutex_unlock(j->mu);
}
static const ragd_task_sink g_sink = {alive, on_gen, on_done};
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;

static uint64_t g_rng = 88172645463325252ull;
static int rnd(int n) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (int)(g_rng % (uint64_t)n);
}

/* a prompt: the shared system prefix (when sys) then random ids in [0, 900) */
static int32_t *make_prompt(int n, bool sys, const int32_t *sys_ids) {
    int32_t *p = malloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n; i++) p[i] = sys && i < SYS ? sys_ids[i] : rnd(900);
    return p;
}

static ragd_grammar *g_schema; /* the structured-output probes' grammar (shared: the mask cache sees one fingerprint) */
static const ragd_logit_edit g_bias[] = {{.id = 17, .bias = 2.5f}, {.id = 230, .bias = -1.0f}, {.id = 5, .bias = 0.75f}};

/* probe kinds by index: 4k + 3 structured output, 4k + 2 penalties + logit_bias, else plain */
static void job_proc(job *j, int i) {
    ragd_gen_opts *g = &j->t.gen;
    if (i % 4 == 3) {
        g->grammar = g_schema;
        g->ignore_eos = false; /* the grammar decides where the answer ends */
    } else if (i % 4 == 2) {
        g->presence_penalty = 0.5f;
        g->frequency_penalty = 0.3f;
        g->repetition_penalty = 1.2f;
        g->logit_bias = g_bias;
        g->n_logit_bias = 3;
    }
}

static void job_init(job *j, int32_t *tokens, int n, bool sampled, uint64_t seed, int n_choices) {
    memset(j, 0, sizeof *j);
    j->tokens = tokens;
    j->seq_start[1] = n;
    j->mu = &g_mu;
    j->cv = &g_cv;
    ragd_task *t = &j->t;
    t->kind = RAGD_TASK_GENERATE;
    t->tokens = tokens;
    t->seq_start = j->seq_start;
    t->n_seqs = 1;
    t->n_choices = n_choices;
    t->want_logprobs = true;
    t->top_logprobs = 2;
    t->gen.max_tokens = MAX_NEW;
    t->gen.ignore_eos = true;
    /* the tiny random model is peaked (p ≈ 0.9+ on one token): a high temperature keeps draws apart */
    t->gen.sampling = sampled ? (ragd_sampler_opts){.temperature = 3.0f, .top_p = 0.97f, .top_k = 300, .seed = seed}
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

typedef struct setup {
    int max_seqs, step_tokens;
    int64_t kv_tokens;
    bool prefix;
} setup;

static ragd_sched *start(ragd_served_model *sm, ragd_metrics *met, setup su) {
    sm->batch_seqs = su.max_seqs;
    atomic_store(&sm->ready, false);
    ragd_sched_opts so = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = 512, .max_seqs = su.max_seqs,
                          .max_step_tokens = su.step_tokens, .kv_block_size = 16, .kv_cache_tokens = su.kv_tokens,
                          .prefix_cache = su.prefix, .max_batch_seqs = su.max_seqs, .max_queue = 1024,
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

/* a gauge or counter from the metrics text */
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

static int compare(const char *what, job *ref, job *got, int n_probe) {
    int diff = 0;
    for (int i = 0; i < n_probe; i++) {
        bool same = ref[i].n[0] == got[i].n[0] && !memcmp(ref[i].ids[0], got[i].ids[0], sizeof(int32_t) * MAX_NEW) &&
                    !memcmp(ref[i].lp[0], got[i].lp[0], sizeof(float) * (size_t)ref[i].n[0]);
        if (!same) {
            diff++;
            fprintf(stderr, "%s: probe %d differs (%d vs %d tokens, first ids %d vs %d)\n", what, i, ref[i].n[0],
                    got[i].n[0], ref[i].ids[0][0], got[i].ids[0][0]);
        }
    }
    printf("%-44s %d of %d probes identical (ids and logprob bits)\n", what, n_probe - diff, n_probe);
    return diff;
}

int main(void) {
    char *dir = golden_path("models", "qwen3-tiny", "");
    ragd_model *m = NULL;
    ragd_err err = {0};
    if (ragd_model_load(dir, &m, &err)) {
        fprintf(stderr, "%s\n", ragd_err_msg(&err));
        return 1;
    }
    ragd_served_model sm = {.name = "tiny", .model = m};
    sm.roles[RAGD_ROLE_CHAT] = true;
    sm.max_len[RAGD_ROLE_CHAT] = MAX_LEN;
    ragd_metrics *met = ragd_metrics_create();
    json_t *schema = json_loads("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"boolean\"},\"b\":{\"type\":\"string\","
                                "\"maxLength\":3},\"c\":{\"enum\":[\"x\",\"yy\"]}},\"required\":[\"a\",\"b\",\"c\"],"
                                "\"additionalProperties\":false}", 0, NULL);
    CHECK(schema && ragd_grammar_compile_schema(schema, &g_schema, &err) == RAGD_OK);
    json_decref(schema);

    int32_t sys_ids[SYS];
    for (int i = 0; i < SYS; i++) sys_ids[i] = rnd(900);
    int32_t *probe_tok[N_PROBE], *other_tok[N_OTHER];
    int probe_len[N_PROBE], other_len[N_OTHER];
    for (int i = 0; i < N_PROBE; i++) {
        probe_len[i] = i % 2 ? SYS + 5 + rnd(120) : 5 + rnd(120);
        probe_tok[i] = make_prompt(probe_len[i], i % 2, sys_ids);
    }
    for (int i = 0; i < N_OTHER; i++) {
        other_len[i] = 3 + rnd(150);
        other_tok[i] = make_prompt(other_len[i], i % 3 == 0, sys_ids);
    }
    static job ref[N_PROBE], got[N_PROBE], others[N_OTHER];
    job *all[N_PROBE + N_OTHER];

    /* A: the reference, one request at a time */
    int n_json = 0;
    ragd_sched *s = start(&sm, met, (setup){.max_seqs = 4, .step_tokens = 512});
    for (int i = 0; i < N_PROBE; i++) {
        job_init(&ref[i], probe_tok[i], probe_len[i], i >= N_PROBE / 2, 1000 + i, 1);
        job_proc(&ref[i], i);
        submit(s, &sm, &ref[i]);
        job *one = &ref[i];
        wait_all(&one, 1);
        CHECK_EQ_INT(ref[i].t.status, RAGD_OK);
        if (i % 4 != 3) CHECK_EQ_INT(ref[i].n[0], MAX_NEW);
        else { /* ended by the grammar (value complete) before max_tokens: the text is the object */
            CHECK(ref[i].n[0] >= 8 && ref[i].n[0] <= MAX_NEW);
            ragd_buf txt = {0};
            CHECK(ragd_tokenizer_decode(m->tok, ref[i].ids[0], (size_t)ref[i].n[0], true, &txt, &err) == RAGD_OK);
            json_t *v = ref[i].n[0] < MAX_NEW ? json_loadb(txt.data, txt.len, 0, NULL) : NULL;
            if (ref[i].n[0] < MAX_NEW) {
                CHECK(json_is_boolean(json_object_get(v, "a")) && json_is_string(json_object_get(v, "b")) &&
                      json_is_string(json_object_get(v, "c")) && json_object_size(v) == 3);
                n_json++;
            }
            json_decref(v);
            ragd_buf_free(&txt);
        }
    }
    ragd_sched_free(s);
    printf("structured-output probes: %d of %d complete objects that parse and match the schema\n", n_json, N_PROBE / 4);
    CHECK(n_json >= 1);

    /* the four other configurations: probes mixed into the others in a shuffled order */
    setup cfgs[] = {{.max_seqs = 16, .step_tokens = 64},
                    {.max_seqs = 16, .step_tokens = 37, .prefix = true},
                    {.max_seqs = 16, .step_tokens = 16, .kv_tokens = 2 * MAX_LEN, .prefix = true}};
    const char *names[] = {"B: among 63 others, chunks of 64", "C: prefix cache on (2 passes), chunks of 37",
                           "D: tiny KV pool (preemption), chunks of 16"};
    for (int c = 0; c < 3; c++) {
        double pre0 = metric(met, "ragd_preemptions_total"), hit0 = metric(met, "ragd_prefix_cache_hit_tokens_total");
        double st0 = metric(met, "ragd_generation_steps_total"),
               en0 = metric(met, "ragd_generation_step_seconds_total{part=\"engine\"}"),
               sc0 = metric(met, "ragd_generation_step_seconds_total{part=\"scheduler\"}");
        s = start(&sm, met, cfgs[c]);
        for (int pass = 0; pass < (c == 1 ? 2 : 1); pass++) {
            int n = 0;
            for (int i = 0; i < N_PROBE; i++) {
                job_init(&got[i], probe_tok[i], probe_len[i], i >= N_PROBE / 2, 1000 + i, c == 1 && i == 13 ? 2 : 1);
                job_proc(&got[i], i);
                all[n++] = &got[i];
            }
            for (int i = 0; i < N_OTHER; i++) {
                job_init(&others[i], other_tok[i], other_len[i], i % 2, 77 + i, 1);
                all[n++] = &others[i];
            }
            for (int i = n - 1; i > 0; i--) { /* shuffle */
                int k = rnd(i + 1);
                job *x = all[i];
                all[i] = all[k];
                all[k] = x;
            }
            for (int i = 0; i < n; i++) submit(s, &sm, all[i]);
            wait_all(all, n);
            for (int i = 0; i < n; i++) CHECK_EQ_INT(all[i]->t.status, RAGD_OK);
            char what[96];
            snprintf(what, sizeof what, "%s%s", names[c], c == 1 ? (pass ? " [warm]" : " [cold]") : "");
            CHECK_EQ_INT(compare(what, ref, got, N_PROBE), 0);
            if (c == 1) { /* the second choice of (sampled) probe 13 is a different draw stream of the same prompt */
                CHECK_EQ_INT(got[13].n[1], MAX_NEW);
                CHECK(memcmp(got[13].ids[0], got[13].ids[1], sizeof(int32_t) * MAX_NEW) != 0);
            }
        }
        double pre = metric(met, "ragd_preemptions_total") - pre0, hit = metric(met, "ragd_prefix_cache_hit_tokens_total") - hit0;
        printf("  preemptions %.0f, prefix-cache hit tokens %.0f\n", pre, hit);
        /* the step-time split: every generated token took a step; a step has engine and host time */
        double steps = metric(met, "ragd_generation_steps_total") - st0,
               eng = metric(met, "ragd_generation_step_seconds_total{part=\"engine\"}") - en0,
               sch = metric(met, "ragd_generation_step_seconds_total{part=\"scheduler\"}") - sc0;
        printf("  %.0f steps, engine %.3f s, scheduler %.3f s\n", steps, eng, sch);
        CHECK(steps >= MAX_NEW * (N_PROBE + N_OTHER) / 16);
        CHECK(eng > 0 && sch > 0);
        if (c == 1) CHECK(hit >= 30 * SYS);   /* shared system prompts and the warm pass */
        if (c == 2) CHECK(pre >= 1);
        if (c == 0) CHECK_EQ_INT(hit, 0);
        /* idle: no block is held by a sequence */
        CHECK_EQ_INT(metric(met, "ragd_kv_cache_blocks{state=\"used\"}"), 0);
        ragd_sched_free(s);
    }

    /* a cancelled request's blocks are released within a step */
    s = start(&sm, met, (setup){.max_seqs = 4, .step_tokens = 64});
    job lone;
    job_init(&lone, probe_tok[0], probe_len[0], false, 1, 1);
    lone.t.gen.max_tokens = MAX_LEN - probe_len[0] - 1;
    submit(s, &sm, &lone);
    for (int i = 0; i < 2000 && lone.n[0] < 3; i++) usleep(1000);
    CHECK(metric(met, "ragd_kv_cache_blocks{state=\"used\"}") > 0);
    atomic_store(&lone.t.cancel, true);
    job *lp = &lone;
    wait_all(&lp, 1);
    CHECK_EQ_INT(lone.t.status, RAGD_ECANCELLED);
    ragd_err_free(&lone.t.err); /* the task's message belongs to its owner */
    double used = -1;
    for (int i = 0; i < 1000; i++) {
        used = metric(met, "ragd_kv_cache_blocks{state=\"used\"}");
        if (used == 0) break;
        usleep(1000);
    }
    CHECK_EQ_INT(used, 0);
    CHECK(metric(met, "ragd_generation_finished_total{reason=\"cancelled\"}") >= 1);
    ragd_sched_free(s);

    for (int i = 0; i < N_PROBE; i++) free(probe_tok[i]);
    for (int i = 0; i < N_OTHER; i++) free(other_tok[i]);
    ragd_metrics_free(met);
    ragd_grammar_free(g_schema);
    ragd_model_free(m);
    free(dir);
    TEST_DONE();
}
