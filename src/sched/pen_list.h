/* pen_list.h — a sequence's logit edit list (penalties and logit_bias), kept up to date token by token.
 *
 * The edits of a row (engine/sample_math.h ragd_logit_edit: id, bias, count in the generated tokens,
 * in_seq) used to be rebuilt from the whole sequence every step — O(length), 4.9 ms per step at 64
 * sequences of 16k tokens with a repetition penalty. A ragd_pen_list holds them per sequence and is
 * updated with each new token (a hash of id → entry), so a step copies the list instead of rescanning
 * the tokens. The list is entry for entry (order included) what ragd_pen_list_rebuild gives from
 * scratch: the logit_bias ids first, in their given order, then every other id in order of its first
 * occurrence among the tokens that count (prompt + generated with a repetition penalty, else the
 * generated ones; none with logit_bias alone) — tested against it over long random histories.
 *
 * Threading: a list belongs to one sequence of the scheduler thread. Memory grows with the distinct
 * ids (doubling); allocation failure is RAGD_ENOMEM and leaves the list as it was.
 */
#ifndef RAGD_SCHED_PEN_LIST_H
#define RAGD_SCHED_PEN_LIST_H

#include "common/common.h"
#include "engine/sample_math.h"

typedef struct ragd_pen_list {
    ragd_logit_edit *e; /* [n] the edits */
    int n, cap;
    int32_t *slot;      /* [hcap] open addressing: entry index + 1, 0 empty */
    int hcap;           /* power of two, ≥ 2 × cap */
    bool rep, fp;       /* which tokens count: rep = prompt + generated, fp = generated */
} ragd_pen_list;

/* Starts the list of a sequence: the logit_bias entries, then the prompt's ids when rep. */
ragd_status ragd_pen_list_start(ragd_pen_list *l, const ragd_logit_edit *bias, int n_bias, bool rep, bool fp,
                                const int32_t *prompt, int n_prompt, ragd_err *err);
/* Adds a generated token. */
ragd_status ragd_pen_list_push(ragd_pen_list *l, int32_t id, ragd_err *err);
void ragd_pen_list_free(ragd_pen_list *l); /* NULL ok; the struct is zeroed */

/* The reference: the list from scratch over tokens[0..n_tok) (prompt = the first n_prompt), into
 * out[] (room for n_bias + n_tok entries). stamp/idx: [n_vocab] scratch, *cur a stamp counter (stamp
 * zeroed when it wraps). Returns the number of entries. */
int ragd_pen_list_rebuild(const ragd_logit_edit *bias, int n_bias, bool rep, bool fp, const int32_t *tokens, int n_tok,
                          int n_prompt, uint32_t *stamp, int32_t *idx, uint32_t *cur, int n_vocab, ragd_logit_edit *out);

#endif
