/* chat.c — chat formatting for the template families ragd serves, reproducing their Jinja templates
 * byte for byte (add_generation_prompt=True, no tools) without a Jinja engine:
 *   Qwen3   ChatML; system turn only when messages[0] is system; past assistant turns lose <think>…</think>
 *           except after the last real user query; enable_thinking=false appends "<think>\n\n</think>\n\n"
 *           (MODEL_FACTS.md §5, the template in shared/models/qwen3-tokenizer).
 *   SmolLM2 ChatML with the default system prompt when messages[0] is not system (§6).
 *   Llama 3 BOS text, system header (3.1+: "Cutting Knowledge Date…Today Date…"), contents trimmed.
 * The family is recognized by distinctive substrings of tokenizer_config.json's chat_template; anything
 * else is RAGD_EUNSUPPORTED. Tested against apply_chat_template outputs in fixtures/refs. */
#include <stdlib.h>
#include <time.h>

#include "tasks/tasks.h"

#define SMOL_DEFAULT_SYSTEM "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

static bool contains(const char *s, const char *needle) { return s && strstr(s, needle) != NULL; }

ragd_status ragd_chat_family_of(const ragd_model *m, ragd_chat_family *fam, ragd_err *err) {
    const char *t = m->tok ? ragd_tokenizer_chat_template(m->tok) : NULL;
    if (!t) return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s has no chat template: use a raw prompt", m->name);
    if (contains(t, "<|im_start|>") && contains(t, "enable_thinking") && contains(t, "</think>")) {
        *fam = RAGD_CHAT_QWEN3;
        return RAGD_OK;
    }
    if (contains(t, "<|im_start|>") && contains(t, SMOL_DEFAULT_SYSTEM)) {
        *fam = RAGD_CHAT_CHATML_SMOL;
        return RAGD_OK;
    }
    if (contains(t, "<|start_header_id|>") && contains(t, "<|eot_id|>")) {
        *fam = RAGD_CHAT_LLAMA3;
        return RAGD_OK;
    }
    return ragd_err_set(err, RAGD_EUNSUPPORTED,
                        "model %s: its chat template is not one ragd knows (Qwen3, SmolLM2, Llama 3): use a raw prompt",
                        m->name);
}

/* ---- string helpers with Python semantics ---- */

/* Length of the Python str.isspace() character at s (0 if none). */
static size_t py_space_len(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned char c = s[0];
    if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return 1;
    uint32_t cp = 0;
    size_t l = 0;
    if ((c & 0xe0) == 0xc0 && n >= 2) cp = ((c & 0x1fu) << 6) | (s[1] & 0x3fu), l = 2;
    else if ((c & 0xf0) == 0xe0 && n >= 3) cp = ((c & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu), l = 3;
    else return 0;
    if (cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
        cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000)
        return l;
    return 0;
}

/* Length of a Python-whitespace character ending at s[n-1] (0 if none). */
static size_t py_space_len_back(const unsigned char *s, size_t n) {
    for (size_t l = 1; l <= 3 && l <= n; l++) {
        if (l > 1 && (s[n - l] & 0xc0) == 0x80) continue;
        return py_space_len(s + n - l, l) == l ? l : 0;
    }
    return 0;
}

/* Jinja `| trim` (Python str.strip()) */
static void put_trimmed(ragd_buf *out, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), a = 0, l;
    while (a < n && (l = py_space_len(p + a, n - a)) > 0) a += l;
    while (n > a && (l = py_space_len_back(p, n)) > 0) n -= l;
    ragd_buf_append(out, s + a, n - a);
}

/* strip(chars='\n') on [s, s+n): adjusts *s and *n */
static void strip_nl(const char **s, size_t *n, bool left, bool right) {
    while (left && *n && **s == '\n') (*s)++, (*n)--;
    while (right && *n && (*s)[*n - 1] == '\n') (*n)--;
}

static const char *find_last(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    if (n < k) return NULL;
    for (size_t i = n - k + 1; i-- > 0;)
        if (!memcmp(s + i, needle, k)) return s + i;
    return NULL;
}

static bool known_role(const char *r) {
    return !strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant") || !strcmp(r, "tool");
}

/* ---- Qwen3 ---- */

static bool is_tool_response(const char *c) {
    size_t n = strlen(c), a = strlen("<tool_response>"), b = strlen("</tool_response>");
    return n >= a && !memcmp(c, "<tool_response>", a) && n >= b && !memcmp(c + n - b, "</tool_response>", b);
}

static void render_qwen3(const ragd_chat_msg *msgs, int n, bool enable_thinking, ragd_buf *out) {
    if (n > 0 && !strcmp(msgs[0].role, "system")) {
        ragd_buf_puts(out, "<|im_start|>system\n");
        ragd_buf_puts(out, msgs[0].content);
        ragd_buf_puts(out, "<|im_end|>\n");
    }
    int last_query = n - 1;
    for (int i = n - 1; i >= 0; i--)
        if (!strcmp(msgs[i].role, "user") && !is_tool_response(msgs[i].content)) {
            last_query = i;
            break;
        }
    for (int i = 0; i < n; i++) {
        const char *role = msgs[i].role, *content = msgs[i].content;
        if (!strcmp(role, "user") || (!strcmp(role, "system") && i != 0)) {
            ragd_buf_printf(out, "<|im_start|>%s\n", role);
            ragd_buf_puts(out, content);
            ragd_buf_puts(out, "<|im_end|>\n");
        } else if (!strcmp(role, "assistant")) {
            const char *c = content, *r = "";
            size_t cn = strlen(content), rn = 0;
            const char *close_last = find_last(content, cn, "</think>");
            if (close_last) {
                /* content = split('</think>')[-1].lstrip('\n') */
                c = close_last + strlen("</think>");
                cn = strlen(c);
                strip_nl(&c, &cn, true, false);
                /* reasoning = split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
                const char *first_close = strstr(content, "</think>");
                r = content;
                rn = (size_t)(first_close - content);
                strip_nl(&r, &rn, false, true);
                const char *open = find_last(r, rn, "<think>");
                if (open) {
                    rn -= (size_t)(open + strlen("<think>") - r);
                    r = open + strlen("<think>");
                }
                strip_nl(&r, &rn, true, false);
            }
            ragd_buf_puts(out, "<|im_start|>assistant\n");
            if (i > last_query && (i == n - 1 || rn > 0)) {
                strip_nl(&r, &rn, true, true);
                ragd_buf_puts(out, "<think>\n");
                ragd_buf_append(out, r, rn);
                ragd_buf_puts(out, "\n</think>\n\n");
                strip_nl(&c, &cn, true, false);
            }
            ragd_buf_append(out, c, cn);
            ragd_buf_puts(out, "<|im_end|>\n");
        } else if (!strcmp(role, "tool")) {
            if (i == 0 || strcmp(msgs[i - 1].role, "tool")) ragd_buf_puts(out, "<|im_start|>user");
            ragd_buf_puts(out, "\n<tool_response>\n");
            ragd_buf_puts(out, content);
            ragd_buf_puts(out, "\n</tool_response>");
            if (i == n - 1 || strcmp(msgs[i + 1].role, "tool")) ragd_buf_puts(out, "<|im_end|>\n");
        }
    }
    ragd_buf_puts(out, "<|im_start|>assistant\n");
    if (!enable_thinking) ragd_buf_puts(out, "<think>\n\n</think>\n\n");
}

/* ---- SmolLM2 ---- */

static void render_smol(const ragd_chat_msg *msgs, int n, ragd_buf *out) {
    for (int i = 0; i < n; i++) {
        if (i == 0 && strcmp(msgs[0].role, "system"))
            ragd_buf_puts(out, "<|im_start|>system\n" SMOL_DEFAULT_SYSTEM "<|im_end|>\n");
        ragd_buf_printf(out, "<|im_start|>%s\n", msgs[i].role);
        ragd_buf_puts(out, msgs[i].content);
        ragd_buf_puts(out, "<|im_end|>\n");
    }
    ragd_buf_puts(out, "<|im_start|>assistant\n");
}

/* ---- Llama 3 ---- */

static void render_llama3(const ragd_model *m, const char *tpl, const ragd_chat_msg *msgs, int n, ragd_buf *out) {
    int32_t bos = ragd_tokenizer_bos_id(m->tok);
    const char *bos_text = bos >= 0 ? ragd_tokenizer_id_to_token(m->tok, bos) : NULL;
    if (contains(tpl, "Cutting Knowledge Date")) { /* 3.1 / 3.2 / 3.3 */
        if (bos_text) ragd_buf_puts(out, bos_text);
        int first = 0;
        ragd_buf_puts(out, "<|start_header_id|>system<|end_header_id|>\n\n");
        ragd_buf_puts(out, "Cutting Knowledge Date: December 2023\nToday Date: ");
        if (contains(tpl, "strftime_now")) { /* 3.2: today's date, "%d %b %Y" */
            char d[32];
            time_t now = time(NULL);
            struct tm tmv;
            localtime_r(&now, &tmv);
            strftime(d, sizeof d, "%d %b %Y", &tmv);
            ragd_buf_puts(out, d);
        } else {
            ragd_buf_puts(out, "26 Jul 2024");
        }
        ragd_buf_puts(out, "\n\n");
        if (n > 0 && !strcmp(msgs[0].role, "system")) {
            put_trimmed(out, msgs[0].content);
            first = 1;
        }
        ragd_buf_puts(out, "<|eot_id|>");
        for (int i = first; i < n; i++) {
            if (!strcmp(msgs[i].role, "tool")) {
                ragd_buf_puts(out, "<|start_header_id|>ipython<|end_header_id|>\n\n");
                ragd_buf_puts(out, msgs[i].content);
            } else {
                ragd_buf_printf(out, "<|start_header_id|>%s<|end_header_id|>\n\n", msgs[i].role);
                put_trimmed(out, msgs[i].content);
            }
            ragd_buf_puts(out, "<|eot_id|>");
        }
    } else { /* Llama 3.0: bos before the first message only */
        for (int i = 0; i < n; i++) {
            if (i == 0 && bos_text) ragd_buf_puts(out, bos_text);
            ragd_buf_printf(out, "<|start_header_id|>%s<|end_header_id|>\n\n", msgs[i].role);
            put_trimmed(out, msgs[i].content);
            ragd_buf_puts(out, "<|eot_id|>");
        }
    }
    ragd_buf_puts(out, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

ragd_status ragd_chat_render(const ragd_model *m, const ragd_chat_msg *msgs, int n, bool enable_thinking,
                             ragd_buf *out, ragd_err *err) {
    ragd_chat_family fam;
    ragd_status st = ragd_chat_family_of(m, &fam, err);
    if (st) return st;
    if (n < 1) return ragd_err_set(err, RAGD_EINVAL, "a chat needs at least one message");
    for (int i = 0; i < n; i++) {
        if (!msgs[i].role || !known_role(msgs[i].role))
            return ragd_err_set(err, RAGD_EINVAL, "message %d: role \"%s\" is not system, user, assistant or tool", i,
                                msgs[i].role ? msgs[i].role : "(null)");
        if (!msgs[i].content) return ragd_err_set(err, RAGD_EINVAL, "message %d: no content", i);
    }
    switch (fam) {
    case RAGD_CHAT_QWEN3: render_qwen3(msgs, n, enable_thinking, out); break;
    case RAGD_CHAT_CHATML_SMOL: render_smol(msgs, n, out); break;
    case RAGD_CHAT_LLAMA3: render_llama3(m, ragd_tokenizer_chat_template(m->tok), msgs, n, out); break;
    case RAGD_CHAT_CHATML:
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "generic ChatML rendering is not implemented");
    }
    return RAGD_OK;
}

ragd_status ragd_chat_prepare(const ragd_model *m, const ragd_chat_msg *msgs, int n, bool enable_thinking,
                              ragd_tok_ids *out, ragd_err *err) {
    ragd_buf b = {0};
    ragd_status st = ragd_chat_render(m, msgs, n, enable_thinking, &b, err);
    if (!st) st = ragd_tokenizer_encode(m->tok, b.data, b.len, false, out, err);
    ragd_buf_free(&b);
    return st;
}
