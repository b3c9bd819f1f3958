/* server.c — libmicrohttpd plumbing for `ragd serve`: daemon setup, routing, bearer auth, request
 * ids, the body cap, suspend/resume around scheduler tasks, SSE streaming and request completion.
 *
 * Request life (one http_req per request, refcounted: 1 for libmicrohttpd, +1 while a task is with
 * the scheduler):
 *   headers → route + auth + Content-Length cap (errors answered at once)
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
} route;

static const route g_routes[] = {
    {"POST", "/embed", RAGD_EP_EMBED, api_embed, false},
    {"POST", "/rerank", RAGD_EP_RERANK, api_rerank, false},
    {"POST", "/v1/embeddings", RAGD_EP_V1_EMBEDDINGS, api_v1_embeddings, false},
    {"POST", "/v1/rerank", RAGD_EP_V1_RERANK, api_v1_rerank, false},
    {"POST", "/v1/chat/completions", RAGD_EP_V1_CHAT, api_chat, false},
    {"POST", "/v1/completions", RAGD_EP_V1_COMPLETIONS, api_completions, false},
    {"GET", "/v1/models", RAGD_EP_V1_MODELS, api_models, false},
    {"POST", "/tokenize", RAGD_EP_TOKENIZE, api_tokenize, false},
    {"POST", "/detokenize", RAGD_EP_DETOKENIZE, api_detokenize, false},
    {"GET", "/health", RAGD_EP_HEALTH, api_health, true},
    {"GET", "/health/ready", RAGD_EP_HEALTH_READY, api_ready, true},
    {"GET", "/metrics", RAGD_EP_METRICS, api_metrics, false},
    {"GET", "/diagnostics", RAGD_EP_DIAGNOSTICS, api_diagnostics, false},
};
#define N_ROUTES (sizeof g_routes / sizeof g_routes[0])

static const route *find_route(const char *url, bool *path_known, const char *method) {
    *path_known = false;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (strcmp(g_routes[i].path, url)) continue;
        *path_known = true;
        if (!strcmp(g_routes[i].method, method)) return &g_routes[i];
    }
    return NULL;
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
    const char *cid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    bool ok = cid && *cid && strlen(cid) <= 64;
    for (const char *p = cid; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
             *p == '_' || *p == '.' || *p == ':';
    if (ok) snprintf(r->id, sizeof r->id, "%s", cid);
    else snprintf(r->id, sizeof r->id, "req-%llx", (unsigned long long)atomic_fetch_add(&h->next_id, 1));
    atomic_fetch_add(&h->active, 1);
    return r;
}

static void req_unref(http_req *r) {
    pthread_mutex_lock(&r->mu);
    int left = --r->refs;
    pthread_mutex_unlock(&r->mu);
    if (left) return;
    ragd_http *h = r->h;
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
    const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Timeout-Ms");
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

bool http_submit(http_req *r) {
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
        http_error_status(r, st, NULL, ragd_err_msg(&err));
        ragd_err_free(&err);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------------- */
/* replies */

static enum MHD_Result queue_reply(http_req *r) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->out.len, r->out.data ? r->out.data : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r->content_type);
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    if (r->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", r->retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (atomic_load(&r->h->quiesced)) MHD_add_response_header(resp, "Connection", "close");
    if (r->status >= 500 || r->status == 429)
        RAGD_WARN("[%s] %s -> %d %.*s", r->id, ragd_endpoint_name(r->ep), r->status,
                  (int)(r->out.len < 300 ? r->out.len : 300), r->out.data ? r->out.data : "");
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
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_reader, r, NULL);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    r->status = 200;
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
/* the access handler */

static bool auth_ok(ragd_http *h, struct MHD_Connection *conn) {
    const char *key = h->cfg.api_key;
    if (!key) return true;
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!v || strncasecmp(v, "Bearer ", 7)) return false;
    v += 7;
    size_t a = strlen(v), b = strlen(key);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < a; i++) diff |= (unsigned char)v[i] ^ (unsigned char)key[i % (b ? b : 1)];
    return diff == 0;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls) {
    ragd_http *h = cls;
    (void)version;
    http_req *r = *con_cls;
    if (!r) { /* headers complete */
        r = req_new(h, conn);
        *con_cls = r;
        bool known;
        const route *rt = find_route(url, &known, method);
        r->ep = rt ? rt->ep : RAGD_EP_OTHER;
        if (atomic_load(&h->quiesced)) {
            ragd_metrics_rejected(h->cfg.metrics, RAGD_REJECT_SHUTDOWN);
            http_error(r, 503, NULL, "shutting_down", "the server is shutting down");
            return queue_reply(r);
        }
        if (!rt) {
            if (known) http_error(r, 405, NULL, "method_not_allowed", "%s is not allowed on %s", method, url);
            else http_error(r, 404, NULL, "not_found", "no endpoint %s %s", method, url);
            return queue_reply(r);
        }
        if (!rt->public_ && !auth_ok(h, conn)) {
            http_error(r, 401, NULL, "invalid_api_key", "missing or wrong API key (send 'Authorization: Bearer KEY')");
            return queue_reply(r);
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > h->max_body) {
            http_error(r, 413, NULL, "body_too_large", "request body of %s bytes exceeds the limit of %zu bytes", cl,
                       h->max_body);
            return queue_reply(r);
        }
        return MHD_YES;
    }
    if (*upload_data_size) { /* body chunk */
        if (!r->too_big) {
            if (r->body.len + *upload_data_size > h->max_body) {
                r->too_big = true;
                ragd_buf_free(&r->body);
            } else ragd_buf_append(&r->body, upload_data, *upload_data_size);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->handled) return pending_next(r);
    r->handled = true;
    if (r->too_big) {
        http_error(r, 413, NULL, "body_too_large", "request body exceeds the limit of %zu bytes", h->max_body);
        return queue_reply(r);
    }
    bool known;
    const route *rt = find_route(url, &known, method);
    RAGD_ASSERT(rt);
    if (rt->fn(r) == HTTP_REPLY) return queue_reply(r);
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

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    ragd_http *h = cls;
    (void)conn;
    http_req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    pthread_mutex_lock(&r->mu);
    r->closed = true;
    bool cancel = r->submitted && !r->done;
    pthread_mutex_unlock(&r->mu);
    if (cancel) atomic_store(&r->task.cancel, true);
    int status = r->status;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->streaming) status = status ? status : 499;
    ragd_metrics_request(h->cfg.metrics, r->ep, status, ragd_now_s() - r->t_start);
    RAGD_DEBUG("[%s] %s %d %.1f ms%s", r->id, ragd_endpoint_name(r->ep), status, (ragd_now_s() - r->t_start) * 1e3,
               toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection ended early)");
    req_unref(r);
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
    h->quiesced_fd = -1;
    h->cfg = *cfg;
    h->max_body = (size_t)o->max_body_bytes;
    atomic_store(&h->sched, cfg->sched);
    atomic_store(&h->next_id, ((uint64_t)time(NULL) & 0xffffff) << 20);
    for (int i = 0; i < cfg->n_models; i++)
        for (int rr = 0; rr < RAGD_ROLE_COUNT; rr++)
            if (cfg->models[i]->roles[rr]) h->role[rr] = cfg->models[i];
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    MHD_set_panic_func(mhd_panic, NULL);
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_access, h,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)o->http_threads,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        free(h);
        return ragd_err_set(err, RAGD_EIO, "cannot listen on %s:%lld (address in use or not available)", o->host,
                            (long long)o->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : (int)o->port;
    *out = h;
    return RAGD_OK;
}

int ragd_http_port(const ragd_http *h) { return h->port; }

void ragd_http_set_sched(ragd_http *h, ragd_sched *s) { atomic_store(&h->sched, s); }

void ragd_http_quiesce(ragd_http *h) {
    if (!h || atomic_exchange(&h->quiesced, true)) return;
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    h->quiesced_fd = fd == MHD_INVALID_SOCKET ? -1 : (int)fd;
}

int ragd_http_active(ragd_http *h) { return atomic_load(&h->active); }

void ragd_http_stop(ragd_http *h) {
    if (!h) return;
    MHD_stop_daemon(h->d);
    if (h->quiesced_fd >= 0) close(h->quiesced_fd);
    free(h);
}
