/* test_grammar.c — the schema compiler and the byte matcher: every case of cases.json accepts its
 * valid texts and refuses its invalid ones (and the valid ones pass the independent validator);
 * hand-picked byte-level checks (raw UTF-8, atomic advance, accepting/finished); refused schemas name
 * the keyword and its path. */
#include "test.h"

#include "grammar_test_util.h"

static void test_cases(void) {
    json_t *cases = gt_load_cases();
    CHECK(cases != NULL);
    if (!cases) return;
    CHECK(json_array_size(cases) >= 20);
    size_t i;
    json_t *cs;
    json_array_foreach(cases, i, cs) {
        const char *name = json_string_value(json_object_get(cs, "name"));
        ragd_grammar *g = gt_compile(cs);
        CHECK(g != NULL);
        if (!g) continue;
        size_t j;
        json_t *t;
        json_array_foreach(json_object_get(cs, "valid"), j, t) {
            const char *s = json_string_value(t);
            bool m = gt_matches(g, s, strlen(s));
            if (!m) fprintf(stderr, "case %s: valid text refused: %s\n", name, s);
            CHECK(m);
            bool v = gt_text_valid(cs, s, strlen(s));
            if (!v) fprintf(stderr, "case %s: the validator refuses the valid text %s\n", name, s);
            CHECK(v);
        }
        json_array_foreach(json_object_get(cs, "invalid"), j, t) {
            const char *s = json_string_value(t);
            bool m = gt_matches(g, s, strlen(s));
            if (m) fprintf(stderr, "case %s: invalid text accepted: %s\n", name, s);
            CHECK(!m);
        }
        ragd_grammar_free(g);
    }
    json_decref(cases);
}

static ragd_grammar *compile_text(const char *schema) {
    json_error_t je;
    json_t *s = json_loads(schema, 0, &je);
    RAGD_ASSERT(s);
    ragd_grammar *g = NULL;
    ragd_err err = {0};
    if (ragd_grammar_compile_schema(s, &g, &err)) fprintf(stderr, "compile: %s\n", ragd_err_msg(&err));
    ragd_err_free(&err);
    json_decref(s);
    return g;
}

static void test_bytes(void) {
    ragd_grammar *g = compile_text("{\"type\":\"string\"}");
    CHECK(g != NULL);
    if (!g) return;
    /* raw UTF-8: overlongs, surrogates, truncated and stray continuation bytes are refused */
    CHECK(gt_matches(g, "\"\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\"", 11));
    CHECK(!gt_matches(g, "\"\xc0\xaf\"", 4));         /* overlong '/' */
    CHECK(!gt_matches(g, "\"\xed\xa0\x80\"", 5));     /* UTF-16 surrogate */
    CHECK(!gt_matches(g, "\"\xe6\x97\"", 4));         /* truncated */
    CHECK(!gt_matches(g, "\"\x80\"", 3));             /* stray continuation */
    CHECK(!gt_matches(g, "\"\xf4\x90\x80\x80\"", 6)); /* > U+10FFFF */
    CHECK(!gt_matches(g, "\"\xff\"", 3));
    /* advance is all or nothing */
    ragd_gmatch m, copy;
    ragd_gmatch_init(g, &m);
    CHECK(ragd_gmatch_advance(g, &m, "\"ab", 3));
    copy = m;
    CHECK(!ragd_gmatch_advance(g, &m, "c\x01", 2));
    CHECK(!memcmp(&m.depth, &copy.depth, sizeof m.depth) && m.n_alt == copy.n_alt &&
          !memcmp(m.f[0], copy.f[0], m.depth[0] * sizeof(ragd_gframe)));
    CHECK(!ragd_gmatch_accepting(g, &m));
    CHECK(ragd_gmatch_advance(g, &m, "c\"", 2));
    CHECK(ragd_gmatch_accepting(g, &m));
    CHECK(ragd_gmatch_finished(g, &m));
    CHECK(!ragd_gmatch_advance(g, &m, " ", 1));
    ragd_grammar_free(g);

    /* a root number is accepting but not finished: more digits may follow */
    g = compile_text("{\"type\":\"number\"}");
    CHECK(g != NULL);
    if (!g) return;
    ragd_gmatch_init(g, &m);
    CHECK(ragd_gmatch_advance(g, &m, "-1", 2));
    CHECK(ragd_gmatch_accepting(g, &m));
    CHECK(!ragd_gmatch_finished(g, &m));
    CHECK(ragd_gmatch_advance(g, &m, ".5e-3", 5));
    CHECK(ragd_gmatch_accepting(g, &m));
    CHECK(!ragd_gmatch_advance(g, &m, "e", 1));
    ragd_grammar_free(g);
}

typedef struct err_case {
    const char *schema;
    const char *want[3]; /* substrings of the message */
} err_case;

static void test_errors(void) {
    static const err_case cases[] = {
        {"{\"type\":\"string\",\"pattern\":\"^a\"}", {"'pattern'", "at $"}},
        {"{\"type\":\"object\",\"properties\":{\"zip\":{\"type\":\"string\",\"pattern\":\"[0-9]+\"}}}",
         {"'pattern'", "$.properties.zip"}},
        {"{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":0}}}",
         {"'minimum'", "$.properties.n"}},
        {"{\"oneOf\":[{\"type\":\"string\"}]}", {"'oneOf'", "at $"}},
        {"{\"type\":\"array\",\"items\":{\"allOf\":[]}}", {"'allOf'", "$.items"}},
        {"{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"number\",\"multipleOf\":2}]}", {"'multipleOf'", "$.anyOf[1]"}},
        {"{\"type\":\"object\",\"patternProperties\":{}}", {"'patternProperties'"}},
        {"{\"type\":\"array\",\"uniqueItems\":true}", {"'uniqueItems'"}},
        {"{\"$ref\":\"#/$defs/missing\"}", {"'$ref'", "#/$defs/missing", "does not resolve"}},
        {"{\"$ref\":\"http://x/y.json\"}", {"does not resolve"}},
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},\"required\":[\"b\"]}", {"'b'", "required"}},
        {"{\"enum\":[]}", {"'enum'"}},
        {"{\"type\":\"string\",\"enum\":[1,2]}", {"'enum'", "type"}},
        {"{\"type\":\"strin\"}", {"unknown type", "strin"}},
        {"{\"type\":\"string\",\"minLength\":5,\"maxLength\":2}", {"minLength", "maxLength"}},
        {"{\"type\":\"array\",\"minItems\":-1}", {"'minItems'"}},
        {"{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"c\":{\"$ref\":\"#/$defs/n\"}},\"required\":[\"c\"]}},"
         "\"$ref\":\"#/$defs/n\"}", {"nests deeper"}},
        {"{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}},\"$ref\":\"#/$defs/a\"}", {"cycle"}},
        {"{\"$ref\":\"#/$defs/x\",\"type\":\"object\",\"$defs\":{\"x\":{}}}", {"'type'", "beside '$ref'"}},
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#/$defs/x\"}},\"$defs\":{\"x\":{\"not\":{}}}}",
         {"'not'", "#/$defs/x"}},
        {"{\"type\":\"object\",\"properties\":{\"a\":false}}", {"false", "$.properties.a"}},
        {"{\"type\":\"array\",\"items\":[{\"type\":\"string\"}]}", {"'items'", "$"}},
        {"[1]", {"must be an object or a boolean"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_error_t je;
        json_t *s = json_loads(cases[i].schema, JSON_DECODE_ANY, &je);
        RAGD_ASSERT(s);
        ragd_grammar *g = NULL;
        ragd_err err = {0};
        ragd_status st = ragd_grammar_compile_schema(s, &g, &err);
        CHECK_EQ_INT(st, RAGD_EINVAL);
        CHECK(g == NULL);
        for (int k = 0; k < 3 && cases[i].want[k]; k++) {
            bool has = strstr(ragd_err_msg(&err), cases[i].want[k]) != NULL;
            if (!has) fprintf(stderr, "schema %s: message \"%s\" lacks \"%s\"\n", cases[i].schema, ragd_err_msg(&err),
                              cases[i].want[k]);
            CHECK(has);
        }
        ragd_err_free(&err);
        ragd_grammar_free(g);
        json_decref(s);
    }
    /* annotations are ignored, not refused */
    ragd_grammar *g = compile_text("{\"title\":\"t\",\"description\":\"d\",\"type\":\"string\",\"format\":\"date\","
                                   "\"default\":\"x\",\"examples\":[\"y\"],\"$schema\":\"https://json-schema.org/draft/2020-12/schema\"}");
    CHECK(g != NULL);
    ragd_grammar_free(g);
}

/* Tool calls over 20 functions (more than RAGD_GMATCH_MAX_ALT): each function is reachable, its
 * arguments are checked against its own schema (not another's), the state stays one alternative. */
static void test_calls(void) {
    enum { N = 20 };
    char names_buf[N][16];
    const char *names[N];
    json_t *params[N];
    for (int i = 0; i < N; i++) {
        snprintf(names_buf[i], sizeof names_buf[i], "f%d", i); /* "f1" is a prefix of "f10".."f19" */
        names[i] = names_buf[i];
        /* function i takes {"a<i>": integer} (required); function 7 also a "$ref" of its own */
        char sch[256];
        if (i == 7)
            snprintf(sch, sizeof sch, "{\"type\":\"object\",\"$defs\":{\"s\":{\"enum\":[\"x\",\"y\"]}},\"properties\":{"
                     "\"a7\":{\"$ref\":\"#/$defs/s\"}},\"required\":[\"a7\"],\"additionalProperties\":false}");
        else
            snprintf(sch, sizeof sch, "{\"type\":\"object\",\"properties\":{\"a%d\":{\"type\":\"integer\"}},\"required\":[\"a%d\"],"
                     "\"additionalProperties\":false}", i, i);
        json_error_t je;
        params[i] = json_loads(sch, 0, &je);
        RAGD_ASSERT(params[i]);
    }
    for (int max_items = -1; max_items <= 1; max_items++) {
        ragd_grammar_calls spec = {.names = names, .params = (const json_t *const *)params, .n = N, .name_key = "name",
                                   .args_key = "arguments", .max_items = max_items};
        ragd_grammar *g = NULL;
        ragd_err err = {0};
        CHECK_EQ_INT(ragd_grammar_compile_calls(&spec, &g, &err), RAGD_OK);
        ragd_err_free(&err);
        if (!g) continue;
        const char *open = max_items ? "[" : "", *close = max_items ? "]" : "";
        char t[256];
        for (int i = 0; i < N; i++) {
            if (i == 7) snprintf(t, sizeof t, "%s{\"name\": \"f7\", \"arguments\": {\"a7\": \"y\"}}%s", open, close);
            else snprintf(t, sizeof t, "%s{\"name\": \"f%d\", \"arguments\": {\"a%d\": %d}}%s", open, i, i, 10 * i, close);
            bool ok = gt_matches(g, t, strlen(t));
            if (!ok) fprintf(stderr, "calls: refused %s\n", t);
            CHECK(ok);
            /* another function's arguments under this name are refused */
            int o = (i + 1) % N;
            snprintf(t, sizeof t, "%s{\"name\": \"f%d\", \"arguments\": {\"a%d\": 1}}%s", open, i, o, close);
            CHECK(!gt_matches(g, t, strlen(t)));
        }
        snprintf(t, sizeof t, "%s{\"name\": \"f7\", \"arguments\": {\"a7\": 1}}%s", open, close);
        CHECK(!gt_matches(g, t, strlen(t)));
        snprintf(t, sizeof t, "%s{\"name\": \"f20\", \"arguments\": {\"a20\": 1}}%s", open, close);
        CHECK(!gt_matches(g, t, strlen(t)));
        /* after the name, one alternative; before it, one too (no anyOf fan-out) */
        ragd_gmatch m;
        ragd_gmatch_init(g, &m);
        snprintf(t, sizeof t, "%s{\"name\": \"f1", open);
        CHECK(ragd_gmatch_advance(g, &m, t, strlen(t)));
        CHECK_EQ_INT(m.n_alt, 1);
        const char *rest = "9\", \"arguments\": {\"a19\": 5}}", *more = ", {\"name\": \"f0\", \"arguments\": {\"a0\": 1}}]";
        CHECK(ragd_gmatch_advance(g, &m, rest, strlen(rest)));
        CHECK_EQ_INT(m.n_alt, 1);
        if (max_items) {
            /* several calls only when max_items allows them */
            bool two = ragd_gmatch_advance(g, &m, more, strlen(more));
            CHECK(two == (max_items < 0));
            if (two) CHECK(ragd_gmatch_finished(g, &m));
        } else CHECK(ragd_gmatch_finished(g, &m));
        ragd_grammar_free(g);
    }
    /* raw text around the call (Hermes: "\n" {call} "\n</tool_call>") */
    {
        ragd_grammar_calls spec = {.names = names, .params = (const json_t *const *)params, .n = N, .name_key = "name",
                                   .args_key = "arguments", .max_items = 0, .prefix = "\n", .suffix = "\n</tool_call>"};
        ragd_grammar *g = NULL;
        ragd_err err = {0};
        CHECK_EQ_INT(ragd_grammar_compile_calls(&spec, &g, &err), RAGD_OK);
        ragd_err_free(&err);
        if (g) {
            const char *ok = "\n{\"name\": \"f12\", \"arguments\": {\"a12\": -4}}\n</tool_call>";
            ragd_gmatch m;
            ragd_gmatch_init(g, &m);
            CHECK(ragd_gmatch_advance(g, &m, ok, strlen(ok) - 1));
            CHECK(!ragd_gmatch_accepting(g, &m) && !ragd_gmatch_finished(g, &m));
            CHECK(ragd_gmatch_advance(g, &m, ">", 1));
            CHECK(ragd_gmatch_finished(g, &m));
            CHECK(!gt_matches(g, ok + 1, strlen(ok) - 1));                 /* no leading newline */
            const char *no_nl = "\n{\"name\": \"f12\", \"arguments\": {\"a12\": -4}}</tool_call>";
            const char *wrong = "\n{\"name\": \"f12\", \"arguments\": {\"a3\": 1}}\n</tool_call>";
            CHECK(!gt_matches(g, no_nl, strlen(no_nl))); /* no newline before the closing tag */
            CHECK(!gt_matches(g, wrong, strlen(wrong)));
            ragd_grammar_free(g);
        }
    }
    /* further calls after the first (parallel calls under auto): Hermes "\n<tool_call>\n" {call}
     * "\n</tool_call>" repeated up to max_more times; Llama 3 "; " {call} without a suffix */
    for (int max_more = -1; max_more <= 2; max_more++) {
        ragd_grammar_calls spec = {.names = names, .params = (const json_t *const *)params, .n = N, .name_key = "name",
                                   .args_key = "arguments", .max_items = 0, .prefix = "\n", .suffix = "\n</tool_call>",
                                   .more = "\n<tool_call>\n", .max_more = max_more};
        ragd_grammar *g = NULL;
        ragd_err err = {0};
        CHECK_EQ_INT(ragd_grammar_compile_calls(&spec, &g, &err), RAGD_OK);
        ragd_err_free(&err);
        if (!g) continue;
        const char *one = "\n{\"name\": \"f3\", \"arguments\": {\"a3\": 3}}\n</tool_call>";
        const char *next = "\n<tool_call>\n{\"name\": \"f15\", \"arguments\": {\"a15\": 15}}\n</tool_call>";
        ragd_gmatch m;
        ragd_gmatch_init(g, &m);
        CHECK(ragd_gmatch_advance(g, &m, one, strlen(one)));
        /* complete after one call; finished (nothing may follow) only when no further call is allowed */
        CHECK(ragd_gmatch_accepting(g, &m));
        CHECK(ragd_gmatch_finished(g, &m) == (max_more == 0));
        ragd_gmatch after_one = m;
        int took = 0;
        for (int k = 0; k < 4; k++) {
            ragd_gmatch m2 = m;
            if (!ragd_gmatch_advance(g, &m2, next, strlen(next))) break;
            m = m2;
            took++;
            CHECK(ragd_gmatch_accepting(g, &m));
        }
        CHECK_EQ_INT(took, max_more < 0 ? 4 : max_more);
        /* unbounded: the state after 5 calls is the state after 1 (one mask-cache entry for all) */
        if (max_more < 0) CHECK(ragd_gmatch_equal(&after_one, &m) && ragd_gmatch_hash(&after_one) == ragd_gmatch_hash(&m));
        CHECK(ragd_gmatch_finished(g, &m) == (max_more >= 0));
        /* a further call must validate too, and text between calls is refused */
        ragd_gmatch_init(g, &m);
        CHECK(ragd_gmatch_advance(g, &m, one, strlen(one)));
        const char *bad_args = "\n<tool_call>\n{\"name\": \"f15\", \"arguments\": {\"a3\": 15}}";
        const char *text = "\nand now text";
        ragd_gmatch m3 = m;
        CHECK(!ragd_gmatch_advance(g, &m3, bad_args, strlen(bad_args)));
        m3 = m;
        CHECK(!ragd_gmatch_advance(g, &m3, text, strlen(text)));
        ragd_grammar_free(g);
    }
    {
        ragd_grammar_calls spec = {.names = names, .params = (const json_t *const *)params, .n = N, .name_key = "name",
                                   .args_key = "parameters", .max_items = 0, .more = "; ", .max_more = -1};
        ragd_grammar *g = NULL;
        ragd_err err = {0};
        CHECK_EQ_INT(ragd_grammar_compile_calls(&spec, &g, &err), RAGD_OK);
        ragd_err_free(&err);
        if (g) {
            const char *two = "{\"name\": \"f0\", \"parameters\": {\"a0\": 0}}; {\"name\": \"f1\", \"parameters\": {\"a1\": 1}}";
            CHECK(gt_matches(g, two, strlen(two)));
            CHECK(gt_matches(g, two, strlen("{\"name\": \"f0\", \"parameters\": {\"a0\": 0}}")));
            CHECK(!gt_matches(g, two, strlen(two) - 1));
            ragd_gmatch m;
            ragd_gmatch_init(g, &m);
            CHECK(ragd_gmatch_advance(g, &m, two, strlen(two)));
            CHECK(ragd_gmatch_accepting(g, &m) && !ragd_gmatch_finished(g, &m));
            CHECK(!ragd_gmatch_advance(g, &m, ";{", 2)); /* the separator is exactly "; " */
            ragd_grammar_free(g);
        }
    }
    /* raw calls (Mistral v11): name[ARGS]{arguments}, the raw name selecting the schema, further calls
     * after "[TOOL_CALLS]"; the [ARGS] / [TOOL_CALLS] special tokens as marker tokens of the grammar */
    {
        const int32_t mk_ids[2] = {95, 96};
        const char *const mk_texts[2] = {"[ARGS]", "[TOOL_CALLS]"};
        ragd_grammar_calls spec = {.names = names, .params = (const json_t *const *)params, .n = N, .max_items = 0,
                                   .raw_sep = "[ARGS]", .more = "[TOOL_CALLS]", .max_more = -1, .marker_ids = mk_ids,
                                   .marker_texts = mk_texts, .n_markers = 2};
        ragd_grammar *g = NULL;
        ragd_err err = {0};
        CHECK_EQ_INT(ragd_grammar_compile_calls(&spec, &g, &err), RAGD_OK);
        ragd_err_free(&err);
        if (g) {
            const char *ok1 = "f12[ARGS]{\"a12\": 3}";
            const char *ok2 = "f1[ARGS]{\"a1\": 1}[TOOL_CALLS]f10[ARGS]{\"a10\": 2}[TOOL_CALLS]f7[ARGS]{\"a7\": \"x\"}";
            CHECK(gt_matches(g, ok1, strlen(ok1)));
            CHECK(gt_matches(g, ok2, strlen(ok2)));
            const char *bad[] = {"f12[ARGS]{\"a3\": 3}", "f20[ARGS]{\"a20\": 1}", "[ARGS]{}", "\"f1\"[ARGS]{\"a1\": 1}",
                                 "f1 [ARGS]{\"a1\": 1}", "f1[ARGS]{\"a1\": 1} text", "f1{\"a1\": 1}",
                                 "f1[ARGS]{\"a1\": 1}[TOOL_CALLS]f7[ARGS]{\"a7\": 1}"};
            for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                bool m = gt_matches(g, bad[i], strlen(bad[i]));
                if (m) fprintf(stderr, "raw calls: accepted %s\n", bad[i]);
                CHECK(!m);
            }
            /* a vocabulary of the 95 printable ASCII bytes (ids 0..94), [ARGS] = 95 and [TOOL_CALLS] = 96 special
             * (no bytes), EOS = 97: the marker tokens are allowed exactly where their text fits */
            const char *tb[98];
            int tlen[98];
            char chars[95][2];
            for (int i = 0; i < 95; i++) {
                chars[i][0] = (char)(32 + i);
                chars[i][1] = 0;
                tb[i] = chars[i];
                tlen[i] = 1;
            }
            tb[95] = tb[96] = tb[97] = NULL;
            tlen[95] = tlen[96] = tlen[97] = 0;
            int32_t eos = 97;
            ragd_vocab_trie *t = NULL;
            CHECK(ragd_vocab_trie_build(tb, tlen, 98, &eos, 1, &t, &err) == RAGD_OK);
            ragd_gmask_ws *ws = t ? ragd_gmask_ws_create(t) : NULL;
            if (t && ws) {
                uint32_t words[4];
                ragd_gmatch m;
                ragd_gmatch_init(g, &m);
                ragd_gmask(g, &m, t, ws, words);
                CHECK(!(words[95 >> 5] & (1u << (95 & 31))) && !(words[96 >> 5] & (1u << (96 & 31))));
                CHECK(words[('f' - 32) >> 5] & (1u << (('f' - 32) & 31)));
                CHECK(ragd_gmatch_advance(g, &m, "f12", 3));
                ragd_gmask(g, &m, t, ws, words); /* "f12" is a whole name: [ARGS] next, nothing else */
                CHECK(words[95 >> 5] & (1u << (95 & 31)));
                CHECK(!(words[96 >> 5] & (1u << (96 & 31))) && !(words[97 >> 5] & (1u << (97 & 31))));
                CHECK(ragd_gmatch_advance_token(g, &m, t, 95)); /* the special token [ARGS] */
                CHECK(!ragd_gmatch_advance_token(g, &m, t, 96));
                CHECK(ragd_gmatch_advance(g, &m, "{\"a12\": 5}", 10));
                ragd_gmask(g, &m, t, ws, words); /* complete: EOS or a further call's [TOOL_CALLS] */
                CHECK((words[96 >> 5] & (1u << (96 & 31))) && (words[97 >> 5] & (1u << (97 & 31))));
                CHECK(!(words[95 >> 5] & (1u << (95 & 31))));
                CHECK(ragd_gmatch_advance_token(g, &m, t, 96));
                CHECK(ragd_gmatch_advance(g, &m, "f0", 2) && ragd_gmatch_advance_token(g, &m, t, 95));
                CHECK(ragd_gmatch_advance(g, &m, "{\"a0\": 0}", 9) && ragd_gmatch_accepting(g, &m));
            }
            /* inside a string the markers' text would fit, but a marker token is never allowed there */
            json_t *sp = json_loads("{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\"}},\"required\":[\"q\"]}", 0, NULL);
            const char *sn[1] = {"s"};
            ragd_grammar_calls ss = {.names = sn, .params = (const json_t *const *)&sp, .n = 1, .raw_sep = "[ARGS]",
                                     .marker_ids = mk_ids, .marker_texts = mk_texts, .n_markers = 2};
            ragd_grammar *gs = NULL;
            CHECK(ragd_grammar_compile_calls(&ss, &gs, &err) == RAGD_OK);
            if (gs && t && ws) {
                uint32_t words[4];
                ragd_gmatch m;
                ragd_gmatch_init(gs, &m);
                CHECK(ragd_gmatch_advance(gs, &m, "s[ARGS]{\"q\": \"ab", 15));
                ragd_gmask(gs, &m, t, ws, words);
                CHECK(words[('[' - 32) >> 5] & (1u << (('[' - 32) & 31))); /* the text "[ARGS]" may be written */
                CHECK(!(words[95 >> 5] & (1u << (95 & 31))) && !(words[96 >> 5] & (1u << (96 & 31))));
                ragd_gmatch m2 = m;
                CHECK(!ragd_gmatch_advance_token(gs, &m2, t, 95));
                CHECK(ragd_gmatch_advance(gs, &m, "[ARGS]\"}", 8) && ragd_gmatch_finished(gs, &m));
            }
            ragd_grammar_free(gs);
            json_decref(sp);
            ragd_gmask_ws_free(ws);
            ragd_vocab_trie_free(t);
            ragd_err_free(&err);
            ragd_grammar_free(g);
        }
    }
    /* duplicate names are refused, naming the name */
    names[3] = "f5";
    ragd_grammar_calls spec = {.names = names, .params = (const json_t *const *)params, .n = N, .name_key = "name",
                               .args_key = "arguments", .max_items = 1};
    ragd_grammar *g = NULL;
    ragd_err err = {0};
    CHECK_EQ_INT(ragd_grammar_compile_calls(&spec, &g, &err), RAGD_EINVAL);
    CHECK(g == NULL && strstr(ragd_err_msg(&err), "\"f5\" appears twice"));
    ragd_err_free(&err);
    for (int i = 0; i < N; i++) json_decref(params[i]);
}

int main(void) {
    test_cases();
    test_bytes();
    test_errors();
    test_calls();
    TEST_DONE();
}
