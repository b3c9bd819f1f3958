/* hub_pull.c — `ragd pull`: list a repository, pick the files a model needs, download each to a .part
 * file (resuming), verify it and rename it into place (see hub.h for the protocol).
 *
 * Invariant: a file appears under its final name only after its size and digest matched what the hub
 * publishes; a mismatch deletes the .part, a network failure keeps it for the next attempt (retried in
 * this run with exponential backoff while the server keeps answering, and resumed on the next run).
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub/hub_internal.h"

typedef struct pull_ctx {
    const ragd_hub_opts *o;
    hub_client c;
    const char *repo, *rev;
    char *dir;
    char *ref;        /* what resolve/ URLs use: the listing's commit, else the escaped revision */
    int retries;
} pull_ctx;

/* ---------------------------------------------------------------------------------------------- */
/* names and selection */

static bool valid_repo(const char *r) {
    size_t n = strlen(r), slashes = 0;
    if (!n || n > 200 || r[0] == '/' || r[n - 1] == '/' || strstr(r, "..") || strstr(r, "//")) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = r[i];
        if (ch == '/') {
            slashes++;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '_' || ch == '.'))
            return false;
    }
    return slashes <= 1 && r[0] != '.' && r[0] != '-';
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* The files a model folder needs (config, tokenizer, weights, sentence-transformers modules). */
static bool default_wanted(const char *p) {
    static const char *const top[] = {
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "vocab.txt",
        "model.safetensors.index.json", "modules.json", "config_sentence_transformers.json",
        "sentence_bert_config.json"};
    const char *slash = strchr(p, '/');
    if (!slash) {
        for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
            if (!strcmp(p, top[i])) return true;
        return ends_with(p, ".safetensors");
    }
    /* sentence-transformers modules: "1_Pooling/config.json", "2_Normalize/..." */
    return p[0] >= '0' && p[0] <= '9' && strchr(p, '_') && strchr(p, '_') < slash && !strcmp(slash + 1, "config.json");
}

/* Marks the files to pull in sel[]; returns the count or an error. */
static ragd_status select_files(pull_ctx *x, const hub_repo *r, bool *sel, size_t *n_sel, ragd_err *err) {
    const ragd_hub_opts *o = x->o;
    size_t n = 0, n_gguf = 0, n_st = 0;
    for (size_t i = 0; i < r->n_files; i++) {
        const char *p = r->files[i].path;
        sel[i] = false;
        if (o->n_include) {
            for (size_t k = 0; k < o->n_include && !sel[i]; k++) sel[i] = fnmatch(o->include[k], p, 0) == 0;
        } else {
            sel[i] = default_wanted(p);
            if (ends_with(p, ".gguf")) n_gguf++;
            if (sel[i] && ends_with(p, ".safetensors")) n_st++;
        }
        n += sel[i];
    }
    if (!o->n_include && n_st == 0 && n_gguf > 0) {
        if (n_gguf > 1) {
            ragd_buf names = {0};
            size_t shown = 0;
            for (size_t i = 0; i < r->n_files && shown < 12; i++)
                if (ends_with(r->files[i].path, ".gguf")) ragd_buf_printf(&names, "%s%s", shown++ ? ", " : "", r->files[i].path);
            ragd_status st = ragd_err_set(err, RAGD_EINVAL,
                                          "%s@%s has %zu .gguf files and no safetensors; choose one with --include "
                                          "(e.g. --include '*Q4_0.gguf'): %s%s",
                                          x->repo, x->rev, n_gguf, names.data, n_gguf > shown ? ", ..." : "");
            ragd_buf_free(&names);
            return st;
        }
        for (size_t i = 0; i < r->n_files; i++)
            if (ends_with(r->files[i].path, ".gguf")) {
                sel[i] = true;
                n++;
            }
    }
    if (n == 0) {
        ragd_buf names = {0};
        for (size_t i = 0; i < r->n_files && i < 12; i++) ragd_buf_printf(&names, "%s%s", i ? ", " : "", r->files[i].path);
        ragd_status st;
        if (o->n_include)
            st = ragd_err_set(err, RAGD_ENOTFOUND, "%s@%s: no file matches --include '%s'%s (files: %s%s)", x->repo,
                              x->rev, o->include[0], o->n_include > 1 ? " or the other globs" : "",
                              names.data ? names.data : "none", r->n_files > 12 ? ", ..." : "");
        else
            st = ragd_err_set(err, RAGD_ENOTFOUND,
                              "%s@%s has no model files ragd loads (config.json, *.safetensors or .gguf); files: %s%s",
                              x->repo, x->rev, names.data ? names.data : "none", r->n_files > 12 ? ", ..." : "");
        ragd_buf_free(&names);
        return st;
    }
    *n_sel = n;
    return RAGD_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* files */

static ragd_status mkdir_p(const char *path, ragd_err *err) {
    char *p = ragd_xstrdup(path);
    ragd_status st = RAGD_OK;
    for (char *s = p + 1;; s++) {
        char ch = *s;
        if (ch == '/' || ch == 0) {
            *s = 0;
            if (mkdir(p, 0755) && errno != EEXIST) {
                st = ragd_err_set(err, RAGD_EIO, "cannot create folder %s: %s", p, strerror(errno));
                break;
            }
            *s = ch;
        }
        if (!ch) break;
    }
    free(p);
    if (!st && !ragd_dir_exists(path)) st = ragd_err_set(err, RAGD_EIO, "%s exists and is not a folder", path);
    return st;
}

static int64_t file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : -1;
}

static bool is_hex_n(const char *s, size_t n) {
    if (!s || strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F'))) return false;
    return true;
}

/* What a file must be. */
typedef struct expect {
    int64_t size;       /* -1 unknown */
    char sha256[65];    /* "" unknown */
    char git_sha1[41];  /* "" unknown */
} expect;

/* Checks path against e. *why (static text) says what failed; true when it matches. */
static ragd_status check_file(const char *path, const expect *e, bool *ok, ragd_buf *why, ragd_err *err) {
    char sha[65], git[41];
    uint64_t size;
    ragd_status st = hub_file_digests(path, sha, git, &size, err);
    if (st) return st;
    *ok = true;
    if (e->size >= 0 && (uint64_t)e->size != size) {
        *ok = false;
        ragd_buf_printf(why, "size %llu, expected %lld", (unsigned long long)size, (long long)e->size);
    } else if (e->sha256[0] && strcasecmp(e->sha256, sha)) {
        *ok = false;
        ragd_buf_printf(why, "sha256 mismatch: expected %s, got %s", e->sha256, sha);
    } else if (!e->sha256[0] && e->git_sha1[0] && strcasecmp(e->git_sha1, git)) {
        *ok = false;
        ragd_buf_printf(why, "git blob sha1 mismatch: expected %s, got %s", e->git_sha1, git);
    }
    return RAGD_OK;
}

static void backoff(int attempt) {
    useconds_t us = (useconds_t)(200000u << (attempt < 5 ? attempt : 5)); /* 0.2 s, 0.4 s, ... ≤ 6.4 s */
    usleep(us);
}

static ragd_status pull_one(pull_ctx *x, const hub_file *hf, ragd_err *err) {
    const ragd_hub_opts *o = x->o;
    char *dest = ragd_path_join(x->dir, hf->path);
    ragd_buf part = {0}, what = {0}, url = {0}, why = {0};
    ragd_buf_printf(&part, "%s.part", dest);
    ragd_buf_printf(&what, "%s@%s: file '%s'", x->repo, x->rev, hf->path);
    expect e = {.size = hf->size};
    if (hf->sha256) snprintf(e.sha256, sizeof e.sha256, "%s", hf->sha256);
    if (hf->git_sha1 && !hf->lfs) snprintf(e.git_sha1, sizeof e.git_sha1, "%s", hf->git_sha1);
    ragd_status st = RAGD_OK;
    bool ok = false;
    /* parent folders of nested files ("1_Pooling/config.json") */
    char *slash = strrchr(dest, '/');
    if (slash) {
        *slash = 0;
        st = mkdir_p(dest, err);
        *slash = '/';
        if (st) goto done;
    }
    /* already there and verified? */
    if (file_size(dest) >= 0 && (e.sha256[0] || e.git_sha1[0])) {
        if ((st = check_file(dest, &e, &ok, &why, err))) goto done;
        if (ok) {
            if (!o->quiet) fprintf(stderr, "  %s: up to date\n", hf->path);
            goto done;
        }
        if (!o->quiet) fprintf(stderr, "  %s: local copy differs (%s); downloading again\n", hf->path, why.data);
        ragd_buf_reset(&why);
    }
    char *epath = hub_escape(hf->path, true), *erepo = hub_escape(x->repo, true);
    ragd_buf_printf(&url, "%s/%s/resolve/%s/%s", x->c.endpoint, erepo, x->ref, epath);
    free(epath);
    free(erepo);

    for (int attempt = 0;; attempt++) {
        int64_t have = file_size(part.data);
        if (have < 0 || (e.size >= 0 && have > e.size)) have = 0;
        if (e.size > 0 && have == e.size) break; /* complete from an earlier run: verify below */
        FILE *f = fopen(part.data, have ? "ab" : "wb");
        if (!f) {
            st = ragd_err_set(err, RAGD_EIO, "%s: cannot write %s: %s", what.data, part.data, strerror(errno));
            goto done;
        }
        if (have && !o->quiet) fprintf(stderr, "  %s: resuming at byte %lld\n", hf->path, (long long)have);
        hub_resp r;
        ragd_status rs = hub_download(&x->c, url.data, f, (uint64_t)have, e.size > 0 ? (uint64_t)e.size : 0, hf->path, &r);
        if (fsync(fileno(f)) && rs == RAGD_OK) {
            snprintf(r.curl_msg, sizeof r.curl_msg, "fsync of %s failed: %s", part.data, strerror(errno));
            rs = RAGD_EIO;
        }
        fclose(f);
        /* what the hub's own response says about the file, when the listing did not */
        if (!e.sha256[0] && is_hex_n(r.linked_etag, 64)) snprintf(e.sha256, sizeof e.sha256, "%s", r.linked_etag);
        if (!e.sha256[0] && !e.git_sha1[0] && !r.linked_etag && is_hex_n(r.etag, 40))
            snprintf(e.git_sha1, sizeof e.git_sha1, "%s", r.etag);
        if (e.size < 0 && r.linked_size) e.size = strtoll(r.linked_size, NULL, 10);
        bool http_ok = rs == RAGD_OK && (r.status == 200 || r.status == 206);
        bool transient = rs == RAGD_EIO || r.status == 429 || r.status >= 500;
        if (http_ok) {
            hub_resp_free(&r);
            break;
        }
        if (transient && attempt < x->retries) {
            if (!o->quiet)
                fprintf(stderr, "  %s: %s after %llu new bytes; retrying (%d/%d)\n", hf->path,
                        rs == RAGD_EIO ? r.curl_msg : "server error", (unsigned long long)r.written, attempt + 1,
                        x->retries);
            hub_resp_free(&r);
            backoff(attempt);
            continue;
        }
        st = hub_http_error(&x->c, &r, rs, what.data, err);
        hub_resp_free(&r);
        if (file_size(part.data) > 0 && err && err->msg) {
            char *m = ragd_xstrdup(err->msg);
            ragd_err_set(err, st, "%s (%s is kept: running the same pull again resumes it)", m, part.data);
            free(m);
        } else if (file_size(part.data) <= 0) {
            unlink(part.data);
        }
        goto done;
    }
    if ((st = check_file(part.data, &e, &ok, &why, err))) goto done;
    if (!ok) {
        unlink(part.data);
        st = ragd_err_set(err, RAGD_EFORMAT, "%s: verification failed (%s); the download was removed", what.data,
                          why.data);
        goto done;
    }
    if (!e.sha256[0] && !e.git_sha1[0])
        RAGD_WARN("%s: the hub published no checksum; only the size was checked", what.data);
    if (rename(part.data, dest)) {
        st = ragd_err_set(err, RAGD_EIO, "%s: cannot rename %s to %s: %s", what.data, part.data, dest, strerror(errno));
        goto done;
    }
    if (!o->quiet)
        fprintf(stderr, "  %s: %lld bytes, %s verified\n", hf->path, (long long)file_size(dest),
                e.sha256[0] ? "sha256" : e.git_sha1[0] ? "git sha1" : "size");
done:
    free(dest);
    ragd_buf_free(&part);
    ragd_buf_free(&what);
    ragd_buf_free(&url);
    ragd_buf_free(&why);
    return st;
}

/* ---------------------------------------------------------------------------------------------- */

char *ragd_hub_default_dir(const char *repo) {
    const char *cache = getenv("RAGD_CACHE"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    ragd_buf b = {0};
    if (cache && cache[0]) ragd_buf_puts(&b, cache);
    else if (xdg && xdg[0]) ragd_buf_printf(&b, "%s/ragd", xdg);
    else ragd_buf_printf(&b, "%s/.cache/ragd", home && home[0] ? home : ".");
    ragd_buf_puts(&b, "/models/");
    for (const char *p = repo; *p; p++) {
        if (*p == '/') ragd_buf_puts(&b, "--");
        else ragd_buf_putc(&b, *p);
    }
    return b.data;
}

ragd_status ragd_hub_pull(const ragd_hub_opts *o, char **out_path, ragd_err *err) {
    *out_path = NULL;
    pull_ctx x = {.o = o, .repo = o->repo, .rev = o->revision && o->revision[0] ? o->revision : "main"};
    if (!o->repo || !valid_repo(o->repo))
        return ragd_err_set(err, RAGD_EINVAL, "'%s' is not a repository id (expected owner/name)", o->repo ? o->repo : "");
    for (const char *p = x.rev; *p; p++)
        if ((unsigned char)*p < 0x20 || strlen(x.rev) > 256)
            return ragd_err_set(err, RAGD_EINVAL, "revision '%s' is not valid", x.rev);
    const char *endpoint = o->endpoint ? o->endpoint : getenv("HF_ENDPOINT");
    if (!endpoint || !endpoint[0]) endpoint = "https://huggingface.co";
    const char *token = o->token ? o->token : getenv("HF_TOKEN");
    if (!token || !token[0]) token = getenv("HUGGING_FACE_HUB_TOKEN");
    x.retries = o->retries;
    if (x.retries < 0) {
        const char *r = getenv("RAGD_PULL_RETRIES");
        x.retries = r && r[0] ? atoi(r) : 3;
        if (x.retries < 0) x.retries = 0;
    }
    ragd_status st = hub_client_init(&x.c, endpoint, token, o->progress, err);
    if (st) return st;
    x.dir = o->dir ? ragd_xstrdup(o->dir) : ragd_hub_default_dir(o->repo);
    hub_repo r = {0};
    bool *sel = NULL;
    size_t n_sel = 0;
    if ((st = hub_repo_fetch(&x.c, x.repo, x.rev, &r, err))) goto done;
    x.ref = r.commit ? ragd_xstrdup(r.commit) : hub_escape(x.rev, false);
    sel = ragd_xcalloc(r.n_files + 1, sizeof *sel);
    if ((st = select_files(&x, &r, sel, &n_sel, err)) || (st = mkdir_p(x.dir, err))) goto done;
    if (!o->quiet)
        fprintf(stderr, "ragd pull: %s@%s%s%.12s → %s (%zu file%s)\n", x.repo, x.rev, r.commit ? " commit " : "",
                r.commit ? r.commit : "", x.dir, n_sel, n_sel == 1 ? "" : "s");
    const char *gguf = NULL;
    size_t n_gguf = 0, n_st = 0;
    for (size_t i = 0; i < r.n_files && !st; i++) {
        if (!sel[i]) continue;
        st = pull_one(&x, &r.files[i], err);
        if (ends_with(r.files[i].path, ".gguf")) {
            gguf = r.files[i].path;
            n_gguf++;
        }
        if (ends_with(r.files[i].path, ".safetensors")) n_st++;
    }
    if (!st) *out_path = n_gguf == 1 && n_st == 0 ? ragd_path_join(x.dir, gguf) : ragd_xstrdup(x.dir);
done:
    free(sel);
    hub_repo_free(&r);
    hub_client_free(&x.c);
    free(x.dir);
    free(x.ref);
    return st;
}
