/* cpu_forward.c — the CPU backend's forward pass as a list of blocks, in fp32, following transformers:
 *
 *   embedding:  x = embed[ids]                                     (rotary families: positions in attention)
 *               x = LN(embed[ids] + type[tt] + pos[p])             (BERT / RoBERTa: absolute positions)
 *   per layer, two residual blocks, pre-norm  x += f(norm(x))      (decoders, RMSNorm)
 *                                   or post-norm x = norm(x + f(x)) (BERT, LayerNorm + bias):
 *     attention: q,k,v = h·W^T (+b); q,k = rms_per_head (Qwen3); rope(q,k) (rotary);
 *                o_proj(softmax(q·k^T/sqrt(hd) [+ causal mask]) · v) (+b)  (GQA: head h reads kv head h/(nH/nKV))
 *     MLP:       down(silu(gate(h)) * up(h))   or   down(gelu(up(h) + b)) + b
 *
 *   hybrid (Qwen3.5): per layer the token mixer is gated attention (q_proj → [query | gate] per head,
 *     partial RoPE, o_proj(attn · sigmoid(gate))) or a Gated DeltaNet (cpu_deltanet.c); norms use 1 + w
 *     (added to the weights at load)
 *
 * Batch invariance: every op is row-wise or a per-(sequence, head) attention whose keys are reduced in
 * a fixed order, and the GEMM reduces each output in one fixed chain (cpu_internal.h) — so a sequence's
 * bits never depend on the rest of the batch. The decoder path is the same sequence of float operations
 * as before the block split (the golden tests hold it bit for bit).
 */
#include <math.h>
#include <stdlib.h>

#include "engine/cpu/cpu_internal.h"

size_t ragd_cpu_kv_block_floats(const ragd_model_config *c, const ragd_engine_opts *o) {
    return (size_t)o->kv_block_size * (size_t)(c->n_head_kv * c->head_dim);
}

static bool is_quant(ragd_dtype t) { return t == RAGD_DT_Q8_0 || t == RAGD_DT_Q4_0 || t == RAGD_DT_Q4_1; }

void ragd_cpu_embd_row(const ragd_cpu *s, int id, float *dst) {
    size_t E = (size_t)s->c.n_embd;
    if (is_quant(s->tok_dt)) ragd_tensor_to_f32(&s->m->tok_embd, (size_t)id * E, E, dst);
    else ragd_cpu_load_row(s->tok_embd, s->tok_dt, (size_t)id * E, (int)E, dst);
}

void ragd_cpu_blocks_build(ragd_cpu *s) {
    const ragd_model_config *c = &s->c;
    bool ln = c->norm == RAGD_NORM_LAYER;
    s->n_blocks = 2 * c->n_layer;
    s->blocks = ragd_xcalloc((size_t)s->n_blocks, sizeof *s->blocks);
    int n_full = 0, n_lin = 0;
    for (int l = 0; l < c->n_layer; l++) {
        ragd_weight_role attn_b = ln ? RAGD_W_ATTN_NORM_B : RAGD_W_COUNT, ffn_b = ln ? RAGD_W_FFN_NORM_B : RAGD_W_COUNT;
        if (ragd_model_layer_kind(c, l) == RAGD_LAYER_LINEAR)
            s->blocks[2 * l] = (ragd_cpu_block){RAGD_CPU_BLK_DELTANET, l, RAGD_W_ATTN_NORM, attn_b, n_lin++};
        else s->blocks[2 * l] = (ragd_cpu_block){RAGD_CPU_BLK_ATTN, l, RAGD_W_ATTN_NORM, attn_b, n_full++};
        s->blocks[2 * l + 1] = (ragd_cpu_block){RAGD_CPU_BLK_MLP, l, RAGD_W_FFN_NORM, ffn_b, 0};
    }
    RAGD_ASSERT(n_full == s->n_kv_layers && n_lin == s->n_lin_layers);
}

/* ---- attention over (sequence, head) pairs ---- */

typedef struct {
    ragd_cpu *s;
    const ragd_batch *b;
    const ragd_kv_view *kv; /* NULL: keys are this batch's k/v (pooling, scoring) */
    int kv_layer;           /* the layer's index in the KV pool */
} attn_job;

/* Queries are taken RAGD_ATTN_BQ at a time so each key and value row is read once per block instead of once
 * per query (long prefills stream K/V from cache far less). Every output keeps its own fixed operations:
 * one ragd_cpu_dot per key, the max, expf and the sum in key order, one axpy per key in key order — the
 * blocking only interleaves independent queries, so results are unchanged bit for bit. Causal: query q of
 * a block attends to keys 0..pb+q; bidirectional: every query to all of its sequence's keys. */
static void attn_task(void *ctx, int ith, int nth) {
    attn_job *j = ctx;
    ragd_cpu *s = j->s;
    const ragd_model_config *c = &s->c;
    int hd = c->head_dim, group = c->n_head / c->n_head_kv;
    int n_pairs = j->b->n_seqs * c->n_head;
    int p0 = (int)((int64_t)n_pairs * ith / nth), p1 = (int)((int64_t)n_pairs * (ith + 1) / nth);
    float *scb = s->scores + (size_t)ith * RAGD_ATTN_BQ * s->o.max_ctx; /* [BQ][max_ctx] */
    float scale = (float)(1.0 / sqrt((double)hd));
    bool bidir = c->bidirectional;
    for (int pr = p0; pr < p1; pr++) {
        int si = pr / c->n_head, h = pr % c->n_head, kvh = h / group;
        int t0 = j->b->seq_start[si], t1 = j->b->seq_start[si + 1];
        ragd_cpu_rows K, V; /* this head's key / value rows, position kk at row kk */
        if (j->kv) {
            size_t blk = ragd_cpu_kv_block_floats(c, &s->o), layer = (size_t)j->kv_layer * (size_t)s->o.kv_blocks * blk;
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
            int pb = s->pos[tb], plast = s->pos[tb + nq - 1]; /* causal: query q attends to keys 0..pb + q */
            if (bidir) pb = plast = t1 - t0 - 1;               /* every query: keys 0..n-1 */
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
                int last = bidir ? plast : pb + q;
                for (int kk = 0; kk <= last; kk++) {
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

/* ---- blocks: each reads `in` [T, n_embd] and leaves its output in s->xn [T, n_embd] ---- */

/* Gated q_proj (Qwen3.5): per head [query | gate] into s->q and s->qgate. */
static void gated_q(ragd_cpu *s, ragd_cpu_layer *L, const float *in, int T) {
    int hd = s->c.head_dim, nh = s->c.n_head;
    ragd_cpu_gemm(&s->pool, RAGD_CPU_LMAT(L, Q), in, T, NULL, s->qg, s->gemm_ws);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < nh; h++) {
            const float *src = s->qg + (size_t)t * 2 * s->q_dim + (size_t)h * 2 * hd; /* [2·hd] */
            memcpy(s->q + (size_t)t * s->q_dim + (size_t)h * hd, src, sizeof(float) * (size_t)hd);
            memcpy(s->qgate + (size_t)t * s->q_dim + (size_t)h * hd, src + hd, sizeof(float) * (size_t)hd);
        }
}

static void attn_block(ragd_cpu *s, const ragd_batch *b, const ragd_kv_view *kv, const ragd_cpu_block *blk,
                       const float *in, int T) {
    const ragd_model_config *c = &s->c;
    int l = blk->layer;
    ragd_cpu_layer *L = &s->layers[l];
    int hd = c->head_dim, half = s->rope_dim / 2;
    if (c->attn_out_gate) gated_q(s, L, in, T);
    else ragd_cpu_gemm(&s->pool, RAGD_CPU_LMAT(L, Q), in, T, RAGD_CPU_LVEC(L, BQ), s->q, s->gemm_ws);
    ragd_cpu_gemm(&s->pool, RAGD_CPU_LMAT(L, K), in, T, RAGD_CPU_LVEC(L, BK), s->k, s->gemm_ws);
    ragd_cpu_gemm(&s->pool, RAGD_CPU_LMAT(L, V), in, T, RAGD_CPU_LVEC(L, BV), s->v, s->gemm_ws);
    if (RAGD_CPU_LVEC(L, Q_NORM)) {
        ragd_cpu_rmsnorm(s->q, RAGD_CPU_LVEC(L, Q_NORM), c->rms_eps, T * c->n_head, hd, s->q);
        ragd_cpu_rmsnorm(s->k, RAGD_CPU_LVEC(L, K_NORM), c->rms_eps, T * c->n_head_kv, hd, s->k);
    }
    if (c->pos == RAGD_POS_ROPE)
        for (int t = 0; t < T; t++) {
            const float *cr = s->rope_cos + (size_t)s->pos[t] * half, *sr = s->rope_sin + (size_t)s->pos[t] * half;
            ragd_cpu_rope_part(s->q + (size_t)t * s->q_dim, c->n_head, hd, s->rope_dim, cr, sr);
            ragd_cpu_rope_part(s->k + (size_t)t * s->kv_dim, c->n_head_kv, hd, s->rope_dim, cr, sr);
        }
    if (kv) { /* the new positions' K/V into their blocks (never a shared block: those are full and < pos0) */
        size_t bf = ragd_cpu_kv_block_floats(c, &s->o), layer = (size_t)blk->slot * (size_t)s->o.kv_blocks * bf;
        int bs = kv->block_size;
        for (int t = 0; t < T; t++) {
            int si = s->tok_seq[t], p = s->pos[t];
            size_t off = layer + (size_t)kv->blocks[kv->blk_start[si] + p / bs] * bf + (size_t)(p % bs) * s->kv_dim;
            memcpy(s->kcache + off, s->k + (size_t)t * s->kv_dim, sizeof(float) * (size_t)s->kv_dim);
            memcpy(s->vcache + off, s->v + (size_t)t * s->kv_dim, sizeof(float) * (size_t)s->kv_dim);
        }
    }
    attn_job aj = {s, b, kv, blk->slot};
    ragd_cpu_pool_run(&s->pool, attn_task, &aj, s->o.n_threads);
    if (c->attn_out_gate) /* attn_output * torch.sigmoid(gate) */
        for (size_t i = 0; i < (size_t)T * s->q_dim; i++) s->att[i] = s->att[i] * (1.0f / (1.0f + expf(-s->qgate[i])));
    ragd_cpu_gemm(&s->pool, RAGD_CPU_LMAT(L, O), s->att, T, RAGD_CPU_LVEC(L, BO), s->xn, s->gemm_ws);
}

static void mlp_block(ragd_cpu *s, int l, const float *in, int T) {
    const ragd_model_config *c = &s->c;
    ragd_cpu_layer *L = &s->layers[l];
    size_t n = (size_t)T * c->n_ff;
    if (c->act == RAGD_ACT_SWIGLU) {
        ragd_cpu_gemm(&s->pool, RAGD_CPU_LMAT(L, GATE), in, T, NULL, s->gate, s->gemm_ws);
        ragd_cpu_gemm(&s->pool, RAGD_CPU_LMAT(L, UP), in, T, RAGD_CPU_LVEC(L, BUP), s->up, s->gemm_ws);
        ragd_cpu_swiglu(s->gate, s->up, n);
    } else {
        ragd_cpu_gemm(&s->pool, RAGD_CPU_LMAT(L, UP), in, T, RAGD_CPU_LVEC(L, BUP), s->gate, s->gemm_ws);
        ragd_cpu_gelu(s->gate, n, c->act == RAGD_ACT_GELU_TANH);
    }
    ragd_cpu_gemm(&s->pool, RAGD_CPU_LMAT(L, DOWN), s->gate, T, RAGD_CPU_LVEC(L, BDOWN), s->xn, s->gemm_ws);
}

static void norm_rows(const ragd_cpu *s, const ragd_cpu_block *blk, const float *x, int T, float *y) {
    const ragd_cpu_layer *L = &s->layers[blk->layer];
    const float *w = L->vec[blk->norm_w - RAGD_W_N_GLOBAL];
    if (blk->norm_b == RAGD_W_COUNT) ragd_cpu_rmsnorm(x, w, s->c.rms_eps, T, s->c.n_embd, y);
    else ragd_cpu_layernorm(x, w, L->vec[blk->norm_b - RAGD_W_N_GLOBAL], s->c.rms_eps, T, s->c.n_embd, y);
}

static void run_block(ragd_cpu *s, const ragd_batch *b, const ragd_kv_view *kv, const ragd_cpu_block *blk, int T) {
    size_t n = (size_t)T * s->c.n_embd;
    const float *in = s->x;
    if (!s->c.post_norm) {
        norm_rows(s, blk, s->x, T, s->xn);
        in = s->xn;
    }
    if (blk->kind == RAGD_CPU_BLK_ATTN) attn_block(s, b, kv, blk, in, T);
    else if (blk->kind == RAGD_CPU_BLK_DELTANET) ragd_cpu_deltanet_block(s, b, kv, blk, in, T);
    else mlp_block(s, blk->layer, in, T);
    for (size_t i = 0; i < n; i++) s->x[i] += s->xn[i];
    if (s->c.post_norm) norm_rows(s, blk, s->x, T, s->x);
}

/* ---- embedding ---- */

static void embed(ragd_cpu *s, const ragd_batch *b, int T) {
    const ragd_model_config *c = &s->c;
    size_t E = (size_t)c->n_embd;
    for (int t = 0; t < T; t++) ragd_cpu_embd_row(s, b->tokens[t], s->x + (size_t)t * E);
    if (c->pos != RAGD_POS_ABSOLUTE) return;
    const float *type = s->gvec[RAGD_W_TYPE_EMBD], *pos = s->gvec[RAGD_W_POS_EMBD]; /* [rows, n_embd] */
    for (int i = 0; i < b->n_seqs; i++) {
        int count = 0; /* RoBERTa: non-pad tokens so far */
        for (int t = b->seq_start[i]; t < b->seq_start[i + 1]; t++) {
            float *x = s->x + (size_t)t * E; /* [n_embd] */
            int row = c->pos_offset + (t - b->seq_start[i]);
            if (c->pos_skip_pad) row = b->tokens[t] == c->pad_id ? c->pad_id : c->pad_id + ++count;
            const float *ty = type ? type + (size_t)(b->type_ids ? b->type_ids[t] : 0) * E : NULL;
            const float *ps = pos + (size_t)row * E;
            for (size_t d = 0; d < E; d++) { /* (word + type) + position, as transformers adds them */
                float v = ty ? x[d] + ty[d] : x[d];
                x[d] = v + ps[d];
            }
        }
    }
    if (s->gvec[RAGD_W_EMBD_NORM])
        ragd_cpu_layernorm(s->x, s->gvec[RAGD_W_EMBD_NORM], s->gvec[RAGD_W_EMBD_NORM_B], c->rms_eps, T, (int)E, s->x);
}

void ragd_cpu_forward(ragd_cpu *s, const ragd_batch *b, const ragd_kv_view *kv) {
    int T = b->seq_start[b->n_seqs];
    for (int i = 0; i < b->n_seqs; i++) {
        int base = kv ? kv->pos0[i] : 0;
        for (int t = b->seq_start[i]; t < b->seq_start[i + 1]; t++) {
            s->pos[t] = base + (t - b->seq_start[i]);
            s->tok_seq[t] = i;
        }
    }
    embed(s, b, T);
    for (int i = 0; i < s->n_blocks; i++) run_block(s, b, kv, &s->blocks[i], T);
}
