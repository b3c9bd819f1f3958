/* cmd_inspect.c — `ragd inspect --model DIR [--max-ctx N] [--max-seqs N] [--max-batch-tokens N] [--device D]`:
 * architecture and configuration, parameter count, tensors by kind, bytes by dtype, and the engine's
 * memory plan (ragd_engine_plan_compute) for the given limits — with and without a KV cache. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "engine/engine.h"

/* The inspect group of a role: the counting kind, with attention biases apart. */
static const char *kind_of(ragd_weight_role r) {
    switch (r) {
    case RAGD_W_TOK_EMBD: return "token embedding";
    case RAGD_W_POS_EMBD:
    case RAGD_W_TYPE_EMBD: return "embeddings";
    case RAGD_W_LM_HEAD: return "lm_head";
    case RAGD_W_BQ:
    case RAGD_W_BK:
    case RAGD_W_BV:
    case RAGD_W_BO: return "attention bias";
    default: break;
    }
    switch (ragd_weight_role_kind(r)) {
    case RAGD_KIND_ATTN: return "attention";
    case RAGD_KIND_MLP: return "mlp";
    case RAGD_KIND_NORM: return "norms";
    case RAGD_KIND_HEAD: return "classifier";
    default: return "other";
    }
}

static double mib(size_t b) { return b / 1048576.0; }

int ragd_cmd_inspect(int argc, char **argv) {
    const char *model = NULL, *device = "cpu";
    int max_ctx = 0, max_seqs = 1, mbt = 2048;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: ragd inspect --model DIR [--device cpu|cuda] [--max-ctx N] [--max-seqs N] "
                   "[--max-batch-tokens N]\n");
            return 0;
        }
        if (!v) {
            fprintf(stderr, "ragd inspect: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--max-ctx")) ok = ragd_cli_parse_int(v, 1, 1 << 24, &max_ctx);
        else if (!strcmp(a, "--max-seqs")) ok = ragd_cli_parse_int(v, 1, 1 << 16, &max_seqs);
        else if (!strcmp(a, "--max-batch-tokens")) ok = ragd_cli_parse_int(v, 1, 1 << 24, &mbt);
        else {
            fprintf(stderr, "ragd inspect: unknown option '%s'\n", a);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "ragd inspect: %s %s: want a positive integer\n", a, v);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "ragd inspect: --model DIR is required\n");
        return 2;
    }
    if (strcmp(device, "cpu") && strcmp(device, "cuda")) {
        fprintf(stderr, "ragd inspect: --device %s: want cpu or cuda\n", device);
        return 2;
    }
    ragd_err err = {0};
    ragd_model *m = NULL;
    if (ragd_model_load(model, &m, &err)) {
        fprintf(stderr, "ragd inspect: %s\n", ragd_err_msg(&err));
        ragd_err_free(&err);
        return 1;
    }
    const ragd_model_config *c = &m->cfg;
    printf("model          %s (%s)\n", m->name, m->path);
    printf("architecture   %s\n", ragd_arch_name(c->arch));
    printf("layers         %d, hidden %d, mlp %d, heads %d (kv %d), head_dim %d, vocab rows %d\n", c->n_layer,
           c->n_embd, c->n_ff, c->n_head, c->n_head_kv, c->head_dim, c->n_vocab);
    if (c->pos == RAGD_POS_ROPE)
        printf("rope           theta %g%s, rms_eps %g, max positions %d\n", (double)c->rope_theta,
               c->rope_type == 1 ? " (llama3 scaling)" : "", (double)c->rms_eps, c->max_pos);
    else
        printf("positions      absolute, %d rows (first position %d), token types %d, layer_norm_eps %g, max "
               "positions %d\n", c->n_pos_embd, c->pos_offset, c->n_type_vocab, (double)c->rms_eps, c->max_pos);
    printf("blocks         %s, %s, %s attention, %s MLP\n", m->family->name,
           c->norm == RAGD_NORM_LAYER ? (c->post_norm ? "post-LayerNorm" : "pre-LayerNorm") : "pre-RMSNorm",
           c->bidirectional ? "bidirectional" : "causal",
           c->act == RAGD_ACT_SWIGLU ? "SwiGLU" : c->act == RAGD_ACT_GELU ? "GELU (erf)" : "GELU (tanh)");
    if (c->hybrid) {
        int n_lin = 0;
        for (int l = 0; l < c->n_layer; l++) n_lin += ragd_model_layer_kind(c, l) == RAGD_LAYER_LINEAR;
        printf("hybrid         %d Gated DeltaNet layers (%d key / %d value heads of %d / %d, conv %d) + %d gated "
               "attention layers (rotary %d of %d dims); prefix cache off\n", n_lin, c->lin_n_kh, c->lin_n_vh, c->lin_kd,
               c->lin_vd, c->lin_conv, c->n_layer - n_lin, c->rope_dim, c->head_dim);
    }
    if (ragd_model_has_classifier(m))
        printf("classifier     %d label(s)%s\n", c->n_labels,
               c->head == RAGD_HEAD_POOL_LINEAR ? ", linear score of the pooled rows / temperature" : ", first token");
    printf("lm_head        %s\n", m->lm_head.data ? (c->tie_embed ? "tied to the embedding" : "separate") : "none");
    printf("parameters     %zu (%.3f B)\n", ragd_model_param_count(m), ragd_model_param_count(m) / 1e9);
    printf("weights        %.2f MiB as stored\n", mib(ragd_model_weight_bytes(m)));

    size_t n = ragd_model_weight_slots(m, NULL);
    ragd_weight_slot *slots = ragd_xcalloc(n ? n : 1, sizeof *slots);
    ragd_model_weight_slots(m, slots);
    const ragd_tensor **ts = ragd_xcalloc(n ? n : 1, sizeof *ts);
    const char **tk = ragd_xcalloc(n ? n : 1, sizeof *tk);
    size_t np = 0; /* present tensors */
    for (size_t i = 0; i < n; i++)
        if (slots[i].t->data) {
            tk[np] = kind_of(slots[i].role);
            ts[np++] = slots[i].t;
        }
    free(slots);
    n = np;
    static const char *kinds[] = {"token embedding", "embeddings", "attention", "attention bias", "mlp", "norms",
                                  "lm_head", "classifier", "other"};
    printf("tensors by kind (%zu tensors)\n", n);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        size_t cnt = 0, params = 0, bytes = 0;
        for (size_t i = 0; i < n; i++)
            if (!strcmp(tk[i], kinds[k])) {
                cnt++;
                params += ragd_tensor_numel(ts[i]);
                bytes += ts[i]->nbytes;
            }
        if (cnt) printf("  %-16s %4zu tensors %12zu params %10.2f MiB\n", kinds[k], cnt, params, mib(bytes));
    }
    printf("bytes by dtype\n");
    for (int d = RAGD_DT_F32; d <= RAGD_DT_Q4_1; d++) {
        size_t cnt = 0, bytes = 0;
        for (size_t i = 0; i < n; i++)
            if ((int)ts[i]->dtype == d) {
                cnt++;
                bytes += ts[i]->nbytes;
            }
        if (cnt) printf("  %-6s %4zu tensors %10.2f MiB\n", ragd_dtype_name((ragd_dtype)d), cnt, mib(bytes));
    }
    free(ts);
    free(tk);
    if (!max_ctx) max_ctx = c->max_pos > 0 && c->max_pos < 4096 ? c->max_pos : 4096;
    int rc = 0;
    for (int kv = ragd_model_is_encoder(m) ? 0 : 1; kv >= 0; kv--) { /* encoders never generate: no KV plan */
        ragd_engine_opts o = {.device = !strcmp(device, "cuda") ? RAGD_DEVICE_CUDA : RAGD_DEVICE_CPU,
                              .max_batch_tokens = mbt, .max_seqs = max_seqs, .max_ctx = max_ctx, .kv_cache = kv};
        ragd_engine_plan p;
        if (ragd_engine_plan_compute(m, &o, &p, &err)) {
            fprintf(stderr, "ragd inspect: memory plan: %s\n", ragd_err_msg(&err));
            rc = 1;
            break;
        }
        printf("memory plan (%s, %s): max_ctx %d, max_seqs %d, max_batch_tokens %d\n", device,
               kv ? "generation, KV cache" : "embed/rerank, no KV cache", max_ctx, max_seqs, mbt);
        printf("  weights %.2f MiB, activations %.2f MiB, KV cache %.2f MiB, workspace %.2f MiB, total %.2f MiB\n",
               mib(p.weights), mib(p.activations), mib(p.kv_cache), mib(p.workspace), mib(p.total));
        if (p.seq_state_bytes)
            printf("  sequence state (Gated DeltaNet conv + recurrent) %.3f MiB per sequence, %.2f MiB in all (in the "
                   "total)\n", mib(p.seq_state_bytes), mib(p.seq_state));
    }
    ragd_model_free(m);
    ragd_err_free(&err);
    return rc;
}
