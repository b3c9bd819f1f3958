/* test_gguf_model.c — GGUF → ragd_model against the same weights loaded from Hugging Face folders.
 *
 * tests/gguf/fixtures (tools/gguf_make_fixtures.py) holds tiny llama and qwen3 models written both as
 * safetensors and as GGUF (F32, F16, BF16 and a Q8_0/Q4_0/Q4_1 mix whose twin folder q_hf/ holds the
 * dequantized values). Loading either must give the same configuration, bit-identical f32 tensors (this
 * checks dims reversal and the llama Q/K un-permutation) and the same tokenization. Then every failure
 * mode of the loader, each with its status and message, on mutated copies of a fixture. */
#include <stdlib.h>
#include <unistd.h>

#include "model/model_internal.h"
#include "test.h"

static char g_src[2048], g_tmp[256];

static void fixture(char *out, size_t n, const char *rel) { snprintf(out, n, "%s/tests/gguf/fixtures/%s", g_src, rel); }

static ragd_model *load(const char *path) {
    ragd_model *m = NULL;
    ragd_err err = {0};
    if (ragd_model_load(path, &m, &err) != RAGD_OK) {
        fprintf(stderr, "load %s: %s\n", path, ragd_err_msg(&err));
        t_failed++;
    }
    ragd_err_free(&err);
    return m;
}

static bool same_eos(const ragd_model_config *a, const ragd_model_config *b) {
    if (a->n_eos != b->n_eos) return false;
    for (int i = 0; i < a->n_eos; i++) {
        bool f = false;
        for (int j = 0; j < b->n_eos; j++) f |= a->eos_ids[i] == b->eos_ids[j];
        if (!f) return false;
    }
    return true;
}

/* every slot: same shape, same f32 values (bitwise); returns the number of tensors compared */
static int compare_tensors(ragd_model *g, ragd_model *h, ragd_dtype matrix_dtype, const char *what) {
    ragd_weight_slot *sg = malloc(RAGD_MAX_WEIGHT_SLOTS(g->cfg.n_layer) * sizeof *sg);
    ragd_weight_slot *sh = malloc(RAGD_MAX_WEIGHT_SLOTS(h->cfg.n_layer) * sizeof *sh);
    size_t n = ragd_model_weight_slots(g, sg), nh = ragd_model_weight_slots(h, sh);
    CHECK_EQ_INT(n, nh);
    int compared = 0;
    for (size_t i = 0; i < n && i < nh; i++) {
        const ragd_tensor *a = sg[i].t, *b = sh[i].t;
        CHECK(a->data && b->data);
        if (!a->data || !b->data) continue;
        CHECK_EQ_INT(a->n_dims, b->n_dims);
        CHECK(!memcmp(a->shape, b->shape, sizeof a->shape));
        if (a->n_dims == 2 && matrix_dtype != RAGD_DT_Q8_0) CHECK_EQ_INT(a->dtype, matrix_dtype);
        if (a->n_dims == 1) CHECK_EQ_INT(a->dtype, RAGD_DT_F32);
        size_t ne = ragd_tensor_numel(a);
        CHECK_EQ_INT(ne, ragd_tensor_numel(b));
        float *fa = malloc(ne * sizeof *fa), *fb = malloc(ne * sizeof *fb);
        ragd_tensor_to_f32(a, 0, ne, fa);
        ragd_tensor_to_f32(b, 0, ne, fb);
        if (memcmp(fa, fb, ne * sizeof *fa)) {
            size_t k = 0;
            while (fa[k] == fb[k]) k++;
            fprintf(stderr, "%s: tensor %s differs at element %zu: %.9g vs %.9g\n", what, a->name, k, fa[k], fb[k]);
            t_failed++;
        } else {
            t_passed++;
        }
        compared++;
        free(fa);
        free(fb);
    }
    free(sg);
    free(sh);
    return compared;
}

static void compare_tokenizers(const ragd_tokenizer *a, const ragd_tokenizer *b, const char *what) {
    static const char *texts[] = {"Hello world", " the in on and 12345 x", "<|im_start|>user\nHi!<|im_end|>\n",
                                  "naïve café — ünïcode", "  spaces\n\nnewlines\t", "<think>\n\n</think>"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        for (int sp = 0; sp < 2; sp++) {
            ragd_tok_ids x = {0}, y = {0};
            ragd_err err = {0};
            CHECK_EQ_INT(ragd_tokenizer_encode(a, texts[i], strlen(texts[i]), sp, &x, &err), RAGD_OK);
            CHECK_EQ_INT(ragd_tokenizer_encode(b, texts[i], strlen(texts[i]), sp, &y, &err), RAGD_OK);
            bool same = x.n == y.n && !memcmp(x.ids, y.ids, x.n * sizeof *x.ids);
            if (!same) fprintf(stderr, "%s: \"%s\" tokenizes differently (%zu vs %zu ids)\n", what, texts[i], x.n, y.n);
            CHECK(same);
            CHECK(x.n > 0);
            ragd_tok_ids_free(&x);
            ragd_tok_ids_free(&y);
            ragd_err_free(&err);
        }
    CHECK_STR(ragd_tokenizer_chat_template(a), ragd_tokenizer_chat_template(b));
    CHECK_EQ_INT(ragd_tokenizer_bos_id(a), ragd_tokenizer_bos_id(b));
    CHECK_EQ_INT(ragd_tokenizer_eos_id(a), ragd_tokenizer_eos_id(b));
    CHECK_EQ_INT(ragd_tokenizer_pad_id(a), ragd_tokenizer_pad_id(b));
}

static void test_pair(const char *gguf_rel, const char *hf_rel, ragd_dtype matrix_dtype, int want_tensors) {
    char gp[4096], hp[4096];
    fixture(gp, sizeof gp, gguf_rel);
    fixture(hp, sizeof hp, hf_rel);
    ragd_model *g = load(gp), *h = load(hp);
    if (g && h) {
        const ragd_model_config *a = &g->cfg, *b = &h->cfg;
        CHECK_EQ_INT(a->arch, b->arch);
        CHECK_EQ_INT(a->n_vocab, b->n_vocab);
        CHECK_EQ_INT(a->n_embd, b->n_embd);
        CHECK_EQ_INT(a->n_ff, b->n_ff);
        CHECK_EQ_INT(a->n_layer, b->n_layer);
        CHECK_EQ_INT(a->n_head, b->n_head);
        CHECK_EQ_INT(a->n_head_kv, b->n_head_kv);
        CHECK_EQ_INT(a->head_dim, b->head_dim);
        CHECK(a->rms_eps == b->rms_eps);
        CHECK(a->rope_theta == b->rope_theta);
        CHECK_EQ_INT(a->rope_type, b->rope_type);
        CHECK(a->rope_factor == b->rope_factor);
        CHECK(a->rope_low_freq_factor == b->rope_low_freq_factor);
        CHECK(a->rope_high_freq_factor == b->rope_high_freq_factor);
        CHECK_EQ_INT(a->rope_orig_max_pos, b->rope_orig_max_pos);
        CHECK_EQ_INT(a->max_pos, b->max_pos);
        CHECK_EQ_INT(a->tie_embed, b->tie_embed);
        CHECK_EQ_INT(a->qkv_bias, b->qkv_bias);
        CHECK_EQ_INT(a->qk_norm, b->qk_norm);
        CHECK_EQ_INT(a->bos_id, b->bos_id);
        CHECK(same_eos(a, b));
        if (a->tie_embed) CHECK(g->lm_head.data == g->tok_embd.data);
        else CHECK(g->lm_head.data && g->lm_head.data != g->tok_embd.data);
        CHECK_EQ_INT(compare_tensors(g, h, matrix_dtype, gguf_rel), want_tensors);
        compare_tokenizers(g->tok, h->tok, gguf_rel);
        char want[64];
        snprintf(want, sizeof want, "%.*s", (int)(strlen(strchr(gguf_rel, '/') + 1) - 5), strchr(gguf_rel, '/') + 1);
        CHECK_STR(g->name, want); /* the file name without .gguf */
    }
    ragd_model_free(g);
    ragd_model_free(h);
}

/* ---------------------------------------------------------------------------------------------- */
/* failure modes on mutated copies */

static char *read_fixture(const char *rel, size_t *n) {
    char p[4096];
    fixture(p, sizeof p, rel);
    char *data = NULL;
    ragd_err err = {0};
    if (ragd_file_read(p, &data, n, &err) != RAGD_OK) {
        fprintf(stderr, "%s\n", ragd_err_msg(&err));
        t_failed++;
    }
    ragd_err_free(&err);
    return data;
}

/* replaces the first occurrence of needle[0..len) by repl (same length); false if absent */
static bool patch(char *data, size_t n, const void *needle, const void *repl, size_t len) {
    for (size_t i = 0; i + len <= n; i++)
        if (!memcmp(data + i, needle, len)) {
            memcpy(data + i, repl, len);
            return true;
        }
    return false;
}

static void expect_load_fail(const char *data, size_t n, ragd_status code, const char *needle) {
    char path[512];
    snprintf(path, sizeof path, "%s/bad.gguf", g_tmp);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
    ragd_model *m = NULL;
    ragd_err err = {0};
    ragd_status st = ragd_model_load(path, &m, &err);
    CHECK_EQ_INT(st, code);
    CHECK(m == NULL);
    if (!strstr(ragd_err_msg(&err), needle)) {
        t_failed++;
        fprintf(stderr, "message \"%s\" lacks \"%s\"\n", ragd_err_msg(&err), needle);
    } else {
        t_passed++;
    }
    ragd_model_free(m);
    ragd_err_free(&err);
    unlink(path);
}

static void test_failures(void) {
    size_t n;
    char *base = read_fixture("llama/f32.gguf", &n), *d = malloc(n);
    if (!base || !d) return;
    /* unknown architecture: the value of general.architecture (u64 length 5 + "llama") */
    memcpy(d, base, n);
    CHECK(patch(d, n, "\x05\0\0\0\0\0\0\0llama", "\x05\0\0\0\0\0\0\0gpt2x", 13));
    expect_load_fail(d, n, RAGD_EUNSUPPORTED, "bad.gguf: architecture 'gpt2x' is not supported");
    /* a required key missing */
    memcpy(d, base, n);
    CHECK(patch(d, n, "llama.block_count", "llama.block_xount", 17));
    expect_load_fail(d, n, RAGD_EFORMAT, "bad.gguf: required metadata key 'llama.block_count' is missing");
    /* a key of the wrong type: embedding_length as a string */
    memcpy(d, base, n);
    {
        /* "llama.embedding_length" then value type u32 (4) → f32 (6) */
        const char k[] = "llama.embedding_length";
        char from[sizeof k - 1 + 4], to[sizeof k - 1 + 4];
        memcpy(from, k, sizeof k - 1);
        memcpy(to, k, sizeof k - 1);
        memcpy(from + sizeof k - 1, "\x04\0\0\0", 4);
        memcpy(to + sizeof k - 1, "\x06\0\0\0", 4);
        CHECK(patch(d, n, from, to, sizeof from));
        expect_load_fail(d, n, RAGD_EFORMAT, "'llama.embedding_length' should be an integer, found f32");
    }
    /* a missing tensor */
    memcpy(d, base, n);
    CHECK(patch(d, n, "blk.1.ffn_up.weight", "blk.1.ffn_uq.weight", 19));
    expect_load_fail(d, n, RAGD_EFORMAT, "bad.gguf: tensor 'blk.1.ffn_up.weight' is missing (expected GGUF dims [32, 64])");
    /* a wrong shape: ffn_gate [32, 64] (GGUF order) stored as [64, 32] (same byte count) */
    memcpy(d, base, n);
    {
        const char k[] = "blk.0.ffn_gate.weight";
        char from[sizeof k - 1 + 20], to[sizeof k - 1 + 20];
        memcpy(from, k, sizeof k - 1);
        memcpy(to, k, sizeof k - 1);
        memcpy(from + sizeof k - 1, "\x02\0\0\0" "\x20\0\0\0\0\0\0\0" "\x40\0\0\0\0\0\0\0", 20);
        memcpy(to + sizeof k - 1, "\x02\0\0\0" "\x40\0\0\0\0\0\0\0" "\x20\0\0\0\0\0\0\0", 20);
        CHECK(patch(d, n, from, to, sizeof from));
        expect_load_fail(d, n, RAGD_EFORMAT, "tensor 'blk.0.ffn_gate.weight': expected shape [64, 32], found [32, 64]");
    }
    /* no embedded tokenizer */
    memcpy(d, base, n);
    CHECK(patch(d, n, "tokenizer.ggml.model", "tokenizer.ggml.modex", 20));
    expect_load_fail(d, n, RAGD_EFORMAT, "has no embedded tokenizer");
    /* truncated data section */
    expect_load_fail(base, n - 100, RAGD_EFORMAT, "truncated GGUF file: tensor");
    /* truncated header */
    expect_load_fail(base, 20, RAGD_EFORMAT, "truncated GGUF file");
    /* bad magic */
    memcpy(d, base, n);
    d[1] = 'X';
    expect_load_fail(d, n, RAGD_EFORMAT, "not a GGUF file");
    /* unsupported version */
    memcpy(d, base, n);
    d[4] = 1;
    expect_load_fail(d, n, RAGD_EUNSUPPORTED, "GGUF version 1 is not supported");
    free(base);
    free(d);

    /* a type ragd does not load: F16 attn_v relabelled I16 (same 2 bytes per element) */
    base = read_fixture("llama/f16.gguf", &n);
    d = malloc(n);
    if (!base || !d) return;
    memcpy(d, base, n);
    {
        const char k[] = "blk.0.attn_v.weight";
        char from[sizeof k - 1 + 24], to[sizeof k - 1 + 24];
        memcpy(from, k, sizeof k - 1);
        memcpy(from + sizeof k - 1, "\x02\0\0\0" "\x20\0\0\0\0\0\0\0" "\x10\0\0\0\0\0\0\0" "\x01\0\0\0", 24);
        memcpy(to, from, sizeof from);
        to[sizeof k - 1 + 20] = 25; /* GGML_TYPE_I16 */
        CHECK(patch(d, n, from, to, sizeof from));
        expect_load_fail(d, n, RAGD_EUNSUPPORTED, "tensor 'blk.0.attn_v.weight' has type I16, which ragd does not load");
    }
    free(base);
    free(d);
}

/* llama3 RoPE scaling is recognized from rope_freqs.weight; other divisors are refused */
static void test_llama3_rope(void) {
    char p[4096];
    fixture(p, sizeof p, "llama3/f32.gguf");
    ragd_model *m = load(p);
    if (m) {
        CHECK_EQ_INT(m->cfg.rope_type, 1);
        CHECK(m->cfg.rope_factor == 8.0f);
        CHECK(m->cfg.rope_low_freq_factor == 1.0f && m->cfg.rope_high_freq_factor == 4.0f);
        CHECK_EQ_INT(m->cfg.rope_orig_max_pos, 8192);
    }
    ragd_model_free(m);
    size_t n;
    char *base = read_fixture("llama3/f32.gguf", &n);
    if (!base) return;
    /* rope_freqs = [1, 1, 2.69453…, 8]: the medium-band divisor changed to 3 */
    bool patched = false;
    for (size_t i = 0; i + 16 <= n && !patched; i += 4) {
        float v[4];
        memcpy(v, base + i, 16);
        if (v[0] == 1.0f && v[1] == 1.0f && v[2] > 2.69f && v[2] < 2.70f && v[3] == 8.0f) {
            float three = 3.0f;
            memcpy(base + i + 8, &three, 4);
            patched = true;
        }
    }
    CHECK(patched);
    expect_load_fail(base, n, RAGD_EUNSUPPORTED, "rope_freqs.weight[2] = 3, but llama3 scaling (factor 8");
    free(base);
}

/* ---------------------------------------------------------------------------------------------- */
/* the real default model, when cached */

static void test_smollm(void) {
    char path[4096];
    if (!test_default_model(path, sizeof path, "SmolLM2 load")) return;
    ragd_model *m = load(path);
    if (!m) return;
    const ragd_model_config *c = &m->cfg;
    CHECK_EQ_INT(c->arch, RAGD_ARCH_LLAMA);
    CHECK_EQ_INT(c->n_layer, 30);
    CHECK_EQ_INT(c->n_embd, 576);
    CHECK_EQ_INT(c->n_ff, 1536);
    CHECK_EQ_INT(c->n_head, 9);
    CHECK_EQ_INT(c->n_head_kv, 3);
    CHECK_EQ_INT(c->head_dim, 64);
    CHECK_EQ_INT(c->n_vocab, 49152);
    CHECK_EQ_INT(c->max_pos, 8192);
    CHECK(c->rope_theta == 100000.0f);
    CHECK(c->rms_eps == 1e-5f);
    CHECK(c->tie_embed);
    CHECK_EQ_INT(c->bos_id, 1);
    CHECK(c->n_eos == 1 && c->eos_ids[0] == 2);
    CHECK_EQ_INT(m->tok_embd.dtype, RAGD_DT_Q8_0);
    CHECK_EQ_INT(m->layers[0].wq.dtype, RAGD_DT_Q4_1);
    CHECK_EQ_INT(m->layers[0].attn_norm.dtype, RAGD_DT_F32);
    CHECK_EQ_INT(ragd_model_param_count(m), 134515008);
    const char *tmpl = ragd_tokenizer_chat_template(m->tok);
    CHECK(tmpl && strstr(tmpl, "You are a helpful AI assistant named SmolLM, trained by Hugging Face"));
    ragd_model_free(m);
}

int main(void) {
    const char *src = getenv("RAGD_SRC");
    snprintf(g_src, sizeof g_src, "%s", src ? src : ".");
    snprintf(g_tmp, sizeof g_tmp, "/tmp/ragd_gguf_test_XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    /* llama: 2 + 9 per layer (tied); qwen2: 2 + 12 per layer (tied, biases); qwen3: 3 + 11 per layer */
    test_pair("llama/f32.gguf", "llama/hf", RAGD_DT_F32, 20);
    test_pair("llama/f16.gguf", "llama/hf", RAGD_DT_F16, 20);
    test_pair("llama/bf16.gguf", "llama/hf", RAGD_DT_BF16, 20);
    test_pair("llama/q.gguf", "llama/q_hf", RAGD_DT_Q8_0, 20);
    test_pair("llama3/f32.gguf", "llama3/hf", RAGD_DT_F32, 20);
    test_pair("llama3/q.gguf", "llama3/q_hf", RAGD_DT_Q8_0, 20);
    test_llama3_rope();
    test_pair("qwen2/f32.gguf", "qwen2/hf", RAGD_DT_F32, 26);
    test_pair("qwen2/q.gguf", "qwen2/q_hf", RAGD_DT_Q8_0, 26);
    test_pair("qwen3/f32.gguf", "qwen3/hf", RAGD_DT_F32, 25);
    test_pair("qwen3/q.gguf", "qwen3/q_hf", RAGD_DT_Q8_0, 25);
    test_failures();
    test_smollm();
    rmdir(g_tmp);
    TEST_DONE();
}
