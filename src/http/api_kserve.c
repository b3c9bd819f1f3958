/* api_kserve.c — the read-only part of the KServe v2 / Triton HTTP protocol (issue 19), so Triton's
 * health checks and model-metadata calls (tritonclient, Kubernetes probes written for Triton) work unchanged:
 *
 *   GET /v2/health/live                      → 200 {"live": true} | 503
 *   GET /v2/health/ready                     → 200 {"ready": true} | 503 {"ready": false, "models": {...}}
 *   GET /v2/models/{name}[/versions/1]       → {"name", "versions": ["1"], "platform": "ragd", "tasks",
 *                                                "inputs": [{"name", "datatype", "shape"}], "outputs": [...]}
 *   GET /v2/models/{name}[/versions/1]/ready → 200 {"name", "ready": true} | 503
 *
 *   POST /v2/models/{name}[/versions/1]/infer → the embed model: BYTES `text` [n] → FP32 `embedding` [n, d];
 *                                               the rerank model: BYTES `query` [1] + `documents` [n] → FP32
 *                                               `scores` [n] (p(yes), input order); JSON tensors only
 *
 * Errors use KServe's shape {"error": "..."} for unknown models; an unknown model is 404 naming the known
 * ones. Malformed infer bodies answer ragd's error object (which names the field); a body in Triton's binary
 * tensor extension (header Inference-Header-Content-Length) is a 400 saying to send JSON tensors. */
#include "http/http_internal.h"

#include <stdio.h>
#include <string.h>

static void kserve_error(http_req *r, int status, const char *msg) {
    ragd_buf_reset(&r->out);
    ragd_buf_puts(&r->out, "{\"error\":");
    ragd_buf_json_str(&r->out, msg, strlen(msg));
    ragd_buf_putc(&r->out, '}');
    http_reply_json(r, status);
}

http_outcome api_v2_live(http_req *r) {
    ragd_sched *sched = atomic_load(&r->h->sched);
    bool ok = !sched || ragd_sched_alive(sched, 300.0); /* loading counts as alive, as /health */
    ragd_buf_puts(&r->out, ok ? "{\"live\":true}" : "{\"live\":false}");
    http_reply_json(r, ok ? 200 : 503);
    return HTTP_REPLY;
}

http_outcome api_v2_ready(http_req *r) {
    bool ready = !atomic_load(&r->h->quiesced) && atomic_load(&r->h->sched);
    for (int i = 0; i < r->h->cfg.n_models; i++) ready = ready && atomic_load(&r->h->cfg.models[i]->ready);
    ragd_buf_puts(&r->out, ready ? "{\"ready\":true}" : "{\"ready\":false}");
    http_reply_json(r, ready ? 200 : 503);
    return HTTP_REPLY;
}

static const ragd_served_model *find_model(http_req *r, const char *name, size_t len) {
    return http_find_model(r->h, name, len);
}

static bool ends_with(const char *s, size_t n, const char *suf, size_t *stem) {
    size_t k = strlen(suf);
    if (n < k || memcmp(s + n - k, suf, k)) return false;
    *stem = n - k;
    return true;
}

static void io_json(ragd_buf *b, const char *name, const char *type, const char *shape) {
    ragd_buf_printf(b, "{\"name\":\"%s\",\"datatype\":\"%s\",\"shape\":%s}", name, type, shape);
}

/* GET /v2/models/{rest}: rest = NAME, NAME/ready, NAME/versions/1, NAME/versions/1/ready (names may hold '/') */
http_outcome api_v2_model(http_req *r) {
    const char *p = r->path_arg ? r->path_arg : "";
    const size_t n = strlen(p);
    size_t stem = n;
    bool want_ready = false;
    const ragd_served_model *sm = find_model(r, p, n);
    if (!sm && ends_with(p, n, "/versions/1/ready", &stem)) want_ready = true, sm = find_model(r, p, stem);
    if (!sm && ends_with(p, n, "/versions/1", &stem)) sm = find_model(r, p, stem);
    if (!sm && ends_with(p, n, "/ready", &stem)) want_ready = true, sm = find_model(r, p, stem);
    if (!sm) {
        ragd_buf names = {0};
        http_model_names(r->h, &names);
        char msg[1024];
        snprintf(msg, sizeof msg, "no model at /v2/models/%.200s (models: %s; the only version is 1)", p, names.data);
        ragd_buf_free(&names);
        kserve_error(r, 404, msg);
        return HTTP_REPLY;
    }
    ragd_buf *b = &r->out;
    const bool ready = atomic_load(&sm->ready) && !atomic_load(&r->h->quiesced);
    if (want_ready) {
        ragd_buf_puts(b, "{\"name\":");
        ragd_buf_json_str(b, sm->name, strlen(sm->name));
        ragd_buf_printf(b, ",\"ready\":%s}", ready ? "true" : "false");
        http_reply_json(r, ready ? 200 : 503);
        return HTTP_REPLY;
    }
    ragd_buf_puts(b, "{\"name\":");
    ragd_buf_json_str(b, sm->name, strlen(sm->name));
    ragd_buf_puts(b, ",\"versions\":[\"1\"],\"platform\":\"ragd\",\"tasks\":[");
    for (int k = 0, first = 1; k < RAGD_ROLE_COUNT; k++)
        if (sm->roles[k]) ragd_buf_printf(b, "%s\"%s\"", first ? "" : ",", ragd_role_name((ragd_role)k)), first = 0;
    ragd_buf_puts(b, "],\"inputs\":[");
    bool first = true;
    if (sm->roles[RAGD_ROLE_EMBED]) io_json(b, "text", "BYTES", "[-1]"), first = false;
    if (sm->roles[RAGD_ROLE_RERANK]) {
        if (!first) ragd_buf_putc(b, ',');
        io_json(b, "query", "BYTES", "[1]");
        ragd_buf_putc(b, ',');
        io_json(b, "documents", "BYTES", "[-1]");
    }
    ragd_buf_puts(b, "],\"outputs\":[");
    first = true;
    if (sm->roles[RAGD_ROLE_EMBED]) {
        char shape[48];
        snprintf(shape, sizeof shape, "[-1,%d]", sm->model->cfg.n_embd);
        io_json(b, "embedding", "FP32", shape);
        first = false;
    }
    if (sm->roles[RAGD_ROLE_RERANK]) {
        if (!first) ragd_buf_putc(b, ',');
        io_json(b, "scores", "FP32", "[-1]");
    }
    ragd_buf_puts(b, "]}");
    http_reply_json(r, 200);
    return HTTP_REPLY;
}

/* The data array of the BYTES input tensor `name` of an infer request, or NULL (then *bad names what is
 * wrong with it when it is present but malformed). */
static const json_t *input_data(const json_t *inputs, const char *name, const char **bad) {
    for (size_t i = 0; i < json_array_size(inputs); i++) {
        const json_t *t = json_array_get(inputs, i);
        const char *n = json_string_value(json_object_get(t, "name"));
        if (!n || strcmp(n, name)) continue;
        const char *dt = json_string_value(json_object_get(t, "datatype"));
        const json_t *data = json_object_get(t, "data");
        if (!dt || strcmp(dt, "BYTES")) *bad = "must have datatype BYTES";
        else if (!json_is_array(data)) *bad = "must have a data array of strings";
        else return data;
        return NULL;
    }
    return NULL;
}

/* POST /v2/models/{name}[/versions/1]/infer: text → embedding for the embed model, query + documents →
 * scores for the rerank model (the JSON tensor form; the binary-data extension is not supported). */
http_outcome api_v2_infer(http_req *r) {
    const char *p = r->path_arg ? r->path_arg : "";
    const size_t n = strlen(p);
    size_t stem = 0;
    const ragd_served_model *sm = NULL;
    if (ends_with(p, n, "/versions/1/infer", &stem)) sm = find_model(r, p, stem);
    if (!sm && ends_with(p, n, "/infer", &stem)) sm = find_model(r, p, stem);
    if (!sm) {
        ragd_buf names = {0};
        http_model_names(r->h, &names);
        char msg[1024];
        snprintf(msg, sizeof msg, "no model for POST /v2/models/%.200s (POST /v2/models/{name}[/versions/1]/infer; models: %s)", p,
                 names.data);
        ragd_buf_free(&names);
        kserve_error(r, 404, msg);
        return HTTP_REPLY;
    }
    if (http_header(r, "Inference-Header-Content-Length")) { /* Triton's binary tensor extension: JSON head + raw bytes */
        http_error(r, 400, "Inference-Header-Content-Length", "unsupported_value",
                   "binary tensor data (the Inference-Header-Content-Length extension) is not supported: send the inputs "
                   "as JSON tensors (tritonclient: InferInput.set_data_from_numpy(..., binary_data=False)); outputs come "
                   "back as JSON");
        return HTTP_REPLY;
    }
    if (!jv_parse_body(r)) return HTTP_REPLY;
    const json_t *inputs = json_object_get(r->json, "inputs");
    if (!json_is_array(inputs) || !json_array_size(inputs))
        return http_error(r, 400, "inputs", "missing_field", "an infer request needs a non-empty 'inputs' list of tensors"),
               HTTP_REPLY;
    const char *bad = NULL;
    const json_t *text = input_data(inputs, "text", &bad);
    if (bad) return http_error(r, 400, "inputs", "invalid_value", "input 'text' %s", bad), HTTP_REPLY;
    const json_t *query = input_data(inputs, "query", &bad);
    if (bad) return http_error(r, 400, "inputs", "invalid_value", "input 'query' %s", bad), HTTP_REPLY;
    const json_t *docs = input_data(inputs, "documents", &bad);
    if (bad) return http_error(r, 400, "inputs", "invalid_value", "input 'documents' %s", bad), HTTP_REPLY;
    if (text && sm->roles[RAGD_ROLE_EMBED] && r->h->role[RAGD_ROLE_EMBED] == sm) {
        r->sm = (ragd_served_model *)sm;
        return api_kserve_embed(r, text);
    }
    if (query && docs && sm->roles[RAGD_ROLE_RERANK] && r->h->role[RAGD_ROLE_RERANK] == sm)
        return api_kserve_rerank(r, query, docs);
    return http_error(r, 400, "inputs", "invalid_value",
                      "model '%s' takes %s (see GET /v2/models/%s)", sm->name,
                      sm->roles[RAGD_ROLE_EMBED]    ? "the BYTES input 'text'"
                      : sm->roles[RAGD_ROLE_RERANK] ? "the BYTES inputs 'query' and 'documents'"
                                                    : "no infer inputs: it serves chat (use /v1/chat/completions)",
                      sm->name),
           HTTP_REPLY;
}
