/* jsonv.c — request JSON: a bounded parse, and typed access with errors that name the field.
 *
 * Bodies are scanned before jansson builds a tree: the scan counts values and nesting in one pass over
 * the bytes, so a body that would cost far more than its size as a tree (16 MB of "[]," is 5.5 million
 * arrays, ~730 MB of jansson objects) is refused before any of it is allocated: deeper than
 * JV_MAX_DEPTH → 400; more values than the endpoint can use (jv_max_values) → 413; the tree's size
 * bound (jv_tree_bytes) is reserved from the request-memory budget (413/503) before parsing. The body
 * buffer is freed once parsed (jansson copies every string).
 *
 * Bodies are then parsed by jansson (rejects invalid UTF-8, lone surrogates and NUL escapes). Every
 * accessor either yields a value of the right type within its bounds — integers compared as integers,
 * never through a double — or sets a 400 reply naming the field, what was expected and what was found,
 * and returns false. */
#include "http/http_internal.h"

#include <math.h>
#include <stdio.h>

#define JV_MAX_DEPTH 64

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* ---- the scan before the parse */

bool jv_scan(const char *p, size_t n, size_t max_values, jv_counts *c) {
    memset(c, 0, sizeof *c);
    size_t depth = 0;
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)p[i];
        switch (ch) {
        case ' ': case '\t': case '\n': case '\r': case ',': case ':': i++; continue;
        case '[': case '{':
            c->containers++;
            c->values++;
            if (++depth > c->depth) c->depth = depth;
            if (depth > JV_MAX_DEPTH) return false;
            i++;
            break;
        case ']': case '}':
            if (depth) depth--;
            i++;
            continue;
        case '"': {
            size_t j = i + 1;
            while (j < n && p[j] != '"') j += p[j] == '\\' ? 2 : 1;
            c->values++;
            size_t len = (j < n ? j : n) - i;
            c->string_bytes += len;
            if (len > c->longest_string) c->longest_string = len;
            i = j + 1;
            break;
        }
        default: /* a number or literal: up to the next delimiter */
            c->values++;
            while (i < n && !strchr(" \t\n\r,:[]{}\"", p[i])) i++;
            if (i < n && !p[i]) i++; /* a NUL byte: not JSON, jansson will say where */
            break;
        }
        if (c->values > max_values) return false;
    }
    return true;
}

size_t jv_tree_bytes(const jv_counts *c) {
    /* jansson 2.14 on 64-bit glibc, malloc chunks included: a scalar or string ≤ 48 B + its slot in the
     * parent (≤ 16 B, tables grow by doubling); a string's text ≤ its length + 24 B; an array ≤ 128 B, an
     * object ≤ 224 B + 32 B of buckets and 64 B of pair per key (keys are scanned as strings). The unit
     * test checks the bound against a counting allocator. While parsing, the lexer holds the current
     * token twice more (raw and decoded, doubling buffers). */
    return c->values * 96 + c->containers * 160 + c->string_bytes + 3 * c->longest_string + 4096;
}

/* The most JSON values a body of this endpoint can use: for embeddings, a token id per queued token plus
 * two per input (4096 inputs); elsewhere 65536 plus the longest prompt as token ids. */
static bool jv_rerank_ep(ragd_endpoint e) {
    return e == RAGD_EP_RERANK || e == RAGD_EP_V1_RERANK || e == RAGD_EP_V1_RANKING || e == RAGD_EP_V2_RERANK ||
           e == RAGD_EP_SCORE;
}

static size_t max_values(const http_req *r) {
    const ragd_serve_opts *o = r->h->cfg.opts;
    if (r->ep == RAGD_EP_EMBED || r->ep == RAGD_EP_V1_EMBEDDINGS || r->ep == RAGD_EP_V2_EMBED)
        return (size_t)o->max_queue_tokens + 2 * 4096 + 64;
    if (jv_rerank_ep(r->ep)) return 4 * 4096 + 64;
    int longest = 0;
    for (int i = 0; i < r->h->cfg.n_models; i++)
        for (int k = 0; k < RAGD_ROLE_COUNT; k++)
            if (r->h->cfg.models[i]->max_len[k] > longest) longest = r->h->cfg.models[i]->max_len[k];
    return 65536 + (size_t)longest;
}

static void body_done(http_req *r) {
    ragd_buf_free(&r->body);
    http_mem_release(r, r->mem_body);
    r->mem_body = 0;
}

bool jv_parse_body(http_req *r) {
    if (!r->body.len) {
        http_error(r, 400, NULL, "invalid_json", "the request body is empty; expected a JSON object");
        return false;
    }
    size_t bad;
    if (!ragd_utf8_valid(r->body.data, r->body.len, &bad)) {
        http_error(r, 400, NULL, "invalid_utf8", "the request body is not valid UTF-8 (byte offset %zu)", bad);
        return false;
    }
    jv_counts c;
    size_t cap = max_values(r);
    if (!jv_scan(r->body.data, r->body.len, cap, &c)) {
        if (c.depth > JV_MAX_DEPTH)
            http_error(r, 400, NULL, "invalid_json", "the JSON body is nested deeper than %d levels", JV_MAX_DEPTH);
        else if (r->ep == RAGD_EP_EMBED || r->ep == RAGD_EP_V1_EMBEDDINGS || r->ep == RAGD_EP_V2_EMBED)
            http_error(r, 413, NULL, "request_too_large",
                       "the body holds more than %zu JSON values: more token ids than --max-queue-tokens (%lld) "
                       "can ever hold, plus two per input",
                       cap, (long long)r->h->cfg.opts->max_queue_tokens);
        else if (jv_rerank_ep(r->ep))
            http_error(r, 413, NULL, "request_too_large",
                       "the body holds more than %zu JSON values, more than %s can use (4096 documents)", cap,
                       ragd_endpoint_name(r->ep));
        else http_error(r, 413, NULL, "request_too_large",
                        "the body holds more than %zu JSON values, more than %s can use (65536 plus the longest "
                        "sequence, --max-model-len, as token ids)", cap, ragd_endpoint_name(r->ep));
        return false;
    }
    size_t tree = jv_tree_bytes(&c);
    if (!http_mem_reserve(r, tree, "its parsed JSON")) return false;
    r->mem_json = tree;
    json_error_t je;
    r->json = json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &je);
    body_done(r);
    if (!r->json) {
        http_error(r, 400, NULL, "invalid_json", "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
        return false;
    }
    if (!json_is_object(r->json)) {
        http_error(r, 400, NULL, "invalid_json", "the request body must be a JSON object, not %s", type_name(r->json));
        return false;
    }
    return true;
}

bool jv_check_keys(http_req *r, const char *const *allowed) {
    const char *key;
    json_t *v;
    json_object_foreach(r->json, key, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++) ok = !strcmp(*a, key);
        if (!ok) {
            http_error(r, 400, key, "unknown_field", "unknown field '%s'", key);
            return false;
        }
    }
    return true;
}

bool jv_string(http_req *r, const char *key, bool required, const char **out, size_t *len) {
    json_t *v = json_object_get(r->json, key);
    *out = NULL;
    if (len) *len = 0;
    if (!v || json_is_null(v)) {
        if (!required) return true;
        http_error(r, 400, key, "missing_field", "missing required field '%s'", key);
        return false;
    }
    if (!json_is_string(v)) {
        http_error(r, 400, key, "invalid_type", "field '%s' must be a string, not %s", key, type_name(v));
        return false;
    }
    *out = json_string_value(v);
    if (len) *len = json_string_length(v);
    return true;
}

bool jv_int(http_req *r, const char *key, int64_t lo, int64_t hi, int64_t *out, bool *present) {
    json_t *v = json_object_get(r->json, key);
    if (present) *present = false;
    if (!v || json_is_null(v)) return true;
    int64_t x;
    if (json_is_integer(v)) x = json_integer_value(v);
    else if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v)) {
        double d = json_real_value(v); /* 3.0 is 3; beyond int64 it is out of range, never cast */
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) {
            http_error(r, 400, key, "out_of_range", "field '%s' is %g; it must be between %lld and %lld", key, d,
                       (long long)lo, (long long)hi);
            return false;
        }
        x = (int64_t)d;
    } else {
        http_error(r, 400, key, "invalid_type", "field '%s' must be an integer, not %s", key, type_name(v));
        return false;
    }
    if (x < lo || x > hi) {
        http_error(r, 400, key, "out_of_range", "field '%s' is %lld; it must be between %lld and %lld", key, (long long)x,
                   (long long)lo, (long long)hi);
        return false;
    }
    *out = x;
    if (present) *present = true;
    return true;
}

bool jv_number(http_req *r, const char *key, double lo, double hi, double *out, bool *present) {
    json_t *v = json_object_get(r->json, key);
    if (present) *present = false;
    if (!v || json_is_null(v)) return true;
    if (!json_is_number(v)) {
        http_error(r, 400, key, "invalid_type", "field '%s' must be a number, not %s", key, type_name(v));
        return false;
    }
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi)) {
        http_error(r, 400, key, "out_of_range", "field '%s' is %g; it must be between %g and %g", key, d, lo, hi);
        return false;
    }
    *out = d;
    if (present) *present = true;
    return true;
}

bool jv_truncate_mode(http_req *r, bool dflt, bool *truncate) {
    const json_t *v = json_object_get(r->json, "truncate");
    *truncate = dflt;
    if (!v || json_is_null(v)) return true;
    const char *t = json_is_string(v) ? json_string_value(v) : NULL;
    if (t && !strcmp(t, "END")) *truncate = true;
    else if (t && !strcmp(t, "NONE")) *truncate = false;
    else {
        http_error(r, 400, "truncate", "invalid_value",
                   "field 'truncate' must be \"NONE\" or \"END\" (cutting the start is not supported)");
        return false;
    }
    return true;
}

bool jv_bool(http_req *r, const char *key, bool *out, bool *present) {
    json_t *v = json_object_get(r->json, key);
    if (present) *present = false;
    if (!v || json_is_null(v)) return true;
    if (!json_is_boolean(v)) {
        http_error(r, 400, key, "invalid_type", "field '%s' must be a boolean, not %s", key, type_name(v));
        return false;
    }
    *out = json_is_true(v);
    if (present) *present = true;
    return true;
}

ragd_served_model *http_find_model(const ragd_http *h, const char *name, size_t len) {
    for (int i = 0; i < h->cfg.n_models; i++) {
        ragd_served_model *sm = h->cfg.models[i];
        if (strlen(sm->name) == len && !memcmp(sm->name, name, len)) return sm;
        for (int a = 0; a < sm->n_aliases; a++)
            if (strlen(sm->aliases[a]) == len && !memcmp(sm->aliases[a], name, len)) return sm;
    }
    return NULL;
}

static void names_of(const ragd_served_model *sm, ragd_buf *out) {
    ragd_buf_printf(out, "'%s'", sm->name);
    for (int a = 0; a < sm->n_aliases; a++) ragd_buf_printf(out, "%s'%s'", a ? ", " : " (aliases ", sm->aliases[a]);
    if (sm->n_aliases) ragd_buf_putc(out, ')');
}

void http_model_names(const ragd_http *h, ragd_buf *out) {
    for (int i = 0; i < h->cfg.n_models; i++) {
        if (i) ragd_buf_puts(out, ", ");
        names_of(h->cfg.models[i], out);
    }
    if (!h->cfg.n_models) ragd_buf_puts(out, "none");
}

bool jv_model(http_req *r, ragd_role role, ragd_served_model **out) {
    ragd_served_model *sm = r->h->role[role];
    json_t *v = json_object_get(r->json, "model");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) {
            http_error(r, 400, "model", "invalid_type", "field 'model' must be a string, not %s", type_name(v));
            return false;
        }
        const char *name = json_string_value(v);
        if (!ragd_served_model_is(sm, name)) {
            ragd_buf names = {0};
            if (http_find_model(r->h, name, json_string_length(v))) { /* a model, but not this role's */
                if (sm) names_of(sm, &names);
                http_error(r, 404, "model", "model_not_found", "model '%.200s' does not serve %s; this server%s %s model%s%s", name,
                           ragd_role_name(role), sm ? "'s" : " has no", ragd_role_name(role), sm ? " is " : "",
                           names.data ? names.data : "");
            } else {
                http_model_names(r->h, &names);
                http_error(r, 404, "model", "model_not_found", "model '%.200s' does not exist; the models are %s (GET /v1/models)",
                           name, names.data);
            }
            ragd_buf_free(&names);
            return false;
        }
    }
    if (!sm) {
        http_error(r, 404, "model", "model_not_found", "this server has no %s model (start it with --%s)",
                   ragd_role_name(role), ragd_role_name(role));
        return false;
    }
    *out = sm;
    r->sm = sm;
    return true;
}

bool jv_token_array(http_req *r, const json_t *arr, const char *param, int n_vocab, ragd_tok_ids *out) {
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (!json_is_integer(v)) {
            http_error(r, 400, param, "invalid_type", "%s[%zu] must be an integer token id, not %s", param, i, type_name(v));
            return false;
        }
        json_int_t id = json_integer_value(v);
        if (id < 0 || id >= n_vocab) {
            http_error(r, 400, param, "invalid_token", "%s[%zu] = %lld is not a token id (0..%d)", param, i, (long long)id,
                       n_vocab - 1);
            return false;
        }
        ragd_tok_ids_push(out, (int32_t)id);
    }
    return true;
}
