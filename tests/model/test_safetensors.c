/* test_safetensors.c — the safetensors header parser on hand-made headers (every rule of the format,
 * each with its message) and on a file written by the python `safetensors` package (interop). Also
 * ragd_tensor_to_f32 on GGUF Q8_0 / Q4_0 / Q4_1 blocks against the `gguf` package's dequantize. */
#include <stdlib.h>

#include "model/model_internal.h"
#include "quant_cases.h"
#include "test.h"

/* Builds a file image: u64 length + header + `data_len` bytes of data (value i & 0xff). */
static uint8_t *image(const char *hdr, size_t data_len, size_t *size) {
    size_t h = strlen(hdr);
    *size = 8 + h + data_len;
    uint8_t *p = malloc(*size + 1);
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(p + 8, hdr, h);
    for (size_t i = 0; i < data_len; i++) p[8 + h + i] = (uint8_t)i;
    return p;
}

static void expect(const char *hdr, size_t data_len, ragd_status code, const char *needle) {
    size_t size;
    uint8_t *p = image(hdr, data_len, &size);
    ragd_st_file f = {0};
    ragd_err err = {0};
    ragd_status st = ragd_safetensors_parse(p, size, "x.safetensors", &f, &err);
    if (st != code || (needle && (!err.msg || !strstr(err.msg, needle))))
        fprintf(stderr, "  header %s: got %s \"%s\", want %s \"%s\"\n", hdr, ragd_status_name(st), ragd_err_msg(&err),
                ragd_status_name(code), needle ? needle : "");
    CHECK_EQ_INT(st, code);
    if (needle) CHECK(err.msg && strstr(err.msg, needle));
    if (st != RAGD_OK) CHECK(f.entries == NULL && f.n_entries == 0);
    ragd_safetensors_free(&f);
    ragd_err_free(&err);
    free(p);
}

static void test_rules(void) {
    const char *ok2 = "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                      "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}";
    size_t size;
    uint8_t *p = image(ok2, 16, &size);
    ragd_st_file f = {0};
    ragd_err err = {0};
    CHECK_EQ_INT(ragd_safetensors_parse(p, size, "x.safetensors", &f, &err), RAGD_OK);
    CHECK_EQ_INT(f.n_entries, 2);
    if (f.n_entries == 2) { /* sorted by offset; offsets absolute */
        CHECK_STR(f.entries[0].name, "a");
        CHECK_EQ_INT(f.entries[0].dtype, RAGD_DT_BF16);
        CHECK_EQ_INT(f.entries[0].n_dims, 2);
        CHECK_EQ_INT(f.entries[0].offset, 8 + strlen(ok2));
        CHECK_EQ_INT(f.entries[0].nbytes, 8);
        CHECK_STR(f.entries[1].name, "b");
        CHECK_EQ_INT(f.entries[1].offset, 8 + strlen(ok2) + 8);
    }
    ragd_safetensors_free(&f);
    ragd_safetensors_free(&f); /* idempotent */
    free(p);

    expect("{}", 0, RAGD_OK, NULL);
    expect("{\"__metadata__\":{\"format\":\"pt\"}}", 0, RAGD_OK, NULL);
    expect("{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, RAGD_OK, NULL); /* scalar */
    expect("{\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}}", 0, RAGD_OK, NULL);
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,2],\"data_offsets\":[0,8]}}", 8, RAGD_OK, NULL);
    /* trailing whitespace padding as writers emit */
    expect("{\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}      ", 2, RAGD_OK, NULL);

    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, RAGD_EUNSUPPORTED,
           "tensor 'a': 5 dimensions");
    expect("{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, RAGD_EUNSUPPORTED,
           "x.safetensors: tensor 'w': dtype F64 is not supported");
    /* I64 parses (old BERT checkpoints' embeddings.position_ids buffer); validation refuses it as a weight */
    expect("{\"p\":{\"dtype\":\"I64\",\"shape\":[1,3],\"data_offsets\":[0,24]}}", 24, RAGD_OK, NULL);
    expect("{\"p\":{\"dtype\":\"I64\",\"shape\":[1,3],\"data_offsets\":[0,16]}}", 16, RAGD_EFORMAT,
           "shape and dtype I64 need 24");
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12, RAGD_EFORMAT,
           "tensor 'w': data_offsets [0, 12] hold 12 bytes, but shape and dtype F32 need 8");
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, RAGD_EFORMAT, "begin after end");
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, RAGD_EFORMAT,
           "tensor 'w': data_offsets [0, 8] extend beyond the end of the file");
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, RAGD_EFORMAT,
           "shape[0] is not a non-negative integer");
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, RAGD_EFORMAT,
           "overflows");
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 8, RAGD_EFORMAT,
           "byte size overflows");
    expect("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, RAGD_EFORMAT, "data_offsets");
    expect("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, RAGD_EFORMAT, "\"dtype\"");
    expect("{\"w\":[1,2]}", 0, RAGD_EFORMAT, "not a JSON object");
    expect("{\"__metadata__\":{\"n\":1}}", 0, RAGD_EFORMAT, "__metadata__");
    /* overlap, gap, trailing, duplicate */
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
           8, RAGD_EFORMAT, "(overlap)");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, RAGD_EFORMAT,
           "tensor 'a': data_offsets begin at 4, but the previous tensor ends at 0 (gap)");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, RAGD_EFORMAT,
           "cover 4 bytes of a 8-byte data section");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
           "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
           8, RAGD_EFORMAT, "not valid JSON");
    expect("[1]", 0, RAGD_EFORMAT, "not a JSON object");
    expect("{\"a\":", 0, RAGD_EFORMAT, "not valid JSON");
    expect("{}garbage", 0, RAGD_EFORMAT, "not valid JSON");

    /* raw length problems */
    ragd_st_file g = {0};
    ragd_err e2 = {0};
    uint8_t tiny[5] = {1, 0, 0, 0, 0};
    CHECK_EQ_INT(ragd_safetensors_parse(tiny, 5, "t.safetensors", &g, &e2), RAGD_EFORMAT);
    CHECK(strstr(ragd_err_msg(&e2), "t.safetensors: 5 bytes is too short") != NULL);
    uint8_t huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    CHECK_EQ_INT(ragd_safetensors_parse(huge, 16, "t.safetensors", &g, &e2), RAGD_EFORMAT);
    CHECK(strstr(ragd_err_msg(&e2), "exceeds the 100 MB limit") != NULL);
    uint8_t past[16] = {9, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    CHECK_EQ_INT(ragd_safetensors_parse(past, 16, "t.safetensors", &g, &e2), RAGD_EFORMAT);
    CHECK(strstr(ragd_err_msg(&e2), "header length 9 is beyond the end of the file (16 bytes)") != NULL);
    ragd_err_free(&e2);
}

/* A file written by the python safetensors package (tools/gen_model_test_data.py). */
static void test_python_file(void) {
    const char *src = getenv("RAGD_SRC");
    CHECK(src != NULL);
    if (!src) return;
    char *path = ragd_path_join(src, "tests/model/data/py_written.safetensors");
    ragd_mmap mm;
    ragd_err err = {0};
    CHECK_EQ_INT(ragd_mmap_open(path, &mm, &err), RAGD_OK);
    ragd_st_file f = {0};
    CHECK_EQ_INT(ragd_safetensors_parse(mm.data, mm.size, "py_written.safetensors", &f, &err), RAGD_OK);
    CHECK_EQ_INT(f.n_entries, 3);
    for (size_t i = 0; i < f.n_entries; i++) {
        const ragd_st_entry *e = &f.entries[i];
        ragd_tensor t = {e->name, mm.data + e->offset, e->dtype, e->n_dims, {0}, e->nbytes, "py"};
        memcpy(t.shape, e->shape, sizeof t.shape);
        float v[6];
        ragd_tensor_to_f32(&t, 0, ragd_tensor_numel(&t), v);
        if (!strcmp(e->name, "w.f32")) {
            CHECK_EQ_INT(e->dtype, RAGD_DT_F32);
            CHECK(e->n_dims == 2 && e->shape[0] == 2 && e->shape[1] == 3);
            for (int k = 0; k < 6; k++) CHECK(v[k] == k * 0.5f - 1.0f);
        } else if (!strcmp(e->name, "w.f16")) {
            CHECK_EQ_INT(e->dtype, RAGD_DT_F16);
            CHECK(e->n_dims == 1 && e->shape[0] == 4);
            CHECK(v[0] == 1.5f && v[1] == -2.25f && v[2] == 65504.0f && v[3] == ldexpf(1.0f, -24));
        } else if (!strcmp(e->name, "w.bf16")) {
            CHECK_EQ_INT(e->dtype, RAGD_DT_BF16);
            CHECK(e->n_dims == 2 && e->shape[0] == 2 && e->shape[1] == 2);
            CHECK(v[0] == 3.0f && v[1] == -0.0078125f && v[2] == k_bf16_1e30 && v[3] == -7.5f);
        } else
            CHECK(!"unexpected tensor");
    }
    ragd_safetensors_free(&f);
    ragd_mmap_close(&mm);
    ragd_err_free(&err);
    free(path);
}

static void check_quant(ragd_dtype dt, const uint8_t *bytes, size_t nbytes, const uint32_t *bits) {
    ragd_tensor t = {"q", bytes, dt, 2, {2, 64}, nbytes, "q"};
    size_t need;
    CHECK(ragd_dtype_nbytes(dt, QC_N, &need) && need == nbytes);
    float out[QC_N];
    ragd_tensor_to_f32(&t, 0, QC_N, out);
    int bad = 0;
    for (int i = 0; i < QC_N; i++) {
        uint32_t u;
        memcpy(&u, &out[i], 4);
        if (u != bits[i]) {
            if (bad < 3) fprintf(stderr, "  %s[%d]: 0x%08x vs 0x%08x\n", ragd_dtype_name(dt), i, u, bits[i]);
            bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    /* from the second block on */
    ragd_tensor_to_f32(&t, 32, 64, out);
    bad = 0;
    for (int i = 0; i < 64; i++) {
        uint32_t u;
        memcpy(&u, &out[i], 4);
        bad += u != bits[32 + i];
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_quant(void) {
    check_quant(RAGD_DT_Q8_0, k_q8_0_bytes, sizeof k_q8_0_bytes, k_q8_0_f32bits);
    check_quant(RAGD_DT_Q4_0, k_q4_0_bytes, sizeof k_q4_0_bytes, k_q4_0_f32bits);
    check_quant(RAGD_DT_Q4_1, k_q4_1_bytes, sizeof k_q4_1_bytes, k_q4_1_f32bits);
    CHECK_EQ_INT(sizeof k_q8_0_bytes, 4 * 34);
    CHECK_EQ_INT(sizeof k_q4_0_bytes, 4 * 18);
    CHECK_EQ_INT(sizeof k_q4_1_bytes, 4 * 20);
    /* hand-computed Q4_0 block: d = 0.5 (f16 0x3800), qs[0] = 0x9f → x[0] = (15-8)·0.5, x[16] = (9-8)·0.5 */
    uint8_t blk[18] = {0x00, 0x38, 0x9f};
    ragd_tensor t = {"h", blk, RAGD_DT_Q4_0, 1, {32}, 18, "h"};
    float o[32];
    ragd_tensor_to_f32(&t, 0, 32, o);
    CHECK(o[0] == 3.5f && o[16] == 0.5f && o[1] == -4.0f && o[17] == -4.0f);
    CHECK_STR(ragd_dtype_name(RAGD_DT_Q4_1), "Q4_1");
    CHECK_STR(ragd_dtype_name(RAGD_DT_BF16), "BF16");
    size_t nb;
    CHECK(!ragd_dtype_nbytes(RAGD_DT_Q8_0, 33, &nb));
    CHECK(!ragd_dtype_nbytes(RAGD_DT_F32, SIZE_MAX / 2, &nb));
}

int main(void) {
    test_rules();
    test_python_file();
    test_quant();
    TEST_DONE();
}
