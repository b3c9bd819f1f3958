/* options.c — the option table of `ragd serve`.
 *
 * One row per option: flag, type, default, bounds, environment variable, help and the field it sets.
 * The same table drives argv parsing, the environment, --help, the startup print of effective
 * values and the "options" object of /diagnostics, so none of them can drift from the others.
 * Precedence: default < config file (--config, options_file.c) < environment < command line. Every
 * value is validated against the row's bounds/choices; an error names the flag, the variable or the
 * file:line, and the allowed range.
 */
#include "obs/obs_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define OFF(f) offsetof(ragd_serve_opts, f)
#define I64_MAX_ 9223372036854775807LL

static const ragd_opt_def g_table[] = {
    {"config", RAGD_OPT_STR, NULL, 0, 0, "RAGD_CONFIG", "read options from this file first (YAML .yaml/.yml: 'max-seqs: 64'; TOML .toml: 'max-seqs = 64'; the environment and the command line override it)", OFF(config), NULL, false},
    {"embed", RAGD_OPT_STR, NULL, 0, 0, "RAGD_EMBED", "embedding model: HF directory or .gguf file", OFF(embed), NULL, false},
    {"rerank", RAGD_OPT_STR, NULL, 0, 0, "RAGD_RERANK", "reranker model: HF directory or .gguf file", OFF(rerank), NULL, false},
    {"chat", RAGD_OPT_STR, NULL, 0, 0, "RAGD_CHAT", "chat (generation) model: HF directory or .gguf file", OFF(chat), NULL, false},
    {"device", RAGD_OPT_STR, "auto", 0, 0, "RAGD_DEVICE", "cpu, cuda (never falls back) or auto", OFF(device), "cpu|cuda|auto", false},
    {"host", RAGD_OPT_STR, "127.0.0.1", 0, 0, "RAGD_HOST", "address to listen on", OFF(host), NULL, false},
    {"port", RAGD_OPT_INT, "8080", 0, 65535, "RAGD_PORT", "TCP port (0: any free port, printed at start)", OFF(port), NULL, false},
    {"api-key", RAGD_OPT_STR, NULL, 0, 0, "RAGD_API_KEY", "require 'Authorization: Bearer KEY' (all but /health*)", OFF(api_key), NULL, true},
    {"cors-origins", RAGD_OPT_STR, NULL, 0, 0, "RAGD_CORS_ORIGINS", "let browser pages of these origins call the API (CORS): '*' or comma-separated origins such as https://app.example.com; off by default", OFF(cors_origins), NULL, false},
    {"tls-cert", RAGD_OPT_STR, NULL, 0, 0, "RAGD_TLS_CERT", "serve HTTPS on the port (not HTTP) with this PEM certificate (chain) file; needs --tls-key; off by default", OFF(tls_cert), NULL, false},
    {"tls-key", RAGD_OPT_STR, NULL, 0, 0, "RAGD_TLS_KEY", "PEM private key (unencrypted) of --tls-cert", OFF(tls_key), NULL, false},
    {"api-key-file", RAGD_OPT_STR, NULL, 0, 0, "RAGD_API_KEY_FILE", "read the API key from this file (first line)", OFF(api_key_file), NULL, false},
    {"max-batch-tokens", RAGD_OPT_INT, "8192", 16, 1 << 24, "RAGD_MAX_BATCH_TOKENS", "tokens in one forward pass (all sequences)", OFF(max_batch_tokens), NULL, false},
    {"max-seqs", RAGD_OPT_INT, "8", 1, 4096, "RAGD_MAX_SEQS", "chat sequences generated at once (a model that also embeds/reranks uses it as its batch cap too)", OFF(max_seqs), NULL, false},
    {"max-step-tokens", RAGD_OPT_INT, "4096", 16, 1 << 24, "RAGD_MAX_STEP_TOKENS", "tokens in one generation step: a token of every running chat plus prefill chunks (bounds the inter-token latency while long prompts are prefilled; capped by max-batch-tokens)", OFF(max_step_tokens), NULL, false},
    {"kv-block-size", RAGD_OPT_INT, "16", 1, 256, "RAGD_KV_BLOCK_SIZE", "positions per KV cache block (a power of two; the prefix cache reuses whole blocks)", OFF(kv_block_size), NULL, false},
    {"kv-cache-tokens", RAGD_OPT_INT, "0", 0, 1LL << 40, "RAGD_KV_CACHE_TOKENS", "KV cache size in tokens (0: on a GPU all the --gpu-memory budget leaves after weights and workspaces; on the CPU max-seqs × the chat context)", OFF(kv_cache_tokens), NULL, false},
    {"no-prefix-cache", RAGD_OPT_BOOL, "false", 0, 0, "RAGD_NO_PREFIX_CACHE", "do not reuse the KV cache of identical prompt prefixes across requests", OFF(no_prefix_cache), NULL, false},
    {"max-batch-seqs", RAGD_OPT_INT, "256", 1, 65536, "RAGD_MAX_BATCH_SEQS", "sequences in one embed/rerank forward pass", OFF(max_batch_seqs), NULL, false},
    {"max-model-len", RAGD_OPT_INT, "0", 0, 1 << 24, "RAGD_MAX_MODEL_LEN", "longest sequence in tokens (0: the model's own; chat capped at 2048 on the CPU and 4096 on a GPU to keep the KV cache small; embed/rerank capped by max-batch-tokens)", OFF(max_model_len), NULL, false},
    {"max-queue", RAGD_OPT_INT, "256", 1, 1 << 20, "RAGD_MAX_QUEUE", "waiting requests per device before 429", OFF(max_queue), NULL, false},
    {"max-queue-tokens", RAGD_OPT_INT, "1048576", 1, I64_MAX_, "RAGD_MAX_QUEUE_TOKENS", "waiting tokens per device before 429", OFF(max_queue_tokens), NULL, false},
    {"timeout-ms", RAGD_OPT_INT, "60000", 1, 86400000, "RAGD_TIMEOUT_MS", "default request deadline (header X-Request-Timeout-Ms overrides)", OFF(timeout_ms), NULL, false},
    {"max-body-bytes", RAGD_OPT_INT, "16777216", 1024, 1LL << 32, "RAGD_MAX_BODY_BYTES", "largest request body (413 beyond)", OFF(max_body_bytes), NULL, false},
    {"gpu-memory", RAGD_OPT_STR, "0.9", 0, 0, "RAGD_GPU_MEMORY", "GPU memory for all models: bytes (8G, 512M) or fraction of the card", OFF(gpu_memory), NULL, false},
    {"threads", RAGD_OPT_INT, "0", 0, 1024, "RAGD_THREADS", "CPU engine threads (0: all cores)", OFF(threads), NULL, false},
    {"http-threads", RAGD_OPT_INT, "4", 1, 256, "RAGD_HTTP_THREADS", "HTTP worker threads (parse, validate, tokenize)", OFF(http_threads), NULL, false},
    {"batch-delay-us", RAGD_OPT_INT, "2000", 0, 1000000, "RAGD_BATCH_DELAY_US", "longest wait to fill an embed/rerank batch", OFF(batch_delay_us), NULL, false},
    {"max-tokens-default", RAGD_OPT_INT, "512", 1, 1 << 20, "RAGD_MAX_TOKENS_DEFAULT", "chat max_tokens when a request names none", OFF(max_tokens_default), NULL, false},
    {"shutdown-ms", RAGD_OPT_INT, "10000", 0, 3600000, "RAGD_SHUTDOWN_MS", "on SIGTERM/SIGINT, how long in-flight requests may finish", OFF(shutdown_ms), NULL, false},
    {"max-connections", RAGD_OPT_INT, "1024", 1, 65536, "RAGD_MAX_CONNECTIONS", "open HTTP connections serving requests (the last 1/16 only for /health* and authenticated clients); as many more may be sending their request head", OFF(max_connections), NULL, false},
    {"max-connections-per-client", RAGD_OPT_INT, "256", 0, 65536, "RAGD_MAX_CONNECTIONS_PER_CLIENT", "open connections from one client address (0: no cap; raise it behind a proxy)", OFF(max_connections_per_client), NULL, false},
    {"header-timeout-ms", RAGD_OPT_INT, "10000", 100, 3600000, "RAGD_HEADER_TIMEOUT_MS", "a new connection must send its request head within this, a keep-alive one its next head after the previous reply (else 408 / closed)", OFF(header_timeout_ms), NULL, false},
    {"body-timeout-ms", RAGD_OPT_INT, "30000", 100, 3600000, "RAGD_BODY_TIMEOUT_MS", "a request body must arrive within this after its head (else 408)", OFF(body_timeout_ms), NULL, false},
    {"max-header-bytes", RAGD_OPT_INT, "16384", 1024, 1048576, "RAGD_MAX_HEADER_BYTES", "request line + header fields (431 beyond; 414 for a longer target)", OFF(max_header_bytes), NULL, false},
    {"max-request-memory", RAGD_OPT_INT, "1073741824", 16777216, 1LL << 40, "RAGD_MAX_REQUEST_MEMORY", "bytes all requests hold at once: bodies, parsed JSON, token ids, outputs, replies (503 beyond; 413 for one that alone needs more)", OFF(max_request_memory), NULL, false},
    {"log-format", RAGD_OPT_STR, "text", 0, 0, "RAGD_LOG_FORMAT", "text, or json: one object per line {\"ts\", \"level\", \"msg\"}", OFF(log_format), "text|json", false},
    {"log-level", RAGD_OPT_STR, "info", 0, 0, "RAGD_LOG_LEVEL", "debug, info, warn or error", OFF(log_level), "debug|info|warn|error", false},
    {"chat-template", RAGD_OPT_STR, NULL, 0, 0, "RAGD_CHAT_TEMPLATE", "Jinja chat template file for the chat model (default: the model's own)", OFF(chat_template), NULL, false},
    {"served-name", RAGD_OPT_STR, NULL, 0, 0, "RAGD_SERVED_NAME", "name of the chat model in /v1/models (default: file name); NAME,ALIAS,…: requests may use any of them, responses and /v1/models give the first", OFF(served_name), NULL, false},
    {"embed-served-name", RAGD_OPT_STR, NULL, 0, 0, "RAGD_EMBED_SERVED_NAME", "the same for the embedding model: NAME[,ALIAS,…]", OFF(embed_served_name), NULL, false},
    {"rerank-served-name", RAGD_OPT_STR, NULL, 0, 0, "RAGD_RERANK_SERVED_NAME", "the same for the reranker: NAME[,ALIAS,…]", OFF(rerank_served_name), NULL, false},
    {"demo", RAGD_OPT_BOOL, "false", 0, 0, "RAGD_DEMO", "label the models demo quality in /v1/models", OFF(demo), NULL, false},
    {"nvml-lib", RAGD_OPT_STR, "libnvidia-ml.so.1", 0, 0, "RAGD_NVML_LIB", "NVML library loaded at start for GPU telemetry (/metrics ragd_gpu_*, /diagnostics gpus) and health (a GPU fault marks the models on it not ready); 'off': none", OFF(nvml_lib), NULL, false},
    {NULL, 0, NULL, 0, 0, NULL, NULL, 0, NULL, false},
};

const ragd_opt_def *ragd_serve_opt_table(void) { return g_table; }

static bool choice_ok(const char *choices, const char *v) {
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, v, n)) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

static ragd_status set_value(ragd_serve_opts *o, const ragd_opt_def *d, const char *v, const char *src,
                             ragd_err *err);

const ragd_opt_def *ragd_opt_find(const char *name, size_t len) {
    for (const ragd_opt_def *d = g_table; d->name; d++) {
        if (strlen(d->name) != len) continue;
        size_t i = 0;
        while (i < len && (name[i] == d->name[i] || (name[i] == '_' && d->name[i] == '-'))) i++;
        if (i == len) return d;
    }
    return NULL;
}

ragd_status ragd_opt_set(ragd_serve_opts *o, const ragd_opt_def *d, const char *v, const char *src, ragd_err *err) {
    return set_value(o, d, v, src, err);
}

/* Sets one option from text; `src` names where the value came from (for the message). */
static ragd_status set_value(ragd_serve_opts *o, const ragd_opt_def *d, const char *v, const char *src,
                             ragd_err *err) {
    char *field = (char *)o + d->offset;
    switch (d->type) {
    case RAGD_OPT_STR:
        if (d->choices && !choice_ok(d->choices, v))
            return ragd_err_set(err, RAGD_EINVAL, "%s: '%s' is not one of %s", src, v, d->choices);
        free(*(char **)field);
        *(char **)field = ragd_xstrdup(v);
        return RAGD_OK;
    case RAGD_OPT_INT: {
        errno = 0;
        char *end = NULL;
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno)
            return ragd_err_set(err, RAGD_EINVAL, "%s: '%s' is not an integer", src, v);
        if (x < d->min || x > d->max)
            return ragd_err_set(err, RAGD_EINVAL, "%s: %lld is outside [%lld, %lld]", src, x, (long long)d->min,
                                (long long)d->max);
        *(int64_t *)field = x;
        return RAGD_OK;
    }
    case RAGD_OPT_BOOL:
        if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on")) *(bool *)field = true;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off")) *(bool *)field = false;
        else return ragd_err_set(err, RAGD_EINVAL, "%s: '%s' is not a boolean (true/false)", src, v);
        return RAGD_OK;
    }
    RAGD_DIE("bad option type %d", (int)d->type);
}

void ragd_serve_opts_free(ragd_serve_opts *o) {
    if (!o) return;
    for (const ragd_opt_def *d = g_table; d->name; d++)
        if (d->type == RAGD_OPT_STR) {
            char **f = (char **)((char *)o + d->offset);
            free(*f);
            *f = NULL;
        }
}

ragd_status ragd_serve_opts_parse(int argc, char **argv, ragd_serve_opts *o, bool *help, ragd_err *err) {
    memset(o, 0, sizeof *o);
    *help = false;
    char src[160];
    for (const ragd_opt_def *d = g_table; d->name; d++)
        if (d->def) {
            snprintf(src, sizeof src, "default of --%s", d->name);
            ragd_status st = set_value(o, d, d->def, src, err);
            RAGD_ASSERT(st == RAGD_OK); /* a bad default is a bug in the table */
        }
    /* the config file first: --config on the command line, else RAGD_CONFIG */
    const char *cfg = getenv("RAGD_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) cfg = argv[++i];
        else if (!strncmp(argv[i], "--config=", 9)) cfg = argv[i] + 9;
    }
    if (cfg && *cfg && ragd_opt_apply_file(cfg, o, err)) goto fail;
    for (const ragd_opt_def *d = g_table; d->name; d++) {
        const char *v = getenv(d->env);
        if (!v) continue;
        snprintf(src, sizeof src, "environment variable %s", d->env);
        if (set_value(o, d, v, src, err)) goto fail;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = true;
            continue;
        }
        if (strncmp(a, "--", 2)) {
            ragd_err_set(err, RAGD_EINVAL, "unexpected argument '%s' (options start with --)", a);
            goto fail;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const ragd_opt_def *d = g_table;
        for (; d->name; d++)
            if (strlen(d->name) == nlen && !strncmp(d->name, name, nlen)) break;
        if (!d->name) {
            ragd_err_set(err, RAGD_EINVAL, "unknown option '--%.*s' (see ragd serve --help)", (int)nlen, name);
            goto fail;
        }
        const char *v;
        if (eq) v = eq + 1;
        else if (d->type == RAGD_OPT_BOOL) v = "true";
        else if (i + 1 < argc) v = argv[++i];
        else {
            ragd_err_set(err, RAGD_EINVAL, "option --%s needs a value", d->name);
            goto fail;
        }
        snprintf(src, sizeof src, "--%s", d->name);
        if (set_value(o, d, v, src, err)) goto fail;
    }
    return RAGD_OK;
fail:
    ragd_serve_opts_free(o);
    return err ? err->code : RAGD_EINVAL;
}

static void value_text(const ragd_serve_opts *o, const ragd_opt_def *d, ragd_buf *out, bool json) {
    const char *field = (const char *)o + d->offset;
    switch (d->type) {
    case RAGD_OPT_STR: {
        const char *s = *(char *const *)field;
        if (!s) ragd_buf_puts(out, json ? "null" : "-");
        else if (d->secret) ragd_buf_puts(out, json ? "\"***\"" : "***");
        else if (json) ragd_buf_json_str(out, s, strlen(s));
        else ragd_buf_puts(out, s);
        break;
    }
    case RAGD_OPT_INT: ragd_buf_json_i64(out, *(const int64_t *)field); break;
    case RAGD_OPT_BOOL: ragd_buf_puts(out, *(const bool *)field ? "true" : "false"); break;
    }
}

void ragd_serve_opts_help(ragd_buf *out) {
    ragd_buf_puts(out, "usage: ragd serve [options]   (each option may also be set by its environment variable)\n\n");
    for (const ragd_opt_def *d = g_table; d->name; d++) {
        char flag[96];
        snprintf(flag, sizeof flag, "--%s%s%s", d->name, d->type == RAGD_OPT_BOOL ? "" : " ",
                 d->type == RAGD_OPT_INT ? "N" : d->type == RAGD_OPT_BOOL ? "" : d->choices ? d->choices : "VALUE");
        ragd_buf_printf(out, "  %-24s %s\n  %-24s   env %s", flag, d->help, "", d->env);
        if (d->def) ragd_buf_printf(out, ", default %s", d->def);
        if (d->type == RAGD_OPT_INT) ragd_buf_printf(out, ", range [%lld, %lld]", (long long)d->min, (long long)d->max);
        if (d->choices) ragd_buf_printf(out, ", one of %s", d->choices);
        ragd_buf_putc(out, '\n');
    }
}

void ragd_serve_opts_print(const ragd_serve_opts *o, ragd_buf *out) {
    ragd_buf_puts(out, "effective options:\n");
    for (const ragd_opt_def *d = g_table; d->name; d++) {
        ragd_buf_printf(out, "  %-20s ", d->name);
        value_text(o, d, out, false);
        ragd_buf_printf(out, "   (%s)\n", d->env);
    }
}

void ragd_serve_opts_json(const ragd_serve_opts *o, ragd_buf *out) {
    ragd_buf_putc(out, '{');
    for (const ragd_opt_def *d = g_table; d->name; d++) {
        if (d != g_table) ragd_buf_putc(out, ',');
        ragd_buf_json_str(out, d->name, strlen(d->name));
        ragd_buf_putc(out, ':');
        value_text(o, d, out, true);
    }
    ragd_buf_putc(out, '}');
}

ragd_status ragd_parse_mem(const char *s, size_t total, size_t *out, ragd_err *err) {
    errno = 0;
    char *end = NULL;
    double x = strtod(s, &end);
    if (end == s || errno || !(x > 0))
        return ragd_err_set(err, RAGD_EINVAL, "memory size '%s': expected bytes (e.g. 8G, 512M) or a fraction in (0, 1]", s);
    double mult = 1;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': mult = 1024.0; break;
        case 'm': case 'M': mult = 1024.0 * 1024; break;
        case 'g': case 'G': mult = 1024.0 * 1024 * 1024; break;
        case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; break;
        default: return ragd_err_set(err, RAGD_EINVAL, "memory size '%s': unknown suffix '%s'", s, end);
        }
        if (end[1] && !((end[1] == 'i' || end[1] == 'B') && (!end[2] || (end[1] == 'i' && end[2] == 'B' && !end[3]))))
            return ragd_err_set(err, RAGD_EINVAL, "memory size '%s': unknown suffix '%s'", s, end);
    } else if (x <= 1.0) {
        if (!total) return ragd_err_set(err, RAGD_EINVAL, "memory size '%s': a fraction needs a known device size", s);
        *out = (size_t)(x * (double)total);
        return RAGD_OK;
    }
    double b = x * mult;
    if (b >= 1.8e19) return ragd_err_set(err, RAGD_EINVAL, "memory size '%s' is too large", s);
    *out = (size_t)b;
    return RAGD_OK;
}
