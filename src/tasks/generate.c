/* generate.c — text streaming with stop handling (ragd_gen_stream) and the single-sequence generation
 * loop the CLI uses (prefill in chunks, then one token per step on KV slot 0).
 *
 * Stop strings: the stream keeps all final text; after each token it looks for the earliest stop string
 * occurrence (cut there, finish STOP); otherwise it releases the text except its longest suffix that is a
 * proper prefix of some stop string (that suffix might still become a stop string). A stop token id
 * (stop_token_ids) ends the sequence as EOS does: finish STOP, its text not emitted. */
#include <stdlib.h>

#include "tasks/tasks.h"

ragd_status ragd_gen_stream_init(ragd_gen_stream *g, const ragd_model *m, const ragd_gen_opts *o, ragd_err *err) {
    memset(g, 0, sizeof *g);
    if (!m->tok) return ragd_err_set(err, RAGD_EUNSUPPORTED, "model %s has no tokenizer", m->name);
    if (o->max_tokens < 1) return ragd_err_set(err, RAGD_ERANGE, "max_tokens %d must be ≥ 1", o->max_tokens);
    for (int i = 0; i < o->n_stop; i++)
        if (!o->stop[i] || !o->stop[i][0]) return ragd_err_set(err, RAGD_EINVAL, "stop string %d is empty", i);
    g->m = m;
    g->o = o;
    return RAGD_OK;
}

void ragd_gen_stream_free(ragd_gen_stream *g) {
    if (!g) return;
    ragd_buf_free(&g->text);
}

static bool is_eos(const ragd_model *m, int32_t id) {
    for (int i = 0; i < m->cfg.n_eos; i++)
        if (m->cfg.eos_ids[i] == id) return true;
    return false;
}

/* earliest stop-string match at or after `from`: its offset, or -1 */
static long find_stop(const ragd_gen_stream *g, size_t from) {
    long best = -1;
    for (int i = 0; i < g->o->n_stop; i++) {
        const char *s = g->o->stop[i];
        size_t k = strlen(s);
        for (size_t p = from; p + k <= g->text.len; p++)
            if (!memcmp(g->text.data + p, s, k)) {
                if (best < 0 || (long)p < best) best = (long)p;
                break;
            }
    }
    return best;
}

/* bytes at the end of the text that could begin a stop string */
static size_t held_suffix(const ragd_gen_stream *g) {
    size_t hold = 0;
    for (int i = 0; i < g->o->n_stop; i++) {
        const char *s = g->o->stop[i];
        size_t k = strlen(s);
        for (size_t l = k - 1; l > hold; l--)
            if (l <= g->text.len && !memcmp(g->text.data + g->text.len - l, s, l)) {
                hold = l;
                break;
            }
    }
    return hold;
}

static void release(ragd_gen_stream *g, size_t upto, ragd_buf *emit) {
    if (upto > g->emitted) {
        ragd_buf_append(emit, g->text.data + g->emitted, upto - g->emitted);
        g->emitted = upto;
    }
}

ragd_status ragd_gen_stream_push(ragd_gen_stream *g, int32_t id, ragd_buf *emit, ragd_finish *finish, ragd_err *err) {
    *finish = g->finish;
    if (g->finish != RAGD_FINISH_NONE) return RAGD_OK;
    g->n_tokens++;
    bool eos = !g->o->ignore_eos && is_eos(g->m, id);
    for (int i = 0; i < g->o->n_stop_ids && !eos; i++) eos = g->o->stop_ids[i] == id;
    size_t before = g->text.len;
    /* ids in the embedding's padding rows (beyond the tokenizer, e.g. Qwen3's 151669..151935) decode to
     * nothing, as in HF tokenizers' decode */
    bool known = ragd_tokenizer_id_to_token(g->m->tok, id) != NULL;
    if (!eos && known) {
        ragd_status st = ragd_tok_stream_push(g->m->tok, &g->dec, id, !g->o->keep_special, &g->text, err);
        if (st) return st;
    }
    if (eos || g->n_tokens >= g->o->max_tokens) ragd_tok_stream_flush(g->m->tok, &g->dec, &g->text);
    /* a stop string can only end in the new bytes: search from before - (longest stop - 1) */
    size_t longest = 0;
    for (int i = 0; i < g->o->n_stop; i++) {
        size_t k = strlen(g->o->stop[i]);
        if (k > longest) longest = k;
    }
    size_t from = before >= longest ? before - longest + 1 : 0;
    /* before min_tokens no stop string ends the text (vLLM's stop checker skips them too) */
    long at = g->o->n_stop && g->n_tokens >= g->o->min_tokens ? find_stop(g, from) : -1;
    if (at >= 0) {
        g->text.len = (size_t)at;
        g->text.data[at] = '\0';
        g->finish = RAGD_FINISH_STOP;
    } else if (eos) {
        g->finish = RAGD_FINISH_STOP;
    } else if (g->n_tokens >= g->o->max_tokens) {
        g->finish = RAGD_FINISH_LENGTH;
    }
    if (g->finish != RAGD_FINISH_NONE) release(g, g->text.len, emit);
    else release(g, g->text.len - held_suffix(g), emit);
    *finish = g->finish;
    return RAGD_OK;
}

void ragd_gen_stream_end(ragd_gen_stream *g, ragd_buf *emit, ragd_finish *finish) {
    if (g->finish == RAGD_FINISH_NONE) {
        ragd_tok_stream_flush(g->m->tok, &g->dec, &g->text);
        g->finish = RAGD_FINISH_STOP;
        release(g, g->text.len, emit);
    }
    *finish = g->finish;
}

bool ragd_gen_has_edits(const ragd_gen_opts *o) {
    return o->n_logit_bias > 0 || o->presence_penalty != 0 || o->frequency_penalty != 0 ||
           (o->repetition_penalty > 0 && o->repetition_penalty != 1);
}

void ragd_gen_sample_params(const ragd_model *m, const ragd_gen_opts *o, int choice, int n_gen, bool want_logprob,
                            int n_top, ragd_sample_params *p) {
    memset(p, 0, sizeof *p);
    p->temperature = o->sampling.temperature;
    p->top_k = o->sampling.top_k;
    p->top_p = o->sampling.top_p;
    p->min_p = o->sampling.min_p;
    p->seed = o->sampling.seed + (uint64_t)choice;
    p->counter = (uint64_t)n_gen;
    p->want_logprob = want_logprob;
    p->n_top = n_top;
    p->active = 1;
    p->repetition_penalty = o->repetition_penalty;
    p->frequency_penalty = o->frequency_penalty;
    p->presence_penalty = o->presence_penalty;
    if (n_gen < o->min_tokens) { /* EOS and the stop token ids cannot end the sequence yet (as vLLM) */
        for (int i = 0; i < m->cfg.n_eos && p->n_ban < RAGD_SAMPLE_MAX_BAN; i++) p->ban[p->n_ban++] = m->cfg.eos_ids[i];
        for (int i = 0; i < o->n_stop_ids && p->n_ban < RAGD_SAMPLE_MAX_BAN; i++) p->ban[p->n_ban++] = o->stop_ids[i];
    }
}

static void emit_to(ragd_gen_text_fn fn, void *ud, ragd_buf *b) {
    if (fn && b->len) fn(ud, b->data, b->len);
    ragd_buf_reset(b);
}

ragd_status ragd_generate_stream(ragd_engine *e, const int32_t *prompt, size_t n_prompt, const ragd_gen_opts *o,
                                 ragd_gen_text_fn on_text, void *ud, ragd_tok_ids *out_ids, ragd_buf *out_text,
                                 ragd_finish *finish, ragd_err *err) {
    const ragd_model *m = ragd_engine_model(e);
    const ragd_engine_opts *eo = ragd_engine_get_opts(e);
    *finish = RAGD_FINISH_NONE;
    if (n_prompt < 1) return ragd_err_set(err, RAGD_EINVAL, "the prompt has no tokens");
    if (!eo->kv_cache) return ragd_err_set(err, RAGD_EINVAL, "generation needs an engine with a KV cache");
    if (n_prompt + (size_t)(o->max_tokens > 0 ? o->max_tokens : 0) > (size_t)eo->max_ctx)
        return ragd_err_set(err, RAGD_ERANGE, "prompt (%zu tokens) + max_tokens (%d) exceed the context of %d tokens",
                            n_prompt, o->max_tokens, eo->max_ctx);
    ragd_gen_stream g;
    ragd_status st = ragd_gen_stream_init(&g, m, o, err);
    if (st) return st;
    ragd_sample_params sp;
    ragd_gen_sample_params(m, o, 0, 0, false, 0, &sp);
    if ((st = ragd_sample_check(&sp, m->cfg.n_vocab, err))) {
        ragd_gen_stream_free(&g);
        return st;
    }
    ragd_buf piece = {0};
    const int32_t seq = 0;
    int n_cached = 0;
    if ((st = ragd_engine_seq_open(e, seq, prompt, (int)n_prompt, &n_cached, err))) {
        ragd_gen_stream_free(&g);
        return st;
    }
    ragd_sample_out so = {0};
    for (size_t off = (size_t)n_cached; off < n_prompt && !st;) { /* prefill in chunks; the last one samples */
        size_t n = n_prompt - off < (size_t)eo->max_batch_tokens ? n_prompt - off : (size_t)eo->max_batch_tokens;
        int32_t ss[2] = {0, (int32_t)n};
        ragd_batch b = {1, prompt + off, ss, NULL};
        sp.active = off + n == n_prompt;
        st = ragd_engine_step(e, &b, &seq, &sp, &so, NULL, err);
        off += n;
    }
    for (int n_gen = 0; !st;) {
        if (so.nonfinite) {
            st = ragd_err_set(err, RAGD_EINTERNAL, "the model produced a non-finite logit");
            break;
        }
        int32_t id = so.token;
        ragd_tok_ids_push(out_ids, id);
        n_gen++;
        ragd_finish f;
        st = ragd_gen_stream_push(&g, id, &piece, &f, err);
        if (st) break;
        if (out_text) ragd_buf_append(out_text, piece.data ? piece.data : "", piece.len);
        emit_to(on_text, ud, &piece);
        ragd_buf_reset(&piece);
        if (f != RAGD_FINISH_NONE) {
            *finish = f;
            break;
        }
        int32_t ss[2] = {0, 1};
        ragd_batch b = {1, &id, ss, NULL};
        ragd_gen_sample_params(m, o, 0, n_gen, false, 0, &sp);
        st = ragd_engine_step(e, &b, &seq, &sp, &so, NULL, err);
    }
    ragd_engine_seq_close(e, seq);
    ragd_buf_free(&piece);
    ragd_gen_stream_free(&g);
    return st;
}

ragd_status ragd_generate(ragd_engine *e, const int32_t *prompt, size_t n_prompt, const ragd_gen_opts *o,
                          ragd_tok_ids *out_ids, ragd_buf *out_text, ragd_finish *finish, ragd_err *err) {
    return ragd_generate_stream(e, prompt, n_prompt, o, NULL, NULL, out_ids, out_text, finish, err);
}
