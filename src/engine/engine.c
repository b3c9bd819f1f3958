/* engine.c — the public ragd_engine_* API: picks a backend from ragd_engine_opts.device and dispatches to
 * its table (backend.h). CUDA is referenced only under RAGD_HAVE_CUDA; asking for a device this build or
 * machine lacks is an error (never a silent CPU fallback).
 *
 * This layer owns what both backends share: the one batch validator (limits, token ids, sequences), the
 * sequence table and paged-KV bookkeeping of generation engines (kv.c: blocks, prefix cache), and the
 * per-step block tables handed to the backend (ragd_kv_view). Backends see block ids, and slots only to find
 * the per-sequence recurrent state of hybrid models (Qwen3.5), which the backend clears whenever a slot is
 * opened or closed (ops->seq_reset); the prefix cache is off for those models (no_prefix_cache_for).
 */
#include <math.h>
#include <stdlib.h>

#include "engine/backend.h"
#include "engine/kv.h"

struct ragd_engine {
    const ragd_backend_ops *ops;
    void *state;
    const ragd_model *model;
    ragd_engine_opts opts;
    ragd_engine_plan plan;
    ragd_kv *kv;          /* generation engines only */
    int max_blocks;       /* blocks of one sequence at max_ctx */
    int32_t *pos0;        /* [max_seqs] step staging */
    int32_t *blk_start;   /* [max_seqs + 1] */
    int32_t *blocks;      /* [max_seqs * max_blocks] */
    uint32_t *edit_seen;  /* [n_vocab] step stamp of the last row naming an id (edit validation) */
    uint32_t edit_stamp;
};

const char *ragd_device_name(ragd_device d) {
    switch (d) {
    case RAGD_DEVICE_CPU: return "cpu";
    case RAGD_DEVICE_CUDA: return "cuda";
    }
    return "unknown";
}

static ragd_status backend_of(ragd_device d, const ragd_backend_ops **ops, ragd_err *err) {
    switch (d) {
    case RAGD_DEVICE_CPU:
        *ops = &ragd_backend_cpu;
        return RAGD_OK;
    case RAGD_DEVICE_CUDA:
#ifdef RAGD_HAVE_CUDA
        *ops = &ragd_backend_cuda;
        return RAGD_OK;
#else
        return ragd_err_set(err, RAGD_EUNSUPPORTED,
                            "device cuda: this ragd was built without the CUDA backend (rebuild with nvcc, "
                            "RAGD_CUDA=ON)");
#endif
    }
    return ragd_err_set(err, RAGD_EINVAL, "unknown device %d", (int)d);
}

ragd_status ragd_engine_opts_resolve(ragd_engine_opts *o, ragd_err *err) {
    if (!o->kv_cache) {
        o->kv_blocks = 0;
        if (!o->kv_block_size) o->kv_block_size = RAGD_KV_BLOCK_DEFAULT;
        return RAGD_OK;
    }
    if (!o->kv_block_size) o->kv_block_size = RAGD_KV_BLOCK_DEFAULT;
    int bs = o->kv_block_size;
    if (bs < 1 || bs > 256 || (bs & (bs - 1)))
        return ragd_err_set(err, RAGD_EINVAL, "KV block size %d: must be a power of two in [1, 256]", bs);
    if (o->max_seqs < 1 || o->max_ctx < 1)
        return ragd_err_set(err, RAGD_ERANGE, "engine limits must be ≥ 1: max_seqs %d, max_ctx %d", o->max_seqs, o->max_ctx);
    int64_t per_seq = (o->max_ctx + bs - 1) / bs;
    if (o->kv_blocks == 0) {
        int64_t nb = per_seq * o->max_seqs;
        if (nb > (1 << 30)) nb = 1 << 30;
        o->kv_blocks = (int)nb;
    }
    if (o->max_logit_edits <= 0) {
        int64_t ne = (int64_t)o->max_seqs * ((int64_t)o->max_ctx + RAGD_MAX_LOGIT_BIAS);
        o->max_logit_edits = ne > (1 << 30) ? 1 << 30 : (int)ne;
    }
    if (o->kv_blocks < per_seq)
        return ragd_err_set(err, RAGD_ERANGE,
                            "KV cache of %d blocks × %d positions cannot hold one sequence of max_ctx %d (needs %lld "
                            "blocks)", o->kv_blocks, bs, o->max_ctx, (long long)per_seq);
    return RAGD_OK;
}

/* Hybrid models (Qwen3.5): a cached prefix block holds K/V of the full-attention layers only, not the Gated
 * DeltaNet state after it, so sharing it would start a sequence from the wrong state (vLLM's hybrid prefix-cache
 * bugs, MODEL_FACTS.md §9). The prefix cache is off for them: every sequence computes its prompt from 0. */
static void no_prefix_cache_for(const ragd_model *m, ragd_engine_opts *r) {
    if (m->cfg.hybrid) r->prefix_cache = false;
}

ragd_status ragd_engine_plan_compute(const ragd_model *m, const ragd_engine_opts *o, ragd_engine_plan *plan,
                                     ragd_err *err) {
    const ragd_backend_ops *ops = NULL;
    ragd_status st = backend_of(o->device, &ops, err);
    if (st) return st;
    ragd_engine_opts r = *o;
    if ((st = ragd_engine_opts_resolve(&r, err))) return st;
    no_prefix_cache_for(m, &r);
    memset(plan, 0, sizeof *plan);
    if ((st = ops->plan(m, &r, plan, err))) return st;
    plan->no_prefix_cache = m->cfg.hybrid;
    return RAGD_OK;
}

void ragd_engine_free(ragd_engine *e) {
    if (!e) return;
    if (e->state) e->ops->destroy(e->state);
    ragd_kv_free(e->kv);
    free(e->pos0);
    free(e->blk_start);
    free(e->blocks);
    free(e->edit_seen);
    free(e);
}

ragd_status ragd_engine_create(const ragd_model *m, const ragd_engine_opts *o, ragd_engine **out, ragd_err *err) {
    *out = NULL;
    const ragd_backend_ops *ops = NULL;
    ragd_status st = backend_of(o->device, &ops, err);
    if (st) return st;
    ragd_engine_opts r = *o;
    if ((st = ragd_engine_opts_resolve(&r, err))) return st;
    no_prefix_cache_for(m, &r);
    ragd_engine *e = ragd_xcalloc(1, sizeof *e);
    e->ops = ops;
    e->model = m;
    e->opts = r;
    if (r.kv_cache) {
        e->max_blocks = (r.max_ctx + r.kv_block_size - 1) / r.kv_block_size;
        ragd_kv_opts ko = {.n_blocks = r.kv_blocks, .block_size = r.kv_block_size, .max_seqs = r.max_seqs,
                           .max_ctx = r.max_ctx, .prefix_cache = r.prefix_cache};
        e->kv = ragd_kv_create(&ko);
        e->pos0 = malloc(sizeof(int32_t) * (size_t)r.max_seqs);
        e->blk_start = malloc(sizeof(int32_t) * ((size_t)r.max_seqs + 1));
        e->blocks = malloc(sizeof(int32_t) * (size_t)r.max_seqs * (size_t)e->max_blocks);
        e->edit_seen = calloc((size_t)m->cfg.n_vocab, sizeof *e->edit_seen);
        if (!e->kv || !e->pos0 || !e->blk_start || !e->blocks || !e->edit_seen) {
            ragd_engine_free(e);
            return ragd_err_set(err, RAGD_ENOMEM, "out of memory for the KV cache tables (%d blocks, %d sequences)",
                                r.kv_blocks, r.max_seqs);
        }
    }
    st = ops->create(m, &r, &e->state, &e->plan, err);
    if (st) {
        e->state = NULL;
        ragd_engine_free(e);
        return st;
    }
    e->plan.no_prefix_cache = m->cfg.hybrid;
    *out = e;
    return RAGD_OK;
}

const ragd_engine_plan *ragd_engine_get_plan(const ragd_engine *e) { return &e->plan; }
const ragd_engine_opts *ragd_engine_get_opts(const ragd_engine *e) { return &e->opts; }
const ragd_model *ragd_engine_model(const ragd_engine *e) { return e->model; }
void *ragd_engine_backend_state(ragd_engine *e) { return e->state; }

/* ---- the one batch validator -------------------------------------------------------------------- */

/* Shape, limits and token ids of a batch; for steps (seqs != NULL) also the sequences. */
static ragd_status check_batch(const ragd_engine *e, const ragd_batch *b, const int32_t *seqs, ragd_err *err) {
    const ragd_engine_opts *o = &e->opts;
    if (!b || b->n_seqs < 1 || !b->seq_start || !b->tokens) return ragd_err_set(err, RAGD_EINVAL, "empty batch");
    if (b->n_seqs > o->max_seqs)
        return ragd_err_set(err, RAGD_ERANGE, "batch of %d sequences exceeds max_seqs %d", b->n_seqs, o->max_seqs);
    if (b->seq_start[0] != 0) return ragd_err_set(err, RAGD_EINVAL, "seq_start[0] must be 0");
    int64_t total = 0;
    for (int i = 0; i < b->n_seqs; i++) {
        int n = b->seq_start[i + 1] - b->seq_start[i];
        if (n < 1) return ragd_err_set(err, RAGD_EINVAL, "sequence %d of the batch is empty", i);
        total += n;
        if (total > o->max_batch_tokens)
            return ragd_err_set(err, RAGD_ERANGE, "batch of %lld+ tokens exceeds max_batch_tokens %d", (long long)total,
                                o->max_batch_tokens);
        int base = 0;
        if (seqs) {
            int q = seqs[i];
            if (q < 0 || q >= o->max_seqs)
                return ragd_err_set(err, RAGD_ERANGE, "sequence slot %d outside [0, %d)", q, o->max_seqs);
            for (int j = 0; j < i; j++)
                if (seqs[j] == q) return ragd_err_set(err, RAGD_EINVAL, "sequence slot %d used twice in one batch", q);
            if (!ragd_kv_is_open(e->kv, q)) return ragd_err_set(err, RAGD_EINVAL, "sequence slot %d is not open", q);
            base = ragd_kv_len(e->kv, q);
        }
        if ((int64_t)base + n > o->max_ctx)
            return ragd_err_set(err, RAGD_ERANGE, "sequence %d: %d tokens (%d cached + %d new) exceed max_ctx %d", i,
                                base + n, base, n, o->max_ctx);
    }
    int n_vocab = e->model->cfg.n_vocab;
    for (int64_t t = 0; t < total; t++)
        if (b->tokens[t] < 0 || b->tokens[t] >= n_vocab)
            return ragd_err_set(err, RAGD_ERANGE, "token id %d at batch position %lld outside the vocabulary [0, %d)",
                                b->tokens[t], (long long)t, n_vocab);
    if (b->type_ids) {
        int n_types = e->model->cfg.n_type_vocab;
        if (n_types <= 0)
            return ragd_err_set(err, RAGD_EINVAL, "model %s has no token types (token type ids given)", e->model->name);
        for (int64_t t = 0; t < total; t++)
            if (b->type_ids[t] < 0 || b->type_ids[t] >= n_types)
                return ragd_err_set(err, RAGD_ERANGE, "token type id %d at batch position %lld outside [0, %d)",
                                    b->type_ids[t], (long long)t, n_types);
    }
    return RAGD_OK;
}

ragd_status ragd_engine_pool(ragd_engine *e, const ragd_batch *b, ragd_pooling pool, float *out, ragd_err *err) {
    if ((unsigned)pool > RAGD_POOL_MAX) return ragd_err_set(err, RAGD_EINVAL, "unknown pooling %d", (int)pool);
    ragd_status st = check_batch(e, b, NULL, err);
    if (st) return st;
    return e->ops->pool(e->state, b, pool, out, err);
}

ragd_status ragd_engine_classify(ragd_engine *e, const ragd_batch *b, float *out, ragd_err *err) {
    if (!ragd_model_has_classifier(e->model))
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s has no sequence classification head", e->model->name);
    if (!e->ops->classify)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "the %s backend does not run sequence classification yet",
                            e->ops->name);
    ragd_status st = check_batch(e, b, NULL, err);
    if (st) return st;
    return e->ops->classify(e->state, b, out, err);
}

ragd_status ragd_engine_score(ragd_engine *e, const ragd_batch *b, const int32_t *rows, int n_rows, float *out,
                              ragd_err *err) {
    if (n_rows < 1 || !rows) return ragd_err_set(err, RAGD_EINVAL, "score needs at least one vocabulary row");
    for (int r = 0; r < n_rows; r++)
        if (rows[r] < 0 || rows[r] >= e->model->cfg.n_vocab)
            return ragd_err_set(err, RAGD_ERANGE, "score row %d outside the vocabulary [0, %d)", rows[r],
                                e->model->cfg.n_vocab);
    ragd_status st = check_batch(e, b, NULL, err);
    if (st) return st;
    return e->ops->score(e->state, b, rows, n_rows, out, err);
}

/* ---- sequences ---------------------------------------------------------------------------------- */

static ragd_status need_kv(const ragd_engine *e, ragd_err *err) {
    if (!e->kv) return ragd_err_set(err, RAGD_EINVAL, "this engine was created without a KV cache (kv_cache = false)");
    return RAGD_OK;
}

ragd_status ragd_engine_seq_open(ragd_engine *e, int seq, const int32_t *tokens, int n, int *n_cached,
                                 ragd_err *err) {
    *n_cached = 0;
    ragd_status st = need_kv(e, err);
    if (st) return st;
    if (seq < 0 || seq >= e->opts.max_seqs)
        return ragd_err_set(err, RAGD_ERANGE, "sequence slot %d outside [0, %d)", seq, e->opts.max_seqs);
    if (ragd_kv_is_open(e->kv, seq)) return ragd_err_set(err, RAGD_EINVAL, "sequence slot %d is already open", seq);
    if (n < 1 || !tokens) return ragd_err_set(err, RAGD_EINVAL, "a sequence needs at least one token");
    if (n > e->opts.max_ctx)
        return ragd_err_set(err, RAGD_ERANGE, "sequence of %d tokens exceeds max_ctx %d", n, e->opts.max_ctx);
    ragd_kv_open(e->kv, seq, tokens, n, n_cached);
    RAGD_ASSERT(!e->model->cfg.hybrid || *n_cached == 0); /* the prefix cache is off for hybrid models */
    if (e->ops->seq_reset) e->ops->seq_reset(e->state, seq);
    return RAGD_OK;
}

ragd_status ragd_engine_seq_reserve(ragd_engine *e, int seq, int n_total, ragd_err *err) {
    ragd_status st = need_kv(e, err);
    if (st) return st;
    if (seq < 0 || seq >= e->opts.max_seqs || !ragd_kv_is_open(e->kv, seq))
        return ragd_err_set(err, RAGD_EINVAL, "sequence slot %d is not open", seq);
    return ragd_kv_reserve(e->kv, seq, n_total, err);
}

void ragd_engine_seq_close(ragd_engine *e, int seq) {
    RAGD_ASSERT(e->kv && seq >= 0 && seq < e->opts.max_seqs);
    ragd_kv_close(e->kv, seq);
    if (e->ops->seq_reset) e->ops->seq_reset(e->state, seq); /* cancel / finish: no state outlives the sequence */
}

int ragd_engine_seq_len(const ragd_engine *e, int seq) {
    RAGD_ASSERT(e->kv && seq >= 0 && seq < e->opts.max_seqs);
    return ragd_kv_len(e->kv, seq);
}

bool ragd_engine_seq_is_open(const ragd_engine *e, int seq) {
    RAGD_ASSERT(e->kv && seq >= 0 && seq < e->opts.max_seqs);
    return ragd_kv_is_open(e->kv, seq);
}

int ragd_engine_seq_blocks_needed(const ragd_engine *e, int seq, int n_total) {
    RAGD_ASSERT(e->kv && seq >= 0 && seq < e->opts.max_seqs);
    return ragd_kv_blocks_needed(e->kv, seq, n_total);
}

int ragd_engine_kv_available(const ragd_engine *e) { return e->kv ? ragd_kv_available(e->kv) : 0; }

void ragd_engine_kv_stats_get(const ragd_engine *e, ragd_engine_kv_stats *st) {
    memset(st, 0, sizeof *st);
    if (!e->kv) return;
    ragd_kv_stats k;
    ragd_kv_get_stats(e->kv, &k);
    *st = (ragd_engine_kv_stats){.n_blocks = k.n_blocks, .block_size = k.block_size, .used = k.used,
                                 .cached = k.cached, .free = k.free, .lookup_tokens = k.lookup_tokens,
                                 .hit_tokens = k.hit_tokens, .evictions = k.evictions};
}

int ragd_engine_mask_words(const ragd_engine *e) { return (e->model->cfg.n_vocab + 31) / 32; }

/* The logit processing of the rows that ask for it (ragd_step_proc's contract). */
static ragd_status check_proc(ragd_engine *e, int n_seqs, const ragd_sample_params *sp, const ragd_step_proc *proc,
                              ragd_err *err) {
    const int V = e->model->cfg.n_vocab;
    int n_masks = proc ? proc->n_masks : 0, n_edits = proc ? proc->n_edits : 0;
    if (n_masks < 0 || n_masks > e->opts.max_seqs || (n_masks && !proc->masks))
        return ragd_err_set(err, RAGD_ERANGE, "step: %d token masks (0..%d, max_seqs)", n_masks, e->opts.max_seqs);
    if (n_edits < 0 || n_edits > e->opts.max_logit_edits || (n_edits && !proc->edits))
        return ragd_err_set(err, RAGD_ERANGE, "step: %d logit edits (0..%d, max_logit_edits)", n_edits,
                            e->opts.max_logit_edits);
    for (int i = 0; i < n_seqs; i++) {
        const ragd_sample_params *p = &sp[i];
        if (!p->active) continue;
        if (p->mask_row < 0 || p->mask_row > n_masks)
            return ragd_err_set(err, RAGD_ERANGE, "sequence %d of the batch: mask row %d outside 1..%d", i, p->mask_row,
                                n_masks);
        if (!isfinite(p->repetition_penalty) || p->repetition_penalty < 0 || !isfinite(p->frequency_penalty) ||
            !isfinite(p->presence_penalty))
            return ragd_err_set(err, RAGD_ERANGE, "sequence %d of the batch: penalties must be finite (repetition >= 0)", i);
        if (p->n_edit == 0) continue;
        if (p->edit_off < 0 || p->n_edit < 0 || p->edit_off > n_edits || p->n_edit > n_edits - p->edit_off)
            return ragd_err_set(err, RAGD_ERANGE, "sequence %d of the batch: edits [%d, +%d) outside the step's %d", i,
                                p->edit_off, p->n_edit, n_edits);
        if (++e->edit_stamp == 0) { /* wrapped: clear the stamps */
            memset(e->edit_seen, 0, sizeof *e->edit_seen * (size_t)V);
            e->edit_stamp = 1;
        }
        for (int j = 0; j < p->n_edit; j++) {
            const ragd_logit_edit *x = &proc->edits[p->edit_off + j];
            if (x->id < 0 || x->id >= V)
                return ragd_err_set(err, RAGD_ERANGE, "sequence %d of the batch: edit of token %d outside the vocabulary (%d)",
                                    i, x->id, V);
            if (!isfinite(x->bias))
                return ragd_err_set(err, RAGD_ERANGE, "sequence %d of the batch: bias of token %d is not finite", i, x->id);
            if (e->edit_seen[x->id] == e->edit_stamp)
                return ragd_err_set(err, RAGD_EINVAL, "sequence %d of the batch: token %d edited twice", i, x->id);
            e->edit_seen[x->id] = e->edit_stamp;
        }
    }
    return RAGD_OK;
}

ragd_status ragd_engine_step(ragd_engine *e, const ragd_batch *b, const int32_t *seqs, const ragd_sample_params *sp,
                             ragd_sample_out *out, float *logits, ragd_err *err) {
    return ragd_engine_step_proc(e, b, seqs, sp, NULL, out, logits, err);
}

ragd_status ragd_engine_step_proc(ragd_engine *e, const ragd_batch *b, const int32_t *seqs, const ragd_sample_params *sp,
                                  const ragd_step_proc *proc, ragd_sample_out *out, float *logits, ragd_err *err) {
    ragd_status st = need_kv(e, err);
    if (st) return st;
    if (!e->model->lm_head.data && !e->model->cfg.tie_embed)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s has no lm_head: it cannot generate", e->model->name);
    if (!seqs) return ragd_err_set(err, RAGD_EINVAL, "step needs one sequence slot per batch sequence");
    if ((st = check_batch(e, b, seqs, err))) return st;
    int n_vocab = e->model->cfg.n_vocab;
    for (int i = 0; sp && i < b->n_seqs; i++) {
        if (!sp[i].active) continue;
        if (!out) return ragd_err_set(err, RAGD_EINVAL, "sampled rows need an output array");
        if ((st = ragd_sample_check(&sp[i], n_vocab, err))) return ragd_err_prefix(err, "sequence %d of the batch", i);
    }
    if (sp && (st = check_proc(e, b->n_seqs, sp, proc, err))) return st;
    /* blocks for the new positions, then the block table of the step */
    for (int i = 0; i < b->n_seqs; i++) {
        int n = b->seq_start[i + 1] - b->seq_start[i];
        if ((st = ragd_kv_reserve(e->kv, seqs[i], ragd_kv_len(e->kv, seqs[i]) + n, err))) return st;
    }
    int bs = e->opts.kv_block_size, nb = 0;
    e->blk_start[0] = 0;
    for (int i = 0; i < b->n_seqs; i++) {
        int q = seqs[i], n = b->seq_start[i + 1] - b->seq_start[i];
        e->pos0[i] = ragd_kv_len(e->kv, q);
        int used = (e->pos0[i] + n + bs - 1) / bs;
        memcpy(e->blocks + nb, ragd_kv_blocks(e->kv, q), sizeof(int32_t) * (size_t)used);
        nb += used;
        e->blk_start[i + 1] = nb;
    }
    ragd_kv_view kv = {.block_size = bs, .seqs = seqs, .pos0 = e->pos0, .blk_start = e->blk_start, .blocks = e->blocks};
    if ((st = e->ops->step(e->state, b, &kv, sp, proc, out, logits, err))) return st;
    for (int i = 0; i < b->n_seqs; i++)
        ragd_kv_commit(e->kv, seqs[i], b->tokens + b->seq_start[i], b->seq_start[i + 1] - b->seq_start[i]);
    return RAGD_OK;
}
