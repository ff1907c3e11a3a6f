/* Checked CLBlast calls (see clblast_util.h). */
#include "clcore/clblast_util.h"
#include "clcore/tunedb.h"
#include "clcore/launch.h"

#include <clblast_c.h>
#include <stdio.h>
#include <time.h>

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

static double wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
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

int clsynth_sgemm(clsynth_ctx *ctx, const char *what, bool trans_a, bool trans_b, size_t m, size_t n,
                  size_t k, float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off,
                  size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc)
{
    if (ctx->failed)
        return -1;
    double t0 = 0;
    if (ctx->profile_launches) {
        if (clsynth_finish(ctx))
            return -1;
        t0 = wall_ms();
    }
    CLBlastStatusCode st = CLBlastSgemm(CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                                        trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a,
                                        a_off, lda, b, b_off, ldb, beta, c, c_off, ldc, &ctx->queue, NULL);
    if (st != CLBlastSuccess && failed_before_running(st)) {
        /* a kernel that does not build or launch with tuned parameters: CLBlast's
         * generic defaults instead, and the call once more (nothing ran yet) */
        char failure[160];
        snprintf(failure, sizeof failure, "CLBlastSgemm (%s) returned %s", what, clsynth_clblast_status_name(st));
        if (clsynth_tunedb_clblast_fallback(ctx, failure))
            st = CLBlastSgemm(CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                              trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off, lda, b,
                              b_off, ldb, beta, c, c_off, ldc, &ctx->queue, NULL);
    }
    if (st != CLBlastSuccess)
        return clsynth_ctx_fail(ctx, "CLBlastSgemm (%s, m %zu n %zu k %zu, op(A)%s op(B)%s) failed: %s (%d)",
                                what, m, n, k, trans_a ? "=A^T" : "=A", trans_b ? "=B^T" : "=B",
                                clsynth_clblast_status_name(st), (int)st);
    ctx->launches++;
    if (ctx->profile_launches) {
        if (clsynth_finish(ctx))
            return -1;
        double t = wall_ms() - t0;
        ctx->launch_ms_total += t;
        clsynth_kprofile_add(ctx, "CLBlastSgemm", t);
    }
    return 0;
}
