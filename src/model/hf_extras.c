/* hf_extras.c — the optional files of a Hugging Face directory besides config.json and the weights:
 *   generation_config.json            eos_token_id (int or list), do_sample, temperature, top_p, top_k,
 *                                     min_p, repetition_penalty → m->gen, m->cfg.eos_ids
 *   modules.json                      sentence-transformers pipeline: Transformer, Pooling (its folder's
 *                                     config.json gives the mode), Normalize; any other module (Dense, …)
 *                                     changes the output and is RAGD_EUNSUPPORTED
 *   config_sentence_transformers.json prompts["query"] → m->query_prompt
 * A missing file is fine; a present but malformed one is an error naming it.
 */
#include <jansson.h>
#include <stdlib.h>

#include "model/model_internal.h"

/* Loads dir/name as JSON; *out NULL (and OK) when the file does not exist. */
static ragd_status load_json_opt(const char *dir, const char *name, json_t **out, ragd_err *err) {
    *out = NULL;
    char *path = ragd_path_join(dir, name);
    if (!ragd_file_exists(path)) {
        free(path);
        return RAGD_OK;
    }
    char *text;
    size_t len;
    ragd_status st = ragd_file_read(path, &text, &len, err);
    if (st == RAGD_OK) {
        json_error_t jerr;
        *out = json_loadb(text, len, 0, &jerr);
        if (!*out) st = ragd_err_set(err, RAGD_EFORMAT, "%s: not valid JSON: %s (line %d)", path, jerr.text, jerr.line);
        else if (!json_is_object(*out) && !json_is_array(*out)) {
            json_decref(*out);
            *out = NULL;
            st = ragd_err_set(err, RAGD_EFORMAT, "%s: not a JSON object or array", path);
        }
        free(text);
    }
    free(path);
    return st;
}

static ragd_status gen_num(json_t *g, const char *key, float *out, ragd_err *err) {
    json_t *v = json_object_get(g, key);
    if (!v || json_is_null(v)) return RAGD_OK;
    if (!json_is_number(v) || json_number_value(v) < 0)
        return ragd_err_set(err, RAGD_EFORMAT, "generation_config.json: \"%s\" must be a non-negative number", key);
    *out = (float)json_number_value(v);
    return RAGD_OK;
}

ragd_status ragd_hf_load_generation_config(const char *dir, ragd_model *m, ragd_err *err) {
    json_t *g;
    ragd_status st = load_json_opt(dir, "generation_config.json", &g, err);
    if (st != RAGD_OK || !g) return st;
    if (!json_is_object(g)) {
        st = ragd_err_set(err, RAGD_EFORMAT, "generation_config.json: not a JSON object");
        goto done;
    }
    if ((st = gen_num(g, "temperature", &m->gen.temperature, err)) != RAGD_OK ||
        (st = gen_num(g, "top_p", &m->gen.top_p, err)) != RAGD_OK ||
        (st = gen_num(g, "min_p", &m->gen.min_p, err)) != RAGD_OK ||
        (st = gen_num(g, "repetition_penalty", &m->gen.repetition_penalty, err)) != RAGD_OK)
        goto done;
    json_t *v = json_object_get(g, "top_k");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
            st = ragd_err_set(err, RAGD_EFORMAT, "generation_config.json: \"top_k\" must be a non-negative integer");
            goto done;
        }
        m->gen.top_k = (int)json_integer_value(v);
    }
    v = json_object_get(g, "do_sample");
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            st = ragd_err_set(err, RAGD_EFORMAT, "generation_config.json: \"do_sample\" must be true or false");
            goto done;
        }
        m->gen.do_sample = json_is_true(v);
    }
    v = json_object_get(g, "eos_token_id");
    if (v && !json_is_null(v)) {
        if (json_is_integer(v)) st = ragd_model_cfg_add_eos(&m->cfg, json_integer_value(v), "generation_config.json", err);
        else if (json_is_array(v)) {
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) {
                if (!json_is_integer(x)) {
                    st = ragd_err_set(err, RAGD_EFORMAT, "generation_config.json: \"eos_token_id\"[%zu] is not an integer", i);
                    break;
                }
                if ((st = ragd_model_cfg_add_eos(&m->cfg, json_integer_value(x), "generation_config.json", err)) != RAGD_OK)
                    break;
            }
        } else
            st = ragd_err_set(err, RAGD_EFORMAT,
                              "generation_config.json: \"eos_token_id\" must be an integer or a list of integers");
    }
done:
    json_decref(g);
    return st;
}

/* A module path from modules.json must stay inside the model folder. */
static bool safe_rel_path(const char *p) {
    if (p[0] == '/') return false;
    for (const char *s = p; *s; s++)
        if (s[0] == '.' && s[1] == '.' && (s == p || s[-1] == '/') && (s[2] == '/' || s[2] == 0)) return false;
    return true;
}

static ragd_status load_pooling(const char *dir, const char *rel, ragd_model *m, ragd_err *err) {
    char *sub = ragd_path_join(dir, rel);
    char *shown = ragd_path_join(rel, "config.json");
    json_t *pc;
    ragd_status st = load_json_opt(sub, "config.json", &pc, err);
    free(sub);
    if (st != RAGD_OK) goto done;
    if (!pc || !json_is_object(pc)) {
        st = ragd_err_set(err, pc ? RAGD_EFORMAT : RAGD_ENOTFOUND,
                          "%s: modules.json lists a Pooling module whose %s is %s", dir, shown,
                          pc ? "not a JSON object" : "missing");
        goto done;
    }
    static const struct {
        const char *key;
        int mode; /* ragd_pooling or -1 when unsupported */
    } modes[] = {{"pooling_mode_lasttoken", RAGD_POOL_LAST}, {"pooling_mode_mean_tokens", RAGD_POOL_MEAN},
                 {"pooling_mode_cls_token", RAGD_POOL_CLS},   {"pooling_mode_max_tokens", RAGD_POOL_MAX},
                 {"pooling_mode_mean_sqrt_len_tokens", -1},  {"pooling_mode_weightedmean_tokens", -1}};
    int n_on = 0, mode = -1;
    const char *on_key = NULL;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        json_t *v = json_object_get(pc, modes[i].key);
        if (v && !json_is_boolean(v) && !json_is_null(v)) {
            st = ragd_err_set(err, RAGD_EFORMAT, "%s: \"%s\" must be true or false", shown, modes[i].key);
            goto done;
        }
        if (json_is_true(v)) {
            n_on++;
            mode = modes[i].mode;
            on_key = modes[i].key;
        }
    }
    if (n_on != 1) {
        st = ragd_err_set(err, n_on ? RAGD_EUNSUPPORTED : RAGD_EFORMAT,
                          "%s: %d pooling modes are enabled (ragd supports exactly one of lasttoken, mean_tokens, "
                          "cls_token, max_tokens)",
                          shown, n_on);
        goto done;
    }
    if (mode < 0) {
        st = ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: %s is not supported (supported: lasttoken, mean_tokens, cls_token, max_tokens)",
                          shown, on_key);
        goto done;
    }
    m->has_st_pooling = true;
    m->pooling = (ragd_pooling)mode;
done:
    json_decref(pc);
    free(shown);
    return st;
}

ragd_status ragd_hf_load_st_files(const char *dir, ragd_model *m, ragd_err *err) {
    json_t *mods;
    ragd_status st = load_json_opt(dir, "modules.json", &mods, err);
    if (st != RAGD_OK) return st;
    if (mods) {
        if (!json_is_array(mods)) {
            json_decref(mods);
            return ragd_err_set(err, RAGD_EFORMAT, "modules.json: not a JSON array");
        }
        size_t i;
        json_t *mod;
        json_array_foreach(mods, i, mod) {
            json_t *jt = json_object_get(mod, "type"), *jp = json_object_get(mod, "path");
            if (!json_is_string(jt) || (jp && !json_is_string(jp))) {
                st = ragd_err_set(err, RAGD_EFORMAT, "modules.json: entry %zu needs a string \"type\" and \"path\"", i);
                break;
            }
            const char *type = json_string_value(jt), *path = jp ? json_string_value(jp) : "";
            const char *dot = strrchr(type, '.');
            const char *cls = dot ? dot + 1 : type;
            if (!strcmp(cls, "Transformer")) continue;
            if (!strcmp(cls, "Normalize")) {
                m->st_normalize = true;
                continue;
            }
            if (!strcmp(cls, "Pooling")) {
                if (!safe_rel_path(path)) {
                    st = ragd_err_set(err, RAGD_EFORMAT, "modules.json: module path '%s' leaves the model folder", path);
                    break;
                }
                if ((st = load_pooling(dir, path, m, err)) != RAGD_OK) break;
                continue;
            }
            st = ragd_err_set(err, RAGD_EUNSUPPORTED,
                              "modules.json: sentence-transformers module '%s' is not supported (supported: "
                              "Transformer, Pooling, Normalize)",
                              type);
            break;
        }
        json_decref(mods);
        if (st != RAGD_OK) return st;
    }
    json_t *cst;
    if ((st = load_json_opt(dir, "config_sentence_transformers.json", &cst, err)) != RAGD_OK || !cst) return st;
    json_t *prompts = json_object_get(cst, "prompts");
    if (prompts && !json_is_null(prompts)) {
        json_t *q = json_is_object(prompts) ? json_object_get(prompts, "query") : NULL;
        if (!json_is_object(prompts) || (q && !json_is_string(q)))
            st = ragd_err_set(err, RAGD_EFORMAT, "config_sentence_transformers.json: \"prompts\" must map names to strings");
        else if (q) {
            free(m->query_prompt);
            m->query_prompt = ragd_xstrdup(json_string_value(q));
        }
    }
    json_decref(cst);
    return st;
}
