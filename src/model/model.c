/* model.c — the model object: creation, owned storage, load dispatch, free and counts.
 *
 * Invariant: everything a ragd_model points to is either inside m->priv (maps, owned heap blocks) or
 * the tokenizer, so ragd_model_free releases a half-built model as well as a finished one.
 */
#include <stdio.h>
#include <stdlib.h>

#include "model/model_internal.h"

/* ---------------------------------------------------------------------------------------------- */
/* creation and owned storage */

ragd_model *ragd_model_new(const char *path) {
    ragd_model *m = ragd_xcalloc(1, sizeof *m);
    m->priv = ragd_xcalloc(1, sizeof(ragd_model_priv));
    m->path = ragd_xstrdup(path);
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && path[start - 1] != '/') start--;
    size_t nlen = len - start;
    if (nlen > 5 && !memcmp(path + start + nlen - 5, ".gguf", 5)) nlen -= 5;
    m->name = ragd_xstrndup(path + start, nlen);
    m->cfg.bos_id = -1;
    m->gen = (ragd_gen_defaults){-1, -1, -1, -1, -1, -1};
    return m;
}

ragd_status ragd_model_map_file(ragd_model *m, const char *path, const char *display_name,
                                ragd_model_region *out, size_t *index, ragd_err *err) {
    ragd_model_priv *p = m->priv;
    ragd_mmap mm;
    ragd_status st = ragd_mmap_open(path, &mm, err);
    if (st != RAGD_OK) return st;
    if (p->n_maps == p->cap_maps) {
        p->cap_maps = p->cap_maps ? 2 * p->cap_maps : 4;
        p->maps = ragd_xrealloc(p->maps, p->cap_maps * sizeof *p->maps);
        p->map_names = ragd_xrealloc(p->map_names, p->cap_maps * sizeof *p->map_names);
        p->st = ragd_xrealloc(p->st, p->cap_maps * sizeof *p->st);
    }
    p->maps[p->n_maps] = mm;
    p->map_names[p->n_maps] = ragd_xstrdup(display_name);
    p->st[p->n_maps] = (ragd_st_file){0};
    if (out) *out = (ragd_model_region){mm.data, mm.size};
    if (index) *index = p->n_maps;
    p->n_maps++;
    return RAGD_OK;
}

void *ragd_model_own(ragd_model *m, void *ptr, size_t size) {
    ragd_model_priv *p = m->priv;
    if (p->n_owned == p->cap_owned) {
        p->cap_owned = p->cap_owned ? 2 * p->cap_owned : 16;
        p->owned = ragd_xrealloc(p->owned, p->cap_owned * sizeof *p->owned);
        p->owned_size = ragd_xrealloc(p->owned_size, p->cap_owned * sizeof *p->owned_size);
    }
    p->owned[p->n_owned] = ptr;
    p->owned_size[p->n_owned] = size;
    p->n_owned++;
    return ptr;
}

const char *ragd_model_own_str(ragd_model *m, const char *s) {
    size_t n = strlen(s) + 1;
    return ragd_model_own(m, ragd_xstrdup(s), n);
}

void ragd_model_free(ragd_model *m) {
    if (!m) return;
    ragd_model_priv *p = m->priv;
    if (p) {
        for (size_t i = 0; i < p->n_maps; i++) {
            ragd_mmap_close(&p->maps[i]);
            free(p->map_names[i]);
            ragd_safetensors_free(&p->st[i]);
        }
        free(p->maps);
        free(p->map_names);
        free(p->st);
        for (size_t i = 0; i < p->n_owned; i++) free(p->owned[i]);
        free(p->owned);
        free(p->owned_size);
        free(p);
    }
    ragd_tokenizer_free(m->tok);
    free(m->layers);
    free(m->query_prompt);
    free(m->path);
    free(m->name);
    free(m);
}

/* ---------------------------------------------------------------------------------------------- */
/* load dispatch */

static bool starts_with_gguf_magic(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    return got == 4 && !memcmp(magic, "GGUF", 4);
}

ragd_status ragd_model_load(const char *path, ragd_model **out, ragd_err *err) {
    *out = NULL;
    size_t len = strlen(path);
    if (ragd_dir_exists(path)) return ragd_model_load_hf_dir(path, out, err);
    if ((len > 5 && !strcmp(path + len - 5, ".gguf")) || starts_with_gguf_magic(path))
        return ragd_model_load_gguf(path, out, err);
    if (ragd_file_exists(path))
        return ragd_err_set(err, RAGD_EUNSUPPORTED,
                            "%s: not a model directory and not a GGUF file (pass the Hugging Face folder that holds "
                            "config.json, or a .gguf file)",
                            path);
    return ragd_err_set(err, RAGD_ENOTFOUND, "%s: no such model directory or file", path);
}

/* ---------------------------------------------------------------------------------------------- */
/* counts */

size_t ragd_model_tensor_list(const ragd_model *m, const ragd_tensor **out, size_t cap) {
    if (!m->family || !m->layers) return 0;
    size_t ns = ragd_model_weight_slots(m, NULL), n = 0;
    ragd_weight_slot *slots = ragd_xmalloc((ns ? ns : 1) * sizeof *slots);
    ragd_model_weight_slots(m, slots);
    for (size_t i = 0; i < ns; i++) {
        if (!slots[i].t->data) continue;
        if (n < cap) out[n] = slots[i].t;
        n++;
    }
    free(slots);
    return n;
}

static size_t sum_tensors(const ragd_model *m, bool bytes) {
    size_t n = ragd_model_tensor_list(m, NULL, 0), total = 0;
    const ragd_tensor **ts = ragd_xmalloc((n ? n : 1) * sizeof *ts);
    ragd_model_tensor_list(m, ts, n);
    for (size_t i = 0; i < n; i++) total += bytes ? ts[i]->nbytes : ragd_tensor_numel(ts[i]);
    free(ts);
    return total;
}

size_t ragd_model_param_count(const ragd_model *m) { return sum_tensors(m, false); }
size_t ragd_model_weight_bytes(const ragd_model *m) { return sum_tensors(m, true); }

const char *ragd_tensor_kind_name(ragd_tensor_kind k) {
    static const char *names[RAGD_KIND_COUNT] = {"embedding", "attention", "mlp", "norm", "lm_head"};
    return (unsigned)k < RAGD_KIND_COUNT ? names[k] : "?";
}

static void stats_add(ragd_model_stats *s, const ragd_tensor *t, ragd_tensor_kind k) {
    if (!t->data) return;
    size_t n = ragd_tensor_numel(t);
    s->n_tensors++;
    s->params += n;
    s->bytes += t->nbytes;
    s->tensors_by_kind[k]++;
    s->params_by_kind[k] += n;
    s->bytes_by_kind[k] += t->nbytes;
    RAGD_ASSERT((unsigned)t->dtype < RAGD_DT_COUNT);
    s->tensors_by_dtype[t->dtype]++;
    s->bytes_by_dtype[t->dtype] += t->nbytes;
}

void ragd_model_stats_get(const ragd_model *m, ragd_model_stats *out) {
    memset(out, 0, sizeof *out);
    if (!m->family || !m->layers) return;
    size_t ns = ragd_model_weight_slots(m, NULL);
    ragd_weight_slot *slots = ragd_xmalloc((ns ? ns : 1) * sizeof *slots);
    ragd_model_weight_slots(m, slots);
    for (size_t i = 0; i < ns; i++) stats_add(out, slots[i].t, ragd_weight_role_kind(slots[i].role));
    free(slots);
}
