/* The resolver (see clcore/kconfig.h). */
#include "clcore/kconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/program.h"
#include "clcore/tunedb.h"

/* A resolved configuration, valid while the database generation and the
 * limits it was resolved under are unchanged. */
typedef struct kept {
    const clsynth_kdef *def;
    unsigned gen;
    clsynth_klimits lim;
    clsynth_kcfg cfg;
} kept;

typedef struct wg_bound {
    const clsynth_kdef *def;
    size_t wg; /* raw CL_KERNEL_WORK_GROUP_SIZE minimum (0: unknown) */
} wg_bound;

typedef struct clsynth_kcache {
    kept *v;
    size_t n, cap;       /* open addressing, cap a power of two */
    unsigned gen;        /* bumped by clsynth_kconfig_invalidate */
    wg_bound bounds[32];
    int n_bounds;
} clsynth_kcache;

static clsynth_kcache *cache_of(clsynth_ctx *ctx)
{
    if (!ctx->kcache)
        ctx->kcache = calloc(1, sizeof *ctx->kcache);
    return ctx->kcache;
}

void clsynth_kconfig_invalidate(clsynth_ctx *ctx)
{
    if (ctx->kcache)
        ctx->kcache->gen++;
}

void clsynth_kconfig_free(clsynth_ctx *ctx)
{
    if (!ctx->kcache)
        return;
    free(ctx->kcache->v);
    free(ctx->kcache);
    ctx->kcache = NULL;
}

static size_t slot_of(const clsynth_kcache *c, const clsynth_kdef *def, const char *key)
{
    uint64_t h = clsynth_fnv1a(CLSYNTH_FNV_SEED, &def, sizeof def);
    h = clsynth_fnv1a(h, key, strlen(key));
    return (size_t)h & (c->cap - 1);
}

static bool same_limits(const clsynth_klimits *a, const clsynth_klimits *b)
{
    return a->max_wg == b->max_wg && a->max_item[0] == b->max_item[0] && a->max_item[1] == b->max_item[1] &&
           a->max_item[2] == b->max_item[2] && a->local_mem == b->local_mem;
}

static const kept *cache_find(const clsynth_kcache *c, const clsynth_kdef *def, const char *key,
                              const clsynth_klimits *lim)
{
    if (!c || !c->cap)
        return NULL;
    for (size_t i = slot_of(c, def, key);; i = (i + 1) & (c->cap - 1)) {
        const kept *e = &c->v[i];
        if (!e->def)
            return NULL;
        if (e->def == def && strcmp(e->cfg.key, key) == 0)
            return e->gen == c->gen && same_limits(&e->lim, lim) ? e : NULL;
    }
}

static void cache_put(clsynth_kcache *c, const clsynth_kcfg *cfg, const clsynth_klimits *lim)
{
    if (!c)
        return; /* out of memory: resolve every time */
    if ((c->n + 1) * 2 > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        kept *v = calloc(cap, sizeof *v), *old = c->v;
        if (!v)
            return;
        size_t old_cap = c->cap;
        c->v = v;
        c->cap = cap;
        c->n = 0;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].def && old[i].gen == c->gen) {
                size_t j = slot_of(c, old[i].def, old[i].cfg.key);
                while (v[j].def)
                    j = (j + 1) & (cap - 1);
                v[j] = old[i];
                c->n++;
            }
        free(old);
    }
    size_t i = slot_of(c, cfg->def, cfg->key);
    while (c->v[i].def && !(c->v[i].def == cfg->def && strcmp(c->v[i].cfg.key, cfg->key) == 0))
        i = (i + 1) & (c->cap - 1);
    if (!c->v[i].def)
        c->n++;
    c->v[i].def = cfg->def;
    c->v[i].gen = c->gen;
    c->v[i].lim = *lim;
    c->v[i].cfg = *cfg;
}

/* ------------------------------------------------------------ one attempt */

static bool kernels_run(const clsynth_kdef *def, const int *v)
{
    if (!def->file)
        return false;
    if (def->kernels_algo > 0)
        for (int i = 0; i < def->n_params; i++)
            if (def->params[i].kind == CLSYNTH_K_ALGO && v[i] != def->kernels_algo)
                return false;
    return true;
}

/* Builds the kernels of values v into cfg; lowers lim->max_wg to their
 * CL_KERNEL_WORK_GROUP_SIZE. False with why (the context's error cleared). */
static bool build(clsynth_ctx *ctx, const clsynth_kdef *def, const int *v, clsynth_kcfg *cfg, clsynth_klimits *lim,
                  char *why, size_t len)
{
    clsynth_kdef_options(def, v, cfg->options, sizeof cfg->options);
    memset(cfg->k, 0, sizeof cfg->k);
    if (!kernels_run(def, v))
        return true;
    for (int i = 0; i < CLSYNTH_K_MAX_KERNELS && def->kernels[i]; i++) {
        size_t wg = 0;
        cfg->k[i] = clsynth_kernel_get(ctx, def->file, def->kernels[i], cfg->options);
        if (!cfg->k[i] || clsynth_kernel_limits(ctx, cfg->k[i], def->kernels[i], &wg, NULL)) {
            snprintf(why, len, "kernel %s does not build with '%s': %.300s", def->kernels[i], cfg->options,
                     ctx->err.msg);
            clsynth_ctx_clear_error(ctx);
            return false;
        }
        if (wg < lim->max_wg)
            lim->max_wg = wg;
    }
    return true;
}

/* Values v (taken as they are) built and checked against the limits. */
static bool attempt(clsynth_ctx *ctx, const clsynth_kdef *def, const void *shape, const int *v, clsynth_kcfg *cfg,
                    char *why, size_t len)
{
    clsynth_klimits lim = clsynth_klimits_of(ctx);
    memset(cfg->v, 0, sizeof cfg->v);
    memcpy(cfg->v, v, sizeof(int) * (size_t)def->n_params); /* v may hold only n_params values */
    if (def->device_ok && !def->device_ok(&ctx->dev, v, why, len))
        return false;
    if (!build(ctx, def, v, cfg, &lim, why, len))
        return false;
    return clsynth_kdef_fits(def, v, shape, &lim, cfg->local, &cfg->local_mem, why, len);
}

/* The built-in defaults, fitted to the shape and the limits; refitted to the
 * kernels' own work-group limit when the build reports a lower one. */
static bool attempt_defaults(clsynth_ctx *ctx, const clsynth_kdef *def, const void *shape, clsynth_kcfg *cfg,
                             char *why, size_t len)
{
    int v0[CLSYNTH_K_MAX_PARAMS] = { 0 }, v[CLSYNTH_K_MAX_PARAMS];
    clsynth_kdef_defaults(def, &ctx->dev, v0);
    clsynth_klimits lim = clsynth_klimits_of(ctx);
    for (int tries = 0; tries < 8; tries++) {
        memcpy(v, v0, sizeof v);
        if (def->fit)
            def->fit(v, shape, &lim);
        memcpy(cfg->v, v, sizeof cfg->v);
        clsynth_klimits built = lim;
        if (!build(ctx, def, v, cfg, &built, why, len))
            return false;
        if (built.max_wg < lim.max_wg && def->fit) {
            /* the kernel allows fewer items than the device: fit again */
            int w[CLSYNTH_K_MAX_PARAMS];
            memcpy(w, v0, sizeof w);
            def->fit(w, shape, &built);
            lim = built;
            if (memcmp(w, v, sizeof w) != 0)
                continue;
        }
        return clsynth_kdef_fits(def, v, shape, &built, cfg->local, &cfg->local_mem, why, len);
    }
    snprintf(why, len, "no default configuration fits the kernel's work-group limit");
    return false;
}

/* ------------------------------------------------------------ resolver */

int clsynth_kconfig(clsynth_ctx *ctx, const clsynth_kdef *def, const void *shape, clsynth_kforce *force,
                    clsynth_kcfg *cfg)
{
    if (ctx->failed)
        return -1;
    char key[CLSYNTH_K_KEY_MAX];
    def->format(shape, key, sizeof key);
    char why[512] = "";
    while (force && force->def != def)
        force = force->next; /* a force for another descriptor (the op's GEMM) leaves this one alone */
    bool forced = force != NULL;
    clsynth_kcache *c = cache_of(ctx);
    clsynth_klimits lim = clsynth_klimits_of(ctx);
    if (!forced) {
        const kept *e = cache_find(c, def, key, &lim);
        if (e) {
            *cfg = e->cfg;
            clsynth_tunedb_seen(ctx, def->key, key);
            return 0;
        }
    }
    clsynth_tunedb_seen(ctx, def->key, key);
    memset(cfg, 0, sizeof *cfg);
    cfg->def = def;
    snprintf(cfg->key, sizeof cfg->key, "%s", key);
    if (forced) {
        force->hits++;
        if (!force->defaults) {
            cfg->source = CLSYNTH_KSRC_FORCED;
            if (attempt(ctx, def, shape, force->v, cfg, why, sizeof why))
                return 0;
            char desc[200];
            clsynth_kdef_describe(def, force->v, desc, sizeof desc);
            return clsynth_ctx_fail(ctx, "%s at %s: the forced configuration %s is not usable: %s", def->key, key,
                                    desc, why);
        }
    } else {
        int v[CLSYNTH_K_MAX_PARAMS];
        const void *entry = NULL;
        clsynth_tunedb_answer a = clsynth_tunedb_lookup(ctx, def, key, v, &entry);
        if (a == CLSYNTH_TUNEDB_DEVICE || a == CLSYNTH_TUNEDB_CLASS) {
            cfg->source = a == CLSYNTH_TUNEDB_DEVICE ? CLSYNTH_KSRC_DEVICE : CLSYNTH_KSRC_CLASS;
            if (attempt(ctx, def, shape, v, cfg, why, sizeof why)) {
                cache_put(c, cfg, &lim);
                return 0;
            }
            clsynth_tunedb_reject(ctx, entry, why);
        }
        if (ctx->failed)
            return -1;
    }
    cfg->source = CLSYNTH_KSRC_DEFAULT;
    if (!attempt_defaults(ctx, def, shape, cfg, why, sizeof why))
        return clsynth_ctx_fail(ctx, "%s at %s: %s", def->key, key, why);
    if (!forced)
        cache_put(c, cfg, &lim);
    return 0;
}

bool clsynth_kconfig_usable(clsynth_ctx *ctx, const clsynth_kdef *def, const void *shape, const int *v, char *why,
                            size_t why_len)
{
    clsynth_kcfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.def = def;
    return !ctx->failed && attempt(ctx, def, shape, v, &cfg, why, why_len);
}

size_t clsynth_kdef_kernel_wg_bound(clsynth_ctx *ctx, const clsynth_kdef *def)
{
    clsynth_kcache *c = cache_of(ctx);
    if (!def->file)
        return ctx->max_wg;
    for (int i = 0; c && i < c->n_bounds; i++)
        if (c->bounds[i].def == def)
            return c->bounds[i].wg < ctx->max_wg ? c->bounds[i].wg : ctx->max_wg;
    int v[CLSYNTH_K_MAX_PARAMS] = { 0 };
    clsynth_kdef_defaults(def, &ctx->dev, v);
    if (def->kernels_algo > 0) /* its kernels build only under that algorithm (with its tunables) */
        for (int i = 0; i < def->n_params; i++)
            if (def->params[i].kind == CLSYNTH_K_ALGO)
                v[i] = def->kernels_algo;
    char opts[256];
    clsynth_kdef_options(def, v, opts, sizeof opts);
    size_t raw = (size_t)-1;
    for (int i = 0; i < CLSYNTH_K_MAX_KERNELS && def->kernels[i]; i++) {
        cl_kernel k = clsynth_kernel_get(ctx, def->file, def->kernels[i], opts);
        size_t wg = 0, pref = 1;
        /* the driver's limit, not capped: the emulated limits may change later */
        if (!k || clsynth_kernel_limits_raw(ctx, k, def->kernels[i], &wg, &pref))
            return 0;
        if (wg < raw)
            raw = wg;
    }
    if (c && c->n_bounds < (int)(sizeof c->bounds / sizeof c->bounds[0]))
        c->bounds[c->n_bounds++] = (wg_bound){ def, raw };
    return raw < ctx->max_wg ? raw : ctx->max_wg;
}
