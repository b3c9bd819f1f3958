/* engine.h — the public header of ragd's engine: one forward-pass backend (CPU or CUDA) bound to one
 * loaded model, with all of its memory planned and allocated at creation, and — for generation — the
 * paged KV cache's sequences and the next-token sampler.
 *
 * Threading contract: an engine is owned by exactly one thread at a time (the scheduler thread of its
 * device, or the CLI's main thread). Its functions are not reentrant. The ragd_model it was created
 * from must outlive it and is only read.
 *
 * Memory contract: ragd_engine_create computes a plan from the limits in ragd_engine_opts (weights +
 * activation workspace for max_batch_tokens + a KV block pool of kv_blocks blocks + library
 * workspaces), refuses with RAGD_ENOMEM and the numbers when it does not fit mem_limit, and otherwise
 * allocates everything. The forward functions never allocate; a batch beyond the planned limits is
 * RAGD_ERANGE.
 *
 * Batch contract: sequences are packed with no padding: tokens[seq_start[i] .. seq_start[i+1]) is
 * sequence i. Results for a sequence never depend on the other sequences of the batch (batch
 * invariance): the CPU backend reduces every row in a fixed order, the CUDA backend pins its GEMM
 * algorithms and attention reduction order. For generation the same holds across steps: the K/V of a
 * position and the logits of a row are the same bits however the sequence's tokens were split into
 * steps, whatever else ran in those steps, and whether its prefix came from the prefix cache.
 *
 * Sequences (generation engines, kv_cache = true): slots [0, max_seqs). A sequence is opened with its
 * tokens (the prefix cache may already hold a prefix of them), grows by steps, and is closed. Its K/V
 * live in blocks of kv_block_size positions from one pool shared by all sequences; full blocks are kept
 * after close (prefix cache, LRU) until the pool needs them. Lifecycle in docs/ARCHITECTURE.md.
 */
#ifndef RAGD_ENGINE_H
#define RAGD_ENGINE_H

#include "common/common.h"
#include "engine/sample_math.h"
#include "model/model.h"

typedef enum { RAGD_DEVICE_CPU = 0, RAGD_DEVICE_CUDA } ragd_device;
const char *ragd_device_name(ragd_device d);

typedef struct ragd_engine ragd_engine;

enum { RAGD_KV_BLOCK_DEFAULT = 16 };
enum { RAGD_MAX_LOGIT_BIAS = 300 }; /* logit_bias entries of one request (OpenAI's limit) */

typedef struct ragd_engine_opts {
    ragd_device device;
    int cuda_device;        /* ordinal, CUDA only */
    int max_batch_tokens;   /* tokens in one forward call (all sequences together) */
    int max_seqs;           /* sequences in one forward call; also the number of sequence slots */
    int max_ctx;            /* longest sequence (prompt + generated); ≤ model max_pos */
    bool kv_cache;          /* false for embed/rerank engines: no KV memory is planned */
    int kv_block_size;      /* positions per KV block, a power of two (0: RAGD_KV_BLOCK_DEFAULT) */
    int kv_blocks;          /* blocks in the KV pool (0: enough for max_seqs sequences of max_ctx) */
    bool prefix_cache;      /* keep full blocks for reuse by later sequences with the same prefix (forced off for
                               hybrid models: plan.no_prefix_cache) */
    int n_threads;          /* CPU threads; 0 = all cores */
    size_t mem_limit;       /* bytes this engine may use on its device; 0 = no limit (CPU) */
    int max_logit_edits;    /* logit edits in one step (ragd_step_proc); 0: max_seqs × (max_ctx +
                               RAGD_MAX_LOGIT_BIAS): every row's distinct tokens plus its logit_bias */
} ragd_engine_opts;

/* The memory plan, in bytes by part (also reported in /diagnostics). */
typedef struct ragd_engine_plan {
    size_t weights, activations, kv_cache, workspace, total;
    size_t kv_block_bytes;  /* bytes of one KV block (all layers, K and V); 0 without a KV cache */
    int kv_blocks, kv_block_size;
    /* hybrid models (Qwen3.5) with a KV cache: the Gated DeltaNet conv + recurrent state of every sequence slot
     * (part of total), its bytes per sequence; 0 otherwise */
    size_t seq_state, seq_state_bytes;
    bool no_prefix_cache;   /* the model cannot share cached prefix blocks (hybrid: the recurrent state is not
                               per block), so the engine runs with the prefix cache off whatever opts say */
} ragd_engine_plan;

/* Fills the defaults of o (kv_block_size, kv_blocks) in place; RAGD_EINVAL for a bad block size. */
ragd_status ragd_engine_opts_resolve(ragd_engine_opts *o, ragd_err *err);
/* Computes the plan without allocating (o resolved as by ragd_engine_opts_resolve). */
ragd_status ragd_engine_plan_compute(const ragd_model *m, const ragd_engine_opts *o, ragd_engine_plan *plan,
                                     ragd_err *err);

ragd_status ragd_engine_create(const ragd_model *m, const ragd_engine_opts *o, ragd_engine **out, ragd_err *err);
void ragd_engine_free(ragd_engine *e);
const ragd_engine_plan *ragd_engine_get_plan(const ragd_engine *e);
const ragd_engine_opts *ragd_engine_get_opts(const ragd_engine *e);
const ragd_model *ragd_engine_model(const ragd_engine *e);

/* A packed batch of sequences. */
typedef struct ragd_batch {
    int n_seqs;
    const int32_t *tokens;    /* [seq_start[n_seqs]] */
    const int32_t *seq_start; /* [n_seqs + 1], seq_start[0] == 0 */
    const int32_t *type_ids;  /* [seq_start[n_seqs]] token type ids (BERT segment A = 0 / B = 1), or NULL: all 0.
                                 Only for models with a token type table (cfg.n_type_vocab > 0) */
} ragd_batch;

/* Pooling tasks (no KV cache): full prefill of each sequence from position 0, then pooling of the
 * final hidden states (after the final norm for decoders; the last layer's output for encoders).
 * out: [n_seqs, n_embd], NOT normalized. */
ragd_status ragd_engine_pool(ragd_engine *e, const ragd_batch *b, ragd_pooling pool, float *out, ragd_err *err);

/* Scoring: logits at each sequence's last position for the given vocabulary rows only.
 * rows: [n_rows]; out: [n_seqs, n_rows]. */
ragd_status ragd_engine_score(ragd_engine *e, const ragd_batch *b, const int32_t *rows, int n_rows, float *out,
                              ragd_err *err);

/* Sequence classification (cross-encoders: ...ForSequenceClassification, cfg.head == RAGD_HEAD_CLS):
 * raw logits of each sequence, out: [n_seqs, n_labels]. RAGD_EUNSUPPORTED for models without a head or
 * on backends without the path (CUDA for now). */
ragd_status ragd_engine_classify(ragd_engine *e, const ragd_batch *b, float *out, ragd_err *err);

/* ---- sequences of a generation engine -------------------------------------------------------- */

/* Opens closed slot `seq` for a sequence whose tokens start with tokens[0..n) (n ≥ 1: the prompt, or
 * the prompt and the tokens generated so far when a preempted sequence resumes). With the prefix cache,
 * *n_cached = how many leading positions are already in the cache (whole blocks, at most n − 1): the
 * caller computes from there. RAGD_EINVAL: bad slot, slot open, no KV cache. */
ragd_status ragd_engine_seq_open(ragd_engine *e, int seq, const int32_t *tokens, int n, int *n_cached,
                                 ragd_err *err);
/* Reserves blocks so the sequence can hold n_total positions (≤ max_ctx). RAGD_EBUSY when the pool has
 * too few blocks left (nothing changes: the caller preempts or waits), RAGD_ERANGE beyond max_ctx. */
ragd_status ragd_engine_seq_reserve(ragd_engine *e, int seq, int n_total, ragd_err *err);
/* Releases the sequence's blocks (full ones stay in the prefix cache); the slot is free. No-op when closed. */
void ragd_engine_seq_close(ragd_engine *e, int seq);
int ragd_engine_seq_len(const ragd_engine *e, int seq);             /* positions computed */
bool ragd_engine_seq_is_open(const ragd_engine *e, int seq);
/* Blocks reserve(seq, n_total) would take now / blocks an allocation can take (free + evictable). */
int ragd_engine_seq_blocks_needed(const ragd_engine *e, int seq, int n_total);
int ragd_engine_kv_available(const ragd_engine *e);

typedef struct ragd_engine_kv_stats {
    int n_blocks, block_size;
    int used, cached, free;                   /* blocks held by sequences / evictable with content / empty */
    int64_t lookup_tokens, hit_tokens;        /* prefix cache: tokens that could come from it, that did */
    int64_t evictions;
} ragd_engine_kv_stats;
void ragd_engine_kv_stats_get(const ragd_engine *e, ragd_engine_kv_stats *st);

/* Generation step (continuous batching): sequence i of the batch continues open sequence seqs[i] (all
 * distinct) from its current length; prefill chunks and single decode tokens may be mixed. Reserves the
 * blocks it needs first (RAGD_EBUSY, before any computation, when the pool cannot). Appends the new
 * tokens' K/V and commits them (prefix cache registration of blocks that became full).
 * sp: [n_seqs] or NULL: for rows with sp[i].active, the next token is sampled from the row's last
 *     position into out[i] (on the device for CUDA; sp[i].counter and seed make it reproducible); rows
 *     that are not active (a prefill chunk that does not end the prompt) get no output.
 * logits: [n_seqs, n_vocab] f32 or NULL: the last position's logits of every row (tests, benchmarks;
 *     costs a copy from the device). */
ragd_status ragd_engine_step(ragd_engine *e, const ragd_batch *b, const int32_t *seqs, const ragd_sample_params *sp,
                             ragd_sample_out *out, float *logits, ragd_err *err);

/* Logit processing of a step (structured output, penalties, logit_bias): row i's logits are edited by
 * edits[sp[i].edit_off ..][0 .. sp[i].n_edit) and then restricted to mask row sp[i].mask_row - 1 (when
 * > 0), on the engine's device, before sampling and before they are copied to `logits`
 * (engine/sample_math.h, ragd_sm_edit). Only rows with sp[i].active are processed. The arrays are
 * copied during the call. RAGD_EINVAL / RAGD_ERANGE naming the row for: a mask row outside
 * [1, n_masks], more than max_seqs masks or max_logit_edits edits, an edit range outside [0, n_edits),
 * an id outside the vocabulary or named twice in one row, a non-finite bias or penalty. */
typedef struct ragd_step_proc {
    const uint32_t *masks;         /* [n_masks, ragd_engine_mask_words(e)]: bit i of a row = token i allowed */
    int n_masks;
    const ragd_logit_edit *edits;  /* [n_edits] */
    int n_edits;
} ragd_step_proc;
int ragd_engine_mask_words(const ragd_engine *e); /* (n_vocab + 31) / 32 */
/* ragd_engine_step with logit processing (proc NULL: none, the same as ragd_engine_step). */
ragd_status ragd_engine_step_proc(ragd_engine *e, const ragd_batch *b, const int32_t *seqs, const ragd_sample_params *sp,
                                  const ragd_step_proc *proc, ragd_sample_out *out, float *logits, ragd_err *err);

/* Tests and benchmarks: the backend's private state (for CUDA: ragd_backend_cuda_net(state) gives the net,
 * e.g. to turn its per-phase profiling on). */
void *ragd_engine_backend_state(ragd_engine *e);


/* ---------------------------------------------------------------------------------------------- */
/* Sampling (engine/sample.c): one logits row → token, logprob, top log-probabilities. The contract and
 * the arithmetic are in engine/sample_math.h; the CUDA kernel ragd_k_sample (engine/cuda/kernels.h)
 * returns the same bits for the same row and parameters. Threading: a workspace serves one call at a
 * time; nothing else is shared. */
#include "engine/sample_math.h"

/* RAGD_ERANGE naming the field unless: n_vocab in 1..RAGD_SAMPLE_MAX_VOCAB, temperature finite >= 0,
 * top_p in (0, 1], min_p in [0, 1], top_k >= 0, n_top in 0..20, n_ban in 0..8, ban ids in [0, n_vocab). */
ragd_status ragd_sample_check(const ragd_sample_params *p, int n_vocab, ragd_err *err);
/* Scratch for rows of up to n_vocab entries (about 40 bytes each), allocated once; NULL on out of
 * memory or n_vocab outside 1..RAGD_SAMPLE_MAX_VOCAB. */
typedef struct ragd_sample_ws ragd_sample_ws;
ragd_sample_ws *ragd_sample_ws_create(int n_vocab);
void ragd_sample_ws_free(ragd_sample_ws *ws); /* NULL ok */
/* Samples one row: logits [n_vocab] (n_vocab <= the workspace's). Does nothing when !p->active;
 * otherwise writes every field of *out. Parameters outside ragd_sample_check's ranges still give a
 * defined result (the same as the kernel's). */
void ragd_sample_row(const float *logits, int n_vocab, const ragd_sample_params *p, ragd_sample_ws *ws,
                     ragd_sample_out *out);
/* The logit processing of one row in place (what ragd_engine_step_proc does before sampling; the CUDA
 * kernel ragd_k_logit_proc writes the same bits): edits, then the mask. Nothing when !p->active or the
 * row asks for none; proc may be NULL then. The ranges were validated by ragd_engine_step_proc. */
void ragd_logits_process(float *logits, int n_vocab, const ragd_sample_params *p, const ragd_step_proc *proc);
/* true when the row asks for logit processing (a mask or edits) */
bool ragd_sample_has_proc(const ragd_sample_params *p);

#endif
