/* clsynth_gemm: the algorithm choice (the "gemm" descriptor at the product's
 * shape) and the dispatch; see clcore/gemm.h. */
#include <string.h>

#include "clcore/gemm.h"
#include "clcore/kconfig.h"
#include "clcore/kdefs.h"

bool clsynth_gemm_host_capable(const clsynth_device_info *dev)
{
#ifdef CLSYNTH_HAVE_CBLAS
    return clsynth_device_host_memory(dev);
#else
    (void)dev;
    return false;
#endif
}

clsynth_matmul_shape clsynth_matmul_shape_of(const clsynth_gemm_op *g)
{
    clsynth_matmul_shape s = { (int)g->m, (int)g->n, (int)g->k, g->ta, g->tb,
                               g->batch > 1 ? (int)g->batch : 1, g->sum_batch && g->batch > 1 };
    return s;
}

int clsynth_gemm(clsynth_ctx *ctx, const char *what, const clsynth_gemm_op *g, struct clsynth_kforce *force)
{
    if (ctx->failed)
        return -1;
    if (!g->m || !g->n || !g->k)
        return clsynth_ctx_fail(ctx, "%s: empty GEMM (m %zu n %zu k %zu)", what, g->m, g->n, g->k);
    const clsynth_matmul_shape s = clsynth_matmul_shape_of(g);
    clsynth_kcfg cfg;
    if (clsynth_kconfig(ctx, &clsynth_kdef_gemm, &s, force, &cfg))
        return -1;
    ctx->gemm_calls++;
    switch (cfg.v[GEMM_ALGO]) {
    case CLSYNTH_GEMM_HOST_BLAS:
        return clsynth_gemm_host(ctx, what, g);
    case CLSYNTH_GEMM_CLBLAST_STRIDED:
        return clsynth_gemm_clblast(ctx, what, g, true);
    case CLSYNTH_GEMM_CLBLAST:
        return clsynth_gemm_clblast(ctx, what, g, false);
    default:
        return clsynth_ctx_fail(ctx, "%s: gemm at %s: algorithm %d is not implemented", what, cfg.key,
                                cfg.v[GEMM_ALGO]);
    }
}
