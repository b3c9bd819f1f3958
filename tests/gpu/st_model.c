/* st_model.c — see st_model.h. */
#include "st_model.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    ragd_mmap map;
} st_priv;

/* number after "key": in a flat JSON text; def when absent */
static double json_num(const char *js, const char *key, double def) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(js, pat);
    if (!p) return def;
    p = strchr(p + strlen(pat), ':');
    if (!p) return def;
    p++;
    while (*p == ' ') p++;
    if (!strncmp(p, "true", 4)) return 1;
    if (!strncmp(p, "false", 5)) return 0;
    if (!strncmp(p, "null", 4)) return def;
    return strtod(p, NULL);
}

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == ',') p++;
    return p;
}
static const char *read_str(const char *p, char *out, size_t cap) { /* p at '"' */
    size_t n = 0;
    p++;
    while (*p && *p != '"') {
        if (*p == '\\') p++;
        if (n + 1 < cap) out[n++] = *p;
        p++;
    }
    out[n] = 0;
    return *p ? p + 1 : p;
}

static ragd_tensor *slot_for(ragd_model *m, const char *name) {
    if (!strncmp(name, "model.", 6)) name += 6;
    if (!strcmp(name, "embed_tokens.weight")) return &m->tok_embd;
    if (!strcmp(name, "norm.weight")) return &m->out_norm;
    if (!strcmp(name, "lm_head.weight")) return &m->lm_head;
    int l;
    char rest[128];
    if (sscanf(name, "layers.%d.%127s", &l, rest) != 2 || l < 0 || l >= m->cfg.n_layer) return NULL;
    ragd_layer_weights *w = &m->layers[l];
    static const struct { const char *n; size_t off; } map[] = {
        {"input_layernorm.weight", offsetof(ragd_layer_weights, attn_norm)},
        {"self_attn.q_proj.weight", offsetof(ragd_layer_weights, wq)},
        {"self_attn.k_proj.weight", offsetof(ragd_layer_weights, wk)},
        {"self_attn.v_proj.weight", offsetof(ragd_layer_weights, wv)},
        {"self_attn.q_proj.bias", offsetof(ragd_layer_weights, bq)},
        {"self_attn.k_proj.bias", offsetof(ragd_layer_weights, bk)},
        {"self_attn.v_proj.bias", offsetof(ragd_layer_weights, bv)},
        {"self_attn.o_proj.weight", offsetof(ragd_layer_weights, wo)},
        {"self_attn.q_norm.weight", offsetof(ragd_layer_weights, q_norm)},
        {"self_attn.k_norm.weight", offsetof(ragd_layer_weights, k_norm)},
        {"post_attention_layernorm.weight", offsetof(ragd_layer_weights, ffn_norm)},
        {"mlp.gate_proj.weight", offsetof(ragd_layer_weights, w_gate)},
        {"mlp.up_proj.weight", offsetof(ragd_layer_weights, w_up)},
        {"mlp.down_proj.weight", offsetof(ragd_layer_weights, w_down)},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(rest, map[i].n)) return (ragd_tensor *)((char *)w + map[i].off);
    return NULL;
}

ragd_model *st_model_load(const char *dir) {
    ragd_err err = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *js = NULL;
    size_t jl = 0;
    if (ragd_file_read(path, &js, &jl, &err)) {
        fprintf(stderr, "st_model: %s\n", ragd_err_msg(&err));
        return NULL;
    }
    ragd_model *m = ragd_xcalloc(1, sizeof *m);
    ragd_model_config *c = &m->cfg;
    c->arch = strstr(js, "Qwen3ForCausalLM") ? RAGD_ARCH_QWEN3 : strstr(js, "Qwen2") ? RAGD_ARCH_QWEN2 : RAGD_ARCH_LLAMA;
    c->n_vocab = (int)json_num(js, "vocab_size", 0);
    c->n_embd = (int)json_num(js, "hidden_size", 0);
    c->n_ff = (int)json_num(js, "intermediate_size", 0);
    c->n_layer = (int)json_num(js, "num_hidden_layers", 0);
    c->n_head = (int)json_num(js, "num_attention_heads", 0);
    c->n_head_kv = (int)json_num(js, "num_key_value_heads", c->n_head);
    c->head_dim = (int)json_num(js, "head_dim", c->n_head ? c->n_embd / c->n_head : 0);
    c->rms_eps = (float)json_num(js, "rms_norm_eps", 1e-6);
    c->rope_theta = (float)json_num(js, "rope_theta", 10000);
    c->max_pos = (int)json_num(js, "max_position_embeddings", 32768);
    c->tie_embed = json_num(js, "tie_word_embeddings", 0) != 0;
    c->qk_norm = c->arch == RAGD_ARCH_QWEN3;
    c->qkv_bias = c->arch == RAGD_ARCH_QWEN2;
    free(js);
    m->family = ragd_family_of(c->arch); /* the backends walk the descriptor's slots */
    m->layers = ragd_xcalloc((size_t)c->n_layer, sizeof *m->layers);

    st_priv *pv = ragd_xcalloc(1, sizeof *pv);
    m->priv = pv;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (ragd_mmap_open(path, &pv->map, &err)) {
        fprintf(stderr, "st_model: %s\n", ragd_err_msg(&err));
        st_model_free(m);
        return NULL;
    }
    const uint8_t *d = pv->map.data;
    uint64_t hl;
    memcpy(&hl, d, 8);
    char *h = ragd_xstrndup((const char *)d + 8, (size_t)hl);
    const uint8_t *base = d + 8 + hl;
    const char *p = skip_ws(h);
    if (*p == '{') p++;
    int n_t = 0;
    for (;;) {
        p = skip_ws(p);
        if (*p != '"') break;
        char name[256];
        p = read_str(p, name, sizeof name);
        p = skip_ws(p);
        if (*p == ':') p++;
        p = skip_ws(p);
        if (*p != '{') break;
        p++;
        char dtype[16] = "";
        int64_t shape[4] = {0};
        int nd = 0;
        long long off0 = 0, off1 = 0;
        for (;;) {
            p = skip_ws(p);
            if (*p == '}') {
                p++;
                break;
            }
            char k[64];
            p = read_str(p, k, sizeof k);
            p = skip_ws(p);
            if (*p == ':') p++;
            p = skip_ws(p);
            if (*p == '"') {
                char v[256];
                p = read_str(p, v, sizeof v);
                if (!strcmp(k, "dtype")) snprintf(dtype, sizeof dtype, "%.15s", v);
            } else if (*p == '[') {
                p++;
                long long vals[4];
                int nv = 0;
                while (*p && *p != ']') {
                    p = skip_ws(p);
                    if (*p == ']') break;
                    char *e;
                    long long v = strtoll(p, &e, 10);
                    if (nv < 4) vals[nv++] = v;
                    p = e;
                }
                p++;
                if (!strcmp(k, "shape")) {
                    nd = nv;
                    for (int i = 0; i < nv; i++) shape[i] = vals[i];
                } else if (!strcmp(k, "data_offsets") && nv == 2) {
                    off0 = vals[0], off1 = vals[1];
                }
            }
        }
        if (!strcmp(name, "__metadata__")) continue;
        ragd_tensor *t = slot_for(m, name);
        if (!t) {
            fprintf(stderr, "st_model: unknown tensor %s (ignored)\n", name);
            continue;
        }
        t->name = ragd_xstrdup(name);
        t->data = base + off0;
        t->nbytes = (size_t)(off1 - off0);
        t->n_dims = nd;
        memcpy(t->shape, shape, sizeof shape);
        t->dtype = !strcmp(dtype, "BF16") ? RAGD_DT_BF16 : !strcmp(dtype, "F16") ? RAGD_DT_F16 : RAGD_DT_F32;
        n_t++;
    }
    free(h);
    if (!m->tok_embd.data || !m->out_norm.data) {
        fprintf(stderr, "st_model: %s lacks embed_tokens or norm\n", path);
        st_model_free(m);
        return NULL;
    }
    if (c->tie_embed && !m->lm_head.data) m->lm_head = m->tok_embd;
    fprintf(stderr, "st_model: %s: %d tensors, %d layers, E %d, F %d, heads %d/%d x %d, vocab %d\n", dir, n_t,
            c->n_layer, c->n_embd, c->n_ff, c->n_head, c->n_head_kv, c->head_dim, c->n_vocab);
    return m;
}

void st_model_free(ragd_model *m) {
    if (!m) return;
    st_priv *pv = m->priv;
    if (pv) ragd_mmap_close(&pv->map);
    free(pv);
    if (m->layers) {
        for (int l = 0; l < m->cfg.n_layer; l++) {
            ragd_tensor *ts = (ragd_tensor *)&m->layers[l];
            for (size_t i = 0; i < sizeof(ragd_layer_weights) / sizeof(ragd_tensor); i++) free((char *)ts[i].name);
        }
        free(m->layers);
    }
    if (m->lm_head.name != m->tok_embd.name) free((char *)m->lm_head.name);
    free((char *)m->tok_embd.name);
    free((char *)m->out_norm.name);
    free(m);
}
/* (ragd_dtype_name and ragd_tensor_to_f32 come from src/model/tensor.c, linked into gpu_glue.) */

void *st_read_file(const char *dir, const char *name, size_t *n) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", p);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc((size_t)sz + 1);
    if (!b || fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        fprintf(stderr, "cannot read %s\n", p);
        exit(2);
    }
    fclose(f);
    ((char *)b)[sz] = 0;  // text files may be used as strings
    *n = (size_t)sz;
    return b;
}
