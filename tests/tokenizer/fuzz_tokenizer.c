/* fuzz_tokenizer.c — libFuzzer target: arbitrary bytes → encode with each test tokenizer (the real
 * Qwen3 one and the vocab.txt-only BERT folder of bge-small when RAGD_SHARED has them, and the committed
 * smol/llama3/misc/bpe_meta BPE, wp_misc/wp_minilm2 WordPiece and uni_spm/uni_bf/uni_nosplit Unigram fixtures),
 * with and without special tokens. Checks: encode fails only on invalid UTF-8 (with EINVAL); decode of
 * the ids succeeds, is valid UTF-8 and equals streaming decode; decoding ids taken from the input bytes
 * never fails for in-range ids; the same bytes cut in two as a pair (ragd_tokenizer_encode_pair, with a
 * truncation chosen by the input) give as many type ids as ids and respect max_length.
 * A first byte of 0xFF instead makes the rest a Precompiled charsmap blob (hostile double array): it
 * either fails to parse or normalizes text (and itself) into valid UTF-8.
 * No crash, no leak (ASan/UBSan/LSan via scripts/fuzz.sh). */
#include <stdio.h>
#include <stdlib.h>

#include "tokenizer/tok_internal.h"

#define N_TOK 12
static ragd_tokenizer *toks[N_TOK];
static int n_toks;

static void load(const char *path) {
    ragd_err err = {0};
    ragd_tokenizer *t = NULL;
    if (ragd_tokenizer_load_json(path, &t, &err) == RAGD_OK) toks[n_toks++] = t;
    else fprintf(stderr, "fuzz_tokenizer: skipping %s: %s\n", path, ragd_err_msg(&err));
    ragd_err_free(&err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    const char *shared = getenv("RAGD_SHARED");
    if (shared) {
        char *p = ragd_path_join(shared, "models/qwen3-tokenizer/tokenizer.json");
        if (ragd_file_exists(p)) load(p);
        free(p);
    }
    load(RAGD_TOK_FIXTURES "/smol/tokenizer.json");
    load(RAGD_TOK_FIXTURES "/llama3/tokenizer.json");
    load(RAGD_TOK_FIXTURES "/misc/tokenizer.json");
    load(RAGD_TOK_FIXTURES "/wp_misc/tokenizer.json");
    load(RAGD_TOK_FIXTURES "/wp_minilm2/tokenizer.json");
    load(RAGD_TOK_FIXTURES "/uni_spm/tokenizer.json");
    load(RAGD_TOK_FIXTURES "/uni_bf/tokenizer.json");
    load(RAGD_TOK_FIXTURES "/uni_nosplit/tokenizer.json");
    load(RAGD_TOK_FIXTURES "/bpe_meta/tokenizer.json");
    if (shared) {
        char *p = ragd_path_join(shared, "models/bge-small-en-v1.5");
        ragd_err err = {0};
        ragd_tokenizer *t = NULL;
        if (ragd_tokenizer_load_bert_vocab(p, &t, &err) == RAGD_OK) toks[n_toks++] = t;
        else fprintf(stderr, "fuzz_tokenizer: skipping %s: %s\n", p, ragd_err_msg(&err));
        ragd_err_free(&err);
        free(p);
    }
    if (!n_toks) RAGD_DIE("no tokenizer loaded");
    return 0;
}

static void check_decode(const ragd_tokenizer *t, const int32_t *ids, size_t n, bool skip) {
    ragd_buf a = {0}, b = {0};
    ragd_err err = {0};
    if (ragd_tokenizer_decode(t, ids, n, skip, &a, &err) != RAGD_OK) RAGD_DIE("decode failed: %s", ragd_err_msg(&err));
    if (!ragd_utf8_valid(a.data ? a.data : "", a.len, NULL)) RAGD_DIE("decode produced invalid UTF-8");
    ragd_tok_stream s = {0};
    for (size_t i = 0; i < n; i++)
        if (ragd_tok_stream_push(t, &s, ids[i], skip, &b, &err) != RAGD_OK) RAGD_DIE("stream push failed");
    ragd_tok_stream_flush(t, &s, &b);
    if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len))) RAGD_DIE("stream decode != decode");
    ragd_buf_free(&a);
    ragd_buf_free(&b);
    ragd_err_free(&err);
}

static void fuzz_charsmap(const uint8_t *data, size_t size) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    ragd_buf b64 = {0};
    for (size_t i = 0; i < size; i += 3) {
        uint32_t x = (uint32_t)data[i] << 16 | (i + 1 < size ? (uint32_t)data[i + 1] << 8 : 0) |
                     (i + 2 < size ? data[i + 2] : 0);
        ragd_buf_putc(&b64, tab[x >> 18]);
        ragd_buf_putc(&b64, tab[(x >> 12) & 63]);
        ragd_buf_putc(&b64, i + 1 < size ? tab[(x >> 6) & 63] : '=');
        ragd_buf_putc(&b64, i + 2 < size ? tab[x & 63] : '=');
    }
    tok_charsmap *m = NULL;
    ragd_err err = {0};
    if (tok_charsmap_parse(b64.data ? b64.data : "", b64.len, &m, &err) == RAGD_OK) {
        static const char text[] = "Hello \xef\xac\x81 \xe2\x85\xab e\xcc\x81 \x01 \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd";
        ragd_buf out = {0};
        tok_charsmap_apply(m, (const uint8_t *)text, sizeof text - 1, &out);
        if (!ragd_utf8_valid(out.data ? out.data : "", out.len, NULL)) RAGD_DIE("charsmap produced invalid UTF-8");
        if (ragd_utf8_valid((const char *)data, size, NULL)) {
            ragd_buf_reset(&out);
            tok_charsmap_apply(m, data, size, &out);
            if (!ragd_utf8_valid(out.data ? out.data : "", out.len, NULL)) RAGD_DIE("charsmap produced invalid UTF-8");
        }
        ragd_buf_free(&out);
        tok_charsmap_free(m);
    }
    ragd_buf_free(&b64);
    ragd_err_free(&err);
}

static void fuzz_pair(const ragd_tokenizer *t, const uint8_t *data, size_t size) {
    if (size < 2) return;
    size_t cut = data[0] % size;
    ragd_tok_trunc tr = {.strategy = (ragd_tok_trunc_strategy)(data[1] % 4), .max_length = data[1] >> 2,
                         .left = data[0] & 1};
    ragd_tok_ids ids = {0}, types = {0};
    ragd_err err = {0};
    const char *a = (const char *)data + 2, *b = (const char *)data + 2 + (cut > 2 ? cut - 2 : 0);
    size_t alen = (size_t)(b - a), blen = size - 2 - alen;
    bool single = data[0] & 2;
    bool valid = ragd_utf8_valid(a, alen, NULL) && (single || ragd_utf8_valid(b, blen, NULL));
    ragd_status st = ragd_tokenizer_encode_pair(t, a, alen, single ? NULL : b, single ? 0 : blen, data[1] & 1, &tr,
                                                &ids, &types, &err);
    if (!valid && st != RAGD_EINVAL) RAGD_DIE("encode_pair accepted invalid UTF-8");
    if (st == RAGD_OK) {
        if (ids.n != types.n) RAGD_DIE("encode_pair: %zu ids but %zu type ids", ids.n, types.n);
        if (tr.strategy != RAGD_TOK_TRUNC_NONE && ids.n > tr.max_length && tr.max_length)
            RAGD_DIE("encode_pair: %zu ids over max_length %zu", ids.n, tr.max_length);
        check_decode(t, ids.ids, ids.n, true);
    } else if (valid && st != RAGD_EINVAL && st != RAGD_EUNSUPPORTED) {
        RAGD_DIE("encode_pair failed on valid UTF-8: %s", ragd_err_msg(&err));
    }
    ragd_tok_ids_free(&ids);
    ragd_tok_ids_free(&types);
    ragd_err_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!size) return 0;
    if (data[0] == 0xFF) { fuzz_charsmap(data + 1, size - 1); return 0; }
    const ragd_tokenizer *t = toks[data[0] % n_toks];
    bool special = data[0] & 0x80;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    ragd_tok_ids ids = {0};
    ragd_err err = {0};
    ragd_status st = ragd_tokenizer_encode(t, text, len, special, &ids, &err);
    bool valid = ragd_utf8_valid(text, len, NULL);
    if (valid && st != RAGD_OK) RAGD_DIE("encode failed on valid UTF-8: %s", ragd_err_msg(&err));
    if (!valid && st != RAGD_EINVAL) RAGD_DIE("encode accepted invalid UTF-8");
    if (st == RAGD_OK) {
        check_decode(t, ids.ids, ids.n, false);
        check_decode(t, ids.ids, ids.n, true);
    }
    /* ids straight from the input bytes */
    ids.n = 0;
    size_t vs = ragd_tokenizer_vocab_size(t);
    for (size_t i = 0; i + 2 <= len; i += 2) {
        int32_t id = (int32_t)(((uint8_t)text[i] << 8 | (uint8_t)text[i + 1]) % vs);
        if (ragd_tokenizer_id_to_token(t, id)) ragd_tok_ids_push(&ids, id);
    }
    check_decode(t, ids.ids, ids.n, data[0] & 1);
    fuzz_pair(t, (const uint8_t *)text, len);
    ragd_tok_ids_free(&ids);
    ragd_err_free(&err);
    return 0;
}
