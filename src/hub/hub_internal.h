/* hub_internal.h — INTERNAL to src/hub: the HTTP client (hub_http.c), the repository listing
 * (hub_repo.c) and the verification helpers (hub_verify.c) that hub_pull.c puts together. */
#ifndef RAGD_HUB_INTERNAL_H
#define RAGD_HUB_INTERNAL_H

#include <stdio.h>

#include "hub/hub.h"

/* ---- HTTP (hub_http.c) ---- */

typedef struct hub_client {
    void *curl;           /* CURL*, reused across requests (keeps connections alive) */
    char *endpoint;       /* without a trailing '/' */
    char *auth_header;    /* "Authorization: Bearer ..." or NULL */
    bool has_token;
    bool progress;        /* draw a progress bar on stderr while downloading */
} hub_client;

/* What came back from one request (the redirect chain included). */
typedef struct hub_resp {
    long status;          /* the final HTTP status; 0 when no response arrived */
    int curl_code;        /* CURLcode of the transfer (0 = OK) */
    char curl_msg[256];   /* curl's message for curl_code */
    ragd_buf body;        /* in-memory body (listing) or the first 4 KiB of an error body */
    char *error_code;     /* X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo) */
    char *error_message;  /* X-Error-Message */
    char *linked_etag;    /* X-Linked-Etag of the hub's response (LFS sha256), quotes removed */
    char *linked_size;    /* X-Linked-Size */
    char *etag;           /* ETag of the hub's (first) response, quotes and W/ removed */
    char *repo_commit;    /* X-Repo-Commit */
    uint64_t written;     /* download: bytes appended to the file by this request */
    bool restarted;       /* download: asked for a range, got the whole file (the file was truncated) */
    bool bad_range;       /* download: a 206 whose Content-Range does not start where asked */
    bool too_big;         /* in-memory body exceeded its cap */
} hub_resp;

ragd_status hub_client_init(hub_client *c, const char *endpoint, const char *token, bool progress, ragd_err *err);
void hub_client_free(hub_client *c);
void hub_resp_free(hub_resp *r);

/* GET url into r->body (at most cap bytes). Returns RAGD_OK when an HTTP response arrived (whatever its
 * status: check r->status), RAGD_EIO on a transport failure (r->curl_msg says which). */
ragd_status hub_get(hub_client *c, const char *url, size_t cap, hub_resp *r);

/* GET url appending to f (open for writing at offset `offset`, the bytes already there): asks for
 * "Range: bytes=offset-" when offset > 0; a 200 answer truncates f and starts over (r->restarted).
 * total is the expected full size for the progress bar (0 unknown), label the file name shown. Return
 * value as hub_get; r->written counts the bytes written, also after a failure mid-body. */
ragd_status hub_download(hub_client *c, const char *url, FILE *f, uint64_t offset, uint64_t total,
                         const char *label, hub_resp *r);

/* "%XX"-escapes s except unreserved characters and, when keep_slash, '/'. Caller frees. */
char *hub_escape(const char *s, bool keep_slash);

/* ---- the repository listing (hub_repo.c) ---- */

typedef struct hub_file {
    char *path;           /* rfilename, checked: relative, no "..", no empty or "." component */
    int64_t size;         /* -1 when unknown */
    char *sha256;         /* LFS files: lowercase hex sha256; NULL otherwise */
    char *git_sha1;       /* blobId: git blob sha1 (of the pointer file for LFS files); NULL when absent */
    bool lfs;
} hub_file;

typedef struct hub_repo {
    char *commit;         /* "sha" of the listing: pins every download; NULL when absent */
    hub_file *files;      /* [n_files] */
    size_t n_files;
} hub_repo;

/* Lists repo@rev. Errors: 401/403/404 and network failures with messages naming repo and revision. */
ragd_status hub_repo_fetch(hub_client *c, const char *repo, const char *rev, hub_repo *out, ragd_err *err);
void hub_repo_free(hub_repo *r);
/* Parses a listing body (exposed for tests). */
ragd_status hub_repo_parse(const char *json, size_t len, const char *what, hub_repo *out, ragd_err *err);

/* Turns a non-2xx response (or a transport failure when st == RAGD_EIO) into a message: what is the
 * repository/revision/file being fetched, for the reader. */
ragd_status hub_http_error(const hub_client *c, const hub_resp *r, ragd_status st, const char *what, ragd_err *err);

/* ---- verification (hub_verify.c) ---- */

/* sha256 (hex) and git blob sha1 (hex: sha1 of "blob <size>\0" + content) of a file. */
ragd_status hub_file_digests(const char *path, char sha256_hex[65], char git_sha1_hex[41], uint64_t *size,
                             ragd_err *err);

#endif
