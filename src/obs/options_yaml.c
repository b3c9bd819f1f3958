/* options_yaml.c — `ragd serve --config FILE.yaml`: the option table's values from YAML (libyaml).
 *
 * The accepted YAML is one flat mapping of option names to scalars, optionally under a top-level `serve:`
 * key (then the only key at the top):
 *
 *     # comment
 *     serve:                       (optional)
 *       chat: /models/Qwen3-0.6B   (plain, 'single' or "double" quoted scalars)
 *       max-seqs: 64               (a key is an option's flag name; '_' and '-' are the same)
 *       gpu_memory: "8G"
 *
 * A scalar is taken as text and validated by the option's row exactly as a flag's value is (a boolean row
 * also takes YAML's True/TRUE/Yes/...). Every error names FILE:LINE (libyaml's marks) and the key: YAML
 * syntax, an unknown key, a key set twice, a value the row refuses, and what is not a flat option list —
 * sequences, nested mappings, anchors/aliases, tags, block scalars (| >), empty values, several documents,
 * `config` itself. The events are walked with a small state machine; nothing of the document is kept.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "obs/obs_internal.h"

/* where the walk is: at the top (before/after the document's node), in the top mapping expecting a key or
 * a value, in serve:'s mapping expecting a key or a value */
typedef enum { AT_STREAM, AT_TOP_KEY, AT_TOP_VAL, AT_SERVE_KEY, AT_SERVE_VAL, AT_DONE } walk_state;

static const char *event_what(yaml_event_type_t t) {
    switch (t) {
    case YAML_SEQUENCE_START_EVENT: return "a sequence (a list) is not an option value (give one value)";
    case YAML_MAPPING_START_EVENT: return "a nested mapping is not an option value (options are flat; only serve: may hold them)";
    case YAML_ALIAS_EVENT: return "aliases (*name) are not supported";
    default: return "unexpected YAML structure";
    }
}

/* Checks what a scalar may not have; NULL if it is fine, else why. */
static const char *scalar_problem(const yaml_event_t *ev) {
    if (ev->data.scalar.anchor) return "anchors (&name) are not supported";
    if (ev->data.scalar.tag) return "tags (!!type) are not supported";
    if (ev->data.scalar.style == YAML_LITERAL_SCALAR_STYLE || ev->data.scalar.style == YAML_FOLDED_SCALAR_STYLE)
        return "block scalars (| or >) are not option values";
    if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length)) return "the value contains a NUL character";
    return NULL;
}

/* The error for a non-scalar value of key: an unknown key is named as such first. */
static ragd_status bad_value(const char *path, long line, long key_line, const char *key, yaml_event_type_t t,
                             ragd_err *err) {
    if (!ragd_opt_find(key, strlen(key)))
        return ragd_err_set(err, RAGD_EINVAL, "%s:%ld: unknown option '%s' (see ragd serve --help)", path, key_line, key);
    return ragd_err_set(err, RAGD_EINVAL, "%s:%ld: %s: %s", path, line, ragd_opt_find(key, strlen(key))->name,
                        event_what(t));
}

/* Sets key (kept from the key event) = the value scalar. */
static ragd_status set_pair(ragd_serve_opts *o, const char *path, long line, const char *key, const yaml_event_t *ev,
                            bool *seen, ragd_err *err) {
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const ragd_opt_def *d = ragd_opt_find(key, strlen(key));
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (d && plain && (!n || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL")))
        return ragd_err_set(err, RAGD_EINVAL, "%s:%ld: %s: missing value (null)", path, line, d->name);
    char *val = ragd_xstrndup(v, n);
    if (d && d->type == RAGD_OPT_BOOL && plain)
        for (char *p = val; *p; p++) *p = (char)tolower((unsigned char)*p);
    ragd_status st = ragd_opt_set_from_file(o, path, line, key, strlen(key), val, seen, err);
    free(val);
    return st;
}

ragd_status ragd_opt_apply_yaml(const char *path, ragd_serve_opts *o, ragd_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ragd_err_set(err, RAGD_EINVAL, "--config %s: cannot open: %s", path, strerror(errno));
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        return ragd_err_set(err, RAGD_ENOMEM, "--config %s: cannot start the YAML parser", path);
    }
    yaml_parser_set_input_file(&parser, f);
    bool *seen = ragd_xcalloc(ragd_opt_count() + 1, sizeof *seen);
    char *key = NULL;     /* the key whose value comes next */
    long key_line = 0;
    bool in_serve = false, had_serve = false, had_key = false;
    int docs = 0;
    walk_state s = AT_STREAM;
    ragd_status st = RAGD_OK;
    while (!st) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            /* problem_mark: where it went wrong; context_mark: where the construct it was in began */
            long at = (long)parser.problem_mark.line + 1, from = (long)parser.context_mark.line + 1;
            if (parser.context && from != at)
                st = ragd_err_set(err, RAGD_EINVAL, "%s:%ld: YAML: %s %s (from line %ld)", path, at,
                                  parser.problem ? parser.problem : "syntax error", parser.context, from);
            else
                st = ragd_err_set(err, RAGD_EINVAL, "%s:%ld: YAML: %s%s%s", path, at,
                                  parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                                  parser.context ? parser.context : "");
            break;
        }
        long line = (long)ev.start_mark.line + 1;
        yaml_event_type_t t = ev.type;
        bool end = t == YAML_STREAM_END_EVENT;
        switch (t) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
        case YAML_STREAM_END_EVENT: break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) st = ragd_err_set(err, RAGD_EINVAL, "%s:%ld: one YAML document only (a second '---')", path, line);
            break;
        case YAML_MAPPING_START_EVENT:
            if (ev.data.mapping_start.anchor || ev.data.mapping_start.tag) {
                st = ragd_err_set(err, RAGD_EINVAL, "%s:%ld: anchors and tags are not supported", path, line);
            } else if (s == AT_STREAM) {
                s = AT_TOP_KEY;
            } else if (s == AT_TOP_VAL && !strcmp(key, "serve") && !had_key) {
                s = AT_SERVE_KEY;
                in_serve = had_serve = true;
            } else if (s == AT_TOP_VAL && !strcmp(key, "serve")) {
                st = ragd_err_set(err, RAGD_EINVAL, "%s:%ld: serve: must be the only top-level key (options go under it or at the top, not both)",
                                  path, line);
            } else if (s == AT_TOP_VAL || s == AT_SERVE_VAL) {
                st = bad_value(path, line, key_line, key, t, err);
            } else {
                st = ragd_err_set(err, RAGD_EINVAL, "%s:%ld: a mapping key must be an option name", path, line);
            }
            break;
        case YAML_MAPPING_END_EVENT:
            if (s == AT_SERVE_KEY) {
                s = AT_TOP_KEY;
                in_serve = false;
            } else {
                s = AT_DONE;
            }
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_ALIAS_EVENT:
            if (s == AT_TOP_VAL || s == AT_SERVE_VAL)
                st = bad_value(path, line, key_line, key, t, err);
            else if (s == AT_STREAM)
                st = ragd_err_set(err, RAGD_EINVAL, "%s:%ld: expected a mapping of option: value, not %s", path, line,
                                  t == YAML_ALIAS_EVENT ? "an alias" : "a sequence");
            else st = ragd_err_set(err, RAGD_EINVAL, "%s:%ld: %s", path, line, event_what(t));
            break;
        case YAML_SCALAR_EVENT: {
            const char *why = scalar_problem(&ev);
            if (s == AT_STREAM || s == AT_DONE) {
                st = ragd_err_set(err, RAGD_EINVAL, "%s:%ld: expected a mapping of option: value", path, line);
            } else if (s == AT_TOP_KEY || s == AT_SERVE_KEY) {
                if (why) {
                    st = ragd_err_set(err, RAGD_EINVAL, "%s:%ld: key: %s", path, line, why);
                } else if (had_serve && !in_serve) {
                    st = ragd_err_set(err, RAGD_EINVAL, "%s:%ld: serve: must be the only top-level key (options go under it or at the top, not both)",
                                      path, line);
                } else {
                    free(key);
                    key = ragd_xstrndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
                    key_line = line;
                    s = s == AT_TOP_KEY ? AT_TOP_VAL : AT_SERVE_VAL;
                }
            } else {
                if (why) {
                    st = ragd_err_set(err, RAGD_EINVAL, "%s:%ld: %s: %s", path, line, key, why);
                } else if (s == AT_TOP_VAL && !strcmp(key, "serve")) {
                    st = ragd_err_set(err, RAGD_EINVAL, "%s:%ld: serve: holds a mapping of option: value", path, key_line);
                } else {
                    st = set_pair(o, path, key_line, key, &ev, seen, err);
                    if (s == AT_TOP_VAL) had_key = true;
                    s = s == AT_TOP_VAL ? AT_TOP_KEY : AT_SERVE_KEY;
                }
            }
            break;
        }
        default: break;
        }
        yaml_event_delete(&ev);
        if (end) break;
    }
    if (!st && ferror(f)) st = ragd_err_set(err, RAGD_EINVAL, "--config %s: read error", path);
    free(key);
    free(seen);
    yaml_parser_delete(&parser);
    fclose(f);
    return st;
}
