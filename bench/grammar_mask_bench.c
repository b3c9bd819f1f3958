/* grammar_mask_bench.c — the CPU cost of structured-output token masks per generation step, over the
 * real Qwen3 vocabulary (151,669 tokens), at 1 / 16 / 64 streams.
 *
 * Each stream is a request with its own compiled grammar (the same schema: what a server sees from one
 * client) doing a random walk: a uniformly random allowed token for its first 24 tokens, then the
 * closing token when allowed (EOS, '"', '}', ']'), else a random allowed one; a finished stream starts
 * again. Every step computes every stream's mask three ways and times each:
 *   direct   ragd_gmask per stream on one thread (what the scheduler did before the cache);
 *   cache/1  ragd_gmask_cache (state → mask, LRU) with one thread;
 *   cache/T  the same with T threads for a step's misses;
 * and checks that the three give the same bits. The walks are the same in every mode.
 *
 * usage: grammar_mask_bench [tokenizer.json] [steps] [threads]
 *   default ../shared/models/qwen3-tokenizer/tokenizer.json, 300 steps, threads = cores / 2 (≥ 2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "grammar/grammar.h"
#include "tokenizer/tokenizer.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static const char *SCHEMAS[] = {
    /* a RAG answer with citations */
    "{\"type\":\"object\",\"properties\":{\"answer\":{\"type\":\"string\",\"maxLength\":200},"
    "\"confidence\":{\"type\":\"number\"},\"citations\":{\"type\":\"array\",\"maxItems\":4,\"items\":{\"type\":\"object\","
    "\"properties\":{\"doc\":{\"type\":\"integer\"},\"quote\":{\"type\":\"string\",\"maxLength\":80}},"
    "\"required\":[\"doc\",\"quote\"],\"additionalProperties\":false}}},\"required\":[\"answer\",\"citations\"],"
    "\"additionalProperties\":false}",
    NULL, /* json_object */
};

typedef struct stream {
    ragd_grammar *g;
    ragd_gmatch m;
    uint64_t rng;
    int n;
} stream;

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "../shared/models/qwen3-tokenizer/tokenizer.json";
    int steps = argc > 2 ? atoi(argv[2]) : 300;
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    int T = argc > 3 ? atoi(argv[3]) : (nc / 2 >= 2 ? (int)(nc / 2 < 8 ? nc / 2 : 8) : 2);
    ragd_err err = {0};
    ragd_tokenizer *tok;
    if (ragd_tokenizer_load_json(path, &tok, &err)) {
        fprintf(stderr, "%s: %s\n", path, ragd_err_msg(&err));
        return 1;
    }
    int32_t eos[2];
    int n_eos = 0;
    const char *names[] = {"<|im_end|>", "<|endoftext|>"};
    for (int k = 0; k < 2; k++) {
        int32_t id = ragd_tokenizer_token_to_id(tok, names[k]);
        if (id >= 0) eos[n_eos++] = id;
    }
    ragd_vocab_trie *t;
    double t0 = now_s();
    if (ragd_vocab_trie_from_tokenizer(tok, eos, n_eos, &t, &err)) {
        fprintf(stderr, "trie: %s\n", ragd_err_msg(&err));
        return 1;
    }
    printf("vocabulary %d tokens, trie built in %.0f ms; %d steps per configuration; cache/T: T = %d (of %ld cores)\n",
           ragd_vocab_trie_n_vocab(t), (now_s() - t0) * 1e3, steps, T, nc);
    const int W = ragd_vocab_trie_mask_words(t), V = ragd_vocab_trie_n_vocab(t);
    int32_t closers[4] = {-1, -1, -1, -1};
    const char *cl = "\"}]";
    for (int i = 0; i < V; i++) {
        int len;
        const char *b = ragd_vocab_trie_token(t, i, &len);
        for (int k = 0; k < 3; k++)
            if (b && len == 1 && b[0] == cl[k] && closers[k + 1] < 0) closers[k + 1] = i;
    }
    closers[0] = eos[0];
    ragd_gmask_ws *ws = ragd_gmask_ws_create(t);
    uint32_t *direct = malloc((size_t)W * 4 * 64), *allowed = malloc((size_t)V * 4);
    int fails = 0;
    printf("%-12s %7s | %12s %12s | %12s %8s | %12s %8s\n", "schema", "streams", "direct ms/st", "us/mask",
           "cache/1 ms/st", "hit %", "cache/T ms/st", "hit %");
    for (int si = 0; si < 2; si++) {
        static const int NS[] = {1, 16, 64};
        for (int ni = 0; ni < 3; ni++) {
            int n = NS[ni];
            double tm[3] = {0, 0, 0};
            ragd_gmask_cache_stats cst[2];
            for (int mode = 0; mode < 3; mode++) {
                ragd_gmask_cache *c = mode ? ragd_gmask_cache_create(t, 8 * 64, mode == 1 ? 1 : T) : NULL;
                stream *S = calloc((size_t)n, sizeof *S);
                for (int k = 0; k < n; k++) {
                    if (SCHEMAS[si]) {
                        json_t *js = json_loads(SCHEMAS[si], 0, NULL);
                        ragd_grammar_compile_schema(js, &S[k].g, &err);
                        json_decref(js);
                    } else ragd_grammar_json_object(&S[k].g, &err);
                    ragd_gmatch_init(S[k].g, &S[k].m);
                    S[k].rng = 0x9E3779B97F4A7C15ull * (uint64_t)(k + 1);
                }
                for (int st = 0; st < steps; st++) {
                    double a = now_s();
                    int ent[64];
                    if (mode == 0) {
                        for (int k = 0; k < n; k++) ragd_gmask(S[k].g, &S[k].m, t, ws, direct + (size_t)k * W);
                    } else {
                        ragd_gmask_cache_begin(c);
                        for (int k = 0; k < n; k++) ent[k] = ragd_gmask_cache_lookup(c, S[k].g, &S[k].m);
                        ragd_gmask_cache_compute(c);
                    }
                    tm[mode] += now_s() - a;
                    for (int k = 0; k < n; k++) {
                        const uint32_t *w = mode ? ragd_gmask_cache_mask(c, ent[k]) : direct + (size_t)k * W;
                        if (mode) { /* same bits as direct */
                            uint32_t *ref = malloc((size_t)W * 4);
                            if (st % 37 == 0) {
                                ragd_gmask(S[k].g, &S[k].m, t, ws, ref);
                                if (memcmp(ref, w, (size_t)W * 4)) fails++;
                            }
                            free(ref);
                        }
                        int na = 0;
                        for (int i = 0; i < V; i++)
                            if ((w[i >> 5] >> (i & 31)) & 1) allowed[na++] = i;
                        if (!na) {
                            fails++;
                            ragd_gmatch_init(S[k].g, &S[k].m);
                            continue;
                        }
                        int32_t pick = -1;
                        if (S[k].n >= 24)
                            for (int q = 0; q < 4 && pick < 0; q++)
                                if (closers[q] >= 0 && ((w[closers[q] >> 5] >> (closers[q] & 31)) & 1)) pick = closers[q];
                        if (pick < 0) pick = allowed[rnd(&S[k].rng) % (uint64_t)na];
                        if (pick == eos[0] || ragd_gmatch_finished(S[k].g, &S[k].m)) {
                            ragd_gmatch_init(S[k].g, &S[k].m);
                            S[k].n = 0;
                            continue;
                        }
                        if (!ragd_gmatch_advance_token(S[k].g, &S[k].m, t, pick)) fails++;
                        S[k].n++;
                        if (ragd_gmatch_finished(S[k].g, &S[k].m)) {
                            ragd_gmatch_init(S[k].g, &S[k].m);
                            S[k].n = 0;
                        }
                    }
                }
                if (mode) ragd_gmask_cache_stats_get(c, &cst[mode - 1]);
                for (int k = 0; k < n; k++) ragd_grammar_free(S[k].g);
                free(S);
                ragd_gmask_cache_free(c);
            }
            printf("%-12s %7d | %12.3f %12.1f | %12.3f %8.1f | %12.3f %8.1f\n", SCHEMAS[si] ? "rag-answer" : "json_object",
                   n, tm[0] * 1e3 / steps, tm[0] * 1e6 / steps / n, tm[1] * 1e3 / steps,
                   100.0 * (double)cst[0].hits / (double)cst[0].lookups, tm[2] * 1e3 / steps,
                   100.0 * (double)cst[1].hits / (double)cst[1].lookups);
        }
    }
    printf("%s: %d mismatches or dead ends\n", fails ? "FAIL" : "ok", fails);
    free(direct);
    free(allowed);
    ragd_gmask_ws_free(ws);
    ragd_vocab_trie_free(t);
    ragd_tokenizer_free(tok);
    return fails != 0;
}
