/* batch_job.c — the JSON-lines job loop of `ragd embed|rerank|generate`: input, chunks, FILE.part and the
 * rename, --resume, progress. The contract is in batch_job.h. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/batch_job.h"

static bool is_std(const char *path) { return !path || !strcmp(path, "-"); }

static bool blank_line(const char *line, size_t len) {
    for (size_t k = 0; k < len; k++)
        if (line[k] != ' ' && line[k] != '\t') return false;
    return true;
}

/* strips the line end; returns the length */
static size_t chomp(char *line, ssize_t len) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    line[len] = 0;
    return (size_t)len;
}

/* Parses one line into a heap copy of its string field. */
static ragd_status parse_line(const char *line, size_t len, long lineno, const char *field, char **text,
                              size_t *text_len, ragd_err *err) {
    json_error_t je;
    json_t *j = json_loadb(line, len, 0, &je);
    if (!j) return ragd_err_set(err, RAGD_EINVAL, "line %ld: not valid JSON (%s at column %d)", lineno, je.text, je.column);
    json_t *t = json_is_object(j) ? json_object_get(j, field) : NULL;
    if (!t || !json_is_string(t)) {
        json_decref(j);
        return ragd_err_set(err, RAGD_EINVAL, "line %ld: want an object {\"%s\": \"...\"} with a string \"%s\"", lineno,
                            field, field);
    }
    *text_len = json_string_length(t);
    *text = ragd_xstrndup(json_string_value(t), *text_len);
    json_decref(j);
    if (memchr(*text, '\0', *text_len)) {
        free(*text);
        return ragd_err_set(err, RAGD_EINVAL, "line %ld: the text contains a NUL character", lineno);
    }
    return RAGD_OK;
}

/* ---- progress ---- */

typedef struct {
    bool on, tty;
    long total;      /* non-blank input lines, -1 unknown */
    long skipped;    /* kept from FILE.part by --resume */
    double t0, last; /* start of this run, last print */
} progress;

static void fmt_secs(double s, char *out, size_t cap) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(out, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(out, cap, "%lds", t);
}

static void progress_print(progress *p, const char *cmd, long done, bool final) {
    double now = ragd_now_s();
    if (!p->on || (!final && now - p->last < (p->tty ? 0.1 : 1.0))) return;
    p->last = now;
    double dt = now - p->t0, rate = dt > 0 ? (double)(done - p->skipped) / dt : 0.0;
    char line[256];
    int k;
    if (p->total >= 0) {
        char eta[32] = "-";
        if (rate > 0) fmt_secs((double)(p->total - done) / rate, eta, sizeof eta);
        k = snprintf(line, sizeof line, "ragd %s: %ld/%ld lines (%.0f%%), %.1f/s, ETA %s", cmd, done, p->total,
                     p->total ? 100.0 * (double)done / (double)p->total : 100.0, rate, final ? "0s" : eta);
    } else {
        k = snprintf(line, sizeof line, "ragd %s: %ld lines, %.1f/s", cmd, done, rate);
    }
    if (k < 0) return;
    if (p->tty) fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
    else fprintf(stderr, "%s\n", line);
}

/* non-blank lines of a regular file, or -1 (a pipe, or unreadable: the job reports that itself) */
static long count_lines(FILE *in) {
    struct stat sb;
    if (fstat(fileno(in), &sb) || !S_ISREG(sb.st_mode)) return -1;
    long pos = ftell(in), n = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) >= 0)
        if (!blank_line(line, chomp(line, len))) n++;
    free(line);
    clearerr(in);
    if (pos < 0 || fseek(in, pos, SEEK_SET)) return -1;
    return n;
}

/* ---- FILE.part ---- */

/* Opens FILE.part for the job: new (truncated), or with --resume its complete lines kept (*kept). */
static ragd_status open_part(const char *part, bool resume, long *kept, FILE **out, ragd_err *err) {
    *kept = 0;
    if (resume) {
        FILE *f = fopen(part, "rb");
        if (f) {
            long n = 0, good = 0, pos = 0;
            int c;
            while ((c = getc(f)) != EOF) {
                pos++;
                if (c == '\n') n++, good = pos;
            }
            bool bad = ferror(f);
            fclose(f);
            if (bad) return ragd_err_set(err, RAGD_EIO, "--resume: reading %s: %s", part, strerror(errno));
            if (good != pos && truncate(part, good))
                return ragd_err_set(err, RAGD_EIO, "--resume: cutting the torn last line of %s: %s", part, strerror(errno));
            *kept = n;
            *out = fopen(part, "ab");
            if (!*out) return ragd_err_set(err, RAGD_EIO, "--output: cannot open %s: %s", part, strerror(errno));
            return RAGD_OK;
        }
        if (errno != ENOENT) return ragd_err_set(err, RAGD_EIO, "--resume: cannot open %s: %s", part, strerror(errno));
    }
    *out = fopen(part, "wb");
    if (!*out) return ragd_err_set(err, RAGD_EIO, "--output: cannot create %s: %s", part, strerror(errno));
    return RAGD_OK;
}

/* ---- the loop ---- */

static int fail(const ragd_job_opts *o, const ragd_err *err, const char *part, long written) {
    fprintf(stderr, "ragd %s: %s\n", o->cmd, ragd_err_msg(err));
    if (part)
        fprintf(stderr, "ragd %s: %ld results kept in %s; nothing written to %s (--resume continues after them)\n",
                o->cmd, written, part, o->output);
    return 1;
}

int ragd_job_run(const ragd_job_opts *o, ragd_job_fn fn, void *ud) {
    if (o->resume && is_std(o->output)) {
        fprintf(stderr, "ragd %s: --resume needs --output FILE (it continues FILE.part)\n", o->cmd);
        return 2;
    }
    ragd_err err = {0};
    FILE *in = stdin, *out = stdout;
    char *part = NULL;
    int rc = 0;
    long skip = 0, written = 0, lineno = 0;
    if (!is_std(o->input) && !(in = fopen(o->input, "rb"))) {
        ragd_err_set(&err, RAGD_EIO, "--input: cannot open %s: %s", o->input, strerror(errno));
        rc = fail(o, &err, NULL, 0);
        ragd_err_free(&err);
        return rc;
    }
    if (!is_std(o->output)) {
        size_t n = strlen(o->output) + 6;
        part = ragd_xmalloc(n);
        snprintf(part, n, "%s.part", o->output);
        if (open_part(part, o->resume, &skip, &out, &err)) {
            rc = fail(o, &err, NULL, 0);
            goto done;
        }
        written = skip;
    }
    progress pg = {.on = o->progress || isatty(2), .tty = isatty(2), .total = -1, .skipped = skip,
                   .t0 = ragd_now_s()};
    if (pg.on) pg.total = count_lines(in);
    if (pg.total >= 0 && skip > pg.total) {
        ragd_err_set(&err, RAGD_EINVAL, "--resume: %s has %ld lines but the input only %ld (another input?)", part,
                     skip, pg.total);
        rc = fail(o, &err, NULL, 0);
        goto done;
    }
    int cap_lines = o->max_lines > 0 ? o->max_lines : 1;
    char **texts = ragd_xcalloc((size_t)cap_lines, sizeof *texts);
    size_t *lens = ragd_xcalloc((size_t)cap_lines, sizeof *lens);
    long *linenos = ragd_xcalloc((size_t)cap_lines, sizeof *linenos);
    ragd_buf ob = {0};
    char *line = NULL;
    size_t lcap = 0;
    long to_skip = skip;
    bool eof = false;
    while (!eof && !rc) {
        int n = 0;
        size_t bytes = 0;
        ragd_status parse_st = RAGD_OK;
        while (n < cap_lines && (n == 0 || bytes < o->max_bytes)) {
            ssize_t len = getline(&line, &lcap, in);
            if (len < 0) {
                if (ferror(in))
                    parse_st = ragd_err_set(&err, RAGD_EIO, "reading %s after line %ld: %s",
                                            is_std(o->input) ? "stdin" : o->input, lineno, strerror(errno));
                eof = true;
                break;
            }
            lineno++;
            size_t l = chomp(line, len);
            if (blank_line(line, l)) continue; /* empty lines are skipped */
            if (to_skip > 0) {                 /* done by the run that --resume continues */
                to_skip--;
                continue;
            }
            if ((parse_st = parse_line(line, l, lineno, o->field, &texts[n], &lens[n], &err))) break;
            linenos[n] = lineno;
            bytes += lens[n];
            n++;
        }
        if (to_skip > 0 && eof && !parse_st) {
            parse_st = ragd_err_set(&err, RAGD_EINVAL, "--resume: %s has %ld lines but the input only %ld (another input?)",
                                    part, skip, skip - to_skip);
        }
        /* with FILE.part the lines before a bad one are still computed (--resume then starts at the bad one);
         * on stdout nothing of a failing chunk is written, as before */
        if (parse_st && !part) {
            for (int k = 0; k < n; k++) free(texts[k]);
            n = 0;
        }
        if (n > 0) {
            ragd_err cerr = {0};
            int failed = -1;
            ragd_buf_reset(&ob);
            ragd_status st = fn(ud, texts, lens, n, &ob, &failed, &cerr);
            if (st && failed > 0 && part) { /* the lines before the failing one, again (batch-invariant: same bytes) */
                ragd_err e2 = {0};
                int f2 = -1;
                ragd_buf_reset(&ob);
                if (fn(ud, texts, lens, failed, &ob, &f2, &e2) || fwrite(ob.data, 1, ob.len, out) != ob.len ||
                    fflush(out))
                    ob.len = 0;
                else written += failed;
                ragd_err_free(&e2);
            }
            if (st) {
                if (failed >= 0) ragd_err_prefix(&cerr, "line %ld", linenos[failed]);
                else ragd_err_prefix(&cerr, "lines %ld..%ld", linenos[0], linenos[n - 1]);
                if (!parse_st) {
                    ragd_err_free(&err);
                    err = cerr;
                    parse_st = st;
                } else {
                    ragd_err_free(&cerr);
                }
            } else if (fwrite(ob.data, 1, ob.len, out) != ob.len || fflush(out)) {
                ragd_err_free(&err);
                parse_st = ragd_err_set(&err, RAGD_EIO, "writing %s: %s", part ? part : "stdout", strerror(errno));
            } else {
                written += n;
                progress_print(&pg, o->cmd, written, false);
            }
        }
        for (int k = 0; k < n; k++) free(texts[k]);
        if (parse_st) rc = fail(o, &err, part, written);
    }
    if (!rc) progress_print(&pg, o->cmd, written, true);
    else if (pg.on && pg.tty && written) fputc('\n', stderr);
    free(line);
    free(texts);
    free(lens);
    free(linenos);
    ragd_buf_free(&ob);
    if (part) {
        /* durable before it gets its name: a crash after the rename never leaves a short FILE */
        bool ok = !fflush(out) && !fsync(fileno(out));
        ok = !fclose(out) && ok;
        out = stdout;
        if (!rc && !ok) {
            ragd_err_set(&err, RAGD_EIO, "writing %s: %s", part, strerror(errno));
            rc = fail(o, &err, part, written);
        }
        if (!rc && rename(part, o->output)) {
            ragd_err_set(&err, RAGD_EIO, "renaming %s to %s: %s", part, o->output, strerror(errno));
            rc = fail(o, &err, part, written);
        }
    }
done:
    if (out != stdout) fclose(out);
    if (in != stdin) fclose(in);
    free(part);
    ragd_err_free(&err);
    return rc;
}
