/* The evaluation segmenter: learns a 2-class toy task (bright disc on a dark
 * background, with noise) to high accuracy in a bounded number of steps;
 * checkpoints round-trip; shapes are checked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/rng.h"
#include "nets/metrics.h"
#include "nets/segmenter.h"
#include "testutil.h"

/* n images (n, 3, h, w) in [-1, 1] with a disc of random centre and radius:
 * label 1 inside (value about +0.5), 0 outside (about -0.5), uniform noise
 * +-0.35 per channel; a 255 (ignored) border row on top of every label map. */
static void disc_batch(int n, int h, int w, uint64_t seed, float *img, int32_t *lab)
{
    clsynth_rng r;
    uint64_t key[1] = { seed };
    clsynth_rng_seed(&r, key, 1);
    for (int i = 0; i < n; i++) {
        float cy = clsynth_rng_range(&r, 0.3f * h, 0.7f * h), cx = clsynth_rng_range(&r, 0.3f * w, 0.7f * w);
        float rad = clsynth_rng_range(&r, 0.15f * h, 0.35f * h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int in = (y - cy) * (y - cy) + (x - cx) * (x - cx) <= rad * rad;
                lab[((size_t)i * h + y) * w + x] = y == 0 ? 255 : in;
                for (int c = 0; c < 3; c++)
                    img[(((size_t)i * 3 + c) * h + y) * w + x] =
                        (in ? 0.5f : -0.5f) + clsynth_rng_range(&r, -0.35f, 0.35f);
            }
    }
}

static void score(clsynth_segmenter *s, int n, int h, int w, uint64_t seed, double *miou, double *acc)
{
    float *img = malloc(sizeof(float) * n * 3 * h * w), *logits = malloc(sizeof(float) * n * 2 * h * w);
    int32_t *lab = malloc(sizeof(int32_t) * n * h * w);
    disc_batch(n, h, w, seed, img, lab);
    int rc = clsynth_segmenter_predict(s, img, n, h, w, logits, NULL);
    ck_assert_int_eq(rc, 0);
    clsynth_confusion c;
    clsynth_err err;
    ck_assert_int_eq(clsynth_confusion_init(&c, 2, 255, &err), 0);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(clsynth_confusion_add_logits(&c, lab + (size_t)i * h * w, logits + (size_t)i * 2 * h * w,
                                                      h, w, &err), 0);
    ck_assert_uint_eq(c.ignored, (uint64_t)n * w);
    *miou = clsynth_miou(&c, CLSYNTH_MIOU_PRESENT, NULL, NULL);
    *acc = clsynth_pixel_accuracy(&c);
    clsynth_confusion_free(&c);
    free(img);
    free(logits);
    free(lab);
}

START_TEST(segmenter_learns_a_two_class_toy_task)
{
    /* 16x16 images, nf 4, batch 4, at most 150 Adam steps (lr 5e-3): held-out
     * pixel accuracy must reach 0.95 and mIoU 0.9 (chance is about 0.75
     * accuracy by predicting background everywhere). */
    const int H = 16, W = 16, N = 4, STEPS = 150;
    clsynth_ctx *ctx = clsynth_test_ctx();
    clsynth_segmenter_cfg cfg;
    clsynth_segmenter_cfg_defaults(&cfg);
    cfg.label_nc = 2;
    cfg.nf = 4;
    cfg.lr = 5e-3f;
    clsynth_segmenter *s = clsynth_segmenter_create(ctx, &cfg, 7);
    ck_assert_msg(s != NULL, "%s", ctx->err.msg);
    ck_assert_int_eq(clsynth_segmenter_feature_dim(s), 32);
    float *img = malloc(sizeof(float) * N * 3 * H * W);
    int32_t *lab = malloc(sizeof(int32_t) * N * H * W);
    double miou0, acc0, miou = 0, acc = 0;
    score(s, 32, H, W, 999, &miou0, &acc0);
    float first = 0, loss = 0;
    int step;
    for (step = 0; step < STEPS; step++) {
        disc_batch(N, H, W, 1000 + step, img, lab);
        ck_assert_msg(clsynth_segmenter_train_step(s, img, lab, N, H, W, &loss) == 0, "step %d: %s", step,
                      ctx->err.msg);
        ck_assert_msg(isfinite(loss), "step %d: loss %g", step, loss);
        if (step == 0)
            first = loss;
        if (step % 25 == 24) {
            score(s, 32, H, W, 999, &miou, &acc);
            if (acc >= 0.97 && miou >= 0.93)
                break;
        }
    }
    score(s, 32, H, W, 999, &miou, &acc);
    fprintf(stderr, "toy task: %d steps, loss %.3f -> %.3f, accuracy %.3f -> %.3f, mIoU %.3f -> %.3f\n", step,
            first, loss, acc0, acc, miou0, miou);
    ck_assert_msg(loss < first, "loss did not decrease: %g -> %g", first, loss);
    ck_assert_msg(acc >= 0.95, "held-out pixel accuracy %.3f < 0.95 after %d steps", acc, step);
    ck_assert_msg(miou >= 0.90, "held-out mIoU %.3f < 0.90 after %d steps", miou, step);
    ck_assert_int_eq(clsynth_segmenter_steps(s), step + (step < STEPS ? 1 : 0));
    free(img);
    free(lab);
    clsynth_segmenter_free(s);
    clsynth_ctx_free(ctx);
}
END_TEST

START_TEST(segmenter_checkpoint_round_trips)
{
    const int H = 8, W = 16, N = 2;
    clsynth_ctx *ctx = clsynth_test_ctx();
    clsynth_segmenter_cfg cfg;
    clsynth_segmenter_cfg_defaults(&cfg);
    cfg.label_nc = 3;
    cfg.nf = 2;
    clsynth_segmenter *s = clsynth_segmenter_create(ctx, &cfg, 3);
    ck_assert_msg(s != NULL, "%s", ctx->err.msg);
    float *img = malloc(sizeof(float) * N * 3 * H * W);
    int32_t *lab = malloc(sizeof(int32_t) * N * H * W);
    disc_batch(N, H, W, 5, img, lab);
    for (int i = 0; i < N * H * W; i++)
        if (lab[i] != 255)
            lab[i] = (lab[i] + i) % 3;
    for (int k = 0; k < 3; k++) /* moves weights, running stats and Adam moments */
        ck_assert_msg(clsynth_segmenter_train_step(s, img, lab, N, H, W, NULL) == 0, "%s", ctx->err.msg);
    const int F = clsynth_segmenter_feature_dim(s);
    float *la = malloc(sizeof(float) * N * 3 * H * W), *lb = malloc(sizeof(float) * N * 3 * H * W);
    float *fa = malloc(sizeof(float) * N * F), *fb = malloc(sizeof(float) * N * F);
    ck_assert_int_eq(clsynth_segmenter_predict(s, img, N, H, W, la, fa), 0);
    char path[] = "segmenter_roundtrip.ckpt";
    ck_assert_msg(clsynth_segmenter_save(s, path, "note=test\n") == 0, "%s", ctx->err.msg);
    clsynth_segmenter *t = clsynth_segmenter_load(ctx, path);
    ck_assert_msg(t != NULL, "%s", ctx->err.msg);
    ck_assert_int_eq(clsynth_segmenter_config(t)->label_nc, 3);
    ck_assert_int_eq(clsynth_segmenter_config(t)->nf, 2);
    ck_assert_int_eq(clsynth_segmenter_steps(t), 3);
    ck_assert_int_eq(clsynth_segmenter_predict(t, img, N, H, W, lb, fb), 0);
    ck_assert_mem_eq(la, lb, sizeof(float) * N * 3 * H * W);
    ck_assert_mem_eq(fa, fb, sizeof(float) * N * F);
    /* One more step on each gives identical results too (Adam state restored). */
    ck_assert_int_eq(clsynth_segmenter_train_step(s, img, lab, N, H, W, NULL), 0);
    ck_assert_int_eq(clsynth_segmenter_train_step(t, img, lab, N, H, W, NULL), 0);
    ck_assert_int_eq(clsynth_segmenter_predict(s, img, N, H, W, la, NULL), 0);
    ck_assert_int_eq(clsynth_segmenter_predict(t, img, N, H, W, lb, NULL), 0);
    ck_assert_mem_eq(la, lb, sizeof(float) * N * 3 * H * W);
    unlink(path);
    free(img);
    free(lab);
    free(la);
    free(lb);
    free(fa);
    free(fb);
    clsynth_segmenter_free(s);
    clsynth_segmenter_free(t);
    clsynth_ctx_free(ctx);
}
END_TEST

START_TEST(segmenter_inference_does_not_mix_images_of_a_batch)
{
    /* predict uses the running batch-norm statistics: an image's logits do
     * not depend on the other images of its batch. */
    const int H = 8, W = 8, K = 2;
    clsynth_ctx *ctx = clsynth_test_ctx();
    clsynth_segmenter_cfg cfg;
    clsynth_segmenter_cfg_defaults(&cfg);
    cfg.label_nc = K;
    cfg.nf = 2;
    clsynth_segmenter *s = clsynth_segmenter_create(ctx, &cfg, 4);
    ck_assert_msg(s != NULL, "%s", ctx->err.msg);
    float img[2 * 3 * H * W], other[2 * 3 * H * W], la[2 * K * H * W], lb[2 * K * H * W];
    clsynth_test_fill_uniform(img, 2 * 3 * H * W, -1, 1, 8);
    memcpy(other, img, sizeof(float) * 3 * H * W);
    clsynth_test_fill_uniform(other + 3 * H * W, 3 * H * W, -3, 2, 9);
    ck_assert_int_eq(clsynth_segmenter_predict(s, img, 2, H, W, la, NULL), 0);
    ck_assert_int_eq(clsynth_segmenter_predict(s, other, 2, H, W, lb, NULL), 0);
    /* Tolerance 1e-5 absolute + relative: a tuned conv may block the batch differently. */
    clsynth_test_assert_close("logits of image 0", lb, la, (size_t)K * H * W, 1e-5, 1e-5);
    clsynth_segmenter_free(s);
    clsynth_ctx_free(ctx);
}
END_TEST

START_TEST(segmenter_rejects_sizes_not_multiple_of_8)
{
    clsynth_ctx *ctx = clsynth_test_ctx();
    clsynth_segmenter_cfg cfg;
    clsynth_segmenter_cfg_defaults(&cfg);
    cfg.label_nc = 2;
    cfg.nf = 2;
    clsynth_segmenter *s = clsynth_segmenter_create(ctx, &cfg, 1);
    ck_assert_msg(s != NULL, "%s", ctx->err.msg);
    float img[3 * 12 * 16] = { 0 }, logits[2 * 12 * 16];
    ck_assert_int_eq(clsynth_segmenter_predict(s, img, 1, 12, 16, logits, NULL), -1);
    ck_assert_msg(strstr(ctx->err.msg, "multiples of 8"), "%s", ctx->err.msg);
    clsynth_segmenter_free(s);
    clsynth_ctx_clear_error(ctx);
    cfg.label_nc = 1;
    ck_assert(clsynth_segmenter_create(ctx, &cfg, 1) == NULL);
    ck_assert_msg(strstr(ctx->err.msg, "label_nc 1"), "%s", ctx->err.msg);
    clsynth_ctx_free(ctx);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("segmenter");
    TCase *tc = tcase_create("segmenter");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, segmenter_learns_a_two_class_toy_task);
    tcase_add_test(tc, segmenter_checkpoint_round_trips);
    tcase_add_test(tc, segmenter_inference_does_not_mix_images_of_a_batch);
    tcase_add_test(tc, segmenter_rejects_sizes_not_multiple_of_8);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return clsynth_test_run(suite()); }
