/* validate.c — the weight slots of a configuration and the check of every tensor view against them.
 *
 * ragd_model_weight_slots is the single statement of which tensors an architecture has and their
 * shapes (PyTorch [out, in]); loaders look slots up by name, ragd_model_validate checks the result:
 * presence, dtype (quantized types only for 2-D weights whose rows are whole 32-blocks), shape, byte size
 * and that the bytes lie inside storage the model owns (a mapped file or an owned heap block).
 */
#include <stdlib.h>

#include "model/model_internal.h"

typedef struct role_info {
    const char *hf;   /* HF suffix (layer tensors after "layers.N.") */
    const char *gguf; /* GGUF name (layer tensors after "blk.N.") */
} role_info;

static const role_info k_roles[] = {
    [RAGD_W_TOK_EMBD] = {"embed_tokens.weight", "token_embd.weight"},
    [RAGD_W_OUT_NORM] = {"norm.weight", "output_norm.weight"},
    [RAGD_W_LM_HEAD] = {"lm_head.weight", "output.weight"},
    [RAGD_W_ATTN_NORM] = {"input_layernorm.weight", "attn_norm.weight"},
    [RAGD_W_Q] = {"self_attn.q_proj.weight", "attn_q.weight"},
    [RAGD_W_K] = {"self_attn.k_proj.weight", "attn_k.weight"},
    [RAGD_W_V] = {"self_attn.v_proj.weight", "attn_v.weight"},
    [RAGD_W_BQ] = {"self_attn.q_proj.bias", "attn_q.bias"},
    [RAGD_W_BK] = {"self_attn.k_proj.bias", "attn_k.bias"},
    [RAGD_W_BV] = {"self_attn.v_proj.bias", "attn_v.bias"},
    [RAGD_W_O] = {"self_attn.o_proj.weight", "attn_output.weight"},
    [RAGD_W_Q_NORM] = {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    [RAGD_W_K_NORM] = {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    [RAGD_W_FFN_NORM] = {"post_attention_layernorm.weight", "ffn_norm.weight"},
    [RAGD_W_GATE] = {"mlp.gate_proj.weight", "ffn_gate.weight"},
    [RAGD_W_UP] = {"mlp.up_proj.weight", "ffn_up.weight"},
    [RAGD_W_DOWN] = {"mlp.down_proj.weight", "ffn_down.weight"},
};

void ragd_weight_hf_name(const ragd_weight_slot *s, ragd_buf *out) {
    if (s->layer >= 0) ragd_buf_printf(out, "layers.%d.", s->layer);
    ragd_buf_puts(out, k_roles[s->role].hf);
}

void ragd_weight_gguf_name(const ragd_weight_slot *s, ragd_buf *out) {
    if (s->layer >= 0) ragd_buf_printf(out, "blk.%d.", s->layer);
    ragd_buf_puts(out, k_roles[s->role].gguf);
}

void ragd_shape_str(int n_dims, const int64_t *shape, ragd_buf *out) {
    ragd_buf_putc(out, '[');
    for (int i = 0; i < n_dims; i++) ragd_buf_printf(out, "%s%lld", i ? ", " : "", (long long)shape[i]);
    ragd_buf_putc(out, ']');
}

static ragd_weight_slot slot(ragd_weight_role role, int layer, ragd_tensor *t, int64_t a, int64_t b) {
    ragd_weight_slot s = {role, layer, t, b ? 2 : 1, {a, b}, role != RAGD_W_LM_HEAD, b != 0};
    return s;
}

size_t ragd_model_weight_slots(ragd_model *m, ragd_weight_slot *out) {
    const ragd_model_config *c = &m->cfg;
    int64_t E = c->n_embd, F = c->n_ff, V = c->n_vocab, Dq = (int64_t)c->n_head * c->head_dim,
            Dkv = (int64_t)c->n_head_kv * c->head_dim, hd = c->head_dim;
    size_t n = 0;
    out[n++] = slot(RAGD_W_TOK_EMBD, -1, &m->tok_embd, V, E);
    out[n++] = slot(RAGD_W_OUT_NORM, -1, &m->out_norm, E, 0);
    if (!c->tie_embed) out[n++] = slot(RAGD_W_LM_HEAD, -1, &m->lm_head, V, E);
    for (int i = 0; i < c->n_layer; i++) {
        ragd_layer_weights *l = &m->layers[i];
        out[n++] = slot(RAGD_W_ATTN_NORM, i, &l->attn_norm, E, 0);
        out[n++] = slot(RAGD_W_Q, i, &l->wq, Dq, E);
        out[n++] = slot(RAGD_W_K, i, &l->wk, Dkv, E);
        out[n++] = slot(RAGD_W_V, i, &l->wv, Dkv, E);
        if (c->qkv_bias) {
            out[n++] = slot(RAGD_W_BQ, i, &l->bq, Dq, 0);
            out[n++] = slot(RAGD_W_BK, i, &l->bk, Dkv, 0);
            out[n++] = slot(RAGD_W_BV, i, &l->bv, Dkv, 0);
        }
        out[n++] = slot(RAGD_W_O, i, &l->wo, E, Dq);
        if (c->qk_norm) {
            out[n++] = slot(RAGD_W_Q_NORM, i, &l->q_norm, hd, 0);
            out[n++] = slot(RAGD_W_K_NORM, i, &l->k_norm, hd, 0);
        }
        out[n++] = slot(RAGD_W_FFN_NORM, i, &l->ffn_norm, E, 0);
        out[n++] = slot(RAGD_W_GATE, i, &l->w_gate, F, E);
        out[n++] = slot(RAGD_W_UP, i, &l->w_up, F, E);
        out[n++] = slot(RAGD_W_DOWN, i, &l->w_down, E, F);
    }
    RAGD_ASSERT(n <= RAGD_MAX_WEIGHT_SLOTS(c->n_layer));
    return n;
}

/* True when [p, p + n) lies inside a region the model owns. */
static bool inside_storage(const ragd_model *m, const void *p, size_t n) {
    const ragd_model_priv *pv = m->priv;
    const uint8_t *q = p;
    for (size_t i = 0; i < pv->n_maps; i++) {
        const uint8_t *b = pv->maps[i].data;
        if (q >= b && q <= b + pv->maps[i].size && n <= (size_t)(b + pv->maps[i].size - q)) return true;
    }
    for (size_t i = 0; i < pv->n_owned; i++) {
        const uint8_t *b = pv->owned[i];
        if (q >= b && q <= b + pv->owned_size[i] && n <= (size_t)(b + pv->owned_size[i] - q)) return true;
    }
    return false;
}

static ragd_status check_slot(const ragd_model *m, const ragd_weight_slot *s, ragd_buf *name, ragd_err *err) {
    const ragd_tensor *t = s->t;
    ragd_buf_reset(name);
    if (t->name) ragd_buf_puts(name, t->name);
    else ragd_weight_hf_name(s, name);
    const char *file = t->file ? t->file : m->path;
    ragd_buf want = {0}, got = {0};
    ragd_shape_str(s->n_dims, s->shape, &want);
    ragd_status st = RAGD_OK;
    if (!t->data) {
        if (s->required)
            st = ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s' is missing (expected shape %s)", file, name->data,
                              want.data);
        goto done;
    }
    ragd_shape_str(t->n_dims, t->shape, &got);
    if (ragd_dtype_is_quant(t->dtype) && !s->matrix) {
        st = ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: tensor '%s': dtype %s is not supported for a vector (F32, F16 "
                                                  "or BF16 expected)",
                          file, name->data, ragd_dtype_name(t->dtype));
        goto done;
    }
    bool same = t->n_dims == s->n_dims;
    for (int i = 0; same && i < s->n_dims; i++) same = t->shape[i] == s->shape[i];
    if (!same) {
        st = ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s': expected shape %s, found %s", file, name->data, want.data,
                          got.data);
        goto done;
    }
    if (ragd_dtype_is_quant(t->dtype) && s->shape[1] % 32) {
        st = ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s': %s rows of %lld elements are not whole 32-blocks", file,
                          name->data, ragd_dtype_name(t->dtype), (long long)s->shape[1]);
        goto done;
    }
    size_t need;
    if (!ragd_dtype_nbytes(t->dtype, ragd_tensor_numel(t), &need) || need != t->nbytes) {
        st = ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s': %zu bytes stored, shape %s in %s needs %zu", file,
                          name->data, t->nbytes, got.data, ragd_dtype_name(t->dtype), need);
        goto done;
    }
    if (!inside_storage(m, t->data, t->nbytes))
        st = ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s': its %zu bytes lie outside the file (truncated?)", file,
                          name->data, t->nbytes);
done:
    ragd_buf_free(&want);
    ragd_buf_free(&got);
    return st;
}

ragd_status ragd_model_validate(const ragd_model *m, ragd_err *err) {
    const ragd_model_config *c = &m->cfg;
    if (!m->layers || c->n_layer <= 0 || c->n_embd <= 0 || c->n_vocab <= 0 || c->head_dim <= 0 || c->n_head_kv <= 0 ||
        c->n_head % c->n_head_kv)
        return ragd_err_set(err, RAGD_EINTERNAL, "%s: model configuration is incomplete", m->path);
    ragd_weight_slot *slots = ragd_xmalloc(RAGD_MAX_WEIGHT_SLOTS(c->n_layer) * sizeof *slots);
    size_t n = ragd_model_weight_slots((ragd_model *)m, slots);
    ragd_buf name = {0};
    ragd_status st = RAGD_OK;
    for (size_t i = 0; i < n && st == RAGD_OK; i++) st = check_slot(m, &slots[i], &name, err);
    free(slots);
    ragd_buf_free(&name);
    if (st != RAGD_OK) return st;
    if (c->tie_embed && m->lm_head.data != m->tok_embd.data)
        return ragd_err_set(err, RAGD_EINTERNAL, "%s: tied lm_head is not a view of embed_tokens", m->path);
    for (int i = 0; i < c->n_layer; i++) {
        const ragd_layer_weights *l = &m->layers[i];
        if ((!c->qkv_bias && (l->bq.data || l->bk.data || l->bv.data)) ||
            (!c->qk_norm && (l->q_norm.data || l->k_norm.data)))
            return ragd_err_set(err, RAGD_EINTERNAL, "%s: layer %d has tensors its architecture does not use", m->path, i);
    }
    return RAGD_OK;
}
