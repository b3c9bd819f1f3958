/* server.c — libmicrohttpd plumbing for `ragd serve`: daemon setup (connections come from the door,
 * door.c), routing, bearer auth, request ids, the body cap, the request-memory budget, suspend/resume
 * around scheduler tasks, SSE streaming and request completion.
 *
 * Request life (one http_req per request, refcounted: 1 for libmicrohttpd, +1 while a task is with
 * the scheduler):
 *   headers → http_admit: framing, auth, route, Content-Length cap, Content-Type, the body's memory
 *             reservation (errors answered at once)
 *   body chunks → appended while under --max-body-bytes (beyond: 413 once the upload ends)
 *   complete → handler: reply now (HTTP_REPLY) or task posted and connection suspended (HTTP_PENDING)
 *   scheduler sink: on_gen / on_done fill the reply under r->mu and resume the connection
 *   resumed → finish fn builds the reply, or an SSE callback response starts
 *   completion callback → metrics, cancel a task still running (client gone), drop the ref
 *
 * Invariant: MHD_resume_connection is called only for a connection we suspended (r->suspended under
 * r->mu), and a suspended connection's fd is only polled under r->mu while it is suspended (MHD
 * cannot close it then).
 */
#include "http/http_internal.h"

#include <arpa/inet.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------- */
/* routing */

typedef struct route {
    const char *method, *path;
    ragd_endpoint ep;
    http_outcome (*fn)(http_req *);
    bool public_; /* no auth */
    bool prefix;  /* path is a prefix: the rest of the URL (non-empty) is the handler's r->path_arg */
} route;

static const route g_routes[] = {
    {"POST", "/embed", RAGD_EP_EMBED, api_embed, false, false},
    {"POST", "/rerank", RAGD_EP_RERANK, api_rerank, false, false},
    {"POST", "/v1/embeddings", RAGD_EP_V1_EMBEDDINGS, api_v1_embeddings, false, false},
    {"POST", "/v1/rerank", RAGD_EP_V1_RERANK, api_v1_rerank, false, false},
    {"POST", "/v1/ranking", RAGD_EP_V1_RANKING, api_v1_ranking, false, false},
    {"POST", "/v2/rerank", RAGD_EP_V2_RERANK, api_v2_rerank, false, false},
    {"POST", "/v2/embed", RAGD_EP_V2_EMBED, api_v2_embed, false, false},
    {"POST", "/score", RAGD_EP_SCORE, api_score, false, false},
    {"POST", "/v1/score", RAGD_EP_SCORE, api_score, false, false},
    {"POST", "/v1/chat/completions", RAGD_EP_V1_CHAT, api_chat, false, false},
    {"POST", "/v1/completions", RAGD_EP_V1_COMPLETIONS, api_completions, false, false},
    {"GET", "/v1/models", RAGD_EP_V1_MODELS, api_models, false, false},
    {"GET", "/v1/models/", RAGD_EP_V1_MODELS, api_model, false, true},
    {"POST", "/tokenize", RAGD_EP_TOKENIZE, api_tokenize, false, false},
    {"POST", "/detokenize", RAGD_EP_DETOKENIZE, api_detokenize, false, false},
    {"GET", "/health", RAGD_EP_HEALTH, api_health, true, false},
    {"GET", "/v2/health/live", RAGD_EP_V2_HEALTH, api_v2_live, true, false},
    {"GET", "/v2/health/ready", RAGD_EP_V2_HEALTH, api_v2_ready, true, false},
    {"GET", "/v2/models/", RAGD_EP_V2_MODELS, api_v2_model, false, true},
    {"POST", "/v2/models/", RAGD_EP_V2_MODELS, api_v2_infer, false, true},
    {"GET", "/health/ready", RAGD_EP_HEALTH_READY, api_ready, true, false},
    {"GET", "/metrics", RAGD_EP_METRICS, api_metrics, false, false},
    {"GET", "/diagnostics", RAGD_EP_DIAGNOSTICS, api_diagnostics, false, false},
    {"GET", "/info", RAGD_EP_INFO, api_tei_info, false, false},
};
#define N_ROUTES (sizeof g_routes / sizeof g_routes[0])

/* the route's path is url (a prefix route: a non-empty rest follows) */
static bool route_path_is(const route *rt, const char *url) {
    const size_t n = strlen(rt->path);
    return rt->prefix ? !strncmp(rt->path, url, n) && url[n] : !strcmp(rt->path, url);
}

static const route *find_route(const char *url, bool *path_known, const char *method) {
    *path_known = false;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!route_path_is(&g_routes[i], url)) continue;
        *path_known = true;
        if (!strcmp(g_routes[i].method, method)) return &g_routes[i];
    }
    return NULL;
}

/* The methods a known path answers, for Allow: "GET, POST, OPTIONS" (OPTIONS always). */
static void path_methods(const char *url, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    static const char *const order[] = {"GET", "POST", NULL};
    for (const char *const *m = order; *m; m++) {
        bool any = false;
        for (size_t i = 0; i < N_ROUTES && !any; i++) any = route_path_is(&g_routes[i], url) && !strcmp(g_routes[i].method, *m);
        if (any) n += (size_t)snprintf(buf + n, cap - n, "%s, ", *m);
        RAGD_ASSERT(n < cap);
    }
    snprintf(buf + n, cap - n, "OPTIONS");
}

bool http_cors_origin(const char *list, const char *origin, size_t on, char out[256]) {
    out[0] = 0;
    if (!list || !*list || !origin || !on || on >= 256) return false;
    for (size_t i = 0; i < on; i++)
        if ((unsigned char)origin[i] < 0x21 || (unsigned char)origin[i] > 0x7e) return false; /* no raw bytes echoed */
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        size_t n = (size_t)(e - p);
        while (n && p[n - 1] == ' ') n--;
        if ((n == 1 && *p == '*') || (n == on && !memcmp(p, origin, n))) {
            memcpy(out, origin, on);
            out[on] = 0;
            return true;
        }
        p = e;
    }
    return false;
}

/* the request's Origin, if --cors-origins allows it, kept to be echoed in Access-Control-Allow-Origin */
static void cors_match(http_req *r) {
    const ragd_serve_opts *o = r->h->cfg.opts;
    const char *origin = http_header(r, "Origin");
    r->cors_origin[0] = 0;
    if (origin) http_cors_origin(o ? o->cors_origins : NULL, origin, strlen(origin), r->cors_origin);
}

/* Headers of every reply: CORS when the origin is allowed, Allow on 405 and OPTIONS, and for a
 * preflight (OPTIONS with Access-Control-Request-Method) the methods and headers the browser may use. */
static void reply_headers(http_req *r, struct MHD_Response *resp) {
    if (r->allow[0]) MHD_add_response_header(resp, "Allow", r->allow);
    if (!r->cors_origin[0]) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors_origin);
    MHD_add_response_header(resp, "Vary", "Origin");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", HTTP_CORS_EXPOSE);
    if (r->status != 204 || !r->allow[0]) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", r->allow);
    const char *rh = http_header(r, "Access-Control-Request-Headers");
    bool ok = rh && *rh && strlen(rh) < 512;
    for (const char *p = rh; ok && *p; p++) /* header names, commas and spaces only */
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-_, ", *p);
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", ok ? rh : "Authorization, Content-Type, X-Request-Id");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
}

static bool path_is(const char *path, size_t len, const char *lit) { return strlen(lit) == len && !memcmp(path, lit, len); }

bool http_path_public(const char *path, size_t len) {
    for (size_t i = 0; i < N_ROUTES; i++)
        if (g_routes[i].public_ && path_is(path, len, g_routes[i].path)) return true;
    return false;
}

ragd_endpoint http_path_endpoint(const char *path, size_t len) {
    for (size_t i = 0; i < N_ROUTES; i++)
        if (path_is(path, len, g_routes[i].path)) return g_routes[i].ep;
    return RAGD_EP_OTHER;
}

bool http_auth_ok(const char *key, const char *v, size_t len) {
    size_t b = key ? strlen(key) : 0;
    if (!b || !v || len < 7 || strncasecmp(v, "Bearer ", 7)) return false;
    v += 7;
    len -= 7;
    while (len && *v == ' ') v++, len--;
    unsigned diff = len != b; /* the length may leak, the key's bytes do not */
    for (size_t i = 0; i < len; i++) diff |= (unsigned char)v[i] ^ (unsigned char)key[i % b];
    return diff == 0;
}

void http_request_id(ragd_http *h, const char *cid, size_t len, char out[72]) {
    bool ok = cid && len && len <= 64;
    for (size_t i = 0; ok && i < len; i++) {
        char c = cid[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
             c == '.' || c == ':';
    }
    if (ok) snprintf(out, 72, "%.*s", (int)len, cid);
    else snprintf(out, 72, "req-%llx", (unsigned long long)atomic_fetch_add(&h->next_id, 1));
}

const char *http_header(http_req *r, const char *name) {
    if (r->conn) return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
    return r->hdr_fn ? r->hdr_fn(r->hdr_ctx, name) : NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* request objects */

static http_req *req_new(ragd_http *h, struct MHD_Connection *conn) {
    http_req *r = ragd_xcalloc(1, sizeof *r);
    r->h = h;
    r->conn = conn;
    r->t_start = ragd_now_s();
    r->refs = 1;
    r->content_type = "application/json";
    pthread_mutex_init(&r->mu, NULL);
    if (conn) {
        const char *cid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
        http_request_id(h, cid, cid ? strlen(cid) : 0, r->id);
    }
    atomic_fetch_add(&h->active, 1);
    return r;
}

http_req *http_req_detached(ragd_http *h) { return req_new(h, NULL); }

static void req_unref(http_req *r) {
    pthread_mutex_lock(&r->mu);
    int left = --r->refs;
    pthread_mutex_unlock(&r->mu);
    if (left) return;
    ragd_http *h = r->h;
    if (r->mem_held >= (1u << 20)) atomic_store(&h->trim_wanted, true);
    http_mem_release(r, r->mem_held);
    ragd_buf_free(&r->body);
    ragd_buf_free(&r->out);
    ragd_buf_free(&r->sse);
    ragd_err_free(&r->task.err);
    if (r->json) json_decref(r->json);
    ragd_tok_ids_free(&r->toks);
    free(r->seq_start);
    free(r->outv);
    free(r->stops);
    if (r->api_free) r->api_free(r->api);
    pthread_mutex_destroy(&r->mu);
    free(r);
    atomic_fetch_sub(&h->active, 1);
}

void http_req_free(http_req *r) {
    if (r) req_unref(r);
}

/* ---------------------------------------------------------------------------------------------- */
/* the request-memory budget */

static double mib(size_t b) { return (double)b / 1048576.0; }

bool http_mem_reserve(http_req *r, size_t bytes, const char *what) {
    ragd_http *h = r->h;
    if (!bytes) return true;
    if (r->mem_held + bytes > h->mem_limit || bytes > h->mem_limit) {
        http_error(r, 413, NULL, "request_too_large",
                   "this request needs %.1f MiB of memory for %s (%.1f MiB in all), more than --max-request-memory (%.1f MiB)",
                   mib(bytes), what, mib(r->mem_held + bytes), mib(h->mem_limit));
        return false;
    }
    size_t cur = atomic_load(&h->mem_used);
    do {
        if (cur + bytes > h->mem_limit) {
            ragd_metrics_rejected(h->cfg.metrics, RAGD_REJECT_MEMORY);
            r->retry_after = 1;
            http_error(r, 503, NULL, "overloaded",
                       "the server is busy: requests in flight hold %.1f MiB of %.1f MiB (--max-request-memory); this one needs %.1f MiB more for %s",
                       mib(cur), mib(h->mem_limit), mib(bytes), what);
            return false;
        }
    } while (!atomic_compare_exchange_weak(&h->mem_used, &cur, cur + bytes));
    r->mem_held += bytes;
    ragd_metrics_set_request_memory(h->cfg.metrics, (int64_t)(cur + bytes));
    return true;
}

void http_mem_release(http_req *r, size_t bytes) {
    if (!bytes) return;
    RAGD_ASSERT(bytes <= r->mem_held);
    r->mem_held -= bytes;
    size_t now = atomic_fetch_sub(&r->h->mem_used, bytes) - bytes;
    ragd_metrics_set_request_memory(r->h->cfg.metrics, (int64_t)now);
}

/* ---------------------------------------------------------------------------------------------- */
/* scheduler sink (runs on the device thread) */

static void wake(http_req *r) { /* under r->mu */
    if (r->suspended && !r->closed) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
    }
}

static bool sink_alive(void *ctx) {
    http_req *r = ctx;
    bool alive = true;
    pthread_mutex_lock(&r->mu);
    if (r->closed) alive = false;
    else if (r->suspended) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) {
            struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
            if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) alive = false;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return alive;
}

static void sink_gen(void *ctx, const ragd_gen_event *ev) {
    http_req *r = ctx;
    pthread_mutex_lock(&r->mu);
    if (!r->closed && r->on_event) {
        r->on_event(r, ev);
        if (r->streaming) wake(r);
    }
    pthread_mutex_unlock(&r->mu);
}

static void sink_done(void *ctx) {
    http_req *r = ctx;
    pthread_mutex_lock(&r->mu);
    r->done = true;
    if (r->streaming && !r->closed) {
        if (r->task.status == RAGD_OK || r->stream_started || r->sse.len > r->sse_off) {
            if (r->on_end) r->on_end(r);
            r->sse_end = true;
        }
    }
    wake(r);
    pthread_mutex_unlock(&r->mu);
    req_unref(r);
}

static const ragd_task_sink g_sink = {sink_alive, sink_gen, sink_done};

/* The request's deadline: X-Request-Timeout-Ms (1 ms .. 24 h) or --timeout-ms. A malformed header is
 * a 400 naming it (returns false). */
static bool request_deadline(http_req *r, double *deadline) {
    double t = (double)r->h->cfg.opts->timeout_ms / 1e3;
    const char *v = http_header(r, "X-Request-Timeout-Ms");
    if (v) {
        char *end = NULL;
        long long ms = strtoll(v, &end, 10);
        if (end == v || *end || ms < 1 || ms > 86400000LL) {
            http_error(r, 400, "X-Request-Timeout-Ms", "out_of_range",
                       "header X-Request-Timeout-Ms is '%.40s'; it must be an integer between 1 and 86400000", v);
            return false;
        }
        t = (double)ms / 1e3;
    }
    r->timeout_s = t;
    *deadline = r->t_start + t;
    return true;
}

/* What a task holds until its request ends, besides the JSON tree: its token ids and sequence table, its
 * output, and an estimate of its reply (JSON floats ≤ 16 bytes each; a rerank reply may echo every
 * document, escaped; a generated token ≤ 256 bytes of SSE/JSON, logprobs ≤ 160 bytes per alternative). */
static size_t task_bytes(const http_req *r) {
    const ragd_task *t = &r->task;
    size_t n = (size_t)t->n_seqs, ntok = (size_t)t->seq_start[t->n_seqs];
    size_t b = 4 * ntok + 4 * (n + 1);
    switch (t->kind) {
    case RAGD_TASK_EMBED: {
        size_t dims = (size_t)ragd_embed_dims(r->sm->model, &t->embed);
        b += n * dims * (4 + 16) + n * 64;
        break;
    }
    case RAGD_TASK_RERANK: b += n * (4 + 64) + 6 * r->body_len; break;
    case RAGD_TASK_GENERATE: {
        size_t per = 256 + (t->want_logprobs ? (size_t)(1 + t->top_logprobs) * 160 : 0);
        b += (size_t)(t->n_choices > 0 ? t->n_choices : 1) * (size_t)t->gen.max_tokens * per;
        break;
    }
    }
    return b + 1024;
}

bool http_submit(http_req *r) {
    if (!http_mem_reserve(r, task_bytes(r), "its tokens, output and reply")) return false;
    r->task.req_id = r->id;
    r->task.sink = &g_sink;
    r->task.ctx = r;
    r->task.t_arrival = r->t_start;
    if (!request_deadline(r, &r->task.deadline)) return false;
    atomic_store(&r->task.cancel, false);
    pthread_mutex_lock(&r->mu);
    r->refs++;
    r->submitted = true;
    pthread_mutex_unlock(&r->mu);
    ragd_err err = {0};
    ragd_sched *sched = atomic_load(&r->h->sched);
    if (!sched) {
        pthread_mutex_lock(&r->mu);
        r->refs--;
        r->submitted = false;
        pthread_mutex_unlock(&r->mu);
        r->retry_after = 1;
        http_error(r, 503, NULL, "model_loading", "the models are still loading; retry when /health/ready answers 200");
        return false;
    }
    ragd_status st = ragd_sched_submit(sched, r->sm, &r->task, &err);
    if (st) {
        pthread_mutex_lock(&r->mu);
        r->refs--;
        r->submitted = false;
        pthread_mutex_unlock(&r->mu);
        if (st == RAGD_EBUSY) r->retry_after = ragd_sched_retry_after(sched);
        if (st == RAGD_ERANGE) /* can never be admitted (larger than the queue): not a 429 to retry */
            http_error(r, 413, NULL, "request_too_large", "%s", ragd_err_msg(&err));
        else http_error_status(r, st, NULL, ragd_err_msg(&err));
        ragd_err_free(&err);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------------- */
/* replies */


/* The reply in r->out, handed to libmicrohttpd without a copy. */
static enum MHD_Result queue_reply(http_req *r) {
    if (r->conn && !http_door_event(r->h->door, r->conn, HTTP_CONN_BUSY)) return MHD_NO;
    if (r->status >= 500 || r->status == 429)
        RAGD_WARN("[%s] %s -> %d %.*s", r->id, ragd_endpoint_name(r->ep), r->status,
                  (int)(r->out.len < 300 ? r->out.len : 300), r->out.data ? r->out.data : "");
    struct MHD_Response *resp = r->out.data
        ? MHD_create_response_from_buffer(r->out.len, r->out.data, MHD_RESPMEM_MUST_FREE)
        : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    r->out = (ragd_buf){0}; /* the response owns the bytes now (freed with free()) */
    if (r->status != 204) MHD_add_response_header(resp, "Content-Type", r->content_type);
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    reply_headers(r, resp);
    if (r->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", r->retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (atomic_load(&r->h->quiesced)) MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    http_req *r = cls;
    (void)pos;
    ssize_t n = 0;
    pthread_mutex_lock(&r->mu);
    size_t avail = r->sse.len - r->sse_off;
    if (avail) {
        n = (ssize_t)(avail < max ? avail : max);
        memcpy(buf, r->sse.data + r->sse_off, (size_t)n);
        r->sse_off += (size_t)n;
        if (r->sse_off == r->sse.len) {
            ragd_buf_reset(&r->sse);
            r->sse_off = 0;
        }
    } else if (r->sse_end) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        r->suspended = true; /* resumed by the next event */
        MHD_suspend_connection(r->conn);
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

static enum MHD_Result start_stream(http_req *r) {
    if (!http_door_event(r->h->door, r->conn, HTTP_CONN_BUSY)) return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_reader, r, NULL);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    r->status = 200;
    reply_headers(r, resp);
    enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Called when a pending request is resumed (or found done right after posting). */
static enum MHD_Result pending_next(http_req *r) {
    pthread_mutex_lock(&r->mu);
    bool done = r->done, have_events = r->sse.len > r->sse_off || r->sse_end;
    if (r->streaming && (have_events || (done && r->task.status == RAGD_OK))) {
        r->stream_started = true;
        pthread_mutex_unlock(&r->mu);
        return start_stream(r);
    }
    if (!done) { /* woken early: wait again */
        r->suspended = true;
        MHD_suspend_connection(r->conn);
        pthread_mutex_unlock(&r->mu);
        return MHD_YES;
    }
    pthread_mutex_unlock(&r->mu);
    if (r->task.status != RAGD_OK) http_error_status(r, r->task.status, NULL, ragd_err_msg(&r->task.err));
    else r->finish(r);
    return queue_reply(r);
}

/* ---------------------------------------------------------------------------------------------- */
/* admission of a request whose head is complete */

typedef struct framing {
    int n_cl, n_te, n_host, n_fields;
    bool cl_differ, te_bad;
    size_t bytes;                    /* field names + values + ": " and CRLF each */
    const char *cl;
} framing;

static enum MHD_Result framing_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    framing *f = cls;
    (void)kind;
    f->n_fields++;
    f->bytes += strlen(key) + (value ? strlen(value) : 0) + 4;
    if (!strcasecmp(key, "Host")) f->n_host++;
    if (!strcasecmp(key, "Content-Length")) {
        if (f->n_cl++ && strcmp(f->cl, value ? value : "")) f->cl_differ = true;
        f->cl = value ? value : "";
    } else if (!strcasecmp(key, "Transfer-Encoding")) {
        if (f->n_te++ || !value || strcasecmp(value, "chunked")) f->te_bad = true;
    }
    return MHD_YES;
}

/* The door checked the first head of a connection; later heads on a keep-alive connection only reach
 * libmicrohttpd, which accepts an unknown Transfer-Encoding (then waits for the connection to close), uses
 * the first of several Content-Length values, accepts HTTP/1.1 without Host and heads up to its memory
 * pool (2 × --max-header-bytes + 32 KiB). The door's rules for those, here. */
static bool framing_ok(http_req *r) {
    if (!r->conn) return true;
    framing f = {0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, framing_cb, &f);
    size_t max_head = (size_t)r->h->cfg.opts->max_header_bytes;
    if (f.bytes > max_head || f.n_fields > 128)
        http_error(r, 431, NULL, "headers_too_large", "the request head is larger than %zu bytes or has more than 128 fields",
                   max_head);
    else if (f.n_host != 1 && !(r->http10 && !f.n_host))
        http_error(r, 400, NULL, "bad_request", f.n_host ? "more than one Host header" : "an HTTP/1.1 request needs a Host header");
    else if (f.te_bad) http_error(r, 400, NULL, "bad_request", "Transfer-Encoding is not supported (only a single 'chunked')");
    else if (f.n_te && f.n_cl) http_error(r, 400, NULL, "bad_request", "both Transfer-Encoding and Content-Length are set");
    else if (f.cl_differ) http_error(r, 400, NULL, "bad_request", "two different Content-Length headers");
    else return true;
    return false;
}

/* JSON bodies only: application/json or application/<something>+json, any parameters. A request without
 * Content-Type is read as JSON (minimal clients). */
static bool content_type_ok(http_req *r) {
    const char *ct = http_header(r, "Content-Type");
    if (!ct) return true;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
    if (n == 16 && !strncasecmp(ct, "application/json", 16)) return true;
    if (n > 17 && !strncasecmp(ct, "application/", 12) && !strncasecmp(ct + n - 5, "+json", 5)) return true;
    http_error(r, 415, "Content-Type", "unsupported_media_type", "Content-Type '%.60s' is not supported; send application/json", ct);
    return false;
}

int http_admit(http_req *r, const char *url, const char *method, uint64_t content_length, bool has_length) {
    ragd_http *h = r->h;
    bool known;
    const route *rt = find_route(url, &known, method);
    r->ep = rt ? rt->ep : RAGD_EP_OTHER;
    snprintf(r->method, sizeof r->method, "%s", method);
    if (rt && rt->prefix) r->path_arg = url + strlen(rt->path); /* (set again before dispatch: url lives per call) */
    if (atomic_load(&h->quiesced)) {
        ragd_metrics_rejected(h->cfg.metrics, RAGD_REJECT_SHUTDOWN);
        http_error(r, 503, NULL, "shutting_down", "the server is shutting down");
        return -1;
    }
    if (!framing_ok(r)) return -1;
    cors_match(r);
    if (!strcmp(method, "OPTIONS") && known && !rt) { /* before the key check: browsers send no key here */
        path_methods(url, r->allow, sizeof r->allow);
        r->status = 204;
        return -1;
    }
    if (h->cfg.api_key && !http_path_public(url, strlen(url))) {
        const char *v = http_header(r, "Authorization");
        if (!http_auth_ok(h->cfg.api_key, v, v ? strlen(v) : 0)) {
            http_error(r, 401, NULL, "invalid_api_key", "missing or wrong API key (send 'Authorization: Bearer KEY')");
            return -1;
        }
    }
    if (!rt) {
        if (known) {
            path_methods(url, r->allow, sizeof r->allow);
            http_error(r, 405, NULL, "method_not_allowed", "%s is not allowed on %s (allowed: %s)", method, url, r->allow);
        }
        else http_error(r, 404, NULL, "not_found", "no endpoint %.40s %.200s", method, url);
        return -1;
    }
    if (has_length && content_length > h->max_body) {
        http_error(r, 413, NULL, "body_too_large", "request body of %llu bytes exceeds the limit of %zu bytes (--max-body-bytes)",
                   (unsigned long long)content_length, h->max_body);
        return -1;
    }
    if (!strcmp(rt->method, "POST") && !content_type_ok(r)) return -1;
    if (has_length && content_length) {
        if (!http_mem_reserve(r, (size_t)content_length, "its body")) return -1;
        r->mem_body = (size_t)content_length;
        ragd_buf_reserve(&r->body, (size_t)content_length);
    }
    return (int)(rt - g_routes);
}

http_outcome http_dispatch(http_req *r, int ri) {
    RAGD_ASSERT(ri >= 0 && (size_t)ri < N_ROUTES);
    r->body_len = r->body.len;
    return g_routes[ri].fn(r);
}

/* ---------------------------------------------------------------------------------------------- */
/* the access handler */

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls) {
    ragd_http *h = cls;
    http_req *r = *con_cls;
    if (!r) { /* headers complete */
        if (!http_door_event(h->door, conn, HTTP_CONN_HEAD)) return MHD_NO; /* closed by the door meanwhile */
        r = req_new(h, conn);
        *con_cls = r;
        r->http10 = version && !strcmp(version, MHD_HTTP_VERSION_1_0);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        uint64_t len = cl ? strtoull(cl, NULL, 10) : 0;
        r->handled = http_admit(r, url, method, len, cl != NULL) < 0;
        return r->handled ? queue_reply(r) : MHD_YES;
    }
    if (*upload_data_size) { /* body chunk */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_big || r->over_budget) return MHD_YES; /* read and dropped: the reply waits for the end */
        if (r->body.len + n > h->max_body) {
            r->too_big = true;
            http_mem_release(r, r->mem_body);
            r->mem_body = 0;
            ragd_buf_free(&r->body);
            return MHD_YES;
        }
        if (r->body.len + n > r->mem_body) { /* chunked: reserve as it arrives */
            size_t more = r->body.len + n - r->mem_body;
            if (!http_mem_reserve(r, more, "its body")) {
                r->over_budget = true;
                http_mem_release(r, r->mem_body);
                r->mem_body = 0;
                ragd_buf_free(&r->body);
                return MHD_YES;
            }
            r->mem_body += more;
        }
        ragd_buf_append(&r->body, upload_data, n);
        return MHD_YES;
    }
    if (r->handled) return pending_next(r);
    r->handled = true;
    if (!http_door_event(h->door, conn, HTTP_CONN_BUSY)) return MHD_NO;
    if (r->too_big) {
        http_error(r, 413, NULL, "body_too_large", "request body exceeds the limit of %zu bytes (--max-body-bytes)", h->max_body);
        return queue_reply(r);
    }
    if (r->over_budget) return queue_reply(r); /* the refused reservation set the reply */
    bool known;
    const route *rt = find_route(url, &known, method);
    RAGD_ASSERT(rt);
    if (rt->prefix) r->path_arg = url + strlen(rt->path);
    if (http_dispatch(r, (int)(rt - g_routes)) == HTTP_REPLY) return queue_reply(r);
    /* pending: wait for the scheduler unless it already answered */
    pthread_mutex_lock(&r->mu);
    bool ready = r->done || (r->streaming && r->sse.len > r->sse_off);
    if (!ready) {
        r->suspended = true;
        MHD_suspend_connection(conn);
    }
    pthread_mutex_unlock(&r->mu);
    return ready ? pending_next(r) : MHD_YES;
}

/* The access log's scheduler times of a finished task (sched.h): " queue_ms=… prefill_ms=… decode_ms=… ttft_ms=…"
 * for generation, " queue_ms=… compute_ms=…" for embed / rerank. */
static void task_times(const ragd_task *t, char *out, size_t len) {
#define MS(a, b) ((a) > 0 && (b) > (a) ? ((b) - (a)) * 1e3 : 0.0)
    if (t->kind == RAGD_TASK_GENERATE)
        snprintf(out, len, " queue_ms=%.3f prefill_ms=%.3f decode_ms=%.3f ttft_ms=%.3f", MS(t->t_submit, t->t_start),
                 MS(t->t_start, t->t_first_token), MS(t->t_first_token, t->t_end), MS(t->t_arrival, t->t_first_token));
    else snprintf(out, len, " queue_ms=%.3f compute_ms=%.3f", MS(t->t_submit, t->t_start), MS(t->t_start, t->t_end));
#undef MS
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    ragd_http *h = cls;
    http_req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    http_door_event(h->door, conn, HTTP_CONN_DONE);
    pthread_mutex_lock(&r->mu);
    r->closed = true;
    bool cancel = r->submitted && !r->done;
    const int64_t pt = r->done ? r->task.prompt_tokens : 0, ct = r->done ? r->task.completion_tokens : 0;
    char times[160] = "";
    if (r->submitted && r->done && r->task.status == RAGD_OK) task_times(&r->task, times, sizeof times);
    pthread_mutex_unlock(&r->mu);
    if (cancel) atomic_store(&r->task.cancel, true);
    int status = r->status;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->streaming) status = status ? status : 499;
    ragd_metrics_request(h->cfg.metrics, r->ep, status, ragd_now_s() - r->t_start);
    /* the access log: one line per request that reached routing (the door logs what it refused itself) */
    RAGD_INFO("access id=%s method=%s endpoint=%s status=%d prompt_tokens=%lld completion_tokens=%lld ms=%.1f%s%s", r->id,
              r->method[0] ? r->method : "-", ragd_endpoint_name(r->ep), status, (long long)pt, (long long)ct,
              (ragd_now_s() - r->t_start) * 1e3, times, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " ended_early=1");
    req_unref(r);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    ragd_http *h = cls;
    (void)socket_context;
    http_door_mhd_notify(h->door, conn, code == MHD_CONNECTION_NOTIFY_STARTED);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n') line[--n] = 0;
    RAGD_DEBUG("libmicrohttpd: %s", line);
}

/* ---------------------------------------------------------------------------------------------- */
/* lifecycle */

/* libmicrohttpd's fatal errors (its own invariants) end the process like our RAGD_DIE: log why, then abort. */
static void mhd_panic(void *cls, const char *file, unsigned int line, const char *reason) {
    (void)cls;
    ragd_die(file ? file : "libmicrohttpd", (int)line, "libmicrohttpd: %s", reason ? reason : "panic");
}

ragd_status ragd_http_start(const ragd_http_cfg *cfg, ragd_http **out, ragd_err *err) {
    *out = NULL;
    const ragd_serve_opts *o = cfg->opts;
    if ((uint64_t)o->max_request_memory < (uint64_t)o->max_body_bytes)
        return ragd_err_set(err, RAGD_EINVAL, "--max-request-memory (%lld) must be at least --max-body-bytes (%lld)",
                            (long long)o->max_request_memory, (long long)o->max_body_bytes);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST},
                    *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%lld", (long long)o->port);
    int gai = getaddrinfo(o->host, port, &hints, &ai);
    if (gai) {
        hints.ai_flags = 0;
        gai = getaddrinfo(o->host, port, &hints, &ai);
    }
    if (gai) return ragd_err_set(err, RAGD_EINVAL, "--host %s: %s", o->host, gai_strerror(gai));
    ragd_http *h = ragd_xcalloc(1, sizeof *h);
    h->cfg = *cfg;
    h->max_body = (size_t)o->max_body_bytes;
    h->mem_limit = (size_t)o->max_request_memory;
    atomic_store(&h->sched, cfg->sched);
    atomic_store(&h->next_id, ((uint64_t)time(NULL) & 0xffffff) << 20);
    for (int i = 0; i < cfg->n_models; i++)
        for (int rr = 0; rr < RAGD_ROLE_COUNT; rr++)
            if (cfg->models[i]->roles[rr]) h->role[rr] = cfg->models[i];
    ragd_status st = http_tls_create(h, o->tls_cert, o->tls_key, &h->tls, err); /* before listening: bad files stop the start */
    if (!st) st = http_door_open(h, ai->ai_addr, ai->ai_addrlen, err);
    freeaddrinfo(ai);
    if (st) {
        http_tls_free(h->tls);
        free(h);
        return st;
    }
    h->port = http_door_port(h->door);
    /* no listening socket: the door accepts, checks the head and hands connections over. The idle
     * timeout is only a backstop here (a reply nobody reads); the door keeps the real deadlines. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
    int64_t longest = o->header_timeout_ms > o->body_timeout_ms ? o->header_timeout_ms : o->body_timeout_ms;
    MHD_set_panic_func(mhd_panic, NULL);
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_access, h,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)o->http_threads,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)(2 * o->max_connections + 64),
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(longest / 1000 + 1),
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(2 * o->max_header_bytes + 32768),
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
                            MHD_OPTION_END);
    if (!h->d) {
        http_door_free(h->door);
        http_tls_free(h->tls);
        free(h);
        return ragd_err_set(err, RAGD_EIO, "cannot start libmicrohttpd (%d threads)", (int)o->http_threads);
    }
    http_door_run(h->door);
    *out = h;
    return RAGD_OK;
}

int ragd_http_port(const ragd_http *h) { return h->port; }

void ragd_http_set_sched(ragd_http *h, ragd_sched *s) { atomic_store(&h->sched, s); }

void ragd_http_quiesce(ragd_http *h) {
    if (!h || atomic_exchange(&h->quiesced, true)) return;
    http_door_quiesce(h->door); /* when this returns, new connections are refused */
}

int ragd_http_active(ragd_http *h) { return atomic_load(&h->active); }

void ragd_http_stop(ragd_http *h) {
    if (!h) return;
    http_door_stop(h->door);  /* no more connections handed over */
    MHD_stop_daemon(h->d);    /* closes the rest (their CLOSED notifications still reach the door) */
    http_tls_free(h->tls);    /* TLS relays end (their plaintext ends are closed); they may still call the door */
    http_door_free(h->door);
    free(h);
}
