/* rerank.c — Qwen3-Reranker scoring (MODEL_FACTS.md §3): prefix, body and suffix tokenized separately,
 * score = sigmoid(logit(yes) − logit(no)) at the last position, yes/no ids looked up in the vocabulary. */
#include <math.h>
#include <stdlib.h>

#include "tasks/tasks_internal.h"

#define RERANK_PREFIX                                                                                          \
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct " \
    "provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n"
#define RERANK_SUFFIX "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
#define RERANK_MAX_LEN 8192 /* the reference's max_length */

ragd_status ragd_rerank_token_ids(const ragd_model *m, int32_t *yes_id, int32_t *no_id, ragd_err *err) {
    if (!m->tok) return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s has no tokenizer", m->name);
    *yes_id = ragd_tokenizer_token_to_id(m->tok, "yes");
    *no_id = ragd_tokenizer_token_to_id(m->tok, "no");
    if (*yes_id < 0 || *no_id < 0)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s cannot rerank: its vocabulary lacks the token \"%s\"",
                            m->name, *yes_id < 0 ? "yes" : "no");
    if (*yes_id >= m->cfg.n_vocab || *no_id >= m->cfg.n_vocab)
        return ragd_err_set(err, RAGD_EFORMAT, "model %s: yes/no ids %d/%d beyond the %d lm_head rows", m->name,
                            *yes_id, *no_id, m->cfg.n_vocab);
    return RAGD_OK;
}

ragd_status ragd_rerank_prepare(const ragd_model *m, const char *query, const char *doc, const char *instruction,
                                ragd_tok_ids *out, ragd_err *err) {
    if (!m->tok) return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s has no tokenizer", m->name);
    if (!instruction) instruction = RAGD_RERANK_DEFAULT_INSTRUCTION;
    ragd_tok_ids pre = {0}, body = {0}, suf = {0};
    ragd_buf b = {0};
    ragd_buf_printf(&b, "<Instruct>: %s\n<Query>: %s\n<Document>: %s", instruction, query, doc);
    ragd_trace_push("ragd.tokenize");
    ragd_status st = ragd_tokenizer_encode(m->tok, RERANK_PREFIX, strlen(RERANK_PREFIX), false, &pre, err);
    if (!st) st = ragd_tokenizer_encode(m->tok, b.data, b.len, false, &body, err);
    if (!st) st = ragd_tokenizer_encode(m->tok, RERANK_SUFFIX, strlen(RERANK_SUFFIX), false, &suf, err);
    ragd_trace_pop();
    if (!st) {
        size_t max_body = RERANK_MAX_LEN - pre.n - suf.n;
        size_t nb = body.n < max_body ? body.n : max_body; /* truncation=longest_first keeps the head */
        for (size_t i = 0; i < pre.n; i++) ragd_tok_ids_push(out, pre.ids[i]);
        for (size_t i = 0; i < nb; i++) ragd_tok_ids_push(out, body.ids[i]);
        for (size_t i = 0; i < suf.n; i++) ragd_tok_ids_push(out, suf.ids[i]);
    }
    ragd_tok_ids_free(&pre);
    ragd_tok_ids_free(&body);
    ragd_tok_ids_free(&suf);
    ragd_buf_free(&b);
    return st;
}

float ragd_rerank_score_from_logits(float yes_logit, float no_logit) {
    /* softmax([no, yes])[1] in fp32, as the reference computes it */
    float mx = yes_logit > no_logit ? yes_logit : no_logit;
    float ey = expf(yes_logit - mx), en = expf(no_logit - mx);
    return ey / (ey + en);
}

typedef struct rerank_pack_ctx {
    const ragd_model *m;
    const char *query;
    const char *const *docs;
    const char *instruction;
} rerank_pack_ctx;

static ragd_status rerank_pack_prep(void *ctx, int j, ragd_tok_ids *out, ragd_err *err) {
    rerank_pack_ctx *c = ctx;
    return ragd_rerank_prepare(c->m, c->query, c->docs[j], c->instruction, out, err);
}

ragd_status ragd_rerank_docs(ragd_engine *e, const char *query, const char *const *docs, int n,
                             const char *instruction, float *scores, int *failed, ragd_err *err) {
    if (failed) *failed = -1;
    const ragd_model *m = ragd_engine_model(e);
    const ragd_engine_opts *eo = ragd_engine_get_opts(e);
    int32_t rows[2];
    ragd_status st = ragd_rerank_token_ids(m, &rows[0], &rows[1], err);
    if (st) return st;
    ragd_tok_ids ids = {0};
    int32_t *starts = malloc(sizeof(int32_t) * ((size_t)eo->max_seqs + 1));
    float *lg = malloc(sizeof(float) * 2 * (size_t)eo->max_seqs);
    if (!starts || !lg) {
        free(starts);
        free(lg);
        return ragd_err_set(err, RAGD_ENOMEM, "out of memory");
    }
    rerank_pack_ctx pc = {m, query, docs, instruction};
    int i = 0;
    while (i < n && st == RAGD_OK) {
        int cnt = 0;
        st = ragd_tasks_pack(eo, i, n, "document", rerank_pack_prep, &pc, &ids, starts, &cnt, failed, err);
        int j = i + cnt;
        if (st) break;
        ragd_batch b = {cnt, ids.ids, starts, NULL};
        st = ragd_engine_score(e, &b, rows, 2, lg, err);
        if (st) {
            ragd_err_prefix(err, "documents %d..%d", i, j - 1);
            break;
        }
        for (int k = 0; k < cnt; k++) scores[i + k] = ragd_rerank_score_from_logits(lg[2 * k], lg[2 * k + 1]);
        i = j;
    }
    ragd_tok_ids_free(&ids);
    free(starts);
    free(lg);
    return st;
}
