/* Device-memory pool: a free list of blocks (sizes rounded up to 256 bytes)
 * served best fit, a block at most POOL_FIT larger than asked, so a training
 * step that repeats the same shapes allocates nothing after the first step,
 * and a block freed early in backward serves a slightly smaller tensor made
 * later instead of a new allocation. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/tensor.h"

#define POOL_ROUND 256
#define POOL_FIT 0.25 /* the most a handed-out block may exceed the request, relatively */

typedef struct clsynth_block {
    cl_mem mem;
    size_t bytes;
    clsynth_pool_kind kind;     /* of its current holder (statistics only) */
    struct clsynth_block *next; /* free list link */
} clsynth_block;

typedef struct clsynth_pool {
    clsynth_block *free_list; /* all free blocks, any size */
    clsynth_pool_stats stats;
} clsynth_pool;

int clsynth_pool_create(clsynth_ctx *ctx)
{
    ctx->pool = calloc(1, sizeof *ctx->pool);
    return ctx->pool ? 0 : clsynth_ctx_fail(ctx, "out of host memory");
}

void clsynth_pool_trim(clsynth_ctx *ctx)
{
    clsynth_pool *p = ctx->pool;
    if (!p)
        return;
    while (p->free_list) {
        clsynth_block *b = p->free_list;
        p->free_list = b->next;
        p->stats.bytes_reserved -= b->bytes;
        clReleaseMemObject(b->mem);
        free(b);
    }
}

void clsynth_pool_reset_peak(clsynth_ctx *ctx)
{
    if (ctx->pool) {
        clsynth_pool_stats *s = &ctx->pool->stats;
        s->peak_bytes_reserved = s->bytes_reserved;
        s->free_at_peak_reserved = s->bytes_reserved - s->bytes_in_use;
        s->peak_bytes_in_use = s->bytes_in_use;
        memcpy(s->kind_at_peak, s->kind_in_use, sizeof s->kind_at_peak);
        s->largest_block = 0;
    }
}

const char *clsynth_pool_kind_name(clsynth_pool_kind k)
{
    static const char *const names[CLSYNTH_POOL_KINDS] = { "parameters", "parameter gradients", "Adam m and v",
                                                           "activation gradients", "im2col columns",
                                                           "activations and other" };
    return k < CLSYNTH_POOL_KINDS ? names[k] : "?";
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

static clsynth_pool_kind kind_of(const char *name)
{
    if (!name)
        return CLSYNTH_POOL_OTHER;
    if (ends_with(name, ".params"))
        return CLSYNTH_POOL_PARAMS;
    if (ends_with(name, ".grads"))
        return CLSYNTH_POOL_PARAM_GRADS;
    if (ends_with(name, ".adam_m") || ends_with(name, ".adam_v"))
        return CLSYNTH_POOL_ADAM;
    if (strncmp(name, "grad(", 5) == 0)
        return CLSYNTH_POOL_GRADS;
    if (strstr(name, "column buffer"))
        return CLSYNTH_POOL_COLUMNS;
    return CLSYNTH_POOL_OTHER;
}

/* A block goes to a holder: in-use counters and their peak. */
static void hand_out(clsynth_pool_stats *s, clsynth_block *b, const char *name)
{
    b->kind = kind_of(name);
    s->bytes_in_use += b->bytes;
    s->kind_in_use[b->kind] += b->bytes;
    if (s->bytes_in_use > s->peak_bytes_in_use) {
        s->peak_bytes_in_use = s->bytes_in_use;
        memcpy(s->kind_at_peak, s->kind_in_use, sizeof s->kind_at_peak);
    }
    if (b->bytes > s->largest_block)
        s->largest_block = b->bytes;
}

void clsynth_pool_destroy(clsynth_ctx *ctx)
{
    clsynth_pool_trim(ctx);
    free(ctx->pool);
    ctx->pool = NULL;
}

clsynth_pool_stats clsynth_pool_get_stats(const clsynth_ctx *ctx)
{
    clsynth_pool_stats s;
    memset(&s, 0, sizeof s);
    return ctx->pool ? ctx->pool->stats : s;
}

cl_mem clsynth_block_mem(const clsynth_block *b) { return b->mem; }

static void human(size_t bytes, char *buf, size_t len)
{
    if (bytes >= (1ULL << 30))
        snprintf(buf, len, "%.2f GiB", bytes / (double)(1ULL << 30));
    else
        snprintf(buf, len, "%.1f MiB", bytes / (double)(1ULL << 20));
}

clsynth_block *clsynth_pool_get(clsynth_ctx *ctx, size_t bytes, const char *name)
{
    clsynth_pool *p = ctx->pool;
    size_t want = (bytes + POOL_ROUND - 1) / POOL_ROUND * POOL_ROUND;
    if (want == 0)
        want = POOL_ROUND;
    /* best fit: the exact size, else the smallest free block within the bound */
    clsynth_block **best = NULL;
    size_t bound = want + (size_t)((double)want * POOL_FIT);
    for (clsynth_block **pp = &p->free_list; *pp; pp = &(*pp)->next) {
        size_t sz = (*pp)->bytes;
        if (sz >= want && sz <= bound && (!best || sz < (*best)->bytes)) {
            best = pp;
            if (sz == want)
                break;
        }
    }
    if (best) {
        clsynth_block *b = *best;
        *best = b->next;
        b->next = NULL;
        hand_out(&p->stats, b, name);
        return b;
    }
    char a[32], m[32], g[32];
    if (want > ctx->dev.max_alloc) {
        human(want, a, sizeof a);
        human(ctx->dev.max_alloc, m, sizeof m);
        human(ctx->dev.global_mem, g, sizeof g);
        clsynth_ctx_fail(ctx, "cannot allocate tensor '%s': %zu bytes (%s) asked for, but the device "
                              "'%s' allows at most %s per allocation (global memory %s)",
                         name, want, a, ctx->dev.name, m, g);
        return NULL;
    }
    if (ctx->dev.global_mem > 0 && p->stats.bytes_reserved + want > ctx->dev.global_mem)
        clsynth_pool_trim(ctx); /* cached free blocks first */
    if (ctx->dev.global_mem > 0 && p->stats.bytes_reserved + want > ctx->dev.global_mem) {
        char r[32];
        human(want, a, sizeof a);
        human(p->stats.bytes_reserved, r, sizeof r);
        human(ctx->dev.global_mem, g, sizeof g);
        clsynth_ctx_fail(ctx, "out of device memory: tensor '%s' needs %s more, %s are in use and the device "
                              "'%s' has %s of global memory",
                         name, a, r, ctx->dev.name, g);
        return NULL;
    }
    cl_int rc;
    cl_mem mem = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, want, NULL, &rc);
    if (rc == CL_MEM_OBJECT_ALLOCATION_FAILURE || rc == CL_OUT_OF_RESOURCES || rc == CL_OUT_OF_HOST_MEMORY) {
        /* Give cached free blocks back to the device and try once more. */
        clsynth_pool_trim(ctx);
        mem = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, want, NULL, &rc);
    }
    if (rc != CL_SUCCESS) {
        human(want, a, sizeof a);
        human(ctx->dev.max_alloc, m, sizeof m);
        human(ctx->dev.global_mem, g, sizeof g);
        clsynth_ctx_fail(ctx, "clCreateBuffer failed for tensor '%s' (%zu bytes = %s; device max "
                              "allocation %s, global memory %s, pool holds %zu bytes): %s",
                         name, want, a, m, g, p->stats.bytes_reserved, clsynth_cl_error_name(rc));
        return NULL;
    }
    clsynth_block *b = calloc(1, sizeof *b);
    if (!b) {
        clReleaseMemObject(mem);
        clsynth_ctx_fail(ctx, "out of host memory");
        return NULL;
    }
    b->mem = mem;
    b->bytes = want;
    p->stats.device_allocs++;
    p->stats.bytes_reserved += want;
    hand_out(&p->stats, b, name);
    if (p->stats.bytes_reserved > p->stats.peak_bytes_reserved) {
        p->stats.peak_bytes_reserved = p->stats.bytes_reserved;
        p->stats.free_at_peak_reserved = p->stats.bytes_reserved - p->stats.bytes_in_use;
    }
    return b;
}

void clsynth_pool_put(clsynth_ctx *ctx, clsynth_block *b)
{
    if (!b)
        return;
    clsynth_pool *p = ctx->pool;
    p->stats.bytes_in_use -= b->bytes;
    p->stats.kind_in_use[b->kind] -= b->bytes;
    b->next = p->free_list;
    p->free_list = b;
}
