/* Programs built from the embedded kernels/ sources (*.cl), with an on-disk binary
 * cache, and a kernel cache so a kernel is looked up by name at no cost.
 *
 * Binary cache: <cache_dir>/programs/<key>.bin, key = hash of platform, device,
 * vendor, driver version, source and build options. Entries are written to a
 * temp file and renamed (safe with concurrent processes); a corrupt or truncated
 * entry is detected (header + checksum), warned about and rebuilt. */
#ifndef CLSYNTH_PROGRAM_H
#define CLSYNTH_PROGRAM_H

#include <stdint.h>

#include "clcore/context.h"

/* The embedded source of kernels/<file>, or NULL. */
const char *clsynth_kernel_source(const char *file);

/* Returns the kernel `name` of program `file` built with `options` (the -D
 * tunables; may be NULL). The cl_kernel stays owned by the context. */
cl_kernel clsynth_kernel_get(clsynth_ctx *ctx, const char *file, const char *name,
                             const char *options);

/* CL_KERNEL_WORK_GROUP_SIZE of a built kernel on the context's device,
 * already capped by ctx->max_wg (0 on failure, with ctx->err set). Queried
 * once when the kernel is created and cached: a launch costs no query. */
size_t clsynth_kernel_max_wg(clsynth_ctx *ctx, cl_kernel k, const char *name);
/* The same limit (capped by ctx->max_wg) and the kernel's
 * CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE (1 when the driver does not
 * say); either pointer may be NULL. Returns 0 or -1. */
int clsynth_kernel_limits(clsynth_ctx *ctx, cl_kernel k, const char *name, size_t *max_wg, size_t *pref_multiple);
/* The same, as the driver reports them (not capped by emulated limits). */
int clsynth_kernel_limits_raw(clsynth_ctx *ctx, cl_kernel k, const char *name, size_t *wg, size_t *pref);

/* Cache statistics for tests: builds from source, loads from disk binary. */
typedef struct clsynth_program_stats {
    unsigned long built_from_source;
    unsigned long loaded_from_cache;
    unsigned long cache_rejected; /* corrupt/stale entries detected */
} clsynth_program_stats;
clsynth_program_stats clsynth_program_get_stats(const clsynth_ctx *ctx);

/* Path of the cache file for (file, options) on this device (for tests). */
int clsynth_program_cache_path(clsynth_ctx *ctx, const char *file, const char *options,
                               char *out, size_t outlen);

/* FNV-1a 64 of a byte range, chained from h (start with CLSYNTH_FNV_SEED). */
#define CLSYNTH_FNV_SEED 0xcbf29ce484222325ULL
uint64_t clsynth_fnv1a(uint64_t h, const void *data, size_t len);

/* internal: called by clsynth_ctx_free */
void clsynth_program_cache_free(clsynth_ctx *ctx);

#endif
