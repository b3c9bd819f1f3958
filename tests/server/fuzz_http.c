/* fuzz_http.c — libFuzzer target for the HTTP layer: raw bytes as they would arrive on a new connection →
 * the door's head parser (http_head_parse) → the admission checks of every request (http_admit: framing,
 * API key, route, body cap, Content-Type, memory reservation) → the endpoint's own validation, JSON
 * pre-scan and parse, tokenization, up to the scheduler hand-off (there is none: no engine runs; model
 * endpoints answer 503 model_loading once their input is valid).
 *
 * The first byte picks options (API key on/off, a small request-memory budget) and is not part of the
 * request. Checks: every answer is 200 or a known error status with an OpenAI error object (the door's
 * raw replies included: status line, headers, JSON body); replies are valid JSON (but /metrics); every
 * byte reserved from the request-memory budget is released when the request is freed. No crash, no leak
 * (ASan/UBSan/LSan via scripts/fuzz.sh). */
#include <stdio.h>
#include <stdlib.h>

#include "http/http_internal.h"
#include "tasks/tasks.h"

#define N_MODELS 3
static ragd_served_model sms[N_MODELS];
static ragd_served_model *smp[N_MODELS];
static ragd_serve_opts opts;
static ragd_metrics *metrics;

static void load(int i, const char *dir, ragd_role role) {
    ragd_err err = {0};
    ragd_model *m = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", RAGD_FIXTURES, dir);
    if (ragd_model_load(path, &m, &err)) RAGD_DIE("fuzz_http: %s: %s", path, ragd_err_msg(&err));
    sms[i].model = m;
    sms[i].name = m->name;
    sms[i].roles[role] = true;
    sms[i].max_len[role] = 256;
    sms[i].batch_seqs = 16;
    if (role == RAGD_ROLE_RERANK && ragd_rerank_token_ids(m, &sms[i].yes_id, &sms[i].no_id, &err))
        RAGD_DIE("fuzz_http: %s: %s", path, ragd_err_msg(&err));
    smp[i] = &sms[i];
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    ragd_log_set_level(RAGD_LOG_ERROR);
    char *a0[] = {"serve"};
    bool help;
    ragd_err err = {0};
    if (ragd_serve_opts_parse(1, a0, &opts, &help, &err)) RAGD_DIE("options: %s", ragd_err_msg(&err));
    opts.max_queue_tokens = 4096; /* small caps, so the fuzzer reaches the limits */
    opts.max_body_bytes = 1 << 16;
    opts.cors_origins = strdup("https://app.example, http://localhost:3000"); /* CORS on: preflights and echoes fuzzed too */
    load(0, "qwen3-embed-tiny", RAGD_ROLE_EMBED);
    load(1, "qwen3-rerank-tiny", RAGD_ROLE_RERANK);
    load(2, "qwen3-tiny", RAGD_ROLE_CHAT);
    metrics = ragd_metrics_create();
    return 0;
}

/* ---- headers of the parsed head, looked up as libmicrohttpd would (first match, value trimmed) */
typedef struct hdrs {
    const char *head;
    size_t len;
    char *vals[8];
    int n;
} hdrs;

static const char *hdr_lookup(void *ctx, const char *name) {
    hdrs *h = ctx;
    size_t nl = strlen(name);
    const char *p = memchr(h->head, '\n', h->len), *end = h->head + h->len;
    while (p && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) break;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
            const char *v = p + nl + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            if (h->n == 8) return NULL;
            char *s = ragd_xmalloc((size_t)(ve - v) + 1);
            memcpy(s, v, (size_t)(ve - v));
            s[ve - v] = 0;
            return h->vals[h->n++] = s;
        }
        p = eol;
    }
    return NULL;
}

static bool status_known(int st) {
    static const int ok[] = {200, 204, 400, 401, 404, 405, 408, 413, 414, 415, 417, 429, 431, 500, 503, 504, 505};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (ok[i] == st) return true;
    return false;
}

static void check_error_json(const char *body, size_t len, int status, bool health, bool kserve) {
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!j) RAGD_DIE("reply %d is not JSON: %.*s", status, (int)(len < 200 ? len : 200), body);
    if (status >= 400 && kserve) { /* KServe v2: {"ready"|"live": false} for health, {"error": string} from the
                                     * handlers, or an OpenAI error object from admission (auth, size, method) */
        const json_t *e = json_object_get(j, "error");
        if (!json_is_string(e) && !json_is_object(e) && !json_is_false(json_object_get(j, "ready")) &&
            !json_is_false(json_object_get(j, "live")))
            RAGD_DIE("reply %d is not a KServe v2 error: %.*s", status, (int)(len < 200 ? len : 200), body);
    } else if (status >= 400 && !health) { /* /health and /health/ready explain a 503 in their own shape */
        json_t *e = json_object_get(j, "error");
        if (!json_is_object(e) || json_object_size(e) != 4 || !json_is_string(json_object_get(e, "message")) ||
            !json_is_string(json_object_get(e, "type")) || !json_object_get(e, "param") || !json_object_get(e, "code"))
            RAGD_DIE("reply %d is not an OpenAI error: %.*s", status, (int)(len < 200 ? len : 200), body);
    }
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t flags = data[0];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    ragd_http h = {0};
    h.cfg.opts = &opts;
    h.cfg.api_key = flags & 1 ? "fuzz-key" : NULL;
    h.cfg.metrics = metrics;
    h.cfg.models = smp;
    h.cfg.n_models = N_MODELS;
    h.cfg.device_desc = "cpu (fuzz)";
    h.cfg.device_choice = "fuzz";
    h.max_body = (size_t)opts.max_body_bytes;
    h.mem_limit = flags & 2 ? 1 << 20 : 1 << 28;
    for (int i = 0; i < N_MODELS; i++)
        for (int k = 0; k < RAGD_ROLE_COUNT; k++)
            if (sms[i].roles[k]) h.role[k] = &sms[i];

    http_head_limits lim = {.max_head = 4096, .max_target = 1024, .max_fields = 64};
    http_head hd;
    http_head_err e;
    http_head_result res = http_head_parse(buf, len, &lim, &hd, &e);
    if (res == HTTP_HEAD_MORE) return 0;
    if (res == HTTP_HEAD_BAD) { /* the door's own reply */
        if (!status_known(e.status) || e.status < 400) RAGD_DIE("head error status %d", e.status);
        ragd_buf b = {0};
        http_raw_error(&b, e.status, e.code, e.msg, "fuzz", 0, "https://app.example");
        const char *body = strstr(b.data, "\r\n\r\n");
        if (!body) RAGD_DIE("raw reply without a head end");
        check_error_json(body + 4, b.len - (size_t)(body + 4 - b.data), e.status, false, false);
        ragd_buf_free(&b);
        return 0;
    }
    /* a valid head: what libmicrohttpd would hand to the access handler */
    char method[40], url[1100];
    snprintf(method, sizeof method, "%.*s", (int)hd.method_len, hd.method);
    size_t plen = 0;
    while (plen < hd.target_len && hd.target[plen] != '?') plen++;
    snprintf(url, sizeof url, "%.*s", (int)plen, hd.target);
    hdrs hs = {.head = buf, .len = hd.len};
    http_req *r = http_req_detached(&h);
    r->hdr_fn = hdr_lookup;
    r->hdr_ctx = &hs;
    snprintf(r->id, sizeof r->id, "fuzz");
    int route = http_admit(r, url, method, hd.content_length, hd.has_cl);
    if (route >= 0) {
        size_t n = len - hd.len;
        if (hd.has_cl && n > hd.content_length) n = (size_t)hd.content_length;
        bool refused = false;
        if (n > h.max_body) {
            refused = true;
            http_error(r, 413, NULL, "body_too_large", "fuzz: body too large");
        } else if (!hd.has_cl && !http_mem_reserve(r, n, "its body")) refused = true;
        else {
            if (!hd.has_cl) r->mem_body = n;
            ragd_buf_append(&r->body, buf + hd.len, n);
        }
        if (!refused && http_dispatch(r, route) != HTTP_REPLY) RAGD_DIE("a request went to the scheduler without one");
    }
    if (!status_known(r->status)) RAGD_DIE("status %d for %s %s", r->status, method, url);
    bool health = route >= 0 && (!strcmp(url, "/health") || !strcmp(url, "/health/ready"));
    bool kserve = route >= 0 && (!strncmp(url, "/v2/health/", 11) || !strncmp(url, "/v2/models/", 11));
    if (r->status == 204 && (strcmp(method, "OPTIONS") || r->out.len)) RAGD_DIE("204 for %s %s, or with a body", method, url);
    if ((strcmp(url, "/metrics") || r->status != 200) && r->status != 204)
        check_error_json(r->out.data ? r->out.data : "", r->out.len, r->status, health, kserve);
    http_req_free(r);
    for (int i = 0; i < hs.n; i++) free(hs.vals[i]);
    if (atomic_load(&h.mem_used) != 0) RAGD_DIE("request memory not released: %zu bytes", atomic_load(&h.mem_used));
    return 0;
}
