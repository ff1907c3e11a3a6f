/* nets/: options, the CC-FPSE model and its ablation variants, the training
 * step and checkpoints, on tiny configurations (32×32 or 64×64 images,
 * ngf/ndf 4..8). */
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
#include "testutil.h"

static clsynth_ctx *ctx;

static void setup(void) { ctx = clsynth_test_ctx(); }

static void teardown(void)
{
    clsynth_ctx_free(ctx);
    ctx = NULL;
}

/* ---- fixtures ---- */

#define LABEL_NC 4

/* Tiny options: label_nc 4 + edge channel = semantic_nc 5. */
static void tiny_opts(clsynth_options *o, int crop)
{
    clsynth_options_defaults(o);
    o->data.label_nc = LABEL_NC;
    o->data.crop_size = crop;
    o->data.load_size = crop;
    o->data.aspect_ratio = 1.0f;
    o->contain_dontcare_label = 0;
    o->ngf = 4;
    o->ndf = 4;
    o->nef = 4;
    o->z_dim = 8;
    o->nhidden = 8;
    o->batchSize = 2;
    o->seed = 7;
}

/* Two scenes of rectangles: labels (N,1,H,W) as float ids, instance edges
 * (N,1,H,W), and images (N,3,H,W) with one colour (plus a ramp) per class. */
typedef struct scene {
    int n, h, w;
    float *labels, *edges, *images;
} scene;

static void scene_make(scene *s, int n, int h, int w)
{
    static const float colors[LABEL_NC][3] = {
        { 0.3f, 0.5f, 0.9f }, { -0.4f, -0.4f, -0.3f }, { 0.1f, 0.7f, -0.5f }, { 0.9f, -0.6f, -0.2f }
    };
    s->n = n;
    s->h = h;
    s->w = w;
    size_t hw = (size_t)h * w;
    s->labels = calloc((size_t)n * hw, sizeof(float));
    s->edges = calloc((size_t)n * hw, sizeof(float));
    s->images = calloc((size_t)n * 3 * hw, sizeof(float));
    int *inst = calloc(hw, sizeof(int));
    for (int b = 0; b < n; b++) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int lab = y < h / 3 ? 0 : y > (2 * h) / 3 ? 1 : 2; /* sky, road, vegetation */
                int id = lab;
                int x0 = (b == 0 ? w / 5 : w / 2), x1 = x0 + w / 4;
                if (x >= x0 && x < x1 && y >= h / 2 && y < h - 2) {
                    lab = 3; /* car */
                    id = 10 + b;
                }
                s->labels[b * hw + y * w + x] = (float)lab;
                inst[y * w + x] = id;
                for (int c = 0; c < 3; c++)
                    s->images[(b * 3 + c) * hw + y * w + x] =
                        colors[lab][c] + 0.2f * ((float)x / (float)w - 0.5f) * (c == b ? 1.0f : -1.0f);
            }
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int id = inst[y * w + x];
                int e = (x > 0 && inst[y * w + x - 1] != id) || (x + 1 < w && inst[y * w + x + 1] != id) ||
                        (y > 0 && inst[(y - 1) * w + x] != id) || (y + 1 < h && inst[(y + 1) * w + x] != id);
                s->edges[b * hw + y * w + x] = (float)e;
            }
    }
    free(inst);
}

static void scene_free(scene *s)
{
    free(s->labels);
    free(s->edges);
    free(s->images);
}

/* Persistent seg and real tensors of a scene for model m. */
static void scene_tensors(clsynth_model *m, const scene *s, clsynth_tensor **seg, clsynth_tensor **real)
{
    clsynth_tensor *lab = clsynth_tensor_from_host(ctx, "labels", s->n, 1, s->h, s->w, s->labels);
    clsynth_tensor *edg = clsynth_tensor_from_host(ctx, "edges", s->n, 1, s->h, s->w, s->edges);
    *seg = clsynth_model_seg(ctx, m, lab, edg);
    ck_assert_msg(*seg != NULL, "seg: %s", ctx->err.msg);
    clsynth_tensor_keep(ctx, *seg);
    *real = clsynth_tensor_new_persistent(ctx, "real", s->n, 3, s->h, s->w);
    ck_assert_msg(*real && clsynth_tensor_upload(ctx, *real, s->images) == 0, "real: %s", ctx->err.msg);
    clsynth_release_activations(ctx);
}

static clsynth_model *make_model(const clsynth_options *o)
{
    clsynth_err err;
    clsynth_model *m = clsynth_model_create(ctx, o, &err);
    ck_assert_msg(m != NULL, "model: %s", err.msg);
    return m;
}

static float *download_group(clsynth_param_group *g)
{
    return clsynth_test_download(ctx, g->flat_data);
}

static void assert_shape(const clsynth_tensor *t, int n, int c, int h, int w, const char *what)
{
    ck_assert_msg(t != NULL, "%s missing: %s", what, ctx->err.msg);
    ck_assert_msg(t->n == n && t->c == c && t->h == h && t->w == w, "%s: (%d, %d, %d, %d), expected (%d, %d, %d, %d)",
                  what, t->n, t->c, t->h, t->w, n, c, h, w);
}

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
    tiny_opts(&o, 32);
    clsynth_model *m = make_model(&o);
    ck_assert(clsynth_model_group(m, "G")->beta2 == 0.9f && clsynth_model_group(m, "D")->beta2 == 0.9f);
    ck_assert(clsynth_model_group(m, "D")->beta1 == 0.0f);
    clsynth_model_free(ctx, m);
}
END_TEST

/* The authors' block: pointwise convs plain with bias, the learned shortcut
 * spectral-normalized (u and v), the encoder --ngf wide unless --nef is given. */
START_TEST(cc_block_and_encoder_follow_the_authors)
{
    clsynth_options o;
    tiny_opts(&o, 32);
    o.use_vae = true;
    o.nef = 0;
    clsynth_model *m = make_model(&o);
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
    m = make_model(&o);
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
    tiny_opts(&o, 32);
    o.contain_dontcare_label = 1;
    clsynth_model *m = make_model(&o);
    scene s;
    scene_make(&s, 2, 32, 32);
    s.labels[5] = 255.0f; /* a don't-care pixel */
    clsynth_tensor *seg, *real;
    scene_tensors(m, &s, &seg, &real);
    assert_shape(seg, 2, LABEL_NC + 2, 32, 32, "seg");
    float *h = clsynth_test_download(ctx, seg);
    size_t hw = 32 * 32;
    for (int b = 0; b < 2; b++)
        for (size_t p = 0; p < hw; p++) {
            int lab = (int)s.labels[b * hw + p];
            int ch = lab == 255 ? LABEL_NC : lab;
            for (int c = 0; c < LABEL_NC + 1; c++)
                ck_assert_msg(h[(b * (LABEL_NC + 2) + c) * hw + p] == (c == ch ? 1.0f : 0.0f),
                              "seg[%d, %d, pixel %zu]", b, c, p);
            ck_assert(h[(b * (LABEL_NC + 2) + LABEL_NC + 1) * hw + p] == s.edges[b * hw + p]);
        }
    free(h);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    scene_free(&s);
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
    tiny_opts(o, 64);
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
        clsynth_model *m = make_model(&o);
        scene s;
        scene_make(&s, 2, H, W);
        clsynth_tensor *seg, *real;
        scene_tensors(m, &s, &seg, &real);
        int snc = clsynth_options_semantic_nc(&o);
        assert_shape(seg, 2, snc, H, W, v->name);

        clsynth_no_grad_begin(ctx);
        clsynth_tensor *fake = clsynth_model_generate(ctx, m, seg, v->vae ? real : NULL);
        assert_shape(fake, 2, 3, H, W, v->name);
        if (v->vae) /* z ~ N(0, 1) at test time */
            assert_shape(clsynth_model_generate(ctx, m, seg, NULL), 2, 3, H, W, v->name);
        nets_fwd f = { ctx, true, true };
        nets_d_out d;
        ck_assert_msg(nets_disc_forward(&f, &m->disc, fake, seg, &d) == 0, "%s: D: %s", v->name, ctx->err.msg);
        clsynth_no_grad_end(ctx);
        int nf = o.ndf;
        if (strcmp(v->netD, "fpse") == 0) {
            ck_assert_int_eq(d.n_scores, 3);
            ck_assert_int_eq(d.n_feats, 4);
            for (int k = 0; k < 3; k++)
                assert_shape(d.score[k], 2, 1, H >> (k + 2), W >> (k + 2), "fpse score");
            const int fc[4] = { 2 * nf, 4 * nf, 8 * nf, 8 * nf };
            for (int k = 0; k < 4; k++)
                assert_shape(d.feat[k], 2, fc[k], H >> (k + 2), W >> (k + 2), "fpse feature");
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
                        assert_shape(d.feat[k * o.n_layers_D + n], 2, c, hh, ww, "patchgan feature");
                }
                assert_shape(d.score[k], 2, 1, hh, ww, "patchgan score");
                h = conv_out(h, 3, 2, 1);
                w = conv_out(w, 3, 2, 1);
            }
        }
        clsynth_release_activations(ctx);
        clsynth_tensor_free(ctx, seg);
        clsynth_tensor_free(ctx, real);
        scene_free(&s);
        clsynth_model_free(ctx, m);
    }
}
END_TEST

/* Every parameter tensor of G, E and D changes in one step. */
static void check_all_change(const variant *v)
{
    clsynth_options o;
    variant_opts(&o, v); /* 64×64: the 2×2 head keeps batch norm away from N = 2 values */
    clsynth_model *m = make_model(&o);
    scene s;
    scene_make(&s, 2, 64, 64);
    clsynth_tensor *seg, *real;
    scene_tensors(m, &s, &seg, &real);
    clsynth_param_group *groups[2] = { clsynth_model_group(m, "G"), clsynth_model_group(m, "D") };
    float *before[2] = { download_group(groups[0]), download_group(groups[1]) };
    clsynth_losses l;
    ck_assert_msg(clsynth_train_step(ctx, m, seg, real, &l) == 0, "%s: step: %s", v->name, ctx->err.msg);
    for (int gi = 0; gi < 2; gi++) {
        float *after = download_group(groups[gi]);
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
    scene_free(&s);
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

/* ---- gradient checks ---- */

typedef double (*loss_fn)(clsynth_model *m, clsynth_tensor *seg, clsynth_tensor *real, const float *r, bool grad);

/* G: L = Σ G(seg) · R (batch statistics, u fixed). */
static double g_loss(clsynth_model *m, clsynth_tensor *seg, clsynth_tensor *real, const float *r, bool grad)
{
    nets_fwd f = { ctx, true, false };
    clsynth_tensor *out = nets_generator_forward(&f, &m->gen, seg, NULL);
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
    nets_fwd f = { ctx, true, false };
    clsynth_tensor *fake = clsynth_tensor_from_host(ctx, "fake", real->n, 3, real->h, real->w, r);
    nets_d_out out[2];
    ck_assert_msg(nets_disc_forward(&f, &m->disc, fake, seg, &out[0]) == 0 &&
                      nets_disc_forward(&f, &m->disc, real, seg, &out[1]) == 0,
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
    scene s;
    int size = m->opt.data.crop_size;
    scene_make(&s, 2, size, size);
    clsynth_tensor *seg, *real;
    scene_tensors(m, &s, &seg, &real);
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
    ck_assert_msg(nets_init_spectral_v(ctx, g, NULL) == 0, "%s", ctx->err.msg);
    /* analytic */
    ck_assert_int_eq(clsynth_group_zero_grad(ctx, g), 0);
    fn(m, seg, real, r, true);
    float *grad = clsynth_test_download(ctx, g->flat_grad);
    float *data = download_group(g);
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
    scene_free(&s);
}

START_TEST(gradcheck_generator_condconv)
{
    clsynth_options o;
    tiny_opts(&o, 64);
    clsynth_model *m = make_model(&o);
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
    tiny_opts(&o, 64);
    snprintf(o.netG, sizeof o.netG, "spade");
    clsynth_model *m = make_model(&o);
    gradcheck_group("G spade", m, clsynth_model_group(m, "G"), g_loss, 20);
    clsynth_model_free(ctx, m);
}
END_TEST

START_TEST(gradcheck_discriminator_fpse)
{
    clsynth_options o;
    tiny_opts(&o, 64);
    clsynth_model *m = make_model(&o);
    gradcheck_group("D fpse", m, clsynth_model_group(m, "D"), d_loss, 30);
    clsynth_model_free(ctx, m);
}
END_TEST

START_TEST(gradcheck_discriminator_multiscale)
{
    if (clsynth_test_skip_in_quick_mode("gradcheck_discriminator_multiscale (a baseline)"))
        return;
    clsynth_options o;
    tiny_opts(&o, 64);
    snprintf(o.netD, sizeof o.netD, "multiscale");
    clsynth_model *m = make_model(&o);
    gradcheck_group("D multiscale", m, clsynth_model_group(m, "D"), d_loss, 20);
    clsynth_model_free(ctx, m);
}
END_TEST

/* ---- robustness, checkpoints ---- */

/* A NaN weight: the step fails before any update with a message naming the
 * non-finite quantity, and neither network changes. */
static void nan_case(const char *group, const char *param, const char *must)
{
    clsynth_options o;
    tiny_opts(&o, 32);
    clsynth_model *m = make_model(&o);
    scene s;
    scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    scene_tensors(m, &s, &seg, &real);
    clsynth_tensor *w = clsynth_group_find(clsynth_model_group(m, group), param);
    ck_assert_msg(w != NULL, "no %s", param);
    float *wv = clsynth_test_download(ctx, w);
    wv[0] = NAN;
    ck_assert_int_eq(clsynth_tensor_upload(ctx, w, wv), 0);
    clsynth_param_group *gs[2] = { clsynth_model_group(m, "G"), clsynth_model_group(m, "D") };
    float *before[2] = { download_group(gs[0]), download_group(gs[1]) };
    clsynth_losses l;
    ck_assert_int_ne(clsynth_train_step(ctx, m, seg, real, &l), 0);
    ck_assert_msg(strstr(ctx->err.msg, must) && strstr(ctx->err.msg, "NaN") && strstr(ctx->err.msg, "not applied"),
                  "message: %s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    for (int k = 0; k < 2; k++) {
        float *after = download_group(gs[k]);
        ck_assert_msg(memcmp(before[k], after, gs[k]->total * sizeof(float)) == 0, "%s was updated", gs[k]->name);
        ck_assert_int_eq((int)gs[k]->step, 0);
        free(after);
        free(before[k]);
    }
    free(wv);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    scene_free(&s);
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
    tiny_opts(&o, 32);
    o.use_vae = true;
    clsynth_model *m = make_model(&o);
    m->opt.lambda_kld = NAN; /* a NaN KLD term in the G step only */
    scene s;
    scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    scene_tensors(m, &s, &seg, &real);
    clsynth_param_group *G = clsynth_model_group(m, "G");
    float *before = download_group(G);
    clsynth_losses l;
    ck_assert_int_ne(clsynth_train_step(ctx, m, seg, real, &l), 0);
    ck_assert_msg(strstr(ctx->err.msg, "loss KLD is NaN") && strstr(ctx->err.msg, "not applied"), "message: %s",
                  ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    float *after = download_group(G);
    ck_assert_msg(memcmp(before, after, G->total * sizeof(float)) == 0, "G was updated from a NaN loss");
    ck_assert_int_eq((int)G->step, 0);
    ck_assert_int_eq((int)clsynth_model_group(m, "D")->step, 0); /* the D step, after G's, did not run */
    free(before);
    free(after);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    scene_free(&s);
    clsynth_model_free(ctx, m);
}
END_TEST

static void run_steps(clsynth_model *m, clsynth_tensor *seg, clsynth_tensor *real, int k)
{
    for (int i = 0; i < k; i++) {
        clsynth_losses l;
        ck_assert_msg(clsynth_train_step(ctx, m, seg, real, &l) == 0, "step: %s", ctx->err.msg);
    }
}

START_TEST(resume_equals_uninterrupted_training)
{
    const int N = clsynth_test_quick() ? 1 : 2, M = N; /* steps before and after the checkpoint */
    clsynth_options o;
    tiny_opts(&o, 32);
    o.use_vae = true; /* exercises the model's RNG counter */
    scene s;
    scene_make(&s, 2, 32, 32);
    char path[256];
    snprintf(path, sizeof path, "test_nets_resume_%d.ckpt", (int)getpid());

    clsynth_model *a = make_model(&o);
    clsynth_tensor *seg, *real;
    scene_tensors(a, &s, &seg, &real);
    run_steps(a, seg, real, N + M);

    clsynth_model *b = make_model(&o);
    run_steps(b, seg, real, N);
    clsynth_err err;
    const uint64_t rng[4] = { 1, 2, 3, 4 };
    ck_assert_msg(clsynth_model_save(ctx, b, path, 17, 3, rng, &err) == 0, "save: %s", err.msg);
    clsynth_model_free(ctx, b);

    o.seed = 12345; /* a different init: everything must come from the checkpoint */
    clsynth_model *c = make_model(&o);
    uint64_t step = 0, rng2[4] = { 0 };
    int epoch = 0;
    ck_assert_msg(clsynth_model_load(ctx, c, path, &step, &epoch, rng2, &err) == 0, "load: %s", err.msg);
    ck_assert_int_eq((int)step, 17);
    ck_assert_int_eq(epoch, 3);
    ck_assert(rng2[0] == 1 && rng2[3] == 4);
    run_steps(c, seg, real, M);

    const char *names[2] = { "G", "D" };
    for (int gi = 0; gi < 2; gi++) {
        clsynth_param_group *ga = clsynth_model_group(a, names[gi]), *gc = clsynth_model_group(c, names[gi]);
        float *pa = download_group(ga), *pc = download_group(gc);
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
    scene_free(&s);
    clsynth_model_free(ctx, a);
    clsynth_model_free(ctx, c);
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
    tiny_opts(&o, 32);
    clsynth_model *a = make_model(&o);
    scene s;
    scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    scene_tensors(a, &s, &seg, &real);
    run_steps(a, seg, real, 2);
    char path[256];
    snprintf(path, sizeof path, "test_nets_snpair_%d.ckpt", (int)getpid());
    clsynth_err err;
    ck_assert_msg(clsynth_model_save(ctx, a, path, 2, 1, NULL, &err) == 0, "save: %s", err.msg);
    clsynth_checkpoint *ck = clsynth_checkpoint_load(path, &err);
    ck_assert_msg(ck && ck->version == 2, "%s", ck ? "version" : err.msg);
    ck_assert_ptr_nonnull(clsynth_checkpoint_find(ck, "D.enc3.conv.v"));
    clsynth_checkpoint_free(ck);
    o.seed = 99;
    clsynth_model *b = make_model(&o);
    ck_assert_msg(clsynth_model_load(ctx, b, path, NULL, NULL, NULL, &err) == 0, "load: %s", err.msg);
    float *ya = eval_images(a, seg), *yb = eval_images(b, seg);
    clsynth_test_assert_close("images after save and load", yb, ya, seg->n * 3 * 32 * 32, 0, 0);
    free(ya);
    free(yb);
    unlink(path);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    scene_free(&s);
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
    tiny_opts(&o, 32);
    clsynth_model *a = make_model(&o);
    scene s;
    scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    scene_tensors(a, &s, &seg, &real);
    run_steps(a, seg, real, 1);
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

    clsynth_model *b = make_model(&o);
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
    scene_free(&s);
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
    tiny_opts(&o, 32);
    clsynth_model *a = make_model(&o);
    char path[256];
    snprintf(path, sizeof path, "test_nets_noadam_%d.ckpt", (int)getpid());
    clsynth_err err;
    ck_assert_msg(clsynth_model_save(ctx, a, path, 0, 1, NULL, &err) == 0, "save: %s", err.msg);
    rewrite_without(path, ".adam_");
    clsynth_model *b = make_model(&o);
    ck_assert_msg(clsynth_model_load(ctx, b, path, NULL, NULL, NULL, &err) == 0, "load: %s", err.msg);
    float *m = clsynth_test_download(ctx, clsynth_model_group(b, "G")->adam_v);
    ck_assert(m[0] == 0.0f && m[clsynth_model_group(b, "G")->total - 1] == 0.0f);
    free(m);
    scene s;
    scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    scene_tensors(a, &s, &seg, &real);
    run_steps(a, seg, real, 1);
    ck_assert_msg(clsynth_model_save(ctx, a, path, 1, 1, NULL, &err) == 0, "save: %s", err.msg);
    rewrite_without(path, "G.adam_m");
    ck_assert_int_ne(clsynth_model_load(ctx, b, path, NULL, NULL, NULL, &err), 0);
    ck_assert_msg(strstr(err.msg, "G.adam_m") && strstr(err.msg, "missing"), "%s", err.msg);
    unlink(path);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    scene_free(&s);
    clsynth_model_free(ctx, a);
    clsynth_model_free(ctx, b);
}
END_TEST

START_TEST(checkpoint_of_another_variant_is_refused)
{
    clsynth_options o;
    tiny_opts(&o, 32);
    clsynth_model *a = make_model(&o);
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
        clsynth_model *b = make_model(&ob);
        ck_assert_int_ne(clsynth_model_load(ctx, b, path, NULL, NULL, NULL, &err), 0);
        ck_assert_msg(strstr(err.msg, cases[i].must) && strstr(err.msg, "variant"), "case %s: '%s'", cases[i].flag,
                      err.msg);
        clsynth_model_free(ctx, b);
    }
    /* same variant, other shapes: the tensor is named */
    clsynth_options ov = o;
    ov.use_vae = true;
    clsynth_model *v = make_model(&ov);
    ck_assert_msg(clsynth_model_save(ctx, v, path, 0, 1, NULL, &err) == 0, "save: %s", err.msg);
    clsynth_model_free(ctx, v);
    ov.data.crop_size = 64; /* the VAE's linear layers change shape */
    v = make_model(&ov);
    ck_assert_int_ne(clsynth_model_load(ctx, v, path, NULL, NULL, NULL, &err), 0);
    ck_assert_msg(strstr(err.msg, "G.fc.w") || strstr(err.msg, "G.E.fc_mu.w"), "'%s'", err.msg);
    clsynth_model_free(ctx, v);
    unlink(path);
    clsynth_model_free(ctx, a);
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
 * (xh-liu/CC-FPSE, default options, --use_vae; see platforms.md). Their G
 * also owns three BatchNorms per block that it never uses (26112 parameters
 * at ngf 64), which clsynth does not declare. */
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
    for (int i = 0; i < 3; i++) {
        clsynth_options o;
        clsynth_options_defaults(&o);
        snprintf(o.data.dataset_mode, sizeof o.data.dataset_mode, "%s", cfg[i].mode);
        clsynth_err err;
        ck_assert_msg(clsynth_options_preset(&o, "paper", &err) == 0, "%s", err.msg);
        o.data.label_nc = cfg[i].label_nc;
        o.data.no_instance = cfg[i].no_instance;
        o.use_vae = true;
        size_t g, d, e;
        ck_assert_msg(clsynth_model_count_params(ctx, &o, &g, &d, &e, &err) == 0, "%s", err.msg);
        printf("paper %-10s semantic_nc %3d: G %zu (authors %zu - %zu unused), D %zu, E %zu\n", cfg[i].mode,
               clsynth_options_semantic_nc(&o), g, cfg[i].g, unused, d, e);
        ck_assert_msg(g == cfg[i].g - unused && d == cfg[i].d && e == cfg[i].e,
                      "%s: G %zu D %zu E %zu, the authors' %zu (- %zu) %zu %zu", cfg[i].mode, g, d, e, cfg[i].g,
                      unused, cfg[i].d, cfg[i].e);
    }
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
    tiny_opts(&o, 32);
    /* without a file: skipped with a notice */
    clsynth_model *m = make_model(&o);
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
    m = make_model(&o);
    ck_assert_str_eq(clsynth_model_notice(m), "");
    scene s;
    scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    scene_tensors(m, &s, &seg, &real);
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
    scene_free(&s);
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
 * PoCL: 0.473 -> 0.194 (2.44x) in 80 steps. */
START_TEST(overfit_two_images_lowers_l1)
{
    if (clsynth_test_skip_in_quick_mode("overfit_two_images_lowers_l1 (80 training steps)"))
        return;
    clsynth_options o;
    tiny_opts(&o, 32);
    o.ngf = 8;
    o.ndf = 8;
    o.nhidden = 16;
    o.fpse_plain_enc1 = true;
    o.lr = 0.002f; /* G 0.001, D 0.004 (TTUR) */
    clsynth_model *m = make_model(&o);
    scene s;
    scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    scene_tensors(m, &s, &seg, &real);
    const int steps = 80;
    const double factor = 1.5; /* the smallest measured was 1.95x (see above) */
    double l1[2];
    for (int phase = 0; phase < 2; phase++) {
        if (phase == 1)
            run_steps(m, seg, real, steps);
        clsynth_no_grad_begin(ctx);
        nets_fwd f = { ctx, true, false }; /* batch statistics, as in training */
        clsynth_tensor *fake = nets_generator_forward(&f, &m->gen, seg, NULL);
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
    scene_free(&s);
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
    tiny_opts(&o, 32);
    clsynth_model *m = make_model(&o);
    ck_assert_ptr_null(clsynth_group_find(clsynth_model_group(m, "D"), "D.enc1.conv.b"));
    scene s;
    scene_make(&s, 2, 32, 32);
    clsynth_tensor *seg, *real;
    scene_tensors(m, &s, &seg, &real);
    float *noise = malloc(2 * 3 * 32 * 32 * sizeof(float));
    clsynth_test_fill_uniform(noise, 2 * 3 * 32 * 32, -1, 1, 5);
    clsynth_tensor *fake = clsynth_tensor_from_host(ctx, "fake", 2, 3, 32, 32, noise);
    nets_fwd f = { ctx, true, false };
    nets_d_out pf, pr;
    ck_assert_msg(nets_disc_forward(&f, &m->disc, fake, seg, &pf) == 0 &&
                      nets_disc_forward(&f, &m->disc, real, seg, &pr) == 0,
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
    ck_assert_int_eq(clsynth_scalar(ctx, nets_loss_feat(ctx, &pf, &pr, 10.0f), &got), 0);
    ck_assert_msg(want > 0 && fabs(got - want) <= 1e-4 * want, "feature matching %g, want %g (lambda/4 each)", got,
                  want);
    clsynth_release_activations(ctx);
    clsynth_model_free(ctx, m);
    o.fpse_plain_enc1 = true;
    m = make_model(&o);
    clsynth_param_group *D = clsynth_model_group(m, "D");
    ck_assert_ptr_nonnull(clsynth_group_find(D, "D.enc1.conv.b"));
    ck_assert_ptr_null(clsynth_group_find(D, "D.enc2.conv.b"));
    ck_assert_msg(nets_disc_forward(&f, &m->disc, real, seg, &pr) == 0, "D plain enc1: %s", ctx->err.msg);
    clsynth_release_activations(ctx);
    clsynth_model_free(ctx, m);
    free(noise);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    scene_free(&s);
}
END_TEST

/* One TCase per test, so CK_RUN_CASE=<test name> runs one. */
static void add(Suite *s, const char *name, const TTest *test, bool device)
{
    TCase *t = tcase_create(name);
    if (device)
        tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 900);
    tcase_add_test(t, test);
    suite_add_tcase(s, t);
}
#define ADD(s, name, device) add(s, #name, name, device)

static Suite *suite(void)
{
    Suite *s = suite_create("nets");
    ADD(s, options_preset_then_explicit_flags, false);
    ADD(s, options_errors_name_option_and_value, false);
    ADD(s, options_text_round_trip_and_variant_check, false);
    ADD(s, options_ttur_and_linear_decay, false);
    ADD(s, options_adam_betas_follow_the_authors, true);
    ADD(s, cc_block_and_encoder_follow_the_authors, true);
    ADD(s, seg_is_one_hot_with_dontcare_and_edges, true);
    ADD(s, parameter_counts_of_the_presets, true);
    ADD(s, paper_parameter_counts_equal_the_authors, true);
    ADD(s, output_shapes_of_every_variant, true);
    ADD(s, train_step_changes_every_parameter_condconv_fpse_vae, true);
    ADD(s, train_step_changes_every_parameter_spade_multiscale, true);
    ADD(s, gradcheck_generator_condconv, true);
    ADD(s, gradcheck_generator_spade, true);
    ADD(s, gradcheck_discriminator_fpse, true);
    ADD(s, gradcheck_discriminator_multiscale, true);
    ADD(s, fpse_feature_matching_weights_and_plain_enc1, true);
    ADD(s, nan_loss_fails_the_step_before_the_update, true);
    ADD(s, nan_loss_is_named_and_g_not_updated, true);
    ADD(s, resume_equals_uninterrupted_training, true);
    ADD(s, checkpoint_keeps_the_spectral_norm_pair, true);
    ADD(s, version_1_checkpoint_loads_with_v_from_u_and_plain_pointwise_convs, true);
    ADD(s, checkpoint_without_adam_moments_loads_only_before_any_step, true);
    ADD(s, checkpoint_of_another_variant_is_refused, true);
    ADD(s, vgg_loss_from_a_weights_file, true);
    ADD(s, overfit_two_images_lowers_l1, true);
    return s;
}

int main(void) { return clsynth_test_run(suite()); }
