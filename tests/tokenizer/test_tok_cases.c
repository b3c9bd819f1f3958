/* test_tok_cases.c — one fixture's Hugging Face references (tests/tokenizer/cases/<name>.jsonl, made by
 * tools/tok_make_refs.py): ids without and with special tokens, decode with and without
 * skip_special_tokens, streaming decode, 1 MB generated inputs (id count + FNV hash, timed), and
 * decode-only random id sequences (lossy UTF-8). Every check runs twice: as loaded (hand-written split
 * matchers, word cache) and with RAGD_TOK_FORCE_PCRE2 + RAGD_TOK_NO_CACHE (the 1 MB inputs only in
 * the first run, to keep the suite fast).
 *
 * Encoder fixtures (tests/tokenizer/make_encoder_cases.py) add token type ids, decodes of the ids with
 * special tokens, and pair rows (ragd_tokenizer_encode_pair with truncation; HF's refusals must be
 * refused too). A TOKENIZER_JSON that is a folder is loaded with ragd_tokenizer_load_bert_vocab.
 *
 * usage: test_tok_cases NAME TOKENIZER_JSON CASES_JSONL [gguf-pre]
 *   NAME "qwen3emb" builds the Qwen3-Embedding variant of TOKENIZER_JSON (TemplateProcessing appending
 *   <|endoftext|>) exactly as tools/tok_make_refs.py does. With gguf-pre, the cases also run on the
 *   tokenizer rebuilt through ragd_tokenizer_load_gguf_parts with that pre-tokenizer name.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tok_test_util.h"
#include "tokenizer/tok_internal.h"

static const char QWEN3_EMB_POST[] =
    "{\"type\": \"TemplateProcessing\", \"single\": [{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, "
    "{\"SpecialToken\": {\"id\": \"<|endoftext|>\", \"type_id\": 0}}], \"pair\": [], \"special_tokens\": "
    "{\"<|endoftext|>\": {\"id\": \"<|endoftext|>\", \"ids\": [151643], \"tokens\": [\"<|endoftext|>\"]}}}";

/* Sanitizer builds (CI runs one) time only every third 1 MB input to keep the suite fast. */
#if defined(__SANITIZE_ADDRESS__)
#define BIG_STRIDE 3
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BIG_STRIDE 3
#endif
#endif
#ifndef BIG_STRIDE
#define BIG_STRIDE 1
#endif

static uint64_t lcg(uint64_t x) { return x * 6364136223846793005ull + 1442695040888963407ull; }

static void gen_text(json_t *g, ragd_buf *out) {
    ragd_buf_reset(out);
    const char *kind = json_string_value(json_object_get(g, "kind"));
    if (!strcmp(kind, "repeat")) {
        json_t *u = json_object_get(g, "unit");
        json_int_t n = json_integer_value(json_object_get(g, "count"));
        for (json_int_t i = 0; i < n; i++) ragd_buf_append(out, json_string_value(u), json_string_length(u));
        return;
    }
    json_t *words = json_object_get(g, "words"), *sep = json_object_get(g, "sep");
    uint64_t x = (uint64_t)json_integer_value(json_object_get(g, "seed"));
    json_int_t n = json_integer_value(json_object_get(g, "count"));
    for (json_int_t i = 0; i < n; i++) {
        x = lcg(x);
        json_t *w = json_array_get(words, (size_t)((x >> 33) % json_array_size(words)));
        if (i) ragd_buf_append(out, json_string_value(sep), json_string_length(sep));
        ragd_buf_append(out, json_string_value(w), json_string_length(w));
    }
}

static bool str_eq(const ragd_buf *b, json_t *s) {
    return b->len == json_string_length(s) && !memcmp(b->data, json_string_value(s), b->len);
}

static void check_decode(const ragd_tokenizer *t, const ragd_tok_ids *ids, json_t *want, bool skip, const char *label,
                         size_t ci) {
    ragd_buf b = {0}, sb = {0};
    ragd_err err = {0};
    CHECK_EQ_INT(ragd_tokenizer_decode(t, ids->ids, ids->n, skip, &b, &err), RAGD_OK);
    if (!str_eq(&b, want)) {
        CHECK(!"decode matches HF");
        fprintf(stderr, "%s case %zu decode(skip=%d): got '%s' want '%s'\n", label, ci, skip, b.data ? b.data : "",
                json_string_value(want));
    } else t_passed++;
    ragd_tok_stream s = {0};
    for (size_t k = 0; k < ids->n; k++) ragd_tok_stream_push(t, &s, ids->ids[k], skip, &sb, NULL);
    ragd_tok_stream_flush(t, &s, &sb);
    CHECK(sb.len == b.len && (!b.len || !memcmp(sb.data, b.data, b.len)));
    ragd_buf_free(&b);
    ragd_buf_free(&sb);
    ragd_err_free(&err);
}

static ragd_tok_trunc_strategy trunc_strategy(const char *s) {
    if (!strcmp(s, "longest_first")) return RAGD_TOK_TRUNC_LONGEST_FIRST;
    if (!strcmp(s, "only_first")) return RAGD_TOK_TRUNC_ONLY_FIRST;
    if (!strcmp(s, "only_second")) return RAGD_TOK_TRUNC_ONLY_SECOND;
    RAGD_DIE("unknown truncation strategy '%s'", s);
}

/* One pair row: ids and type ids as HF, or a refusal where HF refuses. */
static void check_pair(const ragd_tokenizer *t, json_t *c, const char *label, size_t ci) {
    json_t *pr = json_object_get(c, "pair"), *a = json_array_get(pr, 0), *b = json_array_get(pr, 1);
    json_t *tr = json_object_get(c, "trunc");
    ragd_tok_trunc trunc = {0}, *tp = NULL;
    if (json_is_object(tr)) {
        trunc.strategy = trunc_strategy(json_string_value(json_object_get(tr, "strategy")));
        trunc.max_length = (size_t)json_integer_value(json_object_get(tr, "max_length"));
        trunc.left = !strcmp(json_string_value(json_object_get(tr, "direction")), "left");
        tp = &trunc;
    }
    ragd_tok_ids ids = {0}, types = {0}, want = {0}, want_t = {0};
    ragd_err err = {0};
    ragd_status st = ragd_tokenizer_encode_pair(t, json_string_value(a), json_string_length(a),
                                                json_is_string(b) ? json_string_value(b) : NULL,
                                                json_is_string(b) ? json_string_length(b) : 0,
                                                json_is_true(json_object_get(c, "add_special")), tp, &ids, &types, &err);
    if (json_object_get(c, "error")) {
        if (st == RAGD_EINVAL) t_passed++;
        else {
            CHECK(!"pair refused as HF refuses it");
            fprintf(stderr, "%s pair case %zu: got status %d, HF: %s\n", label, ci, st,
                    json_string_value(json_object_get(c, "error")));
        }
    } else {
        json_ids(json_object_get(c, "ids"), &want);
        json_ids(json_object_get(c, "type_ids"), &want_t);
        if (st == RAGD_OK && ids_equal(&ids, &want) && ids_equal(&types, &want_t)) t_passed++;
        else {
            CHECK(!"pair ids and type ids match HF");
            fprintf(stderr, "%s pair case %zu (status %d %s): '%.40s' / '%.40s'\n", label, ci, st,
                    st ? ragd_err_msg(&err) : "", json_string_value(a), json_is_string(b) ? json_string_value(b) : "(none)");
            print_ids_diff("ids", &ids, &want);
            print_ids_diff("type ids", &types, &want_t);
        }
    }
    ragd_tok_ids_free(&ids);
    ragd_tok_ids_free(&types);
    ragd_tok_ids_free(&want);
    ragd_tok_ids_free(&want_t);
    ragd_err_free(&err);
}

static int run_cases(const ragd_tokenizer *t, json_t *cases, const char *label, bool big) {
    ragd_tok_ids ids = {0}, want = {0};
    ragd_buf text = {0};
    int bad0 = t_failed;
    size_t ci, n_big = 0;
    json_t *c;
    json_array_foreach(cases, ci, c) {
        ragd_err err = {0};
        json_t *jt = json_object_get(c, "text"), *g = json_object_get(c, "gen"), *d = json_object_get(c, "decode_ids");
        if (jt) {
            const char *s = json_string_value(jt);
            size_t n = json_string_length(jt);
            for (int special = 0; special < 2; special++) {
                json_ids(json_object_get(c, special ? "ids_special" : "ids"), &want);
                ids.n = 0;
                CHECK_EQ_INT(ragd_tokenizer_encode(t, s, n, special, &ids, &err), RAGD_OK);
                if (!ids_equal(&ids, &want)) {
                    CHECK(!"ids match HF");
                    fprintf(stderr, "%s case %zu (special=%d): %.60s\n", label, ci, special, s);
                    print_ids_diff(label, &ids, &want);
                } else t_passed++;
            }
            json_ids(json_object_get(c, "ids"), &want);
            check_decode(t, &want, json_object_get(c, "decoded"), false, label, ci);
            check_decode(t, &want, json_object_get(c, "decoded_skip"), true, label, ci);
            if (json_object_get(c, "type_ids_special")) {
                /* the single-sequence path of encode_pair: ids and type ids with special tokens */
                ragd_tok_ids types = {0}, want_t = {0};
                json_ids(json_object_get(c, "ids_special"), &want);
                json_ids(json_object_get(c, "type_ids_special"), &want_t);
                CHECK_EQ_INT(ragd_tokenizer_encode_pair(t, s, n, NULL, 0, true, NULL, &ids, &types, &err), RAGD_OK);
                if (ids_equal(&ids, &want) && ids_equal(&types, &want_t)) t_passed++;
                else {
                    CHECK(!"type ids match HF");
                    fprintf(stderr, "%s case %zu type ids: %.60s\n", label, ci, s);
                }
                ragd_tok_ids_free(&types);
                ragd_tok_ids_free(&want_t);
                check_decode(t, &want, json_object_get(c, "decoded_special"), false, label, ci);
                check_decode(t, &want, json_object_get(c, "decoded_special_skip"), true, label, ci);
            }
        } else if (json_object_get(c, "pair")) {
            check_pair(t, c, label, ci);
        } else if (g && big && n_big++ % BIG_STRIDE == 0) {
            gen_text(g, &text);
            ids.n = 0;
            double t0 = ragd_now_s();
            CHECK_EQ_INT(ragd_tokenizer_encode(t, text.data, text.len, false, &ids, &err), RAGD_OK);
            double dt = ragd_now_s() - t0;
            char hex[17];
            snprintf(hex, sizeof hex, "%016llx", (unsigned long long)ids_hash(&ids));
            json_int_t want_n = json_integer_value(json_object_get(c, "n_ids"));
            bool ok = (json_int_t)ids.n == want_n && !strcmp(hex, json_string_value(json_object_get(c, "hash")));
            CHECK(ok);
            printf("%s: %zu-byte %s '%.12s' → %zu ids in %.3f s%s\n", label, text.len,
                   json_string_value(json_object_get(g, "kind")), text.data, ids.n, dt, ok ? "" : "  MISMATCH");
            if (!ok) fprintf(stderr, "  want %lld ids hash %s, got hash %s\n", (long long)want_n,
                             json_string_value(json_object_get(c, "hash")), hex);
            if (json_is_true(json_object_get(c, "roundtrip"))) {
                ragd_buf dec = {0};
                CHECK_EQ_INT(ragd_tokenizer_decode(t, ids.ids, ids.n, false, &dec, &err), RAGD_OK);
                CHECK(dec.len == text.len && !memcmp(dec.data, text.data, dec.len));
                ragd_buf_free(&dec);
            }
        } else if (d) {
            json_ids(d, &want);
            check_decode(t, &want, json_object_get(c, "decoded"), false, label, ci);
            check_decode(t, &want, json_object_get(c, "decoded_skip"), true, label, ci);
        }
        ragd_err_free(&err);
    }
    ragd_tok_ids_free(&ids);
    ragd_tok_ids_free(&want);
    ragd_buf_free(&text);
    printf("%s: %zu cases, %d failed checks\n", label, json_array_size(cases), t_failed - bad0);
    return t_failed - bad0;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s NAME TOKENIZER_JSON CASES_JSONL [gguf-pre]\n", argv[0]); return 2; }
    const char *name = argv[1], *path = argv[2];
    char tmp[] = "/tmp/ragd_tok_qwen3emb_XXXXXX";
    if (!strcmp(name, "qwen3emb")) {
        json_error_t je;
        json_t *root = json_load_file(path, 0, &je), *post = json_loads(QWEN3_EMB_POST, 0, &je);
        RAGD_ASSERT(root && post);
        json_object_set_new(root, "post_processor", post);
        int fd = mkstemp(tmp);
        RAGD_ASSERT(fd >= 0);
        close(fd);
        RAGD_ASSERT(json_dump_file(root, tmp, JSON_COMPACT) == 0);
        json_decref(root);
        path = tmp;
    }
    json_t *cases = load_jsonl(argv[3]);
    CHECK(cases && json_array_size(cases) > 0);
    if (!cases) TEST_DONE();
    for (int mode = 0; mode < 2; mode++) {
        if (mode) { setenv("RAGD_TOK_FORCE_PCRE2", "1", 1); setenv("RAGD_TOK_NO_CACHE", "1", 1); }
        ragd_tokenizer *t = NULL;
        ragd_err err = {0};
        struct stat sb;
        bool is_dir = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
        ragd_status st = is_dir ? ragd_tokenizer_load_bert_vocab(path, &t, &err) : ragd_tokenizer_load_json(path, &t, &err);
        CHECK_EQ_INT(st, RAGD_OK);
        if (st) { fprintf(stderr, "%s\n", ragd_err_msg(&err)); ragd_err_free(&err); break; }
        char label[64];
        snprintf(label, sizeof label, "%s/%s", name, mode ? "pcre2+nocache" : "default");
        run_cases(t, cases, label, mode == 0);
        if (!mode && argc > 4) {
            bool llama = !strcmp(argv[4], "llama-bpe");
            ragd_tokenizer *tg = tok_load_as_gguf(path, t, argv[4], llama ? 0 : -1, llama ? 1 : 151643, -1, llama);
            CHECK(tg != NULL);
            if (tg) {
                snprintf(label, sizeof label, "%s/gguf-%s", name, argv[4]);
                run_cases(tg, cases, label, false);
            }
            ragd_tokenizer_free(tg);
        }
        ragd_tokenizer_free(t);
        unsetenv("RAGD_TOK_FORCE_PCRE2");
        unsetenv("RAGD_TOK_NO_CACHE");
    }
    if (path == tmp) unlink(tmp);
    json_decref(cases);
    TEST_DONE();
}
