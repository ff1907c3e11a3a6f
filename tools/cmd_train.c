/* clsynth train --dataroot DIR --name RUN [options]: trains CC-FPSE (or a
 * variant). Exit status: 0 done; 1 error (a NaN/Inf loss included: the last
 * good checkpoint is kept; a run folder that holds checkpoints without
 * --continue_train or --overwrite); 2 bad options; 128+signal after
 * SIGINT/SIGTERM/SIGHUP (a checkpoint was saved first). */
#include <stdio.h>
#include <string.h>

#include "clcore/context.h"
#include "nets/options.h"
#include "tools/commands.h"
#include "tools/train_loop.h"

int clsynth_cmd_train(int argc, char **argv)
{
    clsynth_options o;
    clsynth_err err;
    clsynth_options_defaults(&o);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: clsynth train --dataroot DIR --name RUN [options]\n\noptions:\n");
            clsynth_options_print_help(stdout);
            return 0;
        }
    if (clsynth_options_parse(&o, argc - 1, argv + 1, &err) || clsynth_train_check_options(&o, &err)) {
        fprintf(stderr, "clsynth train: %s\n", err.msg);
        return 2;
    }
    clsynth_ctx *ctx = clsynth_ctx_create(o.device[0] ? o.device : NULL, &err);
    if (!ctx) {
        fprintf(stderr, "clsynth train: %s\n", err.msg);
        return 1;
    }
    printf("device: %s (%s, driver %s)\n", ctx->dev.name, ctx->dev.platform_name, ctx->dev.driver);
    clsynth_train_install_signals();
    clsynth_train_result res;
    int rc = clsynth_run_training(ctx, &o, &res, &err);
    if (rc) {
        fprintf(stderr, "clsynth train: %s\n", err.msg);
        if (res.last_checkpoint[0] && !strstr(err.msg, res.last_checkpoint))
            fprintf(stderr, "clsynth train: the last good checkpoint is %s (iteration %ld)\n", res.last_checkpoint,
                    res.last_step);
        clsynth_ctx_free(ctx);
        return 1;
    }
    printf("%ld iterations (%ld new) in %.1f s; checkpoint %s\n", res.iterations, res.new_iterations, res.seconds,
           res.last_checkpoint[0] ? res.last_checkpoint : "(none: no new iteration)");
    clsynth_ctx_free(ctx);
    if (res.stop_signal) {
        fprintf(stderr, "clsynth train: stopped by signal %d after saving\n", res.stop_signal);
        return 128 + res.stop_signal;
    }
    return 0;
}
