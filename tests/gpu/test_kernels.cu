// test_kernels.cu — every kernel of the CUDA backend against a CPU reference on fresh random inputs
// at several shapes (outputs poisoned with NaN first, so an unwritten element fails), plus bitwise
// batch-invariance checks of attention and the pinned GEMMs. Prints one row per case and exits
// non-zero when any case fails. `--quick` runs small shapes only (for compute-sanitizer).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/gemm.cuh"
#include "ck.cuh"
#include "engine/cuda/kernels.h"

static int g_fail = 0;
static std::mt19937 rng(12345);


static uint16_t f2b(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static float b2f(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static float rb(float x) { return b2f(f2b(x)); }

static std::vector<uint16_t> rand_bf16(size_t n, float scale, float offset = 0.f) {
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<uint16_t> v(n);
    for (auto &x : v) x = f2b(offset + scale * nd(rng));
    return v;
}
static std::vector<float> rand_f32(size_t n, float scale) {
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> v(n);
    for (auto &x : v) x = scale * nd(rng);
    return v;
}

template <class T>
static T *dev(const std::vector<T> &h) {
    T *d;
    CK(cudaMalloc(&d, std::max<size_t>(h.size(), 1) * sizeof(T)));
    CK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}
template <class T>
static T *dev_poison(size_t n) {  // 0xFF bytes: NaN as bf16 and f32
    T *d;
    CK(cudaMalloc(&d, std::max<size_t>(n, 1) * sizeof(T)));
    CK(cudaMemset(d, 0xFF, n * sizeof(T)));
    return d;
}
template <class T>
static std::vector<T> host(const T *d, size_t n) {
    std::vector<T> h(n);
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}

// Relative L2 error and max abs error; any non-finite output fails.
static void report(const char *name, const char *shape, const std::vector<float> &out, const std::vector<double> &ref,
                   double tol) {
    double num = 0, den = 0, mx = 0;
    size_t bad = 0;
    for (size_t i = 0; i < out.size(); i++) {
        if (!std::isfinite(out[i])) {
            bad++;
            continue;
        }
        double d = out[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
        mx = std::max(mx, std::fabs(d));
    }
    double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
    bool ok = bad == 0 && rel <= tol;
    if (!ok) g_fail++;
    printf("%-14s %-34s rel %.3e  max_abs %.3e  nonfinite %zu  tol %.0e  %s\n", name, shape, rel, mx, bad, tol,
           ok ? "PASS" : "FAIL");
}
static void report_bits(const char *name, const char *shape, bool same) {
    if (!same) g_fail++;
    printf("%-14s %-34s bitwise identical: %s  %s\n", name, shape, same ? "yes" : "NO", same ? "PASS" : "FAIL");
}
static std::vector<float> bf_to_f(const std::vector<uint16_t> &v) {
    std::vector<float> o(v.size());
    for (size_t i = 0; i < v.size(); i++) o[i] = b2f(v[i]);
    return o;
}

// ---- cases

static void t_embed(int T, int V, int E) {
    auto table = rand_bf16((size_t)V * E, 1.f);
    std::vector<int32_t> tok(T);
    for (auto &t : tok) t = (int)(rng() % V);
    auto *dt = dev(table);
    auto *dk = dev(tok);
    float *dx = dev_poison<float>((size_t)T * E);
    CK(ragd_k_embed(dk, (const bf16 *)dt, dx, T, E, 0));
    auto out = host(dx, (size_t)T * E);
    std::vector<double> ref((size_t)T * E);
    for (int t = 0; t < T; t++)
        for (int e = 0; e < E; e++) ref[(size_t)t * E + e] = b2f(table[(size_t)tok[t] * E + e]);
    char sh[64];
    snprintf(sh, sizeof sh, "T=%d V=%d E=%d", T, V, E);
    report("embed", sh, out, ref, 0);
    cudaFree(dt), cudaFree(dk), cudaFree(dx);
}

static void t_rmsnorm(int T, int E) {
    auto x = rand_f32((size_t)T * E, 3.f);
    auto w = rand_bf16(E, 0.2f, 1.f);
    float *dx = dev(x);
    auto *dw = dev(w);
    bf16 *dout = dev_poison<bf16>((size_t)T * E);
    const float eps = 1e-6f;
    CK(ragd_k_rmsnorm(dx, (const bf16 *)dw, dout, T, E, eps, 0));
    auto out = bf_to_f(host((uint16_t *)dout, (size_t)T * E));
    std::vector<double> ref((size_t)T * E);
    for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int e = 0; e < E; e++) ss += (double)x[(size_t)t * E + e] * x[(size_t)t * E + e];
        float r = (float)(1.0 / std::sqrt(ss / E + eps));
        for (int e = 0; e < E; e++) ref[(size_t)t * E + e] = rb(b2f(w[e]) * rb(x[(size_t)t * E + e] * r));
    }
    char sh[64];
    snprintf(sh, sizeof sh, "T=%d E=%d", T, E);
    report("rmsnorm", sh, out, ref, 2e-3);
    cudaFree(dx), cudaFree(dw), cudaFree(dout);
}

// ragd_k_qk_norm_rope_append = ragd_k_qk_norm_rope followed by ragd_k_kv_append, bit for bit (the
// q/k/v rows and the cache rows), tokens of 3 sequences scattered over a paged cache of blocks of 16.
static void t_rope_append(int T, int nH, int nKV, int hd, bool qk_norm) {
    const int ld = (nH + 2 * nKV) * hd, bs = 16, nblk = 64;
    const size_t Dkv = (size_t)nKV * hd, cache_n = (size_t)nblk * bs * Dkv;
    auto qkv = rand_bf16((size_t)T * ld, 1.5f);
    auto qn = rand_bf16(hd, 0.2f, 1.f), kn = rand_bf16(hd, 0.2f, 1.f);
    std::vector<int32_t> pos(T), tokseq(T), blk_start = {0, 20, 40, 60}, blocks(60);
    for (int j = 0; j < 60; j++) blocks[j] = (j * 37 + 5) % nblk;  // a permutation of 60 of the 64 blocks
    for (int t = 0; t < T; t++) tokseq[t] = t % 3, pos[t] = (int)(t / 3 * 7 % 300);
    std::vector<float> inv(hd / 2);
    for (int i = 0; i < hd / 2; i++) inv[i] = 1.0f / powf(1e6f, (float)(2 * i) / (float)hd);
    auto *a = dev(qkv), *b = dev(qkv);
    auto *dqn = dev(qn), *dkn = dev(kn);
    auto *dpos = dev(pos), *dts = dev(tokseq), *dbs = dev(blk_start), *dbl = dev(blocks);
    auto *dinv = dev(inv);
    std::vector<uint16_t> zero(cache_n, 0);
    auto *kc1 = dev(zero), *vc1 = dev(zero), *kc2 = dev(zero), *vc2 = dev(zero);
    const bf16 *qnp = qk_norm ? (const bf16 *)dqn : nullptr, *knp = qk_norm ? (const bf16 *)dkn : nullptr;
    CK(ragd_k_qk_norm_rope((bf16 *)a, dpos, dinv, qnp, knp, T, nH, nKV, hd, 1e-6f, 0));
    CK(ragd_k_kv_append((const bf16 *)a, (bf16 *)kc1, (bf16 *)vc1, dpos, dts, dbs, dbl, T, nH, nKV, hd, bs, 0));
    CK(ragd_k_qk_norm_rope_append((bf16 *)b, dpos, dinv, qnp, knp, T, nH, nKV, hd, 1e-6f, (bf16 *)kc2, (bf16 *)vc2,
                                  dts, dbs, dbl, bs, 0));
    CK(cudaDeviceSynchronize());
    auto host = [](const uint16_t *d, size_t n) {
        std::vector<uint16_t> h(n);
        CK(cudaMemcpy(h.data(), d, n * 2, cudaMemcpyDeviceToHost));
        return h;
    };
    char sh[96];
    snprintf(sh, sizeof sh, "T=%d nH=%d nKV=%d hd=%d qk_norm=%d", T, nH, nKV, hd, (int)qk_norm);
    const bool same = host(a, qkv.size()) == host(b, qkv.size()) && host(kc1, cache_n) == host(kc2, cache_n) &&
                      host(vc1, cache_n) == host(vc2, cache_n);
    size_t nz = 0;  // the append wrote something (the cache started at zero)
    for (uint16_t v : host(kc2, cache_n)) nz += v != 0;
    report_bits("rope_append", sh, same && nz > 0);
    for (void *p : {(void *)a, (void *)b, (void *)dqn, (void *)dkn, (void *)dpos, (void *)dts, (void *)dbs, (void *)dbl,
                    (void *)dinv, (void *)kc1, (void *)vc1, (void *)kc2, (void *)vc2})
        CK(cudaFree(p));
}

static void t_rope(int T, int nH, int nKV, int hd, bool qk_norm) {
    const int ld = (nH + 2 * nKV) * hd;
    auto qkv = rand_bf16((size_t)T * ld, 1.5f);
    auto qn = rand_bf16(hd, 0.2f, 1.f), kn = rand_bf16(hd, 0.2f, 1.f);
    std::vector<int32_t> pos(T);
    for (int t = 0; t < T; t++) pos[t] = (int)(rng() % 40000);
    std::vector<float> inv(hd / 2);
    for (int i = 0; i < hd / 2; i++) inv[i] = 1.0f / powf(1e6f, (float)(2 * i) / (float)hd);
    auto *d = dev(qkv);
    auto *dqn = dev(qn), *dkn = dev(kn);
    auto *dpos = dev(pos);
    auto *dinv = dev(inv);
    const float eps = 1e-6f;
    CK(ragd_k_qk_norm_rope((bf16 *)d, dpos, dinv, qk_norm ? (const bf16 *)dqn : nullptr,
                           qk_norm ? (const bf16 *)dkn : nullptr, T, nH, nKV, hd, eps, 0));
    auto out = bf_to_f(host(d, (size_t)T * ld));
    std::vector<double> ref((size_t)T * ld);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < nH + 2 * nKV; h++) {
            const uint16_t *p = &qkv[(size_t)t * ld + (size_t)h * hd];
            double *r = &ref[(size_t)t * ld + (size_t)h * hd];
            std::vector<float> y(hd);
            for (int i = 0; i < hd; i++) y[i] = b2f(p[i]);
            if (h >= nH + nKV) {  // v untouched
                for (int i = 0; i < hd; i++) r[i] = y[i];
                continue;
            }
            if (qk_norm) {
                const std::vector<uint16_t> &w = h < nH ? qn : kn;
                double ss = 0;
                for (int i = 0; i < hd; i++) ss += (double)y[i] * y[i];
                float rs = (float)(1.0 / std::sqrt(ss / hd + eps));
                for (int i = 0; i < hd; i++) y[i] = rb(b2f(w[i]) * rb(y[i] * rs));
            }
            for (int i = 0; i < hd / 2; i++) {
                float f = (float)pos[t] * inv[i];
                float c = rb(cosf(f)), s = rb(sinf(f));
                r[i] = rb(rb(y[i] * c) + rb(-y[i + hd / 2] * s));
                r[i + hd / 2] = rb(rb(y[i + hd / 2] * c) + rb(y[i] * s));
            }
        }
    char sh[64];
    snprintf(sh, sizeof sh, "T=%d h=%d/%d hd=%d qknorm=%d", T, nH, nKV, hd, qk_norm);
    report("qk_norm_rope", sh, out, ref, 1e-2);
    cudaFree(d), cudaFree(dqn), cudaFree(dkn), cudaFree(dpos), cudaFree(dinv);
}

static void t_swiglu(int T, int F) {
    auto gu = rand_bf16((size_t)T * 2 * F, 2.f);
    auto *d = dev(gu);
    bf16 *dout = dev_poison<bf16>((size_t)T * F);
    CK(ragd_k_swiglu((const bf16 *)d, dout, T, F, 0));
    auto out = bf_to_f(host((uint16_t *)dout, (size_t)T * F));
    std::vector<double> ref((size_t)T * F);
    for (int t = 0; t < T; t++)
        for (int c = 0; c < F; c++) {
            float g = b2f(gu[(size_t)t * 2 * F + c]), u = b2f(gu[(size_t)t * 2 * F + F + c]);
            ref[(size_t)t * F + c] = rb(rb(g / (1.f + expf(-g))) * u);
        }
    char sh[64];
    snprintf(sh, sizeof sh, "T=%d F=%d", T, F);
    report("swiglu", sh, out, ref, 2e-3);
    cudaFree(d), cudaFree(dout);
}

// Runs attention for the given lengths packed; returns the output [T, nH*hd] as bf16 bits.
static std::vector<uint16_t> run_attn(const std::vector<uint16_t> &qkv, const std::vector<int> &lens, int nH, int nKV,
                                      int hd, int causal = 1) {
    std::vector<int32_t> ss(lens.size() + 1, 0);
    for (size_t i = 0; i < lens.size(); i++) ss[i + 1] = ss[i] + lens[i];
    const int T = ss.back();
    std::vector<int2> tiles((size_t)T / RAGD_ATTN_BM + lens.size() + 1);
    int nt = ragd_attn_tiles((int)lens.size(), ss.data(), tiles.data(), (int)tiles.size());
    tiles.resize(nt);
    auto *dq = dev(qkv);
    auto *ds = dev(ss);
    auto *dt = dev(tiles);
    bf16 *dout = dev_poison<bf16>((size_t)T * nH * hd);
    CK(ragd_k_attention((const bf16 *)dq, dout, ds, dt, nt, nH, nKV, hd, causal, 0));
    auto out = host((uint16_t *)dout, (size_t)T * nH * hd);
    cudaFree(dq), cudaFree(ds), cudaFree(dt), cudaFree(dout);
    return out;
}

// Batch invariance: the last sequence alone, and first in the reversed packing, must give the bits it
// got packed last (out_b: the output of the original packing).
static void attn_invariance(const std::vector<uint16_t> &qkv, const std::vector<int> &lens, int nH, int nKV, int hd,
                            const std::vector<uint16_t> &out_b, const char *sh, int causal) {
    const int ld = (nH + 2 * nKV) * hd;
    int T = 0;
    for (int l : lens) T += l;
    if (lens.size() > 1) {
        int Ll = lens.back();
        std::vector<uint16_t> alone(qkv.end() - (size_t)Ll * ld, qkv.end());
        auto o1 = run_attn(alone, {Ll}, nH, nKV, hd, causal);
        std::vector<uint16_t> shuffled;
        std::vector<int> lens2;
        for (int i = (int)lens.size() - 1, off = T; i >= 0; i--) {
            off -= lens[i];
            shuffled.insert(shuffled.end(), qkv.begin() + (size_t)off * ld, qkv.begin() + (size_t)(off + lens[i]) * ld);
            lens2.push_back(lens[i]);
        }
        auto o2 = run_attn(shuffled, lens2, nH, nKV, hd, causal);  // last sequence is now first
        bool same = memcmp(o1.data(), o2.data(), o1.size() * 2) == 0 &&
                    memcmp(o1.data(), out_b.data() + (size_t)(T - Ll) * nH * hd, o1.size() * 2) == 0;
        report_bits("attn_invar", sh, same);
    }
}

// The attention kernel against the float64 reference, and bitwise alone vs packed.
// causal 0: bidirectional (encoders): every query row attends to its whole sequence.
static void t_attention(const std::vector<int> &lens, int nH, int nKV, int hd, int causal = 1) {
    const int ld = (nH + 2 * nKV) * hd;
    int T = 0;
    for (int l : lens) T += l;
    auto qkv = rand_bf16((size_t)T * ld, 1.f);
    std::vector<double> ref((size_t)T * nH * hd);
    const double scale = 1.0 / std::sqrt((double)hd);
    int s0 = 0;
    for (int L : lens) {
        for (int h = 0; h < nH; h++) {
            int kvh = h / (nH / nKV);
            for (int i = 0; i < L; i++) {
                const uint16_t *q = &qkv[(size_t)(s0 + i) * ld + (size_t)h * hd];
                const int last = causal ? i : L - 1;  // the row's last key
                std::vector<double> sc(last + 1);
                double mx = -1e300;
                for (int j = 0; j <= last; j++) {
                    const uint16_t *k = &qkv[(size_t)(s0 + j) * ld + (size_t)(nH + kvh) * hd];
                    double a = 0;
                    for (int e = 0; e < hd; e++) a += (double)b2f(q[e]) * b2f(k[e]);
                    sc[j] = a * scale;
                    mx = std::max(mx, sc[j]);
                }
                double sum = 0;
                for (int j = 0; j <= last; j++) sum += (sc[j] = std::exp(sc[j] - mx));
                double *r = &ref[(size_t)(s0 + i) * nH * hd + (size_t)h * hd];
                for (int e = 0; e < hd; e++) r[e] = 0;
                for (int j = 0; j <= last; j++) {
                    const uint16_t *v = &qkv[(size_t)(s0 + j) * ld + (size_t)(nH + nKV + kvh) * hd];
                    for (int e = 0; e < hd; e++) r[e] += sc[j] / sum * b2f(v[e]);
                }
            }
        }
        s0 += L;
    }
    auto out_b = run_attn(qkv, lens, nH, nKV, hd, causal);
    char sh[96];
    int n = snprintf(sh, sizeof sh, "%sh=%d/%d hd=%d L=", causal ? "" : "bidir ", nH, nKV, hd);
    for (size_t i = 0; i < lens.size() && n < 80; i++)
        n += snprintf(sh + n, sizeof sh - n, "%s%d", i ? "," : "", lens[i]);
    report("attention", sh, bf_to_f(out_b), ref, 1e-2);
    attn_invariance(qkv, lens, nH, nKV, hd, out_b, sh, causal);
}

// norm 0: the encoders' pooling (no final norm: the rows' own f32 values).
static void t_pool(const std::vector<int> &lens, int E, int mode, int norm = 1) {
    int T = 0;
    for (int l : lens) T += l;
    auto x = rand_f32((size_t)T * E, 2.f);
    auto w = rand_bf16(E, 0.2f, 1.f);
    std::vector<int32_t> ss(lens.size() + 1, 0);
    for (size_t i = 0; i < lens.size(); i++) ss[i + 1] = ss[i] + lens[i];
    float *dx = dev(x);
    auto *dw = dev(w);
    auto *ds = dev(ss);
    int S = (int)lens.size();
    float *dout = dev_poison<float>((size_t)S * E);
    const float eps = 1e-6f;
    CK(ragd_k_pool(dx, norm ? (const bf16 *)dw : nullptr, ds, S, E, eps, mode, dout, 0));
    auto out = host(dout, (size_t)S * E);
    std::vector<double> ref((size_t)S * E, 0.0);
    auto row_vals = [&](int t, std::vector<double> &v) {  // the pooled values of row t
        double s2 = 0;
        for (int e = 0; e < E; e++) s2 += (double)x[(size_t)t * E + e] * x[(size_t)t * E + e];
        float r = (float)(1.0 / std::sqrt(s2 / E + eps));
        for (int e = 0; e < E; e++)
            v[e] = norm ? rb(b2f(w[e]) * rb(x[(size_t)t * E + e] * r)) : (double)x[(size_t)t * E + e];
    };
    std::vector<double> v(E);
    for (int s = 0; s < S; s++) {
        std::vector<double> acc(E, mode == RAGD_CUDA_POOL_MAX ? -1e300 : 0.0);
        if (mode == RAGD_CUDA_POOL_LAST || mode == RAGD_CUDA_POOL_CLS) {
            row_vals(mode == RAGD_CUDA_POOL_LAST ? ss[s + 1] - 1 : ss[s], v);
            acc = v;
        }
        for (int t = ss[s]; (mode == RAGD_CUDA_POOL_MEAN || mode == RAGD_CUDA_POOL_MAX) && t < ss[s + 1]; t++) {
            row_vals(t, v);
            for (int e = 0; e < E; e++)
                acc[e] = mode == RAGD_CUDA_POOL_MAX ? std::max(acc[e], v[e]) : acc[e] + v[e] / lens[s];
        }
        for (int e = 0; e < E; e++) ref[(size_t)s * E + e] = acc[e];
    }
    static const char *names[] = {"last", "mean", "cls", "max"};
    char sh[64];
    snprintf(sh, sizeof sh, "S=%d T=%d E=%d mode=%s%s", S, T, E, names[mode], norm ? "" : " no-norm");
    report("pool", sh, out, ref, 2e-3);
    cudaFree(dx), cudaFree(dw), cudaFree(ds), cudaFree(dout);
}

// torch's f32 LayerNorm of one row, in double: (v - mean) / sqrt(var + eps) * w + b.
static void ln_ref(const std::vector<double> &v, const std::vector<uint16_t> &w, const std::vector<uint16_t> &b, double eps,
                   double *out) {
    const size_t E = v.size();
    double mean = 0, var = 0;
    for (double a : v) mean += a;
    mean /= (double)E;
    for (double a : v) var += (a - mean) * (a - mean);
    var /= (double)E;
    for (size_t e = 0; e < E; e++) out[e] = (v[e] - mean) / std::sqrt(var + eps) * b2f(w[e]) + b2f(b[e]);
}

// x = LN(x + add) in place (f32) and bf16(x) — the post-norm residual of the encoder blocks.
static void t_layernorm(int T, int E, bool add) {
    auto x = rand_f32((size_t)T * E, 3.f);
    for (size_t i = 0; i < x.size(); i++) x[i] += 0.7f;  // a mean away from 0
    auto w = rand_bf16(E, 0.3f, 1.f), b = rand_bf16(E, 0.2f), a = rand_bf16(E, 0.5f);
    float *dx = dev(x);
    auto *dw = dev(w);
    auto *db = dev(b);
    auto *da = dev(a);
    bf16 *dout = dev_poison<bf16>((size_t)T * E);
    const float eps = 1e-12f;
    CK(ragd_k_layernorm(dx, add ? (const bf16 *)da : nullptr, (const bf16 *)dw, (const bf16 *)db, eps, T, E, dout, 0));
    auto xo = host(dx, (size_t)T * E);
    auto ob = bf_to_f(host((uint16_t *)dout, (size_t)T * E));
    std::vector<double> ref((size_t)T * E);
    for (int t = 0; t < T; t++) {
        std::vector<double> v(E);
        for (int e = 0; e < E; e++) v[e] = (double)x[(size_t)t * E + e] + (add ? b2f(a[e]) : 0.f);
        ln_ref(v, w, b, eps, &ref[(size_t)t * E]);
    }
    char sh[64];
    snprintf(sh, sizeof sh, "T=%d E=%d%s", T, E, add ? " +bias" : "");
    report("layernorm_f32", sh, xo, ref, 1e-5);
    report("layernorm_bf16", sh, ob, ref, 5e-3);
    cudaFree(dx), cudaFree(dw), cudaFree(db), cudaFree(da), cudaFree(dout);
}

// x = LN((word + type) + pos) for BERT-style embeddings (type table optional).
static void t_embed_abs(int T, int E, bool types) {
    const int V = 500, P = 520, NT = 2;
    auto word = rand_bf16((size_t)V * E, 1.f), pos = rand_bf16((size_t)P * E, 0.5f), type = rand_bf16((size_t)NT * E, 0.5f);
    auto w = rand_bf16(E, 0.3f, 1.f), b = rand_bf16(E, 0.2f);
    std::vector<int32_t> tok(T), tt(T), pr(T);
    for (int t = 0; t < T; t++) tok[t] = (int)(rng() % V), tt[t] = (int)(rng() % NT), pr[t] = (int)(rng() % P);
    auto *dwd = dev(word), *dps = dev(pos), *dty = dev(type), *dw = dev(w), *db = dev(b);
    auto *dtok = dev(tok), *dtt = dev(tt), *dpr = dev(pr);
    float *dx = dev_poison<float>((size_t)T * E);
    bf16 *dout = dev_poison<bf16>((size_t)T * E);
    CK(ragd_k_embed_abs(dtok, types ? dtt : nullptr, dpr, (const bf16 *)dwd, types ? (const bf16 *)dty : nullptr,
                        (const bf16 *)dps, (const bf16 *)dw, (const bf16 *)db, 1e-5f, T, E, dx, dout, 0));
    auto xo = host(dx, (size_t)T * E);
    std::vector<double> ref((size_t)T * E);
    for (int t = 0; t < T; t++) {
        std::vector<double> v(E);
        for (int e = 0; e < E; e++) {
            float a = b2f(word[(size_t)tok[t] * E + e]);
            if (types) a += b2f(type[(size_t)tt[t] * E + e]);
            v[e] = a + b2f(pos[(size_t)pr[t] * E + e]);
        }
        ln_ref(v, w, b, 1e-5, &ref[(size_t)t * E]);
    }
    char sh[64];
    snprintf(sh, sizeof sh, "T=%d E=%d%s", T, E, types ? " types" : "");
    report("embed_abs", sh, xo, ref, 1e-5);
    cudaFree(dwd), cudaFree(dps), cudaFree(dty), cudaFree(dw), cudaFree(db), cudaFree(dtok), cudaFree(dtt);
    cudaFree(dpr), cudaFree(dx), cudaFree(dout);
}

static void t_gelu(int T, int F, int tanh_form) {
    auto in = rand_bf16((size_t)T * F, 3.f);
    auto *d = dev(in);
    bf16 *dout = dev_poison<bf16>((size_t)T * F);
    CK(ragd_k_gelu((const bf16 *)d, dout, T, F, tanh_form, 0));
    auto out = bf_to_f(host((uint16_t *)dout, (size_t)T * F));
    std::vector<double> ref((size_t)T * F);
    for (size_t i = 0; i < ref.size(); i++) {
        double x = b2f(in[i]);
        ref[i] = tanh_form ? 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)))
                           : 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    }
    char sh[64];
    snprintf(sh, sizeof sh, "T=%d F=%d %s", T, F, tanh_form ? "tanh" : "erf");
    report("gelu", sh, out, ref, 4e-3);
    cudaFree(d), cudaFree(dout);
}

// The classification heads: out = act(in · W^T + b) / div.
static void t_head(int S, int N, int K, int act_tanh, float div, bool bias) {
    auto in = rand_f32((size_t)S * K, 1.f);
    auto W = rand_bf16((size_t)N * K, 0.05f), b = rand_bf16(N, 0.5f);
    float *din = dev(in);
    auto *dW = dev(W), *db = dev(b);
    float *dout = dev_poison<float>((size_t)S * N);
    CK(ragd_k_head(din, (const bf16 *)dW, bias ? (const bf16 *)db : nullptr, S, N, K, act_tanh, div, dout, 0));
    auto out = host(dout, (size_t)S * N);
    std::vector<double> ref((size_t)S * N);
    for (int s = 0; s < S; s++)
        for (int n = 0; n < N; n++) {
            double a = bias ? b2f(b[n]) : 0.0;
            for (int k = 0; k < K; k++) a += (double)in[(size_t)s * K + k] * b2f(W[(size_t)n * K + k]);
            ref[(size_t)s * N + n] = (act_tanh ? std::tanh(a) : a) / div;
        }
    char sh[64];
    snprintf(sh, sizeof sh, "S=%d N=%d K=%d%s div=%g", S, N, K, act_tanh ? " tanh" : "", div);
    report("head", sh, out, ref, 1e-5);
    cudaFree(din), cudaFree(dW), cudaFree(db), cudaFree(dout);
}

static void t_score(const std::vector<int> &lens, int E, int R) {
    int T = 0;
    for (int l : lens) T += l;
    auto x = rand_f32((size_t)T * E, 2.f);
    auto w = rand_bf16(E, 0.2f, 1.f);
    auto rows = rand_bf16((size_t)R * E, 0.05f);
    std::vector<int32_t> ss(lens.size() + 1, 0);
    for (size_t i = 0; i < lens.size(); i++) ss[i + 1] = ss[i] + lens[i];
    int S = (int)lens.size();
    float *dx = dev(x);
    auto *dw = dev(w);
    auto *ds = dev(ss);
    auto *dr = dev(rows);
    float *dout = dev_poison<float>((size_t)S * R);
    const float eps = 1e-6f;
    CK(ragd_k_score(dx, (const bf16 *)dw, ds, S, E, eps, (const bf16 *)dr, R, dout, 0));
    auto out = host(dout, (size_t)S * R);
    std::vector<double> ref((size_t)S * R);
    for (int s = 0; s < S; s++) {
        int t = ss[s + 1] - 1;
        double s2 = 0;
        for (int e = 0; e < E; e++) s2 += (double)x[(size_t)t * E + e] * x[(size_t)t * E + e];
        float r = (float)(1.0 / std::sqrt(s2 / E + eps));
        for (int j = 0; j < R; j++) {
            double a = 0;
            for (int e = 0; e < E; e++)
                a += (double)rb(b2f(w[e]) * rb(x[(size_t)t * E + e] * r)) * b2f(rows[(size_t)j * E + e]);
            ref[(size_t)s * R + j] = a;
        }
    }
    char sh[64];
    snprintf(sh, sizeof sh, "S=%d E=%d R=%d", S, E, R);
    report("score", sh, out, ref, 2e-3);
    cudaFree(dx), cudaFree(dw), cudaFree(ds), cudaFree(dr), cudaFree(dout);
}

// The startup tuning (ragd_gemm_tune): every per-T algorithm it keeps (cuBLASLt's or the skinny
// kernel) must give the reference algorithm's bits, at T inside and at the edges of each bucket, on
// random inputs. Also prints, as a diagnostic, how many outputs of each skinny variant run directly
// differ from the reference (the tuner only uses a variant that verified bit-identical).
static void t_gemm_tuned(int N, int K, int out_f32, int accumulate, int max_T, int bias = 0) {
    const int ldc = N;
    ragd_cuda_err cerr_s = {};
    ragd_cuda_err *cerr = &cerr_s;
    cublasLtHandle_t lt;
    if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) exit(2);
    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    void *ws;
    const size_t wsz = 32u << 20;
    CK(cudaMalloc(&ws, wsz));
    ragd_gemm ref, tun;
    if (ragd_gemm_init(&ref, lt, N, K, max_T, out_f32, accumulate, bias, wsz, cerr) ||
        ragd_gemm_init(&tun, lt, N, K, max_T, out_f32, accumulate, bias, wsz, cerr)) {
        printf("gemm init failed: %s\n", cerr->msg);
        g_fail++;
        return;
    }
    const size_t esz = out_f32 ? 4 : 2, ysz = (size_t)max_T * ldc * esz;
    ragd_gemm_scratch sc;
    CK(cudaMalloc((void **)&sc.W, (size_t)N * K * 2));
    CK(cudaMalloc((void **)&sc.X, (size_t)max_T * K * 2));
    CK(cudaMalloc(&sc.Y, ysz));
    sc.y_bytes = ysz;
    if (ragd_gemm_tune(&tun, lt, &sc, ws, wsz, st, cerr)) {
        printf("gemm tune failed: %s\n", cerr->msg);
        g_fail++;
        return;
    }
    CK(cudaStreamSynchronize(st));
    int n_other = 0;  // buckets served by another algorithm than the reference
    int n_skinny = 0;
    for (int b = 0; b < tun.n_bucket; b++) {
        n_other += tun.bucket_skinny[b] || memcmp(&tun.bucket_algo[b], &ref.algo, sizeof ref.algo) != 0;
        n_skinny += tun.bucket_skinny[b] != 0;
    }
    printf("  tuned N=%d K=%d bias=%d: %d buckets, %d with another algorithm (%d skinny): %s\n", N, K, bias,
           tun.n_bucket, n_other, n_skinny, tun.tune_info);
    if (tun.n_bucket == 0) {  // then the bit checks below would compare the reference with itself
        printf("gemm_tuned     N=%d K=%d: the tuning kept no buckets  FAIL\n", N, K);
        g_fail++;
    }
    auto W = rand_bf16((size_t)N * K, 0.03f);
    auto X = rand_bf16((size_t)max_T * K, 1.f);
    auto Y0 = rand_f32((size_t)max_T * ldc, 1.f);
    auto *dW = dev(W);
    auto *dX = dev(X);
    auto Bv = rand_bf16((size_t)N, 0.5f);
    auto *dBias = bias ? dev(Bv) : nullptr;
    void *dA, *dB;
    CK(cudaMalloc(&dA, ysz));
    CK(cudaMalloc(&dB, ysz));
    std::vector<char> a(ysz), b(ysz);
    // the skinny kernel run directly (diagnostic: the tuner decides whether it may be used)
    if (ragd_gemm_skinny_fits(N, K, out_f32, accumulate))
        for (int v = 1; v <= RAGD_GEMM_SKINNY_VARIANTS; v++)
            for (int T : {1, 8, 17, 32}) {
                if (T > max_T) continue;
                for (void *d : {dA, dB}) {
                    if (out_f32)
                        CK(cudaMemcpy(d, Y0.data(), (size_t)T * ldc * 4, cudaMemcpyHostToDevice));
                    else
                        CK(cudaMemset(d, 0, (size_t)T * ldc * 2));
                }
                if (ragd_gemm_run(&ref, lt, (const bf16 *)dW, (const bf16 *)dX, dA, T, (const bf16 *)dBias, ws, wsz, st,
                                  cerr))
                    exit(3);
                CK(ragd_gemm_skinny(v, (const bf16 *)dW, (const bf16 *)dX, dB, (const bf16 *)dBias, T, N, K, out_f32,
                                    accumulate, st));
                CK(cudaStreamSynchronize(st));
                CK(cudaMemcpy(a.data(), dA, (size_t)T * ldc * esz, cudaMemcpyDeviceToHost));
                CK(cudaMemcpy(b.data(), dB, (size_t)T * ldc * esz, cudaMemcpyDeviceToHost));
                size_t nd = 0;
                double worst = 0;
                for (size_t i = 0; i < (size_t)T * ldc; i++) {
                    double x, y;
                    if (out_f32) {
                        x = ((float *)a.data())[i], y = ((float *)b.data())[i];
                    } else {
                        x = __bfloat162float(((bf16 *)a.data())[i]), y = __bfloat162float(((bf16 *)b.data())[i]);
                    }
                    if (memcmp(a.data() + i * esz, b.data() + i * esz, esz)) nd++;
                    worst = std::max(worst, fabs(x - y));
                }
                printf("  skinny v%d N=%d K=%d T=%d bias=%d: %zu of %zu outputs differ from the reference (max |diff| %.3g)\n",
                       v, N, K, T, bias, nd, (size_t)T * ldc, worst);
            }
    for (int T : {1, 2, 3, 5, 8, 9, 13, 16, 17, 24, 31, 32, 33, 100, 1000, max_T}) {
        if (T > max_T) continue;
        for (void *d : {dA, dB}) {
            if (out_f32)
                CK(cudaMemcpy(d, Y0.data(), (size_t)T * ldc * 4, cudaMemcpyHostToDevice));
            else
                CK(cudaMemset(d, 0, (size_t)T * ldc * 2));
        }
        if (ragd_gemm_run(&ref, lt, (const bf16 *)dW, (const bf16 *)dX, dA, T, (const bf16 *)dBias, ws, wsz, st, cerr) ||
            ragd_gemm_run(&tun, lt, (const bf16 *)dW, (const bf16 *)dX, dB, T, (const bf16 *)dBias, ws, wsz, st, cerr)) {
            printf("gemm run failed: %s\n", cerr->msg);
            g_fail++;
            return;
        }
        CK(cudaStreamSynchronize(st));
        CK(cudaMemcpy(a.data(), dA, (size_t)T * ldc * esz, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(b.data(), dB, (size_t)T * ldc * esz, cudaMemcpyDeviceToHost));
        char sh[96];
        snprintf(sh, sizeof sh, "N=%d K=%d T=%d tuned vs reference", N, K, T);
        report_bits("gemm_tuned", sh, memcmp(a.data(), b.data(), (size_t)T * ldc * esz) == 0);
    }
    for (void *p : {(void *)sc.W, (void *)sc.X, sc.Y, (void *)dW, (void *)dX, dA, dB}) CK(cudaFree(p));
    if (dBias) CK(cudaFree(dBias));
    ragd_gemm_free(&ref);
    ragd_gemm_free(&tun);
    cudaFree(ws);
    cudaStreamDestroy(st);
    cublasLtDestroy(lt);
}

static void t_gemm(int N, int K, int T, int out_f32, int accumulate, int max_T) {
    ragd_cuda_err cerr_s = {};
    ragd_cuda_err *cerr = &cerr_s;
    cublasLtHandle_t lt;
    if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) exit(2);
    void *ws;
    const size_t wsz = 32u << 20;
    CK(cudaMalloc(&ws, wsz));
    ragd_gemm g;
    if (ragd_gemm_init(&g, lt, N, K, max_T, out_f32, accumulate, 0, wsz, cerr)) {
        printf("gemm init failed: %s\n", cerr->msg);
        g_fail++;
        return;
    }
    auto W = rand_bf16((size_t)N * K, 0.03f);
    auto X = rand_bf16((size_t)T * K, 1.f);
    auto Y0 = rand_f32((size_t)T * N, 1.f);
    auto *dW = dev(W);
    auto *dX = dev(X);
    void *dY;
    size_t ysz = (size_t)T * N * (out_f32 ? 4 : 2);
    CK(cudaMalloc(&dY, ysz));
    if (accumulate)
        CK(cudaMemcpy(dY, Y0.data(), ysz, cudaMemcpyHostToDevice));
    else
        CK(cudaMemset(dY, 0xFF, ysz));
    if (ragd_gemm_run(&g, lt, (const bf16 *)dW, (const bf16 *)dX, dY, T, nullptr, ws, wsz, 0, cerr)) {
        printf("gemm run failed: %s\n", cerr->msg);
        g_fail++;
        return;
    }
    std::vector<float> out((size_t)T * N);
    if (out_f32)
        out = host((float *)dY, (size_t)T * N);
    else
        out = bf_to_f(host((uint16_t *)dY, (size_t)T * N));
    std::vector<double> ref((size_t)T * N);
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++) {
            double a = accumulate ? Y0[(size_t)t * N + n] : 0.0;
            for (int k = 0; k < K; k++) a += (double)b2f(X[(size_t)t * K + k]) * b2f(W[(size_t)n * K + k]);
            ref[(size_t)t * N + n] = a;
        }
    char sh[96];
    snprintf(sh, sizeof sh, "N=%d K=%d T=%d %s%s", N, K, T, out_f32 ? "f32" : "bf16", accumulate ? " +=" : "");
    report("gemm", sh, out, ref, out_f32 ? 1e-5 : 4e-3);
    // batch invariance: row r computed alone (T=1) must equal row r of the big product
    int r = T / 2;
    void *dY1;
    size_t rsz = (size_t)N * (out_f32 ? 4 : 2);
    CK(cudaMalloc(&dY1, rsz));
    if (accumulate) CK(cudaMemcpy(dY1, Y0.data() + (size_t)r * N, (size_t)N * 4, cudaMemcpyHostToDevice));
    if (ragd_gemm_run(&g, lt, (const bf16 *)dW, (const bf16 *)dX + (size_t)r * K, dY1, 1, nullptr, ws, wsz, 0, cerr)) {
        g_fail++;
        return;
    }
    std::vector<char> a(rsz), b(rsz);
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(a.data(), dY1, rsz, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(b.data(), (char *)dY + (size_t)r * rsz, rsz, cudaMemcpyDeviceToHost));
    report_bits("gemm_invar", sh, memcmp(a.data(), b.data(), rsz) == 0);
    printf("               %s\n", g.info);
    ragd_gemm_free(&g);
    cudaFree(dW), cudaFree(dX), cudaFree(dY), cudaFree(dY1), cudaFree(ws);
    cublasLtDestroy(lt);
}

// Attention alone on a batch of n_seqs sequences of lo..hi tokens (Qwen3-0.6B heads: 16/8 × 128):
// median of 20 launches with events, useful causal TFLOP/s. For kernel A/B and ncu.
static int bench_attention(int n_seqs, int lo, int hi) {
    const int nH = 16, nKV = 8, hd = 128, ld = (nH + 2 * nKV) * hd;
    std::vector<int32_t> ss(n_seqs + 1, 0);
    double pairs = 0;
    for (int i = 0; i < n_seqs; i++) {
        int L = lo + (int)(rng() % (unsigned)(hi - lo + 1));
        ss[i + 1] = ss[i] + L;
        pairs += (double)L * (L + 1) / 2;
    }
    const int T = ss.back();
    auto qkv = rand_bf16((size_t)T * ld, 1.f);
    std::vector<int2> tiles((size_t)T / RAGD_ATTN_BM + n_seqs + 1);
    int nt = ragd_attn_tiles(n_seqs, ss.data(), tiles.data(), (int)tiles.size());
    tiles.resize(nt);
    auto *dq = dev(qkv);
    auto *ds = dev(ss);
    auto *dt = dev(tiles);
    bf16 *dout = dev_poison<bf16>((size_t)T * nH * hd);
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    std::vector<float> ms;
    for (int it = 0; it < 23; it++) {
        CK(cudaEventRecord(a));
        CK(ragd_k_attention((const bf16 *)dq, dout, ds, dt, nt, nH, nKV, hd, 1, 0));
        CK(cudaEventRecord(b));
        CK(cudaEventSynchronize(b));
        float x;
        CK(cudaEventElapsedTime(&x, a, b));
        if (it >= 3) ms.push_back(x);
    }
    std::sort(ms.begin(), ms.end());
    double med = ms[ms.size() / 2];
    printf("attention bench: %d seqs of %d..%d (%d tokens, %d tiles): %.3f ms, %.1f TFLOP/s useful\n", n_seqs, lo,
           hi, T, nt, med, 4.0 * pairs * hd * nH / (med * 1e-3) / 1e12);
    CK(cudaEventDestroy(a));
    CK(cudaEventDestroy(b));
    cudaFree(dq), cudaFree(ds), cudaFree(dt), cudaFree(dout);
    return 0;
}

// Element-wise kernels at the Qwen3-0.6B shape, T = 32768: ms and effective bandwidth (bytes read +
// written once), median of 20 launches. `--bench-elem`.
static void bench_elem() {
    const int T = 32768, E = 1024, nH = 16, nKV = 8, hd = 128, F = 3072;
    float *x;
    bf16 *w, *o, *qkv, *gu, *so, *qn, *kn;
    int32_t *pos;
    float *inv;
    CK(cudaMalloc(&x, (size_t)T * E * 4));
    CK(cudaMalloc(&w, E * 2));
    CK(cudaMalloc(&o, (size_t)T * E * 2));
    CK(cudaMalloc(&qkv, (size_t)T * (nH + 2 * nKV) * hd * 2));
    CK(cudaMalloc(&gu, (size_t)T * 2 * F * 2));
    CK(cudaMalloc(&so, (size_t)T * F * 2));
    CK(cudaMalloc(&qn, hd * 2));
    CK(cudaMalloc(&kn, hd * 2));
    CK(cudaMalloc(&pos, T * 4));
    CK(cudaMalloc(&inv, hd / 2 * 4));
    CK(cudaMemset(x, 0, (size_t)T * E * 4));
    CK(cudaMemset(w, 0, E * 2));
    CK(cudaMemset(qkv, 0, (size_t)T * (nH + 2 * nKV) * hd * 2));
    CK(cudaMemset(gu, 0, (size_t)T * 2 * F * 2));
    CK(cudaMemset(qn, 0, hd * 2));
    CK(cudaMemset(kn, 0, hd * 2));
    CK(cudaMemset(pos, 0, T * 4));
    CK(cudaMemset(inv, 0, hd / 2 * 4));
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    auto time = [&](const char *name, double bytes, auto fn) {
        std::vector<float> v;
        for (int r = 0; r < 23; r++) {
            CK(cudaEventRecord(a));
            CK(fn());
            CK(cudaEventRecord(b));
            CK(cudaEventSynchronize(b));
            float ms;
            CK(cudaEventElapsedTime(&ms, a, b));
            if (r >= 3) v.push_back(ms);
        }
        std::sort(v.begin(), v.end());
        printf("elem bench: %-14s T=%d: %.3f ms, %.0f GB/s\n", name, T, v[v.size() / 2], bytes / (v[v.size() / 2] * 1e-3) / 1e9);
    };
    time("rmsnorm", (double)T * E * 6, [&] { return ragd_k_rmsnorm(x, w, o, T, E, 1e-6f, 0); });
    time("qk_norm_rope", (double)T * (nH + nKV) * hd * 4,
         [&] { return ragd_k_qk_norm_rope(qkv, pos, inv, qn, kn, T, nH, nKV, hd, 1e-6f, 0); });
    time("swiglu", (double)T * F * 6, [&] { return ragd_k_swiglu(gu, so, T, F, 0); });
    for (void *p : {(void *)x, (void *)w, (void *)o, (void *)qkv, (void *)gu, (void *)so, (void *)qn, (void *)kn,
                    (void *)pos, (void *)inv})
        CK(cudaFree(p));
}

// --bench-skinny: the skinny GEMM kernel's variants vs the reference cuBLASLt algorithm at decode T
// (GPU time per call from a CUDA graph of 20 calls; weights 2× the L2 so each call streams them).
static void bench_skinny() {
    ragd_cuda_err cerr_s = {};
    ragd_cuda_err *cerr = &cerr_s;
    cublasLtHandle_t lt;
    if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) exit(2);
    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    void *ws;
    const size_t wsz = 32u << 20;
    CK(cudaMalloc(&ws, wsz));
    struct Shape { const char *name; int N, K, out_f32, acc; } shapes[] = {
        {"qkv", 4096, 1024, 0, 0}, {"o", 1024, 2048, 1, 1}, {"gate_up", 6144, 1024, 0, 0},
        {"down", 1024, 3072, 1, 1}, {"lm_head", 151669, 1024, 1, 0}};
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (const Shape &sh : shapes) {
        ragd_gemm g;
        if (ragd_gemm_init(&g, lt, sh.N, sh.K, 256, sh.out_f32, sh.acc, 0, wsz, cerr)) exit(3);
        // 16 copies of the weights (≥ 64 MB) cycled, so a call never finds its weights in the L2
        const size_t wn = (size_t)sh.N * sh.K;
        const int copies = (int)std::max<size_t>(1, std::min<size_t>(16, (size_t)(400u << 20) / (wn * 2)));
        bf16 *W, *X;
        void *Y;
        CK(cudaMalloc(&W, wn * 2 * copies));
        CK(cudaMemset(W, 0, wn * 2 * copies));
        CK(cudaMalloc(&X, (size_t)32 * sh.K * 2));
        CK(cudaMemset(X, 0, (size_t)32 * sh.K * 2));
        CK(cudaMalloc(&Y, (size_t)32 * sh.N * 4));
        for (int T : {1, 8, 32}) {
            double us[3];
            for (int v = 0; v <= RAGD_GEMM_SKINNY_VARIANTS; v++) {
                const int reps = 20;
                cudaGraph_t gr;
                cudaGraphExec_t ge;
                CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
                for (int r = 0; r < reps; r++) {
                    const bf16 *Wr = W + (size_t)(r % copies) * wn;
                    if (v == 0) {
                        if (ragd_gemm_run(&g, lt, Wr, X, Y, T, nullptr, ws, wsz, st, cerr)) exit(4);
                    } else {
                        CK(ragd_gemm_skinny(v, Wr, X, Y, nullptr, T, sh.N, sh.K, sh.out_f32, sh.acc, st));
                    }
                }
                CK(cudaStreamEndCapture(st, &gr));
                CK(cudaGraphInstantiate(&ge, gr, 0));
                CK(cudaGraphLaunch(ge, st));
                CK(cudaEventRecord(e0, st));
                CK(cudaGraphLaunch(ge, st));
                CK(cudaEventRecord(e1, st));
                CK(cudaEventSynchronize(e1));
                float ms;
                CK(cudaEventElapsedTime(&ms, e0, e1));
                us[v] = ms * 1e3 / reps;
                cudaGraphExecDestroy(ge);
                cudaGraphDestroy(gr);
            }
            printf("skinny bench %-8s N=%6d K=%d T=%2d: reference %.1f us, v1 %.1f us, v2 %.1f us (v1 %.2f TB/s)\n",
                   sh.name, sh.N, sh.K, T, us[0], us[1], us[2], wn * 2 / (us[1] * 1e-6) / 1e12);
        }
        CK(cudaFree(W));
        CK(cudaFree(X));
        CK(cudaFree(Y));
        ragd_gemm_free(&g);
    }
    cudaFree(ws);
    cudaStreamDestroy(st);
    cublasLtDestroy(lt);
}

int main(int argc, char **argv) {
    CK(ragd_k_attention_init());
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    if (argc > 1 && !strcmp(argv[1], "--bench-elem")) {
        bench_elem();
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--bench-skinny")) {
        bench_skinny();
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--bench-attn")) {
        bench_attention(256, 64, 512);
        bench_attention(1024, 16, 64);
        return 0;
    }
    cudaDeviceProp p;
    CK(cudaGetDeviceProperties(&p, 0));
    printf("device: %s, %d SMs\n", p.name, p.multiProcessorCount);
    t_embed(37, 1000, 1024);
    t_rmsnorm(1, 1024);
    t_rmsnorm(37, 2560);
    t_rmsnorm(19, 576);   // warp version, partial last float4 group
    t_rmsnorm(64, 1024);  // warp version, Qwen3-0.6B width
    t_rmsnorm(5, 2048);   // widest warp version
    t_rope(5, 16, 8, 128, true);
    t_rope(33, 9, 3, 64, true);
    t_rope(7, 4, 4, 128, false);
    t_rope(600, 9, 3, 64, true);  // the long-batch path (one warp per token)
    t_rope_append(1, 16, 8, 128, true);
    t_rope_append(37, 16, 8, 128, true);
    t_rope_append(700, 9, 3, 64, true);  // one warp per token
    t_rope_append(5, 4, 4, 128, false);
    t_swiglu(3, 3072);
    t_swiglu(29, 1536);
    t_attention({1}, 2, 1, 128);
    t_attention({17, 64, 65, 130}, 4, 2, 128);
    t_attention({5, 77, 200}, 9, 3, 64);
    t_attention({1, 17, 64, 65, 130, 200}, 6, 2, 128);  // GQA 3
    t_attention({64, 2, 130}, 4, 4, 64);                // GQA 1
    t_attention({17, 64, 65, 130}, 4, 2, 128);  // the shape of an earlier case, other random data
    t_attention({3, 100}, 8, 2, 64);
    t_pool({1, 5, 40}, 1024, RAGD_CUDA_POOL_LAST);
    t_pool({1, 5, 40}, 1024, RAGD_CUDA_POOL_MEAN);
    t_pool({3, 9}, 576, RAGD_CUDA_POOL_CLS);
    t_score({4, 1, 30}, 1024, 2);
    // encoder blocks
    t_attention({1, 17, 64, 65, 130}, 4, 4, 64, 0);  // bidirectional (BERT: no GQA)
    t_attention({5, 77, 200}, 6, 2, 128, 0);
    t_attention({3, 100}, 8, 2, 64, 0);
    t_pool({1, 5, 40}, 768, RAGD_CUDA_POOL_MEAN, 0);
    t_pool({1, 5, 40}, 768, RAGD_CUDA_POOL_CLS, 0);
    t_pool({3, 9, 64}, 1024, RAGD_CUDA_POOL_MAX, 0);
    t_pool({3, 9, 64}, 1024, RAGD_CUDA_POOL_MAX);
    t_layernorm(37, 768, true);
    t_layernorm(5, 1024, false);
    t_layernorm(3, 2048, true);
    t_embed_abs(29, 768, true);
    t_embed_abs(7, 1024, false);
    t_gelu(13, 3072, 0);
    t_gelu(5, 1024, 1);
    t_head(5, 768, 768, 1, 1.f, true);
    t_head(9, 1, 1024, 0, 1.f, true);
    t_head(3, 1, 2048, 0, 0.2f, false);
    t_gemm(512, 256, 77, 0, 0, 4096);
    if (!quick) {
        t_rmsnorm(300, 4096);
        t_rope(300, 32, 8, 128, true);
        t_swiglu(300, 12288);
        t_attention({512, 3, 300, 129}, 16, 8, 128);
        t_attention({1000, 64}, 8, 8, 64);
        t_attention({700, 1, 513}, 6, 2, 128);
        t_attention({17, 640, 65}, 8, 4, 64);
        t_attention({512, 3, 300, 129}, 16, 16, 64, 0);  // bge-m3 heads, long
        t_gemm_tuned(3072, 768, 0, 0, 8192, 1);          // bge-base's up projection with its bias
        t_pool({100, 1, 300}, 4096, RAGD_CUDA_POOL_MEAN);
        t_score({100, 250}, 2560, 16);
        t_gemm(4096, 1024, 300, 0, 0, 16384);  // Qwen3-0.6B qkv shape
        t_gemm(1024, 2048, 300, 1, 1, 16384);  // o_proj with residual
        t_gemm(6144, 1024, 500, 0, 0, 16384);  // gate|up
        t_gemm(1024, 3072, 257, 1, 1, 16384);  // down_proj with residual
        // (not in --quick: compute-sanitizer's racecheck kills the process inside graph-captured cuBLASLt
        // calls — device run 5; memcheck and synccheck pass with the tuning in)
        t_gemm_tuned(512, 256, 0, 0, 1000);
        t_gemm_tuned(4096, 1024, 0, 0, 8192);
        t_gemm_tuned(1024, 2048, 1, 1, 8192);
        t_gemm_tuned(6144, 1024, 0, 0, 8192);
        t_gemm_tuned(1024, 3072, 1, 1, 8192);
        t_gemm_tuned(4096, 1024, 0, 0, 8192, 1);             // Qwen2's qkv bias
        t_gemm_tuned(151669, 1024, 1, 0, 256);  // the lm head's shape (the net keeps its reference: results-gen2.md)
        t_gemm_tuned(1152, 576, 0, 0, 2048);                 // SmolLM2-135M's shapes (K = 576)
        t_gemm_tuned(576, 1536, 1, 1, 2048);
    }
    printf("kernel tests: %s (%d failed)\n", g_fail ? "FAIL" : "PASS", g_fail);
    return g_fail ? 1 : 0;
}
