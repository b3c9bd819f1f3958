/* buf.c — growable byte buffer and JSON value writers. */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void ragd_buf_free(ragd_buf *b) {
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void ragd_buf_reset(ragd_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

void ragd_buf_reserve(ragd_buf *b, size_t extra) {
    size_t need;
    if (!ragd_add_ok(b->len, extra, &need) || !ragd_add_ok(need, 1, &need))
        RAGD_DIE("buffer size overflow");
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) { cap = need; break; }
        cap *= 2;
    }
    b->data = ragd_xrealloc(b->data, cap);
    b->cap = cap;
}

void ragd_buf_append(ragd_buf *b, const void *p, size_t n) {
    ragd_buf_reserve(b, n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void ragd_buf_puts(ragd_buf *b, const char *s) { ragd_buf_append(b, s, strlen(s)); }

void ragd_buf_putc(ragd_buf *b, char c) {
    ragd_buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = 0;
}

void ragd_buf_printf(ragd_buf *b, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) { va_end(ap2); return; }
    ragd_buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
}

void ragd_buf_json_str(ragd_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    ragd_buf_reserve(b, n + 2);
    ragd_buf_putc(b, '"');
    size_t run = 0; /* start of the current run of bytes that need no escaping */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        ragd_buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': ragd_buf_append(b, "\\\"", 2); break;
        case '\\': ragd_buf_append(b, "\\\\", 2); break;
        case '\n': ragd_buf_append(b, "\\n", 2); break;
        case '\r': ragd_buf_append(b, "\\r", 2); break;
        case '\t': ragd_buf_append(b, "\\t", 2); break;
        case '\b': ragd_buf_append(b, "\\b", 2); break;
        case '\f': ragd_buf_append(b, "\\f", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            ragd_buf_append(b, u, 6);
        }
        }
    }
    ragd_buf_append(b, s + run, n - run);
    ragd_buf_putc(b, '"');
}

void ragd_buf_json_f32(ragd_buf *b, float v) {
    RAGD_ASSERT(isfinite(v));
    char tmp[32];
    /* shortest of %.6g..%.9g that parses back to the same float */
    for (int prec = 6; prec <= 9; prec++) {
        int n = snprintf(tmp, sizeof tmp, "%.*g", prec, (double)v);
        if (prec == 9 || strtof(tmp, NULL) == v) {
            ragd_buf_append(b, tmp, (size_t)n);
            return;
        }
    }
}

void ragd_buf_json_i64(ragd_buf *b, int64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    ragd_buf_append(b, tmp, (size_t)n);
}
