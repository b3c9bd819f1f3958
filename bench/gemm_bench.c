/* gemm_bench.c — the CPU backend's batch-invariant GEMM (engine/cpu/gemm.c) against OpenBLAS cblas_sgemm on
 * the same shapes, same threads, plus the bit check that motivated it (row results vs batch position).
 * Build (from the repo root, after a Release build in build/):
 *   gcc -O3 -D_GNU_SOURCE -Isrc bench/gemm_bench.c build/libragd_core.a $(pkg-config --cflags --libs openblas \
 *       jansson libutf8proc libpcre2-8) -lpthread -lm -o /tmp/gemm_bench && /tmp/gemm_bench 2 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/cpu/cpu_internal.h"

static double gflops(double t, int T, int N, int K) { return 2.0 * T * N * K / t / 1e9; }

int main(int argc, char **argv) {
    int nth = argc > 1 ? atoi(argv[1]) : 2;
    ragd_cpu_pool pool;
    ragd_err err = {0};
    ragd_cpu_pool_init(&pool, nth, &err);
    openblas_set_num_threads(nth);
    int shapes[][3] = {{1, 3072, 1024}, {8, 3072, 1024}, {64, 3072, 1024}, {300, 3072, 1024}, {300, 1024, 3072},
                       {512, 2048, 1024}};
    printf("threads %d (avx2+fma: %d)\n%-18s %12s %12s\n", nth, ragd_cpu_has_avx2(), "T x N x K", "ragd GF/s",
           "openblas GF/s");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int T = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *w = malloc(sizeof(float) * (size_t)N * K), *x = malloc(sizeof(float) * (size_t)T * K);
        float *y = malloc(sizeof(float) * (size_t)T * N), *row = malloc(sizeof(float) * K);
        for (size_t i = 0; i < (size_t)N * K; i++) w[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
        for (size_t i = 0; i < (size_t)T * K; i++) x[i] = (float)((i * 40503u) % 1000) / 1000.0f - 0.5f;
        ragd_tensor t = {.data = w, .dtype = RAGD_DT_F32, .n_dims = 2, .shape = {N, K}};
        t.nbytes = sizeof(float) * (size_t)N * K;
        ragd_cpu_mat m;
        float *mem = aligned_alloc(64, ragd_cpu_mat_bytes(N, K, RAGD_DT_F32));
        ragd_cpu_mat_pack(&m, &t, RAGD_DT_F32, mem, row);
        int reps = T == 1 ? 50 : T < 64 ? 20 : 5;
        double t0 = ragd_now_s();
        for (int r = 0; r < reps; r++) ragd_cpu_gemm(&pool, &m, x, T, NULL, y, NULL);
        double ta = (ragd_now_s() - t0) / reps;
        t0 = ragd_now_s();
        for (int r = 0; r < reps; r++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, N, K, 1, x, K, w, K, 0, y, N);
        double tb = (ragd_now_s() - t0) / reps;
        printf("%4d x %4d x %4d %12.1f %12.1f\n", T, N, K, gflops(ta, T, N, K), gflops(tb, T, N, K));
        free(w); free(x); free(y); free(row); free(mem);
    }
    ragd_cpu_pool_free(&pool);
    return 0;
}
