/* Batches prepared by a background thread while the caller computes.
 *
 * A producer thread reads, preprocesses and stacks samples into a ring of
 * `prefetch` batch slots; clsynth_loader_next hands the caller the oldest
 * ready slot and recycles the one it handed out before.
 *
 * Order. shuffle = 1: endless epochs; epoch e visits the samples in a
 * permutation drawn from (seed, e); incomplete trailing batches are dropped.
 * shuffle = 0: one pass in file order, the last batch may be short, then
 * clsynth_loader_next returns 0. Random crop/flip of the sample at position
 * k of epoch e comes from an RNG seeded with (seed, e, k): batches depend on
 * the seed only, never on thread timing.
 *
 * Data-parallel shards (world > 1, shuffle = 1; PyTorch's DistributedSampler):
 * every rank draws the same permutation and the global batch b of batch_size
 * * world samples (positions b*B*world .. (b+1)*B*world - 1 of the epoch, as
 * one loader with that batch size would); rank r takes positions
 * b*B*world + r*B .. + B - 1 of it, with the same crops and flips (the sample
 * RNG keys on the position in the epoch). Epochs have n / (B * world) batches. */
#ifndef CLSYNTH_IO_LOADER_H
#define CLSYNTH_IO_LOADER_H

#include <stdint.h>

#include "clcore/error.h"
#include "io/dataset.h"

typedef struct clsynth_batch {
    int n;             /* samples in this batch (<= batch_size) */
    int h, w;          /* sample size */
    int epoch;         /* epoch the batch belongs to */
    int64_t step;      /* batch counter since the loader started */
    float *image;      /* (N, 3, H, W) in [-1, 1] */
    int32_t *label;    /* (N, H, W) class ids, don't care = dontcare_value */
    float *edge;       /* (N, 1, H, W) instance edges (zeros without instances) */
    int32_t *index;    /* (N) dataset index of each sample */
} clsynth_batch;

typedef struct clsynth_loader_opts {
    int batch_size;   /* >= 1 */
    uint64_t seed;
    int shuffle;      /* 1: endless shuffled epochs; 0: one sequential pass */
    int prefetch;     /* batch slots, 2 (double) .. 8; 0 = 3 */
    int start_epoch;  /* first epoch (to resume); 0 normally */
    int rank, world;  /* this rank's shard of every global batch; world 0 or 1 = no sharding */
} clsynth_loader_opts;

typedef struct clsynth_loader clsynth_loader;

/* Starts the producer thread. The dataset must outlive the loader. Every
 * sample must preprocess to the same size (true for all modes but
 * scale_width and none on mixed sizes). */
clsynth_loader *clsynth_loader_create(const clsynth_dataset *ds, const clsynth_loader_opts *o,
                                      clsynth_err *err);

/* Returns 1 and the next batch (owned by the loader, valid until the next
 * call), 0 at the end of a sequential pass, -1 on an error of the producer
 * (message names the file). */
int clsynth_loader_next(clsynth_loader *l, const clsynth_batch **batch, clsynth_err *err);

/* Batches per epoch. */
int clsynth_loader_batches_per_epoch(const clsynth_loader *l);

/* Stops the thread (even mid-batch) and frees everything. NULL is fine. */
void clsynth_loader_free(clsynth_loader *l);

#endif
