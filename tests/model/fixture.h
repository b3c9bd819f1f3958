/* fixture.h — builds tiny Hugging Face model directories at test time: a safetensors writer (header
 * JSON + deterministic tensor bytes) and a model spec → config.json + weights (+ optional index/shards,
 * generation_config.json, sentence-transformers files, a tokenizer.json placeholder).
 *
 * Tensor names are spelled out here independently of src/model/validate.c, so the loader is tested against
 * the Hugging Face naming, not against itself. Values: element i of a tensor with seed s is
 * fx_value(s, i), exactly representable in BF16 and F16. */
#ifndef RAGD_TEST_MODEL_FIXTURE_H
#define RAGD_TEST_MODEL_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

/* A value exactly representable in bf16 and f16: k/64 for k in [-64, 63]. */
static float fx_value(uint32_t seed, size_t i) {
    uint32_t h = (uint32_t)(i * 2654435761u) ^ (seed * 40503u + 0x9e37u);
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return (float)((int)(h % 128) - 64) / 64.0f;
}

typedef struct fx_st {
    ragd_buf hdr;  /* JSON members so far */
    ragd_buf data; /* tensor bytes */
    int n;
} fx_st;

static size_t fx_dtype_size(const char *dt) {
    if (!strcmp(dt, "F32") || !strcmp(dt, "I32")) return 4;
    if (!strcmp(dt, "F64") || !strcmp(dt, "I64")) return 8;
    if (!strcmp(dt, "U8") || !strcmp(dt, "I8")) return 1;
    return 2;
}

/* Appends a tensor with deterministic values from seed. */
static void fx_st_add(fx_st *w, const char *name, const char *dtype, int nd, const int64_t *shape, uint32_t seed) {
    size_t numel = 1;
    for (int i = 0; i < nd; i++) numel *= (size_t)shape[i];
    size_t es = fx_dtype_size(dtype), begin = w->data.len;
    for (size_t i = 0; i < numel; i++) {
        float v = fx_value(seed, i);
        if (!strcmp(dtype, "F32")) ragd_buf_append(&w->data, &v, 4);
        else if (!strcmp(dtype, "BF16")) {
            uint16_t h = ragd_f32_to_bf16(v);
            ragd_buf_append(&w->data, &h, 2);
        } else if (!strcmp(dtype, "F16")) {
            uint16_t h = ragd_f32_to_f16(v);
            ragd_buf_append(&w->data, &h, 2);
        } else {
            uint8_t z[8] = {0};
            ragd_buf_append(&w->data, z, es);
        }
    }
    ragd_buf_printf(&w->hdr, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", w->n ? "," : "", name, dtype);
    for (int i = 0; i < nd; i++) ragd_buf_printf(&w->hdr, "%s%lld", i ? "," : "", (long long)shape[i]);
    ragd_buf_printf(&w->hdr, "],\"data_offsets\":[%zu,%zu]}", begin, w->data.len);
    w->n++;
}

/* Writes 8-byte length + {header} (space-padded to 8) + data. Returns 0 on success. */
static int fx_st_write(fx_st *w, const char *path) {
    ragd_buf h = {0};
    ragd_buf_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}%s%s}", w->n ? "," : "", w->hdr.data ? w->hdr.data : "");
    while (h.len % 8) ragd_buf_putc(&h, ' ');
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint64_t n = h.len;
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(n >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(h.data, 1, h.len, f);
    if (w->data.len) fwrite(w->data.data, 1, w->data.len, f);
    fclose(f);
    ragd_buf_free(&h);
    ragd_buf_free(&w->hdr);
    ragd_buf_free(&w->data);
    w->n = 0;
    return 0;
}

static void fx_write_text(const char *dir, const char *name, const char *text) {
    char *p = ragd_path_join(dir, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    free(p);
}

/* Copies tests/model/data/tiny_tokenizer/{tokenizer.json, tokenizer_config.json} (283 ids, eos
 * <|im_end|> = 282; made by tools/gen_model_test_data.py) into dir. */
static void fx_copy_tokenizer(const char *dir) {
    const char *src = getenv("RAGD_SRC");
    if (!src) {
        fprintf(stderr, "RAGD_SRC is not set\n");
        exit(1);
    }
    const char *names[] = {"tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 2; i++) {
        ragd_buf from = {0};
        ragd_buf_printf(&from, "%s/tests/model/data/tiny_tokenizer/%s", src, names[i]);
        char *text;
        size_t len;
        ragd_err err = {0};
        if (ragd_file_read(from.data, &text, &len, &err) != RAGD_OK) {
            fprintf(stderr, "%s\n", ragd_err_msg(&err));
            exit(1);
        }
        fx_write_text(dir, names[i], text);
        free(text);
        ragd_buf_free(&from);
    }
}

/* ---- model spec ---- */
typedef struct fx_spec {
    const char *arch;     /* architectures[0] (NULL → omit the field) */
    const char *model_type;
    int E, F, L, H, KV, hd, V; /* hd 0 → not written to config.json */
    bool tie, prefix, lm_head, qkv_bias, qk_norm;
    const char *dtype;    /* BF16/F16/F32 */
    const char *extra;    /* extra config.json members, e.g. ",\"rope_scaling\":{...}" */
    const char *omit_field; /* config.json field to leave out */
    const char *skip;     /* full tensor name to leave out */
    const char *bad_name; /* full tensor name to write with bad_shape / bad_dtype */
    int bad_nd;
    int64_t bad_shape[2];
    const char *bad_dtype;
    const char *extra_tensor; /* an extra unexpected tensor name */
    int n_shards;         /* 0/1 → model.safetensors; 2 → index + two shards */
} fx_spec;

static void fx_tensor(fx_st *w, const fx_spec *s, const char *name, int nd, int64_t a, int64_t b, uint32_t seed) {
    if (s->skip && !strcmp(s->skip, name)) return;
    int64_t shape[2] = {a, b};
    const char *dt = s->dtype;
    if (s->bad_name && !strcmp(s->bad_name, name)) {
        if (s->bad_nd) {
            nd = s->bad_nd;
            shape[0] = s->bad_shape[0];
            shape[1] = s->bad_shape[1];
        }
        if (s->bad_dtype) dt = s->bad_dtype;
    }
    fx_st_add(w, name, dt, nd, shape, seed);
}

/* The seed of a tensor: stable per name so tests can recompute values. */
static uint32_t fx_seed(const char *name) {
    uint32_t h = 2166136261u;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

/* Writes the model's tensors into one or two safetensors writers (layers split by parity for 2 shards). */
static void fx_tensors(const fx_spec *s, fx_st *w0, fx_st *w1, ragd_buf *index) {
    const char *p = s->prefix ? "model." : "";
    int hd = s->hd ? s->hd : s->E / s->H;
    int64_t Dq = (int64_t)s->H * hd, Dkv = (int64_t)s->KV * hd;
    char name[256];
#define T(w, nd, a, b, ...)                                                                                    \
    do {                                                                                                       \
        snprintf(name, sizeof name, __VA_ARGS__);                                                              \
        fx_tensor(w, s, name, nd, a, b, fx_seed(name));                                                        \
        if (index) ragd_buf_printf(index, "%s\"%s\":\"%s\"", index->len ? "," : "", name,                      \
                                   (w) == w0 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors"); \
    } while (0)
    T(w0, 2, s->V, s->E, "%sembed_tokens.weight", p);
    for (int i = 0; i < s->L; i++) {
        fx_st *w = (w1 && i % 2) ? w1 : w0;
        T(w, 1, s->E, 0, "%slayers.%d.input_layernorm.weight", p, i);
        T(w, 2, Dq, s->E, "%slayers.%d.self_attn.q_proj.weight", p, i);
        T(w, 2, Dkv, s->E, "%slayers.%d.self_attn.k_proj.weight", p, i);
        T(w, 2, Dkv, s->E, "%slayers.%d.self_attn.v_proj.weight", p, i);
        if (s->qkv_bias) {
            T(w, 1, Dq, 0, "%slayers.%d.self_attn.q_proj.bias", p, i);
            T(w, 1, Dkv, 0, "%slayers.%d.self_attn.k_proj.bias", p, i);
            T(w, 1, Dkv, 0, "%slayers.%d.self_attn.v_proj.bias", p, i);
        }
        T(w, 2, s->E, Dq, "%slayers.%d.self_attn.o_proj.weight", p, i);
        if (s->qk_norm) {
            T(w, 1, hd, 0, "%slayers.%d.self_attn.q_norm.weight", p, i);
            T(w, 1, hd, 0, "%slayers.%d.self_attn.k_norm.weight", p, i);
        }
        T(w, 1, s->E, 0, "%slayers.%d.post_attention_layernorm.weight", p, i);
        T(w, 2, s->F, s->E, "%slayers.%d.mlp.gate_proj.weight", p, i);
        T(w, 2, s->F, s->E, "%slayers.%d.mlp.up_proj.weight", p, i);
        T(w, 2, s->E, s->F, "%slayers.%d.mlp.down_proj.weight", p, i);
    }
    fx_st *wl = w1 ? w1 : w0;
    T(wl, 1, s->E, 0, "%snorm.weight", p);
    if (s->lm_head) T(wl, 2, s->V, s->E, "lm_head.weight");
    if (s->extra_tensor) T(wl, 1, 4, 0, "%s", s->extra_tensor);
#undef T
}

/* Creates dir (mkdir -p of the last component only) and writes the whole model. */
static void fx_write_model(const char *dir, const fx_spec *s) {
    mkdir(dir, 0755);
    ragd_buf c = {0};
    ragd_buf_puts(&c, "{");
    if (s->arch) ragd_buf_printf(&c, "\"architectures\":[\"%s\"],", s->arch);
    if (s->model_type) ragd_buf_printf(&c, "\"model_type\":\"%s\",", s->model_type);
    const char *fields[] = {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                            "num_attention_heads", "num_key_value_heads", "head_dim"};
    int vals[] = {s->V, s->E, s->F, s->L, s->H, s->KV, s->hd};
    for (int i = 0; i < 7; i++) {
        if (s->omit_field && !strcmp(s->omit_field, fields[i])) continue;
        if (i == 6 && !s->hd) continue;
        ragd_buf_printf(&c, "\"%s\":%d,", fields[i], vals[i]);
    }
    ragd_buf_printf(&c, "\"rms_norm_eps\":1e-06,\"rope_theta\":1000000.0,\"max_position_embeddings\":4096,"
                        "\"tie_word_embeddings\":%s,\"hidden_act\":\"silu\",\"bos_token_id\":1,\"eos_token_id\":5%s}",
                    s->tie ? "true" : "false", s->extra ? s->extra : "");
    fx_write_text(dir, "config.json", c.data);
    ragd_buf_free(&c);
    fx_copy_tokenizer(dir);
    fx_st w0 = {0}, w1 = {0};
    if (s->n_shards == 2) {
        ragd_buf idx = {0};
        fx_tensors(s, &w0, &w1, &idx);
        ragd_buf j = {0};
        ragd_buf_printf(&j, "{\"metadata\":{\"total_size\":0},\"weight_map\":{%s}}", idx.data);
        fx_write_text(dir, "model.safetensors.index.json", j.data);
        ragd_buf_free(&j);
        ragd_buf_free(&idx);
        char *p0 = ragd_path_join(dir, "model-00001-of-00002.safetensors");
        char *p1 = ragd_path_join(dir, "model-00002-of-00002.safetensors");
        fx_st_write(&w0, p0);
        fx_st_write(&w1, p1);
        free(p0);
        free(p1);
    } else {
        fx_tensors(s, &w0, NULL, NULL);
        char *p0 = ragd_path_join(dir, "model.safetensors");
        fx_st_write(&w0, p0);
        free(p0);
    }
}

/* A fresh temp folder (mkdtemp) for one test run; rm -r'd by fx_rmdir. */
static char *fx_tmpdir(void) {
    char tmpl[] = "/tmp/ragd_model_test_XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? ragd_xstrdup(d) : NULL;
}

static void fx_rmdir(const char *dir) {
    ragd_buf cmd = {0};
    ragd_buf_printf(&cmd, "rm -rf '%s'", dir);
    if (system(cmd.data) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    ragd_buf_free(&cmd);
}

#endif
