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

/* ---- weights ----
 * The slots of a configuration come from its family's descriptor (family.c: ragd_model_weight_slots in
 * model.h); loaders look each slot up by its file-format name, ragd_model_validate checks each slot's
 * view against its expected shape, so loading and validation can never disagree. */

/* Looks up the family of m->cfg.arch into m->family; RAGD_EINTERNAL when the arch has none. */
ragd_status ragd_model_set_family(ragd_model *m, ragd_err *err);
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
