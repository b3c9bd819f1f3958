/* test_units.c — unit tests of the server's pure parts: the option table (defaults < env < argv, bounds,
 * choices, booleans, help/print/json), memory sizes, and the Prometheus rendering of metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "obs/obs.h"
#include "test.h"

static ragd_status parse(int argc, char **argv, ragd_serve_opts *o, ragd_err *err) {
    bool help;
    return ragd_serve_opts_parse(argc, argv, o, &help, err);
}

static void test_options(void) {
    ragd_serve_opts o;
    ragd_err err = {0};
    char *a0[] = {"serve"};
    unsetenv("RAGD_PORT");
    CHECK_EQ_INT(parse(1, a0, &o, &err), RAGD_OK);
    CHECK_EQ_INT(o.port, 8080);
    CHECK_STR(o.host, "127.0.0.1");
    CHECK_STR(o.device, "auto");
    CHECK(o.embed == NULL && !o.demo);
    ragd_serve_opts_free(&o);

    setenv("RAGD_PORT", "9000", 1);
    setenv("RAGD_MAX_SEQS", "3", 1);
    CHECK_EQ_INT(parse(1, a0, &o, &err), RAGD_OK);
    CHECK_EQ_INT(o.port, 9000);
    CHECK_EQ_INT(o.max_seqs, 3);
    ragd_serve_opts_free(&o);
    char *a1[] = {"serve", "--port", "9100", "--embed=/m", "--demo", "--device", "cpu"};
    CHECK_EQ_INT(parse(7, a1, &o, &err), RAGD_OK);
    CHECK_EQ_INT(o.port, 9100); /* argv wins over env */
    CHECK_STR(o.embed, "/m");
    CHECK(o.demo);
    CHECK_STR(o.device, "cpu");
    ragd_buf b = {0};
    ragd_serve_opts_json(&o, &b);
    CHECK(strstr(b.data, "\"port\":9100") != NULL);
    CHECK(strstr(b.data, "\"embed\":\"/m\"") != NULL);
    ragd_buf_free(&b);
    ragd_serve_opts_free(&o);
    unsetenv("RAGD_PORT");
    unsetenv("RAGD_MAX_SEQS");

    struct { char *arg, *val, *needle; } bad[] = {
        {"--port", "70000", "--port"}, {"--port", "12x", "not an integer"}, {"--max-seqs", "0", "outside"},
        {"--device", "tpu", "cpu|cuda|auto"}, {"--log-level", "loud", "debug"}, {"--nope", "1", "unknown option"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *av[] = {"serve", bad[i].arg, bad[i].val};
        CHECK_EQ_INT(parse(3, av, &o, &err), RAGD_EINVAL);
        CHECK(strstr(ragd_err_msg(&err), bad[i].needle) != NULL);
    }
    char *a2[] = {"serve", "--port"};
    CHECK_EQ_INT(parse(2, a2, &o, &err), RAGD_EINVAL);
    CHECK(strstr(ragd_err_msg(&err), "needs a value") != NULL);
    setenv("RAGD_DEMO", "maybe", 1);
    CHECK_EQ_INT(parse(1, a0, &o, &err), RAGD_EINVAL);
    CHECK(strstr(ragd_err_msg(&err), "RAGD_DEMO") != NULL);
    unsetenv("RAGD_DEMO");
    /* secrets are masked */
    char *a3[] = {"serve", "--api-key", "hunter2"};
    CHECK_EQ_INT(parse(3, a3, &o, &err), RAGD_OK);
    ragd_serve_opts_print(&o, &b);
    ragd_serve_opts_json(&o, &b);
    CHECK(strstr(b.data, "hunter2") == NULL);
    ragd_buf_free(&b);
    ragd_serve_opts_help(&b);
    for (const ragd_opt_def *d = ragd_serve_opt_table(); d->name; d++) CHECK(strstr(b.data, d->env) != NULL);
    ragd_buf_free(&b);
    ragd_serve_opts_free(&o);
    ragd_err_free(&err);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
}

typedef struct {
    const char *text, *needle;
} bad_config;

/* Each text written to path and parsed with argv: refused, the message naming the file and the needle. */
static void check_bad_configs(const char *tag, const char *path, const bad_config *bad, size_t n, char **argv) {
    ragd_serve_opts o;
    ragd_err err = {0};
    for (size_t i = 0; i < n; i++) {
        write_file(path, bad[i].text);
        CHECK_EQ_INT(parse(3, argv, &o, &err), RAGD_EINVAL);
        if (!strstr(ragd_err_msg(&err), bad[i].needle) || !strstr(ragd_err_msg(&err), path))
            fprintf(stderr, "%s case %zu: %s\n", tag, i, ragd_err_msg(&err));
        CHECK(strstr(ragd_err_msg(&err), bad[i].needle) != NULL);
        CHECK(strstr(ragd_err_msg(&err), path) != NULL);
    }
    ragd_err_free(&err);
}

/* --config FILE: values, comments and strings as TOML; file < env < argv; errors name FILE:LINE */
static void test_config_file(void) {
    ragd_serve_opts o;
    ragd_err err = {0};
    char path[] = "/tmp/ragd_cfg_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    write_file(path, "\xEF\xBB\xBF# ragd serve options\n"
                     "[serve]\n"
                     "chat = \"/models/a # not a comment\"   # a comment\n"
                     "max_seqs = 64\n"
                     "  port=9300\n"
                     "gpu-memory = 0.5\n"
                     "demo = true\n"
                     "served-name = 'lit\\eral'\n"
                     "host = \"::\\u0031\"\n");
    char *a1[] = {"serve", "--config", path};
    unsetenv("RAGD_PORT");
    unsetenv("RAGD_MAX_SEQS");
    CHECK_EQ_INT(parse(3, a1, &o, &err), RAGD_OK);
    CHECK_STR(o.chat, "/models/a # not a comment");
    CHECK_EQ_INT(o.max_seqs, 64);
    CHECK_EQ_INT(o.port, 9300);
    CHECK_STR(o.gpu_memory, "0.5");
    CHECK(o.demo);
    CHECK_STR(o.served_name, "lit\\eral");
    CHECK_STR(o.host, "::1");
    CHECK_STR(o.config, path);
    ragd_serve_opts_free(&o);
    /* the environment overrides the file, the command line both; RAGD_CONFIG names the file too */
    setenv("RAGD_PORT", "9400", 1);
    setenv("RAGD_CONFIG", path, 1);
    char *a0[] = {"serve"};
    CHECK_EQ_INT(parse(1, a0, &o, &err), RAGD_OK);
    CHECK_EQ_INT(o.port, 9400);
    CHECK_EQ_INT(o.max_seqs, 64);
    ragd_serve_opts_free(&o);
    char *a2[] = {"serve", "--max-seqs=5"};
    CHECK_EQ_INT(parse(2, a2, &o, &err), RAGD_OK);
    CHECK_EQ_INT(o.max_seqs, 5);
    CHECK_EQ_INT(o.port, 9400);
    ragd_serve_opts_free(&o);
    unsetenv("RAGD_PORT");
    unsetenv("RAGD_CONFIG");

    const bad_config bad[] = {
        {"port = 9000\nnope = 1\n", ":2: unknown option 'nope'"},
        {"port = 70000\n", ":1: port: 70000 is outside"},
        {"max-seqs = 4\nmax_seqs = 5\n", ":2: 'max-seqs' is set twice"},
        {"chat = \"/a\n", ":1: chat: unterminated string"},
        {"chat = [\"/a\"]\n", "arrays and inline tables"},
        {"[other]\n", ":1: only a [serve] table"},
        {"port 9000\n", ":1: expected 'option = value'"},
        {"port = 9000 9001\n", ":1: port: unexpected text after the value"},
        {"config = \"/x\"\n", "cannot name another one"},
        {"device = \"tpu\"\n", "cpu|cuda|auto"},
        {"demo = maybe\n", "not a boolean"},
        {"chat = \"\\q\"\n", "unknown escape"},
    };
    check_bad_configs("toml", path, bad, sizeof bad / sizeof bad[0], a1);
    unlink(path);
    CHECK_EQ_INT(parse(3, a1, &o, &err), RAGD_EINVAL);
    CHECK(strstr(ragd_err_msg(&err), "cannot open") != NULL);
    ragd_err_free(&err);
}

/* --config FILE.yaml: the same table and precedence as TOML, FILE:LINE errors from libyaml's marks */
static void test_config_yaml(void) {
    ragd_serve_opts o;
    ragd_err err = {0};
    char path[] = "/tmp/ragd_cfg_XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    CHECK(fd >= 0);
    close(fd);
    write_file(path, "\xEF\xBB\xBF# ragd serve options\n"
                     "serve:\n"
                     "  chat: \"/models/a # not a comment\"   # a comment\n"
                     "  max_seqs: 64\n"
                     "  port: 9300\n"
                     "  gpu-memory: 0.5\n"
                     "  demo: True\n"
                     "  served-name: 'lit\\eral'\n"
                     "  host: \"::\\x31\"\n");
    char *a1[] = {"serve", "--config", path};
    unsetenv("RAGD_PORT");
    unsetenv("RAGD_MAX_SEQS");
    unsetenv("RAGD_CONFIG");
    CHECK_EQ_INT(parse(3, a1, &o, &err), RAGD_OK);
    CHECK_STR(o.chat, "/models/a # not a comment");
    CHECK_EQ_INT(o.max_seqs, 64);
    CHECK_EQ_INT(o.port, 9300);
    CHECK_STR(o.gpu_memory, "0.5");
    CHECK(o.demo);
    CHECK_STR(o.served_name, "lit\\eral");
    CHECK_STR(o.host, "::1");
    ragd_serve_opts_free(&o);
    /* flat at the top works too; the environment overrides the file, the command line both */
    write_file(path, "---\nmax-seqs: 7\nport: 9301\n...\n");
    setenv("RAGD_PORT", "9400", 1);
    char *a2[] = {"serve", "--config", path, "--max-seqs=5"};
    CHECK_EQ_INT(parse(3, a2, &o, &err), RAGD_OK);
    CHECK_EQ_INT(o.port, 9400);
    CHECK_EQ_INT(o.max_seqs, 7);
    ragd_serve_opts_free(&o);
    CHECK_EQ_INT(parse(4, a2, &o, &err), RAGD_OK);
    CHECK_EQ_INT(o.max_seqs, 5);
    ragd_serve_opts_free(&o);
    unsetenv("RAGD_PORT");
    /* an empty file (only comments) sets nothing */
    write_file(path, "# nothing\n");
    CHECK_EQ_INT(parse(3, a1, &o, &err), RAGD_OK);
    CHECK_EQ_INT(o.max_seqs, 8);
    ragd_serve_opts_free(&o);

    const bad_config bad[] = {
        {"port: 9000\nnope: 1\n", ":2: unknown option 'nope'"},
        {"serve:\n  port: 70000\n", ":2: port: 70000 is outside"},
        {"max-seqs: 4\nmax_seqs: 5\n", ":2: 'max-seqs' is set twice"},
        {"chat: [\"/a\"]\n", ":1: chat: a sequence"},
        {"chat:\n  - /a\n", ":2: chat: a sequence"},
        {"chat:\n  path: /a\n", ":2: chat: a nested mapping"},
        {"stop:\n  - a\n", ":1: unknown option 'stop'"},
        {"serve:\n  chat: /a\nport: 1\n", ":3: serve: must be the only top-level key"},
        {"port: 1\nserve:\n  chat: /a\n", ":3: serve: must be the only top-level key"},
        {"serve: 1\n", ":1: serve: holds a mapping"},
        {"chat: &m /a\nembed: *m\n", ":1: chat: anchors"},
        {"port: !!int 9000\n", ":1: port: tags"},
        {"chat: |\n  /a\n", ":1: chat: block scalars"},
        {"port:\n", ":1: port: missing value"},
        {"- port\n", ":1: expected a mapping"},
        {"just text\n", ":1: expected a mapping"},
        {"port: 1\n---\nport: 2\n", ":2: one YAML document"},
        {"port: 1\nchat: a: b\n", ":2: YAML:"},
        {"chat: \"/a\n", "YAML:"},
        {"config: /x\n", ":1: a config file cannot name another one"},
        {"device: tpu\n", "cpu|cuda|auto"},
        {"demo: maybe\n", "not a boolean"},
        {"chat: \"a\\0b\"\n", "NUL"},
    };
    check_bad_configs("yaml", path, bad, sizeof bad / sizeof bad[0], a1);
    unlink(path);
    /* no extension: the first line decides (YAML here, TOML in test_config_file) */
    char plain[] = "/tmp/ragd_cfg_XXXXXX";
    fd = mkstemp(plain);
    CHECK(fd >= 0);
    close(fd);
    char *a3[] = {"serve", "--config", plain};
    write_file(plain, "# yaml without a name\nmax-seqs: 9\nchat: /a=b\n");
    CHECK_EQ_INT(parse(3, a3, &o, &err), RAGD_OK);
    CHECK_EQ_INT(o.max_seqs, 9);
    CHECK_STR(o.chat, "/a=b");
    ragd_serve_opts_free(&o);
    write_file(plain, "chat = \"/a:b\"\n");
    CHECK_EQ_INT(parse(3, a3, &o, &err), RAGD_OK);
    CHECK_STR(o.chat, "/a:b");
    ragd_serve_opts_free(&o);
    unlink(plain);
    ragd_err_free(&err);
}

static void test_mem(void) {
    size_t v = 0;
    ragd_err err = {0};
    CHECK_EQ_INT(ragd_parse_mem("8G", 0, &v, &err), RAGD_OK);
    CHECK_EQ_INT(v, 8ull << 30);
    CHECK_EQ_INT(ragd_parse_mem("512MiB", 0, &v, &err), RAGD_OK);
    CHECK_EQ_INT(v, 512ull << 20);
    CHECK_EQ_INT(ragd_parse_mem("123456", 0, &v, &err), RAGD_OK);
    CHECK_EQ_INT(v, 123456);
    CHECK_EQ_INT(ragd_parse_mem("0.5", 1000, &v, &err), RAGD_OK);
    CHECK_EQ_INT(v, 500);
    CHECK_EQ_INT(ragd_parse_mem("0.5", 0, &v, &err), RAGD_EINVAL);
    CHECK_EQ_INT(ragd_parse_mem("-1", 100, &v, &err), RAGD_EINVAL);
    CHECK_EQ_INT(ragd_parse_mem("8Q", 100, &v, &err), RAGD_EINVAL);
    CHECK_EQ_INT(ragd_parse_mem("abc", 100, &v, &err), RAGD_EINVAL);
    ragd_err_free(&err);
}

static void test_metrics(void) {
    ragd_metrics *m = ragd_metrics_create();
    ragd_metrics_request(m, RAGD_EP_EMBED, 200, 0.003);
    ragd_metrics_request(m, RAGD_EP_EMBED, 200, 0.2);
    ragd_metrics_request(m, RAGD_EP_EMBED, 429, 0.0001);
    ragd_metrics_request(m, RAGD_EP_V1_CHAT, 418, 1);
    ragd_metrics_batch(m, RAGD_MTASK_EMBED, 3, 100);
    ragd_metrics_rejected(m, RAGD_REJECT_QUEUE_FULL);
    ragd_buf b = {0};
    ragd_metrics_render(m, &b);
    CHECK(strstr(b.data, "ragd_http_requests_total{endpoint=\"/embed\",status=\"200\"} 2\n") != NULL);
    CHECK(strstr(b.data, "ragd_http_requests_total{endpoint=\"/embed\",status=\"429\"} 1\n") != NULL);
    CHECK(strstr(b.data, "ragd_http_requests_total{endpoint=\"/v1/chat/completions\",status=\"other\"} 1\n") != NULL);
    /* cumulative buckets: 0.0001 ≤ 0.0005; 0.003 ≤ 0.005; 0.2 ≤ 0.25 */
    CHECK(strstr(b.data, "ragd_http_request_duration_seconds_bucket{endpoint=\"/embed\",le=\"0.0005\"} 1\n") != NULL);
    CHECK(strstr(b.data, "ragd_http_request_duration_seconds_bucket{endpoint=\"/embed\",le=\"0.005\"} 2\n") != NULL);
    CHECK(strstr(b.data, "ragd_http_request_duration_seconds_bucket{endpoint=\"/embed\",le=\"0.1\"} 2\n") != NULL);
    CHECK(strstr(b.data, "ragd_http_request_duration_seconds_bucket{endpoint=\"/embed\",le=\"+Inf\"} 3\n") != NULL);
    CHECK(strstr(b.data, "ragd_http_request_duration_seconds_count{endpoint=\"/embed\"} 3\n") != NULL);
    CHECK(strstr(b.data, "ragd_batch_tokens_bucket{task=\"embed\",le=\"128\"} 1\n") != NULL);
    CHECK(strstr(b.data, "ragd_batch_tokens_bucket{task=\"embed\",le=\"64\"} 0\n") != NULL);
    CHECK(strstr(b.data, "ragd_rejected_requests_total{reason=\"queue_full\"} 1\n") != NULL);
    /* every family has HELP and TYPE once */
    CHECK(strstr(b.data, "# TYPE ragd_queue_time_seconds histogram\n") != NULL);
    ragd_buf_free(&b);
    ragd_metrics_free(m);
}

/* the connection and memory options of issue 11: defaults and bounds */
static void test_hardening_options(void) {
    ragd_serve_opts o;
    ragd_err err = {0};
    char *a0[] = {"serve"};
    CHECK_EQ_INT(parse(1, a0, &o, &err), RAGD_OK);
    CHECK_EQ_INT(o.max_connections_per_client, 256);
    CHECK_EQ_INT(o.header_timeout_ms, 10000);
    CHECK_EQ_INT(o.body_timeout_ms, 30000);
    CHECK_EQ_INT(o.max_header_bytes, 16384);
    CHECK_EQ_INT(o.max_request_memory, 1073741824LL);
    ragd_serve_opts_free(&o);
    char *a1[] = {"serve", "--header-timeout-ms", "50"};
    CHECK_EQ_INT(parse(3, a1, &o, &err), RAGD_EINVAL);
    CHECK(strstr(ragd_err_msg(&err), "--header-timeout-ms") != NULL);
    char *a2[] = {"serve", "--max-request-memory", "1000"};
    CHECK_EQ_INT(parse(3, a2, &o, &err), RAGD_EINVAL);
    char *a3[] = {"serve", "--max-connections-per-client", "0"};
    CHECK_EQ_INT(parse(3, a3, &o, &err), RAGD_OK); /* 0: no cap */
    ragd_serve_opts_free(&o);
    ragd_err_free(&err);
}

int main(void) {
    test_options();
    test_config_file();
    test_config_yaml();
    test_hardening_options();
    test_mem();
    test_metrics();
    TEST_DONE();
}
