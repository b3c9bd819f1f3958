/* pool.c — a fork-join thread pool for the CPU backend. The calling thread runs task 0 and n-1 workers
 * run the others; ragd_cpu_pool_run returns when every task is done. Tasks are split statically (each
 * ith gets a fixed share), so which thread computes an element never changes its value: every element
 * has exactly one fixed sequence of float operations (cpu_internal.h). */
#include <stdlib.h>

#include "engine/cpu/cpu_internal.h"

typedef struct {
    ragd_cpu_pool *p;
    int ith;
} worker_arg;

static void *worker(void *arg) {
    worker_arg *w = arg;
    ragd_cpu_pool *p = w->p;
    int ith = w->ith;
    free(w);
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->cv_start, &p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->generation;
        ragd_cpu_task_fn fn = p->fn;
        void *ctx = p->ctx;
        int nth = p->n_active;
        pthread_mutex_unlock(&p->mu);
        /* workers with ith >= nth sit this job out */
        if (ith < nth) fn(ctx, ith, nth);
        pthread_mutex_lock(&p->mu);
        if (--p->n_running == 0) pthread_cond_signal(&p->cv_done);
        pthread_mutex_unlock(&p->mu);
    }
}

ragd_status ragd_cpu_pool_init(ragd_cpu_pool *p, int n_threads, ragd_err *err) {
    memset(p, 0, sizeof *p);
    if (n_threads < 1) n_threads = 1;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_start, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    if (n_threads == 1) return RAGD_OK;
    p->threads = ragd_xcalloc((size_t)n_threads - 1, sizeof(pthread_t));
    for (int i = 1; i < n_threads; i++) {
        worker_arg *w = ragd_xmalloc(sizeof *w);
        w->p = p;
        w->ith = i;
        if (pthread_create(&p->threads[i - 1], NULL, worker, w) != 0) {
            free(w);
            p->n_threads = i; /* threads [1, i) exist */
            ragd_cpu_pool_free(p);
            return ragd_err_set(err, RAGD_ENOMEM, "cpu backend: cannot start thread %d of %d", i, n_threads);
        }
    }
    return RAGD_OK;
}

void ragd_cpu_pool_free(ragd_cpu_pool *p) {
    if (!p) return;
    if (p->threads) {
        pthread_mutex_lock(&p->mu);
        p->quit = true;
        pthread_cond_broadcast(&p->cv_start);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i - 1], NULL);
        free(p->threads);
        p->threads = NULL;
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_start);
    pthread_cond_destroy(&p->cv_done);
}

void ragd_cpu_pool_run(ragd_cpu_pool *p, ragd_cpu_task_fn fn, void *ctx, int nth) {
    if (nth > p->n_threads) nth = p->n_threads;
    if (nth <= 1 || p->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_active = nth;
    p->n_running = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, nth);
    pthread_mutex_lock(&p->mu);
    while (p->n_running > 0) pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
