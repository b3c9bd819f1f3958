/* jsonv.c — typed access to request JSON with errors that name the field.
 *
 * Bodies are parsed by jansson (rejects invalid UTF-8, lone surrogates and NUL escapes). Every
 * accessor either yields a value of the right type within its bounds or sets a 400 reply naming the
 * field, what was expected and what was found, and returns false. */
#include "http/http_internal.h"

#include <math.h>
#include <stdio.h>

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
    json_error_t je;
    r->json = json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &je);
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
    double d;
    if (json_is_integer(v)) d = (double)json_integer_value(v);
    else if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v)) d = json_real_value(v);
    else {
        http_error(r, 400, key, "invalid_type", "field '%s' must be an integer, not %s", key, type_name(v));
        return false;
    }
    if (d < (double)lo || d > (double)hi) {
        http_error(r, 400, key, "out_of_range", "field '%s' is %.0f; it must be between %lld and %lld", key, d,
                   (long long)lo, (long long)hi);
        return false;
    }
    *out = json_is_integer(v) ? json_integer_value(v) : (int64_t)d;
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

bool jv_model(http_req *r, ragd_role role, ragd_served_model **out) {
    ragd_served_model *sm = r->h->role[role];
    json_t *v = json_object_get(r->json, "model");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) {
            http_error(r, 400, "model", "invalid_type", "field 'model' must be a string, not %s", type_name(v));
            return false;
        }
        const char *name = json_string_value(v);
        if (!sm || strcmp(name, sm->name)) {
            if (sm) http_error(r, 404, "model", "model_not_found", "model '%s' does not exist or does not serve %s; this server's %s model is '%s'",
                               name, ragd_role_name(role), ragd_role_name(role), sm->name);
            else http_error(r, 404, "model", "model_not_found", "model '%s' does not exist; this server has no %s model", name,
                            ragd_role_name(role));
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
