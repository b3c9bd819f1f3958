/* test_pen_list.c — the incremental logit edit lists of the scheduler (sched/pen_list.h) against the
 * from-scratch rebuild they replaced: entry for entry (ids, order, counts, in_seq, bias bits) after
 * every token of long random histories, for each combination of repetition / frequency-presence
 * penalties and logit_bias, over a 151,669-token vocabulary (and a 7-token one: every id repeats).
 *
 *   test_pen_list --bench [seqs] [tokens]   the per-step cost, rebuild vs incremental (64 × 16k default)
 */
#include <time.h>

#include "test.h"

#include "sched/pen_list.h"

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
/* a skewed id (text-like: a few ids frequent, a long tail) */
static int32_t rnd_id(int V) {
    double u = (double)(rnd() & 0xFFFFFF) / 16777216.0;
    int32_t id = (int32_t)((double)V * u * u * u);
    return id < V ? id : V - 1;
}

static bool same(const ragd_logit_edit *a, int na, const ragd_logit_edit *b, int nb) {
    if (na != nb) return false;
    for (int i = 0; i < na; i++)
        if (a[i].id != b[i].id || a[i].count != b[i].count || a[i].in_seq != b[i].in_seq ||
            memcmp(&a[i].bias, &b[i].bias, sizeof a[i].bias))
            return false;
    return true;
}

static void test_matches_rebuild(int V, int n_prompt, int n_gen, int n_bias, bool rep, bool fp) {
    int n = n_prompt + n_gen;
    int32_t *tok = malloc((size_t)n * sizeof *tok);
    for (int i = 0; i < n; i++) tok[i] = rnd_id(V);
    ragd_logit_edit bias[300];
    int nb = 0;
    while (nb < n_bias && nb < V) { /* distinct ids, some also in the history */
        int32_t id = (rnd() & 1) ? tok[rnd() % (uint32_t)n] : (int32_t)(rnd() % (uint32_t)V);
        bool dup = false;
        for (int j = 0; j < nb; j++) dup |= bias[j].id == id;
        if (!dup) bias[nb++] = (ragd_logit_edit){.id = id, .bias = (float)((int)(rnd() % 400) - 200) * 0.37f};
    }
    uint32_t *stamp = calloc((size_t)V, sizeof *stamp), cur = 0xFFFFFFF0u; /* wraps during the test */
    int32_t *idx = malloc((size_t)V * sizeof *idx);
    ragd_logit_edit *ref = malloc((size_t)(nb + n) * sizeof *ref);
    ragd_pen_list l = {0};
    ragd_err err = {0};
    CHECK_EQ_INT(ragd_pen_list_start(&l, bias, nb, rep, fp, tok, n_prompt, &err), RAGD_OK);
    int bad = 0, checks = 0;
    for (int g = 0; g <= n_gen && !bad; g++) {
        if (g > 0) CHECK_EQ_INT(ragd_pen_list_push(&l, tok[n_prompt + g - 1], &err), RAGD_OK);
        /* every token for the first 300, then every 97th and the last */
        if (g > 300 && g % 97 && g != n_gen) continue;
        int k = ragd_pen_list_rebuild(bias, nb, rep, fp, tok, n_prompt + g, n_prompt, stamp, idx, &cur, V, ref);
        checks++;
        if (!same(l.e, l.n, ref, k)) {
            fprintf(stderr, "V %d prompt %d gen %d bias %d rep %d fp %d: lists differ after %d tokens (%d vs %d entries)\n",
                    V, n_prompt, n_gen, nb, rep, fp, g, l.n, k);
            bad++;
        }
    }
    CHECK(!bad);
    CHECK(checks > 1);
    /* the lists are not trivially equal: counts > 1 exist when the history repeats ids */
    if (fp && n_gen > 100) {
        uint32_t mx = 0;
        for (int i = 0; i < l.n; i++) mx = l.e[i].count > mx ? l.e[i].count : mx;
        CHECK(mx > 1);
    }
    ragd_pen_list_free(&l);
    free(tok);
    free(stamp);
    free(idx);
    free(ref);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One step of n_seq sequences of ~len tokens with a repetition penalty: the old rebuild of every row vs
 * the new push of the sampled token + copy of the list into the step's buffer. */
static void bench(int n_seq, int len) {
    const int V = 151669, steps = 20;
    int cap = len + steps;
    int32_t *tok = malloc((size_t)n_seq * cap * sizeof *tok);
    for (size_t i = 0; i < (size_t)n_seq * cap; i++) tok[i] = rnd_id(V);
    uint32_t *stamp = calloc((size_t)V, sizeof *stamp), cur = 0;
    int32_t *idx = malloc((size_t)V * sizeof *idx);
    ragd_logit_edit *buf = malloc((size_t)n_seq * (cap + 300) * sizeof *buf);
    ragd_pen_list *l = calloc((size_t)n_seq, sizeof *l);
    ragd_err err = {0};
    for (int q = 0; q < n_seq; q++) ragd_pen_list_start(&l[q], NULL, 0, true, true, tok + (size_t)q * cap, len - 1, &err);
    double t_old = 0, t_new = 0;
    long entries = 0;
    for (int st = 0; st < steps; st++) {
        int n_tok = len + st;
        double t0 = now_s();
        size_t k = 0;
        for (int q = 0; q < n_seq; q++)
            k += (size_t)ragd_pen_list_rebuild(NULL, 0, true, true, tok + (size_t)q * cap, n_tok, len - 1, stamp, idx, &cur, V,
                                               buf + k);
        double t1 = now_s();
        size_t k2 = 0;
        for (int q = 0; q < n_seq; q++) {
            ragd_pen_list_push(&l[q], tok[(size_t)q * cap + n_tok - 1], &err);
            memcpy(buf + k2, l[q].e, (size_t)l[q].n * sizeof *buf);
            k2 += (size_t)l[q].n;
        }
        double t2 = now_s();
        CHECK_EQ_INT(k, k2);
        t_old += t1 - t0;
        t_new += t2 - t1;
        entries += (long)k;
    }
    printf("penalty edit lists, %d sequences × %d tokens (repetition + frequency penalties, %ld distinct ids per row): "
           "rebuild %.3f ms/step, incremental %.3f ms/step (%.1fx)\n",
           n_seq, len, entries / steps / n_seq, 1e3 * t_old / steps, 1e3 * t_new / steps, t_old / t_new);
    for (int q = 0; q < n_seq; q++) ragd_pen_list_free(&l[q]);
    free(l);
    free(tok);
    free(stamp);
    free(idx);
    free(buf);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--bench")) {
        int seqs = argc > 2 ? atoi(argv[2]) : 64, len = argc > 3 ? atoi(argv[3]) : 16384;
        for (int l = 1024; l <= len; l *= 4) bench(seqs, l);
        TEST_DONE();
    }
    for (int rep = 0; rep <= 1; rep++)
        for (int fp = 0; fp <= 1; fp++)
            for (int nb = 0; nb <= 300; nb += 150) {
                test_matches_rebuild(151669, 3000, 5000, nb, rep, fp);
                test_matches_rebuild(7, 40, 2000, nb ? 3 : 0, rep, fp);
                test_matches_rebuild(151669, 1, 1, nb, rep, fp);
            }
    test_matches_rebuild(50000, 16000, 2000, 20, true, true);
    /* memory is kept and reused: a second start gives a fresh list */
    ragd_pen_list l = {0};
    ragd_err err = {0};
    int32_t a[3] = {5, 5, 9};
    CHECK_EQ_INT(ragd_pen_list_start(&l, NULL, 0, true, true, a, 3, &err), RAGD_OK);
    CHECK_EQ_INT(l.n, 2);
    CHECK_EQ_INT(ragd_pen_list_start(&l, NULL, 0, false, true, a, 3, &err), RAGD_OK);
    CHECK_EQ_INT(l.n, 0);
    CHECK_EQ_INT(ragd_pen_list_push(&l, 9, &err), RAGD_OK);
    CHECK(l.n == 1 && l.e[0].id == 9 && l.e[0].count == 1 && l.e[0].in_seq == 1);
    ragd_pen_list_free(&l);
    ragd_pen_list_free(NULL);
    TEST_DONE();
}
