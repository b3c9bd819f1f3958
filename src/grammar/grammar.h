/* grammar.h — the public header of ragd's grammar module: structured output (OpenAI `response_format`
 * json_object / json_schema) as a byte-level matcher and per-step token masks.
 *
 * Three objects:
 *   - ragd_grammar: compiled once per request from a JSON schema (or "any JSON object"). Immutable
 *     after compile; may be shared by threads.
 *   - ragd_gmatch: the matcher state of one sequence. A fixed-size plain struct (no pointers, no heap):
 *     copy it with `=`, store it in the scheduler's sequence, reset it with ragd_gmatch_init. Advancing
 *     never allocates.
 *   - ragd_vocab_trie: a prefix tree over a vocabulary's token bytes, built once per tokenizer
 *     (immutable, shared). ragd_gmask computes the allowed-token bitmask of a state by walking it;
 *     its scratch is a ragd_gmask_ws created once per thread that computes masks (the scheduler).
 *
 * The language emitted (docs/ARCHITECTURE.md, "Structured output"):
 *   - JSON with no whitespace except at most one space after ':' and after ','; no leading/trailing
 *     whitespace.
 *   - Object properties in schema order; required ones must appear, optional ones may be skipped.
 *     Extra keys (additionalProperties true/absent/a schema) may appear once every required property
 *     is out; they are plain strings (no escapes) other than the declared names, with any JSON value
 *     (or the additionalProperties schema). Duplicate extra keys are not prevented.
 *   - Numbers: at most 18 integer digits, 20 fraction digits, 2 exponent digits (so jansson and
 *     strtod parse them without overflow); `integer` is digits only ("-0" included).
 *   - Strings: raw UTF-8 (validated), escapes \" \\ \/ \b \f \n \r \t and \uXXXX except surrogates
 *     and \u0000 (which jansson refuses).
 *   - Nesting: at most RAGD_GMATCH_MAX_DEPTH frames; recursive schemas are cut there (a token that
 *     would need a deeper frame is masked, and only values that can still close are opened).
 *   - anyOf runs its alternatives side by side, at most RAGD_GMATCH_MAX_ALT at once (more are dropped:
 *     the output stays valid, the choice narrows). Tool calls (ragd_grammar_compile_calls) do not use
 *     anyOf: the function name is one literal and it selects the arguments' schema, so any number of
 *     functions stays choosable. They may be written raw (name[ARGS]{...}) and repeated, and may name
 *     special tokens (marker tokens) that stand for a literal's text outside strings.
 *
 * Threading contract: compile, trie build and workspace creation allocate; ragd_gmatch_* and
 * ragd_gmask never allocate and touch only their arguments.
 */
#ifndef RAGD_GRAMMAR_H
#define RAGD_GRAMMAR_H

#include <jansson.h>

#include "common/common.h"
#include "tokenizer/tokenizer.h"

#define RAGD_GMATCH_MAX_DEPTH 32
#define RAGD_GMATCH_MAX_ALT 8

typedef struct ragd_grammar ragd_grammar;

/* Compiles a JSON schema (the `json_schema.schema` of a response_format). Supported: type (object,
 * array, string, number, integer, boolean, null, or a list), properties, required,
 * additionalProperties (false, true, absent or a schema), enum, const, items, minItems, maxItems,
 * minLength, maxLength, anyOf, $ref to "#" or "#/..." (e.g. #/$defs/x, #/definitions/x; recursion
 * works), boolean schemas true; annotations (title, description, default, examples, format, $schema,
 * $id, $comment, deprecated, readOnly, writeOnly, $defs, definitions) are ignored. Anything else — a
 * keyword such as pattern, oneOf, allOf, minimum — is RAGD_EINVAL naming the keyword and its JSON
 * path ("$.properties.zip"); so are malformed values, required names not in properties, empty enums,
 * and schemas whose smallest value needs more than RAGD_GMATCH_MAX_DEPTH nesting. */
ragd_status ragd_grammar_compile_schema(const json_t *schema, ragd_grammar **out, ragd_err *err);
/* Tool calls (tool_choice "required", and a call started under "auto"): an object
 * {"<name_key>": "<one of names>", "<args_key>": <that function's parameters schema>} — the arguments
 * follow the name actually written, however many functions there are (one matcher alternative, not one
 * per function). max_items 0: one such object; k > 0: a JSON array of 1..k of them; -1: 1 or more.
 * Every params[i] is a schema as for ragd_grammar_compile_schema (its own root for "$ref"s). Names must
 * be distinct (RAGD_EINVAL naming the duplicate). */
typedef struct ragd_grammar_calls {
    const char *const *names;    /* [n] function names */
    const json_t *const *params; /* [n] their parameters schemas */
    int n;
    const char *name_key, *args_key; /* e.g. "name", "arguments" */
    int max_items;
    const char *prefix, *suffix;     /* raw bytes before / after the value (NULL or "": none), e.g. the
                                      * "\n" and "\n</tool_call>" around a Hermes call */
    const char *more;                /* max_items 0 only: after the first call (and its suffix), up to
                                      * max_more further calls may follow, each as more {call} suffix
                                      * (e.g. "\n<tool_call>\n" for parallel Hermes calls); the value is
                                      * complete after any of them. NULL or "": one call */
    int max_more;                    /* -1: any number; 0: none */
    /* raw_sep set (max_items 0 only): a call is written name raw_sep {arguments} — the name raw (no
     * quotes, no object; it still selects the arguments' schema), e.g. Mistral v11's name[ARGS]{...};
     * name_key / args_key are then unused */
    const char *raw_sep;
    /* special tokens (no bytes in the trie) the grammar takes wherever their text fits, e.g. Mistral's
     * [TOOL_CALLS] and [ARGS] tokens for those literals (ragd_gmask sets their bits, advancing by a token
     * id takes their text); at most RAGD_GRAMMAR_MAX_MARKERS, each text at most 32 bytes */
    const int32_t *marker_ids;
    const char *const *marker_texts;
    int n_markers;
} ragd_grammar_calls;
#define RAGD_GRAMMAR_MAX_MARKERS 4
ragd_status ragd_grammar_compile_calls(const ragd_grammar_calls *k, ragd_grammar **out, ragd_err *err);
/* `response_format: {"type": "json_object"}`: any JSON object. */
ragd_status ragd_grammar_json_object(ragd_grammar **out, ragd_err *err);
void ragd_grammar_free(ragd_grammar *g); /* NULL ok */

/* ---------------------------------------------------------------------------------------------- */
/* matcher state: a set of up to RAGD_GMATCH_MAX_ALT pushdown stacks (anyOf alternatives alive at once).
 * Fields are private to the module; the struct is public only so callers can embed and copy it. */

typedef struct ragd_gframe {
    uint16_t node, ph, a, b, c, d;
} ragd_gframe;

typedef struct ragd_gmatch {
    uint8_t n_alt;                       /* 0: dead (rejected everything) */
    uint8_t depth[RAGD_GMATCH_MAX_ALT];  /* 0: that alternative's value is complete */
    ragd_gframe f[RAGD_GMATCH_MAX_ALT][RAGD_GMATCH_MAX_DEPTH];
} ragd_gmatch;

/* The state before the first byte. */
void ragd_gmatch_init(const ragd_grammar *g, ragd_gmatch *m);
/* Feeds bytes. True: all were accepted and *m moved on. False: some byte was rejected; *m unchanged. */
bool ragd_gmatch_advance(const ragd_grammar *g, ragd_gmatch *m, const void *bytes, size_t len);
/* True when the bytes so far are a complete value (EOS may follow). */
bool ragd_gmatch_accepting(const ragd_grammar *g, const ragd_gmatch *m);
/* True when the value is complete and no further byte can be accepted (the sequence should end). */
bool ragd_gmatch_finished(const ragd_grammar *g, const ragd_gmatch *m);

/* ---------------------------------------------------------------------------------------------- */
/* vocabulary trie and token masks */

typedef struct ragd_vocab_trie ragd_vocab_trie;

/* tok_bytes[i], tok_len[i]: the raw bytes of token i (what decoding appends). A token with
 * tok_bytes[i] NULL or tok_len[i] <= 0 (special tokens, holes, empty tokens) or longer than
 * RAGD_VOCAB_MAX_TOKEN_BYTES is never allowed, except the eos_ids[0..n_eos), which are allowed exactly
 * in accepting states. Bytes are copied. */
#define RAGD_VOCAB_MAX_TOKEN_BYTES 1024
ragd_status ragd_vocab_trie_build(const char *const *tok_bytes, const int *tok_len, int n_vocab,
                                  const int32_t *eos_ids, int n_eos, ragd_vocab_trie **out, ragd_err *err);
/* The same from a tokenizer: every non-special token's decoder bytes; eos_ids as above.
 * RAGD_EUNSUPPORTED when the tokenizer's decoder does not concatenate token bytes. */
ragd_status ragd_vocab_trie_from_tokenizer(const ragd_tokenizer *tok, const int32_t *eos_ids, int n_eos,
                                           ragd_vocab_trie **out, ragd_err *err);
void ragd_vocab_trie_free(ragd_vocab_trie *t); /* NULL ok */
int ragd_vocab_trie_n_vocab(const ragd_vocab_trie *t);
int ragd_vocab_trie_mask_words(const ragd_vocab_trie *t); /* (n_vocab + 31) / 32 */
/* The bytes of token id as given at build (NULL for a never-allowed token or an EOS id). */
const char *ragd_vocab_trie_token(const ragd_vocab_trie *t, int32_t id, int *len);

/* Scratch for ragd_gmask: one per thread computing masks, for one trie (and any grammar). */
typedef struct ragd_gmask_ws ragd_gmask_ws;
ragd_gmask_ws *ragd_gmask_ws_create(const ragd_vocab_trie *t); /* NULL when out of memory */
void ragd_gmask_ws_free(ragd_gmask_ws *ws);                   /* NULL ok */

/* mask_words[ragd_vocab_trie_mask_words(t)]: bit (i & 31) of word i / 32 is set iff token i is
 * allowed in state m: advancing m by its bytes succeeds (or, for an EOS id, m is accepting; for a
 * marker token of g, outside a string, by its text). A dead state allows nothing. Never allocates. */
void ragd_gmask(const ragd_grammar *g, const ragd_gmatch *m, const ragd_vocab_trie *t, ragd_gmask_ws *ws,
                uint32_t *mask_words);
/* Advances m by token id's bytes (an EOS id: true iff accepting, m unchanged). False: not allowed. */
bool ragd_gmatch_advance_token(const ragd_grammar *g, ragd_gmatch *m, const ragd_vocab_trie *t, int32_t id);

/* ---------------------------------------------------------------------------------------------- */
/* mask cache (mask_cache.c): token masks by matcher state, shared by every sequence of a thread
 *
 * A mask is a function of (grammar, matcher state) only, so sequences in the same state — the n
 * choices of a request, requests with the same schema, every structural state of JSON mode — share
 * one computation. Keys: the grammar's content fingerprint (two 64-bit hashes: equal schemas compiled
 * by different requests share entries) and the live part of the matcher state, compared in full on a
 * hit (never a hash alone). Bounded LRU of n_entries masks allocated at create; misses of a batch are
 * computed together, spread over n_threads threads (the caller's included). */

/* Two 64-bit hashes of the compiled grammar's content (equal for equal compiled grammars). */
void ragd_grammar_fingerprint(const ragd_grammar *g, uint64_t fp[2]);
/* A hash of the live part of a matcher state (what decides its future), and equality of that part. */
uint64_t ragd_gmatch_hash(const ragd_gmatch *m);
bool ragd_gmatch_equal(const ragd_gmatch *a, const ragd_gmatch *b);

typedef struct ragd_gmask_cache ragd_gmask_cache;
typedef struct ragd_gmask_cache_stats {
    int64_t lookups, hits, computed; /* computed: masks computed by ragd_gmask */
    double compute_s;                /* wall time in ragd_gmask_cache_compute */
} ragd_gmask_cache_stats;

/* n_entries ≥ 2 (and more than the lookups of one batch); n_threads ≥ 1 (1: no extra threads).
 * NULL on out of memory (or a thread that cannot start). */
ragd_gmask_cache *ragd_gmask_cache_create(const ragd_vocab_trie *t, int n_entries, int n_threads);
void ragd_gmask_cache_free(ragd_gmask_cache *c); /* NULL ok; joins its threads */
/* Starts a batch: entries returned by lookups from here to the end of the next compute stay valid. */
void ragd_gmask_cache_begin(ragd_gmask_cache *c);
/* The entry holding the mask of (g, m): an existing one (hit) or a new one to be computed by the next
 * ragd_gmask_cache_compute (g and m are read then: both must stay valid until it returns). -1 when
 * every entry is taken by this batch (more lookups than n_entries). Never allocates. */
int ragd_gmask_cache_lookup(ragd_gmask_cache *c, const ragd_grammar *g, const ragd_gmatch *m);
/* Computes the batch's new entries. */
void ragd_gmask_cache_compute(ragd_gmask_cache *c);
/* The mask words of an entry (ragd_vocab_trie_mask_words of the trie), valid until the next begin. */
const uint32_t *ragd_gmask_cache_mask(const ragd_gmask_cache *c, int entry);
void ragd_gmask_cache_stats_get(const ragd_gmask_cache *c, ragd_gmask_cache_stats *st);

#endif
