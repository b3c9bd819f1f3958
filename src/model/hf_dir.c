/* hf_dir.c — loads a Hugging Face model directory.
 *
 * Order: config.json → weights (model.safetensors, or the shards that model.safetensors.index.json
 * names; each mmapped and its header parsed) → tensor views, looked up by the slot names of the
 * family descriptor (family.c) under the family's base prefix ("model.", "bert.", or none) → generation_config.json and sentence-transformers
 * files → tokenizer.json (+ tokenizer_config.json) → ragd_model_validate. Any failure frees the partial
 * model; the message names the file, the tensor, what was expected and what was found.
 *
 * Tying: with tie_word_embeddings the lm_head is a view of embed_tokens (a stored lm_head.weight is then
 * ignored, as transformers does). Untied and absent: lm_head.data = NULL (an embedding checkpoint; the
 * engine refuses generate/score). Tensors in the files that no slot uses are reported with one warning.
 */
#include <jansson.h>
#include <stdlib.h>

#include "model/model_internal.h"

typedef struct tensor_ref {
    const ragd_st_entry *e;
    size_t map; /* index into priv->maps */
    bool used;
} tensor_ref;

typedef struct hf_ctx {
    const char *dir;
    ragd_model *m;
    tensor_ref *refs; /* [n_refs] sorted by name */
    size_t n_refs;
    const char *prefix; /* "model." or "" */
    const char *where;  /* "model.safetensors" or "model.safetensors.index.json" for messages */
} hf_ctx;

static int cmp_ref_name(const void *a, const void *b) {
    const tensor_ref *x = a, *y = b;
    int r = strcmp(x->e->name, y->e->name);
    if (r) return r;
    return x->map < y->map ? -1 : x->map > y->map; /* deterministic order for duplicates */
}

static tensor_ref *find_ref(hf_ctx *c, const char *name) {
    size_t lo = 0, hi = c->n_refs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(c->refs[mid].e->name, name);
        if (!r) return &c->refs[mid];
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* Maps and parses one safetensors file of the directory. */
static ragd_status map_st(hf_ctx *c, const char *fname, size_t *index, ragd_err *err) {
    ragd_model_priv *p = c->m->priv;
    for (size_t i = 0; i < p->n_maps; i++)
        if (!strcmp(p->map_names[i], fname)) {
            *index = i;
            return RAGD_OK;
        }
    char *path = ragd_path_join(c->dir, fname);
    ragd_model_region r;
    ragd_status st = ragd_model_map_file(c->m, path, fname, &r, index, err);
    free(path);
    if (st != RAGD_OK) return st;
    return ragd_safetensors_parse(r.data, r.size, fname, &p->st[*index], err);
}

/* The shards of model.safetensors.index.json; checks that each tensor it maps is in its shard. */
static ragd_status load_index(hf_ctx *c, const char *path, ragd_err *err) {
    const char *iname = "model.safetensors.index.json";
    char *text;
    size_t len;
    ragd_status st = ragd_file_read(path, &text, &len, err);
    if (st != RAGD_OK) return st;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    free(text);
    if (!root) return ragd_err_set(err, RAGD_EFORMAT, "%s: not valid JSON: %s (line %d)", iname, jerr.text, jerr.line);
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm) || json_object_size(wm) == 0) {
        json_decref(root);
        return ragd_err_set(err, RAGD_EFORMAT, "%s: \"weight_map\" is missing or empty", iname);
    }
    const char *tname;
    json_t *v;
    json_object_foreach(wm, tname, v) {
        if (!json_is_string(v)) {
            st = ragd_err_set(err, RAGD_EFORMAT, "%s: weight_map['%s'] is not a file name", iname, tname);
            break;
        }
        const char *shard = json_string_value(v);
        if (!shard[0] || strchr(shard, '/') || !strcmp(shard, "..") || !strcmp(shard, ".")) {
            st = ragd_err_set(err, RAGD_EFORMAT, "%s: weight_map['%s'] = '%s' is not a plain file name in the folder",
                              iname, tname, shard);
            break;
        }
        size_t idx;
        char *spath = ragd_path_join(c->dir, shard);
        bool exists = ragd_file_exists(spath);
        free(spath);
        if (!exists) {
            st = ragd_err_set(err, RAGD_ENOTFOUND, "%s: shard '%s' (named for tensor '%s') does not exist in %s", iname,
                              shard, tname, c->dir);
            break;
        }
        if ((st = map_st(c, shard, &idx, err)) != RAGD_OK) break;
        const ragd_st_file *sf = &((ragd_model_priv *)c->m->priv)->st[idx];
        bool found = false;
        for (size_t i = 0; i < sf->n_entries && !found; i++) found = !strcmp(sf->entries[i].name, tname);
        if (!found) {
            st = ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s' is mapped to '%s', which does not contain it", iname,
                              tname, shard);
            break;
        }
    }
    json_decref(root);
    return st;
}

/* Builds the sorted name index over every mapped file; a name in two files is an error. */
static ragd_status build_refs(hf_ctx *c, ragd_err *err) {
    ragd_model_priv *p = c->m->priv;
    size_t n = 0;
    for (size_t i = 0; i < p->n_maps; i++) n += p->st[i].n_entries;
    c->refs = ragd_xcalloc(n ? n : 1, sizeof *c->refs);
    for (size_t i = 0; i < p->n_maps; i++)
        for (size_t k = 0; k < p->st[i].n_entries; k++) c->refs[c->n_refs++] = (tensor_ref){&p->st[i].entries[k], i, false};
    qsort(c->refs, c->n_refs, sizeof *c->refs, cmp_ref_name);
    for (size_t i = 1; i < c->n_refs; i++)
        if (!strcmp(c->refs[i].e->name, c->refs[i - 1].e->name))
            return ragd_err_set(err, RAGD_EFORMAT, "tensor '%s' appears in both %s and %s", c->refs[i].e->name,
                                p->map_names[c->refs[i - 1].map], p->map_names[c->refs[i].map]);
    return RAGD_OK;
}

static void fill_view(hf_ctx *c, tensor_ref *r, ragd_tensor *t) {
    ragd_model_priv *p = c->m->priv;
    r->used = true;
    t->name = r->e->name;
    t->data = p->maps[r->map].data + r->e->offset;
    t->dtype = r->e->dtype;
    t->n_dims = r->e->n_dims;
    memcpy(t->shape, r->e->shape, sizeof t->shape);
    t->nbytes = r->e->nbytes;
    t->file = p->map_names[r->map];
}

/* The family's base prefix ("model.", "bert.", ...): the first one under which its first global tensor
 * (the token embedding) exists. */
static ragd_status find_prefix(hf_ctx *c, ragd_err *err) {
    const ragd_family *f = c->m->family;
    const ragd_weight_desc *first = &f->global[0];
    ragd_buf name = {0}, tried = {0};
    for (int i = 0; f->hf_prefixes[i]; i++) {
        ragd_buf_reset(&name);
        ragd_buf_printf(&name, "%s%s", f->hf_prefixes[i], first->hf);
        if (find_ref(c, name.data)) {
            c->prefix = f->hf_prefixes[i];
            ragd_buf_free(&name);
            ragd_buf_free(&tried);
            return RAGD_OK;
        }
        ragd_buf_printf(&tried, i ? " (or '%s')" : "'%s'", name.data);
    }
    ragd_status st = ragd_err_set(err, RAGD_EFORMAT, "%s: tensor %s is missing (expected shape [%d, %d])", c->where,
                                  tried.data, c->m->cfg.n_vocab, c->m->cfg.n_embd);
    ragd_buf_free(&name);
    ragd_buf_free(&tried);
    return st;
}

/* Looks every slot up; a required slot that is absent is an error naming its full expected name. */
static ragd_status assign_slots(hf_ctx *c, ragd_err *err) {
    ragd_model *m = c->m;
    ragd_status st = find_prefix(c, err);
    if (st != RAGD_OK) return st;
    size_t n = ragd_model_weight_slots(m, NULL);
    ragd_weight_slot *slots = ragd_xmalloc(n * sizeof *slots);
    ragd_model_weight_slots(m, slots);
    ragd_buf name = {0}, shape = {0};
    for (size_t i = 0; i < n && st == RAGD_OK; i++) {
        ragd_buf_reset(&name);
        if (!(slots[i].d->when & RAGD_WD_NO_PREFIX)) ragd_buf_puts(&name, c->prefix);
        ragd_weight_hf_name(&slots[i], &name);
        tensor_ref *r = find_ref(c, name.data);
        for (const char *const(*al)[2] = m->family->hf_aliases; !r && al && (*al)[0]; al++) {
            size_t ls = strlen((*al)[0]);
            if (name.len < ls || strcmp(name.data + name.len - ls, (*al)[0])) continue;
            ragd_buf alt = {0};
            ragd_buf_printf(&alt, "%.*s%s", (int)(name.len - ls), name.data, (*al)[1]);
            r = find_ref(c, alt.data);
            ragd_buf_free(&alt);
        }
        if (r) fill_view(c, r, slots[i].t);
        else if (slots[i].required) {
            ragd_buf_reset(&shape);
            ragd_shape_str(slots[i].n_dims, slots[i].shape, &shape);
            st = ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s' is missing (expected shape %s)", c->where, name.data,
                              shape.data);
        }
    }
    free(slots);
    for (const char *const *ig = m->family->hf_ignored; ig && *ig && st == RAGD_OK; ig++) {
        ragd_buf_reset(&name);
        ragd_buf_printf(&name, "%s%s", c->prefix, *ig);
        tensor_ref *r = find_ref(c, name.data);
        if (r) r->used = true;
    }
    ragd_buf_free(&name);
    ragd_buf_free(&shape);
    if (st != RAGD_OK) return st;
    if (m->cfg.tie_embed) {
        m->lm_head = m->tok_embd;
        tensor_ref *r = find_ref(c, "lm_head.weight");
        if (r) r->used = true; /* stored but tied: transformers ignores it too */
    }
    size_t n_extra = 0;
    const tensor_ref *first = NULL;
    for (size_t i = 0; i < c->n_refs; i++)
        if (!c->refs[i].used) {
            if (!first) first = &c->refs[i];
            n_extra++;
        }
    if (n_extra)
        RAGD_WARN("model %s: %zu tensor(s) in the weights are not used by %s (first: '%s' in %s)", m->name, n_extra,
                  ragd_arch_name(m->cfg.arch), first->e->name, ((ragd_model_priv *)m->priv)->map_names[first->map]);
    return RAGD_OK;
}

static ragd_status load_config(const char *dir, ragd_model *m, ragd_err *err) {
    char *path = ragd_path_join(dir, "config.json");
    if (!ragd_file_exists(path)) {
        free(path);
        return ragd_err_set(err, RAGD_ENOTFOUND, "%s: no config.json (not a Hugging Face model folder)", dir);
    }
    char *text;
    size_t len;
    ragd_status st = ragd_file_read(path, &text, &len, err);
    free(path);
    if (st != RAGD_OK) return st;
    st = ragd_hf_config_parse(text, len, "config.json", &m->cfg, err);
    free(text);
    return st;
}

/* The tokenizer files of a folder: tokenizer.json, else (BERT models that ship only the slow
 * tokenizer's files) vocab.txt + tokenizer_config.json, converted as transformers does. */
static ragd_status open_tokenizer(const char *dir, ragd_tokenizer **out, ragd_err *err) {
    char *path = ragd_path_join(dir, "tokenizer.json"), *vocab = ragd_path_join(dir, "vocab.txt");
    ragd_status st;
    if (ragd_file_exists(path)) st = ragd_tokenizer_load_json(path, out, err);
    else if (ragd_file_exists(vocab)) st = ragd_tokenizer_load_bert_vocab(dir, out, err);
    else st = ragd_err_set(err, RAGD_ENOTFOUND, "%s: no tokenizer.json (nor vocab.txt)", dir);
    free(path);
    free(vocab);
    return st;
}

static ragd_status load_tokenizer(const char *dir, ragd_model *m, ragd_err *err) {
    ragd_status st = open_tokenizer(dir, &m->tok, err);
    if (st != RAGD_OK) return st;
    size_t nv = ragd_tokenizer_vocab_size(m->tok);
    if (nv > (size_t)m->cfg.n_vocab)
        return ragd_err_set(err, RAGD_EFORMAT,
                            "tokenizer.json: the tokenizer has %zu token ids but the embedding matrix only %d rows", nv,
                            m->cfg.n_vocab);
    int32_t eos = ragd_tokenizer_eos_id(m->tok);
    if (eos >= 0 && (st = ragd_model_cfg_add_eos(&m->cfg, eos, "tokenizer_config.json", err)) != RAGD_OK) return st;
    if (m->cfg.bos_id < 0) m->cfg.bos_id = ragd_tokenizer_bos_id(m->tok);
    return RAGD_OK;
}

static ragd_status load_dir(hf_ctx *c, ragd_err *err) {
    ragd_model *m = c->m;
    ragd_status st = load_config(c->dir, m, err);
    if (st != RAGD_OK || (st = ragd_model_set_family(m, err)) != RAGD_OK) return st;
    m->layers = ragd_xcalloc((size_t)m->cfg.n_layer, sizeof *m->layers);

    char *index = ragd_path_join(c->dir, "model.safetensors.index.json");
    char *single = ragd_path_join(c->dir, "model.safetensors");
    if (ragd_file_exists(index)) {
        c->where = "model.safetensors.index.json";
        st = load_index(c, index, err);
    } else if (ragd_file_exists(single)) {
        c->where = "model.safetensors";
        size_t idx;
        st = map_st(c, "model.safetensors", &idx, err);
    } else
        st = ragd_err_set(err, RAGD_ENOTFOUND, "%s: no model.safetensors or model.safetensors.index.json", c->dir);
    free(index);
    free(single);
    if (st != RAGD_OK) return st;

    if ((st = build_refs(c, err)) != RAGD_OK || (st = assign_slots(c, err)) != RAGD_OK ||
        (st = ragd_hf_load_generation_config(c->dir, m, err)) != RAGD_OK ||
        (st = ragd_hf_load_st_files(c->dir, m, err)) != RAGD_OK || (st = load_tokenizer(c->dir, m, err)) != RAGD_OK)
        return st;
    return ragd_model_validate(m, err);
}

ragd_status ragd_model_load_hf_dir(const char *dir, ragd_model **out, ragd_err *err) {
    *out = NULL;
    hf_ctx c = {.dir = dir, .m = ragd_model_new(dir), .where = "model.safetensors"};
    ragd_status st = load_dir(&c, err);
    free(c.refs);
    if (st != RAGD_OK) {
        if (err && err->msg && !strstr(err->msg, dir)) ragd_err_prefix(err, "model %s", dir);
        ragd_model_free(c.m);
        return st;
    }
    *out = c.m;
    return RAGD_OK;
}
