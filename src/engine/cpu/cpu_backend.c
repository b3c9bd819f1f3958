/* cpu_backend.c — the CPU backend (ragd_backend_cpu): memory plan, weight conversion, and the forward pass
 * of the Qwen3 / Llama / Qwen2 decoder in fp32, following transformers (MODEL_FACTS.md §1):
 *
 *   x = embed[ids]
 *   per layer: h = rms(x)·w; q,k,v = h·W^T (+b Qwen2); q,k = rms_per_head (Qwen3); rope(q,k);
 *              x += o_proj(softmax(q·k^T/sqrt(hd) + causal) · v)   (GQA: head h reads kv head h/(nH/nKV))
 *              h = rms(x)·w; x += down(silu(gate(h)) * up(h))
 *   rms(x)·w at the end; pooling / lm_head rows / logits.
 *
 * Memory: create() allocates three blocks and never allocates again — weights (GEMM-packed in the stored
 * precision: f32, bf16/f16, or GGUF quantized blocks, widened / dequantized exactly inside the GEMM —
 * cpu_internal.h), the activation workspace for max_batch_tokens (+ rope tables, per-thread attention rows,
 * one widened weight panel per thread, the step's logits) and, for generation engines, the KV block pool
 * [n_layer, kv_blocks, block_size, kv_dim] × 2 (f32) whose block tables engine.c keeps. The same carve()
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

/* embedding row id → dst[n_embd] f32 (quantized: ragd_tensor_to_f32 of the model's block row, as before) */
static void embd_row(const ragd_cpu *s, int id, float *dst) {
    size_t E = (size_t)s->c.n_embd;
    if (is_quant(s->tok_dt)) ragd_tensor_to_f32(&s->m->tok_embd, (size_t)id * E, E, dst);
    else ragd_cpu_load_row(s->tok_embd, s->tok_dt, (size_t)id * E, (int)E, dst);
}

static void layout_weights(ragd_cpu *s, const ragd_model *m, const ragd_engine_opts *o, carver *cv) {
    const ragd_model_config *c = &m->cfg;
    int E = c->n_embd, F = c->n_ff, qd = c->n_head * c->head_dim, kvd = c->n_head_kv * c->head_dim;
    if (is_quant(m->tok_embd.dtype) && c->n_embd % 32 == 0) { /* rows are dequantized from the model's tensor when looked up */
        s->tok_dt = m->tok_embd.dtype;
        s->tok_embd = NULL;
    } else {
        s->tok_dt = ragd_cpu_store_dtype(m->tok_embd.dtype);
        s->tok_embd = carve(cv, ragd_cpu_dtype_bytes(s->tok_dt) * (size_t)c->n_vocab * E);
    }
    s->out_norm = CARVE_F(cv, E);
    for (int l = 0; l < c->n_layer; l++) {
        ragd_cpu_layer *L = s->layers ? &s->layers[l] : NULL;
        ragd_cpu_layer tmp;
        if (!L) L = &tmp;
        L->attn_norm = CARVE_F(cv, E);
        L->ffn_norm = CARVE_F(cv, E);
        const ragd_layer_weights *W = &m->layers[l];
        L->wq.panels = carve(cv, ragd_cpu_mat_bytes(qd, E, panel_dt(&W->wq)));
        L->wk.panels = carve(cv, ragd_cpu_mat_bytes(kvd, E, panel_dt(&W->wk)));
        L->wv.panels = carve(cv, ragd_cpu_mat_bytes(kvd, E, panel_dt(&W->wv)));
        L->wo.panels = carve(cv, ragd_cpu_mat_bytes(E, qd, panel_dt(&W->wo)));
        L->w_gate.panels = carve(cv, ragd_cpu_mat_bytes(F, E, panel_dt(&W->w_gate)));
        L->w_up.panels = carve(cv, ragd_cpu_mat_bytes(F, E, panel_dt(&W->w_up)));
        L->w_down.panels = carve(cv, ragd_cpu_mat_bytes(E, F, panel_dt(&W->w_down)));
        L->bq = c->qkv_bias ? CARVE_F(cv, qd) : NULL;
        L->bk = c->qkv_bias ? CARVE_F(cv, kvd) : NULL;
        L->bv = c->qkv_bias ? CARVE_F(cv, kvd) : NULL;
        L->q_norm = c->qk_norm ? CARVE_F(cv, c->head_dim) : NULL;
        L->k_norm = c->qk_norm ? CARVE_F(cv, c->head_dim) : NULL;
    }
    s->lm_head.panels = need_packed_lm_head(m, o)
                            ? carve(cv, ragd_cpu_mat_bytes(c->n_vocab, E, panel_dt(lm_src(m))))
                            : NULL;
}

static int threads_of(const ragd_engine_opts *o) {
    if (o->n_threads > 0) return o->n_threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
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
}

static void layout_workspace(ragd_cpu *s, const ragd_model_config *c, const ragd_engine_opts *o, carver *cv) {
    size_t C = (size_t)o->max_ctx;
    s->scores = CARVE_F(cv, (size_t)threads_of(o) * RAGD_ATTN_BQ * C);
    int maxk = c->n_embd > c->n_ff ? c->n_embd : c->n_ff;
    if (c->n_head * c->head_dim > maxk) maxk = c->n_head * c->head_dim;
    s->gemm_ws = CARVE_F(cv, (size_t)threads_of(o) * (size_t)maxk * RAGD_GEMM_NR);
    s->rope_cos = CARVE_F(cv, C * (c->head_dim / 2));
    s->rope_sin = CARVE_F(cv, C * (c->head_dim / 2));
}

static size_t kv_block_floats(const ragd_model_config *c, const ragd_engine_opts *o) {
    return (size_t)o->kv_block_size * (size_t)(c->n_head_kv * c->head_dim); /* one layer, K or V */
}

static void layout_kv(ragd_cpu *s, const ragd_model_config *c, const ragd_engine_opts *o, carver *cv) {
    size_t n = (size_t)c->n_layer * (size_t)o->kv_blocks * kv_block_floats(c, o);
    s->kcache = CARVE_F(cv, n);
    s->vcache = CARVE_F(cv, n);
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
    if (c->head_dim < 2 || c->head_dim > 1024 || c->head_dim % 2)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "head_dim %d: the CPU backend needs an even head_dim ≤ 1024",
                            c->head_dim);
    if (c->n_head_kv < 1 || c->n_head % c->n_head_kv)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "n_head %d is not a multiple of n_head_kv %d", c->n_head,
                            c->n_head_kv);
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
        plan->kv_block_bytes = 2 * sizeof(float) * (size_t)m->cfg.n_layer * kv_block_floats(&m->cfg, o);
        plan->kv_blocks = o->kv_blocks;
        plan->kv_block_size = o->kv_block_size;
    }
    plan->total = plan->weights + plan->activations + plan->workspace + plan->kv_cache;
    if (o->mem_limit && plan->total > o->mem_limit)
        return ragd_err_set(err, RAGD_ENOMEM,
                            "memory plan %.1f MiB (weights %.1f + activations %.1f + KV cache %.1f + workspace "
                            "%.1f) exceeds the limit %.1f MiB",
                            plan->total / 1048576.0, plan->weights / 1048576.0, plan->activations / 1048576.0,
                            plan->kv_cache / 1048576.0, plan->workspace / 1048576.0, o->mem_limit / 1048576.0);
    return RAGD_OK;
}

static void cpu_destroy(void *state) {
    ragd_cpu *s = state;
    if (!s) return;
    ragd_cpu_pool_free(&s->pool);
    free(s->weights_mem);
    free(s->act_mem);
    free(s->kv_mem);
    free(s->layers);
    ragd_sample_ws_free(s->sample_ws);
    free(s);
}

static void *alloc_block(size_t bytes) {
    if (bytes == 0) bytes = ALIGN;
    bytes = (bytes + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    return aligned_alloc(ALIGN, bytes);
}

static void vec_f32(const ragd_tensor *t, float *dst) { ragd_tensor_to_f32(t, 0, ragd_tensor_numel(t), dst); }

static void pack(ragd_cpu_mat *mat, const ragd_tensor *t, float *scratch) {
    ragd_cpu_mat_pack(mat, t, panel_dt(t), mat->panels, scratch);
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
    s->sample_ws = o->kv_cache ? ragd_sample_ws_create(c->n_vocab) : NULL;
    if (!s->weights_mem || !s->act_mem || (o->kv_cache && (!s->kv_mem || !s->sample_ws))) {
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
    int maxk = c->n_embd > c->n_ff ? c->n_embd : c->n_ff;
    if (s->q_dim > maxk) maxk = s->q_dim;
    float *scratch = malloc(sizeof(float) * (size_t)maxk);
    if (!scratch) {
        cpu_destroy(s);
        return ragd_err_set(err, RAGD_ENOMEM, "cpu backend: out of memory converting weights");
    }
    if (is_quant(s->tok_dt)) { /* nothing to copy */
    } else if (s->tok_dt == RAGD_DT_F32) vec_f32(&m->tok_embd, s->tok_embd);
    else memcpy(s->tok_embd, m->tok_embd.data, 2 * ragd_tensor_numel(&m->tok_embd)); /* the raw 16-bit values */
    vec_f32(&m->out_norm, s->out_norm);
    for (int l = 0; l < c->n_layer; l++) {
        const ragd_layer_weights *W = &m->layers[l];
        ragd_cpu_layer *L = &s->layers[l];
        vec_f32(&W->attn_norm, L->attn_norm);
        vec_f32(&W->ffn_norm, L->ffn_norm);
        pack(&L->wq, &W->wq, scratch);
        pack(&L->wk, &W->wk, scratch);
        pack(&L->wv, &W->wv, scratch);
        pack(&L->wo, &W->wo, scratch);
        pack(&L->w_gate, &W->w_gate, scratch);
        pack(&L->w_up, &W->w_up, scratch);
        pack(&L->w_down, &W->w_down, scratch);
        if (c->qkv_bias) {
            vec_f32(&W->bq, L->bq);
            vec_f32(&W->bk, L->bk);
            vec_f32(&W->bv, L->bv);
        }
        if (c->qk_norm) {
            vec_f32(&W->q_norm, L->q_norm);
            vec_f32(&W->k_norm, L->k_norm);
        }
    }
    if (s->lm_head.panels) pack(&s->lm_head, lm_src(m), scratch); /* tied: the embedding's values */
    s->lm_head.n = c->n_vocab;
    s->lm_head.k = c->n_embd;
    free(scratch);
    ragd_cpu_rope_tables(c, o->max_ctx, s->rope_cos, s->rope_sin);

    *state = s;
    return RAGD_OK;
}

/* ---- attention over (sequence, head) pairs ---- */

typedef struct {
    ragd_cpu *s;
    const ragd_batch *b;
    const ragd_kv_view *kv; /* NULL: keys are this batch's k/v (pooling, scoring) */
    int layer;
} attn_job;

/* Queries are taken RAGD_ATTN_BQ at a time so each key and value row is read once per block instead of once
 * per query (long prefills stream K/V from cache far less). Every output keeps its own fixed operations:
 * one ragd_cpu_dot per key, the max, expf and the sum in key order, one axpy per key in key order — the
 * blocking only interleaves independent queries, so results are unchanged bit for bit. */
static void attn_task(void *ctx, int ith, int nth) {
    attn_job *j = ctx;
    ragd_cpu *s = j->s;
    const ragd_model_config *c = &s->c;
    int hd = c->head_dim, group = c->n_head / c->n_head_kv;
    int n_pairs = j->b->n_seqs * c->n_head;
    int p0 = (int)((int64_t)n_pairs * ith / nth), p1 = (int)((int64_t)n_pairs * (ith + 1) / nth);
    float *scb = s->scores + (size_t)ith * RAGD_ATTN_BQ * s->o.max_ctx; /* [BQ][max_ctx] */
    float scale = (float)(1.0 / sqrt((double)hd));
    for (int pr = p0; pr < p1; pr++) {
        int si = pr / c->n_head, h = pr % c->n_head, kvh = h / group;
        int t0 = j->b->seq_start[si], t1 = j->b->seq_start[si + 1];
        ragd_cpu_rows K, V; /* this head's key / value rows, position kk at row kk */
        if (j->kv) {
            size_t blk = kv_block_floats(c, &s->o), layer = (size_t)j->layer * (size_t)s->o.kv_blocks * blk;
            int shift = 0;
            while ((1 << shift) < j->kv->block_size) shift++;
            const int32_t *blocks = j->kv->blocks + j->kv->blk_start[si];
            K = (ragd_cpu_rows){s->kcache + layer + (size_t)kvh * hd, (size_t)s->kv_dim, blk, blocks, shift};
            V = (ragd_cpu_rows){s->vcache + layer + (size_t)kvh * hd, (size_t)s->kv_dim, blk, blocks, shift};
        } else {
            K = (ragd_cpu_rows){s->k + (size_t)t0 * s->kv_dim + (size_t)kvh * hd, (size_t)s->kv_dim, 0, NULL, 0};
            V = (ragd_cpu_rows){s->v + (size_t)t0 * s->kv_dim + (size_t)kvh * hd, (size_t)s->kv_dim, 0, NULL, 0};
        }
        for (int tb = t0; tb < t1; tb += RAGD_ATTN_BQ) {
            int nq = t1 - tb < RAGD_ATTN_BQ ? t1 - tb : RAGD_ATTN_BQ;
            int pb = s->pos[tb], plast = s->pos[tb + nq - 1]; /* query q attends to keys 0..pb + q */
            float mx[RAGD_ATTN_BQ], sum[RAGD_ATTN_BQ];
            const float *qv[RAGD_ATTN_BQ];
            float *out[RAGD_ATTN_BQ];
            for (int q = 0; q < nq; q++) {
                mx[q] = -INFINITY;
                qv[q] = s->q + (size_t)(tb + q) * s->q_dim + (size_t)h * hd;      /* [hd] */
                out[q] = s->att + (size_t)(tb + q) * s->q_dim + (size_t)h * hd;   /* [hd] */
            }
            ragd_cpu_attn_scores(qv, nq, pb, &K, plast, hd, scale, scb, (size_t)s->o.max_ctx, mx);
            for (int q = 0; q < nq; q++) {
                float *sc = scb + (size_t)q * s->o.max_ctx; /* [max_ctx] */
                float sm = 0.0f;
                for (int kk = 0; kk <= pb + q; kk++) {
                    sc[kk] = expf(sc[kk] - mx[q]);
                    sm += sc[kk];
                }
                sum[q] = sm;
                memset(out[q], 0, sizeof(float) * (size_t)hd);
            }
            ragd_cpu_attn_pv(out, nq, pb, &V, plast, hd, scb, (size_t)s->o.max_ctx, sum);
        }
    }
}

/* ---- the forward pass: leaves the final residual stream in s->x ---- */

static void forward(ragd_cpu *s, const ragd_batch *b, const ragd_kv_view *kv) {
    const ragd_model_config *c = &s->c;
    int E = c->n_embd, hd = c->head_dim, half = hd / 2;
    int T = b->seq_start[b->n_seqs];
    for (int i = 0; i < b->n_seqs; i++) {
        int base = kv ? kv->pos0[i] : 0;
        for (int t = b->seq_start[i]; t < b->seq_start[i + 1]; t++) {
            s->pos[t] = base + (t - b->seq_start[i]);
            s->tok_seq[t] = i;
        }
    }
    for (int t = 0; t < T; t++)
        embd_row(s, b->tokens[t], s->x + (size_t)t * E);

    for (int l = 0; l < c->n_layer; l++) {
        ragd_cpu_layer *L = &s->layers[l];
        ragd_cpu_rmsnorm(s->x, L->attn_norm, c->rms_eps, T, E, s->xn);
        ragd_cpu_gemm(&s->pool, &L->wq, s->xn, T, L->bq, s->q, s->gemm_ws);
        ragd_cpu_gemm(&s->pool, &L->wk, s->xn, T, L->bk, s->k, s->gemm_ws);
        ragd_cpu_gemm(&s->pool, &L->wv, s->xn, T, L->bv, s->v, s->gemm_ws);
        if (c->qk_norm) {
            ragd_cpu_rmsnorm(s->q, L->q_norm, c->rms_eps, T * c->n_head, hd, s->q);
            ragd_cpu_rmsnorm(s->k, L->k_norm, c->rms_eps, T * c->n_head_kv, hd, s->k);
        }
        for (int t = 0; t < T; t++) {
            const float *cr = s->rope_cos + (size_t)s->pos[t] * half, *sr = s->rope_sin + (size_t)s->pos[t] * half;
            ragd_cpu_rope(s->q + (size_t)t * s->q_dim, c->n_head, hd, cr, sr);
            ragd_cpu_rope(s->k + (size_t)t * s->kv_dim, c->n_head_kv, hd, cr, sr);
        }
        if (kv) { /* the new positions' K/V into their blocks (never a shared block: those are full and < pos0) */
            size_t blk = kv_block_floats(c, &s->o), layer = (size_t)l * (size_t)s->o.kv_blocks * blk;
            int bs = kv->block_size;
            for (int t = 0; t < T; t++) {
                int si = s->tok_seq[t], p = s->pos[t];
                size_t off = layer + (size_t)kv->blocks[kv->blk_start[si] + p / bs] * blk + (size_t)(p % bs) * s->kv_dim;
                memcpy(s->kcache + off, s->k + (size_t)t * s->kv_dim, sizeof(float) * (size_t)s->kv_dim);
                memcpy(s->vcache + off, s->v + (size_t)t * s->kv_dim, sizeof(float) * (size_t)s->kv_dim);
            }
        }
        attn_job aj = {s, b, kv, l};
        ragd_cpu_pool_run(&s->pool, attn_task, &aj, s->o.n_threads);
        ragd_cpu_gemm(&s->pool, &L->wo, s->att, T, NULL, s->xn, s->gemm_ws);
        for (size_t i = 0; i < (size_t)T * E; i++) s->x[i] += s->xn[i];
        ragd_cpu_rmsnorm(s->x, L->ffn_norm, c->rms_eps, T, E, s->xn);
        ragd_cpu_gemm(&s->pool, &L->w_gate, s->xn, T, NULL, s->gate, s->gemm_ws);
        ragd_cpu_gemm(&s->pool, &L->w_up, s->xn, T, NULL, s->up, s->gemm_ws);
        ragd_cpu_swiglu(s->gate, s->up, (size_t)T * c->n_ff);
        ragd_cpu_gemm(&s->pool, &L->w_down, s->gate, T, NULL, s->xn, s->gemm_ws);
        for (size_t i = 0; i < (size_t)T * E; i++) s->x[i] += s->xn[i];
    }
}

/* final norm of each sequence's last token into s->last [n_seqs, n_embd] */
static void norm_last(ragd_cpu *s, const ragd_batch *b) {
    int E = s->c.n_embd;
    for (int i = 0; i < b->n_seqs; i++)
        ragd_cpu_rmsnorm(s->x + (size_t)(b->seq_start[i + 1] - 1) * E, s->out_norm, s->c.rms_eps, 1, E,
                         s->last + (size_t)i * E);
}

static ragd_status cpu_pool(void *state, const ragd_batch *b, ragd_pooling pool, float *out, ragd_err *err) {
    ragd_cpu *s = state;
    forward(s, b, NULL);
    int E = s->c.n_embd;
    for (int i = 0; i < b->n_seqs; i++) {
        int t0 = b->seq_start[i], t1 = b->seq_start[i + 1];
        float *o = out + (size_t)i * E; /* [n_embd] */
        if (pool == RAGD_POOL_LAST) {
            ragd_cpu_rmsnorm(s->x + (size_t)(t1 - 1) * E, s->out_norm, s->c.rms_eps, 1, E, o);
        } else if (pool == RAGD_POOL_CLS) {
            ragd_cpu_rmsnorm(s->x + (size_t)t0 * E, s->out_norm, s->c.rms_eps, 1, E, o);
        } else { /* mean of the normed rows: normalize in place (x is not needed any more) */
            ragd_cpu_rmsnorm(s->x + (size_t)t0 * E, s->out_norm, s->c.rms_eps, t1 - t0, E, s->x + (size_t)t0 * E);
            for (int d = 0; d < E; d++) {
                float acc = 0.0f;
                for (int t = t0; t < t1; t++) acc += s->x[(size_t)t * E + d];
                o[d] = acc / (float)(t1 - t0);
            }
        }
    }
    return RAGD_OK;
}

/* the same fma chain as the GEMM kernel, for selected lm_head rows */
static float lm_row_dot(const ragd_cpu *s, int row, const float *x) {
    int E = s->c.n_embd;
    float acc = 0.0f;
    if (s->c.tie_embed && s->m->lm_head.data) {
        float *w = s->gemm_ws; /* [n_embd] free after the forward pass */
        embd_row(s, row, w);
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
    forward(s, b, NULL);
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
    forward(s, b, kv);
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

const ragd_backend_ops ragd_backend_cpu = {
    .name = "cpu",
    .plan = cpu_plan,
    .create = cpu_create,
    .destroy = cpu_destroy,
    .pool = cpu_pool,
    .score = cpu_score,
    .step = cpu_step,
};
