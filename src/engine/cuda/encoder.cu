// encoder.cu — the blocks the encoder families (BERT, XLM-RoBERTa) add to the net, and the
// classification heads:
//   embed_abs:  x = LN((word[tok] + type[tt]) + pos[row]) in f32, and bf16(x) for the first GEMM
//   layernorm:  x = LN(x + bias) in place (post-norm residual: the o/down GEMMs added their product
//               into x in their epilogue, the bias is added here), and bf16(x) for the next GEMM
//   gelu:       out = bf16(gelu(up)) — erf (Hugging Face "gelu") or tanh ("gelu_new", "gelu_pytorch_tanh")
//   head:       out[s, n] = act(in[s, :] · W[n, :] + b[n]) / div — BERT's pooler / RoBERTa's classifier
//               dense (tanh), the label projection, NVIDIA's pooled linear score (divided by its temperature)
// LayerNorm follows torch in f32: mean, then the mean of squared deviations, (x − mean) · rsqrt(var +
// eps) · w + b. Each row is reduced by one block in a fixed order (block_sum), so a row's bits never
// depend on the other rows of the batch (batch invariance, as everywhere in the net).
#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/kernels.h"

namespace {

constexpr int kThreads = 256;

// In place on row x [E] (f32): LayerNorm with w, b; also writes bf16 copies to out [E].
__device__ void ln_row(float *x, const bf16 *w, const bf16 *b, float eps, int E, bf16 *out) {
    float s = 0.f;
    for (int i = threadIdx.x; i < E; i += kThreads) s += x[i];
    const float mean = block_sum(s) / (float)E;
    float q = 0.f;
    for (int i = threadIdx.x; i < E; i += kThreads) {
        float d = x[i] - mean;
        q += d * d;
    }
    const float r = rsqrtf(block_sum(q) / (float)E + eps);
    for (int i = threadIdx.x; i < E; i += kThreads) {
        float y = (x[i] - mean) * r * bf(w[i]) + bf(b[i]);
        x[i] = y;
        out[i] = tobf(y);
    }
}

__global__ void embed_abs_kernel(const int32_t *tok, const int32_t *type, const int32_t *pos, const bf16 *word,
                                 const bf16 *type_t, const bf16 *pos_t, const bf16 *w, const bf16 *b, float eps,
                                 int E, float *x, bf16 *out) {
    const size_t t = blockIdx.x;
    const bf16 *wr = word + (size_t)tok[t] * E, *pr = pos_t + (size_t)pos[t] * E;  // [E]
    const bf16 *tr = type_t ? type_t + (size_t)(type ? type[t] : 0) * E : nullptr;  // [E]
    float *xr = x + t * E;
    for (int i = threadIdx.x; i < E; i += kThreads) {  // (word + type) + position, as transformers adds them
        float v = bf(wr[i]);
        if (tr) v += bf(tr[i]);
        xr[i] = v + bf(pr[i]);
    }
    ln_row(xr, w, b, eps, E, out + t * E);
}

__global__ void layernorm_kernel(float *x, const bf16 *add, const bf16 *w, const bf16 *b, float eps, int E, bf16 *out) {
    float *xr = x + (size_t)blockIdx.x * E;  // [E]
    if (add)
        for (int i = threadIdx.x; i < E; i += kThreads) xr[i] += bf(add[i]);
    ln_row(xr, w, b, eps, E, out + (size_t)blockIdx.x * E);
}

__global__ void gelu_kernel(const bf16 *in, bf16 *out, size_t n8, int tanh_form) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n8; i += (size_t)gridDim.x * blockDim.x) {
        uint4 v = ((const uint4 *)in)[i], o;
        const bf16 *a = (const bf16 *)&v;
        bf16 *r = (bf16 *)&o;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            float x = bf(a[k]), y;
            if (tanh_form) y = 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
            else y = 0.5f * x * (1.f + erff(x * 0.7071067811865476f));
            r[k] = tobf(y);
        }
        ((uint4 *)out)[i] = o;
    }
}

// One block per sequence row s; its input row in shared memory, one warp per output (fixed order:
// lane-strided partial sums, then the xor tree).
__global__ void head_kernel(const float *in, const bf16 *W, const bf16 *b, int N, int K, int act_tanh, float div,
                            float *out) {
    extern __shared__ float h[];  // [K]
    const int s = blockIdx.x;
    for (int i = threadIdx.x; i < K; i += blockDim.x) h[i] = in[(size_t)s * K + i];
    __syncthreads();
    const int wid = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    for (int n = wid; n < N; n += nw) {
        const bf16 *wr = W + (size_t)n * K;  // [K]
        float acc = 0.f;
        for (int i = lane; i < K; i += 32) acc += h[i] * bf(wr[i]);
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
        if (lane == 0) {
            float v = acc + (b ? bf(b[n]) : 0.f);
            if (act_tanh) v = tanhf(v);
            out[(size_t)s * N + n] = v / div;
        }
    }
}

}  // namespace

cudaError_t ragd_k_embed_abs(const int32_t *tok, const int32_t *type, const int32_t *pos, const bf16 *word,
                             const bf16 *type_table, const bf16 *pos_table, const bf16 *w, const bf16 *b, float eps,
                             int T, int E, float *x, bf16 *out, cudaStream_t st) {
    if (T <= 0 || E <= 0 || !pos_table || !w || !b) return cudaErrorInvalidValue;
    embed_abs_kernel<<<T, kThreads, 0, st>>>(tok, type, pos, word, type_table, pos_table, w, b, eps, E, x, out);
    return cudaGetLastError();
}

cudaError_t ragd_k_layernorm(float *x, const bf16 *add, const bf16 *w, const bf16 *b, float eps, int T, int E,
                             bf16 *out, cudaStream_t st) {
    if (T <= 0 || E <= 0 || !w || !b) return cudaErrorInvalidValue;
    layernorm_kernel<<<T, kThreads, 0, st>>>(x, add, w, b, eps, E, out);
    return cudaGetLastError();
}

cudaError_t ragd_k_gelu(const bf16 *in, bf16 *out, int T, int F, int tanh_form, cudaStream_t st) {
    if (T <= 0 || F <= 0 || F % 8) return cudaErrorInvalidValue;
    const size_t n8 = (size_t)T * F / 8;
    size_t blocks = (n8 + 255) / 256;
    if (blocks > 8192) blocks = 8192;
    gelu_kernel<<<(unsigned)blocks, 256, 0, st>>>(in, out, n8, tanh_form);
    return cudaGetLastError();
}

cudaError_t ragd_k_head(const float *in, const bf16 *W, const bf16 *b, int S, int N, int K, int act_tanh, float div,
                        float *out, cudaStream_t st) {
    if (S <= 0 || N <= 0 || K <= 0 || (size_t)K * 4 > 48 * 1024 || !(div > 0.f)) return cudaErrorInvalidValue;
    head_kernel<<<S, 256, (size_t)K * 4, st>>>(in, W, b, N, K, act_tanh, div, out);
    return cudaGetLastError();
}
