/* cmd_inspect.c — PLACEHOLDER: not implemented yet; fails loudly. */
#include <stdio.h>

#include "cli/cli.h"

int ragd_cmd_inspect(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "ragd inspect: not implemented in this build\n");
    return 2;
}

