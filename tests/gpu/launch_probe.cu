// launch_probe.cu — measurement tool (not a test): what one dependent kernel costs inside a CUDA graph
// when it does almost nothing, with and without programmatic dependent launch (PDL). A decode step at
// one sequence is ~290 short kernels in one graph, so this per-kernel floor times 290 bounds what fusing
// kernels or PDL could save there.
//
// For each variant a graph of N kernels on one stream (each reads a word its predecessor wrote, so the
// chain is truly dependent) is captured and replayed; printed: µs per kernel (median of 20 replays).
// Variants: grid 1 / 16 / 132 CTAs of 128 threads; plain launches vs cudaLaunchKernelEx with
// cudaLaunchAttributeProgrammaticStreamSerialization (the kernel calls griddepcontrol.wait before its
// read, and griddepcontrol.launch_dependents right after it).
// Usage: launch_probe [N]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "ck.cuh"

__global__ void step_kernel(int *buf, int i, int pdl) {
    if (pdl) asm volatile("griddepcontrol.wait;" ::: "memory");
    const int v = *(volatile int *)&buf[i];
    if (pdl) asm volatile("griddepcontrol.launch_dependents;");
    if (blockIdx.x == 0 && threadIdx.x == 0) buf[i + 1] = v + 1;
}

static float run(cudaStream_t st, int *buf, int n, int grid, int pdl) {
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    for (int i = 0; i < n; i++) {
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = dim3(grid);
        cfg.blockDim = dim3(128);
        cfg.stream = st;
        cudaLaunchAttribute at[1];
        at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[0].val.programmaticStreamSerializationAllowed = 1;
        cfg.attrs = pdl ? at : nullptr;
        cfg.numAttrs = pdl ? 1 : 0;
        CK(cudaLaunchKernelEx(&cfg, step_kernel, buf, i, pdl));
    }
    CK(cudaStreamEndCapture(st, &g));
    CK(cudaGraphInstantiate(&ge, g, 0));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    std::vector<float> v;
    for (int r = 0; r < 23; r++) {
        CK(cudaMemsetAsync(buf, 0, sizeof(int), st));
        CK(cudaEventRecord(e0, st));
        CK(cudaGraphLaunch(ge, st));
        CK(cudaEventRecord(e1, st));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (r >= 3) v.push_back(ms);
    }
    int last = 0;
    CK(cudaMemcpy(&last, buf + n, sizeof last, cudaMemcpyDeviceToHost));
    if (last != n) {
        fprintf(stderr, "chain broken: %d of %d\n", last, n);
        exit(1);
    }
    CK(cudaGraphExecDestroy(ge));
    CK(cudaGraphDestroy(g));
    std::sort(v.begin(), v.end());
    return v[v.size() / 2] * 1000.f / n;
}

int main(int argc, char **argv) {
    const int n = argc > 1 ? atoi(argv[1]) : 290;
    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    int *buf;
    CK(cudaMalloc(&buf, (n + 2) * sizeof(int)));
    printf("launch_probe: %d dependent kernels per graph, µs per kernel (median of 20 replays)\n", n);
    printf("%6s %10s %10s\n", "grid", "plain", "pdl");
    for (int grid : {1, 16, 132, 528}) printf("%6d %10.2f %10.2f\n", grid, run(st, buf, n, grid, 0), run(st, buf, n, grid, 1));
    return 0;
}
