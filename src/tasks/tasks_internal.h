/* tasks_internal.h — INTERNAL to src/tasks: what the CLI batch runners share. */
#ifndef RAGD_TASKS_INTERNAL_H
#define RAGD_TASKS_INTERNAL_H

#include "tasks/tasks.h"

/* Tokenizes item j (APPENDING to out). */
typedef ragd_status (*ragd_pack_prepare_fn)(void *ctx, int j, ragd_tok_ids *out, ragd_err *err);

/* Packs items first.. of n into one batch: as many as fit the engine's max_seqs and max_batch_tokens,
 * at least one. ids/starts ([max_seqs + 1]) are overwritten; *count gets the number packed. An item that
 * fails to tokenize or is longer than min(max_batch_tokens, max_ctx) fails the whole job: the message
 * names it as "<noun> <index>" and *failed (if not NULL) gets its index. */
ragd_status ragd_tasks_pack(const ragd_engine_opts *eo, int first, int n, const char *noun, ragd_pack_prepare_fn prep,
                            void *ctx, ragd_tok_ids *ids, int32_t *starts, int *count, int *failed, ragd_err *err);

#endif
