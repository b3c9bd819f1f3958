/* test_http_units.c — unit tests of the HTTP layer's pure parts: the strict request-head parser
 * (every accept/refuse rule, incremental bytes, limits) and the JSON pre-scan with its tree-size bound,
 * checked against what jansson really allocates (a counting allocator) for the shapes that cost the
 * most per byte. */
#include <jansson.h>
#include <malloc.h>
#include <stdlib.h>

#include "http/http_internal.h"
#include "test.h"

static const http_head_limits LIM = {.max_head = 2048, .max_target = 256, .max_fields = 16};

static http_head_result parse(const char *s, http_head *h, http_head_err *e) {
    return http_head_parse(s, strlen(s), &LIM, h, e);
}

/* A head is BAD with this status as soon as the given prefix arrived. */
static void expect_bad_n(const char *s, size_t n, int status) {
    http_head h;
    http_head_err e = {0};
    http_head_result r = http_head_parse(s, n, &LIM, &h, &e);
    if (r != HTTP_HEAD_BAD || e.status != status)
        fprintf(stderr, "head %.60s: result %d status %d (%s), expected BAD %d\n", s, (int)r, e.status, e.msg, status);
    CHECK(r == HTTP_HEAD_BAD && e.status == status);
    CHECK(e.code != NULL && e.msg[0]);
}
static void expect_bad(const char *s, int status) { expect_bad_n(s, strlen(s), status); }

static void test_head(void) {
    http_head h;
    http_head_err e;
    const char *ok = "POST /v1/embeddings?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nAuthorization:  Bearer k \r\n"
                     "X-Request-Id: abc\r\nContent-Length: 12\r\n\r\n{\"input\":1}";
    CHECK_EQ_INT(parse(ok, &h, &e), HTTP_HEAD_OK);
    CHECK(h.method_len == 4 && !memcmp(h.method, "POST", 4));
    CHECK(h.target_len == 18 && !memcmp(h.target, "/v1/embeddings?x=1", 18));
    CHECK(h.has_host && h.has_cl && h.content_length == 12 && !h.chunked && h.minor == 1);
    CHECK(h.auth_len == 8 && !memcmp(h.auth, "Bearer k", 8));
    CHECK(h.req_id_len == 3 && h.len == strlen(ok) - 11);
    /* every prefix of a valid head is MORE, never BAD */
    for (size_t n = 0; n < h.len; n++) {
        http_head h2;
        CHECK_EQ_INT(http_head_parse(ok, n, &LIM, &h2, &e), HTTP_HEAD_MORE);
    }
    CHECK_EQ_INT(parse("\r\nGET /health HTTP/1.0\n\n", &h, &e), HTTP_HEAD_OK); /* bare LF, leading empty line */
    CHECK_EQ_INT(parse("POST /embed HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", &h, &e), HTTP_HEAD_OK);
    CHECK(h.chunked);
    CHECK_EQ_INT(parse("POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", &h, &e), HTTP_HEAD_OK);
    CHECK_EQ_INT(parse("GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", &h, &e), HTTP_HEAD_OK);
    CHECK(h.content_length == UINT64_MAX); /* refused later as larger than the body cap (413) */

    /* refused at the first byte that cannot become valid */
    expect_bad("\x16\x03\x01", 400);             /* TLS ClientHello */
    expect_bad_n("\0", 1, 400);
    expect_bad("GE\x01", 400);
    expect_bad("GET  /", 400);                   /* two spaces */
    expect_bad("GET /a\x7f", 400);
    expect_bad("GET /a\xc3\xa9 HTTP/1.1", 400);  /* non-ASCII target */
    expect_bad("GET / HTTQ", 400);
    expect_bad("GET / HTTP/1.1x", 400);
    expect_bad("GET /\r\n", 400);                /* HTTP/0.9 */
    expect_bad("GET / HTTP/2.0\r\n", 505);
    expect_bad("GET / HTTP/0.9\r\n", 505);
    expect_bad("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505);
    expect_bad("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJ / HTTP/1.1\r\n", 400); /* method over 32 */
    char longt[400] = "GET /";
    memset(longt + 5, 'a', 300);
    expect_bad(longt, 414);                       /* before the line ends */
    expect_bad("GET / HTTP/1.1\r\n\r\n", 400);    /* no Host */
    expect_bad("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    expect_bad("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n", 400);
    expect_bad("GET / HTTP/1.1\r\nHost : a\r\n", 400);
    expect_bad("GET / HTTP/1.1\r\nHost: a\x01", 400);
    expect_bad("GET / HTTP/1.1\r\nnocolon\r\n", 400);
    expect_bad("GET / HTTP/1.1\r\n: empty\r\n", 400);
    expect_bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n", 400);
    expect_bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n", 400);
    expect_bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n", 400);
    expect_bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n", 400);
    expect_bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n", 400);
    expect_bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400);
    expect_bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400);
    expect_bad("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    expect_bad("POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n", 417);
    char many[1024] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 20; i++) strcat(many, "X-A: b\r\n");
    expect_bad(many, 431);
    char big[2200] = "GET / HTTP/1.1\r\nX-Big: ";
    memset(big + strlen(big), 'b', 2100);
    expect_bad(big, 431);                         /* head larger than max_head, no end in sight */
    CHECK(!strcmp(http_reason(431), "Request Header Fields Too Large") && !strcmp(http_reason(505), "HTTP Version Not Supported"));
}

/* ---- jansson's real allocations vs the bound of the pre-scan */

static size_t live, peak;
static void *count_malloc(size_t n) {
    void *p = malloc(n);
    if (p) {
        live += malloc_usable_size(p) + 8; /* + the chunk header */
        if (live > peak) peak = live;
    }
    return p;
}
static void count_free(void *p) {
    if (p) live -= malloc_usable_size(p) + 8;
    free(p);
}

static void check_bound(const char *what, const ragd_buf *b) {
    jv_counts c;
    CHECK(jv_scan(b->data, b->len, SIZE_MAX, &c));
    live = peak = 0;
    json_set_alloc_funcs(count_malloc, count_free);
    json_error_t je;
    json_t *j = json_loadb(b->data, b->len, JSON_REJECT_DUPLICATES, &je);
    size_t tree = live, top = peak;
    json_decref(j);
    json_set_alloc_funcs(malloc, free);
    size_t bound = jv_tree_bytes(&c);
    printf("%-28s %8zu bytes: %7zu values, tree %9zu B (peak %9zu) ≤ bound %9zu (%.1f× the body)\n", what, b->len, c.values,
           tree, top, bound, (double)bound / (double)b->len);
    CHECK(j != NULL);
    CHECK(top <= bound);
}

static void test_json_bound(void) {
    static const char *const items[] = {"[]", "{}", "1", "-1.5e3", "\"\"", "\"abcdefghij\"", "true", "null",
                                        "{\"k\":1}", "[[1]]", "{\"a\":[],\"b\":{}}", "\"\\u00e9\\n\""};
    for (size_t k = 0; k < sizeof items / sizeof items[0]; k++)
        for (int n = 1; n <= 100000; n *= 100) {
            ragd_buf b = {0};
            ragd_buf_putc(&b, '[');
            for (int i = 0; i < n; i++) {
                if (i) ragd_buf_putc(&b, ',');
                ragd_buf_puts(&b, items[k]);
            }
            ragd_buf_putc(&b, ']');
            char what[64];
            snprintf(what, sizeof what, "%d × %s", n, items[k]);
            check_bound(what, &b);
            ragd_buf_free(&b);
        }
    /* an object with many keys, a long string, deep nesting */
    ragd_buf b = {0};
    ragd_buf_putc(&b, '{');
    for (int i = 0; i < 50000; i++) ragd_buf_printf(&b, "%s\"key%d\":%d", i ? "," : "", i, i);
    ragd_buf_putc(&b, '}');
    check_bound("50000-key object", &b);
    ragd_buf_reset(&b);
    ragd_buf_puts(&b, "{\"text\":\"");
    for (int i = 0; i < 1000000; i++) ragd_buf_putc(&b, 'a' + i % 26);
    ragd_buf_puts(&b, "\"}");
    check_bound("1 MB string", &b);
    ragd_buf_reset(&b);
    for (int i = 0; i < 64; i++) ragd_buf_putc(&b, '[');
    for (int i = 0; i < 64; i++) ragd_buf_putc(&b, ']');
    check_bound("64 levels", &b);
    /* limits: depth 65 and a value cap stop the scan */
    jv_counts c;
    ragd_buf_reset(&b);
    for (int i = 0; i < 65; i++) ragd_buf_putc(&b, '[');
    CHECK(!jv_scan(b.data, b.len, SIZE_MAX, &c) && c.depth == 65);
    CHECK(!jv_scan("[1,2,3,4]", 9, 3, &c) && c.values == 4);
    CHECK(jv_scan("[1,2,3]", 7, 4, &c) && c.values == 4 && c.containers == 1);
    CHECK(jv_scan("{\"a\\\"b\":\"x\"}", 12, 10, &c) && c.values == 3); /* escaped quote inside a key */
    CHECK(jv_scan("\"unterminated", 13, 10, &c) && c.values == 1);
    CHECK(jv_scan("1\0 2", 4, 10, &c));                                  /* NUL: no loop, jansson refuses it */
    ragd_buf_free(&b);
}

int main(void) {
    test_head();
    test_json_bound();
    printf("test_http_units: %d passed, %d failed\n", t_passed, t_failed);
    return t_failed ? 1 : 0;
}
