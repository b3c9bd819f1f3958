/* jinja_value.c — the interpreter's values with Python semantics: the arena they live in, strings,
 * lists/tuples, ordered dicts, truthiness, ==, ordering, str() / repr() (what {{ x }} prints for
 * None, True, 1.0, lists and dicts), json.dumps (transformers' tojson: ensure_ascii=False, separators
 * ", " / ": " or "," / ": " with an indent), float repr (shortest round trip, Python's exponent rules),
 * and the conversion of jansson values (request messages, tools, kwargs) into template values.
 *
 * Contract: nothing here aborts on input; an exhausted arena makes constructors return NULL and sets
 * arena->exhausted (the evaluator turns that into an error).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tasks/jinja.h"

/* ---- arena ---- */

struct jj_block {
    jj_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *jj_alloc(jj_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (a->limit && (n > a->limit || a->total > a->limit - n)) {
        a->exhausted = true;
        return NULL;
    }
    jj_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 - sizeof(jj_block) ? n : 65536 - sizeof(jj_block);
        b = malloc(sizeof(jj_block) + cap);
        if (!b) {
            a->exhausted = true;
            return NULL;
        }
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->total += n;
    memset(p, 0, n);
    return p;
}

void jj_arena_free(jj_arena *a) {
    jj_block *b = a->head;
    while (b) {
        jj_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
    a->total = 0;
}

/* ---- strings, lists, dicts ---- */

jj_str *jj_str_new(jj_arena *a, const char *p, size_t n) {
    if (n > JJ_MAX_ARENA) {
        a->exhausted = true;
        return NULL;
    }
    jj_str *s = jj_alloc(a, sizeof *s + n + 1);
    if (!s) return NULL;
    s->n = n;
    if (n) memcpy(s->p, p, n);
    s->p[n] = 0;
    return s;
}

jj_val jj_strv(jj_str *s) {
    jj_val v = {.t = s ? JJ_STR : JJ_UNDEF};
    v.s = s;
    return v;
}

jj_list *jj_list_new(jj_arena *a, size_t cap) {
    jj_list *l = jj_alloc(a, sizeof *l);
    if (!l) return NULL;
    if (cap) {
        if (cap > JJ_MAX_ARENA / sizeof(jj_val) || !(l->v = jj_alloc(a, cap * sizeof(jj_val)))) {
            a->exhausted = true;
            return NULL;
        }
        l->cap = cap;
    }
    return l;
}

bool jj_list_push(jj_arena *a, jj_list *l, jj_val v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        if (cap > JJ_MAX_ARENA / sizeof(jj_val)) return a->exhausted = true, false;
        jj_val *nv = jj_alloc(a, cap * sizeof *nv);
        if (!nv) return false;
        if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return true;
}

jj_dict *jj_dict_new(jj_arena *a, size_t cap) {
    jj_dict *d = jj_alloc(a, sizeof *d);
    if (!d) return NULL;
    if (cap) {
        if (cap > JJ_MAX_ARENA / sizeof(jj_val) || !(d->k = jj_alloc(a, cap * sizeof *d->k)) ||
            !(d->v = jj_alloc(a, cap * sizeof *d->v))) {
            a->exhausted = true;
            return NULL;
        }
        d->cap = cap;
    }
    return d;
}

jj_val *jj_dict_get(const jj_dict *d, const char *k, size_t n) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i]->n == n && !memcmp(d->k[i]->p, k, n)) return &d->v[i];
    return NULL;
}

bool jj_dict_set(jj_arena *a, jj_dict *d, jj_str *k, jj_val v) {
    jj_val *old = jj_dict_get(d, k->p, k->n);
    if (old) {
        *old = v;
        return true;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        if (cap > JJ_MAX_ARENA / sizeof(jj_val)) return a->exhausted = true, false;
        jj_str **nk = jj_alloc(a, cap * sizeof *nk);
        jj_val *nv = jj_alloc(a, cap * sizeof *nv);
        if (!nk || !nv) return false;
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof *nk);
            memcpy(nv, d->v, d->n * sizeof *nv);
        }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = k;
    d->v[d->n++] = v;
    return true;
}

/* ---- truth, equality, order ---- */

bool jj_truthy(jj_val v) {
    switch (v.t) {
    case JJ_UNDEF: case JJ_NONE: return false;
    case JJ_BOOL: return v.b;
    case JJ_INT: return v.i != 0;
    case JJ_FLOAT: return v.f != 0;
    case JJ_STR: return v.s->n > 0;
    case JJ_LIST: return v.l->n > 0;
    case JJ_DICT: return v.d->n > 0;
    default: return true;
    }
}

static bool is_num(jj_val v) { return v.t == JJ_INT || v.t == JJ_FLOAT || v.t == JJ_BOOL; }
static double num(jj_val v) { return v.t == JJ_FLOAT ? v.f : v.t == JJ_INT ? (double)v.i : v.b; }
static int64_t inum(jj_val v) { return v.t == JJ_INT ? v.i : v.b; }

bool jj_equal(jj_val a, jj_val b) {
    if (is_num(a) && is_num(b)) {
        if (a.t != JJ_FLOAT && b.t != JJ_FLOAT) return inum(a) == inum(b);
        return num(a) == num(b);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
    case JJ_UNDEF: case JJ_NONE: return true;
    case JJ_STR: return a.s->n == b.s->n && !memcmp(a.s->p, b.s->p, a.s->n);
    case JJ_LIST:
        if (a.l->n != b.l->n || a.l->tuple != b.l->tuple) return false;
        for (size_t i = 0; i < a.l->n; i++)
            if (!jj_equal(a.l->v[i], b.l->v[i])) return false;
        return true;
    case JJ_DICT:
        if (a.d == b.d) return true;
        if (a.d->ns || b.d->ns || a.d->n != b.d->n) return false; /* namespaces compare by identity */
        for (size_t i = 0; i < a.d->n; i++) {
            jj_val *o = jj_dict_get(b.d, a.d->k[i]->p, a.d->k[i]->n);
            if (!o || !jj_equal(a.d->v[i], *o)) return false;
        }
        return true;
    case JJ_FUNC: return a.fn == b.fn;
    case JJ_MACRO: return a.m == b.m;
    default: return false;
    }
}

bool jj_compare(jj_val a, jj_val b, int *out) {
    if (is_num(a) && is_num(b)) {
        if (a.t != JJ_FLOAT && b.t != JJ_FLOAT) *out = inum(a) < inum(b) ? -1 : inum(a) > inum(b);
        else {
            double x = num(a), y = num(b);
            if (isnan(x) || isnan(y)) *out = 2; /* every comparison false */
            else *out = x < y ? -1 : x > y;
        }
        return true;
    }
    if (a.t == JJ_STR && b.t == JJ_STR) { /* UTF-8 byte order is code point order */
        size_t n = a.s->n < b.s->n ? a.s->n : b.s->n;
        int c = memcmp(a.s->p, b.s->p, n);
        *out = c ? (c < 0 ? -1 : 1) : a.s->n < b.s->n ? -1 : a.s->n > b.s->n;
        return true;
    }
    if (a.t == JJ_LIST && b.t == JJ_LIST) {
        for (size_t i = 0; i < a.l->n && i < b.l->n; i++) {
            if (jj_equal(a.l->v[i], b.l->v[i])) continue;
            return jj_compare(a.l->v[i], b.l->v[i], out);
        }
        *out = a.l->n < b.l->n ? -1 : a.l->n > b.l->n;
        return true;
    }
    return false;
}

const char *jj_type_name(jj_val v) {
    switch (v.t) {
    case JJ_UNDEF: return "Undefined";
    case JJ_NONE: return "NoneType";
    case JJ_BOOL: return "bool";
    case JJ_INT: return "int";
    case JJ_FLOAT: return "float";
    case JJ_STR: return "str";
    case JJ_LIST: return v.l->tuple ? "tuple" : "list";
    case JJ_DICT: return v.d->ns ? "Namespace" : "dict";
    case JJ_FUNC: return "builtin_function_or_method";
    case JJ_MACRO: return "Macro";
    }
    return "?";
}

size_t jj_utf8_len(const char *p, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)p[i] & 0xc0) != 0x80;
    return c;
}

/* ---- Python whitespace ---- */

size_t jj_space_len(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned char c = s[0];
    if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return 1;
    uint32_t cp;
    size_t l;
    if ((c & 0xe0) == 0xc0 && n >= 2) cp = ((c & 0x1fu) << 6) | (s[1] & 0x3fu), l = 2;
    else if ((c & 0xf0) == 0xe0 && n >= 3) cp = ((c & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu), l = 3;
    else return 0;
    if (cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
        cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000)
        return l;
    return 0;
}

size_t jj_space_len_back(const unsigned char *s, size_t n) {
    for (size_t l = 1; l <= 3 && l <= n; l++) {
        if ((s[n - l] & 0xc0) == 0x80) continue;
        return jj_space_len(s + n - l, l) == l ? l : 0;
    }
    return 0;
}

/* ---- str() and repr() ---- */

void jj_fmt_float(ragd_buf *b, double f) {
    if (isnan(f)) {
        ragd_buf_puts(b, "nan");
        return;
    }
    if (isinf(f)) {
        ragd_buf_puts(b, f < 0 ? "-inf" : "inf");
        return;
    }
    /* shortest digits that round-trip, then Python's layout (repr: 'r' format) */
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp = [-]d.ddde[+-]xx */
    char digits[24];
    int nd = 0, exp10;
    const char *q = tmp;
    bool neg = *q == '-';
    if (neg) q++;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9') digits[nd++] = *q;
    exp10 = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (neg) ragd_buf_putc(b, '-');
    if (exp10 < -4 || exp10 >= 16) {
        ragd_buf_putc(b, digits[0]);
        if (nd > 1) {
            ragd_buf_putc(b, '.');
            ragd_buf_append(b, digits + 1, (size_t)nd - 1);
        }
        ragd_buf_printf(b, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    } else if (exp10 < 0) {
        ragd_buf_puts(b, "0.");
        for (int i = 0; i < -exp10 - 1; i++) ragd_buf_putc(b, '0');
        ragd_buf_append(b, digits, (size_t)nd);
    } else {
        for (int i = 0; i <= exp10; i++) ragd_buf_putc(b, i < nd ? digits[i] : '0');
        ragd_buf_putc(b, '.');
        if (nd > exp10 + 1) ragd_buf_append(b, digits + exp10 + 1, (size_t)(nd - exp10 - 1));
        else ragd_buf_putc(b, '0');
    }
}

/* decodes one UTF-8 code point (input is valid UTF-8) */
static uint32_t utf8_next(const unsigned char *s, size_t n, size_t *len) {
    unsigned char c = s[0];
    if (c < 0x80 || n < 2) return *len = 1, c;
    if ((c & 0xe0) == 0xc0) return *len = 2, ((c & 0x1fu) << 6) | (s[1] & 0x3fu);
    if ((c & 0xf0) == 0xe0 && n >= 3) return *len = 3, ((c & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
    if (n >= 4) return *len = 4, ((c & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) | ((s[2] & 0x3fu) << 6) | (s[3] & 0x3fu);
    return *len = 1, c;
}

/* Python's str.isprintable() for one code point, approximated without Unicode tables beyond the
 * common non-printables (C0/C1 controls, separators, format characters in use) */
static bool printable(uint32_t cp) {
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad) return false;
    if (cp == 0x2028 || cp == 0x2029 || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
        (cp >= 0x2060 && cp <= 0x2064) || cp == 0xfeff || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
        cp == 0x202f || cp == 0x205f || cp == 0x3000)
        return false;
    return true;
}

static void repr_str(ragd_buf *b, const jj_str *s) {
    bool sq = memchr(s->p, '\'', s->n) != NULL, dq = memchr(s->p, '"', s->n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    ragd_buf_putc(b, q);
    const unsigned char *p = (const unsigned char *)s->p;
    for (size_t i = 0; i < s->n;) {
        size_t l;
        uint32_t cp = utf8_next(p + i, s->n - i, &l);
        if (cp == (uint32_t)q || cp == '\\') ragd_buf_putc(b, '\\'), ragd_buf_putc(b, (char)cp);
        else if (cp == '\n') ragd_buf_puts(b, "\\n");
        else if (cp == '\r') ragd_buf_puts(b, "\\r");
        else if (cp == '\t') ragd_buf_puts(b, "\\t");
        else if (printable(cp) || cp == ' ') ragd_buf_append(b, p + i, l);
        else if (cp < 0x100) ragd_buf_printf(b, "\\x%02x", cp);
        else if (cp < 0x10000) ragd_buf_printf(b, "\\u%04x", cp);
        else ragd_buf_printf(b, "\\U%08x", cp);
        i += l;
    }
    ragd_buf_putc(b, q);
}

static void repr_at(ragd_buf *b, jj_val v, int depth);

void jj_repr(ragd_buf *b, jj_val v) { repr_at(b, v, 0); }

/* depth-capped: a namespace can hold itself */
static void repr_at(ragd_buf *b, jj_val v, int depth) {
    if (depth > JJ_MAX_NEST && (v.t == JJ_LIST || v.t == JJ_DICT)) {
        ragd_buf_puts(b, "...");
        return;
    }
    switch (v.t) {
    case JJ_STR: repr_str(b, v.s); return;
    case JJ_LIST:
        ragd_buf_putc(b, v.l->tuple ? '(' : '[');
        for (size_t i = 0; i < v.l->n; i++) {
            if (i) ragd_buf_puts(b, ", ");
            repr_at(b, v.l->v[i], depth + 1);
        }
        if (v.l->tuple && v.l->n == 1) ragd_buf_putc(b, ',');
        ragd_buf_putc(b, v.l->tuple ? ')' : ']');
        return;
    case JJ_DICT:
        if (v.d->ns) ragd_buf_puts(b, "<Namespace ");
        ragd_buf_putc(b, '{');
        for (size_t i = 0; i < v.d->n; i++) {
            if (i) ragd_buf_puts(b, ", ");
            repr_str(b, v.d->k[i]);
            ragd_buf_puts(b, ": ");
            repr_at(b, v.d->v[i], depth + 1);
        }
        ragd_buf_putc(b, '}');
        if (v.d->ns) ragd_buf_putc(b, '>');
        return;
    default: jj_str_of(b, v);
    }
}

void jj_str_of(ragd_buf *b, jj_val v) {
    switch (v.t) {
    case JJ_UNDEF: return;
    case JJ_NONE: ragd_buf_puts(b, "None"); return;
    case JJ_BOOL: ragd_buf_puts(b, v.b ? "True" : "False"); return;
    case JJ_INT: ragd_buf_printf(b, "%lld", (long long)v.i); return;
    case JJ_FLOAT: jj_fmt_float(b, v.f); return;
    case JJ_STR: ragd_buf_append(b, v.s->p, v.s->n); return;
    case JJ_FUNC: ragd_buf_puts(b, "<built-in function>"); return;
    case JJ_MACRO: ragd_buf_puts(b, "<Macro>"); return;
    default: jj_repr(b, v);
    }
}

jj_str *jj_to_str(jj_ctx *c, jj_val v) {
    if (v.t == JJ_STR) return v.s;
    ragd_buf b = {0};
    jj_str_of(&b, v);
    jj_str *s = jj_str_new(c->a, b.data ? b.data : "", b.len);
    ragd_buf_free(&b);
    if (!s) jj_oom(c);
    return s;
}

void jj_html_escape(ragd_buf *b, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '&') ragd_buf_puts(b, "&amp;");
        else if (ch == '<') ragd_buf_puts(b, "&lt;");
        else if (ch == '>') ragd_buf_puts(b, "&gt;");
        else if (ch == '"') ragd_buf_puts(b, "&#34;");
        else if (ch == '\'') ragd_buf_puts(b, "&#39;");
        else ragd_buf_putc(b, ch);
    }
}

/* ---- json.dumps ---- */

static void json_str(ragd_buf *b, const jj_str *s, bool ascii) {
    ragd_buf_putc(b, '"');
    const unsigned char *p = (const unsigned char *)s->p;
    for (size_t i = 0; i < s->n;) {
        size_t l;
        uint32_t cp = utf8_next(p + i, s->n - i, &l);
        switch (cp) {
        case '"': ragd_buf_puts(b, "\\\""); break;
        case '\\': ragd_buf_puts(b, "\\\\"); break;
        case '\n': ragd_buf_puts(b, "\\n"); break;
        case '\r': ragd_buf_puts(b, "\\r"); break;
        case '\t': ragd_buf_puts(b, "\\t"); break;
        case '\b': ragd_buf_puts(b, "\\b"); break;
        case '\f': ragd_buf_puts(b, "\\f"); break;
        default:
            if (cp < 0x20 || (ascii && cp > 0x7e)) {
                if (cp >= 0x10000) {
                    uint32_t u = cp - 0x10000;
                    ragd_buf_printf(b, "\\u%04x\\u%04x", 0xd800 + (u >> 10), 0xdc00 + (u & 0x3ff));
                } else ragd_buf_printf(b, "\\u%04x", cp);
            } else ragd_buf_append(b, p + i, l);
        }
        i += l;
    }
    ragd_buf_putc(b, '"');
}

typedef struct dump_opts {
    bool ascii, sort;
    int indent;
    const char *item_sep, *key_sep;
} dump_opts;

static void newline_indent(ragd_buf *b, const dump_opts *o, int level) {
    ragd_buf_putc(b, '\n');
    for (int i = 0; i < o->indent * level; i++) ragd_buf_putc(b, ' ');
}

static int cmp_keys(const void *x, const void *y) {
    const jj_str *a = *(jj_str *const *)x, *b = *(jj_str *const *)y;
    size_t n = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->p, b->p, n);
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

static bool dump(jj_ctx *c, ragd_buf *b, jj_val v, const dump_opts *o, int level) {
    if (level > JJ_MAX_NEST) return jj_fail(c, "tojson: value nested too deeply"), false;
    switch (v.t) {
    case JJ_NONE: ragd_buf_puts(b, "null"); return true;
    case JJ_BOOL: ragd_buf_puts(b, v.b ? "true" : "false"); return true;
    case JJ_INT: ragd_buf_printf(b, "%lld", (long long)v.i); return true;
    case JJ_FLOAT:
        if (isnan(v.f)) ragd_buf_puts(b, "NaN");
        else if (isinf(v.f)) ragd_buf_puts(b, v.f < 0 ? "-Infinity" : "Infinity");
        else jj_fmt_float(b, v.f);
        return true;
    case JJ_STR: json_str(b, v.s, o->ascii); return true;
    case JJ_LIST:
        if (!v.l->n) {
            ragd_buf_puts(b, "[]");
            return true;
        }
        ragd_buf_putc(b, '[');
        for (size_t i = 0; i < v.l->n; i++) {
            if (i) ragd_buf_puts(b, o->item_sep);
            if (o->indent >= 0) newline_indent(b, o, level + 1);
            if (!dump(c, b, v.l->v[i], o, level + 1)) return false;
        }
        if (o->indent >= 0) newline_indent(b, o, level);
        ragd_buf_putc(b, ']');
        return true;
    case JJ_DICT: {
        if (v.d->ns) break;
        if (!v.d->n) {
            ragd_buf_puts(b, "{}");
            return true;
        }
        size_t n = v.d->n;
        jj_str **keys = malloc(n * sizeof *keys);
        if (!keys) return jj_oom(c), false;
        memcpy(keys, v.d->k, n * sizeof *keys);
        if (o->sort) qsort(keys, n, sizeof *keys, cmp_keys);
        ragd_buf_putc(b, '{');
        bool ok = true;
        for (size_t i = 0; i < n && ok; i++) {
            if (i) ragd_buf_puts(b, o->item_sep);
            if (o->indent >= 0) newline_indent(b, o, level + 1);
            json_str(b, keys[i], o->ascii);
            ragd_buf_puts(b, o->key_sep);
            ok = dump(c, b, *jj_dict_get(v.d, keys[i]->p, keys[i]->n), o, level + 1);
        }
        free(keys);
        if (!ok) return false;
        if (o->indent >= 0) newline_indent(b, o, level);
        ragd_buf_putc(b, '}');
        return true;
    }
    default: break;
    }
    jj_fail(c, "tojson: Object of type %s is not JSON serializable", jj_type_name(v));
    return false;
}

bool jj_json_dumps(jj_ctx *c, ragd_buf *b, jj_val v, bool ensure_ascii, int indent, const char *item_sep,
                   const char *key_sep, bool sort_keys) {
    dump_opts o = {.ascii = ensure_ascii, .sort = sort_keys, .indent = indent,
                   .item_sep = item_sep ? item_sep : indent >= 0 ? "," : ", ", .key_sep = key_sep ? key_sep : ": "};
    return dump(c, b, v, &o, 0);
}

/* ---- from jansson ---- */

jj_val jj_from_json(jj_arena *a, const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_NULL: return jj_none();
    case JSON_TRUE: return jj_bool(true);
    case JSON_FALSE: return jj_bool(false);
    case JSON_INTEGER: return jj_int(json_integer_value(j));
    case JSON_REAL: return jj_float(json_real_value(j));
    case JSON_STRING: return jj_strv(jj_str_new(a, json_string_value(j), json_string_length(j)));
    case JSON_ARRAY: {
        jj_list *l = jj_list_new(a, json_array_size(j));
        if (!l) return jj_undef(NULL);
        for (size_t i = 0; i < json_array_size(j); i++) {
            jj_val v = jj_from_json(a, json_array_get(j, i));
            if (a->exhausted) return jj_undef(NULL);
            l->v[l->n++] = v;
        }
        jj_val v = {.t = JJ_LIST};
        v.l = l;
        return v;
    }
    case JSON_OBJECT: {
        jj_dict *d = jj_dict_new(a, json_object_size(j));
        if (!d) return jj_undef(NULL);
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)j, k, x) {
            jj_str *ks = jj_str_new(a, k, strlen(k));
            jj_val v = jj_from_json(a, x);
            if (!ks || a->exhausted || !jj_dict_set(a, d, ks, v)) return jj_undef(NULL);
        }
        jj_val v = {.t = JJ_DICT};
        v.d = d;
        return v;
    }
    }
    return jj_undef(NULL);
}
