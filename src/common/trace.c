/* trace.c — NVTX profiler ranges around the host-side phases (tokenize, batch assembly); the CUDA
 * backend adds its own around forward and pooling. NVTX v3 is header-only: with no profiler attached
 * each call is a branch on a null function pointer. */
#include "common.h"

#ifdef RAGD_HAVE_CUDA
#include <nvtx3/nvToolsExt.h>
void ragd_trace_push(const char *name) { nvtxRangePushA(name); }
void ragd_trace_pop(void) { nvtxRangePop(); }
#else
void ragd_trace_push(const char *name) { (void)name; }
void ragd_trace_pop(void) {}
#endif
