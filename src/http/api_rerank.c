/* api_rerank.c — POST /rerank and POST /v1/rerank (Jina / Cohere / vLLM shape).
 *
 *   /rerank     {"query", "documents": [str], "model"?, "instruction"?, "truncate"?}
 *               → {"scores": [f32 per document], "order": [indices by descending score], "model"}
 *   /rerank (TEI) {"query", "texts": [str], "raw_scores"?, "return_text"?, "truncate"?, "truncation_direction"?}
 *               → [{"index", "score", "text"?}] by descending score (score: sigmoid(logit), or the raw logit —
 *                 yes − no for Qwen3-Reranker — with raw_scores); chosen by the "texts" key ("texts" and
 *                 "documents" together: 400); TEI's error codes (errors.c), ragd's error body
 *   /v1/rerank  {"query", "documents": [str | {"text": str}], "model"?, "top_n"?, "return_documents"?,
 *                "instruction"?, "truncate"?}
 *               → {"id", "results": [{"index", "relevance_score", "document"?: {"text"}}] sorted by
 *                  descending score, "model", "usage": {"prompt_tokens", "total_tokens"}}
 *
 *   drop-in shapes of other servers (issue 19), the same task underneath:
 *   /v1/ranking (NVIDIA NIM)  {"model"?, "query": {"text"}, "passages": [{"text"}], "truncate"?: "NONE"|"END"}
 *               → {"rankings": [{"index", "logit"}] by descending logit}   (logit: yes − no, not p(yes))
 *   /v2/rerank (Cohere v2)    {"model"?, "query", "documents": [str], "top_n"?, "max_tokens_per_doc"?}
 *               → {"id", "results": [{"index", "relevance_score"}] sorted, "meta": {"api_version", "billed_units"}}
 *               (documents longer than max_tokens_per_doc, default the model's limit, are cut as Cohere does)
 *   /score, /v1/score (vLLM)  {"model"?, "text_1": str | [str], "text_2": str | [str], "truncate_prompt_tokens"?}
 *               → {"id", "object": "list", "created", "model", "data": [{"index", "object": "score", "score"}],
 *                  "usage"} in input order; text_1 a string scores it against every text_2, two lists pair up
 *
 * Each document is one sequence built by ragd_rerank_prepare (prefix + body + suffix for
 * Qwen3-Reranker; the pair template, truncated longest-first to the model's positions, for cross-encoders —
 * whose scores are sigmoid(logit) and NIM's "logit" the raw logit), as the CLI does; a too-long document
 * is cut (truncate) or refused naming its index. Ties keep input order.
 */
#include "http/http_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX_DOCS API_MAX_INPUTS

typedef enum { SH_RAGD, SH_V1, SH_NIM, SH_COHERE2, SH_SCORE, SH_KSERVE, SH_TEI } rerank_shape;

typedef struct rerank_api {
    rerank_shape shape;
    bool return_docs;
    bool raw_scores;        /* SH_TEI: the raw logit instead of sigmoid(logit) */
    int top_n;
    bool has_trunc;         /* cross-encoders: trunc is what the tokenizer cuts the pair with (else its default) */
    ragd_tok_trunc trunc;
    const char *query, *instruction;
    const json_t *queries;  /* SH_SCORE with text_1 a list: one query per document */
    const json_t *docs;     /* the documents array (strings or {"text"}) */
    json_t *owned;          /* SH_SCORE with text_2 a string: the one-element list made of it */
    char *scratch;   /* NUL-terminated copy of a document prefix while truncating */
    size_t scratch_cap;
    int32_t seg_a;   /* segment-A tokens of the last prepared sequence (cross-encoders with token types) */
    int32_t *seg_a_all; /* [n] per document, handed to the task */
} rerank_api;

static void rerank_api_free(void *p) {
    rerank_api *a = p;
    if (a) {
        free(a->scratch);
        free(a->seg_a_all);
        if (a->owned) json_decref(a->owned);
    }
    free(a);
}

static ragd_status prep_rerank(http_req *r, const char *doc, size_t len, ragd_tok_ids *out, ragd_err *err) {
    rerank_api *a = r->api;
    if (len + 1 > a->scratch_cap) {
        free(a->scratch);
        a->scratch_cap = len + 1;
        a->scratch = malloc(a->scratch_cap);
        if (!a->scratch) {
            a->scratch_cap = 0;
            return ragd_err_set(err, RAGD_ENOMEM, "document of %zu bytes", len);
        }
    }
    memcpy(a->scratch, doc, len);
    a->scratch[len] = 0;
    return ragd_rerank_prepare_trunc(r->sm->model, a->query, a->scratch, a->instruction, a->has_trunc ? &a->trunc : NULL,
                                     out, &a->seg_a, err);
}

static const char *doc_text(const json_t *d) {
    if (json_is_string(d)) return json_string_value(d);
    return json_string_value(json_object_get(d, "text"));
}

/* order[i]: indices sorted by descending score, ties by index. */
static int *sort_order(const float *s, int n) {
    int *o = ragd_xmalloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) o[i] = i;
    for (int i = 1; i < n; i++) { /* insertion sort: stable, n ≤ MAX_DOCS */
        int x = o[i], j = i;
        while (j > 0 && s[o[j - 1]] < s[x]) {
            o[j] = o[j - 1];
            j--;
        }
        o[j] = x;
    }
    return o;
}

static void usage_json(ragd_buf *b, const http_req *r) {
    ragd_buf_printf(b, "\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}", (long long)r->task.prompt_tokens,
                    (long long)r->task.prompt_tokens);
}

static void rerank_finish(http_req *r) {
    rerank_api *a = r->api;
    int n = r->task.n_seqs;
    for (int i = 0; i < n; i++)
        if (!isfinite(r->outv[i])) {
            http_error_status(r, RAGD_EINTERNAL, NULL, "the model produced a non-finite score");
            return;
        }
    int *order = sort_order(r->outv, n);
    ragd_buf *b = &r->out;
    ragd_buf_reset(b);
    const int k = a->top_n > 0 && a->top_n < n ? a->top_n : n;
    switch (a->shape) {
    case SH_RAGD:
        ragd_buf_puts(b, "{\"scores\":[");
        for (int i = 0; i < n; i++) {
            if (i) ragd_buf_putc(b, ',');
            ragd_buf_json_f32(b, r->outv[i]);
        }
        ragd_buf_puts(b, "],\"order\":[");
        for (int i = 0; i < n; i++) ragd_buf_printf(b, "%s%d", i ? "," : "", order[i]);
        ragd_buf_puts(b, "],\"model\":");
        ragd_buf_json_str(b, r->sm->name, strlen(r->sm->name));
        ragd_buf_putc(b, ',');
        usage_json(b, r);
        ragd_buf_putc(b, '}');
        break;
    case SH_V1:
    case SH_COHERE2:
        ragd_buf_printf(b, "{\"id\":\"rerank-%s\",\"results\":[", r->id);
        for (int i = 0; i < k; i++) {
            int idx = order[i];
            ragd_buf_printf(b, "%s{\"index\":%d,\"relevance_score\":", i ? "," : "", idx);
            ragd_buf_json_f32(b, r->outv[idx]);
            if (a->return_docs) {
                const char *t = doc_text(json_array_get(a->docs, (size_t)idx));
                ragd_buf_puts(b, ",\"document\":{\"text\":");
                ragd_buf_json_str(b, t, strlen(t));
                ragd_buf_putc(b, '}');
            }
            ragd_buf_putc(b, '}');
        }
        ragd_buf_puts(b, "],\"model\":");
        ragd_buf_json_str(b, r->sm->name, strlen(r->sm->name));
        ragd_buf_putc(b, ',');
        if (a->shape == SH_COHERE2) /* Cohere's SDK reads meta; billed units as Cohere counts them (1 search) */
            ragd_buf_puts(b, "\"meta\":{\"api_version\":{\"version\":\"2\"},\"billed_units\":{\"search_units\":1}},");
        usage_json(b, r);
        ragd_buf_putc(b, '}');
        break;
    case SH_TEI: /* a bare array, by descending score */
        ragd_buf_putc(b, '[');
        for (int i = 0; i < n; i++) {
            int idx = order[i];
            ragd_buf_printf(b, "%s{\"index\":%d,\"score\":", i ? "," : "", idx);
            ragd_buf_json_f32(b, r->outv[idx]);
            if (a->return_docs) {
                const char *t = doc_text(json_array_get(a->docs, (size_t)idx));
                ragd_buf_puts(b, ",\"text\":");
                ragd_buf_json_str(b, t, strlen(t));
            }
            ragd_buf_putc(b, '}');
        }
        ragd_buf_putc(b, ']');
        break;
    case SH_NIM:
        ragd_buf_puts(b, "{\"rankings\":[");
        for (int i = 0; i < k; i++) {
            ragd_buf_printf(b, "%s{\"index\":%d,\"logit\":", i ? "," : "", order[i]);
            ragd_buf_json_f32(b, r->outv[order[i]]);
            ragd_buf_putc(b, '}');
        }
        ragd_buf_puts(b, "]}");
        break;
    case SH_KSERVE: /* KServe v2 infer response: FP32 `scores` [n] in input order */
        ragd_buf_puts(b, "{\"model_name\":");
        ragd_buf_json_str(b, r->sm->name, strlen(r->sm->name));
        ragd_buf_printf(b, ",\"model_version\":\"1\",\"outputs\":[{\"name\":\"scores\",\"datatype\":\"FP32\","
                           "\"shape\":[%d],\"data\":[", n);
        for (int i = 0; i < n; i++) {
            if (i) ragd_buf_putc(b, ',');
            ragd_buf_json_f32(b, r->outv[i]);
        }
        ragd_buf_puts(b, "]}]}");
        break;
    case SH_SCORE:
        ragd_buf_printf(b, "{\"id\":\"score-%s\",\"object\":\"list\",\"created\":%lld,\"model\":", r->id,
                        (long long)time(NULL));
        ragd_buf_json_str(b, r->sm->name, strlen(r->sm->name));
        ragd_buf_puts(b, ",\"data\":[");
        for (int i = 0; i < n; i++) {
            ragd_buf_printf(b, "%s{\"index\":%d,\"object\":\"score\",\"score\":", i ? "," : "", i);
            ragd_buf_json_f32(b, r->outv[i]);
            ragd_buf_putc(b, '}');
        }
        ragd_buf_puts(b, "],");
        usage_json(b, r);
        ragd_buf_putc(b, '}');
        break;
    }
    free(order);
    http_reply_json(r, 200);
}

/* A string or a list of strings (vLLM's text_1 / text_2) as a JSON array view: *arr is the list, or NULL
 * with *one the string. */
static bool str_or_list(http_req *r, const char *key, const json_t **arr, const char **one) {
    const json_t *v = json_object_get(r->json, key);
    *arr = NULL, *one = NULL;
    if (!v || json_is_null(v))
        return http_error(r, 400, key, "missing_field", "missing required field '%s'", key), false;
    if (json_is_string(v)) {
        *one = json_string_value(v);
        return true;
    }
    if (!json_is_array(v) || !json_array_size(v))
        return http_error(r, 400, key, "invalid_type", "field '%s' must be a string or a non-empty list of strings", key),
               false;
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!json_is_string(json_array_get(v, i)))
            return http_error(r, 400, key, "invalid_type", "%s[%zu] must be a string", key, i), false;
    *arr = v;
    return true;
}

/* kq, kd (SH_KSERVE): the data arrays of the infer request's `query` and `documents` tensors */
static http_outcome rerank_common(http_req *r, rerank_shape shape, const json_t *kq, const json_t *kd) {
    static const char *const keys[] = {"query", "documents", "model", "instruction", "truncate", NULL};
    static const char *const tei_keys[] = {"query", "texts", "model", "raw_scores", "return_text", "truncate",
                                           "truncation_direction", NULL};
    ragd_served_model *sm;
    if (!r->json && !jv_parse_body(r)) return HTTP_REPLY;
    if (shape == SH_RAGD && json_object_get(r->json, "texts")) { /* TEI's shape on the same path */
        if (json_object_get(r->json, "documents")) {
            http_error(r, 400, "texts", "conflicting_fields",
                       "the body has both 'texts' (TEI's shape) and 'documents' (ragd's): send one of them");
            return HTTP_REPLY;
        }
        shape = SH_TEI;
        r->tei = true;
    }
    if (shape == SH_RAGD && !jv_check_keys(r, keys)) return HTTP_REPLY;
    if (shape == SH_TEI && !jv_check_keys(r, tei_keys)) return HTTP_REPLY;
    if (!jv_model(r, RAGD_ROLE_RERANK, &sm)) return HTTP_REPLY;
    rerank_api *a = ragd_xcalloc(1, sizeof *a);
    r->api = a;
    r->api_free = rerank_api_free;
    a->shape = shape;
    bool truncate = false;
    size_t qlen = 0;
    const char *docs_key = "documents", *query_key = "query";
    if (!jv_string(r, "instruction", false, &a->instruction, NULL)) return HTTP_REPLY;
    if (!a->instruction) a->instruction = RAGD_RERANK_DEFAULT_INSTRUCTION;
    json_t *docs = NULL;
    if (shape == SH_NIM) { /* query {"text"}, passages [{"text"}], truncate NONE | END */
        query_key = "query.text", docs_key = "passages";
        const json_t *q = json_object_get(r->json, "query");
        const json_t *qt = json_is_object(q) ? json_object_get(q, "text") : NULL;
        if (!q || json_is_null(q)) return http_error(r, 400, "query", "missing_field", "missing required field 'query'"), HTTP_REPLY;
        if (!qt || !json_is_string(qt))
            return http_error(r, 400, "query", "invalid_type", "field 'query' must be {\"text\": string}"), HTTP_REPLY;
        a->query = json_string_value(qt), qlen = json_string_length(qt);
        if (!jv_truncate_mode(r, false, &truncate)) return HTTP_REPLY;
        docs = json_object_get(r->json, "passages");
    } else if (shape == SH_SCORE) { /* text_1 vs text_2 */
        query_key = "text_1", docs_key = "text_2";
        const json_t *l1, *l2;
        const char *s1, *s2;
        if (!str_or_list(r, "text_1", &l1, &s1) || !str_or_list(r, "text_2", &l2, &s2)) return HTTP_REPLY;
        if (l1 && !l2) return http_error(r, 400, "text_2", "invalid_type", "with 'text_1' a list, 'text_2' must be a list of the same length"), HTTP_REPLY;
        if (l1 && json_array_size(l1) != json_array_size(l2))
            return http_error(r, 400, "text_2", "invalid_value", "'text_1' has %zu entries and 'text_2' %zu: two lists pair up "
                              "one to one", json_array_size(l1), json_array_size(l2)), HTTP_REPLY;
        if (l1) {
            a->queries = l1;
            a->query = json_string_value(json_array_get(l1, 0));
        } else {
            a->query = s1;
        }
        qlen = strlen(a->query);
        int64_t tpt = 0;
        bool has_tpt = false;
        if (!jv_int(r, "truncate_prompt_tokens", 1, 1 << 30, &tpt, &has_tpt)) return HTTP_REPLY;
        if (has_tpt) truncate = true, r->limit_cap = (int)(tpt < (1 << 30) ? tpt : (1 << 30));
        if (l2) docs = (json_t *)l2;
        else {
            a->owned = json_array(); /* one text_2: a one-element list of it */
            json_array_append_new(a->owned, json_string(s2));
            docs = a->owned;
        }
    } else if (shape == SH_KSERVE) { /* query: BYTES [1]; documents: BYTES [n] */
        query_key = "inputs.query.data", docs_key = "inputs.documents.data";
        const json_t *q = json_is_array(kq) && json_array_size(kq) == 1 ? json_array_get(kq, 0) : NULL;
        if (!json_is_string(q))
            return http_error(r, 400, "inputs", "invalid_value", "the 'query' input must hold exactly one string"), HTTP_REPLY;
        a->query = json_string_value(q), qlen = json_string_length(q);
        docs = (json_t *)kd;
    } else if (shape == SH_TEI) { /* query, texts, raw_scores, return_text, truncate, truncation_direction */
        docs_key = "texts";
        bool left = false;
        if (!jv_string(r, "query", true, &a->query, &qlen) || !jv_bool(r, "truncate", &truncate, NULL) ||
            !api_tei_direction(r, &left) || !jv_bool(r, "raw_scores", &a->raw_scores, NULL) ||
            !jv_bool(r, "return_text", &a->return_docs, NULL))
            return HTTP_REPLY;
        a->trunc.left = left;
        docs = json_object_get(r->json, "texts");
    } else {
        if (!jv_string(r, "query", true, &a->query, &qlen) || !jv_bool(r, "truncate", &truncate, NULL)) return HTTP_REPLY;
        docs = json_object_get(r->json, "documents");
    }
    if (!qlen) return http_error(r, 400, query_key, "empty_input", "field '%s' is an empty string", query_key), HTTP_REPLY;
    if (shape == SH_V1 || shape == SH_COHERE2) {
        int64_t top_n = 0;
        bool rd = false, has_rd = false;
        if (!jv_int(r, "top_n", 1, MAX_DOCS, &top_n, NULL)) return HTTP_REPLY;
        if (shape == SH_V1 && !jv_bool(r, "return_documents", &rd, &has_rd)) return HTTP_REPLY;
        a->top_n = (int)top_n;
        a->return_docs = shape == SH_V1 && (has_rd ? rd : true);
    }
    if (shape == SH_COHERE2) { /* Cohere cuts long documents (max_tokens_per_doc, default 4096) */
        int64_t mt = 0;
        bool has_mt = false;
        if (!jv_int(r, "max_tokens_per_doc", 1, 1 << 30, &mt, &has_mt)) return HTTP_REPLY;
        truncate = true;
        if (has_mt) r->limit_cap = -(int)mt; /* resolved below, once the query's tokens are known */
    }
    a->docs = docs;
    if (!docs || json_is_null(docs))
        return http_error(r, 400, docs_key, "missing_field", "missing required field '%s'", docs_key), HTTP_REPLY;
    if (!json_is_array(docs))
        return http_error(r, 400, docs_key, "invalid_type", "field '%s' must be an array", docs_key), HTTP_REPLY;
    size_t n = json_array_size(docs);
    if (!n) return http_error(r, 400, docs_key, "empty_input", "field '%s' is an empty list", docs_key), HTTP_REPLY;
    if (n > MAX_DOCS)
        return http_error(r, 400, docs_key, "too_many_inputs", "field '%s' has %zu entries; the limit is %d", docs_key, n,
                          MAX_DOCS),
               HTTP_REPLY;
    int limit = sm->max_len[RAGD_ROLE_RERANK];
    /* cross-encoders: the tokenizer truncates the pair (longest_first, as HF's truncation=True): to the
     * limit with "truncate", not at all on TEI's shape without it (a long pair is then refused, 413), else
     * to the model's max length (the default of ragd_rerank_prepare) */
    const bool cross = ragd_rerank_is_cross_encoder(sm->model);
    if (shape == SH_TEI && truncate && a->trunc.left && !cross)
        return http_error(r, 400, "truncation_direction", "unsupported",
                          "truncation_direction \"Left\" needs a cross-encoder; model %s keeps the head of a document",
                          sm->name),
               HTTP_REPLY;
    if (cross && (truncate || shape == SH_TEI)) {
        int tl = r->limit_cap > 0 && r->limit_cap < limit ? r->limit_cap : limit;
        a->has_trunc = true;
        a->trunc.strategy = truncate ? RAGD_TOK_TRUNC_LONGEST_FIRST : RAGD_TOK_TRUNC_NONE;
        a->trunc.max_length = (size_t)tl;
    }
    /* the query (in the template) comes with every document: when it alone leaves no room for a
     * document, say so about the query, not about documents[0] (a cross-encoder that truncates the pair
     * cuts the query too, as HF does) */
    ragd_tok_ids probe = {0};
    ragd_err err = {0};
    ragd_tok_trunc none = {RAGD_TOK_TRUNC_NONE, 0, false};
    ragd_status st = ragd_rerank_prepare_trunc(sm->model, a->query, "", a->instruction, cross ? &none : NULL, &probe,
                                               NULL, &err);
    size_t qtok = probe.n;
    ragd_tok_ids_free(&probe);
    const bool query_cut = cross && !(a->has_trunc && a->trunc.strategy == RAGD_TOK_TRUNC_NONE);
    if (st) {
        http_error_status(r, st, query_key, ragd_err_msg(&err));
        ragd_err_free(&err);
        return HTTP_REPLY;
    }
    if (qtok >= (size_t)limit && !query_cut)
        return http_error(r, 400, query_key, "context_length_exceeded",
                          "the query has %zu tokens with the reranker's template; this model's limit is %d tokens per "
                          "document, which leaves no room for a document", qtok, limit),
               HTTP_REPLY;
    if (r->limit_cap < 0) r->limit_cap = (int)qtok - r->limit_cap; /* Cohere: the document's tokens after the query's */
    const bool objects = shape == SH_V1 || shape == SH_NIM;  /* documents may be {"text": str} */
    r->seq_start = ragd_xcalloc(n + 1, sizeof(int32_t));
    a->seg_a_all = ragd_xcalloc(n, sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_array_get(docs, i);
        if (objects && json_is_object(d)) d = json_object_get(d, "text");
        if (!d || !json_is_string(d)) {
            if (shape == SH_NIM) http_error(r, 400, docs_key, "invalid_type", "passages[%zu] must be {\"text\": string}", i);
            else if (objects)
                http_error(r, 400, docs_key, "invalid_type", "documents[%zu] must be a string or {\"text\": string}", i);
            else http_error(r, 400, docs_key, "invalid_type", "%s[%zu] must be a string", docs_key, i);
            return HTTP_REPLY;
        }
        if (!json_string_length(d))
            return http_error(r, 400, docs_key, "empty_input", "%s[%zu] is an empty string", docs_key, i), HTTP_REPLY;
        if (a->queries) { /* vLLM pairs */
            const json_t *q = json_array_get(a->queries, i);
            if (!json_string_length(q))
                return http_error(r, 400, "text_1", "empty_input", "text_1[%zu] is an empty string", i), HTTP_REPLY;
            a->query = json_string_value(q);
        }
        if (!api_prepare_text_limit(r, RAGD_ROLE_RERANK, docs_key, (int)i, json_string_value(d), json_string_length(d),
                                    truncate, prep_rerank))
            return HTTP_REPLY;
        r->seq_start[i + 1] = (int32_t)r->toks.n;
        a->seg_a_all[i] = a->seg_a;
    }
    r->outv = malloc(n * sizeof(float));
    if (!r->outv) return http_error(r, 500, NULL, "out_of_memory", "cannot allocate %zu scores", n), HTTP_REPLY;
    r->task.kind = RAGD_TASK_RERANK;
    r->task.tokens = r->toks.ids;
    r->task.seq_start = r->seq_start;
    r->task.n_seqs = (int)n;
    r->task.seg_a = a->seg_a_all;
    r->task.out = r->outv;
    r->task.score_logit = shape == SH_NIM || (shape == SH_TEI && a->raw_scores);
    r->finish = rerank_finish;
    return http_submit(r) ? HTTP_PENDING : HTTP_REPLY;
}

http_outcome api_rerank(http_req *r) { return rerank_common(r, SH_RAGD, NULL, NULL); }
http_outcome api_v1_rerank(http_req *r) { return rerank_common(r, SH_V1, NULL, NULL); }
http_outcome api_v1_ranking(http_req *r) { return rerank_common(r, SH_NIM, NULL, NULL); }
http_outcome api_v2_rerank(http_req *r) { return rerank_common(r, SH_COHERE2, NULL, NULL); }
http_outcome api_score(http_req *r) { return rerank_common(r, SH_SCORE, NULL, NULL); }
http_outcome api_kserve_rerank(http_req *r, const json_t *query, const json_t *documents) {
    return rerank_common(r, SH_KSERVE, query, documents);
}
