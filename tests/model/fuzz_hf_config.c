/* fuzz_hf_config.c — libFuzzer target for config.json parsing (ragd_hf_config_parse): any bytes give OK
 * with a sane configuration or an error with a message; never a crash or leak. (A rotary model needs
 * rope_theta > 0; encoders with absolute positions have none.) */
#include <stdlib.h>

#include "model/model_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    ragd_model_config cfg;
    ragd_err err = {0};
    ragd_status st = ragd_hf_config_parse(copy, size, "config.json", &cfg, &err);
    if (st == RAGD_OK) {
        if (cfg.n_embd <= 0 || cfg.n_head <= 0 || cfg.n_head_kv <= 0 || cfg.n_head % cfg.n_head_kv ||
            cfg.head_dim <= 0 || cfg.n_layer <= 0 || cfg.n_vocab <= 0 || cfg.n_ff <= 0 || cfg.n_eos > 8 ||
            !(cfg.rms_eps > 0) || (cfg.pos == RAGD_POS_ROPE && !(cfg.rope_theta > 0)))
            abort();
    } else if (!err.msg)
        abort();
    ragd_err_free(&err);
    free(copy);
    return 0;
}
