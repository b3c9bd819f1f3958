// kernels.h — INTERNAL to src/engine/cuda (and tests/gpu): launchers of the backend's own kernels.
// Each launcher checks its shape arguments (returns cudaErrorInvalidValue when they are outside what
// the kernel implements), launches on the given stream and returns cudaGetLastError().
// Pointers are device pointers; shapes in the comments are row-major.
#ifndef RAGD_CUDA_KERNELS_H
#define RAGD_CUDA_KERNELS_H

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

extern "C" {
#include "engine/sample_math.h"
}

// x[t, :] = f32(table[tok[t], :]).  tok: [T]; table: [n_vocab, E]; x: [T, E]. Ids must be < n_vocab.
cudaError_t ragd_k_embed(const int32_t *tok, const __nv_bfloat16 *table, float *x, int T, int E, cudaStream_t st);

// Hugging Face RMSNorm of an f32 residual: out = bf16(w * bf16(x * rsqrt(mean(x²) + eps))).
// x: [T, E] f32; w: [E]; out: [T, E]. E % 4 == 0.
cudaError_t ragd_k_rmsnorm(const float *x, const __nv_bfloat16 *w, __nv_bfloat16 *out, int T, int E, float eps,
                           cudaStream_t st);

// In place on the fused projection output qkv: [T, (nH + 2 nKV) * hd] (q heads, k heads, v heads):
// optional per-head RMSNorm of q and k (qn, kn: [hd], NULL when qk_norm is off), then half-split RoPE
// at position pos[t] with inv_freq: [hd/2]. hd ∈ {64, 128}.
cudaError_t ragd_k_qk_norm_rope(__nv_bfloat16 *qkv, const int32_t *pos, const float *inv_freq,
                                const __nv_bfloat16 *qn, const __nv_bfloat16 *kn, int T, int nH, int nKV, int hd,
                                float eps, cudaStream_t st);

// Generation: the same, and each token's final k heads and its v heads (unchanged) written into the
// paged KV cache as ragd_k_kv_append would (same bits), in the same launch. kc, vc: [blocks, bs, nKV * hd]
// of one layer; token t is position pos[t] of sequence tokseq[t] (blocks[blk_start[seq] + pos / bs]).
cudaError_t ragd_k_qk_norm_rope_append(__nv_bfloat16 *qkv, const int32_t *pos, const float *inv_freq,
                                       const __nv_bfloat16 *qn, const __nv_bfloat16 *kn, int T, int nH, int nKV,
                                       int hd, float eps, __nv_bfloat16 *kc, __nv_bfloat16 *vc, const int32_t *tokseq,
                                       const int32_t *blk_start, const int32_t *blocks, int bs, cudaStream_t st);

// out = bf16(bf16(silu(g)) * u), gu: [T, 2F] (gate in columns [0, F), up in [F, 2F)); out: [T, F]. F % 8 == 0.
cudaError_t ragd_k_swiglu(const __nv_bfloat16 *gu, __nv_bfloat16 *out, int T, int F, cudaStream_t st);

// Varlen attention over packed sequences, causal (causal = 1) or bidirectional (0: every query attends
// to every key of its sequence). qkv: [T, (nH + 2 nKV) * hd]; out: [T, nH * hd].
// seq_start: [n_seqs + 1]; tiles: [n_tiles] of (seq, q0): every 64-row query tile of every sequence
// exactly once (any order; see ragd_attn_tiles). hd ∈ {64, 128}; nH % nKV == 0.
cudaError_t ragd_k_attention(const __nv_bfloat16 *qkv, __nv_bfloat16 *out, const int32_t *seq_start,
                             const int2 *tiles, int n_tiles, int nH, int nKV, int hd, int causal, cudaStream_t st);
// Once per device before any ragd_k_attention launch (sets the kernel's shared memory attributes).
cudaError_t ragd_k_attention_init();
// Fills tiles (host) for a batch, longest work first; returns the count (≤ cap, else -1).
int ragd_attn_tiles(int n_seqs, const int32_t *seq_start, int2 *tiles, int cap);
enum { RAGD_ATTN_BM = 64 };

// Generation (kv_attention.cu). KV block pool per layer kc, vc: [blocks, bs, nKV * hd]. Token t of the
// batch (sequence i = tokseq[t], position p = pos[t]) lives in block blocks[blk_start[i] + p / bs], row
// p % bs. append writes its k/v rows (from qkv: [T, (nH + 2 nKV) * hd]) there;
// attention: out[t, h*hd..] = softmax(q·K[0..p]^T / sqrt(hd)) · V[0..p] (f32), out: [T, nH * hd].
cudaError_t ragd_k_kv_append(const __nv_bfloat16 *qkv, __nv_bfloat16 *kc, __nv_bfloat16 *vc, const int32_t *pos,
                             const int32_t *tokseq, const int32_t *blk_start, const int32_t *blocks, int T, int nH,
                             int nKV, int hd, int bs, cudaStream_t st);
cudaError_t ragd_k_kv_attention(const __nv_bfloat16 *qkv, __nv_bfloat16 *out, const __nv_bfloat16 *kc,
                                const __nv_bfloat16 *vc, const int32_t *pos, const int32_t *tokseq,
                                const int32_t *blk_start, const int32_t *blocks, int T, int nH, int nKV, int hd,
                                int bs, cudaStream_t st);

// Generation attention over the paged KV cache (paged_attention.cu): one attention function, two kernels
// with the same bits per row (see the file's comment). Keys of a row are taken in splits of
// RAGD_KV_SPLIT positions, folded in order. Batch: sequence i has rows [seq_start[i], seq_start[i+1]) of
// qkv ([T, (nH + 2 nKV) * hd]) at positions pos0[i] ..; its positions live in blocks
// blocks[blk_start[i] + p / bs] (bs a power of two), kc/vc: one layer's [blocks, bs, nKV * hd]. out: [T, nH * hd].
enum { RAGD_KV_SPLIT = 128 };
// Once per device (shared memory attributes).
cudaError_t ragd_k_paged_init();
// Sequences with more than one new row: tiles (seq, first row) of 64 rows, every tile of those sequences.
cudaError_t ragd_k_paged_prefill(const __nv_bfloat16 *qkv, __nv_bfloat16 *out, const __nv_bfloat16 *kc,
                                 const __nv_bfloat16 *vc, const int32_t *seq_start, const int32_t *pos0,
                                 const int32_t *blk_start, const int32_t *blocks, int bs, const int2 *tiles,
                                 int n_tiles, int nH, int nKV, int hd, cudaStream_t st);
// Sequences with one new row: items (seq, kv head, split, partial slot) from ragd_paged_work; *n_items
// on the device (a graph replays with new counts); grid CTAs of one warp loop over the items. part: one
// [hd + 2] f32 record per (slot, group head); counters: [n_seqs * nKV] ints, zero at start and left zero.
cudaError_t ragd_k_paged_decode(const __nv_bfloat16 *qkv, __nv_bfloat16 *out, const __nv_bfloat16 *kc,
                                const __nv_bfloat16 *vc, const int32_t *seq_start, const int32_t *pos0,
                                const int32_t *blk_start, const int32_t *blocks, int bs, const int4 *items,
                                const int *n_items, int grid, int db, float *part, int *counters, int nH, int nKV,
                                int hd, cudaStream_t st);
// db: the load schedule (two tile buffers, or one: paged_attention.cu) — the same bits either way.
// The decode kernel's resident CTAs per SM for a schedule (occupancy API; -1 on error): the grid that
// fills the device.
int ragd_k_paged_decode_ctas_per_sm(int hd, int db);
// Host: the step's work lists. Returns 0, or -1 when a list would exceed its capacity.
// n_splits_total: partial slots used (each a [nH/nKV][hd + 2] f32 record).
int ragd_paged_work(int n_seqs, const int32_t *seq_start, const int32_t *pos0, int nKV, int2 *tiles, int tile_cap,
                    int *n_tiles, int4 *items, int item_cap, int *n_items, int32_t *n_splits_total);

// The next token of every active row of logits [n_rows, ld] (f32) by params [n_rows] → out [n_rows]
// (ragd_sample_params's contract; inactive rows are left untouched). ws: ragd_k_sample_ws_bytes(n_rows,
// n_vocab) bytes. Graph-capturable: no allocation, no host reads. A sampler may decline a row by
// setting its token to RAGD_SAMPLE_ON_HOST: the caller samples it from its logits.
enum { RAGD_SAMPLE_ON_HOST = -2 };
// (declared below, with the sampler's section)

// Gathers each sequence's last row: x_out[s, :] = x[seq_start[s+1]-1, :] (f32, [n_seqs, E]) and
// a_out[s, :] = a[seq_start[s+1]-1, :] (bf16, [n_seqs, D]). Outputs must not overlap the inputs.
cudaError_t ragd_k_gather_last(const float *x, const __nv_bfloat16 *a, const int32_t *seq_start, int n_seqs, int E,
                               int D, float *x_out, __nv_bfloat16 *a_out, cudaStream_t st);

// Final RMSNorm + pooling per sequence. x: [T, E] f32 residual; w: [E]; out: [n_seqs, E] f32 holding
// the bf16-rounded normed values (LAST: row end-1, CLS: row start, MEAN: f32 mean of the normed rows in
// row order, MAX: elementwise max). w NULL (encoders, whose rows are final after their last LayerNorm):
// the rows' f32 values, unnormed. mode: RAGD_CUDA_POOL_*.
cudaError_t ragd_k_pool(const float *x, const __nv_bfloat16 *w, const int32_t *seq_start, int n_seqs, int E,
                        float eps, int mode, float *out, cudaStream_t st);

// Encoder blocks (encoder.cu). embed_abs: x[t] = LN((word[tok[t]] + type[type[t]]) + pos_t[pos[t]]) f32
// and out[t] = bf16(x[t]); type NULL: type row 0; type_table NULL: no token types. layernorm: x[t] =
// LN(x[t] + add) in place (add [E] or NULL) and out[t] = bf16(x[t]). LN: f32 torch formula, weights w and
// bias b [E]. x, out: [T, E].
cudaError_t ragd_k_embed_abs(const int32_t *tok, const int32_t *type, const int32_t *pos, const __nv_bfloat16 *word,
                             const __nv_bfloat16 *type_table, const __nv_bfloat16 *pos_table, const __nv_bfloat16 *w,
                             const __nv_bfloat16 *b, float eps, int T, int E, float *x, __nv_bfloat16 *out,
                             cudaStream_t st);
cudaError_t ragd_k_layernorm(float *x, const __nv_bfloat16 *add, const __nv_bfloat16 *w, const __nv_bfloat16 *b,
                             float eps, int T, int E, __nv_bfloat16 *out, cudaStream_t st);
// out = bf16(gelu(in)), erf form or (tanh_form) the tanh approximation. in, out: [T, F]; F % 8 == 0.
cudaError_t ragd_k_gelu(const __nv_bfloat16 *in, __nv_bfloat16 *out, int T, int F, int tanh_form, cudaStream_t st);
// Classification heads: out[s, n] = act(Σ_k in[s, k] W[n, k] + b[n]) / div, act tanh or identity, f32
// accumulation in a fixed order. in: [S, K] f32; W: [N, K]; b: [N] or NULL; out: [S, N]. K ≤ 12288.
cudaError_t ragd_k_head(const float *in, const __nv_bfloat16 *W, const __nv_bfloat16 *b, int S, int N, int K,
                        int act_tanh, float div, float *out, cudaStream_t st);

// Logits of selected vocabulary rows at each sequence's last position: out[s, r] =
// Σ_e normed_last(s)[e] * rows[r, e] with f32 accumulation. rows: [R, E] bf16; out: [n_seqs, R].
cudaError_t ragd_k_score(const float *x, const __nv_bfloat16 *w, const int32_t *seq_start, int n_seqs, int E,
                         float eps, const __nv_bfloat16 *rows, int R, float *out, cudaStream_t st);

// dst[i] = bf16(src[i]) for src dtype RAGD_CUDA_F32 / RAGD_CUDA_F16 (n elements).
cudaError_t ragd_k_to_bf16(const void *src, int dtype, __nv_bfloat16 *dst, size_t n, cudaStream_t st);

// Token sampling (sample.cu): for every row with params[r].active, out[r] = exactly what ragd_sample_row
// (engine/sample.c) writes for logits[r, 0..n_vocab) and params[r] (contract: engine/sample_math.h);
// inactive rows are not read and their out is left untouched. logits: [n_rows, ld] f32 (ld >= n_vocab);
// params, out: [n_rows]; ws: ragd_k_sample_ws_bytes(n_rows, n_vocab) bytes, 16-byte aligned, not shared
// with a concurrent launch. Graph-capturable: no allocation, no synchronization, no host reads; the
// launch configuration depends on n_rows and n_vocab only. n_rows <= 65535, n_vocab <= RAGD_SAMPLE_MAX_VOCAB.
#include "engine/sample_math.h"
size_t ragd_k_sample_ws_bytes(int max_rows, int n_vocab);
cudaError_t ragd_k_sample(const float *logits, size_t ld, int n_rows, int n_vocab, const ragd_sample_params *params,
                          ragd_sample_out *out, void *ws, cudaStream_t st);

// Logit processing (logit_proc.cu), in place, before ragd_k_sample: for every active row with a mask
// row or edits, logits[r] becomes exactly what ragd_logits_process (engine/sample.c) makes of it.
// masks: [*, (n_vocab + 31) / 32] (row p.mask_row - 1), edits: the step's edit list (p.edit_off ..);
// both device memory, ranges validated by the caller. Graph-capturable (launch from n_rows, n_vocab).
cudaError_t ragd_k_logit_proc(float *logits, size_t ld, int n_rows, int n_vocab, const ragd_sample_params *params,
                              const uint32_t *masks, const ragd_logit_edit *edits, cudaStream_t st);

#endif
