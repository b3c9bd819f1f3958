/* err.c — ragd_err messages, fatal aborts and aborting allocators. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>

static char *vformat(const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) n = 0;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

ragd_status ragd_err_set(ragd_err *err, ragd_status code, const char *fmt, ...) {
    if (!err) return code;
    va_list ap;
    va_start(ap, fmt);
    char *m = vformat(fmt, ap);
    va_end(ap);
    free(err->msg);
    err->msg = m;
    err->code = code;
    return code;
}

ragd_status ragd_err_prefix(ragd_err *err, const char *fmt, ...) {
    if (!err) return RAGD_EINTERNAL;
    va_list ap;
    va_start(ap, fmt);
    char *p = vformat(fmt, ap);
    va_end(ap);
    if (!p) return err->code;
    const char *old = err->msg ? err->msg : "";
    size_t n = strlen(p) + 2 + strlen(old) + 1;
    char *m = malloc(n);
    if (m) {
        snprintf(m, n, "%s: %s", p, old);
        free(err->msg);
        err->msg = m;
    }
    free(p);
    return err->code;
}

void ragd_err_free(ragd_err *err) {
    if (!err) return;
    free(err->msg);
    err->msg = NULL;
    err->code = RAGD_OK;
}

const char *ragd_err_msg(const ragd_err *err) {
    return (err && err->msg) ? err->msg : "(no message)";
}

const char *ragd_status_name(ragd_status s) {
    switch (s) {
    case RAGD_OK: return "OK";
    case RAGD_EINVAL: return "EINVAL";
    case RAGD_ENOTFOUND: return "ENOTFOUND";
    case RAGD_EFORMAT: return "EFORMAT";
    case RAGD_EUNSUPPORTED: return "EUNSUPPORTED";
    case RAGD_ERANGE: return "ERANGE";
    case RAGD_ENOMEM: return "ENOMEM";
    case RAGD_EIO: return "EIO";
    case RAGD_EBUSY: return "EBUSY";
    case RAGD_ETIMEOUT: return "ETIMEOUT";
    case RAGD_ECANCELLED: return "ECANCELLED";
    case RAGD_EDEVICE: return "EDEVICE";
    case RAGD_EINTERNAL: return "EINTERNAL";
    case RAGD_EUNAVAILABLE: return "EUNAVAILABLE";
    }
    return "E?";
}

_Noreturn void ragd_die(const char *file, int line, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "ragd: fatal: %s (%s:%d)\n", msg, file, line);
    fflush(stderr);
    abort();
}

void *ragd_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) RAGD_DIE("out of memory allocating %zu bytes", n);
    return p;
}
void *ragd_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) RAGD_DIE("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}
void *ragd_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) RAGD_DIE("out of memory reallocating %zu bytes", n);
    return q;
}
char *ragd_xstrdup(const char *s) { return ragd_xstrndup(s, strlen(s)); }
char *ragd_xstrndup(const char *s, size_t n) {
    char *p = ragd_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}
