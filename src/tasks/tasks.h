/* tasks.h — the public header of ragd's tasks: embeddings, reranking, chat formatting, sampling and
 * generation on top of an engine. Each task is split into pure host-side steps (prepare tokens, finish
 * results, sample, stream text) that HTTP threads and the scheduler call, and a whole-job runner the CLI
 * calls (ragd_embed_texts, ragd_rerank_docs, ragd_generate), built from the same steps.
 *
 * Threading: prepare/finish/render functions only read the model and may run on any thread; a
 * or a gen stream belongs to one sequence (one thread at a time); functions taking a ragd_engine run on
 * the engine's owning thread.
 *
 * Errors: every input problem is a status + message naming the input (text index, message index, role);
 * whole-job runners stop at the first failure and write nothing for the failing item or later ones.
 */
#ifndef RAGD_TASKS_H
#define RAGD_TASKS_H

#include <jansson.h>
#include <time.h>

#include "engine/engine.h"

/* ---------------------------------------------------------------------------------------------- */
/* embeddings */

typedef struct ragd_embed_opts {
    const char *instruction; /* NULL: none; else "Instruct: {instruction}\nQuery:{text}" */
    const char *prompt;      /* NULL: none; else prepended verbatim (a sentence-transformers prompt, TEI's
                                prompt_name); applied inside the instruction when both are given */
    int dimensions;          /* 0: full; else truncate to this many then renormalize */
    bool normalize;          /* L2-normalize (default true) */
    ragd_tok_trunc trunc;    /* strategy NONE (zero): none; else the tokenizer's truncation of the text's ids
                                (max_length counts the post-processor's tokens), as HF's truncation=True */
} ragd_embed_opts;

/* The model's pooling: sentence-transformers files when present, else the family default (last token
 * for the decoder families ragd serves). */
ragd_pooling ragd_embed_pooling(const ragd_model *m);
/* Checks o against the model: dimensions in [1, n_embd] or 0 (full) → else RAGD_ERANGE. */
ragd_status ragd_embed_check_opts(const ragd_model *m, const ragd_embed_opts *o, ragd_err *err);

/* Tokens for one text (instruction prefix + post-processor as HF applies it, truncated as o->trunc says),
 * APPENDED to out. */
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
/* reranking: Qwen3-Reranker yes/no scoring, or a cross-encoder's classifier logit (rerank.c) */

#define RAGD_RERANK_DEFAULT_INSTRUCTION \
    "Given a web search query, retrieve relevant passages that answer the query"

/* Whether m scores pairs with a classification head (BERT / XLM-R ...ForSequenceClassification). */
bool ragd_rerank_is_cross_encoder(const ragd_model *m);
/* The yes/no token ids from the vocabulary; RAGD_EUNSUPPORTED if the model lacks them. Cross-encoders:
 * both -1, RAGD_EUNSUPPORTED unless the classifier has exactly one label. */
ragd_status ragd_rerank_token_ids(const ragd_model *m, int32_t *yes_id, int32_t *no_id, ragd_err *err);
/* Qwen3-Reranker: prefix + body + suffix tokenized separately, APPENDED to out. The body is truncated to
 * 8192 - |prefix| - |suffix| tokens as the reference implementation does (truncation=longest_first).
 * instruction NULL → RAGD_RERANK_DEFAULT_INSTRUCTION. Cross-encoders: the tokenizer's pair encoding of
 * (query, doc) — its post-processor and type ids, ragd_tokenizer_encode_pair — truncated longest-first to
 * ragd_rerank_max_length (HF's tokenizer(query, doc, truncation=True)); instruction ignored.
 * *seg_a (may be NULL): tokens of segment A (type id 0) when the rest has type id 1 (BERT), else 0 — taken
 * from the tokenizer's type ids (a shape other than 0…0 1…1 / all 0 → RAGD_EUNSUPPORTED). */
ragd_status ragd_rerank_prepare(const ragd_model *m, const char *query, const char *doc, const char *instruction,
                                ragd_tok_ids *out, int32_t *seg_a, ragd_err *err);
/* The same with the cross-encoder's truncation given: NULL = the default above, strategy NONE = none (the
 * caller checks the length), else as given (HF's truncation strategies and direction). Ignored for
 * Qwen3-Reranker, whose body rule is fixed. */
ragd_status ragd_rerank_prepare_trunc(const ragd_model *m, const char *query, const char *doc, const char *instruction,
                                      const ragd_tok_trunc *trunc, ragd_tok_ids *out, int32_t *seg_a, ragd_err *err);
/* A cross-encoder's default pair length: max_position_embeddings (less RoBERTa's offset), or the
 * tokenizer's model_max_length when smaller. */
size_t ragd_rerank_max_length(const ragd_model *m);
/* types[0..n) of a sequence whose first seg_a tokens are segment A (seg_a 0: all 0) */
void ragd_rerank_type_ids(int32_t seg_a, int n, int32_t *types);
/* sigmoid(logit): a cross-encoder's score */
float ragd_rerank_score_from_logit(float logit);
/* sigmoid(yes - no) */
float ragd_rerank_score_from_logits(float yes_logit, float no_logit);
/* Whole job for the CLI: scores [n], batched by the engine's limits; failures name the document index
 * (also in *failed if not NULL, -1 when no single document is to blame). */
ragd_status ragd_rerank_docs(ragd_engine *e, const char *query, const char *const *docs, int n,
                             const char *instruction, float *scores, int *failed, ragd_err *err);

/* ---------------------------------------------------------------------------------------------- */
/* chat formatting: the model's Jinja chat template (chat.c, jinja_*.c), tool calls (toolcall.c) */

/* The syntax a model writes tool calls in, recognized from its template. */
typedef enum {
    RAGD_TOOLCALL_NONE = 0, /* not recognized: tools are rendered, the answer stays text */
    RAGD_TOOLCALL_HERMES,   /* <tool_call>{"name": ..., "arguments": {...}}</tool_call> (Qwen2.5/3, Hermes) */
    RAGD_TOOLCALL_LLAMA3,   /* {"name": ..., "parameters": {...}} [; ...] (Llama 3.1-3.3, <|python_tag|> optional) */
    RAGD_TOOLCALL_MISTRAL,  /* [TOOL_CALLS][{"name": ..., "arguments": {...}}] (v3 tokenizers: Nemo) */
    RAGD_TOOLCALL_MISTRAL_ARGS, /* [TOOL_CALLS]name[ARGS]{...} (v11+: Small 3.2, whose template writes
                                 * [CALL_ID]id before [ARGS]); either parser accepts both forms */
    RAGD_TOOLCALL_GRANITE,  /* <|tool_call|>[{"name": ..., "arguments": {...}}] (Granite 3.x) */
} ragd_toolcall_format;

/* A compiled chat template: immutable, shared by threads. */
typedef struct ragd_chat_template ragd_chat_template;

/* Compiles template source (UTF-8). The special token texts (may be NULL) become bos_token / eos_token /
 * pad_token. A syntax error (or an unknown filter/test outside an if) → RAGD_EFORMAT naming the line. */
ragd_status ragd_chat_template_compile(const char *src, size_t n, const char *bos_token, const char *eos_token,
                                       const char *pad_token, ragd_chat_template **out, ragd_err *err);
/* Adds a second template that renders instead when the input has tools (the model's "tool_use" one);
 * the tool-call syntax is then the one it teaches, when it teaches one. Syntax error → RAGD_EFORMAT. */
ragd_status ragd_chat_template_add_tool_use(ragd_chat_template *t, const char *src, size_t n, ragd_err *err);
/* The model's template (path NULL; with its tool_use template when it has one) or the file at path
 * (--chat-template, which replaces both), with the model's special tokens. No template →
 * RAGD_EUNSUPPORTED. */
ragd_status ragd_chat_template_for_model(const ragd_model *m, const char *path, ragd_chat_template **out,
                                         ragd_err *err);
void ragd_chat_template_free(ragd_chat_template *t);
ragd_toolcall_format ragd_chat_template_toolcall(const ragd_chat_template *t);

typedef struct ragd_chat_input {
    const json_t *messages; /* array of message objects as OpenAI / transformers take them */
    const json_t *tools;    /* NULL (→ None) or an array of tool objects */
    const json_t *kwargs;   /* NULL or an object of extra template variables (enable_thinking, ...) */
    bool add_generation_prompt;
    time_t now;             /* strftime_now's clock: 0 = the current local time; else this instant, UTC */
} ragd_chat_input;
/* Renders as transformers' apply_chat_template(messages, tools=..., add_generation_prompt=...,
 * **kwargs) does, byte for byte. APPENDS to out (nothing on failure). A template error →
 * RAGD_EINVAL: "the chat template refused the messages: <its raise_exception text>" when the template
 * raised, else "chat template: template error at line N: ..."; inputs over the interpreter's bounds →
 * RAGD_EINVAL/RAGD_ERANGE. */
ragd_status ragd_chat_template_render(const ragd_chat_template *t, const ragd_chat_input *in, ragd_buf *out,
                                      ragd_err *err);

/* Parses a model's answer for tool calls in format f. On success *calls is a JSON array of OpenAI
 * tool calls [{"id", "type": "function", "function": {"name", "arguments": JSON text}}] (caller owns),
 * and [*content_len] bytes of text before the calls are the message content (0: none). Returns false
 * (calls NULL) when the text holds no well-formed tool call: it is then plain content. id_prefix makes
 * the ids ("call_<prefix>_<i>"; Mistral: 9 alphanumerics derived from it, as its template demands). */
bool ragd_toolcall_parse(ragd_toolcall_format f, const char *text, size_t n, const char *id_prefix, json_t **calls,
                         size_t *content_len);
/* Where a tool call may begin in text[0..n): the offset of the first byte that could start one (text
 * after it must be held back while streaming), or n when none can. */
size_t ragd_toolcall_start(ragd_toolcall_format f, const char *text, size_t n);

typedef struct ragd_chat_msg {
    const char *role;    /* "system" | "user" | "assistant" | "tool" */
    const char *content;
} ragd_chat_msg;

/* Convenience for the CLI and tests: renders plain role/content messages with the model's own template
 * and add_generation_prompt=True (enable_thinking=False is passed only when enable_thinking is false).
 * Roles other than system/user/assistant/tool → RAGD_EINVAL naming the message. APPENDS to out. */
ragd_status ragd_chat_render(const ragd_model *m, const ragd_chat_msg *msgs, int n, bool enable_thinking,
                             ragd_buf *out, ragd_err *err);
/* the same with a compiled template (the CLI's --chat-template) */
ragd_status ragd_chat_render_with(const ragd_chat_template *t, const ragd_chat_msg *msgs, int n, bool enable_thinking,
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
    uint64_t seed;     /* a choice's draws: ragd_sample_params.seed = seed + choice, counter = token index */
} ragd_sampler_opts;

typedef struct ragd_gen_opts {
    ragd_sampler_opts sampling;
    int max_tokens;
    int min_tokens;          /* EOS cannot be sampled before this many tokens (vLLM's min_tokens) */
    bool ignore_eos;         /* EOS does not end the sequence (it is an ordinary token) */
    bool keep_special;       /* decode special tokens into the text (a tool-call marker such as [TOOL_CALLS]) */
    const char *const *stop; /* stop strings, may be NULL */
    int n_stop;
    const int32_t *stop_ids; /* stop_token_ids: generating one ends the sequence (STOP; its text is not
                                emitted, as vLLM), ignore_eos or not; may be NULL */
    int n_stop_ids;
    /* logit processing (applied by the scheduler through ragd_step_proc, engine/sample_math.h) */
    float presence_penalty;  /* OpenAI: over the generated tokens; 0: off */
    float frequency_penalty; /* OpenAI: times the count in the generated tokens; 0: off */
    float repetition_penalty;/* HF: over prompt + generated tokens; 1 (or 0): off */
    const ragd_logit_edit *logit_bias; /* [n_logit_bias] distinct ids with their bias (count, in_seq 0) */
    int n_logit_bias;
    /* structured output: the generated text must match this grammar (grammar.h; the scheduler keeps
     * the matcher, masks every step and ends the choice when the value is complete); NULL: free text */
    const struct ragd_grammar *grammar;
    /* a lazy grammar (tool_choice auto): free text until these bytes appear in the generated text, then
     * the rest is constrained by grammar (the bytes of the triggering token after them included); when
     * the value is complete the choice ends. NULL: the grammar applies from the first token. */
    const char *grammar_trigger;
    /* the same for a token whose text is no plain bytes (a special token such as Mistral's [TOOL_CALLS]
     * or Llama 3's <|python_tag|>): sampling it starts the grammar (fed nothing of it). Only with
     * grammar_trigger set; has_trigger_id false: none */
    bool has_trigger_id;
    int32_t grammar_trigger_id;
    /* the triggers count only as the start of the answer (its first non-whitespace text), and the
     * matcher is fed from the trigger text's first byte on (the grammar begins with it: a Llama 3 call's
     * "{"); any other start leaves the answer free text */
    bool grammar_trigger_lead;
} ragd_gen_opts;

/* The engine's sampling parameters for the n_gen-th generated token (counter n_gen) of choice `choice`:
 * the request's filters, seed + choice, EOS banned while n_gen < min_tokens, logprob / n_top as asked. */
void ragd_gen_sample_params(const ragd_model *m, const ragd_gen_opts *o, int choice, int n_gen, bool want_logprob,
                            int n_top, ragd_sample_params *p);

typedef enum { RAGD_FINISH_NONE = 0, RAGD_FINISH_STOP, RAGD_FINISH_LENGTH } ragd_finish;

/* Streaming text of one sequence: decodes generated ids (special tokens skipped unless keep_special, partial UTF-8 held
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
/* Ends the sequence as EOS would (structured output: the value is complete): releases the held text
 * into emit, *finish = STOP. No-op when already finished. */
void ragd_gen_stream_end(ragd_gen_stream *g, ragd_buf *emit, ragd_finish *finish);
/* true when o asks for logit edits (penalties or logit_bias) */
bool ragd_gen_has_edits(const ragd_gen_opts *o);

/* Simple single-sequence generation for the CLI (uses sequence slot 0, prefill chunked by max_batch_tokens).
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
