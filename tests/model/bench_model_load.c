/* bench_model_load.c — times ragd_model_load on a model folder (mmap + header parse + tokenizer + checks)
 * and the single-thread conversion of every weight to f32 with ragd_tensor_to_f32 (what a backend does at
 * startup). Not a CTest; run by hand: bench_model_load DIR [repeats]. */
#include <stdio.h>
#include <stdlib.h>

#include "model/model.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR [repeats]\n", argv[0]);
        return 2;
    }
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    double best = 1e30;
    ragd_model *m = NULL;
    for (int r = 0; r < reps; r++) {
        ragd_err err = {0};
        double t0 = ragd_now_s();
        if (ragd_model_load(argv[1], &m, &err) != RAGD_OK) {
            fprintf(stderr, "%s\n", ragd_err_msg(&err));
            return 1;
        }
        double dt = ragd_now_s() - t0;
        if (dt < best) best = dt;
        if (r + 1 < reps) ragd_model_free(m);
    }
    ragd_model_stats s;
    ragd_model_stats_get(m, &s);
    printf("model %s: %zu tensors, %zu params, %.3f GB stored\n", m->name, s.n_tensors, s.params, s.bytes / 1e9);
    printf("load (best of %d): %.1f ms\n", reps, best * 1e3);
    char *tp = ragd_path_join(argv[1], "tokenizer.json");
    double tbest = 1e30;
    for (int r = 0; r < reps; r++) {
        ragd_tokenizer *t;
        ragd_err err = {0};
        double t0 = ragd_now_s();
        if (ragd_tokenizer_load_json(tp, &t, &err) != RAGD_OK) {
            fprintf(stderr, "%s\n", ragd_err_msg(&err));
            return 1;
        }
        double dt = ragd_now_s() - t0;
        if (dt < tbest) tbest = dt;
        ragd_tokenizer_free(t);
    }
    free(tp);
    char *sp = ragd_path_join(argv[1], "model.safetensors");
    if (ragd_file_exists(sp)) {
        double sbest = 1e30;
        for (int r = 0; r < reps; r++) {
            ragd_mmap mm;
            ragd_st_file f;
            ragd_err err = {0};
            double t0 = ragd_now_s();
            if (ragd_mmap_open(sp, &mm, &err) != RAGD_OK ||
                ragd_safetensors_parse(mm.data, mm.size, "model.safetensors", &f, &err) != RAGD_OK) {
                fprintf(stderr, "%s\n", ragd_err_msg(&err));
                return 1;
            }
            double dt = ragd_now_s() - t0;
            if (dt < sbest) sbest = dt;
            ragd_safetensors_free(&f);
            ragd_mmap_close(&mm);
        }
        printf("  model.safetensors mmap + header parse (best of %d): %.2f ms\n", reps, sbest * 1e3);
    }
    free(sp);
    printf("  tokenizer.json alone (best of %d): %.1f ms\n", reps, tbest * 1e3);
    size_t n = ragd_model_tensor_list(m, NULL, 0), max = 0;
    const ragd_tensor **ts = malloc(n * sizeof *ts);
    ragd_model_tensor_list(m, ts, n);
    for (size_t i = 0; i < n; i++)
        if (ragd_tensor_numel(ts[i]) > max) max = ragd_tensor_numel(ts[i]);
    float *buf = malloc(max * sizeof *buf);
    for (int pass = 0; pass < 2; pass++) { /* pass 0 faults pages in; pass 1 is timed warm */
        double t0 = ragd_now_s();
        for (size_t i = 0; i < n; i++) ragd_tensor_to_f32(ts[i], 0, ragd_tensor_numel(ts[i]), buf);
        double dt = ragd_now_s() - t0;
        printf("to_f32 pass %d (%s): %.1f ms, %.2f GB/s read\n", pass, pass ? "warm" : "cold or page cache", dt * 1e3,
               s.bytes / dt / 1e9);
    }
    free(buf);
    free(ts);
    ragd_model_free(m);
    return 0;
}
