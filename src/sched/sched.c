/* sched.c — the device thread: engine startup and warm-up, the bounded task queues (admission),
 * deadlines and cancellation of queued work, and the embed/rerank batcher.
 *
 * Loop (device thread): sleep until work → sweep queues (cancelled / past deadline / client gone)
 * → at most one embed-or-rerank batch (alternating roles) → at most one generation step. So decode
 * steps of running chats interleave with pooling batches and neither starves the other.
 *
 * Pool batches: sequences are taken in FIFO order across tasks until max_batch_tokens or the model's
 * batch_seqs would be exceeded (a task's sequences may span batches). Under concurrent traffic (the previous
 * batch held several requests and ended less than two delays ago), if the batch is not full and the oldest waiting sequence
 * arrived less than batch_delay_us ago (and no generation is running), the thread waits for more
 * work for the rest of that delay — a bounded fill delay. A lone request on an idle device never
 * waits.
 *
 * Lock order: s->mu may be held while calling sink->alive (which takes the request's lock); on_gen
 * and on_done are always called with s->mu released.
 */
#include "sched/sched_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

const char *ragd_role_name(ragd_role r) {
    static const char *const names[] = {"embed", "rerank", "chat"};
    return (unsigned)r < RAGD_ROLE_COUNT ? names[r] : "?";
}

static ragd_role role_of(const ragd_task *t) {
    return t->kind == RAGD_TASK_EMBED ? RAGD_ROLE_EMBED : t->kind == RAGD_TASK_RERANK ? RAGD_ROLE_RERANK : RAGD_ROLE_CHAT;
}
static ragd_mtask mtask_of(const ragd_task *t) {
    return t->kind == RAGD_TASK_EMBED ? RAGD_MTASK_EMBED : t->kind == RAGD_TASK_RERANK ? RAGD_MTASK_RERANK : RAGD_MTASK_GENERATE;
}

static int64_t task_tokens(const ragd_task *t) {
    int64_t n = t->seq_start[t->n_seqs];
    return t->kind == RAGD_TASK_GENERATE ? n * (t->n_choices > 0 ? t->n_choices : 1) : n;
}

/* ---------------------------------------------------------------------------------------------- */
/* finishing tasks */

void ragd_sched_finish(ragd_sched *s, ragd_task *t, ragd_status st, const char *fmt, ...) {
    t->status = st;
    if (st != RAGD_OK && fmt) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        ragd_err_set(&t->err, st, "%s", msg);
    }
    if (st == RAGD_ETIMEOUT) ragd_metrics_cancelled(s->o.metrics, RAGD_CANCEL_TIMEOUT);
    if (st == RAGD_ECANCELLED) ragd_metrics_cancelled(s->o.metrics, RAGD_CANCEL_DISCONNECT);
    if (st != RAGD_OK)
        RAGD_DEBUG("[%s] %s task ended: %s: %s", t->req_id ? t->req_id : "-", ragd_role_name(role_of(t)),
                   ragd_status_name(st), ragd_err_msg(&t->err));
    pthread_mutex_lock(&s->mu);
    s->in_flight--;
    pthread_mutex_unlock(&s->mu);
    t->sink->on_done(t->ctx); /* the task is the caller's again from here */
}

/* Under s->mu. */
void ragd_sched_queue_remove(ragd_sched *s, ragd_role r, ragd_task *t) {
    task_queue *q = &s->q[r];
    ragd_task *prev = NULL;
    for (ragd_task *x = q->head; x; prev = x, x = x->next) {
        if (x != t) continue;
        if (prev) prev->next = x->next;
        else q->head = x->next;
        if (q->tail == x) q->tail = prev;
        x->next = NULL;
        s->queued_reqs--;
        s->queued_tokens -= x->queued_tokens;
        x->queued_tokens = 0;
        ragd_metrics_set_queue(s->o.metrics, s->queued_reqs, s->queued_tokens);
        return;
    }
}

/* True if the task must stop now: cancelled, past its deadline or (when poll_client) its client is
 * gone. *why gets the status to finish it with. */
bool ragd_sched_task_gone(ragd_sched *s, ragd_task *t, double now, bool poll_client, ragd_status *why) {
    if (atomic_load(&t->cancel)) {
        *why = RAGD_ECANCELLED;
        return true;
    }
    if (t->deadline > 0 && now > t->deadline) {
        *why = RAGD_ETIMEOUT;
        return true;
    }
    if (poll_client && t->sink->alive && !t->sink->alive(t->ctx)) {
        atomic_store(&t->cancel, true);
        *why = RAGD_ECANCELLED;
        return true;
    }
    return false;
}

static void finish_gone(ragd_sched *s, ragd_task *t, ragd_status why) {
    if (why == RAGD_ETIMEOUT)
        ragd_sched_finish(s, t, why, "the request's deadline passed after %.0f ms", (ragd_now_s() - t->t_arrival) * 1e3);
    else ragd_sched_finish(s, t, why, "the client closed the connection");
}

/* Removes queued tasks that were cancelled, timed out or lost their client. started_only = false: the
 * tasks not started yet, of every role (client polls — a syscall per task — at most every 20 ms);
 * started_only = true: the partially batched embed/rerank tasks, which the first sweep skips. */
static void sweep_tasks(ragd_sched *s, bool started_only) {
    double now = ragd_now_s();
    bool poll = false;
    if (!started_only && now - s->last_sweep > 0.02) poll = true, s->last_sweep = now;
    ragd_task *gone = NULL;
    pthread_mutex_lock(&s->mu);
    for (int r = 0; r < (started_only ? RAGD_ROLE_CHAT : RAGD_ROLE_COUNT); r++) {
        for (ragd_task *t = s->q[r].head, *nx; t; t = nx) {
            nx = t->next;
            ragd_status why;
            bool started = t->next_seq > 0 || t->choices_admitted > 0;
            if (started_only ? t->next_seq == 0 : started) continue;
            if (!ragd_sched_task_gone(s, t, now, poll, &why)) continue;
            ragd_sched_queue_remove(s, (ragd_role)r, t);
            t->status = why;
            t->next = gone;
            gone = t;
        }
    }
    pthread_mutex_unlock(&s->mu);
    while (gone) {
        ragd_task *t = gone;
        gone = t->next;
        t->next = NULL;
        finish_gone(s, t, t->status);
    }
}

/* Marks sm unusable and fails everything queued for it. Running generation of it is failed by the
 * caller (sched_gen.c). */
void ragd_sched_device_error(ragd_sched *s, ragd_served_model *sm, const ragd_err *err) {
    if (atomic_load(&sm->ready)) { /* only this thread writes: the reason is visible before ready flips */
        char buf[512];
        snprintf(buf, sizeof buf, "device error: %s", ragd_err_msg(err));
        sm->not_ready_reason = ragd_xstrdup(buf);
        atomic_store(&sm->ready, false);
        RAGD_ERROR("model %s is not ready any more: %s", sm->name, buf);
    }
    ragd_task *failed = NULL;
    pthread_mutex_lock(&s->mu);
    for (int r = 0; r < RAGD_ROLE_COUNT; r++) {
        if (s->role_model[r] != sm) continue;
        while (s->q[r].head) {
            ragd_task *t = s->q[r].head;
            ragd_sched_queue_remove(s, (ragd_role)r, t);
            if (r == RAGD_ROLE_CHAT && t->choices_admitted > 0) continue; /* running: gen code fails it */
            t->next = failed;
            failed = t;
        }
    }
    pthread_mutex_unlock(&s->mu);
    while (failed) {
        ragd_task *t = failed;
        failed = t->next;
        t->next = NULL;
        ragd_sched_finish(s, t, RAGD_EDEVICE, "model %s failed on the device: %s", sm->name, ragd_err_msg(err));
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* fault injection (tests only): RAGD_FAULT=ROLE:KIND:N with ROLE embed|rerank|chat, KIND device|internal|nan:
 * from the N-th forward pass of that role on (device: every later one too, as a sticky CUDA error
 * would; internal and nan: that pass only), the engine's result is replaced by the fault.
 * KIND slow: every forward pass of that role takes N ms longer (to hold work in the queue). */

enum { FAULT_NONE = 0, FAULT_DEVICE, FAULT_INTERNAL, FAULT_NAN, FAULT_SLOW };

static void fault_parse(ragd_sched *s) {
    s->fault_kind = FAULT_NONE;
    const char *v = getenv("RAGD_FAULT");
    if (!v) return;
    char role[16], kind[16];
    int n;
    if (sscanf(v, "%15[a-z]:%15[a-z]:%d", role, kind, &n) != 3 || n < 1) {
        RAGD_WARN("RAGD_FAULT=%s ignored (expected role:kind:n)", v);
        return;
    }
    s->fault_role = !strcmp(role, "embed") ? RAGD_ROLE_EMBED : !strcmp(role, "rerank") ? RAGD_ROLE_RERANK : RAGD_ROLE_CHAT;
    s->fault_kind = !strcmp(kind, "device") ? FAULT_DEVICE : !strcmp(kind, "nan") ? FAULT_NAN
                    : !strcmp(kind, "slow") ? FAULT_SLOW : FAULT_INTERNAL;
    s->fault_at = n;
    RAGD_WARN("fault injection on: %s %s from forward pass %d", role, kind, n);
}

/* The slow fault alone (warm-up passes: they must not shift the count of the other kinds). */
static void fault_slow_only(ragd_sched *s, ragd_role r) {
    if (s->fault_kind == FAULT_SLOW && (int)r == s->fault_role) {
        struct timespec ts = {s->fault_at / 1000, (long)(s->fault_at % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

ragd_status ragd_sched_fault(ragd_sched *s, ragd_role r, float *out, size_t n, ragd_err *err) {
    if (s->fault_kind == FAULT_NONE || (int)r != s->fault_role) return RAGD_OK;
    if (s->fault_kind == FAULT_SLOW) {
        struct timespec ts = {s->fault_at / 1000, (long)(s->fault_at % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        return RAGD_OK;
    }
    int c = ++s->fault_count[r];
    if (c < s->fault_at) return RAGD_OK;
    if (s->fault_kind == FAULT_DEVICE) return ragd_err_set(err, RAGD_EDEVICE, "injected device error (RAGD_FAULT)");
    if (c != s->fault_at) return RAGD_OK;
    if (s->fault_kind == FAULT_INTERNAL) return ragd_err_set(err, RAGD_EINTERNAL, "injected engine failure (RAGD_FAULT)");
    for (size_t i = 0; i < n; i++) out[i] = NAN;
    return RAGD_OK;
}

ragd_status ragd_sched_fault_gen(ragd_sched *s, ragd_sample_out *out, int n, ragd_err *err) {
    float dummy = 0;
    bool nan = s->fault_kind == FAULT_NAN && s->fault_role == RAGD_ROLE_CHAT && s->fault_count[RAGD_ROLE_CHAT] + 1 == s->fault_at;
    ragd_status st = ragd_sched_fault(s, RAGD_ROLE_CHAT, &dummy, nan ? 1 : 0, err);
    if (st == RAGD_OK && nan)
        for (int i = 0; i < n; i++) out[i].nonfinite = 1, out[i].token = -1;
    return st;
}

/* ---------------------------------------------------------------------------------------------- */
/* embed / rerank batches */

/* Fills the pool batch for role r. Returns the number of sequences; 0 when nothing is queued or the
 * fill delay says wait (then *wait_until is set). Under s->mu. */
static int pool_collect(ragd_sched *s, ragd_role r, bool may_wait, double *wait_until, int *n_tokens) {
    task_queue *q = &s->q[r];
    *wait_until = 0;
    *n_tokens = 0;
    if (!q->head) return 0;
    int budget = s->o.max_batch_tokens, max_seqs = s->role_model[r]->batch_seqs;
    /* would a batch be full? (count without taking) */
    /* wait for a fuller batch only under concurrent traffic: the previous batch of this role held
     * requests of several clients and ended within two delays. A lone client never waits. */
    double delay = s->o.batch_delay_us * 1e-6;
    if (may_wait && delay > 0 && s->last_batch_tasks[r] >= 2 && ragd_now_s() - s->last_pool_end < 2 * delay) {
        int nt = 0, ns = 0;
        bool full = false;
        for (ragd_task *t = q->head; t && !full; t = t->next)
            for (int i = t->next_seq; i < t->n_seqs; i++) {
                int len = t->seq_start[i + 1] - t->seq_start[i];
                if (nt + len > budget || ns + 1 > max_seqs) { full = true; break; }
                nt += len;
                ns++;
            }
        double until = q->head->t_arrival + delay;
        if (!full && ragd_now_s() < until) {
            *wait_until = until;
            return 0;
        }
    }
    int nt = 0, ns = 0;
    s->pb_start[0] = 0;
    s->pb_any_types = false;
    double now = ragd_now_s();
    while (q->head) {
        ragd_task *t = q->head;
        int i = t->next_seq;
        int len = t->seq_start[i + 1] - t->seq_start[i];
        if (nt + len > budget || ns + 1 > max_seqs) break; /* a single sequence always fits: validated */
        if (i == 0) {
            t->t_start = now;
            ragd_metrics_queue_time(s->o.metrics, mtask_of(t), now - t->t_arrival);
            ragd_metrics_phase(s->o.metrics, RAGD_MPHASE_QUEUE, mtask_of(t), now - t->t_submit);
        }
        memcpy(s->pb_tokens + nt, t->tokens + t->seq_start[i], (size_t)len * sizeof(int32_t));
        ragd_rerank_type_ids(t->seg_a ? t->seg_a[i] : 0, len, s->pb_types + nt);
        s->pb_any_types |= t->seg_a && t->seg_a[i] > 0;
        nt += len;
        s->pb_task[ns] = t;
        s->pb_seq[ns] = i;
        s->pb_start[++ns] = nt;
        t->next_seq++;
        t->queued_tokens -= len;
        s->queued_tokens -= len;
        if (t->next_seq == t->n_seqs) { /* fully taken: leaves the queue */
            q->head = t->next;
            if (!q->head) q->tail = NULL;
            t->next = NULL;
            s->queued_reqs--;
        }
    }
    ragd_metrics_set_queue(s->o.metrics, s->queued_reqs, s->queued_tokens);
    int distinct = 0;
    for (int i = 0; i < ns; i++) distinct += i == 0 || s->pb_task[i] != s->pb_task[i - 1];
    s->last_batch_tasks[r] = distinct;
    *n_tokens = nt;
    return ns;
}

/* Fails task t of the batch (rows from `from` on that name it are cleared so it is finished once). */
static void pool_fail_task(ragd_sched *s, ragd_role r, int from, int ns, ragd_task *t, ragd_status st, const char *msg) {
    for (int j = from; j < ns; j++)
        if (s->pb_task[j] == t) s->pb_task[j] = NULL;
    pthread_mutex_lock(&s->mu);
    ragd_sched_queue_remove(s, r, t); /* no-op when fully taken */
    pthread_mutex_unlock(&s->mu);
    ragd_metrics_engine_error(s->o.metrics, r == RAGD_ROLE_EMBED ? RAGD_MTASK_EMBED : RAGD_MTASK_RERANK);
    RAGD_ERROR("[%s] %s failed: %s", t->req_id ? t->req_id : "-", ragd_role_name(r), msg);
    ragd_sched_finish(s, t, st, "%s", msg);
}

/* One embed or rerank batch. Returns true if a batch ran. */
static bool pool_run(ragd_sched *s, ragd_role r, bool may_wait) {
    ragd_served_model *sm = s->role_model[r];
    if (!sm) return false;
    double wait_until;
    int n_tokens;
    pthread_mutex_lock(&s->mu);
    ragd_trace_push("ragd.batch_assembly");
    int ns = pool_collect(s, r, may_wait, &wait_until, &n_tokens);
    ragd_trace_pop();
    if (!ns && wait_until > 0 && !s->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double dt = wait_until - ragd_now_s();
        if (dt > 0) {
            long ns_add = (long)(dt * 1e9);
            ts.tv_sec += ns_add / 1000000000L;
            ts.tv_nsec += ns_add % 1000000000L;
            if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (!ns) return false;

    ragd_batch b = {.n_seqs = ns, .tokens = s->pb_tokens, .seq_start = s->pb_start,
                    .type_ids = s->pb_any_types ? s->pb_types : NULL};
    ragd_err err = {0};
    ragd_status st;
    const ragd_model *m = sm->model;
    bool cross = r == RAGD_ROLE_RERANK && ragd_rerank_is_cross_encoder(m);
    int width = r == RAGD_ROLE_EMBED ? m->cfg.n_embd : cross ? 1 : 2;
    double t0 = ragd_now_s();
    if (r == RAGD_ROLE_EMBED) {
        st = ragd_engine_pool(sm->engine, &b, ragd_embed_pooling(m), s->pb_out, &err);
    } else if (cross) {
        st = ragd_engine_classify(sm->engine, &b, s->pb_out, &err);
    } else {
        int32_t rows[2] = {sm->yes_id, sm->no_id};
        st = ragd_engine_score(sm->engine, &b, rows, 2, s->pb_out, &err);
    }
    s->last_pool_end = ragd_now_s();
    if (st == RAGD_OK) ragd_sched_note_rate(s, n_tokens, s->last_pool_end - t0);
    if (st == RAGD_OK) st = ragd_sched_fault(s, r, s->pb_out, (size_t)ns * (size_t)width, &err);
    ragd_metrics_batch(s->o.metrics, r == RAGD_ROLE_EMBED ? RAGD_MTASK_EMBED : RAGD_MTASK_RERANK, ns, n_tokens);
    if (st != RAGD_OK) {
        char msg[768];
        snprintf(msg, sizeof msg, "%s engine failed: %s", ragd_role_name(r), ragd_err_msg(&err));
        for (int i = 0; i < ns; i++)
            if (s->pb_task[i]) pool_fail_task(s, r, i, ns, s->pb_task[i], st == RAGD_EDEVICE ? RAGD_EDEVICE : RAGD_EINTERNAL, msg);
        if (st == RAGD_EDEVICE) { /* after the batch's own tasks, so none is finished twice */
            ragd_sched_device_error(s, sm, &err);
            ragd_sched_gen_fail_model(s, sm, &err);
        }
        ragd_err_free(&err);
        return true;
    }
    /* distribute; a task completes when all of its sequences are done */
    for (int i = 0; i < ns; i++) {
        ragd_task *t = s->pb_task[i];
        if (!t) continue;
        const float *row = s->pb_out + (size_t)i * width; // [width]
        int seq = s->pb_seq[i];
        if (r == RAGD_ROLE_EMBED) {
            int dims = ragd_embed_dims(m, &t->embed);
            st = ragd_embed_finish(m, row, &t->embed, t->out + (size_t)seq * dims, &err);
        } else if (cross) {
            float sc = ragd_rerank_score_from_logit(row[0]);
            if (!isfinite(sc) || !isfinite(row[0])) st = ragd_err_set(&err, RAGD_EINTERNAL, "non-finite rerank logit %g", row[0]);
            else t->out[seq] = t->score_logit ? row[0] : sc;
        } else {
            float sc = ragd_rerank_score_from_logits(row[0], row[1]);
            if (!isfinite(sc)) st = ragd_err_set(&err, RAGD_EINTERNAL, "non-finite rerank score (logits %g, %g)", row[0], row[1]);
            else t->out[seq] = t->score_logit ? row[0] - row[1] : sc;
        }
        if (st != RAGD_OK) {
            char msg[768];
            snprintf(msg, sizeof msg, "sequence %d: %s", seq, ragd_err_msg(&err));
            ragd_err_free(&err);
            pool_fail_task(s, r, i, ns, t, RAGD_EINTERNAL, msg);
            continue;
        }
        t->seqs_done++;
        ragd_metrics_tokens_in(s->o.metrics, mtask_of(t), s->pb_start[i + 1] - s->pb_start[i]);
        if (t->seqs_done == t->n_seqs) {
            t->prompt_tokens = t->seq_start[t->n_seqs];
            t->t_end = ragd_now_s();
            ragd_metrics_phase(s->o.metrics, RAGD_MPHASE_COMPUTE, mtask_of(t), t->t_end - t->t_start);
            ragd_sched_finish(s, t, RAGD_OK, NULL);
        }
    }
    return true;
}


/* ---------------------------------------------------------------------------------------------- */
/* startup */

static ragd_status warm_up(ragd_sched *s, ragd_served_model *sm, ragd_err *err) {
    const ragd_model *m = sm->model;
    int32_t tok[4] = {0, 1, 2, 3}; // [4]
    int32_t start[2] = {0, 4};
    ragd_batch b = {.n_seqs = 1, .tokens = tok, .seq_start = start};
    ragd_status st = RAGD_OK;
    for (int r = 0; r < RAGD_ROLE_COUNT; r++)
        if (sm->roles[r]) fault_slow_only(s, (ragd_role)r);
    if (sm->roles[RAGD_ROLE_EMBED]) {
        st = ragd_engine_pool(sm->engine, &b, ragd_embed_pooling(m), s->pb_out, err);
        if (!st && !isfinite(s->pb_out[0])) st = ragd_err_set(err, RAGD_EINTERNAL, "warm-up embedding is not finite");
    }
    if (!st && sm->roles[RAGD_ROLE_RERANK] && ragd_rerank_is_cross_encoder(m)) {
        st = ragd_engine_classify(sm->engine, &b, s->pb_out, err);
        if (!st && !isfinite(s->pb_out[0])) st = ragd_err_set(err, RAGD_EINTERNAL, "warm-up rerank logit is not finite");
    } else if (!st && sm->roles[RAGD_ROLE_RERANK]) {
        int32_t rows[2] = {sm->yes_id, sm->no_id};
        st = ragd_engine_score(sm->engine, &b, rows, 2, s->pb_out, err);
        if (!st && !(isfinite(s->pb_out[0]) && isfinite(s->pb_out[1])))
            st = ragd_err_set(err, RAGD_EINTERNAL, "warm-up rerank logits are not finite");
    }
    if (!st && sm->roles[RAGD_ROLE_CHAT]) { /* (the warm-up tokens are not kept in the prefix cache: < 1 block) */
        int32_t seq = 0;
        int n_cached = 0;
        ragd_sample_params sp = {.top_p = 1, .active = 1};
        ragd_sample_out so;
        st = ragd_engine_seq_open(sm->engine, seq, tok, 4, &n_cached, err);
        if (!st) st = ragd_engine_step(sm->engine, &b, &seq, &sp, &so, NULL, err);
        if (!st && so.nonfinite) st = ragd_err_set(err, RAGD_EINTERNAL, "warm-up logits are not finite");
        ragd_engine_seq_close(sm->engine, seq);
    }
    if (st) ragd_err_prefix(err, "warm-up of %s", sm->name);
    return st;
}

/* The plans' total with one setting changed (what a refusal suggests): which 0 = --max-batch-tokens (every
 * model), 1 = --max-model-len (every model's context; the chat model's KV pool at its minimum of one
 * sequence unless --kv-cache-tokens sizes it), 2 = --max-seqs (the chat model). SIZE_MAX when a plan
 * cannot be made with that value. */
static size_t plan_total_with(const ragd_sched *s, const ragd_engine_opts *eo, int chat_i, int which, int v) {
    size_t total = 0;
    for (int i = 0; i < s->n_models; i++) {
        ragd_engine_opts o = eo[i];
        if (which == 0) o.max_batch_tokens = v;
        if (which == 1 && o.max_ctx > v) o.max_ctx = v;
        if (which == 2 && i == chat_i) o.max_seqs = v;
        if (which == 1 && o.kv_cache && s->o.kv_cache_tokens <= 0 && o.kv_block_size > 0)
            o.kv_blocks = (o.max_ctx + o.kv_block_size - 1) / o.kv_block_size;
        ragd_engine_plan p;
        ragd_err e = {0};
        if (ragd_engine_plan_compute(s->models[i]->model, &o, &p, &e)) {
            ragd_err_free(&e);
            return SIZE_MAX;
        }
        total += p.total;
    }
    return total;
}

/* Appends to b the largest value of each setting that alone would make the plans fit the budget, or
 * that none does (then what the weights alone need). */
static void refusal_hints(const ragd_sched *s, const ragd_engine_opts *eo, int chat_i, size_t budget, ragd_buf *b) {
    static const char *const names[3] = {"--max-batch-tokens", "--max-model-len", "--max-seqs"};
    int cur[3] = {s->o.max_batch_tokens, 0, chat_i >= 0 ? eo[chat_i].max_seqs : 0};
    for (int i = 0; i < s->n_models; i++)
        if (eo[i].max_ctx > cur[1]) cur[1] = eo[i].max_ctx;
    int n_fit = 0;
    for (int k = 0; k < 3; k++) {
        if (cur[k] <= 1) continue;
        int lo = 1, hi = cur[k] - 1, best = 0;
        while (lo <= hi) { /* the plans grow with each setting: the largest value that fits */
            const int mid = lo + (hi - lo) / 2;
            if (plan_total_with(s, eo, chat_i, k, mid) <= budget) best = mid, lo = mid + 1;
            else hi = mid - 1;
        }
        if (!best) continue;
        ragd_buf_printf(b, "%s%s %d (now %d)", n_fit ? ", or " : "; it would fit with ", names[k], best, cur[k]);
        n_fit++;
    }
    if (!n_fit) {
        size_t w = 0;
        for (int i = 0; i < s->n_models; i++) w += s->models[i]->plan.weights + s->models[i]->plan.workspace;
        ragd_buf_printf(b, "; no single setting of --max-batch-tokens, --max-model-len or --max-seqs makes it fit "
                           "(the weights and workspaces alone need %.1f MiB)", w / 1048576.0);
    }
}

static ragd_status startup(ragd_sched *s, ragd_err *err) {
    ragd_status st;
    int max_embd = 2;
    /* plans first: all models of the device must fit together; the chat model's KV block pool is
     * --kv-cache-tokens, or on a GPU whatever the budget leaves after everything else (as vLLM's
     * gpu_memory_utilization), or on the CPU max_seqs sequences of the full context */
    size_t total = 0;
    ragd_engine_opts eo[8];
    int chat_i = -1;
    RAGD_ASSERT(s->n_models <= 8);
    /* the budget of the plans: --gpu-memory less what the device already holds (this process's CUDA
     * context and libraries, other processes) */
    size_t budget = 0;
    if (s->o.mem_limit) {
        if (s->o.mem_in_use >= s->o.mem_limit)
            return ragd_err_set(err, RAGD_ENOMEM, "the device already holds %.1f MiB (this process's CUDA context and "
                                "libraries, and any other process) of the %.1f MiB budget: raise --gpu-memory",
                                s->o.mem_in_use / 1048576.0, s->o.mem_limit / 1048576.0);
        budget = s->o.mem_limit - s->o.mem_in_use;
        /* what the plans may use: the budget less the reserve for allocations outside them (CUDA's lazily
         * loaded modules, cuBLASLt's state, graphs), which the check after warm-up measures */
        if (budget <= s->o.mem_reserve)
            return ragd_err_set(err, RAGD_ENOMEM, "the --gpu-memory budget of %.1f MiB less the %.1f MiB the device "
                                "already holds (this process's CUDA context and libraries, any other process) leaves "
                                "%.1f MiB, not more than the %.1f MiB kept for allocations outside the plans: raise "
                                "--gpu-memory", s->o.mem_limit / 1048576.0, s->o.mem_in_use / 1048576.0,
                                budget / 1048576.0, s->o.mem_reserve / 1048576.0);
        budget -= s->o.mem_reserve;
    }
    for (int i = 0; i < s->n_models; i++) {
        ragd_served_model *sm = s->models[i];
        int ctx = 0;
        for (int r = 0; r < RAGD_ROLE_COUNT; r++)
            if (sm->roles[r] && sm->max_len[r] > ctx) ctx = sm->max_len[r];
        eo[i] = (ragd_engine_opts){.device = s->o.device, .cuda_device = s->o.cuda_device,
                                   .max_batch_tokens = s->o.max_batch_tokens,
                                   .max_seqs = sm->batch_seqs,
                                   .max_ctx = ctx, .kv_cache = sm->roles[RAGD_ROLE_CHAT],
                                   .kv_block_size = s->o.kv_block_size, .prefix_cache = s->o.prefix_cache,
                                   .n_threads = s->o.n_threads, .mem_limit = 0};
        if (eo[i].kv_cache) {
            chat_i = i;
            int bs = eo[i].kv_block_size ? eo[i].kv_block_size : RAGD_KV_BLOCK_DEFAULT;
            int64_t per_seq = (ctx + bs - 1) / bs;
            if (s->o.kv_cache_tokens > 0) {
                int64_t nb = (s->o.kv_cache_tokens + bs - 1) / bs;
                if (nb < per_seq)
                    return ragd_err_set(err, RAGD_ERANGE, "--kv-cache-tokens %lld cannot hold one sequence of %d tokens "
                                        "(the chat context): give at least %lld", (long long)s->o.kv_cache_tokens, ctx,
                                        (long long)(per_seq * bs));
                eo[i].kv_blocks = (int)(nb < (1 << 28) ? nb : (1 << 28));
            } else if (s->o.mem_limit) {
                eo[i].kv_blocks = (int)per_seq; /* the minimum; grown below to what the budget leaves */
            }
        }
        if ((st = ragd_engine_opts_resolve(&eo[i], err)) ||
            (st = ragd_engine_plan_compute(sm->model, &eo[i], &sm->plan, err)))
            return ragd_err_prefix(err, "memory plan of %s", sm->name);
        total += sm->plan.total;
        if (sm->model->cfg.n_embd > max_embd) max_embd = sm->model->cfg.n_embd;
    }
    if (chat_i >= 0 && s->o.kv_cache_tokens <= 0 && budget && total < budget) {
        ragd_served_model *sm = s->models[chat_i];
        size_t fixed = total - sm->plan.kv_cache, bb = sm->plan.kv_block_bytes;
        size_t nb = bb ? (budget - fixed) / bb : 0;
        if (nb > (1u << 24)) nb = 1u << 24; /* 16M blocks: the host-side tables stay small */
        if ((int)nb > eo[chat_i].kv_blocks) {
            eo[chat_i].kv_blocks = (int)nb;
            total -= sm->plan.total;
            if ((st = ragd_engine_plan_compute(sm->model, &eo[chat_i], &sm->plan, err)))
                return ragd_err_prefix(err, "memory plan of %s", sm->name);
            total += sm->plan.total;
        }
    }
    if (chat_i >= 0) {
        const ragd_engine_plan *p = &s->models[chat_i]->plan;
        RAGD_INFO("KV cache of %s: %d blocks × %d positions = %lld tokens (%.1f MiB, %.1f KiB per token): %d sequences of "
                  "up to %d tokens at once, prefix cache %s", s->models[chat_i]->name, p->kv_blocks, p->kv_block_size,
                  (long long)p->kv_blocks * p->kv_block_size, p->kv_cache / 1048576.0,
                  p->kv_block_bytes / 1024.0 / (p->kv_block_size ? p->kv_block_size : 1), eo[chat_i].max_seqs,
                  eo[chat_i].max_ctx,
                  p->no_prefix_cache ? "off (hybrid model)" : s->o.prefix_cache ? "on" : "off");
        if (p->seq_state_bytes)
            RAGD_INFO("sequence state of %s (Gated DeltaNet conv + recurrent): %.2f MiB per sequence, %.1f MiB for %d "
                      "slots", s->models[chat_i]->name, p->seq_state_bytes / 1048576.0, p->seq_state / 1048576.0,
                      eo[chat_i].max_seqs);
    }
    for (int i = 0; i < s->n_models; i++) {
        const ragd_engine_plan *p = &s->models[i]->plan;
        RAGD_INFO("memory plan %s on %s: weights %.1f MiB, activations %.1f MiB, kv cache %.1f MiB, sequence state %.1f "
                  "MiB, workspace %.1f MiB, total %.1f MiB",
                  s->models[i]->name, ragd_device_name(s->o.device), p->weights / 1048576.0, p->activations / 1048576.0,
                  p->kv_cache / 1048576.0, p->seq_state / 1048576.0, p->workspace / 1048576.0, p->total / 1048576.0);
    }
    if (s->o.mem_limit && total > budget) {
        ragd_buf b = {0};
        for (int i = 0; i < s->n_models; i++)
            ragd_buf_printf(&b, "%s%s %.1f MiB", i ? ", " : "", s->models[i]->name, s->models[i]->plan.total / 1048576.0);
        ragd_buf h = {0};
        refusal_hints(s, eo, chat_i, budget, &h);
        st = ragd_err_set(err, RAGD_ENOMEM, "the models need %.1f MiB together (%s) but the plans' budget is %.1f MiB "
                          "(%.1f MiB of --gpu-memory less %.1f MiB already in use: CUDA context, libraries, other "
                          "processes; less %.1f MiB kept for allocations outside the plans)%s", total / 1048576.0, b.data,
                          budget / 1048576.0, s->o.mem_limit / 1048576.0, s->o.mem_in_use / 1048576.0,
                          s->o.mem_reserve / 1048576.0, h.data ? h.data : "");
        ragd_buf_free(&h);
        ragd_buf_free(&b);
        return st;
    }
    for (int i = 0; i < s->n_models; i++) {
        ragd_served_model *sm = s->models[i];
        eo[i].mem_limit = s->o.mem_limit ? sm->plan.total : 0;
        if ((st = ragd_engine_create(sm->model, &eo[i], &sm->engine, err)))
            return ragd_err_prefix(err, "engine for %s", sm->name);
    }
    /* pool buffers */
    size_t mb = (size_t)s->o.max_batch_tokens, ms = 1;
    for (int i = 0; i < s->n_models; i++)
        if ((size_t)s->models[i]->batch_seqs > ms) ms = (size_t)s->models[i]->batch_seqs;
    s->pb_tokens = malloc(mb * sizeof(int32_t));
    s->pb_types = malloc(mb * sizeof(int32_t));
    s->pb_start = malloc((ms + 1) * sizeof(int32_t));
    s->pb_task = malloc(ms * sizeof(ragd_task *));
    s->pb_seq = malloc(ms * sizeof(int));
    s->pb_out = malloc(ms * (size_t)max_embd * sizeof(float));
    if (!s->pb_tokens || !s->pb_types || !s->pb_start || !s->pb_task || !s->pb_seq || !s->pb_out)
        return ragd_err_set(err, RAGD_ENOMEM, "scheduler batch buffers");
    if ((st = ragd_sched_gen_init(s, err))) return st;
    double warm_ms[8];
    for (int i = 0; i < s->n_models; i++) {
        double t0 = ragd_now_s();
        if ((st = warm_up(s, s->models[i], err))) return st;
        warm_ms[i] = (ragd_now_s() - t0) * 1e3;
    }
    /* the whole device, as nvidia-smi sees it, after the engines exist and ran once: within the budget */
    if (s->o.mem_probe && s->o.mem_limit) {
        size_t now = 0;
        if ((st = s->o.mem_probe(s->o.mem_probe_ctx, &now, err))) return ragd_err_prefix(err, "device memory check");
        const size_t unplanned = now > s->o.mem_in_use + total ? now - s->o.mem_in_use - total : 0;
        if (now > s->o.mem_limit)
            return ragd_err_set(err, RAGD_ENOMEM, "after creating the engines the device holds %.1f MiB, over the "
                                "--gpu-memory budget of %.1f MiB (in use before: %.1f MiB, plans: %.1f MiB, outside "
                                "the plans: %.1f MiB — more than the %.1f MiB reserved for it, or another process "
                                "allocated meanwhile)", now / 1048576.0, s->o.mem_limit / 1048576.0,
                                s->o.mem_in_use / 1048576.0, total / 1048576.0, unplanned / 1048576.0,
                                s->o.mem_reserve / 1048576.0);
        RAGD_INFO("device memory after start: %.1f MiB of the %.1f MiB budget (in use before the plans %.1f MiB, plans "
                  "%.1f MiB, outside the plans %.1f MiB of %.1f MiB reserved)", now / 1048576.0,
                  s->o.mem_limit / 1048576.0, s->o.mem_in_use / 1048576.0, total / 1048576.0, unplanned / 1048576.0,
                  s->o.mem_reserve / 1048576.0);
    }
    for (int i = 0; i < s->n_models; i++) {
        atomic_store(&s->models[i]->ready, true);
        RAGD_INFO("model %s ready (warm-up %.1f ms)", s->models[i]->name, warm_ms[i]);
    }
    return RAGD_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* the device thread */

static bool has_pool_work(ragd_sched *s) { return s->q[RAGD_ROLE_EMBED].head || s->q[RAGD_ROLE_RERANK].head; }

static void fail_everything(ragd_sched *s, ragd_status st, const char *msg) {
    ragd_task *all = NULL;
    pthread_mutex_lock(&s->mu);
    for (int r = 0; r < RAGD_ROLE_COUNT; r++)
        while (s->q[r].head) {
            ragd_task *t = s->q[r].head;
            ragd_sched_queue_remove(s, (ragd_role)r, t);
            if (r == RAGD_ROLE_CHAT && t->choices_admitted > 0) continue;
            t->next = all;
            all = t;
        }
    pthread_mutex_unlock(&s->mu);
    while (all) {
        ragd_task *t = all;
        all = t->next;
        t->next = NULL;
        ragd_sched_finish(s, t, st, "%s", msg);
    }
    ragd_sched_gen_fail_all(s, st, msg);
}

/* ragd_sched_mark_not_ready, on the device thread: as a device error of every model */
static void apply_device_fault(ragd_sched *s) {
    ragd_err err = {0};
    ragd_err_set(&err, RAGD_EDEVICE, "%s", s->device_fault); /* written once, before applied was set */
    for (int i = 0; i < s->n_models; i++) {
        ragd_sched_device_error(s, s->models[i], &err);
        ragd_sched_gen_fail_model(s, s->models[i], &err);
    }
    ragd_err_free(&err);
}

void ragd_sched_mark_not_ready(ragd_sched *s, const char *reason) {
    pthread_mutex_lock(&s->mu);
    if (!s->device_fault) {
        s->device_fault = ragd_xstrdup(reason);
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

static void *device_main(void *arg) {
    ragd_sched *s = arg;
    ragd_err err = {0};
    ragd_status st = startup(s, &err);
    pthread_mutex_lock(&s->mu);
    s->start_status = st;
    s->start_err = err;
    s->started = true;
    s->last_loop = ragd_now_s();
    pthread_cond_broadcast(&s->started_cv);
    pthread_mutex_unlock(&s->mu);
    if (st) return NULL;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        s->last_loop = ragd_now_s();
        if (s->stop) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        if (s->device_fault && !s->device_fault_applied) {
            s->device_fault_applied = true;
            pthread_mutex_unlock(&s->mu);
            apply_device_fault(s);
            continue;
        }
        bool pool = has_pool_work(s), gen = ragd_sched_gen_has_work(s);
        if (!pool && !gen) {
            s->idle = true;
            pthread_cond_wait(&s->cv, &s->mu);
            s->idle = false;
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        sweep_tasks(s, false);
        if (pool) {
            sweep_tasks(s, true);
            ragd_role first = s->pool_turn ? RAGD_ROLE_RERANK : RAGD_ROLE_EMBED;
            ragd_role second = s->pool_turn ? RAGD_ROLE_EMBED : RAGD_ROLE_RERANK;
            s->pool_turn ^= 1;
            if (!pool_run(s, first, !gen)) pool_run(s, second, !gen);
        }
        if (gen) ragd_sched_gen_step(s);
    }
    fail_everything(s, RAGD_ECANCELLED, "the server is shutting down");
    return NULL;
}

ragd_status ragd_sched_create(const ragd_sched_opts *o, ragd_served_model *const *models, int n_models,
                              ragd_sched **out, ragd_err *err) {
    *out = NULL;
    if (n_models < 1 || n_models > 8) return ragd_err_set(err, RAGD_EINVAL, "scheduler: %d models (1..8)", n_models);
    for (int i = 0; i < n_models; i++)
        if (models[i]->batch_seqs < 1 || (models[i]->roles[RAGD_ROLE_CHAT] && models[i]->batch_seqs != o->max_seqs))
            return ragd_err_set(err, RAGD_EINVAL, "model %s: batch_seqs %d (a chat model needs max_seqs %d)", models[i]->name,
                                models[i]->batch_seqs, o->max_seqs);
    ragd_sched *s = ragd_xcalloc(1, sizeof *s);
    s->o = *o;
    s->models = ragd_xmalloc((size_t)n_models * sizeof *s->models);
    memcpy(s->models, models, (size_t)n_models * sizeof *s->models);
    s->n_models = n_models;
    for (int i = 0; i < n_models; i++)
        for (int r = 0; r < RAGD_ROLE_COUNT; r++)
            if (models[i]->roles[r]) {
                if (s->role_model[r]) {
                    free(s->models);
                    free(s);
                    return ragd_err_set(err, RAGD_EINVAL, "two models serve the %s role", ragd_role_name((ragd_role)r));
                }
                s->role_model[r] = models[i];
            }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->started_cv, NULL);
    fault_parse(s);
    if (pthread_create(&s->thread, NULL, device_main, s)) {
        ragd_sched_free(s);
        return ragd_err_set(err, RAGD_ENOMEM, "cannot start the scheduler thread");
    }
    s->thread_started = true;
    pthread_mutex_lock(&s->mu);
    while (!s->started) pthread_cond_wait(&s->started_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (s->start_status) {
        ragd_status st = ragd_err_set(err, s->start_status, "%s", ragd_err_msg(&s->start_err));
        ragd_sched_free(s);
        return st;
    }
    *out = s;
    return RAGD_OK;
}

void ragd_sched_stop(ragd_sched *s) {
    if (!s || !s->thread_started) return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->thread_started = false;
}

void ragd_sched_free(ragd_sched *s) {
    if (!s) return;
    ragd_sched_stop(s);
    ragd_sched_gen_free(s);
    for (int i = 0; i < s->n_models; i++) {
        ragd_engine_free(s->models[i]->engine);
        s->models[i]->engine = NULL;
    }
    free(s->pb_tokens);
    free(s->pb_types);
    free(s->pb_start);
    free(s->pb_task);
    free(s->pb_seq);
    free(s->pb_out);
    ragd_err_free(&s->start_err);
    free(s->device_fault);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->started_cv);
    free(s->models);
    free(s);
}

bool ragd_served_model_is(const ragd_served_model *sm, const char *name) {
    if (!sm || !name) return false;
    if (!strcmp(sm->name, name)) return true;
    for (int i = 0; i < sm->n_aliases; i++)
        if (!strcmp(sm->aliases[i], name)) return true;
    return false;
}

ragd_status ragd_sched_submit(ragd_sched *s, ragd_served_model *sm, ragd_task *t, ragd_err *err) {
    ragd_role r = role_of(t);
    RAGD_ASSERT(t->sink && t->sink->on_done && t->n_seqs >= 1);
    RAGD_ASSERT(t->kind != RAGD_TASK_GENERATE || t->n_seqs == 1);
    if (s->role_model[r] != sm) return ragd_err_set(err, RAGD_ENOTFOUND, "model %s does not serve %s", sm->name, ragd_role_name(r));
    if (!atomic_load(&sm->ready))
        return ragd_err_set(err, RAGD_EUNAVAILABLE, "model %s is not ready: %s", sm->name,
                            sm->not_ready_reason ? sm->not_ready_reason : "still loading");
    t->next = NULL;
    t->next_seq = t->seqs_done = t->choices_admitted = t->choices_done = 0;
    t->status = RAGD_OK;
    t->sm = sm;
    t->t_submit = ragd_now_s();
    t->t_start = t->t_first_token = t->t_end = 0;
    t->cached_tokens = 0;
    t->prompt_tokens = t->completion_tokens = 0;
    if (t->kind == RAGD_TASK_GENERATE && t->n_choices < 1) t->n_choices = 1;
    t->queued_tokens = task_tokens(t);
    if (t->queued_tokens > s->o.max_queue_tokens) /* would be "queue full" forever: refuse for good */
        return ragd_err_set(err, RAGD_ERANGE,
                            "this request needs %lld queue tokens (%s), more than the queue ever holds (--max-queue-tokens %lld)",
                            (long long)t->queued_tokens, t->kind == RAGD_TASK_GENERATE ? "prompt tokens × n" : "its input tokens",
                            (long long)s->o.max_queue_tokens);
    pthread_mutex_lock(&s->mu);
    if (s->draining || s->stop) {
        pthread_mutex_unlock(&s->mu);
        ragd_metrics_rejected(s->o.metrics, RAGD_REJECT_SHUTDOWN);
        return ragd_err_set(err, RAGD_ECANCELLED, "the server is shutting down");
    }
    if (s->queued_reqs + 1 > s->o.max_queue || s->queued_tokens + t->queued_tokens > s->o.max_queue_tokens) {
        int qr = s->queued_reqs;
        int64_t qt = s->queued_tokens;
        pthread_mutex_unlock(&s->mu);
        ragd_metrics_rejected(s->o.metrics, RAGD_REJECT_QUEUE_FULL);
        return ragd_err_set(err, RAGD_EBUSY, "the server is overloaded: %d requests / %lld tokens waiting (limits %d / %lld)",
                            qr, (long long)qt, s->o.max_queue, (long long)s->o.max_queue_tokens);
    }
    task_queue *q = &s->q[r];
    if (q->tail) q->tail->next = t;
    else q->head = t;
    q->tail = t;
    s->queued_reqs++;
    s->queued_tokens += t->queued_tokens;
    s->in_flight++;
    ragd_metrics_set_queue(s->o.metrics, s->queued_reqs, s->queued_tokens);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return RAGD_OK;
}

void ragd_sched_drain(ragd_sched *s) {
    pthread_mutex_lock(&s->mu);
    s->draining = true;
    pthread_mutex_unlock(&s->mu);
}

int ragd_sched_in_flight(ragd_sched *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->in_flight;
    pthread_mutex_unlock(&s->mu);
    return n;
}

bool ragd_sched_alive(ragd_sched *s, double max_age_s) {
    pthread_mutex_lock(&s->mu);
    bool ok = !s->stop && (s->idle || ragd_now_s() - s->last_loop <= max_age_s);
    pthread_mutex_unlock(&s->mu);
    return ok;
}

/* Folds one forward pass (n tokens in dt seconds) into the smoothed token rate. */
void ragd_sched_note_rate(ragd_sched *s, int n, double dt) {
    if (dt <= 0 || n <= 0) return;
    pthread_mutex_lock(&s->mu);
    double r = n / dt;
    s->tok_rate = s->tok_rate > 0 ? 0.9 * s->tok_rate + 0.1 * r : r;
    pthread_mutex_unlock(&s->mu);
}

int ragd_sched_retry_after(ragd_sched *s) {
    if (!s) return 1;
    pthread_mutex_lock(&s->mu);
    double rate = s->tok_rate;
    int64_t q = s->queued_tokens;
    pthread_mutex_unlock(&s->mu);
    /* time for the queue to drain half-way, between 1 and 60 s */
    double t = rate > 0 ? 0.5 * (double)q / rate : 1.0;
    return t < 1 ? 1 : t > 60 ? 60 : (int)(t + 0.999);
}
