/* cmd_tokenize.c — PLACEHOLDER: not implemented yet; every command here fails loudly. */
#include <stdio.h>

#include "cli/cli.h"

int ragd_cmd_tokenize(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "ragd tokenize: not implemented in this build\n");
    return 2;
}

int ragd_cmd_detokenize(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "ragd detokenize: not implemented in this build\n");
    return 2;
}

