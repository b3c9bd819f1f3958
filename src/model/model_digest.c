/* model_digest.c — SHA-256 of every weight file of the served models, for /diagnostics (issue 15), computed
 * off the request path: one background thread, started once the models are ready, at a low CPU priority
 * (nice 10), hashes the files' mapped bytes (what the model was loaded from and serves) one after the other,
 * 4 MiB at a time. Until a file is done its digest reads "pending"; a reader never waits for it.
 *
 * Invariants: the entries (model, file name, bytes) are fixed at create; only `state` and `hex` change, on the
 * hashing thread: hex is written before state is stored DONE (release), and read only after state is loaded
 * DONE (acquire). The models must outlive the digests (ragd_model_digests_free joins the thread first).
 *
 * ragd_model_digest_of folds a model's files into one value (TEI's /info "model_sha").
 *
 * Test hook: RAGD_TEST_DIGEST_DELAY_MS=N waits N ms before each file, so that tests see "pending".
 */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "model/model_internal.h"

enum { D_PENDING = 0, D_DONE, D_FAILED };

typedef struct digest_entry {
    const ragd_model *m;
    const char *name;        /* the file's name (priv->map_names) */
    const uint8_t *data;     /* [size] its mapping */
    size_t size;
    _Atomic int state;
    char hex[65];            /* valid once state is D_DONE */
    char why[96];            /* valid once state is D_FAILED */
} digest_entry;

struct ragd_model_digests {
    digest_entry *e;         /* [n] */
    size_t n;
    pthread_t th;
    bool started;
    atomic_bool stop;
    long delay_ms;           /* test hook */
};

ragd_model_digests *ragd_model_digests_create(const ragd_model *const *models, int n_models) {
    ragd_model_digests *d = ragd_xcalloc(1, sizeof *d);
    size_t n = 0;
    for (int i = 0; i < n_models; i++) n += ((const ragd_model_priv *)models[i]->priv)->n_maps;
    d->e = ragd_xcalloc(n ? n : 1, sizeof *d->e);
    for (int i = 0; i < n_models; i++) {
        const ragd_model_priv *p = models[i]->priv;
        for (size_t k = 0; k < p->n_maps; k++) {
            digest_entry *e = &d->e[d->n++];
            e->m = models[i];
            e->name = p->map_names[k];
            e->data = p->maps[k].data;
            e->size = p->maps[k].size;
            atomic_init(&e->state, D_PENDING);
        }
    }
    const char *dl = getenv("RAGD_TEST_DIGEST_DELAY_MS");
    if (dl && *dl) {
        d->delay_ms = strtol(dl, NULL, 10);
        RAGD_WARN("RAGD_TEST_DIGEST_DELAY_MS=%ld: a test hook delays the weight digests", d->delay_ms);
    }
    return d;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* false when stopped before the end */
static bool hash_one(ragd_model_digests *d, digest_entry *e) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char md[32];
    unsigned int len = 0;
    bool ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    const size_t chunk = (size_t)4 << 20;
    for (size_t off = 0; ok && off < e->size; off += chunk) {
        if (atomic_load(&d->stop)) {
            EVP_MD_CTX_free(c);
            return false;
        }
        ok = EVP_DigestUpdate(c, e->data + off, e->size - off < chunk ? e->size - off : chunk);
    }
    ok = ok && EVP_DigestFinal_ex(c, md, &len) && len == 32;
    EVP_MD_CTX_free(c);
    if (!ok) {
        snprintf(e->why, sizeof e->why, "OpenSSL's SHA-256 failed");
        atomic_store_explicit(&e->state, D_FAILED, memory_order_release);
        return true;
    }
    for (int i = 0; i < 32; i++) snprintf(e->hex + 2 * i, 3, "%02x", md[i]);
    atomic_store_explicit(&e->state, D_DONE, memory_order_release);
    return true;
}

static void *digest_main(void *arg) {
    ragd_model_digests *d = arg;
    /* below the scheduler and the HTTP workers (a Linux thread has its own nice value); best effort */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    double t0 = ragd_now_s();
    size_t bytes = 0;
    for (size_t i = 0; i < d->n && !atomic_load(&d->stop); i++) {
        for (long w = 0; w < d->delay_ms && !atomic_load(&d->stop); w += 10) sleep_ms(10);
        if (!hash_one(d, &d->e[i])) break;
        bytes += d->e[i].size;
    }
    if (!atomic_load(&d->stop))
        RAGD_INFO("weight digests: %zu file%s, %.1f MiB hashed (sha256) in %.0f ms", d->n, d->n == 1 ? "" : "s",
                  bytes / 1048576.0, (ragd_now_s() - t0) * 1e3);
    return NULL;
}

ragd_status ragd_model_digests_start(ragd_model_digests *d, ragd_err *err) {
    if (!d || d->started) return RAGD_OK;
    if (pthread_create(&d->th, NULL, digest_main, d))
        return ragd_err_set(err, RAGD_ENOMEM, "cannot start the weight digest thread");
    d->started = true;
    return RAGD_OK;
}

void ragd_model_digests_json(ragd_model_digests *d, const ragd_model *m, ragd_buf *out) {
    ragd_buf_putc(out, '[');
    bool first = true;
    for (size_t i = 0; d && i < d->n; i++) {
        digest_entry *e = &d->e[i];
        if (e->m != m) continue;
        ragd_buf_puts(out, first ? "{\"file\":" : ",{\"file\":");
        first = false;
        ragd_buf_json_str(out, e->name, strlen(e->name));
        ragd_buf_printf(out, ",\"bytes\":%zu,\"sha256\":", e->size);
        int st = atomic_load_explicit(&e->state, memory_order_acquire);
        if (st == D_DONE) ragd_buf_printf(out, "\"%s\"}", e->hex);
        else if (st == D_FAILED) {
            ragd_buf_puts(out, "null,\"error\":");
            ragd_buf_json_str(out, e->why, strlen(e->why));
            ragd_buf_putc(out, '}');
        } else ragd_buf_puts(out, "\"pending\"}");
    }
    ragd_buf_putc(out, ']');
}

ragd_digest_state ragd_model_digest_of(ragd_model_digests *d, const ragd_model *m, char hex[65]) {
    size_t n = 0, first = 0;
    for (size_t i = 0; d && i < d->n; i++) {
        if (d->e[i].m != m) continue;
        int st = atomic_load_explicit(&d->e[i].state, memory_order_acquire);
        if (st == D_FAILED) return RAGD_DIGEST_FAILED;
        if (st != D_DONE) return RAGD_DIGEST_PENDING;
        if (!n++) first = i;
    }
    if (!n) return RAGD_DIGEST_FAILED;
    if (n == 1) {
        memcpy(hex, d->e[first].hex, 65);
        return RAGD_DIGEST_DONE;
    }
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    for (size_t i = first; ok && i < d->n; i++) { /* the sha256sum listing: "<hex>  <file>\n" */
        if (d->e[i].m != m) continue;
        ok = EVP_DigestUpdate(c, d->e[i].hex, 64) && EVP_DigestUpdate(c, "  ", 2) &&
             EVP_DigestUpdate(c, d->e[i].name, strlen(d->e[i].name)) && EVP_DigestUpdate(c, "\n", 1);
    }
    unsigned char md[32];
    unsigned int len = 0;
    ok = ok && EVP_DigestFinal_ex(c, md, &len) && len == 32;
    EVP_MD_CTX_free(c);
    if (!ok) return RAGD_DIGEST_FAILED;
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return RAGD_DIGEST_DONE;
}

void ragd_model_digests_free(ragd_model_digests *d) {
    if (!d) return;
    atomic_store(&d->stop, true);
    if (d->started) pthread_join(d->th, NULL);
    free(d->e);
    free(d);
}
