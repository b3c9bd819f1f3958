/* fake_nvml.c — a stand-in for libnvidia-ml.so.1 in the tests (built as a shared library, loaded by
 * ragd through --nvml-lib / RAGD_NVML_LIB). It exports the NVML functions ragd resolves, with canned
 * values the tests compare exactly:
 *   GPU 0 "NVIDIA H200" GPU-11111111-2222-3333-4444-555555555555: every value supported (page retirement
 *         NOT_SUPPORTED, as on Hopper); this process holds 123456789 bytes on it.
 *   GPU 1 "NVIDIA H200" GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee: ECC, power limit and row remapping
 *         NOT_SUPPORTED, the temperature fails with NVML_ERROR_UNKNOWN, this process is not in its list.
 * Knobs:
 *   FAKE_NVML_INIT_FAIL=N   nvmlInit_v2 returns N.
 *   FAKE_NVML_CONTROL=FILE  read at every call: lines "ecc GPU COUNT" (uncorrectable volatile ECC count,
 *                           default 0), "xid GPU XID" (one Xid event, delivered once), "lost GPU" (every
 *                           call on it returns GPU_IS_LOST).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
typedef int nvmlReturn_t;
typedef struct fake_dev { int index; } fake_dev;
typedef fake_dev *nvmlDevice_t;
typedef struct { int registered; } *nvmlEventSet_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct { unsigned int pid; unsigned long long used; unsigned int gi, ci; } nvmlProcessInfo_t;
typedef struct { nvmlDevice_t dev; unsigned long long type, data; unsigned int gi, ci; } nvmlEventData_t;

enum { OK = 0, INVALID = 2, NOT_SUPPORTED = 3, INSUFFICIENT = 7, TIMEOUT = 10, LOST = 15, UNKNOWN = 999 };

static fake_dev g_devs[2] = {{0}, {1}};
static int g_inited;
static int g_xid_delivered[2];

static int control(const char *key, int gpu, long long *val) {
    const char *path = getenv("FAKE_NVML_CONTROL");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) return 0;
    char k[32];
    int g;
    long long v;
    int found = 0;
    char line[128];
    while (fgets(line, sizeof line, f)) {
        int n = sscanf(line, "%31s %d %lld", k, &g, &v);
        if (n >= 2 && !strcmp(k, key) && g == gpu) {
            found = 1;
            *val = n == 3 ? v : 1;
        }
    }
    fclose(f);
    return found;
}

static int dev_ok(nvmlDevice_t d) {
    if (!g_inited) return 1; /* UNINITIALIZED */
    if (d != &g_devs[0] && d != &g_devs[1]) return INVALID;
    long long v;
    if (control("lost", d->index, &v)) return LOST;
    return OK;
}
#define CHECK(d)                         \
    do {                                 \
        int rc_ = dev_ok(d);             \
        if (rc_) return rc_;             \
    } while (0)

EXPORT nvmlReturn_t nvmlInit_v2(void) {
    const char *f = getenv("FAKE_NVML_INIT_FAIL");
    if (f && *f) return atoi(f);
    g_inited++;
    return OK;
}
EXPORT nvmlReturn_t nvmlShutdown(void) {
    if (!g_inited) return 1;
    g_inited--;
    return OK;
}
EXPORT const char *nvmlErrorString(nvmlReturn_t r) {
    switch (r) {
    case OK: return "Success";
    case NOT_SUPPORTED: return "Not Supported";
    case 9: return "Driver Not Loaded";
    case LOST: return "GPU is lost";
    case UNKNOWN: return "Unknown Error";
    default: return "Fake Error";
    }
}
EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned int len) {
    snprintf(v, len, "560.35.03");
    return OK;
}
EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) {
    *v = 12060;
    return OK;
}
EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n) {
    if (!g_inited) return 1;
    *n = 2;
    return OK;
}
EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d) {
    if (!g_inited) return 1;
    if (i > 1) return INVALID;
    *d = &g_devs[i];
    return OK;
}
EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int len) {
    CHECK(d);
    snprintf(name, len, "NVIDIA H200");
    return OK;
}
EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int len) {
    CHECK(d);
    snprintf(uuid, len, d->index ? "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee" : "GPU-11111111-2222-3333-4444-555555555555");
    return OK;
}
EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
    CHECK(d);
    m->total = 150754820096ULL;
    m->used = d->index ? 1048576ULL * 600 : 1073741824ULL * 5;
    m->free = m->total - m->used;
    return OK;
}
EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u) {
    CHECK(d);
    u->gpu = d->index ? 0 : 37;
    u->memory = d->index ? 0 : 12;
    return OK;
}
EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *t) {
    CHECK(d);
    if (sensor != 0) return INVALID;
    if (d->index) return UNKNOWN;
    *t = 41;
    return OK;
}
EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw) {
    CHECK(d);
    *mw = d->index ? 75000 : 123456;
    return OK;
}
EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *mw) {
    CHECK(d);
    if (d->index) return NOT_SUPPORTED;
    *mw = 700000;
    return OK;
}
EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned int *mhz) {
    CHECK(d);
    if (type == 1) *mhz = d->index ? 345 : 1980;      /* SM */
    else if (type == 2) *mhz = d->index ? 1593 : 3201; /* memory */
    else return INVALID;
    return OK;
}
EXPORT nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, int type, int counter, unsigned long long *n) {
    CHECK(d);
    if (d->index) return NOT_SUPPORTED;
    if (type != 1 || counter != 0) return INVALID; /* only uncorrected, volatile is asked for */
    long long v = 0;
    control("ecc", d->index, &v);
    *n = (unsigned long long)v;
    return OK;
}
EXPORT nvmlReturn_t nvmlDeviceGetRetiredPages(nvmlDevice_t d, int cause, unsigned int *count, unsigned long long *addr) {
    CHECK(d);
    return NOT_SUPPORTED;
}
EXPORT nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t d, int *pending) {
    CHECK(d);
    return NOT_SUPPORTED;
}
EXPORT nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t d, unsigned int *corr, unsigned int *unc, unsigned int *pending,
                                              unsigned int *failure) {
    CHECK(d);
    if (d->index) return NOT_SUPPORTED;
    *corr = 2, *unc = 0, *pending = 0, *failure = 0;
    return OK;
}
EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *count, nvmlProcessInfo_t *p) {
    CHECK(d);
    if (d->index) {
        *count = 0;
        return OK;
    }
    const unsigned int need = 2;
    if (*count < need) {
        *count = need;
        return INSUFFICIENT;
    }
    p[0] = (nvmlProcessInfo_t){.pid = 1, .used = 1073741824ULL, .gi = 0xFFFFFFFFu, .ci = 0xFFFFFFFFu};
    p[1] = (nvmlProcessInfo_t){.pid = (unsigned int)getpid(), .used = 123456789ULL, .gi = 0xFFFFFFFFu, .ci = 0xFFFFFFFFu};
    *count = need;
    return OK;
}
EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set) {
    if (!g_inited) return 1;
    *set = calloc(1, sizeof **set);
    return *set ? OK : UNKNOWN;
}
EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types, nvmlEventSet_t set) {
    CHECK(d);
    if (types != 0x8ULL) return NOT_SUPPORTED;
    set->registered |= 1 << d->index;
    return OK;
}
EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeout_ms) {
    for (int i = 0; i < 2; i++) {
        long long xid;
        if ((set->registered & (1 << i)) && !g_xid_delivered[i] && control("xid", i, &xid)) {
            g_xid_delivered[i] = 1;
            *data = (nvmlEventData_t){.dev = &g_devs[i], .type = 0x8ULL, .data = (unsigned long long)xid};
            return OK;
        }
    }
    struct timespec ts = {.tv_sec = timeout_ms / 1000, .tv_nsec = (long)(timeout_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return TIMEOUT;
}
EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
    free(set);
    return OK;
}
