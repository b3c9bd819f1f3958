/* http.h — the public header of ragd's HTTP layer: the endpoints of `ragd serve` on libmicrohttpd.
 *
 * Threading contract: libmicrohttpd runs an internal polling thread per pool worker
 * (http_threads). A worker parses, authenticates, validates and tokenizes a request, posts a task to
 * the scheduler and suspends the connection; the scheduler's sink callbacks (on its own thread)
 * fill the reply and resume the connection, and the worker then sends it. SSE streams are chunked
 * callback responses that suspend whenever no event is pending. Requests share no mutable state
 * except the metrics (atomic) and the per-request lock that guards suspend/resume.
 *
 * Lifecycle: ragd_http_start binds and serves (before the models are loaded: /health answers 200,
 * /health/ready and model endpoints 503 until ragd_http_set_sched hands over the warmed-up scheduler);
 * ragd_http_quiesce stops accepting connections and
 * makes new requests on open ones fail with 503; ragd_http_active counts requests in progress;
 * ragd_http_stop closes everything (call after every task has finished).
 */
#ifndef RAGD_HTTP_H
#define RAGD_HTTP_H

#include "obs/obs.h"
#include "sched/sched.h"

/* What the handlers serve. The models and the scheduler must outlive the server. */
typedef struct ragd_http_cfg {
    const ragd_serve_opts *opts;      /* host, port, limits, api key (already read from its file) */
    const char *api_key;              /* NULL: no auth */
    ragd_sched *sched;                /* may be NULL at start: see ragd_http_set_sched */
    ragd_metrics *metrics;
    ragd_served_model *const *models;
    int n_models;
    const char *device_desc;          /* e.g. "cpu (8 threads)" or "cuda:0 NVIDIA H100 (80 GiB)" */
    const char *device_choice;        /* why this device was chosen (for --device auto) */
    ragd_nvml *nvml;                  /* GPU telemetry for /metrics and /diagnostics (NULL: none) */
    const char *gpu_binding;          /* which NVML GPU the models' health follows, and why (/diagnostics) */
    const char *versions;             /* /diagnostics "versions": a JSON object (NULL: null) */
    ragd_model_digests *digests;      /* /diagnostics per-model "weights" digests (NULL: none) */
} ragd_http_cfg;

typedef struct ragd_http ragd_http;

ragd_status ragd_http_start(const ragd_http_cfg *cfg, ragd_http **out, ragd_err *err);
int ragd_http_port(const ragd_http *h);   /* the bound port (useful with --port 0) */
/* The scheduler is up and every model warmed up: model endpoints start serving. */
void ragd_http_set_sched(ragd_http *h, ragd_sched *s);
void ragd_http_quiesce(ragd_http *h);
int ragd_http_active(ragd_http *h);
void ragd_http_stop(ragd_http *h);        /* NULL ok */

#endif
