/* Model checkpoints and the step memory estimate (nets/model.c,
 * nets/footprint.c): a checkpoint with NaN/Inf values is refused naming the
 * tensor and the element, wherever the value is (weights, buffers, Adam
 * moments); the memory estimate of a training step covers what a real step
 * takes, and a step that cannot fit the device is refused before it runs,
 * naming the option to lower. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/tensor.h"
#include "io/checkpoint.h"
#include "nets/footprint.h"
#include "nets/model.h"
#include "testutil.h"

static clsynth_ctx *ctx;

static void setup(void) { ctx = clsynth_test_ctx(); }
static void teardown(void)
{
    clsynth_ctx_free(ctx);
    ctx = NULL;
}

static void tiny_options(clsynth_options *o, int crop, int batch)
{
    clsynth_options_defaults(o);
    char c[16], b[16];
    snprintf(c, sizeof c, "%d", crop);
    snprintf(b, sizeof b, "%d", batch);
    char *argv[] = { "--preset", "tiny", "--crop_size", c, "--load_size", c, "--batchSize", b, "--ngf", "4", "--ndf", "4",
                     "--nhidden", "8", "--label_nc", "5", "--no_vgg_loss" };
    clsynth_err err;
    ck_assert_msg(clsynth_options_parse(o, (int)(sizeof argv / sizeof argv[0]), argv, &err) == 0, "%s", err.msg);
}

/* Rewrites src with value v at element k of the first tensor tagged tag. */
static void plant(const char *src, const char *dst, const char *tag, size_t k, float v, char *name, size_t name_len)
{
    clsynth_err err;
    clsynth_checkpoint *ck = clsynth_checkpoint_load(src, &err);
    ck_assert_msg(ck, "%s", err.msg);
    clsynth_ckpt_tensor_in *in = calloc((size_t)ck->n_tensors, sizeof *in);
    bool done = false;
    for (int i = 0; i < ck->n_tensors; i++) {
        clsynth_ckpt_tensor *t = &ck->tensors[i];
        if (!done && strcmp(t->tag, tag) == 0 && t->count > k) {
            t->data[k] = v;
            snprintf(name, name_len, "%s", t->name);
            done = true;
        }
        in[i] = (clsynth_ckpt_tensor_in){ t->name, t->tag, t->ndim, { t->shape[0], t->shape[1], t->shape[2], t->shape[3] },
                                          t->data };
    }
    ck_assert_msg(done, "no tensor tagged %s", tag);
    ck_assert_msg(clsynth_checkpoint_save(dst, ck->config, ck->step, ck->rng, in, ck->n_tensors, &err) == 0, "%s",
                  err.msg);
    free(in);
    clsynth_checkpoint_free(ck);
}

START_TEST(non_finite_values_anywhere_are_refused_naming_tensor_and_element)
{
    clsynth_options o;
    tiny_options(&o, 32, 2);
    clsynth_err err;
    clsynth_model *m = clsynth_model_create(ctx, &o, &err);
    ck_assert_msg(m, "%s", err.msg);
    ck_assert_msg(clsynth_model_save(ctx, m, "good.ckpt", 7, 1, NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(clsynth_model_load(ctx, m, "good.ckpt", NULL, NULL, NULL, &err) == 0, "%s", err.msg);
    struct {
        const char *tag;
        size_t k;
        float v;
        const char *what;
    } cases[] = { { "param", 5, NAN, "NaN" }, { "param", 0, INFINITY, "Inf" }, { "adam_v", 11, -INFINITY, "Inf" },
                  { "buffer", 1, NAN, "NaN" } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[256], want[400];
        plant("good.ckpt", "bad.ckpt", cases[i].tag, cases[i].k, cases[i].v, name, sizeof name);
        ck_assert_int_ne(clsynth_model_load(ctx, m, "bad.ckpt", NULL, NULL, NULL, &err), 0);
        snprintf(want, sizeof want, "tensor '%s' (%s) holds %s at element %zu", name, cases[i].tag, cases[i].what,
                 cases[i].k);
        ck_assert_msg(strstr(err.msg, want) && strstr(err.msg, "bad.ckpt"), "case %zu: message: %s", i, err.msg);
    }
    clsynth_model_free(ctx, m);
}
END_TEST

/* Pool peak of one real training step of o, from a trimmed pool. */
static double real_step_bytes(const clsynth_options *o)
{
    clsynth_pool_trim(ctx);
    size_t before = clsynth_pool_get_stats(ctx).bytes_reserved;
    clsynth_pool_reset_peak(ctx);
    clsynth_err err;
    clsynth_model *m = clsynth_model_create(ctx, o, &err);
    ck_assert_msg(m, "%s", err.msg);
    int h, w, n = o->batchSize;
    clsynth_options_image_size(o, &h, &w);
    float *host = calloc((size_t)n * 3 * h * w, sizeof *host);
    clsynth_tensor *labels = clsynth_tensor_from_host(ctx, "labels", n, 1, h, w, host);
    clsynth_tensor *edges = clsynth_tensor_from_host(ctx, "edges", n, 1, h, w, host);
    clsynth_tensor *real = clsynth_tensor_from_host(ctx, "real", n, 3, h, w, host);
    clsynth_tensor *seg = clsynth_model_seg(ctx, m, labels, edges);
    clsynth_losses l;
    ck_assert_msg(seg && real && clsynth_train_step(ctx, m, seg, real, &l) == 0, "%s", ctx->err.msg);
    double peak = (double)(clsynth_pool_get_stats(ctx).peak_bytes_reserved - before);
    free(host);
    clsynth_release_activations(ctx);
    clsynth_model_free(ctx, m);
    clsynth_pool_trim(ctx);
    return peak;
}

START_TEST(memory_estimate_covers_a_real_step)
{
    const int sizes[][2] = { { 64, 2 }, { 96, 3 } };
    /* quick mode (a slow implementation): the first size only; the estimate
     * is host arithmetic, the real step the same ops at either size */
    const size_t n_sizes = clsynth_test_quick() ? 1 : sizeof sizes / sizeof sizes[0];
    for (size_t i = 0; i < n_sizes; i++) {
        clsynth_options o;
        tiny_options(&o, sizes[i][0], sizes[i][1]);
        clsynth_step_memory est;
        clsynth_err err;
        ck_assert_msg(clsynth_step_memory_check(ctx, &o, &est, &err) == 0, "%s", err.msg);
        double real = real_step_bytes(&o);
        ck_assert_msg(est.bytes >= real && est.bytes <= 3 * real,
                      "%dx%d batch %d: estimate %.1f MiB, a real step %.1f MiB", sizes[i][0], sizes[i][0], sizes[i][1],
                      est.bytes / 1048576, real / 1048576);
    }
}
END_TEST

START_TEST(a_step_too_big_for_the_device_is_refused_before_it_runs)
{
    clsynth_options o;
    tiny_options(&o, 4096, 4);
    clsynth_step_memory est;
    clsynth_err err;
    ck_assert_int_ne(clsynth_step_memory_check(ctx, &o, &est, &err), 0);
    ck_assert_msg(strstr(err.msg, "(--crop_size 4096), batch 4 needs an estimated") &&
                      strstr(err.msg, "lower --crop_size or --batchSize"),
                  "message: %s", err.msg);
    ck_assert(est.bytes > (double)ctx->dev.global_mem);
    ck_assert(!ctx->failed);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("model_checkpoint");
    TCase *tc = tcase_create("model_checkpoint");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, non_finite_values_anywhere_are_refused_naming_tensor_and_element);
    tcase_add_test(tc, memory_estimate_covers_a_real_step);
    tcase_add_test(tc, a_step_too_big_for_the_device_is_refused_before_it_runs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return clsynth_test_run(suite()); }
