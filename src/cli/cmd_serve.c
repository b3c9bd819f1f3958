/* cmd_serve.c — PLACEHOLDER: not implemented yet; every command here fails loudly. */
#include <stdio.h>

#include "cli/cli.h"

int ragd_cmd_serve(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "ragd serve: not implemented in this build\n");
    return 2;
}

