/* In-memory tuning database of a context (see clcore/tune.h). The tuner
 * (clcore/tuner.c) fills and saves it; until a database has been loaded every
 * lookup answers "not tuned" and ops use their defaults. */
#include <stdlib.h>

#include "clcore/tune.h"

bool clsynth_tune_lookup(clsynth_ctx *ctx, const char *kernel, const char *shape_key, clsynth_tune_entry *out)
{
    (void)kernel;
    (void)shape_key;
    (void)out;
    return ctx->tunedb != NULL && false;
}

void clsynth_tunedb_free(clsynth_ctx *ctx)
{
    free(ctx->tunedb);
    ctx->tunedb = NULL;
}
