/* Tuned CLBlast parameters from the tuning database, applied with
 * CLBlastOverrideParameters when the database loads, and replaced by
 * CLBlast's generic defaults when a GEMM fails with them (see
 * clcore/tunedb.h). The entries were checked against their descriptors
 * (clcore/clblast_kdef.c) when the database loaded; here they are also
 * checked against this context's limits. */
#include <clblast_c.h>
#include <stdio.h>
#include <string.h>

#include "clcore/clblast_tune.h"
#include "clcore/clblast_util.h"
#include "clcore/kdefs.h"
#include "clcore/tunedb.h"

static const clsynth_kdef *const KDEFS[3] = { &clsynth_kdef_clblast_xgemm, &clsynth_kdef_clblast_xgemm_direct,
                                              &clsynth_kdef_clblast_gemm_routine };
static const char *const KERNELS[3] = { "Xgemm", "XgemmDirect", "GemmRoutine" };

/* What this process has applied per (device, kernel), under CLBlast's lock:
 * CLBlast keeps an override for the process, so a context whose database
 * holds the parameters an earlier one applied (every rank of a run) applies
 * nothing. */
typedef struct applied_set {
    cl_device_id dev;
    int which;
    int v[CLSYNTH_K_MAX_PARAMS];
} applied_set;
static applied_set applied[16];
static int n_applied;

static applied_set *applied_find(cl_device_id dev, int which)
{
    for (int i = 0; i < n_applied; i++)
        if (applied[i].dev == dev && applied[i].which == which)
            return &applied[i];
    return NULL;
}

int clsynth_clblast_override(cl_device_id dev, int which, const int *v, char *why, size_t len)
{
    const clsynth_kdef *d = KDEFS[which];
    const char *names[CLSYNTH_K_MAX_PARAMS];
    size_t values[CLSYNTH_K_MAX_PARAMS];
    for (int i = 0; i < d->n_params; i++) {
        names[i] = d->params[i].name;
        values[i] = (size_t)(v[i] < 0 ? 0 : v[i]);
    }
    const size_t bytes = (size_t)d->n_params * sizeof *v;
    clsynth_clblast_lock();
    applied_set *a = applied_find(dev, which);
    if (a && memcmp(a->v, v, bytes) == 0) {
        clsynth_clblast_unlock();
        return 0;
    }
    CLBlastStatusCode st =
        CLBlastOverrideParameters(dev, KERNELS[which], CLBlastPrecisionSingle, (size_t)d->n_params, names, values);
    if (st == CLBlastSuccess) {
        if (!a && n_applied < (int)(sizeof applied / sizeof applied[0]))
            a = &applied[n_applied++];
        if (a) {
            a->dev = dev;
            a->which = which;
            memcpy(a->v, v, bytes);
        }
    } else if (a) {
        *a = applied[--n_applied]; /* unknown now: the next override is made */
    }
    clsynth_clblast_unlock();
    if (st != CLBlastSuccess) {
        snprintf(why, len, "CLBlastOverrideParameters(%s) failed: %d", KERNELS[which], (int)st);
        return -1;
    }
    return 0;
}

const clsynth_kdef *clsynth_clblast_kdef(int which) { return which >= 0 && which < 3 ? KDEFS[which] : NULL; }

bool clsynth_clblast_stored(clsynth_ctx *ctx, clsynth_clblast_params *out)
{
    memset(out, 0, sizeof *out);
    bool any = false;
    for (int k = 0; k < 3; k++) {
        clsynth_tunedb_answer a = clsynth_tunedb_lookup_stored(ctx, KDEFS[k], "sgemm", out->v[k]);
        out->has[k] = a == CLSYNTH_TUNEDB_DEVICE || a == CLSYNTH_TUNEDB_CLASS;
        any |= out->has[k];
    }
    return any;
}

int clsynth_tunedb_apply_clblast(clsynth_ctx *ctx)
{
    int rc = 0;
    clsynth_klimits lim = clsynth_klimits_of(ctx);
    for (int k = 0; k < 3; k++) {
        int v[CLSYNTH_K_MAX_PARAMS];
        const void *entry = NULL;
        clsynth_tunedb_answer a = clsynth_tunedb_lookup(ctx, KDEFS[k], "sgemm", v, &entry);
        if (a != CLSYNTH_TUNEDB_DEVICE && a != CLSYNTH_TUNEDB_CLASS)
            continue;
        char why[300];
        size_t local[3], lmem;
        clsynth_gemm_key key = { 0 };
        if (!clsynth_kdef_fits(KDEFS[k], v, &key, &lim, local, &lmem, why, sizeof why) ||
            clsynth_clblast_override(ctx->dev.id, k, v, why, sizeof why)) {
            clsynth_tunedb_reject(ctx, entry, why); /* warns, names the entry */
            rc = -1;
            continue;
        }
        ctx->clblast_overridden |= 1u << k;
    }
    return rc;
}

int clsynth_tunedb_clblast_fallback(clsynth_ctx *ctx, const char *failure)
{
    if (!ctx->clblast_overridden)
        return 0;
    char names[160] = "";
    size_t used = 0;
    for (int k = 0; k < 3; k++) {
        if (!(ctx->clblast_overridden & (1u << k)))
            continue;
        int v[CLSYNTH_K_MAX_PARAMS];
        const void *entry = NULL;
        if (clsynth_tunedb_lookup(ctx, KDEFS[k], "sgemm", v, &entry) != CLSYNTH_TUNEDB_NONE && entry)
            clsynth_tunedb_reject(ctx, entry, failure);
        clsynth_kdef_defaults(KDEFS[k], &ctx->dev, v);
        char why[200];
        if (clsynth_clblast_override(ctx->dev.id, k, v, why, sizeof why))
            clsynth_warn(ctx, "%s", why);
        int w = snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", KDEFS[k]->key);
        if (w > 0 && (size_t)w < sizeof names - used)
            used += (size_t)w;
    }
    ctx->clblast_overridden = 0;
    clsynth_warn(ctx, "CLBlast failed with the tuned parameters of %s (%s): replaced by CLBlast's generic "
                      "defaults; retrying", names, failure);
    return 1;
}
