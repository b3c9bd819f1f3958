/* sample_math.h — the arithmetic of ragd's token sampler, shared bit for bit by the C reference
 * (engine/sample.c, the CPU backend) and the CUDA kernels (engine/cuda/sample.cu). Plain C, usable
 * from C and CUDA; includes nothing but <stdint.h> and <stdbool.h> (the CUDA static library must not
 * depend on ragd_core, see engine/cuda/cuda_api.h).
 *
 * The contract: for the same logits row and parameters both implementations return the same bits
 * (token, flags, logprob, top-logprob ids and values). Every quantity that decides anything is either
 * an integer (64-bit fixed point, 2^40 = probability ratio 1, so sums do not depend on their order) or
 * the result of one fixed sequence of IEEE operations written here:
 *   - on the device through the _rn intrinsics (never contracted into FMAs);
 *   - on the host as plain operators in translation units compiled with -ffp-contract=off (set in
 *     CMake) and FLT_EVAL_METHOD 0 (x86-64 SSE: checked below);
 *   - no libm / CUDA transcendental: E (exp) and L (log) are built here from +, -, *, / and bit moves.
 * Nothing here needs an FMA, so the host code is fast without -mfma. The device code must not be built
 * with -ftz=true / --use_fast_math (subnormal inputs such as a temperature near FLT_MAX would flush).
 *
 * The function, for one row x[0..V) (banned ids count as -inf):
 *   0. the row is first processed (ragd_sm_edit on the row's edits, then -inf outside its mask row):
 *      everything below, logprobs included, sees the processed row;
 *   1. any NaN or +inf, or all -inf: nonfinite = 1, token = -1.
 *   2. m = max x; order: i before j iff x_i > x_j, or x_i == x_j and i < j (-0 == +0).
 *   3. d_i = x_i - m (float); logprob base S1 = Σ FX(E(d_i)), lse = L(S1), lp(i) = (float)((double)d_i - lse)
 *      (m and x_i taken as +0 when zero: the sign of a zero logit never shows).
 *   4. greedy (temperature <= 0 or top_k == 1): the first index in the order.
 *   5. otherwise r_i = FX(E(y_i)), y_i = (d_i == 0 ? 0 : d_i * inv_t), inv_t = 1.0f / temperature;
 *      candidates = the first K (top_k) in the order, R = Σ r over them; n_p = smallest n whose prefix
 *      mass >= P = ceil(top_p * R) (exact); n_m = #{r_i >= M}, M = ceil(min_p * 2^40) (a prefix, because
 *      E is non-decreasing: verified exhaustively by tests/engine/test_sample.c); n = min(K, n_p, n_m);
 *      T = mass of the first n; D = hi64(RNG(seed, counter) * T); token = the first candidate whose
 *      inclusive prefix mass exceeds D.
 * This comment is the contract (docs/modules/engine.md does not describe this sampler yet).
 */
#ifndef RAGD_SAMPLE_MATH_H
#define RAGD_SAMPLE_MATH_H

#include <stdbool.h>
#include <stdint.h>

#define RAGD_SAMPLE_MAX_TOP 20
#define RAGD_SAMPLE_MAX_BAN 8
/* Largest vocabulary: V · 2^40 must fit in 64 bits (every r_i <= 2^40). */
#define RAGD_SAMPLE_MAX_VOCAB ((1 << 24) - 1)

typedef struct ragd_sample_params {   /* one row; POD, copied to the device as is */
    float temperature;   /* <= 0: greedy */
    float top_p;         /* (0, 1]; 1: off */
    float min_p;         /* [0, 1]; 0: off */
    int32_t top_k;       /* 0 or >= n_vocab: off */
    uint64_t seed;       /* with counter, the only source of randomness */
    uint64_t counter;    /* index of the token being drawn (0 = the first generated token of this sequence) */
    int32_t n_top;       /* top log-probabilities to report, 0..RAGD_SAMPLE_MAX_TOP */
    int32_t want_logprob;/* 1: logprob of the pick is computed */
    int32_t active;      /* 0: padding row of a CUDA graph: nothing computed, out untouched */
    int32_t n_ban;       /* 0..RAGD_SAMPLE_MAX_BAN ids whose logit counts as -inf (min_tokens: EOS ids) */
    int32_t ban[RAGD_SAMPLE_MAX_BAN];
    /* logit processing before the sampler (ragd_sm_proc_row; 0 everywhere: none) */
    int32_t mask_row;    /* 0: no mask; r > 0: only the tokens of bitmask row r - 1 of the step's masks */
    int32_t edit_off, n_edit; /* the row's logit edits: the step's edits[edit_off .. edit_off + n_edit) */
    float repetition_penalty; /* HF semantics on edits with in_seq; 0 or 1: off */
    float frequency_penalty;  /* OpenAI: minus frequency_penalty · count */
    float presence_penalty;   /* OpenAI: minus presence_penalty when count > 0 */
} ragd_sample_params;

/* One token's logit edit (a row's edits name distinct ids). The edited logit, in this order (vLLM's):
 *   x += bias;  if in_seq and the repetition penalty is on: x = x > 0 ? x / rp : x * rp;
 *   if count > 0: x -= frequency_penalty · (float)count, then x -= presence_penalty
 * each operation one IEEE float rounding (ragd_sm_edit). */
typedef struct ragd_logit_edit {
    int32_t id;          /* token id in [0, n_vocab) */
    uint32_t count;      /* occurrences in the generated tokens (frequency / presence penalties) */
    uint32_t in_seq;     /* 1: the id occurs in the prompt or the generated tokens (repetition penalty) */
    float bias;          /* logit_bias (0: none) */
} ragd_logit_edit;

typedef struct ragd_sample_out {
    int32_t token;       /* -1 when nonfinite */
    int32_t nonfinite;   /* 1: some logit (after bans) was NaN or +Inf, or all were -Inf */
    float logprob;       /* log-softmax at temperature 1 (after bans) of token; 0 unless want_logprob */
    int32_t n_top;       /* min(n_top, n_vocab); 0 when nonfinite */
    int32_t top_ids[RAGD_SAMPLE_MAX_TOP];  /* the first n_top ids in the order; -1 past n_top */
    float top_lp[RAGD_SAMPLE_MAX_TOP];     /* lp of each; 0 past n_top */
    int32_t n_kept;      /* candidates the draw chose from (min(K, n_p, n_m)); 1 when greedy, 0 when nonfinite */
} ragd_sample_out;

#if defined(__CUDACC__)
#define RAGD_SM_FN static __host__ __device__ __forceinline__
#else
#define RAGD_SM_FN static inline
#endif

#if !defined(__CUDA_ARCH__) && defined(__FLT_EVAL_METHOD__) && __FLT_EVAL_METHOD__ != 0
#error "sample_math.h needs FLT_EVAL_METHOD 0 (float and double operations rounded to their own type)"
#endif
#if defined(__CUDA_ARCH__) && (defined(__USE_FAST_MATH__) || (defined(__CUDA_FTZ) && __CUDA_FTZ))
#error "sample_math.h must not be compiled with --use_fast_math / -ftz=true"
#endif

/* ---------------------------------------------------------------------------------------------- */
/* IEEE operations, each rounded once to nearest-even (the device spells them as intrinsics so that
 * they are never contracted; the host file is compiled with -ffp-contract=off). */

RAGD_SM_FN float ragd_sm_fsub(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fsub_rn(a, b);
#else
    return a - b;
#endif
}
RAGD_SM_FN float ragd_sm_fadd(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}
RAGD_SM_FN float ragd_sm_u2f(uint32_t u) { /* round to nearest */
#ifdef __CUDA_ARCH__
    return __uint2float_rn(u);
#else
    return (float)u;
#endif
}
RAGD_SM_FN float ragd_sm_fmul(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}
RAGD_SM_FN float ragd_sm_fdiv(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fdiv_rn(a, b);
#else
    return a / b;
#endif
}
RAGD_SM_FN double ragd_sm_dadd(double a, double b) {
#ifdef __CUDA_ARCH__
    return __dadd_rn(a, b);
#else
    return a + b;
#endif
}
RAGD_SM_FN double ragd_sm_dsub(double a, double b) {
#ifdef __CUDA_ARCH__
    return __dsub_rn(a, b);
#else
    return a - b;
#endif
}
RAGD_SM_FN double ragd_sm_dmul(double a, double b) {
#ifdef __CUDA_ARCH__
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}
RAGD_SM_FN double ragd_sm_ddiv(double a, double b) {
#ifdef __CUDA_ARCH__
    return __ddiv_rn(a, b);
#else
    return a / b;
#endif
}
RAGD_SM_FN float ragd_sm_d2f(double a) { /* round to nearest */
#ifdef __CUDA_ARCH__
    return __double2float_rn(a);
#else
    return (float)a;
#endif
}
RAGD_SM_FN uint32_t ragd_sm_fbits(float x) {
#ifdef __CUDA_ARCH__
    return __float_as_uint(x);
#else
    uint32_t u;
    __builtin_memcpy(&u, &x, 4);
    return u;
#endif
}
RAGD_SM_FN float ragd_sm_bitsf(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float x;
    __builtin_memcpy(&x, &u, 4);
    return x;
#endif
}
RAGD_SM_FN uint64_t ragd_sm_dbits(double x) {
#ifdef __CUDA_ARCH__
    return (uint64_t)__double_as_longlong(x);
#else
    uint64_t u;
    __builtin_memcpy(&u, &x, 8);
    return u;
#endif
}
RAGD_SM_FN double ragd_sm_bitsd(uint64_t u) {
#ifdef __CUDA_ARCH__
    return __longlong_as_double((long long)u);
#else
    double x;
    __builtin_memcpy(&x, &u, 8);
    return x;
#endif
}
/* high 64 bits of the 128-bit product */
RAGD_SM_FN uint64_t ragd_sm_mulhi(uint64_t a, uint64_t b) {
#ifdef __CUDA_ARCH__
    return __umul64hi(a, b);
#else
    __extension__ typedef unsigned __int128 u128;
    return (uint64_t)(((u128)a * b) >> 64);
#endif
}
/* count of leading zero bits, x != 0 */
RAGD_SM_FN int ragd_sm_clz64(uint64_t x) {
#ifdef __CUDA_ARCH__
    return __clzll((long long)x);
#else
    return __builtin_clzll(x);
#endif
}

/* ---------------------------------------------------------------------------------------------- */
/* E(y) ≈ exp(y) for y <= 0, as a float: 1 for y >= 0 (only y == 0 occurs), 0 below 2^-126, for -inf
 * and NaN. Computed as 2^(y·log2 e) in double (53 bits for a 24-bit result: within 0.51 ulp of
 * exp(y), and non-decreasing in y — both checked over every float in tests/engine/test_sample.c):
 *   t = y * LOG2E;  s = t + 0x1.8p52;  kd = s - 0x1.8p52 (t rounded to an integer, ties to even);
 *   k = low 32 bits of s's encoding (= kd);  f = t - kd (exact, |f| <= 1/2);
 *   p = Taylor polynomial of 2^f = Σ_{n<=8} (ln 2)^n / n! · f^n by Horner, one multiply then one add
 *       per step (truncation error <= 2^-31.7 relative: far below the step between neighbouring
 *       inputs, so E does not decrease where k changes);
 *   v = p * 2^k (exact);  E = v < 2^-126 ? 0 : (float)v. */
#define RAGD_SM_LOG2E 0x1.71547652b82fep+0
RAGD_SM_FN float ragd_sm_exp(float y) {
    if (!(y >= -88.0f)) return 0.0f; /* e^-88 < 2^-126: flushed; also -inf and NaN */
    if (y >= 0.0f) return 1.0f;
    const double magic = 0x1.8p52;
    double t = ragd_sm_dmul((double)y, RAGD_SM_LOG2E);
    double s = ragd_sm_dadd(t, magic);
    double kd = ragd_sm_dsub(s, magic);
    int32_t k = (int32_t)(uint32_t)ragd_sm_dbits(s); /* in [-127, 0] */
    double f = ragd_sm_dsub(t, kd);
    double p = 0x1.62c0223a5c824p-20;                            /* ln2^8 / 8! */
    p = ragd_sm_dadd(ragd_sm_dmul(p, f), 0x1.ffcbfc588b0c7p-17); /* ln2^7 / 7! */
    p = ragd_sm_dadd(ragd_sm_dmul(p, f), 0x1.430912f86c787p-13); /* ln2^6 / 6! */
    p = ragd_sm_dadd(ragd_sm_dmul(p, f), 0x1.5d87fe78a6731p-10); /* ln2^5 / 5! */
    p = ragd_sm_dadd(ragd_sm_dmul(p, f), 0x1.3b2ab6fba4e77p-7);  /* ln2^4 / 4! */
    p = ragd_sm_dadd(ragd_sm_dmul(p, f), 0x1.c6b08d704a0c0p-5);  /* ln2^3 / 3! */
    p = ragd_sm_dadd(ragd_sm_dmul(p, f), 0x1.ebfbdff82c58fp-3);  /* ln2^2 / 2! */
    p = ragd_sm_dadd(ragd_sm_dmul(p, f), 0x1.62e42fefa39efp-1);  /* ln2 */
    p = ragd_sm_dadd(ragd_sm_dmul(p, f), 1.0);
    double v = ragd_sm_dmul(p, ragd_sm_bitsd((uint64_t)(uint32_t)(k + 1023) << 52));
    if (v < 0x1p-126) return 0.0f;
    return ragd_sm_d2f(v);
}

/* FX(w) = trunc(w · 2^40) for w = 0 or a normal float in [2^-126, 1] (what E returns), by integer
 * operations on the encoding (the same value as converting w * 0x1p40f toward zero). */
#define RAGD_SM_ONE (1ull << 40)
RAGD_SM_FN uint64_t ragd_sm_fx(float w) {
    uint32_t u = ragd_sm_fbits(w);
    if (u == 0) return 0;
    uint32_t e = u >> 23;                            /* biased exponent (sign is 0) */
    uint64_t m = (u & 0x7FFFFFu) | 0x800000u;        /* w = m · 2^(e - 150) */
    if (e >= 110) return m << (e - 110);             /* w · 2^40 = m · 2^(e - 110) */
    return 110 - e < 24 ? m >> (110 - e) : 0;
}

/* L(s) = log(s · 2^-40) for s >= 1, in double (error ~1e-16 relative; a log-probability base):
 *   e = floor(log2 s);  x = s's leading 53 bits (truncated) as a double in [1, 2);
 *   if x > sqrt 2: x = x * 0.5, e = e + 1;   (x in (0.707, 1.415])
 *   z = (x - 1) / (x + 1);  log x = 2z · Σ_{j<=10} z^(2j) / (2j + 1)  (Horner in z², |z| <= 0.172);
 *   L = (e - 40) * LN2 + log x. */
RAGD_SM_FN double ragd_sm_log_fx(uint64_t s) {
    int e = 63 - ragd_sm_clz64(s);
    uint64_t mant = e >= 52 ? s >> (e - 52) : s << (52 - e);
    double x = ragd_sm_bitsd(0x3FF0000000000000ull | (mant & 0xFFFFFFFFFFFFFull));
    if (x > 0x1.6a09e667f3bcdp+0) {
        x = ragd_sm_dmul(x, 0.5);
        e += 1;
    }
    double z = ragd_sm_ddiv(ragd_sm_dsub(x, 1.0), ragd_sm_dadd(x, 1.0));
    double z2 = ragd_sm_dmul(z, z);
    double q = 0x1.8618618618618p-5;                             /* 1/21 */
    q = ragd_sm_dadd(ragd_sm_dmul(q, z2), 0x1.af286bca1af28p-5); /* 1/19 */
    q = ragd_sm_dadd(ragd_sm_dmul(q, z2), 0x1.e1e1e1e1e1e1ep-5); /* 1/17 */
    q = ragd_sm_dadd(ragd_sm_dmul(q, z2), 0x1.1111111111111p-4); /* 1/15 */
    q = ragd_sm_dadd(ragd_sm_dmul(q, z2), 0x1.3b13b13b13b14p-4); /* 1/13 */
    q = ragd_sm_dadd(ragd_sm_dmul(q, z2), 0x1.745d1745d1746p-4); /* 1/11 */
    q = ragd_sm_dadd(ragd_sm_dmul(q, z2), 0x1.c71c71c71c71cp-4); /* 1/9 */
    q = ragd_sm_dadd(ragd_sm_dmul(q, z2), 0x1.2492492492492p-3); /* 1/7 */
    q = ragd_sm_dadd(ragd_sm_dmul(q, z2), 0x1.999999999999ap-3); /* 1/5 */
    q = ragd_sm_dadd(ragd_sm_dmul(q, z2), 0x1.5555555555555p-2); /* 1/3 */
    q = ragd_sm_dadd(ragd_sm_dmul(q, z2), 1.0);
    double lx = ragd_sm_dmul(ragd_sm_dmul(2.0, z), q);
    return ragd_sm_dadd(ragd_sm_dmul((double)(e - 40), 0x1.62e42fefa39efp-1), lx);
}

/* The scaled logit y = d * inv_t of step 5, with d == 0 (the maximum and its ties) kept at 0 even when
 * inv_t is +inf (a temperature below ~3e-39). */
RAGD_SM_FN float ragd_sm_scaled(float d, float inv_t) { return d == 0.0f ? 0.0f : ragd_sm_fmul(d, inv_t); }

/* Mass r of a logit x given the row maximum m: FX(E(scaled(x - m))). */
RAGD_SM_FN uint64_t ragd_sm_mass(float x, float m, float inv_t) {
    return ragd_sm_fx(ragd_sm_exp(ragd_sm_scaled(ragd_sm_fsub(x, m), inv_t)));
}

/* lp = (float)((double)(x - m) - lse), with x = -0 taken as +0 (m is always the +0 of a zero maximum,
 * so the sign of a zero never shows: with lse == 0, -0 - 0 would be -0) */
RAGD_SM_FN float ragd_sm_logprob(float x, float m, double lse) {
    if (x == 0.0f) x = 0.0f;
    return ragd_sm_d2f(ragd_sm_dsub((double)ragd_sm_fsub(x, m), lse));
}

/* ⌈p · r⌉ exactly, for a float p (<= 0: 0; >= 1, inf, NaN: r): p = mant · 2^-sh with a 24-bit mant, so
 * the product is a 128-bit integer shifted right by sh, rounded up. */
RAGD_SM_FN uint64_t ragd_sm_ceil_mul(float p, uint64_t r) {
    uint32_t u = ragd_sm_fbits(p);
    if ((u >> 31) || u == 0) return 0;
    if (u >= 0x3F800000u) return r;
    uint32_t be = u >> 23;                                       /* 0..126 */
    uint64_t mant = be ? ((u & 0x7FFFFFu) | 0x800000u) : u;
    int sh = be ? 150 - (int)be : 149;                           /* 24..149 */
    uint64_t lo = mant * r, hi = ragd_sm_mulhi(mant, r);         /* hi < 2^24 */
    uint64_t q;
    bool rem;
    if (sh < 64) {
        q = (lo >> sh) | (hi << (64 - sh));
        rem = (lo << (64 - sh)) != 0;
    } else if (sh < 128) {
        int s2 = sh - 64;
        q = hi >> s2;
        rem = lo != 0 || (s2 > 0 && (hi << (64 - s2)) != 0);
    } else {
        q = 0;
        rem = (lo | hi) != 0;
    }
    return q + (rem ? 1 : 0);
}

/* ---------------------------------------------------------------------------------------------- */
/* Order keys. key(x): unsigned, ascending with x (-0 and +0 share one key); order(x, i) = key << 32 |
 * (0xFFFFFFFF - i): the order of the contract is descending order(). */
RAGD_SM_FN uint32_t ragd_sm_key(float x) { /* branch-free: negative → ~u, positive → u | 2^31 */
    uint32_t u = ragd_sm_fbits(x);
    u = u == 0x80000000u ? 0u : u;
    return u ^ ((0u - (u >> 31)) | 0x80000000u);
}
/* the float of a key (+0 for either zero) */
RAGD_SM_FN float ragd_sm_key_value(uint32_t k) {
    return ragd_sm_bitsf((k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k);
}
RAGD_SM_FN uint64_t ragd_sm_order(float x, int32_t i) {
    return (uint64_t)ragd_sm_key(x) << 32 | (uint32_t)~(uint32_t)i;
}
RAGD_SM_FN int32_t ragd_sm_order_id(uint64_t c) { return (int32_t)~(uint32_t)c; }

/* ---------------------------------------------------------------------------------------------- */
/* RNG: a counter-based hash, two splitmix64 finalizers (Steele, Lea, Flood 2014):
 *   key = mix(seed ^ 0x5851F42D4C957F2D);  u = mix(key + (counter + 1) · 0x9E3779B97F4A7C15)
 * i.e. output number `counter` of splitmix64 started from state key; mix(z): z ^= z >> 30,
 * z *= 0xBF58476D1CE4E5B9, z ^= z >> 27, z *= 0x94D049BB133111EB, z ^= z >> 31 (mod 2^64). */
RAGD_SM_FN uint64_t ragd_sm_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
RAGD_SM_FN uint64_t ragd_sm_rng(uint64_t seed, uint64_t counter) {
    uint64_t key = ragd_sm_mix64(seed ^ 0x5851F42D4C957F2Dull);
    return ragd_sm_mix64(key + (counter + 1) * 0x9E3779B97F4A7C15ull);
}

/* ---------------------------------------------------------------------------------------------- */
/* What one row asks for, derived the same way on both sides (parameters are not trusted: values
 * outside the ranges ragd_sample_check accepts still give a defined result and never an access out
 * of bounds). */
typedef struct ragd_sm_plan {
    bool greedy;     /* temperature <= 0 or top_k == 1 */
    bool need_lse;   /* want_logprob or n_top > 0 */
    bool top_p_on;   /* top_p < 1 */
    bool min_p_on;   /* min_p > 0 */
    int32_t k;       /* K: top_k when 0 < top_k < V, else V */
    int32_t n_top;   /* min(max(n_top, 0), 20, V) */
    int32_t n_ban;   /* min(max(n_ban, 0), 8) */
    float inv_t;     /* 1.0f / temperature (sampling only) */
    uint64_t min_p_fx; /* M = ceil(min_p · 2^40) */
} ragd_sm_plan;

RAGD_SM_FN void ragd_sm_plan_make(const ragd_sample_params *p, int n_vocab, ragd_sm_plan *pl) {
    pl->greedy = p->temperature <= 0.0f || p->top_k == 1;
    pl->n_top = p->n_top < 0 ? 0 : p->n_top;
    if (pl->n_top > RAGD_SAMPLE_MAX_TOP) pl->n_top = RAGD_SAMPLE_MAX_TOP;
    if (pl->n_top > n_vocab) pl->n_top = n_vocab;
    pl->need_lse = p->want_logprob != 0 || pl->n_top > 0;
    pl->n_ban = p->n_ban < 0 ? 0 : (p->n_ban > RAGD_SAMPLE_MAX_BAN ? RAGD_SAMPLE_MAX_BAN : p->n_ban);
    pl->k = (p->top_k > 0 && p->top_k < n_vocab) ? p->top_k : n_vocab;
    pl->top_p_on = p->top_p < 1.0f;
    pl->min_p_on = p->min_p > 0.0f;
    pl->inv_t = pl->greedy ? 1.0f : ragd_sm_fdiv(1.0f, p->temperature);
    pl->min_p_fx = pl->min_p_on ? ragd_sm_ceil_mul(p->min_p, RAGD_SM_ONE) : 0;
}

/* true when id i is one of ban[0..n_ban) (ids outside [0, V) never match) */
RAGD_SM_FN bool ragd_sm_banned_list(const int32_t *ban, int n_ban, int32_t i) {
    for (int j = 0; j < n_ban; j++)
        if (ban[j] == i) return true;
    return false;
}

/* ---------------------------------------------------------------------------------------------- */
/* Logit processing (structured-output masks, penalties, logit_bias), applied to the row before the
 * sampler sees it; the same on both sides because every edit is the fixed sequence of roundings below
 * and a mask only writes -inf. A masked-out token is -inf whatever its edits (the mask comes last). */
RAGD_SM_FN float ragd_sm_edit(float x, const ragd_sample_params *p, const ragd_logit_edit *e) {
    x = ragd_sm_fadd(x, e->bias);
    const float rp = p->repetition_penalty;
    if (e->in_seq && rp > 0.0f && rp != 1.0f) x = x > 0.0f ? ragd_sm_fdiv(x, rp) : ragd_sm_fmul(x, rp);
    if (e->count) {
        x = ragd_sm_fsub(x, ragd_sm_fmul(p->frequency_penalty, ragd_sm_u2f(e->count)));
        x = ragd_sm_fsub(x, p->presence_penalty);
    }
    return x;
}
/* bit i of mask row words: token i allowed */
RAGD_SM_FN bool ragd_sm_allowed(const uint32_t *words, int32_t i) { return (words[i >> 5] >> (i & 31)) & 1u; }

/* The fields of an active row before anything is computed. */
RAGD_SM_FN void ragd_sm_out_init(ragd_sample_out *o) {
    o->token = -1;
    o->nonfinite = 0;
    o->logprob = 0.0f;
    o->n_top = 0;
    for (int j = 0; j < RAGD_SAMPLE_MAX_TOP; j++) {
        o->top_ids[j] = -1;
        o->top_lp[j] = 0.0f;
    }
    o->n_kept = 0;
}

#endif
