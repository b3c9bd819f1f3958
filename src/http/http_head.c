/* http_head.c — a strict, stateless parser of an HTTP/1.x request head (request line + header fields),
 * used by the front door (door.c) before a connection is handed to libmicrohttpd, and by the HTTP
 * fuzz target.
 *
 * Contract: http_head_parse reads the bytes received so far (it never consumes them: the door peeks)
 * and answers MORE (the head is incomplete but nothing is wrong yet), OK (the head is complete and
 * valid: the fields of http_head point into the caller's buffer) or BAD (with the status, OpenAI error
 * code and message to answer). It rejects as early as the bytes allow — a TLS handshake or a NUL in the
 * method after one byte, an over-long target before its end — so a hostile client never holds a slot
 * waiting for a line end. It is stricter than libmicrohttpd 0.9.75 everywhere the two differ (no
 * obs-fold, no whitespace before a colon, one Host, identical Content-Length values, Transfer-Encoding
 * only "chunked" and never with Content-Length), so libmicrohttpd never has to produce its own (HTML)
 * error for a head that passed here.
 */
#include "http/http_internal.h"

#include <stdio.h>

static bool tchar(unsigned char c) { /* RFC 9110 token characters */
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool ieq(const char *a, size_t n, const char *lit) {
    return strlen(lit) == n && !strncasecmp(a, lit, n);
}

static http_head_result bad(http_head_err *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static http_head_result bad(http_head_err *e, int status, const char *code, const char *fmt, ...) {
    e->status = status;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return HTTP_HEAD_BAD;
}

/* One line [p, end of line): returns its length without the line end (CRLF or bare LF) and sets *next;
 * -1 when no line end is in the buffer yet. */
static long line_at(const char *p, const char *end, const char **next) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) return -1;
    *next = nl + 1;
    return (long)(nl - p) - (nl > p && nl[-1] == '\r');
}

/* The bytes of an incomplete line so far, less a last CR (its LF may be next). */
static size_t partial(const char *p, const char *end) {
    size_t n = (size_t)(end - p);
    return n && p[n - 1] == '\r' ? n - 1 : n;
}

/* The request line (complete or not). MORE when it may still become valid. */
static http_head_result request_line(const char *p, size_t n, bool complete, const http_head_limits *lim,
                                     http_head *h, http_head_err *e) {
    size_t i = 0;
    while (i < n && tchar((unsigned char)p[i])) i++;
    if (i > 32 || (i < n && p[i] != ' ') || (i == 0 && n > 0)) {
        if (n && (unsigned char)p[0] == 0x16)
            return bad(e, 400, "bad_request", "this port speaks plain HTTP; the client sent a TLS handshake (use http://)");
        return bad(e, 400, "bad_request", "malformed request line: the method must be a token followed by one space");
    }
    if (i == n) return complete ? bad(e, 400, "bad_request", "malformed request line: no request target") : HTTP_HEAD_MORE;
    h->method = p;
    h->method_len = i;
    size_t t0 = ++i;
    while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f) i++;
    if (i - t0 > lim->max_target)
        return bad(e, 414, "uri_too_long", "the request target is longer than %zu bytes", lim->max_target);
    if (i < n && p[i] != ' ')
        return bad(e, 400, "bad_request", "malformed request line: the target holds a control, space or non-ASCII byte");
    if (i == n) return complete ? bad(e, 400, "bad_request", "malformed request line: no HTTP version (HTTP/0.9 is not served)")
                                : HTTP_HEAD_MORE;
    if (i == t0) return bad(e, 400, "bad_request", "malformed request line: empty request target");
    h->target = p + t0;
    h->target_len = i - t0;
    const char *v = p + i + 1;
    size_t vn = n - i - 1;
    static const char proto[] = "HTTP/";
    for (size_t k = 0; k < vn && k < 8; k++) {
        bool ok = k < 5 ? v[k] == proto[k] : k == 6 ? v[k] == '.' : (v[k] >= '0' && v[k] <= '9');
        if (!ok) return bad(e, 400, "bad_request", "malformed request line: the version must be HTTP/1.1 or HTTP/1.0");
    }
    if (vn > 8) return bad(e, 400, "bad_request", "malformed request line: text after the HTTP version");
    if (vn < 8) return complete ? bad(e, 400, "bad_request", "malformed request line: truncated HTTP version") : HTTP_HEAD_MORE;
    if (v[5] != '1')
        return bad(e, 505, "http_version_not_supported", "HTTP/%c.%c is not supported; this server speaks HTTP/1.1 and HTTP/1.0",
                   v[5], v[7]);
    h->minor = v[7] - '0';
    return complete ? HTTP_HEAD_OK : HTTP_HEAD_MORE;
}

/* One header field line (complete or not). */
static http_head_result field(const char *p, size_t n, bool complete, http_head *h, http_head_err *e) {
    if (n && (p[0] == ' ' || p[0] == '\t'))
        return bad(e, 400, "bad_request", "malformed header: a line folded onto the previous one (obs-fold) is not accepted");
    size_t i = 0;
    while (i < n && tchar((unsigned char)p[i])) i++;
    if (i < n && p[i] != ':')
        return bad(e, 400, "bad_request", "malformed header line: a field name must be a token followed directly by ':'");
    if (i == 0 && n) return bad(e, 400, "bad_request", "malformed header line: empty field name");
    for (size_t k = i + 1; k < n; k++) {
        unsigned char c = (unsigned char)p[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return bad(e, 400, "bad_request", "malformed header '%.*s': the value holds a control byte", (int)(i < 64 ? i : 64), p);
    }
    if (!complete) return HTTP_HEAD_MORE;
    if (i == n) return bad(e, 400, "bad_request", "malformed header line '%.*s': no ':'", (int)(n < 64 ? n : 64), p);
    const char *name = p, *val = p + i + 1, *vend = p + n;
    size_t name_len = i;
    while (val < vend && (*val == ' ' || *val == '\t')) val++;
    while (vend > val && (vend[-1] == ' ' || vend[-1] == '\t')) vend--;
    size_t vlen = (size_t)(vend - val);
    if (ieq(name, name_len, "Host")) {
        if (h->has_host) return bad(e, 400, "bad_request", "more than one Host header");
        h->has_host = true;
    } else if (ieq(name, name_len, "Content-Length")) {
        uint64_t x = 0;
        bool over = false;
        if (!vlen) return bad(e, 400, "bad_request", "empty Content-Length");
        for (size_t k = 0; k < vlen; k++) {
            if (val[k] < '0' || val[k] > '9')
                return bad(e, 400, "bad_request", "Content-Length '%.*s' is not a decimal number", (int)(vlen < 40 ? vlen : 40), val);
            if (x > (UINT64_MAX - 9) / 10) over = true;
            else x = x * 10 + (uint64_t)(val[k] - '0');
        }
        if (over) x = UINT64_MAX;
        if (h->has_cl && h->content_length != x)
            return bad(e, 400, "bad_request", "two different Content-Length headers (%llu and %llu)",
                       (unsigned long long)h->content_length, (unsigned long long)x);
        h->has_cl = true;
        h->content_length = x;
    } else if (ieq(name, name_len, "Transfer-Encoding")) {
        if (h->chunked || !ieq(val, vlen, "chunked"))
            return bad(e, 400, "bad_request", "Transfer-Encoding '%.*s' is not supported (only a single 'chunked')",
                       (int)(vlen < 40 ? vlen : 40), val);
        h->chunked = true;
    } else if (ieq(name, name_len, "Authorization")) {
        h->auth = val;
        h->auth_len = vlen;
    } else if (ieq(name, name_len, "Origin")) {
        h->origin = val;
        h->origin_len = vlen;
    } else if (ieq(name, name_len, "X-Request-Id")) {
        h->req_id = val;
        h->req_id_len = vlen;
    } else if (ieq(name, name_len, "Expect")) {
        if (!ieq(val, vlen, "100-continue"))
            return bad(e, 417, "expectation_failed", "Expect '%.*s' is not supported (only 100-continue)", (int)(vlen < 40 ? vlen : 40), val);
    }
    return HTTP_HEAD_OK;
}

http_head_result http_head_parse(const char *buf, size_t len, const http_head_limits *lim, http_head *h,
                                 http_head_err *e) {
    memset(h, 0, sizeof *h);
    const char *p = buf, *end = buf + len, *next = NULL;
    /* RFC 9112 2.2: empty lines before the request line are ignored (a few) */
    for (int k = 0; k < 4 && p < end && (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')); k++)
        p += *p == '\n' ? 1 : 2;
    if (end - p >= 3 && !memcmp(p, "PRI", 3) && (end - p < 4 || p[3] == ' '))
        return bad(e, 505, "http_version_not_supported", "HTTP/2 is not supported; this server speaks HTTP/1.1");
    long n = line_at(p, end, &next);
    http_head_result res = request_line(p, n < 0 ? partial(p, end) : (size_t)n, n >= 0, lim, h, e);
    if (res != HTTP_HEAD_OK) goto incomplete;
    for (p = next;;) {
        n = line_at(p, end, &next);
        if (n == 0) { /* the empty line: end of the head */
            h->len = (size_t)(next - buf);
            if (h->len > lim->max_head) break;
            if (h->minor >= 1 && !h->has_host) return bad(e, 400, "bad_request", "an HTTP/1.1 request needs a Host header");
            if (h->chunked && h->has_cl)
                return bad(e, 400, "bad_request", "both Transfer-Encoding and Content-Length are set");
            if (h->chunked && h->minor == 0) return bad(e, 400, "bad_request", "Transfer-Encoding in an HTTP/1.0 request");
            return HTTP_HEAD_OK;
        }
        if (++h->n_fields > lim->max_fields)
            return bad(e, 431, "headers_too_large", "more than %d header fields", lim->max_fields);
        res = field(p, n < 0 ? partial(p, end) : (size_t)n, n >= 0, h, e);
        if (res == HTTP_HEAD_BAD || n < 0) goto incomplete;
        p = next;
    }
    res = HTTP_HEAD_MORE;
incomplete:
    if (res == HTTP_HEAD_MORE && len > lim->max_head)
        return bad(e, 431, "headers_too_large", "the request head is larger than %zu bytes", lim->max_head);
    return res;
}

const char *http_reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}
