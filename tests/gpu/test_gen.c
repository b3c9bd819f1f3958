/* test_gen.c — CUDA generation through the public engine API (engine.c's sequences and paged KV cache,
 * the CUDA backend) against transformers references written by make_gen.py, on a small random Qwen3
 * and a Llama (head_dim 64, GQA, tied) model:
 *   - greedy generation of NGEN tokens, each prompt alone: ids vs transformers bf16 greedy (how many
 *     prompts match fully, matching prefix lengths); the device sampler's greedy pick = the argmax of
 *     the logits on every step;
 *   - logits of the first NLOG steps, teacher-forced on transformers' tokens, vs transformers fp32
 *     (relative L2 error per vector; the worst must be ≤ 1e-2) and bf16 (reported);
 *   - the contract, bit for bit at every step: prefill in 2 and in 3 random chunks = one prefill; all
 *     prompts stepped together with staggered starts (prefills mixed with decode tokens) = alone; a
 *     prompt whose prefix comes from the prefix cache = computed; decode steps replayed from CUDA graphs
 *     at changing batch sizes = the same steps run eagerly (an engine created with RAGD_CUDA_GRAPHS=0);
 *   - error paths: beyond max_ctx, a full KV pool.
 * Usage: test_gen MODEL_DIR (refs in MODEL_DIR/refs)
 *        test_gen --stress MODEL_DIR ITERS   (graphs vs eager in lockstep over random prefills 1..4000
 *                                             and decode steps at random batch sizes)
 *        test_gen --bench MODEL_DIR          (decode tok/s at batch 1/16/64/256, TTFT, prefix hit, phases) */
#include <execinfo.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <time.h>

#include <cuda_profiler_api.h>

#include "engine/cuda/cuda_api.h"
#include "engine/engine.h"
#include "st_model.h"

enum { NGEN = 40, NLOG = 4 };
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

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int g_V;

static ragd_engine *mk(const ragd_model *m, int max_seqs, int max_ctx, int T, int kv_blocks, bool prefix, bool graphs) {
    setenv("RAGD_CUDA_GRAPHS", graphs ? "1" : "0", 1);
    ragd_engine_opts o = {.device = RAGD_DEVICE_CUDA, .max_batch_tokens = T, .max_seqs = max_seqs, .max_ctx = max_ctx,
                          .kv_cache = true, .kv_blocks = kv_blocks, .prefix_cache = prefix};
    ragd_engine *e = NULL;
    ragd_err err = {0};
    double t0 = now();
    if (ragd_engine_create(m, &o, &e, &err)) {
        fprintf(stderr, "create: %s\n", ragd_err_msg(&err));
        exit(1);
    }
    const ragd_engine_plan *p = ragd_engine_get_plan(e);
    printf("engine (%s graphs, prefix cache %s): created in %.2f s; plan MiB: weights %.1f activations %.1f kv %.1f "
           "(%d blocks of %d) total %.1f\n", graphs ? "with" : "without", prefix ? "on" : "off", now() - t0,
           p->weights / 1048576.0, p->activations / 1048576.0, p->kv_cache / 1048576.0, p->kv_blocks, p->kv_block_size,
           p->total / 1048576.0);
    unsetenv("RAGD_CUDA_GRAPHS");
    return e;
}

/* One step; dies on error. sp/out may be NULL; logits may be NULL. */
static void step(ragd_engine *e, int n, const int32_t *tok, const int32_t *start, const int32_t *seqs,
                 const ragd_sample_params *sp, ragd_sample_out *out, float *logits) {
    ragd_batch b = {n, tok, start, NULL};
    ragd_err err = {0};
    ragd_status rc = ragd_engine_step(e, &b, seqs, sp, out, logits, &err);
    if (rc) {
        fprintf(stderr, "step failed: %s: %s\n", ragd_status_name(rc), ragd_err_msg(&err));
        exit(1);
    }
}

static void open_seq(ragd_engine *e, int seq, const int32_t *tok, int n, int *n_cached) {
    ragd_err err = {0};
    int nc = 0;
    ragd_engine_seq_close(e, seq);
    if (ragd_engine_seq_open(e, seq, tok, n, &nc, &err)) {
        fprintf(stderr, "open: %s\n", ragd_err_msg(&err));
        exit(1);
    }
    if (n_cached) *n_cached = nc;
}

static const ragd_sample_params g_greedy = {.top_p = 1, .active = 1};
static int g_sampler_mismatch = 0;

/* prompt alone in sequence `seq`: prefill in the chunks cut[0..n_cut) (ascending cut points), then decode
 * NGEN-1 tokens. ids [NGEN]; logits of every step [NGEN, V]. Returns the cached prefix length. */
static int gen_alone(ragd_engine *e, const int32_t *p, int len, const int *cut, int n_cut, int seq, int32_t *ids,
                     float *lg) {
    int nc = 0;
    open_seq(e, seq, p, len, &nc);
    ragd_sample_out so;
    int a = nc;
    for (int c = 0; c <= n_cut; c++) {
        int b = c < n_cut ? cut[c] : len;
        if (b <= a) continue;
        int32_t st[2] = {0, b - a};
        bool last = b == len;
        step(e, 1, p + a, st, &seq, last ? &g_greedy : NULL, last ? &so : NULL, lg);
        a = b;
    }
    for (int k = 0; k < NGEN; k++) {
        ids[k] = argmax(lg + (size_t)k * g_V, g_V);
        if (so.token != ids[k]) g_sampler_mismatch++;
        if (k + 1 == NGEN) break;
        int32_t s1[2] = {0, 1};
        step(e, 1, &ids[k], s1, &seq, &g_greedy, &so, lg + (size_t)(k + 1) * g_V);
    }
    ragd_engine_seq_close(e, seq);
    return nc;
}

/* ---------------------------------------------------------------------------------------------- */

static int correctness(const char *dir) {
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
    ragd_engine *e = mk(m, 16, 160, 1024, 0, false, true);
    float *lgA = malloc(sizeof(float) * (size_t)n * NGEN * V);  // alone: [n, NGEN, V]
    float *lgB = malloc(sizeof(float) * (size_t)NGEN * V);
    int32_t *idsA = malloc(sizeof(int32_t) * n * NGEN), idsB[NGEN];
    int full = 0, tot_prefix = 0, chunk_ids = 1, chunk_bits = 1;
    srand(11);
    for (int i = 0; i < n; i++) {
        gen_alone(e, pr[i], plen[i], NULL, 0, i % 16, idsA + i * NGEN, lgA + (size_t)i * NGEN * V);
        int pre = 0;
        while (pre < NGEN && idsA[i * NGEN + pre] == ref_ids[i * NGEN + pre]) pre++;
        full += pre == NGEN, tot_prefix += pre;
        printf("  prompt %2d (len %2d): matching prefix %2d / %d\n", i, plen[i], pre, NGEN);
        int c2[1] = {plen[i] / 2}, c3[2] = {1 + rand() % plen[i], 1 + rand() % plen[i]};
        if (c3[0] > c3[1]) {
            int t = c3[0];
            c3[0] = c3[1], c3[1] = t;
        }
        for (int v = 0; v < 2; v++) {
            gen_alone(e, pr[i], plen[i], v ? c3 : c2, v ? 2 : 1, (i + 5) % 16, idsB, lgB);
            if (memcmp(idsB, idsA + i * NGEN, sizeof idsB)) chunk_ids = 0;
            if (memcmp(lgB, lgA + (size_t)i * NGEN * V, sizeof(float) * (size_t)NGEN * V)) chunk_bits = 0;
        }
    }
    printf("greedy ids vs transformers bf16: %d / %d prompts identical over %d tokens; mean matching prefix %.1f\n",
           full, n, NGEN, (double)tot_prefix / n);
    check(chunk_ids, "prefill in 2 and in 3 random chunks: same generated ids");
    check(chunk_bits, "prefill in 2 and in 3 random chunks: bit-identical logits at every step");
    check(g_sampler_mismatch == 0, "device greedy sampler = argmax of the logits at every step");

    /* teacher-forced logits vs transformers */
    double worst32 = 0, worst16 = 0, sum32 = 0, hfgap = 0;
    int top_agree = 0;
    float *lg = malloc(sizeof(float) * (size_t)16 * V);
    for (int i = 0; i < n; i++) {
        int seq = 3;
        open_seq(e, seq, pr[i], plen[i], NULL);
        int32_t st[2] = {0, plen[i]};
        for (int k = 0; k < NLOG; k++) {
            if (k == 0) step(e, 1, pr[i], st, &seq, NULL, NULL, lg);
            else {
                int32_t s1[2] = {0, 1};
                step(e, 1, &ref_ids[i * NGEN + k - 1], s1, &seq, NULL, NULL, lg);
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
        ragd_engine_seq_close(e, seq);
    }
    printf("logits (first %d steps, teacher-forced) vs transformers fp32: rel L2 error worst %.2e mean %.2e; vs bf16 "
           "worst %.2e; transformers bf16 vs fp32 worst %.2e; argmax agrees with fp32 %d / %d\n",
           NLOG, worst32, sum32 / (n * NLOG), worst16, hfgap, top_agree, n * NLOG);
    check(worst32 <= 1e-2, "logits vs transformers fp32: relative L2 error <= 1e-2");

    /* batch invariance: all prompts together, prompt i starting at iteration i (prefills mixed with decodes) */
    {
        int32_t tok[1024], start[17], seqs[16], k_of[16], idx[16];
        float *lgC = malloc(sizeof(float) * 16 * (size_t)V);
        int same = 1, steps = 0, m_n = n < 16 ? n : 16, n_diff = 0, n_cmp = 0;
        for (int i = 0; i < m_n; i++) open_seq(e, (i * 7) % 16, pr[i], plen[i], NULL), k_of[i] = -1;
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
                seqs[ns] = (i * 7) % 16, idx[ns] = i, start[++ns] = T;
            }
            if (!ns) break;
            step(e, ns, tok, start, seqs, NULL, NULL, lgC);
            steps++;
            for (int s = 0; s < ns; s++) {
                int i = idx[s];
                k_of[i]++;
                const float *a = lgC + (size_t)s * V, *r = lgA + ((size_t)i * NGEN + k_of[i]) * V;
                if (memcmp(a, r, sizeof(float) * V)) {
                    if (n_diff < 8)
                        printf("  differs: prompt %d step %d (%s) in a step of %d seqs / %d tokens\n", i, k_of[i],
                               k_of[i] ? "decode" : "prefill", ns, T);
                    same = 0, n_diff++;
                }
                n_cmp++;
            }
        }
        printf("batch invariance: %d prompts in %d mixed steps; %d of %d logit rows differ\n", m_n, steps, n_diff, n_cmp);
        check(same, "batch invariance: logits of every step bit-identical to the prompt stepped alone");
        int lens_ok = 1;
        for (int i = 0; i < m_n; i++)
            if (ragd_engine_seq_len(e, (i * 7) % 16) != plen[i] + NGEN - 1) lens_ok = 0;
        check(lens_ok, "seq_len = prompt + generated - 1 after the mixed run");
        for (int i = 0; i < 16; i++) ragd_engine_seq_close(e, i);
        free(lgC);
    }
    /* error paths */
    {
        int32_t t1 = 1, s1[2] = {0, 1};
        ragd_batch b = {1, &t1, s1, NULL};
        ragd_err er = {0};
        int full_seq = 9;
        int32_t *big = calloc(160, sizeof(int32_t)), sb[2] = {0, 160};
        open_seq(e, full_seq, big, 160, NULL);
        ragd_batch b3 = {1, big, sb, NULL};
        check(ragd_engine_step(e, &b3, &full_seq, NULL, NULL, lg, &er) == RAGD_OK, "max_ctx tokens in one step");
        check(ragd_engine_step(e, &b, &full_seq, NULL, NULL, lg, &er) == RAGD_ERANGE, "error path: beyond max_ctx is ERANGE");
        printf("  (%s)\n", ragd_err_msg(&er));
        ragd_err_free(&er);
        ragd_engine_seq_close(e, full_seq);
        free(big);
    }
    ragd_engine_free(e);

    /* prefix cache: the same prompts again after their first run registered their blocks; and a prompt
     * made of prompt i then prompt j, after prompt i ++ something else ran */
    {
        ragd_engine *ep = mk(m, 16, 160, 1024, 0, true, true);
        int hits = 0, same = 1, cmp = 0;
        for (int i = 0; i < n; i++) {
            int32_t cat[128];
            int len = plen[i] + plen[(i + 1) % n];
            memcpy(cat, pr[i], sizeof(int32_t) * plen[i]);
            memcpy(cat + plen[i], pr[(i + 1) % n], sizeof(int32_t) * plen[(i + 1) % n]);
            gen_alone(ep, cat, len, NULL, 0, 0, idsB, lgB);  // cold: computes everything, registers full blocks
            memcpy(lgA, lgB, sizeof(float) * (size_t)NGEN * V);
            int nc = gen_alone(ep, cat, len, NULL, 0, 1, idsB, lgB);  // warm
            hits += nc > 0;
            cmp++;
            if (memcmp(lgA, lgB, sizeof(float) * (size_t)NGEN * V)) same = 0;
        }
        printf("prefix cache: %d of %d warm runs started from cached blocks\n", hits, cmp);
        check(hits >= cmp / 2, "prefix cache: the warm runs hit the cache");
        check(same, "prefix cache: logits bit-identical with and without the cached prefix");
        ragd_engine_free(ep);
    }

    /* CUDA graphs vs eager: the same decode steps at changing batch sizes */
    {
        ragd_engine *eg = mk(m, 16, 160, 1024, 0, false, true), *ee = mk(m, 16, 160, 1024, 0, false, false);
        float *lg1 = malloc(sizeof(float) * 16 * (size_t)V), *lg2 = malloc(sizeof(float) * 16 * (size_t)V);
        int32_t last[16], start[17], seqs[16], tok[16];
        ragd_sample_params sp[16];
        ragd_sample_out o1[16], o2[16];
        int m_n = n < 16 ? n : 16, diff = 0, rows = 0, tok_diff = 0;
        for (int i = 0; i < m_n; i++) {
            int32_t st[2] = {0, plen[i]};
            open_seq(eg, i, pr[i], plen[i], NULL);
            open_seq(ee, i, pr[i], plen[i], NULL);
            step(eg, 1, pr[i], st, &i, &g_greedy, o1, lg1);
            step(ee, 1, pr[i], st, &i, &g_greedy, o2, lg2);
            last[i] = o1[0].token;
            tok_diff += o1[0].token != o2[0].token;
        }
        srand(5);
        for (int it = 0; it < 60; it++) {
            int ns = 0;
            start[0] = 0;
            for (int i = 0; i < m_n; i++)
                if (ragd_engine_seq_len(eg, i) < 150 && rand() % 3) seqs[ns] = i, tok[ns] = last[i], sp[ns] = g_greedy, ns++, start[ns] = ns;
            if (!ns) continue;
            step(eg, ns, tok, start, seqs, sp, o1, lg1);
            step(ee, ns, tok, start, seqs, sp, o2, lg2);
            rows += ns;
            diff += memcmp(lg1, lg2, sizeof(float) * (size_t)ns * V) != 0;
            for (int s = 0; s < ns; s++) tok_diff += o1[s].token != o2[s].token, last[seqs[s]] = o1[s].token;
        }
        printf("graphs vs eager: %d decode rows in 60 steps of random batch sizes: %d steps with differing logits, "
               "%d differing tokens\n", rows, diff, tok_diff);
        check(diff == 0 && tok_diff == 0, "graph replay = eager: bit-identical logits and tokens");
        free(lg1);
        free(lg2);
        ragd_engine_free(eg);
        ragd_engine_free(ee);
    }
    /* logit processing through the engine (masks + penalties + logit_bias, ragd_engine_step_proc):
     * graphs (eg) = eager (ee) bit for bit; the processed logits = the raw logits of an engine without
     * processing (er, fed the same tokens) processed on the host by ragd_logits_process; the device pick
     * = ragd_sample_row on them; every pick inside its mask */
    {
        ragd_engine *eg = mk(m, 16, 160, 1024, 0, false, true), *ee = mk(m, 16, 160, 1024, 0, false, false);
        ragd_engine *er = mk(m, 16, 160, 1024, 0, false, true);
        const int W = ragd_engine_mask_words(eg);
        float *l1 = malloc(sizeof(float) * 16 * (size_t)V), *l2 = malloc(sizeof(float) * 16 * (size_t)V);
        float *l3 = malloc(sizeof(float) * 16 * (size_t)V);
        uint32_t *masks = malloc(sizeof(uint32_t) * 16 * (size_t)W);
        ragd_logit_edit *edits = malloc(sizeof(ragd_logit_edit) * 16 * 64);
        ragd_sample_ws *cws = ragd_sample_ws_create(V);
        int32_t last[16], start[17], seqs[16], tok[16];
        ragd_sample_params sp[16], sr[16];
        ragd_sample_out o1[16], o2[16], o3[16];
        int m_n = n < 16 ? n : 16, bad_graph = 0, bad_proc = 0, bad_pick = 0, outside = 0, rows = 0;
        for (int i = 0; i < m_n; i++) {
            int32_t st[2] = {0, plen[i]};
            open_seq(eg, i, pr[i], plen[i], NULL);
            open_seq(ee, i, pr[i], plen[i], NULL);
            open_seq(er, i, pr[i], plen[i], NULL);
            step(eg, 1, pr[i], st, &i, &g_greedy, o1, l1);
            step(ee, 1, pr[i], st, &i, &g_greedy, o2, l2);
            step(er, 1, pr[i], st, &i, &g_greedy, o3, l3);
            last[i] = o1[0].token;
        }
        srand(11);
        for (int it = 0; it < 40; it++) {
            int ns = 0, nm = 0, ne = 0;
            start[0] = 0;
            for (int i = 0; i < m_n; i++) {
                if (ragd_engine_seq_len(eg, i) >= 150 || !(rand() % 3)) continue;
                ragd_sample_params p = {.temperature = (rand() % 4) ? 0.8f : 0.0f, .top_p = (rand() % 2) ? 1.0f : 0.9f,
                                        .seed = (uint64_t)i, .counter = (uint64_t)it, .n_top = 3, .want_logprob = 1,
                                        .active = 1, .repetition_penalty = 1.3f, .frequency_penalty = 0.5f,
                                        .presence_penalty = 0.25f};
                if (rand() % 3) { /* a mask: a narrow set, or everything but a few */
                    uint32_t *w = masks + (size_t)nm * W;
                    bool narrow = rand() % 2;
                    for (int k = 0; k < W; k++) w[k] = narrow ? 0 : 0xFFFFFFFFu;
                    for (int j = 0; j < (narrow ? 5 : 300); j++) {
                        int id = rand() % V;
                        if (narrow) w[id >> 5] |= 1u << (id & 31);
                        else w[id >> 5] &= ~(1u << (id & 31));
                    }
                    if (V & 31) w[W - 1] &= (1u << (V & 31)) - 1;
                    p.mask_row = ++nm;
                }
                p.edit_off = ne;
                for (int j = 0; j < 64; j++) { /* distinct ids */
                    ragd_logit_edit e = {.id = (int32_t)(((int64_t)j * 2654435761u + i * 7919) % V), .count = (uint32_t)(j % 4),
                                         .in_seq = (uint32_t)(j % 3 != 0), .bias = j % 9 == 0 ? 100.0f : (j % 9 == 1 ? -100.0f : 0.5f)};
                    bool dup = false;
                    for (int q = p.edit_off; q < ne && !dup; q++) dup = edits[q].id == e.id;
                    if (!dup) edits[ne++] = e;
                }
                p.n_edit = ne - p.edit_off;
                seqs[ns] = i, tok[ns] = last[i], sp[ns] = p, sr[ns] = g_greedy, ns++, start[ns] = ns;
            }
            if (!ns) continue;
            ragd_step_proc proc = {.masks = masks, .n_masks = nm, .edits = edits, .n_edits = ne};
            ragd_batch b = {ns, tok, start};
            ragd_err perr = {0};
            if (ragd_engine_step_proc(eg, &b, seqs, sp, &proc, o1, l1, &perr) ||
                ragd_engine_step_proc(ee, &b, seqs, sp, &proc, o2, l2, &perr)) {
                fprintf(stderr, "step_proc: %s\n", ragd_err_msg(&perr));
                exit(1);
            }
            step(er, ns, tok, start, seqs, sr, o3, l3);
            rows += ns;
            for (int r = 0; r < ns; r++) {
                float *raw = l3 + (size_t)r * V;
                ragd_logits_process(raw, V, &sp[r], &proc);
                bad_proc += memcmp(raw, l1 + (size_t)r * V, sizeof(float) * (size_t)V) != 0;
                bad_graph += memcmp(l1 + (size_t)r * V, l2 + (size_t)r * V, sizeof(float) * (size_t)V) != 0 ||
                             memcmp(&o1[r], &o2[r], sizeof o1[r]) != 0;
                ragd_sample_out c;
                ragd_sample_row(raw, V, &sp[r], cws, &c);
                bad_pick += memcmp(&c, &o1[r], sizeof c) != 0;
                if (sp[r].mask_row > 0) {
                    const uint32_t *w = masks + (size_t)(sp[r].mask_row - 1) * W;
                    outside += o1[r].token < 0 || !((w[o1[r].token >> 5] >> (o1[r].token & 31)) & 1u);
                }
                last[seqs[r]] = o1[r].token >= 0 ? o1[r].token : 0;
            }
        }
        printf("logit processing: %d rows in 40 steps: %d differ graphs vs eager, %d differ from the host processing, "
               "%d device picks differ from ragd_sample_row, %d picks outside their mask\n", rows, bad_graph, bad_proc,
               bad_pick, outside);
        check(rows > 0 && !bad_graph && !bad_proc && !bad_pick && !outside,
              "logit processing: device = host bit for bit (graphs and eager), picks inside the mask");
        ragd_sample_ws_free(cws);
        free(l1), free(l2), free(l3), free(masks), free(edits);
        ragd_engine_free(eg);
        ragd_engine_free(ee);
        ragd_engine_free(er);
    }
    st_model_free(m);
    printf("%s\n", g_fail ? "test_gen: FAIL" : "test_gen: all checks passed");
    return g_fail;
}

/* ---------------------------------------------------------------------------------------------- */
/* stress: two engines (graphs / eager) in lockstep over random work */

static int stress(const char *dir, int iters) {
    ragd_model *m = st_model_load(dir);
    if (!m) return 2;
    const int V = g_V = m->cfg.n_vocab;
    enum { MS = 48, CTX = 4400, TB = 2048 };
    ragd_engine *eg = mk(m, MS, CTX, TB, 0, true, true), *ee = mk(m, MS, CTX, TB, 0, true, false);
    int32_t *seq_tok = malloc(sizeof(int32_t) * MS * CTX), len[MS] = {0}, done[MS] = {0}, want[MS] = {0};
    bool live[MS] = {false};
    int32_t *tok = malloc(sizeof(int32_t) * TB), start[MS + 1], seqs[MS];
    ragd_sample_params sp[MS];
    ragd_sample_out o1[MS], o2[MS];
    float *lg1 = malloc(sizeof(float) * (size_t)MS * V), *lg2 = malloc(sizeof(float) * (size_t)MS * V);
    srand(2026);
    int tok_diff = 0, lg_diff = 0, graph_steps = 0, mixed_steps = 0, cmp_steps = 0;
    double t0 = now();
    for (int it = 0; it < iters; it++) {
        /* admit a new sequence now and then (random prompt 1..4000, a third share a 1,000-token prefix) */
        if (rand() % 6 == 0) {
            int s = -1;
            for (int i = 0; i < MS && s < 0; i++)
                if (!live[i]) s = i;
            if (s >= 0) {
                int n = 1 + rand() % 4000;
                bool shared = rand() % 3 == 0;
                for (int t = 0; t < n; t++) seq_tok[(size_t)s * CTX + t] = shared && t < 1000 ? (t * 7) % 1000 : rand() % 150000;
                int c1 = 0, c2 = 0;
                open_seq(eg, s, seq_tok + (size_t)s * CTX, n, &c1);
                open_seq(ee, s, seq_tok + (size_t)s * CTX, n, &c2);
                if (c1 != c2) tok_diff++;
                live[s] = true, len[s] = n, done[s] = c1, want[s] = n + 1 + rand() % 300;
            }
        }
        /* a step: a random subset of live sequences; prefill rows take chunks of the token budget */
        int ns = 0, T = 0;
        start[0] = 0;
        int keep = 1 + rand() % MS;
        for (int i = 0; i < MS && ns < keep; i++) {
            if (!live[i] || rand() % 4 == 0) continue;
            int left = len[i] - done[i];
            int chunk = left < TB - T ? left : TB - T;
            if (chunk <= 0) continue;
            if (left > 1 && rand() % 2) chunk = 1 + rand() % chunk;
            memcpy(tok + T, seq_tok + (size_t)i * CTX + done[i], sizeof(int32_t) * chunk);
            T += chunk;
            sp[ns] = g_greedy;
            sp[ns].active = done[i] + chunk == len[i];
            seqs[ns++] = i, start[ns] = T;
        }
        if (!ns) continue;
        bool decode_only = T == ns, cmp = it % 25 == 0;
        graph_steps += decode_only, mixed_steps += !decode_only;
        step(eg, ns, tok, start, seqs, sp, o1, cmp ? lg1 : NULL);
        step(ee, ns, tok, start, seqs, sp, o2, cmp ? lg2 : NULL);
        if (cmp) cmp_steps++, lg_diff += memcmp(lg1, lg2, sizeof(float) * (size_t)ns * V) != 0;
        for (int r = 0; r < ns; r++) {
            int i = seqs[r];
            done[i] += start[r + 1] - start[r];
            if (!sp[r].active) continue;
            tok_diff += o1[r].token != o2[r].token || o1[r].nonfinite || o2[r].nonfinite;
            if (len[i] + 1 >= want[i] || len[i] + 1 >= CTX) {
                ragd_engine_seq_close(eg, i);
                ragd_engine_seq_close(ee, i);
                live[i] = false;
            } else {
                seq_tok[(size_t)i * CTX + len[i]++] = o1[r].token;
            }
        }
    }
    printf("stress: %d iterations in %.1f s: %d decode-only steps (graphs), %d mixed/prefill steps (eager); %d steps "
           "with logits compared: %d differ; %d differing tokens\n", iters, now() - t0, graph_steps, mixed_steps,
           cmp_steps, lg_diff, tok_diff);
    check(lg_diff == 0 && tok_diff == 0, "stress: graph engine = eager engine, bit for bit");
    ragd_engine_free(eg);
    ragd_engine_free(ee);
    st_model_free(m);
    printf("%s\n", g_fail ? "test_gen: FAIL" : "test_gen: all checks passed");
    return g_fail;
}

/* ---------------------------------------------------------------------------------------------- */
/* benchmark (engine level, device greedy sampling, graphs on) */

static int bench(const char *dir) {
    ragd_model *m = st_model_load(dir);
    if (!m) return 2;
    g_V = m->cfg.n_vocab;
    enum { MS = 256, NEW = 256, CTX = 4096 };
    ragd_engine *e = mk(m, MS, CTX, 8192, 0, true, true);
    ragd_cuda_net *net_e = ragd_backend_cuda_net(ragd_engine_backend_state(e));
    printf("gemm algorithms:\n%s\n", ragd_cuda_net_gemm_info(net_e));
    const int32_t V = g_V;
    int32_t *tok = malloc(sizeof(int32_t) * 8192), start[MS + 1], seqs[MS], next[MS];
    int32_t *prompts = malloc(sizeof(int32_t) * MS * 300);
    int plen[MS];
    ragd_sample_params sp[MS];
    ragd_sample_out so[MS];
    srand(7);
    for (int i = 0; i < MS * 300; i++) prompts[i] = rand() % 151643;
    for (int i = 0; i < MS; i++) plen[i] = 30 + rand() % 271, sp[i] = g_greedy, seqs[i] = i;
    int bss[] = {1, 16, 64, 256};
    for (int bi = 0; bi < 4; bi++) {
        int bs = bss[bi];
        for (int rep = 0; rep < 2; rep++) {  // rep 0: warm-up
            for (int i = 0; i < bs; i++) open_seq(e, i, prompts + i * 300, plen[i], NULL);
            double tp = now();
            for (int i0 = 0; i0 < bs;) {  // prefill in batches of ≤ 8192 tokens
                int ns = 0, T = 0;
                start[0] = 0;
                while (i0 + ns < bs && T + plen[i0 + ns] <= 8192) {
                    memcpy(tok + T, prompts + (i0 + ns) * 300, sizeof(int32_t) * plen[i0 + ns]);
                    T += plen[i0 + ns];
                    start[++ns] = T;
                }
                step(e, ns, tok, start, seqs + i0, sp + i0, so + i0, NULL);
                i0 += ns;
            }
            tp = now() - tp;
            for (int i = 0; i <= bs; i++) start[i] = i;
            ragd_cuda_net_set_step_timing(net_e, 1);
            double td = now();
            for (int k = 0; k < NEW; k++) {
                for (int i = 0; i < bs; i++) next[i] = so[i].token;
                step(e, bs, next, start, seqs, sp, so, NULL);
            }
            td = now() - td;
            double g_ms, s_ms, c_ms;
            long n_st;
            ragd_cuda_net_step_timing_read(net_e, &g_ms, &s_ms, &c_ms, &n_st);
            if (rep)
                printf("ragd_decode bs %d: prompts 30-300 (prefill %.1f ms), %d decode steps in %.3f s: %.1f tok/s "
                       "(%.3f ms/step, device sampling, graphs; per step: device %.3f ms, host staging %.3f ms, "
                       "net call %.3f ms, engine layer %.3f ms)\n", bs, tp * 1e3, NEW, td, bs * NEW / td, td * 1e3 / NEW,
                       g_ms / n_st, s_ms / n_st, c_ms / n_st, td * 1e3 / NEW - c_ms / n_st);
            for (int i = 0; i < bs; i++) ragd_engine_seq_close(e, i);
        }
    }
    /* time to first token: a 2,600-token prompt, then the same after another request cached 2,000 */
    {
        int32_t *p = malloc(sizeof(int32_t) * 2600), *q = malloc(sizeof(int32_t) * 2600);
        for (int rep = 0; rep < 3; rep++) {
            for (int i = 0; i < 2600; i++) p[i] = rand() % 151643, q[i] = i < 2000 ? p[i] : rand() % 151643;
            int nc;
            int32_t st[2] = {0, 2600}, s0 = 0;
            double t = now();
            open_seq(e, 0, p, 2600, &nc);
            step(e, 1, p, st, &s0, sp, so, NULL);
            double ttft = now() - t;
            ragd_engine_seq_close(e, 0);
            t = now();
            open_seq(e, 0, q, 2600, &nc);
            int32_t st2[2] = {0, 2600 - nc};
            step(e, 1, q + nc, st2, &s0, sp, so, NULL);
            double ttft2 = now() - t;
            ragd_engine_seq_close(e, 0);
            printf("ragd_ttft: 2600-token prompt %.2f ms; with its first %d tokens from the prefix cache %.2f ms\n",
                   ttft * 1e3, nc, ttft2 * 1e3);
        }
        free(p);
        free(q);
    }
    ragd_engine_free(e);
    /* where one decode step's time goes: per-phase events (eager; graphs off while profiling) */
    {
        ragd_engine *ep = mk(m, 256, 1024, 8192, 0, false, false);
        ragd_cuda_net *net = ragd_backend_cuda_net(ragd_engine_backend_state(ep));
        for (int bs = 1; bs <= 256; bs *= bs == 1 ? 64 : 4) {
            for (int i = 0; i < bs; i++) open_seq(ep, i, prompts + i * 300, 100, NULL);
            for (int i0 = 0; i0 < bs; i0 += 64) {  /* prefill 64 sequences (6,400 tokens) per step */
                const int ns = bs - i0 < 64 ? bs - i0 : 64;
                int T = 0;
                start[0] = 0;
                for (int i = 0; i < ns; i++)
                    memcpy(tok + T, prompts + (i0 + i) * 300, 100 * 4), T += 100, start[i + 1] = T;
                step(ep, ns, tok, start, seqs + i0, sp + i0, so + i0, NULL);
            }
            for (int i = 0; i <= bs; i++) start[i] = i;
            double ms[RAGD_CUDA_N_PHASES] = {0}, tot = 0;
            const char *names[RAGD_CUDA_N_PHASES];
            ragd_cuda_net_set_profile(net, 1);
            for (int k = 0; k < 20; k++) {
                for (int i = 0; i < bs; i++) next[i] = so[i].token;
                step(ep, bs, next, start, seqs, sp, so, NULL);
            }
            ragd_cuda_net_profile_read(net, ms, names);
            ragd_cuda_net_set_profile(net, 0);
            for (int i = 0; i < RAGD_CUDA_N_PHASES; i++) tot += ms[i];
            printf("ragd_phases bs %d (eager, per step):", bs);
            for (int i = 0; i < RAGD_CUDA_N_PHASES; i++) printf(" %s %.3f", names[i], ms[i] / 20);
            printf(" | total %.3f ms\n", tot / 20);
            for (int i = 0; i < bs; i++) ragd_engine_seq_close(ep, i);
        }
        ragd_engine_free(ep);
    }
    st_model_free(m);
    return 0;
}

/* --kprofile MODEL BS: one eager decode step at batch BS (prompts of 200 tokens, 3 warm steps) between
 * cudaProfilerStart/Stop, for `ncu --profile-from-start off` (per-kernel GPU times of a step). */
static int kprofile(const char *dir, int bs) {
    ragd_model *m = st_model_load(dir);
    if (!m) return 2;
    g_V = m->cfg.n_vocab;
    ragd_engine *e = mk(m, bs, 1024, 8192, 0, false, false);
    printf("gemm algorithms:\n%s\n", ragd_cuda_net_gemm_info(ragd_backend_cuda_net(ragd_engine_backend_state(e))));
    int32_t *tok = malloc(sizeof(int32_t) * 8192), *start = malloc(sizeof(int32_t) * (bs + 1)),
            *seqs = malloc(sizeof(int32_t) * bs), *next = malloc(sizeof(int32_t) * bs);
    ragd_sample_params *sp = malloc(sizeof *sp * bs);
    ragd_sample_out *so = malloc(sizeof *so * bs);
    srand(11);
    for (int i = 0; i < bs; i++) {
        int32_t p[200];
        for (int k = 0; k < 200; k++) p[k] = rand() % 151643;
        open_seq(e, i, p, 200, NULL);
        sp[i] = g_greedy, seqs[i] = i;
        memcpy(tok, p, sizeof p);
        int32_t st2[2] = {0, 200};
        step(e, 1, tok, st2, seqs + i, sp + i, so + i, NULL);
    }
    for (int i = 0; i <= bs; i++) start[i] = i;
    for (int k = 0; k < 4; k++) {
        if (k == 3) cudaProfilerStart();
        for (int i = 0; i < bs; i++) next[i] = so[i].token;
        step(e, bs, next, start, seqs, sp, so, NULL);
        if (k == 3) cudaProfilerStop();
    }
    printf("kprofile: batch %d, one decode step profiled\n", bs);
    ragd_engine_free(e);
    st_model_free(m);
    return 0;
}

static void on_segv(int sig) {
    void *bt[64];
    int n = backtrace(bt, 64);
    fprintf(stderr, "signal %d; backtrace:\n", sig);
    backtrace_symbols_fd(bt, n, 2);
    _exit(139);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGSEGV, on_segv);
    if (argc == 3 && !strcmp(argv[1], "--bench")) return bench(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "--kprofile")) return kprofile(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "--stress")) return stress(argv[2], atoi(argv[3]));
    if (argc != 2) {
        fprintf(stderr, "usage: test_gen MODEL_DIR | test_gen --stress MODEL_DIR ITERS | test_gen --bench MODEL_DIR\n");
        return 2;
    }
    return correctness(argv[1]);
}
