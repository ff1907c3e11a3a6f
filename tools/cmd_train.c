/* clsynth train --dataroot DIR --name RUN [options]: trains CC-FPSE (or a
 * variant). Exit status: 0 done; 1 error (a NaN/Inf loss included: the last
 * good checkpoint is kept; a run folder that holds checkpoints without
 * --continue_train or --overwrite); 2 bad options; 128+signal after
 * SIGINT/SIGTERM/SIGHUP/SIGUSR1 (a checkpoint was saved first).
 *
 * Under an MPI launcher (`mpirun -np K clsynth train ...`, tools/dist.h) the K
 * processes train one model: --batchSize is per process, the global batch K
 * times that; --device rank or a list maps local ranks to devices. A failure
 * during the setup (rank 0 refusing the run folder, a rank's memory check)
 * is reported once, by the rank it happened on, and every rank exits with 1;
 * a rank that fails later stops every rank (MPI_Abort). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clcore/context.h"
#include "nets/options.h"
#include "tools/commands.h"
#include "tools/dist.h"
#include "tools/train_loop.h"

static void help(void)
{
    printf("usage: clsynth train --dataroot DIR --name RUN [options]\n"
           "       mpirun -np K clsynth train ... (data-parallel over K processes)\n\n"
           "distributed: %s.\n"
           "  --batchSize is per process (global batch = K x --batchSize); every rank reads its shard of\n"
           "  each global batch; gradients are averaged over the ranks; --norm_G/--norm_D ...syncbatch...\n"
           "  (or the authors' ...sync_batch...) normalizes over the global batch, ...batch... over each\n"
           "  rank's own; rank 0 writes the run folder. --device rank maps local rank i to device i,\n"
           "  --device A,B,... to the i-th entry.\n\n"
           "options:\n",
           clsynth_dist_build_info());
    clsynth_options_print_help(stdout);
}

int clsynth_cmd_train(int argc, char **argv)
{
    clsynth_options o;
    clsynth_err err;
    clsynth_options_defaults(&o);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            help();
            return 0;
        }
    if (clsynth_options_parse(&o, argc - 1, argv + 1, &err) || clsynth_train_check_options(&o, &err)) {
        fprintf(stderr, "clsynth train: %s\n", err.msg);
        return 2;
    }
    clsynth_dist dist;
    if (clsynth_dist_init(&dist, &err)) {
        fprintf(stderr, "clsynth train: %s\n", err.msg);
        return 1;
    }
    char spec[sizeof o.device];
    if (clsynth_dist_device_spec(o.device, dist.local_rank, dist.local_size, spec, sizeof spec, &err))
        return clsynth_dist_abort(&dist, "train", 2, err.msg);
    clsynth_ctx *ctx = clsynth_ctx_create(spec[0] ? spec : NULL, &err);
    if (!ctx)
        return clsynth_dist_abort(&dist, "train", 1, err.msg);
    clsynth_dist_attach(&dist, ctx);
    if (dist.size > 1)
        printf("rank %d of %d (local %d of %d, pid %ld): device %s (%s, driver %s)\n", dist.rank, dist.size,
               dist.local_rank, dist.local_size, (long)getpid(), ctx->dev.name, ctx->dev.platform_name,
               ctx->dev.driver);
    else
        printf("device: %s (%s, driver %s)\n", ctx->dev.name, ctx->dev.platform_name, ctx->dev.driver);
    fflush(stdout);
    clsynth_train_install_signals();
    clsynth_train_result res;
    int rc = clsynth_run_training(ctx, &o, &res, &err);
    if (rc) {
        /* already in the message after a failed save */
        bool name_last = res.last_checkpoint[0] && !strstr(err.msg, res.last_checkpoint);
        if (dist.size > 1 && !res.failed_together) { /* the other ranks do not know: stop them */
            if (name_last)
                fprintf(stderr, "clsynth train: the last good checkpoint is %s (iteration %ld)\n",
                        res.last_checkpoint, res.last_step);
            clsynth_dist_abort(&dist, "train", 1, err.msg);
        }
        if (dist.size > 1 && !res.failed_elsewhere)
            fprintf(stderr, "clsynth train: rank %d of %d: %s\n", dist.rank, dist.size, err.msg);
        else if (dist.size == 1)
            fprintf(stderr, "clsynth train: %s\n", err.msg);
        if (name_last)
            fprintf(stderr, "clsynth train: the last good checkpoint is %s (iteration %ld)\n", res.last_checkpoint,
                    res.last_step);
        clsynth_dist_finalize(&dist, ctx);
        clsynth_ctx_free(ctx);
        return 1;
    }
    if (dist.rank == 0)
        printf("%ld iterations (%ld new) in %.1f s; checkpoint %s\n", res.iterations, res.new_iterations,
               res.seconds, res.last_checkpoint[0] ? res.last_checkpoint : "(none: no new iteration)");
    clsynth_dist_finalize(&dist, ctx);
    clsynth_ctx_free(ctx);
    if (res.stop_signal) {
        if (dist.size > 1 && dist.rank == 0)
            fprintf(stderr, "clsynth train: rank %d received signal %d; every rank stopped after saving\n",
                    res.stop_rank, res.stop_signal);
        else if (dist.size == 1)
            fprintf(stderr, "clsynth train: stopped by signal %d after saving\n", res.stop_signal);
        return 128 + res.stop_signal;
    }
    return 0;
}
