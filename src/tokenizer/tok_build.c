/* tok_build.c — turns what a loader read into the immutable tables of a ragd_tokenizer: id → string
 * and decoder bytes, string → id, the model-key hash and byte symbols, the merge table, the
 * added-token tries; plus tokenizer_config.json, the accessors and ragd_tokenizer_free.
 *
 * Invariants after tok_build_finish: every merge (a, b) has a, b and a+b in the model vocabulary
 * (else EFORMAT, as HF refuses such files); a duplicated merge keeps its last rank (HF collects the
 * merges into a map); added tokens override model tokens of the same id for decoding and lookup.
 */
#include <stdlib.h>

#include <jansson.h>

#include "tokenizer/tok_internal.h"

#define TOK_MAX_IDS (1u << 24)

ragd_tokenizer *tok_alloc(void) {
    ragd_tokenizer *t = ragd_xcalloc(1, sizeof *t);
    t->unk_id = t->bos_id = t->eos_id = t->pad_id = -1;
    t->model_max_length = -1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = t->byte_tok[b] = -1;
    t->use_cache = getenv("RAGD_TOK_NO_CACHE") == NULL;
    t->trie_raw.empty = t->trie_norm.empty = true;
    return t;
}

void tok_add_added(ragd_tokenizer *t, const char *content, size_t len, int32_t id, bool special, bool lstrip,
                   bool rstrip, bool single_word, bool normalized) {
    t->added = ragd_xrealloc(t->added, (t->n_added + 1) * sizeof *t->added);
    tok_added *a = &t->added[t->n_added++];
    a->content = ragd_xstrndup(content, len);
    a->len = len;
    a->id = id;
    a->special = special; a->lstrip = lstrip; a->rstrip = rstrip; a->single_word = single_word;
    a->normalized = normalized;
}

/* ---------------------------------------------------------------------------------------------- */
/* trie */

static int32_t trie_node(tok_trie *tr) {
    if (tr->n_nodes == tr->cap_nodes) {
        tr->cap_nodes = tr->cap_nodes ? tr->cap_nodes * 2 : 64;
        tr->child = ragd_xrealloc(tr->child, tr->cap_nodes * sizeof *tr->child);
        tr->sibling = ragd_xrealloc(tr->sibling, tr->cap_nodes * sizeof *tr->sibling);
        tr->term = ragd_xrealloc(tr->term, tr->cap_nodes * sizeof *tr->term);
        tr->label = ragd_xrealloc(tr->label, tr->cap_nodes * sizeof *tr->label);
    }
    int32_t k = (int32_t)tr->n_nodes++;
    tr->child[k] = tr->sibling[k] = tr->term[k] = -1;
    tr->label[k] = 0;
    return k;
}

static void trie_insert(tok_trie *tr, const uint8_t *s, size_t n, int32_t idx) {
    if (!n) return;
    if (!tr->n_nodes) trie_node(tr);
    int32_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t c = tr->child[cur];
        while (c >= 0 && tr->label[c] != s[i]) c = tr->sibling[c];
        if (c < 0) {
            c = trie_node(tr);
            tr->label[c] = s[i];
            tr->sibling[c] = tr->child[cur];
            tr->child[cur] = c;
        }
        cur = c;
    }
    if (tr->term[cur] < 0) tr->term[cur] = idx;
    tr->first[s[0]] = 1;
    tr->empty = false;
}

int32_t tok_trie_longest(const tok_trie *tr, const uint8_t *s, size_t n, size_t i, size_t *end) {
    int32_t cur = 0, best = -1;
    for (size_t j = i; j < n; j++) {
        int32_t c = tr->child[cur];
        while (c >= 0 && tr->label[c] != s[j]) c = tr->sibling[c];
        if (c < 0) break;
        cur = c;
        if (tr->term[cur] >= 0) { best = tr->term[cur]; *end = j + 1; }
    }
    return best;
}

static void trie_free(tok_trie *tr) {
    free(tr->child); free(tr->sibling); free(tr->term); free(tr->label);
}

/* ---------------------------------------------------------------------------------------------- */
/* building */

/* The model key of a vocabulary string: in byte mode the bytes its characters stand for (when every
 * character is in the byte alphabet), else the string itself. Writes into *key. */
static void model_key(const ragd_tokenizer *t, const char *s, size_t n, ragd_buf *key) {
    ragd_buf_reset(key);
    if (t->byte_mode) {
        for (size_t i = 0; i < n;) {
            size_t l;
            uint32_t cp = tok_utf8_decode((const uint8_t *)s + i, &l);
            int b = tok_cp_to_byte(cp);
            if (b < 0 || i + l > n) { ragd_buf_reset(key); ragd_buf_append(key, s, n); return; }
            ragd_buf_putc(key, (char)b);
            i += l;
        }
        return;
    }
    ragd_buf_append(key, s, n);
}

static void merges_put(tok_merges *m, int32_t a, int32_t b, uint32_t rank, int32_t merged) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t i = tok_merges_slot(m, key);
    while (m->keys[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) m->n++;
    m->keys[i] = key;
    m->rank[i] = rank;
    m->merged[i] = merged;
}

/* Replaces every occurrence of a by b in buf (left to right, non-overlapping), as Rust's str::replace. */
static void replace_all(ragd_buf *buf, size_t from, const char *a, const char *b, ragd_buf *tmp) {
    size_t al = strlen(a), bl = strlen(b);
    const char *s = buf->data + from;
    size_t n = buf->len - from;
    if (n < al || !memmem(s, n, a, al)) return;
    ragd_buf_reset(tmp);
    for (size_t i = 0; i < n;) {
        if (i + al <= n && !memcmp(s + i, a, al)) { ragd_buf_append(tmp, b, bl); i += al; }
        else ragd_buf_putc(tmp, s[i++]);
    }
    buf->len = from;
    ragd_buf_append(buf, tmp->data, tmp->len);
}

/* HF decoders::wordpiece::cleanup, applied to one token's text dst[from..). */
static void wp_cleanup(ragd_buf *dst, size_t from) {
    static const char *const pairs[][2] = {
        {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"}, {" 'm", "'m"},
        {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
    };
    ragd_buf tmp = {0};
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) replace_all(dst, from, pairs[k][0], pairs[k][1], &tmp);
    ragd_buf_free(&tmp);
}

/* Decoder text of one token for the decoders whose output depends on being the first token:
 * WordPiece (later tokens: prefix removed or a space added; cleanup) and Metaspace (the replacement
 * becomes ' ', or vanishes in the first token unless prepend_scheme is never). */
static void decoder_text(const ragd_tokenizer *t, const char *s, size_t n, bool first, ragd_buf *dst) {
    size_t from = dst->len;
    if (t->decoder == TOK_DEC_WORDPIECE) {
        if (!first) {
            if (n >= t->dec_str_len && !memcmp(s, t->dec_str, t->dec_str_len)) { s += t->dec_str_len; n -= t->dec_str_len; }
            else ragd_buf_putc(dst, ' ');
        }
        ragd_buf_append(dst, s, n);
        if (t->dec_cleanup) wp_cleanup(dst, from);
        return;
    }
    bool drop = first && t->dec_prepend != TOK_PREPEND_NEVER;
    for (size_t i = 0; i < n;) {
        if (i + t->dec_str_len <= n && !memcmp(s + i, t->dec_str, t->dec_str_len)) {
            if (!drop) ragd_buf_putc(dst, ' ');
            i += t->dec_str_len;
            continue;
        }
        size_t l;
        tok_utf8_decode((const uint8_t *)s + i, &l);
        ragd_buf_append(dst, s + i, l);
        i += l;
    }
}

/* Decoder bytes of one token string. */
static void decoder_bytes(const ragd_tokenizer *t, const char *s, size_t n, ragd_buf *dst) {
    if (t->decoder == TOK_DEC_WORDPIECE || t->decoder == TOK_DEC_METASPACE) {
        decoder_text(t, s, n, false, dst);
        return;
    }
    if (t->decoder == TOK_DEC_BYTELEVEL) {
        size_t start = dst->len;
        for (size_t i = 0; i < n;) {
            size_t l;
            int b = tok_cp_to_byte(tok_utf8_decode((const uint8_t *)s + i, &l));
            if (b < 0) { dst->len = start; ragd_buf_append(dst, s, n); return; }
            ragd_buf_putc(dst, (char)b);
            i += l;
        }
        return;
    }
    ragd_buf_append(dst, s, n);
}

ragd_status tok_build_finish(tok_builder *bd, ragd_err *err) {
    ragd_tokenizer *t = bd->t;
    int64_t max_id = -1;
    for (size_t i = 0; i < bd->n_vocab; i++) {
        if (bd->vocab_id[i] < 0 || (uint32_t)bd->vocab_id[i] >= TOK_MAX_IDS)
            return ragd_err_set(err, RAGD_EFORMAT, "vocabulary token %zu has id %d outside [0, %u)", i,
                                bd->vocab_id[i], TOK_MAX_IDS);
        if (bd->vocab_id[i] > max_id) max_id = bd->vocab_id[i];
        if (!ragd_utf8_valid(bd->vocab[i], bd->vocab_len[i], NULL))
            return ragd_err_set(err, RAGD_EFORMAT, "vocabulary token id %d is not valid UTF-8", bd->vocab_id[i]);
    }
    for (size_t i = 0; i < t->n_added; i++) {
        if (t->added[i].id < 0 || (uint32_t)t->added[i].id >= TOK_MAX_IDS)
            return ragd_err_set(err, RAGD_EFORMAT, "added token '%s' has id %d outside [0, %u)", t->added[i].content,
                                t->added[i].id, TOK_MAX_IDS);
        if (t->added[i].id > max_id) max_id = t->added[i].id;
        if (!ragd_utf8_valid(t->added[i].content, t->added[i].len, NULL))
            return ragd_err_set(err, RAGD_EFORMAT, "added token id %d is not valid UTF-8", t->added[i].id);
    }
    t->n_ids = (size_t)(max_id + 1);
    size_t nid = t->n_ids ? t->n_ids : 1;
    t->str_off = ragd_xcalloc(nid, sizeof *t->str_off);
    t->str_len = ragd_xcalloc(nid, sizeof *t->str_len);
    t->dec_off = ragd_xcalloc(nid, sizeof *t->dec_off);
    t->dec_len = ragd_xcalloc(nid, sizeof *t->dec_len);
    t->dec0_off = ragd_xcalloc(nid, sizeof *t->dec0_off);
    t->dec0_len = ragd_xcalloc(nid, sizeof *t->dec0_len);
    t->flags = ragd_xcalloc(nid, 1);

    /* model vocabulary */
    tok_hash_init(&t->key2id, bd->n_vocab);
    tok_hash_init(&t->str2id, bd->n_vocab + t->n_added);
    ragd_buf key = {0};
    for (size_t i = 0; i < bd->n_vocab; i++) {
        int32_t id = bd->vocab_id[i];
        if (t->flags[id] & TOK_F_PRESENT) {
            ragd_buf_free(&key);
            return ragd_err_set(err, RAGD_EFORMAT, "vocabulary id %d is used twice", id);
        }
        t->flags[id] = TOK_F_PRESENT;
        t->str_off[id] = (uint32_t)t->strs.len;
        t->str_len[id] = (uint32_t)bd->vocab_len[i];
        ragd_buf_append(&t->strs, bd->vocab[i], bd->vocab_len[i]);
        ragd_buf_putc(&t->strs, '\0');
        tok_hash_put(&t->str2id, bd->vocab[i], bd->vocab_len[i], id);
        model_key(t, bd->vocab[i], bd->vocab_len[i], &key);
        tok_hash_put(&t->key2id, key.data, key.len, id);
        if (t->byte_mode && key.len == 1) t->byte_id[(uint8_t)key.data[0]] = id;
    }
    /* byte fallback tokens */
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_tok[b] = tok_hash_get(&t->str2id, name, 6);
    }
    /* merges */
    size_t cap = 16;
    while (cap < bd->n_merges * 2 + 16) cap <<= 1;
    t->merges.cap = cap;
    t->merges.keys = ragd_xcalloc(cap, sizeof *t->merges.keys);
    t->merges.rank = ragd_xcalloc(cap, sizeof *t->merges.rank);
    t->merges.merged = ragd_xcalloc(cap, sizeof *t->merges.merged);
    ragd_buf cat = {0};
    ragd_status st = RAGD_OK;
    for (size_t i = 0; i < bd->n_merges && !st; i++) {
        const char *a = bd->merge_a[i], *b = bd->merge_b[i];
        size_t al = bd->merge_a_len[i], bl = bd->merge_b_len[i];
        if (!ragd_utf8_valid(a, al, NULL) || !ragd_utf8_valid(b, bl, NULL)) {
            st = ragd_err_set(err, RAGD_EFORMAT, "merge %zu is not valid UTF-8", i);
            break;
        }
        model_key(t, a, al, &key);
        int32_t ia = tok_hash_get(&t->key2id, key.data, key.len);
        model_key(t, b, bl, &key);
        int32_t ib = tok_hash_get(&t->key2id, key.data, key.len);
        ragd_buf_reset(&cat);
        ragd_buf_append(&cat, a, al);
        size_t skip = t->cont_prefix_len <= bl ? t->cont_prefix_len : bl;
        ragd_buf_append(&cat, b + skip, bl - skip);
        model_key(t, cat.data, cat.len, &key);
        int32_t im = tok_hash_get(&t->key2id, key.data, key.len);
        if (ia < 0 || ib < 0 || im < 0)
            st = ragd_err_set(err, RAGD_EFORMAT, "merge %zu ('%.*s' '%.*s'): %s is not in the vocabulary", i,
                              (int)al, a, (int)bl, b, ia < 0 ? "the left token" : ib < 0 ? "the right token"
                                                                                       : "the merged token");
        else merges_put(&t->merges, ia, ib, (uint32_t)i, im);
    }
    ragd_buf_free(&cat);
    ragd_buf_free(&key);
    if (st) return st;

    /* added tokens: override ids, string lookup, tries. HF gives a normalized added token (normalized
     * = true, with a normalizer) its normalized content as id_to_token / decode string; lookups by
     * the original content still find it. */
    tok_ws_key_create(t);
    tok_ws *ws = NULL;
    for (size_t i = 0; i < t->n_added && !st; i++) {
        const tok_added *a = &t->added[i];
        const char *s = a->content;
        size_t n = a->len;
        if (a->len && a->normalized && t->n_norms) {
            if (!ws) { ws = ragd_xcalloc(1, sizeof *ws); ws->temporary = true; }
            st = tok_normalize(t, ws, a->content, a->len, err);
            if (st) break;
            s = ws->norm.data;
            n = ws->norm.len;
        }
        if (a->len) trie_insert(a->normalized ? &t->trie_norm : &t->trie_raw, (const uint8_t *)s, n, (int32_t)i);
        t->flags[a->id] = TOK_F_PRESENT | TOK_F_ADDED | (a->special ? TOK_F_SPECIAL : 0);
        t->str_off[a->id] = (uint32_t)t->strs.len;
        t->str_len[a->id] = (uint32_t)n;
        ragd_buf_append(&t->strs, s, n);
        ragd_buf_putc(&t->strs, '\0');
        tok_hash_put(&t->str2id, a->content, a->len, a->id);
    }
    tok_ws_free(ws);
    if (st) return st;

    /* decoder bytes (after all strings are in place: strs may move while appending) */
    size_t n_str = t->strs.len;
    ragd_buf dec = {0};
    for (size_t id = 0; id < t->n_ids; id++) {
        if (!(t->flags[id] & TOK_F_PRESENT)) continue;
        t->dec_off[id] = (uint32_t)(n_str + dec.len);
        size_t before = dec.len;
        decoder_bytes(t, t->strs.data + t->str_off[id], t->str_len[id], &dec);
        t->dec_len[id] = (uint32_t)(dec.len - before);
        if (t->decoder == TOK_DEC_WORDPIECE || t->decoder == TOK_DEC_METASPACE) {
            t->dec0_off[id] = (uint32_t)(n_str + dec.len);
            before = dec.len;
            decoder_text(t, t->strs.data + t->str_off[id], t->str_len[id], true, &dec);
            t->dec0_len[id] = (uint32_t)(dec.len - before);
        } else {
            t->dec0_off[id] = t->dec_off[id];
            t->dec0_len[id] = t->dec_len[id];
        }
    }
    ragd_buf_append(&t->strs, dec.data, dec.len);
    ragd_buf_free(&dec);
    if (t->strs.len >= UINT32_MAX) return ragd_err_set(err, RAGD_EFORMAT, "vocabulary strings exceed 4 GiB");
    return RAGD_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* tokenizer_config.json */

static int32_t config_token(const ragd_tokenizer *t, json_t *root, const char *key) {
    json_t *v = json_object_get(root, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v)) return -1;
    return tok_hash_get(&t->str2id, json_string_value(v), json_string_length(v));
}

/* *dst = the file dir/name when *dst is unset and the file exists */
static ragd_status read_file_if(char **dst, const char *dir, const char *name, ragd_err *err) {
    if (*dst) return RAGD_OK;
    char *path = ragd_path_join(dir, name);
    ragd_status st = RAGD_OK;
    if (ragd_file_exists(path)) {
        size_t n;
        st = ragd_file_read(path, dst, &n, err);
    }
    free(path);
    return st;
}

/* chat_template.jinja and additional_chat_templates/tool_use.jinja (where transformers ≥ 4.53 saves
 * the default and the named templates) when the config has none */
static ragd_status read_jinja(ragd_tokenizer *t, const char *dir, ragd_err *err) {
    ragd_status st = read_file_if(&t->chat_template, dir, "chat_template.jinja", err);
    if (!st) st = read_file_if(&t->chat_template_tool_use, dir, "additional_chat_templates/tool_use.jinja", err);
    return st;
}

ragd_status tok_read_config(ragd_tokenizer *t, const char *dir, ragd_err *err) {
    char *path = ragd_path_join(dir, "tokenizer_config.json");
    if (!ragd_file_exists(path)) { free(path); return read_jinja(t, dir, err); }
    json_error_t je;
    json_t *root = json_load_file(path, JSON_ALLOW_NUL, &je);
    if (!root) {
        ragd_status st = ragd_err_set(err, RAGD_EFORMAT, "%s:%d: %s", path, je.line, je.text);
        free(path);
        return st;
    }
    free(path);
    json_t *ct = json_object_get(root, "chat_template");
    if (json_is_string(ct)) t->chat_template = ragd_xstrdup(json_string_value(ct));
    else if (json_is_array(ct)) {
        size_t i;
        json_t *e;
        json_array_foreach(ct, i, e) {
            json_t *name = json_object_get(e, "name"), *tpl = json_object_get(e, "template");
            if (!json_is_string(name) || !json_is_string(tpl)) continue;
            char **dst = !strcmp(json_string_value(name), "default") ? &t->chat_template
                       : !strcmp(json_string_value(name), "tool_use") ? &t->chat_template_tool_use : NULL;
            if (dst && !*dst) *dst = ragd_xstrdup(json_string_value(tpl));
        }
    }
    t->bos_id = config_token(t, root, "bos_token");
    t->eos_id = config_token(t, root, "eos_token");
    t->pad_id = config_token(t, root, "pad_token");
    json_t *mml = json_object_get(root, "model_max_length"); /* transformers writes 1e30 for "none" */
    if (json_is_integer(mml) && json_integer_value(mml) > 0 && json_integer_value(mml) <= INT32_MAX)
        t->model_max_length = json_integer_value(mml);
    bool add_bos = json_is_true(json_object_get(root, "add_bos_token"));
    bool add_eos = json_is_true(json_object_get(root, "add_eos_token"));
    json_decref(root);
    /* transformers' fast tokenizers honour add_bos/add_eos when the tokenizer.json post-processor does
     * not already add special tokens */
    if (!t->tpl && ((add_bos && t->bos_id >= 0) || (add_eos && t->eos_id >= 0))) {
        t->tpl = ragd_xcalloc(3, sizeof *t->tpl);
        if (add_bos && t->bos_id >= 0) {
            t->tpl[t->n_tpl].ids = ragd_xmalloc(sizeof(int32_t));
            t->tpl[t->n_tpl].ids[0] = t->bos_id;
            t->tpl[t->n_tpl++].n_ids = 1;
        }
        t->tpl[t->n_tpl++].is_seq = true;
        if (add_eos && t->eos_id >= 0) {
            t->tpl[t->n_tpl].ids = ragd_xmalloc(sizeof(int32_t));
            t->tpl[t->n_tpl].ids[0] = t->eos_id;
            t->tpl[t->n_tpl++].n_ids = 1;
        }
    }
    return read_jinja(t, dir, err);
}

/* ---------------------------------------------------------------------------------------------- */
/* accessors and free */

void ragd_tokenizer_free(ragd_tokenizer *t) {
    if (!t) return;
    tok_ws_free_all(t);
    free(t->str_off); free(t->str_len); free(t->dec_off); free(t->dec_len); free(t->flags);
    free(t->dec0_off); free(t->dec0_len);
    free(t->uscore);
    tok_utrie_free(&t->utrie);
    ragd_buf_free(&t->strs);
    tok_hash_free(&t->str2id);
    tok_hash_free(&t->key2id);
    free(t->merges.keys); free(t->merges.rank); free(t->merges.merged);
    free(t->cont_prefix); free(t->eow_suffix);
    for (size_t i = 0; i < t->n_norms; i++) {
        free(t->norms[i].pattern);
        free(t->norms[i].content);
        if (t->norms[i].re) pcre2_code_free(t->norms[i].re);
        tok_charsmap_free(t->norms[i].cmap);
    }
    free(t->norms);
    for (size_t i = 0; i < t->n_pres; i++) {
        if (t->pres[i].re) pcre2_code_free(t->pres[i].re);
        free(t->pres[i].str);
    }
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    trie_free(&t->trie_raw);
    trie_free(&t->trie_norm);
    for (size_t i = 0; i < t->n_tpl; i++) free(t->tpl[i].ids);
    free(t->tpl);
    for (size_t i = 0; i < t->n_tpl_pair; i++) free(t->tpl_pair[i].ids);
    free(t->tpl_pair);
    free(t->chat_template);
    free(t->chat_template_tool_use);
    free(t);
}

size_t ragd_tokenizer_vocab_size(const ragd_tokenizer *t) { return t->n_ids; }

int32_t ragd_tokenizer_token_to_id(const ragd_tokenizer *t, const char *token) {
    return tok_hash_get(&t->str2id, token, strlen(token));
}

const char *ragd_tokenizer_id_to_token(const ragd_tokenizer *t, int32_t id) {
    if (id < 0 || (size_t)id >= t->n_ids || !(t->flags[id] & TOK_F_PRESENT)) return NULL;
    return t->strs.data + t->str_off[id];
}

bool ragd_tokenizer_is_special(const ragd_tokenizer *t, int32_t id) {
    return id >= 0 && (size_t)id < t->n_ids && (t->flags[id] & TOK_F_SPECIAL);
}

const char *ragd_tokenizer_chat_template(const ragd_tokenizer *t) { return t->chat_template; }
const char *ragd_tokenizer_chat_template_tool_use(const ragd_tokenizer *t) { return t->chat_template_tool_use; }
int32_t ragd_tokenizer_bos_id(const ragd_tokenizer *t) { return t->bos_id; }
int32_t ragd_tokenizer_eos_id(const ragd_tokenizer *t) { return t->eos_id; }
int32_t ragd_tokenizer_pad_id(const ragd_tokenizer *t) { return t->pad_id; }
int64_t ragd_tokenizer_model_max_length(const ragd_tokenizer *t) { return t->model_max_length; }
