/* kv.h — INTERNAL to src/engine (and its unit tests): the paged KV cache's bookkeeping — the block
 * pool, each sequence's block table and the prefix cache. Host-side only: a backend owns the memory of
 * the blocks (K and V of every layer for block_size positions) and reads block tables; this module
 * decides which block holds which positions. engine.c is its only caller in ragd.
 *
 * Blocks (ids [0, n_blocks)): FREE (no references, no content), IN USE (held by ≥ 1 sequence) or
 * CACHED (no references, registered content, evictable least-recently-released first).
 *
 *     FREE --alloc--> IN USE --last release, registered--> CACHED --hit--> IN USE
 *       ^                |                                    |
 *       +--last release, not registered--+   <--evict (alloc)-+
 *
 * Prefix cache: when a sequence's block fills (all block_size positions committed) and the prefix cache
 * is on, the block is registered under the chained hash of its tokens (hash of the previous block,
 * then the tokens) — provided it is the sequence's first block or its previous block is registered, and
 * no entry for the same chain exists yet. A registered block is immutable (only positions at or past a
 * sequence's length are ever written, and registered blocks are full) and may be held by several
 * sequences. Lookups compare the tokens and the exact parent block (id and generation, bumped whenever
 * a block's content is dropped), never the hash alone: a hash collision can only cost a miss.
 *
 * Sequences (slots [0, max_seqs)): open (takes the longest cached prefix in whole blocks, never the
 * whole token list: at least one token is left to compute) → (reserve blocks → step → commit tokens)* →
 * close (releases the blocks, tail first, so the tail of a chain is evicted before its head).
 *
 * Threading: one owner (the engine's); not reentrant.
 */
#ifndef RAGD_ENGINE_KV_H
#define RAGD_ENGINE_KV_H

#include "common/common.h"

typedef struct ragd_kv ragd_kv;

typedef struct ragd_kv_opts {
    int n_blocks;      /* pool size, ≥ 1 */
    int block_size;    /* positions per block: a power of two in [1, 256] */
    int max_seqs;      /* sequence slots */
    int max_ctx;       /* longest sequence in positions */
    bool prefix_cache; /* register full blocks and reuse them */
    int hash_bits;     /* tests only: 0 = full 64-bit hashes; 1..63 = hashes masked to that many bits */
} ragd_kv_opts;

typedef struct ragd_kv_stats {
    int n_blocks, block_size;
    int used;                 /* blocks held by sequences */
    int cached;               /* evictable blocks with content */
    int free;                 /* blocks without content */
    int64_t lookups;          /* open() calls */
    int64_t lookup_tokens;    /* tokens that could have come from the cache (whole blocks, ≤ n − 1) */
    int64_t hit_tokens;       /* tokens that did */
    int64_t evictions;
} ragd_kv_stats;

/* NULL on invalid options (checked by the caller) or out of memory. */
ragd_kv *ragd_kv_create(const ragd_kv_opts *o);
void ragd_kv_free(ragd_kv *kv);
const ragd_kv_opts *ragd_kv_get_opts(const ragd_kv *kv);

/* Opens closed slot `seq` for a sequence whose tokens begin with tokens[0..n) (n ≥ 1). With the prefix
 * cache, takes references on the longest cached chain of whole blocks covering at most n − 1 tokens;
 * *n_cached = the positions it covers (the sequence's length after open). */
void ragd_kv_open(ragd_kv *kv, int seq, const int32_t *tokens, int n, int *n_cached);
/* Blocks that reserve(seq, n_total) would have to allocate. */
int ragd_kv_blocks_needed(const ragd_kv *kv, int seq, int n_total);
/* Blocks an allocation can take now (free + evictable). */
int ragd_kv_available(const ragd_kv *kv);
/* Makes the sequence's blocks cover positions [0, n_total) (n_total ≤ max_ctx), allocating free blocks
 * first, then evicting cached ones. RAGD_EBUSY when the pool cannot: nothing changes. */
ragd_status ragd_kv_reserve(ragd_kv *kv, int seq, int n_total, ragd_err *err);
/* After a step computed positions [len, len + n) from tokens[0..n): the length grows by n (within the
 * reserved blocks) and blocks that became full are registered (prefix cache on). */
void ragd_kv_commit(ragd_kv *kv, int seq, const int32_t *tokens, int n);
/* Releases the sequence's blocks; the slot is closed. No-op on a closed slot. */
void ragd_kv_close(ragd_kv *kv, int seq);

bool ragd_kv_is_open(const ragd_kv *kv, int seq);
int ragd_kv_len(const ragd_kv *kv, int seq);         /* committed positions */
int ragd_kv_capacity(const ragd_kv *kv, int seq);    /* reserved positions (blocks × block_size) */
/* The sequence's block ids, [ragd_kv_capacity / block_size]; valid until the next reserve or close. */
const int32_t *ragd_kv_blocks(const ragd_kv *kv, int seq);
void ragd_kv_get_stats(const ragd_kv *kv, ragd_kv_stats *st);
/* Tests: the reference count of a block. */
int ragd_kv_block_refs(const ragd_kv *kv, int block);

#endif
