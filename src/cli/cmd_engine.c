/* cmd_engine.c — `ragd embed`, `ragd rerank`, `ragd generate`: the engine from the command line.
 *
 * Contract (tests outside the repo rely on it):
 *   embed    JSON lines {"text": …} on stdin → {"embedding": [...]} per line, in order
 *   rerank   JSON lines {"text": doc} on stdin → {"score": s} per line, in order
 *   generate --prompt TEXT: raw text tokenized without special tokens (or --chat: one user message through
 *            the model's chat template, or --chat-template FILE); text streamed to stdout, or with --json one line
 *            {"ids": [generated ids], "text": "…"}
 *   generate --input FILE (batch): JSON lines {"prompt": …} → {"ids": [...], "text": "…"} per line, in order
 * Batch jobs (batch_job.h) read --input FILE or stdin in chunks (up to max-batch-tokens worth of text per
 * engine call; one prompt per call for generate), write complete lines only, to --output FILE through
 * FILE.part renamed on success (or to stdout), and flush after each chunk; on the first failure they stop
 * with "ragd <cmd>: line N: why" and exit 1; --resume continues FILE.part; progress on stderr when it is
 * a terminal or with --progress.
 * Exit codes: 0 ok, 1 failure while running, 2 bad usage.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/batch_job.h"
#include "cli/cli.h"
#include "tasks/tasks.h"

/* ---- options ---- */

typedef struct {
    const char *cmd;
    const char *model, *device;
    int threads, max_batch_tokens;
    /* embed / rerank */
    int dimensions;
    bool has_dimensions;
    const char *instruction, *query;
    /* generate */
    const char *prompt, *chat_template;
    bool chat, json, ignore_eos, no_think;
    int max_tokens, top_k;
    float temperature, top_p, min_p;
    uint64_t seed;
    const char *stop[16];
    int n_stop;
    /* batch jobs */
    const char *input, *output;
    bool progress, resume;
} cli_opts;

static int usage_err(const cli_opts *o, const char *fmt, const char *arg) {
    fprintf(stderr, "ragd %s: ", o->cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see `ragd %s --help`)\n", o->cmd);
    return 2;
}

static void help(const char *cmd) {
    printf("usage: ragd %s --model DIR [--device cpu|cuda] [--threads N] [--max-batch-tokens N]", cmd);
    if (!strcmp(cmd, "embed")) printf(" [--dimensions N] [--instruction TEXT]\n  input: {\"text\": ...} per line → output {\"embedding\": [...]}\n");
    if (!strcmp(cmd, "rerank")) printf(" --query TEXT [--instruction TEXT]\n  input: {\"text\": doc} per line → output {\"score\": s}\n");
    if (!strcmp(cmd, "generate"))
        printf(" --prompt TEXT | --input FILE  [--chat] [--chat-template FILE] [--no-think] [--max-tokens N] [--temperature T]\n"
               "       [--top-k K] [--top-p P] [--min-p P] [--seed S] [--stop TEXT]... [--ignore-eos] [--json]\n"
               "  without --chat the prompt is raw text (no special tokens); defaults: greedy (temperature 0),\n"
               "  max-tokens 128; --json prints {\"ids\": [...], \"text\": \"...\"}; with --input, JSON lines\n"
               "  {\"prompt\": ...} → {\"ids\": [...], \"text\": ...} per line (each prompt alone, seeded by --seed)\n");
    printf("batch jobs: [--input FILE] [--output FILE] [--resume] [--progress]\n"
           "  --input FILE   JSON lines to read (default stdin)\n"
           "  --output FILE  written as FILE.part, renamed to FILE only when every line succeeded (default stdout)\n"
           "  --resume       continue a stopped job: keep FILE.part's complete lines, compute the rest\n"
           "  --progress     progress (done/total, rate, ETA) on stderr even when it is not a terminal\n"
           "  the first failing line stops the job: \"line N: why\", exit 1\n");
}

/* returns -1 to continue, else the exit code */
static int parse(int argc, char **argv, cli_opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED()                                                              \
    do {                                                                    \
        if (!v) return usage_err(o, "%s needs a value", a);                 \
        i++;                                                                \
    } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help(o->cmd);
            return 0;
        } else if (!strcmp(a, "--model")) {
            NEED();
            o->model = v;
        } else if (!strcmp(a, "--device")) {
            NEED();
            o->device = v;
        } else if (!strcmp(a, "--threads")) {
            NEED();
            if (!ragd_cli_parse_int(v, 0, 1024, &o->threads)) return usage_err(o, "--threads %s: want 0..1024", v);
        } else if (!strcmp(a, "--max-batch-tokens")) {
            NEED();
            if (!ragd_cli_parse_int(v, 1, 1 << 20, &o->max_batch_tokens))
                return usage_err(o, "--max-batch-tokens %s: want 1..1048576", v);
        } else if (!strcmp(a, "--input")) {
            NEED();
            o->input = v;
        } else if (!strcmp(a, "--output")) {
            NEED();
            if (!v[0]) return usage_err(o, "%s", "--output needs a file name");
            o->output = v;
        } else if (!strcmp(a, "--resume")) {
            o->resume = true;
        } else if (!strcmp(a, "--progress")) {
            o->progress = true;
        } else if (!strcmp(a, "--dimensions") && strcmp(o->cmd, "generate")) {
            NEED();
            if (!ragd_cli_parse_int(v, 1, 1 << 20, &o->dimensions)) return usage_err(o, "--dimensions %s: want an integer ≥ 1", v);
            o->has_dimensions = true;
        } else if (!strcmp(a, "--instruction") && strcmp(o->cmd, "generate")) {
            NEED();
            o->instruction = v;
        } else if (!strcmp(a, "--query") && !strcmp(o->cmd, "rerank")) {
            NEED();
            o->query = v;
        } else if (!strcmp(a, "--prompt") && !strcmp(o->cmd, "generate")) {
            NEED();
            o->prompt = v;
        } else if (!strcmp(a, "--chat") && !strcmp(o->cmd, "generate")) {
            o->chat = true;
        } else if (!strcmp(a, "--chat-template") && !strcmp(o->cmd, "generate")) {
            NEED();
            o->chat_template = v;
            o->chat = true;
        } else if (!strcmp(a, "--json") && !strcmp(o->cmd, "generate")) {
            o->json = true;
        } else if (!strcmp(a, "--ignore-eos") && !strcmp(o->cmd, "generate")) {
            o->ignore_eos = true;
        } else if (!strcmp(a, "--no-think") && !strcmp(o->cmd, "generate")) {
            o->no_think = true;
        } else if (!strcmp(a, "--max-tokens") && !strcmp(o->cmd, "generate")) {
            NEED();
            if (!ragd_cli_parse_int(v, 1, 1 << 20, &o->max_tokens)) return usage_err(o, "--max-tokens %s: want an integer ≥ 1", v);
        } else if (!strcmp(a, "--temperature") && !strcmp(o->cmd, "generate")) {
            NEED();
            if (!ragd_cli_parse_float(v, 0, 100, &o->temperature)) return usage_err(o, "--temperature %s: want 0..100", v);
        } else if (!strcmp(a, "--top-k") && !strcmp(o->cmd, "generate")) {
            NEED();
            if (!ragd_cli_parse_int(v, 0, 1 << 30, &o->top_k)) return usage_err(o, "--top-k %s: want an integer ≥ 0", v);
        } else if (!strcmp(a, "--top-p") && !strcmp(o->cmd, "generate")) {
            NEED();
            if (!ragd_cli_parse_float(v, 1e-9f, 1, &o->top_p)) return usage_err(o, "--top-p %s: want a number in (0, 1]", v);
        } else if (!strcmp(a, "--min-p") && !strcmp(o->cmd, "generate")) {
            NEED();
            if (!ragd_cli_parse_float(v, 0, 1, &o->min_p)) return usage_err(o, "--min-p %s: want a number in [0, 1]", v);
        } else if (!strcmp(a, "--seed") && !strcmp(o->cmd, "generate")) {
            NEED();
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-') return usage_err(o, "--seed %s: want an unsigned integer", v);
            o->seed = s;
        } else if (!strcmp(a, "--stop") && !strcmp(o->cmd, "generate")) {
            NEED();
            if (o->n_stop == 16) return usage_err(o, "%s: at most 16 stop strings", a);
            if (!v[0]) return usage_err(o, "--stop '%s': a stop string cannot be empty", v);
            o->stop[o->n_stop++] = v;
        } else {
            return usage_err(o, "unknown option '%s'", a);
        }
#undef NEED
    }
    if (!o->model) return usage_err(o, "%s", "--model DIR is required");
    if (!strcmp(o->cmd, "rerank") && !o->query) return usage_err(o, "%s", "--query TEXT is required");
    if (!strcmp(o->cmd, "generate") && !o->prompt && !o->input)
        return usage_err(o, "%s", "--prompt TEXT or --input FILE is required");
    if (!strcmp(o->cmd, "generate") && o->prompt && o->input)
        return usage_err(o, "%s", "--prompt and --input exclude each other");
    if (o->resume && (!o->output || !strcmp(o->output, "-")))
        return usage_err(o, "%s", "--resume needs --output FILE (it continues FILE.part)");
    if (strcmp(o->device, "cpu") && strcmp(o->device, "cuda"))
        return usage_err(o, "--device %s: want cpu or cuda", o->device);
    return -1;
}

static int fail(const cli_opts *o, const ragd_err *err) {
    fprintf(stderr, "ragd %s: %s\n", o->cmd, ragd_err_msg(err));
    return 1;
}

static ragd_device device_of(const cli_opts *o) { return !strcmp(o->device, "cuda") ? RAGD_DEVICE_CUDA : RAGD_DEVICE_CPU; }

static ragd_status open_engine(const cli_opts *o, ragd_model **m, ragd_engine **e, int max_seqs, int max_ctx,
                               bool kv, ragd_err *err) {
    ragd_status st = ragd_model_load(o->model, m, err);
    if (st) return st;
    int mbt = o->max_batch_tokens ? o->max_batch_tokens : 4096;
    int ctx = max_ctx ? max_ctx : mbt;
    if ((*m)->cfg.max_pos > 0 && ctx > (*m)->cfg.max_pos) ctx = (*m)->cfg.max_pos;
    ragd_engine_opts eo = {.device = device_of(o), .max_batch_tokens = mbt, .max_seqs = max_seqs, .max_ctx = ctx,
                           .kv_cache = kv, .n_threads = o->threads};
    st = ragd_engine_create(*m, &eo, e, err);
    if (st) ragd_err_prefix(err, "%s", o->model);
    return st;
}

/* ---- embed / rerank: one loop, two tasks ---- */

typedef struct {
    const cli_opts *o;
    bool rerank;
    ragd_engine *e;
    ragd_embed_opts eopt;
    int dims;
    float *out; /* [max_seqs, dims] or [max_seqs] */
} score_job;

static ragd_status score_chunk(void *ud, char **texts, const size_t *lens, int n, ragd_buf *ob, int *failed,
                               ragd_err *err) {
    score_job *j = ud;
    ragd_status st = j->rerank ? ragd_rerank_docs(j->e, j->o->query, (const char *const *)texts, n, j->o->instruction,
                                                  j->out, failed, err)
                               : ragd_embed_texts(j->e, (const char *const *)texts, lens, n, &j->eopt, j->out, failed, err);
    if (st) return st;
    for (int k = 0; k < n; k++) {
        if (j->rerank) {
            ragd_buf_puts(ob, "{\"score\": ");
            ragd_buf_json_f32(ob, j->out[k]);
            ragd_buf_puts(ob, "}\n");
        } else {
            ragd_buf_puts(ob, "{\"embedding\": [");
            for (int d = 0; d < j->dims; d++) {
                if (d) ragd_buf_puts(ob, ", ");
                ragd_buf_json_f32(ob, j->out[(size_t)k * j->dims + d]);
            }
            ragd_buf_puts(ob, "]}\n");
        }
    }
    return RAGD_OK;
}

static ragd_job_opts job_opts(const cli_opts *o, const char *field, int max_lines, size_t max_bytes) {
    return (ragd_job_opts){.cmd = o->cmd, .input = o->input, .output = o->output, .progress = o->progress,
                           .resume = o->resume, .field = field, .max_lines = max_lines, .max_bytes = max_bytes};
}

static int run_batch_job(cli_opts *o, bool rerank) {
    ragd_err err = {0};
    ragd_model *m = NULL;
    int rc = 0;
    /* one engine call per chunk: up to max_seqs texts of up to max-batch-tokens total */
    int max_seqs = 64;
    score_job j = {.o = o, .rerank = rerank};
    j.eopt = (ragd_embed_opts){.instruction = o->instruction, .dimensions = o->has_dimensions ? o->dimensions : 0,
                               .normalize = true};
    int32_t yes, no;
    if (open_engine(o, &m, &j.e, max_seqs, 0, false, &err) || (!rerank && ragd_embed_check_opts(m, &j.eopt, &err)) ||
        (rerank && ragd_rerank_token_ids(m, &yes, &no, &err))) {
        rc = fail(o, &err);
        goto out;
    }
    j.dims = ragd_embed_dims(m, &j.eopt);
    j.out = ragd_xmalloc(sizeof(float) * (size_t)max_seqs * (rerank ? 1 : (size_t)j.dims));
    size_t budget = (size_t)ragd_engine_get_opts(j.e)->max_batch_tokens * 4; /* bytes of text per chunk (≈ tokens) */
    ragd_job_opts jo = job_opts(o, "text", max_seqs, budget);
    rc = ragd_job_run(&jo, score_chunk, &j);
    free(j.out);
out:
    ragd_engine_free(j.e);
    ragd_model_free(m);
    ragd_err_free(&err);
    return rc;
}

static cli_opts defaults(const char *cmd) {
    return (cli_opts){.cmd = cmd, .device = "cpu", .max_tokens = 128, .temperature = 0, .top_p = 1, .min_p = 0};
}

int ragd_cmd_embed(int argc, char **argv) {
    cli_opts o = defaults("embed");
    int rc = parse(argc, argv, &o);
    return rc >= 0 ? rc : run_batch_job(&o, false);
}

int ragd_cmd_rerank(int argc, char **argv) {
    cli_opts o = defaults("rerank");
    int rc = parse(argc, argv, &o);
    return rc >= 0 ? rc : run_batch_job(&o, true);
}

/* ---- generate ---- */

static void write_stdout(void *ud, const char *text, size_t len) {
    (void)ud;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

/* The prompt's tokens: raw text without special tokens, or (--chat) one user message through the template. */
static ragd_status encode_prompt(const cli_opts *o, ragd_model *m, ragd_chat_template *tpl, const char *text,
                                 ragd_tok_ids *prompt, ragd_err *err) {
    ragd_status st;
    if (tpl) {
        ragd_chat_msg msg = {"user", text};
        ragd_buf rendered = {0};
        st = ragd_chat_render_with(tpl, &msg, 1, !o->no_think, &rendered, err);
        if (!st) st = ragd_tokenizer_encode(m->tok, rendered.data ? rendered.data : "", rendered.len, false, prompt, err);
        ragd_buf_free(&rendered);
    } else {
        st = ragd_tokenizer_encode(m->tok, text, strlen(text), false, prompt, err);
        if (!st && prompt->n == 0) st = ragd_err_set(err, RAGD_EINVAL, "the prompt has no tokens");
    }
    return st;
}

static ragd_gen_opts gen_opts(const cli_opts *o) {
    return (ragd_gen_opts){.sampling = {.temperature = o->temperature, .top_k = o->top_k, .top_p = o->top_p,
                                        .min_p = o->min_p, .seed = o->seed},
                           .max_tokens = o->max_tokens, .ignore_eos = o->ignore_eos, .stop = o->stop,
                           .n_stop = o->n_stop};
}

static void json_result(ragd_buf *j, const ragd_tok_ids *ids, const ragd_buf *text) {
    ragd_buf_puts(j, "{\"ids\": [");
    for (size_t i = 0; i < ids->n; i++) {
        if (i) ragd_buf_puts(j, ", ");
        ragd_buf_json_i64(j, ids->ids[i]);
    }
    ragd_buf_puts(j, "], \"text\": ");
    ragd_buf_json_str(j, text->data ? text->data : "", text->len);
    ragd_buf_puts(j, "}\n");
}

/* ---- generate --input: one prompt per line, each alone on the engine (same seed for every line) ---- */

typedef struct {
    const cli_opts *o;
    ragd_model *m;
    ragd_engine *e;
    ragd_chat_template *tpl;
} gen_job;

static ragd_status gen_chunk(void *ud, char **texts, const size_t *lens, int n, ragd_buf *ob, int *failed,
                             ragd_err *err) {
    (void)lens;
    gen_job *j = ud;
    ragd_gen_opts go = gen_opts(j->o);
    ragd_status st = RAGD_OK;
    for (int k = 0; k < n && !st; k++) {
        ragd_tok_ids prompt = {0}, ids = {0};
        ragd_buf text = {0};
        ragd_finish fin;
        st = encode_prompt(j->o, j->m, j->tpl, texts[k], &prompt, err);
        if (!st) st = ragd_generate(j->e, prompt.ids, prompt.n, &go, &ids, &text, &fin, err);
        if (!st) json_result(ob, &ids, &text);
        else *failed = k;
        ragd_tok_ids_free(&prompt);
        ragd_tok_ids_free(&ids);
        ragd_buf_free(&text);
    }
    return st;
}

static int run_generate_job(const cli_opts *o) {
    ragd_err err = {0};
    gen_job j = {.o = o};
    int rc = 0;
    ragd_status st = ragd_model_load(o->model, &j.m, &err);
    if (!st && !j.m->tok) st = ragd_err_set(&err, RAGD_EUNSUPPORTED, "%s: no tokenizer", o->model);
    if (!st && o->chat) st = ragd_chat_template_for_model(j.m, o->chat_template, &j.tpl, &err);
    if (!st) {
        /* every prompt + --max-tokens must fit this context (as the server's CPU cap: 2048) */
        int ctx = 2048;
        if (j.m->cfg.max_pos > 0 && ctx > j.m->cfg.max_pos) ctx = j.m->cfg.max_pos;
        int mbt = o->max_batch_tokens ? o->max_batch_tokens : 2048;
        ragd_engine_opts eo = {.device = device_of(o), .max_batch_tokens = mbt, .max_seqs = 1, .max_ctx = ctx,
                               .kv_cache = true, .n_threads = o->threads};
        st = ragd_engine_create(j.m, &eo, &j.e, &err);
    }
    if (st) rc = fail(o, &err);
    else {
        ragd_job_opts jo = job_opts(o, "prompt", 1, 1);
        rc = ragd_job_run(&jo, gen_chunk, &j);
    }
    ragd_chat_template_free(j.tpl);
    ragd_engine_free(j.e);
    ragd_model_free(j.m);
    ragd_err_free(&err);
    return rc;
}

int ragd_cmd_generate(int argc, char **argv) {
    cli_opts o = defaults("generate");
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    if (o.input) return run_generate_job(&o);
    if (o.output || o.resume || o.progress) {
        fprintf(stderr, "ragd generate: --output, --resume and --progress are for --input jobs\n");
        return 2;
    }
    ragd_err err = {0};
    ragd_model *m = NULL;
    ragd_engine *e = NULL;
    ragd_tok_ids prompt = {0}, ids = {0};
    ragd_buf text = {0};
    rc = 0;
    ragd_status st = ragd_model_load(o.model, &m, &err);
    if (!st && !m->tok) st = ragd_err_set(&err, RAGD_EUNSUPPORTED, "%s: no tokenizer", o.model);
    if (!st) {
        ragd_chat_template *tpl = NULL;
        if (o.chat) st = ragd_chat_template_for_model(m, o.chat_template, &tpl, &err);
        if (!st) st = encode_prompt(&o, m, tpl, o.prompt, &prompt, &err);
        ragd_chat_template_free(tpl);
        if (st) ragd_err_prefix(&err, "--prompt");
    }
    if (!st) {
        size_t need = prompt.n + (size_t)o.max_tokens;
        if (m->cfg.max_pos > 0 && need > (size_t)m->cfg.max_pos)
            st = ragd_err_set(&err, RAGD_ERANGE, "prompt (%zu tokens) + --max-tokens %d exceed the model's context of %d",
                              prompt.n, o.max_tokens, m->cfg.max_pos);
    }
    if (!st) {
        int mbt = o.max_batch_tokens ? o.max_batch_tokens : 2048;
        ragd_engine_opts eo = {.device = device_of(&o), .max_batch_tokens = mbt, .max_seqs = 1,
                               .max_ctx = (int)(prompt.n + (size_t)o.max_tokens), .kv_cache = true,
                               .n_threads = o.threads};
        st = ragd_engine_create(m, &eo, &e, &err);
    }
    if (!st) {
        ragd_gen_opts go = gen_opts(&o);
        ragd_finish fin;
        st = ragd_generate_stream(e, prompt.ids, prompt.n, &go, o.json ? NULL : write_stdout, NULL, &ids, &text, &fin,
                                  &err);
    }
    if (st) {
        if (!o.json && text.len) fputc('\n', stdout);
        rc = fail(&o, &err);
    } else if (o.json) {
        ragd_buf j = {0};
        json_result(&j, &ids, &text);
        fwrite(j.data, 1, j.len, stdout);
        ragd_buf_free(&j);
    } else {
        fputc('\n', stdout);
    }
    fflush(stdout);
    ragd_tok_ids_free(&prompt);
    ragd_tok_ids_free(&ids);
    ragd_buf_free(&text);
    ragd_engine_free(e);
    ragd_model_free(m);
    ragd_err_free(&err);
    return rc;
}
