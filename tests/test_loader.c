/* Background batch loader (io/loader.c): determinism, epochs, sequential
 * mode, errors and shutdown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/loader.h"
#include "io/synth.h"
#include "test_io_fixtures.h"
#include "testutil.h"

enum { NS = 10, SZ = 32, CROP = 24 };

static clsynth_dataset *open_synth(int crop)
{
    static int written = 0;
    clsynth_err err;
    if (!written) {
        fx_rmtree("ld");
        ck_assert_msg(clsynth_synth_write("ld", NS, 3, SZ, SZ, 9, &err) == 0, "%s", err.msg);
        written = 1;
    }
    clsynth_data_opts o;
    clsynth_data_opts_init(&o);
    strcpy(o.dataroot, "ld");
    o.load_size = SZ;
    o.crop_size = crop;
    clsynth_dataset *ds = clsynth_dataset_open(&o, &err);
    ck_assert_msg(ds != NULL, "%s", err.msg);
    return ds;
}

/* Copies of `count` batches (images, labels, edges, indices) into one buffer. */
typedef struct run {
    float *img, *edge;
    int32_t *lab, *idx;
    int epochs[64];
} run;

/* rank/world: this loader's shard (world 1: the whole batch). */
static run take_shard(clsynth_dataset *ds, uint64_t seed, int bs, int count, int rank, int world)
{
    clsynth_loader_opts lo = {.batch_size = bs, .seed = seed, .shuffle = 1, .prefetch = 2, .rank = rank,
                              .world = world};
    clsynth_err err;
    clsynth_loader *l = clsynth_loader_create(ds, &lo, &err);
    ck_assert_msg(l != NULL, "%s", err.msg);
    size_t plane = (size_t)CROP * CROP, n = (size_t)bs * count;
    run r = {malloc(sizeof(float) * 3 * plane * n), malloc(sizeof(float) * plane * n),
             malloc(sizeof(int32_t) * plane * n), malloc(sizeof(int32_t) * n), {0}};
    for (int i = 0; i < count; i++) {
        const clsynth_batch *b;
        ck_assert_int_eq(clsynth_loader_next(l, &b, &err), 1);
        ck_assert_int_eq(b->n, bs);
        ck_assert_int_eq(b->h, CROP);
        ck_assert_int_eq(b->w, CROP);
        ck_assert_int_eq(b->step, i);
        r.epochs[i] = b->epoch;
        memcpy(r.img + 3 * plane * bs * i, b->image, sizeof(float) * 3 * plane * bs);
        memcpy(r.edge + plane * bs * i, b->edge, sizeof(float) * plane * bs);
        memcpy(r.lab + plane * bs * i, b->label, sizeof(int32_t) * plane * bs);
        memcpy(r.idx + bs * i, b->index, sizeof(int32_t) * bs);
    }
    clsynth_loader_free(l);
    return r;
}

static run take(clsynth_dataset *ds, uint64_t seed, int bs, int count)
{
    return take_shard(ds, seed, bs, count, 0, 1);
}

static void run_free(run *r)
{
    free(r->img);
    free(r->edge);
    free(r->lab);
    free(r->idx);
}

START_TEST(test_same_seed_same_batches)
{
    clsynth_dataset *ds = open_synth(CROP);
    const int bs = 3, count = 7; /* 3 batches per epoch: crosses two epoch boundaries */
    run a = take(ds, 5, bs, count), b = take(ds, 5, bs, count), c = take(ds, 6, bs, count);
    size_t plane = (size_t)CROP * CROP, n = (size_t)bs * count;
    ck_assert_mem_eq(a.idx, b.idx, sizeof(int32_t) * n);
    ck_assert(memcmp(a.img, b.img, sizeof(float) * 3 * plane * n) == 0);
    ck_assert(memcmp(a.lab, b.lab, sizeof(int32_t) * plane * n) == 0);
    ck_assert(memcmp(a.edge, b.edge, sizeof(float) * plane * n) == 0);
    ck_assert(memcmp(a.idx, c.idx, sizeof(int32_t) * n) != 0);
    ck_assert_int_eq(a.epochs[0], 0);
    ck_assert_int_eq(a.epochs[3], 1);
    ck_assert_int_eq(a.epochs[6], 2);
    /* values are in range */
    int bad = 0, edges = 0;
    for (size_t i = 0; i < 3 * plane * n; i++)
        bad += !(a.img[i] >= -1.0f && a.img[i] <= 1.0f);
    for (size_t i = 0; i < plane * n; i++) {
        bad += a.lab[i] < 0 || a.lab[i] >= CLSYNTH_SYN_NUM_CLASSES;
        edges += a.edge[i] == 1.0f;
    }
    ck_assert_int_eq(bad, 0);
    ck_assert_int_gt(edges, 0);
    run_free(&a);
    run_free(&b);
    run_free(&c);
    clsynth_dataset_free(ds);
}
END_TEST

START_TEST(test_each_epoch_is_a_new_permutation)
{
    clsynth_dataset *ds = open_synth(CROP);
    const int bs = 2, per_epoch = NS / bs, epochs = 3;
    run a = take(ds, 77, bs, per_epoch * epochs);
    for (int e = 0; e < epochs; e++) { /* every sample exactly once per epoch */
        int seen[NS] = {0};
        for (int k = 0; k < NS; k++)
            seen[a.idx[e * NS + k]]++;
        for (int k = 0; k < NS; k++)
            ck_assert_int_eq(seen[k], 1);
    }
    ck_assert(memcmp(a.idx, a.idx + NS, sizeof(int32_t) * NS) != 0);
    ck_assert(memcmp(a.idx + NS, a.idx + 2 * NS, sizeof(int32_t) * NS) != 0);
    run_free(&a);
    clsynth_dataset_free(ds);
}
END_TEST

START_TEST(test_rank_shards_make_up_the_global_batch)
{
    /* DistributedSampler contract: 3 ranks of batch 1 see, batch by batch, the
     * samples one loader of batch 3 sees, in rank order, with the same crops and
     * flips, across an epoch boundary (10 samples: 3 global batches per epoch) */
    clsynth_dataset *ds = open_synth(CROP);
    const int world = 3, bs = 1, count = 5;
    run whole = take(ds, 8, bs * world, count);
    size_t plane = (size_t)CROP * CROP;
    for (int r = 0; r < world; r++) {
        run part = take_shard(ds, 8, bs, count, r, world);
        for (int i = 0; i < count; i++) {
            size_t at = (size_t)i * world + (size_t)r; /* this rank's sample in the whole batch */
            ck_assert_msg(part.idx[i] == whole.idx[at], "rank %d batch %d: sample %d, the whole batch has %d", r, i,
                          part.idx[i], whole.idx[at]);
            ck_assert_int_eq(part.epochs[i], whole.epochs[i]);
            ck_assert_mem_eq(part.img + 3 * plane * i, whole.img + 3 * plane * at, sizeof(float) * 3 * plane);
            ck_assert_mem_eq(part.lab + plane * i, whole.lab + plane * at, sizeof(int32_t) * plane);
            ck_assert_mem_eq(part.edge + plane * i, whole.edge + plane * at, sizeof(float) * plane);
        }
        run_free(&part);
    }
    run_free(&whole);
    clsynth_dataset_free(ds);
}
END_TEST

START_TEST(test_shard_errors_name_the_problem)
{
    clsynth_dataset *ds = open_synth(CROP);
    clsynth_err err;
    clsynth_loader_opts lo = {.batch_size = 4, .seed = 1, .shuffle = 1, .rank = 0, .world = 3};
    ck_assert_ptr_null(clsynth_loader_create(ds, &lo, &err)); /* 12 > 10 samples */
    ck_assert_msg(strstr(err.msg, "fewer than the global batch 12 (batch size 4 x 3 ranks)"), "%s", err.msg);
    lo.batch_size = 1;
    lo.rank = 3;
    ck_assert_ptr_null(clsynth_loader_create(ds, &lo, &err));
    ck_assert_msg(strstr(err.msg, "rank 3 outside 0..2"), "%s", err.msg);
    lo.rank = 1;
    lo.shuffle = 0;
    ck_assert_ptr_null(clsynth_loader_create(ds, &lo, &err));
    ck_assert_msg(strstr(err.msg, "not sharded"), "%s", err.msg);
    lo.shuffle = 1;
    clsynth_loader *l = clsynth_loader_create(ds, &lo, &err);
    ck_assert_msg(l != NULL, "%s", err.msg);
    ck_assert_int_eq(clsynth_loader_batches_per_epoch(l), 3); /* 10 / (1 x 3) */
    clsynth_loader_free(l);
    clsynth_dataset_free(ds);
}
END_TEST

START_TEST(test_sequential_pass_then_end)
{
    clsynth_dataset *ds = open_synth(CROP);
    ds->opts.is_train = 0; /* centred crop, no flip */
    clsynth_loader_opts lo = {.batch_size = 4, .seed = 1, .shuffle = 0};
    clsynth_err err;
    clsynth_loader *l = clsynth_loader_create(ds, &lo, &err);
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(clsynth_loader_batches_per_epoch(l), 3);
    const clsynth_batch *b;
    int next = 0, sizes[3] = {4, 4, 2};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(clsynth_loader_next(l, &b, &err), 1);
        ck_assert_int_eq(b->n, sizes[i]);
        for (int k = 0; k < b->n; k++)
            ck_assert_int_eq(b->index[k], next++);
    }
    ck_assert_int_eq(clsynth_loader_next(l, &b, &err), 0);
    ck_assert_int_eq(clsynth_loader_next(l, &b, &err), 0);
    clsynth_loader_free(l);
    clsynth_dataset_free(ds);
}
END_TEST

START_TEST(test_shutdown_while_producing)
{
    clsynth_dataset *ds = open_synth(CROP);
    for (int k = 0; k < 20; k++) {
        clsynth_loader_opts lo = {.batch_size = 1 + k % 3, .seed = (uint64_t)k, .shuffle = 1};
        clsynth_err err;
        clsynth_loader *l = clsynth_loader_create(ds, &lo, &err);
        ck_assert_ptr_nonnull(l);
        const clsynth_batch *b;
        if (k % 2)
            ck_assert_int_eq(clsynth_loader_next(l, &b, &err), 1);
        clsynth_loader_free(l); /* producer may be mid-batch or waiting */
    }
    clsynth_loader_free(NULL);
    clsynth_dataset_free(ds);
}
END_TEST

START_TEST(test_producer_error_reaches_the_caller)
{
    clsynth_dataset *ds = open_synth(CROP);
    uint8_t v[SZ * SZ];
    memset(v, 0, sizeof v);
    v[3 * SZ + 4] = 200;
    fx_mkdir("bad");
    fx_gray8("bad/label.png", SZ, SZ, v);
    char *saved = ds->files[5].label;
    ds->files[5].label = "bad/label.png";
    clsynth_loader_opts lo = {.batch_size = 2, .seed = 1, .shuffle = 0};
    clsynth_err err;
    clsynth_loader *l = clsynth_loader_create(ds, &lo, &err);
    ck_assert_ptr_nonnull(l);
    const clsynth_batch *b;
    ck_assert_int_eq(clsynth_loader_next(l, &b, &err), 1); /* samples 0, 1 */
    ck_assert_int_eq(clsynth_loader_next(l, &b, &err), 1); /* samples 2, 3 */
    ck_assert_int_eq(clsynth_loader_next(l, &b, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "bad/label.png"));
    ck_assert_ptr_nonnull(strstr(err.msg, "value 200 at pixel x=4 y=3"));
    clsynth_loader_free(l);
    ds->files[5].label = saved;
    /* bad options */
    clsynth_loader_opts big = {.batch_size = NS + 1, .shuffle = 1};
    ck_assert_ptr_null(clsynth_loader_create(ds, &big, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "batch size"));
    clsynth_dataset_free(ds);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("loader");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_same_seed_same_batches);
    tcase_add_test(tc, test_each_epoch_is_a_new_permutation);
    tcase_add_test(tc, test_rank_shards_make_up_the_global_batch);
    tcase_add_test(tc, test_shard_errors_name_the_problem);
    tcase_add_test(tc, test_sequential_pass_then_end);
    tcase_add_test(tc, test_shutdown_while_producing);
    tcase_add_test(tc, test_producer_error_reaches_the_caller);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
