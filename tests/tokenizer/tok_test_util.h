/* tok_test_util.h — helpers shared by the tokenizer tests: reading JSON-lines cases, comparing id
 * arrays, rebuilding a tokenizer from GGUF-style parts. Header-only (each test is one executable). */
#ifndef RAGD_TOK_TEST_UTIL_H
#define RAGD_TOK_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "test.h"
#include "tokenizer/tokenizer.h"

/* Path under $RAGD_SHARED (or ../shared). Caller frees. */
static inline char *shared_path(const char *rel) {
    const char *root = getenv("RAGD_SHARED");
    if (!root) root = "../shared";
    return ragd_path_join(root, rel);
}

static inline char *src_path(const char *rel) {
    const char *root = getenv("RAGD_SRC");
    if (!root) root = ".";
    return ragd_path_join(root, rel);
}

/* Loads every line of a JSON-lines file; returns a JSON array (caller decrefs) or NULL. */
static inline json_t *load_jsonl(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); return NULL; }
    json_t *arr = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (n == 1 && line[0] == '\n') continue;
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, &je);
        if (!o) { fprintf(stderr, "%s:%d: %s\n", path, lineno, je.text); json_decref(arr); arr = NULL; break; }
        json_array_append_new(arr, o);
    }
    free(line);
    fclose(f);
    return arr;
}

/* ids of a JSON array into v (reset first) */
static inline void json_ids(json_t *a, ragd_tok_ids *v) {
    v->n = 0;
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) ragd_tok_ids_push(v, (int32_t)json_integer_value(x));
}

static inline bool ids_equal(const ragd_tok_ids *a, const ragd_tok_ids *b) {
    return a->n == b->n && (a->n == 0 || !memcmp(a->ids, b->ids, a->n * sizeof(int32_t)));
}

static inline void print_ids_diff(const char *what, const ragd_tok_ids *got, const ragd_tok_ids *want) {
    size_t k = 0;
    while (k < got->n && k < want->n && got->ids[k] == want->ids[k]) k++;
    fprintf(stderr, "  %s: got %zu ids, want %zu; first difference at %zu (got %d, want %d)\n", what, got->n,
            want->n, k, k < got->n ? got->ids[k] : -1, k < want->n ? want->ids[k] : -1);
}

/* FNV-1a 64 over the ids as little-endian int32 (tools/tok_make_refs.py computes the same). */
static inline uint64_t ids_hash(const ragd_tok_ids *v) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < v->n; i++) {
        uint32_t x = (uint32_t)v->ids[i];
        for (int b = 0; b < 4; b++) { h ^= (x >> (8 * b)) & 0xff; h *= 0x100000001b3ull; }
    }
    return h;
}

/* The tokenizer rebuilt from GGUF-style parts (as a GGUF file carries them): tokens by id from the
 * loaded tokenizer.json `ref`, added tokens as control (special) or user-defined, the merges of the
 * file at `path`, the given pre-tokenizer name and special ids. NULL (message printed) on failure. */
static inline ragd_tokenizer *tok_load_as_gguf(const char *path, const ragd_tokenizer *ref, const char *pre,
                                               int32_t bos, int32_t eos, int32_t pad, bool add_bos) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    RAGD_ASSERT(root);
    json_t *merges = json_object_get(json_object_get(root, "model"), "merges");
    size_t n = ragd_tokenizer_vocab_size(ref), nm = json_array_size(merges);
    const char **toks = calloc(n, sizeof *toks);
    size_t *lens = calloc(n, sizeof *lens);
    int32_t *types = calloc(n, sizeof *types);
    char **ms = calloc(nm + 1, sizeof *ms);
    size_t *ml = calloc(nm + 1, sizeof *ml);
    for (size_t i = 0; i < n; i++) {
        toks[i] = ragd_tokenizer_id_to_token(ref, (int32_t)i);
        lens[i] = strlen(toks[i]);
        types[i] = 1;
    }
    size_t k;
    json_t *a, *m;
    json_array_foreach(json_object_get(root, "added_tokens"), k, a)
        types[json_integer_value(json_object_get(a, "id"))] = json_is_true(json_object_get(a, "special")) ? 3 : 4;
    json_array_foreach(merges, k, m) {
        const char *x = json_string_value(json_array_get(m, 0)), *y = json_string_value(json_array_get(m, 1));
        ml[k] = strlen(x) + 1 + strlen(y);
        ms[k] = malloc(ml[k] + 1);
        sprintf(ms[k], "%s %s", x, y);
    }
    ragd_tokenizer_gguf_parts p = {.model = "gpt2", .pre = pre, .n_tokens = n, .tokens = toks,
                                   .token_lens = lens, .token_types = types, .n_merges = nm,
                                   .merges = (const char *const *)ms, .merge_lens = ml,
                                   .bos_id = bos, .eos_id = eos, .pad_id = pad, .add_bos = add_bos};
    ragd_tokenizer *t = NULL;
    ragd_err err = {0};
    if (ragd_tokenizer_load_gguf_parts(&p, &t, &err)) fprintf(stderr, "gguf parts: %s\n", ragd_err_msg(&err));
    ragd_err_free(&err);
    for (size_t i = 0; i < nm; i++) free(ms[i]);
    free(ms);
    free(ml);
    free(toks);
    free(lens);
    free(types);
    json_decref(root);
    return t;
}

#endif
