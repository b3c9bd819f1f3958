/* cmd_tokenize.c — `ragd tokenize` and `ragd detokenize`: JSON lines on stdin → JSON lines on stdout.
 *
 *   tokenize:   {"text": "..."}  →  {"ids": [...]}      (--add-special-tokens applies the post-processor)
 *   detokenize: {"ids": [...]}   →  {"text": "..."}     (--skip-special-tokens drops special tokens)
 *
 * Contract: one output line per input line, in order. A bad line (invalid UTF-8 or JSON, missing field,
 * id out of range) stops the run: the lines before it are written, nothing is written for it, stderr
 * names the line number, exit status 1. Usage errors exit 2.
 *
 * Output is buffered and flushed only before a read that may block (and at the end), so a big batch
 * costs a few large writes while an interactive caller still gets each answer at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/common.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

typedef struct io_state {
    char *in;                /* [cap] input buffer */
    size_t cap, start, end;  /* unread bytes are in[start, end) */
    bool eof;
    ragd_buf out;            /* complete output lines not yet written */
} io_state;

static bool flush_out(io_state *io) {
    size_t off = 0;
    while (off < io->out.len) {
        ssize_t w = write(STDOUT_FILENO, io->out.data + off, io->out.len - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        off += (size_t)w;
    }
    ragd_buf_reset(&io->out);
    return true;
}

/* The next line without its '\n' (and a trailing '\r'); false at the end of input. */
static bool next_line(io_state *io, char **line, size_t *len, ragd_err *err) {
    for (;;) {
        char *nl = memchr(io->in + io->start, '\n', io->end - io->start);
        if (nl || (io->eof && io->end > io->start)) {
            char *s = io->in + io->start;
            size_t n = nl ? (size_t)(nl - s) : io->end - io->start;
            io->start += n + (nl ? 1 : 0);
            if (n && s[n - 1] == '\r') n--;
            *line = s;
            *len = n;
            return true;
        }
        if (io->eof) return false;
        /* need more input: compact, grow, flush what we have, then read (may block) */
        if (io->start) {
            memmove(io->in, io->in + io->start, io->end - io->start);
            io->end -= io->start;
            io->start = 0;
        }
        if (io->end == io->cap) {
            io->cap *= 2;
            io->in = ragd_xrealloc(io->in, io->cap);
        }
        if (!flush_out(io)) {
            ragd_err_set(err, RAGD_EIO, "writing stdout: %s", strerror(errno));
            return false;
        }
        ssize_t r = read(STDIN_FILENO, io->in + io->end, io->cap - io->end);
        if (r < 0) {
            if (errno == EINTR) continue;
            ragd_err_set(err, RAGD_EIO, "reading stdin: %s", strerror(errno));
            return false;
        }
        if (r == 0) io->eof = true;
        io->end += (size_t)r;
    }
}

static void put_int(ragd_buf *b, int32_t v) {
    char tmp[16];
    int n = 0;
    uint32_t u = v < 0 ? (uint32_t)(-(int64_t)v) : (uint32_t)v;
    do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) tmp[n++] = '-';
    ragd_buf_reserve(b, (size_t)n);
    while (n) b->data[b->len++] = tmp[--n];
    b->data[b->len] = 0;
}

typedef struct opts {
    const char *path;
    bool special;  /* --add-special-tokens / --skip-special-tokens */
} opts;

static void usage(FILE *f, bool detok) {
    if (detok)
        fprintf(f, "usage: ragd detokenize (--tokenizer FILE | --model DIR|FILE) [--skip-special-tokens]\n\n"
                   "Reads JSON lines {\"ids\": [...]} on stdin and writes {\"text\": \"...\"} per line.\n"
                   "Special tokens are kept unless --skip-special-tokens is given.\n");
    else
        fprintf(f, "usage: ragd tokenize (--tokenizer FILE | --model DIR|FILE) [--add-special-tokens]\n\n"
                   "Reads JSON lines {\"text\": \"...\"} on stdin and writes {\"ids\": [...]} per line.\n"
                   "No special tokens are added unless --add-special-tokens is given (then the\n"
                   "tokenizer's post-processor runs, e.g. Qwen3-Embedding appends <|endoftext|>).\n");
    fprintf(f, "\n  --tokenizer FILE   a Hugging Face tokenizer.json (tokenizer_config.json beside it is read)\n"
               "  --model DIR|FILE   a model folder (DIR/tokenizer.json, else a BERT DIR/vocab.txt), a .gguf\n"
               "                     file (its embedded tokenizer) or a tokenizer.json\n"
               "A bad input line stops the run: earlier lines are written, stderr names the line, exit 1.\n");
}

/* Parses options; returns -1 to continue, else the exit code. */
static int parse_opts(int argc, char **argv, bool detok, opts *o) {
    const char *flag = detok ? "--skip-special-tokens" : "--add-special-tokens";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout, detok); return 0; }
        if (!strcmp(a, flag)) { o->special = true; continue; }
        if ((!strcmp(a, "--tokenizer") || !strcmp(a, "--model")) && i + 1 < argc) {
            if (o->path) { fprintf(stderr, "ragd: give one of --tokenizer / --model\n"); return 2; }
            o->path = argv[++i];
            continue;
        }
        fprintf(stderr, "ragd %s: unknown or incomplete option '%s'\n", detok ? "detokenize" : "tokenize", a);
        usage(stderr, detok);
        return 2;
    }
    if (!o->path) {
        fprintf(stderr, "ragd %s: --tokenizer FILE or --model DIR is required\n", detok ? "detokenize" : "tokenize");
        usage(stderr, detok);
        return 2;
    }
    return -1;
}

/* A folder → DIR/tokenizer.json (or, without one, DIR/vocab.txt as a BERT tokenizer); a .gguf file →
 * its embedded tokenizer (through the model loader, which mmaps the weights without reading them;
 * *model keeps it alive); else a tokenizer.json. */
static ragd_status load(const char *path, ragd_tokenizer **t, ragd_model **model, ragd_err *err) {
    if (ragd_dir_exists(path)) {
        char *p = ragd_path_join(path, "tokenizer.json"), *v = ragd_path_join(path, "vocab.txt");
        ragd_status st = ragd_file_exists(p)   ? ragd_tokenizer_load_json(p, t, err)
                         : ragd_file_exists(v) ? ragd_tokenizer_load_bert_vocab(path, t, err)
                                               : ragd_err_set(err, RAGD_ENOTFOUND, "%s has no tokenizer.json", path);
        free(p);
        free(v);
        return st;
    }
    size_t n = strlen(path);
    if (n > 5 && !strcmp(path + n - 5, ".gguf")) {
        ragd_status st = ragd_model_load(path, model, err);
        if (!st) *t = (*model)->tok;
        return st;
    }
    return ragd_tokenizer_load_json(path, t, err);
}

/* One input line → one output line appended to out (nothing appended on failure). */
static ragd_status tokenize_line(const ragd_tokenizer *t, const char *line, size_t len, bool special,
                                 ragd_tok_ids *ids, ragd_buf *out, ragd_err *err) {
    size_t bad;
    if (!ragd_utf8_valid(line, len, &bad))
        return ragd_err_set(err, RAGD_EINVAL, "invalid UTF-8 at byte %zu", bad);
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, &je);
    if (!o) return ragd_err_set(err, RAGD_EINVAL, "invalid JSON at column %d: %s", je.column, je.text);
    json_t *text = json_object_get(o, "text");
    ragd_status st = RAGD_OK;
    if (!json_is_object(o) || !json_is_string(text)) {
        st = ragd_err_set(err, RAGD_EINVAL, "expected an object with a string \"text\"");
    } else {
        ids->n = 0;
        st = ragd_tokenizer_encode(t, json_string_value(text), json_string_length(text), special, ids, err);
    }
    json_decref(o);
    if (st) return st;
    ragd_buf_reserve(out, 12 + ids->n * 8);
    ragd_buf_append(out, "{\"ids\": [", 9);
    for (size_t i = 0; i < ids->n; i++) {
        if (i) ragd_buf_append(out, ", ", 2);
        put_int(out, ids->ids[i]);
    }
    ragd_buf_append(out, "]}\n", 3);
    return RAGD_OK;
}

static ragd_status detokenize_line(const ragd_tokenizer *t, const char *line, size_t len, bool skip,
                                   ragd_tok_ids *ids, ragd_buf *text, ragd_buf *out, ragd_err *err) {
    json_error_t je;
    json_t *o = json_loadb(line, len, 0, &je);
    if (!o) return ragd_err_set(err, RAGD_EINVAL, "invalid JSON at column %d: %s", je.column, je.text);
    json_t *arr = json_object_get(o, "ids");
    ragd_status st = RAGD_OK;
    if (!json_is_object(o) || !json_is_array(arr)) {
        st = ragd_err_set(err, RAGD_EINVAL, "expected an object with an array \"ids\"");
    } else {
        ids->n = 0;
        size_t i;
        json_t *x;
        json_array_foreach(arr, i, x) {
            if (!json_is_integer(x)) { st = ragd_err_set(err, RAGD_EINVAL, "ids[%zu] is not an integer", i); break; }
            json_int_t v = json_integer_value(x);
            if (v < 0 || (size_t)v >= ragd_tokenizer_vocab_size(t)) {
                st = ragd_err_set(err, RAGD_ERANGE, "ids[%zu] = %lld is outside the vocabulary (size %zu)", i,
                                  (long long)v, ragd_tokenizer_vocab_size(t));
                break;
            }
            ragd_tok_ids_push(ids, (int32_t)v);
        }
    }
    json_decref(o);
    if (!st) {
        ragd_buf_reset(text);
        st = ragd_tokenizer_decode(t, ids->ids, ids->n, skip, text, err);
    }
    if (st) return st;
    ragd_buf_append(out, "{\"text\": ", 9);
    ragd_buf_json_str(out, text->data, text->len);
    ragd_buf_append(out, "}\n", 2);
    return RAGD_OK;
}

static int run(int argc, char **argv, bool detok) {
    const char *cmd = detok ? "detokenize" : "tokenize";
    opts o = {0};
    int rc = parse_opts(argc, argv, detok, &o);
    if (rc >= 0) return rc;
    ragd_err err = {0};
    ragd_tokenizer *t = NULL;
    ragd_model *model = NULL;
    if (load(o.path, &t, &model, &err)) {
        fprintf(stderr, "ragd %s: %s\n", cmd, ragd_err_msg(&err));
        ragd_err_free(&err);
        return 1;
    }
    io_state io = {.cap = 1 << 16};
    io.in = ragd_xmalloc(io.cap);
    ragd_tok_ids ids = {0};
    ragd_buf text = {0};
    char *line;
    size_t len, lineno = 0;
    rc = 0;
    while (next_line(&io, &line, &len, &err)) {
        lineno++;
        ragd_status st = detok ? detokenize_line(t, line, len, o.special, &ids, &text, &io.out, &err)
                               : tokenize_line(t, line, len, o.special, &ids, &io.out, &err);
        if (st) {
            fprintf(stderr, "ragd %s: line %zu: %s\n", cmd, lineno, ragd_err_msg(&err));
            rc = 1;
            break;
        }
        if (io.out.len >= (1u << 20) && !flush_out(&io)) break;
    }
    if (!rc && err.code) {
        fprintf(stderr, "ragd %s: %s\n", cmd, ragd_err_msg(&err));
        rc = 1;
    }
    if (!flush_out(&io)) {
        fprintf(stderr, "ragd %s: writing stdout: %s\n", cmd, strerror(errno));
        rc = 1;
    }
    ragd_buf_free(&io.out);
    ragd_buf_free(&text);
    free(io.in);
    ragd_tok_ids_free(&ids);
    if (model) ragd_model_free(model); /* owns t */
    else ragd_tokenizer_free(t);
    ragd_err_free(&err);
    return rc;
}

int ragd_cmd_tokenize(int argc, char **argv) { return run(argc, argv, false); }
int ragd_cmd_detokenize(int argc, char **argv) { return run(argc, argv, true); }
