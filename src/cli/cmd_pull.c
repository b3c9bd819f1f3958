/* cmd_pull.c — `ragd pull REPO[@REVISION] [--dir DIR] [--include GLOB]...`: downloads a Hugging Face
 * model repository's files (src/hub). Prints the model path to load on stdout (the folder, or the
 * .gguf file when one GGUF was pulled), so that `ragd serve --chat "$(ragd pull ...)"` works. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/cli.h"
#include "hub/hub.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ragd pull REPO[@REVISION] [--dir DIR] [--include GLOB]... [--quiet]\n"
            "  Downloads a model from the Hugging Face hub: config, tokenizer and safetensors files by default,\n"
            "  or the files matching --include (repeatable; e.g. --include '*Q4_0.gguf').\n"
            "  Partial files resume; every file is checked against the hub's sha256 before it gets its name.\n"
            "  --dir DIR   destination (default $RAGD_CACHE/models/OWNER--NAME, cache ~/.cache/ragd)\n"
            "  environment: HF_TOKEN (private or gated repositories), HF_ENDPOINT (default https://huggingface.co),\n"
            "               RAGD_PULL_RETRIES (transient failures retried per file, default 3)\n"
            "  Prints the path to load (folder or .gguf file) on stdout.\n");
}

int ragd_cmd_pull(int argc, char **argv) {
    const char *spec = NULL, *dir = NULL;
    const char **include = calloc((size_t)argc + 1, sizeof *include);
    size_t n_include = 0;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(include);
            return 0;
        } else if (!strcmp(a, "--dir") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(a, "--include") && i + 1 < argc) {
            include[n_include++] = argv[++i];
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = true;
        } else if (a[0] == '-') {
            fprintf(stderr, "ragd pull: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            free(include);
            return 2;
        } else if (!spec) {
            spec = a;
        } else {
            fprintf(stderr, "ragd pull: one repository at a time ('%s' and '%s')\n", spec, a);
            free(include);
            return 2;
        }
    }
    if (!spec) {
        usage(stderr);
        free(include);
        return 2;
    }
    char *repo = ragd_xstrdup(spec), *at = strchr(repo, '@');
    const char *rev = NULL;
    if (at) {
        *at = 0;
        rev = at + 1;
        if (!rev[0]) {
            fprintf(stderr, "ragd pull: empty revision after '@' in '%s'\n", spec);
            free(repo);
            free(include);
            return 2;
        }
    }
    ragd_hub_opts o = {.repo = repo, .revision = rev, .dir = dir, .include = include, .n_include = n_include,
                       .retries = -1, .progress = !quiet && isatty(2), .quiet = quiet};
    char *path = NULL;
    ragd_err err = {0};
    ragd_status st = ragd_hub_pull(&o, &path, &err);
    int rc = 0;
    if (st) {
        fprintf(stderr, "ragd pull: %s\n", ragd_err_msg(&err));
        rc = 1;
    } else {
        printf("%s\n", path);
    }
    ragd_err_free(&err);
    free(path);
    free(repo);
    free(include);
    return rc;
}
