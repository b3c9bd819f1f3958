// gemm_skinny.cu — the projections for few rows (T ≤ 32: decode steps), a weight-streaming kernel that
// is a CANDIDATE of the startup tuner (gemm.cu), never used unverified.
//
// Y[T, N] (+)= X[T, K] · W[N, K]^T (+ bias): one warp per 8 output columns (8 rows of W) streams its
// rows of W through a deep cp.async pipeline (STAGES × 1 KB in flight per warp) and reduces each output
// over K in order, one mma.sync m16n8k16 (bf16, f32 accumulation) per 16 k — W as the B operand (8
// columns), X as the A operand (rows t ≥ T are zero). No split-K: each output element is accumulated
// in the same order as the pinned cuBLASLt reference (k-steps of 16, in order, from 0), which is what
// makes it a possible bit-identical replacement. Whether it IS bit-identical (the tensor cores' sum of
// 16 products and the epilogue's rounding) is checked by ragd_gemm_tune at every start, on random data;
// a mismatch means the kernel is not used.
//
// Why this shape: at T ≤ 32 a projection is a stream of its weights (4–12 MB per layer, 311 MB for the
// Qwen3-0.6B lm head); cuBLASLt's split-K-free algorithms reach 0.5–1.4 TB/s there (bench/results-gen2.md).
#include "engine/cuda/attn_tile.cuh"
#include "engine/cuda/gemm.cuh"

namespace {

constexpr int KC = 64;                      // k per pipeline stage: 8 rows × 64 bf16 = 1 KB per warp
constexpr int STAGE_BYTES = 8 * KC * 2;
enum { M_BF16 = 0, M_BF16_BIAS = 1, M_F32 = 2, M_F32_ACC = 3 };

__device__ __forceinline__ uint32_t ld32(const bf16 *p) { return __ldg((const unsigned int *)p); }

template <int MT, int STAGES, int MODE>
__global__ void __launch_bounds__(32) skinny_kernel(const bf16 *__restrict__ W, const bf16 *__restrict__ X,
                                                    void *__restrict__ Y, const bf16 *__restrict__ bias, int T, int N,
                                                    int K, int ldc) {
    extern __shared__ __align__(128) unsigned char smem[];  // STAGES × [8 rows][KC] bf16, chunk ch at ch ^ row
    const int lane = threadIdx.x, g = lane >> 2, c = lane & 3;
    const int n0 = blockIdx.x * 8;
    const uint32_t sbase = attn::smem_addr(smem);
    const int nk = K / KC;
    // this lane's two 16-byte chunks of a stage: q = lane + 32 i → row q >> 3, chunk q & 7
    const int ch = lane & 7;
    const int r_a = lane >> 3, r_b = r_a + 4;
    const bool ok_a = n0 + r_a < N, ok_b = n0 + r_b < N;
    const bf16 *src_a = W + (size_t)(ok_a ? n0 + r_a : 0) * K + ch * 8;
    const bf16 *src_b = W + (size_t)(ok_b ? n0 + r_b : 0) * K + ch * 8;
    const uint32_t dst_a = (uint32_t)(r_a * KC + ((ch ^ r_a) << 3)) * 2;
    const uint32_t dst_b = (uint32_t)(r_b * KC + ((ch ^ r_b) << 3)) * 2;
    auto load_stage = [&](int ks) {
        const uint32_t s = sbase + (uint32_t)((ks % STAGES) * STAGE_BYTES);
        attn::cp_async16(s + dst_a, src_a + ks * KC, ok_a ? 16 : 0);
        attn::cp_async16(s + dst_b, src_b + ks * KC, ok_b ? 16 : 0);
    };
    float acc[MT][4];
#pragma unroll
    for (int m = 0; m < MT; m++) acc[m][0] = acc[m][1] = acc[m][2] = acc[m][3] = 0.f;
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < nk) load_stage(s);
        attn::cp_commit();
    }
    // ldmatrix.x4 of one stage half: matrix j = lane >> 3 is chunk 4·kp + j (kp: pair of k-steps, two
    // chunks each) of row lane & 7 → b[0], b[1]: k-step 2kp; b[2], b[3]: k-step 2kp + 1
    const int lr = lane & 7, lj = lane >> 3;
    const bf16 *xrow[MT][2];
    bool xok[MT][2];
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int t = m * 16 + g + 8 * h;
            xok[m][h] = t < T;
            xrow[m][h] = X + (size_t)(t < T ? t : 0) * K + 2 * c;
        }
    for (int ks = 0; ks < nk; ks++) {
        attn::cp_wait<STAGES - 2>();
        __syncwarp();
        if (ks + STAGES - 1 < nk) load_stage(ks + STAGES - 1);  // into the slot read in iteration ks - 1
        attn::cp_commit();
        const uint32_t s = sbase + (uint32_t)((ks % STAGES) * STAGE_BYTES);
        const int k0 = ks * KC;
#pragma unroll
        for (int kp = 0; kp < KC / 32; kp++) {
            uint32_t b[4];
            attn::ldsm4(s + (uint32_t)(lr * KC + (((4 * kp + lj) ^ lr) << 3)) * 2, b);
#pragma unroll
            for (int h2 = 0; h2 < 2; h2++) {
                const int k = k0 + (2 * kp + h2) * 16;
#pragma unroll
                for (int m = 0; m < MT; m++) {
                    uint32_t a[4];
                    a[0] = xok[m][0] ? ld32(xrow[m][0] + k) : 0u;
                    a[1] = xok[m][1] ? ld32(xrow[m][1] + k) : 0u;
                    a[2] = xok[m][0] ? ld32(xrow[m][0] + k + 8) : 0u;
                    a[3] = xok[m][1] ? ld32(xrow[m][1] + k + 8) : 0u;
                    attn::mma16816(acc[m], a, b[2 * h2], b[2 * h2 + 1]);
                }
            }
        }
    }
    attn::cp_wait<0>();
    // C fragment: acc[m][2h + j] is (row m·16 + g + 8h, column n0 + 2c + j)
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int t = m * 16 + g + 8 * h;
            if (t >= T) continue;
#pragma unroll
            for (int j = 0; j < 2; j++) {
                const int n = n0 + 2 * c + j;
                if (n >= N) continue;
                float v = acc[m][2 * h + j];
                const size_t o = (size_t)t * ldc + n;
                if (MODE == M_BF16_BIAS) v += __bfloat162float(bias[n]);
                if (MODE == M_BF16 || MODE == M_BF16_BIAS) ((bf16 *)Y)[o] = __float2bfloat16_rn(v);
                if (MODE == M_F32) ((float *)Y)[o] = v;
                if (MODE == M_F32_ACC) ((float *)Y)[o] = v + ((float *)Y)[o];
            }
        }
}

template <int MT, int STAGES>
cudaError_t launch_mode(int mode, const bf16 *W, const bf16 *X, void *Y, const bf16 *bias, int T, int N, int K,
                        int ldc, cudaStream_t st) {
    const dim3 grid((unsigned)ragd_cdiv(N, 8));
    const size_t sm = (size_t)STAGES * STAGE_BYTES;
    switch (mode) {
    case M_BF16: skinny_kernel<MT, STAGES, M_BF16><<<grid, 32, sm, st>>>(W, X, Y, bias, T, N, K, ldc); break;
    case M_BF16_BIAS: skinny_kernel<MT, STAGES, M_BF16_BIAS><<<grid, 32, sm, st>>>(W, X, Y, bias, T, N, K, ldc); break;
    case M_F32: skinny_kernel<MT, STAGES, M_F32><<<grid, 32, sm, st>>>(W, X, Y, bias, T, N, K, ldc); break;
    default: skinny_kernel<MT, STAGES, M_F32_ACC><<<grid, 32, sm, st>>>(W, X, Y, bias, T, N, K, ldc); break;
    }
    return cudaGetLastError();
}

template <int STAGES>
cudaError_t launch_stages(int mode, const bf16 *W, const bf16 *X, void *Y, const bf16 *bias, int T, int N, int K,
                          int ldc, cudaStream_t st) {
    return T <= 16 ? launch_mode<1, STAGES>(mode, W, X, Y, bias, T, N, K, ldc, st)
                   : launch_mode<2, STAGES>(mode, W, X, Y, bias, T, N, K, ldc, st);
}

}  // namespace

int ragd_gemm_skinny_fits(int N, int K, int out_f32, int accumulate) {
    if (N < 1 || K < KC || K % KC) return 0;
    return out_f32 || !accumulate;  // bf16 output with accumulation is not a mode the net uses
}

cudaError_t ragd_gemm_skinny(int variant, const bf16 *W, const bf16 *X, void *Y, const bf16 *bias, int T, int N,
                             int K, int out_f32, int accumulate, cudaStream_t st) {
    const int ldc = N;  // (the kernel takes a row stride; the net's outputs are dense)
    if (T < 1 || T > RAGD_GEMM_SKINNY_MAX_T || !ragd_gemm_skinny_fits(N, K, out_f32, accumulate) ||
        variant < 1 || variant > RAGD_GEMM_SKINNY_VARIANTS)
        return cudaErrorInvalidValue;
    const int mode = out_f32 ? (accumulate ? M_F32_ACC : M_F32) : (bias ? M_BF16_BIAS : M_BF16);
    if (variant == 1) return launch_stages<16>(mode, W, X, Y, bias, T, N, K, ldc, st);
    return launch_stages<32>(mode, W, X, Y, bias, T, N, K, ldc, st);
}
