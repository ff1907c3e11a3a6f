/* Deterministic reductions over subsets of the (N, C, H, W) dims (see reduce.h). */
#include "clcore/reduce.h"

#include <stdio.h>

#include "clcore/launch.h"
#include "clcore/program.h"
#include "clcore/kconfig.h"
#include "clcore/kdefs.h"

#define SMALL_R 64          /* reduced sizes up to this use one serial item per output */
#define ITEMS_PER_THREAD 16 /* target elements per work-item before adding work-groups */
#define MAX_GROUPS 1024     /* work-groups per output in the first pass */

/* Kept and reduced index spaces, each at most two runs of dims (reduce.cl). */
typedef struct layout {
    size_t K, R;
    int kb, ksa, ksb;
    int rb, rsa, rsb;
} layout;

static void runs_to(const long size[2], const long stride[2], int nruns, size_t *total, int *b, int *sa, int *sb)
{
    if (nruns == 0) {
        *total = 1;
        *b = 1, *sa = 0, *sb = 0;
    } else if (nruns == 1) {
        *total = (size_t)size[0];
        *b = (int)size[0], *sa = 0, *sb = (int)stride[0];
    } else {
        *total = (size_t)size[0] * (size_t)size[1];
        *b = (int)size[1], *sa = (int)stride[0], *sb = (int)stride[1];
    }
}

static int plan(clsynth_ctx *ctx, const clsynth_tensor *x, const clsynth_tensor *out, layout *lo)
{
    const int xd[4] = { x->n, x->c, x->h, x->w };
    const int od[4] = { out->n, out->c, out->h, out->w };
    long stride[4];
    stride[3] = 1;
    for (int d = 2; d >= 0; d--)
        stride[d] = stride[d + 1] * xd[d + 1];
    /* merge consecutive dims of the same class; dims of size 1 in x drop out */
    long ksize[2] = { 1, 1 }, kstride[2] = { 0, 0 }, rsize[2] = { 1, 1 }, rstride[2] = { 0, 0 };
    int nk = 0, nr = 0, last = -1; /* last run: 0 kept, 1 reduced */
    for (int d = 0; d < 4; d++) {
        if (od[d] != xd[d] && od[d] != 1) {
            char bx[128], bo[128];
            return clsynth_ctx_fail(ctx, "reduce %s to %s: each dim of the output must equal the input's or be 1",
                                    clsynth_tensor_describe(x, bx, sizeof bx),
                                    clsynth_tensor_describe(out, bo, sizeof bo));
        }
        if (xd[d] == 1)
            continue;
        int red = od[d] == 1;
        long *sz = red ? rsize : ksize, *st = red ? rstride : kstride;
        int *cnt = red ? &nr : &nk;
        if (last == red) {
            sz[*cnt - 1] *= xd[d];
            st[*cnt - 1] = stride[d];
        } else {
            sz[*cnt] = xd[d];
            st[*cnt] = stride[d];
            (*cnt)++;
        }
        last = red;
    }
    runs_to(ksize, kstride, nk, &lo->K, &lo->kb, &lo->ksa, &lo->ksb);
    runs_to(rsize, rstride, nr, &lo->R, &lo->rb, &lo->rsa, &lo->rsb);
    return 0;
}

static int ceil_log2(size_t v)
{
    int l = 0;
    while (((size_t)1 << l) < v)
        l++;
    return l;
}

/* The work-group of reduce_groups for (K outputs, R reduced elements): the
 * "reduce_groups" descriptor (clcore/reduce_kdef.c) at the class of powers
 * of two the sizes fall in. */
static size_t groups_local(clsynth_ctx *ctx, size_t K, size_t R, clsynth_kforce *force)
{
    const clsynth_reduce_shape s = { ceil_log2(K), ceil_log2(R) };
    clsynth_kcfg cfg;
    if (clsynth_kconfig(ctx, &clsynth_kdef_reduce_groups, &s, force, &cfg))
        return 0;
    return cfg.local[0];
}

size_t clsynth_reduce_local_size(clsynth_ctx *ctx, size_t K, size_t R) { return groups_local(ctx, K, R, NULL); }

/* The arguments both kernels start with: the inputs and the map. */
static clsynth_args begin_reduce(clsynth_ctx *ctx, const char *kname, cl_mem xm, int xoff, cl_mem ym, int yoff,
                                 int map, float s)
{
    cl_kernel k = clsynth_kernel_get(ctx, "reduce.cl", kname, NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, kname);
    clsynth_arg_mem(&a, xm);
    clsynth_arg_int(&a, xoff);
    clsynth_arg_mem(&a, ym);
    clsynth_arg_int(&a, yoff);
    clsynth_arg_int(&a, map);
    clsynth_arg_float(&a, s);
    return a;
}

static int launch_small(clsynth_ctx *ctx, cl_mem xm, int xoff, cl_mem ym, int yoff, int map, float s,
                        const layout *lo, const clsynth_tensor *out, float alpha, float beta)
{
    clsynth_args a = begin_reduce(ctx, "reduce_small", xm, xoff, ym, yoff, map, s);
    CLSYNTH_ARG_INTS(&a, (int)lo->K, (int)lo->R, lo->kb, lo->ksa, lo->ksb, lo->rb, lo->rsa, lo->rsb);
    clsynth_arg_tensor(&a, out);
    clsynth_arg_float(&a, alpha);
    clsynth_arg_float(&a, beta);
    size_t g = lo->K;
    return clsynth_launch(&a, 1, &g, NULL, 0, NULL);
}

static int launch_groups(clsynth_ctx *ctx, cl_mem xm, int xoff, cl_mem ym, int yoff, int map, float s,
                         const layout *lo, size_t L, size_t G, const clsynth_tensor *dst, int final_pass,
                         float alpha, float beta)
{
    clsynth_args a = begin_reduce(ctx, "reduce_groups", xm, xoff, ym, yoff, map, s);
    CLSYNTH_ARG_INTS(&a, (int)lo->K, (int)lo->R, (int)G, lo->kb, lo->ksa, lo->ksb, lo->rb, lo->rsa, lo->rsb);
    clsynth_arg_tensor(&a, dst);
    clsynth_arg_int(&a, final_pass);
    clsynth_arg_float(&a, alpha);
    clsynth_arg_float(&a, beta);
    clsynth_arg_local(&a, L * sizeof(float));
    size_t global[2] = { G * L, lo->K }, local[2] = { L, 1 };
    return clsynth_launch(&a, 2, global, local, L * sizeof(float), NULL);
}

/* Reduces x (and y) laid out by lo into out (K elements). */
static int reduce_layout(clsynth_ctx *ctx, cl_mem xm, int xoff, cl_mem ym, int yoff, int map, float s,
                         const layout *lo, const clsynth_tensor *out, float alpha, float beta, clsynth_kforce *force)
{
    if (lo->R <= SMALL_R)
        return launch_small(ctx, xm, xoff, ym, yoff, map, s, lo, out, alpha, beta);
    size_t L = groups_local(ctx, lo->K, lo->R, force);
    if (L == 0)
        return -1;
    size_t G = (lo->R + L * ITEMS_PER_THREAD - 1) / (L * ITEMS_PER_THREAD);
    if (G > MAX_GROUPS)
        G = MAX_GROUPS;
    if (G <= 1)
        return launch_groups(ctx, xm, xoff, ym, yoff, map, s, lo, L, 1, out, 1, alpha, beta);
    if (lo->K * G > (size_t)0x7fffffff)
        return clsynth_ctx_fail(ctx, "reduce: %zu outputs x %zu partial sums exceed the 2^31 index", lo->K, G);
    /* (K, G) partial sums, then the same reduction over them */
    clsynth_tensor *part = clsynth_tensor_new(ctx, "reduce_partials", 1, 1, 1, (int)(lo->K * G));
    if (!part)
        return -1;
    int rc = launch_groups(ctx, xm, xoff, ym, yoff, map, s, lo, L, G, part, 0, 1.0f, 0.0f);
    if (rc == 0) {
        layout l2 = { lo->K, G, 1, (int)G, 0, 1, 1, 0 };
        rc = reduce_layout(ctx, part->mem, (int)part->off, part->mem, (int)part->off, CLSYNTH_MAP_ID, 0.0f,
                           &l2, out, alpha, beta, force);
    }
    /* the queue is in order: the block may be reused by later commands */
    clsynth_tensor_free(ctx, part);
    return rc;
}

static bool overlaps(const clsynth_tensor *a, const clsynth_tensor *b)
{
    return a->mem == b->mem && a->off < b->off + b->numel && b->off < a->off + a->numel;
}

int clsynth_reduce_to_forced(clsynth_ctx *ctx, const clsynth_tensor *x, const clsynth_tensor *y,
                             clsynth_reduce_map map, float s, clsynth_tensor *out, float alpha, float beta,
                             clsynth_kforce *force)
{
    if (ctx->failed || !x || !out)
        return -1;
    char bx[128], by[128], bo[128];
    bool needs_y = map == CLSYNTH_MAP_PROD || map == CLSYNTH_MAP_ABSDIFF || map == CLSYNTH_MAP_SQDIFF ||
                   map == CLSYNTH_MAP_KL;
    if (needs_y && !y)
        return clsynth_ctx_fail(ctx, "reduce of %s: map %d needs a second tensor",
                                clsynth_tensor_describe(x, bx, sizeof bx), (int)map);
    if (y && !clsynth_same_shape(x, y))
        return clsynth_ctx_fail(ctx, "reduce of %s and %s: shapes differ", clsynth_tensor_describe(x, bx, sizeof bx),
                                clsynth_tensor_describe(y, by, sizeof by));
    if (overlaps(out, x) || (y && overlaps(out, y)))
        return clsynth_ctx_fail(ctx, "reduce of %s into %s: the output overlaps an input",
                                clsynth_tensor_describe(x, bx, sizeof bx), clsynth_tensor_describe(out, bo, sizeof bo));
    layout lo;
    if (plan(ctx, x, out, &lo))
        return -1;
    if (!y)
        y = x;
    return reduce_layout(ctx, x->mem, (int)x->off, y->mem, (int)y->off, (int)map, s, &lo, out, alpha, beta, force);
}

int clsynth_reduce_to(clsynth_ctx *ctx, const clsynth_tensor *x, const clsynth_tensor *y, clsynth_reduce_map map,
                      float s, clsynth_tensor *out, float alpha, float beta)
{
    return clsynth_reduce_to_forced(ctx, x, y, map, s, out, alpha, beta, NULL);
}

int clsynth_reduce_sum_to(clsynth_ctx *ctx, const clsynth_tensor *x, clsynth_tensor *out, float alpha, float beta)
{
    return clsynth_reduce_to(ctx, x, NULL, CLSYNTH_MAP_ID, 0.0f, out, alpha, beta);
}
