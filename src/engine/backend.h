/* backend.h — INTERNAL to src/engine: the table of functions a backend (cpu/, cuda/) provides.
 * engine.c dispatches the public ragd_engine_* calls through it. A backend's create() must compute
 * and allocate its whole memory plan; forward functions must not allocate. */
#ifndef RAGD_ENGINE_BACKEND_H
#define RAGD_ENGINE_BACKEND_H

#include "engine/engine.h"

typedef struct ragd_backend_ops {
    const char *name; /* "cpu", "cuda" */
    ragd_status (*plan)(const ragd_model *m, const ragd_engine_opts *o, ragd_engine_plan *plan, ragd_err *err);
    /* returns the backend's private state in *state */
    ragd_status (*create)(const ragd_model *m, const ragd_engine_opts *o, void **state, ragd_engine_plan *plan,
                          ragd_err *err);
    void (*destroy)(void *state);
    ragd_status (*pool)(void *state, const ragd_batch *b, ragd_pooling pool, float *out, ragd_err *err);
    ragd_status (*score)(void *state, const ragd_batch *b, const int32_t *rows, int n_rows, float *out,
                         ragd_err *err);
    ragd_status (*step)(void *state, const ragd_batch *b, const int32_t *slots, float *logits, ragd_err *err);
    void (*slot_reset)(void *state, int slot);
    int (*slot_len)(const void *state, int slot);
} ragd_backend_ops;

extern const ragd_backend_ops ragd_backend_cpu;  /* engine/cpu/ */
#ifdef RAGD_HAVE_CUDA
extern const ragd_backend_ops ragd_backend_cuda; /* engine/cuda/ (C glue + .cu kernels) */
#endif

#endif
