/* tok_decode.c — decode ids to text, whole or streamed.
 *
 * Each id's decoder output is precomputed at load (t->dec_off/dec_len): for the ByteLevel decoder the
 * bytes its characters stand for (a token with a character outside the byte alphabet yields its raw
 * UTF-8, as HF does); with no decoder the token string itself, tokens joined by single spaces (HF's
 * default). The concatenated bytes become text with String::from_utf8_lossy semantics.
 *
 * Streaming keeps at most 3 bytes of an incomplete UTF-8 sequence in ragd_tok_stream.pending; the
 * concatenation of everything pushed plus the flush equals the whole decode.
 */
#include <stdlib.h>

#include "tokenizer/tok_internal.h"

static ragd_status check_id(const ragd_tokenizer *t, int32_t id, ragd_err *err) {
    if (id < 0 || (size_t)id >= t->n_ids || !(t->flags[id] & TOK_F_PRESENT))
        return ragd_err_set(err, RAGD_ERANGE, "token id %d is not in the vocabulary (size %zu)", id, t->n_ids);
    return RAGD_OK;
}

static inline bool skipped(const ragd_tokenizer *t, int32_t id, bool skip_special) {
    return skip_special && (t->flags[id] & TOK_F_SPECIAL);
}

ragd_status ragd_tokenizer_decode(const ragd_tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                                  ragd_buf *out, ragd_err *err) {
    for (size_t i = 0; i < n; i++) {
        ragd_status st = check_id(t, ids[i], err);
        if (st) return ragd_err_prefix(err, "ids[%zu]", i);
    }
    size_t start = out->len;
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (skipped(t, id, skip_special)) continue;
        if (t->decoder == TOK_DEC_NONE && !first) ragd_buf_putc(out, ' ');
        if (first) ragd_buf_append(out, t->strs.data + t->dec0_off[id], t->dec0_len[id]);
        else ragd_buf_append(out, t->strs.data + t->dec_off[id], t->dec_len[id]);
        first = false;
    }
    ragd_buf_reserve(out, 0);
    if (ragd_utf8_valid(out->data + start, out->len - start, NULL)) return RAGD_OK;
    /* rare: redo the tail lossily */
    size_t raw_len = out->len - start;
    uint8_t *raw = malloc(raw_len ? raw_len : 1);
    if (!raw) return ragd_err_set(err, RAGD_ENOMEM, "decode: out of memory");
    memcpy(raw, out->data + start, raw_len);
    out->len = start;
    tok_utf8_lossy(out, raw, raw_len, NULL);
    free(raw);
    return RAGD_OK;
}

static void stream_feed(ragd_tok_stream *s, const uint8_t *b, size_t n, ragd_buf *out) {
    static const char fffd[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    size_t i = 0;
    while (s->n_pending && i < n) {
        s->pending[s->n_pending++] = b[i++];
        int k = tok_utf8_seq(s->pending, s->n_pending);
        if (k > 0) {
            ragd_buf_append(out, s->pending, s->n_pending);
            s->n_pending = 0;
        } else if (k < 0) {
            /* the byte just added broke the sequence: the held bytes are one invalid subpart and
             * the new byte starts over */
            ragd_buf_append(out, fffd, 3);
            s->n_pending = 0;
            i--;
        }
    }
    if (i < n) {
        size_t hold;
        tok_utf8_lossy(out, b + i, n - i, &hold);
        memcpy(s->pending, b + n - hold, hold);
        s->n_pending = hold;
    }
}

ragd_status ragd_tok_stream_push(const ragd_tokenizer *t, ragd_tok_stream *s, int32_t id, bool skip_special,
                                 ragd_buf *out, ragd_err *err) {
    ragd_status st = check_id(t, id, err);
    if (st) return st;
    if (skipped(t, id, skip_special)) return RAGD_OK;
    if (t->decoder == TOK_DEC_NONE && s->started) stream_feed(s, (const uint8_t *)" ", 1, out);
    if (s->started) stream_feed(s, (const uint8_t *)t->strs.data + t->dec_off[id], t->dec_len[id], out);
    else stream_feed(s, (const uint8_t *)t->strs.data + t->dec0_off[id], t->dec0_len[id], out);
    s->started = true;
    return RAGD_OK;
}

void ragd_tok_stream_flush(const ragd_tokenizer *t, ragd_tok_stream *s, ragd_buf *out) {
    (void)t;
    if (s->n_pending) tok_utf8_lossy(out, s->pending, s->n_pending, NULL);
    s->n_pending = 0;
}

const char *ragd_tokenizer_token_bytes(const ragd_tokenizer *t, int32_t id, size_t *len) {
    *len = 0;
    if (id < 0 || (size_t)id >= t->n_ids || !(t->flags[id] & TOK_F_PRESENT)) return NULL;
    *len = t->dec_len[id];
    return t->strs.data + t->dec_off[id];
}

bool ragd_tokenizer_bytes_concat(const ragd_tokenizer *t) { return t->decoder == TOK_DEC_BYTELEVEL; }
