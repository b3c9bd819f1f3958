/* test_grammar_walk.c — token masks against what they promise.
 *
 * For every case of cases.json and two vocabularies (a small synthetic one with every single byte and
 * JSON-ish pieces, and the real Qwen3 one from ../shared/models/qwen3-tokenizer), 200 random walks:
 * sample uniformly among the tokens the mask allows for the first steps, then finish (EOS when
 * accepting, else a closing '"' '}' ']' when allowed, else any allowed single-byte token) until EOS.
 * Every produced text must parse with jansson and validate against the schema (grammar_test_util.h's
 * own validator); a mask with nothing allowed is a dead end and fails. On some states of the walks the
 * mask is compared bit by bit with advancing a copy of the state by every token (brute force).
 * Prints the CPU time per mask for each vocabulary, and for a few typical states of Qwen3's.
 */
#include <time.h>

#include "test.h"

#include "grammar_test_util.h"

#define WALKS 200
#define MAX_STEPS 4000

typedef struct vocab {
    const char *name;
    int n;
    const char **bytes;
    int *len;
    int32_t eos[4];
    int n_eos;
    int32_t byte_tok[256];
    ragd_vocab_trie *trie;
    ragd_gmask_ws *ws;
    uint32_t *words;
    int random_steps;   /* uniform sampling for this many tokens, then finishing */
    int brute_walks;    /* brute-force mask checks on the first walks of a case ... */
    int brute_every;    /* ... every this many steps */
    double mask_s;      /* CPU time in ragd_gmask */
    long n_masks;
    double mask_max_s;
} vocab;

static uint64_t rng_state;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool vocab_finish(vocab *v) {
    for (int b = 0; b < 256; b++) v->byte_tok[b] = -1;
    for (int i = 0; i < v->n; i++)
        if (v->bytes[i] && v->len[i] == 1 && v->byte_tok[(uint8_t)v->bytes[i][0]] < 0)
            v->byte_tok[(uint8_t)v->bytes[i][0]] = i;
    ragd_err err = {0};
    if (ragd_vocab_trie_build(v->bytes, v->len, v->n, v->eos, v->n_eos, &v->trie, &err)) {
        fprintf(stderr, "%s: trie: %s\n", v->name, ragd_err_msg(&err));
        ragd_err_free(&err);
        return false;
    }
    v->ws = ragd_gmask_ws_create(v->trie);
    v->words = calloc((size_t)ragd_vocab_trie_mask_words(v->trie), sizeof *v->words);
    return v->ws && v->words;
}

static void vocab_free(vocab *v) {
    ragd_vocab_trie_free(v->trie);
    ragd_gmask_ws_free(v->ws);
    free(v->words);
    free(v->bytes);
    free(v->len);
}

/* every single byte, JSON-ish pieces, the case files' names, an empty and a special token, EOS last */
static const char *const PIECES[] = {
    "{\"", "\":", "\",\"", "\"}", "\"]", "true", "false", "null", "nu", "ll", "12", "-1", ".5", "e+", "E-", "00",
    "\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97", "\xa5", "\xf0\x9f", "\x98\x80", "\\n", "\\u00e9", "\\u",
    "\\\"", "\\\\", " \"", ", \"", ",\"", "[{", "}]", "]}", "},{", "}}", "[]", "{}", "[[", "]]", "name", "age", "id",
    "tags", "kind", "value", "children", "head", "next", "red", "green", "gr", "abc", "hello world", "\":\"",
    "\":[", "\":{", "\":\"a", "\"a\"", "a\"b", "\n", "  ", "\"value\":", "\"children\":[", "\"kind\":\"a\"", " ",
    "user", "address", "city", "zip", "list", "obj", "\"x\"", "é", "\\\"b", "\"a\\\"b\":", "extra", ":{", ":[",
};

static bool synthetic_vocab(vocab *v) {
    int n_pieces = (int)(sizeof PIECES / sizeof *PIECES);
    v->name = "synthetic";
    v->n = 256 + n_pieces + 3;
    v->bytes = calloc((size_t)v->n, sizeof *v->bytes);
    v->len = calloc((size_t)v->n, sizeof *v->len);
    static char single[256];
    for (int b = 0; b < 256; b++) {
        single[b] = (char)b;
        v->bytes[b] = &single[b];
        v->len[b] = 1;
    }
    for (int i = 0; i < n_pieces; i++) {
        v->bytes[256 + i] = PIECES[i];
        v->len[256 + i] = (int)strlen(PIECES[i]);
    }
    v->bytes[256 + n_pieces] = "";     /* empty: never allowed */
    v->len[256 + n_pieces] = 0;
    v->bytes[256 + n_pieces + 1] = NULL; /* special: never allowed */
    v->len[256 + n_pieces + 1] = -1;
    v->bytes[256 + n_pieces + 2] = "</s>"; /* EOS: its bytes never count */
    v->len[256 + n_pieces + 2] = 4;
    v->eos[0] = 256 + n_pieces + 2;
    v->n_eos = 1;
    v->random_steps = 48;
    v->brute_walks = 200;
    v->brute_every = 1;
    return vocab_finish(v);
}

static ragd_tokenizer *qwen_tok;

static bool qwen_vocab(vocab *v) {
    const char *shared = getenv("RAGD_SHARED");
    char path[4096];
    snprintf(path, sizeof path, "%s/models/qwen3-tokenizer/tokenizer.json", shared ? shared : "../shared");
    ragd_err err = {0};
    if (ragd_tokenizer_load_json(path, &qwen_tok, &err)) {
        /* ../shared is part of the checkout's setting (the tokenizer tests need it too): missing is a failure */
        printf("FAIL qwen3 vocabulary: %s\n", ragd_err_msg(&err));
        CHECK(!"the Qwen3 tokenizer of ../shared/models/qwen3-tokenizer loads");
        ragd_err_free(&err);
        return false;
    }
    v->name = "qwen3";
    v->n = (int)ragd_tokenizer_vocab_size(qwen_tok);
    v->bytes = calloc((size_t)v->n, sizeof *v->bytes);
    v->len = calloc((size_t)v->n, sizeof *v->len);
    for (int i = 0; i < v->n; i++) {
        size_t len = 0;
        v->bytes[i] = ragd_tokenizer_is_special(qwen_tok, i) ? NULL : ragd_tokenizer_token_bytes(qwen_tok, i, &len);
        v->len[i] = v->bytes[i] ? (int)len : -1;
    }
    const char *eos_names[] = {"<|im_end|>", "<|endoftext|>"};
    for (int k = 0; k < 2; k++) {
        int32_t id = ragd_tokenizer_token_to_id(qwen_tok, eos_names[k]);
        if (id >= 0) v->eos[v->n_eos++] = id;
    }
    CHECK(v->n_eos == 2);
    CHECK(v->n > 151000);
    v->random_steps = 24;
    v->brute_walks = 2;
    v->brute_every = 5;
    return vocab_finish(v);
}

static bool bit(const uint32_t *w, int32_t i) { return (w[i >> 5] >> (i & 31)) & 1u; }

static void timed_mask(vocab *v, const ragd_grammar *g, const ragd_gmatch *m) {
    double t0 = cpu_now();
    ragd_gmask(g, m, v->trie, v->ws, v->words);
    double dt = cpu_now() - t0;
    v->mask_s += dt;
    v->n_masks++;
    if (dt > v->mask_max_s) v->mask_max_s = dt;
}

/* The mask against advancing a copy of m by every token; returns the number of differences. */
static int brute_force(vocab *v, const ragd_grammar *g, const ragd_gmatch *m) {
    ragd_gmask(g, m, v->trie, v->ws, v->words);
    int diff = 0;
    for (int32_t i = 0; i < v->n; i++) {
        ragd_gmatch c = *m;
        bool ok = ragd_gmatch_advance_token(g, &c, v->trie, i);
        if (ok != bit(v->words, i)) {
            if (diff < 5) fprintf(stderr, "%s: token %d (len %d) mask %d, advance %d\n", v->name, i, v->len[i],
                                  bit(v->words, i), ok);
            diff++;
        }
    }
    return diff;
}

static int32_t pick_allowed(vocab *v) {
    int nw = ragd_vocab_trie_mask_words(v->trie);
    long count = 0;
    for (int w = 0; w < nw; w++) count += __builtin_popcount(v->words[w]);
    if (!count) return -1;
    long r = (long)(rnd() % (uint64_t)count);
    for (int w = 0; w < nw; w++) {
        int c = __builtin_popcount(v->words[w]);
        if (r >= c) {
            r -= c;
            continue;
        }
        uint32_t x = v->words[w];
        for (;; x &= x - 1)
            if (r-- == 0) return w * 32 + __builtin_ctz(x);
    }
    return -1;
}

static bool is_eos(const vocab *v, int32_t id) {
    for (int i = 0; i < v->n_eos; i++)
        if (v->eos[i] == id) return true;
    return false;
}

/* One walk; returns false when it failed (dead end, refused token, invalid text). */
static bool walk(vocab *v, const json_t *cs, const ragd_grammar *g, int walk_no, ragd_buf *text) {
    const char *name = json_string_value(json_object_get(cs, "name"));
    ragd_gmatch m;
    ragd_gmatch_init(g, &m);
    ragd_buf_reset(text);
    for (int step = 0; step < MAX_STEPS; step++) {
        if (walk_no < v->brute_walks && step % v->brute_every == 0) {
            int diff = brute_force(v, g, &m);
            if (diff) fprintf(stderr, "%s/%s walk %d step %d: %d mask bits wrong after \"%s\"\n", v->name, name,
                              walk_no, step, diff, text->data ? text->data : "");
            CHECK_EQ_INT(diff, 0);
        }
        int32_t id = -1;
        if (step < v->random_steps) {
            timed_mask(v, g, &m);
            id = pick_allowed(v);
        } else if (ragd_gmatch_accepting(g, &m)) {
            id = v->eos[0];
        } else {
            static const char closers[] = "\"}]";
            for (int k = 0; k < 3 && id < 0; k++) {
                int32_t t = v->byte_tok[(uint8_t)closers[k]];
                ragd_gmatch c = m;
                if (t >= 0 && ragd_gmatch_advance_token(g, &c, v->trie, t)) id = t;
            }
            int32_t ok[256];
            int n_ok = 0;
            for (int b = 0; b < 256 && id < 0; b++) {
                int32_t t = v->byte_tok[b];
                ragd_gmatch c = m;
                if (t >= 0 && ragd_gmatch_advance_token(g, &c, v->trie, t)) ok[n_ok++] = t;
            }
            if (id < 0 && n_ok) id = ok[rnd() % (uint64_t)n_ok];
            if (id < 0) {
                timed_mask(v, g, &m);
                id = pick_allowed(v);
            }
        }
        if (id < 0) {
            fprintf(stderr, "%s/%s walk %d: dead end after \"%s\"\n", v->name, name, walk_no, text->data);
            return false;
        }
        if (is_eos(v, id)) {
            if (!ragd_gmatch_accepting(g, &m)) {
                fprintf(stderr, "%s/%s walk %d: EOS allowed in a state that is not accepting\n", v->name, name, walk_no);
                return false;
            }
            if (!gt_text_valid(cs, text->data, text->len)) {
                fprintf(stderr, "%s/%s walk %d: produced invalid JSON for the schema: %s\n", v->name, name, walk_no,
                        text->data);
                return false;
            }
            return true;
        }
        int len;
        const char *b = ragd_vocab_trie_token(v->trie, id, &len);
        if (!b || !ragd_gmatch_advance_token(g, &m, v->trie, id)) {
            fprintf(stderr, "%s/%s walk %d: token %d was allowed but does not advance\n", v->name, name, walk_no, id);
            return false;
        }
        ragd_buf_append(text, b, (size_t)len);
    }
    fprintf(stderr, "%s/%s walk %d: no EOS after %d tokens: %.200s...\n", v->name, name, walk_no, MAX_STEPS, text->data);
    return false;
}

static void run_walks(vocab *v, const json_t *cases) {
    size_t i;
    json_t *cs;
    ragd_buf text = {0};
    long total_len = 0, n_walks = 0;
    json_array_foreach((json_t *)cases, i, cs) {
        ragd_grammar *g = gt_compile(cs);
        CHECK(g != NULL);
        if (!g) continue;
        rng_state = 0x9E3779B97F4A7C15ull ^ (uint64_t)(i + 1) * 0x100000001B3ull;
        int failed = 0;
        for (int w = 0; w < WALKS; w++) {
            bool ok = walk(v, cs, g, w, &text);
            if (!ok) failed++;
            total_len += (long)text.len;
            n_walks++;
            if (w == 0) printf("  %s/%s: %.120s\n", v->name, json_string_value(json_object_get(cs, "name")), text.data);
        }
        CHECK_EQ_INT(failed, 0);
        ragd_grammar_free(g);
    }
    ragd_buf_free(&text);
    printf("%s vocabulary (%d tokens): %ld walks, mean text %.1f bytes; CPU time per mask: mean %.1f us, max %.1f "
           "us over %ld masks\n", v->name, v->n, n_walks, (double)total_len / (double)(n_walks ? n_walks : 1),
           1e6 * v->mask_s / (double)(v->n_masks ? v->n_masks : 1), 1e6 * v->mask_max_s, v->n_masks);
}

/* CPU cost of masks in typical states (Qwen3). */
static void bench_states(vocab *v) {
    static const struct {
        const char *schema, *prefix, *what;
    } S[] = {
        {"json_object", "", "json_object: start"},
        {"json_object", "{\"", "json_object: in a free key"},
        {"json_object", "{\"k\":", "json_object: a value of any type"},
        {"json_object", "{\"k\":\"Some text", "json_object: inside a string"},
        {"json_object", "{\"k\":\"\xe6\x97", "json_object: inside a string, mid UTF-8"},
        {"json_object", "{\"k\":12", "json_object: inside a number"},
        {"{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"}},"
         "\"required\":[\"name\",\"age\"],\"additionalProperties\":false}", "{", "person: before the first key"},
        {"{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":20},\"age\":{\"type\":"
         "\"integer\"}},\"required\":[\"name\",\"age\"],\"additionalProperties\":false}", "{\"name\":\"Ann",
         "person: inside a string with maxLength 20 (3 used)"},
        {"{\"enum\":[\"alpha\",\"beta\",\"gamma\"]}", "", "enum of 3 strings: start"},
    };
    for (size_t i = 0; i < sizeof S / sizeof *S; i++) {
        ragd_grammar *g = NULL;
        ragd_err err = {0};
        if (!strcmp(S[i].schema, "json_object")) ragd_grammar_json_object(&g, &err);
        else {
            json_t *s = json_loads(S[i].schema, 0, NULL);
            ragd_grammar_compile_schema(s, &g, &err);
            json_decref(s);
        }
        ragd_err_free(&err);
        CHECK(g != NULL);
        if (!g) continue;
        ragd_gmatch m;
        ragd_gmatch_init(g, &m);
        CHECK(ragd_gmatch_advance(g, &m, S[i].prefix, strlen(S[i].prefix)));
        int reps = 200;
        double t0 = cpu_now();
        for (int r = 0; r < reps; r++) ragd_gmask(g, &m, v->trie, v->ws, v->words);
        double us = 1e6 * (cpu_now() - t0) / reps;
        long allowed = 0;
        for (int w = 0; w < ragd_vocab_trie_mask_words(v->trie); w++) allowed += __builtin_popcount(v->words[w]);
        printf("  CPU time per mask, %s vocabulary (%d tokens), %-52s %8.1f us  (%ld tokens allowed)\n", v->name, v->n,
               S[i].what, us, allowed);
        ragd_grammar_free(g);
    }
}

int main(void) {
    json_t *cases = gt_load_cases();
    CHECK(cases != NULL);
    if (!cases) TEST_DONE();
    vocab syn = {0}, qwen = {0};
    CHECK(synthetic_vocab(&syn));
    run_walks(&syn, cases);
    if (qwen_vocab(&qwen)) {
        run_walks(&qwen, cases);
        bench_states(&qwen);
        vocab_free(&qwen);
    }
    vocab_free(&syn);
    ragd_tokenizer_free(qwen_tok);
    json_decref(cases);
    TEST_DONE();
}
