/* gguf_model.c — loads a GGUF file (llama / qwen2 / qwen3) into a ragd_model.
 *
 * Order: map the file → ragd_gguf_parse (every byte bounds-checked) → configuration from the
 * {arch}.* keys → tensor views, looked up by the GGUF names of the family descriptor (family.c), dims reversed to
 * PyTorch order → for arch `llama`, un-permute the Q/K rows → embedded tokenizer (tokenizer.ggml.* and
 * tokenizer.chat_template) → ragd_model_validate. Any failure frees the partial model; the message names
 * the file, the key or tensor, what was expected and what was found.
 *
 * Q/K rows (MODEL_FACTS.md §8): convert_hf_to_gguf.py permutes q_proj (n_head) and k_proj (n_head_kv)
 * of llama-arch models so that llama.cpp can use the interleaved ("NORM") RoPE: within each head, GGUF
 * row 2i+j holds HF row i + j·hd/2. ragd keeps Hugging Face's half-split RoPE for every backend, so the
 * loader undoes that here into a copy the model owns. Rows are independent for every ggml type (a block
 * never spans two rows), so whole rows of bytes move, quantized or not. qwen2/qwen3 are not permuted.
 *
 * Tying: no output.weight → the lm_head is a view of token_embd (what llama.cpp does).
 * llama3 RoPE scaling: recognized from rope_freqs.weight (see load_rope_freqs).
 * Quantized weights stay typed views (Q8_0 / Q4_0 / Q4_1); backends convert with ragd_tensor_to_f32.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/gguf.h"
#include "model/model_internal.h"

typedef struct gguf_ctx {
    const char *path;
    const char *fname; /* display name: the file name without folder */
    ragd_model *m;
    ragd_gguf g;
    char arch[16];     /* "llama", "qwen2" or "qwen3": the key prefix */
    bool *used;        /* [g.n_tensors] tensor consumed by a slot */
} gguf_ctx;

/* ---------------------------------------------------------------------------------------------- */
/* configuration */

/* {arch}.<suffix> as an integer in [lo, hi]; absent → dflt, or an error when dflt == INT64_MIN. */
static ragd_status arch_int(gguf_ctx *c, const char *suffix, int64_t dflt, int64_t lo, int64_t hi, int *out,
                            ragd_err *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", c->arch, suffix);
    const ragd_gguf_kv *kv = ragd_gguf_find(&c->g, key);
    if (!kv) {
        if (dflt == INT64_MIN)
            return ragd_err_set(err, RAGD_EFORMAT, "%s: required metadata key '%s' is missing", c->fname, key);
        *out = (int)dflt;
        return RAGD_OK;
    }
    if (kv->type == RAGD_GGUF_ARRAY)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: '%s' is a per-layer array (only one value for all layers is supported)",
                            c->fname, key);
    int64_t v;
    ragd_status st = ragd_gguf_get_int(&c->g, key, &v, err);
    if (st) return st;
    if (v < lo || v > hi)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: metadata key '%s' = %lld is outside [%lld, %lld]", c->fname, key,
                            (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return RAGD_OK;
}

/* {arch}.<suffix> as a float in (lo, hi]; absent → dflt (NaN: required). */
static ragd_status arch_float(gguf_ctx *c, const char *suffix, double dflt, double lo, double hi, float *out,
                              ragd_err *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", c->arch, suffix);
    double v;
    ragd_status st = ragd_gguf_get_float(&c->g, key, &v, err);
    if (st == RAGD_ENOTFOUND && !isnan(dflt)) {
        ragd_err_free(err);
        *out = (float)dflt;
        return RAGD_OK;
    }
    if (st == RAGD_ENOTFOUND)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: required metadata key '%s' is missing", c->fname, key);
    if (st) return st;
    if (!(v > lo && v <= hi))
        return ragd_err_set(err, RAGD_EFORMAT, "%s: metadata key '%s' = %g is outside (%g, %g]", c->fname, key, v, lo, hi);
    *out = (float)v;
    return RAGD_OK;
}

/* An optional token id key: absent → -1. */
static ragd_status opt_id(gguf_ctx *c, const char *key, int32_t *out, ragd_err *err) {
    int64_t v;
    ragd_status st = ragd_gguf_get_int(&c->g, key, &v, err);
    if (st == RAGD_ENOTFOUND) {
        ragd_err_free(err);
        *out = -1;
        return RAGD_OK;
    }
    if (st) return st;
    if (v < 0 || v > INT32_MAX)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: metadata key '%s' = %lld is not a token id", c->fname, key, (long long)v);
    *out = (int32_t)v;
    return RAGD_OK;
}

static ragd_status opt_bool(gguf_ctx *c, const char *key, bool dflt, bool *out, ragd_err *err) {
    ragd_status st = ragd_gguf_get_bool(&c->g, key, out, err);
    if (st == RAGD_ENOTFOUND) {
        ragd_err_free(err);
        *out = dflt;
        return RAGD_OK;
    }
    return st;
}

/* llama3 RoPE scaling. convert_hf_to_gguf.py does not store the rope_scaling parameters of Llama 3.x; it
 * stores their effect, `rope_freqs.weight` [head_dim/2]: the divisor of each inverse frequency (1 for high
 * frequencies, `factor` for low ones, a smooth blend between). ragd's engine computes those divisors from
 * the parameters, as transformers does, so the loader recognizes the parameters: factor = the largest
 * divisor, low_freq_factor 1, high_freq_factor 4 and original context {arch}.rope.scaling.
 * original_context_length (default 8192, what the converter assumes) — the values of every Llama 3.1/3.2/
 * 3.3 release — and checks that they reproduce every stored divisor (relative 1e-4); anything else is
 * RAGD_EUNSUPPORTED. */
static ragd_status load_rope_freqs(gguf_ctx *c, ragd_err *err) {
    ragd_model_config *cfg = &c->m->cfg;
    const ragd_gguf_tensor *t = ragd_gguf_find_tensor(&c->g, "rope_freqs.weight");
    if (!t) return RAGD_OK;
    c->used[t - c->g.tensors] = true;
    int half = cfg->head_dim / 2;
    if (cfg->arch != RAGD_ARCH_LLAMA || t->type != RAGD_GGML_F32 || t->n_dims != 1 || t->ne[0] != half)
        return ragd_err_set(err, RAGD_EUNSUPPORTED,
                            "%s: tensor 'rope_freqs.weight' (%s, %lld values) is not llama3 RoPE scaling of %d frequencies",
                            c->fname, ragd_ggml_type_name(t->type), (long long)t->ne[0], half);
    int orig;
    ragd_status st = arch_int(c, "rope.scaling.original_context_length", 8192, 1, 1 << 30, &orig, err);
    if (st) return st;
    float factor = 0;
    for (int i = 0; i < half; i++) {
        float r;
        memcpy(&r, t->data + 4 * (size_t)i, 4);
        if (!(r >= 1.0f && r <= 1e6f))
            return ragd_err_set(err, RAGD_EFORMAT, "%s: rope_freqs.weight[%d] = %g is not a divisor ≥ 1", c->fname, i, r);
        if (r > factor) factor = r;
    }
    const double lo = 1.0, hi = 4.0, low_wavelen = orig / lo, high_wavelen = orig / hi;
    for (int i = 0; i < half; i++) {
        double freq = 1.0 / pow(cfg->rope_theta, (2.0 * i) / cfg->head_dim), wavelen = 2.0 * M_PI / freq, want;
        if (wavelen < high_wavelen) want = 1.0;
        else if (wavelen > low_wavelen) want = factor;
        else {
            double smooth = (orig / wavelen - lo) / (hi - lo);
            want = 1.0 / ((1.0 - smooth) / factor + smooth);
        }
        float r;
        memcpy(&r, t->data + 4 * (size_t)i, 4);
        if (fabs(r - want) > 1e-4 * want)
            return ragd_err_set(err, RAGD_EUNSUPPORTED,
                                "%s: rope_freqs.weight[%d] = %.9g, but llama3 scaling (factor %g, low_freq_factor 1, "
                                "high_freq_factor 4, original context %d) gives %.9g: this RoPE scaling is not supported",
                                c->fname, i, r, factor, orig, want);
    }
    if (factor > 1.0f) {
        cfg->rope_type = 1;
        cfg->rope_factor = factor;
        cfg->rope_low_freq_factor = (float)lo;
        cfg->rope_high_freq_factor = (float)hi;
        cfg->rope_orig_max_pos = orig;
    }
    return RAGD_OK;
}

static ragd_status load_config(gguf_ctx *c, ragd_err *err) {
    ragd_model_config *cfg = &c->m->cfg;
    const char *a;
    size_t alen;
    ragd_status st = ragd_gguf_get_str(&c->g, "general.architecture", &a, &alen, err);
    if (st == RAGD_ENOTFOUND)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: metadata key 'general.architecture' is missing", c->fname);
    if (st) return st;
    static const struct { const char *name; ragd_arch arch; } archs[] = {
        {"llama", RAGD_ARCH_LLAMA}, {"qwen2", RAGD_ARCH_QWEN2}, {"qwen3", RAGD_ARCH_QWEN3}};
    bool found = false;
    for (size_t i = 0; i < sizeof archs / sizeof archs[0] && !found; i++)
        if (alen == strlen(archs[i].name) && !memcmp(a, archs[i].name, alen)) {
            cfg->arch = archs[i].arch;
            snprintf(c->arch, sizeof c->arch, "%s", archs[i].name);
            found = true;
        }
    if (!found)
        return ragd_err_set(err, RAGD_EUNSUPPORTED,
                            "%s: architecture '%.*s' is not supported (ragd loads llama, qwen2 and qwen3 GGUF files)",
                            c->fname, (int)(alen > 64 ? 64 : alen), a);

    const int64_t REQ = INT64_MIN;
    if ((st = arch_int(c, "embedding_length", REQ, 1, 1 << 17, &cfg->n_embd, err)) ||
        (st = arch_int(c, "feed_forward_length", REQ, 1, 1 << 20, &cfg->n_ff, err)) ||
        (st = arch_int(c, "block_count", REQ, 1, 4096, &cfg->n_layer, err)) ||
        (st = arch_int(c, "attention.head_count", REQ, 1, 4096, &cfg->n_head, err)) ||
        (st = arch_int(c, "attention.head_count_kv", cfg->n_head, 1, 4096, &cfg->n_head_kv, err)))
        return st;
    if (cfg->n_head % cfg->n_head_kv)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: %s.attention.head_count %d is not a multiple of head_count_kv %d",
                            c->fname, c->arch, cfg->n_head, cfg->n_head_kv);
    /* llama.cpp: n_embd_head_k defaults to n_embd / n_head; value_length must match (ragd has one head_dim) */
    int vlen;
    if ((st = arch_int(c, "attention.key_length", cfg->n_embd / cfg->n_head, 1, 4096, &cfg->head_dim, err)) ||
        (st = arch_int(c, "attention.value_length", cfg->head_dim, 1, 4096, &vlen, err)))
        return st;
    if (vlen != cfg->head_dim)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: %s.attention.value_length %d differs from key_length %d",
                            c->fname, c->arch, vlen, cfg->head_dim);
    if (cfg->head_dim % 2 || cfg->head_dim < 2)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: head dim %d (%s.attention.key_length, else embedding_length / head_count) "
                            "must be even and ≥ 2 (RoPE rotates pairs)", c->fname, cfg->head_dim, c->arch);
    if ((int64_t)cfg->n_head * cfg->head_dim > (1 << 20))
        return ragd_err_set(err, RAGD_EFORMAT, "%s: head_count × head dim is too large", c->fname);
    int rope_dims;
    if ((st = arch_int(c, "rope.dimension_count", cfg->head_dim, 1, 4096, &rope_dims, err))) return st;
    if (rope_dims != cfg->head_dim)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: %s.rope.dimension_count %d ≠ head dim %d (partial rotary is not supported)",
                            c->fname, c->arch, rope_dims, cfg->head_dim);
    if ((st = arch_float(c, "attention.layer_norm_rms_epsilon", NAN, 0.0, 1.0, &cfg->rms_eps, err)) ||
        (st = arch_float(c, "rope.freq_base", 10000.0, 0.0, 1e12, &cfg->rope_theta, err)) ||
        (st = arch_int(c, "context_length", c->m->cfg.arch == RAGD_ARCH_LLAMA ? 2048 : 32768, 1, 1 << 30, &cfg->max_pos,
                       err)))
        return st;
    /* what would change the math and ragd does not implement */
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", c->arch);
    const char *s;
    size_t slen;
    if (ragd_gguf_get_str(&c->g, key, &s, &slen, NULL) == RAGD_OK && !(slen == 4 && !memcmp(s, "none", 4)))
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: %s = '%.*s' is not supported", c->fname, key,
                            (int)(slen > 32 ? 32 : slen), s);
    snprintf(key, sizeof key, "%s.expert_count", c->arch);
    if (ragd_gguf_find(&c->g, key))
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: mixture-of-experts models (%s) are not supported", c->fname, key);
    cfg->rope_type = 0;
    if ((st = load_rope_freqs(c, err))) return st;
    cfg->qkv_bias = cfg->arch == RAGD_ARCH_QWEN2;
    cfg->qk_norm = cfg->arch == RAGD_ARCH_QWEN3;
    cfg->tie_embed = ragd_gguf_find_tensor(&c->g, "output.weight") == NULL;
    /* rows of the embedding matrix: from the tensor (it may exceed the tokenizer's vocabulary) */
    const ragd_gguf_tensor *emb = ragd_gguf_find_tensor(&c->g, "token_embd.weight");
    if (!emb)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: tensor 'token_embd.weight' is missing (expected shape [n_vocab, %d])",
                            c->fname, cfg->n_embd);
    if (emb->n_dims != 2 || emb->ne[1] > (1 << 24))
        return ragd_err_set(err, RAGD_EFORMAT, "%s: tensor 'token_embd.weight' has %u dims and %lld rows", c->fname,
                            emb->n_dims, (long long)emb->ne[emb->n_dims - 1]);
    cfg->n_vocab = (int)emb->ne[1];
    /* pooling for embedding GGUFs: llama.cpp's LLAMA_POOLING_TYPE_{MEAN=1, CLS=2, LAST=3} */
    int pool;
    if ((st = arch_int(c, "pooling_type", 0, 0, 4, &pool, err))) return st;
    if (pool >= 1 && pool <= 3) {
        c->m->has_st_pooling = true;
        c->m->pooling = pool == 1 ? RAGD_POOL_MEAN : pool == 2 ? RAGD_POOL_CLS : RAGD_POOL_LAST;
    }
    return RAGD_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* tensors */

static bool ggml_to_dtype(uint32_t type, ragd_dtype *out) {
    switch (type) {
    case RAGD_GGML_F32: *out = RAGD_DT_F32; return true;
    case RAGD_GGML_F16: *out = RAGD_DT_F16; return true;
    case RAGD_GGML_BF16: *out = RAGD_DT_BF16; return true;
    case RAGD_GGML_Q8_0: *out = RAGD_DT_Q8_0; return true;
    case RAGD_GGML_Q4_0: *out = RAGD_DT_Q4_0; return true;
    case RAGD_GGML_Q4_1: *out = RAGD_DT_Q4_1; return true;
    default: return false;
    }
}

static ragd_status fill_view(gguf_ctx *c, size_t idx, ragd_tensor *t, ragd_err *err) {
    const ragd_gguf_tensor *gt = &c->g.tensors[idx];
    ragd_dtype dt;
    if (!ggml_to_dtype(gt->type, &dt))
        return ragd_err_set(err, RAGD_EUNSUPPORTED,
                            "%s: tensor '%s' has type %s, which ragd does not load (F32, F16, BF16, Q8_0, Q4_0, Q4_1)",
                            c->fname, gt->name, ragd_ggml_type_name(gt->type));
    c->used[idx] = true;
    memset(t, 0, sizeof *t);
    t->name = ragd_model_own_str(c->m, gt->name);
    t->data = gt->data;
    t->dtype = dt;
    t->n_dims = (int)gt->n_dims;
    for (uint32_t d = 0; d < gt->n_dims; d++) t->shape[d] = gt->ne[gt->n_dims - 1 - d]; /* PyTorch order */
    t->nbytes = gt->nbytes;
    t->file = ((ragd_model_priv *)c->m->priv)->map_names[0];
    return RAGD_OK;
}

/* Undoes convert_hf_to_gguf's permute(w, n_heads) on a [n_heads*hd, ...] weight (or bias): within each
 * head, GGUF row 2i+j → HF row i + j·hd/2. Copies into storage the model owns; t then points there.
 * Shapes that do not match are left alone (validate reports them). */
static ragd_status unpermute_rows(gguf_ctx *c, ragd_tensor *t, int n_heads, ragd_err *err) {
    if (!t->data) return RAGD_OK;
    int64_t hd = c->m->cfg.head_dim, rows = t->shape[0];
    if (rows != (int64_t)n_heads * hd || t->nbytes % (size_t)rows) return RAGD_OK;
    size_t row_bytes = t->nbytes / (size_t)rows;
    uint8_t *dst = malloc(t->nbytes ? t->nbytes : 1);
    if (!dst) return ragd_err_set(err, RAGD_ENOMEM, "%s: out of memory un-permuting '%s'", c->fname, t->name);
    const uint8_t *src = t->data;
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t i = 0; i < hd / 2; i++)
            for (int64_t j = 0; j < 2; j++) {
                size_t from = (size_t)(h * hd + 2 * i + j), to = (size_t)(h * hd + j * (hd / 2) + i);
                memcpy(dst + to * row_bytes, src + from * row_bytes, row_bytes);
            }
    t->data = ragd_model_own(c->m, dst, t->nbytes);
    return RAGD_OK;
}

static ragd_status load_tensors(gguf_ctx *c, ragd_err *err) {
    ragd_model *m = c->m;
    ragd_status st = ragd_model_set_family(m, err);
    if (st) return st;
    m->layers = ragd_xcalloc((size_t)m->cfg.n_layer, sizeof *m->layers);
    size_t n = ragd_model_weight_slots(m, NULL);
    ragd_weight_slot *slots = ragd_xmalloc(n * sizeof *slots);
    ragd_model_weight_slots(m, slots);
    ragd_buf name = {0}, shape = {0};
    for (size_t i = 0; i < n && !st; i++) {
        if (!slots[i].d->gguf) { /* a tensor of a Hugging Face head (score.weight): never in GGUF, never required here */
            if (slots[i].required)
                st = ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: %s has no GGUF form", c->fname,
                                  ragd_weight_role_name(slots[i].role));
            continue;
        }
        ragd_buf_reset(&name);
        ragd_weight_gguf_name(&slots[i], &name);
        const ragd_gguf_tensor *gt = ragd_gguf_find_tensor(&c->g, name.data);
        if (gt) {
            st = fill_view(c, (size_t)(gt - c->g.tensors), slots[i].t, err);
        } else if (slots[i].required) {
            /* GGUF order (fastest axis first) in the message: what gguf-dump and llama.cpp show */
            ragd_buf_reset(&shape);
            if (slots[i].n_dims == 2)
                ragd_buf_printf(&shape, "[%lld, %lld]", (long long)slots[i].shape[1], (long long)slots[i].shape[0]);
            else
                ragd_buf_printf(&shape, "[%lld]", (long long)slots[i].shape[0]);
            st = ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s' is missing (expected GGUF dims %s)", c->fname,
                              name.data, shape.data);
        }
    }
    free(slots);
    ragd_buf_free(&name);
    ragd_buf_free(&shape);
    if (st) return st;
    if (m->cfg.tie_embed) m->lm_head = m->tok_embd;
    if (m->cfg.arch == RAGD_ARCH_LLAMA)
        for (int l = 0; l < m->cfg.n_layer && !st; l++) {
            ragd_layer_weights *lw = &m->layers[l];
            if ((st = unpermute_rows(c, &lw->wq, m->cfg.n_head, err)) ||
                (st = unpermute_rows(c, &lw->wk, m->cfg.n_head_kv, err)))
                return st;
        }
    size_t n_extra = 0, first = 0;
    for (size_t i = 0; i < c->g.n_tensors; i++)
        if (!c->used[i] && !n_extra++) first = i;
    if (n_extra) {
        /* a llama GGUF with attention biases would need them un-permuted too; refuse rather than guess */
        for (size_t i = 0; i < c->g.n_tensors; i++)
            if (!c->used[i] && strstr(c->g.tensors[i].name, ".bias"))
                return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: tensor '%s' is not supported for %s", c->fname,
                                    c->g.tensors[i].name, c->arch);
        RAGD_WARN("model %s: %zu tensor(s) in %s are not used by %s (first: '%s')", m->name, n_extra, c->fname, c->arch,
                  c->g.tensors[first].name);
    }
    return RAGD_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* the embedded tokenizer */

static ragd_status load_tokenizer(gguf_ctx *c, ragd_err *err) {
    ragd_model *m = c->m;
    ragd_tokenizer_gguf_parts p = {.bos_id = -1, .eos_id = -1, .pad_id = -1};
    char *model = NULL, *pre = NULL, *tmpl = NULL, *tmpl_tools = NULL;
    const char **tokens = NULL, **merges = NULL;
    size_t *token_lens = NULL, *merge_lens = NULL, n_types = 0;
    int32_t *types = NULL;
    ragd_status st = ragd_gguf_get_strdup(&c->g, "tokenizer.ggml.model", &model, err);
    if (st == RAGD_ENOTFOUND) {
        st = ragd_err_set(err, RAGD_EFORMAT, "%s: the file has no embedded tokenizer (tokenizer.ggml.model is missing)",
                          c->fname);
        goto done;
    }
    if (st) goto done;
    p.model = model;
    if ((st = ragd_gguf_get_strdup(&c->g, "tokenizer.ggml.pre", &pre, err)) == RAGD_ENOTFOUND) {
        ragd_err_free(err);
        st = RAGD_OK;
    }
    if (st) goto done;
    p.pre = pre;
    if ((st = ragd_gguf_get_str_array(&c->g, "tokenizer.ggml.tokens", &tokens, &token_lens, &p.n_tokens, err)))
        goto done;
    p.tokens = tokens;
    p.token_lens = token_lens;
    st = ragd_gguf_get_i32_array(&c->g, "tokenizer.ggml.token_type", &types, &n_types, err);
    if (st == RAGD_ENOTFOUND) {
        ragd_err_free(err);
        st = RAGD_OK;
    } else if (!st && n_types != p.n_tokens) {
        st = ragd_err_set(err, RAGD_EFORMAT, "%s: tokenizer.ggml.token_type has %zu entries for %zu tokens", c->fname,
                          n_types, p.n_tokens);
    }
    if (st) goto done;
    p.token_types = types;
    st = ragd_gguf_get_str_array(&c->g, "tokenizer.ggml.merges", &merges, &merge_lens, &p.n_merges, err);
    if (st == RAGD_ENOTFOUND) {
        ragd_err_free(err);
        st = RAGD_OK;
    }
    if (st) goto done;
    p.merges = merges;
    p.merge_lens = merge_lens;
    if ((st = opt_id(c, "tokenizer.ggml.bos_token_id", &p.bos_id, err)) ||
        (st = opt_id(c, "tokenizer.ggml.eos_token_id", &p.eos_id, err)) ||
        (st = opt_id(c, "tokenizer.ggml.padding_token_id", &p.pad_id, err)) ||
        (st = opt_bool(c, "tokenizer.ggml.add_bos_token", false, &p.add_bos, err)) ||
        (st = opt_bool(c, "tokenizer.ggml.add_eos_token", false, &p.add_eos, err)))
        goto done;
    if ((st = ragd_gguf_get_strdup(&c->g, "tokenizer.chat_template", &tmpl, err)) == RAGD_ENOTFOUND) {
        ragd_err_free(err);
        st = RAGD_OK;
    }
    if (st) goto done;
    p.chat_template = tmpl;
    /* llama.cpp's convert_hf_to_gguf stores named templates as tokenizer.chat_template.<name> */
    if ((st = ragd_gguf_get_strdup(&c->g, "tokenizer.chat_template.tool_use", &tmpl_tools, err)) == RAGD_ENOTFOUND) {
        ragd_err_free(err);
        st = RAGD_OK;
    }
    if (st) goto done;
    p.chat_template_tool_use = tmpl_tools;
    if ((st = ragd_tokenizer_load_gguf_parts(&p, &m->tok, err))) {
        ragd_err_prefix(err, "%s", c->fname);
        goto done;
    }
    size_t nv = ragd_tokenizer_vocab_size(m->tok);
    if (nv > (size_t)m->cfg.n_vocab) {
        st = ragd_err_set(err, RAGD_EFORMAT, "%s: the tokenizer has %zu token ids but token_embd.weight only %d rows",
                          c->fname, nv, m->cfg.n_vocab);
        goto done;
    }
    /* eos: the tokenizer's, plus end-of-turn when the file names one (llama.cpp stops on both) */
    int32_t eot = -1;
    if ((st = opt_id(c, "tokenizer.ggml.eot_token_id", &eot, err))) goto done;
    if (p.eos_id >= 0 && (st = ragd_model_cfg_add_eos(&m->cfg, p.eos_id, c->fname, err))) goto done;
    if (eot >= 0 && (st = ragd_model_cfg_add_eos(&m->cfg, eot, c->fname, err))) goto done;
    m->cfg.bos_id = p.bos_id;
done:
    free(model);
    free(pre);
    free(tmpl);
    free(tmpl_tools);
    free(tokens);
    free(token_lens);
    free(merges);
    free(merge_lens);
    free(types);
    return st;
}

/* ---------------------------------------------------------------------------------------------- */

static ragd_status load_file(gguf_ctx *c, ragd_err *err) {
    ragd_model_region r;
    ragd_status st = ragd_model_map_file(c->m, c->path, c->fname, &r, NULL, err);
    if (st) return st;
    if ((st = ragd_gguf_parse(r.data, r.size, c->fname, &c->g, err))) return st;
    c->used = ragd_xcalloc(c->g.n_tensors ? c->g.n_tensors : 1, sizeof *c->used); /* [n_tensors] */
    if ((st = load_config(c, err)) || (st = load_tensors(c, err)) || (st = load_tokenizer(c, err))) return st;
    return ragd_model_validate(c->m, err);
}

ragd_status ragd_model_load_gguf(const char *path, ragd_model **out, ragd_err *err) {
    *out = NULL;
    const char *slash = strrchr(path, '/');
    gguf_ctx c = {.path = path, .fname = slash && slash[1] ? slash + 1 : path, .m = ragd_model_new(path)};
    ragd_status st = load_file(&c, err);
    ragd_gguf_free(&c.g);
    free(c.used);
    if (st) {
        if (err && err->msg && !strstr(err->msg, path)) ragd_err_prefix(err, "model %s", path);
        ragd_model_free(c.m);
        return st;
    }
    *out = c.m;
    return RAGD_OK;
}
