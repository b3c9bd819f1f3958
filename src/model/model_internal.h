/* model_internal.h — INTERNAL to src/model: what the format loaders share.
 * hf_dir.c loads Hugging Face directories, gguf_model.c loads GGUF files; both fill a ragd_model
 * and then call ragd_model_validate, which checks every tensor against the configuration. */
#ifndef RAGD_MODEL_INTERNAL_H
#define RAGD_MODEL_INTERNAL_H

#include "model/model.h"

/* Checks every tensor view of m against m->cfg (presence, shape, dtype); the message names the
 * tensor, the file, what was expected and what was found. */
ragd_status ragd_model_validate(const ragd_model *m, ragd_err *err);

ragd_status ragd_model_load_hf_dir(const char *dir, ragd_model **out, ragd_err *err); /* hf_dir.c */
ragd_status ragd_model_load_gguf(const char *path, ragd_model **out, ragd_err *err);  /* gguf_model.c */

#endif
