/* tok_load_json.c — reads a Hugging Face tokenizer.json (+ tokenizer_config.json beside it).
 *
 * Supported: model BPE; normalizers NFC/NFD/NFKC/NFKD/Lowercase/StripAccents/Replace(String)/Prepend/
 * Sequence; pre-tokenizers Split(Regex|String)/ByteLevel/Digits/Sequence; post-processors ByteLevel/
 * TemplateProcessing/BertProcessing/RobertaProcessing/Sequence; decoder ByteLevel (or none). Anything
 * else fails with RAGD_EUNSUPPORTED naming the component. `truncation`/`padding` are ignored: callers
 * truncate and pad themselves.
 *
 * Environment (tests only): RAGD_TOK_FORCE_PCRE2=1 compiles even the well-known split regexes with
 * PCRE2 instead of selecting the hand-written matchers.
 */
#include <stdlib.h>

#include <jansson.h>

#include "tokenizer/tok_internal.h"

static const char *jtype(json_t *o) {
    const char *s = json_string_value(json_object_get(o, "type"));
    return s ? s : "";
}

static bool jbool(json_t *o, const char *key, bool dflt) {
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* ---------------------------------------------------------------------------------------------- */
/* normalizers */

static ragd_status add_norm(ragd_tokenizer *t, json_t *o, ragd_err *err) {
    if (json_is_null(o) || !o) return RAGD_OK;
    const char *ty = jtype(o);
    if (!strcmp(ty, "Sequence")) {
        json_t *arr = json_object_get(o, "normalizers");
        if (!json_is_array(arr)) return ragd_err_set(err, RAGD_EFORMAT, "normalizer Sequence without 'normalizers'");
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e) {
            ragd_status st = add_norm(t, e, err);
            if (st) return st;
        }
        return RAGD_OK;
    }
    tok_norm nm = {0};
    if (!strcmp(ty, "NFC")) nm.kind = TOK_NORM_NFC;
    else if (!strcmp(ty, "NFD")) nm.kind = TOK_NORM_NFD;
    else if (!strcmp(ty, "NFKC")) nm.kind = TOK_NORM_NFKC;
    else if (!strcmp(ty, "NFKD")) nm.kind = TOK_NORM_NFKD;
    else if (!strcmp(ty, "Lowercase")) nm.kind = TOK_NORM_LOWERCASE;
    else if (!strcmp(ty, "StripAccents")) nm.kind = TOK_NORM_STRIP_ACCENTS;
    else if (!strcmp(ty, "Prepend")) {
        json_t *p = json_object_get(o, "prepend");
        if (!json_is_string(p)) return ragd_err_set(err, RAGD_EFORMAT, "normalizer Prepend without 'prepend'");
        nm.kind = TOK_NORM_PREPEND;
        nm.content = ragd_xstrndup(json_string_value(p), json_string_length(p));
        nm.content_len = json_string_length(p);
    } else if (!strcmp(ty, "Replace")) {
        json_t *pat = json_object_get(json_object_get(o, "pattern"), "String");
        json_t *c = json_object_get(o, "content");
        if (!json_is_string(pat))
            return ragd_err_set(err, RAGD_EUNSUPPORTED, "normalizer Replace with a Regex pattern is not supported");
        if (!json_is_string(c)) return ragd_err_set(err, RAGD_EFORMAT, "normalizer Replace without 'content'");
        nm.kind = TOK_NORM_REPLACE;
        nm.pattern = ragd_xstrndup(json_string_value(pat), json_string_length(pat));
        nm.pattern_len = json_string_length(pat);
        nm.content = ragd_xstrndup(json_string_value(c), json_string_length(c));
        nm.content_len = json_string_length(c);
    } else {
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "normalizer type '%s' is not supported", ty);
    }
    t->norms = ragd_xrealloc(t->norms, (t->n_norms + 1) * sizeof *t->norms);
    t->norms[t->n_norms++] = nm;
    return RAGD_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* pre-tokenizers */

static tok_pre *new_pre(ragd_tokenizer *t, ragd_err *err) {
    if (t->n_pres == TOK_MAX_PRE) {
        ragd_err_set(err, RAGD_EUNSUPPORTED, "more than %d pre-tokenizer steps", TOK_MAX_PRE);
        return NULL;
    }
    tok_pre *p = &t->pres[t->n_pres++];
    memset(p, 0, sizeof *p);
    return p;
}

ragd_status tok_pre_set_regex(ragd_tokenizer *t, tok_pre *p, const char *re, size_t len, ragd_err *err) {
    (void)t;
    bool force = getenv("RAGD_TOK_FORCE_PCRE2") != NULL;
    if (!force && len == strlen(TOK_RE_QWEN2) && !memcmp(re, TOK_RE_QWEN2, len)) p->match = TOK_MATCH_QWEN2;
    else if (!force && len == strlen(TOK_RE_LLAMA3) && !memcmp(re, TOK_RE_LLAMA3, len)) p->match = TOK_MATCH_LLAMA3;
    else if (!force && len == strlen(TOK_RE_GPT2) && !memcmp(re, TOK_RE_GPT2, len)) p->match = TOK_MATCH_GPT2;
    else return tok_pre_compile_regex(p, re, len, err);
    return RAGD_OK;
}

ragd_status tok_pre_add_bytelevel(ragd_tokenizer *t, bool add_prefix_space, bool use_regex, ragd_err *err) {
    if (add_prefix_space) {
        tok_pre *p = new_pre(t, err);
        if (!p) return err->code;
        p->kind = TOK_PRE_PREFIX_SPACE;
    }
    if (use_regex) {
        tok_pre *p = new_pre(t, err);
        if (!p) return err->code;
        p->kind = TOK_PRE_SPLIT;
        p->behavior = TOK_SPLIT_ISOLATED;
        ragd_status st = tok_pre_set_regex(t, p, TOK_RE_GPT2, strlen(TOK_RE_GPT2), err);
        if (st) return st;
    }
    t->byte_mode = true;
    return RAGD_OK;
}

static ragd_status add_pre(ragd_tokenizer *t, json_t *o, ragd_err *err) {
    if (json_is_null(o) || !o) return RAGD_OK;
    const char *ty = jtype(o);
    if (t->byte_mode)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "pre-tokenizer '%s' after ByteLevel is not supported", ty);
    if (!strcmp(ty, "Sequence")) {
        json_t *arr = json_object_get(o, "pretokenizers");
        if (!json_is_array(arr)) return ragd_err_set(err, RAGD_EFORMAT, "pre-tokenizer Sequence without 'pretokenizers'");
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e) {
            ragd_status st = add_pre(t, e, err);
            if (st) return st;
        }
        return RAGD_OK;
    }
    if (!strcmp(ty, "ByteLevel"))
        return tok_pre_add_bytelevel(t, jbool(o, "add_prefix_space", true), jbool(o, "use_regex", true), err);
    if (!strcmp(ty, "Digits")) {
        tok_pre *p = new_pre(t, err);
        if (!p) return err->code;
        p->kind = TOK_PRE_SPLIT;
        p->match = TOK_MATCH_DIGIT;
        p->behavior = jbool(o, "individual_digits", false) ? TOK_SPLIT_ISOLATED : TOK_SPLIT_CONTIGUOUS;
        return RAGD_OK;
    }
    if (!strcmp(ty, "Split")) {
        static const struct { const char *name; tok_split_behavior b; } behaviors[] = {
            {"Removed", TOK_SPLIT_REMOVED}, {"Isolated", TOK_SPLIT_ISOLATED},
            {"MergedWithPrevious", TOK_SPLIT_MERGED_WITH_PREVIOUS}, {"MergedWithNext", TOK_SPLIT_MERGED_WITH_NEXT},
            {"Contiguous", TOK_SPLIT_CONTIGUOUS},
        };
        const char *bh = json_string_value(json_object_get(o, "behavior"));
        int found = -1;
        for (int k = 0; bh && k < 5; k++)
            if (!strcmp(bh, behaviors[k].name)) found = k;
        if (found < 0)
            return ragd_err_set(err, RAGD_EUNSUPPORTED, "Split behavior '%s' is not supported", bh ? bh : "(missing)");
        tok_pre *p = new_pre(t, err);
        if (!p) return err->code;
        p->kind = TOK_PRE_SPLIT;
        p->behavior = behaviors[found].b;
        p->invert = jbool(o, "invert", false);
        json_t *pat = json_object_get(o, "pattern");
        json_t *rs = json_object_get(pat, "Regex"), *ss = json_object_get(pat, "String");
        if (json_is_string(rs)) return tok_pre_set_regex(t, p, json_string_value(rs), json_string_length(rs), err);
        if (json_is_string(ss)) {
            p->match = TOK_MATCH_STRING;
            p->str = ragd_xstrndup(json_string_value(ss), json_string_length(ss));
            p->str_len = json_string_length(ss);
            return RAGD_OK;
        }
        return ragd_err_set(err, RAGD_EFORMAT, "Split pre-tokenizer without a Regex or String pattern");
    }
    return ragd_err_set(err, RAGD_EUNSUPPORTED, "pre-tokenizer type '%s' is not supported", ty);
}

/* ---------------------------------------------------------------------------------------------- */
/* post-processors */

static void tpl_push(ragd_tokenizer *t, bool is_seq, const int32_t *ids, size_t n) {
    t->tpl = ragd_xrealloc(t->tpl, (t->n_tpl + 1) * sizeof *t->tpl);
    tok_tpl_item *it = &t->tpl[t->n_tpl++];
    it->is_seq = is_seq;
    it->n_ids = n;
    it->ids = n ? ragd_xmalloc(n * sizeof *ids) : NULL;
    if (n) memcpy(it->ids, ids, n * sizeof *ids);
}

static ragd_status add_post(ragd_tokenizer *t, json_t *o, ragd_err *err) {
    if (json_is_null(o) || !o) return RAGD_OK;
    const char *ty = jtype(o);
    if (!strcmp(ty, "ByteLevel")) return RAGD_OK; /* offsets only */
    if (!strcmp(ty, "Sequence")) {
        json_t *arr = json_object_get(o, "processors");
        if (!json_is_array(arr)) return ragd_err_set(err, RAGD_EFORMAT, "post-processor Sequence without 'processors'");
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e) {
            ragd_status st = add_post(t, e, err);
            if (st) return st;
        }
        return RAGD_OK;
    }
    if (t->tpl) return ragd_err_set(err, RAGD_EUNSUPPORTED, "two special-token post-processors in one Sequence");
    if (!strcmp(ty, "BertProcessing") || !strcmp(ty, "RobertaProcessing")) {
        json_t *cls = json_object_get(o, "cls"), *sep = json_object_get(o, "sep");
        json_t *ci = json_array_get(cls, 1), *si = json_array_get(sep, 1);
        if (!json_is_integer(ci) || !json_is_integer(si))
            return ragd_err_set(err, RAGD_EFORMAT, "%s without [token, id] cls/sep", ty);
        int32_t c = (int32_t)json_integer_value(ci), s = (int32_t)json_integer_value(si);
        tpl_push(t, false, &c, 1);
        tpl_push(t, true, NULL, 0);
        tpl_push(t, false, &s, 1);
        return RAGD_OK;
    }
    if (!strcmp(ty, "TemplateProcessing")) {
        json_t *single = json_object_get(o, "single"), *specials = json_object_get(o, "special_tokens");
        if (!json_is_array(single)) return ragd_err_set(err, RAGD_EFORMAT, "TemplateProcessing without 'single'");
        size_t i;
        json_t *e;
        json_array_foreach(single, i, e) {
            json_t *seq = json_object_get(e, "Sequence"), *sp = json_object_get(e, "SpecialToken");
            if (seq) {
                const char *id = json_string_value(json_object_get(seq, "id"));
                if (!id || strcmp(id, "A"))
                    return ragd_err_set(err, RAGD_EFORMAT, "TemplateProcessing single template uses sequence '%s'",
                                        id ? id : "(missing)");
                tpl_push(t, true, NULL, 0);
            } else if (sp) {
                const char *name = json_string_value(json_object_get(sp, "id"));
                json_t *ids = json_object_get(json_object_get(specials, name ? name : ""), "ids");
                if (!name || !json_is_array(ids))
                    return ragd_err_set(err, RAGD_EFORMAT, "TemplateProcessing special token '%s' has no ids",
                                        name ? name : "(missing)");
                size_t n = json_array_size(ids);
                int32_t *v = ragd_xmalloc((n ? n : 1) * sizeof *v);
                size_t k;
                json_t *x;
                json_array_foreach(ids, k, x) v[k] = (int32_t)json_integer_value(x);
                tpl_push(t, false, v, n);
                free(v);
            } else {
                return ragd_err_set(err, RAGD_EFORMAT, "TemplateProcessing item is neither Sequence nor SpecialToken");
            }
        }
        return RAGD_OK;
    }
    return ragd_err_set(err, RAGD_EUNSUPPORTED, "post-processor type '%s' is not supported", ty);
}

static ragd_status set_decoder(ragd_tokenizer *t, json_t *o, ragd_err *err) {
    if (json_is_null(o) || !o) { t->decoder = TOK_DEC_NONE; return RAGD_OK; }
    const char *ty = jtype(o);
    if (!strcmp(ty, "ByteLevel")) { t->decoder = TOK_DEC_BYTELEVEL; return RAGD_OK; }
    if (!strcmp(ty, "Sequence")) {
        json_t *arr = json_object_get(o, "decoders");
        if (json_array_size(arr) == 1) return set_decoder(t, json_array_get(arr, 0), err);
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "decoder Sequence of %zu decoders is not supported",
                            json_array_size(arr));
    }
    return ragd_err_set(err, RAGD_EUNSUPPORTED, "decoder type '%s' is not supported", ty);
}

/* ---------------------------------------------------------------------------------------------- */
/* model */

static ragd_status load_model(ragd_tokenizer *t, json_t *m, tok_builder *bd, ragd_err *err) {
    if (!json_is_object(m)) return ragd_err_set(err, RAGD_EFORMAT, "tokenizer.json has no 'model'");
    const char *ty = jtype(m);
    if (*ty && strcmp(ty, "BPE")) return ragd_err_set(err, RAGD_EUNSUPPORTED, "model type '%s' is not supported", ty);
    json_t *vocab = json_object_get(m, "vocab"), *merges = json_object_get(m, "merges");
    if (!json_is_object(vocab) || !json_is_array(merges))
        return ragd_err_set(err, RAGD_EFORMAT, "BPE model without 'vocab' object and 'merges' array");
    json_t *dropout = json_object_get(m, "dropout");
    if (json_is_number(dropout) && json_number_value(dropout) > 0)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "BPE dropout (non-deterministic) is not supported");
    t->ignore_merges = jbool(m, "ignore_merges", false);
    t->byte_fallback = jbool(m, "byte_fallback", false);
    t->fuse_unk = jbool(m, "fuse_unk", false);
    json_t *cp = json_object_get(m, "continuing_subword_prefix"), *sfx = json_object_get(m, "end_of_word_suffix");
    if (json_is_string(cp) && json_string_length(cp)) {
        t->cont_prefix = ragd_xstrndup(json_string_value(cp), json_string_length(cp));
        t->cont_prefix_len = json_string_length(cp);
    }
    if (json_is_string(sfx) && json_string_length(sfx)) {
        t->eow_suffix = ragd_xstrndup(json_string_value(sfx), json_string_length(sfx));
        t->eow_suffix_len = json_string_length(sfx);
    }
    if (t->cont_prefix_len > 24 || t->eow_suffix_len > 24)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "continuing_subword_prefix/end_of_word_suffix longer than 24 bytes");
    if (t->byte_mode && (t->cont_prefix_len || t->eow_suffix_len))
        return ragd_err_set(err, RAGD_EUNSUPPORTED,
                            "ByteLevel with continuing_subword_prefix/end_of_word_suffix is not supported");

    size_t nv = json_object_size(vocab), i = 0;
    const char **vs = ragd_xcalloc(nv + 1, sizeof *vs);
    size_t *vl = ragd_xcalloc(nv + 1, sizeof *vl);
    int32_t *vi = ragd_xcalloc(nv + 1, sizeof *vi);
    for (void *it = json_object_iter(vocab); it; it = json_object_iter_next(vocab, it)) {
        json_t *v = json_object_iter_value(it);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
            free(vs); free(vl); free(vi);
            return ragd_err_set(err, RAGD_EFORMAT, "vocab entry '%s' has no valid integer id", json_object_iter_key(it));
        }
        vs[i] = json_object_iter_key(it);
        vl[i] = json_object_iter_key_len(it);
        vi[i] = (int32_t)json_integer_value(v);
        i++;
    }
    size_t nm = json_array_size(merges);
    const char **ma = ragd_xcalloc(nm + 1, sizeof *ma), **mb = ragd_xcalloc(nm + 1, sizeof *mb);
    size_t *mal = ragd_xcalloc(nm + 1, sizeof *mal), *mbl = ragd_xcalloc(nm + 1, sizeof *mbl);
    ragd_status st = RAGD_OK;
    json_t *e;
    json_array_foreach(merges, i, e) {
        if (json_is_string(e)) {
            const char *s = json_string_value(e);
            size_t n = json_string_length(e);
            const char *sp = memchr(s, ' ', n);
            if (!sp) { st = ragd_err_set(err, RAGD_EFORMAT, "merge %zu '%s' is not 'a b'", i, s); break; }
            ma[i] = s; mal[i] = (size_t)(sp - s);
            mb[i] = sp + 1; mbl[i] = n - mal[i] - 1;
        } else if (json_is_array(e) && json_array_size(e) == 2 && json_is_string(json_array_get(e, 0)) &&
                   json_is_string(json_array_get(e, 1))) {
            ma[i] = json_string_value(json_array_get(e, 0)); mal[i] = json_string_length(json_array_get(e, 0));
            mb[i] = json_string_value(json_array_get(e, 1)); mbl[i] = json_string_length(json_array_get(e, 1));
        } else {
            st = ragd_err_set(err, RAGD_EFORMAT, "merge %zu is neither \"a b\" nor [a, b]", i);
            break;
        }
    }
    bd->n_vocab = nv; bd->vocab = vs; bd->vocab_len = vl; bd->vocab_id = vi;
    bd->n_merges = nm; bd->merge_a = ma; bd->merge_b = mb; bd->merge_a_len = mal; bd->merge_b_len = mbl;
    if (st) return st;
    json_t *unk = json_object_get(m, "unk_token");
    if (json_is_string(unk)) {
        /* resolved after the build; stash the name in the builder-less way: look it up here */
        for (size_t k = 0; k < nv; k++)
            if (vl[k] == json_string_length(unk) && !memcmp(vs[k], json_string_value(unk), vl[k])) t->unk_id = vi[k];
        if (t->unk_id < 0)
            return ragd_err_set(err, RAGD_EFORMAT, "unk_token '%s' is not in the vocabulary", json_string_value(unk));
    }
    return RAGD_OK;
}

static void builder_free(tok_builder *bd) {
    free((void *)bd->vocab); free((void *)bd->vocab_len); free((void *)bd->vocab_id);
    free((void *)bd->merge_a); free((void *)bd->merge_b); free((void *)bd->merge_a_len); free((void *)bd->merge_b_len);
}

ragd_status ragd_tokenizer_load_json(const char *path, ragd_tokenizer **out, ragd_err *err) {
    *out = NULL;
    char *data;
    size_t len;
    ragd_status st = ragd_file_read(path, &data, &len, err);
    if (st) return st;
    json_error_t je;
    json_t *root = json_loadb(data, len, JSON_ALLOW_NUL, &je);
    free(data);
    if (!root) return ragd_err_set(err, RAGD_EFORMAT, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    ragd_tokenizer *t = tok_alloc();
    tok_builder bd = {.t = t};
    if (!json_is_object(root)) st = ragd_err_set(err, RAGD_EFORMAT, "not a JSON object");
    if (!st) st = add_norm(t, json_object_get(root, "normalizer"), err);
    if (!st) st = add_pre(t, json_object_get(root, "pre_tokenizer"), err);
    if (!st) st = add_post(t, json_object_get(root, "post_processor"), err);
    if (!st) st = set_decoder(t, json_object_get(root, "decoder"), err);
    if (!st) st = load_model(t, json_object_get(root, "model"), &bd, err);
    if (!st) {
        json_t *added = json_object_get(root, "added_tokens");
        size_t i;
        json_t *a;
        json_array_foreach(added, i, a) {
            json_t *id = json_object_get(a, "id"), *c = json_object_get(a, "content");
            if (!json_is_integer(id) || !json_is_string(c) || json_integer_value(id) < 0 ||
                json_integer_value(id) > INT32_MAX) {
                st = ragd_err_set(err, RAGD_EFORMAT, "added_tokens[%zu] needs an integer id and a content", i);
                break;
            }
            bool special = jbool(a, "special", false);
            tok_add_added(t, json_string_value(c), json_string_length(c), (int32_t)json_integer_value(id), special,
                          jbool(a, "lstrip", false), jbool(a, "rstrip", false), jbool(a, "single_word", false),
                          jbool(a, "normalized", !special));
        }
    }
    if (!st) st = tok_build_finish(&bd, err);
    builder_free(&bd);
    json_decref(root);
    if (!st) {
        char *dir = ragd_xstrdup(path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else strcpy(dir, ".");
        st = tok_read_config(t, dir, err);
        free(dir);
    }
    if (st) {
        ragd_tokenizer_free(t);
        return ragd_err_prefix(err, "%s", path);
    }
    *out = t;
    return RAGD_OK;
}
