/* tok_normalize.c — normalizers (NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Replace with a
 * literal pattern, Prepend), applied in order to one segment of valid UTF-8; the result lands in
 * ws->norm.
 *
 * Unicode forms use utf8proc into per-thread buffers (no allocation once warm). ASCII needs no work:
 * no composition has an ASCII second character, so text can be cut before any ASCII byte and only the
 * non-ASCII spans (plus the ASCII character before each, which may compose with a following mark)
 * go through utf8proc.
 * Lowercase follows Rust's char::to_lowercase (full mapping: U+0130 → "i̇"; HF's table where newer
 * than utf8proc's); StripAccents drops what HF's is_combining_mark accepts (tok_unicode.c). Code points
 * HF's older normalization tables do not know (tok_norm_inert) are passed through untouched.
 */
#include <stdlib.h>

#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

static ragd_status uform(tok_ws *ws, const uint8_t *s, size_t n, utf8proc_option_t opt, ragd_buf *out,
                         ragd_err *err) {
    for (;;) {
        utf8proc_ssize_t r = utf8proc_decompose(s, (utf8proc_ssize_t)n, ws->cp, (utf8proc_ssize_t)ws->cp_cap, opt);
        if (r < 0) return ragd_err_set(err, RAGD_EINVAL, "normalizer: %s", utf8proc_errmsg(r));
        if ((size_t)r > ws->cp_cap) {
            ws->cp_cap = (size_t)r + 64;
            ws->cp = ragd_xrealloc(ws->cp, ws->cp_cap * sizeof *ws->cp);
            continue;
        }
        utf8proc_ssize_t m = utf8proc_reencode(ws->cp, r, opt);
        if (m < 0) return ragd_err_set(err, RAGD_EINVAL, "normalizer: %s", utf8proc_errmsg(m));
        ragd_buf_append(out, ws->cp, (size_t)m);
        return RAGD_OK;
    }
}

/* Normalizes a span that holds no inert code point; cuts it further at those that it holds. HF's
 * tables (an older Unicode) treat them as unassigned: starters that neither decompose nor compose, so
 * normalization never acts across them and cutting there is exact. */
static ragd_status uform_cut(tok_ws *ws, const uint8_t *s, size_t n, utf8proc_option_t opt, ragd_buf *out,
                             ragd_err *err) {
    bool compat = opt & UTF8PROC_COMPAT;
    size_t start = 0;
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t cp = tok_utf8_decode(s + i, &l);
        if (cp >= 0x7FD && tok_norm_inert(cp, compat)) {
            if (i > start) {
                ragd_status st = uform(ws, s + start, i - start, opt, out, err);
                if (st) return st;
            }
            ragd_buf_append(out, s + i, l);
            start = i + l;
        }
        i += l;
    }
    return start < n ? uform(ws, s + start, n - start, opt, out, err) : RAGD_OK;
}

static ragd_status unicode_form(tok_ws *ws, const uint8_t *s, size_t n, utf8proc_option_t opt, ragd_buf *out,
                                ragd_err *err) {
    size_t i = 0;
    while (i < n) {
        size_t p = i;
        while (p < n && s[p] < 0x80) p++;
        if (p == n) { ragd_buf_append(out, s + i, n - i); break; }
        size_t a = p > i ? p - 1 : p; /* include the ASCII character before the span */
        ragd_buf_append(out, s + i, a - i);
        size_t e = p;
        while (e < n && s[e] >= 0x80) e++;
        ragd_status st = uform_cut(ws, s + a, e - a, opt, out, err);
        if (st) return st;
        i = e;
    }
    return RAGD_OK;
}

static void lowercase(const uint8_t *s, size_t n, ragd_buf *out) {
    ragd_buf_reserve(out, n + 8);
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) {
            uint8_t c = s[i++];
            ragd_buf_putc(out, (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c));
            continue;
        }
        size_t l;
        uint32_t cp = tok_utf8_decode(s + i, &l);
        i += l;
        char enc[8];
        if (cp == 0x130) { ragd_buf_append(out, "i\xCC\x87", 3); continue; }
        uint32_t lc = tok_lower_exception(cp);
        if (!lc) lc = (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
        ragd_buf_append(out, enc, tok_utf8_encode(lc, enc));
    }
}

static void strip_accents(const uint8_t *s, size_t n, ragd_buf *out) {
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t cp = tok_utf8_decode(s + i, &l);
        if (!tok_is_mark(cp)) ragd_buf_append(out, s + i, l);
        i += l;
    }
}

static void replace(const tok_norm *nm, const uint8_t *s, size_t n, ragd_buf *out) {
    size_t i = 0;
    while (i < n) {
        const uint8_t *f = nm->pattern_len ? memmem(s + i, n - i, nm->pattern, nm->pattern_len) : NULL;
        if (!f) break;
        size_t a = (size_t)(f - s);
        ragd_buf_append(out, s + i, a - i);
        ragd_buf_append(out, nm->content, nm->content_len);
        i = a + nm->pattern_len;
    }
    ragd_buf_append(out, s + i, n - i);
}

static ragd_status replace_re(tok_ws *ws, const tok_norm *nm, const uint8_t *s, size_t n, ragd_buf *out,
                              ragd_err *err) {
    if (!ws->md) ws->md = pcre2_match_data_create(1, NULL);
    if (!ws->md) return ragd_err_set(err, RAGD_ENOMEM, "out of memory in the Replace normalizer");
    pcre2_match_data *md = ws->md;
    size_t i = 0, last = 0;
    while (i <= n) {
        int rc = pcre2_match(nm->re, s, n, i, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        ragd_buf_append(out, s + last, ov[0] - last);
        ragd_buf_append(out, nm->content, nm->content_len);
        last = ov[1];
        if (ov[1] == ov[0]) { /* empty match: step one character */
            if (ov[1] >= n) break;
            size_t l;
            tok_utf8_decode(s + ov[1], &l);
            ragd_buf_append(out, s + ov[1], l);
            last = ov[1] + l;
        }
        i = last;
    }
    ragd_buf_append(out, s + last, n - last);
    return RAGD_OK;
}

static void strip_ws(const tok_norm *nm, const uint8_t *s, size_t n, ragd_buf *out) {
    size_t a = 0, b = n;
    while (nm->left && a < b) {
        size_t l;
        if (!tok_is_rust_ws(tok_utf8_decode(s + a, &l))) break;
        a += l;
    }
    while (nm->right && b > a) {
        size_t q = b - 1;
        while (q > a && (s[q] & 0xC0) == 0x80) q--;
        size_t l;
        if (!tok_is_rust_ws(tok_utf8_decode(s + q, &l))) break;
        b = q;
    }
    ragd_buf_append(out, s + a, b - a);
}

/* BertNormalizer clean_text: drop NUL, U+FFFD and "control" characters; White_Space (and \t \n \r) → ' ' */
static void bert_clean(const uint8_t *s, size_t n, ragd_buf *out) {
    ragd_buf_reserve(out, n);
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) {
            uint8_t c = s[i++];
            if (c == '\t' || c == '\n' || c == '\r' || c == ' ') ragd_buf_putc(out, ' ');
            else if (c >= 0x20 && c < 0x7F) ragd_buf_putc(out, (char)c);
            else if (!tok_is_bert_drop(c)) ragd_buf_putc(out, tok_is_bert_space(c) ? ' ' : (char)c);
            continue;
        }
        size_t l;
        uint32_t cp = tok_utf8_decode(s + i, &l);
        if (tok_is_bert_drop(cp)) {}
        else if (tok_is_bert_space(cp)) ragd_buf_putc(out, ' ');
        else ragd_buf_append(out, s + i, l);
        i += l;
    }
}

static void bert_chinese(const uint8_t *s, size_t n, ragd_buf *out) {
    ragd_buf_reserve(out, n);
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t cp = s[i] < 0x80 ? (l = 1, s[i]) : tok_utf8_decode(s + i, &l);
        if (tok_is_chinese(cp)) {
            ragd_buf_putc(out, ' ');
            ragd_buf_append(out, s + i, l);
            ragd_buf_putc(out, ' ');
        } else {
            ragd_buf_append(out, s + i, l);
        }
        i += l;
    }
}

static void drop_mn(const uint8_t *s, size_t n, ragd_buf *out) {
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t cp = tok_utf8_decode(s + i, &l);
        if (cp < 0x80 || !tok_is_bert_mn(cp)) ragd_buf_append(out, s + i, l);
        i += l;
    }
}

ragd_status tok_normalize(const ragd_tokenizer *t, tok_ws *ws, const char *text, size_t n, ragd_err *err) {
    ragd_buf *cur = &ws->norm, *nxt = &ws->norm2; /* the two alternate; the result ends in ws->norm */
    ragd_buf_reset(cur);
    ragd_buf_append(cur, text, n);
    for (size_t k = 0; k < t->n_norms; k++) {
        const tok_norm *nm = &t->norms[k];
        ragd_buf_reset(nxt);
        const uint8_t *s = (const uint8_t *)cur->data;
        size_t len = cur->len;
        ragd_status st = RAGD_OK;
        switch (nm->kind) {
        case TOK_NORM_NFC: st = unicode_form(ws, s, len, UTF8PROC_STABLE | UTF8PROC_COMPOSE, nxt, err); break;
        case TOK_NORM_NFD: st = unicode_form(ws, s, len, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE, nxt, err); break;
        case TOK_NORM_NFKC:
            st = unicode_form(ws, s, len, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT, nxt, err);
            break;
        case TOK_NORM_NFKD:
            st = unicode_form(ws, s, len, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, nxt, err);
            break;
        case TOK_NORM_LOWERCASE: lowercase(s, len, nxt); break;
        case TOK_NORM_STRIP_ACCENTS: strip_accents(s, len, nxt); break;
        case TOK_NORM_REPLACE: replace(nm, s, len, nxt); break;
        case TOK_NORM_PREPEND:
            if (len) ragd_buf_append(nxt, nm->content, nm->content_len);
            ragd_buf_append(nxt, s, len);
            break;
        case TOK_NORM_REPLACE_RE: st = replace_re(ws, nm, s, len, nxt, err); break;
        case TOK_NORM_STRIP: strip_ws(nm, s, len, nxt); break;
        case TOK_NORM_BERT_CLEAN: bert_clean(s, len, nxt); break;
        case TOK_NORM_BERT_CHINESE: bert_chinese(s, len, nxt); break;
        case TOK_NORM_BERT_STRIP: {
            ragd_buf *tmp = &ws->norm3;
            ragd_buf_reset(tmp);
            st = unicode_form(ws, s, len, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE, tmp, err);
            if (!st) drop_mn((const uint8_t *)tmp->data, tmp->len, nxt);
            break;
        }
        case TOK_NORM_PRECOMPILED: tok_charsmap_apply(nm->cmap, s, len, nxt); break;
        }
        if (st) return st;
        ragd_buf sw = *cur; *cur = *nxt; *nxt = sw;
    }
    return RAGD_OK;
}
