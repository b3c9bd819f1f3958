/* pack.c — token-budget packing of a job's items into engine batches (the CLI's embed and rerank). */
#include "tasks/tasks_internal.h"

ragd_status ragd_tasks_pack(const ragd_engine_opts *eo, int first, int n, const char *noun, ragd_pack_prepare_fn prep,
                            void *ctx, ragd_tok_ids *ids, int32_t *starts, int *count, int *failed, ragd_err *err) {
    int limit = eo->max_batch_tokens < eo->max_ctx ? eo->max_batch_tokens : eo->max_ctx;
    ids->n = 0;
    starts[0] = 0;
    int cnt = 0;
    for (int j = first; j < n && cnt < eo->max_seqs; j++) {
        size_t before = ids->n;
        ragd_status st = prep(ctx, j, ids, err);
        if (st) {
            if (failed) *failed = j;
            return ragd_err_prefix(err, "%s %d", noun, j);
        }
        size_t nt = ids->n - before;
        if (nt > (size_t)limit) {
            if (failed) *failed = j;
            return ragd_err_set(err, RAGD_ERANGE, "%s %d: %zu tokens exceed the limit of %d tokens per %s", noun, j, nt,
                                limit, noun);
        }
        if (ids->n > (size_t)eo->max_batch_tokens) { /* does not fit: it starts the next batch */
            ids->n = before;
            break;
        }
        starts[++cnt] = (int32_t)ids->n;
    }
    RAGD_ASSERT(cnt >= 1); /* one item always fits: it is ≤ limit ≤ max_batch_tokens */
    *count = cnt;
    return RAGD_OK;
}
