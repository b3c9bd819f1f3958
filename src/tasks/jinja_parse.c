/* jinja_parse.c — tokens → AST, following jinja2.parser's grammar and operator precedence:
 *   expr    := or ("if" or ("else" expr)?)*            (conditional expressions)
 *   or/and/not, compare (== != < <= > >= in, not in; chained), + -, ~, * / // %, **, unary - +,
 *   primary (literals, names, (tuple), [list], {dict}) with postfix .attr [item] [a:b:c] (call),
 *   then filters "| name(args)" and tests "is [not] name arg".
 * Statements: if/elif/else, for (tuple targets, "if" filter, else), set (expression, tuple targets,
 * namespace attributes, block set with filters), macro (defaults), call (caller args), filter blocks,
 * break/continue (loopcontrols), generation (transformers' AssistantTracker: renders its body).
 * Unknown filters and tests are an error here unless inside an {% if %} (Jinja 3 defers those to
 * run time); include/import/extends/block and recursive loops are not supported (a clear error).
 *
 * Contract: nodes live in the template's arena; nesting is capped at JJ_MAX_NEST; every error is
 * RAGD_EFORMAT with the line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "tasks/jinja.h"

typedef struct parser {
    const jj_toks *toks;
    size_t i;
    jj_arena *a;
    ragd_err *err;
    int depth, in_if;
    bool failed;
} parser;

static const jj_tok *cur(parser *P) { return &P->toks->v[P->i]; }
static const jj_tok *peek(parser *P, size_t k) {
    size_t j = P->i + k;
    return &P->toks->v[j < P->toks->n ? j : P->toks->n - 1];
}
static void advance(parser *P) {
    if (P->i + 1 < P->toks->n) P->i++;
}

static void *perr(parser *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void *perr(parser *P, const char *fmt, ...) {
    if (P->failed) return NULL;
    P->failed = true;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ragd_err_set(P->err, RAGD_EFORMAT, "template syntax error at line %d: %s", cur(P)->line, msg);
    return NULL;
}

static bool is_op(const jj_tok *t, const char *op) { return t->t == JT_OP && t->n == strlen(op) && !memcmp(t->p, op, t->n); }
static bool is_name(const jj_tok *t, const char *nm) {
    return t->t == JT_NAME && t->n == strlen(nm) && !memcmp(t->p, nm, t->n);
}
static bool skip_op(parser *P, const char *op) {
    if (!is_op(cur(P), op)) return false;
    advance(P);
    return true;
}
static bool skip_name(parser *P, const char *nm) {
    if (!is_name(cur(P), nm)) return false;
    advance(P);
    return true;
}
static bool expect_op(parser *P, const char *op) {
    if (skip_op(P, op)) return true;
    perr(P, "expected '%s'", op);
    return false;
}

static const char *tok_desc(const jj_tok *t, char *buf, size_t n) {
    switch (t->t) {
    case JT_EOF: return "end of template";
    case JT_BLOCK_END: return "end of statement block";
    case JT_VAR_END: return "end of print statement";
    default: snprintf(buf, n, "'%.*s'", (int)(t->n > 40 ? 40 : t->n), t->p); return buf;
    }
}

static jj_node *node(parser *P, jj_kind k) {
    jj_node *n = jj_alloc(P->a, sizeof *n);
    if (!n) return perr(P, "template too large");
    n->kind = k;
    n->line = cur(P)->line;
    return n;
}

static bool nodes_push(parser *P, jj_nodes *v, jj_node *x) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 4;
        jj_node **nv = jj_alloc(P->a, (size_t)cap * sizeof *nv);
        if (!nv) return perr(P, "template too large"), false;
        if (v->n) memcpy(nv, v->v, (size_t)v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return true;
}

static jj_str *tok_str(parser *P, const jj_tok *t) {
    jj_str *s = jj_str_new(P->a, t->p, t->n);
    if (!s) perr(P, "template too large");
    return s;
}

static jj_node *parse_expr(parser *P, bool condexpr);
static jj_node *parse_unary(parser *P, bool with_filter);
static jj_node *parse_primary(parser *P);
static jj_node *parse_postfix(parser *P, jj_node *n);
static jj_node *parse_filter_expr(parser *P, jj_node *n);

static bool enter(parser *P) {
    if (++P->depth > JJ_MAX_NEST) return perr(P, "nested too deeply (more than %d levels)", JJ_MAX_NEST), false;
    return true;
}

/* expr ("," expr)* → a tuple if there is a comma (or explicit parentheses with none inside) */
static jj_node *parse_tuple(parser *P, bool condexpr, bool explicit_parens, bool for_target) {
    jj_node *first = NULL, *t = NULL;
    for (;;) {
        const jj_tok *c = cur(P);
        if (t && (c->t == JT_VAR_END || c->t == JT_BLOCK_END || is_op(c, ")") || (for_target && is_name(c, "in")) ||
                  is_op(c, "=")))
            break; /* a trailing comma */
        if (!first && explicit_parens && is_op(c, ")")) return node(P, JN_TUPLE);
        jj_node *e;
        if (for_target) {
            if (c->t != JT_NAME) return perr(P, "expected a name to assign to");
            e = node(P, JN_NAME);
            if (!e || !(e->lit.s = tok_str(P, c))) return NULL;
            e->lit.t = JJ_STR;
            advance(P);
        } else e = parse_expr(P, condexpr);
        if (!e) return NULL;
        if (t) {
            if (!nodes_push(P, &t->kids, e)) return NULL;
        } else first = e;
        if (!skip_op(P, ",")) break;
        if (!t) {
            t = node(P, JN_TUPLE);
            if (!t || !nodes_push(P, &t->kids, first)) return NULL;
        }
    }
    return t ? t : first;
}

static bool parse_call_args(parser *P, jj_node *n) {
    /* after '(' */
    int nkw = 0;
    jj_str *names[256];
    while (!skip_op(P, ")")) {
        if (n->kids.n + nkw > 0 && !expect_op(P, ",")) return false;
        if (skip_op(P, ")")) break;
        if (is_op(cur(P), "*") || is_op(cur(P), "**")) return perr(P, "*args and **kwargs in calls are not supported"), false;
        if (cur(P)->t == JT_NAME && is_op(peek(P, 1), "=")) {
            if (nkw == 256) return perr(P, "too many keyword arguments"), false;
            if (!(names[nkw] = tok_str(P, cur(P)))) return false;
            advance(P);
            advance(P);
            jj_node *v = parse_expr(P, true);
            if (!v || !nodes_push(P, &n->kw, v)) return false;
            nkw++;
        } else {
            if (nkw) return perr(P, "a positional argument follows keyword arguments"), false;
            jj_node *v = parse_expr(P, true);
            if (!v || !nodes_push(P, &n->kids, v)) return false;
        }
    }
    if (nkw) {
        n->kwn = jj_alloc(P->a, (size_t)nkw * sizeof *n->kwn);
        if (!n->kwn) return perr(P, "template too large"), false;
        memcpy(n->kwn, names, (size_t)nkw * sizeof *names);
    }
    return true;
}

static jj_node *parse_primary(parser *P) {
    if (!enter(P)) return NULL;
    const jj_tok *t = cur(P);
    jj_node *n = NULL;
    if (t->t == JT_NAME) {
        n = node(P, JN_LIT);
        if (!n) return NULL;
        if (is_name(t, "true") || is_name(t, "True")) n->lit = jj_bool(true);
        else if (is_name(t, "false") || is_name(t, "False")) n->lit = jj_bool(false);
        else if (is_name(t, "none") || is_name(t, "None")) n->lit = jj_none();
        else {
            n->kind = JN_NAME;
            if (!(n->lit.s = tok_str(P, t))) return NULL;
            n->lit.t = JJ_STR;
        }
        advance(P);
    } else if (t->t == JT_STRING) {
        n = node(P, JN_LIT);
        if (!n) return NULL;
        jj_str *s = t->s;
        advance(P);
        while (cur(P)->t == JT_STRING) { /* "a" "b" */
            jj_str *b = cur(P)->s, *c = jj_alloc(P->a, sizeof *c + s->n + b->n + 1);
            if (!c) return perr(P, "template too large");
            memcpy(c->p, s->p, s->n);
            memcpy(c->p + s->n, b->p, b->n);
            c->n = s->n + b->n;
            s = c;
            advance(P);
        }
        n->lit = jj_strv(s);
    } else if (t->t == JT_INT || t->t == JT_FLOAT) {
        n = node(P, JN_LIT);
        if (!n) return NULL;
        n->lit = t->t == JT_INT ? jj_int(t->i) : jj_float(t->f);
        advance(P);
    } else if (is_op(t, "(")) {
        advance(P);
        n = parse_tuple(P, true, true, false);
        if (!n || !expect_op(P, ")")) return NULL;
    } else if (is_op(t, "[")) {
        advance(P);
        n = node(P, JN_LIST);
        if (!n) return NULL;
        while (!skip_op(P, "]")) {
            if (n->kids.n && !expect_op(P, ",")) return NULL;
            if (skip_op(P, "]")) break;
            jj_node *e = parse_expr(P, true);
            if (!e || !nodes_push(P, &n->kids, e)) return NULL;
        }
    } else if (is_op(t, "{")) {
        advance(P);
        n = node(P, JN_DICT);
        if (!n) return NULL;
        while (!skip_op(P, "}")) {
            if (n->kids.n && !expect_op(P, ",")) return NULL;
            if (skip_op(P, "}")) break;
            jj_node *k = parse_expr(P, true);
            if (!k || !expect_op(P, ":")) return NULL;
            jj_node *v = parse_expr(P, true);
            if (!v || !nodes_push(P, &n->kids, k) || !nodes_push(P, &n->kw, v)) return NULL;
        }
    } else {
        char b[64];
        return perr(P, "unexpected %s", tok_desc(t, b, sizeof b));
    }
    P->depth--;
    return n;
}

static jj_node *parse_subscript(parser *P, jj_node *base) {
    /* after '[' */
    jj_node *parts[3] = {NULL, NULL, NULL};
    int np = 0;
    bool slice = false;
    if (!is_op(cur(P), ":")) {
        parts[0] = parse_expr(P, true);
        if (!parts[0]) return NULL;
    }
    np = 1;
    while (np < 3 && skip_op(P, ":")) {
        slice = true;
        if (!is_op(cur(P), ":") && !is_op(cur(P), "]")) {
            parts[np] = parse_expr(P, true);
            if (!parts[np]) return NULL;
        }
        np++;
    }
    if (!expect_op(P, "]")) return NULL;
    jj_node *n = node(P, slice ? JN_SLICE : JN_ITEM);
    if (!n) return NULL;
    n->x = base;
    n->y = parts[0];
    if (slice) {
        n->z = parts[1];
        if (!nodes_push(P, &n->kids, parts[2])) return NULL; /* step (may be NULL) */
    }
    return n;
}

static jj_node *parse_postfix(parser *P, jj_node *n) {
    for (;;) {
        if (!n) return NULL;
        const jj_tok *t = cur(P);
        if (is_op(t, ".")) {
            advance(P);
            const jj_tok *a = cur(P);
            if (a->t == JT_NAME) {
                jj_node *m = node(P, JN_ATTR);
                if (!m || !(m->lit.s = tok_str(P, a))) return NULL;
                m->lit.t = JJ_STR;
                m->x = n;
                n = m;
            } else if (a->t == JT_INT) {
                jj_node *m = node(P, JN_ITEM), *k = node(P, JN_LIT);
                if (!m || !k) return NULL;
                k->lit = jj_int(a->i);
                m->x = n;
                m->y = k;
                n = m;
            } else return perr(P, "expected an attribute name after '.'");
            advance(P);
        } else if (is_op(t, "[")) {
            advance(P);
            n = parse_subscript(P, n);
        } else if (is_op(t, "(")) {
            advance(P);
            jj_node *m = node(P, JN_CALL);
            if (!m) return NULL;
            m->x = n;
            if (!parse_call_args(P, m)) return NULL;
            n = m;
        } else return n;
    }
}

/* "| name(args)" after the operand x (x NULL in {% filter %} and {% set x | f %}) */
static jj_node *parse_filter(parser *P, jj_node *x) {
    const jj_tok *t = cur(P);
    if (t->t != JT_NAME) return perr(P, "expected a filter name after '|'");
    jj_node *f = node(P, JN_FILTER);
    if (!f || !(f->lit.s = tok_str(P, t))) return NULL;
    f->lit.t = JJ_STR;
    f->x = x;
    f->fn = (const void *)jj_find_filter(t->p, t->n);
    if (!f->fn && !P->in_if) return perr(P, "no filter named '%.*s'", (int)t->n, t->p);
    advance(P);
    if (is_op(cur(P), ".")) return perr(P, "dotted filter names are not supported");
    if (skip_op(P, "(") && !parse_call_args(P, f)) return NULL;
    return f;
}

static jj_node *parse_test(parser *P, jj_node *x) {
    /* after 'is' */
    jj_node *n = node(P, JN_TEST);
    if (!n) return NULL;
    n->x = x;
    if (skip_name(P, "not")) n->op = 1;
    const jj_tok *t = cur(P);
    if (t->t != JT_NAME) return perr(P, "expected a test name after 'is'");
    if (!(n->lit.s = tok_str(P, t))) return NULL;
    n->lit.t = JJ_STR;
    n->fn = (const void *)jj_find_test(t->p, t->n);
    if (!n->fn && !P->in_if) return perr(P, "no test named '%.*s'", (int)t->n, t->p);
    advance(P);
    const jj_tok *c = cur(P);
    if (is_op(c, "(")) {
        advance(P);
        if (!parse_call_args(P, n)) return NULL;
    } else if ((c->t == JT_NAME || c->t == JT_STRING || c->t == JT_INT || c->t == JT_FLOAT || is_op(c, "[") ||
                is_op(c, "{")) &&
               !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
        if (is_name(c, "is")) return perr(P, "you cannot chain multiple tests with is");
        jj_node *a = parse_postfix(P, parse_primary(P));
        if (!a || !nodes_push(P, &n->kids, a)) return NULL;
    }
    return n;
}

static jj_node *parse_filter_expr(parser *P, jj_node *n) {
    for (;;) {
        if (!n) return NULL;
        if (skip_op(P, "|")) n = parse_filter(P, n);
        else if (skip_name(P, "is")) n = parse_test(P, n);
        else if (is_op(cur(P), "(")) {
            advance(P);
            jj_node *m = node(P, JN_CALL);
            if (!m) return NULL;
            m->x = n;
            if (!parse_call_args(P, m)) return NULL;
            n = m;
        } else return n;
    }
}

static jj_node *parse_unary(parser *P, bool with_filter) {
    if (!enter(P)) return NULL;
    jj_node *n;
    if (is_op(cur(P), "-") || is_op(cur(P), "+")) {
        bool neg = is_op(cur(P), "-");
        advance(P);
        n = node(P, neg ? JN_NEG : JN_POS);
        if (!n || !(n->x = parse_unary(P, false))) return NULL;
    } else n = parse_primary(P);
    n = parse_postfix(P, n);
    if (with_filter) n = parse_filter_expr(P, n);
    P->depth--;
    return n;
}

static jj_node *binary(parser *P, int op, jj_node *l, jj_node *r) {
    if (!l || !r) return NULL;
    jj_node *n = node(P, JN_BIN);
    if (!n) return NULL;
    n->op = op;
    n->x = l;
    n->y = r;
    return n;
}

static jj_node *parse_pow(parser *P) {
    jj_node *l = parse_unary(P, true);
    while (l && skip_op(P, "**")) l = binary(P, JO_POW, l, parse_unary(P, true));
    return l;
}

static jj_node *parse_math2(parser *P) {
    jj_node *l = parse_pow(P);
    for (;;) {
        int op = is_op(cur(P), "*") ? JO_MUL : is_op(cur(P), "/") ? JO_DIV : is_op(cur(P), "//") ? JO_FLOORDIV
               : is_op(cur(P), "%") ? JO_MOD : 0;
        if (!op || !l) return l;
        advance(P);
        l = binary(P, op, l, parse_pow(P));
    }
}

static jj_node *parse_concat(parser *P) {
    jj_node *l = parse_math2(P);
    if (!l || !is_op(cur(P), "~")) return l;
    jj_node *n = node(P, JN_CONCAT);
    if (!n || !nodes_push(P, &n->kids, l)) return NULL;
    while (skip_op(P, "~")) {
        jj_node *r = parse_math2(P);
        if (!r || !nodes_push(P, &n->kids, r)) return NULL;
    }
    return n;
}

static jj_node *parse_math1(parser *P) {
    jj_node *l = parse_concat(P);
    for (;;) {
        int op = is_op(cur(P), "+") ? JO_ADD : is_op(cur(P), "-") ? JO_SUB : 0;
        if (!op || !l) return l;
        advance(P);
        l = binary(P, op, l, parse_concat(P));
    }
}

static jj_node *parse_compare(parser *P) {
    jj_node *l = parse_math1(P);
    if (!l) return NULL;
    jj_node *n = NULL;
    int ops[64];
    for (;;) {
        const jj_tok *t = cur(P);
        int op = is_op(t, "==") ? JO_EQ : is_op(t, "!=") ? JO_NE : is_op(t, "<") ? JO_LT : is_op(t, "<=") ? JO_LE
               : is_op(t, ">") ? JO_GT : is_op(t, ">=") ? JO_GE : is_name(t, "in") ? JO_IN
               : (is_name(t, "not") && is_name(peek(P, 1), "in")) ? JO_NOTIN : 0;
        if (!op) break;
        advance(P);
        if (op == JO_NOTIN) advance(P);
        if (!n) {
            n = node(P, JN_CMP);
            if (!n) return NULL;
            n->x = l;
        }
        if (n->els.n == 64) return perr(P, "comparison chain too long");
        ops[n->els.n] = op;
        jj_node *r = parse_math1(P);
        if (!r || !nodes_push(P, &n->els, r)) return NULL;
    }
    if (!n) return l;
    n->ops = jj_alloc(P->a, (size_t)n->els.n * sizeof(int));
    if (!n->ops) return perr(P, "template too large");
    memcpy(n->ops, ops, (size_t)n->els.n * sizeof(int));
    return n;
}

static jj_node *parse_not(parser *P) {
    if (is_name(cur(P), "not")) {
        if (!enter(P)) return NULL;
        advance(P);
        jj_node *n = node(P, JN_NOT);
        if (!n || !(n->x = parse_not(P))) return NULL;
        P->depth--;
        return n;
    }
    return parse_compare(P);
}

static jj_node *parse_logic(parser *P, bool is_or) {
    jj_node *l = is_or ? parse_logic(P, false) : parse_not(P);
    while (l && skip_name(P, is_or ? "or" : "and")) {
        jj_node *n = node(P, is_or ? JN_OR : JN_AND);
        if (!n) return NULL;
        n->x = l;
        if (!(n->y = is_or ? parse_logic(P, false) : parse_not(P))) return NULL;
        l = n;
    }
    return l;
}

static jj_node *parse_expr(parser *P, bool condexpr) {
    if (!enter(P)) return NULL;
    jj_node *e = parse_logic(P, true);
    while (condexpr && e && skip_name(P, "if")) {
        jj_node *n = node(P, JN_COND);
        if (!n) return NULL;
        n->x = e;
        if (!(n->y = parse_logic(P, true))) return NULL;
        if (skip_name(P, "else") && !(n->z = parse_expr(P, true))) return NULL;
        e = n;
    }
    P->depth--;
    return e;
}

/* ---- statements ---- */

static jj_node *parse_body(parser *P, const char *const *ends);

static bool expect_block_end(parser *P) {
    if (cur(P)->t == JT_BLOCK_END) {
        advance(P);
        return true;
    }
    char b[64];
    perr(P, "expected end of statement block, got %s", tok_desc(cur(P), b, sizeof b));
    return false;
}

/* the name of the statement at a {% (the token after it) */
static bool at_tag(parser *P, const char *nm) { return cur(P)->t == JT_BLOCK_BEGIN && is_name(peek(P, 1), nm); }

static jj_node *parse_if(parser *P) {
    jj_node *n = node(P, JN_IF);
    if (!n) return NULL;
    P->in_if++;
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    if (!(n->x = parse_tuple(P, true, false, false)) || !expect_block_end(P)) return NULL;
    jj_node *body = parse_body(P, ends);
    if (!body) return NULL;
    n->kids = body->kids;
    if (at_tag(P, "elif")) {
        advance(P);
        advance(P);
        jj_node *e = parse_if(P);
        if (!e || !nodes_push(P, &n->els, e)) return NULL;
        P->in_if--;
        return n; /* the nested if consumed endif */
    }
    if (at_tag(P, "else")) {
        advance(P);
        advance(P);
        if (!expect_block_end(P)) return NULL;
        static const char *const ends2[] = {"endif", NULL};
        jj_node *eb = parse_body(P, ends2);
        if (!eb) return NULL;
        n->els = eb->kids;
    }
    if (!at_tag(P, "endif")) return perr(P, "missing {%% endif %%}");
    advance(P);
    advance(P);
    P->in_if--;
    return expect_block_end(P) ? n : NULL;
}

static jj_node *parse_for(parser *P) {
    jj_node *n = node(P, JN_FOR);
    if (!n) return NULL;
    if (!(n->x = parse_tuple(P, false, false, true))) return NULL;
    if (!skip_name(P, "in")) return perr(P, "expected 'in' in a for loop");
    /* the iterable: no conditional expression ("if" filters the loop) */
    jj_node *it = parse_tuple(P, false, false, false);
    if (!it) return NULL;
    n->y = it;
    if (skip_name(P, "if") && !(n->z = parse_expr(P, true))) return NULL;
    if (is_name(cur(P), "recursive")) return perr(P, "recursive loops are not supported");
    if (!expect_block_end(P)) return NULL;
    static const char *const ends[] = {"else", "endfor", NULL};
    jj_node *body = parse_body(P, ends);
    if (!body) return NULL;
    n->kids = body->kids;
    if (at_tag(P, "else")) {
        advance(P);
        advance(P);
        if (!expect_block_end(P)) return NULL;
        static const char *const ends2[] = {"endfor", NULL};
        jj_node *eb = parse_body(P, ends2);
        if (!eb) return NULL;
        n->els = eb->kids;
    }
    if (!at_tag(P, "endfor")) return perr(P, "missing {%% endfor %%}");
    advance(P);
    advance(P);
    return expect_block_end(P) ? n : NULL;
}

static jj_node *parse_set(parser *P) {
    /* target: name, name.attr, or names separated by commas */
    jj_node *target;
    const jj_tok *t = cur(P);
    if (t->t != JT_NAME) return perr(P, "expected a name after 'set'");
    if (is_op(peek(P, 1), ".")) {
        target = node(P, JN_ATTR);
        jj_node *base = node(P, JN_NAME);
        if (!target || !base || !(base->lit.s = tok_str(P, t))) return NULL;
        base->lit.t = JJ_STR;
        advance(P);
        advance(P);
        if (cur(P)->t != JT_NAME) return perr(P, "expected an attribute name");
        if (!(target->lit.s = tok_str(P, cur(P)))) return NULL;
        target->lit.t = JJ_STR;
        target->x = base;
        advance(P);
    } else if (!(target = parse_tuple(P, false, false, true))) return NULL;
    if (skip_op(P, "=")) {
        jj_node *n = node(P, JN_SET);
        if (!n) return NULL;
        n->x = target;
        if (!(n->y = parse_tuple(P, true, false, false)) || !expect_block_end(P)) return NULL;
        return n;
    }
    jj_node *n = node(P, JN_SETBLOCK);
    if (!n) return NULL;
    n->x = target;
    if (target->kind == JN_TUPLE) return perr(P, "a block set takes one name");
    jj_node *f = NULL;
    while (skip_op(P, "|")) {
        f = parse_filter(P, f);
        if (!f) return NULL;
    }
    n->y = f; /* filter chain whose innermost operand is NULL (the body) */
    if (!expect_block_end(P)) return NULL;
    static const char *const ends[] = {"endset", NULL};
    jj_node *body = parse_body(P, ends);
    if (!body) return NULL;
    n->kids = body->kids;
    if (!at_tag(P, "endset")) return perr(P, "missing {%% endset %%}");
    advance(P);
    advance(P);
    return expect_block_end(P) ? n : NULL;
}

/* "(a, b=1, ...)" parameter lists of macros and call blocks */
static bool parse_params(parser *P, jj_node *n) {
    jj_str *names[128];
    int k = 0;
    if (!expect_op(P, "(")) return false;
    while (!skip_op(P, ")")) {
        if (k && !expect_op(P, ",")) return false;
        if (skip_op(P, ")")) break;
        if (cur(P)->t != JT_NAME) return perr(P, "expected a parameter name"), false;
        if (k == 128) return perr(P, "too many parameters"), false;
        if (!(names[k] = tok_str(P, cur(P)))) return false;
        advance(P);
        jj_node *def = NULL;
        if (skip_op(P, "=") && !(def = parse_expr(P, true))) return false;
        if (!def && k && n->kw.v[k - 1]) return perr(P, "a parameter without a default follows one with a default"), false;
        if (!nodes_push(P, &n->kw, def)) return false;
        k++;
    }
    if (k) {
        n->kwn = jj_alloc(P->a, (size_t)k * sizeof *n->kwn);
        if (!n->kwn) return perr(P, "template too large"), false;
        memcpy(n->kwn, names, (size_t)k * sizeof *names);
    }
    return true;
}

static jj_node *parse_macro(parser *P) {
    jj_node *n = node(P, JN_MACRO);
    if (!n) return NULL;
    if (cur(P)->t != JT_NAME) return perr(P, "expected a macro name");
    if (!(n->lit.s = tok_str(P, cur(P)))) return NULL;
    n->lit.t = JJ_STR;
    advance(P);
    if (!parse_params(P, n) || !expect_block_end(P)) return NULL;
    static const char *const ends[] = {"endmacro", NULL};
    jj_node *body = parse_body(P, ends);
    if (!body) return NULL;
    n->kids = body->kids;
    if (!at_tag(P, "endmacro")) return perr(P, "missing {%% endmacro %%}");
    advance(P);
    advance(P);
    if (cur(P)->t == JT_NAME) advance(P); /* {% endmacro name %} */
    return expect_block_end(P) ? n : NULL;
}

static jj_node *parse_callblock(parser *P) {
    jj_node *n = node(P, JN_CALLBLOCK);
    if (!n) return NULL;
    if (is_op(cur(P), "(") && !parse_params(P, n)) return NULL;
    jj_node *call = parse_expr(P, true);
    if (!call) return NULL;
    if (call->kind != JN_CALL) return perr(P, "expected a call after 'call'");
    n->x = call;
    if (!expect_block_end(P)) return NULL;
    static const char *const ends[] = {"endcall", NULL};
    jj_node *body = parse_body(P, ends);
    if (!body) return NULL;
    n->kids = body->kids;
    if (!at_tag(P, "endcall")) return perr(P, "missing {%% endcall %%}");
    advance(P);
    advance(P);
    return expect_block_end(P) ? n : NULL;
}

static jj_node *parse_block_of(parser *P, jj_kind kind, const char *end) {
    jj_node *n = node(P, kind);
    if (!n) return NULL;
    if (kind == JN_FILTERBLOCK) {
        jj_node *f = NULL;
        do {
            if (!(f = parse_filter(P, f))) return NULL;
        } while (skip_op(P, "|"));
        n->y = f;
    }
    if (!expect_block_end(P)) return NULL;
    const char *ends[] = {end, NULL};
    jj_node *body = parse_body(P, ends);
    if (!body) return NULL;
    n->kids = body->kids;
    if (!at_tag(P, end)) return perr(P, "missing {%% %s %%}", end);
    advance(P);
    advance(P);
    return expect_block_end(P) ? n : NULL;
}

static jj_node *parse_statement(parser *P) {
    advance(P); /* {% */
    const jj_tok *t = cur(P);
    if (t->t != JT_NAME) return perr(P, "expected a statement name after '{%%'");
    if (!enter(P)) return NULL;
    jj_node *n;
    if (is_name(t, "if")) advance(P), n = parse_if(P);
    else if (is_name(t, "for")) advance(P), n = parse_for(P);
    else if (is_name(t, "set")) advance(P), n = parse_set(P);
    else if (is_name(t, "macro")) advance(P), n = parse_macro(P);
    else if (is_name(t, "call")) advance(P), n = parse_callblock(P);
    else if (is_name(t, "filter")) advance(P), n = parse_block_of(P, JN_FILTERBLOCK, "endfilter");
    else if (is_name(t, "generation")) advance(P), n = parse_block_of(P, JN_BODY, "endgeneration");
    else if (is_name(t, "break") || is_name(t, "continue")) {
        n = node(P, is_name(t, "break") ? JN_BREAK : JN_CONTINUE);
        advance(P);
        if (n && !expect_block_end(P)) return NULL;
    } else return perr(P, "unknown or unsupported tag '%.*s'", (int)t->n, t->p);
    P->depth--;
    return n;
}

/* statements until EOF (ends NULL) or a {% name %} with name in ends (not consumed) */
static jj_node *parse_body(parser *P, const char *const *ends) {
    jj_node *body = node(P, JN_BODY);
    if (!body) return NULL;
    for (;;) {
        const jj_tok *t = cur(P);
        jj_node *n = NULL;
        if (t->t == JT_EOF) {
            if (ends) {
                int k = 0;
                while (ends[k + 1]) k++;
                return perr(P, "unexpected end of template, expected {%% %s %%}", ends[k]);
            }
            return body;
        }
        if (t->t == JT_DATA) {
            n = node(P, JN_TEXT);
            if (!n) return NULL;
            jj_str *s = jj_str_new(P->a, t->p, t->n);
            if (!s) return perr(P, "template too large");
            n->lit = jj_strv(s);
            advance(P);
        } else if (t->t == JT_VAR_BEGIN) {
            advance(P);
            n = node(P, JN_OUT);
            if (!n || !(n->x = parse_tuple(P, true, false, false))) return NULL;
            if (cur(P)->t != JT_VAR_END) {
                char b[64];
                return perr(P, "expected end of print statement, got %s", tok_desc(cur(P), b, sizeof b));
            }
            advance(P);
        } else if (t->t == JT_BLOCK_BEGIN) {
            const jj_tok *nm = peek(P, 1);
            for (const char *const *e = ends; e && *e; e++)
                if (is_name(nm, *e)) return body;
            static const char *const closers[] = {"endif", "endfor", "endset", "endmacro", "endcall", "endfilter",
                                                  "endgeneration", "elif", "else", NULL};
            for (const char *const *e = closers; *e; e++)
                if (is_name(nm, *e)) {
                    P->i++;
                    return perr(P, "unexpected '%s'", *e);
                }
            n = parse_statement(P);
        } else {
            char b[64];
            return perr(P, "unexpected %s", tok_desc(t, b, sizeof b));
        }
        if (!n || !nodes_push(P, &body->kids, n)) return NULL;
    }
}

ragd_status jj_parse(jj_template *t, const jj_toks *toks, ragd_err *err) {
    parser P = {.toks = toks, .a = &t->arena, .err = err};
    t->root = parse_body(&P, NULL);
    return t->root ? RAGD_OK : (err && err->code ? err->code : RAGD_EFORMAT);
}

ragd_status jj_compile(const char *src, size_t n, jj_template **out, ragd_err *err) {
    jj_template *t = ragd_xcalloc(1, sizeof *t);
    t->arena.limit = JJ_MAX_ARENA;
    jj_toks toks = {0};
    ragd_status st = jj_lex(src, n, &t->arena, &toks, err);
    if (!st) st = jj_parse(t, &toks, err);
    free(toks.v);
    if (st) {
        jj_template_free(t);
        return st;
    }
    *out = t;
    return RAGD_OK;
}

void jj_template_free(jj_template *t) {
    if (!t) return;
    jj_arena_free(&t->arena);
    free(t);
}
