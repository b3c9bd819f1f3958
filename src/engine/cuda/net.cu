// net.cu — one model on one GPU: memory plan, weight upload (bf16), and the packed-batch forward
// pass used by pooling (embeddings) and scoring (reranker yes/no logits).
//
// Per layer (T tokens of all sequences packed, no padding):
//   h   = rmsnorm(x)                          [T, E]      bf16   (buffer A)
//   qkv = h · Wqkv^T (+ b)                    [T, Dqkv]   bf16   (buffer B; Wq|Wk|Wv fused at upload)
//   qkv = rope(qk_norm(qkv))                  in place
//   a   = attention(qkv)                      [T, Dq]     bf16   (buffer A)
//   x  += a · Wo^T                            [T, E]      f32    (GEMM epilogue, beta = 1)
//   h   = rmsnorm(x)                          [T, E]      bf16   (buffer A)
//   gu  = h · Wgu^T                           [T, 2F]     bf16   (buffer B; Wgate|Wup fused)
//   a   = swiglu(gu)                          [T, F]      bf16   (buffer A)
//   x  += a · Wdown^T                         [T, E]      f32
// then the final norm only on the rows that are pooled or scored.
//
// Memory: three device arenas allocated at create (weights, activations, cuBLASLt workspace) plus
// pinned host staging; the forward allocates nothing. The workspace doubles as the staging buffer
// for f32/f16 weight conversion during upload.
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <nvtx3/nvToolsExt.h>

#include "engine/cuda/net_internal.cuh"

const char *const kPhaseNames[RAGD_CUDA_N_PHASES] = {"embed",     "attn_norm", "qkv_gemm", "qk_norm_rope",
                                                     "attention", "o_gemm",    "ffn_norm", "gate_up_gemm",
                                                     "swiglu",    "down_gemm", "pool_score"};

double net_now_ms() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static size_t layer_weight_bytes(const ragd_cuda_shape *s, const Dims &d) {
    size_t b = align_up(d.E * 2) * 2 + align_up(d.Dqkv * d.E * 2) + align_up(d.Dq * d.E * 2) +
               align_up(d.GU * d.E * 2) + align_up(d.F * d.E * 2);
    if (s->qkv_bias) b += align_up(d.Dqkv * 2);
    if (s->qk_norm) b += align_up(d.hd * 2) * 2;
    if (s->layer_norm) b += align_up(d.E * 2) * 2;
    if (s->linear_bias) b += align_up(d.E * 2) * 2 + align_up(d.F * 2);
    return b;
}

// The global weights besides the token embedding and the layers: the final norm, the absolute position /
// token type tables with their LayerNorm, the classification head.
static size_t global_extra_bytes(const ragd_cuda_shape *s, const Dims &d) {
    size_t b = !s->no_final_norm ? align_up(d.E * 2) : 0;
    if (s->abs_pos)
        b += align_up((size_t)s->n_pos_embd * d.E * 2) + align_up((size_t)s->n_type_vocab * d.E * 2) +
             2 * align_up(d.E * 2);
    if (s->head == RAGD_CUDA_HEAD_CLS) b += align_up(d.E * d.E * 2) + align_up(d.E * 2);
    if (s->head) b += align_up((size_t)s->n_labels * d.E * 2) + align_up((size_t)s->n_labels * 2);
    return b;
}

extern "C" void ragd_cuda_net_plan(const ragd_cuda_shape *s, ragd_cuda_plan *p) {
    Dims d = dims_of(s);
    memset(p, 0, sizeof *p);
    const bool gen = s->kv_cache;
    p->weights = align_up(d.Ve * d.E * 2) + global_extra_bytes(s, d) + layer_weight_bytes(s, d) * (size_t)s->n_layer +
                 (gen && s->lm_head ? align_up(d.Vl * d.E * 2) : 0);
    size_t gen_dev = 0, gen_host = 0;
    if (gen) gen_plan(s, d, &gen_dev, &gen_host);
    p->activations = align_up(d.T * d.E * 4) + align_up(d.T * d.bufA * 2) + align_up(d.T * d.bufB * 2) +
                     align_up(d.M * d.F * 2) + align_up(d.M * d.GU * 2) +
                     3 * align_up(d.T * 4) + align_up((d.S + 1) * 4) + align_up(d.tiles * 8) + align_up(d.hd / 2 * 4) +
                     align_up(d.S * std::max(d.E, d.R) * 4) + align_up(d.R * d.E * 2) + align_up(d.S * d.E * 4) +
                     align_up((d.S + 1) * 4) + align_up(d.S * 8) + gen_dev;
    // the pool plus one scratch block (written by the padding rows of decode graphs, never read as keys)
    p->kv_cache = gen ? align_up(2 * (size_t)s->n_layer * (d.nb + 1) * d.bs * d.Dkv * 2) : 0;
    p->workspace = kWorkspace;
    p->total = p->weights + p->activations + p->kv_cache + p->workspace;
    p->host_pinned = (3 * d.T + d.S + 1) * 4 + d.tiles * 8 + d.S * std::max(d.E, d.R) * 4 + d.R * d.E * 2 + d.S * 8 +
                     gen_host;
}

int net_msg(char *msg, size_t len, int code, const char *fmt, ...) {
    if (msg && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, len, fmt, ap);
        va_end(ap);
    }
    return code;
}

int net_dead(const ragd_cuda_net *net, char *msg, size_t len) {
    return net_msg(msg, len, RAGD_CUDA_EDEVICE, "CUDA device error (the model is no longer usable): %s", net->cerr.msg);
}

static double mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

// Carves the arenas and initializes everything after the plan was accepted.
static int net_init(ragd_cuda_net *net, const float *inv_freq) {
    ragd_cuda_err *cerr = &net->cerr;
    const ragd_cuda_shape *s = &net->s;
    const Dims &d = net->d;
    RAGD_CK(cudaSetDevice(s->device));
    RAGD_CK(cudaStreamCreateWithFlags(&net->st, cudaStreamNonBlocking));
    RAGD_CKB(cublasLtCreate(&net->lt));
    RAGD_CK(cudaMalloc((void **)&net->w_arena, net->plan.weights));
    RAGD_CK(cudaMalloc((void **)&net->a_arena, net->plan.activations));
    RAGD_CK(cudaMalloc(&net->ws, kWorkspace));
    if (net->plan.kv_cache) RAGD_CK(cudaMalloc((void **)&net->kv_arena, net->plan.kv_cache));

    char *p = net->w_arena;
    auto take = [&p](size_t bytes) {
        char *r = p;
        p += align_up(bytes);
        return r;
    };
    auto take_if = [&take](bool cond, size_t bytes) { return cond ? (bf16 *)take(bytes) : nullptr; };
    net->tok_embd = (bf16 *)take(d.Ve * d.E * 2);
    net->out_norm = take_if(!s->no_final_norm, d.E * 2);
    net->pos_embd = take_if(s->abs_pos, (size_t)s->n_pos_embd * d.E * 2);
    net->type_embd = take_if(s->abs_pos && s->n_type_vocab, (size_t)s->n_type_vocab * d.E * 2);
    net->embd_norm = take_if(s->abs_pos, d.E * 2);
    net->embd_norm_b = take_if(s->abs_pos, d.E * 2);
    net->cls_dense = take_if(s->head == RAGD_CUDA_HEAD_CLS, d.E * d.E * 2);
    net->cls_dense_b = take_if(s->head == RAGD_CUDA_HEAD_CLS, d.E * 2);
    net->cls_out = take_if(s->head, (size_t)s->n_labels * d.E * 2);
    net->cls_out_b = take_if(s->head, (size_t)s->n_labels * 2);
    for (int l = 0; l < s->n_layer; l++) {
        Layer &L = net->L[l];
        L.attn_norm = (bf16 *)take(d.E * 2);
        L.ffn_norm = (bf16 *)take(d.E * 2);
        L.wqkv = (bf16 *)take(d.Dqkv * d.E * 2);
        L.wo = (bf16 *)take(d.Dq * d.E * 2);
        L.wgu = (bf16 *)take(d.GU * d.E * 2);
        L.wdown = (bf16 *)take(d.F * d.E * 2);
        L.bqkv = take_if(s->qkv_bias, d.Dqkv * 2);
        L.q_norm = take_if(s->qk_norm, d.hd * 2);
        L.k_norm = take_if(s->qk_norm, d.hd * 2);
        L.attn_norm_b = take_if(s->layer_norm, d.E * 2);
        L.ffn_norm_b = take_if(s->layer_norm, d.E * 2);
        L.bo = take_if(s->linear_bias, d.E * 2);
        L.bup = take_if(s->linear_bias, d.F * 2);
        L.bdown = take_if(s->linear_bias, d.E * 2);
    }
    net->lm_head = s->kv_cache && s->lm_head ? (bf16 *)take(d.Vl * d.E * 2) : net->tok_embd;
    if ((size_t)(p - net->w_arena) != net->plan.weights)
        return ragd_cuda_fail(cerr, "weight arena", "carving does not match the plan", __FILE__, __LINE__);

    p = net->a_arena;
    net->x = (float *)take(d.T * d.E * 4);
    net->bufA = (bf16 *)take(d.T * d.bufA * 2);
    net->mlpA = (bf16 *)take(d.M * d.F * 2);
    net->bufB = (bf16 *)take(d.T * d.bufB * 2);
    net->mlpB = (bf16 *)take(d.M * d.GU * 2);
    net->tok_d = (int32_t *)take(d.T * 4);
    net->pos_d = (int32_t *)take(d.T * 4);
    net->type_d = (int32_t *)take(d.T * 4);
    net->seq_d = (int32_t *)take((d.S + 1) * 4);
    net->tiles_d = (int2 *)take(d.tiles * 8);
    net->inv_freq_d = (float *)take(d.hd / 2 * 4);
    net->out_d = (float *)take(d.S * std::max(d.E, d.R) * 4);
    net->rows_d = (bf16 *)take(d.R * d.E * 2);
    net->x_last = (float *)take(d.S * d.E * 4);
    net->iota_d = (int32_t *)take((d.S + 1) * 4);
    net->tiles_last_d = (int2 *)take(d.S * 8);
    RAGD_CK(cudaMemcpy(net->inv_freq_d, inv_freq, d.hd / 2 * 4, cudaMemcpyHostToDevice));
    RAGD_CK(ragd_k_attention_init());
    if (s->kv_cache) RAGD_CK(ragd_k_paged_init());
    RAGD_CK(cudaDeviceGetAttribute(&net->n_sm, cudaDevAttrMultiProcessorCount, s->device));
    if (s->kv_cache && ((net->decode_per_sm[0] = ragd_k_paged_decode_ctas_per_sm((int)d.hd, 0)) < 1 ||
                        (net->decode_per_sm[1] = ragd_k_paged_decode_ctas_per_sm((int)d.hd, 1)) < 1))
        return ragd_cuda_fail(cerr, "decode attention", "the occupancy query failed", __FILE__, __LINE__);
    {
        int32_t *iota = (int32_t *)malloc((d.S + 1) * 4);
        if (!iota) return ragd_cuda_fail(cerr, "malloc", "out of host memory", __FILE__, __LINE__);
        for (size_t i = 0; i <= d.S; i++) iota[i] = (int32_t)i;
        cudaError_t e = cudaMemcpy(net->iota_d, iota, (d.S + 1) * 4, cudaMemcpyHostToDevice);
        free(iota);
        RAGD_CK(e);
    }

    void *h = nullptr;
    RAGD_CK(cudaHostAlloc(&h, net->plan.host_pinned, cudaHostAllocDefault));
    char *q = (char *)h;
    net->tok_h = (int32_t *)q, q += d.T * 4;
    net->pos_h = (int32_t *)q, q += d.T * 4;
    net->type_h = (int32_t *)q, q += d.T * 4;
    net->seq_h = (int32_t *)q, q += (d.S + 1) * 4;
    net->tiles_h = (int2 *)q, q += d.tiles * 8;
    net->out_h = (float *)q, q += d.S * std::max(d.E, d.R) * 4;
    net->rows_h = (bf16 *)q, q += d.R * d.E * 2;
    net->tiles_last_h = (int2 *)q, q += d.S * 8;
    if (s->kv_cache) {
        char *gd = p;
        if (int rc0 = gen_carve(net, &gd, &q)) return rc0;
        p = gd;
    }
    if ((size_t)(p - net->a_arena) != net->plan.activations)
        return ragd_cuda_fail(cerr, "activation arena", "carving does not match the plan", __FILE__, __LINE__);

    const int T = s->max_batch_tokens;
    int rc;
    if ((rc = ragd_gemm_init(&net->g_qkv, net->lt, (int)d.Dqkv, (int)d.E, T, 0, 0, s->qkv_bias, kWorkspace, cerr)) ||
        (rc = ragd_gemm_init(&net->g_o, net->lt, (int)d.E, (int)d.Dq, T, 1, 1, 0, kWorkspace, cerr)) ||
        (rc = ragd_gemm_init(&net->g_gu, net->lt, (int)d.GU, (int)d.E, (int)d.M, 0, 0, s->linear_bias, kWorkspace, cerr)) ||
        (rc = ragd_gemm_init(&net->g_down, net->lt, (int)d.E, (int)d.F, (int)d.M, 1, 1, 0, kWorkspace, cerr)))
        return rc;
    if (s->kv_cache &&
        (rc = ragd_gemm_init(&net->g_lm, net->lt, (int)d.Vl, (int)d.E, s->max_seqs, 1, 0, 0, kWorkspace, cerr)))
        return rc;
    const char *prune_env = getenv("RAGD_PRUNE_LAST");
    net->prune_last = !prune_env || strcmp(prune_env, "0");
    // Faster algorithms per range of T, each verified bit-identical to the reference (gemm.cuh). The
    // scratch is the weight arena (not uploaded yet) and the activation buffers (no request yet).
    // RAGD_GEMM_TUNE=0 keeps the reference algorithm for every T (benchmark A/B only).
    const char *tune_env = getenv("RAGD_GEMM_TUNE");
    const double t_tune = net_now_ms();
    if (!tune_env || strcmp(tune_env, "0")) {
        // X: bufA + mlpA, Y: bufB + mlpB (each pair carved back to back)
        ragd_gemm_scratch sc = {(bf16 *)net->w_arena, net->bufA, net->bufB,
                                (size_t)((char *)net->mlpB - (char *)net->bufB) + d.M * d.GU * 2};
        ragd_gemm *gs[] = {&net->g_qkv, &net->g_o, &net->g_gu, &net->g_down};
        for (ragd_gemm *g : gs)
            if ((rc = ragd_gemm_tune(g, net->lt, &sc, net->ws, kWorkspace, net->st, cerr))) return rc;
        // the lm head too, now that its padded width has sm90 kernels (RAGD_GEMM_TUNE_LM=0: reference only)
        const char *lm_env = getenv("RAGD_GEMM_TUNE_LM");
        if (s->kv_cache && (!lm_env || strcmp(lm_env, "0")) &&
            (rc = ragd_gemm_tune(&net->g_lm, net->lt, &sc, net->ws, kWorkspace, net->st, cerr)))
            return rc;
    }
    net->tune_ms = net_now_ms() - t_tune;
    snprintf(net->gemm_info, sizeof net->gemm_info,
             "qkv %s\n  %s\no %s\n  %s\ngate_up %s\n  %s\ndown %s\n  %s\nlm_head %s\n  %s",
             net->g_qkv.info, net->g_qkv.tune_info, net->g_o.info, net->g_o.tune_info, net->g_gu.info,
             net->g_gu.tune_info, net->g_down.info, net->g_down.tune_info, s->kv_cache ? net->g_lm.info : "-",
             s->kv_cache ? net->g_lm.tune_info : "-");

    net->n_ev = s->n_layer * 9 + 4;
    net->ev = (cudaEvent_t *)calloc((size_t)net->n_ev, sizeof(cudaEvent_t));
    net->ev_phase = (int *)calloc((size_t)net->n_ev, sizeof(int));
    if (!net->ev || !net->ev_phase) return ragd_cuda_fail(cerr, "calloc", "out of host memory", __FILE__, __LINE__);
    for (int i = 0; i < net->n_ev; i++) RAGD_CK(cudaEventCreate(&net->ev[i]));
    RAGD_CK(cudaEventCreate(&net->ev_s0));
    RAGD_CK(cudaEventCreate(&net->ev_s1));
    return RAGD_CUDA_OK;
}

extern "C" int ragd_cuda_net_create(const ragd_cuda_shape *s, const float *inv_freq, size_t mem_limit,
                                    ragd_cuda_net **out, ragd_cuda_plan *plan_out, char *msg, size_t msg_len) {
    *out = nullptr;
    if (s->head_dim != 64 && s->head_dim != 128)
        return net_msg(msg, msg_len, RAGD_CUDA_EUNSUPPORTED, "CUDA attention supports head_dim 64 and 128, the model has %d",
                       s->head_dim);
    if (s->n_head <= 0 || s->n_head_kv <= 0 || s->n_head % s->n_head_kv || s->n_layer <= 0 || s->n_vocab <= 0 ||
        s->n_embd <= 0 || s->n_embd % 8 || s->n_ff <= 0 || s->n_ff % 8 || s->n_embd > 12288)
        return net_msg(msg, msg_len, RAGD_CUDA_EUNSUPPORTED,
                       "CUDA backend: unsupported shape (heads %d/%d, n_embd %d, n_ff %d): needs n_head %% n_head_kv "
                       "== 0, n_embd and n_ff multiples of 8, n_embd <= 12288",
                       s->n_head, s->n_head_kv, s->n_embd, s->n_ff);
    if (s->kv_cache && (s->max_ctx <= 0 || s->kv_blocks <= 0 || s->kv_block_size <= 0 || s->kv_block_size > 256 ||
                        (s->kv_block_size & (s->kv_block_size - 1))))
        return net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "CUDA backend: KV cache asked with max_ctx %d, %d blocks of %d",
                       s->max_ctx, s->kv_blocks, s->kv_block_size);
    if (s->bidirectional && s->kv_cache)
        return net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "CUDA backend: a bidirectional model cannot generate (KV cache asked)");
    // the combinations the blocks implement: the pre-RMSNorm decoder (causal or not) and the post-LayerNorm
    // absolute-position encoder without a final norm
    if (s->act < RAGD_CUDA_ACT_SWIGLU || s->act > RAGD_CUDA_ACT_GELU_TANH || s->head < 0 ||
        s->head > RAGD_CUDA_HEAD_POOL_LINEAR ||
        (s->head && (s->n_labels <= 0 || s->n_labels > s->n_embd || !(s->head_div > 0.f))) ||
        (s->head == RAGD_CUDA_HEAD_POOL_LINEAR && (s->head_pool < 0 || s->head_pool > RAGD_CUDA_POOL_MAX)) ||
        (s->abs_pos && (s->n_pos_embd <= 0 || s->n_type_vocab < 0 || s->qk_norm)) ||
        s->layer_norm != s->abs_pos || (s->linear_bias && !s->layer_norm) || s->layer_norm != s->no_final_norm)
        return net_msg(msg, msg_len, RAGD_CUDA_EUNSUPPORTED,
                       "CUDA backend: unsupported block combination (act %d, head %d with %d labels, abs_pos %d with %d "
                       "positions, layer_norm %d, linear_bias %d, no_final_norm %d)",
                       s->act, s->head, s->n_labels, s->abs_pos, s->n_pos_embd, s->layer_norm, s->linear_bias,
                       s->no_final_norm);
    if (s->max_batch_tokens <= 0 || s->max_seqs <= 0 || s->max_seqs > s->max_batch_tokens || s->max_score_rows < 0)
        return net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "CUDA backend: bad limits (max_batch_tokens %d, max_seqs %d)",
                       s->max_batch_tokens, s->max_seqs);
    ragd_cuda_plan plan;
    ragd_cuda_net_plan(s, &plan);
    if (plan_out) *plan_out = plan;

    cudaError_t e = cudaSetDevice(s->device);
    size_t free_b = 0, total_b = 0;
    if (e == cudaSuccess) e = cudaMemGetInfo(&free_b, &total_b);
    if (e != cudaSuccess)
        return net_msg(msg, msg_len, RAGD_CUDA_EDEVICE, "CUDA device %d: %s", s->device, cudaGetErrorString(e));
    size_t limit = mem_limit ? std::min(mem_limit, free_b) : free_b;
    if (plan.total > limit)
        return net_msg(msg, msg_len, RAGD_CUDA_ENOMEM,
                       "CUDA memory plan does not fit: needs %.1f MiB (weights %.1f, activations %.1f for "
                       "max_batch_tokens %d / max_seqs %d, KV cache %.1f for %d blocks x %d positions, cuBLASLt "
                       "workspace %.1f) but the limit is %.1f MiB (--gpu-memory %.1f MiB, device free %.1f of %.1f MiB)",
                       mib(plan.total), mib(plan.weights), mib(plan.activations), s->max_batch_tokens, s->max_seqs,
                       mib(plan.kv_cache), s->kv_cache ? s->kv_blocks : 0, s->kv_cache ? s->kv_block_size : 0,
                       mib(plan.workspace), mib(limit), mib(mem_limit), mib(free_b), mib(total_b));

    ragd_cuda_net *net = (ragd_cuda_net *)calloc(1, sizeof *net);
    if (!net) return net_msg(msg, msg_len, RAGD_CUDA_ENOMEM, "out of host memory");
    net->s = *s;
    net->d = dims_of(s);
    net->plan = plan;
    net->L = (Layer *)calloc((size_t)s->n_layer, sizeof(Layer));
    net->layer_filled = (uint32_t *)calloc((size_t)s->n_layer, sizeof(uint32_t));
    if (!net->L || !net->layer_filled) {
        ragd_cuda_net_free(net);
        return net_msg(msg, msg_len, RAGD_CUDA_ENOMEM, "out of host memory");
    }
    int rc = net_init(net, inv_freq);
    if (rc) {
        net_msg(msg, msg_len, rc, "CUDA backend init failed: %s", net->cerr.msg);
        ragd_cuda_net_free(net);
        return rc;
    }
    *out = net;
    return RAGD_CUDA_OK;
}

extern "C" void ragd_cuda_net_free(ragd_cuda_net *net) {
    if (!net) return;
    cudaSetDevice(net->s.device);
    if (net->st) cudaStreamSynchronize(net->st);
    ragd_gemm_free(&net->g_qkv);
    ragd_gemm_free(&net->g_o);
    ragd_gemm_free(&net->g_gu);
    ragd_gemm_free(&net->g_down);
    ragd_gemm_free(&net->g_lm);
    gen_free(net);
    if (net->ev)
        for (int i = 0; i < net->n_ev; i++)
            if (net->ev[i]) cudaEventDestroy(net->ev[i]);
        if (net->ev_s0) cudaEventDestroy(net->ev_s0);
        if (net->ev_s1) cudaEventDestroy(net->ev_s1);
    free(net->ev);
    free(net->ev_phase);
    if (net->tok_h) cudaFreeHost(net->tok_h);
    cudaFree(net->w_arena);
    cudaFree(net->a_arena);
    cudaFree(net->ws);
    cudaFree(net->kv_arena);
    if (net->lt) cublasLtDestroy(net->lt);
    if (net->st) cudaStreamDestroy(net->st);
    free(net->L);
    free(net->layer_filled);
    free(net);
}

// ---- weights

extern "C" int ragd_cuda_net_upload(ragd_cuda_net *net, int kind, int layer, const void *host, int dtype, size_t numel,
                                    char *msg, size_t msg_len) {
    ragd_cuda_err *cerr = &net->cerr;
    if (cerr->dead) return net_dead(net, msg, msg_len);
    const Dims &d = net->d;
    const bool per_layer = kind >= RAGD_CUDA_W_ATTN_NORM && kind < RAGD_CUDA_W_COUNT;
    if (kind < 0 || (kind >= RAGD_CUDA_W_COUNT && kind < RAGD_CUDA_W_POS_EMBD) || kind > RAGD_CUDA_W_LM_HEAD ||
        (per_layer && (layer < 0 || layer >= net->s.n_layer)))
        return net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "upload: bad weight kind %d / layer %d", kind, layer);
    Layer *L = per_layer ? &net->L[layer] : nullptr;
    bf16 *dst = nullptr;
    size_t want = 0;
    switch (kind) {
    case RAGD_CUDA_W_TOK_EMBD: dst = net->tok_embd, want = d.V * d.E; break;
    case RAGD_CUDA_W_OUT_NORM: dst = net->out_norm, want = d.E; break;
    case RAGD_CUDA_W_ATTN_NORM: dst = L->attn_norm, want = d.E; break;
    case RAGD_CUDA_W_Q: dst = L->wqkv, want = d.Dq * d.E; break;
    case RAGD_CUDA_W_K: dst = L->wqkv + d.Dq * d.E, want = d.Dkv * d.E; break;
    case RAGD_CUDA_W_V: dst = L->wqkv + (d.Dq + d.Dkv) * d.E, want = d.Dkv * d.E; break;
    case RAGD_CUDA_W_BQ: dst = L->bqkv, want = d.Dq; break;
    case RAGD_CUDA_W_BK: dst = L->bqkv ? L->bqkv + d.Dq : nullptr, want = d.Dkv; break;
    case RAGD_CUDA_W_BV: dst = L->bqkv ? L->bqkv + d.Dq + d.Dkv : nullptr, want = d.Dkv; break;
    case RAGD_CUDA_W_O: dst = L->wo, want = d.E * d.Dq; break;
    case RAGD_CUDA_W_Q_NORM: dst = L->q_norm, want = d.hd; break;
    case RAGD_CUDA_W_K_NORM: dst = L->k_norm, want = d.hd; break;
    case RAGD_CUDA_W_FFN_NORM: dst = L->ffn_norm, want = d.E; break;
    case RAGD_CUDA_W_GATE: dst = net->s.act == RAGD_CUDA_ACT_SWIGLU ? L->wgu : nullptr, want = d.F * d.E; break;
    case RAGD_CUDA_W_UP: dst = L->wgu + (d.GU - d.F) * d.E, want = d.F * d.E; break;  // (GELU: the whole wgu)
    case RAGD_CUDA_W_DOWN: dst = L->wdown, want = d.E * d.F; break;
    case RAGD_CUDA_W_LM_HEAD: dst = net->lm_head != net->tok_embd ? net->lm_head : nullptr, want = d.V * d.E; break;
    case RAGD_CUDA_W_ATTN_NORM_B: dst = L->attn_norm_b, want = d.E; break;
    case RAGD_CUDA_W_FFN_NORM_B: dst = L->ffn_norm_b, want = d.E; break;
    case RAGD_CUDA_W_BO: dst = L->bo, want = d.E; break;
    case RAGD_CUDA_W_BUP: dst = L->bup, want = d.F; break;
    case RAGD_CUDA_W_BDOWN: dst = L->bdown, want = d.E; break;
    case RAGD_CUDA_W_POS_EMBD: dst = net->pos_embd, want = (size_t)net->s.n_pos_embd * d.E; break;
    case RAGD_CUDA_W_TYPE_EMBD: dst = net->type_embd, want = (size_t)net->s.n_type_vocab * d.E; break;
    case RAGD_CUDA_W_EMBD_NORM: dst = net->embd_norm, want = d.E; break;
    case RAGD_CUDA_W_EMBD_NORM_B: dst = net->embd_norm_b, want = d.E; break;
    case RAGD_CUDA_W_CLS_DENSE: dst = net->cls_dense, want = d.E * d.E; break;
    case RAGD_CUDA_W_CLS_DENSE_B: dst = net->cls_dense_b, want = d.E; break;
    case RAGD_CUDA_W_CLS_OUT: dst = net->cls_out, want = (size_t)net->s.n_labels * d.E; break;
    case RAGD_CUDA_W_CLS_OUT_B: dst = net->cls_out_b, want = (size_t)net->s.n_labels; break;
    }
    if (!dst)
        return net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "upload: weight kind %d has no slot in this model (layer %d)",
                       kind, layer);
    if (numel != want)
        return net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "upload: weight kind %d layer %d has %zu elements, expected %zu",
                       kind, layer, numel, want);
    if (dtype == RAGD_CUDA_BF16) {
        RAGD_CK(cudaMemcpyAsync(dst, host, numel * 2, cudaMemcpyHostToDevice, net->st));
    } else if (dtype == RAGD_CUDA_F32 || dtype == RAGD_CUDA_F16) {
        size_t esz = dtype == RAGD_CUDA_F32 ? 4 : 2, chunk = kWorkspace / esz;
        for (size_t off = 0; off < numel; off += chunk) {
            size_t n = std::min(chunk, numel - off);
            RAGD_CK(cudaMemcpyAsync(net->ws, (const char *)host + off * esz, n * esz, cudaMemcpyHostToDevice, net->st));
            RAGD_CK(ragd_k_to_bf16(net->ws, dtype, dst + off, n, net->st));
        }
    } else {
        return net_msg(msg, msg_len, RAGD_CUDA_EUNSUPPORTED, "upload: dtype %d is not f32/f16/bf16", dtype);
    }
    RAGD_CK(cudaStreamSynchronize(net->st));  // the host buffer may go away; the workspace is reused
    if (per_layer)
        net->layer_filled[layer] |= 1u << kind;
    else
        net->glob_filled |= 1u << kind;
    return RAGD_CUDA_OK;
}

extern "C" int ragd_cuda_net_ready(ragd_cuda_net *net, char *msg, size_t msg_len) {
    if (net->cerr.dead) return net_dead(net, msg, msg_len);
    const ragd_cuda_shape *s = &net->s;
    uint32_t g = 1u << RAGD_CUDA_W_TOK_EMBD;
    if (!s->no_final_norm) g |= 1u << RAGD_CUDA_W_OUT_NORM;
    if (net->lm_head != net->tok_embd) g |= 1u << RAGD_CUDA_W_LM_HEAD;
    if (s->abs_pos) g |= (1u << RAGD_CUDA_W_POS_EMBD) | (1u << RAGD_CUDA_W_EMBD_NORM) | (1u << RAGD_CUDA_W_EMBD_NORM_B);
    if (s->abs_pos && s->n_type_vocab) g |= 1u << RAGD_CUDA_W_TYPE_EMBD;
    if (s->head == RAGD_CUDA_HEAD_CLS) g |= (1u << RAGD_CUDA_W_CLS_DENSE) | (1u << RAGD_CUDA_W_CLS_DENSE_B);
    if (s->head) g |= 1u << RAGD_CUDA_W_CLS_OUT;  // (its bias is optional: zero when absent)
    if ((net->glob_filled & g) != g)
        return net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "upload: global weights missing (mask %x of %x)",
                       net->glob_filled, g);
    uint32_t need = 0;
    for (int k = RAGD_CUDA_W_ATTN_NORM; k < RAGD_CUDA_W_COUNT; k++) need |= 1u << k;
    if (!s->qkv_bias) need &= ~((1u << RAGD_CUDA_W_BQ) | (1u << RAGD_CUDA_W_BK) | (1u << RAGD_CUDA_W_BV));
    if (!s->qk_norm) need &= ~((1u << RAGD_CUDA_W_Q_NORM) | (1u << RAGD_CUDA_W_K_NORM));
    if (s->act != RAGD_CUDA_ACT_SWIGLU) need &= ~(1u << RAGD_CUDA_W_GATE);
    if (!s->layer_norm) need &= ~((1u << RAGD_CUDA_W_ATTN_NORM_B) | (1u << RAGD_CUDA_W_FFN_NORM_B));
    if (!s->linear_bias) need &= ~((1u << RAGD_CUDA_W_BO) | (1u << RAGD_CUDA_W_BUP) | (1u << RAGD_CUDA_W_BDOWN));
    for (int l = 0; l < net->s.n_layer; l++)
        if ((net->layer_filled[l] & need) != need)
            return net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "upload: layer %d is missing weights (mask %x of %x)", l,
                           net->layer_filled[l], need);
    // the lm head's padding rows (d.Vl > d.V; the GEMM tuning used the arena as scratch): zero, so their
    // logits are 0 — never read: the sampler and the host copies take the first V of each row
    ragd_cuda_err *cerr = &net->cerr;
    if (s->head && !(net->glob_filled & (1u << RAGD_CUDA_W_CLS_OUT_B)))
        RAGD_CK(cudaMemset(net->cls_out_b, 0, (size_t)s->n_labels * 2));
    if (net->s.kv_cache && net->d.Vl > net->d.V)
        RAGD_CK(cudaMemset(net->lm_head + net->d.V * net->d.E, 0, (net->d.Vl - net->d.V) * net->d.E * 2));
    net->ready = 1;
    // the decode graphs, now that every address they bake in is final (weights, arenas, KV pool)
    if (gen_capture_graphs(net)) {
        net->ready = 0;
        return net_dead(net, msg, msg_len);
    }
    return RAGD_CUDA_OK;
}

// ---- forward

// Validates the batch and stages its metadata; returns T (> 0) or a negative status.
// type_ids / pos_ids: abs_pos models only (NULL: type 0, rows 0 .. n-1 per sequence).
static int stage_batch(ragd_cuda_net *net, int n_seqs, const int32_t *tokens, const int32_t *type_ids,
                       const int32_t *pos_ids, const int32_t *seq_start, char *msg, size_t msg_len) {
    const ragd_cuda_shape *s = &net->s;
    if (!net->ready) return -net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "CUDA net used before its weights were uploaded");
    if (n_seqs <= 0 || n_seqs > s->max_seqs)
        return -net_msg(msg, msg_len, RAGD_CUDA_ERANGE, "batch has %d sequences, the engine allows 1..%d", n_seqs,
                        s->max_seqs);
    if (seq_start[0] != 0) return -net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "seq_start[0] is %d, not 0", seq_start[0]);
    for (int i = 0; i < n_seqs; i++) {
        if (seq_start[i + 1] <= seq_start[i])
            return -net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "sequence %d is empty or seq_start decreases", i);
        if (seq_start[i + 1] > s->max_batch_tokens)
            return -net_msg(msg, msg_len, RAGD_CUDA_ERANGE, "batch has more than %d tokens (max_batch_tokens)",
                            s->max_batch_tokens);
    }
    const int T = seq_start[n_seqs];
    for (int t = 0; t < T; t++)
        if (tokens[t] < 0 || tokens[t] >= s->n_vocab)
            return -net_msg(msg, msg_len, RAGD_CUDA_ERANGE, "token id %d at position %d is outside the vocabulary (0..%d)",
                            tokens[t], t, s->n_vocab - 1);
    if ((type_ids || pos_ids) && !s->abs_pos)
        return -net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "token types / position rows given to a model without them");
    for (int t = 0; type_ids && t < T; t++)
        if (type_ids[t] < 0 || type_ids[t] >= (s->n_type_vocab ? s->n_type_vocab : 1))
            return -net_msg(msg, msg_len, RAGD_CUDA_ERANGE, "token type %d at position %d is outside 0..%d", type_ids[t],
                            t, (s->n_type_vocab ? s->n_type_vocab : 1) - 1);
    memcpy(net->tok_h, tokens, (size_t)T * 4);
    memcpy(net->seq_h, seq_start, (size_t)(n_seqs + 1) * 4);
    for (int i = 0; i < n_seqs; i++)
        for (int t = seq_start[i]; t < seq_start[i + 1]; t++) net->pos_h[t] = pos_ids ? pos_ids[t] : t - seq_start[i];
    if (s->abs_pos) {
        for (int t = 0; t < T; t++)
            if (net->pos_h[t] < 0 || net->pos_h[t] >= s->n_pos_embd)
                return -net_msg(msg, msg_len, RAGD_CUDA_ERANGE,
                                "position row %d at position %d is outside the model's position table (0..%d)",
                                net->pos_h[t], t, s->n_pos_embd - 1);
        for (int t = 0; t < T; t++) net->type_h[t] = type_ids ? type_ids[t] : 0;
    }
    return T;  // (the attention tile list is built by forward: ≤ T/64 + n_seqs entries, which the plan holds)
}

// Embedding + every layer over a batch whose metadata is on the device; *out: the rows the caller
// reads.
// gen: a generation step (gen's metadata: positions, block tables, work lists; attention over the
// paged KV cache, paged_attention.cu) instead of a fresh packed prefill (tok_d, pos_d, seq_d, tiles_d).
// last_only: the caller reads only each sequence's last row after the last layer (last-token pooling,
// scoring, next-token logits). The last layer then computes o_proj + MLP only for the last rows
// (gathered into x_last, one row per sequence: seq_start = iota_d) and, for pooling, attention only for
// the query tiles that hold a last row. Rows are independent in every kernel and the GEMMs reduce each
// output in a fixed order, so the last rows get the same bits as in the full computation.
int net_layers(ragd_cuda_net *net, int n_seqs, int T, int n_tiles, const StepMeta *gen, bool last_only, Recorder &rec,
               Rows *out) {
    ragd_cuda_err *cerr = &net->cerr;
    const ragd_cuda_shape *s = &net->s;
    const Dims &d = net->d;
    cudaStream_t st = net->st;
    const size_t kv_layer = (d.nb + 1) * d.bs * d.Dkv;  // elements of K (or V) of one layer
    const int32_t *tok = gen ? gen->tok : net->tok_d, *pos = gen ? gen->pos : net->pos_d,
                  *seq = gen ? gen->seq : net->seq_d;
    // post-norm (encoders): x = LN(x + f(x)) after each block, whose LayerNorm also leaves bf16(x) in
    // bufA for the next GEMM; pre-norm (decoders): x += f(RMSNorm(x))
    const bool post = s->layer_norm;
    RAGD_CK(rec.mark(P_EMBED));
    if (s->abs_pos)  // (never with gen: encoders cannot generate)
        RAGD_CK(ragd_k_embed_abs(tok, net->type_d, pos, net->tok_embd, net->type_embd, net->pos_embd, net->embd_norm,
                                 net->embd_norm_b, s->rms_eps, T, (int)d.E, net->x, net->bufA, st));
    else
        RAGD_CK(ragd_k_embed(tok, net->tok_embd, net->x, T, (int)d.E, st));
    float *x = net->x;  // [Tr, E] the residual rows still computed (x_last in a pruned last layer)
    int Tr = T;
    for (int l = 0; l < s->n_layer; l++) {
        const Layer &L = net->L[l];
        const bool prune = last_only && l == s->n_layer - 1;
        if (!post) {
            RAGD_CK(rec.mark(P_NORM1));
            RAGD_CK(ragd_k_rmsnorm(x, L.attn_norm, net->bufA, T, (int)d.E, s->rms_eps, st));
        }
        RAGD_CK(rec.mark(P_QKV));
        if (int rc = ragd_gemm_run(&net->g_qkv, net->lt, L.wqkv, net->bufA, net->bufB, T, L.bqkv, net->ws, kWorkspace, st, cerr))
            return rc;
        RAGD_CK(rec.mark(P_ROPE));
        bf16 *kc = gen ? (bf16 *)net->kv_arena + 2 * (size_t)l * kv_layer : nullptr, *vc = kc ? kc + kv_layer : nullptr;
        if (gen)  // q/k norm + RoPE, and the new k/v rows into the paged cache (one kernel)
            RAGD_CK(ragd_k_qk_norm_rope_append(net->bufB, pos, net->inv_freq_d, L.q_norm, L.k_norm, T, s->n_head,
                                               s->n_head_kv, s->head_dim, s->rms_eps, kc, vc, gen->tokseq,
                                               gen->blk_start, gen->blocks, (int)d.bs, st));
        else if (!s->abs_pos)  // (absolute positions: nothing to do on q and k)
            RAGD_CK(ragd_k_qk_norm_rope(net->bufB, pos, net->inv_freq_d, L.q_norm, L.k_norm, T, s->n_head,
                                        s->n_head_kv, s->head_dim, s->rms_eps, st));
        RAGD_CK(rec.mark(P_ATTN));
        if (gen) {
            if (gen->n_gtiles)
                RAGD_CK(ragd_k_paged_prefill(net->bufB, net->bufA, kc, vc, seq, gen->pos0, gen->blk_start, gen->blocks,
                                             (int)d.bs, gen->gtiles, gen->n_gtiles, s->n_head, s->n_head_kv,
                                             s->head_dim, st));
            if (gen->decode_grid)
                RAGD_CK(ragd_k_paged_decode(net->bufB, net->bufA, kc, vc, seq, gen->pos0, gen->blk_start, gen->blocks,
                                            (int)d.bs, gen->items, gen->n_items, gen->decode_grid, gen->decode_db, net->part_d,
                                            net->counters_d, s->n_head, s->n_head_kv, s->head_dim, st));
        } else {
            RAGD_CK(ragd_k_attention(net->bufB, net->bufA, seq, prune ? net->tiles_last_d : net->tiles_d,
                                     prune ? n_seqs : n_tiles, s->n_head, s->n_head_kv, s->head_dim,
                                     !s->bidirectional, st));
        }
        const bf16 *attn = net->bufA;  // [Tr, Dq]
        if (prune) {  // last rows only from here on: attention output → bufB (qkv is dead), residual → x_last
            RAGD_CK(ragd_k_gather_last(net->x, net->bufA, seq, n_seqs, (int)d.E, (int)d.Dq, net->x_last, net->bufB, st));
            x = net->x_last, Tr = n_seqs, attn = net->bufB;
        }
        RAGD_CK(rec.mark(P_O));
        if (int rc = ragd_gemm_run(&net->g_o, net->lt, L.wo, attn, x, Tr, nullptr, net->ws, kWorkspace, st, cerr))
            return rc;
        RAGD_CK(rec.mark(P_NORM2));
        if (post) RAGD_CK(ragd_k_layernorm(x, L.bo, L.attn_norm, L.attn_norm_b, s->rms_eps, Tr, (int)d.E, net->bufA, st));
        else RAGD_CK(ragd_k_rmsnorm(x, L.ffn_norm, net->bufA, Tr, (int)d.E, s->rms_eps, st));
        // the MLP in chunks of ≤ M rows (its intermediates are [M, GU] and [M, F]); with profiling on, the
        // phases are marked in the first chunk only (later chunks count to the down projection)
        for (int r0 = 0; r0 < Tr; r0 += (int)d.M) {
            const int n = std::min((int)d.M, Tr - r0);
            if (r0 == 0) RAGD_CK(rec.mark(P_GU));
            if (int rc = ragd_gemm_run(&net->g_gu, net->lt, L.wgu, net->bufA + (size_t)r0 * d.E, net->mlpB, n, L.bup,
                                       net->ws, kWorkspace, st, cerr))
                return rc;
            if (r0 == 0) RAGD_CK(rec.mark(P_SWIGLU));
            if (s->act == RAGD_CUDA_ACT_SWIGLU) RAGD_CK(ragd_k_swiglu(net->mlpB, net->mlpA, n, (int)d.F, st));
            else RAGD_CK(ragd_k_gelu(net->mlpB, net->mlpA, n, (int)d.F, s->act == RAGD_CUDA_ACT_GELU_TANH, st));
            if (r0 == 0) RAGD_CK(rec.mark(P_DOWN));
            if (int rc = ragd_gemm_run(&net->g_down, net->lt, L.wdown, net->mlpA, x + (size_t)r0 * d.E, n, nullptr,
                                       net->ws, kWorkspace, st, cerr))
                return rc;
        }
        if (post) {
            RAGD_CK(rec.mark(P_NORM1));
            RAGD_CK(ragd_k_layernorm(x, L.bdown, L.ffn_norm, L.ffn_norm_b, s->rms_eps, Tr, (int)d.E, net->bufA, st));
        }
    }
    *out = last_only ? Rows{net->x_last, net->iota_d} : Rows{net->x, seq};
    return RAGD_CUDA_OK;
}

// Stages the batch metadata, then runs the layers. (A CUDA-graph replay of the layer stack for one
// short sequence was measured twice — device runs 8 and 4 of bench/results-cuda.md — and gained
// nothing: at T = 20 the time is the GPU's, ~250 short kernels, not the host's launches.)
static int forward(ragd_cuda_net *net, int n_seqs, int T, bool last_only, Rows *out) {
    ragd_cuda_err *cerr = &net->cerr;
    const Dims &d = net->d;
    cudaStream_t st = net->st;
    const int n_tiles = ragd_attn_tiles(n_seqs, net->seq_h, net->tiles_h, (int)d.tiles);
    if (n_tiles < 0) return ragd_cuda_fail(cerr, "ragd_attn_tiles", "tile list exceeds the plan", __FILE__, __LINE__);
    nvtxRangePushA("ragd.cuda.forward");
    RAGD_CK(cudaMemcpyAsync(net->tok_d, net->tok_h, (size_t)T * 4, cudaMemcpyHostToDevice, st));
    RAGD_CK(cudaMemcpyAsync(net->pos_d, net->pos_h, (size_t)T * 4, cudaMemcpyHostToDevice, st));
    if (net->s.abs_pos) RAGD_CK(cudaMemcpyAsync(net->type_d, net->type_h, (size_t)T * 4, cudaMemcpyHostToDevice, st));
    RAGD_CK(cudaMemcpyAsync(net->seq_d, net->seq_h, (size_t)(n_seqs + 1) * 4, cudaMemcpyHostToDevice, st));
    RAGD_CK(cudaMemcpyAsync(net->tiles_d, net->tiles_h, (size_t)n_tiles * 8, cudaMemcpyHostToDevice, st));
    if (last_only) {  // the query tile holding each sequence's last row
        for (int i = 0; i < n_seqs; i++)
            net->tiles_last_h[i] = make_int2(i, (net->seq_h[i + 1] - net->seq_h[i] - 1) / RAGD_ATTN_BM * RAGD_ATTN_BM);
        RAGD_CK(cudaMemcpyAsync(net->tiles_last_d, net->tiles_last_h, (size_t)n_seqs * 8, cudaMemcpyHostToDevice, st));
    }
    Recorder rec{net, 0, false};
    if (int rc = net_layers(net, n_seqs, T, n_tiles, nullptr, last_only, rec, out)) return rc;
    RAGD_CK(rec.mark(P_POOL));
    nvtxRangePop();
    return RAGD_CUDA_OK;
}

// After the pooling/scoring kernel: copy out, wait, account profile events, check finiteness.
// src: the device rows [n_seqs, width] (out_d unless named).
static int finish(ragd_cuda_net *net, int n_seqs, int width, float *out, char *msg, size_t msg_len,
                  const float *src = nullptr) {
    ragd_cuda_err *cerr = &net->cerr;
    size_t n = (size_t)n_seqs * width;
    RAGD_CK(cudaMemcpyAsync(net->out_h, src ? src : net->out_d, n * 4, cudaMemcpyDeviceToHost, net->st));
    if (net->profile) RAGD_CK(cudaEventRecord(net->ev[net->s.n_layer * 9 + 2], net->st));
    RAGD_CK(cudaStreamSynchronize(net->st));
    if (net->profile) {
        int last = net->s.n_layer * 9 + 2;
        for (int i = 0; i < last; i++) {
            float ms = 0.f;
            RAGD_CK(cudaEventElapsedTime(&ms, net->ev[i], net->ev[i + 1]));
            net->phase_ms[net->ev_phase[i]] += ms;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!std::isfinite(net->out_h[i]))
            return net_msg(msg, msg_len, RAGD_CUDA_ENONFINITE,
                           "non-finite value (%g) in the output of sequence %zu of the batch", net->out_h[i], i / width);
    memcpy(out, net->out_h, n * 4);
    return RAGD_CUDA_OK;
}

extern "C" int ragd_cuda_net_pool(ragd_cuda_net *net, int n_seqs, const int32_t *tokens, const int32_t *type_ids,
                                  const int32_t *pos_ids, const int32_t *seq_start, int mode, float *out, char *msg,
                                  size_t msg_len) {
    ragd_cuda_err *cerr = &net->cerr;
    if (cerr->dead) return net_dead(net, msg, msg_len);
    if (mode < 0 || mode > RAGD_CUDA_POOL_MAX) return net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "unknown pooling mode %d", mode);
    int T = stage_batch(net, n_seqs, tokens, type_ids, pos_ids, seq_start, msg, msg_len);
    if (T < 0) return -T;
    Rows r;
    int rc = forward(net, n_seqs, T, mode == RAGD_CUDA_POOL_LAST && net->prune_last, &r);
    if (rc) return net_dead(net, msg, msg_len);
    nvtxRangePushA("ragd.cuda.pool");
    cudaError_t e =
        ragd_k_pool(r.x, net->out_norm, r.seq, n_seqs, (int)net->d.E, net->s.rms_eps, mode, net->out_d, net->st);
    if (e != cudaSuccess) {
        ragd_cuda_fail(cerr, "ragd_k_pool", cudaGetErrorString(e), __FILE__, __LINE__);
        nvtxRangePop();
        return net_dead(net, msg, msg_len);
    }
    rc = finish(net, n_seqs, (int)net->d.E, out, msg, msg_len);
    nvtxRangePop();
    if (rc == RAGD_CUDA_EDEVICE) return net_dead(net, msg, msg_len);
    return rc;
}

extern "C" int ragd_cuda_net_score(ragd_cuda_net *net, int n_seqs, const int32_t *tokens, const int32_t *seq_start,
                                   const float *rows, int n_rows, float *out, char *msg, size_t msg_len) {
    ragd_cuda_err *cerr = &net->cerr;
    if (cerr->dead) return net_dead(net, msg, msg_len);
    if (n_rows <= 0 || (size_t)n_rows > net->d.R)
        return net_msg(msg, msg_len, RAGD_CUDA_ERANGE, "%d score rows requested, the engine allows 1..%zu", n_rows,
                       net->d.R);
    if (!net->out_norm) return net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "token scoring needs a decoder's final norm");
    int T = stage_batch(net, n_seqs, tokens, nullptr, nullptr, seq_start, msg, msg_len);
    if (T < 0) return -T;
    const size_t E = net->d.E;
    for (size_t i = 0; i < (size_t)n_rows * E; i++) net->rows_h[i] = __float2bfloat16_rn(rows[i]);
    Rows r;
    int rc = forward(net, n_seqs, T, net->prune_last, &r);
    if (rc) return net_dead(net, msg, msg_len);
    nvtxRangePushA("ragd.cuda.score");
    cudaError_t e = cudaMemcpyAsync(net->rows_d, net->rows_h, (size_t)n_rows * E * 2, cudaMemcpyHostToDevice, net->st);
    if (e == cudaSuccess)
        e = ragd_k_score(r.x, net->out_norm, r.seq, n_seqs, (int)E, net->s.rms_eps, net->rows_d, n_rows, net->out_d,
                         net->st);
    if (e != cudaSuccess) {
        ragd_cuda_fail(cerr, "ragd_k_score", cudaGetErrorString(e), __FILE__, __LINE__);
        nvtxRangePop();
        return net_dead(net, msg, msg_len);
    }
    rc = finish(net, n_seqs, n_rows, out, msg, msg_len);
    nvtxRangePop();
    if (rc == RAGD_CUDA_EDEVICE) return net_dead(net, msg, msg_len);
    return rc;
}

// The head's input rows go to out_d (pooled: final-normed where the model has a final norm), the CLS
// head's dense + tanh to x_last, the logits to x_last (POOL_LINEAR) or out_d (CLS).
extern "C" int ragd_cuda_net_classify(ragd_cuda_net *net, int n_seqs, const int32_t *tokens, const int32_t *type_ids,
                                      const int32_t *pos_ids, const int32_t *seq_start, float *out, char *msg,
                                      size_t msg_len) {
    ragd_cuda_err *cerr = &net->cerr;
    const ragd_cuda_shape *s = &net->s;
    if (cerr->dead) return net_dead(net, msg, msg_len);
    if (!s->head) return net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "the model has no classification head");
    int T = stage_batch(net, n_seqs, tokens, type_ids, pos_ids, seq_start, msg, msg_len);
    if (T < 0) return -T;
    const int pool = s->head == RAGD_CUDA_HEAD_CLS ? RAGD_CUDA_POOL_CLS : s->head_pool;
    Rows r;
    int rc = forward(net, n_seqs, T, pool == RAGD_CUDA_POOL_LAST && net->prune_last, &r);
    if (rc) return net_dead(net, msg, msg_len);
    nvtxRangePushA("ragd.cuda.classify");
    const int E = (int)net->d.E;
    cudaError_t e = ragd_k_pool(r.x, net->out_norm, r.seq, n_seqs, E, s->rms_eps, pool, net->out_d, net->st);
    const float *logits = net->x_last;
    if (e == cudaSuccess && s->head == RAGD_CUDA_HEAD_CLS) {
        e = ragd_k_head(net->out_d, net->cls_dense, net->cls_dense_b, n_seqs, E, E, 1, 1.f, net->x_last, net->st);
        if (e == cudaSuccess)
            e = ragd_k_head(net->x_last, net->cls_out, net->cls_out_b, n_seqs, s->n_labels, E, 0, 1.f, net->out_d, net->st);
        logits = net->out_d;
    } else if (e == cudaSuccess) {
        e = ragd_k_head(net->out_d, net->cls_out, net->cls_out_b, n_seqs, s->n_labels, E, 0, s->head_div, net->x_last,
                        net->st);
    }
    if (e != cudaSuccess) {
        ragd_cuda_fail(cerr, "classification head", cudaGetErrorString(e), __FILE__, __LINE__);
        nvtxRangePop();
        return net_dead(net, msg, msg_len);
    }
    rc = finish(net, n_seqs, s->n_labels, out, msg, msg_len, logits);
    nvtxRangePop();
    if (rc == RAGD_CUDA_EDEVICE) return net_dead(net, msg, msg_len);
    return rc;
}

extern "C" int ragd_cuda_net_set_profile(ragd_cuda_net *net, int on) {
    net->profile = on;
    memset(net->phase_ms, 0, sizeof net->phase_ms);
    return RAGD_CUDA_OK;
}

extern "C" void ragd_cuda_net_profile_read(ragd_cuda_net *net, double *ms, const char **names) {
    for (int i = 0; i < RAGD_CUDA_N_PHASES; i++) {
        if (ms) ms[i] += net->phase_ms[i];
        if (names) names[i] = kPhaseNames[i];
    }
    memset(net->phase_ms, 0, sizeof net->phase_ms);
}

extern "C" const char *ragd_cuda_net_error(const ragd_cuda_net *net) { return net->cerr.msg; }
extern "C" const char *ragd_cuda_net_gemm_info(const ragd_cuda_net *net) { return net->gemm_info; }

extern "C" double ragd_cuda_net_tune_ms(const ragd_cuda_net *net) { return net->tune_ms; }
