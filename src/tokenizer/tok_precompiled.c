/* tok_precompiled.c — the `Precompiled` normalizer: a SentencePiece charsmap (XLM-R, mBART, T5 ...)
 * applied exactly as Hugging Face `tokenizers` (spm_precompiled + normalizers/precompiled.rs) does.
 *
 * The blob (base64 in tokenizer.json) is: u32 little-endian trie size in bytes, that many bytes of
 * darts-clone double-array units (u32 LE), then the replacement strings, each ended by NUL. A unit
 * holds: bit 8 has_leaf; label = unit & (1<<31 | 0xFF); offset = (unit >> 10) << ((unit & 1<<9) >> 6);
 * a leaf's value (unit & 0x7FFFFFFF) is a byte index into the strings.
 *
 * HF's rule, quirks included: the text is cut into extended grapheme clusters; a cluster shorter than
 * 6 bytes whose bytes start with a key (the SHORTEST key that prefixes it: the first result of a
 * common-prefix search) is replaced whole by that key's string; otherwise each character is looked up
 * the same way and replaced, or kept. Grapheme clusters come from utf8proc (HF uses the
 * unicode-segmentation crate; see docs/modules/tokenizer.md for the version note).
 *
 * Hostile blobs: every array index is bounds-checked during the search (an index out of range is "no
 * match"); a value outside the strings or not at a character boundary yields "" (HF would panic).
 * So the output is always valid UTF-8.
 */
#include <stdlib.h>

#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

struct tok_charsmap {
    uint32_t *arr; size_t n;  /* double-array units */
    char *norm; size_t norm_len;
    int32_t ascii[128];       /* transform of the one-byte key c: string index or -1 (c = 0: -1) */
};

static int b64v(uint8_t c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Standard base64 with padding (as Rust's BASE64_STANDARD). */
static ragd_status b64_decode(const char *s, size_t n, uint8_t **out, size_t *out_len, ragd_err *err) {
    if (n % 4) return ragd_err_set(err, RAGD_EFORMAT, "precompiled_charsmap: base64 length %zu is not a multiple of 4", n);
    uint8_t *o = ragd_xmalloc(n / 4 * 3 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            uint8_t c = (uint8_t)s[i + j];
            if (c == '=' && i + 4 == n && j >= 2) { v[j] = 0; pad++; continue; }
            v[j] = b64v(c);
            if (v[j] < 0 || pad) {
                free(o);
                return ragd_err_set(err, RAGD_EFORMAT, "precompiled_charsmap: invalid base64 at byte %zu", i + j);
            }
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        o[k++] = (uint8_t)(x >> 16);
        if (pad < 2) o[k++] = (uint8_t)(x >> 8);
        if (pad < 1) o[k++] = (uint8_t)x;
    }
    *out = o;
    *out_len = k;
    return RAGD_OK;
}

static inline size_t u_offset(uint32_t u) { return (size_t)(u >> 10) << ((u & (1u << 9)) >> 6); }

/* The value of the shortest key that prefixes k[0..n) (stopping at a NUL byte), or -1. */
static int64_t first_match(const tok_charsmap *m, const uint8_t *k, size_t n) {
    size_t pos = u_offset(m->arr[0]);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = k[i];
        if (!c) break;
        pos ^= c;
        if (pos >= m->n) return -1;
        uint32_t u = m->arr[pos];
        if ((u & ((1u << 31) | 0xFF)) != c) return -1;
        pos ^= u_offset(u);
        if ((u >> 8) & 1) {
            if (pos >= m->n) return -1;
            return m->arr[pos] & 0x7FFFFFFFu;
        }
    }
    return -1;
}

/* Appends the replacement string at index v (see the file comment for bad indices). */
static void put_norm(const tok_charsmap *m, int64_t v, ragd_buf *out) {
    if (v < 0 || (size_t)v >= m->norm_len || ((uint8_t)m->norm[v] & 0xC0) == 0x80) return;
    const char *p = m->norm + v;
    ragd_buf_append(out, p, strnlen(p, m->norm_len - (size_t)v));
}

ragd_status tok_charsmap_parse(const char *b64, size_t len, tok_charsmap **out, ragd_err *err) {
    uint8_t *raw = NULL;
    size_t n = 0;
    ragd_status st = b64_decode(b64, len, &raw, &n, err);
    if (st) return st;
    if (n < 4) { free(raw); return ragd_err_set(err, RAGD_EFORMAT, "precompiled_charsmap: shorter than its header"); }
    uint32_t tsize = (uint32_t)raw[0] | (uint32_t)raw[1] << 8 | (uint32_t)raw[2] << 16 | (uint32_t)raw[3] << 24;
    size_t units = tsize / 4;
    if (units == 0 || units > (n - 4) / 4) {
        free(raw);
        return ragd_err_set(err, RAGD_EFORMAT, "precompiled_charsmap: trie size %u does not fit the %zu-byte blob",
                            tsize, n);
    }
    tok_charsmap *m = ragd_xcalloc(1, sizeof *m);
    m->n = units;
    m->arr = ragd_xmalloc(units * sizeof *m->arr);
    for (size_t i = 0; i < units; i++) {
        const uint8_t *p = raw + 4 + 4 * i;
        m->arr[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    }
    size_t off = 4 + 4 * units;
    m->norm_len = n - off;
    m->norm = ragd_xmalloc(m->norm_len + 1);
    memcpy(m->norm, raw + off, m->norm_len);
    m->norm[m->norm_len] = 0;
    free(raw);
    if (!ragd_utf8_valid(m->norm, m->norm_len, NULL)) {
        tok_charsmap_free(m);
        return ragd_err_set(err, RAGD_EFORMAT, "precompiled_charsmap: normalized strings are not valid UTF-8");
    }
    for (int c = 0; c < 128; c++) {
        uint8_t b = (uint8_t)c;
        m->ascii[c] = c ? (int32_t)first_match(m, &b, 1) : -1;
    }
    *out = m;
    return RAGD_OK;
}

void tok_charsmap_free(tok_charsmap *m) {
    if (!m) return;
    free(m->arr);
    free(m->norm);
    free(m);
}

void tok_charsmap_apply(const tok_charsmap *m, const uint8_t *s, size_t n, ragd_buf *out) {
    ragd_buf_reserve(out, n);
    utf8proc_int32_t state = 0;
    size_t i = 0;
    while (i < n) {
        /* fast path: an ASCII character followed by ASCII (not CR LF) is a cluster of its own */
        if (s[i] < 0x80 && (i + 1 == n || (s[i + 1] < 0x80 && !(s[i] == '\r' && s[i + 1] == '\n')))) {
            int32_t v = m->ascii[s[i]];
            if (v >= 0) put_norm(m, v, out);
            else ragd_buf_putc(out, (char)s[i]);
            i++;
            state = 0;
            continue;
        }
        size_t l;
        uint32_t cp = tok_utf8_decode(s + i, &l);
        size_t j = i + l;
        while (j < n) {
            size_t l2;
            uint32_t cp2 = tok_utf8_decode(s + j, &l2);
            if (utf8proc_grapheme_break_stateful((utf8proc_int32_t)cp, (utf8proc_int32_t)cp2, &state)) break;
            cp = cp2;
            j += l2;
        }
        if (j - i < 6) {
            int64_t v = first_match(m, s + i, j - i);
            if (v >= 0) { put_norm(m, v, out); i = j; continue; }
        }
        for (size_t k = i; k < j;) {
            size_t lc;
            tok_utf8_decode(s + k, &lc);
            int64_t v = first_match(m, s + k, lc);
            if (v >= 0) put_norm(m, v, out);
            else ragd_buf_append(out, s + k, lc);
            k += lc;
        }
        i = j;
    }
}
