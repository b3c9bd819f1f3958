/* cpu_backend.c — the CPU backend (ragd_backend_cpu): memory plan, weight conversion and the task entry
 * points (pool, score, classify, step) around the forward pass of cpu_forward.c (a list of blocks chosen
 * by the configuration: decoders Qwen3 / Llama / Qwen2 and the bidirectional Llama, encoders BERT and
 * XLM-RoBERTa). Weights are converted by walking the model's descriptor slots (model.h): 2-D weights are
 * GEMM-packed, vectors widened to f32, by role — the backend keeps no tensor list of its own.
 *
 * Memory: create() allocates three blocks and never allocates again — weights (GEMM-packed in the stored
 * precision: f32, bf16/f16, or GGUF quantized blocks, widened / dequantized exactly inside the GEMM —
 * cpu_internal.h), the activation workspace for max_batch_tokens (+ rope tables, per-thread attention rows,
 * one widened weight panel per thread, the step's logits) and, for generation engines, the KV block pool
 * [n_layer, kv_blocks, block_size, kv_dim] × 2 (f32) whose block tables engine.c keeps — for hybrid models
 * (Qwen3.5) only the full-attention layers have KV, and a fourth block holds the Gated DeltaNet layers'
 * conv + recurrent state per sequence slot (max_seqs × plan.seq_state_bytes, zeroed at create and by
 * seq_reset when the engine opens or closes a slot). The same carve()
 * walk computes the plan (sizes only) and lays out the blocks, so the plan is exactly what gets allocated.
 *
 * Threading: GEMMs split output panels, attention splits (sequence, head) pairs, over the backend's own
 * pool (pool.c); the engine itself is single-owner (engine.h).
 */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/cpu/cpu_internal.h"

#define ALIGN 64

/* ---- layout: one walk computes sizes (base == NULL) or carves pointers ---- */

typedef struct {
    uint8_t *base;
    size_t off;
} carver;

static void *carve(carver *cv, size_t bytes) {
    cv->off = (cv->off + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    void *p = cv->base ? cv->base + cv->off : NULL;
    cv->off += bytes;
    return p;
}
#define CARVE_F(cv, n) ((float *)carve((cv), sizeof(float) * (size_t)(n)))

static bool has(const ragd_tensor *t) { return t->data != NULL; }

/* untied checkpoints and generation engines need the packed lm_head; score() of tied models reads
 * the embedding rows */
static bool need_packed_lm_head(const ragd_model *m, const ragd_engine_opts *o) {
    if (!has(&m->lm_head)) return false;
    return o->kv_cache || !m->cfg.tie_embed;
}

/* the tensor the packed lm_head is made from: the embedding when tied */
static const ragd_tensor *lm_src(const ragd_model *m) { return m->cfg.tie_embed ? &m->tok_embd : &m->lm_head; }

static bool is_quant(ragd_dtype t) { return t == RAGD_DT_Q8_0 || t == RAGD_DT_Q4_0 || t == RAGD_DT_Q4_1; }

/* the panel dtype of a 2-D weight: quantized blocks need whole 32-input blocks per row */
static ragd_dtype panel_dt(const ragd_tensor *t) {
    if (is_quant(t->dtype) && t->shape[1] % 32) return RAGD_DT_F32;
    return ragd_cpu_panel_dtype(t->dtype);
}

/* How the backend keeps a weight of a slot. */
typedef enum { KEEP_SKIP = 0, KEEP_TOK, KEEP_ROWS, KEEP_MAT, KEEP_VEC } keep_kind;

static keep_kind keep_of(const ragd_weight_slot *sl) {
    if (!sl->t->data) return KEEP_SKIP;
    switch (sl->role) {
    case RAGD_W_TOK_EMBD: return KEEP_TOK;
    case RAGD_W_LM_HEAD: return KEEP_SKIP; /* packed below when needed (tied or not) */
    case RAGD_W_POS_EMBD:
    case RAGD_W_TYPE_EMBD: return KEEP_ROWS; /* looked up by row */
    default: return sl->matrix ? KEEP_MAT : KEEP_VEC;
    }
}

/* Where the slot's converted weight lives; a dummy during the planning walk (s->layers == NULL). */
static ragd_cpu_mat *mat_of(ragd_cpu *s, const ragd_weight_slot *sl, ragd_cpu_mat *dummy) {
    if (sl->layer < 0) return &s->gmat[sl->role];
    return s->layers ? &s->layers[sl->layer].mat[sl->role - RAGD_W_N_GLOBAL] : dummy;
}
static float **vec_of(ragd_cpu *s, const ragd_weight_slot *sl, float **dummy) {
    if (sl->layer < 0) return &s->gvec[sl->role];
    return s->layers ? &s->layers[sl->layer].vec[sl->role - RAGD_W_N_GLOBAL] : dummy;
}

static void layout_weights(ragd_cpu *s, const ragd_model *m, const ragd_engine_opts *o, carver *cv) {
    const ragd_model_config *c = &m->cfg;
    size_t n = ragd_model_weight_slots(m, NULL);
    ragd_weight_slot *slots = ragd_xmalloc((n ? n : 1) * sizeof *slots);
    ragd_model_weight_slots(m, slots);
    for (size_t i = 0; i < n; i++) {
        const ragd_weight_slot *sl = &slots[i];
        ragd_cpu_mat dm;
        float *dv;
        switch (keep_of(sl)) {
        case KEEP_SKIP: break;
        case KEEP_TOK:
            if (is_quant(m->tok_embd.dtype) && c->n_embd % 32 == 0) { /* rows dequantized from the model's tensor */
                s->tok_dt = m->tok_embd.dtype;
                s->tok_embd = NULL;
            } else {
                s->tok_dt = ragd_cpu_store_dtype(m->tok_embd.dtype);
                s->tok_embd = carve(cv, ragd_cpu_dtype_bytes(s->tok_dt) * (size_t)c->n_vocab * c->n_embd);
            }
            break;
        case KEEP_ROWS:
        case KEEP_VEC: *vec_of(s, sl, &dv) = CARVE_F(cv, ragd_tensor_numel(sl->t)); break;
        case KEEP_MAT:
            mat_of(s, sl, &dm)->panels =
                carve(cv, ragd_cpu_mat_bytes((int)sl->shape[0], (int)sl->shape[1], panel_dt(sl->t)));
            break;
        }
    }
    free(slots);
    s->lm_head.panels = need_packed_lm_head(m, o)
                            ? carve(cv, ragd_cpu_mat_bytes(c->n_vocab, c->n_embd, panel_dt(lm_src(m))))
                            : NULL;
}

static void vec_f32(const ragd_tensor *t, float *dst) { ragd_tensor_to_f32(t, 0, ragd_tensor_numel(t), dst); }

/* a (1 + w) norm weight (RAGD_WD_PLUS_ONE): 1 + w in fp32 once, as transformers' (1.0 + weight.float()) */
static void vec_plus_one(const ragd_tensor *t, float *dst) {
    vec_f32(t, dst);
    for (size_t i = 0; i < ragd_tensor_numel(t); i++) dst[i] = 1.0f + dst[i];
}

static void pack(ragd_cpu_mat *mat, const ragd_tensor *t, float *scratch) {
    ragd_cpu_mat_pack(mat, t, panel_dt(t), mat->panels, scratch);
}

/* Converts every kept weight into the storage layout_weights carved. scratch: [widest K] floats. */
static void convert_weights(ragd_cpu *s, const ragd_model *m, float *scratch) {
    size_t n = ragd_model_weight_slots(m, NULL);
    ragd_weight_slot *slots = ragd_xmalloc((n ? n : 1) * sizeof *slots);
    ragd_model_weight_slots(m, slots);
    for (size_t i = 0; i < n; i++) {
        const ragd_weight_slot *sl = &slots[i];
        switch (keep_of(sl)) {
        case KEEP_SKIP: break;
        case KEEP_TOK:
            if (is_quant(s->tok_dt)) { /* nothing to copy */
            } else if (s->tok_dt == RAGD_DT_F32) vec_f32(&m->tok_embd, s->tok_embd);
            else memcpy(s->tok_embd, m->tok_embd.data, 2 * ragd_tensor_numel(&m->tok_embd)); /* the raw 16-bit values */
            break;
        case KEEP_ROWS:
        case KEEP_VEC:
            if (sl->plus_one) vec_plus_one(sl->t, *vec_of(s, sl, NULL));
            else vec_f32(sl->t, *vec_of(s, sl, NULL));
            break;
        case KEEP_MAT: pack(mat_of(s, sl, NULL), sl->t, scratch); break;
        }
    }
    free(slots);
}

static int threads_of(const ragd_engine_opts *o) {
    if (o->n_threads > 0) return o->n_threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

/* Full-attention (KV) and Gated DeltaNet (state) layers of a configuration. */
static void count_layers(const ragd_model_config *c, int *n_full, int *n_lin) {
    *n_full = *n_lin = 0;
    for (int l = 0; l < c->n_layer; l++) ++*(ragd_model_layer_kind(c, l) == RAGD_LAYER_LINEAR ? n_lin : n_full);
}
static int lin_conv_dim(const ragd_model_config *c) { return 2 * c->lin_n_kh * c->lin_kd + c->lin_n_vh * c->lin_vd; }

/* the widest GEMM input (K) of any weight: the packing scratch and the per-thread widened panel */
static int widest_k(const ragd_model_config *c) {
    int maxk = c->n_embd > c->n_ff ? c->n_embd : c->n_ff;
    if (c->n_head * c->head_dim > maxk) maxk = c->n_head * c->head_dim;
    if (c->hybrid && c->lin_n_vh * c->lin_vd > maxk) maxk = c->lin_n_vh * c->lin_vd;
    return maxk;
}

/* the hybrid buffers (cpu_internal.h): gated q_proj and the Gated DeltaNet's */
static void layout_hybrid(ragd_cpu *s, const ragd_model_config *c, const ragd_engine_opts *o, carver *cv) {
    size_t T = (size_t)o->max_batch_tokens;
    int n_full, n_lin, qd = c->n_head * c->head_dim, lv = c->lin_n_vh * c->lin_vd;
    count_layers(c, &n_full, &n_lin);
    if (c->attn_out_gate) {
        s->qg = CARVE_F(cv, T * 2 * qd);
        s->qgate = CARVE_F(cv, T * qd);
    }
    if (!n_lin) return;
    s->lqkv = CARVE_F(cv, T * lin_conv_dim(c));
    s->lconv = CARVE_F(cv, T * lin_conv_dim(c));
    s->lz = CARVE_F(cv, T * lv);
    s->lb = CARVE_F(cv, T * c->lin_n_vh);
    s->la = CARVE_F(cv, T * c->lin_n_vh);
    s->lo = CARVE_F(cv, T * lv);
}

static void layout_acts(ragd_cpu *s, const ragd_model_config *c, const ragd_engine_opts *o, carver *cv) {
    size_t T = (size_t)o->max_batch_tokens, S = (size_t)o->max_seqs;
    int E = c->n_embd, qd = c->n_head * c->head_dim, kvd = c->n_head_kv * c->head_dim;
    s->x = CARVE_F(cv, T * E);
    s->xn = CARVE_F(cv, T * E);
    s->q = CARVE_F(cv, T * qd);
    s->k = CARVE_F(cv, T * kvd);
    s->v = CARVE_F(cv, T * kvd);
    s->att = CARVE_F(cv, T * qd);
    s->gate = CARVE_F(cv, T * c->n_ff);
    s->up = CARVE_F(cv, T * c->n_ff);
    s->last = CARVE_F(cv, S * E);
    s->pos = carve(cv, sizeof(int32_t) * T);
    s->tok_seq = carve(cv, sizeof(int32_t) * T);
    s->logits = o->kv_cache ? CARVE_F(cv, S * (size_t)c->n_vocab) : NULL;
    if (c->hybrid) layout_hybrid(s, c, o, cv);
}

static void layout_workspace(ragd_cpu *s, const ragd_model_config *c, const ragd_engine_opts *o, carver *cv) {
    size_t C = (size_t)o->max_ctx;
    s->scores = CARVE_F(cv, (size_t)threads_of(o) * RAGD_ATTN_BQ * C);
    s->gemm_ws = CARVE_F(cv, (size_t)threads_of(o) * (size_t)widest_k(c) * RAGD_GEMM_NR);
    s->rope_cos = CARVE_F(cv, C * (c->head_dim / 2));
    s->rope_sin = CARVE_F(cv, C * (c->head_dim / 2));
    if (c->hybrid) s->lstate_ws = CARVE_F(cv, (size_t)threads_of(o) * c->lin_kd * c->lin_vd);
}

/* the KV pool of the full-attention layers, then (hybrid) the sequence state pool */
static void layout_kv(ragd_cpu *s, const ragd_model_config *c, const ragd_engine_opts *o, carver *cv) {
    int n_full, n_lin;
    count_layers(c, &n_full, &n_lin);
    size_t n = (size_t)n_full * (size_t)o->kv_blocks * ragd_cpu_kv_block_floats(c, o);
    s->kcache = CARVE_F(cv, n);
    s->vcache = CARVE_F(cv, n);
}
static size_t state_bytes_per_seq(const ragd_model_config *c) {
    int n_full, n_lin;
    count_layers(c, &n_full, &n_lin);
    return n_lin ? sizeof(float) * (size_t)n_lin * ragd_cpu_deltanet_state_floats(c) : 0;
}

static ragd_status check_opts(const ragd_model *m, const ragd_engine_opts *o, ragd_err *err) {
    const ragd_model_config *c = &m->cfg;
    if (o->max_batch_tokens < 1 || o->max_seqs < 1 || o->max_ctx < 1)
        return ragd_err_set(err, RAGD_ERANGE,
                            "engine limits must be ≥ 1: max_batch_tokens %d, max_seqs %d, max_ctx %d",
                            o->max_batch_tokens, o->max_seqs, o->max_ctx);
    if (c->max_pos > 0 && o->max_ctx > c->max_pos)
        return ragd_err_set(err, RAGD_ERANGE, "max_ctx %d exceeds the model's max_position_embeddings %d",
                            o->max_ctx, c->max_pos);
    if (o->n_threads < 0 || o->n_threads > 1024)
        return ragd_err_set(err, RAGD_ERANGE, "n_threads %d outside [0, 1024]", o->n_threads);
    if (c->head_dim < 1 || c->head_dim > 1024 || (c->pos == RAGD_POS_ROPE && c->head_dim % 2))
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "head_dim %d: the CPU backend needs a head_dim ≤ 1024 (even with "
                            "RoPE)", c->head_dim);
    if (o->kv_cache && ragd_model_is_encoder(m))
        return ragd_err_set(err, RAGD_EUNSUPPORTED,
                            "model %s has bidirectional attention (an encoder): it cannot generate (no KV cache)",
                            m->name);
    if (c->n_head_kv < 1 || c->n_head % c->n_head_kv)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "n_head %d is not a multiple of n_head_kv %d", c->n_head,
                            c->n_head_kv);
    if (c->hybrid && (c->lin_vd < 1 || c->lin_vd > 1024 || c->lin_kd < 1 || c->lin_conv < 1 || c->lin_n_kh < 1 ||
                      c->lin_n_vh % c->lin_n_kh || c->rope_dim < 2 || c->rope_dim > c->head_dim || c->rope_dim % 2))
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s: the CPU backend's Gated DeltaNet needs value heads of ≤ "
                            "1024 dims, n_vh a multiple of n_kh and an even rotary dim ≤ head_dim", m->name);
    return RAGD_OK;
}

static ragd_status cpu_plan(const ragd_model *m, const ragd_engine_opts *o, ragd_engine_plan *plan, ragd_err *err) {
    ragd_status st = check_opts(m, o, err);
    if (st) return st;
    ragd_cpu s = {0};
    carver w = {0}, a = {0}, ws = {0}, kv = {0};
    layout_weights(&s, m, o, &w);
    layout_acts(&s, &m->cfg, o, &a);
    layout_workspace(&s, &m->cfg, o, &ws);
    if (o->kv_cache) layout_kv(&s, &m->cfg, o, &kv);
    plan->weights = w.off;
    plan->activations = a.off;
    plan->workspace = ws.off;
    plan->kv_cache = kv.off;
    if (o->kv_cache) {
        int n_full, n_lin;
        count_layers(&m->cfg, &n_full, &n_lin);
        plan->kv_block_bytes = 2 * sizeof(float) * (size_t)n_full * ragd_cpu_kv_block_floats(&m->cfg, o);
        plan->seq_state_bytes = state_bytes_per_seq(&m->cfg);
        plan->seq_state = plan->seq_state_bytes * (size_t)o->max_seqs;
        plan->kv_blocks = o->kv_blocks;
        plan->kv_block_size = o->kv_block_size;
    }
    plan->total = plan->weights + plan->activations + plan->workspace + plan->kv_cache + plan->seq_state;
    if (o->mem_limit && plan->total > o->mem_limit)
        return ragd_err_set(err, RAGD_ENOMEM,
                            "memory plan %.1f MiB (weights %.1f + activations %.1f + KV cache %.1f + sequence state "
                            "%.1f + workspace %.1f) exceeds the limit %.1f MiB",
                            plan->total / 1048576.0, plan->weights / 1048576.0, plan->activations / 1048576.0,
                            plan->kv_cache / 1048576.0, plan->seq_state / 1048576.0, plan->workspace / 1048576.0,
                            o->mem_limit / 1048576.0);
    return RAGD_OK;
}

static void cpu_destroy(void *state) {
    ragd_cpu *s = state;
    if (!s) return;
    ragd_cpu_pool_free(&s->pool);
    free(s->weights_mem);
    free(s->act_mem);
    free(s->kv_mem);
    free(s->state_mem);
    free(s->layers);
    free(s->blocks);
    ragd_sample_ws_free(s->sample_ws);
    free(s);
}

static void *alloc_block(size_t bytes) {
    if (bytes == 0) bytes = ALIGN;
    bytes = (bytes + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    return aligned_alloc(ALIGN, bytes);
}


static ragd_status cpu_create(const ragd_model *m, const ragd_engine_opts *o, void **state, ragd_engine_plan *plan,
                              ragd_err *err) {
    ragd_status st = cpu_plan(m, o, plan, err);
    if (st) return st;
    const ragd_model_config *c = &m->cfg;
    ragd_cpu *s = ragd_xcalloc(1, sizeof *s);
    s->m = m;
    s->c = *c;
    s->o = *o;
    s->o.n_threads = threads_of(o);
    s->plan = *plan;
    s->q_dim = c->n_head * c->head_dim;
    s->kv_dim = c->n_head_kv * c->head_dim;
    s->rope_dim = c->rope_dim ? c->rope_dim : c->head_dim;
    count_layers(c, &s->n_kv_layers, &s->n_lin_layers);
    s->lin_conv_dim = c->hybrid ? lin_conv_dim(c) : 0;
    s->layers = ragd_xcalloc((size_t)c->n_layer, sizeof *s->layers);
    st = ragd_cpu_pool_init(&s->pool, s->o.n_threads, err);
    if (st) {
        free(s->layers);
        free(s);
        return st;
    }

    carver w = {0}, a = {0}, ws = {0}, kv = {0};
    layout_weights(s, m, o, &w);
    layout_acts(s, c, o, &a);
    layout_workspace(s, c, o, &ws);
    if (o->kv_cache) layout_kv(s, c, o, &kv);
    s->weights_mem = alloc_block(w.off);
    s->act_mem = alloc_block(a.off + ws.off + ALIGN);
    s->kv_mem = o->kv_cache ? alloc_block(kv.off) : NULL;
    s->state_mem = plan->seq_state ? calloc(1, plan->seq_state) : NULL; /* zero: every slot starts empty */
    s->seq_state = s->state_mem;
    s->sample_ws = o->kv_cache ? ragd_sample_ws_create(c->n_vocab) : NULL;
    if (!s->weights_mem || !s->act_mem || (o->kv_cache && (!s->kv_mem || !s->sample_ws)) ||
        (plan->seq_state && !s->state_mem)) {
        cpu_destroy(s);
        return ragd_err_set(err, RAGD_ENOMEM, "cpu backend: cannot allocate the memory plan (%.1f MiB)",
                            plan->total / 1048576.0);
    }
    w.base = s->weights_mem;
    w.off = 0;
    layout_weights(s, m, o, &w);
    a.base = s->act_mem;
    a.off = 0;
    layout_acts(s, c, o, &a);
    layout_workspace(s, c, o, &a); /* workspace follows the activations in the same block */
    if (o->kv_cache) {
        kv.base = s->kv_mem;
        kv.off = 0;
        layout_kv(s, c, o, &kv);
        memset(s->kv_mem, 0, kv.off);
    }

    /* convert the weights once (row scratch: the widest K) */
    float *scratch = malloc(sizeof(float) * (size_t)widest_k(c));
    if (!scratch) {
        cpu_destroy(s);
        return ragd_err_set(err, RAGD_ENOMEM, "cpu backend: out of memory converting weights");
    }
    convert_weights(s, m, scratch);
    if (s->lm_head.panels) pack(&s->lm_head, lm_src(m), scratch); /* tied: the embedding's values */
    s->lm_head.n = c->n_vocab;
    s->lm_head.k = c->n_embd;
    free(scratch);
    if (c->pos == RAGD_POS_ROPE) ragd_cpu_rope_tables(c, o->max_ctx, s->rope_cos, s->rope_sin);
    ragd_cpu_blocks_build(s);

    *state = s;
    return RAGD_OK;
}

/* final norm of each sequence's last token into s->last [n_seqs, n_embd] */
static void norm_last(ragd_cpu *s, const ragd_batch *b) {
    int E = s->c.n_embd;
    for (int i = 0; i < b->n_seqs; i++)
        ragd_cpu_rmsnorm(s->x + (size_t)(b->seq_start[i + 1] - 1) * E, s->gvec[RAGD_W_OUT_NORM], s->c.rms_eps, 1, E,
                         s->last + (size_t)i * E);
}

/* The rows pooling reads: the final norm's output when the family has one (decoders), else the last
 * hidden states themselves (BERT: the norm is inside the last layer). In place: x is not needed after. */
static void final_rows(ragd_cpu *s, int t0, int n) {
    const float *w = s->gvec[RAGD_W_OUT_NORM];
    int E = s->c.n_embd;
    if (w) ragd_cpu_rmsnorm(s->x + (size_t)t0 * E, w, s->c.rms_eps, n, E, s->x + (size_t)t0 * E);
}

/* Pools the forward pass's rows of every sequence into out [n_seqs, n_embd]. */
static void pool_rows(ragd_cpu *s, const ragd_batch *b, ragd_pooling pool, float *out) {
    int E = s->c.n_embd;
    const float *w = s->gvec[RAGD_W_OUT_NORM];
    for (int i = 0; i < b->n_seqs; i++) {
        int t0 = b->seq_start[i], t1 = b->seq_start[i + 1];
        float *o = out + (size_t)i * E; /* [n_embd] */
        if (pool == RAGD_POOL_LAST || pool == RAGD_POOL_CLS) {
            const float *row = s->x + (size_t)(pool == RAGD_POOL_LAST ? t1 - 1 : t0) * E;
            if (w) ragd_cpu_rmsnorm(row, w, s->c.rms_eps, 1, E, o);
            else memcpy(o, row, sizeof(float) * (size_t)E);
        } else if (pool == RAGD_POOL_MEAN) { /* mean of the final rows */
            final_rows(s, t0, t1 - t0);
            for (int d = 0; d < E; d++) {
                float acc = 0.0f;
                for (int t = t0; t < t1; t++) acc += s->x[(size_t)t * E + d];
                o[d] = acc / (float)(t1 - t0);
            }
        } else { /* max over the final rows */
            final_rows(s, t0, t1 - t0);
            for (int d = 0; d < E; d++) {
                float mx = s->x[(size_t)t0 * E + d];
                for (int t = t0 + 1; t < t1; t++) mx = fmaxf(mx, s->x[(size_t)t * E + d]);
                o[d] = mx;
            }
        }
    }
}

static ragd_status cpu_pool(void *state, const ragd_batch *b, ragd_pooling pool, float *out, ragd_err *err) {
    ragd_cpu *s = state;
    ragd_cpu_forward(s, b, NULL);
    pool_rows(s, b, pool, out);
    return RAGD_OK;
}

/* Sequence classification, out: [n_seqs, n_labels].
 *   RAGD_HEAD_CLS: the first token's final hidden state → dense + tanh → out_proj (BERT: pooler then
 *   classifier; RoBERTa: classifier.dense then out_proj);
 *   RAGD_HEAD_POOL_LINEAR: score(pool(final-norm rows)) / temperature (NVIDIA's bidirectional Llama). */
static ragd_status cpu_classify(void *state, const ragd_batch *b, float *out, ragd_err *err) {
    ragd_cpu *s = state;
    if (!ragd_model_has_classifier(s->m))
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s has no classification head", s->m->name);
    ragd_cpu_forward(s, b, NULL);
    int E = s->c.n_embd, n = b->n_seqs;
    if (s->c.head == RAGD_HEAD_POOL_LINEAR) {
        pool_rows(s, b, s->c.has_cfg_pooling ? s->c.cfg_pooling : RAGD_POOL_MEAN, s->last);
        ragd_cpu_gemm(&s->pool, &s->gmat[RAGD_W_CLS_OUT], s->last, n, s->gvec[RAGD_W_CLS_OUT_B], out, s->gemm_ws);
        for (size_t k = 0; k < (size_t)n * s->c.n_labels; k++) out[k] = out[k] / s->c.head_temperature;
        return RAGD_OK;
    }
    for (int i = 0; i < n; i++)
        memcpy(s->last + (size_t)i * E, s->x + (size_t)b->seq_start[i] * E, sizeof(float) * (size_t)E);
    ragd_cpu_gemm(&s->pool, &s->gmat[RAGD_W_CLS_DENSE], s->last, n, s->gvec[RAGD_W_CLS_DENSE_B], s->xn, s->gemm_ws);
    for (size_t k = 0; k < (size_t)n * E; k++) s->xn[k] = tanhf(s->xn[k]);
    ragd_cpu_gemm(&s->pool, &s->gmat[RAGD_W_CLS_OUT], s->xn, n, s->gvec[RAGD_W_CLS_OUT_B], out, s->gemm_ws);
    return RAGD_OK;
}

/* the same fma chain as the GEMM kernel, for selected lm_head rows */
static float lm_row_dot(const ragd_cpu *s, int row, const float *x) {
    int E = s->c.n_embd;
    float acc = 0.0f;
    if (s->c.tie_embed && s->m->lm_head.data) {
        float *w = s->gemm_ws; /* [n_embd] free after the forward pass */
        ragd_cpu_embd_row(s, row, w);
        for (int k = 0; k < E; k++) acc = fmaf(x[k], w[k], acc);
    } else {
        for (int k = 0; k < E; k++) acc = fmaf(x[k], ragd_cpu_mat_at(&s->lm_head, row, k), acc);
    }
    return acc;
}

static ragd_status cpu_score(void *state, const ragd_batch *b, const int32_t *rows, int n_rows, float *out,
                             ragd_err *err) {
    ragd_cpu *s = state;
    if (!s->m->lm_head.data)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s has no lm_head: it cannot score tokens", s->m->name);
    ragd_cpu_forward(s, b, NULL);
    norm_last(s, b);
    for (int i = 0; i < b->n_seqs; i++)
        for (int r = 0; r < n_rows; r++) out[(size_t)i * n_rows + r] = lm_row_dot(s, rows[r], s->last + (size_t)i * s->c.n_embd);
    return RAGD_OK;
}

static ragd_status cpu_step(void *state, const ragd_batch *b, const ragd_kv_view *kv, const ragd_sample_params *sp,
                            const ragd_step_proc *proc, ragd_sample_out *out, float *logits, ragd_err *err) {
    ragd_cpu *s = state;
    if (!s->o.kv_cache)
        return ragd_err_set(err, RAGD_EINVAL, "this engine was created without a KV cache (kv_cache = false)");
    if (!s->lm_head.panels)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s has no lm_head: it cannot generate", s->m->name);
    ragd_cpu_forward(s, b, kv);
    norm_last(s, b);
    int V = s->c.n_vocab;
    ragd_cpu_gemm(&s->pool, &s->lm_head, s->last, b->n_seqs, NULL, s->logits, s->gemm_ws);
    for (int i = 0; sp && i < b->n_seqs; i++)
        if (sp[i].active) {
            ragd_logits_process(s->logits + (size_t)i * V, V, &sp[i], proc);
            ragd_sample_row(s->logits + (size_t)i * V, V, &sp[i], s->sample_ws, &out[i]);
        }
    if (logits) memcpy(logits, s->logits, sizeof(float) * (size_t)b->n_seqs * (size_t)V);
    return RAGD_OK;
}

/* engine open / close of a slot: a fresh sequence starts from a zero conv and recurrent state */
static void cpu_seq_reset(void *state, int seq) {
    ragd_cpu *s = state;
    if (!s->seq_state) return;
    RAGD_ASSERT(seq >= 0 && seq < s->o.max_seqs);
    memset((uint8_t *)s->state_mem + (size_t)seq * s->plan.seq_state_bytes, 0, s->plan.seq_state_bytes);
}

const ragd_backend_ops ragd_backend_cpu = {
    .name = "cpu",
    .plan = cpu_plan,
    .create = cpu_create,
    .destroy = cpu_destroy,
    .pool = cpu_pool,
    .score = cpu_score,
    .classify = cpu_classify,
    .step = cpu_step,
    .seq_reset = cpu_seq_reset,
};
