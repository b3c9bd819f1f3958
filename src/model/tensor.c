/* tensor.c — dtype and arch names, dtype byte sizes and ragd_tensor_to_f32: any stored dtype to f32. Depends on
 * nothing but common (the safetensors parser and the fuzz target link it alone).
 *
 * Float types convert element by element; the GGUF quantized types decode 32-element blocks (layouts in
 * MODEL_FACTS.md §8, ggml's ggml-common.h):
 *   Q8_0 (34 B): half d; int8 qs[32]        → x[j] = qs[j] * d
 *   Q4_0 (18 B): half d; u8 qs[16]          → x[j] = ((qs[j] & 15) - 8) * d, x[j+16] = ((qs[j] >> 4) - 8) * d
 *   Q4_1 (20 B): half d; half m; u8 qs[16]  → x[j] = (qs[j] & 15) * d + m,  x[j+16] = (qs[j] >> 4) * d + m
 * Data may be unaligned (safetensors headers of any length), so every load goes through memcpy.
 */
#include "model/model_internal.h"

const char *ragd_dtype_name(ragd_dtype t) {
    switch (t) {
    case RAGD_DT_F32: return "F32";
    case RAGD_DT_F16: return "F16";
    case RAGD_DT_BF16: return "BF16";
    case RAGD_DT_Q8_0: return "Q8_0";
    case RAGD_DT_Q4_0: return "Q4_0";
    case RAGD_DT_Q4_1: return "Q4_1";
    case RAGD_DT_I64: return "I64";
    }
    return "?";
}

const char *ragd_arch_name(ragd_arch a) {
    switch (a) {
    case RAGD_ARCH_QWEN3: return "qwen3";
    case RAGD_ARCH_LLAMA: return "llama";
    case RAGD_ARCH_QWEN2: return "qwen2";
    case RAGD_ARCH_BERT: return "bert";
    case RAGD_ARCH_XLMR: return "xlm-roberta";
    case RAGD_ARCH_LLAMA_BIDIR: return "llama-bidirectional";
    case RAGD_ARCH_QWEN35: return "qwen3.5";
    }
    return "?";
}

size_t ragd_dtype_unit_bytes(ragd_dtype t) {
    switch (t) {
    case RAGD_DT_F32: return 4;
    case RAGD_DT_F16:
    case RAGD_DT_BF16: return 2;
    case RAGD_DT_Q8_0: return 34; /* half d; int8 qs[32] */
    case RAGD_DT_Q4_0: return 18; /* half d; u8 qs[16] */
    case RAGD_DT_Q4_1: return 20; /* half d, m; u8 qs[16] */
    case RAGD_DT_I64: return 8;
    }
    RAGD_DIE("bad dtype %d", (int)t);
}

bool ragd_dtype_is_quant(ragd_dtype t) { return t == RAGD_DT_Q8_0 || t == RAGD_DT_Q4_0 || t == RAGD_DT_Q4_1; }

bool ragd_dtype_nbytes(ragd_dtype t, size_t n, size_t *out) {
    *out = 0;
    if (ragd_dtype_is_quant(t)) {
        if (n % 32) return false;
        n /= 32;
    }
    return ragd_mul_ok(n, ragd_dtype_unit_bytes(t), out);
}

size_t ragd_tensor_numel(const ragd_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->n_dims; i++) n *= (size_t)t->shape[i]; /* validated: no overflow */
    return n;
}

static inline uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

void ragd_tensor_to_f32(const ragd_tensor *t, size_t start, size_t n, float *dst) {
    size_t numel = ragd_tensor_numel(t);
    RAGD_ASSERT(t->data != NULL);
    RAGD_ASSERT(start <= numel && n <= numel - start);
    const uint8_t *src = t->data;
    switch (t->dtype) {
    case RAGD_DT_F32:
        memcpy(dst, src + start * 4, n * 4);
        return;
    case RAGD_DT_F16:
        for (size_t i = 0; i < n; i++) dst[i] = ragd_f16_to_f32(load_u16(src + (start + i) * 2));
        return;
    case RAGD_DT_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = ragd_bf16_to_f32(load_u16(src + (start + i) * 2));
        return;
    case RAGD_DT_Q8_0:
    case RAGD_DT_Q4_0:
    case RAGD_DT_Q4_1: break;
    case RAGD_DT_I64: RAGD_DIE("ragd_tensor_to_f32: an I64 buffer is not a weight (validation refuses it)");
    }
    RAGD_ASSERT(start % 32 == 0 && n % 32 == 0);
    size_t bsz = ragd_dtype_unit_bytes(t->dtype);
    for (size_t b = 0; b < n / 32; b++) {
        const uint8_t *blk = src + (start / 32 + b) * bsz; // [bsz] one block
        float *o = dst + b * 32;                            // [32]
        float d = ragd_f16_to_f32(load_u16(blk));
        if (t->dtype == RAGD_DT_Q8_0) {
            for (int j = 0; j < 32; j++) o[j] = (float)(int8_t)blk[2 + j] * d;
        } else if (t->dtype == RAGD_DT_Q4_0) {
            for (int j = 0; j < 16; j++) {
                o[j] = (float)((blk[2 + j] & 0x0f) - 8) * d;
                o[j + 16] = (float)((blk[2 + j] >> 4) - 8) * d;
            }
        } else {
            float mn = ragd_f16_to_f32(load_u16(blk + 2));
            for (int j = 0; j < 16; j++) {
                o[j] = (float)(blk[4 + j] & 0x0f) * d + mn;
                o[j + 16] = (float)(blk[4 + j] >> 4) * d + mn;
            }
        }
    }
}
