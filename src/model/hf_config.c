/* hf_config.c — config.json of a Hugging Face checkpoint → ragd_model_config.
 *
 * Defaults follow transformers 5.x (Qwen3Config, LlamaConfig, Qwen2Config and the RoPE mixin in
 * modeling_rope_utils.py), read in the installed source:
 *   - num_key_value_heads: num_attention_heads when absent or null;
 *   - head_dim: Qwen3Config's class default is 128 (NOT hidden/heads) when absent; Llama uses
 *     hidden/heads (and requires hidden % heads == 0); Qwen2 modeling uses getattr(head_dim) or hidden//heads;
 *   - tie_word_embeddings: false for all three; rms_norm_eps 1e-6; max_position_embeddings 32768
 *     (Qwen3, Qwen2) or 2048 (Llama); rope_theta 10000 (RotaryEmbeddingConfigMixin.default_theta);
 *   - RoPE parameters come from "rope_scaling" (old name) or "rope_parameters" (v5 name); rope_type from
 *     "rope_type" or "type", default "default"; rope_theta inside them wins over the top-level key;
 *     llama3's original_max_position_embeddings defaults to max_position_embeddings;
 *   - Qwen2 always has q/k/v biases (nn.Linear(bias=True)) and ignores attention_bias.
 * LlamaBidirectionalModel (model_type llama_bidirec) is parsed as Llama with the causal mask off and its
 * "pooling" (avg / cls / last). BERT and (XLM-)RoBERTa (parse_encoder): BertConfig / XLMRobertaConfig
 * defaults (layer_norm_eps 1e-12, max_position_embeddings 512, type_vocab_size 2, pad_token_id 0 / 1,
 * hidden_act gelu); RoBERTa positions start at pad_token_id + 1; ...ForSequenceClassification has
 * len(id2label) (else num_labels, else 2) outputs.
 * Qwen3.5 (parse_qwen35): the hybrid Gated DeltaNet / gated-attention text model, defaults from
 * Qwen3_5TextConfig.
 * Anything that would change the math and that ragd does not implement (attention_bias on Llama/Qwen3,
 * mlp_bias, a sliding window, another activation or RoPE type, partial rotary) → RAGD_EUNSUPPORTED.
 */
#include <jansson.h>
#include <math.h>

#include "model/model_internal.h"

typedef struct arch_name {
    const char *name;
    ragd_arch arch;
    ragd_head_kind head;
} arch_name;

static const arch_name k_archs[] = {
    {"Qwen3ForCausalLM", RAGD_ARCH_QWEN3, RAGD_HEAD_LM},
    {"Qwen3Model", RAGD_ARCH_QWEN3, RAGD_HEAD_LM},
    {"LlamaForCausalLM", RAGD_ARCH_LLAMA, RAGD_HEAD_LM},
    {"LlamaModel", RAGD_ARCH_LLAMA, RAGD_HEAD_LM},
    {"Qwen2ForCausalLM", RAGD_ARCH_QWEN2, RAGD_HEAD_LM},
    {"Qwen2Model", RAGD_ARCH_QWEN2, RAGD_HEAD_LM},
    {"LlamaBidirectionalModel", RAGD_ARCH_LLAMA_BIDIR, RAGD_HEAD_NONE},
    {"LlamaBidirectionalForSequenceClassification", RAGD_ARCH_LLAMA_BIDIR, RAGD_HEAD_POOL_LINEAR},
    {"BertModel", RAGD_ARCH_BERT, RAGD_HEAD_NONE},
    {"BertForSequenceClassification", RAGD_ARCH_BERT, RAGD_HEAD_CLS},
    {"XLMRobertaModel", RAGD_ARCH_XLMR, RAGD_HEAD_NONE},
    {"XLMRobertaForSequenceClassification", RAGD_ARCH_XLMR, RAGD_HEAD_CLS},
    {"RobertaModel", RAGD_ARCH_XLMR, RAGD_HEAD_NONE},
    {"RobertaForSequenceClassification", RAGD_ARCH_XLMR, RAGD_HEAD_CLS},
    {"Qwen3_5ForCausalLM", RAGD_ARCH_QWEN35, RAGD_HEAD_LM},
    {"Qwen3_5ForConditionalGeneration", RAGD_ARCH_QWEN35, RAGD_HEAD_LM}, /* its text model; vision unused */
};
static const arch_name k_model_types[] = {
    {"qwen3", RAGD_ARCH_QWEN3, RAGD_HEAD_LM},       {"llama", RAGD_ARCH_LLAMA, RAGD_HEAD_LM},
    {"qwen2", RAGD_ARCH_QWEN2, RAGD_HEAD_LM},       {"llama_bidirec", RAGD_ARCH_LLAMA_BIDIR, RAGD_HEAD_NONE},
    {"bert", RAGD_ARCH_BERT, RAGD_HEAD_NONE},       {"xlm-roberta", RAGD_ARCH_XLMR, RAGD_HEAD_NONE},
    {"roberta", RAGD_ARCH_XLMR, RAGD_HEAD_NONE},    {"qwen3_5", RAGD_ARCH_QWEN35, RAGD_HEAD_LM},
    {"qwen3_5_text", RAGD_ARCH_QWEN35, RAGD_HEAD_LM},
};

/* An integer field in [lo, hi]; absent or null → *out = dflt (or an error when dflt < 0 means required). */
static ragd_status get_int(json_t *root, const char *fname, const char *key, int64_t dflt, int64_t lo, int64_t hi,
                           int *out, ragd_err *err) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (dflt == INT64_MIN)
            return ragd_err_set(err, RAGD_EFORMAT, "%s: required field \"%s\" is missing", fname, key);
        if (dflt < lo || dflt > hi) /* a default derived from other fields (head_dim = hidden / heads) */
            return ragd_err_set(err, RAGD_EFORMAT, "%s: field \"%s\" is absent and its derived default %lld is "
                                "outside [%lld, %lld]", fname, key, (long long)dflt, (long long)lo, (long long)hi);
        *out = (int)dflt;
        return RAGD_OK;
    }
    if (!json_is_integer(v))
        return ragd_err_set(err, RAGD_EFORMAT, "%s: field \"%s\" must be an integer", fname, key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: field \"%s\" = %lld is outside [%lld, %lld]", fname, key,
                            (long long)x, (long long)lo, (long long)hi);
    *out = (int)x;
    return RAGD_OK;
}

/* A number field (int or real) in (lo, hi]; absent or null → dflt. */
static ragd_status get_num(json_t *obj, const char *fname, const char *key, double dflt, double lo, double hi,
                           float *out, ragd_err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (isnan(dflt)) return ragd_err_set(err, RAGD_EFORMAT, "%s: required field \"%s\" is missing", fname, key);
        *out = (float)dflt;
        return RAGD_OK;
    }
    if (!json_is_number(v)) return ragd_err_set(err, RAGD_EFORMAT, "%s: field \"%s\" must be a number", fname, key);
    double x = json_number_value(v);
    float f = (float)x; /* checked as the float it becomes: 1e-96 would round to 0 */
    if (!(x > lo && x <= hi && f > lo && isfinite(f)))
        return ragd_err_set(err, RAGD_EFORMAT, "%s: field \"%s\" = %g is outside (%g, %g] (as float32)", fname, key,
                            x, lo, hi);
    *out = f;
    return RAGD_OK;
}

static ragd_status get_bool(json_t *root, const char *fname, const char *key, bool dflt, bool *out, ragd_err *err) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return RAGD_OK;
    }
    if (!json_is_boolean(v)) return ragd_err_set(err, RAGD_EFORMAT, "%s: field \"%s\" must be true or false", fname, key);
    *out = json_is_true(v);
    return RAGD_OK;
}

ragd_status ragd_model_cfg_add_eos(ragd_model_config *cfg, int64_t id, const char *from, ragd_err *err) {
    if (id < 0 || id > INT32_MAX) return ragd_err_set(err, RAGD_EFORMAT, "%s: eos token id %lld is invalid", from, (long long)id);
    for (int i = 0; i < cfg->n_eos; i++)
        if (cfg->eos_ids[i] == id) return RAGD_OK;
    int cap = (int)(sizeof cfg->eos_ids / sizeof cfg->eos_ids[0]);
    if (cfg->n_eos == cap)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: more than %d distinct eos token ids", from, cap);
    cfg->eos_ids[cfg->n_eos++] = (int32_t)id;
    return RAGD_OK;
}

/* eos_token_id: an int, a list of ints, or null. */
static ragd_status parse_eos(json_t *v, const char *fname, ragd_model_config *cfg, ragd_err *err) {
    if (!v || json_is_null(v)) return RAGD_OK;
    if (json_is_integer(v)) return ragd_model_cfg_add_eos(cfg, json_integer_value(v), fname, err);
    if (!json_is_array(v))
        return ragd_err_set(err, RAGD_EFORMAT, "%s: \"eos_token_id\" must be an integer or a list of integers", fname);
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (!json_is_integer(x))
            return ragd_err_set(err, RAGD_EFORMAT, "%s: \"eos_token_id\"[%zu] is not an integer", fname, i);
        ragd_status st = ragd_model_cfg_add_eos(cfg, json_integer_value(x), fname, err);
        if (st != RAGD_OK) return st;
    }
    return RAGD_OK;
}

static ragd_status parse_arch(json_t *root, const char *fname, ragd_model_config *c, ragd_err *err) {
    json_t *archs = json_object_get(root, "architectures");
    if (archs && !json_is_null(archs)) {
        if (!json_is_array(archs) || json_array_size(archs) == 0 || !json_is_string(json_array_get(archs, 0)))
            return ragd_err_set(err, RAGD_EFORMAT, "%s: \"architectures\" must be a non-empty list of strings", fname);
        const char *a = json_string_value(json_array_get(archs, 0));
        for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++)
            if (!strcmp(a, k_archs[i].name)) {
                c->arch = k_archs[i].arch;
                c->head = k_archs[i].head;
                return RAGD_OK;
            }
        ragd_buf names = {0};
        for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++)
            ragd_buf_printf(&names, "%s%s", i ? ", " : "", k_archs[i].name);
        ragd_status st = ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: architecture '%s' is not supported (supported: %s)",
                                      fname, a, names.data);
        ragd_buf_free(&names);
        return st;
    }
    json_t *mt = json_object_get(root, "model_type");
    if (!json_is_string(mt))
        return ragd_err_set(err, RAGD_EFORMAT, "%s: neither \"architectures\" nor \"model_type\" is given", fname);
    const char *t = json_string_value(mt);
    for (size_t i = 0; i < sizeof k_model_types / sizeof k_model_types[0]; i++)
        if (!strcmp(t, k_model_types[i].name)) {
            c->arch = k_model_types[i].arch;
            c->head = k_model_types[i].head;
            return RAGD_OK;
        }
    return ragd_err_set(err, RAGD_EUNSUPPORTED,
                        "%s: model_type '%s' is not supported (supported: qwen3, llama, qwen2, llama_bidirec, bert, "
                        "xlm-roberta, roberta, qwen3_5, qwen3_5_text)",
                        fname, t);
}

/* rope_scaling / rope_parameters and rope_theta. */
static ragd_status parse_rope(json_t *root, const char *fname, ragd_model_config *c, ragd_err *err) {
    json_t *rp = json_object_get(root, "rope_scaling");
    if (!rp || json_is_null(rp)) rp = json_object_get(root, "rope_parameters");
    if (rp && json_is_null(rp)) rp = NULL;
    if (rp && !json_is_object(rp))
        return ragd_err_set(err, RAGD_EFORMAT, "%s: \"rope_scaling\" must be an object or null", fname);
    ragd_status st = get_num(root, fname, "rope_theta", 10000.0, 0.0, 1e12, &c->rope_theta, err);
    if (st != RAGD_OK) return st;
    c->rope_type = 0;
    if (!rp) return RAGD_OK;
    if (json_object_get(rp, "rope_theta") &&
        (st = get_num(rp, fname, "rope_theta", 10000.0, 0.0, 1e12, &c->rope_theta, err)) != RAGD_OK)
        return st;
    const char *k;
    json_t *kv;
    json_object_foreach(rp, k, kv) {
        if (json_is_object(kv))
            return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: per-layer-type rope parameters ('%s') are not supported",
                                fname, k);
    }
    json_t *pr = json_object_get(rp, "partial_rotary_factor");
    if (!pr) pr = json_object_get(root, "partial_rotary_factor");
    if (pr && !json_is_null(pr) && !(json_is_number(pr) && json_number_value(pr) == 1.0))
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: partial_rotary_factor other than 1 is not supported", fname);
    json_t *ty = json_object_get(rp, "rope_type");
    if (!ty || json_is_null(ty)) ty = json_object_get(rp, "type");
    const char *type = "default";
    if (ty && !json_is_null(ty)) {
        if (!json_is_string(ty)) return ragd_err_set(err, RAGD_EFORMAT, "%s: rope type must be a string", fname);
        type = json_string_value(ty);
    }
    if (!strcmp(type, "default")) return RAGD_OK;
    if (strcmp(type, "llama3"))
        return ragd_err_set(err, RAGD_EUNSUPPORTED,
                            "%s: rope_scaling type '%s' is not supported (supported: default, llama3)", fname, type);
    c->rope_type = 1;
    ragd_buf ctx = {0};
    ragd_buf_printf(&ctx, "%s: rope_scaling (llama3)", fname);
    if ((st = get_num(rp, ctx.data, "factor", NAN, 0.0, 1e6, &c->rope_factor, err)) == RAGD_OK &&
        (st = get_num(rp, ctx.data, "low_freq_factor", NAN, 0.0, 1e6, &c->rope_low_freq_factor, err)) == RAGD_OK &&
        (st = get_num(rp, ctx.data, "high_freq_factor", NAN, 0.0, 1e6, &c->rope_high_freq_factor, err)) == RAGD_OK &&
        (st = get_int(rp, ctx.data, "original_max_position_embeddings", c->max_pos, 1, 1 << 30, &c->rope_orig_max_pos,
                      err)) == RAGD_OK &&
        c->rope_high_freq_factor == c->rope_low_freq_factor)
        st = ragd_err_set(err, RAGD_EFORMAT, "%s: high_freq_factor equals low_freq_factor (division by zero)", ctx.data);
    ragd_buf_free(&ctx);
    return st;
}

static ragd_status parse_ids(json_t *root, const char *fname, ragd_model_config *c, ragd_err *err);

/* A classifier's outputs: transformers' num_labels = len(id2label), else "num_labels", else 2. */
static ragd_status parse_labels(json_t *root, const char *fname, ragd_model_config *c, ragd_err *err) {
    json_t *labels = json_object_get(root, "id2label");
    if (json_is_object(labels) && json_object_size(labels) > 0) c->n_labels = (int)json_object_size(labels);
    else {
        ragd_status st = get_int(root, fname, "num_labels", 2, 1, 1 << 16, &c->n_labels, err);
        if (st != RAGD_OK) return st;
    }
    if (c->n_labels > (1 << 16)) return ragd_err_set(err, RAGD_EFORMAT, "%s: %d labels is too many", fname, c->n_labels);
    return RAGD_OK;
}

static ragd_status parse_decoder(json_t *root, const char *fname, ragd_model_config *c, ragd_err *err) {
    ragd_status st;
    const int64_t REQ = INT64_MIN;
    bool llama = c->arch == RAGD_ARCH_LLAMA || c->arch == RAGD_ARCH_LLAMA_BIDIR;
    if ((st = get_int(root, fname, "vocab_size", REQ, 1, 1 << 24, &c->n_vocab, err)) != RAGD_OK ||
        (st = get_int(root, fname, "hidden_size", REQ, 1, 1 << 17, &c->n_embd, err)) != RAGD_OK ||
        (st = get_int(root, fname, "intermediate_size", REQ, 1, 1 << 20, &c->n_ff, err)) != RAGD_OK ||
        (st = get_int(root, fname, "num_hidden_layers", REQ, 1, 4096, &c->n_layer, err)) != RAGD_OK ||
        (st = get_int(root, fname, "num_attention_heads", REQ, 1, 4096, &c->n_head, err)) != RAGD_OK ||
        (st = get_int(root, fname, "num_key_value_heads", c->n_head, 1, 4096, &c->n_head_kv, err)) != RAGD_OK)
        return st;
    if (llama && c->n_embd % c->n_head)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", fname,
                            c->n_embd, c->n_head);
    int64_t hd_default = c->arch == RAGD_ARCH_QWEN3 ? 128 : c->n_embd / c->n_head;
    if ((st = get_int(root, fname, "head_dim", hd_default, 1, 4096, &c->head_dim, err)) != RAGD_OK) return st;
    if (c->head_dim % 2)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: head_dim %d is odd (RoPE rotates pairs)", fname, c->head_dim);
    if (c->n_head % c->n_head_kv)
        return ragd_err_set(err, RAGD_EFORMAT,
                            "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", fname, c->n_head,
                            c->n_head_kv);
    if ((int64_t)c->n_head * c->head_dim > (1 << 20))
        return ragd_err_set(err, RAGD_EFORMAT, "%s: num_attention_heads × head_dim is too large", fname);
    if ((st = get_num(root, fname, "rms_norm_eps", 1e-6, 0.0, 1.0, &c->rms_eps, err)) != RAGD_OK ||
        (st = get_int(root, fname, "max_position_embeddings", llama ? 2048 : 32768, 1, 1 << 30,
                      &c->max_pos, err)) != RAGD_OK ||
        (st = get_bool(root, fname, "tie_word_embeddings", false, &c->tie_embed, err)) != RAGD_OK)
        return st;
    if ((st = parse_rope(root, fname, c, err)) != RAGD_OK) return st;

    bool attn_bias = false, mlp_bias = false, sliding = false;
    if ((st = get_bool(root, fname, "attention_bias", false, &attn_bias, err)) != RAGD_OK ||
        (st = get_bool(root, fname, "mlp_bias", false, &mlp_bias, err)) != RAGD_OK ||
        (st = get_bool(root, fname, "use_sliding_window", false, &sliding, err)) != RAGD_OK)
        return st;
    if (attn_bias && c->arch != RAGD_ARCH_QWEN2)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: attention_bias=true is not supported for %s", fname,
                            ragd_arch_name(c->arch));
    if (mlp_bias) return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: mlp_bias=true is not supported", fname);
    if (sliding)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: use_sliding_window=true is not supported", fname);
    json_t *lt = json_object_get(root, "layer_types");
    if (lt && !json_is_null(lt)) {
        size_t i;
        json_t *x;
        if (!json_is_array(lt)) return ragd_err_set(err, RAGD_EFORMAT, "%s: \"layer_types\" must be a list", fname);
        json_array_foreach(lt, i, x) {
            if (!json_is_string(x) || strcmp(json_string_value(x), "full_attention"))
                return ragd_err_set(err, RAGD_EUNSUPPORTED,
                                    "%s: layer_types[%zu] is not \"full_attention\" (only full attention is supported)",
                                    fname, i);
        }
    }
    json_t *act = json_object_get(root, "hidden_act");
    if (act && !json_is_null(act) && !(json_is_string(act) && !strcmp(json_string_value(act), "silu")))
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: hidden_act '%s' is not supported (only silu)", fname,
                            json_is_string(act) ? json_string_value(act) : "(not a string)");
    c->qkv_bias = c->arch == RAGD_ARCH_QWEN2;
    c->qk_norm = c->arch == RAGD_ARCH_QWEN3;
    if (c->arch == RAGD_ARCH_LLAMA_BIDIR) { /* NVIDIA's retrievers: causal mask off, config "pooling" */
        c->bidirectional = true;
        c->has_cfg_pooling = true; /* LlamaBidirectionalConfig's default pooling is "avg" */
        c->cfg_pooling = RAGD_POOL_MEAN;
        if (c->head == RAGD_HEAD_POOL_LINEAR && (st = parse_labels(root, fname, c, err)) != RAGD_OK) return st;
        c->head_temperature = 1.0f;
        if (c->head == RAGD_HEAD_POOL_LINEAR &&
            (st = get_num(root, fname, "temperature", 1.0, 0.0, 1e6, &c->head_temperature, err)) != RAGD_OK)
            return st;
        json_t *pool = json_object_get(root, "pooling");
        if (pool && !json_is_null(pool)) {
            const char *p = json_is_string(pool) ? json_string_value(pool) : "";
            if (!strcmp(p, "avg")) c->cfg_pooling = RAGD_POOL_MEAN;
            else if (!strcmp(p, "cls")) c->cfg_pooling = RAGD_POOL_CLS;
            else if (!strcmp(p, "last")) c->cfg_pooling = RAGD_POOL_LAST;
            else
                return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: \"pooling\" '%s' is not supported (avg, cls, last)",
                                    fname, json_is_string(pool) ? p : "(not a string)");
            c->has_cfg_pooling = true;
        }
    }
    return parse_ids(root, fname, c, err);
}

/* BERT / RoBERTa / XLM-RoBERTa (transformers BertConfig, XLMRobertaConfig): post-LayerNorm encoder with
 * biases, GELU, learned absolute positions (RoBERTa: from padding_idx + 1) and token types. */
static ragd_status parse_encoder(json_t *root, const char *fname, ragd_model_config *c, ragd_err *err) {
    ragd_status st;
    const int64_t REQ = INT64_MIN;
    bool roberta = c->arch == RAGD_ARCH_XLMR;
    if ((st = get_int(root, fname, "vocab_size", REQ, 1, 1 << 24, &c->n_vocab, err)) != RAGD_OK ||
        (st = get_int(root, fname, "hidden_size", REQ, 1, 1 << 17, &c->n_embd, err)) != RAGD_OK ||
        (st = get_int(root, fname, "intermediate_size", REQ, 1, 1 << 20, &c->n_ff, err)) != RAGD_OK ||
        (st = get_int(root, fname, "num_hidden_layers", REQ, 1, 4096, &c->n_layer, err)) != RAGD_OK ||
        (st = get_int(root, fname, "num_attention_heads", REQ, 1, 4096, &c->n_head, err)) != RAGD_OK)
        return st;
    if (c->n_embd % c->n_head)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", fname,
                            c->n_embd, c->n_head);
    c->n_head_kv = c->n_head;
    c->head_dim = c->n_embd / c->n_head;
    if ((st = get_num(root, fname, "layer_norm_eps", 1e-12, 0.0, 1.0, &c->rms_eps, err)) != RAGD_OK ||
        (st = get_int(root, fname, "max_position_embeddings", 512, 1, 1 << 20, &c->n_pos_embd, err)) != RAGD_OK ||
        (st = get_int(root, fname, "type_vocab_size", 2, 1, 1 << 16, &c->n_type_vocab, err)) != RAGD_OK ||
        (st = get_int(root, fname, "pad_token_id", roberta ? 1 : 0, 0, c->n_vocab - 1, &c->pad_id, err)) != RAGD_OK)
        return st;
    json_t *pe = json_object_get(root, "position_embedding_type");
    if (pe && !json_is_null(pe) && !(json_is_string(pe) && !strcmp(json_string_value(pe), "absolute")))
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: position_embedding_type '%s' is not supported (only absolute)",
                            fname, json_is_string(pe) ? json_string_value(pe) : "(not a string)");
    bool dec = false, cross = false;
    if ((st = get_bool(root, fname, "is_decoder", false, &dec, err)) != RAGD_OK ||
        (st = get_bool(root, fname, "add_cross_attention", false, &cross, err)) != RAGD_OK)
        return st;
    if (dec || cross)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: is_decoder / add_cross_attention are not supported", fname);
    json_t *act = json_object_get(root, "hidden_act");
    const char *a = act && !json_is_null(act) ? (json_is_string(act) ? json_string_value(act) : "") : "gelu";
    if (!strcmp(a, "gelu")) c->act = RAGD_ACT_GELU;
    else if (!strcmp(a, "gelu_new") || !strcmp(a, "gelu_pytorch_tanh")) c->act = RAGD_ACT_GELU_TANH;
    else
        return ragd_err_set(err, RAGD_EUNSUPPORTED,
                            "%s: hidden_act '%s' is not supported (gelu, gelu_new, gelu_pytorch_tanh)", fname,
                            json_is_string(act) ? a : "(not a string)");
    if (roberta) { /* create_position_ids_from_input_ids: padding_idx + 1 + index of the non-pad tokens */
        c->pos_offset = c->pad_id + 1;
        c->pos_skip_pad = true;
    }
    c->max_pos = c->n_pos_embd - c->pos_offset;
    if (c->max_pos < 1)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: max_position_embeddings %d leaves no position after the offset %d",
                            fname, c->n_pos_embd, c->pos_offset);
    if (c->head == RAGD_HEAD_CLS && (st = parse_labels(root, fname, c, err)) != RAGD_OK) return st;
    c->norm = RAGD_NORM_LAYER;
    c->post_norm = true;
    c->bidirectional = true;
    c->pos = RAGD_POS_ABSOLUTE;
    c->linear_bias = true;
    c->qkv_bias = true;
    return parse_ids(root, fname, c, err);
}

/* Qwen3.5 (Qwen3_5TextConfig; Qwen3_5Config nests it as "text_config"): the decoder fields, plus
 *   - layer_types ("linear_attention" / "full_attention") or, when absent, full_attention_interval (default 4):
 *     layer i is full when (i + 1) % interval == 0;
 *   - linear_* (Gated DeltaNet): conv kernel 4, key / value head dims 128, 16 key heads, 32 value heads;
 *   - head_dim 256; rope_parameters: rope_theta (default 10000), partial_rotary_factor (default 0.25),
 *     rope_type "default" only; mrope_section / mrope_interleaved are accepted and have no effect on text
 *     (the three position rows are the same, so the interleaved frequencies are the plain ones);
 *   - the q_proj output gate, q/k RMSNorm and the (1 + w) norms are always on (family.c);
 *   - tie_word_embeddings and eos_token_id from the text config, else the outer one.
 * The multi-token-prediction head (mtp_*) is not used. */
static ragd_status parse_qwen35(json_t *outer, const char *fname, ragd_model_config *c, ragd_err *err) {
    ragd_status st;
    const int64_t REQ = INT64_MIN;
    json_t *root = json_object_get(outer, "text_config");
    if (!root || json_is_null(root)) root = outer;
    else if (!json_is_object(root)) return ragd_err_set(err, RAGD_EFORMAT, "%s: \"text_config\" must be an object", fname);
    if ((st = get_int(root, fname, "vocab_size", REQ, 1, 1 << 24, &c->n_vocab, err)) != RAGD_OK ||
        (st = get_int(root, fname, "hidden_size", REQ, 1, 1 << 17, &c->n_embd, err)) != RAGD_OK ||
        (st = get_int(root, fname, "intermediate_size", REQ, 1, 1 << 20, &c->n_ff, err)) != RAGD_OK ||
        (st = get_int(root, fname, "num_hidden_layers", REQ, 1, RAGD_MAX_HYBRID_LAYERS, &c->n_layer, err)) != RAGD_OK ||
        (st = get_int(root, fname, "num_attention_heads", REQ, 1, 4096, &c->n_head, err)) != RAGD_OK ||
        (st = get_int(root, fname, "num_key_value_heads", c->n_head, 1, 4096, &c->n_head_kv, err)) != RAGD_OK ||
        (st = get_int(root, fname, "head_dim", 256, 2, 1024, &c->head_dim, err)) != RAGD_OK ||
        (st = get_int(root, fname, "linear_conv_kernel_dim", 4, 1, 64, &c->lin_conv, err)) != RAGD_OK ||
        (st = get_int(root, fname, "linear_key_head_dim", 128, 1, 1024, &c->lin_kd, err)) != RAGD_OK ||
        (st = get_int(root, fname, "linear_value_head_dim", 128, 1, 1024, &c->lin_vd, err)) != RAGD_OK ||
        (st = get_int(root, fname, "linear_num_key_heads", 16, 1, 4096, &c->lin_n_kh, err)) != RAGD_OK ||
        (st = get_int(root, fname, "linear_num_value_heads", 32, 1, 4096, &c->lin_n_vh, err)) != RAGD_OK ||
        (st = get_num(root, fname, "rms_norm_eps", 1e-6, 0.0, 1.0, &c->rms_eps, err)) != RAGD_OK ||
        (st = get_int(root, fname, "max_position_embeddings", 32768, 1, 1 << 30, &c->max_pos, err)) != RAGD_OK)
        return st;
    if (c->n_head % c->n_head_kv)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                            fname, c->n_head, c->n_head_kv);
    if (c->lin_n_vh % c->lin_n_kh)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: linear_num_value_heads %d is not a multiple of linear_num_key_heads %d",
                            fname, c->lin_n_vh, c->lin_n_kh);
    if ((int64_t)c->n_head * c->head_dim > (1 << 20) || (int64_t)c->lin_n_vh * c->lin_vd > (1 << 20) ||
        (int64_t)c->lin_n_kh * c->lin_kd > (1 << 20))
        return ragd_err_set(err, RAGD_EFORMAT, "%s: heads × head dims are too large", fname);
    json_t *tie = json_object_get(root, "tie_word_embeddings");
    if ((st = get_bool(tie && !json_is_null(tie) ? root : outer, fname, "tie_word_embeddings", false, &c->tie_embed,
                       err)) != RAGD_OK)
        return st;
    /* rope_parameters (v5) or rope_scaling, and the top-level keys */
    json_t *rp = json_object_get(root, "rope_parameters");
    if (!rp || json_is_null(rp)) rp = json_object_get(root, "rope_scaling");
    if (rp && json_is_null(rp)) rp = NULL;
    if (rp && !json_is_object(rp)) return ragd_err_set(err, RAGD_EFORMAT, "%s: \"rope_parameters\" must be an object", fname);
    float prf = 0.25f;
    json_t *src = rp && json_object_get(rp, "rope_theta") ? rp : root;
    if ((st = get_num(src, fname, "rope_theta", 10000.0, 0.0, 1e12, &c->rope_theta, err)) != RAGD_OK) return st;
    src = rp && json_object_get(rp, "partial_rotary_factor") ? rp : root;
    if ((st = get_num(src, fname, "partial_rotary_factor", 0.25, 0.0, 1.0, &prf, err)) != RAGD_OK) return st;
    json_t *ty = rp ? json_object_get(rp, "rope_type") : NULL;
    if (ty && !json_is_null(ty) && !(json_is_string(ty) && !strcmp(json_string_value(ty), "default")))
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: rope_type '%s' is not supported for qwen3.5 (only default)",
                            fname, json_is_string(ty) ? json_string_value(ty) : "(not a string)");
    c->rope_dim = (int)((double)c->head_dim * (double)prf); /* transformers: int(head_dim * partial_rotary_factor) */
    if (c->rope_dim < 2 || c->rope_dim % 2)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: partial_rotary_factor %g of head_dim %d gives %d rotated dims (must "
                            "be even and ≥ 2)", fname, prf, c->head_dim, c->rope_dim);
    bool attn_bias = false;
    if ((st = get_bool(root, fname, "attention_bias", false, &attn_bias, err)) != RAGD_OK) return st;
    if (attn_bias) return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: attention_bias=true is not supported", fname);
    json_t *act = json_object_get(root, "hidden_act");
    if (act && !json_is_null(act) && !(json_is_string(act) && !strcmp(json_string_value(act), "silu")))
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: hidden_act '%s' is not supported (only silu)", fname,
                            json_is_string(act) ? json_string_value(act) : "(not a string)");
    json_t *lt = json_object_get(root, "layer_types");
    if (lt && !json_is_null(lt)) {
        if (!json_is_array(lt) || (int)json_array_size(lt) != c->n_layer)
            return ragd_err_set(err, RAGD_EFORMAT, "%s: \"layer_types\" must be a list of num_hidden_layers (%d) strings",
                                fname, c->n_layer);
        for (int i = 0; i < c->n_layer; i++) {
            json_t *x = json_array_get(lt, (size_t)i);
            const char *k = json_is_string(x) ? json_string_value(x) : "";
            if (!strcmp(k, "linear_attention")) c->layer_kind[i] = RAGD_LAYER_LINEAR;
            else if (!strcmp(k, "full_attention")) c->layer_kind[i] = RAGD_LAYER_FULL;
            else
                return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: layer_types[%d] '%s' is not supported (linear_attention, "
                                    "full_attention)", fname, i, json_is_string(x) ? k : "(not a string)");
        }
    } else {
        int every = 4;
        if ((st = get_int(root, fname, "full_attention_interval", 4, 1, 4096, &every, err)) != RAGD_OK) return st;
        for (int i = 0; i < c->n_layer; i++) c->layer_kind[i] = (i + 1) % every ? RAGD_LAYER_LINEAR : RAGD_LAYER_FULL;
    }
    c->hybrid = true;
    c->attn_out_gate = true;
    c->qk_norm = true;
    json_t *eos = json_object_get(root, "eos_token_id");
    return parse_ids(eos && !json_is_null(eos) ? root : outer, fname, c, err);
}

static ragd_status parse_root(json_t *root, const char *fname, ragd_model_config *c, ragd_err *err) {
    ragd_status st = parse_arch(root, fname, c, err);
    if (st != RAGD_OK) return st;
    c->pad_id = -1;
    if (c->arch == RAGD_ARCH_BERT || c->arch == RAGD_ARCH_XLMR) return parse_encoder(root, fname, c, err);
    if (c->arch == RAGD_ARCH_QWEN35) return parse_qwen35(root, fname, c, err);
    return parse_decoder(root, fname, c, err);
}

/* bos_token_id and eos_token_id */
static ragd_status parse_ids(json_t *root, const char *fname, ragd_model_config *c, ragd_err *err) {
    json_t *bos = json_object_get(root, "bos_token_id");
    c->bos_id = -1;
    if (bos && !json_is_null(bos)) {
        if (!json_is_integer(bos) || json_integer_value(bos) < 0 || json_integer_value(bos) > INT32_MAX)
            return ragd_err_set(err, RAGD_EFORMAT, "%s: \"bos_token_id\" must be a non-negative integer", fname);
        c->bos_id = (int32_t)json_integer_value(bos);
    }
    return parse_eos(json_object_get(root, "eos_token_id"), fname, c, err);
}

ragd_status ragd_hf_config_parse(const char *text, size_t len, const char *fname, ragd_model_config *cfg,
                                 ragd_err *err) {
    memset(cfg, 0, sizeof *cfg);
    cfg->bos_id = -1;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: not valid JSON: %s (line %d)", fname, jerr.text, jerr.line);
    ragd_status st = json_is_object(root) ? parse_root(root, fname, cfg, err)
                                          : ragd_err_set(err, RAGD_EFORMAT, "%s: not a JSON object", fname);
    json_decref(root);
    return st;
}
