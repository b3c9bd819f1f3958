/* main.c — `ragd <command> ...`: dispatches to the subcommands in cli.h.
 *
 * SIGTERM and SIGINT are blocked from the first instruction: `ragd serve` takes them with sigwait
 * (cmd_serve.c), so one that arrives while it is still starting stays pending and shuts it down cleanly
 * (exit 0, logged) instead of killing it (exit 143, no log). Every other command gets the default action
 * back at once. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/common.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"serve", ragd_cmd_serve, "serve embeddings, reranking and chat over HTTP"},
    {"embed", ragd_cmd_embed, "embed JSON lines {\"text\": ...} from stdin"},
    {"rerank", ragd_cmd_rerank, "score JSON lines {\"text\": doc} against --query"},
    {"generate", ragd_cmd_generate, "generate text from --prompt"},
    {"tokenize", ragd_cmd_tokenize, "tokenize JSON lines {\"text\": ...} from stdin"},
    {"detokenize", ragd_cmd_detokenize, "decode JSON lines {\"ids\": [...]} from stdin"},
    {"inspect", ragd_cmd_inspect, "describe a model and its memory needs"},
    {"pull", ragd_cmd_pull, "download a model repository from the Hugging Face hub"},
};

static void usage(FILE *f) {
    fprintf(f, "ragd %s — embeddings, reranking and chat generation\n\nusage: ragd <command> [options]\n\n",
            RAGD_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`ragd <command> --help` describes a command's options.\n");
}

int main(int argc, char **argv) {
    sigset_t stop_sigs;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGTERM);
    sigaddset(&stop_sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);
    if (argc < 2 || strcmp(argv[1], "serve")) pthread_sigmask(SIG_UNBLOCK, &stop_sigs, NULL);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("ragd %s\n", RAGD_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "ragd: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
