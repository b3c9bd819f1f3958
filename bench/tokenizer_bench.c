/* tokenizer_bench.c — single-thread encode throughput of ragd's tokenizer (a benchmark, not a test).
 *
 * usage: tok_bench TOKENIZER_JSON|VOCAB_DIR CASES_JSONL [PASSES=50] [--big] [--threads N]
 *   (a folder is loaded as a vocab.txt BERT tokenizer)
 *   Encodes every "text" of CASES_JSONL one at a time, PASSES times over (the public corpus ×50), and
 *   prints one JSON line: tokens, seconds, tokens/s (first pass reported apart: its word cache is cold).
 *   --big also times the 1 MB pathological inputs (same generators as tests/tokenizer/cases).
 *   --threads N runs N threads on the one shared tokenizer (each does all passes) for scaling.
 *   --pair encodes (text i, text i+1) pairs with special tokens, longest_first truncation to 512
 *   (a cross-encoder's input) through ragd_tokenizer_encode_pair.
 * Driven by bench/tokenizer_bench.py, which runs HF tokenizers side by side.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <jansson.h>

#include "tokenizer/tokenizer.h"

typedef struct job {
    const ragd_tokenizer *t;
    json_t *texts;
    int passes;
    size_t tokens;
    bool pair;
} job;

/* --pair: (text i, text i+1) as a cross-encoder query/document, special tokens, longest_first 512 */
static void pair_pass(job *j, ragd_tok_ids *ids, ragd_tok_ids *types) {
    ragd_tok_trunc tr = {.strategy = RAGD_TOK_TRUNC_LONGEST_FIRST, .max_length = 512};
    size_t n = json_array_size(j->texts);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(j->texts, i), *b = json_array_get(j->texts, (i + 1) % n);
        if (ragd_tokenizer_encode_pair(j->t, json_string_value(a), json_string_length(a), json_string_value(b),
                                       json_string_length(b), true, &tr, ids, types, NULL))
            RAGD_DIE("encode_pair failed");
        j->tokens += ids->n;
    }
}

static void *worker(void *p) {
    job *j = p;
    ragd_tok_ids ids = {0};
    if (j->pair) {
        ragd_tok_ids types = {0};
        for (int r = 0; r < j->passes; r++) pair_pass(j, &ids, &types);
        ragd_tok_ids_free(&types);
        ragd_tok_ids_free(&ids);
        return NULL;
    }
    for (int r = 0; r < j->passes; r++) {
        size_t i;
        json_t *x;
        json_array_foreach(j->texts, i, x) {
            ids.n = 0;
            if (ragd_tokenizer_encode(j->t, json_string_value(x), json_string_length(x), false, &ids, NULL))
                RAGD_DIE("encode failed");
            j->tokens += ids.n;
        }
    }
    ragd_tok_ids_free(&ids);
    return NULL;
}

static void big(const ragd_tokenizer *t, const char *name, const char *unit, size_t count) {
    ragd_buf b = {0};
    for (size_t i = 0; i < count; i++) ragd_buf_puts(&b, unit);
    ragd_tok_ids ids = {0};
    double t0 = ragd_now_s();
    if (ragd_tokenizer_encode(t, b.data, b.len, false, &ids, NULL)) RAGD_DIE("encode failed");
    double dt = ragd_now_s() - t0;
    printf("{\"big\": \"%s\", \"bytes\": %zu, \"tokens\": %zu, \"seconds\": %.4f}\n", name, b.len, ids.n, dt);
    ragd_tok_ids_free(&ids);
    ragd_buf_free(&b);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s TOKENIZER_JSON CASES_JSONL [PASSES] [--big] [--threads N]\n", argv[0]); return 2; }
    int passes = 50, threads = 0;
    bool do_big = false, pair = false;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--big")) do_big = true;
        else if (!strcmp(argv[i], "--pair")) pair = true;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else passes = atoi(argv[i]);
    }
    ragd_err err = {0};
    ragd_tokenizer *t = NULL;
    double t0 = ragd_now_s();
    struct stat sb;
    bool dir = stat(argv[1], &sb) == 0 && S_ISDIR(sb.st_mode);
    if (dir ? ragd_tokenizer_load_bert_vocab(argv[1], &t, &err) : ragd_tokenizer_load_json(argv[1], &t, &err)) {
        fprintf(stderr, "%s\n", ragd_err_msg(&err));
        return 1;
    }
    double load_s = ragd_now_s() - t0;
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 1; }
    json_t *texts = json_array();
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, JSON_ALLOW_NUL, NULL);
        json_t *x = json_object_get(o, "text");
        if (json_is_string(x)) json_array_append(texts, x);
        json_decref(o);
    }
    free(line);
    fclose(f);

    job cold = {t, texts, 1, 0, pair};
    t0 = ragd_now_s();
    worker(&cold);
    double cold_s = ragd_now_s() - t0;
    job warm = {t, texts, passes, 0, pair};
    t0 = ragd_now_s();
    worker(&warm);
    double s = ragd_now_s() - t0;
    printf("{\"load_s\": %.3f, \"texts\": %zu, \"passes\": %d, \"tokens\": %zu, \"seconds\": %.4f, "
           "\"tok_per_s\": %.0f, \"first_pass_tok_per_s\": %.0f}\n",
           load_s, json_array_size(texts), passes, warm.tokens, s, warm.tokens / s, cold.tokens / cold_s);
    if (threads > 1) {
        pthread_t th[64];
        job jobs[64];
        if (threads > 64) threads = 64;
        t0 = ragd_now_s();
        for (int k = 0; k < threads; k++) {
            jobs[k] = (job){t, texts, passes, 0, pair};
            pthread_create(&th[k], NULL, worker, &jobs[k]);
        }
        size_t total = 0;
        for (int k = 0; k < threads; k++) { pthread_join(th[k], NULL); total += jobs[k].tokens; }
        double ts = ragd_now_s() - t0;
        printf("{\"threads\": %d, \"tokens\": %zu, \"seconds\": %.4f, \"tok_per_s\": %.0f}\n", threads, total, ts,
               total / ts);
    }
    if (do_big) {
        big(t, "a x 1M", "a", 1000000);
        big(t, "space x 1M", " ", 1000000);
        big(t, "newline x 1M", "\n", 1000000);
        big(t, "abcdefghij x 100k (no spaces)", "abcdefghij", 100000);
        big(t, "digits x 100k", "1234567890", 100000);
        big(t, "! x 1M", "!", 1000000);
        big(t, "CJK x 333k chars (no spaces)", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", 111111);
        big(t, "words with spaces", "the quick brown fox jumps over the lazy dog ", 22728);
    }
    json_decref(texts);
    ragd_tokenizer_free(t);
    return 0;
}
