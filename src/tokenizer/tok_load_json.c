/* tok_load_json.c — reads a Hugging Face tokenizer.json (+ tokenizer_config.json beside it).
 *
 * Supported: models BPE, WordPiece, Unigram; normalizers NFC/NFD/NFKC/NFKD/Lowercase/StripAccents/
 * Replace(String|Regex)/Prepend/Strip/BertNormalizer/Precompiled/Sequence; pre-tokenizers Split(Regex|String)/
 * ByteLevel/Digits/BertPreTokenizer/WhitespaceSplit/Whitespace/Metaspace/Sequence; post-processors
 * ByteLevel/TemplateProcessing (single + pair)/BertProcessing/RobertaProcessing/Sequence; decoders
 * ByteLevel/WordPiece/Metaspace (or none). Anything else fails with RAGD_EUNSUPPORTED naming the component. `truncation`/`padding` are ignored: callers
 * truncate and pad themselves.
 *
 * Environment (tests only): RAGD_TOK_FORCE_PCRE2=1 compiles even the well-known split regexes with
 * PCRE2 instead of selecting the hand-written matchers.
 */
#include <math.h>
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

static void push_norm(ragd_tokenizer *t, tok_norm_kind kind) {
    t->norms = ragd_xrealloc(t->norms, (t->n_norms + 1) * sizeof *t->norms);
    memset(&t->norms[t->n_norms], 0, sizeof *t->norms);
    t->norms[t->n_norms++].kind = kind;
}

/* BertNormalizer as its steps, in HF's order; strip_accents null (absent) follows lowercase. */
static ragd_status add_bert_norm(ragd_tokenizer *t, bool clean, bool chinese, json_t *strip, bool lower, ragd_err *err) {
    if (strip && !json_is_null(strip) && !json_is_boolean(strip))
        return ragd_err_set(err, RAGD_EFORMAT, "BertNormalizer strip_accents must be true, false or null");
    bool do_strip = json_is_boolean(strip) ? json_is_true(strip) : lower;
    if (clean) push_norm(t, TOK_NORM_BERT_CLEAN);
    if (chinese) push_norm(t, TOK_NORM_BERT_CHINESE);
    if (do_strip) push_norm(t, TOK_NORM_BERT_STRIP);
    if (lower) push_norm(t, TOK_NORM_LOWERCASE);
    return RAGD_OK;
}

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
    } else if (!strcmp(ty, "BertNormalizer")) {
        return add_bert_norm(t, jbool(o, "clean_text", true), jbool(o, "handle_chinese_chars", true),
                             json_object_get(o, "strip_accents"), jbool(o, "lowercase", true), err);
    } else if (!strcmp(ty, "Strip")) {
        nm.kind = TOK_NORM_STRIP;
        nm.left = jbool(o, "strip_left", true);
        nm.right = jbool(o, "strip_right", true);
    } else if (!strcmp(ty, "Precompiled")) {
        json_t *cm = json_object_get(o, "precompiled_charsmap");
        if (!json_is_string(cm)) return ragd_err_set(err, RAGD_EFORMAT, "normalizer Precompiled without 'precompiled_charsmap'");
        nm.kind = TOK_NORM_PRECOMPILED;
        ragd_status st = tok_charsmap_parse(json_string_value(cm), json_string_length(cm), &nm.cmap, err);
        if (st) return st;
    } else if (!strcmp(ty, "Replace") && json_is_string(json_object_get(json_object_get(o, "pattern"), "Regex"))) {
        json_t *re = json_object_get(json_object_get(o, "pattern"), "Regex"), *c = json_object_get(o, "content");
        if (!json_is_string(c)) return ragd_err_set(err, RAGD_EFORMAT, "normalizer Replace without 'content'");
        tok_pre tmp = {0};
        ragd_status st = tok_pre_compile_regex(&tmp, json_string_value(re), json_string_length(re), err);
        if (st) return ragd_err_prefix(err, "normalizer Replace");
        nm.kind = TOK_NORM_REPLACE_RE;
        nm.re = tmp.re;
        nm.content = ragd_xstrndup(json_string_value(c), json_string_length(c));
        nm.content_len = json_string_length(c);
    } else if (!strcmp(ty, "Replace")) {
        json_t *pat = json_object_get(json_object_get(o, "pattern"), "String");
        json_t *c = json_object_get(o, "content");
        if (!json_is_string(pat)) return ragd_err_set(err, RAGD_EFORMAT, "normalizer Replace without a String or Regex pattern");
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

/* Metaspace options (pre-tokenizer and decoder): replacement (one character), prepend_scheme
 * (always/first/never; legacy add_prefix_space false → never), split (default true). */
static ragd_status metaspace_opts(json_t *o, char rep[4], size_t *rep_len, tok_prepend *pre, bool *split,
                                  ragd_err *err) {
    json_t *r = json_object_get(o, "replacement");
    if (!json_is_string(r) || !json_string_length(r) || json_string_length(r) > 4)
        return ragd_err_set(err, RAGD_EFORMAT, "Metaspace without a one-character 'replacement'");
    size_t l;
    tok_utf8_decode((const uint8_t *)json_string_value(r), &l);
    if (l != json_string_length(r))
        return ragd_err_set(err, RAGD_EFORMAT, "Metaspace 'replacement' must be one character");
    memcpy(rep, json_string_value(r), l);
    *rep_len = l;
    const char *ps = json_string_value(json_object_get(o, "prepend_scheme"));
    *pre = TOK_PREPEND_ALWAYS;
    if (ps && !strcmp(ps, "first")) *pre = TOK_PREPEND_FIRST;
    else if (ps && !strcmp(ps, "never")) *pre = TOK_PREPEND_NEVER;
    else if (ps && strcmp(ps, "always"))
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "Metaspace prepend_scheme '%s' is not supported", ps);
    json_t *aps = json_object_get(o, "add_prefix_space");
    if (json_is_false(aps)) {
        if (*pre != TOK_PREPEND_NEVER && ps)
            return ragd_err_set(err, RAGD_EFORMAT, "Metaspace add_prefix_space does not match declared prepend_scheme");
        *pre = TOK_PREPEND_NEVER;
    }
    if (split) *split = jbool(o, "split", true);
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
    if (!strcmp(ty, "BertPreTokenizer") || !strcmp(ty, "WhitespaceSplit")) {
        tok_pre *p = new_pre(t, err);
        if (!p) return err->code;
        p->kind = ty[0] == 'B' ? TOK_PRE_BERT : TOK_PRE_WSPLIT;
        return RAGD_OK;
    }
    if (!strcmp(ty, "Whitespace")) { /* HF: Rust regex \w+|[^\w\s]+, kept (the rest removed) */
        tok_pre *p = new_pre(t, err);
        if (!p) return err->code;
        p->kind = TOK_PRE_WHITESPACE;
        return RAGD_OK;
    }
    if (!strcmp(ty, "Metaspace")) {
        tok_pre *p = new_pre(t, err);
        if (!p) return err->code;
        p->kind = TOK_PRE_METASPACE;
        ragd_status st = metaspace_opts(o, p->rep, &p->rep_len, &p->prepend, &p->split, err);
        if (st) return st;
        return RAGD_OK;
    }
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

static void tpl_push_to(tok_tpl_item **v, size_t *nv, bool is_seq, uint8_t seq, int32_t type, const int32_t *ids,
                        size_t n) {
    *v = ragd_xrealloc(*v, (*nv + 1) * sizeof **v);
    tok_tpl_item *it = &(*v)[(*nv)++];
    it->is_seq = is_seq;
    it->seq = seq;
    it->type_id = type;
    it->n_ids = n;
    it->ids = n ? ragd_xmalloc(n * sizeof *ids) : NULL;
    if (n) memcpy(it->ids, ids, n * sizeof *ids);
}

/* One TemplateProcessing template (a list of Sequence / SpecialToken items with type ids). */
static ragd_status parse_template(json_t *arr, json_t *specials, bool pair, tok_tpl_item **v, size_t *nv,
                                  ragd_err *err) {
    const char *which = pair ? "pair" : "single";
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        json_t *seq = json_object_get(e, "Sequence"), *sp = json_object_get(e, "SpecialToken");
        json_t *item = seq ? seq : sp;
        json_t *ti = json_object_get(item, "type_id");
        if (ti && (!json_is_integer(ti) || json_integer_value(ti) < 0 || json_integer_value(ti) > INT32_MAX))
            return ragd_err_set(err, RAGD_EFORMAT, "TemplateProcessing %s item %zu has an invalid type_id", which, i);
        int32_t type = ti ? (int32_t)json_integer_value(ti) : 0;
        if (seq) {
            const char *id = json_string_value(json_object_get(seq, "id"));
            bool a = id && !strcmp(id, "A"), b = id && !strcmp(id, "B");
            if (!a && !(b && pair))
                return ragd_err_set(err, RAGD_EFORMAT, "TemplateProcessing %s template uses sequence '%s'", which,
                                    id ? id : "(missing)");
            tpl_push_to(v, nv, true, b, type, NULL, 0);
        } else if (sp) {
            const char *name = json_string_value(json_object_get(sp, "id"));
            json_t *ids = json_object_get(json_object_get(specials, name ? name : ""), "ids");
            if (!name || !json_is_array(ids))
                return ragd_err_set(err, RAGD_EFORMAT, "TemplateProcessing special token '%s' has no ids",
                                    name ? name : "(missing)");
            size_t n = json_array_size(ids);
            int32_t *x = ragd_xmalloc((n ? n : 1) * sizeof *x);
            size_t k;
            json_t *y;
            json_array_foreach(ids, k, y) x[k] = (int32_t)json_integer_value(y);
            tpl_push_to(v, nv, false, 0, type, x, n);
            free(x);
        } else {
            return ragd_err_set(err, RAGD_EFORMAT, "TemplateProcessing item is neither Sequence nor SpecialToken");
        }
    }
    return RAGD_OK;
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
        bool bert = ty[0] == 'B'; /* Roberta: <s> A </s> </s> B </s>, every type id 0 */
        tpl_push_to(&t->tpl, &t->n_tpl, false, 0, 0, &c, 1);
        tpl_push_to(&t->tpl, &t->n_tpl, true, 0, 0, NULL, 0);
        tpl_push_to(&t->tpl, &t->n_tpl, false, 0, 0, &s, 1);
        tpl_push_to(&t->tpl_pair, &t->n_tpl_pair, false, 0, 0, &c, 1);
        tpl_push_to(&t->tpl_pair, &t->n_tpl_pair, true, 0, 0, NULL, 0);
        tpl_push_to(&t->tpl_pair, &t->n_tpl_pair, false, 0, 0, &s, 1);
        if (!bert) tpl_push_to(&t->tpl_pair, &t->n_tpl_pair, false, 0, 0, &s, 1);
        tpl_push_to(&t->tpl_pair, &t->n_tpl_pair, true, 1, bert, NULL, 0);
        tpl_push_to(&t->tpl_pair, &t->n_tpl_pair, false, 0, bert, &s, 1);
        return RAGD_OK;
    }
    if (!strcmp(ty, "TemplateProcessing")) {
        json_t *single = json_object_get(o, "single"), *pair = json_object_get(o, "pair");
        if (!json_is_array(single)) return ragd_err_set(err, RAGD_EFORMAT, "TemplateProcessing without 'single'");
        ragd_status st = parse_template(single, json_object_get(o, "special_tokens"), false, &t->tpl, &t->n_tpl, err);
        if (st) return st;
        if (json_array_size(pair))
            return parse_template(pair, json_object_get(o, "special_tokens"), true, &t->tpl_pair, &t->n_tpl_pair, err);
        t->pair_unsupported = true;
        return RAGD_OK;
    }
    return ragd_err_set(err, RAGD_EUNSUPPORTED, "post-processor type '%s' is not supported", ty);
}

static ragd_status set_decoder(ragd_tokenizer *t, json_t *o, ragd_err *err) {
    if (json_is_null(o) || !o) { t->decoder = TOK_DEC_NONE; return RAGD_OK; }
    const char *ty = jtype(o);
    if (!strcmp(ty, "ByteLevel")) { t->decoder = TOK_DEC_BYTELEVEL; return RAGD_OK; }
    if (!strcmp(ty, "WordPiece")) {
        json_t *p = json_object_get(o, "prefix");
        const char *ps = json_is_string(p) ? json_string_value(p) : "##";
        size_t pl = json_is_string(p) ? json_string_length(p) : 2;
        if (pl > sizeof t->dec_str) return ragd_err_set(err, RAGD_EUNSUPPORTED, "WordPiece decoder prefix longer than 24 bytes");
        memcpy(t->dec_str, ps, pl);
        t->dec_str_len = pl;
        t->dec_cleanup = jbool(o, "cleanup", true);
        t->decoder = TOK_DEC_WORDPIECE;
        return RAGD_OK;
    }
    if (!strcmp(ty, "Metaspace")) {
        t->decoder = TOK_DEC_METASPACE;
        return metaspace_opts(o, t->dec_str, &t->dec_str_len, &t->dec_prepend, NULL, err);
    }
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

/* WordPiece: vocab {token: id}, unk_token, continuing_subword_prefix, max_input_chars_per_word. */
static ragd_status load_wordpiece(ragd_tokenizer *t, json_t *m, tok_builder *bd, ragd_err *err) {
    json_t *vocab = json_object_get(m, "vocab");
    if (!json_is_object(vocab)) return ragd_err_set(err, RAGD_EFORMAT, "WordPiece model without a 'vocab' object");
    if (t->byte_mode) return ragd_err_set(err, RAGD_EUNSUPPORTED, "ByteLevel pre-tokenizer with a WordPiece model is not supported");
    t->model = TOK_MODEL_WORDPIECE;
    json_t *cp = json_object_get(m, "continuing_subword_prefix"), *mx = json_object_get(m, "max_input_chars_per_word");
    const char *pfx = json_is_string(cp) ? json_string_value(cp) : "##";
    size_t pl = json_is_string(cp) ? json_string_length(cp) : 2;
    if (pl > 24) return ragd_err_set(err, RAGD_EUNSUPPORTED, "continuing_subword_prefix longer than 24 bytes");
    t->cont_prefix = ragd_xstrndup(pfx, pl);
    t->cont_prefix_len = pl;
    if (mx && (!json_is_integer(mx) || json_integer_value(mx) < 0))
        return ragd_err_set(err, RAGD_EFORMAT, "WordPiece max_input_chars_per_word is not a non-negative integer");
    t->wp_max_chars = mx ? (size_t)json_integer_value(mx) : 100;
    size_t nv = json_object_size(vocab), i = 0;
    const char **vs = ragd_xcalloc(nv + 1, sizeof *vs);
    size_t *vl = ragd_xcalloc(nv + 1, sizeof *vl);
    int32_t *vi = ragd_xcalloc(nv + 1, sizeof *vi);
    bd->n_vocab = nv; bd->vocab = vs; bd->vocab_len = vl; bd->vocab_id = vi;
    for (void *it = json_object_iter(vocab); it; it = json_object_iter_next(vocab, it)) {
        json_t *v = json_object_iter_value(it);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
            return ragd_err_set(err, RAGD_EFORMAT, "vocab entry '%s' has no valid integer id", json_object_iter_key(it));
        vs[i] = json_object_iter_key(it);
        vl[i] = json_object_iter_key_len(it);
        vi[i] = (int32_t)json_integer_value(v);
        if (vl[i] > t->wp_max_key) t->wp_max_key = vl[i];
        i++;
    }
    json_t *unk = json_object_get(m, "unk_token");
    if (json_is_string(unk)) /* absent from the vocabulary: HF fails only when a word needs it; so do we */
        for (size_t k = 0; k < nv; k++)
            if (vl[k] == json_string_length(unk) && !memcmp(vs[k], json_string_value(unk), vl[k])) t->unk_id = vi[k];
    return RAGD_OK;
}

/* Unigram: vocab [[piece, score], ...] (id = index), unk_id (null or an index), byte_fallback. The
 * trie and scores are built here; the string tables by tok_build_finish. */
static ragd_status load_unigram(ragd_tokenizer *t, json_t *m, tok_builder *bd, ragd_err *err) {
    json_t *vocab = json_object_get(m, "vocab"), *unk = json_object_get(m, "unk_id");
    if (!json_is_array(vocab)) return ragd_err_set(err, RAGD_EFORMAT, "Unigram model without a 'vocab' array");
    if (t->byte_mode) return ragd_err_set(err, RAGD_EUNSUPPORTED, "ByteLevel pre-tokenizer with a Unigram model is not supported");
    size_t nv = json_array_size(vocab);
    if (nv >= (1u << 24)) return ragd_err_set(err, RAGD_EFORMAT, "Unigram vocabulary of %zu pieces is too large", nv);
    t->model = TOK_MODEL_UNIGRAM;
    t->byte_fallback = jbool(m, "byte_fallback", false);
    if (unk && !json_is_null(unk)) {
        if (!json_is_integer(unk) || json_integer_value(unk) < 0 || (size_t)json_integer_value(unk) >= nv)
            return ragd_err_set(err, RAGD_EFORMAT, "Unigram unk_id is not an index into the vocabulary");
        t->unk_id = (int32_t)json_integer_value(unk);
    }
    const char **vs = ragd_xcalloc(nv + 1, sizeof *vs);
    size_t *vl = ragd_xcalloc(nv + 1, sizeof *vl);
    int32_t *vi = ragd_xcalloc(nv + 1, sizeof *vi);
    bd->n_vocab = nv; bd->vocab = vs; bd->vocab_len = vl; bd->vocab_id = vi;
    t->uscore = ragd_xcalloc(nv + 1, sizeof *t->uscore);
    t->umin_score = INFINITY;
    size_t i;
    json_t *e;
    json_array_foreach(vocab, i, e) {
        json_t *p = json_array_get(e, 0), *sc = json_array_get(e, 1);
        if (!json_is_array(e) || json_array_size(e) != 2 || !json_is_string(p) || !json_is_number(sc))
            return ragd_err_set(err, RAGD_EFORMAT, "Unigram vocab[%zu] is not [piece, score]", i);
        vs[i] = json_string_value(p);
        vl[i] = json_string_length(p);
        vi[i] = (int32_t)i;
        t->uscore[i] = json_number_value(sc);
        if (t->uscore[i] < t->umin_score) t->umin_score = t->uscore[i];
    }
    /* a duplicated piece keeps its last id (and that id's score), as HF's token_to_ids */
    for (i = 0; i < nv; i++) tok_utrie_insert(&t->utrie, (const uint8_t *)vs[i], vl[i], (int32_t)i);
    return RAGD_OK;
}

static ragd_status load_model(ragd_tokenizer *t, json_t *m, tok_builder *bd, ragd_err *err) {
    if (!json_is_object(m)) return ragd_err_set(err, RAGD_EFORMAT, "tokenizer.json has no 'model'");
    const char *ty = jtype(m);
    if (!strcmp(ty, "WordPiece")) return load_wordpiece(t, m, bd, err);
    if (!strcmp(ty, "Unigram")) return load_unigram(t, m, bd, err);
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

ragd_status tok_load_root(struct json_t *root, const char *dir, ragd_tokenizer **out, ragd_err *err) {
    *out = NULL;
    ragd_status st = RAGD_OK;
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
    if (!st) st = tok_read_config(t, dir, err);
    if (st) {
        ragd_tokenizer_free(t);
        return st;
    }
    *out = t;
    return RAGD_OK;
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
    char *dir = ragd_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
    st = tok_load_root(root, dir, out, err);
    free(dir);
    json_decref(root);
    if (st) return ragd_err_prefix(err, "%s", path);
    return RAGD_OK;
}
