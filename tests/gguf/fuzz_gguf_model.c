/* fuzz_gguf_model.c — libFuzzer target for the whole GGUF loader: parse, configuration, tensor views,
 * Q/K un-permutation, the embedded tokenizer (hostile token and merge strings reach the tokenizer
 * builder) and validation. Any input must load or fail with a status; a loaded model must encode and
 * decode a string. The input is served as a file through a memfd (ragd_model_load takes a path). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool init;
    if (!init) {
        ragd_log_set_level(RAGD_LOG_ERROR);
        init = true;
    }
    int fd = memfd_create("fuzz.gguf", 0);
    if (fd < 0) return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ragd_model *m = NULL;
    ragd_err err = {0};
    if (ragd_model_load(path, &m, &err) == RAGD_OK) {
        ragd_tok_ids ids = {0};
        ragd_buf out = {0};
        const char text[] = "Hello world 123 <|im_end|>";
        if (ragd_tokenizer_encode(m->tok, text, sizeof text - 1, true, &ids, &err) == RAGD_OK)
            (void)ragd_tokenizer_decode(m->tok, ids.ids, ids.n, false, &out, &err);
        ragd_tok_ids_free(&ids);
        ragd_buf_free(&out);
        (void)ragd_model_param_count(m);
        ragd_model_free(m);
    }
    ragd_err_free(&err);
    close(fd);
    return 0;
}
