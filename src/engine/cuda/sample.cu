// sample.cu — token sampling on the device: for each active row the same bits as ragd_sample_row
// (engine/sample.c): token, flags, logprob, top log-probabilities, n_kept. The contract and the
// arithmetic live in engine/sample_math.h (shared with the C file); this file only decides how to find
// the same integers fast. Every decision compares exact 64-bit integer sums, so neither the order of a
// reduction nor the number of CTAs changes a result.
//
// Three kernels, graph-capturable (launch configuration from n_rows and n_vocab only, no allocation,
// no host reads; the workspace is carved per row):
//   stats  grid (G, rows) × 256: per chunk of the row, the largest order key and its first index, the
//          smallest key (negative NaNs) and the smallest finite key. CTA 0 zeroes the row's sums.
//   mass   grid (G, rows) × 256: combines the G partials (m, nonfinite), then per chunk:
//          S1 = Σ FX(E(x - m)); r = FX(E(y)) with y = scaled(x - m); a histogram of NB buckets of y
//          (count and mass per bucket, global integer atomics); #{r >= M} and their mass (min-p).
//          Bucket b = min(NB - 1, trunc(-y · 2^e)), 2^e chosen from the row's spread: non-decreasing
//          along the order, so each bucket is a contiguous run of the order.
//   select grid (rows) × 1024: prefix sums over the histogram give, for any position or prefix mass,
//          the bucket holding it. Gathering that bucket (or a neighbourhood of up to CAP ids) into shared
//          memory and sorting it by order value (bitonic) gives the exact element and its exact prefix
//          count / mass. A bucket of more than CAP ids (ties, dense rows) is split by a radix walk over
//          the 64-bit order value (min/max, then 256 sub-ranges per pass) until the piece holding the
//          target fits. Requests: the first n_top ids; the K-th id (its inclusive prefix mass is R);
//          the first id whose prefix mass reaches P (top-p); the drawn id (prefix mass > D).
//          A request already inside the gathered run is answered without a pass.
// Typical cost for V = 151,669: greedy = stats only (+ two near-empty kernels); sampling with top-p,
// logprob and top-5 = stats, mass (two double-precision E per id) and 2-3 gather passes.
//
// out.nonfinite == 2 reports a broken invariant (a gather that found another count than the
// histogram); it is never expected, and the row then fails like a nonfinite one.
#include <cstdint>

#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/kernels.h"

namespace {

#ifndef RAGD_SAMPLE_NT_A
#define RAGD_SAMPLE_NT_A 256   // threads of stats / mass
#endif
#ifndef RAGD_SAMPLE_NT_C
#define RAGD_SAMPLE_NT_C 1024  // threads of select
#endif
constexpr int NT_A = RAGD_SAMPLE_NT_A;
constexpr int NT_C = RAGD_SAMPLE_NT_C;
constexpr int NB = 1024;       // histogram buckets
constexpr int CAP = 2048;      // ids gathered at once (power of two)
constexpr int NSUB = 256;      // sub-ranges per radix pass
constexpr int GMAX = 32;       // CTAs per row in stats / mass
constexpr uint32_t KEY_NINF = 0x007FFFFFu; // ragd_sm_key(-inf)
constexpr uint32_t KEY_PINF = 0xFF800000u; // ragd_sm_key(+inf)
typedef unsigned long long u64;

struct Part {            // one chunk's stats
    uint32_t kmax;       // largest order key
    int32_t amax;        // its first index
    uint32_t kmin;       // smallest key (below KEY_NINF: a negative NaN)
    uint32_t kfmin;      // smallest key above KEY_NINF
};

struct RowWs {           // per row, in the caller's workspace
    u64 mass[NB];        // bucket masses (sum of r)
    uint32_t cnt[NB];    // bucket counts
    u64 s1;              // Σ FX(E(x - m))
    u64 tm;              // Σ r over r >= M
    uint32_t nm;         // #{r >= M}
    uint32_t pad;
    Part part[GMAX];
};

// CTAs per row for stats / mass: about 128 CTAs in all, at least 4096 ids each, at most GMAX.
int split_of(int n_rows, int V) {
    int by_v = (V + 4095) / 4096, by_rows = (128 + n_rows - 1) / n_rows;
    int g = by_v < by_rows ? by_v : by_rows;
    return g < 1 ? 1 : (g > GMAX ? GMAX : g);
}
__device__ __forceinline__ void chunk_of(int V, int G, int g, int *lo, int *hi) {
    int ch = ((V + G - 1) / G + 3) & ~3; // multiple of 4: chunks start 16-byte aligned when the row is
    *lo = g * ch < V ? g * ch : V;
    *hi = (g + 1) * ch < V ? (g + 1) * ch : V;
}

// ---- per-row context (every thread computes it from the same inputs) ---------------------------

struct Bans {             // banned ids count as -inf
    const int32_t *ban;  // [n]
    int n, lo, hi;       // lo..hi: their range (a cheap test before the list)
    __device__ explicit Bans(const ragd_sample_params *p) : ban(p->ban), lo(0x7FFFFFFF), hi(-1) {
        n = p->n_ban < 0 ? 0 : (p->n_ban > RAGD_SAMPLE_MAX_BAN ? RAGD_SAMPLE_MAX_BAN : p->n_ban);
        for (int j = 0; j < n; j++) {
            lo = min(lo, ban[j]);
            hi = max(hi, ban[j]);
        }
    }
    __device__ __forceinline__ float apply(int i, float x) const {
        if (i >= lo && i <= hi && ragd_sm_banned_list(ban, n, i)) return ragd_sm_bitsf(0xFF800000u);
        return x;
    }
};

struct RowCtx {
    const float *row;    // [V]
    int V;
    ragd_sm_plan pl;
    bool sampling, need_hist, nonfinite;
    float m, sc;         // maximum; bucket scale 2^e
    int32_t amax;        // first index of the maximum
    Bans bans;
    __device__ explicit RowCtx(const ragd_sample_params *p) : bans(p) {}
};

__device__ void row_ctx(RowCtx &c, const ragd_sample_params *p, const Part *part, int G, const float *row, int V) {
    c.row = row;
    c.V = V;
    ragd_sm_plan_make(p, V, &c.pl);
    c.sampling = !c.pl.greedy;
    c.need_hist = c.sampling || c.pl.n_top > 0;
    uint32_t kmax = 0, kmin = 0xFFFFFFFFu, kfmin = 0xFFFFFFFFu;
    int32_t amax = 0x7FFFFFFF;
    for (int g = 0; g < G; g++) {
        Part q = part[g];
        if (q.kmax > kmax || (q.kmax == kmax && q.amax < amax)) {
            kmax = q.kmax;
            amax = q.amax;
        }
        kmin = min(kmin, q.kmin);
        kfmin = min(kfmin, q.kfmin);
    }
    c.nonfinite = kmax >= KEY_PINF || kmin < KEY_NINF || kmax == KEY_NINF;
    c.m = ragd_sm_key_value(kmax);
    c.amax = amax;
    // bucket scale: the spread Y of y over the row (capped at 32: below y = -32 every r is 0) maps
    // onto at most NB - 1 buckets
    float y_min = ragd_sm_scaled(ragd_sm_fsub(ragd_sm_key_value(kfmin), c.m), c.pl.inv_t);
    float Y = -y_min;
    if (!(Y < 32.0f)) Y = 32.0f;
    int e = 0;
    if (Y > 0.0f) e = (int)((ragd_sm_fbits(ragd_sm_fdiv((float)(NB - 1), Y)) >> 23) & 0xFF) - 127;
    e = e < 0 ? 0 : (e > 100 ? 100 : e);
    c.sc = ragd_sm_bitsf((uint32_t)(e + 127) << 23);
}

__device__ __forceinline__ int bucket_of(float y, float sc) {
    float v = ragd_sm_fmul(-y, sc); // >= 0 (y <= 0); inf for -inf
    v = fminf(v, (float)(NB - 1));  // also NaN → NB - 1
    return __float2int_rz(v);
}
// x (bans applied), y and bucket of id i whose raw logit is xr
__device__ __forceinline__ void elem(const RowCtx &c, int i, float xr, float &x, float &y, int &b) {
    x = c.bans.apply(i, xr);
    y = ragd_sm_scaled(ragd_sm_fsub(x, c.m), c.pl.inv_t);
    b = bucket_of(y, c.sc);
}

// Calls f(i, x) for every i in [lo, hi) of row, spread over NT threads (16-byte loads when aligned).
template <int NT, class F>
__device__ __forceinline__ void for_range(const float *row, int lo, int hi, F f) {
    const int tid = threadIdx.x;
    if ((((uintptr_t)(row + lo)) & 15) == 0) {
        const int n4 = (hi - lo) >> 2;
        const float4 *r4 = (const float4 *)(row + lo);
#pragma unroll 4
        for (int j = tid; j < n4; j += NT) {
            float4 v = r4[j];
            int i = lo + 4 * j;
            f(i, v.x);
            f(i + 1, v.y);
            f(i + 2, v.z);
            f(i + 3, v.w);
        }
        for (int i = lo + 4 * n4 + tid; i < hi; i += NT) f(i, row[i]);
    } else {
        for (int i = lo + tid; i < hi; i += NT) f(i, row[i]);
    }
}

// ---- block reductions (every thread gets the result) -------------------------------------------

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    return v;
}
template <int NT>
__device__ u64 blk_sum(u64 v, u64 *red) {
    v = warp_sum(v);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    u64 t = 0;
    for (int w = 0; w < NT / 32; w++) t += red[w];
    __syncthreads();
    return t;
}
template <int NT>
__device__ u64 blk_min(u64 v, u64 *red) {
    for (int o = 16; o > 0; o >>= 1) v = min(v, (u64)__shfl_xor_sync(0xFFFFFFFFu, v, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    u64 t = ~0ull;
    for (int w = 0; w < NT / 32; w++) t = min(t, red[w]);
    __syncthreads();
    return t;
}
template <int NT>
__device__ u64 blk_max(u64 v, u64 *red) {
    for (int o = 16; o > 0; o >>= 1) v = max(v, (u64)__shfl_xor_sync(0xFFFFFFFFu, v, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    u64 t = 0;
    for (int w = 0; w < NT / 32; w++) t = max(t, red[w]);
    __syncthreads();
    return t;
}
// #{j in [0, n) : pred(j)}
template <int NT, class F>
__device__ uint32_t blk_count(int n, u64 *red, F pred) {
    u64 c = 0;
    for (int j = threadIdx.x; j < n; j += NT) c += pred(j) ? 1 : 0;
    return (uint32_t)blk_sum<NT>(c, red);
}
// In-place inclusive prefix sum of a[0..N) (N a multiple of NT; each thread owns N/NT in a row);
// returns the total.
template <int NT, int N, class T>
__device__ T blk_scan(T *a, u64 *red) {
    constexpr int E = N / NT;
    const int base = threadIdx.x * E, lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    T loc = 0;
    for (int k = 0; k < E; k++) a[base + k] = loc += a[base + k];
    T inc = loc;
    for (int d = 1; d < 32; d <<= 1) {
        T t = __shfl_up_sync(0xFFFFFFFFu, inc, d);
        if (lane >= d) inc += t;
    }
    if (lane == 31) red[w] = (u64)inc;
    __syncthreads();
    T off = inc - loc, total = 0;
    for (int v = 0; v < NT / 32; v++) {
        if (v < w) off += (T)red[v];
        total += (T)red[v];
    }
    for (int k = 0; k < E; k++) a[base + k] += off;
    __syncthreads();
    return total;
}

// Per-thread run-length buffer in front of shared-memory histogram atomics: consecutive ids of a
// thread often land in one bucket (peaked rows put almost every id in the last one).
struct RunLen {
    int b = -1;
    uint32_t n = 0;
    u64 m = 0;
    __device__ __forceinline__ void add(int nb, u64 r, uint32_t *hc, u64 *hm) {
        if (nb != b) {
            flush(hc, hm);
            b = nb;
        }
        n++;
        m += r;
    }
    __device__ __forceinline__ void flush(uint32_t *hc, u64 *hm) {
        if (n) {
            atomicAdd(&hc[b], n);
            if (m) atomicAdd(&hm[b], m);
        }
        n = 0;
        m = 0;
    }
};

// ---- kernel 1: stats ---------------------------------------------------------------------------

template <int NT>
__global__ void __launch_bounds__(NT, 1) k_stats(const float *logits, size_t ld, int V, const ragd_sample_params *params,
                                              RowWs *ws, int G) {
    __shared__ uint32_t s_k[NT / 32], s_mn[NT / 32], s_fm[NT / 32];
    __shared__ int32_t s_i[NT / 32];
    const int row = blockIdx.y, g = blockIdx.x, tid = threadIdx.x;
    const ragd_sample_params *p = params + row;
    if (!p->active) return;
    RowWs *W = ws + row;
    if (g == 0) {
        for (int j = tid; j < NB; j += NT) {
            W->mass[j] = 0;
            W->cnt[j] = 0;
        }
        if (tid == 0) {
            W->s1 = 0;
            W->tm = 0;
            W->nm = 0;
        }
    }
    Bans bans(p);
    int lo, hi;
    chunk_of(V, G, g, &lo, &hi);
    uint32_t kmax = 0, kmin = 0xFFFFFFFFu, kfmin = 0xFFFFFFFFu;
    int32_t amax = 0x7FFFFFFF;
    for_range<NT>(logits + (size_t)row * ld, lo, hi, [&](int i, float xr) {
        uint32_t k = ragd_sm_key(bans.apply(i, xr));
        if (k > kmax || (k == kmax && i < amax)) {
            kmax = k;
            amax = i;
        }
        kmin = min(kmin, k);
        if (k > KEY_NINF) kfmin = min(kfmin, k);
    });
    for (int o = 16; o > 0; o >>= 1) {
        uint32_t ok = __shfl_xor_sync(0xFFFFFFFFu, kmax, o);
        int32_t oi = __shfl_xor_sync(0xFFFFFFFFu, amax, o);
        if (ok > kmax || (ok == kmax && oi < amax)) {
            kmax = ok;
            amax = oi;
        }
        kmin = min(kmin, (uint32_t)__shfl_xor_sync(0xFFFFFFFFu, kmin, o));
        kfmin = min(kfmin, (uint32_t)__shfl_xor_sync(0xFFFFFFFFu, kfmin, o));
    }
    if ((tid & 31) == 0) {
        s_k[tid >> 5] = kmax;
        s_i[tid >> 5] = amax;
        s_mn[tid >> 5] = kmin;
        s_fm[tid >> 5] = kfmin;
    }
    __syncthreads();
    if (tid == 0) {
        for (int w = 1; w < NT / 32; w++) {
            if (s_k[w] > kmax || (s_k[w] == kmax && s_i[w] < amax)) {
                kmax = s_k[w];
                amax = s_i[w];
            }
            kmin = min(kmin, s_mn[w]);
            kfmin = min(kfmin, s_fm[w]);
        }
        W->part[g] = Part{kmax, amax, kmin, kfmin};
    }
}

// ---- kernel 2: sums and the bucket histogram ---------------------------------------------------

template <int NT>
__global__ void __launch_bounds__(NT, 1) k_mass(const float *logits, size_t ld, int V, const ragd_sample_params *params,
                                             RowWs *ws, int G) {
    __shared__ uint32_t h_c[NB];
    __shared__ u64 h_m[NB];
    __shared__ u64 red[32];
    const int row = blockIdx.y, g = blockIdx.x, tid = threadIdx.x;
    const ragd_sample_params *p = params + row;
    if (!p->active) return;
    RowWs *W = ws + row;
    RowCtx c(p);
    row_ctx(c, p, W->part, G, logits + (size_t)row * ld, V);
    if (c.nonfinite || (!c.pl.need_lse && !c.need_hist)) return;
    const bool need_lse = c.pl.need_lse, need_hist = c.need_hist, sampling = c.sampling;
    const bool min_p_on = sampling && c.pl.min_p_on, same_t = c.pl.inv_t == 1.0f;
    const u64 M = c.pl.min_p_fx;
    if (need_hist)
        for (int j = tid; j < NB; j += NT) {
            h_c[j] = 0;
            h_m[j] = 0;
        }
    __syncthreads();
    int lo, hi;
    chunk_of(V, G, g, &lo, &hi);
    u64 s1 = 0, tm = 0, nm = 0;
    RunLen rl;
    for_range<NT>(c.row, lo, hi, [&](int i, float xr) {
        float x = c.bans.apply(i, xr);
        float d = ragd_sm_fsub(x, c.m);
        float e1 = 0.0f;
        if (need_lse) {
            e1 = ragd_sm_exp(d);
            s1 += ragd_sm_fx(e1);
        }
        if (need_hist) {
            float y = ragd_sm_scaled(d, c.pl.inv_t);
            u64 r = 0;
            if (sampling) r = ragd_sm_fx(need_lse && same_t ? e1 : ragd_sm_exp(y)); // y == d when inv_t == 1
            if (min_p_on && r >= M) {
                nm++;
                tm += r;
            }
            rl.add(bucket_of(y, c.sc), r, h_c, h_m);
        }
    });
    rl.flush(h_c, h_m);
    s1 = blk_sum<NT>(s1, red);
    tm = blk_sum<NT>(tm, red);
    nm = blk_sum<NT>(nm, red);
    if (tid == 0) {
        if (s1) atomicAdd(&W->s1, s1);
        if (tm) atomicAdd(&W->tm, tm);
        if (nm) atomicAdd(&W->nm, (uint32_t)nm);
    }
    if (need_hist)
        for (int j = tid; j < NB; j += NT) {
            if (h_c[j]) atomicAdd(&W->cnt[j], h_c[j]);
            if (h_m[j]) atomicAdd(&W->mass[j], h_m[j]);
        }
}

// ---- kernel 3: selection -----------------------------------------------------------------------

struct SelSmem {
    uint32_t cnt[NB];        // inclusive prefix counts of the buckets
    u64 mas[NB];             // inclusive prefix masses
    u64 a[CAP];              // gathered order values, descending (a contiguous run of the order)
    union {
        u64 am[CAP];         // inclusive prefix masses of a[] (relative to mass0)
        struct {
            uint32_t c[NSUB];
            u64 m[NSUB];
        } sub;               // radix walk histogram (invalidates a[])
    } u;
    u64 red[32];
    ragd_sample_out o;       // built by thread 0
    uint32_t ng_atomic;
    // the gathered run: positions [pos0, pos0 + ng) of the order, prefix mass before it mass0
    int valid, ng, pos0, err;
    u64 mass0, total;
    // radix walk result
    int sel;
    uint32_t w_bc, w_cnt;
    u64 w_bm;
};

enum { Q_COUNT = 0, Q_GE = 1, Q_GT = 2 }; // position tgt | first prefix mass >= tgt | first prefix mass > tgt

// Gathers the ids with blo <= bucket <= bhi and clo <= order value <= chi (expect of them, a contiguous
// run starting at position pos0 with prefix mass mass0 before it), sorts them, computes their masses.
template <int NT>
__device__ void gather(SelSmem &S, const RowCtx &c, int blo, int bhi, u64 clo, u64 chi, int pos0, u64 mass0,
                       uint32_t expect) {
    const int tid = threadIdx.x;
    if (tid == 0) S.ng_atomic = 0;
    __syncthreads();
    for_range<NT>(c.row, 0, c.V, [&](int i, float xr) {
        float x, y;
        int b;
        elem(c, i, xr, x, y, b);
        if (b >= blo && b <= bhi) {
            u64 o = ragd_sm_order(x, i);
            if (o >= clo && o <= chi) {
                uint32_t s = atomicAdd(&S.ng_atomic, 1u);
                if (s < (uint32_t)CAP) S.a[s] = o;
            }
        }
    });
    __syncthreads();
    const uint32_t got = S.ng_atomic;
    const int ng = got < (uint32_t)CAP ? (int)got : CAP;
    if (tid == 0 && got != expect) S.err = 1;
    int n2 = 1;
    while (n2 < ng) n2 <<= 1;
    for (int j = ng + tid; j < n2; j += NT) S.a[j] = 0; // sorts last
    __syncthreads();
    for (int k = 2; k <= n2; k <<= 1) { // bitonic sort, descending
        for (int j = k >> 1; j > 0; j >>= 1) {
            for (int i = tid; i < n2; i += NT) {
                int l = i ^ j;
                if (l > i) {
                    u64 va = S.a[i], vb = S.a[l];
                    bool desc = (i & k) == 0;
                    if (desc ? va < vb : va > vb) {
                        S.a[i] = vb;
                        S.a[l] = va;
                    }
                }
            }
            __syncthreads();
        }
    }
    for (int j = tid; j < CAP; j += NT)
        S.u.am[j] = (j < ng && c.sampling)
                        ? ragd_sm_mass(ragd_sm_key_value((uint32_t)(S.a[j] >> 32)), c.m, c.pl.inv_t)
                        : 0;
    __syncthreads();
    u64 total = blk_scan<NT, CAP>(S.u.am, S.red);
    if (tid == 0) {
        S.valid = 1;
        S.ng = ng;
        S.pos0 = pos0;
        S.mass0 = mass0;
        S.total = total;
    }
    __syncthreads();
}

// Bucket b holds more than CAP ids: narrows the order-value range [lo, hi] of b to a piece of at most
// CAP ids holding the target (t_rel: position or prefix mass relative to the bucket's start); bc / bm:
// count and mass of b's ids before the piece.
template <int NT>
__device__ void radix_walk(SelSmem &S, const RowCtx &c, int b, int kind, u64 t_rel, uint32_t count, u64 &lo_out,
                           u64 &hi_out, uint32_t &bc, u64 &bm, uint32_t &count_out) {
    const int tid = threadIdx.x;
    if (tid == 0) S.valid = 0;
    u64 lo = ~0ull, hi = 0;
    for_range<NT>(c.row, 0, c.V, [&](int i, float xr) {
        float x, y;
        int bb;
        elem(c, i, xr, x, y, bb);
        if (bb == b) {
            u64 o = ragd_sm_order(x, i);
            lo = min(lo, o);
            hi = max(hi, o);
        }
    });
    lo = blk_min<NT>(lo, S.red);
    hi = blk_max<NT>(hi, S.red);
    bc = 0;
    bm = 0;
    while (count > (uint32_t)CAP && hi > lo) { // distinct order values: hi > lo whenever count > 1
        const int nbits = 64 - ragd_sm_clz64(hi - lo);
        const int sh = nbits > 8 ? nbits - 8 : 0; // (hi - lo) >> sh < NSUB
        for (int j = tid; j < NSUB; j += NT) {
            S.u.sub.c[j] = 0;
            S.u.sub.m[j] = 0;
        }
        __syncthreads();
        RunLen rl;
        for_range<NT>(c.row, 0, c.V, [&](int i, float xr) {
            float x, y;
            int bb;
            elem(c, i, xr, x, y, bb);
            if (bb == b) {
                u64 o = ragd_sm_order(x, i);
                if (o >= lo && o <= hi) rl.add((int)((o - lo) >> sh), c.sampling ? ragd_sm_fx(ragd_sm_exp(y)) : 0, S.u.sub.c, S.u.sub.m);
            }
        });
        rl.flush(S.u.sub.c, S.u.sub.m);
        __syncthreads();
        if (tid == 0) { // walk the sub-ranges from the highest order value down
            uint32_t cc = bc;
            u64 mm = bm;
            int sel = -1;
            for (int j = NSUB - 1; j >= 0 && sel < 0; j--) {
                uint32_t nc = S.u.sub.c[j];
                u64 nmass = S.u.sub.m[j];
                bool hit = kind == Q_COUNT ? t_rel < (u64)cc + nc : (kind == Q_GE ? mm + nmass >= t_rel : mm + nmass > t_rel);
                if (hit && nc) sel = j;
                else {
                    cc += nc;
                    mm += nmass;
                }
            }
            if (sel < 0) {
                S.err = 1;
                sel = 0;
            }
            S.sel = sel;
            S.w_bc = cc;
            S.w_bm = mm;
            S.w_cnt = S.u.sub.c[sel];
        }
        __syncthreads();
        const u64 nlo = lo + ((u64)S.sel << sh), width = sh ? (1ull << sh) - 1 : 0;
        hi = hi - nlo < width ? hi : nlo + width;
        lo = nlo;
        bc = S.w_bc;
        bm = S.w_bm;
        count = S.w_cnt;
        __syncthreads(); // everyone has read S before the next pass clears it
    }
    lo_out = lo;
    hi_out = hi;
    count_out = count;
}

// Makes the gathered run hold the target and returns its index in a[] (every thread gets it).
template <int NT>
__device__ int resolve(SelSmem &S, const RowCtx &c, int kind, u64 tgt) {
    bool covered = false;
    if (S.valid) {
        if (kind == Q_COUNT) covered = tgt >= (u64)S.pos0 && tgt < (u64)S.pos0 + S.ng;
        else if (kind == Q_GE) covered = S.mass0 < tgt && tgt <= S.mass0 + S.total;
        else covered = S.mass0 <= tgt && tgt < S.mass0 + S.total;
    }
    if (!covered) {
        uint32_t b;
        if (kind == Q_COUNT) b = blk_count<NT>(NB, S.red, [&](int j) { return (u64)S.cnt[j] <= tgt; });
        else if (kind == Q_GE) b = blk_count<NT>(NB, S.red, [&](int j) { return S.mas[j] < tgt; });
        else b = blk_count<NT>(NB, S.red, [&](int j) { return S.mas[j] <= tgt; });
        if (b >= (uint32_t)NB) { // beyond the row: never for valid targets
            if (threadIdx.x == 0) S.err = 1;
            b = NB - 1;
        }
        const uint32_t cx = b ? S.cnt[b - 1] : 0, cb = S.cnt[b] - cx;
        const u64 mx = b ? S.mas[b - 1] : 0;
        if (cb <= (uint32_t)CAP) { // the bucket and its neighbours, up to CAP ids, those before it first
            const uint32_t ci = S.cnt[b];
            uint32_t blo = 0;
            if (ci > (uint32_t)CAP)
                blo = blk_count<NT>(NB, S.red, [&](int j) { return (j ? S.cnt[j - 1] : 0u) < ci - CAP; });
            const uint32_t base = blo ? S.cnt[blo - 1] : 0;
            const uint32_t bhi = blk_count<NT>(NB, S.red, [&](int j) { return S.cnt[j] <= base + CAP; }) - 1;
            gather<NT>(S, c, (int)blo, (int)bhi, 0, ~0ull, (int)base, blo ? S.mas[blo - 1] : 0, S.cnt[bhi] - base);
        } else {
            u64 lo, hi, bm;
            uint32_t bc, n;
            radix_walk<NT>(S, c, (int)b, kind, kind == Q_COUNT ? tgt - cx : tgt - mx, cb, lo, hi, bc, bm, n);
            gather<NT>(S, c, (int)b, (int)b, lo, hi, (int)(cx + bc), mx + bm, n);
        }
    }
    int idx;
    if (kind == Q_COUNT) idx = (int)(tgt - (u64)S.pos0);
    else if (kind == Q_GE) {
        const u64 m0 = S.mass0;
        idx = (int)blk_count<NT>(S.ng, S.red, [&](int j) { return m0 + S.u.am[j] < tgt; });
    } else {
        const u64 m0 = S.mass0;
        idx = (int)blk_count<NT>(S.ng, S.red, [&](int j) { return m0 + S.u.am[j] <= tgt; });
    }
    if (idx < 0 || idx >= S.ng) {
        if (threadIdx.x == 0) S.err = 1;
        idx = 0;
    }
    return idx;
}

template <int NT>
__global__ void __launch_bounds__(NT, 1) k_select(const float *logits, size_t ld, int V, const ragd_sample_params *params,
                                               ragd_sample_out *out, RowWs *ws, int G) {
    __shared__ SelSmem S;
    const int row = blockIdx.x, tid = threadIdx.x;
    const ragd_sample_params *p = params + row;
    if (!p->active) return;
    RowWs *W = ws + row;
    RowCtx c(p);
    row_ctx(c, p, W->part, G, logits + (size_t)row * ld, V);
    if (tid == 0) {
        ragd_sm_out_init(&S.o);
        S.valid = 0;
        S.err = 0;
    }
    if (c.nonfinite) {
        if (tid == 0) {
            S.o.nonfinite = 1;
            out[row] = S.o;
        }
        return;
    }
    const double lse = c.pl.need_lse ? ragd_sm_log_fx(W->s1) : 0.0;
    if (c.need_hist) {
        for (int j = tid; j < NB; j += NT) {
            S.cnt[j] = W->cnt[j];
            S.mas[j] = W->mass[j];
        }
        __syncthreads();
        blk_scan<NT, NB>(S.cnt, S.red);
        blk_scan<NT, NB>(S.mas, S.red);
    }
    __syncthreads();

    // the first n_top ids
    const int nt = c.pl.n_top;
    if (nt > 0) {
        int idx = resolve<NT>(S, c, Q_COUNT, (u64)(nt - 1));
        if (S.pos0 != 0) { // the run holds the n_top-th id but not the ones before it: gather them
            const u64 ct = S.a[idx];
            const uint32_t bt = blk_count<NT>(NB, S.red, [&](int j) { return S.cnt[j] <= (uint32_t)(nt - 1); });
            gather<NT>(S, c, 0, (int)bt, ct, ~0ull, 0, 0, (uint32_t)nt);
        }
        if (tid == 0) {
            for (int j = 0; j < nt; j++) {
                S.o.top_ids[j] = ragd_sm_order_id(S.a[j]);
                S.o.top_lp[j] = ragd_sm_logprob(ragd_sm_key_value((uint32_t)(S.a[j] >> 32)), c.m, lse);
            }
            S.o.n_top = nt;
        }
    }

    float x_tok = c.m;
    int32_t tok = c.amax, n_kept = 1;
    if (c.sampling) {
        const int K = c.pl.k;
        u64 R;
        if (K < V) {
            const uint32_t bk = blk_count<NT>(NB, S.red, [&](int j) { return S.cnt[j] <= (uint32_t)(K - 1); });
            const u64 mx = bk ? S.mas[bk - 1] : 0;
            if (bk < (uint32_t)NB && S.mas[bk] == mx) R = mx; // the K-th id's bucket has no mass
            else {
                int idx = resolve<NT>(S, c, Q_COUNT, (u64)(K - 1));
                R = S.mass0 + S.u.am[idx];
            }
        } else {
            R = S.mas[NB - 1];
        }
        u64 T = R;
        n_kept = K;
        if (c.pl.top_p_on) {
            const u64 P = ragd_sm_ceil_mul(p->top_p, R);
            int idx = resolve<NT>(S, c, Q_GE, P);
            const int np = S.pos0 + idx + 1;
            if (np < n_kept) {
                n_kept = np;
                T = S.mass0 + S.u.am[idx];
            }
        }
        if (c.pl.min_p_on) {
            uint32_t nm = W->nm;
            u64 tm = W->tm;
            if (nm < 1) { // min_p > 1 (refused by ragd_sample_check): the first id alone
                nm = 1;
                tm = RAGD_SM_ONE;
            }
            if ((int)nm < n_kept) {
                n_kept = (int)nm;
                T = tm;
            }
        }
        const u64 D = ragd_sm_mulhi(ragd_sm_rng(p->seed, p->counter), T);
        int idx = resolve<NT>(S, c, Q_GT, D);
        tok = ragd_sm_order_id(S.a[idx]);
        x_tok = ragd_sm_key_value((uint32_t)(S.a[idx] >> 32));
    }
    __syncthreads();
    if (tid == 0) {
        S.o.token = tok;
        S.o.n_kept = n_kept;
        if (p->want_logprob) S.o.logprob = ragd_sm_logprob(x_tok, c.m, lse);
        if (S.err) { // broken invariant (see the file comment)
            ragd_sm_out_init(&S.o);
            S.o.nonfinite = 2;
        }
        out[row] = S.o;
    }
}

} // namespace

size_t ragd_k_sample_ws_bytes(int max_rows, int n_vocab) {
    if (max_rows < 1 || n_vocab < 1) return 0;
    return (size_t)max_rows * sizeof(RowWs);
}

cudaError_t ragd_k_sample(const float *logits, size_t ld, int n_rows, int n_vocab, const ragd_sample_params *params,
                          ragd_sample_out *out, void *ws, cudaStream_t st) {
    if (!logits || !params || !out || !ws || n_rows < 1 || n_rows > 65535 || n_vocab < 1 ||
        n_vocab > RAGD_SAMPLE_MAX_VOCAB || ld < (size_t)n_vocab || ((uintptr_t)ws & 15))
        return cudaErrorInvalidValue;
    const int G = split_of(n_rows, n_vocab);
    RowWs *w = (RowWs *)ws;
    k_stats<NT_A><<<dim3((unsigned)G, (unsigned)n_rows), NT_A, 0, st>>>(logits, ld, n_vocab, params, w, G);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    k_mass<NT_A><<<dim3((unsigned)G, (unsigned)n_rows), NT_A, 0, st>>>(logits, ld, n_vocab, params, w, G);
    e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    k_select<NT_C><<<(unsigned)n_rows, NT_C, 0, st>>>(logits, ld, n_vocab, params, out, w, G);
    return cudaGetLastError();
}
