/* Spectral norm of a set of weights (clsynth_spectral_norm_set,
 * clcore/ops_spectral_set.c): every member's output, u and v against the
 * plain-C reference (ref_spectral_norm, double), through power iterations and
 * eval forwards; the same as clsynth_spectral_norm weight by weight, forward
 * and gradients, bit for bit (the same sums in the same order: the model's
 * results do not move, tests/test_reference_ccfpse.c included); gradients
 * against central finite differences, also within a small device's limits;
 * a constant number of launches whatever the number of members; refusals
 * that name what is wrong.
 *
 * Members have awkward shapes: Cout 1, 3, 7, 64 and K 1, 9, 27, 300, 4608
 * (one column, one row, K above the work-group size, rows of one value), with
 * other parameters and buffers declared between them so that every offset is
 * odd.
 *
 * Tolerances (|device - reference| <= atol + rtol * |reference|): outputs
 * atol 1e-6, rtol 1e-4, u and v 1e-5 / 1e-4 (float sums against double, as
 * test_norm's); gradchecks eps 1e-2, atol 2e-3, rtol 2e-2.
 *
 * CLSYNTH_OCLGRIND_OK: under Oclgrind only small members (K <= 300, Cout <= 7). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/ops.h"
#include "ref_norm.h"
#include "testutil.h"

static clsynth_ctx *ctx;

static int tiny(void) { return clsynth_test_under_oclgrind(); }

typedef struct member_shape {
    int cout, cin, kh, kw;
} member_shape;

/* K = cin kh kw: 1, 9, 27, 300, 4608 */
static const member_shape FULL[] = { { 1, 1, 1, 1 },  { 3, 1, 3, 3 },  { 7, 3, 3, 3 },   { 64, 300, 1, 1 },
                                     { 1, 512, 3, 3 }, { 64, 1, 3, 3 }, { 3, 300, 1, 1 }, { 7, 512, 3, 3 } };
static const member_shape SMALL[] = { { 1, 1, 1, 1 }, { 3, 1, 3, 3 }, { 7, 3, 3, 3 }, { 3, 300, 1, 1 } };
#define MAX_MEMBERS 8

/* A finalized group with n spectral-normalized weights (w random, u random,
 * v = normalize(W^T u)) and their set. */
typedef struct fixture {
    clsynth_param_group *g;
    clsynth_sn_set *set;
    int n;
    member_shape shape[MAX_MEMBERS];
    clsynth_tensor *w[MAX_MEMBERS], *u[MAX_MEMBERS], *v[MAX_MEMBERS];
} fixture;

static int K_of(const member_shape *s) { return s->cin * s->kh * s->kw; }

static void fixture_make(fixture *f, const member_shape *shapes, int n, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    f->g = clsynth_group_new(ctx, "t");
    char name[32];
    for (int i = 0; i < n; i++) {
        const member_shape *s = &shapes[i];
        f->shape[i] = *s;
        snprintf(name, sizeof name, "pad%d.b", i); /* odd offsets in the flat data and the buffers */
        ck_assert_ptr_nonnull(clsynth_group_param(ctx, f->g, name, 1, 1, 1, 2 * i + 1));
        snprintf(name, sizeof name, "pad%d.running_mean", i);
        ck_assert_ptr_nonnull(clsynth_group_buffer(ctx, f->g, name, 1, 1, 1, i + 3));
        snprintf(name, sizeof name, "c%d.w", i);
        f->w[i] = clsynth_group_param(ctx, f->g, name, s->cout, s->cin, s->kh, s->kw);
        snprintf(name, sizeof name, "c%d.u", i);
        f->u[i] = clsynth_group_buffer(ctx, f->g, name, 1, s->cout, 1, 1);
        snprintf(name, sizeof name, "c%d.v", i);
        f->v[i] = clsynth_group_buffer(ctx, f->g, name, 1, K_of(s), 1, 1);
    }
    ck_assert_msg(clsynth_group_finalize(ctx, f->g) == 0, "%s", ctx->err.msg);
    f->set = clsynth_sn_set_new(ctx, "t");
    for (int i = 0; i < n; i++) {
        const member_shape *s = &shapes[i];
        size_t nw = (size_t)s->cout * K_of(s);
        float *w = malloc(nw * sizeof *w), *u = malloc((size_t)s->cout * sizeof *u);
        clsynth_test_fill_uniform(w, nw, -1.0f, 1.0f, seed + 2 * (uint64_t)i);
        clsynth_test_fill_uniform(u, (size_t)s->cout, -1.0f, 1.0f, seed + 2 * (uint64_t)i + 1);
        ck_assert_int_eq(clsynth_tensor_upload(ctx, f->w[i], w) | clsynth_tensor_upload(ctx, f->u[i], u), 0);
        ck_assert_msg(clsynth_spectral_norm_init_v(ctx, f->w[i], f->u[i], f->v[i]) == 0, "%s", ctx->err.msg);
        ck_assert_msg(clsynth_sn_set_add(ctx, f->set, f->w[i], f->u[i], f->v[i]) == 0, "%s", ctx->err.msg);
        free(w);
        free(u);
    }
    ck_assert_int_eq(clsynth_sn_set_size(f->set), n);
}

static void fixture_free(fixture *f)
{
    clsynth_release_activations(ctx);
    clsynth_sn_set_free(ctx, f->set);
    clsynth_group_free(ctx, f->g);
}

static const member_shape *members(int *n)
{
    *n = tiny() ? (int)(sizeof SMALL / sizeof SMALL[0]) : (int)(sizeof FULL / sizeof FULL[0]);
    return tiny() ? SMALL : FULL;
}

static void what_of(char *buf, size_t len, const char *what, const fixture *f, int i, int update)
{
    snprintf(buf, len, "%s of member %d (%d, %d) update %d", what, i, f->shape[i].cout, K_of(&f->shape[i]), update);
}

/* Stored vectors, one power iteration, stored vectors again, another
 * iteration: every member's output, u and v against the reference (no tape). */
static void check_against_reference(fixture *f_)
{
    fixture f = *f_;
    const int n = f.n;
    clsynth_no_grad_begin(ctx);
    const int updates[4] = { 0, 1, 0, 1 };
    char what[96];
    for (int step = 0; step < 4; step++) {
        const int update = updates[step];
        float *u0[MAX_MEMBERS], *v0[MAX_MEMBERS];
        for (int i = 0; i < n; i++) {
            u0[i] = clsynth_test_download(ctx, f.u[i]);
            v0[i] = clsynth_test_download(ctx, f.v[i]);
        }
        clsynth_tensor *flat = clsynth_spectral_norm_set(ctx, f.set, update);
        ck_assert_msg(flat != NULL, "%s", ctx->err.msg);
        size_t at = 0;
        float *all = clsynth_test_download(ctx, flat);
        for (int i = 0; i < n; i++) {
            const int Cout = f.shape[i].cout, K = K_of(&f.shape[i]);
            const size_t nw = (size_t)Cout * K;
            clsynth_tensor *o = clsynth_sn_set_output(f.set, f.w[i]);
            ck_assert_ptr_nonnull(o);
            ck_assert(clsynth_same_shape(o, f.w[i]));
            float *w = clsynth_test_download(ctx, f.w[i]), *d = clsynth_test_download(ctx, o);
            float *out = malloc(nw * sizeof *out);
            float *u = malloc((size_t)Cout * sizeof *u), *v = malloc((size_t)K * sizeof *v);
            memcpy(u, u0[i], (size_t)Cout * sizeof *u); /* the reference continues from the device's state */
            memcpy(v, v0[i], (size_t)K * sizeof *v);
            ref_spectral_norm(w, Cout, K, u, v, update, out, NULL);
            what_of(what, sizeof what, "output", &f, i, update);
            clsynth_test_assert_close(what, d, out, nw, 1e-6, 1e-4);
            ck_assert_msg(memcmp(all + at, d, nw * sizeof *d) == 0, "member %d is not at its place in the flat output",
                          i);
            at += nw;
            float *du = clsynth_test_download(ctx, f.u[i]), *dv = clsynth_test_download(ctx, f.v[i]);
            if (update) {
                what_of(what, sizeof what, "u after the power iteration", &f, i, update);
                clsynth_test_assert_close(what, du, u, (size_t)Cout, 1e-5, 1e-4);
                what_of(what, sizeof what, "v after the power iteration", &f, i, update);
                clsynth_test_assert_close(what, dv, v, (size_t)K, 1e-5, 1e-4);
            } else {
                ck_assert_msg(memcmp(du, u0[i], (size_t)Cout * sizeof *du) == 0, "update 0 changed u of member %d", i);
                ck_assert_msg(memcmp(dv, v0[i], (size_t)K * sizeof *dv) == 0, "update 0 changed v of member %d", i);
            }
            free(w);
            free(d);
            free(out);
            free(u);
            free(v);
            free(du);
            free(dv);
            free(u0[i]);
            free(v0[i]);
        }
        ck_assert_uint_eq(at, flat->numel);
        free(all);
        clsynth_release_activations(ctx);
    }
    clsynth_no_grad_end(ctx);
}

START_TEST(set_forward_matches_reference_through_power_iterations)
{
    int n;
    const member_shape *shapes = members(&n);
    fixture f;
    fixture_make(&f, shapes, n, 11);
    check_against_reference(&f);
    fixture_free(&f);
}
END_TEST

/* Host copies of every member's u and v, to run two ops from the same state. */
typedef struct state_copy {
    float *u[MAX_MEMBERS], *v[MAX_MEMBERS];
} state_copy;

static void state_save(const fixture *f, state_copy *s)
{
    for (int i = 0; i < f->n; i++) {
        s->u[i] = clsynth_test_download(ctx, f->u[i]);
        s->v[i] = clsynth_test_download(ctx, f->v[i]);
    }
}

static void state_restore(const fixture *f, const state_copy *s)
{
    for (int i = 0; i < f->n; i++) {
        ck_assert_int_eq(clsynth_tensor_upload(ctx, f->u[i], s->u[i]), 0);
        ck_assert_int_eq(clsynth_tensor_upload(ctx, f->v[i], s->v[i]), 0);
    }
}

static void state_free(const fixture *f, state_copy *s)
{
    for (int i = 0; i < f->n; i++) {
        free(s->u[i]);
        free(s->v[i]);
    }
}

/* Outputs, u, v and the weights' gradients (seeded with R) of one op: the set
 * (one backward from its flat output) or each weight alone (a backward each). */
typedef struct op_result {
    float *out[MAX_MEMBERS], *u[MAX_MEMBERS], *v[MAX_MEMBERS], *grad[MAX_MEMBERS];
} op_result;

static void run_op(fixture *f, bool set, bool update, const float *r, op_result *res)
{
    ck_assert_int_eq(clsynth_group_zero_grad(ctx, f->g), 0);
    if (set) {
        clsynth_tensor *flat = clsynth_spectral_norm_set(ctx, f->set, update);
        ck_assert_msg(flat != NULL, "%s", ctx->err.msg);
        for (int i = 0; i < f->n; i++)
            res->out[i] = clsynth_test_download(ctx, clsynth_sn_set_output(f->set, f->w[i]));
        clsynth_tensor *rt = clsynth_tensor_from_host(ctx, "R", 1, 1, 1, (int)flat->numel, r);
        ck_assert_msg(clsynth_backward_with(ctx, flat, rt) == 0, "%s", ctx->err.msg);
    } else {
        size_t at = 0;
        for (int i = 0; i < f->n; i++) {
            clsynth_tensor *o = clsynth_spectral_norm(ctx, f->w[i], f->u[i], f->v[i], update);
            ck_assert_msg(o != NULL, "%s", ctx->err.msg);
            res->out[i] = clsynth_test_download(ctx, o);
            clsynth_tensor *rt = clsynth_tensor_from_host(ctx, "R", o->n, o->c, o->h, o->w, r + at);
            at += o->numel; /* o is released by the backward */
            ck_assert_msg(clsynth_backward_with(ctx, o, rt) == 0, "%s", ctx->err.msg);
        }
    }
    for (int i = 0; i < f->n; i++) {
        res->u[i] = clsynth_test_download(ctx, f->u[i]);
        res->v[i] = clsynth_test_download(ctx, f->v[i]);
        res->grad[i] = clsynth_test_download(ctx, f->w[i]->grad);
    }
    clsynth_release_activations(ctx);
}

static void result_free(const fixture *f, op_result *r)
{
    for (int i = 0; i < f->n; i++) {
        free(r->out[i]);
        free(r->u[i]);
        free(r->v[i]);
        free(r->grad[i]);
    }
}

/* a and b hold the same floats, naming the first that differs. */
static void assert_identical(const char *what, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(memcmp(&a[i], &b[i], sizeof a[i]) == 0, "%s: element %zu is %.9g, per-weight op %.9g", what, i,
                      a[i], b[i]);
}

START_TEST(set_matches_the_per_weight_op_bit_for_bit)
{
    int n;
    const member_shape *shapes = members(&n);
    fixture f;
    fixture_make(&f, shapes, n, 21);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += f.w[i]->numel;
    float *r = malloc(total * sizeof *r);
    clsynth_test_fill_uniform(r, total, -1.0f, 1.0f, 22);
    char what[96];
    for (int update = 1; update >= 0; update--) {
        state_copy st;
        state_save(&f, &st);
        op_result one, all;
        run_op(&f, false, update, r, &one);
        state_restore(&f, &st);
        run_op(&f, true, update, r, &all);
        for (int i = 0; i < n; i++) {
            const size_t nw = f.w[i]->numel, Cout = (size_t)f.shape[i].cout, K = (size_t)K_of(&f.shape[i]);
            what_of(what, sizeof what, "output", &f, i, update);
            assert_identical(what, all.out[i], one.out[i], nw);
            what_of(what, sizeof what, "u", &f, i, update);
            assert_identical(what, all.u[i], one.u[i], Cout);
            what_of(what, sizeof what, "v", &f, i, update);
            assert_identical(what, all.v[i], one.v[i], K);
            what_of(what, sizeof what, "dW", &f, i, update);
            assert_identical(what, all.grad[i], one.grad[i], nw);
        }
        result_free(&f, &one);
        result_free(&f, &all);
        state_free(&f, &st);
    }
    free(r);
    fixture_free(&f);
}
END_TEST

static clsynth_tensor *fwd_set(clsynth_ctx *c, clsynth_tensor **in, void *user)
{
    (void)in; /* the members' weights, which the set reads itself */
    return clsynth_spectral_norm_set(c, user, false);
}

START_TEST(set_gradients_match_finite_differences)
{
    int n;
    const member_shape *shapes = members(&n);
    fixture f;
    fixture_make(&f, shapes, n, 31);
    /* one power iteration first, so u and v are a realistic (unit) pair */
    clsynth_no_grad_begin(ctx);
    ck_assert_msg(clsynth_spectral_norm_set(ctx, f.set, true) != NULL, "%s", ctx->err.msg);
    clsynth_no_grad_end(ctx);
    clsynth_release_activations(ctx);
    const int samples = tiny() ? 3 : clsynth_test_quick() ? 4 : 12;
    clsynth_test_gradcheck(ctx, "spectral_norm_set", fwd_set, f.w, n, f.set, 1e-2f, 2e-3, 2e-2, samples);
    clsynth_test_check_accumulates(ctx, "spectral_norm_set", fwd_set, f.w, n, f.set);
    fixture_free(&f);
}
END_TEST

/* A device of 48 work-items and 8 KiB of local memory (the op sweep's small
 * device): the set's plan is rebuilt for its local size (32) after a
 * forward at the real limits, and still matches the reference and finite
 * differences. */
START_TEST(set_runs_within_small_device_limits)
{
    int n;
    const member_shape *shapes = members(&n);
    fixture f;
    fixture_make(&f, shapes, n, 61);
    clsynth_no_grad_begin(ctx);
    ck_assert_msg(clsynth_spectral_norm_set(ctx, f.set, true) != NULL, "%s", ctx->err.msg);
    clsynth_no_grad_end(ctx);
    clsynth_release_activations(ctx);
    clsynth_ctx_emulate_limits(ctx, 48, 8 * 1024);
    check_against_reference(&f);
    clsynth_test_gradcheck(ctx, "spectral_norm_set (48 items)", fwd_set, f.w, n, f.set, 1e-2f, 2e-3, 2e-2, 3);
    fixture_free(&f);
}
END_TEST

/* Launches of one forward (no tape) and of one backward for sets of 2 and 8 members. */
static void count_launches(int n, unsigned long *fwd_update, unsigned long *fwd_eval, unsigned long *bwd)
{
    fixture f;
    fixture_make(&f, FULL, n, 41);
    ck_assert_msg(clsynth_spectral_norm_set(ctx, f.set, true) != NULL, "%s", ctx->err.msg); /* builds the plan */
    clsynth_tape_clear(ctx);
    clsynth_release_activations(ctx);
    clsynth_no_grad_begin(ctx);
    unsigned long a = ctx->launches;
    ck_assert_ptr_nonnull(clsynth_spectral_norm_set(ctx, f.set, true));
    *fwd_update = ctx->launches - a;
    a = ctx->launches;
    ck_assert_ptr_nonnull(clsynth_spectral_norm_set(ctx, f.set, false));
    *fwd_eval = ctx->launches - a;
    clsynth_no_grad_end(ctx);
    clsynth_release_activations(ctx);
    clsynth_tensor *flat = clsynth_spectral_norm_set(ctx, f.set, false);
    ck_assert_ptr_nonnull(flat);
    clsynth_tensor *r = clsynth_tensor_zeros_like(ctx, "R", flat);
    a = ctx->launches;
    ck_assert_msg(clsynth_backward_with(ctx, flat, r) == 0, "%s", ctx->err.msg);
    *bwd = ctx->launches - a;
    fixture_free(&f);
}

START_TEST(set_launches_do_not_grow_with_its_members)
{
    unsigned long fu2, fe2, b2, fu8, fe8, b8;
    count_launches(2, &fu2, &fe2, &b2);
    count_launches(tiny() ? 4 : 8, &fu8, &fe8, &b8);
    ck_assert_msg(fu2 == 5 && fu8 == 5, "forward with update: %lu and %lu launches for 2 and 8 members, want 5", fu2,
                  fu8);
    ck_assert_msg(fe2 == 4 && fe8 == 4, "eval forward: %lu and %lu launches, want 4", fe2, fe8);
    ck_assert_msg(b2 == 3 && b8 == 3, "backward: %lu and %lu launches, want 3", b2, b8);
}
END_TEST

START_TEST(set_refuses_members_that_do_not_fit_naming_them)
{
    fixture f;
    fixture_make(&f, SMALL, 2, 51);
    /* a weight outside the group: not a view of the group's buffers */
    clsynth_tensor *lone = clsynth_test_input(ctx, "lone.w", 3, 1, 3, 3, (const float[27]){ 0 });
    clsynth_sn_set *s = clsynth_sn_set_new(ctx, "bad");
    ck_assert_int_eq(clsynth_sn_set_add(ctx, s, f.w[1], f.u[1], f.v[1]), 0);
    ck_assert_int_eq(clsynth_sn_set_add(ctx, s, lone, f.u[1], f.v[1]), 0);
    clsynth_tensor *g = clsynth_grad_of(ctx, lone);
    ck_assert_ptr_nonnull(g);
    ck_assert_ptr_null(clsynth_spectral_norm_set(ctx, s, true));
    ck_assert_msg(strstr(ctx->err.msg, "lone.w") && strstr(ctx->err.msg, "share"), "%s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    clsynth_sn_set_free(ctx, s);
    /* u of another member's size */
    s = clsynth_sn_set_new(ctx, "bad");
    ck_assert_int_eq(clsynth_sn_set_add(ctx, s, f.w[1], f.u[0], f.v[1]), 0);
    ck_assert_ptr_null(clsynth_spectral_norm_set(ctx, s, false));
    ck_assert_msg(strstr(ctx->err.msg, "t.c0.u") && strstr(ctx->err.msg, "Cout = 3"), "%s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    clsynth_sn_set_free(ctx, s);
    /* members that do not require grad together */
    f.w[0]->flags &= ~(unsigned)CLSYNTH_T_REQUIRES_GRAD;
    ck_assert_ptr_null(clsynth_spectral_norm_set(ctx, f.set, true));
    ck_assert_msg(strstr(ctx->err.msg, "t.c0.w") && strstr(ctx->err.msg, "together"), "%s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    /* none requiring grad: no tape node, no gradient */
    f.w[1]->flags &= ~(unsigned)CLSYNTH_T_REQUIRES_GRAD;
    int nodes = clsynth_tape_size(ctx);
    clsynth_tensor *flat = clsynth_spectral_norm_set(ctx, f.set, true);
    ck_assert_msg(flat != NULL, "%s", ctx->err.msg);
    ck_assert_int_eq(clsynth_tape_size(ctx), nodes);
    ck_assert(!(flat->flags & CLSYNTH_T_REQUIRES_GRAD) && flat->grad == NULL);
    clsynth_tensor_free(ctx, lone);
    fixture_free(&f);
}
END_TEST

int main(void)
{
    return clsynth_test_main("spectral_norm_batch", &ctx, 600,
                             CLSYNTH_TEST_LIST(set_forward_matches_reference_through_power_iterations,
                                               set_matches_the_per_weight_op_bit_for_bit,
                                               set_gradients_match_finite_differences,
                                               set_runs_within_small_device_limits,
                                               set_launches_do_not_grow_with_its_members,
                                               set_refuses_members_that_do_not_fit_naming_them));
}
