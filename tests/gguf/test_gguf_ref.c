/* test_gguf_ref.c — the embedded default model (SmolLM2-135M-Instruct Q4_1 GGUF) against transformers.
 *
 * fixtures/refs/smollm2_gguf_greedy.json (tools/gguf_reference.py) records what transformers holds after
 * loading the same GGUF: the sha256 of the fp32 weights of a few tensors (Q8_0 embedding, Q4_1 matrices
 * incl. the un-permuted q/k, F32 norms) and the token ids of each reference prompt. Here ragd loads the file,
 * dequantizes with ragd_tensor_to_f32 and must match bit for bit; the prompts must tokenize to the same
 * ids. Skips (exit 0 with a SKIP line) when the model is not cached: run scripts/default-model.sh. */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>

#include "model/model.h"
#include "test.h"

static const ragd_tensor *find_slot(const ragd_model *m, const char *hf) {
    int layer;
    char rest[128];
    if (!strcmp(hf, "model.embed_tokens.weight")) return &m->tok_embd;
    if (!strcmp(hf, "model.norm.weight")) return &m->out_norm;
    if (sscanf(hf, "model.layers.%d.%127s", &layer, rest) != 2 || layer < 0 || layer >= m->cfg.n_layer) return NULL;
    const ragd_layer_weights *l = &m->layers[layer];
    static const struct { const char *name; size_t off; } k[] = {
        {"self_attn.q_proj.weight", offsetof(ragd_layer_weights, wq)},
        {"self_attn.k_proj.weight", offsetof(ragd_layer_weights, wk)},
        {"self_attn.v_proj.weight", offsetof(ragd_layer_weights, wv)},
        {"self_attn.o_proj.weight", offsetof(ragd_layer_weights, wo)},
        {"mlp.gate_proj.weight", offsetof(ragd_layer_weights, w_gate)},
        {"mlp.up_proj.weight", offsetof(ragd_layer_weights, w_up)},
        {"mlp.down_proj.weight", offsetof(ragd_layer_weights, w_down)},
        {"input_layernorm.weight", offsetof(ragd_layer_weights, attn_norm)},
        {"post_attention_layernorm.weight", offsetof(ragd_layer_weights, ffn_norm)},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (!strcmp(rest, k[i].name)) return (const ragd_tensor *)((const char *)l + k[i].off);
    return NULL;
}

static void sha256_hex(const void *p, size_t n, char out[65]) {
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int main(void) {
    const char *src = getenv("RAGD_SRC");
    char path[4096], ref[4096];
    snprintf(ref, sizeof ref, "%s/fixtures/refs/smollm2_gguf_greedy.json", src ? src : ".");
    if (!test_default_model(path, sizeof path, "SmolLM2 reference")) TEST_DONE();
    json_error_t jerr;
    json_t *root = json_load_file(ref, 0, &jerr);
    CHECK(root != NULL);
    if (!root) {
        fprintf(stderr, "%s: %s\n", ref, jerr.text);
        TEST_DONE();
    }
    ragd_model *m = NULL;
    ragd_err err = {0};
    CHECK_EQ_INT(ragd_model_load(path, &m, &err), RAGD_OK);
    if (!m) {
        fprintf(stderr, "%s\n", ragd_err_msg(&err));
        json_decref(root);
        TEST_DONE();
    }

    /* weights: bit-identical to transformers' dequantization */
    size_t i;
    json_t *t;
    int n_tensors = 0;
    json_array_foreach(json_object_get(root, "tensors"), i, t) {
        const char *name = json_string_value(json_object_get(t, "name"));
        const ragd_tensor *x = find_slot(m, name);
        CHECK(x != NULL);
        if (!x) continue;
        json_t *shape = json_object_get(t, "shape");
        CHECK_EQ_INT(x->n_dims, json_array_size(shape));
        for (int d = 0; d < x->n_dims; d++) CHECK_EQ_INT(x->shape[d], json_integer_value(json_array_get(shape, d)));
        size_t n = ragd_tensor_numel(x);
        float *f = malloc(n * sizeof *f);
        ragd_tensor_to_f32(x, 0, n, f);
        char hex[65];
        sha256_hex(f, n * sizeof *f, hex);
        const char *want = json_string_value(json_object_get(t, "sha256_f32"));
        if (strcmp(hex, want)) {
            json_t *first = json_object_get(t, "first");
            fprintf(stderr, "%s (%s): sha256 of the f32 weights differs; first values ragd %.9g %.9g, transformers %.9g %.9g\n",
                    name, ragd_dtype_name(x->dtype), f[0], f[1], json_real_value(json_array_get(first, 0)),
                    json_real_value(json_array_get(first, 1)));
        }
        CHECK_STR(hex, want);
        const char *key;
        json_t *vals;
        json_object_foreach(json_object_get(t, "rows"), key, vals) {
            size_t r = (size_t)atol(key), cols = (size_t)x->shape[1];
            for (size_t k = 0; k < json_array_size(vals); k++)
                CHECK(f[r * cols + k] == (float)json_real_value(json_array_get(vals, k)));
        }
        free(f);
        n_tensors++;
    }
    CHECK(n_tensors >= 6);

    /* the prompts tokenize to transformers' ids */
    json_t *p;
    json_array_foreach(json_object_get(root, "prompts"), i, p) {
        const char *text = json_string_value(json_object_get(p, "prompt_text"));
        json_t *ids = json_object_get(p, "input_ids");
        ragd_tok_ids got = {0};
        CHECK_EQ_INT(ragd_tokenizer_encode(m->tok, text, strlen(text), false, &got, &err), RAGD_OK);
        bool same = got.n == json_array_size(ids);
        for (size_t k = 0; same && k < got.n; k++) same = got.ids[k] == json_integer_value(json_array_get(ids, k));
        if (!same)
            fprintf(stderr, "prompt %s: tokenizes to %zu ids, transformers %zu\n",
                    json_string_value(json_object_get(p, "name")), got.n, json_array_size(ids));
        CHECK(same);
        /* and the reference output decodes to the recorded text */
        json_t *out = json_object_get(p, "output_ids");
        ragd_tok_ids o = {0};
        for (size_t k = 0; k < json_array_size(out); k++) ragd_tok_ids_push(&o, (int32_t)json_integer_value(json_array_get(out, k)));
        ragd_buf txt = {0};
        CHECK_EQ_INT(ragd_tokenizer_decode(m->tok, o.ids, o.n, true, &txt, &err), RAGD_OK);
        CHECK_STR(txt.data ? txt.data : "", json_string_value(json_object_get(p, "output_text")));
        ragd_buf_free(&txt);
        ragd_tok_ids_free(&o);
        ragd_tok_ids_free(&got);
    }
    ragd_err_free(&err);
    ragd_model_free(m);
    json_decref(root);
    TEST_DONE();
}
