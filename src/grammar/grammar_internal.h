/* grammar_internal.h — the compiled grammar shared by the schema compiler (schema.c), the matcher
 * (match.c) and the token masks (mask.c). Not for other modules.
 *
 * A grammar is an array of nodes, one per schema value kind; a matcher frame names a node and holds
 * that node's progress (ph = phase, a..d = counters). Node ids, property and literal indices fit in
 * 16 bits (the compiler refuses bigger schemas). Strings (property names, literal JSON texts) live in
 * one byte arena and are referenced by offset.
 */
#ifndef RAGD_GRAMMAR_INTERNAL_H
#define RAGD_GRAMMAR_INTERNAL_H

#include "grammar/grammar.h"

typedef enum {
    GN_PLACEHOLDER = 0, /* a $ref target being compiled; none remain after compile */
    GN_ANYOF,           /* alternatives (flattened: never another ANYOF) */
    GN_OBJECT,
    GN_ARRAY,
    GN_STRING,
    GN_NUMBER,          /* integer: digits only */
    GN_LITERAL,         /* one of a sorted set of JSON texts (enum, const, boolean, null) */
    GN_SWITCH,          /* a property value chosen by the literal an earlier property of a tagged object took:
                         * alts[first + i] for its sorted literal i (tool calls: the arguments of the named
                         * function); never a frame of its own */
    GN_SEQ,             /* alts[first..first+count) one after the other, no separators (raw text around a
                         * value: "\n" {call} "\n</tool_call>"); frame a = the element now open; then
                         * up to max tails `items` (frame b: how many, counted when max is bounded);
                         * tagged: frame c = 1 + the literal index element `additional` took, which a
                         * later GN_SWITCH element reads (a raw name selecting the arguments) */
} gn_kind;

#define GN_NONE 0xFFFFu  /* no node / no limit */
#define GN_EXTRA 0xFFFEu /* object frame: the current key is an extra (additionalProperties) key */

typedef struct gnode {
    uint8_t kind;
    uint8_t integer;          /* NUMBER */
    uint8_t mindepth;         /* frames the smallest value of this node needs (≥ 1), capped at 255; SWITCH:
                               * the largest of its alternatives' (a key is opened only when any fits) */
    uint8_t tagged;           /* OBJECT: its frame's c = 1 + the sorted index of the literal its last literal
                               * value took (read by a later SWITCH value) */
    uint32_t first, count;    /* OBJECT: props; ANYOF, SWITCH: alts; LITERAL: lits */
    uint32_t sorted;          /* OBJECT: g->sorted[sorted..sorted+count) = props by name bytes */
    int32_t last_required;    /* OBJECT: index of the last required property, -1 none */
    uint32_t additional;      /* OBJECT: node of extra keys' values, GN_NONE = no extra keys */
    uint32_t items;           /* ARRAY */
    uint32_t min, max;        /* ARRAY: items; STRING: code points; max GN_NONE = unbounded */
} gnode;

typedef struct gprop {
    uint32_t name_off, name_len; /* the name as it appears between the quotes (JSON-escaped) */
    uint32_t value;
    uint32_t next_req;           /* the smallest required index ≥ this one (count when none) */
    bool required;
} gprop;

typedef struct glit {
    uint32_t off, len;
} glit;

struct ragd_grammar {
    gnode *nodes;
    uint32_t n_nodes, cap_nodes;
    gprop *props;
    uint32_t n_props, cap_props;
    uint32_t *sorted; /* [n_props] */
    uint32_t *alts;
    uint32_t n_alts, cap_alts;
    glit *lits;
    uint32_t n_lits, cap_lits;
    ragd_buf strs;
    uint32_t root;
    uint32_t any; /* the "any JSON value" node */
    uint64_t fp[2]; /* content fingerprint (ragd_grammar_fingerprint), set when the compile succeeds */
    int n_mk;       /* marker tokens (ragd_grammar_calls.marker_ids): id and text */
    int32_t mk_id[RAGD_GRAMMAR_MAX_MARKERS];
    uint8_t mk_len[RAGD_GRAMMAR_MAX_MARKERS];
    char mk_text[RAGD_GRAMMAR_MAX_MARKERS][32];
};

/* schema.c: computes g->fp from every array of the grammar */
void grammar_fingerprint_set(ragd_grammar *g);

/* phases */
enum { O_START = 0, O_FIRST, O_COLON, O_VAL_SP, O_VAL, O_AFTER, O_KEY_SP, O_KEY };
enum { A_START = 0, A_FIRST, A_AFTER, A_SP, A_ITEM };
enum { S_START = 0, S_CONT, S_ESC, S_U };
enum { N_START = 0, N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };
/* a key frame: node = its object, ph = PH_KEY | flags, a..b = range of sorted names consistent with
 * the bytes so far (a > b: none), c = bytes so far, d = UTF-8 state of a free (extra) key */
enum { PH_KEY = 0x100, KF_FREE = 0x200, KF_FREEOK = 0x400 };

/* match.c: one byte on every alternative of in; out gets the survivors (n_alt 0 = rejected). */
void gm_step(const ragd_grammar *g, const ragd_gmatch *in, uint8_t c, ragd_gmatch *out);
/* The plain-string fast path (mask.c): true when alternative k of m is inside a string (or a free
 * key) at a code point boundary, where every "plain" token (printable, no '"' or '\\', complete UTF-8)
 * is accepted; *room = how many more code points the string may take (GN_NONE: unbounded). */
bool gm_plain_state(const ragd_grammar *g, const ragd_gmatch *m, int k, uint32_t *room);

#endif
