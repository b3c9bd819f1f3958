/* gguf.h — INTERNAL to src/model: the GGUF container parser (versions 2 and 3, little-endian).
 *
 * ragd_gguf_parse reads a whole file image (normally an mmap) and produces an index of it: the
 * metadata key/value pairs and the tensor infos. Nothing is copied but keys and tensor names:
 * strings and arrays are views into the image, so the image must outlive the ragd_gguf.
 *
 * Invariants after RAGD_OK (every byte came from outside and was checked — sqlite's attitude):
 *   - every string and array view lies inside the image; every nested array was walked;
 *   - keys are unique and NUL-free; tensor names are unique, NUL-free and ≤ 64 KiB;
 *   - general.alignment (default 32) is a non-zero power of two of type u32;
 *   - every tensor has 1..4 dims, each ≥ 1 (ne[0] a multiple of its type's block size), a known ggml
 *     type, an offset that is a multiple of the alignment, and its bytes inside the data section;
 *     no two tensors overlap.
 * A file that breaks any of these returns RAGD_EFORMAT (RAGD_EUNSUPPORTED for a version or tensor
 * type ragd does not know) with a message naming the file, the key or tensor, and the byte offset.
 *
 * Dims are kept in GGUF (ggml) order here: ne[0] is the fastest axis. The model loader reverses them.
 */
#ifndef RAGD_GGUF_H
#define RAGD_GGUF_H

#include "common/common.h"

#define RAGD_GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define RAGD_GGUF_DEFAULT_ALIGNMENT 32u
#define RAGD_GGUF_MAX_DIMS 4
#define RAGD_GGUF_MAX_NAME 65536u   /* longest key or tensor name accepted */
#define RAGD_GGUF_MAX_DEPTH 8       /* deepest nesting of arrays accepted */

/* metadata value types (the numbering of the file format) */
typedef enum {
    RAGD_GGUF_U8 = 0,
    RAGD_GGUF_I8 = 1,
    RAGD_GGUF_U16 = 2,
    RAGD_GGUF_I16 = 3,
    RAGD_GGUF_U32 = 4,
    RAGD_GGUF_I32 = 5,
    RAGD_GGUF_F32 = 6,
    RAGD_GGUF_BOOL = 7,
    RAGD_GGUF_STRING = 8,
    RAGD_GGUF_ARRAY = 9,
    RAGD_GGUF_U64 = 10,
    RAGD_GGUF_I64 = 11,
    RAGD_GGUF_F64 = 12,
} ragd_gguf_vtype;
const char *ragd_gguf_vtype_name(uint32_t t); /* "u32", "string", ...; "?" when unknown */

/* ggml tensor types ragd loads (the file format's numbering); the parser knows the sizes of every
 * ggml type so that it can bounds-check any file, but the model loader accepts only these. */
enum {
    RAGD_GGML_F32 = 0,
    RAGD_GGML_F16 = 1,
    RAGD_GGML_Q4_0 = 2,
    RAGD_GGML_Q4_1 = 3,
    RAGD_GGML_Q8_0 = 8,
    RAGD_GGML_BF16 = 30,
};
/* Name of a ggml type ("Q4_K"), or NULL when the id is unknown. */
const char *ragd_ggml_type_name(uint32_t type);
/* Elements per block and bytes per block; false when the id is unknown. */
bool ragd_ggml_type_size(uint32_t type, uint32_t *block_elems, uint32_t *block_bytes);

/* One metadata pair. Scalars are decoded; strings and arrays are views into the image. */
typedef struct ragd_gguf_kv {
    char *key;            /* NUL-terminated copy */
    uint32_t type;        /* ragd_gguf_vtype */
    size_t file_offset;   /* where the pair starts, for messages */
    union {
        uint64_t u64;     /* U8 U16 U32 U64 BOOL (0/1) */
        int64_t i64;      /* I8 I16 I32 I64 */
        double f64;       /* F32 F64 */
    } v;
    const char *str;      /* STRING: bytes (not NUL-terminated) */
    uint64_t str_len;
    uint32_t arr_type;    /* ARRAY: element type */
    uint64_t arr_n;       /* ARRAY: element count */
    const uint8_t *arr_data; /* ARRAY: first element's bytes */
    size_t arr_bytes;     /* ARRAY: bytes of all elements */
} ragd_gguf_kv;

typedef struct ragd_gguf_tensor {
    char *name;           /* NUL-terminated copy */
    uint32_t n_dims;      /* 1..4 */
    int64_t ne[RAGD_GGUF_MAX_DIMS]; /* ggml order: ne[0] fastest; unused dims are 1 */
    uint32_t type;        /* ggml type */
    uint64_t offset;      /* relative to the data section */
    const uint8_t *data;  /* [nbytes] inside the image */
    size_t nbytes;
    size_t info_offset;   /* where its info starts in the file, for messages */
} ragd_gguf_tensor;

typedef struct ragd_gguf {
    const char *fname;    /* borrowed, for messages */
    const uint8_t *base;  /* the image, borrowed */
    size_t size;
    uint32_t version;
    uint32_t alignment;
    size_t data_offset;   /* absolute offset of the data section */
    ragd_gguf_kv *kvs;    /* [n_kv] in file order */
    size_t n_kv;
    ragd_gguf_tensor *tensors; /* [n_tensors] in file order */
    size_t n_tensors;
} ragd_gguf;

/* Parses the image data[0..size). fname is only used in messages (borrowed: it must outlive *out).
 * On failure *out is zeroed and holds nothing to free (ragd_gguf_free on it is still fine). */
ragd_status ragd_gguf_parse(const uint8_t *data, size_t size, const char *fname, ragd_gguf *out, ragd_err *err);
void ragd_gguf_free(ragd_gguf *g);

const ragd_gguf_kv *ragd_gguf_find(const ragd_gguf *g, const char *key);        /* NULL if absent */
const ragd_gguf_tensor *ragd_gguf_find_tensor(const ragd_gguf *g, const char *name);

/* Typed getters. Each returns RAGD_OK, RAGD_ENOTFOUND when the key is absent, or RAGD_EFORMAT when
 * it holds another type; err names the file and key. get_int accepts every integer type (the writer
 * emits u32 where the spec says u64) and fails with RAGD_ERANGE when the value does not fit int64;
 * get_f32 accepts F32/F64; get_bool accepts BOOL; get_str returns a view (not NUL-terminated). */
ragd_status ragd_gguf_get_int(const ragd_gguf *g, const char *key, int64_t *out, ragd_err *err);
ragd_status ragd_gguf_get_float(const ragd_gguf *g, const char *key, double *out, ragd_err *err);
ragd_status ragd_gguf_get_bool(const ragd_gguf *g, const char *key, bool *out, ragd_err *err);
ragd_status ragd_gguf_get_str(const ragd_gguf *g, const char *key, const char **s, size_t *len, ragd_err *err);
/* A NUL-terminated heap copy of a string value (caller frees); fails like get_str and with
 * RAGD_EFORMAT when the string holds a NUL byte. */
ragd_status ragd_gguf_get_strdup(const ragd_gguf *g, const char *key, char **out, ragd_err *err);

/* An array of strings: fills heap arrays ptrs[n] / lens[n] of views into the image (caller frees both
 * arrays). Fails with RAGD_EFORMAT when the key is not an array of strings. */
ragd_status ragd_gguf_get_str_array(const ragd_gguf *g, const char *key, const char ***ptrs, size_t **lens,
                                    size_t *n, ragd_err *err);
/* An array of integers of any integer element type, converted to int32 (caller frees *out); values
 * outside int32 → RAGD_ERANGE. */
ragd_status ragd_gguf_get_i32_array(const ragd_gguf *g, const char *key, int32_t **out, size_t *n, ragd_err *err);

#endif
