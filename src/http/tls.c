/* tls.c — HTTPS on the server's port (--tls-cert FILE --tls-key FILE), with OpenSSL.
 *
 * TLS ends here, in front of the door: the door (door.c) peeks at plaintext request heads and libmicrohttpd
 * reads plaintext, so each TLS connection gets a relay thread that runs the handshake and then pumps bytes
 * between the TLS socket and one end of a Unix socket pair; the other end goes to the door as if it had
 * been accepted from the client's address. Everything after that — the strict head parser, deadlines,
 * connection caps, JSON protocol errors, keep-alive — is the same over HTTPS as over HTTP.
 *
 *   accept (door thread) ─▶ http_tls_adopt: relay thread ─▶ handshake (≤ --header-timeout-ms; else closed)
 *       ─▶ socketpair: one end to the door (http_door_inject) ─▶ pump both ways ─▶ one side ends:
 *          the client's close_notify → shutdown(SHUT_WR) of the plaintext end after what is buffered;
 *          the server's end closed → what is buffered, then close_notify; an error, or the client's EOF without
 *          close_notify → both closed (the server sees its end closed: a disconnect).
 *
 * Invariants: a relay owns its TLS socket, its SSL and its end of the pair; at most `cap` relays run (more
 * handshakes are closed at once); http_tls_free waits for every relay (each checks `stop` at least every
 * 100 ms) before freeing the context, and is called after the door and libmicrohttpd are stopped.
 * TLS 1.2 or later; renegotiation off.
 */
#include "http/http_internal.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

enum { RELAY_BUF = 16384, POLL_MS = 100 };
#define LINGER_S 1.0 /* after the server's last reply: how long the client's unread input is drained */

struct http_tls {
    SSL_CTX *ctx;
    ragd_http *h;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n_relays, cap;
    atomic_bool stop;
    double handshake_s;
    double t_refused_log;
    uint64_t refused;
};

typedef struct relay {
    http_tls *t;
    int fd;
    struct sockaddr_storage addr;
    socklen_t alen;
} relay;

/* OpenSSL's first error as text (the thread's error queue: the cause, e.g. "no start line", before the
 * consequences), for messages */
static const char *ossl_reason(char *buf, size_t cap) {
    unsigned long e = ERR_peek_error();
    if (!e) return "no reason given";
    ERR_error_string_n(e, buf, cap);
    ERR_clear_error();
    return buf;
}

static ragd_status load_file_check(const char *flag, const char *path, ragd_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ragd_err_set(err, RAGD_EINVAL, "%s %s: cannot read it: %s", flag, path, strerror(errno));
    fclose(f);
    return RAGD_OK;
}

ragd_status http_tls_create(ragd_http *h, const char *cert, const char *key, http_tls **out, ragd_err *err) {
    *out = NULL;
    if (!cert != !key)
        return ragd_err_set(err, RAGD_EINVAL, "HTTPS needs both --tls-cert and --tls-key (only %s is given)",
                            cert ? "--tls-cert" : "--tls-key");
    if (!cert) return RAGD_OK;
    if (load_file_check("--tls-cert", cert, err) || load_file_check("--tls-key", key, err)) return RAGD_EINVAL;
    char why[256];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return ragd_err_set(err, RAGD_ENOMEM, "OpenSSL: cannot create a TLS context: %s", ossl_reason(why, sizeof why));
    ragd_status st = RAGD_OK;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        st = ragd_err_set(err, RAGD_EINVAL, "OpenSSL: cannot require TLS 1.2: %s", ossl_reason(why, sizeof why));
    else if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        st = ragd_err_set(err, RAGD_EINVAL, "--tls-cert %s: not a PEM certificate (chain): %s", cert, ossl_reason(why, sizeof why));
    else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_error(); /* a key that parsed but is another certificate's: checked while loading */
        if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
            st = ragd_err_set(err, RAGD_EINVAL, "--tls-key %s does not belong to the certificate of --tls-cert %s: %s", key,
                              cert, ossl_reason(why, sizeof why));
        else
            st = ragd_err_set(err, RAGD_EINVAL, "--tls-key %s: not a PEM private key (an encrypted key is not supported): %s",
                              key, ossl_reason(why, sizeof why));
    } else if (SSL_CTX_check_private_key(ctx) != 1)
        st = ragd_err_set(err, RAGD_EINVAL, "--tls-key %s does not belong to the certificate of --tls-cert %s: %s", key, cert,
                          ossl_reason(why, sizeof why));
    if (st) {
        SSL_CTX_free(ctx);
        return st;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    http_tls *t = ragd_xcalloc(1, sizeof *t);
    t->ctx = ctx;
    t->h = h;
    t->cap = (int)(2 * h->cfg.opts->max_connections + 64); /* as many as libmicrohttpd may hold */
    t->handshake_s = (double)h->cfg.opts->header_timeout_ms / 1e3;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    *out = t;
    return RAGD_OK;
}

/* waits until fd is ready for `events` or POLL_MS pass; false when the relay should give up (stop) */
static bool wait_fd(http_tls *t, int fd, short events) {
    struct pollfd p = {.fd = fd, .events = events};
    (void)poll(&p, 1, POLL_MS);
    return !atomic_load(&t->stop);
}

static bool handshake(relay *rl, SSL *ssl) {
    const double until = ragd_now_s() + rl->t->handshake_s;
    for (;;) {
        ERR_clear_error();
        int r = SSL_accept(ssl);
        if (r == 1) return true;
        int e = SSL_get_error(ssl, r);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!ev) { /* not TLS, an unknown CA on the client's side, a reset: the client's problem */
            char why[256];
            RAGD_DEBUG("tls: handshake with a client failed: %s", ossl_reason(why, sizeof why));
            return false;
        }
        if (ragd_now_s() >= until) {
            RAGD_DEBUG("tls: no TLS handshake within --header-timeout-ms: closed");
            return false;
        }
        if (!wait_fd(rl->t, rl->fd, ev)) return false;
    }
}

/* After the last reply: FIN, then what the client still sends is read and dropped for up to LINGER_S, so
 * that closing does not reset the connection before the client has read the reply (as the door does). */
static void linger(http_tls *t, int fd, bool client_done) {
    shutdown(fd, SHUT_WR);
    char sink[4096];
    const double until = ragd_now_s() + LINGER_S;
    while (!client_done && ragd_now_s() < until && !atomic_load(&t->stop)) {
        ssize_t n = recv(fd, sink, sizeof sink, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
        if (n < 0) wait_fd(t, fd, POLLIN);
    }
}

/* Moves bytes both ways until both directions are done or one fails. */
static void pump(relay *rl, SSL *ssl, int p) {
    http_tls *t = rl->t;
    char *in = ragd_xmalloc(RELAY_BUF), *out = ragd_xmalloc(RELAY_BUF); /* client → server, server → client */
    size_t in_len = 0, in_off = 0, out_len = 0, out_off = 0;
    bool tls_eof = false, p_eof = false, p_shut = false;
    while (!atomic_load(&t->stop)) {
        bool moved = false;
        short tls_ev = 0, p_ev = 0;
        if (!tls_eof && !in_len) {
            ERR_clear_error();
            int r = SSL_read(ssl, in, RELAY_BUF);
            if (r > 0) in_len = (size_t)r, in_off = 0, moved = true;
            else {
                int e = SSL_get_error(ssl, r);
                if (e == SSL_ERROR_WANT_READ) tls_ev |= POLLIN;
                else if (e == SSL_ERROR_WANT_WRITE) tls_ev |= POLLOUT;
                else if (e == SSL_ERROR_ZERO_RETURN) tls_eof = true; /* close_notify: the client sends no more */
                else break; /* EOF without close_notify, a reset, a bad record: the connection is gone (no SSL_shutdown after a fatal error) */
            }
        }
        if (in_len) {
            ssize_t w = send(p, in + in_off, in_len - in_off, MSG_NOSIGNAL);
            if (w > 0) {
                in_off += (size_t)w, moved = true;
                if (in_off == in_len) in_len = 0;
            } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) p_ev |= POLLOUT;
            else break; /* the server side is gone */
        }
        if (tls_eof && !in_len && !p_shut) {
            shutdown(p, SHUT_WR);
            p_shut = true;
        }
        if (!p_eof && !out_len) {
            ssize_t n = recv(p, out, RELAY_BUF, 0);
            if (n > 0) out_len = (size_t)n, out_off = 0, moved = true;
            else if (n == 0) p_eof = true;
            else if (errno == EAGAIN || errno == EINTR) p_ev |= POLLIN;
            else p_eof = true;
        }
        if (out_len) {
            ERR_clear_error();
            int r = SSL_write(ssl, out + out_off, (int)(out_len - out_off));
            if (r > 0) {
                out_off += (size_t)r, moved = true;
                if (out_off == out_len) out_len = 0;
            } else {
                int e = SSL_get_error(ssl, r);
                if (e == SSL_ERROR_WANT_WRITE) tls_ev |= POLLOUT;
                else if (e == SSL_ERROR_WANT_READ) tls_ev |= POLLIN;
                else break; /* the client is gone */
            }
        }
        if (p_eof && !out_len) { /* the server closed: its reply is out; tell the client, then linger */
            ERR_clear_error();
            (void)SSL_shutdown(ssl);
            linger(t, rl->fd, tls_eof);
            break;
        }
        if (moved) continue;
        struct pollfd pf[2] = {{.fd = rl->fd, .events = tls_ev}, {.fd = p, .events = p_ev}};
        (void)poll(pf, 2, POLL_MS);
    }
    free(in);
    free(out);
}

static void *relay_main(void *arg) {
    relay *rl = arg;
    http_tls *t = rl->t;
    SSL *ssl = SSL_new(t->ctx);
    int sv[2] = {-1, -1};
    if (ssl && SSL_set_fd(ssl, rl->fd) == 1 && handshake(rl, ssl)) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
            RAGD_WARN("tls: socketpair: %s: connection closed", strerror(errno));
        else if (http_door_inject(t->h->door, sv[1], &rl->addr, rl->alen)) /* the door owns sv[1] now */
            pump(rl, ssl, sv[0]);
    }
    SSL_free(ssl);
    if (sv[0] >= 0) close(sv[0]);
    close(rl->fd);
    ERR_clear_error();
    free(rl);
    pthread_mutex_lock(&t->mu);
    t->n_relays--;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

void http_tls_adopt(http_tls *t, int fd, const struct sockaddr_storage *sa, socklen_t sl) {
    pthread_mutex_lock(&t->mu);
    bool full = t->n_relays >= t->cap || atomic_load(&t->stop);
    if (!full) t->n_relays++;
    else t->refused++;
    double now = ragd_now_s();
    bool log = full && now - t->t_refused_log > 10;
    if (log) t->t_refused_log = now;
    uint64_t refused = t->refused;
    pthread_mutex_unlock(&t->mu);
    if (full) {
        if (log) RAGD_WARN("tls: %d connections in TLS already: new ones closed (%llu so far)", t->cap, (unsigned long long)refused);
        close(fd);
        return;
    }
    relay *rl = ragd_xcalloc(1, sizeof *rl);
    rl->t = t;
    rl->fd = fd;
    rl->alen = sl <= sizeof rl->addr ? sl : sizeof rl->addr;
    memcpy(&rl->addr, sa, rl->alen);
    pthread_attr_t at;
    pthread_t th;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 256 << 10);
    int e = pthread_create(&th, &at, relay_main, rl);
    pthread_attr_destroy(&at);
    if (e) {
        RAGD_WARN("tls: cannot start a relay thread: %s: connection closed", strerror(e));
        close(fd);
        free(rl);
        pthread_mutex_lock(&t->mu);
        t->n_relays--;
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
    }
}

void http_tls_free(http_tls *t) {
    if (!t) return;
    atomic_store(&t->stop, true);
    pthread_mutex_lock(&t->mu);
    while (t->n_relays > 0) pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    SSL_CTX_free(t->ctx);
    free(t);
}
