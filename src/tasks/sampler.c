/* sampler.c — next-token selection: greedy (temperature 0) or seeded sampling with temperature, top-k,
 * top-p and min-p applied in transformers' warper order. The RNG is xoshiro256** seeded through
 * splitmix64, so a seed reproduces the same ids on any machine (the draw uses 24-bit floats and a
 * sequential cumulative sum in a fixed order). The scratch (probs, idx) is allocated once per sequence. */
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
    if (!s->probs || !s->idx) {
        ragd_sampler_free(s);
        return ragd_err_set(err, RAGD_ENOMEM, "sampler: out of memory for %d entries", n_vocab);
    }
    return RAGD_OK;
}

void ragd_sampler_free(ragd_sampler *s) {
    if (!s) return;
    free(s->probs);
    free(s->idx);
    s->probs = NULL;
    s->idx = NULL;
}

/* sort key: logit descending, then index ascending (a total order: ties never depend on qsort) */
typedef struct {
    const float *v;
} sort_ctx;

static int cmp_desc(const void *a, const void *b, void *ctx) {
    const float *v = ((sort_ctx *)ctx)->v;
    int32_t ia = *(const int32_t *)a, ib = *(const int32_t *)b;
    if (v[ia] > v[ib]) return -1;
    if (v[ia] < v[ib]) return 1;
    return ia < ib ? -1 : ia > ib;
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
    for (int i = 0; i < n; i++) idx[i] = i;
    int k = n;
    sort_ctx sc = {logits};
    if (s->o.top_k > 0 && s->o.top_k < n) k = s->o.top_k;
    qsort_r(idx, (size_t)n, sizeof *idx, cmp_desc, &sc); /* a full sort: exact and simple (~10 ms at 152k) */
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
