/* fuzz_gguf.c — libFuzzer target for the GGUF parser: any byte string must parse or fail with a
 * status, never crash, overread or leak; on success every getter is exercised on every key and every
 * tensor's bytes are touched (so ASan checks that the views lie inside the input). */
#include <stdlib.h>

#include "model/gguf.h"

static volatile uint8_t g_sink; /* reads land here so they are not optimized away */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* an exact-size heap copy, so that reads past the end are caught */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    ragd_gguf g;
    ragd_err err = {0};
    if (ragd_gguf_parse(copy, size, "fuzz.gguf", &g, &err) == RAGD_OK) {
        for (size_t i = 0; i < g.n_kv; i++) {
            const char *key = g.kvs[i].key;
            int64_t v;
            double f;
            bool b;
            const char *s;
            size_t n, *lens;
            const char **ptrs;
            int32_t *ia;
            char *dup;
            (void)ragd_gguf_get_int(&g, key, &v, &err);
            (void)ragd_gguf_get_float(&g, key, &f, &err);
            (void)ragd_gguf_get_bool(&g, key, &b, &err);
            if (ragd_gguf_get_str(&g, key, &s, &n, &err) == RAGD_OK) {
                for (size_t j = 0; j < n; j++) g_sink ^= (uint8_t)s[j];
            }
            if (ragd_gguf_get_strdup(&g, key, &dup, &err) == RAGD_OK) free(dup);
            if (ragd_gguf_get_str_array(&g, key, &ptrs, &lens, &n, &err) == RAGD_OK) {
                for (size_t j = 0; j < n; j++)
                    if (lens[j]) g_sink ^= (uint8_t)(ptrs[j][0] ^ ptrs[j][lens[j] - 1]);
                free(ptrs);
                free(lens);
            }
            if (ragd_gguf_get_i32_array(&g, key, &ia, &n, &err) == RAGD_OK) free(ia);
        }
        for (size_t i = 0; i < g.n_tensors; i++) {
            const ragd_gguf_tensor *t = &g.tensors[i];
            if (t->nbytes) g_sink ^= (uint8_t)(t->data[0] ^ t->data[t->nbytes - 1]);
            (void)ragd_gguf_find_tensor(&g, t->name);
        }
        ragd_gguf_free(&g);
    }
    ragd_err_free(&err);
    free(copy);
    return 0;
}
