/* toolcall.c — the tool calls in a model's answer, in the syntax its chat template taught it (chosen by
 * chat.c from the template), turned into OpenAI tool_calls:
 *   HERMES   text <tool_call>{"name": "f", "arguments": {...}}</tool_call> ... (an unterminated last
 *            call is accepted, as vLLM's hermes parser does); content = the text before the first call
 *   LLAMA3   [<|python_tag|>]{"name": "f", "parameters": {...}} [; {...}] — the whole answer; no content
 *   MISTRAL, MISTRAL_ARGS (both forms accepted by both)
 *            text [TOOL_CALLS][{"name": "f", "arguments": {...}}, ...]   (v3 tokenizers: Nemo)
 *            text [TOOL_CALLS]f[ARGS]{...} [TOOL_CALLS]g[ARGS]{...}       (v11+: Small 3.2; a
 *            [CALL_ID]id between the name and [ARGS], as its template replays calls, is skipped)
 *   GRANITE  text <|tool_call|>[{"name": "f", "arguments": {...}}, ...]
 * Anything that does not parse completely is plain content (false): a model that merely mentions the
 * syntax is not turned into a call. arguments are re-serialized compactly (JSON text, as OpenAI sends).
 * Ids are "call_<prefix>_<i>"; for Mistral 9 alphanumerics (its template refuses other ids on replay).
 *
 * Contract: pure functions of the text; never abort on model output.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tasks/tasks.h"

static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) i++;
    return i;
}

static const char *find(const char *s, size_t n, const char *needle) {
    return memmem(s, n, needle, strlen(needle));
}

/* one JSON value at s[i..n); *end = just after it */
static json_t *json_at(const char *s, size_t n, size_t i, size_t *end) {
    json_error_t je;
    json_t *j = json_loadb(s + i, n - i, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &je);
    if (j) *end = i + je.position;
    return j;
}

static _Thread_local bool g_short_ids; /* Mistral templates accept only 9 alphanumeric characters */

/* "call_<prefix>_<i>", or for Mistral 9 alphanumerics hashed from the same */
static void make_id(char *id, size_t n, const char *prefix, size_t i) {
    snprintf(id, n, "call_%s_%zu", prefix ? prefix : "0", i);
    if (!g_short_ids) return;
    static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint64_t h = 1469598103934665603ull;
    for (const char *p = id; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (int k = 0; k < 9; k++, h /= 62) id[k] = al[h % 62];
    id[9] = 0;
}

/* {"name": str, "arguments"|"parameters": any} → an OpenAI tool call appended to calls */
static bool add_call(json_t *calls, const json_t *obj, const char *name_override, const json_t *args_override,
                     const char *id_prefix) {
    const json_t *name = name_override ? NULL : json_object_get(obj, "name");
    const char *nm = name_override ? name_override : json_is_string(name) ? json_string_value(name) : NULL;
    if (!nm || !*nm) return false;
    const json_t *args = args_override;
    if (!args) {
        args = json_object_get(obj, "arguments");
        if (!args) args = json_object_get(obj, "parameters");
    }
    char *text;
    if (!args) text = ragd_xstrdup("{}");
    else if (json_is_string(args)) text = ragd_xstrdup(json_string_value(args));
    else text = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) return false;
    char id[128];
    make_id(id, sizeof id, id_prefix, json_array_size(calls));
    json_t *fn = json_pack("{s:s,s:s}", "name", nm, "arguments", text);
    free(text);
    if (!fn) return false;
    json_array_append_new(calls, json_pack("{s:s,s:s,s:o}", "id", id, "type", "function", "function", fn));
    return true;
}

static bool add_array(json_t *calls, const json_t *arr, const char *id_prefix) {
    if (!json_is_array(arr) || !json_array_size(arr)) return false;
    size_t i;
    json_t *e;
    json_array_foreach((json_t *)arr, i, e) {
        if (!json_is_object(e) || !add_call(calls, e, NULL, NULL, id_prefix)) return false;
    }
    return true;
}

static bool parse_hermes(const char *s, size_t n, json_t *calls, size_t *content_len, const char *idp) {
    const char *open = find(s, n, "<tool_call>");
    if (!open) return false;
    *content_len = (size_t)(open - s);
    size_t i = *content_len;
    while (i < n) {
        i = skip_ws(s, n, i);
        if (i >= n) break;
        if (n - i < 11 || memcmp(s + i, "<tool_call>", 11)) return false;
        size_t end;
        json_t *j = json_at(s, n, skip_ws(s, n, i + 11), &end);
        if (!j) return false;
        bool ok = json_is_object(j) && add_call(calls, j, NULL, NULL, idp);
        json_decref(j);
        if (!ok) return false;
        i = skip_ws(s, n, end);
        if (n - i >= 12 && !memcmp(s + i, "</tool_call>", 12)) i += 12;
        else if (i < n) return false;
    }
    return json_array_size(calls) > 0;
}

static bool parse_llama3(const char *s, size_t n, json_t *calls, size_t *content_len, const char *idp) {
    size_t i = skip_ws(s, n, 0);
    if (n - i >= 14 && !memcmp(s + i, "<|python_tag|>", 14)) i = skip_ws(s, n, i + 14);
    if (i >= n || s[i] != '{') return false;
    *content_len = 0;
    while (i < n) {
        size_t end;
        json_t *j = json_at(s, n, i, &end);
        if (!j) return false;
        bool ok = json_is_object(j) && (json_object_get(j, "parameters") || json_object_get(j, "arguments")) &&
                  add_call(calls, j, NULL, NULL, idp);
        json_decref(j);
        if (!ok) return false;
        i = skip_ws(s, n, end);
        if (i < n && s[i] == ';') i = skip_ws(s, n, i + 1);
    }
    return json_array_size(calls) > 0;
}

static bool parse_marker_array(const char *s, size_t n, const char *marker, json_t *calls, size_t *content_len,
                               const char *idp) {
    const char *m = find(s, n, marker);
    if (!m) return false;
    *content_len = (size_t)(m - s);
    size_t i = skip_ws(s, n, *content_len + strlen(marker));
    if (i < n && s[i] == '[') {
        size_t end;
        json_t *j = json_at(s, n, i, &end);
        bool ok = j && add_array(calls, j, idp) && skip_ws(s, n, end) == n;
        json_decref(j);
        return ok;
    }
    if (strcmp(marker, "[TOOL_CALLS]")) return false;
    /* v11: name[ARGS]{...}, repeated after [TOOL_CALLS] */
    for (;;) {
        const char *a = find(s + i, n - i, "[ARGS]");
        if (!a) return false;
        size_t name_end = (size_t)(a - s), args = name_end + 6;
        const char *cid = find(s + i, name_end - i, "[CALL_ID]"); /* f[CALL_ID]id[ARGS]: the id is ours */
        if (cid) name_end = (size_t)(cid - s);
        if (name_end == i) return false;
        char *name = ragd_xstrndup(s + i, name_end - i);
        size_t end;
        json_t *j = json_at(s, n, skip_ws(s, n, args), &end);
        bool ok = j && json_is_object(j) && add_call(calls, NULL, name, j, idp);
        free(name);
        json_decref(j);
        if (!ok) return false;
        i = skip_ws(s, n, end);
        if (i == n) return true;
        if (n - i < 12 || memcmp(s + i, "[TOOL_CALLS]", 12)) return false;
        i = skip_ws(s, n, i + 12);
    }
}

bool ragd_toolcall_parse(ragd_toolcall_format f, const char *text, size_t n, const char *id_prefix, json_t **calls,
                         size_t *content_len) {
    *calls = NULL;
    *content_len = n;
    json_t *c = json_array();
    size_t cl = n;
    bool ok = false;
    g_short_ids = f == RAGD_TOOLCALL_MISTRAL || f == RAGD_TOOLCALL_MISTRAL_ARGS;
    switch (f) {
    case RAGD_TOOLCALL_HERMES: ok = parse_hermes(text, n, c, &cl, id_prefix); break;
    case RAGD_TOOLCALL_LLAMA3: ok = parse_llama3(text, n, c, &cl, id_prefix); break;
    case RAGD_TOOLCALL_MISTRAL:
    case RAGD_TOOLCALL_MISTRAL_ARGS: ok = parse_marker_array(text, n, "[TOOL_CALLS]", c, &cl, id_prefix); break;
    case RAGD_TOOLCALL_GRANITE: ok = parse_marker_array(text, n, "<|tool_call|>", c, &cl, id_prefix); break;
    case RAGD_TOOLCALL_NONE: break;
    }
    if (!ok) {
        json_decref(c);
        return false;
    }
    /* content that is only whitespace is no content */
    size_t k = 0;
    while (k < cl && (text[k] == ' ' || text[k] == '\n' || text[k] == '\t' || text[k] == '\r')) k++;
    *content_len = k == cl ? 0 : cl;
    *calls = c;
    return true;
}

size_t ragd_toolcall_start(ragd_toolcall_format f, const char *text, size_t n) {
    const char *marker = f == RAGD_TOOLCALL_HERMES                                          ? "<tool_call>"
                       : f == RAGD_TOOLCALL_MISTRAL || f == RAGD_TOOLCALL_MISTRAL_ARGS ? "[TOOL_CALLS]"
                       : f == RAGD_TOOLCALL_GRANITE ? "<|tool_call|>" : NULL;
    if (f == RAGD_TOOLCALL_LLAMA3) { /* the whole answer is the call: hold from a leading '{' or python_tag */
        size_t i = skip_ws(text, n, 0);
        if (i == n) return 0;
        if (text[i] == '{') return 0;
        static const char tag[] = "<|python_tag|>";
        size_t k = n - i < 14 ? n - i : 14;
        return !memcmp(text + i, tag, k) ? 0 : n;
    }
    if (!marker) return n;
    const char *m = find(text, n, marker);
    if (m) return (size_t)(m - text);
    /* a suffix that is a prefix of the marker */
    size_t k = strlen(marker);
    for (size_t l = k - 1; l > 0; l--)
        if (l <= n && !memcmp(text + n - l, marker, l)) return n - l;
    return n;
}
