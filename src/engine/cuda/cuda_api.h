/* cuda_api.h — plain C declarations of the CUDA backend's entry points (implemented in .cu files,
 * compiled into ragd_cuda). Included by the C glue (backend_cuda.c); includes no CUDA headers and no
 * ragd_core header, so ragd_cuda never depends on ragd_core symbols: only plain pointers, ints and
 * the status codes below cross the boundary.
 *
 * The network ("net") is one model's weights (bf16 on the device, converted at upload), its
 * activation arena for max_batch_tokens, the cuBLASLt workspace and pinned staging buffers, all
 * allocated by ragd_cuda_net_create. The forward functions never allocate.
 *
 * Threading: a net is owned by one thread at a time (the engine's owner). Functions are not
 * reentrant. Errors: a device failure is sticky — the net answers RAGD_CUDA_EDEVICE from then on.
 */
#ifndef RAGD_CUDA_API_H
#define RAGD_CUDA_API_H

#include <stddef.h>
#include <stdint.h>

#include "engine/sample_math.h"

/* Number of usable CUDA devices; 0 when none (no driver, no GPU). Fills why[0..why_len) with the
 * reason when 0. */
int ragd_cuda_device_count(char *why, size_t why_len);
/* The CUDA runtime's version (1000·major + 10·minor, 0 when it cannot say) and cuBLASLt's
 * (10000·major + 100·minor + patch) as the loaded libraries report them; no device needed. Returns 0 or
 * the CUDA error of the runtime query. */
int ragd_cuda_lib_versions(int *runtime, size_t *cublaslt);
/* Name, total and free memory of device `ordinal`; returns 0 on success, else a CUDA error code. */
int ragd_cuda_device_info(int ordinal, char *name, size_t name_len, size_t *total, size_t *free_bytes);

/* Status codes of the net API (the glue maps them onto ragd_status). */
enum {
    RAGD_CUDA_OK = 0,
    RAGD_CUDA_EINVAL = 1,      /* bad argument (a batch that breaks the contract) */
    RAGD_CUDA_ERANGE = 2,      /* beyond the planned limits, token id ≥ n_vocab */
    RAGD_CUDA_ENOMEM = 3,      /* the plan does not fit mem_limit / the device */
    RAGD_CUDA_EUNSUPPORTED = 4,/* shape the kernels do not implement (head_dim ∉ {64,128}) */
    RAGD_CUDA_EDEVICE = 5,     /* CUDA / cuBLASLt failure; sticky */
    RAGD_CUDA_ENONFINITE = 6,  /* NaN/Inf in an output: the request fails, the net stays usable */
};

/* Input dtypes accepted by ragd_cuda_net_upload (same numbering as ragd_dtype's first three). */
enum { RAGD_CUDA_F32 = 0, RAGD_CUDA_F16 = 1, RAGD_CUDA_BF16 = 2 };

/* Pooling modes (same numbering as ragd_pooling). */
enum { RAGD_CUDA_POOL_LAST = 0, RAGD_CUDA_POOL_MEAN = 1, RAGD_CUDA_POOL_CLS = 2, RAGD_CUDA_POOL_MAX = 3 };

/* MLP activations (same numbering as ragd_act) and classification heads. */
enum { RAGD_CUDA_ACT_SWIGLU = 0, RAGD_CUDA_ACT_GELU = 1, RAGD_CUDA_ACT_GELU_TANH = 2 };
enum { RAGD_CUDA_HEAD_NONE = 0, RAGD_CUDA_HEAD_CLS = 1, RAGD_CUDA_HEAD_POOL_LINEAR = 2 };

typedef struct ragd_cuda_shape {
    int n_vocab, n_embd, n_ff, n_layer, n_head, n_head_kv, head_dim;
    float rms_eps;
    int qk_norm;       /* Qwen3: per-head RMSNorm of q and k before RoPE */
    int qkv_bias;      /* Qwen2: bias on q/k/v projections */
    int max_batch_tokens, max_seqs, max_score_rows;
    int device;        /* CUDA ordinal */
    /* Generation (step): kv_cache plans a bf16 KV block pool of kv_blocks blocks × kv_block_size
     * positions (per layer K and V: [kv_blocks, kv_block_size, n_head_kv * head_dim]), block tables for
     * max_seqs sequences of up to max_ctx positions and the logits buffers; lm_head 1 = separate lm_head
     * weights (RAGD_CUDA_W_LM_HEAD), 0 = tied to the token embedding. */
    int kv_cache, max_ctx, lm_head, kv_blocks, kv_block_size;
    int max_logit_edits; /* generation: logit edits one step may carry (planned device buffer) */
    /* The layer blocks. All zero: the causal pre-RMSNorm rotary SwiGLU decoder with a final RMSNorm.
     * Encoders (BERT, XLM-R): layer_norm + post_norm + linear_bias + abs_pos, GELU, bidirectional, no final
     * norm; the bidirectional Llama: the decoder with bidirectional = 1. No KV cache with bidirectional. */
    int bidirectional; /* no causal mask */
    int layer_norm;    /* LayerNorm + bias (post-norm only: x = LN(x + f(x))) instead of pre-RMSNorm */
    int act;           /* RAGD_CUDA_ACT_* */
    int linear_bias;   /* o_proj, up and down biases (q/k/v biases: qkv_bias) */
    int abs_pos;       /* learned absolute positions (n_pos_embd rows) and token types (n_type_vocab rows, 0:
                          none), summed with the word embedding and LayerNorm-ed; no RoPE */
    int n_pos_embd, n_type_vocab;
    int no_final_norm; /* 1: no final RMSNorm before pooling (encoders: their rows are final after the last LN) */
    int head;          /* RAGD_CUDA_HEAD_*: CLS (first row → dense + tanh → out), POOL_LINEAR (pooled → out) */
    int n_labels, head_pool; /* outputs of the head; POOL_LINEAR's pooling (RAGD_CUDA_POOL_*) */
    float head_div;    /* POOL_LINEAR: logits are divided by it (the config's temperature); else 1 */
} ragd_cuda_shape;

/* Bytes by part; total = weights + activations + kv_cache + workspace. Host pinned staging is reported apart. */
typedef struct ragd_cuda_plan {
    size_t weights, activations, kv_cache, workspace, total, host_pinned;
} ragd_cuda_plan;

typedef struct ragd_cuda_net ragd_cuda_net;

/* Pure arithmetic: the plan for this shape. */
void ragd_cuda_net_plan(const ragd_cuda_shape *s, ragd_cuda_plan *p);

/* Checks the shape, computes the plan, refuses with the numbers per part when it exceeds mem_limit
 * (0 = the device's free memory) or the device's free memory, else allocates everything.
 * inv_freq: [head_dim/2] RoPE inverse frequencies (scaling already applied by the caller).
 * On failure *out is NULL and msg holds the reason. */
int ragd_cuda_net_create(const ragd_cuda_shape *s, const float *inv_freq, size_t mem_limit, ragd_cuda_net **out,
                         ragd_cuda_plan *plan, char *msg, size_t msg_len);
void ragd_cuda_net_free(ragd_cuda_net *net);

/* Weight slots for ragd_cuda_net_upload. Per-layer kinds take `layer`; global ones ignore it. */
enum {
    RAGD_CUDA_W_TOK_EMBD = 0, /* [n_vocab, n_embd] */
    RAGD_CUDA_W_OUT_NORM,     /* [n_embd] */
    RAGD_CUDA_W_ATTN_NORM,    /* [n_embd] */
    RAGD_CUDA_W_Q,            /* [n_head*head_dim, n_embd] */
    RAGD_CUDA_W_K,            /* [n_head_kv*head_dim, n_embd] */
    RAGD_CUDA_W_V,            /* [n_head_kv*head_dim, n_embd] */
    RAGD_CUDA_W_BQ,           /* [n_head*head_dim] */
    RAGD_CUDA_W_BK,           /* [n_head_kv*head_dim] */
    RAGD_CUDA_W_BV,           /* [n_head_kv*head_dim] */
    RAGD_CUDA_W_O,            /* [n_embd, n_head*head_dim] */
    RAGD_CUDA_W_Q_NORM,       /* [head_dim] */
    RAGD_CUDA_W_K_NORM,       /* [head_dim] */
    RAGD_CUDA_W_FFN_NORM,     /* [n_embd] */
    RAGD_CUDA_W_GATE,         /* [n_ff, n_embd] */
    RAGD_CUDA_W_UP,           /* [n_ff, n_embd] */
    RAGD_CUDA_W_DOWN,         /* [n_embd, n_ff] */
    RAGD_CUDA_W_ATTN_NORM_B,  /* [n_embd] LayerNorm biases (layer_norm) */
    RAGD_CUDA_W_FFN_NORM_B,   /* [n_embd] */
    RAGD_CUDA_W_BO,           /* [n_embd] linear_bias */
    RAGD_CUDA_W_BUP,          /* [n_ff] */
    RAGD_CUDA_W_BDOWN,        /* [n_embd] */
    RAGD_CUDA_W_COUNT,
    /* global (abs_pos, head) */
    RAGD_CUDA_W_POS_EMBD = 22, /* [n_pos_embd, n_embd] */
    RAGD_CUDA_W_TYPE_EMBD,     /* [n_type_vocab, n_embd] */
    RAGD_CUDA_W_EMBD_NORM,     /* [n_embd] LayerNorm of the embedding sum */
    RAGD_CUDA_W_EMBD_NORM_B,   /* [n_embd] */
    RAGD_CUDA_W_CLS_DENSE,     /* [n_embd, n_embd] HEAD_CLS */
    RAGD_CUDA_W_CLS_DENSE_B,   /* [n_embd] */
    RAGD_CUDA_W_CLS_OUT,       /* [n_labels, n_embd] */
    RAGD_CUDA_W_CLS_OUT_B,     /* [n_labels] (optional) */
    RAGD_CUDA_W_LM_HEAD = 31   /* [n_vocab, n_embd], global; only when shape.lm_head */
};
/* Copies one host tensor (PyTorch [out, in] layout, dtype RAGD_CUDA_F32/F16/BF16, numel elements)
 * into its slot, converting to bf16 on the device. numel must equal the slot's size. */
int ragd_cuda_net_upload(ragd_cuda_net *net, int kind, int layer, const void *host, int dtype, size_t numel,
                         char *msg, size_t msg_len);
/* Marks the upload complete (checks every slot was filled); forward calls before this fail. */
int ragd_cuda_net_ready(ragd_cuda_net *net, char *msg, size_t msg_len);

/* Pooled final hidden states (after the final norm where the model has one). tokens: [seq_start[n_seqs]];
 * seq_start: [n_seqs+1]; abs_pos models: type_ids (NULL: all 0) and pos_ids (rows of the position table;
 * NULL: 0 .. n-1 per sequence), both [seq_start[n_seqs]]; out: [n_seqs, n_embd] host, NOT L2-normalized. */
int ragd_cuda_net_pool(ragd_cuda_net *net, int n_seqs, const int32_t *tokens, const int32_t *type_ids,
                       const int32_t *pos_ids, const int32_t *seq_start, int mode, float *out, char *msg,
                       size_t msg_len);
/* Sequence classification logits of the shape's head: out [n_seqs, n_labels] host. Arguments as pool. */
int ragd_cuda_net_classify(ragd_cuda_net *net, int n_seqs, const int32_t *tokens, const int32_t *type_ids,
                           const int32_t *pos_ids, const int32_t *seq_start, float *out, char *msg, size_t msg_len);
/* Logits at each sequence's last position for n_rows vocabulary rows given as host f32 vectors
 * rows: [n_rows, n_embd] (the caller gathers them from lm_head / tok_embd). out: [n_seqs, n_rows]. */
int ragd_cuda_net_score(ragd_cuda_net *net, int n_seqs, const int32_t *tokens, const int32_t *seq_start,
                        const float *rows, int n_rows, float *out, char *msg, size_t msg_len);

/* Generation step (continuous batching). Sequence i (tokens[seq_start[i] .. seq_start[i+1])) has pos0[i]
 * positions cached; its new positions pos0[i] .. get their K/V written into the blocks of its block table
 * (position p in block blocks[blk_start[i] + p / kv_block_size], row p % kv_block_size) and its queries
 * attend causally to positions [0, pos0[i] + n_i). Then the next token of each row with sp[i].active is
 * sampled on the device into out[i] (sp NULL: none). A row the device sampler declines has token
 * RAGD_CUDA_SAMPLE_ON_HOST and its logits in logits[i] (the caller samples it); logits_all: every row's
 * logits are copied to logits ([n_seqs, n_vocab] host f32). A step whose rows are all single decode
 * tokens replays the captured CUDA graph of the smallest batch bucket that holds it (padding rows
 * compute into a scratch block); any other step runs eagerly — both read only planned buffers, so
 * switching between them can never see stale shapes or addresses. The caller (engine.c) validates the
 * batch and keeps the block tables; pos0 + n ≤ max_ctx and block ids < kv_blocks are checked again
 * here. Needs shape.kv_cache. */
enum { RAGD_CUDA_SAMPLE_ON_HOST = -2 };
/* Logit processing before the sampler (engine.h ragd_step_proc, validated by engine.c): masks
 * [n_masks ≤ max_seqs, (n_vocab + 31) / 32] and edits [n_edits ≤ max_logit_edits] are copied into
 * planned device buffers; rows name them through sp[i].mask_row / edit_off / n_edit. */
int ragd_cuda_net_step(ragd_cuda_net *net, int n_seqs, const int32_t *tokens, const int32_t *seq_start,
                       const int32_t *pos0, const int32_t *blk_start, const int32_t *blocks,
                       const ragd_sample_params *sp, const uint32_t *masks, int n_masks, const ragd_logit_edit *edits,
                       int n_edits, ragd_sample_out *out, float *logits, int logits_all, char *msg, size_t msg_len);
/* The decode graphs captured at create: how many, their capture time and the device memory they took. */
int ragd_cuda_net_graph_info(const ragd_cuda_net *net, double *capture_ms, size_t *bytes);

/* Per-phase timing with CUDA events (benchmarks): when on, each forward records events around every
 * phase and synchronizes at its end; ragd_cuda_net_profile_read adds the milliseconds per phase to
 * ms[0..RAGD_CUDA_N_PHASES) and names them. Off by default (no events on the request path). */
enum { RAGD_CUDA_N_PHASES = 11 };
int ragd_cuda_net_set_profile(ragd_cuda_net *net, int on);
void ragd_cuda_net_profile_read(ragd_cuda_net *net, double *ms, const char **names);
/* Step timing (benchmarks): when on, every step records two CUDA events around its device work (copies,
 * graph or eager forward, sampling) and adds per step: the device time between them, the time from
 * entry to launch (validation + metadata staging on the host) and the whole call. Read and reset by
 * ragd_cuda_net_step_timing_read (milliseconds summed over *n steps). Off by default. */
int ragd_cuda_net_set_step_timing(ragd_cuda_net *net, int on);
void ragd_cuda_net_step_timing_read(ragd_cuda_net *net, double *gpu_ms, double *stage_ms, double *call_ms, long *n);
/* The message of the sticky device error ("" when none). */
const char *ragd_cuda_net_error(const ragd_cuda_net *net);
/* Which cuBLASLt algorithms each projection uses (reference + tuned per-T buckets), for logs. */
const char *ragd_cuda_net_gemm_info(const ragd_cuda_net *net);
/* Startup cost of the GEMM tuning (in create), milliseconds. */
double ragd_cuda_net_tune_ms(const ragd_cuda_net *net);

/* Implemented by the C glue (backend_cuda.c, in ragd_core): the net behind a ragd_backend_cuda state,
 * for tests and benchmarks (profiling, GEMM info). */
ragd_cuda_net *ragd_backend_cuda_net(void *state);

#endif
