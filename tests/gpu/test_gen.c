/* test_gen.c — CUDA generation (ragd_backend_cuda.step with KV slots) against transformers references
 * written by make_gen.py, on a small random Qwen3 and a Llama (head_dim 64, GQA, tied) model:
 *   - greedy generation of NGEN tokens, each prompt alone (prefill then decode): ids vs transformers
 *     bf16 greedy (how many prompts match fully, matching prefix lengths);
 *   - logits of the first NLOG steps, teacher-forced on transformers' tokens, vs transformers fp32
 *     (relative L2 error per vector; the worst must be ≤ 1e-2) and bf16 (reported);
 *   - prefill in two chunks: the same tokens and bit-identical logits as one prefill;
 *   - batch invariance: all prompts stepped together with staggered starts (prefills mixed with
 *     decode tokens) give bit-identical logits to each prompt alone;
 *   - error paths: slot out of range, slot twice, beyond max_ctx.
 * Usage: test_gen MODEL_DIR (refs in MODEL_DIR/refs) | test_gen --bench MODEL_DIR (decode tok/s). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "engine/backend.h"
#include "engine/cuda/cuda_api.h"
#include "st_model.h"

enum { NGEN = 40, NLOG = 4, MAXP = 64 };
static int g_fail = 0;
static void check(int ok, const char *what) {
    printf("  %s: %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) g_fail = 1;
}

static void *read_all(const char *dir, const char *name, size_t *n) {
    char refs[4096];
    snprintf(refs, sizeof refs, "%s/refs", dir);
    return st_read_file(refs, name, n);
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

static void *g_st;
static int g_V;
/* One step; dies on error. */
static void step(int n, const int32_t *tok, const int32_t *start, const int32_t *slots, float *logits) {
    ragd_batch b = {n, tok, start};
    ragd_err err = {0};
    ragd_status rc = ragd_backend_cuda.step(g_st, &b, slots, logits, &err);
    if (rc) {
        fprintf(stderr, "step failed: %s: %s\n", ragd_status_name(rc), ragd_err_msg(&err));
        exit(1);
    }
}

/* prompt alone in slot `slot`: prefill (in `chunks` pieces) then decode NGEN-1 tokens.
 * out ids [NGEN]; logits of every step [NGEN, V] */
static void gen_alone(const int32_t *p, int len, int chunks, int slot, int32_t *ids, float *lg) {
    ragd_backend_cuda.slot_reset(g_st, slot);
    int cut = chunks == 2 ? len / 2 : len;
    if (cut < 1) cut = len;
    int32_t st[2] = {0, cut};
    if (cut < len) {
        step(1, p, st, &slot, lg);
        st[1] = len - cut;
        step(1, p + cut, st, &slot, lg);
    } else {
        step(1, p, st, &slot, lg);
    }
    for (int k = 0; k < NGEN; k++) {
        ids[k] = argmax(lg + (size_t)k * g_V, g_V);
        if (k + 1 == NGEN) break;
        int32_t s1[2] = {0, 1};
        step(1, &ids[k], s1, &slot, lg + (size_t)(k + 1) * g_V);
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int bench(const char *dir) {
    ragd_model *m = st_model_load(dir);
    if (!m) return 2;
    g_V = m->cfg.n_vocab;
    enum { PL = 128, NEW = 128, BS = 32 };
    ragd_engine_opts o = {.device = RAGD_DEVICE_CUDA, .max_batch_tokens = 8192, .max_seqs = BS, .max_ctx = 512,
                          .kv_cache = true};
    ragd_engine_plan plan;
    ragd_err err = {0};
    double t0 = now();
    if (ragd_backend_cuda.create(m, &o, &g_st, &plan, &err)) {
        fprintf(stderr, "create: %s\n", ragd_err_msg(&err));
        return 1;
    }
    printf("create %.2f s; plan MiB: weights %.1f activations %.1f kv %.1f workspace %.1f total %.1f\n", now() - t0,
           plan.weights / 1048576.0, plan.activations / 1048576.0, plan.kv_cache / 1048576.0,
           plan.workspace / 1048576.0, plan.total / 1048576.0);
    float *lg = malloc(sizeof(float) * (size_t)BS * g_V);
    int32_t *tok = malloc(sizeof(int32_t) * BS * PL), start[BS + 1], slots[BS], next[BS];
    srand(7);
    for (int i = 0; i < BS * PL; i++) tok[i] = rand() % 151643;
    for (int bs = 1; bs <= BS; bs += BS - 1) {
        for (int rep = 0; rep < 2; rep++) {  // rep 0: warm-up
            for (int i = 0; i < bs; i++) ragd_backend_cuda.slot_reset(g_st, i), slots[i] = i;
            for (int i = 0; i <= bs; i++) start[i] = i * PL;
            double tp = now();
            step(bs, tok, start, slots, lg);
            tp = now() - tp;
            for (int i = 0; i <= bs; i++) start[i] = i;
            double td = now();
            for (int k = 0; k < NEW; k++) {
                for (int i = 0; i < bs; i++) next[i] = argmax(lg + (size_t)i * g_V, g_V);
                step(bs, next, start, slots, lg);
            }
            td = now() - td;
            if (rep)
                printf("ragd_decode bs %d: prompt %d (prefill %.1f ms), %d decode steps in %.3f s: %.1f tok/s "
                       "(%.2f ms/step, host argmax included)\n", bs, PL, tp * 1e3, NEW, td, bs * NEW / td,
                       td * 1e3 / NEW);
        }
    }
    ragd_backend_cuda.destroy(g_st);
    st_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--bench")) return bench(argv[2]);
    if (argc != 2) {
        fprintf(stderr, "usage: test_gen MODEL_DIR | test_gen --bench MODEL_DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    ragd_model *m = st_model_load(dir);
    if (!m) return 2;
    const int V = g_V = m->cfg.n_vocab;
    size_t sz;
    int32_t *pb = read_all(dir, "prompts.i32", &sz);
    const int n = pb[0];
    int32_t *plen = malloc(sizeof(int32_t) * n), **pr = malloc(sizeof(int32_t *) * n);
    for (int i = 0, q = 1; i < n; i++) plen[i] = pb[q], pr[i] = pb + q + 1, q += 1 + pb[q];
    int32_t *ref_ids = read_all(dir, "gen_bf16.i32", &sz);
    float *ref32 = read_all(dir, "logits_f32.f32", &sz);
    float *ref16 = read_all(dir, "logits_bf16.f32", &sz);
    if (sz != (size_t)n * NLOG * V * 4) {
        fprintf(stderr, "logits refs have %zu bytes, expected %zu\n", sz, (size_t)n * NLOG * V * 4);
        return 2;
    }
    ragd_engine_opts o = {.device = RAGD_DEVICE_CUDA, .max_batch_tokens = 1024, .max_seqs = 16, .max_ctx = 160,
                          .kv_cache = true};
    ragd_engine_plan plan;
    ragd_err err = {0};
    if (ragd_backend_cuda.create(m, &o, &g_st, &plan, &err)) {
        fprintf(stderr, "create: %s\n", ragd_err_msg(&err));
        return 1;
    }
    printf("plan MiB: weights %.2f activations %.2f kv %.2f total %.2f\n", plan.weights / 1048576.0,
           plan.activations / 1048576.0, plan.kv_cache / 1048576.0, plan.total / 1048576.0);
    float *lgA = malloc(sizeof(float) * (size_t)n * NGEN * V);  // alone: [n, NGEN, V]
    float *lgB = malloc(sizeof(float) * (size_t)NGEN * V);
    int32_t *idsA = malloc(sizeof(int32_t) * n * NGEN), idsB[NGEN];
    int full = 0, tot_prefix = 0, chunk_ids = 1, chunk_bits = 1;
    for (int i = 0; i < n; i++) {
        gen_alone(pr[i], plen[i], 1, i % 16, idsA + i * NGEN, lgA + (size_t)i * NGEN * V);
        int pre = 0;
        while (pre < NGEN && idsA[i * NGEN + pre] == ref_ids[i * NGEN + pre]) pre++;
        full += pre == NGEN, tot_prefix += pre;
        printf("  prompt %2d (len %2d): matching prefix %2d / %d\n", i, plen[i], pre, NGEN);
        gen_alone(pr[i], plen[i], 2, (i + 5) % 16, idsB, lgB);
        if (memcmp(idsB, idsA + i * NGEN, sizeof idsB)) chunk_ids = 0;
        if (memcmp(lgB, lgA + (size_t)i * NGEN * V, sizeof(float) * (size_t)NGEN * V)) chunk_bits = 0;
    }
    printf("greedy ids vs transformers bf16: %d / %d prompts identical over %d tokens; mean matching prefix %.1f\n",
           full, n, NGEN, (double)tot_prefix / n);
    check(chunk_ids, "prefill in two chunks: same generated ids");
    check(chunk_bits, "prefill in two chunks: bit-identical logits at every step");

    /* teacher-forced logits vs transformers */
    double worst32 = 0, worst16 = 0, sum32 = 0, hfgap = 0;
    int top_agree = 0;
    float *lg = malloc(sizeof(float) * (size_t)V);
    for (int i = 0; i < n; i++) {
        int slot = 3;
        ragd_backend_cuda.slot_reset(g_st, slot);
        int32_t st[2] = {0, plen[i]};
        for (int k = 0; k < NLOG; k++) {
            if (k == 0) step(1, pr[i], st, &slot, lg);
            else {
                int32_t s1[2] = {0, 1};
                step(1, &ref_ids[i * NGEN + k - 1], s1, &slot, lg);
            }
            const float *r32 = ref32 + ((size_t)i * NLOG + k) * V, *r16 = ref16 + ((size_t)i * NLOG + k) * V;
            double d32 = 0, d16 = 0, n32 = 0, h = 0;
            for (int v = 0; v < V; v++) {
                d32 += (lg[v] - r32[v]) * (double)(lg[v] - r32[v]);
                d16 += (lg[v] - r16[v]) * (double)(lg[v] - r16[v]);
                h += (r16[v] - r32[v]) * (double)(r16[v] - r32[v]);
                n32 += r32[v] * (double)r32[v];
            }
            double e32 = sqrt(d32 / n32), e16 = sqrt(d16 / n32);
            worst32 = fmax(worst32, e32), worst16 = fmax(worst16, e16), sum32 += e32;
            hfgap = fmax(hfgap, sqrt(h / n32));
            top_agree += argmax(lg, V) == argmax(r32, V);
        }
    }
    printf("logits (first %d steps, teacher-forced) vs transformers fp32: rel L2 error worst %.2e mean %.2e; vs bf16 "
           "worst %.2e; transformers bf16 vs fp32 worst %.2e; argmax agrees with fp32 %d / %d\n",
           NLOG, worst32, sum32 / (n * NLOG), worst16, hfgap, top_agree, n * NLOG);
    check(worst32 <= 1e-2, "logits vs transformers fp32: relative L2 error <= 1e-2");

    /* batch invariance: all prompts together, prompt i starting at iteration i (prefills mixed with decodes) */
    {
        int32_t tok[1024], start[17], slots[16], k_of[16], idx[16];
        float *lgC = malloc(sizeof(float) * 16 * (size_t)V);
        int same = 1, steps = 0, m_n = n < 16 ? n : 16, n_diff = 0, n_cmp = 0;
        /* reset exactly the slots this run uses ((i * 7) % 16), not 0..m_n-1: a slot left over from an
         * earlier check keeps its length, and its sequence would rightly continue from there */
        for (int i = 0; i < m_n; i++) ragd_backend_cuda.slot_reset(g_st, (i * 7) % 16), k_of[i] = -1;
        for (int it = 0;; it++) {
            int ns = 0, T = 0;
            start[0] = 0;
            for (int i = 0; i < m_n; i++) {
                if (it < i || k_of[i] >= NGEN - 1) continue;
                if (k_of[i] < 0) {
                    memcpy(tok + T, pr[i], sizeof(int32_t) * plen[i]);
                    T += plen[i];
                } else {
                    tok[T++] = idsA[i * NGEN + k_of[i]];
                }
                slots[ns] = (i * 7) % 16, idx[ns] = i, start[++ns] = T;
            }
            if (!ns) break;
            step(ns, tok, start, slots, lgC);
            steps++;
            for (int s = 0; s < ns; s++) {
                int i = idx[s];
                k_of[i]++;
                const float *a = lgC + (size_t)s * V, *r = lgA + ((size_t)i * NGEN + k_of[i]) * V;
                if (memcmp(a, r, sizeof(float) * V)) {
                    double md = 0;
                    for (int v = 0; v < V; v++) md = fmax(md, fabs((double)a[v] - r[v]));
                    if (same || n_diff < 8)  /* which rows differ: prefill or decode, batch size */
                        printf("  differs: prompt %d step %d (%s, %d new tokens) in a step of %d seqs / %d tokens: "
                               "max |diff| %.3g\n", i, k_of[i], k_of[i] ? "decode" : "prefill",
                               k_of[i] ? 1 : plen[i], ns, T, md);
                    same = 0, n_diff++;
                }
                n_cmp++;
            }
        }
        printf("batch invariance: %d prompts in %d mixed steps; %d of %d logit rows differ\n", m_n, steps, n_diff,
               n_cmp);
        check(same, "batch invariance: logits of every step bit-identical to the prompt stepped alone");
        int lens_ok = 1;
        for (int i = 0; i < m_n; i++)
            if (ragd_backend_cuda.slot_len(g_st, (i * 7) % 16) != plen[i] + NGEN - 1) lens_ok = 0;
        check(lens_ok, "slot_len = prompt + generated - 1 after the mixed run");
        free(lgC);
    }
    /* error paths */
    {
        int32_t t1 = 1, s1[2] = {0, 1}, bad = 16, two[2] = {2, 2}, st2[3] = {0, 1, 2}, tt[2] = {1, 1};
        ragd_batch b = {1, &t1, s1};
        ragd_err e = {0};
        check(ragd_backend_cuda.step(g_st, &b, &bad, lg, &e) == RAGD_ERANGE, "error path: slot >= max_seqs is ERANGE");
        ragd_err_free(&e);
        ragd_batch b2 = {2, tt, st2};
        check(ragd_backend_cuda.step(g_st, &b2, two, lg, &e) == RAGD_EINVAL, "error path: slot twice is EINVAL");
        ragd_err_free(&e);
        int full_slot = 9;
        ragd_backend_cuda.slot_reset(g_st, full_slot);
        int32_t *big = calloc(160, sizeof(int32_t)), sb[2] = {0, 160};
        ragd_batch b3 = {1, big, sb};
        check(ragd_backend_cuda.step(g_st, &b3, &full_slot, lg, &e) == RAGD_OK, "max_ctx tokens in one step");
        check(ragd_backend_cuda.step(g_st, &b, &full_slot, lg, &e) == RAGD_ERANGE, "error path: beyond max_ctx is ERANGE");
        printf("  (%s)\n", ragd_err_msg(&e));
        ragd_err_free(&e);
        free(big);
    }
    ragd_backend_cuda.destroy(g_st);
    st_model_free(m);
    printf("%s\n", g_fail ? "test_gen: FAIL" : "test_gen: all checks passed");
    return g_fail;
}
