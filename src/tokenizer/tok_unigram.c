/* tok_unigram.c — the Unigram model on one pre-tokenized word, exactly as HF `tokenizers`
 * Unigram::encode_optimized + tokenize:
 *
 *   Viterbi over byte positions: at each character start, every piece that prefixes the rest (trie
 *   common-prefix search, shortest first) extends the best path ending there by its score; a strictly
 *   better score replaces the node (so ties keep the first found). When no piece is exactly the next
 *   character, the unknown token (score = min score - 10) covers that character. Scores are f64.
 *   Backtracking fuses runs of unknown tokens (fuse_unk is always on in HF's Unigram); each resulting
 *   string is looked up again: a piece → its id; else byte_fallback → <0xXX> per byte when all exist;
 *   else the unknown id (a model without unk_id cannot encode such a word: EINVAL).
 *
 * The trie is one open-addressing table of (node, byte) → child built at load; the lattice lives in
 * the thread's workspace (no allocation once warm).
 */
#include <stdlib.h>

#include "tokenizer/tok_internal.h"

#define K_UNK_PENALTY 10.0

static inline size_t ut_slot(const tok_utrie *tr, uint64_t key) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (tr->cap - 1);
}

static inline int64_t ut_child(const tok_utrie *tr, uint32_t node, uint8_t b) {
    uint64_t key = (((uint64_t)node << 8) | b) + 1;
    for (size_t i = ut_slot(tr, key);; i = (i + 1) & (tr->cap - 1)) {
        if (tr->keys[i] == key) return tr->child[i];
        if (!tr->keys[i]) return -1;
    }
}

static void ut_grow(tok_utrie *tr) {
    size_t ocap = tr->cap;
    uint64_t *ok = tr->keys;
    uint32_t *oc = tr->child;
    tr->cap = ocap ? ocap * 2 : 1024;
    tr->keys = ragd_xcalloc(tr->cap, sizeof *tr->keys);
    tr->child = ragd_xcalloc(tr->cap, sizeof *tr->child);
    for (size_t i = 0; i < ocap; i++) {
        if (!ok[i]) continue;
        size_t j = ut_slot(tr, ok[i]);
        while (tr->keys[j]) j = (j + 1) & (tr->cap - 1);
        tr->keys[j] = ok[i];
        tr->child[j] = oc[i];
    }
    free(ok);
    free(oc);
}

static uint32_t ut_node(tok_utrie *tr) {
    if ((tr->n_nodes & (tr->n_nodes - 1)) == 0 || !tr->n_nodes) {
        size_t cap = tr->n_nodes ? tr->n_nodes * 2 : 256;
        tr->term = ragd_xrealloc(tr->term, cap * sizeof *tr->term);
    }
    tr->term[tr->n_nodes] = -1;
    return (uint32_t)tr->n_nodes++;
}

void tok_utrie_insert(tok_utrie *tr, const uint8_t *s, size_t n, int32_t id) {
    if (!tr->n_nodes) ut_node(tr);
    uint32_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t c = tr->cap ? ut_child(tr, cur, s[i]) : -1;
        if (c < 0) {
            if ((tr->n_keys + 1) * 4 > tr->cap * 3) ut_grow(tr); /* load factor ≤ 3/4 */
            uint32_t nn = ut_node(tr);
            uint64_t key = (((uint64_t)cur << 8) | s[i]) + 1;
            size_t j = ut_slot(tr, key);
            while (tr->keys[j]) j = (j + 1) & (tr->cap - 1);
            tr->keys[j] = key;
            tr->child[j] = nn;
            tr->n_keys++;
            c = nn;
        }
        cur = (uint32_t)c;
    }
    if (n) tr->term[cur] = id;
}

void tok_utrie_free(tok_utrie *tr) {
    free(tr->keys);
    free(tr->child);
    free(tr->term);
    memset(tr, 0, sizeof *tr);
}

static void lat_reserve(tok_ws *ws, size_t n) {
    if (n <= ws->lat_cap) return;
    size_t cap = ws->lat_cap ? ws->lat_cap : 256;
    while (cap < n) cap *= 2;
    ws->lat_score = ragd_xrealloc(ws->lat_score, cap * sizeof *ws->lat_score);
    ws->lat_start = ragd_xrealloc(ws->lat_start, cap * sizeof *ws->lat_start);
    ws->lat_id = ragd_xrealloc(ws->lat_id, cap * sizeof *ws->lat_id);
    ws->path = ragd_xrealloc(ws->path, cap * sizeof *ws->path);
    ws->lat_cap = cap;
}

/* Appends the id(s) of the string w[a..b) as HF's tokenize does after encode. */
static ragd_status emit(const ragd_tokenizer *t, const uint8_t *w, size_t a, size_t b, ragd_tok_ids *out,
                        ragd_err *err) {
    int32_t id = tok_hash_get(&t->key2id, (const char *)w + a, b - a);
    if (id >= 0) { ragd_tok_ids_push(out, id); return RAGD_OK; }
    if (t->byte_fallback) {
        bool all = true;
        for (size_t k = a; k < b && all; k++) all = t->byte_tok[w[k]] >= 0;
        if (all) {
            for (size_t k = a; k < b; k++) ragd_tok_ids_push(out, t->byte_tok[w[k]]);
            return RAGD_OK;
        }
    }
    if (t->unk_id < 0)
        return ragd_err_set(err, RAGD_EINVAL, "Unigram: the text needs the unknown token but the model has no unk_id");
    ragd_tok_ids_push(out, t->unk_id);
    return RAGD_OK;
}

ragd_status tok_unigram_word(const ragd_tokenizer *t, tok_ws *ws, const uint8_t *w, size_t n, ragd_tok_ids *out,
                             ragd_err *err) {
    if (!n) return RAGD_OK;
    lat_reserve(ws, n + 1);
    double *score = ws->lat_score;
    int32_t *from = ws->lat_start, *lid = ws->lat_id;
    for (size_t i = 0; i <= n; i++) { from[i] = -1; score[i] = 0; lid[i] = 0; }
    const tok_utrie *tr = &t->utrie;
    double unk_score = t->umin_score - K_UNK_PENALTY;
    for (size_t s = 0; s < n;) {
        double base = score[s];
        size_t mblen;
        tok_utf8_decode(w + s, &mblen);
        bool single = false;
        uint32_t node = 0;
        for (size_t j = s; j < n && tr->n_nodes; j++) {
            int64_t c = ut_child(tr, node, w[j]);
            if (c < 0) break;
            node = (uint32_t)c;
            int32_t id = tr->term[node];
            if (id < 0) continue;
            size_t e = j + 1;
            double cand = t->uscore[id] + base;
            if (from[e] < 0 || cand > score[e]) { score[e] = cand; from[e] = (int32_t)s; lid[e] = id; }
            if (e - s == mblen) single = true;
        }
        if (!single) {
            size_t e = s + mblen;
            double cand = unk_score + base;
            if (t->unk_id < 0) /* HF: MissingUnkId */
                return ragd_err_set(err, RAGD_EINVAL, "Unigram: the text needs the unknown token but the model has no unk_id");
            if (from[e] < 0 || cand > score[e]) { score[e] = cand; from[e] = (int32_t)s; lid[e] = t->unk_id; }
        }
        s += mblen;
    }
    /* backtrack: path[] gets the token end positions from the right; a fused unknown run is one entry */
    int32_t *path = ws->path;
    size_t np = 0;
    bool in_unk = false;
    for (size_t e = n; e > 0;) {
        size_t s = (size_t)from[e];
        bool unk = lid[e] == t->unk_id;
        if (!(unk && in_unk)) path[np++] = (int32_t)e; /* a new entry; a unk extends the pending run */
        in_unk = unk;
        e = s;
    }
    /* entries from the left: entry k spans [end of entry k+1 (or 0), path[k]) */
    for (size_t k = np; k-- > 0;) {
        size_t a = k + 1 < np ? (size_t)path[k + 1] : 0, b = (size_t)path[k];
        if (lid[b] != t->unk_id) { /* one piece: HF's string lookup gives its trie id */
            ragd_tok_ids_push(out, lid[b]);
            continue;
        }
        ragd_status st = emit(t, w, a, b, out, err);
        if (st) return st;
    }
    return RAGD_OK;
}
