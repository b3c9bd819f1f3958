/* test_gguf_parse.c — the GGUF container parser: a hand-built file with every value type, each
 * failure mode with its promised status and message, every truncation of a valid file, and the
 * committed fixtures written by gguf-py (tools/gguf_make_fixtures.py) plus, when cached, the real
 * SmolLM2 file. */
#include <stdlib.h>

#include "model/gguf.h"
#include "test.h"

/* ---------------------------------------------------------------------------------------------- */
/* a tiny GGUF writer */

static void put_u8(ragd_buf *b, uint8_t v) { ragd_buf_append(b, &v, 1); }
static void put_u16(ragd_buf *b, uint16_t v) { put_u8(b, (uint8_t)v); put_u8(b, (uint8_t)(v >> 8)); }
static void put_u32(ragd_buf *b, uint32_t v) { put_u16(b, (uint16_t)v); put_u16(b, (uint16_t)(v >> 16)); }
static void put_u64(ragd_buf *b, uint64_t v) { put_u32(b, (uint32_t)v); put_u32(b, (uint32_t)(v >> 32)); }
static void put_str(ragd_buf *b, const char *s) { put_u64(b, strlen(s)); ragd_buf_append(b, s, strlen(s)); }
static void put_f32(ragd_buf *b, float f) { uint32_t u; memcpy(&u, &f, 4); put_u32(b, u); }
static void put_f64(ragd_buf *b, double f) { uint64_t u; memcpy(&u, &f, 8); put_u64(b, u); }
static void patch_u32(ragd_buf *b, size_t at, uint32_t v) { for (int i = 0; i < 4; i++) b->data[at + i] = (char)(v >> (8 * i)); }
static void patch_u64(ragd_buf *b, size_t at, uint64_t v) { for (int i = 0; i < 8; i++) b->data[at + i] = (char)(v >> (8 * i)); }
static void pad_to(ragd_buf *b, size_t a) { while (b->len % a) put_u8(b, 0); }

/* where the base file's mutable fields are */
typedef struct offs {
    size_t version, n_tensors, n_kv, align_type, align_val, bool_val;
    size_t a_name_len, a_ndims, a_dim0, a_dim1, a_type, a_offset, b_ndims, b_dim0, b_type, b_offset;
    size_t str_arr_count, nested_inner_type;
} offs;

#define N_KV 17
/* A valid v3 file: 17 keys (one of every scalar type, a string, arrays of u32/strings/arrays), two
 * tensors: "a" F32 [32 x 2] at data offset 0 (256 bytes), "b" Q8_0 [64] at offset 256 (68 bytes),
 * ending exactly at the end of the file. */
static void build_base(ragd_buf *b, offs *o) {
    ragd_buf_reset(b);
    put_u32(b, RAGD_GGUF_MAGIC);
    o->version = b->len; put_u32(b, 3);
    o->n_tensors = b->len; put_u64(b, 2);
    o->n_kv = b->len; put_u64(b, N_KV);
    put_str(b, "general.architecture"); put_u32(b, RAGD_GGUF_STRING); put_str(b, "llama");
    put_str(b, "general.alignment"); o->align_type = b->len; put_u32(b, RAGD_GGUF_U32); o->align_val = b->len; put_u32(b, 32);
    put_str(b, "t.u8"); put_u32(b, RAGD_GGUF_U8); put_u8(b, 200);
    put_str(b, "t.i8"); put_u32(b, RAGD_GGUF_I8); put_u8(b, (uint8_t)-5);
    put_str(b, "t.u16"); put_u32(b, RAGD_GGUF_U16); put_u16(b, 65000);
    put_str(b, "t.i16"); put_u32(b, RAGD_GGUF_I16); put_u16(b, (uint16_t)-30000);
    put_str(b, "t.u32"); put_u32(b, RAGD_GGUF_U32); put_u32(b, 4000000000u);
    put_str(b, "t.i32"); put_u32(b, RAGD_GGUF_I32); put_u32(b, (uint32_t)-2000000000);
    put_str(b, "t.f32"); put_u32(b, RAGD_GGUF_F32); put_f32(b, 1e-5f);
    put_str(b, "t.bool"); put_u32(b, RAGD_GGUF_BOOL); o->bool_val = b->len; put_u8(b, 1);
    put_str(b, "t.u64"); put_u32(b, RAGD_GGUF_U64); put_u64(b, 1ull << 40);
    put_str(b, "t.i64"); put_u32(b, RAGD_GGUF_I64); put_u64(b, (uint64_t)-(1ll << 50));
    put_str(b, "t.f64"); put_u32(b, RAGD_GGUF_F64); put_f64(b, 0.125);
    put_str(b, "t.arr_u32"); put_u32(b, RAGD_GGUF_ARRAY); put_u32(b, RAGD_GGUF_U32); put_u64(b, 3);
    put_u32(b, 7); put_u32(b, 8); put_u32(b, 9);
    put_str(b, "t.arr_i8"); put_u32(b, RAGD_GGUF_ARRAY); put_u32(b, RAGD_GGUF_I8); put_u64(b, 2);
    put_u8(b, (uint8_t)-1); put_u8(b, 100);
    put_str(b, "t.arr_str"); put_u32(b, RAGD_GGUF_ARRAY); put_u32(b, RAGD_GGUF_STRING);
    o->str_arr_count = b->len; put_u64(b, 3);
    put_str(b, "Ġt"); put_str(b, ""); put_str(b, "a b");
    put_str(b, "t.nested"); put_u32(b, RAGD_GGUF_ARRAY); put_u32(b, RAGD_GGUF_ARRAY); put_u64(b, 2);
    o->nested_inner_type = b->len; put_u32(b, RAGD_GGUF_U16); put_u64(b, 2); put_u16(b, 1); put_u16(b, 2);
    put_u32(b, RAGD_GGUF_STRING); put_u64(b, 1); put_str(b, "x");
    /* tensor infos */
    o->a_name_len = b->len; put_str(b, "a");
    o->a_ndims = b->len; put_u32(b, 2);
    o->a_dim0 = b->len; put_u64(b, 32);
    o->a_dim1 = b->len; put_u64(b, 2);
    o->a_type = b->len; put_u32(b, RAGD_GGML_F32);
    o->a_offset = b->len; put_u64(b, 0);
    put_str(b, "b");
    o->b_ndims = b->len; put_u32(b, 1);
    o->b_dim0 = b->len; put_u64(b, 64);
    o->b_type = b->len; put_u32(b, RAGD_GGML_Q8_0);
    o->b_offset = b->len; put_u64(b, 256);
    pad_to(b, 32);
    for (int i = 0; i < 64; i++) put_f32(b, (float)i);
    for (int blk = 0; blk < 2; blk++) {
        put_u16(b, ragd_f32_to_f16(0.5f));
        for (int j = 0; j < 32; j++) put_u8(b, (uint8_t)(j - 16));
    }
}

static ragd_status parse(const ragd_buf *b, ragd_gguf *g, ragd_err *err) {
    ragd_err_free(err);
    return ragd_gguf_parse((const uint8_t *)b->data, b->len, "t.gguf", g, err);
}

/* expects status `code` and a message containing `needle` */
#define EXPECT_FAIL(buf, code, needle)                                                             \
    do {                                                                                           \
        ragd_gguf _g;                                                                              \
        ragd_err _e = {0};                                                                         \
        ragd_status _s = parse(buf, &_g, &_e);                                                     \
        CHECK_EQ_INT(_s, code);                                                                    \
        if (!strstr(ragd_err_msg(&_e), needle)) {                                                  \
            t_failed++;                                                                            \
            fprintf(stderr, "%s:%d: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, ragd_err_msg(&_e), needle); \
        }                                                                                          \
        ragd_gguf_free(&_g);                                                                       \
        ragd_err_free(&_e);                                                                        \
    } while (0)

static void test_valid(void) {
    ragd_buf b = {0};
    offs o;
    build_base(&b, &o);
    ragd_gguf g;
    ragd_err err = {0};
    CHECK_EQ_INT(parse(&b, &g, &err), RAGD_OK);
    if (err.msg) fprintf(stderr, "%s\n", err.msg);
    CHECK_EQ_INT(g.version, 3);
    CHECK_EQ_INT(g.n_kv, N_KV);
    CHECK_EQ_INT(g.n_tensors, 2);
    CHECK_EQ_INT(g.alignment, 32);
    CHECK_EQ_INT(g.data_offset % 32, 0);
    int64_t v;
    double f;
    bool bo;
    const struct { const char *key; int64_t want; } ints[] = {
        {"t.u8", 200}, {"t.i8", -5}, {"t.u16", 65000}, {"t.i16", -30000}, {"t.u32", 4000000000ll},
        {"t.i32", -2000000000ll}, {"t.u64", 1ll << 40}, {"t.i64", -(1ll << 50)}, {"general.alignment", 32}};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        CHECK_EQ_INT(ragd_gguf_get_int(&g, ints[i].key, &v, &err), RAGD_OK);
        CHECK_EQ_INT(v, ints[i].want);
    }
    CHECK_EQ_INT(ragd_gguf_get_float(&g, "t.f32", &f, &err), RAGD_OK);
    CHECK(f == (double)1e-5f);
    CHECK_EQ_INT(ragd_gguf_get_float(&g, "t.f64", &f, &err), RAGD_OK);
    CHECK(f == 0.125);
    CHECK_EQ_INT(ragd_gguf_get_bool(&g, "t.bool", &bo, &err), RAGD_OK);
    CHECK(bo);
    /* wrong types and missing keys */
    CHECK_EQ_INT(ragd_gguf_get_int(&g, "t.f32", &v, &err), RAGD_EFORMAT);
    CHECK(strstr(ragd_err_msg(&err), "'t.f32' should be an integer, found f32") != NULL);
    CHECK_EQ_INT(ragd_gguf_get_float(&g, "t.u8", &f, &err), RAGD_EFORMAT);
    CHECK_EQ_INT(ragd_gguf_get_int(&g, "nope", &v, &err), RAGD_ENOTFOUND);
    CHECK(strstr(ragd_err_msg(&err), "t.gguf: metadata key 'nope' is missing") != NULL);
    char *s = NULL;
    CHECK_EQ_INT(ragd_gguf_get_strdup(&g, "general.architecture", &s, &err), RAGD_OK);
    CHECK_STR(s, "llama");
    free(s);
    const char **ptrs;
    size_t *lens, n;
    CHECK_EQ_INT(ragd_gguf_get_str_array(&g, "t.arr_str", &ptrs, &lens, &n, &err), RAGD_OK);
    CHECK_EQ_INT(n, 3);
    CHECK(lens[0] == 3 && !memcmp(ptrs[0], "Ġt", 3));
    CHECK_EQ_INT(lens[1], 0);
    CHECK(lens[2] == 3 && !memcmp(ptrs[2], "a b", 3));
    free(ptrs);
    free(lens);
    CHECK_EQ_INT(ragd_gguf_get_str_array(&g, "t.arr_u32", &ptrs, &lens, &n, &err), RAGD_EFORMAT);
    int32_t *ia;
    CHECK_EQ_INT(ragd_gguf_get_i32_array(&g, "t.arr_u32", &ia, &n, &err), RAGD_OK);
    CHECK(n == 3 && ia[0] == 7 && ia[1] == 8 && ia[2] == 9);
    free(ia);
    CHECK_EQ_INT(ragd_gguf_get_i32_array(&g, "t.arr_i8", &ia, &n, &err), RAGD_OK);
    CHECK(n == 2 && ia[0] == -1 && ia[1] == 100);
    free(ia);
    const ragd_gguf_kv *kv = ragd_gguf_find(&g, "t.nested");
    CHECK(kv && kv->type == RAGD_GGUF_ARRAY && kv->arr_type == RAGD_GGUF_ARRAY && kv->arr_n == 2);
    /* tensors */
    const ragd_gguf_tensor *a = ragd_gguf_find_tensor(&g, "a"), *t = ragd_gguf_find_tensor(&g, "b");
    CHECK(a && t && !ragd_gguf_find_tensor(&g, "c"));
    if (a && t) {
        CHECK(a->n_dims == 2 && a->ne[0] == 32 && a->ne[1] == 2 && a->ne[2] == 1 && a->type == RAGD_GGML_F32);
        CHECK_EQ_INT(a->nbytes, 256);
        CHECK(a->data == (const uint8_t *)b.data + g.data_offset);
        float x;
        memcpy(&x, a->data + 4 * 63, 4);
        CHECK(x == 63.0f);
        CHECK_EQ_INT(t->nbytes, 68);
        CHECK(t->data + t->nbytes == (const uint8_t *)b.data + b.len);
    }
    ragd_gguf_free(&g);
    ragd_gguf_free(&g); /* twice is fine */
    /* version 2 has the same layout */
    patch_u32(&b, o.version, 2);
    CHECK_EQ_INT(parse(&b, &g, &err), RAGD_OK);
    CHECK_EQ_INT(g.version, 2);
    ragd_gguf_free(&g);
    ragd_err_free(&err);
    ragd_buf_free(&b);
}

/* every proper prefix of the valid file fails cleanly (EFORMAT), never crashes */
static void test_truncations(void) {
    ragd_buf b = {0};
    offs o;
    build_base(&b, &o);
    int bad = 0;
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact-size copy so ASan sees any overread */
        memcpy(copy, b.data, n);
        ragd_gguf g;
        ragd_err err = {0};
        ragd_status s = ragd_gguf_parse(copy, n, "t.gguf", &g, &err);
        if (s != RAGD_EFORMAT || (n >= 24 && !strstr(ragd_err_msg(&err), "truncated"))) {
            if (bad++ < 5) fprintf(stderr, "prefix %zu: %s %s\n", n, ragd_status_name(s), ragd_err_msg(&err));
        }
        ragd_gguf_free(&g);
        ragd_err_free(&err);
        free(copy);
    }
    CHECK_EQ_INT(bad, 0);
    ragd_buf_free(&b);
}

static void test_header_errors(void) {
    ragd_buf b = {0};
    offs o;
    build_base(&b, &o);
    b.data[0] = 'X';
    EXPECT_FAIL(&b, RAGD_EFORMAT, "t.gguf: not a GGUF file");
    build_base(&b, &o);
    patch_u32(&b, o.version, 1);
    EXPECT_FAIL(&b, RAGD_EUNSUPPORTED, "GGUF version 1 is not supported");
    patch_u32(&b, o.version, 4);
    EXPECT_FAIL(&b, RAGD_EUNSUPPORTED, "unsupported GGUF version 4");
    patch_u32(&b, o.version, 0x03000000u);
    EXPECT_FAIL(&b, RAGD_EUNSUPPORTED, "big-endian");
    build_base(&b, &o);
    patch_u64(&b, o.n_kv, 1ull << 40);
    EXPECT_FAIL(&b, RAGD_EFORMAT, "absurd metadata count 1099511627776");
    build_base(&b, &o);
    patch_u64(&b, o.n_tensors, 1ull << 62);
    EXPECT_FAIL(&b, RAGD_EFORMAT, "absurd tensor count");
    build_base(&b, &o);
    patch_u64(&b, o.n_tensors, 3); /* a third info would be read from the padding/data */
    EXPECT_FAIL(&b, RAGD_EFORMAT, "t.gguf");
    ragd_buf_free(&b);
}

static void test_kv_errors(void) {
    ragd_buf b = {0};
    offs o;
    build_base(&b, &o);
    patch_u64(&b, o.str_arr_count, 1ull << 61);
    EXPECT_FAIL(&b, RAGD_EFORMAT, "key 't.arr_str': absurd array count");
    build_base(&b, &o);
    patch_u64(&b, o.str_arr_count, 1000);
    EXPECT_FAIL(&b, RAGD_EFORMAT, "truncated or corrupt GGUF file");
    build_base(&b, &o);
    patch_u32(&b, o.nested_inner_type, 13);
    EXPECT_FAIL(&b, RAGD_EFORMAT, "unknown value type 13 in nested array");
    build_base(&b, &o);
    b.data[o.bool_val] = 2;
    EXPECT_FAIL(&b, RAGD_EFORMAT, "key 't.bool': bool value 2 is neither 0 nor 1");
    build_base(&b, &o);
    patch_u32(&b, o.align_val, 48);
    EXPECT_FAIL(&b, RAGD_EFORMAT, "general.alignment 48 is not a power of two");
    build_base(&b, &o);
    patch_u32(&b, o.align_val, 0);
    EXPECT_FAIL(&b, RAGD_EFORMAT, "general.alignment 0 is not a power of two");
    build_base(&b, &o);
    patch_u32(&b, o.align_type, RAGD_GGUF_I32);
    EXPECT_FAIL(&b, RAGD_EFORMAT, "general.alignment must be a u32, found i32");

    /* small hand-built files for what the base cannot express */
    ragd_buf s = {0};
    /* unknown top-level value type */
    put_u32(&s, RAGD_GGUF_MAGIC); put_u32(&s, 3); put_u64(&s, 0); put_u64(&s, 1);
    put_str(&s, "k"); put_u32(&s, 77); put_u32(&s, 0);
    EXPECT_FAIL(&s, RAGD_EFORMAT, "key 'k': unknown value type 77");
    /* duplicate key */
    ragd_buf_reset(&s);
    put_u32(&s, RAGD_GGUF_MAGIC); put_u32(&s, 3); put_u64(&s, 0); put_u64(&s, 2);
    put_str(&s, "k"); put_u32(&s, RAGD_GGUF_U8); put_u8(&s, 1);
    put_str(&s, "k"); put_u32(&s, RAGD_GGUF_U8); put_u8(&s, 2);
    EXPECT_FAIL(&s, RAGD_EFORMAT, "duplicate metadata key 'k'");
    /* empty key; key with a NUL */
    ragd_buf_reset(&s);
    put_u32(&s, RAGD_GGUF_MAGIC); put_u32(&s, 3); put_u64(&s, 0); put_u64(&s, 1);
    put_str(&s, ""); put_u32(&s, RAGD_GGUF_U8); put_u8(&s, 1); put_u32(&s, 0); put_u32(&s, 0);
    EXPECT_FAIL(&s, RAGD_EFORMAT, "bad metadata key at offset 24: empty");
    ragd_buf_reset(&s);
    put_u32(&s, RAGD_GGUF_MAGIC); put_u32(&s, 3); put_u64(&s, 0); put_u64(&s, 1);
    put_u64(&s, 3); ragd_buf_append(&s, "a\0b", 3); put_u32(&s, RAGD_GGUF_U8); put_u8(&s, 1);
    EXPECT_FAIL(&s, RAGD_EFORMAT, "contains a NUL byte");
    /* a string whose length runs past the end (and would overflow pos + len) */
    ragd_buf_reset(&s);
    put_u32(&s, RAGD_GGUF_MAGIC); put_u32(&s, 3); put_u64(&s, 0); put_u64(&s, 1);
    put_str(&s, "k"); put_u32(&s, RAGD_GGUF_STRING); put_u64(&s, UINT64_MAX); put_u64(&s, 0);
    EXPECT_FAIL(&s, RAGD_EFORMAT, "truncated GGUF file: string value needs 18446744073709551615 bytes");
    /* fixed-size array whose byte count overflows size_t */
    ragd_buf_reset(&s);
    put_u32(&s, RAGD_GGUF_MAGIC); put_u32(&s, 3); put_u64(&s, 0); put_u64(&s, 1);
    put_str(&s, "k"); put_u32(&s, RAGD_GGUF_ARRAY); put_u32(&s, RAGD_GGUF_U64); put_u64(&s, 1ull << 62); put_u64(&s, 0);
    EXPECT_FAIL(&s, RAGD_EFORMAT, "key 'k': array of 4611686018427387904 u64 needs more bytes");
    /* arrays nested deeper than the cap */
    ragd_buf_reset(&s);
    put_u32(&s, RAGD_GGUF_MAGIC); put_u32(&s, 3); put_u64(&s, 0); put_u64(&s, 1);
    put_str(&s, "deep"); put_u32(&s, RAGD_GGUF_ARRAY);
    for (int d = 0; d < 20; d++) { put_u32(&s, RAGD_GGUF_ARRAY); put_u64(&s, 1); }
    put_u32(&s, RAGD_GGUF_U8); put_u64(&s, 1); put_u8(&s, 0);
    for (int d = 0; d < 16; d++) put_u64(&s, 0);
    EXPECT_FAIL(&s, RAGD_EFORMAT, "key 'deep': arrays nested deeper than 8");
    /* nesting within the cap is fine, and a file with no tensors needs no data section */
    ragd_buf_reset(&s);
    put_u32(&s, RAGD_GGUF_MAGIC); put_u32(&s, 3); put_u64(&s, 0); put_u64(&s, 1);
    put_str(&s, "deep"); put_u32(&s, RAGD_GGUF_ARRAY);
    for (int d = 0; d < 5; d++) { put_u32(&s, RAGD_GGUF_ARRAY); put_u64(&s, 1); }
    put_u32(&s, RAGD_GGUF_U8); put_u64(&s, 1); put_u8(&s, 0);
    {
        ragd_gguf g;
        ragd_err err = {0};
        CHECK_EQ_INT(parse(&s, &g, &err), RAGD_OK);
        CHECK_EQ_INT(g.n_kv, 1);
        ragd_gguf_free(&g);
        ragd_err_free(&err);
    }
    ragd_buf_free(&s);
    ragd_buf_free(&b);
}

static void test_tensor_errors(void) {
    ragd_buf b = {0};
    offs o;
    build_base(&b, &o);
    patch_u64(&b, o.a_offset, 4);
    EXPECT_FAIL(&b, RAGD_EFORMAT, "tensor 'a': data offset 4 is not a multiple of the alignment 32");
    build_base(&b, &o);
    patch_u32(&b, o.a_type, 99);
    EXPECT_FAIL(&b, RAGD_EUNSUPPORTED, "tensor 'a': unknown ggml type 99");
    build_base(&b, &o);
    patch_u32(&b, o.a_type, 4); /* a removed ggml type id */
    EXPECT_FAIL(&b, RAGD_EUNSUPPORTED, "tensor 'a': unknown ggml type 4");
    build_base(&b, &o);
    patch_u32(&b, o.a_ndims, 5);
    EXPECT_FAIL(&b, RAGD_EFORMAT, "tensor 'a': 5 dims (ragd accepts 1 to 4)");
    build_base(&b, &o);
    patch_u32(&b, o.a_ndims, 0);
    EXPECT_FAIL(&b, RAGD_EFORMAT, "tensor 'a': 0 dims");
    build_base(&b, &o);
    patch_u64(&b, o.a_dim1, 0);
    EXPECT_FAIL(&b, RAGD_EFORMAT, "tensor 'a': dim 1 = 0 is zero or overflows");
    build_base(&b, &o);
    patch_u64(&b, o.a_dim0, 1ull << 40);
    patch_u64(&b, o.a_dim1, 1ull << 40);
    EXPECT_FAIL(&b, RAGD_EFORMAT, "tensor 'a': dim 1 = 1099511627776 is zero or overflows");
    build_base(&b, &o);
    patch_u64(&b, o.a_dim1, 1ull << 50); /* fits size_t, but its bytes run far past the end */
    EXPECT_FAIL(&b, RAGD_EFORMAT, "tensor 'a' needs bytes");
    build_base(&b, &o);
    patch_u64(&b, o.b_offset, 1ull << 63);
    EXPECT_FAIL(&b, RAGD_EFORMAT, "truncated GGUF file: tensor 'b'");
    build_base(&b, &o);
    patch_u64(&b, o.b_offset, 224); /* a occupies [0, 256) */
    EXPECT_FAIL(&b, RAGD_EFORMAT, "tensors 'a' and 'b' overlap");
    build_base(&b, &o);
    patch_u64(&b, o.b_dim0, 48); /* Q8_0 rows come in blocks of 32 */
    EXPECT_FAIL(&b, RAGD_EFORMAT, "tensor 'b': row length 48 is not a multiple of the Q8_0 block size 32");
    build_base(&b, &o);
    b.data[o.a_name_len + 8] = 'b'; /* rename a → b */
    EXPECT_FAIL(&b, RAGD_EFORMAT, "duplicate tensor name 'b'");
    /* alignment 64 moves the data section: the same file now needs 64-aligned offsets */
    build_base(&b, &o);
    patch_u32(&b, o.align_val, 64);
    patch_u64(&b, o.b_offset, 256);
    {
        ragd_gguf g;
        ragd_err err = {0};
        ragd_status s = parse(&b, &g, &err);
        /* the data section starts at the next multiple of 64, which may cut b short: either OK with
         * 64-aligned data or a clean truncation error */
        CHECK(s == RAGD_OK ? g.data_offset % 64 == 0 : strstr(ragd_err_msg(&err), "truncated") != NULL);
        ragd_gguf_free(&g);
        ragd_err_free(&err);
    }
    ragd_buf_free(&b);
}

/* ---------------------------------------------------------------------------------------------- */
/* files written by gguf-py */

static void check_file(const char *path, const char *arch, size_t n_tensors, uint32_t align, size_t n_vocab,
                       size_t n_merges, uint32_t embd_type) {
    ragd_mmap m;
    ragd_err err = {0};
    if (ragd_mmap_open(path, &m, &err) != RAGD_OK) {
        CHECK(!"fixture missing");
        fprintf(stderr, "%s\n", ragd_err_msg(&err));
        ragd_err_free(&err);
        return;
    }
    ragd_gguf g;
    CHECK_EQ_INT(ragd_gguf_parse(m.data, m.size, path, &g, &err), RAGD_OK);
    if (err.msg) fprintf(stderr, "%s\n", err.msg);
    CHECK_EQ_INT(g.version, 3);
    CHECK_EQ_INT(g.n_tensors, n_tensors);
    CHECK_EQ_INT(g.alignment, align);
    CHECK_EQ_INT(g.data_offset % align, 0);
    char *s = NULL;
    CHECK_EQ_INT(ragd_gguf_get_strdup(&g, "general.architecture", &s, &err), RAGD_OK);
    CHECK_STR(s, arch);
    free(s);
    char key[128];
    int64_t v;
    snprintf(key, sizeof key, "%s.block_count", arch);
    CHECK_EQ_INT(ragd_gguf_get_int(&g, key, &v, &err), RAGD_OK);
    const ragd_gguf_kv *kv = ragd_gguf_find(&g, key);
    CHECK(kv && kv->type == RAGD_GGUF_U32); /* the writer emits u32 where the spec says u64 */
    const char **toks;
    size_t *lens, n;
    CHECK_EQ_INT(ragd_gguf_get_str_array(&g, "tokenizer.ggml.tokens", &toks, &lens, &n, &err), RAGD_OK);
    CHECK_EQ_INT(n, n_vocab);
    free(toks);
    free(lens);
    CHECK_EQ_INT(ragd_gguf_get_str_array(&g, "tokenizer.ggml.merges", &toks, &lens, &n, &err), RAGD_OK);
    CHECK_EQ_INT(n, n_merges);
    free(toks);
    free(lens);
    int32_t *types;
    CHECK_EQ_INT(ragd_gguf_get_i32_array(&g, "tokenizer.ggml.token_type", &types, &n, &err), RAGD_OK);
    CHECK_EQ_INT(n, n_vocab);
    free(types);
    const ragd_gguf_tensor *t = ragd_gguf_find_tensor(&g, "token_embd.weight");
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_INT(t->n_dims, 2);
        CHECK_EQ_INT(t->type, embd_type);
        CHECK_EQ_INT(t->ne[1], (int64_t)n_vocab);
    }
    for (size_t i = 0; i < g.n_tensors; i++) CHECK_EQ_INT(((size_t)(g.tensors[i].data - m.data)) % align, 0);
    ragd_gguf_free(&g);
    ragd_mmap_close(&m);
    ragd_err_free(&err);
}

static void test_fixtures(void) {
    const char *src = getenv("RAGD_SRC");
    if (!src) src = ".";
    char path[4096];
    const struct { const char *file, *arch; size_t n_tensors; uint32_t align; size_t n_vocab, n_merges; uint32_t embd; } fx[] = {
        {"llama/f32.gguf", "llama", 20, 32, 320, 68, RAGD_GGML_F32},
        {"llama/f16.gguf", "llama", 20, 32, 320, 68, RAGD_GGML_F16},
        {"llama/bf16.gguf", "llama", 20, 32, 320, 68, RAGD_GGML_BF16},
        {"llama/q.gguf", "llama", 20, 32, 320, 68, RAGD_GGML_Q8_0},
        {"qwen3/f32.gguf", "qwen3", 25, 64, 336, 59, RAGD_GGML_F32},
        {"qwen3/q.gguf", "qwen3", 25, 32, 336, 59, RAGD_GGML_Q8_0},
    };
    for (size_t i = 0; i < sizeof(fx) / sizeof(fx[0]); i++) {
        snprintf(path, sizeof path, "%s/tests/gguf/fixtures/%s", src, fx[i].file);
        check_file(path, fx[i].arch, fx[i].n_tensors, fx[i].align, fx[i].n_vocab, fx[i].n_merges, fx[i].embd);
    }
    /* the real default model, when scripts/default-model.sh has cached it */
    if (test_default_model(path, sizeof path, "real SmolLM2 GGUF"))
        check_file(path, "llama", 272, 32, 49152, 48900, RAGD_GGML_Q8_0);
}

int main(void) {
    test_valid();
    test_truncations();
    test_header_errors();
    test_kv_errors();
    test_tensor_errors();
    test_fixtures();
    TEST_DONE();
}
