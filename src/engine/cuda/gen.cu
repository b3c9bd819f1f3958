// gen.cu — the generation step of a net over the paged KV cache: the step's metadata in one planned
// buffer, the layer stack with the paged attention (paged_attention.cu), the final norm and lm head of
// each sequence's last row, the device sampler, and the CUDA graphs of decode-only steps.
//
// Metadata (meta_layout): per token (ids, positions, sequence), per sequence (row offsets, cached
// positions, block-table offsets, sampling parameters), the prefill tiles, the decode work items and the
// block tables, 16-byte aligned, in that order. An eager step lays them out for its own sizes and copies
// them with one cudaMemcpyAsync. A decode graph for B rows was captured against the layout for B rows
// (fixed offsets into the same buffer); its step fills that layout, pads rows B − n with one-token
// sequences on the scratch block (inactive: nothing sampled), and copies three ranges (header, items,
// block tables). Graph and eager steps read and write only these planned buffers, the activations and
// the KV arena: neither can see an address or a shape the other left behind, and the graphs are never
// re-captured (they are instantiated once, after the weights are uploaded).
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <nvtx3/nvToolsExt.h>

#include "engine/cuda/net_internal.cuh"

namespace {

size_t a16(size_t x) { return (x + 15) & ~(size_t)15; }

struct MetaLayout {
    size_t n_items, tok, pos, tokseq, seq, pos0, blk_start, params, gtiles, items, blocks, end;
};

MetaLayout meta_layout(size_t T, size_t S, size_t n_gtiles, size_t n_items, size_t n_blocks) {
    MetaLayout L;
    size_t o = 0;
    L.n_items = o, o = a16(o + 4);
    L.tok = o, o = a16(o + T * 4);
    L.pos = o, o = a16(o + T * 4);
    L.tokseq = o, o = a16(o + T * 4);
    L.seq = o, o = a16(o + (S + 1) * 4);
    L.pos0 = o, o = a16(o + S * 4);
    L.blk_start = o, o = a16(o + (S + 1) * 4);
    L.params = o, o = a16(o + S * sizeof(ragd_sample_params));
    L.gtiles = o, o = a16(o + n_gtiles * 8);
    L.items = o, o = a16(o + n_items * 16);
    L.blocks = o, o = a16(o + n_blocks * 4);
    L.end = o;
    return L;
}

size_t splits_of(size_t ctx) { return (ctx + RAGD_KV_SPLIT - 1) / RAGD_KV_SPLIT; }

// Capacities of a decode graph's layout for B rows.
MetaLayout graph_layout(const Dims &d, int nKV, int B) {
    const size_t blk_per_seq = (d.ctx + d.bs - 1) / d.bs;
    return meta_layout((size_t)B, (size_t)B, 0, (size_t)B * nKV * splits_of(d.ctx), (size_t)B * blk_per_seq);
}

StepMeta meta_ptrs(const ragd_cuda_net *net, const MetaLayout &L, int n_gtiles, int decode_grid, int decode_db) {
    const char *b = net->meta_d;
    StepMeta m;
    m.n_items = (const int *)(b + L.n_items);
    m.tok = (const int32_t *)(b + L.tok);
    m.pos = (const int32_t *)(b + L.pos);
    m.tokseq = (const int32_t *)(b + L.tokseq);
    m.seq = (const int32_t *)(b + L.seq);
    m.pos0 = (const int32_t *)(b + L.pos0);
    m.blk_start = (const int32_t *)(b + L.blk_start);
    m.params = (const ragd_sample_params *)(b + L.params);
    m.gtiles = (const int2 *)(b + L.gtiles);
    m.n_gtiles = n_gtiles;
    m.items = (const int4 *)(b + L.items);
    m.blocks = (const int32_t *)(b + L.blocks);
    m.decode_grid = decode_grid;
    m.decode_db = decode_db;
    return m;
}

// The decode attention's schedule (paged_attention.cu): two tile buffers while every item fits on the
// device at once with them, else one buffer and more warps per SM.
int decode_db_for(const ragd_cuda_net *net, size_t n_items) {
    return n_items <= (size_t)std::max(net->n_sm, 1) * (size_t)std::max(net->decode_per_sm[1], 1);
}
int decode_grid_for(const ragd_cuda_net *net, size_t n_items, int db) {
    const size_t cap = (size_t)std::max(net->n_sm, 1) * (size_t)std::max(net->decode_per_sm[db ? 1 : 0], 1);  // a full device
    return (int)std::min(n_items, cap);
}

// Layers → final norm of each row's last position → lm head → sampler → outputs to the pinned host
// copy. Everything on net->st; capturable (no synchronization, no host reads of device data).
int gen_forward(ragd_cuda_net *net, int rows, int T, const StepMeta &m, Recorder &rec) {
    ragd_cuda_err *cerr = &net->cerr;
    const Dims &d = net->d;
    const ragd_cuda_shape *s = &net->s;
    Rows r;
    if (int rc = net_layers(net, rows, T, 0, &m, net->prune_last, rec, &r)) return rc;
    RAGD_CK(rec.mark(P_POOL));  // final norm, lm head, sampler
    RAGD_CK(ragd_k_pool(r.x, net->out_norm, r.seq, rows, (int)d.E, s->rms_eps, RAGD_CUDA_POOL_LAST, net->out_d, net->st));
    RAGD_CK(ragd_k_to_bf16(net->out_d, RAGD_CUDA_F32, net->last_d, (size_t)rows * d.E, net->st));
    if (int rc = ragd_gemm_run(&net->g_lm, net->lt, net->lm_head, net->last_d, net->logits_d, rows, nullptr, net->ws,
                               kWorkspace, net->st, cerr))
        return rc;
    RAGD_CK(ragd_k_logit_proc(net->logits_d, d.Vl, rows, (int)d.V, m.params, net->mask_d, net->edit_d, net->st));
    RAGD_CK(ragd_k_sample(net->logits_d, d.Vl, rows, (int)d.V, m.params, net->sout_d, net->sample_ws, net->st));
    RAGD_CK(cudaMemcpyAsync(net->sout_h, net->sout_d, (size_t)rows * sizeof(ragd_sample_out), cudaMemcpyDeviceToHost,
                            net->st));
    if (net->profile && !rec.off) RAGD_CK(cudaEventRecord(net->ev[rec.i], net->st));  // the end of the last phase
    return RAGD_CUDA_OK;
}

// Graph buckets: 1, 2, 4, 8, then every 8 to 64, every 32 to 256, every 128 beyond, and max_seqs.
int graph_buckets(int max_seqs, int *B, int cap) {
    int n = 0;
    for (int b = 1; n < cap - 1;) {
        if (b >= max_seqs) break;
        B[n++] = b;
        b = b < 8 ? b * 2 : b < 64 ? b + 8 : b < 256 ? b + 32 : b + 128;
    }
    B[n++] = max_seqs;
    return n;
}

}  // namespace

static size_t max_edits_of(const ragd_cuda_shape *s) { return s->max_logit_edits > 0 ? (size_t)s->max_logit_edits : 1; }

void gen_plan(const ragd_cuda_shape *s, const Dims &d, size_t *dev, size_t *host) {
    const size_t meta = meta_layout(d.T, d.S, d.tiles, d.items, d.max_blk).end;
    const size_t ws = ragd_k_sample_ws_bytes((int)d.S, (int)d.V);
    *dev = align_up(meta) + align_up(d.S * d.E * 2) + align_up(d.S * d.Vl * 4) + align_up(d.part * 4) +
           align_up(d.S * (size_t)s->n_head_kv * 4) + align_up(d.S * sizeof(ragd_sample_out)) + align_up(ws) +
           align_up(d.S * ((d.V + 31) / 32) * 4) + align_up(max_edits_of(s) * sizeof(ragd_logit_edit));
    *host = kAlign + meta + d.S * sizeof(ragd_sample_out) + d.S * d.V * 4;  // (+ alignment of the metadata)
}

int gen_carve(ragd_cuda_net *net, char **dev, char **host) {
    ragd_cuda_err *cerr = &net->cerr;
    const Dims &d = net->d;
    char *p = *dev, *q = *host;
    auto take = [&p](size_t bytes) {
        char *r = p;
        p += align_up(bytes);
        return r;
    };
    net->meta_bytes = meta_layout(d.T, d.S, d.tiles, d.items, d.max_blk).end;
    net->sample_ws_bytes = ragd_k_sample_ws_bytes((int)d.S, (int)d.V);
    net->meta_d = take(net->meta_bytes);
    net->last_d = (bf16 *)take(d.S * d.E * 2);
    net->logits_d = (float *)take(d.S * d.Vl * 4);  // rows of Vl floats (the first V are the logits)
    net->part_d = (float *)take(d.part * 4);
    net->counters_d = (int *)take(d.S * (size_t)net->s.n_head_kv * 4);
    net->sout_d = (ragd_sample_out *)take(d.S * sizeof(ragd_sample_out));
    net->sample_ws = take(net->sample_ws_bytes);
    net->mask_d = (uint32_t *)take(d.S * ((d.V + 31) / 32) * 4);
    net->edit_d = (ragd_logit_edit *)take(max_edits_of(&net->s) * sizeof(ragd_logit_edit));
    q = (char *)(((uintptr_t)q + kAlign - 1) / kAlign * kAlign);  // int4 work items need 16-byte alignment
    net->meta_h = q, q += net->meta_bytes;
    net->sout_h = (ragd_sample_out *)q, q += d.S * sizeof(ragd_sample_out);
    net->logits_h = (float *)q, q += d.S * d.V * 4;
    RAGD_CK(cudaMemset(net->counters_d, 0, d.S * (size_t)net->s.n_head_kv * 4));
    const char *g = getenv("RAGD_CUDA_GRAPHS");
    net->use_graphs = !g || strcmp(g, "0");
    *dev = p, *host = q;
    return RAGD_CUDA_OK;
}

void gen_free(ragd_cuda_net *net) {
    for (int i = 0; i < net->n_graphs; i++)
        if (net->graph[i]) cudaGraphExecDestroy(net->graph[i]);
    net->n_graphs = 0;
}

int gen_capture_graphs(ragd_cuda_net *net) {
    ragd_cuda_err *cerr = &net->cerr;
    if (!net->s.kv_cache || !net->use_graphs) return RAGD_CUDA_OK;
    const double t0 = net_now_ms();
    size_t free0 = 0, free1 = 0, total = 0;
    RAGD_CK(cudaDeviceSynchronize());
    RAGD_CK(cudaMemGetInfo(&free0, &total));
    int B[RAGD_CUDA_MAX_GRAPHS];
    const int n = graph_buckets(net->s.max_seqs, B, RAGD_CUDA_MAX_GRAPHS);
    for (int k = 0; k < n; k++) {
        const MetaLayout L = graph_layout(net->d, net->s.n_head_kv, B[k]);
        // the schedule for the bucket's typical items (contexts of ~2 splits); a replay with other
        // contexts runs the same bits either way
        const size_t cap_items = L.items ? (L.blocks - L.items) / 16 : 0;
        const int db = decode_db_for(net, (size_t)B[k] * net->s.n_head_kv * 2);
        const StepMeta m = meta_ptrs(net, L, 0, decode_grid_for(net, cap_items, db), db);
        cudaGraph_t g = nullptr;
        RAGD_CK(cudaStreamBeginCapture(net->st, cudaStreamCaptureModeThreadLocal));
        Recorder rec{net, 0, true};
        const int rc = gen_forward(net, B[k], B[k], m, rec);
        cudaError_t e = cudaStreamEndCapture(net->st, &g);
        if (rc) {
            if (g) cudaGraphDestroy(g);
            return rc;
        }
        RAGD_CK(e);
        cudaGraphExec_t x = nullptr;
        e = cudaGraphInstantiate(&x, g, 0);
        cudaGraphDestroy(g);
        RAGD_CK(e);
        net->graph[k] = x;
        net->graph_B[k] = B[k];
        net->n_graphs = k + 1;
    }
    RAGD_CK(cudaDeviceSynchronize());
    RAGD_CK(cudaMemGetInfo(&free1, &total));
    net->graph_bytes = free0 > free1 ? free0 - free1 : 0;
    net->graph_ms = net_now_ms() - t0;
    return RAGD_CUDA_OK;
}

extern "C" int ragd_cuda_net_graph_info(const ragd_cuda_net *net, double *capture_ms, size_t *bytes) {
    if (capture_ms) *capture_ms = net->graph_ms;
    if (bytes) *bytes = net->graph_bytes;
    return net->n_graphs;
}

struct StepProc {  // the step's logit processing inputs (host memory of the caller)
    const uint32_t *masks;
    int n_masks;
    const ragd_logit_edit *edits;
    int n_edits;
};

static int step_run(ragd_cuda_net *net, const MetaLayout &L, int gk, int n_seqs, int T, int ngt, int ni, int nb_all,
                    const ragd_sample_params *sp, const StepProc &pr, ragd_sample_out *out, float *logits,
                    int logits_all);

extern "C" int ragd_cuda_net_step(ragd_cuda_net *net, int n_seqs, const int32_t *tokens, const int32_t *seq_start,
                                  const int32_t *pos0, const int32_t *blk_start, const int32_t *blocks,
                                  const ragd_sample_params *sp, const uint32_t *masks, int n_masks,
                                  const ragd_logit_edit *edits, int n_edits, ragd_sample_out *out, float *logits,
                                  int logits_all, char *msg, size_t msg_len) {
    ragd_cuda_err *cerr = &net->cerr;
    if (cerr->dead) return net_dead(net, msg, msg_len);
    const double t_call = net->step_timing ? net_now_ms() : 0.0;
    const ragd_cuda_shape *s = &net->s;
    const Dims &d = net->d;
    if (!s->kv_cache) return net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "step on a CUDA engine created without a KV cache");
    if (!net->ready) return net_msg(msg, msg_len, RAGD_CUDA_EINVAL, "CUDA net used before its weights were uploaded");
    if (n_seqs <= 0 || n_seqs > s->max_seqs || seq_start[0] != 0)
        return net_msg(msg, msg_len, RAGD_CUDA_ERANGE, "step: %d sequences (1..%d), seq_start[0] %d", n_seqs, s->max_seqs,
                       seq_start[0]);
    const int T = seq_start[n_seqs];
    if (T <= 0 || T > s->max_batch_tokens)
        return net_msg(msg, msg_len, RAGD_CUDA_ERANGE, "step: %d tokens (1..%d)", T, s->max_batch_tokens);
    bool decode_only = true;
    size_t n_items = 0, n_gtiles = 0;
    for (int i = 0; i < n_seqs; i++) {
        const int n = seq_start[i + 1] - seq_start[i];
        const size_t need = ((size_t)pos0[i] + (size_t)n + d.bs - 1) / d.bs;
        if (n < 1 || pos0[i] < 0 || (size_t)pos0[i] + (size_t)n > d.ctx || blk_start[0] != 0 ||
            blk_start[i + 1] - blk_start[i] < (int64_t)need || (size_t)blk_start[i + 1] > d.max_blk)
            return net_msg(msg, msg_len, RAGD_CUDA_ERANGE, "step: sequence %d (%d cached + %d new, %d blocks) is outside "
                           "the KV cache (max_ctx %zu, %zu table entries)", i, pos0[i], n, blk_start[i + 1] - blk_start[i],
                           d.ctx, d.max_blk);
        if (n == 1) n_items += (size_t)s->n_head_kv * splits_of((size_t)pos0[i] + 1);
        else n_gtiles += (size_t)ragd_cdiv(n, RAGD_ATTN_BM), decode_only = false;
    }
    const int nb = blk_start[n_seqs];
    for (int j = 0; j < nb; j++)
        if (blocks[j] < 0 || (size_t)blocks[j] >= d.nb)
            return net_msg(msg, msg_len, RAGD_CUDA_ERANGE, "step: block id %d outside the pool of %zu", blocks[j], d.nb);
    if (n_masks < 0 || n_masks > s->max_seqs || (n_masks && !masks) || n_edits < 0 ||
        (size_t)n_edits > max_edits_of(s) || (n_edits && !edits))
        return net_msg(msg, msg_len, RAGD_CUDA_ERANGE, "step: %d token masks (0..%d), %d logit edits (0..%zu)", n_masks,
                       s->max_seqs, n_edits, max_edits_of(s));
    for (int t = 0; t < T; t++)
        if (tokens[t] < 0 || tokens[t] >= s->n_vocab)
            return net_msg(msg, msg_len, RAGD_CUDA_ERANGE, "token id %d at position %d is outside the vocabulary (0..%d)",
                           tokens[t], t, s->n_vocab - 1);

    // a decode graph for these rows, if any
    int gk = -1;
    if (decode_only && net->n_graphs && !net->profile)
        for (int k = 0; k < net->n_graphs && gk < 0; k++)
            if (net->graph_B[k] >= n_seqs) gk = k;
    const int rows = gk >= 0 ? net->graph_B[gk] : n_seqs;
    const MetaLayout L = gk >= 0 ? graph_layout(d, s->n_head_kv, rows)
                                 : meta_layout((size_t)T, (size_t)n_seqs, n_gtiles, n_items, (size_t)nb);

    // fill the metadata (host, pinned)
    nvtxRangePushA("ragd.cuda.step_stage");
    char *h = net->meta_h;
    int32_t *tok = (int32_t *)(h + L.tok), *pos = (int32_t *)(h + L.pos), *tsq = (int32_t *)(h + L.tokseq);
    int32_t *seq = (int32_t *)(h + L.seq), *p0 = (int32_t *)(h + L.pos0), *bst = (int32_t *)(h + L.blk_start);
    int32_t *blk = (int32_t *)(h + L.blocks);
    ragd_sample_params *par = (ragd_sample_params *)(h + L.params);
    memcpy(tok, tokens, (size_t)T * 4);
    memcpy(seq, seq_start, (size_t)(n_seqs + 1) * 4);
    memcpy(p0, pos0, (size_t)n_seqs * 4);
    memcpy(bst, blk_start, (size_t)(n_seqs + 1) * 4);
    memcpy(blk, blocks, (size_t)nb * 4);
    for (int i = 0; i < n_seqs; i++)
        for (int t = seq_start[i]; t < seq_start[i + 1]; t++) pos[t] = pos0[i] + (t - seq_start[i]), tsq[t] = i;
    if (sp) memcpy(par, sp, (size_t)n_seqs * sizeof *par);
    else memset(par, 0, (size_t)n_seqs * sizeof *par);
    int nb_all = nb;
    for (int i = n_seqs; i < rows; i++) {  // graph padding: one-token sequences on the scratch block
        tok[i] = 0, pos[i] = 0, tsq[i] = i, p0[i] = 0;
        seq[i + 1] = i + 1;
        blk[nb_all] = (int32_t)d.nb;
        bst[i + 1] = ++nb_all;
        memset(&par[i], 0, sizeof par[i]);
    }
    int ni = 0, ngt = 0;
    int32_t slots = 0;
    if (ragd_paged_work(rows, seq, p0, s->n_head_kv, (int2 *)(h + L.gtiles), (int)n_gtiles, &ngt, (int4 *)(h + L.items),
                        (int)((L.blocks - L.items) / 16), &ni, &slots))
        return ragd_cuda_fail(cerr, "ragd_paged_work", "work lists exceed the plan", __FILE__, __LINE__);
    if ((size_t)slots * (size_t)(s->n_head / s->n_head_kv) * (d.hd + 2) > d.part)
        return ragd_cuda_fail(cerr, "ragd_paged_work", "decode partials exceed the plan", __FILE__, __LINE__);
    *(int *)(h + L.n_items) = ni;
    nvtxRangePop();

    nvtxRangePushA("ragd.cuda.step");
    if (net->step_timing) net->st_stage_ms += net_now_ms() - t_call;
    const StepProc pr{masks, n_masks, edits, n_edits};
    const int rc = step_run(net, L, gk, n_seqs, T, ngt, ni, nb_all, sp, pr, out, logits, logits_all);
    nvtxRangePop();
    if (net->step_timing && !rc) {
        float ms = 0.f;
        if (cudaEventElapsedTime(&ms, net->ev_s0, net->ev_s1) == cudaSuccess) net->st_gpu_ms += ms;
        net->st_call_ms += net_now_ms() - t_call;
        net->st_n++;
    }
    return rc ? net_dead(net, msg, msg_len) : RAGD_CUDA_OK;
}

// Copy, run (graph or eager), wait; then the outputs.
static int step_run(ragd_cuda_net *net, const MetaLayout &L, int gk, int n_seqs, int T, int ngt, int ni, int nb_all,
                    const ragd_sample_params *sp, const StepProc &pr, ragd_sample_out *out, float *logits,
                    int logits_all) {
    ragd_cuda_err *cerr = &net->cerr;
    const Dims &d = net->d;
    const char *h = net->meta_h;
    cudaStream_t st = net->st;
    if (net->step_timing) RAGD_CK(cudaEventRecord(net->ev_s0, st));
    // the logit processing inputs: planned buffers at fixed addresses (graphs read them too); from
    // pageable caller memory, so each copy has read its source before it returns
    if (pr.n_masks)
        RAGD_CK(cudaMemcpyAsync(net->mask_d, pr.masks, (size_t)pr.n_masks * ((d.V + 31) / 32) * 4, cudaMemcpyHostToDevice,
                                st));
    if (pr.n_edits)
        RAGD_CK(cudaMemcpyAsync(net->edit_d, pr.edits, (size_t)pr.n_edits * sizeof(ragd_logit_edit),
                                cudaMemcpyHostToDevice, st));
    if (gk >= 0) {
        RAGD_CK(cudaMemcpyAsync(net->meta_d, h, L.gtiles, cudaMemcpyHostToDevice, st));
        RAGD_CK(cudaMemcpyAsync(net->meta_d + L.items, h + L.items, (size_t)ni * 16, cudaMemcpyHostToDevice, st));
        RAGD_CK(cudaMemcpyAsync(net->meta_d + L.blocks, h + L.blocks, (size_t)nb_all * 4, cudaMemcpyHostToDevice, st));
        RAGD_CK(cudaGraphLaunch(net->graph[gk], st));
    } else {
        RAGD_CK(cudaMemcpyAsync(net->meta_d, h, L.end, cudaMemcpyHostToDevice, st));
    }
    Recorder rec{net, 0, false};
    if (gk < 0) {
        const int db = decode_db_for(net, (size_t)ni);
        const StepMeta m = meta_ptrs(net, L, ngt, ni ? decode_grid_for(net, (size_t)ni, db) : 0, db);
        if (int rc = gen_forward(net, n_seqs, T, m, rec)) return rc;
    }
    if (net->step_timing) RAGD_CK(cudaEventRecord(net->ev_s1, st));
    RAGD_CK(cudaStreamSynchronize(st));
    if (net->profile && gk < 0)  // per-phase device time (profiling forces eager steps)
        for (int i = 0; i < rec.i; i++) {
            float ms = 0.f;
            RAGD_CK(cudaEventElapsedTime(&ms, net->ev[i], net->ev[i + 1]));
            net->phase_ms[net->ev_phase[i]] += ms;
        }

    // outputs; rows the device sampler declined (and every row when asked) bring their logits
    bool any_host = false;
    for (int i = 0; i < n_seqs; i++)
        if (sp && sp[i].active) {
            out[i] = net->sout_h[i];
            any_host |= out[i].token == RAGD_CUDA_SAMPLE_ON_HOST;
        }
    if (logits && (logits_all || any_host)) {
        RAGD_CK(cudaMemcpy2D(net->logits_h, d.V * 4, net->logits_d, d.Vl * 4, d.V * 4, (size_t)n_seqs,
                             cudaMemcpyDeviceToHost));
        for (int i = 0; i < n_seqs; i++)
            if (logits_all || (sp && sp[i].active && out[i].token == RAGD_CUDA_SAMPLE_ON_HOST))
                memcpy(logits + (size_t)i * d.V, net->logits_h + (size_t)i * d.V, d.V * 4);
    }
    return RAGD_CUDA_OK;
}

extern "C" int ragd_cuda_net_set_step_timing(ragd_cuda_net *net, int on) {
    net->step_timing = on != 0;
    net->st_gpu_ms = net->st_stage_ms = net->st_call_ms = 0.0;
    net->st_n = 0;
    return RAGD_CUDA_OK;
}

extern "C" void ragd_cuda_net_step_timing_read(ragd_cuda_net *net, double *gpu_ms, double *stage_ms, double *call_ms,
                                               long *n) {
    *gpu_ms = net->st_gpu_ms, *stage_ms = net->st_stage_ms, *call_ms = net->st_call_ms, *n = net->st_n;
    net->st_gpu_ms = net->st_stage_ms = net->st_call_ms = 0.0;
    net->st_n = 0;
}
