/* cmd_engine.c — PLACEHOLDER: not implemented yet; every command here fails loudly. */
#include <stdio.h>

#include "cli/cli.h"

int ragd_cmd_embed(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "ragd embed: not implemented in this build\n");
    return 2;
}

int ragd_cmd_rerank(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "ragd rerank: not implemented in this build\n");
    return 2;
}

int ragd_cmd_generate(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "ragd generate: not implemented in this build\n");
    return 2;
}
