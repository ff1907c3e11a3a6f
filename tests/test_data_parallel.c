/* Data-parallel training steps (nets/trainer.c with ctx->comm) over 2 ranks run
 * as threads (tests/comm_threads.c), each with its own context and model, fed
 * one sample of the global batch of 2, against one process fed both, one step
 * from the same initial state (the rule: tests/step_compare.h):
 *   - synchronized batch norm (G and D): 2 ranks x 1 equal 1 x 2, every
 *     buffer (running statistics, spectral-norm u and v) included. A step is
 *     G's step, then D's on the updated G (the authors' order), whose forward
 *     updates G's running statistics again: there G's biases that feed only
 *     normalizations - exempt by the step rule, zero gradient, +-lr on
 *     rounding noise - shift the batch means, so G's running means follow
 *     them by momentum x that difference (measured up to 2.4e-5, about
 *     0.1 x 2 lr_G). They are compared within 1e-5 at --lr 0, where both D
 *     steps see the same G (gradients, Adam v and the other buffers by the
 *     same rule as at the default lr);
 *   - instance norm only: 2 ranks x 1 equal 1 x 2;
 *   - per-rank batch norm: each rank normalizes its own single sample, which is
 *     what instance norm computes; with the SPADE generator, whose
 *     normalization has no parameters, 2 ranks x 1 with --norm_G spadebatch3x3
 *     equal 1 x 2 with --norm_G spadeinstance3x3, and differ from 1 x 2 with
 *     batch norm. (Without spectral norm in G: the spectral-norm vectors are
 *     initialized by buffer index, and batch norm's running statistics shift
 *     those indices, so spectral G's of the two kinds start differently.)
 * Both ranks end with bit-identical parameters, Adam moments and buffers.
 * The spectral-norm vectors are buffers like the running statistics: a rank
 * whose v (or u) differs fails the consistency check (nets/model_dist.h)
 * naming the network, and the model broadcast gives it rank 0's.
 * Several steps, resume and the whole `clsynth train` path through MPI:
 * tests/test_mpi.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/comm.h"
#include "clcore/tunedb.h"
#include "comm_threads.h"
#include "nets/model.h"
#include "nets/model_dist.h"
#include "step_compare.h"
#include "testutil.h"

#define GLOBAL 2
#define LABEL_NC 4
#define CROP 64 /* the generator's 2x2 head keeps per-rank batch norm of one sample above 1 value */

typedef struct dp_case {
    const char *netG, *norm_G, *norm_D;
    bool use_comm; /* false: the one-process reference */
    int per_rank;  /* samples per rank */
    float lr;      /* --lr; < 0: the default */
    clsynth_test_net_state state[2][2]; /* [rank][G, D] */
    float *buffers[2][2];               /* [rank][G, D]: every buffer, concatenated */
    size_t n_buffers[2];                /* [G, D] */
    clsynth_ctx *ctx[2];     /* kept until the comparison: the states name their groups */
    clsynth_model *model[2];
    char err[2][700];
} dp_case;

static void options(clsynth_options *o, const dp_case *d)
{
    clsynth_options_defaults(o);
    o->data.label_nc = LABEL_NC;
    o->data.crop_size = CROP;
    o->data.load_size = CROP;
    o->data.aspect_ratio = 1.0f;
    o->contain_dontcare_label = 0;
    o->ngf = 4;
    o->ndf = 4;
    o->nef = 4;
    o->z_dim = 8;
    o->nhidden = 8;
    o->no_vgg_loss = true;
    o->batchSize = d->per_rank;
    o->seed = 11;
    if (d->lr >= 0)
        o->lr = d->lr;
    snprintf(o->netG, sizeof o->netG, "%s", d->netG);
    snprintf(o->norm_G, sizeof o->norm_G, "%s", d->norm_G);
    snprintf(o->norm_D, sizeof o->norm_D, "%s", d->norm_D);
}

/* Sample k of the global batch of a step: labels in 8x8 blocks, edges where
 * the label changes, random image. */
static void sample(int step, int k, float *lab, float *edge, float *img)
{
    const int hw = CROP * CROP;
    uint64_t s = (uint64_t)(step * 131 + k * 7 + 1) * 0x9e3779b97f4a7c15ull;
    for (int by = 0; by < CROP / 8; by++)
        for (int bx = 0; bx < CROP / 8; bx++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            float v = (float)((s >> 33) % LABEL_NC);
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 8; x++)
                    lab[(by * 8 + y) * CROP + bx * 8 + x] = v;
        }
    for (int y = 0; y < CROP; y++)
        for (int x = 0; x < CROP; x++) {
            float v = lab[y * CROP + x];
            edge[y * CROP + x] = (x + 1 < CROP && lab[y * CROP + x + 1] != v) || (y + 1 < CROP && lab[(y + 1) * CROP + x] != v);
        }
    clsynth_test_fill_uniform(img, 3 * (size_t)hw, -1.0f, 1.0f, (uint64_t)(step * 1000 + k + 5));
}

static int dp_rank(int r, clsynth_comm *comm, void *user)
{
    dp_case *d = user;
    clsynth_err e;
    clsynth_ctx *ctx = clsynth_ctx_create(NULL, &e);
    if (!ctx) {
        snprintf(d->err[r], sizeof d->err[r], "rank %d: no context: %s", r, e.msg);
        return -1;
    }
    ctx->quiet = true;
    ctx->comm = d->use_comm ? comm : NULL;
    /* Both sides at the kernels' built-in defaults: a rank's batch and the one
     * process's batch are different shapes, so tuned entries (a shipped class
     * file's) would give the two sides different reduction orders, and a
     * rounding-level change can flip a LeakyReLU kink downstream (see the
     * sync batch norm case). This test checks the distributed step, not the
     * tuned kernels (test_norm, test_kernel_sweep do). */
    clsynth_tunedb_set_enabled(ctx, false);
    clsynth_options o;
    options(&o, d);
    const int N = d->per_rank, hw = CROP * CROP;
    float *lab = malloc(sizeof(float) * (size_t)N * hw), *edge = malloc(sizeof(float) * (size_t)N * hw),
          *img = malloc(sizeof(float) * 3 * (size_t)N * hw);
    int rc = -1;
    clsynth_model *m = clsynth_model_create(ctx, &o, &e);
    if (!m) {
        snprintf(d->err[r], sizeof d->err[r], "rank %d: model: %s", r, e.msg);
        goto out;
    }
    for (int k = 0; k < N; k++)
        sample(0, r * N + k, lab + (size_t)k * hw, edge + (size_t)k * hw, img + (size_t)k * 3 * hw);
    clsynth_tensor *tl = clsynth_tensor_from_host(ctx, "labels", N, 1, CROP, CROP, lab);
    clsynth_tensor *te = clsynth_tensor_from_host(ctx, "edges", N, 1, CROP, CROP, edge);
    clsynth_tensor *ti = clsynth_tensor_from_host(ctx, "real", N, 3, CROP, CROP, img);
    clsynth_tensor *seg = clsynth_model_seg(ctx, m, tl, te);
    clsynth_losses l;
    if (!seg || !ti || clsynth_train_step(ctx, m, seg, ti, &l) || clsynth_model_check_same(ctx, m))
        goto fail;
    const char *which[2] = { "G", "D" };
    for (int gi = 0; gi < 2; gi++) {
        clsynth_param_group *g = clsynth_model_group(m, which[gi]);
        if (clsynth_test_net_state_get(ctx, g, &d->state[r][gi]))
            goto fail;
        d->n_buffers[gi] = 0;
        for (int i = 0; i < g->n_buffers; i++)
            d->n_buffers[gi] += g->buffers[i]->numel;
        if (!(d->buffers[r][gi] = malloc((d->n_buffers[gi] + 1) * sizeof(float)))) {
            clsynth_ctx_fail(ctx, "out of host memory");
            goto fail;
        }
        size_t at = 0;
        for (int i = 0; i < g->n_buffers; i++) {
            if (clsynth_tensor_download(ctx, g->buffers[i], d->buffers[r][gi] + at))
                goto fail;
            at += g->buffers[i]->numel;
        }
    }
    rc = 0;
    goto out;
fail:
    snprintf(d->err[r], sizeof d->err[r], "rank %d: %s", r, ctx->err.msg);
out:
    free(lab);
    free(edge);
    free(img);
    ctx->comm = NULL; /* the communicator ends with the thread */
    d->ctx[r] = ctx;
    d->model[r] = m;
    return rc;
}

static void run(dp_case *d, int world)
{
    /* serialized: CLBlast's first GEMM on a context is not thread-safe (ASan saw its
     * database copied while another thread freed it) */
    clsynth_test_world *w = clsynth_test_world_new_serialized(world, true);
    ck_assert_ptr_nonnull(w);
    int failed = clsynth_test_world_run(w, 0, dp_rank, d);
    clsynth_test_world_free(w);
    for (int r = 0; r < world; r++)
        ck_assert_msg(d->err[r][0] == 0, "%s/%s/%s: %s", d->netG, d->norm_G, d->norm_D, d->err[r]);
    ck_assert_int_eq(failed, 0);
}

static void release(dp_case *d)
{
    for (int r = 0; r < 2; r++) {
        for (int gi = 0; gi < 2; gi++) {
            clsynth_test_net_state_free(&d->state[r][gi]);
            free(d->buffers[r][gi]);
        }
        if (d->ctx[r]) {
            clsynth_model_free(d->ctx[r], d->model[r]);
            clsynth_ctx_free(d->ctx[r]);
        }
    }
    memset(d, 0, sizeof *d);
}

static bool same_bits(const clsynth_test_net_state *a, const clsynth_test_net_state *b)
{
    return a->n == b->n && memcmp(a->p, b->p, a->n * sizeof(float)) == 0 &&
           memcmp(a->m, b->m, a->n * sizeof(float)) == 0 && memcmp(a->v, b->v, a->n * sizeof(float)) == 0;
}

typedef struct outcome {
    int rc;            /* 0: rank 0 matches the reference by the step rule */
    char msg[700];
    size_t exempt[2];  /* G, D */
    double running_diff; /* largest |running stat difference| of G (NAN: other buffers) */
    double g_mean_diff;  /* largest |difference| of G's running means */
    double buffer_diff;  /* ... of every other buffer of G and D */
    char worst[200];     /* the buffer element of buffer_diff */
} outcome;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The buffer differences of rank 0 of a against rank 0 of ref (same variant of buffers). */
static void buffer_diffs(const dp_case *a, const dp_case *ref, outcome *o)
{
    o->running_diff = o->g_mean_diff = o->buffer_diff = 0;
    const char *which[2] = { "G", "D" };
    for (int gi = 0; gi < 2; gi++) {
        const clsynth_param_group *ga = clsynth_model_group(a->model[0], which[gi]);
        const clsynth_param_group *gr = clsynth_model_group(ref->model[0], which[gi]);
        if (a->n_buffers[gi] != ref->n_buffers[gi] || ga->n_buffers != gr->n_buffers) {
            o->running_diff = o->g_mean_diff = o->buffer_diff = NAN;
            snprintf(o->worst, sizeof o->worst, "%s: %zu and %zu buffer values", which[gi], a->n_buffers[gi],
                     ref->n_buffers[gi]);
            return;
        }
        size_t at = 0;
        for (int b = 0; b < ga->n_buffers; b++) {
            const clsynth_tensor *t = ga->buffers[b];
            const bool running = strstr(t->name, ".running_") != NULL, g_mean = gi == 0 && ends_with(t->name, ".running_mean");
            for (size_t i = 0; i < t->numel; i++, at++) {
                const double d = fabs((double)a->buffers[0][gi][at] - ref->buffers[0][gi][at]);
                if (gi == 0 && running)
                    o->running_diff = fmax(o->running_diff, d);
                if (g_mean) {
                    o->g_mean_diff = fmax(o->g_mean_diff, d);
                } else if (d > o->buffer_diff) {
                    o->buffer_diff = d;
                    snprintf(o->worst, sizeof o->worst, "%s[%zu]: %.8g, reference %.8g", t->name, i,
                             a->buffers[0][gi][at], ref->buffers[0][gi][at]);
                }
            }
        }
    }
}

/* One step of 2 ranks x 1 sample with (netG, norm_G, norm_D) against 1 x 2 with (netG, ref_norm_G, norm_D), at
 * --lr lr (< 0: the default). */
static outcome two_by_one_vs_one_by_two(const char *netG, const char *norm_G, const char *ref_norm_G,
                                        const char *norm_D, float lr)
{
    static dp_case dist, one;
    memset(&dist, 0, sizeof dist);
    memset(&one, 0, sizeof one);
    dist.netG = one.netG = netG;
    dist.norm_D = one.norm_D = norm_D;
    dist.norm_G = norm_G;
    one.norm_G = ref_norm_G;
    dist.lr = one.lr = lr;
    dist.use_comm = true;
    dist.per_rank = 1;
    one.per_rank = GLOBAL;
    run(&dist, 2);
    run(&one, 1);
    for (int gi = 0; gi < 2; gi++)
        ck_assert_msg(same_bits(&dist.state[0][gi], &dist.state[1][gi]) &&
                          memcmp(dist.buffers[0][gi], dist.buffers[1][gi], dist.n_buffers[gi] * sizeof(float)) == 0,
                      "%s: the two ranks' %s states differ", norm_G, gi ? "D" : "G");
    outcome o;
    memset(&o, 0, sizeof o);
    o.rc = clsynth_test_same_step("G", &dist.state[0][0], &one.state[0][0], &o.exempt[0], o.msg, sizeof o.msg);
    if (o.rc == 0)
        o.rc = clsynth_test_same_step("D", &dist.state[0][1], &one.state[0][1], &o.exempt[1], o.msg, sizeof o.msg);
    buffer_diffs(&dist, &one, &o);
    release(&dist);
    release(&one);
    return o;
}

START_TEST(sync_batch_norm_two_ranks_of_one_equal_one_process_of_two)
{
    const char *G = "spectralspadesyncbatch3x3", *D = "spectralsyncbatch";
    /* Once left out on Intel's CPU runtime: G.up_1.conv_1.b[13]'s gradient differed by 8 %
     * (also at --lr 0). Not an op error: it came with one tuned entry of Intel's class file
     * (norm_partial_stats G=32,M=512: 16 items of 32 values, one process's batch of 2 only),
     * whose batch norm equals the default's within 1.9e-6 (y) and 1.5e-7 (dx) at that shape;
     * a rounding-level change flipping something downstream, as the LeakyReLU kinks of the
     * reference test did (platforms.md). It came back when the re-tuned class file shipped
     * that entry again (2026-12-03): the ranks now run with tuned lookups off (dp_rank). */
    outcome o = two_by_one_vs_one_by_two("condconv", G, G, D, -1.0f);
    ck_assert_msg(o.rc == 0, "sync batch norm: %s", o.msg);
    ck_assert_msg(o.buffer_diff <= 1e-5, "sync batch norm: buffers differ by %g (%s)", o.buffer_diff, o.worst);
    printf("sync batch norm: %zu of G, %zu of D exempt (noise gradients); buffers within %.2g, G's running means "
           "within %.2g\n", o.exempt[0], o.exempt[1], o.buffer_diff, o.g_mean_diff);
    /* both D steps on the same G: G's running means too */
    o = two_by_one_vs_one_by_two("condconv", G, G, D, 0.0f);
    ck_assert_msg(o.rc == 0, "sync batch norm, --lr 0: %s", o.msg);
    ck_assert_msg(o.buffer_diff <= 1e-5, "sync batch norm, --lr 0: buffers differ by %g (%s)", o.buffer_diff,
                  o.worst);
    ck_assert_msg(o.g_mean_diff <= 1e-5, "sync batch norm, --lr 0: G's running means differ by %g", o.g_mean_diff);
    printf("sync batch norm, --lr 0: buffers within %.2g, G's running means within %.2g\n", o.buffer_diff,
           o.g_mean_diff);
}
END_TEST

START_TEST(instance_norm_two_ranks_of_one_equal_one_process_of_two)
{
    outcome o = two_by_one_vs_one_by_two("condconv", "spectralspadeinstance3x3", "spectralspadeinstance3x3",
                                         "spectralinstance", -1.0f);
    ck_assert_msg(o.rc == 0, "instance norm: %s", o.msg);
    ck_assert_msg(o.buffer_diff <= 1e-5, "instance norm: buffers differ by %g (%s)", o.buffer_diff, o.worst);
    printf("instance norm: %zu of G, %zu of D exempt (noise gradients); buffers within %.2g\n", o.exempt[0],
           o.exempt[1], o.buffer_diff);
}
END_TEST

START_TEST(per_rank_batch_norm_of_one_sample_is_instance_norm)
{
    /* --lr 0: the D step then sees the same G on both sides. With the default lr, G's Adam step
     * (lr * sign(g) at first) moves the weights whose gradients are at noise level differently,
     * and D's hinge terms near their kink flip on the changed fake: D.enc1's gradient was seen
     * off by 5x after the conv kernels' rounding changed (FP_CONTRACT OFF), with no op wrong. */
    outcome o = two_by_one_vs_one_by_two("spade", "spadebatch3x3", "spadeinstance3x3", "spectralinstance", 0.0f);
    ck_assert_msg(o.rc == 0, "per-rank batch norm vs instance norm: %s", o.msg);
    /* and it is not batch norm of the global batch */
    o = two_by_one_vs_one_by_two("spade", "spadebatch3x3", "spadebatch3x3", "spectralinstance", -1.0f);
    ck_assert_msg(o.rc != 0, "per-rank batch norm matched batch norm of the global batch: not per rank?");
    ck_assert_msg(o.running_diff > 1e-4, "per-rank running statistics equal the global batch's (%g)", o.running_diff);
}
END_TEST

/* One spectral-norm vector of G and/or D perturbed on rank 1. */
typedef struct sn_case {
    const char *buffer[2];     /* [G, D]: the buffer looked at */
    bool perturb[2];           /* [G, D]: rank 1 changes it */
    int check_rc[2], check_after[2];
    char check_msg[2][600];
    float got[2][2];           /* [rank][G, D]: the perturbed element after the broadcast */
    float want[2];             /* rank 0's */
    char err[2][600];
} sn_case;

static int sn_rank(int r, clsynth_comm *comm, void *user)
{
    sn_case *k = user;
    clsynth_err e;
    clsynth_ctx *ctx = clsynth_ctx_create(NULL, &e);
    if (!ctx) {
        snprintf(k->err[r], sizeof k->err[r], "rank %d: no context: %s", r, e.msg);
        return -1;
    }
    ctx->quiet = true;
    ctx->comm = comm;
    dp_case d = { .netG = "condconv", .norm_G = "spectralspadesyncbatch3x3", .norm_D = "spectralsyncbatch",
                  .per_rank = 1, .lr = -1.0f };
    clsynth_options o;
    options(&o, &d);
    int rc = -1;
    clsynth_model *m = clsynth_model_create(ctx, &o, &e);
    if (!m) {
        snprintf(k->err[r], sizeof k->err[r], "rank %d: model: %s", r, e.msg);
        goto out;
    }
    const char *which[2] = { "G", "D" };
    clsynth_tensor *t[2];
    for (int gi = 0; gi < 2; gi++) {
        t[gi] = clsynth_group_find(clsynth_model_group(m, which[gi]), k->buffer[gi]);
        if (!t[gi] || t[gi]->numel < 2) {
            clsynth_ctx_fail(ctx, "no buffer %s of 2 or more values", k->buffer[gi]);
            goto fail;
        }
        float *h = malloc(t[gi]->numel * sizeof *h);
        int bad = !h || clsynth_tensor_download(ctx, t[gi], h);
        if (!bad && r == 0)
            k->want[gi] = h[1];
        if (!bad && r == 1 && k->perturb[gi]) { /* one element, slightly */
            h[1] = nextafterf(h[1], 2.0f);
            bad = clsynth_tensor_upload(ctx, t[gi], h);
        }
        free(h);
        if (bad)
            goto fail;
    }
    /* the check names the first network that differs (G before D) */
    k->check_rc[r] = clsynth_model_check_same(ctx, m);
    snprintf(k->check_msg[r], sizeof k->check_msg[r], "%s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    if (clsynth_model_broadcast(ctx, m, 0))
        goto fail;
    k->check_after[r] = clsynth_model_check_same(ctx, m);
    for (int gi = 0; gi < 2; gi++) {
        float *h = malloc(t[gi]->numel * sizeof *h);
        int bad = !h || clsynth_tensor_download(ctx, t[gi], h);
        if (!bad)
            k->got[r][gi] = h[1];
        free(h);
        if (bad)
            goto fail;
    }
    rc = 0;
    goto out;
fail:
    snprintf(k->err[r], sizeof k->err[r], "rank %d: %s", r, ctx->err.msg);
out:
    if (m)
        clsynth_model_free(ctx, m);
    ctx->comm = NULL;
    clsynth_ctx_free(ctx);
    return rc;
}

static void spectral_vector_follows_rank_0(const char *g_buffer, bool perturb_g, const char *d_buffer, bool perturb_d)
{
    sn_case k;
    memset(&k, 0, sizeof k);
    k.buffer[0] = g_buffer;
    k.buffer[1] = d_buffer;
    k.perturb[0] = perturb_g;
    k.perturb[1] = perturb_d;
    const char *named = perturb_g ? "generator (G)" : "discriminator (D)";
    const char *changed = perturb_g ? g_buffer : d_buffer;
    clsynth_test_world *w = clsynth_test_world_new_serialized(2, true);
    ck_assert_ptr_nonnull(w);
    int failed = clsynth_test_world_run(w, 0, sn_rank, &k);
    clsynth_test_world_free(w);
    for (int r = 0; r < 2; r++) {
        ck_assert_msg(k.err[r][0] == 0, "%s", k.err[r]);
        ck_assert_msg(k.check_rc[r] != 0 && strstr(k.check_msg[r], named) && strstr(k.check_msg[r], "rank 1"),
                      "rank %d: a different %s passed the consistency check (%s)", r, changed, k.check_msg[r]);
        ck_assert_msg(k.check_after[r] == 0, "rank %d: the states differ after the broadcast", r);
        for (int gi = 0; gi < 2; gi++)
            ck_assert_msg(k.got[r][gi] == k.want[gi], "rank %d: %s is %.9g after the broadcast, rank 0's %.9g", r,
                          k.buffer[gi], k.got[r][gi], k.want[gi]);
    }
    ck_assert_int_eq(failed, 0);
}

START_TEST(a_rank_with_another_spectral_norm_v_is_named_and_takes_rank_0s)
{
    spectral_vector_follows_rank_0("G.up_0.conv_s.v", true, "D.enc1.conv.v", true);
    spectral_vector_follows_rank_0("G.up_0.conv_s.v", false, "D.enc1.conv.v", true); /* D's alone */
    spectral_vector_follows_rank_0("G.up_0.conv_s.u", true, "D.enc1.conv.u", true);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("data_parallel");
    TCase *tc = tcase_create("data_parallel");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, sync_batch_norm_two_ranks_of_one_equal_one_process_of_two);
    tcase_add_test(tc, instance_norm_two_ranks_of_one_equal_one_process_of_two);
    tcase_add_test(tc, per_rank_batch_norm_of_one_sample_is_instance_norm);
    tcase_add_test(tc, a_rank_with_another_spectral_norm_v_is_named_and_takes_rank_0s);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
