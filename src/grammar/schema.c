/* schema.c — JSON schema → grammar nodes (grammar_internal.h).
 *
 * One node per schema (a list of types becomes an ANYOF of one node per type); "$ref" resolves a JSON
 * pointer into the root schema and compiles its target once (a cache by pointer text), so recursive
 * references become cycles between nodes. After the walk: placeholders are filled, ANYOF alternatives
 * are flattened (an ANYOF never holds an ANYOF; a cycle of ANYOFs adds nothing), and each node's
 * smallest nesting depth is computed as a fixed point (the matcher opens a value only when it can
 * still close within RAGD_GMATCH_MAX_DEPTH).
 *
 * Errors are RAGD_EINVAL with the keyword and the JSON path of the schema ("$.properties.a.items").
 */
#include <stdio.h>
#include <stdlib.h>

#include "grammar/grammar_internal.h"

#define MAX_NODES 60000u   /* node ids and indices fit in 16 bits with room for GN_NONE/GN_EXTRA */
#define MAX_COMPILE_DEPTH 64
#define MAX_NAME_BYTES 4096u

typedef struct cref {
    const char *ptr;
    uint32_t node;
} cref;

typedef struct cctx {
    ragd_grammar *g;
    const json_t *root;
    ragd_err *err;
    cref *refs;
    size_t n_refs, cap_refs;
    int depth;
    char path[512];
    size_t path_len;
} cctx;

/* ---------------------------------------------------------------------------------------------- */
/* arrays */

static bool grow(void **p, uint32_t *cap, uint32_t need, size_t elem) {
    if (need <= *cap) return true;
    uint32_t nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return false;
    *p = q;
    *cap = nc;
    return true;
}

static ragd_status oom(cctx *c) { return ragd_err_set(c->err, RAGD_ENOMEM, "schema: out of memory"); }

static ragd_status new_node(cctx *c, gn_kind kind, uint32_t *id) {
    ragd_grammar *g = c->g;
    if (g->n_nodes >= MAX_NODES)
        return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: too large (more than %u grammar nodes)", c->path,
                            MAX_NODES);
    if (!grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes)) return oom(c);
    gnode *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)kind;
    n->additional = GN_NONE;
    n->items = GN_NONE;
    n->max = GN_NONE;
    n->last_required = -1;
    *id = g->n_nodes++;
    return RAGD_OK;
}

static size_t path_push(cctx *c, const char *fmt, const char *s) {
    size_t old = c->path_len;
    int k = snprintf(c->path + old, sizeof c->path - old, fmt, s);
    if (k > 0) c->path_len = old + (size_t)k < sizeof c->path ? old + (size_t)k : sizeof c->path - 1;
    return old;
}
static size_t path_push_i(cctx *c, const char *fmt, size_t i) {
    size_t old = c->path_len;
    int k = snprintf(c->path + old, sizeof c->path - old, fmt, i);
    if (k > 0) c->path_len = old + (size_t)k < sizeof c->path ? old + (size_t)k : sizeof c->path - 1;
    return old;
}
static void path_pop(cctx *c, size_t old) {
    c->path_len = old;
    c->path[old] = '\0';
}

/* ---------------------------------------------------------------------------------------------- */
/* keywords */

static const char *const ANNOTATIONS[] = {"title", "description", "default", "examples", "format", "$schema",
                                          "$id", "$comment", "deprecated", "readOnly", "writeOnly", "$defs",
                                          "definitions", NULL};
static const char *const STRUCTURAL[] = {"type", "properties", "required", "additionalProperties", "enum",
                                         "const", "items", "minItems", "maxItems", "minLength", "maxLength",
                                         "anyOf", "$ref", NULL};
static const char *const TYPES[] = {"object", "array", "string", "number", "integer", "boolean", "null", NULL};

static bool in_list(const char *const *l, const char *k) {
    for (; *l; l++)
        if (!strcmp(*l, k)) return true;
    return false;
}

static ragd_status check_keywords(cctx *c, const json_t *s) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if (in_list(ANNOTATIONS, k) || in_list(STRUCTURAL, k)) continue;
        if (!strcmp(k, "pattern") || !strcmp(k, "patternProperties"))
            return ragd_err_set(c->err, RAGD_EINVAL,
                                "schema at %s: keyword '%s' is not supported (no regular expressions in "
                                "structured output)", c->path, k);
        return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: keyword '%s' is not supported", c->path, k);
    }
    return RAGD_OK;
}

/* A keyword other than annotations beside `kw` ($ref and anyOf take none). */
static ragd_status check_alone(cctx *c, const json_t *s, const char *kw) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if (!strcmp(k, kw) || in_list(ANNOTATIONS, k)) continue;
        return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: keyword '%s' beside '%s' is not supported", c->path,
                            k, kw);
    }
    return RAGD_OK;
}

static ragd_status get_count(cctx *c, const json_t *s, const char *kw, uint32_t *out, bool *present) {
    json_t *v = json_object_get(s, kw);
    *present = v != NULL;
    if (!v) return RAGD_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 65000)
        return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: '%s' must be an integer in 0..65000", c->path, kw);
    *out = (uint32_t)json_integer_value(v);
    return RAGD_OK;
}

/* a min/max pair of counts (minLength/maxLength, minItems/maxItems): min 0 and max GN_NONE when absent */
static ragd_status get_range(cctx *c, const json_t *s, const char *kmin, const char *kmax, uint32_t *mn, uint32_t *mx) {
    bool has_mn, has_mx;
    ragd_status st;
    *mn = 0, *mx = GN_NONE;
    if ((st = get_count(c, s, kmin, mn, &has_mn)) || (st = get_count(c, s, kmax, mx, &has_mx))) return st;
    if (!has_mx) *mx = GN_NONE;
    if (has_mx && *mn > *mx)
        return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: %s %u > %s %u", c->path, kmin, *mn, kmax, *mx);
    return RAGD_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* literals */

static ragd_status add_literal_text(cctx *c, const char *s, size_t n) {
    ragd_grammar *g = c->g;
    if (!grow((void **)&g->lits, &g->cap_lits, g->n_lits + 1, sizeof *g->lits)) return oom(c);
    g->lits[g->n_lits].off = (uint32_t)g->strs.len;
    g->lits[g->n_lits].len = (uint32_t)n;
    ragd_buf_append(&g->strs, s, n);
    g->n_lits++;
    return RAGD_OK;
}

static int lit_cmp(const void *pa, const void *pb, void *ctx) {
    const glit *a = pa, *b = pb;
    const ragd_grammar *g = ctx;
    uint32_t n = a->len < b->len ? a->len : b->len;
    int r = memcmp(g->strs.data + a->off, g->strs.data + b->off, n);
    if (r) return r;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* Sorts lits[first..first+count) by bytes and drops duplicates; returns the new count. */
static uint32_t sort_lits(ragd_grammar *g, uint32_t first, uint32_t count) {
    qsort_r(g->lits + first, count, sizeof *g->lits, lit_cmp, g);
    uint32_t k = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (k && !lit_cmp(&g->lits[first + k - 1], &g->lits[first + i], g)) continue;
        g->lits[first + k++] = g->lits[first + i];
    }
    return k;
}

static bool type_matches(const char *type, const json_t *v) {
    if (!strcmp(type, "object")) return json_is_object(v);
    if (!strcmp(type, "array")) return json_is_array(v);
    if (!strcmp(type, "string")) return json_is_string(v);
    if (!strcmp(type, "number")) return json_is_number(v);
    if (!strcmp(type, "integer")) return json_is_integer(v);
    if (!strcmp(type, "boolean")) return json_is_boolean(v);
    if (!strcmp(type, "null")) return json_is_null(v);
    return false;
}

static ragd_status literal_node(cctx *c, const json_t *vals, const char *const *types, int n_types,
                                const char *kw, uint32_t *id) {
    ragd_status st = new_node(c, GN_LITERAL, id);
    if (st) return st;
    ragd_grammar *g = c->g;
    uint32_t first = g->n_lits, count = 0;
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)vals, i, v) {
        bool ok = n_types == 0;
        for (int t = 0; t < n_types && !ok; t++) ok = type_matches(types[t], v);
        if (!ok) continue;
        char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!txt) return oom(c);
        st = add_literal_text(c, txt, strlen(txt));
        free(txt);
        if (st) return st;
        count++;
    }
    if (!count)
        return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: '%s' has no value%s", c->path, kw,
                            n_types ? " of the schema's type" : "");
    count = sort_lits(g, first, count);
    g->n_lits = first + count;
    if (count > 65000u) return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: '%s' has too many values", c->path, kw);
    g->nodes[*id].first = first;
    g->nodes[*id].count = count;
    return RAGD_OK;
}

static ragd_status words_node(cctx *c, const char *const *words, int n, uint32_t *id) {
    ragd_status st = new_node(c, GN_LITERAL, id);
    if (st) return st;
    uint32_t first = c->g->n_lits;
    for (int i = 0; i < n; i++)
        if ((st = add_literal_text(c, words[i], strlen(words[i])))) return st;
    c->g->nodes[*id].first = first;
    c->g->nodes[*id].count = sort_lits(c->g, first, (uint32_t)n);
    return RAGD_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* the walk */

static ragd_status compile(cctx *c, const json_t *s, uint32_t *id);

static ragd_status add_alts(cctx *c, uint32_t node, const uint32_t *ids, uint32_t n) {
    ragd_grammar *g = c->g;
    if (!grow((void **)&g->alts, &g->cap_alts, g->n_alts + n, sizeof *g->alts)) return oom(c);
    memcpy(g->alts + g->n_alts, ids, n * sizeof *ids);
    g->nodes[node].first = g->n_alts;
    g->nodes[node].count = n;
    g->n_alts += n;
    return RAGD_OK;
}

static bool is_required(const json_t *req, const char *k) {
    size_t i;
    json_t *r;
    json_array_foreach((json_t *)req, i, r) if (!strcmp(json_string_value(r), k)) return true;
    return false;
}

static ragd_status compile_object(cctx *c, const json_t *s, uint32_t id) {
    ragd_grammar *g = c->g;
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    const json_t *add = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props))
        return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: 'properties' must be an object", c->path);
    if (req && !json_is_array(req))
        return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: 'required' must be an array of names", c->path);
    size_t np = props ? json_object_size(props) : 0;
    if (np > 65000u) return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: too many properties", c->path);
    /* required names must be declared */
    size_t i;
    json_t *r;
    json_array_foreach((json_t *)req, i, r) {
        if (!json_is_string(r))
            return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: 'required[%zu]' must be a string", c->path, i);
        if (!props || !json_object_get(props, json_string_value(r)))
            return ragd_err_set(c->err, RAGD_EINVAL,
                                "schema at %s: required property '%s' is not in 'properties' (not supported)",
                                c->path, json_string_value(r));
    }
    /* values first (they allocate nodes and props of their own), then this object's props in one run */
    uint32_t *vals = np ? malloc(np * sizeof *vals) : NULL;
    if (np && !vals) return oom(c);
    const char *k;
    json_t *v;
    size_t j = 0;
    ragd_status st = RAGD_OK;
    json_object_foreach((json_t *)props, k, v) {
        size_t old = path_push(c, ".properties.%s", k);
        st = compile(c, v, &vals[j++]);
        path_pop(c, old);
        if (st) break;
    }
    uint32_t add_node = g->any;
    if (!st && add) {
        if (json_is_false(add)) add_node = GN_NONE;
        else if (!json_is_true(add)) {
            size_t old = path_push(c, "%s", ".additionalProperties");
            st = compile(c, add, &add_node);
            path_pop(c, old);
        }
    }
    if (!st && !grow((void **)&g->props, &g->cap_props, g->n_props + (uint32_t)np, sizeof *g->props)) st = oom(c);
    if (st) {
        free(vals);
        return st;
    }
    uint32_t first = g->n_props;
    j = 0;
    int32_t last_req = -1;
    json_object_foreach((json_t *)props, k, v) {
        gprop *p = &g->props[first + j];
        json_t *name = json_string(k);
        char *txt = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;
        json_decref(name);
        if (!txt) {
            free(vals);
            return oom(c);
        }
        size_t tl = strlen(txt);
        if (tl - 2 > MAX_NAME_BYTES) {
            free(txt);
            free(vals);
            return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: a property name is longer than %u bytes", c->path,
                                MAX_NAME_BYTES);
        }
        p->name_off = (uint32_t)g->strs.len;
        p->name_len = (uint32_t)(tl - 2);
        ragd_buf_append(&g->strs, txt + 1, tl - 2);
        free(txt);
        p->value = vals[j];
        p->required = req && is_required(req, k);
        if (p->required) last_req = (int32_t)j;
        j++;
    }
    free(vals);
    g->n_props += (uint32_t)np;
    uint32_t next = (uint32_t)np;
    for (size_t q = np; q-- > 0;) {
        if (g->props[first + q].required) next = (uint32_t)q;
        g->props[first + q].next_req = next;
    }
    gnode *n = &g->nodes[id];
    n->kind = GN_OBJECT;
    n->first = first;
    n->count = (uint32_t)np;
    n->last_required = last_req;
    n->additional = add_node;
    return RAGD_OK;
}

static ragd_status compile_typed(cctx *c, const json_t *s, const char *type, uint32_t *id) {
    ragd_status st;
    if (!strcmp(type, "boolean")) {
        static const char *const w[] = {"true", "false"};
        return words_node(c, w, 2, id);
    }
    if (!strcmp(type, "null")) {
        static const char *const w[] = {"null"};
        return words_node(c, w, 1, id);
    }
    if (!strcmp(type, "number") || !strcmp(type, "integer")) {
        if ((st = new_node(c, GN_NUMBER, id))) return st;
        c->g->nodes[*id].integer = type[0] == 'i';
        return RAGD_OK;
    }
    if (!strcmp(type, "string")) {
        uint32_t mn, mx;
        if ((st = get_range(c, s, "minLength", "maxLength", &mn, &mx))) return st;
        if ((st = new_node(c, GN_STRING, id))) return st;
        c->g->nodes[*id].min = mn;
        c->g->nodes[*id].max = mx;
        return RAGD_OK;
    }
    if (!strcmp(type, "array")) {
        uint32_t mn, mx;
        if ((st = get_range(c, s, "minItems", "maxItems", &mn, &mx))) return st;
        if ((st = new_node(c, GN_ARRAY, id))) return st;
        uint32_t items = c->g->any;
        const json_t *it = json_object_get(s, "items");
        if (it && !json_is_true(it)) {
            if (!json_is_object(it))
                return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: 'items' must be a schema object", c->path);
            size_t old = path_push(c, "%s", ".items");
            st = compile(c, it, &items);
            path_pop(c, old);
            if (st) return st;
        }
        gnode *n = &c->g->nodes[*id];
        n->items = items;
        n->min = mn;
        n->max = mx;
        return RAGD_OK;
    }
    if (!strcmp(type, "object")) {
        if ((st = new_node(c, GN_OBJECT, id))) return st;
        return compile_object(c, s, *id);
    }
    return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: unknown type '%s'", c->path, type);
}

/* JSON pointer "#/a/b~1c" into the root schema. */
static const json_t *resolve(const json_t *root, const char *ref) {
    if (ref[0] != '#') return NULL;
    const json_t *cur = root;
    const char *p = ref + 1;
    char seg[256];
    while (*p) {
        if (*p != '/') return NULL;
        p++;
        size_t n = 0;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~') {
                if (*p == '0') ch = '~';
                else if (*p == '1') ch = '/';
                else return NULL;
                p++;
            }
            if (n + 1 >= sizeof seg) return NULL;
            seg[n++] = ch;
        }
        seg[n] = '\0';
        if (json_is_object(cur)) cur = json_object_get(cur, seg);
        else if (json_is_array(cur)) {
            char *end;
            long ix = strtol(seg, &end, 10);
            if (!n || *end || ix < 0) return NULL;
            cur = json_array_get(cur, (size_t)ix);
        } else return NULL;
        if (!cur) return NULL;
    }
    return cur;
}

static ragd_status compile_ref(cctx *c, const json_t *s, uint32_t *id) {
    ragd_status st = check_alone(c, s, "$ref");
    if (st) return st;
    const json_t *r = json_object_get(s, "$ref");
    if (!json_is_string(r))
        return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: '$ref' must be a string", c->path);
    const char *ref = json_string_value(r);
    for (size_t i = 0; i < c->n_refs; i++)
        if (!strcmp(c->refs[i].ptr, ref)) {
            *id = c->refs[i].node;
            return RAGD_OK;
        }
    const json_t *target = resolve(c->root, ref);
    if (!target)
        return ragd_err_set(c->err, RAGD_EINVAL,
                            "schema at %s: '$ref' \"%s\" does not resolve (only local \"#/...\" pointers into this "
                            "schema are supported)", c->path, ref);
    uint32_t ph;
    if ((st = new_node(c, GN_PLACEHOLDER, &ph))) return st;
    if (c->n_refs == c->cap_refs) {
        size_t nc = c->cap_refs ? 2 * c->cap_refs : 8;
        cref *q = realloc(c->refs, nc * sizeof *q);
        if (!q) return oom(c);
        c->refs = q;
        c->cap_refs = nc;
    }
    c->refs[c->n_refs].ptr = ref;
    c->refs[c->n_refs].node = ph;
    c->n_refs++;
    /* the target's errors carry the pointer as their path */
    char saved[sizeof c->path];
    size_t saved_len = c->path_len;
    memcpy(saved, c->path, sizeof saved);
    snprintf(c->path, sizeof c->path, "%s", ref);
    c->path_len = strlen(c->path);
    uint32_t t;
    st = compile(c, target, &t);
    memcpy(c->path, saved, sizeof saved);
    c->path_len = saved_len;
    if (st) return st;
    if (t != ph) c->g->nodes[ph] = c->g->nodes[t]; /* shallow: nodes hold indices only */
    *id = ph;
    return RAGD_OK;
}

static ragd_status compile_anyof(cctx *c, const json_t *s, const json_t *any_of, uint32_t *id) {
    ragd_status st = check_alone(c, s, "anyOf");
    if (st) return st;
    if (!json_is_array(any_of) || !json_array_size(any_of))
        return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: 'anyOf' must be a non-empty array", c->path);
    size_t n = json_array_size(any_of);
    uint32_t *ids = malloc(n * sizeof *ids);
    if (!ids) return oom(c);
    st = new_node(c, GN_ANYOF, id);
    for (size_t i = 0; i < n && !st; i++) {
        size_t old = path_push_i(c, ".anyOf[%zu]", i);
        st = compile(c, json_array_get(any_of, i), &ids[i]);
        path_pop(c, old);
    }
    if (!st) st = add_alts(c, *id, ids, (uint32_t)n);
    free(ids);
    return st;
}

static ragd_status compile_types(cctx *c, const json_t *s, uint32_t *id) {
    const char *types[8];
    int n_types = 0;
    const json_t *ty = json_object_get(s, "type");
    if (ty && json_is_string(ty)) types[n_types++] = json_string_value(ty);
    else if (ty && json_is_array(ty) && json_array_size(ty) >= 1 && json_array_size(ty) <= 7) {
        size_t i;
        json_t *t;
        json_array_foreach((json_t *)ty, i, t) {
            if (!json_is_string(t)) break;
            types[n_types++] = json_string_value(t);
        }
        if ((size_t)n_types != json_array_size(ty)) n_types = -1;
    } else if (ty) n_types = -1;
    if (n_types < 0)
        return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: 'type' must be a type name or a list of 1..7 of them",
                            c->path);
    for (int i = 0; i < n_types; i++)
        if (!in_list(TYPES, types[i]))
            return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: unknown type '%s'", c->path, types[i]);
    /* enum / const: a set of literal texts (of the given types) */
    const json_t *en = json_object_get(s, "enum"), *cn = json_object_get(s, "const");
    if (en && cn) return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: 'enum' beside 'const' is not supported", c->path);
    if (en && (!json_is_array(en) || !json_array_size(en)))
        return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: 'enum' must be a non-empty array", c->path);
    if (en) return literal_node(c, en, types, n_types, "enum", id);
    if (cn) {
        json_t *one = json_array();
        if (!one || json_array_append(one, (json_t *)cn)) {
            json_decref(one);
            return oom(c);
        }
        ragd_status st = literal_node(c, one, types, n_types, "const", id);
        json_decref(one);
        return st;
    }
    if (n_types == 0) {
        /* no type: inferred from the keywords, else any value */
        if (json_object_get(s, "properties") || json_object_get(s, "required") ||
            json_object_get(s, "additionalProperties"))
            types[n_types++] = "object";
        else if (json_object_get(s, "items") || json_object_get(s, "minItems") || json_object_get(s, "maxItems"))
            types[n_types++] = "array";
        else if (json_object_get(s, "minLength") || json_object_get(s, "maxLength"))
            types[n_types++] = "string";
        else {
            *id = c->g->any;
            return RAGD_OK;
        }
    }
    if (n_types == 1) return compile_typed(c, s, types[0], id);
    uint32_t ids[8];
    ragd_status st = new_node(c, GN_ANYOF, id);
    for (int i = 0; i < n_types && !st; i++) st = compile_typed(c, s, types[i], &ids[i]);
    if (!st) st = add_alts(c, *id, ids, (uint32_t)n_types);
    return st;
}

static ragd_status compile(cctx *c, const json_t *s, uint32_t *id) {
    if (json_is_true(s)) {
        *id = c->g->any;
        return RAGD_OK;
    }
    if (json_is_false(s))
        return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: the schema false matches nothing", c->path);
    if (!json_is_object(s))
        return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: a schema must be an object or a boolean", c->path);
    if (c->depth >= MAX_COMPILE_DEPTH)
        return ragd_err_set(c->err, RAGD_EINVAL, "schema at %s: nested deeper than %d schemas", c->path,
                            MAX_COMPILE_DEPTH);
    ragd_status st = check_keywords(c, s);
    if (st) return st;
    c->depth++;
    const json_t *any_of = json_object_get(s, "anyOf");
    if (json_object_get(s, "$ref")) st = compile_ref(c, s, id);
    else if (any_of) st = compile_anyof(c, s, any_of, id);
    else st = compile_types(c, s, id);
    c->depth--;
    return st;
}

/* ---------------------------------------------------------------------------------------------- */
/* after the walk */

/* Collects the non-ANYOF leaves reachable from node through ANYOFs (each once). */
static bool flatten(ragd_grammar *g, uint32_t node, uint8_t *seen, uint32_t **out, uint32_t *n, uint32_t *cap) {
    const gnode *nd = &g->nodes[node];
    for (uint32_t i = 0; i < nd->count; i++) {
        uint32_t a = g->alts[nd->first + i];
        if (seen[a]) continue;
        seen[a] = 1;
        if (g->nodes[a].kind == GN_ANYOF) {
            if (!flatten(g, a, seen, out, n, cap)) return false;
        } else {
            if (!grow((void **)out, cap, *n + 1, sizeof **out)) return false;
            (*out)[(*n)++] = a;
        }
    }
    return true;
}

static ragd_status flatten_anyofs(cctx *c) {
    ragd_grammar *g = c->g;
    uint8_t *seen = calloc(g->n_nodes, 1);
    if (!seen) return oom(c);
    uint32_t *leaves = NULL, cap = 0;
    ragd_status st = RAGD_OK;
    for (uint32_t i = 0; i < g->n_nodes && !st; i++) {
        if (g->nodes[i].kind != GN_ANYOF) continue;
        memset(seen, 0, g->n_nodes);
        seen[i] = 1;
        uint32_t n = 0;
        if (!flatten(g, i, seen, &leaves, &n, &cap)) st = oom(c);
        else if (!n) st = ragd_err_set(c->err, RAGD_EINVAL, "schema: an 'anyOf' that only refers to itself");
        else st = add_alts(c, i, leaves, n);
    }
    free(seen);
    free(leaves);
    return st;
}

static ragd_status sort_names(cctx *c) {
    ragd_grammar *g = c->g;
    free(g->sorted);
    g->sorted = malloc((g->n_props ? g->n_props : 1) * sizeof *g->sorted);
    if (!g->sorted) return oom(c);
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        gnode *n = &g->nodes[i];
        if (n->kind != GN_OBJECT) continue;
        /* a $ref copy shares the original's props: sorting twice gives the same order */
        n->sorted = n->first;
        uint32_t *s = g->sorted + n->first;
        for (uint32_t j = 0; j < n->count; j++) s[j] = j;
        for (uint32_t j = 1; j < n->count; j++) { /* insertion sort by name bytes */
            uint32_t x = s[j], k = j;
            const gprop *px = &g->props[n->first + x];
            while (k > 0) {
                const gprop *py = &g->props[n->first + s[k - 1]];
                uint32_t m = px->name_len < py->name_len ? px->name_len : py->name_len;
                int r = memcmp(g->strs.data + px->name_off, g->strs.data + py->name_off, m);
                if (r > 0 || (r == 0 && px->name_len >= py->name_len)) break;
                s[k] = s[k - 1];
                k--;
            }
            s[k] = x;
        }
    }
    return RAGD_OK;
}

/* The smallest nesting depth of every node: a fixed point from "infinite" (255). */
static void min_depths(ragd_grammar *g) {
    for (uint32_t i = 0; i < g->n_nodes; i++) g->nodes[i].mindepth = 255;
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t i = 0; i < g->n_nodes; i++) {
            gnode *n = &g->nodes[i];
            unsigned md = 1;
            if (n->kind == GN_OBJECT) {
                for (uint32_t j = 0; j < n->count; j++) {
                    const gprop *p = &g->props[n->first + j];
                    unsigned v = 1u + g->nodes[p->value].mindepth;
                    if (p->required && v > md) md = v;
                }
            } else if (n->kind == GN_ARRAY) {
                if (n->min > 0) md = 1u + g->nodes[n->items].mindepth;
            } else if (n->kind == GN_ANYOF) {
                md = 255;
                for (uint32_t j = 0; j < n->count; j++) {
                    unsigned v = g->nodes[g->alts[n->first + j]].mindepth;
                    if (v < md) md = v;
                }
            } else if (n->kind == GN_SEQ) { /* its frame below the deepest element's */
                for (uint32_t j = 0; j < n->count; j++) {
                    unsigned v = 1u + g->nodes[g->alts[n->first + j]].mindepth;
                    if (v > md) md = v;
                }
            } else if (n->kind == GN_SWITCH) { /* the largest: the value is chosen after its key opened */
                md = 0;
                for (uint32_t j = 0; j < n->count; j++) {
                    unsigned v = g->nodes[g->alts[n->first + j]].mindepth;
                    if (v > md) md = v;
                }
            }
            if (md > 255) md = 255;
            if (md < n->mindepth) {
                n->mindepth = (uint8_t)md;
                changed = true;
            }
        }
    }
}

static ragd_status finish(cctx *c) {
    ragd_grammar *g = c->g;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].kind == GN_PLACEHOLDER)
            return ragd_err_set(c->err, RAGD_EINVAL, "schema: a cycle of '$ref's that never reaches a schema");
    ragd_status st = flatten_anyofs(c);
    if (!st) st = sort_names(c);
    if (st) return st;
    min_depths(g);
    if (g->nodes[g->root].mindepth > RAGD_GMATCH_MAX_DEPTH)
        return ragd_err_set(c->err, RAGD_EINVAL,
                            "schema: its smallest value nests deeper than %d levels (or it has no finite value)",
                            RAGD_GMATCH_MAX_DEPTH);
    return RAGD_OK;
}

/* The "any JSON value" nodes every grammar has: any = anyOf(object of any, array of any, string,
 * number, true|false|null). */
static ragd_status add_any(cctx *c) {
    ragd_grammar *g = c->g;
    uint32_t any, obj, arr, str, num, lit;
    ragd_status st;
    static const char *const w[] = {"true", "false", "null"};
    if ((st = new_node(c, GN_ANYOF, &any)) || (st = new_node(c, GN_OBJECT, &obj)) ||
        (st = new_node(c, GN_ARRAY, &arr)) || (st = new_node(c, GN_STRING, &str)) ||
        (st = new_node(c, GN_NUMBER, &num)) || (st = words_node(c, w, 3, &lit)))
        return st;
    g->any = any;
    g->nodes[obj].additional = any;
    g->nodes[arr].items = any;
    uint32_t ids[5] = {obj, arr, str, num, lit};
    return add_alts(c, any, ids, 5);
}

static ragd_status grammar_new(cctx *c, ragd_grammar **out, ragd_err *err) {
    memset(c, 0, sizeof *c);
    c->err = err;
    strcpy(c->path, "$");
    c->path_len = 1;
    *out = NULL;
    c->g = calloc(1, sizeof *c->g);
    if (!c->g) return ragd_err_set(err, RAGD_ENOMEM, "schema: out of memory");
    return add_any(c);
}

ragd_status ragd_grammar_compile_schema(const json_t *schema, ragd_grammar **out, ragd_err *err) {
    cctx c;
    ragd_status st = grammar_new(&c, out, err);
    c.root = schema;
    if (!st) st = compile(&c, schema, &c.g->root);
    if (!st) st = finish(&c);
    free(c.refs);
    if (!st) grammar_fingerprint_set(c.g);
    if (st) {
        ragd_grammar_free(c.g);
        return st;
    }
    *out = c.g;
    return RAGD_OK;
}

ragd_status ragd_grammar_json_object(ragd_grammar **out, ragd_err *err) {
    cctx c;
    ragd_status st = grammar_new(&c, out, err);
    if (!st) c.g->root = c.g->alts[c.g->nodes[c.g->any].first]; /* the object of any */
    if (!st) st = finish(&c);
    if (!st) grammar_fingerprint_set(c.g);
    if (st) {
        ragd_grammar_free(c.g);
        return st;
    }
    *out = c.g;
    return RAGD_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* tool calls: {"<name_key>": one of the names, "<args_key>": that function's parameters} */

/* The call object: a tagged OBJECT whose name literal picks the SWITCH alternative of its arguments. */
static ragd_status compile_call_object(cctx *c, const ragd_grammar_calls *k, uint32_t *id) {
    ragd_grammar *g = c->g;
    json_t *names = json_array();
    for (int i = 0; i < k->n && names; i++)
        if (json_array_append_new(names, json_string(k->names[i]))) {
            json_decref(names);
            names = NULL;
        }
    json_t *sch = names ? json_pack("{s:s, s:{s:{s:o}, s:{}}, s:[s,s], s:b}", "type", "object", "properties", k->name_key,
                                    "enum", names, k->args_key, "required", k->name_key, k->args_key,
                                    "additionalProperties", 0)
                        : NULL;
    if (!sch) return oom(c);
    c->root = sch;
    ragd_status st = compile(c, sch, id);
    json_decref(sch);
    c->root = NULL;
    if (st) return st;
    const gnode *obj = &g->nodes[*id];
    uint32_t lit = g->props[obj->first].value, n_lits = g->nodes[lit].count;
    if (n_lits != (uint32_t)k->n) { /* literal_node dropped a duplicate */
        for (int i = 0; i < k->n; i++)
            for (int j = 0; j < i; j++)
                if (!strcmp(k->names[i], k->names[j]))
                    return ragd_err_set(c->err, RAGD_EINVAL, "tool calls: the function name \"%s\" appears twice (%d and %d)",
                                        k->names[i], j, i);
        return ragd_err_set(c->err, RAGD_EINVAL, "tool calls: duplicate function names");
    }
    /* each function's parameters, in the literals' sorted order; every schema is its own root */
    uint32_t *ids = malloc((size_t)k->n * sizeof *ids);
    if (!ids) return oom(c);
    uint32_t sw;
    st = new_node(c, GN_SWITCH, &sw);
    for (uint32_t j = 0; j < n_lits && !st; j++) {
        const glit *L = &g->lits[g->nodes[lit].first + j];
        int fn = -1;
        for (int i = 0; i < k->n && fn < 0; i++) {
            json_t *nm = json_string(k->names[i]);
            char *txt = nm ? json_dumps(nm, JSON_ENCODE_ANY) : NULL;
            json_decref(nm);
            if (!txt) {
                st = oom(c);
                break;
            }
            if (strlen(txt) == L->len && !memcmp(txt, g->strs.data + L->off, L->len)) fn = i;
            free(txt);
        }
        if (st) break;
        RAGD_ASSERT(fn >= 0);
        c->root = k->params[fn];
        c->n_refs = 0; /* "$ref"s are local to each function's schema */
        size_t old = path_push_i(c, "(function %zu)", (size_t)fn);
        st = compile(c, k->params[fn], &ids[j]);
        path_pop(c, old);
        c->root = NULL;
        c->n_refs = 0;
    }
    if (!st) st = add_alts(c, sw, ids, n_lits);
    free(ids);
    if (st) return st;
    g->props[g->nodes[*id].first + 1].value = sw;
    g->nodes[*id].tagged = 1;
    return RAGD_OK;
}

/* A raw call: GN_SEQ [name literal, raw_sep literal, GN_SWITCH of the arguments], tagged by the name. */
static ragd_status compile_raw_call(cctx *c, const ragd_grammar_calls *k, uint32_t *id) {
    ragd_grammar *g = c->g;
    uint32_t parts[3], sw;
    ragd_status st = words_node(c, k->names, k->n, &parts[0]);
    if (st) return st;
    uint32_t lit = parts[0], n_lits = g->nodes[lit].count;
    if (n_lits != (uint32_t)k->n) {
        for (int i = 0; i < k->n; i++)
            for (int j = 0; j < i; j++)
                if (!strcmp(k->names[i], k->names[j]))
                    return ragd_err_set(c->err, RAGD_EINVAL, "tool calls: the function name \"%s\" appears twice (%d and %d)",
                                        k->names[i], j, i);
        return ragd_err_set(c->err, RAGD_EINVAL, "tool calls: duplicate function names");
    }
    for (int i = 0; i < k->n; i++)
        if (!k->names[i][0]) return ragd_err_set(c->err, RAGD_EINVAL, "tool calls: an empty function name");
    if ((st = words_node(c, &k->raw_sep, 1, &parts[1])) || (st = new_node(c, GN_SWITCH, &sw))) return st;
    uint32_t *ids = malloc((size_t)k->n * sizeof *ids);
    if (!ids) return oom(c);
    for (uint32_t j = 0; j < n_lits && !st; j++) { /* each function's parameters, in the literals' sorted order */
        const glit *L = &g->lits[g->nodes[lit].first + j];
        int fn = -1;
        for (int i = 0; i < k->n && fn < 0; i++)
            if (strlen(k->names[i]) == L->len && !memcmp(k->names[i], g->strs.data + L->off, L->len)) fn = i;
        RAGD_ASSERT(fn >= 0);
        c->root = k->params[fn];
        c->n_refs = 0;
        size_t old = path_push_i(c, "(function %zu)", (size_t)fn);
        st = compile(c, k->params[fn], &ids[j]);
        path_pop(c, old);
        c->root = NULL;
        c->n_refs = 0;
    }
    if (!st) st = add_alts(c, sw, ids, n_lits);
    free(ids);
    parts[2] = sw;
    if (!st) st = new_node(c, GN_SEQ, id);
    if (!st) st = add_alts(c, *id, parts, 3);
    if (st) return st;
    g->nodes[*id].tagged = 1;
    g->nodes[*id].additional = 0; /* the name is element 0 */
    return RAGD_OK;
}

/* A GN_SEQ of raw text before (NULL or "": none), the value node, raw text after. */
static ragd_status seq_node(cctx *c, const char *before, uint32_t value, const char *after, uint32_t *id) {
    uint32_t ids[3], n = 0;
    ragd_status st = RAGD_OK;
    const char *parts[2] = {before, after};
    for (int i = 0; i < 2 && !st; i++) {
        if (i == 1) ids[n++] = value;
        if (!parts[i] || !*parts[i]) continue;
        st = words_node(c, &parts[i], 1, &ids[n]);
        n++;
    }
    if (!st) st = new_node(c, GN_SEQ, id);
    if (!st) st = add_alts(c, *id, ids, n);
    return st;
}

ragd_status ragd_grammar_compile_calls(const ragd_grammar_calls *k, ragd_grammar **out, ragd_err *err) {
    bool raw = k->raw_sep && *k->raw_sep;
    if (k->n < 1 || (!raw && (!k->name_key || !k->args_key || !strcmp(k->name_key, k->args_key))))
        return ragd_err_set(err, RAGD_EINVAL, "tool calls: need at least one function and two distinct keys");
    if (raw && k->max_items != 0) return ragd_err_set(err, RAGD_EINVAL, "tool calls: raw calls are not array items");
    if (k->n_markers < 0 || k->n_markers > RAGD_GRAMMAR_MAX_MARKERS)
        return ragd_err_set(err, RAGD_EINVAL, "tool calls: %d marker tokens (at most %d)", k->n_markers, RAGD_GRAMMAR_MAX_MARKERS);
    for (int i = 0; i < k->n_markers; i++)
        if (k->marker_ids[i] < 0 || !k->marker_texts[i][0] || strlen(k->marker_texts[i]) >= 32)
            return ragd_err_set(err, RAGD_EINVAL, "tool calls: marker token %d is not an id with a text of 1 to 31 bytes", i);
    cctx c;
    ragd_status st = grammar_new(&c, out, err);
    uint32_t obj = 0;
    if (!st) st = raw ? compile_raw_call(&c, k, &obj) : compile_call_object(&c, k, &obj);
    if (!st) {
        c.g->n_mk = k->n_markers;
        for (int i = 0; i < k->n_markers; i++) {
            c.g->mk_id[i] = k->marker_ids[i];
            c.g->mk_len[i] = (uint8_t)strlen(k->marker_texts[i]);
            memcpy(c.g->mk_text[i], k->marker_texts[i], c.g->mk_len[i]);
        }
    }
    if (!st && k->max_items == 0) c.g->root = obj;
    else if (!st) {
        uint32_t arr;
        st = new_node(&c, GN_ARRAY, &arr);
        if (!st) {
            c.g->nodes[arr].items = obj;
            c.g->nodes[arr].min = 1;
            c.g->nodes[arr].max = k->max_items < 0 ? GN_NONE : (uint32_t)k->max_items;
            c.g->root = arr;
        }
    }
    bool more = k->more && *k->more && k->max_items == 0 && k->max_more != 0;
    if (!st && ((k->prefix && *k->prefix) || (k->suffix && *k->suffix) || more)) { /* raw text around the value */
        uint32_t seq, tail = GN_NONE, val = c.g->root;
        st = seq_node(&c, k->prefix, val, k->suffix, &seq);
        if (!st && more) st = seq_node(&c, k->more, val, k->suffix, &tail);
        if (!st) {
            c.g->nodes[seq].items = tail; /* further calls, each "more" {call} "suffix" */
            c.g->nodes[seq].max = more && k->max_more > 0 && k->max_more < (int)GN_EXTRA ? (uint32_t)k->max_more : GN_NONE;
            c.g->root = seq;
        }
    }
    if (!st) st = finish(&c);
    free(c.refs);
    if (!st) grammar_fingerprint_set(c.g);
    if (st) {
        ragd_grammar_free(c.g);
        return st;
    }
    *out = c.g;
    return RAGD_OK;
}

void ragd_grammar_free(ragd_grammar *g) {
    if (!g) return;
    free(g->nodes);
    free(g->props);
    free(g->sorted);
    free(g->alts);
    free(g->lits);
    ragd_buf_free(&g->strs);
    free(g);
}

/* Two independent 64-bit FNV-1a-style hashes (different offsets and primes) over every array that
 * decides the language; padding bytes are never hashed (fields are fed one by one). */
typedef struct fp_acc {
    uint64_t a, b;
} fp_acc;
static void fp_u64(fp_acc *h, uint64_t v) {
    for (int i = 0; i < 8; i++, v >>= 8) {
        h->a = (h->a ^ (v & 0xFF)) * 0x100000001B3ull;
        h->b = (h->b ^ (v & 0xFF)) * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    }
}
void grammar_fingerprint_set(ragd_grammar *g) {
    fp_acc h = {0xCBF29CE484222325ull, 0x84222325CBF29CE4ull};
    fp_u64(&h, g->n_nodes);
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const gnode *n = &g->nodes[i];
        fp_u64(&h, (uint64_t)n->kind | (uint64_t)n->integer << 8 | (uint64_t)n->mindepth << 16 | (uint64_t)n->tagged << 24);
        fp_u64(&h, (uint64_t)n->first << 32 | n->count);
        fp_u64(&h, (uint64_t)n->sorted << 32 | (uint32_t)n->last_required);
        fp_u64(&h, (uint64_t)n->additional << 32 | n->items);
        fp_u64(&h, (uint64_t)n->min << 32 | n->max);
    }
    fp_u64(&h, (uint64_t)g->n_mk);
    for (int i = 0; i < g->n_mk; i++) {
        fp_u64(&h, (uint64_t)(uint32_t)g->mk_id[i] << 8 | g->mk_len[i]);
        for (int j = 0; j < g->mk_len[i]; j++) fp_u64(&h, (uint8_t)g->mk_text[i][j]);
    }
    fp_u64(&h, g->n_props);
    for (uint32_t i = 0; i < g->n_props; i++) {
        const gprop *q = &g->props[i];
        fp_u64(&h, (uint64_t)q->name_off << 32 | q->name_len);
        fp_u64(&h, (uint64_t)q->value << 32 | q->next_req);
        fp_u64(&h, (uint64_t)q->required << 32 | g->sorted[i]);
    }
    fp_u64(&h, g->n_alts);
    for (uint32_t i = 0; i < g->n_alts; i++) fp_u64(&h, g->alts[i]);
    fp_u64(&h, g->n_lits);
    for (uint32_t i = 0; i < g->n_lits; i++) fp_u64(&h, (uint64_t)g->lits[i].off << 32 | g->lits[i].len);
    fp_u64(&h, g->strs.len);
    for (size_t i = 0; i < g->strs.len; i++) fp_u64(&h, (unsigned char)g->strs.data[i]);
    fp_u64(&h, (uint64_t)g->root << 32 | g->any);
    g->fp[0] = h.a;
    g->fp[1] = h.b;
}

void ragd_grammar_fingerprint(const ragd_grammar *g, uint64_t fp[2]) {
    fp[0] = g->fp[0];
    fp[1] = g->fp[1];
}
