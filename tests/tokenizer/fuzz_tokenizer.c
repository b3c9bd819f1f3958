/* fuzz_tokenizer.c — libFuzzer target: arbitrary bytes → encode with each test tokenizer (the real
 * Qwen3 one when RAGD_SHARED has it, and the committed smol/llama3/misc fixtures), with and without
 * special tokens. Checks: encode fails only on invalid UTF-8 (with EINVAL); decode of the ids succeeds,
 * is valid UTF-8 and equals streaming decode; decoding ids taken from the input bytes never fails for
 * in-range ids. No crash, no leak (ASan/UBSan/LSan via scripts/fuzz.sh). */
#include <stdio.h>
#include <stdlib.h>

#include "tokenizer/tokenizer.h"

#define N_TOK 4
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!size) return 0;
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
    ragd_tok_ids_free(&ids);
    ragd_err_free(&err);
    return 0;
}
