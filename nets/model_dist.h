/* The model of a data-parallel run (ctx->comm, clcore/comm.h): every rank
 * must hold the same weights, Adam state, buffers and counters. The train
 * step keeps them equal (nets/trainer.c); these start every rank from rank
 * 0's model (fresh or resumed) and check that they still agree. */
#ifndef CLSYNTH_NETS_MODEL_DIST_H
#define CLSYNTH_NETS_MODEL_DIST_H

#include "clcore/context.h"
#include "nets/model.h"

/* Copies root's whole model state to every rank: G and D parameters, Adam
 * moments and steps, buffers, the epoch (with its learning rates), the noise
 * seed and counter. A no-op in one process. */
int clsynth_model_broadcast(clsynth_ctx *ctx, clsynth_model *m, int root);

/* Fails (naming the network and the first rank that differs from rank 0)
 * unless every rank holds the same G and D state (clsynth_group_hash). */
int clsynth_model_check_same(clsynth_ctx *ctx, clsynth_model *m);

#endif
