/* tok_pair.c — pair encoding with token type ids and truncation, as HF `tokenizers`
 * Tokenizer::encode(a, b) → post_process: truncate_encodings (utils/truncation.rs, stride 0) with
 * max_length less the post-processor's special tokens when add_special, then the template.
 *
 * Templates: t->tpl (single) and t->tpl_pair. A pair template missing while t->tpl exists is derived
 * as transformers' update_post_processor writes it (`bos A eos bos B:1 eos:1`: the single items again
 * with type 1); no post-processor at all is HF's default (A type 0, B type 1, no special tokens).
 * Without add_special only the sequence items remain, with the template's type ids (so RoBERTa's
 * pair is all zeros and BERT's 0…0 1…1, as HF gives).
 */
#include <stdlib.h>

#include "tokenizer/tok_internal.h"

static const tok_tpl_item DEFAULT_SINGLE[] = {{.is_seq = true, .seq = 0, .type_id = 0}};
static const tok_tpl_item DEFAULT_PAIR[] = {{.is_seq = true, .seq = 0, .type_id = 0},
                                            {.is_seq = true, .seq = 1, .type_id = 1}};

typedef struct tpl_view {
    const tok_tpl_item *items;
    size_t n;
    int passes; /* 2: derived pair (items once as A/type 0, again as B/type 1) */
} tpl_view;

static ragd_status get_tpl(const ragd_tokenizer *t, bool pair, tpl_view *v, ragd_err *err) {
    v->passes = 1;
    if (!pair) {
        if (t->tpl) { v->items = t->tpl; v->n = t->n_tpl; }
        else { v->items = DEFAULT_SINGLE; v->n = 1; }
        return RAGD_OK;
    }
    if (t->pair_unsupported)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "the post-processor has no pair template: pairs are not supported");
    if (t->tpl_pair) { v->items = t->tpl_pair; v->n = t->n_tpl_pair; }
    else if (t->tpl) { v->items = t->tpl; v->n = t->n_tpl; v->passes = 2; }
    else { v->items = DEFAULT_PAIR; v->n = 2; }
    return RAGD_OK;
}

static size_t tpl_specials(const tpl_view *v) {
    size_t k = 0;
    for (size_t i = 0; i < v->n; i++)
        if (!v->items[i].is_seq) k += v->items[i].n_ids;
    return k * (size_t)v->passes;
}

static void cut(ragd_tok_ids *v, size_t n, bool left) {
    if (v->n <= n) return;
    if (left) memmove(v->ids, v->ids + (v->n - n), n * sizeof *v->ids);
    v->n = n;
}

/* HF truncate_encodings with stride 0; b may be NULL. */
static ragd_status truncate(const ragd_tok_trunc *tr, size_t max, ragd_tok_ids *a, ragd_tok_ids *b, ragd_err *err) {
    if (max == 0) {
        a->n = 0;
        if (b) b->n = 0;
        return RAGD_OK;
    }
    size_t total = a->n + (b ? b->n : 0);
    if (total <= max) return RAGD_OK;
    size_t to_remove = total - max;
    if (tr->strategy == RAGD_TOK_TRUNC_LONGEST_FIRST) {
        if (!b) { cut(a, total - to_remove, tr->left); return RAGD_OK; }
        size_t n1 = a->n, n2 = b->n;
        bool swap = n1 > n2;
        if (swap) { size_t x = n1; n1 = n2; n2 = x; }
        if (n1 > max) n2 = n1;
        else n2 = n1 > max - n1 ? n1 : max - n1;
        if (n1 + n2 > max) {
            n1 = max / 2;
            n2 = n1 + max % 2;
        }
        if (swap) { size_t x = n1; n1 = n2; n2 = x; }
        cut(a, n1, tr->left);
        cut(b, n2, tr->left);
        return RAGD_OK;
    }
    ragd_tok_ids *target = tr->strategy == RAGD_TOK_TRUNC_ONLY_FIRST ? a : b;
    if (!target) return ragd_err_set(err, RAGD_EINVAL, "truncation only_second: no second sequence");
    if (target->n <= to_remove)
        return ragd_err_set(err, RAGD_EINVAL,
                            "truncation %s: the sequence to truncate (%zu tokens) is too short to fit max_length %zu",
                            tr->strategy == RAGD_TOK_TRUNC_ONLY_FIRST ? "only_first" : "only_second", target->n, max);
    cut(target, target->n - to_remove, tr->left);
    return RAGD_OK;
}

static void push_run(ragd_tok_ids *ids, ragd_tok_ids *types, const int32_t *v, size_t n, int32_t type) {
    for (size_t i = 0; i < n; i++) {
        ragd_tok_ids_push(ids, v[i]);
        if (types) ragd_tok_ids_push(types, type);
    }
}

ragd_status ragd_tokenizer_encode_pair(const ragd_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen,
                                       bool add_special, const ragd_tok_trunc *trunc, ragd_tok_ids *ids,
                                       ragd_tok_ids *type_ids, ragd_err *err) {
    ids->n = 0;
    if (type_ids) type_ids->n = 0;
    size_t bad;
    if ((alen && !a) || (b == NULL && blen)) return ragd_err_set(err, RAGD_EINVAL, "encode_pair: NULL text");
    if (!ragd_utf8_valid(a, alen, &bad))
        return ragd_err_set(err, RAGD_EINVAL, "first text is not valid UTF-8 (byte offset %zu)", bad);
    if (b && !ragd_utf8_valid(b, blen, &bad))
        return ragd_err_set(err, RAGD_EINVAL, "second text is not valid UTF-8 (byte offset %zu)", bad);
    tpl_view v = {0};
    ragd_status st = get_tpl(t, b != NULL, &v, err);
    if (st) return st;
    tok_ws *ws = tok_ws_get(t);
    ragd_tok_ids *sa = &ws->pair_a, *sb = &ws->pair_b;
    sa->n = sb->n = 0;
    st = tok_encode_body(t, ws, a, alen, sa, err);
    if (!st && b) st = tok_encode_body(t, ws, b, blen, sb, err);
    if (!st && trunc && trunc->strategy != RAGD_TOK_TRUNC_NONE) {
        size_t max = trunc->max_length, added = add_special ? tpl_specials(&v) : 0;
        if (added && max < added)
            st = ragd_err_set(err, RAGD_EINVAL, "truncation max_length %zu is smaller than the %zu special tokens", max,
                              added);
        else st = truncate(trunc, max - added, sa, b ? sb : NULL, err);
    }
    if (!st) {
        for (int pass = 0; pass < v.passes; pass++)
            for (size_t i = 0; i < v.n; i++) {
                const tok_tpl_item *it = &v.items[i];
                int32_t type = v.passes == 2 ? pass : it->type_id;
                if (it->is_seq) {
                    const ragd_tok_ids *src = (v.passes == 2 ? pass : it->seq) ? sb : sa;
                    push_run(ids, type_ids, src->ids, src->n, type);
                } else if (add_special) {
                    push_run(ids, type_ids, it->ids, it->n_ids, type);
                }
            }
    }
    tok_ws_release(ws);
    if (st) { ids->n = 0; if (type_ids) type_ids->n = 0; }
    return st;
}
