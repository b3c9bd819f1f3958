/* jinja_eval.c — runs a parsed template: statements (output, if, for with loop.*, set, macros and
 * call blocks, filter blocks, break/continue) and expressions with Jinja's runtime semantics:
 *   - lenient Undefined: printing or iterating it gives nothing, testing it is false, but an attribute,
 *     item, call or arithmetic on it is an error (UndefinedError);
 *   - x.name tries the type's methods first, then the key; x[key] tries the key first, then methods;
 *     either on a value that has neither gives Undefined;
 *   - scopes: a for loop body and a macro body get their own scope (a {% set %} inside does not leak
 *     out, hence namespace()); if-blocks do not; macros see the scope they were defined in.
 * Every render error is an RAGD_EINVAL message "template error at line N: ...".
 *
 * Contract: jj_render never aborts on template or input content; all values come from the render
 * arena; the output buffer and the step counter are capped (jinja.h).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "tasks/jinja.h"

struct jj_scope {
    jj_dict *vars;
    jj_scope *parent;
};

struct jj_macro {
    const jj_node *def;  /* JN_MACRO, or JN_CALLBLOCK for caller() */
    jj_scope *closure;   /* the scope it was defined in */
    const jj_node *caller_body; /* for macros called from a call block: the block (set per call) */
};

jj_rc jj_fail(jj_ctx *c, const char *fmt, ...) {
    if (c->failed) return JJ_ERR; /* the first error wins */
    c->failed = true;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ragd_err_set(c->err, RAGD_EINVAL, "template error at line %d: %s", c->line, msg);
    return JJ_ERR;
}

jj_rc jj_oom(jj_ctx *c) { return jj_fail(c, "the template needs more than %u MiB of memory", JJ_MAX_ARENA >> 20); }

jj_rc jj_step(jj_ctx *c) {
    if (++c->steps > JJ_MAX_STEPS) return jj_fail(c, "the template ran more than %d steps", JJ_MAX_STEPS);
    return JJ_OK;
}

static jj_rc out_append(jj_ctx *c, const char *p, size_t n) {
    c->out_total += n;
    if (c->out_total > JJ_MAX_OUTPUT) return jj_fail(c, "the template output exceeds %u MiB", JJ_MAX_OUTPUT >> 20);
    ragd_buf_append(c->out, p, n);
    return JJ_OK;
}

static jj_val lookup(jj_ctx *c, jj_scope *s, const jj_str *name) {
    for (; s; s = s->parent) {
        jj_val *v = jj_dict_get(s->vars, name->p, name->n);
        if (v) return *v;
    }
    jj_val g = jj_global(c, name->p, name->n);
    if (g.t != JJ_UNDEF) return g;
    return jj_undef((jj_str *)name);
}

static jj_scope *scope_new(jj_ctx *c, jj_scope *parent) {
    jj_scope *s = jj_alloc(c->a, sizeof *s);
    if (!s || !(s->vars = jj_dict_new(c->a, 0))) return NULL;
    s->parent = parent;
    return s;
}

static jj_rc eval(jj_ctx *c, jj_scope *s, const jj_node *n, jj_val *out);
static jj_rc exec_body(jj_ctx *c, jj_scope *s, const jj_nodes *body);

static jj_rc undefined_error(jj_ctx *c, jj_val u) {
    if (u.s) return jj_fail(c, "'%.*s' is undefined", (int)(u.s->n > 80 ? 80 : u.s->n), u.s->p);
    return jj_fail(c, "a value is undefined");
}

/* ---- attribute and item access ---- */

static jj_rc get_item(jj_ctx *c, jj_val obj, jj_val key, bool attr_fallback, jj_val *out) {
    if (obj.t == JJ_UNDEF) return undefined_error(c, obj);
    if (obj.t == JJ_DICT && key.t == JJ_STR) {
        jj_val *v = jj_dict_get(obj.d, key.s->p, key.s->n);
        if (v) {
            *out = *v;
            return JJ_OK;
        }
    } else if ((obj.t == JJ_LIST || obj.t == JJ_STR) && (key.t == JJ_INT || key.t == JJ_BOOL)) {
        int64_t i = key.t == JJ_INT ? key.i : key.b;
        if (obj.t == JJ_LIST) {
            int64_t n = (int64_t)obj.l->n;
            if (i < 0) i += n;
            if (i >= 0 && i < n) {
                *out = obj.l->v[i];
                return JJ_OK;
            }
        } else {
            int64_t n = (int64_t)jj_utf8_len(obj.s->p, obj.s->n);
            if (i < 0) i += n;
            if (i >= 0 && i < n) {
                size_t p = 0;
                for (int64_t k = 0; k <= i; p++)
                    if (((unsigned char)obj.s->p[p] & 0xc0) != 0x80 && k++ == i) break;
                size_t e = p + 1;
                while (e < obj.s->n && ((unsigned char)obj.s->p[e] & 0xc0) == 0x80) e++;
                jj_str *ch = jj_str_new(c->a, obj.s->p + p, e - p);
                if (!ch) return jj_oom(c);
                *out = jj_strv(ch);
                return JJ_OK;
            }
        }
    }
    if (attr_fallback && key.t == JJ_STR) return jj_getattr(c, obj, key.s, out);
    *out = jj_undef(key.t == JJ_STR ? key.s : NULL);
    return JJ_OK;
}

static jj_rc get_attr(jj_ctx *c, jj_val obj, jj_str *name, jj_val *out) {
    if (obj.t == JJ_UNDEF) return undefined_error(c, obj);
    jj_rc rc = jj_getattr(c, obj, name, out);
    if (rc || out->t != JJ_UNDEF) return rc;
    if (obj.t == JJ_DICT) {
        jj_val *v = jj_dict_get(obj.d, name->p, name->n);
        if (v) *out = *v;
    }
    return JJ_OK;
}

/* Python slice indices for a sequence of length n */
static void slice_indices(int64_t n, const jj_val *a, const jj_val *b, int64_t step, int64_t *start, int64_t *stop) {
    int64_t lo = step < 0 ? -1 : 0, hi = step < 0 ? n - 1 : n;
    if (a->t == JJ_INT) {
        *start = a->i < 0 ? a->i + n : a->i;
        if (*start < lo) *start = lo;
        if (*start > hi) *start = hi;
    } else *start = step < 0 ? hi : lo;
    if (b->t == JJ_INT) {
        *stop = b->i < 0 ? b->i + n : b->i;
        if (*stop < lo) *stop = lo;
        if (*stop > hi) *stop = hi;
    } else *stop = step < 0 ? lo : hi;
}

static jj_rc do_slice(jj_ctx *c, jj_val obj, jj_val a, jj_val b, jj_val st, jj_val *out) {
    if (obj.t == JJ_UNDEF) return undefined_error(c, obj);
    for (int k = 0; k < 3; k++) {
        jj_val *v = k == 0 ? &a : k == 1 ? &b : &st;
        if (v->t == JJ_BOOL) *v = jj_int(v->b);
        if (v->t != JJ_INT && v->t != JJ_NONE && v->t != JJ_UNDEF) return jj_fail(c, "slice indices must be integers or None");
    }
    int64_t step = st.t == JJ_INT ? st.i : 1;
    if (step == 0) return jj_fail(c, "slice step cannot be zero");
    if (obj.t != JJ_LIST && obj.t != JJ_STR) {
        *out = jj_undef(NULL);
        return JJ_OK;
    }
    /* strings are sliced by code points: index the starts of the characters */
    size_t *cps = NULL;
    int64_t n;
    if (obj.t == JJ_STR) {
        n = (int64_t)jj_utf8_len(obj.s->p, obj.s->n);
        cps = malloc(((size_t)n + 1) * sizeof *cps);
        if (!cps) return jj_oom(c);
        int64_t k = 0;
        for (size_t i = 0; i < obj.s->n; i++)
            if (((unsigned char)obj.s->p[i] & 0xc0) != 0x80) cps[k++] = i;
        cps[n] = obj.s->n;
    } else n = (int64_t)obj.l->n;
    int64_t start, stop;
    slice_indices(n, &a, &b, step, &start, &stop);
    jj_rc rc = JJ_OK;
    if (obj.t == JJ_LIST) {
        jj_list *l = jj_list_new(c->a, 0);
        if (!l) return jj_oom(c);
        l->tuple = obj.l->tuple;
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            if (!jj_list_push(c->a, l, obj.l->v[i])) return jj_oom(c);
        out->t = JJ_LIST;
        out->l = l;
    } else {
        ragd_buf bb = {0};
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            ragd_buf_append(&bb, obj.s->p + cps[i], cps[i + 1] - cps[i]);
        jj_str *s = jj_str_new(c->a, bb.data ? bb.data : "", bb.len);
        ragd_buf_free(&bb);
        if (!s) rc = jj_oom(c);
        else *out = jj_strv(s);
    }
    free(cps);
    return rc;
}

/* ---- operators ---- */

static bool numeric(jj_val v) { return v.t == JJ_INT || v.t == JJ_FLOAT || v.t == JJ_BOOL; }
static double fnum(jj_val v) { return v.t == JJ_FLOAT ? v.f : v.t == JJ_INT ? (double)v.i : v.b; }
static int64_t inum(jj_val v) { return v.t == JJ_INT ? v.i : v.b; }

static jj_rc type_error(jj_ctx *c, const char *op, jj_val a, jj_val b) {
    if (a.t == JJ_UNDEF) return undefined_error(c, a);
    if (b.t == JJ_UNDEF) return undefined_error(c, b);
    return jj_fail(c, "unsupported operand type(s) for %s: '%s' and '%s'", op, jj_type_name(a), jj_type_name(b));
}

static jj_rc concat_seq(jj_ctx *c, jj_val a, jj_val b, jj_val *out) {
    if (a.t == JJ_STR && (a.s->safe || b.s->safe)) { /* Markup + str escapes the str */
        ragd_buf buf = {0};
        if (a.s->safe) ragd_buf_append(&buf, a.s->p, a.s->n);
        else jj_html_escape(&buf, a.s->p, a.s->n);
        if (b.s->safe) ragd_buf_append(&buf, b.s->p, b.s->n);
        else jj_html_escape(&buf, b.s->p, b.s->n);
        jj_str *s = jj_str_new(c->a, buf.data ? buf.data : "", buf.len);
        ragd_buf_free(&buf);
        if (!s) return jj_oom(c);
        s->safe = true;
        *out = jj_strv(s);
        return JJ_OK;
    }
    if (a.t == JJ_STR) {
        jj_str *s = jj_alloc(c->a, sizeof *s + a.s->n + b.s->n + 1);
        if (!s) return jj_oom(c);
        memcpy(s->p, a.s->p, a.s->n);
        memcpy(s->p + a.s->n, b.s->p, b.s->n);
        s->n = a.s->n + b.s->n;
        *out = jj_strv(s);
        return JJ_OK;
    }
    jj_list *l = jj_list_new(c->a, a.l->n + b.l->n);
    if (!l) return jj_oom(c);
    if (a.l->n) memcpy(l->v, a.l->v, a.l->n * sizeof(jj_val)); /* empty lists have no storage (v NULL) */
    if (b.l->n) memcpy(l->v + a.l->n, b.l->v, b.l->n * sizeof(jj_val));
    l->n = a.l->n + b.l->n;
    l->tuple = a.l->tuple;
    out->t = JJ_LIST;
    out->l = l;
    return JJ_OK;
}

static jj_rc repeat_seq(jj_ctx *c, jj_val seq, int64_t k, jj_val *out) {
    if (k < 0) k = 0;
    size_t unit = seq.t == JJ_STR ? seq.s->n : seq.l->n * sizeof(jj_val), total;
    if (!ragd_mul_ok(unit, (size_t)k, &total) || total > JJ_MAX_OUTPUT) return jj_oom(c);
    if (seq.t == JJ_STR) {
        jj_str *s = jj_alloc(c->a, sizeof *s + total + 1);
        if (!s) return jj_oom(c);
        for (int64_t i = 0; i < k; i++) memcpy(s->p + (size_t)i * seq.s->n, seq.s->p, seq.s->n);
        s->n = total;
        *out = jj_strv(s);
        return JJ_OK;
    }
    jj_list *l = jj_list_new(c->a, seq.l->n * (size_t)k);
    if (!l) return jj_oom(c);
    for (int64_t i = 0; i < k && seq.l->n; i++) memcpy(l->v + (size_t)i * seq.l->n, seq.l->v, seq.l->n * sizeof(jj_val));
    l->n = seq.l->n * (size_t)k;
    l->tuple = seq.l->tuple;
    out->t = JJ_LIST;
    out->l = l;
    return JJ_OK;
}

static jj_rc binop(jj_ctx *c, int op, jj_val a, jj_val b, jj_val *out) {
    static const char *const names[] = {"", "+", "-", "*", "/", "//", "%", "**"};
    if (numeric(a) && numeric(b)) {
        bool ints = a.t != JJ_FLOAT && b.t != JJ_FLOAT;
        int64_t x = ints ? inum(a) : 0, y = ints ? inum(b) : 0, r; /* a float's bytes are no bool */
        double fx = fnum(a), fy = fnum(b);
        switch (op) {
        case JO_ADD:
            if (ints && !__builtin_add_overflow(x, y, &r)) return *out = jj_int(r), JJ_OK;
            if (ints) return jj_fail(c, "integer overflow");
            return *out = jj_float(fx + fy), JJ_OK;
        case JO_SUB:
            if (ints && !__builtin_sub_overflow(x, y, &r)) return *out = jj_int(r), JJ_OK;
            if (ints) return jj_fail(c, "integer overflow");
            return *out = jj_float(fx - fy), JJ_OK;
        case JO_MUL:
            if (ints && !__builtin_mul_overflow(x, y, &r)) return *out = jj_int(r), JJ_OK;
            if (ints) return jj_fail(c, "integer overflow");
            return *out = jj_float(fx * fy), JJ_OK;
        case JO_DIV:
            if (fy == 0) return jj_fail(c, "division by zero");
            return *out = jj_float(fx / fy), JJ_OK;
        case JO_FLOORDIV:
        case JO_MOD:
            if (ints) {
                if (y == 0) return jj_fail(c, "integer division or modulo by zero");
                if (x == INT64_MIN && y == -1) return jj_fail(c, "integer overflow");
                int64_t q = x / y, m = x % y;
                if (m && ((m < 0) != (y < 0))) q--, m += y;
                return *out = jj_int(op == JO_MOD ? m : q), JJ_OK;
            }
            if (fy == 0) return jj_fail(c, "float division by zero");
            {
                double m = fmod(fx, fy);
                if (m && ((m < 0) != (fy < 0))) m += fy;
                return *out = jj_float(op == JO_MOD ? m : floor(fx / fy)), JJ_OK;
            }
        case JO_POW:
            if (ints && y >= 0) {
                int64_t acc = 1, base = x;
                for (int64_t e = y; e > 0; e >>= 1) {
                    if ((e & 1) && __builtin_mul_overflow(acc, base, &acc)) return jj_fail(c, "integer overflow");
                    if (e > 1 && __builtin_mul_overflow(base, base, &base)) return jj_fail(c, "integer overflow");
                }
                return *out = jj_int(acc), JJ_OK;
            }
            return *out = jj_float(pow(fx, fy)), JJ_OK;
        }
    }
    if (op == JO_ADD && a.t == b.t && (a.t == JJ_STR || a.t == JJ_LIST)) return concat_seq(c, a, b, out);
    if (op == JO_MUL && (a.t == JJ_STR || a.t == JJ_LIST) && (b.t == JJ_INT || b.t == JJ_BOOL))
        return repeat_seq(c, a, inum(b), out);
    if (op == JO_MUL && (b.t == JJ_STR || b.t == JJ_LIST) && (a.t == JJ_INT || a.t == JJ_BOOL))
        return repeat_seq(c, b, inum(a), out);
    if (op == JO_MOD && a.t == JJ_STR) return jj_fail(c, "printf-style string formatting ('%%') is not supported");
    return type_error(c, names[op], a, b);
}

static jj_rc contains(jj_ctx *c, jj_val item, jj_val seq, bool *out) {
    switch (seq.t) {
    case JJ_UNDEF: *out = false; return JJ_OK;
    case JJ_STR:
        if (item.t != JJ_STR) return jj_fail(c, "'in <string>' requires string as left operand, not %s", jj_type_name(item));
        *out = item.s->n == 0 || memmem(seq.s->p, seq.s->n, item.s->p, item.s->n) != NULL;
        return JJ_OK;
    case JJ_LIST:
        *out = false;
        for (size_t i = 0; i < seq.l->n && !*out; i++) *out = jj_equal(item, seq.l->v[i]);
        return JJ_OK;
    case JJ_DICT: *out = item.t == JJ_STR && jj_dict_get(seq.d, item.s->p, item.s->n); return JJ_OK;
    default: return jj_fail(c, "argument of type '%s' is not iterable", jj_type_name(seq));
    }
}

static jj_rc compare(jj_ctx *c, int op, jj_val a, jj_val b, bool *out) {
    if (op == JO_EQ || op == JO_NE) {
        *out = jj_equal(a, b) == (op == JO_EQ);
        return JJ_OK;
    }
    if (op == JO_IN || op == JO_NOTIN) {
        jj_rc rc = contains(c, a, b, out);
        if (op == JO_NOTIN) *out = !*out;
        return rc;
    }
    int r;
    if (!jj_compare(a, b, &r)) {
        if (a.t == JJ_UNDEF) return undefined_error(c, a);
        if (b.t == JJ_UNDEF) return undefined_error(c, b);
        return jj_fail(c, "'%s' not supported between instances of '%s' and '%s'",
                       op == JO_LT ? "<" : op == JO_LE ? "<=" : op == JO_GT ? ">" : ">=", jj_type_name(a), jj_type_name(b));
    }
    *out = r == 2 ? false : op == JO_LT ? r < 0 : op == JO_LE ? r <= 0 : op == JO_GT ? r > 0 : r >= 0;
    return JJ_OK;
}

/* ---- calls ---- */

typedef struct call_args {
    jj_val pos[64];
    jj_str *kwn[64];
    jj_val kwv[64];
    int np, nk;
} call_args;

static jj_rc eval_args(jj_ctx *c, jj_scope *s, const jj_node *n, call_args *a) {
    a->np = a->nk = 0;
    if (n->kids.n > 64 || n->kw.n > 64) return jj_fail(c, "too many arguments");
    for (int i = 0; i < n->kids.n; i++)
        if (eval(c, s, n->kids.v[i], &a->pos[a->np++])) return JJ_ERR;
    for (int i = 0; i < n->kw.n; i++) {
        a->kwn[a->nk] = n->kwn[i];
        if (eval(c, s, n->kw.v[i], &a->kwv[a->nk++])) return JJ_ERR;
    }
    return JJ_OK;
}

jj_rc jj_call_macro(jj_ctx *c, jj_macro *m, const jj_val *args, int nargs, jj_str *const *kwn, const jj_val *kwv,
                    int nkw, jj_val *out) {
    const jj_node *def = m->def;
    const char *name = def->kind == JN_MACRO ? def->lit.s->p : "caller";
    if (jj_step(c)) return JJ_ERR;
    if (c->depth >= JJ_MAX_CALL_DEPTH) return jj_fail(c, "macro calls nested more than %d deep", JJ_MAX_CALL_DEPTH);
    int np = def->kw.n;
    if (nargs > np) return jj_fail(c, "macro '%s' takes not more than %d argument(s)", name, np);
    jj_scope *s = scope_new(c, m->closure);
    if (!s) return jj_oom(c);
    for (int i = 0; i < nargs; i++)
        if (!jj_dict_set(c->a, s->vars, def->kwn[i], args[i])) return jj_oom(c);
    for (int k = 0; k < nkw; k++) {
        int i = 0;
        while (i < np && (def->kwn[i]->n != kwn[k]->n || memcmp(def->kwn[i]->p, kwn[k]->p, kwn[k]->n))) i++;
        if (i == np) return jj_fail(c, "macro '%s' has no argument named '%s'", name, kwn[k]->p);
        if (i < nargs) return jj_fail(c, "macro '%s' got multiple values for argument '%s'", name, kwn[k]->p);
        if (!jj_dict_set(c->a, s->vars, def->kwn[i], kwv[k])) return jj_oom(c);
    }
    for (int i = 0; i < np; i++) {
        if (jj_dict_get(s->vars, def->kwn[i]->p, def->kwn[i]->n)) continue;
        jj_val v = jj_undef(def->kwn[i]);
        if (def->kw.v[i] && eval(c, s, def->kw.v[i], &v)) return JJ_ERR;
        if (!jj_dict_set(c->a, s->vars, def->kwn[i], v)) return jj_oom(c);
    }
    if (m->caller_body) {
        jj_macro *cm = jj_alloc(c->a, sizeof *cm);
        jj_str *cn = jj_str_new(c->a, "caller", 6);
        if (!cm || !cn) return jj_oom(c);
        *cm = (jj_macro){.def = m->caller_body, .closure = c->caller_scope};
        jj_val cv = {.t = JJ_MACRO};
        cv.m = cm;
        if (!jj_dict_set(c->a, s->vars, cn, cv)) return jj_oom(c);
    }
    ragd_buf buf = {0}, *saved = c->out;
    int line = c->line;
    c->out = &buf;
    c->depth++;
    jj_rc rc = exec_body(c, s, &def->kids);
    c->depth--;
    c->out = saved;
    c->line = line;
    if (rc == JJ_BREAK || rc == JJ_CONTINUE) rc = JJ_OK;
    if (!rc) {
        jj_str *r = jj_str_new(c->a, buf.data ? buf.data : "", buf.len);
        if (!r) rc = jj_oom(c);
        else *out = jj_strv(r);
    }
    ragd_buf_free(&buf);
    return rc;
}

static jj_rc call_value(jj_ctx *c, jj_val f, const call_args *a, jj_val *out) {
    if (f.t == JJ_FUNC) return jj_call_func(c, f.fn, a->pos, a->np, a->kwn, a->kwv, a->nk, out);
    if (f.t == JJ_MACRO) return jj_call_macro(c, f.m, a->pos, a->np, a->kwn, a->kwv, a->nk, out);
    if (f.t == JJ_UNDEF) return undefined_error(c, f);
    return jj_fail(c, "'%s' object is not callable", jj_type_name(f));
}

static jj_rc apply_filter(jj_ctx *c, jj_scope *s, const jj_node *f, jj_val v, jj_val *out) {
    call_args *a = malloc(sizeof *a);
    if (!a) return jj_oom(c);
    jj_rc rc = eval_args(c, s, f, a);
    if (!rc) {
        c->line = f->line;
        if (!f->fn) rc = jj_fail(c, "no filter named '%s'", f->lit.s->p);
        else rc = ((jj_filter_fn)f->fn)(c, v, a->pos, a->np, a->kwn, a->kwv, a->nk, out);
    }
    free(a);
    return rc;
}

/* a filter chain whose innermost operand (x == NULL) is v */
static jj_rc apply_chain(jj_ctx *c, jj_scope *s, const jj_node *f, jj_val v, jj_val *out) {
    if (!f) return *out = v, JJ_OK;
    jj_val inner;
    if (apply_chain(c, s, f->x, v, &inner)) return JJ_ERR;
    return apply_filter(c, s, f, inner, out);
}

/* ---- expressions ---- */

static jj_rc eval1(jj_ctx *c, jj_scope *s, const jj_node *n, jj_val *out);

/* expressions can be deep without nesting (a | f | f | ..., a + b + c + ...): bounded here */
static jj_rc eval(jj_ctx *c, jj_scope *s, const jj_node *n, jj_val *out) {
    if (++c->eval_depth > JJ_MAX_EVAL_DEPTH) {
        c->eval_depth--;
        return jj_fail(c, "expression nested more than %d deep", JJ_MAX_EVAL_DEPTH);
    }
    jj_rc rc = eval1(c, s, n, out);
    c->eval_depth--;
    return rc;
}

static jj_rc eval1(jj_ctx *c, jj_scope *s, const jj_node *n, jj_val *out) {
    c->line = n->line;
    jj_val a, b;
    switch (n->kind) {
    case JN_LIT: *out = n->lit; return JJ_OK;
    case JN_NAME: *out = lookup(c, s, n->lit.s); return JJ_OK;
    case JN_LIST:
    case JN_TUPLE: {
        jj_list *l = jj_list_new(c->a, (size_t)n->kids.n);
        if (!l) return jj_oom(c);
        l->tuple = n->kind == JN_TUPLE;
        for (int i = 0; i < n->kids.n; i++)
            if (eval(c, s, n->kids.v[i], &l->v[l->n++])) return JJ_ERR;
        out->t = JJ_LIST;
        out->l = l;
        return JJ_OK;
    }
    case JN_DICT: {
        jj_dict *d = jj_dict_new(c->a, (size_t)n->kids.n);
        if (!d) return jj_oom(c);
        for (int i = 0; i < n->kids.n; i++) {
            if (eval(c, s, n->kids.v[i], &a) || eval(c, s, n->kw.v[i], &b)) return JJ_ERR;
            if (a.t != JJ_STR) return jj_fail(c, "dict literals with non-string keys are not supported");
            if (!jj_dict_set(c->a, d, a.s, b)) return jj_oom(c);
        }
        out->t = JJ_DICT;
        out->d = d;
        return JJ_OK;
    }
    case JN_ATTR:
        if (eval(c, s, n->x, &a)) return JJ_ERR;
        c->line = n->line;
        return get_attr(c, a, n->lit.s, out);
    case JN_ITEM:
        if (eval(c, s, n->x, &a) || eval(c, s, n->y, &b)) return JJ_ERR;
        c->line = n->line;
        return get_item(c, a, b, true, out);
    case JN_SLICE: {
        jj_val st = jj_none();
        a = b = jj_none();
        jj_val obj;
        if (eval(c, s, n->x, &obj) || (n->y && eval(c, s, n->y, &a)) || (n->z && eval(c, s, n->z, &b)) ||
            (n->kids.v[0] && eval(c, s, n->kids.v[0], &st)))
            return JJ_ERR;
        return do_slice(c, obj, a, b, st, out);
    }
    case JN_CALL: {
        jj_val f;
        if (eval(c, s, n->x, &f)) return JJ_ERR;
        call_args *args = malloc(sizeof *args);
        if (!args) return jj_oom(c);
        jj_rc rc = eval_args(c, s, n, args);
        c->line = n->line;
        if (!rc) rc = call_value(c, f, args, out);
        free(args);
        return rc;
    }
    case JN_FILTER:
        if (eval(c, s, n->x, &a)) return JJ_ERR;
        return apply_filter(c, s, n, a, out);
    case JN_TEST: {
        if (eval(c, s, n->x, &a)) return JJ_ERR;
        call_args *args = malloc(sizeof *args);
        if (!args) return jj_oom(c);
        jj_rc rc = eval_args(c, s, n, args);
        bool r = false;
        c->line = n->line;
        if (!rc) rc = n->fn ? ((jj_test_fn)n->fn)(c, a, args->pos, args->np, &r) : jj_fail(c, "no test named '%s'", n->lit.s->p);
        free(args);
        *out = jj_bool(n->op ? !r : r);
        return rc;
    }
    case JN_NOT:
        if (eval(c, s, n->x, &a)) return JJ_ERR;
        *out = jj_bool(!jj_truthy(a));
        return JJ_OK;
    case JN_NEG:
    case JN_POS:
        if (eval(c, s, n->x, &a)) return JJ_ERR;
        if (a.t == JJ_BOOL) a = jj_int(a.b);
        if (a.t == JJ_INT) {
            if (n->kind == JN_NEG && a.i == INT64_MIN) return jj_fail(c, "integer overflow");
            *out = jj_int(n->kind == JN_NEG ? -a.i : a.i);
        } else if (a.t == JJ_FLOAT) *out = jj_float(n->kind == JN_NEG ? -a.f : a.f);
        else if (a.t == JJ_UNDEF) return undefined_error(c, a);
        else return jj_fail(c, "bad operand type for unary %c: '%s'", n->kind == JN_NEG ? '-' : '+', jj_type_name(a));
        return JJ_OK;
    case JN_BIN:
        if (eval(c, s, n->x, &a) || eval(c, s, n->y, &b)) return JJ_ERR;
        c->line = n->line;
        return binop(c, n->op, a, b, out);
    case JN_CONCAT: {
        ragd_buf buf = {0};
        for (int i = 0; i < n->kids.n; i++) {
            if (eval(c, s, n->kids.v[i], &a)) {
                ragd_buf_free(&buf);
                return JJ_ERR;
            }
            jj_str_of(&buf, a);
            if (buf.len > JJ_MAX_OUTPUT) {
                ragd_buf_free(&buf);
                return jj_oom(c);
            }
        }
        jj_str *r = jj_str_new(c->a, buf.data ? buf.data : "", buf.len);
        ragd_buf_free(&buf);
        if (!r) return jj_oom(c);
        *out = jj_strv(r);
        return JJ_OK;
    }
    case JN_CMP: {
        if (eval(c, s, n->x, &a)) return JJ_ERR;
        bool r = true;
        for (int i = 0; i < n->els.n && r; i++) {
            if (eval(c, s, n->els.v[i], &b)) return JJ_ERR;
            c->line = n->line;
            if (compare(c, n->ops[i], a, b, &r)) return JJ_ERR;
            a = b;
        }
        *out = jj_bool(r);
        return JJ_OK;
    }
    case JN_AND:
    case JN_OR:
        if (eval(c, s, n->x, &a)) return JJ_ERR;
        if (jj_truthy(a) == (n->kind == JN_OR)) return *out = a, JJ_OK;
        return eval(c, s, n->y, out);
    case JN_COND:
        if (eval(c, s, n->y, &a)) return JJ_ERR;
        if (jj_truthy(a)) return eval(c, s, n->x, out);
        if (n->z) return eval(c, s, n->z, out);
        *out = jj_undef(NULL);
        return JJ_OK;
    default: return jj_fail(c, "internal: not an expression");
    }
}

/* ---- statements ---- */

jj_rc jj_iterate(jj_ctx *c, jj_val v, jj_list **out) {
    if (v.t == JJ_LIST) return *out = v.l, JJ_OK;
    jj_list *l = jj_list_new(c->a, 0);
    if (!l) return jj_oom(c);
    *out = l;
    if (v.t == JJ_UNDEF) return JJ_OK;
    if (v.t == JJ_DICT && !v.d->ns) {
        for (size_t i = 0; i < v.d->n; i++)
            if (!jj_list_push(c->a, l, jj_strv(v.d->k[i]))) return jj_oom(c);
        return JJ_OK;
    }
    if (v.t == JJ_STR) {
        for (size_t i = 0; i < v.s->n;) {
            size_t e = i + 1;
            while (e < v.s->n && ((unsigned char)v.s->p[e] & 0xc0) == 0x80) e++;
            jj_str *ch = jj_str_new(c->a, v.s->p + i, e - i);
            if (!ch || !jj_list_push(c->a, l, jj_strv(ch))) return jj_oom(c);
            i = e;
        }
        return JJ_OK;
    }
    return jj_fail(c, "'%s' object is not iterable", jj_type_name(v));
}

static jj_rc assign(jj_ctx *c, jj_scope *s, const jj_node *target, jj_val v) {
    if (target->kind == JN_NAME) return jj_dict_set(c->a, s->vars, target->lit.s, v) ? JJ_OK : jj_oom(c);
    if (target->kind == JN_ATTR) {
        jj_val ns = lookup(c, s, target->x->lit.s);
        if (ns.t != JJ_DICT || !ns.d->ns) return jj_fail(c, "cannot assign attribute on non-namespace object");
        if (target->lit.s->n && target->lit.s->p[0] == '_')
            return jj_fail(c, "chat templates cannot store underscore-prefixed attributes on a namespace");
        return jj_dict_set(c->a, ns.d, target->lit.s, v) ? JJ_OK : jj_oom(c);
    }
    /* tuple unpacking */
    jj_list *items;
    if (jj_iterate(c, v, &items)) return JJ_ERR;
    if ((int)items->n != target->kids.n)
        return jj_fail(c, "cannot unpack %zu values into %d names", items->n, target->kids.n);
    for (int i = 0; i < target->kids.n; i++)
        if (assign(c, s, target->kids.v[i], items->v[i])) return JJ_ERR;
    return JJ_OK;
}

static jj_str *S(jj_ctx *c, const char *lit) { return jj_str_new(c->a, lit, strlen(lit)); }

static jj_rc exec_for(jj_ctx *c, jj_scope *s, const jj_node *n) {
    jj_val it;
    if (eval(c, s, n->y, &it)) return JJ_ERR;
    jj_list *items;
    if (jj_iterate(c, it, &items)) return JJ_ERR;
    if (n->z) { /* loop filter: evaluated with the targets bound */
        jj_list *f = jj_list_new(c->a, 0);
        if (!f) return jj_oom(c);
        for (size_t i = 0; i < items->n; i++) {
            if (jj_step(c)) return JJ_ERR;
            jj_scope *fs = scope_new(c, s);
            jj_val keep;
            if (!fs) return jj_oom(c);
            if (assign(c, fs, n->x, items->v[i]) || eval(c, fs, n->z, &keep)) return JJ_ERR;
            if (jj_truthy(keep) && !jj_list_push(c->a, f, items->v[i])) return jj_oom(c);
        }
        items = f;
    }
    if (items->n == 0) return exec_body(c, s, &n->els);
    /* one scope and one loop object per loop, reset each iteration: what an iteration sets is gone at
     * the next one (as in Jinja), and a long loop costs no memory per iteration */
    static const char *const names[] = {"index", "index0", "revindex", "revindex0", "first", "last", "length",
                                        "depth", "depth0", "previtem", "nextitem", "cycle"};
    enum { NK = sizeof names / sizeof names[0] };
    jj_str *keys[NK], *k_loop = S(c, "loop");
    jj_scope *ls = scope_new(c, s);
    jj_dict *lp = jj_dict_new(c->a, NK);
    if (!k_loop || !ls || !lp) return jj_oom(c);
    for (int k = 0; k < NK; k++)
        if (!(keys[k] = S(c, names[k]))) return jj_oom(c);
    jj_val lv = {.t = JJ_DICT};
    lv.d = lp;
    size_t len = items->n;
    for (size_t i = 0; i < len; i++) {
        if (jj_step(c)) return JJ_ERR;
        int64_t idx = (int64_t)i, L = (int64_t)len;
        jj_val v[NK] = {jj_int(idx + 1), jj_int(idx), jj_int(L - idx), jj_int(L - idx - 1), jj_bool(i == 0),
                        jj_bool(i + 1 == len), jj_int(L), jj_int(1), jj_int(0),
                        i ? items->v[i - 1] : jj_undef(NULL), i + 1 < len ? items->v[i + 1] : jj_undef(NULL),
                        jj_bound(c, JJ_FN_CYCLE, jj_int(idx))};
        if (v[NK - 1].t == JJ_UNDEF) return jj_oom(c);
        lp->n = 0;
        ls->vars->n = 0;
        for (int k = 0; k < NK; k++)
            if (!jj_dict_set(c->a, lp, keys[k], v[k])) return jj_oom(c);
        if (!jj_dict_set(c->a, ls->vars, k_loop, lv) || assign(c, ls, n->x, items->v[i])) return c->failed ? JJ_ERR : jj_oom(c);
        jj_rc rc = exec_body(c, ls, &n->kids);
        if (rc == JJ_BREAK) break;
        if (rc == JJ_ERR) return rc;
    }
    return JJ_OK;
}

static jj_rc exec_stmt(jj_ctx *c, jj_scope *s, const jj_node *n) {
    c->line = n->line;
    jj_val v;
    switch (n->kind) {
    case JN_TEXT: return out_append(c, n->lit.s->p, n->lit.s->n);
    case JN_OUT: {
        if (eval(c, s, n->x, &v)) return JJ_ERR;
        if (v.t == JJ_STR) return out_append(c, v.s->p, v.s->n);
        ragd_buf b = {0};
        jj_str_of(&b, v);
        jj_rc rc = out_append(c, b.data ? b.data : "", b.len);
        ragd_buf_free(&b);
        return rc;
    }
    case JN_IF:
        if (eval(c, s, n->x, &v)) return JJ_ERR;
        return exec_body(c, s, jj_truthy(v) ? &n->kids : &n->els);
    case JN_FOR: return exec_for(c, s, n);
    case JN_SET:
        if (eval(c, s, n->y, &v)) return JJ_ERR;
        return assign(c, s, n->x, v);
    case JN_SETBLOCK:
    case JN_FILTERBLOCK: {
        ragd_buf buf = {0}, *saved = c->out;
        c->out = &buf;
        jj_rc rc = exec_body(c, s, &n->kids);
        c->out = saved;
        jj_str *body = rc ? NULL : jj_str_new(c->a, buf.data ? buf.data : "", buf.len);
        ragd_buf_free(&buf);
        if (rc) return rc;
        if (!body) return jj_oom(c);
        c->out_total -= body->n; /* counted again when it is output */
        if (apply_chain(c, s, n->y, jj_strv(body), &v)) return JJ_ERR;
        if (n->kind == JN_SETBLOCK) return assign(c, s, n->x, v);
        ragd_buf b = {0};
        jj_str_of(&b, v);
        rc = out_append(c, b.data ? b.data : "", b.len);
        ragd_buf_free(&b);
        return rc;
    }
    case JN_MACRO: {
        jj_macro *m = jj_alloc(c->a, sizeof *m);
        if (!m) return jj_oom(c);
        m->def = n;
        m->closure = s;
        v.t = JJ_MACRO;
        v.m = m;
        return jj_dict_set(c->a, s->vars, n->lit.s, v) ? JJ_OK : jj_oom(c);
    }
    case JN_CALLBLOCK: {
        const jj_node *call = n->x;
        jj_val f;
        if (eval(c, s, call->x, &f)) return JJ_ERR;
        if (f.t != JJ_MACRO) return jj_fail(c, "{%% call %%} needs a macro");
        call_args *args = malloc(sizeof *args);
        if (!args) return jj_oom(c);
        jj_rc rc = eval_args(c, s, call, args);
        jj_macro m = *f.m;
        m.caller_body = n;
        jj_scope *saved = c->caller_scope;
        c->caller_scope = s;
        if (!rc) rc = jj_call_macro(c, &m, args->pos, args->np, args->kwn, args->kwv, args->nk, &v);
        c->caller_scope = saved;
        free(args);
        if (rc) return rc;
        return out_append(c, v.s->p, v.s->n);
    }
    case JN_BODY: return exec_body(c, s, &n->kids);
    case JN_BREAK: return JJ_BREAK;
    case JN_CONTINUE: return JJ_CONTINUE;
    default: return jj_fail(c, "internal: not a statement");
    }
}

static jj_rc exec_body(jj_ctx *c, jj_scope *s, const jj_nodes *body) {
    for (int i = 0; i < body->n; i++) {
        jj_rc rc = exec_stmt(c, s, body->v[i]);
        if (rc) return rc;
        if (c->a->exhausted) return jj_oom(c);
    }
    return JJ_OK;
}

ragd_status jj_render(const jj_template *t, jj_dict *vars, jj_arena *a, time_t now, bool now_utc, ragd_buf *out,
                      bool *raised, ragd_err *err) {
    jj_scope *g = jj_alloc(a, sizeof *g);
    if (!g) return ragd_err_set(err, RAGD_ENOMEM, "template variables too large");
    g->vars = vars;
    jj_ctx c = {.a = a, .out = out, .globals = g, .now = now, .now_utc = now_utc, .err = err, .line = 1};
    size_t start = out->len;
    jj_rc rc = exec_body(&c, g, &t->root->kids);
    if (raised) *raised = c.raised;
    if (rc == JJ_ERR || c.failed) {
        out->len = start;
        if (out->data) out->data[start] = 0;
        if (!c.failed) return ragd_err_set(err, RAGD_EINVAL, "template error");
        return RAGD_EINVAL;
    }
    return RAGD_OK;
}
