/* api_chat.c — POST /v1/chat/completions and POST /v1/completions (OpenAI shapes), with SSE streaming.
 *
 * Request fields: messages (chat) | prompt (completions), model, max_tokens / max_completion_tokens,
 * temperature, top_p, top_k, min_p, seed, stop (string | [string]), n, stream,
 * stream_options.include_usage, logprobs / top_logprobs (chat: bool + 0..20 → {"content": [{token,
 * logprob, bytes, top_logprobs}]}; completions: int 0..20 → the legacy {tokens, token_logprobs,
 * top_logprobs, text_offset}),
 * enable_thinking / chat_template_kwargs.enable_thinking (Qwen3). Unknown fields are ignored, as
 * OpenAI clients send optional ones freely; fields we know are type- and range-checked; OpenAI fields we
 * do not implement (penalties, logit_bias, tools, response_format, echo, best_of, suffix) are a 400
 * unless they carry their neutral value.
 *
 * The prompt is rendered with the model's chat template (ragd_chat_render) and tokenized here; its
 * length plus max_tokens must fit the model's context (else 400 context_length_exceeded). Without
 * max_tokens the rest of the context (capped by --max-tokens-default) is allowed.
 *
 * Streaming: `data: {chunk}\n\n` events — per choice a role delta first, then content deltas, then a
 * chunk with finish_reason; with include_usage a last chunk with "choices": [] and usage; then
 * `data: [DONE]`. An error after the stream started is sent as `data: {"error": {...}}` before
 * [DONE]. Events are formatted on the scheduler thread under the request's lock (sink callbacks).
 */
#include "http/http_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX_N 16
#define MAX_STOP 16

typedef struct chat_api {
    bool chat, stream, include_usage, logprobs;
    int top_logprobs, n;
    long long created;
    ragd_buf *text;       /* [n] non-streaming: accumulated text */
    ragd_buf *lp;         /* [n] JSON fragments of logprob entries */
    ragd_finish *fin;     /* [n] */
    bool *role_sent;      /* [n] */
    int *n_lp;            /* [n] entries in lp */
    ragd_buf *lg;         /* [4n] completions' legacy logprobs: tokens, token_logprobs, top_logprobs, text_offset */
    size_t *off;          /* [n] text offset of the next token (legacy) */
    ragd_buf tmp;         /* token text scratch */
    ragd_buf prompt;      /* rendered chat prompt */
} chat_api;

static void chat_api_free(void *p) {
    chat_api *a = p;
    if (!a) return;
    for (int i = 0; i < a->n; i++) {
        ragd_buf_free(&a->text[i]);
        ragd_buf_free(&a->lp[i]);
    }
    free(a->text);
    free(a->lp);
    free(a->fin);
    free(a->role_sent);
    free(a->n_lp);
    if (a->lg)
        for (int i = 0; i < 4 * a->n; i++) ragd_buf_free(&a->lg[i]);
    free(a->lg);
    free(a->off);
    ragd_buf_free(&a->tmp);
    ragd_buf_free(&a->prompt);
    free(a);
}

static const char *finish_name(ragd_finish f) { return f == RAGD_FINISH_LENGTH ? "length" : "stop"; }

static void json_lp(ragd_buf *b, float lp) { ragd_buf_json_f32(b, isfinite(lp) ? lp : -9999.0f); }

/* The text of one token (special tokens included) into a->tmp; empty if it cannot be decoded. */
static void token_text(http_req *r, chat_api *a, int32_t id) {
    ragd_buf_reset(&a->tmp);
    ragd_err err = {0};
    if (ragd_tokenizer_decode(r->sm->model->tok, &id, 1, false, &a->tmp, &err)) {
        ragd_err_free(&err);
        ragd_buf_reset(&a->tmp);
    }
}

/* Appends one chat logprobs entry {"token","logprob","bytes","top_logprobs"} for ev to out. */
static void lp_entry(http_req *r, chat_api *a, const ragd_gen_event *ev, ragd_buf *out) {
    token_text(r, a, ev->token);
    ragd_buf_puts(out, "{\"token\":");
    ragd_buf_json_str(out, a->tmp.data ? a->tmp.data : "", a->tmp.len);
    ragd_buf_puts(out, ",\"logprob\":");
    json_lp(out, ev->logprob);
    ragd_buf_puts(out, ",\"bytes\":[");
    for (size_t i = 0; i < a->tmp.len; i++) ragd_buf_printf(out, "%s%u", i ? "," : "", (unsigned char)a->tmp.data[i]);
    ragd_buf_puts(out, "],\"top_logprobs\":[");
    for (int k = 0; k < ev->n_top; k++) {
        token_text(r, a, ev->top_ids[k]);
        ragd_buf_puts(out, k ? ",{\"token\":" : "{\"token\":");
        ragd_buf_json_str(out, a->tmp.data ? a->tmp.data : "", a->tmp.len);
        ragd_buf_puts(out, ",\"logprob\":");
        json_lp(out, ev->top_lp[k]);
        ragd_buf_puts(out, ",\"bytes\":[");
        for (size_t i = 0; i < a->tmp.len; i++) ragd_buf_printf(out, "%s%u", i ? "," : "", (unsigned char)a->tmp.data[i]);
        ragd_buf_puts(out, "]}");
    }
    ragd_buf_puts(out, "]}");
}

/* Appends one token to the legacy (completions) logprobs arrays lg[0..4) of choice c. */
static void legacy_entry(http_req *r, chat_api *a, const ragd_gen_event *ev, int c, ragd_buf *lg, bool first) {
    token_text(r, a, ev->token);
    const char *sep = first ? "" : ",";
    ragd_buf_puts(&lg[0], sep);
    ragd_buf_json_str(&lg[0], a->tmp.data ? a->tmp.data : "", a->tmp.len);
    ragd_buf_puts(&lg[1], sep);
    json_lp(&lg[1], ev->logprob);
    ragd_buf_printf(&lg[3], "%s%zu", sep, a->off[c]);
    a->off[c] += a->tmp.len;
    ragd_buf_puts(&lg[2], first ? "{" : ",{");
    for (int k = 0; k < ev->n_top; k++) {
        token_text(r, a, ev->top_ids[k]);
        if (k) ragd_buf_putc(&lg[2], ',');
        ragd_buf_json_str(&lg[2], a->tmp.data ? a->tmp.data : "", a->tmp.len);
        ragd_buf_putc(&lg[2], ':');
        json_lp(&lg[2], ev->top_lp[k]);
    }
    ragd_buf_putc(&lg[2], '}');
}

static void legacy_json(ragd_buf *b, const ragd_buf *lg) {
    static const char *const keys[] = {"tokens", "token_logprobs", "top_logprobs", "text_offset"};
    ragd_buf_putc(b, '{');
    for (int i = 0; i < 4; i++) {
        ragd_buf_printf(b, "%s\"%s\":[", i ? "," : "", keys[i]);
        if (lg[i].len) ragd_buf_append(b, lg[i].data, lg[i].len);
        ragd_buf_putc(b, ']');
    }
    ragd_buf_putc(b, '}');
}

static void chunk_head(http_req *r, chat_api *a, ragd_buf *b) {
    ragd_buf_printf(b, "data: {\"id\":\"%s-%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", a->chat ? "chatcmpl" : "cmpl",
                    r->id, a->chat ? "chat.completion.chunk" : "text_completion", a->created);
    ragd_buf_json_str(b, r->sm->name, strlen(r->sm->name));
    ragd_buf_puts(b, ",\"choices\":[");
}

static void chunk_tail(chat_api *a, ragd_buf *b) {
    ragd_buf_puts(b, "]");
    if (a->include_usage) ragd_buf_puts(b, ",\"usage\":null");
    ragd_buf_puts(b, "}\n\n");
}

/* Scheduler thread, under r->mu. */
static void chat_event(http_req *r, const ragd_gen_event *ev) {
    chat_api *a = r->api;
    int c = ev->choice;
    RAGD_ASSERT(c >= 0 && c < a->n);
    if (!a->stream) {
        if (ev->len) ragd_buf_append(&a->text[c], ev->text, ev->len);
        if (a->logprobs && ev->has_token) {
            if (a->chat) {
                if (a->n_lp[c]) ragd_buf_putc(&a->lp[c], ',');
                lp_entry(r, a, ev, &a->lp[c]);
            } else legacy_entry(r, a, ev, c, &a->lg[4 * c], a->n_lp[c] == 0);
            a->n_lp[c]++;
        }
        if (ev->finish) a->fin[c] = ev->finish;
        return;
    }
    ragd_buf *b = &r->sse;
    if (a->chat && !a->role_sent[c]) {
        a->role_sent[c] = true;
        chunk_head(r, a, b);
        ragd_buf_printf(b, "{\"index\":%d,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}", c);
        chunk_tail(a, b);
    }
    bool lp = a->logprobs && ev->has_token;
    if (ev->len || lp) {
        chunk_head(r, a, b);
        if (a->chat) {
            ragd_buf_printf(b, "{\"index\":%d,\"delta\":{\"content\":", c);
            ragd_buf_json_str(b, ev->text, ev->len);
            ragd_buf_puts(b, "},\"logprobs\":");
        } else {
            ragd_buf_printf(b, "{\"index\":%d,\"text\":", c);
            ragd_buf_json_str(b, ev->text, ev->len);
            ragd_buf_puts(b, ",\"logprobs\":");
        }
        if (lp && a->chat) {
            ragd_buf_puts(b, "{\"content\":[");
            lp_entry(r, a, ev, b);
            ragd_buf_puts(b, "]}");
        } else if (lp) {
            ragd_buf one[4] = {{0}};
            legacy_entry(r, a, ev, c, one, true);
            legacy_json(b, one);
            for (int i = 0; i < 4; i++) ragd_buf_free(&one[i]);
        } else ragd_buf_puts(b, "null");
        ragd_buf_puts(b, ",\"finish_reason\":null}");
        chunk_tail(a, b);
    }
    if (ev->finish) {
        chunk_head(r, a, b);
        if (a->chat) ragd_buf_printf(b, "{\"index\":%d,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"%s\"}", c, finish_name(ev->finish));
        else ragd_buf_printf(b, "{\"index\":%d,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"%s\"}", c, finish_name(ev->finish));
        chunk_tail(a, b);
    }
}

static void usage_json(http_req *r, ragd_buf *b) {
    long long p = r->task.prompt_tokens ? r->task.prompt_tokens : r->task.seq_start[1], c = r->task.completion_tokens;
    ragd_buf_printf(b, "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld}", p, c, p + c);
}

/* Scheduler thread, under r->mu: the end of a stream. */
static void chat_end(http_req *r) {
    chat_api *a = r->api;
    ragd_buf *b = &r->sse;
    if (r->task.status != RAGD_OK) {
        http_req tmp = {0}; /* format the error object without touching r->out (the worker may read it) */
        tmp.ep = r->ep;
        memcpy(tmp.id, r->id, sizeof tmp.id);
        http_error_status(&tmp, r->task.status, NULL, ragd_err_msg(&r->task.err));
        ragd_buf_puts(b, "data: ");
        ragd_buf_append(b, tmp.out.data, tmp.out.len);
        ragd_buf_puts(b, "\n\n");
        ragd_buf_free(&tmp.out);
    } else if (a->include_usage) {
        chunk_head(r, a, b);
        ragd_buf_puts(b, "],\"usage\":");
        usage_json(r, b);
        ragd_buf_puts(b, "}\n\n");
    }
    ragd_buf_puts(b, "data: [DONE]\n\n");
}

/* Worker thread: the non-streaming reply. */
static void chat_finish(http_req *r) {
    chat_api *a = r->api;
    ragd_buf *b = &r->out;
    ragd_buf_reset(b);
    ragd_buf_printf(b, "{\"id\":\"%s-%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", a->chat ? "chatcmpl" : "cmpl", r->id,
                    a->chat ? "chat.completion" : "text_completion", a->created);
    ragd_buf_json_str(b, r->sm->name, strlen(r->sm->name));
    ragd_buf_puts(b, ",\"choices\":[");
    for (int c = 0; c < a->n; c++) {
        const ragd_buf *t = &a->text[c];
        ragd_buf_printf(b, "%s{\"index\":%d,", c ? "," : "", c);
        if (a->chat) {
            ragd_buf_puts(b, "\"message\":{\"role\":\"assistant\",\"content\":");
            ragd_buf_json_str(b, t->data ? t->data : "", t->len);
            ragd_buf_puts(b, "},");
        } else {
            ragd_buf_puts(b, "\"text\":");
            ragd_buf_json_str(b, t->data ? t->data : "", t->len);
            ragd_buf_putc(b, ',');
        }
        ragd_buf_puts(b, "\"logprobs\":");
        if (a->logprobs && a->chat) {
            ragd_buf_puts(b, "{\"content\":[");
            if (a->lp[c].len) ragd_buf_append(b, a->lp[c].data, a->lp[c].len);
            ragd_buf_puts(b, "]}");
        } else if (a->logprobs) legacy_json(b, &a->lg[4 * c]);
        else ragd_buf_puts(b, "null");
        ragd_buf_printf(b, ",\"finish_reason\":\"%s\"}", finish_name(a->fin[c]));
    }
    ragd_buf_puts(b, "],\"usage\":");
    usage_json(r, b);
    ragd_buf_putc(b, '}');
    http_reply_json(r, 200);
}

/* ---------------------------------------------------------------------------------------------- */
/* request parsing */

/* content: string, or [{"type": "text", "text": ...}] joined; appended NUL-terminated to keep. */
static bool message_content(http_req *r, int i, json_t *content, ragd_buf *keep, const char **out) {
    char param[48];
    snprintf(param, sizeof param, "messages[%d].content", i);
    if (json_is_string(content)) {
        *out = json_string_value(content);
        return true;
    }
    if (json_is_array(content)) {
        size_t k;
        json_t *part;
        size_t start = keep->len;
        json_array_foreach(content, k, part) {
            json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
            if (!json_is_object(part) || !json_is_string(type) || strcmp(json_string_value(type), "text") ||
                !json_is_string(text)) {
                http_error(r, 400, param, "invalid_type", "%s[%zu] must be {\"type\": \"text\", \"text\": string} (only text is supported)",
                           param, k);
                return false;
            }
            ragd_buf_append(keep, json_string_value(text), json_string_length(text));
        }
        ragd_buf_putc(keep, 0);
        *out = (const char *)(uintptr_t)start; /* offset; fixed up after all messages are read */
        return true;
    }
    http_error(r, 400, param, content ? "invalid_type" : "missing_field",
               content ? "%s must be a string or an array of text parts" : "missing required field %s", param);
    return false;
}

bool api_render_messages(http_req *r, bool enable_thinking, ragd_buf *out) {
    json_t *msgs = json_object_get(r->json, "messages");
    if (!msgs || json_is_null(msgs)) return http_error(r, 400, "messages", "missing_field", "missing required field 'messages'"), false;
    if (!json_is_array(msgs)) return http_error(r, 400, "messages", "invalid_type", "field 'messages' must be an array"), false;
    size_t n = json_array_size(msgs);
    if (!n) return http_error(r, 400, "messages", "empty_input", "field 'messages' is an empty list"), false;
    if (n > 4096) return http_error(r, 400, "messages", "too_many_inputs", "field 'messages' has %zu entries; the limit is 4096", n), false;
    ragd_chat_msg *m = ragd_xcalloc(n, sizeof *m);
    bool *is_off = ragd_xcalloc(n, sizeof *is_off);
    ragd_buf keep = {0};
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        json_t *e = json_array_get(msgs, i);
        char param[40];
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!json_is_object(e)) {
            http_error(r, 400, "messages", "invalid_type", "messages[%zu] must be an object with role and content", i);
            ok = false;
            break;
        }
        json_t *role = json_object_get(e, "role");
        if (!json_is_string(role)) {
            http_error(r, 400, param, role ? "invalid_type" : "missing_field", "%s must be a string", param);
            ok = false;
            break;
        }
        const char *rs = json_string_value(role);
        if (!strcmp(rs, "developer")) rs = "system";
        if (strcmp(rs, "system") && strcmp(rs, "user") && strcmp(rs, "assistant") && strcmp(rs, "tool")) {
            http_error(r, 400, param, "invalid_value", "%s is \"%s\"; expected system, user, assistant, tool or developer", param, rs);
            ok = false;
            break;
        }
        m[i].role = rs;
        json_t *content = json_object_get(e, "content");
        ok = message_content(r, (int)i, content, &keep, &m[i].content);
        is_off[i] = ok && json_is_array(content);
    }
    if (ok)
        for (size_t i = 0; i < n; i++)
            if (is_off[i]) m[i].content = keep.data + (uintptr_t)m[i].content;
    if (ok) {
        ragd_err err = {0};
        ragd_status st = ragd_chat_render(r->sm->model, m, (int)n, enable_thinking, out, &err);
        if (st) {
            http_error_status(r, st, "messages", ragd_err_msg(&err));
            ok = false;
        }
        ragd_err_free(&err);
    }
    ragd_buf_free(&keep);
    free(m);
    free(is_off);
    return ok;
}

static bool parse_stop(http_req *r, ragd_gen_opts *g) {
    json_t *stop = json_object_get(r->json, "stop");
    if (!stop || json_is_null(stop)) return true;
    if (json_is_string(stop)) {
        if (!json_string_length(stop)) return http_error(r, 400, "stop", "invalid_value", "field 'stop' is an empty string"), false;
        r->stops = ragd_xmalloc(sizeof(char *));
        r->stops[0] = json_string_value(stop);
        g->n_stop = 1;
    } else if (json_is_array(stop)) {
        size_t n = json_array_size(stop);
        if (n > MAX_STOP) return http_error(r, 400, "stop", "too_many_inputs", "field 'stop' has %zu strings; the limit is %d", n, MAX_STOP), false;
        r->stops = ragd_xcalloc(n ? n : 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
            json_t *s = json_array_get(stop, i);
            if (!json_is_string(s) || !json_string_length(s))
                return http_error(r, 400, "stop", "invalid_type", "stop[%zu] must be a non-empty string", i), false;
            r->stops[i] = json_string_value(s);
        }
        g->n_stop = (int)n;
    } else return http_error(r, 400, "stop", "invalid_type", "field 'stop' must be a string or an array of strings"), false;
    g->stop = r->stops;
    return true;
}

/* Fields OpenAI clients may send that ragd does not implement: accepted only at their neutral value,
 * otherwise a 400 (never silently ignored, which would return something other than what was asked). */
static bool unsupported_fields(http_req *r) {
    static const char *const zero_num[] = {"presence_penalty", "frequency_penalty", NULL};
    for (const char *const *k = zero_num; *k; k++) {
        json_t *v = json_object_get(r->json, *k);
        if (v && !json_is_null(v) && !(json_is_number(v) && json_number_value(v) == 0))
            return http_error(r, 400, *k, "unsupported", "field '%s' is not supported by this server (only 0)", *k), false;
    }
    json_t *v = json_object_get(r->json, "repetition_penalty");
    if (v && !json_is_null(v) && !(json_is_number(v) && json_number_value(v) == 1))
        return http_error(r, 400, "repetition_penalty", "unsupported", "field 'repetition_penalty' is not supported (only 1)"), false;
    v = json_object_get(r->json, "logit_bias");
    if (v && !json_is_null(v) && !(json_is_object(v) && json_object_size(v) == 0))
        return http_error(r, 400, "logit_bias", "unsupported", "field 'logit_bias' is not supported by this server"), false;
    v = json_object_get(r->json, "tools");
    if (v && !json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0))
        return http_error(r, 400, "tools", "unsupported", "field 'tools': tool calling is not supported by this server"), false;
    v = json_object_get(r->json, "response_format");
    if (v && !json_is_null(v)) {
        json_t *t = json_object_get(v, "type");
        if (!json_is_string(t) || strcmp(json_string_value(t), "text"))
            return http_error(r, 400, "response_format", "unsupported", "only response_format {\"type\": \"text\"} is supported"), false;
    }
    v = json_object_get(r->json, "echo");
    if (v && json_is_true(v)) return http_error(r, 400, "echo", "unsupported", "field 'echo' is not supported by this server"), false;
    v = json_object_get(r->json, "best_of");
    if (v && !json_is_null(v) && !(json_is_integer(v) && json_integer_value(v) == 1))
        return http_error(r, 400, "best_of", "unsupported", "field 'best_of' is not supported (only 1)"), false;
    v = json_object_get(r->json, "suffix");
    if (v && !json_is_null(v)) return http_error(r, 400, "suffix", "unsupported", "field 'suffix' is not supported by this server"), false;
    return true;
}

static http_outcome gen_common(http_req *r, bool chat) {
    ragd_served_model *sm;
    if (!jv_parse_body(r) || !jv_model(r, RAGD_ROLE_CHAT, &sm) || !unsupported_fields(r)) return HTTP_REPLY;
    const ragd_model *m = sm->model;
    chat_api *a = ragd_xcalloc(1, sizeof *a);
    r->api = a;
    r->api_free = chat_api_free;
    a->chat = chat;
    a->created = (long long)time(NULL);
    ragd_gen_opts *g = &r->task.gen;
    int64_t max_tokens = 0, mct = 0, n = 1, seed = 0, top_k = 0, top_lp = 0, lp_int = 0;
    bool has_mt, has_mct, has_seed, has_topk, has_temp, has_topp, has_minp, stream = false, lp = false, has_toplp;
    double temp = 1, top_p = 1, min_p = 0;
    int limit = sm->max_len[RAGD_ROLE_CHAT];
    if (!jv_int(r, "max_tokens", 1, limit, &max_tokens, &has_mt) ||
        !jv_int(r, "max_completion_tokens", 1, limit, &mct, &has_mct) || !jv_int(r, "n", 1, MAX_N, &n, NULL) ||
        !jv_int(r, "seed", INT64_MIN, INT64_MAX, &seed, &has_seed) || !jv_int(r, "top_k", 0, m->cfg.n_vocab, &top_k, &has_topk) ||
        !jv_number(r, "temperature", 0, 2, &temp, &has_temp) || !jv_number(r, "top_p", 0, 1, &top_p, &has_topp) ||
        !jv_number(r, "min_p", 0, 1, &min_p, &has_minp) || !jv_bool(r, "stream", &stream, NULL) || !parse_stop(r, g))
        return HTTP_REPLY;
    if (has_topp && top_p <= 0)
        return http_error(r, 400, "top_p", "out_of_range", "field 'top_p' must be greater than 0"), HTTP_REPLY;
    if (n > (int64_t)r->h->cfg.opts->max_seqs)
        return http_error(r, 400, "n", "out_of_range", "field 'n' is %lld; this server runs at most %lld sequences at once",
                          (long long)n, (long long)r->h->cfg.opts->max_seqs),
               HTTP_REPLY;
    if (chat) {
        if (!jv_bool(r, "logprobs", &lp, NULL) || !jv_int(r, "top_logprobs", 0, 20, &top_lp, &has_toplp)) return HTTP_REPLY;
        if (has_toplp && !lp)
            return http_error(r, 400, "top_logprobs", "invalid_value", "field 'top_logprobs' needs \"logprobs\": true"), HTTP_REPLY;
    } else {
        bool has_lp;
        if (!jv_int(r, "logprobs", 0, 20, &lp_int, &has_lp)) return HTTP_REPLY;
        lp = has_lp;
        top_lp = lp_int;
    }
    json_t *so = json_object_get(r->json, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) return http_error(r, 400, "stream_options", "invalid_type", "field 'stream_options' must be an object"), HTTP_REPLY;
        if (!stream) return http_error(r, 400, "stream_options", "invalid_value", "field 'stream_options' is only allowed with \"stream\": true"), HTTP_REPLY;
        json_t *iu = json_object_get(so, "include_usage");
        if (iu && !json_is_boolean(iu))
            return http_error(r, 400, "stream_options.include_usage", "invalid_type", "field 'stream_options.include_usage' must be a boolean"), HTTP_REPLY;
        a->include_usage = iu && json_is_true(iu);
    }
    bool thinking = true, has_th;
    if (!jv_bool(r, "enable_thinking", &thinking, &has_th)) return HTTP_REPLY;
    json_t *ctk = json_object_get(r->json, "chat_template_kwargs");
    if (ctk && json_is_object(ctk) && json_is_boolean(json_object_get(ctk, "enable_thinking")))
        thinking = json_is_true(json_object_get(ctk, "enable_thinking"));

    /* prompt → tokens */
    ragd_err err = {0};
    ragd_status st;
    if (chat) {
        if (!api_render_messages(r, thinking, &a->prompt)) return HTTP_REPLY;
        st = ragd_tokenizer_encode(m->tok, a->prompt.data, a->prompt.len, false, &r->toks, &err);
    } else {
        json_t *p = json_object_get(r->json, "prompt");
        if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0))) p = json_array_get(p, 0);
        if (!p || json_is_null(p)) return http_error(r, 400, "prompt", "missing_field", "missing required field 'prompt'"), HTTP_REPLY;
        if (json_is_string(p)) {
            if (!json_string_length(p)) return http_error(r, 400, "prompt", "empty_input", "field 'prompt' is an empty string"), HTTP_REPLY;
            st = ragd_tokenizer_encode(m->tok, json_string_value(p), json_string_length(p), true, &r->toks, &err);
        } else if (json_is_array(p) && json_array_size(p) && json_is_integer(json_array_get(p, 0))) {
            if (!jv_token_array(r, p, "prompt", m->cfg.n_vocab, &r->toks)) return HTTP_REPLY;
            st = RAGD_OK;
        } else
            return http_error(r, 400, "prompt", "invalid_type", "field 'prompt' must be a string or an array of token ids (one prompt per request)"), HTTP_REPLY;
    }
    if (st) {
        http_error_status(r, st, chat ? "messages" : "prompt", ragd_err_msg(&err));
        ragd_err_free(&err);
        return HTTP_REPLY;
    }
    if (!r->toks.n)
        return http_error(r, 400, chat ? "messages" : "prompt", "empty_input", "the prompt (%s) has no tokens", chat ? "messages" : "prompt"), HTTP_REPLY;
    int np = (int)r->toks.n;
    if (np >= limit)
        return http_error(r, 400, chat ? "messages" : "prompt", "context_length_exceeded",
                          "the prompt (%s) has %d tokens; this model's context is %d tokens", chat ? "messages" : "prompt", np, limit),
               HTTP_REPLY;
    int64_t want = has_mct ? mct : has_mt ? max_tokens : 0;
    if (want && np + want > limit)
        return http_error(r, 400, has_mct ? "max_completion_tokens" : "max_tokens", "context_length_exceeded",
                          "%s = %lld plus the prompt's %d tokens exceeds this model's context of %d tokens",
                          has_mct ? "max_completion_tokens" : "max_tokens", (long long)want, np, limit),
               HTTP_REPLY;
    if (!want) {
        want = r->h->cfg.opts->max_tokens_default;
        if (np + want > limit) want = limit - np;
    }
    /* sampling: request > generation_config.json > OpenAI defaults */
    g->max_tokens = (int)want;
    g->sampling.temperature = has_temp ? (float)temp : m->gen.temperature > 0 ? m->gen.temperature : 1.0f;
    g->sampling.top_p = has_topp ? (float)top_p : m->gen.top_p > 0 ? m->gen.top_p : 1.0f;
    g->sampling.top_k = has_topk ? (int)top_k : m->gen.top_k > 0 ? m->gen.top_k : 0;
    g->sampling.min_p = has_minp ? (float)min_p : m->gen.min_p > 0 ? m->gen.min_p : 0.0f;
    g->sampling.seed = has_seed ? (uint64_t)seed : (uint64_t)ragd_now_ns() ^ ((uint64_t)(uintptr_t)r << 16);
    a->n = (int)n;
    a->stream = stream;
    a->logprobs = lp;
    a->top_logprobs = (int)top_lp;
    a->text = ragd_xcalloc((size_t)n, sizeof *a->text);
    a->lp = ragd_xcalloc((size_t)n, sizeof *a->lp);
    a->fin = ragd_xcalloc((size_t)n, sizeof *a->fin);
    a->role_sent = ragd_xcalloc((size_t)n, sizeof *a->role_sent);
    a->n_lp = ragd_xcalloc((size_t)n, sizeof *a->n_lp);
    a->lg = ragd_xcalloc(4 * (size_t)n, sizeof *a->lg);
    a->off = ragd_xcalloc((size_t)n, sizeof *a->off);

    r->seq_start = ragd_xcalloc(2, sizeof(int32_t));
    r->seq_start[1] = np;
    r->task.kind = RAGD_TASK_GENERATE;
    r->task.tokens = r->toks.ids;
    r->task.seq_start = r->seq_start;
    r->task.n_seqs = 1;
    r->task.n_choices = (int)n;
    r->task.want_logprobs = lp;
    r->task.top_logprobs = (int)top_lp;
    r->streaming = stream;
    r->finish = chat_finish;
    r->on_event = chat_event;
    r->on_end = chat_end;
    return http_submit(r) ? HTTP_PENDING : HTTP_REPLY;
}

http_outcome api_chat(http_req *r) { return gen_common(r, true); }
http_outcome api_completions(http_req *r) { return gen_common(r, false); }
