/* fuzz_safetensors.c — libFuzzer target for the safetensors header parser: any byte string must give
 * RAGD_OK or an error with a message, never a crash, leak or out-of-bounds read; on OK every entry lies
 * inside the input and the entries tile the data section. */
#include <stdlib.h>

#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy of exactly `size` bytes so ASan sees any read past the end */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    ragd_st_file f = {0};
    ragd_err err = {0};
    ragd_status st = ragd_safetensors_parse(copy, size, "fuzz.safetensors", &f, &err);
    if (st == RAGD_OK) {
        for (size_t i = 0; i < f.n_entries; i++) {
            const ragd_st_entry *e = &f.entries[i];
            if (e->offset > size || e->nbytes > size - e->offset) abort();
            if (e->nbytes) {
                volatile uint8_t x = copy[e->offset] ^ copy[e->offset + e->nbytes - 1];
                (void)x;
            }
        }
    } else if (!err.msg) abort();
    ragd_safetensors_free(&f);
    ragd_err_free(&err);
    free(copy);
    return 0;
}
