/* test_sample.c — the reference sampler (engine/sample.c) and its arithmetic (engine/sample_math.h):
 *   - E against libm over every float in [-88, 0] it can distinguish (accuracy on a stride, and an
 *     exhaustive check that it never decreases: the C sampler and the kernel rely on it), FX, L, ⌈p·r⌉;
 *   - exact small cases worked out by hand (ties at every boundary, bans, nonfinite rows, V = 1, -0,
 *     huge and tiny temperatures, ±1e38);
 *   - thousands of random rows × parameter combinations against a float64 brute-force reference
 *     (full sort by the order, softmax in double, the same filters and the same uniform draw): kept-set
 *     size and pick must be equal except where a boundary quantity of the reference lies within a
 *     relative 1e-5 of its threshold (counted, must stay < 1%);
 *   - determinism and the draw's distribution; ragd_sample_check messages.
 * `test_sample --bench` also prints the median time of ragd_sample_row at V = 151,669. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "engine/engine.h"
#include "test.h"

/* ---- small helpers ---------------------------------------------------------------------------- */

static uint64_t g_rs = 0x9E3779B97F4A7C15ull;
static uint64_t rnd64(void) { /* xorshift64* */
    g_rs ^= g_rs >> 12;
    g_rs ^= g_rs << 25;
    g_rs ^= g_rs >> 27;
    return g_rs * 0x2545F4914F6CDD1Dull;
}
static double rnd_unit(void) { return (double)(rnd64() >> 11) * 0x1p-53; }
static double rnd_normal(void) {
    double u = rnd_unit(), v = rnd_unit();
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}
static int rnd_int(int n) { return (int)(rnd64() % (uint64_t)n); }

static float ulp_of(float f) { /* spacing of floats at |f| (normal f) */
    int e;
    frexpf(f, &e);
    return ldexpf(1.0f, e - 24);
}

static ragd_sample_params params_default(void) {
    ragd_sample_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 1.0f;
    p.top_p = 1.0f;
    p.active = 1;
    return p;
}

/* ---- arithmetic ---------------------------------------------------------------------------------- */

static void test_exp(void) {
    CHECK(ragd_sm_exp(0.0f) == 1.0f);
    CHECK(ragd_sm_exp(-0.0f) == 1.0f);
    CHECK(ragd_sm_exp(-INFINITY) == 0.0f);
    CHECK(ragd_sm_exp(NAN) == 0.0f);
    CHECK(ragd_sm_exp(-87.4f) == 0.0f);  /* e^-87.4 < 2^-126: flushed */
    CHECK(ragd_sm_exp(-87.3f) >= 0x1p-126f);
    CHECK(ragd_sm_exp(-0x1p-30f) == 1.0f);
    CHECK(ragd_sm_exp(-0x1p-23f) == 1.0f - 0x1p-23f); /* e^-2^-23 = 1 - 2^-23 + 2^-47: nearest float */
    /* every float y from -88 up to -2^-30 in increasing order: E never decreases; accuracy vs libm on
     * every 5th (results >= 2^-126) */
    uint32_t hi = 0x42B00000u /* 88 */, lo = 0x30800000u /* 2^-30 */;
    float prev = 0.0f;
    bool mono = true;
    double max_ulp = 0;
    float worst = 0;
    long n_acc = 0;
    for (uint32_t u = hi; u >= lo; u--) {
        float y;
        memcpy(&y, &u, 4);
        y = -y;
        float e = ragd_sm_exp(y);
        if (e < prev && mono) {
            mono = false;
            fprintf(stderr, "E decreases at y = %a: %a after %a\n", (double)y, (double)e, (double)prev);
        }
        prev = e;
        if (u % 5 == 0) {
            double ref = exp((double)y);
            if (ref >= 0x1p-126 * 1.0000001) {
                double err = fabs((double)e - ref) / ulp_of((float)ref);
                if (err > max_ulp) {
                    max_ulp = err;
                    worst = y;
                }
                n_acc++;
            }
        }
    }
    CHECK(mono);
    printf("E: monotone over %u floats in [-88, -2^-30]; max error %.4f ulp (at %a) over %ld checked\n",
           hi - lo + 1, max_ulp, (double)worst, n_acc);
    CHECK(max_ulp <= 0.51); /* rounding of a double within 2^-31.7 of exp (the degree-8 Taylor polynomial) */
}

static void test_fx_log(void) {
    CHECK_EQ_INT(ragd_sm_fx(1.0f), 1ull << 40);
    CHECK_EQ_INT(ragd_sm_fx(0.0f), 0);
    CHECK_EQ_INT(ragd_sm_fx(0x1p-40f), 1);
    CHECK_EQ_INT(ragd_sm_fx(0x1.fffffep-41f), 0);
    CHECK_EQ_INT(ragd_sm_fx(0.5f), 1ull << 39);
    bool same = true;
    for (int i = 0; i < 2000000; i++) {
        float w = ragd_sm_exp(-(float)(rnd_unit() * 90));
        if (ragd_sm_fx(w) != (uint64_t)(w * 0x1p40f)) same = false;
    }
    CHECK(same);

    CHECK(ragd_sm_log_fx(1ull << 40) == 0.0);
    double max_err = 0;
    for (int i = 0; i < 1000000; i++) {
        uint64_t s = (1ull << 40) + (rnd64() >> rnd_int(25)); /* 2^40 .. 2^64: every scale of a sum */
        long double ref = logl((long double)s) - 40 * 0.693147180559945309417232121458176568L;
        double err = fabs((double)((long double)ragd_sm_log_fx(s) - ref));
        if (err > max_err) max_err = err;
    }
    printf("L: max abs error %.3g over 1e6 sums in [2^40, 2^64)\n", max_err);
    CHECK(max_err < 1e-14);
}

static uint64_t ceil_mul_ref(float p, uint64_t r) { /* via unsigned __int128, another route */
    __extension__ typedef unsigned __int128 u128;
    int e;
    float fr = frexpf(p, &e); /* p = fr · 2^e, fr in [0.5, 1) */
    uint64_t mant = (uint64_t)ldexpf(fr, 24);
    int sh = 24 - e;
    u128 prod = (u128)mant * r;
    if (sh >= 128) return prod ? 1 : 0;
    u128 q = prod >> sh;
    return (uint64_t)q + (((prod & (((u128)1 << sh) - 1)) != 0) ? 1 : 0);
}

static void test_ceil_mul(void) {
    CHECK_EQ_INT(ragd_sm_ceil_mul(0.9f, 10), 9);
    CHECK_EQ_INT(ragd_sm_ceil_mul(0.5f, 3), 2);
    CHECK_EQ_INT(ragd_sm_ceil_mul(0.1f, 1ull << 40), 109951164416ull);
    CHECK_EQ_INT(ragd_sm_ceil_mul(0.3f, 12345678901234ull), 3703703817543ull);
    CHECK_EQ_INT(ragd_sm_ceil_mul(1.0f, 77), 77);
    CHECK_EQ_INT(ragd_sm_ceil_mul(0.0f, 77), 0);
    CHECK_EQ_INT(ragd_sm_ceil_mul(-0.5f, 77), 0);
    CHECK_EQ_INT(ragd_sm_ceil_mul(1e-45f, 77), 1); /* subnormal p: still rounds up */
    CHECK_EQ_INT(ragd_sm_ceil_mul(0.75f, 1ull << 40), 3ull << 38);
    bool same = true;
    for (int i = 0; i < 1000000 && same; i++) {
        float p = (float)rnd_unit();
        if (i % 7 == 0) p = ldexpf(p, -rnd_int(140));
        if (p <= 0 || p >= 1) continue;
        uint64_t r = rnd64() >> rnd_int(40);
        if (ragd_sm_ceil_mul(p, r) != ceil_mul_ref(p, r)) {
            fprintf(stderr, "ceil_mul(%a, %llu) differs\n", (double)p, (unsigned long long)r);
            same = false;
        }
    }
    CHECK(same);
}

static void test_rng(void) {
    /* regression values of the documented hash (computed independently in Python) */
    CHECK(ragd_sm_rng(0, 0) == 0x18a33082d6b0d44full);
    CHECK(ragd_sm_rng(1, 0) == 0xe217e7ac4d85e060ull);
    CHECK(ragd_sm_rng(1, 1) == 0x62e921f36838dacaull);
    CHECK(ragd_sm_rng(42, 7) == 0x88f3960b3c0fd2cdull);
    CHECK(ragd_sm_rng(0xFFFFFFFFFFFFFFFFull, 123456789) == 0x996740aec519e3b5ull);
}

static void test_keys(void) {
    float v[] = {-INFINITY, -1e38f, -1.5f, -1e-45f, -0.0f, 0.0f, 1e-45f, 1.0f, 3e38f, INFINITY};
    for (int i = 0; i + 1 < (int)(sizeof v / sizeof v[0]); i++) {
        if (v[i] == v[i + 1]) CHECK(ragd_sm_key(v[i]) == ragd_sm_key(v[i + 1]));
        else CHECK(ragd_sm_key(v[i]) < ragd_sm_key(v[i + 1]));
        CHECK(ragd_sm_key_value(ragd_sm_key(v[i])) == v[i]);
    }
    CHECK(ragd_sm_order(2.0f, 3) > ragd_sm_order(2.0f, 4)); /* ties: smaller id first */
    CHECK(ragd_sm_order(2.0f, 9) > ragd_sm_order(1.0f, 0));
    CHECK_EQ_INT(ragd_sm_order_id(ragd_sm_order(-3.0f, 151668)), 151668);
}

/* ---- exact cases ------------------------------------------------------------------------------- */

static ragd_sample_ws *g_ws;

static ragd_sample_out run(const float *x, int n, const ragd_sample_params *p) {
    ragd_sample_out o;
    memset(&o, 0x5A, sizeof o);
    ragd_sample_row(x, n, p, g_ws, &o);
    return o;
}

static void test_exact(void) {
    ragd_sample_params p = params_default();
    ragd_sample_out o;

    /* V = 1 */
    float one[1] = {3.5f};
    p.want_logprob = 1;
    p.n_top = 20;
    o = run(one, 1, &p);
    CHECK_EQ_INT(o.token, 0);
    CHECK_EQ_INT(o.nonfinite, 0);
    CHECK(o.logprob == 0.0f);
    CHECK_EQ_INT(o.n_top, 1);
    CHECK_EQ_INT(o.top_ids[0], 0);
    CHECK(o.top_lp[0] == 0.0f);
    CHECK_EQ_INT(o.top_ids[1], -1);
    CHECK(o.top_lp[19] == 0.0f);
    CHECK_EQ_INT(o.n_kept, 1);

    /* a zero logit's sign never shows: lp(-0) with lse == 0 is +0 */
    float nz[1] = {-0.0f};
    p.temperature = 0.5f;
    o = run(nz, 1, &p);
    CHECK(o.logprob == 0.0f && !signbit(o.logprob));
    CHECK(o.top_lp[0] == 0.0f && !signbit(o.top_lp[0]));
    float nz3[3] = {-50.0f, -0.0f, -60.0f}; /* the others' masses truncate to 0: lse == 0 too */
    p.temperature = 0;
    o = run(nz3, 3, &p);
    CHECK_EQ_INT(o.token, 1);
    CHECK(o.logprob == 0.0f && !signbit(o.logprob));
    CHECK_EQ_INT(o.top_ids[0], 1);
    CHECK(o.top_lp[0] == 0.0f && !signbit(o.top_lp[0]));
    CHECK(o.top_lp[1] == -50.0f && o.top_lp[2] == -60.0f);

    /* greedy: the first of equal maxima; -0 == +0 */
    p = params_default();
    p.temperature = 0;
    float g1[4] = {1, 5, 5, 2};
    CHECK_EQ_INT(run(g1, 4, &p).token, 1);
    float g2[3] = {-1.0f, -0.0f, 0.0f};
    CHECK_EQ_INT(run(g2, 3, &p).token, 1);
    float g3[3] = {-1.0f, 0.0f, -0.0f};
    CHECK_EQ_INT(run(g3, 3, &p).token, 1);
    o = run(g1, 4, &p);
    CHECK(o.logprob == 0.0f); /* not wanted */
    CHECK_EQ_INT(o.n_top, 0);
    CHECK_EQ_INT(o.n_kept, 1);

    /* top_k = 1 is greedy whatever the temperature */
    p = params_default();
    p.top_k = 1;
    float k1[3] = {1, 2, 2};
    for (int c = 0; c < 50; c++) {
        p.counter = (uint64_t)c;
        o = run(k1, 3, &p);
        CHECK_EQ_INT(o.token, 1);
        CHECK_EQ_INT(o.n_kept, 1);
    }

    /* a tie at the k-th place: ids 2, 4, 5 share the value 2; with top_k = 3 only id 2 is kept */
    p = params_default();
    p.top_k = 3;
    float tk[6] = {1, 3, 2, 3, 2, 2};
    int seen[6] = {0};
    for (int c = 0; c < 2000; c++) {
        p.counter = (uint64_t)c;
        o = run(tk, 6, &p);
        CHECK_EQ_INT(o.n_kept, 3);
        seen[o.token]++;
    }
    CHECK(seen[1] > 0 && seen[3] > 0 && seen[2] > 0);
    CHECK_EQ_INT(seen[0] + seen[4] + seen[5], 0);
    /* top_k = 4: ids 2 and 4 */
    p.top_k = 4;
    memset(seen, 0, sizeof seen);
    for (int c = 0; c < 2000; c++) {
        p.counter = (uint64_t)c;
        seen[run(tk, 6, &p).token]++;
    }
    CHECK(seen[4] > 0);
    CHECK_EQ_INT(seen[0] + seen[5], 0);

    /* top_p tiny: one candidate, the first in the order */
    p = params_default();
    p.top_p = 1e-6f;
    float tp[3] = {2, 5, 5};
    for (int c = 0; c < 100; c++) {
        p.counter = (uint64_t)c;
        o = run(tp, 3, &p);
        CHECK_EQ_INT(o.token, 1);
        CHECK_EQ_INT(o.n_kept, 1);
    }
    /* top_p exactly at a prefix: masses 2^40 each for 4 equal logits; top_p = 0.5 → P = 2·2^40 → 2 kept */
    float eq[4] = {7, 7, 7, 7};
    p.top_p = 0.5f;
    memset(seen, 0, sizeof seen);
    for (int c = 0; c < 400; c++) {
        p.counter = (uint64_t)c;
        o = run(eq, 4, &p);
        CHECK_EQ_INT(o.n_kept, 2);
        seen[o.token]++;
    }
    CHECK(seen[0] > 0 && seen[1] > 0);
    CHECK_EQ_INT(seen[2] + seen[3], 0);
    /* and the draw boundary: T = 2^41, D = u >> 23: token 0 iff u < 2^63 */
    for (int c = 0; c < 400; c++) {
        p.counter = (uint64_t)c;
        uint64_t u = ragd_sm_rng(p.seed, p.counter);
        CHECK_EQ_INT(run(eq, 4, &p).token, u < (1ull << 63) ? 0 : 1);
    }

    /* min_p = 1: only r == 2^40, i.e. the ties of the maximum (4.9999995 is one ulp below 5: E < 1) */
    p = params_default();
    p.min_p = 1.0f;
    float mp[4] = {5, 1, 5, 4.9999995f};
    for (int c = 0; c < 400; c++) {
        p.counter = (uint64_t)c;
        uint64_t u = ragd_sm_rng(p.seed, p.counter);
        o = run(mp, 4, &p);
        CHECK_EQ_INT(o.n_kept, 2);
        CHECK_EQ_INT(o.token, u < (1ull << 63) ? 0 : 2);
    }

    /* bans: of the maximum; NaN at a banned id does not count; all banned → nonfinite */
    p = params_default();
    p.temperature = 0;
    p.want_logprob = 1;
    p.n_top = 3;
    p.n_ban = 1;
    p.ban[0] = 1;
    float b1[3] = {1, 9, 3};
    o = run(b1, 3, &p);
    CHECK_EQ_INT(o.token, 2);
    CHECK_NEAR(o.logprob, -log1p(exp(-2.0)), 1e-6);
    CHECK_EQ_INT(o.top_ids[0], 2);
    CHECK_EQ_INT(o.top_ids[1], 0);
    CHECK_EQ_INT(o.top_ids[2], 1);
    CHECK(isinf(o.top_lp[2]) && o.top_lp[2] < 0);
    CHECK_NEAR(o.top_lp[1], -2.0 - log1p(exp(-2.0)), 1e-6);
    float b2[2] = {NAN, 1};
    p.ban[0] = 0;
    o = run(b2, 2, &p);
    CHECK_EQ_INT(o.nonfinite, 0);
    CHECK_EQ_INT(o.token, 1);
    p.n_ban = 2;
    p.ban[1] = 1;
    o = run(b2, 2, &p);
    CHECK_EQ_INT(o.nonfinite, 1);
    CHECK_EQ_INT(o.token, -1);
    CHECK_EQ_INT(o.n_top, 0);
    CHECK(o.logprob == 0.0f);
    CHECK_EQ_INT(o.top_ids[0], -1);
    CHECK_EQ_INT(o.n_kept, 0);
    /* a ban id out of range is ignored by the row (ragd_sample_check refuses it) */
    p.n_ban = 1;
    p.ban[0] = 5;
    CHECK_EQ_INT(run(b1, 3, &p).token, 1);

    /* nonfinite rows */
    p = params_default();
    float n1[3] = {1, NAN, 2}, n2[3] = {1, INFINITY, 2}, n3[3] = {-INFINITY, -INFINITY, -INFINITY};
    CHECK_EQ_INT(run(n1, 3, &p).nonfinite, 1);
    CHECK_EQ_INT(run(n2, 3, &p).nonfinite, 1);
    o = run(n3, 3, &p);
    CHECK_EQ_INT(o.nonfinite, 1);
    CHECK_EQ_INT(o.token, -1);
    p.temperature = 0;
    CHECK_EQ_INT(run(n1, 3, &p).token, -1);

    /* mostly -inf with a few finite values */
    static float mi[1000];
    for (int i = 0; i < 1000; i++) mi[i] = -INFINITY;
    mi[500] = 2;
    mi[10] = 2;
    mi[999] = 1;
    p = params_default();
    p.temperature = 0;
    p.n_top = 5;
    o = run(mi, 1000, &p);
    CHECK_EQ_INT(o.token, 10);
    int want_ids[5] = {10, 500, 999, 0, 1};
    for (int j = 0; j < 5; j++) CHECK_EQ_INT(o.top_ids[j], want_ids[j]);
    CHECK_NEAR(o.top_lp[0], -log(2 + exp(-1.0)), 1e-6);
    CHECK(isinf(o.top_lp[3]));
    p.temperature = 1;
    memset(seen, 0, sizeof seen);
    int other = 0;
    for (int c = 0; c < 1000; c++) {
        p.counter = (uint64_t)c;
        int t = run(mi, 1000, &p).token;
        if (t == 10) seen[0]++;
        else if (t == 500) seen[1]++;
        else if (t == 999) seen[2]++;
        else other++;
    }
    CHECK_EQ_INT(other, 0);
    CHECK(seen[0] > 300 && seen[1] > 300 && seen[2] > 50);

    /* huge temperature: uniform over the finite logits; tiny: only the ties of the maximum */
    p = params_default();
    p.temperature = 1e30f;
    float ht[4] = {1, 3, 3, 2};
    memset(seen, 0, sizeof seen);
    for (int c = 0; c < 4000; c++) {
        p.counter = (uint64_t)c;
        seen[run(ht, 4, &p).token]++;
    }
    for (int j = 0; j < 4; j++) CHECK(seen[j] > 850 && seen[j] < 1150);
    float temps[3] = {1e-39f /* 1/t overflows to inf */, 1e-20f, 1e-6f};
    for (int ti = 0; ti < 3; ti++) {
        p.temperature = temps[ti];
        for (int c = 0; c < 200; c++) {
            p.counter = (uint64_t)c;
            uint64_t u = ragd_sm_rng(p.seed, p.counter);
            o = run(ht, 4, &p);
            CHECK_EQ_INT(o.token, u < (1ull << 63) ? 1 : 2);
            CHECK_EQ_INT(o.n_kept, 4);
        }
    }

    /* logits of ±1e38 (differences overflow to -inf in float) */
    p = params_default();
    p.temperature = 0;
    p.want_logprob = 1;
    p.n_top = 4;
    float big[4] = {1e38f, -1e38f, 1e38f, 0};
    o = run(big, 4, &p);
    CHECK_EQ_INT(o.token, 0);
    CHECK_NEAR(o.logprob, -0.69314718, 1e-6);
    CHECK_EQ_INT(o.top_ids[1], 2);
    CHECK_EQ_INT(o.top_ids[2], 3);
    CHECK(o.top_lp[2] < -1e37f);
    float big2[2] = {3e38f, -3e38f};
    o = run(big2, 2, &p);
    CHECK(o.logprob == 0.0f);
    CHECK(isinf(o.top_lp[1]) && o.top_lp[1] < 0);
    p.temperature = 1; /* masses 2^40, 0, 2^40, 0: T = 2^41, token 0 iff u < 2^63 */
    for (int c = 0; c < 100; c++) {
        p.counter = (uint64_t)c;
        CHECK_EQ_INT(run(big, 4, &p).token, (ragd_sm_rng(0, p.counter) < (1ull << 63)) ? 0 : 2);
    }
    p.top_p = 0.5f; /* P = 2^40: the first maximum alone */
    CHECK_EQ_INT(run(big, 4, &p).token, 0);

    /* n_top > V; inactive rows leave out untouched */
    p = params_default();
    p.n_top = 5;
    float three[3] = {0, 1, 2};
    o = run(three, 3, &p);
    CHECK_EQ_INT(o.n_top, 3);
    CHECK_EQ_INT(o.top_ids[0], 2);
    CHECK_EQ_INT(o.top_ids[2], 0);
    CHECK_EQ_INT(o.top_ids[3], -1);
    p.active = 0;
    o = run(three, 3, &p);
    unsigned char poison[sizeof o];
    memset(poison, 0x5A, sizeof poison);
    CHECK(memcmp(&o, poison, sizeof o) == 0);
}

/* ---- determinism and distribution ------------------------------------------------------------ */

static void test_distribution(void) {
    ragd_sample_params p = params_default();
    p.seed = 1234;
    float x[4] = {(float)log(0.1), (float)log(0.2), (float)log(0.3), (float)log(0.4)};
    const double pr[4] = {0.1, 0.2, 0.3, 0.4};
    int count[4] = {0};
    const int N = 30000;
    bool repeat = true;
    for (int c = 0; c < N; c++) {
        p.counter = (uint64_t)c;
        int t = run(x, 4, &p).token;
        count[t]++;
        if (c % 97 == 0 && run(x, 4, &p).token != t) repeat = false;
    }
    CHECK(repeat);
    for (int j = 0; j < 4; j++) {
        double sd = sqrt(N * pr[j] * (1 - pr[j]));
        double z = (count[j] - N * pr[j]) / sd;
        printf("draws: token %d %d of %d (expected %.0f, z = %+.2f)\n", j, count[j], N, N * pr[j], z);
        CHECK(fabs(z) < 5);
    }
    /* another seed gives another sequence */
    int differ = 0;
    ragd_sample_params q = p;
    q.seed = 1235;
    for (int c = 0; c < 200; c++) {
        p.counter = q.counter = (uint64_t)c;
        differ += run(x, 4, &p).token != run(x, 4, &q).token;
    }
    CHECK(differ > 50);
}

/* ---- random rows against a float64 reference ------------------------------------------------- */

typedef struct { double v; int32_t id; } ref_ent;
static int ref_cmp(const void *a, const void *b) {
    const ref_ent *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->id - y->id;
}

typedef struct {
    int token, n_kept;
    bool ambiguous;
    double lp_token;
    int top_ids[RAGD_SAMPLE_MAX_TOP];
    double top_lp[RAGD_SAMPLE_MAX_TOP];
    bool nonfinite;
} ref_res;

/* The contract in float64: sort every id by (logit desc, id asc), softmax, the filters, the draw
 * with U = u / 2^64. ambiguous: a prefix mass next to a threshold (top-p, the draw) or a mass next to
 * min_p within a relative 1e-5 (plus the fixed point's truncation, K · 2^-40): the implementation
 * works from float exps in 2^-40 fixed point, so such a row may legitimately decide the other way. */
static void reference(const float *logits, int V, const ragd_sample_params *p, ref_ent *e, double *q, ref_res *res) {
    const double eps = 1e-5;
    memset(res, 0, sizeof *res);
    res->token = -1;
    bool bad = false;
    int nfin = 0;
    for (int i = 0; i < V; i++) {
        double x = logits[i];
        for (int j = 0; j < p->n_ban; j++)
            if (p->ban[j] == i) x = -INFINITY;
        if (isnan(x) || x == INFINITY) bad = true;
        if (isfinite(x)) nfin++;
        e[i].v = x;
        e[i].id = i;
    }
    if (bad || nfin == 0) {
        res->nonfinite = true;
        return;
    }
    qsort(e, (size_t)V, sizeof *e, ref_cmp);
    const double m = e[0].v;
    double z = 0;
    for (int i = 0; i < V; i++) z += exp(e[i].v - m);
    const double lse = log(z);
    for (int j = 0; j < p->n_top && j < V; j++) {
        res->top_ids[j] = e[j].id;
        res->top_lp[j] = (e[j].v - m) - lse;
    }
    if (p->temperature <= 0 || p->top_k == 1) {
        res->token = e[0].id;
        res->n_kept = 1;
    } else {
        int K = (p->top_k > 0 && p->top_k < V) ? p->top_k : V;
        /* absolute slack: each mass is truncated to a multiple of 2^-40 (of the maximum's 1) */
        const double tol = K * 0x1p-40;
        double R = 0;
        for (int i = 0; i < K; i++) R += q[i] = exp((e[i].v - m) / (double)p->temperature);
        int n = K;
        if (p->top_p < 1) {
            double target = (double)p->top_p * R, cum = 0;
            int np = K;
            for (int i = 0; i < K; i++) {
                double before = cum;
                cum += q[i];
                if (cum >= target) {
                    np = i + 1;
                    if (fabs(cum - target) <= tol + eps * target || fabs(before - target) <= tol + eps * target)
                        res->ambiguous = true;
                    break;
                }
            }
            if (np < n) n = np;
        }
        if (p->min_p > 0) {
            int nm = 0;
            while (nm < K && q[nm] >= (double)p->min_p) nm++;
            if (nm < 1) nm = 1;
            /* (q == 1 is a tie with the maximum: exact on both sides) */
            if (nm < K && q[nm] != 1 && fabs(q[nm] - (double)p->min_p) <= eps * p->min_p) res->ambiguous = true;
            if (nm > 1 && q[nm - 1] != 1 && fabs(q[nm - 1] - (double)p->min_p) <= eps * p->min_p)
                res->ambiguous = true;
            if (nm < n) n = nm;
        }
        double T = 0;
        for (int i = 0; i < n; i++) T += q[i];
        double U = (double)ragd_sm_rng(p->seed, p->counter) * 0x1p-64 * T, cum = 0;
        int pick = n - 1;
        for (int i = 0; i < n; i++) {
            double before = cum;
            cum += q[i];
            if (cum > U) {
                pick = i;
                if (fabs(cum - U) <= tol + eps * U || fabs(before - U) <= tol + eps * U) res->ambiguous = true;
                break;
            }
        }
        res->token = e[pick].id;
        res->n_kept = n;
    }
    for (int i = 0; i < V; i++)
        if (e[i].id == res->token) res->lp_token = (e[i].v - m) - lse;
}

static void fill_row(float *x, int V, int kind, float sigma) {
    for (int i = 0; i < V; i++) x[i] = (float)(sigma * rnd_normal());
    if (kind == 1) /* coarse grid: many exact ties */
        for (int i = 0; i < V; i++) x[i] = roundf(x[i] * 2 / sigma) * 0.5f;
    if (kind == 2) { /* mostly -inf */
        for (int i = 0; i < V; i++)
            if (rnd_int(16)) x[i] = -INFINITY;
        x[rnd_int(V)] = 1.0f;
    }
    if (kind == 3) x[rnd_int(V)] = rnd_int(2) ? NAN : INFINITY;
    if (kind == 4) /* a few huge values */
        for (int j = 0; j < 3; j++) x[rnd_int(V)] = rnd_int(2) ? 1e38f : -1e38f;
}

static void test_random(void) {
    const int sizes[] = {1, 2, 7, 100, 1000, 5000};
    const float sigmas[] = {1, 5, 30};
    const float temps[] = {0, 0.3f, 0.7f, 1, 1.5f, 1e-3f};
    const int topk[] = {0, 1, 2, 5, 20, 50, 1000, 3000};
    const float topp[] = {1, 0.95f, 0.9f, 0.5f, 0.1f, 1e-6f};
    const float minp[] = {0, 0, 0.02f, 0.1f, 0.5f, 1};
    const int maxV = 151669;
    float *x = malloc(sizeof(float) * maxV);
    ref_ent *e = malloc(sizeof(ref_ent) * maxV);
    double *q = malloc(sizeof(double) * maxV);
    int rows = 0, combos = 0, ambiguous = 0, bad_pick = 0, bad_n = 0, bad_lp = 0, bad_top = 0, bad_nf = 0;
    for (int r = 0; r < 2400; r++) {
        int V = r < 24 ? maxV : sizes[rnd_int(6)];
        int kind = rnd_int(10);
        kind = kind < 5 ? 0 : kind - 5; /* half plain rows */
        fill_row(x, V, kind, sigmas[rnd_int(3)]);
        rows++;
        for (int c = 0; c < (V == maxV ? 3 : 8); c++) {
            ragd_sample_params p = params_default();
            p.temperature = temps[rnd_int(6)];
            p.top_k = topk[rnd_int(8)];
            p.top_p = topp[rnd_int(6)];
            p.min_p = minp[rnd_int(6)];
            p.seed = rnd64();
            p.counter = rnd64() % 1000;
            p.want_logprob = rnd_int(2);
            p.n_top = rnd_int(3) ? 0 : rnd_int(21);
            if (rnd_int(4) == 0) {
                p.n_ban = 1 + rnd_int(8);
                for (int j = 0; j < p.n_ban; j++) p.ban[j] = rnd_int(V);
                if (rnd_int(2)) { /* ban the maximum */
                    int am = 0;
                    for (int i = 1; i < V; i++)
                        if (x[i] > x[am]) am = i;
                    p.ban[0] = am;
                }
            }
            combos++;
            ragd_sample_out o = run(x, V, &p);
            ref_res ref;
            reference(x, V, &p, e, q, &ref);
            if (ref.nonfinite != (o.nonfinite != 0)) {
                bad_nf++;
                continue;
            }
            if (ref.nonfinite) {
                if (o.token != -1) bad_nf++;
                continue;
            }
            /* top ids and logprobs do not depend on any threshold */
            int nt = p.n_top < V ? p.n_top : V;
            if (o.n_top != nt) bad_top++;
            for (int j = 0; j < nt; j++) {
                if (o.top_ids[j] != ref.top_ids[j]) bad_top++;
                double want = ref.top_lp[j];
                if (isinf(want) ? o.top_lp[j] != (float)want : fabs(o.top_lp[j] - want) > 1e-5 * (1 + fabs(want)))
                    bad_top++;
            }
            if (ref.ambiguous) {
                ambiguous++;
                continue;
            }
            if (o.n_kept != ref.n_kept) {
                if (bad_n < 5)
                    fprintf(stderr, "row %d V %d kind %d T %g k %d p %g minp %g: n_kept %d, reference %d\n", r, V,
                            kind, (double)p.temperature, p.top_k, (double)p.top_p, (double)p.min_p, o.n_kept,
                            ref.n_kept);
                bad_n++;
            }
            if (o.token != ref.token) {
                if (bad_pick < 5)
                    fprintf(stderr, "row %d V %d kind %d T %g k %d p %g minp %g: token %d, reference %d\n", r, V,
                            kind, (double)p.temperature, p.top_k, (double)p.top_p, (double)p.min_p, o.token,
                            ref.token);
                bad_pick++;
            }
            if (p.want_logprob && o.token == ref.token &&
                fabs(o.logprob - ref.lp_token) > 1e-5 * (1 + fabs(ref.lp_token)) && isfinite(ref.lp_token))
                bad_lp++;
        }
    }
    printf("random: %d rows, %d combinations, %d ambiguous (%.3f%%), mismatches: pick %d, n_kept %d, logprob %d, "
           "top %d, nonfinite %d\n",
           rows, combos, ambiguous, 100.0 * ambiguous / combos, bad_pick, bad_n, bad_lp, bad_top, bad_nf);
    CHECK(combos >= 2000);
    CHECK(ambiguous * 100 < combos);
    CHECK_EQ_INT(bad_pick, 0);
    CHECK_EQ_INT(bad_n, 0);
    CHECK_EQ_INT(bad_lp, 0);
    CHECK_EQ_INT(bad_top, 0);
    CHECK_EQ_INT(bad_nf, 0);
    free(x);
    free(e);
    free(q);
}

/* ---- parameter checks -------------------------------------------------------------------------- */

#define EXPECT_CHECK(field_change, needle)                                                          \
    do {                                                                                            \
        ragd_sample_params _p = params_default();                                                   \
        field_change;                                                                               \
        ragd_err _e = {0};                                                                          \
        CHECK_EQ_INT(ragd_sample_check(&_p, 100, &_e), RAGD_ERANGE);                                \
        if (!strstr(ragd_err_msg(&_e), needle)) {                                                   \
            fprintf(stderr, "message \"%s\" lacks \"%s\"\n", ragd_err_msg(&_e), needle);            \
            CHECK(0);                                                                               \
        }                                                                                           \
        ragd_err_free(&_e);                                                                         \
    } while (0)

static void test_check(void) {
    ragd_sample_params p = params_default();
    ragd_err err = {0};
    CHECK_EQ_INT(ragd_sample_check(&p, 100, &err), RAGD_OK);
    p.temperature = 0;
    p.top_k = 100;
    p.min_p = 1;
    p.n_top = 20;
    p.n_ban = 8;
    for (int j = 0; j < 8; j++) p.ban[j] = 99 - j;
    CHECK_EQ_INT(ragd_sample_check(&p, 100, &err), RAGD_OK);
    EXPECT_CHECK(_p.temperature = -1, "temperature");
    EXPECT_CHECK(_p.temperature = NAN, "temperature");
    EXPECT_CHECK(_p.temperature = INFINITY, "temperature");
    EXPECT_CHECK(_p.top_p = 0, "top_p");
    EXPECT_CHECK(_p.top_p = 1.5f, "top_p");
    EXPECT_CHECK(_p.top_p = NAN, "top_p");
    EXPECT_CHECK(_p.min_p = -0.1f, "min_p");
    EXPECT_CHECK(_p.min_p = 2, "min_p");
    EXPECT_CHECK(_p.top_k = -1, "top_k");
    EXPECT_CHECK(_p.n_top = 21, "n_top");
    EXPECT_CHECK(_p.n_top = -1, "n_top");
    EXPECT_CHECK(_p.n_ban = 9, "n_ban");
    EXPECT_CHECK((_p.n_ban = 2, _p.ban[1] = 100), "ban[1] = 100");
    EXPECT_CHECK((_p.n_ban = 1, _p.ban[0] = -3), "ban[0] = -3");
    CHECK_EQ_INT(ragd_sample_check(&p, 0, &err), RAGD_ERANGE);
    CHECK(strstr(ragd_err_msg(&err), "n_vocab") != NULL);
    ragd_err_free(&err);
    CHECK(ragd_sample_ws_create(0) == NULL);
    ragd_sample_ws_free(NULL);
}

/* ---- benchmark ---------------------------------------------------------------------------------- */

/* ---- logit processing (ragd_logits_process: masks, penalties, logit_bias) ------------------------ */

static void test_proc(void) {
    enum { V = 70 };
    float x[V], y[V];
    for (int i = 0; i < V; i++) x[i] = (float)(i % 7) - 2.5f; /* -2.5 .. 3.5 */
    ragd_sample_params p = params_default();
    /* edits, by hand: bias, HF repetition penalty (divide positive, multiply negative), OpenAI penalties */
    ragd_logit_edit ed[] = {
        {.id = 3, .bias = 100.0f},                       /* 0.5 + 100 */
        {.id = 4, .bias = -100.0f},                      /* 1.5 - 100 */
        {.id = 5, .in_seq = 1},                          /* 2.5 / 1.25 = 2 */
        {.id = 0, .in_seq = 1},                          /* -2.5 * 1.25 = -3.125 */
        {.id = 6, .in_seq = 1, .count = 3},              /* 3.5 / 1.25 = 2.8, - 0.5 * 3, - 0.25 */
        {.id = 1, .count = 2, .bias = 1.0f},             /* -1.5 + 1 = -0.5, - 0.5 * 2 - 0.25 = -1.75 */
    };
    p.repetition_penalty = 1.25f;
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    p.edit_off = 0;
    p.n_edit = 6;
    ragd_step_proc pr = {.edits = ed, .n_edits = 6};
    memcpy(y, x, sizeof y);
    ragd_logits_process(y, V, &p, &pr);
    CHECK(y[3] == 0.5f + 100.0f && y[4] == 1.5f - 100.0f && y[5] == 2.0f && y[0] == -3.125f);
    CHECK(y[6] == (2.8f - 1.5f) - 0.25f && y[1] == -1.75f);
    for (int i = 7; i < V; i++) CHECK(y[i] == x[i]);
    CHECK(y[2] == x[2]);
    /* +100 forces the token (greedy and at temperature 1), -100 bans the greedy pick */
    ragd_sample_params q = params_default();
    q.temperature = 1.0f;
    ragd_logit_edit force = {.id = 42, .bias = 100.0f};
    q.n_edit = 1;
    ragd_step_proc pf = {.edits = &force, .n_edits = 1};
    for (uint64_t c = 0; c < 50; c++) {
        memcpy(y, x, sizeof y);
        q.counter = c;
        ragd_logits_process(y, V, &q, &pf);
        CHECK(run(y, V, &q).token == 42);
    }
    ragd_sample_params gq = params_default();
    gq.temperature = 0.0f;
    ragd_sample_out g0 = run(x, V, &gq); /* greedy: the first 3.5 (id 6) */
    CHECK(g0.token == 6);
    ragd_logit_edit ban = {.id = 6, .bias = -100.0f};
    gq.n_edit = 1;
    ragd_step_proc pb = {.edits = &ban, .n_edits = 1};
    memcpy(y, x, sizeof y);
    ragd_logits_process(y, V, &gq, &pb);
    CHECK(run(y, V, &gq).token == 13); /* the next 3.5 */
    /* a mask: only ids 10, 33, 64 (two words); masked ids are -inf whatever their edits */
    uint32_t m[3] = {1u << 10, 1u << 1, 1u << 0};
    ragd_sample_params mp = params_default();
    mp.temperature = 1.0f;
    mp.mask_row = 1;
    ragd_logit_edit e2 = {.id = 11, .bias = 100.0f};
    mp.n_edit = 1;
    ragd_step_proc pm = {.masks = m, .n_masks = 1, .edits = &e2, .n_edits = 1};
    memcpy(y, x, sizeof y);
    ragd_logits_process(y, V, &mp, &pm);
    for (int i = 0; i < V; i++) CHECK((i == 10 || i == 33 || i == 64) ? y[i] == x[i] : isinf(y[i]) && y[i] < 0);
    for (uint64_t c = 0; c < 64; c++) {
        mp.counter = c;
        int32_t t = run(y, V, &mp).token;
        CHECK(t == 10 || t == 33 || t == 64);
    }
    /* nothing asked: the row is untouched (proc may be NULL) */
    ragd_sample_params none = params_default();
    memcpy(y, x, sizeof y);
    ragd_logits_process(y, V, &none, NULL);
    CHECK(!memcmp(x, y, sizeof y));
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}
static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bench(void) {
    enum { V = 151669, N = 31 };
    float *x = malloc(sizeof(float) * V);
    for (int i = 0; i < V; i++) x[i] = (float)(2.0 * rnd_normal());
    struct { const char *name; float t, tp; int k, lp, ntop; } cases[] = {
        {"greedy", 0, 1, 0, 0, 0},
        {"greedy + logprob + 5 top", 0, 1, 0, 1, 5},
        {"T=0.7 top-p 0.9", 0.7f, 0.9f, 0, 0, 0},
        {"T=0.7 top-p 0.9 + logprob + 5 top", 0.7f, 0.9f, 0, 1, 5},
        {"T=0.7 top-k 20", 0.7f, 1, 20, 0, 0},
        {"T=0.7 top-k 20 + logprob + 5 top", 0.7f, 1, 20, 1, 5},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ragd_sample_params p = params_default();
        p.temperature = cases[c].t;
        p.top_p = cases[c].tp;
        p.top_k = cases[c].k;
        p.want_logprob = cases[c].lp;
        p.n_top = cases[c].ntop;
        double t[N];
        for (int r = 0; r < N; r++) {
            p.counter = (uint64_t)r;
            double t0 = now_us();
            ragd_sample_out o = run(x, V, &p);
            t[r] = now_us() - t0;
            if (o.token < 0) printf("?");
        }
        qsort(t, N, sizeof t[0], cmp_d);
        printf("bench cpu V=%d %-36s median %8.1f us (min %.1f)\n", V, cases[c].name, t[N / 2], t[0]);
    }
    free(x);
}

int main(int argc, char **argv) {
    g_ws = ragd_sample_ws_create(151669);
    CHECK(g_ws != NULL);
    if (!g_ws) TEST_DONE();
    if (argc > 1 && !strcmp(argv[1], "--bench")) {
        bench();
        ragd_sample_ws_free(g_ws);
        return 0;
    }
    test_keys();
    test_rng();
    test_ceil_mul();
    test_fx_log();
    test_exact();
    test_distribution();
    test_check();
    test_random();
    test_exp();
    test_proc();
    ragd_sample_ws_free(g_ws);
    TEST_DONE();
}
