/* sample.c — the reference sampler: one logits row → token, logprob and top log-probabilities, as
 * specified in engine/sample_math.h (whose arithmetic it uses, compiled with -ffp-contract=off). The
 * CUDA kernel ragd_k_sample (engine/cuda/sample.cu) returns the same bits; this file is what the CPU
 * backend uses and what tests/gpu/test_sample.cu compares the kernel against.
 *
 * How it computes the contract (any correct selection gives the same bits, since every decision is an
 * integer comparison of exact sums):
 *   - one pass for the maximum, its first index and the nonfinite check (bans applied on a copy);
 *   - S1 = Σ FX(E(x - m)) when a logprob is wanted;
 *   - top_k <= SMALL_K: the first K ids in the order by one pass with a K-entry min-heap on the 64-bit
 *     order value, then their masses; otherwise the masses of every id, and the ids of positive mass
 *     (a prefix of the order, E being non-decreasing) sorted by a stable LSD radix sort on the 32-bit
 *     key (ids enter ascending, so ties stay in id order);
 *   - prefix sums along the candidates, then binary searches for top-p and the draw.
 * Threading: a workspace is used by one call at a time; calls with different workspaces may run
 * concurrently (no global state).
 */
#include <math.h>
#include <stdlib.h>

#include "engine/engine.h"

enum { SMALL_K = 1024 };

struct ragd_sample_ws {
    int n_vocab;
    float *x;           /* [n_vocab] the row with bans applied (only when there are bans) */
    uint64_t *r;        /* [n_vocab] mass of id i */
    uint64_t *cm;       /* [n_vocab] mass of candidate j (in the order) */
    uint64_t *pre;      /* [n_vocab] inclusive prefix mass of candidate j */
    uint32_t *key, *key2; /* [n_vocab] radix sort keys (descending logit = ascending key) */
    int32_t *idx, *idx2;  /* [n_vocab] candidate ids */
    uint64_t *heap;     /* [min(n_vocab, SMALL_K)] order values of the selection heap */
};

ragd_status ragd_sample_check(const ragd_sample_params *p, int n_vocab, ragd_err *err) {
    if (n_vocab < 1 || n_vocab > RAGD_SAMPLE_MAX_VOCAB)
        return ragd_err_set(err, RAGD_ERANGE, "n_vocab %d must be in 1..%d", n_vocab, RAGD_SAMPLE_MAX_VOCAB);
    if (!isfinite(p->temperature) || p->temperature < 0)
        return ragd_err_set(err, RAGD_ERANGE, "temperature %g must be a finite number >= 0",
                            (double)p->temperature);
    if (!(p->top_p > 0 && p->top_p <= 1))
        return ragd_err_set(err, RAGD_ERANGE, "top_p %g must be in (0, 1]", (double)p->top_p);
    if (!(p->min_p >= 0 && p->min_p <= 1))
        return ragd_err_set(err, RAGD_ERANGE, "min_p %g must be in [0, 1]", (double)p->min_p);
    if (p->top_k < 0) return ragd_err_set(err, RAGD_ERANGE, "top_k %d must be >= 0 (0 = off)", p->top_k);
    if (p->n_top < 0 || p->n_top > RAGD_SAMPLE_MAX_TOP)
        return ragd_err_set(err, RAGD_ERANGE, "n_top %d must be in 0..%d", p->n_top, RAGD_SAMPLE_MAX_TOP);
    if (p->n_ban < 0 || p->n_ban > RAGD_SAMPLE_MAX_BAN)
        return ragd_err_set(err, RAGD_ERANGE, "n_ban %d must be in 0..%d", p->n_ban, RAGD_SAMPLE_MAX_BAN);
    for (int j = 0; j < p->n_ban; j++)
        if (p->ban[j] < 0 || p->ban[j] >= n_vocab)
            return ragd_err_set(err, RAGD_ERANGE, "ban[%d] = %d must be a token id in [0, %d)", j, p->ban[j],
                                n_vocab);
    return RAGD_OK;
}

ragd_sample_ws *ragd_sample_ws_create(int n_vocab) {
    if (n_vocab < 1 || n_vocab > RAGD_SAMPLE_MAX_VOCAB) return NULL;
    ragd_sample_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    size_t n = (size_t)n_vocab;
    ws->n_vocab = n_vocab;
    ws->x = malloc(n * sizeof *ws->x);
    ws->r = malloc(n * sizeof *ws->r);
    ws->cm = malloc(n * sizeof *ws->cm);
    ws->pre = malloc(n * sizeof *ws->pre);
    ws->key = malloc(n * sizeof *ws->key);
    ws->key2 = malloc(n * sizeof *ws->key2);
    ws->idx = malloc(n * sizeof *ws->idx);
    ws->idx2 = malloc(n * sizeof *ws->idx2);
    ws->heap = malloc((n < SMALL_K ? n : SMALL_K) * sizeof *ws->heap);
    if (!ws->x || !ws->r || !ws->cm || !ws->pre || !ws->key || !ws->key2 || !ws->idx || !ws->idx2 || !ws->heap) {
        ragd_sample_ws_free(ws);
        return NULL;
    }
    return ws;
}

void ragd_sample_ws_free(ragd_sample_ws *ws) {
    if (!ws) return;
    free(ws->x);
    free(ws->r);
    free(ws->cm);
    free(ws->pre);
    free(ws->key);
    free(ws->key2);
    free(ws->idx);
    free(ws->idx2);
    free(ws->heap);
    free(ws);
}

/* ---- selection ------------------------------------------------------------------------------- */

static void heap_down(uint64_t *h, int n, int i) { /* min-heap on the order value */
    for (;;) {
        int l = 2 * i + 1, w = i;
        if (l < n && h[l] < h[w]) w = l;
        if (l + 1 < n && h[l + 1] < h[w]) w = l + 1;
        if (w == i) return;
        uint64_t t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* h[0..k) = the order values of the first k ids in the order, first first. 1 <= k <= n; no NaN in x.
 * An id after the heap's ids enters only with a logit strictly above the root's (a tie ranks after),
 * so the scan compares floats and builds an order value only for the few that enter. */
static void select_first(const float *x, int n, int k, uint64_t *h) {
    for (int i = 0; i < k; i++) h[i] = ragd_sm_order(x[i], i);
    for (int i = k / 2 - 1; i >= 0; i--) heap_down(h, k, i);
    float thr = ragd_sm_key_value((uint32_t)(h[0] >> 32));
    for (int i = k; i < n; i++) {
        if (x[i] > thr) {
            h[0] = ragd_sm_order(x[i], i);
            heap_down(h, k, 0);
            thr = ragd_sm_key_value((uint32_t)(h[0] >> 32));
        }
    }
    for (int m = k - 1; m > 0; m--) { /* heap sort: the smallest goes last */
        uint64_t t = h[0];
        h[0] = h[m];
        h[m] = t;
        heap_down(h, m, 0);
    }
}

/* Stable LSD radix sort of idx[0..n) by key ascending (3 passes of 11 bits, skipping a pass when
 * every key has the same digit). Returns the array holding the result (idx or idx2). */
static int32_t *radix_sort(uint32_t *key, int32_t *idx, uint32_t *key2, int32_t *idx2, int n) {
    enum { BITS = 11, NB = 1 << BITS };
    static const int shift[3] = {0, 11, 22};
    uint32_t hist[3][NB] = {{0}};
    for (int i = 0; i < n; i++) {
        hist[0][key[i] & (NB - 1)]++;
        hist[1][(key[i] >> 11) & (NB - 1)]++;
        hist[2][key[i] >> 22]++;
    }
    for (int pass = 0; pass < 3; pass++) {
        int sh = shift[pass];
        if (n == 0 || hist[pass][(key[0] >> sh) & (NB - 1)] == (uint32_t)n) continue;
        uint32_t off[NB], acc = 0;
        for (int b = 0; b < NB; b++) {
            off[b] = acc;
            acc += hist[pass][b];
        }
        for (int i = 0; i < n; i++) {
            uint32_t o = off[(key[i] >> sh) & (NB - 1)]++;
            key2[o] = key[i];
            idx2[o] = idx[i];
        }
        uint32_t *tk = key;
        key = key2;
        key2 = tk;
        int32_t *ti = idx;
        idx = idx2;
        idx2 = ti;
    }
    return idx;
}

/* first j in [0, n) with pre[j] >= v (n when none); pre is non-decreasing */
static int first_ge(const uint64_t *pre, int n, uint64_t v) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (pre[mid] >= v) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* Steps 5-6 of the contract: the drawn id; *n_kept = min(K, n_p, n_m). */
static int32_t draw(const float *x, int n_vocab, float m, const ragd_sample_params *p, const ragd_sm_plan *pl,
                    ragd_sample_ws *ws, int32_t *n_kept) {
    const int K = pl->k;
    const int32_t *cand;
    int nc; /* candidates held: the first nc in the order; those after them (up to K) have mass 0 */
    if (K <= SMALL_K && K < n_vocab) {
        select_first(x, n_vocab, K, ws->heap);
        for (int j = 0; j < K; j++) ws->idx[j] = ragd_sm_order_id(ws->heap[j]);
        for (int j = 0; j < K; j++) ws->cm[j] = ragd_sm_mass(x[ws->idx[j]], m, pl->inv_t);
        cand = ws->idx;
        nc = K;
    } else {
        int n_pos = 0;
        for (int i = 0; i < n_vocab; i++) {
            uint64_t r = ragd_sm_mass(x[i], m, pl->inv_t);
            ws->r[i] = r;
            if (r) {
                ws->key[n_pos] = ~ragd_sm_key(x[i]);
                ws->idx[n_pos] = i;
                n_pos++;
            }
        }
        cand = radix_sort(ws->key, ws->idx, ws->key2, ws->idx2, n_pos);
        nc = n_pos < K ? n_pos : K;
        for (int j = 0; j < nc; j++) ws->cm[j] = ws->r[cand[j]];
    }
    uint64_t acc = 0;
    for (int j = 0; j < nc; j++) ws->pre[j] = acc += ws->cm[j];
    const uint64_t R = ws->pre[nc - 1];

    int n = K;
    if (pl->top_p_on) {
        int np = first_ge(ws->pre, nc, ragd_sm_ceil_mul(p->top_p, R)) + 1; /* <= nc: pre[nc-1] = R >= P */
        if (np < n) n = np;
    }
    if (pl->min_p_on) {
        int nm = 0;
        while (nm < nc && ws->cm[nm] >= pl->min_p_fx) nm++;
        if (nm < 1) nm = 1;
        if (nm < n) n = nm;
    }
    *n_kept = n;
    const uint64_t T = ws->pre[(n < nc ? n : nc) - 1];
    const uint64_t D = ragd_sm_mulhi(ragd_sm_rng(p->seed, p->counter), T);
    return cand[first_ge(ws->pre, nc, D + 1)]; /* first inclusive prefix > D (D < T: exists) */
}

void ragd_sample_row(const float *logits, int n_vocab, const ragd_sample_params *p, ragd_sample_ws *ws,
                     ragd_sample_out *out) {
    if (!p->active) return;
    RAGD_ASSERT(ws != NULL && n_vocab >= 1 && n_vocab <= ws->n_vocab);
    ragd_sm_plan pl;
    ragd_sm_plan_make(p, n_vocab, &pl);
    ragd_sm_out_init(out);

    const float *x = logits;
    if (pl.n_ban > 0) {
        memcpy(ws->x, logits, sizeof(float) * (size_t)n_vocab);
        for (int j = 0; j < pl.n_ban; j++)
            if (p->ban[j] >= 0 && p->ban[j] < n_vocab) ws->x[p->ban[j]] = -INFINITY;
        x = ws->x;
    }

    /* the maximum and the nonfinite check (branch-free, vectorizable), then its first index */
    /* on order keys: +inf and positive NaNs lie above every finite key, negative NaNs below -inf's */
    uint32_t kmax = 0, kmin = 0xFFFFFFFFu;
    for (int i = 0; i < n_vocab; i++) {
        uint32_t k = ragd_sm_key(x[i]);
        kmax = k > kmax ? k : kmax;
        kmin = k < kmin ? k : kmin;
    }
    const uint32_t key_ninf = ragd_sm_key(-INFINITY), key_pinf = ragd_sm_key(INFINITY);
    if (kmax >= key_pinf || kmin < key_ninf || kmax == key_ninf) {
        out->nonfinite = 1;
        return;
    }
    const float m = ragd_sm_key_value(kmax);
    int32_t am = 0;
    while (!(x[am] == m)) am++; /* the first of equal maxima (-0 == +0) */

    double lse = 0;
    if (pl.need_lse) {
        uint64_t s1 = 0;
        for (int i = 0; i < n_vocab; i++) s1 += ragd_sm_fx(ragd_sm_exp(ragd_sm_fsub(x[i], m)));
        lse = ragd_sm_log_fx(s1);
    }
    if (pl.greedy) {
        out->token = am;
        out->n_kept = 1;
    } else {
        out->token = draw(x, n_vocab, m, p, &pl, ws, &out->n_kept);
    }
    if (p->want_logprob) out->logprob = ragd_sm_logprob(x[out->token], m, lse);
    if (pl.n_top > 0) {
        select_first(x, n_vocab, pl.n_top, ws->heap);
        for (int j = 0; j < pl.n_top; j++) {
            int32_t id = ragd_sm_order_id(ws->heap[j]);
            out->top_ids[j] = id;
            out->top_lp[j] = ragd_sm_logprob(x[id], m, lse);
        }
        out->n_top = pl.n_top;
    }
}

/* ---- logit processing ------------------------------------------------------------------------- */

bool ragd_sample_has_proc(const ragd_sample_params *p) { return p->mask_row > 0 || p->n_edit > 0; }

void ragd_logits_process(float *logits, int n_vocab, const ragd_sample_params *p, const ragd_step_proc *proc) {
    if (!p->active || !ragd_sample_has_proc(p)) return;
    RAGD_ASSERT(proc != NULL);
    for (int j = 0; j < p->n_edit; j++) {
        const ragd_logit_edit *e = &proc->edits[p->edit_off + j];
        logits[e->id] = ragd_sm_edit(logits[e->id], p, e);
    }
    if (p->mask_row > 0) {
        const uint32_t *w = proc->masks + (size_t)(p->mask_row - 1) * (size_t)((n_vocab + 31) / 32);
        for (int k = 0; k < (n_vocab + 31) / 32; k++) {
            if (w[k] == 0xFFFFFFFFu) continue; /* all allowed (structured output: most words inside strings) */
            int hi = 32 * k + 32 < n_vocab ? 32 * k + 32 : n_vocab;
            for (int i = 32 * k; i < hi; i++)
                if (!((w[k] >> (i & 31)) & 1u)) logits[i] = -INFINITY;
        }
    }
}
