/* gguf_missing.c — a WEAK fallback for ragd_model_load_gguf so that the model module links before the
 * GGUF loader exists. The GGUF loader's strong definition (src/model/gguf*.c) overrides this one at link
 * time without a conflict; until then a .gguf path fails loudly with RAGD_EUNSUPPORTED. */
#include "model/model_internal.h"

__attribute__((weak)) ragd_status ragd_model_load_gguf(const char *path, ragd_model **out, ragd_err *err) {
    *out = NULL;
    return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: GGUF support is not built", path);
}
