/* tok_load_vocab.c — a BERT WordPiece tokenizer from a folder with only vocab.txt (+ tokenizer_config.json,
 * special_tokens_map.json), converted the way transformers' BertTokenizerFast does (convert_slow_tokenizer
 * BertConverter): the tokenizer.json document it would write is built in memory and loaded through
 * the tokenizer.json path (tok_load_root), so both paths share every component.
 *
 * vocab.txt: one token per line, id = line index, only the trailing "\n" removed (transformers'
 * load_vocab); a repeated token keeps its last id. tokenizer_config.json: do_lower_case (default
 * true), tokenize_chinese_chars (true), strip_accents (null), the unk/sep/pad/cls/mask token names
 * (string or {content}), added_tokens_decoder. Special tokens become special added tokens with
 * normalized=false; one missing from vocab.txt gets the next free id, as transformers adds it.
 */
#include <stdlib.h>

#include <jansson.h>

#include "tokenizer/tok_internal.h"

static const char *tok_name(json_t *cfg, json_t *map, const char *key, const char *dflt) {
    json_t *v = json_object_get(cfg, key);
    if (!v) v = json_object_get(map, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static json_t *load_opt(const char *dir, const char *name, ragd_err *err, ragd_status *st) {
    char *path = ragd_path_join(dir, name);
    json_t *r = NULL;
    if (ragd_file_exists(path)) {
        json_error_t je;
        r = json_load_file(path, 0, &je);
        if (!r || !json_is_object(r)) {
            *st = ragd_err_set(err, RAGD_EFORMAT, "%s:%d: %s", path, je.line, r ? "not a JSON object" : je.text);
            json_decref(r);
            r = NULL;
        }
    }
    free(path);
    return r;
}

/* Reads vocab.txt into a WordPiece vocab object; *n gets the line count. */
static ragd_status read_vocab(const char *dir, json_t *vocab, size_t *n, ragd_err *err) {
    char *path = ragd_path_join(dir, "vocab.txt");
    char *data;
    size_t len;
    ragd_status st = ragd_file_read(path, &data, &len, err);
    free(path);
    if (st) return st;
    if (!ragd_utf8_valid(data, len, NULL)) {
        free(data);
        return ragd_err_set(err, RAGD_EFORMAT, "vocab.txt is not valid UTF-8");
    }
    size_t id = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - data) : len;
        json_t *k = json_integer((json_int_t)id);
        /* jansson keys cannot hold NUL: such a line is refused */
        if (memchr(data + i, 0, e - i)) {
            json_decref(k);
            free(data);
            return ragd_err_set(err, RAGD_EFORMAT, "vocab.txt line %zu holds a NUL byte", id + 1);
        }
        char *key = ragd_xstrndup(data + i, e - i);
        json_object_set_new(vocab, key, k);
        free(key);
        id++;
        i = e + 1;
        if (!nl) break;
    }
    free(data);
    if (id >= (1u << 24)) return ragd_err_set(err, RAGD_EFORMAT, "vocab.txt has too many lines (%zu)", id);
    *n = id;
    return RAGD_OK;
}

static json_t *added_json(const char *content, json_int_t id, bool lstrip, bool rstrip, bool single, bool norm,
                          bool special) {
    return json_pack("{s:I, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", content, "single_word", single,
                     "lstrip", lstrip, "rstrip", rstrip, "normalized", norm, "special", special);
}

static ragd_status build_doc(const char *dir, json_t *cfg, json_t *map, json_t **out, ragd_err *err) {
    const char *cls = json_string_value(json_object_get(cfg, "tokenizer_class"));
    if (cls && strcmp(cls, "BertTokenizer") && strcmp(cls, "BertTokenizerFast") && strcmp(cls, "DistilBertTokenizer") &&
        strcmp(cls, "DistilBertTokenizerFast"))
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "vocab.txt with tokenizer_class '%s' is not supported (only BERT)", cls);
    json_t *vocab = json_object();
    size_t nv = 0;
    ragd_status st = read_vocab(dir, vocab, &nv, err);
    if (st) { json_decref(vocab); return st; }
    json_t *lc = json_object_get(cfg, "do_lower_case"), *zh = json_object_get(cfg, "tokenize_chinese_chars");
    json_t *sa = json_object_get(cfg, "strip_accents");
    if (sa && !json_is_null(sa) && !json_is_boolean(sa)) {
        json_decref(vocab);
        return ragd_err_set(err, RAGD_EFORMAT, "tokenizer_config.json strip_accents must be true, false or null");
    }
    bool lower = lc ? json_is_true(lc) : true, chinese = zh ? json_is_true(zh) : true;
    const char *keys[] = {"pad_token", "unk_token", "cls_token", "sep_token", "mask_token"};
    const char *dflt[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    const char *names[5];
    json_int_t ids[5];
    json_t *added = json_array();
    json_int_t next = (json_int_t)nv;
    /* added_tokens_decoder first (their flags as given) */
    const char *ks;
    json_t *v;
    json_object_foreach(json_object_get(cfg, "added_tokens_decoder"), ks, v) {
        json_t *c = json_object_get(v, "content");
        char *endp;
        long long id = strtoll(ks, &endp, 10);
        if (!json_is_string(c) || *endp || id < 0 || id >= (1 << 24)) {
            json_decref(vocab);
            json_decref(added);
            return ragd_err_set(err, RAGD_EFORMAT, "tokenizer_config.json added_tokens_decoder '%s' is not {content} by id", ks);
        }
        bool special = json_is_true(json_object_get(v, "special"));
        json_t *nj = json_object_get(v, "normalized");
        json_array_append_new(added, added_json(json_string_value(c), id, json_is_true(json_object_get(v, "lstrip")),
                                                json_is_true(json_object_get(v, "rstrip")),
                                                json_is_true(json_object_get(v, "single_word")),
                                                nj ? json_is_true(nj) : !special, special));
        if (id >= next) next = id + 1;
    }
    for (int k = 0; k < 5; k++) {
        names[k] = tok_name(cfg, map, keys[k], dflt[k]);
        json_t *id = json_object_get(vocab, names[k]);
        bool listed = false;
        size_t i;
        json_t *a;
        json_array_foreach(added, i, a)
            if (!strcmp(json_string_value(json_object_get(a, "content")), names[k])) {
                listed = true;
                ids[k] = json_integer_value(json_object_get(a, "id"));
            }
        if (listed) continue;
        ids[k] = id ? json_integer_value(id) : next++;
        json_array_append_new(added, added_json(names[k], ids[k], false, false, false, false, true));
    }
    json_t *root = json_pack(
        "{s:o, s:{s:s, s:b, s:b, s:o, s:b}, s:{s:s}, s:{s:s, s:s, s:s, s:i, s:o}, s:{s:s, s:s, s:b}}",
        "added_tokens", added,
        "normalizer", "type", "BertNormalizer", "clean_text", 1, "handle_chinese_chars", chinese, "strip_accents",
        sa ? json_incref(sa) : json_null(), "lowercase", lower,
        "pre_tokenizer", "type", "BertPreTokenizer",
        "model", "type", "WordPiece", "unk_token", names[1], "continuing_subword_prefix", "##",
        "max_input_chars_per_word", 100, "vocab", vocab,
        "decoder", "type", "WordPiece", "prefix", "##", "cleanup", 1);
    json_t *post = json_pack(
        "{s:s, s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}],"
        " s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}],"
        " s:{s:{s:s, s:[I], s:[s]}, s:{s:s, s:[I], s:[s]}}}",
        "type", "TemplateProcessing",
        "single", "SpecialToken", "id", names[2], "type_id", 0, "Sequence", "id", "A", "type_id", 0,
        "SpecialToken", "id", names[3], "type_id", 0,
        "pair", "SpecialToken", "id", names[2], "type_id", 0, "Sequence", "id", "A", "type_id", 0,
        "SpecialToken", "id", names[3], "type_id", 0, "Sequence", "id", "B", "type_id", 1,
        "SpecialToken", "id", names[3], "type_id", 1,
        "special_tokens", names[2], "id", names[2], "ids", ids[2], "tokens", names[2],
        names[3], "id", names[3], "ids", ids[3], "tokens", names[3]);
    if (!root || !post) {
        json_decref(root);
        json_decref(post);
        return ragd_err_set(err, RAGD_EFORMAT, "vocab.txt: cannot build the tokenizer document");
    }
    json_object_set_new(root, "post_processor", post);
    *out = root;
    return RAGD_OK;
}

ragd_status ragd_tokenizer_load_bert_vocab(const char *dir, ragd_tokenizer **out, ragd_err *err) {
    *out = NULL;
    ragd_status st = RAGD_OK;
    json_t *cfg = load_opt(dir, "tokenizer_config.json", err, &st);
    json_t *map = st ? NULL : load_opt(dir, "special_tokens_map.json", err, &st);
    json_t *doc = NULL;
    if (!st) {
        if (!cfg) cfg = json_object();
        st = build_doc(dir, cfg, map, &doc, err);
    }
    if (!st) st = tok_load_root(doc, dir, out, err);
    if (!st && (*out)->pad_id < 0) { /* BertTokenizer's default pad token, or special_tokens_map.json's */
        const char *pad = tok_name(cfg, map, "pad_token", "[PAD]");
        (*out)->pad_id = tok_hash_get(&(*out)->str2id, pad, strlen(pad));
    }
    json_decref(doc);
    json_decref(cfg);
    json_decref(map);
    if (st) return ragd_err_prefix(err, "%s", dir);
    return RAGD_OK;
}
