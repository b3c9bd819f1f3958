/* obs.h — the public header of ragd's observability module: the server's option table (one
 * declarative table feeding the command line, the environment, --help, the startup print and
 * /diagnostics) and the metrics registry rendered as Prometheus text on /metrics.
 *
 * Threading contract: options are parsed once on the main thread before any other thread starts and
 * are read-only afterwards. Metrics are updated from any thread (HTTP pool, scheduler threads) with
 * atomic counters and a mutex per histogram; rendering may run concurrently with updates (values are
 * then a consistent-enough snapshot: each series is read atomically, the set is not).
 */
#ifndef RAGD_OBS_H
#define RAGD_OBS_H

#include "common/common.h"

/* ---------------------------------------------------------------------------------------------- */
/* options of `ragd serve` */

/* Effective values of every option. Strings are owned by the struct (freed by ragd_serve_opts_free);
 * NULL when unset. */
typedef struct ragd_serve_opts {
    char *config;                  /* the config file the values were read from first (NULL: none) */
    char *embed, *rerank, *chat;   /* model paths (directory or .gguf) */
    char *device;                  /* "cpu" | "cuda" | "auto" */
    char *host;
    int64_t port;
    char *api_key;
    char *api_key_file;
    char *cors_origins;            /* browsers allowed: "*" or comma-separated origins; NULL: no CORS */
    int64_t max_batch_tokens;      /* tokens in one forward call */
    int64_t max_seqs;              /* generation sequences at once (sequence slots of the chat engine) */
    int64_t max_step_tokens;       /* tokens in one generation step (decode + prefill chunks) */
    int64_t kv_block_size;         /* positions per KV cache block */
    int64_t kv_cache_tokens;       /* KV cache size in tokens; 0 = what the memory budget leaves */
    bool no_prefix_cache;          /* disable the prefix cache */
    int64_t max_batch_seqs;        /* sequences in one embed/rerank forward call */
    int64_t max_model_len;         /* longest sequence (prompt + generated); 0 = the model's own */
    int64_t max_queue;             /* waiting requests per device */
    int64_t max_queue_tokens;      /* waiting tokens per device */
    int64_t timeout_ms;            /* default per-request deadline */
    int64_t max_body_bytes;
    char *gpu_memory;              /* bytes ("8G", "8000000000") or a fraction of the card ("0.9") */
    int64_t threads;               /* CPU engine threads; 0 = all cores */
    int64_t http_threads;          /* libmicrohttpd thread pool size */
    int64_t batch_delay_us;        /* bounded fill delay of embed/rerank batches */
    int64_t max_tokens_default;    /* chat max_tokens when the request names none */
    int64_t shutdown_ms;           /* how long SIGTERM waits for in-flight requests */
    int64_t max_connections;
    int64_t max_connections_per_client; /* open connections from one client address; 0 = no cap */
    int64_t header_timeout_ms;     /* request head deadline (new connection, or keep-alive idle + next head) */
    int64_t body_timeout_ms;       /* request body deadline, from the end of its head */
    int64_t max_header_bytes;      /* request line + header fields */
    int64_t max_request_memory;    /* bytes all requests may hold at once (bodies, JSON, tokens, replies) */
    char *log_level;               /* debug | info | warn | error */
    char *log_format;              /* text | json */
    char *chat_template;           /* Jinja chat template file overriding the chat model's */
    char *tls_cert;                /* HTTPS: PEM certificate (chain) file; with tls_key */
    char *tls_key;                 /* HTTPS: PEM private key file */
    char *served_name;             /* names of the chat model: NAME[,ALIAS,...] (default: file name) */
    char *embed_served_name;       /* the same for the embedding model */
    char *rerank_served_name;      /* the same for the reranker */
    bool demo;                     /* label every model "demo quality" in /v1/models */
    char *nvml_lib;                /* NVML library for GPU telemetry and health; "off": none */
} ragd_serve_opts;

typedef enum { RAGD_OPT_STR = 0, RAGD_OPT_INT, RAGD_OPT_BOOL } ragd_opt_type;

/* One row of the option table. */
typedef struct ragd_opt_def {
    const char *name;      /* long flag without "--" */
    ragd_opt_type type;
    const char *def;       /* default as text (NULL: unset) */
    int64_t min, max;      /* bounds for INT */
    const char *env;       /* environment variable */
    const char *help;
    size_t offset;         /* field in ragd_serve_opts */
    const char *choices;   /* STR only: "|"-separated allowed values, or NULL */
    bool secret;           /* printed as "***" */
} ragd_opt_def;

/* The table (NULL-name terminated). */
const ragd_opt_def *ragd_serve_opt_table(void);

/* Defaults, then the config file (--config FILE or RAGD_CONFIG; YAML `option: value` or TOML `option = value`, see
 * options_file.c), then environment, then argv (argv wins). Unknown flags, missing values, values out of
 * bounds or not in the choices → RAGD_EINVAL naming the flag (or env var). "--help" sets *help. */
ragd_status ragd_serve_opts_parse(int argc, char **argv, ragd_serve_opts *o, bool *help, ragd_err *err);
void ragd_serve_opts_free(ragd_serve_opts *o);
/* --help text: one line per option with its env var, default and bounds. */
void ragd_serve_opts_help(ragd_buf *out);
/* Effective values as an aligned table (startup print) and as a JSON object (/diagnostics). Secrets
 * are masked in both. */
void ragd_serve_opts_print(const ragd_serve_opts *o, ragd_buf *out);
void ragd_serve_opts_json(const ragd_serve_opts *o, ragd_buf *out);

/* "8G", "512M", "123456", "0.9" → bytes; a value in (0, 1] is a fraction of total (total 0: error). */
ragd_status ragd_parse_mem(const char *s, size_t total, size_t *out, ragd_err *err);

/* ---------------------------------------------------------------------------------------------- */
/* metrics */

/* Endpoints with their own series (label endpoint="..."). */
typedef enum {
    RAGD_EP_EMBED = 0, RAGD_EP_RERANK, RAGD_EP_V1_EMBEDDINGS, RAGD_EP_V1_RERANK, RAGD_EP_V1_CHAT,
    RAGD_EP_V1_COMPLETIONS, RAGD_EP_V1_MODELS, RAGD_EP_TOKENIZE, RAGD_EP_DETOKENIZE, RAGD_EP_HEALTH,
    RAGD_EP_HEALTH_READY, RAGD_EP_METRICS, RAGD_EP_DIAGNOSTICS,
    /* drop-in shapes of other servers (issue 19) */
    RAGD_EP_V1_RANKING, RAGD_EP_V2_RERANK, RAGD_EP_V2_EMBED, RAGD_EP_SCORE, RAGD_EP_V2_HEALTH, RAGD_EP_V2_MODELS,
    RAGD_EP_INFO, /* TEI's GET /info */
    RAGD_EP_OTHER, RAGD_EP_COUNT
} ragd_endpoint;
const char *ragd_endpoint_name(ragd_endpoint e);

/* Task kinds of the scheduler (label task="..."). */
typedef enum { RAGD_MTASK_EMBED = 0, RAGD_MTASK_RERANK, RAGD_MTASK_GENERATE, RAGD_MTASK_COUNT } ragd_mtask;

/* Why a request or a connection was refused before any work: queue full (429), shutting down (503),
 * the connection caps (503 / per client 429), a pending head evicted to make room, a head or body that
 * missed its deadline (408), the request-memory budget (503), a malformed HTTP head (4xx/505). */
typedef enum {
    RAGD_REJECT_QUEUE_FULL = 0, RAGD_REJECT_SHUTDOWN, RAGD_REJECT_CONN_LIMIT, RAGD_REJECT_CLIENT_LIMIT,
    RAGD_REJECT_EVICTED, RAGD_REJECT_HEADER_TIMEOUT, RAGD_REJECT_BODY_TIMEOUT, RAGD_REJECT_MEMORY,
    RAGD_REJECT_BAD_HTTP, RAGD_REJECT_COUNT
} ragd_reject_reason;
typedef enum { RAGD_CANCEL_DISCONNECT = 0, RAGD_CANCEL_TIMEOUT, RAGD_CANCEL_COUNT } ragd_cancel_reason;
/* How a generated choice ended (label reason="..."). */
typedef enum { RAGD_MFINISH_STOP = 0, RAGD_MFINISH_LENGTH, RAGD_MFINISH_ERROR, RAGD_MFINISH_CANCELLED, RAGD_MFINISH_COUNT } ragd_mfinish;

/* Process-wide metrics (one registry per process; the server creates it and passes it around). */
typedef struct ragd_metrics ragd_metrics;
ragd_metrics *ragd_metrics_create(void);
void ragd_metrics_free(ragd_metrics *m);

/* The served name of the model doing task t: the label model="..." of the per-request series of that task
 * (copied; NULL or never set: no model label). Call at startup, before /metrics is rendered. */
void ragd_metrics_set_model(ragd_metrics *m, ragd_mtask t, const char *name);

void ragd_metrics_request(ragd_metrics *m, ragd_endpoint ep, int http_status, double latency_s);
/* ragd_queue_time_seconds: from the request's arrival (its head read: parsing and tokenization included) to
 * its first sequence entering a batch / its first choice admitted */
void ragd_metrics_queue_time(ragd_metrics *m, ragd_mtask t, double seconds);
/* The phases of a request in the scheduler, one histogram each (ragd_request_<phase>_seconds):
 * queue (ragd_sched_submit → first batch / admission; every task), prefill (admission → first token) and
 * decode (first token → last; successful requests) for GENERATE, compute (first batch → last sequence
 * done; successful requests) for EMBED/RERANK. Other task/phase pairs are not rendered. */
typedef enum { RAGD_MPHASE_QUEUE = 0, RAGD_MPHASE_PREFILL, RAGD_MPHASE_DECODE, RAGD_MPHASE_COMPUTE, RAGD_MPHASE_COUNT } ragd_mphase;
void ragd_metrics_phase(ragd_metrics *m, ragd_mphase p, ragd_mtask t, double seconds);
void ragd_metrics_batch(ragd_metrics *m, ragd_mtask t, int n_seqs, int n_tokens);
void ragd_metrics_ttft(ragd_metrics *m, double seconds);
void ragd_metrics_itl(ragd_metrics *m, double seconds);
void ragd_metrics_tokens_in(ragd_metrics *m, ragd_mtask t, int64_t n);
void ragd_metrics_tokens_out(ragd_metrics *m, int64_t n);
void ragd_metrics_rejected(ragd_metrics *m, ragd_reject_reason r);
void ragd_metrics_cancelled(ragd_metrics *m, ragd_cancel_reason r);
void ragd_metrics_engine_error(ragd_metrics *m, ragd_mtask t);
/* Gauges: set by the scheduler (absolute values). */
void ragd_metrics_set_queue(ragd_metrics *m, int64_t requests, int64_t tokens);
void ragd_metrics_set_running(ragd_metrics *m, int64_t seqs);
/* Generation: preempted sequences waiting to be recomputed; the chat engine's KV blocks (held by
 * sequences, cached for reuse, total) and its prefix-cache token counters (absolute values). */
void ragd_metrics_set_preempted(ragd_metrics *m, int64_t seqs);
void ragd_metrics_set_kv(ragd_metrics *m, int64_t used, int64_t cached, int64_t total, int64_t lookup_tokens,
                         int64_t hit_tokens);
void ragd_metrics_prefix_hit(ragd_metrics *m, int64_t tokens); /* a sequence started after n cached tokens */
void ragd_metrics_preemption(ragd_metrics *m);
/* one generation step: seconds in ragd_engine_step and in the scheduler's host work around it */
void ragd_metrics_gen_step(ragd_metrics *m, double engine_s, double sched_s);
/* structured output: the scheduler's mask cache totals so far (lookups, hits, masks computed, seconds
 * computing them) */
void ragd_metrics_set_grammar(ragd_metrics *m, int64_t lookups, int64_t hits, int64_t computed, double compute_s);
void ragd_metrics_finish(ragd_metrics *m, ragd_mfinish reason);  /* per choice */
void ragd_metrics_e2e(ragd_metrics *m, double seconds);           /* per generation request, arrival to end */
/* HTTP layer gauges: connections still sending their head / handed to the server, request memory held. */
void ragd_metrics_set_connections(ragd_metrics *m, int64_t pending, int64_t open);
void ragd_metrics_set_request_memory(ragd_metrics *m, int64_t bytes);

/* Prometheus text exposition format 0.0.4. */
void ragd_metrics_render(ragd_metrics *m, ragd_buf *out);
/* ragd_build_info and the process_* series (CPU seconds, resident/virtual memory, threads, start time,
 * open/max fds from /proc/self): appended by ragd_metrics_render (process_metrics.c) */
void ragd_metrics_render_process(ragd_buf *out);
/* the git commit this binary was configured from ("unknown" outside a git checkout) */
const char *ragd_build_commit(void);

/* ---------------------------------------------------------------------------------------------- */
/* GPU telemetry and health from NVML (nvml.c)
 *
 * NVML is loaded at run time (dlopen), so a CPU-only build and a machine without a driver work
 * unchanged: the handle then says why NVML is unavailable. Values are sampled at most once per second
 * and cached; render/json may be called from any thread. Threading: open, watch and free on one thread
 * (the main thread); the fault callback runs on the watcher thread. */
typedef struct ragd_nvml ragd_nvml;
/* Opens `lib_path` (e.g. "libnvidia-ml.so.1"; NULL, "" or "off": none), initializes NVML, reads every
 * GPU's name and UUID and takes the health baseline (ECC count at start). Never NULL; never fails: see
 * ragd_nvml_unavailable. Free with ragd_nvml_free. */
ragd_nvml *ragd_nvml_open(const char *lib_path);
/* Stops the watcher, shuts NVML down, unloads it. NULL ok. */
void ragd_nvml_free(ragd_nvml *n);
/* Why NVML is unavailable ("dlopen libnvidia-ml.so.1: ...", "nvmlInit_v2: ..."), or NULL when loaded. */
const char *ragd_nvml_unavailable(const ragd_nvml *n);
/* The driver's version ("560.35.03") and the CUDA version it supports (1000 × major + 10 × minor, e.g. 12060),
 * read once at open; NULL / 0 when NVML is unavailable or does not say. */
const char *ragd_nvml_driver_version(const ragd_nvml *n);
int ragd_nvml_cuda_driver_version(const ragd_nvml *n);
/* GPUs NVML reports (0 when unavailable). Index i is NVML's index i (nvidia-smi's numbering). */
int ragd_nvml_gpu_count(const ragd_nvml *n);
/* true (and *why) when GPU `index` turned unhealthy since start. */
bool ragd_nvml_gpu_fault(ragd_nvml *n, int index, char *why, size_t len);
/* The NVML index of CUDA device `ordinal`, or -1 (with *how saying why): through CUDA_VISIBLE_DEVICES
 * (a UUID or unique UUID prefix is matched, an index is taken as NVML's), else the same index. CUDA's
 * default order equals NVML's (PCI bus) for identical GPUs; *how says which rule matched. */
int ragd_nvml_cuda_index(ragd_nvml *n, int ordinal, char *how, size_t len);
/* Called once per GPU that turns unhealthy, from the watcher thread; `reason` is valid during the call. */
typedef void (*ragd_gpu_fault_fn)(void *ctx, int gpu, const char *reason);
/* Starts the watcher thread: samples every second (waiting on NVML's Xid events in between when the
 * driver offers them) and calls fn for each GPU that turns unhealthy. No-op without NVML or GPUs. */
void ragd_nvml_watch(ragd_nvml *n, ragd_gpu_fault_fn fn, void *ctx);
/* The ragd_gpu_* series of /metrics (ragd_gpu_nvml_up always; the rest per GPU, a value NVML does not
 * support is left out). */
void ragd_nvml_render(ragd_nvml *n, ragd_buf *out);
/* /diagnostics members (no braces): "nvml":"ok"|"unavailable: <why>", "gpus":[{index, name, uuid,
 * driver, memory, utilization, temperature, power, clocks, ECC, retired pages, remapped rows, last
 * Xid, health, fault, errors}] — an unsupported value is null. */
void ragd_nvml_json(ragd_nvml *n, ragd_buf *out);

/* The health decision for one GPU (pure; unhealthy is latched by the caller). */
typedef struct ragd_gpu_health_in {
    bool lost;                                    /* an NVML call returned GPU_IS_LOST */
    bool has_ecc;                                 /* both counts were read */
    unsigned long long ecc_start, ecc_now;        /* uncorrectable volatile ECC errors at start and now */
    bool remap_failure_start, remap_failure_now;  /* row-remapping failure flag */
    unsigned int xid;                             /* the first critical Xid event since start, 0: none */
} ragd_gpu_health_in;
/* true when healthy; else false with the fault in `why` (e.g. "uncorrectable ECC errors rose from 0 at
 * start to 3"). */
bool ragd_gpu_health(const ragd_gpu_health_in *in, char *why, size_t len);
/* An Xid that is a GPU fault (not one of the application Xids 13, 31, 43, 45, 68, 109 that the NVIDIA
 * Kubernetes device plugin ignores as well). */
bool ragd_gpu_xid_is_fault(unsigned int xid);

#endif
