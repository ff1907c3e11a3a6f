/* The whole CC-FPSE model against an independent PyTorch reference, forward
 * and backward (llm.c's test_gpt2 pattern). tests/data/ccfpse_ref.ckpt was
 * written once by tools/ref_ccfpse_torch.py (float64, built from the spec, not
 * from this code): a clsynth checkpoint of a tiny model (64x64, batch 2,
 * label_nc 3 + don't care + edges, ngf = ndf = 4, nhidden 4, z_dim 8,
 * --use_vae) with unit-scale random weights, plus the reference's inputs and
 * results ("ref.*"). Each test loads the model from that file and compares:
 *   - the noise: clsynth's Philox streams give the reference's eps;
 *   - the G step's forward (train mode: batch statistics, one spectral-norm
 *     power iteration): mu, logvar, z, the image, D's score maps and
 *     features for fake and real;
 *   - after one clsynth_train_step (G step then D step, Adam TTUR): the five
 *     losses, a sample of the gradients of every parameter tensor of G, E and
 *     D, the parameters (same sample) and every buffer (running statistics,
 *     u, v) after the Adam steps.
 * Tolerances (float32 here against float64 there), per result:
 *   max |clsynth - ref| <= tol * max |ref|, tol = max(1e-4, 4 e32), where e32
 *   is the same measure for PyTorch's own float32 run of the reference
 *   ("ref.f32err.*"): most results are well conditioned (e32 < 2.5e-5: tol
 *   1e-4), a few are not (a BatchNorm beta's gradient is a sum that the next
 *   BatchNorm nearly cancels; a gamma near 1 moved by lr ~ 1e-4 is rounded to
 *   float32's 1.2e-7). Adam starts from the reference's moments as after 10
 *   steps: from zero moments its first step is lr g / (|g| + 1e-8), which
 *   turns float32 rounding of tiny gradients into changes of order lr that
 *   the D step then sees (measured: D.enc1's gradient 2% off in PyTorch's own
 *   float32). The change of each weight is compared, plus 1.2e-7 |w| for its
 *   float32 rounding. Three gradients are exactly zero (the mlp_beta bias of
 *   up_0..up_2's shortcut SPADE: a per-channel constant that every use of the
 *   block's output batch-normalizes away; the reference's are below 1e-15):
 *   ours must be float32 noise, below 1e-5 of the network's largest gradient,
 *   and their Adam change (noise / sqrt(v)) is not compared. Measured errors
 *   are in the README ("Reference test"). The VGG loss is not part of it (its
 *   ImageNet weights are 80 MB); nets' own tests cover it. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/autograd.h"
#include "clcore/ops.h"
#include "io/checkpoint.h"
#include "nets/losses.h"
#include "nets/model.h"
#include "nets/model_impl.h"
#include "testutil.h"

#define TOL 1e-4
#define ZERO_GRAD 1e-12 /* a reference gradient below this times the network's largest is zero */
#define NOISE 1e-5      /* float32 noise allowed for such a gradient, times the network's largest */
#define SAMPLES 128 /* tools/ref_ccfpse_torch.py: indices 0, s, 2s, ... (sample_stride) */

static clsynth_ctx *ctx;
static clsynth_checkpoint *ref;
static char path[4096];

static void setup(void)
{
    const char *src = getenv("CLSYNTH_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/tests/data/ccfpse_ref.ckpt", src && *src ? src : "..");
    clsynth_err err;
    ref = clsynth_checkpoint_load(path, &err);
    ck_assert_msg(ref != NULL, "%s (written by tools/ref_ccfpse_torch.py)", err.msg);
    ctx = clsynth_test_ctx();
    /* backward frees each activation after its last use: poisoned, one freed
     * too early would show in the gradients below */
    clsynth_test_poison_releases(ctx, NULL);
}

static void teardown(void)
{
    clsynth_checkpoint_free(ref);
    clsynth_ctx_free(ctx);
    ref = NULL;
    ctx = NULL;
}

static const clsynth_ckpt_tensor *R(const char *name)
{
    const clsynth_ckpt_tensor *t = clsynth_checkpoint_find(ref, name);
    ck_assert_msg(t != NULL, "%s: no tensor '%s'", path, name);
    return t;
}

/* The reference's Adam state: its moments per tensor ("ref.adam.m.<name>",
 * "ref.adam.v.<name>") into the flat buffers, and its step count. */
static void install_adam_state(clsynth_param_group *g)
{
    float *m = calloc(g->total, sizeof *m), *v = calloc(g->total, sizeof *v);
    for (int i = 0; i < g->n_params; i++) {
        const clsynth_tensor *p = g->params[i];
        char name[192];
        snprintf(name, sizeof name, "ref.adam.m.%s", p->name);
        const clsynth_ckpt_tensor *rm = R(name);
        snprintf(name, sizeof name, "ref.adam.v.%s", p->name);
        const clsynth_ckpt_tensor *rv = R(name);
        ck_assert(rm->count == p->numel && rv->count == p->numel);
        memcpy(m + p->off, rm->data, p->numel * sizeof *m);
        memcpy(v + p->off, rv->data, p->numel * sizeof *v);
    }
    ck_assert_int_eq(clsynth_tensor_upload(ctx, g->adam_m, m), 0);
    ck_assert_int_eq(clsynth_tensor_upload(ctx, g->adam_v, v), 0);
    char steps[32];
    ck_assert(clsynth_checkpoint_config_get(ref, "ref.adam_steps", steps, sizeof steps) == 0);
    g->step = atol(steps);
    free(m);
    free(v);
}

/* max(TOL, 4 e32) for the result ref_name ("ref.<what>"). */
static double tol_for(const char *ref_name)
{
    char name[256];
    snprintf(name, sizeof name, "ref.f32err.%s", ref_name + 4);
    double e = R(name)->data[0];
    return e * 4 > TOL ? e * 4 : TOL;
}

static clsynth_model *load_model(void)
{
    clsynth_options o;
    clsynth_err err;
    ck_assert_msg(clsynth_model_checkpoint_options(path, &o, &err) == 0, "%s", err.msg);
    clsynth_model *m = clsynth_model_create(ctx, &o, &err);
    ck_assert_msg(m != NULL, "%s", err.msg);
    ck_assert_msg(clsynth_model_load(ctx, m, path, NULL, NULL, NULL, &err) == 0, "%s", err.msg);
    install_adam_state(m->G);
    install_adam_state(m->D);
    return m;
}

/* max |got - want| <= tol * max |want|, naming the worst element. */
static double check(const char *what, const float *got, const float *want, size_t n, double tol)
{
    double scale = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (d > worst || isnan(d)) {
            worst = isnan(d) ? INFINITY : d;
            at = i;
        }
    }
    double rel = scale > 0 ? worst / scale : worst;
    ck_assert_msg(rel <= tol, "%s: element %zu is %.8g, reference %.8g: error %.3g of the tensor's max |ref| %.4g "
                              "(tolerance %g)", what, at, got[at], want[at], rel, scale, tol);
    return rel;
}

static double check_tensor(const char *what, const clsynth_tensor *t, const char *ref_name, double tol)
{
    const clsynth_ckpt_tensor *r = R(ref_name);
    ck_assert_msg(t != NULL, "%s: %s", what, ctx->err.msg);
    ck_assert_msg(t->numel == r->count, "%s: %zu elements, reference %zu", what, t->numel, r->count);
    float *h = clsynth_test_download(ctx, t);
    double e = check(what, h, r->data, t->numel, tol);
    free(h);
    return e;
}

/* The reference's inputs as device tensors. */
static void inputs(clsynth_model *m, clsynth_tensor **seg, clsynth_tensor **real)
{
    const clsynth_ckpt_tensor *lab = R("ref.in.labels"), *edg = R("ref.in.edges"), *img = R("ref.in.real");
    const int *s = lab->shape;
    clsynth_tensor *tl = clsynth_tensor_from_host(ctx, "labels", s[0], 1, s[2], s[3], lab->data);
    clsynth_tensor *te = clsynth_tensor_from_host(ctx, "edges", s[0], 1, s[2], s[3], edg->data);
    *seg = clsynth_model_seg(ctx, m, tl, te);
    *real = clsynth_tensor_from_host(ctx, "real", s[0], 3, s[2], s[3], img->data);
    ck_assert_msg(*seg && *real, "%s", ctx->err.msg);
}

static void persistent_inputs(clsynth_model *m, clsynth_tensor **seg, clsynth_tensor **real)
{
    clsynth_tensor *s, *r;
    inputs(m, &s, &r);
    clsynth_tensor_keep(ctx, s);
    clsynth_tensor_keep(ctx, r);
    *seg = s;
    *real = r;
}

START_TEST(seg_is_the_reference_one_hot_with_dontcare_and_edges)
{
    clsynth_model *m = load_model();
    clsynth_tensor *seg, *real;
    inputs(m, &seg, &real);
    check_tensor("seg", seg, "ref.in.seg", 0);
    clsynth_release_activations(ctx);
    clsynth_model_free(ctx, m);
}
END_TEST

START_TEST(noise_streams_give_the_reference_eps)
{
    clsynth_model *m = load_model();
    for (int k = 0; k < 2; k++) {
        char name[32];
        snprintf(name, sizeof name, "ref.eps.%d", k);
        const clsynth_ckpt_tensor *r = R(name);
        clsynth_tensor *eps = clsynth_tensor_new(ctx, "eps", r->shape[0], r->shape[1], 1, 1);
        ck_assert_int_eq(clsynth_rand_normal(ctx, eps, 0.0f, 1.0f, (uint64_t)m->opt.seed, CLSYNTH_STREAM_NOISE + k), 0);
        check_tensor(name, eps, name, 1e-6);
    }
    clsynth_release_activations(ctx);
    clsynth_model_free(ctx, m);
}
END_TEST

/* The G step's forward: E, z, G in training mode, then D on fake (one power
 * iteration) and on real (the stored u, v), as clsynth_train_step runs it. */
typedef struct g_fwd {
    clsynth_tensor *mu, *logvar, *z, *fake;
    clsynth_d_out pf, pr;
} g_fwd;

static void g_step_forward(clsynth_model *m, clsynth_tensor *seg, clsynth_tensor *real, g_fwd *out)
{
    clsynth_forward_mode f = { ctx, true, true, NULL, false }, keep = { ctx, true, false, NULL, false };
    clsynth_no_grad_begin(ctx);
    out->z = clsynth_model_z(&f, m, seg->n, real, &out->mu, &out->logvar);
    out->fake = clsynth_generator_forward(&f, &m->gen, seg, out->z);
    ck_assert_msg(out->fake && clsynth_disc_forward(&f, &m->disc, out->fake, seg, &out->pf) == 0 &&
                      clsynth_disc_forward(&keep, &m->disc, real, seg, &out->pr) == 0,
                  "%s", ctx->err.msg);
    clsynth_no_grad_end(ctx);
}

START_TEST(generator_and_encoder_forward_match)
{
    clsynth_model *m = load_model();
    clsynth_tensor *seg, *real;
    inputs(m, &seg, &real);
    g_fwd g;
    g_step_forward(m, seg, real, &g);
    check_tensor("E mu", g.mu, "ref.fwd.mu", tol_for("ref.fwd.mu"));
    check_tensor("E logvar", g.logvar, "ref.fwd.logvar", tol_for("ref.fwd.logvar"));
    check_tensor("z", g.z, "ref.fwd.z", tol_for("ref.fwd.z"));
    double e = check_tensor("G image", g.fake, "ref.fwd.fake", tol_for("ref.fwd.fake"));
    printf("G image: max error %.3g of max |ref|\n", e);
    clsynth_release_activations(ctx);
    clsynth_model_free(ctx, m);
}
END_TEST

START_TEST(discriminator_scores_and_features_match)
{
    clsynth_model *m = load_model();
    clsynth_tensor *seg, *real;
    inputs(m, &seg, &real);
    g_fwd g;
    g_step_forward(m, seg, real, &g);
    const char *side[2] = { "fake", "real" };
    const clsynth_d_out *d[2] = { &g.pf, &g.pr };
    double worst = 0;
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(d[k]->n_scores, 3);
        ck_assert_int_eq(d[k]->n_feats, 4);
        char what[64], name[64];
        for (int s = 0; s < 3; s++) {
            snprintf(what, sizeof what, "D(%s) score%d", side[k], s + 2);
            snprintf(name, sizeof name, "ref.fwd.D.%s.score%d", side[k], s + 2);
            worst = fmax(worst, check_tensor(what, d[k]->score[s], name, tol_for(name)));
        }
        for (int s = 0; s < 4; s++) {
            snprintf(what, sizeof what, "D(%s) feature e%d", side[k], s + 2);
            snprintf(name, sizeof name, "ref.fwd.D.%s.feat%d", side[k], s + 2);
            worst = fmax(worst, check_tensor(what, d[k]->feat[s], name, tol_for(name)));
        }
    }
    printf("D scores and features: max error %.3g of max |ref|\n", worst);
    clsynth_release_activations(ctx);
    clsynth_model_free(ctx, m);
}
END_TEST

/* One clsynth_train_step of the model in the file. */
static clsynth_model *one_step(clsynth_losses *l, float **before_g, float **before_d)
{
    clsynth_model *m = load_model();
    clsynth_tensor *seg, *real;
    persistent_inputs(m, &seg, &real);
    if (before_g)
        *before_g = clsynth_test_download(ctx, m->G->flat_data);
    if (before_d)
        *before_d = clsynth_test_download(ctx, m->D->flat_data);
    ck_assert_msg(clsynth_train_step(ctx, m, seg, real, l) == 0, "train step: %s", ctx->err.msg);
    clsynth_tensor_free(ctx, seg);
    clsynth_tensor_free(ctx, real);
    return m;
}

/* Under CLSYNTH_TEST_QUICK (a slow implementation) the training step runs once,
 * for the gradients: the losses and the Adam update of the same step are left
 * out (each repeats the whole step; their arithmetic is the ops' and Adam's,
 * tested on their own). */
START_TEST(losses_of_one_training_step_match)
{
    if (clsynth_test_skip_in_quick_mode("losses_of_one_training_step_match (one more training step)"))
        return;
    clsynth_losses l;
    clsynth_model *m = one_step(&l, NULL, NULL);
    const struct {
        const char *name;
        float v;
    } got[5] = { { "G_GAN", l.G_GAN }, { "G_GAN_Feat", l.G_GAN_Feat }, { "KLD", l.KLD },
                 { "D_fake", l.D_fake }, { "D_real", l.D_real } };
    double worst = 0;
    for (int i = 0; i < 5; i++) {
        char name[64];
        snprintf(name, sizeof name, "ref.loss.%s", got[i].name);
        worst = fmax(worst, check(got[i].name, &got[i].v, R(name)->data, 1, tol_for(name)));
    }
    printf("losses: max relative error %.3g\n", worst);
    ck_assert(l.G_VGG == 0.0f); /* no VGG weights in the reference */
    clsynth_model_free(ctx, m);
}
END_TEST

/* The largest |reference gradient| of a group. */
static double group_max_grad(const clsynth_param_group *g)
{
    double top = 0;
    for (int i = 0; i < g->n_params; i++) {
        char name[192];
        snprintf(name, sizeof name, "ref.grad.%s", g->params[i]->name);
        const clsynth_ckpt_tensor *r = R(name);
        for (size_t k = 0; k < r->count; k++)
            top = fmax(top, fabs(r->data[k]));
    }
    return top;
}

/* Is p's reference gradient exactly zero (see the top)? */
static bool zero_grad(const clsynth_param_group *g, const clsynth_tensor *p)
{
    char name[192];
    snprintf(name, sizeof name, "ref.grad.%s", p->name);
    const clsynth_ckpt_tensor *r = R(name);
    double m = 0;
    for (size_t k = 0; k < r->count; k++)
        m = fmax(m, fabs(r->data[k]));
    return m <= ZERO_GRAD * group_max_grad(g);
}

/* tools/ref_ccfpse_torch.py's sample_stride: numel / 128 moved up to a number
 * coprime with 6, or 1. */
static size_t sample_stride(size_t numel)
{
    size_t s = numel / SAMPLES;
    if (s <= 1)
        return 1;
    while (s % 2 == 0 || s % 3 == 0)
        s++;
    return s;
}

/* flat[p->off + k*s] for the sampled k of parameter p. */
static size_t take_sample(const clsynth_tensor *p, const float *flat, float *out)
{
    size_t s = sample_stride(p->numel), n = 0;
    for (size_t k = 0; k * s < p->numel && n < SAMPLES; k++)
        out[n++] = flat[p->off + k * s];
    return n;
}

START_TEST(gradients_of_one_training_step_match)
{
    clsynth_losses l;
    clsynth_model *m = one_step(&l, NULL, NULL);
    clsynth_param_group *gs[2] = { m->G, m->D };
    double worst = 0;
    const char *worst_name = "";
    int checked = 0;
    int zeros = 0;
    for (int gi = 0; gi < 2; gi++) {
        float *grad = clsynth_test_download(ctx, gs[gi]->flat_grad); /* G: the G step's, D: the D step's */
        double top = group_max_grad(gs[gi]);
        for (int i = 0; i < gs[gi]->n_params; i++) {
            const clsynth_tensor *p = gs[gi]->params[i];
            char name[192], what[192];
            snprintf(name, sizeof name, "ref.grad.%s", p->name);
            snprintf(what, sizeof what, "gradient of %s", p->name);
            const clsynth_ckpt_tensor *r = R(name);
            float got[SAMPLES];
            size_t n = take_sample(p, grad, got);
            ck_assert_msg(n == r->count, "%s: %zu samples, reference %zu", what, n, r->count);
            if (zero_grad(gs[gi], p)) {
                for (size_t k = 0; k < n; k++)
                    ck_assert_msg(fabs(got[k]) <= NOISE * top, "%s[sample %zu] is %.4g: the reference's is 0 "
                                                               "(allowed %.3g)", what, k, got[k], NOISE * top);
                zeros++;
                continue;
            }
            double e = check(what, got, r->data, n, tol_for(name));
            if (e > worst) {
                worst = e;
                worst_name = p->name;
            }
            checked++;
        }
        free(grad);
    }
    ck_assert_int_eq(zeros, 3); /* the three shortcut-SPADE biases, see the top */
    printf("gradients of %d parameter tensors: max error %.3g of max |ref| (%s); %d exactly zero\n", checked,
           worst, worst_name, zeros);
    clsynth_model_free(ctx, m);
}
END_TEST

START_TEST(parameters_and_buffers_after_one_step_match)
{
    if (clsynth_test_skip_in_quick_mode("parameters_and_buffers_after_one_step_match (one more training step)"))
        return;
    clsynth_losses l;
    float *before[2];
    clsynth_model *m = one_step(&l, &before[0], &before[1]);
    clsynth_param_group *gs[2] = { m->G, m->D };
    double worst = 0, worst_b = 0;
    for (int gi = 0; gi < 2; gi++) {
        double lr = gs[gi]->lr;
        float *after = clsynth_test_download(ctx, gs[gi]->flat_data);
        for (int i = 0; i < gs[gi]->n_params; i++) {
            const clsynth_tensor *p = gs[gi]->params[i];
            char name[192];
            snprintf(name, sizeof name, "ref.delta.%s", p->name);
            const clsynth_ckpt_tensor *r = R(name);
            if (zero_grad(gs[gi], p))
                continue; /* moved by noise / sqrt(v): see the top */
            float w0[SAMPLES], w1[SAMPLES];
            size_t n = take_sample(p, before[gi], w0);
            take_sample(p, after, w1);
            ck_assert_int_eq((int)n, (int)r->count);
            double scale = 0, tol = tol_for(name);
            for (size_t k = 0; k < n; k++)
                scale = fmax(scale, fabs(r->data[k]));
            for (size_t k = 0; k < n; k++) { /* the Adam change, against the reference's */
                double d = (double)w1[k] - w0[k], dr = r->data[k];
                double allowed = tol * scale + 1.2e-7 * fabs(w0[k]);
                worst = fmax(worst, fabs(d - dr) / scale);
                ck_assert_msg(fabs(d - dr) <= allowed, "%s[sample %zu]: the step moved it by %.6g, the reference by "
                                                       "%.6g (lr %g, allowed %.3g)", p->name, k, d, dr, lr, allowed);
            }
        }
        for (int i = 0; i < gs[gi]->n_buffers; i++) {
            const clsynth_tensor *b = gs[gi]->buffers[i];
            char name[192];
            snprintf(name, sizeof name, "ref.after.%s", b->name);
            worst_b = fmax(worst_b, check_tensor(b->name, b, name, tol_for(name)));
        }
        free(after);
        free(before[gi]);
    }
    printf("after one step: weight changes within %.3g of the largest change; buffers %.3g of max |ref|\n", worst,
           worst_b);
    clsynth_model_free(ctx, m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reference_ccfpse");
    TCase *tc = tcase_create("reference_ccfpse");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, seg_is_the_reference_one_hot_with_dontcare_and_edges);
    tcase_add_test(tc, noise_streams_give_the_reference_eps);
    tcase_add_test(tc, generator_and_encoder_forward_match);
    tcase_add_test(tc, discriminator_scores_and_features_match);
    tcase_add_test(tc, losses_of_one_training_step_match);
    tcase_add_test(tc, gradients_of_one_training_step_match);
    tcase_add_test(tc, parameters_and_buffers_after_one_step_match);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
