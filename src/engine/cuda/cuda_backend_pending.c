/* cuda_backend_pending.c — TEMPORARY until the CUDA backend lands: every operation fails loudly with
 * RAGD_EUNSUPPORTED (never a silent CPU fallback). Removed when src/engine/cuda/ provides the real table. */
#include "engine/backend.h"

static ragd_status pending(ragd_err *err) {
    return ragd_err_set(err, RAGD_EUNSUPPORTED, "device cuda: the CUDA backend is not implemented in this build yet");
}
static ragd_status plan(const ragd_model *m, const ragd_engine_opts *o, ragd_engine_plan *p, ragd_err *err) {
    return pending(err);
}
static ragd_status create(const ragd_model *m, const ragd_engine_opts *o, void **state, ragd_engine_plan *p,
                          ragd_err *err) {
    return pending(err);
}
static void destroy(void *state) {}
static ragd_status pool(void *s, const ragd_batch *b, ragd_pooling pl, float *out, ragd_err *err) { return pending(err); }
static ragd_status score(void *s, const ragd_batch *b, const int32_t *rows, int n_rows, float *out, ragd_err *err) {
    return pending(err);
}
static ragd_status step(void *s, const ragd_batch *b, const int32_t *slots, float *logits, ragd_err *err) {
    return pending(err);
}
static void slot_reset(void *s, int slot) {}
static int slot_len(const void *s, int slot) { return 0; }

const ragd_backend_ops ragd_backend_cuda = {"cuda", plan, create, destroy, pool, score, step, slot_reset, slot_len};
