/* cmd_serve.c — `ragd serve`: options → device choice → models → scheduler → HTTP → wait for
 * SIGTERM/SIGINT → graceful shutdown (stop accepting, let in-flight requests finish within
 * --shutdown-ms, stop the scheduler, close connections) → exit 0.
 *
 * Signals are blocked in every thread (the mask is set before any thread starts) and taken by
 * sigwait on the main thread, so no handler ever runs inside libmicrohttpd or an engine.
 * Exit codes: 0 after a clean shutdown, 1 when startup fails (model, memory plan, port), 2 for bad
 * usage.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/cli.h"
#include "http/http.h"
#include "obs/obs.h"
#include "sched/sched.h"
#ifdef RAGD_HAVE_CUDA
#include "engine/cuda/cuda_api.h"
#endif

/* The device the models run on: --device cuda never falls back; auto says what and why. */
static ragd_status choose_device(const ragd_serve_opts *o, ragd_device *dev, size_t *mem_total, char *desc,
                                 size_t desc_len, char *why, size_t why_len, ragd_err *err) {
    *mem_total = 0;
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
                *mem_total = total;
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

static char *read_key_file(const char *path, ragd_err *err) {
    char *data = NULL;
    size_t len = 0;
    if (ragd_file_read(path, &data, &len, err)) return NULL;
    size_t n = strcspn(data, "\r\n");
    data[n] = 0;
    if (!n) {
        free(data);
        ragd_err_set(err, RAGD_EINVAL, "--api-key-file %s: the first line is empty", path);
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
    if (!o.embed && !o.rerank && !o.chat) {
        fprintf(stderr, "ragd serve: no model: give at least one of --embed, --rerank, --chat (see ragd serve --help)\n");
        ragd_serve_opts_free(&o);
        return 2;
    }
    int rc = 1;
    char *key = NULL;
    ragd_served_model sms[RAGD_ROLE_COUNT];
    ragd_served_model *smp[RAGD_ROLE_COUNT];
    ragd_model *loaded[RAGD_ROLE_COUNT] = {0};
    int n_models = 0;
    ragd_sched *sched = NULL;
    ragd_http *http = NULL;
    ragd_metrics *metrics = ragd_metrics_create();
    memset(sms, 0, sizeof sms);

    /* signals: blocked everywhere, taken by sigwait below */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (o.api_key_file) {
        if (o.api_key) {
            fprintf(stderr, "ragd serve: give --api-key or --api-key-file, not both\n");
            rc = 2;
            goto out;
        }
        if (!(key = read_key_file(o.api_key_file, &err))) goto fail;
    } else if (o.api_key) key = ragd_xstrdup(o.api_key);

    ragd_device dev = RAGD_DEVICE_CPU;
    size_t mem_total = 0;
    char desc[256], why[384];
    if (choose_device(&o, &dev, &mem_total, desc, sizeof desc, why, sizeof why, &err)) goto fail;
    RAGD_INFO("device: %s (%s)", desc, why);
    size_t mem_limit = 0;
    if (dev == RAGD_DEVICE_CUDA && ragd_parse_mem(o.gpu_memory, mem_total, &mem_limit, &err)) {
        ragd_err_prefix(&err, "--gpu-memory");
        goto fail;
    }

    {
        ragd_buf b = {0};
        ragd_serve_opts_print(&o, &b);
        fputs(b.data, stderr);
        ragd_buf_free(&b);
    }

    /* models: one ragd_model per distinct path, serving every role it was given */
    const char *paths[RAGD_ROLE_COUNT] = {o.embed, o.rerank, o.chat};
    for (int r = 0; r < RAGD_ROLE_COUNT; r++) {
        if (!paths[r]) continue;
        ragd_served_model *sm = NULL;
        for (int i = 0; i < n_models && !sm; i++)
            for (int q = 0; q < r; q++)
                if (paths[q] && sms[i].roles[q] && !strcmp(paths[q], paths[r])) sm = &sms[i];
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
        sm->max_len[r] = role_len(&o, dev, sm->model, (ragd_role)r);
        if (r == RAGD_ROLE_CHAT && o.served_name) sm->name = o.served_name;
        if (r == RAGD_ROLE_RERANK && ragd_rerank_token_ids(sm->model, &sm->yes_id, &sm->no_id, &err)) {
            ragd_err_prefix(&err, "--rerank %s", paths[r]);
            goto fail;
        }
    }
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
    for (int i = 0; i < n_models; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(sms[i].name, sms[j].name)) {
                ragd_err_set(&err, RAGD_EINVAL, "two different models are both named '%s' (use --served-name for the chat model)",
                             sms[i].name);
                goto fail;
            }

    /* listen first: while the engines are created and warmed up, /health answers 200 and
     * /health/ready 503 (an orchestrator sees a live process that is not ready yet) */
    ragd_http_cfg hc = {.opts = &o, .api_key = key, .sched = NULL, .metrics = metrics, .models = smp,
                        .n_models = n_models, .device_desc = desc, .device_choice = why};
    if (ragd_http_start(&hc, &http, &err)) goto fail;
    RAGD_INFO("listening on http://%s:%d (auth %s); warming up", o.host, ragd_http_port(http), key ? "on" : "off");
    fprintf(stdout, "ragd serve: listening on http://%s:%d\n", o.host, ragd_http_port(http));
    fflush(stdout);

    ragd_sched_opts so = {.device = dev, .cuda_device = 0, .max_batch_tokens = (int)o.max_batch_tokens,
                          .max_seqs = (int)o.max_seqs, .max_batch_seqs = (int)o.max_batch_seqs, .max_queue = (int)o.max_queue,
                          .max_queue_tokens = o.max_queue_tokens, .batch_delay_us = (int)o.batch_delay_us,
                          .n_threads = (int)o.threads, .mem_limit = mem_limit, .metrics = metrics};
    double t0 = ragd_now_s();
    if (ragd_sched_create(&so, smp, n_models, &sched, &err)) goto fail;
    ragd_http_set_sched(http, sched);
    RAGD_INFO("ready: engines created and warmed up in %.0f ms", (ragd_now_s() - t0) * 1e3);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {}
    RAGD_INFO("%s: stopping: no new connections; waiting up to %lld ms for %d requests in flight",
              sig == SIGTERM ? "SIGTERM" : "SIGINT", (long long)o.shutdown_ms, ragd_sched_in_flight(sched));
    ragd_http_quiesce(http);
    ragd_sched_drain(sched);
    double until = ragd_now_s() + (double)o.shutdown_ms / 1e3;
    while (ragd_now_s() < until && (ragd_sched_in_flight(sched) > 0 || ragd_http_active(http) > 0)) usleep(10000);
    int left = ragd_sched_in_flight(sched);
    if (left) RAGD_WARN("shutdown: %d requests still running after %lld ms; cancelling them", left, (long long)o.shutdown_ms);
    ragd_sched_stop(sched); /* fails what is left: their clients get 503; its memory stays valid */
    until = ragd_now_s() + 2.0;
    while (ragd_now_s() < until && ragd_http_active(http) > 0) usleep(5000);
    ragd_http_stop(http); /* no HTTP thread can reach the scheduler after this */
    http = NULL;
    ragd_sched_free(sched);
    sched = NULL;
    RAGD_INFO("stopped");
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "ragd serve: %s\n", ragd_err_msg(&err));
    rc = 1;
out:
    if (http) ragd_http_quiesce(http);
    ragd_http_stop(http);
    ragd_sched_free(sched);
    for (int i = 0; i < n_models; i++) {
        free(sms[i].not_ready_reason);
        ragd_model_free(loaded[i]);
    }
    ragd_metrics_free(metrics);
    ragd_err_free(&err);
    free(key);
    ragd_serve_opts_free(&o);
    return rc;
}
