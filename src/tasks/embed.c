/* embed.c — the embedding task: tokens for a text (optional query instruction, the tokenizer's
 * post-processor as HF applies it), pooled hidden state → final vector (Matryoshka truncation, then L2
 * normalization), and the whole-job runner that packs texts into engine batches.
 *
 * Matches sentence-transformers / the Qwen3-Embedding reference (MODEL_FACTS.md §2): pooling from the ST
 * files, else the config's (LlamaBidirectional "pooling"), else [CLS] for encoders and the last token for
 * decoders; normalize with F.normalize semantics (x / max(‖x‖, 1e-12)); dims truncate first,
 * then renormalize. */
#include <math.h>
#include <stdlib.h>

#include "tasks/tasks_internal.h"

ragd_pooling ragd_embed_pooling(const ragd_model *m) {
    if (m->has_st_pooling) return m->pooling;
    if (m->cfg.has_cfg_pooling) return m->cfg.cfg_pooling;        /* LlamaBidirectional "pooling" */
    return ragd_model_is_encoder(m) ? RAGD_POOL_CLS : RAGD_POOL_LAST; /* BERT's [CLS] / a decoder's last token */
}

ragd_status ragd_embed_check_opts(const ragd_model *m, const ragd_embed_opts *o, ragd_err *err) {
    if (o->dimensions < 0 || o->dimensions > m->cfg.n_embd)
        return ragd_err_set(err, RAGD_ERANGE, "dimensions %d outside [1, %d] (the model's embedding size)",
                            o->dimensions, m->cfg.n_embd);
    return RAGD_OK;
}

int ragd_embed_dims(const ragd_model *m, const ragd_embed_opts *o) {
    return o->dimensions > 0 ? o->dimensions : m->cfg.n_embd;
}

ragd_status ragd_embed_prepare(const ragd_model *m, const char *text, size_t len, const ragd_embed_opts *o,
                               ragd_tok_ids *out, ragd_err *err) {
    if (!m->tok) return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s has no tokenizer", m->name);
    size_t before = out->n;
    ragd_status st;
    ragd_trace_push("ragd.tokenize");
    ragd_buf b = {0};
    if (o->instruction || o->prompt) {
        if (o->instruction) ragd_buf_printf(&b, "Instruct: %s\nQuery:", o->instruction);
        if (o->prompt) ragd_buf_puts(&b, o->prompt);
        ragd_buf_append(&b, text, len);
        text = b.data;
        len = b.len;
    }
    if (o->trunc.strategy == RAGD_TOK_TRUNC_NONE) {
        st = ragd_tokenizer_encode(m->tok, text, len, true, out, err);
    } else { /* the tokenizer's truncation (HF's truncation=True): ids cut, then the post-processor */
        ragd_tok_ids one = {0};
        st = ragd_tokenizer_encode_pair(m->tok, text, len, NULL, 0, true, &o->trunc, &one, NULL, err);
        for (size_t i = 0; !st && i < one.n; i++) ragd_tok_ids_push(out, one.ids[i]);
        ragd_tok_ids_free(&one);
    }
    ragd_buf_free(&b);
    ragd_trace_pop();
    if (st) return st;
    if (out->n == before) return ragd_err_set(err, RAGD_EINVAL, "the text has no tokens (empty input)");
    return RAGD_OK;
}

ragd_status ragd_embed_finish(const ragd_model *m, const float *pooled, const ragd_embed_opts *o, float *out,
                              ragd_err *err) {
    int d = ragd_embed_dims(m, o);
    double ss = 0.0;
    for (int i = 0; i < d; i++) {
        if (!isfinite(pooled[i]))
            return ragd_err_set(err, RAGD_EINTERNAL, "the pooled hidden state is not finite (element %d)", i);
        ss += (double)pooled[i] * pooled[i];
    }
    float inv = o->normalize ? (float)(1.0 / fmax(sqrt(ss), 1e-12)) : 1.0f;
    for (int i = 0; i < d; i++) out[i] = pooled[i] * inv;
    return RAGD_OK;
}

typedef struct embed_pack_ctx {
    const ragd_model *m;
    const char *const *texts;
    const size_t *lens;
    const ragd_embed_opts *o;
} embed_pack_ctx;

static ragd_status embed_pack_prep(void *ctx, int j, ragd_tok_ids *out, ragd_err *err) {
    embed_pack_ctx *c = ctx;
    return ragd_embed_prepare(c->m, c->texts[j], c->lens[j], c->o, out, err);
}

ragd_status ragd_embed_texts(ragd_engine *e, const char *const *texts, const size_t *lens, int n,
                             const ragd_embed_opts *o, float *out, int *failed, ragd_err *err) {
    if (failed) *failed = -1;
    const ragd_model *m = ragd_engine_model(e);
    const ragd_engine_opts *eo = ragd_engine_get_opts(e);
    ragd_status st = ragd_embed_check_opts(m, o, err);
    if (st) return st;
    int dims = ragd_embed_dims(m, o), E = m->cfg.n_embd;
    ragd_pooling pool = ragd_embed_pooling(m);
    ragd_tok_ids ids = {0};
    int32_t *starts = malloc(sizeof(int32_t) * ((size_t)eo->max_seqs + 1));
    float *pooled = malloc(sizeof(float) * (size_t)eo->max_seqs * E);
    if (!starts || !pooled) {
        free(starts);
        free(pooled);
        return ragd_err_set(err, RAGD_ENOMEM, "out of memory");
    }
    embed_pack_ctx pc = {m, texts, lens, o};
    int i = 0;
    while (i < n && st == RAGD_OK) {
        int cnt = 0;
        st = ragd_tasks_pack(eo, i, n, "text", embed_pack_prep, &pc, &ids, starts, &cnt, failed, err);
        int j = i + cnt;
        if (st) break;
        ragd_batch b = {cnt, ids.ids, starts, NULL};
        st = ragd_engine_pool(e, &b, pool, pooled, err);
        if (st) {
            ragd_err_prefix(err, "texts %d..%d", i, j - 1);
            break;
        }
        for (int k = 0; k < cnt; k++) {
            st = ragd_embed_finish(m, pooled + (size_t)k * E, o, out + (size_t)(i + k) * dims, err);
            if (st) {
                ragd_err_prefix(err, "text %d", i + k);
                if (failed) *failed = i + k;
                break;
            }
        }
        i = j;
    }
    ragd_tok_ids_free(&ids);
    free(starts);
    free(pooled);
    return st;
}
