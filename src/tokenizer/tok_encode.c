/* tok_encode.c — the encode pipeline (see tok_internal.h for its stages), the post-processor
 * template, and the per-thread workspaces.
 *
 * Added tokens are found with HF's AddedVocabulary::find_matches semantics: leftmost-longest over
 * all contents, single_word requires non-word characters (Rust regex \w, tok_is_word) or the text edge on both
 * sides, lstrip/rstrip absorb neighbouring White_Space, and the scan resumes at the end of the match
 * itself (not of the stripped span), as HF's iterator does.
 *
 * Pre-tokenizer steps run depth first: step k cuts its piece into sub-pieces and hands each to step
 * k+1; the last step hands words to BPE. Every Split output is a sub-range of its input, so only the
 * ByteLevel prefix space copies bytes (into ws->pre[k]). Nothing is allocated once a thread's
 * workspace has grown to the largest input it has seen.
 */
#include <stdlib.h>

#include "tokenizer/tok_internal.h"

/* ---------------------------------------------------------------------------------------------- */
/* ids */

void ragd_tok_ids_free(ragd_tok_ids *v) {
    if (!v) return;
    free(v->ids);
    memset(v, 0, sizeof *v);
}

void ragd_tok_ids_push(ragd_tok_ids *v, int32_t id) {
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 64;
        v->ids = ragd_xrealloc(v->ids, v->cap * sizeof *v->ids);
    }
    v->ids[v->n++] = id;
}

/* ---------------------------------------------------------------------------------------------- */
/* workspaces */

void tok_ws_free(tok_ws *ws) {
    if (!ws) return;
    free(ws->cache);
    ragd_buf_free(&ws->norm);
    ragd_buf_free(&ws->norm2);
    for (size_t k = 0; k < TOK_MAX_PRE; k++) { ragd_buf_free(&ws->pre[k]); free(ws->spl[k]); }
    free(ws->cp);
    free(ws->sym); free(ws->rk); free(ws->prv); free(ws->nxt); free(ws->heap);
    ragd_buf_free(&ws->norm3);
    ragd_buf_free(&ws->wkey);
    free(ws->lat_score); free(ws->lat_start); free(ws->lat_id); free(ws->path);
    ragd_tok_ids_free(&ws->pair_a);
    ragd_tok_ids_free(&ws->pair_b);
    if (ws->md) pcre2_match_data_free(ws->md);
    free(ws);
}

/* Runs at thread exit: unregisters the workspace from its tokenizer and frees it. */
static void ws_destructor(void *p) {
    tok_ws *ws = p;
    struct ragd_tokenizer *t = (struct ragd_tokenizer *)ws->owner;
    pthread_mutex_lock(&t->ws_mu);
    if (ws->prev_ws) ws->prev_ws->next_ws = ws->next_ws;
    else t->ws_list = ws->next_ws;
    if (ws->next_ws) ws->next_ws->prev_ws = ws->prev_ws;
    pthread_mutex_unlock(&t->ws_mu);
    tok_ws_free(ws);
}

void tok_ws_key_create(ragd_tokenizer *t) {
    pthread_mutex_init(&t->ws_mu, NULL);
    t->ws_key_ok = pthread_key_create(&t->ws_key, ws_destructor) == 0;
}

tok_ws *tok_ws_get(const ragd_tokenizer *t) {
    tok_ws *ws = t->ws_key_ok ? pthread_getspecific(t->ws_key) : NULL;
    if (ws) return ws;
    ws = ragd_xcalloc(1, sizeof *ws);
    ws->owner = t;
    if (t->byte_mode && t->use_cache) ws->cache = ragd_xcalloc(TOK_CACHE_SLOTS, sizeof *ws->cache);
    if (!t->ws_key_ok) { ws->temporary = true; return ws; }
    struct ragd_tokenizer *mt = (struct ragd_tokenizer *)t;
    pthread_mutex_lock(&mt->ws_mu);
    ws->next_ws = mt->ws_list;
    if (mt->ws_list) mt->ws_list->prev_ws = ws;
    mt->ws_list = ws;
    pthread_mutex_unlock(&mt->ws_mu);
    pthread_setspecific(t->ws_key, ws);
    return ws;
}

/* After each call: a workspace that grew for a huge input gives the memory back (buffers above
 * TOK_WS_KEEP bytes are freed), so a thread never retains more than a few MiB for small requests. */
#define TOK_WS_KEEP (4u << 20)

void tok_ws_release(tok_ws *ws) {
    if (ws->temporary) { tok_ws_free(ws); return; }
    if (ws->norm.cap > TOK_WS_KEEP) ragd_buf_free(&ws->norm);
    if (ws->norm2.cap > TOK_WS_KEEP) ragd_buf_free(&ws->norm2);
    for (size_t k = 0; k < TOK_MAX_PRE; k++) {
        if (ws->pre[k].cap > TOK_WS_KEEP) ragd_buf_free(&ws->pre[k]);
        if (ws->spl_cap[k] * sizeof(size_t) > TOK_WS_KEEP) { free(ws->spl[k]); ws->spl[k] = NULL; ws->spl_cap[k] = 0; }
    }
    if (ws->cp_cap * sizeof(int32_t) > TOK_WS_KEEP) { free(ws->cp); ws->cp = NULL; ws->cp_cap = 0; }
    if (ws->sym_cap * sizeof(int32_t) > TOK_WS_KEEP) {
        free(ws->sym); free(ws->rk);
        ws->sym = NULL; ws->rk = NULL; ws->sym_cap = 0;
    }
    if (ws->link_cap * sizeof(int32_t) > TOK_WS_KEEP) {
        free(ws->prv); free(ws->nxt);
        ws->prv = ws->nxt = NULL; ws->link_cap = 0;
    }
    if (ws->heap_cap * sizeof(uint64_t) > TOK_WS_KEEP) { free(ws->heap); ws->heap = NULL; ws->heap_cap = 0; }
    if (ws->norm3.cap > TOK_WS_KEEP) ragd_buf_free(&ws->norm3);
    if (ws->wkey.cap > TOK_WS_KEEP) ragd_buf_free(&ws->wkey);
    if (ws->lat_cap * sizeof(double) > TOK_WS_KEEP) {
        free(ws->lat_score); free(ws->lat_start); free(ws->lat_id); free(ws->path);
        ws->lat_score = NULL; ws->lat_start = ws->lat_id = ws->path = NULL; ws->lat_cap = 0;
    }
    if (ws->pair_a.cap * sizeof(int32_t) > TOK_WS_KEEP) ragd_tok_ids_free(&ws->pair_a);
    if (ws->pair_b.cap * sizeof(int32_t) > TOK_WS_KEEP) ragd_tok_ids_free(&ws->pair_b);
}

/* Frees every registered workspace (ragd_tokenizer_free). */
void tok_ws_free_all(ragd_tokenizer *t) {
    if (!t->ws_key_ok) return;
    pthread_key_delete(t->ws_key);
    pthread_mutex_lock(&t->ws_mu);
    tok_ws *ws = t->ws_list;
    t->ws_list = NULL;
    pthread_mutex_unlock(&t->ws_mu);
    while (ws) {
        tok_ws *nx = ws->next_ws;
        tok_ws_free(ws);
        ws = nx;
    }
    pthread_mutex_destroy(&t->ws_mu);
}

/* ---------------------------------------------------------------------------------------------- */
/* pipeline */

typedef struct enc_ctx {
    const ragd_tokenizer *t;
    tok_ws *ws;
    ragd_tok_ids *out;
    ragd_err *err;
    const uint8_t *raw_base;  /* the text */
    const uint8_t *norm_base; /* the normalized segment being split, NULL without normalizers */
    bool raw_first;           /* that segment starts the text */
    const uint8_t *piece0;    /* the piece handed to the pre-tokenizer */
} enc_ctx;

typedef ragd_status (*gap_fn)(enc_ctx *c, const uint8_t *s, size_t n);

static ragd_status pretok(enc_ctx *c, size_t level, const uint8_t *s, size_t n);

/* BertPreTokenizer (White_Space removed, punctuation isolated) or WhitespaceSplit. */
static ragd_status pretok_words(enc_ctx *c, size_t level, const uint8_t *s, size_t n, bool punct) {
    size_t start = 0;
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t cp = s[i] < 0x80 ? (l = 1, s[i]) : tok_utf8_decode(s + i, &l);
        bool ws = tok_is_rust_ws(cp), pu = !ws && punct && tok_is_bert_punct(cp);
        if (ws || pu) {
            ragd_status st = pretok(c, level + 1, s + start, i - start);
            if (!st && pu) st = pretok(c, level + 1, s + i, l);
            if (st) return st;
            start = i + l;
        }
        i += l;
    }
    return pretok(c, level + 1, s + start, n - start);
}

/* Whitespace: maximal runs of word characters and of other non-space characters (White_Space dropped). */
static ragd_status pretok_runs(enc_ctx *c, size_t level, const uint8_t *s, size_t n) {
    size_t start = 0;
    int cls = 0; /* of the run in progress: 0 none (space), 1 word, 2 other */
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t cp = s[i] < 0x80 ? (l = 1, s[i]) : tok_utf8_decode(s + i, &l);
        int k = tok_is_rust_ws(cp) ? 0 : tok_is_word(cp) ? 1 : 2;
        if (k != cls) {
            if (cls) {
                ragd_status st = pretok(c, level + 1, s + start, i - start);
                if (st) return st;
            }
            start = i;
            cls = k;
        }
        i += l;
    }
    return cls ? pretok(c, level + 1, s + start, n - start) : RAGD_OK;
}

/* Metaspace: ' ' → replacement, prepend per the scheme, then (split) a cut before every replacement. */
static ragd_status pretok_metaspace(enc_ctx *c, size_t level, const tok_pre *p, const uint8_t *s, size_t n) {
    ragd_buf *b = &c->ws->pre[level];
    ragd_buf_reset(b);
    ragd_buf_reserve(b, n + 8);
    bool starts = n >= p->rep_len && !memcmp(s, p->rep, p->rep_len);
    if (s[0] == ' ') starts = true; /* it becomes the replacement */
    bool first = c->ws->at_start && s == c->piece0;
    if (!starts && (p->prepend == TOK_PREPEND_ALWAYS || (p->prepend == TOK_PREPEND_FIRST && first)))
        ragd_buf_append(b, p->rep, p->rep_len);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') ragd_buf_append(b, p->rep, p->rep_len);
        else ragd_buf_putc(b, (char)s[i]);
    }
    const uint8_t *m = (const uint8_t *)b->data;
    size_t len = b->len;
    if (!p->split) return pretok(c, level + 1, m, len);
    size_t start = 0;
    for (size_t i = 0; i < len;) {
        if (m[i] == (uint8_t)p->rep[0] && i + p->rep_len <= len && !memcmp(m + i, p->rep, p->rep_len)) {
            if (i > start) {
                ragd_status st = pretok(c, level + 1, m + start, i - start);
                if (st) return st;
            }
            start = i;
            i += p->rep_len;
            continue;
        }
        size_t l;
        if (m[i] < 0x80) l = 1;
        else tok_utf8_decode(m + i, &l);
        i += l;
    }
    return pretok(c, level + 1, m + start, len - start);
}

static ragd_status pretok(enc_ctx *c, size_t level, const uint8_t *s, size_t n) {
    if (!n) return RAGD_OK;
    const ragd_tokenizer *t = c->t;
    if (level == t->n_pres) return tok_model_word(t, c->ws, s, n, c->out, c->err);
    const tok_pre *p = &t->pres[level];
    if (p->kind == TOK_PRE_BERT || p->kind == TOK_PRE_WSPLIT) return pretok_words(c, level, s, n, p->kind == TOK_PRE_BERT);
    if (p->kind == TOK_PRE_WHITESPACE) return pretok_runs(c, level, s, n);
    if (p->kind == TOK_PRE_METASPACE) return pretok_metaspace(c, level, p, s, n);
    if (p->kind == TOK_PRE_PREFIX_SPACE) {
        if (s[0] == ' ') return pretok(c, level + 1, s, n);
        ragd_buf *b = &c->ws->pre[level];
        ragd_buf_reset(b);
        ragd_buf_putc(b, ' ');
        ragd_buf_append(b, s, n);
        return pretok(c, level + 1, (const uint8_t *)b->data, b->len);
    }
    if (p->match <= TOK_MATCH_GPT2 && p->behavior == TOK_SPLIT_ISOLATED && !p->invert) {
        for (size_t i = 0; i < n;) {
            size_t e = tok_known_match(p->match, s, n, i);
            ragd_status st = pretok(c, level + 1, s + i, e - i);
            if (st) return st;
            i = e;
        }
        return RAGD_OK;
    }
    size_t nv = 0;
    ragd_status st = tok_split_apply(p, s, n, &c->ws->spl[level], &c->ws->spl_cap[level], &nv, c->err);
    if (st) return st;
    for (size_t k = 0; k < nv; k += 3) {
        const size_t *v = c->ws->spl[level];
        st = pretok(c, level + 1, s + v[k], v[k + 1] - v[k]);
        if (st) return st;
    }
    return RAGD_OK;
}

static ragd_status gap_pretok(enc_ctx *c, const uint8_t *s, size_t n) {
    /* HF's Metaspace "first": the piece's original offset is 0 */
    c->ws->at_start = c->norm_base ? (c->raw_first && s == c->norm_base) : s == c->raw_base;
    c->piece0 = s;
    return pretok(c, 0, s, n);
}


/* the code point that ends s[0..n) (n > 0) and its start */
static uint32_t last_cp(const uint8_t *s, size_t n, size_t *start) {
    size_t i = n - 1;
    while (i > 0 && (s[i] & 0xC0) == 0x80) i--;
    size_t l;
    *start = i;
    return tok_utf8_decode(s + i, &l);
}

/* Splits s on the added tokens of tr; gaps go to gap(), tokens to the output. */
static ragd_status added_split(enc_ctx *c, const tok_trie *tr, const uint8_t *s, size_t n, gap_fn gap) {
    if (tr->empty) return gap(c, s, n);
    const ragd_tokenizer *t = c->t;
    size_t start_offset = 0, i = 0;
    while (i < n) {
        if (!tr->first[s[i]]) { i++; continue; }
        size_t end;
        int32_t k = tok_trie_longest(tr, s, n, i, &end);
        if (k < 0) { i++; continue; }
        const tok_added *a = &t->added[k];
        size_t start = i, stop = end;
        i = end;
        if (a->single_word) {
            size_t q, l;
            bool start_space = start == 0 || !tok_is_word(last_cp(s, start, &q));
            bool stop_space = stop == n || !tok_is_word(tok_utf8_decode(s + stop, &l));
            if (!start_space || !stop_space) continue;
        }
        if (a->lstrip) {
            size_t ns = start;
            while (ns > start_offset) { /* HF: max(start of the trailing spaces, start_offset) */
                size_t q;
                if (!tok_is_ws(last_cp(s, ns, &q))) break;
                ns = q;
            }
            start = ns;
        }
        if (a->rstrip) {
            while (stop < n) {
                size_t l;
                if (!tok_is_ws(tok_utf8_decode(s + stop, &l))) break;
                stop += l;
            }
        }
        if (start_offset < start) {
            ragd_status st = gap(c, s + start_offset, start - start_offset);
            if (st) return st;
        }
        ragd_tok_ids_push(c->out, a->id);
        start_offset = stop;
    }
    if (start_offset < n) return gap(c, s + start_offset, n - start_offset);
    return RAGD_OK;
}

static ragd_status gap_raw(enc_ctx *c, const uint8_t *s, size_t n) {
    const ragd_tokenizer *t = c->t;
    c->norm_base = NULL;
    if (!t->n_norms) return added_split(c, &t->trie_norm, s, n, gap_pretok);
    ragd_status st = tok_normalize(t, c->ws, (const char *)s, n, c->err);
    if (st) return st;
    c->raw_first = s == c->raw_base;
    c->norm_base = (const uint8_t *)c->ws->norm.data;
    return added_split(c, &t->trie_norm, (const uint8_t *)c->ws->norm.data, c->ws->norm.len, gap_pretok);
}

ragd_status tok_encode_body(const ragd_tokenizer *t, tok_ws *ws, const char *text, size_t len, ragd_tok_ids *out,
                            ragd_err *err) {
    enc_ctx c = {t, ws, out, err, (const uint8_t *)text, NULL, false, NULL};
    return added_split(&c, &t->trie_raw, (const uint8_t *)text, len, gap_raw);
}

ragd_status ragd_tokenizer_encode(const ragd_tokenizer *t, const char *text, size_t len, bool add_special,
                                  ragd_tok_ids *out, ragd_err *err) {
    size_t bad;
    if (len && !text) return ragd_err_set(err, RAGD_EINVAL, "encode: NULL text");
    if (!ragd_utf8_valid(text, len, &bad))
        return ragd_err_set(err, RAGD_EINVAL, "text is not valid UTF-8 (byte offset %zu)", bad);
    size_t n0 = out->n;
    tok_ws *ws = tok_ws_get(t);
    ragd_status st = RAGD_OK;
    if (add_special && t->tpl) {
        for (size_t k = 0; k < t->n_tpl && !st; k++) {
            const tok_tpl_item *it = &t->tpl[k];
            if (it->is_seq) st = tok_encode_body(t, ws, text, len, out, err);
            else
                for (size_t j = 0; j < it->n_ids; j++) ragd_tok_ids_push(out, it->ids[j]);
        }
    } else {
        st = tok_encode_body(t, ws, text, len, out, err);
    }
    tok_ws_release(ws);
    if (st) out->n = n0;
    return st;
}

ragd_status ragd_tokenizer_encode_batch(const ragd_tokenizer *t, size_t n, const char *const *texts,
                                        const size_t *lens, bool add_special, ragd_tok_ids *outs, ragd_err *err) {
    for (size_t i = 0; i < n; i++) {
        outs[i].n = 0;
        ragd_status st = ragd_tokenizer_encode(t, texts[i], lens[i], add_special, &outs[i], err);
        if (st) return ragd_err_prefix(err, "text %zu", i);
    }
    return RAGD_OK;
}
