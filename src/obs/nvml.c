/* nvml.c — GPU telemetry and health from NVML, loaded at run time (issue 15).
 *
 * libnvidia-ml.so.1 (or --nvml-lib / RAGD_NVML_LIB) is opened with dlopen and its functions resolved
 * with dlsym; the few NVML types and constants used are declared below, so the build needs no NVML
 * header and a CPU-only build or a machine without a driver works unchanged: NVML is then "unavailable"
 * with the reason (the dlerror, the missing symbol, nvmlInit's error). Only nvmlInit_v2, nvmlShutdown,
 * nvmlDeviceGetCount_v2 and nvmlDeviceGetHandleByIndex_v2 are required; every other function may be
 * missing from an old driver (its values are then absent).
 *
 * Values: every call is checked. NVML_ERROR_NOT_SUPPORTED (and a missing function) makes a value
 * absent — null in /diagnostics, no series in /metrics — never an error; any other failure is absent
 * too and named in the GPU's "errors". Name, UUID, driver and the handles are read once at open; the
 * rest is sampled at most once per second (kSamplePeriod) and cached under one mutex, so /metrics and
 * /diagnostics (HTTP threads) and the watcher read the same snapshot.
 *
 * Health (ragd_gpu_health): a GPU is unhealthy once its volatile uncorrectable ECC count rises above
 * the count seen at start, a row-remapping failure appears that was not there at start, NVML reports
 * the GPU lost, or a critical Xid event arrives (every Xid but the application ones the NVIDIA
 * Kubernetes device plugin ignores: 13, 31, 43, 45, 68, 109). Unhealthy is latched. The watcher thread
 * (ragd_nvml_watch) samples every second, waits on NVML's Xid event set between samples when the driver
 * offers one, and calls the fault callback once per GPU that turns unhealthy.
 *
 * Threading: open/free on the main thread; render/json from any thread; the callback runs on the
 * watcher thread (never under the mutex).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "obs/obs.h"

/* ---------------------------------------------------------------------------------------------- */
/* the NVML ABI we use (nvml.h, stable across drivers) */

typedef int nvml_ret;
typedef struct nvml_device_st *nvml_dev;
typedef struct nvml_event_set_st *nvml_evset;
enum {
    NVML_SUCCESS = 0, NVML_ERROR_NOT_SUPPORTED = 3, NVML_ERROR_INSUFFICIENT_SIZE = 7, NVML_ERROR_TIMEOUT = 10,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13, NVML_ERROR_GPU_IS_LOST = 15,
};
enum { NVML_TEMPERATURE_GPU = 0, NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2 };
enum { NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1, NVML_VOLATILE_ECC = 0 };
enum { NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS = 0, NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR = 1 };
#define NVML_EVENT_TYPE_XID_CRITICAL 0x8ULL
#define NVML_VALUE_NOT_AVAILABLE 0xFFFFFFFFFFFFFFFFULL
typedef struct { unsigned long long total, free, used; } nvml_memory;
typedef struct { unsigned int gpu, memory; } nvml_utilization;
typedef struct { unsigned int pid; unsigned long long used; unsigned int gi, ci; } nvml_proc;    /* _v2/_v3 */
typedef struct { unsigned int pid; unsigned long long used; } nvml_proc_v1;                       /* unversioned */
typedef struct { nvml_dev dev; unsigned long long type, data; unsigned int gi, ci; } nvml_event;  /* _v2 */

typedef struct nvml_api {
    nvml_ret (*init)(void);
    nvml_ret (*shutdown)(void);
    const char *(*error_string)(nvml_ret);
    nvml_ret (*count)(unsigned int *);
    nvml_ret (*handle)(unsigned int, nvml_dev *);
    nvml_ret (*name)(nvml_dev, char *, unsigned int);
    nvml_ret (*uuid)(nvml_dev, char *, unsigned int);
    nvml_ret (*driver)(char *, unsigned int);
    nvml_ret (*cuda_driver)(int *); /* the CUDA version the driver supports, 1000 × major + 10 × minor */
    nvml_ret (*memory)(nvml_dev, nvml_memory *);
    nvml_ret (*util)(nvml_dev, nvml_utilization *);
    nvml_ret (*temp)(nvml_dev, int, unsigned int *);
    nvml_ret (*power)(nvml_dev, unsigned int *);
    nvml_ret (*power_limit)(nvml_dev, unsigned int *);
    nvml_ret (*clock)(nvml_dev, int, unsigned int *);
    nvml_ret (*ecc)(nvml_dev, int, int, unsigned long long *);
    nvml_ret (*retired)(nvml_dev, int, unsigned int *, unsigned long long *);
    nvml_ret (*retired_pending)(nvml_dev, int *);
    nvml_ret (*remapped)(nvml_dev, unsigned int *, unsigned int *, unsigned int *, unsigned int *);
    nvml_ret (*procs)(nvml_dev, unsigned int *, nvml_proc *);       /* _v3 or _v2 */
    nvml_ret (*procs_v1)(nvml_dev, unsigned int *, nvml_proc_v1 *); /* when neither exists */
    nvml_ret (*evset_create)(nvml_evset *);
    nvml_ret (*evset_register)(nvml_dev, unsigned long long, nvml_evset);
    nvml_ret (*evset_wait)(nvml_evset, nvml_event *, unsigned int);
    nvml_ret (*evset_free)(nvml_evset);
} nvml_api;

/* ---------------------------------------------------------------------------------------------- */
/* state */

#define kSamplePeriod 1.0 /* seconds: at most one sample per period, whoever asks */

typedef struct gpu_sample {
    bool has_mem, has_proc_mem, has_util, has_temp, has_power, has_plimit, has_sm_clock, has_mem_clock, has_ecc;
    bool has_retired, has_retired_pending, has_remap;
    unsigned long long mem_total, mem_used, proc_mem, ecc_uncorrected, retired_sbe, retired_dbe;
    unsigned int util_gpu, util_mem, temp_c, power_mw, plimit_mw, sm_mhz, mem_mhz;
    unsigned int remap_corr, remap_unc, remap_pending, remap_failure;
    bool retired_pending, lost;
    ragd_buf errors; /* "nvmlDeviceGetX: reason (code); ..." of this sample */
} gpu_sample;

typedef struct gpu {
    nvml_dev dev;
    char name[96], uuid[96];
    gpu_sample s;
    /* health: the values at start, the latest critical Xid, the latched verdict */
    bool start_set, start_has_ecc, start_remap_failure;
    unsigned long long ecc_start;
    unsigned int last_xid, fault_xid;
    bool unhealthy, notified;
    char *fault; /* why it is unhealthy (owned) */
} gpu;

struct ragd_nvml {
    void *lib;
    nvml_api f;
    char *why_unavailable; /* NULL when loaded */
    char driver[96];
    int cuda_driver; /* nvmlSystemGetCudaDriverVersion_v2, 0: unknown */
    int n_gpus;
    gpu *gpus;
    pthread_mutex_t mu; /* guards gpus[].s, health fields, last_sample */
    double last_sample;
    nvml_evset evset;
    /* watcher */
    pthread_t th;
    bool watching, stop; /* stop: under mu */
    pthread_cond_t cv;
    ragd_gpu_fault_fn on_fault;
    void *on_fault_ctx;
};

static const char *ret_str(const ragd_nvml *n, nvml_ret r) {
    const char *s = n->f.error_string ? n->f.error_string(r) : NULL;
    return s ? s : "error";
}

/* printable ASCII only (label values and JSON strings stay plain whatever a driver returns) */
static void sanitize(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\') *s = '?';
}

/* ---------------------------------------------------------------------------------------------- */
/* health decision */

bool ragd_gpu_xid_is_fault(unsigned int xid) {
    static const unsigned int app_xids[] = {13, 31, 43, 45, 68, 109}; /* errors of an application, not the GPU */
    if (!xid) return false;
    for (size_t i = 0; i < sizeof app_xids / sizeof app_xids[0]; i++)
        if (xid == app_xids[i]) return false;
    return true;
}

bool ragd_gpu_health(const ragd_gpu_health_in *in, char *why, size_t len) {
    if (in->lost)
        snprintf(why, len, "NVML reports the GPU lost (fallen off the bus or in an unrecoverable state)");
    else if (in->has_ecc && in->ecc_now > in->ecc_start)
        snprintf(why, len, "uncorrectable ECC errors rose from %llu at start to %llu", in->ecc_start, in->ecc_now);
    else if (in->remap_failure_now && !in->remap_failure_start)
        snprintf(why, len, "row remapping failed (uncorrectable memory error with no spare row)");
    else if (ragd_gpu_xid_is_fault(in->xid))
        snprintf(why, len, "critical Xid %u event", in->xid);
    else {
        if (len) why[0] = 0;
        return true;
    }
    return false;
}

/* ---------------------------------------------------------------------------------------------- */
/* sampling */

/* true when r is a value; NOT_SUPPORTED and a missing function are silently absent, any other error is
 * named in the sample's errors */
static bool ok(const ragd_nvml *n, gpu_sample *s, const char *fn, nvml_ret r) {
    if (r == NVML_SUCCESS) return true;
    if (r == NVML_ERROR_NOT_SUPPORTED || r == NVML_ERROR_FUNCTION_NOT_FOUND) return false;
    if (r == NVML_ERROR_GPU_IS_LOST) s->lost = true;
    ragd_buf_printf(&s->errors, "%s%s: %s (%d)", s->errors.len ? "; " : "", fn, ret_str(n, r), r);
    return false;
}
#define CALL(fn, field, ...) (n->f.field && ok(n, s, fn, n->f.field(__VA_ARGS__)))

static void sample_procs(const ragd_nvml *n, gpu *g, gpu_sample *s) {
    const unsigned int me = (unsigned int)getpid();
    unsigned int cap = 64;
    for (int attempt = 0; attempt < 3; attempt++) {
        unsigned int cnt = cap;
        nvml_ret r;
        unsigned long long mine = NVML_VALUE_NOT_AVAILABLE;
        if (n->f.procs) {
            nvml_proc *p = ragd_xcalloc(cap, sizeof *p);
            r = n->f.procs(g->dev, &cnt, p);
            for (unsigned int i = 0; r == NVML_SUCCESS && i < cnt && i < cap; i++)
                if (p[i].pid == me) mine = p[i].used;
            free(p);
        } else if (n->f.procs_v1) {
            nvml_proc_v1 *p = ragd_xcalloc(cap, sizeof *p);
            r = n->f.procs_v1(g->dev, &cnt, p);
            for (unsigned int i = 0; r == NVML_SUCCESS && i < cnt && i < cap; i++)
                if (p[i].pid == me) mine = p[i].used;
            free(p);
        } else return;
        if (r == NVML_ERROR_INSUFFICIENT_SIZE && cnt > cap && cnt < (1u << 16)) {
            cap = cnt + 16; /* more processes appeared: again, with room */
            continue;
        }
        /* this process absent (no CUDA context on it yet, or a PID namespace NVML does not see) or its
         * memory not available: absent */
        if (ok(n, s, "nvmlDeviceGetComputeRunningProcesses", r) && mine != NVML_VALUE_NOT_AVAILABLE) {
            s->has_proc_mem = true;
            s->proc_mem = mine;
        }
        return;
    }
}

static void sample_gpu(ragd_nvml *n, gpu *g, gpu_sample *s) {
    ragd_buf errors = s->errors;
    ragd_buf_reset(&errors);
    memset(s, 0, sizeof *s);
    s->errors = errors;
    nvml_dev d = g->dev;
    nvml_memory m;
    if ((s->has_mem = CALL("nvmlDeviceGetMemoryInfo", memory, d, &m))) {
        s->mem_total = m.total;
        s->mem_used = m.used;
    }
    nvml_utilization u;
    if ((s->has_util = CALL("nvmlDeviceGetUtilizationRates", util, d, &u))) {
        s->util_gpu = u.gpu;
        s->util_mem = u.memory;
    }
    s->has_temp = CALL("nvmlDeviceGetTemperature", temp, d, NVML_TEMPERATURE_GPU, &s->temp_c);
    s->has_power = CALL("nvmlDeviceGetPowerUsage", power, d, &s->power_mw);
    s->has_plimit = CALL("nvmlDeviceGetEnforcedPowerLimit", power_limit, d, &s->plimit_mw);
    s->has_sm_clock = CALL("nvmlDeviceGetClockInfo(SM)", clock, d, NVML_CLOCK_SM, &s->sm_mhz);
    s->has_mem_clock = CALL("nvmlDeviceGetClockInfo(MEM)", clock, d, NVML_CLOCK_MEM, &s->mem_mhz);
    s->has_ecc = CALL("nvmlDeviceGetTotalEccErrors", ecc, d, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC,
                      &s->ecc_uncorrected);
    /* page retirement (before Ampere): counts by cause, buffer size 0 → the count only */
    unsigned int cnt = 0;
    nvml_ret r = n->f.retired ? n->f.retired(d, NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS, &cnt, NULL) : NVML_ERROR_FUNCTION_NOT_FOUND;
    if (r == NVML_SUCCESS || r == NVML_ERROR_INSUFFICIENT_SIZE) {
        s->retired_sbe = cnt;
        cnt = 0;
        r = n->f.retired(d, NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR, &cnt, NULL);
        if (r == NVML_SUCCESS || r == NVML_ERROR_INSUFFICIENT_SIZE) {
            s->has_retired = true;
            s->retired_dbe = cnt;
        } else ok(n, s, "nvmlDeviceGetRetiredPages", r);
    } else ok(n, s, "nvmlDeviceGetRetiredPages", r);
    int pending = 0;
    if ((s->has_retired_pending = CALL("nvmlDeviceGetRetiredPagesPendingStatus", retired_pending, d, &pending)))
        s->retired_pending = pending != 0;
    /* row remapping (Ampere and later) */
    s->has_remap = CALL("nvmlDeviceGetRemappedRows", remapped, d, &s->remap_corr, &s->remap_unc, &s->remap_pending,
                        &s->remap_failure);
    sample_procs(n, g, s);
}

/* Samples every GPU when the cache is older than kSamplePeriod, then updates health (under n->mu). */
static void refresh_locked(ragd_nvml *n) {
    const double now = ragd_now_s();
    if (n->last_sample > 0 && now - n->last_sample < kSamplePeriod) return;
    n->last_sample = now;
    for (int i = 0; i < n->n_gpus; i++) {
        gpu *g = &n->gpus[i];
        sample_gpu(n, g, &g->s);
        if (!g->start_set) { /* the baseline: the first sample (at open) */
            g->start_set = true;
            g->start_has_ecc = g->s.has_ecc;
            g->ecc_start = g->s.ecc_uncorrected;
            g->start_remap_failure = g->s.has_remap && g->s.remap_failure;
        } else if (!g->start_has_ecc && g->s.has_ecc) { /* the first read failed at start: count from now */
            g->start_has_ecc = true;
            g->ecc_start = g->s.ecc_uncorrected;
        }
        if (g->unhealthy) continue;
        ragd_gpu_health_in in = {.lost = g->s.lost, .has_ecc = g->s.has_ecc && g->start_has_ecc, .ecc_start = g->ecc_start,
                                 .ecc_now = g->s.ecc_uncorrected, .remap_failure_start = g->start_remap_failure,
                                 .remap_failure_now = g->s.has_remap && g->s.remap_failure, .xid = g->fault_xid};
        char why[256];
        if (!ragd_gpu_health(&in, why, sizeof why)) {
            g->unhealthy = true;
            g->fault = ragd_xstrdup(why);
            RAGD_ERROR("GPU %d (%s, %s) is UNHEALTHY: %s", i, g->name, g->uuid, why);
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* open / free */

static void *sym(ragd_nvml *n, const char *name) { return dlsym(n->lib, name); }

static void unavailable(ragd_nvml *n, const char *fmt, const char *a, const char *b) {
    char buf[512];
    snprintf(buf, sizeof buf, fmt, a, b);
    n->why_unavailable = ragd_xstrdup(buf);
}

ragd_nvml *ragd_nvml_open(const char *path) {
    ragd_nvml *n = ragd_xcalloc(1, sizeof *n);
    pthread_mutex_init(&n->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!path || !*path || !strcmp(path, "off")) {
        unavailable(n, "%s%s", "turned off (--nvml-lib off)", "");
        return n;
    }
    dlerror();
    n->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!n->lib) {
        const char *e = dlerror();
        unavailable(n, "dlopen %s", e ? e : path, "");
        return n;
    }
    static const char *const required[] = {"nvmlInit_v2", "nvmlShutdown", "nvmlDeviceGetCount_v2",
                                           "nvmlDeviceGetHandleByIndex_v2"};
    for (size_t i = 0; i < 4; i++)
        if (!sym(n, required[i])) {
            unavailable(n, "%s has no %s", path, required[i]);
            dlclose(n->lib);
            n->lib = NULL;
            return n;
        }
    nvml_api *f = &n->f;
    /* (function pointers from void *: POSIX guarantees the conversion) */
    *(void **)&f->init = sym(n, "nvmlInit_v2");
    *(void **)&f->shutdown = sym(n, "nvmlShutdown");
    *(void **)&f->error_string = sym(n, "nvmlErrorString");
    *(void **)&f->count = sym(n, "nvmlDeviceGetCount_v2");
    *(void **)&f->handle = sym(n, "nvmlDeviceGetHandleByIndex_v2");
    *(void **)&f->name = sym(n, "nvmlDeviceGetName");
    *(void **)&f->uuid = sym(n, "nvmlDeviceGetUUID");
    *(void **)&f->driver = sym(n, "nvmlSystemGetDriverVersion");
    *(void **)&f->cuda_driver = sym(n, "nvmlSystemGetCudaDriverVersion_v2");
    *(void **)&f->memory = sym(n, "nvmlDeviceGetMemoryInfo");
    *(void **)&f->util = sym(n, "nvmlDeviceGetUtilizationRates");
    *(void **)&f->temp = sym(n, "nvmlDeviceGetTemperature");
    *(void **)&f->power = sym(n, "nvmlDeviceGetPowerUsage");
    *(void **)&f->power_limit = sym(n, "nvmlDeviceGetEnforcedPowerLimit");
    *(void **)&f->clock = sym(n, "nvmlDeviceGetClockInfo");
    *(void **)&f->ecc = sym(n, "nvmlDeviceGetTotalEccErrors");
    *(void **)&f->retired = sym(n, "nvmlDeviceGetRetiredPages");
    *(void **)&f->retired_pending = sym(n, "nvmlDeviceGetRetiredPagesPendingStatus");
    *(void **)&f->remapped = sym(n, "nvmlDeviceGetRemappedRows");
    *(void **)&f->procs = sym(n, "nvmlDeviceGetComputeRunningProcesses_v3");
    if (!f->procs) *(void **)&f->procs = sym(n, "nvmlDeviceGetComputeRunningProcesses_v2");
    if (!f->procs) *(void **)&f->procs_v1 = sym(n, "nvmlDeviceGetComputeRunningProcesses");
    *(void **)&f->evset_create = sym(n, "nvmlEventSetCreate");
    *(void **)&f->evset_register = sym(n, "nvmlDeviceRegisterEvents");
    *(void **)&f->evset_wait = sym(n, "nvmlEventSetWait_v2");
    *(void **)&f->evset_free = sym(n, "nvmlEventSetFree");

    nvml_ret r = f->init();
    if (r != NVML_SUCCESS) {
        char code[160];
        snprintf(code, sizeof code, "%s (%d)", ret_str(n, r), r);
        unavailable(n, "nvmlInit_v2: %s%s", code, "");
        dlclose(n->lib);
        n->lib = NULL;
        return n;
    }
    unsigned int cnt = 0;
    r = f->count(&cnt);
    if (r != NVML_SUCCESS || cnt > 1024) {
        char code[160];
        snprintf(code, sizeof code, "%s (%d)", r ? ret_str(n, r) : "implausible count", r);
        unavailable(n, "nvmlDeviceGetCount_v2: %s%s", code, "");
        f->shutdown();
        dlclose(n->lib);
        n->lib = NULL;
        return n;
    }
    snprintf(n->driver, sizeof n->driver, "?");
    if (f->driver && f->driver(n->driver, sizeof n->driver) != NVML_SUCCESS) snprintf(n->driver, sizeof n->driver, "?");
    n->driver[sizeof n->driver - 1] = 0;
    sanitize(n->driver);
    if (!f->cuda_driver || f->cuda_driver(&n->cuda_driver) != NVML_SUCCESS || n->cuda_driver < 0) n->cuda_driver = 0;
    n->gpus = ragd_xcalloc(cnt ? cnt : 1, sizeof *n->gpus);
    for (unsigned int i = 0; i < cnt; i++) {
        gpu *g = &n->gpus[n->n_gpus];
        r = f->handle(i, &g->dev);
        if (r != NVML_SUCCESS) { /* a GPU NVML cannot open (e.g. not permitted): left out, said once */
            RAGD_WARN("NVML: GPU %u left out: nvmlDeviceGetHandleByIndex_v2: %s (%d)", i, ret_str(n, r), r);
            continue;
        }
        snprintf(g->name, sizeof g->name, "?");
        snprintf(g->uuid, sizeof g->uuid, "?");
        if (f->name && f->name(g->dev, g->name, sizeof g->name) != NVML_SUCCESS) snprintf(g->name, sizeof g->name, "?");
        if (f->uuid && f->uuid(g->dev, g->uuid, sizeof g->uuid) != NVML_SUCCESS) snprintf(g->uuid, sizeof g->uuid, "?");
        g->name[sizeof g->name - 1] = g->uuid[sizeof g->uuid - 1] = 0;
        sanitize(g->name);
        sanitize(g->uuid);
        n->n_gpus++;
    }
    /* Xid events where the driver offers them (a wait between samples instead of a sleep) */
    if (f->evset_create && f->evset_register && f->evset_wait && f->evset_free && n->n_gpus &&
        f->evset_create(&n->evset) == NVML_SUCCESS) {
        int registered = 0;
        for (int i = 0; i < n->n_gpus; i++)
            if (f->evset_register(n->gpus[i].dev, NVML_EVENT_TYPE_XID_CRITICAL, n->evset) == NVML_SUCCESS) registered++;
        if (!registered) {
            f->evset_free(n->evset);
            n->evset = NULL;
        }
    }
    pthread_mutex_lock(&n->mu);
    refresh_locked(n); /* the health baseline */
    pthread_mutex_unlock(&n->mu);
    RAGD_INFO("NVML: driver %s, %d GPU%s%s", n->driver, n->n_gpus, n->n_gpus == 1 ? "" : "s",
              n->evset ? ", Xid events watched" : ", no Xid events");
    for (int i = 0; i < n->n_gpus; i++) RAGD_INFO("NVML: GPU %d %s %s", i, n->gpus[i].name, n->gpus[i].uuid);
    return n;
}

const char *ragd_nvml_unavailable(const ragd_nvml *n) { return n ? n->why_unavailable : "not opened"; }
int ragd_nvml_gpu_count(const ragd_nvml *n) { return n && n->lib ? n->n_gpus : 0; }

bool ragd_nvml_gpu_fault(ragd_nvml *n, int index, char *why, size_t len) {
    if (len) why[0] = 0;
    if (!n || !n->lib || index < 0 || index >= n->n_gpus) return false;
    pthread_mutex_lock(&n->mu);
    bool bad = n->gpus[index].unhealthy;
    if (bad) snprintf(why, len, "%s", n->gpus[index].fault);
    pthread_mutex_unlock(&n->mu);
    return bad;
}

int ragd_nvml_cuda_index(ragd_nvml *n, int ordinal, char *how, size_t len) {
    if (!n || !n->lib || !n->n_gpus) {
        snprintf(how, len, "none: NVML %s", !n ? "not opened" : n->why_unavailable ? n->why_unavailable : "sees no GPU");
        return -1;
    }
    const char *vis = getenv("CUDA_VISIBLE_DEVICES");
    if (!vis || !*vis) {
        if (ordinal < 0 || ordinal >= n->n_gpus) {
            snprintf(how, len, "none: cuda:%d beyond NVML's %d GPUs", ordinal, n->n_gpus);
            return -1;
        }
        snprintf(how, len, "cuda:%d is NVML GPU %d %s (CUDA_VISIBLE_DEVICES unset: the same index)", ordinal, ordinal,
                 n->gpus[ordinal].uuid);
        return ordinal;
    }
    /* the ordinal-th entry of the comma-separated list */
    const char *p = vis;
    for (int k = 0; k < ordinal && p; k++) {
        p = strchr(p, ',');
        if (p) p++;
    }
    if (!p || ordinal < 0) {
        snprintf(how, len, "none: cuda:%d is not in CUDA_VISIBLE_DEVICES=%.64s", ordinal, vis);
        return -1;
    }
    size_t el = strcspn(p, ",");
    while (el && p[el - 1] == ' ') el--;
    while (el && *p == ' ') {
        p++;
        el--;
    }
    const int shown = (int)(el > 64 ? 64 : el);
    if (el >= 4 && !strncmp(p, "GPU-", 4)) { /* a UUID, or a unique prefix of one, as CUDA accepts */
        int found = -1, matches = 0;
        for (int i = 0; i < n->n_gpus; i++)
            if (!strncmp(n->gpus[i].uuid, p, el)) {
                found = i;
                matches++;
            }
        if (matches != 1) {
            snprintf(how, len, "none: CUDA_VISIBLE_DEVICES entry %.*s matches %d NVML GPUs", shown, p, matches);
            return -1;
        }
        snprintf(how, len, "cuda:%d is NVML GPU %d %s (CUDA_VISIBLE_DEVICES UUID)", ordinal, found, n->gpus[found].uuid);
        return found;
    }
    char *end = NULL;
    long idx = strtol(p, &end, 10);
    if (end == p || (size_t)(end - p) != el || idx < 0 || idx >= n->n_gpus) {
        snprintf(how, len, "none: CUDA_VISIBLE_DEVICES entry '%.*s' is not an NVML index or GPU UUID (MIG devices are not mapped)",
                 shown, p);
        return -1;
    }
    snprintf(how, len, "cuda:%d is NVML GPU %ld %s (CUDA_VISIBLE_DEVICES index; CUDA orders identical GPUs as NVML does, "
             "else set CUDA_DEVICE_ORDER=PCI_BUS_ID or use a UUID)", ordinal, idx, n->gpus[idx].uuid);
    return (int)idx;
}

/* ---------------------------------------------------------------------------------------------- */
/* the watcher */

static void handle_event(ragd_nvml *n, const nvml_event *ev) {
    if (!(ev->type & NVML_EVENT_TYPE_XID_CRITICAL)) return;
    for (int i = 0; i < n->n_gpus; i++) {
        gpu *g = &n->gpus[i];
        if (g->dev != ev->dev) continue;
        const unsigned int xid = (unsigned int)ev->data;
        const bool fault = ragd_gpu_xid_is_fault(xid);
        g->last_xid = xid;
        if (fault && !g->fault_xid) g->fault_xid = xid;
        if (fault) RAGD_ERROR("GPU %d (%s): critical Xid %u event", i, g->uuid, xid);
        else RAGD_WARN("GPU %d (%s): Xid %u event (an application error, not a GPU fault)", i, g->uuid, xid);
        n->last_sample = 0; /* re-evaluate health now */
    }
}

static void *watch_main(void *arg) {
    ragd_nvml *n = arg;
    bool events = n->evset != NULL;
    for (;;) {
        if (events) { /* block in NVML for up to 500 ms: an Xid arrives at once */
            nvml_event ev = {0};
            nvml_ret r = n->f.evset_wait(n->evset, &ev, 500);
            pthread_mutex_lock(&n->mu);
            if (r == NVML_SUCCESS) handle_event(n, &ev);
            else if (r != NVML_ERROR_TIMEOUT) {
                RAGD_WARN("NVML: nvmlEventSetWait_v2: %s (%d); Xid events no longer watched", ret_str(n, r), r);
                events = false;
            }
        } else {
            pthread_mutex_lock(&n->mu);
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += 500 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            if (!n->stop) pthread_cond_timedwait(&n->cv, &n->mu, &ts);
        }
        if (n->stop) {
            pthread_mutex_unlock(&n->mu);
            return NULL;
        }
        refresh_locked(n);
        int bad[64], n_bad = 0;
        char *why[64];
        for (int i = 0; i < n->n_gpus && n_bad < 64; i++)
            if (n->gpus[i].unhealthy && !n->gpus[i].notified) {
                n->gpus[i].notified = true;
                bad[n_bad] = i;
                why[n_bad++] = ragd_xstrdup(n->gpus[i].fault);
            }
        pthread_mutex_unlock(&n->mu);
        for (int k = 0; k < n_bad; k++) {
            if (n->on_fault) n->on_fault(n->on_fault_ctx, bad[k], why[k]);
            free(why[k]);
        }
    }
}

void ragd_nvml_watch(ragd_nvml *n, ragd_gpu_fault_fn fn, void *ctx) {
    if (!n || !n->lib || !n->n_gpus || n->watching) return;
    n->on_fault = fn;
    n->on_fault_ctx = ctx;
    if (pthread_create(&n->th, NULL, watch_main, n)) {
        RAGD_WARN("NVML: cannot start the GPU health watcher thread: GPU faults will not mark models not ready");
        return;
    }
    n->watching = true;
}

const char *ragd_nvml_driver_version(const ragd_nvml *n) {
    return n && n->lib && strcmp(n->driver, "?") ? n->driver : NULL;
}

int ragd_nvml_cuda_driver_version(const ragd_nvml *n) { return n && n->lib ? n->cuda_driver : 0; }

void ragd_nvml_free(ragd_nvml *n) {
    if (!n) return;
    if (n->watching) {
        pthread_mutex_lock(&n->mu);
        n->stop = true;
        pthread_cond_broadcast(&n->cv);
        pthread_mutex_unlock(&n->mu);
        pthread_join(n->th, NULL);
    }
    if (n->evset) n->f.evset_free(n->evset);
    for (int i = 0; i < n->n_gpus; i++) {
        ragd_buf_free(&n->gpus[i].s.errors);
        free(n->gpus[i].fault);
    }
    free(n->gpus);
    if (n->lib) {
        n->f.shutdown();
        dlclose(n->lib);
    }
    free(n->why_unavailable);
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    free(n);
}

/* ---------------------------------------------------------------------------------------------- */
/* /metrics */

static void header(ragd_buf *out, const char *name, const char *type, const char *help) {
    ragd_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One gauge family: a line per GPU that has the value. */
#define FAMILY(name, help, has, fmt, value)                                                              \
    do {                                                                                                 \
        bool any_ = false;                                                                               \
        for (int i = 0; i < n->n_gpus; i++) {                                                            \
            const gpu_sample *s = &n->gpus[i].s;                                                         \
            (void)s;                                                                                     \
            if (!(has)) continue;                                                                        \
            if (!any_) header(out, name, "gauge", help);                                                 \
            any_ = true;                                                                                 \
            ragd_buf_printf(out, name "{gpu=\"%d\"} " fmt "\n", i, value);                               \
        }                                                                                                \
    } while (0)

void ragd_nvml_render(ragd_nvml *n, ragd_buf *out) {
    header(out, "ragd_gpu_nvml_up", "gauge", "1 when NVML is loaded and answers (the ragd_gpu_* series come from it).");
    ragd_buf_printf(out, "ragd_gpu_nvml_up %d\n", n && n->lib ? 1 : 0);
    if (!n || !n->lib || !n->n_gpus) return;
    pthread_mutex_lock(&n->mu);
    refresh_locked(n);
    header(out, "ragd_gpu_info", "gauge", "A GPU seen by NVML (value 1): index, UUID, name, driver version.");
    for (int i = 0; i < n->n_gpus; i++)
        ragd_buf_printf(out, "ragd_gpu_info{gpu=\"%d\",uuid=\"%s\",name=\"%s\",driver=\"%s\"} 1\n", i, n->gpus[i].uuid,
                        n->gpus[i].name, n->driver);
    FAMILY("ragd_gpu_healthy", "0 once NVML reported a fault of the GPU since start (uncorrectable ECC errors rising, row-remapping failure, GPU lost, critical Xid), else 1.",
           true, "%d", n->gpus[i].unhealthy ? 0 : 1);
    FAMILY("ragd_gpu_utilization_ratio", "Fraction of the last sample period a kernel ran on the GPU (DCGM_FI_DEV_GPU_UTIL / 100).",
           s->has_util, "%.2f", s->util_gpu / 100.0);
    FAMILY("ragd_gpu_memory_utilization_ratio", "Fraction of the last sample period device memory was read or written (DCGM_FI_DEV_MEM_COPY_UTIL / 100).",
           s->has_util, "%.2f", s->util_mem / 100.0);
    FAMILY("ragd_gpu_memory_used_bytes", "Device memory in use by all processes (DCGM_FI_DEV_FB_USED, in bytes).",
           s->has_mem, "%llu", s->mem_used);
    FAMILY("ragd_gpu_memory_total_bytes", "Device memory (DCGM_FI_DEV_FB_TOTAL, in bytes).", s->has_mem, "%llu", s->mem_total);
    FAMILY("ragd_gpu_process_memory_bytes", "Device memory used by this process, as NVML's running-process list reports it.",
           s->has_proc_mem, "%llu", s->proc_mem);
    FAMILY("ragd_gpu_temperature_celsius", "GPU temperature (DCGM_FI_DEV_GPU_TEMP).", s->has_temp, "%u", s->temp_c);
    FAMILY("ragd_gpu_power_watts", "Power draw (DCGM_FI_DEV_POWER_USAGE).", s->has_power, "%.3f", s->power_mw / 1000.0);
    FAMILY("ragd_gpu_power_limit_watts", "Enforced power limit (DCGM_FI_DEV_ENFORCED_POWER_LIMIT).", s->has_plimit, "%.3f",
           s->plimit_mw / 1000.0);
    FAMILY("ragd_gpu_sm_clock_hertz", "SM clock (DCGM_FI_DEV_SM_CLOCK, in hertz).", s->has_sm_clock, "%.0f", s->sm_mhz * 1e6);
    FAMILY("ragd_gpu_memory_clock_hertz", "Memory clock (DCGM_FI_DEV_MEM_CLOCK, in hertz).", s->has_mem_clock, "%.0f",
           s->mem_mhz * 1e6);
    FAMILY("ragd_gpu_ecc_uncorrectable_errors", "Uncorrectable ECC errors since the driver loaded (volatile; DCGM_FI_DEV_ECC_DBE_VOL_TOTAL).",
           s->has_ecc, "%llu", s->ecc_uncorrected);
    FAMILY("ragd_gpu_retired_pages_sbe", "Pages retired for multiple single-bit ECC errors (DCGM_FI_DEV_RETIRED_SBE).",
           s->has_retired, "%llu", s->retired_sbe);
    FAMILY("ragd_gpu_retired_pages_dbe", "Pages retired for a double-bit ECC error (DCGM_FI_DEV_RETIRED_DBE).", s->has_retired,
           "%llu", s->retired_dbe);
    FAMILY("ragd_gpu_retired_pages_pending", "1 when a page retirement waits for the next reboot (DCGM_FI_DEV_RETIRED_PENDING).",
           s->has_retired_pending, "%d", s->retired_pending ? 1 : 0);
    FAMILY("ragd_gpu_remapped_rows_correctable", "Rows remapped for correctable errors (DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS).",
           s->has_remap, "%u", s->remap_corr);
    FAMILY("ragd_gpu_remapped_rows_uncorrectable", "Rows remapped for uncorrectable errors (DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS).",
           s->has_remap, "%u", s->remap_unc);
    FAMILY("ragd_gpu_row_remap_pending", "1 when a row remapping waits for a GPU reset (DCGM_FI_DEV_ROW_REMAP_PENDING).",
           s->has_remap, "%d", s->remap_pending ? 1 : 0);
    FAMILY("ragd_gpu_row_remap_failure", "1 when a row remapping failed (DCGM_FI_DEV_ROW_REMAP_FAILURE).", s->has_remap, "%d",
           s->remap_failure ? 1 : 0);
    FAMILY("ragd_gpu_last_xid", "The last Xid event since start, 0 for none (DCGM_FI_DEV_XID_ERRORS); only when the driver delivers Xid events.",
           n->evset != NULL, "%u", n->gpus[i].last_xid);
    pthread_mutex_unlock(&n->mu);
}

/* ---------------------------------------------------------------------------------------------- */
/* /diagnostics */

static void opt_u64(ragd_buf *b, const char *key, bool has, unsigned long long v) {
    if (has) ragd_buf_printf(b, "\"%s\":%llu", key, v);
    else ragd_buf_printf(b, "\"%s\":null", key);
}

void ragd_nvml_json(ragd_nvml *n, ragd_buf *b) {
    if (!n || !n->lib) {
        const char *why = n ? n->why_unavailable : "not opened";
        ragd_buf text = {0};
        ragd_buf_printf(&text, "unavailable: %s", why);
        ragd_buf_puts(b, "\"nvml\":");
        ragd_buf_json_str(b, text.data, text.len);
        ragd_buf_free(&text);
        ragd_buf_puts(b, ",\"gpus\":[]");
        return;
    }
    pthread_mutex_lock(&n->mu);
    refresh_locked(n);
    ragd_buf_printf(b, "\"nvml\":\"ok\",\"xid_events\":%s,\"gpus\":[", n->evset ? "true" : "false");
    for (int i = 0; i < n->n_gpus; i++) {
        const gpu *g = &n->gpus[i];
        const gpu_sample *s = &g->s;
        ragd_buf_printf(b, "%s{\"index\":%d,\"name\":\"%s\",\"uuid\":\"%s\",\"driver\":\"%s\",\"memory\":{", i ? "," : "", i,
                        g->name, g->uuid, n->driver);
        opt_u64(b, "total_bytes", s->has_mem, s->mem_total);
        ragd_buf_putc(b, ',');
        opt_u64(b, "used_bytes", s->has_mem, s->mem_used);
        ragd_buf_putc(b, ',');
        opt_u64(b, "process_bytes", s->has_proc_mem, s->proc_mem);
        ragd_buf_puts(b, "},\"utilization\":{");
        opt_u64(b, "gpu_percent", s->has_util, s->util_gpu);
        ragd_buf_putc(b, ',');
        opt_u64(b, "memory_percent", s->has_util, s->util_mem);
        ragd_buf_puts(b, "},");
        opt_u64(b, "temperature_c", s->has_temp, s->temp_c);
        if (s->has_power) ragd_buf_printf(b, ",\"power_w\":%.3f", s->power_mw / 1000.0);
        else ragd_buf_puts(b, ",\"power_w\":null");
        if (s->has_plimit) ragd_buf_printf(b, ",\"power_limit_w\":%.3f", s->plimit_mw / 1000.0);
        else ragd_buf_puts(b, ",\"power_limit_w\":null");
        ragd_buf_puts(b, ",\"clocks_mhz\":{");
        opt_u64(b, "sm", s->has_sm_clock, s->sm_mhz);
        ragd_buf_putc(b, ',');
        opt_u64(b, "memory", s->has_mem_clock, s->mem_mhz);
        ragd_buf_puts(b, "},");
        opt_u64(b, "ecc_uncorrectable_volatile", s->has_ecc, s->ecc_uncorrected);
        ragd_buf_putc(b, ',');
        opt_u64(b, "ecc_uncorrectable_at_start", g->start_has_ecc, g->ecc_start);
        if (s->has_retired || s->has_retired_pending) {
            ragd_buf_puts(b, ",\"retired_pages\":{");
            opt_u64(b, "sbe", s->has_retired, s->retired_sbe);
            ragd_buf_putc(b, ',');
            opt_u64(b, "dbe", s->has_retired, s->retired_dbe);
            ragd_buf_printf(b, ",\"pending\":%s}", !s->has_retired_pending ? "null" : s->retired_pending ? "true" : "false");
        } else ragd_buf_puts(b, ",\"retired_pages\":null");
        if (s->has_remap)
            ragd_buf_printf(b, ",\"remapped_rows\":{\"correctable\":%u,\"uncorrectable\":%u,\"pending\":%s,\"failure\":%s}",
                            s->remap_corr, s->remap_unc, s->remap_pending ? "true" : "false",
                            s->remap_failure ? "true" : "false");
        else ragd_buf_puts(b, ",\"remapped_rows\":null");
        if (n->evset) ragd_buf_printf(b, ",\"last_xid\":%u", g->last_xid);
        else ragd_buf_puts(b, ",\"last_xid\":null");
        ragd_buf_puts(b, ",\"health\":");
        if (g->unhealthy) {
            ragd_buf_puts(b, "\"unhealthy\",\"fault\":");
            ragd_buf_json_str(b, g->fault, strlen(g->fault));
        } else ragd_buf_puts(b, "\"ok\",\"fault\":null");
        ragd_buf_puts(b, ",\"errors\":");
        if (s->errors.len) ragd_buf_json_str(b, s->errors.data, s->errors.len);
        else ragd_buf_puts(b, "null");
        ragd_buf_putc(b, '}');
    }
    ragd_buf_putc(b, ']');
    pthread_mutex_unlock(&n->mu);
}
