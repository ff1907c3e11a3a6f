/* clsynth test on a --use_vae checkpoint: the authors' test path (the real
 * image encoded, z = mu + eps·sigma), --z_random, --seed, and --save_float,
 * whose file holds the generator's float output and the inputs it came from.
 * Runs the clsynth binary (tests/testutil.c: clsynth_test_binary) on two 32x32
 * label maps and checks the saved floats against the model run in-process. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clcore/autograd.h"
#include "clcore/ops.h"
#include "io/checkpoint.h"
#include "io/png.h"
#include "nets/model.h"
#include "nets/model_impl.h"
#include "testutil.h"

#define S 32
#define LABEL_NC 4

static clsynth_ctx *ctx;

static void setup(void) { ctx = clsynth_test_ctx(); }

static void teardown(void)
{
    clsynth_ctx_free(ctx);
    ctx = NULL;
}

static void tiny_vae_opts(clsynth_options *o)
{
    clsynth_options_defaults(o);
    o->data.label_nc = LABEL_NC;
    o->data.crop_size = S;
    o->data.load_size = S;
    o->data.aspect_ratio = 1.0f;
    o->contain_dontcare_label = 0;
    o->ngf = 4;
    o->ndf = 4;
    o->z_dim = 8;
    o->nhidden = 8;
    o->use_vae = true;
    o->seed = 3;
}

/* tt/labels/{a,b}.png (ids 0..3 in bands), tt/images/{a,b}.png, tt/model.ckpt. */
static void write_inputs(void)
{
    ck_assert_int_eq(system("rm -rf tt && mkdir -p tt/labels tt/images"), 0);
    clsynth_err err;
    for (int k = 0; k < 2; k++) {
        clsynth_image lab, img;
        ck_assert_int_eq(clsynth_image_alloc(&lab, S, S, 1, &err), 0);
        ck_assert_int_eq(clsynth_image_alloc(&img, S, S, 3, &err), 0);
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                lab.data[y * S + x] = (uint8_t)(((y / 8) + k + (x > S / 2)) % LABEL_NC);
                for (int c = 0; c < 3; c++)
                    img.data[(y * S + x) * 3 + c] = (uint8_t)((x * 7 + y * 3 + c * 50 + k * 90) % 256);
            }
        char path[64];
        snprintf(path, sizeof path, "tt/labels/%c.png", 'a' + k);
        ck_assert_msg(clsynth_png_write(path, &lab, &err) == 0, "%s", err.msg);
        snprintf(path, sizeof path, "tt/images/%c.png", 'a' + k);
        ck_assert_msg(clsynth_png_write(path, &img, &err) == 0, "%s", err.msg);
        clsynth_image_free(&lab);
        clsynth_image_free(&img);
    }
    clsynth_options o;
    tiny_vae_opts(&o);
    clsynth_model *m = clsynth_model_create(ctx, &o, &err);
    ck_assert_msg(m != NULL, "%s", err.msg);
    ck_assert_msg(clsynth_model_save(ctx, m, "tt/model.ckpt", 0, 1, NULL, &err) == 0, "%s", err.msg);
    clsynth_model_free(ctx, m);
}

static void run_test(const char *extra, const char *out)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "'%s' test --checkpoint tt/model.ckpt --label_dir tt/labels --image_dir tt/images "
             "--results_dir tt/res_%s --save_float tt/%s %s > tt/%s.log 2>&1",
             clsynth_test_binary(), out, out, extra, out);
    ck_assert_msg(system(cmd) == 0, "clsynth test %s failed: see tt/%s.log", extra, out);
}

static clsynth_checkpoint *read_floats(const char *dir, const char *stem)
{
    char path[256];
    snprintf(path, sizeof path, "tt/%s/%s.f32.ckpt", dir, stem);
    clsynth_err err;
    clsynth_checkpoint *ck = clsynth_checkpoint_load(path, &err);
    ck_assert_msg(ck != NULL, "%s", err.msg);
    return ck;
}

static const clsynth_ckpt_tensor *get(const clsynth_checkpoint *ck, const char *name, int c, int h, int w)
{
    const clsynth_ckpt_tensor *t;
    clsynth_err err;
    const int shape[4] = { 1, c, h, w };
    ck_assert_msg(clsynth_checkpoint_expect(ck, name, 4, shape, &t, &err) == 0, "%s", err.msg);
    return t;
}

static void assert_config(const clsynth_checkpoint *ck, const char *key, const char *want)
{
    char v[256];
    ck_assert_msg(clsynth_checkpoint_config_get(ck, key, v, sizeof v) == 0, "%s: no %s", ck->path, key);
    ck_assert_msg(strcmp(v, want) == 0, "%s: %s=%s, expected %s", ck->path, key, v, want);
}

/* The saved fake is G(seg(labels, edges), z) and mu/logvar are E(real) of the
 * model in the checkpoint, run here in-process; z = mu + eps·sigma with eps != 0. */
START_TEST(save_float_holds_the_generator_output_of_the_encoded_real_image)
{
    write_inputs();
    run_test("--seed 5", "f5");
    clsynth_checkpoint *ck = read_floats("f5", "a");
    assert_config(ck, "format", "clsynth-test-float");
    assert_config(ck, "z", "encoded");
    const clsynth_ckpt_tensor *fake = get(ck, "fake", 3, S, S), *labels = get(ck, "labels", 1, S, S);
    const clsynth_ckpt_tensor *edges = get(ck, "edges", 1, S, S), *real = get(ck, "real", 3, S, S);
    const clsynth_ckpt_tensor *z = get(ck, "z", 8, 1, 1), *mu = get(ck, "mu", 8, 1, 1);
    const clsynth_ckpt_tensor *logvar = get(ck, "logvar", 8, 1, 1);

    clsynth_options o;
    clsynth_err err;
    ck_assert_msg(clsynth_model_checkpoint_options("tt/model.ckpt", &o, &err) == 0, "%s", err.msg);
    clsynth_model *m = clsynth_model_create(ctx, &o, &err);
    ck_assert_msg(m && clsynth_model_load(ctx, m, "tt/model.ckpt", NULL, NULL, NULL, &err) == 0, "%s", err.msg);
    clsynth_no_grad_begin(ctx);
    clsynth_tensor *tl = clsynth_tensor_from_host(ctx, "labels", 1, 1, S, S, labels->data);
    clsynth_tensor *te = clsynth_tensor_from_host(ctx, "edges", 1, 1, S, S, edges->data);
    clsynth_tensor *seg = clsynth_model_seg(ctx, m, tl, te);
    clsynth_tensor *tz = clsynth_tensor_from_host(ctx, "z", 1, 8, 1, 1, z->data);
    clsynth_forward_mode f = { ctx, false, false, NULL, false };
    float *want = clsynth_test_download(ctx, clsynth_generator_forward(&f, &m->gen, seg, tz));
    clsynth_test_assert_close("saved fake = G(seg, saved z)", fake->data, want, fake->count, 1e-6, 1e-5);
    free(want);
    clsynth_tensor *emu, *elv;
    clsynth_tensor *treal = clsynth_tensor_from_host(ctx, "real", 1, 3, S, S, real->data);
    ck_assert_msg(clsynth_encoder_forward(&f, &m->enc, treal, &emu, &elv) == 0, "%s", ctx->err.msg);
    float *hmu = clsynth_test_download(ctx, emu), *hlv = clsynth_test_download(ctx, elv);
    clsynth_test_assert_close("saved mu = E(real)", mu->data, hmu, 8, 1e-6, 1e-5);
    clsynth_test_assert_close("saved logvar = E(real)", logvar->data, hlv, 8, 1e-6, 1e-5);
    double eps2 = 0;
    for (int i = 0; i < 8; i++) {
        double e = (z->data[i] - mu->data[i]) / exp(0.5 * logvar->data[i]);
        eps2 += e * e;
    }
    ck_assert_msg(eps2 > 0.5 && eps2 < 50, "eps of the saved z: |eps|^2 = %g over 8 draws", eps2);
    /* the real image is the 8-bit PNG scaled to [-1, 1] */
    ck_assert_float_eq_tol(real->data[0], (float)(0 * 7 + 0 + 0) / 127.5f - 1.0f, 1e-6f);
    free(hmu);
    free(hlv);
    clsynth_no_grad_end(ctx);
    clsynth_release_activations(ctx);
    clsynth_model_free(ctx, m);
    clsynth_checkpoint_free(ck);
}
END_TEST

/* The same --seed gives the same z; another seed another z; --z_random draws
 * z from N(0, 1) without encoding (no mu, no real in the file). */
START_TEST(seed_fixes_the_noise_and_z_random_skips_the_encoder)
{
    write_inputs();
    run_test("--seed 5", "s5");
    run_test("--seed 5", "s5b");
    run_test("--seed 6", "s6");
    run_test("--seed 5 --z_random", "zr");
    clsynth_checkpoint *a = read_floats("s5", "b"), *b = read_floats("s5b", "b"), *c = read_floats("s6", "b");
    clsynth_checkpoint *r = read_floats("zr", "b");
    const clsynth_ckpt_tensor *za = get(a, "z", 8, 1, 1), *zb = get(b, "z", 8, 1, 1), *zc = get(c, "z", 8, 1, 1);
    ck_assert_mem_eq(za->data, zb->data, 8 * sizeof(float));
    ck_assert_mem_eq(get(a, "fake", 3, S, S)->data, get(b, "fake", 3, S, S)->data, 3 * S * S * sizeof(float));
    ck_assert_msg(memcmp(za->data, zc->data, 8 * sizeof(float)) != 0, "--seed 6 gave the z of --seed 5");
    assert_config(r, "z", "random");
    ck_assert_ptr_null(clsynth_checkpoint_find(r, "mu"));
    ck_assert_ptr_null(clsynth_checkpoint_find(r, "real"));
    ck_assert_msg(memcmp(get(r, "z", 8, 1, 1)->data, za->data, 8 * sizeof(float)) != 0,
                  "--z_random gave the encoded z");
    clsynth_checkpoint_free(a);
    clsynth_checkpoint_free(b);
    clsynth_checkpoint_free(c);
    clsynth_checkpoint_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("test_command");
    TCase *tc = tcase_create("test_command");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, save_float_holds_the_generator_output_of_the_encoded_real_image);
    tcase_add_test(tc, seed_fixes_the_noise_and_z_random_skips_the_encoder);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
