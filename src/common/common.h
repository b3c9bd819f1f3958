/* common.h — the one public header of ragd's common module.
 *
 * Two tiers of errors (docs/STYLE.md):
 *   - anything that input, files or resources can cause returns a ragd_status and fills a ragd_err
 *     with a message for the user (who, what was expected, what was found);
 *   - broken invariants abort through RAGD_ASSERT with the statement and file:line.
 *
 * Also here: a growable byte buffer (ragd_buf), whole-file reads and read-only mmaps, checked size
 * arithmetic, bf16/f16 conversion, monotonic time and leveled logging. Nothing here holds global
 * mutable state except the log level (set once at startup).
 */
#ifndef RAGD_COMMON_H
#define RAGD_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------- */
/* status codes and error messages */

typedef enum {
    RAGD_OK = 0,
    RAGD_EINVAL,       /* bad input from the user (request, CLI argument, JSON line)        → 400 */
    RAGD_ENOTFOUND,    /* file, model, token or route that does not exist                    → 404 */
    RAGD_EFORMAT,      /* a file is corrupt or not what it claims (header, tensor, json)     */
    RAGD_EUNSUPPORTED, /* a valid file that uses something ragd does not implement           */
    RAGD_ERANGE,       /* a value outside its allowed range (too long, too many, id ≥ vocab) → 400/413 */
    RAGD_ENOMEM,       /* allocation failed or a memory plan does not fit                    */
    RAGD_EIO,          /* read/write/mmap/network failure                                     */
    RAGD_EBUSY,        /* queue full: retry later                                             → 429 */
    RAGD_ETIMEOUT,     /* deadline passed                                                     → 504/408 */
    RAGD_ECANCELLED,   /* the client went away                                                */
    RAGD_EDEVICE,      /* device (CUDA) error: the model is no longer usable                  → 500/503 */
    RAGD_EINTERNAL,    /* a failure inside the engine that is not the caller's fault         → 500 */
    RAGD_EUNAVAILABLE, /* the model cannot serve now: loading, its device failed, GPU unhealthy → 503 */
} ragd_status;

/* An error: a status code and a heap-allocated message (NULL when none). Zero-initialize it
 * (`ragd_err err = {0};`); ragd_err_set replaces any previous message; ragd_err_free releases it. */
typedef struct ragd_err {
    ragd_status code;
    char *msg;
} ragd_err;

/* Sets err (if not NULL) to code and the formatted message; returns code, so callers can write
 * `return ragd_err_set(err, RAGD_EINVAL, "line %d: ...", n);`. */
ragd_status ragd_err_set(ragd_err *err, ragd_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes the existing message: "prefix: old message". Keeps the code. Returns err->code. */
ragd_status ragd_err_prefix(ragd_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ragd_err_free(ragd_err *err);
const char *ragd_err_msg(const ragd_err *err); /* never NULL */
const char *ragd_status_name(ragd_status s);   /* "EINVAL", ... */

/* Aborts with the failed condition, file:line and an optional message. For invariants only —
 * never for bytes that came from a file or the network. */
#define RAGD_ASSERT(cond)                                                                      \
    do {                                                                                       \
        if (!(cond)) ragd_die(__FILE__, __LINE__, "assertion failed: %s", #cond);             \
    } while (0)
#define RAGD_DIE(...) ragd_die(__FILE__, __LINE__, __VA_ARGS__)
_Noreturn void ragd_die(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Allocation that aborts on failure: only for small, bounded sizes that no input controls.
 * For input-sized allocations use plain malloc and return RAGD_ENOMEM. */
void *ragd_xmalloc(size_t n);
void *ragd_xcalloc(size_t n, size_t size);
void *ragd_xrealloc(void *p, size_t n);
char *ragd_xstrdup(const char *s);
char *ragd_xstrndup(const char *s, size_t n);

/* ---------------------------------------------------------------------------------------------- */
/* checked arithmetic: return false on overflow */

static inline bool ragd_add_ok(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }
static inline bool ragd_mul_ok(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }

/* ---------------------------------------------------------------------------------------------- */
/* growable byte buffer; always NUL-terminated after any append (data may hold other NULs) */

typedef struct ragd_buf {
    char *data;
    size_t len, cap;
} ragd_buf;

void ragd_buf_free(ragd_buf *b);
void ragd_buf_reset(ragd_buf *b); /* len = 0, keeps capacity */
void ragd_buf_reserve(ragd_buf *b, size_t extra);
void ragd_buf_append(ragd_buf *b, const void *p, size_t n);
void ragd_buf_puts(ragd_buf *b, const char *s);
void ragd_buf_putc(ragd_buf *b, char c);
void ragd_buf_printf(ragd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* JSON string literal with quotes; the input must be valid UTF-8 (escapes control chars, " and \). */
void ragd_buf_json_str(ragd_buf *b, const char *s, size_t n);
/* Shortest decimal that round-trips a float32 ("%.9g" trimmed); NaN/Inf are a caller bug. */
void ragd_buf_json_f32(ragd_buf *b, float v);
/* The float as JSON text (out: ≥ 32 bytes; returns the length, no NUL): the shortest of %.6g..%.9g
 * that parses back to v, as ragd_fmt_f32_reference computes it with snprintf/strtof, but fast. */
int ragd_fmt_f32(char *out, float v);
int ragd_fmt_f32_reference(char *out, float v);
/* The fast path alone (tests): the length, or 0 where it leaves the float to the reference. */
int ragd_fmt_f32_fast(char *out, float v);
void ragd_buf_json_i64(ragd_buf *b, int64_t v);

/* ---------------------------------------------------------------------------------------------- */
/* files */

/* Reads a whole file into a NUL-terminated heap buffer. */
ragd_status ragd_file_read(const char *path, char **out, size_t *out_len, ragd_err *err);
bool ragd_file_exists(const char *path);
bool ragd_dir_exists(const char *path);
/* "dir/name" in a new heap string. */
char *ragd_path_join(const char *dir, const char *name);

/* A read-only private mapping of a whole file. */
typedef struct ragd_mmap {
    const uint8_t *data;
    size_t size;
} ragd_mmap;
ragd_status ragd_mmap_open(const char *path, ragd_mmap *out, ragd_err *err);
void ragd_mmap_close(ragd_mmap *m);

/* ---------------------------------------------------------------------------------------------- */
/* UTF-8 */

/* True if s[0..n) is valid UTF-8 (no overlongs, no surrogates, ≤ U+10FFFF). On false, *bad_at
 * (if not NULL) gets the offset of the first invalid byte. */
bool ragd_utf8_valid(const char *s, size_t n, size_t *bad_at);

/* ---------------------------------------------------------------------------------------------- */
/* half precision */

static inline float ragd_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* round to nearest even, NaN preserved */
static inline uint16_t ragd_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
float ragd_f16_to_f32(uint16_t h);
uint16_t ragd_f32_to_f16(float f);

/* ---------------------------------------------------------------------------------------------- */
/* time and logging */

double ragd_now_s(void);     /* monotonic seconds */
uint64_t ragd_now_ns(void);  /* monotonic nanoseconds */

typedef enum { RAGD_LOG_DEBUG = 0, RAGD_LOG_INFO, RAGD_LOG_WARN, RAGD_LOG_ERROR } ragd_log_level;
void ragd_log_set_level(ragd_log_level lvl);
/* true: each line a JSON object {"ts", "level", "msg"} (invalid UTF-8 in msg becomes U+FFFD) */
void ragd_log_set_json(bool json);
/* One line to stderr: "2026-11-22T10:00:00.123Z INFO  message". Thread-safe (one write per line). */
void ragd_log(ragd_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define RAGD_INFO(...) ragd_log(RAGD_LOG_INFO, __VA_ARGS__)
#define RAGD_WARN(...) ragd_log(RAGD_LOG_WARN, __VA_ARGS__)
#define RAGD_ERROR(...) ragd_log(RAGD_LOG_ERROR, __VA_ARGS__)
#define RAGD_DEBUG(...) ragd_log(RAGD_LOG_DEBUG, __VA_ARGS__)

/* ---------------------------------------------------------------------------------------------- */
/* profiler ranges: NVTX (Nsight Systems shows the phases) when built with CUDA, no-ops otherwise.
 * Pushes and pops nest per thread. */
void ragd_trace_push(const char *name);
void ragd_trace_pop(void);

#endif
