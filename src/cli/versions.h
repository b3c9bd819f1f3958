/* versions.h — the versions of ragd and of the libraries of this process, for /diagnostics (versions.c). */
#ifndef RAGD_CLI_VERSIONS_H
#define RAGD_CLI_VERSIONS_H

#include "obs/obs.h"

/* Appends one JSON object: ragd, commit, glibc, libmicrohttpd, jansson, utf8proc, pcre2, libyaml, libcurl,
 * openssl (as each library reports itself at run time), cuda_toolkit (the build's; null without CUDA),
 * cuda_runtime and cublaslt (as the loaded libraries report them; null without CUDA), nvidia_driver and cuda_driver (from NVML; null
 * without it). */
void ragd_cli_versions_json(const ragd_nvml *nvml, ragd_buf *out);

#endif
