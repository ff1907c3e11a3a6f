/* Every matrix product of the ops (convolutions, linear layers) goes through
 * clsynth_gemm: one call, one algorithm choice, several algorithms.
 *
 *   C_i = alpha op(A_i) op(B_i) + beta C_i       for i = 0 .. batch-1
 *   C   = alpha sum_i op(A_i) op(B_i) + beta C   with sum_batch (in order of i)
 *
 * row-major, op(A) (m, k), op(B) (k, n), C (m, n); X_i = X + i * stride
 * (stride 0: the same matrix for every i). Offsets, leading dimensions and
 * strides count floats.
 *
 * Algorithms, the "gemm" descriptor's ALGO (clcore/gemm_kdef.c), resolved by
 * clsynth_kconfig at the shape (m, n, k, transposes, batch): tuned, else the
 * device class's default:
 *   CLBLAST          CLBlastSgemm, once per product (the device's own kernels).
 *   HOST_BLAS        the host's BLAS (OpenBLAS's cblas_sgemm) on the buffers
 *                    mapped into host memory, where the OpenCL device is the
 *                    host CPU (clsynth_gemm_host_capable); built only when CMake
 *                    finds OpenBLAS (CLSYNTH_HAVE_CBLAS).
 *   CLBLAST_STRIDED  CLBlastSgemmStridedBatched, one call for the batch
 *                    (separate outputs only).
 * Every algorithm is deterministic: the same inputs give the same bits. The
 * optional bias epilogue is the host algorithm's own loop over the mapped C,
 * a kernel (kernels/gemm.cl) after the others. */
#ifndef CLSYNTH_GEMM_H
#define CLSYNTH_GEMM_H

#include <stdbool.h>
#include <stddef.h>

#include "clcore/context.h"
#include "clcore/kdefs.h"

struct clsynth_kforce;

typedef enum clsynth_gemm_algo {
    CLSYNTH_GEMM_AUTO = 0,
    CLSYNTH_GEMM_CLBLAST = 1,
    CLSYNTH_GEMM_HOST_BLAS = 2,
    CLSYNTH_GEMM_CLBLAST_STRIDED = 3,
} clsynth_gemm_algo;

typedef struct clsynth_gemm_mat {
    cl_mem mem;
    size_t off, ld, stride;
} clsynth_gemm_mat;

typedef struct clsynth_gemm_op {
    bool ta, tb;
    size_t m, n, k;
    float alpha, beta;
    clsynth_gemm_mat a, b, c;
    size_t batch;   /* products; 0 is taken as 1 */
    bool sum_batch; /* C accumulates every product (c.stride unused) */
    cl_mem bias;    /* NULL, or then C_i(r, j) += bias[bias_off + r] (a conv's per-channel bias) */
    size_t bias_off;
} clsynth_gemm_op;

/* Runs g with the algorithm resolved at its shape (force: the caller's
 * configuration of the "gemm" descriptor, or NULL). `what` names the caller
 * in errors ("conv2d forward of 'x' (2, 3, 9, 7)"). Counts ctx->gemm_calls.
 * 0, or -1 with ctx->err set. */
int clsynth_gemm(clsynth_ctx *ctx, const char *what, const clsynth_gemm_op *g, struct clsynth_kforce *force);

/* The "gemm" descriptor's shape of g. */
clsynth_matmul_shape clsynth_matmul_shape_of(const clsynth_gemm_op *g);

/* Whether this build has the host-BLAS algorithm and the device's buffers
 * are host memory: a CPU device of PoCL, Intel's CPU runtime or rusticl
 * (decided by device type and platform, never by vendor id), or the Oclgrind
 * simulator (for its checks of the GEMM path). */
bool clsynth_gemm_host_capable(const clsynth_device_info *dev);

/* internal: the algorithms (clcore/gemm_clblast.c, clcore/gemm_host.c) */
int clsynth_gemm_clblast(clsynth_ctx *ctx, const char *what, const clsynth_gemm_op *g, bool strided);
int clsynth_gemm_host(clsynth_ctx *ctx, const char *what, const clsynth_gemm_op *g);

#endif
