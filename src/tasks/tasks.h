/* tasks.h — the public header of ragd's tasks: embeddings, reranking and generation on top of an
 * engine. Each task is split into pure host-side steps (prepare tokens, finish results) that HTTP
 * threads and the scheduler call, and a batch runner the CLI calls.
 *
 * Threading: prepare/finish functions only read the model and may run on any thread; functions
 * taking a ragd_engine run on the engine's owning thread.
 */
#ifndef RAGD_TASKS_H
#define RAGD_TASKS_H

#include "engine/engine.h"

/* ---------------------------------------------------------------------------------------------- */
/* embeddings */

typedef struct ragd_embed_opts {
    const char *instruction; /* NULL: none; else "Instruct: {instruction}\nQuery:{text}" */
    int dimensions;          /* 0: full; else truncate to this many then renormalize */
    bool normalize;          /* L2-normalize (default true) */
} ragd_embed_opts;

/* The model's pooling: sentence-transformers files when present, else the family default. */
ragd_pooling ragd_embed_pooling(const ragd_model *m);

/* Tokens for one text (instruction prefix + post-processor as HF applies it), APPENDED to out. */
ragd_status ragd_embed_prepare(const ragd_model *m, const char *text, size_t len, const ragd_embed_opts *o,
                               ragd_tok_ids *out, ragd_err *err);
/* From a pooled hidden state [n_embd] to the final vector [dims] (truncate, normalize).
 * Returns RAGD_EINTERNAL if the vector is not finite. */
ragd_status ragd_embed_finish(const ragd_model *m, const float *pooled, const ragd_embed_opts *o, float *out,
                              ragd_err *err);
int ragd_embed_dims(const ragd_model *m, const ragd_embed_opts *o);

/* Whole job for the CLI: n texts → out [n, dims], packed into batches by the engine's token budget. */
ragd_status ragd_embed_texts(ragd_engine *e, const char *const *texts, const size_t *lens, int n,
                             const ragd_embed_opts *o, float *out, ragd_err *err);

/* ---------------------------------------------------------------------------------------------- */
/* reranking (Qwen3-Reranker yes/no scoring) */

#define RAGD_RERANK_DEFAULT_INSTRUCTION \
    "Given a web search query, retrieve relevant passages that answer the query"

/* The yes/no token ids from the vocabulary; RAGD_EUNSUPPORTED if the model lacks them. */
ragd_status ragd_rerank_token_ids(const ragd_model *m, int32_t *yes_id, int32_t *no_id, ragd_err *err);
/* prefix + body + suffix tokenized separately, APPENDED to out. */
ragd_status ragd_rerank_prepare(const ragd_model *m, const char *query, const char *doc, const char *instruction,
                                ragd_tok_ids *out, ragd_err *err);
/* sigmoid(yes - no) */
float ragd_rerank_score_from_logits(float yes_logit, float no_logit);
ragd_status ragd_rerank_docs(ragd_engine *e, const char *query, const char *const *docs, int n,
                             const char *instruction, float *scores, ragd_err *err);

/* ---------------------------------------------------------------------------------------------- */
/* chat formatting */

typedef struct ragd_chat_msg {
    const char *role;    /* "system" | "user" | "assistant" | "tool" */
    const char *content;
} ragd_chat_msg;

typedef enum { RAGD_CHAT_QWEN3 = 0, RAGD_CHAT_CHATML_SMOL, RAGD_CHAT_LLAMA3, RAGD_CHAT_CHATML } ragd_chat_family;

/* Which template family the model's chat_template is; RAGD_EUNSUPPORTED for an unknown one. */
ragd_status ragd_chat_family_of(const ragd_model *m, ragd_chat_family *fam, ragd_err *err);
/* Renders messages + generation prompt as the model's template does (enable_thinking for Qwen3). */
ragd_status ragd_chat_render(const ragd_model *m, const ragd_chat_msg *msgs, int n, bool enable_thinking,
                             ragd_buf *out, ragd_err *err);

/* ---------------------------------------------------------------------------------------------- */
/* sampling and generation */

typedef struct ragd_sampler_opts {
    float temperature; /* 0 → greedy */
    int top_k;         /* 0 → off */
    float top_p;       /* 1 → off */
    float min_p;       /* 0 → off */
    uint64_t seed;
} ragd_sampler_opts;

/* Per-sequence sampler state (its RNG); reproducible for a given seed. */
typedef struct ragd_sampler {
    ragd_sampler_opts o;
    uint64_t rng[2];
    /* scratch for top-k/top-p, allocated once for n_vocab */
    float *probs;
    int32_t *idx;
    int n_vocab;
} ragd_sampler;
ragd_status ragd_sampler_init(ragd_sampler *s, const ragd_sampler_opts *o, int n_vocab, ragd_err *err);
void ragd_sampler_free(ragd_sampler *s);
/* Picks the next token from logits [n_vocab]; fills *logprob with log softmax of the pick (T=1). */
int32_t ragd_sampler_sample(ragd_sampler *s, const float *logits, float *logprob);

typedef struct ragd_gen_opts {
    ragd_sampler_opts sampling;
    int max_tokens;
    bool ignore_eos;
    const char *const *stop; /* stop strings, may be NULL */
    int n_stop;
} ragd_gen_opts;

typedef enum { RAGD_FINISH_NONE = 0, RAGD_FINISH_STOP, RAGD_FINISH_LENGTH } ragd_finish;

/* Simple single-sequence generation for the CLI (uses KV slot 0). out_ids gets the generated ids,
 * out_text the decoded text (stop string excluded). */
ragd_status ragd_generate(ragd_engine *e, const int32_t *prompt, size_t n_prompt, const ragd_gen_opts *o,
                          ragd_tok_ids *out_ids, ragd_buf *out_text, ragd_finish *finish, ragd_err *err);

#endif
