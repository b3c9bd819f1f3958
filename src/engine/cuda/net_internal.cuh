// net_internal.cuh — INTERNAL to src/engine/cuda: the net's state (struct ragd_cuda_net), its sizes,
// and the pieces shared by net.cu (plan, upload, the layer stack, pooling and scoring) and gen.cu (the
// generation step over the paged KV cache: one metadata copy, paged attention, device sampling and
// the decode CUDA graphs).
#ifndef RAGD_CUDA_NET_INTERNAL_CUH
#define RAGD_CUDA_NET_INTERNAL_CUH

#include <cuda.h>

#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/gemm.cuh"
#include "engine/cuda/kernels.h"

constexpr size_t kWorkspace = 32u << 20;  // cuBLASLt workspace (NVIDIA's recommendation for Hopper)
constexpr size_t kAlign = 256;
// The MLP runs over the rows in chunks of at most kMlpRows (net_layers): its [rows, F] and [rows, 2F]
// intermediates are the largest activations (bufB was 2F wide), and a chunk of 2,048 rows keeps the
// GEMMs at full speed. Rows are independent, so chunking changes no bit.
constexpr size_t kMlpRows = 2048;

static inline size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

struct Layer {
    bf16 *attn_norm;  // [E]
    bf16 *wqkv;       // [Dqkv, E]
    bf16 *bqkv;       // [Dqkv] or NULL
    bf16 *wo;         // [E, Dq]
    bf16 *q_norm;     // [hd] or NULL
    bf16 *k_norm;     // [hd] or NULL
    bf16 *ffn_norm;   // [E]
    bf16 *wgu;        // [2F, E] (SwiGLU: gate rows then up rows) or [F, E] (GELU: up)
    bf16 *wdown;      // [E, F]
    // encoders (NULL otherwise): LayerNorm biases, o / up / down biases
    bf16 *attn_norm_b, *ffn_norm_b, *bo, *bup, *bdown;  // [E], [E], [E], [F], [E]
};

enum Phase { P_EMBED, P_NORM1, P_QKV, P_ROPE, P_ATTN, P_O, P_NORM2, P_GU, P_SWIGLU, P_DOWN, P_POOL };
extern const char *const kPhaseNames[RAGD_CUDA_N_PHASES];

// Sizes derived from the shape (elements unless named bytes).
struct Dims {
    size_t E, F, V, hd, Dq, Dkv, Dqkv, T, S, R, tiles, bufA, bufB;
    size_t M;   // rows of an MLP chunk: min(T, kMlpRows)
    size_t GU;  // width of the up projection's output: 2F (SwiGLU: gate | up) or F (GELU)
    // generation: rows of the lm head = the logits' row stride, V rounded up to 64 (the padding rows are
    // zero, their logits never read): cuBLASLt has sm90 kernels for N = 151,680 but not for Qwen's 151,669
    // (lm head 843 → 160 µs at 256 rows, 315 → 146 µs at 1; gemm_explore lm); Ve: rows of the token
    // embedding (Vl when the lm head is tied to it)
    size_t Vl, Ve;
    size_t ctx, nb, bs, max_blk;  // KV cache (0 without): max positions per sequence, blocks, block size, table entries
    size_t items, part;           // generation: decode work items, partial-state floats (paged_attention.cu)
};
static inline Dims dims_of(const ragd_cuda_shape *s) {
    Dims d;
    d.E = s->n_embd, d.F = s->n_ff, d.V = s->n_vocab, d.hd = s->head_dim;
    d.Vl = s->kv_cache ? (d.V + 63) / 64 * 64 : d.V;
    d.Ve = s->kv_cache && !s->lm_head ? d.Vl : d.V;
    d.Dq = (size_t)s->n_head * s->head_dim, d.Dkv = (size_t)s->n_head_kv * s->head_dim;
    d.Dqkv = d.Dq + 2 * d.Dkv;
    d.GU = s->act == RAGD_CUDA_ACT_SWIGLU ? 2 * d.F : d.F;
    d.T = s->max_batch_tokens, d.S = s->max_seqs, d.R = s->max_score_rows > 0 ? s->max_score_rows : 1;
    d.tiles = d.T / RAGD_ATTN_BM + d.S;
    d.bufA = std::max(d.E, d.Dq);  // normed rows [T, E], attention output [T, Dq]
    d.bufB = d.Dqkv;               // q|k|v rows
    d.M = std::min(d.T, kMlpRows);
    d.ctx = s->kv_cache ? (size_t)s->max_ctx : 0;
    d.nb = s->kv_cache ? (size_t)s->kv_blocks : 0;
    d.bs = s->kv_cache ? (size_t)s->kv_block_size : 0;
    d.max_blk = s->kv_cache ? d.S * ((d.ctx + d.bs - 1) / d.bs) : 0;
    const size_t splits = s->kv_cache ? (d.ctx + RAGD_KV_SPLIT - 1) / RAGD_KV_SPLIT : 0;
    d.items = d.S * (size_t)s->n_head_kv * splits;
    d.part = d.S * (size_t)s->n_head * splits * (d.hd + 2);  // one [hd + 2] record per (sequence, head, split)
    return d;
}

// The device metadata of one generation step, laid out in one buffer (gen.cu: meta_layout) so an eager
// step copies it with one cudaMemcpyAsync and a decode graph finds it at fixed addresses.
struct StepMeta {
    const int32_t *tok, *pos, *tokseq, *seq, *pos0, *blk_start, *blocks;  // [T], [T], [T], [S+1], [S], [S+1], [..]
    const int2 *gtiles;   // prefill tiles (sequences with > 1 new token)
    int n_gtiles;
    const int4 *items;    // decode work items (sequences with one new token)
    const int *n_items;   // on the device
    int decode_grid;      // 0: no decode rows
    int decode_db;        // the decode attention's schedule: two tile buffers (1) or one (0)
    const ragd_sample_params *params;  // [S]
};

enum { RAGD_CUDA_MAX_GRAPHS = 24 };

struct ragd_cuda_net {
    ragd_cuda_shape s;
    Dims d;
    ragd_cuda_plan plan;
    ragd_cuda_err cerr;
    int ready;
    int prune_last;  // 1 unless RAGD_PRUNE_LAST=0 (benchmark A/B of the pruned last layer)
    int n_sm;
    int decode_per_sm[2];  // resident decode-attention CTAs per SM, one / two tile buffers (generation nets)
    cudaStream_t st;
    cublasLtHandle_t lt;
    char *w_arena, *a_arena;
    void *ws;  // [kWorkspace bytes]
    bf16 *tok_embd;  // [V, E]
    bf16 *out_norm;  // [E] (NULL without final_norm)
    // encoders / heads (NULL when the shape has none)
    bf16 *pos_embd, *type_embd;      // [n_pos_embd, E], [n_type_vocab, E]
    bf16 *embd_norm, *embd_norm_b;   // [E]
    bf16 *cls_dense, *cls_dense_b;   // [E, E], [E]
    bf16 *cls_out, *cls_out_b;       // [n_labels, E], [n_labels]
    Layer *L;        // [n_layer]
    uint32_t glob_filled, *layer_filled;  // bit per weight kind
    // activations
    float *x;            // [T, E] residual
    bf16 *bufA;          // [T, bufA]
    bf16 *mlpA;          // [M, F] the activation's output (down's input); right after bufA (tuner scratch)
    bf16 *bufB;          // [T, bufB]
    bf16 *mlpB;          // [M, GU] the up projection's output; right after bufB (tuner scratch)
    int32_t *tok_d;      // [T]
    int32_t *pos_d;      // [T] positions (RoPE) or position-table rows (abs_pos)
    int32_t *type_d;     // [T] token types (abs_pos)
    int32_t *seq_d;      // [S + 1]
    int2 *tiles_d;       // [tiles]
    float *inv_freq_d;   // [hd/2]
    float *out_d;        // [S, max(E, R)]
    bf16 *rows_d;        // [R, E]
    float *x_last;       // [S, E] residual rows of each sequence's last token through the pruned last layer
    int32_t *iota_d;     // [S + 1] 0, 1, …, S: seq_start of x_last (one row per sequence)
    int2 *tiles_last_d;  // [S] the query tile holding each sequence's last row
    bf16 *lm_head;       // [V, E]: tok_embd when tied
    char *kv_arena;      // K then V of every layer: [n_layer][2][kv_blocks + 1, block_size, Dkv] bf16 (the
                         // last block is scratch for the padding rows of decode graphs)
    // generation (gen.cu; NULL without KV cache)
    char *meta_d;        // [meta_bytes] step metadata
    bf16 *last_d;        // [S, E] final-normed last rows
    float *logits_d;     // [S, V]
    float *part_d;       // [d.part] split states of the decode attention
    int *counters_d;     // [S * nKV] split counters of the decode attention (zero between launches)
    ragd_sample_out *sout_d;  // [S]
    void *sample_ws;     // ragd_k_sample_ws_bytes(S, V)
    uint32_t *mask_d;    // [S, (V + 31) / 32] token masks of a step (logit processing)
    ragd_logit_edit *edit_d;  // [max_logit_edits] logit edits of a step
    size_t meta_bytes, sample_ws_bytes;
    char *meta_h;        // [meta_bytes] pinned
    ragd_sample_out *sout_h;  // [S] pinned
    float *logits_h;     // [S, V] pinned (tests, host-sampled rows)
    int n_graphs, graph_B[RAGD_CUDA_MAX_GRAPHS];
    cudaGraphExec_t graph[RAGD_CUDA_MAX_GRAPHS];
    double graph_ms;     // startup cost of capturing them
    size_t graph_bytes;  // device memory the graphs took (measured at capture)
    int use_graphs;      // 0 with RAGD_CUDA_GRAPHS=0 (A/B, the graph-vs-eager stress test)
    // pinned host staging (pooling and scoring)
    int32_t *tok_h, *pos_h, *seq_h;  // [T], [T], [S + 1]
    int32_t *type_h;                 // [T]
    int2 *tiles_h;                   // [tiles]
    int2 *tiles_last_h;              // [S]
    float *out_h;                    // [S, max(E, R)]
    bf16 *rows_h;                    // [R, E]
    ragd_gemm g_qkv, g_o, g_gu, g_down, g_lm;  // g_lm: lm head (KV cache only)
    char gemm_info[6144];
    // profiling
    int profile, n_ev;
    cudaEvent_t *ev;  // [n_layer * 9 + 4]
    int *ev_phase;    // phase of the interval that starts at event i
    double phase_ms[RAGD_CUDA_N_PHASES];
    double tune_ms;  // startup cost of the GEMM tuning
    // step timing (ragd_cuda_net_set_step_timing)
    int step_timing;
    cudaEvent_t ev_s0, ev_s1;
    double st_gpu_ms, st_stage_ms, st_call_ms;
    long st_n;
};

struct Recorder {  // per-phase events when profiling is on
    ragd_cuda_net *net;
    int i;
    bool off;  // inside a graph capture: no events
    cudaError_t mark(int phase) {
        if (!net->profile || off) return cudaSuccess;
        net->ev_phase[i] = phase;
        return cudaEventRecord(net->ev[i++], net->st);
    }
};

// The residual rows a forward leaves for the pooling/scoring kernels, with the seq_start list that
// indexes them: (x, seq) for all rows, or (x_last, iota_d) — one row per sequence — when the last
// layer was computed for the last rows only.
struct Rows {
    float *x;
    const int32_t *seq;
};

// The layer stack (net.cu). Pooling/scoring (gen == NULL): the packed prefill over the staged batch
// (tok_d, pos_d, seq_d, tiles) with the contiguous attention; generation: the paged attention over the
// KV cache with gen's metadata.
int net_layers(ragd_cuda_net *net, int n_seqs, int T, int n_tiles, const StepMeta *gen, bool last_only,
               Recorder &rec, Rows *out);
int net_msg(char *msg, size_t len, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int net_dead(const ragd_cuda_net *net, char *msg, size_t len);
double net_now_ms();

// gen.cu
void gen_plan(const ragd_cuda_shape *s, const Dims &d, size_t *device_bytes, size_t *host_bytes);
int gen_carve(ragd_cuda_net *net, char **dev, char **host);  // after the arenas exist; zeroes the counters
int gen_capture_graphs(ragd_cuda_net *net);                   // after the weights are uploaded
void gen_free(ragd_cuda_net *net);

#endif
