/* The training step (nets/trainer.c, nets/losses.c): a NaN stops the step
 * before any update and is named, resume equals uninterrupted training, the
 * VGG loss from a weights file, FPSE feature matching as the authors weight it,
 * and two scenes overfit (the real losses lower L1). */
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

/* ---- robustness, checkpoints ---- */

/* A NaN weight: the step fails before any update with a message naming the
 * non-finite quantity, and neither network changes. */
static void nan_case(const char *group, const char *param, const char *must)
{
    clsynth_options o;
    clsynth_test_tiny_options(&o, 32);
    clsynth_model *m = clsynth_test_model(ctx, &o);
    clsynth_test_scene s;
    clsynth_test_scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    clsynth_test_scene_tensors(ctx, m, &s, &seg, &real);
    clsynth_tensor *w = clsynth_group_find(clsynth_model_group(m, group), param);
    ck_assert_msg(w != NULL, "no %s", param);
    float *wv = clsynth_test_download(ctx, w);
    wv[0] = NAN;
    ck_assert_int_eq(clsynth_tensor_upload(ctx, w, wv), 0);
    clsynth_param_group *gs[2] = { clsynth_model_group(m, "G"), clsynth_model_group(m, "D") };
    float *before[2] = { clsynth_test_download_group(ctx, gs[0]), clsynth_test_download_group(ctx, gs[1]) };
    clsynth_losses l;
    ck_assert_int_ne(clsynth_train_step(ctx, m, seg, real, &l), 0);
    ck_assert_msg(strstr(ctx->err.msg, must) && strstr(ctx->err.msg, "NaN") && strstr(ctx->err.msg, "not applied"),
                  "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    for (int k = 0; k < 2; k++) {
        float *after = clsynth_test_download_group(ctx, gs[k]);
        ck_assert_msg(memcmp(before[k], after, gs[k]->total * sizeof(float)) == 0, "%s was updated", gs[k]->name);
        ck_assert_int_eq((int)gs[k]->step, 0);
        free(after);
        free(before[k]);
    }
    free(wv);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    clsynth_test_scene_free(&s);
    clsynth_model_free(ctx, m);
}

START_TEST(nan_loss_fails_the_step_before_the_update)
{
    /* The G step comes first (the authors' order). NaN in D: every score is
     * NaN, so is the first loss read (hinge keeps NaN) */
    nan_case("D", "D.tf.w", "loss G_GAN");
    /* NaN in G: the fake image is NaN, so are D's scores of it */
    nan_case("G", "G.conv_img.w", "loss G_GAN");
}
END_TEST

START_TEST(nan_loss_is_named_and_g_not_updated)
{
    clsynth_options o;
    clsynth_test_tiny_options(&o, 32);
    o.use_vae = true;
    clsynth_model *m = clsynth_test_model(ctx, &o);
    m->opt.lambda_kld = NAN; /* a NaN KLD term in the G step only */
    clsynth_test_scene s;
    clsynth_test_scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    clsynth_test_scene_tensors(ctx, m, &s, &seg, &real);
    clsynth_param_group *G = clsynth_model_group(m, "G");
    float *before = clsynth_test_download_group(ctx, G);
    clsynth_losses l;
    ck_assert_int_ne(clsynth_train_step(ctx, m, seg, real, &l), 0);
    ck_assert_msg(strstr(ctx->err.msg, "loss KLD is NaN") && strstr(ctx->err.msg, "not applied"), "message: %s",
                  ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    float *after = clsynth_test_download_group(ctx, G);
    ck_assert_msg(memcmp(before, after, G->total * sizeof(float)) == 0, "G was updated from a NaN loss");
    ck_assert_int_eq((int)G->step, 0);
    ck_assert_int_eq((int)clsynth_model_group(m, "D")->step, 0); /* the D step, after G's, did not run */
    free(before);
    free(after);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    clsynth_test_scene_free(&s);
    clsynth_model_free(ctx, m);
}
END_TEST



START_TEST(resume_equals_uninterrupted_training)
{
    const int N = clsynth_test_quick() ? 1 : 2, M = N; /* steps before and after the checkpoint */
    clsynth_options o;
    clsynth_test_tiny_options(&o, 32);
    o.use_vae = true; /* exercises the model's RNG counter */
    clsynth_test_scene s;
    clsynth_test_scene_make(&s, 2, 32, 32);
    char path[256];
    snprintf(path, sizeof path, "test_nets_resume_%d.ckpt", (int)getpid());

    clsynth_model *a = clsynth_test_model(ctx, &o);
    clsynth_tensor *seg, *real;
    clsynth_test_scene_tensors(ctx, a, &s, &seg, &real);
    clsynth_test_run_steps(ctx, a, seg, real, N + M);

    clsynth_model *b = clsynth_test_model(ctx, &o);
    clsynth_test_run_steps(ctx, b, seg, real, N);
    clsynth_err err;
    const uint64_t rng[4] = { 1, 2, 3, 4 };
    ck_assert_msg(clsynth_model_save(ctx, b, path, 17, 3, rng, &err) == 0, "save: %s", err.msg);
    clsynth_model_free(ctx, b);

    o.seed = 12345; /* a different init: everything must come from the checkpoint */
    clsynth_model *c = clsynth_test_model(ctx, &o);
    uint64_t step = 0, rng2[4] = { 0 };
    int epoch = 0;
    ck_assert_msg(clsynth_model_load(ctx, c, path, &step, &epoch, rng2, &err) == 0, "load: %s", err.msg);
    ck_assert_int_eq((int)step, 17);
    ck_assert_int_eq(epoch, 3);
    ck_assert(rng2[0] == 1 && rng2[3] == 4);
    clsynth_test_run_steps(ctx, c, seg, real, M);

    const char *names[2] = { "G", "D" };
    for (int gi = 0; gi < 2; gi++) {
        clsynth_param_group *ga = clsynth_model_group(a, names[gi]), *gc = clsynth_model_group(c, names[gi]);
        float *pa = clsynth_test_download_group(ctx, ga), *pc = clsynth_test_download_group(ctx, gc);
        for (int i = 0; i < ga->n_params; i++) {
            const clsynth_tensor *p = ga->params[i];
            char what[128];
            snprintf(what, sizeof what, "resumed %s", p->name);
            clsynth_test_assert_close(what, pc + p->off, pa + p->off, p->numel, 1e-5, 0);
        }
        ck_assert_int_eq((int)ga->step, (int)gc->step);
        free(pa);
        free(pc);
    }
    unlink(path);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    clsynth_test_scene_free(&s);
    clsynth_model_free(ctx, a);
    clsynth_model_free(ctx, c);
}
END_TEST


/* Writes a VGG19 weights file (nets/vgg.h format) with random weights,
 * leaving out the tensor named `skip` (NULL: none). */
static void write_vgg_file(const char *path, const char *skip)
{
    clsynth_ckpt_tensor_in t[2 * CLSYNTH_VGG_LAYERS];
    char names[2 * CLSYNTH_VGG_LAYERS][64];
    float *data[2 * CLSYNTH_VGG_LAYERS];
    int n = 0;
    for (int i = 0; i < CLSYNTH_VGG_LAYERS; i++) {
        const char *name;
        int cin, cout;
        clsynth_vgg_layer(i, &name, &cin, &cout);
        for (int b = 0; b < 2; b++) {
            snprintf(names[n], sizeof names[n], "vgg.%s.%s", name, b ? "bias" : "weight");
            size_t count = b ? (size_t)cout : (size_t)cout * cin * 9;
            data[n] = malloc(count * sizeof(float));
            /* He-like scale keeps the activations O(1) through 13 layers */
            float a = b ? 0.1f : sqrtf(6.0f / (float)(cin * 9));
            clsynth_test_fill_uniform(data[n], count, -a, a, (uint64_t)n + 1);
            if (skip && strcmp(skip, names[n]) == 0) {
                free(data[n]);
                continue;
            }
            memset(&t[n], 0, sizeof t[n]);
            t[n].name = names[n];
            t[n].tag = "param";
            t[n].ndim = b ? 1 : 4;
            t[n].shape[0] = cout;
            t[n].shape[1] = cin;
            t[n].shape[2] = t[n].shape[3] = 3;
            t[n].data = data[n];
            n++;
        }
    }
    clsynth_err err;
    const uint64_t rng[4] = { 0 };
    ck_assert_msg(clsynth_checkpoint_save(path, "format=vgg19\n", 0, rng, t, n, &err) == 0, "%s", err.msg);
    for (int i = 0; i < n; i++)
        free(data[i]);
}

START_TEST(vgg_loss_from_a_weights_file)
{
    char path[256];
    snprintf(path, sizeof path, "test_nets_vgg_%d.ckpt", (int)getpid());
    clsynth_options o;
    clsynth_test_tiny_options(&o, 32);
    /* without a file: skipped with a notice */
    clsynth_model *m = clsynth_test_model(ctx, &o);
    ck_assert_msg(strstr(clsynth_model_notice(m), "VGG loss skipped"), "notice: '%s'", clsynth_model_notice(m));
    clsynth_model_free(ctx, m);
    /* a missing tensor is named */
    write_vgg_file(path, "vgg.conv5_1.bias");
    snprintf(o.vgg_weights, sizeof o.vgg_weights, "%s", path);
    clsynth_err err;
    ck_assert_ptr_null(clsynth_model_create(ctx, &o, &err));
    ck_assert_msg(strstr(err.msg, "vgg.conv5_1.bias"), "'%s'", err.msg);
    clsynth_ctx_clear_error(ctx);
    /* with the file: the G step has a VGG term and it reaches G */
    write_vgg_file(path, NULL);
    m = clsynth_test_model(ctx, &o);
    ck_assert_str_eq(clsynth_model_notice(m), "");
    clsynth_test_scene s;
    clsynth_test_scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    clsynth_test_scene_tensors(ctx, m, &s, &seg, &real);
    clsynth_losses l;
    ck_assert_msg(clsynth_train_step(ctx, m, seg, real, &l) == 0, "%s", ctx->err.msg);
    ck_assert_msg(l.G_VGG > 0 && isfinite(l.G_VGG), "G_VGG %g", l.G_VGG);
    /* the VGG loss of an image with itself is 0, its gradient reaches the fake */
    clsynth_tensor *fake = clsynth_tensor_new_persistent(ctx, "fake", 2, 3, 32, 32);
    ck_assert_int_eq(clsynth_tensor_copy(ctx, fake, real), 0);
    fake->flags |= CLSYNTH_T_REQUIRES_GRAD;
    clsynth_tensor *same = clsynth_vgg_loss(ctx, m->vgg, fake, real);
    float v;
    ck_assert_msg(clsynth_scalar(ctx, same, &v) == 0, "%s", ctx->err.msg);
    ck_assert_float_eq_tol(v, 0.0f, 1e-6f);
    clsynth_tape_clear(ctx);
    clsynth_release_activations(ctx);
    float *noise = malloc(2 * 3 * 32 * 32 * sizeof(float));
    clsynth_test_fill_uniform(noise, 2 * 3 * 32 * 32, -1, 1, 3);
    ck_assert_int_eq(clsynth_tensor_upload(ctx, fake, noise), 0);
    clsynth_tensor *diff = clsynth_vgg_loss(ctx, m->vgg, fake, real);
    ck_assert_msg(clsynth_backward(ctx, diff) == 0, "%s", ctx->err.msg);
    float *g = clsynth_test_download(ctx, fake->grad);
    double gs = 0;
    for (int i = 0; i < 2 * 3 * 32 * 32; i++)
        gs += fabs(g[i]);
    ck_assert_msg(gs > 0, "no VGG gradient reached the fake image");
    free(g);
    free(noise);
    clsynth_tensor_free(ctx, fake);
    unlink(path);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    clsynth_test_scene_free(&s);
    clsynth_model_free(ctx, m);
}
END_TEST

/* The real losses (hinge GAN + feature matching, no reconstruction term) on 2
 * images: the synthesized images approach the real ones.
 *
 * The settings keep the outcome independent of rounding. This test used the
 * reference FPSE and lr 0.004 (G 0.002, D 0.008) and failed on rusticl and
 * Intel's runtime, which run every op within its tests' tolerances and are
 * deterministic run to run: from the same weights, PoCL and Intel agree on the
 * first step's losses to 2e-7, but Adam's first updates are lr * sign(g) and
 * D's (spectral-normalized) weights start near 0.002, so an lr of 0.008 moves
 * them by several times their size per step: a gradient whose sign differs by
 * rounding changed 300 of G's weights by O(lr) after one step, and the
 * trajectories were O(1) apart after three. The L1 after 60 steps was then a
 * draw: on PoCL itself seeds 1..7 gave 0.22..0.47 (2 of 7 passed 1.5x). With
 * the main job's --fpse_plain_enc1 (the reference FPSE, instance-normalized
 * from its first layer, barely sees colour, so feature matching hardly pulls
 * the colours) and half the learning rate, L1 falls steadily: 0.47 -> 0.13..0.24
 * (1.98..3.7x) in 80 steps over seeds 1..7 on PoCL, 1.95x and 2.19x (seeds 6,
 * 7) on Intel's runtime, 2.38x (seed 7) on rusticl; after 60 steps it was
 * still 1.35..2.6x. Those figures predate the authors' defaults (Adam betas
 * 0 / 0.9, plain pointwise convs, G step before D step); with them, seed 7 on
 * PoCL: 0.473 -> 0.194 (2.44x) in 80 steps.
 *
 * 80 steps were still a draw: the norm statistics' reduction order
 * (their tuned work-group on PoCL against the default) alone took seed 7 from
 * 0.156 to 0.366 (1.29x) at step 80. L1 every 20 steps, seeds 1..7 on PoCL
 * with the default order, swings by up to 2x between checkpoints (seed 6:
 * 0.148 at 80, 0.303 at 100), and falls on: at 80 steps 0.148..0.366, at 120
 * 0.135..0.196 (2.4..3.5x), at 160 0.096..0.187. So the check runs 120 steps. */
START_TEST(overfit_two_images_lowers_l1)
{
    if (clsynth_test_skip_in_quick_mode("overfit_two_images_lowers_l1 (120 training steps)"))
        return;
    clsynth_options o;
    clsynth_test_tiny_options(&o, 32);
    o.ngf = 8;
    o.ndf = 8;
    o.nhidden = 16;
    o.fpse_plain_enc1 = true;
    o.lr = 0.002f; /* G 0.001, D 0.004 (TTUR) */
    clsynth_model *m = clsynth_test_model(ctx, &o);
    clsynth_test_scene s;
    clsynth_test_scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    clsynth_test_scene_tensors(ctx, m, &s, &seg, &real);
    const int steps = 120;
    const double factor = 1.5; /* the smallest measured at 120 steps was 2.4x (see above) */
    double l1[2];
    for (int phase = 0; phase < 2; phase++) {
        if (phase == 1)
            clsynth_test_run_steps(ctx, m, seg, real, steps);
        clsynth_no_grad_begin(ctx);
        clsynth_forward_mode f = { ctx, true, false, NULL, false }; /* batch statistics, as in training */
        clsynth_tensor *fake = clsynth_generator_forward(&f, &m->gen, seg, NULL);
        clsynth_tensor *d = clsynth_l1_loss(ctx, fake, real);
        float v;
        ck_assert_msg(clsynth_scalar(ctx, d, &v) == 0, "%s", ctx->err.msg);
        clsynth_no_grad_end(ctx);
        clsynth_release_activations(ctx);
        l1[phase] = v;
    }
    printf("overfit: L1(fake, real) %.4f -> %.4f after %d steps\n", l1[0], l1[1], steps);
    ck_assert_msg(l1[1] * factor < l1[0], "L1 %.4f -> %.4f in %d steps: not lowered %.1fx", l1[0], l1[1], steps,
                  factor);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    clsynth_test_scene_free(&s);
    clsynth_model_free(ctx, m);
}
END_TEST

/* FPSE feature matching weights the four features e2..e5 by 1/4 each, as the
 * reference (lambda_feat / len(feat_fake)): the loss equals lambda times the
 * mean of the four L1s computed on the host (with weight 1 each it was 4x
 * that). --fpse_plain_enc1 (documented deviation) gives enc1 a bias and no norm. */
START_TEST(fpse_feature_matching_weights_and_plain_enc1)
{
    clsynth_options o;
    clsynth_test_tiny_options(&o, 32);
    clsynth_model *m = clsynth_test_model(ctx, &o);
    ck_assert_ptr_null(clsynth_group_find(clsynth_model_group(m, "D"), "D.enc1.conv.b"));
    clsynth_test_scene s;
    clsynth_test_scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    clsynth_test_scene_tensors(ctx, m, &s, &seg, &real);
    float *noise = malloc(2 * 3 * 32 * 32 * sizeof(float));
    clsynth_test_fill_uniform(noise, 2 * 3 * 32 * 32, -1, 1, 5);
    clsynth_tensor *fake = clsynth_tensor_from_host(ctx, "fake", 2, 3, 32, 32, noise);
    clsynth_forward_mode f = { ctx, true, false, NULL, false };
    clsynth_d_out pf, pr;
    ck_assert_msg(clsynth_disc_forward(&f, &m->disc, fake, seg, &pf) == 0 &&
                      clsynth_disc_forward(&f, &m->disc, real, seg, &pr) == 0,
                  "D: %s", ctx->err.msg);
    ck_assert_int_eq(pf.n_feats, 4);
    double want = 0;
    for (int i = 0; i < 4; i++) {
        float *a = clsynth_test_download(ctx, pf.feat[i]), *b = clsynth_test_download(ctx, pr.feat[i]);
        double l1 = 0;
        for (size_t j = 0; j < pf.feat[i]->numel; j++)
            l1 += fabs((double)a[j] - b[j]);
        want += 10.0 * l1 / (double)pf.feat[i]->numel / 4.0;
        free(a);
        free(b);
    }
    float got;
    ck_assert_int_eq(clsynth_scalar(ctx, clsynth_loss_feat(ctx, &pf, &pr, 10.0f), &got), 0);
    ck_assert_msg(want > 0 && fabs(got - want) <= 1e-4 * want, "feature matching %g, want %g (lambda/4 each)", got,
                  want);
    clsynth_release_activations(ctx);
    clsynth_model_free(ctx, m);
    o.fpse_plain_enc1 = true;
    m = clsynth_test_model(ctx, &o);
    clsynth_param_group *D = clsynth_model_group(m, "D");
    ck_assert_ptr_nonnull(clsynth_group_find(D, "D.enc1.conv.b"));
    ck_assert_ptr_null(clsynth_group_find(D, "D.enc2.conv.b"));
    ck_assert_msg(clsynth_disc_forward(&f, &m->disc, real, seg, &pr) == 0, "D plain enc1: %s", ctx->err.msg);
    clsynth_release_activations(ctx);
    clsynth_model_free(ctx, m);
    free(noise);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    clsynth_test_scene_free(&s);
}
END_TEST

int main(void)
{
    return clsynth_test_main_cases("training", &ctx, 900, CLSYNTH_TEST_LIST(
        nan_loss_fails_the_step_before_the_update, nan_loss_is_named_and_g_not_updated,
        resume_equals_uninterrupted_training, vgg_loss_from_a_weights_file, overfit_two_images_lowers_l1,
        fpse_feature_matching_weights_and_plain_enc1));
}
