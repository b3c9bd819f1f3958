/* test_tasks_gen.c — sampling and stop handling: same seed → same ids, different seeds → different ids,
 * top-k 1 / tiny top-p / min-p 1 → the greedy ids, a sampled distribution that matches softmax, option
 * errors; the gen stream's stop strings (cut before the stop string, text that might start one held
 * back, split across tokens), EOS and ignore_eos, stop_token_ids, max_tokens; streamed pieces add up to the text. */
#include <math.h>
#include <stdio.h>

#include "golden.h"
#include "tasks/tasks.h"
#include "test.h"

static ragd_model *m;
static ragd_engine *e;

static void gen(const char *prompt, ragd_sampler_opts so, int max_tokens, ragd_tok_ids *out) {
    ragd_err err = {0};
    ragd_tok_ids p = {0};
    CHECK(ragd_tokenizer_encode(m->tok, prompt, strlen(prompt), false, &p, &err) == RAGD_OK);
    ragd_gen_opts o = {.sampling = so, .max_tokens = max_tokens, .ignore_eos = true};
    ragd_finish fin;
    out->n = 0;
    ragd_status st = ragd_generate(e, p.ids, p.n, &o, out, NULL, &fin, &err);
    if (st) fprintf(stderr, "generate: %s\n", ragd_err_msg(&err));
    CHECK(st == RAGD_OK);
    ragd_tok_ids_free(&p);
    ragd_err_free(&err);
}

static void collect(void *ud, const char *t, size_t n) { ragd_buf_append(ud, t, n); }

static bool same_ids(const ragd_tok_ids *a, const ragd_tok_ids *b) {
    return a->n == b->n && !memcmp(a->ids, b->ids, sizeof(int32_t) * a->n);
}

static void sampling_tests(void) {
    ragd_tok_ids greedy = {0}, a = {0}, b = {0};
    ragd_sampler_opts g = {.temperature = 0, .top_p = 1};
    gen("Once upon a time", g, 24, &greedy);
    ragd_sampler_opts s = {.temperature = 1.0f, .top_p = 1, .seed = 42};
    gen("Once upon a time", s, 24, &a);
    gen("Once upon a time", s, 24, &b);
    CHECK(same_ids(&a, &b));
    s.seed = 43;
    gen("Once upon a time", s, 24, &b);
    CHECK(!same_ids(&a, &b));
    CHECK(!same_ids(&a, &greedy)); /* random weights: T=1 sampling leaves the argmax path */
    ragd_sampler_opts k1 = {.temperature = 1.0f, .top_k = 1, .top_p = 1, .seed = 7};
    gen("Once upon a time", k1, 24, &b);
    CHECK(same_ids(&b, &greedy));
    ragd_sampler_opts p0 = {.temperature = 0.8f, .top_p = 1e-6f, .seed = 7};
    gen("Once upon a time", p0, 24, &b);
    CHECK(same_ids(&b, &greedy));
    ragd_sampler_opts mp = {.temperature = 1.5f, .top_p = 1, .min_p = 1.0f, .seed = 9};
    gen("Once upon a time", mp, 24, &b);
    CHECK(same_ids(&b, &greedy));
    ragd_tok_ids_free(&greedy);
    ragd_tok_ids_free(&a);
    ragd_tok_ids_free(&b);

    /* the draw follows softmax(logits / T) and the filters; draws differ by counter only */
    ragd_err err = {0};
    float logits[4] = {1.0f, 1.0f + logf(2.0f), -20.0f, 1.0f - logf(4.0f)}; /* p ∝ 1, 2, ~0, 1/4 */
    ragd_sample_ws *ws = ragd_sample_ws_create(4);
    CHECK(ws != NULL);
    ragd_sample_params so = {.temperature = 1.0f, .top_p = 1, .seed = 1, .active = 1};
    ragd_sample_out o;
    int cnt[4] = {0};
    for (int i = 0; i < 30000; i++) {
        so.counter = (uint64_t)i;
        ragd_sample_row(logits, 4, &so, ws, &o);
        cnt[o.token]++;
    }
    printf("sampled frequencies %.3f %.3f %.3f %.3f (want %.3f %.3f 0 %.3f)\n", cnt[0] / 3e4, cnt[1] / 3e4,
           cnt[2] / 3e4, cnt[3] / 3e4, 1 / 3.25, 2 / 3.25, 0.25 / 3.25);
    CHECK_NEAR(cnt[0] / 3e4, 1 / 3.25, 0.015);
    CHECK_NEAR(cnt[1] / 3e4, 2 / 3.25, 0.015);
    CHECK_NEAR(cnt[3] / 3e4, 0.25 / 3.25, 0.01);
    so.top_k = 2; /* only ids 0 and 1 */
    memset(cnt, 0, sizeof cnt);
    for (int i = 0; i < 30000; i++) {
        so.counter = (uint64_t)i;
        ragd_sample_row(logits, 4, &so, ws, &o);
        cnt[o.token]++;
    }
    CHECK_EQ_INT(cnt[2] + cnt[3], 0);
    CHECK_NEAR(cnt[1] / 3e4, 2 / 3.0, 0.015);
    so.top_k = 0;
    so.min_p = 0.4f; /* keeps p ≥ 0.4 × max: ids 1 and 0 */
    memset(cnt, 0, sizeof cnt);
    for (int i = 0; i < 3000; i++) {
        so.counter = (uint64_t)i;
        ragd_sample_row(logits, 4, &so, ws, &o);
        cnt[o.token]++;
    }
    CHECK_EQ_INT(cnt[2] + cnt[3], 0);
    CHECK(cnt[0] > 0 && cnt[1] > 0);
    so = (ragd_sample_params){.temperature = 0, .top_p = 1, .want_logprob = 1, .active = 1};
    ragd_sample_row(logits, 4, &so, ws, &o);
    CHECK_EQ_INT(o.token, 1);
    CHECK_NEAR(o.logprob, log(2 / 3.25), 1e-5);
    so.n_ban = 1, so.ban[0] = 1; /* min_tokens bans EOS this way */
    ragd_sample_row(logits, 4, &so, ws, &o);
    CHECK_EQ_INT(o.token, 0);
    ragd_sample_ws_free(ws);

    ragd_sample_params bad = {.temperature = -1, .top_p = 1};
    CHECK_EQ_INT(ragd_sample_check(&bad, 4, &err), RAGD_ERANGE);
    bad = (ragd_sample_params){.temperature = 1, .top_p = 0};
    CHECK_EQ_INT(ragd_sample_check(&bad, 4, &err), RAGD_ERANGE);
    CHECK(strstr(ragd_err_msg(&err), "top_p") != NULL);
    bad = (ragd_sample_params){.temperature = 1, .top_p = 1, .top_k = -2};
    CHECK_EQ_INT(ragd_sample_check(&bad, 4, &err), RAGD_ERANGE);
    bad = (ragd_sample_params){.temperature = NAN, .top_p = 1};
    CHECK_EQ_INT(ragd_sample_check(&bad, 4, &err), RAGD_ERANGE);
    ragd_err_free(&err);
}

/* pushes the ids of `text` one by one through a gen stream; returns emitted text and finish */
static ragd_finish stream_text(const char *text, const char *const *stop, int n_stop, int max_tokens, bool eos_after,
                               bool ignore_eos, ragd_buf *all, int *n_pushed, bool *held_ok, const char *forbidden) {
    ragd_err err = {0};
    ragd_tok_ids ids = {0};
    CHECK(ragd_tokenizer_encode(m->tok, text, strlen(text), false, &ids, &err) == RAGD_OK);
    if (eos_after) ragd_tok_ids_push(&ids, m->cfg.eos_ids[0]);
    ragd_tok_ids_push(&ids, ids.ids[0]); /* something after, to see that nothing more comes out */
    ragd_gen_opts o = {.max_tokens = max_tokens, .stop = stop, .n_stop = n_stop, .ignore_eos = ignore_eos};
    ragd_gen_stream g;
    CHECK(ragd_gen_stream_init(&g, m, &o, &err) == RAGD_OK);
    ragd_finish fin = RAGD_FINISH_NONE;
    *n_pushed = 0;
    *held_ok = true;
    ragd_buf piece = {0};
    for (size_t i = 0; i < ids.n && fin == RAGD_FINISH_NONE; i++) {
        ragd_buf_reset(&piece);
        CHECK(ragd_gen_stream_push(&g, ids.ids[i], &piece, &fin, &err) == RAGD_OK);
        ragd_buf_append(all, piece.data ? piece.data : "", piece.len);
        (*n_pushed)++;
        if (forbidden && all->data && strstr(all->data, forbidden)) *held_ok = false;
    }
    ragd_buf_free(&piece);
    ragd_gen_stream_free(&g);
    ragd_tok_ids_free(&ids);
    ragd_err_free(&err);
    return fin;
}

static void stop_tests(void) {
    ragd_buf out = {0};
    int n;
    bool held;
    const char *stop1[] = {"STOP"};
    /* "S", "T", ... arrive in separate tokens: the partial "ST" must never be emitted */
    ragd_finish f = stream_text("Hello world. STOP here and more", stop1, 1, 100, false, false, &out, &n, &held, "ST");
    CHECK_EQ_INT(f, RAGD_FINISH_STOP);
    CHECK_STR(out.data, "Hello world. ");
    CHECK(held);
    ragd_buf_reset(&out);
    /* two stop strings: the earliest wins; one that never completes is released at the end */
    const char *stop2[] = {"here", "wor"};
    f = stream_text("Hello world. STOP here", stop2, 2, 100, false, false, &out, &n, &held, NULL);
    CHECK_EQ_INT(f, RAGD_FINISH_STOP);
    CHECK_STR(out.data, "Hello ");
    ragd_buf_reset(&out);
    const char *stop3[] = {"Hello world!"}; /* a prefix matches for a while, then not: all text comes out */
    f = stream_text("Hello world. x", stop3, 1, 5, false, false, &out, &n, &held, NULL);
    CHECK_EQ_INT(f, RAGD_FINISH_LENGTH);
    CHECK_EQ_INT(n, 5);
    ragd_buf_reset(&out);
    /* EOS ends the sequence (and is not text) unless ignored */
    f = stream_text("Hi there", NULL, 0, 100, true, false, &out, &n, &held, NULL);
    CHECK_EQ_INT(f, RAGD_FINISH_STOP);
    CHECK_STR(out.data, "Hi there");
    ragd_buf_reset(&out);
    f = stream_text("Hi there", NULL, 0, 100, true, true, &out, &n, &held, NULL);
    CHECK_EQ_INT(f, RAGD_FINISH_NONE); /* ran out of ids without finishing */
    ragd_buf_reset(&out);
    /* max_tokens releases held text */
    const char *stop4[] = {"there!"};
    ragd_tok_ids hi = {0};
    ragd_err e2 = {0};
    CHECK(ragd_tokenizer_encode(m->tok, "Hi there", 8, false, &hi, &e2) == RAGD_OK);
    f = stream_text("Hi there", stop4, 1, (int)hi.n, false, false, &out, &n, &held, NULL);
    ragd_tok_ids_free(&hi);
    ragd_err_free(&e2);
    CHECK_EQ_INT(f, RAGD_FINISH_LENGTH);
    CHECK_STR(out.data, "Hi there");
    ragd_buf_free(&out);

    /* the engine loop: streamed pieces add up to the returned text; a stop string from the greedy text */
    ragd_err err = {0};
    ragd_tok_ids p = {0}, ids = {0};
    CHECK(ragd_tokenizer_encode(m->tok, "Once upon a time", 16, false, &p, &err) == RAGD_OK);
    ragd_gen_opts o = {.sampling = {.temperature = 0, .top_p = 1}, .max_tokens = 24, .ignore_eos = true};
    ragd_buf text = {0};
    ragd_finish fin;
    CHECK(ragd_generate(e, p.ids, p.n, &o, &ids, &text, &fin, &err) == RAGD_OK);
    CHECK(text.len > 12);
    char stop[5];
    memcpy(stop, text.data + text.len / 2, 4);
    stop[4] = 0;
    const char *stops[] = {stop};
    size_t cut = (size_t)(strstr(text.data, stop) - text.data);
    o.stop = stops;
    o.n_stop = 1;
    ragd_buf t2 = {0}, streamed = {0};
    ragd_tok_ids ids2 = {0};
    CHECK(ragd_generate_stream(e, p.ids, p.n, &o, collect, &streamed, &ids2, &t2, &fin,
                               &err) == RAGD_OK);
    CHECK_EQ_INT(fin, RAGD_FINISH_STOP);
    CHECK_EQ_INT(t2.len, cut);
    CHECK(t2.len == 0 || !memcmp(t2.data, text.data, cut));
    CHECK_EQ_INT(streamed.len, t2.len);
    CHECK(t2.len == 0 || !memcmp(streamed.data, t2.data, t2.len));
    /* stop_token_ids: the first greedy token not seen before position k ends the sequence there (STOP,
     * counted as generated, its text left out), even with ignore_eos */
    size_t k = 2;
    for (; k < ids.n; k++) {
        bool seen = false;
        for (size_t j = 0; j < k; j++) seen |= ids.ids[j] == ids.ids[k];
        if (!seen) break;
    }
    CHECK(k < ids.n);
    if (k < ids.n) {
        int32_t sid = ids.ids[k];
        ragd_gen_opts o3 = {.sampling = o.sampling, .max_tokens = 24, .ignore_eos = true, .stop_ids = &sid, .n_stop_ids = 1};
        ragd_tok_ids ids3 = {0};
        ragd_buf t3 = {0}, head = {0};
        CHECK(ragd_generate(e, p.ids, p.n, &o3, &ids3, &t3, &fin, &err) == RAGD_OK);
        CHECK_EQ_INT(fin, RAGD_FINISH_STOP);
        CHECK_EQ_INT(ids3.n, k + 1);
        CHECK(ragd_tokenizer_decode(m->tok, ids.ids, k, true, &head, &err) == RAGD_OK);
        CHECK_EQ_INT(t3.len, head.len);
        CHECK(!head.len || !memcmp(t3.data, head.data, head.len));
        ragd_tok_ids_free(&ids3);
        ragd_buf_free(&t3);
        ragd_buf_free(&head);
    }
    ragd_tok_ids_free(&p);
    ragd_tok_ids_free(&ids);
    ragd_tok_ids_free(&ids2);
    ragd_buf_free(&text);
    ragd_buf_free(&t2);
    ragd_buf_free(&streamed);
    /* prompt + max_tokens beyond the context */
    int32_t one = 1;
    o.max_tokens = 100000;
    CHECK_EQ_INT(ragd_generate(e, &one, 1, &o, &ids, NULL, &fin, &err), RAGD_ERANGE);
    ragd_tok_ids_free(&ids);
    ragd_err_free(&err);
}

/* min_tokens and ignore_eos: the model's EOS is set to the 4th greedy token, so greedy ends there;
 * min_tokens 10 bans it until 10 tokens (the 4th token changes) and ignore_eos runs to max_tokens */
static void min_tokens_tests(void) {
    ragd_tok_ids greedy = {0}, out = {0};
    ragd_sampler_opts g = {.temperature = 0, .top_p = 1};
    gen("Once upon a time", g, 12, &greedy);
    CHECK_EQ_INT(greedy.n, 12);
    int32_t saved[8];
    int n_saved = m->cfg.n_eos;
    memcpy(saved, m->cfg.eos_ids, sizeof saved);
    int32_t eos = greedy.ids[3];
    int first = 0; /* the first position of that token: greedy ends there */
    while (greedy.ids[first] != eos) first++;
    m->cfg.eos_ids[0] = eos;
    m->cfg.n_eos = 1;
    ragd_err err = {0};
    ragd_tok_ids p = {0};
    CHECK(ragd_tokenizer_encode(m->tok, "Once upon a time", 16, false, &p, &err) == RAGD_OK);
    ragd_finish fin;
    ragd_gen_opts o = {.sampling = g, .max_tokens = 12};
    CHECK(ragd_generate(e, p.ids, p.n, &o, &out, NULL, &fin, &err) == RAGD_OK);
    CHECK_EQ_INT(out.n, first + 1); /* the EOS is returned as the last id, as transformers does */
    CHECK_EQ_INT(fin, RAGD_FINISH_STOP);
    out.n = 0;
    o.min_tokens = 10;
    CHECK(ragd_generate(e, p.ids, p.n, &o, &out, NULL, &fin, &err) == RAGD_OK);
    CHECK(out.n >= 10);
    for (int i = 0; i < 9 && i < (int)out.n; i++) CHECK(out.ids[i] != eos);
    CHECK(!memcmp(out.ids, greedy.ids, sizeof(int32_t) * (size_t)first)); /* same until the banned EOS */
    out.n = 0;
    o.min_tokens = 0;
    o.ignore_eos = true;
    CHECK(ragd_generate(e, p.ids, p.n, &o, &out, NULL, &fin, &err) == RAGD_OK);
    CHECK_EQ_INT(out.n, 12);
    CHECK_EQ_INT(fin, RAGD_FINISH_LENGTH);
    CHECK(!memcmp(out.ids, greedy.ids, sizeof(int32_t) * 12));
    printf("min_tokens / ignore_eos: EOS at %d ends greedy; banned until 10 → %zu tokens; ignore_eos → 12\n", first,
           (size_t)10);
    m->cfg.n_eos = n_saved;
    memcpy(m->cfg.eos_ids, saved, sizeof saved);
    ragd_tok_ids_free(&greedy);
    ragd_tok_ids_free(&out);
    ragd_tok_ids_free(&p);
    ragd_err_free(&err);
}

int main(void) {
    char *dir = golden_path("models", "qwen3-tiny", "");
    ragd_err err = {0};
    if (ragd_model_load(dir, &m, &err)) {
        fprintf(stderr, "%s\n", ragd_err_msg(&err));
        return 1;
    }
    ragd_engine_opts o = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = 64, .max_seqs = 1, .max_ctx = 128,
                          .kv_cache = true, .n_threads = 1};
    CHECK(ragd_engine_create(m, &o, &e, &err) == RAGD_OK);
    sampling_tests();
    stop_tests();
    min_tokens_tests();
    ragd_engine_free(e);
    ragd_model_free(m);
    free(dir);
    TEST_DONE();
}
