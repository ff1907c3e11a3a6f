/* The CLBlast algorithms of clsynth_gemm (clcore/gemm.h): one CLBlastSgemm per
 * product (a summed batch accumulates with beta = 1 after its first product,
 * in order, so it is deterministic), or one CLBlastSgemmStridedBatched for a
 * batch of separate outputs. */
#include "clcore/clblast_util.h"
#include "clcore/gemm.h"
#include "clcore/launch.h"
#include "clcore/program.h"

/* C_i(r, j) += bias(r) */
static int row_bias(clsynth_ctx *ctx, const clsynth_gemm_op *g, size_t outputs)
{
    cl_kernel k = clsynth_kernel_get(ctx, "gemm.cl", "gemm_row_bias", NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, "gemm_row_bias");
    clsynth_arg_mem(&a, g->c.mem);
    CLSYNTH_ARG_INTS(&a, (int)g->c.off, (int)g->c.ld, (int)g->c.stride);
    clsynth_arg_mem(&a, g->bias);
    CLSYNTH_ARG_INTS(&a, (int)g->bias_off, (int)g->m, (int)g->n, (int)outputs);
    size_t global[3] = { g->n, g->m, outputs };
    return clsynth_launch(&a, 3, global, NULL, 0, NULL);
}

int clsynth_gemm_clblast(clsynth_ctx *ctx, const char *what, const clsynth_gemm_op *g, bool strided)
{
    const size_t batch = g->batch ? g->batch : 1;
    const size_t outputs = g->sum_batch ? 1 : batch;
    if (strided && batch > 1 && !g->sum_batch) {
        if (clsynth_sgemm_strided(ctx, what, g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->a.mem, g->a.off, g->a.ld,
                                  g->a.stride, g->b.mem, g->b.off, g->b.ld, g->b.stride, g->beta, g->c.mem,
                                  g->c.off, g->c.ld, g->c.stride, batch))
            return -1;
        return g->bias ? row_bias(ctx, g, outputs) : 0;
    }
    for (size_t i = 0; i < batch; i++) {
        const float beta = g->sum_batch && i > 0 ? 1.0f : g->beta;
        const size_t c_off = g->c.off + (g->sum_batch ? 0 : i * g->c.stride);
        if (clsynth_sgemm(ctx, what, g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->a.mem, g->a.off + i * g->a.stride,
                          g->a.ld, g->b.mem, g->b.off + i * g->b.stride, g->b.ld, beta, g->c.mem, c_off, g->c.ld))
            return -1;
    }
    return g->bias ? row_bias(ctx, g, outputs) : 0;
}
