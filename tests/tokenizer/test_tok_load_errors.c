/* test_tok_load_errors.c — loading fails loudly: unsupported components give RAGD_EUNSUPPORTED naming
 * the component, malformed files RAGD_EFORMAT naming what is wrong; the same for GGUF parts; encode and
 * decode reject invalid UTF-8 and out-of-range ids with the offset / id in the message. */
#include <stdlib.h>
#include <unistd.h>

#include "tok_test_util.h"

static const char BASE[] =
    "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]%s},"
    " \"normalizer\": %s, \"pre_tokenizer\": %s, \"post_processor\": %s, \"decoder\": %s, \"added_tokens\": %s}";

/* Writes a tokenizer.json from the pieces, loads it, checks the status and that msg contains `want`. */
static void expect(const char *model_extra, const char *norm, const char *pre, const char *post, const char *dec,
                   const char *added, ragd_status want_st, const char *want) {
    char path[] = "/tmp/ragd_tok_err_XXXXXX";
    int fd = mkstemp(path);
    RAGD_ASSERT(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, BASE, model_extra, norm, pre, post, dec, added);
    fclose(f);
    ragd_tokenizer *t = NULL;
    ragd_err err = {0};
    ragd_status st = ragd_tokenizer_load_json(path, &t, &err);
    CHECK_EQ_INT(st, want_st);
    if (want) {
        CHECK(strstr(ragd_err_msg(&err), want) != NULL);
        if (!strstr(ragd_err_msg(&err), want)) fprintf(stderr, "  message: %s (want '%s')\n", ragd_err_msg(&err), want);
    }
    CHECK((st == RAGD_OK) == (t != NULL));
    ragd_tokenizer_free(t);
    ragd_err_free(&err);
    unlink(path);
}

/* Loads a tokenizer.json given as a string (NULL + message printed on failure). */
static ragd_tokenizer *load_str(const char *json) {
    char path[] = "/tmp/ragd_tok_err_XXXXXX";
    int fd = mkstemp(path);
    RAGD_ASSERT(fd >= 0);
    RAGD_ASSERT(write(fd, json, strlen(json)) == (ssize_t)strlen(json));
    close(fd);
    ragd_tokenizer *t = NULL;
    ragd_err err = {0};
    if (ragd_tokenizer_load_json(path, &t, &err)) fprintf(stderr, "load: %s\n", ragd_err_msg(&err));
    ragd_err_free(&err);
    unlink(path);
    return t;
}

/* Encode-time refusals of the encoder models: an unknown token needed but absent, a pair without a
 * pair template, truncations HF refuses; and the vocab.txt loader's refusals. */
static void encoder_refusals(void) {
    ragd_tok_ids ids = {0}, types = {0};
    ragd_err err = {0};
    ragd_tokenizer *t = load_str("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}");
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_INT(ragd_tokenizer_encode(t, "a", 1, false, &ids, &err), RAGD_OK);
        CHECK_EQ_INT(ragd_tokenizer_encode(t, "ab", 2, false, &ids, &err), RAGD_EFORMAT);
        CHECK(strstr(ragd_err_msg(&err), "unknown token") != NULL);
    }
    ragd_tokenizer_free(t);
    t = load_str("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", -1.0]], \"unk_id\": null}}");
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_INT(ragd_tokenizer_encode(t, "aa", 2, false, &ids, &err), RAGD_OK);
        CHECK_EQ_INT(ragd_tokenizer_encode(t, "ab", 2, false, &ids, &err), RAGD_EINVAL);
        CHECK(strstr(ragd_err_msg(&err), "unk_id") != NULL);
    }
    ragd_tokenizer_free(t);
    t = load_str("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"<s>\", 0.0], [\"a\", -1.0]], \"unk_id\": 0},"
                 " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}},"
                 " {\"Sequence\": {\"id\": \"A\"}}], \"pair\": [], \"special_tokens\": {\"<s>\": {\"ids\": [0]}}}}");
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_INT(ragd_tokenizer_encode_pair(t, "a", 1, NULL, 0, true, NULL, &ids, &types, &err), RAGD_OK);
        CHECK(ids.n == 2 && ids.ids[0] == 0 && types.n == 2);
        CHECK_EQ_INT(ragd_tokenizer_encode_pair(t, "a", 1, "a", 1, true, NULL, &ids, &types, &err), RAGD_EUNSUPPORTED);
        ragd_tok_trunc tr = {.strategy = RAGD_TOK_TRUNC_ONLY_SECOND, .max_length = 2};
        CHECK_EQ_INT(ragd_tokenizer_encode_pair(t, "aaa", 3, NULL, 0, false, &tr, &ids, &types, &err), RAGD_EINVAL);
        tr.max_length = 0;
        tr.strategy = RAGD_TOK_TRUNC_LONGEST_FIRST;
        CHECK_EQ_INT(ragd_tokenizer_encode_pair(t, "aaa", 3, NULL, 0, true, &tr, &ids, &types, &err), RAGD_EINVAL);
        CHECK(strstr(ragd_err_msg(&err), "special tokens") != NULL);
    }
    ragd_tokenizer_free(t);

    char dir[] = "/tmp/ragd_tok_vocab_XXXXXX";
    RAGD_ASSERT(mkdtemp(dir));
    char *vp = ragd_path_join(dir, "vocab.txt"), *cp = ragd_path_join(dir, "tokenizer_config.json");
    CHECK(ragd_tokenizer_load_bert_vocab(dir, &t, &err) == RAGD_ENOTFOUND || t == NULL);
    FILE *f = fopen(vp, "w");
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n##s\n", f);
    fclose(f);
    f = fopen(cp, "w");
    fputs("{\"tokenizer_class\": \"XLMRobertaTokenizer\"}", f);
    fclose(f);
    CHECK_EQ_INT(ragd_tokenizer_load_bert_vocab(dir, &t, &err), RAGD_EUNSUPPORTED);
    CHECK(strstr(ragd_err_msg(&err), "XLMRobertaTokenizer") != NULL);
    f = fopen(cp, "w");
    fputs("{\"do_lower_case\": true, \"model_max_length\": 512}", f);
    fclose(f);
    CHECK_EQ_INT(ragd_tokenizer_load_bert_vocab(dir, &t, &err), RAGD_OK);
    if (t) {
        CHECK_EQ_INT(ragd_tokenizer_encode_pair(t, "Hellos", 6, "hello", 5, true, NULL, &ids, &types, &err), RAGD_OK);
        int32_t want[] = {2, 5, 6, 3, 5, 3}, want_t[] = {0, 0, 0, 0, 1, 1};
        CHECK(ids.n == 6 && !memcmp(ids.ids, want, sizeof want) && !memcmp(types.ids, want_t, sizeof want_t));
        CHECK(ragd_tokenizer_model_max_length(t) == 512);
        CHECK_EQ_INT(ragd_tokenizer_pad_id(t), 0);
    }
    ragd_tokenizer_free(t);
    unlink(vp);
    unlink(cp);
    rmdir(dir);
    free(vp);
    free(cp);
    ragd_tok_ids_free(&ids);
    ragd_tok_ids_free(&types);
    ragd_err_free(&err);
}

int main(void) {
    encoder_refusals();
    /* a valid minimal file */
    expect("", "null", "null", "null", "null", "[]", RAGD_OK, NULL);
    /* unsupported components, each named */
    expect("", "{\"type\": \"Nmt\"}", "null", "null", "null", "[]", RAGD_EUNSUPPORTED, "Nmt");
    expect("", "{\"type\": \"BertNormalizer\", \"strip_accents\": \"yes\"}", "null", "null", "null", "[]",
           RAGD_EFORMAT, "strip_accents");
    expect("", "{\"type\": \"Replace\", \"pattern\": {\"Regex\": \"(x\"}, \"content\": \"y\"}", "null", "null",
           "null", "[]", RAGD_EUNSUPPORTED, "Replace");
    expect("", "{\"type\": \"Precompiled\", \"precompiled_charsmap\": \"AAA*\"}", "null", "null", "null", "[]",
           RAGD_EFORMAT, "base64");
    expect("", "{\"type\": \"Precompiled\", \"precompiled_charsmap\": \"QAAAAAAA\"}", "null", "null", "null", "[]",
           RAGD_EFORMAT, "trie size 64");
    expect("", "{\"type\": \"Precompiled\"}", "null", "null", "null", "[]", RAGD_EFORMAT, "precompiled_charsmap");
    expect("", "null", "{\"type\": \"Punctuation\"}", "null", "null", "[]", RAGD_EUNSUPPORTED, "Punctuation");
    expect("", "null", "{\"type\": \"UnicodeScripts\"}", "null", "null", "[]", RAGD_EUNSUPPORTED, "UnicodeScripts");
    expect("", "null", "{\"type\": \"Metaspace\"}", "null", "null", "[]", RAGD_EFORMAT, "replacement");
    expect("", "null", "{\"type\": \"Metaspace\", \"replacement\": \"ab\"}", "null", "null", "[]", RAGD_EFORMAT,
           "one character");
    expect("", "null", "{\"type\": \"Metaspace\", \"replacement\": \"_\", \"prepend_scheme\": \"sometimes\"}",
           "null", "null", "[]", RAGD_EUNSUPPORTED, "sometimes");
    expect("", "null", "{\"type\": \"Metaspace\", \"replacement\": \"_\", \"prepend_scheme\": \"always\", "
           "\"add_prefix_space\": false}", "null", "null", "[]", RAGD_EFORMAT, "add_prefix_space");
    expect("", "null", "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Weird\"}", "null",
           "null", "[]", RAGD_EUNSUPPORTED, "Weird");
    expect("", "null", "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(unclosed\"}, \"behavior\": \"Isolated\"}",
           "null", "null", "[]", RAGD_EUNSUPPORTED, "(unclosed");
    expect("", "null", "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"ByteLevel\"}, {\"type\": \"Digits\"}]}",
           "null", "null", "[]", RAGD_EUNSUPPORTED, "after ByteLevel");
    expect("", "null", "null", "{\"type\": \"Weirdo\"}", "null", "[]", RAGD_EUNSUPPORTED, "Weirdo");
    expect("", "null", "null", "null", "{\"type\": \"CTC\"}", "[]", RAGD_EUNSUPPORTED, "CTC");
    expect("", "null", "null", "null", "{\"type\": \"ByteFallback\"}", "[]", RAGD_EUNSUPPORTED, "ByteFallback");
    expect("", "null", "null", "null", "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\"}, {\"type\": \"Fuse\"}]}",
           "[]", RAGD_EUNSUPPORTED, "decoder Sequence");
    expect(", \"dropout\": 0.1", "null", "null", "null", "null", "[]", RAGD_EUNSUPPORTED, "dropout");
    /* malformed */
    expect(", \"unk_token\": \"<unk>\"", "null", "null", "null", "null", "[]", RAGD_EFORMAT, "<unk>");
    expect("", "null", "null", "null", "null", "[{\"id\": -1, \"content\": \"x\"}]", RAGD_EFORMAT, "added_tokens[0]");
    expect("", "null", "null", "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}}],"
           " \"special_tokens\": {}}", "null", "[]", RAGD_EFORMAT, "<s>");

    /* merges naming tokens that do not exist, a model of another type, not JSON at all */
    char path[] = "/tmp/ragd_tok_err_XXXXXX";
    const char *bad[][2] = {
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a zz\"]}}", "merge 0"},
        {"{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0}}}", "WordLevel"},
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": [\"a\"]}}", "WordPiece model without"},
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}, \"max_input_chars_per_word\": -1}}",
         "max_input_chars_per_word"},
        {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}",
         "ByteLevel pre-tokenizer with a WordPiece"},
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": {\"a\": 0}}}", "Unigram model without"},
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", \"x\"]]}}", "vocab[0]"},
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", -1.0]], \"unk_id\": 1}}", "unk_id"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}", "id 0 is used twice"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}", "'a'"},
        {"{\"model\": ", "/tmp/ragd_tok_err_"}, /* the path and the position */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int fd = mkstemp(path);
        RAGD_ASSERT(fd >= 0);
        RAGD_ASSERT(write(fd, bad[k][0], strlen(bad[k][0])) == (ssize_t)strlen(bad[k][0]));
        close(fd);
        ragd_tokenizer *t = NULL;
        ragd_err err = {0};
        ragd_status st = ragd_tokenizer_load_json(path, &t, &err);
        CHECK(st == RAGD_EFORMAT || st == RAGD_EUNSUPPORTED);
        CHECK(t == NULL);
        CHECK(strstr(ragd_err_msg(&err), bad[k][1]) != NULL);
        if (!strstr(ragd_err_msg(&err), bad[k][1])) fprintf(stderr, "  message: %s\n", ragd_err_msg(&err));
        ragd_err_free(&err);
        unlink(path);
        strcpy(path, "/tmp/ragd_tok_err_XXXXXX");
    }
    ragd_err err = {0};
    ragd_tokenizer *t = NULL;
    CHECK(ragd_tokenizer_load_json("/nonexistent/tokenizer.json", &t, &err) != RAGD_OK);
    CHECK(t == NULL && strstr(ragd_err_msg(&err), "/nonexistent/tokenizer.json"));
    ragd_err_free(&err);

    /* tokenizer_config.json facts, and chat_template.jinja when the config has no template */
    {
        char dir[] = "/tmp/ragd_tok_cfg_XXXXXX";
        RAGD_ASSERT(mkdtemp(dir));
        char *tj = ragd_path_join(dir, "tokenizer.json"), *cj = ragd_path_join(dir, "tokenizer_config.json");
        char *jj = ragd_path_join(dir, "chat_template.jinja");
        FILE *f = fopen(tj, "w");
        fprintf(f, BASE, "", "null", "null", "null", "null",
                "[{\"id\": 3, \"content\": \"<s>\", \"special\": true}, {\"id\": 4, \"content\": \"</s>\", \"special\": true}]");
        fclose(f);
        f = fopen(cj, "w");
        fprintf(f, "{\"bos_token\": {\"content\": \"<s>\"}, \"eos_token\": \"</s>\", \"pad_token\": null, "
                   "\"add_bos_token\": true}");
        fclose(f);
        f = fopen(jj, "w");
        fprintf(f, "{{ messages }}");
        fclose(f);
        CHECK_EQ_INT(ragd_tokenizer_load_json(tj, &t, &err), RAGD_OK);
        CHECK_EQ_INT(ragd_tokenizer_bos_id(t), 3);
        CHECK_EQ_INT(ragd_tokenizer_eos_id(t), 4);
        CHECK_EQ_INT(ragd_tokenizer_pad_id(t), -1);
        CHECK_STR(ragd_tokenizer_chat_template(t), "{{ messages }}");
        ragd_tok_ids v = {0};
        CHECK_EQ_INT(ragd_tokenizer_encode(t, "ab", 2, true, &v, &err), RAGD_OK); /* add_bos_token → [<s>, ab] */
        CHECK(v.n == 2 && v.ids[0] == 3 && v.ids[1] == 2);
        ragd_tok_ids_free(&v);
        ragd_tokenizer_free(t);
        t = NULL;
        unlink(tj); unlink(cj); unlink(jj);
        rmdir(dir);
        free(tj); free(cj); free(jj);
    }

    /* GGUF parts */
    const char *toks[] = {"a", "b", "ab"};
    size_t lens[] = {1, 1, 2};
    const char *merges[] = {"a b"};
    size_t mlens[] = {3};
    ragd_tokenizer_gguf_parts p = {.model = "llama", .pre = "default", .n_tokens = 3, .tokens = toks, .token_lens = lens,
                                   .n_merges = 1, .merges = merges, .merge_lens = mlens, .bos_id = -1, .eos_id = -1,
                                   .pad_id = -1};
    CHECK_EQ_INT(ragd_tokenizer_load_gguf_parts(&p, &t, &err), RAGD_EUNSUPPORTED);
    CHECK(strstr(ragd_err_msg(&err), "llama") != NULL);
    p.model = "gpt2";
    p.pre = "deepseek-coder";
    CHECK_EQ_INT(ragd_tokenizer_load_gguf_parts(&p, &t, &err), RAGD_EUNSUPPORTED);
    CHECK(strstr(ragd_err_msg(&err), "deepseek-coder") != NULL);
    p.pre = "gpt2";
    p.eos_id = 7;
    CHECK_EQ_INT(ragd_tokenizer_load_gguf_parts(&p, &t, &err), RAGD_EFORMAT);
    p.eos_id = 2;
    CHECK_EQ_INT(ragd_tokenizer_load_gguf_parts(&p, &t, &err), RAGD_OK);

    /* encode / decode errors */
    ragd_tok_ids ids = {0};
    ragd_tokenizer_encode(t, "ab", 2, false, &ids, &err);
    size_t n_ok = ids.n;
    CHECK_EQ_INT(ragd_tokenizer_encode(t, "ab\xC3(", 4, false, &ids, &err), RAGD_EINVAL);
    CHECK(strstr(ragd_err_msg(&err), "byte offset 2") != NULL);
    CHECK_EQ_INT(ids.n, n_ok); /* nothing appended on failure */
    ragd_buf b = {0};
    int32_t badid[] = {0, 3};
    CHECK_EQ_INT(ragd_tokenizer_decode(t, badid, 2, false, &b, &err), RAGD_ERANGE);
    CHECK(strstr(ragd_err_msg(&err), "token id 3") != NULL);
    CHECK_EQ_INT(b.len, 0);
    ragd_tok_stream s = {0};
    CHECK_EQ_INT(ragd_tok_stream_push(t, &s, -5, false, &b, &err), RAGD_ERANGE);
    ragd_buf_free(&b);
    ragd_tok_ids_free(&ids);
    ragd_tokenizer_free(t);
    ragd_err_free(&err);
    TEST_DONE();
}
