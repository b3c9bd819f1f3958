/* pen_list.c — per-sequence logit edit lists updated token by token (pen_list.h). */
#include "sched/pen_list.h"

#include <stdlib.h>

static inline uint32_t hash_id(int32_t id) { return (uint32_t)id * 0x9E3779B1u; }

/* The entry of id, or -1; *pos: its hash slot (or the empty slot where it would go). */
static int find(const ragd_pen_list *l, int32_t id, int *pos) {
    uint32_t mask = (uint32_t)l->hcap - 1, h = hash_id(id) & mask;
    for (;; h = (h + 1) & mask) {
        int32_t s = l->slot[h];
        if (!s || l->e[s - 1].id == id) {
            *pos = (int)h;
            return s ? s - 1 : -1;
        }
    }
}

static bool grow(ragd_pen_list *l, int need) {
    if (need <= l->cap) return true;
    int cap = l->cap ? l->cap : 64;
    while (cap < need) cap *= 2;
    ragd_logit_edit *e = realloc(l->e, (size_t)cap * sizeof *e);
    if (!e) return false;
    l->e = e;
    int hcap = 2 * cap;
    int32_t *slot = calloc((size_t)hcap, sizeof *slot);
    if (!slot) return false; /* l->cap unchanged: the old table still serves */
    free(l->slot);
    l->slot = slot;
    l->hcap = hcap;
    l->cap = cap;
    for (int i = 0; i < l->n; i++) {
        int pos;
        find(l, l->e[i].id, &pos);
        l->slot[pos] = i + 1;
    }
    return true;
}

/* counts the occurrence of id (generated: also its count) */
static ragd_status add(ragd_pen_list *l, int32_t id, bool generated, ragd_err *err) {
    if (!grow(l, l->n + 1)) return ragd_err_set(err, RAGD_ENOMEM, "logit edit list of %d entries", l->n + 1);
    int pos, i = find(l, id, &pos);
    if (i < 0) {
        i = l->n++;
        l->e[i] = (ragd_logit_edit){.id = id};
        l->slot[pos] = i + 1;
    }
    l->e[i].in_seq = 1;
    if (generated) l->e[i].count++;
    return RAGD_OK;
}

ragd_status ragd_pen_list_start(ragd_pen_list *l, const ragd_logit_edit *bias, int n_bias, bool rep, bool fp,
                                const int32_t *prompt, int n_prompt, ragd_err *err) {
    l->n = 0;
    l->rep = rep;
    l->fp = fp;
    if (!grow(l, n_bias + (rep ? n_prompt : 0) + 1))
        return ragd_err_set(err, RAGD_ENOMEM, "logit edit list of %d entries", n_bias + n_prompt);
    memset(l->slot, 0, (size_t)l->hcap * sizeof *l->slot);
    for (int j = 0; j < n_bias; j++) { /* distinct ids (checked by the HTTP layer) */
        int pos, i = find(l, bias[j].id, &pos);
        RAGD_ASSERT(i < 0);
        l->e[l->n] = (ragd_logit_edit){.id = bias[j].id, .bias = bias[j].bias};
        l->slot[pos] = ++l->n;
    }
    if (rep)
        for (int j = 0; j < n_prompt; j++) {
            ragd_status st = add(l, prompt[j], false, err);
            if (st) return st;
        }
    return RAGD_OK;
}

ragd_status ragd_pen_list_push(ragd_pen_list *l, int32_t id, ragd_err *err) {
    if (!l->rep && !l->fp) return RAGD_OK;
    return add(l, id, true, err);
}

void ragd_pen_list_free(ragd_pen_list *l) {
    if (!l) return;
    free(l->e);
    free(l->slot);
    memset(l, 0, sizeof *l);
}

int ragd_pen_list_rebuild(const ragd_logit_edit *bias, int n_bias, bool rep, bool fp, const int32_t *tokens, int n_tok,
                          int n_prompt, uint32_t *stamp, int32_t *idx, uint32_t *cur, int n_vocab, ragd_logit_edit *out) {
    if (++*cur == 0) {
        memset(stamp, 0, sizeof *stamp * (size_t)n_vocab);
        *cur = 1;
    }
    const uint32_t c = *cur;
    int k = 0;
    for (int j = 0; j < n_bias; j++) {
        int32_t id = bias[j].id;
        stamp[id] = c;
        idx[id] = k;
        out[k++] = (ragd_logit_edit){.id = id, .bias = bias[j].bias};
    }
    if (rep || fp)
        for (int j = rep ? 0 : n_prompt; j < n_tok; j++) {
            int32_t id = tokens[j];
            if (stamp[id] != c) {
                stamp[id] = c;
                idx[id] = k;
                out[k++] = (ragd_logit_edit){.id = id};
            }
            ragd_logit_edit *e = &out[idx[id]];
            e->in_seq = 1;
            if (j >= n_prompt) e->count++;
        }
    return k;
}
