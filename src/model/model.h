/* model.h — the public header of ragd's model module: configuration, weights (as typed views into
 * mmapped files) and the tokenizer of one model, loaded from a Hugging Face directory or a GGUF file.
 *
 * A ragd_model is immutable after load and may be shared by threads. Every tensor has been checked
 * against the configuration (name, shape, dtype, bytes inside the file) before load returns OK; a
 * load that fails frees everything and returns a message naming the file, the tensor, what was
 * expected and what was found. Backends convert the views into their own layout (f32 on the CPU,
 * bf16 on the GPU) and never write to them.
 *
 * Layout convention: tensors keep PyTorch's [out, in] row-major layout (GGUF dims are reversed on
 * load, so ne[0] = in becomes shape[n_dims-1]). For llama-arch GGUF the Q/K rows are un-permuted at
 * load so that every backend uses Hugging Face's half-split RoPE (see MODEL_FACTS.md §8).
 */
#ifndef RAGD_MODEL_H
#define RAGD_MODEL_H

#include "common/common.h"
#include "tokenizer/tokenizer.h"

typedef enum {
    RAGD_DT_F32 = 0,
    RAGD_DT_F16,
    RAGD_DT_BF16,
    RAGD_DT_Q8_0,
    RAGD_DT_Q4_0,
    RAGD_DT_Q4_1,
} ragd_dtype;
const char *ragd_dtype_name(ragd_dtype t);

typedef enum { RAGD_ARCH_QWEN3 = 0, RAGD_ARCH_LLAMA, RAGD_ARCH_QWEN2 } ragd_arch;
const char *ragd_arch_name(ragd_arch a);

typedef enum { RAGD_POOL_LAST = 0, RAGD_POOL_MEAN, RAGD_POOL_CLS } ragd_pooling;

/* A typed view of one weight. data points into an mmap (or, for converted GGUF tensors, into memory
 * the model owns). shape is PyTorch order: shape[0] is the slowest axis. */
typedef struct ragd_tensor {
    const char *name; /* as in the file, NULL when absent */
    const void *data; /* NULL when absent; not necessarily aligned (read with memcpy or copy out) */
    ragd_dtype dtype;
    int n_dims;       /* 0 (scalar) … 4 */
    int64_t shape[4]; /* shape[0..n_dims); unused entries are 0 */
    size_t nbytes;    /* bytes as stored: numel × dtype size (quantized: numel/32 × block size) */
    const char *file; /* file name (no folder) the tensor was read from, for messages; NULL when absent */
} ragd_tensor;

typedef struct ragd_model_config {
    ragd_arch arch;
    int n_vocab;      /* rows of the embedding matrix (may exceed the tokenizer's vocabulary) */
    int n_embd;       /* hidden_size */
    int n_ff;         /* intermediate_size */
    int n_layer;
    int n_head;
    int n_head_kv;
    int head_dim;     /* explicit head_dim or hidden/heads */
    float rms_eps;
    float rope_theta;
    /* rope_scaling type "llama3" (rope_type == 1) */
    int rope_type;    /* 0 default, 1 llama3 */
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_max_pos;
    int max_pos;      /* max_position_embeddings */
    bool tie_embed;   /* lm_head == embed_tokens */
    bool qkv_bias;    /* Qwen2 */
    bool qk_norm;     /* Qwen3 */
    int32_t bos_id;   /* -1 when none */
    int32_t eos_ids[8]; /* union of config.json, generation_config.json and tokenizer_config eos */
    int n_eos;
} ragd_model_config;

typedef struct ragd_layer_weights {
    ragd_tensor attn_norm; /* [n_embd] */
    ragd_tensor wq;        /* [n_head*head_dim, n_embd] */
    ragd_tensor wk;        /* [n_head_kv*head_dim, n_embd] */
    ragd_tensor wv;        /* [n_head_kv*head_dim, n_embd] */
    ragd_tensor bq, bk, bv;/* [rows] Qwen2 only, else data == NULL */
    ragd_tensor wo;        /* [n_embd, n_head*head_dim] */
    ragd_tensor q_norm;    /* [head_dim] Qwen3 only */
    ragd_tensor k_norm;    /* [head_dim] Qwen3 only */
    ragd_tensor ffn_norm;  /* [n_embd] post_attention_layernorm */
    ragd_tensor w_gate;    /* [n_ff, n_embd] */
    ragd_tensor w_up;      /* [n_ff, n_embd] */
    ragd_tensor w_down;    /* [n_embd, n_ff] */
} ragd_layer_weights;

/* Generation defaults from generation_config.json; every field is -1 when absent (the file or the key),
 * so that 0 (e.g. temperature 0, top_k 0 = disabled) stays meaningful. */
typedef struct ragd_gen_defaults {
    float temperature, top_p, min_p; /* -1 when absent */
    int top_k;                       /* -1 when absent */
    float repetition_penalty;        /* -1 when absent */
    int do_sample;                   /* -1 when absent, else 0 / 1 */
} ragd_gen_defaults;

typedef struct ragd_model {
    char *path;              /* directory or .gguf file it came from */
    char *name;              /* served name: the folder or file name without extension */
    ragd_model_config cfg;
    ragd_tensor tok_embd;    /* [n_vocab, n_embd] */
    ragd_tensor out_norm;    /* [n_embd] */
    ragd_tensor lm_head;     /* [n_vocab, n_embd]; equals tok_embd's view when tied; data NULL when the
                                checkpoint has none (embedding checkpoints) */
    ragd_layer_weights *layers; /* [n_layer] */
    ragd_tokenizer *tok;
    /* sentence-transformers facts (modules.json, 1_Pooling/config.json, config_sentence_transformers) */
    bool has_st_pooling;
    ragd_pooling pooling;
    bool st_normalize;       /* a Normalize module is listed */
    char *query_prompt;      /* prompts["query"] or NULL */
    ragd_gen_defaults gen;
    /* private: storage owned by the model */
    void *priv;
} ragd_model;

/* Loads `path`: a Hugging Face directory (config.json, tokenizer.json, *.safetensors) or a .gguf
 * file. On failure *out is NULL and err names the file/tensor/field. */
ragd_status ragd_model_load(const char *path, ragd_model **out, ragd_err *err);
/* Whether paths a and b hold the same model: the same file or directory (after realpath), or directories
 * with the same regular files (dot files ignored) — same names, sizes and sha256 — or single files
 * (GGUF) of the same size and sha256. Hashes only when the names and sizes all match. *bytes (optional):
 * the bytes compared when same. Fails (EIO) when a path cannot be read. */
ragd_status ragd_model_same_files(const char *a, const char *b, bool *same, uint64_t *bytes, ragd_err *err);
void ragd_model_free(ragd_model *m);

/* Counts, for `ragd inspect` and the memory plan. */
size_t ragd_model_param_count(const ragd_model *m);
size_t ragd_model_weight_bytes(const ragd_model *m); /* as stored */
/* Every distinct present tensor view in a fixed order (tok_embd, out_norm, lm_head unless it is tied or
 * absent, then each layer's views in struct order, absent ones skipped). Writes at most cap pointers into
 * out (which may be NULL when cap is 0) and returns the total count. */
size_t ragd_model_tensor_list(const ragd_model *m, const ragd_tensor **out, size_t cap);

/* Totals for `ragd inspect`: distinct present tensors (a tied lm_head counted once, as the embedding). */
typedef enum {
    RAGD_KIND_EMBED = 0, /* tok_embd */
    RAGD_KIND_ATTN,      /* q/k/v/o weights and q/k/v biases */
    RAGD_KIND_MLP,       /* gate/up/down */
    RAGD_KIND_NORM,      /* input/post-attention/q/k/final RMSNorm weights */
    RAGD_KIND_HEAD,      /* an untied lm_head */
    RAGD_KIND_COUNT
} ragd_tensor_kind;
const char *ragd_tensor_kind_name(ragd_tensor_kind k); /* "embedding", "attention", "mlp", "norm", "lm_head" */
#define RAGD_DT_COUNT 6
typedef struct ragd_model_stats {
    size_t n_tensors, params, bytes;
    size_t tensors_by_kind[RAGD_KIND_COUNT], params_by_kind[RAGD_KIND_COUNT], bytes_by_kind[RAGD_KIND_COUNT];
    size_t tensors_by_dtype[RAGD_DT_COUNT], bytes_by_dtype[RAGD_DT_COUNT]; /* indexed by ragd_dtype */
} ragd_model_stats;
void ragd_model_stats_get(const ragd_model *m, ragd_model_stats *out);

/* Converts n elements of a tensor (any dtype, quantized included) starting at element `start` (in
 * row-major order of the PyTorch shape) to f32. start and n must be multiples of 32 for quantized types
 * and start + n ≤ numel (both are invariants: violating them aborts). */
void ragd_tensor_to_f32(const ragd_tensor *t, size_t start, size_t n, float *dst);
size_t ragd_tensor_numel(const ragd_tensor *t); /* product of the shape; 1 for a scalar */
/* Bytes of n elements of type t (n a multiple of 32 for quantized types); 0 and false on overflow. */
bool ragd_dtype_nbytes(ragd_dtype t, size_t n, size_t *out);

/* ---- lower-level format parsers (also the fuzz targets' entry points) ---- */

/* safetensors: parse the header of a mapped file (data[0..size)). Bounds- and overflow-checked, and as
 * strict as Hugging Face's safetensors crate: 8-byte little-endian header length, a JSON object header
 * (≤ 100 MB, no duplicate keys), optional "__metadata__" (string values), each tensor a dtype (BF16, F16,
 * F32; any other → RAGD_EUNSUPPORTED naming tensor and dtype), a shape of ≤ 4 non-negative dims and
 * data_offsets [begin, end] relative to the data section with end - begin == numel × dtype size; the
 * tensors must cover the data section exactly, without gaps or overlaps. Any violation → RAGD_EFORMAT
 * with a message starting "fname: ". Entries are sorted by offset. free() accepts a zeroed struct. */
typedef struct ragd_st_entry {
    char *name;
    ragd_dtype dtype;
    int n_dims;
    int64_t shape[4];
    size_t offset, nbytes; /* absolute offsets into the file */
} ragd_st_entry;
typedef struct ragd_st_file {
    ragd_st_entry *entries;
    size_t n_entries;
} ragd_st_file;
ragd_status ragd_safetensors_parse(const uint8_t *data, size_t size, const char *fname, ragd_st_file *out,
                                   ragd_err *err);
void ragd_safetensors_free(ragd_st_file *f);

#endif
