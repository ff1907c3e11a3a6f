/* Gradients of whole networks against central differences: the generators
 * (CC-FPSE, SPADE) and discriminators (FPSE, multiscale PatchGAN) on tiny
 * configurations, batch statistics and the spectral-norm vector u fixed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clcore/autograd.h"
#include "clcore/ops.h"
#include "nets/losses.h"
#include "nets/model.h"
#include "nets/model_impl.h"
#include "nets/options.h"
#include "nets/vgg.h"
#include "io/checkpoint.h"
#include "nets_fixture.h"
#include "testutil.h"

static clsynth_ctx *ctx;

/* ---- gradient checks ---- */

typedef double (*loss_fn)(clsynth_model *m, clsynth_tensor *seg, clsynth_tensor *real, const float *r, bool grad);

/* G: L = Σ G(seg) · R (batch statistics, u fixed). */
static double g_loss(clsynth_model *m, clsynth_tensor *seg, clsynth_tensor *real, const float *r, bool grad)
{
    clsynth_forward_mode f = { ctx, true, false, NULL, false };
    clsynth_tensor *out = clsynth_generator_forward(&f, &m->gen, seg, NULL);
    ck_assert_msg(out != NULL, "G: %s", ctx->err.msg);
    float *h = clsynth_test_download(ctx, out);
    double l = 0;
    for (size_t i = 0; i < out->numel; i++)
        l += (double)h[i] * r[i];
    free(h);
    if (grad) {
        clsynth_tensor *rt = clsynth_tensor_from_host(ctx, "R", out->n, out->c, out->h, out->w, r);
        ck_assert_msg(clsynth_backward_with(ctx, out, rt) == 0, "G backward: %s", ctx->err.msg);
    }
    return l;
}

/* D: L = Σ_k Σ D_k(fake) · R_k + Σ_k Σ D_k(real) · R'_k for a fixed fake (u fixed),
 * summed on the host in double. */
static double d_loss(clsynth_model *m, clsynth_tensor *seg, clsynth_tensor *real, const float *r, bool grad)
{
    clsynth_forward_mode f = { ctx, true, false, NULL, false };
    clsynth_tensor *fake = clsynth_tensor_from_host(ctx, "fake", real->n, 3, real->h, real->w, r);
    clsynth_d_out out[2];
    ck_assert_msg(clsynth_disc_forward(&f, &m->disc, fake, seg, &out[0]) == 0 &&
                      clsynth_disc_forward(&f, &m->disc, real, seg, &out[1]) == 0,
                  "D: %s", ctx->err.msg);
    double l = 0;
    clsynth_tensor *seeded = NULL;
    size_t ri = 0;
    for (int side = 0; side < 2; side++)
        for (int k = 0; k < out[side].n_scores; k++) {
            clsynth_tensor *sc = out[side].score[k];
            float *h = clsynth_test_download(ctx, sc);
            float *w = malloc(sc->numel * sizeof *w);
            for (size_t i = 0; i < sc->numel; i++) {
                w[i] = r[(ri++ * 7919) % ((size_t)real->numel)];
                l += (double)h[i] * w[i];
            }
            if (grad) { /* Σ score · w as a device scalar for backward */
                clsynth_tensor *wt = clsynth_tensor_from_host(ctx, "w", sc->n, sc->c, sc->h, sc->w, w);
                clsynth_tensor *t = clsynth_sum(ctx, clsynth_mul(ctx, sc, wt));
                seeded = seeded ? clsynth_add(ctx, seeded, t) : t;
            }
            free(h);
            free(w);
        }
    if (grad)
        ck_assert_msg(clsynth_backward(ctx, seeded) == 0, "D backward: %s", ctx->err.msg);
    return l;
}

/* (L(w_j + eps) - L(w_j - eps)) / 2eps, w_j restored. */
static double central_difference(clsynth_model *m, clsynth_param_group *g, clsynth_tensor *seg, clsynth_tensor *real,
                                 const float *r, loss_fn fn, const float *data, size_t j, float eps)
{
    clsynth_tensor *one = clsynth_tensor_view(ctx, g->flat_data, "probe", j, 1, 1, 1, 1);
    float v = data[j] + eps;
    ck_assert_int_eq(clsynth_tensor_upload(ctx, one, &v), 0);
    double lp = fn(m, seg, real, r, false);
    v = data[j] - eps;
    ck_assert_int_eq(clsynth_tensor_upload(ctx, one, &v), 0);
    double lm = fn(m, seg, real, r, false);
    ck_assert_int_eq(clsynth_tensor_upload(ctx, one, &data[j]), 0);
    clsynth_release_activations(ctx);
    return (lp - lm) / (2.0 * ((double)(data[j] + eps) - (double)data[j]));
}

/* Samples up to max_tensors parameter tensors, spread over the group; under
 * CLSYNTH_TEST_QUICK finite differences for the first fifth of those samples
 * only (at least 4; every op has its own gradient test there), with the same
 * tolerance: the samples left out count in its scale with their analytic
 * gradient. The same samples, not a new spread: with eps at 1% of a tensor's
 * scale some other samples cross kinks (measured: G condconv's
 * G.wp.enc4.norm.gamma[2], D fpse's D.enc2.conv.w[155] disagree at eps 1% and
 * agree at 0.1%). */
static void gradcheck_group(const char *what, clsynth_model *m, clsynth_param_group *g, loss_fn fn, int max_tensors)
{
    const int limit = !clsynth_test_quick() ? max_tensors : max_tensors / 5 > 4 ? max_tensors / 5 : 4;
    clsynth_test_scene s;
    int size = m->opt.data.crop_size;
    clsynth_test_scene_make(&s, 2, size, size);
    clsynth_tensor *seg, *real;
    clsynth_test_scene_tensors(ctx, m, &s, &seg, &real);
    size_t rn = (size_t)2 * 3 * size * size;
    float *r = malloc(rn * sizeof *r);
    clsynth_test_fill_uniform(r, rn, -1.0f, 1.0f, 99);
    /* weights at unit scale (xavier gain 1): with the training init (gain 0.02)
     * activations are ~1e-3 and finite differences keep crossing ReLU kinks */
    for (int i = 0; i < g->n_params; i++)
        if (strstr(g->params[i]->name, ".w"))
            ck_assert_int_eq(clsynth_init_xavier(ctx, g->params[i], 1.0f, 5, (uint64_t)i), 0);
    /* spectral-norm v of the new weights, as the model's init does (a stale v
     * could make sigma = u.Wv tiny or negative) */
    ck_assert_msg(clsynth_init_spectral_v(ctx, g, NULL) == 0, "%s", ctx->err.msg);
    /* analytic */
    ck_assert_int_eq(clsynth_group_zero_grad(ctx, g), 0);
    fn(m, seg, real, r, true);
    float *grad = clsynth_test_download(ctx, g->flat_grad);
    float *data = clsynth_test_download_group(ctx, g);
    int stride = g->n_params / max_tensors + 1;
    int n = 0, bad = 0, kinks = 0;
    double num[512], ana[512], half[512];
    int which[512];
    size_t idxs[512], pos[512];
    float step[512];
    clsynth_no_grad_begin(ctx);
    double scale = 0;
    for (int i = (int)(g->n_params % stride) / 2; i < g->n_params && n < 512; i += stride) {
        clsynth_tensor *p = g->params[i];
        size_t j = p->off + (p->numel * 7 / 13);
        if (n >= limit) { /* left out: its gradient still sets the scale */
            scale = fmax(scale, fabs((double)grad[j]));
            continue;
        }
        double rms = 0;
        for (size_t k = 0; k < p->numel; k++)
            rms += (double)data[p->off + k] * data[p->off + k];
        rms = sqrt(rms / (double)p->numel);
        step[n] = (float)(rms > 1e-3 ? 0.01 * rms : 1e-3); /* 1% of the tensor's scale (zero biases: 1e-3) */
        num[n] = central_difference(m, g, seg, real, r, fn, data, j, step[n]);
        ana[n] = grad[j];
        which[n] = i;
        idxs[n] = j - p->off;
        pos[n] = j;
        n++;
    }
    for (int k = 0; k < n; k++)
        scale = fmax(scale, fabs(num[k]));
    /* |analytic - numeric| <= 2% of the largest sampled gradient + 5% relative.
     * A sample that disagrees is measured again with half the step: when the
     * two differences disagree with each other as much, the step crossed a
     * kink (ReLU, LeakyReLU) and the sample is skipped (at most 2); when they
     * agree, the analytic gradient is wrong. */
    double atol = 0.02 * scale + 1e-7, rtol = 0.05;
    char msg[4096] = "";
    for (int k = 0; k < n; k++) {
        half[k] = num[k];
        if (fabs(ana[k] - num[k]) <= atol + rtol * fabs(num[k]))
            continue;
        half[k] = central_difference(m, g, seg, real, r, fn, data, pos[k], 0.5f * step[k]);
        bool kink = fabs(half[k] - num[k]) > atol + rtol * fabs(half[k]);
        bool wrong = fabs(ana[k] - half[k]) > atol + rtol * fabs(half[k]);
        if (kink && wrong && kinks < 2) {
            kinks++;
            printf("%s: %s[%zu] skipped at a kink: numeric %.6g (step %g), %.6g (half), analytic %.6g\n", what,
                   g->params[which[k]]->name, idxs[k], num[k], step[k], half[k], ana[k]);
        } else if (wrong) {
            bad++;
            char line[256];
            snprintf(line, sizeof line, "\n  %s[%zu]: analytic %.6g, numeric %.6g (half step %.6g)",
                     g->params[which[k]]->name, idxs[k], ana[k], num[k], half[k]);
            strncat(msg, line, sizeof msg - strlen(msg) - 1);
        }
    }
    clsynth_no_grad_end(ctx);
    ck_assert_msg(bad == 0, "%s: %d of %d sampled parameters disagree (atol %.3g, rtol %.2g):%s", what, bad, n, atol,
                  rtol, msg);
    ck_assert_msg(n >= limit / 2, "%s: only %d samples", what, n);
    free(r);
    free(grad);
    free(data);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    clsynth_test_scene_free(&s);
}

START_TEST(gradcheck_generator_condconv)
{
    clsynth_options o;
    clsynth_test_tiny_options(&o, 64);
    clsynth_model *m = clsynth_test_model(ctx, &o);
    gradcheck_group("G condconv", m, clsynth_model_group(m, "G"), g_loss, 40);
    clsynth_model_free(ctx, m);
}
END_TEST

/* Under CLSYNTH_TEST_QUICK the two baselines' gradient checks (SPADE, the
 * multi-scale PatchGAN) are left out: CC-FPSE's own G and D are checked, and
 * the baselines' ops (SPADE's norm, convs, leaky ReLU) are in those or have
 * their own op tests (with all four, the quick test_nets ran past 900 s on
 * rusticl at load 15). */
START_TEST(gradcheck_generator_spade)
{
    if (clsynth_test_skip_in_quick_mode("gradcheck_generator_spade (a baseline)"))
        return;
    clsynth_options o;
    clsynth_test_tiny_options(&o, 64);
    snprintf(o.netG, sizeof o.netG, "spade");
    clsynth_model *m = clsynth_test_model(ctx, &o);
    gradcheck_group("G spade", m, clsynth_model_group(m, "G"), g_loss, 20);
    clsynth_model_free(ctx, m);
}
END_TEST

START_TEST(gradcheck_discriminator_fpse)
{
    clsynth_options o;
    clsynth_test_tiny_options(&o, 64);
    clsynth_model *m = clsynth_test_model(ctx, &o);
    gradcheck_group("D fpse", m, clsynth_model_group(m, "D"), d_loss, 30);
    clsynth_model_free(ctx, m);
}
END_TEST

START_TEST(gradcheck_discriminator_multiscale)
{
    if (clsynth_test_skip_in_quick_mode("gradcheck_discriminator_multiscale (a baseline)"))
        return;
    clsynth_options o;
    clsynth_test_tiny_options(&o, 64);
    snprintf(o.netD, sizeof o.netD, "multiscale");
    clsynth_model *m = clsynth_test_model(ctx, &o);
    gradcheck_group("D multiscale", m, clsynth_model_group(m, "D"), d_loss, 20);
    clsynth_model_free(ctx, m);
}
END_TEST

int main(void)
{
    return clsynth_test_main_cases("model_gradients", &ctx, 900, CLSYNTH_TEST_LIST(
        gradcheck_generator_condconv, gradcheck_generator_spade, gradcheck_discriminator_fpse,
        gradcheck_discriminator_multiscale));
}
