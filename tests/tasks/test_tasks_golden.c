/* test_tasks_golden.c — the tasks end to end (tokenizer + engine + finish) against the transformers
 * references: token ids of every input (reported separately, so a tokenizer mismatch is named as such),
 * embeddings incl. instruction and Matryoshka dims (≤ 1e-4), rerank scores (≤ 1e-4), chat renderings
 * (byte-exact) and their ids, greedy generation ids (all 32) and text, and option errors. */
#include <math.h>
#include <stdio.h>

#include "golden.h"
#include "tasks/tasks.h"
#include "test.h"

#define TOL 1e-4

static bool ids_equal(const ragd_tok_ids *got, json_t *want, const char *what, const char *model) {
    bool ok = got->n == json_array_size(want);
    for (size_t i = 0; ok && i < got->n; i++) ok = got->ids[i] == json_integer_value(json_array_get(want, i));
    if (!ok) fprintf(stderr, "%s: token ids of %s differ from the reference (%zu vs %zu ids)\n", model, what, got->n,
                     json_array_size(want));
    return ok;
}

static ragd_engine *engine(ragd_model *m, bool kv) {
    ragd_engine_opts o = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = 700, .max_seqs = 5, .max_ctx = 512,
                          .kv_cache = kv, .n_threads = 2};
    ragd_engine *e = NULL;
    ragd_err err = {0};
    if (ragd_engine_create(m, &o, &e, &err)) fprintf(stderr, "engine: %s\n", ragd_err_msg(&err));
    ragd_err_free(&err);
    return e;
}

static void embed_checks(ragd_model *m, json_t *ref, const char *name) {
    ragd_engine *e = engine(m, false);
    CHECK(e != NULL);
    if (!e) return;
    json_t *items = json_object_get(json_object_get(ref, "embed"), "items");
    int n = (int)json_array_size(items), E = m->cfg.n_embd;
    ragd_err err = {0};
    double emax = 0, dmax = 0;
    float *out = malloc(sizeof(float) * (size_t)n * E);
    /* group texts by instruction so each call has one opts */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            json_t *it = json_array_get(items, (size_t)i);
            const char *instr = json_string_value(json_object_get(it, "instruction"));
            if ((pass == 0) != (instr == NULL)) continue;
            const char *text = json_string_value(json_object_get(it, "text"));
            ragd_embed_opts o = {.instruction = instr, .dimensions = 0, .normalize = true};
            ragd_tok_ids ids = {0};
            CHECK(ragd_embed_prepare(m, text, strlen(text), &o, &ids, &err) == RAGD_OK);
            char what[64];
            snprintf(what, sizeof what, "embed text %d", i);
            CHECK(ids_equal(&ids, json_object_get(it, "ids"), what, name));
            ragd_tok_ids_free(&ids);
        }
    /* all plain texts in one job (several batches: max_seqs 5), then the instructed ones */
    const char **texts = malloc(sizeof(char *) * (size_t)n);
    size_t *lens = malloc(sizeof(size_t) * (size_t)n);
    int *map = malloc(sizeof(int) * (size_t)n);
    for (int dims_i = 0; dims_i < 3; dims_i++) {
        int dims = dims_i == 0 ? 0 : dims_i == 1 ? 16 : 32;
        for (int pass = 0; pass < 2; pass++) {
            int k = 0;
            const char *instr = NULL;
            for (int i = 0; i < n; i++) {
                json_t *it = json_array_get(items, (size_t)i);
                const char *in = json_string_value(json_object_get(it, "instruction"));
                if ((pass == 0) != (in == NULL)) continue;
                if (pass == 1 && instr && strcmp(instr, in)) continue; /* one instruction per job */
                instr = in;
                texts[k] = json_string_value(json_object_get(it, "text"));
                lens[k] = strlen(texts[k]);
                map[k++] = i;
            }
            if (!k) continue;
            ragd_embed_opts o = {.instruction = instr, .dimensions = dims, .normalize = true};
            int d = ragd_embed_dims(m, &o);
            CHECK(ragd_embed_texts(e, texts, lens, k, &o, out, NULL, &err) == RAGD_OK);
            for (int j = 0; j < k; j++) {
                json_t *it = json_array_get(items, (size_t)map[j]);
                json_t *w = dims ? json_object_get(json_object_get(it, "dims"), dims == 16 ? "16" : "32")
                                 : json_object_get(it, "embedding");
                int nw;
                float *want = golden_floats(w, &nw);
                CHECK_EQ_INT(nw, d);
                for (int x = 0; x < d && x < nw; x++) {
                    double ae = fabs((double)out[(size_t)j * d + x] - want[x]);
                    if (dims) dmax = fmax(dmax, ae);
                    else emax = fmax(emax, ae);
                }
                free(want);
            }
        }
    }
    printf("%-18s tasks embed max abs err %.3g, dims %.3g\n", name, emax, dmax);
    CHECK(emax <= TOL);
    CHECK(dmax <= TOL);
    /* option errors */
    ragd_embed_opts bad = {.dimensions = E + 1, .normalize = true};
    CHECK_EQ_INT(ragd_embed_texts(e, texts, lens, 1, &bad, out, NULL, &err), RAGD_ERANGE);
    CHECK(strstr(ragd_err_msg(&err), "dimensions") != NULL);
    bad.dimensions = -1;
    CHECK_EQ_INT(ragd_embed_check_opts(m, &bad, &err), RAGD_ERANGE);
    /* a failing text is named: empty text (no tokens unless a post-processor adds some) and bad UTF-8 */
    const char *bad_texts[3] = {"fine", "also fine", "\xff\xfe"};
    size_t bad_lens[3] = {4, 9, 2};
    ragd_embed_opts ok = {.normalize = true};
    int failed = 0;
    CHECK(ragd_embed_texts(e, bad_texts, bad_lens, 3, &ok, out, &failed, &err) != RAGD_OK);
    CHECK_EQ_INT(failed, 2);
    CHECK(strstr(ragd_err_msg(&err), "text 2") != NULL);
    free(texts);
    free(lens);
    free(map);
    free(out);
    ragd_engine_free(e);
    ragd_err_free(&err);
}

static void rerank_checks(ragd_model *m, json_t *ref, const char *name) {
    json_t *rr = json_object_get(ref, "rerank");
    if (!rr) return;
    ragd_engine *e = engine(m, false);
    CHECK(e != NULL);
    if (!e) return;
    ragd_err err = {0};
    int32_t yes, no;
    CHECK(ragd_rerank_token_ids(m, &yes, &no, &err) == RAGD_OK);
    CHECK_EQ_INT(yes, json_integer_value(json_object_get(rr, "yes_id")));
    CHECK_EQ_INT(no, json_integer_value(json_object_get(rr, "no_id")));
    const char *query = json_string_value(json_object_get(rr, "query"));
    double smax = 0;
    size_t ci;
    json_t *cs;
    json_array_foreach(json_object_get(rr, "cases"), ci, cs) {
        const char *instr = json_string_value(json_object_get(cs, "instruction"));
        json_t *items = json_object_get(cs, "items");
        int n = (int)json_array_size(items);
        const char *docs[16];
        float scores[16];
        for (int i = 0; i < n && i < 16; i++) {
            json_t *it = json_array_get(items, (size_t)i);
            docs[i] = json_string_value(json_object_get(it, "doc"));
            ragd_tok_ids ids = {0};
            CHECK(ragd_rerank_prepare(m, query, docs[i], instr, &ids, NULL, &err) == RAGD_OK);
            CHECK(ids_equal(&ids, json_object_get(it, "ids"), "rerank input", name));
            ragd_tok_ids_free(&ids);
        }
        CHECK(ragd_rerank_docs(e, query, docs, n, instr, scores, NULL, &err) == RAGD_OK);
        for (int i = 0; i < n; i++)
            smax = fmax(smax, fabs(scores[i] - json_number_value(json_object_get(json_array_get(items, (size_t)i), "score"))));
    }
    printf("%-18s tasks rerank max abs err %.3g\n", name, smax);
    CHECK(smax <= TOL);
    ragd_engine_free(e);
    ragd_err_free(&err);
}

static void chat_checks(ragd_model *m, json_t *ref, const char *name) {
    size_t i;
    json_t *c;
    int ok = 0, total = 0;
    ragd_err err = {0};
    json_array_foreach(json_object_get(ref, "chat"), i, c) {
        json_t *ms = json_object_get(c, "messages");
        int n = (int)json_array_size(ms);
        ragd_chat_msg msgs[16];
        for (int k = 0; k < n && k < 16; k++) {
            msgs[k].role = json_string_value(json_object_get(json_array_get(ms, (size_t)k), "role"));
            msgs[k].content = json_string_value(json_object_get(json_array_get(ms, (size_t)k), "content"));
        }
        json_t *th = json_object_get(c, "enable_thinking");
        bool think = !json_is_false(th);
        ragd_buf out = {0};
        CHECK(ragd_chat_render(m, msgs, n, think, &out, &err) == RAGD_OK);
        const char *want = json_string_value(json_object_get(c, "text"));
        total++;
        if (out.data && !strcmp(out.data, want)) ok++;
        else fprintf(stderr, "%s chat %zu differs:\n--- got\n%s\n--- want\n%s\n", name, i, out.data ? out.data : "", want);
        ragd_tok_ids ids = {0};
        CHECK(ragd_chat_prepare(m, msgs, n, think, &ids, &err) == RAGD_OK);
        CHECK(ids_equal(&ids, json_object_get(c, "ids"), "chat rendering", name));
        ragd_tok_ids_free(&ids);
        ragd_buf_free(&out);
    }
    printf("%-18s chat renderings byte-exact: %d/%d\n", name, ok, total);
    CHECK_EQ_INT(ok, total);
    ragd_chat_msg badrole = {"narrator", "x"};
    ragd_buf out = {0};
    if (total) {
        CHECK_EQ_INT(ragd_chat_render(m, &badrole, 1, true, &out, &err), RAGD_EINVAL);
        CHECK(strstr(ragd_err_msg(&err), "message 0") != NULL);
    }
    ragd_buf_free(&out);
    ragd_err_free(&err);
}

static void generate_checks(ragd_model *m, json_t *ref, const char *name) {
    json_t *gen = json_object_get(ref, "generate");
    if (!gen) return;
    ragd_engine *e = engine(m, true);
    CHECK(e != NULL);
    if (!e) return;
    ragd_err err = {0};
    size_t i;
    json_t *g;
    json_array_foreach(gen, i, g) {
        const char *prompt = json_string_value(json_object_get(g, "prompt"));
        ragd_tok_ids pids = {0}, out = {0};
        if (json_is_true(json_object_get(g, "chat"))) {
            json_t *ms = json_object_get(g, "messages");
            ragd_chat_msg msg = {json_string_value(json_object_get(json_array_get(ms, 0), "role")),
                                 json_string_value(json_object_get(json_array_get(ms, 0), "content"))};
            CHECK(ragd_chat_prepare(m, &msg, 1, false, &pids, &err) == RAGD_OK);
        } else {
            CHECK(ragd_tokenizer_encode(m->tok, prompt, strlen(prompt), false, &pids, &err) == RAGD_OK);
        }
        CHECK(ids_equal(&pids, json_object_get(g, "prompt_ids"), "generation prompt", name));
        ragd_gen_opts o = {.sampling = {.temperature = 0, .top_p = 1}, .max_tokens = 32, .ignore_eos = true};
        ragd_buf text = {0};
        ragd_finish fin;
        CHECK(ragd_generate(e, pids.ids, pids.n, &o, &out, &text, &fin, &err) == RAGD_OK);
        CHECK_EQ_INT(fin, RAGD_FINISH_LENGTH);
        int same = 0;
        json_t *want = json_object_get(g, "ids");
        while ((size_t)same < out.n && (size_t)same < json_array_size(want) &&
               out.ids[same] == json_integer_value(json_array_get(want, (size_t)same)))
            same++;
        printf("%-18s tasks generate %zu: %d/%zu greedy ids equal\n", name, i, same, json_array_size(want));
        CHECK_EQ_INT(same, 32);
        CHECK_STR(text.data ? text.data : "", json_string_value(json_object_get(g, "text_skip_special")));
        ragd_tok_ids_free(&pids);
        ragd_tok_ids_free(&out);
        ragd_buf_free(&text);
    }
    ragd_engine_free(e);
    ragd_err_free(&err);
}

int main(void) {
    for (int k = 0; k < N_GOLDEN_MODELS; k++) {
        const char *name = golden_models[k];
        char *dir = golden_path("models", name, "");
        ragd_model *m = NULL;
        ragd_err err = {0};
        if (ragd_model_load(dir, &m, &err)) {
            fprintf(stderr, "%s: %s\n", name, ragd_err_msg(&err));
            CHECK(0);
            continue;
        }
        json_t *ref = golden_ref(name);
        embed_checks(m, ref, name);
        rerank_checks(m, ref, name);
        chat_checks(m, ref, name);
        generate_checks(m, ref, name);
        json_decref(ref);
        ragd_model_free(m);
        free(dir);
        ragd_err_free(&err);
    }
    TEST_DONE();
}
