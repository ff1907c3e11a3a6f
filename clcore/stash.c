/* Half-precision storage of one activation (kernels/half.cl): the moves
 * between float and half storage that clsynth_stash_newer_as_half
 * (clcore/autograd.c) and the backward make. A half tensor keeps its shape,
 * name and place on the activation list; only its storage changes: numel * 2
 * bytes of halves and numel / 16 bytes of exponents (t->half_exp) instead of
 * numel * 4 bytes of floats. */
#include <stdbool.h>
#include <stdio.h>

#include "clcore/launch.h"
#include "clcore/program.h"
#include "clcore/tensor.h"

#define HALF_FILE "half.cl"

int clsynth_half_storage_check(clsynth_ctx *ctx, const char *what)
{
    /* kernels/half.cl needs only core OpenCL C 1.2 (vload_half,
     * vstore_half_rte); the gate on cl_khr_fp16 follows issue 14's wording
     * ("where a device reports cl_khr_fp16 ... devices without it stay fp32") */
    if (ctx->dev.fp16)
        return 0;
    return clsynth_ctx_fail(ctx, "%s: the device '%s' (%s) does not report cl_khr_fp16, so half-precision storage of "
                                 "activations is not offered there; train without it (activations stay float)",
                            what, ctx->dev.name, ctx->dev.platform_name);
}

#define HALF_RUN 16 /* elements per scale exponent (kernels/half.cl) */

static size_t runs_of(size_t numel) { return (numel + HALF_RUN - 1) / HALF_RUN; }

/* half_store (float t -> halves hb, exponents eb) or half_load (hb, eb ->
 * float block f): one work-item per run of HALF_RUN elements. */
static int convert(clsynth_ctx *ctx, bool store, const clsynth_tensor *t, cl_mem hb, cl_mem eb, cl_mem f)
{
    const char *kname = store ? "half_store" : "half_load";
    cl_kernel k = clsynth_kernel_get(ctx, HALF_FILE, kname, NULL);
    if (!k)
        return -1;
    clsynth_args a = clsynth_args_begin(ctx, k, kname);
    if (store) {
        clsynth_arg_mem(&a, t->mem);
        clsynth_arg_int(&a, (int)t->off);
        clsynth_arg_mem(&a, hb);
        clsynth_arg_mem(&a, eb);
    } else {
        clsynth_arg_mem(&a, hb);
        clsynth_arg_mem(&a, eb);
        clsynth_arg_mem(&a, f);
        clsynth_arg_int(&a, 0); /* a fresh block */
    }
    clsynth_arg_int(&a, (int)t->numel);
    size_t g = runs_of(t->numel);
    return clsynth_launch(&a, 1, &g, NULL, 0, NULL);
}

int clsynth_tensor_to_half(clsynth_ctx *ctx, clsynth_tensor *t)
{
    if (ctx->failed || !t)
        return -1;
    if (t->flags & CLSYNTH_T_HALF)
        return 0;
    if (!t->block || (t->flags & (CLSYNTH_T_VIEW | CLSYNTH_T_PERSISTENT)))
        return clsynth_ctx_fail(ctx, "tensor '%s': only an activation that owns its memory can be stored as half "
                                     "(this one is a view or persistent)", t->name);
    if (clsynth_half_storage_check(ctx, "half storage"))
        return -1;
    char name[64];
    snprintf(name, sizeof name, "half(%.50s)", t->name);
    struct clsynth_block *h = clsynth_pool_get(ctx, t->numel * sizeof(cl_half), name); /* (numel) halves */
    snprintf(name, sizeof name, "half exp(%.46s)", t->name);
    struct clsynth_block *e = h ? clsynth_pool_get(ctx, runs_of(t->numel), name) : NULL; /* (numel / 16) bytes */
    if (!e) {
        clsynth_pool_put(ctx, h);
        return -1;
    }
    /* the float block returns to the pool at once: the in-order queue runs
     * whatever reuses it after this conversion has read it */
    if (convert(ctx, true, t, clsynth_block_mem(h), clsynth_block_mem(e), NULL)) {
        clsynth_pool_put(ctx, h);
        clsynth_pool_put(ctx, e);
        return -1;
    }
    clsynth_pool_put(ctx, t->block);
    t->block = h;
    t->half_exp = e;
    t->mem = clsynth_block_mem(h);
    t->flags |= CLSYNTH_T_HALF | CLSYNTH_T_STASHED;
    /* views of t now point at the half block: an op that read one would fail
     * its check (clsynth_tensor_readable), not read a recycled float block */
    for (clsynth_tensor *v = ctx->live; v; v = v->next_live)
        if (v->base == t)
            v->mem = t->mem;
    return 0;
}

int clsynth_tensor_to_float(clsynth_ctx *ctx, clsynth_tensor *t)
{
    if (ctx->failed || !t)
        return -1;
    if (t->flags & CLSYNTH_T_GONE)
        return clsynth_tensor_readable(ctx, t, "the backward");
    if (!(t->flags & CLSYNTH_T_HALF))
        return 0;
    struct clsynth_block *f = clsynth_pool_get(ctx, t->numel * sizeof(float), t->name); /* (numel) floats */
    if (!f)
        return -1;
    if (convert(ctx, false, t, t->mem, clsynth_block_mem(t->half_exp), clsynth_block_mem(f))) {
        clsynth_pool_put(ctx, f);
        return -1;
    }
    clsynth_pool_put(ctx, t->block);
    clsynth_pool_put(ctx, t->half_exp);
    t->half_exp = NULL;
    t->block = f;
    t->mem = clsynth_block_mem(f);
    t->off = 0;
    t->flags &= ~CLSYNTH_T_HALF;
    for (clsynth_tensor *v = ctx->live; v; v = v->next_live)
        if (v->base == t)
            v->mem = t->mem; /* a view's offset is relative to its base's block */
    return 0;
}

void clsynth_tensor_drop_value(clsynth_ctx *ctx, clsynth_tensor *t)
{
    if (!t->block || (t->flags & (CLSYNTH_T_HALF | CLSYNTH_T_VIEW | CLSYNTH_T_PERSISTENT)) ||
        !(t->flags & CLSYNTH_T_STASHED))
        return;
    clsynth_pool_put(ctx, t->block);
    t->block = NULL;
    t->flags |= CLSYNTH_T_GONE;
}

int clsynth_tensor_readable(clsynth_ctx *ctx, const clsynth_tensor *t, const char *reader)
{
    const clsynth_tensor *owner = t->base ? t->base : t;
    if (owner->flags & CLSYNTH_T_GONE)
        return clsynth_ctx_fail(ctx, "%s reads tensor '%s', whose value the backward freed after what it planned as "
                                     "its last reader ('%s': a backward reads more than its node declares)",
                                reader, t->name, owner->name);
    if (!(owner->flags & CLSYNTH_T_HALF))
        return 0;
    return clsynth_ctx_fail(ctx, "%s reads tensor '%s', whose memory is stored as half for the backward "
                                 "(clsynth_stash_newer_as_half was told that only the backward reads '%s' "
                                 "after that point; keep it there)",
                            reader, t->name, owner->name);
}
