/* sched_gen.c — continuous batching for the chat model over the engine's paged KV cache.
 *
 * Each choice of a request is a sequence (gen_seq) in one of the engine's sequence slots. A sequence
 * owns the list of its tokens (prompt, then every sampled token) and the count n_done of them already in
 * the KV cache; every step feeds it tokens[n_done .. n_done + chunk) and samples its next token when the
 * chunk reaches the end of the list. A decode step is the case chunk = 1; a prefill, a long chunked
 * prompt, a prompt after a prefix-cache hit and a preempted sequence being recomputed are all the same
 * code path — and because the engine's results do not depend on how a sequence was split into steps,
 * nor on what else ran, nor on where its prefix came from (engine.h), a sequence's tokens are the same
 * bits in every case. Draws are reproducible: the sampler's counter is the token's index.
 *
 * One step (ragd_sched_gen_step):
 *   1. drop sequences whose client left or whose deadline passed (blocks released);
 *   2. resume preempted sequences (oldest first), then admit queued choices, while sequence slots and
 *      KV blocks allow (a choice > 0 of a request waits until choice 0's prompt is in the cache, so it
 *      starts from the prefix cache instead of computing the prompt again);
 *   3. assemble the batch under the token budget (max_step_tokens): first one token for every decoding
 *      sequence, then prefill chunks, oldest admission first; each row's blocks are reserved first — when
 *      the pool is exhausted, the most recently admitted sequence not in this step is preempted (its
 *      blocks released; recomputed later), as vLLM does; never an out-of-memory error, never a cut answer;
 *   4. logit processing of the sampled rows (build_proc): a token mask per structured-output row (the
 *      mask cache, by matcher state), logit edits per row with penalties / logit_bias;
 *   5. one ragd_engine_step_proc (processing and sampling on the engine's device: only ids and
 *      requested logprobs return);
 *   6. advance: the matcher by the sampled token, commit sampled tokens, stream text (ragd_gen_stream:
 *      EOS, stop strings, max_tokens; a complete structured value ends the choice), finish choices and
 *      requests.
 *
 * Text: ragd_gen_stream (tasks.h) decodes ids incrementally (special tokens skipped), applies EOS,
 * stop strings and max_tokens, and holds back text that could be the start of a stop string — the same
 * code the CLI's `ragd generate` uses, so a stop string is never sent, even in a stream.
 */
#include "sched/sched_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static ragd_served_model *chat_model(ragd_sched *s) { return s->role_model[RAGD_ROLE_CHAT]; }
static int max_ctx_of(ragd_sched *s) { return ragd_engine_get_opts(chat_model(s)->engine)->max_ctx; }

static int step_budget(const ragd_sched *s) {
    int b = s->o.max_step_tokens;
    return b > 0 && b < s->o.max_batch_tokens ? b : s->o.max_batch_tokens;
}

/* Logit processing buffers, sized from max_seqs and the engine's max_logit_edits; the vocabulary trie
 * and the mask cache of structured output (a tokenizer whose tokens are not byte strings has none:
 * requests with a response_format are then refused by the HTTP layer). */
static ragd_status proc_init(ragd_sched *s, ragd_err *err) {
    ragd_served_model *sm = chat_model(s);
    ragd_engine *e = sm->engine;
    const ragd_model *m = sm->model;
    size_t ms = (size_t)s->o.max_seqs;
    s->mask_words = ragd_engine_mask_words(e);
    s->max_edits = ragd_engine_get_opts(e)->max_logit_edits;
    s->gb_masks = calloc(ms * (size_t)s->mask_words, sizeof *s->gb_masks);
    s->gb_entry = malloc(ms * sizeof *s->gb_entry);
    s->gb_dead = calloc(ms, sizeof *s->gb_dead);
    s->gb_edits = malloc((size_t)s->max_edits * sizeof *s->gb_edits);
    if (!s->gb_masks || !s->gb_entry || !s->gb_dead || !s->gb_edits)
        return ragd_err_set(err, RAGD_ENOMEM, "logit processing buffers for %zu sequences (%d edits)", ms, s->max_edits);
    if (!m->tok) return RAGD_OK;
    ragd_err terr = {0};
    double t0 = ragd_now_s();
    if (ragd_vocab_trie_from_tokenizer(m->tok, m->cfg.eos_ids, m->cfg.n_eos, &s->trie, &terr)) {
        RAGD_WARN("model %s: structured output (response_format) is not available: %s", sm->name, ragd_err_msg(&terr));
        ragd_err_free(&terr);
        return RAGD_OK;
    }
    if (ragd_vocab_trie_n_vocab(s->trie) > m->cfg.n_vocab) { /* a tokenizer beyond the lm head */
        RAGD_WARN("model %s: structured output is not available: the tokenizer has %d tokens, the model %d", sm->name,
                  ragd_vocab_trie_n_vocab(s->trie), m->cfg.n_vocab);
        ragd_vocab_trie_free(s->trie);
        s->trie = NULL;
        return RAGD_OK;
    }
    /* threads for the masks of a step's misses: half the cores, at most 8 (results never depend on it) */
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = nc >= 4 ? (int)(nc / 2 < 8 ? nc / 2 : 8) : 1;
    int entries = 8 * s->o.max_seqs < 512 ? 512 : 8 * s->o.max_seqs;
    s->mcache = ragd_gmask_cache_create(s->trie, entries, nt);
    if (!s->mcache)
        return ragd_err_set(err, RAGD_ENOMEM, "structured output mask cache of %d entries (%zu KiB each)", entries,
                            (size_t)ragd_vocab_trie_mask_words(s->trie) * 4 / 1024);
    sm->vocab_trie = s->trie;
    RAGD_INFO("structured output: vocabulary trie of %d tokens in %.0f ms; mask cache %d entries × %zu KiB (%.0f MiB), "
              "%d mask thread%s", ragd_vocab_trie_n_vocab(s->trie), (ragd_now_s() - t0) * 1e3, entries,
              (size_t)ragd_vocab_trie_mask_words(s->trie) * 4 / 1024,
              (double)entries * ragd_vocab_trie_mask_words(s->trie) * 4 / 1048576.0, nt, nt == 1 ? "" : "s");
    return RAGD_OK;
}

ragd_status ragd_sched_gen_init(ragd_sched *s, ragd_err *err) {
    ragd_served_model *sm = chat_model(s);
    if (!sm) return RAGD_OK;
    size_t ms = (size_t)s->o.max_seqs, ctx = (size_t)max_ctx_of(s);
    s->seqs = calloc(ms, sizeof *s->seqs);
    s->seq_tokens = malloc(ms * ctx * sizeof(int32_t));
    s->gb_tokens = malloc((size_t)s->o.max_batch_tokens * sizeof(int32_t));
    s->gb_start = malloc((ms + 1) * sizeof(int32_t));
    s->gb_seqs = malloc(ms * sizeof(int32_t));
    s->gb_chunk = malloc(ms * sizeof(int32_t));
    s->gb_sp = calloc(ms, sizeof *s->gb_sp);
    s->gb_out = calloc(ms, sizeof *s->gb_out);
    s->gb_order = malloc(ms * sizeof(int));
    s->gb_in_step = malloc(ms * sizeof(bool));
    if (!s->seqs || !s->seq_tokens || !s->gb_tokens || !s->gb_start || !s->gb_seqs || !s->gb_chunk || !s->gb_sp ||
        !s->gb_out || !s->gb_order || !s->gb_in_step)
        return ragd_err_set(err, RAGD_ENOMEM, "generation buffers for %zu sequences of %zu tokens", ms, ctx);
    for (size_t i = 0; i < ms; i++) s->seqs[i].tokens = s->seq_tokens + i * ctx;
    return proc_init(s, err);
}

void ragd_sched_gen_free(ragd_sched *s) {
    if (s->seqs)
        for (int i = 0; i < s->o.max_seqs; i++) {
            if (s->seqs[i].gs_live) ragd_gen_stream_free(&s->seqs[i].gs);
            ragd_buf_free(&s->seqs[i].emit);
            ragd_pen_list_free(&s->seqs[i].pen);
        }
    free(s->seqs);
    free(s->seq_tokens);
    free(s->gb_tokens);
    free(s->gb_start);
    free(s->gb_seqs);
    free(s->gb_chunk);
    free(s->gb_sp);
    free(s->gb_out);
    free(s->gb_order);
    free(s->gb_in_step);
    free(s->gb_masks);
    free(s->gb_entry);
    free(s->gb_dead);
    free(s->gb_edits);
    ragd_gmask_cache_free(s->mcache);
    if (chat_model(s) && chat_model(s)->vocab_trie == s->trie) chat_model(s)->vocab_trie = NULL;
    ragd_vocab_trie_free(s->trie);
    s->mcache = NULL;
    s->trie = NULL;
    s->seqs = NULL;
}

bool ragd_sched_gen_has_work(ragd_sched *s) { return s->q[RAGD_ROLE_CHAT].head || s->n_active > 0; }

static bool running(const gen_seq *q) { return q->state == SEQ_PREFILL || q->state == SEQ_DECODE; }

static void publish(ragd_sched *s) {
    int run = 0, pre = 0;
    for (int i = 0; i < s->o.max_seqs; i++) {
        run += running(&s->seqs[i]);
        pre += s->seqs[i].state == SEQ_PREEMPTED;
    }
    ragd_metrics_set_running(s->o.metrics, run);
    ragd_metrics_set_preempted(s->o.metrics, pre);
    ragd_engine_kv_stats ks;
    ragd_engine_kv_stats_get(chat_model(s)->engine, &ks);
    ragd_metrics_set_kv(s->o.metrics, ks.used, ks.cached, ks.n_blocks, ks.lookup_tokens, ks.hit_tokens);
}

static void release_seq(ragd_sched *s, int slot) {
    gen_seq *q = &s->seqs[slot];
    if (!q->t) return;
    if (q->gs_live) ragd_gen_stream_free(&q->gs);
    q->gs_live = false;
    q->t = NULL;
    q->state = SEQ_FREE;
    s->n_active--;
    ragd_engine_seq_close(chat_model(s)->engine, slot); /* no-op when preempted (closed already) */
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
    ragd_metrics_finish(s->o.metrics, st == RAGD_ECANCELLED || st == RAGD_ETIMEOUT ? RAGD_MFINISH_CANCELLED : RAGD_MFINISH_ERROR);
    publish(s); /* its blocks are free before the client hears of the end */
    ragd_sched_finish(s, t, st, "%s", msg);
}

void ragd_sched_gen_fail_all(ragd_sched *s, ragd_status st, const char *msg) {
    if (!s->seqs) return;
    for (int i = 0; i < s->o.max_seqs; i++)
        if (s->seqs[i].t) fail_task(s, s->seqs[i].t, st, msg);
}

void ragd_sched_gen_fail_model(ragd_sched *s, ragd_served_model *sm, const ragd_err *err) {
    if (chat_model(s) != sm || !s->seqs) return;
    char msg[768];
    snprintf(msg, sizeof msg, "model %s failed on the device: %s", sm->name, ragd_err_msg(err));
    ragd_sched_gen_fail_all(s, RAGD_EDEVICE, msg);
}

static bool is_eos(const ragd_model *m, int32_t tok) {
    for (int i = 0; i < m->cfg.n_eos; i++)
        if (m->cfg.eos_ids[i] == tok) return true;
    return false;
}

/* A choice finished normally. */
static void finish_choice(ragd_sched *s, int slot, ragd_finish fin) {
    ragd_task *t = s->seqs[slot].t;
    release_seq(s, slot);
    ragd_metrics_finish(s->o.metrics, fin == RAGD_FINISH_LENGTH ? RAGD_MFINISH_LENGTH : RAGD_MFINISH_STOP);
    t->choices_done++;
    if (t->choices_done == t->n_choices) {
        t->prompt_tokens = t->seq_start[1];
        t->t_end = ragd_now_s();
        ragd_metrics_e2e(s->o.metrics, t->t_end - t->t_arrival);
        ragd_metrics_phase(s->o.metrics, RAGD_MPHASE_DECODE, RAGD_MTASK_GENERATE, t->t_end - t->t_first_token);
        publish(s);
        ragd_sched_finish(s, t, RAGD_OK, NULL);
    }
}

static int n_top_of(const ragd_task *t) {
    if (!t->want_logprobs || t->top_logprobs <= 0) return 0;
    return t->top_logprobs < RAGD_SAMPLE_MAX_TOP ? t->top_logprobs : RAGD_SAMPLE_MAX_TOP;
}

/* The sampling parameters of the sequence's next token. */
static void seq_params(const ragd_model *m, const gen_seq *q, ragd_sample_params *p) {
    ragd_gen_sample_params(m, &q->t->gen, q->choice, q->n_gen, q->t->want_logprobs, n_top_of(q->t), p);
}

/* The matcher of a lazy grammar starts, fed bytes (the rest of the triggering token, or for a leading
 * trigger the trigger and the rest); if those do not fit the grammar, the text stays free (the answer
 * is then plain text, never a call outside the grammar: toolcall.c parses only complete calls). */
static void trigger_start(gen_seq *q, const char *b, int len) {
    const ragd_grammar *g = q->t->gen.grammar;
    ragd_gmatch_init(g, &q->gm);
    q->trig_n = q->t->gen.grammar_trigger_lead ? -1 : 0; /* a later trigger may still start it */
    if (len > 0 && !ragd_gmatch_advance(g, &q->gm, b, (size_t)len)) return;
    q->gm_on = true;
}

/* A lazy grammar still off: does the generated text now hold its trigger? Bytes of special tokens
 * (absent from the trie) are not text and reset the window; the trigger id is such a token. A leading
 * trigger (grammar_trigger_lead) is looked for only at the start of the answer: trig_n counts the
 * trigger's bytes matched so far, -1 once the answer started otherwise. */
static void trigger_check(ragd_sched *s, gen_seq *q, int32_t tok) {
    const ragd_gen_opts *o = &q->t->gen;
    const char *trig = o->grammar_trigger;
    if (q->trig_n < 0) return; /* a leading trigger that did not come (or did, and did not fit) */
    if (o->has_trigger_id && tok == o->grammar_trigger_id && (!o->grammar_trigger_lead || q->trig_n == 0)) {
        trigger_start(q, NULL, 0);
        return;
    }
    int len = 0;
    const char *b = ragd_vocab_trie_token(s->trie, tok, &len);
    const int tl = (int)strlen(trig);
    RAGD_ASSERT(tl > 0 && tl <= (int)sizeof q->trig_tail); /* the HTTP layer's triggers are short */
    if (o->grammar_trigger_lead) {
        if (!b || len <= 0) { /* a special token first: the answer did not start with the trigger */
            q->trig_n = -1;
            return;
        }
        for (int i = 0; i < len; i++) {
            char c = b[i];
            if (q->trig_n == 0 && (c == ' ' || c == '\n' || c == '\t' || c == '\r')) continue;
            if (c != trig[q->trig_n]) {
                q->trig_n = -1;
                return;
            }
            if (++q->trig_n == tl) { /* the matcher takes the trigger, then the rest of this token */
                char buf[sizeof q->trig_tail + RAGD_VOCAB_MAX_TOKEN_BYTES];
                memcpy(buf, trig, (size_t)tl);
                memcpy(buf + tl, b + i + 1, (size_t)(len - i - 1));
                trigger_start(q, buf, tl + len - i - 1);
                return;
            }
        }
        return;
    }
    if (!b || len <= 0) {
        q->trig_n = 0;
        return;
    }
    for (int i = 0; i < len; i++) { /* the last tl bytes, one byte at a time: do they spell the trigger? */
        if (q->trig_n == tl) {
            memmove(q->trig_tail, q->trig_tail + 1, (size_t)tl - 1);
            q->trig_n--;
        }
        q->trig_tail[q->trig_n++] = (uint8_t)b[i];
        if (q->trig_n == tl && !memcmp(q->trig_tail, trig, (size_t)tl)) {
            trigger_start(q, b + i + 1, len - i - 1);
            return;
        }
    }
}

/* Appends the sampled token to the sequence and hands its text to the sink. */
static void advance(ragd_sched *s, int slot, const ragd_sample_out *o, double now) {
    gen_seq *q = &s->seqs[slot];
    ragd_task *t = q->t;
    const ragd_model *m = chat_model(s)->model;
    if (o->nonfinite) {
        fail_task(s, t, RAGD_EINTERNAL, "the model produced a non-finite logit");
        return;
    }
    int32_t tok = o->token;
    const ragd_grammar *gr = t->gen.grammar;
    bool was_on = gr && q->gm_on;
    if (was_on && !ragd_gmatch_advance_token(gr, &q->gm, s->trie, tok)) { /* the mask allowed it: never expected */
        char msg[160];
        snprintf(msg, sizeof msg, "structured output: the sampled token %d does not continue the grammar", tok);
        fail_task(s, t, RAGD_EINTERNAL, msg);
        return;
    }
    if (gr && !was_on) trigger_check(s, q, tok);
    q->tokens[q->n_tok++] = tok;
    q->n_gen++;
    if (ragd_gen_has_edits(&t->gen)) {
        ragd_err perr = {0};
        if (ragd_pen_list_push(&q->pen, tok, &perr)) {
            fail_task(s, t, RAGD_ENOMEM, ragd_err_msg(&perr));
            ragd_err_free(&perr);
            return;
        }
    }
    q->state = SEQ_DECODE;
    t->completion_tokens++;
    ragd_metrics_tokens_out(s->o.metrics, 1);
    if (!t->t_first_token) {
        t->t_first_token = now;
        ragd_metrics_ttft(s->o.metrics, now - t->t_arrival);
        ragd_metrics_phase(s->o.metrics, RAGD_MPHASE_PREFILL, RAGD_MTASK_GENERATE, now - t->t_start);
    } else if (q->t_last > 0) ragd_metrics_itl(s->o.metrics, now - q->t_last);
    q->t_last = now;

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
    /* structured output: a complete value with nothing allowed after it but EOS ends the choice now
     * (without computing a step whose only possible token is EOS) */
    if (gr && q->gm_on && fin == RAGD_FINISH_NONE && ragd_gmatch_finished(gr, &q->gm))
        ragd_gen_stream_end(&q->gs, &q->emit, &fin);
    /* prompt + max_tokens ≤ the context was checked when the request was validated */
    RAGD_ASSERT(fin != RAGD_FINISH_NONE || q->n_tok < max_ctx_of(s));
    bool eos_end = fin == RAGD_FINISH_STOP && !t->gen.ignore_eos && is_eos(m, tok); /* EOS is not reported as a token */
    ragd_gen_event ev = {.choice = q->choice, .text = q->emit.data ? q->emit.data : "", .len = q->emit.len,
                         .has_token = !eos_end, .token = tok, .logprob = o->logprob,
                         .n_top = eos_end ? 0 : o->n_top, .top_ids = o->top_ids, .top_lp = o->top_lp, .finish = fin};
    if (t->sink->on_gen) t->sink->on_gen(t->ctx, &ev);
    if (fin != RAGD_FINISH_NONE) finish_choice(s, slot, fin);
}

/* ---- admission, resumption, preemption ---------------------------------------------------------- */

static int free_slot(const ragd_sched *s) {
    for (int i = 0; i < s->o.max_seqs; i++)
        if (!s->seqs[i].t) return i;
    return -1;
}

/* Blocks a sequence needs to reach the end of its tokens and sample once more, beyond what it holds. */
static int blocks_to_finish_prompt(ragd_sched *s, int slot) {
    gen_seq *q = &s->seqs[slot];
    return ragd_engine_seq_blocks_needed(chat_model(s)->engine, slot, q->n_tok + 1);
}

/* Headroom kept for running sequences: each may need a new block in the next step. */
static int headroom(const ragd_sched *s) {
    int n = 0;
    for (int i = 0; i < s->o.max_seqs; i++) n += running(&s->seqs[i]);
    return n;
}

/* Opens the engine sequence of slot (its tokens so far); keeps it only if the pool can take the rest
 * of its prefill now. *avail is what the pool can still give this step (decremented). */
static bool open_if_fits(ragd_sched *s, int slot, int *avail) {
    gen_seq *q = &s->seqs[slot];
    ragd_engine *e = chat_model(s)->engine;
    int n_cached = 0;
    ragd_err err = {0};
    ragd_status st = ragd_engine_seq_open(e, slot, q->tokens, q->n_tok, &n_cached, &err);
    RAGD_ASSERT(st == RAGD_OK); /* slot closed, tokens within max_ctx: invariants here */
    int need = blocks_to_finish_prompt(s, slot);
    if (need > *avail) {
        ragd_engine_seq_close(e, slot);
        return false;
    }
    *avail -= need;
    q->n_done = n_cached;
    if (n_cached) ragd_metrics_prefix_hit(s->o.metrics, n_cached);
    return true;
}

/* Takes a free slot for the next choice of the head task, if slots and blocks allow. Returns the slot,
 * -1 (nothing to admit now) or -2 (the head task is invalid: failed by the caller with err). Under mu. */
static int admit(ragd_sched *s, double now, int *avail, ragd_err *err) {
    ragd_task *t = s->q[RAGD_ROLE_CHAT].head;
    if (!t) return -1;
    int slot = free_slot(s);
    if (slot < 0) return -1;
    if (t->choices_admitted > 0) /* choice 0's prompt must be in the prefix cache first */
        for (int i = 0; i < s->o.max_seqs; i++)
            if (s->seqs[i].t == t && s->seqs[i].choice == 0 && s->seqs[i].state != SEQ_DECODE) return -1;
    const ragd_model *m = chat_model(s)->model;
    gen_seq *q = &s->seqs[slot];
    int n = t->seq_start[1];
    if (n >= max_ctx_of(s)) return ragd_err_set(err, RAGD_ERANGE, "the prompt (%d tokens) does not fit the context", n), -2;
    q->t = t;
    q->choice = t->choices_admitted;
    q->n_gen = 0;
    ragd_sample_params p;
    seq_params(m, q, &p);
    if (ragd_sample_check(&p, m->cfg.n_vocab, err)) {
        q->t = NULL;
        return -2;
    }
    if (t->gen.grammar && !s->trie) {
        q->t = NULL;
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "structured output is not available for this model"), -2;
    }
    if (t->gen.grammar) ragd_gmatch_init(t->gen.grammar, &q->gm);
    q->gm_on = t->gen.grammar && !t->gen.grammar_trigger;
    q->trig_n = 0;
    memcpy(q->tokens, t->tokens, (size_t)n * sizeof(int32_t));
    q->n_prompt = q->n_tok = n;
    if (ragd_gen_has_edits(&t->gen)) {
        const ragd_gen_opts *o = &t->gen;
        bool rep = o->repetition_penalty > 0 && o->repetition_penalty != 1;
        bool fp = o->frequency_penalty != 0 || o->presence_penalty != 0;
        if (ragd_pen_list_start(&q->pen, o->logit_bias, o->n_logit_bias, rep, fp, q->tokens, n, err)) {
            q->t = NULL;
            return -2;
        }
    }
    if (!open_if_fits(s, slot, avail)) {
        q->t = NULL;
        return -1;
    }
    if (ragd_gen_stream_init(&q->gs, m, &t->gen, err)) {
        ragd_engine_seq_close(chat_model(s)->engine, slot);
        q->t = NULL;
        return -2;
    }
    q->gs_live = true;
    q->state = SEQ_PREFILL;
    q->t_last = 0;
    q->admit_no = ++s->admit_count;
    t->choices_admitted++;
    s->n_active++;
    if (q->choice == 0) {
        t->t_start = now;
        t->cached_tokens = q->n_done; /* open_if_fits: the prompt's prefix-cache hit */
        ragd_metrics_queue_time(s->o.metrics, RAGD_MTASK_GENERATE, now - t->t_arrival);
        ragd_metrics_phase(s->o.metrics, RAGD_MPHASE_QUEUE, RAGD_MTASK_GENERATE, now - t->t_submit);
    }
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
    return slot;
}

static void preempt(ragd_sched *s, int slot) {
    gen_seq *q = &s->seqs[slot];
    RAGD_ASSERT(running(q));
    ragd_engine_seq_close(chat_model(s)->engine, slot);
    q->state = SEQ_PREEMPTED;
    q->n_done = 0;
    s->preemptions++;
    ragd_metrics_preemption(s->o.metrics);
    RAGD_DEBUG("[%s] choice %d preempted after %d tokens (KV cache full); it resumes when blocks are free",
               q->t->req_id ? q->t->req_id : "-", q->choice, q->n_gen);
}

/* The most recently admitted running sequence newer than `than` and not in this step, or -1. */
static int victim(ragd_sched *s, uint64_t than, const bool *in_step) {
    int best = -1;
    for (int i = 0; i < s->o.max_seqs; i++) {
        gen_seq *q = &s->seqs[i];
        if (!running(q) || in_step[i] || q->admit_no <= than) continue;
        if (best < 0 || q->admit_no > s->seqs[best].admit_no) best = i;
    }
    return best;
}

/* Reserves blocks for `chunk` more tokens of slot, preempting newer sequences when the pool is full.
 * Returns the chunk that could be reserved (possibly smaller, 0 = none). */
static int reserve_chunk(ragd_sched *s, int slot, int chunk, const bool *in_step) {
    ragd_engine *e = chat_model(s)->engine;
    gen_seq *q = &s->seqs[slot];
    for (;;) {
        ragd_err err = {0};
        ragd_status st = ragd_engine_seq_reserve(e, slot, q->n_done + chunk, &err);
        ragd_err_free(&err);
        if (st == RAGD_OK) return chunk;
        RAGD_ASSERT(st == RAGD_EBUSY);
        int v = victim(s, q->admit_no, in_step);
        if (v >= 0) {
            preempt(s, v);
            continue;
        }
        /* nothing newer to take from: a prefill shrinks to the positions its blocks already hold */
        int fit = 0;
        while (fit < chunk && ragd_engine_seq_blocks_needed(e, slot, q->n_done + fit + 1) == 0) fit++;
        return fit;
    }
}

/* ---- one step ---------------------------------------------------------------------------------- */

/* Cancellation and deadlines are checked every step; whether a client is still connected costs a
 * syscall per sequence, so (as for queued tasks) it is polled at most every 20 ms — at 256 streams every
 * step's 256 polls were host time the GPU waited for. */
static void drop_gone(ragd_sched *s, double now) {
    bool poll = now - s->gen_last_poll > 0.02;
    if (poll) s->gen_last_poll = now;
    for (int i = 0; i < s->o.max_seqs; i++) {
        ragd_task *t = s->seqs[i].t;
        ragd_status why;
        if (t && ragd_sched_task_gone(s, t, now, poll, &why))
            fail_task(s, t, why, why == RAGD_ETIMEOUT ? "the request's deadline passed while generating"
                                                      : "the client closed the connection");
    }
}

static void resume_and_admit(ragd_sched *s, double now) {
    ragd_engine *e = chat_model(s)->engine;
    int avail = ragd_engine_kv_available(e) - headroom(s);
    /* preempted sequences first, oldest first */
    for (;;) {
        int best = -1;
        for (int i = 0; i < s->o.max_seqs; i++)
            if (s->seqs[i].state == SEQ_PREEMPTED && (best < 0 || s->seqs[i].admit_no < s->seqs[best].admit_no)) best = i;
        if (best < 0) break;
        if (!open_if_fits(s, best, &avail)) return; /* no room: new requests wait behind it too */
        s->seqs[best].state = SEQ_PREFILL;
    }
    pthread_mutex_lock(&s->mu);
    for (;;) {
        ragd_err err = {0};
        int slot = admit(s, now, &avail, &err);
        if (slot == -2) { /* the head task cannot run: fail it */
            ragd_task *t = s->q[RAGD_ROLE_CHAT].head;
            pthread_mutex_unlock(&s->mu);
            fail_task(s, t, err.code == RAGD_ERANGE || err.code == RAGD_EUNSUPPORTED ? err.code : RAGD_EINTERNAL,
                      ragd_err_msg(&err));
            ragd_err_free(&err);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        if (slot < 0) break;
    }
    pthread_mutex_unlock(&s->mu);
}

/* Adds row `slot` with `chunk` tokens to the step batch. */
static void add_row(ragd_sched *s, int slot, int chunk, int *nb, int *ntok, bool *in_step) {
    gen_seq *q = &s->seqs[slot];
    const ragd_model *m = chat_model(s)->model;
    memcpy(s->gb_tokens + *ntok, q->tokens + q->n_done, (size_t)chunk * sizeof(int32_t));
    *ntok += chunk;
    s->gb_seqs[*nb] = slot;
    s->gb_chunk[*nb] = chunk;
    ragd_sample_params *p = &s->gb_sp[*nb];
    if (q->n_done + chunk == q->n_tok) seq_params(m, q, p); /* the chunk reaches the end: sample */
    else memset(p, 0, sizeof *p);
    s->gb_start[++*nb] = *ntok;
    in_step[slot] = true;
}

/* Slots of running sequences in admission order. */
static int by_admission(ragd_sched *s, int *order) {
    int n = 0;
    for (int i = 0; i < s->o.max_seqs; i++)
        if (running(&s->seqs[i])) order[n++] = i;
    for (int i = 1; i < n; i++) { /* insertion sort: n ≤ max_seqs, mostly sorted already */
        int x = order[i], j = i;
        while (j > 0 && s->seqs[order[j - 1]].admit_no > s->seqs[x].admit_no) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = x;
    }
    return n;
}

/* ---- logit processing ---------------------------------------------------------------------------- */

/* The row's logit edits at s->gb_edits[*n ..): the sequence's list (pen_list.h: logit_bias, then every
 * id of the sequence — repetition penalty: prompt and generated; frequency / presence: counts in the
 * generated tokens), kept up to date per token, so a step copies it instead of rescanning the tokens. */
static void build_edits(ragd_sched *s, const gen_seq *q, ragd_sample_params *p, int *n) {
    const int base = *n;
    /* capacity: ≤ n_logit_bias (≤ RAGD_MAX_LOGIT_BIAS) + n_tok (< max_ctx) per row: the default max_logit_edits */
    RAGD_ASSERT(q->pen.n <= q->t->gen.n_logit_bias + q->n_tok && base + q->pen.n <= s->max_edits);
    memcpy(s->gb_edits + base, q->pen.e, (size_t)q->pen.n * sizeof *q->pen.e);
    p->edit_off = base;
    p->n_edit = q->pen.n;
    *n = base + q->pen.n;
}

static bool mask_empty(const uint32_t *w, int n) {
    for (int i = 0; i < n; i++)
        if (w[i]) return false;
    return true;
}

/* Fills proc (and the rows' mask_row / edit ranges) for the step's nb rows. A row whose grammar allows
 * nothing is made inactive and marked dead (failed after the step). Every row's mask and edits are a
 * function of its own sequence only. */
static void build_proc(ragd_sched *s, int nb, ragd_step_proc *proc) {
    int n_edits = 0, n_masks = 0;
    bool any_mask = false;
    if (s->mcache) ragd_gmask_cache_begin(s->mcache);
    for (int r = 0; r < nb; r++) {
        gen_seq *q = &s->seqs[s->gb_seqs[r]];
        ragd_sample_params *p = &s->gb_sp[r];
        s->gb_entry[r] = -1;
        s->gb_dead[r] = false;
        if (!p->active) continue;
        if (q->t->gen.grammar && q->gm_on) {
            s->gb_entry[r] = ragd_gmask_cache_lookup(s->mcache, q->t->gen.grammar, &q->gm);
            RAGD_ASSERT(s->gb_entry[r] >= 0); /* the cache holds more entries than a step has rows */
            any_mask = true;
        }
        if (ragd_gen_has_edits(&q->t->gen)) build_edits(s, q, p, &n_edits);
    }
    if (any_mask) {
        ragd_gmask_cache_compute(s->mcache);
        ragd_gmask_cache_stats cs;
        ragd_gmask_cache_stats_get(s->mcache, &cs);
        ragd_metrics_set_grammar(s->o.metrics, cs.lookups, cs.hits, cs.computed, cs.compute_s);
        const int tw = ragd_vocab_trie_mask_words(s->trie);
        for (int r = 0; r < nb; r++) {
            if (s->gb_entry[r] < 0) continue;
            int row = -1;
            for (int r2 = 0; r2 < r && row < 0; r2++) /* rows in one state share a mask row */
                if (s->gb_entry[r2] == s->gb_entry[r]) row = s->gb_sp[r2].mask_row - 1;
            if (row < 0) {
                row = n_masks++;
                const uint32_t *m = ragd_gmask_cache_mask(s->mcache, s->gb_entry[r]);
                memcpy(s->gb_masks + (size_t)row * (size_t)s->mask_words, m, (size_t)tw * sizeof *m);
            }
            s->gb_sp[r].mask_row = row + 1;
            if (mask_empty(s->gb_masks + (size_t)row * (size_t)s->mask_words, tw)) {
                s->gb_dead[r] = true;
                s->gb_sp[r].active = 0;
            }
        }
    }
    proc->masks = s->gb_masks;
    proc->n_masks = n_masks;
    proc->edits = s->gb_edits;
    proc->n_edits = n_edits;
}

void ragd_sched_gen_step(ragd_sched *s) {
    ragd_served_model *sm = chat_model(s);
    if (!sm || !s->seqs) return;
    double now = ragd_now_s(), t_start = now;
    drop_gone(s, now);
    resume_and_admit(s, now);

    /* assemble: one token per decoding sequence, then prefill chunks, under the token budget */
    int budget = step_budget(s), nb = 0, ntok = 0;
    int *order = s->gb_order;
    bool *in_step = s->gb_in_step;
    memset(in_step, 0, sizeof(bool) * (size_t)s->o.max_seqs);
    int n_run = by_admission(s, order);
    s->gb_start[0] = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < n_run && ntok < budget; k++) {
            int slot = order[k];
            gen_seq *q = &s->seqs[slot];
            if (!running(q) || in_step[slot]) continue; /* preempted by an older row of this step */
            int left = q->n_tok - q->n_done;
            if ((pass == 0) != (left == 1)) continue;
            int chunk = left < budget - ntok ? left : budget - ntok;
            chunk = reserve_chunk(s, slot, chunk, in_step);
            if (chunk > 0) add_row(s, slot, chunk, &nb, &ntok, in_step);
            else if (left == 1 && running(q)) preempt(s, slot); /* a decode row that cannot grow: recompute later */
        }
    publish(s);
    if (!nb) return;

    /* logit processing of the sampled rows: token masks (structured output), penalties, logit_bias */
    ragd_step_proc proc = {0};
    build_proc(s, nb, &proc);

    /* one forward step, sampling on the device */
    ragd_batch b = {.n_seqs = nb, .tokens = s->gb_tokens, .seq_start = s->gb_start};
    ragd_err err = {0};
    double t0 = ragd_now_s();
    ragd_status st = ragd_engine_step_proc(sm->engine, &b, s->gb_seqs, s->gb_sp, &proc, s->gb_out, NULL, &err);
    double t1 = ragd_now_s();
    if (st == RAGD_OK) ragd_sched_note_rate(s, ntok, t1 - t0);
    if (st == RAGD_OK) st = ragd_sched_fault_gen(s, s->gb_out, nb, &err);
    ragd_metrics_batch(s->o.metrics, RAGD_MTASK_GENERATE, nb, ntok);
    if (st) {
        char msg[768];
        snprintf(msg, sizeof msg, "chat engine step failed: %s", ragd_err_msg(&err));
        for (int r = 0; r < nb; r++) { /* the batch's sequences have no defined next state: fail them */
            ragd_task *t = s->seqs[s->gb_seqs[r]].t;
            if (t) fail_task(s, t, st == RAGD_EDEVICE ? RAGD_EDEVICE : RAGD_EINTERNAL, msg);
        }
        if (st == RAGD_EDEVICE) {
            ragd_sched_gen_fail_model(s, sm, &err);
            ragd_sched_device_error(s, sm, &err);
        }
        ragd_err_free(&err);
        return;
    }
    /* advance every row; rows whose chunk did not reach the end only move their offset */
    now = ragd_now_s();
    for (int r = 0; r < nb; r++) {
        int slot = s->gb_seqs[r];
        gen_seq *q = &s->seqs[slot];
        if (!q->t) continue; /* failed earlier in this loop (another choice of its request) */
        q->n_done += s->gb_chunk[r];
        if (q->n_gen == 0 && q->n_done <= q->n_prompt)
            ragd_metrics_tokens_in(s->o.metrics, RAGD_MTASK_GENERATE, s->gb_chunk[r]);
        if (s->gb_dead[r]) {
            fail_task(s, q->t, RAGD_EINTERNAL, "structured output: the grammar allows no token of the vocabulary here "
                      "(a dead end; the answer so far is not returned as a success)");
            continue;
        }
        if (s->gb_sp[r].active) advance(s, slot, &s->gb_out[r], now);
    }
    publish(s);
    ragd_metrics_gen_step(s->o.metrics, t1 - t0, (t0 - t_start) + (ragd_now_s() - t1));
}
