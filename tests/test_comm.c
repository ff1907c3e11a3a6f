/* Collectives of clcore/comm.h on device tensors and parameter groups, over
 * ranks run as threads (tests/comm_threads.c), each with its own context:
 *   - averaging a tensor staged in many small buckets (odd sizes, a view at an
 *     offset) gives every rank the mean and leaves the rest of the buffer alone;
 *   - broadcasts copy root's tensor, buffers and whole group state;
 *   - the group-state hash check names the rank that differs;
 *   - statistics count the calls and the bytes;
 *   - a transport failure is an error naming the operation and the rank;
 *   - without a communicator every collective leaves the data as it is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/comm.h"
#include "clcore/params.h"
#include "comm_threads.h"
#include "testutil.h"

#define K 3
#define N_ELEMS 10007 /* 11 buckets of 1000, the last one short */
#define VIEW_OFF 13

typedef struct avg_case {
    float out[K][N_ELEMS + 2 * VIEW_OFF];
    uint64_t bytes[K];
    unsigned long calls[K];
    char err[K][600];
} avg_case;

static float value_of(int rank, size_t i) { return (float)((rank + 1) * 0.25 + (double)(i % 97) * 0.125); }

static int avg_rank(int r, clsynth_comm *comm, void *user)
{
    avg_case *a = user;
    clsynth_err e;
    clsynth_ctx *ctx = clsynth_ctx_create(NULL, &e);
    if (!ctx) {
        snprintf(a->err[r], sizeof a->err[r], "no context: %s", e.msg);
        return -1;
    }
    ctx->quiet = true;
    ctx->comm = comm;
    const size_t total = N_ELEMS + 2 * VIEW_OFF;
    float *h = malloc(total * sizeof *h);
    for (size_t i = 0; i < total; i++)
        h[i] = i < VIEW_OFF || i >= VIEW_OFF + N_ELEMS ? -7.0f : value_of(r, i - VIEW_OFF);
    int rc = -1;
    clsynth_tensor *t = clsynth_tensor_new_persistent(ctx, "buf", 1, 1, 1, (int)total);
    if (t && clsynth_tensor_upload(ctx, t, h) == 0) {
        clsynth_tensor *v = clsynth_tensor_view(ctx, t, "view", VIEW_OFF, 1, 1, 1, N_ELEMS);
        if (v && clsynth_comm_average_tensor(ctx, v, CLSYNTH_COMM_GRADS) == 0 &&
            clsynth_tensor_download(ctx, t, a->out[r]) == 0)
            rc = 0;
    }
    a->bytes[r] = comm->stats.bytes[CLSYNTH_COMM_GRADS];
    a->calls[r] = comm->stats.calls[CLSYNTH_COMM_GRADS];
    if (rc)
        snprintf(a->err[r], sizeof a->err[r], "%s", ctx->err.msg);
    clsynth_release_activations(ctx);
    clsynth_tensor_free(ctx, t);
    free(h);
    ctx->comm = NULL;
    clsynth_ctx_free(ctx);
    return rc;
}

START_TEST(average_in_small_buckets_gives_every_rank_the_mean)
{
    static avg_case a;
    memset(&a, 0, sizeof a);
    clsynth_test_world *w = clsynth_test_world_new(K);
    int failed = clsynth_test_world_run(w, 1000, avg_rank, &a);
    clsynth_test_world_free(w);
    for (int r = 0; r < K; r++)
        ck_assert_msg(a.err[r][0] == 0, "rank %d: %s", r, a.err[r]);
    ck_assert_int_eq(failed, 0);
    for (int r = 0; r < K; r++) {
        for (size_t i = 0; i < N_ELEMS + 2 * VIEW_OFF; i++) {
            float want = -7.0f;
            if (i >= VIEW_OFF && i < VIEW_OFF + N_ELEMS) {
                float s = 0;
                for (int q = 0; q < K; q++)
                    s += value_of(q, i - VIEW_OFF);
                want = s * (1.0f / K);
            }
            ck_assert_msg(a.out[r][i] == want, "rank %d element %zu: %g, want %g", r, i, a.out[r][i], want);
        }
        ck_assert_msg(a.calls[r] == 11, "rank %d: %lu all-reduce calls for 11 buckets", r, a.calls[r]);
        ck_assert_msg(a.bytes[r] == N_ELEMS * sizeof(float), "rank %d: %llu bytes counted, want %zu", r,
                      (unsigned long long)a.bytes[r], N_ELEMS * sizeof(float));
    }
}
END_TEST

/* A group with two parameters and two buffers, filled with rank-specific values. */
typedef struct group_case {
    int differ_rank; /* -1: broadcast, then compare; else only this rank changes one value */
    uint64_t hash[K];
    float params[K][12], adam_m[K][12], buffers[K][5];
    long step[K];
    int check_rc[K];
    char err[K][600];
} group_case;

static int group_rank(int r, clsynth_comm *comm, void *user)
{
    group_case *gc = user;
    clsynth_err e;
    clsynth_ctx *ctx = clsynth_ctx_create(NULL, &e);
    if (!ctx) {
        snprintf(gc->err[r], sizeof gc->err[r], "no context: %s", e.msg);
        return -1;
    }
    ctx->quiet = true;
    ctx->comm = comm;
    int rc = -1;
    clsynth_param_group *g = clsynth_group_new(ctx, "T");
    clsynth_tensor *p1 = clsynth_group_param(ctx, g, "a", 1, 3, 1, 3);
    clsynth_tensor *p2 = clsynth_group_param(ctx, g, "b", 1, 1, 1, 3);
    clsynth_tensor *b1 = clsynth_group_buffer(ctx, g, "u", 1, 2, 1, 1);
    clsynth_tensor *b2 = clsynth_group_buffer(ctx, g, "running_var", 1, 3, 1, 1);
    if (!p1 || !p2 || !b1 || !b2 || clsynth_group_finalize(ctx, g))
        goto out;
    float v[12];
    for (int i = 0; i < 12; i++)
        v[i] = (float)(r * 100 + i);
    bool mine = gc->differ_rank < 0 || gc->differ_rank == r;
    if (gc->differ_rank >= 0) /* the same state everywhere, except one value on one rank */
        for (int i = 0; i < 12; i++)
            v[i] = (float)i + (mine && i == 5 ? 0.5f : 0.0f);
    g->step = gc->differ_rank < 0 ? 10 + r : 4;
    if (clsynth_tensor_upload(ctx, g->flat_data, v) || clsynth_tensor_upload(ctx, g->adam_m, v) ||
        clsynth_tensor_upload(ctx, b1, v + 7) || clsynth_tensor_upload(ctx, b2, v + 2))
        goto out;
    if (gc->differ_rank < 0 && clsynth_comm_broadcast_group(ctx, g, 1))
        goto out;
    if (clsynth_group_hash(ctx, g, &gc->hash[r]))
        goto out;
    gc->check_rc[r] = clsynth_comm_check_same(ctx, gc->hash[r], "the state of group T");
    if (gc->check_rc[r])
        snprintf(gc->err[r], sizeof gc->err[r], "%s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    if (clsynth_tensor_download(ctx, g->flat_data, gc->params[r]) ||
        clsynth_tensor_download(ctx, g->adam_m, gc->adam_m[r]) || clsynth_tensor_download(ctx, b1, gc->buffers[r]) ||
        clsynth_tensor_download(ctx, b2, gc->buffers[r] + 2))
        goto out;
    gc->step[r] = g->step;
    rc = 0;
out:
    if (rc)
        snprintf(gc->err[r], sizeof gc->err[r], "%s", ctx->err.msg);
    clsynth_group_free(ctx, g);
    ctx->comm = NULL;
    clsynth_ctx_free(ctx);
    return rc;
}

START_TEST(broadcast_group_copies_root_state_to_every_rank)
{
    static group_case gc;
    memset(&gc, 0, sizeof gc);
    gc.differ_rank = -1;
    clsynth_test_world *w = clsynth_test_world_new(K);
    int failed = clsynth_test_world_run(w, 5, group_rank, &gc); /* buckets of 5 floats */
    clsynth_test_world_free(w);
    ck_assert_msg(failed == 0, "%s | %s | %s", gc.err[0], gc.err[1], gc.err[2]);
    for (int r = 0; r < K; r++) {
        ck_assert_msg(gc.check_rc[r] == 0, "rank %d: %s", r, gc.err[r]);
        ck_assert_int_eq(gc.step[r], 11);
        for (int i = 0; i < 12; i++) {
            ck_assert_msg(gc.params[r][i] == (float)(100 + i), "rank %d param %d: %g", r, i, gc.params[r][i]);
            ck_assert_msg(gc.adam_m[r][i] == (float)(100 + i), "rank %d adam_m %d: %g", r, i, gc.adam_m[r][i]);
        }
        const float want_buf[5] = { 107, 108, 102, 103, 104 };
        for (int i = 0; i < 5; i++)
            ck_assert_msg(gc.buffers[r][i] == want_buf[i], "rank %d buffer value %d: %g", r, i, gc.buffers[r][i]);
        ck_assert(gc.hash[r] == gc.hash[0]);
    }
}
END_TEST

START_TEST(state_check_names_the_rank_that_differs)
{
    static group_case gc;
    memset(&gc, 0, sizeof gc);
    gc.differ_rank = 2;
    clsynth_test_world *w = clsynth_test_world_new(K);
    int failed = clsynth_test_world_run(w, 0, group_rank, &gc);
    clsynth_test_world_free(w);
    ck_assert_int_eq(failed, 0);
    ck_assert(gc.hash[0] == gc.hash[1] && gc.hash[2] != gc.hash[0]);
    for (int r = 0; r < K; r++) {
        ck_assert_msg(gc.check_rc[r] != 0, "rank %d did not notice", r);
        ck_assert_msg(strstr(gc.err[r], "rank 2 has") && strstr(gc.err[r], "the state of group T"), "rank %d: %s", r,
                      gc.err[r]);
    }
}
END_TEST

/* A transport whose every call fails. */
static int fail_allreduce(clsynth_comm *c, void *b, size_t n, clsynth_comm_type t)
{
    snprintf(c->err, sizeof c->err, "peer went away");
    return -1;
}
static int fail_allgather(clsynth_comm *c, const void *s, void *r, size_t n)
{
    snprintf(c->err, sizeof c->err, "peer went away");
    return -1;
}
static int fail_broadcast(clsynth_comm *c, void *b, size_t n, int root)
{
    snprintf(c->err, sizeof c->err, "peer went away");
    return -1;
}

START_TEST(transport_failure_names_the_operation_and_the_rank)
{
    static const clsynth_comm_ops ops = { fail_allreduce, fail_allgather, fail_broadcast };
    clsynth_comm comm;
    memset(&comm, 0, sizeof comm);
    comm.rank = 1;
    comm.size = 2;
    comm.ops = &ops;
    clsynth_ctx *ctx = clsynth_test_ctx();
    ctx->comm = &comm;
    float h[40] = { 0 };
    clsynth_tensor *t = clsynth_tensor_from_host(ctx, "g", 1, 1, 1, 40, h);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_ne(clsynth_comm_average_tensor(ctx, t, CLSYNTH_COMM_GRADS), 0);
    ck_assert_msg(strstr(ctx->err.msg, "all-reduce of 160 bytes (gradients) failed on rank 1 of 2: peer went away"),
                  "%s", ctx->err.msg);
    clsynth_ctx_clear_error(ctx);
    ck_assert_int_ne(clsynth_comm_broadcast(ctx, h, 8, 0, CLSYNTH_COMM_STATE), 0);
    ck_assert_msg(strstr(ctx->err.msg, "broadcast of 8 bytes (model state) failed on rank 1 of 2"), "%s", ctx->err.msg);
    ctx->comm = NULL;
    clsynth_comm_release(&comm);
    clsynth_release_activations(ctx);
    clsynth_ctx_free(ctx);
}
END_TEST

START_TEST(one_process_collectives_leave_data_as_it_is)
{
    clsynth_ctx *ctx = clsynth_test_ctx();
    float h[7] = { 1, 2, 3, 4, 5, 6, 7 }, back[7];
    clsynth_tensor *t = clsynth_tensor_from_host(ctx, "g", 1, 1, 1, 7, h);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(clsynth_comm_average_tensor(ctx, t, CLSYNTH_COMM_GRADS), 0);
    ck_assert_int_eq(clsynth_comm_broadcast_tensor(ctx, t, 0, CLSYNTH_COMM_STATE), 0);
    double d[2] = { 1.5, 2.5 };
    ck_assert_int_eq(clsynth_comm_allreduce_sum(ctx, d, 2, CLSYNTH_COMM_F64, CLSYNTH_COMM_NORM), 0);
    ck_assert_int_eq(clsynth_comm_check_same(ctx, 42, "anything"), 0);
    ck_assert_int_eq(clsynth_tensor_download(ctx, t, back), 0);
    ck_assert(memcmp(h, back, sizeof h) == 0 && d[0] == 1.5 && d[1] == 2.5);
    ck_assert_int_eq(clsynth_comm_rank(ctx), 0);
    ck_assert_int_eq(clsynth_comm_size(ctx), 1);
    clsynth_release_activations(ctx);
    clsynth_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("comm");
    TCase *tc = tcase_create("comm");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, average_in_small_buckets_gives_every_rank_the_mean);
    tcase_add_test(tc, broadcast_group_copies_root_state_to_every_rank);
    tcase_add_test(tc, state_check_names_the_rank_that_differs);
    tcase_add_test(tc, transport_failure_names_the_operation_and_the_rank);
    tcase_add_test(tc, one_process_collectives_leave_data_as_it_is);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
