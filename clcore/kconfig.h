/* The resolver: the one place an op gets the configuration of a tunable
 * kernel at a shape.
 *
 *   clsynth_kcfg cfg;
 *   if (clsynth_kconfig(ctx, &clsynth_kdef_dwconv_fwd, &shape, force, &cfg)) return -1;
 *   ... cfg.v[DW_VW], cfg.k[0], cfg.local, cfg.local_mem ...
 *
 * Order: the caller's force (the tuner's candidate, or the built-in defaults
 * on request); else the tuning database (this device's entry, else its
 * device class's entry, clcore/tunedb.h); else the descriptor's built-in
 * class defaults, fitted to the shape and the limits. A database or forced
 * configuration must be legal on this context: declared values and
 * constraints, the work-group within the real or emulated limits and within
 * the built kernels' CL_KERNEL_WORK_GROUP_SIZE, local memory within
 * ctx->local_mem, and its kernels must build; an entry that is not falls back
 * to the defaults with a warning naming it (once). The -D options are
 * formatted once and the kernels fetched; a resolved configuration is kept
 * per (descriptor, shape) until the limits or the database change, so a
 * repeated op costs one key format and one hash probe. */
#ifndef CLSYNTH_KCONFIG_H
#define CLSYNTH_KCONFIG_H

#include "clcore/kdef.h"

typedef enum clsynth_ksource {
    CLSYNTH_KSRC_DEFAULT = 0, /* the descriptor's class defaults, fitted */
    CLSYNTH_KSRC_DEVICE,      /* this device's tuning-database entry */
    CLSYNTH_KSRC_CLASS,       /* the device class's database entry */
    CLSYNTH_KSRC_FORCED,      /* the caller's force */
} clsynth_ksource;

typedef struct clsynth_kcfg {
    const clsynth_kdef *def;
    clsynth_ksource source;
    int v[CLSYNTH_K_MAX_PARAMS];         /* value of params[i] */
    cl_kernel k[CLSYNTH_K_MAX_KERNELS];  /* def->kernels[i] built with options (NULL: none) */
    size_t local[3];                     /* work-group; local[0] == 0: the launch helper's default */
    size_t local_mem;                    /* bytes of local memory it needs */
    char options[256];                   /* the -D build options */
    char key[CLSYNTH_K_KEY_MAX];         /* the shape key */
} clsynth_kcfg;

/* Resolves def at shape (a pointer to the descriptor's shape struct) into
 * *cfg; force may be NULL. Returns 0, or -1 with ctx->err set when not even
 * the defaults fit or build. */
int clsynth_kconfig(clsynth_ctx *ctx, const clsynth_kdef *def, const void *shape, clsynth_kforce *force,
                    clsynth_kcfg *cfg);

/* Whether values v (taken as they are) build and fit this context at shape:
 * the kernels' own CL_KERNEL_WORK_GROUP_SIZE included. False with why. */
bool clsynth_kconfig_usable(clsynth_ctx *ctx, const clsynth_kdef *def, const void *shape, const int *v, char *why,
                            size_t why_len);

/* Drops every kept configuration (called when the limits or the database
 * change; internal users call it, tests may). */
void clsynth_kconfig_invalidate(clsynth_ctx *ctx);

/* The kernels' common CL_KERNEL_WORK_GROUP_SIZE (capped by ctx->max_wg)
 * when built with the descriptor's default options: the bound the tuner's
 * enumeration uses without building every candidate (0 on failure). */
size_t clsynth_kdef_kernel_wg_bound(clsynth_ctx *ctx, const clsynth_kdef *def);

/* internal: called by clsynth_ctx_free */
void clsynth_kconfig_free(clsynth_ctx *ctx);

#endif
