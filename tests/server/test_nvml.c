/* test_nvml.c — obs/nvml.c against the fake NVML library (fake_nvml.c, FAKE_NVML_PATH): the health
 * decision; NVML unavailable (no library, a library without NVML, nvmlInit failing, "off"); every canned
 * value in /metrics and /diagnostics, unsupported values absent, a failing call named; samples cached for
 * a second; a rising ECC count and a critical Xid latch the GPU unhealthy and reach the watcher's callback
 * once; application Xids do not; CUDA ordinals mapped through CUDA_VISIBLE_DEVICES. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "obs/obs.h"
#include "test.h"

static char g_ctl[256];

static void control(const char *text) {
    FILE *f = fopen(g_ctl, "w");
    if (!f) {
        perror(g_ctl);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static char *render(ragd_nvml *n) {
    ragd_buf b = {0};
    ragd_nvml_render(n, &b);
    return b.data;
}
static char *json(ragd_nvml *n) {
    ragd_buf b = {0};
    ragd_buf_putc(&b, '{');
    ragd_nvml_json(n, &b);
    ragd_buf_putc(&b, '}');
    return b.data;
}
#define HAS(text, needle)                                                                           \
    do {                                                                                            \
        const bool has_ = strstr(text, needle) != NULL;                                             \
        CHECK(has_);                                                                                \
        if (!has_) fprintf(stderr, "  missing: %s\n", needle);                                      \
    } while (0)
#define LACKS(text, needle)                                                                         \
    do {                                                                                            \
        const bool has_ = strstr(text, needle) != NULL;                                             \
        CHECK(!has_);                                                                               \
        if (has_) fprintf(stderr, "  unexpected: %s\n", needle);                                    \
    } while (0)

static void test_health_decision(void) {
    char why[256];
    ragd_gpu_health_in in = {.has_ecc = true, .ecc_start = 2, .ecc_now = 2};
    CHECK(ragd_gpu_health(&in, why, sizeof why)); /* errors before start are not a fault of this run */
    CHECK_STR(why, "");
    in.ecc_now = 3;
    CHECK(!ragd_gpu_health(&in, why, sizeof why));
    CHECK_STR(why, "uncorrectable ECC errors rose from 2 at start to 3");
    in.has_ecc = false; /* not read now: no verdict from ECC */
    CHECK(ragd_gpu_health(&in, why, sizeof why));
    in = (ragd_gpu_health_in){.remap_failure_start = true, .remap_failure_now = true};
    CHECK(ragd_gpu_health(&in, why, sizeof why));
    in.remap_failure_start = false;
    CHECK(!ragd_gpu_health(&in, why, sizeof why));
    HAS(why, "row remapping failed");
    in = (ragd_gpu_health_in){.lost = true};
    CHECK(!ragd_gpu_health(&in, why, sizeof why));
    HAS(why, "GPU lost");
    in = (ragd_gpu_health_in){.xid = 79};
    CHECK(!ragd_gpu_health(&in, why, sizeof why));
    CHECK_STR(why, "critical Xid 79 event");
    in.xid = 13; /* an application's error */
    CHECK(ragd_gpu_health(&in, why, sizeof why));
    const unsigned int app[] = {13, 31, 43, 45, 68, 109}, gpu[] = {48, 63, 64, 74, 79, 92, 94, 95, 119, 120};
    for (int i = 0; i < 6; i++) CHECK(!ragd_gpu_xid_is_fault(app[i]));
    for (int i = 0; i < 10; i++) CHECK(ragd_gpu_xid_is_fault(gpu[i]));
    CHECK(!ragd_gpu_xid_is_fault(0));
}

static void test_unavailable(void) {
    ragd_nvml *n = ragd_nvml_open("/nonexistent/libnvidia-ml.so.1");
    const char *why = ragd_nvml_unavailable(n);
    CHECK(why && !strncmp(why, "dlopen /nonexistent/libnvidia-ml.so.1", 37));
    CHECK_EQ_INT(ragd_nvml_gpu_count(n), 0);
    char *t = render(n);
    CHECK_STR(t, "# HELP ragd_gpu_nvml_up 1 when NVML is loaded and answers (the ragd_gpu_* series come from it).\n"
                 "# TYPE ragd_gpu_nvml_up gauge\nragd_gpu_nvml_up 0\n");
    free(t);
    t = json(n);
    HAS(t, "{\"nvml\":\"unavailable: dlopen /nonexistent/libnvidia-ml.so.1");
    HAS(t, ",\"gpus\":[]}");
    free(t);
    char how[256];
    CHECK_EQ_INT(ragd_nvml_cuda_index(n, 0, how, sizeof how), -1);
    ragd_nvml_watch(n, NULL, NULL); /* no-op */
    ragd_nvml_free(n);

    n = ragd_nvml_open("off");
    CHECK_STR(ragd_nvml_unavailable(n), "turned off (--nvml-lib off)");
    ragd_nvml_free(n);
    ragd_nvml_free(NULL);

    n = ragd_nvml_open("libm.so.6"); /* a library, but not NVML */
    CHECK(ragd_nvml_unavailable(n) && strstr(ragd_nvml_unavailable(n), "has no nvmlInit_v2"));
    ragd_nvml_free(n);

    setenv("FAKE_NVML_INIT_FAIL", "9", 1);
    n = ragd_nvml_open(FAKE_NVML_PATH);
    CHECK_STR(ragd_nvml_unavailable(n), "nvmlInit_v2: Driver Not Loaded (9)");
    ragd_nvml_free(n);
    unsetenv("FAKE_NVML_INIT_FAIL");
}

static void test_values(void) {
    control("ecc 0 2\n");
    ragd_nvml *n = ragd_nvml_open(FAKE_NVML_PATH);
    CHECK(ragd_nvml_unavailable(n) == NULL);
    CHECK_EQ_INT(ragd_nvml_gpu_count(n), 2);
    char *t = render(n);
    static const char *const lines[] = {
        "ragd_gpu_nvml_up 1\n",
        "ragd_gpu_info{gpu=\"0\",uuid=\"GPU-11111111-2222-3333-4444-555555555555\",name=\"NVIDIA H200\",driver=\"560.35.03\"} 1\n",
        "ragd_gpu_info{gpu=\"1\",uuid=\"GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\",name=\"NVIDIA H200\",driver=\"560.35.03\"} 1\n",
        "ragd_gpu_healthy{gpu=\"0\"} 1\n", "ragd_gpu_healthy{gpu=\"1\"} 1\n",
        "ragd_gpu_utilization_ratio{gpu=\"0\"} 0.37\n", "ragd_gpu_utilization_ratio{gpu=\"1\"} 0.00\n",
        "ragd_gpu_memory_utilization_ratio{gpu=\"0\"} 0.12\n",
        "ragd_gpu_memory_used_bytes{gpu=\"0\"} 5368709120\n", "ragd_gpu_memory_used_bytes{gpu=\"1\"} 629145600\n",
        "ragd_gpu_memory_total_bytes{gpu=\"0\"} 150754820096\n", "ragd_gpu_memory_total_bytes{gpu=\"1\"} 150754820096\n",
        "ragd_gpu_process_memory_bytes{gpu=\"0\"} 123456789\n",
        "ragd_gpu_temperature_celsius{gpu=\"0\"} 41\n",
        "ragd_gpu_power_watts{gpu=\"0\"} 123.456\n", "ragd_gpu_power_watts{gpu=\"1\"} 75.000\n",
        "ragd_gpu_power_limit_watts{gpu=\"0\"} 700.000\n",
        "ragd_gpu_sm_clock_hertz{gpu=\"0\"} 1980000000\n", "ragd_gpu_sm_clock_hertz{gpu=\"1\"} 345000000\n",
        "ragd_gpu_memory_clock_hertz{gpu=\"0\"} 3201000000\n",
        "ragd_gpu_ecc_uncorrectable_errors{gpu=\"0\"} 2\n",
        "ragd_gpu_remapped_rows_correctable{gpu=\"0\"} 2\n", "ragd_gpu_remapped_rows_uncorrectable{gpu=\"0\"} 0\n",
        "ragd_gpu_row_remap_pending{gpu=\"0\"} 0\n", "ragd_gpu_row_remap_failure{gpu=\"0\"} 0\n",
        "ragd_gpu_last_xid{gpu=\"0\"} 0\n", "# TYPE ragd_gpu_utilization_ratio gauge\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) HAS(t, lines[i]);
    /* not supported / failed / this process absent: no series */
    static const char *const absent[] = {
        "ragd_gpu_process_memory_bytes{gpu=\"1\"}", "ragd_gpu_temperature_celsius{gpu=\"1\"}",
        "ragd_gpu_power_limit_watts{gpu=\"1\"}", "ragd_gpu_ecc_uncorrectable_errors{gpu=\"1\"}",
        "ragd_gpu_remapped_rows_correctable{gpu=\"1\"}", "ragd_gpu_retired_pages", "ragd_gpu_row_remap_failure{gpu=\"1\"}",
    };
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) LACKS(t, absent[i]);
    free(t);
    t = json(n);
    HAS(t, "{\"nvml\":\"ok\",\"xid_events\":true,\"gpus\":[{\"index\":0,\"name\":\"NVIDIA H200\","
           "\"uuid\":\"GPU-11111111-2222-3333-4444-555555555555\",\"driver\":\"560.35.03\","
           "\"memory\":{\"total_bytes\":150754820096,\"used_bytes\":5368709120,\"process_bytes\":123456789},"
           "\"utilization\":{\"gpu_percent\":37,\"memory_percent\":12},\"temperature_c\":41,\"power_w\":123.456,"
           "\"power_limit_w\":700.000,\"clocks_mhz\":{\"sm\":1980,\"memory\":3201},\"ecc_uncorrectable_volatile\":2,"
           "\"ecc_uncorrectable_at_start\":2,\"retired_pages\":null,"
           "\"remapped_rows\":{\"correctable\":2,\"uncorrectable\":0,\"pending\":false,\"failure\":false},"
           "\"last_xid\":0,\"health\":\"ok\",\"fault\":null,\"errors\":null}");
    HAS(t, "{\"index\":1,");
    HAS(t, "\"process_bytes\":null},\"utilization\":{\"gpu_percent\":0,\"memory_percent\":0},\"temperature_c\":null,"
           "\"power_w\":75.000,\"power_limit_w\":null,");
    HAS(t, "\"ecc_uncorrectable_volatile\":null,\"ecc_uncorrectable_at_start\":null,\"retired_pages\":null,\"remapped_rows\":null,");
    HAS(t, "\"errors\":\"nvmlDeviceGetTemperature: Unknown Error (999)\"}]}");
    free(t);

    /* a sample lives a second: the new count shows only after it, and then latches the GPU unhealthy */
    control("ecc 0 5\n");
    t = render(n);
    HAS(t, "ragd_gpu_ecc_uncorrectable_errors{gpu=\"0\"} 2\n");
    free(t);
    char why[256];
    CHECK(!ragd_nvml_gpu_fault(n, 0, why, sizeof why));
    usleep(1100 * 1000);
    t = render(n);
    HAS(t, "ragd_gpu_ecc_uncorrectable_errors{gpu=\"0\"} 5\n");
    HAS(t, "ragd_gpu_healthy{gpu=\"0\"} 0\n");
    HAS(t, "ragd_gpu_healthy{gpu=\"1\"} 1\n");
    free(t);
    CHECK(ragd_nvml_gpu_fault(n, 0, why, sizeof why));
    CHECK_STR(why, "uncorrectable ECC errors rose from 2 at start to 5");
    CHECK(!ragd_nvml_gpu_fault(n, 1, why, sizeof why));
    CHECK(!ragd_nvml_gpu_fault(n, 7, why, sizeof why));
    t = json(n);
    HAS(t, "\"health\":\"unhealthy\",\"fault\":\"uncorrectable ECC errors rose from 2 at start to 5\"");
    free(t);

    /* a GPU that fell off the bus: every call answers GPU_IS_LOST */
    control("ecc 0 5\nlost 1\n");
    usleep(1100 * 1000);
    t = json(n);
    HAS(t, "\"health\":\"unhealthy\",\"fault\":\"NVML reports the GPU lost (fallen off the bus or in an unrecoverable state)\"");
    HAS(t, "nvmlDeviceGetMemoryInfo: GPU is lost (15)");
    free(t);
    CHECK(ragd_nvml_gpu_fault(n, 1, why, sizeof why));
    t = render(n);
    HAS(t, "ragd_gpu_healthy{gpu=\"1\"} 0\n");
    LACKS(t, "ragd_gpu_memory_used_bytes{gpu=\"1\"}");
    HAS(t, "ragd_gpu_info{gpu=\"1\","); /* still listed */
    free(t);

    /* CUDA ordinal → NVML index */
    char how[512];
    unsetenv("CUDA_VISIBLE_DEVICES");
    CHECK_EQ_INT(ragd_nvml_cuda_index(n, 0, how, sizeof how), 0);
    CHECK_EQ_INT(ragd_nvml_cuda_index(n, 2, how, sizeof how), -1);
    setenv("CUDA_VISIBLE_DEVICES", "GPU-aaaa", 1);
    CHECK_EQ_INT(ragd_nvml_cuda_index(n, 0, how, sizeof how), 1);
    HAS(how, "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee (CUDA_VISIBLE_DEVICES UUID)");
    setenv("CUDA_VISIBLE_DEVICES", "GPU-", 1); /* matches both */
    CHECK_EQ_INT(ragd_nvml_cuda_index(n, 0, how, sizeof how), -1);
    setenv("CUDA_VISIBLE_DEVICES", "1,0", 1);
    CHECK_EQ_INT(ragd_nvml_cuda_index(n, 0, how, sizeof how), 1);
    CHECK_EQ_INT(ragd_nvml_cuda_index(n, 1, how, sizeof how), 0);
    CHECK_EQ_INT(ragd_nvml_cuda_index(n, 2, how, sizeof how), -1);
    setenv("CUDA_VISIBLE_DEVICES", "MIG-0a1b2c3d", 1);
    CHECK_EQ_INT(ragd_nvml_cuda_index(n, 0, how, sizeof how), -1);
    HAS(how, "MIG devices are not mapped");
    setenv("CUDA_VISIBLE_DEVICES", "5", 1);
    CHECK_EQ_INT(ragd_nvml_cuda_index(n, 0, how, sizeof how), -1);
    unsetenv("CUDA_VISIBLE_DEVICES");
    ragd_nvml_free(n);
}

typedef struct faults {
    pthread_mutex_t mu;
    int n, gpu[8];
    char why[8][256];
} faults;

static void on_fault(void *ctx, int gpu, const char *reason) {
    faults *f = ctx;
    pthread_mutex_lock(&f->mu);
    if (f->n < 8) {
        f->gpu[f->n] = gpu;
        snprintf(f->why[f->n], sizeof f->why[0], "%s", reason);
    }
    f->n++;
    pthread_mutex_unlock(&f->mu);
}

static int fault_count(faults *f) {
    pthread_mutex_lock(&f->mu);
    int n = f->n;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static void test_watcher(void) {
    control("");
    faults f = {.mu = PTHREAD_MUTEX_INITIALIZER};
    ragd_nvml *n = ragd_nvml_open(FAKE_NVML_PATH);
    ragd_nvml_watch(n, on_fault, &f);
    usleep(300 * 1000);
    CHECK_EQ_INT(fault_count(&f), 0);
    control("xid 0 13\n"); /* an application's Xid: seen, not a fault */
    usleep(1500 * 1000);
    CHECK_EQ_INT(fault_count(&f), 0);
    char *t = render(n);
    HAS(t, "ragd_gpu_last_xid{gpu=\"0\"} 13\n");
    HAS(t, "ragd_gpu_healthy{gpu=\"0\"} 1\n");
    free(t);
    control("xid 0 13\necc 0 1\n"); /* (each Xid is delivered once) */
    const double t0 = ragd_now_s();
    while (fault_count(&f) < 1 && ragd_now_s() - t0 < 5) usleep(20 * 1000);
    CHECK(ragd_now_s() - t0 < 2.5); /* sampled every second */
    CHECK_EQ_INT(fault_count(&f), 1);
    CHECK_EQ_INT(f.gpu[0], 0);
    CHECK_STR(f.why[0], "uncorrectable ECC errors rose from 0 at start to 1");
    control("xid 0 13\necc 0 1\nxid 1 79\n");
    while (fault_count(&f) < 2 && ragd_now_s() - t0 < 6) usleep(20 * 1000);
    CHECK_EQ_INT(fault_count(&f), 2);
    CHECK_EQ_INT(f.gpu[1], 1);
    CHECK_STR(f.why[1], "critical Xid 79 event");
    control("ecc 0 9\n");
    usleep(2200 * 1000);
    CHECK_EQ_INT(fault_count(&f), 2); /* latched: one callback per GPU */
    t = json(n);
    HAS(t, "\"fault\":\"uncorrectable ECC errors rose from 0 at start to 1\"");
    HAS(t, "\"last_xid\":79,\"health\":\"unhealthy\",\"fault\":\"critical Xid 79 event\"");
    free(t);
    ragd_nvml_free(n); /* stops the watcher */
}

int main(void) {
    snprintf(g_ctl, sizeof g_ctl, "/tmp/ragd_test_nvml_%d.ctl", (int)getpid());
    setenv("FAKE_NVML_CONTROL", g_ctl, 1);
    test_health_decision();
    test_unavailable();
    test_values();
    test_watcher();
    unlink(g_ctl);
    printf("test_nvml: %d passed, %d failed\n", t_passed, t_failed);
    return t_failed ? 1 : 0;
}
