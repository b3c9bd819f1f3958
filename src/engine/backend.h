/* backend.h — INTERNAL to src/engine: the table of functions a backend (cpu/, cuda/) provides.
 * engine.c dispatches the public ragd_engine_* calls through it, after validating every batch against
 * the engine's limits and sequence table (one validator for both backends: a backend may assume the
 * batch is well-formed, token ids are in the vocabulary, sequences fit and sample params are valid).
 * A backend's create() must compute and allocate its whole memory plan; forward functions must not
 * allocate. */
#ifndef RAGD_ENGINE_BACKEND_H
#define RAGD_ENGINE_BACKEND_H

#include "engine/engine.h"

/* The KV side of a generation step, built by engine.c from its sequence table. Positions of sequence i:
 * pos0[i] (cached before the step) .. pos0[i] + n_i - 1 (this step's tokens). Position p of sequence i
 * lives in block blocks[blk_start[i] + p / block_size], row p % block_size. The blocks cover at least
 * [0, pos0[i] + n_i). */
typedef struct ragd_kv_view {
    int block_size;
    const int32_t *seqs;      /* [n_seqs] the sequence slot of each batch sequence (per-sequence recurrent state) */
    const int32_t *pos0;      /* [n_seqs] */
    const int32_t *blk_start; /* [n_seqs + 1] */
    const int32_t *blocks;    /* [blk_start[n_seqs]] */
} ragd_kv_view;

typedef struct ragd_backend_ops {
    const char *name; /* "cpu", "cuda" */
    /* o is resolved (ragd_engine_opts_resolve); the plan covers kv_blocks blocks of kv_block_size */
    ragd_status (*plan)(const ragd_model *m, const ragd_engine_opts *o, ragd_engine_plan *plan, ragd_err *err);
    /* returns the backend's private state in *state */
    ragd_status (*create)(const ragd_model *m, const ragd_engine_opts *o, void **state, ragd_engine_plan *plan,
                          ragd_err *err);
    void (*destroy)(void *state);
    ragd_status (*pool)(void *state, const ragd_batch *b, ragd_pooling pool, float *out, ragd_err *err);
    ragd_status (*score)(void *state, const ragd_batch *b, const int32_t *rows, int n_rows, float *out,
                         ragd_err *err);
    /* sequence classification logits [n_seqs, n_labels]; NULL when the backend has none */
    ragd_status (*classify)(void *state, const ragd_batch *b, float *out, ragd_err *err);
    /* Generation step: writes the new positions' K/V into their blocks, attends over [0, pos), computes
     * the last row's logits of each sequence, samples rows with sp[i].active into out[i] (sp may be
     * NULL: no sampling) and copies logits out when logits != NULL ([n_seqs, n_vocab]). Rows with
     * sp[i].active are logit-processed first (ragd_logits_process; proc validated, may be NULL when no
     * row asks for processing). */
    ragd_status (*step)(void *state, const ragd_batch *b, const ragd_kv_view *kv, const ragd_sample_params *sp,
                        const ragd_step_proc *proc, ragd_sample_out *out, float *logits, ragd_err *err);
    /* Clears the per-sequence state of slot seq (hybrid models' conv / recurrent state) when the engine opens
     * or closes it; NULL when the backend keeps no state outside the KV blocks. */
    void (*seq_reset)(void *state, int seq);
} ragd_backend_ops;

extern const ragd_backend_ops ragd_backend_cpu;  /* engine/cpu/ */
#ifdef RAGD_HAVE_CUDA
extern const ragd_backend_ops ragd_backend_cuda; /* engine/cuda/ (C glue + .cu kernels) */
#endif

#endif
