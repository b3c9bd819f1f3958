// attention.cu — varlen flash attention over packed sequences (no padding), causal (decoders) or
// bidirectional (encoders: every query attends to its whole sequence), bf16 tensor-core MMA
// (mma.sync m16n8k16) with f32 accumulation and an online softmax. One kernel, templated on the mask.
//
// Grid: 1-D, one CTA of 4 warps per (64-row query tile of one sequence, query head), the head the
// fastest index (CTA = tile · nH + head). Each warp owns 16 query rows. GQA: query head h reads kv
// head h / (nH/nKV). Shared memory: the CTA's Q tile and one K and one V tile of 64 keys, XOR-swizzled
// [64][hd] bf16 each (48 KB at hd 128, 24 KB at hd 64), filled by cp.async; rows past the sequence
// end are zero-filled and masked.
//
// Schedule of key tile j: wait for K_j; start V_j; S = Q K_j^T and its softmax (while V_j lands);
// wait for V_j; start K_{j+1}; O += P V_j (while K_{j+1} lands). Two barriers per tile; the first tile
// computes as soon as Q and K_0 are in.
//
// Why this shape: it replaced five other variants after an A/B on the H200 (test_kernels --bench-attn,
// bench/results-cuda.md run 11; long = 256 sequences of 64–512 tokens, short = 1024 of 16–64, Qwen3
// heads 16/8 × 128). The first kernel (K and V double-buffered together in one cp.async group, Q in
// registers, 64 KB, 3 CTAs per SM) took 0.971 ms long / 0.305 ms short and was latency-bound: 46 %
// issue-slot use, 0.7 eligible warps of 3 per scheduler; its Q K^T loop broke after every 16 keys
// (for the diagonal tile), leaving each ldmatrix right before the two MMAs that consume it. Steps:
//  * lean code (0.667 / 0.224 ms): full key tiles run branch-free Q K^T and P V loops with all
//    ldmatrix loads of a head-dim block ahead of its MMAs; ldmatrix and cp.async addresses computed
//    once per thread (the swizzle flips chunk bits only, so chunk pair c is offset ^ (c << 5)); the
//    causal / length mask is one compare per score;
//  * K and V as separate cp.async groups with single buffers, as FlashAttention-2 (0.655 / 0.223);
//  * Q re-read from its smem tile per key tile (8 ldmatrix per warp against 32 for K) instead of
//    held in registers: 32 registers fewer, 128 in all, so 4 CTAs (16 warps) fit per SM, not 3
//    (0.629 / 0.197);
//  * the head as the fastest grid index: the CTAs of one query tile run together, so a K/V tile comes
//    from DRAM once and the heads that read it share it in L2 (a tile-fastest grid sweeps every tile
//    of head 0, then of head 1, …: tens of MB between two reads of one tile) — 0.623 ms long (174
//    TFLOP/s useful) / 0.188 ms short; whole engine, long mix: 538.5k tokens/s against 510k.
// Tried and dropped: scores one key tile ahead (S_{j+1} issued before the softmax of S_j; 64 KB,
// register spills at hd 128: 0.753 / 0.241 ms), two heads per CTA sharing K/V tiles (slower:
// occupancy, not traffic, was the limit), and the FlashAttention-2 warp shape (2 warps × 32 query rows
// per CTA: half the ldmatrix loads per MMA, but 255 registers, so 8 warps per SM instead of 16 —
// bit-identical, 0.611 / 0.220 ms against 0.616 / 0.188: results-cuda run 12).
//
// Batch invariance: a CTA reads only its own sequence and walks its keys in order 0, 64, 128, …, so
// the reduction order of every output row is fixed by the sequence alone (tests/gpu checks alone vs
// packed bit for bit). P is rounded to bf16 before the P·V product (as flash-attention kernels do);
// the row sum uses the same rounded values.
#include <cmath>

#include "engine/cuda/attn_tile.cuh"

namespace {

using namespace attn;

// What a CTA works on, and the thread's place in the MMA layouts (each warp owns 16 query rows; a
// thread holds rows g and g + 8 of them, in the m16n8k16 accumulator layout).
struct Job {
    int q0, L, n_kt, ld, h;
    int start;                 // first token of the sequence
    const bf16 *Qg, *Kg, *Vg;  // [L, ld]: query head h, kv head h / (nH / nKV)
    int warp, g, t4, qi0, qi1;  // qi0, qi1: this thread's two query rows (warp*16 + g, + 8)
    uint32_t qo, ko, vo;       // ldmatrix offsets: Q (A operand, the warp's 16 rows), K (B), V (B, transposed)
};

// CTA blockIdx.x = tile · nH + head: the CTAs of one query tile run together and share its K/V rows
// in L2 (the heads of a GQA group read the same K/V tiles; all heads together read whole rows).
template <int HD, bool CAUSAL>
__device__ __forceinline__ Job job_init(const bf16 *qkv, const int32_t *seq_start, const int2 *tiles, int nH, int nKV) {
    Job b;
    const int2 tile = tiles[blockIdx.x / nH];
    b.h = blockIdx.x % nH;
    const int kvh = b.h / (nH / nKV);
    b.q0 = tile.y;
    b.start = seq_start[tile.x];
    b.L = seq_start[tile.x + 1] - b.start;
    b.n_kt = ((CAUSAL ? min(b.q0 + BM, b.L) : b.L) + BN - 1) / BN;  // bidirectional: every key of the sequence
    b.ld = (nH + 2 * nKV) * HD;
    b.Qg = qkv + (size_t)b.start * b.ld + b.h * HD;
    b.Kg = qkv + (size_t)b.start * b.ld + (nH + kvh) * HD;
    b.Vg = qkv + (size_t)b.start * b.ld + (nH + nKV + kvh) * HD;
    const int lane = threadIdx.x & 31, mi = lane >> 3, mr = lane & 7;
    b.warp = threadIdx.x >> 5;
    b.g = lane >> 2;
    b.t4 = lane & 3;
    b.qi0 = b.q0 + b.warp * 16 + b.g;
    b.qi1 = b.qi0 + 8;
    b.qo = (uint32_t)(b.warp * 16 * HD * 2) + frag_off<HD>(mi & 1, mi >> 1, mr);
    b.ko = frag_off<HD>(mi >> 1, mi & 1, mr);
    b.vo = frag_off<HD>(mi & 1, mi >> 1, mr);
    return b;
}

// Keys of tile j the warp needs: all but in the last tile — causal: the diagonal one, where its 16 rows
// see keys up to 16·warp + 15 and the sequence may end; bidirectional: the sequence's last keys —
// 16-key blocks past that are skipped (their probabilities are exact zeros, so skipping them changes
// no bit). A warp whose 16 rows all lie past the sequence end (short sequences) computes nothing.
template <bool CAUSAL>
__device__ __forceinline__ int keys_needed(int q0, int warp, int L, bool last, int j) {
    if (q0 + 16 * warp >= L) return 0;
    if (!last) return BN;
    return CAUSAL ? min(16 * warp + 16, L - j * BN) : min(BN, L - j * BN);
}

// out rows qi0 / qi1 (those < L) of head h = O / l, after summing l over the quad.
template <int HD>
__device__ __forceinline__ void store_rows(const float (&o)[HD / 8][4], float l0, float l1, bf16 *out, int start,
                                           int h, int nH, int qi0, int qi1, int L, int t4) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float i0 = 1.f / l0, i1 = 1.f / l1;
    const int ldo = nH * HD;
    bf16 *O = out + (size_t)start * ldo + h * HD;  // [L, ldo]
#pragma unroll
    for (int nd = 0; nd < HD / 8; nd++) {
        int c = nd * 8 + 2 * t4;
        if (qi0 < L) *(uint32_t *)(O + (size_t)qi0 * ldo + c) = pack_bf16(o[nd][0] * i0, o[nd][1] * i0);
        if (qi1 < L) *(uint32_t *)(O + (size_t)qi1 * ldo + c) = pack_bf16(o[nd][2] * i1, o[nd][3] * i1);
    }
}

constexpr int SMEM_TILES = 3;  // Q, K, V

template <int HD, bool CAUSAL>
__global__ void __launch_bounds__(NT, 4)
    attn_kernel(const bf16 *qkv, bf16 *out, const int32_t *seq_start, const int2 *tiles, int nH, int nKV,
                float scale_log2) {
    extern __shared__ uint4 smem_raw[];
    constexpr uint32_t TB = tile_bytes(HD);
    const uint32_t sK = smem_addr(smem_raw);  // [BN][HD]
    const uint32_t sV = sK + TB;              // [BN][HD]
    const uint32_t sQ = sV + TB;              // [BM][HD]
    const Job b = job_init<HD, CAUSAL>(qkv, seq_start, tiles, nH, nKV);

    load_tile<HD>(sQ, b.Qg, b.ld, b.q0, b.L);
    load_tile<HD>(sK, b.Kg, b.ld, 0, b.L);
    cp_commit();
    float o[HD / 8][4];
#pragma unroll
    for (int i = 0; i < HD / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    float m0 = -1e30f, m1 = -1e30f, l0 = 0.f, l1 = 0.f;

    for (int j = 0; j < b.n_kt; j++) {
        cp_wait<0>();
        __syncthreads();  // K_j (and Q) visible to all; every warp is done with V_{j-1}
        load_tile<HD>(sV, b.Vg, b.ld, j * BN, b.L);
        cp_commit();
        const bool last = j == b.n_kt - 1;
        const int lim = keys_needed<CAUSAL>(b.q0, b.warp, b.L, last, j);
        float s[BN / 8][4];
        // Q re-read from smem per key tile. A lambda, as in the measured kernel: passing sQ and qo as
        // values compiles to other SASS (other integer scheduling, same registers), never benchmarked
        qk_tile<HD>(s, [&](int kk, uint32_t(&q)[4]) { ldsm4(sQ + (b.qo ^ (kk << 5)), q); }, sK, b.ko, lim);
        uint32_t pf[BN / 8][2];
        float a0, a1;
        // key kb + c is masked for row qi when c > min(qi, L − 1) − kb (causal) or c > L − 1 − kb
        // (bidirectional); c = nt·8 + 2·t4 + (e & 1)
        const int e0 = CAUSAL ? min(b.qi0, b.L - 1) : b.L - 1, e1 = CAUSAL ? min(b.qi1, b.L - 1) : b.L - 1;
        const int r0 = e0 - j * BN - 2 * b.t4, r1 = e1 - j * BN - 2 * b.t4;
        softmax_tile(s, pf, m0, m1, l0, l1, a0, a1, last, r0, r1, scale_log2);
        cp_wait<0>();
        __syncthreads();  // V_j visible to all; every warp is done with K_j
        if (j + 1 < b.n_kt) {
            load_tile<HD>(sK, b.Kg, b.ld, (j + 1) * BN, b.L);
            cp_commit();
        }
        pv_tile<HD>(o, pf, a0, a1, sV, b.vo, lim);
    }
    store_rows<HD>(o, l0, l1, out, b.start, b.h, nH, b.qi0, b.qi1, b.L, b.t4);
}

template <int HD, bool CAUSAL>
cudaError_t launch(const bf16 *qkv, bf16 *out, const int32_t *seq_start, const int2 *tiles, int n_tiles, int nH,
                   int nKV, cudaStream_t st) {
    if ((long long)n_tiles * nH > 0x7fffffff) return cudaErrorInvalidValue;  // 1-D grid
    const int smem = SMEM_TILES * (int)tile_bytes(HD);  // (the limit is raised by ragd_k_attention_init)
    const float scale_log2 = (float)(1.0 / std::sqrt((double)HD) * 1.4426950408889634);
    attn_kernel<HD, CAUSAL><<<n_tiles * nH, NT, smem, st>>>(qkv, out, seq_start, tiles, nH, nKV, scale_log2);
    return cudaGetLastError();
}

// The kernel's dynamic smem limit, and all of the unified L1 / smem that can be smem, so the 4 CTAs
// per SM that the registers allow also fit in smem.
template <int HD, bool CAUSAL>
cudaError_t init() {
    cudaError_t e = cudaFuncSetAttribute(attn_kernel<HD, CAUSAL>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         SMEM_TILES * (int)tile_bytes(HD));
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(attn_kernel<HD, CAUSAL>, cudaFuncAttributePreferredSharedMemoryCarveout,
                                 (int)cudaSharedmemCarveoutMaxShared);
    return e;
}

}  // namespace

cudaError_t ragd_k_attention(const bf16 *qkv, bf16 *out, const int32_t *seq_start, const int2 *tiles, int n_tiles,
                             int nH, int nKV, int hd, int causal, cudaStream_t st) {
    if (n_tiles <= 0 || nH <= 0 || nKV <= 0 || nH % nKV) return cudaErrorInvalidValue;
    if (hd == 128)
        return causal ? launch<128, true>(qkv, out, seq_start, tiles, n_tiles, nH, nKV, st)
                      : launch<128, false>(qkv, out, seq_start, tiles, n_tiles, nH, nKV, st);
    if (hd == 64)
        return causal ? launch<64, true>(qkv, out, seq_start, tiles, n_tiles, nH, nKV, st)
                      : launch<64, false>(qkv, out, seq_start, tiles, n_tiles, nH, nKV, st);
    return cudaErrorInvalidValue;
}

// Sets the kernel's shared memory attributes on the current device. Done once per device at engine
// creation, not per launch: launches may be captured into CUDA graphs.
cudaError_t ragd_k_attention_init() {
    cudaError_t e = init<64, true>();
    if (e == cudaSuccess) e = init<128, true>();
    if (e == cudaSuccess) e = init<64, false>();
    if (e == cudaSuccess) e = init<128, false>();
    return e;
}

int ragd_attn_tiles(int n_seqs, const int32_t *seq_start, int2 *tiles, int cap) {
    int max_nt = 0;
    for (int s = 0; s < n_seqs; s++) max_nt = std::max(max_nt, ragd_cdiv(seq_start[s + 1] - seq_start[s], BM));
    int n = 0;
    for (int j = max_nt - 1; j >= 0; j--)  // most keys first: tile j of a sequence reads (j+1)·64 keys
        for (int s = 0; s < n_seqs; s++)
            if (ragd_cdiv(seq_start[s + 1] - seq_start[s], BM) > j) {
                if (n == cap) return -1;
                tiles[n++] = make_int2(s, j * BM);
            }
    return n;
}
