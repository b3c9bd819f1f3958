/* sched_internal.h — state shared by the scheduler's files (sched.c: lifecycle, queues, admission,
 * embed/rerank batches; sched_gen.c: continuous-batching generation). Everything below the mutex
 * comment is touched only by the device thread. */
#ifndef RAGD_SCHED_INTERNAL_H
#define RAGD_SCHED_INTERNAL_H

#include <pthread.h>

#include "grammar/grammar.h"
#include "sched/pen_list.h"
#include "sched/sched.h"

typedef struct task_queue {
    ragd_task *head, *tail;
} task_queue;

/* One generation sequence (a choice of a request); its engine sequence slot is its index in
 * ragd_sched.seqs. States: PREFILL (tokens[n_done..n_tok) still to compute) → DECODE (one token per
 * step); PREEMPTED (its KV blocks were taken back: it waits to be recomputed from tokens[0..n_tok),
 * then continues exactly where it was — same bits, same draws); FREE. */
typedef enum { SEQ_FREE = 0, SEQ_PREFILL, SEQ_DECODE, SEQ_PREEMPTED } seq_state;

typedef struct gen_seq {
    ragd_task *t;            /* NULL: slot free */
    seq_state state;
    int choice;
    int n_prompt;            /* prompt length */
    int n_tok;               /* tokens[0..n_tok): prompt + generated */
    int n_done;              /* tokens in the engine's KV cache */
    int n_gen;               /* tokens sampled */
    int32_t *tokens;         /* [max_ctx] (planned at startup) */
    uint64_t admit_no;       /* admission order (preemption victims: the most recent first) */
    ragd_gen_stream gs;      /* text: EOS, stop strings, max_tokens (tasks.h) */
    bool gs_live;
    ragd_buf emit;           /* text released by the last token */
    double t_last;           /* time of the last token */
    ragd_gmatch gm;          /* structured output (t->gen.grammar): the matcher after the generated tokens */
    ragd_pen_list pen;       /* penalties / logit_bias (ragd_gen_has_edits): the row's edits, updated per token
                              * (its memory is kept for the slot's next sequences) */
} gen_seq;

struct ragd_sched {
    ragd_sched_opts o;
    ragd_served_model **models;
    int n_models;
    ragd_served_model *role_model[RAGD_ROLE_COUNT];
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t mu;      /* guards everything down to the marker */
    pthread_cond_t cv;       /* work arrived / stop */
    pthread_cond_t started_cv;
    bool started, stop, draining;
    ragd_status start_status;
    ragd_err start_err;
    task_queue q[RAGD_ROLE_COUNT];
    int queued_reqs;
    int64_t queued_tokens;
    int in_flight;
    bool idle;
    double last_loop;
    double tok_rate;         /* tokens/s through the engines, smoothed (Retry-After estimate) */
    /* test hook (RAGD_FAULT=role:kind:n, see sched.c): inject a failure into the n-th forward of a role */
    int fault_role, fault_kind, fault_at, fault_count[RAGD_ROLE_COUNT];
    char *device_fault;      /* ragd_sched_mark_not_ready's reason, applied once by the device thread */
    bool device_fault_applied;
    /* ---- device thread only below */
    double last_sweep;
    double gen_last_poll; /* the running sequences' clients were last polled (at most every 20 ms) */
    int pool_turn;           /* alternates embed/rerank batches */
    double last_pool_end;    /* when the last embed/rerank batch finished (fill-delay heuristic) */
    int last_batch_tasks[RAGD_ROLE_COUNT]; /* distinct requests in the last batch of each role */
    /* pool batch buffers (planned at startup) */
    int32_t *pb_tokens;      /* [max_batch_tokens] */
    int32_t *pb_types;       /* [max_batch_tokens] token type ids of a cross-encoder batch */
    bool pb_any_types;       /* the batch has a sequence with segment B (type 1) */
    int32_t *pb_start;       /* [batch_seqs + 1] (largest over the models) */
    ragd_task **pb_task;     /* [batch_seqs] */
    int *pb_seq;             /* [batch_seqs] */
    float *pb_out;           /* [batch_seqs, max(n_embd, 2)] */
    /* generation (the chat model) */
    gen_seq *seqs;           /* [max_seqs] */
    int n_active;            /* slots in use (running or preempted) */
    uint64_t admit_count;
    int32_t *seq_tokens;     /* [max_seqs, max_ctx] backing of gen_seq.tokens */
    int32_t *gb_tokens;      /* [max_step_tokens] step batch */
    int32_t *gb_start;       /* [max_seqs + 1] */
    int32_t *gb_seqs;        /* [max_seqs] sequence slot of each row */
    int32_t *gb_chunk;       /* [max_seqs] tokens of the row */
    ragd_sample_params *gb_sp; /* [max_seqs] */
    ragd_sample_out *gb_out;   /* [max_seqs] */
    int *gb_order;           /* [max_seqs] running slots by admission */
    bool *gb_in_step;        /* [max_seqs] slot has a row in the step being assembled */
    /* logit processing of a step (planned at startup): masks, edits, the grammar's mask cache */
    ragd_vocab_trie *trie;   /* the chat model's vocabulary (NULL: no structured output) */
    ragd_gmask_cache *mcache;
    int mask_words;          /* words of a mask row for the engine (model n_vocab) */
    uint32_t *gb_masks;      /* [max_seqs, mask_words] (words past the trie's stay 0) */
    int *gb_entry;           /* [max_seqs] cache entry of row r, -1 */
    bool *gb_dead;           /* [max_seqs] row r's grammar allows no token: fail it after the step */
    ragd_logit_edit *gb_edits; /* [max_logit_edits] */
    int max_edits;
    int64_t preemptions;
};

/* sched.c */
void ragd_sched_finish(ragd_sched *s, ragd_task *t, ragd_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ragd_sched_device_error(ragd_sched *s, ragd_served_model *sm, const ragd_err *err);
bool ragd_sched_task_gone(ragd_sched *s, ragd_task *t, double now, bool poll_client, ragd_status *why);
void ragd_sched_queue_remove(ragd_sched *s, ragd_role r, ragd_task *t);

/* Fault injection for tests: returns the status to pretend the engine returned (and may poison out
 * with NaN, n values). RAGD_OK when no fault applies. */
ragd_status ragd_sched_fault(ragd_sched *s, ragd_role r, float *out, size_t n, ragd_err *err);
/* The same for a generation step: "nan" marks every sampled row non-finite. */
ragd_status ragd_sched_fault_gen(ragd_sched *s, ragd_sample_out *out, int n, ragd_err *err);

/* Folds one forward pass of n tokens taking dt seconds into the token-rate estimate. */
void ragd_sched_note_rate(ragd_sched *s, int n, double dt);

/* sched_gen.c */
ragd_status ragd_sched_gen_init(ragd_sched *s, ragd_err *err);
void ragd_sched_gen_free(ragd_sched *s);
bool ragd_sched_gen_has_work(ragd_sched *s); /* under mu */
void ragd_sched_gen_step(ragd_sched *s);
void ragd_sched_gen_fail_all(ragd_sched *s, ragd_status st, const char *msg);
void ragd_sched_gen_fail_model(ragd_sched *s, ragd_served_model *sm, const ragd_err *err); /* after a device error */

#endif
