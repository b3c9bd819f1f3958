// rope.cu — per-head q/k RMSNorm (Qwen3) and half-split RoPE, in place on the fused QKV output.
//
// Matches Hugging Face's bf16 arithmetic: q_norm output bf16(w * bf16(x * rsqrt(mean(x²)+eps)));
// cos/sin computed in f32 from pos * inv_freq and cast to bf16; out = bf16(bf16(x*cos) +
// bf16(rotate_half(x)*sin)) with rotate_half(x) = cat(-x[hd/2:], x[:hd/2]). One warp per token (per
// token and group of 8 heads in short batches, to occupy more warps): cos/sin are computed once per
// warp and serve its heads, 8 heads' loads in flight at a time. Each head is reduced by one warp in a
// fixed order, so results do not depend on the batch (nor on how heads are grouped).
//
// Generation (ragd_k_qk_norm_rope_append): the same kernel also writes each token's final k heads and
// its v heads (copied unchanged) into the paged KV cache — the values kv_append would copy afterwards,
// one launch and one re-read of the k/v rows fewer per layer.
#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/kernels.h"

constexpr int G = 8;          // heads whose loads are issued before any store
constexpr int kShortT = 512;  // below: one warp per (token, G heads); above: one warp per token

// The KV cache destination of a generation step (kc == nullptr: no append). Position p of sequence i
// is row p % bs of block blocks[blk_start[i] + p / bs]; kc, vc: [blocks, bs, nKV * HD].
struct KvDst {
    bf16 *kc, *vc;
    const int32_t *tokseq, *blk_start, *blocks;
    int bs;
};

template <int HD>
static __global__ void qk_norm_rope_kernel(bf16 *qkv, const int32_t *pos, const float *inv_freq, const bf16 *qn,
                                           const bf16 *kn, int T, int nH, int nKV, int n_grp, float eps, KvDst kv) {
    constexpr int EPL = HD / 64;  // elements per lane in each half: lane owns [lane*EPL, +EPL) and +HD/2
    // one warp per (token, group of heads); a group is processed G heads at a time
    const int n_heads = kv.kc ? nH + 2 * nKV : nH + nKV;  // + the v heads when appending to the cache
    const int hpg = (n_heads + n_grp - 1) / n_grp;        // heads per group
    const int wg = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const int t = wg / n_grp, grp = wg % n_grp;
    const int lane = threadIdx.x & 31;
    if (t >= T) return;
    // cos/sin once per token (shared by every head): f32 from pos * inv_freq, cast to bf16 as HF does
    float c[EPL], sn[EPL], wq1[EPL], wq2[EPL], wk1[EPL], wk2[EPL];
    const float fp = (float)pos[t];
#pragma unroll
    for (int e = 0; e < EPL; e++) {
        int i = lane * EPL + e;
        float f = fp * inv_freq[i];
        c[e] = round_bf(cosf(f));
        sn[e] = round_bf(sinf(f));
        if (qn) {
            wq1[e] = bf(qn[i]), wq2[e] = bf(qn[HD / 2 + i]);
            wk1[e] = bf(kn[i]), wk2[e] = bf(kn[HD / 2 + i]);
        }
    }
    bf16 *row = qkv + (size_t)t * (nH + 2 * nKV) * HD;  // [(nH + 2 nKV) * HD]
    const int h_end = min(n_heads, (grp + 1) * hpg);
    size_t crow = 0;  // element offset of this token's [nKV * HD] cache row
    if (kv.kc) {
        const int p = pos[t];
        crow = ((size_t)kv.blocks[kv.blk_start[kv.tokseq[t]] + p / kv.bs] * kv.bs + (size_t)(p % kv.bs)) * nKV * HD;
    }
    for (int h0 = grp * hpg; h0 < h_end; h0 += G) {
        float x1[G][EPL], x2[G][EPL];
#pragma unroll
        for (int g = 0; g < G; g++)
            if (h0 + g < h_end) {
                const bf16 *p = row + (size_t)(h0 + g) * HD;
                if constexpr (EPL == 2) {  // 4-byte accesses
                    __nv_bfloat162 a = *(const __nv_bfloat162 *)(p + lane * 2);
                    __nv_bfloat162 c2 = *(const __nv_bfloat162 *)(p + HD / 2 + lane * 2);
                    x1[g][0] = __low2float(a), x1[g][1] = __high2float(a);
                    x2[g][0] = __low2float(c2), x2[g][1] = __high2float(c2);
                } else {
#pragma unroll
                    for (int e = 0; e < EPL; e++) {
                        x1[g][e] = bf(p[lane * EPL + e]);
                        x2[g][e] = bf(p[HD / 2 + lane * EPL + e]);
                    }
                }
            }
#pragma unroll
        for (int g = 0; g < G; g++) {
            const int h = h0 + g;
            if (h >= h_end) break;
            bf16 *p = row + (size_t)h * HD;  // q head h, or k head h - nH
            if (h >= nH + nKV) {  // a v head (appending only): copied to the cache unchanged
                bf16 *d = kv.vc + crow + (size_t)(h - nH - nKV) * HD;
#pragma unroll
                for (int e = 0; e < EPL; e++) {
                    d[lane * EPL + e] = tobf(x1[g][e]);
                    d[HD / 2 + lane * EPL + e] = tobf(x2[g][e]);
                }
                continue;
            }
            if (qn) {
                float ss = 0.f;
#pragma unroll
                for (int e = 0; e < EPL; e++) ss += x1[g][e] * x1[g][e] + x2[g][e] * x2[g][e];
                for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
                const float r = rsqrtf(ss / (float)HD + eps);
                const bool isq = h < nH;
#pragma unroll
                for (int e = 0; e < EPL; e++) {
                    x1[g][e] = round_bf((isq ? wq1[e] : wk1[e]) * round_bf(x1[g][e] * r));
                    x2[g][e] = round_bf((isq ? wq2[e] : wk2[e]) * round_bf(x2[g][e] * r));
                }
            }
            float y1[EPL], y2[EPL];
#pragma unroll
            for (int e = 0; e < EPL; e++) {
                y1[e] = round_bf(x1[g][e] * c[e]) + round_bf(-x2[g][e] * sn[e]);
                y2[e] = round_bf(x2[g][e] * c[e]) + round_bf(x1[g][e] * sn[e]);
            }
            if (kv.kc && h >= nH) {  // a k head: its final values into the cache as well
                bf16 *d = kv.kc + crow + (size_t)(h - nH) * HD;
#pragma unroll
                for (int e = 0; e < EPL; e++) {
                    d[lane * EPL + e] = tobf(y1[e]);
                    d[HD / 2 + lane * EPL + e] = tobf(y2[e]);
                }
            }
            if constexpr (EPL == 2) {
                *(__nv_bfloat162 *)(p + lane * 2) = __floats2bfloat162_rn(y1[0], y1[1]);
                *(__nv_bfloat162 *)(p + HD / 2 + lane * 2) = __floats2bfloat162_rn(y2[0], y2[1]);
            } else {
#pragma unroll
                for (int e = 0; e < EPL; e++) {
                    p[lane * EPL + e] = tobf(y1[e]);
                    p[HD / 2 + lane * EPL + e] = tobf(y2[e]);
                }
            }
        }
    }
}

static cudaError_t launch(bf16 *qkv, const int32_t *pos, const float *inv_freq, const bf16 *qn, const bf16 *kn, int T,
                          int nH, int nKV, int hd, float eps, const KvDst &kv, cudaStream_t st) {
    if (T <= 0 || nH <= 0 || nKV <= 0 || (qn == nullptr) != (kn == nullptr)) return cudaErrorInvalidValue;
    // Short batches: groups of G heads, so a few tokens still occupy many warps. Long ones: one group
    // per token, so cos/sin are computed once per token. Each head's arithmetic is the same either
    // way (same bits), so the choice may depend on T.
    const int n_heads = kv.kc ? nH + 2 * nKV : nH + nKV;
    const int n_grp = T < kShortT ? (n_heads + G - 1) / G : 1;
    unsigned blocks = (unsigned)(((size_t)T * n_grp + 7) / 8);  // 8 warps (token, head group) per block
    if (hd == 128)
        qk_norm_rope_kernel<128><<<blocks, 256, 0, st>>>(qkv, pos, inv_freq, qn, kn, T, nH, nKV, n_grp, eps, kv);
    else if (hd == 64)
        qk_norm_rope_kernel<64><<<blocks, 256, 0, st>>>(qkv, pos, inv_freq, qn, kn, T, nH, nKV, n_grp, eps, kv);
    else
        return cudaErrorInvalidValue;
    return cudaGetLastError();
}

cudaError_t ragd_k_qk_norm_rope(bf16 *qkv, const int32_t *pos, const float *inv_freq, const bf16 *qn,
                                const bf16 *kn, int T, int nH, int nKV, int hd, float eps, cudaStream_t st) {
    return launch(qkv, pos, inv_freq, qn, kn, T, nH, nKV, hd, eps, KvDst{nullptr, nullptr, nullptr, nullptr, nullptr, 1},
                  st);
}

cudaError_t ragd_k_qk_norm_rope_append(bf16 *qkv, const int32_t *pos, const float *inv_freq, const bf16 *qn,
                                       const bf16 *kn, int T, int nH, int nKV, int hd, float eps, bf16 *kc, bf16 *vc,
                                       const int32_t *tokseq, const int32_t *blk_start, const int32_t *blocks, int bs,
                                       cudaStream_t st) {
    if (!kc || !vc || bs <= 0) return cudaErrorInvalidValue;
    return launch(qkv, pos, inv_freq, qn, kn, T, nH, nKV, hd, eps, KvDst{kc, vc, tokseq, blk_start, blocks, bs}, st);
}
