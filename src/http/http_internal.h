/* http_internal.h — the request object and helpers shared by the HTTP layer's files:
 * server.c (libmicrohttpd plumbing, routing, auth, suspend/resume, SSE), errors.c (OpenAI error
 * objects), jsonv.c (typed field access with errors that name the field), api_*.c (one file per
 * endpoint family). */
#ifndef RAGD_HTTP_INTERNAL_H
#define RAGD_HTTP_INTERNAL_H

#include <jansson.h>
#include <pthread.h>

#include "http/http.h"

struct MHD_Connection;
typedef struct http_req http_req;

/* What a handler decided. */
typedef enum { HTTP_REPLY = 0, HTTP_PENDING } http_outcome;

/* An endpoint's async part: builds the reply once the task is done. */
typedef void (*http_finish_fn)(http_req *r);
/* Streaming: formats one generation event / the end into r->sse (under r->mu). */
typedef void (*http_event_fn)(http_req *r, const ragd_gen_event *ev);
typedef void (*http_end_fn)(http_req *r);

struct ragd_http {
    ragd_http_cfg cfg;
    struct MHD_Daemon *d;
    int port;
    size_t max_body;
    atomic_bool quiesced;
    int quiesced_fd;        /* the listen socket MHD_quiesce_daemon handed back; closed only after
                               MHD_stop_daemon, so its number cannot be reused while MHD threads run */
    atomic_int active;               /* requests between first byte and completion */
    atomic_uint_fast64_t next_id;
    ragd_served_model *role[RAGD_ROLE_COUNT];
    _Atomic(ragd_sched *) sched;     /* NULL while the models are loading */
};

struct http_req {
    ragd_http *h;
    struct MHD_Connection *conn;
    char id[72];
    ragd_endpoint ep;
    double t_start;
    ragd_buf body;
    bool too_big;
    bool handled;                    /* the handler ran (reply queued or task posted) */
    /* reply */
    int status;
    ragd_buf out;                    /* JSON body */
    const char *content_type;
    int retry_after;                 /* > 0: add Retry-After */
    /* async */
    pthread_mutex_t mu;              /* guards the fields down to `refs` */
    bool suspended, closed, done, submitted, streaming, stream_started;
    ragd_buf sse;                    /* pending SSE bytes */
    size_t sse_off;
    bool sse_end;
    int refs;
    ragd_task task;
    http_finish_fn finish;
    http_event_fn on_event;          /* generation events (stream or accumulate) */
    http_end_fn on_end;              /* streaming: final events, under mu */
    /* request-owned inputs and outputs of the task (freed with the request) */
    json_t *json;
    ragd_tok_ids toks;
    int32_t *seq_start;              /* [n_seqs + 1] */
    float *outv;                     /* task output */
    const char **stops;              /* [n_stop], point into json */
    void *api;                       /* endpoint state, freed with api_free */
    void (*api_free)(void *);
    ragd_served_model *sm;
    double timeout_s;
};

/* ---- replies (errors.c) */
/* Sets an OpenAI error reply: {"error": {"message", "type", "param", "code"}}. param/code may be NULL. */
void http_error(http_req *r, int status, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Maps a ragd_status from validation/tokenization/the scheduler to an HTTP error reply. */
void http_error_status(http_req *r, ragd_status st, const char *param, const char *msg);
void http_reply_json(http_req *r, int status); /* r->out already holds the body */

/* ---- request fields (jsonv.c): each returns false after setting a 400 reply naming the field */
bool jv_parse_body(http_req *r);                        /* r->json = object or 400 */
bool jv_check_keys(http_req *r, const char *const *allowed); /* unknown fields → 400 */
bool jv_string(http_req *r, const char *key, bool required, const char **out, size_t *len);
bool jv_int(http_req *r, const char *key, int64_t lo, int64_t hi, int64_t *out, bool *present);
bool jv_number(http_req *r, const char *key, double lo, double hi, double *out, bool *present);
bool jv_bool(http_req *r, const char *key, bool *out, bool *present);
/* "model": absent/null → role's model; else must name a model serving the role (404 otherwise). */
bool jv_model(http_req *r, ragd_role role, ragd_served_model **out);
/* A token-id array element check: ids in [0, n_vocab). */
bool jv_token_array(http_req *r, const json_t *arr, const char *param, int n_vocab, ragd_tok_ids *out);

/* ---- async (server.c) */
/* Posts r->task for r->sm (sink = the request) with its deadline (X-Request-Timeout-Ms or --timeout-ms).
 * On refusal (bad header, queue full, model not ready) sets the error reply and returns false. */
bool http_submit(http_req *r);

/* ---- endpoints */
http_outcome api_embed(http_req *r);           /* POST /embed */
http_outcome api_v1_embeddings(http_req *r);   /* POST /v1/embeddings */
http_outcome api_rerank(http_req *r);          /* POST /rerank */
http_outcome api_v1_rerank(http_req *r);       /* POST /v1/rerank */
http_outcome api_chat(http_req *r);            /* POST /v1/chat/completions */
http_outcome api_completions(http_req *r);     /* POST /v1/completions */
http_outcome api_models(http_req *r);          /* GET /v1/models */
http_outcome api_tokenize(http_req *r);        /* POST /tokenize */
http_outcome api_detokenize(http_req *r);      /* POST /detokenize */
http_outcome api_health(http_req *r);          /* GET /health */
http_outcome api_ready(http_req *r);           /* GET /health/ready */
http_outcome api_metrics(http_req *r);         /* GET /metrics */
http_outcome api_diagnostics(http_req *r);     /* GET /diagnostics */

/* "messages" of the request rendered with r->sm's chat template (400 naming the message on bad input),
 * APPENDED to out. (api_chat.c) */
bool api_render_messages(http_req *r, bool enable_thinking, ragd_buf *out);

/* Tokens of one text for a pooling role, truncated (text-level, at a character boundary) when
 * `truncate` and too long; else an over-long text is a 400 naming param, its token count and the
 * limit. Appends to r->toks. (api_embed.c) */
bool api_prepare_text_limit(http_req *r, ragd_role role, const char *param, int index, const char *text, size_t len,
                            bool truncate, ragd_status (*prep)(http_req *, const char *, size_t, ragd_tok_ids *, ragd_err *));

#endif
