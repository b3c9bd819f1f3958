/* tok_regex.c — the Split pre-tokenizer: hand-written matchers for the well-known split regexes, a
 * PCRE2 (JIT) path for any other pattern, literal-string and digit patterns, and HF's split
 * behaviors (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous, invert).
 *
 * The hand-written matchers reproduce the leftmost-first alternation of the regexes exactly, with
 * Oniguruma's classes (\s = White_Space, \p{L}, \p{N}); tests/tokenizer/test_tok_regex.c checks them
 * against PCRE2 on every test text. Each alternative is tried in the regex's order at position i; the
 * whitespace alternatives are resolved by one scan of the whitespace run, so the matchers are linear.
 *
 * PCRE2 gets the pattern with \s / \S rewritten to Oniguruma's White_Space set (PCRE2's \s lacks
 * U+0085), so both paths agree on every input.
 */
#include <stdlib.h>

#include "tokenizer/tok_internal.h"

const char TOK_RE_QWEN2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
const char TOK_RE_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char TOK_RE_GPT2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---------------------------------------------------------------------------------------------- */
/* character classes */

enum { C_O = 0, C_L = 1, C_N = 2, C_WS = 3, C_NL = 4 }; /* other, letter, number, space, CR/LF */

static const uint8_t ascii_class[128] = {
    ['\t'] = C_WS, ['\n'] = C_NL, ['\v'] = C_WS, ['\f'] = C_WS, ['\r'] = C_NL, [' '] = C_WS,
    ['0'] = C_N, ['1'] = C_N, ['2'] = C_N, ['3'] = C_N, ['4'] = C_N, ['5'] = C_N, ['6'] = C_N, ['7'] = C_N,
    ['8'] = C_N, ['9'] = C_N,
    ['A'] = C_L, ['B'] = C_L, ['C'] = C_L, ['D'] = C_L, ['E'] = C_L, ['F'] = C_L, ['G'] = C_L, ['H'] = C_L,
    ['I'] = C_L, ['J'] = C_L, ['K'] = C_L, ['L'] = C_L, ['M'] = C_L, ['N'] = C_L, ['O'] = C_L, ['P'] = C_L,
    ['Q'] = C_L, ['R'] = C_L, ['S'] = C_L, ['T'] = C_L, ['U'] = C_L, ['V'] = C_L, ['W'] = C_L, ['X'] = C_L,
    ['Y'] = C_L, ['Z'] = C_L,
    ['a'] = C_L, ['b'] = C_L, ['c'] = C_L, ['d'] = C_L, ['e'] = C_L, ['f'] = C_L, ['g'] = C_L, ['h'] = C_L,
    ['i'] = C_L, ['j'] = C_L, ['k'] = C_L, ['l'] = C_L, ['m'] = C_L, ['n'] = C_L, ['o'] = C_L, ['p'] = C_L,
    ['q'] = C_L, ['r'] = C_L, ['s'] = C_L, ['t'] = C_L, ['u'] = C_L, ['v'] = C_L, ['w'] = C_L, ['x'] = C_L,
    ['y'] = C_L, ['z'] = C_L,
};

/* Class of the character at s[i] (i < n); *len gets its byte length. */
static inline int cls_at(const uint8_t *s, size_t i, size_t *len) {
    if (s[i] < 0x80) { *len = 1; return ascii_class[s[i]]; }
    uint32_t cp = tok_utf8_decode(s + i, len);
    if (tok_is_letter(cp)) return C_L;
    if (tok_is_number(cp)) return C_N;
    if (tok_is_ws(cp)) return C_WS;
    return C_O;
}

static inline size_t run_class(const uint8_t *s, size_t n, size_t i, int cls) {
    while (i < n) {
        size_t l;
        if (cls_at(s, i, &l) != cls) break;
        i += l;
    }
    return i;
}

static inline int lower(uint8_t c) { return c | 0x20; }

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) after the quote at s[i-1]; returns the end or 0. */
static size_t contraction(const uint8_t *s, size_t n, size_t i, bool icase) {
    if (i >= n) return 0;
    uint8_t c = icase ? (uint8_t)lower(s[i]) : s[i];
    if (c == 's' || c == 't' || c == 'm' || c == 'd') {
        if (icase || s[i] == c) return i + 1;
    }
    if (icase && s[i] == 0xC5 && i + 1 < n && s[i + 1] == 0xBF) return i + 2; /* ſ folds to s */
    if (i + 1 < n && (c == 'r' || c == 'v' || c == 'l')) {
        uint8_t d = icase ? (uint8_t)lower(s[i + 1]) : s[i + 1];
        uint8_t want = c == 'l' ? 'l' : 'e';
        if (d == want && (icase || (s[i] == c && s[i + 1] == want))) return i + 2;
    }
    return 0;
}

size_t tok_known_match(tok_match_kind kind, const uint8_t *s, size_t n, size_t i) {
    size_t l0;
    int c0 = cls_at(s, i, &l0);
    bool gpt2 = kind == TOK_MATCH_GPT2;
    if (s[i] == '\'') {
        size_t e = contraction(s, n, i + 1, !gpt2);
        if (e) return e;
    }
    if (gpt2) {
        if (c0 == C_L || c0 == C_N) return run_class(s, n, i + l0, c0);
        if (c0 == C_O) return run_class(s, n, i + l0, C_O);
        if (s[i] == ' ' && i + 1 < n) {
            size_t l1;
            int c1 = cls_at(s, i + 1, &l1);
            if (c1 == C_L || c1 == C_N || c1 == C_O) return run_class(s, n, i + 1 + l1, c1);
        }
    } else {
        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        if (c0 == C_L) return run_class(s, n, i + l0, C_L);
        if ((c0 == C_O || c0 == C_WS) && i + l0 < n) {
            size_t l1;
            if (cls_at(s, i + l0, &l1) == C_L) return run_class(s, n, i + l0 + l1, C_L);
        }
        /* \p{N} or \p{N}{1,3} */
        if (c0 == C_N) {
            size_t e = i + l0;
            if (kind == TOK_MATCH_LLAMA3) {
                for (int k = 0; k < 2 && e < n; k++) {
                    size_t l;
                    if (cls_at(s, e, &l) != C_N) break;
                    e += l;
                }
            }
            return e;
        }
        /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
        size_t j = i;
        int cj = c0;
        size_t lj = l0;
        if (s[i] == ' ' && i + 1 < n) {
            size_t l1;
            if (cls_at(s, i + 1, &l1) == C_O) { j = i + 1; cj = C_O; lj = l1; }
        }
        if (cj == C_O) {
            size_t e = run_class(s, n, j + lj, C_O);
            while (e < n && (s[e] == '\r' || s[e] == '\n')) e++;
            return e;
        }
    }
    /* whitespace: c0 is C_WS or C_NL. One scan of the run gives its end, the start of its last
     * character and the end of its last CR/LF. */
    size_t e = i, last = i, nl_end = 0;
    while (e < n) {
        size_t l;
        int c = cls_at(s, e, &l);
        if (c != C_WS && c != C_NL) break;
        if (c == C_NL) nl_end = e + 1;
        last = e;
        e += l;
    }
    if (!gpt2 && nl_end) return nl_end;          /* \s*[\r\n]+ */
    if (e == n) return e;                        /* \s+(?!\S) at the end */
    if (last > i) return last;                   /* \s+(?!\S): all but the last space */
    return e;                                    /* \s+ */
}

/* ---------------------------------------------------------------------------------------------- */
/* PCRE2 */

#define WS_CLASS "\\t-\\r\\x20\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

ragd_status tok_pre_compile_regex(tok_pre *p, const char *pattern, size_t len, ragd_err *err) {
    ragd_buf b = {0};
    bool in_class = false;
    for (size_t i = 0; i < len; i++) {
        char c = pattern[i];
        if (c == '\\' && i + 1 < len) {
            char d = pattern[i + 1];
            if (d == 's') ragd_buf_puts(&b, in_class ? WS_CLASS : "[" WS_CLASS "]");
            else if (d == 'S' && !in_class) ragd_buf_puts(&b, "[^" WS_CLASS "]");
            else { ragd_buf_putc(&b, c); ragd_buf_putc(&b, d); }
            i++;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = true;
            ragd_buf_putc(&b, c);
            if (i + 1 < len && pattern[i + 1] == '^') { ragd_buf_putc(&b, '^'); i++; }
            if (i + 1 < len && pattern[i + 1] == ']') { ragd_buf_putc(&b, ']'); i++; }
            continue;
        }
        if (c == ']' && in_class) in_class = false;
        ragd_buf_putc(&b, c);
    }
    int ec;
    PCRE2_SIZE eo;
    p->re = pcre2_compile((PCRE2_SPTR)b.data, b.len, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    ragd_buf_free(&b);
    if (!p->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "Split regex %.*s: %s", (int)len, pattern, (char *)msg);
    }
    pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT fails */
    p->match = TOK_MATCH_PCRE2;
    return RAGD_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* splitting */

static inline void push3(size_t **v, size_t *cap, size_t *nv, size_t a, size_t b, size_t m) {
    if (*nv + 3 > *cap) {
        *cap = *cap ? *cap * 2 : 192;
        *v = ragd_xrealloc(*v, *cap * sizeof **v);
    }
    (*v)[*nv] = a; (*v)[*nv + 1] = b; (*v)[*nv + 2] = m;
    *nv += 3;
}

static ragd_status raw_matches(const tok_pre *p, const uint8_t *s, size_t n, size_t **v, size_t *cap, size_t *nv,
                               ragd_err *err) {
    size_t prev = 0;
    switch (p->match) {
    case TOK_MATCH_QWEN2: case TOK_MATCH_LLAMA3: case TOK_MATCH_GPT2:
        for (size_t i = 0; i < n;) {
            size_t e = tok_known_match(p->match, s, n, i);
            push3(v, cap, nv, i, e, 1);
            i = e;
        }
        return RAGD_OK;
    case TOK_MATCH_DIGIT:
        for (size_t i = 0; i < n;) {
            size_t l;
            uint32_t cp = tok_utf8_decode(s + i, &l);
            if (tok_is_numeric(cp)) {
                if (prev < i) push3(v, cap, nv, prev, i, 0);
                push3(v, cap, nv, i, i + l, 1);
                prev = i + l;
            }
            i += l;
        }
        break;
    case TOK_MATCH_STRING:
        if (p->str_len) {
            for (size_t i = 0; i + p->str_len <= n;) {
                const uint8_t *f = memmem(s + i, n - i, p->str, p->str_len);
                if (!f) break;
                size_t a = (size_t)(f - s);
                if (prev < a) push3(v, cap, nv, prev, a, 0);
                push3(v, cap, nv, a, a + p->str_len, 1);
                prev = i = a + p->str_len;
            }
        }
        break;
    case TOK_MATCH_PCRE2: {
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        if (!md) return ragd_err_set(err, RAGD_ENOMEM, "out of memory in Split regex");
        size_t i = 0;
        while (i <= n) {
            int rc = pcre2_match(p->re, s, n, i, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                pcre2_match_data_free(md);
                return ragd_err_set(err, RAGD_EINVAL, "Split regex failed with PCRE2 error %d", rc);
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t a = ov[0], e = ov[1];
            if (prev < a) push3(v, cap, nv, prev, a, 0);
            push3(v, cap, nv, a, e, 1);
            prev = e;
            if (e > a) i = e;
            else {
                if (e >= n) break;
                size_t l;
                tok_utf8_decode(s + e, &l);
                i = e + l;
            }
        }
        pcre2_match_data_free(md);
        break;
    }
    }
    if (prev < n) push3(v, cap, nv, prev, n, 0);
    return RAGD_OK;
}

ragd_status tok_split_apply(const tok_pre *p, const uint8_t *s, size_t n, size_t **v, size_t *cap, size_t *nv,
                            ragd_err *err) {
    size_t base = *nv;
    ragd_status st = raw_matches(p, s, n, v, cap, nv, err);
    if (st) return st;
    size_t *a = *v + base;
    size_t cnt = (*nv - base) / 3, w = 0;
    if (p->invert)
        for (size_t k = 0; k < cnt; k++) a[3 * k + 2] ^= 1;
    bool prev_match = false;
    switch (p->behavior) {
    case TOK_SPLIT_ISOLATED: w = cnt; break;
    case TOK_SPLIT_REMOVED:
        for (size_t k = 0; k < cnt; k++)
            if (!a[3 * k + 2]) { memmove(a + 3 * w, a + 3 * k, 3 * sizeof *a); w++; }
        break;
    case TOK_SPLIT_MERGED_WITH_PREVIOUS:
        for (size_t k = 0; k < cnt; k++) {
            bool m = a[3 * k + 2];
            if (m && !prev_match && w) a[3 * (w - 1) + 1] = a[3 * k + 1];
            else { memmove(a + 3 * w, a + 3 * k, 3 * sizeof *a); a[3 * w + 2] = m && !prev_match; w++; }
            prev_match = m;
        }
        break;
    case TOK_SPLIT_MERGED_WITH_NEXT: {
        /* fold from the end, writing from the end */
        size_t top = cnt;
        for (size_t k = cnt; k-- > 0;) {
            bool m = a[3 * k + 2];
            if (m && !prev_match && top < cnt) a[3 * top] = a[3 * k];
            else { top--; memmove(a + 3 * top, a + 3 * k, 3 * sizeof *a); }
            prev_match = m;
        }
        w = cnt - top;
        memmove(a, a + 3 * top, 3 * w * sizeof *a);
        break;
    }
    case TOK_SPLIT_CONTIGUOUS:
        for (size_t k = 0; k < cnt; k++) {
            bool m = a[3 * k + 2];
            if (m == prev_match && w) a[3 * (w - 1) + 1] = a[3 * k + 1];
            else { memmove(a + 3 * w, a + 3 * k, 3 * sizeof *a); w++; }
            prev_match = m;
        }
        break;
    }
    /* drop empty pieces */
    size_t w2 = 0;
    for (size_t k = 0; k < w; k++)
        if (a[3 * k + 1] > a[3 * k]) { memmove(a + 3 * w2, a + 3 * k, 3 * sizeof *a); w2++; }
    *nv = base + 3 * w2;
    return RAGD_OK;
}
