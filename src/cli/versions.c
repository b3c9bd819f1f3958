/* versions.c — the library versions of this process for /diagnostics (issue 15): ragd and its git commit,
 * the C library, and each library ragd links, as each reports itself at run time (so a container's
 * libraries, not the build machine's headers, are what is shown); the CUDA toolkit the binary was built
 * with; the NVIDIA driver and the CUDA version it supports from NVML. Computed once at startup (main
 * thread) and served as fixed text. The CUDA runtime's and cuBLASLt's own run-time versions are not asked
 * here: only src/engine/cuda calls CUDA, and its C API (cuda_api.h) has no version call yet — they read
 * null, with the toolkit version beside them. */
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
    member(b, "cuda_runtime", NULL);
    member(b, "cublaslt", NULL);
    member(b, "nvidia_driver", ragd_nvml_driver_version(nvml));
    const int cd = ragd_nvml_cuda_driver_version(nvml);
    char cdv[32];
    snprintf(cdv, sizeof cdv, "%d.%d", cd / 1000, cd % 1000 / 10);
    member(b, "cuda_driver", cd > 0 ? cdv : NULL);
    ragd_buf_putc(b, '}');
}
