/* model_files.c — whether two model paths hold the same model: the same directory or file (realpath), or
 * the same regular files — names, sizes and sha256 of each. The server uses it so that roles given
 * identical weights in different folders share one engine and one copy of the weights (issue 18).
 * Cost: nothing unless the names and sizes all match; then one sha256 pass over both copies (~1.5 GB/s). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/model.h"

typedef struct mf_entry {
    char *name;
    uint64_t size;
} mf_entry;

static int entry_cmp(const void *a, const void *b) {
    return strcmp(((const mf_entry *)a)->name, ((const mf_entry *)b)->name);
}

static void entries_free(mf_entry *e, size_t n) {
    for (size_t i = 0; i < n; i++) free(e[i].name);
    free(e);
}

/* The regular files directly in dir (dot files skipped), sorted by name. */
static ragd_status list_files(const char *dir, mf_entry **out, size_t *n_out, ragd_err *err) {
    DIR *d = opendir(dir);
    if (!d) return ragd_err_set(err, RAGD_EIO, "%s: %s", dir, strerror(errno));
    mf_entry *e = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    ragd_status st = RAGD_OK;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path) continue;
        struct stat sb;
        if (stat(path, &sb) || !S_ISREG(sb.st_mode)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            mf_entry *ne = realloc(e, cap * sizeof *e);
            if (!ne) { st = ragd_err_set(err, RAGD_ENOMEM, "listing %s", dir); break; }
            e = ne;
        }
        e[n].name = strdup(de->d_name);
        if (!e[n].name) { st = ragd_err_set(err, RAGD_ENOMEM, "listing %s", dir); break; }
        e[n++].size = (uint64_t)sb.st_size;
    }
    closedir(d);
    if (st) { entries_free(e, n); return st; }
    if (n) qsort(e, n, sizeof *e, entry_cmp);
    *out = e, *n_out = n;
    return RAGD_OK;
}

static ragd_status file_sha256(const char *path, unsigned char md[32], ragd_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ragd_err_set(err, RAGD_EIO, "%s: %s", path, strerror(errno));
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 20);
    ragd_status st = RAGD_OK;
    if (!c || !buf || !EVP_DigestInit_ex(c, EVP_sha256(), NULL)) {
        st = ragd_err_set(err, RAGD_EINTERNAL, "sha256 of %s: cannot set up OpenSSL", path);
    } else {
        size_t k;
        while ((k = fread(buf, 1, 1 << 20, f)) > 0) EVP_DigestUpdate(c, buf, k);
        if (ferror(f)) st = ragd_err_set(err, RAGD_EIO, "%s: read error", path);
        unsigned int len = 0;
        EVP_DigestFinal_ex(c, md, &len);
    }
    free(buf);
    EVP_MD_CTX_free(c);
    fclose(f);
    return st;
}

static ragd_status same_content(const char *pa, const char *pb, bool *same, ragd_err *err) {
    unsigned char a[32], b[32];
    ragd_status st = file_sha256(pa, a, err);
    if (!st) st = file_sha256(pb, b, err);
    if (!st) *same = !memcmp(a, b, 32);
    return st;
}

ragd_status ragd_model_same_files(const char *a, const char *b, bool *same, uint64_t *bytes, ragd_err *err) {
    *same = false;
    if (bytes) *bytes = 0;
    char ra[PATH_MAX], rb[PATH_MAX];
    if (!realpath(a, ra)) return ragd_err_set(err, RAGD_EIO, "%s: %s", a, strerror(errno));
    if (!realpath(b, rb)) return ragd_err_set(err, RAGD_EIO, "%s: %s", b, strerror(errno));
    struct stat sa, sb;
    if (stat(ra, &sa) || stat(rb, &sb)) return ragd_err_set(err, RAGD_EIO, "%s or %s: %s", a, b, strerror(errno));
    if (!strcmp(ra, rb)) {
        *same = true;
        if (bytes) *bytes = S_ISREG(sa.st_mode) ? (uint64_t)sa.st_size : 0;
        return RAGD_OK;
    }
    if (S_ISREG(sa.st_mode) && S_ISREG(sb.st_mode)) { /* single-file models (GGUF) */
        if (sa.st_size != sb.st_size) return RAGD_OK;
        ragd_status st = same_content(ra, rb, same, err);
        if (!st && *same && bytes) *bytes = (uint64_t)sa.st_size;
        return st;
    }
    if (!S_ISDIR(sa.st_mode) || !S_ISDIR(sb.st_mode)) return RAGD_OK;
    mf_entry *ea = NULL, *eb = NULL;
    size_t na = 0, nb = 0;
    ragd_status st = list_files(ra, &ea, &na, err);
    if (!st) st = list_files(rb, &eb, &nb, err);
    bool eq = !st && na == nb && na > 0;
    uint64_t total = 0;
    for (size_t i = 0; eq && i < na; i++) {
        eq = !strcmp(ea[i].name, eb[i].name) && ea[i].size == eb[i].size;
        total += ea[i].size;
    }
    for (size_t i = 0; eq && !st && i < na; i++) { /* names and sizes match: compare the contents */
        char pa[2 * PATH_MAX], pb[2 * PATH_MAX];
        if (snprintf(pa, sizeof pa, "%s/%s", ra, ea[i].name) >= (int)sizeof pa ||
            snprintf(pb, sizeof pb, "%s/%s", rb, eb[i].name) >= (int)sizeof pb) {
            eq = false;
            break;
        }
        st = same_content(pa, pb, &eq, err);
    }
    entries_free(ea, na);
    entries_free(eb, nb);
    if (st) return st;
    *same = eq;
    if (eq && bytes) *bytes = total;
    return RAGD_OK;
}
