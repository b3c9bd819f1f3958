/* sampler.c — next-token selection: greedy (temperature 0) or seeded sampling with temperature, top-k,
 * top-p and min-p applied in transformers' warper order. The RNG is xoshiro256** seeded through
 * splitmix64, so a seed reproduces the same ids on any machine (the draw uses 24-bit floats and a
 * sequential cumulative sum in a fixed order). The scratch (probs, idx, keys) is allocated once per sequence.
 *
 * Candidate order: logit descending, then id ascending (a total order on finite logits). The selection never
 * runs a comparison sort over the vocabulary: top-k ≤ n/16 keeps a k-entry heap in one pass and sorts only
 * those k; otherwise (top-k off or large — every id then takes part in the normalizing sum and the draw, in
 * that order) a stable 3-pass LSD radix sort on order-preserving 32-bit keys gives the same order in O(n).
 * Both produce exactly the order the former qsort gave, so every probability, sum and draw is unchanged
 * (tests/tasks/test_sampler_select.c checks it against that full-sort reference). Greedy is one argmax
 * pass. */
#include <math.h>
#include <stdlib.h>

#include "tasks/tasks.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t *s) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

ragd_status ragd_sampler_init(ragd_sampler *s, const ragd_sampler_opts *o, int n_vocab, ragd_err *err) {
    memset(s, 0, sizeof *s);
    if (!isfinite(o->temperature) || o->temperature < 0)
        return ragd_err_set(err, RAGD_ERANGE, "temperature %g must be ≥ 0", (double)o->temperature);
    if (o->top_k < 0) return ragd_err_set(err, RAGD_ERANGE, "top_k %d must be ≥ 0 (0 = off)", o->top_k);
    if (!(o->top_p > 0 && o->top_p <= 1))
        return ragd_err_set(err, RAGD_ERANGE, "top_p %g must be in (0, 1]", (double)o->top_p);
    if (!(o->min_p >= 0 && o->min_p <= 1))
        return ragd_err_set(err, RAGD_ERANGE, "min_p %g must be in [0, 1]", (double)o->min_p);
    if (n_vocab < 1) return ragd_err_set(err, RAGD_EINVAL, "empty vocabulary");
    s->o = *o;
    s->n_vocab = n_vocab;
    uint64_t x = o->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    s->probs = malloc(sizeof(float) * (size_t)n_vocab);
    s->idx = malloc(sizeof(int32_t) * (size_t)n_vocab);
    s->keys = malloc(sizeof(uint64_t) * 2 * (size_t)n_vocab);
    if (!s->probs || !s->idx || !s->keys) {
        ragd_sampler_free(s);
        return ragd_err_set(err, RAGD_ENOMEM, "sampler: out of memory for %d entries", n_vocab);
    }
    return RAGD_OK;
}

void ragd_sampler_free(ragd_sampler *s) {
    if (!s) return;
    free(s->probs);
    free(s->idx);
    free(s->keys);
    s->probs = NULL;
    s->idx = NULL;
    s->keys = NULL;
}

/* ---- candidate selection: idx[0..k) = the k best ids, best first (logit desc, then id asc) ---- */

/* a ranks after b */
static inline bool worse(const float *v, int32_t a, int32_t b) { return v[a] < v[b] || (v[a] == v[b] && a > b); }

static void sift_down(const float *v, int32_t *h, int k, int i) {
    for (;;) {
        int l = 2 * i + 1, w = i;
        if (l < k && worse(v, h[l], h[w])) w = l;
        if (l + 1 < k && worse(v, h[l + 1], h[w])) w = l + 1;
        if (w == i) return;
        int32_t t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* one pass with a min-heap (root = the worst kept id), then heap-sort the k kept ids best first */
static void select_heap(const float *v, int n, int k, int32_t *h) {
    for (int i = 0; i < k; i++) h[i] = i;
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(v, h, k, i);
    for (int i = k; i < n; i++) {
        /* ids arrive in increasing order, so a tie with the root always ranks after it: strict > suffices */
        if (v[i] > v[h[0]]) {
            h[0] = i;
            sift_down(v, h, k, 0);
        }
    }
    for (int m = k - 1; m > 0; m--) { /* move the worst to the end */
        int32_t t = h[0];
        h[0] = h[m];
        h[m] = t;
        sift_down(v, h, m, 0);
    }
}

/* order-preserving key: ascending key = descending logit; -0 and +0 share a key (they compare equal) */
static inline uint32_t desc_key(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if (u == 0x80000000u) u = 0;
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ~u;
}

/* stable LSD radix sort of all n ids by desc_key (3 passes of 11 bits over the key half of key << 32 | id,
 * whose id half is already ascending): ties keep ascending id order. keys: [2n] */
static void select_radix(const float *v, int n, int32_t *idx, uint64_t *keys) {
    enum { BITS = 11, NB = 1 << BITS };
    static const int shift[3] = {32, 43, 54};
    uint32_t hist[3][NB];
    memset(hist, 0, sizeof hist);
    for (int i = 0; i < n; i++) {
        uint32_t kk = desc_key(v[i]);
        keys[i] = (uint64_t)kk << 32 | (uint32_t)i;
        hist[0][kk & (NB - 1)]++;
        hist[1][(kk >> 11) & (NB - 1)]++;
        hist[2][kk >> 22]++;
    }
    uint64_t *ka = keys, *kb = keys + n;
    for (int pass = 0; pass < 3; pass++) {
        int sh = shift[pass];
        if (hist[pass][(ka[0] >> sh) & (NB - 1)] == (uint32_t)n) continue; /* every key has these bits */
        uint32_t off[NB], acc = 0;
        for (int b = 0; b < NB; b++) {
            off[b] = acc;
            acc += hist[pass][b];
        }
        for (int i = 0; i < n; i++) kb[off[(ka[i] >> sh) & (NB - 1)]++] = ka[i];
        uint64_t *t = ka;
        ka = kb;
        kb = t;
    }
    for (int i = 0; i < n; i++) idx[i] = (int32_t)(uint32_t)ka[i];
}

static float log_softmax_at(const float *logits, int n, int32_t pick) {
    float mx = logits[0];
    for (int i = 1; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    return (float)((double)logits[pick] - mx - log(sum));
}

int32_t ragd_sampler_sample(ragd_sampler *s, const float *logits, float *logprob) {
    int n = s->n_vocab;
    int32_t pick = 0;
    if (s->o.temperature <= 0) {
        for (int i = 1; i < n; i++)
            if (logits[i] > logits[pick]) pick = i;
        if (logprob) *logprob = log_softmax_at(logits, n, pick);
        return pick;
    }
    /* candidates sorted by logit (temperature does not change the order) */
    int32_t *idx = s->idx;
    float *p = s->probs;
    int k = n;
    if (s->o.top_k > 0 && s->o.top_k < n) k = s->o.top_k;
    if (k <= n / 16) select_heap(logits, n, k, idx);
    else select_radix(logits, n, idx, s->keys);
    /* softmax over the k candidates at temperature T */
    float inv_t = 1.0f / s->o.temperature, mx = logits[idx[0]] * inv_t;
    double sum = 0;
    for (int i = 0; i < k; i++) {
        p[i] = expf(logits[idx[i]] * inv_t - mx);
        sum += p[i];
    }
    for (int i = 0; i < k; i++) p[i] = (float)(p[i] / sum);
    /* top-p: the smallest prefix whose mass reaches top_p (at least one) */
    if (s->o.top_p < 1.0f) {
        double cum = 0;
        int keep = k;
        for (int i = 0; i < k; i++) {
            cum += p[i];
            if (cum >= s->o.top_p) {
                keep = i + 1;
                break;
            }
        }
        k = keep;
    }
    /* min-p: drop candidates below min_p × the best probability */
    if (s->o.min_p > 0) {
        float thr = s->o.min_p * p[0];
        int keep = 1;
        while (keep < k && p[keep] >= thr) keep++;
        k = keep;
    }
    double total = 0;
    for (int i = 0; i < k; i++) total += p[i];
    double u = (double)(xoshiro_next(s->rng) >> 40) / (double)(1ull << 24) * total;
    double cum = 0;
    pick = idx[k - 1];
    for (int i = 0; i < k; i++) {
        cum += p[i];
        if (u < cum) {
            pick = idx[i];
            break;
        }
    }
    if (logprob) *logprob = log_softmax_at(logits, n, pick);
    return pick;
}
