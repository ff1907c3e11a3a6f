/* The host-BLAS algorithm of clsynth_gemm (clcore/gemm.h): where the OpenCL
 * device is the host CPU, its buffers live in host memory, and the host's
 * BLAS (OpenBLAS: about 10x CLBlast's default rate on PoCL, platforms.md) can
 * multiply them in place.
 *
 *   1. Map the regions the product touches (clcore/hostmap.h: one map per
 *      distinct cl_mem, the last one blocking), C's for writing (beta may be
 *      nonzero, and a leading dimension larger than n leaves bytes between
 *      rows that must survive), A's and B's for reading.
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

#include "clcore/gemm.h"
#include "clcore/hostmap.h"
#include "clcore/launch.h"

#ifdef CLSYNTH_HAVE_CBLAS
#include <cblas.h>

/* Floats from X's offset to one past the last element of a (rows, cols)
 * matrix with leading dimension ld, batch times at stride. */
static size_t extent(const clsynth_gemm_mat *x, size_t rows, size_t cols, size_t batch)
{
    return (batch - 1) * x->stride + (rows - 1) * x->ld + cols;
}

int clsynth_gemm_host(clsynth_ctx *ctx, const char *what, const clsynth_gemm_op *g)
{
    if (ctx->failed)
        return -1;
    const size_t batch = g->batch ? g->batch : 1;
    double t0;
    if (clsynth_host_call_begin(ctx, &t0))
        return -1;
    clsynth_hostmap m = { 0 };
    clsynth_hostmap_add(&m, g->a.mem, g->a.off, extent(&g->a, g->ta ? g->k : g->m, g->ta ? g->m : g->k, batch), false);
    clsynth_hostmap_add(&m, g->b.mem, g->b.off, extent(&g->b, g->tb ? g->n : g->k, g->tb ? g->k : g->n, batch), false);
    clsynth_gemm_mat c = g->c;
    if (g->sum_batch)
        c.stride = 0;
    clsynth_hostmap_add(&m, c.mem, c.off, extent(&c, g->m, g->n, batch), true);
    if (g->bias)
        clsynth_hostmap_add(&m, g->bias, g->bias_off, g->m, false);
    if (clsynth_hostmap_map(ctx, &m, what))
        return -1;
    const float *A = clsynth_hostmap_at(&m, g->a.mem, g->a.off), *B = clsynth_hostmap_at(&m, g->b.mem, g->b.off);
    float *C = clsynth_hostmap_at(&m, c.mem, c.off);
    const float *bias = g->bias ? clsynth_hostmap_at(&m, g->bias, g->bias_off) : NULL;
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
    if (clsynth_hostmap_unmap(ctx, &m, what))
        return -1;
    return clsynth_host_call_end(ctx, "host cblas_sgemm", t0);
}

#else

int clsynth_gemm_host(clsynth_ctx *ctx, const char *what, const clsynth_gemm_op *g)
{
    (void)g;
    return clsynth_ctx_fail(ctx, "%s: the host-BLAS GEMM was asked for, but this build has no host BLAS "
                                 "(configure with OpenBLAS: Debian package libopenblas-dev)", what);
}

#endif
