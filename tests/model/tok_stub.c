/* tok_stub.c — stand-ins for the tokenizer functions the model loader calls, so tests/model links before
 * the tokenizer module lands in main. tests/model/CMakeLists.txt leaves this file out as soon as
 * src/tokenizer/ has sources (never mix it with the real tokenizer). The stub
 * "tokenizer" only answers vocab size 283 (the tiny test tokenizer's), eos -1 and bos -1; it checks that tokenizer.json exists. */
#include <stdlib.h>

#include "tokenizer/tokenizer.h"

struct ragd_tokenizer {
    int dummy;
};

__attribute__((weak)) ragd_status ragd_tokenizer_load_json(const char *path, ragd_tokenizer **out, ragd_err *err) {
    *out = NULL;
    if (!ragd_file_exists(path)) return ragd_err_set(err, RAGD_ENOTFOUND, "%s: missing", path);
    *out = calloc(1, sizeof **out);
    return RAGD_OK;
}
__attribute__((weak)) void ragd_tokenizer_free(ragd_tokenizer *t) { free(t); }
__attribute__((weak)) size_t ragd_tokenizer_vocab_size(const ragd_tokenizer *t) { return 283; }
__attribute__((weak)) int32_t ragd_tokenizer_eos_id(const ragd_tokenizer *t) { return -1; }
__attribute__((weak)) int32_t ragd_tokenizer_bos_id(const ragd_tokenizer *t) { return -1; }
