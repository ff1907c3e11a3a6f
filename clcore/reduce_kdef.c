/* Descriptor of the work-group reduction kernel (clcore/reduce.c,
 * kernels/reduce.cl). See clcore/kdef.h. */
#include <stdio.h>

#include "clcore/kdefs.h"
#include "clcore/reduce.h"

static int reduce_format(const void *shape, char *key, size_t len)
{
    const clsynth_reduce_shape *s = shape;
    return snprintf(key, len, "k%dr%d", s->log2_k, s->log2_r);
}

static bool reduce_parse(const char *key, void *shape)
{
    clsynth_reduce_shape *s = shape;
    char tail = 0;
    return sscanf(key, "k%dr%d%c", &s->log2_k, &s->log2_r, &tail) == 2 && s->log2_k >= 0 && s->log2_r >= 0 &&
           s->log2_k + s->log2_r <= 28;
}

static const clsynth_reduce_shape test_shapes[] = { { 1, 7 }, { 3, 10 }, { 0, 14 } };
static const clsynth_reduce_shape bench_shapes[] = { { 8, 10 }, { 0, 20 } };

/* K outputs of R values each: x (1, 1, K, R) summed over its last dim; the
 * class's largest member (K = 2^k, R = 2^r) */
static int reduce_setup(clsynth_ctx *ctx, clsynth_kbench *b)
{
    const clsynth_reduce_shape *s = (const clsynth_reduce_shape *)&b->shape;
    int K = 1 << s->log2_k, R = 1 << s->log2_r;
    if (clsynth_kbench_input(ctx, b, "tune.x", 1, 1, K, R, 1, 1.0f))
        return -1;
    b->bytes = 4.0 * K * (double)R;
    return 0;
}

static clsynth_tensor *reduce_run(clsynth_ctx *ctx, clsynth_kbench *b, clsynth_kforce *force)
{
    clsynth_tensor *x = b->in[0];
    clsynth_tensor *y = clsynth_tensor_new(ctx, "tune.sum", 1, 1, x->h, 1); /* (1, 1, K, 1) */
    if (!y || clsynth_reduce_to_forced(ctx, x, NULL, CLSYNTH_MAP_ID, 0.0f, y, 1.0f, 0.0f, force))
        return NULL;
    return y;
}

/* Automatic (LOCAL 0): up to 256 items within the kernel's and the device's
 * limits and local memory (one float per item). Any size works: the tree
 * folds the part above the largest power of two in first. */
static bool reduce_local(const int *v, const void *shape, const clsynth_klimits *lim, size_t local[3])
{
    (void)shape;
    size_t l = (size_t)v[REDUCE_LOCAL];
    if (l == 0) {
        l = 256;
        if (l > lim->max_wg)
            l = lim->max_wg;
        if (l > lim->max_item[0])
            l = lim->max_item[0];
        if (l > lim->local_mem / sizeof(float))
            l = (size_t)(lim->local_mem / sizeof(float));
        if (l == 0)
            l = 1;
    }
    local[0] = l;
    local[1] = local[2] = 1;
    return true;
}

static size_t reduce_lmem(const int *v, const void *shape, const size_t local[3])
{
    (void)v;
    (void)shape;
    return local[0] * sizeof(float);
}

const clsynth_kdef clsynth_kdef_reduce_groups = {
    .key = "reduce_groups", .op = "clsynth_reduce_to", .file = "reduce.cl", .kernels = { "reduce_groups" },
    .dims = 2, .backward = false, .n_params = 1,
    .params = {
        { .name = "LOCAL", .kind = CLSYNTH_K_LOCAL0, .n = 8, .values = { 0, 16, 32, 64, 128, 256, 512, 1024 },
          .def = 0 },
    },
    .shape_size = sizeof(clsynth_reduce_shape), .format = reduce_format, .parse = reduce_parse,
    .local_size = reduce_local, .local_mem = reduce_lmem,
    .test_shapes = test_shapes, .n_test_shapes = 3,
    .bench_shapes = bench_shapes, .n_bench_shapes = 2,
    .setup = reduce_setup, .run = reduce_run,
};
