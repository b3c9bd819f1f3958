/* gemm.c — the CPU backend's matrix multiply: y[T, N] = x[T, K] · W[N, K]^T (+ bias), W packed once into
 * panels of 16 outputs ([K][16] each, zero-padded beyond N).
 *
 * Invariant (batch invariance, cpu_internal.h): each y[t, n] is ONE chain of fused multiply-adds over
 * k = 0..K-1 in order, starting from 0, then + bias[n]. The AVX2 kernel runs 6 tokens × 16 outputs at once
 * but keeps one accumulator lane per element, and the scalar fallback (fmaf) performs the same chain, so
 * y[t, n] is bit-identical whatever T, the row's position, the CPU path or the thread count. Threads split
 * the panels statically.
 */
#include <math.h>
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "engine/cpu/cpu_internal.h"

#define MR 6 /* tokens per micro-tile */

bool ragd_cpu_has_avx2(void) {
#if defined(__x86_64__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

size_t ragd_cpu_mat_bytes(int n, int k) {
    size_t panels = ((size_t)n + RAGD_GEMM_NR - 1) / RAGD_GEMM_NR;
    return panels * (size_t)k * RAGD_GEMM_NR * sizeof(float);
}

void ragd_cpu_mat_pack(ragd_cpu_mat *m, const ragd_tensor *t, float *mem, float *row_scratch) {
    RAGD_ASSERT(t->n_dims == 2);
    int n = (int)t->shape[0], k = (int)t->shape[1];
    m->n = n;
    m->k = k;
    m->panels = mem;
    memset(mem, 0, ragd_cpu_mat_bytes(n, k));
    for (int r = 0; r < n; r++) {
        float *row = row_scratch; /* [k] */
        ragd_tensor_to_f32(t, (size_t)r * (size_t)k, (size_t)k, row);
        float *panel = mem + (size_t)(r / RAGD_GEMM_NR) * (size_t)k * RAGD_GEMM_NR; /* [k][16] */
        int lane = r % RAGD_GEMM_NR;
        for (int j = 0; j < k; j++) panel[(size_t)j * RAGD_GEMM_NR + lane] = row[j];
    }
}

/* ---- micro-kernels: out[tm][16] = x[tm rows, stride ldx] · panel[K][16] ---- */

static void kernel_scalar(const float *x, size_t ldx, int tm, const float *w, int K, float *out) {
    for (int i = 0; i < tm; i++) {
        float acc[RAGD_GEMM_NR] = {0};
        const float *xr = x + (size_t)i * ldx;
        for (int kk = 0; kk < K; kk++) {
            float xv = xr[kk];
            const float *wr = w + (size_t)kk * RAGD_GEMM_NR;
            for (int j = 0; j < RAGD_GEMM_NR; j++) acc[j] = fmaf(xv, wr[j], acc[j]);
        }
        memcpy(out + (size_t)i * RAGD_GEMM_NR, acc, sizeof acc);
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void kernel_avx2_6(const float *x, size_t ldx, const float *w, int K,
                                                              float *out) {
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00,
           a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
    const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx, *x4 = x + 4 * ldx, *x5 = x + 5 * ldx;
    for (int kk = 0; kk < K; kk++) {
        __m256 w0 = _mm256_loadu_ps(w + (size_t)kk * 16), w1 = _mm256_loadu_ps(w + (size_t)kk * 16 + 8);
        __m256 b;
        b = _mm256_broadcast_ss(x0 + kk); a00 = _mm256_fmadd_ps(b, w0, a00); a01 = _mm256_fmadd_ps(b, w1, a01);
        b = _mm256_broadcast_ss(x1 + kk); a10 = _mm256_fmadd_ps(b, w0, a10); a11 = _mm256_fmadd_ps(b, w1, a11);
        b = _mm256_broadcast_ss(x2 + kk); a20 = _mm256_fmadd_ps(b, w0, a20); a21 = _mm256_fmadd_ps(b, w1, a21);
        b = _mm256_broadcast_ss(x3 + kk); a30 = _mm256_fmadd_ps(b, w0, a30); a31 = _mm256_fmadd_ps(b, w1, a31);
        b = _mm256_broadcast_ss(x4 + kk); a40 = _mm256_fmadd_ps(b, w0, a40); a41 = _mm256_fmadd_ps(b, w1, a41);
        b = _mm256_broadcast_ss(x5 + kk); a50 = _mm256_fmadd_ps(b, w0, a50); a51 = _mm256_fmadd_ps(b, w1, a51);
    }
    _mm256_storeu_ps(out + 0, a00); _mm256_storeu_ps(out + 8, a01);
    _mm256_storeu_ps(out + 16, a10); _mm256_storeu_ps(out + 24, a11);
    _mm256_storeu_ps(out + 32, a20); _mm256_storeu_ps(out + 40, a21);
    _mm256_storeu_ps(out + 48, a30); _mm256_storeu_ps(out + 56, a31);
    _mm256_storeu_ps(out + 64, a40); _mm256_storeu_ps(out + 72, a41);
    _mm256_storeu_ps(out + 80, a50); _mm256_storeu_ps(out + 88, a51);
}

/* tm < 6 rows: same per-element chain, one row at a time */
__attribute__((target("avx2,fma"))) static void kernel_avx2_rows(const float *x, size_t ldx, int tm, const float *w,
                                                                 int K, float *out) {
    for (int i = 0; i < tm; i++) {
        const float *xr = x + (size_t)i * ldx;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        for (int kk = 0; kk < K; kk++) {
            __m256 b = _mm256_broadcast_ss(xr + kk);
            a0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(w + (size_t)kk * 16), a0);
            a1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(w + (size_t)kk * 16 + 8), a1);
        }
        _mm256_storeu_ps(out + (size_t)i * 16, a0);
        _mm256_storeu_ps(out + (size_t)i * 16 + 8, a1);
    }
}
#endif

static void micro(const float *x, size_t ldx, int tm, const float *w, int K, float *out) {
#if defined(__x86_64__)
    if (ragd_cpu_has_avx2()) {
        if (tm == MR) kernel_avx2_6(x, ldx, w, K, out);
        else kernel_avx2_rows(x, ldx, tm, w, K, out);
        return;
    }
#endif
    kernel_scalar(x, ldx, tm, w, K, out);
}

typedef struct {
    const ragd_cpu_mat *w;
    const float *x; /* [T, K] */
    int T;
    const float *bias; /* [N] or NULL */
    float *y;          /* [T, N] */
} gemm_job;

static void gemm_task(void *ctx, int ith, int nth) {
    gemm_job *j = ctx;
    int N = j->w->n, K = j->w->k;
    int n_panels = (N + RAGD_GEMM_NR - 1) / RAGD_GEMM_NR;
    int p0 = (int)((int64_t)n_panels * ith / nth), p1 = (int)((int64_t)n_panels * (ith + 1) / nth);
    float tile[MR * RAGD_GEMM_NR]; /* [MR][16] */
    for (int p = p0; p < p1; p++) {
        const float *panel = j->w->panels + (size_t)p * (size_t)K * RAGD_GEMM_NR; /* [K][16] */
        int n0 = p * RAGD_GEMM_NR, nn = N - n0 < RAGD_GEMM_NR ? N - n0 : RAGD_GEMM_NR;
        for (int t = 0; t < j->T; t += MR) {
            int tm = j->T - t < MR ? j->T - t : MR;
            micro(j->x + (size_t)t * K, (size_t)K, tm, panel, K, tile);
            for (int i = 0; i < tm; i++) {
                float *yr = j->y + (size_t)(t + i) * N + n0;
                const float *tr = tile + i * RAGD_GEMM_NR;
                if (j->bias)
                    for (int c = 0; c < nn; c++) yr[c] = tr[c] + j->bias[n0 + c];
                else
                    memcpy(yr, tr, sizeof(float) * (size_t)nn);
            }
        }
    }
}

void ragd_cpu_gemm(ragd_cpu_pool *pool, const ragd_cpu_mat *w, const float *x, int T, const float *bias, float *y) {
    gemm_job j = {w, x, T, bias, y};
    int n_panels = (w->n + RAGD_GEMM_NR - 1) / RAGD_GEMM_NR;
    double work = (double)T * w->n * w->k;
    int nth = work < 2e5 ? 1 : pool->n_threads;
    if (nth > n_panels) nth = n_panels;
    ragd_cpu_pool_run(pool, gemm_task, &j, nth);
}

/* ---- dot and axpy with fixed orders ---- */

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void dot8_avx2(const float *a, const float *b, int n8, float *lane) {
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n8; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    _mm256_storeu_ps(lane, acc);
}

__attribute__((target("avx2,fma"))) static void axpy_avx2(float *y, float a, const float *x, int n) {
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}
#endif


float ragd_cpu_dot(const float *a, const float *b, int n) {
    float lane[8] = {0};
    int n8 = n & ~7;
#if defined(__x86_64__)
    if (ragd_cpu_has_avx2()) {
        dot8_avx2(a, b, n8, lane);
    } else
#endif
    {
        for (int i = 0; i < n8; i += 8)
            for (int l = 0; l < 8; l++) lane[l] = fmaf(a[i + l], b[i + l], lane[l]);
    }
    for (int i = n8; i < n; i++) lane[i - n8] = fmaf(a[i], b[i], lane[i - n8]);
    return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}


void ragd_cpu_axpy(float *y, float a, const float *x, int n) {
#if defined(__x86_64__)
    if (ragd_cpu_has_avx2()) {
        axpy_avx2(y, a, x, n);
        return;
    }
#endif
    for (int i = 0; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}
