/* validate.c — the check of every tensor view against the slots of its configuration.
 *
 * The slots come from the family descriptor (family.c: which tensors an architecture has and their
 * shapes, PyTorch [out, in]); loaders look slots up by name, ragd_model_validate checks the result:
 * presence, dtype (quantized types only for 2-D weights whose rows are whole 32-blocks), shape, byte size
 * and that the bytes lie inside storage the model owns (a mapped file or an owned heap block).
 */
#include <stdlib.h>

#include "model/model_internal.h"

void ragd_shape_str(int n_dims, const int64_t *shape, ragd_buf *out) {
    ragd_buf_putc(out, '[');
    for (int i = 0; i < n_dims; i++) ragd_buf_printf(out, "%s%lld", i ? ", " : "", (long long)shape[i]);
    ragd_buf_putc(out, ']');
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
    if (t->dtype == RAGD_DT_I64) {
        st = ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: tensor '%s': dtype I64 is not supported for a weight", file,
                          name->data);
        goto done;
    }
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
    if (!m->family || !m->layers || c->n_layer <= 0 || c->n_embd <= 0 || c->n_vocab <= 0 || c->head_dim <= 0 ||
        c->n_head_kv <= 0 || c->n_head % c->n_head_kv)
        return ragd_err_set(err, RAGD_EINTERNAL, "%s: model configuration is incomplete", m->path);
    size_t n = ragd_model_weight_slots(m, NULL);
    ragd_weight_slot *slots = ragd_xmalloc((n ? n : 1) * sizeof *slots);
    ragd_model_weight_slots(m, slots);
    bool *listed = ragd_xcalloc(RAGD_MAX_WEIGHT_SLOTS(c->n_layer), sizeof *listed); /* [global + layer roles] */
    ragd_buf name = {0};
    ragd_status st = RAGD_OK;
    for (size_t i = 0; i < n && st == RAGD_OK; i++) {
        st = check_slot(m, &slots[i], &name, err);
        size_t at = slots[i].layer < 0 ? (size_t)slots[i].role
                                       : RAGD_W_N_GLOBAL + (size_t)slots[i].layer * RAGD_W_N_LAYER +
                                             (size_t)(slots[i].role - RAGD_W_N_GLOBAL);
        listed[at] = true;
    }
    free(slots);
    ragd_buf_free(&name);
    if (st == RAGD_OK && c->tie_embed && m->lm_head.data != m->tok_embd.data)
        st = ragd_err_set(err, RAGD_EINTERNAL, "%s: tied lm_head is not a view of embed_tokens", m->path);
    /* no view outside the descriptor (a tied lm_head is the embedding's view) */
    for (int r = 0; st == RAGD_OK && r < RAGD_W_N_GLOBAL; r++)
        if (m->global[r].data && !listed[r] && !(r == RAGD_W_LM_HEAD && c->tie_embed))
            st = ragd_err_set(err, RAGD_EINTERNAL, "%s: tensor %s is not used by %s", m->path,
                              ragd_weight_role_name((ragd_weight_role)r), ragd_arch_name(c->arch));
    for (int l = 0; st == RAGD_OK && l < c->n_layer; l++)
        for (int r = 0; r < RAGD_W_N_LAYER; r++)
            if (m->layers[l].t[r].data && !listed[RAGD_W_N_GLOBAL + (size_t)l * RAGD_W_N_LAYER + (size_t)r]) {
                st = ragd_err_set(err, RAGD_EINTERNAL, "%s: layer %d has tensors its architecture does not use",
                                  m->path, l);
                break;
            }
    free(listed);
    return st;
}
