/* Collectives over a pluggable transport (see clcore/comm.h): host-memory
 * wrappers with statistics, and device tensors staged through two host buckets. */
#include "clcore/comm.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int clsynth_comm_rank(const clsynth_ctx *ctx) { return ctx && ctx->comm ? ctx->comm->rank : 0; }
int clsynth_comm_size(const clsynth_ctx *ctx) { return ctx && ctx->comm ? ctx->comm->size : 1; }

/* The communicator when there is more than one rank, else NULL (nothing to do). */
static clsynth_comm *active(const clsynth_ctx *ctx) { return ctx->comm && ctx->comm->size > 1 ? ctx->comm : NULL; }

void clsynth_comm_release(clsynth_comm *c)
{
    if (!c)
        return;
    free(c->stage);
    c->stage = NULL;
    c->stage_elems = 0;
}

void clsynth_comm_reset_stats(clsynth_comm *c) { memset(&c->stats, 0, sizeof c->stats); }

static size_t type_bytes(clsynth_comm_type t) { return t == CLSYNTH_COMM_F32 ? 4 : 8; }

static const char *kind_name(clsynth_comm_kind k)
{
    return k == CLSYNTH_COMM_GRADS ? "gradients" : k == CLSYNTH_COMM_NORM ? "batch-norm sums" : "model state";
}

static int transport_fail(clsynth_ctx *ctx, const clsynth_comm *c, const char *op, clsynth_comm_kind kind,
                          size_t bytes)
{
    return clsynth_ctx_fail(ctx, "%s of %zu bytes (%s) failed on rank %d of %d: %s", op, bytes, kind_name(kind),
                            c->rank, c->size, c->err[0] ? c->err : "no message from the transport");
}

/* ---- the transport calls, counted ---- */

static int wire_allreduce(clsynth_ctx *ctx, clsynth_comm *c, void *buf, size_t count, clsynth_comm_type type,
                          clsynth_comm_kind kind)
{
    const size_t bytes = count * type_bytes(type);
    c->err[0] = 0;
    double t0 = now_s();
    int rc = c->ops->allreduce_sum(c, buf, count, type);
    c->stats.wire_seconds[kind] += now_s() - t0;
    c->stats.calls[kind]++;
    c->stats.bytes[kind] += bytes;
    return rc ? transport_fail(ctx, c, "all-reduce", kind, bytes) : 0;
}

static int wire_broadcast(clsynth_ctx *ctx, clsynth_comm *c, void *buf, size_t bytes, int root,
                          clsynth_comm_kind kind)
{
    c->err[0] = 0;
    double t0 = now_s();
    int rc = c->ops->broadcast(c, buf, bytes, root);
    c->stats.wire_seconds[kind] += now_s() - t0;
    c->stats.calls[kind]++;
    c->stats.bytes[kind] += bytes;
    return rc ? transport_fail(ctx, c, "broadcast", kind, bytes) : 0;
}

/* ---- host memory ---- */

int clsynth_comm_allreduce_sum(clsynth_ctx *ctx, void *buf, size_t count, clsynth_comm_type type,
                               clsynth_comm_kind kind)
{
    if (ctx->failed)
        return -1;
    clsynth_comm *c = active(ctx);
    if (!c || count == 0)
        return 0;
    double t0 = now_s();
    int rc = wire_allreduce(ctx, c, buf, count, type, kind);
    c->stats.seconds[kind] += now_s() - t0;
    return rc;
}

int clsynth_comm_allgather(clsynth_ctx *ctx, const void *send, void *recv, size_t bytes, clsynth_comm_kind kind)
{
    if (ctx->failed)
        return -1;
    clsynth_comm *c = ctx->comm;
    if (!c || c->size <= 1) {
        memmove(recv, send, bytes);
        return 0;
    }
    c->err[0] = 0;
    double t0 = now_s();
    int rc = c->ops->allgather(c, send, recv, bytes);
    double dt = now_s() - t0;
    c->stats.wire_seconds[kind] += dt;
    c->stats.seconds[kind] += dt;
    c->stats.calls[kind]++;
    c->stats.bytes[kind] += bytes;
    return rc ? transport_fail(ctx, c, "all-gather", kind, bytes) : 0;
}

int clsynth_comm_broadcast(clsynth_ctx *ctx, void *buf, size_t bytes, int root, clsynth_comm_kind kind)
{
    if (ctx->failed)
        return -1;
    clsynth_comm *c = active(ctx);
    if (!c || bytes == 0)
        return 0;
    double t0 = now_s();
    int rc = wire_broadcast(ctx, c, buf, bytes, root, kind);
    c->stats.seconds[kind] += now_s() - t0;
    return rc;
}

/* ---- device tensors through two host buckets ---- */

static size_t bucket_elems(const clsynth_comm *c) { return c->bucket_elems ? c->bucket_elems : CLSYNTH_COMM_BUCKET_DEFAULT; }

static float *stage(clsynth_ctx *ctx, clsynth_comm *c)
{
    size_t b = bucket_elems(c);
    if (c->stage && c->stage_elems == b)
        return c->stage;
    free(c->stage);
    c->stage = NULL;
    void *p = NULL;
    if (posix_memalign(&p, 4096, 2 * b * sizeof(float)) != 0) {
        clsynth_ctx_fail(ctx, "communication: cannot allocate 2 staging buckets of %zu floats", b);
        return NULL;
    }
    c->stage = p;
    c->stage_elems = b;
    return c->stage;
}

/* Waits for and releases *ev (if any). */
static cl_int wait_release(cl_event *ev)
{
    if (!*ev)
        return CL_SUCCESS;
    cl_int rc = clWaitForEvents(1, ev);
    clReleaseEvent(*ev);
    *ev = NULL;
    return rc;
}

int clsynth_comm_average_tensor(clsynth_ctx *ctx, clsynth_tensor *t, clsynth_comm_kind kind)
{
    if (ctx->failed || !t)
        return -1;
    clsynth_comm *c = active(ctx);
    if (!c || t->numel == 0)
        return 0;
    float *st = stage(ctx, c);
    if (!st)
        return -1;
    /* the kernels that produce t finish first: their time is not communication */
    cl_int cr = clFinish(ctx->queue);
    if (cr != CL_SUCCESS)
        return clsynth_cl_fail(ctx, "clFinish", "before gradient staging", cr);
    double t0 = now_s();
    const size_t B = bucket_elems(c), n = t->numel, nb = (n + B - 1) / B;
    const float scale = 1.0f / (float)c->size;
    cl_event ev[2] = { NULL, NULL };
    int rc = 0;
    /* In-order queue: the read of bucket i+1 into half (i+1)%2 runs after the
     * write of bucket i-1 from that half, so one half is never overwritten
     * while the device still reads it; the host touches a half only after its
     * read event. */
    cr = clEnqueueReadBuffer(ctx->queue, t->mem, CL_FALSE, t->off * sizeof(float), (n < B ? n : B) * sizeof(float),
                             st, 0, NULL, &ev[0]);
    if (cr != CL_SUCCESS) {
        rc = clsynth_cl_fail(ctx, "clEnqueueReadBuffer", "gradient staging", cr);
        goto done;
    }
    for (size_t i = 0; i < nb; i++) {
        const size_t off = i * B, len = n - off < B ? n - off : B;
        float *h = st + (i % 2) * B;
        if ((cr = wait_release(&ev[i % 2])) != CL_SUCCESS) {
            rc = clsynth_cl_fail(ctx, "clWaitForEvents", "gradient staging", cr);
            goto done;
        }
        if (i + 1 < nb) {
            const size_t noff = off + B, nlen = n - noff < B ? n - noff : B;
            cr = clEnqueueReadBuffer(ctx->queue, t->mem, CL_FALSE, (t->off + noff) * sizeof(float),
                                     nlen * sizeof(float), st + ((i + 1) % 2) * B, 0, NULL, &ev[(i + 1) % 2]);
            if (cr != CL_SUCCESS) {
                rc = clsynth_cl_fail(ctx, "clEnqueueReadBuffer", "gradient staging", cr);
                goto done;
            }
        }
        if ((rc = wire_allreduce(ctx, c, h, len, CLSYNTH_COMM_F32, kind)) != 0)
            goto done;
        for (size_t j = 0; j < len; j++)
            h[j] *= scale;
        cr = clEnqueueWriteBuffer(ctx->queue, t->mem, CL_FALSE, (t->off + off) * sizeof(float),
                                  len * sizeof(float), h, 0, NULL, NULL);
        if (cr != CL_SUCCESS) {
            rc = clsynth_cl_fail(ctx, "clEnqueueWriteBuffer", "gradient staging", cr);
            goto done;
        }
    }
done:
    /* never leave a transfer in flight on the staging memory */
    wait_release(&ev[0]);
    wait_release(&ev[1]);
    cr = clFinish(ctx->queue);
    if (cr != CL_SUCCESS && rc == 0)
        rc = clsynth_cl_fail(ctx, "clFinish", "gradient staging", cr);
    c->stats.seconds[kind] += now_s() - t0;
    return rc;
}

int clsynth_comm_broadcast_tensor(clsynth_ctx *ctx, clsynth_tensor *t, int root, clsynth_comm_kind kind)
{
    if (ctx->failed || !t)
        return -1;
    clsynth_comm *c = active(ctx);
    if (!c || t->numel == 0)
        return 0;
    float *h = stage(ctx, c);
    if (!h)
        return -1;
    double t0 = now_s();
    const size_t B = bucket_elems(c);
    int rc = 0;
    for (size_t off = 0; off < t->numel && rc == 0; off += B) {
        const size_t len = t->numel - off < B ? t->numel - off : B;
        const size_t at = (t->off + off) * sizeof(float);
        cl_int cr = CL_SUCCESS;
        if (c->rank == root)
            cr = clEnqueueReadBuffer(ctx->queue, t->mem, CL_TRUE, at, len * sizeof(float), h, 0, NULL, NULL);
        if (cr != CL_SUCCESS) {
            rc = clsynth_cl_fail(ctx, "clEnqueueReadBuffer", "broadcast staging", cr);
            break;
        }
        if ((rc = wire_broadcast(ctx, c, h, len * sizeof(float), root, kind)) != 0)
            break;
        if (c->rank != root)
            cr = clEnqueueWriteBuffer(ctx->queue, t->mem, CL_TRUE, at, len * sizeof(float), h, 0, NULL, NULL);
        if (cr != CL_SUCCESS)
            rc = clsynth_cl_fail(ctx, "clEnqueueWriteBuffer", "broadcast staging", cr);
    }
    c->stats.seconds[kind] += now_s() - t0;
    return rc;
}

/* ---- parameter groups ---- */

int clsynth_comm_average_grads(clsynth_ctx *ctx, clsynth_param_group *g)
{
    if (ctx->failed)
        return -1;
    if (!active(ctx))
        return 0;
    return clsynth_comm_average_tensor(ctx, g->flat_grad, CLSYNTH_COMM_GRADS);
}

int clsynth_comm_broadcast_buffers(clsynth_ctx *ctx, clsynth_param_group *g, int root)
{
    if (ctx->failed)
        return -1;
    clsynth_comm *c = active(ctx);
    if (!c || g->n_buffers == 0)
        return 0;
    size_t total = 0;
    for (int i = 0; i < g->n_buffers; i++)
        total += g->buffers[i]->numel;
    float *h = malloc(total * sizeof *h);
    if (!h)
        return clsynth_ctx_fail(ctx, "broadcast of the buffers of %s: out of host memory (%zu floats)", g->name,
                                total);
    double t0 = now_s();
    int rc = 0;
    size_t off = 0;
    /* one message for all: many buffers are a few floats each */
    for (int i = 0; i < g->n_buffers && c->rank == root; i++) {
        const clsynth_tensor *b = g->buffers[i];
        cl_int cr = clEnqueueReadBuffer(ctx->queue, b->mem, CL_FALSE, b->off * sizeof(float),
                                        b->numel * sizeof(float), h + off, 0, NULL, NULL);
        if (cr != CL_SUCCESS) {
            rc = clsynth_cl_fail(ctx, "clEnqueueReadBuffer", b->name, cr);
            break;
        }
        off += b->numel;
    }
    cl_int cr = clFinish(ctx->queue);
    if (rc == 0 && cr != CL_SUCCESS)
        rc = clsynth_cl_fail(ctx, "clFinish", "buffer broadcast", cr);
    if (rc == 0)
        rc = wire_broadcast(ctx, c, h, total * sizeof *h, root, CLSYNTH_COMM_STATE);
    off = 0;
    for (int i = 0; rc == 0 && i < g->n_buffers && c->rank != root; i++) {
        const clsynth_tensor *b = g->buffers[i];
        cr = clEnqueueWriteBuffer(ctx->queue, b->mem, CL_FALSE, b->off * sizeof(float), b->numel * sizeof(float),
                                  h + off, 0, NULL, NULL);
        if (cr != CL_SUCCESS)
            rc = clsynth_cl_fail(ctx, "clEnqueueWriteBuffer", b->name, cr);
        off += b->numel;
    }
    cr = clFinish(ctx->queue); /* the writes read h */
    if (rc == 0 && cr != CL_SUCCESS)
        rc = clsynth_cl_fail(ctx, "clFinish", "buffer broadcast", cr);
    free(h);
    c->stats.seconds[CLSYNTH_COMM_STATE] += now_s() - t0;
    return rc;
}

int clsynth_comm_broadcast_group(clsynth_ctx *ctx, clsynth_param_group *g, int root)
{
    if (ctx->failed)
        return -1;
    if (!active(ctx))
        return 0;
    int64_t step = g->step;
    if (clsynth_comm_broadcast_tensor(ctx, g->flat_data, root, CLSYNTH_COMM_STATE) ||
        clsynth_comm_broadcast_tensor(ctx, g->adam_m, root, CLSYNTH_COMM_STATE) ||
        clsynth_comm_broadcast_tensor(ctx, g->adam_v, root, CLSYNTH_COMM_STATE) ||
        clsynth_comm_broadcast_buffers(ctx, g, root) ||
        clsynth_comm_broadcast(ctx, &step, sizeof step, root, CLSYNTH_COMM_STATE))
        return -1;
    g->step = (long)step;
    return 0;
}

/* ---- consistency ---- */

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static void fnv(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= FNV_PRIME;
    }
}

static int hash_tensor(clsynth_ctx *ctx, const clsynth_tensor *t, float *buf, size_t B, uint64_t *h)
{
    for (size_t off = 0; off < t->numel; off += B) {
        const size_t len = t->numel - off < B ? t->numel - off : B;
        cl_int cr = clEnqueueReadBuffer(ctx->queue, t->mem, CL_TRUE, (t->off + off) * sizeof(float),
                                        len * sizeof(float), buf, 0, NULL, NULL);
        if (cr != CL_SUCCESS)
            return clsynth_cl_fail(ctx, "clEnqueueReadBuffer", t->name, cr);
        fnv(h, buf, len * sizeof(float));
    }
    return 0;
}

int clsynth_group_hash(clsynth_ctx *ctx, clsynth_param_group *g, uint64_t *hash)
{
    if (ctx->failed)
        return -1;
    const size_t B = (size_t)1 << 20;
    float *buf = malloc(B * sizeof *buf);
    if (!buf)
        return clsynth_ctx_fail(ctx, "hash of group %s: out of host memory", g->name);
    uint64_t h = FNV_OFFSET;
    int64_t step = g->step;
    fnv(&h, &step, sizeof step);
    int rc = hash_tensor(ctx, g->flat_data, buf, B, &h) || hash_tensor(ctx, g->adam_m, buf, B, &h) ||
             hash_tensor(ctx, g->adam_v, buf, B, &h);
    for (int i = 0; rc == 0 && i < g->n_buffers; i++)
        rc = hash_tensor(ctx, g->buffers[i], buf, B, &h);
    free(buf);
    *hash = h;
    return rc ? -1 : 0;
}

int clsynth_comm_check_same(clsynth_ctx *ctx, uint64_t value, const char *what)
{
    if (ctx->failed)
        return -1;
    clsynth_comm *c = active(ctx);
    if (!c)
        return 0;
    uint64_t *all = malloc((size_t)c->size * sizeof *all);
    if (!all)
        return clsynth_ctx_fail(ctx, "check of %s: out of host memory", what);
    int rc = clsynth_comm_allgather(ctx, &value, all, sizeof value, CLSYNTH_COMM_STATE);
    for (int r = 1; rc == 0 && r < c->size; r++)
        if (all[r] != all[0])
            rc = clsynth_ctx_fail(ctx, "the ranks disagree on %s: rank %d has %016" PRIx64 ", rank 0 %016" PRIx64
                                       " (states must stay identical on every rank)",
                                  what, r, all[r], all[0]);
    free(all);
    return rc;
}
