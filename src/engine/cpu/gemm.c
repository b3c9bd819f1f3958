/* gemm.c — the CPU backend's matrix multiply: y[T, N] = x[T, K] · W[N, K]^T (+ bias), W packed once into
 * panels of 16 outputs ([K][16] each, zero-padded beyond N).
 *
 * Invariant (batch invariance, cpu_internal.h): each y[t, n] is ONE chain of fused multiply-adds over
 * k = 0..K-1 in order, starting from 0, then + bias[n]. The AVX2 kernel runs 6 tokens × 16 outputs at once
 * but keeps one accumulator lane per element, and the scalar fallback (fmaf) performs the same chain, so
 * y[t, n] is bit-identical whatever T, the row's position, the CPU path or the thread count. Threads split
 * the panels statically.
 *
 * Panels hold f32, bf16 or f16 elements (cpu_internal.h). A 16-bit element is widened to f32 right before its
 * FMA (bf16: shift into the high half; f16: F16C vcvtph2ps, else ragd_f16_to_f32) — both widenings are exact,
 * so the chain sees the same f32 operands as with f32 panels and the result bits do not change.
 */
#include <math.h>
#include <stdlib.h>

#if defined(__x86_64__)
#include <cpuid.h>
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

static bool g_f16c;
static pthread_once_t g_f16c_once = PTHREAD_ONCE_INIT;

static void f16c_probe(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d; /* CPUID.1:ECX bit 29 (clang's __builtin_cpu_supports has no "f16c") */
    g_f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
#else
    g_f16c = false;
#endif
}

/* CPUID once (it traps to the hypervisor in a VM), then a load */
static bool has_f16c(void) {
    pthread_once(&g_f16c_once, f16c_probe);
    return g_f16c;
}

ragd_dtype ragd_cpu_store_dtype(ragd_dtype t) { return t == RAGD_DT_BF16 || t == RAGD_DT_F16 ? t : RAGD_DT_F32; }

size_t ragd_cpu_dtype_bytes(ragd_dtype dt) { return dt == RAGD_DT_F32 ? 4 : 2; }

float ragd_cpu_load(const void *data, ragd_dtype dt, size_t i) {
    if (dt == RAGD_DT_BF16) return ragd_bf16_to_f32(((const uint16_t *)data)[i]);
    if (dt == RAGD_DT_F16) return ragd_f16_to_f32(((const uint16_t *)data)[i]);
    return ((const float *)data)[i];
}

void ragd_cpu_load_row(const void *data, ragd_dtype dt, size_t start, int n, float *dst) {
    if (dt == RAGD_DT_F32) {
        memcpy(dst, (const float *)data + start, sizeof(float) * (size_t)n);
        return;
    }
    for (int i = 0; i < n; i++) dst[i] = ragd_cpu_load(data, dt, start + (size_t)i);
}

static bool is_qlayout(ragd_dtype dt) { return dt == RAGD_DT_Q8_0 || dt == RAGD_DT_Q4_1; }

size_t ragd_cpu_mat_bytes(int n, int k, ragd_dtype dt) {
    size_t panels = ((size_t)n + RAGD_GEMM_NR - 1) / RAGD_GEMM_NR;
    if (is_qlayout(dt)) return panels * (size_t)(k / 32) * sizeof(ragd_cpu_qblock);
    return panels * (size_t)k * RAGD_GEMM_NR * ragd_cpu_dtype_bytes(dt);
}

/* ---- quantized panels ---- */

/* buf[32][16] = the f32 weights of one block: q·d (Q8_0 layout) or q·d + m (Q4_1), a multiply then an add
 * per element like ragd_tensor_to_f32 — this function is compiled without FMA so the two never fuse */
#if defined(__x86_64__)
__attribute__((target("avx2"), noinline)) static void dequant_block_avx2(const ragd_cpu_qblock *b, bool has_min,
                                                                         float *buf) {
    __m256 d0 = _mm256_loadu_ps(b->d), d1 = _mm256_loadu_ps(b->d + 8);
    __m256 m0 = _mm256_loadu_ps(b->m), m1 = _mm256_loadu_ps(b->m + 8);
    for (int kk = 0; kk < 32; kk++) {
        __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)b->q[kk])));
        __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b->q[kk] + 8))));
        f0 = _mm256_mul_ps(f0, d0);
        f1 = _mm256_mul_ps(f1, d1);
        if (has_min) {
            f0 = _mm256_add_ps(f0, m0);
            f1 = _mm256_add_ps(f1, m1);
        }
        _mm256_storeu_ps(buf + kk * 16, f0);
        _mm256_storeu_ps(buf + kk * 16 + 8, f1);
    }
}
#endif

static void dequant_block(const ragd_cpu_qblock *b, bool has_min, float *buf) {
#if defined(__x86_64__)
    dequant_block_avx2(b, has_min, buf);
#else
    (void)b, (void)has_min, (void)buf;
    RAGD_DIE("quantized panels need AVX2"); /* ragd_cpu_panel_dtype never chooses them without it */
#endif
}

/* bytes of one GGUF block of 32 (model/tensor.c) */
static size_t qblock_bytes(ragd_dtype t) { return t == RAGD_DT_Q8_0 ? 34 : t == RAGD_DT_Q4_0 ? 18 : 20; }

/* fills the quantized panels of m from t's GGUF blocks (layouts in model/tensor.c) */
static void qpack_fill(ragd_cpu_mat *m, const ragd_tensor *t) {
    int n = m->n, k = m->k, nb = k / 32;
    size_t bsz = qblock_bytes(t->dtype);
    ragd_cpu_qblock *qb = m->panels;
    for (int r = 0; r < n; r++) {
        int lane = r % RAGD_GEMM_NR;
        for (int b = 0; b < nb; b++) {
            const uint8_t *blk = (const uint8_t *)t->data + ((size_t)r * nb + b) * bsz; /* [bsz] */
            ragd_cpu_qblock *o = &qb[(size_t)(r / RAGD_GEMM_NR) * nb + b];
            uint16_t h;
            memcpy(&h, blk, 2);
            o->d[lane] = ragd_f16_to_f32(h);
            if (t->dtype == RAGD_DT_Q8_0) {
                for (int j = 0; j < 32; j++) o->q[j][lane] = (int8_t)blk[2 + j];
            } else if (t->dtype == RAGD_DT_Q4_0) {
                for (int j = 0; j < 16; j++) {
                    o->q[j][lane] = (int8_t)((blk[2 + j] & 0x0f) - 8);
                    o->q[j + 16][lane] = (int8_t)((blk[2 + j] >> 4) - 8);
                }
            } else {
                memcpy(&h, blk + 2, 2);
                o->m[lane] = ragd_f16_to_f32(h);
                for (int j = 0; j < 16; j++) {
                    o->q[j][lane] = (int8_t)(blk[4 + j] & 0x0f);
                    o->q[j + 16][lane] = (int8_t)(blk[4 + j] >> 4);
                }
            }
        }
    }
}

/* every element of the packed quantized m equals ragd_tensor_to_f32 of t, bit for bit. row: [k] scratch */
static bool qpack_matches(const ragd_cpu_mat *m, const ragd_tensor *t, float *row) {
    int nb = m->k / 32;
    float buf[32 * 16];
    const ragd_cpu_qblock *qb = m->panels;
    for (int r = 0; r < m->n; r++) {
        ragd_tensor_to_f32(t, (size_t)r * (size_t)m->k, (size_t)m->k, row);
        for (int b = 0; b < nb; b++) {
            dequant_block(&qb[(size_t)(r / RAGD_GEMM_NR) * nb + b], m->dt == RAGD_DT_Q4_1, buf);
            for (int j = 0; j < 32; j++)
                if (memcmp(&buf[j * 16 + r % RAGD_GEMM_NR], &row[b * 32 + j], 4)) return false;
        }
    }
    return true;
}

/* the probe: random blocks of each quantized type dequantize identically both ways */
static bool g_quant_ok;
static pthread_once_t g_quant_once = PTHREAD_ONCE_INIT;

static void quant_probe(void) {
    g_quant_ok = false;
    if (!ragd_cpu_has_avx2()) return;
    enum { N = 32, K = 64 };
    uint8_t data[N * (K / 32) * 34];
    float row[K];
    void *mem = aligned_alloc(64, ragd_cpu_mat_bytes(N, K, RAGD_DT_Q4_1));
    if (!mem) return;
    uint64_t x = 0x2545f4914f6cdd1dull;
    ragd_dtype types[3] = {RAGD_DT_Q8_0, RAGD_DT_Q4_0, RAGD_DT_Q4_1};
    bool ok = true;
    for (int ti = 0; ti < 3 && ok; ti++) {
        size_t bsz = qblock_bytes(types[ti]);
        for (size_t i = 0; i < sizeof data; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            data[i] = (uint8_t)(x >> 24);
        }
        for (int b = 0; b < N * (K / 32); b++) { /* finite scales: f16 exponent bits below all-ones */
            data[b * bsz + 1] &= 0x5b;
            if (types[ti] == RAGD_DT_Q4_1) data[b * bsz + 3] &= 0xdb;
        }
        ragd_tensor t = {.name = "probe", .data = data, .dtype = types[ti], .n_dims = 2, .shape = {N, K},
                         .nbytes = (size_t)N * (K / 32) * bsz};
        ragd_cpu_mat m = {.panels = mem, .dt = types[ti] == RAGD_DT_Q4_1 ? RAGD_DT_Q4_1 : RAGD_DT_Q8_0, .n = N, .k = K};
        memset(mem, 0, ragd_cpu_mat_bytes(N, K, m.dt));
        qpack_fill(&m, &t);
        ok = qpack_matches(&m, &t, row);
    }
    free(mem);
    g_quant_ok = ok;
}

ragd_dtype ragd_cpu_panel_dtype(ragd_dtype t) {
    if (t == RAGD_DT_Q8_0 || t == RAGD_DT_Q4_0 || t == RAGD_DT_Q4_1) {
        pthread_once(&g_quant_once, quant_probe);
        if (!g_quant_ok) return RAGD_DT_F32;
        return t == RAGD_DT_Q4_1 ? RAGD_DT_Q4_1 : RAGD_DT_Q8_0;
    }
    return ragd_cpu_store_dtype(t);
}

void ragd_cpu_mat_pack(ragd_cpu_mat *m, const ragd_tensor *t, ragd_dtype dt, void *mem, float *row_scratch) {
    RAGD_ASSERT(t->n_dims == 2);
    RAGD_ASSERT(dt == RAGD_DT_F32 || dt == t->dtype || (dt == RAGD_DT_Q8_0 && t->dtype == RAGD_DT_Q4_0));
    int n = (int)t->shape[0], k = (int)t->shape[1];
    m->n = n;
    m->k = k;
    m->dt = dt;
    m->panels = mem;
    memset(mem, 0, ragd_cpu_mat_bytes(n, k, dt));
    if (is_qlayout(dt)) {
        RAGD_ASSERT(k % 32 == 0);
        qpack_fill(m, t);
        if (!qpack_matches(m, t, row_scratch))
            RAGD_DIE("%s: in-kernel dequantization differs from ragd_tensor_to_f32", t->name);
        return;
    }
    for (int r = 0; r < n; r++) {
        size_t pbase = (size_t)(r / RAGD_GEMM_NR) * (size_t)k * RAGD_GEMM_NR; /* panel [k][16] */
        int lane = r % RAGD_GEMM_NR;
        if (dt == RAGD_DT_F32) {
            float *row = row_scratch; /* [k] */
            ragd_tensor_to_f32(t, (size_t)r * (size_t)k, (size_t)k, row);
            float *panel = (float *)mem + pbase;
            for (int j = 0; j < k; j++) panel[(size_t)j * RAGD_GEMM_NR + lane] = row[j];
        } else { /* the raw 16-bit values */
            const uint8_t *src = (const uint8_t *)t->data + (size_t)r * (size_t)k * 2;
            uint16_t *panel = (uint16_t *)mem + pbase;
            for (int j = 0; j < k; j++) memcpy(&panel[(size_t)j * RAGD_GEMM_NR + lane], src + (size_t)j * 2, 2);
        }
    }
}

float ragd_cpu_mat_at(const ragd_cpu_mat *m, int row, int col) {
    if (is_qlayout(m->dt)) {
        float buf[32 * 16];
        const ragd_cpu_qblock *qb = m->panels;
        dequant_block(&qb[(size_t)(row / RAGD_GEMM_NR) * (m->k / 32) + col / 32], m->dt == RAGD_DT_Q4_1, buf);
        return buf[(col % 32) * 16 + row % RAGD_GEMM_NR];
    }
    size_t i = (size_t)(row / RAGD_GEMM_NR) * (size_t)m->k * RAGD_GEMM_NR + (size_t)col * RAGD_GEMM_NR +
               (size_t)(row % RAGD_GEMM_NR);
    return ragd_cpu_load(m->panels, m->dt, i);
}

/* ---- micro-kernels: out[tm][16] = x[tm rows, stride ldx] · panel[K][16] ---- */

static void kernel_scalar(const float *x, size_t ldx, int tm, const void *w, ragd_dtype dt, int K, float *out) {
    for (int i = 0; i < tm; i++) {
        float acc[RAGD_GEMM_NR] = {0};
        const float *xr = x + (size_t)i * ldx;
        for (int kk = 0; kk < K; kk++) {
            float xv = xr[kk];
            for (int j = 0; j < RAGD_GEMM_NR; j++)
                acc[j] = fmaf(xv, ragd_cpu_load(w, dt, (size_t)kk * RAGD_GEMM_NR + j), acc[j]);
        }
        memcpy(out + (size_t)i * RAGD_GEMM_NR, acc, sizeof acc);
    }
}

#if defined(__x86_64__)
/* the 16 weights of row kk of a panel as two f32 vectors */
#define LOAD_F32(w, kk, w0, w1)                                                                              \
    do {                                                                                                     \
        w0 = _mm256_loadu_ps((const float *)(w) + (size_t)(kk) * 16);                                        \
        w1 = _mm256_loadu_ps((const float *)(w) + (size_t)(kk) * 16 + 8);                                    \
    } while (0)
#define LOAD_BF16(w, kk, w0, w1)                                                                             \
    do {                                                                                                     \
        __m256i r_ = _mm256_loadu_si256((const __m256i *)((const uint16_t *)(w) + (size_t)(kk) * 16));       \
        w0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(r_)), 16));  \
        w1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(r_, 1)), 16)); \
    } while (0)
#define LOAD_F16(w, kk, w0, w1)                                                                              \
    do {                                                                                                     \
        const uint16_t *p_ = (const uint16_t *)(w) + (size_t)(kk) * 16;                                      \
        w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p_));                                          \
        w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p_ + 8)));                                    \
    } while (0)

#define DEF_KERNELS(SUF, LOAD)                                                                               \
    __attribute__((target("avx2,fma,f16c"))) static void kernel6_##SUF(const float *x, size_t ldx, const void *w, \
                                                                       int K, float *out) {                  \
        __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00,  \
               a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;                                        \
        const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx, *x4 = x + 4 * ldx,        \
                    *x5 = x + 5 * ldx;                                                                       \
        for (int kk = 0; kk < K; kk++) {                                                                     \
            __m256 w0, w1, b;                                                                                \
            LOAD(w, kk, w0, w1);                                                                             \
            b = _mm256_broadcast_ss(x0 + kk); a00 = _mm256_fmadd_ps(b, w0, a00); a01 = _mm256_fmadd_ps(b, w1, a01); \
            b = _mm256_broadcast_ss(x1 + kk); a10 = _mm256_fmadd_ps(b, w0, a10); a11 = _mm256_fmadd_ps(b, w1, a11); \
            b = _mm256_broadcast_ss(x2 + kk); a20 = _mm256_fmadd_ps(b, w0, a20); a21 = _mm256_fmadd_ps(b, w1, a21); \
            b = _mm256_broadcast_ss(x3 + kk); a30 = _mm256_fmadd_ps(b, w0, a30); a31 = _mm256_fmadd_ps(b, w1, a31); \
            b = _mm256_broadcast_ss(x4 + kk); a40 = _mm256_fmadd_ps(b, w0, a40); a41 = _mm256_fmadd_ps(b, w1, a41); \
            b = _mm256_broadcast_ss(x5 + kk); a50 = _mm256_fmadd_ps(b, w0, a50); a51 = _mm256_fmadd_ps(b, w1, a51); \
        }                                                                                                    \
        _mm256_storeu_ps(out + 0, a00); _mm256_storeu_ps(out + 8, a01);                                      \
        _mm256_storeu_ps(out + 16, a10); _mm256_storeu_ps(out + 24, a11);                                    \
        _mm256_storeu_ps(out + 32, a20); _mm256_storeu_ps(out + 40, a21);                                    \
        _mm256_storeu_ps(out + 48, a30); _mm256_storeu_ps(out + 56, a31);                                    \
        _mm256_storeu_ps(out + 64, a40); _mm256_storeu_ps(out + 72, a41);                                    \
        _mm256_storeu_ps(out + 80, a50); _mm256_storeu_ps(out + 88, a51);                                    \
    }                                                                                                        \
    /* tm < 6 rows: same per-element chain, one row at a time */                                             \
    __attribute__((target("avx2,fma,f16c"))) static void kernelr_##SUF(const float *x, size_t ldx, int tm,   \
                                                                       const void *w, int K, float *out) {   \
        for (int i = 0; i < tm; i++) {                                                                       \
            const float *xr = x + (size_t)i * ldx;                                                           \
            __m256 a0 = _mm256_setzero_ps(), a1 = a0;                                                        \
            for (int kk = 0; kk < K; kk++) {                                                                 \
                __m256 w0, w1, b = _mm256_broadcast_ss(xr + kk);                                             \
                LOAD(w, kk, w0, w1);                                                                         \
                a0 = _mm256_fmadd_ps(b, w0, a0);                                                             \
                a1 = _mm256_fmadd_ps(b, w1, a1);                                                             \
            }                                                                                                \
            _mm256_storeu_ps(out + (size_t)i * 16, a0);                                                      \
            _mm256_storeu_ps(out + (size_t)i * 16 + 8, a1);                                                  \
        }                                                                                                    \
    }

DEF_KERNELS(f32, LOAD_F32)
DEF_KERNELS(bf16, LOAD_BF16)
DEF_KERNELS(f16, LOAD_F16)

/* out[tm][16] += x[tm rows, ldx] · buf[32][16]: the chain continues from the accumulators in out (a store
 * and a load do not round), so block by block it is the same single FMA chain over k */
__attribute__((target("avx2,fma"))) static void kernel6_acc32(const float *x, size_t ldx, const float *w, float *out) {
    __m256 a00 = _mm256_loadu_ps(out + 0), a01 = _mm256_loadu_ps(out + 8), a10 = _mm256_loadu_ps(out + 16),
           a11 = _mm256_loadu_ps(out + 24), a20 = _mm256_loadu_ps(out + 32), a21 = _mm256_loadu_ps(out + 40),
           a30 = _mm256_loadu_ps(out + 48), a31 = _mm256_loadu_ps(out + 56), a40 = _mm256_loadu_ps(out + 64),
           a41 = _mm256_loadu_ps(out + 72), a50 = _mm256_loadu_ps(out + 80), a51 = _mm256_loadu_ps(out + 88);
    const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx, *x4 = x + 4 * ldx, *x5 = x + 5 * ldx;
    for (int kk = 0; kk < 32; kk++) {
        __m256 w0 = _mm256_loadu_ps(w + kk * 16), w1 = _mm256_loadu_ps(w + kk * 16 + 8), b;
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

__attribute__((target("avx2,fma"))) static void kernelr_acc32(const float *x, size_t ldx, int tm, const float *w,
                                                              float *out) {
    for (int i = 0; i < tm; i++) {
        const float *xr = x + (size_t)i * ldx;
        __m256 a0 = _mm256_loadu_ps(out + i * 16), a1 = _mm256_loadu_ps(out + i * 16 + 8);
        for (int kk = 0; kk < 32; kk++) {
            __m256 b = _mm256_broadcast_ss(xr + kk);
            a0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(w + kk * 16), a0);
            a1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(w + kk * 16 + 8), a1);
        }
        _mm256_storeu_ps(out + i * 16, a0);
        _mm256_storeu_ps(out + i * 16 + 8, a1);
    }
}

/* one token (decode): dequantize in registers. The empty asm keeps each product a rounded f32 value, so the
 * compiler can never fuse q·d + m into an FMA (the values stay those of dequant_block_avx2) */
__attribute__((target("avx2,fma"))) static void kernel1_q(const float *x, const ragd_cpu_qblock *w, bool has_min,
                                                          int K, float *out) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (int b = 0; b < K / 32; b++) {
        const ragd_cpu_qblock *blk = &w[b];
        __m256 d0 = _mm256_loadu_ps(blk->d), d1 = _mm256_loadu_ps(blk->d + 8);
        __m256 m0 = _mm256_loadu_ps(blk->m), m1 = _mm256_loadu_ps(blk->m + 8);
        const float *xb = x + b * 32;
        for (int kk = 0; kk < 32; kk++) {
            __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)blk->q[kk])));
            __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk->q[kk] + 8))));
            f0 = _mm256_mul_ps(f0, d0);
            f1 = _mm256_mul_ps(f1, d1);
            if (has_min) {
                __asm__("" : "+x"(f0), "+x"(f1));
                f0 = _mm256_add_ps(f0, m0);
                f1 = _mm256_add_ps(f1, m1);
            }
            __asm__("" : "+x"(f0), "+x"(f1));
            __m256 bx = _mm256_broadcast_ss(xb + kk);
            a0 = _mm256_fmadd_ps(bx, f0, a0);
            a1 = _mm256_fmadd_ps(bx, f1, a1);
        }
    }
    _mm256_storeu_ps(out, a0);
    _mm256_storeu_ps(out + 8, a1);
}

/* quantized panel: dequantize each 32-input block into L1, then continue the FMA chains over it */
static void micro_q(const float *x, size_t ldx, int tm, const ragd_cpu_qblock *w, bool has_min, int K, float *out) {
    if (tm == 1) {
        kernel1_q(x, w, has_min, K, out);
        return;
    }
    float buf[32 * 16] __attribute__((aligned(32))); /* [32][16] */
    memset(out, 0, sizeof(float) * (size_t)tm * RAGD_GEMM_NR);
    for (int b = 0; b < K / 32; b++) {
        dequant_block_avx2(&w[b], has_min, buf);
        if (tm == MR) kernel6_acc32(x + b * 32, ldx, buf, out);
        else kernelr_acc32(x + b * 32, ldx, tm, buf, out);
    }
}
#endif

static void micro(const float *x, size_t ldx, int tm, const void *w, ragd_dtype dt, int K, float *out) {
#if defined(__x86_64__)
    if (is_qlayout(dt)) { /* chosen only with AVX2 (ragd_cpu_panel_dtype) */
        micro_q(x, ldx, tm, w, dt == RAGD_DT_Q4_1, K, out);
        return;
    }
    if (ragd_cpu_has_avx2() && (dt != RAGD_DT_F16 || has_f16c())) {
        if (dt == RAGD_DT_F32) {
            if (tm == MR) kernel6_f32(x, ldx, w, K, out);
            else kernelr_f32(x, ldx, tm, w, K, out);
        } else if (dt == RAGD_DT_BF16) {
            if (tm == MR) kernel6_bf16(x, ldx, w, K, out);
            else kernelr_bf16(x, ldx, tm, w, K, out);
        } else {
            if (tm == MR) kernel6_f16(x, ldx, w, K, out);
            else kernelr_f16(x, ldx, tm, w, K, out);
        }
        return;
    }
#endif
    kernel_scalar(x, ldx, tm, w, dt, K, out);
}

/* a 16-bit panel [K][16] → f32 (exact widening, the values the 16-bit kernels use) */
#if defined(__x86_64__)
__attribute__((target("avx2,f16c"))) static void widen_panel_avx2(const void *w, ragd_dtype dt, int K, float *dst) {
    for (int kk = 0; kk < K; kk++) {
        __m256 w0, w1;
        if (dt == RAGD_DT_BF16) LOAD_BF16(w, kk, w0, w1);
        else LOAD_F16(w, kk, w0, w1);
        _mm256_storeu_ps(dst + (size_t)kk * 16, w0);
        _mm256_storeu_ps(dst + (size_t)kk * 16 + 8, w1);
    }
}
#endif

static void widen_panel(const void *w, ragd_dtype dt, int K, float *dst) {
#if defined(__x86_64__)
    if (ragd_cpu_has_avx2() && (dt != RAGD_DT_F16 || has_f16c())) {
        widen_panel_avx2(w, dt, K, dst);
        return;
    }
#endif
    for (size_t i = 0; i < (size_t)K * RAGD_GEMM_NR; i++) dst[i] = ragd_cpu_load(w, dt, i);
}

typedef struct {
    const ragd_cpu_mat *w;
    const float *x; /* [T, K] */
    int T;
    const float *bias; /* [N] or NULL */
    float *y;          /* [T, N] */
    float *ws;         /* [nth][K * 16] or NULL */
} gemm_job;

static void gemm_task(void *ctx, int ith, int nth) {
    gemm_job *j = ctx;
    int N = j->w->n, K = j->w->k;
    int n_panels = (N + RAGD_GEMM_NR - 1) / RAGD_GEMM_NR;
    int p0 = (int)((int64_t)n_panels * ith / nth), p1 = (int)((int64_t)n_panels * (ith + 1) / nth);
    float tile[MR * RAGD_GEMM_NR]; /* [MR][16] */
    for (int p = p0; p < p1; p++) {
        const void *panel = (const uint8_t *)j->w->panels +
                            (size_t)p * ragd_cpu_mat_bytes(RAGD_GEMM_NR, K, j->w->dt); /* one panel of 16 outputs */
        int n0 = p * RAGD_GEMM_NR, nn = N - n0 < RAGD_GEMM_NR ? N - n0 : RAGD_GEMM_NR;
        ragd_dtype dt = j->w->dt;
        if (dt != RAGD_DT_F32 && j->ws && j->T > MR) { /* widen / dequantize the panel once: [K][16] f32 */
            float *wp = j->ws + (size_t)ith * (size_t)K * RAGD_GEMM_NR;
            if (is_qlayout(dt)) {
                const ragd_cpu_qblock *qb = panel;
                for (int b = 0; b < K / 32; b++)
                    dequant_block(&qb[b], dt == RAGD_DT_Q4_1, wp + (size_t)b * 32 * RAGD_GEMM_NR);
            } else {
                widen_panel(panel, dt, K, wp);
            }
            panel = wp;
            dt = RAGD_DT_F32;
        }
        for (int t = 0; t < j->T; t += MR) {
            int tm = j->T - t < MR ? j->T - t : MR;
            micro(j->x + (size_t)t * K, (size_t)K, tm, panel, dt, K, tile);
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

void ragd_cpu_gemm(ragd_cpu_pool *pool, const ragd_cpu_mat *w, const float *x, int T, const float *bias, float *y,
                   float *ws) {
    gemm_job j = {w, x, T, bias, y, ws};
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

/* ---- attention blocks: the same operations as ragd_cpu_dot / ragd_cpu_axpy per (query, key) ---- */

#if defined(__x86_64__)
/* ragd_cpu_dot for n % 8 == 0, inlined: 8 lane chains, then ((l0+l4)+(l1+l5)) + ((l2+l6)+(l3+l7)) */
__attribute__((target("avx2,fma"), always_inline)) static inline float dot_avx2_inl(const float *a, const float *b,
                                                                                    int n) {
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    __m128 v = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1)); /* l0+l4 .. l3+l7 */
    __m128 h = _mm_hadd_ps(v, v);                                                    /* x0+x1, x2+x3 */
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

__attribute__((target("avx2,fma"))) static void attn_scores_avx2(const float *const *qv, int nq, int pb,
                                                                 const ragd_cpu_rows *K, int plast, int hd,
                                                                 float scale, float *scb, size_t ldsc, float *mx) {
    for (int kk = 0; kk <= plast; kk++) {
        const float *kr = ragd_cpu_row(K, kk);
        for (int q = kk > pb ? kk - pb : 0; q < nq; q++) {
            float v = dot_avx2_inl(qv[q], kr, hd) * scale;
            scb[(size_t)q * ldsc + kk] = v;
            if (v > mx[q]) mx[q] = v;
        }
    }
}

__attribute__((target("avx2,fma"))) static void attn_pv_avx2(float *const *out, int nq, int pb,
                                                             const ragd_cpu_rows *V, int plast, int hd,
                                                             const float *scb, size_t ldsc, const float *sum) {
    for (int kk = 0; kk <= plast; kk++) {
        const float *vr = ragd_cpu_row(V, kk);
        for (int q = kk > pb ? kk - pb : 0; q < nq; q++) {
            __m256 av = _mm256_set1_ps(scb[(size_t)q * ldsc + kk] / sum[q]);
            float *y = out[q];
            for (int i = 0; i < hd; i += 8)
                _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(vr + i), _mm256_loadu_ps(y + i)));
        }
    }
}
#endif

void ragd_cpu_attn_scores(const float *const *qv, int nq, int pb, const ragd_cpu_rows *K, int plast, int hd,
                          float scale, float *scb, size_t ldsc, float *mx) {
#if defined(__x86_64__)
    if (hd % 8 == 0 && ragd_cpu_has_avx2()) {
        attn_scores_avx2(qv, nq, pb, K, plast, hd, scale, scb, ldsc, mx);
        return;
    }
#endif
    for (int kk = 0; kk <= plast; kk++) {
        const float *kr = ragd_cpu_row(K, kk);
        for (int q = kk > pb ? kk - pb : 0; q < nq; q++) {
            float v = ragd_cpu_dot(qv[q], kr, hd) * scale;
            scb[(size_t)q * ldsc + kk] = v;
            if (v > mx[q]) mx[q] = v;
        }
    }
}

void ragd_cpu_attn_pv(float *const *out, int nq, int pb, const ragd_cpu_rows *V, int plast, int hd,
                      const float *scb, size_t ldsc, const float *sum) {
#if defined(__x86_64__)
    if (hd % 8 == 0 && ragd_cpu_has_avx2()) {
        attn_pv_avx2(out, nq, pb, V, plast, hd, scb, ldsc, sum);
        return;
    }
#endif
    for (int kk = 0; kk <= plast; kk++) {
        const float *vr = ragd_cpu_row(V, kk);
        for (int q = kk > pb ? kk - pb : 0; q < nq; q++)
            ragd_cpu_axpy(out[q], scb[(size_t)q * ldsc + kk] / sum[q], vr, hd);
    }
}
