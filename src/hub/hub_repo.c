/* hub_repo.c — the repository listing (GET /api/models/{repo}/revision/{rev}?blobs=true) and the
 * translation of HTTP failures into messages a user can act on.
 *
 * Every file name in the listing comes from the network: it must be a relative path without "..", "."
 * or empty components, backslashes or control characters, or the listing is refused (a hostile server
 * must not write outside the destination folder).
 */
#include <jansson.h>
#include <stdlib.h>

#include "hub/hub_internal.h"

#define LISTING_CAP (64u << 20) /* a listing larger than 64 MiB is refused */

ragd_status hub_http_error(const hub_client *c, const hub_resp *r, ragd_status st, const char *what, ragd_err *err) {
    if (st == RAGD_EIO && r->status == 0)
        return ragd_err_set(err, RAGD_EIO, "%s: network error talking to %s: %s", what, c->endpoint, r->curl_msg);
    if (st == RAGD_EIO)
        return ragd_err_set(err, RAGD_EIO, "%s: transfer failed (HTTP %ld): %s", what, r->status, r->curl_msg);
    const char *code = r->error_code ? r->error_code : "";
    const char *server = r->error_message ? r->error_message : "";
    switch (r->status) {
    case 401:
        if (c->has_token)
            return ragd_err_set(err, RAGD_EINVAL,
                                "%s: 401 Unauthorized: HF_TOKEN was rejected, or the repository does not exist or is not "
                                "visible to that token%s%s",
                                what, server[0] ? ": " : "", server);
        return ragd_err_set(err, RAGD_EINVAL,
                            "%s: 401 Unauthorized: the repository does not exist, or is private or gated; if you have "
                            "access, set HF_TOKEN to a token with read access (https://huggingface.co/settings/tokens)%s%s",
                            what, server[0] ? ": " : "", server);
    case 403:
        if (!strcmp(code, "GatedRepo"))
            return ragd_err_set(err, RAGD_EINVAL,
                                "%s: 403 Forbidden: the repository is gated: accept its terms on its page while logged in, "
                                "then set HF_TOKEN to a token of that account%s%s",
                                what, server[0] ? ": " : "", server);
        return ragd_err_set(err, RAGD_EINVAL,
                            "%s: 403 Forbidden: %s lacks access to this repository (check its permissions)%s%s", what,
                            c->has_token ? "HF_TOKEN" : "an anonymous request (set HF_TOKEN)", server[0] ? ": " : "",
                            server);
    case 404:
        if (!strcmp(code, "RepoNotFound"))
            return ragd_err_set(err, RAGD_ENOTFOUND, "%s: 404: repository not found on %s", what, c->endpoint);
        if (!strcmp(code, "RevisionNotFound"))
            return ragd_err_set(err, RAGD_ENOTFOUND, "%s: 404: revision not found (no such branch, tag or commit)", what);
        if (!strcmp(code, "EntryNotFound"))
            return ragd_err_set(err, RAGD_ENOTFOUND, "%s: 404: file not found in the repository at this revision", what);
        return ragd_err_set(err, RAGD_ENOTFOUND, "%s: 404 Not Found%s%s", what, server[0] ? ": " : "", server);
    case 416:
        return ragd_err_set(err, RAGD_EIO, "%s: 416: the server refused to resume (range not satisfiable)", what);
    case 429:
        return ragd_err_set(err, RAGD_EBUSY, "%s: 429 Too Many Requests: rate limited by %s; retry later", what,
                            c->endpoint);
    default:
        return ragd_err_set(err, r->status >= 500 ? RAGD_EIO : RAGD_EINVAL, "%s: HTTP %ld from %s%s%s", what, r->status,
                            c->endpoint, server[0] ? ": " : "", server);
    }
}

static bool safe_path(const char *p) {
    if (!p[0] || p[0] == '/' || strlen(p) > 4096) return false;
    for (const unsigned char *q = (const unsigned char *)p; *q; q++)
        if (*q < 0x20 || *q == 0x7f || *q == '\\') return false;
    const char *s = p;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return false;
        s += n;
        if (*s == '/') s++;
        if (e && !*s) return false; /* trailing '/' */
    }
    return true;
}

static bool is_hex(const char *s, size_t n) {
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

static char *lower_dup(const char *s) {
    char *d = ragd_xstrdup(s);
    for (char *p = d; *p; p++)
        if (*p >= 'A' && *p <= 'F') *p = (char)(*p - 'A' + 'a');
    return d;
}

void hub_repo_free(hub_repo *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_files; i++) {
        free(r->files[i].path);
        free(r->files[i].sha256);
        free(r->files[i].git_sha1);
    }
    free(r->files);
    free(r->commit);
    memset(r, 0, sizeof *r);
}

ragd_status hub_repo_parse(const char *json, size_t len, const char *what, hub_repo *out, ragd_err *err) {
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) return ragd_err_set(err, RAGD_EFORMAT, "%s: the listing is not valid JSON: %s", what, jerr.text);
    ragd_status st = RAGD_OK;
    json_t *sha = json_object_get(root, "sha"), *sib = json_object_get(root, "siblings");
    if (!json_is_object(root) || !json_is_array(sib)) {
        st = ragd_err_set(err, RAGD_EFORMAT, "%s: the listing has no \"siblings\" array", what);
        goto done;
    }
    if (json_is_string(sha)) {
        const char *s = json_string_value(sha);
        if (!is_hex(s, 40)) {
            st = ragd_err_set(err, RAGD_EFORMAT, "%s: the listing's commit \"%.64s\" is not a 40-digit hex sha", what, s);
            goto done;
        }
        out->commit = lower_dup(s);
    }
    out->files = ragd_xcalloc(json_array_size(sib) + 1, sizeof *out->files);
    size_t i;
    json_t *e;
    json_array_foreach(sib, i, e) {
        json_t *name = json_object_get(e, "rfilename");
        if (!json_is_string(name) || !safe_path(json_string_value(name))) {
            st = ragd_err_set(err, RAGD_EFORMAT, "%s: listing entry %zu has an unsafe or missing file name", what, i);
            goto done;
        }
        hub_file *f = &out->files[out->n_files++];
        f->path = ragd_xstrdup(json_string_value(name));
        f->size = -1;
        json_t *size = json_object_get(e, "size"), *blob = json_object_get(e, "blobId"), *lfs = json_object_get(e, "lfs");
        if (json_is_integer(size) && json_integer_value(size) >= 0) f->size = json_integer_value(size);
        if (json_is_string(blob) && is_hex(json_string_value(blob), 40)) f->git_sha1 = lower_dup(json_string_value(blob));
        if (json_is_object(lfs)) {
            json_t *lsha = json_object_get(lfs, "sha256"), *lsize = json_object_get(lfs, "size");
            if (!json_is_string(lsha) || !is_hex(json_string_value(lsha), 64)) {
                st = ragd_err_set(err, RAGD_EFORMAT, "%s: file '%s': the listing's lfs.sha256 is not 64 hex digits", what,
                                  f->path);
                goto done;
            }
            f->lfs = true;
            f->sha256 = lower_dup(json_string_value(lsha));
            if (json_is_integer(lsize) && json_integer_value(lsize) >= 0) f->size = json_integer_value(lsize);
        }
    }
done:
    json_decref(root);
    if (st) hub_repo_free(out);
    return st;
}

ragd_status hub_repo_fetch(hub_client *c, const char *repo, const char *rev, hub_repo *out, ragd_err *err) {
    memset(out, 0, sizeof *out);
    char *erepo = hub_escape(repo, true), *erev = hub_escape(rev, false);
    ragd_buf url = {0}, what = {0};
    ragd_buf_printf(&url, "%s/api/models/%s/revision/%s?blobs=true", c->endpoint, erepo, erev);
    ragd_buf_printf(&what, "%s@%s", repo, rev);
    hub_resp r;
    ragd_status st = hub_get(c, url.data, LISTING_CAP, &r);
    if (st || r.status != 200) st = hub_http_error(c, &r, st, what.data, err);
    else st = hub_repo_parse(r.body.data, r.body.len, what.data, out, err);
    hub_resp_free(&r);
    free(erepo);
    free(erev);
    ragd_buf_free(&url);
    ragd_buf_free(&what);
    return st;
}
