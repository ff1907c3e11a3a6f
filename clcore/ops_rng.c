/* Counter-based RNG (Philox-4x32-10), Xavier init and the VAE reparameterization
 * (kernels/rng.cl). Element i of (seed, stream) is a pure function of
 * (seed, stream, i): the same numbers on every device and launch shape. */
#include <math.h>
#include <stdio.h>

#include "clcore/launch.h"
#include "clcore/ops.h"
#include "clcore/program.h"

#define RNG_FILE "rng.cl"

static int rng_fill(clsynth_ctx *ctx, clsynth_tensor *t, int mode, float a, float b, uint64_t seed,
                    uint64_t stream)
{
    if (ctx->failed || !t)
        return -1;
    static const char *kname = "rng_fill";
    cl_kernel k = clsynth_kernel_get(ctx, RNG_FILE, kname, NULL);
    clsynth_args ar = clsynth_args_begin(ctx, k, kname);
    clsynth_arg_tensor(&ar, t);
    clsynth_arg_int(&ar, (int)t->numel);
    clsynth_arg_uint(&ar, (cl_uint)(seed & 0xffffffffu));
    clsynth_arg_uint(&ar, (cl_uint)(seed >> 32));
    clsynth_arg_uint(&ar, (cl_uint)(stream & 0xffffffffu));
    clsynth_arg_uint(&ar, (cl_uint)(stream >> 32));
    clsynth_arg_int(&ar, mode);
    clsynth_arg_float(&ar, a);
    clsynth_arg_float(&ar, b);
    size_t blocks = (t->numel + 3) / 4; /* one work-item per 4 outputs */
    return clsynth_launch(&ar, 1, &blocks, NULL, 0, NULL);
}

int clsynth_rand_normal(clsynth_ctx *ctx, clsynth_tensor *t, float mean, float std, uint64_t seed, uint64_t stream)
{
    return rng_fill(ctx, t, 1, mean, std, seed, stream);
}

int clsynth_rand_uniform(clsynth_ctx *ctx, clsynth_tensor *t, float lo, float hi, uint64_t seed, uint64_t stream)
{
    return rng_fill(ctx, t, 0, lo, hi, seed, stream);
}

int clsynth_init_xavier(clsynth_ctx *ctx, clsynth_tensor *w, float gain, uint64_t seed, uint64_t stream)
{
    if (ctx->failed || !w)
        return -1;
    /* (Cout, Cin, KH, KW): fan_in = Cin*KH*KW, fan_out = Cout*KH*KW (torch.nn.init.xavier_normal_) */
    double rf = (double)w->h * (double)w->w;
    double fan_in = (double)w->c * rf, fan_out = (double)w->n * rf;
    double std = (double)gain * sqrt(2.0 / (fan_in + fan_out));
    return rng_fill(ctx, w, 1, 0.0f, (float)std, seed, stream);
}

static int reparam_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *mu = nd->in[0], *lv = nd->in[1], *eps = nd->saved[0];
    int want_mu = (mu->flags & CLSYNTH_T_REQUIRES_GRAD) != 0, want_lv = (lv->flags & CLSYNTH_T_REQUIRES_GRAD) != 0;
    clsynth_tensor *gmu = want_mu ? clsynth_grad_of(ctx, mu) : mu;
    clsynth_tensor *glv = want_lv ? clsynth_grad_of(ctx, lv) : mu;
    if (!gmu || !glv)
        return -1;
    static const char *kname = "reparam_backward";
    cl_kernel k = clsynth_kernel_get(ctx, RNG_FILE, kname, NULL);
    clsynth_args ar = clsynth_args_begin(ctx, k, kname);
    clsynth_arg_tensor(&ar, gmu);
    clsynth_arg_int(&ar, want_mu);
    clsynth_arg_tensor(&ar, glv);
    clsynth_arg_int(&ar, want_lv);
    clsynth_arg_tensor(&ar, nd->out->grad);
    clsynth_arg_tensor(&ar, lv);
    clsynth_arg_tensor(&ar, eps);
    clsynth_arg_int(&ar, (int)mu->numel);
    size_t n = mu->numel;
    return clsynth_launch(&ar, 1, &n, NULL, 0, NULL);
}

clsynth_tensor *clsynth_reparameterize(clsynth_ctx *ctx, clsynth_tensor *mu, clsynth_tensor *logvar, uint64_t seed,
                                       uint64_t stream)
{
    if (ctx->failed || !mu || !logvar)
        return NULL;
    if (!clsynth_same_shape(mu, logvar)) {
        char bm[128], bl[128];
        clsynth_ctx_fail(ctx, "reparameterize: mu %s and logvar %s must have the same shape",
                         clsynth_tensor_describe(mu, bm, sizeof bm), clsynth_tensor_describe(logvar, bl, sizeof bl));
        return NULL;
    }
    clsynth_tensor *eps = clsynth_tensor_new(ctx, "reparam_eps", mu->n, mu->c, mu->h, mu->w); /* mu's shape */
    clsynth_tensor *y = clsynth_tensor_new(ctx, "reparameterize", mu->n, mu->c, mu->h, mu->w);
    if (!eps || !y || rng_fill(ctx, eps, 1, 0.0f, 1.0f, seed, stream))
        return NULL;
    static const char *kname = "reparam_forward";
    cl_kernel k = clsynth_kernel_get(ctx, RNG_FILE, kname, NULL);
    clsynth_args ar = clsynth_args_begin(ctx, k, kname);
    clsynth_arg_tensor(&ar, mu);
    clsynth_arg_tensor(&ar, logvar);
    clsynth_arg_tensor(&ar, eps);
    clsynth_arg_tensor(&ar, y);
    clsynth_arg_int(&ar, (int)mu->numel);
    size_t n = mu->numel;
    if (clsynth_launch(&ar, 1, &n, NULL, 0, NULL))
        return NULL;
    clsynth_tensor *in[2] = { mu, logvar };
    clsynth_node *nd = clsynth_tape_record(ctx, "reparameterize", reparam_backward, y, in, 2);
    if (nd)
        nd->saved[0] = eps;
    return ctx->failed ? NULL : y;
}
