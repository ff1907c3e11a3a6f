/* The CLBlast algorithms of clsynth_gemm (clcore/gemm.h): one CLBlastSgemm per
 * product (a summed batch accumulates with beta = 1 after its first product,
 * in order, so it is deterministic), or one CLBlastSgemmStridedBatched for a
 * batch of separate outputs. */
#include "clcore/clblast_util.h"
#include "clcore/gemm.h"

int clsynth_gemm_clblast(clsynth_ctx *ctx, const char *what, const clsynth_gemm_op *g, bool strided)
{
    const size_t batch = g->batch ? g->batch : 1;
    if (strided && batch > 1 && !g->sum_batch)
        return clsynth_sgemm_strided(ctx, what, g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->a.mem, g->a.off,
                                     g->a.ld, g->a.stride, g->b.mem, g->b.off, g->b.ld, g->b.stride, g->beta,
                                     g->c.mem, g->c.off, g->c.ld, g->c.stride, batch);
    for (size_t i = 0; i < batch; i++) {
        const float beta = g->sum_batch && i > 0 ? 1.0f : g->beta;
        const size_t c_off = g->c.off + (g->sum_batch ? 0 : i * g->c.stride);
        if (clsynth_sgemm(ctx, what, g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->a.mem, g->a.off + i * g->a.stride,
                          g->a.ld, g->b.mem, g->b.off + i * g->b.stride, g->b.ld, beta, g->c.mem, c_off, g->c.ld))
            return -1;
    }
    return 0;
}
