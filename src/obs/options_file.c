/* options_file.c — `ragd serve --config FILE`: the option table's values from a file.
 *
 * Two formats, one table: YAML (`.yaml`/`.yml`, options_yaml.c) and TOML (`.toml`, this file); a file with
 * another name is sniffed from its first line. The TOML format is the part of TOML a flat option list needs, so a file that ragd accepts is valid TOML:
 *
 *     # comment
 *     [serve]                      (optional; any other table is refused)
 *     chat = "/models/Qwen3-0.6B"  (basic string: \" \\ \n \t \uXXXX escapes; or 'literal')
 *     max-seqs = 64                (integers, true/false: bare)
 *     gpu_memory = "8G"            (a key is an option's flag name; '_' and '-' are the same)
 *
 * Bare values are taken as text and validated by the option's row exactly as a flag's value is, so a
 * bare 0.9 works for --gpu-memory. Every error names FILE:LINE and the key: an unknown key, a key set
 * twice, a value the row refuses, arrays/inline tables/multi-line strings (not options), `config`
 * itself (no nesting). Precedence: default < file < environment < command line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/obs_internal.h"

enum { MAX_LINE = 8192 };

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t') p++;
    return p;
}
/* rest of the line after a value: blanks, then nothing or a comment */
static bool only_comment(const char *p) {
    p = skip_ws(p);
    return !*p || *p == '#' || *p == '\r' || *p == '\n';
}
static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Parses the value at p into out (cap bytes). Returns NULL on success, else what is wrong. */
static const char *parse_value(const char *p, char *out, size_t cap) {
    size_t n = 0;
    if (*p == '"') {
        if (!strncmp(p, "\"\"\"", 3)) return "multi-line strings are not supported";
        for (p++; *p != '"'; p++) {
            if (!*p || *p == '\n' || *p == '\r') return "unterminated string";
            char c = *p;
            if (c == '\\') {
                p++;
                switch (*p) {
                case '"': c = '"'; break;
                case '\\': c = '\\'; break;
                case 'n': c = '\n'; break;
                case 't': c = '\t'; break;
                case 'u': {
                    unsigned cp = 0;
                    for (int i = 1; i <= 4; i++) {
                        int h = hexval(p[i]);
                        if (h < 0) return "bad \\u escape (4 hex digits)";
                        cp = cp * 16 + (unsigned)h;
                    }
                    p += 4;
                    if (cp >= 0xD800 && cp <= 0xDFFF) return "bad \\u escape (a surrogate)";
                    char u[4];
                    size_t k = cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
                    if (k == 1) u[0] = (char)cp;
                    else if (k == 2) u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 63));
                    else u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 63)), u[2] = (char)(0x80 | (cp & 63));
                    if (n + k >= cap) return "value too long";
                    memcpy(out + n, u, k);
                    n += k;
                    continue;
                }
                default: return "unknown escape in string (\\\" \\\\ \\n \\t \\uXXXX)";
                }
            }
            if (n + 1 >= cap) return "value too long";
            out[n++] = c;
        }
        p++;
    } else if (*p == '\'') {
        if (!strncmp(p, "'''", 3)) return "multi-line strings are not supported";
        for (p++; *p != '\''; p++) {
            if (!*p || *p == '\n' || *p == '\r') return "unterminated string";
            if (n + 1 >= cap) return "value too long";
            out[n++] = *p;
        }
        p++;
    } else if (*p == '[' || *p == '{') {
        return "arrays and inline tables are not options (give one value)";
    } else {
        while (*p && *p != ' ' && *p != '\t' && *p != '#' && *p != '\r' && *p != '\n') {
            if (n + 1 >= cap) return "value too long";
            out[n++] = *p++;
        }
        if (!n) return "missing value";
    }
    out[n] = 0;
    return only_comment(p) ? NULL : "unexpected text after the value";
}

size_t ragd_opt_count(void) {
    size_t n = 0;
    for (const ragd_opt_def *d = ragd_serve_opt_table(); d->name; d++) n++;
    return n;
}

ragd_status ragd_opt_set_from_file(ragd_serve_opts *o, const char *path, long line, const char *key, size_t klen,
                                   const char *val, bool *seen, ragd_err *err) {
    const ragd_opt_def *d = ragd_opt_find(key, klen);
    if (!d)
        return ragd_err_set(err, RAGD_EINVAL, "%s:%ld: unknown option '%.*s' (see ragd serve --help)", path, line,
                            (int)klen, key);
    if (!strcmp(d->name, "config"))
        return ragd_err_set(err, RAGD_EINVAL, "%s:%ld: a config file cannot name another one", path, line);
    size_t row = (size_t)(d - ragd_serve_opt_table());
    if (seen[row]) return ragd_err_set(err, RAGD_EINVAL, "%s:%ld: '%s' is set twice in the file", path, line, d->name);
    seen[row] = true;
    char src[512];
    snprintf(src, sizeof src, "%s:%ld: %s", path, line, d->name);
    return ragd_opt_set(o, d, val, src, err);
}

/* "yaml" or "toml": by the extension, else by the first line that is not blank or a comment (a TOML table
 * header or an '=' before any ':' is TOML; '---', '%' or a ':' is YAML). */
static bool is_yaml(const char *path) {
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash)) {
        if (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml")) return true;
        if (!strcmp(dot, ".toml")) return false;
    }
    FILE *f = fopen(path, "r");
    if (!f) return false; /* the TOML reader reports it */
    char line[512];
    bool yaml = false;
    for (int ln = 1; fgets(line, sizeof line, f); ln++) {
        const char *p = skip_ws(line);
        if (ln == 1 && !strncmp(p, "\xEF\xBB\xBF", 3)) p = skip_ws(p + 3);
        if (only_comment(p)) continue;
        if (*p == '[') break;
        const char *eq = strchr(p, '='), *colon = strchr(p, ':');
        yaml = !strncmp(p, "---", 3) || *p == '%' || (colon && (!eq || colon < eq));
        break;
    }
    fclose(f);
    return yaml;
}

static ragd_status apply_toml(const char *path, ragd_serve_opts *o, ragd_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return ragd_err_set(err, RAGD_EINVAL, "--config %s: cannot open: %s", path, strerror(errno));
    bool *seen = ragd_xcalloc(ragd_opt_count() + 1, sizeof *seen);
    char *line = ragd_xmalloc(MAX_LINE), *val = ragd_xmalloc(MAX_LINE);
    ragd_status st = RAGD_OK;
    for (int ln = 1; fgets(line, MAX_LINE, f); ln++) {
        size_t len = strlen(line);
        if (len == MAX_LINE - 1 && line[len - 1] != '\n') {
            st = ragd_err_set(err, RAGD_EINVAL, "%s:%d: line longer than %d bytes", path, ln, MAX_LINE - 2);
            break;
        }
        const char *p = skip_ws(line);
        if (ln == 1 && !strncmp(p, "\xEF\xBB\xBF", 3)) p = skip_ws(p + 3); /* UTF-8 byte order mark */
        if (only_comment(p)) continue;
        if (*p == '[') {
            const char *q = skip_ws(p + 1);
            if (strncmp(q, "serve", 5) || *skip_ws(q + 5) != ']' || !only_comment(skip_ws(q + 5) + 1)) {
                st = ragd_err_set(err, RAGD_EINVAL, "%s:%d: only a [serve] table is allowed (options of ragd serve)", path, ln);
                break;
            }
            continue;
        }
        const char *k0 = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')
            p++;
        size_t klen = (size_t)(p - k0);
        p = skip_ws(p);
        if (!klen || *p != '=') {
            st = ragd_err_set(err, RAGD_EINVAL, "%s:%d: expected 'option = value'", path, ln);
            break;
        }
        const char *why = parse_value(skip_ws(p + 1), val, MAX_LINE);
        if (why) {
            const ragd_opt_def *d = ragd_opt_find(k0, klen);
            st = d ? ragd_err_set(err, RAGD_EINVAL, "%s:%d: %s: %s", path, ln, d->name, why)
                   : ragd_err_set(err, RAGD_EINVAL, "%s:%d: unknown option '%.*s' (see ragd serve --help)", path, ln,
                                  (int)klen, k0);
            break;
        }
        if ((st = ragd_opt_set_from_file(o, path, ln, k0, klen, val, seen, err))) break;
    }
    if (!st && ferror(f)) st = ragd_err_set(err, RAGD_EINVAL, "--config %s: read error", path);
    fclose(f);
    free(seen);
    free(line);
    free(val);
    return st;
}

ragd_status ragd_opt_apply_file(const char *path, ragd_serve_opts *o, ragd_err *err) {
    return is_yaml(path) ? ragd_opt_apply_yaml(path, o, err) : apply_toml(path, o, err);
}
