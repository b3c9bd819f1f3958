/* tok_bpe.c — the BPE model on one pre-tokenized word, exactly as HF `tokenizers` BPE::merge_word.
 *
 * Initial symbols: in byte mode one per byte (t->byte_id); otherwise one per character with the
 * continuing-subword prefix on all but the first and the end-of-word suffix on the last, falling back
 * to <0xXX> byte tokens (byte_fallback) or the unknown token (fused when fuse_unk) as HF does.
 * Merging: repeatedly merge the adjacent pair of lowest rank, leftmost first. Short words use a plain
 * scan over a rank array (O(n²) with tiny n); words above BPE_SCAN_MAX symbols use a binary heap of
 * (rank, position) over a linked list — O(n log n), so a 1 MB word stays fast.
 *
 * Word cache: in byte mode, words up to TOK_CACHE_MAX_WORD bytes whose ids fit in TOK_CACHE_MAX_IDS
 * are remembered in the calling thread's tok_ws (direct-mapped, overwrite on collision).
 */
#include <stdlib.h>

#include "tokenizer/tok_internal.h"

#define BPE_SCAN_MAX 48

static void ensure_sym(tok_ws *ws, size_t n) {
    if (n <= ws->sym_cap) return;
    size_t cap = ws->sym_cap ? ws->sym_cap : 64;
    while (cap < n) cap *= 2;
    ws->sym = ragd_xrealloc(ws->sym, cap * sizeof *ws->sym);
    ws->rk = ragd_xrealloc(ws->rk, cap * sizeof *ws->rk);
    ws->sym_cap = cap;
}

static void ids_reserve(ragd_tok_ids *v, size_t extra) {
    if (v->n + extra <= v->cap) return;
    size_t cap = v->cap ? v->cap : 64;
    while (cap < v->n + extra) cap *= 2;
    v->ids = ragd_xrealloc(v->ids, cap * sizeof *v->ids);
    v->cap = cap;
}

/* Merges sym[0..n) in place by the scan method; returns the new count. */
static size_t merge_scan(const tok_merges *mg, int32_t *sym, uint32_t *rk, int32_t *nw, size_t n) {
    if (n < 2) return n;
    for (size_t k = 0; k + 1 < n; k++) rk[k] = tok_merges_get(mg, sym[k], sym[k + 1], &nw[k]);
    for (;;) {
        uint32_t best = UINT32_MAX;
        size_t bk = 0;
        for (size_t k = 0; k + 1 < n; k++)
            if (rk[k] < best) { best = rk[k]; bk = k; }
        if (best == UINT32_MAX) break;
        sym[bk] = nw[bk];
        n--;
        for (size_t k = bk + 1; k < n; k++) { sym[k] = sym[k + 1]; rk[k] = rk[k + 1]; nw[k] = nw[k + 1]; }
        if (bk > 0) rk[bk - 1] = tok_merges_get(mg, sym[bk - 1], sym[bk], &nw[bk - 1]);
        if (bk + 1 < n) rk[bk] = tok_merges_get(mg, sym[bk], sym[bk + 1], &nw[bk]);
    }
    return n;
}

/* heap of (rank << 32 | position), min first */
static void heap_push(tok_ws *ws, size_t *hn, uint64_t v) {
    if (*hn == ws->heap_cap) {
        ws->heap_cap = ws->heap_cap ? ws->heap_cap * 2 : 256;
        ws->heap = ragd_xrealloc(ws->heap, ws->heap_cap * sizeof *ws->heap);
    }
    uint64_t *h = ws->heap;
    size_t i = (*hn)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static uint64_t heap_pop(tok_ws *ws, size_t *hn) {
    uint64_t *h = ws->heap;
    uint64_t top = h[0], v = h[--(*hn)];
    size_t n = *hn, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] < h[c]) c++;
        if (v <= h[c]) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = v;
    return top;
}

/* Merges sym[0..n) with the heap method; compacts the survivors to the front; returns their count. */
static size_t merge_heap(const tok_merges *mg, tok_ws *ws, int32_t *sym, size_t n) {
    if (n > ws->link_cap) {
        ws->prv = ragd_xrealloc(ws->prv, n * sizeof *ws->prv);
        ws->nxt = ragd_xrealloc(ws->nxt, n * sizeof *ws->nxt);
        ws->link_cap = n;
    }
    int32_t *prv = ws->prv, *nxt = ws->nxt;
    size_t hn = 0;
    for (size_t k = 0; k < n; k++) {
        prv[k] = (int32_t)k - 1;
        nxt[k] = k + 1 < n ? (int32_t)k + 1 : -1;
        int32_t m = -1;
        if (k + 1 < n) {
            uint32_t r = tok_merges_get(mg, sym[k], sym[k + 1], &m);
            if (r != UINT32_MAX) heap_push(ws, &hn, ((uint64_t)r << 32) | k);
        }
    }
    while (hn) {
        uint64_t top = heap_pop(ws, &hn);
        uint32_t r = (uint32_t)(top >> 32);
        int32_t pos = (int32_t)(uint32_t)top;
        if (sym[pos] < 0) continue;
        int32_t nx = nxt[pos];
        if (nx < 0) continue;
        int32_t m = -1;
        if (tok_merges_get(mg, sym[pos], sym[nx], &m) != r) continue; /* stale */
        sym[pos] = m;
        sym[nx] = -1;
        nxt[pos] = nxt[nx];
        if (nxt[nx] >= 0) prv[nxt[nx]] = pos;
        int32_t m2 = -1;
        if (prv[pos] >= 0) {
            uint32_t r2 = tok_merges_get(mg, sym[prv[pos]], sym[pos], &m2);
            if (r2 != UINT32_MAX) heap_push(ws, &hn, ((uint64_t)r2 << 32) | (uint32_t)prv[pos]);
        }
        if (nxt[pos] >= 0) {
            uint32_t r2 = tok_merges_get(mg, sym[pos], sym[nxt[pos]], &m2);
            if (r2 != UINT32_MAX) heap_push(ws, &hn, ((uint64_t)r2 << 32) | (uint32_t)pos);
        }
    }
    size_t w = 0;
    for (size_t k = 0; k < n; k++)
        if (sym[k] >= 0) sym[w++] = sym[k];
    return w;
}

/* Initial symbols of a word in character mode (see the file comment). Returns the count. */
static size_t char_symbols(const ragd_tokenizer *t, tok_ws *ws, const uint8_t *w, size_t n) {
    size_t cnt = 0;
    int32_t unk_len = 0; /* > 0 while an unknown run is pending */
    char key[64];
    for (size_t i = 0; i < n;) {
        size_t l;
        tok_utf8_decode(w + i, &l);
        bool last = i + l >= n;
        size_t kl = 0;
        if (i > 0 && t->cont_prefix_len) { memcpy(key, t->cont_prefix, t->cont_prefix_len); kl = t->cont_prefix_len; }
        memcpy(key + kl, w + i, l); kl += l;
        if (last && t->eow_suffix_len) { memcpy(key + kl, t->eow_suffix, t->eow_suffix_len); kl += t->eow_suffix_len; }
        int32_t id = tok_hash_get(&t->key2id, key, kl);
        ensure_sym(ws, cnt + kl + 2);
        if (id >= 0) {
            if (unk_len) { ws->sym[cnt++] = t->unk_id; unk_len = 0; }
            ws->sym[cnt++] = id;
        } else {
            bool done = false;
            if (t->byte_fallback) {
                done = true;
                for (size_t k = 0; k < kl; k++)
                    if (t->byte_tok[(uint8_t)key[k]] < 0) done = false;
                if (done) {
                    /* HF flushes no pending unk here: byte tokens are added directly */
                    for (size_t k = 0; k < kl; k++) ws->sym[cnt++] = t->byte_tok[(uint8_t)key[k]];
                }
            }
            if (!done && t->unk_id >= 0) {
                if (unk_len && !t->fuse_unk) ws->sym[cnt++] = t->unk_id;
                unk_len = 1;
            }
        }
        i += l;
    }
    if (unk_len) { ensure_sym(ws, cnt + 1); ws->sym[cnt++] = t->unk_id; }
    return cnt;
}

ragd_status tok_bpe_word(const ragd_tokenizer *t, tok_ws *ws, const uint8_t *w, size_t n, ragd_tok_ids *out,
                         ragd_err *err) {
    (void)err;
    if (!n) return RAGD_OK;
    if (t->ignore_merges) {
        int32_t id = tok_hash_get(&t->key2id, (const char *)w, n);
        if (id >= 0) { ragd_tok_ids_push(out, id); return RAGD_OK; }
    }
    tok_cache_entry *ce = NULL;
    uint64_t h = 0;
    if (t->byte_mode && ws->cache && n <= TOK_CACHE_MAX_WORD) {
        h = tok_hash_bytes(w, n) | 1;
        ce = &ws->cache[h & (TOK_CACHE_SLOTS - 1)];
        if (ce->h == h && ce->wlen == n && !memcmp(ce->w, w, n)) {
            ids_reserve(out, ce->nids);
            memcpy(out->ids + out->n, ce->ids, ce->nids * sizeof(int32_t));
            out->n += ce->nids;
            return RAGD_OK;
        }
    }
    size_t cnt;
    if (t->byte_mode) {
        ensure_sym(ws, n);
        cnt = 0;
        int32_t unk_pending = 0;
        for (size_t i = 0; i < n; i++) {
            int32_t id = t->byte_id[w[i]];
            if (id >= 0) {
                if (unk_pending) { ws->sym[cnt++] = t->unk_id; unk_pending = 0; }
                ws->sym[cnt++] = id;
            } else if (t->unk_id >= 0) {
                /* one byte-level character per byte: fuse like HF */
                if (unk_pending && !t->fuse_unk) ws->sym[cnt++] = t->unk_id;
                unk_pending = 1;
            }
        }
        if (unk_pending) ws->sym[cnt++] = t->unk_id;
    } else {
        cnt = char_symbols(t, ws, w, n);
    }
    int32_t *sym = ws->sym;
    if (cnt <= BPE_SCAN_MAX) {
        int32_t nw[BPE_SCAN_MAX];
        cnt = merge_scan(&t->merges, sym, ws->rk, nw, cnt);
    } else {
        cnt = merge_heap(&t->merges, ws, sym, cnt);
    }
    ids_reserve(out, cnt);
    memcpy(out->ids + out->n, sym, cnt * sizeof(int32_t));
    out->n += cnt;
    if (ce && cnt <= TOK_CACHE_MAX_IDS) {
        ce->h = h;
        ce->wlen = (uint8_t)n;
        ce->nids = (uint8_t)cnt;
        memcpy(ce->w, w, n);
        memcpy(ce->ids, sym, cnt * sizeof(int32_t));
    }
    return RAGD_OK;
}
