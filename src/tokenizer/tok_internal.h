/* tok_internal.h — the tokenizer's private data structures, shared by its .c files only.
 *
 * One ragd_tokenizer is built by a loader (tok_load_json.c, tok_load_gguf.c) through the builder in
 * tok_build.c and is immutable afterwards. The encode pipeline (tok_encode.c) mirrors Hugging Face
 * `tokenizers`:
 *
 *   raw text ──added tokens (normalized=false) split──▶ segments
 *   segment ──normalizers──▶ normalized ──added tokens (normalized=true) split──▶ pieces
 *   piece ──pre-tokenizer steps (Split / Digits / ByteLevel prefix)──▶ words
 *   word ──model: BPE (tok_bpe.c) | WordPiece (tok_wordpiece.c) | Unigram (tok_unigram.c)──▶ ids
 *   ids ──post-processor (template; pairs + type ids in tok_pair.c)──▶ output
 *
 * Byte mode: when the pre-tokenizer ends with ByteLevel, words stay raw UTF-8 bytes and the model
 * vocabulary is keyed by the bytes its byte-level strings stand for ("Ġ" → 0x20), so BPE starts from
 * one symbol per byte without ever materializing the byte-level characters.
 *
 * Per-thread state: each thread that encodes gets a tok_ws (scratch buffers + a word cache) through a
 * pthread key owned by the tokenizer; the tokenizer keeps a list of them to free at ragd_tokenizer_free.
 */
#ifndef RAGD_TOK_INTERNAL_H
#define RAGD_TOK_INTERNAL_H

#include <pthread.h>

#include "tokenizer/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ---------------------------------------------------------------------------------------------- */
/* string → id hash table (open addressing; keys are byte ranges in an arena owned by the table) */

typedef struct tok_hash {
    uint32_t *slot;        /* [cap] entry index + 1; 0 = empty */
    uint64_t *ehash;       /* [n] entry hash */
    uint32_t *koff, *klen; /* [n] key location in arena */
    int32_t *val;          /* [n] */
    size_t cap, n, ecap;
    ragd_buf arena;
} tok_hash;

void tok_hash_init(tok_hash *h, size_t expected);
void tok_hash_free(tok_hash *h);
/* Inserts or overwrites. */
void tok_hash_put(tok_hash *h, const char *key, size_t len, int32_t val);
/* -1 when absent. */
int32_t tok_hash_get(const tok_hash *h, const char *key, size_t len);
uint64_t tok_hash_bytes(const void *p, size_t n);

/* (left id, right id) → (rank, merged id) */
typedef struct tok_merges {
    uint64_t *keys;   /* [cap] ((uint64)a << 32 | b) + 1, 0 = empty */
    uint32_t *rank;   /* [cap] */
    int32_t *merged;  /* [cap] */
    size_t cap, n;
} tok_merges;

static inline size_t tok_merges_slot(const tok_merges *m, uint64_t key) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & (m->cap - 1);
}
/* Returns the rank or UINT32_MAX when the pair does not merge; *merged gets the new id. */
static inline uint32_t tok_merges_get(const tok_merges *m, int32_t a, int32_t b, int32_t *merged) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t i = tok_merges_slot(m, key);
    for (;;) {
        uint64_t k = m->keys[i];
        if (k == key) { *merged = m->merged[i]; return m->rank[i]; }
        if (!k) return UINT32_MAX;
        i = (i + 1) & (m->cap - 1);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* components */

typedef enum {
    TOK_NORM_NFC, TOK_NORM_NFD, TOK_NORM_NFKC, TOK_NORM_NFKD, TOK_NORM_LOWERCASE, TOK_NORM_STRIP_ACCENTS,
    TOK_NORM_REPLACE, /* String pattern → content */
    TOK_NORM_PREPEND,
    TOK_NORM_REPLACE_RE,   /* Regex pattern (PCRE2) → content */
    TOK_NORM_STRIP,        /* Strip: White_Space off the left and/or right end */
    TOK_NORM_BERT_CLEAN,   /* BertNormalizer clean_text */
    TOK_NORM_BERT_CHINESE, /* BertNormalizer handle_chinese_chars */
    TOK_NORM_BERT_STRIP,   /* BertNormalizer strip_accents: NFD, then drop Mn */
    TOK_NORM_PRECOMPILED,  /* SentencePiece charsmap (tok_precompiled.c) */
} tok_norm_kind;

typedef struct tok_charsmap tok_charsmap; /* tok_precompiled.c */

typedef struct tok_norm {
    tok_norm_kind kind;
    char *pattern; size_t pattern_len; /* REPLACE */
    char *content; size_t content_len; /* REPLACE, REPLACE_RE, PREPEND */
    pcre2_code *re;                    /* REPLACE_RE */
    bool left, right;                  /* STRIP */
    tok_charsmap *cmap;                /* PRECOMPILED */
} tok_norm;

typedef enum {
    TOK_SPLIT_REMOVED, TOK_SPLIT_ISOLATED, TOK_SPLIT_MERGED_WITH_PREVIOUS, TOK_SPLIT_MERGED_WITH_NEXT,
    TOK_SPLIT_CONTIGUOUS,
} tok_split_behavior;

/* How a Split finds its matches. The KNOWN_* matchers are hand-written equivalents of well-known
 * regexes (selected when the pattern string is exactly that regex; see tok_regex.c). */
typedef enum {
    TOK_MATCH_QWEN2, TOK_MATCH_LLAMA3, TOK_MATCH_GPT2, TOK_MATCH_PCRE2, TOK_MATCH_STRING, TOK_MATCH_DIGIT,
} tok_match_kind;

typedef enum {
    TOK_PRE_SPLIT, TOK_PRE_PREFIX_SPACE,
    TOK_PRE_BERT,      /* BertPreTokenizer: drop White_Space, isolate punctuation */
    TOK_PRE_WSPLIT,    /* WhitespaceSplit */
    TOK_PRE_WHITESPACE, /* Whitespace: runs of Rust regex \w, runs of [^\w\s] */
    TOK_PRE_METASPACE, /* Metaspace: ' ' → replacement, prepend, split before each replacement */
} tok_pre_kind;

typedef enum { TOK_PREPEND_ALWAYS, TOK_PREPEND_FIRST, TOK_PREPEND_NEVER } tok_prepend;

typedef struct tok_pre {
    tok_pre_kind kind;
    tok_match_kind match;
    tok_split_behavior behavior;
    bool invert;
    pcre2_code *re;            /* TOK_MATCH_PCRE2 */
    char *str; size_t str_len; /* TOK_MATCH_STRING */
    char rep[4]; size_t rep_len;  /* METASPACE: the replacement character */
    tok_prepend prepend;          /* METASPACE */
    bool split;                   /* METASPACE */
} tok_pre;

typedef struct tok_added {
    char *content; size_t len;
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
} tok_added;

/* A byte trie over added-token contents for leftmost-longest matching (first-child/next-sibling). */
typedef struct tok_trie {
    int32_t *child, *sibling, *term; /* [n_nodes]; term = index into added[] ending here or -1 */
    uint8_t *label;                  /* [n_nodes] the byte on the edge into the node */
    size_t n_nodes, cap_nodes;
    uint8_t first[256];              /* 1 when some token starts with this byte */
    bool empty;
} tok_trie;

typedef enum { TOK_DEC_NONE, TOK_DEC_BYTELEVEL, TOK_DEC_WORDPIECE, TOK_DEC_METASPACE } tok_dec_kind;

typedef enum { TOK_MODEL_BPE, TOK_MODEL_WORDPIECE, TOK_MODEL_UNIGRAM } tok_model_kind;

/* Unigram pieces in a byte trie: transitions in one open-addressing table keyed by (node, byte). */
typedef struct tok_utrie {
    uint64_t *keys;   /* [cap] (node << 8 | byte) + 1, 0 = empty */
    uint32_t *child;  /* [cap] */
    int32_t *term;    /* [n_nodes] piece id ending at the node or -1 */
    size_t cap, n_nodes, n_keys;
} tok_utrie;

/* A post-processor template item: a sequence ($A: seq 0, $B: seq 1) or a run of special ids, with
 * the type id its tokens get. */
typedef struct tok_tpl_item {
    bool is_seq;
    uint8_t seq;
    int32_t type_id;
    int32_t *ids; size_t n_ids;
} tok_tpl_item;

/* ---------------------------------------------------------------------------------------------- */
/* per-thread workspace */

#define TOK_CACHE_SLOTS 4096      /* power of two; 96 B each → 384 KiB per thread and tokenizer */
#define TOK_CACHE_MAX_WORD 38     /* bytes */
#define TOK_CACHE_MAX_IDS 12

typedef struct tok_cache_entry {
    uint64_t h;        /* 0 = empty */
    uint8_t wlen, nids;
    char w[TOK_CACHE_MAX_WORD];
    int32_t ids[TOK_CACHE_MAX_IDS];
} tok_cache_entry;

typedef struct tok_ws {
    struct tok_ws *next_ws, *prev_ws;   /* in the tokenizer's list */
    const struct ragd_tokenizer *owner;
    bool temporary;                    /* not registered: freed after the call */
    tok_cache_entry *cache;            /* [TOK_CACHE_SLOTS] or NULL */
    ragd_buf norm, norm2, norm3;       /* normalized segment, the normalizers' other buffer, a third (NFD step) */
    ragd_buf pre[8];                   /* per pre-tokenizer level (prefix-space copies) */
    int32_t *cp; size_t cp_cap;        /* utf8proc scratch (code points) */
    /* split lists per level: [start, end, is_match] triples */
    size_t *spl[8]; size_t spl_cap[8];
    /* BPE scratch */
    int32_t *sym; uint32_t *rk; size_t sym_cap;  /* [n] ids, ranks */
    int32_t *prv, *nxt; size_t link_cap;
    uint64_t *heap; size_t heap_cap;
    /* WordPiece key scratch; Unigram lattice [n + 1] and path */
    ragd_buf wkey;
    double *lat_score; int32_t *lat_start, *lat_id; size_t lat_cap;
    int32_t *path; size_t path_cap;
    /* pair encoding: the two sequences' ids before the template */
    ragd_tok_ids pair_a, pair_b;
    bool at_start;                     /* the piece being pre-tokenized starts the original text */
    pcre2_match_data *md;              /* Replace (Regex) normalizer matches; created on first use */
} tok_ws;

/* ---------------------------------------------------------------------------------------------- */

#define TOK_MAX_PRE 8

struct ragd_tokenizer {
    /* vocabulary by id (model + added) */
    size_t n_ids;              /* max id + 1 */
    uint32_t *str_off, *str_len; /* [n_ids] original token string; str_len UINT32_MAX = no such id */
    uint32_t *dec_off, *dec_len; /* [n_ids] bytes the decoder yields for this token */
    uint32_t *dec0_off, *dec0_len; /* [n_ids] the same as the first token decoded (WordPiece, Metaspace) */
    uint8_t *flags;            /* [n_ids] TOK_F_* */
    ragd_buf strs;             /* arena of strings and decoder bytes */
    tok_hash str2id;           /* original string → id (added tokens win) */

    /* model */
    tok_model_kind model;
    tok_hash key2id;           /* model key (bytes in byte mode) → model id */
    size_t wp_max_chars;       /* WordPiece max_input_chars_per_word */
    size_t wp_max_key;         /* WordPiece: the longest vocabulary string (bytes): longer candidates never match */
    tok_utrie utrie;           /* Unigram */
    double *uscore;            /* [n_ids] Unigram piece scores */
    double umin_score;
    tok_merges merges;
    int32_t byte_id[256];      /* byte mode: the id of each single byte, -1 if absent */
    bool byte_mode, ignore_merges, byte_fallback, fuse_unk;
    int32_t unk_id;
    char *cont_prefix; size_t cont_prefix_len;
    char *eow_suffix; size_t eow_suffix_len;
    int32_t byte_tok[256];     /* byte_fallback: id of "<0xXX>", -1 if absent */

    tok_norm *norms; size_t n_norms;
    tok_pre pres[TOK_MAX_PRE]; size_t n_pres;

    tok_added *added; size_t n_added;
    tok_trie trie_raw, trie_norm;  /* normalized=false / normalized=true added tokens */

    tok_tpl_item *tpl; size_t n_tpl; /* single-sequence template; NULL = no special tokens */
    tok_tpl_item *tpl_pair; size_t n_tpl_pair; /* pair template; NULL with tpl: derived (tok_pair.c) */
    bool pair_unsupported;           /* a TemplateProcessing without a pair template */

    tok_dec_kind decoder;
    char dec_str[24]; size_t dec_str_len; /* WORDPIECE prefix; METASPACE replacement */
    bool dec_cleanup;                /* WORDPIECE */
    tok_prepend dec_prepend;         /* METASPACE */

    char *chat_template;
    char *chat_template_tool_use; /* the named template transformers picks when tools are given */
    int32_t bos_id, eos_id, pad_id;
    int64_t model_max_length;  /* tokenizer_config.json model_max_length, -1 when absent or "unlimited" */

    bool use_cache;            /* word cache on (default; env RAGD_TOK_NO_CACHE at load turns it off) */
    pthread_key_t ws_key;
    bool ws_key_ok;
    pthread_mutex_t ws_mu;
    tok_ws *ws_list;
};

enum { TOK_F_PRESENT = 1, TOK_F_ADDED = 2, TOK_F_SPECIAL = 4 };

/* ---------------------------------------------------------------------------------------------- */
/* shared helpers */

/* byte ↔ byte-level character (GPT-2 bytes_to_unicode). */
uint32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(uint32_t cp); /* -1 when cp is not in the byte-level alphabet */

/* Decodes one code point of valid UTF-8 at s; *len gets its byte length. */
static inline uint32_t tok_utf8_decode(const uint8_t *s, size_t *len) {
    uint8_t c = s[0];
    if (c < 0x80) { *len = 1; return c; }
    if (c < 0xE0) { *len = 2; return ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F); }
    if (c < 0xF0) { *len = 3; return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F); }
    *len = 4;
    return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}
size_t tok_utf8_encode(uint32_t cp, char *out); /* → 1..4 */
/* At s[0..n) (n ≥ 1): the length of a complete valid sequence (1..4), or -k when the first k bytes
 * are a maximal invalid subpart, or 0 when all n bytes are a valid but incomplete prefix. */
int tok_utf8_seq(const uint8_t *s, size_t n);

/* Appends bytes to out as String::from_utf8_lossy does (maximal invalid subparts → U+FFFD). When
 * hold is not NULL, a trailing incomplete-but-valid prefix is not emitted: its length goes to *hold. */
void tok_utf8_lossy(ragd_buf *out, const uint8_t *s, size_t n, size_t *hold);

/* Unicode classes exactly as HF tokenizers sees them (tok_util.c, tok_unicode.c). */
bool tok_is_ws(uint32_t cp);      /* \s: White_Space (Oniguruma) */
bool tok_is_letter(uint32_t cp);  /* \p{L} (Oniguruma) */
bool tok_is_number(uint32_t cp);  /* \p{N} (Oniguruma) */
bool tok_is_numeric(uint32_t cp); /* Rust char::is_numeric (Digits) */
bool tok_is_mark(uint32_t cp);    /* removed by StripAccents */
bool tok_is_word(uint32_t cp);    /* Rust regex \w (single_word added tokens) */
/* True when HF's NFC/NFD (compat: NFKC/NFKD) leave cp alone although utf8proc would not. */
bool tok_norm_inert(uint32_t cp, bool compat);
uint32_t tok_lower_exception(uint32_t cp); /* HF's lowercase where it differs from utf8proc's, else 0 */

/* builder (tok_build.c): loaders fill the raw pieces, then call tok_build_finish */
typedef struct tok_builder {
    ragd_tokenizer *t;
    /* model vocab as given (original strings) */
    size_t n_vocab;
    const char **vocab; const size_t *vocab_len; const int32_t *vocab_id;
    size_t n_merges;
    const char **merge_a, **merge_b; const size_t *merge_a_len, *merge_b_len;
} tok_builder;

ragd_tokenizer *tok_alloc(void);
/* Builds vocabulary tables, merges, tries and decoder bytes. */
ragd_status tok_build_finish(tok_builder *b, ragd_err *err);
ragd_status tok_pre_compile_regex(tok_pre *p, const char *pattern, size_t len, ragd_err *err);
/* Sets a Split step's matcher: a hand-written one when the pattern is a well-known regex, else PCRE2. */
ragd_status tok_pre_set_regex(ragd_tokenizer *t, tok_pre *p, const char *re, size_t len, ragd_err *err);
/* Appends the steps of a ByteLevel pre-tokenizer and turns byte mode on. */
ragd_status tok_pre_add_bytelevel(ragd_tokenizer *t, bool add_prefix_space, bool use_regex, ragd_err *err);
/* Appends an added token (copied). */
void tok_add_added(ragd_tokenizer *t, const char *content, size_t len, int32_t id, bool special, bool lstrip,
                   bool rstrip, bool single_word, bool normalized);
ragd_status tok_read_config(ragd_tokenizer *t, const char *dir, ragd_err *err);
/* Builds a tokenizer from a parsed tokenizer.json document (tok_load_json.c); dir holds
 * tokenizer_config.json. The vocab.txt loader builds such a document too. */
struct json_t;
ragd_status tok_load_root(struct json_t *root, const char *dir, ragd_tokenizer **out, ragd_err *err);

/* regex / splitting (tok_regex.c) */
/* The end of the match that starts at i (the known regexes match at every position). */
size_t tok_known_match(tok_match_kind kind, const uint8_t *s, size_t n, size_t i);
extern const char TOK_RE_QWEN2[], TOK_RE_LLAMA3[], TOK_RE_GPT2[];
/* Appends (start, end, is_match) triples of piece [0,n) to *v (count in *nv) per the step, after the
 * behavior is applied and empty pieces are dropped. */
ragd_status tok_split_apply(const tok_pre *p, const uint8_t *s, size_t n, size_t **v, size_t *cap, size_t *nv,
                            ragd_err *err);

/* normalization (tok_normalize.c): normalizes s into ws->norm. */
ragd_status tok_normalize(const ragd_tokenizer *t, tok_ws *ws, const char *s, size_t n, ragd_err *err);

/* BertNormalizer / pre-tokenizer classes (tok_unicode.c, tables in tok_unicode_bert.c) */
bool tok_is_bert_drop(uint32_t cp);  /* clean_text removes it */
bool tok_is_bert_space(uint32_t cp); /* clean_text makes it ' ' */
bool tok_is_bert_punct(uint32_t cp);
bool tok_is_rust_ws(uint32_t cp);    /* char::is_whitespace */
bool tok_is_bert_mn(uint32_t cp);    /* strip_accents removes it (after NFD) */
static inline bool tok_is_chinese(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Precompiled charsmap (tok_precompiled.c). */
ragd_status tok_charsmap_parse(const char *b64, size_t len, tok_charsmap **out, ragd_err *err);
void tok_charsmap_free(tok_charsmap *m);
void tok_charsmap_apply(const tok_charsmap *m, const uint8_t *s, size_t n, ragd_buf *out);

/* Models: appends the ids of one word. tok_model_word dispatches on t->model. */
ragd_status tok_model_word(const ragd_tokenizer *t, tok_ws *ws, const uint8_t *w, size_t n, ragd_tok_ids *out,
                           ragd_err *err);
ragd_status tok_wordpiece_word(const ragd_tokenizer *t, tok_ws *ws, const uint8_t *w, size_t n, ragd_tok_ids *out,
                               ragd_err *err);
ragd_status tok_unigram_word(const ragd_tokenizer *t, tok_ws *ws, const uint8_t *w, size_t n, ragd_tok_ids *out,
                             ragd_err *err);
/* Unigram trie (tok_unigram.c): built by the loader after the vocabulary. */
void tok_utrie_insert(tok_utrie *tr, const uint8_t *s, size_t n, int32_t id);
void tok_utrie_free(tok_utrie *tr);

/* BPE (tok_bpe.c): appends the ids of one word. */
ragd_status tok_bpe_word(const ragd_tokenizer *t, tok_ws *ws, const uint8_t *w, size_t n, ragd_tok_ids *out,
                         ragd_err *err);

/* workspace (tok_encode.c) */
tok_ws *tok_ws_get(const ragd_tokenizer *t);
void tok_ws_release(tok_ws *ws);
void tok_ws_free(tok_ws *ws);
void tok_ws_key_create(ragd_tokenizer *t);
void tok_ws_free_all(ragd_tokenizer *t);
/* Encodes without the post-processor; appends to out. */
ragd_status tok_encode_body(const ragd_tokenizer *t, tok_ws *ws, const char *text, size_t len, ragd_tok_ids *out,
                            ragd_err *err);

/* trie (tok_build.c) */
/* Longest added-token match starting at s[i]; returns the added[] index or -1, *end the match end. */
int32_t tok_trie_longest(const tok_trie *tr, const uint8_t *s, size_t n, size_t i, size_t *end);

#endif
