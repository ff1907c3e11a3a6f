/* Adam over a parameter group: one kernel over its flat buffers (kernels/adam.cl). */
#include <math.h>

#include "clcore/launch.h"
#include "clcore/ops.h"
#include "clcore/program.h"

int clsynth_adam_step(clsynth_ctx *ctx, clsynth_param_group *g)
{
    if (ctx->failed || !g)
        return -1;
    if (!g->finalized)
        return clsynth_ctx_fail(ctx, "adam_step: group %s is not finalized", g->name);
    if (!(g->beta1 >= 0.0f && g->beta1 < 1.0f && g->beta2 >= 0.0f && g->beta2 < 1.0f && g->eps >= 0.0f))
        return clsynth_ctx_fail(ctx, "adam_step: group %s has beta1 %g, beta2 %g, eps %g (need betas in [0, 1), "
                                     "eps >= 0)", g->name, (double)g->beta1, (double)g->beta2, (double)g->eps);
    g->step++;
    /* bias corrections as torch.optim.Adam: in double, then one float each */
    double t = (double)g->step;
    double bc1 = 1.0 - pow((double)g->beta1, t); /* beta1 = 0: 1 */
    double bc2 = 1.0 - pow((double)g->beta2, t);
    float step_size = (float)((double)g->lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    static const char *kname = "adam_step";
    cl_kernel k = clsynth_kernel_get(ctx, "adam.cl", kname, NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, kname);
    clsynth_arg_tensor(&a, g->flat_data);
    clsynth_arg_tensor(&a, g->flat_grad);
    clsynth_arg_tensor(&a, g->adam_m);
    clsynth_arg_tensor(&a, g->adam_v);
    clsynth_arg_int(&a, (int)g->total);
    clsynth_arg_float(&a, g->beta1);
    clsynth_arg_float(&a, g->beta2);
    clsynth_arg_float(&a, step_size);
    clsynth_arg_float(&a, bc2_sqrt);
    clsynth_arg_float(&a, g->eps);
    size_t n = g->total;
    return clsynth_launch(&a, 1, &n, NULL, 0, NULL);
}
