/* sched.h — the public header of ragd's scheduler: one thread per device owns every engine on that
 * device and runs their batches; HTTP threads only post tasks and receive results.
 *
 * Threading contract:
 *   - ragd_sched_create starts the device thread, which creates the engines (so a CUDA context is
 *     only ever used from that thread), runs a warm-up forward pass per model and then marks the
 *     models ready. create returns only after that, with the startup status.
 *   - ragd_sched_submit may be called from any thread. On RAGD_OK the scheduler owns the task until
 *     it calls sink->on_done(ctx) exactly once (from the scheduler thread, or from submit's caller
 *     never: a refused submit returns an error and never calls on_done). Between submit and on_done
 *     the caller must not touch the task except its `cancel` flag.
 *   - sink callbacks run on the scheduler thread and must not block for long (they append to a
 *     buffer and wake a connection).
 *   - ragd_sched_free stops the thread after failing every queued and running task with
 *     RAGD_ECANCELLED (on_done is still called for each).
 *
 * Batching: embed/rerank sequences from any number of tasks are packed (no padding) into forward
 * calls of at most max_batch_tokens tokens / max_batch_seqs sequences (max_seqs on a model that also
 * chats: its engine has that many KV slots), waiting at most batch_delay_us for a
 * batch to fill. Generation is continuous: every step is one ragd_engine_step with the decode token
 * of each running sequence plus prefill chunks (at most max_step_tokens tokens per step, so running
 * streams keep a bounded inter-token latency while long prompts are prefilled). Sequences hold blocks
 * of the chat engine's paged KV cache; a prompt whose prefix is in the prefix cache starts after it.
 * When the pool runs out mid-generation, the most recently admitted sequence is preempted (its blocks
 * released) and recomputed later from its tokens — with the same results (engine.h) — never an
 * out-of-memory error or a truncated answer.
 *
 * Admission: a bounded queue (max_queue requests and max_queue_tokens tokens waiting) → RAGD_EBUSY.
 * Deadlines (task->deadline) are enforced while queued and between steps/batches while running
 * (→ RAGD_ETIMEOUT); a task whose client went away (task->cancel or sink->alive() false) is dropped
 * at the next step (→ RAGD_ECANCELLED).
 *
 * Failures: RAGD_EDEVICE from an engine marks its model not ready (ragd_sched_ready → false) and
 * fails its tasks; any other engine failure fails only the tasks of that batch. A non-finite output
 * fails its task (RAGD_EINTERNAL), never reaches the client.
 */
#ifndef RAGD_SCHED_H
#define RAGD_SCHED_H

#include <stdatomic.h>

#include "engine/engine.h"
#include "obs/obs.h"
#include "tasks/tasks.h"

typedef enum { RAGD_ROLE_EMBED = 0, RAGD_ROLE_RERANK, RAGD_ROLE_CHAT, RAGD_ROLE_COUNT } ragd_role;
const char *ragd_role_name(ragd_role r);

typedef enum { RAGD_TASK_EMBED = 0, RAGD_TASK_RERANK, RAGD_TASK_GENERATE } ragd_task_kind;

/* One generated token (or the end) of one choice, handed to the sink on the scheduler thread.
 * text/len: the newly final text (stop strings never included; may be empty while a possible stop
 * string is held back). Pointers are valid only during the call. */
typedef struct ragd_gen_event {
    int choice;
    const char *text;
    size_t len;
    bool has_token;          /* false for a finish-only event */
    int32_t token;
    float logprob;
    int n_top;               /* top alternatives requested (0..20) */
    const int32_t *top_ids;  /* [n_top] */
    const float *top_lp;     /* [n_top] */
    ragd_finish finish;      /* != NONE: this choice is complete */
} ragd_gen_event;

typedef struct ragd_task_sink {
    bool (*alive)(void *ctx);                           /* false: the client is gone */
    void (*on_gen)(void *ctx, const ragd_gen_event *ev); /* generation only */
    void (*on_done)(void *ctx);                         /* task finished; status/err/out are final */
} ragd_task_sink;

/* A unit of work. Inputs and `out` are owned by the caller and must stay valid until on_done. */
typedef struct ragd_task {
    ragd_task_kind kind;
    const char *req_id;             /* for logs */
    /* inputs: sequences packed as in ragd_batch; GENERATE: exactly one sequence (the prompt) */
    const int32_t *tokens;          /* [seq_start[n_seqs]] */
    const int32_t *seq_start;       /* [n_seqs + 1] */
    int n_seqs;
    const int32_t *seg_a;           /* RERANK by a cross-encoder with token types: [n_seqs] tokens of segment A
                                       (type 0; the rest type 1), or NULL: all type 0 */
    ragd_embed_opts embed;          /* EMBED */
    ragd_gen_opts gen;              /* GENERATE */
    int n_choices;                  /* GENERATE: independent samples of the prompt (OpenAI n) */
    int top_logprobs;               /* GENERATE: alternatives per token (0..20) */
    bool want_logprobs;
    double t_arrival, deadline;     /* ragd_now_s() clock; deadline 0 = none */
    /* outputs */
    float *out;                     /* EMBED: [n_seqs, dims]; RERANK: [n_seqs] */
    bool score_logit;               /* RERANK: out is the yes − no logit (NIM's "logit") instead of p(yes); for a
                                       cross-encoder its classifier logit instead of its sigmoid */
    int64_t prompt_tokens, completion_tokens;
    /* timing (ragd_now_s() clock, 0 = did not happen), set by the scheduler; final at on_done:
     *   queue = t_start - t_submit; GENERATE: prefill = t_first_token - t_start, decode = t_end - t_first_token,
     *   time to first token = t_first_token - t_arrival; EMBED/RERANK: compute = t_end - t_start */
    double t_submit;                /* accepted by ragd_sched_submit */
    double t_start;                 /* EMBED/RERANK: its first sequence entered a batch; GENERATE: choice 0 admitted */
    double t_first_token;           /* GENERATE: when the first token was produced */
    double t_end;                   /* its last sequence / choice finished (successful tasks only) */
    int64_t cached_tokens;          /* GENERATE: prompt tokens of choice 0 taken from the prefix cache at admission */
    ragd_status status;
    ragd_err err;
    /* cancellation by the caller (client gone); read by the scheduler each step */
    atomic_bool cancel;
    const ragd_task_sink *sink;
    void *ctx;
    /* private to the scheduler */
    struct ragd_task *next;
    int next_seq;                   /* EMBED/RERANK: first sequence not yet batched */
    int seqs_done;
    int choices_admitted, choices_done;
    int64_t queued_tokens;
    struct ragd_served_model *sm;
} ragd_task;

/* A model and the roles it serves. One ragd_model may serve several roles (the demo GGUF serves all
 * three); it then has one engine on the device with KV cache if it serves chat. */
typedef struct ragd_served_model {
    const char *name;               /* served name (/v1/models id, the "model" of responses) */
    const char *const *aliases;     /* other names requests may use for it (--served-name a,b,c), or NULL */
    int n_aliases;
    const ragd_model *model;
    bool roles[RAGD_ROLE_COUNT];
    const char *role_path[RAGD_ROLE_COUNT]; /* the path each role was given (roles given paths holding the same
                                               files share this model, its engine and its weights) */
    bool demo;                      /* demo quality (labelled in /v1/models) */
    int max_len[RAGD_ROLE_COUNT];   /* longest sequence per role, in tokens (effective limit) */
    atomic_bool ready;              /* loaded, warmed up and no device error since */
    char *not_ready_reason;         /* set once when a device error disables the model */
    int32_t yes_id, no_id;          /* rerank role */
    ragd_chat_template *chat_template; /* chat role: compiled at startup (immutable, read by HTTP threads) */
    struct ragd_vocab_trie *vocab_trie; /* chat role: built by the scheduler at start for structured output
                                           (NULL: not available, e.g. a decoder that does not concatenate
                                           token bytes); HTTP threads only test it for NULL */
    ragd_engine *engine;            /* owned by the scheduler thread */
    int batch_seqs;                 /* the engine's max_seqs (set by the caller: max_seqs if it chats,
                                       else max_batch_seqs): sequences per forward pass */
    ragd_engine_plan plan;
} ragd_served_model;

typedef struct ragd_sched_opts {
    ragd_device device;
    int cuda_device;
    int max_batch_tokens;
    int max_seqs;                   /* sequence slots of the chat engine (sequences per generation step) */
    int max_step_tokens;            /* tokens in one generation step (decode tokens + prefill chunks); 0 = max_batch_tokens */
    int kv_block_size;              /* KV block positions (0: engine default) */
    int64_t kv_cache_tokens;        /* KV pool in tokens; 0 = the rest of mem_limit (GPU) or max_seqs × context (CPU) */
    bool prefix_cache;
    int max_batch_seqs;             /* sequences per embed/rerank pass on engines without a KV cache */
    int max_queue;
    int64_t max_queue_tokens;
    int batch_delay_us;
    int n_threads;
    size_t mem_limit;               /* for all models of the device together; 0 = no limit */
    size_t mem_in_use;              /* device bytes in use before any plan (this process's CUDA context and
                                       libraries, and any other process): the plans get mem_limit − mem_in_use */
    size_t mem_reserve;             /* of that, kept free for what is allocated outside the plans (CUDA module
                                       loading, cuBLASLt state, decode graphs) when the KV pool fills the rest */
    /* device bytes in use now (NULL: not checked): after the engines are created and warmed up it must
     * be ≤ mem_limit, else the start fails with the numbers */
    ragd_status (*mem_probe)(void *ctx, size_t *in_use, ragd_err *err);
    void *mem_probe_ctx;
    ragd_metrics *metrics;
} ragd_sched_opts;

typedef struct ragd_sched ragd_sched;

/* Starts the device thread, creates an engine per served model (max_len[] and roles decide its
 * limits), checks that the plans fit mem_limit together (else RAGD_ENOMEM with the numbers per model
 * and part), warms every model up and marks it ready. `models` must outlive the scheduler. */
ragd_status ragd_sched_create(const ragd_sched_opts *o, ragd_served_model *const *models, int n_models,
                              ragd_sched **out, ragd_err *err);
/* Fails every remaining task with RAGD_ECANCELLED and stops the thread. The scheduler's memory stays
 * valid (submit answers RAGD_ECANCELLED, health/metrics still read it) until ragd_sched_free, so HTTP
 * threads may keep using their pointer until the HTTP server has stopped. Idempotent. NULL ok. */
void ragd_sched_stop(ragd_sched *s);
/* ragd_sched_stop, then frees the engines and the scheduler. Call only once no other thread can reach
 * it any more (after ragd_http_stop). NULL ok. */
void ragd_sched_free(ragd_sched *s);

/* Posts a task for model sm. RAGD_EBUSY: queue full (retry later); RAGD_ERANGE: larger than the queue
 * can ever hold (max_queue_tokens: never retry); RAGD_EUNAVAILABLE: model not ready (loading, failed device, unhealthy GPU); RAGD_ECANCELLED: shutting
 * down. On RAGD_OK the task belongs to the scheduler until on_done. */
ragd_status ragd_sched_submit(ragd_sched *s, ragd_served_model *sm, ragd_task *t, ragd_err *err);

/* Stop admitting new tasks (submit → RAGD_ECANCELLED); running and queued ones continue. */
void ragd_sched_drain(ragd_sched *s);
/* Tasks queued or running now. */
int ragd_sched_in_flight(ragd_sched *s);
/* Liveness: the scheduler loop went round within the last `max_age_s` seconds or is idle-waiting. */
bool ragd_sched_alive(ragd_sched *s, double max_age_s);
/* Whether `name` names the model: its served name or one of its aliases. */
bool ragd_served_model_is(const ragd_served_model *sm, const char *name);

/* The device itself is faulty (e.g. NVML reports uncorrectable ECC errors): every model of this
 * scheduler is marked not ready with `reason` (as after an RAGD_EDEVICE: /health/ready 503 naming it)
 * and its queued and running work fails. Any thread; the device thread applies it at its next loop
 * (within one batch or step). Only the first call counts. */
void ragd_sched_mark_not_ready(ragd_sched *s, const char *reason);

/* Seconds until the queue has drained half-way at the measured token rate (Retry-After), 1..60. */
int ragd_sched_retry_after(ragd_sched *s);

#endif
