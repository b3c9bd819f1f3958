/* rerank.c — reranking, two kinds of model:
 *   - Qwen3-Reranker (MODEL_FACTS.md §3): prefix, body and suffix tokenized separately, score =
 *     sigmoid(logit(yes) − logit(no)) at the last position, yes/no ids looked up in the vocabulary;
 *   - cross-encoders (BertForSequenceClassification, XLMRobertaForSequenceClassification with one label):
 *     the tokenizer's own pair encoding (ragd_tokenizer_encode_pair: its post-processor — `[CLS] q [SEP]
 *     d [SEP]` with types 0 … 0 1 … 1, `<s> q </s></s> d </s>` all 0 — and HF truncation, by default
 *     longest_first to the model's positions / model_max_length, as HF's tokenizer(q, d, truncation=True)),
 *     score = sigmoid(logit), the raw logit on request. The tokenizer's type ids travel to the engine as
 *     one segment-A length per sequence (exact for 0…0 1…1 and all-0; other shapes are refused);
 *   - NVIDIA's bidirectional-Llama reranker (llama-nemotron-rerank-1b-v2,
 *     LlamaBidirectionalForSequenceClassification): one text "question:{query} \n \n passage:{passage}"
 *     (the format the model was fine-tuned on: its model card, NeMo AutoModel's CrossEncoderCollator
 *     default prompt_template) encoded with the tokenizer's special tokens, truncated at the end to the
 *     model's length (NIM's truncate END), all type 0; score = sigmoid(logit), the raw logit on request
 *     (the logit is score(mean pool) / temperature, as the model computes it). */
#include <math.h>
#include <stdlib.h>

#include "tasks/tasks_internal.h"

#define RERANK_PREFIX                                                                                          \
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct " \
    "provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n"
#define RERANK_SUFFIX "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
#define RERANK_MAX_LEN 8192 /* the reference's max_length */

bool ragd_rerank_is_cross_encoder(const ragd_model *m) { return ragd_model_has_classifier(m); }

ragd_status ragd_rerank_token_ids(const ragd_model *m, int32_t *yes_id, int32_t *no_id, ragd_err *err) {
    if (!m->tok) return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s has no tokenizer", m->name);
    if (ragd_rerank_is_cross_encoder(m)) { /* scored by its classifier: no vocabulary rows */
        *yes_id = *no_id = -1;
        if (m->cfg.arch != RAGD_ARCH_BERT && m->cfg.arch != RAGD_ARCH_XLMR && m->cfg.arch != RAGD_ARCH_LLAMA_BIDIR)
            return ragd_err_set(err, RAGD_EUNSUPPORTED,
                                "model %s (%s): its query/passage input format is not wired into the rerank task yet "
                                "(the engine scores prepared ids with ragd_engine_classify)",
                                m->name, ragd_arch_name(m->cfg.arch));
        if (m->cfg.n_labels != 1)
            return ragd_err_set(err, RAGD_EUNSUPPORTED,
                                "model %s cannot rerank: its classifier has %d labels (a cross-encoder reranker has one)",
                                m->name, m->cfg.n_labels);
        return RAGD_OK;
    }
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

size_t ragd_rerank_max_length(const ragd_model *m) {
    int64_t n = m->cfg.max_pos > 0 ? m->cfg.max_pos : RERANK_MAX_LEN;
    int64_t mml = m->tok ? ragd_tokenizer_model_max_length(m->tok) : -1;
    if (mml > 0 && mml < n) n = mml;
    return (size_t)n;
}

/* *seg_a from the tokenizer's type ids: the seam carries one segment-A length per sequence, which
 * holds any 0…0 1…1 (BERT) or all-0 (RoBERTa) run exactly; another shape cannot be carried. */
static ragd_status seg_a_of(const ragd_model *m, const ragd_tok_ids *types, int32_t *seg_a, ragd_err *err) {
    size_t k = 0;
    while (k < types->n && types->ids[k] == 0) k++;
    for (size_t i = k; i < types->n; i++)
        if (types->ids[i] != 1)
            return ragd_err_set(err, RAGD_EUNSUPPORTED,
                                "model %s: its tokenizer's pair template gives token type %d at position %zu after "
                                "type 1 (only 0…0 1…1 runs are supported)", m->name, types->ids[i], i);
    if (k < types->n && m->cfg.n_type_vocab < 2)
        return ragd_err_set(err, RAGD_EUNSUPPORTED,
                            "model %s: its tokenizer gives the second sequence token type 1, but the model has %d "
                            "token type(s) (type_vocab_size)", m->name, m->cfg.n_type_vocab);
    if (seg_a) *seg_a = k < types->n ? (int32_t)k : 0;
    return RAGD_OK;
}

/* NVIDIA's reranker: one templated text (see the top of the file), cut at the end to the model's length. */
static ragd_status prepare_nv(const ragd_model *m, const char *query, const char *doc, const ragd_tok_trunc *trunc,
                              ragd_tok_ids *out, ragd_err *err) {
    ragd_buf b = {0};
    ragd_buf_printf(&b, "question:%s \n \n passage:%s", query, doc);
    ragd_tok_ids ids = {0};
    ragd_trace_push("ragd.tokenize");
    ragd_status st = ragd_tokenizer_encode(m->tok, b.data, b.len, true, &ids, err);
    ragd_trace_pop();
    ragd_buf_free(&b);
    size_t n = ids.n, max = trunc ? trunc->max_length : ragd_rerank_max_length(m);
    if (!st && (!trunc || trunc->strategy != RAGD_TOK_TRUNC_NONE) && n > max) n = max;
    size_t first = trunc && trunc->left && ids.n > n ? ids.n - n : 0;
    for (size_t i = 0; !st && i < n; i++) ragd_tok_ids_push(out, ids.ids[first + i]);
    ragd_tok_ids_free(&ids);
    return st;
}

/* The tokenizer's own pair encoding (post-processor, type ids, truncation) as HF's
 * tokenizer(query, doc, truncation=...) gives it. */
static ragd_status prepare_pair(const ragd_model *m, const char *query, const char *doc, const ragd_tok_trunc *trunc,
                                ragd_tok_ids *out, int32_t *seg_a, ragd_err *err) {
    ragd_tok_trunc dflt = {RAGD_TOK_TRUNC_LONGEST_FIRST, ragd_rerank_max_length(m), false};
    if (!trunc) trunc = &dflt;
    ragd_tok_ids ids = {0}, types = {0};
    ragd_trace_push("ragd.tokenize");
    ragd_status st = ragd_tokenizer_encode_pair(m->tok, query, strlen(query), doc, strlen(doc), true,
                                                trunc->strategy == RAGD_TOK_TRUNC_NONE ? NULL : trunc, &ids, &types, err);
    ragd_trace_pop();
    if (!st) st = seg_a_of(m, &types, seg_a, err);
    if (!st)
        for (size_t i = 0; i < ids.n; i++) ragd_tok_ids_push(out, ids.ids[i]);
    ragd_tok_ids_free(&ids);
    ragd_tok_ids_free(&types);
    return st;
}

ragd_status ragd_rerank_prepare(const ragd_model *m, const char *query, const char *doc, const char *instruction,
                                ragd_tok_ids *out, int32_t *seg_a, ragd_err *err) {
    return ragd_rerank_prepare_trunc(m, query, doc, instruction, NULL, out, seg_a, err);
}

ragd_status ragd_rerank_prepare_trunc(const ragd_model *m, const char *query, const char *doc, const char *instruction,
                                      const ragd_tok_trunc *trunc, ragd_tok_ids *out, int32_t *seg_a, ragd_err *err) {
    if (!m->tok) return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s has no tokenizer", m->name);
    if (seg_a) *seg_a = 0;
    if (ragd_rerank_is_cross_encoder(m)) {
        if (m->cfg.arch == RAGD_ARCH_LLAMA_BIDIR) return prepare_nv(m, query, doc, trunc, out, err);
        if (m->cfg.arch != RAGD_ARCH_BERT && m->cfg.arch != RAGD_ARCH_XLMR)
            return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s: no pair template for %s", m->name,
                                ragd_arch_name(m->cfg.arch));
        return prepare_pair(m, query, doc, trunc, out, seg_a, err);
    }
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

float ragd_rerank_score_from_logit(float logit) { return 1.0f / (1.0f + expf(-logit)); }

void ragd_rerank_type_ids(int32_t seg_a, int n, int32_t *types) {
    for (int i = 0; i < n; i++) types[i] = seg_a > 0 && i >= seg_a ? 1 : 0;
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
    int32_t *seg_a; /* [n] segment-A length of each document's sequence */
    int first;      /* document index of seg_a[0] */
} rerank_pack_ctx;

static ragd_status rerank_pack_prep(void *ctx, int j, ragd_tok_ids *out, ragd_err *err) {
    rerank_pack_ctx *c = ctx;
    return ragd_rerank_prepare(c->m, c->query, c->docs[j], c->instruction, out, &c->seg_a[j], err);
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
    bool cross = ragd_rerank_is_cross_encoder(m);
    int32_t *starts = malloc(sizeof(int32_t) * ((size_t)eo->max_seqs + 1));
    float *lg = malloc(sizeof(float) * 2 * (size_t)eo->max_seqs);
    int32_t *seg_a = calloc((size_t)n, sizeof(int32_t));                                 /* [n] */
    int32_t *types = cross ? malloc(sizeof(int32_t) * (size_t)eo->max_batch_tokens) : NULL; /* [batch tokens] */
    if (!starts || !lg || !seg_a || (cross && !types)) {
        free(starts);
        free(lg);
        free(seg_a);
        free(types);
        return ragd_err_set(err, RAGD_ENOMEM, "out of memory");
    }
    rerank_pack_ctx pc = {m, query, docs, instruction, seg_a, 0};
    int i = 0;
    while (i < n && st == RAGD_OK) {
        int cnt = 0;
        st = ragd_tasks_pack(eo, i, n, "document", rerank_pack_prep, &pc, &ids, starts, &cnt, failed, err);
        int j = i + cnt;
        if (st) break;
        ragd_batch b = {cnt, ids.ids, starts, NULL};
        if (cross) {
            bool any = false;
            for (int k = 0; k < cnt; k++) {
                ragd_rerank_type_ids(seg_a[i + k], starts[k + 1] - starts[k], types + starts[k]);
                any |= seg_a[i + k] > 0;
            }
            if (any) b.type_ids = types;
            st = ragd_engine_classify(e, &b, lg, err);
        } else st = ragd_engine_score(e, &b, rows, 2, lg, err);
        if (st) {
            ragd_err_prefix(err, "documents %d..%d", i, j - 1);
            break;
        }
        for (int k = 0; k < cnt; k++)
            scores[i + k] = cross ? ragd_rerank_score_from_logit(lg[k]) : ragd_rerank_score_from_logits(lg[2 * k], lg[2 * k + 1]);
        i = j;
    }
    ragd_tok_ids_free(&ids);
    free(starts);
    free(lg);
    free(seg_a);
    free(types);
    return st;
}
