/* Mapping a host-CPU device's buffers for a host library: clcore/hostmap.h. */
#include "clcore/hostmap.h"

void clsynth_hostmap_add(clsynth_hostmap *m, cl_mem mem, size_t off, size_t len, bool write)
{
    for (int i = 0; i < m->n && i < CLSYNTH_HOSTMAP_MAX; i++) {
        clsynth_hostmap_region *r = &m->r[i];
        if (r->mem == mem) {
            if (off < r->lo)
                r->lo = off;
            if (off + len > r->hi)
                r->hi = off + len;
            r->write = r->write || write;
            return;
        }
    }
    if (m->n < CLSYNTH_HOSTMAP_MAX)
        m->r[m->n] = (clsynth_hostmap_region){ mem, off, off + len, write, NULL };
    m->n++; /* counted past the end: map reports it */
}

int clsynth_hostmap_unmap(clsynth_ctx *ctx, clsynth_hostmap *m, const char *what)
{
    int rc = 0;
    for (int i = 0; i < m->n && i < CLSYNTH_HOSTMAP_MAX; i++) {
        clsynth_hostmap_region *r = &m->r[i];
        if (r->ptr) {
            cl_int e = clEnqueueUnmapMemObject(ctx->queue, r->mem, r->ptr, 0, NULL, NULL);
            r->ptr = NULL;
            if (e != CL_SUCCESS && !rc)
                rc = clsynth_cl_fail(ctx, "clEnqueueUnmapMemObject", what, e);
        }
    }
    return rc;
}

int clsynth_hostmap_map(clsynth_ctx *ctx, clsynth_hostmap *m, const char *what)
{
    if (m->n > CLSYNTH_HOSTMAP_MAX)
        return clsynth_ctx_fail(ctx, "%s: %d buffers to map, at most %d", what, m->n, CLSYNTH_HOSTMAP_MAX);
    for (int i = 0; i < m->n; i++) {
        clsynth_hostmap_region *r = &m->r[i];
        cl_int e = CL_SUCCESS;
        cl_map_flags fl = r->write ? CL_MAP_READ | CL_MAP_WRITE : CL_MAP_READ;
        r->ptr = clEnqueueMapBuffer(ctx->queue, r->mem, i == m->n - 1 ? CL_TRUE : CL_FALSE, fl,
                                    r->lo * sizeof(float), (r->hi - r->lo) * sizeof(float), 0, NULL, NULL, &e);
        if (e != CL_SUCCESS || !r->ptr) {
            r->ptr = NULL;
            clsynth_cl_fail(ctx, "clEnqueueMapBuffer", what, e != CL_SUCCESS ? e : CL_INVALID_VALUE);
            clsynth_hostmap_unmap(ctx, m, what);
            return -1;
        }
    }
    return 0;
}

float *clsynth_hostmap_at(const clsynth_hostmap *m, cl_mem mem, size_t off)
{
    for (int i = 0; i < m->n && i < CLSYNTH_HOSTMAP_MAX; i++)
        if (m->r[i].mem == mem && m->r[i].ptr)
            return m->r[i].ptr + (off - m->r[i].lo);
    return NULL;
}
