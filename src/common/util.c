/* util.c — UTF-8 validation, fp16 conversion, clocks and logging. */
#include "common.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

bool ragd_utf8_valid(const char *str, size_t n, size_t *bad_at) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; min = 0x80; }
        else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; min = 0x800; }
        else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; min = 0x10000; }
        else goto bad;
        if (i + len > n) goto bad;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) goto bad;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) goto bad;
        i += len;
    }
    return true;
bad:
    if (bad_at) *bad_at = i;
    return false;
}

float ragd_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else { /* subnormal */
            float f = ldexpf((float)man, -24);
            return sign ? -f : f;
        }
    } else if (exp == 31) u = sign | 0x7f800000u | (man << 13);
    else u = sign | ((exp + 112) << 23) | (man << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t ragd_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int32_t exp = (int32_t)((u >> 23) & 0xff);
    uint32_t man = u & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    int32_t e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)h;
}

double ragd_now_s(void) { return (double)ragd_now_ns() * 1e-9; }

uint64_t ragd_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static ragd_log_level g_log_level = RAGD_LOG_INFO; /* set once at startup */

void ragd_log_set_level(ragd_log_level lvl) { g_log_level = lvl; }
static bool g_log_json; /* set once at startup */
void ragd_log_set_json(bool json) { g_log_json = json; }

void ragd_log(ragd_log_level lvl, const char *fmt, ...) {
    if (lvl < g_log_level) return;
    static const char *names[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    char line[4096];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2; /* long lines are cut, never split */
    if (g_log_json) { /* invalid UTF-8 → U+FFFD, then the project's JSON string escaping */
        static const char *jn[] = {"debug", "info", "warn", "error"};
        ragd_buf clean = {0}, js = {0};
        const char *msg = line + n;
        size_t ml = len - (size_t)n, at;
        while (!ragd_utf8_valid(msg, ml, &at)) {
            ragd_buf_append(&clean, msg, at);
            ragd_buf_append(&clean, "\xef\xbf\xbd", 3);
            msg += at + 1, ml -= at + 1;
        }
        ragd_buf_append(&clean, msg, ml);
        ragd_buf_printf(&js, "{\"ts\":\"%.24s\",\"level\":\"%s\",\"msg\":", line, jn[lvl]);
        ragd_buf_json_str(&js, clean.data ? clean.data : "", clean.len);
        ragd_buf_puts(&js, "}\n");
        ssize_t w = write(2, js.data, js.len);
        (void)w;
        ragd_buf_free(&clean);
        ragd_buf_free(&js);
        return;
    }
    line[len++] = '\n';
    ssize_t w = write(2, line, len);
    (void)w;
}
