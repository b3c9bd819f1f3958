/* chat.c — chat formatting: the model's own Jinja chat template (tokenizer_config.json's chat_template,
 * chat_template.jinja, GGUF tokenizer.chat_template, or a --chat-template file) rendered by ragd's
 * interpreter (jinja_*.c) exactly as transformers' apply_chat_template does:
 *   - variables: messages, tools (None when absent), documents (None), add_generation_prompt, the
 *     special tokens (bos_token, eos_token, pad_token) and extra kwargs (enable_thinking, ...), kwargs
 *     winning over special tokens;
 *   - messages as transformers 5 normalizes them: top-level keys whose value is null are dropped (so an
 *     assistant turn with tool_calls and "content": null has no content key), and a reasoning text under
 *     reasoning_content / thinking / reasoning is offered under all of "thinking" and "reasoning_content".
 *   - a model with a template named "tool_use" besides the default (Hermes 2 Pro / 3) renders that one when
 *     the request has tools, as transformers' get_chat_template picks it (a --chat-template file replaces
 *     both).
 * The tool-call syntax the model answers in is recognized from the template (the tool_use one when
 * present: tool calls are only read from answers to requests with tools; toolcall.c parses it).
 *
 * Threading: a compiled template is immutable; renders on several threads share it (each render has
 * its own arena).
 */
#include <stdlib.h>

#include "tasks/jinja.h"
#include "tasks/tasks.h"

struct ragd_chat_template {
    jj_template *tpl;
    jj_template *tool_tpl; /* the model's "tool_use" template, rendered instead when tools are given; may be NULL */
    char *bos, *eos, *pad; /* special token texts (NULL when absent) */
    ragd_toolcall_format toolcall;
};

static bool contains(const char *s, const char *needle) { return s && strstr(s, needle) != NULL; }

static ragd_toolcall_format detect_toolcall(const char *src) {
    if (contains(src, "<|tool_call|>")) return RAGD_TOOLCALL_GRANITE;
    if (contains(src, "<tool_call>")) return RAGD_TOOLCALL_HERMES;
    if (contains(src, "[TOOL_CALLS]")) return contains(src, "[ARGS]") ? RAGD_TOOLCALL_MISTRAL_ARGS : RAGD_TOOLCALL_MISTRAL;
    if (contains(src, "<|start_header_id|>") && contains(src, "tools") &&
        (contains(src, "\"parameters\"") || contains(src, "<|python_tag|>")))
        return RAGD_TOOLCALL_LLAMA3;
    return RAGD_TOOLCALL_NONE;
}

ragd_status ragd_chat_template_compile(const char *src, size_t n, const char *bos_token, const char *eos_token,
                                       const char *pad_token, ragd_chat_template **out, ragd_err *err) {
    size_t bad;
    if (!ragd_utf8_valid(src, n, &bad)) return ragd_err_set(err, RAGD_EFORMAT, "chat template: not valid UTF-8");
    jj_template *t = NULL;
    ragd_status st = jj_compile(src, n, &t, err);
    if (st) return ragd_err_prefix(err, "chat template");
    ragd_chat_template *c = ragd_xcalloc(1, sizeof *c);
    c->tpl = t;
    c->bos = bos_token ? ragd_xstrdup(bos_token) : NULL;
    c->eos = eos_token ? ragd_xstrdup(eos_token) : NULL;
    c->pad = pad_token ? ragd_xstrdup(pad_token) : NULL;
    char *z = ragd_xstrndup(src, n);
    c->toolcall = detect_toolcall(z);
    free(z);
    *out = c;
    return RAGD_OK;
}

ragd_status ragd_chat_template_add_tool_use(ragd_chat_template *t, const char *src, size_t n, ragd_err *err) {
    if (!ragd_utf8_valid(src, n, NULL)) return ragd_err_set(err, RAGD_EFORMAT, "tool_use chat template: not valid UTF-8");
    jj_template *tt = NULL;
    ragd_status st = jj_compile(src, n, &tt, err);
    if (st) return ragd_err_prefix(err, "tool_use chat template");
    jj_template_free(t->tool_tpl);
    t->tool_tpl = tt;
    char *z = ragd_xstrndup(src, n);
    ragd_toolcall_format f = detect_toolcall(z);
    free(z);
    if (f != RAGD_TOOLCALL_NONE) t->toolcall = f;
    return RAGD_OK;
}

static const char *token_text(const ragd_model *m, int32_t id) {
    return id >= 0 ? ragd_tokenizer_id_to_token(m->tok, id) : NULL;
}

ragd_status ragd_chat_template_for_model(const ragd_model *m, const char *path, ragd_chat_template **out,
                                         ragd_err *err) {
    char *file = NULL;
    size_t n = 0;
    const char *src;
    if (!m->tok) return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s has no tokenizer", m->name);
    if (path) {
        ragd_status st = ragd_file_read(path, &file, &n, err);
        if (st) return ragd_err_prefix(err, "--chat-template");
        src = file;
    } else {
        src = ragd_tokenizer_chat_template(m->tok);
        if (!src) return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s has no chat template: use a raw prompt or --chat-template", m->name);
        n = strlen(src);
    }
    ragd_status st = ragd_chat_template_compile(src, n, token_text(m, ragd_tokenizer_bos_id(m->tok)),
                                                token_text(m, ragd_tokenizer_eos_id(m->tok)),
                                                token_text(m, ragd_tokenizer_pad_id(m->tok)), out, err);
    free(file);
    const char *tool_src = path ? NULL : ragd_tokenizer_chat_template_tool_use(m->tok);
    if (!st && tool_src && (st = ragd_chat_template_add_tool_use(*out, tool_src, strlen(tool_src), err))) {
        ragd_chat_template_free(*out);
        *out = NULL;
    }
    if (st) return ragd_err_prefix(err, "%s %s", path ? path : "model", path ? "" : m->name);
    return RAGD_OK;
}

void ragd_chat_template_free(ragd_chat_template *t) {
    if (!t) return;
    jj_template_free(t->tpl);
    jj_template_free(t->tool_tpl);
    free(t->bos);
    free(t->eos);
    free(t->pad);
    free(t);
}

ragd_toolcall_format ragd_chat_template_toolcall(const ragd_chat_template *t) { return t->toolcall; }

/* transformers 5's message normalization, on a copy */
static json_t *normalize_messages(const json_t *msgs) {
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach((json_t *)msgs, i, m) {
        if (!json_is_object(m)) {
            json_array_append(out, m);
            continue;
        }
        json_t *c = json_object();
        const char *k;
        json_t *v;
        json_t *reasoning = NULL;
        static const char *const fields[] = {"reasoning_content", "thinking", "reasoning"};
        for (int f = 0; f < 3 && !reasoning; f++) {
            json_t *r = json_object_get(m, fields[f]);
            if (r && !json_is_null(r)) reasoning = r;
        }
        if (reasoning) json_object_set(c, "thinking", reasoning);
        json_object_foreach(m, k, v) {
            if (!json_is_null(v)) json_object_set(c, k, v);
        }
        if (reasoning) json_object_set(c, "reasoning_content", reasoning);
        json_array_append_new(out, c);
    }
    return out;
}

static bool set_str(jj_arena *a, jj_dict *d, const char *k, const char *v) {
    jj_str *ks = jj_str_new(a, k, strlen(k)), *vs = v ? jj_str_new(a, v, strlen(v)) : NULL;
    return ks && (!v || vs) && jj_dict_set(a, d, ks, v ? jj_strv(vs) : jj_none());
}

ragd_status ragd_chat_template_render(const ragd_chat_template *t, const ragd_chat_input *in, ragd_buf *out,
                                      ragd_err *err) {
    if (!json_is_array(in->messages)) return ragd_err_set(err, RAGD_EINVAL, "messages must be an array");
    jj_arena a = {.limit = JJ_MAX_ARENA};
    jj_dict *vars = jj_dict_new(&a, 16);
    json_t *msgs = normalize_messages(in->messages);
    jj_val mv = jj_from_json(&a, msgs);
    json_decref(msgs);
    jj_val tv = in->tools ? jj_from_json(&a, in->tools) : jj_none();
    bool ok = vars && !a.exhausted;
    jj_str *k;
    ok = ok && (k = jj_str_new(&a, "messages", 8)) && jj_dict_set(&a, vars, k, mv);
    ok = ok && (k = jj_str_new(&a, "tools", 5)) && jj_dict_set(&a, vars, k, tv);
    ok = ok && (k = jj_str_new(&a, "documents", 9)) && jj_dict_set(&a, vars, k, jj_none());
    ok = ok && (k = jj_str_new(&a, "add_generation_prompt", 21)) &&
         jj_dict_set(&a, vars, k, jj_bool(in->add_generation_prompt));
    if (ok && t->bos) ok = set_str(&a, vars, "bos_token", t->bos);
    if (ok && t->eos) ok = set_str(&a, vars, "eos_token", t->eos);
    if (ok && t->pad) ok = set_str(&a, vars, "pad_token", t->pad);
    if (ok && in->kwargs) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)in->kwargs, key, v) {
            jj_val x = jj_from_json(&a, v);
            if (!(ok = !a.exhausted && (k = jj_str_new(&a, key, strlen(key))) && jj_dict_set(&a, vars, k, x))) break;
        }
    }
    ragd_status st;
    if (!ok) st = ragd_err_set(err, RAGD_ERANGE, "chat template inputs are too large");
    else {
        bool raised = false;
        st = jj_render(in->tools && t->tool_tpl ? t->tool_tpl : t->tpl, vars, &a, in->now, in->now != 0, out, &raised, err);
        if (st && raised) ragd_err_prefix(err, "the chat template refused the messages");
        else if (st) ragd_err_prefix(err, "chat template");
    }
    jj_arena_free(&a);
    return st;
}

/* ---- the model-level convenience API (CLI, tests) ---- */

static bool known_role(const char *r) {
    return !strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant") || !strcmp(r, "tool");
}

ragd_status ragd_chat_render_with(const ragd_chat_template *t, const ragd_chat_msg *msgs, int n, bool enable_thinking,
                                  ragd_buf *out, ragd_err *err) {
    if (n < 1) return ragd_err_set(err, RAGD_EINVAL, "a chat needs at least one message");
    for (int i = 0; i < n; i++) {
        if (!msgs[i].role || !known_role(msgs[i].role))
            return ragd_err_set(err, RAGD_EINVAL, "message %d: role \"%s\" is not system, user, assistant or tool", i,
                                msgs[i].role ? msgs[i].role : "(null)");
        if (!msgs[i].content) return ragd_err_set(err, RAGD_EINVAL, "message %d: no content", i);
    }
    json_t *arr = json_array(), *kw = json_object();
    ragd_status st = RAGD_OK;
    for (int i = 0; i < n && !st; i++) {
        json_t *m = json_pack("{s:s,s:s}", "role", msgs[i].role, "content", msgs[i].content);
        if (!m) st = ragd_err_set(err, RAGD_EINVAL, "message %d: content is not valid UTF-8", i);
        else json_array_append_new(arr, m);
    }
    if (!enable_thinking) json_object_set_new(kw, "enable_thinking", json_false());
    ragd_chat_input in = {.messages = arr, .kwargs = kw, .add_generation_prompt = true};
    if (!st) st = ragd_chat_template_render(t, &in, out, err);
    json_decref(arr);
    json_decref(kw);
    return st;
}

ragd_status ragd_chat_render(const ragd_model *m, const ragd_chat_msg *msgs, int n, bool enable_thinking,
                             ragd_buf *out, ragd_err *err) {
    if (n < 1) return ragd_err_set(err, RAGD_EINVAL, "a chat needs at least one message");
    for (int i = 0; i < n; i++)
        if (!msgs[i].role || !known_role(msgs[i].role))
            return ragd_err_set(err, RAGD_EINVAL, "message %d: role \"%s\" is not system, user, assistant or tool", i,
                                msgs[i].role ? msgs[i].role : "(null)");
    ragd_chat_template *t;
    ragd_status st = ragd_chat_template_for_model(m, NULL, &t, err);
    if (st) return st;
    st = ragd_chat_render_with(t, msgs, n, enable_thinking, out, err);
    ragd_chat_template_free(t);
    return st;
}

ragd_status ragd_chat_prepare(const ragd_model *m, const ragd_chat_msg *msgs, int n, bool enable_thinking,
                              ragd_tok_ids *out, ragd_err *err) {
    ragd_buf b = {0};
    ragd_status st = ragd_chat_render(m, msgs, n, enable_thinking, &b, err);
    if (!st) st = ragd_tokenizer_encode(m->tok, b.data ? b.data : "", b.len, false, out, err);
    ragd_buf_free(&b);
    return st;
}
