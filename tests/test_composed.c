/* End-to-end gradients through a small network made of several ops, with its
 * parameters in one clsynth_param_group (flat storage, as the real networks):
 *
 *   h    = conv3x3(x; w1, b1)                      x (N,3,H,W) -> (N,C,H,W)
 *   hn   = batch_norm(h; gamma, beta), training    running stats in the group
 *   k    = conv3x3(label; wk, bk)                  label (N,L,H,W) -> (N,9C,H,W)
 *   d    = cond_dwconv(hn, k)                      per-pixel predicted 3x3 kernels
 *   gate = sigmoid(conv3x3(label; wg, bg))         (N,C,H,W)
 *   y    = d * gate
 *   loss = mse_loss(y, target)
 *
 * The gradient of a sample of every parameter and of the input x is compared
 * with central finite differences of the whole forward (batch norm in training
 * mode couples the samples; the finite differences see that too). b1 feeds a
 * training-mode batch norm, so its exact gradient is 0: checked as well.
 * Tolerance |analytic - numeric| <= 2e-5 + 3e-2 * |numeric|, eps 1e-2 (float
 * forward: the loss ~0.5 has a rounding error ~3e-8, i.e. ~2e-6 after /2eps).
 *
 * CLSYNTH_OCLGRIND_OK: under Oclgrind a tiny image is used. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/ops.h"
#include "testutil.h"

enum { CIN = 3, CH = 5, LABELS = 4 };

typedef struct net {
    clsynth_param_group *g;
    clsynth_tensor *w1, *b1, *gamma, *beta, *wk, *bk, *wg, *bg;
    clsynth_tensor *rm, *rv;
    clsynth_tensor *label, *target; /* persistent inputs without gradient */
} net;

static clsynth_ctx *ctx;

static void upload_uniform(clsynth_tensor *t, float lo, float hi, uint64_t seed)
{
    float *h = malloc(t->numel * sizeof *h);
    ck_assert_ptr_nonnull(h);
    clsynth_test_fill_uniform(h, t->numel, lo, hi, seed);
    ck_assert_msg(clsynth_tensor_upload(ctx, t, h) == 0, "upload %s: %s", t->name, ctx->err.msg);
    free(h);
}

static void net_build(net *m, int N, int H, int W)
{
    memset(m, 0, sizeof *m);
    m->g = clsynth_group_new(ctx, "net");
    m->w1 = clsynth_group_param(ctx, m->g, "conv1.w", CH, CIN, 3, 3);
    m->b1 = clsynth_group_param(ctx, m->g, "conv1.b", 1, CH, 1, 1);
    m->gamma = clsynth_group_param(ctx, m->g, "bn.gamma", 1, CH, 1, 1);
    m->beta = clsynth_group_param(ctx, m->g, "bn.beta", 1, CH, 1, 1);
    m->wk = clsynth_group_param(ctx, m->g, "kpred.w", 9 * CH, LABELS, 3, 3);
    m->bk = clsynth_group_param(ctx, m->g, "kpred.b", 1, 9 * CH, 1, 1);
    m->wg = clsynth_group_param(ctx, m->g, "gate.w", CH, LABELS, 3, 3);
    m->bg = clsynth_group_param(ctx, m->g, "gate.b", 1, CH, 1, 1);
    m->rm = clsynth_group_buffer(ctx, m->g, "bn.running_mean", 1, CH, 1, 1);
    m->rv = clsynth_group_buffer(ctx, m->g, "bn.running_var", 1, CH, 1, 1);
    ck_assert_msg(clsynth_group_finalize(ctx, m->g) == 0, "finalize: %s", ctx->err.msg);
    upload_uniform(m->w1, -0.3f, 0.3f, 1);
    upload_uniform(m->b1, -0.2f, 0.2f, 2);
    upload_uniform(m->gamma, 0.6f, 1.4f, 3);
    upload_uniform(m->beta, -0.3f, 0.3f, 4);
    upload_uniform(m->wk, -0.3f, 0.3f, 5);
    upload_uniform(m->bk, -0.2f, 0.2f, 6);
    upload_uniform(m->wg, -0.5f, 0.5f, 7);
    upload_uniform(m->bg, -0.2f, 0.2f, 8);
    ck_assert_int_eq(clsynth_tensor_fill(ctx, m->rv, 1.0f), 0);

    /* label: one-hot of pseudo-random classes; target: uniform */
    size_t hw = (size_t)H * W;
    float *lab = calloc((size_t)N * LABELS * hw, sizeof *lab), *cls = malloc((size_t)N * hw * sizeof *cls);
    clsynth_test_fill_uniform(cls, (size_t)N * hw, 0.0f, (float)LABELS, 9);
    for (int n = 0; n < N; n++)
        for (size_t p = 0; p < hw; p++) {
            int c = (int)cls[n * hw + p];
            lab[((size_t)n * LABELS + (size_t)(c < LABELS ? c : LABELS - 1)) * hw + p] = 1.0f;
        }
    m->label = clsynth_tensor_new_persistent(ctx, "label", N, LABELS, H, W);
    ck_assert_ptr_nonnull(m->label);
    ck_assert_int_eq(clsynth_tensor_upload(ctx, m->label, lab), 0);
    m->target = clsynth_tensor_new_persistent(ctx, "target", N, CH, H, W);
    ck_assert_ptr_nonnull(m->target);
    upload_uniform(m->target, -1.0f, 1.0f, 10);
    free(lab);
    free(cls);
}

static void net_free(net *m)
{
    clsynth_tensor_free(ctx, m->label);
    clsynth_tensor_free(ctx, m->target);
    clsynth_group_free(ctx, m->g);
}

/* inputs[0] = x; the parameters come from the net (user). */
static clsynth_tensor *net_forward(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    net *m = user;
    clsynth_tensor *h = clsynth_conv2d(c, in[0], m->w1, m->b1, 1, 1);
    clsynth_tensor *hn = clsynth_batch_norm(c, h, m->gamma, m->beta, m->rm, m->rv, true, 0.1f, 1e-5f);
    clsynth_tensor *k = clsynth_conv2d(c, m->label, m->wk, m->bk, 1, 1);
    clsynth_tensor *d = clsynth_cond_dwconv(c, hn, k);
    clsynth_tensor *gate = clsynth_sigmoid(c, clsynth_conv2d(c, m->label, m->wg, m->bg, 1, 1));
    clsynth_tensor *y = clsynth_mul(c, d, gate);
    return clsynth_mse_loss(c, y, m->target);
}

START_TEST(network_gradients_match_finite_differences)
{
    const int tiny = clsynth_test_under_oclgrind();
    const int N = 2, H = tiny ? 4 : 7, W = tiny ? 5 : 9;
    net m;
    net_build(&m, N, H, W);
    float *xh = malloc((size_t)N * CIN * H * W * sizeof *xh);
    clsynth_test_fill_uniform(xh, (size_t)N * CIN * H * W, -1.0f, 1.0f, 11);
    clsynth_tensor *x = clsynth_test_input(ctx, "x", N, CIN, H, W, xh);

    /* the forward runs and gives a finite loss */
    clsynth_no_grad_begin(ctx);
    clsynth_tensor *x_in[1] = { x };
    clsynth_tensor *loss = net_forward(ctx, x_in, &m);
    clsynth_no_grad_end(ctx);
    ck_assert_msg(loss != NULL, "forward: %s", ctx->err.msg);
    float lv = NAN;
    ck_assert_int_eq(clsynth_scalar(ctx, loss, &lv), 0);
    ck_assert_msg(isfinite(lv) && lv > 0.0f, "loss %g", lv);
    clsynth_release_activations(ctx);

    /* every parameter and the input; x is inputs[0] for the forward, the
     * parameters are perturbed in place in the group's flat buffer */
    clsynth_tensor *in[9] = { x, m.w1, m.b1, m.gamma, m.beta, m.wk, m.bk, m.wg, m.bg };
    ck_assert_int_eq(clsynth_group_zero_grad(ctx, m.g), 0);
    clsynth_test_gradcheck(ctx, "conv-bn-cond_dwconv-gate network", net_forward, in, 9, &m, 1e-2f, 2e-5, 3e-2,
                           tiny ? 2 : 6);

    /* b1 is followed by a training-mode batch norm: its gradient is exactly 0 */
    float *gb1 = clsynth_test_download(ctx, m.b1->grad);
    for (int c = 0; c < CH; c++)
        ck_assert_msg(fabsf(gb1[c]) < 1e-5f, "d loss / d conv1.b[%d] = %g, expected 0", c, gb1[c]);
    free(gb1);

    clsynth_tensor_free(ctx, x);
    net_free(&m);
    free(xh);
}
END_TEST

int main(void)
{
    return clsynth_test_main("composed", &ctx, 600,
                             CLSYNTH_TEST_LIST(network_gradients_match_finite_differences));
}
