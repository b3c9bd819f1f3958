/* api_info.c — the synchronous endpoints, answered on the HTTP worker without the scheduler:
 * GET /v1/models, GET /v1/models/{id}, POST /tokenize, POST /detokenize, GET /health, GET /health/ready, GET /metrics,
 * GET /diagnostics.
 *
 *   /tokenize    {"text" | "prompt": str, "add_special_tokens"?: bool (true), "model"?}
 *                or {"messages": [...], "tools"?, "enable_thinking"?, ...} (the chat prompt as /v1/chat/completions builds it)
 *                → {"tokens": [ids], "count", "max_model_len", "model"}
 *   /detokenize  {"tokens" | "ids": [ids], "skip_special_tokens"?: bool (false), "model"?}
 *                → {"prompt": str, "model"}
 * "model" may name any served model; without it the chat model is used, else embed, else rerank.
 */
#include "http/http_internal.h"

#include <stdio.h>

static ragd_served_model *default_model(ragd_http *h) {
    for (int r = RAGD_ROLE_COUNT - 1; r >= 0; r--)
        if (h->role[r]) return h->role[r];
    return NULL;
}

static int model_max_len(const ragd_served_model *sm) {
    int m = 0;
    for (int r = 0; r < RAGD_ROLE_COUNT; r++)
        if (sm->roles[r] && sm->max_len[r] > m) m = sm->max_len[r];
    return m;
}

/* 404 for an unknown model name, listing every model's names */
static void not_found(http_req *r, const char *name) {
    ragd_buf names = {0};
    http_model_names(r->h, &names);
    http_error(r, 404, "model", "model_not_found", "model '%.200s' does not exist; the models are %s (GET /v1/models)", name,
               names.data);
    ragd_buf_free(&names);
}

/* "model": any served model by name or alias. */
static bool any_model(http_req *r, ragd_served_model **out) {
    json_t *v = json_object_get(r->json, "model");
    if (!v || json_is_null(v)) {
        *out = default_model(r->h);
        if (!*out) return http_error(r, 404, "model", "model_not_found", "this server has no model"), false;
        return true;
    }
    if (!json_is_string(v)) return http_error(r, 400, "model", "invalid_type", "field 'model' must be a string"), false;
    if ((*out = http_find_model(r->h, json_string_value(v), json_string_length(v)))) return true;
    not_found(r, json_string_value(v));
    return false;
}

static void roles_json(ragd_buf *b, const ragd_served_model *sm) {
    ragd_buf_putc(b, '[');
    bool first = true;
    for (int r = 0; r < RAGD_ROLE_COUNT; r++)
        if (sm->roles[r]) {
            ragd_buf_printf(b, "%s\"%s\"", first ? "" : ",", ragd_role_name((ragd_role)r));
            first = false;
        }
    ragd_buf_putc(b, ']');
}

/* one model object of GET /v1/models (OpenAI's fields, then ragd's) */
static void model_json(ragd_buf *b, const ragd_served_model *sm) {
    ragd_buf_puts(b, "{\"id\":");
    ragd_buf_json_str(b, sm->name, strlen(sm->name));
    if (sm->n_aliases) { /* the other names it answers to */
        ragd_buf_puts(b, ",\"aliases\":[");
        for (int i = 0; i < sm->n_aliases; i++) {
            if (i) ragd_buf_putc(b, ',');
            ragd_buf_json_str(b, sm->aliases[i], strlen(sm->aliases[i]));
        }
        ragd_buf_putc(b, ']');
    }
    ragd_buf_puts(b, ",\"object\":\"model\",\"created\":0,\"owned_by\":\"ragd\",\"root\":");
    ragd_buf_json_str(b, sm->model->path, strlen(sm->model->path));
    ragd_buf_printf(b, ",\"max_model_len\":%d,\"tasks\":", model_max_len(sm));
    roles_json(b, sm);
    ragd_buf_puts(b, ",\"architecture\":");
    const char *arch = ragd_arch_name(sm->model->cfg.arch);
    ragd_buf_json_str(b, arch, strlen(arch));
    if (sm->roles[RAGD_ROLE_EMBED]) {
        static const char *pools[] = {"last", "mean", "cls", "max"};
        ragd_buf_printf(b, ",\"pooling\":\"%s\"", pools[ragd_embed_pooling(sm->model)]);
    }
    if (sm->roles[RAGD_ROLE_RERANK]) /* what a rerank score is for this model */
        ragd_buf_puts(b, ragd_rerank_is_cross_encoder(sm->model)
                             ? ",\"rerank_score\":\"sigmoid(logit)\",\"rerank_logit\":\"classifier logit\""
                             : ",\"rerank_score\":\"softmax([no, yes])[1]\",\"rerank_logit\":\"yes - no\"");
    ragd_buf_printf(b, ",\"quality\":\"%s\",\"ready\":%s}", sm->demo ? "demo" : "full",
                    atomic_load(&sm->ready) ? "true" : "false");
}

http_outcome api_models(http_req *r) {
    ragd_buf *b = &r->out;
    ragd_buf_puts(b, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < r->h->cfg.n_models; i++) {
        if (i) ragd_buf_putc(b, ',');
        model_json(b, r->h->cfg.models[i]);
    }
    ragd_buf_puts(b, "]}");
    http_reply_json(r, 200);
    return HTTP_REPLY;
}

/* GET /v1/models/{id}: the id may contain '/' (a Hugging Face repo name given as --served-model-name) */
http_outcome api_model(http_req *r) {
    const char *id = r->path_arg ? r->path_arg : "";
    const ragd_served_model *sm = http_find_model(r->h, id, strlen(id));
    if (!sm) return not_found(r, id), HTTP_REPLY;
    model_json(&r->out, sm);
    http_reply_json(r, 200);
    return HTTP_REPLY;
}

http_outcome api_tokenize(http_req *r) {
    static const char *const keys[] = {"text", "prompt", "messages", "enable_thinking", "add_special_tokens", "model",
                                       "tools", "tool_choice", "parallel_tool_calls", "add_generation_prompt",
                                       "chat_template_kwargs", NULL};
    ragd_served_model *sm;
    if (!jv_parse_body(r) || !jv_check_keys(r, keys) || !any_model(r, &sm)) return HTTP_REPLY;
    const char *text, *prompt;
    size_t tl, pl;
    bool add = true, thinking = true; /* enable_thinking: type-checked here, used by the chat rendering */
    if (!jv_string(r, "text", false, &text, &tl) || !jv_string(r, "prompt", false, &prompt, &pl) ||
        !jv_bool(r, "add_special_tokens", &add, NULL) || !jv_bool(r, "enable_thinking", &thinking, NULL))
        return HTTP_REPLY;
    bool has_msgs = json_object_get(r->json, "messages") != NULL;
    if ((text != NULL) + (prompt != NULL) + has_msgs > 1)
        return http_error(r, 400, "text", "invalid_value", "send one of 'text', 'prompt' or 'messages'"), HTTP_REPLY;
    if (!text && !prompt && !has_msgs)
        return http_error(r, 400, "text", "missing_field", "missing required field 'text' (or 'prompt' or 'messages')"), HTTP_REPLY;
    ragd_err err = {0};
    ragd_status st;
    const char *param = has_msgs ? "messages" : prompt ? "prompt" : "text";
    if (has_msgs) { /* the chat prompt exactly as /v1/chat/completions builds it */
        ragd_buf rendered = {0};
        r->sm = sm;
        bool ok = api_render_messages(r, &rendered, NULL);
        /* tokens (≤ 1 per byte, 4 bytes each) and their reply (≤ 8 bytes each), reserved before encoding */
        ok = ok && http_mem_reserve(r, rendered.len + 12 * (rendered.len + 16), "its tokens and reply");
        st = ok ? ragd_tokenizer_encode(sm->model->tok, rendered.data, rendered.len, false, &r->toks, &err) : RAGD_OK;
        ragd_buf_free(&rendered);
        if (!ok) return HTTP_REPLY;
    } else {
        if (!text) {
            text = prompt;
            tl = pl;
        }
        if (!http_mem_reserve(r, 12 * (tl + 16), "its tokens and reply")) return HTTP_REPLY;
        st = ragd_tokenizer_encode(sm->model->tok, text, tl, add, &r->toks, &err);
    }
    if (st) {
        http_error_status(r, st, param, ragd_err_msg(&err));
        ragd_err_free(&err);
        return HTTP_REPLY;
    }
    ragd_buf *b = &r->out;
    ragd_buf_puts(b, "{\"tokens\":[");
    for (size_t i = 0; i < r->toks.n; i++) ragd_buf_printf(b, "%s%d", i ? "," : "", r->toks.ids[i]);
    ragd_buf_printf(b, "],\"count\":%zu,\"max_model_len\":%d,\"model\":", r->toks.n, model_max_len(sm));
    ragd_buf_json_str(b, sm->name, strlen(sm->name));
    ragd_buf_putc(b, '}');
    http_reply_json(r, 200);
    return HTTP_REPLY;
}

http_outcome api_detokenize(http_req *r) {
    static const char *const keys[] = {"tokens", "ids", "skip_special_tokens", "model", NULL};
    ragd_served_model *sm;
    if (!jv_parse_body(r) || !jv_check_keys(r, keys) || !any_model(r, &sm)) return HTTP_REPLY;
    bool skip = false;
    if (!jv_bool(r, "skip_special_tokens", &skip, NULL)) return HTTP_REPLY;
    json_t *t = json_object_get(r->json, "tokens");
    const char *param = "tokens";
    if (!t) {
        t = json_object_get(r->json, "ids");
        param = "ids";
    }
    if (!t || json_is_null(t)) return http_error(r, 400, "tokens", "missing_field", "missing required field 'tokens'"), HTTP_REPLY;
    if (!json_is_array(t)) return http_error(r, 400, param, "invalid_type", "field '%s' must be an array of token ids", param), HTTP_REPLY;
    int n_vocab = (int)ragd_tokenizer_vocab_size(sm->model->tok);
    if (!jv_token_array(r, t, param, n_vocab, &r->toks)) return HTTP_REPLY;
    ragd_buf text = {0};
    ragd_err err = {0};
    ragd_status st = ragd_tokenizer_decode(sm->model->tok, r->toks.ids, r->toks.n, skip, &text, &err);
    if (st) {
        http_error_status(r, st, param, ragd_err_msg(&err));
        ragd_err_free(&err);
        ragd_buf_free(&text);
        return HTTP_REPLY;
    }
    if (!http_mem_reserve(r, 4 * r->toks.n + 7 * text.len + 256, "its text and reply")) { /* escaping: ≤ 6× */
        ragd_buf_free(&text);
        return HTTP_REPLY;
    }
    ragd_buf *b = &r->out;
    ragd_buf_puts(b, "{\"prompt\":");
    ragd_buf_json_str(b, text.data ? text.data : "", text.len);
    ragd_buf_puts(b, ",\"model\":");
    ragd_buf_json_str(b, sm->name, strlen(sm->name));
    ragd_buf_putc(b, '}');
    ragd_buf_free(&text);
    http_reply_json(r, 200);
    return HTTP_REPLY;
}

http_outcome api_health(http_req *r) {
    ragd_sched *sched = atomic_load(&r->h->sched);
    bool ok = !sched || ragd_sched_alive(sched, 300.0); /* loading counts as alive */
    ragd_buf_puts(&r->out, !sched ? "{\"status\":\"loading\"}" : ok ? "{\"status\":\"ok\"}" : "{\"status\":\"scheduler not responding\"}");
    http_reply_json(r, ok ? 200 : 503);
    return HTTP_REPLY;
}

http_outcome api_ready(http_req *r) {
    bool ready = !atomic_load(&r->h->quiesced) && atomic_load(&r->h->sched);
    ragd_buf *b = &r->out;
    ragd_buf_puts(b, "{\"models\":{");
    for (int i = 0; i < r->h->cfg.n_models; i++) {
        const ragd_served_model *sm = r->h->cfg.models[i];
        bool ok = atomic_load(&sm->ready);
        ready = ready && ok;
        if (i) ragd_buf_putc(b, ',');
        ragd_buf_json_str(b, sm->name, strlen(sm->name));
        ragd_buf_putc(b, ':');
        const char *why = ok ? "ready" : sm->not_ready_reason ? sm->not_ready_reason : "loading";
        ragd_buf_json_str(b, why, strlen(why));
    }
    ragd_buf_printf(b, "},\"status\":\"%s\"}", ready ? "ready" : atomic_load(&r->h->quiesced) ? "shutting down" : "not ready");
    http_reply_json(r, ready ? 200 : 503);
    return HTTP_REPLY;
}

http_outcome api_metrics(http_req *r) {
    ragd_metrics_render(r->h->cfg.metrics, &r->out);
    ragd_nvml_render(r->h->cfg.nvml, &r->out);
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    return HTTP_REPLY;
}

static void plan_json(ragd_buf *b, const ragd_engine_plan *p) {
    ragd_buf_printf(b, "{\"weights\":%zu,\"activations\":%zu,\"kv_cache\":%zu,\"workspace\":%zu,\"total\":%zu", p->weights,
                    p->activations, p->kv_cache, p->workspace, p->total);
    if (p->kv_blocks)
        ragd_buf_printf(b, ",\"kv_blocks\":%d,\"kv_block_size\":%d,\"kv_block_bytes\":%zu,\"kv_tokens\":%lld", p->kv_blocks,
                        p->kv_block_size, p->kv_block_bytes, (long long)p->kv_blocks * p->kv_block_size);
    if (p->seq_state_bytes) /* hybrid models: the Gated DeltaNet state of every sequence slot */
        ragd_buf_printf(b, ",\"seq_state\":%zu,\"seq_state_bytes\":%zu", p->seq_state, p->seq_state_bytes);
    ragd_buf_putc(b, '}');
}

http_outcome api_diagnostics(http_req *r) {
    ragd_http *h = r->h;
    ragd_sched *sched = atomic_load(&h->sched);
    ragd_buf *b = &r->out;
    ragd_buf_printf(b, "{\"version\":\"%s\",\"build\":{\"commit\":\"%s\",\"type\":\"%s\",\"cuda\":%s,\"compiler\":",
                    RAGD_VERSION, ragd_build_commit(), RAGD_BUILD_TYPE,
#ifdef RAGD_HAVE_CUDA
                    "true"
#else
                    "false"
#endif
    );
    ragd_buf_json_str(b, __VERSION__, strlen(__VERSION__));
    ragd_buf_printf(b, ",\"asan\":%s},\"versions\":%s,\"device\":{\"name\":",
#if defined(__SANITIZE_ADDRESS__)
                    "true",
#else
                    "false",
#endif
                    h->cfg.versions ? h->cfg.versions : "null");
    const char *dd = h->cfg.device_desc ? h->cfg.device_desc : "?", *dc = h->cfg.device_choice ? h->cfg.device_choice : "";
    ragd_buf_json_str(b, dd, strlen(dd));
    ragd_buf_puts(b, ",\"choice\":");
    ragd_buf_json_str(b, dc, strlen(dc));
    ragd_buf_puts(b, ",\"gpu_health\":");
    const char *gb = h->cfg.gpu_binding ? h->cfg.gpu_binding : "";
    ragd_buf_json_str(b, gb, strlen(gb));
    ragd_buf_puts(b, "},");
    ragd_nvml_json(h->cfg.nvml, b);
    ragd_buf_puts(b, ",\"models\":[");
    for (int i = 0; i < h->cfg.n_models; i++) {
        const ragd_served_model *sm = h->cfg.models[i];
        const ragd_model_config *c = &sm->model->cfg;
        ragd_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        ragd_buf_json_str(b, sm->name, strlen(sm->name));
        ragd_buf_puts(b, ",\"path\":");
        ragd_buf_json_str(b, sm->model->path, strlen(sm->model->path));
        ragd_buf_puts(b, ",\"tasks\":");
        roles_json(b, sm);
        ragd_buf_puts(b, ",\"sources\":{"); /* the path each task was given: several when they share this model */
        for (int rr = 0, first = 1; rr < RAGD_ROLE_COUNT; rr++)
            if (sm->roles[rr] && sm->role_path[rr]) {
                ragd_buf_printf(b, "%s\"%s\":", first ? "" : ",", ragd_role_name((ragd_role)rr));
                ragd_buf_json_str(b, sm->role_path[rr], strlen(sm->role_path[rr]));
                first = 0;
            }
        ragd_buf_putc(b, '}');
        ragd_buf_printf(b, ",\"quality\":\"%s\",\"ready\":%s,\"not_ready_reason\":", sm->demo ? "demo" : "full",
                        atomic_load(&sm->ready) ? "true" : "false");
        if (sm->not_ready_reason) ragd_buf_json_str(b, sm->not_ready_reason, strlen(sm->not_ready_reason));
        else ragd_buf_puts(b, "null");
        ragd_buf_printf(b, ",\"arch\":\"%s\",\"params\":%zu,\"config\":{\"n_layer\":%d,\"n_embd\":%d,\"n_ff\":%d,\"n_head\":%d,"
                           "\"n_head_kv\":%d,\"head_dim\":%d,\"n_vocab\":%d,\"max_pos\":%d}",
                        ragd_arch_name(c->arch), ragd_model_param_count(sm->model), c->n_layer, c->n_embd, c->n_ff,
                        c->n_head, c->n_head_kv, c->head_dim, c->n_vocab, c->max_pos);
        if (c->hybrid) { /* Qwen3.5: which layers are Gated DeltaNet; the prefix cache is off (engine.c) */
            int n_lin = 0;
            for (int l = 0; l < c->n_layer; l++) n_lin += ragd_model_layer_kind(c, l) == RAGD_LAYER_LINEAR;
            ragd_buf_printf(b, ",\"hybrid\":{\"linear_attention_layers\":%d,\"full_attention_layers\":%d},"
                               "\"prefix_cache\":false,\"prefix_cache_note\":\"off for hybrid models: a cached block "
                               "holds no Gated DeltaNet state\"", n_lin, c->n_layer - n_lin);
        } else if (sm->roles[RAGD_ROLE_CHAT]) {
            ragd_buf_printf(b, ",\"prefix_cache\":%s", h->cfg.opts->no_prefix_cache ? "false" : "true");
        }
        ragd_buf_printf(b, ",\"limits\":{\"max_batch_tokens\":%lld,\"max_seqs\":%d",
                        (long long)h->cfg.opts->max_batch_tokens, sm->batch_seqs);
        for (int rr = 0; rr < RAGD_ROLE_COUNT; rr++)
            if (sm->roles[rr]) ragd_buf_printf(b, ",\"max_len_%s\":%d", ragd_role_name((ragd_role)rr), sm->max_len[rr]);
        ragd_buf_puts(b, "},\"weights\":"); /* sha256 per weight file: "pending" until the background thread is done */
        ragd_model_digests_json(h->cfg.digests, sm->model, b);
        ragd_buf_puts(b, ",\"memory_plan\":");
        if (sched) plan_json(b, &sm->plan); /* written by the device thread until the hand-over */
        else ragd_buf_puts(b, "null");
        ragd_buf_putc(b, '}');
    }
    ragd_buf_puts(b, "],\"options\":");
    ragd_serve_opts_json(h->cfg.opts, b);
    ragd_buf_printf(b, ",\"scheduler\":{\"in_flight\":%d,\"alive\":%s},\"http\":{\"active_requests\":%d,\"port\":%d}}",
                    sched ? ragd_sched_in_flight(sched) : 0, sched && ragd_sched_alive(sched, 300.0) ? "true" : "false",
                    atomic_load(&h->active), h->port);
    http_reply_json(r, 200);
    return HTTP_REPLY;
}

/* GET /info — TEI's model info for the embedding model (else the reranker): model_id, model_dtype,
 * model_type {"embedding": {"pooling"}} or {"reranker": {"id2label", "label2id"}} (TEI's name for a
 * one-label classifier), max_input_length, max_batch_tokens, max_client_batch_size, tokenization_workers,
 * version, and TEI's other fields with ragd's values (null where ragd has none); model_sha is the weights'
 * sha256 (ragd_model_digest_of) once the background digest is done, with model_sha_status done|pending|failed. */
http_outcome api_tei_info(http_req *r) {
    ragd_http *h = r->h;
    ragd_served_model *sm = h->role[RAGD_ROLE_EMBED];
    ragd_role role = RAGD_ROLE_EMBED;
    if (!sm) {
        sm = h->role[RAGD_ROLE_RERANK];
        role = RAGD_ROLE_RERANK;
    }
    if (!sm) {
        http_error(r, 404, NULL, "model_not_found", "this server has no embedding or reranking model (GET /info describes one)");
        return HTTP_REPLY;
    }
    const ragd_serve_opts *o = h->cfg.opts;
    ragd_buf *b = &r->out;
    ragd_buf_reset(b);
    ragd_buf_puts(b, "{\"model_id\":");
    ragd_buf_json_str(b, sm->name, strlen(sm->name));
    /* model_sha: TEI gives the hub revision (a string or null); ragd the weights' sha256 (ragd_model_digest_of), null
     * while the background digest runs or when it failed; model_sha_status says which */
    char hex[65];
    ragd_digest_state ds = ragd_model_digest_of(h->cfg.digests, sm->model, hex);
    if (ds == RAGD_DIGEST_DONE) ragd_buf_printf(b, ",\"model_sha\":\"%s\",\"model_sha_status\":\"done\"", hex);
    else ragd_buf_printf(b, ",\"model_sha\":null,\"model_sha_status\":\"%s\"", ds == RAGD_DIGEST_PENDING ? "pending" : "failed");
    ragd_buf_puts(b, ",\"model_dtype\":");
    /* what the forward pass computes in: fp32 on the CPU, bf16 weights on the GPU */
    const char *dev = h->cfg.device_desc ? h->cfg.device_desc : "cpu";
    const char *dtype = !strncmp(dev, "cpu", 3) ? "float32" : "bfloat16";
    ragd_buf_json_str(b, dtype, strlen(dtype));
    if (role == RAGD_ROLE_EMBED) {
        static const char *pools[] = {"last", "mean", "cls", "max"};
        ragd_buf_printf(b, ",\"model_type\":{\"embedding\":{\"pooling\":\"%s\"}}", pools[ragd_embed_pooling(sm->model)]);
    } else if (ragd_rerank_is_cross_encoder(sm->model)) {
        ragd_buf_puts(b, ",\"model_type\":{\"reranker\":{\"id2label\":{\"0\":\"LABEL_0\"},\"label2id\":{\"LABEL_0\":0}}}");
    } else { /* Qwen3-Reranker: p(yes) */
        ragd_buf_puts(b, ",\"model_type\":{\"reranker\":{\"id2label\":{\"0\":\"yes\"},\"label2id\":{\"yes\":0}}}");
    }
    ragd_buf_printf(b, ",\"max_concurrent_requests\":%lld,\"max_input_length\":%d,\"max_batch_tokens\":%lld,"
                       "\"max_batch_requests\":%lld,\"max_client_batch_size\":%d,\"auto_truncate\":false,"
                       "\"tokenization_workers\":%lld,\"version\":\"%s\",\"sha\":",
                    (long long)o->max_queue, sm->max_len[role], (long long)o->max_batch_tokens,
                    (long long)sm->batch_seqs, API_MAX_INPUTS, (long long)o->http_threads, RAGD_VERSION);
    const char *commit = ragd_build_commit();
    if (commit && *commit) ragd_buf_json_str(b, commit, strlen(commit));
    else ragd_buf_puts(b, "null");
    ragd_buf_puts(b, ",\"docker_label\":null}");
    http_reply_json(r, 200);
    return HTTP_REPLY;
}
