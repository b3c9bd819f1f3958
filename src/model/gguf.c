/* gguf.c — the GGUF container parser: header, metadata, tensor infos, data section (see gguf.h).
 *
 * Every read goes through a cursor that knows how many bytes remain; every size is computed with
 * overflow checks before it is compared with what remains. Counts from the header are capped by the
 * bytes left in the file (a key/value pair takes ≥ 14 bytes, a tensor info ≥ 33) and by absolute
 * sanity caps, and the arrays that hold them grow as entries are actually read, so a hostile header
 * can neither make the parser allocate much nor loop long. Nested arrays are walked to a fixed depth.
 */
#include "model/gguf.h"

#include <stdlib.h>

/* sanity caps: far above any real file (a 70B model has ~ 700 tensors, ~ 40 keys) */
#define GGUF_MAX_KV (1u << 16)
#define GGUF_MAX_TENSORS (1u << 20)
#define GGUF_MIN_KV_BYTES 14     /* key len u64 + ≥ 1 key byte + type u32 + ≥ 1 value byte */
#define GGUF_MIN_TENSOR_BYTES 33 /* name len u64 + ≥ 1 byte + n_dims u32 + 1 dim u64 + type u32 + offset u64 */

/* ---------------------------------------------------------------------------------------------- */
/* type tables */

const char *ragd_gguf_vtype_name(uint32_t t) {
    static const char *const names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                        "bool", "string", "array", "u64", "i64", "f64"};
    return t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

/* bytes of one scalar of a fixed-size value type; 0 for string/array/unknown */
static size_t vtype_size(uint32_t t) {
    switch (t) {
    case RAGD_GGUF_U8: case RAGD_GGUF_I8: case RAGD_GGUF_BOOL: return 1;
    case RAGD_GGUF_U16: case RAGD_GGUF_I16: return 2;
    case RAGD_GGUF_U32: case RAGD_GGUF_I32: case RAGD_GGUF_F32: return 4;
    case RAGD_GGUF_U64: case RAGD_GGUF_I64: case RAGD_GGUF_F64: return 8;
    default: return 0;
    }
}

typedef struct ggml_type_info {
    const char *name;
    uint32_t block_elems, block_bytes;
} ggml_type_info;

/* ggml's type ids with their block geometry (ggml.h / gguf-py GGML_QUANT_SIZES); holes are removed
 * types. Knowing every size lets the parser bounds-check files whose types ragd cannot compute. */
static const ggml_type_info ggml_types[] = {
    [0] = {"F32", 1, 4},        [1] = {"F16", 1, 2},        [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},     [6] = {"Q5_0", 32, 22},     [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},     [9] = {"Q8_1", 32, 40},     [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110},  [12] = {"Q4_K", 256, 144},  [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},  [15] = {"Q8_K", 256, 292},  [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74}, [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},  [21] = {"IQ3_S", 256, 110}, [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},       [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},       [27] = {"I64", 1, 8},       [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56},  [30] = {"BF16", 1, 2},      [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},  [39] = {"MXFP4", 32, 17},
};

const char *ragd_ggml_type_name(uint32_t type) {
    if (type >= sizeof(ggml_types) / sizeof(ggml_types[0])) return NULL;
    return ggml_types[type].name;
}

bool ragd_ggml_type_size(uint32_t type, uint32_t *block_elems, uint32_t *block_bytes) {
    if (!ragd_ggml_type_name(type)) return false;
    *block_elems = ggml_types[type].block_elems;
    *block_bytes = ggml_types[type].block_bytes;
    return true;
}

/* ---------------------------------------------------------------------------------------------- */
/* the bounds-checked cursor */

typedef struct cursor {
    const uint8_t *p;
    size_t size, pos;
    const char *fname;
    ragd_err *err;
} cursor;

static size_t cur_left(const cursor *c) { return c->size - c->pos; }

static ragd_status cur_truncated(cursor *c, const char *what, uint64_t need) {
    return ragd_err_set(c->err, RAGD_EFORMAT,
                        "%s: truncated GGUF file: %s needs %llu bytes at offset %zu but only %zu remain",
                        c->fname, what, (unsigned long long)need, c->pos, cur_left(c));
}

static ragd_status cur_bytes(cursor *c, uint64_t n, const uint8_t **out, const char *what) {
    if (n > cur_left(c)) return cur_truncated(c, what, n);
    *out = c->p + c->pos;
    c->pos += (size_t)n;
    return RAGD_OK;
}

static ragd_status cur_u32(cursor *c, uint32_t *v, const char *what) {
    const uint8_t *b = NULL;
    ragd_status s = cur_bytes(c, 4, &b, what);
    if (s) return s;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return RAGD_OK;
}

static ragd_status cur_u64(cursor *c, uint64_t *v, const char *what) {
    uint32_t lo, hi;
    ragd_status s = cur_u32(c, &lo, what);
    if (!s) s = cur_u32(c, &hi, what);
    if (s) return s;
    *v = (uint64_t)lo | (uint64_t)hi << 32;
    return RAGD_OK;
}

/* a gguf string: u64 length + bytes; returns a view */
static ragd_status cur_str(cursor *c, const char **s, uint64_t *len, const char *what) {
    uint64_t n;
    const uint8_t *b = NULL;
    ragd_status st = cur_u64(c, &n, what);
    if (!st) st = cur_bytes(c, n, &b, what);
    if (st) return st;
    *s = (const char *)b;
    *len = n;
    return RAGD_OK;
}

/* a name (key or tensor name) copied to a NUL-terminated string: non-empty, ≤ MAX_NAME, no NUL */
static ragd_status cur_name(cursor *c, char **out, const char *what) {
    size_t at = c->pos;
    const char *s;
    uint64_t n;
    ragd_status st = cur_str(c, &s, &n, what);
    if (st) return st;
    if (n == 0 || n > RAGD_GGUF_MAX_NAME || memchr(s, 0, (size_t)n))
        return ragd_err_set(c->err, RAGD_EFORMAT, "%s: bad %s at offset %zu: %s", c->fname, what, at,
                            n == 0 ? "empty" : n > RAGD_GGUF_MAX_NAME ? "longer than 64 KiB" : "contains a NUL byte");
    *out = malloc((size_t)n + 1);
    if (!*out) return ragd_err_set(c->err, RAGD_ENOMEM, "%s: out of memory reading %s", c->fname, what);
    memcpy(*out, s, (size_t)n);
    (*out)[n] = 0;
    return RAGD_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* metadata values */

/* Skips the elements of an array (elem type t, n items) after checking they all lie in the image.
 * depth counts enclosing arrays. */
static ragd_status skip_array(cursor *c, uint32_t t, uint64_t n, int depth, const char *key) {
    size_t es = vtype_size(t);
    if (es) {
        size_t bytes;
        if (n > SIZE_MAX || !ragd_mul_ok((size_t)n, es, &bytes) || bytes > cur_left(c))
            return ragd_err_set(c->err, RAGD_EFORMAT,
                                "%s: truncated or corrupt GGUF file: key '%s': array of %llu %s needs more bytes than the %zu left at offset %zu",
                                c->fname, key, (unsigned long long)n, ragd_gguf_vtype_name(t), cur_left(c), c->pos);
        c->pos += bytes;
        return RAGD_OK;
    }
    if (t == RAGD_GGUF_STRING) {
        if (n > cur_left(c) / 8)
            return ragd_err_set(c->err, RAGD_EFORMAT,
                                "%s: truncated or corrupt GGUF file: key '%s': absurd array count %llu for the %zu bytes left at offset %zu",
                                c->fname, key, (unsigned long long)n, cur_left(c), c->pos);
        for (uint64_t i = 0; i < n; i++) {
            const char *s;
            uint64_t len;
            ragd_status st = cur_str(c, &s, &len, "string array element");
            if (st) return ragd_err_prefix(c->err, "key '%s' element %llu", key, (unsigned long long)i);
        }
        return RAGD_OK;
    }
    if (t == RAGD_GGUF_ARRAY) {
        if (depth + 1 >= RAGD_GGUF_MAX_DEPTH)
            return ragd_err_set(c->err, RAGD_EFORMAT, "%s: key '%s': arrays nested deeper than %d at offset %zu",
                                c->fname, key, RAGD_GGUF_MAX_DEPTH, c->pos);
        if (n > cur_left(c) / 12)
            return ragd_err_set(c->err, RAGD_EFORMAT,
                                "%s: truncated or corrupt GGUF file: key '%s': absurd array count %llu for the %zu bytes left at offset %zu",
                                c->fname, key, (unsigned long long)n, cur_left(c), c->pos);
        for (uint64_t i = 0; i < n; i++) {
            uint32_t et;
            uint64_t en;
            size_t at = c->pos;
            ragd_status st = cur_u32(c, &et, "nested array type");
            if (!st) st = cur_u64(c, &en, "nested array count");
            if (st) return ragd_err_prefix(c->err, "key '%s'", key);
            if (et > RAGD_GGUF_F64)
                return ragd_err_set(c->err, RAGD_EFORMAT, "%s: key '%s': unknown value type %u in nested array at offset %zu",
                                    c->fname, key, et, at);
            st = skip_array(c, et, en, depth + 1, key);
            if (st) return st;
        }
        return RAGD_OK;
    }
    return ragd_err_set(c->err, RAGD_EFORMAT, "%s: key '%s': unknown array element type %u at offset %zu",
                        c->fname, key, t, c->pos);
}

static ragd_status read_value(cursor *c, ragd_gguf_kv *kv) {
    const uint8_t *b = NULL;
    ragd_status st;
    switch (kv->type) {
    case RAGD_GGUF_U8: case RAGD_GGUF_BOOL:
        if ((st = cur_bytes(c, 1, &b, "u8 value"))) return st;
        kv->v.u64 = b[0];
        if (kv->type == RAGD_GGUF_BOOL && b[0] > 1)
            return ragd_err_set(c->err, RAGD_EFORMAT, "%s: key '%s': bool value %u is neither 0 nor 1",
                                c->fname, kv->key, b[0]);
        return RAGD_OK;
    case RAGD_GGUF_I8:
        if ((st = cur_bytes(c, 1, &b, "i8 value"))) return st;
        kv->v.i64 = (int8_t)b[0];
        return RAGD_OK;
    case RAGD_GGUF_U16: case RAGD_GGUF_I16:
        if ((st = cur_bytes(c, 2, &b, "16-bit value"))) return st;
        kv->v.u64 = (uint16_t)(b[0] | b[1] << 8);
        if (kv->type == RAGD_GGUF_I16) kv->v.i64 = (int16_t)kv->v.u64;
        return RAGD_OK;
    case RAGD_GGUF_U32: case RAGD_GGUF_I32: case RAGD_GGUF_F32: {
        uint32_t u;
        if ((st = cur_u32(c, &u, "32-bit value"))) return st;
        if (kv->type == RAGD_GGUF_U32) kv->v.u64 = u;
        else if (kv->type == RAGD_GGUF_I32) kv->v.i64 = (int32_t)u;
        else {
            float f;
            memcpy(&f, &u, 4);
            kv->v.f64 = f;
        }
        return RAGD_OK;
    }
    case RAGD_GGUF_U64: case RAGD_GGUF_I64: case RAGD_GGUF_F64: {
        uint64_t u;
        if ((st = cur_u64(c, &u, "64-bit value"))) return st;
        if (kv->type == RAGD_GGUF_U64) kv->v.u64 = u;
        else if (kv->type == RAGD_GGUF_I64) kv->v.i64 = (int64_t)u;
        else memcpy(&kv->v.f64, &u, 8);
        return RAGD_OK;
    }
    case RAGD_GGUF_STRING:
        if ((st = cur_str(c, &kv->str, &kv->str_len, "string value")))
            return ragd_err_prefix(c->err, "key '%s'", kv->key);
        return RAGD_OK;
    case RAGD_GGUF_ARRAY: {
        if ((st = cur_u32(c, &kv->arr_type, "array type")) || (st = cur_u64(c, &kv->arr_n, "array count")))
            return ragd_err_prefix(c->err, "key '%s'", kv->key);
        if (kv->arr_type > RAGD_GGUF_F64)
            return ragd_err_set(c->err, RAGD_EFORMAT, "%s: key '%s': unknown array element type %u",
                                c->fname, kv->key, kv->arr_type);
        size_t start = c->pos;
        if ((st = skip_array(c, kv->arr_type, kv->arr_n, 0, kv->key))) return st;
        kv->arr_data = c->p + start;
        kv->arr_bytes = c->pos - start;
        return RAGD_OK;
    }
    default:
        return ragd_err_set(c->err, RAGD_EFORMAT, "%s: key '%s': unknown value type %u at offset %zu",
                            c->fname, kv->key, kv->type, kv->file_offset);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* duplicate and overlap checks (sorting index arrays: n can be large in a hostile file) */

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Finds a duplicate among names[n] (sorted copy); returns it or NULL. */
static const char *find_duplicate(char **names, size_t n, bool *oom) {
    *oom = false;
    if (n < 2) return NULL;
    char **idx = malloc(n * sizeof(*idx));
    if (!idx) {
        *oom = true;
        return NULL;
    }
    memcpy(idx, names, n * sizeof(*idx));
    qsort(idx, n, sizeof(*idx), cmp_str_ptr);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (!strcmp(idx[i - 1], idx[i])) dup = idx[i];
    free(idx);
    return dup;
}

static int cmp_tensor_offset(const void *a, const void *b) {
    const ragd_gguf_tensor *x = *(const ragd_gguf_tensor *const *)a, *y = *(const ragd_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* ---------------------------------------------------------------------------------------------- */
/* the parser */

static ragd_status parse_kvs(cursor *c, ragd_gguf *g, uint64_t n_kv) {
    g->kvs = calloc(n_kv ? (size_t)n_kv : 1, sizeof(*g->kvs));
    if (!g->kvs) return ragd_err_set(c->err, RAGD_ENOMEM, "%s: out of memory for %llu keys", c->fname, (unsigned long long)n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        ragd_gguf_kv *kv = &g->kvs[i];
        kv->file_offset = c->pos;
        ragd_status st = cur_name(c, &kv->key, "metadata key");
        if (st) return ragd_err_prefix(c->err, "key #%llu", (unsigned long long)i);
        g->n_kv = i + 1;
        if ((st = cur_u32(c, &kv->type, "value type"))) return ragd_err_prefix(c->err, "key '%s'", kv->key);
        if ((st = read_value(c, kv))) return st;
    }
    bool oom;
    char **names = malloc((g->n_kv ? g->n_kv : 1) * sizeof(*names));
    if (!names) return ragd_err_set(c->err, RAGD_ENOMEM, "%s: out of memory", c->fname);
    for (size_t i = 0; i < g->n_kv; i++) names[i] = g->kvs[i].key;
    const char *dup = find_duplicate(names, g->n_kv, &oom);
    ragd_status st = RAGD_OK;
    if (oom) st = ragd_err_set(c->err, RAGD_ENOMEM, "%s: out of memory", c->fname);
    else if (dup) st = ragd_err_set(c->err, RAGD_EFORMAT, "%s: duplicate metadata key '%s'", c->fname, dup);
    free(names);
    return st;
}

static ragd_status parse_alignment(cursor *c, ragd_gguf *g) {
    g->alignment = RAGD_GGUF_DEFAULT_ALIGNMENT;
    const ragd_gguf_kv *kv = ragd_gguf_find(g, "general.alignment");
    if (!kv) return RAGD_OK;
    if (kv->type != RAGD_GGUF_U32)
        return ragd_err_set(c->err, RAGD_EFORMAT, "%s: general.alignment must be a u32, found %s", c->fname,
                            ragd_gguf_vtype_name(kv->type));
    uint64_t a = kv->v.u64;
    if (a == 0 || (a & (a - 1)))
        return ragd_err_set(c->err, RAGD_EFORMAT, "%s: general.alignment %llu is not a power of two", c->fname,
                            (unsigned long long)a);
    g->alignment = (uint32_t)a;
    return RAGD_OK;
}

static ragd_status parse_tensor_info(cursor *c, ragd_gguf *g, ragd_gguf_tensor *t, uint64_t i) {
    t->info_offset = c->pos;
    ragd_status st = cur_name(c, &t->name, "tensor name");
    if (st) return ragd_err_prefix(c->err, "tensor info #%llu", (unsigned long long)i);
    if ((st = cur_u32(c, &t->n_dims, "tensor n_dims"))) return ragd_err_prefix(c->err, "tensor '%s'", t->name);
    if (t->n_dims < 1 || t->n_dims > RAGD_GGUF_MAX_DIMS)
        return ragd_err_set(c->err, RAGD_EFORMAT, "%s: tensor '%s': %u dims (ragd accepts 1 to %d)", c->fname,
                            t->name, t->n_dims, RAGD_GGUF_MAX_DIMS);
    size_t numel = 1;
    for (int d = 0; d < RAGD_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne;
        if ((st = cur_u64(c, &ne, "tensor dim"))) return ragd_err_prefix(c->err, "tensor '%s'", t->name);
        if (ne < 1 || ne > (uint64_t)INT64_MAX || ne > SIZE_MAX || !ragd_mul_ok(numel, (size_t)ne, &numel) ||
            numel > (size_t)INT64_MAX)
            return ragd_err_set(c->err, RAGD_EFORMAT, "%s: tensor '%s': dim %u = %llu is zero or overflows",
                                c->fname, t->name, d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
    }
    if ((st = cur_u32(c, &t->type, "tensor type"))) return ragd_err_prefix(c->err, "tensor '%s'", t->name);
    uint32_t be, bb;
    if (!ragd_ggml_type_size(t->type, &be, &bb))
        return ragd_err_set(c->err, RAGD_EUNSUPPORTED, "%s: tensor '%s': unknown ggml type %u", c->fname, t->name,
                            t->type);
    if (t->ne[0] % be)
        return ragd_err_set(c->err, RAGD_EFORMAT,
                            "%s: tensor '%s': row length %lld is not a multiple of the %s block size %u", c->fname,
                            t->name, (long long)t->ne[0], ragd_ggml_type_name(t->type), be);
    if (!ragd_mul_ok(numel / be, bb, &t->nbytes))
        return ragd_err_set(c->err, RAGD_EFORMAT, "%s: tensor '%s': byte size overflows", c->fname, t->name);
    if ((st = cur_u64(c, &t->offset, "tensor offset"))) return ragd_err_prefix(c->err, "tensor '%s'", t->name);
    if (t->offset % g->alignment)
        return ragd_err_set(c->err, RAGD_EFORMAT, "%s: tensor '%s': data offset %llu is not a multiple of the alignment %u",
                            c->fname, t->name, (unsigned long long)t->offset, g->alignment);
    return RAGD_OK;
}

static ragd_status parse_tensors(cursor *c, ragd_gguf *g, uint64_t n_tensors) {
    g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof(*g->tensors));
    if (!g->tensors) return ragd_err_set(c->err, RAGD_ENOMEM, "%s: out of memory for %llu tensors", c->fname, (unsigned long long)n_tensors);
    for (uint64_t i = 0; i < n_tensors; i++) {
        ragd_status st = parse_tensor_info(c, g, &g->tensors[i], i);
        if (g->tensors[i].name) g->n_tensors = i + 1;
        if (st) return st;
    }
    /* names unique */
    bool oom;
    char **names = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof(*names));
    if (!names) return ragd_err_set(c->err, RAGD_ENOMEM, "%s: out of memory", c->fname);
    for (size_t i = 0; i < g->n_tensors; i++) names[i] = g->tensors[i].name;
    const char *dup = find_duplicate(names, g->n_tensors, &oom);
    ragd_status st = RAGD_OK;
    if (oom) st = ragd_err_set(c->err, RAGD_ENOMEM, "%s: out of memory", c->fname);
    else if (dup) st = ragd_err_set(c->err, RAGD_EFORMAT, "%s: duplicate tensor name '%s'", c->fname, dup);
    free(names);
    if (st) return st;

    /* the data section starts at the next multiple of the alignment */
    size_t a = g->alignment, start;
    if (!ragd_add_ok(c->pos, a - 1, &start))
        return ragd_err_set(c->err, RAGD_EFORMAT, "%s: data section offset overflows", c->fname);
    start -= start % a;
    g->data_offset = start;
    if (g->n_tensors == 0) return RAGD_OK;
    if (start > c->size)
        return ragd_err_set(c->err, RAGD_EFORMAT, "%s: truncated GGUF file: the data section would start at %zu, past the end (%zu bytes)",
                            c->fname, start, c->size);
    size_t data_size = c->size - start;
    for (size_t i = 0; i < g->n_tensors; i++) {
        ragd_gguf_tensor *t = &g->tensors[i];
        if (t->offset > data_size || t->nbytes > data_size - (size_t)t->offset)
            return ragd_err_set(c->err, RAGD_EFORMAT,
                                "%s: truncated GGUF file: tensor '%s' needs bytes [%llu, %llu) of the data section, which has %zu",
                                c->fname, t->name, (unsigned long long)t->offset,
                                (unsigned long long)t->offset + t->nbytes, data_size);
        t->data = c->p + start + t->offset;
    }
    /* no two tensors overlap */
    ragd_gguf_tensor **by_off = malloc(g->n_tensors * sizeof(*by_off));
    if (!by_off) return ragd_err_set(c->err, RAGD_ENOMEM, "%s: out of memory", c->fname);
    for (size_t i = 0; i < g->n_tensors; i++) by_off[i] = &g->tensors[i];
    qsort(by_off, g->n_tensors, sizeof(*by_off), cmp_tensor_offset);
    for (size_t i = 1; i < g->n_tensors && !st; i++)
        if (by_off[i - 1]->offset + by_off[i - 1]->nbytes > by_off[i]->offset)
            st = ragd_err_set(c->err, RAGD_EFORMAT, "%s: tensors '%s' and '%s' overlap in the data section", c->fname,
                              by_off[i - 1]->name, by_off[i]->name);
    free(by_off);
    return st;
}

ragd_status ragd_gguf_parse(const uint8_t *data, size_t size, const char *fname, ragd_gguf *out, ragd_err *err) {
    memset(out, 0, sizeof(*out));
    if (!fname) fname = "(gguf)";
    cursor c = {.p = data, .size = size, .pos = 0, .fname = fname, .err = err};
    ragd_gguf g = {.fname = fname, .base = data, .size = size};
    uint32_t magic, version;
    uint64_t n_tensors, n_kv;
    ragd_status st;
    if (size < 4 || (st = cur_u32(&c, &magic, "magic")) || magic != RAGD_GGUF_MAGIC)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: not a GGUF file (the first 4 bytes are not \"GGUF\")", fname);
    if ((st = cur_u32(&c, &version, "version"))) return st;
    if (version == 1)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: GGUF version 1 is not supported (only 2 and 3); re-convert the model", fname);
    if (version != 2 && version != 3) {
        if ((version & 0xffffu) == 0)
            return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: big-endian GGUF (version read as 0x%08x) is not supported",
                                fname, version);
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: unsupported GGUF version %u (only 2 and 3)", fname, version);
    }
    if ((st = cur_u64(&c, &n_tensors, "tensor count")) || (st = cur_u64(&c, &n_kv, "metadata count"))) return st;
    if (n_kv > GGUF_MAX_KV || n_kv > cur_left(&c) / GGUF_MIN_KV_BYTES)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: truncated or corrupt GGUF file: absurd metadata count %llu for the %zu bytes after the header",
                            fname, (unsigned long long)n_kv, cur_left(&c));
    if (n_tensors > GGUF_MAX_TENSORS || n_tensors > cur_left(&c) / GGUF_MIN_TENSOR_BYTES)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: truncated or corrupt GGUF file: absurd tensor count %llu for the %zu bytes after the header",
                            fname, (unsigned long long)n_tensors, cur_left(&c));
    g.version = version;
    if ((st = parse_kvs(&c, &g, n_kv)) || (st = parse_alignment(&c, &g)) || (st = parse_tensors(&c, &g, n_tensors))) {
        ragd_gguf_free(&g);
        return st;
    }
    *out = g;
    return RAGD_OK;
}

void ragd_gguf_free(ragd_gguf *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_kv; i++) free(g->kvs[i].key);
    for (size_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kvs);
    free(g->tensors);
    memset(g, 0, sizeof(*g));
}

/* ---------------------------------------------------------------------------------------------- */
/* lookups and typed getters */

const ragd_gguf_kv *ragd_gguf_find(const ragd_gguf *g, const char *key) {
    for (size_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kvs[i].key, key)) return &g->kvs[i];
    return NULL;
}

const ragd_gguf_tensor *ragd_gguf_find_tensor(const ragd_gguf *g, const char *name) {
    for (size_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

static ragd_status get_kv(const ragd_gguf *g, const char *key, const ragd_gguf_kv **kv, ragd_err *err) {
    *kv = ragd_gguf_find(g, key);
    if (!*kv) return ragd_err_set(err, RAGD_ENOTFOUND, "%s: metadata key '%s' is missing", g->fname, key);
    return RAGD_OK;
}

static ragd_status wrong_type(const ragd_gguf *g, const ragd_gguf_kv *kv, const char *want, ragd_err *err) {
    return ragd_err_set(err, RAGD_EFORMAT, "%s: metadata key '%s' should be %s, found %s", g->fname, kv->key, want,
                        kv->type == RAGD_GGUF_ARRAY ? "an array" : ragd_gguf_vtype_name(kv->type));
}

static bool vtype_is_int(uint32_t t) {
    return t == RAGD_GGUF_U8 || t == RAGD_GGUF_I8 || t == RAGD_GGUF_U16 || t == RAGD_GGUF_I16 || t == RAGD_GGUF_U32 ||
           t == RAGD_GGUF_I32 || t == RAGD_GGUF_U64 || t == RAGD_GGUF_I64;
}
static bool vtype_is_signed(uint32_t t) {
    return t == RAGD_GGUF_I8 || t == RAGD_GGUF_I16 || t == RAGD_GGUF_I32 || t == RAGD_GGUF_I64;
}

ragd_status ragd_gguf_get_int(const ragd_gguf *g, const char *key, int64_t *out, ragd_err *err) {
    const ragd_gguf_kv *kv;
    ragd_status st = get_kv(g, key, &kv, err);
    if (st) return st;
    if (!vtype_is_int(kv->type)) return wrong_type(g, kv, "an integer", err);
    if (vtype_is_signed(kv->type)) *out = kv->v.i64;
    else if (kv->v.u64 > (uint64_t)INT64_MAX)
        return ragd_err_set(err, RAGD_ERANGE, "%s: metadata key '%s' = %llu is out of range", g->fname, key,
                            (unsigned long long)kv->v.u64);
    else *out = (int64_t)kv->v.u64;
    return RAGD_OK;
}

ragd_status ragd_gguf_get_float(const ragd_gguf *g, const char *key, double *out, ragd_err *err) {
    const ragd_gguf_kv *kv;
    ragd_status st = get_kv(g, key, &kv, err);
    if (st) return st;
    if (kv->type != RAGD_GGUF_F32 && kv->type != RAGD_GGUF_F64) return wrong_type(g, kv, "a float", err);
    *out = kv->v.f64;
    return RAGD_OK;
}

ragd_status ragd_gguf_get_bool(const ragd_gguf *g, const char *key, bool *out, ragd_err *err) {
    const ragd_gguf_kv *kv;
    ragd_status st = get_kv(g, key, &kv, err);
    if (st) return st;
    if (kv->type != RAGD_GGUF_BOOL) return wrong_type(g, kv, "a bool", err);
    *out = kv->v.u64 != 0;
    return RAGD_OK;
}

ragd_status ragd_gguf_get_str(const ragd_gguf *g, const char *key, const char **s, size_t *len, ragd_err *err) {
    const ragd_gguf_kv *kv;
    ragd_status st = get_kv(g, key, &kv, err);
    if (st) return st;
    if (kv->type != RAGD_GGUF_STRING) return wrong_type(g, kv, "a string", err);
    *s = kv->str;
    *len = (size_t)kv->str_len;
    return RAGD_OK;
}

ragd_status ragd_gguf_get_strdup(const ragd_gguf *g, const char *key, char **out, ragd_err *err) {
    const char *s = NULL;
    size_t n = 0;
    ragd_status st = ragd_gguf_get_str(g, key, &s, &n, err);
    if (st) return st;
    if (memchr(s, 0, n))
        return ragd_err_set(err, RAGD_EFORMAT, "%s: metadata key '%s' holds a NUL byte", g->fname, key);
    *out = malloc(n + 1);
    if (!*out) return ragd_err_set(err, RAGD_ENOMEM, "%s: out of memory copying '%s'", g->fname, key);
    memcpy(*out, s, n);
    (*out)[n] = 0;
    return RAGD_OK;
}

static uint64_t rd_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

ragd_status ragd_gguf_get_str_array(const ragd_gguf *g, const char *key, const char ***ptrs, size_t **lens,
                                    size_t *n, ragd_err *err) {
    const ragd_gguf_kv *kv;
    ragd_status st = get_kv(g, key, &kv, err);
    if (st) return st;
    if (kv->type != RAGD_GGUF_ARRAY || kv->arr_type != RAGD_GGUF_STRING)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: metadata key '%s' should be an array of strings", g->fname, key);
    size_t cnt = (size_t)kv->arr_n; /* ≤ bytes of the file: checked by the parser */
    *ptrs = malloc((cnt ? cnt : 1) * sizeof(**ptrs));
    *lens = malloc((cnt ? cnt : 1) * sizeof(**lens));
    if (!*ptrs || !*lens) {
        free(*ptrs);
        free(*lens);
        *ptrs = NULL;
        *lens = NULL;
        return ragd_err_set(err, RAGD_ENOMEM, "%s: out of memory for '%s'", g->fname, key);
    }
    const uint8_t *p = kv->arr_data; /* walked and bounds-checked by the parser */
    for (size_t i = 0; i < cnt; i++) {
        uint64_t len = rd_le(p, 8);
        (*ptrs)[i] = (const char *)p + 8;
        (*lens)[i] = (size_t)len;
        p += 8 + len;
    }
    RAGD_ASSERT(p == kv->arr_data + kv->arr_bytes);
    *n = cnt;
    return RAGD_OK;
}

ragd_status ragd_gguf_get_i32_array(const ragd_gguf *g, const char *key, int32_t **out, size_t *n, ragd_err *err) {
    const ragd_gguf_kv *kv;
    ragd_status st = get_kv(g, key, &kv, err);
    if (st) return st;
    if (kv->type != RAGD_GGUF_ARRAY || !vtype_is_int(kv->arr_type))
        return ragd_err_set(err, RAGD_EFORMAT, "%s: metadata key '%s' should be an array of integers", g->fname, key);
    size_t cnt = (size_t)kv->arr_n, es = vtype_size(kv->arr_type);
    *out = malloc((cnt ? cnt : 1) * sizeof(**out));
    if (!*out) return ragd_err_set(err, RAGD_ENOMEM, "%s: out of memory for '%s'", g->fname, key);
    bool sgn = vtype_is_signed(kv->arr_type);
    for (size_t i = 0; i < cnt; i++) {
        uint64_t u = rd_le(kv->arr_data + i * es, es);
        int64_t v;
        if (sgn) {
            unsigned shift = (unsigned)(64 - 8 * es);
            v = (int64_t)(u << shift) >> shift; /* sign-extend */
        } else if (u > (uint64_t)INT64_MAX) {
            v = INT64_MAX;
        } else {
            v = (int64_t)u;
        }
        if (v < INT32_MIN || v > INT32_MAX) {
            free(*out);
            *out = NULL;
            return ragd_err_set(err, RAGD_ERANGE, "%s: metadata key '%s' element %zu = %lld is out of int32 range",
                                g->fname, key, i, (long long)v);
        }
        (*out)[i] = (int32_t)v;
    }
    *n = cnt;
    return RAGD_OK;
}
