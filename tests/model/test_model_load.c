/* test_model_load.c — loads tiny model directories written at test time (fixture.h) and checks the
 * configuration, every view, the extras, and that each broken directory fails with the promised message
 * (file + tensor + expected + found). */
#include <stdlib.h>

#include "fixture.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "hf_cases.h"
#include "test.h"

static char *g_root;

static char *subdir(const char *name) { return ragd_path_join(g_root, name); }

static bool has(const char *msg, const char *needle) {
    bool ok = msg && strstr(msg, needle);
    if (!ok) fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", msg ? msg : "(null)", needle);
    return ok;
}

/* Loads a spec that must fail; checks the status and that the message contains every needle. */
static void expect_fail(const char *name, const fx_spec *s, ragd_status code, const char *const *needles) {
    char *dir = subdir(name);
    fx_write_model(dir, s);
    ragd_model *m = (ragd_model *)1;
    ragd_err err = {0};
    ragd_status st = ragd_model_load(dir, &m, &err);
    CHECK(m == NULL);
    if (st != code) fprintf(stderr, "  %s: status %s, message: %s\n", name, ragd_status_name(st), ragd_err_msg(&err));
    CHECK_EQ_INT(st, code);
    if (getenv("RAGD_TEST_VERBOSE")) fprintf(stderr, "[%s] %s\n", name, ragd_err_msg(&err));
    for (; *needles; needles++) CHECK(has(err.msg, *needles));
    ragd_err_free(&err);
    free(dir);
}

static ragd_model *load_ok(const char *dir) {
    ragd_model *m = NULL;
    ragd_err err = {0};
    ragd_status st = ragd_model_load(dir, &m, &err);
    if (st != RAGD_OK) fprintf(stderr, "  load %s: %s\n", dir, ragd_err_msg(&err));
    CHECK_EQ_INT(st, RAGD_OK);
    ragd_err_free(&err);
    return m;
}

/* Checks a view's values against what the fixture wrote. */
static void check_values(const ragd_tensor *t, const char *file_name) {
    size_t n = ragd_tensor_numel(t);
    float *buf = malloc(n * sizeof *buf);
    ragd_tensor_to_f32(t, 0, n, buf);
    uint32_t seed = fx_seed(file_name);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += buf[i] != fx_value(seed, i);
    CHECK_EQ_INT(bad, 0);
    /* a sub-range */
    if (n > 3) {
        ragd_tensor_to_f32(t, 2, 1, buf);
        CHECK(buf[0] == fx_value(seed, 2));
    }
    free(buf);
}

static fx_spec qwen3_spec(void) {
    /* head_dim 32 ≠ hidden/heads (64/4 = 16); GQA 4 q heads over 2 kv heads */
    fx_spec s = {.arch = "Qwen3ForCausalLM", .E = 64, .F = 96, .L = 2, .H = 4, .KV = 2, .hd = 32, .V = 320,
                 .tie = true, .prefix = true, .lm_head = false, .qk_norm = true, .dtype = "BF16"};
    return s;
}

static void test_qwen3(void) {
    char *dir = subdir("Qwen3-Tiny");
    fx_spec s = qwen3_spec();
    s.extra_tensor = "model.layers.0.self_attn.rotary_emb.inv_freq"; /* unexpected: warned, not fatal */
    fx_write_model(dir, &s);
    fx_write_text(dir, "generation_config.json",
                  "{\"eos_token_id\":[5,7],\"do_sample\":true,\"temperature\":0.6,\"top_p\":0.95,\"top_k\":20,"
                  "\"min_p\":0}");
    fx_write_text(dir, "modules.json",
                  "[{\"idx\":0,\"name\":\"0\",\"path\":\"\",\"type\":\"sentence_transformers.models.Transformer\"},"
                  "{\"idx\":1,\"name\":\"1\",\"path\":\"1_Pooling\",\"type\":\"sentence_transformers.models.Pooling\"},"
                  "{\"idx\":2,\"name\":\"2\",\"path\":\"2_Normalize\",\"type\":\"sentence_transformers.models.Normalize\"}]");
    char *pool = ragd_path_join(dir, "1_Pooling");
    mkdir(pool, 0755);
    fx_write_text(pool, "config.json",
                  "{\"word_embedding_dimension\":64,\"pooling_mode_cls_token\":false,\"pooling_mode_mean_tokens\":false,"
                  "\"pooling_mode_max_tokens\":false,\"pooling_mode_lasttoken\":true}");
    fx_write_text(dir, "config_sentence_transformers.json",
                  "{\"prompts\":{\"query\":\"Instruct: Given a web search query, retrieve relevant passages that "
                  "answer the query\\nQuery:\",\"document\":\"\"},\"default_prompt_name\":null}");
    ragd_model *m = load_ok(dir);
    if (m) {
        const ragd_model_config *c = &m->cfg;
        CHECK_STR(m->name, "Qwen3-Tiny");
        CHECK_EQ_INT(c->arch, RAGD_ARCH_QWEN3);
        CHECK_STR(ragd_arch_name(c->arch), "qwen3");
        CHECK_EQ_INT(c->n_vocab, 320);
        CHECK_EQ_INT(c->n_embd, 64);
        CHECK_EQ_INT(c->n_ff, 96);
        CHECK_EQ_INT(c->n_layer, 2);
        CHECK_EQ_INT(c->n_head, 4);
        CHECK_EQ_INT(c->n_head_kv, 2);
        CHECK_EQ_INT(c->head_dim, 32);
        CHECK_NEAR(c->rms_eps, 1e-6, 1e-12);
        CHECK_NEAR(c->rope_theta, 1e6, 0);
        CHECK_EQ_INT(c->rope_type, 0);
        CHECK_EQ_INT(c->max_pos, 4096);
        CHECK(c->tie_embed && c->qk_norm && !c->qkv_bias);
        CHECK_EQ_INT(c->bos_id, 1);
        /* union of config (5), generation_config (5, 7) and the tokenizer's eos (<|im_end|> = 282) */
        CHECK_EQ_INT(ragd_tokenizer_eos_id(m->tok), 282);
        CHECK_EQ_INT(c->n_eos, 3);
        CHECK_EQ_INT(c->eos_ids[0], 5);
        CHECK_EQ_INT(c->eos_ids[1], 7);
        CHECK_EQ_INT(c->eos_ids[2], 282);
        CHECK_EQ_INT(ragd_tokenizer_vocab_size(m->tok), 283);
        CHECK(m->gen.do_sample == 1);
        CHECK_NEAR(m->gen.temperature, 0.6, 1e-7);
        CHECK_NEAR(m->gen.top_p, 0.95, 1e-7);
        CHECK_EQ_INT(m->gen.top_k, 20);
        CHECK_NEAR(m->gen.min_p, 0, 0);
        CHECK_NEAR(m->gen.repetition_penalty, -1, 0);
        CHECK(m->has_st_pooling && m->pooling == RAGD_POOL_LAST && m->st_normalize);
        CHECK_STR(m->query_prompt,
                  "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:");
        /* views */
        CHECK_STR(m->tok_embd.name, "model.embed_tokens.weight");
        CHECK_STR(m->tok_embd.file, "model.safetensors");
        CHECK_EQ_INT(m->tok_embd.dtype, RAGD_DT_BF16);
        CHECK_EQ_INT(m->tok_embd.n_dims, 2);
        CHECK_EQ_INT(m->tok_embd.shape[0], 320);
        CHECK_EQ_INT(m->tok_embd.shape[1], 64);
        CHECK_EQ_INT(m->tok_embd.nbytes, 320 * 64 * 2);
        CHECK(m->lm_head.data == m->tok_embd.data); /* tied */
        const ragd_layer_weights *l = &m->layers[1];
        CHECK_STR(l->wq.name, "model.layers.1.self_attn.q_proj.weight");
        CHECK_EQ_INT(l->wq.shape[0], 128); /* 4 heads × 32 */
        CHECK_EQ_INT(l->wq.shape[1], 64);
        CHECK_EQ_INT(l->wk.shape[0], 64); /* 2 kv heads × 32 */
        CHECK_EQ_INT(l->wo.shape[0], 64);
        CHECK_EQ_INT(l->wo.shape[1], 128);
        CHECK_EQ_INT(l->q_norm.shape[0], 32);
        CHECK_EQ_INT(l->q_norm.n_dims, 1);
        CHECK(l->bq.data == NULL);
        CHECK_EQ_INT(l->w_down.shape[0], 64);
        CHECK_EQ_INT(l->w_down.shape[1], 96);
        check_values(&l->wk, "model.layers.1.self_attn.k_proj.weight");
        check_values(&m->out_norm, "model.norm.weight");
        check_values(&m->tok_embd, "model.embed_tokens.weight");
        /* counts: embed 320·64 + norm 64 + 2 layers × (2·64 + 128·64 + 2·64·64 + 64·128 + 2·32 + 3·96·64) */
        size_t per_layer = 2 * 64 + 128 * 64 + 2 * 64 * 64 + 64 * 128 + 2 * 32 + 3 * 96 * 64;
        size_t params = 320 * 64 + 64 + 2 * per_layer;
        CHECK_EQ_INT(ragd_model_param_count(m), params);
        CHECK_EQ_INT(ragd_model_weight_bytes(m), 2 * params);
        ragd_model_stats st;
        ragd_model_stats_get(m, &st);
        CHECK_EQ_INT(st.n_tensors, 24);
        CHECK_EQ_INT(st.params, params);
        CHECK_EQ_INT(st.bytes, 2 * params);
        CHECK_EQ_INT(st.bytes_by_dtype[RAGD_DT_BF16], 2 * params);
        CHECK_EQ_INT(st.tensors_by_dtype[RAGD_DT_F32], 0);
        CHECK_EQ_INT(st.params_by_kind[RAGD_KIND_EMBED], 320 * 64);
        CHECK_EQ_INT(st.params_by_kind[RAGD_KIND_ATTN], 2 * (128 * 64 + 2 * 64 * 64 + 64 * 128));
        CHECK_EQ_INT(st.params_by_kind[RAGD_KIND_MLP], 2 * 3 * 96 * 64);
        CHECK_EQ_INT(st.params_by_kind[RAGD_KIND_NORM], 64 + 2 * (2 * 64 + 2 * 32));
        CHECK_EQ_INT(st.tensors_by_kind[RAGD_KIND_HEAD], 0);
        CHECK_STR(ragd_tensor_kind_name(RAGD_KIND_MLP), "mlp");
        /* tied: lm_head not listed; 2 global + 2 layers × 11 */
        CHECK_EQ_INT(ragd_model_tensor_list(m, NULL, 0), 2 + 2 * 11);
        const ragd_tensor *list[3];
        CHECK_EQ_INT(ragd_model_tensor_list(m, list, 3), 24);
        CHECK(list[0] == &m->tok_embd && list[1] == &m->out_norm && list[2] == &m->layers[0].attn_norm);
    }
    ragd_model_free(m);
    free(pool);
    free(dir);
}

static void test_llama(void) {
    char *dir = subdir("llama");
    fx_spec s = {.arch = "LlamaForCausalLM", .E = 48, .F = 64, .L = 1, .H = 6, .KV = 2, .hd = 0, .V = 288,
                 .tie = false, .prefix = true, .lm_head = true, .dtype = "F32",
                 .extra = ",\"rope_scaling\":{\"factor\":32.0,\"high_freq_factor\":4.0,\"low_freq_factor\":1.0,"
                          "\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"},\"mlp_bias\":false,"
                          "\"attention_bias\":false,\"eos_token_id\":[128001,128008,128009]"};
    fx_write_model(dir, &s);
    ragd_model *m = load_ok(dir);
    if (m) {
        const ragd_model_config *c = &m->cfg;
        CHECK_EQ_INT(c->arch, RAGD_ARCH_LLAMA);
        CHECK_EQ_INT(c->head_dim, 8); /* 48 / 6 */
        CHECK_EQ_INT(c->rope_type, 1);
        CHECK_NEAR(c->rope_factor, 32, 0);
        CHECK_NEAR(c->rope_low_freq_factor, 1, 0);
        CHECK_NEAR(c->rope_high_freq_factor, 4, 0);
        CHECK_EQ_INT(c->rope_orig_max_pos, 8192);
        CHECK(!c->tie_embed && !c->qk_norm && !c->qkv_bias);
        /* later eos_token_id wins in JSON parsing: the list */
        CHECK_EQ_INT(c->n_eos, 4); /* 128001, 128008, 128009 + the tokenizer's 282 */
        CHECK_EQ_INT(c->eos_ids[3], 282);
        CHECK_EQ_INT(c->eos_ids[2], 128009);
        CHECK(m->lm_head.data != NULL && m->lm_head.data != m->tok_embd.data);
        CHECK_STR(m->lm_head.name, "lm_head.weight");
        CHECK(m->layers[0].q_norm.data == NULL);
        check_values(&m->lm_head, "lm_head.weight");
        ragd_model_stats st;
        ragd_model_stats_get(m, &st);
        CHECK_EQ_INT(st.tensors_by_kind[RAGD_KIND_HEAD], 1);
        CHECK_EQ_INT(st.params_by_kind[RAGD_KIND_HEAD], 288 * 48);
        CHECK_EQ_INT(st.bytes_by_dtype[RAGD_DT_F32], 4 * st.params);
        CHECK_EQ_INT(st.n_tensors, 3 + 9);
        CHECK(!m->has_st_pooling && m->query_prompt == NULL);
        CHECK_NEAR(m->gen.temperature, -1, 0);
        CHECK_EQ_INT(m->gen.top_k, -1);
    }
    ragd_model_free(m);
    free(dir);
}

static void test_qwen2(void) {
    char *dir = subdir("qwen2");
    fx_spec s = {.arch = "Qwen2ForCausalLM", .E = 32, .F = 48, .L = 2, .H = 4, .KV = 1, .V = 288, .tie = true,
                 .prefix = true, .qkv_bias = true, .dtype = "F16"};
    fx_write_model(dir, &s);
    ragd_model *m = load_ok(dir);
    if (m) {
        CHECK_EQ_INT(m->cfg.arch, RAGD_ARCH_QWEN2);
        CHECK(m->cfg.qkv_bias && !m->cfg.qk_norm);
        CHECK_EQ_INT(m->cfg.head_dim, 8);
        CHECK_EQ_INT(m->layers[1].bq.shape[0], 32);
        CHECK_EQ_INT(m->layers[1].bk.shape[0], 8);
        CHECK_EQ_INT(m->layers[1].bv.n_dims, 1);
        CHECK_EQ_INT(m->layers[1].bv.dtype, RAGD_DT_F16);
        check_values(&m->layers[1].bv, "model.layers.1.self_attn.v_proj.bias");
    }
    ragd_model_free(m);
    free(dir);
}

static void test_embedding_checkpoint(void) {
    /* Qwen3-Embedding style: no "model." prefix, no lm_head, untied; architectures absent → model_type */
    char *dir = subdir("Qwen3-Embedding-Tiny");
    fx_spec s = qwen3_spec();
    s.arch = NULL;
    s.model_type = "qwen3";
    s.prefix = false;
    s.tie = false;
    s.lm_head = false;
    s.hd = 0; /* Qwen3Config default head_dim: 128, not hidden/heads */
    s.E = 64;
    s.H = 2;
    s.KV = 1;
    /* the fixture uses E/H = 32 for shapes when hd = 0: write explicit shapes through hd instead */
    fx_spec s2 = s;
    s2.hd = 128;
    fx_write_model(dir, &s2);
    /* rewrite config.json without head_dim to check the Qwen3 default */
    fx_write_text(dir, "config.json",
                  "{\"model_type\":\"qwen3\",\"vocab_size\":320,\"hidden_size\":64,\"intermediate_size\":96,"
                  "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
                  "\"tie_word_embeddings\":false,\"eos_token_id\":151643}");
    ragd_model *m = load_ok(dir);
    if (m) {
        CHECK_EQ_INT(m->cfg.head_dim, 128);
        CHECK_EQ_INT(m->cfg.bos_id, -1);
        CHECK_NEAR(m->cfg.rope_theta, 10000, 0); /* transformers default_theta */
        CHECK_EQ_INT(m->cfg.max_pos, 32768);
        CHECK(m->lm_head.data == NULL);
        CHECK_STR(m->tok_embd.name, "embed_tokens.weight");
        CHECK_STR(m->layers[0].q_norm.name, "layers.0.self_attn.q_norm.weight");
        CHECK_STR(m->name, "Qwen3-Embedding-Tiny");
    }
    ragd_model_free(m);
    free(dir);
}

static void test_sharded(void) {
    char *dir = subdir("sharded");
    fx_spec s = qwen3_spec();
    s.L = 3;
    s.n_shards = 2;
    fx_write_model(dir, &s);
    ragd_model *m = load_ok(dir);
    if (m) {
        CHECK_STR(m->layers[0].wq.file, "model-00001-of-00002.safetensors");
        CHECK_STR(m->layers[1].wq.file, "model-00002-of-00002.safetensors");
        CHECK_STR(m->out_norm.file, "model-00002-of-00002.safetensors");
        check_values(&m->layers[1].w_up, "model.layers.1.mlp.up_proj.weight");
        check_values(&m->layers[2].w_up, "model.layers.2.mlp.up_proj.weight");
    }
    ragd_model_free(m);
    /* a shard the index names is missing */
    char *p = ragd_path_join(dir, "model-00002-of-00002.safetensors");
    unlink(p);
    free(p);
    ragd_model *m2 = (ragd_model *)1;
    ragd_err err = {0};
    CHECK_EQ_INT(ragd_model_load(dir, &m2, &err), RAGD_ENOTFOUND);
    CHECK(m2 == NULL);
    CHECK(has(err.msg, "model.safetensors.index.json"));
    CHECK(has(err.msg, "shard 'model-00002-of-00002.safetensors'"));
    CHECK(has(err.msg, "does not exist"));
    ragd_err_free(&err);
    free(dir);
}

static void test_failures(void) {
    fx_spec s = qwen3_spec();

    s.skip = "model.layers.1.mlp.up_proj.weight";
    expect_fail("missing_tensor", &s, RAGD_EFORMAT,
                (const char *[]){"model.safetensors: tensor 'model.layers.1.mlp.up_proj.weight' is missing",
                                 "expected shape [96, 64]", NULL});
    s = qwen3_spec();
    s.bad_name = "model.layers.1.self_attn.k_proj.weight";
    s.bad_nd = 2;
    s.bad_shape[0] = 64;
    s.bad_shape[1] = 63;
    expect_fail("misshapen", &s, RAGD_EFORMAT,
                (const char *[]){"model.safetensors: tensor 'model.layers.1.self_attn.k_proj.weight': expected "
                                 "shape [64, 64], found [64, 63]",
                                 NULL});
    s = qwen3_spec();
    s.bad_name = "model.layers.0.self_attn.q_norm.weight";
    s.bad_nd = 1;
    s.bad_shape[0] = 16; /* hidden/heads instead of head_dim */
    expect_fail("misshapen_norm", &s, RAGD_EFORMAT,
                (const char *[]){"tensor 'model.layers.0.self_attn.q_norm.weight': expected shape [32], found [16]",
                                 NULL});
    s = qwen3_spec();
    s.bad_name = "model.layers.0.mlp.gate_proj.weight";
    s.bad_dtype = "I32";
    expect_fail("wrong_dtype", &s, RAGD_EUNSUPPORTED,
                (const char *[]){"model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight': dtype I32 is not "
                                 "supported",
                                 NULL});
    s = qwen3_spec();
    s.arch = "GPT2LMHeadModel";
    expect_fail("unknown_arch", &s, RAGD_EUNSUPPORTED,
                (const char *[]){"config.json: architecture 'GPT2LMHeadModel' is not supported", NULL});
    s = qwen3_spec();
    s.omit_field = "hidden_size";
    expect_fail("missing_field", &s, RAGD_EFORMAT,
                (const char *[]){"config.json: required field \"hidden_size\" is missing", NULL});
    s = qwen3_spec();
    s.KV = 3;
    expect_fail("bad_gqa", &s, RAGD_EFORMAT,
                (const char *[]){"num_attention_heads 4 is not a multiple of num_key_value_heads 3", NULL});
    s = qwen3_spec();
    s.arch = "Qwen2ForCausalLM"; /* found by fuzz_hf_config: hidden/heads = 0 must not pass as head_dim */
    s.hd = 0;
    s.E = 2;
    expect_fail("zero_head_dim", &s, RAGD_EFORMAT,
                (const char *[]){"config.json: field \"head_dim\" is absent and its derived default 0 is outside", NULL});
    s = qwen3_spec();
    s.V = 200; /* fewer embedding rows than the tokenizer's 283 ids */
    expect_fail("vocab_too_small", &s, RAGD_EFORMAT,
                (const char *[]){"tokenizer.json: the tokenizer has 283 token ids but the embedding matrix only 200 rows",
                                 NULL});
    s = qwen3_spec();
    s.extra = ",\"rms_norm_eps\":1e-96"; /* found by fuzz_hf_config: rounds to 0 as float32 */
    expect_fail("eps_underflow", &s, RAGD_EFORMAT,
                (const char *[]){"config.json: field \"rms_norm_eps\" = 1e-96 is outside", NULL});
    s = qwen3_spec();
    s.extra = ",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4.0}";
    expect_fail("rope_yarn", &s, RAGD_EUNSUPPORTED,
                (const char *[]){"config.json: rope_scaling type 'yarn' is not supported", NULL});
    s = qwen3_spec();
    s.extra = ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"high_freq_factor\":4.0}";
    expect_fail("rope_llama3_incomplete", &s, RAGD_EFORMAT,
                (const char *[]){"rope_scaling (llama3): required field \"low_freq_factor\" is missing", NULL});
    s = qwen3_spec();
    s.tie = false; /* untied without lm_head: embedding checkpoint, OK — but an lm_head of the wrong shape is not */
    s.lm_head = true;
    s.bad_name = "lm_head.weight";
    s.bad_nd = 2;
    s.bad_shape[0] = 319;
    s.bad_shape[1] = 64;
    expect_fail("bad_lm_head", &s, RAGD_EFORMAT,
                (const char *[]){"tensor 'lm_head.weight': expected shape [320, 64], found [319, 64]", NULL});
    s = qwen3_spec();
    s.bad_name = "model.embed_tokens.weight";
    s.bad_nd = 2;
    s.bad_shape[0] = 300;
    s.bad_shape[1] = 64;
    expect_fail("vocab_mismatch", &s, RAGD_EFORMAT,
                (const char *[]){"tensor 'model.embed_tokens.weight': expected shape [320, 64], found [300, 64]", NULL});
    s = qwen3_spec();
    s.arch = "Qwen2ForCausalLM"; /* a Qwen3 checkpoint labelled Qwen2: biases missing */
    expect_fail("qwen2_no_bias", &s, RAGD_EFORMAT,
                (const char *[]){"tensor 'model.layers.0.self_attn.q_proj.bias' is missing", "expected shape [128]",
                                 NULL});
    s = qwen3_spec();
    s.extra = ",\"attention_bias\":true";
    expect_fail("qwen3_attn_bias", &s, RAGD_EUNSUPPORTED,
                (const char *[]){"attention_bias=true is not supported for qwen3", NULL});
}

/* Corrupt files: a valid model whose model.safetensors is then damaged. */
static char *write_valid(const char *name) {
    char *dir = subdir(name);
    fx_spec s = qwen3_spec();
    fx_write_model(dir, &s);
    return dir;
}

static void expect_dir_fail(const char *dir, ragd_status code, const char *const *needles) {
    ragd_model *m = (ragd_model *)1;
    ragd_err err = {0};
    ragd_status st = ragd_model_load(dir, &m, &err);
    if (st != code) fprintf(stderr, "  %s: status %s, message: %s\n", dir, ragd_status_name(st), ragd_err_msg(&err));
    CHECK_EQ_INT(st, code);
    CHECK(m == NULL);
    if (getenv("RAGD_TEST_VERBOSE")) fprintf(stderr, "[%s] %s\n", dir, ragd_err_msg(&err));
    for (; *needles; needles++) CHECK(has(err.msg, *needles));
    ragd_err_free(&err);
}

static void test_corrupt_files(void) {
    /* truncated: cut 100 bytes off the end → the last tensor's data range is beyond the file */
    char *dir = write_valid("truncated");
    char *p = ragd_path_join(dir, "model.safetensors");
    struct stat stt;
    stat(p, &stt);
    CHECK(truncate(p, stt.st_size - 100) == 0);
    expect_dir_fail(dir, RAGD_EFORMAT,
                    (const char *[]){"model.safetensors: tensor 'model.norm.weight'", "beyond the end of the file",
                                     NULL});
    free(p);
    free(dir);

    /* header length beyond the file */
    dir = write_valid("hdr_len");
    p = ragd_path_join(dir, "model.safetensors");
    FILE *f = fopen(p, "r+b");
    uint8_t le[8] = {0xff, 0xff, 0xff, 0x00, 0, 0, 0, 0}; /* 16 MB > file */
    fwrite(le, 1, 8, f);
    fclose(f);
    expect_dir_fail(dir, RAGD_EFORMAT,
                    (const char *[]){"model.safetensors: header length 16777215 is beyond the end of the file", NULL});
    free(p);
    free(dir);

    /* header not JSON */
    dir = write_valid("hdr_json");
    p = ragd_path_join(dir, "model.safetensors");
    f = fopen(p, "r+b");
    fseek(f, 8 + 1, SEEK_SET);
    fwrite("#", 1, 1, f);
    fclose(f);
    expect_dir_fail(dir, RAGD_EFORMAT, (const char *[]){"model.safetensors: header is not valid JSON", NULL});
    free(p);
    free(dir);

    /* no weights at all */
    dir = write_valid("no_weights");
    p = ragd_path_join(dir, "model.safetensors");
    unlink(p);
    expect_dir_fail(dir, RAGD_ENOTFOUND, (const char *[]){"no model.safetensors or model.safetensors.index.json", NULL});
    free(p);
    free(dir);

    /* not a directory, not gguf */
    dir = subdir("plain.txt");
    fx_write_text(g_root, "plain.txt", "hello");
    expect_dir_fail(dir, RAGD_EUNSUPPORTED, (const char *[]){"not a model directory and not a GGUF file", NULL});
    free(dir);
    dir = subdir("nope");
    expect_dir_fail(dir, RAGD_ENOTFOUND, (const char *[]){"no such model directory or file", NULL});
    free(dir);
}

/* Finds the view whose file name is `name` (NULL if none). */
static const ragd_tensor *find_view(const ragd_model *m, const char *name) {
    const ragd_tensor *g[] = {&m->tok_embd, &m->out_norm, &m->lm_head};
    for (int i = 0; i < 3; i++)
        if (g[i]->name && !strcmp(g[i]->name, name)) return g[i];
    for (int i = 0; i < m->cfg.n_layer; i++) {
        const ragd_layer_weights *l = &m->layers[i];
        const ragd_tensor *ts[] = {&l->attn_norm, &l->wq, &l->wk, &l->wv, &l->bq, &l->bk, &l->bv, &l->wo,
                                   &l->q_norm, &l->k_norm, &l->ffn_norm, &l->w_gate, &l->w_up, &l->w_down};
        for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++)
            if (ts[k]->name && !strcmp(ts[k]->name, name)) return ts[k];
    }
    return NULL;
}

/* Checkpoints written by transformers 5.23 save_pretrained (tools/gen_model_test_data.py): the config in
 * transformers' own spelling and every tensor's values against numbers torch computed. */
static void test_transformers_written(void) {
    const char *src = getenv("RAGD_SRC");
    CHECK(src != NULL);
    if (!src) return;
    ragd_buf d = {0};
    ragd_buf_printf(&d, "%s/tests/model/data/hf_qwen3", src);
    ragd_model *q = load_ok(d.data);
    ragd_buf_reset(&d);
    ragd_buf_printf(&d, "%s/tests/model/data/hf_llama", src);
    ragd_model *l = load_ok(d.data);
    ragd_buf_free(&d);
    if (!q || !l) {
        ragd_model_free(q);
        ragd_model_free(l);
        return;
    }
    CHECK_EQ_INT(q->cfg.arch, RAGD_ARCH_QWEN3);
    CHECK_EQ_INT(q->cfg.head_dim, 16); /* explicit, ≠ 16/2 */
    CHECK_EQ_INT(q->cfg.n_head_kv, 1);
    CHECK(q->cfg.tie_embed && q->lm_head.data == q->tok_embd.data);
    CHECK_NEAR(q->cfg.rope_theta, 10000, 0); /* rope_parameters.rope_theta */
    CHECK_EQ_INT(q->cfg.bos_id, -1);
    CHECK_EQ_INT(q->cfg.eos_ids[0], 282);
    CHECK_EQ_INT(q->cfg.n_eos, 1);
    CHECK_EQ_INT(q->gen.do_sample, -1);
    CHECK_EQ_INT(l->cfg.arch, RAGD_ARCH_LLAMA);
    CHECK_EQ_INT(l->cfg.head_dim, 4);
    CHECK_EQ_INT(l->cfg.rope_type, 1);
    CHECK_NEAR(l->cfg.rope_theta, 500000, 0);
    CHECK_NEAR(l->cfg.rope_factor, 8, 0);
    CHECK_EQ_INT(l->cfg.rope_orig_max_pos, 1024);
    CHECK(!l->cfg.tie_embed && l->lm_head.data && l->lm_head.data != l->tok_embd.data);
    CHECK_EQ_INT(l->cfg.bos_id, 1);
    CHECK_EQ_INT(l->cfg.n_eos, 2); /* config 2, generation_config [2, 282], tokenizer 282 */
    CHECK_EQ_INT(l->cfg.eos_ids[0], 2);
    CHECK_EQ_INT(l->cfg.eos_ids[1], 282);
    CHECK_EQ_INT(l->gen.do_sample, 1);
    CHECK_NEAR(l->gen.temperature, 0.7, 1e-7);
    CHECK_NEAR(l->gen.top_p, 0.9, 1e-7);
    size_t n_q = 0, n_l = 0;
    for (size_t i = 0; i < sizeof k_hf_cases / sizeof k_hf_cases[0]; i++) {
        const hf_case *c = &k_hf_cases[i];
        const ragd_model *m = !strcmp(c->dir, "hf_qwen3") ? q : l;
        *(m == q ? &n_q : &n_l) += 1;
        const ragd_tensor *t = find_view(m, c->name);
        if (!t) fprintf(stderr, "  %s: no view for '%s'\n", c->dir, c->name);
        CHECK(t != NULL);
        if (!t) continue;
        CHECK_EQ_INT(ragd_tensor_numel(t), c->numel);
        CHECK_EQ_INT(t->dtype, RAGD_DT_BF16);
        float *v = malloc((size_t)c->numel * sizeof *v);
        ragd_tensor_to_f32(t, 0, (size_t)c->numel, v);
        double sum = 0;
        for (long k = 0; k < c->numel; k++) sum += v[k];
        CHECK_NEAR(sum, c->sum, 1e-9 * (1 + fabs(c->sum)));
        CHECK(v[0] == c->first);
        free(v);
    }
    /* every tensor of the files is a view: 3 + 11 per layer (Qwen3, tied: no lm_head), 3 + 9 (Llama) */
    CHECK_EQ_INT(n_q, 2 + 11);
    CHECK_EQ_INT(n_l, 3 + 9);
    CHECK_EQ_INT(ragd_model_param_count(q), 288 * 16 + 16 + (2 * 16 + 32 * 16 + 2 * 16 * 16 + 16 * 32 + 2 * 16 +
                                                              3 * 32 * 16));
    ragd_model_free(q);
    ragd_model_free(l);
}

/* Extras and index problems. */
static void test_extras_failures(void) {
    char *dir = write_valid("dense_module");
    fx_write_text(dir, "modules.json",
                  "[{\"idx\":0,\"name\":\"0\",\"path\":\"\",\"type\":\"sentence_transformers.models.Transformer\"},"
                  "{\"idx\":1,\"name\":\"1\",\"path\":\"2_Dense\",\"type\":\"sentence_transformers.models.Dense\"}]");
    expect_dir_fail(dir, RAGD_EUNSUPPORTED,
                    (const char *[]){"modules.json: sentence-transformers module 'sentence_transformers.models.Dense' "
                                     "is not supported",
                                     NULL});
    free(dir);

    dir = write_valid("pool_missing");
    fx_write_text(dir, "modules.json",
                  "[{\"idx\":1,\"name\":\"1\",\"path\":\"1_Pooling\",\"type\":\"sentence_transformers.models.Pooling\"}]");
    expect_dir_fail(dir, RAGD_ENOTFOUND, (const char *[]){"1_Pooling/config.json is missing", NULL});
    char *pool = ragd_path_join(dir, "1_Pooling");
    mkdir(pool, 0755);
    fx_write_text(pool, "config.json", "{\"pooling_mode_mean_sqrt_len_tokens\":true}");
    expect_dir_fail(dir, RAGD_EUNSUPPORTED, (const char *[]){"1_Pooling/config.json: pooling_mode_mean_sqrt_len_tokens is not supported", NULL});
    fx_write_text(pool, "config.json", "{\"pooling_mode_mean_tokens\":true}");
    ragd_model *m = load_ok(dir);
    CHECK(m && m->has_st_pooling && m->pooling == RAGD_POOL_MEAN && !m->st_normalize);
    ragd_model_free(m);
    fx_write_text(pool, "config.json", "{\"pooling_mode_cls_token\":true}");
    m = load_ok(dir);
    CHECK(m && m->pooling == RAGD_POOL_CLS);
    ragd_model_free(m);
    fx_write_text(dir, "modules.json",
                  "[{\"idx\":1,\"name\":\"1\",\"path\":\"../x\",\"type\":\"sentence_transformers.models.Pooling\"}]");
    expect_dir_fail(dir, RAGD_EFORMAT, (const char *[]){"module path '../x' leaves the model folder", NULL});
    free(pool);
    free(dir);

    dir = write_valid("bad_genconfig");
    fx_write_text(dir, "generation_config.json", "{\"eos_token_id\":\"x\"}");
    expect_dir_fail(dir, RAGD_EFORMAT, (const char *[]){"generation_config.json: \"eos_token_id\" must be", NULL});
    fx_write_text(dir, "generation_config.json", "{\"temperature\":0.5,");
    expect_dir_fail(dir, RAGD_EFORMAT, (const char *[]){"generation_config.json: not valid JSON", NULL});
    fx_write_text(dir, "generation_config.json", "{\"eos_token_id\":[1,2,3,4,5,6,7,8,9]}");
    expect_dir_fail(dir, RAGD_EUNSUPPORTED, (const char *[]){"more than 8 distinct eos token ids", NULL});
    fx_write_text(dir, "generation_config.json", "{}");
    char *tj = ragd_path_join(dir, "tokenizer.json");
    unlink(tj);
    expect_dir_fail(dir, RAGD_ENOTFOUND, (const char *[]){"no tokenizer.json", NULL});
    free(tj);
    char *cj = ragd_path_join(dir, "config.json");
    unlink(cj);
    expect_dir_fail(dir, RAGD_ENOTFOUND, (const char *[]){"no config.json", NULL});
    fx_write_text(dir, "config.json", "{\"architectures\": [\"Qwen3ForCausalLM\"], ");
    expect_dir_fail(dir, RAGD_EFORMAT, (const char *[]){"config.json: not valid JSON", NULL});
    free(cj);
    free(dir);

    /* the index maps a tensor to a shard that does not hold it */
    dir = subdir("bad_index");
    fx_spec s = qwen3_spec();
    s.n_shards = 2;
    fx_write_model(dir, &s);
    fx_write_text(dir, "model.safetensors.index.json",
                  "{\"weight_map\":{\"model.embed_tokens.weight\":\"model-00002-of-00002.safetensors\"}}");
    expect_dir_fail(dir, RAGD_EFORMAT,
                    (const char *[]){"model.safetensors.index.json: tensor 'model.embed_tokens.weight' is mapped to "
                                     "'model-00002-of-00002.safetensors', which does not contain it",
                                     NULL});
    fx_write_text(dir, "model.safetensors.index.json", "{\"weight_map\":{\"a\":\"../model.safetensors\"}}");
    expect_dir_fail(dir, RAGD_EFORMAT, (const char *[]){"is not a plain file name", NULL});
    free(dir);

    /* the same tensor name in two shards */
    dir = subdir("dup_across_shards");
    s = qwen3_spec();
    s.n_shards = 2;
    s.extra_tensor = "model.embed_tokens.weight"; /* a second copy, written into shard 2 */
    fx_write_model(dir, &s);
    expect_dir_fail(dir, RAGD_EFORMAT,
                    (const char *[]){"tensor 'model.embed_tokens.weight' appears in both ",
                                     "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", NULL});
    fx_write_text(dir, "model.safetensors.index.json", "{\"weight_map\":{}}");
    expect_dir_fail(dir, RAGD_EFORMAT, (const char *[]){"\"weight_map\" is missing or empty", NULL});
    free(dir);

    /* a .gguf path goes to the GGUF loader (the weak stub until the GGUF module lands) */
    fx_write_text(g_root, "tiny.gguf", "GGUF");
    dir = subdir("tiny.gguf");
    ragd_model *g = (ragd_model *)1;
    ragd_err err = {0};
    CHECK(ragd_model_load(dir, &g, &err) != RAGD_OK);
    CHECK(g == NULL);
    CHECK(err.msg && !strstr(err.msg, "not a model directory"));
    ragd_err_free(&err);
    free(dir);
}

/* Qwen3-0.6B stores an lm_head.weight although it ties: the view is embed_tokens (transformers ties it
 * too) and the stored tensor is not an "unused" one. A trailing '/' does not change the name. */
static void test_tied_with_stored_lm_head(void) {
    char *dir = subdir("Qwen3-Stored-Head");
    fx_spec s = qwen3_spec();
    s.lm_head = true;
    fx_write_model(dir, &s);
    ragd_buf slash = {0};
    ragd_buf_printf(&slash, "%s/", dir);
    ragd_model *m = load_ok(slash.data);
    if (m) {
        CHECK(m->lm_head.data == m->tok_embd.data);
        CHECK_STR(m->lm_head.name, "model.embed_tokens.weight");
        CHECK_STR(m->name, "Qwen3-Stored-Head");
        CHECK_EQ_INT(ragd_model_tensor_list(m, NULL, 0), 2 + 2 * 11);
    }
    ragd_model_free(m);
    ragd_buf_free(&slash);
    free(dir);
}

int main(void) {
    g_root = fx_tmpdir();
    if (!g_root) {
        fprintf(stderr, "mkdtemp failed\n");
        return 1;
    }
    test_qwen3();
    test_llama();
    test_qwen2();
    test_embedding_checkpoint();
    test_sharded();
    test_failures();
    test_corrupt_files();
    test_transformers_written();
    test_extras_failures();
    test_tied_with_stored_lm_head();
    ragd_model_free(NULL);
    fx_rmdir(g_root);
    free(g_root);
    TEST_DONE();
}
