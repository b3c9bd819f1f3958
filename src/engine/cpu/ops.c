/* ops.c — the CPU backend's row operations, written to follow Hugging Face transformers' fp32 path
 * (MODEL_FACTS.md §1): RMSNorm, rotary tables (inv_freq in fp32, llama3 scaling), half-split RoPE and
 * SwiGLU; LayerNorm with bias and GELU (erf / tanh) for the BERT family. Each output element depends only
 * on its own row (batch invariance, cpu_internal.h). */
#include <math.h>

#include "engine/cpu/cpu_internal.h"

void ragd_cpu_rmsnorm(const float *x, const float *w, float eps, int rows, int n, float *y) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n; /* [n] */
        float *yr = y + (size_t)r * n;       /* [n] */
        double ss = 0.0;
        for (int i = 0; i < n; i++) ss += (double)xr[i] * (double)xr[i];
        float var = (float)(ss / n);
        float inv = 1.0f / sqrtf(var + eps); /* torch.rsqrt in fp32 */
        /* HF: weight * (x * rsqrt).to(input_dtype); in fp32 the cast is the identity */
        for (int i = 0; i < n; i++) yr[i] = w[i] * (xr[i] * inv);
    }
}

void ragd_cpu_rope_tables(const ragd_model_config *c, int n_pos, float *cos_t, float *sin_t) {
    int dim = c->rope_dim ? c->rope_dim : c->head_dim, half = dim / 2;
    float inv_freq[512]; /* [half]; head_dim ≤ 1024 is checked at create */
    RAGD_ASSERT(half <= 512);
    for (int i = 0; i < half; i++) {
        /* HF: 1.0 / (base ** (arange(0, dim, 2).float() / dim)) — all fp32 */
        float e = (float)(2 * i) / (float)dim;
        inv_freq[i] = 1.0f / powf(c->rope_theta, e);
    }
    if (c->rope_type == 1) { /* llama3 (transformers _compute_llama3_parameters), fp32 tensors */
        float factor = c->rope_factor, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor;
        float old = (float)c->rope_orig_max_pos;
        float low_wavelen = old / lo, high_wavelen = old / hi;
        /* PyTorch evaluates `scalar / tensor` as reciprocal(tensor) * scalar: mirrored here */
        for (int i = 0; i < half; i++) {
            float f = inv_freq[i];
            float wavelen = (1.0f / f) * (float)(2.0 * M_PI);
            float fl = wavelen > low_wavelen ? f / factor : f;
            float smooth = ((1.0f / wavelen) * old - lo) / (hi - lo);
            float smoothed = (1.0f - smooth) * fl / factor + smooth * fl;
            bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
            inv_freq[i] = medium ? smoothed : fl;
        }
    }
    for (int p = 0; p < n_pos; p++)
        for (int i = 0; i < half; i++) {
            float fr = (float)p * inv_freq[i];
            cos_t[(size_t)p * half + i] = cosf(fr);
            sin_t[(size_t)p * half + i] = sinf(fr);
        }
}

void ragd_cpu_rope(float *x, int n_heads, int head_dim, const float *cos_row, const float *sin_row) {
    ragd_cpu_rope_part(x, n_heads, head_dim, head_dim, cos_row, sin_row);
}

void ragd_cpu_rope_part(float *x, int n_heads, int head_dim, int rot_dim, const float *cos_row, const float *sin_row) {
    int half = rot_dim / 2; /* dims [rot_dim, head_dim) pass through */
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim; /* [head_dim] */
        for (int i = 0; i < half; i++) {
            float x1 = v[i], x2 = v[i + half], c = cos_row[i], s = sin_row[i];
            v[i] = x1 * c + (-x2) * s;      /* x*cos + rotate_half(x)*sin, first half  */
            v[i + half] = x2 * c + x1 * s;  /* second half */
        }
    }
}

void ragd_cpu_swiglu(float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = (g / (1.0f + expf(-g))) * up[i];
    }
}

void ragd_cpu_layernorm(const float *x, const float *w, const float *b, float eps, int rows, int n, float *y) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n; /* [n] */
        float *yr = y + (size_t)r * n;       /* [n] */
        double sum = 0.0, ss = 0.0;
        for (int i = 0; i < n; i++) sum += (double)xr[i];
        double mean = sum / n;
        for (int i = 0; i < n; i++) {
            double d = (double)xr[i] - mean;
            ss += d * d;
        }
        float inv = 1.0f / sqrtf((float)(ss / n) + eps);
        float mu = (float)mean;
        for (int i = 0; i < n; i++) yr[i] = (xr[i] - mu) * inv * w[i] + b[i];
    }
}

void ragd_cpu_gelu(float *x, size_t n, bool tanh_form) {
    if (tanh_form) { /* transformers NewGELUActivation */
        const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
        }
    } else { /* torch.nn.functional.gelu: x · Φ(x) */
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            x[i] = 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
        }
    }
}
