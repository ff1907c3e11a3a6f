/* The clsynth context: one device, its OpenCL context and in-order profiling
 * queue, the program/kernel caches, the buffer pool, the autograd tape and the
 * last error. Everything below tools/ takes a clsynth_ctx and keeps no global
 * mutable state. */
#ifndef CLSYNTH_CONTEXT_H
#define CLSYNTH_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "clcore/cl.h"
#include "clcore/device.h"
#include "clcore/error.h"

struct clsynth_program_cache;
struct clsynth_pool;
struct clsynth_tape;
struct clsynth_tunedb;
struct clsynth_kcache;
struct clsynth_comm;
struct clsynth_dnnl;

typedef struct clsynth_ctx {
    clsynth_device_info dev;
    cl_context context;
    cl_command_queue queue;
    clsynth_err err; /* message of the last failure */
    bool failed;     /* sticky: set by every failure; ops given a failed ctx return NULL */

    /* Effective limits: the device's, lowered by emulation (CLSYNTH_MAX_WG,
     * CLSYNTH_MAX_LOCAL_MEM or clsynth_ctx_emulate_limits). */
    size_t max_wg;
    size_t max_item[3];
    cl_ulong local_mem;

    /* Budget of conv2d's im2col column buffer in bytes (0: the op's 64 MiB);
     * CLSYNTH_CONV_COL_BYTES sets it at creation (tests lower it to force
     * pixel-range chunks). */
    size_t conv_col_bytes;

    char cache_dir[512];       /* programs/ and tuning/ live below it */
    bool program_cache_on;     /* on-disk program binary cache */
    bool quiet;                /* suppress warnings on stderr */

    struct clsynth_program_cache *programs;
    struct clsynth_pool *pool;
    struct clsynth_tape *tape;
    struct clsynth_tunedb *tunedb; /* NULL until loaded; owned by clcore/tunedb.c */
    struct clsynth_kcache *kcache; /* resolved kernel configurations (clcore/kconfig.c) */
    unsigned clblast_overridden;   /* bit k: CLBlast kernel k runs tuned parameters (clcore/clblast_apply.c) */
    bool clblast_held;             /* holds a reference on CLBlast's cache (clcore/clblast_util.h) */
    struct clsynth_dnnl *dnnl;     /* oneDNN engine and primitives, NULL until the first oneDNN conv
                                      (clcore/ops_conv_dnnl.c) */
    struct clsynth_tensor *live;   /* activations, released by clsynth_release_activations */
    unsigned long tensor_serial;   /* serial of the last tensor made */
    /* Diagnostics (NULL: off): called with every activation that owns float device
     * memory (not one stored as half) just before its block goes back to the pool (its contents are
     * still valid: a blocking read sees them; `clsynth bench step --denormals`). */
    void (*release_hook)(struct clsynth_ctx *ctx, const struct clsynth_tensor *t, void *user);
    void *release_hook_user;
    int no_grad;                   /* > 0: ops record nothing on the tape */
    struct clsynth_comm *comm;     /* ranks of a data-parallel run (clcore/comm.h); NULL = one
                                      process; not owned by the context */

    /* Launch statistics; when profile_launches is on every launch waits for its
     * event and adds its device time. */
    bool profile_launches;
    double launch_ms_total;
    unsigned long launches;
    unsigned long gemm_calls;            /* clsynth_gemm calls (clcore/gemm.h) */
    struct clsynth_kernel_profile *kprof; /* per-kernel totals when profile_launches (launch.c) */
} clsynth_ctx;

/* Creates a context on the device chosen by spec (see clsynth_device_select);
 * spec NULL reads CLSYNTH_DEVICE. */
clsynth_ctx *clsynth_ctx_create(const char *spec, clsynth_err *err);
void clsynth_ctx_free(clsynth_ctx *ctx);

/* Lowers the limits the launch helper and the tuner respect (0 = keep). */
void clsynth_ctx_emulate_limits(clsynth_ctx *ctx, size_t max_wg, cl_ulong local_mem);

/* Records a failure in ctx->err and ctx->failed; returns -1. */
int clsynth_ctx_fail(clsynth_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports a failed cl* call: "<call> failed [kernel <k>]: <CL_ERROR_NAME>"; returns -1. */
int clsynth_cl_fail(clsynth_ctx *ctx, const char *call, const char *kernel, cl_int code);
/* Clears the sticky failure (after the caller has handled it). */
void clsynth_ctx_clear_error(clsynth_ctx *ctx);
/* Prints "clsynth: warning: ..." to stderr unless ctx->quiet. */
void clsynth_warn(clsynth_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Per-kernel device time table, filled while profile_launches is on
 * (CLSYNTH_PROFILE=1 turns it on at context creation and prints the table
 * to stderr when the context is freed). */
void clsynth_kprofile_print(const clsynth_ctx *ctx, FILE *f);
void clsynth_kprofile_free(clsynth_ctx *ctx);

/* clFinish with error reporting. */
int clsynth_finish(clsynth_ctx *ctx);

/* Checks a cl* return code inside a function returning int. */
#define CLSYNTH_CL(ctx, call, kernel)                                            \
    do {                                                                         \
        cl_int clsynth_rc_ = (call);                                             \
        if (clsynth_rc_ != CL_SUCCESS)                                           \
            return clsynth_cl_fail((ctx), #call, (kernel), clsynth_rc_);         \
    } while (0)

#endif
