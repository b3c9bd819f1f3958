// norm.cu — embedding gather, the residual RMSNorm, dtype conversion at weight upload.
//
// The residual stream is f32 [T, E] (more exact than Hugging Face's bf16 stream; the o_proj and
// down_proj GEMMs add into it in their epilogue, which is our "RMSNorm fused with residual add":
// the add costs no pass of its own). RMSNorm follows Hugging Face bit for bit from there:
// bf16(w * bf16(x * rsqrt(mean(x²) + eps))). Each row is reduced by one warp (one block for rows wider
// than 2048) in a fixed order, so a row's result never depends on the other rows of the batch.
#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/kernels.h"

static __global__ void embed_kernel(const int32_t *tok, const bf16 *table, float *x, int E) {
    int t = blockIdx.x;
    const bf16 *src = table + (size_t)tok[t] * E;  // [E]
    float *dst = x + (size_t)t * E;                // [E]
    for (int i = threadIdx.x * 2; i < E; i += blockDim.x * 2) {
        __nv_bfloat162 v = *(const __nv_bfloat162 *)(src + i);
        dst[i] = __low2float(v);
        dst[i + 1] = __high2float(v);
    }
}

cudaError_t ragd_k_embed(const int32_t *tok, const bf16 *table, float *x, int T, int E, cudaStream_t st) {
    if (T <= 0 || E <= 0 || E % 2) return cudaErrorInvalidValue;
    embed_kernel<<<T, 256, 0, st>>>(tok, table, x, E);
    return cudaGetLastError();
}

// 4 weights (bf16) in one 8-byte load.
static __device__ __forceinline__ uint2 load_w4(const bf16 *wi) { return *(const uint2 *)wi; }

static __device__ __forceinline__ void store_normed4(bf16 *o, uint2 wv, float4 v, float r) {
    const bf16 *wi = (const bf16 *)&wv;
    __nv_bfloat162 a = __floats2bfloat162_rn(bf(wi[0]) * round_bf(v.x * r), bf(wi[1]) * round_bf(v.y * r));
    __nv_bfloat162 b = __floats2bfloat162_rn(bf(wi[2]) * round_bf(v.z * r), bf(wi[3]) * round_bf(v.w * r));
    *(__nv_bfloat162 *)o = a;
    *(__nv_bfloat162 *)(o + 2) = b;
}

// One warp per row, the row in registers (NV float4 per lane: E ≤ 512·NV): all of a row's loads are in
// flight at once and the reduction needs no shared memory or block barrier. Sum order: each lane's
// float4s in order, then the warp's xor tree — fixed per row.
template <int NV>
static __global__ void rmsnorm_warp_kernel(const float *x, const bf16 *w, bf16 *out, int T, int E, float eps) {
    const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31, E4 = E / 4;
    if (row >= T) return;
    const float4 *xr = (const float4 *)(x + (size_t)row * E);  // [E/4]
    float4 v[NV];
    uint2 wv[NV];  // the weights are loaded with the row, before the reduction needs them
    float ss = 0.f;
#pragma unroll
    for (int k = 0; k < NV; k++) {
        int i = lane + 32 * k;
        v[k] = i < E4 ? xr[i] : make_float4(0.f, 0.f, 0.f, 0.f);
        wv[k] = i < E4 ? load_w4(w + 4 * i) : make_uint2(0u, 0u);
    }
#pragma unroll
    for (int k = 0; k < NV; k++) ss += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const float r = rsqrtf(ss / (float)E + eps);
    bf16 *o = out + (size_t)row * E;  // [E]
#pragma unroll
    for (int k = 0; k < NV; k++) {
        int i = lane + 32 * k;
        if (i < E4) store_normed4(o + 4 * i, wv[k], v[k], r);
    }
}

// Rows wider than the warp version holds: one block per row.
static __global__ void rmsnorm_kernel(const float *x, const bf16 *w, bf16 *out, int E, float eps) {
    const float4 *xr = (const float4 *)(x + (size_t)blockIdx.x * E);  // [E/4]
    float ss = 0.f;
    for (int i = threadIdx.x; i < E / 4; i += blockDim.x) {
        float4 v = xr[i];
        ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
    ss = block_sum(ss);
    float r = rsqrtf(ss / (float)E + eps);
    bf16 *o = out + (size_t)blockIdx.x * E;  // [E]
    for (int i = threadIdx.x; i < E / 4; i += blockDim.x) store_normed4(o + 4 * i, load_w4(w + 4 * i), xr[i], r);
}

cudaError_t ragd_k_rmsnorm(const float *x, const bf16 *w, bf16 *out, int T, int E, float eps, cudaStream_t st) {
    if (T <= 0 || E <= 0 || E % 4) return cudaErrorInvalidValue;
    const unsigned blocks = (unsigned)((T + 7) / 8);  // 8 warps (rows) per block
    switch ((E + 127) / 128) {
    case 1: rmsnorm_warp_kernel<1><<<blocks, 256, 0, st>>>(x, w, out, T, E, eps); break;
    case 2: rmsnorm_warp_kernel<2><<<blocks, 256, 0, st>>>(x, w, out, T, E, eps); break;
    case 3: case 4: rmsnorm_warp_kernel<4><<<blocks, 256, 0, st>>>(x, w, out, T, E, eps); break;
    case 5: case 6: rmsnorm_warp_kernel<6><<<blocks, 256, 0, st>>>(x, w, out, T, E, eps); break;
    case 7: case 8: rmsnorm_warp_kernel<8><<<blocks, 256, 0, st>>>(x, w, out, T, E, eps); break;
    case 9: case 10: case 11: case 12: rmsnorm_warp_kernel<12><<<blocks, 256, 0, st>>>(x, w, out, T, E, eps); break;
    case 13: case 14: case 15: case 16: rmsnorm_warp_kernel<16><<<blocks, 256, 0, st>>>(x, w, out, T, E, eps); break;
    default: rmsnorm_kernel<<<T, E >= 1024 ? 256 : 128, 0, st>>>(x, w, out, E, eps);
    }
    return cudaGetLastError();
}

static __global__ void gather_last_kernel(const float *x, const bf16 *a, const int32_t *seq_start, int E, int D,
                                          float *x_out, bf16 *a_out) {
    const size_t r = (size_t)seq_start[blockIdx.x + 1] - 1;
    for (int i = threadIdx.x; i < E; i += blockDim.x) x_out[(size_t)blockIdx.x * E + i] = x[r * E + i];
    for (int i = threadIdx.x; i < D; i += blockDim.x) a_out[(size_t)blockIdx.x * D + i] = a[r * D + i];
}

cudaError_t ragd_k_gather_last(const float *x, const bf16 *a, const int32_t *seq_start, int n_seqs, int E, int D,
                               float *x_out, bf16 *a_out, cudaStream_t st) {
    if (n_seqs <= 0 || E <= 0 || D <= 0) return cudaErrorInvalidValue;
    gather_last_kernel<<<n_seqs, 256, 0, st>>>(x, a, seq_start, E, D, x_out, a_out);
    return cudaGetLastError();
}

// ---- pooling and scoring: the final norm is applied only to the rows that are pooled.

// Normed value of element i of row xr (r = the row's rsqrt factor), bf16-rounded as Hugging Face's
// final norm output is.
static __device__ __forceinline__ float normed(const float *xr, const bf16 *w, int i, float r) {
    return round_bf(bf(w[i]) * round_bf(xr[i] * r));
}

static __device__ float row_rsqrt(const float *xr, int E, float eps) {
    float ss = 0.f;
    for (int i = threadIdx.x; i < E; i += blockDim.x) ss += xr[i] * xr[i];
    ss = block_sum(ss);
    return rsqrtf(ss / (float)E + eps);
}

// w NULL: the rows' own values (encoders: final after their last LayerNorm), no norm.
static __device__ __forceinline__ float pooled_value(const float *xr, const bf16 *w, int i, float r) {
    return w ? normed(xr, w, i, r) : xr[i];
}

static __global__ void pool_kernel(const float *x, const bf16 *w, const int32_t *seq_start, int E, float eps,
                                   int mode, float *out) {
    int s = blockIdx.x;
    int a = seq_start[s], b = seq_start[s + 1];
    float *o = out + (size_t)s * E;  // [E]
    if (mode == RAGD_CUDA_POOL_LAST || mode == RAGD_CUDA_POOL_CLS) {
        const float *xr = x + (size_t)(mode == RAGD_CUDA_POOL_CLS ? a : b - 1) * E;
        float r = w ? row_rsqrt(xr, E, eps) : 1.f;
        for (int i = threadIdx.x; i < E; i += blockDim.x) o[i] = pooled_value(xr, w, i, r);
        return;
    }
    const bool max = mode == RAGD_CUDA_POOL_MAX;
    for (int i = threadIdx.x; i < E; i += blockDim.x) o[i] = max ? -INFINITY : 0.f;
    for (int t = a; t < b; t++) {  // rows in order: a fixed summation order per sequence
        const float *xr = x + (size_t)t * E;
        float r = w ? row_rsqrt(xr, E, eps) : 1.f;
        for (int i = threadIdx.x; i < E; i += blockDim.x) {
            float v = pooled_value(xr, w, i, r);
            o[i] = max ? fmaxf(o[i], v) : o[i] + v;
        }
    }
    if (max) return;
    float inv = 1.f / (float)(b - a);
    for (int i = threadIdx.x; i < E; i += blockDim.x) o[i] *= inv;
}

cudaError_t ragd_k_pool(const float *x, const bf16 *w, const int32_t *seq_start, int n_seqs, int E, float eps,
                        int mode, float *out, cudaStream_t st) {
    if (n_seqs <= 0 || E <= 0 || mode < 0 || mode > RAGD_CUDA_POOL_MAX) return cudaErrorInvalidValue;
    pool_kernel<<<n_seqs, 256, 0, st>>>(x, w, seq_start, E, eps, mode, out);
    return cudaGetLastError();
}

static __global__ void score_kernel(const float *x, const bf16 *w, const int32_t *seq_start, int E, float eps,
                                    const bf16 *rows, int R, float *out) {
    extern __shared__ float h[];  // [E] normed last row
    int s = blockIdx.x;
    const float *xr = x + (size_t)(seq_start[s + 1] - 1) * E;
    float r = row_rsqrt(xr, E, eps);
    for (int i = threadIdx.x; i < E; i += blockDim.x) h[i] = normed(xr, w, i, r);
    __syncthreads();
    int wid = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    for (int j = wid; j < R; j += nw) {
        const bf16 *rw = rows + (size_t)j * E;  // [E]
        float acc = 0.f;
        for (int i = lane; i < E; i += 32) acc += h[i] * bf(rw[i]);
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
        if (lane == 0) out[(size_t)s * R + j] = acc;
    }
}

cudaError_t ragd_k_score(const float *x, const bf16 *w, const int32_t *seq_start, int n_seqs, int E, float eps,
                         const bf16 *rows, int R, float *out, cudaStream_t st) {
    if (n_seqs <= 0 || E <= 0 || R <= 0 || (size_t)E * 4 > 48 * 1024) return cudaErrorInvalidValue;
    score_kernel<<<n_seqs, 256, (size_t)E * 4, st>>>(x, w, seq_start, E, eps, rows, R, out);
    return cudaGetLastError();
}

// ---- upload conversion

static __global__ void to_bf16_kernel(const void *src, int dtype, bf16 *dst, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = dtype == RAGD_CUDA_F32 ? ((const float *)src)[i] : __half2float(((const __half *)src)[i]);
        dst[i] = tobf(v);
    }
}

cudaError_t ragd_k_to_bf16(const void *src, int dtype, bf16 *dst, size_t n, cudaStream_t st) {
    if (dtype != RAGD_CUDA_F32 && dtype != RAGD_CUDA_F16) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    size_t blocks = (n + 255) / 256;
    if (blocks > 4096) blocks = 4096;
    to_bf16_kernel<<<(unsigned)blocks, 256, 0, st>>>(src, dtype, dst, n);
    return cudaGetLastError();
}
