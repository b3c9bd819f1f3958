/* test_tok_qwen3.c — the 400 public Qwen3 cases (shared/cases/tokenizer/qwen3_public.jsonl) with the
 * real Qwen3 tokenizer.json: every text encodes to exactly the recorded ids and they decode to exactly
 * the recorded text, with the word cache cold and warm, with PCRE2 instead of the hand-written split
 * matcher, through streaming decode, and with the tokenizer rebuilt from GGUF-style parts. */
#include <pthread.h>
#include <stdlib.h>

#include "tok_test_util.h"
#include "tokenizer/tok_internal.h"

static int run_cases(const ragd_tokenizer *t, json_t *cases, const char *label) {
    ragd_tok_ids ids = {0}, want = {0};
    ragd_buf text = {0};
    int bad = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        json_t *jt = json_object_get(c, "text");
        const char *s = json_string_value(jt);
        size_t n = json_string_length(jt);
        json_ids(json_object_get(c, "ids"), &want);
        ids.n = 0;
        ragd_err err = {0};
        ragd_status st = ragd_tokenizer_encode(t, s, n, false, &ids, &err);
        CHECK_EQ_INT(st, RAGD_OK);
        if (st) fprintf(stderr, "  %s: %s\n", label, ragd_err_msg(&err));
        ragd_err_free(&err);
        if (!ids_equal(&ids, &want)) {
            bad++;
            CHECK(ids_equal(&ids, &want));
            fprintf(stderr, "%s case %zu: %.80s\n", label, i, s);
            print_ids_diff(label, &ids, &want);
            continue;
        }
        t_passed++;
        /* decode */
        json_t *jd = json_object_get(c, "decoded");
        ragd_buf_reset(&text);
        st = ragd_tokenizer_decode(t, want.ids, want.n, false, &text, &err);
        CHECK_EQ_INT(st, RAGD_OK);
        if (text.len != json_string_length(jd) || memcmp(text.data, json_string_value(jd), text.len)) {
            bad++;
            CHECK(!"decode matches");
            fprintf(stderr, "%s case %zu decode: got '%.80s' want '%.80s'\n", label, i, text.data,
                    json_string_value(jd));
        }
        /* streaming decode equals whole decode */
        ragd_buf sb = {0};
        ragd_tok_stream ss = {0};
        for (size_t k = 0; k < want.n; k++) ragd_tok_stream_push(t, &ss, want.ids[k], false, &sb, NULL);
        ragd_tok_stream_flush(t, &ss, &sb);
        CHECK(sb.len == text.len && !memcmp(sb.data, text.data, sb.len));
        ragd_buf_free(&sb);
    }
    ragd_tok_ids_free(&ids);
    ragd_tok_ids_free(&want);
    ragd_buf_free(&text);
    printf("%s: %zu cases, %d failing\n", label, json_array_size(cases), bad);
    return bad;
}

/* threads sharing one tokenizer: each encodes every case several times and counts mismatches */
typedef struct thread_job {
    const ragd_tokenizer *t;
    json_t *cases;
    int mismatches;
} thread_job;

static void *thread_main(void *p) {
    thread_job *j = p;
    ragd_tok_ids ids = {0}, want = {0};
    for (int r = 0; r < 3; r++) {
        size_t i;
        json_t *c;
        json_array_foreach(j->cases, i, c) {
            json_t *jt = json_object_get(c, "text");
            json_ids(json_object_get(c, "ids"), &want);
            ids.n = 0;
            if (ragd_tokenizer_encode(j->t, json_string_value(jt), json_string_length(jt), false, &ids, NULL) ||
                !ids_equal(&ids, &want))
                j->mismatches++;
        }
    }
    ragd_tok_ids_free(&ids);
    ragd_tok_ids_free(&want);
    return NULL;
}

int main(void) {
    char *tok_path = shared_path("models/qwen3-tokenizer/tokenizer.json");
    char *cases_path = shared_path("cases/tokenizer/qwen3_public.jsonl");
    json_t *cases = load_jsonl(cases_path);
    CHECK(cases != NULL);
    CHECK_EQ_INT(json_array_size(cases), 400);
    ragd_tokenizer *t = NULL;
    ragd_err err = {0};
    double t0 = ragd_now_s();
    ragd_status st = ragd_tokenizer_load_json(tok_path, &t, &err);
    printf("load: %.3f s\n", ragd_now_s() - t0);
    CHECK_EQ_INT(st, RAGD_OK);
    if (st) { fprintf(stderr, "%s\n", ragd_err_msg(&err)); TEST_DONE(); }
    CHECK_EQ_INT(ragd_tokenizer_vocab_size(t), 151669);
    CHECK_EQ_INT(ragd_tokenizer_token_to_id(t, "<|im_end|>"), 151645);
    CHECK_EQ_INT(ragd_tokenizer_eos_id(t), 151645);
    CHECK_EQ_INT(ragd_tokenizer_pad_id(t), 151643);
    CHECK_EQ_INT(ragd_tokenizer_bos_id(t), -1);
    CHECK(ragd_tokenizer_chat_template(t) != NULL);
    CHECK(ragd_tokenizer_is_special(t, 151643));
    CHECK(!ragd_tokenizer_is_special(t, 151667));
    CHECK_STR(ragd_tokenizer_id_to_token(t, 9707), "Hello");

    run_cases(t, cases, "cold cache");
    run_cases(t, cases, "warm cache");

    /* 4 threads on the shared tokenizer (per-thread workspaces; freed at thread exit) */
    pthread_t th[4];
    thread_job jobs[4];
    for (int k = 0; k < 4; k++) {
        jobs[k] = (thread_job){t, cases, 0};
        pthread_create(&th[k], NULL, thread_main, &jobs[k]);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        CHECK_EQ_INT(jobs[k].mismatches, 0);
    }

    /* hand-written matcher vs PCRE2 on the whole pipeline */
    setenv("RAGD_TOK_FORCE_PCRE2", "1", 1);
    setenv("RAGD_TOK_NO_CACHE", "1", 1);
    ragd_tokenizer *tp = NULL;
    CHECK_EQ_INT(ragd_tokenizer_load_json(tok_path, &tp, &err), RAGD_OK);
    unsetenv("RAGD_TOK_FORCE_PCRE2");
    unsetenv("RAGD_TOK_NO_CACHE");
    CHECK(tp && tp->pres[0].match == TOK_MATCH_PCRE2 && !tp->use_cache);
    CHECK(t->pres[0].match == TOK_MATCH_QWEN2);
    if (tp) run_cases(tp, cases, "pcre2, no cache");
    ragd_tokenizer_free(tp);

    ragd_tokenizer *tg = tok_load_as_gguf(tok_path, t, "qwen2", -1, 151645, 151643, false);
    CHECK(tg != NULL);
    if (tg) {
        run_cases(tg, cases, "gguf parts");
        CHECK_EQ_INT(ragd_tokenizer_eos_id(tg), 151645);
        CHECK(ragd_tokenizer_is_special(tg, 151643));
        CHECK(!ragd_tokenizer_is_special(tg, 151667));
    }
    ragd_tokenizer_free(tg);

    ragd_tokenizer_free(t);
    json_decref(cases);
    free(tok_path);
    free(cases_path);
    ragd_err_free(&err);
    TEST_DONE();
}
