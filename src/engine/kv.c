/* kv.c — the paged KV cache's bookkeeping (kv.h): block pool with reference counts, per-sequence block
 * tables and the prefix cache (chained block hashes, exact token and parent comparison, LRU eviction of
 * unreferenced blocks).
 *
 * Data layout: per-block arrays indexed by block id; the hash table is an array of bucket heads with a
 * per-block "next in bucket" link; CACHED blocks form a doubly-linked LRU list (evict at the head,
 * release at the tail); FREE blocks are a stack. Every operation is O(blocks touched); nothing
 * allocates after create.
 */
#include "engine/kv.h"

#include <stdlib.h>

enum { B_FREE = 0, B_USED, B_CACHED };

typedef struct kv_seq {
    bool open;
    int len;          /* committed positions */
    int n_blocks;     /* blocks held: positions [0, n_blocks * block_size) */
    int n_reg;        /* leading blocks registered in the cache (hits included) */
    uint64_t chain;   /* chain hash of the last full block (0 before the first) */
    int32_t *blocks;  /* [max_blocks] */
    int32_t *partial; /* [block_size] tokens of the block being filled */
} kv_seq;

struct ragd_kv {
    ragd_kv_opts o;
    int bs_shift, max_blocks; /* log2(block_size); blocks per sequence at max_ctx */
    uint64_t hash_mask;
    /* per block */
    int32_t *refs;
    uint8_t *state, *reg;
    uint32_t *gen;        /* bumped when a block's content is dropped */
    uint64_t *hash;       /* chain hash (registered blocks) */
    int32_t *parent;      /* previous block of the chain, -1 for a first block */
    uint32_t *parent_gen; /* its generation when registered */
    int32_t *tokens;      /* [n_blocks * block_size] tokens of registered blocks */
    int32_t *bnext;       /* next block in the same hash bucket */
    int32_t *lru_prev, *lru_next;
    int32_t lru_head, lru_tail;
    int32_t *free_stack;
    int n_free, n_cached, n_used;
    /* hash table */
    int32_t *bucket;
    uint32_t n_buckets; /* power of two */
    kv_seq *seqs;
    int64_t lookups, lookup_tokens, hit_tokens, evictions;
};

/* ---- hashing */

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* chain hash of a block: the previous block's chain hash (0 for the first) and the block's tokens */
static uint64_t block_hash(const ragd_kv *kv, uint64_t prev, const int32_t *tok) {
    uint64_t h = mix64(prev + 0x9e3779b97f4a7c15ull);
    for (int i = 0; i < kv->o.block_size; i++) h = mix64(h ^ ((uint64_t)(uint32_t)tok[i] + 0x632be59bd9b4e019ull * (uint64_t)(i + 1)));
    return h & kv->hash_mask;
}

static uint32_t bucket_of(const ragd_kv *kv, uint64_t h) { return (uint32_t)(mix64(h) & (kv->n_buckets - 1)); }

/* the registered block of this chain step, or -1 */
static int32_t find(const ragd_kv *kv, uint64_t h, int32_t parent, const int32_t *tok) {
    size_t bs = (size_t)kv->o.block_size;
    for (int32_t b = kv->bucket[bucket_of(kv, h)]; b >= 0; b = kv->bnext[b]) {
        if (kv->hash[b] != h || kv->parent[b] != parent) continue;
        if (parent >= 0 && kv->parent_gen[b] != kv->gen[parent]) continue; /* parent's content changed since */
        if (memcmp(kv->tokens + (size_t)b * bs, tok, bs * sizeof(int32_t))) continue;
        return b;
    }
    return -1;
}

static void unregister(ragd_kv *kv, int32_t b) {
    RAGD_ASSERT(kv->reg[b]);
    int32_t *p = &kv->bucket[bucket_of(kv, kv->hash[b])];
    while (*p != b) {
        RAGD_ASSERT(*p >= 0);
        p = &kv->bnext[*p];
    }
    *p = kv->bnext[b];
    kv->bnext[b] = -1;
    kv->reg[b] = 0;
}

/* ---- LRU of CACHED blocks */

static void lru_remove(ragd_kv *kv, int32_t b) {
    int32_t p = kv->lru_prev[b], n = kv->lru_next[b];
    if (p >= 0) kv->lru_next[p] = n;
    else kv->lru_head = n;
    if (n >= 0) kv->lru_prev[n] = p;
    else kv->lru_tail = p;
    kv->lru_prev[b] = kv->lru_next[b] = -1;
}

static void lru_push_tail(ragd_kv *kv, int32_t b) {
    kv->lru_prev[b] = kv->lru_tail;
    kv->lru_next[b] = -1;
    if (kv->lru_tail >= 0) kv->lru_next[kv->lru_tail] = b;
    else kv->lru_head = b;
    kv->lru_tail = b;
}

/* ---- lifecycle */

void ragd_kv_free(ragd_kv *kv) {
    if (!kv) return;
    if (kv->seqs)
        for (int i = 0; i < kv->o.max_seqs; i++) {
            free(kv->seqs[i].blocks);
            free(kv->seqs[i].partial);
        }
    free(kv->seqs);
    free(kv->refs);
    free(kv->state);
    free(kv->reg);
    free(kv->gen);
    free(kv->hash);
    free(kv->parent);
    free(kv->parent_gen);
    free(kv->tokens);
    free(kv->bnext);
    free(kv->lru_prev);
    free(kv->lru_next);
    free(kv->free_stack);
    free(kv->bucket);
    free(kv);
}

ragd_kv *ragd_kv_create(const ragd_kv_opts *o) {
    int bs = o->block_size;
    if (o->n_blocks < 1 || bs < 1 || bs > 256 || (bs & (bs - 1)) || o->max_seqs < 1 || o->max_ctx < 1 ||
        o->hash_bits < 0 || o->hash_bits > 63)
        return NULL;
    ragd_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return NULL;
    kv->o = *o;
    while ((1 << kv->bs_shift) < bs) kv->bs_shift++;
    kv->max_blocks = (o->max_ctx + bs - 1) / bs;
    kv->hash_mask = o->hash_bits ? ((1ull << o->hash_bits) - 1) : ~0ull;
    size_t nb = (size_t)o->n_blocks;
    kv->n_buckets = 1;
    while (kv->n_buckets < 2 * nb && kv->n_buckets < (1u << 30)) kv->n_buckets <<= 1;
    kv->refs = calloc(nb, sizeof *kv->refs);
    kv->state = calloc(nb, 1);
    kv->reg = calloc(nb, 1);
    kv->gen = calloc(nb, sizeof *kv->gen);
    kv->hash = calloc(nb, sizeof *kv->hash);
    kv->parent = malloc(nb * sizeof *kv->parent);
    kv->parent_gen = calloc(nb, sizeof *kv->parent_gen);
    kv->tokens = malloc(nb * (size_t)bs * sizeof *kv->tokens);
    kv->bnext = malloc(nb * sizeof *kv->bnext);
    kv->lru_prev = malloc(nb * sizeof *kv->lru_prev);
    kv->lru_next = malloc(nb * sizeof *kv->lru_next);
    kv->free_stack = malloc(nb * sizeof *kv->free_stack);
    kv->bucket = malloc(kv->n_buckets * sizeof *kv->bucket);
    kv->seqs = calloc((size_t)o->max_seqs, sizeof *kv->seqs);
    if (!kv->refs || !kv->state || !kv->reg || !kv->gen || !kv->hash || !kv->parent || !kv->parent_gen ||
        !kv->tokens || !kv->bnext || !kv->lru_prev || !kv->lru_next || !kv->free_stack || !kv->bucket || !kv->seqs) {
        ragd_kv_free(kv);
        return NULL;
    }
    for (int i = 0; i < o->max_seqs; i++) {
        kv->seqs[i].blocks = malloc((size_t)kv->max_blocks * sizeof(int32_t));
        kv->seqs[i].partial = malloc((size_t)bs * sizeof(int32_t));
        if (!kv->seqs[i].blocks || !kv->seqs[i].partial) {
            ragd_kv_free(kv);
            return NULL;
        }
    }
    for (uint32_t i = 0; i < kv->n_buckets; i++) kv->bucket[i] = -1;
    for (size_t b = 0; b < nb; b++) {
        kv->parent[b] = -1;
        kv->bnext[b] = kv->lru_prev[b] = kv->lru_next[b] = -1;
        kv->free_stack[b] = (int32_t)(nb - 1 - b); /* block 0 is popped first */
    }
    kv->n_free = (int)nb;
    kv->lru_head = kv->lru_tail = -1;
    return kv;
}

const ragd_kv_opts *ragd_kv_get_opts(const ragd_kv *kv) { return &kv->o; }

/* ---- blocks */

/* A block for a sequence: free first, else the least recently released cached one (its content
 * dropped). The caller checked availability. */
static int32_t alloc_block(ragd_kv *kv) {
    int32_t b;
    if (kv->n_free > 0) {
        b = kv->free_stack[--kv->n_free];
    } else {
        b = kv->lru_head;
        RAGD_ASSERT(b >= 0);
        lru_remove(kv, b);
        unregister(kv, b);
        kv->n_cached--;
        kv->evictions++;
    }
    RAGD_ASSERT(kv->refs[b] == 0 && !kv->reg[b]);
    kv->gen[b]++; /* whatever was written there before is gone: children of it can no longer match */
    kv->state[b] = B_USED;
    kv->refs[b] = 1;
    kv->n_used++;
    return b;
}

static void hold(ragd_kv *kv, int32_t b) {
    if (kv->refs[b]++ == 0) {
        RAGD_ASSERT(kv->state[b] == B_CACHED);
        lru_remove(kv, b);
        kv->n_cached--;
        kv->state[b] = B_USED;
        kv->n_used++;
    }
}

static void release(ragd_kv *kv, int32_t b) {
    RAGD_ASSERT(kv->refs[b] > 0);
    if (--kv->refs[b]) return;
    kv->n_used--;
    if (kv->reg[b]) {
        kv->state[b] = B_CACHED;
        lru_push_tail(kv, b);
        kv->n_cached++;
    } else {
        kv->state[b] = B_FREE;
        kv->free_stack[kv->n_free++] = b;
    }
}

/* ---- sequences */

static kv_seq *seq_at(const ragd_kv *kv, int seq) {
    RAGD_ASSERT(seq >= 0 && seq < kv->o.max_seqs);
    return &kv->seqs[seq];
}

void ragd_kv_open(ragd_kv *kv, int seq, const int32_t *tokens, int n, int *n_cached) {
    kv_seq *q = seq_at(kv, seq);
    RAGD_ASSERT(!q->open && n >= 1);
    q->open = true;
    q->len = q->n_blocks = q->n_reg = 0;
    q->chain = 0;
    *n_cached = 0;
    kv->lookups++;
    if (!kv->o.prefix_cache) return;
    int bs = kv->o.block_size, max_hit = (n - 1) / bs;
    if (max_hit > kv->max_blocks) max_hit = kv->max_blocks;
    kv->lookup_tokens += (int64_t)max_hit * bs;
    int32_t parent = -1;
    for (int i = 0; i < max_hit; i++) {
        const int32_t *tok = tokens + (size_t)i * bs;
        uint64_t h = block_hash(kv, q->chain, tok);
        int32_t b = find(kv, h, parent, tok);
        if (b < 0) break;
        hold(kv, b);
        q->blocks[q->n_blocks++] = b;
        q->n_reg++;
        q->chain = h;
        parent = b;
    }
    q->len = q->n_blocks * bs;
    kv->hit_tokens += q->len;
    *n_cached = q->len;
}

int ragd_kv_blocks_needed(const ragd_kv *kv, int seq, int n_total) {
    const kv_seq *q = seq_at(kv, seq);
    int need = (n_total + kv->o.block_size - 1) >> kv->bs_shift;
    return need > q->n_blocks ? need - q->n_blocks : 0;
}

int ragd_kv_available(const ragd_kv *kv) { return kv->n_free + kv->n_cached; }

ragd_status ragd_kv_reserve(ragd_kv *kv, int seq, int n_total, ragd_err *err) {
    kv_seq *q = seq_at(kv, seq);
    RAGD_ASSERT(q->open);
    if (n_total > kv->o.max_ctx)
        return ragd_err_set(err, RAGD_ERANGE, "sequence %d: %d positions exceed max_ctx %d", seq, n_total, kv->o.max_ctx);
    int need = ragd_kv_blocks_needed(kv, seq, n_total);
    if (need > ragd_kv_available(kv))
        return ragd_err_set(err, RAGD_EBUSY, "KV cache full: sequence %d needs %d more blocks, %d can be taken (%d in use)",
                            seq, need, ragd_kv_available(kv), kv->n_used);
    for (int i = 0; i < need; i++) q->blocks[q->n_blocks++] = alloc_block(kv);
    return RAGD_OK;
}

void ragd_kv_commit(ragd_kv *kv, int seq, const int32_t *tokens, int n) {
    kv_seq *q = seq_at(kv, seq);
    int bs = kv->o.block_size;
    RAGD_ASSERT(q->open && n >= 0 && q->len + n <= q->n_blocks * bs);
    for (int i = 0; i < n; i++) {
        q->partial[q->len & (bs - 1)] = tokens[i];
        q->len++;
        if (q->len & (bs - 1)) continue;
        int bi = (q->len >> kv->bs_shift) - 1; /* block bi is full now */
        uint64_t h = block_hash(kv, q->chain, q->partial);
        q->chain = h;
        if (!kv->o.prefix_cache || q->n_reg != bi) continue; /* its chain is not registered: unreachable */
        int32_t b = q->blocks[bi], parent = bi ? q->blocks[bi - 1] : -1;
        if (find(kv, h, parent, q->partial) >= 0) continue; /* an identical block is registered already */
        RAGD_ASSERT(!kv->reg[b] && kv->refs[b] == 1);
        kv->reg[b] = 1;
        kv->hash[b] = h;
        kv->parent[b] = parent;
        kv->parent_gen[b] = parent >= 0 ? kv->gen[parent] : 0;
        memcpy(kv->tokens + (size_t)b * bs, q->partial, (size_t)bs * sizeof(int32_t));
        uint32_t k = bucket_of(kv, h);
        kv->bnext[b] = kv->bucket[k];
        kv->bucket[k] = b;
        q->n_reg++;
    }
}

void ragd_kv_close(ragd_kv *kv, int seq) {
    kv_seq *q = seq_at(kv, seq);
    if (!q->open) return;
    for (int i = q->n_blocks - 1; i >= 0; i--) release(kv, q->blocks[i]); /* tail first: evicted first */
    q->open = false;
    q->len = q->n_blocks = q->n_reg = 0;
}

bool ragd_kv_is_open(const ragd_kv *kv, int seq) { return seq_at(kv, seq)->open; }
int ragd_kv_len(const ragd_kv *kv, int seq) { return seq_at(kv, seq)->len; }
int ragd_kv_capacity(const ragd_kv *kv, int seq) { return seq_at(kv, seq)->n_blocks * kv->o.block_size; }
const int32_t *ragd_kv_blocks(const ragd_kv *kv, int seq) { return seq_at(kv, seq)->blocks; }

void ragd_kv_get_stats(const ragd_kv *kv, ragd_kv_stats *st) {
    *st = (ragd_kv_stats){.n_blocks = kv->o.n_blocks, .block_size = kv->o.block_size, .used = kv->n_used,
                          .cached = kv->n_cached, .free = kv->n_free, .lookups = kv->lookups,
                          .lookup_tokens = kv->lookup_tokens, .hit_tokens = kv->hit_tokens, .evictions = kv->evictions};
}

int ragd_kv_block_refs(const ragd_kv *kv, int block) {
    RAGD_ASSERT(block >= 0 && block < kv->o.n_blocks);
    return kv->refs[block];
}
