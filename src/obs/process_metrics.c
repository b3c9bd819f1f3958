/* process_metrics.c — the process's own series for /metrics, in the names Prometheus client libraries
 * use (process_*), read from /proc/self at each scrape, and ragd_build_info (version, git commit, build
 * type, CUDA, compiler). Where /proc cannot be read (not Linux) the process_* series are left out. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "obs/obs.h"

#ifndef RAGD_GIT_COMMIT
#define RAGD_GIT_COMMIT "unknown"
#endif

const char *ragd_build_commit(void) { return RAGD_GIT_COMMIT; }

static void header(ragd_buf *out, const char *name, const char *type, const char *help) {
    ragd_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* fields of /proc/self/stat after the command name: utime stime (ticks), num_threads, starttime (ticks
 * since boot), vsize (bytes), rss (pages) */
static bool read_stat(double *cpu_s, long *threads, double *start_ticks, double *vsize, double *rss_pages) {
    char buf[2048];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return false;
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    if (!p) return false;
    unsigned long long ut, st, starttime, vs;
    long long rss;
    long nt;
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime
     * cutime cstime priority nice num_threads(20) itrealvalue starttime(22) vsize rss(24) */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %ld %*d %llu %llu %lld",
               &ut, &st, &nt, &starttime, &vs, &rss) != 6)
        return false;
    const double hz = (double)sysconf(_SC_CLK_TCK);
    *cpu_s = (double)(ut + st) / hz;
    *threads = nt;
    *start_ticks = (double)starttime / hz;
    *vsize = (double)vs;
    *rss_pages = (double)rss;
    return true;
}

static double boot_time(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    char line[256];
    double bt = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lf", &bt) == 1) break;
    fclose(f);
    return bt;
}

static long open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

void ragd_metrics_render_process(ragd_buf *out) {
    header(out, "ragd_build_info", "gauge", "The build of this process (value 1).");
    ragd_buf_printf(out, "ragd_build_info{version=\"%s\",commit=\"%s\",build_type=\"%s\",cuda=\"%s\",compiler=\"%s\"} 1\n",
                    RAGD_VERSION, RAGD_GIT_COMMIT, RAGD_BUILD_TYPE,
#ifdef RAGD_HAVE_CUDA
                    "true",
#else
                    "false",
#endif
                    __VERSION__);
    double cpu, start, vsize, rss;
    long threads;
    if (read_stat(&cpu, &threads, &start, &vsize, &rss)) {
        header(out, "process_cpu_seconds_total", "counter", "User and system CPU time of the process in seconds.");
        ragd_buf_printf(out, "process_cpu_seconds_total %.2f\n", cpu);
        header(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        ragd_buf_printf(out, "process_resident_memory_bytes %.0f\n", rss * (double)sysconf(_SC_PAGESIZE));
        header(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        ragd_buf_printf(out, "process_virtual_memory_bytes %.0f\n", vsize);
        header(out, "process_threads", "gauge", "Threads of the process.");
        ragd_buf_printf(out, "process_threads %ld\n", threads);
        const double bt = boot_time();
        if (bt > 0) {
            header(out, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch in seconds.");
            ragd_buf_printf(out, "process_start_time_seconds %.2f\n", bt + start);
        }
    }
    const long fds = open_fds();
    if (fds >= 0) {
        header(out, "process_open_fds", "gauge", "Open file descriptors.");
        ragd_buf_printf(out, "process_open_fds %ld\n", fds);
    }
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY) {
        header(out, "process_max_fds", "gauge", "The limit of open file descriptors.");
        ragd_buf_printf(out, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
}
