/* Model state across the ranks of a data-parallel run (see nets/model_dist.h). */
#include "nets/model_dist.h"

#include <stdint.h>

#include "clcore/comm.h"
#include "nets/model_impl.h"

int clsynth_model_broadcast(clsynth_ctx *ctx, clsynth_model *m, int root)
{
    if (ctx->failed)
        return -1;
    if (clsynth_comm_size(ctx) <= 1)
        return 0;
    int64_t scalars[3] = { m->epoch, (int64_t)m->rng_counter, m->opt.seed };
    if (clsynth_comm_broadcast_group(ctx, m->G, root) || clsynth_comm_broadcast_group(ctx, m->D, root) ||
        clsynth_comm_broadcast(ctx, scalars, sizeof scalars, root, CLSYNTH_COMM_STATE))
        return -1;
    m->rng_counter = (uint64_t)scalars[1];
    m->opt.seed = (long)scalars[2];
    clsynth_model_set_epoch(m, (int)scalars[0]);
    return 0;
}

int clsynth_model_check_same(clsynth_ctx *ctx, clsynth_model *m)
{
    if (ctx->failed)
        return -1;
    if (clsynth_comm_size(ctx) <= 1)
        return 0;
    uint64_t hg, hd;
    if (clsynth_group_hash(ctx, m->G, &hg) || clsynth_comm_check_same(ctx, hg, "the generator (G) state") ||
        clsynth_group_hash(ctx, m->D, &hd) || clsynth_comm_check_same(ctx, hd, "the discriminator (D) state"))
        return -1;
    return 0;
}
