/* Kernel argument setting and launches with legal local sizes. */
#include "clcore/launch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clcore/program.h"

typedef struct clsynth_kernel_profile {
    const char *name[256];
    double ms[256];
    unsigned long count[256];
    int n;
} clsynth_kernel_profile;

void clsynth_kprofile_add(clsynth_ctx *ctx, const char *kname, double ms)
{
    if (!ctx->kprof && !(ctx->kprof = calloc(1, sizeof *ctx->kprof)))
        return;
    clsynth_kernel_profile *p = ctx->kprof;
    int i = 0;
    while (i < p->n && strcmp(p->name[i], kname) != 0)
        i++;
    if (i == p->n) {
        if (p->n == 256)
            return;
        p->name[p->n++] = kname; /* kernel names are string literals */
    }
    p->ms[i] += ms;
    p->count[i]++;
}

void clsynth_kprofile_print(const clsynth_ctx *ctx, FILE *f)
{
    const clsynth_kernel_profile *p = ctx->kprof;
    if (!p)
        return;
    int order[256];
    double total = 0;
    unsigned long launches = 0; /* this table's (ctx->launches counts since the context began) */
    for (int i = 0; i < p->n; i++) {
        order[i] = i;
        total += p->ms[i];
        launches += p->count[i];
    }
    for (int i = 1; i < p->n; i++) /* insertion sort by time, largest first */
        for (int j = i; j > 0 && p->ms[order[j]] > p->ms[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    fprintf(f, "%-28s %10s %8s %9s %6s\n", "kernel", "ms", "launches", "ms/launch", "share");
    for (int k = 0; k < p->n; k++) {
        int i = order[k];
        fprintf(f, "%-28s %10.1f %8lu %9.3f %5.1f%%\n", p->name[i], p->ms[i], p->count[i],
                p->ms[i] / (double)p->count[i], total > 0 ? 100.0 * p->ms[i] / total : 0.0);
    }
    fprintf(f, "%-28s %10.1f %8lu\n", "total", total, launches);
}

void clsynth_kprofile_free(clsynth_ctx *ctx)
{
    free(ctx->kprof);
    ctx->kprof = NULL;
}

clsynth_args clsynth_args_begin(clsynth_ctx *ctx, cl_kernel k, const char *kname)
{
    clsynth_args a = { ctx, k, kname, 0, k == NULL || ctx->failed };
    return a;
}

static void set(clsynth_args *a, size_t size, const void *value)
{
    if (a->failed)
        return;
    cl_int rc = clSetKernelArg(a->k, a->idx, size, value);
    if (rc != CL_SUCCESS) {
        char what[96];
        snprintf(what, sizeof what, "%s, argument %u", a->kname, (unsigned)a->idx);
        clsynth_cl_fail(a->ctx, "clSetKernelArg", what, rc);
        a->failed = 1;
    }
    a->idx++;
}

void clsynth_arg_tensor(clsynth_args *a, const clsynth_tensor *t)
{
    if (!t) {
        if (!a->failed)
            clsynth_ctx_fail(a->ctx, "kernel %s: argument %u is a missing tensor", a->kname, (unsigned)a->idx);
        a->failed = 1;
        return;
    }
    if ((t->flags & (CLSYNTH_T_HALF | CLSYNTH_T_GONE)) ||
        (t->base && (t->base->flags & (CLSYNTH_T_HALF | CLSYNTH_T_GONE)))) {
        char reader[96];
        snprintf(reader, sizeof reader, "kernel %s (argument %u)", a->kname, (unsigned)a->idx);
        if (!a->failed)
            clsynth_tensor_readable(a->ctx, t, reader);
        a->failed = 1;
        return;
    }
    cl_int off = (cl_int)t->off;
    set(a, sizeof(cl_mem), &t->mem);
    set(a, sizeof off, &off);
}

void clsynth_arg_mem(clsynth_args *a, cl_mem m) { set(a, sizeof m, &m); }
void clsynth_arg_int(clsynth_args *a, int v) { cl_int x = v; set(a, sizeof x, &x); }
void clsynth_arg_uint(clsynth_args *a, cl_uint v) { set(a, sizeof v, &v); }
void clsynth_arg_float(clsynth_args *a, float v) { cl_float x = v; set(a, sizeof x, &x); }
void clsynth_arg_local(clsynth_args *a, size_t bytes) { set(a, bytes, NULL); }

void clsynth_arg_ints(clsynth_args *a, int n, const int *v)
{
    for (int i = 0; i < n; i++)
        clsynth_arg_int(a, v[i]);
}

static size_t pow2_floor(size_t x)
{
    size_t p = 1;
    while (p * 2 <= x)
        p *= 2;
    return p;
}

size_t clsynth_reduction_local(size_t max_wg, size_t max_item0, cl_ulong local_mem, size_t bytes_per_item,
                               size_t want)
{
    size_t l = max_wg < 256 ? max_wg : 256;
    if (l > max_item0)
        l = max_item0;
    if (bytes_per_item && l > local_mem / bytes_per_item)
        l = (size_t)(local_mem / bytes_per_item);
    size_t p2 = 1;
    while (p2 < want)
        p2 *= 2;
    if (l > p2)
        l = p2;
    return l ? l : 1;
}

int clsynth_default_local(clsynth_ctx *ctx, cl_kernel k, const char *kname, int dims, const size_t global[],
                          size_t local[])
{
    size_t kmax = clsynth_kernel_max_wg(ctx, k, kname);
    if (kmax == 0)
        return -1;
    static const size_t pref[3][3] = { { 256, 1, 1 }, { 16, 16, 1 }, { 8, 8, 4 } };
    size_t budget = pow2_floor(kmax);
    for (int d = 0; d < dims; d++) {
        size_t l = pref[dims - 1][d];
        if (l > ctx->max_item[d])
            l = pow2_floor(ctx->max_item[d]);
        /* no point in a group wider than the work in this dimension */
        while (l > 1 && l / 2 >= global[d])
            l /= 2;
        local[d] = l;
    }
    /* shrink the largest dimension until the product fits */
    for (;;) {
        size_t prod = 1;
        for (int d = 0; d < dims; d++)
            prod *= local[d];
        if (prod <= budget)
            break;
        int big = 0;
        for (int d = 1; d < dims; d++)
            if (local[d] > local[big])
                big = d;
        local[big] /= 2;
    }
    return 0;
}

int clsynth_local_is_legal(clsynth_ctx *ctx, cl_kernel k, const char *kname, int dims, const size_t local[],
                           size_t local_mem_bytes)
{
    size_t kmax = clsynth_kernel_max_wg(ctx, k, kname);
    if (kmax == 0)
        return -1;
    size_t prod = 1;
    for (int d = 0; d < dims; d++) {
        if (local[d] == 0 || local[d] > ctx->max_item[d])
            return clsynth_ctx_fail(ctx, "kernel %s: local size %zu in dimension %d exceeds the device "
                                         "limit %zu", kname, local[d], d, ctx->max_item[d]);
        prod *= local[d];
    }
    if (prod > kmax)
        return clsynth_ctx_fail(ctx, "kernel %s: work-group of %zu items exceeds its "
                                     "CL_KERNEL_WORK_GROUP_SIZE / device limit %zu", kname, prod, kmax);
    if (local_mem_bytes > ctx->local_mem)
        return clsynth_ctx_fail(ctx, "kernel %s: needs %zu bytes of local memory, the device has %llu",
                                kname, local_mem_bytes, (unsigned long long)ctx->local_mem);
    return 0;
}

int clsynth_launch(clsynth_args *a, int dims, const size_t global[], const size_t *local, size_t local_mem_bytes,
                   double *ms)
{
    clsynth_ctx *ctx = a->ctx;
    if (a->failed || ctx->failed)
        return -1;
    if (dims < 1 || dims > 3)
        return clsynth_ctx_fail(ctx, "kernel %s: %d dimensions", a->kname, dims);
    size_t loc[3] = { 1, 1, 1 }, glob[3] = { 1, 1, 1 };
    for (int d = 0; d < dims; d++)
        if (global[d] == 0)
            return 0; /* nothing to do */
    if (local && local[0]) {
        memcpy(loc, local, sizeof(size_t) * (size_t)dims);
        if (clsynth_local_is_legal(ctx, a->k, a->kname, dims, loc, local_mem_bytes))
            return -1;
    } else {
        if (clsynth_default_local(ctx, a->k, a->kname, dims, global, loc))
            return -1;
        if (local_mem_bytes > ctx->local_mem)
            return clsynth_ctx_fail(ctx, "kernel %s: needs %zu bytes of local memory, the device has %llu",
                                    a->kname, local_mem_bytes, (unsigned long long)ctx->local_mem);
    }
    for (int d = 0; d < dims; d++)
        glob[d] = clsynth_round_up(global[d], loc[d]);
    cl_event ev = NULL;
    int want_event = ms != NULL || ctx->profile_launches;
    CLSYNTH_CL(ctx, clEnqueueNDRangeKernel(ctx->queue, a->k, (cl_uint)dims, NULL, glob, loc, 0, NULL,
                                           want_event ? &ev : NULL), a->kname);
    ctx->launches++;
    if (want_event) {
        cl_ulong t0 = 0, t1 = 0;
        cl_int rc = clWaitForEvents(1, &ev);
        if (rc == CL_SUCCESS)
            rc = clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
        if (rc == CL_SUCCESS)
            rc = clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
        clReleaseEvent(ev);
        if (rc != CL_SUCCESS)
            return clsynth_cl_fail(ctx, "clGetEventProfilingInfo", a->kname, rc);
        double t = (double)(t1 - t0) * 1e-6;
        ctx->launch_ms_total += t;
        if (ctx->profile_launches)
            clsynth_kprofile_add(ctx, a->kname, t);
        if (ms)
            *ms = t;
    }
    return 0;
}

static double wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

int clsynth_host_call_begin(clsynth_ctx *ctx, double *t0)
{
    *t0 = 0;
    if (!ctx->profile_launches)
        return 0;
    if (clsynth_finish(ctx))
        return -1;
    *t0 = wall_ms();
    return 0;
}

int clsynth_host_call_end(clsynth_ctx *ctx, const char *name, double t0)
{
    ctx->launches++;
    if (!ctx->profile_launches)
        return 0;
    if (clsynth_finish(ctx))
        return -1;
    const double ms = wall_ms() - t0;
    ctx->launch_ms_total += ms;
    clsynth_kprofile_add(ctx, name, ms);
    return 0;
}
