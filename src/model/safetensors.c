/* safetensors.c — parser for the header of a .safetensors file.
 *
 * Layout: u64 little-endian N, then N bytes of JSON, then the data section. The JSON maps tensor names to
 * {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data section) plus an
 * optional "__metadata__" object of strings. Every byte here comes from a file: each check returns
 * RAGD_EFORMAT (or RAGD_EUNSUPPORTED for a valid dtype/rank ragd does not handle) with "fname: ..." and
 * never asserts. The rules are those of Hugging Face's safetensors crate (checked against the python
 * package: offsets must tile the data section exactly — no gaps, no overlaps, no trailing bytes).
 */
#include <jansson.h>
#include <stdlib.h>

#include "model/model_internal.h"

#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000) /* the crate's MAX_HEADER_SIZE */

void ragd_safetensors_free(ragd_st_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_entries; i++) free(f->entries[i].name);
    free(f->entries);
    f->entries = NULL;
    f->n_entries = 0;
}

/* Maps a safetensors dtype string; false when ragd does not support it. */
static bool st_dtype(const char *s, ragd_dtype *out) {
    if (!strcmp(s, "F32")) *out = RAGD_DT_F32;
    else if (!strcmp(s, "F16")) *out = RAGD_DT_F16;
    else if (!strcmp(s, "BF16")) *out = RAGD_DT_BF16;
    else if (!strcmp(s, "I64")) *out = RAGD_DT_I64; /* buffers (position_ids), refused as weights by validation */
    else return false;
    return true;
}

static int cmp_entry_offset(const void *a, const void *b) {
    const ragd_st_entry *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Parses one tensor description into *e (offsets still relative). */
static ragd_status parse_entry(const char *fname, const char *name, json_t *v, size_t data_size, ragd_st_entry *e,
                               ragd_err *err) {
    if (!json_is_object(v))
        return ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s': header entry is not a JSON object", fname, name);
    json_t *jdt = json_object_get(v, "dtype"), *jshape = json_object_get(v, "shape"),
           *joff = json_object_get(v, "data_offsets");
    if (!json_is_string(jdt))
        return ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", fname, name);
    if (!json_is_array(jshape))
        return ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s': missing or non-array \"shape\"", fname, name);
    if (!json_is_array(joff) || json_array_size(joff) != 2)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s': \"data_offsets\" must be an array of 2 integers",
                            fname, name);
    const char *dts = json_string_value(jdt);
    if (!st_dtype(dts, &e->dtype))
        return ragd_err_set(err, RAGD_EUNSUPPORTED,
                            "%s: tensor '%s': dtype %s is not supported (supported: BF16, F16, F32, I64)", fname, name, dts);
    size_t nd = json_array_size(jshape);
    if (nd > 4)
        return ragd_err_set(err, RAGD_EUNSUPPORTED, "%s: tensor '%s': %zu dimensions (at most 4 are supported)", fname,
                            name, nd);
    e->n_dims = (int)nd;
    size_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(jshape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s': shape[%zu] is not a non-negative integer", fname,
                                name, i);
        e->shape[i] = (int64_t)json_integer_value(d);
        if (!ragd_mul_ok(numel, (size_t)e->shape[i], &numel))
            return ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s': element count overflows", fname, name);
    }
    size_t nbytes;
    if (!ragd_dtype_nbytes(e->dtype, numel, &nbytes))
        return ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s': byte size overflows", fname, name);
    json_t *jb = json_array_get(joff, 0), *je = json_array_get(joff, 1);
    if (!json_is_integer(jb) || !json_is_integer(je) || json_integer_value(jb) < 0 || json_integer_value(je) < 0)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s': \"data_offsets\" must be non-negative integers", fname,
                            name);
    uint64_t b = (uint64_t)json_integer_value(jb), end = (uint64_t)json_integer_value(je);
    if (b > end)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] begin after end", fname,
                            name, (unsigned long long)b, (unsigned long long)end);
    if (end > data_size)
        return ragd_err_set(err, RAGD_EFORMAT,
                            "%s: tensor '%s': data_offsets [%llu, %llu] extend beyond the end of the file (data "
                            "section is %zu bytes): the file is truncated or corrupt",
                            fname, name, (unsigned long long)b, (unsigned long long)end, data_size);
    if (end - b != nbytes)
        return ragd_err_set(err, RAGD_EFORMAT,
                            "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, but shape and dtype %s need "
                            "%zu",
                            fname, name, (unsigned long long)b, (unsigned long long)end,
                            (unsigned long long)(end - b), dts, nbytes);
    e->offset = (size_t)b;
    e->nbytes = nbytes;
    return RAGD_OK;
}

ragd_status ragd_safetensors_parse(const uint8_t *data, size_t size, const char *fname, ragd_st_file *out,
                                   ragd_err *err) {
    out->entries = NULL;
    out->n_entries = 0;
    if (size < 8)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: %zu bytes is too short for a safetensors file", fname, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | data[i];
    if (hlen > ST_MAX_HEADER)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: header length %llu exceeds the 100 MB limit (not a safetensors file?)",
                            fname, (unsigned long long)hlen);
    if (hlen > size - 8)
        return ragd_err_set(err, RAGD_EFORMAT,
                            "%s: header length %llu is beyond the end of the file (%zu bytes): truncated or not a "
                            "safetensors file",
                            fname, (unsigned long long)hlen, size);
    if (hlen < 2 || data[8] != '{')
        return ragd_err_set(err, RAGD_EFORMAT, "%s: header is not a JSON object", fname);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)data + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ragd_err_set(err, RAGD_EFORMAT, "%s: header is not valid JSON: %s (at byte %d of the header)", fname,
                            jerr.text, jerr.position);
    ragd_status st = RAGD_OK;
    if (!json_is_object(root)) {
        st = ragd_err_set(err, RAGD_EFORMAT, "%s: header is not a JSON object", fname);
        goto done;
    }
    size_t data_size = size - 8 - (size_t)hlen, n = json_object_size(root);
    out->entries = calloc(n ? n : 1, sizeof *out->entries);
    if (!out->entries) {
        st = ragd_err_set(err, RAGD_ENOMEM, "%s: cannot allocate %zu header entries", fname, n);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(v)) {
                st = ragd_err_set(err, RAGD_EFORMAT, "%s: \"__metadata__\" is not an object", fname);
                goto done;
            }
            json_object_foreach(v, mk, mv) {
                if (!json_is_string(mv)) {
                    st = ragd_err_set(err, RAGD_EFORMAT, "%s: \"__metadata__\" value '%s' is not a string", fname, mk);
                    goto done;
                }
            }
            continue;
        }
        ragd_st_entry *e = &out->entries[out->n_entries];
        if ((st = parse_entry(fname, key, v, data_size, e, err)) != RAGD_OK) goto done;
        e->name = ragd_xstrdup(key);
        out->n_entries++;
    }
    qsort(out->entries, out->n_entries, sizeof *out->entries, cmp_entry_offset);
    size_t pos = 0;
    for (size_t i = 0; i < out->n_entries; i++) {
        ragd_st_entry *e = &out->entries[i];
        if (e->offset != pos) {
            st = ragd_err_set(err, RAGD_EFORMAT, "%s: tensor '%s': data_offsets begin at %zu, but the previous tensor "
                                                 "ends at %zu (%s)",
                              fname, e->name, e->offset, pos, e->offset < pos ? "overlap" : "gap");
            goto done;
        }
        pos = e->offset + e->nbytes;
        e->offset += 8 + (size_t)hlen;
    }
    if (pos != data_size)
        st = ragd_err_set(err, RAGD_EFORMAT,
                          "%s: the tensors cover %zu bytes of a %zu-byte data section (trailing or missing data)",
                          fname, pos, data_size);
done:
    json_decref(root);
    if (st != RAGD_OK) ragd_safetensors_free(out);
    return st;
}
