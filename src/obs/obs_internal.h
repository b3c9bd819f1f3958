/* obs_internal.h — INTERNAL to src/obs: what the option table's files share. */
#ifndef RAGD_OBS_INTERNAL_H
#define RAGD_OBS_INTERNAL_H

#include "obs/obs.h"

/* The row of option `name` (len bytes; '_' matches '-'), or NULL. */
const ragd_opt_def *ragd_opt_find(const char *name, size_t len);
/* Sets one option from text, validated against its row; `src` names where the value came from. */
ragd_status ragd_opt_set(ragd_serve_opts *o, const ragd_opt_def *d, const char *v, const char *src, ragd_err *err);
/* Applies a config file (options_file.c): TOML or YAML by the name's extension (.toml, .yaml/.yml), else by
 * sniffing its first line; see ragd_serve_opts_parse. */
ragd_status ragd_opt_apply_file(const char *path, ragd_serve_opts *o, ragd_err *err);
/* Applies a YAML config file (options_yaml.c, libyaml). */
ragd_status ragd_opt_apply_yaml(const char *path, ragd_serve_opts *o, ragd_err *err);

/* What both file formats share: one `key = value` of FILE:LINE. Looks the key up (unknown → error), refuses
 * `config` and a key set twice (seen[]: one flag per table row, zeroed by the caller), then sets the value
 * through the row. Every error names path:line and the key. */
ragd_status ragd_opt_set_from_file(ragd_serve_opts *o, const char *path, long line, const char *key, size_t klen,
                                   const char *val, bool *seen, ragd_err *err);
/* Number of rows in the option table (for the seen[] flags). */
size_t ragd_opt_count(void);

#endif
