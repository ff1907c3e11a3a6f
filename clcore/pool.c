/* Device-memory pool: exact-size free lists (sizes rounded up to 256 bytes),
 * so a training step that repeats the same shapes allocates nothing after the
 * first step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/tensor.h"

#define POOL_ROUND 256

typedef struct clsynth_block {
    cl_mem mem;
    size_t bytes;
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
        ctx->pool->stats.peak_bytes_reserved = ctx->pool->stats.bytes_reserved;
        ctx->pool->stats.largest_block = 0;
    }
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
    for (clsynth_block **pp = &p->free_list; *pp; pp = &(*pp)->next) {
        if ((*pp)->bytes == want) {
            clsynth_block *b = *pp;
            *pp = b->next;
            b->next = NULL;
            p->stats.bytes_in_use += b->bytes;
            if (b->bytes > p->stats.largest_block)
                p->stats.largest_block = b->bytes;
            return b;
        }
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
    p->stats.bytes_in_use += want;
    if (p->stats.bytes_reserved > p->stats.peak_bytes_reserved)
        p->stats.peak_bytes_reserved = p->stats.bytes_reserved;
    if (want > p->stats.largest_block)
        p->stats.largest_block = want;
    return b;
}

void clsynth_pool_put(clsynth_ctx *ctx, clsynth_block *b)
{
    if (!b)
        return;
    clsynth_pool *p = ctx->pool;
    p->stats.bytes_in_use -= b->bytes;
    b->next = p->free_list;
    p->free_list = b;
}
