/* Checked CLBlast calls (see clblast_util.h). */
#include "clcore/clblast_util.h"
#include "clcore/tunedb.h"
#include "clcore/launch.h"

#include <clblast_c.h>
#include <pthread.h>
#include <stdio.h>

/* Contexts alive in the process (CLBlast's cache is process-wide: see the header). */
static pthread_mutex_t clblast_lock = PTHREAD_MUTEX_INITIALIZER;
static int clblast_holders;

void clsynth_clblast_hold(void)
{
    pthread_mutex_lock(&clblast_lock);
    clblast_holders++;
    pthread_mutex_unlock(&clblast_lock);
}

void clsynth_clblast_lock(void) { pthread_mutex_lock(&clblast_lock); }

void clsynth_clblast_unlock(void) { pthread_mutex_unlock(&clblast_lock); }

int clsynth_clblast_unhold(void)
{
    int st = CLBlastSuccess;
    pthread_mutex_lock(&clblast_lock);
    if (--clblast_holders == 0)
        st = (int)CLBlastClearCache();
    pthread_mutex_unlock(&clblast_lock);
    return st == CLBlastSuccess ? 0 : st;
}

const char *clsynth_clblast_status_name(int status)
{
    static const struct {
        int code;
        const char *name;
    } table[] = {
        { CLBlastSuccess, "CLBlastSuccess" },
        { CLBlastOpenCLCompilerNotAvailable, "CLBlastOpenCLCompilerNotAvailable" },
        { CLBlastTempBufferAllocFailure, "CLBlastTempBufferAllocFailure" },
        { CLBlastOpenCLOutOfResources, "CLBlastOpenCLOutOfResources" },
        { CLBlastOpenCLOutOfHostMemory, "CLBlastOpenCLOutOfHostMemory" },
        { CLBlastOpenCLBuildProgramFailure, "CLBlastOpenCLBuildProgramFailure" },
        { CLBlastInvalidValue, "CLBlastInvalidValue" },
        { CLBlastInvalidCommandQueue, "CLBlastInvalidCommandQueue" },
        { CLBlastInvalidMemObject, "CLBlastInvalidMemObject" },
        { CLBlastInvalidBinary, "CLBlastInvalidBinary" },
        { CLBlastInvalidBuildOptions, "CLBlastInvalidBuildOptions" },
        { CLBlastInvalidProgram, "CLBlastInvalidProgram" },
        { CLBlastInvalidProgramExecutable, "CLBlastInvalidProgramExecutable" },
        { CLBlastInvalidKernelName, "CLBlastInvalidKernelName" },
        { CLBlastInvalidKernelDefinition, "CLBlastInvalidKernelDefinition" },
        { CLBlastInvalidKernel, "CLBlastInvalidKernel" },
        { CLBlastInvalidArgIndex, "CLBlastInvalidArgIndex" },
        { CLBlastInvalidArgValue, "CLBlastInvalidArgValue" },
        { CLBlastInvalidArgSize, "CLBlastInvalidArgSize" },
        { CLBlastInvalidKernelArgs, "CLBlastInvalidKernelArgs" },
        { CLBlastInvalidLocalNumDimensions, "CLBlastInvalidLocalNumDimensions" },
        { CLBlastInvalidLocalThreadsTotal, "CLBlastInvalidLocalThreadsTotal" },
        { CLBlastInvalidLocalThreadsDim, "CLBlastInvalidLocalThreadsDim" },
        { CLBlastInvalidGlobalOffset, "CLBlastInvalidGlobalOffset" },
        { CLBlastInvalidEventWaitList, "CLBlastInvalidEventWaitList" },
        { CLBlastInvalidEvent, "CLBlastInvalidEvent" },
        { CLBlastInvalidOperation, "CLBlastInvalidOperation" },
        { CLBlastInvalidBufferSize, "CLBlastInvalidBufferSize" },
        { CLBlastInvalidGlobalWorkSize, "CLBlastInvalidGlobalWorkSize" },
        { CLBlastNotImplemented, "CLBlastNotImplemented" },
        { CLBlastInvalidMatrixA, "CLBlastInvalidMatrixA" },
        { CLBlastInvalidMatrixB, "CLBlastInvalidMatrixB" },
        { CLBlastInvalidMatrixC, "CLBlastInvalidMatrixC" },
        { CLBlastInvalidVectorX, "CLBlastInvalidVectorX" },
        { CLBlastInvalidVectorY, "CLBlastInvalidVectorY" },
        { CLBlastInvalidDimension, "CLBlastInvalidDimension" },
        { CLBlastInvalidLeadDimA, "CLBlastInvalidLeadDimA" },
        { CLBlastInvalidLeadDimB, "CLBlastInvalidLeadDimB" },
        { CLBlastInvalidLeadDimC, "CLBlastInvalidLeadDimC" },
        { CLBlastInvalidIncrementX, "CLBlastInvalidIncrementX" },
        { CLBlastInvalidIncrementY, "CLBlastInvalidIncrementY" },
        { CLBlastInsufficientMemoryA, "CLBlastInsufficientMemoryA" },
        { CLBlastInsufficientMemoryB, "CLBlastInsufficientMemoryB" },
        { CLBlastInsufficientMemoryC, "CLBlastInsufficientMemoryC" },
        { CLBlastInsufficientMemoryX, "CLBlastInsufficientMemoryX" },
        { CLBlastInsufficientMemoryY, "CLBlastInsufficientMemoryY" },
        { CLBlastInsufficientMemoryTemp, "CLBlastInsufficientMemoryTemp" },
        { CLBlastInvalidBatchCount, "CLBlastInvalidBatchCount" },
        { CLBlastInvalidOverrideKernel, "CLBlastInvalidOverrideKernel" },
        { CLBlastMissingOverrideParameter, "CLBlastMissingOverrideParameter" },
        { CLBlastInvalidLocalMemUsage, "CLBlastInvalidLocalMemUsage" },
        { CLBlastNoHalfPrecision, "CLBlastNoHalfPrecision" },
        { CLBlastNoDoublePrecision, "CLBlastNoDoublePrecision" },
        { CLBlastInvalidVectorScalar, "CLBlastInvalidVectorScalar" },
        { CLBlastInsufficientMemoryScalar, "CLBlastInsufficientMemoryScalar" },
        { CLBlastDatabaseError, "CLBlastDatabaseError" },
        { CLBlastUnknownError, "CLBlastUnknownError" },
        { CLBlastUnexpectedError, "CLBlastUnexpectedError" },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].code == status)
            return table[i].name;
    return "CLBlastUnknownStatus";
}

/* Statuses CLBlast returns before it enqueues anything (building or
 * checking its kernels): a retry cannot double-accumulate into C. */
static bool failed_before_running(CLBlastStatusCode st)
{
    switch (st) {
    case CLBlastOpenCLBuildProgramFailure:
    case CLBlastInvalidBuildOptions:
    case CLBlastInvalidProgram:
    case CLBlastInvalidProgramExecutable:
    case CLBlastInvalidKernelName:
    case CLBlastInvalidKernelDefinition:
    case CLBlastInvalidLocalNumDimensions:
    case CLBlastInvalidLocalThreadsTotal:
    case CLBlastInvalidLocalThreadsDim:
    case CLBlastInvalidLocalMemUsage:
        return true;
    default:
        return false;
    }
}

/* One CLBlast SGEMM call: batch 0 = CLBlastSgemm, else CLBlastSgemmStridedBatched. */
typedef struct sgemm_call {
    bool ta, tb;
    size_t m, n, k, lda, ldb, ldc, sa, sb, sc, batch, a_off, b_off, c_off;
    float alpha, beta;
    cl_mem a, b, c;
} sgemm_call;

static CLBlastStatusCode enqueue(clsynth_ctx *ctx, const sgemm_call *g)
{
    const CLBlastTranspose ta = g->ta ? CLBlastTransposeYes : CLBlastTransposeNo;
    const CLBlastTranspose tb = g->tb ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastStatusCode st;
    pthread_mutex_lock(&clblast_lock);
    if (!g->batch)
        st = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, g->m, g->n, g->k, g->alpha, g->a, g->a_off, g->lda, g->b,
                          g->b_off, g->ldb, g->beta, g->c, g->c_off, g->ldc, &ctx->queue, NULL);
    else
        st = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, g->m, g->n, g->k, g->alpha, g->a, g->a_off,
                                        g->lda, g->sa, g->b, g->b_off, g->ldb, g->sb, g->beta, g->c, g->c_off,
                                        g->ldc, g->sc, g->batch, &ctx->queue, NULL);
    pthread_mutex_unlock(&clblast_lock);
    return st;
}

static int run(clsynth_ctx *ctx, const char *what, const sgemm_call *g)
{
    if (ctx->failed)
        return -1;
    const char *routine = g->batch ? "CLBlastSgemmStridedBatched" : "CLBlastSgemm";
    double t0;
    if (clsynth_host_call_begin(ctx, &t0))
        return -1;
    CLBlastStatusCode st = enqueue(ctx, g);
    if (st != CLBlastSuccess && failed_before_running(st)) {
        /* a kernel that does not build or launch with tuned parameters: CLBlast's
         * generic defaults instead, and the call once more (nothing ran yet) */
        char failure[160];
        snprintf(failure, sizeof failure, "%s (%s) returned %s", routine, what, clsynth_clblast_status_name(st));
        if (clsynth_tunedb_clblast_fallback(ctx, failure))
            st = enqueue(ctx, g);
    }
    if (st != CLBlastSuccess)
        return clsynth_ctx_fail(ctx, "%s (%s, m %zu n %zu k %zu, op(A)%s op(B)%s%s) failed: %s (%d)", routine, what,
                                g->m, g->n, g->k, g->ta ? "=A^T" : "=A", g->tb ? "=B^T" : "=B",
                                g->batch ? ", strided batch" : "", clsynth_clblast_status_name(st), (int)st);
    return clsynth_host_call_end(ctx, routine, t0);
}

int clsynth_sgemm(clsynth_ctx *ctx, const char *what, bool trans_a, bool trans_b, size_t m, size_t n,
                  size_t k, float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off,
                  size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc)
{
    const sgemm_call g = { .ta = trans_a, .tb = trans_b, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb,
                           .ldc = ldc, .a_off = a_off, .b_off = b_off, .c_off = c_off, .alpha = alpha,
                           .beta = beta, .a = a, .b = b, .c = c };
    return run(ctx, what, &g);
}

int clsynth_sgemm_strided(clsynth_ctx *ctx, const char *what, bool trans_a, bool trans_b, size_t m, size_t n,
                          size_t k, float alpha, cl_mem a, size_t a_off, size_t lda, size_t a_stride, cl_mem b,
                          size_t b_off, size_t ldb, size_t b_stride, float beta, cl_mem c, size_t c_off, size_t ldc,
                          size_t c_stride, size_t batch)
{
    const sgemm_call g = { .ta = trans_a, .tb = trans_b, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb,
                           .ldc = ldc, .sa = a_stride, .sb = b_stride, .sc = c_stride, .batch = batch,
                           .a_off = a_off, .b_off = b_off, .c_off = c_off, .alpha = alpha, .beta = beta,
                           .a = a, .b = b, .c = c };
    return batch ? run(ctx, what, &g) : 0;
}
