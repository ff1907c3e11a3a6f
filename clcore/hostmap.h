/* Buffers of a host-CPU OpenCL device mapped into host memory, for the
 * algorithms that run a host library on them in place (the host-BLAS GEMM,
 * clcore/gemm_host.c; oneDNN's convolutions, clcore/ops_conv_dnnl.c).
 *
 *   clsynth_hostmap m = { 0 };
 *   clsynth_hostmap_add(&m, x->mem, x->off, x->numel, false);   ... each operand
 *   if (clsynth_hostmap_map(ctx, &m, what)) return -1;
 *   float *px = clsynth_hostmap_at(&m, x->mem, x->off);          ... compute
 *   return clsynth_hostmap_unmap(ctx, &m, what);
 *
 * Operands in one cl_mem (the pool places tensors side by side) map the
 * union of their regions once: mapping overlapping regions for writing is
 * undefined. A region anyone writes maps CL_MAP_READ | CL_MAP_WRITE (bytes
 * between a written operand's rows, or a gradient added to, must survive).
 * Only the last map blocks: on the in-order queue it returns after every
 * earlier command, the other maps too, has completed, so the kernels that
 * produced the operands are done (one host-device round trip per call, not
 * one per buffer). Commands enqueued after the unmaps run after them.
 *
 * Zero copy on PoCL's CPU device, Intel's CPU runtime and rusticl on
 * llvmpipe: a map returns the buffer's own storage (platforms.md). */
#ifndef CLSYNTH_HOSTMAP_H
#define CLSYNTH_HOSTMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "clcore/context.h"

#define CLSYNTH_HOSTMAP_MAX 8

typedef struct clsynth_hostmap_region {
    cl_mem mem;
    size_t lo, hi; /* floats */
    bool write;
    float *ptr; /* mapped: element lo */
} clsynth_hostmap_region;

typedef struct clsynth_hostmap {
    clsynth_hostmap_region r[CLSYNTH_HOSTMAP_MAX];
    int n;
} clsynth_hostmap;

/* Adds floats [off, off + len) of mem (at most CLSYNTH_HOSTMAP_MAX distinct
 * buffers: more is a caller's bug, reported by map). */
void clsynth_hostmap_add(clsynth_hostmap *m, cl_mem mem, size_t off, size_t len, bool write);
/* Maps every region; on failure nothing stays mapped (ctx->err names `what`). */
int clsynth_hostmap_map(clsynth_ctx *ctx, clsynth_hostmap *m, const char *what);
/* Element off of mem, which an added region covers. */
float *clsynth_hostmap_at(const clsynth_hostmap *m, cl_mem mem, size_t off);
/* Unmaps what is mapped; 0, or -1 after reporting the first failure. */
int clsynth_hostmap_unmap(clsynth_ctx *ctx, clsynth_hostmap *m, const char *what);

#endif
