/* http_internal.h — the request object and helpers shared by the HTTP layer's files:
 * door.c (our listening socket, connection admission and deadlines in front of libmicrohttpd),
 * http_head.c (strict request-head parser), server.c (libmicrohttpd plumbing, routing, auth,
 * suspend/resume, SSE, the request-memory budget), errors.c (OpenAI error objects), jsonv.c (JSON
 * pre-scan and typed field access with errors that name the field), api_*.c (one file per endpoint
 * family). */
#ifndef RAGD_HTTP_INTERNAL_H
#define RAGD_HTTP_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <sys/socket.h>

#include "http/http.h"

struct MHD_Connection;
typedef struct http_req http_req;
typedef struct http_door http_door;
typedef struct http_tls http_tls;

/* ---- request heads (http_head.c) */
typedef enum { HTTP_HEAD_MORE = 0, HTTP_HEAD_OK, HTTP_HEAD_BAD } http_head_result;
typedef struct http_head_limits {
    size_t max_head;    /* request line + fields + the empty line */
    size_t max_target;  /* request target (path + query) */
    int max_fields;
} http_head_limits;
/* A parsed head; pointers (not NUL-terminated) into the parsed buffer. */
typedef struct http_head {
    size_t len;                          /* bytes up to and including the empty line */
    const char *method, *target;
    size_t method_len, target_len;
    int minor;                           /* HTTP/1.minor */
    int n_fields;
    bool has_host, has_cl, chunked;
    uint64_t content_length;             /* UINT64_MAX when it overflows */
    const char *auth, *req_id, *origin;  /* Authorization / X-Request-Id / Origin values (trimmed), NULL if absent */
    size_t auth_len, req_id_len, origin_len;
} http_head;
typedef struct http_head_err {
    int status;                          /* 400, 414, 417, 431, 505 */
    const char *code;
    char msg[256];
} http_head_err;
/* Parses the bytes received so far; see http_head.c for what is accepted. */
http_head_result http_head_parse(const char *buf, size_t len, const http_head_limits *lim, http_head *h,
                                 http_head_err *e);
const char *http_reason(int status); /* "Bad Request", ... */

/* What a handler decided. */
typedef enum { HTTP_REPLY = 0, HTTP_PENDING } http_outcome;

/* An endpoint's async part: builds the reply once the task is done. */
typedef void (*http_finish_fn)(http_req *r);
/* Streaming: formats one generation event / the end into r->sse (under r->mu). */
typedef void (*http_event_fn)(http_req *r, const ragd_gen_event *ev);
typedef void (*http_end_fn)(http_req *r);

struct ragd_http {
    ragd_http_cfg cfg;
    struct MHD_Daemon *d;            /* no listening socket of its own: the door hands it connections */
    http_door *door;
    http_tls *tls;                   /* HTTPS (--tls-cert/--tls-key), or NULL: plain HTTP */
    int port;
    size_t max_body;
    atomic_bool quiesced;
    atomic_int active;               /* requests between first byte and completion */
    /* request memory budget (--max-request-memory): what requests hold, reserved before allocating */
    atomic_size_t mem_used;
    size_t mem_limit;
    atomic_bool trim_wanted;         /* a large request ended: the door thread returns free heap pages */
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
    const char *path_arg;            /* prefix routes: the URL after the prefix (valid while the handler runs) */
    bool tei;                        /* a TEI-shaped request: its errors take TEI's HTTP codes (errors.c) */
    int limit_cap;                   /* > 0: api_prepare_text_limit's limit is at most this (Cohere's max_tokens_per_doc) */
    size_t body_len;                 /* bytes the body had (the buffer is freed once parsed) */
    bool too_big;
    bool over_budget;                /* a chunked body outgrew the request-memory budget */
    bool http10;                     /* an HTTP/1.0 request (no Host needed) */
    bool handled;                    /* the handler ran (reply queued or task posted) */
    size_t mem_held;                 /* bytes reserved from the request-memory budget */
    size_t mem_body;                 /* part of mem_held for the body buffer */
    size_t mem_json;                 /* part of mem_held for the JSON tree */
    /* requests without a connection (the fuzz target): their headers */
    const char *(*hdr_fn)(void *ctx, const char *name);
    void *hdr_ctx;
    /* reply */
    int status;
    ragd_buf out;                    /* JSON body */
    const char *content_type;
    int retry_after;                 /* > 0: add Retry-After */
    char method[12];                 /* for the access log */
    char allow[40];                  /* 405 and OPTIONS: the path's methods, for the Allow header */
    char cors_origin[256];           /* non-empty: the request's Origin is allowed (--cors-origins); echoed */
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

/* The error object alone into b (also used for replies written by the door). */
void http_error_json(ragd_buf *b, int status, const char *param, const char *code, const char *msg);
/* A complete HTTP/1.1 error response with a JSON body and "Connection: close" (the door's replies). */
/* cors_origin: non-empty = the allowed Origin to echo (http_cors_origin), NULL or "" = none */
void http_raw_error(ragd_buf *b, int status, const char *code, const char *msg, const char *req_id, int retry_after,
                    const char *cors_origin);
/* CORS (--cors-origins, "*" or comma-separated exact origins): copies origin[0, len) into out (256 bytes)
 * and returns true when the list allows it; out = "" otherwise (also for non-printable or overlong values) */
bool http_cors_origin(const char *list, const char *origin, size_t len, char out[256]);
#define HTTP_CORS_EXPOSE "X-Request-Id, Retry-After" /* response headers a page may read */

/* ---- request memory budget (server.c) */
/* Reserves `bytes` for r (what: for the message). Refusal sets the reply: 413 when the request alone
 * needs more than --max-request-memory, 503 + Retry-After when the budget is momentarily spent. */
bool http_mem_reserve(http_req *r, size_t bytes, const char *what);
void http_mem_release(http_req *r, size_t bytes);

/* ---- shared by the door and the access handler (server.c) */
bool http_auth_ok(const char *key, const char *authorization, size_t len); /* "Bearer KEY", timing-safe */
bool http_path_public(const char *path, size_t len);                      /* /health, /health/ready */
ragd_endpoint http_path_endpoint(const char *path, size_t len);           /* for metrics */
/* X-Request-Id from the client when it is [A-Za-z0-9._:-]{1,64}, else a new "req-<hex>". */
void http_request_id(ragd_http *h, const char *client, size_t len, char out[72]);
/* A request header: from the connection, or from hdr_fn (fuzz target). NULL when absent. */
const char *http_header(http_req *r, const char *name);
/* The checks once a head is complete, in order: shutting down (503), head size, Host and framing
 * (431/400), the API key when one is set — before routing, so an unauthenticated client learns nothing
 * of the paths — (401), route (404/405), Content-Length cap (413), Content-Type (415), the body's memory
 * (413/503). Returns the route (≥ 0), or -1 with the reply set. */
int http_admit(http_req *r, const char *url, const char *method, uint64_t content_length, bool has_length);
/* Runs route `route`'s handler on the complete body (r->body). */
http_outcome http_dispatch(http_req *r, int route_index);
/* A request object without a connection (fuzz target); free with http_req_free. */
http_req *http_req_detached(ragd_http *h);
void http_req_free(http_req *r);

/* ---- the front door (door.c) */
/* Binds the listening socket (before libmicrohttpd starts). */
ragd_status http_door_open(ragd_http *h, const struct sockaddr *sa, socklen_t salen, ragd_err *err);
int http_door_port(const http_door *d);
void http_door_run(http_door *d);      /* starts the door thread (after libmicrohttpd started) */
void http_door_quiesce(http_door *d);  /* closes the listening socket now; pending heads get 503 */
void http_door_stop(http_door *d);     /* stops the thread; closes the connections not handed over */
void http_door_free(http_door *d);     /* after MHD_stop_daemon; NULL ok */
/* A connection whose TLS handshake is done (tls.c): fd is the plaintext end, sa the client's address. Taken
 * over by the door thread as if just accepted; false (fd closed) once the door is stopped. Any thread. */
bool http_door_inject(http_door *d, int fd, const struct sockaddr_storage *sa, socklen_t sl);

/* ---- HTTPS (tls.c): TLS in front of the door, one relay thread per connection */
/* Both files or neither (*out NULL: plain HTTP); errors name the option, the file and OpenSSL's reason. */
ragd_status http_tls_create(ragd_http *h, const char *cert, const char *key, http_tls **out, ragd_err *err);
/* Takes over a just-accepted socket: handshake, then its plaintext end goes to http_door_inject. */
void http_tls_adopt(http_tls *t, int fd, const struct sockaddr_storage *sa, socklen_t sl);
/* Stops every relay (waits for them) and frees; after the door and libmicrohttpd are stopped. NULL ok. */
void http_tls_free(http_tls *t);
/* libmicrohttpd's connection notifications (MHD threads). */
void http_door_mhd_notify(http_door *d, struct MHD_Connection *c, bool started);
/* The request on connection c: head complete, reply being produced, request finished. false: the
 * door already closed the connection for a missed deadline (stop processing it). */
typedef enum { HTTP_CONN_HEAD = 0, HTTP_CONN_BUSY, HTTP_CONN_DONE } http_conn_event;
bool http_door_event(http_door *d, struct MHD_Connection *c, http_conn_event ev);

/* ---- request fields (jsonv.c): each returns false after setting a 400 reply naming the field */
/* r->json = the body's object, or an error reply: 400 (malformed, not an object, nested deeper than 64),
 * 413 (more JSON values than the endpoint can use, or its tree would not fit the memory budget). The
 * body is scanned before the tree is built, and freed once parsed. */
bool jv_parse_body(http_req *r);
/* The scan alone (tests): false when nesting passes 64 or values pass max_values (counts so far). */
typedef struct jv_counts {
    size_t values, containers, string_bytes, longest_string, depth;
} jv_counts;
bool jv_scan(const char *p, size_t n, size_t max_values, jv_counts *c);
/* An upper bound of what jansson allocates for a tree with these counts. */
size_t jv_tree_bytes(const jv_counts *c);
bool jv_check_keys(http_req *r, const char *const *allowed); /* unknown fields → 400 */
bool jv_string(http_req *r, const char *key, bool required, const char **out, size_t *len);
bool jv_int(http_req *r, const char *key, int64_t lo, int64_t hi, int64_t *out, bool *present);
bool jv_number(http_req *r, const char *key, double lo, double hi, double *out, bool *present);
bool jv_bool(http_req *r, const char *key, bool *out, bool *present);
/* NIM's and Cohere's "truncate": absent/null → dflt; "NONE" → false; "END" → true; else 400 (START unsupported). */
bool jv_truncate_mode(http_req *r, bool dflt, bool *truncate);
/* "model": absent/null → role's model; else must name (by its served name or an alias) a model serving the
 * role: 404 otherwise, naming the role's model or, for an unknown name, every model and its aliases. */
bool jv_model(http_req *r, ragd_role role, ragd_served_model **out);
/* The served model called name (its served name or an alias; len bytes), or NULL. */
ragd_served_model *http_find_model(const ragd_http *h, const char *name, size_t len);
/* Appends every model's names for a 404: "'a' (aliases 'b', 'c'), 'd'" ("none" without models). */
void http_model_names(const ragd_http *h, ragd_buf *out);
/* A token-id array element check: ids in [0, n_vocab). */
bool jv_token_array(http_req *r, const json_t *arr, const char *param, int n_vocab, ragd_tok_ids *out);

/* texts / documents one request may carry (/embed, /rerank and their other shapes; TEI's /info
 * max_client_batch_size) */
#define API_MAX_INPUTS 4096

/* TEI's "truncation_direction" (api_embed.c): absent → right; "Left"/"Right"; else a 400 (422 on TEI). */
bool api_tei_direction(http_req *r, bool *left);

/* ---- async (server.c) */
/* Posts r->task for r->sm (sink = the request) with its deadline (X-Request-Timeout-Ms or --timeout-ms).
 * On refusal (bad header, queue full, model not ready) sets the error reply and returns false. */
bool http_submit(http_req *r);

/* ---- endpoints */
http_outcome api_embed(http_req *r);           /* POST /embed */
http_outcome api_v1_embeddings(http_req *r);   /* POST /v1/embeddings */
http_outcome api_rerank(http_req *r);          /* POST /rerank */
http_outcome api_v1_rerank(http_req *r);       /* POST /v1/rerank */
http_outcome api_v1_ranking(http_req *r);      /* POST /v1/ranking (NVIDIA NIM) */
http_outcome api_v2_embed(http_req *r);        /* POST /v2/embed (Cohere v2) */
http_outcome api_v2_rerank(http_req *r);       /* POST /v2/rerank (Cohere v2) */
http_outcome api_score(http_req *r);           /* POST /score, /v1/score (vLLM) */
http_outcome api_v2_live(http_req *r);         /* GET /v2/health/live (KServe v2) */
http_outcome api_v2_ready(http_req *r);        /* GET /v2/health/ready */
http_outcome api_v2_model(http_req *r);        /* GET /v2/models/{name}[/versions/1][/ready] */
http_outcome api_v2_infer(http_req *r);        /* POST /v2/models/{name}[/versions/1]/infer */
/* the infer call's tasks (api_embed.c / api_rerank.c): the tensors' data arrays; r->json parsed, r->sm set */
http_outcome api_kserve_embed(http_req *r, const json_t *texts);
http_outcome api_kserve_rerank(http_req *r, const json_t *query, const json_t *documents);
http_outcome api_chat(http_req *r);            /* POST /v1/chat/completions */
http_outcome api_completions(http_req *r);     /* POST /v1/completions */
http_outcome api_models(http_req *r);          /* GET /v1/models */
http_outcome api_model(http_req *r);           /* GET /v1/models/{id} */
http_outcome api_tokenize(http_req *r);        /* POST /tokenize */
http_outcome api_detokenize(http_req *r);      /* POST /detokenize */
http_outcome api_health(http_req *r);          /* GET /health */
http_outcome api_ready(http_req *r);           /* GET /health/ready */
http_outcome api_metrics(http_req *r);         /* GET /metrics */
http_outcome api_diagnostics(http_req *r);     /* GET /diagnostics */
http_outcome api_tei_info(http_req *r);        /* GET /info (TEI's model info) */

/* How a chat request's answer is read for tool calls: the model's syntax (NONE: no tools, tool_choice
 * none, or a template whose syntax ragd does not parse) and whether several calls may be returned. */
typedef enum { API_TOOLS_AUTO = 0, API_TOOLS_REQUIRED, API_TOOLS_NAMED } api_tools_forced;
typedef struct api_chat_tools {
    ragd_toolcall_format format;
    bool parallel;
    api_tools_forced forced; /* tool_choice "required" / a named function: the answer is constrained JSON */
    const char *name;        /* NAMED: the function (borrowed from the request body) */
} api_chat_tools;
/* The request's "messages" (+ "tools", "tool_choice", "parallel_tool_calls", "add_generation_prompt",
 * "chat_template_kwargs", "enable_thinking") rendered with r->sm's chat template, APPENDED to out; a 400
 * naming the field on bad input or when the template refuses the conversation. tools_out may be NULL.
 * (api_chat.c) */
bool api_render_messages(http_req *r, ragd_buf *out, api_chat_tools *tools_out);

/* Structured output and sampling controls (api_format.c); each returns false after a 400 naming the
 * field. response_format → *out a grammar (NULL: text; caller frees). */
struct ragd_grammar;
bool api_parse_response_format(http_req *r, struct ragd_grammar **out);
/* tool_choice required / named (t from api_render_messages) → *out the grammar of the answer (left
 * untouched when not forced). */
bool api_parse_tool_choice_grammar(http_req *r, const api_chat_tools *t, struct ragd_grammar **out);
/* tool_choice auto: *out a grammar of the calls in the template's syntax (Hermes "\n{...}\n</tool_call>",
 * Llama 3 "{...}", Mistral v3 / Granite "[{...}]"; further calls only with parallel_tool_calls) that
 * applies once the model writes the syntax's marker (g->grammar_trigger, the marker's token id,
 * leading or anywhere); left NULL when not applicable (Mistral v11, no syntax, a response_format
 * grammar, no trie). */
bool api_parse_tool_auto_grammar(http_req *r, const api_chat_tools *t, struct ragd_grammar **out, ragd_gen_opts *g);
/* A forced answer (JSON text) as OpenAI tool calls (caller owns), NULL when it is not complete JSON. */
json_t *api_forced_tool_calls(const api_chat_tools *t, const char *text, size_t n, const char *id_prefix);
/* presence_penalty, frequency_penalty, repetition_penalty, logit_bias (ids in [0, n_vocab)) into g;
 * *bias_out: the logit_bias array g points to (caller frees). */
bool api_parse_logit_controls(http_req *r, int n_vocab, ragd_gen_opts *g, ragd_logit_edit **bias_out);

/* Tokens of one text for a pooling role, truncated (text-level, at a character boundary) when
 * `truncate` and too long; else an over-long text is a 400 naming param, its token count and the
 * limit. Appends to r->toks. (api_embed.c) */
bool api_prepare_text_limit(http_req *r, ragd_role role, const char *param, int index, const char *text, size_t len,
                            bool truncate, ragd_status (*prep)(http_req *, const char *, size_t, ragd_tok_ids *, ragd_err *));

#endif
