/* api_embed.c — POST /embed and POST /v1/embeddings.
 *
 *   /embed          {"texts": [str, ...], "model"?, "dimensions"?, "instruction"?, "truncate"?}
 *                   → {"embeddings": [[f32, ...], ...], "model", "usage"}
 *   /embed (TEI)    {"inputs": str | [str], "normalize"?, "truncate"?, "truncation_direction"?: "Left"|"Right",
 *                    "prompt_name"?, "dimensions"?} → [[f32, ...], ...] (TEI's bare array); chosen by the
 *                   "inputs" key ("inputs" and "texts" together: 400); TEI's error codes (413 too many
 *                   inputs/tokens, 422 an invalid field, 400 empty), ragd's error body
 *   /v1/embeddings  {"input": str | [str] | [int] | [[int]], "model"?, "encoding_format"?: "float"|"base64",
 *                    "dimensions"?, "user"?, "truncate"?}
 *                   → {"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model",
 *                      "usage": {"prompt_tokens", "total_tokens"}}
 *
 * Texts are tokenized here (HTTP thread) exactly as the CLI does (ragd_embed_prepare); the
 * scheduler packs them with other requests' sequences. An input longer than the model's limit is a
 * 400 naming its index, token count and the limit, unless "truncate": true (encoders, and every model
 * on TEI's shape: the tokenizer cuts the ids before its post-processor, as HF's truncation=True; other
 * models: the text is cut at a character boundary to the longest prefix that fits). base64 is the
 * little-endian f32 bytes.
 *
 *   /v1/embeddings also takes NIM's "input_type": "query" | "passage" (a query gets the retrieval
 *   instruction below, a passage none; an explicit "instruction" wins).
 *   /v2/embed (Cohere v2)  {"model"?, "texts": [str], "input_type"?: search_query | search_document |
 *                    classification | clustering, "embedding_types"?: [float | base64 | binary | ubinary],
 *                    "truncate"?: NONE | END (default END, as Cohere)}
 *                   → {"id", "embeddings": {"float": [[f32]], "base64": [str], "binary": [[int8]], "ubinary":
 *                      [[uint8]]}, "meta": {"api_version", "billed_units": {"input_tokens"}}, "response_type":
 *                      "embeddings_by_type"}. search_query gets the retrieval instruction, the other types
 *                   none. binary/ubinary pack one sign bit per dimension, most significant bit first (numpy's
 *                   packbits of x > 0; binary is that − 128 as int8), as Cohere and sentence-transformers do.
 *                   int8/uint8 (Cohere's calibrated scalar quantization, not published) answer 400.
 */
#include "http/http_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_INPUTS API_MAX_INPUTS

/* The query instruction for input_type query / search_query: Qwen3-Embedding's documented retrieval task. */
#define RETRIEVAL_INSTRUCTION "Given a web search query, retrieve relevant passages that answer the query"

enum { ET_FLOAT = 1, ET_BASE64 = 2, ET_BINARY = 4, ET_UBINARY = 8 };

typedef struct embed_api {
    bool v1, base64;
    bool tei;         /* /embed {"inputs"}: TEI's bare [[f32]] */
    int cohere_types; /* /v2/embed: ET_* requested (0: not a Cohere request) */
    bool kserve;      /* POST /v2/models/{name}/infer */
    ragd_embed_opts o;
    int dims;
} embed_api;

static ragd_status prep_embed(http_req *r, const char *text, size_t len, ragd_tok_ids *out, ragd_err *err) {
    embed_api *a = r->api;
    return ragd_embed_prepare(r->sm->model, text, len, &a->o, out, err);
}

bool api_prepare_text_limit(http_req *r, ragd_role role, const char *param, int index, const char *text, size_t len,
                            bool truncate,
                            ragd_status (*prep)(http_req *, const char *, size_t, ragd_tok_ids *, ragd_err *)) {
    int limit = r->sm->max_len[role];
    if (r->limit_cap > 0 && r->limit_cap < limit) limit = r->limit_cap;
    size_t before = r->toks.n;
    ragd_err err = {0};
    ragd_status st = prep(r, text, len, &r->toks, &err);
    if (st) {
        char msg[768];
        snprintf(msg, sizeof msg, "%s[%d]: %s", param, index, ragd_err_msg(&err));
        http_error_status(r, st, param, msg);
        ragd_err_free(&err);
        return false;
    }
    size_t n = r->toks.n - before;
    if (n <= (size_t)limit) return true;
    if (!truncate) {
        http_error(r, 400, param, "context_length_exceeded",
                   "%s[%d] has %zu tokens, more than this model's limit of %d (send \"truncate\": true to cut it)",
                   param, index, n, limit);
        return false;
    }
    /* longest prefix (at a UTF-8 character boundary) whose tokens fit: binary search on bytes. A byte
     * position mo stands for the prefix up to the character boundary at or below it (mid); the search
     * moves lo/hi by mo, not mid, so it always progresses (moving by mid looped forever when mo was
     * inside a multi-byte character: found by fuzz_http, seed regress_truncate_utf8) */
    ragd_tok_ids probe = {0};
    size_t lo = 0, hi = len, best = 0;
    bool found = false;
    while (lo <= hi) {
        const size_t mo = lo + (hi - lo) / 2;
        size_t mid = mo;
        while (mid > 0 && mid < len && ((unsigned char)text[mid] & 0xc0) == 0x80) mid--;
        probe.n = 0;
        st = prep(r, text, mid, &probe, &err);
        if (st) break;
        if (probe.n <= (size_t)limit) {
            best = mid;
            found = true;
            lo = mo + 1;
        } else {
            if (mo == 0) break;
            hi = mo - 1;
        }
    }
    if (st || !found) {
        ragd_tok_ids_free(&probe);
        ragd_err_free(&err);
        http_error(r, 400, param, "context_length_exceeded",
                   "%s[%d] cannot be truncated to %d tokens (the template alone is longer)", param, index, limit);
        return false;
    }
    probe.n = 0;
    st = prep(r, text, best, &probe, &err);
    RAGD_ASSERT(st == RAGD_OK && probe.n <= (size_t)limit);
    r->toks.n = before;
    for (size_t i = 0; i < probe.n; i++) ragd_tok_ids_push(&r->toks, probe.ids[i]);
    ragd_tok_ids_free(&probe);
    return true;
}

/* Closes the sequence that ends at r->toks.n. */
static void seq_close(http_req *r, int i) { r->seq_start[i + 1] = (int32_t)r->toks.n; }

static void b64(ragd_buf *b, const uint8_t *p, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        char o[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        ragd_buf_append(b, o, 4);
    }
}

/* v[0..d) as a JSON array of numbers */
static void f32_array(ragd_buf *b, const float *v, int d) {
    ragd_buf_putc(b, '[');
    for (int j = 0; j < d; j++) {
        if (j) ragd_buf_putc(b, ',');
        ragd_buf_json_f32(b, v[j]);
    }
    ragd_buf_putc(b, ']');
}

/* n vectors of d: [[...],[...]] */
static void f32_arrays(ragd_buf *b, const float *v, int n, int d) {
    ragd_buf_putc(b, '[');
    for (int i = 0; i < n; i++) {
        if (i) ragd_buf_putc(b, ',');
        f32_array(b, v + (size_t)i * d, d);
    }
    ragd_buf_putc(b, ']');
}

static void b64_f32(ragd_buf *b, const float *v, int d) {
    uint8_t *bytes = ragd_xmalloc((size_t)d * 4);
    for (int j = 0; j < d; j++) {
        uint32_t u;
        memcpy(&u, &v[j], 4);
        bytes[4 * j] = (uint8_t)u;
        bytes[4 * j + 1] = (uint8_t)(u >> 8);
        bytes[4 * j + 2] = (uint8_t)(u >> 16);
        bytes[4 * j + 3] = (uint8_t)(u >> 24);
    }
    ragd_buf_putc(b, '"');
    b64(b, bytes, (size_t)d * 4);
    ragd_buf_putc(b, '"');
    free(bytes);
}

/* Cohere v2's embeddings_by_type body */
static void cohere_finish(http_req *r, ragd_buf *b, int n, int d, int64_t pt) {
    embed_api *a = r->api;
    ragd_buf_printf(b, "{\"id\":\"embed-%s\",\"embeddings\":{", r->id);
    bool first_type = true;
    for (int ty = ET_FLOAT; ty <= ET_UBINARY; ty <<= 1) {
        if (!(a->cohere_types & ty)) continue;
        static const char *const names[] = {"float", "base64", "binary", "ubinary"};
        const char *nm = names[ty == ET_FLOAT ? 0 : ty == ET_BASE64 ? 1 : ty == ET_BINARY ? 2 : 3];
        ragd_buf_printf(b, "%s\"%s\":[", first_type ? "" : ",", nm);
        first_type = false;
        for (int i = 0; i < n; i++) {
            const float *v = r->outv + (size_t)i * d; // [d]
            if (i) ragd_buf_putc(b, ',');
            if (ty == ET_BASE64) {
                b64_f32(b, v, d);
                continue;
            }
            if (ty == ET_FLOAT) {
                f32_array(b, v, d);
                continue;
            }
            ragd_buf_putc(b, '['); /* one bit per dimension (x > 0), MSB first, zero-padded to a whole byte */
            for (int j0 = 0; j0 < d; j0 += 8) {
                unsigned byte = 0;
                for (int k = 0; k < 8; k++) byte = byte << 1 | (unsigned)(j0 + k < d && v[j0 + k] > 0.f);
                ragd_buf_printf(b, "%s%d", j0 ? "," : "", ty == ET_BINARY ? (int)byte - 128 : (int)byte);
            }
            ragd_buf_putc(b, ']');
        }
        ragd_buf_putc(b, ']');
    }
    ragd_buf_printf(b, "},\"meta\":{\"api_version\":{\"version\":\"2\"},\"billed_units\":{\"input_tokens\":%lld}},"
                       "\"response_type\":\"embeddings_by_type\",\"model\":", (long long)pt);
    ragd_buf_json_str(b, r->sm->name, strlen(r->sm->name));
    ragd_buf_printf(b, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}", (long long)pt, (long long)pt);
}

static void embed_finish(http_req *r) {
    embed_api *a = r->api;
    int n = r->task.n_seqs, d = a->dims;
    for (size_t i = 0; i < (size_t)n * (size_t)d; i++)
        if (!isfinite(r->outv[i])) {
            http_error_status(r, RAGD_EINTERNAL, NULL, "the model produced a non-finite embedding");
            return;
        }
    ragd_buf *b = &r->out;
    ragd_buf_reset(b);
    int64_t pt = r->task.prompt_tokens;
    if (a->cohere_types) {
        cohere_finish(r, b, n, d, pt);
        http_reply_json(r, 200);
        return;
    }
    if (a->kserve) { /* KServe v2 infer response: one FP32 tensor [n, d], row-major */
        ragd_buf_puts(b, "{\"model_name\":");
        ragd_buf_json_str(b, r->sm->name, strlen(r->sm->name));
        ragd_buf_printf(b, ",\"model_version\":\"1\",\"outputs\":[{\"name\":\"embedding\",\"datatype\":\"FP32\","
                           "\"shape\":[%d,%d],\"data\":", n, d);
        f32_array(b, r->outv, n * d);
        ragd_buf_puts(b, "}]}");
        http_reply_json(r, 200);
        return;
    }
    if (a->tei) { /* TEI: a bare array of vectors */
        f32_arrays(b, r->outv, n, d);
        http_reply_json(r, 200);
        return;
    }
    if (!a->v1) {
        ragd_buf_puts(b, "{\"embeddings\":");
        f32_arrays(b, r->outv, n, d);
        ragd_buf_puts(b, ",\"model\":");
    } else {
        ragd_buf_puts(b, "{\"object\":\"list\",\"data\":[");
        for (int i = 0; i < n; i++) {
            ragd_buf_printf(b, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":", i ? "," : "", i);
            const float *v = r->outv + (size_t)i * d; // [d]
            if (a->base64) b64_f32(b, v, d);
            else f32_array(b, v, d);
            ragd_buf_putc(b, '}');
        }
        ragd_buf_puts(b, "],\"model\":");
    }
    ragd_buf_json_str(b, r->sm->name, strlen(r->sm->name));
    ragd_buf_printf(b, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}", (long long)pt, (long long)pt);
    http_reply_json(r, 200);
}

/* Common tail: task setup and submit. The JSON tree is not needed once the inputs are tokens: it is
 * freed before the task waits in the queue (a body of token ids is the largest tree a request makes). */
static http_outcome embed_submit(http_req *r, int n) {
    embed_api *a = r->api;
    a->o.instruction = NULL; /* pointed into the tree; only tokenization used it */
    a->o.prompt = NULL;
    json_decref(r->json);
    r->json = NULL;
    http_mem_release(r, r->mem_json);
    r->mem_json = 0;
    r->outv = malloc((size_t)n * (size_t)a->dims * sizeof(float));
    if (!r->outv) {
        http_error(r, 500, NULL, "out_of_memory", "cannot allocate %d × %d floats", n, a->dims);
        return HTTP_REPLY;
    }
    r->task.kind = RAGD_TASK_EMBED;
    r->task.tokens = r->toks.ids;
    r->task.seq_start = r->seq_start;
    r->task.n_seqs = n;
    r->task.embed = a->o;
    r->task.out = r->outv;
    r->finish = embed_finish;
    return http_submit(r) ? HTTP_PENDING : HTTP_REPLY;
}

/* "truncate" for an encoder (or any model when `always`): the tokenizer cuts the ids to the limit before
 * its post-processor, exactly as HF's truncation=True (and TEI) do; other models keep the longest text
 * prefix that fits (api_prepare_text_limit). */
static void embed_trunc(http_req *r, embed_api *a, bool truncate, bool left, bool always) {
    if (!truncate || !(always || ragd_model_is_encoder(r->sm->model))) return;
    int limit = r->sm->max_len[RAGD_ROLE_EMBED];
    if (r->limit_cap > 0 && r->limit_cap < limit) limit = r->limit_cap;
    a->o.trunc = (ragd_tok_trunc){RAGD_TOK_TRUNC_LONGEST_FIRST, (size_t)limit, left};
}

static bool common_opts(http_req *r, embed_api *a) {
    const ragd_model *m = r->sm->model;
    int64_t dims = 0;
    bool has_dims;
    if (!jv_int(r, "dimensions", 1, m->cfg.n_embd, &dims, &has_dims)) return false;
    a->o.dimensions = has_dims ? (int)dims : 0;
    a->o.normalize = true;
    a->dims = ragd_embed_dims(m, &a->o);
    return true;
}

/* The texts of a request (a JSON array of non-empty strings under `param`) → tokens, one sequence each,
 * then submit. */
static http_outcome embed_texts(http_req *r, const json_t *texts, const char *param, bool truncate) {
    if (!texts) return http_error(r, 400, param, "missing_field", "missing required field '%s'", param), HTTP_REPLY;
    if (!json_is_array(texts))
        return http_error(r, 400, param, "invalid_type", "field '%s' must be an array of strings", param), HTTP_REPLY;
    size_t n = json_array_size(texts);
    if (!n) return http_error(r, 400, param, "empty_input", "field '%s' is an empty list", param), HTTP_REPLY;
    if (n > MAX_INPUTS)
        return http_error(r, 400, param, "too_many_inputs", "field '%s' has %zu entries; the limit is %d", param, n,
                          MAX_INPUTS),
               HTTP_REPLY;
    r->seq_start = ragd_xcalloc(n + 1, sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(texts, i);
        if (!json_is_string(t))
            return http_error(r, 400, param, "invalid_type", "%s[%zu] must be a string", param, i), HTTP_REPLY;
        if (!json_string_length(t))
            return http_error(r, 400, param, "empty_input", "%s[%zu] is an empty string", param, i), HTTP_REPLY;
        if (!api_prepare_text_limit(r, RAGD_ROLE_EMBED, param, (int)i, json_string_value(t), json_string_length(t),
                                    truncate, prep_embed))
            return HTTP_REPLY;
        seq_close(r, (int)i);
    }
    return embed_submit(r, (int)n);
}

/* TEI's "truncation_direction": absent/null → Right; "Left" | "Right" (TEI's spelling; lower case accepted). */
bool api_tei_direction(http_req *r, bool *left) {
    const char *dir = NULL;
    *left = false;
    if (!jv_string(r, "truncation_direction", false, &dir, NULL)) return false;
    if (!dir || !strcmp(dir, "Right") || !strcmp(dir, "right")) return true;
    if (!strcmp(dir, "Left") || !strcmp(dir, "left")) {
        *left = true;
        return true;
    }
    http_error(r, 400, "truncation_direction", "invalid_value",
               "field 'truncation_direction' must be \"Left\" or \"Right\", not \"%s\"", dir);
    return false;
}

/* POST /embed in TEI's shape: {"inputs": str | [str], "normalize"?, "truncate"?, "truncation_direction"?,
 * "prompt_name"?, "dimensions"?} → [[f32, ...], ...]. Truncation is the tokenizer's (ids cut to the limit,
 * then the post-processor), as TEI does; errors take TEI's codes (errors.c). */
static http_outcome tei_embed(http_req *r) {
    static const char *const keys[] = {"inputs", "model", "normalize", "truncate", "truncation_direction",
                                       "prompt_name", "dimensions", NULL};
    ragd_served_model *sm;
    r->tei = true;
    if (!jv_check_keys(r, keys) || !jv_model(r, RAGD_ROLE_EMBED, &sm)) return HTTP_REPLY;
    embed_api *a = ragd_xcalloc(1, sizeof *a);
    r->api = a;
    r->api_free = free;
    a->tei = true;
    bool truncate = false, left = false, norm = true, has_norm = false;
    const char *prompt_name = NULL;
    if (!common_opts(r, a) || !jv_bool(r, "truncate", &truncate, NULL) || !api_tei_direction(r, &left) ||
        !jv_bool(r, "normalize", &norm, &has_norm) || !jv_string(r, "prompt_name", false, &prompt_name, NULL))
        return HTTP_REPLY;
    a->o.normalize = norm;
    if (prompt_name) { /* config_sentence_transformers.json prompts: ragd keeps "query" */
        if (strcmp(prompt_name, "query") || !sm->model->query_prompt) {
            http_error(r, 400, "prompt_name", "invalid_value",
                       "model %s has no prompt named '%s' (its config_sentence_transformers.json prompts: %s)", sm->name,
                       prompt_name, sm->model->query_prompt ? "query" : "none");
            return HTTP_REPLY;
        }
        a->o.prompt = sm->model->query_prompt;
    }
    embed_trunc(r, a, truncate, left, true);
    json_t *in = json_object_get(r->json, "inputs");
    if (json_is_string(in)) { /* one text: still [[...]] */
        if (!json_string_length(in)) {
            http_error(r, 400, "inputs", "empty_input", "field 'inputs' is an empty string");
            return HTTP_REPLY;
        }
        r->seq_start = ragd_xcalloc(2, sizeof(int32_t));
        if (!api_prepare_text_limit(r, RAGD_ROLE_EMBED, "inputs", 0, json_string_value(in), json_string_length(in),
                                    truncate, prep_embed))
            return HTTP_REPLY;
        seq_close(r, 0);
        return embed_submit(r, 1);
    }
    if (in && !json_is_null(in) && !json_is_array(in)) {
        http_error(r, 400, "inputs", "invalid_type", "field 'inputs' must be a string or an array of strings");
        return HTTP_REPLY;
    }
    return embed_texts(r, in, "inputs", truncate);
}

http_outcome api_embed(http_req *r) {
    static const char *const keys[] = {"texts", "model", "dimensions", "instruction", "truncate", NULL};
    ragd_served_model *sm;
    if (!jv_parse_body(r)) return HTTP_REPLY;
    bool has_inputs = json_object_get(r->json, "inputs") != NULL, has_texts = json_object_get(r->json, "texts") != NULL;
    if (has_inputs && has_texts) {
        http_error(r, 400, "inputs", "conflicting_fields",
                   "the body has both 'inputs' (TEI's shape) and 'texts' (ragd's): send one of them");
        return HTTP_REPLY;
    }
    if (has_inputs) return tei_embed(r);
    if (!jv_check_keys(r, keys) || !jv_model(r, RAGD_ROLE_EMBED, &sm)) return HTTP_REPLY;
    embed_api *a = ragd_xcalloc(1, sizeof *a);
    r->api = a;
    r->api_free = free;
    bool truncate = false;
    if (!common_opts(r, a) || !jv_string(r, "instruction", false, &a->o.instruction, NULL) ||
        !jv_bool(r, "truncate", &truncate, NULL))
        return HTTP_REPLY;
    embed_trunc(r, a, truncate, false, false);
    return embed_texts(r, json_object_get(r->json, "texts"), "texts", truncate);
}

http_outcome api_v1_embeddings(http_req *r) {
    ragd_served_model *sm;
    if (!jv_parse_body(r) || !jv_model(r, RAGD_ROLE_EMBED, &sm)) return HTTP_REPLY;
    embed_api *a = ragd_xcalloc(1, sizeof *a);
    r->api = a;
    r->api_free = free;
    a->v1 = true;
    bool truncate = false;
    const char *fmt;
    const char *user;
    if (!common_opts(r, a) || !jv_bool(r, "truncate", &truncate, NULL) ||
        !jv_string(r, "encoding_format", false, &fmt, NULL) || !jv_string(r, "user", false, &user, NULL))
        return HTTP_REPLY;
    if (fmt && strcmp(fmt, "float") && strcmp(fmt, "base64"))
        return http_error(r, 400, "encoding_format", "invalid_value",
                          "field 'encoding_format' must be \"float\" or \"base64\", not \"%s\"", fmt),
               HTTP_REPLY;
    a->base64 = fmt && !strcmp(fmt, "base64");
    embed_trunc(r, a, truncate, false, false);
    const char *itype = NULL;
    if (!jv_string(r, "input_type", false, &itype, NULL) || !jv_string(r, "instruction", false, &a->o.instruction, NULL))
        return HTTP_REPLY;
    if (itype) { /* NIM: query | passage */
        if (!strcmp(itype, "query")) {
            if (!a->o.instruction) a->o.instruction = RETRIEVAL_INSTRUCTION;
        } else if (strcmp(itype, "passage")) {
            return http_error(r, 400, "input_type", "invalid_value",
                              "field 'input_type' must be \"query\" or \"passage\", not \"%s\"", itype),
                   HTTP_REPLY;
        }
    }
    json_t *in = json_object_get(r->json, "input");
    if (!in || json_is_null(in)) return http_error(r, 400, "input", "missing_field", "missing required field 'input'"), HTTP_REPLY;
    int n_vocab = sm->model->cfg.n_vocab, limit = sm->max_len[RAGD_ROLE_EMBED];
    if (json_is_string(in)) {
        if (!json_string_length(in)) return http_error(r, 400, "input", "empty_input", "field 'input' is an empty string"), HTTP_REPLY;
        r->seq_start = ragd_xcalloc(2, sizeof(int32_t));
        if (!api_prepare_text_limit(r, RAGD_ROLE_EMBED, "input", 0, json_string_value(in), json_string_length(in),
                                    truncate, prep_embed))
            return HTTP_REPLY;
        seq_close(r, 0);
        return embed_submit(r, 1);
    }
    if (!json_is_array(in))
        return http_error(r, 400, "input", "invalid_type",
                          "field 'input' must be a string, an array of strings, an array of token ids or an array of arrays of token ids"),
               HTTP_REPLY;
    size_t n = json_array_size(in);
    if (!n) return http_error(r, 400, "input", "empty_input", "field 'input' is an empty list"), HTTP_REPLY;
    json_t *first = json_array_get(in, 0);
    if (json_is_integer(first)) { /* one sequence of token ids */
        r->seq_start = ragd_xcalloc(2, sizeof(int32_t));
        if (!jv_token_array(r, in, "input", n_vocab, &r->toks)) return HTTP_REPLY;
        if (r->toks.n > (size_t)limit) {
            if (!truncate)
                return http_error(r, 400, "input", "context_length_exceeded",
                                  "input[0] has %zu tokens, more than this model's limit of %d (send \"truncate\": true to cut it)",
                                  r->toks.n, limit),
                       HTTP_REPLY;
            r->toks.n = (size_t)limit;
        }
        seq_close(r, 0);
        return embed_submit(r, 1);
    }
    if (n > MAX_INPUTS)
        return http_error(r, 400, "input", "too_many_inputs", "field 'input' has %zu entries; the limit is %d", n, MAX_INPUTS),
               HTTP_REPLY;
    r->seq_start = ragd_xcalloc(n + 1, sizeof(int32_t));
    bool strings = json_is_string(first);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(in, i);
        if (strings) {
            if (!json_is_string(e))
                return http_error(r, 400, "input", "invalid_type", "input[%zu] must be a string like input[0]", i), HTTP_REPLY;
            if (!json_string_length(e))
                return http_error(r, 400, "input", "empty_input", "input[%zu] is an empty string", i), HTTP_REPLY;
            if (!api_prepare_text_limit(r, RAGD_ROLE_EMBED, "input", (int)i, json_string_value(e), json_string_length(e),
                                        truncate, prep_embed))
                return HTTP_REPLY;
        } else {
            if (!json_is_array(e))
                return http_error(r, 400, "input", "invalid_type",
                                  "input[%zu] must be an array of token ids (input is a list of token arrays)", i),
                       HTTP_REPLY;
            if (!json_array_size(e))
                return http_error(r, 400, "input", "empty_input", "input[%zu] is an empty token array", i), HTTP_REPLY;
            size_t before = r->toks.n;
            char param[32];
            snprintf(param, sizeof param, "input[%zu]", i);
            if (!jv_token_array(r, e, param, n_vocab, &r->toks)) return HTTP_REPLY;
            if (r->toks.n - before > (size_t)limit) {
                if (!truncate)
                    return http_error(r, 400, "input", "context_length_exceeded",
                                      "input[%zu] has %zu tokens, more than this model's limit of %d (send \"truncate\": true to cut it)",
                                      i, r->toks.n - before, limit),
                           HTTP_REPLY;
                r->toks.n = before + (size_t)limit;
            }
        }
        seq_close(r, (int)i);
    }
    return embed_submit(r, (int)n);
}

http_outcome api_v2_embed(http_req *r) {
    ragd_served_model *sm;
    if (!jv_parse_body(r) || !jv_model(r, RAGD_ROLE_EMBED, &sm)) return HTTP_REPLY;
    embed_api *a = ragd_xcalloc(1, sizeof *a);
    r->api = a;
    r->api_free = free;
    const char *itype = NULL;
    bool truncate = true; /* Cohere's default: END */
    if (!common_opts(r, a) || !jv_string(r, "input_type", false, &itype, NULL) ||
        !jv_string(r, "instruction", false, &a->o.instruction, NULL) || !jv_truncate_mode(r, true, &truncate))
        return HTTP_REPLY;
    if (itype) {
        if (!strcmp(itype, "search_query")) {
            if (!a->o.instruction) a->o.instruction = RETRIEVAL_INSTRUCTION;
        } else if (strcmp(itype, "search_document") && strcmp(itype, "classification") && strcmp(itype, "clustering")) {
            return http_error(r, 400, "input_type", "invalid_value",
                              "field 'input_type' must be search_query, search_document, classification or clustering "
                              "(images are not supported), not \"%s\"", itype),
                   HTTP_REPLY;
        }
    }
    const json_t *et = json_object_get(r->json, "embedding_types");
    if (!et || json_is_null(et)) a->cohere_types = ET_FLOAT;
    else {
        if (!json_is_array(et) || !json_array_size(et))
            return http_error(r, 400, "embedding_types", "invalid_type", "field 'embedding_types' must be a non-empty list"),
                   HTTP_REPLY;
        for (size_t i = 0; i < json_array_size(et); i++) {
            const char *t = json_string_value(json_array_get(et, i));
            int ty = !t ? 0 : !strcmp(t, "float") ? ET_FLOAT : !strcmp(t, "base64") ? ET_BASE64
                     : !strcmp(t, "binary") ? ET_BINARY : !strcmp(t, "ubinary") ? ET_UBINARY : 0;
            if (!ty)
                return http_error(r, 400, "embedding_types", "invalid_value",
                                  "embedding_types[%zu] must be float, base64, binary or ubinary%s", i,
                                  t && (!strcmp(t, "int8") || !strcmp(t, "uint8"))
                                      ? " (int8/uint8 are Cohere's calibrated quantization, which is not published)"
                                      : ""),
                       HTTP_REPLY;
            a->cohere_types |= ty;
        }
    }
    embed_trunc(r, a, truncate, false, false);
    return embed_texts(r, json_object_get(r->json, "texts"), "texts", truncate);
}

/* POST /v2/models/{name}/infer for the embed model: the BYTES tensor `text` (its data: a list of
 * strings) → FP32 `embedding` [n, d]. texts: the tensor's data array (checked here). */
http_outcome api_kserve_embed(http_req *r, const json_t *texts) {
    embed_api *a = ragd_xcalloc(1, sizeof *a);
    r->api = a;
    r->api_free = free;
    a->kserve = true;
    a->o.normalize = true;
    a->dims = ragd_embed_dims(r->sm->model, &a->o);
    return embed_texts(r, texts, "inputs.text.data", false);
}
