/* batch_job.h — INTERNAL to src/cli: the JSON-lines job loop shared by `ragd embed|rerank|generate`.
 *
 * A job reads JSON lines {"<field>": "..."} from --input FILE (or stdin), hands them to the command in
 * chunks and writes the command's output lines, in input order, to --output FILE (or stdout):
 *   - with --output FILE the lines go to FILE.part, flushed after every chunk, and FILE.part is renamed to
 *     FILE only when every line succeeded; a failed run leaves nothing at FILE (an older FILE is untouched)
 *     and keeps FILE.part for --resume.
 *   - --resume keeps the complete lines of FILE.part (a torn last line is cut off), skips as many non-blank
 *     input lines without parsing or computing them, and appends the rest. The commands' results depend on
 *     the line alone (batch-invariant engines, per-line seeds), so the file is byte-identical to one
 *     uninterrupted run on the same input. Without FILE.part it starts from the beginning.
 *   - the first failure stops the job with "ragd CMD: line N: why" and exit 1. With --output the lines
 *     before it in its chunk are still computed and written to FILE.part (so --resume starts at the failing
 *     line); on stdout nothing of the failing chunk is written (earlier chunks are). Blank lines are skipped
 *     (they produce no output line).
 *   - progress on stderr (a terminal, or any stderr with --progress): done/total, rate and ETA when the
 *     input is a regular file (counted up front), done and rate otherwise.
 * Exit codes: 0 ok, 1 failure while running, 2 bad usage (resume without --output).
 */
#ifndef RAGD_CLI_BATCH_JOB_H
#define RAGD_CLI_BATCH_JOB_H

#include <stdbool.h>
#include <stddef.h>

#include "common/common.h"

typedef struct {
    const char *cmd;          /* "embed", … (messages) */
    const char *input;        /* NULL or "-": stdin */
    const char *output;       /* NULL or "-": stdout */
    bool progress, resume;    /* --progress, --resume */
    const char *field;        /* the string field of each line: "text" or "prompt" */
    int max_lines;            /* lines per chunk (≥ 1) */
    size_t max_bytes;         /* text bytes per chunk (a chunk holds at least one line) */
} ragd_job_opts;

/* Processes n lines (texts[i] of lens[i] bytes, NUL-terminated, no NUL inside): appends exactly n lines
 * (each ending in '\n') to out, or fails with *failed = the index of the failing line (-1: the chunk). */
typedef ragd_status (*ragd_job_fn)(void *ud, char **texts, const size_t *lens, int n, ragd_buf *out, int *failed,
                                   ragd_err *err);

/* Runs the job; returns the exit code (messages already on stderr). */
int ragd_job_run(const ragd_job_opts *o, ragd_job_fn fn, void *ud);

#endif
