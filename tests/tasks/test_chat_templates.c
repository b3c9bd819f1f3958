/* test_chat_templates.c — the Jinja interpreter on the real chat templates in ../shared/models against
 * transformers (references by tools/chat_template_refs.py in tests/tasks/chat/): every template ×
 * conversation renders byte-identical, and where transformers raised, ragd fails too (with the same
 * text when the template itself called raise_exception). Then interpreter unit cases (syntax errors with
 * line numbers, bounds on hostile templates, Python semantics), the "tool_use" named template (loaded from
 * both places transformers saves it, chosen when tools are given) and tool-call parsing on fixed outputs. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tasks/tasks.h"
#include "test.h"

static char *path_join3(const char *a, const char *b, const char *c) {
    ragd_buf p = {0};
    ragd_buf_printf(&p, "%s/%s%s", a, b, c);
    return p.data;
}

/* the template source: a .jinja file or tokenizer_config.json's chat_template */
static char *template_source(const char *shared, const char *rel) {
    char *p = path_join3(shared, rel, "");
    char *src = NULL;
    size_t n;
    ragd_err err = {0};
    if (strstr(rel, ".json")) {
        json_error_t je;
        json_t *j = json_load_file(p, 0, &je);
        if (j && json_is_string(json_object_get(j, "chat_template")))
            src = ragd_xstrdup(json_string_value(json_object_get(j, "chat_template")));
        json_decref(j);
    } else if (ragd_file_read(p, &src, &n, &err)) src = NULL;
    if (!src) fprintf(stderr, "cannot read the template %s\n", p);
    ragd_err_free(&err);
    free(p);
    return src;
}

static void first_diff(const char *got, const char *want) {
    size_t i = 0;
    while (got[i] && got[i] == want[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    fprintf(stderr, "  first difference at byte %zu\n  got:  %.120s\n  want: %.120s\n", i, got + from, want + from);
}

static void reference_checks(void) {
    const char *shared = getenv("RAGD_SHARED"), *src = getenv("RAGD_SRC");
    if (!shared || !src) {
        fprintf(stderr, "RAGD_SHARED and RAGD_SRC must be set\n");
        CHECK(0);
        return;
    }
    char *cp = path_join3(src, "tests/tasks/chat/conversations.json", ""), *rp = path_join3(src, "tests/tasks/chat/refs.jsonl", "");
    json_error_t je;
    json_t *convs = json_load_file(cp, 0, &je);
    CHECK(convs != NULL);
    FILE *f = fopen(rp, "r");
    CHECK(f != NULL);
    if (!convs || !f) return;
    time_t now = (time_t)json_integer_value(json_object_get(convs, "now"));
    json_t *byname = json_object();
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(convs, "conversations"), i, c) json_object_set(byname, json_string_value(json_object_get(c, "name")), c);

    char *line = NULL;
    size_t cap = 0;
    char cur_path[512] = "";
    ragd_chat_template *tpl = NULL;
    int n_tpl = 0, n_text = 0, ok_text = 0, n_err = 0, ok_err = 0, per_ok = 0, per_n = 0;
    ragd_err err = {0};
    while (getline(&line, &cap, f) > 0) {
        json_t *r = json_loads(line, 0, &je);
        CHECK(r != NULL);
        if (!r) continue;
        const char *tp = json_string_value(json_object_get(r, "template"));
        if (strcmp(tp, cur_path)) {
            if (n_tpl) printf("  %-60s %d/%d\n", cur_path, per_ok, per_n);
            per_ok = per_n = 0;
            snprintf(cur_path, sizeof cur_path, "%s", tp);
            ragd_chat_template_free(tpl);
            tpl = NULL;
            char *s = template_source(shared, tp);
            CHECK(s != NULL);
            if (s && ragd_chat_template_compile(s, strlen(s), NULL, NULL, NULL, &tpl, &err)) {
                fprintf(stderr, "%s: %s\n", tp, ragd_err_msg(&err));
                CHECK(0);
            }
            free(s);
            n_tpl++;
        }
        const char *cname = json_string_value(json_object_get(r, "case"));
        json_t *conv = json_object_get(byname, cname);
        json_t *kw = json_deep_copy(json_object_get(r, "special"));
        json_object_update(kw, json_object_get(conv, "kwargs"));
        json_t *tools = json_object_get(conv, "tools");
        ragd_chat_input in = {.messages = json_object_get(conv, "messages"), .tools = json_is_null(tools) ? NULL : tools,
                              .kwargs = kw, .add_generation_prompt = json_is_true(json_object_get(conv, "add_generation_prompt")),
                              .now = now};
        ragd_buf out = {0};
        ragd_status st = tpl ? ragd_chat_template_render(tpl, &in, &out, &err) : RAGD_EFORMAT;
        const char *want = json_string_value(json_object_get(r, "text"));
        per_n++;
        if (want) {
            n_text++;
            if (!st && out.len == strlen(want) && !memcmp(out.data, want, out.len)) ok_text++, per_ok++;
            else if (st) fprintf(stderr, "%s / %s: failed: %s\n", tp, cname, ragd_err_msg(&err));
            else {
                fprintf(stderr, "%s / %s: differs from transformers\n", tp, cname);
                first_diff(out.data ? out.data : "", want);
            }
        } else {
            n_err++;
            const char *type = json_string_value(json_object_get(r, "error_type"));
            const char *msg = json_string_value(json_object_get(r, "error"));
            bool same = st != RAGD_OK && (strcmp(type, "TemplateError") || strstr(ragd_err_msg(&err), msg));
            if (same) ok_err++, per_ok++;
            else fprintf(stderr, "%s / %s: transformers raised %s (%s); ragd: %s\n", tp, cname, type, msg,
                         st ? ragd_err_msg(&err) : "rendered");
        }
        ragd_buf_free(&out);
        json_decref(kw);
        json_decref(r);
    }
    if (n_tpl) printf("  %-60s %d/%d\n", cur_path, per_ok, per_n);
    printf("chat templates: %d templates, %d renderings byte-identical to transformers: %d/%d; raised as transformers: %d/%d\n",
           n_tpl, n_text + n_err, ok_text, n_text, ok_err, n_err);
    CHECK(n_tpl >= 18);
    CHECK_EQ_INT(ok_text, n_text);
    CHECK_EQ_INT(ok_err, n_err);
    ragd_chat_template_free(tpl);
    ragd_err_free(&err);
    free(line);
    fclose(f);
    json_decref(byname);
    json_decref(convs);
    free(cp);
    free(rp);
}

/* small snippets of every construct, against transformers' environment (tools/jinja_snippet_refs.py) */
static void snippet_checks(void) {
    char *p = path_join3(getenv("RAGD_SRC") ? getenv("RAGD_SRC") : ".", "tests/tasks/chat/snippets.jsonl", "");
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    free(p);
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    int n = 0, ok = 0;
    ragd_err err = {0};
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *r = json_loads(line, 0, &je);
        if (!r) continue;
        n++;
        const char *src = json_string_value(json_object_get(r, "template"));
        const char *want = json_string_value(json_object_get(r, "text"));
        const char *etype = json_string_value(json_object_get(r, "error_type"));
        const char *emsg = json_string_value(json_object_get(r, "error"));
        ragd_chat_template *t = NULL;
        ragd_buf out = {0};
        ragd_status st = ragd_chat_template_compile(src, strlen(src), NULL, NULL, NULL, &t, &err);
        if (!st) {
            ragd_chat_input in = {.messages = json_object_get(r, "messages"), .kwargs = json_object_get(r, "vars"),
                                  .now = (time_t)json_integer_value(json_object_get(r, "now"))};
            st = ragd_chat_template_render(t, &in, &out, &err);
        }
        bool good;
        if (want) good = !st && out.len == strlen(want) && !memcmp(out.data, want, out.len);
        else good = st && (strcmp(etype, "TemplateError") || strstr(ragd_err_msg(&err), emsg));
        if (good) ok++;
        else if (want)
            fprintf(stderr, "snippet %d: %s\n  got:  %s\n  want: %s\n", n, src, st ? ragd_err_msg(&err) : out.data ? out.data : "", want);
        else fprintf(stderr, "snippet %d: %s\n  transformers: %s: %s\n  ragd: %s\n", n, src, etype, emsg, st ? ragd_err_msg(&err) : out.data);
        ragd_buf_free(&out);
        ragd_chat_template_free(t);
        json_decref(r);
    }
    printf("jinja snippets as transformers renders them: %d/%d\n", ok, n);
    CHECK(n > 50);
    CHECK_EQ_INT(ok, n);
    free(line);
    fclose(f);
    ragd_err_free(&err);
}

/* renders src with one user message; returns the status, message in err */
static ragd_status render_src(const char *src, ragd_buf *out, ragd_err *err) {
    ragd_chat_template *t = NULL;
    ragd_status st = ragd_chat_template_compile(src, strlen(src), "<s>", "</s>", NULL, &t, err);
    if (st) return st;
    json_t *m = json_loads("[{\"role\": \"user\", \"content\": \"hi\"}]", 0, NULL);
    ragd_chat_input in = {.messages = m, .add_generation_prompt = true};
    st = ragd_chat_template_render(t, &in, out, err);
    json_decref(m);
    ragd_chat_template_free(t);
    return st;
}

/* hostile templates end in a clear error, never a crash or a hang */
static void bound_checks(void) {
    struct { const char *src, *msg; } cases[] = {
        {"{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "nested more than"},
        {"{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", "steps"},
        {"{{ 'x' * 1000000000 }}", "memory"},
        {"{% set s = 'x' * 1000000 %}{% for i in range(100) %}{{ s }}{% endfor %}", "output exceeds"},
        {"{{ 9223372036854775807 + 1 }}", "overflow"},
        {"{% set ns = namespace() %}{% set ns.me = ns %}{{ ns == ns }}{{ ns }}{{ ns | tojson }}", "not JSON serializable"},
        {"{{ 1 // 0 }}", "zero"},
        {"{{ messages[0].content.nope() }}", "undefined"},
        {"{{ raise_exception('nope') }}", "refused the messages: nope"},
        {"{% for x in messages %}", "endfor"},
        {"{{ x | nosuchfilter }}", "no filter named"},
        {"{% if %}", "line 1"},
        {"\n\n{{ 1 +* 2 }}", "line 3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ragd_buf out = {0};
        ragd_err err = {0};
        ragd_status st = render_src(cases[i].src, &out, &err);
        CHECK(st != RAGD_OK);
        if (!strstr(ragd_err_msg(&err), cases[i].msg))
            fprintf(stderr, "bound case %zu: '%s' not in: %s\n", i, cases[i].msg, ragd_err_msg(&err));
        CHECK(strstr(ragd_err_msg(&err), cases[i].msg) != NULL);
        CHECK_EQ_INT(out.len, 0);
        ragd_buf_free(&out);
        ragd_err_free(&err);
    }
    /* deep nesting is a parse error, not a stack overflow */
    ragd_buf src = {0}, out = {0};
    ragd_err err = {0};
    ragd_buf_puts(&src, "{{ ");
    for (int i = 0; i < 100000; i++) ragd_buf_putc(&src, '(');
    ragd_buf_putc(&src, '1');
    for (int i = 0; i < 100000; i++) ragd_buf_putc(&src, ')');
    ragd_buf_puts(&src, " }}");
    CHECK(render_src(src.data, &out, &err) != RAGD_OK);
    if (!strstr(ragd_err_msg(&err), "nested too deeply")) fprintf(stderr, "deep nesting: %s\n", ragd_err_msg(&err));
    CHECK(strstr(ragd_err_msg(&err), "nested too deeply") != NULL);
    ragd_buf_reset(&src);
    for (int i = 0; i < 100000; i++) ragd_buf_puts(&src, "{% if 1 %}");
    CHECK(render_src(src.data, &out, &err) != RAGD_OK);
    ragd_buf_reset(&src);
    ragd_buf_puts(&src, "{{ 1");
    for (int i = 0; i < 100000; i++) ragd_buf_puts(&src, " | trim");
    ragd_buf_puts(&src, " }}");
    CHECK(render_src(src.data, &out, &err) != RAGD_OK); /* long chains are deep trees: bounded too */
    CHECK(strstr(ragd_err_msg(&err), "nested more than") != NULL);
    ragd_buf_free(&src);
    ragd_buf_free(&out);
    ragd_err_free(&err);
    /* bos/eos from the model reach the template; invalid UTF-8 is refused */
    CHECK(render_src("{{ bos_token }}{{ messages[0].content }}{{ eos_token }}", &out, &err) == RAGD_OK);
    CHECK_STR(out.data, "<s>hi</s>");
    ragd_chat_template *t = NULL;
    CHECK(ragd_chat_template_compile("\xff", 1, NULL, NULL, NULL, &t, &err) == RAGD_EFORMAT);
    ragd_buf_free(&out);
    ragd_err_free(&err);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char *p = ragd_path_join(dir, name);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    free(p);
}

/* a model's "tool_use" template renders when tools are given (transformers' get_chat_template) */
static void named_template_checks(void) {
    ragd_err err = {0};
    ragd_chat_template *t = NULL;
    CHECK(ragd_chat_template_compile("D{{ messages[0].content }}", 26, NULL, NULL, NULL, &t, &err) == RAGD_OK);
    if (!t) return;
    CHECK_EQ_INT(ragd_chat_template_toolcall(t), RAGD_TOOLCALL_NONE);
    const char *tsrc = "T{{ tools[0].function.name }}{{ '<tool_call>' }}";
    CHECK(ragd_chat_template_add_tool_use(t, tsrc, strlen(tsrc), &err) == RAGD_OK);
    CHECK_EQ_INT(ragd_chat_template_toolcall(t), RAGD_TOOLCALL_HERMES);
    CHECK(ragd_chat_template_add_tool_use(t, "{% if %}", 8, &err) == RAGD_EFORMAT);
    json_t *m = json_loads("[{\"role\": \"user\", \"content\": \"hi\"}]", 0, NULL);
    json_t *tools = json_loads("[{\"type\": \"function\", \"function\": {\"name\": \"f\"}}]", 0, NULL);
    ragd_buf out = {0};
    ragd_chat_input in = {.messages = m};
    CHECK(ragd_chat_template_render(t, &in, &out, &err) == RAGD_OK);
    CHECK_STR(out.data, "Dhi");
    ragd_buf_reset(&out);
    in.tools = tools;
    CHECK(ragd_chat_template_render(t, &in, &out, &err) == RAGD_OK);
    CHECK_STR(out.data, "Tf<tool_call>");
    ragd_chat_template_free(t);
    /* loaded from tokenizer_config.json's list form and from additional_chat_templates/ */
    const char *src = getenv("RAGD_SRC") ? getenv("RAGD_SRC") : ".";
    char *tj = path_join3(src, "/fixtures/models/qwen3-tiny/tokenizer.json", "");
    char d1[] = "/tmp/ragd_tpl_XXXXXX", d2[] = "/tmp/ragd_tpl_XXXXXX";
    CHECK(mkdtemp(d1) && mkdtemp(d2));
    write_text(d1, "tokenizer_config.json", "{\"chat_template\": [{\"name\": \"default\", \"template\": \"D\"},"
                                            " {\"name\": \"tool_use\", \"template\": \"T\"}]}");
    write_text(d2, "chat_template.jinja", "D2");
    char *sub = ragd_path_join(d2, "additional_chat_templates");
    CHECK(mkdir(sub, 0700) == 0);
    write_text(sub, "tool_use.jinja", "T2");
    const char *dirs[2] = {d1, d2}, *want[2][2] = {{"D", "T"}, {"D2", "T2"}};
    for (int i = 0; i < 2; i++) {
        char *link = ragd_path_join(dirs[i], "tokenizer.json");
        CHECK(symlink(tj, link) == 0);
        ragd_tokenizer *tok = NULL;
        CHECK(ragd_tokenizer_load_json(link, &tok, &err) == RAGD_OK);
        if (tok) {
            CHECK_STR(ragd_tokenizer_chat_template(tok), want[i][0]);
            CHECK_STR(ragd_tokenizer_chat_template_tool_use(tok), want[i][1]);
        }
        ragd_tokenizer_free(tok);
        unlink(link);
        free(link);
    }
    char *p;
    unlink(p = ragd_path_join(d1, "tokenizer_config.json")), free(p);
    unlink(p = ragd_path_join(d2, "chat_template.jinja")), free(p);
    unlink(p = ragd_path_join(sub, "tool_use.jinja")), free(p);
    rmdir(sub);
    rmdir(d1);
    rmdir(d2);
    free(sub);
    free(tj);
    ragd_buf_free(&out);
    json_decref(m);
    json_decref(tools);
    ragd_err_free(&err);
}

/* tool-call syntax recognized from templates, and parsed from fixed model outputs */
static void toolcall_checks(void) {
    struct { const char *src; ragd_toolcall_format f; } det[] = {
        {"{{ '<tool_call>' }}", RAGD_TOOLCALL_HERMES}, {"[TOOL_CALLS]", RAGD_TOOLCALL_MISTRAL},
        {"{{ '[TOOL_CALLS]' + name + '[ARGS]' }}", RAGD_TOOLCALL_MISTRAL_ARGS},
        {"<|tool_call|>", RAGD_TOOLCALL_GRANITE},
        {"<|start_header_id|>{% if tools %}\"parameters\"{% endif %}", RAGD_TOOLCALL_LLAMA3}, {"plain", RAGD_TOOLCALL_NONE},
    };
    ragd_err err = {0};
    for (size_t i = 0; i < sizeof det / sizeof det[0]; i++) {
        ragd_chat_template *t = NULL;
        CHECK(ragd_chat_template_compile(det[i].src, strlen(det[i].src), NULL, NULL, NULL, &t, &err) == RAGD_OK);
        if (t) CHECK_EQ_INT(ragd_chat_template_toolcall(t), det[i].f);
        ragd_chat_template_free(t);
    }
    /* the syntax of the real templates (the tool_use one where a model has it) */
    const char *shared = getenv("RAGD_SHARED");
    struct { const char *rel; ragd_toolcall_format f; } real[] = {
        {"models/llama-3.1-8b-instruct/chat_template.jinja", RAGD_TOOLCALL_LLAMA3},
        {"models/llama-3.2-3b-instruct/chat_template.jinja", RAGD_TOOLCALL_LLAMA3},
        {"models/llama-3.3-70b-instruct/chat_template.jinja", RAGD_TOOLCALL_LLAMA3},
        {"models/mistral-nemo-instruct-2407/chat_template.jinja", RAGD_TOOLCALL_MISTRAL},
        {"models/mistral-small-3.2-24b-instruct-2506/chat_template.jinja", RAGD_TOOLCALL_MISTRAL_ARGS},
        {"models/qwen2.5-7b-instruct/chat_template.jinja", RAGD_TOOLCALL_HERMES},
        {"models/hermes-3-llama-3.1-8b/chat_template.tool_use.jinja", RAGD_TOOLCALL_HERMES},
        {"models/granite-3.3-2b-instruct/chat_template.jinja", RAGD_TOOLCALL_GRANITE},
        {"models/gemma-2-2b-it/chat_template.jinja", RAGD_TOOLCALL_NONE},
    };
    for (size_t i = 0; shared && i < sizeof real / sizeof real[0]; i++) {
        char *src = template_source(shared, real[i].rel);
        CHECK(src != NULL);
        if (!src) continue;
        ragd_chat_template *t = NULL;
        CHECK(ragd_chat_template_compile(src, strlen(src), NULL, NULL, NULL, &t, &err) == RAGD_OK);
        if (t && ragd_chat_template_toolcall(t) != real[i].f)
            fprintf(stderr, "%s: tool-call syntax %d, want %d\n", real[i].rel, ragd_chat_template_toolcall(t), real[i].f);
        if (t) CHECK_EQ_INT(ragd_chat_template_toolcall(t), real[i].f);
        ragd_chat_template_free(t);
        free(src);
    }
    /* names: every call's function name in order, ','-separated; args: the first call's arguments */
    struct { ragd_toolcall_format f; const char *text; int n_calls; const char *content, *names, *args; } cases[] = {
        {RAGD_TOOLCALL_HERMES, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>", 1, "", "get_weather", "{\"city\":\"Paris\"}"},
        {RAGD_TOOLCALL_HERMES, "Let me check.\n<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>\n<tool_call>{\"name\": \"b\", \"arguments\": {\"x\": [1, 2]}}</tool_call>", 2, "Let me check.\n", "a,b", "{}"},
        {RAGD_TOOLCALL_HERMES, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>", 3, "", "get_weather,get_time,get_weather", "{\"city\":\"Paris\"}"},
        {RAGD_TOOLCALL_HERMES, "<tool_call>{\"name\": \"a\", \"arguments\": {\"q\": \"unterminated\"}}", 1, "", "a", "{\"q\":\"unterminated\"}"},
        {RAGD_TOOLCALL_HERMES, "I would use <tool_call> tags here.", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_HERMES, "<tool_call>{\"name\": \"a\", \"arguments\": {}</tool_call>", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_HERMES, "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call> and then text", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_HERMES, "no calls at all", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_LLAMA3, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}", 1, "", "get_weather", "{\"city\":\"Paris\"}"},
        {RAGD_TOOLCALL_LLAMA3, " \n{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"days\": 3, \"units\": null}}", 1, "", "get_weather", "{\"city\":\"Paris\",\"days\":3,\"units\":null}"},
        {RAGD_TOOLCALL_LLAMA3, "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"k\": 1}}", 2, "", "a,b", "{}"},
        {RAGD_TOOLCALL_LLAMA3, "{\"name\": \"a\", \"parameters\": {\"n\": 1.5}}; {\"name\": \"b\", \"arguments\": {}}; {\"name\": \"c\", \"parameters\": {\"s\": \"x;y\"}}", 3, "", "a,b,c", "{\"n\":1.5}"},
        {RAGD_TOOLCALL_LLAMA3, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Par", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_LLAMA3, "{\"name\": \"a\", \"parameters\": {}} is what I would call", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_LLAMA3, "{\"name\": \"a\", \"parameters\": {}}; oops", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_LLAMA3, "The answer is {\"name\": 1}", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_LLAMA3, "{\"key\": \"a JSON answer, not a call\"}", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_LLAMA3, "{\"name\": \"\", \"parameters\": {}}", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_MISTRAL, "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]", 1, "", "get_weather", "{\"city\":\"Paris\"}"},
        {RAGD_TOOLCALL_MISTRAL, "[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}, \"id\": \"abcdefghi\"}]", 2, "", "get_weather,get_weather", "{\"city\":\"Paris\"}"},
        {RAGD_TOOLCALL_MISTRAL, "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_MISTRAL, "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {}}] trailing", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_MISTRAL, "[TOOL_CALLS][]", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_MISTRAL, "Sure. [TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]f[ARGS]{}", 2, "Sure. ", "get_weather,f", "{\"city\":\"Paris\"}"},
        {RAGD_TOOLCALL_MISTRAL_ARGS, "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}", 1, "", "get_weather", "{\"city\":\"Paris\"}"},
        {RAGD_TOOLCALL_MISTRAL_ARGS, "Checking both.[TOOL_CALLS]get_weather[CALL_ID]a1b2c3d4e[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]get_time[CALL_ID]zz9zz9zz9[ARGS]{\"tz\": \"CET\"}", 2, "Checking both.", "get_weather,get_time", "{\"city\":\"Paris\"}"},
        {RAGD_TOOLCALL_MISTRAL_ARGS, "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"k\": true}}]", 1, "", "a", "{\"k\":true}"},
        {RAGD_TOOLCALL_MISTRAL_ARGS, "[TOOL_CALLS]get_weather[ARGS]{\"city\": ", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_MISTRAL_ARGS, "[TOOL_CALLS][ARGS]{}", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_MISTRAL_ARGS, "[TOOL_CALLS]f[ARGS]\"not an object\"", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_MISTRAL_ARGS, "[TOOL_CALLS]get_weather", 0, NULL, NULL, NULL},
        {RAGD_TOOLCALL_GRANITE, "<|tool_call|>[{\"name\": \"a\", \"arguments\": {\"x\": \"é\"}}]", 1, "", "a", "{\"x\":\"é\"}"},
        {RAGD_TOOLCALL_NONE, "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>", 0, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *calls = NULL;
        size_t cl = 12345;
        size_t n = strlen(cases[i].text);
        bool got = ragd_toolcall_parse(cases[i].f, cases[i].text, n, "t", &calls, &cl);
        if (got != (cases[i].n_calls > 0)) fprintf(stderr, "tool-call case %zu: parsed %d\n", i, got);
        CHECK_EQ_INT(got, cases[i].n_calls > 0);
        if (!got) { /* plain content, all of it */
            CHECK(calls == NULL);
            CHECK_EQ_INT(cl, n);
            continue;
        }
        if (!calls) continue;
        CHECK_EQ_INT(json_array_size(calls), cases[i].n_calls);
        CHECK_EQ_INT(cl, strlen(cases[i].content));
        json_t *fn = json_object_get(json_array_get(calls, 0), "function");
        CHECK_STR(json_string_value(json_object_get(fn, "arguments")), cases[i].args);
        char names[256] = "";
        for (size_t k = 0; k < json_array_size(calls); k++) {
            json_t *c = json_array_get(calls, k);
            const char *nm = json_string_value(json_object_get(json_object_get(c, "function"), "name"));
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? "," : "", nm ? nm : "?");
            CHECK_STR(json_string_value(json_object_get(c, "type")), "function");
            const char *id = json_string_value(json_object_get(c, "id"));
            CHECK(id && *id);
            if (id && (cases[i].f == RAGD_TOOLCALL_MISTRAL || cases[i].f == RAGD_TOOLCALL_MISTRAL_ARGS)) {
                CHECK_EQ_INT(strlen(id), 9); /* Mistral's templates refuse other ids on replay */
                for (const char *q = id; *q; q++) CHECK((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9'));
            }
            for (size_t j = 0; j < k && id; j++) /* distinct ids */
                CHECK(strcmp(id, json_string_value(json_object_get(json_array_get(calls, j), "id"))) != 0);
        }
        CHECK_STR(names, cases[i].names);
        json_decref(calls);
    }
    /* where streaming must hold text back */
    CHECK_EQ_INT(ragd_toolcall_start(RAGD_TOOLCALL_HERMES, "abc", 3), 3);
    CHECK_EQ_INT(ragd_toolcall_start(RAGD_TOOLCALL_HERMES, "abc<tool", 8), 3);
    CHECK_EQ_INT(ragd_toolcall_start(RAGD_TOOLCALL_HERMES, "ab<tool_call>{", 14), 2);
    CHECK_EQ_INT(ragd_toolcall_start(RAGD_TOOLCALL_LLAMA3, " {\"na", 6), 0);
    CHECK_EQ_INT(ragd_toolcall_start(RAGD_TOOLCALL_LLAMA3, "Hello", 5), 5);
    CHECK_EQ_INT(ragd_toolcall_start(RAGD_TOOLCALL_MISTRAL, "x[TOOL", 6), 1);
    CHECK_EQ_INT(ragd_toolcall_start(RAGD_TOOLCALL_MISTRAL_ARGS, "Sure.[TOOL_CALLS]get", 20), 5);
    CHECK_EQ_INT(ragd_toolcall_start(RAGD_TOOLCALL_LLAMA3, "<|python", 8), 0);
    ragd_err_free(&err);
}

int main(void) {
    reference_checks();
    snippet_checks();
    bound_checks();
    named_template_checks();
    toolcall_checks();
    TEST_DONE();
}
