/* api_rerank.c — POST /rerank and POST /v1/rerank (Jina / Cohere / vLLM shape).
 *
 *   /rerank     {"query", "documents": [str], "model"?, "instruction"?, "truncate"?}
 *               → {"scores": [f32 per document], "order": [indices by descending score], "model"}
 *   /v1/rerank  {"query", "documents": [str | {"text": str}], "model"?, "top_n"?, "return_documents"?,
 *                "instruction"?, "truncate"?}
 *               → {"id", "results": [{"index", "relevance_score", "document"?: {"text"}}] sorted by
 *                  descending score, "model", "usage": {"prompt_tokens", "total_tokens"}}
 *
 * Each document is one sequence built by ragd_rerank_prepare (prefix + body + suffix, as the CLI
 * does); a too-long document is cut (truncate) or refused naming its index. Ties keep input order.
 */
#include "http/http_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_DOCS 4096

typedef struct rerank_api {
    bool v1, return_docs;
    int top_n;
    const char *query, *instruction;
    char *scratch;   /* NUL-terminated copy of a document prefix while truncating */
    size_t scratch_cap;
} rerank_api;

static void rerank_api_free(void *p) {
    rerank_api *a = p;
    if (a) free(a->scratch);
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
    return ragd_rerank_prepare(r->sm->model, a->query, a->scratch, a->instruction, out, err);
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
    json_t *docs = json_object_get(r->json, "documents");
    if (!a->v1) {
        ragd_buf_puts(b, "{\"scores\":[");
        for (int i = 0; i < n; i++) {
            if (i) ragd_buf_putc(b, ',');
            ragd_buf_json_f32(b, r->outv[i]);
        }
        ragd_buf_puts(b, "],\"order\":[");
        for (int i = 0; i < n; i++) ragd_buf_printf(b, "%s%d", i ? "," : "", order[i]);
        ragd_buf_puts(b, "],\"model\":");
        ragd_buf_json_str(b, r->sm->name, strlen(r->sm->name));
        ragd_buf_printf(b, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}", (long long)r->task.prompt_tokens,
                        (long long)r->task.prompt_tokens);
    } else {
        ragd_buf_printf(b, "{\"id\":\"rerank-%s\",\"results\":[", r->id);
        int k = a->top_n > 0 && a->top_n < n ? a->top_n : n;
        for (int i = 0; i < k; i++) {
            int idx = order[i];
            ragd_buf_printf(b, "%s{\"index\":%d,\"relevance_score\":", i ? "," : "", idx);
            ragd_buf_json_f32(b, r->outv[idx]);
            if (a->return_docs) {
                const char *t = doc_text(json_array_get(docs, (size_t)idx));
                ragd_buf_puts(b, ",\"document\":{\"text\":");
                ragd_buf_json_str(b, t, strlen(t));
                ragd_buf_putc(b, '}');
            }
            ragd_buf_putc(b, '}');
        }
        ragd_buf_puts(b, "],\"model\":");
        ragd_buf_json_str(b, r->sm->name, strlen(r->sm->name));
        ragd_buf_printf(b, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}", (long long)r->task.prompt_tokens,
                        (long long)r->task.prompt_tokens);
    }
    free(order);
    http_reply_json(r, 200);
}

static http_outcome rerank_common(http_req *r, bool v1) {
    static const char *const keys[] = {"query", "documents", "model", "instruction", "truncate", NULL};
    ragd_served_model *sm;
    if (!jv_parse_body(r)) return HTTP_REPLY;
    if (!v1 && !jv_check_keys(r, keys)) return HTTP_REPLY;
    if (!jv_model(r, RAGD_ROLE_RERANK, &sm)) return HTTP_REPLY;
    rerank_api *a = ragd_xcalloc(1, sizeof *a);
    r->api = a;
    r->api_free = rerank_api_free;
    a->v1 = v1;
    bool truncate = false;
    size_t qlen;
    if (!jv_string(r, "query", true, &a->query, &qlen) || !jv_string(r, "instruction", false, &a->instruction, NULL) ||
        !jv_bool(r, "truncate", &truncate, NULL))
        return HTTP_REPLY;
    if (!qlen) return http_error(r, 400, "query", "empty_input", "field 'query' is an empty string"), HTTP_REPLY;
    if (!a->instruction) a->instruction = RAGD_RERANK_DEFAULT_INSTRUCTION;
    if (v1) {
        int64_t top_n = 0;
        bool rd = false, has_rd;
        if (!jv_int(r, "top_n", 1, MAX_DOCS, &top_n, NULL) || !jv_bool(r, "return_documents", &rd, &has_rd))
            return HTTP_REPLY;
        a->top_n = (int)top_n;
        a->return_docs = has_rd ? rd : true;
    }
    json_t *docs = json_object_get(r->json, "documents");
    if (!docs || json_is_null(docs))
        return http_error(r, 400, "documents", "missing_field", "missing required field 'documents'"), HTTP_REPLY;
    if (!json_is_array(docs))
        return http_error(r, 400, "documents", "invalid_type", "field 'documents' must be an array of strings"), HTTP_REPLY;
    size_t n = json_array_size(docs);
    if (!n) return http_error(r, 400, "documents", "empty_input", "field 'documents' is an empty list"), HTTP_REPLY;
    if (n > MAX_DOCS)
        return http_error(r, 400, "documents", "too_many_inputs", "field 'documents' has %zu entries; the limit is %d", n,
                          MAX_DOCS),
               HTTP_REPLY;
    /* the query (in the template) comes with every document: when it alone leaves no room for a
     * document, say so about the query, not about documents[0] */
    ragd_tok_ids probe = {0};
    ragd_err err = {0};
    ragd_status st = ragd_rerank_prepare(sm->model, a->query, "", a->instruction, &probe, &err);
    size_t qtok = probe.n;
    ragd_tok_ids_free(&probe);
    int limit = sm->max_len[RAGD_ROLE_RERANK];
    if (st) {
        http_error_status(r, st, "query", ragd_err_msg(&err));
        ragd_err_free(&err);
        return HTTP_REPLY;
    }
    if (qtok >= (size_t)limit)
        return http_error(r, 400, "query", "context_length_exceeded",
                          "the query has %zu tokens with the reranker's template; this model's limit is %d tokens per "
                          "document, which leaves no room for a document", qtok, limit),
               HTTP_REPLY;
    r->seq_start = ragd_xcalloc(n + 1, sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_array_get(docs, i);
        if (v1 && json_is_object(d)) d = json_object_get(d, "text");
        if (!d || !json_is_string(d))
            return http_error(r, 400, "documents", "invalid_type",
                              v1 ? "documents[%zu] must be a string or {\"text\": string}" : "documents[%zu] must be a string", i),
                   HTTP_REPLY;
        if (!json_string_length(d))
            return http_error(r, 400, "documents", "empty_input", "documents[%zu] is an empty string", i), HTTP_REPLY;
        if (!api_prepare_text_limit(r, RAGD_ROLE_RERANK, "documents", (int)i, json_string_value(d), json_string_length(d),
                                    truncate, prep_rerank))
            return HTTP_REPLY;
        r->seq_start[i + 1] = (int32_t)r->toks.n;
    }
    r->outv = malloc(n * sizeof(float));
    if (!r->outv) return http_error(r, 500, NULL, "out_of_memory", "cannot allocate %zu scores", n), HTTP_REPLY;
    r->task.kind = RAGD_TASK_RERANK;
    r->task.tokens = r->toks.ids;
    r->task.seq_start = r->seq_start;
    r->task.n_seqs = (int)n;
    r->task.out = r->outv;
    r->finish = rerank_finish;
    return http_submit(r) ? HTTP_PENDING : HTTP_REPLY;
}

http_outcome api_rerank(http_req *r) { return rerank_common(r, false); }
http_outcome api_v1_rerank(http_req *r) { return rerank_common(r, true); }
