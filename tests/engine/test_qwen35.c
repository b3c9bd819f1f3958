/* test_qwen35.c — the Qwen3.5 hybrid text model (Gated DeltaNet + gated full attention) on the CPU backend
 * against transformers fp32.
 *
 * Fixtures (tests/engine/qwen35*, written by make_qwen35_fixtures.py): a tiny random-weight
 * Qwen3_5ForCausalLM (3 linear-attention layers + 1 full-attention layer, partial rotary, tied embeddings)
 * and the same weights laid out as a Qwen3_5ForConditionalGeneration checkpoint (qwen35_vl: nested
 * text_config, model.language_model. prefix, unused vision / MTP tensors).
 * Checks:
 *   - config: layer kinds, dims; the VL layout loads to the same configuration and the same outputs (bits);
 *   - last hidden states (after the final norm) and last-position logits within 1e-4 of transformers for
 *     lengths 1..70 (past transformers' 64-token chunk);
 *   - batch invariance bit for bit: each input alone = all in one batch = reversed; 1 thread = 3 threads;
 *   - generation: greedy ids of 3 prompts equal transformers' generate() exactly; a 70-token prompt run
 *     whole, one token at a time and in uneven chunks gives bit-identical logits (and matches the pooling
 *     path within 1e-4); 3 sequences decoded together = each alone (bits); a slot reused after close starts
 *     from a clean state (bits); the prefix cache stays off (no cached positions on a repeated prompt);
 *   - the memory plan: the per-sequence state bytes and the KV block bytes of the one full-attention layer;
 *   - config.json: a Qwen3.5-0.8B-shaped nested config (the numbers of MODEL_FACTS.md §9; not a verbatim copy)
 *     parses to 18 linear + 6 full layers, rotary 64 of 256 dims, and its plan's state per sequence; the
 *     refusals (bad layer_types, value heads not a multiple of key heads, another rope type, odd rotary dims).
 */
#include <jansson.h>

#include "engine/cpu/cpu_internal.h"
#include "engine/engine.h"
#include "golden.h"
#include "model/model_internal.h"
#include "test.h"

#define TOL 1e-4
#define MAXN 80

static const char *src_dir(void) { return getenv("RAGD_SRC") ? getenv("RAGD_SRC") : "."; }

static ragd_model *load(const char *name) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/engine/%s", src_dir(), name);
    ragd_err err = {0};
    ragd_model *m = NULL;
    if (ragd_model_load(dir, &m, &err)) fprintf(stderr, "%s: %s\n", name, ragd_err_msg(&err));
    ragd_err_free(&err);
    CHECK(m != NULL);
    return m;
}

static ragd_engine *engine(const ragd_model *m, bool kv, int n_threads, bool prefix_cache) {
    ragd_engine_opts o = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = 256, .max_seqs = kv ? 4 : 8, .max_ctx = 128,
                          .kv_cache = kv, .n_threads = n_threads, .prefix_cache = prefix_cache};
    ragd_engine *e = NULL;
    ragd_err err = {0};
    if (ragd_engine_create(m, &o, &e, &err)) fprintf(stderr, "engine: %s\n", ragd_err_msg(&err));
    ragd_err_free(&err);
    CHECK(e != NULL);
    return e;
}

static double maxabs_json(const float *got, json_t *want, size_t n) {
    if (json_array_size(want) != n) return INFINITY;
    double w = 0;
    for (size_t i = 0; i < n; i++) w = fmax(w, fabs((double)got[i] - json_number_value(json_array_get(want, i))));
    return w;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

typedef struct {
    int n;
    int32_t ids[MAXN];
    json_t *j;
} tcase;

/* pool (mean: leaves every row after the final norm in s->x) + score (all vocabulary rows) of cases ord[] in
 * one batch; hidden: [tokens, E], logits: [nc, V] */
static void forward(ragd_engine *e, const tcase *cs, const int *ord, int nc, float *hidden, float *logits) {
    const ragd_model *m = ragd_engine_model(e);
    int E = m->cfg.n_embd, V = m->cfg.n_vocab;
    int32_t tok[512], ss[17], rows[512];
    ss[0] = 0;
    for (int i = 0; i < nc; i++) {
        memcpy(tok + ss[i], cs[ord[i]].ids, sizeof(int32_t) * (size_t)cs[ord[i]].n);
        ss[i + 1] = ss[i] + cs[ord[i]].n;
    }
    for (int v = 0; v < V; v++) rows[v] = v;
    ragd_batch b = {nc, tok, ss, NULL};
    ragd_err err = {0};
    float pooled[16 * 64];
    ragd_status st = ragd_engine_pool(e, &b, RAGD_POOL_MEAN, pooled, &err);
    if (st) fprintf(stderr, "pool: %s\n", ragd_err_msg(&err));
    CHECK(st == RAGD_OK);
    ragd_cpu *s = ragd_engine_backend_state(e);
    memcpy(hidden, s->x, sizeof(float) * (size_t)ss[nc] * E);
    st = ragd_engine_score(e, &b, rows, V, logits, &err);
    if (st) fprintf(stderr, "score: %s\n", ragd_err_msg(&err));
    CHECK(st == RAGD_OK);
    ragd_err_free(&err);
}

/* one step of the sequences slots[0..n) with tokens chunks; logits [n, V] */
static void step(ragd_engine *e, const int32_t *slots, int n, const int32_t *const *toks, const int *lens,
                 float *logits) {
    int32_t tok[512], ss[5];
    ss[0] = 0;
    for (int i = 0; i < n; i++) {
        memcpy(tok + ss[i], toks[i], sizeof(int32_t) * (size_t)lens[i]);
        ss[i + 1] = ss[i] + lens[i];
    }
    ragd_batch b = {n, tok, ss, NULL};
    ragd_err err = {0};
    ragd_status st = ragd_engine_step(e, &b, slots, NULL, NULL, logits, &err);
    if (st) fprintf(stderr, "step: %s\n", ragd_err_msg(&err));
    CHECK(st == RAGD_OK);
    ragd_err_free(&err);
}

static void open_seq(ragd_engine *e, int slot, const int32_t *ids, int n) {
    ragd_err err = {0};
    int n_cached = -1;
    ragd_status st = ragd_engine_seq_open(e, slot, ids, n, &n_cached, &err);
    if (st) fprintf(stderr, "open: %s\n", ragd_err_msg(&err));
    CHECK(st == RAGD_OK);
    CHECK_EQ_INT(n_cached, 0); /* prefix cache off for hybrid models */
    ragd_err_free(&err);
}

/* Runs ids[0..n) through slot in chunks of the given sizes (summing to n); returns the last logits. */
static void run_chunks(ragd_engine *e, int slot, const int32_t *ids, int n, const int *chunks, float *logits) {
    open_seq(e, slot, ids, n);
    int at = 0;
    for (int c = 0; at < n; c++) {
        const int32_t *p = ids + at;
        step(e, &slot, 1, &p, &chunks[c], logits);
        at += chunks[c];
    }
    CHECK_EQ_INT(at, n);
    CHECK_EQ_INT(ragd_engine_seq_len(e, slot), n);
}

static void check_config(const ragd_model *m) {
    const ragd_model_config *c = &m->cfg;
    CHECK_EQ_INT(c->arch, RAGD_ARCH_QWEN35);
    CHECK_STR(m->family->name, "qwen3.5");
    CHECK(c->hybrid && c->attn_out_gate && c->qk_norm && c->tie_embed);
    CHECK_EQ_INT(c->n_layer, 4);
    for (int l = 0; l < 4; l++) CHECK_EQ_INT(ragd_model_layer_kind(c, l), l == 3 ? RAGD_LAYER_FULL : RAGD_LAYER_LINEAR);
    CHECK_EQ_INT(c->rope_dim, 8); /* head_dim 16 × partial_rotary_factor 0.5 */
    CHECK_EQ_INT(c->lin_n_kh, 2);
    CHECK_EQ_INT(c->lin_n_vh, 4);
    CHECK_EQ_INT(c->lin_kd, 8);
    CHECK_EQ_INT(c->lin_vd, 8);
    CHECK_EQ_INT(c->lin_conv, 4);
    CHECK(m->layers[0].lin_qkv.data && !m->layers[0].wq.data && m->layers[3].wq.data && !m->layers[3].lin_qkv.data);
}

/* a Qwen3_5ForConditionalGeneration config.json with the 0.8B numbers; %s: extra text-config fields */
static const char *k_08b =
    "{\"architectures\":[\"Qwen3_5ForConditionalGeneration\"],\"model_type\":\"qwen3_5\",\"tie_word_embeddings\":true,"
    "\"vision_config\":{\"depth\":12},\"text_config\":{\"model_type\":\"qwen3_5_text\",\"vocab_size\":248320,"
    "\"hidden_size\":1024,\"intermediate_size\":3584,\"num_hidden_layers\":24,\"num_attention_heads\":8,"
    "\"num_key_value_heads\":2,\"head_dim\":256,\"linear_num_key_heads\":16,\"linear_num_value_heads\":16,"
    "\"linear_key_head_dim\":128,\"linear_value_head_dim\":128,\"linear_conv_kernel_dim\":4,\"full_attention_interval\":4,"
    "\"rms_norm_eps\":1e-06,\"max_position_embeddings\":262144,\"eos_token_id\":248044,\"mtp_num_hidden_layers\":1,"
    "\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":10000000,\"partial_rotary_factor\":0.25,"
    "\"mrope_section\":[11,11,10],\"mrope_interleaved\":true}%s}}";

static ragd_status parse_08b(const char *extra, ragd_model_config *c, ragd_err *err) {
    char text[4096];
    snprintf(text, sizeof text, k_08b, extra);
    return ragd_hf_config_parse(text, strlen(text), "config.json", c, err);
}

static void test_configs(void) {
    ragd_model_config c;
    ragd_err err = {0};
    ragd_status st = parse_08b("", &c, &err);
    if (st) fprintf(stderr, "0.8B config: %s\n", ragd_err_msg(&err));
    CHECK(st == RAGD_OK);
    CHECK(c.arch == RAGD_ARCH_QWEN35 && c.hybrid && c.tie_embed && c.n_layer == 24 && c.n_eos == 1 &&
          c.eos_ids[0] == 248044);
    int n_lin = 0;
    for (int l = 0; l < 24; l++) n_lin += ragd_model_layer_kind(&c, l) == RAGD_LAYER_LINEAR;
    CHECK_EQ_INT(n_lin, 18);
    CHECK_EQ_INT(ragd_model_layer_kind(&c, 3), RAGD_LAYER_FULL);
    CHECK_EQ_INT(ragd_model_layer_kind(&c, 4), RAGD_LAYER_LINEAR);
    CHECK_EQ_INT(c.rope_dim, 64);
    CHECK_NEAR(c.rope_theta, 1e7, 0.5);
    /* its memory plan (sizes only: a model without weight data): state per sequence, KV per token */
    ragd_model m = {.name = "qwen3.5-0.8b-shaped", .cfg = c};
    m.family = ragd_family_of(c.arch);
    m.layers = calloc((size_t)c.n_layer, sizeof *m.layers);
    ragd_engine_opts o = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = 512, .max_seqs = 8, .max_ctx = 4096,
                          .kv_cache = true, .n_threads = 1};
    ragd_engine_plan p;
    st = ragd_engine_plan_compute(&m, &o, &p, &err);
    if (st) fprintf(stderr, "0.8B plan: %s\n", ragd_err_msg(&err));
    CHECK(st == RAGD_OK);
    size_t want = 18 * sizeof(float) * ((size_t)3 * (2 * 16 * 128 + 16 * 128) + (size_t)16 * 128 * 128);
    printf("qwen3.5-0.8B-shaped plan: %zu state bytes per sequence (%.2f MiB; recurrent %.2f MiB), KV %.1f KiB per "
           "token (6 full layers, fp32), prefix cache %s\n", p.seq_state_bytes, p.seq_state_bytes / 1048576.0,
           18.0 * 16 * 128 * 128 * 4 / 1048576.0, p.kv_block_bytes / 1024.0 / p.kv_block_size,
           p.no_prefix_cache ? "off" : "on");
    CHECK_EQ_INT(p.seq_state_bytes, want); /* 20,201,472 */
    CHECK_EQ_INT(p.seq_state, 8 * want);
    CHECK_EQ_INT(p.kv_block_bytes / p.kv_block_size, 6 * 2 * 2 * 256 * sizeof(float));
    CHECK(p.no_prefix_cache);
    free(m.layers);
    /* refusals name the field */
    static const struct { const char *extra, *msg; } bad[] = {
        {",\"layer_types\":[\"linear_attention\"]", "layer_types"},
        {",\"layer_types\":[\"linear_attention\",\"linear_attention\",\"linear_attention\",\"sliding_attention\","
         "\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\"]",
         "sliding_attention"},
        {",\"linear_num_value_heads\":24", "linear_num_value_heads 24"},
        {",\"linear_num_key_heads\":0", "linear_num_key_heads"},
        {",\"attention_bias\":true", "attention_bias"},
        {",\"hidden_act\":\"gelu\"", "hidden_act"},
        {",\"num_hidden_layers\":300", "num_hidden_layers"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* a key given twice (num_hidden_layers ...): jansson keeps the last value, so the extra one counts */
        char text[4096];
        snprintf(text, sizeof text, k_08b, bad[i].extra);
        ragd_err e2 = {0};
        st = ragd_hf_config_parse(text, strlen(text), "config.json", &c, &e2);
        const char *msg = ragd_err_msg(&e2);
        bool ok = st != RAGD_OK && msg && strstr(msg, bad[i].msg);
        if (!ok) fprintf(stderr, "refusal %zu: status %d, message '%s' (expected '%s')\n", i, (int)st, msg ? msg : "",
                         bad[i].msg);
        CHECK(ok);
        ragd_err_free(&e2);
    }
    char text[4096];
    snprintf(text, sizeof text, k_08b, "");
    char *r = strstr(text, "\"rope_type\":\"default\"");
    RAGD_ASSERT(r);
    memcpy(r, "\"rope_type\":\"yarn\"   ", strlen("\"rope_type\":\"default\""));
    st = ragd_hf_config_parse(text, strlen(text), "config.json", &c, &err);
    CHECK(st == RAGD_EUNSUPPORTED && strstr(ragd_err_msg(&err), "yarn"));
    snprintf(text, sizeof text, k_08b, "");
    r = strstr(text, "0.25");
    RAGD_ASSERT(r);
    memcpy(r, "0.01", 4); /* int(256 · 0.01) = 2 rotated dims: allowed; 0.02 → 5 (odd): refused */
    CHECK(ragd_hf_config_parse(text, strlen(text), "config.json", &c, &err) == RAGD_OK && c.rope_dim == 2);
    memcpy(r, "0.02", 4);
    st = ragd_hf_config_parse(text, strlen(text), "config.json", &c, &err);
    CHECK(st == RAGD_EFORMAT && strstr(ragd_err_msg(&err), "partial_rotary_factor"));
    ragd_err_free(&err);
}

int main(void) {
    test_configs();
    ragd_model *m = load("qwen35"), *mvl = load("qwen35_vl");
    char fx[4096];
    snprintf(fx, sizeof fx, "%s/tests/engine/qwen35.json", src_dir());
    json_error_t jerr;
    json_t *root = json_load_file(fx, 0, &jerr);
    if (!root) fprintf(stderr, "%s: %s\n", fx, jerr.text);
    CHECK(root != NULL);
    if (!m || !mvl || !root) TEST_DONE();
    check_config(m);
    check_config(mvl);
    int E = m->cfg.n_embd, V = m->cfg.n_vocab;

    /* ---- pooling / scoring path vs transformers, batch invariance ---- */
    json_t *jc = json_object_get(root, "cases");
    int nc = (int)json_array_size(jc), total = 0;
    CHECK(nc >= 6 && nc <= 16);
    tcase cs[16];
    for (int i = 0; i < nc; i++) {
        json_t *ids = json_object_get(json_array_get(jc, i), "ids");
        cs[i].j = json_array_get(jc, i);
        cs[i].n = (int)json_array_size(ids);
        RAGD_ASSERT(cs[i].n <= MAXN);
        for (int t = 0; t < cs[i].n; t++) cs[i].ids[t] = (int32_t)json_integer_value(json_array_get(ids, t));
        total += cs[i].n;
    }
    float *alone_h = malloc(sizeof(float) * (size_t)total * E), *alone_l = malloc(sizeof(float) * (size_t)nc * V);
    float *bh = malloc(sizeof(float) * (size_t)total * E), *bl = malloc(sizeof(float) * (size_t)nc * V);
    ragd_engine *e = engine(m, false, 2, false);
    double herr = 0, lerr = 0, ref_mag = 0;
    int off = 0;
    for (int i = 0; i < nc; i++) {
        forward(e, cs, &i, 1, alone_h + (size_t)off * E, alone_l + (size_t)i * V);
        herr = fmax(herr, maxabs_json(alone_h + (size_t)off * E, json_object_get(cs[i].j, "hidden"), (size_t)cs[i].n * E));
        lerr = fmax(lerr, maxabs_json(alone_l + (size_t)i * V, json_object_get(cs[i].j, "logits"), (size_t)V));
        json_t *lg = json_object_get(cs[i].j, "logits");
        for (size_t k = 0; k < json_array_size(lg); k++) ref_mag = fmax(ref_mag, fabs(json_number_value(json_array_get(lg, k))));
        off += cs[i].n;
    }
    printf("qwen35 vs transformers fp32: hidden max abs err %.3g, logits max abs err %.3g (|logit| up to %.3g)\n", herr,
           lerr, ref_mag);
    CHECK(herr <= TOL);
    CHECK(lerr <= TOL);
    CHECK(ref_mag > 0.5); /* the reference is not degenerate */

    int fwd[16], rev[16];
    for (int i = 0; i < nc; i++) fwd[i] = i, rev[i] = nc - 1 - i;
    forward(e, cs, fwd, nc, bh, bl);
    CHECK(!memcmp(bh, alone_h, sizeof(float) * (size_t)total * E));
    CHECK(!memcmp(bl, alone_l, sizeof(float) * (size_t)nc * V));
    forward(e, cs, rev, nc, bh, bl);
    int same = 0;
    for (int i = 0, boff = 0; i < nc; i++) {
        int ci = rev[i], aoff = 0;
        for (int k = 0; k < ci; k++) aoff += cs[k].n;
        same += !memcmp(bh + (size_t)boff * E, alone_h + (size_t)aoff * E, sizeof(float) * (size_t)cs[ci].n * E) &&
                !memcmp(bl + (size_t)i * V, alone_l + (size_t)ci * V, sizeof(float) * V);
        boff += cs[ci].n;
    }
    CHECK_EQ_INT(same, nc);
    ragd_engine_free(e);
    e = engine(m, false, 3, false); /* thread count */
    forward(e, cs, fwd, nc, bh, bl);
    CHECK(!memcmp(bh, alone_h, sizeof(float) * (size_t)total * E));
    CHECK(!memcmp(bl, alone_l, sizeof(float) * (size_t)nc * V));
    ragd_engine_free(e);
    e = engine(mvl, false, 2, false); /* the ConditionalGeneration layout: same weights, same bits */
    forward(e, cs, fwd, nc, bh, bl);
    CHECK(!memcmp(bh, alone_h, sizeof(float) * (size_t)total * E));
    CHECK(!memcmp(bl, alone_l, sizeof(float) * (size_t)nc * V));
    ragd_engine_free(e);
    printf("qwen35 batch invariance: %d inputs alone = batched = reversed = 3 threads = VL layout: %s\n", nc,
           t_failed ? "see the failures above" : "bit-identical");

    /* ---- generation engine ---- */
    e = engine(m, true, 2, true); /* prefix cache asked for: must stay off */
    const ragd_engine_plan *p = ragd_engine_get_plan(e);
    size_t want_state = 3 * sizeof(float) * ((4 - 1) * 64 + 4 * 8 * 8); /* 3 DeltaNet layers: conv + recurrent */
    printf("qwen35 plan: %zu state bytes per sequence (%zu for %d slots), KV block %zu bytes, prefix cache %s\n",
           p->seq_state_bytes, p->seq_state, 4, p->kv_block_bytes, p->no_prefix_cache ? "off" : "on");
    CHECK_EQ_INT(p->seq_state_bytes, want_state);
    CHECK_EQ_INT(p->seq_state, 4 * want_state);
    CHECK_EQ_INT(p->kv_block_bytes, 2 * sizeof(float) * 1 * RAGD_KV_BLOCK_DEFAULT * (2 * 16)); /* 1 full layer */
    CHECK(p->no_prefix_cache && !ragd_engine_get_opts(e)->prefix_cache);
    CHECK(p->total == p->weights + p->activations + p->workspace + p->kv_cache + p->seq_state);

    /* prefill = one by one = uneven chunks (bits), and = the pooling path (≤ 1e-4) */
    const tcase *lc = &cs[nc - 1];
    CHECK_EQ_INT(lc->n, 70);
    float *l_whole = malloc(sizeof(float) * V), *l_one = malloc(sizeof(float) * V), *l_chunk = malloc(sizeof(float) * V);
    int whole[1] = {70}, ones[70], uneven[5] = {5, 1, 30, 17, 17};
    for (int i = 0; i < 70; i++) ones[i] = 1;
    run_chunks(e, 0, lc->ids, 70, whole, l_whole);
    run_chunks(e, 1, lc->ids, 70, ones, l_one);
    run_chunks(e, 2, lc->ids, 70, uneven, l_chunk);
    double perr = 0;
    for (int v = 0; v < V; v++) perr = fmax(perr, fabs((double)l_whole[v] - alone_l[(size_t)(nc - 1) * V + v]));
    printf("qwen35 70-token prompt: whole vs one-by-one vs chunks %s; vs pooling path max abs %.3g; vs transformers %.3g\n",
           !memcmp(l_whole, l_one, sizeof(float) * V) && !memcmp(l_whole, l_chunk, sizeof(float) * V) ? "bit-identical"
                                                                                                          : "DIFFER",
           perr, maxabs_json(l_whole, json_object_get(lc->j, "logits"), (size_t)V));
    CHECK(!memcmp(l_whole, l_one, sizeof(float) * V));
    CHECK(!memcmp(l_whole, l_chunk, sizeof(float) * V));
    CHECK(perr <= TOL);
    CHECK(maxabs_json(l_whole, json_object_get(lc->j, "logits"), (size_t)V) <= TOL);
    /* the states carried on: one more decode step in slots 0 and 1 together = each alone */
    int32_t nx = argmax(l_whole, V), both[2] = {0, 1};
    const int32_t *tk2[2] = {&nx, &nx};
    int one2[2] = {1, 1};
    float l2[2 * 300];
    RAGD_ASSERT(V <= 300);
    step(e, both, 2, tk2, one2, l2);
    CHECK(!memcmp(l2, l2 + V, sizeof(float) * V));
    for (int s = 0; s < 3; s++) ragd_engine_seq_close(e, s);

    /* greedy ids vs transformers: each prompt alone (slot 3, reused: close resets its state), then all 3 batched */
    json_t *jg = json_object_get(root, "generate");
    int ng = (int)json_array_size(jg);
    CHECK_EQ_INT(ng, 3);
    int32_t pr[3][MAXN], want[3][32];
    int pn[3], wn[3];
    float *alone_steps = malloc(sizeof(float) * 3 * 16 * V); /* [prompt][step][V] */
    for (int g = 0; g < ng && g < 3; g++) {
        json_t *it = json_array_get(jg, g), *a = json_object_get(it, "prompt_ids"), *w = json_object_get(it, "ids");
        pn[g] = (int)json_array_size(a);
        wn[g] = (int)json_array_size(w);
        RAGD_ASSERT(pn[g] <= MAXN && wn[g] == 16);
        for (int t = 0; t < pn[g]; t++) pr[g][t] = (int32_t)json_integer_value(json_array_get(a, t));
        for (int t = 0; t < wn[g]; t++) want[g][t] = (int32_t)json_integer_value(json_array_get(w, t));
        int slot = 3, same_ids = 0;
        open_seq(e, slot, pr[g], pn[g]);
        const int32_t *tp = pr[g];
        step(e, &slot, 1, &tp, &pn[g], alone_steps + (size_t)(g * 16) * V);
        for (int t = 0; t < 16; t++) {
            int32_t id = argmax(alone_steps + (size_t)(g * 16 + t) * V, V);
            if (id == want[g][t]) same_ids++;
            if (t + 1 < 16) {
                const int32_t *ip = &id;
                int one = 1;
                step(e, &slot, 1, &ip, &one, alone_steps + (size_t)(g * 16 + t + 1) * V);
            }
        }
        printf("qwen35 greedy prompt %d (%d tokens): %d/16 ids equal transformers (min top-2 margin %.3g)\n", g, pn[g],
               same_ids, json_number_value(json_object_get(it, "min_margin")));
        CHECK_EQ_INT(same_ids, 16);
        ragd_engine_seq_close(e, slot);
    }
    /* batched: the 3 prompts prefilled in one step, then decoded together (slots 0, 2, 1: not in prompt order) */
    int32_t slots[3] = {0, 2, 1}, cur[3];
    const int32_t *tp[3] = {pr[0], pr[1], pr[2]};
    float *bsteps = malloc(sizeof(float) * 3 * V);
    for (int g = 0; g < 3; g++) open_seq(e, slots[g], pr[g], pn[g]);
    int bit_same = 0;
    for (int t = 0; t < 16; t++) {
        int ones3[3] = {1, 1, 1};
        step(e, slots, 3, tp, t == 0 ? pn : ones3, bsteps);
        for (int g = 0; g < 3; g++) {
            bit_same += !memcmp(bsteps + (size_t)g * V, alone_steps + (size_t)(g * 16 + t) * V, sizeof(float) * V);
            cur[g] = argmax(bsteps + (size_t)g * V, V);
            tp[g] = &cur[g];
        }
    }
    printf("qwen35 3 sequences decoded together: %d/48 steps bit-identical to alone\n", bit_same);
    CHECK_EQ_INT(bit_same, 48);
    for (int g = 0; g < 3; g++) ragd_engine_seq_close(e, slots[g]);

    /* the prefix cache stays off: a repeated 70-token prompt (4 full blocks) gets no cached positions */
    run_chunks(e, 0, lc->ids, 70, whole, l_one);
    ragd_engine_seq_close(e, 0);
    run_chunks(e, 1, lc->ids, 70, whole, l_chunk); /* open_seq checks n_cached == 0 */
    CHECK(!memcmp(l_one, l_whole, sizeof(float) * V) && !memcmp(l_chunk, l_whole, sizeof(float) * V));
    ragd_engine_kv_stats ks;
    ragd_engine_kv_stats_get(e, &ks);
    CHECK_EQ_INT(ks.hit_tokens, 0);
    ragd_engine_free(e);

    free(alone_h);
    free(alone_l);
    free(bh);
    free(bl);
    free(l_whole);
    free(l_one);
    free(l_chunk);
    free(alone_steps);
    free(bsteps);
    json_decref(root);
    ragd_model_free(m);
    ragd_model_free(mvl);
    TEST_DONE();
}
