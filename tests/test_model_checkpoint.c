/* Model checkpoints and the step memory estimate (nets/model.c,
 * nets/footprint.c): a checkpoint with NaN/Inf values is refused naming the
 * tensor and the element, wherever the value is (weights, buffers, Adam
 * moments); the memory estimate of a training step covers what a real step
 * takes, and a step that cannot fit the device is refused before it runs,
 * naming the option to lower; a loaded model keeps the spectral-norm pair
 * (u, v) and synthesizes what the saved one did; version-1 files load; a
 * file without Adam moments loads only before any step; another variant's
 * checkpoint is refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clcore/tensor.h"
#include "io/checkpoint.h"
#include "nets/footprint.h"
#include "nets/model.h"
#include "nets/model_impl.h"
#include "nets_fixture.h"
#include "testutil.h"

static clsynth_ctx *ctx;


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

/* Synthesized images of m (eval: running statistics, stored u and v). */
static float *eval_images(clsynth_model *m, clsynth_tensor *seg)
{
    clsynth_no_grad_begin(ctx);
    clsynth_tensor *y = clsynth_model_generate(ctx, m, seg, NULL);
    ck_assert_msg(y != NULL, "generate: %s", ctx->err.msg);
    float *h = clsynth_test_download(ctx, y);
    clsynth_no_grad_end(ctx);
    clsynth_release_activations(ctx);
    return h;
}

/* The stored spectral-norm pair comes back: a loaded model synthesizes the
 * same images as the one saved, bit for bit, after a training step (where the
 * stored v comes from the u before the step, not from the stored u). */
START_TEST(checkpoint_keeps_the_spectral_norm_pair)
{
    clsynth_options o;
    clsynth_test_tiny_options(&o, 32);
    clsynth_model *a = clsynth_test_model(ctx, &o);
    clsynth_test_scene s;
    clsynth_test_scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    clsynth_test_scene_tensors(ctx, a, &s, &seg, &real);
    clsynth_test_run_steps(ctx, a, seg, real, 2);
    char path[256];
    snprintf(path, sizeof path, "test_nets_snpair_%d.ckpt", (int)getpid());
    clsynth_err err;
    ck_assert_msg(clsynth_model_save(ctx, a, path, 2, 1, NULL, &err) == 0, "save: %s", err.msg);
    clsynth_checkpoint *ck = clsynth_checkpoint_load(path, &err);
    ck_assert_msg(ck && ck->version == 2, "%s", ck ? "version" : err.msg);
    ck_assert_ptr_nonnull(clsynth_checkpoint_find(ck, "D.enc3.conv.v"));
    clsynth_checkpoint_free(ck);
    o.seed = 99;
    clsynth_model *b = clsynth_test_model(ctx, &o);
    ck_assert_msg(clsynth_model_load(ctx, b, path, NULL, NULL, NULL, &err) == 0, "load: %s", err.msg);
    float *ya = eval_images(a, seg), *yb = eval_images(b, seg);
    clsynth_test_assert_close("images after save and load", yb, ya, seg->n * 3 * 32 * 32, 0, 0);
    free(ya);
    free(yb);
    unlink(path);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    clsynth_test_scene_free(&s);
    clsynth_model_free(ctx, a);
    clsynth_model_free(ctx, b);
}
END_TEST

/* Host sigma of a version-1 build's eval: (u/|u|) . W normalize(W^T u). */
static double host_v1_sigma(const float *w, int cout, int K, const float *u)
{
    double nu = 0, nv = 0, *v = calloc((size_t)K, sizeof *v), s = 0;
    for (int o = 0; o < cout; o++)
        nu += (double)u[o] * u[o];
    for (int k = 0; k < K; k++) {
        for (int o = 0; o < cout; o++)
            v[k] += (double)w[o * K + k] * u[o];
        nv += v[k] * v[k];
    }
    for (int o = 0; o < cout; o++)
        for (int k = 0; k < K; k++)
            s += u[o] / sqrt(nu) * w[o * K + k] * v[k] / sqrt(nv);
    free(v);
    return s;
}

/* A version-1 checkpoint (no ".v" tensors, spectral norm on the CC blocks'
 * pointwise convs): v is recomputed from u, and a pointwise weight loads as
 * w / sigma of its old u. */
START_TEST(version_1_checkpoint_loads_with_v_from_u_and_plain_pointwise_convs)
{
    clsynth_options o;
    clsynth_test_tiny_options(&o, 32);
    clsynth_model *a = clsynth_test_model(ctx, &o);
    clsynth_test_scene s;
    clsynth_test_scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    clsynth_test_scene_tensors(ctx, a, &s, &seg, &real);
    clsynth_test_run_steps(ctx, a, seg, real, 1);
    char path[256];
    snprintf(path, sizeof path, "test_nets_v1_%d.ckpt", (int)getpid());
    clsynth_err err;
    ck_assert_msg(clsynth_model_save(ctx, a, path, 1, 1, NULL, &err) == 0, "save: %s", err.msg);
    /* rewrite it as a version-1 build wrote it: without v, with a u on G.up_1.conv_1 */
    clsynth_checkpoint *ck = clsynth_checkpoint_load(path, &err);
    ck_assert_msg(ck != NULL, "%s", err.msg);
    clsynth_ckpt_tensor_in *t = calloc((size_t)ck->n_tensors + 1, sizeof *t);
    int n = 0;
    const clsynth_ckpt_tensor *pw = clsynth_checkpoint_find(ck, "G.up_1.conv_1.w");
    ck_assert_ptr_nonnull(pw);
    float u_old[64];
    ck_assert(pw->shape[0] <= 64);
    clsynth_test_fill_uniform(u_old, (size_t)pw->shape[0], -1, 1, 17);
    for (int i = 0; i < ck->n_tensors; i++) {
        const clsynth_ckpt_tensor *x = &ck->tensors[i];
        size_t len = strlen(x->name);
        if (len > 2 && strcmp(x->name + len - 2, ".v") == 0)
            continue;
        t[n] = (clsynth_ckpt_tensor_in){ x->name, x->tag, x->ndim, { x->shape[0], x->shape[1], x->shape[2], x->shape[3] },
                                         x->data };
        n++;
    }
    t[n++] = (clsynth_ckpt_tensor_in){ "G.up_1.conv_1.u", "buffer", 4, { 1, pw->shape[0], 1, 1 }, u_old };
    ck_assert_msg(clsynth_checkpoint_save(path, ck->config, ck->step, ck->rng, t, n, &err) == 0, "%s", err.msg);
    clsynth_test_set_checkpoint_version(path, 1);
    const int cout = pw->shape[0], K = pw->shape[1] * pw->shape[2] * pw->shape[3];
    float *w_file = malloc((size_t)cout * K * sizeof *w_file);
    memcpy(w_file, pw->data, (size_t)cout * K * sizeof *w_file);
    clsynth_checkpoint_free(ck);
    free(t);

    clsynth_model *b = clsynth_test_model(ctx, &o);
    ck_assert_msg(clsynth_model_load(ctx, b, path, NULL, NULL, NULL, &err) == 0, "load v1: %s", err.msg);
    clsynth_param_group *G = clsynth_model_group(b, "G");
    /* the pointwise weight: w / sigma */
    float *w_loaded = clsynth_test_download(ctx, clsynth_group_find(G, "G.up_1.conv_1.w"));
    double sigma = host_v1_sigma(w_file, cout, K, u_old);
    for (int i = 0; i < cout * K; i++)
        w_file[i] = (float)(w_file[i] / sigma);
    clsynth_test_assert_close("pointwise weight of a version-1 file", w_loaded, w_file, (size_t)cout * K, 1e-7, 1e-5);
    /* every v: normalize(W^T u) of the loaded weight and u */
    clsynth_param_group *gs[2] = { G, clsynth_model_group(b, "D") };
    int checked = 0;
    for (int gi = 0; gi < 2; gi++)
        for (int i = 0; i < gs[gi]->n_buffers; i++) {
            clsynth_tensor *v = gs[gi]->buffers[i];
            size_t len = strlen(v->name);
            if (strcmp(v->name + len - 2, ".v") != 0)
                continue;
            char nm[160];
            snprintf(nm, sizeof nm, "%.*s", (int)(len - 1), v->name);
            size_t k = strlen(nm);
            snprintf(nm + k, sizeof nm - k, "w");
            float *w = clsynth_test_download(ctx, clsynth_group_find(gs[gi], nm));
            nm[k] = 'u';
            float *u = clsynth_test_download(ctx, clsynth_group_find(gs[gi], nm));
            float *dv = clsynth_test_download(ctx, v);
            int vc = (int)(clsynth_group_find(gs[gi], nm)->numel), vk = (int)v->numel;
            float *want = malloc((size_t)vk * sizeof *want);
            double nv = 0;
            for (int kk = 0; kk < vk; kk++) {
                double acc = 0;
                for (int oo = 0; oo < vc; oo++)
                    acc += (double)w[oo * vk + kk] * u[oo];
                want[kk] = (float)acc;
                nv += acc * acc;
            }
            for (int kk = 0; kk < vk; kk++)
                want[kk] = (float)(want[kk] / sqrt(nv));
            clsynth_test_assert_close(v->name, dv, want, (size_t)vk, 1e-6, 1e-4);
            free(w), free(u), free(dv), free(want);
            checked++;
        }
    ck_assert_int_gt(checked, 20);
    free(w_loaded);
    free(w_file);
    unlink(path);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    clsynth_test_scene_free(&s);
    clsynth_model_free(ctx, a);
    clsynth_model_free(ctx, b);
}
END_TEST

/* Rewrites a checkpoint without its tensors whose name contains `drop`. */
static void rewrite_without(const char *path, const char *drop)
{
    clsynth_err err;
    clsynth_checkpoint *ck = clsynth_checkpoint_load(path, &err);
    ck_assert_msg(ck != NULL, "%s", err.msg);
    clsynth_ckpt_tensor_in *t = calloc((size_t)ck->n_tensors, sizeof *t);
    int n = 0;
    for (int i = 0; i < ck->n_tensors; i++) {
        const clsynth_ckpt_tensor *x = &ck->tensors[i];
        if (strstr(x->name, drop))
            continue;
        t[n++] = (clsynth_ckpt_tensor_in){ x->name, x->tag, x->ndim,
                                           { x->shape[0], x->shape[1], x->shape[2], x->shape[3] }, x->data };
    }
    ck_assert_msg(clsynth_checkpoint_save(path, ck->config, ck->step, ck->rng, t, n, &err) == 0, "%s", err.msg);
    free(t);
    clsynth_checkpoint_free(ck);
}

/* An import has no Adam moments: they start at zero, and only for a file whose
 * Adam steps are 0; a trained file without them is refused naming the tensor. */
START_TEST(checkpoint_without_adam_moments_loads_only_before_any_step)
{
    clsynth_options o;
    clsynth_test_tiny_options(&o, 32);
    clsynth_model *a = clsynth_test_model(ctx, &o);
    char path[256];
    snprintf(path, sizeof path, "test_nets_noadam_%d.ckpt", (int)getpid());
    clsynth_err err;
    ck_assert_msg(clsynth_model_save(ctx, a, path, 0, 1, NULL, &err) == 0, "save: %s", err.msg);
    rewrite_without(path, ".adam_");
    clsynth_model *b = clsynth_test_model(ctx, &o);
    ck_assert_msg(clsynth_model_load(ctx, b, path, NULL, NULL, NULL, &err) == 0, "load: %s", err.msg);
    float *m = clsynth_test_download(ctx, clsynth_model_group(b, "G")->adam_v);
    ck_assert(m[0] == 0.0f && m[clsynth_model_group(b, "G")->total - 1] == 0.0f);
    free(m);
    clsynth_test_scene s;
    clsynth_test_scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    clsynth_test_scene_tensors(ctx, a, &s, &seg, &real);
    clsynth_test_run_steps(ctx, a, seg, real, 1);
    ck_assert_msg(clsynth_model_save(ctx, a, path, 1, 1, NULL, &err) == 0, "save: %s", err.msg);
    rewrite_without(path, "G.adam_m");
    ck_assert_int_ne(clsynth_model_load(ctx, b, path, NULL, NULL, NULL, &err), 0);
    ck_assert_msg(strstr(err.msg, "G.adam_m") && strstr(err.msg, "missing"), "%s", err.msg);
    unlink(path);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    clsynth_test_scene_free(&s);
    clsynth_model_free(ctx, a);
    clsynth_model_free(ctx, b);
}
END_TEST

START_TEST(checkpoint_of_another_variant_is_refused)
{
    clsynth_options o;
    clsynth_test_tiny_options(&o, 32);
    clsynth_model *a = clsynth_test_model(ctx, &o);
    char path[256];
    snprintf(path, sizeof path, "test_nets_variant_%d.ckpt", (int)getpid());
    clsynth_err err;
    ck_assert_msg(clsynth_model_save(ctx, a, path, 0, 1, NULL, &err) == 0, "save: %s", err.msg);

    struct {
        const char *flag, *value, *must;
    } cases[] = {
        { "netG", "spade", "--netG" },
        { "netD", "multiscale", "--netD" },
        { "no_pyramid", NULL, "--no_pyramid" },
        { "no_cond_attention", NULL, "--no_cond_attention" },
        { "no_semantic_embedding", NULL, "--no_semantic_embedding" },
        { "no_d_pyramid", NULL, "--no_d_pyramid" },
        { "ngf", "8", "--ngf" },
        { "use_vae", NULL, "--use_vae" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clsynth_options ob = o;
        ck_assert_int_eq(clsynth_options_set(&ob, cases[i].flag, cases[i].value, &err), 0);
        clsynth_model *b = clsynth_test_model(ctx, &ob);
        ck_assert_int_ne(clsynth_model_load(ctx, b, path, NULL, NULL, NULL, &err), 0);
        ck_assert_msg(strstr(err.msg, cases[i].must) && strstr(err.msg, "variant"), "case %s: '%s'", cases[i].flag,
                      err.msg);
        clsynth_model_free(ctx, b);
    }
    /* same variant, other shapes: the tensor is named */
    clsynth_options ov = o;
    ov.use_vae = true;
    clsynth_model *v = clsynth_test_model(ctx, &ov);
    ck_assert_msg(clsynth_model_save(ctx, v, path, 0, 1, NULL, &err) == 0, "save: %s", err.msg);
    clsynth_model_free(ctx, v);
    ov.data.crop_size = 64; /* the VAE's linear layers change shape */
    v = clsynth_test_model(ctx, &ov);
    ck_assert_int_ne(clsynth_model_load(ctx, v, path, NULL, NULL, NULL, &err), 0);
    ck_assert_msg(strstr(err.msg, "G.fc.w") || strstr(err.msg, "G.E.fc_mu.w"), "'%s'", err.msg);
    clsynth_model_free(ctx, v);
    unlink(path);
    clsynth_model_free(ctx, a);
}
END_TEST

int main(void)
{
    return clsynth_test_main_cases(
        "model_checkpoint", &ctx, 600,
        CLSYNTH_TEST_LIST(non_finite_values_anywhere_are_refused_naming_tensor_and_element,
                          memory_estimate_covers_a_real_step, a_step_too_big_for_the_device_is_refused_before_it_runs,
                          checkpoint_keeps_the_spectral_norm_pair,
                          version_1_checkpoint_loads_with_v_from_u_and_plain_pointwise_convs,
                          checkpoint_without_adam_moments_loads_only_before_any_step,
                          checkpoint_of_another_variant_is_refused));
}
