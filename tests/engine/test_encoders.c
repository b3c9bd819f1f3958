/* test_encoders.c — BERT and XLM-RoBERTa on the CPU backend against transformers fp32.
 *
 * Fixtures (tests/engine/encoders/, written by make_encoder_fixtures.py): tiny random-weight BertModel,
 * BertForSequenceClassification (gelu_new), XLMRobertaModel, XLMRobertaForSequenceClassification loaded
 * from their HF folders, and transformers' last hidden states, cls / mean / max pooled vectors and logits
 * — and NVIDIA's LlamaBidirectionalModel / ...ForSequenceClassification (a tiny LlamaModel /
 * LlamaForSequenceClassification with llama3 RoPE and bf16 weights run without the causal mask, mean
 * pooled, score / temperature; config.json as the retrievers ship it) — for inputs given as ids (+ token type ids; a pair with types 0/1; a pad id inside an XLM-R sequence).
 * Checks: every number within 1e-4 (absolute; the max absolute and relative errors are printed per
 * fixture); batch invariance bit for bit (each input alone = all inputs in one batch = the batch reversed,
 * for hidden states, pooled vectors and logits; 1 thread = 3 threads); the refusals (token type out of
 * range, classify without a head, a KV cache for an encoder).
 */
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/cpu/cpu_internal.h"
#include "engine/engine.h"
#include "tasks/tasks.h"
#include "test.h"

#define TOL 1e-4
#define NP 4 /* pooling modes checked: cls, mean, max, last */

typedef struct {
    double max_abs, max_rel;
    size_t n;
} errs;

static void cmp(errs *e, const float *got, json_t *want, size_t n, const char *what, const char *model, int ci) {
    if (!json_is_array(want) || json_array_size(want) != n) {
        fprintf(stderr, "%s case %d %s: fixture has %zu values, expected %zu\n", model, ci, what,
                json_is_array(want) ? json_array_size(want) : 0, n);
        CHECK(false);
        return;
    }
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double w = json_number_value(json_array_get(want, i)), d = fabs((double)got[i] - w);
        double rel = d / (fabs(w) > 1e-3 ? fabs(w) : 1e-3);
        if (d > e->max_abs) e->max_abs = d;
        if (rel > e->max_rel) e->max_rel = rel;
        if (d > worst) worst = d;
    }
    e->n += n;
    if (worst > TOL) fprintf(stderr, "%s case %d %s: max abs error %.3g > %g\n", model, ci, what, worst, TOL);
    CHECK(worst <= TOL);
}

typedef struct {
    int n;
    int32_t ids[64], types[64];
    bool has_types;
    json_t *j;
} enc_case;

static ragd_engine *engine_for(const ragd_model *m, int n_threads) {
    ragd_engine_opts o = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = 256, .max_seqs = 16, .max_ctx = 64,
                          .n_threads = n_threads};
    ragd_engine *e = NULL;
    ragd_err err = {0};
    if (ragd_engine_create(m, &o, &e, &err)) fprintf(stderr, "engine: %s\n", ragd_err_msg(&err));
    ragd_err_free(&err);
    CHECK(e != NULL);
    return e;
}

/* Packs cases in order ord[0..nc) into one batch. */
static void pack(const enc_case *cs, const int *ord, int nc, int32_t *tok, int32_t *typ, int32_t *ss, bool *any_types) {
    ss[0] = 0;
    *any_types = false;
    for (int i = 0; i < nc; i++) {
        const enc_case *c = &cs[ord[i]];
        for (int t = 0; t < c->n; t++) {
            tok[ss[i] + t] = c->ids[t];
            typ[ss[i] + t] = c->has_types ? c->types[t] : 0;
        }
        *any_types |= c->has_types;
        ss[i + 1] = ss[i] + c->n;
    }
}

/* pooled (NP modes) and logits of a batch: pooled [NP][n_seqs][E], logits [n_seqs][n_labels] */
static void run_tasks(ragd_engine *e, const ragd_batch *b, int E, int L, float *pooled, float *logits) {
    ragd_err err = {0};
    const ragd_pooling modes[NP] = {RAGD_POOL_CLS, RAGD_POOL_MEAN, RAGD_POOL_MAX, RAGD_POOL_LAST};
    for (int k = 0; k < NP; k++) {
        ragd_status st = ragd_engine_pool(e, b, modes[k], pooled + (size_t)k * b->n_seqs * E, &err);
        if (st) fprintf(stderr, "pool: %s\n", ragd_err_msg(&err));
        CHECK(st == RAGD_OK);
    }
    if (L) {
        ragd_status st = ragd_engine_classify(e, b, logits, &err);
        if (st) fprintf(stderr, "classify: %s\n", ragd_err_msg(&err));
        CHECK(st == RAGD_OK);
    }
    ragd_err_free(&err);
}

static void test_model(const char *name, ragd_arch arch, ragd_head_kind head, int n_labels) {
    const char *src = getenv("RAGD_SRC") ? getenv("RAGD_SRC") : ".";
    char dir[4096], fx[4096];
    snprintf(dir, sizeof dir, "%s/tests/engine/encoders/%s", src, name);
    snprintf(fx, sizeof fx, "%s/tests/engine/encoders/%s.json", src, name);
    ragd_err err = {0};
    ragd_model *m = NULL;
    if (ragd_model_load(dir, &m, &err)) fprintf(stderr, "%s: %s\n", name, ragd_err_msg(&err));
    ragd_err_free(&err);
    CHECK(m != NULL);
    json_error_t jerr;
    json_t *root = json_load_file(fx, 0, &jerr);
    if (!root) fprintf(stderr, "%s: %s\n", fx, jerr.text);
    CHECK(root != NULL);
    if (!m || !root) {
        ragd_model_free(m);
        json_decref(root);
        return;
    }
    const ragd_model_config *c = &m->cfg;
    CHECK_EQ_INT(c->arch, arch);
    CHECK_EQ_INT(c->head, head);
    CHECK_EQ_INT(c->n_labels, n_labels);
    if (arch == RAGD_ARCH_LLAMA_BIDIR) /* decoder blocks without the causal mask, config pooling avg */
        CHECK(c->bidirectional && c->norm == RAGD_NORM_RMS && !c->post_norm && c->pos == RAGD_POS_ROPE &&
              c->has_cfg_pooling && c->cfg_pooling == RAGD_POOL_MEAN && c->rope_type == 1);
    else CHECK(c->bidirectional && c->norm == RAGD_NORM_LAYER && c->post_norm && c->pos == RAGD_POS_ABSOLUTE);
    int E = c->n_embd, L = n_labels;

    json_t *jc = json_object_get(root, "cases");
    int nc = (int)json_array_size(jc);
    CHECK(nc > 0 && nc <= 16);
    enc_case cs[16];
    int total = 0;
    for (int i = 0; i < nc; i++) {
        json_t *j = json_array_get(jc, i), *ids = json_object_get(j, "ids"), *ty = json_object_get(j, "type_ids");
        cs[i].j = j;
        cs[i].n = (int)json_array_size(ids);
        cs[i].has_types = json_is_array(ty);
        RAGD_ASSERT(cs[i].n <= 64);
        for (int t = 0; t < cs[i].n; t++) {
            cs[i].ids[t] = (int32_t)json_integer_value(json_array_get(ids, t));
            cs[i].types[t] = cs[i].has_types ? (int32_t)json_integer_value(json_array_get(ty, t)) : 0;
        }
        total += cs[i].n;
    }

    ragd_engine *e = engine_for(m, 0), *e1 = engine_for(m, 1), *e3 = engine_for(m, 3);
    if (!e || !e1 || !e3) goto done;
    ragd_cpu *s = ragd_engine_backend_state(e);
    errs eh = {0}, ep = {0}, el = {0};
    float *alone_h = calloc((size_t)total * E, sizeof(float));     /* [total, E] hidden states, each alone */
    float *alone_p = calloc((size_t)NP * nc * E, sizeof(float));   /* [NP][nc][E] */
    float *hid = calloc((size_t)64 * E, sizeof(float));            /* [n, E] one case's final rows */
    float *alone_l = calloc((size_t)nc * (L ? L : 1), sizeof(float));
    int32_t tok[256], typ[256], ss[17];
    bool any;
    int off = 0;
    for (int i = 0; i < nc; i++) {
        pack(cs, &i, 1, tok, typ, ss, &any);
        ragd_batch b = {1, tok, ss, any ? typ : NULL};
        float pooled[NP * 64], logits[16];
        run_tasks(e, &b, E, L, pooled, logits);
        cmp(&ep, pooled, json_object_get(cs[i].j, "cls"), (size_t)E, "cls", name, i);
        cmp(&ep, pooled + E, json_object_get(cs[i].j, "mean"), (size_t)E, "mean", name, i);
        cmp(&ep, pooled + 2 * E, json_object_get(cs[i].j, "max"), (size_t)E, "max", name, i);
        cmp(&ep, pooled + 3 * E, json_object_get(cs[i].j, "last"), (size_t)E, "last", name, i);
        for (int k = 0; k < NP; k++) memcpy(alone_p + ((size_t)k * nc + i) * E, pooled + (size_t)k * E, sizeof(float) * E);
        if (L) {
            cmp(&el, logits, json_object_get(cs[i].j, "logits"), (size_t)L, "logits", name, i);
            memcpy(alone_l + (size_t)i * L, logits, sizeof(float) * L);
        }
        ragd_cpu_forward(s, &b, NULL); /* white box: the last hidden states (decoders: after the final norm) */
        memcpy(hid, s->x, sizeof(float) * (size_t)cs[i].n * E);
        if (s->gvec[RAGD_W_OUT_NORM]) ragd_cpu_rmsnorm(hid, s->gvec[RAGD_W_OUT_NORM], c->rms_eps, cs[i].n, E, hid);
        cmp(&eh, hid, json_object_get(cs[i].j, "hidden"), (size_t)cs[i].n * E, "hidden", name, i);
        memcpy(alone_h + (size_t)off * E, s->x, sizeof(float) * (size_t)cs[i].n * E);
        off += cs[i].n;
    }
    printf("%-9s vs transformers: hidden max abs %.3g rel %.3g (%zu values); pooled max abs %.3g rel %.3g (%zu); "
           "logits max abs %.3g rel %.3g (%zu)\n",
           name, eh.max_abs, eh.max_rel, eh.n, ep.max_abs, ep.max_rel, ep.n, el.max_abs, el.max_rel, el.n);

    /* batch invariance: all cases in one batch, forward and reversed, and with other thread counts */
    int ord[16], rev[16];
    for (int i = 0; i < nc; i++) ord[i] = i, rev[i] = nc - 1 - i;
    int n_same = 0, n_cmp = 0;
    for (int variant = 0; variant < 4; variant++) {
        const int *o = variant == 1 ? rev : ord;
        ragd_engine *ev = variant == 2 ? e1 : variant == 3 ? e3 : e;
        pack(cs, o, nc, tok, typ, ss, &any);
        ragd_batch b = {nc, tok, ss, any ? typ : NULL};
        float *pooled = calloc((size_t)NP * nc * E, sizeof(float)), logits[16 * 16];
        run_tasks(ev, &b, E, L, pooled, logits);
        for (int i = 0; i < nc; i++) {
            int ci = o[i];
            for (int k = 0; k < NP; k++) {
                n_cmp++;
                n_same += !memcmp(pooled + ((size_t)k * nc + i) * E, alone_p + ((size_t)k * nc + ci) * E, sizeof(float) * E);
            }
            if (L) {
                n_cmp++;
                n_same += !memcmp(logits + (size_t)i * L, alone_l + (size_t)ci * L, sizeof(float) * L);
            }
        }
        ragd_cpu *sv = ragd_engine_backend_state(ev);
        ragd_cpu_forward(sv, &b, NULL);
        for (int i = 0; i < nc; i++) {
            int ci = o[i], at = 0;
            for (int k = 0; k < ci; k++) at += cs[k].n;
            n_cmp++;
            n_same += !memcmp(sv->x + (size_t)ss[i] * E, alone_h + (size_t)at * E, sizeof(float) * (size_t)cs[ci].n * E);
        }
        free(pooled);
    }
    printf("%-9s batch invariance: %d/%d results bit-identical (alone = batch of %d = reversed = 1 thread = 3 threads)\n",
           name, n_same, n_cmp, nc);
    CHECK_EQ_INT(n_same, n_cmp);

    /* refusals */
    {
        int32_t t2[2] = {5, 6}, y2[2] = {0, 2}, s2[2] = {0, 2};
        ragd_batch bad = {1, t2, s2, y2};
        float out[64 * NP];
        /* type 2 ≥ n_type_vocab; a model without token types takes none */
        CHECK_EQ_INT(ragd_engine_pool(e, &bad, RAGD_POOL_CLS, out, &err), c->n_type_vocab ? RAGD_ERANGE : RAGD_EINVAL);
        ragd_err_free(&err);
        ragd_batch ok = {1, t2, s2, NULL};
        if (!L) {
            CHECK_EQ_INT(ragd_engine_classify(e, &ok, out, &err), RAGD_EUNSUPPORTED);
            ragd_err_free(&err);
        }
        CHECK_EQ_INT(ragd_engine_score(e, &ok, t2, 1, out, &err), RAGD_EUNSUPPORTED); /* no lm_head */
        ragd_err_free(&err);
        ragd_engine_opts o = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = 64, .max_seqs = 2, .max_ctx = 32,
                              .kv_cache = true};
        ragd_engine *eg = NULL;
        CHECK_EQ_INT(ragd_engine_create(m, &o, &eg, &err), RAGD_EUNSUPPORTED);
        CHECK(err.msg && strstr(err.msg, "cannot generate"));
        ragd_err_free(&err);
        o.kv_cache = false;
        o.max_ctx = c->max_pos + 1; /* beyond the position table (RoBERTa: less its offset) */
        CHECK_EQ_INT(ragd_engine_create(m, &o, &eg, &err), RAGD_ERANGE);
        ragd_err_free(&err);
    }
    free(alone_h);
    free(hid);
    free(alone_p);
    free(alone_l);
done:
    ragd_engine_free(e);
    ragd_engine_free(e1);
    ragd_engine_free(e3);
    json_decref(root);
    ragd_model_free(m);
}

static void test_st_files(void) {
    const char *src = getenv("RAGD_SRC") ? getenv("RAGD_SRC") : ".";
    char dir[4096];
    ragd_err err = {0};
    ragd_model *m = NULL;
    snprintf(dir, sizeof dir, "%s/tests/engine/encoders/bert", src);
    CHECK_EQ_INT(ragd_model_load(dir, &m, &err), RAGD_OK);
    CHECK(m && m->has_st_pooling && m->pooling == RAGD_POOL_MEAN && m->st_normalize);
    CHECK(m && m->cls_dense.data && !m->cls_out.data); /* a BertModel's pooler is loaded, unused */
    CHECK(m && m->cfg.n_type_vocab == 2 && m->cfg.pos_offset == 0 && m->cfg.max_pos == 64);
    ragd_model_free(m);
    m = NULL;
    snprintf(dir, sizeof dir, "%s/tests/engine/encoders/xlmr", src);
    CHECK_EQ_INT(ragd_model_load(dir, &m, &err), RAGD_OK);
    CHECK(m && m->has_st_pooling && m->pooling == RAGD_POOL_CLS);
    CHECK(m && m->cfg.pos_offset == 2 && m->cfg.pos_skip_pad && m->cfg.max_pos == 64 && m->cfg.n_type_vocab == 1);
    ragd_model_free(m);
    ragd_err_free(&err);
}

/* The cross-encoder rerank task: the pair template (BERT [CLS] q [SEP] d [SEP] with types 0/1; XLM-R
 * <s> q </s></s> d </s>) and ragd_rerank_docs = sigmoid of the classifier on those ids and types. */
static void test_pair(const char *name, bool bert) {
    const char *src = getenv("RAGD_SRC") ? getenv("RAGD_SRC") : ".";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/engine/encoders/%s", src, name);
    ragd_err err = {0};
    ragd_model *m = NULL;
    CHECK_EQ_INT(ragd_model_load(dir, &m, &err), RAGD_OK);
    if (!m) return;
    int32_t yes, no;
    CHECK_EQ_INT(ragd_rerank_token_ids(m, &yes, &no, &err), RAGD_OK);
    CHECK(ragd_rerank_is_cross_encoder(m) && yes == -1 && no == -1);
    const char *q = "what is a cat", *docs[2] = {"a cat is an animal", "hello"};
    ragd_tok_ids tq = {0}, td = {0}, pair = {0};
    CHECK_EQ_INT(ragd_tokenizer_encode(m->tok, q, strlen(q), false, &tq, &err), RAGD_OK);
    CHECK_EQ_INT(ragd_tokenizer_encode(m->tok, docs[0], strlen(docs[0]), false, &td, &err), RAGD_OK);
    int32_t seg_a = -1;
    CHECK_EQ_INT(ragd_rerank_prepare(m, q, docs[0], NULL, &pair, &seg_a, &err), RAGD_OK);
    int32_t cls = ragd_tokenizer_token_to_id(m->tok, bert ? "[CLS]" : "<s>");
    int32_t sep = ragd_tokenizer_token_to_id(m->tok, bert ? "[SEP]" : "</s>");
    ragd_tok_ids want = {0};
    ragd_tok_ids_push(&want, cls);
    for (size_t i = 0; i < tq.n; i++) ragd_tok_ids_push(&want, tq.ids[i]);
    ragd_tok_ids_push(&want, sep);
    if (!bert) ragd_tok_ids_push(&want, sep);
    for (size_t i = 0; i < td.n; i++) ragd_tok_ids_push(&want, td.ids[i]);
    ragd_tok_ids_push(&want, sep);
    CHECK(pair.n == want.n && !memcmp(pair.ids, want.ids, want.n * sizeof(int32_t)));
    CHECK_EQ_INT(seg_a, bert ? (int)tq.n + 2 : 0);

    ragd_engine *e = engine_for(m, 0);
    float scores[2], logit;
    CHECK_EQ_INT(ragd_rerank_docs(e, q, docs, 2, NULL, scores, NULL, &err), RAGD_OK);
    int32_t types[64], ss[2] = {0, (int32_t)pair.n};
    ragd_rerank_type_ids(seg_a, (int)pair.n, types);
    ragd_batch b = {1, pair.ids, ss, bert ? types : NULL};
    CHECK_EQ_INT(ragd_engine_classify(e, &b, &logit, &err), RAGD_OK);
    CHECK(scores[0] == ragd_rerank_score_from_logit(logit) && scores[0] > 0 && scores[0] < 1);
    if (bert) { /* the types matter: all-zero types give another logit */
        float l0;
        b.type_ids = NULL;
        CHECK_EQ_INT(ragd_engine_classify(e, &b, &l0, &err), RAGD_OK);
        CHECK(l0 != logit);
    }
    ragd_err_free(&err);
    ragd_engine_free(e);
    ragd_tok_ids_free(&tq);
    ragd_tok_ids_free(&td);
    ragd_tok_ids_free(&pair);
    ragd_tok_ids_free(&want);
    ragd_model_free(m);
}

/* NVIDIA's reranker: its score(pooled) / temperature head is the engine's; the rerank task feeds it one
 * text "question:{q} \n \n passage:{d}" with the tokenizer's special tokens, cut at the end. */
static void test_llama_rerank_task(void) {
    const char *src = getenv("RAGD_SRC") ? getenv("RAGD_SRC") : ".";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/engine/encoders/llama_rerank", src);
    ragd_err err = {0};
    ragd_model *m = NULL;
    CHECK_EQ_INT(ragd_model_load(dir, &m, &err), RAGD_OK);
    if (!m) return;
    CHECK(m->cfg.head_temperature == 0.2f && m->cls_out.data && m->cls_out.dtype == RAGD_DT_BF16);
    int32_t yes, no;
    CHECK_EQ_INT(ragd_rerank_token_ids(m, &yes, &no, &err), RAGD_OK);
    CHECK(yes == -1 && no == -1);
    const char *text = "question:what is it? \n \n passage:a b c d e f";
    ragd_tok_ids want = {0}, got = {0}, cut = {0};
    CHECK_EQ_INT(ragd_tokenizer_encode(m->tok, text, strlen(text), true, &want, &err), RAGD_OK);
    int32_t seg_a = -1;
    CHECK_EQ_INT(ragd_rerank_prepare(m, "what is it?", "a b c d e f", NULL, &got, &seg_a, &err), RAGD_OK);
    CHECK(want.n > 8 && got.n == want.n && !memcmp(got.ids, want.ids, want.n * sizeof(int32_t)) && seg_a == 0);
    ragd_tok_trunc tr = {RAGD_TOK_TRUNC_LONGEST_FIRST, 5, false};
    CHECK_EQ_INT(ragd_rerank_prepare_trunc(m, "what is it?", "a b c d e f", NULL, &tr, &cut, NULL, &err), RAGD_OK);
    CHECK(cut.n == 5 && !memcmp(cut.ids, want.ids, 5 * sizeof(int32_t)));
    ragd_tok_ids_free(&want);
    ragd_tok_ids_free(&got);
    ragd_tok_ids_free(&cut);
    ragd_err_free(&err);
    ragd_model_free(m);
}

/* Writes dst/model.safetensors from src's tensors, each renamed by rename() (NULL: dropped), plus an I64
 * tensor `extra` [1, 64] (arange) when extra != NULL; copies config.json and the tokenizer files. */
static void write_variant(const char *src, const char *dst, char *(*rename)(const char *), const char *extra) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", src);
    ragd_mmap mm;
    ragd_err err = {0};
    RAGD_ASSERT(ragd_mmap_open(path, &mm, &err) == RAGD_OK);
    ragd_st_file f = {0};
    RAGD_ASSERT(ragd_safetensors_parse(mm.data, mm.size, "model.safetensors", &f, &err) == RAGD_OK);
    ragd_buf hdr = {0}, data = {0};
    ragd_buf_putc(&hdr, '{');
    int n = 0;
    for (size_t i = 0; i < f.n_entries; i++) {
        char *nm = rename(f.entries[i].name);
        if (!nm) continue;
        ragd_buf_printf(&hdr, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", n++ ? "," : "", nm, ragd_dtype_name(f.entries[i].dtype));
        for (int d = 0; d < f.entries[i].n_dims; d++) ragd_buf_printf(&hdr, "%s%lld", d ? "," : "", (long long)f.entries[i].shape[d]);
        ragd_buf_printf(&hdr, "],\"data_offsets\":[%zu,%zu]}", data.len, data.len + f.entries[i].nbytes);
        ragd_buf_append(&data, (const char *)mm.data + f.entries[i].offset, f.entries[i].nbytes);
        free(nm);
    }
    if (extra) {
        ragd_buf_printf(&hdr, ",\"%s\":{\"dtype\":\"I64\",\"shape\":[1,64],\"data_offsets\":[%zu,%zu]}", extra, data.len,
                        data.len + 64 * 8);
        for (int64_t k = 0; k < 64; k++) ragd_buf_append(&data, (const char *)&k, 8);
    }
    ragd_buf_putc(&hdr, '}');
    mkdir(dst, 0755);
    snprintf(path, sizeof path, "%s/model.safetensors", dst);
    FILE *o = fopen(path, "wb");
    uint64_t hl = hdr.len;
    fwrite(&hl, 8, 1, o);
    fwrite(hdr.data, 1, hdr.len, o);
    fwrite(data.data, 1, data.len, o);
    fclose(o);
    const char *files[] = {"config.json", "tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 3; i++) {
        char *text;
        size_t len;
        snprintf(path, sizeof path, "%s/%s", src, files[i]);
        RAGD_ASSERT(ragd_file_read(path, &text, &len, &err) == RAGD_OK);
        snprintf(path, sizeof path, "%s/%s", dst, files[i]);
        o = fopen(path, "wb");
        fwrite(text, 1, len, o);
        fclose(o);
        free(text);
    }
    ragd_buf_free(&hdr);
    ragd_buf_free(&data);
    ragd_safetensors_free(&f);
    ragd_mmap_close(&mm);
}

/* "bert." prefix and LayerNorm gamma / beta, as checkpoints of transformers 3.x spell them */
static char *old_spelling(const char *name) {
    ragd_buf b = {0};
    ragd_buf_printf(&b, "bert.%s", name);
    char *p;
    if ((p = strstr(b.data, "LayerNorm.weight"))) memcpy(p + 10, "gamma\0", 6);
    else if ((p = strstr(b.data, "LayerNorm.bias"))) memcpy(p + 10, "beta", 5);
    return b.data;
}
static char *drop_query_weight(const char *name) { return strstr(name, "0.attention.self.query.weight") ? NULL : ragd_xstrdup(name); }

/* Older checkpoints load to the same bits: "bert." prefix, LayerNorm.gamma/beta, an I64
 * embeddings.position_ids buffer (ignored); an I64 tensor in a weight's place and a missing weight are
 * refused naming the tensor. */
static void test_old_checkpoints(void) {
    const char *src = getenv("RAGD_SRC") ? getenv("RAGD_SRC") : ".";
    char orig[4096], tmpl[] = "/tmp/ragd_enc_XXXXXX", dst[4200];
    snprintf(orig, sizeof orig, "%s/tests/engine/encoders/bert", src);
    RAGD_ASSERT(mkdtemp(tmpl));
    snprintf(dst, sizeof dst, "%s/old", tmpl);
    write_variant(orig, dst, old_spelling, "bert.embeddings.position_ids");
    ragd_err err = {0};
    ragd_model *a = NULL, *b = NULL;
    CHECK_EQ_INT(ragd_model_load(orig, &a, &err), RAGD_OK);
    if (ragd_model_load(dst, &b, &err)) fprintf(stderr, "old spelling: %s\n", ragd_err_msg(&err));
    ragd_err_free(&err);
    CHECK(b != NULL);
    if (a && b) {
        CHECK_STR(b->embd_norm.name, "bert.embeddings.LayerNorm.gamma");
        CHECK_STR(b->layers[1].ffn_norm_b.name, "bert.encoder.layer.1.output.LayerNorm.beta");
        ragd_engine *ea = engine_for(a, 0), *eb = engine_for(b, 0);
        int32_t tok[5] = {5, 17, 250, 3, 99}, ty[5] = {0, 0, 1, 1, 1}, ss[2] = {0, 5};
        ragd_batch bt = {1, tok, ss, ty};
        float pa[32], pb[32];
        CHECK_EQ_INT(ragd_engine_pool(ea, &bt, RAGD_POOL_MEAN, pa, &err), RAGD_OK);
        CHECK_EQ_INT(ragd_engine_pool(eb, &bt, RAGD_POOL_MEAN, pb, &err), RAGD_OK);
        CHECK(!memcmp(pa, pb, sizeof pa));
        ragd_engine_free(ea);
        ragd_engine_free(eb);
    }
    ragd_model_free(b);
    b = NULL;
    snprintf(dst, sizeof dst, "%s/i64", tmpl); /* an I64 tensor where a weight belongs */
    write_variant(orig, dst, drop_query_weight, "encoder.layer.0.attention.self.query.weight");
    CHECK_EQ_INT(ragd_model_load(dst, &b, &err), RAGD_EUNSUPPORTED);
    CHECK(err.msg && strstr(err.msg, "tensor 'encoder.layer.0.attention.self.query.weight': dtype I64 is not supported for a weight"));
    ragd_err_free(&err);
    snprintf(dst, sizeof dst, "%s/missing", tmpl); /* a missing weight: its full name and expected shape */
    write_variant(orig, dst, drop_query_weight, NULL);
    CHECK_EQ_INT(ragd_model_load(dst, &b, &err), RAGD_EFORMAT);
    CHECK(err.msg && strstr(err.msg, "tensor 'encoder.layer.0.attention.self.query.weight' is missing (expected shape [32, 32])"));
    ragd_err_free(&err);
    ragd_model_free(a);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    CHECK(system(cmd) == 0);
}

int main(void) {
    test_model("bert", RAGD_ARCH_BERT, RAGD_HEAD_NONE, 0);
    test_model("bert_cls", RAGD_ARCH_BERT, RAGD_HEAD_CLS, 1);
    test_model("xlmr", RAGD_ARCH_XLMR, RAGD_HEAD_NONE, 0);
    test_model("xlmr_cls", RAGD_ARCH_XLMR, RAGD_HEAD_CLS, 1);
    test_model("llama_bidir", RAGD_ARCH_LLAMA_BIDIR, RAGD_HEAD_NONE, 0);
    test_model("llama_rerank", RAGD_ARCH_LLAMA_BIDIR, RAGD_HEAD_POOL_LINEAR, 1);
    test_llama_rerank_task();
    test_st_files();
    test_old_checkpoints();
    test_pair("bert_cls", true);
    test_pair("xlmr_cls", false);
    TEST_DONE();
}
