/* test_common.c — the common module: errors, buffers, JSON writers, UTF-8, half precision. */
#include <stdlib.h>

#include <jansson.h>
#include <unistd.h>

#include "common/common.h"
#include "test.h"

/* The fast float formatter against the snprintf/strtof reference: every 1021st bit pattern (~4.2M
 * floats of every exponent), embedding-like values, exact powers of ten and their neighbours. */
static void check_fmt_f32(void) {
    char a[40], r[40], f[40];
    long n = 0, bad = 0, fast = 0;
    uint64_t st = 0x9e3779b97f4a7c15ull;
    for (uint64_t u = 0; u < 0x100000000ull; u += 1021) {
        uint32_t bits = (uint32_t)u;
        float v;
        memcpy(&v, &bits, 4);
        if (!isfinite(v)) continue;
        int na = ragd_fmt_f32(a, v), nr = ragd_fmt_f32_reference(r, v);
        n++;
        if (na != nr || memcmp(a, r, (size_t)na)) {
            if (bad++ < 5) fprintf(stderr, "fmt_f32 %08x: %.*s vs reference %.*s\n", bits, na, a, nr, r);
        }
    }
    for (int i = 0; i < 1000000; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        double u1 = ((st >> 11) + 1) * (1.0 / 9007199254740993.0);
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        double u2 = (st >> 11) * (1.0 / 9007199254740992.0);
        float v = (float)(0.04 * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
        int na = ragd_fmt_f32(a, v), nr = ragd_fmt_f32_reference(r, v);
        n++;
        fast += ragd_fmt_f32_fast(f, v) > 0;
        if (na != nr || memcmp(a, r, (size_t)na))
            if (bad++ < 10) fprintf(stderr, "fmt_f32 %.9g: %.*s vs reference %.*s\n", (double)v, na, a, nr, r);
    }
    for (int e = -45; e <= 38; e++) {
        float p = (float)pow(10.0, e);
        float vs[] = {p, nextafterf(p, 0), nextafterf(p, INFINITY), -p, 9.5f * p, 9.9999999f * p, 0.5f * p};
        for (size_t k = 0; k < sizeof vs / sizeof vs[0]; k++) {
            if (!isfinite(vs[k])) continue;
            int na = ragd_fmt_f32(a, vs[k]), nr = ragd_fmt_f32_reference(r, vs[k]);
            n++;
            if (na != nr || memcmp(a, r, (size_t)na))
                if (bad++ < 15) fprintf(stderr, "fmt_f32 %.9g: %.*s vs reference %.*s\n", (double)vs[k], na, a, nr, r);
        }
    }
    printf("fmt_f32: %ld floats, %ld differ from the reference; fast path took %ld of 1000000 embedding-like\n", n,
           bad, fast);
    CHECK_EQ_INT(bad, 0);
    CHECK(fast > 990000); /* else the comparison above mostly compared the reference with itself */
    CHECK(n > 5000000);
}


/* --log-format json: each line a JSON object; control bytes escaped, invalid UTF-8 → U+FFFD, valid UTF-8
 * kept; the level names; text mode unchanged */
static void check_json_log(void) {
    char path[] = "/tmp/ragd_log_XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    CHECK(fd >= 0 && saved >= 0);
    dup2(fd, 2);
    ragd_log_set_json(true);
    ragd_log(RAGD_LOG_WARN, "a \"q\" \\ tab\t nl\n bell\x07 bad\xff\xc3 ok \xc3\xa9 end");
    ragd_log(RAGD_LOG_INFO, "plain");
    ragd_log_set_json(false);
    ragd_log(RAGD_LOG_ERROR, "text mode");
    dup2(saved, 2);
    close(saved);
    char buf[4096] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    CHECK(n > 0);
    char *l2 = strchr(buf, '\n'), *l3 = l2 ? strchr(l2 + 1, '\n') : NULL;
    CHECK(l2 && l3);
    if (!l2 || !l3) return;
    *l2 = 0, *l3 = 0;
    json_error_t je;
    json_t *a = json_loads(buf, 0, &je), *b = json_loads(l2 + 1, 0, &je);
    CHECK(a && b);
    if (a && b) {
        CHECK_STR(json_string_value(json_object_get(a, "level")), "warn");
        CHECK_STR(json_string_value(json_object_get(a, "msg")),
                  "a \"q\" \\ tab\t nl\n bell\x07 bad\xef\xbf\xbd\xef\xbf\xbd ok \xc3\xa9 end");
        CHECK_EQ_INT((int)strlen(json_string_value(json_object_get(a, "ts"))), 24);
        CHECK_STR(json_string_value(json_object_get(b, "msg")), "plain");
        CHECK_EQ_INT((int)json_object_size(b), 3);
    }
    json_decref(a);
    json_decref(b);
    CHECK(strstr(l3 + 1, "ERROR text mode") != NULL && l3[1] != '{');
}

int main(void) {
    check_fmt_f32();
    check_json_log();
    ragd_err err = {0};
    CHECK_EQ_INT(ragd_err_set(&err, RAGD_EINVAL, "line %d: bad", 3), RAGD_EINVAL);
    CHECK_STR(ragd_err_msg(&err), "line 3: bad");
    ragd_err_prefix(&err, "file %s", "x.json");
    CHECK_STR(ragd_err_msg(&err), "file x.json: line 3: bad");
    CHECK_EQ_INT(err.code, RAGD_EINVAL);
    ragd_err_free(&err);
    CHECK(err.msg == NULL);

    ragd_buf b = {0};
    ragd_buf_json_str(&b, "a\"b\\c\n\x01\xc3\xa9", 9);
    CHECK_STR(b.data, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"");
    ragd_buf_reset(&b);
    ragd_buf_json_f32(&b, 0.1f);
    CHECK_STR(b.data, "0.1");
    ragd_buf_reset(&b);
    ragd_buf_json_f32(&b, 0.76455682516f);
    CHECK(strtof(b.data, NULL) == 0.76455682516f);
    ragd_buf_reset(&b);
    ragd_buf_json_f32(&b, -1.17549435e-38f);
    CHECK(strtof(b.data, NULL) == -1.17549435e-38f);
    ragd_buf_reset(&b);
    ragd_buf_printf(&b, "%d-%s", 42, "x");
    CHECK_STR(b.data, "42-x");
    ragd_buf_free(&b);

    size_t bad = 0;
    CHECK(ragd_utf8_valid("h\xc3\xa9llo \xf0\x9f\x98\x80", 11, NULL));
    CHECK(!ragd_utf8_valid("ab\xc3", 3, &bad));
    CHECK_EQ_INT(bad, 2);
    CHECK(!ragd_utf8_valid("\xed\xa0\x80", 3, NULL));     /* surrogate */
    CHECK(!ragd_utf8_valid("\xc0\xaf", 2, NULL));         /* overlong */
    CHECK(!ragd_utf8_valid("\xf4\x90\x80\x80", 4, NULL)); /* > U+10FFFF */

    CHECK(ragd_bf16_to_f32(0x3f80) == 1.0f);
    CHECK_EQ_INT(ragd_f32_to_bf16(1.0f), 0x3f80);
    CHECK_EQ_INT(ragd_f32_to_bf16(1.00390625f), 0x3f80);   /* tie → even */
    CHECK_EQ_INT(ragd_f32_to_bf16(1.01171875f), 0x3f82);   /* tie → even (up) */
    CHECK(ragd_f16_to_f32(0x3c00) == 1.0f);
    CHECK(ragd_f16_to_f32(0xc000) == -2.0f);
    CHECK(ragd_f16_to_f32(0x0001) == 5.9604645e-08f);
    CHECK_EQ_INT(ragd_f32_to_f16(65504.0f), 0x7bff);
    CHECK_EQ_INT(ragd_f32_to_f16(1e6f), 0x7c00);
    CHECK_EQ_INT(ragd_f32_to_f16(5.9604645e-08f), 0x0001);
    for (uint32_t h = 0; h < 0x7c00; h++) /* every finite positive half round-trips */
        if (ragd_f32_to_f16(ragd_f16_to_f32((uint16_t)h)) != h) { CHECK(0 && "f16 roundtrip"); break; }

    size_t a;
    CHECK(!ragd_mul_ok(SIZE_MAX / 2, 3, &a));
    CHECK(ragd_add_ok(1, 2, &a) && a == 3);
    TEST_DONE();
}
