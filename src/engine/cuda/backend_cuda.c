/* backend_cuda.c — the CUDA backend's C glue: implements ragd_backend_cuda (engine/backend.h) on top
 * of the net API of cuda_api.h. Maps a ragd_model (typed views, PyTorch [out, in] layout) onto the
 * net's weight slots by walking the model's descriptor slots (model.h; role → net slot in cuda_slot),
 * computes the RoPE inverse frequencies, gathers the reranker's vocabulary rows and translates the net's
 * status codes into ragd_status with messages. Families whose blocks the net lacks are refused.
 *
 * Compiled into ragd_core only when CUDA is built. Generation (step) runs the net's paged-KV forward
 * with the block tables engine.c built (the net checks them again) and samples the logits on the host
 * with ragd_sample_row. Quantized GGUF weights (Q8_0/Q4_0/Q4_1) are dequantized at load
 * (ragd_tensor_to_f32 → f32 → bf16 round-to-nearest-even on the device): the GPU holds bf16 copies
 * (2 bytes per weight, ~3.6x a Q4_1 file); keeping them quantized in the GEMMs is future work.
 * Memory: everything is planned and allocated in create; pool/score/step allocate nothing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/backend.h"
#include "engine/cuda/cuda_api.h"

enum { CUDA_MAX_SCORE_ROWS = 16 };

typedef struct cuda_state {
    const ragd_model *m;
    ragd_cuda_net *net;
    float *rows; /* [CUDA_MAX_SCORE_ROWS, n_embd] host staging for score rows */
    float *logits;  /* [max_seqs, n_vocab] host logits of a step (generation engines) */
    int32_t *pos_ids; /* [max_batch_tokens] position-table rows of a batch (absolute-position families) */
    ragd_sample_ws *sample_ws;
    int max_seqs;
    bool kv_cache;
    char msg[1024];
} cuda_state;

static ragd_status map_status(int rc) {
    switch (rc) {
    case RAGD_CUDA_OK: return RAGD_OK;
    case RAGD_CUDA_EINVAL: return RAGD_EINVAL;
    case RAGD_CUDA_ERANGE: return RAGD_ERANGE;
    case RAGD_CUDA_ENOMEM: return RAGD_ENOMEM;
    case RAGD_CUDA_EUNSUPPORTED: return RAGD_EUNSUPPORTED;
    case RAGD_CUDA_EDEVICE: return RAGD_EDEVICE;
    case RAGD_CUDA_ENONFINITE: return RAGD_EINTERNAL;
    default: return RAGD_EINTERNAL;
    }
}

static void shape_of(const ragd_model *m, const ragd_engine_opts *o, ragd_cuda_shape *s) {
    const ragd_model_config *c = &m->cfg;
    memset(s, 0, sizeof *s);
    s->n_vocab = c->n_vocab, s->n_embd = c->n_embd, s->n_ff = c->n_ff, s->n_layer = c->n_layer;
    s->n_head = c->n_head, s->n_head_kv = c->n_head_kv, s->head_dim = c->head_dim;
    s->rms_eps = c->rms_eps, s->qk_norm = c->qk_norm, s->qkv_bias = c->qkv_bias;
    s->max_batch_tokens = o->max_batch_tokens, s->max_seqs = o->max_seqs;
    s->max_logit_edits = o->max_logit_edits;
    s->max_score_rows = CUDA_MAX_SCORE_ROWS, s->device = o->cuda_device;
    s->kv_cache = o->kv_cache, s->max_ctx = o->kv_cache ? o->max_ctx : 0;
    s->kv_blocks = o->kv_cache ? o->kv_blocks : 0, s->kv_block_size = o->kv_cache ? o->kv_block_size : 0;
    s->lm_head = m->lm_head.data != NULL && m->lm_head.data != m->tok_embd.data; /* tied: the net reuses tok_embd */
    /* the blocks (check_supported accepted the combination) */
    s->bidirectional = c->bidirectional;
    s->layer_norm = c->norm == RAGD_NORM_LAYER;
    s->act = (int)c->act; /* same numbering (cuda_api.h) */
    s->linear_bias = c->linear_bias;
    s->abs_pos = c->pos == RAGD_POS_ABSOLUTE;
    s->n_pos_embd = s->abs_pos ? c->n_pos_embd : 0, s->n_type_vocab = s->abs_pos ? c->n_type_vocab : 0;
    s->no_final_norm = m->out_norm.data == NULL;
    s->head = c->head == RAGD_HEAD_CLS ? RAGD_CUDA_HEAD_CLS : c->head == RAGD_HEAD_POOL_LINEAR ? RAGD_CUDA_HEAD_POOL_LINEAR : 0;
    s->n_labels = s->head ? c->n_labels : 0;
    s->head_pool = c->has_cfg_pooling ? (int)c->cfg_pooling : RAGD_CUDA_POOL_MEAN;
    s->head_div = c->head == RAGD_HEAD_POOL_LINEAR ? c->head_temperature : 1.0f;
}

/* Rows of the position table (absolute-position families), as transformers numbers them: pos_offset +
 * index, or (RoBERTa) padding_idx + 1 + the count of non-pad tokens so far, pad tokens at padding_idx. */
static void abs_pos_ids(const ragd_model_config *c, const ragd_batch *b, int32_t *pos) {
    for (int i = 0; i < b->n_seqs; i++) {
        int count = 0;
        for (int t = b->seq_start[i]; t < b->seq_start[i + 1]; t++)
            pos[t] = c->pos_skip_pad ? (b->tokens[t] == c->pad_id ? c->pad_id : c->pad_id + ++count)
                                     : c->pos_offset + (t - b->seq_start[i]);
    }
}

/* Hugging Face's RoPE inverse frequencies in f32 (default and llama3 scaling). inv: [head_dim/2] */
static void rope_inv_freq(const ragd_model_config *c, float *inv) {
    int dim = c->head_dim;
    for (int i = 0; i < dim / 2; i++) inv[i] = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)dim);
    if (c->rope_type != 1) return;
    float factor = c->rope_factor, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor;
    float old = (float)c->rope_orig_max_pos;
    float lo_wl = old / lo, hi_wl = old / hi;
    for (int i = 0; i < dim / 2; i++) {
        float wl = 2.0f * (float)M_PI / inv[i];
        float f = wl > lo_wl ? inv[i] / factor : inv[i];
        if (!(wl < hi_wl) && !(wl > lo_wl)) {
            float smooth = (old / wl - lo) / (hi - lo);
            f = (1.0f - smooth) * f / factor + smooth * f;
        }
        inv[i] = f;
    }
}

static ragd_status check_supported(const ragd_model *m, ragd_err *err);

static ragd_status cuda_plan(const ragd_model *m, const ragd_engine_opts *o, ragd_engine_plan *plan, ragd_err *err) {
    ragd_status st = check_supported(m, err);
    if (st) return st;
    ragd_cuda_shape s;
    shape_of(m, o, &s);
    ragd_cuda_plan p;
    ragd_cuda_net_plan(&s, &p);
    memset(plan, 0, sizeof *plan);
    plan->weights = p.weights, plan->activations = p.activations, plan->workspace = p.workspace;
    plan->kv_cache = p.kv_cache, plan->total = p.total;
    if (o->kv_cache) {
        plan->kv_blocks = o->kv_blocks, plan->kv_block_size = o->kv_block_size;
        plan->kv_block_bytes = o->kv_blocks ? p.kv_cache / (size_t)o->kv_blocks : 0;
    }
    return RAGD_OK;
}

static ragd_status upload(cuda_state *cs, int kind, int layer, const ragd_tensor *t, ragd_err *err) {
    if (!t->data)
        return ragd_err_set(err, RAGD_EINVAL, "CUDA upload: tensor for slot %d of layer %d is missing", kind, layer);
    size_t numel = 1;
    for (int i = 0; i < t->n_dims; i++) numel *= (size_t)t->shape[i];
    const void *src = t->data;
    int dtype = (int)t->dtype;
    float *tmp = NULL; /* [numel] f32 dequantized copy (load time only) */
    if (t->dtype != RAGD_DT_F32 && t->dtype != RAGD_DT_F16 && t->dtype != RAGD_DT_BF16) {
        if (t->dtype != RAGD_DT_Q8_0 && t->dtype != RAGD_DT_Q4_0 && t->dtype != RAGD_DT_Q4_1)
            return ragd_err_set(err, RAGD_EUNSUPPORTED, "CUDA backend: tensor %s has dtype %s",
                                t->name ? t->name : "?", ragd_dtype_name(t->dtype));
        if (numel % 32)
            return ragd_err_set(err, RAGD_EINVAL, "CUDA upload: quantized tensor %s has %zu elements (not whole blocks)",
                                t->name ? t->name : "?", numel);
        tmp = malloc(numel * sizeof(float));
        if (!tmp) return ragd_err_set(err, RAGD_ENOMEM, "out of memory dequantizing %s", t->name ? t->name : "?");
        ragd_tensor_to_f32(t, 0, numel, tmp);
        src = tmp, dtype = RAGD_CUDA_F32;
    }
    int rc = ragd_cuda_net_upload(cs->net, kind, layer, src, dtype, numel, cs->msg, sizeof cs->msg);
    free(tmp);
    if (rc) return ragd_err_set(err, map_status(rc), "%s (tensor %s)", cs->msg, t->name ? t->name : "?");
    return RAGD_OK;
}

/* The net's slot for a weight role; -1 when the net has none (cuda_api.h). */
static int cuda_slot(ragd_weight_role r) {
    switch (r) {
    case RAGD_W_TOK_EMBD: return RAGD_CUDA_W_TOK_EMBD;
    case RAGD_W_OUT_NORM: return RAGD_CUDA_W_OUT_NORM;
    case RAGD_W_LM_HEAD: return RAGD_CUDA_W_LM_HEAD;
    case RAGD_W_ATTN_NORM: return RAGD_CUDA_W_ATTN_NORM;
    case RAGD_W_Q: return RAGD_CUDA_W_Q;
    case RAGD_W_K: return RAGD_CUDA_W_K;
    case RAGD_W_V: return RAGD_CUDA_W_V;
    case RAGD_W_BQ: return RAGD_CUDA_W_BQ;
    case RAGD_W_BK: return RAGD_CUDA_W_BK;
    case RAGD_W_BV: return RAGD_CUDA_W_BV;
    case RAGD_W_O: return RAGD_CUDA_W_O;
    case RAGD_W_Q_NORM: return RAGD_CUDA_W_Q_NORM;
    case RAGD_W_K_NORM: return RAGD_CUDA_W_K_NORM;
    case RAGD_W_FFN_NORM: return RAGD_CUDA_W_FFN_NORM;
    case RAGD_W_GATE: return RAGD_CUDA_W_GATE;
    case RAGD_W_UP: return RAGD_CUDA_W_UP;
    case RAGD_W_DOWN: return RAGD_CUDA_W_DOWN;
    case RAGD_W_ATTN_NORM_B: return RAGD_CUDA_W_ATTN_NORM_B;
    case RAGD_W_FFN_NORM_B: return RAGD_CUDA_W_FFN_NORM_B;
    case RAGD_W_BO: return RAGD_CUDA_W_BO;
    case RAGD_W_BUP: return RAGD_CUDA_W_BUP;
    case RAGD_W_BDOWN: return RAGD_CUDA_W_BDOWN;
    case RAGD_W_POS_EMBD: return RAGD_CUDA_W_POS_EMBD;
    case RAGD_W_TYPE_EMBD: return RAGD_CUDA_W_TYPE_EMBD;
    case RAGD_W_EMBD_NORM: return RAGD_CUDA_W_EMBD_NORM;
    case RAGD_W_EMBD_NORM_B: return RAGD_CUDA_W_EMBD_NORM_B;
    case RAGD_W_CLS_DENSE: return RAGD_CUDA_W_CLS_DENSE;
    case RAGD_W_CLS_DENSE_B: return RAGD_CUDA_W_CLS_DENSE_B;
    case RAGD_W_CLS_OUT: return RAGD_CUDA_W_CLS_OUT;
    case RAGD_W_CLS_OUT_B: return RAGD_CUDA_W_CLS_OUT_B;
    default: return -1;
    }
}

/* What the net runs (cuda_api.h): the pre-RMSNorm rotary decoder, causal or bidirectional (NVIDIA's
 * bidirectional Llama), and the post-LayerNorm absolute-position encoder (BERT, XLM-R) with GELU and
 * biases; heads: none / lm, CLS (dense + tanh + out), pooled linear. */
static ragd_status check_supported(const ragd_model *m, ragd_err *err) {
    const ragd_model_config *c = &m->cfg;
    if (c->hybrid)
        return ragd_err_set(err, RAGD_EUNSUPPORTED,
                            "model %s (%s, family %s) runs on the CPU backend only for now: the CUDA backend has no "
                            "Gated DeltaNet (linear attention) or gated-attention blocks yet (use --device cpu)",
                            m->name, ragd_arch_name(c->arch), m->family ? m->family->name : "?");
    bool decoder = c->norm == RAGD_NORM_RMS && !c->post_norm && c->pos == RAGD_POS_ROPE && !c->linear_bias &&
                   c->act == RAGD_ACT_SWIGLU;
    bool encoder = c->norm == RAGD_NORM_LAYER && c->post_norm && c->pos == RAGD_POS_ABSOLUTE && c->bidirectional &&
                   !c->qk_norm && m->out_norm.data == NULL;
    if (!decoder && !encoder)
        return ragd_err_set(err, RAGD_EUNSUPPORTED,
                            "model %s (%s, family %s): the CUDA backend has no blocks for this combination (norm %s%s, "
                            "%s positions, activation %d); it runs on the CPU backend (--device cpu)",
                            m->name, ragd_arch_name(c->arch), m->family ? m->family->name : "?",
                            c->norm == RAGD_NORM_LAYER ? "LayerNorm" : "RMSNorm", c->post_norm ? " post" : " pre",
                            c->pos == RAGD_POS_ABSOLUTE ? "absolute" : "rotary", (int)c->act);
    if (c->pos == RAGD_POS_ABSOLUTE && c->pos_skip_pad && (c->pad_id < 0 || c->pad_id >= c->n_pos_embd))
        return ragd_err_set(err, RAGD_EINVAL, "model %s: padding_idx %d is outside its %d position rows", m->name,
                            c->pad_id, c->n_pos_embd);
    return RAGD_OK;
}

/* Uploads every present weight of the model's descriptor slots to its net slot (lm_head only when the
 * engine generates with an untied head). A present weight the net has no slot for is refused. */
static ragd_status upload_weights(cuda_state *cs, const ragd_model *m, bool lm_head, ragd_err *err) {
    size_t n = ragd_model_weight_slots(m, NULL);
    ragd_weight_slot *slots = malloc((n ? n : 1) * sizeof *slots);
    if (!slots) return ragd_err_set(err, RAGD_ENOMEM, "out of memory");
    ragd_model_weight_slots(m, slots);
    ragd_status st = RAGD_OK;
    for (size_t i = 0; !st && i < n; i++) {
        const ragd_weight_slot *sl = &slots[i];
        if (!sl->t->data || (sl->role == RAGD_W_LM_HEAD && !lm_head)) continue;
        bool head_role = sl->role == RAGD_W_CLS_DENSE || sl->role == RAGD_W_CLS_DENSE_B || sl->role == RAGD_W_CLS_OUT ||
                         sl->role == RAGD_W_CLS_OUT_B;
        if (head_role && !ragd_model_has_classifier(m)) continue; /* (BertModel's unused pooler) */
        int kind = cuda_slot(sl->role);
        if (kind < 0)
            st = ragd_err_set(err, RAGD_EUNSUPPORTED, "CUDA backend: weight %s (%s) has no slot in the net",
                              ragd_weight_role_name(sl->role), sl->t->name ? sl->t->name : "?");
        else st = upload(cs, kind, sl->layer < 0 ? 0 : sl->layer, sl->t, err);
    }
    free(slots);
    return st;
}

static void cuda_destroy(void *state) {
    cuda_state *cs = state;
    if (!cs) return;
    ragd_cuda_net_free(cs->net);
    free(cs->rows);
    free(cs->logits);
    free(cs->pos_ids);
    ragd_sample_ws_free(cs->sample_ws);
    free(cs);
}

static ragd_status cuda_create(const ragd_model *m, const ragd_engine_opts *o, void **state, ragd_engine_plan *plan,
                               ragd_err *err) {
    *state = NULL;
    ragd_status sup = check_supported(m, err);
    if (sup) return sup;
    char why[256] = "";
    int n_dev = ragd_cuda_device_count(why, sizeof why);
    if (n_dev <= 0) return ragd_err_set(err, RAGD_EDEVICE, "--device cuda: no usable CUDA device (%s)", why);
    if (o->cuda_device < 0 || o->cuda_device >= n_dev)
        return ragd_err_set(err, RAGD_EINVAL, "CUDA device %d does not exist (%d present)", o->cuda_device, n_dev);
    cuda_state *cs = calloc(1, sizeof *cs);
    if (!cs) return ragd_err_set(err, RAGD_ENOMEM, "out of memory");
    cs->m = m;
    cs->max_seqs = o->max_seqs, cs->kv_cache = o->kv_cache;
    if (o->kv_cache) {
        cs->logits = malloc((size_t)o->max_seqs * (size_t)m->cfg.n_vocab * sizeof(float));
        cs->sample_ws = ragd_sample_ws_create(m->cfg.n_vocab);
        if (!cs->logits || !cs->sample_ws) {
            cuda_destroy(cs);
            return ragd_err_set(err, RAGD_ENOMEM, "out of memory for the step's logits");
        }
    }
    if (m->cfg.pos == RAGD_POS_ABSOLUTE && !(cs->pos_ids = malloc((size_t)o->max_batch_tokens * sizeof(int32_t)))) {
        cuda_destroy(cs);
        return ragd_err_set(err, RAGD_ENOMEM, "out of memory");
    }
    cs->rows = malloc((size_t)CUDA_MAX_SCORE_ROWS * (size_t)m->cfg.n_embd * sizeof(float));
    float *inv = malloc((size_t)(m->cfg.head_dim / 2 > 0 ? m->cfg.head_dim / 2 : 1) * sizeof(float));
    if (!cs->rows || !inv) {
        free(inv);
        cuda_destroy(cs);
        return ragd_err_set(err, RAGD_ENOMEM, "out of memory");
    }
    rope_inv_freq(&m->cfg, inv);
    ragd_cuda_shape s;
    shape_of(m, o, &s);
    ragd_cuda_plan p;
    int rc = ragd_cuda_net_create(&s, inv, o->mem_limit, &cs->net, &p, cs->msg, sizeof cs->msg);
    free(inv);
    if (rc) {
        ragd_status st0 = ragd_err_set(err, map_status(rc), "%s", cs->msg);
        cuda_destroy(cs);
        return st0;
    }
    memset(plan, 0, sizeof *plan);
    plan->weights = p.weights, plan->activations = p.activations, plan->workspace = p.workspace;
    plan->kv_cache = p.kv_cache, plan->total = p.total;
    if (o->kv_cache) {
        plan->kv_blocks = o->kv_blocks, plan->kv_block_size = o->kv_block_size;
        plan->kv_block_bytes = o->kv_blocks ? p.kv_cache / (size_t)o->kv_blocks : 0;
    }

    ragd_status st = upload_weights(cs, m, o->kv_cache && s.lm_head, err);
    if (!st) {
        rc = ragd_cuda_net_ready(cs->net, cs->msg, sizeof cs->msg);
        if (rc) st = ragd_err_set(err, map_status(rc), "%s", cs->msg);
    }
    if (!st) {
        RAGD_INFO("cuda: GEMM algorithms tuned per batch size in %.0f ms (each verified bit-identical to the "
                  "reference)", ragd_cuda_net_tune_ms(cs->net));
        RAGD_DEBUG("cuda: GEMM algorithms:\n%s", ragd_cuda_net_gemm_info(cs->net));
        double gms = 0;
        size_t gbytes = 0;
        int ng = ragd_cuda_net_graph_info(cs->net, &gms, &gbytes);
        if (ng) RAGD_INFO("cuda: %d decode graphs (batch buckets up to %d sequences) captured in %.0f ms, %.1f MiB", ng,
                          o->max_seqs, gms, gbytes / 1048576.0);
    }
    if (st) {
        cuda_destroy(cs);
        return st;
    }
    *state = cs;
    return RAGD_OK;
}

/* the batch's position rows (NULL for rotary families) */
static const int32_t *batch_pos_ids(cuda_state *cs, const ragd_batch *b) {
    if (!cs->pos_ids) return NULL;
    abs_pos_ids(&cs->m->cfg, b, cs->pos_ids);
    return cs->pos_ids;
}

static ragd_status cuda_pool(void *state, const ragd_batch *b, ragd_pooling pool, float *out, ragd_err *err) {
    cuda_state *cs = state;
    const int32_t *pos = batch_pos_ids(cs, b);
    int rc = ragd_cuda_net_pool(cs->net, b->n_seqs, b->tokens, pos ? b->type_ids : NULL, pos, b->seq_start, (int)pool,
                                out, cs->msg, sizeof cs->msg);
    if (rc) return ragd_err_set(err, map_status(rc), "%s", cs->msg);
    return RAGD_OK;
}

static ragd_status cuda_classify(void *state, const ragd_batch *b, float *out, ragd_err *err) {
    cuda_state *cs = state;
    if (!ragd_model_has_classifier(cs->m))
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s has no classification head", cs->m->name);
    const int32_t *pos = batch_pos_ids(cs, b);
    int rc = ragd_cuda_net_classify(cs->net, b->n_seqs, b->tokens, pos ? b->type_ids : NULL, pos, b->seq_start, out,
                                    cs->msg, sizeof cs->msg);
    if (rc) return ragd_err_set(err, map_status(rc), "%s", cs->msg);
    return RAGD_OK;
}

static ragd_status cuda_score(void *state, const ragd_batch *b, const int32_t *rows, int n_rows, float *out,
                              ragd_err *err) {
    cuda_state *cs = state;
    const ragd_model *m = cs->m;
    const ragd_tensor *head = m->lm_head.data ? &m->lm_head : (m->cfg.tie_embed ? &m->tok_embd : NULL);
    if (!head) return ragd_err_set(err, RAGD_EUNSUPPORTED, "the model has no lm_head: it cannot score");
    if (n_rows <= 0 || n_rows > CUDA_MAX_SCORE_ROWS)
        return ragd_err_set(err, RAGD_ERANGE, "%d score rows requested, the CUDA engine allows 1..%d", n_rows,
                            CUDA_MAX_SCORE_ROWS);
    const size_t E = (size_t)m->cfg.n_embd;
    for (int r = 0; r < n_rows; r++) {
        if (rows[r] < 0 || rows[r] >= head->shape[0])
            return ragd_err_set(err, RAGD_ERANGE, "score row %d is outside the vocabulary (0..%lld)", rows[r],
                                (long long)head->shape[0] - 1);
        float *dst = cs->rows + (size_t)r * E;
        size_t off = (size_t)rows[r] * E;
        bool quant = head->dtype != RAGD_DT_F32 && head->dtype != RAGD_DT_F16 && head->dtype != RAGD_DT_BF16;
        if (quant && E % 32)
            return ragd_err_set(err, RAGD_EUNSUPPORTED, "CUDA scoring: quantized lm_head rows of %zu elements", E);
        ragd_tensor_to_f32(head, off, E, dst); /* any dtype (quantized rows are whole 32-blocks) */
    }
    int rc = ragd_cuda_net_score(cs->net, b->n_seqs, b->tokens, b->seq_start, cs->rows, n_rows, out, cs->msg,
                                 sizeof cs->msg);
    if (rc) return ragd_err_set(err, map_status(rc), "%s", cs->msg);
    return RAGD_OK;
}

/* The batch was validated by engine.c; the net checks the block tables again. Sampling runs on the
 * device; a row the device sampler declines (RAGD_CUDA_SAMPLE_ON_HOST) comes back with its logits and is
 * sampled here by the same function's C implementation. */
static ragd_status cuda_step(void *state, const ragd_batch *b, const ragd_kv_view *kv, const ragd_sample_params *sp,
                             const ragd_step_proc *proc, ragd_sample_out *out, float *logits, ragd_err *err) {
    cuda_state *cs = state;
    if (!cs->kv_cache)
        return ragd_err_set(err, RAGD_EINVAL, "this engine was created without a KV cache (kv_cache = false)");
    int V = cs->m->cfg.n_vocab;
    int rc = ragd_cuda_net_step(cs->net, b->n_seqs, b->tokens, b->seq_start, kv->pos0, kv->blk_start, kv->blocks, sp,
                                proc ? proc->masks : NULL, proc ? proc->n_masks : 0, proc ? proc->edits : NULL,
                                proc ? proc->n_edits : 0, out, cs->logits, logits != NULL, cs->msg, sizeof cs->msg);
    if (rc) return ragd_err_set(err, map_status(rc), "%s", cs->msg);
    for (int i = 0; sp && i < b->n_seqs; i++)
        if (sp[i].active && out[i].token == RAGD_CUDA_SAMPLE_ON_HOST)
            ragd_sample_row(cs->logits + (size_t)i * V, V, &sp[i], cs->sample_ws, &out[i]);
    if (logits) memcpy(logits, cs->logits, sizeof(float) * (size_t)b->n_seqs * (size_t)V);
    return RAGD_OK;
}

const ragd_backend_ops ragd_backend_cuda = {
    .name = "cuda",
    .plan = cuda_plan,
    .create = cuda_create,
    .destroy = cuda_destroy,
    .pool = cuda_pool,
    .score = cuda_score,
    .classify = cuda_classify,
    .step = cuda_step,
};

ragd_cuda_net *ragd_backend_cuda_net(void *state) { return state ? ((cuda_state *)state)->net : NULL; }
