/* jinja.h — internal header of ragd's Jinja2 interpreter (the subset Hugging Face chat templates use),
 * shared by jinja_lex.c (source → tokens), jinja_parse.c (tokens → AST), jinja_value.c (values, Python
 * str()/repr()/json.dumps semantics), jinja_eval.c (statements and expressions) and jinja_builtins.c
 * (filters, tests, methods, globals). Not a public header: tasks/chat.c is its only user.
 *
 * Semantics are those of transformers' chat-template environment: Jinja 3.1 ImmutableSandboxedEnvironment
 * with trim_blocks + lstrip_blocks, loopcontrols, {% generation %}, a json.dumps `tojson`,
 * raise_exception, strftime_now, dict(), namespace(); default (lenient) Undefined.
 *
 * Memory: a compiled template owns one arena (AST, literal strings); each render owns another (every value
 * created while rendering) that is freed whole at the end, so values need no reference counts and an
 * error can return from anywhere. Values point into either arena; the AST is immutable after parsing, so
 * one template is rendered by several threads at once.
 *
 * Bounds (a template comes from a model file, its inputs from the network — neither may crash us):
 * parse nesting depth, call depth, loop iterations, arena bytes and output bytes are capped; exceeding a
 * cap is a render error like any other (JJ_ERR with a message naming the line).
 */
#ifndef RAGD_JINJA_H
#define RAGD_JINJA_H

#include <jansson.h>
#include <time.h>

#include "common/common.h"

#define JJ_MAX_NEST 200           /* parser: nested expressions/blocks */
#define JJ_MAX_CALL_DEPTH 100     /* macro / caller() recursion */
#define JJ_MAX_EVAL_DEPTH 1000    /* operands of operands (long filter or operator chains) */
#define JJ_MAX_STEPS 4000000      /* loop iterations + macro calls + filter items per render */
#define JJ_MAX_ARENA (256u << 20) /* bytes of values per render */
#define JJ_MAX_OUTPUT (64u << 20) /* bytes of rendered text */

/* ---- arena ---- */
typedef struct jj_block jj_block;
typedef struct jj_arena {
    jj_block *head;
    size_t total, limit; /* limit 0: unlimited */
    bool exhausted;      /* an allocation was refused (the caller reports it) */
} jj_arena;
void *jj_alloc(jj_arena *a, size_t n); /* zeroed, 16-aligned; NULL once over the limit */
void jj_arena_free(jj_arena *a);

/* ---- values ---- */
typedef enum {
    JJ_UNDEF = 0, JJ_NONE, JJ_BOOL, JJ_INT, JJ_FLOAT, JJ_STR, JJ_LIST, JJ_DICT, JJ_FUNC, JJ_MACRO
} jj_type;

/* UTF-8, NUL-terminated, immutable; safe: a markupsafe Markup (from |safe / |escape): "+" with a plain
 * string HTML-escapes the plain one, as Python does */
typedef struct jj_str { size_t n; bool safe; char p[]; } jj_str;
typedef struct jj_list jj_list;
typedef struct jj_dict jj_dict;
typedef struct jj_func jj_func;
typedef struct jj_macro jj_macro;

typedef struct jj_val {
    jj_type t;
    union {
        bool b;
        int64_t i;
        double f;
        jj_str *s;    /* JJ_STR; JJ_UNDEF: the name that was undefined (may be NULL) */
        jj_list *l;
        jj_dict *d;
        jj_func *fn;
        jj_macro *m;
    };
} jj_val;

struct jj_list { size_t n, cap; jj_val *v; bool tuple; };
/* ordered (insertion order, like Python dicts); string keys; ns: a namespace() object */
struct jj_dict { size_t n, cap; jj_str **k; jj_val *v; bool ns; };

/* ---- tokens ---- */
typedef enum {
    JT_EOF = 0, JT_DATA, JT_VAR_BEGIN, JT_VAR_END, JT_BLOCK_BEGIN, JT_BLOCK_END,
    JT_NAME, JT_STRING, JT_INT, JT_FLOAT, JT_OP
} jj_tok_type;
typedef struct jj_tok {
    jj_tok_type t;
    int line;
    const char *p; size_t n; /* JT_DATA: the text; JT_NAME/JT_OP: the spelling (in the source) */
    jj_str *s;               /* JT_STRING: the decoded literal (arena) */
    int64_t i;               /* JT_INT */
    double f;                /* JT_FLOAT */
} jj_tok;
typedef struct jj_toks { jj_tok *v; size_t n, cap; } jj_toks;

/* Tokenizes src (already UTF-8 checked) into toks, strings into the arena. RAGD_EFORMAT with a line
 * number on a lexical error. toks->v is malloc'd (free it). */
ragd_status jj_lex(const char *src, size_t n, jj_arena *a, jj_toks *toks, ragd_err *err);

/* ---- AST ---- */
typedef enum {
    /* expressions */
    JN_LIT, JN_NAME, JN_LIST, JN_TUPLE, JN_DICT, JN_ATTR, JN_ITEM, JN_SLICE, JN_CALL, JN_FILTER, JN_TEST,
    JN_NOT, JN_NEG, JN_POS, JN_BIN, JN_CMP, JN_AND, JN_OR, JN_COND, JN_CONCAT,
    /* statements */
    JN_TEXT, JN_OUT, JN_IF, JN_FOR, JN_SET, JN_SETBLOCK, JN_MACRO, JN_CALLBLOCK, JN_FILTERBLOCK, JN_BREAK,
    JN_CONTINUE, JN_BODY
} jj_kind;

/* binary / comparison operators (JN_BIN, JN_CMP ops[]) */
enum { JO_ADD = 1, JO_SUB, JO_MUL, JO_DIV, JO_FLOORDIV, JO_MOD, JO_POW,
       JO_EQ, JO_NE, JO_LT, JO_LE, JO_GT, JO_GE, JO_IN, JO_NOTIN };

typedef struct jj_node jj_node;
typedef struct jj_nodes { jj_node **v; int n, cap; } jj_nodes;
struct jj_node {
    jj_kind kind;
    int op, line;
    jj_val lit;          /* JN_LIT value; JN_TEXT text; names (JN_NAME/ATTR/FILTER/TEST/MACRO) as lit.s */
    jj_node *x, *y, *z;  /* operands / condition / iterable / loop filter / slice parts */
    jj_nodes kids;       /* items, args, body, targets (JN_FOR/JN_SET: x is the target) */
    jj_nodes kw;         /* keyword args (values; names in kwn) / dict values / macro defaults */
    jj_str **kwn;        /* [kw.n] keyword names / macro parameter names */
    jj_nodes els;        /* else body (if/for), JN_CMP: right operands */
    int *ops;            /* JN_CMP: operators */
    const void *fn;      /* JN_FILTER / JN_TEST: the resolved builtin (jj_filter_fn / jj_test_fn) */
};

/* A compiled template (immutable; shared by threads). */
typedef struct jj_template {
    jj_arena arena;
    jj_node *root; /* JN_BODY */
} jj_template;

ragd_status jj_parse(jj_template *t, const jj_toks *toks, ragd_err *err);

/* ---- rendering ---- */
typedef struct jj_scope jj_scope;
typedef struct jj_ctx {
    jj_arena *a;
    ragd_buf *out;       /* where output goes now (macro calls and set blocks swap it) */
    size_t out_total;    /* bytes output in all buffers, for the cap */
    int depth;           /* call depth */
    int eval_depth;      /* expression evaluation depth */
    long steps;
    jj_scope *globals;   /* render variables + template-level sets */
    const jj_node *caller; /* body of the innermost {% call %} while its macro runs */
    jj_scope *caller_scope;
    time_t now;          /* strftime_now's clock (0: the real clock, local time) */
    bool now_utc;
    ragd_err *err;
    int line;            /* line of the node being evaluated, for messages */
    bool failed;         /* an error was reported (the first one is kept) */
    bool raised;         /* the error came from raise_exception() */
} jj_ctx;

typedef enum { JJ_OK = 0, JJ_ERR, JJ_BREAK, JJ_CONTINUE } jj_rc;

/* errors: sets ctx->err (once; the first error wins) and returns JJ_ERR */
jj_rc jj_fail(jj_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
jj_rc jj_oom(jj_ctx *c);

/* value constructors and helpers (jinja_value.c) */
static inline jj_val jj_undef(jj_str *name) { jj_val v = {.t = JJ_UNDEF}; v.s = name; return v; }
static inline jj_val jj_none(void) { jj_val v = {.t = JJ_NONE}; return v; }
static inline jj_val jj_bool(bool b) { jj_val v = {.t = JJ_BOOL}; v.b = b; return v; }
static inline jj_val jj_int(int64_t i) { jj_val v = {.t = JJ_INT}; v.i = i; return v; }
static inline jj_val jj_float(double f) { jj_val v = {.t = JJ_FLOAT}; v.f = f; return v; }
jj_str *jj_str_new(jj_arena *a, const char *p, size_t n); /* NULL when the arena is exhausted */
jj_val jj_strv(jj_str *s); /* JJ_STR, or JJ_UNDEF when s is NULL (callers check the arena) */
jj_list *jj_list_new(jj_arena *a, size_t cap);
bool jj_list_push(jj_arena *a, jj_list *l, jj_val v);
jj_dict *jj_dict_new(jj_arena *a, size_t cap);
bool jj_dict_set(jj_arena *a, jj_dict *d, jj_str *k, jj_val v); /* replaces an existing key in place */
jj_val *jj_dict_get(const jj_dict *d, const char *k, size_t n);
bool jj_truthy(jj_val v);
bool jj_equal(jj_val a, jj_val b);
/* <0, 0, >0; false when the two cannot be ordered (Python TypeError) */
bool jj_compare(jj_val a, jj_val b, int *out);
const char *jj_type_name(jj_val v);
size_t jj_utf8_len(const char *p, size_t n); /* code points */
/* str(v) / repr(v) appended to b (Python semantics; undefined prints as "") */
void jj_str_of(ragd_buf *b, jj_val v);
void jj_repr(ragd_buf *b, jj_val v);
jj_str *jj_to_str(jj_ctx *c, jj_val v); /* str(v) as a new string; NULL on OOM (error set) */
/* json.dumps(v, ensure_ascii, indent (<0: None), separators (NULL: default), sort_keys) → false when v
 * holds something JSON cannot encode (error set in c) */
bool jj_json_dumps(jj_ctx *c, ragd_buf *b, jj_val v, bool ensure_ascii, int indent, const char *item_sep,
                   const char *key_sep, bool sort_keys);
void jj_fmt_float(ragd_buf *b, double f); /* Python repr(float) */
void jj_html_escape(ragd_buf *b, const char *p, size_t n); /* markupsafe.escape */
/* a jansson value as a template value (objects keep their order) */
jj_val jj_from_json(jj_arena *a, const json_t *j);
/* Python str.isspace() character length at / before position */
size_t jj_space_len(const unsigned char *s, size_t n);
size_t jj_space_len_back(const unsigned char *s, size_t n);

/* builtins (jinja_builtins.c) */
typedef jj_rc (*jj_filter_fn)(jj_ctx *c, jj_val v, const jj_val *args, int nargs, jj_str *const *kwn,
                              const jj_val *kwv, int nkw, jj_val *out);
typedef jj_rc (*jj_test_fn)(jj_ctx *c, jj_val v, const jj_val *args, int nargs, bool *out);
jj_filter_fn jj_find_filter(const char *name, size_t n);
jj_test_fn jj_find_test(const char *name, size_t n);
/* v.name as an attribute: dict keys, then methods of str/dict/list (bound as a JJ_FUNC); undefined if none */
jj_rc jj_getattr(jj_ctx *c, jj_val v, jj_str *name, jj_val *out);
/* a global function by name (range, dict, namespace, raise_exception, strftime_now); undefined if none */
jj_val jj_global(jj_ctx *c, const char *name, size_t n);
/* calls a JJ_FUNC */
jj_rc jj_call_func(jj_ctx *c, jj_func *f, const jj_val *args, int nargs, jj_str *const *kwn, const jj_val *kwv,
                   int nkw, jj_val *out);
/* calls a JJ_MACRO (jinja_eval.c) */
jj_rc jj_call_macro(jj_ctx *c, jj_macro *m, const jj_val *args, int nargs, jj_str *const *kwn, const jj_val *kwv,
                    int nkw, jj_val *out);
jj_rc jj_step(jj_ctx *c); /* counts one step against JJ_MAX_STEPS */
/* the items a for loop or a filter iterates over: lists as they are, dict keys, string characters,
 * nothing for undefined; anything else is an error */
jj_rc jj_iterate(jj_ctx *c, jj_val v, jj_list **out);
/* a builtin bound to self (loop.cycle: JJ_FN_CYCLE with self = the loop index); undefined on OOM */
enum { JJ_FN_CYCLE = 1 };
jj_val jj_bound(jj_ctx *c, int id, jj_val self);

/* Renders t with the variables of vars (a dict). Output APPENDED to out. RAGD_EINVAL with the message
 * of the failure (raise_exception's text included) and *raised set when raise_exception was called. */
ragd_status jj_render(const jj_template *t, jj_dict *vars, jj_arena *a, time_t now, bool now_utc, ragd_buf *out,
                      bool *raised, ragd_err *err);

/* Whole pipeline: source → compiled template. RAGD_EFORMAT naming the line on a syntax error. */
ragd_status jj_compile(const char *src, size_t n, jj_template **out, ragd_err *err);
void jj_template_free(jj_template *t);

#endif
