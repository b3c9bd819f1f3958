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
    RAGD_DT_I64,  /* safetensors int64: only for non-weight buffers a family ignores (BERT's old persistent
                     embeddings.position_ids); never a weight (validation refuses it) */
} ragd_dtype;
const char *ragd_dtype_name(ragd_dtype t);

/* Architectures: the decoders (Qwen3, Llama, Qwen2) and the bidirectional Llama share the "decoder"
 * weight family, BERT and (XLM-)RoBERTa the "bert" / "xlm-roberta" families (family.c). */
typedef enum {
    RAGD_ARCH_QWEN3 = 0,
    RAGD_ARCH_LLAMA,
    RAGD_ARCH_QWEN2,
    RAGD_ARCH_BERT,        /* BertModel, BertForSequenceClassification */
    RAGD_ARCH_XLMR,        /* XLMRobertaModel, RobertaModel and their ...ForSequenceClassification */
    RAGD_ARCH_LLAMA_BIDIR, /* NVIDIA LlamaBidirectionalModel: Llama without the causal mask */
    RAGD_ARCH_QWEN35,      /* Qwen3_5ForCausalLM / the text model of Qwen3_5ForConditionalGeneration: hybrid
                              Gated DeltaNet + gated full attention ("qwen3.5" family) */
} ragd_arch;
const char *ragd_arch_name(ragd_arch a);

typedef enum { RAGD_POOL_LAST = 0, RAGD_POOL_MEAN, RAGD_POOL_CLS, RAGD_POOL_MAX } ragd_pooling;

/* The kinds of forward blocks a configuration selects (the CPU backend builds its block list from them). */
typedef enum { RAGD_NORM_RMS = 0, RAGD_NORM_LAYER } ragd_norm_kind;   /* RMSNorm / LayerNorm with bias */
typedef enum { RAGD_ACT_SWIGLU = 0, RAGD_ACT_GELU, RAGD_ACT_GELU_TANH } ragd_act; /* MLP: gated SiLU / GELU (erf / tanh) */
typedef enum { RAGD_POS_ROPE = 0, RAGD_POS_ABSOLUTE } ragd_pos_kind;  /* rotary / learned absolute positions */
/* lm_head / none / first-token classifier (dense + tanh + out: BERT, RoBERTa) / a linear score of the pooled
 * final rows divided by a temperature (NVIDIA's LlamaBidirectionalForSequenceClassification) */
typedef enum { RAGD_HEAD_LM = 0, RAGD_HEAD_NONE, RAGD_HEAD_CLS, RAGD_HEAD_POOL_LINEAR } ragd_head_kind;
/* The token mixer of a layer: softmax attention over the KV cache, or a Gated DeltaNet (linear attention with
 * a per-sequence conv + recurrent state; Qwen3.5 layer_types "linear_attention") */
typedef enum { RAGD_LAYER_FULL = 0, RAGD_LAYER_LINEAR } ragd_layer_kind;
#define RAGD_MAX_HYBRID_LAYERS 256 /* layers of a hybrid configuration (layer_kind below) */

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
    float rms_eps;    /* epsilon of every norm: rms_norm_eps, or layer_norm_eps for LayerNorm families */
    float rope_theta;
    /* rope_scaling type "llama3" (rope_type == 1) */
    int rope_type;    /* 0 default, 1 llama3 */
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_max_pos;
    int max_pos;      /* max_position_embeddings */
    bool tie_embed;   /* lm_head == embed_tokens */
    bool qkv_bias;    /* Qwen2 */
    bool qk_norm;     /* Qwen3 */
    /* the forward blocks (hf_config.c derives them from the architecture and its fields); all zero is the
     * causal pre-RMSNorm rotary SwiGLU decoder */
    ragd_norm_kind norm;  /* RMSNorm (decoders) or LayerNorm + bias (BERT) */
    bool post_norm;       /* x = norm(x + f(x)) (BERT) instead of x += f(norm(x)) */
    bool bidirectional;   /* no causal mask: every token attends to its whole sequence (encoders) */
    ragd_act act;
    ragd_pos_kind pos;
    bool linear_bias;     /* every projection has a bias (q/k/v/o, MLP up/down): BERT */
    int n_pos_embd;       /* rows of the absolute position table (max_position_embeddings); 0 with RoPE */
    int pos_offset;       /* position id of a sequence's first token: 0, or padding_idx + 1 (RoBERTa) */
    bool pos_skip_pad;    /* RoBERTa: pad tokens get position padding_idx and do not advance the count */
    int32_t pad_id;       /* pad_token_id, -1 when none */
    int n_type_vocab;     /* rows of the token type table; 0 when the family has none */
    ragd_head_kind head;
    int n_labels;         /* outputs of a classifier head (num_labels / len(id2label)); else 0 */
    float head_temperature; /* RAGD_HEAD_POOL_LINEAR: logits = score(pooled) / temperature (config "temperature") */
    ragd_pooling cfg_pooling; /* pooling the config asks for (LlamaBidirectional "pooling"); has_cfg_pooling */
    bool has_cfg_pooling;
    int32_t bos_id;   /* -1 when none */
    int32_t eos_ids[8]; /* union of config.json, generation_config.json and tokenizer_config eos */
    int n_eos;
    /* hybrid models (Qwen3.5): a token mixer per layer; all zero for every other family (all layers full) */
    bool hybrid;          /* some layers are Gated DeltaNet: per-sequence recurrent state, no prefix cache */
    uint8_t layer_kind[RAGD_MAX_HYBRID_LAYERS]; /* ragd_layer_kind of layer l (hybrid only, n_layer ≤ 256) */
    int rope_dim;         /* rotated dims of a head (partial_rotary_factor · head_dim); 0 = head_dim */
    bool attn_out_gate;   /* q_proj gives [query | gate] per head; attention output × sigmoid(gate) */
    int lin_n_kh, lin_n_vh; /* Gated DeltaNet key (q/k) heads and value heads (n_vh a multiple of n_kh) */
    int lin_kd, lin_vd;   /* key / value head dims */
    int lin_conv;         /* depthwise causal conv kernel (linear_conv_kernel_dim) */
} ragd_model_config;

/* Totals for `ragd inspect`: distinct present tensors (a tied lm_head counted once, as the embedding). */
typedef enum {
    RAGD_KIND_EMBED = 0, /* token, position and token type embeddings */
    RAGD_KIND_ATTN,      /* q/k/v/o weights and biases */
    RAGD_KIND_MLP,       /* gate/up/down */
    RAGD_KIND_NORM,      /* norm weights and biases */
    RAGD_KIND_HEAD,      /* an untied lm_head, a classification head */
    RAGD_KIND_COUNT
} ragd_tensor_kind;

/* ---- weights ------------------------------------------------------------------------------------
 * Every weight any family has is a role. The two lists below are the only statement of the roles: they
 * generate the role enum, the named fields of ragd_model / ragd_layer_weights (overlaid on arrays indexed
 * by role, so generic code walks them and model code reads them by name) and the role names. Which roles
 * a family has, under which names (Hugging Face and GGUF), with which shapes and when, is that family's
 * descriptor table in family.c — used by both loaders, validation, the counts and both backends.
 * X(ROLE, field, kind): kind is the ragd_tensor_kind the tensor is counted under. */
#define RAGD_GLOBAL_WEIGHTS(X)                                                                            \
    X(TOK_EMBD, tok_embd, EMBED)       /* [n_vocab, n_embd] */                                            \
    X(POS_EMBD, pos_embd, EMBED)       /* [n_pos_embd, n_embd] absolute positions */                      \
    X(TYPE_EMBD, type_embd, EMBED)     /* [n_type_vocab, n_embd] token types */                           \
    X(EMBD_NORM, embd_norm, NORM)      /* [n_embd] LayerNorm after the embedding sum */                   \
    X(EMBD_NORM_B, embd_norm_b, NORM)  /* [n_embd] */                                                     \
    X(OUT_NORM, out_norm, NORM)        /* [n_embd] final norm (decoders) */                               \
    X(LM_HEAD, lm_head, HEAD)          /* [n_vocab, n_embd]; the tok_embd view when tied */               \
    X(CLS_DENSE, cls_dense, HEAD)      /* [n_embd, n_embd] BERT pooler / RoBERTa classifier.dense */      \
    X(CLS_DENSE_B, cls_dense_b, HEAD)  /* [n_embd] */                                                     \
    X(CLS_OUT, cls_out, HEAD)          /* [n_labels, n_embd] classifier / classifier.out_proj */          \
    X(CLS_OUT_B, cls_out_b, HEAD)      /* [n_labels] */
#define RAGD_LAYER_WEIGHTS(X)                                                                             \
    X(ATTN_NORM, attn_norm, NORM)      /* [n_embd] pre-attention (decoders) / post-attention (BERT) norm */ \
    X(ATTN_NORM_B, attn_norm_b, NORM)  /* [n_embd] LayerNorm bias */                                      \
    X(Q, wq, ATTN)                     /* [n_head*head_dim, n_embd] */                                    \
    X(K, wk, ATTN)                     /* [n_head_kv*head_dim, n_embd] */                                 \
    X(V, wv, ATTN)                     /* [n_head_kv*head_dim, n_embd] */                                 \
    X(BQ, bq, ATTN)                    /* [n_head*head_dim] Qwen2, BERT */                                \
    X(BK, bk, ATTN)                    /* [n_head_kv*head_dim] */                                         \
    X(BV, bv, ATTN)                    /* [n_head_kv*head_dim] */                                         \
    X(O, wo, ATTN)                     /* [n_embd, n_head*head_dim] */                                    \
    X(BO, bo, ATTN)                    /* [n_embd] BERT */                                                \
    X(Q_NORM, q_norm, NORM)            /* [head_dim] Qwen3 */                                             \
    X(K_NORM, k_norm, NORM)            /* [head_dim] Qwen3 */                                             \
    X(FFN_NORM, ffn_norm, NORM)        /* [n_embd] pre-MLP (decoders) / post-MLP (BERT) norm */           \
    X(FFN_NORM_B, ffn_norm_b, NORM)    /* [n_embd] */                                                     \
    X(GATE, w_gate, MLP)               /* [n_ff, n_embd] SwiGLU only */                                   \
    X(UP, w_up, MLP)                   /* [n_ff, n_embd] (BERT: intermediate.dense) */                    \
    X(BUP, b_up, MLP)                  /* [n_ff] */                                                       \
    X(DOWN, w_down, MLP)               /* [n_embd, n_ff] */                                               \
    X(BDOWN, b_down, MLP)              /* [n_embd] */                                                     \
    X(LIN_QKV, lin_qkv, ATTN)          /* [2*n_kh*kd + n_vh*vd, n_embd] Gated DeltaNet in_proj_qkv */      \
    X(LIN_Z, lin_z, ATTN)              /* [n_vh*vd, n_embd] output gate in_proj_z */                        \
    X(LIN_B, lin_b, ATTN)              /* [n_vh, n_embd] in_proj_b: beta = sigmoid(b) */                   \
    X(LIN_A, lin_a, ATTN)              /* [n_vh, n_embd] in_proj_a: decay input */                         \
    X(LIN_CONV, lin_conv, ATTN)        /* [2*n_kh*kd + n_vh*vd, 1, conv] depthwise causal conv1d */        \
    X(LIN_A_LOG, lin_a_log, ATTN)      /* [n_vh] A_log: g = -exp(A_log)·softplus(a + dt_bias) */           \
    X(LIN_DT_BIAS, lin_dt_bias, ATTN)  /* [n_vh] */                                                       \
    X(LIN_NORM, lin_norm, NORM)        /* [vd] gated RMSNorm weight (plain w, not 1 + w) */                \
    X(LIN_OUT, lin_out, ATTN)          /* [n_embd, n_vh*vd] out_proj */

#define RAGD_W_ENUM_(R, f, k) RAGD_W_##R,
#define RAGD_W_FIELD_(R, f, k) ragd_tensor f;
typedef enum {
    RAGD_GLOBAL_WEIGHTS(RAGD_W_ENUM_) RAGD_W_N_GLOBAL,
    RAGD_W_LAYER_FIRST_ = RAGD_W_N_GLOBAL - 1, /* the next role is RAGD_W_N_GLOBAL */
    RAGD_LAYER_WEIGHTS(RAGD_W_ENUM_) RAGD_W_COUNT
} ragd_weight_role;
#define RAGD_W_N_LAYER (RAGD_W_COUNT - RAGD_W_N_GLOBAL)
const char *ragd_weight_role_name(ragd_weight_role r); /* the field name: "tok_embd", "wq", ... */
ragd_tensor_kind ragd_weight_role_kind(ragd_weight_role r); /* what `inspect` counts it under */

typedef struct ragd_layer_weights {
    union {
        struct { RAGD_LAYER_WEIGHTS(RAGD_W_FIELD_) };
        ragd_tensor t[RAGD_W_N_LAYER]; /* [role - RAGD_W_N_GLOBAL] */
    };
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
    const struct ragd_family *family; /* the weight descriptor of cfg.arch (family.c) */
    /* the global weights by name (data NULL when absent; lm_head: the tok_embd view when tied, NULL in
     * embedding checkpoints) and by role */
    union {
        struct { RAGD_GLOBAL_WEIGHTS(RAGD_W_FIELD_) };
        ragd_tensor global[RAGD_W_N_GLOBAL];
    };
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

/* ---- weight-file digests (model_digest.c) ----
 * SHA-256 of every weight file (safetensors shard, GGUF file) of a set of loaded models, computed by one
 * background thread at low priority so that readiness and requests never wait for it.
 * Threading: create, start and free on one thread; json from any thread at any time. The models must
 * outlive the digests. */
typedef struct ragd_model_digests ragd_model_digests;
/* Every file pending; nothing is hashed before start. Never NULL. */
ragd_model_digests *ragd_model_digests_create(const ragd_model *const *models, int n_models);
/* Starts the hashing thread (once; later calls do nothing). RAGD_ENOMEM when no thread can be started. */
ragd_status ragd_model_digests_start(ragd_model_digests *d, ragd_err *err);
/* Appends model m's files as a JSON array: [{"file", "bytes", "sha256": lowercase hex | "pending"}] (a failed
 * file: "sha256": null and "error"). "[]" for a model that was not given at create, or d NULL. */
void ragd_model_digests_json(ragd_model_digests *d, const ragd_model *m, ragd_buf *out);
/* Model m's digest as one value (TEI's /info "model_sha"): with one weight file its sha256 (the Hugging Face
 * hub's LFS sha256 of that file); with several, the sha256 of their list as `sha256sum` prints it, one line
 * "<hex>  <file>\n" per file in the order of ragd_model_digests_json. hex (65 bytes) is written only for
 * RAGD_DIGEST_DONE; PENDING while any file is; FAILED when one failed, or m was not given at create, or d NULL. */
typedef enum { RAGD_DIGEST_PENDING = 0, RAGD_DIGEST_DONE, RAGD_DIGEST_FAILED } ragd_digest_state;
ragd_digest_state ragd_model_digest_of(ragd_model_digests *d, const ragd_model *m, char hex[65]);
/* Stops the thread (within 4 MiB of hashing) and frees. NULL ok. */
void ragd_model_digests_free(ragd_model_digests *d);

/* Counts, for `ragd inspect` and the memory plan. */
size_t ragd_model_param_count(const ragd_model *m);
size_t ragd_model_weight_bytes(const ragd_model *m); /* as stored */
/* Every distinct present tensor view in the family descriptor's order (its global tensors — lm_head only
 * when untied and present —, then each layer's tensors), absent ones skipped. Writes at most cap pointers
 * into out (which may be NULL when cap is 0) and returns the total count. */
size_t ragd_model_tensor_list(const ragd_model *m, const ragd_tensor **out, size_t cap);

/* ---- the weight descriptor of a model family (family.c) ----------------------------------------- */

/* Symbolic dimensions: a shape is a function of the configuration. */
typedef enum {
    RAGD_DIM_NONE = 0, RAGD_DIM_E, RAGD_DIM_F, RAGD_DIM_V, RAGD_DIM_Q, RAGD_DIM_KV, RAGD_DIM_HD, RAGD_DIM_POS,
    RAGD_DIM_TYPES, RAGD_DIM_LABELS,
    RAGD_DIM_Q2,     /* 2 · n_head · head_dim: a gated q_proj (query and gate per head) */
    RAGD_DIM_LQKV,   /* Gated DeltaNet conv channels: 2 · n_kh · kd + n_vh · vd */
    RAGD_DIM_LV,     /* n_vh · vd */
    RAGD_DIM_LH,     /* n_vh */
    RAGD_DIM_LVD,    /* vd */
    RAGD_DIM_LCONV,  /* conv kernel */
} ragd_dim;

/* When a descriptor entry applies, and how absence is treated. */
enum {
    RAGD_WD_OPTIONAL = 1 << 0,  /* may be absent (lm_head: embedding checkpoints) */
    RAGD_WD_UNTIED = 1 << 1,    /* only without tie_word_embeddings (the lm_head) */
    RAGD_WD_QKV_BIAS = 1 << 2,  /* only with cfg.qkv_bias */
    RAGD_WD_QK_NORM = 1 << 3,   /* only with cfg.qk_norm */
    RAGD_WD_HEAD = 1 << 4,      /* required with a classification head (ragd_model_has_classifier), else
                                   loaded when present and unused (the BERT pooler of a BertModel) */
    RAGD_WD_NO_PREFIX = 1 << 5, /* a head tensor outside the base model: no "model." / "bert." prefix */
    RAGD_WD_ONLY_HEAD = 1 << 6, /* only with a classification head (not listed otherwise) */
    RAGD_WD_FULL = 1 << 7,      /* only in full-attention layers (hybrid configurations; every layer otherwise) */
    RAGD_WD_LINEAR = 1 << 8,    /* only in Gated DeltaNet layers (hybrid configurations only) */
    RAGD_WD_CONV = 1 << 9,      /* a depthwise conv weight [d0, 1, d1]: 3-D, kept as a row-major vector */
    RAGD_WD_PLUS_ONE = 1 << 10, /* a norm weight applied as (1 + w) (Qwen3.5's RMSNorm): backends add 1 */
};

typedef struct ragd_weight_desc {
    ragd_weight_role role;
    const char *hf;   /* Hugging Face name after the base prefix (+ the layer prefix for layer roles) */
    const char *gguf; /* GGUF name (after "blk.N." for layer roles); NULL: the family has no GGUF form */
    ragd_dim d0, d1;  /* PyTorch shape [d0] or [d0, d1] */
    unsigned when;    /* RAGD_WD_* */
} ragd_weight_desc;

/* One family: its global and per-layer tensors. Adding a family = a table here plus its config parse. */
typedef struct ragd_family {
    const char *name;              /* "decoder", "bert", "xlm-roberta" */
    const char *hf_prefixes[3];    /* base-model prefixes tried in order ("model.", ""), NULL-terminated */
    const char *hf_layer;          /* layer prefix before the layer number: "layers." → "layers.3." */
    const char *gguf_layer;        /* "blk." or NULL */
    const char *const *hf_ignored; /* names (after the prefix) in checkpoints that are not weights of the
                                      forward pass and are skipped without a warning; NULL-terminated */
    const char *const (*hf_aliases)[2]; /* {suffix, older spelling} tried when a name is absent
                                           (LayerNorm.weight / .gamma); ends with {NULL, NULL} */
    const ragd_weight_desc *global, *layer;
    size_t n_global, n_layer;
} ragd_family;

const ragd_family *ragd_family_of(ragd_arch a);

/* One weight a configuration calls for: its descriptor entry, its layer (-1 global), its view in the
 * model and its expected shape. */
typedef struct ragd_weight_slot {
    const ragd_weight_desc *d;
    const ragd_family *f;
    ragd_weight_role role;
    int layer;
    ragd_tensor *t;
    int n_dims;       /* 1, 2, or 3 (RAGD_WD_CONV: [d0, 1, d1]) */
    int64_t shape[3];
    bool required;
    bool matrix;      /* a 2-D weight: quantized dtypes allowed */
    bool plus_one;    /* RAGD_WD_PLUS_ONE: the forward pass uses 1 + w */
} ragd_weight_slot;

/* The slots m->cfg calls for, in descriptor order (globals, then layer by layer): entries whose
 * condition holds (qkv_bias, qk_norm, untied lm_head). m->family and m->layers must be set. Returns the
 * count; out may be NULL (count only). */
size_t ragd_model_weight_slots(const ragd_model *m, ragd_weight_slot *out);
#define RAGD_MAX_WEIGHT_SLOTS(n_layer) (RAGD_W_N_GLOBAL + RAGD_W_N_LAYER * (size_t)(n_layer))
/* The view of a role (layer ignored for global roles). */
const ragd_tensor *ragd_model_weight(const ragd_model *m, ragd_weight_role r, int layer);
/* Appends the slot's Hugging Face name without the base prefix ("layers.3.self_attn.k_proj.weight") or
 * its GGUF name ("blk.3.attn_k.weight"). */
void ragd_weight_hf_name(const ragd_weight_slot *s, ragd_buf *out);
void ragd_weight_gguf_name(const ragd_weight_slot *s, ragd_buf *out);
/* Whether the configuration has a sequence classification head (RAGD_HEAD_CLS or RAGD_HEAD_POOL_LINEAR). */
bool ragd_model_has_classifier(const ragd_model *m);
/* Whether the configuration is an encoder (bidirectional attention): pool / classify, never generate. */
bool ragd_model_is_encoder(const ragd_model *m);
/* The token mixer of layer l (RAGD_LAYER_FULL for every layer of a non-hybrid configuration). */
ragd_layer_kind ragd_model_layer_kind(const ragd_model_config *c, int l);

const char *ragd_tensor_kind_name(ragd_tensor_kind k); /* "embedding", "attention", "mlp", "norm", "lm_head" */
#define RAGD_DT_COUNT 7
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
 * F32, I64; any other → RAGD_EUNSUPPORTED naming tensor and dtype), a shape of ≤ 4 non-negative dims and
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
