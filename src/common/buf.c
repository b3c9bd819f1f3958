/* buf.c — growable byte buffer and JSON value writers. */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The reference: shortest of %.6g..%.9g that parses back to the same float (slow: up to four
 * snprintf + strtof). */
static int f32_fmt_slow(char *out, float v) {
    char tmp[40];
    for (int prec = 6; prec <= 9; prec++) {
        int n = snprintf(tmp, sizeof tmp, "%.*g", prec, (double)v);
        if (prec == 9 || strtof(tmp, NULL) == v) {
            memcpy(out, tmp, (size_t)n);
            return n;
        }
    }
    return 0; /* not reached */
}

static const double kPow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* |x| · 10^s (or back) in one correctly rounded double operation: 10^|s| ≤ 10^22 is exact. */
static double scale10(double x, int s) { return s >= 0 ? x * kPow10[s] : x / kPow10[-s]; }

/* True when double r lies so close to the midpoint between two floats that rounding r (itself
 * rounded once) to float might differ from rounding the exact decimal value. */
static bool near_float_midpoint(double r) {
    float f = (float)r;
    double df = (double)f;
    if (df == r) return false;
    float g = nextafterf(f, r > df ? INFINITY : -INFINITY);
    double mid = (df + (double)g) * 0.5; /* exact: floats have 24-bit significands */
    int e;
    frexp(r, &e);
    return fabs(r - mid) <= ldexp(4.0, e - 53);
}

/* Writes %.{p}g of the decimal D·10^(X-p+1) (D has exactly p digits), as glibc prints it. */
static int fmt_g(char *o, bool neg, uint32_t D, int p, int X) {
    char dig[10];
    for (int i = p - 1; i >= 0; i--) dig[i] = (char)('0' + D % 10), D /= 10;
    int k = p;
    while (k > 1 && dig[k - 1] == '0') k--; /* %g drops trailing zeros */
    int n = 0;
    if (neg) o[n++] = '-';
    if (X < -4 || X >= p) {
        o[n++] = dig[0];
        if (k > 1) {
            o[n++] = '.';
            for (int i = 1; i < k; i++) o[n++] = dig[i];
        }
        o[n++] = 'e';
        o[n++] = X < 0 ? '-' : '+';
        int ax = X < 0 ? -X : X;
        if (ax >= 100) o[n++] = (char)('0' + ax / 100);
        o[n++] = (char)('0' + ax / 10 % 10);
        o[n++] = (char)('0' + ax % 10);
    } else if (X >= 0) {
        for (int i = 0; i <= X; i++) o[n++] = i < k ? dig[i] : '0';
        if (k > X + 1) {
            o[n++] = '.';
            for (int i = X + 1; i < k; i++) o[n++] = dig[i];
        }
    } else {
        o[n++] = '0';
        o[n++] = '.';
        for (int i = 0; i < -X - 1; i++) o[n++] = '0';
        for (int i = 0; i < k; i++) o[n++] = dig[i];
    }
    return n;
}

/* Fast path of the same result as f32_fmt_slow (0 when it declines): digits from one double scaling per precision,
 * checked for round trip in double; any case where double rounding could decide differently (a
 * scaled value near .5, a parse-back near a float midpoint, powers beyond 10^22) returns 0 and the
 * caller takes the slow path. tests/unit compares both on millions of floats. */
int ragd_fmt_f32_fast(char *o, float v) {
    double x = fabs((double)v);
    if (!(x > 0) || !isfinite(x)) return 0;
    int X = (int)floor(log10(x));
    if (X + 1 < 7 - 22 || X > 22) return 0;
    /* fix log10's rounding at exact powers of ten */
    if (X >= 0 ? x < kPow10[X] : x * kPow10[-X] < 1.0) X--;
    else if (X + 1 <= 22 && (X + 1 >= 0 ? x >= kPow10[X + 1] : x * kPow10[-(X + 1)] >= 1.0)) X++;
    for (int p = 6; p <= 9; p++) {
        int s = p - 1 - X;
        if (s > 22 || s < -22) return 0;
        double y = scale10(x, s);
        double fl = floor(y), fr = y - fl;
        if (fabs(fr - 0.5) < 1e-6) return 0;
        double Dd = fr > 0.5 ? fl + 1 : fl;
        int Xr = X;
        if (Dd >= kPow10[p]) Dd = kPow10[p - 1], Xr = X + 1, s--; /* 9.99…→10.0… */
        if (s > 22 || s < -22) return 0;
        double r = scale10(Dd, -s);
        if (near_float_midpoint(r)) return 0;
        if (p == 9 || (float)r == (float)x) return fmt_g(o, v < 0, (uint32_t)Dd, p, Xr);
    }
    return 0; /* not reached */
}

int ragd_fmt_f32(char *out, float v) {
    int n = ragd_fmt_f32_fast(out, v);
    if (!n) n = f32_fmt_slow(out, v);
    return n;
}

int ragd_fmt_f32_reference(char *out, float v) { return f32_fmt_slow(out, v); }

void ragd_buf_json_f32(ragd_buf *b, float v) {
    RAGD_ASSERT(isfinite(v));
    char tmp[32];
    ragd_buf_append(b, tmp, (size_t)ragd_fmt_f32(tmp, v));
}

void ragd_buf_json_i64(ragd_buf *b, int64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    ragd_buf_append(b, tmp, (size_t)n);
}
