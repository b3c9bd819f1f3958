/* file.c — whole-file reads, read-only mmaps, path helpers. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

ragd_status ragd_file_read(const char *path, char **out, size_t *out_len, ragd_err *err) {
    *out = NULL;
    if (out_len) *out_len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ragd_err_set(err, errno == ENOENT ? RAGD_ENOTFOUND : RAGD_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ragd_err_set(err, RAGD_EIO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    char *data = malloc(size + 1);
    if (!data) {
        close(fd);
        return ragd_err_set(err, RAGD_ENOMEM, "%s: cannot allocate %zu bytes", path, size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            free(data);
            close(fd);
            return ragd_err_set(err, RAGD_EIO, "%s: read failed after %zu of %zu bytes", path, got, size);
        }
        got += (size_t)r;
    }
    close(fd);
    data[size] = 0;
    *out = data;
    if (out_len) *out_len = size;
    return RAGD_OK;
}

bool ragd_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool ragd_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *ragd_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    bool slash = a > 0 && dir[a - 1] != '/';
    char *p = ragd_xmalloc(a + slash + b + 1);
    memcpy(p, dir, a);
    if (slash) p[a] = '/';
    memcpy(p + a + slash, name, b + 1);
    return p;
}

ragd_status ragd_mmap_open(const char *path, ragd_mmap *out, ragd_err *err) {
    out->data = NULL;
    out->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ragd_err_set(err, errno == ENOENT ? RAGD_ENOTFOUND : RAGD_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ragd_err_set(err, RAGD_EIO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        close(fd);
        out->data = (const uint8_t *)"";
        return RAGD_OK;
    }
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return ragd_err_set(err, RAGD_EIO, "%s: mmap failed: %s", path, strerror(errno));
    out->data = p;
    out->size = size;
    return RAGD_OK;
}

void ragd_mmap_close(ragd_mmap *m) {
    if (!m) return;
    if (m->size) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}
