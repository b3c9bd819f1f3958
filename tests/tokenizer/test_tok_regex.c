/* test_tok_regex.c — differential test: the hand-written matchers for the Qwen2, Llama-3 and GPT-2
 * split regexes must cut every text exactly where PCRE2 (with Oniguruma's \s) cuts it. Texts: all
 * public and committed case texts, plus 200,000 random strings over characters chosen to hit every
 * alternative (quotes and contraction letters incl. ſ, CR/LF, Unicode spaces incl. U+0085, letters,
 * numbers of all three categories, marks, symbols, emoji). */
#include <stdlib.h>

#include "tok_test_util.h"
#include "tokenizer/tok_internal.h"

static const char *const ALPHABET[] = {
    " ", " ", " ", "\n", "\r", "\t", "\v", "\f", "a", "b", "Z", "s", "S", "t", "T", "r", "e", "E", "v", "V", "m",
    "M", "l", "L", "d", "D", "'", "'", "\xC5\xBF" /* ſ */, "0", "7", "\xD9\xA3" /* ٣ */, "\xC2\xBD" /* ½ */,
    "\xE2\x85\xAB" /* Ⅻ */, "!", ".", "-", "_", "(", "\"", "\xC2\xA0", "\xC2\x85", "\xE3\x80\x80", "\xE2\x80\xA8",
    "\xE2\x80\x8B", "\xC3\xA9", "\xCC\x81" /* U+0301 */, "\xE6\x97\xA5" /* 日 */, "\xF0\x9F\x98\x80" /* 😀 */,
    "\xD8\xB9" /* ع */, "\xE0\xA4\xA8" /* न */, "\xE0\xA5\x8D" /* virama */, "\xE2\x82\xAC" /* € */, "$", "<", "|",
};

/* PCRE2's Unicode tables (14.0 in 10.42) are older than Oniguruma's in HF (16.0), which the hand-written
 * matchers follow (tok_unicode.c); texts with a code point the two classify differently are skipped
 * here — the committed HF references cover them. */
static pcre2_code *re_l, *re_n;
static bool same_unicode(const char *s, size_t n) {
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    bool ok = true;
    for (size_t i = 0; i < n && ok;) {
        size_t l;
        uint32_t cp = tok_utf8_decode((const uint8_t *)s + i, &l);
        if (cp >= 0x80) {
            bool pl = pcre2_match(re_l, (PCRE2_SPTR)s + i, l, 0, 0, md, NULL) >= 0;
            bool pn = pcre2_match(re_n, (PCRE2_SPTR)s + i, l, 0, 0, md, NULL) >= 0;
            ok = pl == tok_is_letter(cp) && pn == tok_is_number(cp);
        }
        i += l;
    }
    pcre2_match_data_free(md);
    return ok;
}

static int compare(const tok_pre *known, const tok_pre *re, const char *s, size_t n, const char *what) {
    size_t *a = NULL, *b = NULL, ca = 0, cb = 0, na = 0, nb = 0;
    ragd_err err = {0};
    CHECK_EQ_INT(tok_split_apply(known, (const uint8_t *)s, n, &a, &ca, &na, &err), RAGD_OK);
    CHECK_EQ_INT(tok_split_apply(re, (const uint8_t *)s, n, &b, &cb, &nb, &err), RAGD_OK);
    int bad = na != nb || (na && memcmp(a, b, na * sizeof *a));
    if (bad) {
        t_failed++;
        fprintf(stderr, "%s: splits differ on \"", what);
        for (size_t i = 0; i < n && i < 80; i++) fprintf(stderr, (unsigned char)s[i] < 0x20 ? "\\x%02x" : "%c", (unsigned char)s[i]);
        fprintf(stderr, "\"\n  known:");
        for (size_t i = 0; i < na; i += 3) fprintf(stderr, " [%zu,%zu)", a[i], a[i + 1]);
        fprintf(stderr, "\n  pcre2:");
        for (size_t i = 0; i < nb; i += 3) fprintf(stderr, " [%zu,%zu)", b[i], b[i + 1]);
        fprintf(stderr, "\n");
    } else t_passed++;
    free(a);
    free(b);
    ragd_err_free(&err);
    return bad;
}

static void add_texts(json_t *all, const char *path) {
    json_t *c = load_jsonl(path);
    CHECK(c != NULL);
    size_t i;
    json_t *x;
    json_array_foreach(c, i, x) {
        json_t *t = json_object_get(x, "text");
        if (json_is_string(t)) json_array_append(all, t);
    }
    json_decref(c);
}

int main(void) {
    static const struct { tok_match_kind kind; const char *re; const char *name; } kinds[] = {
        {TOK_MATCH_QWEN2, TOK_RE_QWEN2, "qwen2"}, {TOK_MATCH_LLAMA3, TOK_RE_LLAMA3, "llama3"},
        {TOK_MATCH_GPT2, TOK_RE_GPT2, "gpt2"},
    };
    int ec;
    PCRE2_SIZE eo;
    re_l = pcre2_compile((PCRE2_SPTR) "^\\p{L}$", PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    re_n = pcre2_compile((PCRE2_SPTR) "^\\p{N}$", PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    RAGD_ASSERT(re_l && re_n);
    json_t *texts = json_array();
    char *p = shared_path("cases/tokenizer/qwen3_public.jsonl");
    add_texts(texts, p);
    free(p);
    const char *files[] = {"tests/tokenizer/cases/qwen3.jsonl", "tests/tokenizer/cases/smol.jsonl"};
    for (int k = 0; k < 2; k++) {
        p = src_path(files[k]);
        add_texts(texts, p);
        free(p);
    }
    printf("%zu case texts\n", json_array_size(texts));
    ragd_buf s = {0};
    for (size_t k = 0; k < 3; k++) {
        tok_pre known = {.kind = TOK_PRE_SPLIT, .match = kinds[k].kind, .behavior = TOK_SPLIT_ISOLATED};
        tok_pre re = {.kind = TOK_PRE_SPLIT, .behavior = TOK_SPLIT_ISOLATED};
        ragd_err err = {0};
        CHECK_EQ_INT(tok_pre_compile_regex(&re, kinds[k].re, strlen(kinds[k].re), &err), RAGD_OK);
        int bad = 0;
        size_t i;
        json_t *t;
        size_t skipped = 0;
        json_array_foreach(texts, i, t) {
            if (!same_unicode(json_string_value(t), json_string_length(t))) { skipped++; continue; }
            bad += compare(&known, &re, json_string_value(t), json_string_length(t), kinds[k].name);
        }
        CHECK(skipped < 40);
        uint64_t x = 0x1234567 + k;
        size_t na = sizeof ALPHABET / sizeof ALPHABET[0];
        for (int r = 0; r < 200000 && bad < 10; r++) {
            ragd_buf_reset(&s);
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            size_t len = (x >> 40) % 24;
            for (size_t j = 0; j < len; j++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                ragd_buf_puts(&s, ALPHABET[(x >> 33) % na]);
            }
            bad += compare(&known, &re, s.data ? s.data : "", s.len, kinds[k].name);
        }
        printf("%s: %d differences\n", kinds[k].name, bad);
        pcre2_code_free(re.re);
        ragd_err_free(&err);
    }
    ragd_buf_free(&s);
    pcre2_code_free(re_l);
    pcre2_code_free(re_n);
    json_decref(texts);
    TEST_DONE();
}
