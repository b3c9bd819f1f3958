/* tok_unicode.c — Unicode classes and normalization exceptions exactly as HF `tokenizers` sees them,
 * from the tables generated into tok_unicode_data.c (tools/tok_gen_unicode.py).
 *
 * A 64 KiB flag table covers the BMP; it is filled once at program start (a constructor: read-only
 * afterwards, no locking on the hot path). Astral code points are looked up by binary search.
 */
#include <stdlib.h>

#include "tokenizer/tok_internal.h"

extern const uint32_t tok_uni_letter[][2], tok_uni_number[][2], tok_uni_numeric[][2], tok_uni_mark[][2],
    tok_uni_word[][2];
extern const size_t tok_uni_letter_n, tok_uni_number_n, tok_uni_numeric_n, tok_uni_mark_n, tok_uni_word_n;
extern const uint32_t tok_uni_norm_inert[], tok_uni_norm_inert_compat[];
extern const size_t tok_uni_norm_inert_n, tok_uni_norm_inert_compat_n;
extern const uint32_t tok_uni_lower[][2];
extern const size_t tok_uni_lower_n;

enum { F_L = 1, F_N = 2, F_NUM = 4, F_MARK = 8, F_INERT = 16, F_INERT_COMPAT = 32, F_LOWER = 64, F_WORD = 128 };

static uint8_t bmp[0x10000];

static void set_ranges(const uint32_t (*r)[2], size_t n, uint8_t flag) {
    for (size_t i = 0; i < n; i++)
        for (uint32_t c = r[i][0]; c <= r[i][1] && c < 0x10000; c++) bmp[c] |= flag;
}

static void set_list(const uint32_t *v, size_t n, uint8_t flag) {
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x10000) bmp[v[i]] |= flag;
}

__attribute__((constructor)) static void tok_unicode_init(void) {
    set_ranges(tok_uni_letter, tok_uni_letter_n, F_L);
    set_ranges(tok_uni_number, tok_uni_number_n, F_N);
    set_ranges(tok_uni_numeric, tok_uni_numeric_n, F_NUM);
    set_ranges(tok_uni_mark, tok_uni_mark_n, F_MARK);
    set_ranges(tok_uni_word, tok_uni_word_n, F_WORD);
    set_list(tok_uni_norm_inert, tok_uni_norm_inert_n, F_INERT);
    set_list(tok_uni_norm_inert_compat, tok_uni_norm_inert_compat_n, F_INERT_COMPAT);
    for (size_t i = 0; i < tok_uni_lower_n; i++)
        if (tok_uni_lower[i][0] < 0x10000) bmp[tok_uni_lower[i][0]] |= F_LOWER;
}

static bool in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid][0]) hi = mid;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return true;
    }
    return false;
}

static bool in_list(const uint32_t *v, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < v[mid]) hi = mid;
        else if (cp > v[mid]) lo = mid + 1;
        else return true;
    }
    return false;
}

bool tok_is_letter(uint32_t cp) {
    if (cp < 0x80) return ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z');
    if (cp < 0x10000) return bmp[cp] & F_L;
    return in_ranges(tok_uni_letter, tok_uni_letter_n, cp);
}

bool tok_is_number(uint32_t cp) {
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    if (cp < 0x10000) return bmp[cp] & F_N;
    return in_ranges(tok_uni_number, tok_uni_number_n, cp);
}

bool tok_is_numeric(uint32_t cp) {
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    if (cp < 0x10000) return bmp[cp] & F_NUM;
    return in_ranges(tok_uni_numeric, tok_uni_numeric_n, cp);
}

bool tok_is_word(uint32_t cp) {
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') || cp == '_';
    if (cp < 0x10000) return bmp[cp] & F_WORD;
    return in_ranges(tok_uni_word, tok_uni_word_n, cp);
}

bool tok_is_mark(uint32_t cp) {
    if (cp < 0x80) return false;
    if (cp < 0x10000) return bmp[cp] & F_MARK;
    return in_ranges(tok_uni_mark, tok_uni_mark_n, cp);
}

bool tok_norm_inert(uint32_t cp, bool compat) {
    if (cp < 0x10000) return bmp[cp] & (compat ? (F_INERT | F_INERT_COMPAT) : F_INERT);
    return in_list(tok_uni_norm_inert, tok_uni_norm_inert_n, cp) ||
           (compat && in_list(tok_uni_norm_inert_compat, tok_uni_norm_inert_compat_n, cp));
}

/* HF's lowercase of cp when it differs from utf8proc's, else 0 */
uint32_t tok_lower_exception(uint32_t cp) {
    if (cp < 0x10000 && !(bmp[cp] & F_LOWER)) return 0;
    size_t lo = 0, hi = tok_uni_lower_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < tok_uni_lower[mid][0]) hi = mid;
        else if (cp > tok_uni_lower[mid][0]) lo = mid + 1;
        else return tok_uni_lower[mid][1];
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* BertNormalizer / BertPreTokenizer / WhitespaceSplit classes (tok_unicode_bert.c) */

extern const uint32_t tok_uni_bert_drop[][2], tok_uni_bert_space[][2], tok_uni_bert_punct[][2],
    tok_uni_rust_ws[][2], tok_uni_bert_mn[][2];
extern const size_t tok_uni_bert_drop_n, tok_uni_bert_space_n, tok_uni_bert_punct_n, tok_uni_rust_ws_n,
    tok_uni_bert_mn_n;

enum { B_DROP = 1, B_SPACE = 2, B_PUNCT = 4, B_WS = 8, B_MN = 16 };

static uint8_t bmp_bert[0x10000];

__attribute__((constructor)) static void tok_unicode_bert_init(void) {
    const struct { const uint32_t (*r)[2]; size_t n; uint8_t f; } t[] = {
        {tok_uni_bert_drop, tok_uni_bert_drop_n, B_DROP}, {tok_uni_bert_space, tok_uni_bert_space_n, B_SPACE},
        {tok_uni_bert_punct, tok_uni_bert_punct_n, B_PUNCT}, {tok_uni_rust_ws, tok_uni_rust_ws_n, B_WS},
        {tok_uni_bert_mn, tok_uni_bert_mn_n, B_MN},
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++)
        for (size_t i = 0; i < t[k].n; i++)
            for (uint32_t c = t[k].r[i][0]; c <= t[k].r[i][1] && c < 0x10000; c++) bmp_bert[c] |= t[k].f;
}

#define BERT_CLASS(fn, flag, table)                                               \
    bool fn(uint32_t cp) {                                                        \
        if (cp < 0x10000) return bmp_bert[cp] & (flag);                           \
        return in_ranges(table, table##_n, cp);                                   \
    }
BERT_CLASS(tok_is_bert_drop, B_DROP, tok_uni_bert_drop)
BERT_CLASS(tok_is_bert_space, B_SPACE, tok_uni_bert_space)
BERT_CLASS(tok_is_bert_punct, B_PUNCT, tok_uni_bert_punct)
BERT_CLASS(tok_is_rust_ws, B_WS, tok_uni_rust_ws)
BERT_CLASS(tok_is_bert_mn, B_MN, tok_uni_bert_mn)
