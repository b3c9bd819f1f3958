/* match.c — the byte-level matcher: a set of pushdown stacks over grammar nodes.
 *
 * Each stack's top frame gets the byte. A frame either takes it (and maybe pops, when its value just
 * closed: '"', '}', ']', the last byte of a literal), pushes a child and hands the byte on, or — when
 * its value is complete but could go on (a number, a literal with longer siblings) — pops and lets
 * the parent retry the byte. JSON makes that deterministic: what can follow a number or a literal
 * (',', '}', ']', nothing) is never a byte that could extend it. An ANYOF frame is replaced by each of
 * its alternatives (the stack is copied), so the state is a set of stacks, deduplicated after every
 * byte and capped at RAGD_GMATCH_MAX_ALT.
 *
 * Dead ends are avoided by construction: a value is opened only if its smallest instance fits under
 * RAGD_GMATCH_MAX_DEPTH (gnode.mindepth), a key only if it can name a property still allowed (schema
 * order; no skipping a required one) whose value fits, ',' only if something may follow, '}' / ']' /
 * a closing '"' only when the minimum counts are met. So every live state can be completed.
 */
#include "grammar/grammar_internal.h"

#define MAXD RAGD_GMATCH_MAX_DEPTH

typedef struct gstack {
    int depth;
    ragd_gframe f[MAXD];
} gstack;

enum { R_REJECT, R_TAKE, R_TAKE_POP, R_POP_RETRY, R_RETRY };

static inline ragd_gframe frame_init(const ragd_grammar *g, uint32_t node) {
    ragd_gframe f = {.node = (uint16_t)node};
    if (g->nodes[node].kind == GN_LITERAL) f.b = (uint16_t)(g->nodes[node].count - 1);
    return f;
}

static inline bool fits(const ragd_grammar *g, int depth, uint32_t node) {
    return depth + (int)g->nodes[node].mindepth <= MAXD;
}

/* ---------------------------------------------------------------------------------------------- */
/* UTF-8: d = 0 at a code point boundary, else (remaining << 12) | ((lo - 0x80) << 6) | (hi - 0x80) */

static inline uint16_t u8_enc(int rem, int lo, int hi) { return (uint16_t)((rem << 12) | ((lo - 0x80) << 6) | (hi - 0x80)); }

/* A lead byte ≥ 0x80: the state after it, or 0xFFFF when invalid. */
static inline uint16_t u8_lead(uint8_t c) {
    if (c >= 0xC2 && c <= 0xDF) return u8_enc(1, 0x80, 0xBF);
    if (c == 0xE0) return u8_enc(2, 0xA0, 0xBF);
    if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return u8_enc(2, 0x80, 0xBF);
    if (c == 0xED) return u8_enc(2, 0x80, 0x9F);
    if (c == 0xF0) return u8_enc(3, 0x90, 0xBF);
    if (c >= 0xF1 && c <= 0xF3) return u8_enc(3, 0x80, 0xBF);
    if (c == 0xF4) return u8_enc(3, 0x80, 0x8F);
    return 0xFFFF;
}

/* A continuation byte in state d (d != 0): the next state, or 0xFFFF when invalid. */
static inline uint16_t u8_cont(uint16_t d, uint8_t c) {
    int rem = d >> 12, lo = 0x80 + ((d >> 6) & 63), hi = 0x80 + (d & 63);
    if (c < lo || c > hi) return 0xFFFF;
    return rem == 1 ? 0 : u8_enc(rem - 1, 0x80, 0xBF);
}

static inline int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* ---------------------------------------------------------------------------------------------- */
/* objects and keys */

static inline const gprop *prop(const ragd_grammar *g, const gnode *n, uint32_t j) { return &g->props[n->first + j]; }

/* May property j come next after `next` (schema order, no required one skipped), its value fitting at
 * object depth dobj? */
static inline bool prop_allowed(const ragd_grammar *g, const gnode *n, uint32_t next, uint32_t j, int dobj) {
    if (j < next || j >= n->count) return false;
    if (prop(g, n, next)->next_req < j) return false;
    return fits(g, dobj, prop(g, n, j)->value);
}

static inline bool free_allowed(const ragd_grammar *g, const gnode *n, uint32_t next, int dobj) {
    return n->additional != GN_NONE && (int32_t)next > n->last_required && fits(g, dobj, n->additional);
}

static bool obj_can_key(const ragd_grammar *g, const gnode *n, uint32_t next, int dobj) {
    if (free_allowed(g, n, next, dobj)) return true;
    if (next >= n->count) return false;
    uint32_t last = prop(g, n, next)->next_req;
    if (last >= n->count) last = n->count - 1;
    for (uint32_t j = next; j <= last; j++)
        if (fits(g, dobj, prop(g, n, j)->value)) return true;
    return false;
}

static inline bool obj_can_close(const gnode *n, uint32_t next) { return (int32_t)next > n->last_required; }

/* Pushes the key frame of the object on top (its opening '"' taken). */
static int push_key(const ragd_grammar *g, gstack *s) {
    int dobj = s->depth;
    if (dobj >= MAXD) return R_REJECT;
    const ragd_gframe *obj = &s->f[dobj - 1];
    const gnode *n = &g->nodes[obj->node];
    ragd_gframe k = {.node = obj->node, .ph = PH_KEY | KF_FREEOK};
    if (free_allowed(g, n, obj->a, dobj)) k.ph |= KF_FREE;
    if (n->count) k.b = (uint16_t)(n->count - 1);
    else k.a = 1; /* empty range */
    s->f[s->depth++] = k;
    return R_TAKE;
}

static int step_key(const ragd_grammar *g, gstack *s, ragd_gframe *k, const gnode *n, uint8_t c) {
    ragd_gframe *obj = &s->f[s->depth - 2];
    int dobj = s->depth - 1;
    uint32_t next = obj->a;
    const uint32_t *sorted = g->sorted + n->sorted;
    bool quote_in_name = false; /* an escaped quote of a name (names hold '"' only after '\\') */
    if (c == '"')
        for (uint32_t i = k->a; k->a <= k->b && i <= k->b && !quote_in_name; i++) {
            const gprop *p = prop(g, n, sorted[i]);
            quote_in_name = p->name_len > k->c && g->strs.data[p->name_off + k->c] == '"';
        }
    if (c == '"' && !quote_in_name) {
        int exact = -1;
        if (k->a <= k->b) {
            uint32_t p = sorted[k->a];
            if (prop(g, n, p)->name_len == k->c) exact = (int)p;
        }
        if (exact >= 0) {
            if (!prop_allowed(g, n, next, (uint32_t)exact, dobj)) return R_REJECT;
            obj->b = (uint16_t)exact;
            obj->a = (uint16_t)(exact + 1);
        } else {
            if (!(k->ph & KF_FREE) || !(k->ph & KF_FREEOK) || k->d) return R_REJECT;
            obj->b = GN_EXTRA;
        }
        obj->ph = O_COLON;
        s->depth--;
        return R_TAKE;
    }
    /* the range of sorted names whose byte at k->c is c */
    if (k->a <= k->b) {
        uint32_t lo = k->a, hi = k->b, pos = k->c;
        while (lo <= hi) {
            const gprop *p = prop(g, n, sorted[lo]);
            if (p->name_len > pos && (uint8_t)g->strs.data[p->name_off + pos] == c) break;
            lo++;
        }
        if (lo > hi) {
            k->a = 1;
            k->b = 0;
        } else {
            while (hi > lo) {
                const gprop *p = prop(g, n, sorted[hi]);
                if (p->name_len > pos && (uint8_t)g->strs.data[p->name_off + pos] == c) break;
                hi--;
            }
            k->a = (uint16_t)lo;
            k->b = (uint16_t)hi;
        }
    }
    if (k->c < 0xFFFF) k->c++;
    /* a free key: plain characters, valid UTF-8 */
    if (k->ph & KF_FREEOK) {
        if (k->d) {
            uint16_t d = u8_cont(k->d, c);
            if (d == 0xFFFF) k->ph &= (uint16_t)~KF_FREEOK;
            else k->d = d;
        } else if (c == '\\' || c == '"' || c < 0x20) {
            k->ph &= (uint16_t)~KF_FREEOK;
        } else if (c >= 0x80) {
            uint16_t d = u8_lead(c);
            if (d == 0xFFFF) k->ph &= (uint16_t)~KF_FREEOK;
            else k->d = d;
        }
    }
    if ((k->ph & KF_FREE) && (k->ph & KF_FREEOK)) return R_TAKE;
    for (uint32_t i = k->a; k->a <= k->b && i <= k->b; i++)
        if (prop_allowed(g, n, next, sorted[i], dobj)) return R_TAKE;
    return R_REJECT;
}

static int step_object(const ragd_grammar *g, gstack *s, ragd_gframe *f, const gnode *n, uint8_t c) {
    int d = s->depth;
    switch (f->ph) {
    case O_START:
        if (c != '{') return R_REJECT;
        f->ph = O_FIRST;
        return R_TAKE;
    case O_FIRST:
        if (c == '}') return obj_can_close(n, f->a) ? R_TAKE_POP : R_REJECT;
        if (c == '"' && obj_can_key(g, n, f->a, d)) return push_key(g, s);
        return R_REJECT;
    case O_COLON:
        if (c != ':') return R_REJECT;
        f->ph = O_VAL_SP;
        return R_TAKE;
    case O_VAL_SP:
        f->ph = O_VAL;
        if (c == ' ') return R_TAKE;
        /* fall through */
    case O_VAL: {
        uint32_t v = f->b == GN_EXTRA ? n->additional : prop(g, n, f->b)->value;
        if (g->nodes[v].kind == GN_SWITCH) { /* the tag literal came first (the compiler's order) */
            RAGD_ASSERT(n->tagged && f->c >= 1 && f->c <= g->nodes[v].count);
            v = g->alts[g->nodes[v].first + f->c - 1u];
        }
        if (!fits(g, d, v)) return R_REJECT;
        s->f[s->depth++] = frame_init(g, v);
        return R_RETRY;
    }
    case O_AFTER:
        if (c == ',') {
            if (!obj_can_key(g, n, f->a, d)) return R_REJECT;
            f->ph = O_KEY_SP;
            return R_TAKE;
        }
        if (c == '}') return obj_can_close(n, f->a) ? R_TAKE_POP : R_REJECT;
        return R_REJECT;
    case O_KEY_SP:
        f->ph = O_KEY;
        if (c == ' ') return R_TAKE;
        /* fall through */
    case O_KEY:
        if (c != '"') return R_REJECT;
        return push_key(g, s);
    }
    RAGD_DIE("object frame in phase %u", f->ph);
}

/* ---------------------------------------------------------------------------------------------- */
/* arrays, strings, numbers, literals */

static int step_array(const ragd_grammar *g, gstack *s, ragd_gframe *f, const gnode *n, uint8_t c) {
    switch (f->ph) {
    case A_START:
        if (c != '[') return R_REJECT;
        f->ph = A_FIRST;
        return R_TAKE;
    case A_FIRST:
        if (c == ']') return n->min == 0 ? R_TAKE_POP : R_REJECT;
        if (n->max == 0) return R_REJECT;
        break;
    case A_AFTER:
        if (c == ',') {
            if (f->a >= n->max || !fits(g, s->depth, n->items)) return R_REJECT;
            f->ph = A_SP;
            return R_TAKE;
        }
        if (c == ']') return f->a >= n->min ? R_TAKE_POP : R_REJECT;
        return R_REJECT;
    case A_SP:
        f->ph = A_ITEM;
        if (c == ' ') return R_TAKE;
        break;
    case A_ITEM: break;
    default: RAGD_DIE("array frame in phase %u", f->ph);
    }
    if (!fits(g, s->depth, n->items)) return R_REJECT;
    f->ph = A_ITEM;
    s->f[s->depth++] = frame_init(g, n->items);
    return R_RETRY;
}

static int step_string(ragd_gframe *f, const gnode *n, uint8_t c) {
    bool counted = n->min > 0 || n->max != GN_NONE;
    switch (f->ph) {
    case S_START:
        if (c != '"') return R_REJECT;
        f->ph = S_CONT;
        return R_TAKE;
    case S_CONT:
        if (f->d) {
            uint16_t d = u8_cont(f->d, c);
            if (d == 0xFFFF) return R_REJECT;
            f->d = d;
            return R_TAKE;
        }
        if (c == '"') return f->a >= n->min ? R_TAKE_POP : R_REJECT;
        if (c < 0x20) return R_REJECT;
        if (n->max != GN_NONE && f->a >= n->max) return R_REJECT;
        if (c == '\\') f->ph = S_ESC;
        else if (c >= 0x80) {
            uint16_t d = u8_lead(c);
            if (d == 0xFFFF) return R_REJECT;
            f->d = d;
        }
        if (counted && f->a < 0xFFFF) f->a++;
        return R_TAKE;
    case S_ESC:
        if (c == 'u') {
            f->ph = S_U;
            f->b = 0;
            f->c = 0;
            return R_TAKE;
        }
        if (!c || !strchr("\"\\/bfnrt", c)) return R_REJECT;
        f->ph = S_CONT;
        return R_TAKE;
    case S_U: {
        int h = hexval(c);
        if (h < 0) return R_REJECT;
        uint32_t v = (uint32_t)f->b * 16u + (uint32_t)h;
        f->c++;
        if (f->c == 2 && v >= 0xD8 && v <= 0xDF) return R_REJECT; /* surrogates: jansson needs pairs */
        if (f->c == 4) {
            if (v == 0) return R_REJECT; /* \u0000: jansson refuses it */
            f->ph = S_CONT;
            f->b = 0;
            f->c = 0;
            return R_TAKE;
        }
        f->b = (uint16_t)v;
        return R_TAKE;
    }
    }
    RAGD_DIE("string frame in phase %u", f->ph);
}

enum { MAX_INT_DIGITS = 18, MAX_FRAC_DIGITS = 20, MAX_EXP_DIGITS = 2 };

static int step_number(ragd_gframe *f, const gnode *n, uint8_t c) {
    bool digit = c >= '0' && c <= '9';
    switch (f->ph) {
    case N_START:
        if (c == '-') {
            f->ph = N_MINUS;
            return R_TAKE;
        }
        /* fall through */
    case N_MINUS:
        if (c == '0') f->ph = N_ZERO;
        else if (digit) {
            f->ph = N_INT;
            f->a = 1;
        } else return R_REJECT;
        return R_TAKE;
    case N_ZERO:
    case N_INT:
        if (digit && f->ph == N_INT) {
            if (f->a >= MAX_INT_DIGITS) return R_REJECT;
            f->a++;
            return R_TAKE;
        }
        if (digit) return R_REJECT; /* no leading zeros */
        if (!n->integer && c == '.') {
            f->ph = N_DOT;
            return R_TAKE;
        }
        if (!n->integer && (c == 'e' || c == 'E')) {
            f->ph = N_E;
            return R_TAKE;
        }
        return R_POP_RETRY;
    case N_DOT:
        if (!digit) return R_REJECT;
        f->ph = N_FRAC;
        f->a = 1;
        return R_TAKE;
    case N_FRAC:
        if (digit) {
            if (f->a >= MAX_FRAC_DIGITS) return R_REJECT;
            f->a++;
            return R_TAKE;
        }
        if (c == 'e' || c == 'E') {
            f->ph = N_E;
            return R_TAKE;
        }
        return R_POP_RETRY;
    case N_E:
        if (c == '+' || c == '-') {
            f->ph = N_ESIGN;
            return R_TAKE;
        }
        /* fall through */
    case N_ESIGN:
        if (!digit) return R_REJECT;
        f->ph = N_EXP;
        f->a = 1;
        return R_TAKE;
    case N_EXP:
        if (digit) {
            if (f->a >= MAX_EXP_DIGITS) return R_REJECT;
            f->a++;
            return R_TAKE;
        }
        return R_POP_RETRY;
    }
    RAGD_DIE("number frame in phase %u", f->ph);
}

static inline bool number_complete(const ragd_gframe *f) {
    return f->ph == N_ZERO || f->ph == N_INT || f->ph == N_FRAC || f->ph == N_EXP;
}

static inline bool literal_complete(const ragd_grammar *g, const gnode *n, const ragd_gframe *f) {
    return f->a <= f->b && g->lits[n->first + f->a].len == f->c;
}

static int step_literal(const ragd_grammar *g, ragd_gframe *f, const gnode *n, uint8_t c) {
    uint32_t hi = f->b, pos = f->c;
    const glit *L = g->lits + n->first;
    uint32_t a = f->a;
    while (a <= hi && !(L[a].len > pos && (uint8_t)g->strs.data[L[a].off + pos] == c)) a++;
    if (a > hi) return literal_complete(g, n, f) ? R_POP_RETRY : R_REJECT;
    uint32_t b = a;
    while (b + 1 <= hi && L[b + 1].len > pos && (uint8_t)g->strs.data[L[b + 1].off + pos] == c) b++;
    f->a = (uint16_t)a;
    f->b = (uint16_t)b;
    f->c = (uint16_t)(pos + 1);
    if (a == b && L[a].len == pos + 1) return R_TAKE_POP;
    return R_TAKE;
}

/* ---------------------------------------------------------------------------------------------- */
/* stacks */

/* The frame below the one just popped (child: a copy of it) goes on after its value. */
static void child_done(const ragd_grammar *g, gstack *s, ragd_gframe child) {
    if (s->depth == 0) return;
    ragd_gframe *p = &s->f[s->depth - 1];
    const gnode *n = &g->nodes[p->node];
    if (n->kind == GN_OBJECT) {
        p->ph = O_AFTER;
        if (n->tagged && g->nodes[child.node].kind == GN_LITERAL) p->c = (uint16_t)(child.a + 1u); /* a: the literal */
    } else if (n->kind == GN_SEQ) {
        /* a = the element now open; a == count: the elements are out and further tails (n->items, b of
         * them so far) may follow */
        bool done;
        if (n->tagged && p->a == n->additional && g->nodes[child.node].kind == GN_LITERAL)
            p->c = (uint16_t)(child.a + 1u); /* the raw name a later SWITCH element reads */
        if (p->a < n->count) done = ++p->a == n->count && n->items == GN_NONE;
        else { /* a tail closed; counted only when bounded (so unbounded ones keep one state: mask-cache hits) */
            if (n->max != GN_NONE && p->b < 0xFFFE) p->b++;
            done = n->max != GN_NONE && p->b >= n->max;
        }
        if (done) { /* its last element closed: so did the sequence */
            s->depth--;
            child_done(g, s, *p);
        }
    }
    else if (n->kind == GN_ARRAY) {
        p->ph = A_AFTER;
        if (p->a < 0xFFFF) p->a++;
    } else RAGD_DIE("a frame of kind %d had a child", n->kind);
}

static void emit(ragd_gmatch *out, const gstack *s) {
    size_t bytes = (size_t)s->depth * sizeof(ragd_gframe);
    for (int k = 0; k < out->n_alt; k++)
        if (out->depth[k] == s->depth && !memcmp(out->f[k], s->f, bytes)) return;
    if (out->n_alt == RAGD_GMATCH_MAX_ALT) return; /* dropped: documented in grammar.h */
    int k = out->n_alt++;
    out->depth[k] = (uint8_t)s->depth;
    memcpy(out->f[k], s->f, bytes);
}

static void feed(const ragd_grammar *g, gstack *s, uint8_t c, ragd_gmatch *out) {
    for (;;) {
        if (s->depth == 0) return; /* the value is complete: nothing may follow */
        ragd_gframe *f = &s->f[s->depth - 1];
        const gnode *n = &g->nodes[f->node];
        int r;
        if (f->ph & PH_KEY) r = step_key(g, s, f, n, c);
        else switch (n->kind) {
            case GN_ANYOF:
                for (uint32_t i = 0; i < n->count; i++) {
                    uint32_t alt = g->alts[n->first + i];
                    if (!fits(g, s->depth - 1, alt)) continue;
                    gstack t;
                    t.depth = s->depth;
                    memcpy(t.f, s->f, (size_t)(s->depth - 1) * sizeof(ragd_gframe));
                    t.f[s->depth - 1] = frame_init(g, alt);
                    feed(g, &t, c, out); /* alt is not an ANYOF: it takes c or rejects at once */
                }
                return;
            case GN_SEQ: /* open the next element (a complete sequence was popped by child_done) */
                if (f->a == n->count) { /* after the elements: another tail, or the sequence is complete */
                    if ((n->max == GN_NONE || f->b < n->max) && fits(g, s->depth, n->items)) {
                        gstack t;
                        t.depth = s->depth + 1;
                        memcpy(t.f, s->f, (size_t)s->depth * sizeof(ragd_gframe));
                        t.f[s->depth] = frame_init(g, n->items);
                        feed(g, &t, c, out);
                    }
                    r = R_POP_RETRY;
                    break;
                }
                {
                    uint32_t e = g->alts[n->first + f->a];
                    if (g->nodes[e].kind == GN_SWITCH) { /* the arguments of the name element `additional` took */
                        RAGD_ASSERT(n->tagged && f->c > 0 && f->c <= g->nodes[e].count);
                        e = g->alts[g->nodes[e].first + f->c - 1];
                    }
                    if (!fits(g, s->depth, e)) return;
                    s->f[s->depth++] = frame_init(g, e);
                }
                r = R_RETRY;
                break;
            case GN_OBJECT: r = step_object(g, s, f, n, c); break;
            case GN_ARRAY: r = step_array(g, s, f, n, c); break;
            case GN_STRING: r = step_string(f, n, c); break;
            case GN_NUMBER: r = step_number(f, n, c); break;
            case GN_LITERAL: r = step_literal(g, f, n, c); break;
            default: RAGD_DIE("grammar node of kind %d", n->kind);
            }
        switch (r) {
        case R_REJECT: return;
        case R_TAKE: emit(out, s); return;
        case R_TAKE_POP:
            s->depth--;
            child_done(g, s, s->f[s->depth]);
            emit(out, s);
            return;
        case R_POP_RETRY:
            s->depth--;
            child_done(g, s, s->f[s->depth]);
            continue;
        case R_RETRY: continue;
        }
    }
}

void gm_step(const ragd_grammar *g, const ragd_gmatch *in, uint8_t c, ragd_gmatch *out) {
    out->n_alt = 0;
    for (int k = 0; k < in->n_alt; k++) {
        gstack s;
        s.depth = in->depth[k];
        memcpy(s.f, in->f[k], (size_t)s.depth * sizeof(ragd_gframe));
        feed(g, &s, c, out);
    }
}

bool gm_plain_state(const ragd_grammar *g, const ragd_gmatch *m, int k, uint32_t *room) {
    int d = m->depth[k];
    if (d == 0) return false;
    const ragd_gframe *f = &m->f[k][d - 1];
    const gnode *n = &g->nodes[f->node];
    if (f->ph & PH_KEY) {
        *room = GN_NONE;
        /* a free key takes any plain byte whatever its range of names (the range only decides whether
         * a closing '"' names a property, and plain tokens hold no '"') */
        return (f->ph & KF_FREE) && (f->ph & KF_FREEOK) && !f->d;
    }
    if (n->kind != GN_STRING || f->ph != S_CONT || f->d) return false;
    *room = n->max == GN_NONE ? GN_NONE : (f->a >= n->max ? 0 : n->max - f->a);
    return true;
}

/* ---------------------------------------------------------------------------------------------- */
/* public */

void ragd_gmatch_init(const ragd_grammar *g, ragd_gmatch *m) {
    m->n_alt = 1;
    m->depth[0] = 1;
    m->f[0][0] = frame_init(g, g->root);
}

bool ragd_gmatch_advance(const ragd_grammar *g, ragd_gmatch *m, const void *bytes, size_t len) {
    if (!len) return m->n_alt > 0;
    const uint8_t *p = bytes;
    ragd_gmatch a, b;
    gm_step(g, m, p[0], &a);
    ragd_gmatch *cur = &a, *nxt = &b;
    for (size_t i = 1; i < len && cur->n_alt; i++) {
        gm_step(g, cur, p[i], nxt);
        ragd_gmatch *t = cur;
        cur = nxt;
        nxt = t;
    }
    if (!cur->n_alt) return false;
    m->n_alt = cur->n_alt;
    for (int k = 0; k < cur->n_alt; k++) {
        m->depth[k] = cur->depth[k];
        memcpy(m->f[k], cur->f[k], (size_t)cur->depth[k] * sizeof(ragd_gframe));
    }
    return true;
}

bool ragd_gmatch_accepting(const ragd_grammar *g, const ragd_gmatch *m) {
    for (int k = 0; k < m->n_alt; k++) {
        if (m->depth[k] == 0) return true;
        if (m->depth[k] != 1) continue;
        const ragd_gframe *f = &m->f[k][0];
        const gnode *n = &g->nodes[f->node];
        if (f->ph & PH_KEY) continue;
        if (n->kind == GN_NUMBER && number_complete(f)) return true;
        if (n->kind == GN_LITERAL && literal_complete(g, n, f)) return true;
        if (n->kind == GN_SEQ && f->a == n->count) return true; /* a further tail may follow, or nothing */
    }
    return false;
}

bool ragd_gmatch_finished(const ragd_grammar *g, const ragd_gmatch *m) {
    (void)g;
    if (!m->n_alt) return false;
    for (int k = 0; k < m->n_alt; k++)
        if (m->depth[k] != 0) return false;
    return true;
}
