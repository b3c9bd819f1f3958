/* cli.h — the subcommands of the `ragd` binary. Each returns the process exit code:
 * 0 success, 1 a failure while running (bad input line, model error), 2 bad usage. */
#ifndef RAGD_CLI_H
#define RAGD_CLI_H

#include <stdbool.h>

int ragd_cmd_tokenize(int argc, char **argv);   /* cmd_tokenize.c */
int ragd_cmd_detokenize(int argc, char **argv); /* cmd_tokenize.c */
int ragd_cmd_embed(int argc, char **argv);      /* cmd_engine.c */
int ragd_cmd_rerank(int argc, char **argv);     /* cmd_engine.c */
int ragd_cmd_generate(int argc, char **argv);   /* cmd_engine.c */
int ragd_cmd_inspect(int argc, char **argv);    /* cmd_inspect.c */
int ragd_cmd_serve(int argc, char **argv);      /* cmd_serve.c */
int ragd_cmd_pull(int argc, char **argv);       /* cmd_pull.c */

/* cli_args.c: the whole of s as a number in [lo, hi] into *out; false (and *out untouched) otherwise. */
bool ragd_cli_parse_int(const char *s, long lo, long hi, int *out);
bool ragd_cli_parse_float(const char *s, float lo, float hi, float *out);

#endif
