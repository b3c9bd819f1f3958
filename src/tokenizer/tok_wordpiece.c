/* tok_wordpiece.c — the WordPiece model on one pre-tokenized word, exactly as HF `tokenizers`
 * WordPiece::tokenize: a word of more than max_input_chars_per_word characters is the unknown token;
 * otherwise greedy longest-match-first from the left, pieces after the first looked up with the
 * continuing_subword_prefix ("##"); if some position has no match the whole word is ONE unknown token.
 *
 * The candidate key (prefix + rest of the word) is built once per position in the thread's
 * workspace and shortened character by character, so nothing is allocated once warm. Candidates
 * start no longer than the longest vocabulary string (nothing longer can match), so a huge
 * max_input_chars_per_word cannot make a long word quadratic in its length. Also holds the
 * model dispatch (tok_model_word).
 */
#include <stdlib.h>

#include "tokenizer/tok_internal.h"

static ragd_status push_unk(const ragd_tokenizer *t, ragd_tok_ids *out, ragd_err *err) {
    if (t->unk_id < 0) return ragd_err_set(err, RAGD_EFORMAT, "WordPiece: the unknown token is not in the vocabulary");
    ragd_tok_ids_push(out, t->unk_id);
    return RAGD_OK;
}

ragd_status tok_wordpiece_word(const ragd_tokenizer *t, tok_ws *ws, const uint8_t *w, size_t n, ragd_tok_ids *out,
                               ragd_err *err) {
    if (!n) return RAGD_OK;
    size_t chars = 0;
    for (size_t i = 0; i < n; i++) chars += (w[i] & 0xC0) != 0x80;
    if (chars > t->wp_max_chars) return push_unk(t, out, err);
    size_t n0 = out->n, start = 0;
    ragd_buf *key = &ws->wkey;
    while (start < n) {
        const char *k;
        size_t base;
        if (start == 0) { k = (const char *)w; base = 0; }
        else {
            ragd_buf_reset(key);
            ragd_buf_append(key, t->cont_prefix, t->cont_prefix_len);
            size_t rest = n - start;
            if (rest > t->wp_max_key) rest = t->wp_max_key;
            ragd_buf_append(key, w + start, rest);
            k = key->data;
            base = t->cont_prefix_len;
        }
        size_t end = n;
        if (t->wp_max_key < base + (end - start)) {
            end = t->wp_max_key > base ? start + (t->wp_max_key - base) : start;
            while (end > start && end < n && (w[end] & 0xC0) == 0x80) end--;
        }
        int32_t id = -1;
        while (end > start) {
            id = tok_hash_get(&t->key2id, k, base + end - start);
            if (id >= 0) break;
            end--;
            while (end > start && (w[end] & 0xC0) == 0x80) end--;
        }
        if (id < 0) {
            out->n = n0;
            return push_unk(t, out, err);
        }
        ragd_tok_ids_push(out, id);
        start = end;
    }
    return RAGD_OK;
}

ragd_status tok_model_word(const ragd_tokenizer *t, tok_ws *ws, const uint8_t *w, size_t n, ragd_tok_ids *out,
                           ragd_err *err) {
    switch (t->model) {
    case TOK_MODEL_WORDPIECE: return tok_wordpiece_word(t, ws, w, n, out, err);
    case TOK_MODEL_UNIGRAM: return tok_unigram_word(t, ws, w, n, out, err);
    case TOK_MODEL_BPE: break;
    }
    return tok_bpe_word(t, ws, w, n, out, err);
}
