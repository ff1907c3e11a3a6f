/* Kernel launches: argument setting that names the kernel in errors, and a
 * launch helper that picks a legal local size.
 *
 * Every kernel takes its tensors as (global float *p, int p_off) pairs, its
 * sizes as ints, and checks bounds itself: the helper rounds each global size
 * up to a multiple of the local size (OpenCL 1.2 semantics). */
#ifndef CLSYNTH_LAUNCH_H
#define CLSYNTH_LAUNCH_H

#include <stddef.h>

#include "clcore/context.h"
#include "clcore/tensor.h"

typedef struct clsynth_args {
    clsynth_ctx *ctx;
    cl_kernel k;
    const char *kname;
    cl_uint idx;
    int failed;
} clsynth_args;

clsynth_args clsynth_args_begin(clsynth_ctx *ctx, cl_kernel k, const char *kname);
void clsynth_arg_tensor(clsynth_args *a, const clsynth_tensor *t); /* mem + int offset */
void clsynth_arg_mem(clsynth_args *a, cl_mem m);
void clsynth_arg_int(clsynth_args *a, int v);
void clsynth_arg_float(clsynth_args *a, float v);
void clsynth_arg_uint(clsynth_args *a, cl_uint v);
void clsynth_arg_local(clsynth_args *a, size_t bytes);
/* n int arguments in order; CLSYNTH_ARG_INTS(a, x->h, x->w, k) for a list. */
void clsynth_arg_ints(clsynth_args *a, int n, const int *v);
#define CLSYNTH_ARG_INTS(a, ...) \
    clsynth_arg_ints((a), (int)(sizeof((const int[]){ __VA_ARGS__ }) / sizeof(int)), (const int[]){ __VA_ARGS__ })

/* Launches a->k over `dims` dimensions of `global` work-items. `local` NULL (or
 * local[0] == 0) asks for the device-aware default: the largest power-of-two
 * shape within CL_KERNEL_WORK_GROUP_SIZE, ctx->max_wg and the per-dimension
 * item limits (1-D: up to 256 items; 2-D: up to 16x16; 3-D: up to 8x8x4).
 * An explicit local size is checked against the same limits first.
 * local_mem_bytes is the kernel's declared local memory use (0 if none) and
 * is checked against ctx->local_mem. If ms is not NULL, waits for the launch
 * and stores its device time in milliseconds. */
int clsynth_launch(clsynth_args *a, int dims, const size_t global[], const size_t *local,
                   size_t local_mem_bytes, double *ms);

/* Adds device time to the per-kernel profile (kname must outlive the context,
 * e.g. a string literal); launches add themselves when ctx->profile_launches. */
void clsynth_kprofile_add(clsynth_ctx *ctx, const char *kname, double ms);

/* A host library call that stands for a launch (CLBlast, the host BLAS,
 * oneDNN). begin stores its start in *t0 (0 unless ctx->profile_launches;
 * then it drains the queue first, so the time is the call's own); end counts
 * it in ctx->launches and, when profiling, drains the queue and adds the wall
 * time under name (which must outlive the context). 0, or -1 with ctx->err set. */
int clsynth_host_call_begin(clsynth_ctx *ctx, double *t0);
int clsynth_host_call_end(clsynth_ctx *ctx, const char *name, double t0);

/* The default local size clsynth_launch would use (for tests and the tuner). */
int clsynth_default_local(clsynth_ctx *ctx, cl_kernel k, const char *kname, int dims,
                          const size_t global[], size_t local_out[]);

/* Checks that `local` is legal for kernel k on this context; fills err text. */
int clsynth_local_is_legal(clsynth_ctx *ctx, cl_kernel k, const char *kname, int dims,
                           const size_t local[], size_t local_mem_bytes);

/* The work-group of a 1-D reduction over `want` values per group: up to 256
 * items, within max_wg (the kernel's limit), max_item0, local memory at
 * bytes_per_item each, and no more than want rounded up to a power of two
 * (at least 1). */
size_t clsynth_reduction_local(size_t max_wg, size_t max_item0, cl_ulong local_mem, size_t bytes_per_item,
                               size_t want);

/* Smallest multiple of m that is >= x. */
static inline size_t clsynth_round_up(size_t x, size_t m) { return m ? (x + m - 1) / m * m : x; }

#endif
