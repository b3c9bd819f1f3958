/* jinja_builtins.c — what chat templates call: Jinja's filters (tojson as transformers defines it, trim,
 * length, items, join, default, selectattr, map, ...), tests (defined, none, string, mapping, ...), the
 * Python methods the sandbox allows on str / dict / list (startswith, split, strip, items, get, ...), and
 * the globals transformers adds (raise_exception, strftime_now, dict, namespace) plus range.
 * Mutating methods (list.append, dict.update, ...) are not provided: transformers' immutable sandbox
 * refuses them too, so a template using them fails in both.
 *
 * Contract: every builtin checks its argument types and returns JJ_ERR with a message (never aborts);
 * results are allocated in the render arena.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <utf8proc.h>

#include "tasks/jinja.h"

struct jj_func {
    int id;
    jj_val self;
};

/* ---- argument helpers ---- */

typedef struct args {
    const jj_val *pos;
    int np;
    jj_str *const *kwn;
    const jj_val *kwv;
    int nk;
} args;

/* argument `name` at position i (after the operand), or its default */
static jj_val arg(const args *a, int i, const char *name, jj_val def) {
    for (int k = 0; k < a->nk; k++)
        if (!strcmp(a->kwn[k]->p, name)) return a->kwv[k];
    return i < a->np ? a->pos[i] : def;
}
static bool has_arg(const args *a, int i, const char *name) {
    for (int k = 0; k < a->nk; k++)
        if (!strcmp(a->kwn[k]->p, name)) return true;
    return i < a->np;
}

static jj_val strv(jj_ctx *c, const char *p, size_t n) { return jj_strv(jj_str_new(c->a, p, n)); }
static jj_rc ret_buf(jj_ctx *c, ragd_buf *b, jj_val *out) {
    *out = strv(c, b->data ? b->data : "", b->len);
    ragd_buf_free(b);
    return out->t == JJ_STR ? JJ_OK : jj_oom(c);
}
static jj_val listv(jj_list *l) {
    jj_val v = {.t = l ? JJ_LIST : JJ_UNDEF};
    v.l = l;
    return v;
}
static jj_val dictv(jj_dict *d) {
    jj_val v = {.t = d ? JJ_DICT : JJ_UNDEF};
    v.d = d;
    return v;
}
static jj_rc need_str(jj_ctx *c, jj_val v, const char *what) {
    if (v.t == JJ_STR) return JJ_OK;
    if (v.t == JJ_UNDEF && v.s) return jj_fail(c, "'%s' is undefined", v.s->p);
    return jj_fail(c, "%s: expected a string, got %s", what, jj_type_name(v));
}

/* ---- string helpers ---- */

static bool in_chars(const jj_str *chars, const unsigned char *p, size_t l) {
    for (size_t i = 0; i < chars->n;) {
        size_t e = i + 1;
        while (e < chars->n && ((unsigned char)chars->p[e] & 0xc0) == 0x80) e++;
        if (e - i == l && !memcmp(chars->p + i, p, l)) return true;
        i = e;
    }
    return false;
}
static size_t char_len_at(const unsigned char *p, size_t n) {
    size_t e = 1;
    while (e < n && (p[e] & 0xc0) == 0x80) e++;
    return e;
}
static size_t char_len_back(const unsigned char *p, size_t n) {
    size_t l = 1;
    while (l < n && (p[n - l] & 0xc0) == 0x80) l++;
    return l;
}

/* Python str.strip / lstrip / rstrip (chars NULL: whitespace) */
static jj_val strip(jj_ctx *c, const jj_str *s, const jj_str *chars, bool left, bool right) {
    const unsigned char *p = (const unsigned char *)s->p;
    size_t a = 0, n = s->n, l;
    while (left && a < n) {
        if (chars) {
            l = char_len_at(p + a, n - a);
            if (!in_chars(chars, p + a, l)) break;
        } else if ((l = jj_space_len(p + a, n - a)) == 0) break;
        a += l;
    }
    while (right && n > a) {
        if (chars) {
            l = char_len_back(p, n);
            if (!in_chars(chars, p + n - l, l)) break;
        } else if ((l = jj_space_len_back(p, n)) == 0) break;
        n -= l;
    }
    return strv(c, s->p + a, n - a);
}

/* case mapping per code point; mode 0 lower, 1 upper */
static void map_case(ragd_buf *b, const char *p, size_t n, int mode) {
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (l <= 0) {
            ragd_buf_putc(b, p[i++]);
            continue;
        }
        if (mode == 0 && cp == 0x130) { /* Python: 'İ'.lower() == 'i̇' */
            ragd_buf_puts(b, "i\xcc\x87");
        } else if (mode == 1 && cp == 0xdf) {
            ragd_buf_puts(b, "SS");
        } else {
            utf8proc_int32_t m = mode ? utf8proc_toupper(cp) : utf8proc_tolower(cp);
            utf8proc_uint8_t u[4];
            utf8proc_ssize_t k = utf8proc_encode_char(m, u);
            ragd_buf_append(b, u, (size_t)k);
        }
        i += (size_t)l;
    }
}

static bool is_alpha_cp(utf8proc_int32_t cp) {
    utf8proc_category_t k = utf8proc_category(cp);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

/* Jinja's title (mode 0: words start after [-\s({[<]) / capitalize (mode 1) / str.title (mode 2) */
static jj_val titlecase(jj_ctx *c, const jj_str *s, int mode) {
    ragd_buf b = {0};
    bool start = true;
    for (size_t i = 0; i < s->n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)s->p + i, (utf8proc_ssize_t)(s->n - i), &cp);
        if (l <= 0) l = 1, cp = (unsigned char)s->p[i];
        map_case(&b, s->p + i, (size_t)l, start ? 1 : 0);
        if (mode == 1) start = false;
        else if (mode == 0) start = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' ||
                                     jj_space_len((const unsigned char *)s->p + i, (size_t)l);
        else start = !is_alpha_cp(cp);
        i += (size_t)l;
    }
    jj_val v;
    return ret_buf(c, &b, &v) ? jj_undef(NULL) : v;
}

static jj_val replace(jj_ctx *c, const jj_str *s, const jj_str *old, const jj_str *new_, int64_t count) {
    ragd_buf b = {0};
    size_t i = 0;
    int64_t done = 0;
    if (old->n == 0) { /* Python inserts new between every character */
        while (i <= s->n && (count < 0 || done < count)) {
            ragd_buf_append(&b, new_->p, new_->n);
            done++;
            if (i == s->n) {
                i++;
                break;
            }
            size_t l = char_len_at((const unsigned char *)s->p + i, s->n - i);
            ragd_buf_append(&b, s->p + i, l);
            i += l;
            if (b.len > JJ_MAX_OUTPUT) break;
        }
        if (i < s->n) ragd_buf_append(&b, s->p + i, s->n - i);
    } else {
        while (i < s->n && (count < 0 || done < count)) {
            const char *h = memmem(s->p + i, s->n - i, old->p, old->n);
            if (!h) break;
            ragd_buf_append(&b, s->p + i, (size_t)(h - (s->p + i)));
            ragd_buf_append(&b, new_->p, new_->n);
            i = (size_t)(h - s->p) + old->n;
            done++;
            if (b.len > JJ_MAX_OUTPUT) break;
        }
        if (i < s->n) ragd_buf_append(&b, s->p + i, s->n - i);
    }
    if (b.len > JJ_MAX_OUTPUT) {
        ragd_buf_free(&b);
        jj_oom(c);
        return jj_undef(NULL);
    }
    jj_val v;
    return ret_buf(c, &b, &v) ? jj_undef(NULL) : v;
}

/* Python str.split(sep, maxsplit) / rsplit; sep NULL: runs of whitespace */
static jj_rc split(jj_ctx *c, const jj_str *s, const jj_str *sep, int64_t maxsplit, bool right, jj_val *out) {
    jj_list *l = jj_list_new(c->a, 0);
    if (!l) return jj_oom(c);
    *out = listv(l);
    const unsigned char *p = (const unsigned char *)s->p;
    if (sep && sep->n == 0) return jj_fail(c, "empty separator");
    if (!right) {
        size_t i = 0, n = s->n;
        int64_t done = 0;
        if (!sep) {
            for (;;) {
                size_t k;
                while (i < n && (k = jj_space_len(p + i, n - i))) i += k;
                if (i >= n) break;
                if (maxsplit >= 0 && done >= maxsplit) { /* the rest, trailing whitespace kept */
                    if (!jj_list_push(c->a, l, strv(c, s->p + i, n - i))) return jj_oom(c);
                    break;
                }
                size_t j = i;
                while (j < n && !jj_space_len(p + j, n - j)) j += char_len_at(p + j, n - j);
                if (!jj_list_push(c->a, l, strv(c, s->p + i, j - i))) return jj_oom(c);
                done++;
                i = j;
            }
            return JJ_OK;
        }
        for (;;) {
            const char *h = (maxsplit < 0 || done < maxsplit) ? memmem(s->p + i, n - i, sep->p, sep->n) : NULL;
            size_t e = h ? (size_t)(h - s->p) : n;
            if (!jj_list_push(c->a, l, strv(c, s->p + i, e - i))) return jj_oom(c);
            if (!h) break;
            i = e + sep->n;
            done++;
            if (jj_step(c)) return JJ_ERR;
        }
        return JJ_OK;
    }
    /* rsplit: collect from the right, then reverse */
    size_t e = s->n;
    int64_t done = 0;
    if (!sep) {
        for (;;) {
            size_t k;
            while (e > 0 && (k = jj_space_len_back(p, e))) e -= k;
            if (e == 0) break;
            if (maxsplit >= 0 && done >= maxsplit) { /* the rest, leading whitespace kept */
                if (!jj_list_push(c->a, l, strv(c, s->p, e))) return jj_oom(c);
                break;
            }
            size_t j = e;
            while (j > 0 && !jj_space_len_back(p, j)) j -= char_len_back(p, j);
            if (!jj_list_push(c->a, l, strv(c, s->p + j, e - j))) return jj_oom(c);
            done++;
            e = j;
        }
    } else {
        for (;;) {
            const char *h = NULL;
            if ((maxsplit < 0 || done < maxsplit) && e >= sep->n)
                for (size_t q = e - sep->n + 1; q-- > 0;)
                    if (!memcmp(s->p + q, sep->p, sep->n)) {
                        h = s->p + q;
                        break;
                    }
            size_t a = h ? (size_t)(h - s->p) + sep->n : 0;
            if (!jj_list_push(c->a, l, strv(c, s->p + a, e - a))) return jj_oom(c);
            if (!h) break;
            e = (size_t)(h - s->p);
            done++;
            if (jj_step(c)) return JJ_ERR;
        }
    }
    for (size_t i = 0; i < l->n / 2; i++) {
        jj_val t = l->v[i];
        l->v[i] = l->v[l->n - 1 - i];
        l->v[l->n - 1 - i] = t;
    }
    return JJ_OK;
}

/* splitlines() separators: \n \r \r\n \v \f \x1c \x1d \x1e \x85 \u2028 \u2029; returns length of the
 * line break at p (0 if none) */
static size_t linebreak_len(const unsigned char *p, size_t n) {
    if (!n) return 0;
    if (p[0] == '\r') return n > 1 && p[1] == '\n' ? 2 : 1;
    if (p[0] == '\n' || p[0] == '\v' || p[0] == '\f' || (p[0] >= 0x1c && p[0] <= 0x1e)) return 1;
    if (n >= 2 && p[0] == 0xc2 && p[1] == 0x85) return 2;
    if (n >= 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) return 3;
    return 0;
}

static jj_rc splitlines(jj_ctx *c, const jj_str *s, jj_list **out) {
    jj_list *l = jj_list_new(c->a, 0);
    if (!l) return jj_oom(c);
    const unsigned char *p = (const unsigned char *)s->p;
    size_t i = 0, start = 0;
    while (i < s->n) {
        size_t k = linebreak_len(p + i, s->n - i);
        if (!k) {
            i++;
            continue;
        }
        if (!jj_list_push(c->a, l, strv(c, s->p + start, i - start))) return jj_oom(c);
        i += k;
        start = i;
    }
    if (start < s->n && !jj_list_push(c->a, l, strv(c, s->p + start, s->n - start))) return jj_oom(c);
    *out = l;
    return JJ_OK;
}

static bool str_has_prefix(const jj_str *s, const jj_str *x, bool suffix) {
    if (x->n > s->n) return false;
    return !memcmp(suffix ? s->p + s->n - x->n : s->p, x->p, x->n);
}

/* ---- filters ---- */

#define FILTER(name) \
    static jj_rc f_##name(jj_ctx *c, jj_val v, const jj_val *pos, int np, jj_str *const *kwn, const jj_val *kwv, int nk, jj_val *out)
#define ARGS args A = {pos, np, kwn, kwv, nk}; (void)A

FILTER(tojson) {
    ARGS;
    jj_val ea = arg(&A, 0, "ensure_ascii", jj_bool(false)), ind = arg(&A, 1, "indent", jj_none()),
           sep = arg(&A, 2, "separators", jj_none()), sk = arg(&A, 3, "sort_keys", jj_bool(false));
    int indent = -1;
    if (ind.t == JJ_INT) indent = ind.i < 0 ? 0 : ind.i > 64 ? 64 : (int)ind.i;
    else if (ind.t != JJ_NONE) return jj_fail(c, "tojson: indent must be an integer");
    const char *isep = NULL, *ksep = NULL;
    if (sep.t == JJ_LIST && sep.l->n == 2 && sep.l->v[0].t == JJ_STR && sep.l->v[1].t == JJ_STR) {
        isep = sep.l->v[0].s->p;
        ksep = sep.l->v[1].s->p;
    } else if (sep.t != JJ_NONE) return jj_fail(c, "tojson: separators must be a pair of strings");
    ragd_buf b = {0};
    if (!jj_json_dumps(c, &b, v, jj_truthy(ea), indent, isep, ksep, jj_truthy(sk))) {
        ragd_buf_free(&b);
        return JJ_ERR;
    }
    return ret_buf(c, &b, out);
}

FILTER(trim) {
    ARGS;
    jj_val ch = arg(&A, 0, "chars", jj_none());
    jj_str *s = jj_to_str(c, v);
    if (!s) return JJ_ERR;
    if (ch.t != JJ_NONE && need_str(c, ch, "trim")) return JJ_ERR;
    *out = strip(c, s, ch.t == JJ_STR ? ch.s : NULL, true, true);
    return out->t == JJ_STR ? JJ_OK : jj_oom(c);
}

FILTER(length) {
    switch (v.t) {
    case JJ_UNDEF: *out = jj_int(0); return JJ_OK;
    case JJ_STR: *out = jj_int((int64_t)jj_utf8_len(v.s->p, v.s->n)); return JJ_OK;
    case JJ_LIST: *out = jj_int((int64_t)v.l->n); return JJ_OK;
    case JJ_DICT: *out = jj_int((int64_t)v.d->n); return JJ_OK;
    default: return jj_fail(c, "object of type '%s' has no len()", jj_type_name(v));
    }
}

static jj_rc items_of(jj_ctx *c, jj_val v, jj_val *out) {
    jj_list *l = jj_list_new(c->a, v.t == JJ_DICT ? v.d->n : 0);
    if (!l) return jj_oom(c);
    *out = listv(l);
    if (v.t == JJ_UNDEF) return JJ_OK;
    if (v.t != JJ_DICT || v.d->ns) return jj_fail(c, "can only get item pairs from a mapping");
    for (size_t i = 0; i < v.d->n; i++) {
        jj_list *p = jj_list_new(c->a, 2);
        if (!p) return jj_oom(c);
        p->tuple = true;
        p->v[0] = jj_strv(v.d->k[i]);
        p->v[1] = v.d->v[i];
        p->n = 2;
        l->v[l->n++] = listv(p);
    }
    return JJ_OK;
}

FILTER(items) { return items_of(c, v, out); }

static jj_rc attr_of(jj_ctx *c, jj_val item, jj_val attr, jj_val *out) {
    if (attr.t == JJ_INT) {
        if (item.t == JJ_LIST && attr.i >= 0 && (size_t)attr.i < item.l->n) *out = item.l->v[attr.i];
        else *out = jj_undef(NULL);
        return JJ_OK;
    }
    if (attr.t != JJ_STR) return jj_fail(c, "attribute names must be strings");
    /* dotted paths "a.b" as Jinja's make_attrgetter */
    const char *p = attr.s->p, *end = p + attr.s->n;
    jj_val cur = item;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = dot ? (size_t)(dot - p) : (size_t)(end - p);
        if (cur.t == JJ_UNDEF) return *out = cur, JJ_OK;
        jj_val *x = cur.t == JJ_DICT ? jj_dict_get(cur.d, p, n) : NULL;
        if (x) cur = *x;
        else {
            jj_str *nm = jj_str_new(c->a, p, n);
            if (!nm) return jj_oom(c);
            if (jj_getattr(c, cur, nm, &cur)) return JJ_ERR;
        }
        if (!dot) break;
        p = dot + 1;
    }
    *out = cur;
    return JJ_OK;
}

FILTER(join) {
    ARGS;
    jj_val d = arg(&A, 0, "d", jj_none()), at = arg(&A, 1, "attribute", jj_none());
    jj_list *l;
    if (jj_iterate(c, v, &l)) return JJ_ERR;
    ragd_buf b = {0};
    for (size_t i = 0; i < l->n; i++) {
        if (i && d.t != JJ_NONE) jj_str_of(&b, d);
        jj_val x = l->v[i];
        if (at.t != JJ_NONE && attr_of(c, x, at, &x)) {
            ragd_buf_free(&b);
            return JJ_ERR;
        }
        jj_str_of(&b, x);
        if (b.len > JJ_MAX_OUTPUT) {
            ragd_buf_free(&b);
            return jj_oom(c);
        }
    }
    return ret_buf(c, &b, out);
}

FILTER(default) {
    ARGS;
    jj_val d = arg(&A, 0, "default_value", strv(c, "", 0)), bo = arg(&A, 1, "boolean", jj_bool(false));
    *out = v.t == JJ_UNDEF || (jj_truthy(bo) && !jj_truthy(v)) ? d : v;
    return JJ_OK;
}

static jj_rc case_filter(jj_ctx *c, jj_val v, int mode, jj_val *out) {
    jj_str *s = jj_to_str(c, v);
    if (!s) return JJ_ERR;
    ragd_buf b = {0};
    map_case(&b, s->p, s->n, mode);
    return ret_buf(c, &b, out);
}
FILTER(upper) { return case_filter(c, v, 1, out); }
FILTER(lower) { return case_filter(c, v, 0, out); }
FILTER(capitalize) {
    jj_str *s = jj_to_str(c, v);
    if (!s) return JJ_ERR;
    *out = titlecase(c, s, 1);
    return out->t == JJ_STR ? JJ_OK : jj_oom(c);
}
FILTER(title) {
    jj_str *s = jj_to_str(c, v);
    if (!s) return JJ_ERR;
    *out = titlecase(c, s, 0);
    return out->t == JJ_STR ? JJ_OK : jj_oom(c);
}

FILTER(replace) {
    ARGS;
    jj_val o = arg(&A, 0, "old", jj_undef(NULL)), n = arg(&A, 1, "new", jj_undef(NULL)), k = arg(&A, 2, "count", jj_none());
    jj_str *s = jj_to_str(c, v), *os = s ? jj_to_str(c, o) : NULL, *ns = os ? jj_to_str(c, n) : NULL;
    if (!ns) return JJ_ERR;
    *out = replace(c, s, os, ns, k.t == JJ_INT ? k.i : -1);
    return out->t == JJ_STR ? JJ_OK : jj_oom(c);
}

FILTER(list) {
    jj_list *l, *r;
    if (jj_iterate(c, v, &l)) return JJ_ERR;
    if (!(r = jj_list_new(c->a, l->n))) return jj_oom(c);
    if (l->n) memcpy(r->v, l->v, l->n * sizeof *r->v); /* an empty list has no storage (v NULL) */
    r->n = l->n;
    *out = listv(r);
    return JJ_OK;
}

FILTER(string) {
    jj_str *s = jj_to_str(c, v);
    if (!s) return JJ_ERR;
    *out = jj_strv(s);
    return JJ_OK;
}

FILTER(int) {
    ARGS;
    jj_val d = arg(&A, 0, "default", jj_int(0));
    if (v.t == JJ_INT) *out = v;
    else if (v.t == JJ_BOOL) *out = jj_int(v.b);
    else if (v.t == JJ_FLOAT && isfinite(v.f) && fabs(v.f) < 9.2e18) *out = jj_int((int64_t)v.f);
    else if (v.t == JJ_STR) {
        char *e;
        errno = 0;
        long long x = strtoll(v.s->p, &e, 10);
        if (e != v.s->p && !*e && !errno) *out = jj_int(x);
        else {
            double f = strtod(v.s->p, &e);
            *out = e != v.s->p && !*e && isfinite(f) && fabs(f) < 9.2e18 ? jj_int((int64_t)f) : d;
        }
    } else *out = d;
    return JJ_OK;
}

FILTER(float) {
    ARGS;
    jj_val d = arg(&A, 0, "default", jj_float(0));
    if (v.t == JJ_FLOAT) *out = v;
    else if (v.t == JJ_INT || v.t == JJ_BOOL) *out = jj_float(v.t == JJ_INT ? (double)v.i : v.b);
    else if (v.t == JJ_STR) {
        char *e;
        double f = strtod(v.s->p, &e);
        *out = e != v.s->p && !*e ? jj_float(f) : d;
    } else *out = d;
    return JJ_OK;
}

FILTER(abs) {
    if (v.t == JJ_INT && v.i != INT64_MIN) *out = jj_int(v.i < 0 ? -v.i : v.i);
    else if (v.t == JJ_BOOL) *out = jj_int(v.b);
    else if (v.t == JJ_FLOAT) *out = jj_float(fabs(v.f));
    else return jj_fail(c, "bad operand type for abs(): '%s'", jj_type_name(v));
    return JJ_OK;
}

FILTER(round) {
    ARGS;
    jj_val p = arg(&A, 0, "precision", jj_int(0)), m = arg(&A, 1, "method", jj_none());
    if (v.t != JJ_INT && v.t != JJ_FLOAT && v.t != JJ_BOOL) return jj_fail(c, "round: expected a number");
    double x = v.t == JJ_FLOAT ? v.f : v.t == JJ_INT ? (double)v.i : v.b, s = pow(10, p.t == JJ_INT ? (double)p.i : 0);
    const char *method = m.t == JJ_STR ? m.s->p : "common";
    double r = !strcmp(method, "ceil") ? ceil(x * s) / s : !strcmp(method, "floor") ? floor(x * s) / s : nearbyint(x * s) / s;
    *out = jj_float(r);
    return JJ_OK;
}

FILTER(first) {
    jj_list *l;
    if (jj_iterate(c, v, &l)) return JJ_ERR;
    *out = l->n ? l->v[0] : jj_undef(NULL);
    return JJ_OK;
}

FILTER(last) {
    jj_list *l;
    if (jj_iterate(c, v, &l)) return JJ_ERR;
    *out = l->n ? l->v[l->n - 1] : jj_undef(NULL);
    return JJ_OK;
}

FILTER(reverse) {
    if (v.t == JJ_STR) {
        ragd_buf b = {0};
        const unsigned char *p = (const unsigned char *)v.s->p;
        for (size_t e = v.s->n; e > 0;) {
            size_t l = char_len_back(p, e);
            ragd_buf_append(&b, p + e - l, l);
            e -= l;
        }
        return ret_buf(c, &b, out);
    }
    jj_list *l, *r;
    if (jj_iterate(c, v, &l)) return JJ_ERR;
    if (!(r = jj_list_new(c->a, l->n))) return jj_oom(c);
    for (size_t i = 0; i < l->n; i++) r->v[i] = l->v[l->n - 1 - i];
    r->n = l->n;
    *out = listv(r);
    return JJ_OK;
}

FILTER(safe) {
    if (v.t == JJ_STR && v.s->safe) return *out = v, JJ_OK;
    jj_str *s = jj_to_str(c, v);
    if (!s || !(s = jj_str_new(c->a, s->p, s->n))) return jj_oom(c);
    s->safe = true;
    *out = jj_strv(s);
    return JJ_OK;
}

FILTER(escape) {
    if (v.t == JJ_STR && v.s->safe) return *out = v, JJ_OK;
    jj_str *s = jj_to_str(c, v);
    if (!s) return JJ_ERR;
    ragd_buf b = {0};
    jj_html_escape(&b, s->p, s->n);
    if (ret_buf(c, &b, out)) return JJ_ERR;
    out->s->safe = true;
    return JJ_OK;
}

FILTER(indent) {
    ARGS;
    jj_val w = arg(&A, 0, "width", jj_int(4)), first = arg(&A, 1, "first", jj_bool(false)), blank = arg(&A, 2, "blank", jj_bool(false));
    jj_str *s = jj_to_str(c, v);
    if (!s) return JJ_ERR;
    ragd_buf ind = {0}, b = {0};
    if (w.t == JJ_STR) ragd_buf_append(&ind, w.s->p, w.s->n);
    else if (w.t == JJ_INT)
        for (int64_t i = 0; i < w.i && i < 256; i++) ragd_buf_putc(&ind, ' ');
    ragd_buf_putc(&ind, 0);
    ind.len--;
    /* s + "\n", split into lines */
    ragd_buf tmp = {0};
    ragd_buf_append(&tmp, s->p, s->n);
    ragd_buf_putc(&tmp, '\n');
    jj_str *t = jj_str_new(c->a, tmp.data, tmp.len);
    ragd_buf_free(&tmp);
    jj_list *lines;
    if (!t) {
        ragd_buf_free(&ind);
        return jj_oom(c);
    }
    if (splitlines(c, t, &lines)) {
        ragd_buf_free(&ind);
        return JJ_ERR;
    }
    for (size_t i = 0; i < lines->n; i++) {
        jj_str *ln = lines->v[i].s;
        if (i) ragd_buf_putc(&b, '\n');
        if (i && (jj_truthy(blank) || ln->n)) ragd_buf_append(&b, ind.data, ind.len);
        ragd_buf_append(&b, ln->p, ln->n);
    }
    if (jj_truthy(first)) {
        ragd_buf r = {0};
        ragd_buf_append(&r, ind.data, ind.len);
        ragd_buf_append(&r, b.data ? b.data : "", b.len);
        ragd_buf_free(&b);
        b = r;
    }
    ragd_buf_free(&ind);
    return ret_buf(c, &b, out);
}

FILTER(center) {
    ARGS;
    jj_val w = arg(&A, 0, "width", jj_int(80));
    jj_str *s = jj_to_str(c, v);
    if (!s) return JJ_ERR;
    int64_t len = (int64_t)jj_utf8_len(s->p, s->n), width = w.t == JJ_INT ? w.i : 80;
    if (width > 100000) width = 100000;
    ragd_buf b = {0};
    int64_t pad = width > len ? width - len : 0, left = pad / 2 + (pad & width & 1);
    for (int64_t i = 0; i < left; i++) ragd_buf_putc(&b, ' ');
    ragd_buf_append(&b, s->p, s->n);
    for (int64_t i = 0; i < pad - left; i++) ragd_buf_putc(&b, ' ');
    return ret_buf(c, &b, out);
}

FILTER(wordcount) {
    jj_str *s = jj_to_str(c, v);
    if (!s) return JJ_ERR;
    int64_t n = 0;
    bool in = false;
    for (size_t i = 0; i < s->n; i++) {
        unsigned char ch = (unsigned char)s->p[i];
        bool w = ch >= 0x80 || ch == '_' || (ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z');
        if (w && !in) n++;
        in = w;
    }
    *out = jj_int(n);
    return JJ_OK;
}

FILTER(attr) {
    ARGS;
    jj_val name = arg(&A, 0, "name", jj_undef(NULL));
    if (need_str(c, name, "attr")) return JJ_ERR;
    if (v.t == JJ_UNDEF) return jj_fail(c, "attr: the value is undefined");
    return jj_getattr(c, v, name.s, out);
}

/* key of an item for sort/unique/min/max: attribute and case folding */
static jj_rc sort_key(jj_ctx *c, jj_val x, jj_val attr, bool cs, jj_val *key) {
    if (attr.t != JJ_NONE && attr.t != JJ_UNDEF) {
        if (attr_of(c, x, attr, &x)) return JJ_ERR;
    }
    if (!cs && x.t == JJ_STR) return case_filter(c, x, 0, key);
    *key = x;
    return JJ_OK;
}

typedef struct keyed { jj_val key, v; size_t i; } keyed;
static _Thread_local bool sort_failed; /* qsort's comparator has no context argument */
static int cmp_keyed(const void *x, const void *y) {
    const keyed *a = x, *b = y;
    int r;
    if (!jj_compare(a->key, b->key, &r)) {
        sort_failed = true;
        return 0;
    }
    if (r == 2) r = 0;
    return r ? r : (a->i > b->i) - (a->i < b->i); /* stable */
}

static jj_rc sorted(jj_ctx *c, jj_list *l, jj_val attr, bool cs, bool rev, jj_list **out) {
    keyed *k = malloc((l->n ? l->n : 1) * sizeof *k);
    if (!k) return jj_oom(c);
    for (size_t i = 0; i < l->n; i++) {
        k[i].v = l->v[i];
        k[i].i = i;
        if (sort_key(c, l->v[i], attr, cs, &k[i].key)) {
            free(k);
            return JJ_ERR;
        }
    }
    sort_failed = false;
    qsort(k, l->n, sizeof *k, cmp_keyed);
    bool failed = sort_failed;
    jj_list *r = jj_list_new(c->a, l->n);
    if (!r) {
        free(k);
        return jj_oom(c);
    }
    for (size_t i = 0; i < l->n; i++) r->v[i] = k[rev ? l->n - 1 - i : i].v;
    r->n = l->n;
    free(k);
    if (failed) return jj_fail(c, "sort: the items cannot be ordered");
    *out = r;
    return JJ_OK;
}

FILTER(sort) {
    ARGS;
    jj_val rev = arg(&A, 0, "reverse", jj_bool(false)), cs = arg(&A, 1, "case_sensitive", jj_bool(false)),
           at = arg(&A, 2, "attribute", jj_none());
    jj_list *l, *r;
    if (jj_iterate(c, v, &l) || sorted(c, l, at, jj_truthy(cs), jj_truthy(rev), &r)) return JJ_ERR;
    *out = listv(r);
    return JJ_OK;
}

FILTER(dictsort) {
    ARGS;
    jj_val cs = arg(&A, 0, "case_sensitive", jj_bool(false)), by = arg(&A, 1, "by", jj_none()),
           rev = arg(&A, 2, "reverse", jj_bool(false));
    jj_val it;
    if (items_of(c, v, &it)) return JJ_ERR;
    bool by_value = by.t == JJ_STR && !strcmp(by.s->p, "value");
    jj_list *r;
    if (sorted(c, it.l, jj_int(by_value ? 1 : 0), jj_truthy(cs), jj_truthy(rev), &r)) return JJ_ERR;
    *out = listv(r);
    return JJ_OK;
}

FILTER(unique) {
    ARGS;
    jj_val cs = arg(&A, 0, "case_sensitive", jj_bool(false)), at = arg(&A, 1, "attribute", jj_none());
    jj_list *l, *r, *keys;
    if (jj_iterate(c, v, &l)) return JJ_ERR;
    if (!(r = jj_list_new(c->a, 0)) || !(keys = jj_list_new(c->a, 0))) return jj_oom(c);
    for (size_t i = 0; i < l->n; i++) {
        jj_val k;
        if (jj_step(c) || sort_key(c, l->v[i], at, jj_truthy(cs), &k)) return JJ_ERR;
        bool seen = false;
        for (size_t j = 0; j < keys->n && !seen; j++) seen = jj_equal(keys->v[j], k);
        if (!seen && (!jj_list_push(c->a, keys, k) || !jj_list_push(c->a, r, l->v[i]))) return jj_oom(c);
    }
    *out = listv(r);
    return JJ_OK;
}

static jj_rc minmax(jj_ctx *c, jj_val v, const args *A, bool max, jj_val *out) {
    jj_val cs = arg(A, 0, "case_sensitive", jj_bool(false)), at = arg(A, 1, "attribute", jj_none());
    jj_list *l, *r;
    if (jj_iterate(c, v, &l) || sorted(c, l, at, jj_truthy(cs), false, &r)) return JJ_ERR;
    *out = r->n ? r->v[max ? r->n - 1 : 0] : jj_undef(NULL);
    return JJ_OK;
}
FILTER(min) { ARGS; return minmax(c, v, &A, false, out); }
FILTER(max) { ARGS; return minmax(c, v, &A, true, out); }

FILTER(sum) {
    ARGS;
    jj_val at = arg(&A, 0, "attribute", jj_none()), acc = arg(&A, 1, "start", jj_int(0));
    jj_list *l;
    if (jj_iterate(c, v, &l)) return JJ_ERR;
    for (size_t i = 0; i < l->n; i++) {
        jj_val x = l->v[i];
        if (at.t != JJ_NONE && attr_of(c, x, at, &x)) return JJ_ERR;
        bool xi = x.t == JJ_INT || x.t == JJ_BOOL, ai = acc.t == JJ_INT || acc.t == JJ_BOOL;
        if (!(xi || x.t == JJ_FLOAT) || !(ai || acc.t == JJ_FLOAT)) return jj_fail(c, "sum: unsupported operand types");
        if (xi && ai) {
            int64_t r;
            if (__builtin_add_overflow(acc.t == JJ_INT ? acc.i : acc.b, x.t == JJ_INT ? x.i : x.b, &r)) return jj_fail(c, "integer overflow");
            acc = jj_int(r);
        } else acc = jj_float((acc.t == JJ_FLOAT ? acc.f : (double)(acc.t == JJ_INT ? acc.i : acc.b)) +
                              (x.t == JJ_FLOAT ? x.f : (double)(x.t == JJ_INT ? x.i : x.b)));
    }
    *out = acc;
    return JJ_OK;
}

FILTER(batch) {
    ARGS;
    jj_val n = arg(&A, 0, "linecount", jj_int(1)), fill = arg(&A, 1, "fill_with", jj_none());
    if (n.t != JJ_INT || n.i < 1) return jj_fail(c, "batch: linecount must be a positive integer");
    jj_list *l, *r, *cur = NULL;
    if (jj_iterate(c, v, &l) || !(r = jj_list_new(c->a, 0))) return JJ_ERR;
    for (size_t i = 0; i < l->n; i++) {
        if (!cur || (int64_t)cur->n == n.i) {
            if (!(cur = jj_list_new(c->a, 0)) || !jj_list_push(c->a, r, listv(cur))) return jj_oom(c);
        }
        if (!jj_list_push(c->a, cur, l->v[i])) return jj_oom(c);
    }
    if (cur && has_arg(&A, 1, "fill_with"))
        while ((int64_t)cur->n < n.i)
            if (!jj_list_push(c->a, cur, fill)) return jj_oom(c);
    *out = listv(r);
    return JJ_OK;
}

/* select / reject / selectattr / rejectattr: attr_mode reads an attribute first */
static jj_rc select_items(jj_ctx *c, jj_val v, const args *A, bool attr_mode, bool keep, jj_val *out) {
    int off = 0;
    jj_val at = jj_none();
    if (attr_mode) {
        if (A->np < 1) return jj_fail(c, "selectattr/rejectattr: missing attribute name");
        at = A->pos[0];
        off = 1;
    }
    jj_test_fn test = NULL;
    if (A->np > off) {
        if (A->pos[off].t != JJ_STR) return jj_fail(c, "select: the test name must be a string");
        if (!(test = jj_find_test(A->pos[off].s->p, A->pos[off].s->n)))
            return jj_fail(c, "no test named '%s'", A->pos[off].s->p);
        off++;
    }
    jj_list *l, *r;
    if (!jj_truthy(v)) v = jj_undef(NULL); /* Jinja: "if value:" before iterating */
    if (jj_iterate(c, v, &l)) return JJ_ERR;
    if (!(r = jj_list_new(c->a, 0))) return jj_oom(c);
    for (size_t i = 0; i < l->n; i++) {
        jj_val x = l->v[i];
        if (jj_step(c) || (attr_mode && attr_of(c, x, at, &x))) return JJ_ERR;
        bool t;
        if (test) {
            if (test(c, x, A->pos + off, A->np - off, &t)) return JJ_ERR;
        } else t = jj_truthy(x);
        if (t == keep && !jj_list_push(c->a, r, l->v[i])) return jj_oom(c);
    }
    *out = listv(r);
    return JJ_OK;
}
FILTER(select) { ARGS; return select_items(c, v, &A, false, true, out); }
FILTER(reject) { ARGS; return select_items(c, v, &A, false, false, out); }
FILTER(selectattr) { ARGS; return select_items(c, v, &A, true, true, out); }
FILTER(rejectattr) { ARGS; return select_items(c, v, &A, true, false, out); }

FILTER(map) {
    ARGS;
    jj_list *l, *r;
    if (!jj_truthy(v)) v = jj_undef(NULL); /* Jinja: "if value:" before iterating */
    if (jj_iterate(c, v, &l)) return JJ_ERR;
    if (!(r = jj_list_new(c->a, l->n))) return jj_oom(c);
    jj_val at = arg(&A, 99, "attribute", jj_undef(NULL));
    jj_val def = arg(&A, 99, "default", jj_undef(NULL));
    jj_filter_fn f = NULL;
    if (at.t == JJ_UNDEF) {
        if (np < 1 || pos[0].t != JJ_STR) return jj_fail(c, "map: needs a filter name or attribute=");
        if (!(f = jj_find_filter(pos[0].s->p, pos[0].s->n))) return jj_fail(c, "no filter named '%s'", pos[0].s->p);
    }
    for (size_t i = 0; i < l->n; i++) {
        jj_val x = l->v[i];
        if (jj_step(c)) return JJ_ERR;
        if (f) {
            if (f(c, x, pos + 1, np - 1, NULL, NULL, 0, &x)) return JJ_ERR;
        } else {
            if (attr_of(c, x, at, &x)) return JJ_ERR;
            if (x.t == JJ_UNDEF && def.t != JJ_UNDEF) x = def;
        }
        r->v[r->n++] = x;
    }
    *out = listv(r);
    return JJ_OK;
}

FILTER(pprint) {
    ragd_buf b = {0};
    jj_repr(&b, v);
    return ret_buf(c, &b, out);
}

static const struct { const char *name; jj_filter_fn fn; } FILTERS[] = {
    {"tojson", f_tojson}, {"trim", f_trim}, {"length", f_length}, {"count", f_length}, {"items", f_items},
    {"join", f_join}, {"default", f_default}, {"d", f_default}, {"upper", f_upper}, {"lower", f_lower},
    {"capitalize", f_capitalize}, {"title", f_title}, {"replace", f_replace}, {"list", f_list},
    {"string", f_string}, {"int", f_int}, {"float", f_float}, {"abs", f_abs}, {"round", f_round},
    {"first", f_first}, {"last", f_last}, {"reverse", f_reverse}, {"safe", f_safe}, {"escape", f_escape},
    {"e", f_escape}, {"forceescape", f_escape}, {"indent", f_indent}, {"center", f_center},
    {"wordcount", f_wordcount}, {"attr", f_attr}, {"sort", f_sort}, {"dictsort", f_dictsort},
    {"unique", f_unique}, {"min", f_min}, {"max", f_max}, {"sum", f_sum}, {"batch", f_batch},
    {"select", f_select}, {"reject", f_reject}, {"selectattr", f_selectattr}, {"rejectattr", f_rejectattr},
    {"map", f_map}, {"pprint", f_pprint},
};

jj_filter_fn jj_find_filter(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof FILTERS / sizeof FILTERS[0]; i++)
        if (strlen(FILTERS[i].name) == n && !memcmp(FILTERS[i].name, name, n)) return FILTERS[i].fn;
    return NULL;
}

/* ---- tests ---- */

#define TEST(name) static jj_rc t_##name(jj_ctx *c, jj_val v, const jj_val *a, int na, bool *out)

TEST(defined) { return *out = v.t != JJ_UNDEF, JJ_OK; }
TEST(undefined) { return *out = v.t == JJ_UNDEF, JJ_OK; }
TEST(none) { return *out = v.t == JJ_NONE, JJ_OK; }
TEST(boolean) { return *out = v.t == JJ_BOOL, JJ_OK; }
TEST(true) { return *out = v.t == JJ_BOOL && v.b, JJ_OK; }
TEST(false) { return *out = v.t == JJ_BOOL && !v.b, JJ_OK; }
TEST(integer) { return *out = v.t == JJ_INT, JJ_OK; }
TEST(float) { return *out = v.t == JJ_FLOAT, JJ_OK; }
TEST(number) { return *out = v.t == JJ_INT || v.t == JJ_FLOAT || v.t == JJ_BOOL, JJ_OK; }
TEST(string) { return *out = v.t == JJ_STR, JJ_OK; }
TEST(mapping) { return *out = v.t == JJ_DICT && !v.d->ns, JJ_OK; }
TEST(iterable) { return *out = v.t == JJ_STR || v.t == JJ_LIST || (v.t == JJ_DICT && !v.d->ns) || v.t == JJ_UNDEF, JJ_OK; }
TEST(sequence) { return *out = v.t == JJ_STR || v.t == JJ_LIST || (v.t == JJ_DICT && !v.d->ns), JJ_OK; }
TEST(callable) { return *out = v.t == JJ_FUNC || v.t == JJ_MACRO, JJ_OK; }
TEST(escaped) { return *out = false, JJ_OK; }
static jj_rc int_arg(jj_ctx *c, jj_val v, int64_t *x) {
    if (v.t == JJ_INT || v.t == JJ_BOOL) return *x = v.t == JJ_INT ? v.i : v.b, JJ_OK;
    if (v.t == JJ_UNDEF) return jj_fail(c, "a value is undefined");
    return jj_fail(c, "expected an integer, got %s", jj_type_name(v));
}
TEST(odd) {
    int64_t x = 0;
    if (int_arg(c, v, &x)) return JJ_ERR;
    return *out = (x % 2) != 0, JJ_OK;
}
TEST(even) {
    int64_t x = 0;
    if (int_arg(c, v, &x)) return JJ_ERR;
    return *out = (x % 2) == 0, JJ_OK;
}
TEST(divisibleby) {
    int64_t x = 0, d = 0;
    if (na < 1) return jj_fail(c, "divisibleby needs an argument");
    if (int_arg(c, v, &x) || int_arg(c, a[0], &d)) return JJ_ERR;
    if (d == 0) return jj_fail(c, "integer division or modulo by zero");
    return *out = d == -1 || x % d == 0, JJ_OK;
}
static jj_rc cmp_test(jj_ctx *c, jj_val v, const jj_val *a, int na, int which, bool *out) {
    if (na < 1) return jj_fail(c, "the comparison test needs an argument");
    if (which == 0) return *out = jj_equal(v, a[0]), JJ_OK;
    if (which == 1) return *out = !jj_equal(v, a[0]), JJ_OK;
    int r;
    if (!jj_compare(v, a[0], &r)) return jj_fail(c, "'%s' and '%s' cannot be compared", jj_type_name(v), jj_type_name(a[0]));
    *out = r == 2 ? false : which == 2 ? r < 0 : which == 3 ? r <= 0 : which == 4 ? r > 0 : r >= 0;
    return JJ_OK;
}
TEST(eq) { return cmp_test(c, v, a, na, 0, out); }
TEST(ne) { return cmp_test(c, v, a, na, 1, out); }
TEST(lt) { return cmp_test(c, v, a, na, 2, out); }
TEST(le) { return cmp_test(c, v, a, na, 3, out); }
TEST(gt) { return cmp_test(c, v, a, na, 4, out); }
TEST(ge) { return cmp_test(c, v, a, na, 5, out); }
TEST(in) {
    if (na < 1) return jj_fail(c, "the 'in' test needs an argument");
    jj_val s = a[0];
    if (s.t == JJ_STR) {
        if (v.t != JJ_STR) return jj_fail(c, "'in <string>' requires string as left operand");
        return *out = memmem(s.s->p, s.s->n, v.s->p, v.s->n) != NULL || v.s->n == 0, JJ_OK;
    }
    if (s.t == JJ_DICT) return *out = v.t == JJ_STR && jj_dict_get(s.d, v.s->p, v.s->n), JJ_OK;
    jj_list *l;
    if (jj_iterate(c, s, &l)) return JJ_ERR;
    *out = false;
    for (size_t i = 0; i < l->n && !*out; i++) *out = jj_equal(v, l->v[i]);
    return JJ_OK;
}
TEST(sameas) {
    if (na < 1) return jj_fail(c, "sameas needs an argument");
    jj_val b = a[0];
    *out = v.t == b.t && (v.t == JJ_NONE || v.t == JJ_UNDEF || (v.t == JJ_BOOL && v.b == b.b) ||
                          (v.t == JJ_INT && v.i == b.i) || (v.t == JJ_STR && v.s == b.s) ||
                          (v.t == JJ_LIST && v.l == b.l) || (v.t == JJ_DICT && v.d == b.d));
    return JJ_OK;
}
static jj_rc case_test(jj_ctx *c, jj_val v, bool upper, bool *out) {
    jj_str *s = jj_to_str(c, v);
    if (!s) return JJ_ERR;
    bool cased = false, ok = true;
    for (size_t i = 0; i < s->n && ok;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)s->p + i, (utf8proc_ssize_t)(s->n - i), &cp);
        if (l <= 0) break;
        if (utf8proc_toupper(cp) != utf8proc_tolower(cp)) {
            cased = true;
            ok = upper ? utf8proc_toupper(cp) == cp : utf8proc_tolower(cp) == cp;
        }
        i += (size_t)l;
    }
    *out = cased && ok;
    return JJ_OK;
}
TEST(lower) { return case_test(c, v, false, out); }
TEST(upper) { return case_test(c, v, true, out); }
TEST(filter) { return *out = v.t == JJ_STR && jj_find_filter(v.s->p, v.s->n), JJ_OK; }
TEST(test) { return *out = v.t == JJ_STR && jj_find_test(v.s->p, v.s->n), JJ_OK; }

static const struct { const char *name; jj_test_fn fn; } TESTS[] = {
    {"defined", t_defined}, {"undefined", t_undefined}, {"none", t_none}, {"boolean", t_boolean},
    {"true", t_true}, {"false", t_false}, {"integer", t_integer}, {"float", t_float}, {"number", t_number},
    {"string", t_string}, {"mapping", t_mapping}, {"iterable", t_iterable}, {"sequence", t_sequence},
    {"callable", t_callable}, {"escaped", t_escaped}, {"odd", t_odd}, {"even", t_even},
    {"divisibleby", t_divisibleby}, {"eq", t_eq}, {"equalto", t_eq}, {"==", t_eq}, {"ne", t_ne}, {"!=", t_ne},
    {"lt", t_lt}, {"lessthan", t_lt}, {"<", t_lt}, {"le", t_le}, {"<=", t_le}, {"gt", t_gt},
    {"greaterthan", t_gt}, {">", t_gt}, {"ge", t_ge}, {">=", t_ge}, {"in", t_in}, {"sameas", t_sameas},
    {"lower", t_lower}, {"upper", t_upper}, {"filter", t_filter}, {"test", t_test},
};

jj_test_fn jj_find_test(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++)
        if (strlen(TESTS[i].name) == n && !memcmp(TESTS[i].name, name, n)) return TESTS[i].fn;
    return NULL;
}

/* ---- methods and globals ---- */

enum {
    /* JJ_FN_CYCLE = 1 (jinja.h) */
    G_RANGE = 2, G_DICT, G_NAMESPACE, G_RAISE, G_STRFTIME,
    S_STARTSWITH, S_ENDSWITH, S_SPLIT, S_RSPLIT, S_STRIP, S_LSTRIP, S_RSTRIP, S_REPLACE, S_LOWER, S_UPPER,
    S_TITLE, S_CAPITALIZE, S_FIND, S_RFIND, S_COUNT, S_JOIN, S_SPLITLINES, S_ISDIGIT, S_ISALPHA, S_ISALNUM,
    S_ISSPACE, S_ISUPPER, S_ISLOWER, S_INDEX,
    D_ITEMS, D_KEYS, D_VALUES, D_GET,
    L_INDEX, L_COUNT,
};

jj_val jj_bound(jj_ctx *c, int id, jj_val self) {
    jj_func *f = jj_alloc(c->a, sizeof *f);
    if (!f) return jj_undef(NULL);
    f->id = id;
    f->self = self;
    jj_val v = {.t = JJ_FUNC};
    v.fn = f;
    return v;
}

static const struct { const char *name; int id; jj_type on; } METHODS[] = {
    {"startswith", S_STARTSWITH, JJ_STR}, {"endswith", S_ENDSWITH, JJ_STR}, {"split", S_SPLIT, JJ_STR},
    {"rsplit", S_RSPLIT, JJ_STR}, {"strip", S_STRIP, JJ_STR}, {"lstrip", S_LSTRIP, JJ_STR},
    {"rstrip", S_RSTRIP, JJ_STR}, {"replace", S_REPLACE, JJ_STR}, {"lower", S_LOWER, JJ_STR},
    {"upper", S_UPPER, JJ_STR}, {"title", S_TITLE, JJ_STR}, {"capitalize", S_CAPITALIZE, JJ_STR},
    {"find", S_FIND, JJ_STR}, {"rfind", S_RFIND, JJ_STR}, {"count", S_COUNT, JJ_STR}, {"join", S_JOIN, JJ_STR},
    {"splitlines", S_SPLITLINES, JJ_STR}, {"isdigit", S_ISDIGIT, JJ_STR}, {"isalpha", S_ISALPHA, JJ_STR},
    {"isalnum", S_ISALNUM, JJ_STR}, {"isspace", S_ISSPACE, JJ_STR}, {"isupper", S_ISUPPER, JJ_STR},
    {"islower", S_ISLOWER, JJ_STR}, {"index", S_INDEX, JJ_STR},
    {"items", D_ITEMS, JJ_DICT}, {"keys", D_KEYS, JJ_DICT}, {"values", D_VALUES, JJ_DICT}, {"get", D_GET, JJ_DICT},
    {"index", L_INDEX, JJ_LIST}, {"count", L_COUNT, JJ_LIST},
};

jj_rc jj_getattr(jj_ctx *c, jj_val v, jj_str *name, jj_val *out) {
    *out = jj_undef(name);
    if (v.t == JJ_DICT && v.d->ns) {
        jj_val *x = jj_dict_get(v.d, name->p, name->n);
        if (x) *out = *x;
        return JJ_OK;
    }
    for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++)
        if (METHODS[i].on == v.t && !strcmp(METHODS[i].name, name->p)) {
            *out = jj_bound(c, METHODS[i].id, v);
            return out->t == JJ_FUNC ? JJ_OK : jj_oom(c);
        }
    return JJ_OK;
}

jj_val jj_global(jj_ctx *c, const char *name, size_t n) {
    static const struct { const char *name; int id; } G[] = {
        {"range", G_RANGE}, {"dict", G_DICT}, {"namespace", G_NAMESPACE}, {"raise_exception", G_RAISE},
        {"strftime_now", G_STRFTIME},
    };
    for (size_t i = 0; i < sizeof G / sizeof G[0]; i++)
        if (strlen(G[i].name) == n && !memcmp(G[i].name, name, n)) return jj_bound(c, G[i].id, jj_none());
    return jj_undef(NULL);
}

static jj_rc kwargs_dict(jj_ctx *c, const args *A, bool ns, jj_val *out) {
    jj_dict *d = jj_dict_new(c->a, 0);
    if (!d) return jj_oom(c);
    d->ns = ns;
    if (A->np > 1) return jj_fail(c, "%s() takes at most one positional argument", ns ? "namespace" : "dict");
    if (A->np == 1) {
        jj_val m = A->pos[0];
        if (m.t != JJ_DICT) return jj_fail(c, "%s(): the argument must be a mapping", ns ? "namespace" : "dict");
        for (size_t i = 0; i < m.d->n; i++)
            if (!jj_dict_set(c->a, d, m.d->k[i], m.d->v[i])) return jj_oom(c);
    }
    for (int k = 0; k < A->nk; k++) {
        if (ns && A->kwn[k]->p[0] == '_')
            return jj_fail(c, "chat templates cannot store underscore-prefixed attributes on a namespace");
        if (!jj_dict_set(c->a, d, A->kwn[k], A->kwv[k])) return jj_oom(c);
    }
    *out = dictv(d);
    return JJ_OK;
}

static jj_rc str_find(jj_ctx *c, const jj_str *s, jj_val sub, bool right, int64_t *pos) {
    if (need_str(c, sub, "find")) return JJ_ERR;
    const jj_str *x = sub.s;
    *pos = -1;
    if (x->n > s->n) return JJ_OK;
    if (!right) {
        const char *h = x->n ? memmem(s->p, s->n, x->p, x->n) : s->p;
        if (h) *pos = (int64_t)jj_utf8_len(s->p, (size_t)(h - s->p));
    } else
        for (size_t q = s->n - x->n + 1; q-- > 0;)
            if (!memcmp(s->p + q, x->p, x->n)) {
                *pos = (int64_t)jj_utf8_len(s->p, q);
                break;
            }
    return JJ_OK;
}

static bool all_chars(const jj_str *s, int kind) {
    if (!s->n) return false;
    for (size_t i = 0; i < s->n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)s->p + i, (utf8proc_ssize_t)(s->n - i), &cp);
        if (l <= 0) return false;
        utf8proc_category_t k = utf8proc_category(cp);
        bool digit = k == UTF8PROC_CATEGORY_ND, alpha = is_alpha_cp(cp);
        bool ok = kind == 0 ? digit : kind == 1 ? alpha : kind == 2 ? (digit || alpha)
                                                        : jj_space_len((const unsigned char *)s->p + i, (size_t)l) > 0;
        if (!ok) return false;
        i += (size_t)l;
    }
    return true;
}

static jj_rc str_method(jj_ctx *c, int id, const jj_str *s, const args *A, jj_val *out) {
    jj_val a0 = arg(A, 0, "", jj_none()), a1 = arg(A, 1, "", jj_none()), a2 = arg(A, 2, "", jj_none());
    switch (id) {
    case S_STARTSWITH:
    case S_ENDSWITH: {
        bool r = false;
        if (a0.t == JJ_STR) r = str_has_prefix(s, a0.s, id == S_ENDSWITH);
        else if (a0.t == JJ_LIST)
            for (size_t i = 0; i < a0.l->n && !r; i++) {
                if (need_str(c, a0.l->v[i], "startswith")) return JJ_ERR;
                r = str_has_prefix(s, a0.l->v[i].s, id == S_ENDSWITH);
            }
        else return jj_fail(c, "%s: expected a string or a tuple of strings", id == S_ENDSWITH ? "endswith" : "startswith");
        *out = jj_bool(r);
        return JJ_OK;
    }
    case S_SPLIT:
    case S_RSPLIT: {
        jj_val sep = arg(A, 0, "sep", jj_none()), mx = arg(A, 1, "maxsplit", jj_int(-1));
        if (sep.t != JJ_NONE && need_str(c, sep, "split")) return JJ_ERR;
        if (mx.t != JJ_INT) return jj_fail(c, "split: maxsplit must be an integer");
        return split(c, s, sep.t == JJ_STR ? sep.s : NULL, mx.i, id == S_RSPLIT, out);
    }
    case S_STRIP:
    case S_LSTRIP:
    case S_RSTRIP:
        if (a0.t != JJ_NONE && need_str(c, a0, "strip")) return JJ_ERR;
        *out = strip(c, s, a0.t == JJ_STR ? a0.s : NULL, id != S_RSTRIP, id != S_LSTRIP);
        return out->t == JJ_STR ? JJ_OK : jj_oom(c);
    case S_REPLACE:
        if (need_str(c, a0, "replace") || need_str(c, a1, "replace")) return JJ_ERR;
        *out = replace(c, s, a0.s, a1.s, a2.t == JJ_INT ? a2.i : -1);
        return out->t == JJ_STR ? JJ_OK : JJ_ERR;
    case S_LOWER:
    case S_UPPER: {
        ragd_buf b = {0};
        map_case(&b, s->p, s->n, id == S_UPPER);
        return ret_buf(c, &b, out);
    }
    case S_TITLE:
    case S_CAPITALIZE:
        *out = titlecase(c, s, id == S_TITLE ? 2 : 1);
        return out->t == JJ_STR ? JJ_OK : jj_oom(c);
    case S_FIND:
    case S_RFIND:
    case S_INDEX: {
        int64_t p;
        if (str_find(c, s, a0, id == S_RFIND, &p)) return JJ_ERR;
        if (id == S_INDEX && p < 0) return jj_fail(c, "substring not found");
        *out = jj_int(p);
        return JJ_OK;
    }
    case S_COUNT: {
        if (need_str(c, a0, "count")) return JJ_ERR;
        int64_t k = 0;
        if (!a0.s->n) k = (int64_t)jj_utf8_len(s->p, s->n) + 1;
        else
            for (const char *p = s->p; (p = memmem(p, s->n - (size_t)(p - s->p), a0.s->p, a0.s->n)); p += a0.s->n) k++;
        *out = jj_int(k);
        return JJ_OK;
    }
    case S_JOIN: {
        jj_list *l;
        if (jj_iterate(c, a0, &l)) return JJ_ERR;
        ragd_buf b = {0};
        for (size_t i = 0; i < l->n; i++) {
            if (l->v[i].t != JJ_STR) {
                ragd_buf_free(&b);
                return jj_fail(c, "join: sequence item %zu: expected str instance, %s found", i, jj_type_name(l->v[i]));
            }
            if (i) ragd_buf_append(&b, s->p, s->n);
            ragd_buf_append(&b, l->v[i].s->p, l->v[i].s->n);
            if (b.len > JJ_MAX_OUTPUT) {
                ragd_buf_free(&b);
                return jj_oom(c);
            }
        }
        return ret_buf(c, &b, out);
    }
    case S_SPLITLINES: {
        jj_list *l;
        if (splitlines(c, s, &l)) return JJ_ERR;
        *out = listv(l);
        return JJ_OK;
    }
    case S_ISDIGIT: *out = jj_bool(all_chars(s, 0)); return JJ_OK;
    case S_ISALPHA: *out = jj_bool(all_chars(s, 1)); return JJ_OK;
    case S_ISALNUM: *out = jj_bool(all_chars(s, 2)); return JJ_OK;
    case S_ISSPACE: *out = jj_bool(all_chars(s, 3)); return JJ_OK;
    case S_ISUPPER:
    case S_ISLOWER: {
        bool r;
        if (case_test(c, jj_strv((jj_str *)s), id == S_ISUPPER, &r)) return JJ_ERR;
        *out = jj_bool(r);
        return JJ_OK;
    }
    }
    return jj_fail(c, "internal: unknown string method");
}

static jj_rc strftime_now(jj_ctx *c, jj_val fmt, jj_val *out) {
    if (need_str(c, fmt, "strftime_now")) return JJ_ERR;
    time_t now = c->now ? c->now : time(NULL);
    struct tm tmv;
    if (c->now_utc) gmtime_r(&now, &tmv);
    else localtime_r(&now, &tmv);
    if (fmt.s->n > 256) return jj_fail(c, "strftime_now: format too long");
    char buf[1024];
    size_t n = fmt.s->n ? strftime(buf, sizeof buf, fmt.s->p, &tmv) : 0;
    *out = strv(c, buf, n);
    return out->t == JJ_STR ? JJ_OK : jj_oom(c);
}

jj_rc jj_call_func(jj_ctx *c, jj_func *f, const jj_val *pos, int np, jj_str *const *kwn, const jj_val *kwv,
                   int nk, jj_val *out) {
    args A = {pos, np, kwn, kwv, nk};
    jj_val self = f->self;
    switch (f->id) {
    case JJ_FN_CYCLE:
        if (np == 0) return jj_fail(c, "no items for cycling given");
        *out = pos[self.i % np];
        return JJ_OK;
    case G_RANGE: {
        int64_t a = 0, b, st = 1;
        for (int i = 0; i < np; i++)
            if (pos[i].t != JJ_INT) return jj_fail(c, "range() arguments must be integers");
        if (np == 1) b = pos[0].i;
        else if (np == 2 || np == 3) a = pos[0].i, b = pos[1].i, st = np == 3 ? pos[2].i : 1;
        else return jj_fail(c, "range() takes 1 to 3 arguments");
        if (st == 0) return jj_fail(c, "range() arg 3 must not be zero");
        double cnt = st > 0 ? ceil(((double)b - (double)a) / (double)st) : ceil(((double)a - (double)b) / (double)-st);
        if (cnt > 100000) return jj_fail(c, "range too big: the sandbox blocks ranges larger than 100000");
        jj_list *l = jj_list_new(c->a, cnt > 0 ? (size_t)cnt : 0);
        if (!l) return jj_oom(c);
        for (int64_t x = a; st > 0 ? x < b : x > b; x += st) l->v[l->n++] = jj_int(x);
        *out = listv(l);
        return JJ_OK;
    }
    case G_DICT: return kwargs_dict(c, &A, false, out);
    case G_NAMESPACE: return kwargs_dict(c, &A, true, out);
    case G_RAISE: {
        jj_val m = np ? pos[0] : strv(c, "", 0);
        ragd_buf b = {0};
        jj_str_of(&b, m);
        if (!c->failed) {
            ragd_err_set(c->err, RAGD_EINVAL, "%s", b.data ? b.data : "");
            c->raised = c->failed = true;
        }
        ragd_buf_free(&b);
        return JJ_ERR;
    }
    case G_STRFTIME: return strftime_now(c, np ? pos[0] : jj_undef(NULL), out);
    case D_ITEMS: return items_of(c, self, out);
    case D_KEYS:
    case D_VALUES: {
        jj_list *l = jj_list_new(c->a, self.d->n);
        if (!l) return jj_oom(c);
        for (size_t i = 0; i < self.d->n; i++) l->v[l->n++] = f->id == D_KEYS ? jj_strv(self.d->k[i]) : self.d->v[i];
        *out = listv(l);
        return JJ_OK;
    }
    case D_GET: {
        jj_val k = arg(&A, 0, "key", jj_undef(NULL)), d = arg(&A, 1, "default", jj_none());
        jj_val *x = k.t == JJ_STR ? jj_dict_get(self.d, k.s->p, k.s->n) : NULL;
        *out = x ? *x : d;
        return JJ_OK;
    }
    case L_INDEX:
    case L_COUNT: {
        if (np < 1) return jj_fail(c, "%s() takes exactly one argument", f->id == L_INDEX ? "index" : "count");
        int64_t k = 0, at = -1;
        for (size_t i = 0; i < self.l->n; i++)
            if (jj_equal(self.l->v[i], pos[0])) {
                if (at < 0) at = (int64_t)i;
                k++;
            }
        if (f->id == L_INDEX && at < 0) return jj_fail(c, "x not in list");
        *out = jj_int(f->id == L_INDEX ? at : k);
        return JJ_OK;
    }
    default: return str_method(c, f->id, self.s, &A, out);
    }
}
