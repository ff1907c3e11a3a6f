/* The op sweep (after ggml's test-backend-ops): every registered kernel
 * descriptor with a harness x its test shapes x {the device's limits, an
 * emulated small device (48 items, 8 KiB)} x a sample of legal tunable candidates (the
 * defaults always among them), forward and - for kernels that run in the
 * backward - the input gradients, against the plain-C references of
 * tests/ref_*, with a tolerance per op. It runs on whatever CLSYNTH_DEVICE
 * selects, so the same test serves every OpenCL implementation.
 *
 * Synchronized batch norm (clcore/ops_syncbn.c) launches the norm
 * descriptors' kernels too, in steps of its own with collectives between
 * them: it is swept under the same configurations over two ranks run as
 * threads (tests/comm_threads.c), each with its own context and its own
 * sample, against batch norm of the two samples together.
 *
 * Also the registration checks: every registry slot holds a distinct
 * descriptor, every kernel a descriptor names exists in its file, every -D a
 * kernel file requires (#error when missing) is a descriptor's tunable, and
 * every descriptor with a harness has a reference here.
 *
 * CLSYNTH_SWEEP_SAMPLES=N: candidates per (kernel, shape, limits) besides the
 * defaults (default 2; 1 under Oclgrind, where only the smallest shape runs);
 * a space of at most 4 legal candidates (an algorithm choice) runs whole.
 * CLSYNTH_SWEEP_KERNEL=key: one descriptor only. CLSYNTH_SWEEP_VERBOSE=1: one
 * line per case.
 * CLSYNTH_OCLGRIND_OK */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/comm.h"
#include "clcore/kconfig.h"
#include "clcore/kdefs.h"
#include "clcore/kernels_embedded.h"
#include "clcore/ops.h"
#include "clcore/program.h"
#include "clcore/tunedb.h"
#include "clcore/tuner.h"
#include "comm_threads.h"
#include "ref_conv.h"
#include "ref_dwconv.h"
#include "ref_elementwise.h"
#include "ref_norm.h"
#include "testutil.h"

/* ------------------------------------------------------------ references */

/* Host copies of one harness run: inputs, the seed of the backward, the
 * output and the gradients of the inputs that require them. */
typedef struct run {
    int n_in;
    float *in[6];
    size_t n[6];
    float *grad[6]; /* NULL: no gradient */
    float *dy;
    float *y;
    size_t ny;
} run;

typedef void (*ref_fn)(const void *shape, const run *r, float *y, float *const *grad);

static void ref_conv(const void *shape, const run *r, float *y, float *const *grad)
{
    const clsynth_conv_shape *s = shape;
    ref_conv2d_forward(r->in[0], r->in[1], r->in[2], y, s->n, s->cin, s->h, s->w, s->cout, s->kh, s->kw, s->stride,
                       s->pad);
    if (grad[0] || grad[1] || grad[2])
        ref_conv2d_backward(r->in[0], r->in[1], r->dy, grad[0], grad[1], grad[2], s->n, s->cin, s->h, s->w, s->cout,
                            s->kh, s->kw, s->stride, s->pad);
}

/* the fused harnesses: in = x, w, b, gate, residual; LeakyReLU(0.2) for the
 * implicit GEMM, ReLU for Winograd (clcore/ops_conv_igemm_kdef.c) */
static void ref_fused(const void *shape, const run *r, float *y, float *const *grad, int act, float slope)
{
    const clsynth_conv_shape *s = shape;
    ref_conv2d_fused_forward(r->in[0], r->in[1], r->in[2], r->in[3], r->in[4], act, slope, y, s->n, s->cin, s->h,
                             s->w, s->cout, s->kh, s->kw, s->stride, s->pad);
    if (grad[0] || grad[1] || grad[2] || grad[3] || grad[4])
        ref_conv2d_fused_backward(r->in[0], r->in[1], r->in[2], r->in[3], r->in[4], act, slope, r->dy, grad[0],
                                  grad[1], grad[2], grad[3], grad[4], s->n, s->cin, s->h, s->w, s->cout, s->kh,
                                  s->kw, s->stride, s->pad);
}

static void ref_fused_leaky(const void *shape, const run *r, float *y, float *const *grad)
{
    ref_fused(shape, r, y, grad, 2, 0.2f);
}

static void ref_fused_relu(const void *shape, const run *r, float *y, float *const *grad)
{
    ref_fused(shape, r, y, grad, 1, 0.0f);
}

static void ref_dw(const void *shape, const run *r, float *y, float *const *grad)
{
    const clsynth_dwconv_shape *s = shape;
    ref_cond_dwconv(r->in[0], r->in[1], y, 1, s->nc, s->h, s->w);
    if (grad[0] || grad[1])
        ref_cond_dwconv_backward(r->in[0], r->in[1], r->dy, grad[0], grad[1], 1, s->nc, s->h, s->w);
}

/* the harness: batch norm in training, no affine, of x (1, G, 1, M) */
static void ref_norm(const void *shape, const run *r, float *y, float *const *grad)
{
    const clsynth_norm_shape *s = shape;
    ref_batch_norm_train(r->in[0], 1, s->groups, 1, s->m, NULL, NULL, NULL, NULL, 0.1f, 1e-5f, y);
    if (grad[0])
        ref_batch_norm_train_backward(r->in[0], r->dy, 1, s->groups, 1, s->m, NULL, 1e-5f, grad[0], NULL, NULL);
}

/* the harness: x (1, 1, K, R) summed over its last dim */
static void ref_reduce(const void *shape, const run *r, float *y, float *const *grad)
{
    const clsynth_reduce_shape *s = shape;
    (void)grad;
    const int xd[4] = { 1, 1, 1 << s->log2_k, 1 << s->log2_r }, od[4] = { 1, 1, 1 << s->log2_k, 1 };
    ref_ew_reduce_to(r->in[0], NULL, xd, y, od, 1.0, 0.0);
}

/* the harness: C = A B + 0.5 C0 + bias(row) per product, or summed over the batch */
static void ref_gemm(const void *shape, const run *r, float *y, float *const *grad)
{
    const clsynth_matmul_shape *s = shape;
    (void)grad;
    const size_t mn = (size_t)s->m * (size_t)s->n, mk = (size_t)s->m * (size_t)s->k, kn = (size_t)s->k * (size_t)s->n;
    for (int b = 0; b < (s->sum ? 1 : s->batch); b++)
        for (size_t e = 0; e < mn; e++)
            y[(size_t)b * mn + e] = 0.5f * r->in[2][(size_t)b * mn + e] + r->in[3][e / (size_t)s->n];
    for (int b = 0; b < s->batch; b++) {
        const float *A = r->in[0] + (size_t)b * mk, *B = r->in[1] + (size_t)b * kn;
        float *C = y + (s->sum ? 0 : (size_t)b * mn);
        for (int i = 0; i < s->m; i++)
            for (int j = 0; j < s->n; j++) {
                double acc = 0;
                for (int p = 0; p < s->k; p++)
                    acc += (double)(s->ta ? A[(size_t)p * s->m + i] : A[(size_t)i * s->k + p]) *
                           (s->tb ? B[(size_t)j * s->k + p] : B[(size_t)p * s->n + j]);
                C[(size_t)i * s->n + j] += (float)acc;
            }
    }
}

/* |device - reference| <= atol * max|reference| + rtol * |reference|, per
 * output tensor (the output, each gradient). Float32 against double: the
 * sums are short (convs: at most 17*3*3 products; dwconv: 9) except the
 * norms' and reductions' (up to 2^14 values, tree-summed). */
typedef struct sweep_ref {
    const char *key;
    ref_fn fn;
    double atol, rtol;
} sweep_ref;

static const sweep_ref REFS[] = {
    { "conv2d", ref_conv, 2e-5, 1e-4 },
    { "conv_fwd_direct", ref_conv, 2e-5, 1e-4 },
    { "conv_bwd_data_direct", ref_conv, 2e-5, 1e-4 },
    { "conv_bwd_weight_direct", ref_conv, 2e-5, 1e-4 },
    { "conv_igemm_fwd", ref_fused_leaky, 2e-5, 1e-4 },
    { "conv_igemm_bwd_data", ref_conv, 2e-5, 1e-4 },
    { "conv_igemm_bwd_weight", ref_conv, 2e-5, 1e-4 },
    /* Winograd F(2x2,3x3): the transforms add a few roundings per output */
    { "conv_winograd", ref_fused_relu, 5e-5, 2e-4 },
    { "dwconv_fwd", ref_dw, 2e-6, 1e-5 },
    { "dwconv_bwd", ref_dw, 2e-6, 1e-5 },
    { "norm_partial_stats", ref_norm, 2e-5, 1e-4 },
    { "norm_partial_dsums", ref_norm, 2e-5, 1e-4 },
    { "reduce_groups", ref_reduce, 2e-6, 1e-5 },
    { "gemm", ref_gemm, 2e-6, 1e-5 },
};

static const sweep_ref *ref_of(const char *key)
{
    for (size_t i = 0; i < sizeof REFS / sizeof REFS[0]; i++)
        if (strcmp(REFS[i].key, key) == 0)
            return &REFS[i];
    return NULL;
}

/* ------------------------------------------------------------ running the harness */

static void run_free(run *r)
{
    for (int i = 0; i < 6; i++) {
        free(r->in[i]);
        free(r->grad[i]);
    }
    free(r->dy);
    free(r->y);
    memset(r, 0, sizeof *r);
}

static float *download(clsynth_ctx *c, const clsynth_tensor *t)
{
    float *h = malloc(t->numel * sizeof *h);
    ck_assert_ptr_nonnull(h);
    ck_assert_msg(clsynth_tensor_download(c, t, h) == 0, "%s", c->err.msg);
    return h;
}

/* One forward (and backward) of def's harness at shape under force. */
static void run_harness(clsynth_ctx *c, const clsynth_kdef *def, const void *shape, clsynth_kforce *force, run *r)
{
    memset(r, 0, sizeof *r);
    clsynth_kbench b;
    memset(&b, 0, sizeof b);
    memcpy(&b.shape, shape, def->shape_size);
    ck_assert_msg(def->setup(c, &b) == 0, "%s: setup: %s", def->key, c->err.msg);
    r->n_in = b.n_in;
    for (int i = 0; i < b.n_in; i++) {
        bool grad = def->backward && (!def->grad_mask || (def->grad_mask & (1u << i)));
        if (grad)
            b.in[i]->flags |= CLSYNTH_T_REQUIRES_GRAD;
        else
            b.in[i]->flags &= ~(unsigned)CLSYNTH_T_REQUIRES_GRAD;
        r->in[i] = download(c, b.in[i]);
        r->n[i] = b.in[i]->numel;
    }
    clsynth_tensor *y = def->run(c, &b, force);
    ck_assert_msg(y != NULL, "%s: %s", def->key, c->err.msg);
    r->y = download(c, y);
    r->ny = y->numel;
    if (def->backward) {
        r->dy = malloc(y->numel * sizeof *r->dy);
        ck_assert_ptr_nonnull(r->dy);
        clsynth_test_fill_uniform(r->dy, y->numel, -1.0f, 1.0f, 77);
        clsynth_tensor *g = clsynth_tensor_from_host(c, "sweep.dy", y->n, y->c, y->h, y->w, r->dy);
        ck_assert_msg(g && clsynth_backward_with(c, y, g) == 0, "%s backward: %s", def->key, c->err.msg);
        for (int i = 0; i < b.n_in; i++)
            if (b.in[i]->grad)
                r->grad[i] = download(c, b.in[i]->grad);
    } else {
        clsynth_tape_clear(c);
        clsynth_release_activations(c);
    }
    for (int i = 0; i < b.n_in; i++)
        clsynth_tensor_free(c, b.in[i]);
}

static void assert_matches(const char *what, const float *a, const float *ref, size_t n, double atol, double rtol)
{
    double amax = 0;
    for (size_t i = 0; i < n; i++)
        amax = fmax(amax, fabs((double)ref[i]));
    size_t worst = 0;
    double w = clsynth_test_compare(a, ref, n, atol * amax + 1e-30, rtol, &worst);
    ck_assert_msg(w <= 1.0, "%s: element %zu is %.9g, the reference %.9g (%.3g of the tolerance %.2g max|ref| + %.2g "
                            "|ref|, max|ref| %.3g)", what, worst, a[worst], ref[worst], w, atol, rtol, amax);
}

/* Runs one case and checks it against the reference. */
static void check_case(clsynth_ctx *c, const clsynth_kdef *def, const sweep_ref *sr, const void *shape,
                       clsynth_kforce *force, const char *limits)
{
    run r;
    run_harness(c, def, shape, force, &r);
    char key[CLSYNTH_K_KEY_MAX], desc[200], what[400];
    def->format(shape, key, sizeof key);
    if (force->defaults)
        snprintf(desc, sizeof desc, "defaults");
    else
        clsynth_kdef_describe(def, force->v, desc, sizeof desc);
    if (getenv("CLSYNTH_SWEEP_VERBOSE"))
        fprintf(stderr, "sweep %-22s %-30s %-18s %s\n", def->key, key, limits, desc);
    ck_assert_msg(force->hits > 0, "%s at %s: the harness never resolved its kernel", def->key, key);
    float *y = malloc(r.ny * sizeof *y), *g[6] = { NULL };
    ck_assert_ptr_nonnull(y);
    for (int i = 0; i < r.n_in; i++)
        if (r.grad[i])
            ck_assert_ptr_nonnull(g[i] = malloc(r.n[i] * sizeof *g[i]));
    sr->fn(shape, &r, y, g);
    snprintf(what, sizeof what, "%s at %s, %s, %s: output", def->key, key, limits, desc);
    assert_matches(what, r.y, y, r.ny, sr->atol, sr->rtol);
    for (int i = 0; i < r.n_in; i++)
        if (r.grad[i]) {
            snprintf(what, sizeof what, "%s at %s, %s, %s: gradient of input %d", def->key, key, limits, desc, i);
            assert_matches(what, r.grad[i], g[i], r.n[i], sr->atol, sr->rtol);
        }
    free(y);
    for (int i = 0; i < 6; i++)
        free(g[i]);
    run_free(&r);
}

static int samples_wanted(void)
{
    const char *v = getenv("CLSYNTH_SWEEP_SAMPLES");
    if (v && *v)
        return atoi(v) < 0 ? 0 : atoi(v);
    return clsynth_test_under_oclgrind() ? 1 : 2;
}

/* One configuration of def at shape (force: the defaults or values). */
typedef void (*case_fn)(clsynth_ctx *c, const clsynth_kdef *def, const void *shape, clsynth_kforce *force,
                        const char *limits, void *user);

/* The defaults, then `samples` legal candidates spread over the enumeration
 * (a candidate whose own build exceeds its kernel's limit is skipped for the
 * next one), each given to fn. Returns the candidates run besides the
 * defaults. */
static int sweep_shape(clsynth_ctx *c, const clsynth_kdef *def, const void *shape, int shape_index,
                       const char *limits, case_fn fn, void *user)
{
    clsynth_kforce f = { .def = def, .defaults = true };
    fn(c, def, shape, &f, limits, user);
    char key[CLSYNTH_K_KEY_MAX];
    def->format(shape, key, sizeof key);
    int *v = NULL;
    size_t count = 0;
    ck_assert_msg(clsynth_tune_enumerate(c, def, key, false, &v, &count) == 0, "%s", c->err.msg);
    int samples = samples_wanted(), ran = 0;
    if (count <= 4 && samples > 0)
        samples = (int)count; /* an algorithm choice: every candidate runs */
    if (clsynth_test_under_oclgrind() && !def->file)
        samples = 0; /* conv2d's GEMM candidates: CLBlast is too slow to simulate */
    for (int k = 0; k < samples && count; k++) {
        /* spread evenly over the enumeration, offset per shape so that the
         * shapes do not all take the same candidates */
        size_t start = ((size_t)(k + 1) * count / (size_t)(samples + 1) + (size_t)shape_index * 7919u) % count;
        for (size_t j = 0; j < count; j++) {
            const int *cv = v + ((start + j) % count) * (size_t)def->n_params;
            char why[300];
            if (!clsynth_tune_legal(c, def, cv, key, true, why, sizeof why))
                continue;
            clsynth_kforce fc = { .def = def };
            memcpy(fc.v, cv, sizeof(int) * (size_t)def->n_params);
            fn(c, def, shape, &fc, limits, user);
            ran++;
            break;
        }
    }
    free(v);
    return ran;
}

static void harness_case(clsynth_ctx *c, const clsynth_kdef *def, const void *shape, clsynth_kforce *force,
                         const char *limits, void *user)
{
    check_case(c, def, user, shape, force, limits);
}

static void sweep(bool small)
{
    clsynth_ctx *c = clsynth_test_ctx();
    /* 48 items: not a power of two, so the reductions' trees fold their top part */
    const char *limits = small ? "48 items, 8 KiB" : "device limits";
    if (small)
        clsynth_ctx_emulate_limits(c, 48, 8192);
    clsynth_tunedb_set_path(c, "sweep-no-database.txt"); /* the defaults are the built-in ones */
    const char *only = getenv("CLSYNTH_SWEEP_KERNEL");
    int nd = 0;
    const clsynth_kdef *const *defs = clsynth_kdefs(&nd);
    for (int d = 0; d < nd; d++) {
        const clsynth_kdef *def = defs[d];
        if (!def->run || (only && strcmp(only, def->key) != 0))
            continue;
        const sweep_ref *sr = ref_of(def->key);
        ck_assert_msg(sr != NULL, "%s has no reference in the sweep", def->key);
        int shapes = clsynth_test_under_oclgrind() ? 1 : def->n_test_shapes, ran = 0;
        for (int i = 0; i < shapes; i++)
            ran += sweep_shape(c, def, clsynth_kdef_test_shape(def, i), i, limits, harness_case, (void *)sr);
        ck_assert_msg(ran > 0 || samples_wanted() == 0 || (clsynth_test_under_oclgrind() && !def->file),
                      "%s: no candidate besides the defaults is legal here", def->key);
    }
    clsynth_ctx_free(c);
}

START_TEST(every_kernel_matches_its_reference_under_the_device_limits) { sweep(false); }
END_TEST

START_TEST(every_kernel_matches_its_reference_on_a_small_device) { sweep(true); }
END_TEST

/* ------------------------------------------------------------ synchronized batch norm */

#define SYNC_RANKS 2

/* One configuration of synchronized batch norm over SYNC_RANKS thread ranks:
 * rank r normalizes x[r] (1, G, 1, M), the harness shape, so each rank
 * resolves the descriptor at the very shape forced. */
typedef struct sync_sweep {
    clsynth_ctx *ctx[SYNC_RANKS];
    const clsynth_norm_shape *s;
    clsynth_kforce force[SYNC_RANKS]; /* one each: the ops count their hits in it */
    float *x[SYNC_RANKS], *dy[SYNC_RANKS], *y[SYNC_RANKS], *dx[SYNC_RANKS];
    char err[SYNC_RANKS][600];
} sync_sweep;

static int sync_rank(int r, clsynth_comm *comm, void *user)
{
    sync_sweep *k = user;
    clsynth_ctx *ctx = k->ctx[r];
    const int G = k->s->groups, M = k->s->m;
    ctx->comm = comm;
    int rc = -1;
    clsynth_tensor *x = clsynth_tensor_new_persistent(ctx, "sweep.sync.x", 1, G, 1, M);
    clsynth_tensor *dy = clsynth_tensor_new_persistent(ctx, "sweep.sync.dy", 1, G, 1, M);
    if (!x || !dy || clsynth_tensor_upload(ctx, x, k->x[r]) || clsynth_tensor_upload(ctx, dy, k->dy[r]))
        goto done;
    x->flags |= CLSYNTH_T_REQUIRES_GRAD;
    clsynth_tensor *y = clsynth_sync_batch_norm_forced(ctx, x, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f, &k->force[r]);
    if (!y || clsynth_tensor_download(ctx, y, k->y[r]) || clsynth_backward_with(ctx, y, dy) ||
        clsynth_tensor_download(ctx, x->grad, k->dx[r]))
        goto done;
    rc = 0;
done:
    if (rc)
        snprintf(k->err[r], sizeof k->err[r], "rank %d: %s", r, ctx->err.msg);
    clsynth_tape_clear(ctx);
    clsynth_release_activations(ctx);
    clsynth_tensor_free(ctx, x);
    clsynth_tensor_free(ctx, dy);
    ctx->comm = NULL;
    return rc;
}

static void sync_case(clsynth_ctx *c, const clsynth_kdef *def, const void *shape, clsynth_kforce *force,
                      const char *limits, void *user)
{
    (void)c;
    clsynth_ctx *const *ranks = user;
    sync_sweep k;
    memset(&k, 0, sizeof k);
    k.s = shape;
    const size_t n = (size_t)k.s->groups * (size_t)k.s->m;
    for (int r = 0; r < SYNC_RANKS; r++) {
        k.ctx[r] = ranks[r];
        k.force[r] = *force;
        k.force[r].hits = 0;
        ck_assert(k.x[r] = malloc(n * sizeof(float)));
        ck_assert(k.dy[r] = malloc(n * sizeof(float)));
        ck_assert(k.y[r] = malloc(n * sizeof(float)));
        ck_assert(k.dx[r] = malloc(n * sizeof(float)));
        /* the ranks' samples differ in mean and spread, so neither alone gives the statistics */
        clsynth_test_fill_uniform(k.x[r], n, -1.0f + 1.5f * (float)r, 1.0f + 2.5f * (float)r, 31u + (unsigned)r);
        clsynth_test_fill_uniform(k.dy[r], n, -1.0f, 1.0f, 77u + (unsigned)r);
    }
    /* Oclgrind's runtime is not thread-safe (jrprice/Oclgrind#28; concurrent ranks gave wrong
     * numbers there): one rank runs at a time under it */
    clsynth_test_world *w = clsynth_test_world_new_serialized(SYNC_RANKS, clsynth_test_under_oclgrind());
    ck_assert_ptr_nonnull(w);
    int failed = clsynth_test_world_run(w, 0, sync_rank, &k);
    clsynth_test_world_free(w);
    char key[CLSYNTH_K_KEY_MAX], desc[200], what[400];
    def->format(shape, key, sizeof key);
    if (force->defaults)
        snprintf(desc, sizeof desc, "defaults");
    else
        clsynth_kdef_describe(def, force->v, desc, sizeof desc);
    if (getenv("CLSYNTH_SWEEP_VERBOSE"))
        fprintf(stderr, "sweep %-22s %-30s %-18s %s (sync batch norm, %d ranks)\n", def->key, key, limits, desc,
                SYNC_RANKS);
    for (int r = 0; r < SYNC_RANKS; r++) {
        ck_assert_msg(k.err[r][0] == 0, "sync batch norm, %s at %s, %s, %s: %s", def->key, key, limits, desc,
                      k.err[r]);
        ck_assert_msg(k.force[r].hits > 0, "sync batch norm, %s at %s: rank %d never resolved the kernel", def->key,
                      key, r);
    }
    ck_assert_int_eq(failed, 0);

    /* batch norm of the ranks' samples as one batch (SYNC_RANKS, G, 1, M) */
    const int G = k.s->groups, M = k.s->m, K = SYNC_RANKS;
    float *xa = malloc(K * n * sizeof *xa), *dya = malloc(K * n * sizeof *dya);
    float *ya = malloc(K * n * sizeof *ya), *dxa = malloc(K * n * sizeof *dxa);
    ck_assert(xa && dya && ya && dxa);
    for (int r = 0; r < K; r++) {
        memcpy(xa + (size_t)r * n, k.x[r], n * sizeof *xa);
        memcpy(dya + (size_t)r * n, k.dy[r], n * sizeof *dya);
    }
    ref_batch_norm_train(xa, K, G, 1, M, NULL, NULL, NULL, NULL, 0.1f, 1e-5f, ya);
    ref_batch_norm_train_backward(xa, dya, K, G, 1, M, NULL, 1e-5f, dxa, NULL, NULL);
    const sweep_ref *sr = ref_of(def->key);
    for (int r = 0; r < K; r++) {
        snprintf(what, sizeof what, "sync batch norm, %s at %s, %s, %s: rank %d output", def->key, key, limits, desc,
                 r);
        assert_matches(what, k.y[r], ya + (size_t)r * n, n, sr->atol, sr->rtol);
        snprintf(what, sizeof what, "sync batch norm, %s at %s, %s, %s: rank %d input gradient", def->key, key,
                 limits, desc, r);
        assert_matches(what, k.dx[r], dxa + (size_t)r * n, n, sr->atol, sr->rtol);
    }
    free(xa);
    free(dya);
    free(ya);
    free(dxa);
    for (int r = 0; r < K; r++) {
        free(k.x[r]);
        free(k.dy[r]);
        free(k.y[r]);
        free(k.dx[r]);
    }
}

static void sweep_sync(bool small)
{
    const char *limits = small ? "48 items, 8 KiB" : "device limits";
    clsynth_ctx *ranks[SYNC_RANKS];
    for (int r = 0; r < SYNC_RANKS; r++) {
        ranks[r] = clsynth_test_ctx();
        if (small)
            clsynth_ctx_emulate_limits(ranks[r], 48, 8192);
        clsynth_tunedb_set_path(ranks[r], "sweep-no-database.txt");
    }
    const clsynth_kdef *defs[2] = { &clsynth_kdef_norm_partial_stats, &clsynth_kdef_norm_partial_dsums };
    for (int d = 0; d < 2; d++) {
        const clsynth_kdef *def = defs[d];
        const char *only = getenv("CLSYNTH_SWEEP_KERNEL");
        if (only && strcmp(only, def->key) != 0)
            continue;
        int shapes = clsynth_test_under_oclgrind() ? 1 : def->n_test_shapes, ran = 0;
        for (int i = 0; i < shapes; i++)
            ran += sweep_shape(ranks[0], def, clsynth_kdef_test_shape(def, i), i, limits, sync_case, ranks);
        ck_assert_msg(ran > 0 || samples_wanted() == 0, "%s: no candidate besides the defaults is legal here",
                      def->key);
    }
    for (int r = 0; r < SYNC_RANKS; r++)
        clsynth_ctx_free(ranks[r]);
}

START_TEST(sync_batch_norm_matches_its_reference_under_the_norm_configurations) { sweep_sync(false); }
END_TEST

START_TEST(sync_batch_norm_matches_its_reference_on_a_small_device) { sweep_sync(true); }
END_TEST

/* ------------------------------------------------------------ registration */

START_TEST(every_registry_slot_holds_a_distinct_descriptor)
{
    int nd = 0;
    const clsynth_kdef *const *defs = clsynth_kdefs(&nd);
    ck_assert_int_eq(nd, CLSYNTH_KDEF_COUNT);
    for (int d = 0; d < nd; d++) {
        ck_assert_msg(defs[d] != NULL, "registry slot %d is empty", d);
        ck_assert_msg(clsynth_kdef_find(defs[d]->key) == defs[d], "%s: registered twice", defs[d]->key);
        ck_assert_msg(defs[d]->format && defs[d]->parse && defs[d]->shape_size <= sizeof(clsynth_kshape),
                      "%s: no shape format", defs[d]->key);
        ck_assert_msg(defs[d]->n_test_shapes > 0, "%s: no test shape", defs[d]->key);
        /* the shape key round-trips */
        char key[CLSYNTH_K_KEY_MAX], again[CLSYNTH_K_KEY_MAX];
        clsynth_kshape s;
        clsynth_kdef_test_key(defs[d], 0, key, sizeof key);
        ck_assert_msg(defs[d]->parse(key, &s), "%s: its own key '%s' does not parse", defs[d]->key, key);
        defs[d]->format(&s, again, sizeof again);
        ck_assert_str_eq(key, again);
    }
}
END_TEST

START_TEST(every_descriptor_with_a_harness_has_a_reference)
{
    int nd = 0;
    const clsynth_kdef *const *defs = clsynth_kdefs(&nd);
    for (int d = 0; d < nd; d++)
        if (defs[d]->run)
            ck_assert_msg(ref_of(defs[d]->key) != NULL, "%s has no reference in tests/test_kernel_sweep.c",
                          defs[d]->key);
}
END_TEST

static bool declares_define(const char *file, const char *name)
{
    int nd = 0;
    const clsynth_kdef *const *defs = clsynth_kdefs(&nd);
    for (int d = 0; d < nd; d++)
        if (defs[d]->file && strcmp(defs[d]->file, file) == 0)
            for (int i = 0; i < defs[d]->n_params; i++)
                if (defs[d]->params[i].kind == CLSYNTH_K_DEFINE && strcmp(defs[d]->params[i].name, name) == 0)
                    return true;
    return false;
}

/* The names a kernel file requires: "#ifndef X" or "#if !defined(X) ..."
 * followed by an #error line. */
static void check_required(const char *file, const char *src)
{
    const char *line = src;
    while (line && *line) {
        const char *next = strchr(line, '\n');
        const char *after = next ? next + 1 : NULL;
        bool err = after && strncmp(after, "#error", 6) == 0;
        char name[64];
        if (err && sscanf(line, "#ifndef %63[A-Za-z0-9_]", name) == 1) {
            ck_assert_msg(declares_define(file, name), "kernels/%s requires -D%s, which no descriptor declares", file,
                          name);
        } else if (err && strncmp(line, "#if", 3) == 0) {
            for (const char *p = strstr(line, "defined("); p && p < (next ? next : line + strlen(line));
                 p = strstr(p + 8, "defined(")) {
                if (sscanf(p, "defined(%63[A-Za-z0-9_])", name) == 1)
                    ck_assert_msg(declares_define(file, name), "kernels/%s requires -D%s, which no descriptor declares",
                                  file, name);
            }
        }
        line = after;
    }
}

START_TEST(every_required_define_and_named_kernel_belongs_to_a_descriptor)
{
    for (const clsynth_embedded_kernel *e = clsynth_embedded_kernels; e->name; e++)
        check_required(e->name, e->source);
    int nd = 0;
    const clsynth_kdef *const *defs = clsynth_kdefs(&nd);
    for (int d = 0; d < nd; d++) {
        const clsynth_kdef *def = defs[d];
        if (!def->file)
            continue;
        const char *src = clsynth_kernel_source(def->file);
        ck_assert_msg(src != NULL, "%s: no kernels/%s", def->key, def->file);
        for (int k = 0; k < CLSYNTH_K_MAX_KERNELS && def->kernels[k]; k++) {
            char pat[96];
            snprintf(pat, sizeof pat, "void %s(", def->kernels[k]);
            ck_assert_msg(strstr(src, pat) != NULL, "%s: kernel %s is not in kernels/%s", def->key, def->kernels[k],
                          def->file);
        }
        for (int i = 0; i < def->n_params; i++)
            if (def->params[i].kind == CLSYNTH_K_DEFINE)
                ck_assert_msg(strstr(src, def->params[i].name) != NULL, "%s: -D%s is not used in kernels/%s",
                              def->key, def->params[i].name, def->file);
    }
}
END_TEST

int main(void)
{
    return clsynth_test_main("kernel_sweep", NULL, 1200,
                             CLSYNTH_TEST_LIST(every_registry_slot_holds_a_distinct_descriptor,
                                               every_descriptor_with_a_harness_has_a_reference,
                                               every_required_define_and_named_kernel_belongs_to_a_descriptor,
                                               every_kernel_matches_its_reference_under_the_device_limits,
                                               every_kernel_matches_its_reference_on_a_small_device,
                                               sync_batch_norm_matches_its_reference_under_the_norm_configurations,
                                               sync_batch_norm_matches_its_reference_on_a_small_device));
}
