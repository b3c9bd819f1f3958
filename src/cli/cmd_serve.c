/* cmd_serve.c — `ragd serve`: options → device choice → models → HTTP (listening) → scheduler +
 * warm-up → ready → SIGTERM/SIGINT → graceful shutdown (listener closed at once, in-flight requests
 * finish within --shutdown-ms, scheduler stopped, connections closed) → exit 0.
 *
 * Signals: SIGTERM/SIGINT are blocked in every thread from main's first instruction (main.c) and taken
 * by sigwait on one watcher thread, so no handler ever runs inside libmicrohttpd or an engine. The
 * watcher closes the listening socket the moment a signal arrives (new connections are refused, even
 * while the models are still loading) and wakes the main thread, which drains and stops; a signal during
 * startup takes effect after the step in progress (a model load, the warm-up) and still exits 0.
 * Exit codes: 0 after a clean shutdown, 1 when startup fails (model, memory plan, port), 2 for bad
 * usage.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/versions.h"
#include "http/http.h"
#include "obs/obs.h"
#include "sched/sched.h"
#ifdef RAGD_HAVE_CUDA
#include "engine/cuda/cuda_api.h"
#endif

/* Device memory allocated outside the memory plans, taken off the plans' budget: CUDA's lazy module
 * loading, cuBLASLt's state, the decode graphs. Measured on an H200 (tests/gpu/mem_boundary.py,
 * bench/RESULTS.md 2026-12-03): 13.3-14.3 MiB after start for chat + embed + rerank at budgets from 2.8 to
 * 14 GiB, and no growth under mixed load. 128 MiB is that with a 9x margin (other shapes load other
 * kernels lazily); the start measures the real figure (sched's mem_probe) and fails with the numbers if
 * it is ever larger. */
#define kUnplannedReserve ((size_t)128 << 20)

/* sched's device-memory probe (CUDA device 0): bytes in use on the whole device, as nvidia-smi sees it */
static ragd_status cuda_mem_probe(void *ctx, size_t *in_use, ragd_err *err) {
    (void)ctx;
#ifdef RAGD_HAVE_CUDA
    char name[128];
    size_t total = 0, free_b = 0;
    int rc = ragd_cuda_device_info(0, name, sizeof name, &total, &free_b);
    if (rc) return ragd_err_set(err, RAGD_EDEVICE, "cudaMemGetInfo failed with CUDA error %d", rc);
    *in_use = total > free_b ? total - free_b : 0;
    return RAGD_OK;
#else
    (void)in_use;
    return ragd_err_set(err, RAGD_EUNSUPPORTED, "built without CUDA");
#endif
}

/* The device the models run on: --device cuda never falls back; auto says what and why. */
static ragd_status choose_device(const ragd_serve_opts *o, ragd_device *dev, size_t *mem_total, size_t *mem_free,
                                 char *desc, size_t desc_len, char *why, size_t why_len, ragd_err *err) {
    *mem_total = 0, *mem_free = 0;
    bool want_cuda = !strcmp(o->device, "cuda"), want_auto = !strcmp(o->device, "auto");
    char reason[256] = "";
#ifdef RAGD_HAVE_CUDA
    if (want_cuda || want_auto) {
        int n = ragd_cuda_device_count(reason, sizeof reason);
        if (n > 0) {
            char name[128] = "?";
            size_t total = 0, free_b = 0;
            int rc = ragd_cuda_device_info(0, name, sizeof name, &total, &free_b);
            if (rc == 0) {
                *dev = RAGD_DEVICE_CUDA;
                *mem_total = total, *mem_free = free_b; /* (after this process's CUDA context was created) */
                snprintf(desc, desc_len, "cuda:0 %s (%.1f GiB, %.1f GiB free)", name, total / 1073741824.0,
                         free_b / 1073741824.0);
                snprintf(why, why_len, "%s", want_cuda ? "--device cuda" : "--device auto: a CUDA device is present");
                return RAGD_OK;
            }
            snprintf(reason, sizeof reason, "cudaGetDeviceProperties failed with CUDA error %d", rc);
        }
    }
#else
    snprintf(reason, sizeof reason, "this ragd was built without the CUDA backend (no nvcc at build time)");
#endif
    if (want_cuda) return ragd_err_set(err, RAGD_EUNSUPPORTED, "--device cuda: no usable GPU: %s", reason);
    *dev = RAGD_DEVICE_CPU;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = o->threads ? (int)o->threads : (int)ncpu;
    snprintf(desc, desc_len, "cpu (%d threads of %ld cores)", threads, ncpu);
    if (want_auto) snprintf(why, why_len, "--device auto: using the CPU because %s", reason);
    else snprintf(why, why_len, "--device cpu");
    return RAGD_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* GPU health: the NVML watcher's verdict reaches the scheduler of the device it describes */

typedef struct gpu_health {
    int gpu;                  /* the NVML index the models run on; -1: none (CPU, or not mapped) */
    ragd_sched *_Atomic sched; /* NULL until the scheduler is up */
} gpu_health;

/* NVML watcher thread: a GPU turned unhealthy */
static void on_gpu_fault(void *ctx, int gpu, const char *reason) {
    gpu_health *gh = ctx;
    if (gpu != gh->gpu) {
        RAGD_ERROR("GPU %d is unhealthy (%s); no model of this server runs on it", gpu, reason);
        return;
    }
    char buf[512];
    snprintf(buf, sizeof buf, "GPU %d is unhealthy: %s", gpu, reason);
    ragd_sched *s = atomic_load(&gh->sched);
    if (s) ragd_sched_mark_not_ready(s, buf); /* logs each model it marks */
}

/* ---------------------------------------------------------------------------------------------- */
/* stop signals */

typedef struct stop_watch {
    sigset_t set;
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sig;                /* the stop signal once it arrived, else 0 (under mu) */
    bool exiting;           /* the watcher is asked to end (under mu) */
    ragd_http *http;        /* quiesced by the watcher at the signal (under mu) */
} stop_watch;

static void *stop_main(void *arg) {
    stop_watch *w = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(&w->set, &sig)) continue;
        pthread_mutex_lock(&w->mu);
        bool exiting = w->exiting;
        if (!exiting && !w->sig) {
            w->sig = sig;
            RAGD_INFO("%s: closing the listening socket, then stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            if (w->http) ragd_http_quiesce(w->http);
            pthread_cond_broadcast(&w->cv);
        }
        pthread_mutex_unlock(&w->mu);
        if (exiting) return NULL;
    }
}

static void stop_watch_start(stop_watch *w) {
    sigemptyset(&w->set);
    sigaddset(&w->set, SIGTERM);
    sigaddset(&w->set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &w->set, NULL); /* main.c did already; a no-op unless called otherwise */
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->started = !pthread_create(&w->th, NULL, stop_main, w);
    if (!w->started) RAGD_DIE("cannot start the signal thread");
}

static int stop_requested(stop_watch *w) {
    pthread_mutex_lock(&w->mu);
    int sig = w->sig;
    pthread_mutex_unlock(&w->mu);
    return sig;
}

/* The HTTP server the watcher closes at a signal (NULL: none any more). */
static void stop_watch_http(stop_watch *w, ragd_http *h) {
    pthread_mutex_lock(&w->mu);
    w->http = h;
    if (h && w->sig) ragd_http_quiesce(h);
    pthread_mutex_unlock(&w->mu);
}

static int stop_wait(stop_watch *w) {
    pthread_mutex_lock(&w->mu);
    while (!w->sig) pthread_cond_wait(&w->cv, &w->mu);
    int sig = w->sig;
    pthread_mutex_unlock(&w->mu);
    return sig;
}

static void stop_watch_end(stop_watch *w) {
    if (!w->started) return;
    pthread_mutex_lock(&w->mu);
    w->exiting = true;
    w->http = NULL;
    pthread_mutex_unlock(&w->mu);
    pthread_kill(w->th, SIGTERM); /* ends its sigwait */
    pthread_join(w->th, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

/* ---------------------------------------------------------------------------------------------- */
/* process limits */

/* An API key is a bearer token: printable ASCII without spaces. An empty one would turn auth on and then
 * accept an empty token. */
static ragd_status check_key(const char *key, const char *src, ragd_err *err) {
    if (!*key) return ragd_err_set(err, RAGD_EINVAL, "%s is empty: give a key, or leave it unset to serve without auth", src);
    for (const char *p = key; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            return ragd_err_set(err, RAGD_EINVAL, "%s holds a space or a non-printable byte; an API key is printable ASCII", src);
    return RAGD_OK;
}

/* The door keeps up to 2 × --max-connections sockets (pending heads + open connections) and a few
 * closing ones: raise the soft limit on open files to the hard one, and say so when even that is short. */
static void raise_fd_limit(const ragd_serve_opts *o) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t need = (rlim_t)(2 * o->max_connections + o->max_connections / 4 + 256);
    if (rl.rlim_cur < need)
        RAGD_WARN("the open-files limit (%llu) is below what --max-connections %lld may use (%llu): new connections "
                  "will be refused early; raise it (ulimit -n) or lower --max-connections",
                  (unsigned long long)rl.rlim_cur, (long long)o->max_connections, (unsigned long long)need);
}

static char *read_key_file(const char *path, ragd_err *err) {
    char *data = NULL;
    size_t len = 0;
    if (ragd_file_read(path, &data, &len, err)) return NULL;
    size_t n = strcspn(data, "\r\n");
    data[n] = 0;
    char src[300];
    snprintf(src, sizeof src, "--api-key-file %s: the first line", path);
    if (check_key(data, src, err)) {
        free(data);
        return NULL;
    }
    return data;
}

/* Smallest of: the model's positions, --max-model-len (when 0, chat is capped at 2048 tokens on the CPU
 * and 4096 on a GPU so the default KV cache stays small), and for pooling roles --max-batch-tokens. */
static int role_len(const ragd_serve_opts *o, ragd_device dev, const ragd_model *m, ragd_role r) {
    int64_t len = m->cfg.max_pos > 0 ? m->cfg.max_pos : 4096;
    int64_t chat_cap = dev == RAGD_DEVICE_CPU ? 2048 : 4096;
    if (o->max_model_len > 0 && o->max_model_len < len) len = o->max_model_len;
    else if (!o->max_model_len && r == RAGD_ROLE_CHAT && len > chat_cap) len = chat_cap;
    if (r != RAGD_ROLE_CHAT && len > o->max_batch_tokens) len = o->max_batch_tokens;
    return (int)len;
}

/* The chat model's template (or --chat-template FILE), compiled once and tried on one user message (and
 * if that fails, with one tool as well): a template that cannot render the simplest chat is the model's
 * fault, so the server refuses to start.
 * A model without a template still serves /v1/completions (chat requests then answer 400). */
static ragd_status chat_template_setup(ragd_served_model *sm, const char *path, ragd_err *err) {
    ragd_status st = ragd_chat_template_for_model(sm->model, path, &sm->chat_template, err);
    if (st == RAGD_EUNSUPPORTED && !path) {
        RAGD_WARN("model %s has no chat template: /v1/chat/completions will answer 400 (use --chat-template)", sm->model->name);
        return RAGD_OK;
    }
    if (st) return ragd_err_prefix(err, "--chat");
    json_t *msgs = json_pack("[{s:s,s:s}]", "role", "user", "content", "Hello");
    ragd_chat_input in = {.messages = msgs, .add_generation_prompt = true};
    ragd_buf b = {0};
    st = ragd_chat_template_render(sm->chat_template, &in, &b, err);
    if (st) { /* a tool-use template (Hermes' chat_template.tool_use.jinja) may need tools: try with one */
        ragd_buf_reset(&b);
        ragd_err e2 = {0};
        json_t *tools = json_loads("[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": \"d\","
                                   " \"parameters\": {\"type\": \"object\", \"properties\": {}}}}]", 0, NULL);
        in.tools = tools;
        if (!ragd_chat_template_render(sm->chat_template, &in, &b, &e2)) {
            RAGD_WARN("the chat template of %s needs tools (%s): chat requests without tools will answer 400",
                      sm->model->name, ragd_err_msg(err));
            ragd_err_free(err);
            st = RAGD_OK;
        }
        ragd_err_free(&e2);
        json_decref(tools);
    }
    json_decref(msgs);
    ragd_buf_free(&b);
    if (st) return ragd_err_prefix(err, "--chat %s: the chat template fails on a one-message chat", sm->model->name);
    if (getenv("RAGD_TEST_CHAT_ANSWER"))
        RAGD_WARN("RAGD_TEST_CHAT_ANSWER is set (test hook): chat requests with tools answer its text instead of the model's");
    static const char *const fmts[] = {"none (answers stay text)", "hermes", "llama3-json", "mistral", "mistral-v11", "granite"};
    _Static_assert(sizeof fmts / sizeof fmts[0] == RAGD_TOOLCALL_GRANITE + 1, "one name per tool-call syntax");
    RAGD_INFO("chat template of %s%s%s: tool calls %s", sm->model->name, path ? " from " : "", path ? path : "",
              fmts[ragd_chat_template_toolcall(sm->chat_template)]);
    return RAGD_OK;
}

/* --served-name / --embed-served-name / --rerank-served-name NAME[,ALIAS...] (`flag`): the names, trimmed
 * (out[0] is the served name). An empty or repeated name is an error naming it. */
static const char *const kNameFlag[RAGD_ROLE_COUNT] = {"--embed-served-name", "--rerank-served-name", "--served-name"};

static ragd_status served_names(const char *spec, const char *flag, char ***out, int *n, ragd_err *err) {
    *out = NULL, *n = 0;
    if (!spec) return RAGD_OK;
    int cap = 1;
    for (const char *p = spec; *p; p++) cap += *p == ',';
    char **v = ragd_xcalloc((size_t)cap, sizeof *v);
    for (const char *p = spec;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) p++, len--;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        if (!len) {
            ragd_err_set(err, RAGD_EINVAL, "%s '%s': an empty name (give NAME or NAME,ALIAS,...)", flag, spec);
            goto fail;
        }
        for (int i = 0; i < *n; i++)
            if (strlen(v[i]) == len && !memcmp(v[i], p, len)) {
                ragd_err_set(err, RAGD_EINVAL, "%s '%s': '%s' is given twice", flag, spec, v[i]);
                goto fail;
            }
        v[(*n)++] = ragd_xstrndup(p, len);
        if (!e) break;
        p = e + 1;
    }
    *out = v;
    return RAGD_OK;
fail:
    for (int i = 0; i < *n; i++) free(v[i]);
    free(v);
    *n = 0;
    return RAGD_EINVAL;
}

/* The names of one served model: those given for each role it serves — the chat model's first, then the
 * embedding and the reranking model's (one model serving several roles answers to all of them), each once.
 * Without any, the model keeps its file name. Returns the array the model points into (NULL: none given). */
static const char **model_names(ragd_served_model *sm, char **const names[RAGD_ROLE_COUNT], const int n_names[RAGD_ROLE_COUNT]) {
    static const ragd_role order[RAGD_ROLE_COUNT] = {RAGD_ROLE_CHAT, RAGD_ROLE_EMBED, RAGD_ROLE_RERANK};
    int total = 0;
    for (int r = 0; r < RAGD_ROLE_COUNT; r++) total += sm->roles[r] ? n_names[r] : 0;
    if (!total) return NULL;
    const char **v = ragd_xcalloc((size_t)total, sizeof *v);
    int k = 0;
    for (int q = 0; q < RAGD_ROLE_COUNT; q++) {
        const ragd_role r = order[q];
        for (int i = 0; sm->roles[r] && i < n_names[r]; i++) {
            bool dup = false;
            for (int j = 0; j < k && !dup; j++) dup = !strcmp(v[j], names[r][i]);
            if (!dup) v[k++] = names[r][i];
        }
    }
    sm->name = v[0];
    sm->aliases = v + 1;
    sm->n_aliases = k - 1;
    return v;
}

/* the first role a model serves, for messages naming it by its option */
static ragd_role first_role(const ragd_served_model *sm) {
    for (int r = 0; r < RAGD_ROLE_COUNT; r++)
        if (sm->roles[r]) return (ragd_role)r;
    return RAGD_ROLE_CHAT;
}

int ragd_cmd_serve(int argc, char **argv) {
    ragd_serve_opts o;
    bool help = false;
    ragd_err err = {0};
    if (ragd_serve_opts_parse(argc, argv, &o, &help, &err)) {
        fprintf(stderr, "ragd serve: %s\n", ragd_err_msg(&err));
        ragd_err_free(&err);
        return 2;
    }
    if (help) {
        ragd_buf b = {0};
        ragd_serve_opts_help(&b);
        fputs(b.data, stdout);
        ragd_buf_free(&b);
        ragd_serve_opts_free(&o);
        return 0;
    }
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(o.log_level, levels[i])) ragd_log_set_level((ragd_log_level)i);
    const bool json_logs = o.log_format && !strcmp(o.log_format, "json");
    ragd_log_set_json(json_logs);
    if (!o.tls_cert != !o.tls_key) {
        fprintf(stderr, "ragd serve: HTTPS needs both --tls-cert and --tls-key (only %s is given)\n",
                o.tls_cert ? "--tls-cert" : "--tls-key");
        ragd_serve_opts_free(&o);
        return 2;
    }
    if (!o.embed && !o.rerank && !o.chat) {
        fprintf(stderr, "ragd serve: no model: give at least one of --embed, --rerank, --chat (see ragd serve --help)\n");
        ragd_serve_opts_free(&o);
        return 2;
    }
    char **names[RAGD_ROLE_COUNT] = {0};
    int n_names[RAGD_ROLE_COUNT] = {0};
    const char **sm_names[RAGD_ROLE_COUNT] = {0}; /* per served model: its names (model_names) */
    {
        const char *specs[RAGD_ROLE_COUNT] = {o.embed_served_name, o.rerank_served_name, o.served_name};
        const char *models[RAGD_ROLE_COUNT] = {o.embed, o.rerank, o.chat};
        for (int r = 0; r < RAGD_ROLE_COUNT; r++) {
            if (specs[r] && !models[r]) /* e.g. a config file shared by servers of different models */
                RAGD_WARN("%s is given but there is no --%s model: ignored", kNameFlag[r], ragd_role_name((ragd_role)r));
            if (!served_names(models[r] ? specs[r] : NULL, kNameFlag[r], &names[r], &n_names[r], &err)) continue;
            fprintf(stderr, "ragd serve: %s\n", ragd_err_msg(&err));
            ragd_err_free(&err);
            for (int q = 0; q < r; q++) {
                for (int i = 0; i < n_names[q]; i++) free(names[q][i]);
                free(names[q]);
            }
            ragd_serve_opts_free(&o);
            return 2;
        }
    }
    int rc = 1;
    char *key = NULL;
    ragd_served_model sms[RAGD_ROLE_COUNT];
    ragd_served_model *smp[RAGD_ROLE_COUNT];
    ragd_model *loaded[RAGD_ROLE_COUNT] = {0};
    int n_models = 0;
    ragd_sched *sched = NULL;
    ragd_http *http = NULL;
    bool was_ready = false;
    ragd_metrics *metrics = ragd_metrics_create();
    ragd_nvml *nvml = NULL;
    ragd_model_digests *digests = NULL;
    ragd_buf versions = {0};
    gpu_health gh = {.gpu = -1};
    char gpu_binding[384] = "";
    memset(sms, 0, sizeof sms);

    /* signals: blocked everywhere (main.c), taken by the watcher thread */
    stop_watch sw = {0};
    stop_watch_start(&sw);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(&o);
    /* blocks of 1 MiB and more (request bodies, token arrays, replies) are mmapped, so they go back to the
     * OS when freed; the small-block heap is trimmed after large requests (door.c) */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);

    if (o.api_key_file) {
        if (o.api_key) {
            fprintf(stderr, "ragd serve: give --api-key or --api-key-file, not both\n");
            rc = 2;
            goto out;
        }
        if (!(key = read_key_file(o.api_key_file, &err))) goto fail;
    } else if (o.api_key) {
        if (check_key(o.api_key, "--api-key (or RAGD_API_KEY)", &err)) {
            fprintf(stderr, "ragd serve: %s\n", ragd_err_msg(&err));
            rc = 2;
            goto out;
        }
        key = ragd_xstrdup(o.api_key);
    }

    ragd_device dev = RAGD_DEVICE_CPU;
    size_t mem_total = 0, mem_free = 0;
    char desc[256], why[384];
    if (choose_device(&o, &dev, &mem_total, &mem_free, desc, sizeof desc, why, sizeof why, &err)) goto fail;
    RAGD_INFO("device: %s (%s)", desc, why);
    nvml = ragd_nvml_open(o.nvml_lib);
    if (ragd_nvml_unavailable(nvml)) RAGD_INFO("NVML unavailable: %s (no GPU telemetry or GPU health)", ragd_nvml_unavailable(nvml));
    /* the models' device: cuda:0 for every CUDA model (sched_opts.cuda_device below) */
    if (dev == RAGD_DEVICE_CUDA) gh.gpu = ragd_nvml_cuda_index(nvml, 0, gpu_binding, sizeof gpu_binding);
    else snprintf(gpu_binding, sizeof gpu_binding, "none: the models run on the CPU");
    RAGD_INFO("GPU health: %s", gpu_binding);
    size_t mem_limit = 0;
    if (dev == RAGD_DEVICE_CUDA && ragd_parse_mem(o.gpu_memory, mem_total, &mem_limit, &err)) {
        ragd_err_prefix(&err, "--gpu-memory");
        goto fail;
    }

    {
        ragd_buf b = {0};
        ragd_serve_opts_print(&o, &b);
        if (json_logs) { /* a log line per table line */
            for (char *line = b.data, *nl; line && *line; line = nl ? nl + 1 : NULL) {
                nl = strchr(line, '\n');
                if (nl) *nl = 0;
                if (*line) RAGD_INFO("%s", line);
            }
        } else fputs(b.data, stderr);
        ragd_buf_free(&b);
    }

    /* models: one ragd_model per distinct model, serving every role it was given — the same path, or
     * another path holding the same files (names, sizes, sha256: ragd_model_same_files), share one
     * ragd_model, one engine and one copy of the weights (issue 18) */
    const char *paths[RAGD_ROLE_COUNT] = {o.embed, o.rerank, o.chat};
    for (int r = 0; r < RAGD_ROLE_COUNT; r++) {
        if (!paths[r]) continue;
        ragd_served_model *sm = NULL;
        for (int i = 0; i < n_models && !sm; i++)
            for (int q = 0; q < r; q++)
                if (paths[q] && sms[i].roles[q] && !strcmp(paths[q], paths[r])) sm = &sms[i];
        for (int i = 0; i < n_models && !sm; i++)
            for (int q = 0; q < r && !sm; q++) {
                if (!paths[q] || !sms[i].roles[q]) continue;
                bool same = false;
                uint64_t bytes = 0;
                const double t0 = ragd_now_s();
                if (ragd_model_same_files(paths[q], paths[r], &same, &bytes, &err)) {
                    ragd_err_prefix(&err, "--%s %s", ragd_role_name((ragd_role)r), paths[r]);
                    goto fail;
                }
                if (!same) continue;
                sm = &sms[i];
                RAGD_INFO("--%s %s holds the same files as --%s %s (%.1f MiB compared by sha256 in %.0f ms): one "
                          "engine and one copy of the weights serve both", ragd_role_name((ragd_role)r), paths[r],
                          ragd_role_name((ragd_role)q), paths[q], bytes / 1048576.0, (ragd_now_s() - t0) * 1e3);
            }
        if (stop_requested(&sw)) goto stopping;
        if (!sm) {
            double t0 = ragd_now_s();
            ragd_model *m = NULL;
            if (ragd_model_load(paths[r], &m, &err)) {
                ragd_err_prefix(&err, "--%s %s", ragd_role_name((ragd_role)r), paths[r]);
                goto fail;
            }
            loaded[n_models] = m;
            sm = &sms[n_models];
            smp[n_models] = sm;
            n_models++;
            sm->model = m;
            sm->name = m->name;
            RAGD_INFO("loaded %s from %s in %.0f ms (%s, %zu parameters)", m->name, paths[r], (ragd_now_s() - t0) * 1e3,
                      ragd_arch_name(m->cfg.arch), ragd_model_param_count(m));
        }
        sm->roles[r] = true;
        sm->role_path[r] = paths[r];
        sm->max_len[r] = role_len(&o, dev, sm->model, (ragd_role)r);
        if (r == RAGD_ROLE_CHAT && chat_template_setup(sm, o.chat_template, &err)) goto fail;
        if (r == RAGD_ROLE_RERANK && ragd_rerank_token_ids(sm->model, &sm->yes_id, &sm->no_id, &err)) {
            ragd_err_prefix(&err, "--rerank %s", paths[r]);
            goto fail;
        }
    }
    for (int i = 0; i < n_models; i++) sm_names[i] = model_names(&sms[i], names, n_names);
    for (int i = 0; i < n_models; i++) {
        /* demo quality: asked for, or one model standing in for specialised ones (the default GGUF) */
        int roles = sms[i].roles[0] + sms[i].roles[1] + sms[i].roles[2];
        /* sequences per forward pass: the KV slots when the model chats, else --max-batch-seqs */
        sms[i].batch_seqs = (int)(sms[i].roles[RAGD_ROLE_CHAT] ? o.max_seqs : o.max_batch_seqs);
        /* one engine per model: its context (KV cache) is the chat length, so pooling roles fit in it */
        if (sms[i].roles[RAGD_ROLE_CHAT])
            for (int r = 0; r < RAGD_ROLE_CHAT; r++)
                if (sms[i].roles[r] && sms[i].max_len[r] > sms[i].max_len[RAGD_ROLE_CHAT])
                    sms[i].max_len[r] = sms[i].max_len[RAGD_ROLE_CHAT];
        sms[i].demo = o.demo || (sms[i].roles[RAGD_ROLE_CHAT] && roles > 1);
        for (int r = 0; r < RAGD_ROLE_COUNT; r++)
            if (sms[i].roles[r]) RAGD_INFO("model %s serves %s: up to %d tokens per sequence%s", sms[i].name,
                                           ragd_role_name((ragd_role)r), sms[i].max_len[r], sms[i].demo ? " (demo quality)" : "");
    }
    /* every name (served name or alias) names one model */
    for (int i = 0; i < n_models; i++)
        for (int j = 0; j < i; j++)
            for (int a = -1; a < sms[i].n_aliases; a++) {
                const char *nm = a < 0 ? sms[i].name : sms[i].aliases[a];
                if (!ragd_served_model_is(&sms[j], nm)) continue;
                const ragd_role ri = first_role(&sms[i]), rj = first_role(&sms[j]);
                ragd_err_set(&err, RAGD_EINVAL, "two different models are both named '%s': --%s %s and --%s %s (give one of "
                             "them another name with %s or %s)", nm, ragd_role_name(rj), sms[j].role_path[rj],
                             ragd_role_name(ri), sms[i].role_path[ri], kNameFlag[rj], kNameFlag[ri]);
                rc = 2;
                goto fail_rc;
            }

    /* the model label of the per-request series: the served name of each task's model */
    for (int i = 0; i < n_models; i++)
        for (int r = 0; r < RAGD_ROLE_COUNT; r++)
            if (sms[i].roles[r])
                ragd_metrics_set_model(metrics, r == RAGD_ROLE_EMBED ? RAGD_MTASK_EMBED : r == RAGD_ROLE_RERANK ? RAGD_MTASK_RERANK
                                                                                                   : RAGD_MTASK_GENERATE,
                                       sms[i].name);

    /* listen first: while the engines are created and warmed up, /health answers 200 and
     * /health/ready 503 (an orchestrator sees a live process that is not ready yet) */
    ragd_cli_versions_json(nvml, &versions);
    digests = ragd_model_digests_create((const ragd_model *const *)loaded, n_models); /* hashed once ready */
    ragd_http_cfg hc = {.opts = &o, .api_key = key, .sched = NULL, .metrics = metrics, .models = smp,
                        .n_models = n_models, .device_desc = desc, .device_choice = why,
                        .nvml = nvml, .gpu_binding = gpu_binding, .versions = versions.data, .digests = digests};
    if (stop_requested(&sw)) goto stopping;
    if (ragd_http_start(&hc, &http, &err)) goto fail;
    stop_watch_http(&sw, http);
    const char *scheme = o.tls_cert ? "https" : "http"; /* ragd_http_start refused one file without the other */
    RAGD_INFO("listening on %s://%s:%d (auth %s%s%s); warming up", scheme, o.host, ragd_http_port(http), key ? "on" : "off",
              o.tls_cert ? ", TLS certificate " : "", o.tls_cert ? o.tls_cert : "");
    fprintf(stdout, "ragd serve: listening on %s://%s:%d\n", scheme, o.host, ragd_http_port(http));
    fflush(stdout);

    ragd_sched_opts so = {.device = dev, .cuda_device = 0, .max_batch_tokens = (int)o.max_batch_tokens,
                          .max_seqs = (int)o.max_seqs, .max_step_tokens = (int)o.max_step_tokens,
                          .kv_block_size = (int)o.kv_block_size, .kv_cache_tokens = o.kv_cache_tokens,
                          .prefix_cache = !o.no_prefix_cache, .max_batch_seqs = (int)o.max_batch_seqs, .max_queue = (int)o.max_queue,
                          .max_queue_tokens = o.max_queue_tokens, .batch_delay_us = (int)o.batch_delay_us,
                          .n_threads = (int)o.threads, .mem_limit = mem_limit,
                          .mem_in_use = dev == RAGD_DEVICE_CUDA && mem_total > mem_free ? mem_total - mem_free : 0,
                          .mem_reserve = dev == RAGD_DEVICE_CUDA ? kUnplannedReserve : 0,
                          .mem_probe = dev == RAGD_DEVICE_CUDA ? cuda_mem_probe : NULL, .metrics = metrics};
    double t0 = ragd_now_s();
    if (ragd_sched_create(&so, smp, n_models, &sched, &err)) goto fail;
    ragd_http_set_sched(http, sched);
    atomic_store(&gh.sched, sched);
    ragd_nvml_watch(nvml, on_gpu_fault, &gh); /* a fault during the warm-up is seen at its first sample */
    if (!stop_requested(&sw)) {
        RAGD_INFO("ready: engines created and warmed up in %.0f ms", (ragd_now_s() - t0) * 1e3);
        was_ready = true;
        /* the weight files' sha256 for /diagnostics, after readiness, on a low-priority thread */
        if (ragd_model_digests_start(digests, &err)) {
            RAGD_WARN("%s: /diagnostics shows the weight digests as pending", ragd_err_msg(&err));
            ragd_err_free(&err);
        }
        stop_wait(&sw);
    }
stopping:;
    int sig = stop_requested(&sw);
    int in_flight = sched ? ragd_sched_in_flight(sched) : 0;
    RAGD_INFO("%s: stopping%s: no new connections; waiting up to %lld ms for %d requests in flight",
              sig == SIGTERM ? "SIGTERM" : "SIGINT", was_ready ? "" : " during startup", (long long)o.shutdown_ms,
              in_flight);
    ragd_http_quiesce(http); /* the watcher did already; NULL ok */
    if (sched) ragd_sched_drain(sched);
    double until = ragd_now_s() + (double)o.shutdown_ms / 1e3;
    while (ragd_now_s() < until && ((sched && ragd_sched_in_flight(sched) > 0) || (http && ragd_http_active(http) > 0)))
        usleep(10000);
    int left = sched ? ragd_sched_in_flight(sched) : 0;
    if (left) RAGD_WARN("shutdown: %d requests still running after %lld ms; cancelling them", left, (long long)o.shutdown_ms);
    ragd_sched_stop(sched); /* fails what is left: their clients get 503; its memory stays valid */
    until = ragd_now_s() + 2.0;
    while (http && ragd_now_s() < until && ragd_http_active(http) > 0) usleep(5000);
    stop_watch_http(&sw, NULL);
    ragd_http_stop(http); /* no HTTP thread can reach the scheduler after this */
    http = NULL;
    ragd_model_digests_free(digests); /* nor the digests */
    digests = NULL;
    ragd_nvml_free(nvml); /* the watcher neither */
    nvml = NULL;
    ragd_sched_free(sched);
    sched = NULL;
    RAGD_INFO("stopped");
    rc = 0;
    goto out;
fail:
    rc = 1;
fail_rc: /* rc set: 2 for a usage error */
    if (json_logs) RAGD_ERROR("ragd serve: %s", ragd_err_msg(&err)); /* one JSON line */
    else fprintf(stderr, "ragd serve: %s\n", ragd_err_msg(&err));
out:
    stop_watch_http(&sw, NULL);
    stop_watch_end(&sw);
    if (http) ragd_http_quiesce(http);
    ragd_http_stop(http);
    ragd_nvml_free(nvml);
    ragd_sched_free(sched);
    ragd_model_digests_free(digests);
    ragd_buf_free(&versions);
    for (int i = 0; i < n_models; i++) {
        free(sms[i].not_ready_reason);
        ragd_chat_template_free(sms[i].chat_template);
        ragd_model_free(loaded[i]);
    }
    ragd_metrics_free(metrics);
    ragd_err_free(&err);
    free(key);
    for (int r = 0; r < RAGD_ROLE_COUNT; r++) {
        for (int i = 0; i < n_names[r]; i++) free(names[r][i]);
        free(names[r]);
        free(sm_names[r]);
    }
    ragd_serve_opts_free(&o);
    return rc;
}
