/* tokenizer.h — the public header of ragd's tokenizer: exact Hugging Face `tokenizers` semantics.
 *
 * Threading contract: a ragd_tokenizer is immutable after load. Any number of threads may call
 * encode/decode on one tokenizer at once. Results go to the caller's ragd_tok_ids / ragd_buf /
 * ragd_tok_stream; encode's scratch buffers and word cache live in a per-thread workspace (a pthread
 * key of the tokenizer: created on a thread's first encode, freed when the thread exits or at
 * ragd_tokenizer_free), so threads never share mutable state. Free the tokenizer only when no thread
 * is inside one of its calls.
 *
 * Ownership: ragd_tokenizer_load_* returns a tokenizer the caller frees with ragd_tokenizer_free.
 * Strings returned by accessors point into the tokenizer and live as long as it does.
 */
#ifndef RAGD_TOKENIZER_H
#define RAGD_TOKENIZER_H

#include "common/common.h"

typedef struct ragd_tokenizer ragd_tokenizer;

/* A growable array of token ids owned by the caller; reuse it across calls to avoid allocations.
 * Zero-initialize; free with ragd_tok_ids_free. */
typedef struct ragd_tok_ids {
    int32_t *ids;
    size_t n, cap;
} ragd_tok_ids;
void ragd_tok_ids_free(ragd_tok_ids *v);
void ragd_tok_ids_push(ragd_tok_ids *v, int32_t id);

/* Loads tokenizer.json at `path`; reads tokenizer_config.json from the same folder when present
 * (chat templates — or chat_template.jinja / additional_chat_templates/tool_use.jinja beside it —, bos/eos/pad names, add_bos/add_eos). An
 * unsupported component (normalizer, pre-tokenizer, model, post-processor or decoder type) fails with
 * RAGD_EUNSUPPORTED naming it. */
ragd_status ragd_tokenizer_load_json(const char *path, ragd_tokenizer **out, ragd_err *err);

/* Builds a tokenizer from the pieces a GGUF file carries (tokenizer.ggml.*). `pre` is the
 * tokenizer.ggml.pre name ("qwen2", "smollm", "llama-bpe", "gpt2", ...); token_type follows llama.cpp
 * (1 normal, 3 control, 4 user-defined, ...). Strings are copied. */
typedef struct ragd_tokenizer_gguf_parts {
    const char *model;          /* tokenizer.ggml.model: only "gpt2" (byte-level BPE) is supported */
    const char *pre;            /* tokenizer.ggml.pre, may be NULL (→ gpt2 default) */
    size_t n_tokens;
    const char *const *tokens;  /* [n_tokens] */
    const size_t *token_lens;   /* [n_tokens] */
    const int32_t *token_types; /* [n_tokens] or NULL */
    size_t n_merges;
    const char *const *merges;  /* [n_merges] "a b" */
    const size_t *merge_lens;   /* [n_merges] */
    int32_t bos_id, eos_id, pad_id; /* -1 when absent */
    bool add_bos, add_eos;
    const char *chat_template;  /* may be NULL */
    const char *chat_template_tool_use; /* tokenizer.chat_template.tool_use, may be NULL */
} ragd_tokenizer_gguf_parts;
ragd_status ragd_tokenizer_load_gguf_parts(const ragd_tokenizer_gguf_parts *parts, ragd_tokenizer **out,
                                           ragd_err *err);

/* Loads a BERT WordPiece tokenizer from a folder with only vocab.txt and tokenizer_config.json, as
 * transformers' BertTokenizerFast converts it: BertNormalizer(clean_text, handle_chinese_chars =
 * tokenize_chinese_chars, strip_accents, lowercase = do_lower_case), BertPreTokenizer, WordPiece
 * ("##", unk_token, 100 characters), `[CLS] $A [SEP]` / `[CLS] $A [SEP] $B:1 [SEP]:1`, WordPiece decoder;
 * the special tokens (unk/sep/pad/cls/mask and added_tokens_decoder) as special added tokens. A
 * tokenizer_class other than BertTokenizer(Fast)/DistilBertTokenizer(Fast) → RAGD_EUNSUPPORTED. */
ragd_status ragd_tokenizer_load_bert_vocab(const char *dir, ragd_tokenizer **out, ragd_err *err);

void ragd_tokenizer_free(ragd_tokenizer *t);

/* Encodes UTF-8 text (need not be NUL-terminated) and APPENDS the ids to *out. Invalid UTF-8 →
 * RAGD_EINVAL naming the byte offset. add_special applies the post-processor (TemplateProcessing
 * / BOS/EOS) as HF's `add_special_tokens=True` does. */
ragd_status ragd_tokenizer_encode(const ragd_tokenizer *t, const char *text, size_t len, bool add_special,
                                  ragd_tok_ids *out, ragd_err *err);

/* Encodes n texts; outs[i] is reset (n = 0, capacity kept) and gets the ids of texts[i]. Stops at the
 * first failure (the message names the text index). Single-threaded: callers parallelize over texts. */
ragd_status ragd_tokenizer_encode_batch(const ragd_tokenizer *t, size_t n, const char *const *texts,
                                        const size_t *lens, bool add_special, ragd_tok_ids *outs, ragd_err *err);

/* Truncation as HF's `enable_truncation(max_length, strategy=..., direction=...)` (stride 0): the
 * sequences are cut before the post-processor so that, with add_special, the special tokens fit
 * within max_length too. */
typedef enum {
    RAGD_TOK_TRUNC_NONE = 0,
    RAGD_TOK_TRUNC_LONGEST_FIRST,
    RAGD_TOK_TRUNC_ONLY_FIRST,
    RAGD_TOK_TRUNC_ONLY_SECOND,
} ragd_tok_trunc_strategy;
typedef struct ragd_tok_trunc {
    ragd_tok_trunc_strategy strategy;
    size_t max_length;
    bool left; /* direction "left": drop tokens from the start instead of the end */
} ragd_tok_trunc;

/* Encodes text a, or the pair (a, b) when b is not NULL, as HF's `encode(a, b, add_special_tokens)`:
 * ids and token type ids (type_ids may be NULL) are RESET and filled. The pair uses the post-processor's
 * pair template (BERT `[CLS] A [SEP] B [SEP]` with type ids 0…0 1…1, RoBERTa `<s> A </s></s> B </s>`);
 * without a post-processor A gets type 0 and B type 1. trunc may be NULL (no truncation). A
 * truncation HF refuses (only_first/only_second when that sequence is too short, only_second without
 * b, max_length below the number of special tokens) → RAGD_EINVAL; a tokenizer whose
 * TemplateProcessing has no pair template → RAGD_EUNSUPPORTED for pairs. */
ragd_status ragd_tokenizer_encode_pair(const ragd_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen,
                                       bool add_special, const ragd_tok_trunc *trunc, ragd_tok_ids *ids,
                                       ragd_tok_ids *type_ids, ragd_err *err);

/* Decodes ids and APPENDS the UTF-8 text to *out, as HF `decode` does (skip_special drops special
 * added tokens). An id outside the vocabulary → RAGD_ERANGE naming it. Bytes that do not form valid
 * UTF-8 are replaced by U+FFFD as HF does. */
ragd_status ragd_tokenizer_decode(const ragd_tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                                  ragd_buf *out, ragd_err *err);

/* Streaming decode for generation: feed ids one at a time; each call appends only the text that is
 * final (a partial UTF-8 sequence is held back until completed). Zero-initialize; it owns no memory.
 * ragd_tok_stream_flush emits whatever is held (as U+FFFD if incomplete). The concatenation of all
 * pushes plus the flush equals ragd_tokenizer_decode of the same ids. */
typedef struct ragd_tok_stream {
    uint8_t pending[8];
    size_t n_pending;
    bool started; /* a token was emitted (decoders that join tokens with spaces need it) */
} ragd_tok_stream;
ragd_status ragd_tok_stream_push(const ragd_tokenizer *t, ragd_tok_stream *s, int32_t id, bool skip_special,
                                 ragd_buf *out, ragd_err *err);
void ragd_tok_stream_flush(const ragd_tokenizer *t, ragd_tok_stream *s, ragd_buf *out);

/* Vocabulary. */
size_t ragd_tokenizer_vocab_size(const ragd_tokenizer *t);          /* max id + 1, added tokens included */
int32_t ragd_tokenizer_token_to_id(const ragd_tokenizer *t, const char *token); /* -1 if absent */
const char *ragd_tokenizer_id_to_token(const ragd_tokenizer *t, int32_t id);   /* NULL if absent */
bool ragd_tokenizer_is_special(const ragd_tokenizer *t, int32_t id);
/* The raw bytes the decoder yields for one token (byte-level BPE: the bytes its characters stand for,
 * possibly a partial UTF-8 sequence), *len set; NULL when the id is absent. Points into the tokenizer.
 * With no decoder (tokens joined by spaces) it is the token string; with the WordPiece / Metaspace
 * decoders, the text the token gives when it is not the first one decoded (" word", "piece" for
 * "##piece", "▁x" → " x"). Constrained decoding (src/grammar) matches these bytes. */
const char *ragd_tokenizer_token_bytes(const ragd_tokenizer *t, int32_t id, size_t *len);
/* True when decoding concatenates token bytes as they are (a ByteLevel decoder); false when a token's
 * text depends on its neighbours or position (no decoder: joined by spaces; WordPiece; Metaspace). */
bool ragd_tokenizer_bytes_concat(const ragd_tokenizer *t);

/* tokenizer_config.json / GGUF facts; NULL / -1 when absent. */
const char *ragd_tokenizer_chat_template(const ragd_tokenizer *t);
/* the template named "tool_use" (tokenizer_config.json's list form, or additional_chat_templates/
 * tool_use.jinja), which transformers uses instead of the default when tools are given */
const char *ragd_tokenizer_chat_template_tool_use(const ragd_tokenizer *t);
int32_t ragd_tokenizer_bos_id(const ragd_tokenizer *t);
int32_t ragd_tokenizer_eos_id(const ragd_tokenizer *t);
int32_t ragd_tokenizer_pad_id(const ragd_tokenizer *t);
/* tokenizer_config.json model_max_length (e.g. 512 for BERT models: the max_length a cross-encoder's
 * pair is truncated to), -1 when absent or transformers' "unlimited" 1e30. */
int64_t ragd_tokenizer_model_max_length(const ragd_tokenizer *t);

#endif
