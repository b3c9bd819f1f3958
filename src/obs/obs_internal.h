/* obs_internal.h — INTERNAL to src/obs: what the option table's files share. */
#ifndef RAGD_OBS_INTERNAL_H
#define RAGD_OBS_INTERNAL_H

#include "obs/obs.h"

/* The row of option `name` (len bytes; '_' matches '-'), or NULL. */
const ragd_opt_def *ragd_opt_find(const char *name, size_t len);
/* Sets one option from text, validated against its row; `src` names where the value came from. */
ragd_status ragd_opt_set(ragd_serve_opts *o, const ragd_opt_def *d, const char *v, const char *src, ragd_err *err);
/* Applies a config file (options_file.c): see ragd_serve_opts_parse. */
ragd_status ragd_opt_apply_file(const char *path, ragd_serve_opts *o, ragd_err *err);

#endif
