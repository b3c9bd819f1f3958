/* door.c — the front door of `ragd serve`: our own listening socket and accept loop in front of
 * libmicrohttpd, so that no client can starve the server of connections and every protocol error of a
 * new connection is answered at once, in JSON.
 *
 * Why not libmicrohttpd alone (Debian 12: 0.9.75): its connection timeout is an idle timeout (any byte
 * resets it, so one byte every few seconds holds a connection forever); it has no deadline for a head
 * or a body, no way to prefer one client over another when full, and its error replies (400, 413, 414,
 * 431, 505) are compile-time HTML strings (connection.c: REQUEST_MALFORMED, REQUEST_TOO_BIG, ...,
 * sent by transmit_error_response_static) that no option replaces. MHD_OPTION_PER_IP_CONNECTION_LIMIT
 * exists but refuses by closing without a reply. So libmicrohttpd runs without a listening socket
 * (MHD_USE_NO_LISTEN_SOCKET) and gets connections from here through MHD_add_connection.
 *
 * A connection's states (one record per open socket, indexed by fd):
 *
 *   accept ─▶ HEAD ─(head complete, valid, authorized, room)─▶ BODY ─(body read)─▶ BUSY ─(reply sent)─▶ IDLE
 *               │  (malformed, 401, 413, caps, shutting down)    │                  │    (next head) ◀──┘ │
 *               │  (no head within --header-timeout-ms: 408)     └─(--body-timeout-ms: 408)─▶ DOOMED ◀───┘
 *               ▼                                                     (keep-alive idle past the head timeout)
 *            CLOSING (JSON reply sent, FIN, unread input drained ≤ 1 s) ─▶ closed
 *
 * HEAD and CLOSING belong to the door thread, which peeks (MSG_PEEK) at the bytes of the head without
 * consuming them, so libmicrohttpd later reads the request from the first byte. BODY..DOOMED belong to
 * libmicrohttpd; the door only keeps their deadlines and, when one passes, writes a 408 (BODY) and
 * shuts the socket down (libmicrohttpd then closes it). A record leaves the table in libmicrohttpd's
 * CLOSED notification, which runs before it closes the fd, and the door acts on an fd only under the
 * table lock — so it never touches a number that was reused.
 *
 * HTTPS (tls.c): a TLS connection reaches the door after its handshake, as the plaintext end of a socket pair
 * (http_door_inject, queued under mu and taken by the door thread), and from then on is like any other.
 *
 * Admission: at most --max-connections records in HEAD (a full table evicts one of the oldest pending
 * heads, preferring one that sent nothing, so silent connections cannot lock others out), at most
 * --max-connections handed over, of which the last 1/16 only for /health, /health/ready and (when an
 * API key is set) authenticated requests, and at most --max-connections-per-client of either from one
 * address (429). The API key is checked here, before a connection costs a libmicrohttpd slot.
 */
#include "http/http_internal.h"

#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

enum { D_NONE = 0, D_HEAD, D_CLOSING, D_BODY, D_BUSY, D_IDLE, D_DOOMED, D_NSTATE };

#define LINGER_S 1.0        /* CLOSING: how long unread input is drained after a reply */
#define DOOMED_S 5.0        /* after the door shut a socket down, libmicrohttpd closes it well within this */
#define TICK_MS 50          /* deadline resolution */
#define TRIM_EVERY_S 0.25   /* at most this often: return free heap pages after large requests */

typedef struct dconn {
    int fd;
    int st;
    bool counted;                  /* in its address's count (HEAD and the handed-over states) */
    double t0;                     /* when the current state began */
    size_t seen;                   /* HEAD: bytes received so far */
    struct MHD_Connection *mc;     /* set by libmicrohttpd's STARTED notification */
    struct dconn *prev, *next;     /* in the list of its state (oldest first) */
    uint8_t key[16];               /* client address (IPv4 mapped into IPv6) */
    socklen_t alen;
    struct sockaddr_storage addr;
} dconn;

typedef struct dlist {
    dconn *head, *tail;
    int n;
} dlist;

typedef struct injected { /* a TLS connection handed over by its relay (tls.c), waiting for the door thread */
    int fd;
    socklen_t alen;
    struct sockaddr_storage addr;
    struct injected *next;
} injected;

typedef struct ipent {
    uint8_t key[16];
    uint32_t n;                    /* 0: empty slot */
} ipent;

struct http_door {
    ragd_http *h;
    int lfd, efd, epfd;
    int port;
    pthread_t th;
    bool running;
    atomic_bool stop, quiesce;
    pthread_mutex_t mu;            /* guards everything below but the door-thread-only fields */
    pthread_cond_t cv;
    bool listener_closed;
    injected *inj;                 /* TLS connections to admit (http_door_inject) */
    dconn **by_fd;
    size_t n_by_fd;
    dlist lists[D_NSTATE];
    int n_live;                    /* handed over: BODY + BUSY + IDLE + DOOMED */
    ipent *ips;
    size_t ip_cap;                 /* power of two, at least 4 × the records that can be counted */
    uint64_t ip_seed;
    /* door thread only */
    char *peek;
    size_t peek_cap;
    ragd_buf reply;
    http_head_limits lim;
    double header_s, body_s, paused_until, t_trim, t_summary;
    int max_conn, reserve, per_client, max_closing;
    uint64_t cnt[RAGD_REJECT_COUNT], cnt_logged[RAGD_REJECT_COUNT];
};

/* ---------------------------------------------------------------------------------------------- */
/* lists, addresses (under mu) */

static void list_push(dlist *l, dconn *c) {
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail) l->tail->next = c;
    else l->head = c;
    l->tail = c;
    l->n++;
}

static void list_del(dlist *l, dconn *c) {
    if (c->prev) c->prev->next = c->next;
    else l->head = c->next;
    if (c->next) c->next->prev = c->prev;
    else l->tail = c->prev;
    c->prev = c->next = NULL;
    l->n--;
}

static void set_state(http_door *d, dconn *c, int st, double now) {
    if (c->st) list_del(&d->lists[c->st], c);
    c->st = st;
    c->t0 = now;
    list_push(&d->lists[st], c);
}

static void addr_key(const struct sockaddr_storage *sa, uint8_t k[16]) {
    memset(k, 0, 16);
    if (sa->ss_family == AF_INET) {
        k[10] = k[11] = 0xff;
        memcpy(k + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->ss_family == AF_INET6) memcpy(k, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
}

static size_t ip_slot(const http_door *d, const uint8_t k[16]) {
    uint64_t x = d->ip_seed;
    for (int i = 0; i < 16; i++) x = (x ^ k[i]) * 0x100000001b3ULL;
    x ^= x >> 29;
    return (size_t)x & (d->ip_cap - 1);
}

/* The slot of k (linear probing): its entry, or the empty slot where it would go. */
static size_t ip_find(const http_door *d, const uint8_t k[16]) {
    size_t i = ip_slot(d, k);
    while (d->ips[i].n && memcmp(d->ips[i].key, k, 16)) i = (i + 1) & (d->ip_cap - 1);
    return i;
}

static uint32_t ip_count(const http_door *d, const uint8_t k[16]) { return d->ips[ip_find(d, k)].n; }

static void ip_inc(http_door *d, dconn *c) {
    size_t i = ip_find(d, c->key);
    memcpy(d->ips[i].key, c->key, 16);
    d->ips[i].n++;
    c->counted = true;
}

static void ip_dec(http_door *d, dconn *c) {
    if (!c->counted) return;
    c->counted = false;
    size_t i = ip_find(d, c->key);
    RAGD_ASSERT(d->ips[i].n > 0);
    if (--d->ips[i].n) return;
    /* backward-shift deletion keeps every probe chain unbroken */
    size_t mask = d->ip_cap - 1, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!d->ips[j].n) break;
        size_t home = ip_slot(d, d->ips[j].key);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            d->ips[i] = d->ips[j];
            d->ips[j].n = 0;
            i = j;
        }
    }
}

static void publish(http_door *d) {
    ragd_metrics_set_connections(d->h->cfg.metrics, d->lists[D_HEAD].n, d->n_live);
}

/* Forgets c (under mu): the caller closes or has lost the fd. */
static void forget(http_door *d, dconn *c) {
    ip_dec(d, c);
    if (c->st >= D_BODY) d->n_live--;
    list_del(&d->lists[c->st], c);
    if ((size_t)c->fd < d->n_by_fd && d->by_fd[c->fd] == c) d->by_fd[c->fd] = NULL;
    free(c);
    publish(d);
}

/* ---------------------------------------------------------------------------------------------- */
/* door-thread side: HEAD and CLOSING connections */

static void close_conn(http_door *d, dconn *c) {
    int fd = c->fd;
    pthread_mutex_lock(&d->mu);
    forget(d, c);
    pthread_mutex_unlock(&d->mu);
    close(fd); /* also leaves the epoll set */
}

/* Answers a connection the door still owns with a JSON error, then lingers (CLOSING): a close with
 * unread input would reset the connection and could destroy the reply before the client reads it. */
static void door_reply(http_door *d, dconn *c, int status, const char *code, const char *msg, const http_head *hd,
                       int retry_after, ragd_reject_reason why, double now) {
    char id[72];
    http_request_id(d->h, hd ? hd->req_id : NULL, hd ? hd->req_id_len : 0, id);
    ragd_buf_reset(&d->reply);
    char cors[256] = "";
    if (hd && hd->origin) http_cors_origin(d->h->cfg.opts ? d->h->cfg.opts->cors_origins : NULL, hd->origin, hd->origin_len, cors);
    http_raw_error(&d->reply, status, code, msg, id, retry_after, cors);
    ssize_t w = send(c->fd, d->reply.data, d->reply.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w; /* a fresh socket's send buffer takes a small reply whole; a client that cannot is hostile */
    shutdown(c->fd, SHUT_WR);
    if (why < RAGD_REJECT_COUNT) {
        d->cnt[why]++;
        ragd_metrics_rejected(d->h->cfg.metrics, why);
    }
    size_t plen = 0;
    while (hd && plen < hd->target_len && hd->target[plen] != '?') plen++;
    ragd_metrics_request(d->h->cfg.metrics, hd ? http_path_endpoint(hd->target, plen) : RAGD_EP_OTHER, status, now - c->t0);
    RAGD_DEBUG("[%s] door: %d %s: %s", id, status, code, msg);
    pthread_mutex_lock(&d->mu);
    bool linger = d->lists[D_CLOSING].n < d->max_closing;
    if (linger) {
        ip_dec(d, c);
        set_state(d, c, D_CLOSING, now);
        publish(d);
    }
    pthread_mutex_unlock(&d->mu);
    if (!linger) close_conn(d, c);
}

/* A complete, valid head: authorize, check the caps, hand the connection to libmicrohttpd. */
static void promote(http_door *d, dconn *c, const http_head *hd, double now) {
    ragd_http *h = d->h;
    size_t plen = 0;
    while (plen < hd->target_len && hd->target[plen] != '?') plen++;
    /* OPTIONS (a CORS preflight: browsers send it without credentials) reveals only the path's methods */
    bool pub = http_path_public(hd->target, plen) || (hd->method_len == 7 && !memcmp(hd->method, "OPTIONS", 7));
    const char *key = h->cfg.api_key;
    bool authed = key && hd->auth && http_auth_ok(key, hd->auth, hd->auth_len);
    if (atomic_load(&h->quiesced)) {
        door_reply(d, c, 503, "shutting_down", "the server is shutting down", hd, 0, RAGD_REJECT_SHUTDOWN, now);
        return;
    }
    if (key && !pub && !authed) {
        door_reply(d, c, 401, "invalid_api_key", "missing or wrong API key (send 'Authorization: Bearer KEY')", hd, 0,
                   RAGD_REJECT_COUNT, now);
        return;
    }
    if (hd->has_cl && hd->content_length > h->max_body) {
        char msg[160];
        snprintf(msg, sizeof msg, "request body of %llu bytes exceeds the limit of %zu bytes (--max-body-bytes)",
                 (unsigned long long)hd->content_length, h->max_body);
        door_reply(d, c, 413, "body_too_large", msg, hd, 0, RAGD_REJECT_COUNT, now);
        return;
    }
    pthread_mutex_lock(&d->mu);
    int limit = d->max_conn - (pub || authed ? 0 : d->reserve);
    bool room = d->n_live < limit;
    if (room) {
        set_state(d, c, D_BODY, now);
        d->n_live++;
        publish(d);
    }
    pthread_mutex_unlock(&d->mu);
    if (!room) {
        door_reply(d, c, 503, "too_many_connections", "the server has no free connection slot; retry shortly", hd, 1,
                   RAGD_REJECT_CONN_LIMIT, now);
        return;
    }
    int fd = c->fd;
    epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
    /* c may be gone as soon as libmicrohttpd has it (a fast request ends on an MHD thread) */
    if (MHD_add_connection(h->d, fd, (const struct sockaddr *)&c->addr, c->alen) != MHD_YES) {
        pthread_mutex_lock(&d->mu); /* libmicrohttpd closed the fd; only this thread reuses numbers */
        if ((size_t)fd < d->n_by_fd && d->by_fd[fd]) forget(d, d->by_fd[fd]);
        pthread_mutex_unlock(&d->mu);
        RAGD_WARN("door: libmicrohttpd refused a connection (%s)", strerror(errno));
    }
}

static void on_head_bytes(http_door *d, dconn *c, bool hup, double now) {
    ssize_t n = recv(c->fd, d->peek, d->peek_cap, MSG_PEEK);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        close_conn(d, c); /* gone before sending a request */
        return;
    }
    if (n < 0) return;
    c->seen = (size_t)n;
    http_head hd;
    http_head_err e;
    switch (http_head_parse(d->peek, (size_t)n, &d->lim, &hd, &e)) {
    case HTTP_HEAD_MORE:
        if (hup) close_conn(d, c); /* half-closed with an incomplete head: nothing will complete it */
        return;
    case HTTP_HEAD_BAD: door_reply(d, c, e.status, e.code, e.msg, NULL, 0, RAGD_REJECT_BAD_HTTP, now); return;
    case HTTP_HEAD_OK: promote(d, c, &hd, now); return;
    }
}

static void on_closing_bytes(http_door *d, dconn *c) {
    char sink[4096];
    ssize_t n;
    while ((n = recv(c->fd, sink, sizeof sink, 0)) > 0) {}
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) close_conn(d, c);
}

static void grow_table(http_door *d, int fd) {
    if ((size_t)fd < d->n_by_fd) return;
    size_t n = d->n_by_fd ? d->n_by_fd : 1024;
    while (n <= (size_t)fd) n *= 2;
    dconn **t = ragd_xcalloc(n, sizeof *t);
    pthread_mutex_lock(&d->mu);
    if (d->n_by_fd) memcpy(t, d->by_fd, d->n_by_fd * sizeof *t); /* none yet: by_fd is NULL */
    free(d->by_fd);
    d->by_fd = t;
    d->n_by_fd = n;
    pthread_mutex_unlock(&d->mu);
}

/* The pending head to drop when the HEAD table is full: among the oldest 64, one that never sent a byte
 * (idle without a request), else the oldest. Never a young one: a client that just connected has not been
 * read yet, and a flood that churns the table must not push out the head about to arrive. */
static dconn *eviction_victim(http_door *d) {
    int k = 0;
    for (dconn *c = d->lists[D_HEAD].head; c && k < 64; c = c->next, k++)
        if (!c->seen) return c;
    return d->lists[D_HEAD].head;
}

static void admit(http_door *d, int fd, const struct sockaddr_storage *sa, socklen_t sl, double now) {
    grow_table(d, fd);
    dconn *c = ragd_xcalloc(1, sizeof *c);
    c->fd = fd;
    c->alen = sl;
    memcpy(&c->addr, sa, sl <= sizeof c->addr ? sl : sizeof c->addr);
    addr_key(sa, c->key);
    int victim = -1;
    pthread_mutex_lock(&d->mu);
    if (d->by_fd[fd]) forget(d, d->by_fd[fd]); /* the number was reused: its previous owner is gone */
    d->by_fd[fd] = c;
    bool over = d->per_client && ip_count(d, c->key) >= (uint32_t)d->per_client;
    if (!over) {
        if (d->lists[D_HEAD].n >= d->max_conn) {
            dconn *v = eviction_victim(d);
            victim = v->fd;
            forget(d, v);
        }
        ip_inc(d, c);
    }
    set_state(d, c, D_HEAD, now);
    publish(d);
    pthread_mutex_unlock(&d->mu);
    if (victim >= 0) {
        close(victim);
        d->cnt[RAGD_REJECT_EVICTED]++;
        ragd_metrics_rejected(d->h->cfg.metrics, RAGD_REJECT_EVICTED);
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.fd = fd};
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev)) {
        close_conn(d, c);
        return;
    }
    if (over) {
        char msg[160];
        snprintf(msg, sizeof msg, "too many connections from this client address (--max-connections-per-client %d)",
                 d->per_client);
        door_reply(d, c, 429, "too_many_connections", msg, NULL, 1, RAGD_REJECT_CLIENT_LIMIT, now);
    }
}

static void on_accept(http_door *d, double now) {
    for (int k = 0; k < 128; k++) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(d->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (d->h->tls) http_tls_adopt(d->h->tls, fd, &sa, sl); /* admitted once its handshake is done */
            else admit(d, fd, &sa, sl, now);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* out of descriptors: stop polling the listener for a moment instead of spinning on it */
            struct epoll_event ev = {.events = 0, .data.fd = d->lfd};
            epoll_ctl(d->epfd, EPOLL_CTL_MOD, d->lfd, &ev);
            if (d->paused_until < now - 10) RAGD_WARN("door: accept: %s; pausing new connections for 100 ms", strerror(errno));
            d->paused_until = now + 0.1;
        }
        return;
    }
}

/* TLS connections whose handshake is done: admitted as if accepted now (refused with 503 after quiesce) */
static void on_injected(http_door *d, double now) {
    pthread_mutex_lock(&d->mu);
    injected *q = d->inj;
    d->inj = NULL;
    pthread_mutex_unlock(&d->mu);
    while (q) {
        injected *next = q->next;
        admit(d, q->fd, &q->addr, q->alen, now);
        dconn *c = (size_t)q->fd < d->n_by_fd ? d->by_fd[q->fd] : NULL;
        if (d->listener_closed && c && c->st == D_HEAD)
            door_reply(d, c, 503, "shutting_down", "the server is shutting down", NULL, 0, RAGD_REJECT_SHUTDOWN, now);
        free(q);
        q = next;
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* deadlines, shutdown, housekeeping (door thread) */

static void close_listener(http_door *d) {
    pthread_mutex_lock(&d->mu);
    if (d->lfd >= 0) {
        epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->lfd, NULL);
        close(d->lfd);
        d->lfd = -1;
    }
    d->listener_closed = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void tick(http_door *d, double now) {
    ragd_http *h = d->h;
    dconn *c;
    /* HEAD past its deadline: 408 */
    while ((c = d->lists[D_HEAD].head) && now - c->t0 >= d->header_s) {
        char msg[128];
        snprintf(msg, sizeof msg, "no complete request head within %.0f ms (--header-timeout-ms)", d->header_s * 1e3);
        if (c->seen) door_reply(d, c, 408, "request_timeout", msg, NULL, 0, RAGD_REJECT_HEADER_TIMEOUT, now);
        else { /* never sent a byte: nothing to answer */
            d->cnt[RAGD_REJECT_HEADER_TIMEOUT]++;
            ragd_metrics_rejected(h->cfg.metrics, RAGD_REJECT_HEADER_TIMEOUT);
            close_conn(d, c);
        }
    }
    while ((c = d->lists[D_CLOSING].head) && now - c->t0 >= LINGER_S) close_conn(d, c);
    /* handed-over connections: the door only shuts their socket down; libmicrohttpd closes it */
    pthread_mutex_lock(&d->mu);
    while ((c = d->lists[D_BODY].head) && now - c->t0 >= d->body_s) {
        char id[72], msg[128];
        http_request_id(h, NULL, 0, id);
        snprintf(msg, sizeof msg, "the request body did not arrive within %.0f ms (--body-timeout-ms)", d->body_s * 1e3);
        ragd_buf_reset(&d->reply);
        http_raw_error(&d->reply, 408, "request_timeout", msg, id, 0, NULL);
        ssize_t w = send(c->fd, d->reply.data, d->reply.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        shutdown(c->fd, SHUT_RDWR);
        set_state(d, c, D_DOOMED, now);
        d->cnt[RAGD_REJECT_BODY_TIMEOUT]++;
        ragd_metrics_rejected(h->cfg.metrics, RAGD_REJECT_BODY_TIMEOUT);
    }
    while ((c = d->lists[D_IDLE].head) && now - c->t0 >= d->header_s) { /* keep-alive without a next request */
        shutdown(c->fd, SHUT_RDWR);
        set_state(d, c, D_DOOMED, now);
    }
    while ((c = d->lists[D_DOOMED].head) && now - c->t0 >= DOOMED_S) forget(d, c); /* libmicrohttpd lost it */
    pthread_mutex_unlock(&d->mu);
    if (d->paused_until > 0 && now >= d->paused_until && d->lfd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = d->lfd};
        epoll_ctl(d->epfd, EPOLL_CTL_MOD, d->lfd, &ev);
        d->paused_until = 0;
    }
    /* after large requests: give the freed heap pages back to the OS (glibc keeps them otherwise) */
    if (atomic_load(&h->trim_wanted) && now - d->t_trim >= TRIM_EVERY_S) {
        atomic_store(&h->trim_wanted, false);
        malloc_trim(0);
        d->t_trim = now;
    }
    /* under attack, one summary line every 10 s instead of one per connection */
    if (now - d->t_summary >= 10) {
        static const ragd_reject_reason shown[] = {RAGD_REJECT_EVICTED, RAGD_REJECT_HEADER_TIMEOUT, RAGD_REJECT_BODY_TIMEOUT,
                                                   RAGD_REJECT_CLIENT_LIMIT, RAGD_REJECT_CONN_LIMIT, RAGD_REJECT_BAD_HTTP};
        static const char *const what[] = {"pending heads evicted (table full)", "heads past the deadline",
                                           "bodies past the deadline", "refused by the per-client cap",
                                           "refused: no connection slot", "malformed HTTP heads"};
        char line[512];
        size_t len = 0;
        for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++) {
            uint64_t dn = d->cnt[shown[i]] - d->cnt_logged[shown[i]];
            if (dn && len < sizeof line - 80)
                len += (size_t)snprintf(line + len, sizeof line - len, "%s%llu %s", len ? ", " : "", (unsigned long long)dn, what[i]);
            d->cnt_logged[shown[i]] = d->cnt[shown[i]];
        }
        if (len) RAGD_WARN("http: last %.0f s: %s (pending %d, open %d)", now - d->t_summary, line, d->lists[D_HEAD].n, d->n_live);
        d->t_summary = now;
    }
}

static void *door_main(void *arg) {
    http_door *d = arg;
    struct epoll_event evs[256];
    d->t_summary = ragd_now_s();
    while (!atomic_load(&d->stop)) {
        int n = epoll_wait(d->epfd, evs, 256, TICK_MS);
        double now = ragd_now_s();
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == d->efd) {
                uint64_t x;
                ssize_t r = read(d->efd, &x, sizeof x);
                (void)r;
                on_injected(d, now);
                continue;
            }
            if (fd == d->lfd) {
                on_accept(d, now);
                continue;
            }
            dconn *c = (size_t)fd < d->n_by_fd ? d->by_fd[fd] : NULL; /* HEAD/CLOSING: this thread's own */
            if (!c) continue;
            bool hup = evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
            if (c->st == D_HEAD) on_head_bytes(d, c, hup, now);
            else if (c->st == D_CLOSING) on_closing_bytes(d, c);
        }
        if (atomic_load(&d->quiesce) && !d->listener_closed) {
            close_listener(d);
            dconn *c;
            while ((c = d->lists[D_HEAD].head)) /* not served yet: told so, not reset */
                door_reply(d, c, 503, "shutting_down", "the server is shutting down", NULL, 0, RAGD_REJECT_SHUTDOWN, now);
        }
        tick(d, now);
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* public (http_internal.h) */

ragd_status http_door_open(ragd_http *h, const struct sockaddr *sa, socklen_t salen, ragd_err *err) {
    const ragd_serve_opts *o = h->cfg.opts;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return ragd_err_set(err, RAGD_EIO, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, sa, salen) || listen(fd, 4096)) {
        int e = errno;
        close(fd);
        return ragd_err_set(err, RAGD_EIO, "cannot listen on %s:%lld: %s", o->host, (long long)o->port, strerror(e));
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    http_door *d = ragd_xcalloc(1, sizeof *d);
    d->h = h;
    d->lfd = fd;
    d->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    d->max_conn = (int)o->max_connections;
    d->reserve = d->max_conn >= 16 ? d->max_conn / 16 : 1;
    if (d->reserve >= d->max_conn) d->reserve = 0;
    d->per_client = (int)o->max_connections_per_client;
    d->max_closing = d->max_conn / 4 + 16;
    d->header_s = (double)o->header_timeout_ms / 1e3;
    d->body_s = (double)o->body_timeout_ms / 1e3;
    d->lim.max_head = (size_t)o->max_header_bytes;
    d->lim.max_target = (size_t)o->max_header_bytes - 64 > 8192 ? 8192 : (size_t)o->max_header_bytes - 64;
    d->lim.max_fields = 128;
    d->peek_cap = d->lim.max_head + 1;
    d->peek = ragd_xmalloc(d->peek_cap);
    d->ip_cap = 64;
    while (d->ip_cap < 4 * (size_t)(2 * d->max_conn + 1)) d->ip_cap *= 2;
    d->ips = ragd_xcalloc(d->ip_cap, sizeof *d->ips);
    if (getrandom(&d->ip_seed, sizeof d->ip_seed, GRND_NONBLOCK) != sizeof d->ip_seed)
        d->ip_seed = (uint64_t)ragd_now_ns() * 0x9e3779b97f4a7c15ULL;
    d->ip_seed |= 1;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event le = {.events = EPOLLIN, .data.fd = fd}, ee = {.events = EPOLLIN, .data.fd = d->efd};
    if (d->efd < 0 || d->epfd < 0 || epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &le) || epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->efd, &ee)) {
        int e = errno;
        http_door_free(d);
        return ragd_err_set(err, RAGD_EIO, "epoll/eventfd: %s", strerror(e));
    }
    h->door = d;
    return RAGD_OK;
}

int http_door_port(const http_door *d) { return d->port; }

void http_door_run(http_door *d) {
    if (pthread_create(&d->th, NULL, door_main, d)) RAGD_DIE("cannot start the HTTP door thread");
    d->running = true;
}

static void wake(http_door *d) {
    uint64_t one = 1;
    ssize_t w = write(d->efd, &one, sizeof one);
    (void)w;
}

bool http_door_inject(http_door *d, int fd, const struct sockaddr_storage *sa, socklen_t sl) {
    injected *q = ragd_xcalloc(1, sizeof *q);
    q->fd = fd;
    q->alen = sl <= sizeof q->addr ? sl : sizeof q->addr;
    memcpy(&q->addr, sa, q->alen);
    pthread_mutex_lock(&d->mu);
    bool open = !atomic_load(&d->stop); /* set before the door thread's last drain (http_door_stop) */
    if (open) {
        q->next = d->inj;
        d->inj = q;
    }
    pthread_mutex_unlock(&d->mu);
    if (!open) {
        close(fd);
        free(q);
        return false;
    }
    wake(d);
    return true;
}

void http_door_quiesce(http_door *d) {
    if (!d || atomic_exchange(&d->quiesce, true)) return;
    if (!d->running) {
        close_listener(d);
        return;
    }
    wake(d);
    /* synchronous: when this returns, connect() is refused (bounded wait: the door thread never blocks) */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 2;
    pthread_mutex_lock(&d->mu);
    while (!d->listener_closed)
        if (pthread_cond_timedwait(&d->cv, &d->mu, &until)) break;
    pthread_mutex_unlock(&d->mu);
}

void http_door_stop(http_door *d) {
    if (!d) return;
    if (d->running) {
        atomic_store(&d->stop, true);
        wake(d);
        pthread_join(d->th, NULL);
        d->running = false;
    }
    close_listener(d);
    pthread_mutex_lock(&d->mu);
    injected *q = d->inj; /* handed over by TLS relays, never admitted */
    d->inj = NULL;
    pthread_mutex_unlock(&d->mu);
    while (q) {
        injected *next = q->next;
        close(q->fd);
        free(q);
        q = next;
    }
    dconn *c;
    while ((c = d->lists[D_HEAD].head)) close_conn(d, c);
    while ((c = d->lists[D_CLOSING].head)) close_conn(d, c);
}

void http_door_free(http_door *d) {
    if (!d) return;
    http_door_stop(d);
    for (int st = D_BODY; st < D_NSTATE; st++) /* libmicrohttpd is stopped: what is left is stale */
        while (d->lists[st].head) forget(d, d->lists[st].head);
    if (d->efd >= 0) close(d->efd);
    if (d->epfd >= 0) close(d->epfd);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    ragd_buf_free(&d->reply);
    free(d->peek);
    free(d->ips);
    free(d->by_fd);
    free(d);
}

/* The record of libmicrohttpd connection c (under mu), or NULL when the door does not track it. */
static dconn *record_of(http_door *d, struct MHD_Connection *mc, bool started) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci || ci->connect_fd < 0 || (size_t)ci->connect_fd >= d->n_by_fd) return NULL;
    dconn *c = d->by_fd[ci->connect_fd];
    if (!c || c->st < D_BODY) return NULL;
    if (started && !c->mc) c->mc = mc;
    return c->mc == mc ? c : NULL;
}

void http_door_mhd_notify(http_door *d, struct MHD_Connection *mc, bool started) {
    pthread_mutex_lock(&d->mu);
    dconn *c = record_of(d, mc, started);
    if (c && !started) forget(d, c);
    pthread_mutex_unlock(&d->mu);
}

bool http_door_event(http_door *d, struct MHD_Connection *mc, http_conn_event ev) {
    if (!d) return true;
    bool ok = true;
    double now = ragd_now_s();
    pthread_mutex_lock(&d->mu);
    dconn *c = record_of(d, mc, false);
    if (c && c->st == D_DOOMED) ok = ev == HTTP_CONN_DONE;
    else if (c) switch (ev) {
        case HTTP_CONN_HEAD:
            if (c->st == D_IDLE) set_state(d, c, D_BODY, now); /* the first head's deadline began at the door */
            break;
        case HTTP_CONN_BUSY:
            if (c->st != D_BUSY) set_state(d, c, D_BUSY, now);
            break;
        case HTTP_CONN_DONE:
            if (c->st != D_IDLE) set_state(d, c, D_IDLE, now);
            break;
        }
    pthread_mutex_unlock(&d->mu);
    return ok;
}
