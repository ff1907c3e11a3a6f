/* Device tensors and the activation list. */
#include "clcore/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/launch.h"
#include "clcore/program.h"

static void link_live(clsynth_ctx *ctx, clsynth_tensor *t)
{
    t->prev_live = NULL;
    t->next_live = ctx->live;
    if (ctx->live)
        ctx->live->prev_live = t;
    ctx->live = t;
}

static clsynth_tensor *make(clsynth_ctx *ctx, const char *name, int n, int c, int h, int w,
                            unsigned flags)
{
    if (ctx->failed)
        return NULL;
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0) {
        clsynth_ctx_fail(ctx, "tensor '%s': invalid shape (%d, %d, %d, %d)", name, n, c, h, w);
        return NULL;
    }
    size_t numel = (size_t)n * (size_t)c * (size_t)h * (size_t)w;
    if (numel > (size_t)0x7fffffff) {
        clsynth_ctx_fail(ctx, "tensor '%s': %zu elements exceed the 2^31 kernels index", name, numel);
        return NULL;
    }
    clsynth_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        clsynth_ctx_fail(ctx, "out of host memory");
        return NULL;
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = 4;
    t->n = n;
    t->c = c;
    t->h = h;
    t->w = w;
    t->numel = numel;
    t->flags = flags;
    t->block = clsynth_pool_get(ctx, numel * sizeof(float), t->name);
    if (!t->block) {
        free(t);
        return NULL;
    }
    t->mem = clsynth_block_mem(t->block);
    t->serial = ++ctx->tensor_serial;
    if (!(flags & CLSYNTH_T_PERSISTENT))
        link_live(ctx, t);
    return t;
}

clsynth_tensor *clsynth_tensor_new(clsynth_ctx *ctx, const char *name, int n, int c, int h, int w)
{
    return make(ctx, name, n, c, h, w, 0);
}

clsynth_tensor *clsynth_tensor_new_persistent(clsynth_ctx *ctx, const char *name, int n, int c, int h, int w)
{
    return make(ctx, name, n, c, h, w, CLSYNTH_T_PERSISTENT);
}

clsynth_tensor *clsynth_tensor_zeros_like(clsynth_ctx *ctx, const char *name, const clsynth_tensor *t)
{
    if (!t)
        return NULL;
    clsynth_tensor *z = clsynth_tensor_new(ctx, name, t->n, t->c, t->h, t->w);
    if (z && clsynth_tensor_fill(ctx, z, 0.0f))
        return NULL;
    return z;
}

static void unlink_live(clsynth_ctx *ctx, clsynth_tensor *t)
{
    if (t->prev_live)
        t->prev_live->next_live = t->next_live;
    else if (ctx->live == t)
        ctx->live = t->next_live;
    else
        return; /* not on the list */
    if (t->next_live)
        t->next_live->prev_live = t->prev_live;
    t->next_live = t->prev_live = NULL;
}

void clsynth_tensor_keep(clsynth_ctx *ctx, clsynth_tensor *t)
{
    if (!t || (t->flags & CLSYNTH_T_PERSISTENT))
        return;
    unlink_live(ctx, t);
    t->flags |= CLSYNTH_T_PERSISTENT;
    if (t->grad && !(t->grad->flags & CLSYNTH_T_PARAM))
        clsynth_tensor_keep(ctx, t->grad);
}

static void destroy(clsynth_ctx *ctx, clsynth_tensor *t)
{
    if (t->grad && !(t->grad->flags & CLSYNTH_T_PARAM) && (t->grad->flags & CLSYNTH_T_PERSISTENT))
        destroy(ctx, t->grad); /* a kept tensor owns its gradient */
    if (t->block)
        clsynth_pool_put(ctx, t->block);
    clsynth_pool_put(ctx, t->half_exp);
    free(t);
}

void clsynth_tensor_free(clsynth_ctx *ctx, clsynth_tensor *t)
{
    if (!t)
        return;
    if (!(t->flags & CLSYNTH_T_PERSISTENT))
        unlink_live(ctx, t);
    destroy(ctx, t);
}

/* An activation leaves the list and gives its block back. */
static void release_one(clsynth_ctx *ctx, clsynth_tensor *t)
{
    unlink_live(ctx, t);
    if (t->block && ctx->release_hook && !ctx->failed && !(t->flags & CLSYNTH_T_HALF))
        ctx->release_hook(ctx, t, ctx->release_hook_user);
    if (t->block)
        clsynth_pool_put(ctx, t->block);
    clsynth_pool_put(ctx, t->half_exp);
    free(t);
}

void clsynth_tensor_release(clsynth_ctx *ctx, clsynth_tensor *t)
{
    if (!t || (t->flags & CLSYNTH_T_PERSISTENT))
        return;
    clsynth_tensor *g = t->grad;
    if (g && !(g->flags & (CLSYNTH_T_PERSISTENT | CLSYNTH_T_PARAM)))
        release_one(ctx, g);
    release_one(ctx, t);
}

void clsynth_release_newer(clsynth_ctx *ctx, unsigned long mark, clsynth_tensor *const *keep, int n_keep)
{
    clsynth_tensor *t = ctx->live;
    while (t && t->serial > mark) { /* the newest are at the head */
        clsynth_tensor *next = t->next_live;
        bool kept = (t->flags & CLSYNTH_T_GRAD) != 0; /* freed with its tensor */
        for (int k = 0; k < n_keep && !kept; k++)
            kept = keep[k] && (keep[k] == t || keep[k]->base == t || keep[k]->grad == t);
        if (!kept)
            clsynth_tensor_release(ctx, t);
        t = next;
    }
}

void clsynth_release_activations(clsynth_ctx *ctx)
{
    /* Gradients of activations are activations themselves (on the list). */
    clsynth_tensor *t = ctx->live;
    ctx->live = NULL;
    while (t) {
        clsynth_tensor *next = t->next_live;
        if (t->block && ctx->release_hook && !ctx->failed && !(t->flags & CLSYNTH_T_HALF))
            ctx->release_hook(ctx, t, ctx->release_hook_user);
        if (t->block)
            clsynth_pool_put(ctx, t->block);
        clsynth_pool_put(ctx, t->half_exp);
        free(t);
        t = next;
    }
}

clsynth_tensor *clsynth_tensor_view(clsynth_ctx *ctx, clsynth_tensor *t, const char *name, size_t start,
                                    int n, int c, int h, int w)
{
    if (!t || ctx->failed)
        return NULL;
    size_t numel = (size_t)n * (size_t)c * (size_t)h * (size_t)w;
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || start + numel > t->numel) {
        clsynth_ctx_fail(ctx, "view '%s' of tensor '%s': elements [%zu, %zu) of shape (%d, %d, %d, %d) "
                              "do not fit in its %zu elements", name, t->name, start, start + numel,
                         n, c, h, w, t->numel);
        return NULL;
    }
    clsynth_tensor *v = calloc(1, sizeof *v);
    if (!v) {
        clsynth_ctx_fail(ctx, "out of host memory");
        return NULL;
    }
    snprintf(v->name, sizeof v->name, "%s", name);
    v->ndim = 4;
    v->n = n;
    v->c = c;
    v->h = h;
    v->w = w;
    v->numel = numel;
    v->mem = t->mem;
    v->off = t->off + start;
    v->flags = CLSYNTH_T_VIEW;
    v->base = t->base ? t->base : t;
    v->serial = ++ctx->tensor_serial;
    link_live(ctx, v);
    return v;
}

clsynth_tensor *clsynth_tensor_batch_slice(clsynth_ctx *ctx, clsynth_tensor *t, int first, int count)
{
    if (!t)
        return NULL;
    if (first < 0 || count <= 0 || first + count > t->n) {
        clsynth_ctx_fail(ctx, "batch slice [%d, %d) of tensor '%s' with N = %d", first, first + count,
                         t->name, t->n);
        return NULL;
    }
    char name[64];
    snprintf(name, sizeof name, "%.40s[%d:%d]", t->name, first, first + count);
    size_t per = (size_t)t->c * CLSYNTH_HW(t);
    return clsynth_tensor_view(ctx, t, name, per * (size_t)first, count, t->c, t->h, t->w);
}

int clsynth_tensor_upload(clsynth_ctx *ctx, clsynth_tensor *t, const float *host)
{
    if (!t || ctx->failed)
        return -1;
    if (clsynth_tensor_readable(ctx, t, "tensor upload"))
        return -1;
    CLSYNTH_CL(ctx, clEnqueueWriteBuffer(ctx->queue, t->mem, CL_TRUE, t->off * sizeof(float),
                                         t->numel * sizeof(float), host, 0, NULL, NULL), NULL);
    return 0;
}

int clsynth_tensor_download(clsynth_ctx *ctx, const clsynth_tensor *t, float *host)
{
    if (!t || ctx->failed)
        return -1;
    if (clsynth_tensor_readable(ctx, t, "tensor download"))
        return -1;
    CLSYNTH_CL(ctx, clEnqueueReadBuffer(ctx->queue, t->mem, CL_TRUE, t->off * sizeof(float),
                                        t->numel * sizeof(float), host, 0, NULL, NULL), NULL);
    return 0;
}

int clsynth_tensor_fill(clsynth_ctx *ctx, clsynth_tensor *t, float value)
{
    if (!t || ctx->failed)
        return -1;
    if (clsynth_tensor_readable(ctx, t, "tensor fill"))
        return -1;
    cl_kernel k = clsynth_kernel_get(ctx, "tensor.cl", "tensor_fill", NULL);
    if (!k)
        return -1;
    clsynth_args a = clsynth_args_begin(ctx, k, "tensor_fill");
    clsynth_arg_tensor(&a, t);
    clsynth_arg_int(&a, (int)t->numel);
    clsynth_arg_float(&a, value);
    size_t g = t->numel;
    return clsynth_launch(&a, 1, &g, NULL, 0, NULL);
}

int clsynth_tensor_copy(clsynth_ctx *ctx, clsynth_tensor *dst, const clsynth_tensor *src)
{
    if (!dst || !src || ctx->failed)
        return -1;
    if (dst->numel != src->numel)
        return clsynth_ctx_fail(ctx, "copy from '%s' (%zu elements) to '%s' (%zu elements)", src->name,
                                src->numel, dst->name, dst->numel);
    if (clsynth_tensor_readable(ctx, src, "tensor copy") || clsynth_tensor_readable(ctx, dst, "tensor copy"))
        return -1;
    CLSYNTH_CL(ctx, clEnqueueCopyBuffer(ctx->queue, src->mem, dst->mem, src->off * sizeof(float),
                                        dst->off * sizeof(float), src->numel * sizeof(float), 0, NULL,
                                        NULL), NULL);
    return 0;
}

clsynth_tensor *clsynth_tensor_from_host(clsynth_ctx *ctx, const char *name, int n, int c, int h, int w,
                                         const float *host)
{
    clsynth_tensor *t = clsynth_tensor_new(ctx, name, n, c, h, w);
    if (t && clsynth_tensor_upload(ctx, t, host))
        return NULL;
    return t;
}

bool clsynth_same_shape(const clsynth_tensor *a, const clsynth_tensor *b)
{
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w;
}

const char *clsynth_tensor_describe(const clsynth_tensor *t, char *buf, size_t len)
{
    snprintf(buf, len, "'%s' (%d, %d, %d, %d)", t->name, t->n, t->c, t->h, t->w);
    return buf;
}
