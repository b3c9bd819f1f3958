/* tok_load_gguf.c — builds a tokenizer from the tokenizer.ggml.* pieces of a GGUF file (the GGUF
 * reader in src/model calls this with strings that point into the mapped file).
 *
 * The pre-tokenizer name selects what the matching tokenizer.json would hold:
 *   qwen2     → NFC; Split(Qwen2 regex, Isolated); ByteLevel(no prefix, no regex)
 *   llama-bpe → Split(Llama-3 regex, Isolated); ByteLevel(no prefix, no regex); ignore_merges
 *   smollm    → Digits(individual); ByteLevel(no prefix, GPT-2 regex)
 *   gpt2 / default / NULL → ByteLevel(no prefix, GPT-2 regex)
 * token_type 3 (control) → special added token; 4 (user-defined) → non-special added token, both
 * matched in the raw text. add_bos/add_eos → the post-processor prepends/appends bos/eos.
 */
#include <stdlib.h>

#include "tokenizer/tok_internal.h"

static ragd_status add_split(ragd_tokenizer *t, const char *re, ragd_err *err) {
    tok_pre *p = &t->pres[t->n_pres++];
    memset(p, 0, sizeof *p);
    p->kind = TOK_PRE_SPLIT;
    p->behavior = TOK_SPLIT_ISOLATED;
    return tok_pre_set_regex(t, p, re, strlen(re), err);
}

static ragd_status gguf_build(ragd_tokenizer *t, const ragd_tokenizer_gguf_parts *g, ragd_err *err) {
    if (!g->model || strcmp(g->model, "gpt2"))
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "GGUF tokenizer model '%s' is not supported (only gpt2 BPE)",
                            g->model ? g->model : "(none)");
    const char *pre = g->pre ? g->pre : "default";
    ragd_status st = RAGD_OK;
    if (!strcmp(pre, "qwen2")) {
        t->norms = ragd_xcalloc(1, sizeof *t->norms);
        t->norms[0].kind = TOK_NORM_NFC;
        t->n_norms = 1;
        st = add_split(t, TOK_RE_QWEN2, err);
        if (!st) st = tok_pre_add_bytelevel(t, false, false, err);
    } else if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3")) {
        st = add_split(t, TOK_RE_LLAMA3, err);
        if (!st) st = tok_pre_add_bytelevel(t, false, false, err);
        t->ignore_merges = true;
    } else if (!strcmp(pre, "smollm")) {
        tok_pre *p = &t->pres[t->n_pres++];
        memset(p, 0, sizeof *p);
        p->kind = TOK_PRE_SPLIT;
        p->match = TOK_MATCH_DIGIT;
        p->behavior = TOK_SPLIT_ISOLATED;
        st = tok_pre_add_bytelevel(t, false, true, err);
    } else if (!strcmp(pre, "gpt2") || !strcmp(pre, "default")) {
        st = tok_pre_add_bytelevel(t, false, true, err);
    } else {
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "GGUF pre-tokenizer '%s' is not supported", pre);
    }
    if (st) return st;
    t->decoder = TOK_DEC_BYTELEVEL;

    size_t n = g->n_tokens;
    const char **vs = ragd_xcalloc(n + 1, sizeof *vs);
    size_t *vl = ragd_xcalloc(n + 1, sizeof *vl);
    int32_t *vi = ragd_xcalloc(n + 1, sizeof *vi);
    size_t nv = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t ty = g->token_types ? g->token_types[i] : 1;
        if (ty == 3 || ty == 4) {
            tok_add_added(t, g->tokens[i], g->token_lens[i], (int32_t)i, ty == 3, false, false, false, false);
            continue;
        }
        vs[nv] = g->tokens[i]; vl[nv] = g->token_lens[i]; vi[nv] = (int32_t)i;
        nv++;
    }
    size_t nm = g->n_merges;
    const char **ma = ragd_xcalloc(nm + 1, sizeof *ma), **mb = ragd_xcalloc(nm + 1, sizeof *mb);
    size_t *mal = ragd_xcalloc(nm + 1, sizeof *mal), *mbl = ragd_xcalloc(nm + 1, sizeof *mbl);
    for (size_t i = 0; i < nm && !st; i++) {
        const char *s = g->merges[i];
        const char *sp = memchr(s, ' ', g->merge_lens[i]);
        if (!sp) { st = ragd_err_set(err, RAGD_EFORMAT, "GGUF merge %zu is not 'a b'", i); break; }
        ma[i] = s; mal[i] = (size_t)(sp - s);
        mb[i] = sp + 1; mbl[i] = g->merge_lens[i] - mal[i] - 1;
    }
    tok_builder bd = {.t = t, .n_vocab = nv, .vocab = vs, .vocab_len = vl, .vocab_id = vi,
                      .n_merges = nm, .merge_a = ma, .merge_b = mb, .merge_a_len = mal, .merge_b_len = mbl};
    if (!st) st = tok_build_finish(&bd, err);
    free(vs); free(vl); free(vi); free(ma); free(mb); free(mal); free(mbl);
    if (st) return st;

    int32_t ids[3] = {g->bos_id, g->eos_id, g->pad_id};
    for (int k = 0; k < 3; k++)
        if (ids[k] >= 0 && ((size_t)ids[k] >= t->n_ids || !(t->flags[ids[k]] & TOK_F_PRESENT)))
            return ragd_err_set(err, RAGD_EFORMAT, "GGUF special token id %d is outside the vocabulary", ids[k]);
    t->bos_id = g->bos_id; t->eos_id = g->eos_id; t->pad_id = g->pad_id;
    if (g->chat_template) t->chat_template = ragd_xstrdup(g->chat_template);
    if (g->chat_template_tool_use) t->chat_template_tool_use = ragd_xstrdup(g->chat_template_tool_use);
    bool bos = g->add_bos && t->bos_id >= 0, eos = g->add_eos && t->eos_id >= 0;
    if (bos || eos) {
        t->tpl = ragd_xcalloc(3, sizeof *t->tpl);
        if (bos) {
            t->tpl[t->n_tpl].ids = ragd_xmalloc(sizeof(int32_t));
            t->tpl[t->n_tpl].ids[0] = t->bos_id;
            t->tpl[t->n_tpl++].n_ids = 1;
        }
        t->tpl[t->n_tpl++].is_seq = true;
        if (eos) {
            t->tpl[t->n_tpl].ids = ragd_xmalloc(sizeof(int32_t));
            t->tpl[t->n_tpl].ids[0] = t->eos_id;
            t->tpl[t->n_tpl++].n_ids = 1;
        }
    }
    return RAGD_OK;
}

ragd_status ragd_tokenizer_load_gguf_parts(const ragd_tokenizer_gguf_parts *parts, ragd_tokenizer **out,
                                           ragd_err *err) {
    *out = NULL;
    ragd_tokenizer *t = tok_alloc();
    ragd_status st = gguf_build(t, parts, err);
    if (st) {
        ragd_tokenizer_free(t);
        return ragd_err_prefix(err, "GGUF tokenizer");
    }
    *out = t;
    return RAGD_OK;
}
