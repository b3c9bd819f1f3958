/* api_format.c — the structured-output and sampling-control fields of /v1/chat/completions and
 * /v1/completions: response_format (json_object, json_schema) compiled to a grammar (src/grammar),
 * tool_choice "required" / a named function as a grammar over the tools' parameter schemas (as vLLM
 * does: a named function's answer is its arguments object; "required" is a JSON array of
 * {"name", "parameters"} objects), tool_choice auto as a lazy grammar in the template's syntax (free text
 * until the model starts a call, then the calls constrained), and presence_penalty / frequency_penalty /
 * repetition_penalty / logit_bias. Every problem is a 400 naming the field (a schema keyword the compiler does not support
 * names the keyword and its path inside the schema).
 */
#include "http/http_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "grammar/grammar.h"

#define MAX_LOGIT_BIAS RAGD_MAX_LOGIT_BIAS /* the scheduler's edit buffer is planned for it */

/* A 400 for a schema the compiler refused: "param: <compiler message>". */
static bool schema_error(http_req *r, const char *param, ragd_status st, const ragd_err *err) {
    http_error(r, 400, param, st == RAGD_ENOMEM ? "out_of_memory" : "unsupported", "%s: %s", param, ragd_err_msg(err));
    return false;
}

static bool structured_available(http_req *r, const char *param) {
    if (r->sm->vocab_trie) return true;
    http_error(r, 400, param, "unsupported",
               "%s needs structured output, which is not available for model %s (its tokenizer's tokens are not byte strings)",
               param, r->sm->name);
    return false;
}

bool api_parse_response_format(http_req *r, ragd_grammar **out) {
    *out = NULL;
    json_t *v = json_object_get(r->json, "response_format");
    if (!v || json_is_null(v)) return true;
    json_t *t = json_object_get(v, "type");
    if (!json_is_object(v) || !json_is_string(t))
        return http_error(r, 400, "response_format", "invalid_type",
                          "field 'response_format' must be {\"type\": \"text\" | \"json_object\" | \"json_schema\", ...}"),
               false;
    const char *type = json_string_value(t);
    if (!strcmp(type, "text")) return true;
    ragd_err err = {0};
    ragd_status st;
    if (!strcmp(type, "json_object")) {
        if (!structured_available(r, "response_format")) return false;
        st = ragd_grammar_json_object(out, &err);
        if (st) {
            schema_error(r, "response_format", st, &err);
            ragd_err_free(&err);
            return false;
        }
        return true;
    }
    if (strcmp(type, "json_schema"))
        return http_error(r, 400, "response_format.type", "unsupported",
                          "response_format type \"%s\" is not supported (text, json_object, json_schema)", type),
               false;
    json_t *js = json_object_get(v, "json_schema");
    if (!json_is_object(js))
        return http_error(r, 400, "response_format.json_schema", js ? "invalid_type" : "missing_field",
                          "response_format.json_schema must be {\"name\": string, \"schema\": object, \"strict\": bool}"),
               false;
    json_t *name = json_object_get(js, "name"), *strict = json_object_get(js, "strict");
    json_t *schema = json_object_get(js, "schema");
    if (name && !json_is_string(name))
        return http_error(r, 400, "response_format.json_schema.name", "invalid_type",
                          "response_format.json_schema.name must be a string"),
               false;
    if (strict && !json_is_boolean(strict) && !json_is_null(strict))
        return http_error(r, 400, "response_format.json_schema.strict", "invalid_type",
                          "response_format.json_schema.strict must be a boolean"),
               false;
    if (!schema || json_is_null(schema))
        return http_error(r, 400, "response_format.json_schema.schema", "missing_field",
                          "missing required field response_format.json_schema.schema"),
               false;
    if (!structured_available(r, "response_format")) return false;
    /* strict or not, the schema is enforced (as vLLM does): a keyword the compiler cannot enforce is
     * refused rather than ignored */
    if ((st = ragd_grammar_compile_schema(schema, out, &err))) {
        schema_error(r, "response_format.json_schema.schema", st, &err);
        ragd_err_free(&err);
        return false;
    }
    return true;
}

/* ---- tool_choice required / named ----------------------------------------------------------------- */

/* The parameters schema of a tool ({"type": "object"} when it has none). A strict tool's schema must
 * compile; a non-strict one the compiler refuses is loosened to any object. New reference or NULL
 * (400 set). */
static json_t *tool_params(http_req *r, const json_t *fn, size_t k) {
    json_t *par = json_object_get(fn, "parameters"), *strict = json_object_get(fn, "strict");
    if (!par || json_is_null(par)) return json_pack("{s:s}", "type", "object");
    ragd_grammar *g = NULL;
    ragd_err err = {0};
    ragd_status st = ragd_grammar_compile_schema(par, &g, &err);
    ragd_grammar_free(g);
    if (!st) {
        ragd_err_free(&err);
        return json_incref(par);
    }
    if (json_is_true(strict)) {
        char param[64];
        snprintf(param, sizeof param, "tools[%zu].function.parameters", k);
        schema_error(r, param, st, &err);
        ragd_err_free(&err);
        return NULL;
    }
    ragd_err_free(&err);
    return json_pack("{s:s}", "type", "object");
}

/* The grammar of tool calls over every tool (ragd_grammar_compile_calls: the name selects the
 * arguments' schema, so there is no limit on the number of tools beyond the 256 of 'tools'). */
static bool calls_grammar(http_req *r, const json_t *tools, const ragd_grammar_calls *form, ragd_grammar **out) {
    size_t n = json_array_size(tools);
    const char **names = ragd_xcalloc(n, sizeof *names);
    json_t **params = ragd_xcalloc(n, sizeof *params);
    bool ok = true;
    for (size_t k = 0; k < n && ok; k++) {
        json_t *fn = json_object_get(json_array_get(tools, k), "function");
        names[k] = json_string_value(json_object_get(fn, "name"));
        for (size_t j = 0; j < k && ok; j++)
            if (!strcmp(names[j], names[k])) {
                http_error(r, 400, "tools", "invalid_value", "tools[%zu] and tools[%zu] are both named \"%s\"", j, k,
                           names[k]);
                ok = false;
            }
        if (ok) ok = (params[k] = tool_params(r, fn, k)) != NULL;
    }
    if (ok) {
        ragd_grammar_calls spec = *form; /* the syntax: keys, array or not, raw text, marker tokens */
        spec.names = names;
        spec.params = (const json_t *const *)params;
        spec.n = (int)n;
        spec.name_key = "name";
        ragd_err err = {0};
        ragd_status st = ragd_grammar_compile_calls(&spec, out, &err);
        if (st) ok = schema_error(r, "tools", st, &err);
        ragd_err_free(&err);
    }
    for (size_t k = 0; k < n; k++) json_decref(params[k]);
    free(names);
    free(params);
    return ok;
}

bool api_parse_tool_choice_grammar(http_req *r, const api_chat_tools *t, ragd_grammar **out) {
    if (!t->forced) return true; /* *out untouched (response_format's grammar, if any) */
    *out = NULL;
    if (!structured_available(r, "tool_choice")) return false;
    json_t *tools = json_object_get(r->json, "tools"), *schema = NULL;
    size_t k;
    json_t *e;
    if (t->forced == API_TOOLS_NAMED) {
        json_array_foreach(tools, k, e) {
            json_t *fn = json_object_get(e, "function");
            if (!strcmp(json_string_value(json_object_get(fn, "name")), t->name)) {
                schema = tool_params(r, fn, k);
                if (!schema) return false;
                break;
            }
        }
        if (!schema)
            return http_error(r, 400, "tool_choice", "invalid_value", "tool_choice names function \"%s\", which is not in 'tools'",
                              t->name),
                   false;
    } else { /* required: [{"name": n, "parameters": p}, ...] with at least one call */
        ragd_grammar_calls form = {.args_key = "parameters", .max_items = t->parallel ? -1 : 1};
        return calls_grammar(r, tools, &form, out);
    }
    ragd_err err = {0};
    ragd_status st = ragd_grammar_compile_schema(schema, out, &err);
    json_decref(schema);
    if (st) {
        schema_error(r, "tools", st, &err);
        ragd_err_free(&err);
        return false;
    }
    return true;
}

/* How a call the model starts under tool_choice auto is constrained, per syntax (the calls grammar's
 * prefix / suffix / separators and the trigger that switches it on). */
typedef struct auto_syntax {
    const char *trigger;  /* the marker that starts a call (also looked up as one token) */
    bool lead;            /* the call is the whole answer: the trigger counts only at its start and is
                           * the grammar's first byte */
    const char *args_key;
    int max_items;        /* 0: one object; else a JSON array (-1: any number) */
    const char *prefix, *suffix, *more; /* raw text (ragd_grammar_calls) */
    const char *raw_sep;  /* a raw call name raw_sep {args} (ragd_grammar_calls) */
    const char *markers[2]; /* texts that may be special tokens inside the calls (marker tokens) */
} auto_syntax;

/* The constrained form of each syntax ragd parses (tasks/toolcall.c), parallel calls allowed or not;
 * false when there is none. */
static bool auto_syntax_of(ragd_toolcall_format f, bool parallel, auto_syntax *a) {
    memset(a, 0, sizeof *a);
    switch (f) {
    case RAGD_TOOLCALL_HERMES: /* text <tool_call>\n{...}\n</tool_call>[\n<tool_call>\n{...}\n</tool_call>...] */
        *a = (auto_syntax){.trigger = "<tool_call>", .args_key = "arguments", .prefix = "\n", .suffix = "\n</tool_call>",
                           .more = parallel ? "\n<tool_call>\n" : NULL};
        return true;
    case RAGD_TOOLCALL_LLAMA3: /* [<|python_tag|>]{"name": ..., "parameters": ...} as the whole answer: one call,
                                * parallel or not (Llama 3.1-3.3's templates refuse to replay several: "This
                                * model only supports single tool-calls at once!"; toolcall.c still reads
                                * "; "-separated ones) */
        *a = (auto_syntax){.trigger = "{", .lead = true, .args_key = "parameters"};
        return true;
    case RAGD_TOOLCALL_MISTRAL: /* text [TOOL_CALLS][{"name": ..., "arguments": ...}, ...] */
        *a = (auto_syntax){.trigger = "[TOOL_CALLS]", .args_key = "arguments", .max_items = parallel ? -1 : 1};
        return true;
    case RAGD_TOOLCALL_GRANITE: /* text <|tool_call|>[{"name": ..., "arguments": ...}, ...] */
        *a = (auto_syntax){.trigger = "<|tool_call|>", .args_key = "arguments", .max_items = parallel ? -1 : 1};
        return true;
    case RAGD_TOOLCALL_MISTRAL_ARGS: /* text [TOOL_CALLS]name[ARGS]{...}[[TOOL_CALLS]name[ARGS]{...}...]: [ARGS] and the
                                      * next [TOOL_CALLS] are special tokens inside the calls (marker tokens) */
        *a = (auto_syntax){.trigger = "[TOOL_CALLS]", .raw_sep = "[ARGS]", .more = parallel ? "[TOOL_CALLS]" : NULL,
                           .markers = {"[ARGS]", "[TOOL_CALLS]"}};
        return true;
    case RAGD_TOOLCALL_NONE: return false;
    }
    return false;
}

bool api_parse_tool_auto_grammar(http_req *r, const api_chat_tools *t, ragd_grammar **out, ragd_gen_opts *g) {
    g->grammar_trigger = NULL;
    g->has_trigger_id = false;
    g->grammar_trigger_lead = false;
    json_t *tools = json_object_get(r->json, "tools");
    auto_syntax sx;
    if (t->forced || *out || !json_array_size(tools) || !r->sm->vocab_trie || !auto_syntax_of(t->format, t->parallel, &sx))
        return true;
    /* test hook RAGD_TEST_TOOL_TRIGGER (the random-weight fixtures never write the marker): the grammar
     * starts after this text instead, and writes the marker itself — the same path with another trigger
     * (not for a leading trigger, whose grammar already writes it) */
    const char *test = getenv("RAGD_TEST_TOOL_TRIGGER");
    bool hook = test && *test && strlen(test) < 32 && !sx.lead;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s%s", hook ? sx.trigger : "", sx.prefix ? sx.prefix : "");
    ragd_grammar_calls form = {.args_key = sx.args_key, .max_items = sx.max_items, .prefix = prefix, .suffix = sx.suffix,
                               .more = sx.more, .max_more = sx.more ? -1 : 0, .raw_sep = sx.raw_sep};
    int32_t mk_ids[2];
    const char *mk_texts[2];
    for (int i = 0; i < 2 && sx.markers[i]; i++) { /* those of the vocabulary's tokens the masks' trie lacks */
        int32_t mid = ragd_tokenizer_token_to_id(r->sm->model->tok, sx.markers[i]);
        int len = 0;
        if (mid < 0 || mid >= ragd_vocab_trie_n_vocab(r->sm->vocab_trie) || ragd_vocab_trie_token(r->sm->vocab_trie, mid, &len))
            continue;
        mk_ids[form.n_markers] = mid;
        mk_texts[form.n_markers++] = sx.markers[i];
    }
    form.marker_ids = mk_ids;
    form.marker_texts = mk_texts;
    if (!calls_grammar(r, tools, &form, out)) return false;
    g->grammar_trigger = hook ? test : sx.trigger;
    g->grammar_trigger_lead = sx.lead;
    /* the marker as one token (special tokens have no text in the token masks' trie: Mistral's
     * [TOOL_CALLS], Granite's <|tool_call|>); Llama 3's <|python_tag|> may open a call too */
    int32_t id = hook ? -1 : ragd_tokenizer_token_to_id(r->sm->model->tok, sx.lead ? "<|python_tag|>" : sx.trigger);
    if (id >= 0) {
        g->has_trigger_id = true;
        g->grammar_trigger_id = id;
    }
    return true;
}

json_t *api_forced_tool_calls(const api_chat_tools *t, const char *text, size_t n, const char *id_prefix) {
    json_t *v = json_loadb(text, n, 0, NULL);
    if (!v) return NULL;
    json_t *calls = json_array();
    if (t->forced == API_TOOLS_NAMED && json_is_object(v)) {
        json_array_append_new(calls, json_pack("{s:s%, s:s, s:{s:s, s:s%}}", "id", "", (size_t)0, "type", "function", "function",
                                               "name", t->name, "arguments", text, n));
    } else if (t->forced == API_TOOLS_REQUIRED && json_is_array(v)) {
        size_t k;
        json_t *c;
        json_array_foreach(v, k, c) {
            json_t *name = json_object_get(c, "name"), *par = json_object_get(c, "parameters");
            if (!json_is_string(name) || !json_is_object(par)) continue;
            char *args = json_dumps(par, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_array_append_new(calls, json_pack("{s:s, s:s, s:{s:O, s:s}}", "id", "", "type", "function", "function", "name",
                                                   name, "arguments", args ? args : "{}"));
            free(args);
        }
    }
    json_decref(v);
    if (!json_array_size(calls)) {
        json_decref(calls);
        return NULL;
    }
    size_t k;
    json_t *c;
    json_array_foreach(calls, k, c) {
        char id[160];
        snprintf(id, sizeof id, "call_%s_%zu", id_prefix, k);
        json_object_set_new(c, "id", json_string(id));
    }
    return calls;
}

/* ---- penalties and logit_bias ----------------------------------------------------------------------- */

bool api_parse_logit_controls(http_req *r, int n_vocab, ragd_gen_opts *g, ragd_logit_edit **bias_out) {
    double pp = 0, fp = 0, rp = 1;
    bool has_rp;
    *bias_out = NULL;
    if (!jv_number(r, "presence_penalty", -2, 2, &pp, NULL) || !jv_number(r, "frequency_penalty", -2, 2, &fp, NULL) ||
        !jv_number(r, "repetition_penalty", 0, 10, &rp, &has_rp))
        return false;
    if (has_rp && !((float)rp > 0))
        return http_error(r, 400, "repetition_penalty", "out_of_range", "field 'repetition_penalty' is %g; it must be greater than 0",
                          rp),
               false;
    g->presence_penalty = (float)pp;
    g->frequency_penalty = (float)fp;
    g->repetition_penalty = (float)rp;
    json_t *lb = json_object_get(r->json, "logit_bias");
    if (!lb || json_is_null(lb)) return true;
    if (!json_is_object(lb))
        return http_error(r, 400, "logit_bias", "invalid_type", "field 'logit_bias' must be an object of token id → bias"), false;
    size_t n = json_object_size(lb);
    if (n > MAX_LOGIT_BIAS)
        return http_error(r, 400, "logit_bias", "too_many_inputs", "field 'logit_bias' has %zu entries; the limit is %d", n,
                          MAX_LOGIT_BIAS),
               false;
    if (!n) return true;
    ragd_logit_edit *b = ragd_xcalloc(n, sizeof *b);
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach(lb, key, val) {
        char *end = NULL;
        errno = 0;
        long long id = strtoll(key, &end, 10);
        if (!key[0] || *end || errno || id < 0 || id >= n_vocab) {
            free(b);
            return http_error(r, 400, "logit_bias", "invalid_token",
                              "logit_bias key \"%s\" is not a token id of this model's vocabulary (0..%d)", key, n_vocab - 1),
                   false;
        }
        if (!json_is_number(val) || !(json_number_value(val) >= -100 && json_number_value(val) <= 100)) {
            free(b);
            return http_error(r, 400, "logit_bias", "out_of_range", "logit_bias[\"%s\"] must be a number between -100 and 100",
                              key),
                   false;
        }
        for (size_t j = 0; j < i; j++) /* "7" and "07" are one id */
            if (b[j].id == (int32_t)id) {
                free(b);
                return http_error(r, 400, "logit_bias", "invalid_value", "logit_bias names token %lld twice", id), false;
            }
        b[i].id = (int32_t)id;
        b[i].bias = (float)json_number_value(val);
        i++;
    }
    g->logit_bias = b;
    g->n_logit_bias = (int)i;
    *bias_out = b;
    return true;
}
