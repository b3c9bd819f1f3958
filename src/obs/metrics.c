/* metrics.c — the process's metrics and their Prometheus text rendering (/metrics).
 *
 * Every series is declared here with fixed label values (endpoints, task kinds, a fixed list of HTTP
 * statuses), so an update is an array index plus an atomic add — no allocation, no lookup by string,
 * and the exposition can never grow without bound. Histograms keep cumulative-at-render bucket
 * counts under a small mutex. Names follow Prometheus conventions (ragd_ prefix, _total for
 * counters, base units: seconds, tokens).
 */
#include "obs/obs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const g_ep_names[RAGD_EP_COUNT] = {
    "/embed", "/rerank", "/v1/embeddings", "/v1/rerank", "/v1/chat/completions", "/v1/completions",
    "/v1/models", "/tokenize", "/detokenize", "/health", "/health/ready", "/metrics", "/diagnostics",
    "/v1/ranking", "/v2/rerank", "/v2/embed", "/score", "/v2/health", "/v2/models", "/info",
    "other"};
static const char *const g_task_names[RAGD_MTASK_COUNT] = {"embed", "rerank", "generate"};
static const char *const g_reject_names[RAGD_REJECT_COUNT] = {
    "queue_full", "shutting_down", "connection_limit", "client_connection_limit", "evicted_pending",
    "header_timeout", "body_timeout", "request_memory", "bad_http"};
static const char *const g_cancel_names[RAGD_CANCEL_COUNT] = {"disconnect", "timeout"};
static const char *const g_finish_names[RAGD_MFINISH_COUNT] = {"stop", "length", "error", "cancelled"};
static const int g_statuses[] = {200, 400, 401, 404, 405, 408, 413, 414, 415, 417, 422, 429, 431, 500, 503, 504, 505};
#define N_STATUS ((int)(sizeof g_statuses / sizeof g_statuses[0]) + 1) /* + "other" */

const char *ragd_endpoint_name(ragd_endpoint e) { return (unsigned)e < RAGD_EP_COUNT ? g_ep_names[e] : "other"; }

/* ---- histograms */

#define MAX_BUCKETS 20
typedef struct hist {
    const double *bounds; /* upper bounds, ascending; +Inf implicit */
    int n_bounds;
    pthread_mutex_t mu;
    uint64_t counts[MAX_BUCKETS + 1]; /* per bucket, not cumulative */
    double sum;
    uint64_t count;
} hist;

static const double g_time_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                       0.5, 1, 2.5, 5, 10, 30, 60};
/* the scheduler phases of a request (ragd_request_*_seconds): a decode may take minutes */
static const double g_phase_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                        1, 2.5, 5, 10, 30, 60, 120, 300, 600};
static const double g_batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768};

static void hist_init(hist *h, const double *b, int n) {
    RAGD_ASSERT(n <= MAX_BUCKETS);
    memset(h, 0, sizeof *h);
    h->bounds = b;
    h->n_bounds = n;
    pthread_mutex_init(&h->mu, NULL);
}

static void hist_observe(hist *h, double v) {
    int i = 0;
    while (i < h->n_bounds && v > h->bounds[i]) i++;
    pthread_mutex_lock(&h->mu);
    h->counts[i]++;
    h->sum += v;
    h->count++;
    pthread_mutex_unlock(&h->mu);
}

/* Renders one histogram series; `labels` is "" or `k="v"` (without braces). */
static void hist_render(hist *h, const char *name, const char *labels, ragd_buf *out) {
    uint64_t counts[MAX_BUCKETS + 1];
    double sum;
    uint64_t count;
    pthread_mutex_lock(&h->mu);
    memcpy(counts, h->counts, sizeof counts);
    sum = h->sum;
    count = h->count;
    pthread_mutex_unlock(&h->mu);
    const char *sep = labels[0] ? "," : "";
    uint64_t cum = 0;
    for (int i = 0; i < h->n_bounds; i++) {
        cum += counts[i];
        ragd_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, h->bounds[i], (unsigned long long)cum);
    }
    cum += counts[h->n_bounds];
    ragd_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
    if (labels[0]) {
        ragd_buf_printf(out, "%s_sum{%s} %.9g\n", name, labels, sum);
        ragd_buf_printf(out, "%s_count{%s} %llu\n", name, labels, (unsigned long long)count);
    } else {
        ragd_buf_printf(out, "%s_sum %.9g\n", name, sum);
        ragd_buf_printf(out, "%s_count %llu\n", name, (unsigned long long)count);
    }
}

struct ragd_metrics {
    _Atomic uint64_t requests[RAGD_EP_COUNT][N_STATUS];
    hist latency[RAGD_EP_COUNT];
    hist queue_time[RAGD_MTASK_COUNT];
    hist batch_seqs[RAGD_MTASK_COUNT];
    hist batch_tokens[RAGD_MTASK_COUNT];
    hist ttft, itl;
    _Atomic uint64_t tokens_in[RAGD_MTASK_COUNT];
    _Atomic uint64_t tokens_out;
    _Atomic uint64_t rejected[RAGD_REJECT_COUNT];
    _Atomic uint64_t cancelled[RAGD_CANCEL_COUNT];
    _Atomic uint64_t engine_errors[RAGD_MTASK_COUNT];
    _Atomic int64_t queue_requests, queue_tokens, running_seqs;
    _Atomic int64_t preempted_seqs, kv_used, kv_cached, kv_total, prefix_lookup_tokens, prefix_hit_tokens;
    _Atomic uint64_t preemptions, prefix_hit_seqs, finish[RAGD_MFINISH_COUNT];
    _Atomic uint64_t gen_steps, gen_engine_ns, gen_sched_ns;
    _Atomic int64_t gm_lookups, gm_hits, gm_computed, gm_compute_us;
    hist e2e;
    hist phase[RAGD_MPHASE_COUNT][RAGD_MTASK_COUNT];
    char *model[RAGD_MTASK_COUNT]; /* the label value (escaped), or NULL */
    _Atomic int64_t conns_pending, conns_open, request_memory;
    double start_time;
};

ragd_metrics *ragd_metrics_create(void) {
    ragd_metrics *m = ragd_xcalloc(1, sizeof *m);
    int nt = (int)(sizeof g_time_bounds / sizeof g_time_bounds[0]);
    int nb = (int)(sizeof g_batch_bounds / sizeof g_batch_bounds[0]);
    for (int e = 0; e < RAGD_EP_COUNT; e++) hist_init(&m->latency[e], g_time_bounds, nt);
    for (int t = 0; t < RAGD_MTASK_COUNT; t++) {
        hist_init(&m->queue_time[t], g_time_bounds, nt);
        hist_init(&m->batch_seqs[t], g_batch_bounds, nb);
        hist_init(&m->batch_tokens[t], g_batch_bounds, nb);
    }
    hist_init(&m->ttft, g_time_bounds, nt);
    hist_init(&m->itl, g_time_bounds, nt);
    hist_init(&m->e2e, g_time_bounds, nt);
    for (int p = 0; p < RAGD_MPHASE_COUNT; p++)
        for (int t = 0; t < RAGD_MTASK_COUNT; t++)
            hist_init(&m->phase[p][t], g_phase_bounds, (int)(sizeof g_phase_bounds / sizeof g_phase_bounds[0]));
    m->start_time = ragd_now_s();
    return m;
}

void ragd_metrics_free(ragd_metrics *m) {
    if (!m) return;
    for (int e = 0; e < RAGD_EP_COUNT; e++) pthread_mutex_destroy(&m->latency[e].mu);
    for (int t = 0; t < RAGD_MTASK_COUNT; t++) {
        pthread_mutex_destroy(&m->queue_time[t].mu);
        pthread_mutex_destroy(&m->batch_seqs[t].mu);
        pthread_mutex_destroy(&m->batch_tokens[t].mu);
    }
    pthread_mutex_destroy(&m->ttft.mu);
    pthread_mutex_destroy(&m->itl.mu);
    pthread_mutex_destroy(&m->e2e.mu);
    for (int p = 0; p < RAGD_MPHASE_COUNT; p++)
        for (int t = 0; t < RAGD_MTASK_COUNT; t++) pthread_mutex_destroy(&m->phase[p][t].mu);
    for (int t = 0; t < RAGD_MTASK_COUNT; t++) free(m->model[t]);
    free(m);
}

static int status_index(int s) {
    for (int i = 0; i < N_STATUS - 1; i++)
        if (g_statuses[i] == s) return i;
    return N_STATUS - 1;
}

static ragd_endpoint ep_ok(ragd_endpoint e) { return (unsigned)e < RAGD_EP_COUNT ? e : RAGD_EP_OTHER; }
static ragd_mtask task_ok(ragd_mtask t) {
    RAGD_ASSERT((unsigned)t < RAGD_MTASK_COUNT);
    return t;
}

void ragd_metrics_set_model(ragd_metrics *m, ragd_mtask t, const char *name) {
    t = task_ok(t);
    free(m->model[t]);
    m->model[t] = NULL;
    if (!name) return;
    ragd_buf b = {0}; /* a Prometheus label value: backslash, double quote and newline escaped; at most ~500
                         bytes (cut before a UTF-8 lead byte) so that every label set fits the render buffers */
    for (const char *p = name; *p; p++) {
        if (b.len >= 500 && ((unsigned char)*p & 0xC0) != 0x80) break;
        if (*p == '\\' || *p == '"') ragd_buf_putc(&b, '\\');
        if (*p == '\n') ragd_buf_puts(&b, "\\n");
        else ragd_buf_putc(&b, *p);
    }
    m->model[t] = b.data ? b.data : ragd_xstrdup("");
}

void ragd_metrics_phase(ragd_metrics *m, ragd_mphase p, ragd_mtask t, double s) {
    RAGD_ASSERT((unsigned)p < RAGD_MPHASE_COUNT);
    hist_observe(&m->phase[p][task_ok(t)], s > 0 ? s : 0);
}

void ragd_metrics_request(ragd_metrics *m, ragd_endpoint ep, int http_status, double latency_s) {
    ep = ep_ok(ep);
    atomic_fetch_add(&m->requests[ep][status_index(http_status)], 1);
    hist_observe(&m->latency[ep], latency_s);
}
void ragd_metrics_queue_time(ragd_metrics *m, ragd_mtask t, double s) { hist_observe(&m->queue_time[task_ok(t)], s); }
void ragd_metrics_batch(ragd_metrics *m, ragd_mtask t, int n_seqs, int n_tokens) {
    hist_observe(&m->batch_seqs[task_ok(t)], n_seqs);
    hist_observe(&m->batch_tokens[t], n_tokens);
}
void ragd_metrics_ttft(ragd_metrics *m, double s) { hist_observe(&m->ttft, s); }
void ragd_metrics_itl(ragd_metrics *m, double s) { hist_observe(&m->itl, s); }
void ragd_metrics_tokens_in(ragd_metrics *m, ragd_mtask t, int64_t n) { atomic_fetch_add(&m->tokens_in[task_ok(t)], (uint64_t)n); }
void ragd_metrics_tokens_out(ragd_metrics *m, int64_t n) { atomic_fetch_add(&m->tokens_out, (uint64_t)n); }
void ragd_metrics_rejected(ragd_metrics *m, ragd_reject_reason r) {
    RAGD_ASSERT((unsigned)r < RAGD_REJECT_COUNT);
    atomic_fetch_add(&m->rejected[r], 1);
}
void ragd_metrics_cancelled(ragd_metrics *m, ragd_cancel_reason r) {
    RAGD_ASSERT((unsigned)r < RAGD_CANCEL_COUNT);
    atomic_fetch_add(&m->cancelled[r], 1);
}
void ragd_metrics_engine_error(ragd_metrics *m, ragd_mtask t) { atomic_fetch_add(&m->engine_errors[task_ok(t)], 1); }
void ragd_metrics_set_queue(ragd_metrics *m, int64_t requests, int64_t tokens) {
    atomic_store(&m->queue_requests, requests);
    atomic_store(&m->queue_tokens, tokens);
}
void ragd_metrics_set_running(ragd_metrics *m, int64_t seqs) { atomic_store(&m->running_seqs, seqs); }
void ragd_metrics_set_preempted(ragd_metrics *m, int64_t seqs) { atomic_store(&m->preempted_seqs, seqs); }
void ragd_metrics_set_kv(ragd_metrics *m, int64_t used, int64_t cached, int64_t total, int64_t lookup_tokens,
                         int64_t hit_tokens) {
    atomic_store(&m->kv_used, used);
    atomic_store(&m->kv_cached, cached);
    atomic_store(&m->kv_total, total);
    atomic_store(&m->prefix_lookup_tokens, lookup_tokens);
    atomic_store(&m->prefix_hit_tokens, hit_tokens);
}
void ragd_metrics_prefix_hit(ragd_metrics *m, int64_t tokens) {
    (void)tokens;
    atomic_fetch_add(&m->prefix_hit_seqs, 1);
}
void ragd_metrics_preemption(ragd_metrics *m) { atomic_fetch_add(&m->preemptions, 1); }
void ragd_metrics_gen_step(ragd_metrics *m, double engine_s, double sched_s) {
    atomic_fetch_add(&m->gen_steps, 1);
    atomic_fetch_add(&m->gen_engine_ns, (uint64_t)(engine_s > 0 ? engine_s * 1e9 : 0));
    atomic_fetch_add(&m->gen_sched_ns, (uint64_t)(sched_s > 0 ? sched_s * 1e9 : 0));
}
void ragd_metrics_set_grammar(ragd_metrics *m, int64_t lookups, int64_t hits, int64_t computed, double compute_s) {
    atomic_store(&m->gm_lookups, lookups);
    atomic_store(&m->gm_hits, hits);
    atomic_store(&m->gm_computed, computed);
    atomic_store(&m->gm_compute_us, (int64_t)(compute_s * 1e6));
}
void ragd_metrics_finish(ragd_metrics *m, ragd_mfinish r) {
    RAGD_ASSERT((unsigned)r < RAGD_MFINISH_COUNT);
    atomic_fetch_add(&m->finish[r], 1);
}
void ragd_metrics_e2e(ragd_metrics *m, double s) { hist_observe(&m->e2e, s); }
void ragd_metrics_set_connections(ragd_metrics *m, int64_t pending, int64_t open) {
    atomic_store(&m->conns_pending, pending);
    atomic_store(&m->conns_open, open);
}
void ragd_metrics_set_request_memory(ragd_metrics *m, int64_t bytes) { atomic_store(&m->request_memory, bytes); }

static void header(ragd_buf *out, const char *name, const char *type, const char *help) {
    ragd_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* `task="t"` plus `,model="name"` when task t has a model */
static const char *task_label(const ragd_metrics *m, int t, char *lab, size_t len) {
    snprintf(lab, len, "task=\"%s\"%s%s%s", g_task_names[t], m->model[t] ? ",model=\"" : "", m->model[t] ? m->model[t] : "",
             m->model[t] ? "\"" : "");
    return lab;
}
/* `model="name"` of the generation model, or "" */
static const char *gen_label(const ragd_metrics *m, char *lab, size_t len) {
    const char *n = m->model[RAGD_MTASK_GENERATE];
    snprintf(lab, len, "%s%s%s", n ? "model=\"" : "", n ? n : "", n ? "\"" : "");
    return lab;
}
/* `{model="name"}` of the generation model, or "" */
static const char *gen_braces(const ragd_metrics *m, char *lab, size_t len) {
    const char *n = m->model[RAGD_MTASK_GENERATE];
    snprintf(lab, len, "%s%s%s", n ? "{model=\"" : "", n ? n : "", n ? "\"}" : "");
    return lab;
}

void ragd_metrics_render(ragd_metrics *m, ragd_buf *out) {
    char lab[1024], lab2[1024];
    header(out, "ragd_http_requests_total", "counter", "HTTP requests by endpoint and status code.");
    for (int e = 0; e < RAGD_EP_COUNT; e++)
        for (int s = 0; s < N_STATUS; s++) {
            uint64_t v = atomic_load(&m->requests[e][s]);
            if (!v) continue; /* only series that happened: keeps the page short */
            if (s < N_STATUS - 1)
                ragd_buf_printf(out, "ragd_http_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n", g_ep_names[e],
                                g_statuses[s], (unsigned long long)v);
            else
                ragd_buf_printf(out, "ragd_http_requests_total{endpoint=\"%s\",status=\"other\"} %llu\n",
                                g_ep_names[e], (unsigned long long)v);
        }
    header(out, "ragd_http_request_duration_seconds", "histogram", "Time from the request headers to the end of the response (streams included).");
    for (int e = 0; e < RAGD_EP_COUNT; e++) {
        uint64_t any = 0;
        for (int s = 0; s < N_STATUS; s++) any += atomic_load(&m->requests[e][s]);
        if (!any) continue;
        snprintf(lab, sizeof lab, "endpoint=\"%s\"", g_ep_names[e]);
        hist_render(&m->latency[e], "ragd_http_request_duration_seconds", lab, out);
    }
    header(out, "ragd_queue_time_seconds", "histogram",
           "From a request's arrival (parsing and tokenization included) to its first sequence entering a batch or its first choice admitted.");
    for (int t = 0; t < RAGD_MTASK_COUNT; t++)
        hist_render(&m->queue_time[t], "ragd_queue_time_seconds", task_label(m, t, lab, sizeof lab), out);
    header(out, "ragd_request_queue_seconds", "histogram", "Time a request waited in the scheduler queue (submitted to its first batch or admission).");
    for (int t = 0; t < RAGD_MTASK_COUNT; t++)
        hist_render(&m->phase[RAGD_MPHASE_QUEUE][t], "ragd_request_queue_seconds", task_label(m, t, lab, sizeof lab), out);
    header(out, "ragd_request_prefill_seconds", "histogram", "Generation requests: from admission to the first token (the prompt's prefill).");
    hist_render(&m->phase[RAGD_MPHASE_PREFILL][RAGD_MTASK_GENERATE], "ragd_request_prefill_seconds", gen_label(m, lab, sizeof lab), out);
    header(out, "ragd_request_decode_seconds", "histogram", "Generation requests: from the first token to the last.");
    hist_render(&m->phase[RAGD_MPHASE_DECODE][RAGD_MTASK_GENERATE], "ragd_request_decode_seconds", gen_label(m, lab, sizeof lab), out);
    header(out, "ragd_request_compute_seconds", "histogram", "Embed and rerank requests: from their first batch to their last sequence computed.");
    for (int t = RAGD_MTASK_EMBED; t <= RAGD_MTASK_RERANK; t++)
        hist_render(&m->phase[RAGD_MPHASE_COMPUTE][t], "ragd_request_compute_seconds", task_label(m, t, lab, sizeof lab), out);
    header(out, "ragd_batch_sequences", "histogram", "Sequences per forward pass.");
    for (int t = 0; t < RAGD_MTASK_COUNT; t++)
        hist_render(&m->batch_seqs[t], "ragd_batch_sequences", task_label(m, t, lab, sizeof lab), out);
    header(out, "ragd_batch_tokens", "histogram", "Tokens per forward pass.");
    for (int t = 0; t < RAGD_MTASK_COUNT; t++)
        hist_render(&m->batch_tokens[t], "ragd_batch_tokens", task_label(m, t, lab, sizeof lab), out);
    header(out, "ragd_time_to_first_token_seconds", "histogram", "From request arrival to the first generated token.");
    hist_render(&m->ttft, "ragd_time_to_first_token_seconds", gen_label(m, lab, sizeof lab), out);
    header(out, "ragd_inter_token_latency_seconds", "histogram", "Time between consecutive generated tokens of a sequence.");
    hist_render(&m->itl, "ragd_inter_token_latency_seconds", gen_label(m, lab, sizeof lab), out);
    header(out, "ragd_prompt_tokens_total", "counter", "Input tokens processed, by task.");
    for (int t = 0; t < RAGD_MTASK_COUNT; t++)
        ragd_buf_printf(out, "ragd_prompt_tokens_total{%s} %llu\n", task_label(m, t, lab, sizeof lab),
                        (unsigned long long)atomic_load(&m->tokens_in[t]));
    header(out, "ragd_generation_tokens_total", "counter", "Tokens generated.");
    ragd_buf_printf(out, "ragd_generation_tokens_total%s %llu\n", gen_braces(m, lab, sizeof lab),
                    (unsigned long long)atomic_load(&m->tokens_out));
    header(out, "ragd_rejected_requests_total", "counter", "Requests and connections refused before any work, by reason.");
    for (int r = 0; r < RAGD_REJECT_COUNT; r++)
        ragd_buf_printf(out, "ragd_rejected_requests_total{reason=\"%s\"} %llu\n", g_reject_names[r],
                        (unsigned long long)atomic_load(&m->rejected[r]));
    header(out, "ragd_cancelled_requests_total", "counter", "Requests cancelled while queued or running.");
    for (int r = 0; r < RAGD_CANCEL_COUNT; r++)
        ragd_buf_printf(out, "ragd_cancelled_requests_total{reason=\"%s\"} %llu\n", g_cancel_names[r],
                        (unsigned long long)atomic_load(&m->cancelled[r]));
    header(out, "ragd_engine_errors_total", "counter", "Engine failures (the request got a 500).");
    for (int t = 0; t < RAGD_MTASK_COUNT; t++)
        ragd_buf_printf(out, "ragd_engine_errors_total{%s} %llu\n", task_label(m, t, lab, sizeof lab),
                        (unsigned long long)atomic_load(&m->engine_errors[t]));
    header(out, "ragd_queue_requests", "gauge", "Requests waiting in the scheduler queue.");
    ragd_buf_printf(out, "ragd_queue_requests %lld\n", (long long)atomic_load(&m->queue_requests));
    header(out, "ragd_queue_tokens", "gauge", "Tokens waiting in the scheduler queue.");
    ragd_buf_printf(out, "ragd_queue_tokens %lld\n", (long long)atomic_load(&m->queue_tokens));
    header(out, "ragd_running_sequences", "gauge", "Generation sequences being computed (prefill or decode).");
    ragd_buf_printf(out, "ragd_running_sequences %lld\n", (long long)atomic_load(&m->running_seqs));
    header(out, "ragd_preempted_sequences", "gauge", "Generation sequences preempted (KV cache full), waiting to be recomputed.");
    ragd_buf_printf(out, "ragd_preempted_sequences %lld\n", (long long)atomic_load(&m->preempted_seqs));
    header(out, "ragd_preemptions_total", "counter", "Sequences preempted because the KV block pool ran out.");
    ragd_buf_printf(out, "ragd_preemptions_total %llu\n", (unsigned long long)atomic_load(&m->preemptions));
    header(out, "ragd_generation_steps_total", "counter", "Generation steps run by the chat model's scheduler.");
    ragd_buf_printf(out, "ragd_generation_steps_total %llu\n", (unsigned long long)atomic_load(&m->gen_steps));
    header(out, "ragd_generation_step_seconds_total", "counter",
           "Time of the generation steps by part: engine (the forward step and sampling, device included) and scheduler (the host work of a step around it: admission, batch assembly, detokenization and handing tokens to the clients).");
    ragd_buf_printf(out, "ragd_generation_step_seconds_total{part=\"engine\"} %.6f\n", (double)atomic_load(&m->gen_engine_ns) * 1e-9);
    ragd_buf_printf(out, "ragd_generation_step_seconds_total{part=\"scheduler\"} %.6f\n", (double)atomic_load(&m->gen_sched_ns) * 1e-9);
    header(out, "ragd_grammar_masks_total", "counter", "Structured-output token masks looked up, by result (hit: from the mask cache; computed: walked over the vocabulary).");
    ragd_buf_printf(out, "ragd_grammar_masks_total{result=\"hit\"} %lld\n", (long long)atomic_load(&m->gm_hits));
    ragd_buf_printf(out, "ragd_grammar_masks_total{result=\"computed\"} %lld\n", (long long)atomic_load(&m->gm_computed));
    header(out, "ragd_grammar_mask_seconds_total", "counter", "Wall time the scheduler spent computing structured-output masks.");
    ragd_buf_printf(out, "ragd_grammar_mask_seconds_total %.6f\n", (double)atomic_load(&m->gm_compute_us) * 1e-6);
    header(out, "ragd_kv_cache_blocks", "gauge", "KV cache blocks of the chat model by state (used: held by sequences; cached: evictable prefix-cache content).");
    ragd_buf_printf(out, "ragd_kv_cache_blocks{state=\"used\"} %lld\n", (long long)atomic_load(&m->kv_used));
    ragd_buf_printf(out, "ragd_kv_cache_blocks{state=\"cached\"} %lld\n", (long long)atomic_load(&m->kv_cached));
    header(out, "ragd_kv_cache_capacity_blocks", "gauge", "KV cache blocks of the chat model.");
    ragd_buf_printf(out, "ragd_kv_cache_capacity_blocks %lld\n", (long long)atomic_load(&m->kv_total));
    int64_t lk = atomic_load(&m->prefix_lookup_tokens), hit = atomic_load(&m->prefix_hit_tokens);
    header(out, "ragd_prefix_cache_queried_tokens_total", "counter", "Prompt tokens looked up in the prefix cache (whole blocks).");
    ragd_buf_printf(out, "ragd_prefix_cache_queried_tokens_total %lld\n", (long long)lk);
    header(out, "ragd_prefix_cache_hit_tokens_total", "counter", "Prompt tokens taken from the prefix cache instead of computed.");
    ragd_buf_printf(out, "ragd_prefix_cache_hit_tokens_total %lld\n", (long long)hit);
    header(out, "ragd_prefix_cache_hit_rate", "gauge", "hit tokens / queried tokens since start.");
    ragd_buf_printf(out, "ragd_prefix_cache_hit_rate %.6f\n", lk > 0 ? (double)hit / (double)lk : 0.0);
    header(out, "ragd_prefix_cache_hit_sequences_total", "counter", "Sequences that started after a prefix-cache hit.");
    ragd_buf_printf(out, "ragd_prefix_cache_hit_sequences_total %llu\n", (unsigned long long)atomic_load(&m->prefix_hit_seqs));
    header(out, "ragd_generation_finished_total", "counter", "Generated choices by how they ended.");
    gen_label(m, lab2, sizeof lab2);
    for (int r = 0; r < RAGD_MFINISH_COUNT; r++)
        ragd_buf_printf(out, "ragd_generation_finished_total{reason=\"%s\"%s%s} %llu\n", g_finish_names[r], lab2[0] ? "," : "",
                        lab2, (unsigned long long)atomic_load(&m->finish[r]));
    header(out, "ragd_e2e_request_latency_seconds", "histogram", "Generation requests: from arrival to the last token.");
    hist_render(&m->e2e, "ragd_e2e_request_latency_seconds", gen_label(m, lab, sizeof lab), out);
    header(out, "ragd_http_connections", "gauge", "Client connections: still sending their request head, or open with the server.");
    ragd_buf_printf(out, "ragd_http_connections{state=\"pending\"} %lld\n", (long long)atomic_load(&m->conns_pending));
    ragd_buf_printf(out, "ragd_http_connections{state=\"open\"} %lld\n", (long long)atomic_load(&m->conns_open));
    header(out, "ragd_request_memory_bytes", "gauge", "Request memory held (bodies, parsed JSON, token ids, outputs, replies).");
    ragd_buf_printf(out, "ragd_request_memory_bytes %lld\n", (long long)atomic_load(&m->request_memory));
    header(out, "ragd_uptime_seconds", "gauge", "Seconds since the server started.");
    ragd_buf_printf(out, "ragd_uptime_seconds %.3f\n", ragd_now_s() - m->start_time);
    ragd_metrics_render_process(out);
}
