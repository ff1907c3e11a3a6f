/* Slow nets/ checks (label "slow"): the tiny preset's step time on the
 * synthetic street scenes, and a longer overfit of the tiny preset with the
 * real losses. Prints what it measures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clcore/autograd.h"
#include "clcore/ops.h"
#include "io/preprocess.h"
#include "io/synth.h"
#include "nets/model.h"
#include "nets/model_impl.h"
#include "testutil.h"

static clsynth_ctx *ctx;

static void setup(void) { ctx = clsynth_test_ctx(); }
static void teardown(void)
{
    clsynth_ctx_free(ctx);
    ctx = NULL;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* n synthetic scenes at size×size as seg (persistent) and real (persistent). */
static void synth_batch(clsynth_model *m, int n, int size, clsynth_tensor **seg, clsynth_tensor **real)
{
    size_t hw = (size_t)size * size;
    float *lab = malloc(n * hw * sizeof(float)), *edge = malloc(n * hw * sizeof(float));
    float *img = malloc(n * 3 * hw * sizeof(float));
    int32_t *ids = malloc(hw * sizeof(int32_t));
    for (int b = 0; b < n; b++) {
        clsynth_image im = { 0 }, la = { 0 }, in = { 0 };
        clsynth_err err;
        ck_assert_msg(clsynth_synth_scene(11, 0, b, size, size, &im, &la, &in, &err) == 0, "%s", err.msg);
        for (size_t p = 0; p < hw; p++) {
            lab[b * hw + p] = la.data[p * la.c];
            ids[p] = in.data[p * in.c];
            for (int c = 0; c < 3; c++)
                img[(b * 3 + c) * hw + p] = im.data[p * 3 + c] / 127.5f - 1.0f;
        }
        clsynth_instance_edges(ids, size, size, edge + b * hw);
        clsynth_image_free(&im);
        clsynth_image_free(&la);
        clsynth_image_free(&in);
    }
    clsynth_tensor *tl = clsynth_tensor_from_host(ctx, "labels", n, 1, size, size, lab);
    clsynth_tensor *te = clsynth_tensor_from_host(ctx, "edges", n, 1, size, size, edge);
    *seg = clsynth_model_seg(ctx, m, tl, te);
    ck_assert_msg(*seg != NULL, "%s", ctx->err.msg);
    clsynth_tensor_keep(ctx, *seg);
    *real = clsynth_tensor_new_persistent(ctx, "real", n, 3, size, size);
    ck_assert(clsynth_tensor_upload(ctx, *real, img) == 0);
    clsynth_release_activations(ctx);
    free(lab);
    free(edge);
    free(img);
    free(ids);
}

static double l1_now(clsynth_model *m, clsynth_tensor *seg, clsynth_tensor *real)
{
    clsynth_no_grad_begin(ctx);
    clsynth_forward_mode f = { ctx, true, false, NULL, false };
    clsynth_tensor *fake = clsynth_generator_forward(&f, &m->gen, seg, NULL);
    float v;
    ck_assert_msg(clsynth_scalar(ctx, clsynth_l1_loss(ctx, fake, real), &v) == 0, "%s", ctx->err.msg);
    clsynth_no_grad_end(ctx);
    clsynth_release_activations(ctx);
    return v;
}

static void tiny_preset(clsynth_options *o, const char *netG, const char *netD)
{
    clsynth_options_defaults(o);
    clsynth_err err;
    ck_assert(clsynth_options_preset(o, "tiny", &err) == 0);
    o->data.label_nc = CLSYNTH_SYN_NUM_CLASSES;
    snprintf(o->netG, sizeof o->netG, "%s", netG);
    snprintf(o->netD, sizeof o->netD, "%s", netD);
}

START_TEST(tiny_preset_step_time)
{
    const char *gs[2] = { "condconv", "spade" }, *ds[2] = { "fpse", "multiscale" };
    for (int k = 0; k < 2; k++) {
        clsynth_options o;
        tiny_preset(&o, gs[k], ds[k]);
        clsynth_err err;
        clsynth_model *m = clsynth_model_create(ctx, &o, &err);
        ck_assert_msg(m != NULL, "%s", err.msg);
        clsynth_tensor *seg, *real;
        synth_batch(m, o.batchSize, o.data.crop_size, &seg, &real);
        clsynth_losses l;
        ck_assert_msg(clsynth_train_step(ctx, m, seg, real, &l) == 0, "%s", ctx->err.msg); /* compiles kernels */
        const int n = 3;
        double t0 = now_s();
        for (int i = 0; i < n; i++)
            ck_assert_msg(clsynth_train_step(ctx, m, seg, real, &l) == 0, "%s", ctx->err.msg);
        double dt = (now_s() - t0) / n;
        size_t g, d, e;
        clsynth_model_param_counts(m, &g, &d, &e);
        printf("tiny preset %s+%s (batch %d, %dx%d, G %zu, D %zu params): %.3f s per train step on %s\n", gs[k],
               ds[k], o.batchSize, o.data.crop_size, o.data.crop_size, g, d, dt, ctx->dev.name);
        clsynth_pool_stats ps = clsynth_pool_get_stats(ctx);
        printf("  device memory peak %.1f MiB\n", ps.peak_bytes_reserved / 1048576.0);
        clsynth_tensor_free(ctx, seg);
        clsynth_tensor_free(ctx, real);
        clsynth_model_free(ctx, m);
    }
}
END_TEST

START_TEST(tiny_preset_overfits_two_synthetic_scenes)
{
    clsynth_options o;
    tiny_preset(&o, "condconv", "fpse");
    /* As the main job: without VGG weights the reference FPSE (instance norm from
     * its first layer) is contrast-blind and 150 steps leave the samples gray
     * (measured: L1 0.311 -> 0.305); a plain first layer shows the fit. */
    o.fpse_plain_enc1 = true;
    clsynth_err err;
    clsynth_model *m = clsynth_model_create(ctx, &o, &err);
    ck_assert_msg(m != NULL, "%s", err.msg);
    clsynth_tensor *seg, *real;
    synth_batch(m, 2, o.data.crop_size, &seg, &real);
    double l0 = l1_now(m, seg, real);
    const int steps = 150;
    double t0 = now_s();
    for (int i = 1; i <= steps; i++) {
        clsynth_losses l;
        ck_assert_msg(clsynth_train_step(ctx, m, seg, real, &l) == 0, "%s", ctx->err.msg);
        if (i % 50 == 0)
            printf("step %d (%.0f s): G_GAN %.3f feat %.3f D_real %.3f D_fake %.3f L1 %.4f\n", i, now_s() - t0,
                   l.G_GAN, l.G_GAN_Feat, l.D_real, l.D_fake, l1_now(m, seg, real));
    }
    double l1 = l1_now(m, seg, real);
    printf("tiny preset overfit: L1 %.4f -> %.4f in %d steps\n", l0, l1, steps);
    /* measured on PoCL: 0.3106 -> 0.2402 (1.29x) in 150 steps with the authors' Adam betas, plain
     * pointwise convs and G-then-D order (0.2319, 1.34x, before) */
    ck_assert_msg(l1 * 1.25 < l0, "L1 %.4f -> %.4f: less than a 1.25x drop", l0, l1);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    clsynth_model_free(ctx, m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("nets_slow");
    TCase *t = tcase_create("slow");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 3600);
    tcase_add_test(t, tiny_preset_step_time);
    tcase_add_test(t, tiny_preset_overfits_two_synthetic_scenes);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return clsynth_test_run(suite()); }
