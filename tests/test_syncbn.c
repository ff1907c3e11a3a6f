/* Synchronized batch norm (clcore/ops_syncbn.c) over K ranks run as threads
 * (tests/comm_threads.c), each with its own OpenCL context and its shard of
 * one batch:
 *   - its output and running statistics equal batch norm of the whole batch
 *     (plain-C reference), on every rank, with the same numbers on every rank;
 *   - its input gradients equal those of batch norm of the whole batch, and
 *     the ranks' gamma/beta gradients sum to the whole batch's (the trainer
 *     averages them; see clcore/comm.h);
 *   - its gradients match central finite differences of the total loss
 *     sum_r <R_r, y_r> taken across the ranks;
 *   - with one rank (no communicator, or a communicator of size 1) and in eval
 *     mode it is batch norm bit for bit, and eval mode does not communicate.
 * Shards of different sizes (PyTorch allows them) and odd shapes are used.
 *
 * Tolerances: outputs atol 2e-5, rtol 1e-4; running stats 1e-6 / 1e-5 (as
 * tests/test_norm.c); gradients vs batch norm of the whole batch atol 1e-5,
 * rtol 1e-4 (different summation order only); finite differences eps 1e-2,
 * atol 2e-3, rtol 2e-2 (float forward, as tests/test_norm.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/comm.h"
#include "clcore/ops.h"
#include "comm_threads.h"
#include "ref_norm.h"
#include "testutil.h"

#define MAXK 4
#define MOMENTUM 0.1f
#define EPS 1e-5f

/* One batch cut into K shards along N, with everything each rank computed. */
typedef struct bn_case {
    int K, N[MAXK], off[MAXK], Ntot, C, H, W;
    bool training;
    float *x, *R, *gamma, *beta, *rm0, *rv0;  /* whole batch (Ntot, C, H, W) and (C) */
    float *y, *dx;                             /* per rank, at the rank's samples */
    float *dgamma, *dbeta, *rm, *rv;           /* (K, C): one row per rank */
    unsigned long calls[MAXK];                 /* collectives each rank made */
    /* finite differences: samples (element of the whole batch) and their numeric gradient */
    int fd_n;
    size_t fd_at[16];
    double fd_num[16];
    char err[MAXK][600];
} bn_case;

static float *rnd(size_t n, float lo, float hi, uint64_t seed)
{
    float *a = malloc(n * sizeof *a);
    ck_assert_ptr_nonnull(a);
    clsynth_test_fill_uniform(a, n, lo, hi, seed);
    return a;
}

static void case_init(bn_case *k, int K, const int *N, int C, int H, int W, float lo, float hi, uint64_t seed)
{
    memset(k, 0, sizeof *k);
    k->K = K;
    k->C = C;
    k->H = H;
    k->W = W;
    k->training = true;
    for (int r = 0; r < K; r++) {
        k->N[r] = N[r];
        k->off[r] = k->Ntot;
        k->Ntot += N[r];
    }
    size_t n = (size_t)k->Ntot * C * H * W;
    k->x = rnd(n, lo, hi, seed);
    k->R = rnd(n, -1.0f, 1.0f, seed + 1);
    k->gamma = rnd((size_t)C, 0.5f, 1.5f, seed + 2);
    k->beta = rnd((size_t)C, -0.5f, 0.5f, seed + 3);
    k->rm0 = rnd((size_t)C, -0.2f, 0.2f, seed + 4);
    k->rv0 = rnd((size_t)C, 0.5f, 1.5f, seed + 5);
    k->y = calloc(n, sizeof *k->y);
    k->dx = calloc(n, sizeof *k->dx);
    k->dgamma = calloc((size_t)K * C, sizeof(float));
    k->dbeta = calloc((size_t)K * C, sizeof(float));
    k->rm = calloc((size_t)K * C, sizeof(float));
    k->rv = calloc((size_t)K * C, sizeof(float));
    ck_assert(k->y && k->dx && k->dgamma && k->dbeta && k->rm && k->rv);
}

static void case_free(bn_case *k)
{
    float *p[] = { k->x, k->R, k->gamma, k->beta, k->rm0, k->rv0, k->y, k->dx, k->dgamma, k->dbeta, k->rm, k->rv };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        free(p[i]);
}

static size_t sample_elems(const bn_case *k) { return (size_t)k->C * k->H * k->W; }

/* Persistent tensor from host data; requires grad when asked. NULL on failure. */
static clsynth_tensor *tensor(clsynth_ctx *ctx, const char *name, int n, int c, int h, int w, const float *host,
                              bool grad)
{
    clsynth_tensor *t = clsynth_tensor_new_persistent(ctx, name, n, c, h, w);
    if (!t || clsynth_tensor_upload(ctx, t, host))
        return NULL;
    if (grad)
        t->flags |= CLSYNTH_T_REQUIRES_GRAD;
    return t;
}

/* One rank's forward (and backward when training) on its shard; the
 * perturbation (element `at` of the whole batch += delta) applies when it falls
 * in this rank's shard. Returns sum <R_r, y_r> in double via *loss. */
static int rank_pass(clsynth_ctx *ctx, bn_case *k, int r, bool backward, size_t at, float delta, double *loss)
{
    const size_t se = sample_elems(k), first = (size_t)k->off[r] * se, n = (size_t)k->N[r] * se;
    float *xl = malloc(n * sizeof *xl);
    float *yl = malloc(n * sizeof *yl);
    if (!xl || !yl) {
        free(xl);
        free(yl);
        return clsynth_ctx_fail(ctx, "out of host memory");
    }
    memcpy(xl, k->x + first, n * sizeof *xl);
    if (at >= first && at < first + n)
        xl[at - first] += delta;
    int rc = -1;
    clsynth_tensor *tx = tensor(ctx, "x", k->N[r], k->C, k->H, k->W, xl, true);
    clsynth_tensor *tg = tensor(ctx, "gamma", 1, k->C, 1, 1, k->gamma, true);
    clsynth_tensor *tb = tensor(ctx, "beta", 1, k->C, 1, 1, k->beta, true);
    clsynth_tensor *trm = tensor(ctx, "running_mean", 1, k->C, 1, 1, k->rm0, false);
    clsynth_tensor *trv = tensor(ctx, "running_var", 1, k->C, 1, 1, k->rv0, false);
    clsynth_tensor *tR = tensor(ctx, "R", k->N[r], k->C, k->H, k->W, k->R + first, false);
    if (!tx || !tg || !tb || !trm || !trv || !tR)
        goto done;
    if (!backward)
        clsynth_no_grad_begin(ctx);
    clsynth_tensor *ty = clsynth_sync_batch_norm(ctx, tx, tg, tb, trm, trv, k->training, MOMENTUM, EPS);
    if (!backward)
        clsynth_no_grad_end(ctx);
    if (!ty || clsynth_tensor_download(ctx, ty, yl))
        goto done;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)yl[i] * k->R[first + i];
    *loss = s;
    if (backward) {
        memcpy(k->y + first, yl, n * sizeof *yl);
        if (clsynth_tensor_download(ctx, trm, k->rm + (size_t)r * k->C) ||
            clsynth_tensor_download(ctx, trv, k->rv + (size_t)r * k->C))
            goto done;
        if (k->training) {
            if (clsynth_backward_with(ctx, ty, tR) || clsynth_tensor_download(ctx, tx->grad, k->dx + first) ||
                clsynth_tensor_download(ctx, tg->grad, k->dgamma + (size_t)r * k->C) ||
                clsynth_tensor_download(ctx, tb->grad, k->dbeta + (size_t)r * k->C))
                goto done;
        }
    }
    rc = 0;
done:
    clsynth_tape_clear(ctx);
    clsynth_release_activations(ctx);
    clsynth_tensor *ts[] = { tx, tg, tb, trm, trv, tR };
    for (int i = 0; i < 6; i++)
        clsynth_tensor_free(ctx, ts[i]);
    free(xl);
    free(yl);
    return rc;
}

static int rank_main(int r, clsynth_comm *comm, void *user)
{
    bn_case *k = user;
    clsynth_err e;
    clsynth_ctx *ctx = clsynth_ctx_create(NULL, &e);
    if (!ctx) {
        snprintf(k->err[r], sizeof k->err[r], "rank %d: no context: %s", r, e.msg);
        return -1;
    }
    ctx->quiet = true;
    ctx->comm = comm;
    double loss;
    int rc = rank_pass(ctx, k, r, true, (size_t)-1, 0.0f, &loss);
    /* finite differences of the total loss: every rank runs every perturbed forward */
    const float eps = 1e-2f;
    for (int i = 0; rc == 0 && i < k->fd_n; i++) {
        double lp, lm;
        rc = rank_pass(ctx, k, r, false, k->fd_at[i], eps, &lp) || rank_pass(ctx, k, r, false, k->fd_at[i], -eps, &lm);
        if (rc == 0)
            rc = clsynth_comm_allreduce_sum(ctx, &lp, 1, CLSYNTH_COMM_F64, CLSYNTH_COMM_STATE) ||
                 clsynth_comm_allreduce_sum(ctx, &lm, 1, CLSYNTH_COMM_F64, CLSYNTH_COMM_STATE);
        if (rc == 0 && r == 0)
            k->fd_num[i] = (lp - lm) / (2.0 * eps);
    }
    k->calls[r] = comm->stats.calls[CLSYNTH_COMM_NORM];
    if (rc)
        snprintf(k->err[r], sizeof k->err[r], "rank %d: %s", r, ctx->err.msg);
    ctx->comm = NULL;
    clsynth_ctx_free(ctx);
    return rc;
}

static void run_case(bn_case *k)
{
    clsynth_test_world *w = clsynth_test_world_new(k->K);
    ck_assert_ptr_nonnull(w);
    int failed = clsynth_test_world_run(w, 0, rank_main, k);
    clsynth_test_world_free(w);
    for (int r = 0; r < k->K; r++)
        ck_assert_msg(k->err[r][0] == 0, "%s", k->err[r]);
    ck_assert_int_eq(failed, 0);
}

/* Batch norm of the whole batch on one context: y, dx, dgamma, dbeta, running stats. */
static void whole_batch(const bn_case *k, float **y, float **dx, float **dg, float **db, float **rm, float **rv)
{
    clsynth_ctx *ctx = clsynth_test_ctx();
    clsynth_tensor *tx = clsynth_test_input(ctx, "x", k->Ntot, k->C, k->H, k->W, k->x);
    clsynth_tensor *tg = clsynth_test_input(ctx, "gamma", 1, k->C, 1, 1, k->gamma);
    clsynth_tensor *tb = clsynth_test_input(ctx, "beta", 1, k->C, 1, 1, k->beta);
    clsynth_tensor *trm = tensor(ctx, "rm", 1, k->C, 1, 1, k->rm0, false);
    clsynth_tensor *trv = tensor(ctx, "rv", 1, k->C, 1, 1, k->rv0, false);
    clsynth_tensor *tR = tensor(ctx, "R", k->Ntot, k->C, k->H, k->W, k->R, false);
    ck_assert(trm && trv && tR);
    clsynth_tensor *ty = clsynth_batch_norm(ctx, tx, tg, tb, trm, trv, k->training, MOMENTUM, EPS);
    ck_assert_msg(ty != NULL, "batch_norm: %s", ctx->err.msg);
    *y = clsynth_test_download(ctx, ty);
    *rm = clsynth_test_download(ctx, trm);
    *rv = clsynth_test_download(ctx, trv);
    if (k->training) {
        ck_assert_msg(clsynth_backward_with(ctx, ty, tR) == 0, "backward: %s", ctx->err.msg);
        *dx = clsynth_test_download(ctx, tx->grad);
        *dg = clsynth_test_download(ctx, tg->grad);
        *db = clsynth_test_download(ctx, tb->grad);
    }
    clsynth_tensor *ts[] = { tx, tg, tb, trm, trv, tR };
    for (int i = 0; i < 6; i++)
        clsynth_tensor_free(ctx, ts[i]);
    clsynth_ctx_free(ctx);
}

/* The ranks' outputs, running stats and gradients against batch norm of the whole batch. */
static void check_against_whole_batch(const bn_case *k)
{
    const size_t n = (size_t)k->Ntot * sample_elems(k);
    float *ry = malloc(n * sizeof *ry), *rrm = malloc((size_t)k->C * sizeof(float)),
          *rrv = malloc((size_t)k->C * sizeof(float));
    memcpy(rrm, k->rm0, (size_t)k->C * sizeof(float));
    memcpy(rrv, k->rv0, (size_t)k->C * sizeof(float));
    ref_batch_norm_train(k->x, k->Ntot, k->C, k->H, k->W, k->gamma, k->beta, rrm, rrv, MOMENTUM, EPS, ry);
    char what[128];
    snprintf(what, sizeof what, "sync_batch_norm y over %d ranks (C %d, %dx%d)", k->K, k->C, k->H, k->W);
    clsynth_test_assert_close(what, k->y, ry, n, 2e-5, 1e-4);
    for (int r = 0; r < k->K; r++) {
        snprintf(what, sizeof what, "running_mean of rank %d", r);
        clsynth_test_assert_close(what, k->rm + (size_t)r * k->C, rrm, (size_t)k->C, 1e-6, 1e-5);
        snprintf(what, sizeof what, "running_var of rank %d", r);
        clsynth_test_assert_close(what, k->rv + (size_t)r * k->C, rrv, (size_t)k->C, 1e-6, 1e-5);
        ck_assert_msg(memcmp(k->rm + (size_t)r * k->C, k->rm, (size_t)k->C * sizeof(float)) == 0 &&
                          memcmp(k->rv + (size_t)r * k->C, k->rv, (size_t)k->C * sizeof(float)) == 0,
                      "rank %d's running statistics differ from rank 0's", r);
    }
    float *by = NULL, *bdx = NULL, *bdg = NULL, *bdb = NULL, *brm = NULL, *brv = NULL;
    whole_batch(k, &by, &bdx, &bdg, &bdb, &brm, &brv);
    clsynth_test_assert_close("sync_batch_norm dx vs batch_norm of the whole batch", k->dx, bdx, n, 1e-5, 1e-4);
    float *sg = calloc((size_t)k->C, sizeof *sg), *sb = calloc((size_t)k->C, sizeof *sb);
    for (int r = 0; r < k->K; r++)
        for (int c = 0; c < k->C; c++) {
            sg[c] += k->dgamma[(size_t)r * k->C + c];
            sb[c] += k->dbeta[(size_t)r * k->C + c];
        }
    clsynth_test_assert_close("sum of the ranks' dgamma vs batch_norm", sg, bdg, (size_t)k->C, 1e-5, 1e-4);
    clsynth_test_assert_close("sum of the ranks' dbeta vs batch_norm", sb, bdb, (size_t)k->C, 1e-5, 1e-4);
    free(ry);
    free(rrm);
    free(rrv);
    free(by);
    free(bdx);
    free(bdg);
    free(bdb);
    free(brm);
    free(brv);
    free(sg);
    free(sb);
}

START_TEST(two_ranks_of_one_sample_equal_batch_norm_of_both)
{
    bn_case k;
    const int N[2] = { 1, 1 };
    case_init(&k, 2, N, 5, 7, 9, -2.0f, 3.0f, 21);
    run_case(&k);
    check_against_whole_batch(&k);
    ck_assert_msg(k.calls[0] == 2 && k.calls[1] == 2, "one all-gather forward and one all-reduce backward per rank, "
                                                       "got %lu and %lu", k.calls[0], k.calls[1]);
    case_free(&k);
}
END_TEST

START_TEST(three_ranks_of_uneven_shards_equal_batch_norm_of_all)
{
    bn_case k;
    const int N[3] = { 2, 1, 3 };
    case_init(&k, 3, N, 17, 5, 3, -2.0f, 3.0f, 22);
    run_case(&k);
    check_against_whole_batch(&k);
    case_free(&k);
}
END_TEST

START_TEST(statistics_stay_accurate_with_a_large_mean)
{
    /* x ~ 1000 + U(-1, 1): sums of squares in float would lose the variance (0.33) */
    bn_case k;
    const int N[2] = { 1, 2 };
    case_init(&k, 2, N, 3, 11, 13, 999.0f, 1001.0f, 23);
    run_case(&k);
    const size_t n = (size_t)k.Ntot * sample_elems(&k);
    float *ry = malloc(n * sizeof *ry), *rm = malloc(3 * sizeof(float)), *rv = malloc(3 * sizeof(float));
    memcpy(rm, k.rm0, 3 * sizeof(float));
    memcpy(rv, k.rv0, 3 * sizeof(float));
    ref_batch_norm_train(k.x, k.Ntot, 3, 11, 13, k.gamma, k.beta, rm, rv, MOMENTUM, EPS, ry);
    clsynth_test_assert_close("sync_batch_norm y, mean 1000", k.y, ry, n, 5e-4, 1e-4);
    clsynth_test_assert_close("running_var, mean 1000", k.rv, rv, 3, 1e-5, 1e-4);
    free(ry);
    free(rm);
    free(rv);
    case_free(&k);
}
END_TEST

START_TEST(gradients_match_finite_differences_across_ranks)
{
    bn_case k;
    const int N[2] = { 1, 2 };
    case_init(&k, 2, N, 3, 5, 3, -2.0f, 3.0f, 24);
    const size_t n = (size_t)k.Ntot * sample_elems(&k);
    k.fd_n = 12; /* spread over both ranks' shards */
    for (int i = 0; i < k.fd_n; i++)
        k.fd_at[i] = (size_t)((double)i / k.fd_n * (double)n + 7) % n;
    run_case(&k);
    for (int i = 0; i < k.fd_n; i++) {
        double a = k.dx[k.fd_at[i]], num = k.fd_num[i];
        ck_assert_msg(fabs(a - num) <= 2e-3 + 2e-2 * fabs(num),
                      "dx[%zu] (rank %s): analytic %.6g, finite differences %.6g", k.fd_at[i],
                      k.fd_at[i] < sample_elems(&k) ? "0" : "1", a, num);
    }
    case_free(&k);
}
END_TEST

/* One process: sync_batch_norm with comm (or NULL) against batch_norm, bit for bit. */
typedef struct one_case {
    bool use_comm, training;
    float *y_sync, *y_bn, *dx_sync, *dx_bn;
    size_t n;
    unsigned long calls;
    char err[600];
} one_case;

static int one_rank(int r, clsynth_comm *comm, void *user)
{
    one_case *o = user;
    clsynth_err e;
    clsynth_ctx *ctx = clsynth_ctx_create(NULL, &e);
    if (!ctx) {
        snprintf(o->err, sizeof o->err, "no context: %s", e.msg);
        return -1;
    }
    ctx->quiet = true;
    ctx->comm = o->use_comm ? comm : NULL;
    const int N = 2, C = 7, H = 5, W = 9;
    o->n = (size_t)N * C * H * W;
    float *x = malloc(o->n * sizeof *x), *R = malloc(o->n * sizeof *R), g[7], b[7], rm[7], rv[7];
    clsynth_test_fill_uniform(x, o->n, -2.0f, 3.0f, 31);
    clsynth_test_fill_uniform(R, o->n, -1.0f, 1.0f, 32);
    clsynth_test_fill_uniform(g, 7, 0.5f, 1.5f, 33);
    clsynth_test_fill_uniform(b, 7, -0.5f, 0.5f, 34);
    clsynth_test_fill_uniform(rm, 7, -0.2f, 0.2f, 35);
    clsynth_test_fill_uniform(rv, 7, 0.5f, 1.5f, 36);
    int rc = -1;
    for (int pass = 0; pass < 2; pass++) {
        clsynth_tensor *tx = tensor(ctx, "x", N, C, H, W, x, true), *tg = tensor(ctx, "g", 1, C, 1, 1, g, true);
        clsynth_tensor *tb = tensor(ctx, "b", 1, C, 1, 1, b, true), *tR = tensor(ctx, "R", N, C, H, W, R, false);
        clsynth_tensor *trm = tensor(ctx, "rm", 1, C, 1, 1, rm, false), *trv = tensor(ctx, "rv", 1, C, 1, 1, rv, false);
        if (!tx || !tg || !tb || !tR || !trm || !trv)
            goto out;
        clsynth_tensor *ty = pass == 0 ? clsynth_sync_batch_norm(ctx, tx, tg, tb, trm, trv, o->training, MOMENTUM, EPS)
                                       : clsynth_batch_norm(ctx, tx, tg, tb, trm, trv, o->training, MOMENTUM, EPS);
        float *y = malloc(o->n * sizeof *y), *dx = malloc(o->n * sizeof *dx);
        if (pass == 0) {
            o->y_sync = y;
            o->dx_sync = dx;
        } else {
            o->y_bn = y;
            o->dx_bn = dx;
        }
        if (!ty || !y || !dx || clsynth_tensor_download(ctx, ty, y) || clsynth_backward_with(ctx, ty, tR) ||
            clsynth_tensor_download(ctx, tx->grad, dx))
            goto out;
        clsynth_tensor *ts[] = { tx, tg, tb, tR, trm, trv };
        for (int i = 0; i < 6; i++)
            clsynth_tensor_free(ctx, ts[i]);
    }
    o->calls = comm->stats.calls[CLSYNTH_COMM_NORM];
    rc = 0;
out:
    if (rc)
        snprintf(o->err, sizeof o->err, "%s", ctx->err.msg);
    free(x);
    free(R);
    ctx->comm = NULL;
    clsynth_ctx_free(ctx);
    return rc;
}

static void check_one(bool use_comm, bool training, int world)
{
    one_case o;
    memset(&o, 0, sizeof o);
    o.use_comm = use_comm;
    o.training = training;
    clsynth_test_world *w = clsynth_test_world_new(world);
    ck_assert_ptr_nonnull(w);
    int failed = clsynth_test_world_run(w, 0, one_rank, &o);
    clsynth_test_world_free(w);
    ck_assert_msg(failed == 0 && o.err[0] == 0, "%s", o.err);
    ck_assert_msg(memcmp(o.y_sync, o.y_bn, o.n * sizeof(float)) == 0, "y differs from batch_norm (comm %d, training %d)",
                  use_comm, training);
    ck_assert_msg(memcmp(o.dx_sync, o.dx_bn, o.n * sizeof(float)) == 0, "dx differs from batch_norm (comm %d, training %d)",
                  use_comm, training);
    ck_assert_msg(o.calls == 0, "%lu collectives in one process", o.calls);
    free(o.y_sync);
    free(o.y_bn);
    free(o.dx_sync);
    free(o.dx_bn);
}

START_TEST(one_process_is_batch_norm_bit_for_bit)
{
    check_one(false, true, 1); /* no communicator */
    check_one(true, true, 1);  /* a communicator of one rank */
    check_one(false, false, 1);
}
END_TEST

START_TEST(eval_mode_uses_running_statistics_without_communicating)
{
    bn_case k;
    const int N[2] = { 1, 2 };
    case_init(&k, 2, N, 4, 3, 5, -2.0f, 3.0f, 25);
    k.training = false;
    run_case(&k);
    const size_t n = (size_t)k.Ntot * sample_elems(&k);
    float *ry = malloc(n * sizeof *ry);
    ref_batch_norm_eval(k.x, k.Ntot, k.C, k.H, k.W, k.gamma, k.beta, k.rm0, k.rv0, EPS, ry);
    clsynth_test_assert_close("sync_batch_norm eval y", k.y, ry, n, 2e-5, 1e-4);
    ck_assert_msg(k.calls[0] == 0 && k.calls[1] == 0, "eval mode made %lu and %lu collectives", k.calls[0], k.calls[1]);
    free(ry);
    case_free(&k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("syncbn");
    TCase *tc = tcase_create("syncbn");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, two_ranks_of_one_sample_equal_batch_norm_of_both);
    tcase_add_test(tc, three_ranks_of_uneven_shards_equal_batch_norm_of_all);
    tcase_add_test(tc, statistics_stay_accurate_with_a_large_mean);
    tcase_add_test(tc, gradients_match_finite_differences_across_ranks);
    tcase_add_test(tc, one_process_is_batch_norm_bit_for_bit);
    tcase_add_test(tc, eval_mode_uses_running_statistics_without_communicating);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
