// logit_proc.cu — logit processing before the device sampler (structured-output token masks,
// presence / frequency / repetition penalties, logit_bias): for every active row that asks for it, the
// same bits as ragd_logits_process (engine/sample.c), in place on the logits.
//
// One kernel, grid (G, rows) × 256, G from n_vocab only (graph-capturable: the launch configuration
// depends on n_rows and n_vocab, the per-row work on device data). Each thread owns mask words
// (32 ids each) and, strided over the whole grid, edits. Per id the result is fixed: an edited id is
// written by its edit's thread only (x → ragd_sm_edit(x), then -inf when masked out); a masked-out id
// is also written -inf by its word's thread — the same value, so which write lands last never shows.
// A row's edits name distinct ids (checked by engine.c), so no two edits touch one id.
#include <cstdint>

#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/kernels.h"

namespace {

constexpr int NT = 256;

__global__ void __launch_bounds__(NT) k_logit_proc(float *logits, size_t ld, int V, const ragd_sample_params *params,
                                                   const uint32_t *masks, const ragd_logit_edit *edits) {
    const int row = blockIdx.y;
    const ragd_sample_params *p = params + row;
    if (!p->active || (p->mask_row <= 0 && p->n_edit <= 0)) return;
    float *x = logits + (size_t)row * ld;
    const int W = (V + 31) / 32;
    const uint32_t *w = p->mask_row > 0 ? masks + (size_t)(p->mask_row - 1) * (size_t)W : nullptr;
    const int gt = blockIdx.x * NT + threadIdx.x, gn = gridDim.x * NT;
    const float ninf = ragd_sm_bitsf(0xFF800000u);
    for (int j = gt; j < p->n_edit; j += gn) {
        const ragd_logit_edit *e = &edits[p->edit_off + j];
        float v = ragd_sm_edit(x[e->id], p, e);
        if (w && !ragd_sm_allowed(w, e->id)) v = ninf;
        x[e->id] = v;
    }
    if (!w) return;
    for (int k = gt; k < W; k += gn) {
        const uint32_t m = w[k];
        if (m == 0xFFFFFFFFu) continue;
        const int lo = 32 * k, hi = lo + 32 < V ? lo + 32 : V;
        for (int i = lo; i < hi; i++)
            if (!((m >> (i & 31)) & 1u)) x[i] = ninf;
    }
}

}  // namespace

cudaError_t ragd_k_logit_proc(float *logits, size_t ld, int n_rows, int n_vocab, const ragd_sample_params *params,
                              const uint32_t *masks, const ragd_logit_edit *edits, cudaStream_t st) {
    if (!logits || !params || n_rows < 1 || n_rows > 65535 || n_vocab < 1 || n_vocab > RAGD_SAMPLE_MAX_VOCAB ||
        ld < (size_t)n_vocab)
        return cudaErrorInvalidValue;
    const int W = (n_vocab + 31) / 32;
    int G = (W + NT - 1) / NT;  // one mask word per thread (151,936 ids: 19 CTAs per row)
    if (G > 32) G = 32;
    k_logit_proc<<<dim3((unsigned)G, (unsigned)n_rows), NT, 0, st>>>(logits, ld, n_vocab, params, masks, edits);
    return cudaGetLastError();
}
