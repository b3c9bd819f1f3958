/* tasks.h — the public header of ragd's tasks: embeddings, reranking, chat formatting, sampling and
 * generation on top of an engine. Each task is split into pure host-side steps (prepare tokens, finish
 * results, sample, stream text) that HTTP threads and the scheduler call, and a whole-job runner the CLI
 * calls (ragd_embed_texts, ragd_rerank_docs, ragd_generate), built from the same steps.
 *
 * Threading: prepare/finish/render functions only read the model and may run on any thread; a sampler
 * or a gen stream belongs to one sequence (one thread at a time); functions taking a ragd_engine run on
 * the engine's owning thread.
 *
 * Errors: every input problem is a status + message naming the input (text index, message index, role);
 * whole-job runners stop at the first failure and write nothing for the failing item or later ones.
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

/* The model's pooling: sentence-transformers files when present, else the family default (last token
 * for the decoder families ragd serves). */
ragd_pooling ragd_embed_pooling(const ragd_model *m);
/* Checks o against the model: dimensions in [1, n_embd] or 0 (full) → else RAGD_ERANGE. */
ragd_status ragd_embed_check_opts(const ragd_model *m, const ragd_embed_opts *o, ragd_err *err);

/* Tokens for one text (instruction prefix + post-processor as HF applies it), APPENDED to out. */
ragd_status ragd_embed_prepare(const ragd_model *m, const char *text, size_t len, const ragd_embed_opts *o,
                               ragd_tok_ids *out, ragd_err *err);
/* From a pooled hidden state [n_embd] to the final vector [dims] (truncate, normalize).
 * Returns RAGD_EINTERNAL if the vector is not finite. */
ragd_status ragd_embed_finish(const ragd_model *m, const float *pooled, const ragd_embed_opts *o, float *out,
                              ragd_err *err);
int ragd_embed_dims(const ragd_model *m, const ragd_embed_opts *o);

/* Whole job for the CLI: n texts → out [n, dims], packed into batches by the engine's token budget
 * (max_batch_tokens, max_seqs). A text with no tokens or longer than the engine's limits fails with its
 * index in the message ("text 3: ...") and in *failed (if not NULL; -1 when no single text is to blame).
 * On failure out holds complete vectors only for texts before the failing batch. */
ragd_status ragd_embed_texts(ragd_engine *e, const char *const *texts, const size_t *lens, int n,
                             const ragd_embed_opts *o, float *out, int *failed, ragd_err *err);

/* ---------------------------------------------------------------------------------------------- */
/* reranking (Qwen3-Reranker yes/no scoring) */

#define RAGD_RERANK_DEFAULT_INSTRUCTION \
    "Given a web search query, retrieve relevant passages that answer the query"

/* The yes/no token ids from the vocabulary; RAGD_EUNSUPPORTED if the model lacks them. */
ragd_status ragd_rerank_token_ids(const ragd_model *m, int32_t *yes_id, int32_t *no_id, ragd_err *err);
/* prefix + body + suffix tokenized separately, APPENDED to out. The body is truncated to
 * 8192 - |prefix| - |suffix| tokens as the reference implementation does (truncation=longest_first).
 * instruction NULL → RAGD_RERANK_DEFAULT_INSTRUCTION. */
ragd_status ragd_rerank_prepare(const ragd_model *m, const char *query, const char *doc, const char *instruction,
                                ragd_tok_ids *out, ragd_err *err);
/* sigmoid(yes - no) */
float ragd_rerank_score_from_logits(float yes_logit, float no_logit);
/* Whole job for the CLI: scores [n], batched by the engine's limits; failures name the document index
 * (also in *failed if not NULL, -1 when no single document is to blame). */
ragd_status ragd_rerank_docs(ragd_engine *e, const char *query, const char *const *docs, int n,
                             const char *instruction, float *scores, int *failed, ragd_err *err);

/* ---------------------------------------------------------------------------------------------- */
/* chat formatting */

typedef struct ragd_chat_msg {
    const char *role;    /* "system" | "user" | "assistant" | "tool" */
    const char *content;
} ragd_chat_msg;

typedef enum { RAGD_CHAT_QWEN3 = 0, RAGD_CHAT_CHATML_SMOL, RAGD_CHAT_LLAMA3, RAGD_CHAT_CHATML } ragd_chat_family;

/* Which template family the model's chat_template is, recognized by distinctive substrings (Qwen3:
 * ChatML + enable_thinking; SmolLM2: ChatML + its default system prompt; Llama 3: start_header_id/eot_id).
 * No template or an unknown one → RAGD_EUNSUPPORTED (callers may still generate from raw text).
 * RAGD_CHAT_CHATML is reserved (never detected today). */
ragd_status ragd_chat_family_of(const ragd_model *m, ragd_chat_family *fam, ragd_err *err);
/* Renders messages + the generation prompt byte-for-byte as the model's Jinja template does with
 * add_generation_prompt=True (no tools): Qwen3 (enable_thinking, past-turn <think> stripping), SmolLM2
 * (default system prompt when none is given), Llama 3/3.1 (BOS text, date header, trimmed contents).
 * Roles other than system/user/assistant/tool → RAGD_EINVAL naming the message. APPENDS to out. */
ragd_status ragd_chat_render(const ragd_model *m, const ragd_chat_msg *msgs, int n, bool enable_thinking,
                             ragd_buf *out, ragd_err *err);
/* render + tokenize without special-token post-processing (as apply_chat_template does), APPENDED to out */
ragd_status ragd_chat_prepare(const ragd_model *m, const ragd_chat_msg *msgs, int n, bool enable_thinking,
                              ragd_tok_ids *out, ragd_err *err);

/* ---------------------------------------------------------------------------------------------- */
/* sampling and generation */

typedef struct ragd_sampler_opts {
    float temperature; /* 0 → greedy */
    int top_k;         /* 0 → off */
    float top_p;       /* 1 → off */
    float min_p;       /* 0 → off */
    uint64_t seed;
} ragd_sampler_opts;

/* Per-sequence sampler state (its RNG: xoshiro256** seeded by splitmix64(seed)); reproducible for a
 * given seed. The filters apply in transformers' order: temperature, top-k, top-p, min-p; then one draw.
 * temperature ≤ 0 is greedy (first index of the maximum). */
typedef struct ragd_sampler {
    ragd_sampler_opts o;
    uint64_t rng[4];
    /* scratch for top-k/top-p, allocated once for n_vocab */
    float *probs;    /* [n_vocab] */
    int32_t *idx;    /* [n_vocab] candidate ids, best first */
    uint64_t *keys;  /* [2 * n_vocab] radix-sort entries (order key << 32 | id), two buffers */
    int n_vocab;
} ragd_sampler;
/* Checks the options (temperature ≥ 0 and finite, top_k ≥ 0, top_p in (0, 1], min_p in [0, 1]) →
 * RAGD_ERANGE naming the field; allocates the scratch. */
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

/* Streaming text of one sequence: decodes generated ids (special tokens skipped, partial UTF-8 held
 * back), applies EOS (unless ignore_eos), stop strings and max_tokens. Text that could still be the start
 * of a stop string is held back; when a stop string appears, it and everything after it are dropped.
 * Zero-initialize, then ragd_gen_stream_init. */
typedef struct ragd_gen_stream {
    const ragd_model *m;
    const ragd_gen_opts *o;
    ragd_tok_stream dec;
    ragd_buf text;   /* all final text so far (stop strings cut) */
    size_t emitted;  /* bytes of text already handed out */
    int n_tokens;    /* generated ids pushed */
    ragd_finish finish;
} ragd_gen_stream;
ragd_status ragd_gen_stream_init(ragd_gen_stream *g, const ragd_model *m, const ragd_gen_opts *o, ragd_err *err);
/* Feeds one generated id. APPENDS the newly releasable text to emit; sets *finish when the sequence is
 * done (STOP: EOS or a stop string, LENGTH: max_tokens reached; then the held text has been released). */
ragd_status ragd_gen_stream_push(ragd_gen_stream *g, int32_t id, ragd_buf *emit, ragd_finish *finish, ragd_err *err);
void ragd_gen_stream_free(ragd_gen_stream *g);

/* Simple single-sequence generation for the CLI (uses KV slot 0, prefill chunked by max_batch_tokens).
 * out_ids gets the generated ids (an EOS that ended generation included, as transformers returns it),
 * out_text the decoded text (special tokens skipped, stop string and what follows excluded). on_text, if
 * set, receives the text as it becomes final. prompt + max_tokens must fit the engine's max_ctx. */
typedef void (*ragd_gen_text_fn)(void *ud, const char *text, size_t len);
ragd_status ragd_generate(ragd_engine *e, const int32_t *prompt, size_t n_prompt, const ragd_gen_opts *o,
                          ragd_tok_ids *out_ids, ragd_buf *out_text, ragd_finish *finish, ragd_err *err);
ragd_status ragd_generate_stream(ragd_engine *e, const int32_t *prompt, size_t n_prompt, const ragd_gen_opts *o,
                                 ragd_gen_text_fn on_text, void *ud, ragd_tok_ids *out_ids, ragd_buf *out_text,
                                 ragd_finish *finish, ragd_err *err);

#endif
