/* model_internal.h — INTERNAL to src/model: what the format loaders share.
 *
 * hf_dir.c loads Hugging Face directories, gguf*.c load GGUF files; both build a ragd_model with
 * ragd_model_new, register what they map or allocate with ragd_model_map_file / ragd_model_own (so that
 * ragd_model_free releases everything, also after a failed load), fill the tensor views and then call
 * ragd_model_validate, which checks every tensor against the configuration and checks that every view
 * lies inside storage the model owns.
 */
#ifndef RAGD_MODEL_INTERNAL_H
#define RAGD_MODEL_INTERNAL_H

#include "model/model.h"

/* Ownership: m->path, m->name, m->layers and m->query_prompt are plain heap blocks (malloc) and m->tok
 * a tokenizer, all freed by ragd_model_free; everything else goes through the registries below.
 *
 * Storage behind m->priv. Every tensor view points into one of these regions. */
typedef struct ragd_model_region {
    const uint8_t *data;
    size_t size;
} ragd_model_region;

typedef struct ragd_model_priv {
    ragd_mmap *maps;     /* [n_maps] mapped weight files */
    char **map_names;    /* [n_maps] file names without folder (tensor.file points here) */
    ragd_st_file *st;    /* [n_maps] parsed safetensors headers (zeroed for other formats) */
    size_t n_maps, cap_maps;
    void **owned;        /* [n_owned] heap blocks freed with the model */
    size_t *owned_size;  /* [n_owned] their sizes (for the region check) */
    size_t n_owned, cap_owned;
} ragd_model_priv;

/* A zeroed model with priv allocated, path = a copy of `path`, name = its last path component
 * (trailing '/' ignored; a ".gguf" extension removed), bos_id -1, gen defaults -1. */
ragd_model *ragd_model_new(const char *path);

/* Maps `path` read-only and registers the mapping; *out (may be NULL) receives the region; *index (may be
 * NULL) the mapping's index in priv->maps. display_name is what messages and tensor.file show. */
ragd_status ragd_model_map_file(ragd_model *m, const char *path, const char *display_name,
                                ragd_model_region *out, size_t *index, ragd_err *err);

/* Registers a heap block (from malloc) that the model frees; returns p. size is its length in bytes,
 * used to check that tensor views lie inside owned storage. */
void *ragd_model_own(ragd_model *m, void *p, size_t size);
/* A copy of s owned by the model. */
const char *ragd_model_own_str(ragd_model *m, const char *s);

/* ---- the weight slots a configuration calls for (validate.c) ----
 * One list drives both loading (the loader looks each slot up by its file-format name) and validation
 * (each slot's view is checked against its expected shape), so the two can never disagree. */
typedef enum {
    RAGD_W_TOK_EMBD = 0, RAGD_W_OUT_NORM, RAGD_W_LM_HEAD,
    RAGD_W_ATTN_NORM, RAGD_W_Q, RAGD_W_K, RAGD_W_V, RAGD_W_BQ, RAGD_W_BK, RAGD_W_BV, RAGD_W_O,
    RAGD_W_Q_NORM, RAGD_W_K_NORM, RAGD_W_FFN_NORM, RAGD_W_GATE, RAGD_W_UP, RAGD_W_DOWN,
} ragd_weight_role;

typedef struct ragd_weight_slot {
    ragd_weight_role role;
    int layer;          /* -1 for the global tensors */
    ragd_tensor *t;     /* the view in the model this slot fills */
    int n_dims;         /* 1 or 2 */
    int64_t shape[2];   /* expected PyTorch shape */
    bool required;      /* false only for lm_head (absent in embedding checkpoints) */
    bool matrix;        /* a 2-D weight: quantized dtypes allowed */
} ragd_weight_slot;

/* Max slots for n_layer layers. */
#define RAGD_MAX_WEIGHT_SLOTS(n_layer) (3 + 14 * (size_t)(n_layer))
/* Fills out[] (room for RAGD_MAX_WEIGHT_SLOTS(cfg.n_layer)) with the slots m->cfg calls for: per arch
 * (q_norm/k_norm only Qwen3, biases only Qwen2) and lm_head only when not tied. m->layers must be
 * allocated. Returns the count. */
size_t ragd_model_weight_slots(ragd_model *m, ragd_weight_slot *out);
/* Appends the slot's Hugging Face name without the "model." prefix ("layers.3.self_attn.k_proj.weight",
 * "lm_head.weight") or its GGUF name ("blk.3.attn_k.weight", "output.weight"). */
void ragd_weight_hf_name(const ragd_weight_slot *s, ragd_buf *out);
void ragd_weight_gguf_name(const ragd_weight_slot *s, ragd_buf *out);
/* Appends "[a, b]" for a shape. */
void ragd_shape_str(int n_dims, const int64_t *shape, ragd_buf *out);

/* Checks every tensor view of m against m->cfg (presence, shape, dtype, byte size, inside the model's
 * storage); the message names the file, the tensor, what was expected and what was found. Warns (does not
 * fail) for nothing: unexpected extra tensors are the loaders' business. */
ragd_status ragd_model_validate(const ragd_model *m, ragd_err *err);

/* hf_config.c: parses config.json text into *cfg (eos ids from the config only; n_vocab from vocab_size).
 * fname is used in messages. Unknown architecture → RAGD_EUNSUPPORTED naming it. */
ragd_status ragd_hf_config_parse(const char *text, size_t len, const char *fname, ragd_model_config *cfg,
                                 ragd_err *err);

/* hf_extras.c: generation_config.json and the sentence-transformers files of an HF directory (all
 * optional). Adds generation_config's eos ids to m->cfg. */
ragd_status ragd_hf_load_generation_config(const char *dir, ragd_model *m, ragd_err *err);
ragd_status ragd_hf_load_st_files(const char *dir, ragd_model *m, ragd_err *err);
/* Adds id to cfg->eos_ids unless present; more than 8 distinct ids → RAGD_EUNSUPPORTED. */
ragd_status ragd_model_cfg_add_eos(ragd_model_config *cfg, int64_t id, const char *from, ragd_err *err);

ragd_status ragd_model_load_hf_dir(const char *dir, ragd_model **out, ragd_err *err); /* hf_dir.c */
/* gguf_model.c */
ragd_status ragd_model_load_gguf(const char *path, ragd_model **out, ragd_err *err);

/* Bytes per element (float types) or per 32-element block (quantized types). */
size_t ragd_dtype_unit_bytes(ragd_dtype t);
bool ragd_dtype_is_quant(ragd_dtype t);

#endif
