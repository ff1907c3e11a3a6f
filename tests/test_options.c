/* nets/options.c: presets, explicit flags, errors naming the option and
 * value, the options text, TTUR, learning-rate decay and Adam's betas as the
 * authors set them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clcore/autograd.h"
#include "clcore/ops.h"
#include "nets/layers.h"
#include "nets/losses.h"
#include "nets/model.h"
#include "nets/model_impl.h"
#include "nets/options.h"
#include "nets/vgg.h"
#include "io/checkpoint.h"
#include "nets_fixture.h"
#include "testutil.h"

static clsynth_ctx *ctx;

/* ---- options ---- */

START_TEST(options_preset_then_explicit_flags)
{
    clsynth_options o;
    clsynth_options_defaults(&o);
    clsynth_err err;
    char *argv[] = { "--ngf", "8", "--preset", "tiny", "--netD=multiscale", "--use_vae", "--lr", "0.001" };
    ck_assert_msg(clsynth_options_parse(&o, 8, argv, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(o.ngf, 8); /* explicit flag beats the preset, wherever it stands */
    ck_assert_int_eq(o.ndf, 16); /* from the preset */
    ck_assert_int_eq(o.data.crop_size, 64);
    ck_assert_int_eq(o.batchSize, 2);
    ck_assert_str_eq(o.netD, "multiscale");
    ck_assert(o.use_vae);
    ck_assert_float_eq_tol(o.lr, 0.001f, 1e-9f);

    clsynth_options_defaults(&o);
    char *argv2[] = { "--dataset_mode", "cityscapes", "--preset", "paper" };
    ck_assert_msg(clsynth_options_parse(&o, 4, argv2, &err) == 0, "%s", err.msg);
    int h, w;
    clsynth_options_image_size(&o, &h, &w);
    ck_assert_int_eq(h, 256);
    ck_assert_int_eq(w, 512);
    ck_assert_int_eq(clsynth_options_num_up(&o), 6);
    ck_assert_int_eq(o.ngf, 64);
    o.data.label_nc = 35;
    ck_assert_int_eq(clsynth_options_semantic_nc(&o), 36); /* 35 + edge, no don't care */
    clsynth_options_defaults(&o);
    char *argv3[] = { "--dataset_mode", "coco", "--label_nc", "182" };
    ck_assert_msg(clsynth_options_parse(&o, 4, argv3, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(clsynth_options_semantic_nc(&o), 184); /* 182 + don't care + edge */
}
END_TEST

START_TEST(options_errors_name_option_and_value)
{
    clsynth_options o;
    clsynth_err err;
    struct {
        int argc;
        char *argv[3];
        const char *must1, *must2;
    } cases[] = {
        { 1, { "--bogus" }, "--bogus", "unknown" },
        { 2, { "--ngf", "abc" }, "--ngf", "abc" },
        { 2, { "--ngf", "-3" }, "--ngf", "-3" },
        { 2, { "--netG", "unet" }, "--netG", "unet" },
        { 2, { "--lr", "1e" }, "--lr", "1e" },
        { 1, { "--ndf" }, "--ndf", "value" },
        { 2, { "--norm_D", "spectralfoo" }, "--norm_D", "spectralfoo" },
        { 2, { "--preset", "huge" }, "--preset", "huge" },
        { 2, { "--crop_size", "100" }, "--crop_size", "100" },
        { 1, { "--use_vae=maybe" }, "--use_vae", "maybe" },
        { 3, { "--netG", "--preset", "tiny" }, "--netG needs a value", "'--preset' is the next option" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clsynth_options_defaults(&o);
        err.msg[0] = '\0';
        ck_assert_msg(clsynth_options_parse(&o, cases[i].argc, cases[i].argv, &err) != 0, "case %zu accepted", i);
        ck_assert_msg(strstr(err.msg, cases[i].must1) && strstr(err.msg, cases[i].must2),
                      "case %zu: message '%s' does not name '%s' and '%s'", i, err.msg, cases[i].must1,
                      cases[i].must2);
    }
}
END_TEST

/* Every spelling of a normalization: SPADE's, clsynth's "syncbatch" and the
 * authors' "sync_batch" (their --norm_G spectralsync_batch), which is the
 * synchronized kind; "batch" stays per-process batch norm. */
START_TEST(norm_spellings_parse_to_their_kinds)
{
    const struct {
        const char *s;
        bool spectral;
        clsynth_norm_kind kind;
    } cases[] = {
        { "batch", false, CLSYNTH_NORM_BATCH },
        { "spectralbatch", true, CLSYNTH_NORM_BATCH },
        { "spadebatch3x3", false, CLSYNTH_NORM_BATCH },
        { "syncbatch", false, CLSYNTH_NORM_SYNCBATCH },
        { "spectralsyncbatch", true, CLSYNTH_NORM_SYNCBATCH },
        { "spectralspadesyncbatch3x3", true, CLSYNTH_NORM_SYNCBATCH },
        { "sync_batch", false, CLSYNTH_NORM_SYNCBATCH },
        { "spectralsync_batch", true, CLSYNTH_NORM_SYNCBATCH },
        { "spectralspadesync_batch3x3", true, CLSYNTH_NORM_SYNCBATCH },
        { "instance", false, CLSYNTH_NORM_INSTANCE },
        { "spectralinstance", true, CLSYNTH_NORM_INSTANCE },
        { "spadeinstance3x3", false, CLSYNTH_NORM_INSTANCE },
        { "none", false, CLSYNTH_NORM_NONE },
        { "spectral", true, CLSYNTH_NORM_NONE },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clsynth_norm_cfg cfg;
        clsynth_err err;
        ck_assert_msg(clsynth_norm_parse(cases[i].s, "--norm_G", &cfg, &err) == 0, "'%s': %s", cases[i].s, err.msg);
        ck_assert_msg(cfg.spectral == cases[i].spectral && cfg.kind == cases[i].kind,
                      "'%s' parsed as spectral %d kind %d, expected %d %d", cases[i].s, cfg.spectral, cfg.kind,
                      cases[i].spectral, cases[i].kind);
        ck_assert(clsynth_norm_is_batch(cfg.kind) == (cases[i].kind == CLSYNTH_NORM_BATCH || cases[i].kind == CLSYNTH_NORM_SYNCBATCH));
    }
    const char *bad[] = { "sync", "syncbatchnorm", "sync-batch", "batch_sync" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clsynth_norm_cfg cfg;
        clsynth_err err;
        ck_assert_msg(clsynth_norm_parse(bad[i], "--norm_G", &cfg, &err) != 0, "'%s' accepted", bad[i]);
        ck_assert_msg(strstr(err.msg, bad[i]) && strstr(err.msg, "--norm_G"), "%s", err.msg);
    }
}
END_TEST

START_TEST(options_text_round_trip_and_variant_check)
{
    clsynth_options a, b;
    clsynth_err err;
    clsynth_options_defaults(&a);
    char *argv[] = { "--preset", "small", "--netG", "spade", "--no_d_pyramid", "--lambda_feat", "20",
                     "--dataroot", "/tmp/x y", "--time_budget", "12.5", "--preprocess_mode", "fixed" };
    ck_assert_msg(clsynth_options_parse(&a, 13, argv, &err) == 0, "%s", err.msg);
    char *text = clsynth_options_to_text(&a);
    ck_assert_ptr_nonnull(text);
    clsynth_options_defaults(&b);
    ck_assert_msg(clsynth_options_from_text(&b, text, &err) == 0, "%s", err.msg);
    char *text2 = clsynth_options_to_text(&b);
    ck_assert_str_eq(text, text2);
    ck_assert_msg(clsynth_options_same_variant(&a, &b, &err) == 0, "%s", err.msg);
    b.lr = 0.5f; /* not a variant option */
    ck_assert_int_eq(clsynth_options_same_variant(&a, &b, &err), 0);
    b.no_cond_attention = true;
    ck_assert_int_ne(clsynth_options_same_variant(&a, &b, &err), 0);
    ck_assert_msg(strstr(err.msg, "--no_cond_attention"), "%s", err.msg);
    free(text);
    free(text2);
}
END_TEST

START_TEST(options_ttur_and_linear_decay)
{
    clsynth_options o;
    clsynth_options_defaults(&o);
    o.niter = 2;
    o.niter_decay = 4;
    float g, d;
    clsynth_options_lr(&o, 1, &g, &d);
    ck_assert_float_eq_tol(g, 0.0001f, 1e-9f); /* the spec's TTUR numbers */
    ck_assert_float_eq_tol(d, 0.0004f, 1e-9f);
    clsynth_options_lr(&o, 3, &g, &d);
    ck_assert_float_eq_tol(g, 0.0001f, 1e-9f);
    clsynth_options_lr(&o, 4, &g, &d); /* one decay step: 3/4 */
    ck_assert_float_eq_tol(g, 0.000075f, 1e-9f);
    clsynth_options_lr(&o, 6, &g, &d); /* last epoch: lr / niter_decay */
    ck_assert_float_eq_tol(g, 0.000025f, 1e-9f);
    clsynth_options_lr(&o, 7, &g, &d);
    ck_assert_float_eq_tol(g, 0.0f, 1e-12f);
    o.no_TTUR = true;
    clsynth_options_lr(&o, 1, &g, &d);
    ck_assert_float_eq_tol(g, 0.0002f, 1e-9f);
    ck_assert_float_eq_tol(d, 0.0002f, 1e-9f);
}
END_TEST

/* Adam as the authors: beta1 0, beta2 0.9 under TTUR (hard-coded there), their
 * --beta1 0.5 / --beta2 0.999 defaults with --no_TTUR; an explicit flag wins. */
START_TEST(options_adam_betas_follow_the_authors)
{
    clsynth_options o;
    clsynth_options_defaults(&o);
    float b1, b2;
    clsynth_options_adam_betas(&o, &b1, &b2);
    ck_assert(b1 == 0.0f && b2 == 0.9f);
    o.no_TTUR = true;
    clsynth_options_adam_betas(&o, &b1, &b2);
    ck_assert(b1 == 0.5f && b2 == 0.999f);
    clsynth_err err;
    char *argv[] = { "--beta2", "0.99" };
    clsynth_options_defaults(&o);
    ck_assert_msg(clsynth_options_parse(&o, 2, argv, &err) == 0, "%s", err.msg);
    clsynth_options_adam_betas(&o, &b1, &b2);
    ck_assert(b1 == 0.0f && b2 == 0.99f);
    char *bad[] = { "--beta1", "-0.5" };
    clsynth_options_defaults(&o);
    ck_assert_int_ne(clsynth_options_parse(&o, 2, bad, &err), 0);
    ck_assert_msg(strstr(err.msg, "--beta1"), "%s", err.msg);
    /* the model's groups get them */
    clsynth_test_tiny_options(&o, 32);
    clsynth_model *m = clsynth_test_model(ctx, &o);
    ck_assert(clsynth_model_group(m, "G")->beta2 == 0.9f && clsynth_model_group(m, "D")->beta2 == 0.9f);
    ck_assert(clsynth_model_group(m, "D")->beta1 == 0.0f);
    clsynth_model_free(ctx, m);
}
END_TEST

int main(void)
{
    return clsynth_test_main_cases("options", &ctx, 900, CLSYNTH_TEST_LIST(
        options_preset_then_explicit_flags, options_errors_name_option_and_value,
        norm_spellings_parse_to_their_kinds, options_text_round_trip_and_variant_check,
        options_ttur_and_linear_decay, options_adam_betas_follow_the_authors));
}
