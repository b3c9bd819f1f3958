/* family.c — the weight descriptor of every model family: the one statement of which tensors a model
 * has, what Hugging Face and GGUF call them, their shapes as functions of the configuration and when
 * they apply. Both loaders look the slots up by name (hf_dir.c, gguf_model.c), validate.c checks every
 * view against its slot, model.c counts them, and both backends convert or upload them by role
 * (engine/cpu/cpu_backend.c, engine/cuda/backend_cuda.c).
 *
 * Adding a family: a descriptor table here (globals + one layer), an entry in ragd_family_of, its
 * config.json parse in hf_config.c (which sets the block kinds of ragd_model_config: norm, act, pos,
 * bidirectional, head), and — when it needs a block the backends lack — that block in the backend.
 */
#include "model/model_internal.h"

#define D(x) RAGD_DIM_##x

/* ---- decoders: Qwen3, Llama, Qwen2 (and the bidirectional Llama) ---- */

static const ragd_weight_desc k_dec_global[] = {
    {RAGD_W_TOK_EMBD, "embed_tokens.weight", "token_embd.weight", D(V), D(E), 0},
    {RAGD_W_OUT_NORM, "norm.weight", "output_norm.weight", D(E), D(NONE), 0},
    {RAGD_W_LM_HEAD, "lm_head.weight", "output.weight", D(V), D(E), RAGD_WD_UNTIED | RAGD_WD_OPTIONAL | RAGD_WD_NO_PREFIX},
    /* LlamaBidirectionalForSequenceClassification: score(pooled) / temperature, no bias */
    {RAGD_W_CLS_OUT, "score.weight", NULL, D(LABELS), D(E), RAGD_WD_HEAD | RAGD_WD_ONLY_HEAD | RAGD_WD_NO_PREFIX},
};
static const ragd_weight_desc k_dec_layer[] = {
    {RAGD_W_ATTN_NORM, "input_layernorm.weight", "attn_norm.weight", D(E), D(NONE), 0},
    {RAGD_W_Q, "self_attn.q_proj.weight", "attn_q.weight", D(Q), D(E), 0},
    {RAGD_W_K, "self_attn.k_proj.weight", "attn_k.weight", D(KV), D(E), 0},
    {RAGD_W_V, "self_attn.v_proj.weight", "attn_v.weight", D(KV), D(E), 0},
    {RAGD_W_BQ, "self_attn.q_proj.bias", "attn_q.bias", D(Q), D(NONE), RAGD_WD_QKV_BIAS},
    {RAGD_W_BK, "self_attn.k_proj.bias", "attn_k.bias", D(KV), D(NONE), RAGD_WD_QKV_BIAS},
    {RAGD_W_BV, "self_attn.v_proj.bias", "attn_v.bias", D(KV), D(NONE), RAGD_WD_QKV_BIAS},
    {RAGD_W_O, "self_attn.o_proj.weight", "attn_output.weight", D(E), D(Q), 0},
    {RAGD_W_Q_NORM, "self_attn.q_norm.weight", "attn_q_norm.weight", D(HD), D(NONE), RAGD_WD_QK_NORM},
    {RAGD_W_K_NORM, "self_attn.k_norm.weight", "attn_k_norm.weight", D(HD), D(NONE), RAGD_WD_QK_NORM},
    {RAGD_W_FFN_NORM, "post_attention_layernorm.weight", "ffn_norm.weight", D(E), D(NONE), 0},
    {RAGD_W_GATE, "mlp.gate_proj.weight", "ffn_gate.weight", D(F), D(E), 0},
    {RAGD_W_UP, "mlp.up_proj.weight", "ffn_up.weight", D(F), D(E), 0},
    {RAGD_W_DOWN, "mlp.down_proj.weight", "ffn_down.weight", D(E), D(F), 0},
};

/* ---- Qwen3.5 (hybrid): Gated DeltaNet layers and gated full-attention layers (layer_types) ----
 * Qwen3_5ForCausalLM keeps the text model under "model.", Qwen3_5ForConditionalGeneration under
 * "model.language_model."; the vision tower (model.visual.*) and the multi-token-prediction head (mtp.*) are
 * not used by text generation and are left unread (the loader's warning counts them). Every RMSNorm except
 * the gated one inside the DeltaNet applies (1 + w). */

static const ragd_weight_desc k_q35_global[] = {
    {RAGD_W_TOK_EMBD, "embed_tokens.weight", NULL, D(V), D(E), 0},
    {RAGD_W_OUT_NORM, "norm.weight", NULL, D(E), D(NONE), RAGD_WD_PLUS_ONE},
    {RAGD_W_LM_HEAD, "lm_head.weight", NULL, D(V), D(E), RAGD_WD_UNTIED | RAGD_WD_OPTIONAL | RAGD_WD_NO_PREFIX},
};
#define LIN RAGD_WD_LINEAR
#define FULL RAGD_WD_FULL
static const ragd_weight_desc k_q35_layer[] = {
    {RAGD_W_ATTN_NORM, "input_layernorm.weight", NULL, D(E), D(NONE), RAGD_WD_PLUS_ONE},
    {RAGD_W_Q, "self_attn.q_proj.weight", NULL, D(Q2), D(E), FULL},
    {RAGD_W_K, "self_attn.k_proj.weight", NULL, D(KV), D(E), FULL},
    {RAGD_W_V, "self_attn.v_proj.weight", NULL, D(KV), D(E), FULL},
    {RAGD_W_O, "self_attn.o_proj.weight", NULL, D(E), D(Q), FULL},
    {RAGD_W_Q_NORM, "self_attn.q_norm.weight", NULL, D(HD), D(NONE), FULL | RAGD_WD_PLUS_ONE},
    {RAGD_W_K_NORM, "self_attn.k_norm.weight", NULL, D(HD), D(NONE), FULL | RAGD_WD_PLUS_ONE},
    {RAGD_W_LIN_QKV, "linear_attn.in_proj_qkv.weight", NULL, D(LQKV), D(E), LIN},
    {RAGD_W_LIN_Z, "linear_attn.in_proj_z.weight", NULL, D(LV), D(E), LIN},
    {RAGD_W_LIN_B, "linear_attn.in_proj_b.weight", NULL, D(LH), D(E), LIN},
    {RAGD_W_LIN_A, "linear_attn.in_proj_a.weight", NULL, D(LH), D(E), LIN},
    {RAGD_W_LIN_CONV, "linear_attn.conv1d.weight", NULL, D(LQKV), D(LCONV), LIN | RAGD_WD_CONV},
    {RAGD_W_LIN_A_LOG, "linear_attn.A_log", NULL, D(LH), D(NONE), LIN},
    {RAGD_W_LIN_DT_BIAS, "linear_attn.dt_bias", NULL, D(LH), D(NONE), LIN},
    {RAGD_W_LIN_NORM, "linear_attn.norm.weight", NULL, D(LVD), D(NONE), LIN},
    {RAGD_W_LIN_OUT, "linear_attn.out_proj.weight", NULL, D(E), D(LV), LIN},
    {RAGD_W_FFN_NORM, "post_attention_layernorm.weight", NULL, D(E), D(NONE), RAGD_WD_PLUS_ONE},
    {RAGD_W_GATE, "mlp.gate_proj.weight", NULL, D(F), D(E), 0},
    {RAGD_W_UP, "mlp.up_proj.weight", NULL, D(F), D(E), 0},
    {RAGD_W_DOWN, "mlp.down_proj.weight", NULL, D(E), D(F), 0},
};
#undef LIN
#undef FULL

/* ---- BERT and (XLM-)RoBERTa: post-LayerNorm encoders with biases and absolute positions ---- */

#define ENC_EMBEDDINGS                                                                                      \
    {RAGD_W_TOK_EMBD, "embeddings.word_embeddings.weight", NULL, D(V), D(E), 0},                            \
    {RAGD_W_POS_EMBD, "embeddings.position_embeddings.weight", NULL, D(POS), D(E), 0},                      \
    {RAGD_W_TYPE_EMBD, "embeddings.token_type_embeddings.weight", NULL, D(TYPES), D(E), 0},                 \
    {RAGD_W_EMBD_NORM, "embeddings.LayerNorm.weight", NULL, D(E), D(NONE), 0},                              \
    {RAGD_W_EMBD_NORM_B, "embeddings.LayerNorm.bias", NULL, D(E), D(NONE), 0}

static const ragd_weight_desc k_bert_global[] = {
    ENC_EMBEDDINGS,
    /* BertForSequenceClassification: pooler (dense + tanh on [CLS]) then classifier */
    {RAGD_W_CLS_DENSE, "pooler.dense.weight", NULL, D(E), D(E), RAGD_WD_HEAD},
    {RAGD_W_CLS_DENSE_B, "pooler.dense.bias", NULL, D(E), D(NONE), RAGD_WD_HEAD},
    {RAGD_W_CLS_OUT, "classifier.weight", NULL, D(LABELS), D(E), RAGD_WD_HEAD | RAGD_WD_NO_PREFIX},
    {RAGD_W_CLS_OUT_B, "classifier.bias", NULL, D(LABELS), D(NONE), RAGD_WD_HEAD | RAGD_WD_NO_PREFIX},
};
static const ragd_weight_desc k_xlmr_global[] = {
    ENC_EMBEDDINGS,
    /* RobertaClassificationHead: dense + tanh on <s>, then out_proj */
    {RAGD_W_CLS_DENSE, "classifier.dense.weight", NULL, D(E), D(E), RAGD_WD_HEAD | RAGD_WD_NO_PREFIX},
    {RAGD_W_CLS_DENSE_B, "classifier.dense.bias", NULL, D(E), D(NONE), RAGD_WD_HEAD | RAGD_WD_NO_PREFIX},
    {RAGD_W_CLS_OUT, "classifier.out_proj.weight", NULL, D(LABELS), D(E), RAGD_WD_HEAD | RAGD_WD_NO_PREFIX},
    {RAGD_W_CLS_OUT_B, "classifier.out_proj.bias", NULL, D(LABELS), D(NONE), RAGD_WD_HEAD | RAGD_WD_NO_PREFIX},
};
static const ragd_weight_desc k_enc_layer[] = {
    {RAGD_W_Q, "attention.self.query.weight", NULL, D(Q), D(E), 0},
    {RAGD_W_BQ, "attention.self.query.bias", NULL, D(Q), D(NONE), 0},
    {RAGD_W_K, "attention.self.key.weight", NULL, D(KV), D(E), 0},
    {RAGD_W_BK, "attention.self.key.bias", NULL, D(KV), D(NONE), 0},
    {RAGD_W_V, "attention.self.value.weight", NULL, D(KV), D(E), 0},
    {RAGD_W_BV, "attention.self.value.bias", NULL, D(KV), D(NONE), 0},
    {RAGD_W_O, "attention.output.dense.weight", NULL, D(E), D(Q), 0},
    {RAGD_W_BO, "attention.output.dense.bias", NULL, D(E), D(NONE), 0},
    {RAGD_W_ATTN_NORM, "attention.output.LayerNorm.weight", NULL, D(E), D(NONE), 0},
    {RAGD_W_ATTN_NORM_B, "attention.output.LayerNorm.bias", NULL, D(E), D(NONE), 0},
    {RAGD_W_UP, "intermediate.dense.weight", NULL, D(F), D(E), 0},
    {RAGD_W_BUP, "intermediate.dense.bias", NULL, D(F), D(NONE), 0},
    {RAGD_W_DOWN, "output.dense.weight", NULL, D(E), D(F), 0},
    {RAGD_W_BDOWN, "output.dense.bias", NULL, D(E), D(NONE), 0},
    {RAGD_W_FFN_NORM, "output.LayerNorm.weight", NULL, D(E), D(NONE), 0},
    {RAGD_W_FFN_NORM_B, "output.LayerNorm.bias", NULL, D(E), D(NONE), 0},
};
/* checkpoints saved by transformers 3.1–4.30 hold the persistent buffer embeddings.position_ids (int64,
 * arange); the pooler of an XLMRobertaModel is used neither by embeddings nor by the RoBERTa head */
static const char *const k_bert_ignored[] = {"embeddings.position_ids", NULL};
static const char *const k_xlmr_ignored[] = {"embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias", NULL};
/* older BERT checkpoints (bert-base-uncased's safetensors) spell LayerNorm weight / bias gamma / beta;
 * transformers renames them when loading */
static const char *const k_enc_aliases[][2] = {{"LayerNorm.weight", "LayerNorm.gamma"},
                                               {"LayerNorm.bias", "LayerNorm.beta"}, {NULL, NULL}};

#define N(a) (sizeof(a) / sizeof((a)[0]))
static const ragd_family k_decoder = {"decoder", {"model.", "", NULL}, "layers.", "blk.", NULL, NULL,
                                      k_dec_global, k_dec_layer, N(k_dec_global), N(k_dec_layer)};
static const ragd_family k_bert = {"bert", {"bert.", "", NULL}, "encoder.layer.", NULL, k_bert_ignored, k_enc_aliases,
                                   k_bert_global, k_enc_layer, N(k_bert_global), N(k_enc_layer)};
static const ragd_family k_xlmr = {"xlm-roberta", {"roberta.", "", NULL}, "encoder.layer.", NULL, k_xlmr_ignored,
                                   k_enc_aliases, k_xlmr_global, k_enc_layer, N(k_xlmr_global), N(k_enc_layer)};

static const ragd_family k_qwen35 = {"qwen3.5", {"model.language_model.", "model.", NULL}, "layers.", NULL, NULL,
                                     NULL, k_q35_global, k_q35_layer, N(k_q35_global), N(k_q35_layer)};

const ragd_family *ragd_family_of(ragd_arch a) {
    switch (a) {
    case RAGD_ARCH_QWEN3:
    case RAGD_ARCH_LLAMA:
    case RAGD_ARCH_QWEN2:
    case RAGD_ARCH_LLAMA_BIDIR: return &k_decoder;
    case RAGD_ARCH_BERT: return &k_bert;
    case RAGD_ARCH_XLMR: return &k_xlmr;
    case RAGD_ARCH_QWEN35: return &k_qwen35;
    }
    return NULL;
}

ragd_status ragd_model_set_family(ragd_model *m, ragd_err *err) {
    m->family = ragd_family_of(m->cfg.arch);
    if (!m->family) return ragd_err_set(err, RAGD_EINTERNAL, "architecture %d has no weight family", (int)m->cfg.arch);
    return RAGD_OK;
}

/* ---- roles ---- */

const char *ragd_weight_role_name(ragd_weight_role r) {
#define NAME_(R, f, k) [RAGD_W_##R] = #f,
    static const char *names[RAGD_W_COUNT] = {RAGD_GLOBAL_WEIGHTS(NAME_) RAGD_LAYER_WEIGHTS(NAME_)};
#undef NAME_
    return (unsigned)r < RAGD_W_COUNT && names[r] ? names[r] : "?";
}

ragd_tensor_kind ragd_weight_role_kind(ragd_weight_role r) {
#define KIND_(R, f, k) [RAGD_W_##R] = RAGD_KIND_##k,
    static const ragd_tensor_kind kinds[RAGD_W_COUNT] = {RAGD_GLOBAL_WEIGHTS(KIND_) RAGD_LAYER_WEIGHTS(KIND_)};
#undef KIND_
    return (unsigned)r < RAGD_W_COUNT ? kinds[r] : RAGD_KIND_EMBED;
}

const ragd_tensor *ragd_model_weight(const ragd_model *m, ragd_weight_role r, int layer) {
    RAGD_ASSERT((unsigned)r < RAGD_W_COUNT);
    if (r < RAGD_W_N_GLOBAL) return &m->global[r];
    RAGD_ASSERT(m->layers && layer >= 0 && layer < m->cfg.n_layer);
    return &m->layers[layer].t[r - RAGD_W_N_GLOBAL];
}

bool ragd_model_is_encoder(const ragd_model *m) { return m->cfg.bidirectional; }

ragd_layer_kind ragd_model_layer_kind(const ragd_model_config *c, int l) {
    if (!c->hybrid) return RAGD_LAYER_FULL;
    RAGD_ASSERT(l >= 0 && l < c->n_layer && l < RAGD_MAX_HYBRID_LAYERS);
    return (ragd_layer_kind)c->layer_kind[l];
}

bool ragd_model_has_classifier(const ragd_model *m) {
    return m->cfg.head == RAGD_HEAD_CLS || m->cfg.head == RAGD_HEAD_POOL_LINEAR;
}

/* ---- slots ---- */

static int64_t dim_of(const ragd_model_config *c, ragd_dim d) {
    switch (d) {
    case RAGD_DIM_NONE: return 0;
    case RAGD_DIM_E: return c->n_embd;
    case RAGD_DIM_F: return c->n_ff;
    case RAGD_DIM_V: return c->n_vocab;
    case RAGD_DIM_Q: return (int64_t)c->n_head * c->head_dim;
    case RAGD_DIM_KV: return (int64_t)c->n_head_kv * c->head_dim;
    case RAGD_DIM_HD: return c->head_dim;
    case RAGD_DIM_POS: return c->n_pos_embd;
    case RAGD_DIM_TYPES: return c->n_type_vocab;
    case RAGD_DIM_LABELS: return c->n_labels;
    case RAGD_DIM_Q2: return 2 * (int64_t)c->n_head * c->head_dim;
    case RAGD_DIM_LQKV: return 2 * (int64_t)c->lin_n_kh * c->lin_kd + (int64_t)c->lin_n_vh * c->lin_vd;
    case RAGD_DIM_LV: return (int64_t)c->lin_n_vh * c->lin_vd;
    case RAGD_DIM_LH: return c->lin_n_vh;
    case RAGD_DIM_LVD: return c->lin_vd;
    case RAGD_DIM_LCONV: return c->lin_conv;
    }
    return 0;
}

static bool applies(const ragd_model *m, unsigned when, int layer) {
    const ragd_model_config *c = &m->cfg;
    if (layer >= 0 && (when & RAGD_WD_LINEAR) && ragd_model_layer_kind(c, layer) != RAGD_LAYER_LINEAR) return false;
    if (layer >= 0 && (when & RAGD_WD_FULL) && ragd_model_layer_kind(c, layer) != RAGD_LAYER_FULL) return false;
    if ((when & RAGD_WD_UNTIED) && c->tie_embed) return false;
    if ((when & RAGD_WD_ONLY_HEAD) && !ragd_model_has_classifier(m)) return false;
    if ((when & RAGD_WD_QKV_BIAS) && !c->qkv_bias) return false;
    if ((when & RAGD_WD_QK_NORM) && !c->qk_norm) return false;
    return true;
}

static size_t add_slot(const ragd_model *m, const ragd_weight_desc *d, int layer, ragd_weight_slot *out, size_t n) {
    const ragd_model_config *c = &m->cfg;
    if (!applies(m, d->when, layer)) return n;
    if (out) {
        ragd_weight_slot *s = &out[n];
        s->d = d;
        s->f = m->family;
        s->role = d->role;
        s->layer = layer;
        s->t = (ragd_tensor *)ragd_model_weight(m, d->role, layer);
        s->shape[0] = dim_of(c, d->d0);
        s->shape[1] = dim_of(c, d->d1);
        s->shape[2] = 0;
        s->n_dims = d->d1 ? 2 : 1;
        s->matrix = d->d1 != RAGD_DIM_NONE;
        if (d->when & RAGD_WD_CONV) { /* [channels, 1, kernel] (nn.Conv1d with groups = channels) */
            s->shape[2] = s->shape[1];
            s->shape[1] = 1;
            s->n_dims = 3;
            s->matrix = false;
        }
        s->plus_one = (d->when & RAGD_WD_PLUS_ONE) != 0;
        s->required = !(d->when & RAGD_WD_OPTIONAL) && (!(d->when & RAGD_WD_HEAD) || ragd_model_has_classifier(m));
    }
    return n + 1;
}

size_t ragd_model_weight_slots(const ragd_model *m, ragd_weight_slot *out) {
    const ragd_family *f = m->family;
    RAGD_ASSERT(f);
    size_t n = 0;
    for (size_t i = 0; i < f->n_global; i++) n = add_slot(m, &f->global[i], -1, out, n);
    for (int l = 0; l < m->cfg.n_layer; l++)
        for (size_t i = 0; i < f->n_layer; i++) n = add_slot(m, &f->layer[i], l, out, n);
    RAGD_ASSERT(n <= RAGD_MAX_WEIGHT_SLOTS(m->cfg.n_layer));
    return n;
}

void ragd_weight_hf_name(const ragd_weight_slot *s, ragd_buf *out) {
    if (s->layer >= 0) ragd_buf_printf(out, "%s%d.", s->f->hf_layer, s->layer);
    ragd_buf_puts(out, s->d->hf);
}

void ragd_weight_gguf_name(const ragd_weight_slot *s, ragd_buf *out) {
    RAGD_ASSERT(s->d->gguf && s->f->gguf_layer);
    if (s->layer >= 0) ragd_buf_printf(out, "%s%d.", s->f->gguf_layer, s->layer);
    ragd_buf_puts(out, s->d->gguf);
}
