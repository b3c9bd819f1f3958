/* mask_cache.c — token masks by matcher state (grammar.h, "mask cache").
 *
 * Entries: a key (grammar fingerprint, state hash, a copy of the state), the mask words, links of
 * one hash chain and of the LRU list. A lookup hashes the live state, walks its chain comparing
 * fingerprint, hash and then the live state byte for byte; a miss takes the least recently used entry
 * not used by the current batch and queues it. compute() runs the queue on the caller's thread and
 * n_threads - 1 workers (each with its own ragd_gmask_ws), taking jobs by an atomic counter: which
 * thread computes a mask never changes its bits.
 *
 * Threading: one owner thread calls everything; the workers only run ragd_gmask on queued entries
 * between compute()'s start and its return.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "grammar/grammar_internal.h"

typedef struct centry {
    uint64_t fp[2], hash;
    ragd_gmatch st;          /* the key state (live part significant) */
    const ragd_grammar *g;   /* pending entries: the grammar to compute with (valid until compute) */
    int32_t chain;           /* next entry of the hash bucket, -1 */
    int32_t prev, next;      /* LRU list: head = most recent */
    uint64_t batch;          /* the last batch that used it */
    bool valid;              /* holds a key (in a bucket) */
} centry;

struct ragd_gmask_cache {
    const ragd_vocab_trie *t;
    int n_entries, n_words, n_buckets;
    centry *e;
    uint32_t *masks;         /* [n_entries, n_words] */
    int32_t *bucket;         /* [n_buckets] first entry, -1 */
    int32_t head, tail;
    uint64_t batch;
    int32_t *queue;          /* [n_entries] entries to compute */
    int n_queue;
    ragd_gmask_cache_stats stats;
    /* workers */
    int n_threads, n_started; /* threads computing (the owner's included); workers th[1..n_started] */
    pthread_t *th;
    ragd_gmask_ws **ws;      /* [n_threads]; ws[0] is the owner's */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t round;          /* incremented per compute with work for the workers */
    int busy;                /* workers still in the current round */
    bool stop;
    atomic_int next_job;
};

uint64_t ragd_gmatch_hash(const ragd_gmatch *m) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ m->n_alt;
    for (int k = 0; k < m->n_alt; k++) {
        h = (h ^ m->depth[k]) * 0xBF58476D1CE4E5B9ull;
        const uint16_t *w = (const uint16_t *)m->f[k];
        size_t n = (size_t)m->depth[k] * (sizeof(ragd_gframe) / 2);
        for (size_t i = 0; i < n; i++) h = (h ^ w[i]) * 0x100000001B3ull;
    }
    return h ^ (h >> 31);
}

bool ragd_gmatch_equal(const ragd_gmatch *a, const ragd_gmatch *b) {
    if (a->n_alt != b->n_alt) return false;
    for (int k = 0; k < a->n_alt; k++)
        if (a->depth[k] != b->depth[k] || memcmp(a->f[k], b->f[k], (size_t)a->depth[k] * sizeof(ragd_gframe)))
            return false;
    return true;
}

/* ---- LRU list ------------------------------------------------------------------------------------ */

static void lru_unlink(ragd_gmask_cache *c, int i) {
    centry *x = &c->e[i];
    if (x->prev >= 0) c->e[x->prev].next = x->next;
    else c->head = x->next;
    if (x->next >= 0) c->e[x->next].prev = x->prev;
    else c->tail = x->prev;
    x->prev = x->next = -1;
}

static void lru_push_front(ragd_gmask_cache *c, int i) {
    centry *x = &c->e[i];
    x->prev = -1;
    x->next = c->head;
    if (c->head >= 0) c->e[c->head].prev = i;
    c->head = i;
    if (c->tail < 0) c->tail = i;
}

static void bucket_remove(ragd_gmask_cache *c, int i) {
    int32_t *p = &c->bucket[c->e[i].hash & (uint64_t)(c->n_buckets - 1)];
    while (*p >= 0 && *p != i) p = &c->e[*p].chain;
    if (*p == i) *p = c->e[i].chain;
    c->e[i].chain = -1;
    c->e[i].valid = false;
}

/* ---- workers ------------------------------------------------------------------------------------- */

static void run_jobs(ragd_gmask_cache *c, ragd_gmask_ws *ws) {
    for (;;) {
        int j = atomic_fetch_add(&c->next_job, 1);
        if (j >= c->n_queue) return;
        centry *x = &c->e[c->queue[j]];
        ragd_gmask(x->g, &x->st, c->t, ws, c->masks + (size_t)c->queue[j] * (size_t)c->n_words);
    }
}

typedef struct worker_arg {
    ragd_gmask_cache *c;
    int id;
} worker_arg;

static void *worker(void *p) {
    worker_arg a = *(worker_arg *)p;
    free(p);
    ragd_gmask_cache *c = a.c;
    uint64_t seen = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->stop && c->round == seen) pthread_cond_wait(&c->go, &c->mu);
        if (c->stop) break;
        seen = c->round;
        pthread_mutex_unlock(&c->mu);
        run_jobs(c, c->ws[a.id]);
        pthread_mutex_lock(&c->mu);
        if (--c->busy == 0) pthread_cond_signal(&c->done);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- public ---------------------------------------------------------------------------------------- */

ragd_gmask_cache *ragd_gmask_cache_create(const ragd_vocab_trie *t, int n_entries, int n_threads) {
    if (n_entries < 2 || n_threads < 1) return NULL;
    ragd_gmask_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->t = t;
    c->n_entries = n_entries;
    c->n_words = ragd_vocab_trie_mask_words(t);
    c->n_buckets = 1;
    while (c->n_buckets < 2 * n_entries) c->n_buckets <<= 1;
    c->e = calloc((size_t)n_entries, sizeof *c->e);
    c->masks = malloc((size_t)n_entries * (size_t)c->n_words * sizeof *c->masks);
    c->bucket = malloc((size_t)c->n_buckets * sizeof *c->bucket);
    c->queue = malloc((size_t)n_entries * sizeof *c->queue);
    c->ws = calloc((size_t)n_threads, sizeof *c->ws);
    c->th = calloc((size_t)n_threads, sizeof *c->th);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->go, NULL);
    pthread_cond_init(&c->done, NULL);
    if (!c->e || !c->masks || !c->bucket || !c->queue || !c->ws || !c->th) {
        ragd_gmask_cache_free(c);
        return NULL;
    }
    for (int i = 0; i < c->n_buckets; i++) c->bucket[i] = -1;
    c->head = c->tail = -1;
    for (int i = 0; i < n_entries; i++) {
        c->e[i].chain = -1;
        lru_push_front(c, i);
    }
    c->n_threads = n_threads; /* workspaces to free; workers started: n_started */
    for (int i = 0; i < n_threads; i++)
        if (!(c->ws[i] = ragd_gmask_ws_create(t))) {
            ragd_gmask_cache_free(c);
            return NULL;
        }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (a) {
            a->c = c;
            a->id = i;
        }
        if (!a || pthread_create(&c->th[i], NULL, worker, a)) {
            free(a);
            ragd_gmask_cache_free(c);
            return NULL;
        }
        c->n_started = i;
    }
    return c;
}

void ragd_gmask_cache_free(ragd_gmask_cache *c) {
    if (!c) return;
    if (c->th) {
        pthread_mutex_lock(&c->mu);
        c->stop = true;
        pthread_cond_broadcast(&c->go);
        pthread_mutex_unlock(&c->mu);
        for (int i = 1; i <= c->n_started; i++) pthread_join(c->th[i], NULL);
    }
    if (c->ws)
        for (int i = 0; i < c->n_threads; i++) ragd_gmask_ws_free(c->ws[i]);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->go);
    pthread_cond_destroy(&c->done);
    free(c->ws);
    free(c->th);
    free(c->e);
    free(c->masks);
    free(c->bucket);
    free(c->queue);
    free(c);
}

void ragd_gmask_cache_begin(ragd_gmask_cache *c) {
    c->batch++;
    c->n_queue = 0;
}

int ragd_gmask_cache_lookup(ragd_gmask_cache *c, const ragd_grammar *g, const ragd_gmatch *m) {
    c->stats.lookups++;
    const uint64_t h = ragd_gmatch_hash(m);
    for (int32_t i = c->bucket[h & (uint64_t)(c->n_buckets - 1)]; i >= 0; i = c->e[i].chain) {
        centry *x = &c->e[i];
        if (x->hash == h && x->fp[0] == g->fp[0] && x->fp[1] == g->fp[1] && ragd_gmatch_equal(&x->st, m)) {
            lru_unlink(c, i);
            lru_push_front(c, i);
            x->batch = c->batch;
            c->stats.hits++; /* (a state looked up twice in one batch is computed once) */
            return i;
        }
    }
    int i = c->tail;
    if (i < 0 || c->e[i].batch == c->batch) return -1; /* every entry serves this batch */
    centry *x = &c->e[i];
    if (x->valid) bucket_remove(c, i);
    x->fp[0] = g->fp[0];
    x->fp[1] = g->fp[1];
    x->hash = h;
    x->st.n_alt = m->n_alt;
    for (int k = 0; k < m->n_alt; k++) {
        x->st.depth[k] = m->depth[k];
        memcpy(x->st.f[k], m->f[k], (size_t)m->depth[k] * sizeof(ragd_gframe));
    }
    x->g = g;
    x->batch = c->batch;
    x->valid = true;
    int32_t *b = &c->bucket[h & (uint64_t)(c->n_buckets - 1)];
    x->chain = *b;
    *b = i;
    lru_unlink(c, i);
    lru_push_front(c, i);
    c->queue[c->n_queue++] = i;
    return i;
}

void ragd_gmask_cache_compute(ragd_gmask_cache *c) {
    if (!c->n_queue) return;
    double t0 = ragd_now_s();
    atomic_store(&c->next_job, 0);
    bool fan = c->n_threads > 1 && c->n_queue > 1;
    if (fan) {
        pthread_mutex_lock(&c->mu);
        c->busy = c->n_threads - 1;
        c->round++;
        pthread_cond_broadcast(&c->go);
        pthread_mutex_unlock(&c->mu);
    }
    run_jobs(c, c->ws[0]);
    if (fan) {
        pthread_mutex_lock(&c->mu);
        while (c->busy > 0) pthread_cond_wait(&c->done, &c->mu);
        pthread_mutex_unlock(&c->mu);
    }
    for (int j = 0; j < c->n_queue; j++) c->e[c->queue[j]].g = NULL;
    c->stats.computed += c->n_queue;
    c->n_queue = 0;
    c->stats.compute_s += ragd_now_s() - t0;
}

const uint32_t *ragd_gmask_cache_mask(const ragd_gmask_cache *c, int entry) {
    return c->masks + (size_t)entry * (size_t)c->n_words;
}

void ragd_gmask_cache_stats_get(const ragd_gmask_cache *c, ragd_gmask_cache_stats *st) { *st = c->stats; }
