/* mask.c — the vocabulary trie and token masks.
 *
 * The trie holds every allowed token's bytes (sorted; nodes in depth-first preorder, each with the
 * index just past its subtree), so a mask is one pass over the nodes: a node's state is its parent's
 * advanced by one byte, and a rejected node skips its whole subtree — shared prefixes are matched once
 * and most of the vocabulary is cut at its first byte.
 *
 * The fast path: inside a string (or an extra key) at a code point boundary, every "plain" token —
 * printable bytes, no '"' or '\\', whole UTF-8 characters — is accepted, whatever the stack below
 * holds. Those tokens' bits are precomputed (all of them; for room r < PLAIN_K left under a maxLength
 * those of at most r code points; the few longer ones are listed with their lengths), so only the
 * second trie, of the other tokens, is walked.
 *
 * The mask of a multi-stack state is the union of its stacks' masks (the stacks evolve
 * independently), each computed from a one-stack state.
 */
#include <stdlib.h>

#include "grammar/grammar_internal.h"

#define PLAIN_K 32 /* precomputed plain masks for room 0..PLAIN_K-1 code points */

typedef struct tnode {
    uint32_t skip;      /* index of the next node outside this subtree */
    uint32_t tok_first; /* toks[tok_first..+n_tok): the tokens ending here */
    uint16_t n_tok;
    uint16_t depth;     /* 1 = a first byte */
    uint8_t byte;
} tnode;

typedef struct trie {
    tnode *nodes;
    uint32_t n_nodes;
    int32_t *toks;
} trie;

struct ragd_vocab_trie {
    int n_vocab, n_words;
    char *bytes;       /* arena */
    size_t *off;       /* [n_vocab] */
    int *len;          /* [n_vocab] -1: never allowed as bytes */
    trie full, other;  /* every allowed token; the non-plain ones */
    int max_len;
    uint32_t max_plain_cp;
    uint32_t *plain_all; /* [n_words] */
    uint32_t *plain_le;  /* [PLAIN_K][n_words]: plain tokens of ≤ r code points */
    int32_t *long_ids;   /* plain tokens of ≥ PLAIN_K code points ... */
    uint32_t *long_cps;  /* ... and their code points */
    uint32_t n_long;
    int32_t *eos;
    int n_eos;
};

struct ragd_gmask_ws {
    int max_len;
    ragd_gmatch *st; /* [max_len + 1] the state at each trie depth */
};

/* ---------------------------------------------------------------------------------------------- */
/* build */

static int tok_cmp(const void *pa, const void *pb, void *ctx) {
    const ragd_vocab_trie *t = ctx;
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    int la = t->len[a], lb = t->len[b];
    int r = memcmp(t->bytes + t->off[a], t->bytes + t->off[b], (size_t)(la < lb ? la : lb));
    if (r) return r;
    if (la != lb) return la < lb ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* ids: sorted by bytes. */
static ragd_status build_trie(const ragd_vocab_trie *t, const int32_t *ids, uint32_t n, trie *out, ragd_err *err) {
    size_t total = 1;
    for (uint32_t i = 0; i < n; i++) total += (size_t)t->len[ids[i]];
    out->nodes = malloc(total * sizeof *out->nodes);
    out->toks = malloc((n ? n : 1) * sizeof *out->toks);
    uint32_t *path = malloc(((size_t)t->max_len + 1) * sizeof *path);
    if (!out->nodes || !out->toks || !path) {
        free(path);
        return ragd_err_set(err, RAGD_ENOMEM, "vocabulary trie: out of memory");
    }
    memcpy(out->toks, ids, n * sizeof *ids);
    uint32_t nn = 0;
    int open = 0; /* path[0..open): the open nodes (of the previous token), by depth - 1 */
    const char *prev = NULL;
    int prev_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *s = t->bytes + t->off[ids[i]];
        int len = t->len[ids[i]];
        int l = 0;
        while (prev && l < len && l < prev_len && s[l] == prev[l]) l++;
        if (l < open) { /* leave the previous token's deeper nodes: their subtrees end here */
            for (int k = l; k < open; k++) out->nodes[path[k]].skip = nn;
            open = l;
        }
        for (int d = l; d < len; d++) {
            tnode *nd = &out->nodes[nn];
            nd->skip = 0;
            nd->tok_first = 0;
            nd->n_tok = 0;
            nd->depth = (uint16_t)(d + 1);
            nd->byte = (uint8_t)s[d];
            path[d] = nn++;
            open = d + 1;
        }
        tnode *end = &out->nodes[path[len - 1]];
        if (!end->n_tok) end->tok_first = i;
        if (end->n_tok < UINT16_MAX) end->n_tok++;
        prev = s;
        prev_len = len;
    }
    for (int k = 0; k < open; k++) out->nodes[path[k]].skip = nn;
    out->n_nodes = nn;
    free(path);
    return RAGD_OK;
}

/* Plain: bytes ≥ 0x20 but '"' and '\\', whole valid UTF-8. Returns its code points, or 0 if not plain. */
static uint32_t plain_cp(const char *s, int n) {
    uint32_t cp = 0;
    for (int i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c < 0x20 || c == '"' || c == '\\') return 0;
        if ((c & 0xC0) != 0x80) cp++;
    }
    return ragd_utf8_valid(s, (size_t)n, NULL) ? cp : 0;
}

static bool is_eos(const int32_t *eos, int n_eos, int32_t id) {
    for (int i = 0; i < n_eos; i++)
        if (eos[i] == id) return true;
    return false;
}

ragd_status ragd_vocab_trie_build(const char *const *tok_bytes, const int *tok_len, int n_vocab,
                                  const int32_t *eos_ids, int n_eos, ragd_vocab_trie **out, ragd_err *err) {
    *out = NULL;
    if (n_vocab < 1 || n_vocab > (1 << 24))
        return ragd_err_set(err, RAGD_ERANGE, "vocabulary size %d must be in 1..%d", n_vocab, 1 << 24);
    if (n_eos < 0 || n_eos > 64) return ragd_err_set(err, RAGD_ERANGE, "%d EOS ids: at most 64", n_eos);
    for (int i = 0; i < n_eos; i++)
        if (eos_ids[i] < 0 || eos_ids[i] >= n_vocab)
            return ragd_err_set(err, RAGD_ERANGE, "EOS id %d is not in the vocabulary (size %d)", eos_ids[i], n_vocab);
    ragd_vocab_trie *t = calloc(1, sizeof *t);
    if (!t) return ragd_err_set(err, RAGD_ENOMEM, "vocabulary trie: out of memory");
    t->n_vocab = n_vocab;
    t->n_words = (n_vocab + 31) / 32;
    size_t total = 0;
    for (int i = 0; i < n_vocab; i++)
        if (tok_bytes[i] && tok_len[i] > 0 && tok_len[i] <= RAGD_VOCAB_MAX_TOKEN_BYTES) total += (size_t)tok_len[i];
    t->bytes = malloc(total ? total : 1);
    t->off = calloc((size_t)n_vocab, sizeof *t->off);
    t->len = malloc((size_t)n_vocab * sizeof *t->len);
    t->eos = malloc((size_t)(n_eos ? n_eos : 1) * sizeof *t->eos);
    int32_t *ids = malloc((size_t)n_vocab * sizeof *ids), *other = malloc((size_t)n_vocab * sizeof *other);
    uint32_t *cps = calloc((size_t)n_vocab, sizeof *cps);
    t->plain_all = calloc((size_t)t->n_words, sizeof(uint32_t));
    t->plain_le = calloc((size_t)t->n_words * PLAIN_K, sizeof(uint32_t));
    t->long_ids = malloc((size_t)n_vocab * sizeof *t->long_ids);
    t->long_cps = malloc((size_t)n_vocab * sizeof *t->long_cps);
    ragd_status st = RAGD_OK;
    if (!t->bytes || !t->off || !t->len || !t->eos || !ids || !other || !cps || !t->plain_all || !t->plain_le || !t->long_ids ||
        !t->long_cps) {
        st = ragd_err_set(err, RAGD_ENOMEM, "vocabulary trie: out of memory");
        goto done;
    }
    if (n_eos) memcpy(t->eos, eos_ids, (size_t)n_eos * sizeof *eos_ids);
    t->n_eos = n_eos;
    size_t pos = 0;
    uint32_t n_ids = 0, n_other = 0;
    for (int i = 0; i < n_vocab; i++) {
        t->len[i] = -1;
        if (!tok_bytes[i] || tok_len[i] <= 0 || tok_len[i] > RAGD_VOCAB_MAX_TOKEN_BYTES || is_eos(eos_ids, n_eos, i))
            continue;
        memcpy(t->bytes + pos, tok_bytes[i], (size_t)tok_len[i]);
        t->off[i] = pos;
        t->len[i] = tok_len[i];
        pos += (size_t)tok_len[i];
        if (tok_len[i] > t->max_len) t->max_len = tok_len[i];
        ids[n_ids++] = i;
        cps[i] = plain_cp(tok_bytes[i], tok_len[i]);
        if (cps[i] > t->max_plain_cp) t->max_plain_cp = cps[i];
    }
    qsort_r(ids, n_ids, sizeof *ids, tok_cmp, t);
    for (uint32_t j = 0; j < n_ids; j++) {
        int32_t i = ids[j];
        if (!cps[i]) {
            other[n_other++] = i;
            continue;
        }
        t->plain_all[i >> 5] |= 1u << (i & 31);
        if (cps[i] >= PLAIN_K) {
            t->long_ids[t->n_long] = i;
            t->long_cps[t->n_long++] = cps[i];
        }
        for (uint32_t r = cps[i]; r < PLAIN_K; r++) t->plain_le[(size_t)r * t->n_words + (i >> 5)] |= 1u << (i & 31);
    }
    if ((st = build_trie(t, ids, n_ids, &t->full, err))) goto done;
    st = build_trie(t, other, n_other, &t->other, err);
done:
    free(ids);
    free(other);
    free(cps);
    if (st) {
        ragd_vocab_trie_free(t);
        return st;
    }
    *out = t;
    return RAGD_OK;
}

ragd_status ragd_vocab_trie_from_tokenizer(const ragd_tokenizer *tok, const int32_t *eos_ids, int n_eos,
                                           ragd_vocab_trie **out, ragd_err *err) {
    *out = NULL;
    if (!ragd_tokenizer_bytes_concat(tok))
        return ragd_err_set(err, RAGD_EUNSUPPORTED,
                            "structured output needs a tokenizer whose decoder concatenates token bytes (ByteLevel)");
    size_t n = ragd_tokenizer_vocab_size(tok);
    if (n < 1 || n > (1u << 24)) return ragd_err_set(err, RAGD_ERANGE, "vocabulary size %zu", n);
    const char **b = malloc(n * sizeof *b);
    int *l = malloc(n * sizeof *l);
    if (!b || !l) {
        free(b);
        free(l);
        return ragd_err_set(err, RAGD_ENOMEM, "vocabulary trie: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        b[i] = ragd_tokenizer_is_special(tok, (int32_t)i) ? NULL : ragd_tokenizer_token_bytes(tok, (int32_t)i, &len);
        l[i] = b[i] && len <= RAGD_VOCAB_MAX_TOKEN_BYTES ? (int)len : -1;
    }
    ragd_status st = ragd_vocab_trie_build(b, l, (int)n, eos_ids, n_eos, out, err);
    free(b);
    free(l);
    return st;
}

void ragd_vocab_trie_free(ragd_vocab_trie *t) {
    if (!t) return;
    free(t->bytes);
    free(t->off);
    free(t->len);
    free(t->full.nodes);
    free(t->full.toks);
    free(t->other.nodes);
    free(t->other.toks);
    free(t->plain_all);
    free(t->plain_le);
    free(t->long_ids);
    free(t->long_cps);
    free(t->eos);
    free(t);
}

int ragd_vocab_trie_n_vocab(const ragd_vocab_trie *t) { return t->n_vocab; }
int ragd_vocab_trie_mask_words(const ragd_vocab_trie *t) { return t->n_words; }

const char *ragd_vocab_trie_token(const ragd_vocab_trie *t, int32_t id, int *len) {
    *len = 0;
    if (id < 0 || id >= t->n_vocab || t->len[id] < 0) return NULL;
    *len = t->len[id];
    return t->bytes + t->off[id];
}

ragd_gmask_ws *ragd_gmask_ws_create(const ragd_vocab_trie *t) {
    ragd_gmask_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->max_len = t->max_len;
    ws->st = malloc(((size_t)t->max_len + 1) * sizeof *ws->st);
    if (!ws->st) {
        free(ws);
        return NULL;
    }
    return ws;
}

void ragd_gmask_ws_free(ragd_gmask_ws *ws) {
    if (!ws) return;
    free(ws->st);
    free(ws);
}

/* ---------------------------------------------------------------------------------------------- */
/* masks */

static void walk(const ragd_grammar *g, const trie *tr, ragd_gmask_ws *ws, uint32_t *words) {
    const tnode *nodes = tr->nodes;
    for (uint32_t i = 0; i < tr->n_nodes;) {
        const tnode *nd = &nodes[i];
        ragd_gmatch *cur = &ws->st[nd->depth];
        gm_step(g, &ws->st[nd->depth - 1], nd->byte, cur);
        if (!cur->n_alt) {
            i = nd->skip;
            continue;
        }
        for (uint32_t j = 0; j < nd->n_tok; j++) {
            int32_t id = tr->toks[nd->tok_first + j];
            words[id >> 5] |= 1u << (id & 31);
        }
        i++;
    }
}

/* Inside a string or a key of some alternative: a marker token is never text there (its bytes would
 * fit a string, but a special token inside a value is not what the grammar's literal means). */
static bool in_string(const ragd_grammar *g, const ragd_gmatch *m) {
    for (int k = 0; k < m->n_alt; k++) {
        int d = m->depth[k];
        if (!d) continue;
        const ragd_gframe *f = &m->f[k][d - 1];
        if ((f->ph & PH_KEY) || g->nodes[f->node].kind == GN_STRING) return true;
    }
    return false;
}

void ragd_gmask(const ragd_grammar *g, const ragd_gmatch *m, const ragd_vocab_trie *t, ragd_gmask_ws *ws,
                uint32_t *words) {
    RAGD_ASSERT(ws->max_len >= t->max_len);
    memset(words, 0, (size_t)t->n_words * sizeof *words);
    for (int k = 0; k < m->n_alt; k++) {
        ragd_gmatch *s0 = &ws->st[0];
        s0->n_alt = 1;
        s0->depth[0] = m->depth[k];
        memcpy(s0->f[0], m->f[k], (size_t)m->depth[k] * sizeof(ragd_gframe));
        uint32_t room;
        if (!gm_plain_state(g, m, k, &room)) {
            walk(g, &t->full, ws, words);
            continue;
        }
        const uint32_t *plain = room == GN_NONE || room >= t->max_plain_cp ? t->plain_all
                                : t->plain_le + (size_t)(room < PLAIN_K ? room : PLAIN_K - 1) * t->n_words;
        for (int w = 0; w < t->n_words; w++) words[w] |= plain[w];
        if (plain != t->plain_all && room >= PLAIN_K)
            for (uint32_t j = 0; j < t->n_long; j++)
                if (t->long_cps[j] <= room) words[t->long_ids[j] >> 5] |= 1u << (t->long_ids[j] & 31);
        walk(g, &t->other, ws, words);
    }
    if (ragd_gmatch_accepting(g, m))
        for (int i = 0; i < t->n_eos; i++) words[t->eos[i] >> 5] |= 1u << (t->eos[i] & 31);
    for (int i = 0; i < g->n_mk && !in_string(g, m); i++) { /* marker tokens: where their text fits, outside strings */
        int32_t id = g->mk_id[i];
        if (id >= t->n_vocab) continue;
        ragd_gmatch x = *m;
        if (ragd_gmatch_advance(g, &x, g->mk_text[i], g->mk_len[i])) words[id >> 5] |= 1u << (id & 31);
    }
}

bool ragd_gmatch_advance_token(const ragd_grammar *g, ragd_gmatch *m, const ragd_vocab_trie *t, int32_t id) {
    if (is_eos(t->eos, t->n_eos, id)) return ragd_gmatch_accepting(g, m);
    int len;
    const char *b = ragd_vocab_trie_token(t, id, &len);
    for (int i = 0; !b && i < g->n_mk && !in_string(g, m); i++)
        if (g->mk_id[i] == id) {
            b = g->mk_text[i];
            len = g->mk_len[i];
        }
    if (!b) return false;
    return ragd_gmatch_advance(g, m, b, (size_t)len);
}
