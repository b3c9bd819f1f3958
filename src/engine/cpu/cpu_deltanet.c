/* cpu_deltanet.c — the Gated DeltaNet token mixer of Qwen3.5's linear-attention layers on the CPU backend,
 * in fp32, following transformers' Qwen3_5GatedDeltaNet:
 *
 *   qkv = in_proj_qkv(h) → depthwise causal conv1d over time (kernel K, no bias) → SiLU → q | k | v
 *   z = in_proj_z(h);  beta = sigmoid(in_proj_b(h));  g = −exp(A_log) · softplus(in_proj_a(h) + dt_bias)
 *   q, k L2-normalised per key head (eps 1e-6), q ·= 1/sqrt(kd); value head h reads key head h / (n_vh / n_kh)
 *   per token and value head, with the state S [kd, vd]:  S ·= exp(g);  δ = β·(v − Sᵀk);  S += k δᵀ;  o = Sᵀq
 *   o → RMSNorm over vd (rms_norm_eps) · w · silu(z) → out_proj
 *
 * The recurrence runs token by token (transformers' torch_recurrent_gated_delta_rule, which it uses for
 * decode; its prefill uses the chunked WY form — the same math in another order, within the fixtures'
 * 1e-4). A chunked form for long prefills is future work.
 *
 * State: a generation step continues the state of each sequence's slot (kv->seqs[i]) in the backend's state
 * pool — the conv state (the last K − 1 conv inputs, oldest first) and the recurrent state per value head —
 * and leaves it updated; pooling / scoring (kv == NULL) start every sequence from zero. The conv reads an
 * earlier input from the batch or from the conv state with the same operations, and the recurrence is one
 * fixed chain per token, so a sequence's tokens give the same bits in one call or one at a time, alone or
 * batched (every loop is per (sequence, channel) or per (sequence, value head)).
 */
#include <math.h>

#include "engine/cpu/cpu_internal.h"

#define MAX_VD 1024 /* value head dim bound (checked at create) */

size_t ragd_cpu_deltanet_state_floats(const ragd_model_config *c) {
    size_t cd = 2 * (size_t)c->lin_n_kh * c->lin_kd + (size_t)c->lin_n_vh * c->lin_vd;
    return (size_t)(c->lin_conv - 1) * cd + (size_t)c->lin_n_vh * c->lin_kd * c->lin_vd;
}

/* [conv − 1, conv_dim] then [n_vh, kd, vd]: the state of slot seq in Gated DeltaNet layer j */
static float *state_of(const ragd_cpu *s, int seq, int j) {
    return s->seq_state + ((size_t)seq * s->n_lin_layers + j) * ragd_cpu_deltanet_state_floats(&s->c);
}

static float silu(float x) { return x / (1.0f + expf(-x)); }
/* torch.nn.functional.softplus (beta 1, threshold 20) */
static float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

/* Conv + SiLU of one sequence's n tokens at batch rows t0.. (s->lqkv → s->lconv). w: [conv_dim, K];
 * cst: the conv state [K − 1, conv_dim] (read, then advanced by the n inputs) or NULL (zeros before the
 * sequence). */
static void conv_seq(ragd_cpu *s, const float *w, float *cst, int t0, int n) {
    int K = s->c.lin_conv, cd = s->lin_conv_dim;
    for (int r = 0; r < n; r++) {
        float *out = s->lconv + (size_t)(t0 + r) * cd; /* [conv_dim] */
        for (int ch = 0; ch < cd; ch++) {
            float acc = 0.0f;
            for (int j = 0; j < K; j++) {
                int off = r - (K - 1) + j; /* tap j reads the input `off` tokens into this call */
                float x = off >= 0 ? s->lqkv[(size_t)(t0 + off) * cd + ch]
                          : cst    ? cst[(size_t)(K - 1 + off) * cd + ch]
                                   : 0.0f;
                acc += w[(size_t)ch * K + j] * x;
            }
            out[ch] = silu(acc);
        }
    }
    if (!cst) return;
    for (int k = 0; k < K - 1; k++) { /* new row k = input n − (K − 1) + k; reads old row n + k > k first */
        int off = n - (K - 1) + k;
        const float *src = off >= 0 ? s->lqkv + (size_t)(t0 + off) * cd : cst + (size_t)(K - 1 + off) * cd;
        memcpy(cst + (size_t)k * cd, src, sizeof(float) * (size_t)cd);
    }
}

/* x[n] ·= 1/sqrt(sum x² + 1e-6) (transformers l2norm), then · scale */
static void l2norm(float *x, int n, float scale) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
    float inv = 1.0f / sqrtf((float)ss + 1e-6f);
    for (int i = 0; i < n; i++) x[i] = (x[i] * inv) * scale;
}

typedef struct {
    ragd_cpu *s;
    const ragd_batch *b;
    const ragd_kv_view *kv;
    int j; /* the layer's index among the state layers */
} rec_job;

/* The recurrence over (sequence, value head) pairs: s->lconv (q | k | v), s->lb (beta), s->la (g) → s->lo. */
static void rec_task(void *ctx, int ith, int nth) {
    rec_job *rj = ctx;
    ragd_cpu *s = rj->s;
    const ragd_model_config *c = &s->c;
    int nkh = c->lin_n_kh, nvh = c->lin_n_vh, kd = c->lin_kd, vd = c->lin_vd, cd = s->lin_conv_dim;
    int ratio = nvh / nkh, lv = nvh * vd;
    int n_pairs = rj->b->n_seqs * nvh;
    int p0 = (int)((int64_t)n_pairs * ith / nth), p1 = (int)((int64_t)n_pairs * (ith + 1) / nth);
    float mem[MAX_VD], delta[MAX_VD];
    for (int pr = p0; pr < p1; pr++) {
        int si = pr / nvh, h = pr % nvh, kh = h / ratio;
        float *S; /* [kd, vd] */
        if (rj->kv) S = state_of(s, rj->kv->seqs[si], rj->j) + (size_t)(c->lin_conv - 1) * cd + (size_t)h * kd * vd;
        else {
            S = s->lstate_ws + (size_t)ith * kd * vd;
            memset(S, 0, sizeof(float) * (size_t)kd * vd);
        }
        for (int t = rj->b->seq_start[si]; t < rj->b->seq_start[si + 1]; t++) {
            const float *row = s->lconv + (size_t)t * cd;
            const float *q = row + (size_t)kh * kd, *k = row + (size_t)(nkh + kh) * kd; /* [kd] */
            const float *v = row + (size_t)2 * nkh * kd + (size_t)h * vd;              /* [vd] */
            float decay = expf(s->la[(size_t)t * nvh + h]), beta = s->lb[(size_t)t * nvh + h];
            float *o = s->lo + (size_t)t * lv + (size_t)h * vd; /* [vd] */
            for (int d = 0; d < vd; d++) mem[d] = 0.0f;
            for (int i = 0; i < kd; i++) { /* S ·= exp(g); mem = Sᵀk */
                float *Si = S + (size_t)i * vd;
                for (int d = 0; d < vd; d++) {
                    Si[d] = Si[d] * decay;
                    mem[d] += Si[d] * k[i];
                }
            }
            for (int d = 0; d < vd; d++) {
                delta[d] = (v[d] - mem[d]) * beta;
                o[d] = 0.0f;
            }
            for (int i = 0; i < kd; i++) { /* S += k δᵀ; o = Sᵀq */
                float *Si = S + (size_t)i * vd;
                for (int d = 0; d < vd; d++) {
                    Si[d] = Si[d] + k[i] * delta[d];
                    o[d] += Si[d] * q[i];
                }
            }
        }
    }
}

void ragd_cpu_deltanet_block(ragd_cpu *s, const ragd_batch *b, const ragd_kv_view *kv, const ragd_cpu_block *blk,
                             const float *in, int T) {
    const ragd_model_config *c = &s->c;
    ragd_cpu_layer *L = &s->layers[blk->layer];
    int nkh = c->lin_n_kh, nvh = c->lin_n_vh, kd = c->lin_kd, vd = c->lin_vd, cd = s->lin_conv_dim;
    ragd_cpu_gemm(&s->pool, RAGD_CPU_LMAT(L, LIN_QKV), in, T, NULL, s->lqkv, s->gemm_ws);
    ragd_cpu_gemm(&s->pool, RAGD_CPU_LMAT(L, LIN_Z), in, T, NULL, s->lz, s->gemm_ws);
    ragd_cpu_gemm(&s->pool, RAGD_CPU_LMAT(L, LIN_B), in, T, NULL, s->lb, s->gemm_ws);
    ragd_cpu_gemm(&s->pool, RAGD_CPU_LMAT(L, LIN_A), in, T, NULL, s->la, s->gemm_ws);
    const float *convw = RAGD_CPU_LVEC(L, LIN_CONV); /* [conv_dim, K] */
    for (int i = 0; i < b->n_seqs; i++)
        conv_seq(s, convw, kv ? state_of(s, kv->seqs[i], blk->slot) : NULL, b->seq_start[i],
                 b->seq_start[i + 1] - b->seq_start[i]);
    const float *a_log = RAGD_CPU_LVEC(L, LIN_A_LOG), *dt_bias = RAGD_CPU_LVEC(L, LIN_DT_BIAS); /* [n_vh] */
    float scale = (float)(1.0 / sqrt((double)kd));
    for (int t = 0; t < T; t++) {
        float *row = s->lconv + (size_t)t * cd;
        for (int h = 0; h < nkh; h++) {
            l2norm(row + (size_t)h * kd, kd, scale);        /* q */
            l2norm(row + (size_t)(nkh + h) * kd, kd, 1.0f); /* k */
        }
        for (int h = 0; h < nvh; h++) {
            float *bb = s->lb + (size_t)t * nvh + h, *aa = s->la + (size_t)t * nvh + h;
            *bb = 1.0f / (1.0f + expf(-*bb));                       /* beta = sigmoid(b) */
            *aa = -expf(a_log[h]) * softplus(*aa + dt_bias[h]); /* g */
        }
    }
    rec_job rj = {s, b, kv, blk->slot};
    ragd_cpu_pool_run(&s->pool, rec_task, &rj, s->o.n_threads);
    /* gated RMSNorm per value head: (w · (o · rsqrt(mean(o²) + eps))) · silu(z) */
    const float *w = RAGD_CPU_LVEC(L, LIN_NORM); /* [vd] */
    for (size_t r = 0; r < (size_t)T * nvh; r++) {
        float *o = s->lo + r * vd;
        const float *z = s->lz + r * vd;
        double ss = 0.0;
        for (int d = 0; d < vd; d++) ss += (double)o[d] * (double)o[d];
        float inv = 1.0f / sqrtf((float)(ss / vd) + c->rms_eps);
        for (int d = 0; d < vd; d++) o[d] = (w[d] * (o[d] * inv)) * silu(z[d]);
    }
    ragd_cpu_gemm(&s->pool, RAGD_CPU_LMAT(L, LIN_OUT), s->lo, T, NULL, s->xn, s->gemm_ws);
}
