/* fuzz_jinja.c — libFuzzer target for the chat-template interpreter (tasks/jinja_*.c, chat.c) and the
 * tool-call parser. The first byte picks the mode:
 *   even: the rest is a template source, compiled and rendered with a fixed conversation (tools, tool
 *         calls, kwargs) — hostile templates must end in a status, never a crash, hang or leak;
 *   odd:  the rest is the conversation (a JSON messages array, or else the text of one user message)
 *         rendered by every real chat template in RAGD_SHARED/models (compiled once).
 * Either way the bytes are also parsed as a model answer in every tool-call syntax. Checks: rendered
 * text is valid UTF-8; failures leave the output empty. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "tasks/tasks.h"

#define MAX_TPL 64
static ragd_chat_template *real[MAX_TPL];
static int n_real;
static json_t *fixed_msgs, *fixed_tools, *fixed_kwargs;

static void load_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) && n_real < MAX_TPL) {
        if (e->d_name[0] == '.') continue;
        char *sub = ragd_path_join(dir, e->d_name);
        DIR *dd = opendir(sub);
        struct dirent *f;
        while (dd && (f = readdir(dd)) && n_real < MAX_TPL) {
            if (strncmp(f->d_name, "chat_template", 13) || !strstr(f->d_name, ".jinja")) continue;
            char *p = ragd_path_join(sub, f->d_name), *src = NULL;
            size_t n;
            ragd_err err = {0};
            if (!ragd_file_read(p, &src, &n, &err) &&
                ragd_chat_template_compile(src, n, "<s>", "</s>", NULL, &real[n_real], &err) == RAGD_OK)
                n_real++;
            ragd_err_free(&err);
            free(src);
            free(p);
        }
        if (dd) closedir(dd);
        free(sub);
    }
    closedir(d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *shared = getenv("RAGD_SHARED");
    if (shared) {
        char *p = ragd_path_join(shared, "models");
        load_dir(p);
        free(p);
    }
    fprintf(stderr, "fuzz_jinja: %d real templates\n", n_real);
    fixed_msgs = json_loads("[{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", \"content\": \"Hi <|im_end|>\"},"
                            "{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"abc123DEF\", \"type\": \"function\","
                            "\"function\": {\"name\": \"f\", \"arguments\": {\"x\": [1, 2.5, null, true]}}}]},"
                            "{\"role\": \"tool\", \"tool_call_id\": \"abc123DEF\", \"content\": \"42\"},"
                            "{\"role\": \"assistant\", \"content\": \"ok\", \"reasoning_content\": \"hm\"}, {\"role\": \"user\", \"content\": \"é\"}]",
                            0, NULL);
    fixed_tools = json_loads("[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": \"d\", \"parameters\":"
                             "{\"type\": \"object\", \"properties\": {\"x\": {\"type\": \"array\", \"items\": {\"type\": \"number\"}}},"
                             "\"required\": [\"x\"]}}}]", 0, NULL);
    fixed_kwargs = json_loads("{\"enable_thinking\": false, \"bos_token\": \"<s>\"}", 0, NULL);
    if (!fixed_msgs || !fixed_tools || !fixed_kwargs) RAGD_DIE("fixed inputs do not parse");
    return 0;
}

static void render(const ragd_chat_template *t, const json_t *msgs, bool tools, int agp) {
    ragd_chat_input in = {.messages = msgs, .tools = tools ? fixed_tools : NULL, .kwargs = fixed_kwargs,
                          .add_generation_prompt = agp, .now = 1753000000};
    ragd_buf out = {0};
    ragd_err err = {0};
    ragd_status st = ragd_chat_template_render(t, &in, &out, &err);
    if (st && out.len) RAGD_DIE("a failed render left output");
    if (!st && !ragd_utf8_valid(out.data ? out.data : "", out.len, NULL)) RAGD_DIE("rendered invalid UTF-8");
    ragd_buf_free(&out);
    ragd_err_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    for (int f = RAGD_TOOLCALL_NONE; f <= RAGD_TOOLCALL_GRANITE; f++) {
        json_t *calls = NULL;
        size_t cl;
        if (ragd_toolcall_parse((ragd_toolcall_format)f, s, n, "z", &calls, &cl) && (!calls || cl > n))
            RAGD_DIE("tool-call parse: bad result");
        json_decref(calls);
        if (ragd_toolcall_start((ragd_toolcall_format)f, s, n) > n) RAGD_DIE("tool-call start past the end");
    }
    if (!ragd_utf8_valid(s, n, NULL)) return 0;
    if (data[0] % 2 == 0) {
        ragd_chat_template *t = NULL;
        ragd_err err = {0};
        if (ragd_chat_template_compile(s, n, "<s>", "</s>", NULL, &t, &err) == RAGD_OK) {
            render(t, fixed_msgs, true, 1);
            render(t, fixed_msgs, false, 0);
        }
        ragd_chat_template_free(t);
        ragd_err_free(&err);
        return 0;
    }
    json_t *msgs = json_loadb(s, n, 0, NULL);
    if (!json_is_array(msgs)) {
        json_decref(msgs);
        msgs = json_array();
        json_array_append_new(msgs, json_pack("{s:s,s:s%}", "role", "user", "content", s, n));
    }
    for (int i = 0; i < n_real; i++) render(real[i], msgs, data[0] & 2, data[0] & 4);
    json_decref(msgs);
    return 0;
}
