/* st_model.h — GPU-test helper: loads a Hugging Face Qwen3/Llama directory written by make_model.py
 * (config.json + one model.safetensors) into a ragd_model WITHOUT the model module, so the GPU tests
 * link only common + the CUDA backend (the device machine lacks ragd's Debian libraries).
 * Minimal parsers for trusted, generated files — not the production loader. */
#ifndef RAGD_TEST_ST_MODEL_H
#define RAGD_TEST_ST_MODEL_H
#include "model/model.h"

/* Returns NULL and prints the reason on failure. */
ragd_model *st_model_load(const char *dir);
void st_model_free(ragd_model *m);
/* Reads dir/name whole (heap, caller frees; NUL-terminated after *n bytes); exits with a message when it cannot. */
void *st_read_file(const char *dir, const char *name, size_t *n);

#endif
