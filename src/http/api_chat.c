/* api_chat.c — POST /v1/chat/completions and POST /v1/completions (OpenAI shapes), with SSE streaming.
 *
 * Request fields: messages (chat) | prompt (completions), model, max_tokens / max_completion_tokens,
 * temperature, top_p, top_k, min_p, seed, stop (string | [string]), stop_token_ids (vLLM: [id], at most
 * 64; generating one ends the choice with finish_reason "stop", its text left out), n, stream,
 * stream_options.include_usage, logprobs / top_logprobs (chat: bool + 0..20 → {"content": [{token,
 * logprob, bytes, top_logprobs}]}; completions: int 0..20 → the legacy {tokens, token_logprobs,
 * top_logprobs, text_offset}); chat also: tools, tool_choice (auto | none | required | a named function:
 * the last two force a call by constrained decoding, api_format.c), parallel_tool_calls, add_generation_prompt,
 * chat_template_kwargs (any template variables), enable_thinking (Qwen3); completions also echo (the
 * prompt's text before each choice's text, in the first chunk when streaming; with logprobs a 400, as
 * prompt logprobs are not computed). Unknown fields are ignored, as OpenAI clients send optional ones
 * freely; fields we know are type- and range-checked; response_format (json_object, json_schema),
 * presence_penalty, frequency_penalty, repetition_penalty (vLLM) and logit_bias are parsed in api_format.c
 * and applied by the scheduler's logit processing; OpenAI fields we do not implement (best_of, suffix;
 * echo on chat) are a 400 unless they carry their neutral value.
 * vLLM's ignore_eos (EOS is an ordinary token) and min_tokens (EOS cannot be sampled and stop strings
 * do not apply before that many tokens) are accepted for benchmarks.
 *
 * Messages: roles system | user | assistant | tool | developer (= system); content a string or text
 * parts (joined); an assistant turn may carry tool_calls and "content": null (rendered as "", as vLLM
 * does); tool_calls arguments sent as JSON text are given to the template as objects. The prompt is the
 * model's own chat template (compiled at startup, tasks/chat.c) rendered as transformers does, then
 * tokenized here; its length plus max_tokens must fit the model's context (else 400
 * context_length_exceeded). Without max_tokens the rest of the context (capped by --max-tokens-default)
 * is allowed. A template that refuses the conversation (raise_exception) is a 400 naming "messages".
 *
 * Tool calls: with tools (and tool_choice not none) the answer is parsed in the syntax the template
 * taught the model (tasks/toolcall.c); complete calls become message.tool_calls (content: the text
 * before them, or null; only the first without parallel_tool_calls) with finish_reason "tool_calls"; a
 * call the model starts under auto is constrained (api_format.c). Streaming holds back text from where
 * a call may start; at the end it sends the remaining content, then all calls in one tool_calls delta.
 *
 * Streaming: `data: {chunk}\n\n` events — per choice a role delta first, then content deltas, then a
 * chunk with finish_reason; with include_usage a last chunk with "choices": [] and usage; then
 * `data: [DONE]`. The last chunk before [DONE] (the usage chunk, else the finish_reason chunk of the choice
 * that ended last, held back until the request is complete) carries "timings", as does a non-streamed
 * reply (timings_json: llama.cpp's fields plus ragd's queue / first-token / total times). An error after the stream started is sent as `data: {"error": {...}}` before
 * [DONE]. Events are formatted on the scheduler thread under the request's lock (sink callbacks).
 *
 * Test hook: RAGD_TEST_CHAT_ANSWER replaces every answer of a request with tools by its text (the tiny
 * test models cannot be made to call a tool); the server warns at startup when it is set.
 */
#include "http/http_internal.h"

#include "grammar/grammar.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX_N 16
#define MAX_STOP 16

typedef struct chat_api {
    bool chat, stream, include_usage, logprobs;
    int n_finished;       /* choices whose finish_reason was seen */
    const char *held_why; /* streaming without include_usage: the last finish_reason chunk, written with the
                             timings once the request is complete (NULL: none held) */
    int held_c;
    int top_logprobs, n;
    long long created;
    ragd_buf *text;       /* [n] non-streaming: accumulated text */
    ragd_buf *lp;         /* [n] JSON fragments of logprob entries */
    ragd_finish *fin;     /* [n] */
    bool *role_sent;      /* [n] */
    int *n_lp;            /* [n] entries in lp */
    ragd_buf *lg;         /* [4n] completions' legacy logprobs: tokens, token_logprobs, top_logprobs, text_offset */
    size_t *off;          /* [n] text offset of the next token (legacy) */
    ragd_toolcall_format tool_fmt; /* != NONE: answers are read for tool calls */
    bool parallel;        /* parallel_tool_calls: more than one call may be returned */
    size_t *sent;         /* [n] streaming with tools: content bytes already sent (the rest is held) */
    const char *fake;     /* test hook RAGD_TEST_CHAT_ANSWER: every choice answers this text (tools on only) */
    ragd_buf tmp;         /* token text scratch */
    ragd_buf prompt;      /* rendered chat prompt */
    int32_t *stop_ids;    /* stop_token_ids (gen opts point here) */
    ragd_buf echo;        /* completions with echo: the prompt's text, put before every choice's text */
    api_chat_tools tools; /* tool_choice: forced (required / named) answers are tool-call JSON */
    ragd_grammar *grammar;   /* response_format or a forced tool choice (gen opts point here) */
    ragd_logit_edit *bias;   /* logit_bias (gen opts point here) */
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
    free(a->sent);
    free(a->stop_ids);
    ragd_buf_free(&a->tmp);
    ragd_buf_free(&a->prompt);
    ragd_buf_free(&a->echo);
    ragd_grammar_free(a->grammar);
    free(a->bias);
    free(a);
}

static const char *finish_name(ragd_finish f) { return f == RAGD_FINISH_LENGTH ? "length" : "stop"; }

/* The tool calls in choice c's answer (a->text[c]) when the request reads them: a JSON array (caller
 * owns; only the first call unless parallel_tool_calls) and the length of the content before them. */
static json_t *choice_tool_calls(http_req *r, chat_api *a, int c, size_t *content_len) {
    const ragd_buf *t = &a->text[c];
    *content_len = t->len;
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s_%d", r->id, c);
    if (a->tools.forced) { /* the whole answer is the calls' JSON (grammar-constrained) */
        json_t *calls = api_forced_tool_calls(&a->tools, t->data ? t->data : "", t->len, prefix);
        if (calls) *content_len = 0;
        return calls;
    }
    if (a->tool_fmt == RAGD_TOOLCALL_NONE || !t->len) return NULL;
    json_t *calls = NULL;
    if (!ragd_toolcall_parse(a->tool_fmt, t->data, t->len, prefix, &calls, content_len)) return NULL;
    while (!a->parallel && json_array_size(calls) > 1) json_array_remove(calls, json_array_size(calls) - 1);
    return calls;
}

/* appends [{"index": i, "id", "type", "function"}, ...] (stream) or the calls as they are */
static void tool_calls_json(ragd_buf *b, json_t *calls, bool stream) {
    ragd_buf_putc(b, '[');
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c) {
        if (stream) json_object_set_new(c, "index", json_integer((json_int_t)i));
        char *j = json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (i) ragd_buf_putc(b, ',');
        if (j) ragd_buf_puts(b, j);
        free(j);
    }
    ragd_buf_putc(b, ']');
}

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

static void ev_text_fake(chat_api *a, int c, const ragd_gen_event *ev) {
    if (!ev->finish) return;
    ragd_buf_reset(&a->text[c]);
    ragd_buf_puts(&a->text[c], a->fake);
}

/* Scheduler thread, under r->mu. */
static void chat_event(http_req *r, const ragd_gen_event *ev) {
    chat_api *a = r->api;
    int c = ev->choice;
    RAGD_ASSERT(c >= 0 && c < a->n);
    if (a->fake) { /* test hook: the model's text is replaced by a fixed answer, released at the end */
        ev_text_fake(a, c, ev);
        if (!ev->finish) return;
    }
    if (!a->stream) {
        if (ev->len && !a->fake) ragd_buf_append(&a->text[c], ev->text, ev->len);
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
    if (!a->chat && a->echo.len && !a->role_sent[c]) { /* echo: the prompt's text first */
        a->role_sent[c] = true;
        chunk_head(r, a, b);
        ragd_buf_printf(b, "{\"index\":%d,\"text\":", c);
        ragd_buf_json_str(b, a->echo.data, a->echo.len);
        ragd_buf_puts(b, ",\"logprobs\":null,\"finish_reason\":null}");
        chunk_tail(a, b);
    }
    if (a->chat && !a->role_sent[c]) {
        a->role_sent[c] = true;
        chunk_head(r, a, b);
        ragd_buf_printf(b, "{\"index\":%d,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}", c);
        chunk_tail(a, b);
    }
    /* the text this event releases: all of it, or with tools only what cannot be part of a tool call */
    const char *dt = ev->text;
    size_t dn = ev->len;
    json_t *calls = NULL;
    if (a->chat && (a->tool_fmt != RAGD_TOOLCALL_NONE || a->tools.forced)) {
        ragd_buf *t = &a->text[c];
        if (ev->len && !a->fake) ragd_buf_append(t, ev->text, ev->len);
        size_t upto = t->len;
        if (ev->finish) calls = choice_tool_calls(r, a, c, &upto);
        else if (a->tools.forced) upto = 0; /* a forced answer is all call: held to the end */
        else upto = ragd_toolcall_start(a->tool_fmt, t->data ? t->data : "", t->len);
        dt = t->data ? t->data + a->sent[c] : "";
        dn = upto > a->sent[c] ? upto - a->sent[c] : 0;
        a->sent[c] += dn;
    }
    bool lp = a->logprobs && ev->has_token;
    if (dn || lp) {
        chunk_head(r, a, b);
        if (a->chat) {
            ragd_buf_printf(b, "{\"index\":%d,\"delta\":{\"content\":", c);
            ragd_buf_json_str(b, dt, dn);
            ragd_buf_puts(b, "},\"logprobs\":");
        } else {
            ragd_buf_printf(b, "{\"index\":%d,\"text\":", c);
            ragd_buf_json_str(b, dt, dn);
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
    if (calls) { /* the calls, whole, in one delta */
        chunk_head(r, a, b);
        ragd_buf_printf(b, "{\"index\":%d,\"delta\":{\"tool_calls\":", c);
        tool_calls_json(b, calls, true);
        ragd_buf_puts(b, "},\"logprobs\":null,\"finish_reason\":null}");
        chunk_tail(a, b);
    }
    if (ev->finish && ++a->n_finished == a->n && !a->include_usage) { /* the last chunk: written by chat_end */
        a->held_why = calls ? "tool_calls" : finish_name(ev->finish);
        a->held_c = c;
    } else if (ev->finish) {
        const char *why = calls ? "tool_calls" : finish_name(ev->finish);
        chunk_head(r, a, b);
        if (a->chat) ragd_buf_printf(b, "{\"index\":%d,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"%s\"}", c, why);
        else ragd_buf_printf(b, "{\"index\":%d,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"%s\"}", c, why);
        chunk_tail(a, b);
    }
    json_decref(calls);
}

static void usage_json(http_req *r, ragd_buf *b) {
    long long p = r->task.prompt_tokens ? r->task.prompt_tokens : r->task.seq_start[1], c = r->task.completion_tokens;
    ragd_buf_printf(b, "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld}", p, c, p + c);
}

static double ms_between(double from, double to) { return from > 0 && to > from ? (to - from) * 1e3 : 0; }

/* "timings": where the request's time went, from the scheduler's clock (sched.h). llama.cpp's fields —
 * prompt_n (prompt tokens computed, i.e. not from the prefix cache), cache_n (taken from it), prompt_ms (the
 * prefill: admission to the first token), predicted_n (tokens generated, all choices), predicted_ms (the
 * decode: first token to last) and their per-token / per-second rates — then queue_ms (submission to
 * admission), ttft_ms (arrival to the first token) and total_ms (arrival to the last token). */
static void timings_json(const ragd_task *t, ragd_buf *b) {
    const int64_t prompt = t->seq_start[1], cache = t->cached_tokens < prompt ? t->cached_tokens : prompt;
    const int64_t pn = prompt - cache, dn = t->completion_tokens;
    const double pms = ms_between(t->t_start, t->t_first_token), dms = ms_between(t->t_first_token, t->t_end);
    ragd_buf_printf(b, ",\"timings\":{\"prompt_n\":%lld,\"cache_n\":%lld,\"prompt_ms\":%.3f,\"prompt_per_token_ms\":%.3f,"
                       "\"prompt_per_second\":%.3f,\"predicted_n\":%lld,\"predicted_ms\":%.3f,\"predicted_per_token_ms\":%.3f,"
                       "\"predicted_per_second\":%.3f,\"queue_ms\":%.3f,\"ttft_ms\":%.3f,\"total_ms\":%.3f}",
                    (long long)pn, (long long)cache, pms, pn > 0 ? pms / (double)pn : 0.0,
                    pms > 0 ? 1e3 * (double)pn / pms : 0.0, (long long)dn, dms, dn > 0 ? dms / (double)dn : 0.0,
                    dms > 0 ? 1e3 * (double)dn / dms : 0.0, ms_between(t->t_submit, t->t_start),
                    ms_between(t->t_arrival, t->t_first_token), ms_between(t->t_arrival, t->t_end));
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
        timings_json(&r->task, b);
        ragd_buf_puts(b, "}\n\n");
    } else if (a->held_why) {
        chunk_head(r, a, b);
        if (a->chat) ragd_buf_printf(b, "{\"index\":%d,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"%s\"}]", a->held_c, a->held_why);
        else ragd_buf_printf(b, "{\"index\":%d,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"%s\"}]", a->held_c, a->held_why);
        timings_json(&r->task, b);
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
        size_t content_len = t->len;
        json_t *calls = a->chat ? choice_tool_calls(r, a, c, &content_len) : NULL;
        if (a->chat) {
            ragd_buf_puts(b, "\"message\":{\"role\":\"assistant\",\"content\":");
            if (calls && !content_len) ragd_buf_puts(b, "null");
            else ragd_buf_json_str(b, t->data ? t->data : "", content_len);
            if (calls) {
                ragd_buf_puts(b, ",\"tool_calls\":");
                tool_calls_json(b, calls, false);
            }
            ragd_buf_puts(b, "},");
        } else {
            ragd_buf_puts(b, "\"text\":");
            if (a->echo.len) { /* the prompt's text, then the completion, as one JSON string */
                ragd_buf both = {0};
                ragd_buf_append(&both, a->echo.data, a->echo.len);
                if (t->len) ragd_buf_append(&both, t->data, t->len);
                ragd_buf_json_str(b, both.data, both.len);
                ragd_buf_free(&both);
            } else ragd_buf_json_str(b, t->data ? t->data : "", t->len);
            ragd_buf_putc(b, ',');
        }
        ragd_buf_puts(b, "\"logprobs\":");
        if (a->logprobs && a->chat) {
            ragd_buf_puts(b, "{\"content\":[");
            if (a->lp[c].len) ragd_buf_append(b, a->lp[c].data, a->lp[c].len);
            ragd_buf_puts(b, "]}");
        } else if (a->logprobs) legacy_json(b, &a->lg[4 * c]);
        else ragd_buf_puts(b, "null");
        ragd_buf_printf(b, ",\"finish_reason\":\"%s\"}", calls ? "tool_calls" : finish_name(a->fin[c]));
        json_decref(calls);
    }
    ragd_buf_puts(b, "],\"usage\":");
    usage_json(r, b);
    timings_json(&r->task, b);
    ragd_buf_putc(b, '}');
    http_reply_json(r, 200);
}

/* ---------------------------------------------------------------------------------------------- */
/* request parsing */

/* content: a string, or [{"type": "text", "text": ...}] joined into one string (new reference in *out).
 * An assistant message may have no content (null or absent: ""), as a tool-call turn replayed by a
 * client has ("content": null); every other role needs one. */
static bool message_content(http_req *r, size_t i, const char *role, json_t *content, json_t **out) {
    char param[48];
    snprintf(param, sizeof param, "messages[%zu].content", i);
    if (json_is_string(content)) {
        *out = json_incref(content);
        return true;
    }
    if ((!content || json_is_null(content)) && !strcmp(role, "assistant")) {
        /* vLLM does the same: templates (Qwen3, DeepSeek, Granite) index an assistant turn's content */
        *out = json_string("");
        return true;
    }
    if (json_is_array(content)) {
        ragd_buf keep = {0};
        size_t k;
        json_t *part;
        json_array_foreach(content, k, part) {
            json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
            if (!json_is_object(part) || !json_is_string(type) || strcmp(json_string_value(type), "text") ||
                !json_is_string(text)) {
                ragd_buf_free(&keep);
                http_error(r, 400, param, "invalid_type", "%s[%zu] must be {\"type\": \"text\", \"text\": string} (only text is supported)",
                           param, k);
                return false;
            }
            ragd_buf_append(&keep, json_string_value(text), json_string_length(text));
        }
        *out = json_stringn(keep.data ? keep.data : "", keep.len);
        ragd_buf_free(&keep);
        return true;
    }
    http_error(r, 400, param, content && !json_is_null(content) ? "invalid_type" : "missing_field",
               content && !json_is_null(content) ? "%s must be a string or an array of text parts" : "missing required field %s", param);
    return false;
}

/* an assistant turn's tool_calls, checked; arguments sent as JSON text (OpenAI) become objects, as
 * vLLM passes them and chat templates expect ("arguments | tojson") */
static bool message_tool_calls(http_req *r, size_t i, json_t *calls, json_t **out) {
    char param[64];
    snprintf(param, sizeof param, "messages[%zu].tool_calls", i);
    if (!json_is_array(calls))
        return http_error(r, 400, param, "invalid_type", "%s must be an array of tool calls", param), false;
    json_t *res = json_array();
    size_t k;
    json_t *c;
    json_array_foreach(calls, k, c) {
        json_t *fn = json_object_get(c, "function");
        json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
        json_t *id = json_object_get(c, "id"), *type = json_object_get(c, "type");
        if (!json_is_object(c) || !json_is_object(fn) || !json_is_string(name) || (id && !json_is_string(id)) ||
            (type && !(json_is_string(type) && !strcmp(json_string_value(type), "function"))) ||
            (args && !json_is_string(args) && !json_is_object(args))) {
            json_decref(res);
            http_error(r, 400, param, "invalid_type",
                       "%s[%zu] must be {\"id\": string, \"type\": \"function\", \"function\": {\"name\": string, \"arguments\": string}}",
                       param, k);
            return false;
        }
        json_t *nc = json_copy(c), *nf = json_copy(fn);
        if (json_is_string(args)) {
            json_t *parsed = json_loadb(json_string_value(args), json_string_length(args), 0, NULL);
            if (json_is_object(parsed)) json_object_set(nf, "arguments", parsed);
            json_decref(parsed);
        } else if (!args) json_object_set_new(nf, "arguments", json_object());
        json_object_set_new(nc, "function", nf);
        json_array_append_new(res, nc);
    }
    *out = res;
    return true;
}

/* "tools": null / [] → none; else [{"type": "function", "function": {"name", "description"?, "parameters"?}}] */
static bool parse_tools(http_req *r, json_t **out) {
    json_t *t = json_object_get(r->json, "tools");
    *out = NULL;
    if (!t || json_is_null(t) || (json_is_array(t) && !json_array_size(t))) return true;
    if (!json_is_array(t)) return http_error(r, 400, "tools", "invalid_type", "field 'tools' must be an array"), false;
    if (json_array_size(t) > 256)
        return http_error(r, 400, "tools", "too_many_inputs", "field 'tools' has %zu entries; the limit is 256", json_array_size(t)), false;
    size_t k;
    json_t *e;
    json_array_foreach(t, k, e) {
        json_t *type = json_object_get(e, "type"), *fn = json_object_get(e, "function");
        json_t *name = json_object_get(fn, "name"), *desc = json_object_get(fn, "description"), *par = json_object_get(fn, "parameters");
        if (!json_is_object(e) || !json_is_string(type) || strcmp(json_string_value(type), "function") || !json_is_object(fn) ||
            !json_is_string(name) || !json_string_length(name) || (desc && !json_is_string(desc) && !json_is_null(desc)) ||
            (par && !json_is_object(par) && !json_is_null(par))) {
            http_error(r, 400, "tools", "invalid_type",
                       "tools[%zu] must be {\"type\": \"function\", \"function\": {\"name\": string, \"description\": string, \"parameters\": object}}", k);
            return false;
        }
    }
    *out = t;
    return true;
}

/* tool_choice: none | auto (the default with tools) as OpenAI documents them; "required" and a named
 * function force a call by constrained decoding (api_format.c builds the grammar) */
static bool parse_tool_choice(http_req *r, bool has_tools, bool *parse, api_tools_forced *forced, const char **name) {
    json_t *tc = json_object_get(r->json, "tool_choice");
    *parse = has_tools;
    *forced = API_TOOLS_AUTO;
    *name = NULL;
    if (!tc || json_is_null(tc)) return true;
    if (json_is_string(tc)) {
        const char *v = json_string_value(tc);
        if (!strcmp(v, "none")) return *parse = false, true;
        if (!strcmp(v, "auto")) return true;
        if (!strcmp(v, "required")) {
            if (!has_tools)
                return http_error(r, 400, "tool_choice", "invalid_value", "tool_choice \"required\" needs 'tools'"), false;
            *forced = API_TOOLS_REQUIRED;
            return true;
        }
        return http_error(r, 400, "tool_choice", "invalid_value", "field 'tool_choice' is \"%s\"; expected none, auto, required or a function", v), false;
    }
    json_t *fname = json_object_get(json_object_get(tc, "function"), "name");
    if (json_is_object(tc) && json_is_string(fname)) {
        if (!has_tools)
            return http_error(r, 400, "tool_choice", "invalid_value", "tool_choice names a function but there are no 'tools'"), false;
        *forced = API_TOOLS_NAMED;
        *name = json_string_value(fname);
        return true;
    }
    return http_error(r, 400, "tool_choice", "invalid_type", "field 'tool_choice' must be a string or {\"type\": \"function\", \"function\": {\"name\": ...}}"), false;
}

/* template variables beyond messages/tools: chat_template_kwargs, then enable_thinking (Qwen3) */
static bool parse_kwargs(http_req *r, json_t **out) {
    json_t *kw = json_object();
    json_t *ctk = json_object_get(r->json, "chat_template_kwargs");
    if (ctk && !json_is_null(ctk)) {
        if (!json_is_object(ctk)) {
            json_decref(kw);
            return http_error(r, 400, "chat_template_kwargs", "invalid_type", "field 'chat_template_kwargs' must be an object"), false;
        }
        const char *k;
        json_t *v;
        json_object_foreach(ctk, k, v) {
            if (!strcmp(k, "messages") || !strcmp(k, "tools") || !strcmp(k, "add_generation_prompt")) {
                json_decref(kw);
                return http_error(r, 400, "chat_template_kwargs", "invalid_value",
                                  "chat_template_kwargs.%s: set it as a request field, not a template kwarg", k), false;
            }
            json_object_set(kw, k, v);
        }
    }
    bool th, has_th;
    if (!jv_bool(r, "enable_thinking", &th, &has_th)) {
        json_decref(kw);
        return false;
    }
    if (has_th && !json_object_get(kw, "enable_thinking")) json_object_set_new(kw, "enable_thinking", json_boolean(th));
    *out = kw;
    return true;
}

bool api_render_messages(http_req *r, ragd_buf *out, api_chat_tools *tools_out) {
    json_t *msgs = json_object_get(r->json, "messages");
    if (!msgs || json_is_null(msgs)) return http_error(r, 400, "messages", "missing_field", "missing required field 'messages'"), false;
    if (!json_is_array(msgs)) return http_error(r, 400, "messages", "invalid_type", "field 'messages' must be an array"), false;
    size_t n = json_array_size(msgs);
    if (!n) return http_error(r, 400, "messages", "empty_input", "field 'messages' is an empty list"), false;
    if (n > 4096) return http_error(r, 400, "messages", "too_many_inputs", "field 'messages' has %zu entries; the limit is 4096", n), false;
    const ragd_chat_template *tpl = r->sm->chat_template;
    if (!tpl)
        return http_error(r, 400, "messages", "unsupported", "model %s has no chat template: use /v1/completions with a raw prompt (or start ragd with --chat-template)",
                          r->sm->name), false;
    json_t *conv = json_array(), *tools = NULL, *kwargs = NULL;
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
        json_t *m = json_copy(e), *content = NULL, *calls = NULL;
        json_object_set_new(m, "role", json_string(rs));
        ok = message_content(r, i, rs, json_object_get(e, "content"), &content);
        if (ok) json_object_set_new(m, "content", content);
        json_t *tc = json_object_get(e, "tool_calls");
        if (ok && tc && !json_is_null(tc)) {
            if (strcmp(rs, "assistant")) {
                snprintf(param, sizeof param, "messages[%zu].tool_calls", i);
                http_error(r, 400, param, "invalid_value", "%s: only assistant messages have tool calls", param);
                ok = false;
            } else if ((ok = message_tool_calls(r, i, tc, &calls))) json_object_set_new(m, "tool_calls", calls);
        }
        json_array_append_new(conv, m);
    }
    bool parse = false, parallel = true, agp = true;
    api_tools_forced forced = API_TOOLS_AUTO;
    const char *fname = NULL;
    if (ok) ok = parse_tools(r, &tools) && parse_tool_choice(r, tools != NULL, &parse, &forced, &fname) &&
                 jv_bool(r, "parallel_tool_calls", &parallel, NULL) && jv_bool(r, "add_generation_prompt", &agp, NULL) &&
                 parse_kwargs(r, &kwargs);
    if (ok) {
        ragd_err err = {0};
        ragd_chat_input in = {.messages = conv, .tools = tools, .kwargs = kwargs, .add_generation_prompt = agp};
        ragd_status st = ragd_chat_template_render(tpl, &in, out, &err);
        if (st) {
            http_error_status(r, st, "messages", ragd_err_msg(&err));
            ok = false;
        }
        ragd_err_free(&err);
    }
    if (ok && tools_out) {
        tools_out->format = parse && !forced ? ragd_chat_template_toolcall(tpl) : RAGD_TOOLCALL_NONE;
        tools_out->parallel = parallel;
        tools_out->forced = forced;
        tools_out->name = fname;
    }
    json_decref(conv);
    json_decref(kwargs);
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

/* stop_token_ids (vLLM): null or [token id], each below the vocabulary size */
static bool parse_stop_ids(http_req *r, chat_api *a, ragd_gen_opts *g, int n_vocab) {
    json_t *v = json_object_get(r->json, "stop_token_ids");
    if (!v || json_is_null(v)) return true;
    if (!json_is_array(v)) return http_error(r, 400, "stop_token_ids", "invalid_type", "field 'stop_token_ids' must be an array of token ids"), false;
    size_t n = json_array_size(v);
    if (n > 64) return http_error(r, 400, "stop_token_ids", "too_many_inputs", "field 'stop_token_ids' has %zu ids; the limit is 64", n), false;
    a->stop_ids = ragd_xcalloc(n ? n : 1, sizeof *a->stop_ids);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) >= n_vocab)
            return http_error(r, 400, "stop_token_ids", "invalid_token", "stop_token_ids[%zu] must be a token id in [0, %d)", i, n_vocab), false;
        a->stop_ids[i] = (int32_t)json_integer_value(e);
    }
    g->stop_ids = a->stop_ids;
    g->n_stop_ids = (int)n;
    return true;
}

/* Fields OpenAI clients may send that ragd does not implement: accepted only at their neutral value,
 * otherwise a 400 (never silently ignored, which would return something other than what was asked). */
static bool unsupported_fields(http_req *r) {
    json_t *v;
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
        !jv_number(r, "min_p", 0, 1, &min_p, &has_minp) || !jv_bool(r, "stream", &stream, NULL) || !parse_stop(r, g) ||
        !parse_stop_ids(r, a, g, m->cfg.n_vocab))
        return HTTP_REPLY;
    if (has_topp && (float)top_p <= 0) /* checked as the float the sampler uses: 1e-46 is 0 there */
        return http_error(r, 400, "top_p", "out_of_range", "field 'top_p' is %g (%g as a 32-bit float); it must be greater than 0", top_p, (double)(float)top_p), HTTP_REPLY;
    if (n > (int64_t)r->h->cfg.opts->max_seqs)
        return http_error(r, 400, "n", "out_of_range", "field 'n' is %lld; this server runs at most %lld sequences at once",
                          (long long)n, (long long)r->h->cfg.opts->max_seqs),
               HTTP_REPLY;
    bool echo = false;
    if (!jv_bool(r, "echo", &echo, NULL)) return HTTP_REPLY;
    if (echo && chat) return http_error(r, 400, "echo", "unsupported", "field 'echo' is only supported on /v1/completions"), HTTP_REPLY;
    if (chat) {
        if (!jv_bool(r, "logprobs", &lp, NULL) || !jv_int(r, "top_logprobs", 0, 20, &top_lp, &has_toplp)) return HTTP_REPLY;
        if (has_toplp && !lp)
            return http_error(r, 400, "top_logprobs", "invalid_value", "field 'top_logprobs' needs \"logprobs\": true"), HTTP_REPLY;
    } else {
        bool has_lp;
        if (!jv_int(r, "logprobs", 0, 20, &lp_int, &has_lp)) return HTTP_REPLY;
        lp = has_lp;
        top_lp = lp_int;
        if (echo && lp)
            return http_error(r, 400, "echo", "unsupported", "field 'echo' with 'logprobs' needs the prompt's logprobs, which this server does not compute"),
                   HTTP_REPLY;
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
    bool ignore_eos = false;
    int64_t min_tokens = 0;
    bool has_min;
    if (!jv_bool(r, "ignore_eos", &ignore_eos, NULL) || !jv_int(r, "min_tokens", 0, limit, &min_tokens, &has_min) ||
        !api_parse_logit_controls(r, m->cfg.n_vocab, g, &a->bias) || !api_parse_response_format(r, &a->grammar))
        return HTTP_REPLY;
    /* prompt → tokens */
    ragd_err err = {0};
    ragd_status st;
    if (chat) {
        api_chat_tools tools = {0};
        if (!api_render_messages(r, &a->prompt, &tools)) return HTTP_REPLY;
        a->tool_fmt = tools.format;
        a->parallel = tools.parallel;
        a->tools = tools;
        if (tools.forced && json_object_get(r->json, "response_format") &&
            !json_is_null(json_object_get(r->json, "response_format")))
            return http_error(r, 400, "tool_choice", "invalid_value",
                              "tool_choice \"required\" or a named function cannot be combined with response_format"),
                   HTTP_REPLY;
        if (!api_parse_tool_choice_grammar(r, &tools, &a->grammar)) return HTTP_REPLY;
        if (!api_parse_tool_auto_grammar(r, &tools, &a->grammar, g)) return HTTP_REPLY;
        /* Mistral's [TOOL_CALLS] / [ARGS] and Granite's <|tool_call|> may be special tokens: keep special
         * tokens in the text to see them */
        g->keep_special = a->tool_fmt == RAGD_TOOLCALL_MISTRAL || a->tool_fmt == RAGD_TOOLCALL_MISTRAL_ARGS ||
                          a->tool_fmt == RAGD_TOOLCALL_GRANITE;
        if (a->tool_fmt != RAGD_TOOLCALL_NONE) a->fake = getenv("RAGD_TEST_CHAT_ANSWER");
        st = ragd_tokenizer_encode(m->tok, a->prompt.data, a->prompt.len, false, &r->toks, &err);
    } else {
        json_t *p = json_object_get(r->json, "prompt");
        if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0))) p = json_array_get(p, 0);
        if (!p || json_is_null(p)) return http_error(r, 400, "prompt", "missing_field", "missing required field 'prompt'"), HTTP_REPLY;
        if (json_is_string(p)) {
            if (!json_string_length(p)) return http_error(r, 400, "prompt", "empty_input", "field 'prompt' is an empty string"), HTTP_REPLY;
            st = ragd_tokenizer_encode(m->tok, json_string_value(p), json_string_length(p), true, &r->toks, &err);
            if (echo) ragd_buf_append(&a->echo, json_string_value(p), json_string_length(p));
        } else if (json_is_array(p) && json_array_size(p) && json_is_integer(json_array_get(p, 0))) {
            if (!jv_token_array(r, p, "prompt", m->cfg.n_vocab, &r->toks)) return HTTP_REPLY;
            /* echo of token ids: their text, special tokens included (as vLLM detokenizes the prompt) */
            st = echo ? ragd_tokenizer_decode(m->tok, r->toks.ids, r->toks.n, false, &a->echo, &err) : RAGD_OK;
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
    if (min_tokens > want)
        return http_error(r, 400, "min_tokens", "invalid_value", "field 'min_tokens' (%lld) exceeds max_tokens (%lld)",
                          (long long)min_tokens, (long long)want),
               HTTP_REPLY;
    if (a->grammar && !g->grammar_trigger && (ignore_eos || min_tokens > 0)) /* the grammar decides where the answer ends */
        return http_error(r, 400, ignore_eos ? "ignore_eos" : "min_tokens", "invalid_value",
                          "field '%s' cannot be combined with structured output (response_format or a forced tool_choice)",
                          ignore_eos ? "ignore_eos" : "min_tokens"),
               HTTP_REPLY;
    g->grammar = a->grammar;
    /* sampling: request > generation_config.json > OpenAI defaults */
    g->max_tokens = (int)want;
    g->min_tokens = (int)min_tokens;
    g->ignore_eos = ignore_eos;
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
    a->sent = ragd_xcalloc((size_t)n, sizeof *a->sent);

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
