/* Spectral normalization (kernels/spectral.cl), as torch.nn.utils.spectral_norm
 * with eps = 1e-12 and one power iteration per training forward.
 *
 * w (Cout, Cin, KH, KW) is viewed as W (Cout x K), K = Cin*KH*KW; u (Cout
 * elements) and v (K elements) are the caller's persistent estimates of the
 * left and right singular vectors (PyTorch's weight_u and weight_v).
 *   update:   v <- normalize(W^T u), then u <- normalize(W v)   (both in place)
 *   !update:  u and v used as stored, nothing normalized or changed
 *   sigma = u^T W v with the vectors above, output W / sigma.
 * This is PyTorch's order: in a training forward v is computed from the u
 * of the previous step, then u from that v. So after a step the stored v
 * comes from the previous u (and the previous W): an eval forward with the
 * stored pair gives PyTorch's exact sigma, which recomputing v from the
 * stored u would not (clsynth_spectral_norm_init_v does that once, for a
 * fresh or version-1 state that has no v).
 * Gradient (u, v constants, as in PyTorch):
 *   dW = dWsn / sigma - (sum_ij dWsn_ij W_ij) / sigma^2 * u v^T.
 * Saved for backward: copies of the u and v used, sigma (activations, so a
 * later forward that updates u and v does not change an earlier node's
 * gradient). */
#include <stdio.h>

#include "clcore/launch.h"
#include "clcore/ops.h"
#include "clcore/program.h"

#define SN_FILE "spectral.cl"
#define SN_EPS 1e-12f

/* Work-group size of a reduction kernel over `want` values. */
static size_t sn_local(clsynth_ctx *ctx, cl_kernel k, const char *kname, size_t want)
{
    size_t l = clsynth_kernel_max_wg(ctx, k, kname);
    return l ? clsynth_reduction_local(l, ctx->max_item[0], ctx->local_mem, sizeof(cl_float), want) : 0;
}

/* Launches a kernel made of `groups` work-groups of a reduction local size
 * (1-D); the args are already set except the trailing local buffer. */
static int sn_launch_groups(clsynth_args *a, size_t L, size_t groups)
{
    clsynth_arg_local(a, L * sizeof(cl_float));
    size_t g = L * groups;
    return clsynth_launch(a, 1, &g, &L, L * sizeof(cl_float), NULL);
}

static int sn_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *w = nd->in[0];
    clsynth_tensor *u_used = nd->saved[0], *v = nd->saved[1], *sigma = nd->saved[2];
    const clsynth_tensor *dwsn = nd->out->grad;
    const int Cout = w->n, K = (int)(w->numel / (size_t)w->n);
    clsynth_tensor *dw = clsynth_grad_of(ctx, w);
    clsynth_tensor *rows = clsynth_tensor_new(ctx, "spectral_norm.rowdot", 1, Cout, 1, 1); /* (1, Cout, 1, 1) */
    clsynth_tensor *coef = clsynth_tensor_new(ctx, "spectral_norm.coef", 1, 1, 1, 1);
    if (!dw || !rows || !coef)
        return -1;

    cl_kernel k = clsynth_kernel_get(ctx, SN_FILE, "sn_rowdot", NULL);
    if (!k)
        return -1;
    size_t L = sn_local(ctx, k, "sn_rowdot", (size_t)K);
    clsynth_args a = clsynth_args_begin(ctx, k, "sn_rowdot");
    clsynth_arg_tensor(&a, dwsn);
    clsynth_arg_tensor(&a, w);
    clsynth_arg_tensor(&a, rows);
    clsynth_arg_int(&a, Cout);
    clsynth_arg_int(&a, K);
    if (!L || sn_launch_groups(&a, L, (size_t)Cout))
        return -1;

    k = clsynth_kernel_get(ctx, SN_FILE, "sn_bwd_coef", NULL);
    if (!k)
        return -1;
    L = sn_local(ctx, k, "sn_bwd_coef", (size_t)Cout);
    a = clsynth_args_begin(ctx, k, "sn_bwd_coef");
    clsynth_arg_tensor(&a, rows);
    clsynth_arg_int(&a, Cout);
    clsynth_arg_tensor(&a, sigma);
    clsynth_arg_tensor(&a, coef);
    if (!L || sn_launch_groups(&a, L, 1))
        return -1;

    k = clsynth_kernel_get(ctx, SN_FILE, "sn_bwd_dw", NULL);
    a = clsynth_args_begin(ctx, k, "sn_bwd_dw");
    clsynth_arg_tensor(&a, dwsn);
    clsynth_arg_tensor(&a, u_used);
    clsynth_arg_tensor(&a, v);
    clsynth_arg_tensor(&a, sigma);
    clsynth_arg_tensor(&a, coef);
    clsynth_arg_tensor(&a, dw);
    clsynth_arg_int(&a, Cout);
    clsynth_arg_int(&a, K);
    size_t g[2] = { (size_t)K, (size_t)Cout };
    return clsynth_launch(&a, 2, g, NULL, 0, NULL);
}

/* v = normalize(W^T u) into v (no tape). */
static int sn_v_from_u(clsynth_ctx *ctx, const clsynth_tensor *w, const clsynth_tensor *u, clsynth_tensor *v,
                       int Cout, int K)
{
    cl_kernel k = clsynth_kernel_get(ctx, SN_FILE, "sn_wtu", NULL);
    clsynth_args a = clsynth_args_begin(ctx, k, "sn_wtu");
    clsynth_arg_tensor(&a, w);
    clsynth_arg_tensor(&a, u);
    clsynth_arg_tensor(&a, v);
    clsynth_arg_int(&a, Cout);
    clsynth_arg_int(&a, K);
    size_t gk = (size_t)K;
    if (clsynth_launch(&a, 1, &gk, NULL, 0, NULL))
        return -1;
    k = clsynth_kernel_get(ctx, SN_FILE, "sn_normalize", NULL);
    if (!k)
        return -1;
    size_t L = sn_local(ctx, k, "sn_normalize", (size_t)K);
    a = clsynth_args_begin(ctx, k, "sn_normalize");
    clsynth_arg_tensor(&a, v);
    clsynth_arg_int(&a, K);
    clsynth_arg_float(&a, SN_EPS);
    if (!L || sn_launch_groups(&a, L, 1))
        return -1;
    return 0;
}

static int sn_check(clsynth_ctx *ctx, const clsynth_tensor *w, const clsynth_tensor *u, const clsynth_tensor *v)
{
    const size_t Cout = (size_t)w->n, K = w->numel / (size_t)w->n;
    char bw[128], bx[128];
    if (u->numel != Cout)
        return clsynth_ctx_fail(ctx, "spectral_norm: u %s must have Cout = %zu elements for w %s",
                                clsynth_tensor_describe(u, bx, sizeof bx), Cout, clsynth_tensor_describe(w, bw, sizeof bw));
    if (v->numel != K)
        return clsynth_ctx_fail(ctx, "spectral_norm: v %s must have Cin*KH*KW = %zu elements for w %s",
                                clsynth_tensor_describe(v, bx, sizeof bx), K, clsynth_tensor_describe(w, bw, sizeof bw));
    return 0;
}

int clsynth_spectral_norm_init_v(clsynth_ctx *ctx, const clsynth_tensor *w, const clsynth_tensor *u, clsynth_tensor *v)
{
    if (ctx->failed || !w || !u || !v)
        return -1;
    if (sn_check(ctx, w, u, v))
        return -1;
    return sn_v_from_u(ctx, w, u, v, w->n, (int)(w->numel / (size_t)w->n));
}

clsynth_tensor *clsynth_spectral_norm(clsynth_ctx *ctx, clsynth_tensor *w, clsynth_tensor *u, clsynth_tensor *v,
                                      bool update)
{
    if (ctx->failed || !w || !u || !v)
        return NULL;
    if (sn_check(ctx, w, u, v))
        return NULL;
    const int Cout = w->n;
    const int K = (int)(w->numel / (size_t)w->n);
    clsynth_tensor *v_used = clsynth_tensor_new(ctx, "spectral_norm.v", 1, 1, 1, K);            /* (1, 1, 1, K) */
    clsynth_tensor *wv = clsynth_tensor_new(ctx, "spectral_norm.wv", 1, Cout, 1, 1);            /* (1, Cout, 1, 1) */
    clsynth_tensor *u_used = clsynth_tensor_new(ctx, "spectral_norm.u", 1, Cout, 1, 1);         /* (1, Cout, 1, 1) */
    clsynth_tensor *sigma = clsynth_tensor_new(ctx, "spectral_norm.sigma", 1, 1, 1, 1);
    clsynth_tensor *out = clsynth_tensor_new(ctx, "spectral_norm", w->n, w->c, w->h, w->w);     /* like w */
    if (!v_used || !wv || !u_used || !sigma || !out)
        return NULL;

    /* v: normalize(W^T u) from the previous u (stored too), or the stored v */
    if (update) {
        if (sn_v_from_u(ctx, w, u, v_used, Cout, K) || clsynth_tensor_copy(ctx, v, v_used))
            return NULL;
    } else if (clsynth_tensor_copy(ctx, v_used, v)) {
        return NULL;
    }

    /* wv = W v */
    cl_kernel k = clsynth_kernel_get(ctx, SN_FILE, "sn_wv", NULL);
    if (!k)
        return NULL;
    size_t L = sn_local(ctx, k, "sn_wv", (size_t)K);
    clsynth_args a = clsynth_args_begin(ctx, k, "sn_wv");
    clsynth_arg_tensor(&a, w);
    clsynth_arg_tensor(&a, v_used);
    clsynth_arg_tensor(&a, wv);
    clsynth_arg_int(&a, Cout);
    clsynth_arg_int(&a, K);
    if (!L || sn_launch_groups(&a, L, (size_t)Cout))
        return NULL;

    /* u: normalize(W v) (stored too), or the stored u; sigma = u . W v */
    k = clsynth_kernel_get(ctx, SN_FILE, "sn_finish", NULL);
    if (!k)
        return NULL;
    L = sn_local(ctx, k, "sn_finish", (size_t)Cout);
    a = clsynth_args_begin(ctx, k, "sn_finish");
    clsynth_arg_tensor(&a, wv);
    clsynth_arg_tensor(&a, u);
    clsynth_arg_tensor(&a, u_used);
    clsynth_arg_tensor(&a, sigma);
    clsynth_arg_int(&a, Cout);
    clsynth_arg_int(&a, update ? 1 : 0);
    clsynth_arg_float(&a, SN_EPS);
    if (!L || sn_launch_groups(&a, L, 1))
        return NULL;

    /* out = W / sigma */
    k = clsynth_kernel_get(ctx, SN_FILE, "sn_scale", NULL);
    a = clsynth_args_begin(ctx, k, "sn_scale");
    clsynth_arg_tensor(&a, w);
    clsynth_arg_tensor(&a, sigma);
    clsynth_arg_tensor(&a, out);
    clsynth_arg_int(&a, (int)w->numel);
    size_t ge = w->numel;
    if (clsynth_launch(&a, 1, &ge, NULL, 0, NULL))
        return NULL;

    clsynth_tensor *in[1] = { w };
    clsynth_node *nd = clsynth_tape_record(ctx, "spectral_norm", sn_backward, out, in, 1);
    if (nd) {
        nd->saved[0] = u_used;
        nd->saved[1] = v_used;
        nd->saved[2] = sigma;
    }
    return ctx->failed ? NULL : out;
}
