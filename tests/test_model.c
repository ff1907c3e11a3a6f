/* The CC-FPSE model and its ablation variants (nets/): the blocks follow the
 * authors, the label map becomes a one-hot seg with edges, every variant's
 * outputs have the shapes of the spec, one train step changes every parameter,
 * and the parameter counts equal the authors' (tiny configurations: 32x32 or
 * 64x64 images, ngf/ndf 4..8). */
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

/* The authors' block: pointwise convs plain with bias, the learned shortcut
 * spectral-normalized (u and v), the encoder --ngf wide unless --nef is given. */
START_TEST(cc_block_and_encoder_follow_the_authors)
{
    clsynth_options o;
    clsynth_test_tiny_options(&o, 32);
    o.use_vae = true;
    o.nef = 0;
    clsynth_model *m = clsynth_test_model(ctx, &o);
    clsynth_param_group *G = clsynth_model_group(m, "G");
    ck_assert_ptr_nonnull(clsynth_group_find(G, "G.up_0.conv_0.b"));
    ck_assert_ptr_null(clsynth_group_find(G, "G.up_0.conv_0.u"));
    ck_assert_ptr_null(clsynth_group_find(G, "G.up_0.conv_1.u"));
    ck_assert_ptr_nonnull(clsynth_group_find(G, "G.up_0.conv_s.u"));
    clsynth_tensor *v = clsynth_group_find(G, "G.up_0.conv_s.v");
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq((int)v->numel, 16 * o.ngf); /* conv_s (8nf, 16nf, 1, 1): K = 16nf */
    ck_assert_int_eq((int)clsynth_group_find(G, "G.wp.enc2.conv.v")->numel, o.ngf * 9);
    clsynth_tensor *e1 = clsynth_group_find(G, "G.E.layer1.conv.w");
    ck_assert_int_eq(e1->n, o.ngf); /* nef 0: as wide as G */
    size_t e_ngf;
    clsynth_model_param_counts(m, NULL, NULL, &e_ngf);
    clsynth_model_free(ctx, m);
    o.nef = 2;
    m = clsynth_test_model(ctx, &o);
    ck_assert_int_eq(clsynth_group_find(clsynth_model_group(m, "G"), "G.E.layer1.conv.w")->n, 2);
    size_t e_nef;
    clsynth_model_param_counts(m, NULL, NULL, &e_nef);
    ck_assert(e_nef < e_ngf);
    clsynth_model_free(ctx, m);
}
END_TEST

/* ---- model ---- */

START_TEST(seg_is_one_hot_with_dontcare_and_edges)
{
    clsynth_options o;
    clsynth_test_tiny_options(&o, 32);
    o.contain_dontcare_label = 1;
    clsynth_model *m = clsynth_test_model(ctx, &o);
    clsynth_test_scene s;
    clsynth_test_scene_make(&s, 2, 32, 32);
    s.labels[5] = 255.0f; /* a don't-care pixel */
    clsynth_tensor *seg, *real;
    clsynth_test_scene_tensors(ctx, m, &s, &seg, &real);
    clsynth_test_assert_shape(ctx, seg, 2, CLSYNTH_TEST_LABEL_NC + 2, 32, 32, "seg");
    float *h = clsynth_test_download(ctx, seg);
    size_t hw = 32 * 32;
    for (int b = 0; b < 2; b++)
        for (size_t p = 0; p < hw; p++) {
            int lab = (int)s.labels[b * hw + p];
            int ch = lab == 255 ? CLSYNTH_TEST_LABEL_NC : lab;
            for (int c = 0; c < CLSYNTH_TEST_LABEL_NC + 1; c++)
                ck_assert_msg(h[(b * (CLSYNTH_TEST_LABEL_NC + 2) + c) * hw + p] == (c == ch ? 1.0f : 0.0f),
                              "seg[%d, %d, pixel %zu]", b, c, p);
            ck_assert(h[(b * (CLSYNTH_TEST_LABEL_NC + 2) + CLSYNTH_TEST_LABEL_NC + 1) * hw + p] == s.edges[b * hw + p]);
        }
    free(h);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    clsynth_test_scene_free(&s);
    clsynth_model_free(ctx, m);
}
END_TEST

typedef struct variant {
    const char *name;
    const char *netG, *netD;
    bool more, vae, no_pyramid, no_att, no_emb, no_dpyr;
    float aspect;
} variant;

static const variant VARIANTS[] = {
    { "condconv+fpse", "condconv", "fpse", false, false, false, false, false, false, 1.0f },
    { "condconv+fpse more", "condconv", "fpse", true, false, false, false, false, false, 1.0f },
    { "condconv+fpse more aspect 2", "condconv", "fpse", true, false, false, false, false, false, 2.0f },
    { "condconv+fpse vae", "condconv", "fpse", false, true, false, false, false, false, 1.0f },
    { "condconv no_pyramid", "condconv", "fpse", false, false, true, false, false, false, 1.0f },
    { "condconv no_cond_attention", "condconv", "fpse", false, false, false, true, false, false, 1.0f },
    { "fpse no_semantic_embedding", "condconv", "fpse", false, false, false, false, true, false, 1.0f },
    { "fpse no_d_pyramid", "condconv", "fpse", false, false, false, false, false, true, 1.0f },
    { "condconv+multiscale", "condconv", "multiscale", false, false, false, false, false, false, 1.0f },
    { "spade+fpse", "spade", "fpse", false, false, false, false, false, false, 1.0f },
    { "spade+multiscale vae more", "spade", "multiscale", true, true, false, false, false, false, 1.0f },
};

static void variant_opts(clsynth_options *o, const variant *v)
{
    clsynth_test_tiny_options(o, 64);
    if (v->aspect != 1.0f)
        o->data.crop_size = 128;
    o->data.aspect_ratio = v->aspect;
    snprintf(o->netG, sizeof o->netG, "%s", v->netG);
    snprintf(o->netD, sizeof o->netD, "%s", v->netD);
    snprintf(o->num_upsampling_layers, sizeof o->num_upsampling_layers, "%s", v->more ? "more" : "normal");
    o->use_vae = v->vae;
    o->no_pyramid = v->no_pyramid;
    o->no_cond_attention = v->no_att;
    o->no_semantic_embedding = v->no_emb;
    o->no_d_pyramid = v->no_dpyr;
}

static int conv_out(int x, int k, int s, int p) { return (x + 2 * p - k) / s + 1; }

/* Under CLSYNTH_TEST_QUICK (a slow implementation) four variants that together
 * take every generator, discriminator, upsampling count, the aspect ratio and
 * the VAE: the shapes are the model's arithmetic, the same on every device;
 * what the device adds is that the forward runs. */
static bool variant_in_quick_mode(size_t vi) { return vi == 0 || vi == 2 || vi == 8 || vi == 10; }

START_TEST(output_shapes_of_every_variant)
{
    for (size_t vi = 0; vi < sizeof VARIANTS / sizeof VARIANTS[0]; vi++) {
        if (clsynth_test_quick() && !variant_in_quick_mode(vi))
            continue;
        const variant *v = &VARIANTS[vi];
        clsynth_options o;
        variant_opts(&o, v);
        int H, W;
        clsynth_options_image_size(&o, &H, &W);
        clsynth_model *m = clsynth_test_model(ctx, &o);
        clsynth_test_scene s;
        clsynth_test_scene_make(&s, 2, H, W);
        clsynth_tensor *seg, *real;
        clsynth_test_scene_tensors(ctx, m, &s, &seg, &real);
        int snc = clsynth_options_semantic_nc(&o);
        clsynth_test_assert_shape(ctx, seg, 2, snc, H, W, v->name);

        clsynth_no_grad_begin(ctx);
        clsynth_tensor *fake = clsynth_model_generate(ctx, m, seg, v->vae ? real : NULL);
        clsynth_test_assert_shape(ctx, fake, 2, 3, H, W, v->name);
        if (v->vae) /* z ~ N(0, 1) at test time */
            clsynth_test_assert_shape(ctx, clsynth_model_generate(ctx, m, seg, NULL), 2, 3, H, W, v->name);
        clsynth_forward_mode f = { ctx, true, true, NULL, false };
        clsynth_d_out d;
        ck_assert_msg(clsynth_disc_forward(&f, &m->disc, fake, seg, &d) == 0, "%s: D: %s", v->name, ctx->err.msg);
        clsynth_no_grad_end(ctx);
        int nf = o.ndf;
        if (strcmp(v->netD, "fpse") == 0) {
            ck_assert_int_eq(d.n_scores, 3);
            ck_assert_int_eq(d.n_feats, 4);
            for (int k = 0; k < 3; k++)
                clsynth_test_assert_shape(ctx, d.score[k], 2, 1, H >> (k + 2), W >> (k + 2), "fpse score");
            const int fc[4] = { 2 * nf, 4 * nf, 8 * nf, 8 * nf };
            for (int k = 0; k < 4; k++)
                clsynth_test_assert_shape(ctx, d.feat[k], 2, fc[k], H >> (k + 2), W >> (k + 2), "fpse feature");
        } else {
            ck_assert_int_eq(d.n_scores, o.num_D);
            ck_assert_int_eq(d.n_feats, o.num_D * o.n_layers_D);
            int h = H, w = W;
            for (int k = 0; k < o.num_D; k++) {
                int hh = h, ww = w, c = nf;
                for (int n = 0; n <= o.n_layers_D; n++) {
                    int stride = n == 0 ? 2 : n < o.n_layers_D - 1 ? 2 : 1;
                    hh = conv_out(hh, 4, stride, 2);
                    ww = conv_out(ww, 4, stride, 2);
                    if (n > 0 && n < o.n_layers_D)
                        c = 2 * c < 512 ? 2 * c : 512;
                    if (n < o.n_layers_D)
                        clsynth_test_assert_shape(ctx, d.feat[k * o.n_layers_D + n], 2, c, hh, ww, "patchgan feature");
                }
                clsynth_test_assert_shape(ctx, d.score[k], 2, 1, hh, ww, "patchgan score");
                h = conv_out(h, 3, 2, 1);
                w = conv_out(w, 3, 2, 1);
            }
        }
        clsynth_release_activations(ctx);
        clsynth_tensor_free(ctx, seg);
        clsynth_tensor_free(ctx, real);
        clsynth_test_scene_free(&s);
        clsynth_model_free(ctx, m);
    }
}
END_TEST

/* Every parameter tensor of G, E and D changes in one step. */
static void check_all_change(const variant *v)
{
    clsynth_options o;
    variant_opts(&o, v); /* 64×64: the 2×2 head keeps batch norm away from N = 2 values */
    clsynth_model *m = clsynth_test_model(ctx, &o);
    clsynth_test_scene s;
    clsynth_test_scene_make(&s, 2, 64, 64);
    clsynth_tensor *seg, *real;
    clsynth_test_scene_tensors(ctx, m, &s, &seg, &real);
    clsynth_param_group *groups[2] = { clsynth_model_group(m, "G"), clsynth_model_group(m, "D") };
    float *before[2] = { clsynth_test_download_group(ctx, groups[0]), clsynth_test_download_group(ctx, groups[1]) };
    clsynth_losses l;
    ck_assert_msg(clsynth_train_step(ctx, m, seg, real, &l) == 0, "%s: step: %s", v->name, ctx->err.msg);
    for (int gi = 0; gi < 2; gi++) {
        float *after = clsynth_test_download_group(ctx, groups[gi]);
        char unchanged[2048] = "";
        int n_unchanged = 0;
        for (int i = 0; i < groups[gi]->n_params; i++) {
            const clsynth_tensor *p = groups[gi]->params[i];
            /* The bias of the last PatchGAN conv gets d/db = -1 + 1 = 0 from the
             * hinge loss while every score is inside the margin (first steps). */
            if (strstr(p->name, "D.d") && strstr(p->name, ".conv.b") && strstr(p->name, ".layer") &&
                atoi(strstr(p->name, ".layer") + 6) == o.n_layers_D)
                continue;
            bool same = true;
            for (size_t j = 0; j < p->numel && same; j++)
                same = before[gi][p->off + j] == after[p->off + j];
            if (same) {
                n_unchanged++;
                strncat(unchanged, p->name, sizeof unchanged - strlen(unchanged) - 2);
                strncat(unchanged, " ", sizeof unchanged - strlen(unchanged) - 1);
            }
        }
        ck_assert_msg(n_unchanged == 0, "%s: %d parameter tensors unchanged after a step: %s", v->name, n_unchanged,
                      unchanged);
        free(after);
        free(before[gi]);
    }
    ck_assert(isfinite(l.G_GAN) && isfinite(l.D_real) && isfinite(l.D_fake));
    ck_assert(l.G_GAN_Feat > 0);
    if (v->vae)
        ck_assert(l.KLD > 0);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    clsynth_test_scene_free(&s);
    clsynth_model_free(ctx, m);
}

START_TEST(train_step_changes_every_parameter_condconv_fpse_vae)
{
    check_all_change(&VARIANTS[3]);
}
END_TEST

START_TEST(train_step_changes_every_parameter_spade_multiscale)
{
    if (clsynth_test_skip_in_quick_mode("train_step_changes_every_parameter_spade_multiscale (the SPADE baseline)"))
        return;
    variant v = VARIANTS[10];
    v.name = "spade+multiscale";
    v.more = false;
    v.vae = false;
    check_all_change(&v);
}
END_TEST


START_TEST(parameter_counts_of_the_presets)
{
    const char *presets[3] = { "tiny", "small", "paper" };
    size_t last_g = 0;
    for (int pi = 0; pi < 3; pi++)
        for (int gk = 0; gk < 2; gk++) {
            clsynth_options o;
            clsynth_options_defaults(&o);
            clsynth_err err;
            ck_assert_msg(clsynth_options_preset(&o, presets[pi], &err) == 0, "%s", err.msg);
            o.data.label_nc = pi == 2 ? 182 : 10;
            snprintf(o.netG, sizeof o.netG, "%s", gk ? "spade" : "condconv");
            size_t g, d, e;
            o.use_vae = true;
            ck_assert_msg(clsynth_model_count_params(ctx, &o, &g, &d, &e, &err) == 0, "%s", err.msg);
            clsynth_ctx_clear_error(ctx);
            printf("params %-5s %-8s semantic_nc %3d: G %10zu  D(fpse) %9zu  E %9zu\n", presets[pi], o.netG,
                   clsynth_options_semantic_nc(&o), g, d, e);
            ck_assert(g > 0 && d > 0 && e > 0);
            if (gk == 0) { /* tiny < small < paper */
                ck_assert(g > last_g);
                last_g = g;
            }
        }
}
END_TEST

/* The paper configurations have the authors' parameter counts, measured by
 * instantiating their CondConvGenerator, FPSEDiscriminator and ConvEncoder
 * (xh-liu/CC-FPSE, default options, --use_vae; see platforms.md), with
 * clsynth's default --norm_G and with the authors' own spelling of it
 * (spectralsync_batch). Their G also owns three BatchNorms per block that it
 * never uses (26112 parameters at ngf 64), which clsynth does not declare. */
START_TEST(paper_parameter_counts_equal_the_authors)
{
    const struct {
        const char *mode;
        int label_nc, no_instance;
        size_t g, d, e;
    } cfg[3] = { { "coco", 182, 0, 141939843, 5194817, 10463424 },
                 { "ade20k", 150, 1, 140704323, 5190593, 10463424 },
                 { "cityscapes", 35, 0, 128055555, 5175873, 10463424 } };
    const size_t unused = 26112;
    /* clsynth's default --norm_G and the authors' option value */
    const char *norm_G[2] = { "spectralspadesyncbatch3x3", "spectralsync_batch" };
    for (int i = 0; i < 6; i++) {
        clsynth_options o;
        clsynth_options_defaults(&o);
        snprintf(o.norm_G, sizeof o.norm_G, "%s", norm_G[i / 3]);
        snprintf(o.data.dataset_mode, sizeof o.data.dataset_mode, "%s", cfg[i % 3].mode);
        clsynth_err err;
        ck_assert_msg(clsynth_options_preset(&o, "paper", &err) == 0, "%s", err.msg);
        o.data.label_nc = cfg[i % 3].label_nc;
        o.data.no_instance = cfg[i % 3].no_instance;
        o.use_vae = true;
        size_t g, d, e;
        ck_assert_msg(clsynth_model_count_params(ctx, &o, &g, &d, &e, &err) == 0, "%s", err.msg);
        printf("paper %-10s %-26s semantic_nc %3d: G %zu (authors %zu - %zu unused), D %zu, E %zu\n",
               cfg[i % 3].mode, o.norm_G, clsynth_options_semantic_nc(&o), g, cfg[i % 3].g, unused, d, e);
        ck_assert_msg(g == cfg[i % 3].g - unused && d == cfg[i % 3].d && e == cfg[i % 3].e,
                      "%s, --norm_G %s: G %zu D %zu E %zu, the authors' %zu (- %zu) %zu %zu", cfg[i % 3].mode,
                      o.norm_G, g, d, e, cfg[i % 3].g, unused, cfg[i % 3].d, cfg[i % 3].e);
    }
}
END_TEST

int main(void)
{
    return clsynth_test_main_cases("model", &ctx, 900, CLSYNTH_TEST_LIST(
        cc_block_and_encoder_follow_the_authors, seg_is_one_hot_with_dontcare_and_edges,
        output_shapes_of_every_variant, train_step_changes_every_parameter_condconv_fpse_vae,
        train_step_changes_every_parameter_spade_multiscale, parameter_counts_of_the_presets,
        paper_parameter_counts_equal_the_authors));
}
