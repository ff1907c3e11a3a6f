/* The host-BLAS algorithm of clsynth_gemm (clcore/gemm.h): where the OpenCL
 * device is the host CPU, its buffers live in host memory, and the host's
 * BLAS (OpenBLAS: about 10x CLBlast's default rate on PoCL, platforms.md) can
 * multiply them in place.
 *
 *   1. Map the regions the product touches: one clEnqueueMapBuffer per
 *      distinct cl_mem, the last one blocking (operands sharing a buffer
 *      map the union of their regions once: mapping overlapping regions for
 *      writing is undefined),
 *      C's buffer with CL_MAP_READ | CL_MAP_WRITE (beta may be nonzero, and a
 *      leading dimension larger than n leaves bytes between rows that must
 *      survive), the others CL_MAP_READ. A blocking map on the in-order queue
 *      returns after every command enqueued before it has finished, so the
 *      kernels producing A, B and C and the other maps are done.
 *   2. cblas_sgemm per product, in order (a summed batch with beta = 1 after
 *      its first product), on the mapped pointers; then the bias epilogue, a
 *      loop over the mapped C.
 *   3. Unmap; commands enqueued later run after the unmaps.
 *
 * Zero copy: PoCL's CPU device, Intel's CPU runtime and rusticl on llvmpipe
 * return the buffer's own storage from a map (the same pointer every time,
 * 2-150 microseconds for 64 MiB, platforms.md), so steps 1 and 3 copy
 * nothing; buffers are created without CL_MEM_USE_HOST_PTR or
 * CL_MEM_ALLOC_HOST_PTR (the pool's plain CL_MEM_READ_WRITE), which these
 * implementations already place in host memory. cblas needs no alignment
 * beyond a float's.
 *
 * Threads: the map drains the queue, so while OpenBLAS runs, the OpenCL
 * runtime's worker threads have no work: the GEMM gets every core, and
 * OpenBLAS's own default (all online cores, OPENBLAS_NUM_THREADS to change
 * it) is the right count. The two never compute at the same time; what
 * remains is OpenBLAS's worker threads spinning (sched_yield) for a while
 * after a call (not measured apart). The price is one host-device
 * synchronization per call: a blocking map takes 3-6 microseconds on an
 * idle PoCL queue, the whole call 0.1-0.2 ms more than OpenBLAS's own
 * under load (platforms.md). */
#include <stdio.h>
#include <time.h>

#include "clcore/gemm.h"
#include "clcore/launch.h"

#ifdef CLSYNTH_HAVE_CBLAS
#include <cblas.h>

typedef struct region {
    cl_mem mem;
    size_t lo, hi; /* floats */
    bool write;
    float *ptr;    /* mapped: element lo */
} region;

/* Floats from X's offset to one past the last element of a (rows, cols)
 * matrix with leading dimension ld, batch times at stride. */
static size_t extent(const clsynth_gemm_mat *x, size_t rows, size_t cols, size_t batch)
{
    return (batch - 1) * x->stride + (rows - 1) * x->ld + cols;
}

static void add_region(region *r, int *n, const clsynth_gemm_mat *x, size_t len, bool write)
{
    for (int i = 0; i < *n; i++)
        if (r[i].mem == x->mem) {
            if (x->off < r[i].lo)
                r[i].lo = x->off;
            if (x->off + len > r[i].hi)
                r[i].hi = x->off + len;
            r[i].write = r[i].write || write;
            return;
        }
    r[*n] = (region){ x->mem, x->off, x->off + len, write, NULL };
    (*n)++;
}

static const float *at(const region *r, int n, const clsynth_gemm_mat *x)
{
    for (int i = 0; i < n; i++)
        if (r[i].mem == x->mem)
            return r[i].ptr + (x->off - r[i].lo);
    return NULL;
}

static double wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int unmap_all(clsynth_ctx *ctx, region *r, int n, const char *what)
{
    int rc = 0;
    for (int i = 0; i < n; i++)
        if (r[i].ptr) {
            cl_int e = clEnqueueUnmapMemObject(ctx->queue, r[i].mem, r[i].ptr, 0, NULL, NULL);
            r[i].ptr = NULL;
            if (e != CL_SUCCESS && !rc)
                rc = clsynth_cl_fail(ctx, "clEnqueueUnmapMemObject", what, e);
        }
    return rc;
}

int clsynth_gemm_host(clsynth_ctx *ctx, const char *what, const clsynth_gemm_op *g)
{
    if (ctx->failed)
        return -1;
    const size_t batch = g->batch ? g->batch : 1;
    const double t0 = ctx->profile_launches ? wall_ms() : 0;
    region r[4];
    int n = 0;
    add_region(r, &n, &g->a, extent(&g->a, g->ta ? g->k : g->m, g->ta ? g->m : g->k, batch), false);
    add_region(r, &n, &g->b, extent(&g->b, g->tb ? g->n : g->k, g->tb ? g->k : g->n, batch), false);
    clsynth_gemm_mat c = g->c;
    if (g->sum_batch)
        c.stride = 0;
    add_region(r, &n, &c, extent(&c, g->m, g->n, batch), true);
    clsynth_gemm_mat bm = { g->bias, g->bias_off, g->m, 0 };
    if (g->bias)
        add_region(r, &n, &bm, g->m, false);
    for (int i = 0; i < n; i++) {
        /* only the last map blocks: on the in-order queue it returns after
         * every earlier command, the other maps too, has completed (one
         * host-device round trip per call instead of one per buffer) */
        cl_int e = CL_SUCCESS;
        cl_map_flags fl = r[i].write ? CL_MAP_READ | CL_MAP_WRITE : CL_MAP_READ;
        r[i].ptr = clEnqueueMapBuffer(ctx->queue, r[i].mem, i == n - 1 ? CL_TRUE : CL_FALSE, fl, r[i].lo * sizeof(float),
                                      (r[i].hi - r[i].lo) * sizeof(float), 0, NULL, NULL, &e);
        if (e != CL_SUCCESS || !r[i].ptr) {
            r[i].ptr = NULL;
            clsynth_cl_fail(ctx, "clEnqueueMapBuffer", what, e != CL_SUCCESS ? e : CL_INVALID_VALUE);
            unmap_all(ctx, r, n, what);
            return -1;
        }
    }
    const float *A = at(r, n, &g->a), *B = at(r, n, &g->b);
    float *C = (float *)at(r, n, &c);
    const float *bias = g->bias ? at(r, n, &bm) : NULL;
    for (size_t i = 0; i < batch; i++) {
        const float beta = g->sum_batch && i > 0 ? 1.0f : g->beta;
        cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans, (int)g->m,
                    (int)g->n, (int)g->k, g->alpha, A + i * g->a.stride, (int)g->a.ld, B + i * g->b.stride,
                    (int)g->b.ld, beta, C + i * c.stride, (int)c.ld);
    }
    if (bias)
        for (size_t i = 0; i < (g->sum_batch ? 1 : batch); i++)
            for (size_t row = 0; row < g->m; row++) {
                float *cr = C + i * c.stride + row * c.ld, b = bias[row];
                for (size_t j = 0; j < g->n; j++)
                    cr[j] += b;
            }
    if (unmap_all(ctx, r, n, what))
        return -1;
    ctx->launches++;
    if (ctx->profile_launches) {
        if (clsynth_finish(ctx))
            return -1;
        double t = wall_ms() - t0;
        ctx->launch_ms_total += t;
        clsynth_kprofile_add(ctx, "host cblas_sgemm", t);
    }
    return 0;
}

#else

int clsynth_gemm_host(clsynth_ctx *ctx, const char *what, const clsynth_gemm_op *g)
{
    (void)g;
    return clsynth_ctx_fail(ctx, "%s: the host-BLAS GEMM was asked for, but this build has no host BLAS "
                                 "(configure with OpenBLAS: Debian package libopenblas-dev)", what);
}

#endif
