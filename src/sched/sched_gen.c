/* sched_gen.c — continuous batching for the chat model.
 *
 * Each running choice of a request is a sequence holding one KV slot (slot = index in s->seqs).
 * Every step is one ragd_engine_step whose batch holds, in this order: the last sampled token of
 * every decoding sequence, prompt chunks of sequences still in prefill, and prompt chunks of newly
 * admitted sequences (taken from the queue while slots, max_seqs and the token budget allow). So
 * new requests join between decode steps and a long prompt is prefilled in chunks without stalling
 * running sequences.
 *
 * Sequence life: admitted (slot taken, sampler seeded) → prefill (1+ steps) → decode (one token per
 * step) → finished (EOS / stop string / max_tokens / context full) or dropped (client gone,
 * deadline, engine error) → slot reset. A request completes when all its choices finish.
 *
 * Text: ragd_gen_stream (tasks.h) decodes ids incrementally (special tokens skipped), applies EOS,
 * stop strings and max_tokens, and holds back text that could be the start of a stop string — the same
 * code the CLI's `ragd generate` uses, so a stop string is never sent, even in a stream.
 */
#include "sched/sched_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_TOP 20

ragd_status ragd_sched_gen_init(ragd_sched *s, ragd_err *err) {
    ragd_served_model *sm = s->role_model[RAGD_ROLE_CHAT];
    if (!sm) return RAGD_OK;
    size_t ms = (size_t)s->o.max_seqs, nv = (size_t)sm->model->cfg.n_vocab;
    s->seqs = calloc(ms, sizeof *s->seqs);
    s->logits = malloc(ms * nv * sizeof(float));
    s->gb_tokens = malloc((size_t)s->o.max_batch_tokens * sizeof(int32_t));
    s->gb_start = malloc((ms + 1) * sizeof(int32_t));
    s->gb_slots = malloc(ms * sizeof(int32_t));
    s->gb_chunk = malloc(ms * sizeof(int32_t));
    s->top_lp = malloc(MAX_TOP * sizeof(float));
    s->top_ids = malloc(MAX_TOP * sizeof(int32_t));
    if (!s->seqs || !s->logits || !s->gb_tokens || !s->gb_start || !s->gb_slots || !s->gb_chunk || !s->top_lp ||
        !s->top_ids)
        return ragd_err_set(err, RAGD_ENOMEM, "generation buffers for %zu sequences × %zu logits", ms, nv);
    return RAGD_OK;
}

void ragd_sched_gen_free(ragd_sched *s) {
    if (s->seqs)
        for (int i = 0; i < s->o.max_seqs; i++) {
            if (s->seqs[i].sampler_live) ragd_sampler_free(&s->seqs[i].sampler);
            if (s->seqs[i].gs_live) ragd_gen_stream_free(&s->seqs[i].gs);
            ragd_buf_free(&s->seqs[i].emit);
        }
    free(s->seqs);
    free(s->logits);
    free(s->gb_tokens);
    free(s->gb_start);
    free(s->gb_slots);
    free(s->gb_chunk);
    free(s->top_lp);
    free(s->top_ids);
    s->seqs = NULL;
}

bool ragd_sched_gen_has_work(ragd_sched *s) { return s->q[RAGD_ROLE_CHAT].head || s->n_active > 0; }

static void release_seq(ragd_sched *s, int slot) {
    gen_seq *q = &s->seqs[slot];
    if (!q->t) return;
    if (q->sampler_live) ragd_sampler_free(&q->sampler);
    q->sampler_live = false;
    if (q->gs_live) ragd_gen_stream_free(&q->gs);
    q->gs_live = false;
    q->t = NULL;
    s->n_active--;
    ragd_engine_slot_reset(s->role_model[RAGD_ROLE_CHAT]->engine, slot);
    ragd_metrics_set_running(s->o.metrics, s->n_active);
}

/* Drops every sequence of t, removes it from the queue if choices are still waiting, finishes it. */
static void fail_task(ragd_sched *s, ragd_task *t, ragd_status st, const char *msg) {
    for (int i = 0; i < s->o.max_seqs; i++)
        if (s->seqs[i].t == t) release_seq(s, i);
    pthread_mutex_lock(&s->mu);
    if (t->choices_admitted < t->n_choices) ragd_sched_queue_remove(s, RAGD_ROLE_CHAT, t);
    pthread_mutex_unlock(&s->mu);
    if (st == RAGD_EINTERNAL || st == RAGD_EDEVICE) {
        ragd_metrics_engine_error(s->o.metrics, RAGD_MTASK_GENERATE);
        RAGD_ERROR("[%s] generation failed: %s", t->req_id ? t->req_id : "-", msg);
    }
    ragd_sched_finish(s, t, st, "%s", msg);
}

void ragd_sched_gen_fail_all(ragd_sched *s, ragd_status st, const char *msg) {
    if (!s->seqs) return;
    for (int i = 0; i < s->o.max_seqs; i++)
        if (s->seqs[i].t) fail_task(s, s->seqs[i].t, st, msg);
}

void ragd_sched_gen_fail_model(ragd_sched *s, ragd_served_model *sm, const ragd_err *err) {
    if (s->role_model[RAGD_ROLE_CHAT] != sm || !s->seqs) return;
    char msg[768];
    snprintf(msg, sizeof msg, "model %s failed on the device: %s", sm->name, ragd_err_msg(err));
    ragd_sched_gen_fail_all(s, RAGD_EDEVICE, msg);
}

/* The top-k log-softmax entries of a row (k ≤ MAX_TOP), best first. */
static void top_logprobs(const float *row, int n_vocab, int k, int32_t *ids, float *lp) {
    float mx = row[0];
    for (int v = 1; v < n_vocab; v++) mx = row[v] > mx ? row[v] : mx;
    double sum = 0;
    for (int v = 0; v < n_vocab; v++) sum += exp((double)row[v] - mx);
    double lse = mx + log(sum);
    int n = 0;
    for (int v = 0; v < n_vocab; v++) {
        float x = row[v];
        if (n == k && x <= lp[k - 1]) continue;
        int j = n < k ? n++ : k - 1;
        while (j > 0 && lp[j - 1] < x) {
            lp[j] = lp[j - 1];
            ids[j] = ids[j - 1];
            j--;
        }
        lp[j] = x;
        ids[j] = v;
    }
    for (int i = 0; i < n; i++) lp[i] = (float)(lp[i] - lse);
}

static bool is_eos(const ragd_model *m, int32_t tok) {
    for (int i = 0; i < m->cfg.n_eos; i++)
        if (m->cfg.eos_ids[i] == tok) return true;
    return false;
}

/* Hands the released text q->emit and the token info to the sink. */
static void emit(ragd_sched *s, gen_seq *q, bool has_token, int32_t tok, float lp, int n_top, ragd_finish fin) {
    ragd_gen_event ev = {.choice = q->choice, .text = q->emit.data ? q->emit.data : "", .len = q->emit.len,
                         .has_token = has_token, .token = tok, .logprob = lp, .n_top = n_top,
                         .top_ids = s->top_ids, .top_lp = s->top_lp, .finish = fin};
    if (q->t->sink->on_gen) q->t->sink->on_gen(q->t->ctx, &ev);
}

/* A choice finished normally. */
static void finish_choice(ragd_sched *s, int slot) {
    ragd_task *t = s->seqs[slot].t;
    release_seq(s, slot);
    t->choices_done++;
    if (t->choices_done == t->n_choices) {
        t->prompt_tokens = t->seq_start[1];
        ragd_sched_finish(s, t, RAGD_OK, NULL);
    }
}

/* Samples the next token of sequence `slot` from its logits row and advances it. */
static void advance(ragd_sched *s, int slot, const float *row, int n_vocab, double now) {
    gen_seq *q = &s->seqs[slot];
    ragd_task *t = q->t;
    const ragd_model *m = s->role_model[RAGD_ROLE_CHAT]->model;
    float lp = 0;
    int32_t tok = ragd_sampler_sample(&q->sampler, row, &lp);
    /* the pick's log-softmax runs over the whole row, so it is finite iff no logit is NaN or +Inf: an
     * O(1) check per token instead of a scan of n_vocab logits (the scan only names the culprit) */
    if (!isfinite(lp)) {
        int bad = 0;
        while (bad < n_vocab - 1 && isfinite(row[bad])) bad++;
        char msg[160];
        snprintf(msg, sizeof msg, "the model produced a non-finite logit (token %d: %g)", bad, (double)row[bad]);
        fail_task(s, t, RAGD_EINTERNAL, msg);
        return;
    }
    q->n_gen++;
    t->completion_tokens++;
    ragd_metrics_tokens_out(s->o.metrics, 1);
    if (!t->t_first_token) {
        t->t_first_token = now;
        ragd_metrics_ttft(s->o.metrics, now - t->t_arrival);
    } else if (q->t_last > 0) ragd_metrics_itl(s->o.metrics, now - q->t_last);
    q->t_last = now;
    q->last = tok;
    int n_top = t->want_logprobs && t->top_logprobs > 0 ? (t->top_logprobs < MAX_TOP ? t->top_logprobs : MAX_TOP) : 0;
    if (n_top) top_logprobs(row, n_vocab, n_top, s->top_ids, s->top_lp);

    ragd_buf_reset(&q->emit);
    ragd_finish fin = RAGD_FINISH_NONE;
    ragd_err err = {0};
    if (ragd_gen_stream_push(&q->gs, tok, &q->emit, &fin, &err)) {
        char msg[512];
        snprintf(msg, sizeof msg, "decoding token %d: %s", tok, ragd_err_msg(&err));
        ragd_err_free(&err);
        fail_task(s, t, RAGD_EINTERNAL, msg);
        return;
    }
    /* prompt + max_tokens ≤ the context was checked when the request was validated */
    RAGD_ASSERT(fin != RAGD_FINISH_NONE || q->n_prompt + q->n_gen < s->role_model[RAGD_ROLE_CHAT]->max_len[RAGD_ROLE_CHAT]);
    bool eos_end = fin == RAGD_FINISH_STOP && !t->gen.ignore_eos && is_eos(m, tok); /* EOS is not reported as a token */
    emit(s, q, !eos_end, tok, lp, eos_end ? 0 : n_top, fin);
    if (fin != RAGD_FINISH_NONE) finish_choice(s, slot);
}

/* Takes a free slot for the next choice of the head task; returns the slot or -1. Under s->mu. */
static int admit(ragd_sched *s, double now, ragd_err *err) {
    ragd_task *t = s->q[RAGD_ROLE_CHAT].head;
    if (!t) return -1;
    int slot = -1;
    for (int i = 0; i < s->o.max_seqs; i++)
        if (!s->seqs[i].t) { slot = i; break; }
    if (slot < 0) return -1;
    const ragd_model *m = s->role_model[RAGD_ROLE_CHAT]->model;
    gen_seq *q = &s->seqs[slot];
    ragd_sampler_opts so = t->gen.sampling;
    so.seed += (uint64_t)t->choices_admitted; /* each choice its own stream, reproducible */
    if (ragd_sampler_init(&q->sampler, &so, m->cfg.n_vocab, err)) return -2;
    q->sampler_live = true;
    q->t = t;
    q->choice = t->choices_admitted++;
    q->n_prompt = t->seq_start[1];
    q->n_done = q->n_gen = 0;
    q->last = -1;
    q->t_last = 0;
    if (ragd_gen_stream_init(&q->gs, m, &t->gen, err)) {
        ragd_sampler_free(&q->sampler);
        q->sampler_live = false;
        q->t = NULL;
        t->choices_admitted--;
        return -2;
    }
    q->gs_live = true;
    s->n_active++;
    if (q->choice == 0) ragd_metrics_queue_time(s->o.metrics, RAGD_MTASK_GENERATE, now - t->t_arrival);
    t->queued_tokens -= q->n_prompt;
    s->queued_tokens -= q->n_prompt;
    if (t->choices_admitted == t->n_choices) {
        s->q[RAGD_ROLE_CHAT].head = t->next;
        if (!t->next) s->q[RAGD_ROLE_CHAT].tail = NULL;
        t->next = NULL;
        s->queued_reqs--;
        s->queued_tokens -= t->queued_tokens; /* 0 unless accounting drifted */
        t->queued_tokens = 0;
    }
    ragd_metrics_set_queue(s->o.metrics, s->queued_reqs, s->queued_tokens);
    ragd_metrics_set_running(s->o.metrics, s->n_active);
    return slot;
}

void ragd_sched_gen_step(ragd_sched *s) {
    ragd_served_model *sm = s->role_model[RAGD_ROLE_CHAT];
    if (!sm || !s->seqs) return;
    double now = ragd_now_s();
    /* 1. drop sequences whose client left or whose deadline passed (checked every step) */
    for (int i = 0; i < s->o.max_seqs; i++) {
        ragd_task *t = s->seqs[i].t;
        ragd_status why;
        if (t && ragd_sched_task_gone(s, t, now, true, &why))
            fail_task(s, t, why, why == RAGD_ETIMEOUT ? "the request's deadline passed while generating"
                                                      : "the client closed the connection");
    }
    /* 2. assemble: decode rows, running prefills, then new admissions */
    int budget = s->o.max_batch_tokens, nb = 0, ntok = 0;
    s->gb_start[0] = 0;
    for (int i = 0; i < s->o.max_seqs && ntok < budget; i++) {
        gen_seq *q = &s->seqs[i];
        if (!q->t || q->n_done < q->n_prompt) continue;
        s->gb_tokens[ntok++] = q->last;
        s->gb_slots[nb] = i;
        s->gb_chunk[nb] = 0;
        s->gb_start[++nb] = ntok;
    }
    for (int i = 0; i < s->o.max_seqs && ntok < budget; i++) {
        gen_seq *q = &s->seqs[i];
        if (!q->t || q->n_done >= q->n_prompt) continue;
        int chunk = q->n_prompt - q->n_done;
        if (chunk > budget - ntok) chunk = budget - ntok;
        memcpy(s->gb_tokens + ntok, q->t->tokens + q->n_done, (size_t)chunk * sizeof(int32_t));
        ntok += chunk;
        s->gb_slots[nb] = i;
        s->gb_chunk[nb] = chunk;
        s->gb_start[++nb] = ntok;
    }
    pthread_mutex_lock(&s->mu);
    while (nb < s->o.max_seqs && ntok < budget) {
        ragd_err err = {0};
        int slot = admit(s, now, &err);
        if (slot == -2) { /* sampler or text stream refused: fail the head task */
            ragd_task *t = s->q[RAGD_ROLE_CHAT].head;
            pthread_mutex_unlock(&s->mu);
            fail_task(s, t, RAGD_EINTERNAL, ragd_err_msg(&err));
            ragd_err_free(&err);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        if (slot < 0) break;
        gen_seq *q = &s->seqs[slot];
        int chunk = q->n_prompt < budget - ntok ? q->n_prompt : budget - ntok;
        memcpy(s->gb_tokens + ntok, q->t->tokens, (size_t)chunk * sizeof(int32_t));
        ntok += chunk;
        s->gb_slots[nb] = slot;
        s->gb_chunk[nb] = chunk;
        s->gb_start[++nb] = ntok;
    }
    pthread_mutex_unlock(&s->mu);
    if (!nb) return;

    /* 3. one forward step */
    ragd_batch b = {.n_seqs = nb, .tokens = s->gb_tokens, .seq_start = s->gb_start};
    ragd_err err = {0};
    double t0 = ragd_now_s();
    ragd_status st = ragd_engine_step(sm->engine, &b, s->gb_slots, s->logits, &err);
    if (st == RAGD_OK) ragd_sched_note_rate(s, ntok, ragd_now_s() - t0);
    if (st == RAGD_OK) st = ragd_sched_fault(s, RAGD_ROLE_CHAT, s->logits, (size_t)nb * (size_t)sm->model->cfg.n_vocab, &err);
    ragd_metrics_batch(s->o.metrics, RAGD_MTASK_GENERATE, nb, ntok);
    if (st) {
        char msg[768];
        snprintf(msg, sizeof msg, "chat engine step failed: %s", ragd_err_msg(&err));
        for (int r = 0; r < nb; r++) { /* every sequence of the batch has an undefined KV state now */
            ragd_task *t = s->seqs[s->gb_slots[r]].t;
            if (t) fail_task(s, t, st == RAGD_EDEVICE ? RAGD_EDEVICE : RAGD_EINTERNAL, msg);
        }
        if (st == RAGD_EDEVICE) {
            ragd_sched_gen_fail_model(s, sm, &err);
            ragd_sched_device_error(s, sm, &err);
        }
        ragd_err_free(&err);
        return;
    }
    /* 4. advance every row; rows whose prompt is still incomplete only move their offset */
    now = ragd_now_s();
    int n_vocab = sm->model->cfg.n_vocab;
    for (int r = 0; r < nb; r++) {
        int slot = s->gb_slots[r];
        gen_seq *q = &s->seqs[slot];
        if (!q->t) continue; /* failed earlier in this loop */
        if (s->gb_chunk[r]) {
            q->n_done += s->gb_chunk[r];
            ragd_metrics_tokens_in(s->o.metrics, RAGD_MTASK_GENERATE, s->gb_chunk[r]);
            if (q->n_done < q->n_prompt) continue;
        }
        advance(s, slot, s->logits + (size_t)r * n_vocab, n_vocab, now);
    }
}
