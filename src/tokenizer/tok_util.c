/* tok_util.c — small shared pieces of the tokenizer: the string→id hash table, GPT-2's byte-level
 * alphabet, UTF-8 encoding and lossy decoding (Rust `String::from_utf8_lossy`), and \s as Oniguruma —
 * the regex engine HF `tokenizers` uses — defines it (the other classes are in tok_unicode.c).
 */
#include <stdlib.h>

#include "tokenizer/tok_internal.h"

/* ---------------------------------------------------------------------------------------------- */
/* hashing */

uint64_t tok_hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0x243F6A8885A308D3ull ^ (n * 0x9E3779B97F4A7C15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        s += 8; n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)s[i] << (8 * i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    h *= 0x9E3779B97F4A7C15ull;
    h ^= h >> 32;
    return h;
}

void tok_hash_init(tok_hash *h, size_t expected) {
    memset(h, 0, sizeof *h);
    size_t cap = 16;
    while (cap < expected * 2) cap <<= 1;
    h->cap = cap;
    h->slot = ragd_xcalloc(cap, sizeof *h->slot);
}

void tok_hash_free(tok_hash *h) {
    free(h->slot); free(h->ehash); free(h->koff); free(h->klen); free(h->val);
    ragd_buf_free(&h->arena);
    memset(h, 0, sizeof *h);
}

static void hash_grow(tok_hash *h) {
    size_t cap = h->cap * 2;
    uint32_t *slot = ragd_xcalloc(cap, sizeof *slot);
    for (size_t e = 0; e < h->n; e++) {
        size_t i = (size_t)h->ehash[e] & (cap - 1);
        while (slot[i]) i = (i + 1) & (cap - 1);
        slot[i] = (uint32_t)e + 1;
    }
    free(h->slot);
    h->slot = slot;
    h->cap = cap;
}

static size_t hash_find(const tok_hash *h, const char *key, size_t len, uint64_t hv) {
    size_t i = (size_t)hv & (h->cap - 1);
    for (;;) {
        uint32_t e = h->slot[i];
        if (!e) return i;
        e--;
        if (h->ehash[e] == hv && h->klen[e] == len && !memcmp(h->arena.data + h->koff[e], key, len)) return i;
        i = (i + 1) & (h->cap - 1);
    }
}

void tok_hash_put(tok_hash *h, const char *key, size_t len, int32_t val) {
    if ((h->n + 1) * 2 > h->cap) hash_grow(h);
    uint64_t hv = tok_hash_bytes(key, len);
    size_t i = hash_find(h, key, len, hv);
    if (h->slot[i]) { h->val[h->slot[i] - 1] = val; return; }
    if (h->n == h->ecap) {
        h->ecap = h->ecap ? h->ecap * 2 : 64;
        h->ehash = ragd_xrealloc(h->ehash, h->ecap * sizeof *h->ehash);
        h->koff = ragd_xrealloc(h->koff, h->ecap * sizeof *h->koff);
        h->klen = ragd_xrealloc(h->klen, h->ecap * sizeof *h->klen);
        h->val = ragd_xrealloc(h->val, h->ecap * sizeof *h->val);
    }
    size_t e = h->n++;
    h->ehash[e] = hv;
    h->koff[e] = (uint32_t)h->arena.len;
    h->klen[e] = (uint32_t)len;
    h->val[e] = val;
    ragd_buf_append(&h->arena, key, len);
    h->slot[i] = (uint32_t)e + 1;
}

int32_t tok_hash_get(const tok_hash *h, const char *key, size_t len) {
    if (!h->cap) return -1;
    size_t i = hash_find(h, key, len, tok_hash_bytes(key, len));
    return h->slot[i] ? h->val[h->slot[i] - 1] : -1;
}

/* ---------------------------------------------------------------------------------------------- */
/* GPT-2 bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100.. in order. */

static uint16_t byte_cp[256];     /* byte → code point */
static int16_t cp_byte[0x144];     /* code point < 0x144 → byte, -1 if none */

static bool printable(unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

/* Filled once at program start; read-only afterwards. */
__attribute__((constructor)) static void byte_alphabet_init(void) {
    unsigned n = 0;
    for (unsigned c = 0; c < 0x144; c++) cp_byte[c] = -1;
    for (unsigned b = 0; b < 256; b++) {
        byte_cp[b] = (uint16_t)(printable(b) ? b : 0x100 + n++);
        cp_byte[byte_cp[b]] = (int16_t)b;
    }
}

uint32_t tok_byte_to_cp(uint8_t b) { return byte_cp[b]; }

int tok_cp_to_byte(uint32_t cp) { return cp < 0x144 ? cp_byte[cp] : -1; }

/* ---------------------------------------------------------------------------------------------- */
/* UTF-8 */

size_t tok_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int tok_utf8_seq(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) { need = 2; lo = 0xA0; }
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 2;
    else if (c == 0xED) { need = 2; hi = 0x9F; }
    else if (c == 0xF0) { need = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) { need = 3; hi = 0x8F; }
    else return -1;
    for (int k = 1; k <= need; k++) {
        if ((size_t)k >= n) return 0;
        uint8_t x = s[k];
        if (x < lo || x > hi) return -k;
        lo = 0x80; hi = 0xBF;
    }
    return need + 1;
}

void tok_utf8_lossy(ragd_buf *out, const uint8_t *s, size_t n, size_t *hold) {
    static const char fffd[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    size_t i = 0, run = 0;
    if (hold) *hold = 0;
    ragd_buf_reserve(out, n);
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        int k = tok_utf8_seq(s + i, n - i);
        if (k > 0) { i += (size_t)k; continue; }
        ragd_buf_append(out, s + run, i - run);
        if (k == 0) { /* incomplete at the end */
            if (hold) { *hold = n - i; return; }
            ragd_buf_append(out, fffd, 3);
            return;
        }
        ragd_buf_append(out, fffd, 3);
        i += (size_t)(-k);
        run = i;
    }
    ragd_buf_append(out, s + run, n - run);
}

/* ---------------------------------------------------------------------------------------------- */
/* Unicode classes */

bool tok_is_ws(uint32_t cp) {
    if (cp < 0x80) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}
