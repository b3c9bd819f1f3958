/* test_model_files.c — ragd_model_same_files: identical copies of a model directory (or GGUF file) are the
 * same model; a different byte, name or size, or an extra file, is not; a symlink to the same directory is. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/model.h"
#include "test.h"

static char g_root[256];

static void put(const char *dir, const char *name, const char *content, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) { perror(p); exit(2); }
    fwrite(content, 1, n, f);
    fclose(f);
}

static void mk_model(const char *name, const char *weights, size_t wn, bool extra) {
    char d[512];
    snprintf(d, sizeof d, "%s/%s", g_root, name);
    mkdir(d, 0755);
    put(d, "config.json", "{\"model_type\": \"qwen3\"}", 23);
    put(d, "model.safetensors", weights, wn);
    put(d, ".hidden", name, strlen(name)); /* dot files are ignored */
    if (extra) put(d, "README.md", "x", 1);
}

static bool same(const char *a, const char *b, uint64_t *bytes) {
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/%s", g_root, a);
    snprintf(pb, sizeof pb, "%s/%s", g_root, b);
    bool s = false;
    ragd_err err = {0};
    ragd_status st = ragd_model_same_files(pa, pb, &s, bytes, &err);
    if (st) { fprintf(stderr, "same_files(%s, %s): %s\n", a, b, ragd_err_msg(&err)); t_failed++; }
    ragd_err_free(&err);
    return s;
}

int main(void) {
    snprintf(g_root, sizeof g_root, "/tmp/ragd-model-files-XXXXXX");
    if (!mkdtemp(g_root)) { perror("mkdtemp"); return 2; }
    /* 3 MB of weights so the hashing reads several buffers */
    size_t wn = 3u << 20;
    char *w = malloc(wn), *w2 = malloc(wn);
    for (size_t i = 0; i < wn; i++) w[i] = (char)(i * 2654435761u >> 13);
    memcpy(w2, w, wn);
    w2[wn - 7] ^= 1; /* one bit in the last buffer */
    mk_model("a", w, wn, false);
    mk_model("copy", w, wn, false);
    mk_model("flip", w2, wn, false);
    mk_model("extra", w, wn, true);
    mk_model("short", w, wn - 1, false);
    char link[512], target[512];
    snprintf(target, sizeof target, "%s/a", g_root);
    snprintf(link, sizeof link, "%s/link", g_root);
    CHECK(symlink(target, link) == 0);

    uint64_t bytes = 0;
    CHECK(same("a", "copy", &bytes));
    CHECK_EQ_INT(bytes, wn + 23); /* config + weights (dot files not counted) */
    CHECK(same("a", "link", NULL));
    CHECK(same("a", "a", NULL));
    CHECK(!same("a", "flip", NULL));
    CHECK(!same("a", "extra", NULL));
    CHECK(!same("a", "short", NULL));
    /* single files (GGUF-style) */
    CHECK(same("a/model.safetensors", "copy/model.safetensors", &bytes));
    CHECK_EQ_INT(bytes, wn);
    CHECK(!same("a/model.safetensors", "flip/model.safetensors", NULL));
    CHECK(!same("a", "copy/model.safetensors", NULL)); /* a directory and a file */
    /* a missing path is an error, not "different" */
    {
        bool s = true;
        ragd_err err = {0};
        char pa[512];
        snprintf(pa, sizeof pa, "%s/nope", g_root);
        CHECK(ragd_model_same_files(pa, target, &s, NULL, &err) == RAGD_EIO);
        CHECK(!s);
        CHECK(strstr(ragd_err_msg(&err), "nope") != NULL);
        ragd_err_free(&err);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
    free(w);
    free(w2);
    printf("test_model_files: %d passed, %d failed\n", t_passed, t_failed);
    return t_failed ? 1 : 0;
}
