// paged_attention.cu — generation attention over the paged KV cache: one attention function, computed
// by two kernels that give the same bits for a row.
//
// The function (per query row at position p of a sequence, one head): keys 0..p are taken in splits of
// RAGD_KV_SPLIT (128) positions, each split in 64-key tiles. Within a split: the tile steps of
// attn_tile.cuh (S = Q K^T, online softmax from m = −1e30, l = 0, o = 0, P rounded to bf16, O += P V).
// At the end of a split its row sum l is summed over the quad (xor 1, then xor 2). The splits are then
// folded in order: the state after split 0 is split 0's; split c (> 0, and only if its l > 0: a split of
// masked keys only changes nothing) folds in as M' = max(M, m), a = 2^(M − M'), b = 2^(m − M'),
// L' = fma(l, b, L·a), O' = fma(o, b, O·a). The row's output is bf16(O · (1 / L)). Every one of these
// operations is written out explicitly (no contraction left to the compiler), and the tile steps are
// the same instructions in both kernels, so:
//
//   * paged_prefill (chunks of new tokens: one CTA per 64-row query tile and head, as attention.cu,
//     keys read through the block table) folds the splits in registers;
//   * paged_decode (one new token per sequence: one warp per (sequence, kv head, split), the GQA group's
//     query heads as the tile's rows) writes each split's (m, l, o) and the last warp of a (sequence,
//     kv head) to finish folds them in split order;
//
// and a row's bits do not depend on which kernel ran it, on how its sequence's tokens were split into
// steps (split and tile boundaries are absolute positions), on what else is in the batch, or on where
// its keys came from (prefix cache or this step). tests/gpu/test_kernels.cu checks prefill vs decode,
// chunkings and packings bit for bit.
//
// KV block pool per layer: kc, vc: [blocks][bs][nKV·hd] bf16; position p of sequence i is row p % bs of
// block blocks[blk_start[i] + p / bs]. The new tokens' K/V are appended (ragd_k_kv_append) before
// attention, so a chunk sees its own earlier tokens.
#include <cmath>

#include "engine/cuda/attn_tile.cuh"

namespace {

using namespace attn;

constexpr int SPLIT = RAGD_KV_SPLIT, KT = SPLIT / BN;  // keys per split, tiles per split
static_assert(SPLIT % BN == 0, "a split is whole key tiles");

// ---- shared pieces ------------------------------------------------------------------------------

// The cache row (element offset) of each position [r0, r0 + 64) of a sequence, rows ≥ L clamped to L − 1,
// into rowoff[64] (shared): one block-table lookup per row, made once per key tile and shared by the
// K and V loads — a lookup inside the cp.async loop would serialize its latency with every issue.
template <int NTH>
__device__ __forceinline__ void paged_rows(uint32_t *rowoff, const int32_t *blocks, int bs_shift, int r0, int L,
                                           int tid) {
    for (int r = tid; r < BN; r += NTH) {
        const int p = min(r0 + r, L - 1);
        rowoff[r] = ((uint32_t)blocks[p >> bs_shift] << bs_shift) | (uint32_t)(p & ((1 << bs_shift) - 1));
    }
}
// Positions [r0, r0 + 64) (rows ≥ L zero-filled) from the paged cache into a swizzled [64][HD] tile at
// shared address s, rows located by rowoff (paged_rows, made visible to the threads by a barrier). cache
// points at the kv head's first element; ld = nKV·HD.
template <int HD, int NTH>
__device__ __forceinline__ void load_paged(uint32_t s, const bf16 *cache, const uint32_t *rowoff, int ld, int r0,
                                           int L, int tid) {
    constexpr int CH = HD / 8;
#pragma unroll 8
    for (int idx = tid; idx < BN * CH; idx += NTH) {
        const int r = idx / CH, ch = idx % CH;
        const bf16 *src = cache + (size_t)rowoff[r] * ld + ch * 8;
        cp_async16(s + (uint32_t)(r * HD + ((ch ^ (r & 7)) << 3)) * 2, src, r0 + r < L ? 16 : 0);
    }
}

// The end of a split for the thread's two rows: row sums over the quad, then the fold into the running
// state (M, L, O) — or its start (split 0).
struct RowState {
    float m, l;
};
__device__ __forceinline__ float quad_sum(float l) {
    l = __fadd_rn(l, __shfl_xor_sync(0xffffffffu, l, 1));
    return __fadd_rn(l, __shfl_xor_sync(0xffffffffu, l, 2));
}
// Folding split state (m, l, o) into the running (M, L, O), the exact operations of the function above:
// fold_row updates M and L and returns the factors (false: an empty split, nothing changes); fold_el is
// then applied to every element of the row.
__device__ __forceinline__ bool fold_row(float &M, float &L, float m, float l, float &a, float &b) {
    if (!(l > 0.f)) return false;  // a split of masked keys only
    const float Mn = fmaxf(M, m);
    a = ex2(__fsub_rn(M, Mn));
    b = ex2(__fsub_rn(m, Mn));
    L = __fmaf_rn(l, b, __fmul_rn(L, a));
    M = Mn;
    return true;
}
__device__ __forceinline__ float fold_el(float O, float o, float a, float b) { return __fmaf_rn(o, b, __fmul_rn(O, a)); }
__device__ __forceinline__ float inv_of(float L) { return __frcp_rn(L); }

// ---- prefill: chunks of new tokens ---------------------------------------------------------------

struct PJob {
    int n, p0, q0, h, warp, g, t4, qi0, qi1;  // new tokens, cached positions, tile's first row, head, thread place
    int row0;                                 // batch row of the sequence's first new token
    const int32_t *blocks;
    uint32_t qo, ko, vo;
};

template <int HD>
__global__ void __launch_bounds__(NT, 2)
    paged_prefill_kernel(const bf16 *qkv, bf16 *out, const bf16 *kc, const bf16 *vc, const int32_t *seq_start,
                         const int32_t *pos0, const int32_t *blk_start, const int32_t *blocks, int bs_shift,
                         const int2 *tiles, int nH, int nKV, float scale_log2) {
    extern __shared__ uint4 smem_raw[];
    constexpr uint32_t TB = tile_bytes(HD);
    const uint32_t sK = smem_addr(smem_raw), sV = sK + TB, sQ = sV + TB;
    // the running state O of the split fold, per thread (registers would spill): element (i, e) of thread
    // t at Os[(4·i + e)·NT + t] (consecutive threads, consecutive words)
    float *Os = (float *)((char *)smem_raw + 3 * TB) + threadIdx.x;
    __shared__ uint32_t rows_k[BN], rows_v[BN];  // cache rows of the K tile / the V tile in flight
    PJob b;
    const int2 tile = tiles[blockIdx.x / nH];
    b.h = blockIdx.x % nH;
    const int kvh = b.h / (nH / nKV), si = tile.x, ldq = (nH + 2 * nKV) * HD, ldk = nKV * HD;
    b.q0 = tile.y;
    b.row0 = seq_start[si];
    b.n = seq_start[si + 1] - b.row0;
    b.p0 = pos0[si];
    b.blocks = blocks + blk_start[si];
    const int lane = threadIdx.x & 31, mi = lane >> 3, mr = lane & 7;
    b.warp = threadIdx.x >> 5;
    b.g = lane >> 2;
    b.t4 = lane & 3;
    b.qi0 = b.q0 + b.warp * 16 + b.g;
    b.qi1 = b.qi0 + 8;
    b.qo = (uint32_t)(b.warp * 16 * HD * 2) + frag_off<HD>(mi & 1, mi >> 1, mr);
    b.ko = frag_off<HD>(mi >> 1, mi & 1, mr);
    b.vo = frag_off<HD>(mi & 1, mi >> 1, mr);
    const int L = b.p0 + b.n;                             // keys of the sequence after this step
    const int last_row = min(b.q0 + BM, b.n) - 1;         // the tile's last row
    const int n_kt = (b.p0 + last_row) / BN + 1;          // key tiles the tile needs
    const int wmin = b.p0 + b.q0 + b.warp * 16;           // position of the warp's first row
    const int wmax = b.p0 + min(b.q0 + b.warp * 16 + 15, b.n - 1);  // and of its last (valid) row
    const bool wrows = b.q0 + b.warp * 16 < b.n;          // the warp holds rows of the sequence
    const int lim0 = b.p0 + min(b.qi0, b.n - 1), lim1 = b.p0 + min(b.qi1, b.n - 1);  // last key each row sees
    const bf16 *Qg = qkv + (size_t)b.row0 * ldq + b.h * HD, *Kc = kc + kvh * HD, *Vc = vc + kvh * HD;

    paged_rows<NT>(rows_k, b.blocks, bs_shift, 0, L, threadIdx.x);
    load_tile<HD>(sQ, Qg, ldq, b.q0, b.n);
    __syncthreads();
    load_paged<HD, NT>(sK, Kc, rows_k, ldk, 0, L, threadIdx.x);
    cp_commit();
    float o[HD / 8][4];
#pragma unroll
    for (int i = 0; i < HD / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    float m0 = -1e30f, m1 = -1e30f, l0 = 0.f, l1 = 0.f, M0 = 0.f, M1 = 0.f, L0 = 0.f, L1 = 0.f;

    for (int j = 0; j < n_kt; j++) {
        cp_wait<0>();
        __syncthreads();  // K_j (and Q) visible to all; every warp is done with V_{j-1}
        // the V tile has the K tile's rows (rows_k is not rewritten before the next barrier)
        load_paged<HD, NT>(sV, Vc, rows_k, ldk, j * BN, L, threadIdx.x);
        cp_commit();
        if (j + 1 < n_kt) paged_rows<NT>(rows_v, b.blocks, bs_shift, (j + 1) * BN, L, threadIdx.x);
        const int kb = j * BN;
        const bool mask = kb + BN - 1 > wmin;                                 // some key of the tile is hidden from a row
        const int lim = !wrows ? 0 : kb + BN - 1 <= wmax ? BN : wmax - kb + 1;  // keys the warp's rows can see
        float s[BN / 8][4];
        qk_tile<HD>(s, [&](int kk, uint32_t(&q)[4]) { ldsm4(sQ + (b.qo ^ (kk << 5)), q); }, sK, b.ko, lim);
        uint32_t pf[BN / 8][2];
        float a0, a1;
        softmax_tile(s, pf, m0, m1, l0, l1, a0, a1, mask, lim0 - kb - 2 * b.t4, lim1 - kb - 2 * b.t4, scale_log2);
        cp_wait<0>();
        __syncthreads();  // V_j visible to all; every warp is done with K_j
        if (j + 1 < n_kt) {
            for (int r = threadIdx.x; r < BN; r += NT) rows_k[r] = rows_v[r];  // (after the barrier: K_j's loads are done)
            __syncthreads();
            load_paged<HD, NT>(sK, Kc, rows_k, ldk, (j + 1) * BN, L, threadIdx.x);
            cp_commit();
        }
        pv_tile<HD>(o, pf, a0, a1, sV, b.vo, max(lim, 0));
        if ((j + 1) % KT == 0 || j + 1 == n_kt) {  // the end of split j / KT
            const float lq0 = quad_sum(l0), lq1 = quad_sum(l1);
            if (j < KT) {
#pragma unroll
                for (int i = 0; i < HD / 8; i++)
#pragma unroll
                    for (int e = 0; e < 4; e++) Os[(4 * i + e) * NT] = o[i][e];
                M0 = m0, M1 = m1, L0 = lq0, L1 = lq1;
            } else {
                float a, bb;
                if (fold_row(M0, L0, m0, lq0, a, bb)) {
#pragma unroll
                    for (int i = 0; i < HD / 8; i++)
#pragma unroll
                        for (int e = 0; e < 2; e++) Os[(4 * i + e) * NT] = fold_el(Os[(4 * i + e) * NT], o[i][e], a, bb);
                }
                if (fold_row(M1, L1, m1, lq1, a, bb)) {
#pragma unroll
                    for (int i = 0; i < HD / 8; i++)
#pragma unroll
                        for (int e = 2; e < 4; e++) Os[(4 * i + e) * NT] = fold_el(Os[(4 * i + e) * NT], o[i][e], a, bb);
                }
            }
#pragma unroll
            for (int i = 0; i < HD / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
            m0 = m1 = -1e30f;
            l0 = l1 = 0.f;
        }
    }
    const float i0 = inv_of(L0), i1 = inv_of(L1);
    const int ldo = nH * HD;
    bf16 *Og = out + (size_t)b.row0 * ldo + b.h * HD;  // [n, ldo]
#pragma unroll
    for (int nd = 0; nd < HD / 8; nd++) {
        const int c = nd * 8 + 2 * b.t4;
        const float *On = Os + 4 * nd * NT;
        if (b.qi0 < b.n) *(uint32_t *)(Og + (size_t)b.qi0 * ldo + c) = pack_bf16(__fmul_rn(On[0], i0), __fmul_rn(On[NT], i0));
        if (b.qi1 < b.n)
            *(uint32_t *)(Og + (size_t)b.qi1 * ldo + c) = pack_bf16(__fmul_rn(On[2 * NT], i1), __fmul_rn(On[3 * NT], i1));
    }
}

// ---- decode: one new token per sequence -----------------------------------------------------------

// A work item: .x = batch sequence, .y = kv head, .z = split, .w = slot of its split 0 in the partials
// ([slot + split][group row][hd + 2]: m, l, o). The (sequence, kv head) has ceil((pos + 1) / SPLIT)
// splits; its counter is counters[sequence · nKV + kv head].
// Two load schedules, the same instructions on the data (so the same bits):
//   DB (two tile buffers, 36 KB for hd 128, 6 CTAs per SM): V_j is loaded while S_j = Q K_j^T is
//     computed and K_{j+1} while O += P V_j — the shorter chain per warp, for batches whose items all
//     fit on the device at once;
//   one buffer for K and then V (20 KB: 10 CTAs per SM, ≤ 168 registers, no spills): each load waits
//     for the previous tile's use, but 10 warps per SM hide more latency than 6 — for large batches
//     (bs 256: 123 → 107 µs per layer, 1.80 → 2.07 TB/s; slower below ~800 items).
// ragd_k_paged_decode picks by the number of items (decode_db_items).
template <int HD, bool DB>
__global__ void __launch_bounds__(32, 10)
    paged_decode_kernel(const bf16 *qkv, bf16 *out, const bf16 *kc, const bf16 *vc, const int32_t *seq_start,
                        const int32_t *pos0, const int32_t *blk_start, const int32_t *blocks, int bs_shift,
                        const int4 *items, const int *n_items, float *part, int *counters, int nH, int nKV,
                        float scale_log2) {
    extern __shared__ uint4 smem_raw[];
    constexpr uint32_t TB = tile_bytes(HD);
    // sK: the K tile (and the V tile without DB); sV: the V tile; sQ: [16][HD]
    const uint32_t sK = smem_addr(smem_raw), sV = DB ? sK + TB : sK, sQ = sV + TB;
    const int G = nH / nKV, ldq = (nH + 2 * nKV) * HD, ldk = nKV * HD, lane = threadIdx.x;
    const int mi = lane >> 3, mr = lane & 7, g = lane >> 2, t4 = lane & 3;
    const uint32_t qo = frag_off<HD>(mi & 1, mi >> 1, mr), ko = frag_off<HD>(mi >> 1, mi & 1, mr),
                   vo = frag_off<HD>(mi & 1, mi >> 1, mr);
    __shared__ int s_last;
    __shared__ uint32_t rows_t[SPLIT];  // cache rows of the split's tiles (K and V), looked up at its start
    const int count = *n_items;
    for (int it = blockIdx.x; it < count; it += gridDim.x) {
        const int4 w = items[it];
        const int si = w.x, kvh = w.y, c = w.z;
        const int row = seq_start[si], p = pos0[si];  // the token's batch row and position
        const int ns = p / SPLIT + 1, cidx = si * nKV + kvh;
        const int L = p + 1;
        const int32_t *bl = blocks + blk_start[si];
        const bf16 *Kc = kc + kvh * HD, *Vc = vc + kvh * HD;
        // Q: the group's heads as rows 0..G-1 of a [16][HD] tile, the rest zero
        {
            constexpr int CH = HD / 8;
            for (int idx = lane; idx < 16 * CH; idx += 32) {
                const int r = idx / CH, ch = idx % CH;
                const bf16 *src = qkv + (size_t)row * ldq + (size_t)(kvh * G + min(r, G - 1)) * HD + ch * 8;
                cp_async16(sQ + (uint32_t)(r * HD + ((ch ^ (r & 7)) << 3)) * 2, src, r < G ? 16 : 0);
            }
        }
        const int kt0 = c * KT, kt1 = min((c + 1) * KT, (L + BN - 1) / BN);
        // every tile's block-table lookups at once: one dependent round trip per split, not per tile
        for (int j = kt0; j < kt1; j++) paged_rows<32>(rows_t + (j - kt0) * BN, bl, bs_shift, j * BN, L, lane);
        __syncwarp();
        load_paged<HD, 32>(sK, Kc, rows_t, ldk, kt0 * BN, L, lane);
        cp_commit();
        float o[HD / 8][4];
#pragma unroll
        for (int i = 0; i < HD / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
        float m0 = -1e30f, m1 = -1e30f, l0 = 0.f, l1 = 0.f;
        for (int j = kt0; j < kt1; j++) {
            const uint32_t *rows_j = rows_t + (j - kt0) * BN;
            cp_wait<0>();
            __syncwarp();  // K_j (and Q) visible to every lane
            if (DB) {      // V_j into its own buffer while S_j is computed
                load_paged<HD, 32>(sV, Vc, rows_j, ldk, j * BN, L, lane);
                cp_commit();
            }
            const int kb = j * BN;
            const bool mask = kb + BN - 1 > p;
            const int lim = kb + BN - 1 <= p ? BN : p - kb + 1;
            float s[BN / 8][4];
            qk_tile<HD>(s, [&](int kk, uint32_t(&q)[4]) { ldsm4(sQ + (qo ^ (kk << 5)), q); }, sK, ko, lim);
            if (!DB) {
                __syncwarp();  // every lane has read K_j: V_j may overwrite it
                load_paged<HD, 32>(sV, Vc, rows_j, ldk, kb, L, lane);
                cp_commit();
            }
            uint32_t pf[BN / 8][2];
            float a0, a1;
            softmax_tile(s, pf, m0, m1, l0, l1, a0, a1, mask, p - kb - 2 * t4, p - kb - 2 * t4, scale_log2);
            cp_wait<0>();
            __syncwarp();  // V_j visible to every lane (DB: every lane is done with K_j)
            if (DB && j + 1 < kt1) {
                load_paged<HD, 32>(sK, Kc, rows_j + BN, ldk, (j + 1) * BN, L, lane);
                cp_commit();
            }
            pv_tile<HD>(o, pf, a0, a1, sV, vo, lim);
            __syncwarp();  // every lane has read V_j
            if (!DB && j + 1 < kt1) {
                load_paged<HD, 32>(sK, Kc, rows_j + BN, ldk, (j + 1) * BN, L, lane);
                cp_commit();
            }
        }
        const float lq0 = quad_sum(l0), lq1 = quad_sum(l1);
        const int ldo = nH * HD;
        bf16 *Og = out + (size_t)row * ldo + (size_t)kvh * G * HD;  // rows of the group: heads kvh·G + r
        if (ns == 1) {  // the state after split 0 is the result
            const float i0 = inv_of(lq0), i1 = inv_of(lq1);
#pragma unroll
            for (int nd = 0; nd < HD / 8; nd++) {
                const int col = nd * 8 + 2 * t4;
                if (g < G) *(uint32_t *)(Og + (size_t)g * HD + col) = pack_bf16(__fmul_rn(o[nd][0], i0), __fmul_rn(o[nd][1], i0));
                if (g + 8 < G)
                    *(uint32_t *)(Og + (size_t)(g + 8) * HD + col) = pack_bf16(__fmul_rn(o[nd][2], i1), __fmul_rn(o[nd][3], i1));
            }
            continue;
        }
        // write this split's state: [slot][r][0] = m, [1] = l, [2..] = o
        const size_t stride = (size_t)HD + 2;
        float *P = part + ((size_t)(w.w + c) * G) * stride;
        if (g < G) {
            float *pr = P + (size_t)g * stride;
            if (t4 == 0) pr[0] = m0, pr[1] = lq0;
#pragma unroll
            for (int nd = 0; nd < HD / 8; nd++) pr[2 + nd * 8 + 2 * t4] = o[nd][0], pr[3 + nd * 8 + 2 * t4] = o[nd][1];
        }
        if (g + 8 < G) {
            float *pr = P + (size_t)(g + 8) * stride;
            if (t4 == 0) pr[0] = m1, pr[1] = lq1;
#pragma unroll
            for (int nd = 0; nd < HD / 8; nd++) pr[2 + nd * 8 + 2 * t4] = o[nd][2], pr[3 + nd * 8 + 2 * t4] = o[nd][3];
        }
        __threadfence();
        __syncwarp();
        if (lane == 0) s_last = atomicAdd(&counters[cidx], 1) == ns - 1;
        __syncwarp();
        if (!s_last) continue;
        // the last split of this (sequence, kv head) to finish folds all of them, in split order; any
        // lane may compute any element: the operations per element are those of the function
        __threadfence();
        const float *P0 = part + (size_t)w.w * G * stride;
        // Each lane folds two elements (e, e + 32) at a time and loads FU splits' states before folding
        // them: the fold was a chain of dependent L2 round trips (one per split and element), ~5 µs per
        // (sequence, kv head) — only the load schedule changes, each element folds in split order.
        constexpr int FU = 4;
        for (int e0 = lane; e0 < G * HD; e0 += 64) {  // G·HD is a multiple of 64: e0 + 32 is an element too
            const float *pr[2];
            int rr[2], cl[2];
            float M[2], Ls[2], Ov[2];
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int e = e0 + 32 * h;  // element e: row e / HD, column e % HD
                rr[h] = e / HD, cl[h] = e % HD;
                pr[h] = P0 + (size_t)rr[h] * stride;
                M[h] = __ldcg(pr[h]), Ls[h] = __ldcg(pr[h] + 1), Ov[h] = __ldcg(pr[h] + 2 + cl[h]);
            }
            for (int c0 = 1; c0 < ns; c0 += FU) {
                float mq[2][FU], lq[2][FU], oq[2][FU];
#pragma unroll
                for (int k = 0; k < FU; k++)
#pragma unroll
                    for (int h = 0; h < 2; h++)
                        if (c0 + k < ns) {
                            const float *q = pr[h] + (size_t)(c0 + k) * G * stride;
                            mq[h][k] = __ldcg(q), lq[h][k] = __ldcg(q + 1), oq[h][k] = __ldcg(q + 2 + cl[h]);
                        }
#pragma unroll
                for (int k = 0; k < FU; k++)
#pragma unroll
                    for (int h = 0; h < 2; h++)
                        if (c0 + k < ns) {
                            float a, bb;
                            if (fold_row(M[h], Ls[h], mq[h][k], lq[h][k], a, bb)) Ov[h] = fold_el(Ov[h], oq[h][k], a, bb);
                        }
            }
#pragma unroll
            for (int h = 0; h < 2; h++)
                Og[(size_t)rr[h] * HD + cl[h]] = __float2bfloat16_rn(__fmul_rn(Ov[h], inv_of(Ls[h])));
        }
        if (lane == 0) counters[cidx] = 0;  // ready for the next launch
    }
}

// decode: the K and V tiles (one buffer for both without DB) and the [16][hd] Q tile
constexpr int smem_decode(int hd, bool db) { return (db ? 2 : 1) * (int)tile_bytes(hd) + 16 * hd * 2; }
// K, V, Q tiles and the running O (NT threads × hd/2 floats = one more tile of f32 pairs)
constexpr uint32_t smem_prefill(int hd) { return 3 * tile_bytes(hd) + (uint32_t)NT * (uint32_t)hd / 2 * 4; }

template <int HD, bool DB>
cudaError_t init_decode() {
    cudaError_t e = cudaFuncSetAttribute(paged_decode_kernel<HD, DB>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         smem_decode(HD, DB));
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(paged_decode_kernel<HD, DB>, cudaFuncAttributePreferredSharedMemoryCarveout,
                                 (int)cudaSharedmemCarveoutMaxShared);
    return e;
}

template <int HD>
cudaError_t init_kernels() {
    cudaError_t e = cudaFuncSetAttribute(paged_prefill_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         (int)smem_prefill(HD));
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(paged_prefill_kernel<HD>, cudaFuncAttributePreferredSharedMemoryCarveout,
                                 (int)cudaSharedmemCarveoutMaxShared);
    if (e == cudaSuccess) e = init_decode<HD, false>();
    if (e == cudaSuccess) e = init_decode<HD, true>();
    return e;
}

template <int HD, bool DB>
void launch_decode(int grid, const bf16 *qkv, bf16 *out, const bf16 *kc, const bf16 *vc, const int32_t *seq_start,
                   const int32_t *pos0, const int32_t *blk_start, const int32_t *blocks, int shift, const int4 *items,
                   const int *n_items, float *part, int *counters, int nH, int nKV, float scale_log2, cudaStream_t st) {
    paged_decode_kernel<HD, DB><<<grid, 32, smem_decode(HD, DB), st>>>(qkv, out, kc, vc, seq_start, pos0, blk_start,
                                                                       blocks, shift, items, n_items, part, counters,
                                                                       nH, nKV, scale_log2);
}

template <int HD, bool DB>
int occupancy_of() {
    int n = 0;
    return cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, paged_decode_kernel<HD, DB>, 32, smem_decode(HD, DB)) ==
                   cudaSuccess
               ? n
               : -1;
}

int log2_of(int bs) {
    int s = 0;
    while ((1 << s) < bs) s++;
    return (1 << s) == bs ? s : -1;
}

}  // namespace

cudaError_t ragd_k_paged_init() {
    cudaError_t e = init_kernels<64>();
    if (e == cudaSuccess) e = init_kernels<128>();
    return e;
}

cudaError_t ragd_k_paged_prefill(const bf16 *qkv, bf16 *out, const bf16 *kc, const bf16 *vc, const int32_t *seq_start,
                                 const int32_t *pos0, const int32_t *blk_start, const int32_t *blocks, int bs,
                                 const int2 *tiles, int n_tiles, int nH, int nKV, int hd, cudaStream_t st) {
    const int shift = log2_of(bs);
    if (n_tiles <= 0 || nH <= 0 || nKV <= 0 || nH % nKV || shift < 0 || (long long)n_tiles * nH > 0x7fffffff)
        return cudaErrorInvalidValue;
    const float scale_log2 = (float)(1.0 / std::sqrt((double)hd) * 1.4426950408889634);
    if (hd == 128)
        paged_prefill_kernel<128><<<n_tiles * nH, NT, smem_prefill(128), st>>>(
            qkv, out, kc, vc, seq_start, pos0, blk_start, blocks, shift, tiles, nH, nKV, scale_log2);
    else if (hd == 64)
        paged_prefill_kernel<64><<<n_tiles * nH, NT, smem_prefill(64), st>>>(
            qkv, out, kc, vc, seq_start, pos0, blk_start, blocks, shift, tiles, nH, nKV, scale_log2);
    else return cudaErrorInvalidValue;
    return cudaGetLastError();
}

cudaError_t ragd_k_paged_decode(const bf16 *qkv, bf16 *out, const bf16 *kc, const bf16 *vc, const int32_t *seq_start,
                                const int32_t *pos0, const int32_t *blk_start, const int32_t *blocks, int bs,
                                const int4 *items, const int *n_items, int grid, int db, float *part, int *counters,
                                int nH, int nKV, int hd, cudaStream_t st) {
    const int shift = log2_of(bs);
    if (grid <= 0 || nH <= 0 || nKV <= 0 || nH % nKV || nH / nKV > 16 || shift < 0) return cudaErrorInvalidValue;
    const float scale_log2 = (float)(1.0 / std::sqrt((double)hd) * 1.4426950408889634);
    auto go = [&](auto launch) {
        launch(grid, qkv, out, kc, vc, seq_start, pos0, blk_start, blocks, shift, items, n_items, part, counters, nH,
               nKV, scale_log2, st);
    };
    if (hd == 128) db ? go(launch_decode<128, true>) : go(launch_decode<128, false>);
    else if (hd == 64) db ? go(launch_decode<64, true>) : go(launch_decode<64, false>);
    else return cudaErrorInvalidValue;
    return cudaGetLastError();
}

int ragd_k_paged_decode_ctas_per_sm(int hd, int db) {
    if (hd == 128) return db ? occupancy_of<128, true>() : occupancy_of<128, false>();
    if (hd == 64) return db ? occupancy_of<64, true>() : occupancy_of<64, false>();
    return -1;
}

int ragd_paged_work(int n_seqs, const int32_t *seq_start, const int32_t *pos0, int nKV, int2 *tiles, int tile_cap,
                    int *n_tiles, int4 *items, int item_cap, int *n_items, int32_t *n_splits_total) {
    // decode rows (one new token) → decode items; the rest → prefill tiles, longest work first
    int nt = 0, ni = 0, slot = 0;
    int max_nt = 0;
    for (int s = 0; s < n_seqs; s++) {
        const int n = seq_start[s + 1] - seq_start[s];
        if (n == 1) {
            const int ns = (pos0[s] + 1 + SPLIT - 1) / SPLIT;
            for (int h = 0; h < nKV; h++) {
                for (int c = 0; c < ns; c++) {
                    if (ni == item_cap) return -1;
                    items[ni++] = make_int4(s, h, c, slot);
                }
                if (ns > 1) slot += ns;
            }
        } else {
            max_nt = std::max(max_nt, ragd_cdiv(n, BM));
        }
    }
    for (int j = max_nt - 1; j >= 0; j--)
        for (int s = 0; s < n_seqs; s++) {
            const int n = seq_start[s + 1] - seq_start[s];
            if (n > 1 && ragd_cdiv(n, BM) > j) {
                if (nt == tile_cap) return -1;
                tiles[nt++] = make_int2(s, j * BM);
            }
        }
    *n_tiles = nt;
    *n_items = ni;
    if (n_splits_total) *n_splits_total = slot;
    return 0;
}
