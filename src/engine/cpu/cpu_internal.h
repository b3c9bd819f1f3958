/* cpu_internal.h — INTERNAL to src/engine/cpu: the CPU backend's state, its thread pool, its GEMM and
 * its row operations.
 *
 * Numerics: everything is fp32. Every output element of every operation is computed by one fixed
 * sequence of float operations that depends only on the element's own inputs — never on the batch it
 * sits in, its row position, or the number of threads. That is what makes embeddings bit-identical
 * however texts are batched (engine.h's batch contract). OpenBLAS cannot give that: measured on this
 * machine (OpenBLAS 0.3.21, Zen kernel), a row's sgemm result depends on its row index mod 12 and on the
 * thread count (docs/modules/engine.md), so the GEMM here is our own (gemm.c).
 */
#ifndef RAGD_ENGINE_CPU_INTERNAL_H
#define RAGD_ENGINE_CPU_INTERNAL_H

#include <pthread.h>

#include "engine/backend.h"

/* ---------------------------------------------------------------------------------------------- */
/* thread pool (pool.c): fork-join over n_threads (the caller is thread 0) */

typedef void (*ragd_cpu_task_fn)(void *ctx, int ith, int nth);

typedef struct ragd_cpu_pool {
    int n_threads;
    pthread_t *threads;     /* [n_threads - 1] */
    pthread_mutex_t mu;
    pthread_cond_t cv_start, cv_done;
    uint64_t generation;    /* bumped per job */
    int n_running;          /* workers still busy with the current job */
    int n_active;           /* tasks of the current job (workers with ith >= n_active idle) */
    bool quit;
    ragd_cpu_task_fn fn;
    void *ctx;
} ragd_cpu_pool;

ragd_status ragd_cpu_pool_init(ragd_cpu_pool *p, int n_threads, ragd_err *err);
void ragd_cpu_pool_free(ragd_cpu_pool *p);
/* Runs fn(ctx, ith, nth) for ith = 0..nth-1 (nth ≤ n_threads) and returns when all are done. */
void ragd_cpu_pool_run(ragd_cpu_pool *p, ragd_cpu_task_fn fn, void *ctx, int nth);

/* ---------------------------------------------------------------------------------------------- */
/* GEMM (gemm.c): y[T, N] = x[T, K] · W[N, K]^T (+ bias[N]) with W packed once at create */

#define RAGD_GEMM_NR 16 /* outputs per packed panel */
#define RAGD_ATTN_BQ 8  /* queries per attention block (cpu_backend.c attn_task) */

/* Panel element storage: bf16 / f16 checkpoints keep their 16-bit values (widened to f32 inside the
 * micro-kernel — exact for both). GGUF Q8_0 / Q4_0 / Q4_1 keep their integers and scales in 32-k blocks
 * (ragd_cpu_qblock) and are dequantized block by block inside the GEMM with the same float operations as
 * ragd_tensor_to_f32 (q·d, or q·d + m: a multiply and an add, never fused) — checked at pack time against
 * ragd_tensor_to_f32 for every element (RAGD_ASSERT). Same f32 operands either way, so the GEMM result is
 * bit-identical to f32 panels; decode reads 2× (16-bit) or ~3.2× (quantized) fewer bytes. */
typedef struct ragd_cpu_mat {
    void *panels;   /* f32/bf16/f16: [ceil(N/16)][K][16] elements of dt; quantized: [ceil(N/16)][K/32]
                       ragd_cpu_qblock; zero-padded beyond N */
    ragd_dtype dt;  /* RAGD_DT_F32, BF16, F16, Q8_0 (int8 q · d: Q8_0 and Q4_0) or Q4_1 (q · d + m) */
    int n, k;       /* N outputs, K inputs */
} ragd_cpu_mat;

/* 32 inputs × 16 outputs of a quantized panel (640 bytes) */
typedef struct ragd_cpu_qblock {
    float d[16];      /* [16] per-output scale of this block (the f16 d widened) */
    float m[16];      /* [16] Q4_1 minimum (the f16 m widened); unused for the Q8_0 layout */
    int8_t q[32][16]; /* [32 inputs][16 outputs] integer values (Q4_0: nibble − 8, Q4_1: nibble) */
} ragd_cpu_qblock;

/* the dtype a vector / row-major tensor of dtype t is kept in: BF16/F16 as is, else F32 */
ragd_dtype ragd_cpu_store_dtype(ragd_dtype t);
/* the dtype a GEMM matrix of dtype t is packed in: BF16/F16 as is; Q8_0/Q4_0 → Q8_0 layout, Q4_1 → Q4_1
 * layout when AVX2 is present and the dequantization matches ragd_tensor_to_f32 (a probe); else F32 */
ragd_dtype ragd_cpu_panel_dtype(ragd_dtype t);
size_t ragd_cpu_dtype_bytes(ragd_dtype dt); /* 4 or 2 (f32 / 16-bit only) */
/* f32 value of element i of a stored array of dt (exact widening) */
float ragd_cpu_load(const void *data, ragd_dtype dt, size_t i);
/* dst[n] = f32 of stored elements [start, start + n) */
void ragd_cpu_load_row(const void *data, ragd_dtype dt, size_t start, int n, float *dst);

size_t ragd_cpu_mat_bytes(int n, int k, ragd_dtype dt);
/* Packs the [n, k] tensor t into m in storage dtype dt (ragd_cpu_store_dtype(t->dtype), or F32), using
 * storage at mem (ragd_cpu_mat_bytes(n, k, dt) bytes, 32-byte aligned). row_scratch: [k] floats. */
void ragd_cpu_mat_pack(ragd_cpu_mat *m, const ragd_tensor *t, ragd_dtype dt, void *mem, float *row_scratch);
/* f32 value of W[row, col] */
float ragd_cpu_mat_at(const ragd_cpu_mat *m, int row, int col);
/* ws: [pool->n_threads][K * 16] floats or NULL — with it, a quantized panel is dequantized once per call into
 * the thread's slot when T > 6 (instead of once per 6-token tile); the same values, the same chains. */
void ragd_cpu_gemm(ragd_cpu_pool *pool, const ragd_cpu_mat *w, const float *x, int T, const float *bias, float *y,
                   float *ws);
/* dot product with the fixed 8-lane order used by attention: lanes then a fixed tree */
float ragd_cpu_dot(const float *a, const float *b, int n);
/* y[n] += a * x[n] (one fma per element, in order) */
void ragd_cpu_axpy(float *y, float a, const float *x, int n);
bool ragd_cpu_has_avx2(void);
/* Key/value rows of one attention head: row kk at base + kk·ld (contiguous: blocks == NULL) or, for the
 * paged KV cache, in block blocks[kk >> bs_shift] at row kk & (block_size − 1) (blk_stride floats apart). */
typedef struct ragd_cpu_rows {
    const float *base;
    size_t ld, blk_stride;
    const int32_t *blocks; /* NULL: contiguous */
    int bs_shift;
} ragd_cpu_rows;
static inline const float *ragd_cpu_row(const ragd_cpu_rows *r, int kk) {
    if (!r->blocks) return r->base + (size_t)kk * r->ld;
    return r->base + (size_t)r->blocks[kk >> r->bs_shift] * r->blk_stride +
           (size_t)(kk & ((1 << r->bs_shift) - 1)) * r->ld;
}
/* Attention for a block of nq queries of one head (query q attends to keys 0..pb+q; plast = pb+nq-1):
 * scb[q][kk] = ragd_cpu_dot(qv[q], K row kk, hd) * scale, mx[q] = max over them (mx pre-set to -inf) ... */
void ragd_cpu_attn_scores(const float *const *qv, int nq, int pb, const ragd_cpu_rows *K, int plast, int hd,
                          float scale, float *scb, size_t ldsc, float *mx);
/* ... and out[q] += (scb[q][kk] / sum[q]) · V row kk for kk = 0..pb+q in order (ragd_cpu_axpy's operations) */
void ragd_cpu_attn_pv(float *const *out, int nq, int pb, const ragd_cpu_rows *V, int plast, int hd,
                      const float *scb, size_t ldsc, const float *sum);

/* ---------------------------------------------------------------------------------------------- */
/* the backend state (cpu_backend.c) */

/* The converted weights of one layer, by role (index role - RAGD_W_N_GLOBAL): 2-D weights packed for the
 * GEMM (panels NULL when absent), vectors in f32 (NULL when absent). Filled by walking the model's
 * descriptor slots (cpu_backend.c), so the backend has no list of tensors of its own. */
typedef struct ragd_cpu_layer {
    ragd_cpu_mat mat[RAGD_W_N_LAYER];
    float *vec[RAGD_W_N_LAYER];
} ragd_cpu_layer;
#define RAGD_CPU_LMAT(L, R) (&(L)->mat[RAGD_W_##R - RAGD_W_N_GLOBAL])
#define RAGD_CPU_LVEC(L, R) ((L)->vec[RAGD_W_##R - RAGD_W_N_GLOBAL])

/* The forward pass is a list of blocks (cpu_forward.c): the embedding, then per layer an attention and
 * an MLP block, each a residual sub-layer with its norm before (decoders: x += f(norm(x))) or after
 * (BERT: x = norm(x + f(x))). The block kinds come from the configuration: attention causal or
 * bidirectional, with or without biases, q/k-norm and RoPE; MLP SwiGLU or GELU (erf / tanh); norm
 * RMSNorm or LayerNorm with bias. */
/* Hybrid configurations (Qwen3.5) pick the token mixer per layer (cfg.layer_kind): the attention block
 * (gated: q_proj gives query and gate, output × sigmoid(gate); partial RoPE) or the Gated DeltaNet block
 * (cpu_deltanet.c), whose per-sequence conv and recurrent state live in the state pool next to the KV pool. */
typedef enum { RAGD_CPU_BLK_ATTN = 0, RAGD_CPU_BLK_MLP, RAGD_CPU_BLK_DELTANET } ragd_cpu_blk_kind;
typedef struct ragd_cpu_block {
    ragd_cpu_blk_kind kind;
    int layer;
    ragd_weight_role norm_w;   /* the sub-layer's norm weight (a layer role) */
    ragd_weight_role norm_b;   /* its bias, RAGD_W_COUNT for RMSNorm */
    int slot;                  /* ATTN: the layer's index in the KV pool (full-attention layers only);
                                  DELTANET: its index among the state layers; MLP: unused */
} ragd_cpu_block;

typedef struct ragd_cpu {
    const ragd_model *m;
    ragd_model_config c;
    ragd_engine_opts o;
    ragd_engine_plan plan;
    int q_dim, kv_dim;       /* n_head*head_dim, n_kv*head_dim */
    ragd_cpu_pool pool;

    void *weights_mem;       /* one block: all weights (f32, or the checkpoint's bf16/f16) */
    void *tok_embd;          /* [n_vocab, n_embd] row-major elements of tok_dt (embedding lookup); NULL when
                                tok_dt is quantized: rows are then dequantized from the model's tensor */
    ragd_dtype tok_dt;       /* F32, BF16, F16 (ragd_cpu_store_dtype) or the model's Q8_0/Q4_0/Q4_1 */
    ragd_cpu_mat lm_head;    /* [n_vocab, n_embd] packed; panels NULL when the checkpoint has none */
    float *gvec[RAGD_W_N_GLOBAL];       /* global vectors (out_norm, LayerNorm weights, biases) and row tables
                                           (pos_embd, type_embd: row-major f32) by role; NULL when absent */
    ragd_cpu_mat gmat[RAGD_W_N_GLOBAL]; /* global GEMM weights (classifier) by role */
    ragd_cpu_layer *layers;  /* [n_layer] */
    ragd_cpu_block *blocks;  /* [n_blocks] the forward pass after the embedding */
    int n_blocks;

    void *act_mem;           /* one block: activations + workspace */
    float *x;                /* [max_batch_tokens, n_embd] residual stream */
    float *xn;               /* [max_batch_tokens, n_embd] normed input of a sub-block */
    float *q;                /* [max_batch_tokens, q_dim] */
    float *k;                /* [max_batch_tokens, kv_dim] this batch's keys (pool/score attend to these) */
    float *v;                /* [max_batch_tokens, kv_dim] */
    float *att;              /* [max_batch_tokens, q_dim] attention output */
    float *gate;             /* [max_batch_tokens, n_ff] */
    float *up;               /* [max_batch_tokens, n_ff] */
    float *last;             /* [max_seqs, n_embd] final-norm rows of each sequence's last token */
    float *scores;           /* [n_threads, RAGD_ATTN_BQ, max_ctx] attention probabilities, a block of rows per thread */
    float *gemm_ws;          /* [n_threads, max_k * 16] one dequantized panel per thread (quantized weights) */
    float *rope_cos;         /* [max_ctx, head_dim/2] */
    float *rope_sin;         /* [max_ctx, head_dim/2] */
    int32_t *pos;            /* [max_batch_tokens] position of each token */
    int32_t *tok_seq;        /* [max_batch_tokens] sequence index of each token */

    /* hybrid configurations only (NULL otherwise) */
    int rope_dim;            /* rotated dims of a head (cfg.rope_dim, or head_dim) */
    int n_kv_layers;         /* full-attention layers: the KV pool's layer count (n_layer when not hybrid) */
    int n_lin_layers;        /* Gated DeltaNet layers */
    int lin_conv_dim;        /* 2·n_kh·kd + n_vh·vd: conv channels */
    float *qg;               /* [max_batch_tokens, 2·q_dim] gated q_proj output: per head [query | gate] */
    float *qgate;            /* [max_batch_tokens, q_dim] the gates */
    float *lqkv;             /* [max_batch_tokens, lin_conv_dim] in_proj_qkv (the conv input) */
    float *lconv;            /* [max_batch_tokens, lin_conv_dim] conv + SiLU output: q | k | v */
    float *lz;               /* [max_batch_tokens, n_vh·vd] in_proj_z */
    float *lb, *la;          /* [max_batch_tokens, n_vh] in_proj_b / in_proj_a → beta / g in place */
    float *lo;               /* [max_batch_tokens, n_vh·vd] recurrence output → gated norm */
    float *lstate_ws;        /* [n_threads, kd·vd] a zero-started state per thread (pool / score: no slots) */

    float *logits;           /* [max_seqs, n_vocab] last-row logits of a step (generation engines) */
    ragd_sample_ws *sample_ws; /* sampler scratch (generation engines) */

    void *kv_mem;            /* KV block pool, NULL when !o.kv_cache */
    float *kcache;           /* [n_layer, kv_blocks, block_size, kv_dim] */
    float *vcache;           /* [n_layer, kv_blocks, block_size, kv_dim] (hybrid: n_kv_layers) */
    /* The sequence state pool of a hybrid generation engine (NULL otherwise): per sequence slot and Gated
     * DeltaNet layer j, the conv state [conv − 1, lin_conv_dim] (the last conv − 1 inputs, oldest first) then
     * the recurrent state [n_vh, kd, vd]; zeroed at create and by seq_reset (engine open / close). */
    void *state_mem;
    float *seq_state;        /* [max_seqs, n_lin_layers, ragd_cpu_deltanet_state_floats] */
} ragd_cpu;

/* ---------------------------------------------------------------------------------------------- */
/* the forward pass (cpu_forward.c) */

/* Builds s->blocks from s->c (allocated here, freed by the backend's destroy). */
void ragd_cpu_blocks_build(ragd_cpu *s);
/* Runs the embedding and every block over the batch; leaves the last hidden states in s->x
 * [n_tokens, n_embd] (before any final norm). kv: the paged KV cache of a generation step, or NULL (keys
 * are the batch's own: pooling, scoring, classification). */
void ragd_cpu_forward(ragd_cpu *s, const ragd_batch *b, const ragd_kv_view *kv);
/* Gated DeltaNet block (cpu_deltanet.c): reads `in` [T, n_embd], leaves the out_proj output in s->xn. kv NULL:
 * every sequence starts from a zero state (pool / score); else sequence i continues the state of slot
 * kv->seqs[i] and leaves it updated. */
void ragd_cpu_deltanet_block(ragd_cpu *s, const ragd_batch *b, const ragd_kv_view *kv, const ragd_cpu_block *blk,
                             const float *in, int T);
/* floats of one sequence's state of one Gated DeltaNet layer (conv + recurrent) */
size_t ragd_cpu_deltanet_state_floats(const ragd_model_config *c);
/* floats of one KV block of one layer, K or V */
size_t ragd_cpu_kv_block_floats(const ragd_model_config *c, const ragd_engine_opts *o);
/* embedding row id → dst[n_embd] f32 */
void ragd_cpu_embd_row(const ragd_cpu *s, int id, float *dst);

/* ---------------------------------------------------------------------------------------------- */
/* row operations (ops.c) */

/* HF RMSNorm in fp32: y = w * (x * 1/sqrt(mean(x^2) + eps)). rows × n. */
void ragd_cpu_rmsnorm(const float *x, const float *w, float eps, int rows, int n, float *y);
/* Rope tables for positions [0, n_pos) (HF inv_freq in fp32, llama3 scaling) over rope_dim dims (cfg.rope_dim,
 * 0 = head_dim): [n_pos, rope_dim / 2]. */
void ragd_cpu_rope_tables(const ragd_model_config *c, int n_pos, float *cos_t, float *sin_t);
/* Half-split (NEOX) rotation of n_heads heads of one token, in place. x: [n_heads, head_dim] */
void ragd_cpu_rope(float *x, int n_heads, int head_dim, const float *cos_row, const float *sin_row);
/* The same on the first rot_dim dims of each head (partial rotary; rot_dim == head_dim: ragd_cpu_rope); the
 * tables hold rot_dim / 2 entries per position. */
void ragd_cpu_rope_part(float *x, int n_heads, int head_dim, int rot_dim, const float *cos_row, const float *sin_row);
/* gate[i] = silu(gate[i]) * up[i] */
void ragd_cpu_swiglu(float *gate, const float *up, size_t n);
/* torch LayerNorm in fp32 (biased variance, statistics accumulated in double): y = (x - mean) ·
 * 1/sqrt(var + eps) · w + b. rows × n; y may be x. */
void ragd_cpu_layernorm(const float *x, const float *w, const float *b, float eps, int rows, int n, float *y);
/* x[i] = gelu(x[i]): erf form (tanh_form false) or the tanh approximation (gelu_new) */
void ragd_cpu_gelu(float *x, size_t n, bool tanh_form);

#endif
