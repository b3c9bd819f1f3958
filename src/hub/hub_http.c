/* hub_http.c — the HTTP client of `ragd pull`: libcurl easy handle, headers captured per response of a
 * redirect chain, downloads that resume with Range, a progress bar.
 *
 * Invariants: the Authorization header goes only to the endpoint's host (curl drops custom
 * Authorization headers when a redirect leaves the host, CURLOPT_UNRESTRICTED_AUTH stays off: LFS files
 * redirect to a CDN that must not see the token). Error bodies are never written into the file being
 * downloaded. A transfer that stalls (< 1 byte/s for 60 s) fails like a dropped connection.
 */
#include <curl/curl.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include "hub/hub_internal.h"

#define ERROR_BODY_CAP 4096

/* ---------------------------------------------------------------------------------------------- */
/* client */

ragd_status hub_client_init(hub_client *c, const char *endpoint, const char *token, bool progress, ragd_err *err) {
    memset(c, 0, sizeof *c);
    static bool global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return ragd_err_set(err, RAGD_EINTERNAL, "libcurl failed to initialize");
        global_done = true;
    }
    c->curl = curl_easy_init();
    if (!c->curl) return ragd_err_set(err, RAGD_ENOMEM, "libcurl: cannot create a handle");
    size_t n = strlen(endpoint);
    while (n > 0 && endpoint[n - 1] == '/') n--;
    c->endpoint = ragd_xstrndup(endpoint, n);
    if (token && token[0]) {
        ragd_buf b = {0};
        ragd_buf_printf(&b, "Authorization: Bearer %s", token);
        c->auth_header = b.data;
        c->has_token = true;
    }
    c->progress = progress;
    return RAGD_OK;
}

void hub_client_free(hub_client *c) {
    if (!c) return;
    if (c->curl) curl_easy_cleanup(c->curl);
    free(c->endpoint);
    if (c->auth_header) memset(c->auth_header, 0, strlen(c->auth_header));
    free(c->auth_header);
    memset(c, 0, sizeof *c);
}

void hub_resp_free(hub_resp *r) {
    ragd_buf_free(&r->body);
    free(r->error_code);
    free(r->error_message);
    free(r->linked_etag);
    free(r->linked_size);
    free(r->etag);
    free(r->repo_commit);
    memset(r, 0, sizeof *r);
}

char *hub_escape(const char *s, bool keep_slash) {
    ragd_buf b = {0};
    ragd_buf_reserve(&b, strlen(s) + 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char ch = *p;
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                  ch == '_' || ch == '.' || ch == '~' || (keep_slash && ch == '/');
        if (ok) ragd_buf_putc(&b, (char)ch);
        else ragd_buf_printf(&b, "%%%02X", ch);
    }
    if (!b.data) ragd_buf_puts(&b, "");
    return b.data;
}

/* ---------------------------------------------------------------------------------------------- */
/* per-request state shared by the callbacks */

typedef struct xfer {
    hub_client *c;
    hub_resp *r;
    int n_responses;      /* status lines seen (a redirect chain has several) */
    /* in-memory mode */
    size_t cap;
    /* download mode */
    FILE *f;
    uint64_t offset;      /* bytes in the file before this request */
    bool checked;         /* first body bytes: status looked at */
    bool to_file;         /* this response's body goes to the file */
    int64_t range_start;  /* from Content-Range of the current response, -1 none */
    bool write_failed;
    /* progress */
    const char *label;
    uint64_t total;
    double t_start, t_last;
} xfer;

static char *dup_trim(const char *v, size_t n) {
    while (n && (v[0] == ' ' || v[0] == '\t')) v++, n--;
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    return ragd_xstrndup(v, n);
}

/* ETag values: W/"abc" or "abc" → abc */
static char *dup_etag(const char *v, size_t n) {
    char *s = dup_trim(v, n);
    char *p = s;
    if (p[0] == 'W' && p[1] == '/') p += 2;
    size_t len = strlen(p);
    if (len >= 2 && p[0] == '"' && p[len - 1] == '"') {
        p++;
        len -= 2;
    }
    char *out = ragd_xstrndup(p, len);
    free(s);
    return out;
}

static void set_str(char **dst, char *v) {
    free(*dst);
    *dst = v;
}

static bool header_is(const char *line, size_t n, const char *name, const char **val, size_t *vlen) {
    size_t k = strlen(name);
    if (n <= k || line[k] != ':' || strncasecmp(line, name, k)) return false;
    *val = line + k + 1;
    *vlen = n - k - 1;
    return true;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud) {
    xfer *x = ud;
    size_t n = size * nitems;
    const char *v;
    size_t vn;
    if (n >= 5 && !memcmp(buf, "HTTP/", 5)) {
        x->n_responses++;
        x->range_start = -1;
        return n;
    }
    bool first = x->n_responses <= 1; /* the hub's own response, before any redirect */
    if (header_is(buf, n, "X-Error-Code", &v, &vn)) set_str(&x->r->error_code, dup_trim(v, vn));
    else if (header_is(buf, n, "X-Error-Message", &v, &vn)) set_str(&x->r->error_message, dup_trim(v, vn));
    else if (header_is(buf, n, "X-Linked-Etag", &v, &vn) && !x->r->linked_etag) x->r->linked_etag = dup_etag(v, vn);
    else if (header_is(buf, n, "X-Linked-Size", &v, &vn) && !x->r->linked_size) x->r->linked_size = dup_trim(v, vn);
    else if (header_is(buf, n, "X-Repo-Commit", &v, &vn) && !x->r->repo_commit) x->r->repo_commit = dup_trim(v, vn);
    else if (first && header_is(buf, n, "ETag", &v, &vn)) set_str(&x->r->etag, dup_etag(v, vn));
    else if (header_is(buf, n, "Content-Range", &v, &vn)) {
        /* "bytes S-E/T" */
        char *s = dup_trim(v, vn);
        unsigned long long a;
        if (sscanf(s, "bytes %llu-", &a) == 1) x->range_start = (int64_t)a;
        free(s);
    }
    return n;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *ud) {
    xfer *x = ud;
    size_t n = size * nmemb;
    if (!x->checked) {
        x->checked = true;
        long code = 0;
        curl_easy_getinfo(x->c->curl, CURLINFO_RESPONSE_CODE, &code);
        x->to_file = x->f && (code == 200 || code == 206);
        if (x->to_file && code == 206 && x->range_start != (int64_t)x->offset) {
            x->r->bad_range = true;
            return 0; /* abort: the server sent some other range */
        }
        if (x->to_file && code == 200 && x->offset > 0) {
            /* the server ignored our Range: start the file over */
            if (fflush(x->f) || ftruncate(fileno(x->f), 0) || fseek(x->f, 0, SEEK_SET)) {
                x->write_failed = true;
                return 0;
            }
            x->offset = 0;
            x->r->restarted = true;
        }
    }
    if (x->to_file) {
        if (fwrite(buf, 1, n, x->f) != n) {
            x->write_failed = true;
            return 0;
        }
        x->r->written += n;
        return n;
    }
    size_t cap = x->f ? ERROR_BODY_CAP : x->cap;
    if (x->r->body.len + n > cap) {
        if (!x->f) {
            x->r->too_big = true;
            return 0;
        }
        n = x->r->body.len < cap ? cap - x->r->body.len : 0;
        ragd_buf_append(&x->r->body, buf, n);
        return size * nmemb;
    }
    ragd_buf_append(&x->r->body, buf, n);
    return n;
}

/* ---------------------------------------------------------------------------------------------- */
/* progress bar: "  model.safetensors  [#########           ]  45%   12.3/27.0 MB   5.1 MB/s" */

static void draw_bar(xfer *x, uint64_t done, bool final) {
    double now = ragd_now_s();
    if (!final && now - x->t_last < 0.1) return;
    x->t_last = now;
    uint64_t total = x->total;
    double rate = (double)(done - x->offset) / (now - x->t_start > 1e-3 ? now - x->t_start : 1e-3);
    char bar[21];
    int fill = total ? (int)(20.0 * (double)done / (double)total) : 0;
    if (fill > 20) fill = 20;
    for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : ' ';
    bar[20] = 0;
    const char *label = x->label;
    size_t ll = strlen(label);
    if (ll > 32) label += ll - 32;
    if (total)
        fprintf(stderr, "\r  %-32s [%s] %3d%%  %7.1f/%.1f MB  %6.1f MB/s", label, bar, (int)(100.0 * (double)done / (double)total),
                (double)done / 1e6, (double)total / 1e6, rate / 1e6);
    else
        fprintf(stderr, "\r  %-32s %7.1f MB  %6.1f MB/s", label, (double)done / 1e6, rate / 1e6);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)dltotal;
    (void)ultotal;
    (void)ulnow;
    xfer *x = ud;
    if (x->to_file) draw_bar(x, x->offset + (uint64_t)dlnow, false);
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* requests */

static ragd_status perform(hub_client *c, const char *url, xfer *x, const char *range) {
    CURL *h = c->curl;
    curl_easy_reset(h);
    struct curl_slist *hdrs = NULL;
    if (c->auth_header) hdrs = curl_slist_append(hdrs, c->auth_header);
    hdrs = curl_slist_append(hdrs, "Accept-Encoding: identity");
    char ua[64];
    snprintf(ua, sizeof ua, "ragd/%s", RAGD_VERSION);
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, ua);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    if (range) curl_easy_setopt(h, CURLOPT_RANGE, range);
    bool bar = x->f && c->progress && (x->total == 0 || x->total >= (1u << 20)); /* small files: no bar */
    if (bar) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    }
    x->t_start = x->t_last = ragd_now_s();
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    hub_resp *r = x->r;
    r->status = code;
    r->curl_code = (int)rc;
    if (bar && x->to_file) draw_bar(x, x->offset + r->written, true);
    if (rc == CURLE_OK) return RAGD_OK;
    if (x->write_failed) snprintf(r->curl_msg, sizeof r->curl_msg, "writing the file failed");
    else if (r->bad_range) snprintf(r->curl_msg, sizeof r->curl_msg, "the server answered another byte range than asked");
    else if (r->too_big) snprintf(r->curl_msg, sizeof r->curl_msg, "the response is larger than expected");
    else snprintf(r->curl_msg, sizeof r->curl_msg, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    return RAGD_EIO;
}

ragd_status hub_get(hub_client *c, const char *url, size_t cap, hub_resp *r) {
    memset(r, 0, sizeof *r);
    xfer x = {.c = c, .r = r, .cap = cap, .range_start = -1};
    ragd_status st = perform(c, url, &x, NULL);
    if (!r->body.data) ragd_buf_puts(&r->body, "");
    return st;
}

ragd_status hub_download(hub_client *c, const char *url, FILE *f, uint64_t offset, uint64_t total,
                         const char *label, hub_resp *r) {
    memset(r, 0, sizeof *r);
    xfer x = {.c = c, .r = r, .f = f, .offset = offset, .range_start = -1, .label = label, .total = total};
    char range[48];
    snprintf(range, sizeof range, "%llu-", (unsigned long long)offset);
    ragd_status st = perform(c, url, &x, offset ? range : NULL);
    if (fflush(f) && st == RAGD_OK) {
        snprintf(r->curl_msg, sizeof r->curl_msg, "writing the file failed");
        st = RAGD_EIO;
    }
    if (!r->body.data) ragd_buf_puts(&r->body, "");
    return st;
}
