/* Stop votes, loss averaging and the world record of data-parallel training
 * (see tools/train_dist.h). */
#include "tools/train_dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/comm.h"
#include "io/atomic.h"

int clsynth_train_vote_stop(clsynth_ctx *ctx, int local_signal, bool budget_over, clsynth_stop_vote *out)
{
    memset(out, 0, sizeof *out);
    const int K = clsynth_comm_size(ctx);
    int mine[2] = { local_signal, budget_over && clsynth_comm_rank(ctx) == 0 };
    int *all = malloc(sizeof mine * (size_t)K);
    if (!all)
        return clsynth_ctx_fail(ctx, "stop vote: out of host memory");
    if (clsynth_comm_allgather(ctx, mine, all, sizeof mine, CLSYNTH_COMM_STATE)) {
        free(all);
        return -1;
    }
    for (int r = 0; r < K; r++)
        if (all[2 * r] && !out->signal) {
            out->signal = all[2 * r];
            out->signal_rank = r;
        }
    out->stop = out->signal != 0 || all[1] != 0;
    free(all);
    return 0;
}

int clsynth_train_agree(clsynth_ctx *ctx, bool failed, int *first_failed)
{
    const int K = clsynth_comm_size(ctx);
    int mine = failed, *all = malloc(sizeof mine * (size_t)K);
    *first_failed = -1;
    if (!all)
        return clsynth_ctx_fail(ctx, "setup outcome: out of host memory");
    if (clsynth_comm_allgather(ctx, &mine, all, sizeof mine, CLSYNTH_COMM_STATE)) {
        free(all);
        return -1;
    }
    for (int r = K - 1; r >= 0; r--)
        if (all[r])
            *first_failed = r;
    free(all);
    return 0;
}

int clsynth_train_average_losses(clsynth_ctx *ctx, clsynth_losses *l)
{
    const int K = clsynth_comm_size(ctx);
    if (K <= 1)
        return 0;
    double v[6] = { l->G_GAN, l->G_GAN_Feat, l->G_VGG, l->KLD, l->D_real, l->D_fake };
    if (clsynth_comm_allreduce_sum(ctx, v, 6, CLSYNTH_COMM_F64, CLSYNTH_COMM_STATE))
        return -1;
    l->G_GAN = (float)(v[0] / K);
    l->G_GAN_Feat = (float)(v[1] / K);
    l->G_VGG = (float)(v[2] / K);
    l->KLD = (float)(v[3] / K);
    l->D_real = (float)(v[4] / K);
    l->D_fake = (float)(v[5] / K);
    return 0;
}

/* Value of "key=" in text, as an int (-1 if absent). */
static long key_value(const char *text, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, key, n) == 0 && p[n] == '=')
            return strtol(p + n + 1, NULL, 10);
    return -1;
}

int clsynth_train_record_world(clsynth_ctx *ctx, const char *run_dir, const clsynth_options *o, bool resuming,
                               clsynth_err *err)
{
    const int K = clsynth_comm_size(ctx), rank = clsynth_comm_rank(ctx);
    char mine[256];
    snprintf(mine, sizeof mine, "%s (%s, driver %s)", ctx->dev.name, ctx->dev.platform_name, ctx->dev.driver);
    char *names = calloc((size_t)K, sizeof mine);
    if (!names)
        return clsynth_fail(err, "world record: out of host memory");
    if (clsynth_comm_allgather(ctx, mine, names, sizeof mine, CLSYNTH_COMM_STATE)) {
        free(names);
        return clsynth_fail(err, "world record: %s", ctx->err.msg);
    }
    int rc = 0;
    if (rank == 0) {
        char path[1200];
        snprintf(path, sizeof path, "%s/world.txt", run_dir);
        FILE *f = resuming ? fopen(path, "r") : NULL;
        if (f) {
            char old[4096];
            size_t n = fread(old, 1, sizeof old - 1, f);
            old[n] = 0;
            fclose(f);
            long old_world = key_value(old, "world_size"), old_global = key_value(old, "global_batch");
            if (old_global > 0 && old_global != (long)o->batchSize * K)
                printf("notice: the run was trained with a global batch of %ld (%ld ranks), it now has %d (%d x "
                       "--batchSize %d): the data order from here on differs from an uninterrupted run\n",
                       old_global, old_world, o->batchSize * K, K, o->batchSize);
            else if (old_world > 0 && old_world != K)
                printf("notice: the run was trained on %ld ranks, it continues on %d with the same global batch %d\n",
                       old_world, K, o->batchSize * K);
        }
        clsynth_atomic_file af;
        if (clsynth_atomic_open(&af, path, err)) {
            rc = -1;
        } else {
            fprintf(af.f, "# the processes of this run (written by rank 0 at each start)\n"
                          "world_size=%d\nbatch_per_rank=%d\nglobal_batch=%d\n",
                    K, o->batchSize, o->batchSize * K);
            for (int r = 0; r < K; r++)
                fprintf(af.f, "rank%d_device=%s\n", r, names + (size_t)r * sizeof mine);
            rc = clsynth_atomic_commit(&af, err);
        }
    }
    free(names);
    return rc;
}
