/* engine.h — the public header of ragd's engine: one forward-pass backend (CPU or CUDA) bound to one
 * loaded model, with all of its memory planned and allocated at creation.
 *
 * Threading contract: an engine is owned by exactly one thread at a time (the scheduler thread of its
 * device, or the CLI's main thread). Its functions are not reentrant. The ragd_model it was created
 * from must outlive it and is only read.
 *
 * Memory contract: ragd_engine_create computes a plan from the limits in ragd_engine_opts (weights +
 * activation workspace for max_batch_tokens + KV cache for max_seqs × max_ctx + library workspaces),
 * refuses with RAGD_ENOMEM and the numbers when it does not fit mem_limit, and otherwise allocates
 * everything. The forward functions never allocate; a batch beyond the planned limits is RAGD_ERANGE.
 *
 * Batch contract: sequences are packed with no padding: tokens[seq_start[i] .. seq_start[i+1]) is
 * sequence i. Results for a sequence never depend on the other sequences of the batch (batch
 * invariance): the CPU backend reduces every row in a fixed order, the CUDA backend pins its GEMM
 * algorithms and attention reduction order.
 */
#ifndef RAGD_ENGINE_H
#define RAGD_ENGINE_H

#include "common/common.h"
#include "model/model.h"

typedef enum { RAGD_DEVICE_CPU = 0, RAGD_DEVICE_CUDA } ragd_device;
const char *ragd_device_name(ragd_device d);

typedef struct ragd_engine ragd_engine;

typedef struct ragd_engine_opts {
    ragd_device device;
    int cuda_device;        /* ordinal, CUDA only */
    int max_batch_tokens;   /* tokens in one forward call (all sequences together) */
    int max_seqs;           /* sequences in one forward call; also the number of KV slots */
    int max_ctx;            /* longest sequence (prompt + generated); ≤ model max_pos */
    bool kv_cache;          /* false for embed/rerank engines: no KV memory is planned */
    int n_threads;          /* CPU threads; 0 = all cores */
    size_t mem_limit;       /* bytes this engine may use on its device; 0 = no limit (CPU) */
} ragd_engine_opts;

/* The memory plan, in bytes by part (also reported in /diagnostics). */
typedef struct ragd_engine_plan {
    size_t weights, activations, kv_cache, workspace, total;
} ragd_engine_plan;

/* Computes the plan without allocating. */
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
} ragd_batch;

/* Pooling tasks (no KV cache): full prefill of each sequence from position 0, then pooling of the
 * final-norm hidden states. out: [n_seqs, n_embd], NOT normalized. */
ragd_status ragd_engine_pool(ragd_engine *e, const ragd_batch *b, ragd_pooling pool, float *out, ragd_err *err);

/* Scoring: logits at each sequence's last position for the given vocabulary rows only.
 * rows: [n_rows]; out: [n_seqs, n_rows]. */
ragd_status ragd_engine_score(ragd_engine *e, const ragd_batch *b, const int32_t *rows, int n_rows, float *out,
                              ragd_err *err);

/* Generation step (continuous batching): sequence i continues KV slot slots[i] from its current
 * length (prefill chunks and single decode tokens may be mixed in one batch). Appends the new
 * tokens' K/V to the slot. logits: [n_seqs, n_vocab] for each sequence's last token. */
ragd_status ragd_engine_step(ragd_engine *e, const ragd_batch *b, const int32_t *slots, float *logits,
                             ragd_err *err);
/* Empties a slot (length 0). */
void ragd_engine_slot_reset(ragd_engine *e, int slot);
int ragd_engine_slot_len(const ragd_engine *e, int slot);

#endif
