/* engine.c — the public ragd_engine_* API: picks a backend from ragd_engine_opts.device and dispatches to
 * its table (backend.h). CUDA is referenced only under RAGD_HAVE_CUDA; asking for a device this build or
 * machine lacks is an error (never a silent CPU fallback). */
#include <stdlib.h>

#include "engine/backend.h"

struct ragd_engine {
    const ragd_backend_ops *ops;
    void *state;
    const ragd_model *model;
    ragd_engine_opts opts;
    ragd_engine_plan plan;
};

const char *ragd_device_name(ragd_device d) {
    switch (d) {
    case RAGD_DEVICE_CPU: return "cpu";
    case RAGD_DEVICE_CUDA: return "cuda";
    }
    return "unknown";
}

static ragd_status backend_of(ragd_device d, const ragd_backend_ops **ops, ragd_err *err) {
    switch (d) {
    case RAGD_DEVICE_CPU:
        *ops = &ragd_backend_cpu;
        return RAGD_OK;
    case RAGD_DEVICE_CUDA:
#ifdef RAGD_HAVE_CUDA
        *ops = &ragd_backend_cuda;
        return RAGD_OK;
#else
        return ragd_err_set(err, RAGD_EUNSUPPORTED,
                            "device cuda: this ragd was built without the CUDA backend (rebuild with nvcc, "
                            "RAGD_CUDA=ON)");
#endif
    }
    return ragd_err_set(err, RAGD_EINVAL, "unknown device %d", (int)d);
}

ragd_status ragd_engine_plan_compute(const ragd_model *m, const ragd_engine_opts *o, ragd_engine_plan *plan,
                                     ragd_err *err) {
    const ragd_backend_ops *ops = NULL;
    ragd_status st = backend_of(o->device, &ops, err);
    if (st) return st;
    memset(plan, 0, sizeof *plan);
    return ops->plan(m, o, plan, err);
}

ragd_status ragd_engine_create(const ragd_model *m, const ragd_engine_opts *o, ragd_engine **out, ragd_err *err) {
    *out = NULL;
    const ragd_backend_ops *ops = NULL;
    ragd_status st = backend_of(o->device, &ops, err);
    if (st) return st;
    ragd_engine *e = ragd_xcalloc(1, sizeof *e);
    e->ops = ops;
    e->model = m;
    e->opts = *o;
    st = ops->create(m, o, &e->state, &e->plan, err);
    if (st) {
        free(e);
        return st;
    }
    *out = e;
    return RAGD_OK;
}

void ragd_engine_free(ragd_engine *e) {
    if (!e) return;
    e->ops->destroy(e->state);
    free(e);
}

const ragd_engine_plan *ragd_engine_get_plan(const ragd_engine *e) { return &e->plan; }
const ragd_engine_opts *ragd_engine_get_opts(const ragd_engine *e) { return &e->opts; }
const ragd_model *ragd_engine_model(const ragd_engine *e) { return e->model; }

ragd_status ragd_engine_pool(ragd_engine *e, const ragd_batch *b, ragd_pooling pool, float *out, ragd_err *err) {
    return e->ops->pool(e->state, b, pool, out, err);
}

ragd_status ragd_engine_score(ragd_engine *e, const ragd_batch *b, const int32_t *rows, int n_rows, float *out,
                              ragd_err *err) {
    if (n_rows < 1 || !rows) return ragd_err_set(err, RAGD_EINVAL, "score needs at least one vocabulary row");
    return e->ops->score(e->state, b, rows, n_rows, out, err);
}

ragd_status ragd_engine_step(ragd_engine *e, const ragd_batch *b, const int32_t *slots, float *logits,
                             ragd_err *err) {
    return e->ops->step(e->state, b, slots, logits, err);
}

void ragd_engine_slot_reset(ragd_engine *e, int slot) { e->ops->slot_reset(e->state, slot); }
int ragd_engine_slot_len(const ragd_engine *e, int slot) { return e->ops->slot_len(e->state, slot); }
