/* versions.c — the library versions of this process for /diagnostics (issue 15): ragd and its git commit,
 * the C library, and each library ragd links, as each reports itself at run time (so a container's
 * libraries, not the build machine's headers, are what is shown); the CUDA toolkit the binary was built
 * with, and the CUDA runtime's and cuBLASLt's own run-time versions (through cuda_api.h: only
 * src/engine/cuda calls CUDA); the NVIDIA driver and the CUDA version it supports from NVML. Computed once
 * at startup (main thread) and served as fixed text. */
#include <curl/curl.h>
#include <gnu/libc-version.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <utf8proc.h>
#include <yaml.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "cli/versions.h"
#ifdef RAGD_HAVE_CUDA
#include "engine/cuda/cuda_api.h"
#endif

static void member(ragd_buf *b, const char *key, const char *val) {
    ragd_buf_printf(b, "%s\"%s\":", b->len && b->data[b->len - 1] != '{' ? "," : "", key);
    if (val) ragd_buf_json_str(b, val, strlen(val));
    else ragd_buf_puts(b, "null");
}

void ragd_cli_versions_json(const ragd_nvml *nvml, ragd_buf *b) {
    ragd_buf_putc(b, '{');
    member(b, "ragd", RAGD_VERSION);
    member(b, "commit", ragd_build_commit());
    member(b, "glibc", gnu_get_libc_version());
    member(b, "libmicrohttpd", MHD_get_version());
    member(b, "jansson", jansson_version_str());
    member(b, "utf8proc", utf8proc_version());
    char pcre[64] = "";
    pcre2_config(PCRE2_CONFIG_VERSION, pcre);
    member(b, "pcre2", pcre);
    member(b, "libyaml", yaml_get_version_string());
    member(b, "libcurl", curl_version_info(CURLVERSION_NOW)->version);
    member(b, "openssl", OpenSSL_version(OPENSSL_VERSION));
#ifdef RAGD_CUDA_TOOLKIT_VERSION
    member(b, "cuda_toolkit", RAGD_CUDA_TOOLKIT_VERSION); /* the build's; cuBLASLt ships with it */
#else
    member(b, "cuda_toolkit", NULL); /* a CPU-only build */
#endif
#ifdef RAGD_HAVE_CUDA
    int rt = 0;
    size_t lt = 0;
    ragd_cuda_lib_versions(&rt, &lt);
    char rtv[32], ltv[48];
    snprintf(rtv, sizeof rtv, "%d.%d", rt / 1000, rt % 1000 / 10);
    snprintf(ltv, sizeof ltv, "%zu.%zu.%zu", lt / 10000, lt % 10000 / 100, lt % 100);
    member(b, "cuda_runtime", rt > 0 ? rtv : NULL);
    member(b, "cublaslt", lt > 0 ? ltv : NULL);
#else
    member(b, "cuda_runtime", NULL); /* a CPU-only build */
    member(b, "cublaslt", NULL);
#endif
    member(b, "nvidia_driver", ragd_nvml_driver_version(nvml));
    const int cd = ragd_nvml_cuda_driver_version(nvml);
    char cdv[32];
    snprintf(cdv, sizeof cdv, "%d.%d", cd / 1000, cd % 1000 / 10);
    member(b, "cuda_driver", cd > 0 ? cdv : NULL);
    ragd_buf_putc(b, '}');
}
