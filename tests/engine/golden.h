/* golden.h — shared helpers of the engine/tasks golden tests: fixture paths, reference JSON, id arrays. */
#ifndef RAGD_TEST_GOLDEN_H
#define RAGD_TEST_GOLDEN_H

#include <jansson.h>
#include <stdlib.h>

#include "common/common.h"

static const char *const golden_models[] = {"qwen3-tiny",  "qwen3-embed-tiny", "qwen3-rerank-tiny",
                                            "smollm-tiny", "llama3-tiny",      "qwen2-tiny"};
#define N_GOLDEN_MODELS (int)(sizeof golden_models / sizeof golden_models[0])

static inline char *golden_path(const char *kind, const char *name, const char *suffix) {
    const char *src = getenv("RAGD_SRC");
    ragd_buf b = {0};
    ragd_buf_printf(&b, "%s/fixtures/%s/%s%s", src ? src : ".", kind, name, suffix);
    return b.data;
}

static inline json_t *golden_ref(const char *name) {
    char *p = golden_path("refs", name, ".json");
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    if (!j) {
        fprintf(stderr, "cannot read %s: %s\n", p, je.text);
        exit(2);
    }
    free(p);
    return j;
}

/* json array of ints → malloc'd int32 array */
static inline int32_t *golden_ids(json_t *a, int *n) {
    *n = (int)json_array_size(a);
    int32_t *v = malloc(sizeof(int32_t) * (size_t)(*n ? *n : 1));
    for (int i = 0; i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(a, (size_t)i));
    return v;
}

static inline float *golden_floats(json_t *a, int *n) {
    *n = (int)json_array_size(a);
    float *v = malloc(sizeof(float) * (size_t)(*n ? *n : 1));
    for (int i = 0; i < *n; i++) v[i] = (float)json_number_value(json_array_get(a, (size_t)i));
    return v;
}

#endif
