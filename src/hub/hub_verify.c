/* hub_verify.c — the digests `ragd pull` checks a downloaded file against: sha256 (what the hub lists
 * for LFS files and sends as X-Linked-Etag) and the git blob sha1 (sha1 of "blob <size>\0" + content:
 * the blobId / ETag of files stored in git itself). One pass over the file computes both. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "hub/hub_internal.h"

static void to_hex(const unsigned char *md, unsigned n, char *out) {
    for (unsigned i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

ragd_status hub_file_digests(const char *path, char sha256_hex[65], char git_sha1_hex[41], uint64_t *size,
                             ragd_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ragd_err_set(err, RAGD_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb)) {
        fclose(f);
        return ragd_err_set(err, RAGD_EIO, "%s: cannot stat: %s", path, strerror(errno));
    }
    EVP_MD_CTX *a = EVP_MD_CTX_new(), *b = EVP_MD_CTX_new();
    if (!a || !b || !EVP_DigestInit_ex(a, EVP_sha256(), NULL) || !EVP_DigestInit_ex(b, EVP_sha1(), NULL)) {
        EVP_MD_CTX_free(a);
        EVP_MD_CTX_free(b);
        fclose(f);
        return ragd_err_set(err, RAGD_EINTERNAL, "OpenSSL: cannot set up sha256/sha1");
    }
    char hdr[64];
    int hn = snprintf(hdr, sizeof hdr, "blob %llu", (unsigned long long)sb.st_size);
    EVP_DigestUpdate(b, hdr, (size_t)hn + 1); /* with its NUL */
    size_t cap = 1 << 20, n;
    unsigned char *buf = ragd_xmalloc(cap);
    uint64_t total = 0;
    while ((n = fread(buf, 1, cap, f)) > 0) {
        EVP_DigestUpdate(a, buf, n);
        EVP_DigestUpdate(b, buf, n);
        total += n;
    }
    bool bad = ferror(f) || total != (uint64_t)sb.st_size;
    fclose(f);
    free(buf);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(a, md, &len);
    to_hex(md, len, sha256_hex);
    EVP_DigestFinal_ex(b, md, &len);
    to_hex(md, len, git_sha1_hex);
    EVP_MD_CTX_free(a);
    EVP_MD_CTX_free(b);
    if (bad) return ragd_err_set(err, RAGD_EIO, "%s: read error (or the file changed while being read)", path);
    *size = total;
    return RAGD_OK;
}
