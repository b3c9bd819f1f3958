/* test_kv.c — the paged KV cache's bookkeeping (engine/kv.h) without a model: block allocation and
 * reference counts, reservation that fails without changing anything, prefix-cache hits in whole
 * blocks (never the whole token list), chains (a block is only reused after the same previous blocks),
 * LRU eviction of released blocks tail-first, generations (a reused block's old children never match),
 * forced hash collisions (exact token comparison keeps results right), duplicate registration, and a
 * randomized run checked against a brute-force model of the cache. */
#include <stdio.h>
#include <stdlib.h>

#include "engine/kv.h"
#include "test.h"

static ragd_kv *mk(int n_blocks, int bs, int max_seqs, int max_ctx, bool prefix, int hash_bits) {
    ragd_kv_opts o = {.n_blocks = n_blocks, .block_size = bs, .max_seqs = max_seqs, .max_ctx = max_ctx,
                      .prefix_cache = prefix, .hash_bits = hash_bits};
    ragd_kv *kv = ragd_kv_create(&o);
    CHECK(kv != NULL);
    return kv;
}

static void check_counts(const ragd_kv *kv) {
    ragd_kv_stats st;
    ragd_kv_get_stats(kv, &st);
    CHECK_EQ_INT(st.used + st.cached + st.free, st.n_blocks);
    CHECK_EQ_INT(ragd_kv_available(kv), st.free + st.cached);
}

/* open + reserve + commit of a whole token list, as a generation would (one step) */
static int run_seq(ragd_kv *kv, int seq, const int32_t *tok, int n) {
    int nc = -1;
    ragd_kv_open(kv, seq, tok, n, &nc);
    ragd_err err = {0};
    CHECK(ragd_kv_reserve(kv, seq, n, &err) == RAGD_OK);
    ragd_err_free(&err);
    ragd_kv_commit(kv, seq, tok + nc, n - nc);
    CHECK_EQ_INT(ragd_kv_len(kv, seq), n);
    return nc;
}

static void test_basics(void) {
    CHECK(ragd_kv_create(&(ragd_kv_opts){.n_blocks = 4, .block_size = 12, .max_seqs = 1, .max_ctx = 8}) == NULL);
    CHECK(ragd_kv_create(&(ragd_kv_opts){.n_blocks = 0, .block_size = 4, .max_seqs = 1, .max_ctx = 8}) == NULL);
    ragd_kv *kv = mk(4, 4, 2, 16, false, 0);
    int32_t t[16];
    for (int i = 0; i < 16; i++) t[i] = 100 + i;
    int nc = -1;
    ragd_kv_open(kv, 0, t, 6, &nc);
    CHECK_EQ_INT(nc, 0);
    CHECK_EQ_INT(ragd_kv_blocks_needed(kv, 0, 6), 2);
    CHECK_EQ_INT(ragd_kv_blocks_needed(kv, 0, 0), 0);
    ragd_err err = {0};
    CHECK(ragd_kv_reserve(kv, 0, 6, &err) == RAGD_OK);
    CHECK_EQ_INT(ragd_kv_capacity(kv, 0), 8);
    CHECK_EQ_INT(ragd_kv_available(kv), 2);
    const int32_t *b = ragd_kv_blocks(kv, 0);
    CHECK(b[0] != b[1]);
    CHECK_EQ_INT(ragd_kv_block_refs(kv, b[0]), 1);
    /* a second sequence wants 3 blocks: only 2 left → EBUSY, nothing taken */
    ragd_kv_open(kv, 1, t, 12, &nc);
    CHECK_EQ_INT(ragd_kv_reserve(kv, 1, 12, &err), RAGD_EBUSY);
    CHECK(strstr(ragd_err_msg(&err), "KV cache full") != NULL);
    CHECK_EQ_INT(ragd_kv_capacity(kv, 1), 0);
    CHECK_EQ_INT(ragd_kv_available(kv), 2);
    CHECK_EQ_INT(ragd_kv_reserve(kv, 1, 17, &err), RAGD_ERANGE); /* beyond max_ctx */
    CHECK(ragd_kv_reserve(kv, 1, 8, &err) == RAGD_OK);
    CHECK_EQ_INT(ragd_kv_available(kv), 0);
    ragd_kv_commit(kv, 0, t, 6);
    CHECK_EQ_INT(ragd_kv_len(kv, 0), 6);
    check_counts(kv);
    ragd_kv_close(kv, 0);
    ragd_kv_close(kv, 0); /* no-op */
    CHECK(!ragd_kv_is_open(kv, 0));
    CHECK_EQ_INT(ragd_kv_available(kv), 2); /* no prefix cache: straight back to free */
    ragd_kv_stats st;
    ragd_kv_get_stats(kv, &st);
    CHECK_EQ_INT(st.cached, 0);
    ragd_kv_close(kv, 1);
    check_counts(kv);
    ragd_err_free(&err);
    ragd_kv_free(kv);
}

static void test_prefix(int hash_bits) {
    ragd_kv *kv = mk(16, 4, 3, 32, true, hash_bits);
    int32_t a[12], c[12];
    for (int i = 0; i < 12; i++) a[i] = c[i] = 7 + i;
    c[2] = 999; /* c differs from a in block 0 only */
    CHECK_EQ_INT(run_seq(kv, 0, a, 10), 0); /* blocks 0, 1 full and registered; block 2 partial */
    /* while seq 0 still runs, the same prompt hits its two full blocks (shared, refcount 2) */
    int nc = -1;
    ragd_kv_open(kv, 1, a, 10, &nc);
    CHECK_EQ_INT(nc, 8);
    CHECK_EQ_INT(ragd_kv_len(kv, 1), 8);
    const int32_t *b0 = ragd_kv_blocks(kv, 0), *b1 = ragd_kv_blocks(kv, 1);
    CHECK_EQ_INT(b1[0], b0[0]);
    CHECK_EQ_INT(b1[1], b0[1]);
    CHECK_EQ_INT(ragd_kv_block_refs(kv, b0[0]), 2);
    ragd_kv_close(kv, 1);
    CHECK_EQ_INT(ragd_kv_block_refs(kv, b0[0]), 1);
    /* never the whole list: a prompt of exactly 8 tokens reuses one block and computes the rest */
    ragd_kv_open(kv, 1, a, 8, &nc);
    CHECK_EQ_INT(nc, 4);
    ragd_kv_close(kv, 1);
    /* same tokens in block 1 but a different block 0: no hit at all (chains, not single blocks) */
    ragd_kv_open(kv, 1, c, 10, &nc);
    CHECK_EQ_INT(nc, 0);
    ragd_kv_close(kv, 1);
    /* after seq 0 ends its full blocks stay cached and are hit later */
    int32_t blk0 = b0[0], blk1 = b0[1];
    ragd_kv_close(kv, 0);
    ragd_kv_stats st;
    ragd_kv_get_stats(kv, &st);
    CHECK_EQ_INT(st.cached, 2);
    CHECK_EQ_INT(st.used, 0);
    CHECK_EQ_INT(run_seq(kv, 2, a, 12), 8);
    CHECK_EQ_INT(ragd_kv_blocks(kv, 2)[0], blk0);
    CHECK_EQ_INT(ragd_kv_blocks(kv, 2)[1], blk1);
    ragd_kv_close(kv, 2);
    ragd_kv_get_stats(kv, &st);
    CHECK_EQ_INT(st.cached, 3); /* block 2 of a (tokens 8..11) is full now too */
    CHECK(st.hit_tokens >= 16);
    check_counts(kv);
    ragd_kv_free(kv);
}

/* LRU: a sequence's blocks are released tail first, so the tail is evicted first; the least recently
 * released sequence goes before a more recent one; evicted blocks' children never match again */
static void test_eviction(void) {
    ragd_kv *kv = mk(6, 2, 2, 12, true, 0);
    int32_t x[7] = {1, 2, 3, 4, 5, 6, 0}, y[7] = {9, 8, 7, 6, 5, 4, 0};
    run_seq(kv, 0, x, 6); /* 3 full blocks */
    ragd_kv_close(kv, 0);
    run_seq(kv, 0, y, 6);
    ragd_kv_close(kv, 0);
    ragd_kv_stats st;
    ragd_kv_get_stats(kv, &st);
    CHECK_EQ_INT(st.cached, 6);
    CHECK_EQ_INT(st.free, 0);
    /* one new block evicts x's tail (the block of {5, 6}): x released first, tail first */
    int32_t z[2] = {42, 43};
    int nc;
    ragd_kv_open(kv, 1, z, 2, &nc);
    ragd_err err = {0};
    CHECK(ragd_kv_reserve(kv, 1, 2, &err) == RAGD_OK);
    ragd_kv_get_stats(kv, &st);
    CHECK_EQ_INT(st.evictions, 1);
    ragd_kv_open(kv, 0, x, 7, &nc);
    CHECK_EQ_INT(nc, 4); /* x's first two blocks are still there, its third is gone */
    ragd_kv_close(kv, 0);
    ragd_kv_open(kv, 0, y, 7, &nc);
    CHECK_EQ_INT(nc, 6); /* all of y */
    ragd_kv_close(kv, 0);
    /* LRU now (oldest first): x1 x0 (released tail first after the x lookup) y2 y1 y0; z's block was
     * never committed, so it went back to the free list: two new blocks take it, then x1 */
    ragd_kv_close(kv, 1);
    int32_t w[4] = {500, 501, 502, 503};
    ragd_kv_open(kv, 1, w, 4, &nc);
    CHECK(ragd_kv_reserve(kv, 1, 4, &err) == RAGD_OK);
    ragd_kv_open(kv, 0, x, 7, &nc);
    CHECK_EQ_INT(nc, 2);
    ragd_kv_close(kv, 0);
    ragd_kv_open(kv, 0, y, 7, &nc);
    CHECK_EQ_INT(nc, 6);
    ragd_kv_close(kv, 0);
    /* take everything: all cached blocks go, then nothing hits */
    ragd_kv_close(kv, 1);
    int32_t v[12];
    for (int i = 0; i < 12; i++) v[i] = 700 + i;
    ragd_kv_open(kv, 1, v, 12, &nc);
    CHECK(ragd_kv_reserve(kv, 1, 12, &err) == RAGD_OK);
    ragd_kv_open(kv, 0, x, 7, &nc);
    CHECK_EQ_INT(nc, 0);
    ragd_kv_close(kv, 0);
    ragd_kv_close(kv, 1);
    check_counts(kv);
    ragd_err_free(&err);
    ragd_kv_free(kv);
}

/* a block whose identical twin is registered already stays private, and so do its successors */
static void test_duplicates(void) {
    ragd_kv *kv = mk(12, 2, 2, 12, true, 0);
    int32_t x[6] = {1, 2, 3, 4, 5, 6};
    int nc;
    ragd_kv_open(kv, 0, x, 6, &nc);
    ragd_kv_open(kv, 1, x, 6, &nc); /* both open before either computed anything: no hits */
    CHECK_EQ_INT(nc, 0);
    ragd_err err = {0};
    CHECK(ragd_kv_reserve(kv, 0, 6, &err) == RAGD_OK);
    CHECK(ragd_kv_reserve(kv, 1, 6, &err) == RAGD_OK);
    ragd_kv_commit(kv, 0, x, 6);
    ragd_kv_commit(kv, 1, x, 6);
    ragd_kv_close(kv, 1); /* its blocks were never registered: free, not cached */
    ragd_kv_stats st;
    ragd_kv_get_stats(kv, &st);
    CHECK_EQ_INT(st.cached, 0);
    CHECK_EQ_INT(st.used, 3);
    ragd_kv_close(kv, 0);
    ragd_kv_get_stats(kv, &st);
    CHECK_EQ_INT(st.cached, 3);
    ragd_err_free(&err);
    ragd_kv_free(kv);
}

/* randomized: many sequences over a small pool with a 3-bit hash (constant collisions); every hit must
 * be a real prefix whose blocks hold exactly those tokens (checked against a shadow of block contents) */
static void test_random(void) {
    enum { NB = 40, BS = 4, MS = 4, CTX = 32 };
    ragd_kv *kv = mk(NB, BS, MS, CTX, true, 3);
    int32_t content[NB][BS]; /* what each block holds, written when its sequence commits */
    int32_t seqtok[MS][CTX];
    int seqlen[MS] = {0};
    bool open[MS] = {false};
    memset(content, -1, sizeof content);
    uint64_t r = 12345;
#define RND(n) ((int)((r = r * 6364136223846793005ull + 1442695040888963407ull) >> 33) % (n))
    int64_t hits = 0;
    for (int it = 0; it < 4000; it++) {
        int s = RND(MS);
        if (!open[s]) {
            int n = 1 + RND(CTX - 4);
            bool common = RND(2); /* half of the sequences start with the same 16 tokens */
            for (int i = 0; i < n; i++) seqtok[s][i] = common && i < 16 ? i % 3 : RND(3);
            int nc;
            ragd_kv_open(kv, s, seqtok[s], n, &nc);
            CHECK(nc % BS == 0 && nc <= n - 1);
            const int32_t *b = ragd_kv_blocks(kv, s);
            for (int i = 0; i < nc; i++) CHECK_EQ_INT(content[b[i / BS]][i % BS], seqtok[s][i]);
            hits += nc;
            open[s] = true;
            seqlen[s] = n;
            ragd_err err = {0};
            if (ragd_kv_reserve(kv, s, n, &err) != RAGD_OK) {
                CHECK_EQ_INT(err.code, RAGD_EBUSY);
                ragd_kv_close(kv, s);
                open[s] = false;
            } else {
                int len = ragd_kv_len(kv, s);
                b = ragd_kv_blocks(kv, s);
                for (int i = len; i < n; i++) content[b[i / BS]][i % BS] = seqtok[s][i];
                ragd_kv_commit(kv, s, seqtok[s] + len, n - len);
            }
            ragd_err_free(&err);
        } else if (RND(3) == 0) {
            ragd_kv_close(kv, s);
            open[s] = false;
        } else if (seqlen[s] < CTX) { /* decode one more token */
            ragd_err err = {0};
            int n = seqlen[s];
            seqtok[s][n] = RND(3);
            if (ragd_kv_reserve(kv, s, n + 1, &err) == RAGD_OK) {
                content[ragd_kv_blocks(kv, s)[n / BS]][n % BS] = seqtok[s][n];
                ragd_kv_commit(kv, s, seqtok[s] + n, 1);
                seqlen[s]++;
            } else {
                CHECK_EQ_INT(err.code, RAGD_EBUSY);
                ragd_kv_close(kv, s); /* preempted */
                open[s] = false;
            }
            ragd_err_free(&err);
        }
        if (it % 97 == 0) check_counts(kv);
    }
    printf("random: %lld tokens reused from the prefix cache over 4000 operations (3-bit hashes)\n", (long long)hits);
    CHECK(hits > 3000);
    ragd_kv_free(kv);
#undef RND
}

int main(void) {
    test_basics();
    test_prefix(0);
    test_prefix(1); /* every block in one of two buckets with equal hashes: exact comparison decides */
    test_eviction();
    test_duplicates();
    test_random();
    TEST_DONE();
}
