#include "io/loader.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "io/preprocess.h"
#include "io/rng.h"

/* Domain tags mixed into RNG keys so the streams never coincide. */
#define TAG_PERM 0x5045524Dull   /* "PERM" */
#define TAG_SAMPLE 0x53414D50ull /* "SAMP" */

struct clsynth_loader {
    const clsynth_dataset *ds;
    clsynth_loader_opts o;
    int h, w;               /* sample size every batch has */
    int world;              /* ranks sharing each global batch (1: none) */
    int batches_per_epoch;
    int nslots;
    clsynth_batch *slots;   /* ring: batch k lives in slots[k % nslots] */
    int *perm;              /* (n) order of the current epoch */

    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* any change of the counters or flags below */
    int64_t produced;       /* batches filled by the producer */
    int64_t consumed;       /* batches handed to the caller */
    int64_t released;       /* batches the caller gave back */
    int stop, done, failed;
    clsynth_err perr;       /* producer's error */
};

int clsynth_loader_batches_per_epoch(const clsynth_loader *l)
{
    return l->batches_per_epoch;
}

static void make_perm(const clsynth_loader *l, int epoch, int *perm)
{
    int n = l->ds->n;
    for (int i = 0; i < n; i++)
        perm[i] = i;
    if (!l->o.shuffle)
        return;
    clsynth_rng r;
    uint64_t key[3] = {l->o.seed, (uint64_t)epoch, TAG_PERM};
    clsynth_rng_seed(&r, key, 3);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)clsynth_rng_below(&r, (uint64_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* Reads and preprocesses dataset sample `index`, visited at position pos of
 * epoch, into slot b's k-th sample. */
static int load_one(clsynth_loader *l, clsynth_batch *b, int k, int epoch, int64_t pos,
                    int index, clsynth_err *err)
{
    const clsynth_dataset *ds = l->ds;
    clsynth_raw_sample s;
    if (clsynth_dataset_read(ds, index, &s, err))
        return -1;
    clsynth_rng r;
    uint64_t key[4] = {l->o.seed, (uint64_t)epoch, (uint64_t)pos, TAG_SAMPLE};
    clsynth_rng_seed(&r, key, 4);
    clsynth_prep_params p;
    clsynth_preprocess_params(&ds->opts, s.image.w, s.image.h, ds->opts.is_train ? &r : NULL,
                              &p);
    int rc;
    if (p.out_w != l->w || p.out_h != l->h) {
        rc = clsynth_fail(err, "%s: preprocesses to %dx%d but the batch is %dx%d (use a "
                               "cropping --preprocess_mode)", ds->files[index].image, p.out_w,
                          p.out_h, l->w, l->h);
    } else {
        size_t plane = (size_t)l->w * l->h;
        rc = clsynth_preprocess_apply(&ds->opts, &p, &s, b->image + 3 * plane * k,
                                      b->label + plane * k, b->edge + plane * k, err);
        b->index[k] = index;
    }
    clsynth_raw_sample_free(&s);
    return rc;
}

static int should_stop(clsynth_loader *l)
{
    pthread_mutex_lock(&l->mu);
    int s = l->stop;
    pthread_mutex_unlock(&l->mu);
    return s;
}

static void *producer(void *arg)
{
    clsynth_loader *l = arg;
    const int n = l->ds->n, bs = l->o.batch_size;
    const int64_t global = (int64_t)bs * l->world, first = (int64_t)l->o.rank * bs; /* this rank's shard */
    int64_t step = 0;
    for (int epoch = l->o.start_epoch;; epoch++) {
        make_perm(l, epoch, l->perm);
        for (int bi = 0; bi < l->batches_per_epoch; bi++, step++) {
            pthread_mutex_lock(&l->mu);
            while (!l->stop && l->produced - l->released >= l->nslots)
                pthread_cond_wait(&l->cv, &l->mu);
            int stop = l->stop;
            pthread_mutex_unlock(&l->mu);
            if (stop)
                return NULL;
            clsynth_batch *b = &l->slots[step % l->nslots];
            int count = n - bi * bs < bs ? n - bi * bs : bs;
            b->n = count;
            b->epoch = epoch;
            b->step = step;
            clsynth_err err;
            for (int k = 0; k < count; k++) {
                int64_t pos = (int64_t)bi * global + first + k;
                if (should_stop(l))
                    return NULL;
                if (load_one(l, b, k, epoch, pos, l->perm[pos], &err)) {
                    pthread_mutex_lock(&l->mu);
                    l->perr = err;
                    l->failed = 1;
                    pthread_cond_broadcast(&l->cv);
                    pthread_mutex_unlock(&l->mu);
                    return NULL;
                }
            }
            pthread_mutex_lock(&l->mu);
            l->produced++;
            pthread_cond_broadcast(&l->cv);
            pthread_mutex_unlock(&l->mu);
        }
        if (!l->o.shuffle) {
            pthread_mutex_lock(&l->mu);
            l->done = 1;
            pthread_cond_broadcast(&l->cv);
            pthread_mutex_unlock(&l->mu);
            return NULL;
        }
    }
}

/* The size every sample must preprocess to: fixed by the options for the
 * cropping modes, else taken from sample 0. */
static int batch_size_hw(const clsynth_dataset *ds, int *w, int *h, clsynth_err *err)
{
    clsynth_preprocess_mode m = ds->opts.preprocess_mode;
    if (m == CLSYNTH_PRE_RESIZE_AND_CROP || m == CLSYNTH_PRE_SCALE_WIDTH_AND_CROP ||
        m == CLSYNTH_PRE_FIXED) {
        clsynth_preprocess_size(&ds->opts, 1, 1, w, h);
        return 0;
    }
    clsynth_raw_sample s;
    if (clsynth_dataset_read(ds, 0, &s, err))
        return -1;
    clsynth_preprocess_size(&ds->opts, s.image.w, s.image.h, w, h);
    clsynth_raw_sample_free(&s);
    return 0;
}

clsynth_loader *clsynth_loader_create(const clsynth_dataset *ds, const clsynth_loader_opts *o,
                                      clsynth_err *err)
{
    if (o->batch_size < 1) {
        clsynth_fail(err, "loader: batch size %d < 1", o->batch_size);
        return NULL;
    }
    if (o->prefetch != 0 && (o->prefetch < 2 || o->prefetch > 8)) {
        clsynth_fail(err, "loader: prefetch %d outside 2..8", o->prefetch);
        return NULL;
    }
    const int world = o->world > 1 ? o->world : 1;
    if (world > 1 && (o->rank < 0 || o->rank >= world)) {
        clsynth_fail(err, "loader: rank %d outside 0..%d", o->rank, world - 1);
        return NULL;
    }
    if (world > 1 && !o->shuffle) {
        clsynth_fail(err, "loader: a sequential pass is not sharded over ranks (world %d)", world);
        return NULL;
    }
    if (o->shuffle && (int64_t)ds->n < (int64_t)o->batch_size * world) {
        if (world > 1)
            clsynth_fail(err, "loader: %d samples, fewer than the global batch %d (batch size %d x %d ranks)",
                         ds->n, o->batch_size * world, o->batch_size, world);
        else
            clsynth_fail(err, "loader: %d samples, fewer than the batch size %d", ds->n,
                         o->batch_size);
        return NULL;
    }
    clsynth_loader *l = calloc(1, sizeof *l);
    if (!l) {
        clsynth_fail(err, "loader: out of memory");
        return NULL;
    }
    l->ds = ds;
    l->o = *o;
    l->nslots = o->prefetch ? o->prefetch : 3;
    l->world = world;
    l->batches_per_epoch = o->shuffle ? ds->n / (o->batch_size * world)
                                      : (ds->n + o->batch_size - 1) / o->batch_size;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (batch_size_hw(ds, &l->w, &l->h, err)) {
        clsynth_loader_free(l);
        return NULL;
    }
    size_t plane = (size_t)l->w * l->h, bs = (size_t)o->batch_size;
    l->perm = malloc(sizeof(int) * ds->n);
    l->slots = calloc(l->nslots, sizeof *l->slots);
    int ok = l->perm && l->slots;
    for (int i = 0; ok && i < l->nslots; i++) {
        clsynth_batch *b = &l->slots[i];
        b->h = l->h;
        b->w = l->w;
        b->image = malloc(sizeof(float) * 3 * plane * bs);    /* (N, 3, H, W) */
        b->label = malloc(sizeof(int32_t) * plane * bs);      /* (N, H, W) */
        b->edge = malloc(sizeof(float) * plane * bs);         /* (N, 1, H, W) */
        b->index = malloc(sizeof(int32_t) * bs);              /* (N) */
        ok = b->image && b->label && b->edge && b->index;
    }
    if (!ok) {
        clsynth_fail(err, "loader: out of memory for %d batches of %zu x %dx%d", l->nslots, bs,
                     l->w, l->h);
        clsynth_loader_free(l);
        return NULL;
    }
    if (pthread_create(&l->thread, NULL, producer, l) != 0) {
        clsynth_fail(err, "loader: cannot start the producer thread");
        clsynth_loader_free(l);
        return NULL;
    }
    l->thread_started = 1;
    return l;
}

int clsynth_loader_next(clsynth_loader *l, const clsynth_batch **batch, clsynth_err *err)
{
    *batch = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->released < l->consumed) { /* give back the batch handed out last time */
        l->released = l->consumed;
        pthread_cond_broadcast(&l->cv);
    }
    while (l->consumed == l->produced && !l->done && !l->failed)
        pthread_cond_wait(&l->cv, &l->mu);
    int rc;
    if (l->consumed < l->produced) {
        *batch = &l->slots[l->consumed % l->nslots];
        l->consumed++;
        rc = 1;
    } else if (l->failed) {
        if (err)
            *err = l->perr;
        rc = -1;
    } else {
        rc = 0;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void clsynth_loader_free(clsynth_loader *l)
{
    if (!l)
        return;
    if (l->thread_started) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    for (int i = 0; l->slots && i < l->nslots; i++) {
        free(l->slots[i].image);
        free(l->slots[i].label);
        free(l->slots[i].edge);
        free(l->slots[i].index);
    }
    free(l->slots);
    free(l->perm);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
