/* grammar_test_util.h — shared by the grammar tests: the cases of cases.json (written by make_cases.py)
 * and a small JSON-schema validator for the subset src/grammar supports, written independently of the
 * compiler so that what the matcher lets through is checked by other code. */
#ifndef GRAMMAR_TEST_UTIL_H
#define GRAMMAR_TEST_UTIL_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/grammar.h"

static inline json_t *gt_load_cases(void) {
    const char *src = getenv("RAGD_SRC");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/grammar/cases.json", src ? src : ".");
    json_error_t je;
    json_t *c = json_load_file(path, 0, &je);
    if (!c) fprintf(stderr, "cannot load %s: %s (line %d)\n", path, je.text, je.line);
    return c;
}

/* The case's grammar: its schema, or json_object mode for the string "json_object". */
static inline ragd_grammar *gt_compile(const json_t *cs) {
    const json_t *schema = json_object_get(cs, "schema");
    ragd_grammar *g = NULL;
    ragd_err err = {0};
    ragd_status st = json_is_string(schema) ? ragd_grammar_json_object(&g, &err)
                                            : ragd_grammar_compile_schema(schema, &g, &err);
    if (st) fprintf(stderr, "case %s: compile failed: %s\n", json_string_value(json_object_get(cs, "name")),
                    ragd_err_msg(&err));
    ragd_err_free(&err);
    return g;
}

static inline const json_t *gt_resolve(const json_t *root, const char *ref) {
    if (!ref || ref[0] != '#') return NULL;
    const json_t *cur = root;
    char seg[256];
    const char *p = ref + 1;
    while (*p == '/') {
        p++;
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof seg) seg[n++] = *p++;
        seg[n] = 0;
        cur = json_object_get(cur, seg);
        if (!cur) return NULL;
    }
    return cur;
}

static inline size_t gt_codepoints(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

static inline bool gt_type_ok(const char *t, const json_t *v) {
    if (!strcmp(t, "object")) return json_is_object(v);
    if (!strcmp(t, "array")) return json_is_array(v);
    if (!strcmp(t, "string")) return json_is_string(v);
    if (!strcmp(t, "number")) return json_is_number(v);
    if (!strcmp(t, "integer")) return json_is_integer(v);
    if (!strcmp(t, "boolean")) return json_is_boolean(v);
    if (!strcmp(t, "null")) return json_is_null(v);
    return false;
}

/* JSON-schema validation of v against s (root: for $ref), for the supported keywords. */
static inline bool gt_validate(const json_t *v, const json_t *s, const json_t *root, int depth) {
    if (depth > 200) return false;
    if (json_is_true(s)) return true;
    if (!json_is_object(s)) return false;
    const json_t *x;
    if ((x = json_object_get(s, "$ref"))) {
        const json_t *t = gt_resolve(root, json_string_value(x));
        if (!t || !gt_validate(v, t, root, depth + 1)) return false;
    }
    if ((x = json_object_get(s, "anyOf"))) {
        bool any = false;
        size_t i;
        json_t *a;
        json_array_foreach(x, i, a) any = any || gt_validate(v, a, root, depth + 1);
        if (!any) return false;
    }
    if ((x = json_object_get(s, "enum"))) {
        bool any = false;
        size_t i;
        json_t *a;
        json_array_foreach(x, i, a) any = any || json_equal((json_t *)v, a);
        if (!any) return false;
    }
    if ((x = json_object_get(s, "const")) && !json_equal((json_t *)v, (json_t *)x)) return false;
    if ((x = json_object_get(s, "type"))) {
        bool ok = false;
        if (json_is_string(x)) ok = gt_type_ok(json_string_value(x), v);
        size_t i;
        json_t *a;
        json_array_foreach(x, i, a) ok = ok || gt_type_ok(json_string_value(a), v);
        if (!ok) return false;
    }
    if (json_is_object(v)) {
        const json_t *props = json_object_get(s, "properties"), *add = json_object_get(s, "additionalProperties");
        const char *k;
        json_t *a;
        json_object_foreach((json_t *)v, k, a) {
            const json_t *ps = props ? json_object_get(props, k) : NULL;
            if (ps) {
                if (!gt_validate(a, ps, root, depth + 1)) return false;
            } else if (add && !gt_validate(a, add, root, depth + 1)) return false;
        }
        size_t i;
        json_array_foreach(json_object_get(s, "required"), i, a) if (!json_object_get(v, json_string_value(a))) return false;
    }
    if (json_is_array(v)) {
        const json_t *items = json_object_get(s, "items"), *mn = json_object_get(s, "minItems"),
                     *mx = json_object_get(s, "maxItems");
        size_t i;
        json_t *a;
        if (items) json_array_foreach((json_t *)v, i, a) if (!gt_validate(a, items, root, depth + 1)) return false;
        if (mn && (json_int_t)json_array_size(v) < json_integer_value(mn)) return false;
        if (mx && (json_int_t)json_array_size(v) > json_integer_value(mx)) return false;
    }
    if (json_is_string(v)) {
        const json_t *mn = json_object_get(s, "minLength"), *mx = json_object_get(s, "maxLength");
        size_t cp = gt_codepoints(json_string_value(v), json_string_length(v));
        if (mn && (json_int_t)cp < json_integer_value(mn)) return false;
        if (mx && (json_int_t)cp > json_integer_value(mx)) return false;
    }
    return true;
}

/* Does text parse (jansson) and validate against the case? */
static inline bool gt_text_valid(const json_t *cs, const char *text, size_t len) {
    json_error_t je;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY, &je);
    if (!v) return false;
    const json_t *schema = json_object_get(cs, "schema");
    bool ok = json_is_string(schema) ? json_is_object(v) : gt_validate(v, schema, schema, 0);
    json_decref(v);
    return ok;
}

static inline bool gt_matches(const ragd_grammar *g, const char *text, size_t len) {
    ragd_gmatch m;
    ragd_gmatch_init(g, &m);
    return ragd_gmatch_advance(g, &m, text, len) && ragd_gmatch_accepting(g, &m);
}

#endif
