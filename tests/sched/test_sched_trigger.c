/* test_sched_trigger.c — lazy grammars (tool_choice auto) through the scheduler on the tiny Qwen3
 * fixture: the triggers that switch a calls grammar on (tasks.h, ragd_gen_opts.grammar_trigger*).
 * logit_bias +100 on one token makes the random model write it at every free step, so each case's
 * outcome is decided by the trigger rule alone:
 *   A. a token id trigger (a special token, no text in the trie): the answer after it is one complete call;
 *      the same request without the id stays free text to max_tokens;
 *   B. a leading trigger "{" (Llama 3): " {" (whitespace, then the trigger) starts the grammar fed
 *      from the '{'; "(a" (another start) leaves the answer free for good; a trigger "(" that may come
 *      anywhere starts it from the token "(", not from "(a" (its rest "a" does not fit the grammar);
 *   C. a leading trigger id at the start starts it; text first ("Hell") disarms it.
 * Each constrained answer must be exactly one call of the grammar: the matcher accepts its bytes and
 * nothing more, jansson parses it, the name is a tool's and the arguments are that tool's. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "golden.h"
#include "grammar/grammar.h"
#include "sched/sched.h"
#include "test.h"

enum { MAX_NEW = 80 };

typedef struct job {
    ragd_task t;
    int32_t seq_start[2];
    ragd_buf text;
    ragd_finish fin;
    int n_tok;
    bool done;
} job;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;

static bool alive(void *ctx) {
    (void)ctx;
    return true;
}
static void on_gen(void *ctx, const ragd_gen_event *ev) {
    job *j = ctx;
    if (ev->len) ragd_buf_append(&j->text, ev->text, ev->len);
    if (ev->has_token) j->n_tok++;
    if (ev->finish) j->fin = ev->finish;
}
static void on_done(void *ctx) {
    job *j = ctx;
    pthread_mutex_lock(&g_mu);
    j->done = true;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}
static const ragd_task_sink g_sink = {alive, on_gen, on_done};

static int32_t g_prompt[] = {914, 120, 331, 57, 915, 914, 402, 8}; /* a chat-like prompt: <|im_start|> ... */

/* Runs one request: bias +100 on bias_id, the grammar with the given trigger rule. */
static void run(ragd_sched *s, ragd_served_model *sm, const ragd_grammar *g, const char *trigger, int32_t trig_id,
                bool lead, int32_t bias_id, job *j) {
    ragd_buf_free(&j->text);
    memset(j, 0, sizeof *j);
    static ragd_logit_edit bias[1];
    bias[0] = (ragd_logit_edit){.id = bias_id, .bias = 100.0f};
    int n = (int)(sizeof g_prompt / sizeof g_prompt[0]);
    j->seq_start[1] = n;
    ragd_task *t = &j->t;
    t->kind = RAGD_TASK_GENERATE;
    t->tokens = g_prompt;
    t->seq_start = j->seq_start;
    t->n_seqs = 1;
    t->n_choices = 1;
    t->gen.max_tokens = MAX_NEW;
    t->gen.sampling = (ragd_sampler_opts){.temperature = 0, .top_p = 1};
    t->gen.grammar = g;
    t->gen.grammar_trigger = trigger;
    t->gen.has_trigger_id = trig_id >= 0;
    t->gen.grammar_trigger_id = trig_id;
    t->gen.grammar_trigger_lead = lead;
    t->gen.logit_bias = bias;
    t->gen.n_logit_bias = 1;
    t->sink = &g_sink;
    t->ctx = j;
    t->t_arrival = ragd_now_s();
    ragd_err err = {0};
    ragd_status st = ragd_sched_submit(s, sm, t, &err);
    if (st) fprintf(stderr, "submit: %s\n", ragd_err_msg(&err));
    CHECK(st == RAGD_OK);
    ragd_err_free(&err);
    pthread_mutex_lock(&g_mu);
    while (!j->done) pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
    CHECK_EQ_INT(t->status, RAGD_OK);
}

/* text[from..] is exactly one call {"name": f, "parameters": {...}} of the two tools */
static bool one_call(const ragd_grammar *g, const job *j, size_t from, const char *what) {
    const char *p = j->text.data ? j->text.data + from : "";
    size_t n = j->text.len > from ? j->text.len - from : 0;
    ragd_gmatch m;
    ragd_gmatch_init(g, &m);
    bool ok = ragd_gmatch_advance(g, &m, p, n) && ragd_gmatch_finished(g, &m);
    json_t *v = ok ? json_loadb(p, n, 0, NULL) : NULL;
    const char *name = json_string_value(json_object_get(v, "name"));
    json_t *par = json_object_get(v, "parameters");
    if (ok && name && !strcmp(name, "get_weather"))
        ok = json_object_size(par) >= 1 && json_is_string(json_object_get(par, "city")) &&
             json_string_length(json_object_get(par, "city")) <= 5;
    else if (ok && name && !strcmp(name, "add"))
        ok = json_object_size(par) == 2 && json_is_integer(json_object_get(par, "a")) && json_is_integer(json_object_get(par, "b"));
    else ok = false;
    json_decref(v);
    if (!ok || j->fin != RAGD_FINISH_STOP)
        fprintf(stderr, "%s: not one call (finish %d): %.*s\n", what, j->fin, (int)n, p);
    return ok && j->fin == RAGD_FINISH_STOP;
}

static int32_t one_token(const ragd_tokenizer *tok, const char *text) {
    ragd_tok_ids ids = {0};
    ragd_err err = {0};
    int32_t id = -1;
    if (!ragd_tokenizer_encode(tok, text, strlen(text), false, &ids, &err) && ids.n == 1) id = ids.ids[0];
    ragd_err_free(&err);
    ragd_tok_ids_free(&ids);
    if (id < 0) fprintf(stderr, "\"%s\" is not one token of the fixture\n", text);
    return id;
}

int main(void) {
    char *dir = golden_path("models", "qwen3-tiny", "");
    ragd_model *m = NULL;
    ragd_err err = {0};
    if (ragd_model_load(dir, &m, &err)) {
        fprintf(stderr, "%s\n", ragd_err_msg(&err));
        return 1;
    }
    ragd_served_model sm = {.name = "tiny", .model = m};
    sm.roles[RAGD_ROLE_CHAT] = true;
    sm.max_len[RAGD_ROLE_CHAT] = 256;
    ragd_metrics *met = ragd_metrics_create();
    sm.batch_seqs = 4;
    ragd_sched_opts so = {.device = RAGD_DEVICE_CPU, .max_batch_tokens = 512, .max_seqs = 4, .max_step_tokens = 256,
                          .kv_block_size = 16, .kv_cache_tokens = 0, .max_batch_seqs = 4, .max_queue = 64,
                          .max_queue_tokens = 1 << 20, .n_threads = 1, .metrics = met};
    ragd_served_model *sms[1] = {&sm};
    ragd_sched *s = NULL;
    if (ragd_sched_create(&so, sms, 1, &s, &err)) fprintf(stderr, "sched: %s\n", ragd_err_msg(&err));
    CHECK(s != NULL);
    ragd_err_free(&err);

    /* two tools, Llama 3's shape {"name", "parameters"} */
    const char *names[2] = {"get_weather", "add"};
    json_t *params[2] = {
        json_loads("{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":5},\"days\":{\"type\":\"integer\"}},"
                   "\"required\":[\"city\"],\"additionalProperties\":false}", 0, NULL),
        json_loads("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"}},"
                   "\"required\":[\"a\",\"b\"],\"additionalProperties\":false}", 0, NULL)};
    ragd_grammar_calls spec = {.names = names, .params = (const json_t *const *)params, .n = 2, .name_key = "name",
                               .args_key = "parameters", .max_items = 0};
    ragd_grammar *g = NULL;
    CHECK(ragd_grammar_compile_calls(&spec, &g, &err) == RAGD_OK);
    ragd_err_free(&err);

    const ragd_tokenizer *tok = m->tok;
    int32_t special = ragd_tokenizer_token_to_id(tok, "<|im_start|>");
    CHECK(special >= 0 && ragd_tokenizer_is_special(tok, special));
    int32_t sp_brace = one_token(tok, " {"), paren = one_token(tok, "("), paren_a = one_token(tok, "(a"),
            word = one_token(tok, "Hell");
    int n_cases = 0;
    if (s && g && special >= 0 && sp_brace >= 0 && paren >= 0 && paren_a >= 0 && word >= 0) {
        job j = {0};
        /* A. the special token starts the grammar (its text is not in the answer: skipped special) */
        run(s, &sm, g, "<never written>", special, false, special, &j);
        CHECK(one_call(g, &j, 0, "A: trigger id"));
        n_cases++;
        run(s, &sm, g, "<never written>", -1, false, special, &j); /* no id: free to max_tokens */
        CHECK_EQ_INT(j.fin, RAGD_FINISH_LENGTH);
        CHECK_EQ_INT(j.n_tok, MAX_NEW);
        n_cases++;
        /* B. leading "{": whitespace first is fine, the matcher is fed from the '{' */
        run(s, &sm, g, "{", -1, true, sp_brace, &j);
        CHECK(j.text.len > 0 && j.text.data[0] == ' ');
        CHECK(one_call(g, &j, 1, "B: leading ' {'"));
        n_cases++;
        /* "(a" starts the answer otherwise: free for good (every later token is "(a" again) */
        run(s, &sm, g, "{", -1, true, paren_a, &j);
        CHECK_EQ_INT(j.fin, RAGD_FINISH_LENGTH);
        CHECK_EQ_INT((int)j.text.len, 2 * MAX_NEW);
        n_cases++;
        /* a trigger that may come anywhere: "(" alone starts the grammar (the rest of its token is empty),
         * so the answer after the "(" is one call */
        run(s, &sm, g, "(", -1, false, paren, &j);
        CHECK(j.text.len > 1 && j.text.data[0] == '(');
        CHECK(one_call(g, &j, 1, "B: anywhere '('"));
        n_cases++;
        /* ... while "(a" triggers it with "a" left over, which the grammar refuses: the text stays free */
        run(s, &sm, g, "(", -1, false, paren_a, &j);
        CHECK_EQ_INT(j.fin, RAGD_FINISH_LENGTH);
        CHECK_EQ_INT((int)j.text.len, 2 * MAX_NEW);
        n_cases++;
        /* C. a leading trigger id at the start; "Hell" first disarms a leading trigger */
        run(s, &sm, g, "{", special, true, special, &j);
        CHECK(one_call(g, &j, 0, "C: leading trigger id"));
        n_cases++;
        run(s, &sm, g, "{", special, true, word, &j);
        CHECK_EQ_INT(j.fin, RAGD_FINISH_LENGTH);
        n_cases++;
        ragd_buf_free(&j.text);
    }
    printf("lazy grammar triggers: %d cases\n", n_cases);
    CHECK_EQ_INT(n_cases, 8);
    ragd_sched_free(s);
    ragd_grammar_free(g);
    json_decref(params[0]);
    json_decref(params[1]);
    ragd_metrics_free(met);
    ragd_model_free(m);
    free(dir);
    TEST_DONE();
}
