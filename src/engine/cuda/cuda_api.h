/* cuda_api.h — plain C declarations of the CUDA backend's entry points (implemented in .cu files).
 * Included by C code in src/engine; includes no CUDA headers, so the C side builds with any compiler. */
#ifndef RAGD_CUDA_API_H
#define RAGD_CUDA_API_H

#include <stddef.h>

/* Number of usable CUDA devices; 0 when none (no driver, no GPU). Fills why[0..why_len) with the
 * reason when 0. */
int ragd_cuda_device_count(char *why, size_t why_len);
/* Name, total and free memory of device `ordinal`; returns 0 on success, else a CUDA error code. */
int ragd_cuda_device_info(int ordinal, char *name, size_t name_len, size_t *total, size_t *free_bytes);

#endif
