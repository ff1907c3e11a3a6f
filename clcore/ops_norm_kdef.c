/* Descriptors of the batch / instance norm reduction kernels
 * (clcore/ops_norm.c, kernels/norm.cl): the partial-statistics kernel of the
 * forward and the partial gradient-sums kernel of the backward. See
 * clcore/kdef.h. */
#include <stdio.h>

#include "clcore/kdefs.h"
#include "clcore/launch.h"
#include "clcore/ops.h"

static int norm_format(const void *shape, char *key, size_t len)
{
    const clsynth_norm_shape *s = shape;
    return snprintf(key, len, "G=%d,M=%d", s->groups, s->m);
}

static bool norm_parse(const char *key, void *shape)
{
    clsynth_norm_shape *s = shape;
    char tail = 0;
    return sscanf(key, "G=%d,M=%d%c", &s->groups, &s->m, &tail) == 2 && s->groups >= 1 && s->m >= 2;
}

static const clsynth_norm_shape test_shapes[] = { { 3, 70 }, { 17, 1200 }, { 5, 4099 } };
static const clsynth_norm_shape bench_stats[] = { { 256, 1024 }, { 64, 65536 } };
static const clsynth_norm_shape bench_dsums[] = { { 64, 65536 } };

/* batch norm of x (1, G, 1, M): G groups of M values, as the op's key says */
static int norm_setup(clsynth_ctx *ctx, clsynth_kbench *b)
{
    const clsynth_norm_shape *s = (const clsynth_norm_shape *)&b->shape;
    if (clsynth_kbench_input(ctx, b, "tune.x", 1, s->groups, 1, s->m, 1, 2.0f))
        return -1;
    b->bytes = 12.0 * s->groups * (double)s->m;
    return 0;
}

static clsynth_tensor *norm_run(clsynth_ctx *ctx, clsynth_kbench *b, clsynth_kforce *force)
{
    return clsynth_batch_norm_forced(ctx, b->in[0], NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f, force);
}

static bool norm_valid(const int *v, const void *shape)
{
    const clsynth_norm_shape *s = shape;
    /* more values per chunk than a group has is the same as fewer */
    return (long)v[NORM_VPT] * (v[NORM_LOCAL] ? v[NORM_LOCAL] : 1) <= 4L * clsynth_pow2_ceil(s->m) ||
           v[NORM_VPT] == 1;
}

/* Automatic (LOCAL 0): up to 256 items, within the kernel's and the device's
 * limits and local memory (bytes_per_item each), no more than the work needs
 * (want, rounded up to a power of two: ceil(M / NORM_VPT) values to a chunk). */
size_t clsynth_norm_auto_local(const clsynth_klimits *lim, size_t bytes_per_item, size_t want)
{
    return clsynth_reduction_local(lim->max_wg, lim->max_item[0], lim->local_mem, bytes_per_item, want);
}

static bool local_of(const int *v, const void *shape, const clsynth_klimits *lim, size_t local[3],
                     size_t bytes_per_item)
{
    const clsynth_norm_shape *s = shape;
    if (v[NORM_VPT] < 1)
        return false;
    local[0] = v[NORM_LOCAL] ? (size_t)v[NORM_LOCAL]
                             : clsynth_norm_auto_local(lim, bytes_per_item, ((size_t)s->m + (size_t)v[NORM_VPT] - 1) /
                                                                   (size_t)v[NORM_VPT]);
    local[1] = local[2] = 1;
    return true;
}

/* (count, mean, M2) per work-item: an int and two floats */
#define STATS_BYTES (sizeof(cl_int) + 2 * sizeof(cl_float))
/* (sum dy, sum dy * xhat) per work-item */
#define DSUMS_BYTES (2 * sizeof(cl_float))

static bool stats_local(const int *v, const void *shape, const clsynth_klimits *lim, size_t local[3])
{
    return local_of(v, shape, lim, local, STATS_BYTES);
}

static bool dsums_local(const int *v, const void *shape, const clsynth_klimits *lim, size_t local[3])
{
    return local_of(v, shape, lim, local, DSUMS_BYTES);
}

static size_t stats_lmem(const int *v, const void *shape, const size_t local[3])
{
    (void)v;
    (void)shape;
    return local[0] * STATS_BYTES;
}

static size_t dsums_lmem(const int *v, const void *shape, const size_t local[3])
{
    (void)v;
    (void)shape;
    return local[0] * DSUMS_BYTES;
}

#define NORM_PARAMS                                                                                        \
    {                                                                                                      \
        { .name = "NORM_VPT", .kind = CLSYNTH_K_HOST, .n = 7, .values = { 8, 1, 2, 4, 16, 32, 64 }, .def = 8 }, \
        { .name = "LOCAL", .kind = CLSYNTH_K_LOCAL0, .n = 7, .values = { 0, 16, 32, 64, 128, 256, 512 }, .def = 0 }, \
    }

const clsynth_kdef clsynth_kdef_norm_partial_stats = {
    .key = "norm_partial_stats", .op = "clsynth_batch_norm / clsynth_instance_norm", .file = "norm.cl",
    .kernels = { "norm_partial_stats" }, .dims = 1, .backward = false, .n_params = 2, .params = NORM_PARAMS,
    .shape_size = sizeof(clsynth_norm_shape), .format = norm_format, .parse = norm_parse,
    .valid = norm_valid, .local_size = stats_local, .local_mem = stats_lmem,
    .test_shapes = test_shapes, .n_test_shapes = 3,
    .bench_shapes = bench_stats, .n_bench_shapes = 2,
    .setup = norm_setup, .run = norm_run,
};

const clsynth_kdef clsynth_kdef_norm_partial_dsums = {
    .key = "norm_partial_dsums", .op = "clsynth_batch_norm / clsynth_instance_norm (backward)", .file = "norm.cl",
    .kernels = { "norm_partial_dsums" }, .dims = 1, .backward = true, .n_params = 2, .params = NORM_PARAMS,
    .shape_size = sizeof(clsynth_norm_shape), .format = norm_format, .parse = norm_parse,
    .valid = norm_valid, .local_size = dsums_local, .local_mem = dsums_lmem,
    .test_shapes = test_shapes, .n_test_shapes = 3,
    .bench_shapes = bench_dsums, .n_bench_shapes = 1,
    .setup = norm_setup, .run = norm_run,
};
