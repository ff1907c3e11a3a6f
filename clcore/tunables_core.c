/* Generic handling of a tunable's candidate space: decoding candidate numbers,
 * turning values into lookup entries and back, and legality on a context.
 * The registry itself (which kernels, which values) is clcore/tunables.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/launch.h"
#include "clcore/program.h"
#include "clcore/tunables.h"

size_t clsynth_tunable_space(const clsynth_tunable *t)
{
    size_t n = 1;
    for (int i = 0; i < t->n_params; i++)
        n *= (size_t)(t->params[i].n > 0 ? t->params[i].n : 1);
    return n;
}

static int algo_of(const clsynth_tunable *t, const int *v)
{
    for (int i = 0; i < t->n_params; i++)
        if (t->params[i].kind == CLSYNTH_TP_ALGO)
            return v[i];
    return 0;
}

static int local0_of(const clsynth_tunable *t, const int *v, bool *has)
{
    *has = false;
    for (int i = 0; i < t->n_params; i++)
        if (t->params[i].kind == CLSYNTH_TP_LOCAL0) {
            *has = true;
            return v[i];
        }
    return 0;
}

/* Whether parameter i takes part in the configuration given the others. */
static bool param_active(const clsynth_tunable *t, const int *v, int i)
{
    const clsynth_tparam *p = &t->params[i];
    if (p->only_algo > 0 && algo_of(t, v) != p->only_algo)
        return false;
    if (p->kind == CLSYNTH_TP_LOCAL1 || p->kind == CLSYNTH_TP_LOCAL2) {
        bool has = false;
        if (local0_of(t, v, &has) == 0 && has)
            return false;
    }
    return true;
}

bool clsynth_tunable_decode(const clsynth_tunable *t, size_t idx, int *v)
{
    size_t rest = idx;
    int vi[CLSYNTH_TP_MAX_PARAMS];
    for (int i = 0; i < t->n_params; i++) {
        size_t n = (size_t)(t->params[i].n > 0 ? t->params[i].n : 1);
        vi[i] = (int)(rest % n);
        rest /= n;
        v[i] = t->params[i].values[vi[i]];
    }
    if (rest)
        return false;
    /* an inactive parameter has one canonical encoding: its first value */
    for (int i = 0; i < t->n_params; i++)
        if (!param_active(t, v, i) && vi[i] != 0)
            return false;
    return true;
}

void clsynth_tunable_entry(const clsynth_tunable *t, const int *v, clsynth_tune_entry *e)
{
    memset(e, 0, sizeof *e);
    size_t used = 0;
    bool local_set = false;
    for (int i = 0; i < t->n_params; i++) {
        const clsynth_tparam *p = &t->params[i];
        if (!param_active(t, v, i))
            continue;
        switch (p->kind) {
        case CLSYNTH_TP_DEFINE: {
            int w = snprintf(e->options + used, sizeof e->options - used, "%s-D%s=%d", used ? " " : "", p->name,
                             v[i]);
            if (w > 0 && (size_t)w < sizeof e->options - used)
                used += (size_t)w;
            break;
        }
        case CLSYNTH_TP_LOCAL0:
            e->local[0] = (size_t)v[i];
            local_set = v[i] > 0;
            break;
        case CLSYNTH_TP_LOCAL1:
            e->local[1] = (size_t)v[i];
            break;
        case CLSYNTH_TP_LOCAL2:
            e->local[2] = (size_t)v[i];
            break;
        case CLSYNTH_TP_ALGO:
            e->algo = v[i];
            break;
        }
    }
    if (local_set) {
        for (int d = 1; d < 3; d++)
            if (!e->local[d])
                e->local[d] = 1;
    } else {
        e->local[0] = e->local[1] = e->local[2] = 0;
    }
}

static bool opt_value(const char *options, const char *name, int *out)
{
    char pat[64];
    snprintf(pat, sizeof pat, "-D%s=", name);
    size_t n = strlen(pat);
    for (const char *p = strstr(options, pat); p; p = strstr(p + 1, pat)) {
        if (p != options && p[-1] != ' ')
            continue;
        char *end = NULL;
        long x = strtol(p + n, &end, 10);
        if (end == p + n)
            return false;
        *out = (int)x;
        return true;
    }
    return false;
}

static bool in_values(const clsynth_tparam *p, int x, int *out)
{
    for (int j = 0; j < p->n; j++)
        if (p->values[j] == x) {
            *out = x;
            return true;
        }
    return false;
}

bool clsynth_tunable_values(const clsynth_tunable *t, const clsynth_tune_entry *e, int *v)
{
    for (int i = 0; i < t->n_params; i++)
        v[i] = t->params[i].values[0];
    /* algo and local first: they decide which defines are active */
    for (int i = 0; i < t->n_params; i++) {
        const clsynth_tparam *p = &t->params[i];
        int x = 0;
        if (p->kind == CLSYNTH_TP_ALGO)
            x = e->algo;
        else if (p->kind == CLSYNTH_TP_LOCAL0)
            x = (int)e->local[0];
        else if (p->kind == CLSYNTH_TP_LOCAL1)
            x = e->local[0] ? (int)e->local[1] : p->values[0];
        else if (p->kind == CLSYNTH_TP_LOCAL2)
            x = e->local[0] ? (int)e->local[2] : p->values[0];
        else
            continue;
        if (!in_values(p, x, &v[i]))
            return false;
    }
    for (int i = 0; i < t->n_params; i++) {
        const clsynth_tparam *p = &t->params[i];
        if (p->kind != CLSYNTH_TP_DEFINE || !param_active(t, v, i))
            continue;
        int x;
        if (!opt_value(e->options, p->name, &x))
            continue; /* absent: its default (values[0] is not necessarily it, but close enough) */
        if (!in_values(p, x, &v[i]))
            return false;
    }
    return true;
}

void clsynth_tunable_describe(const clsynth_tunable *t, const int *v, char *out, size_t len)
{
    size_t used = 0;
    out[0] = 0;
    bool local_done = false;
    for (int i = 0; i < t->n_params && used < len; i++) {
        const clsynth_tparam *p = &t->params[i];
        if (!param_active(t, v, i))
            continue;
        int w = 0;
        if (p->kind == CLSYNTH_TP_DEFINE || p->kind == CLSYNTH_TP_ALGO) {
            w = snprintf(out + used, len - used, "%s%s=%d", used ? " " : "", p->name, v[i]);
        } else if (!local_done) {
            clsynth_tune_entry e;
            clsynth_tunable_entry(t, v, &e);
            local_done = true;
            if (e.local[0])
                w = snprintf(out + used, len - used, "%slocal=%zux%zux%zu", used ? " " : "", e.local[0], e.local[1],
                             e.local[2]);
            else
                w = snprintf(out + used, len - used, "%slocal=default", used ? " " : "");
        }
        if (w > 0)
            used += (size_t)w;
    }
    if (!out[0])
        snprintf(out, len, "default");
}

bool clsynth_tunable_legal(clsynth_ctx *ctx, const clsynth_tunable *t, const int *v, const int *s,
                           bool build_check, char *why, size_t why_len)
{
    for (int i = 0; i < t->n_params; i++) {
        int x;
        if (!in_values(&t->params[i], v[i], &x)) {
            snprintf(why, why_len, "%s=%d is not a legal value", t->params[i].name, v[i]);
            return false;
        }
    }
    if (t->valid && !t->valid(v, s)) {
        snprintf(why, why_len, "violates the kernel's constraints");
        return false;
    }
    clsynth_tune_entry e;
    clsynth_tunable_entry(t, v, &e);
    size_t prod = 1, loc[3] = { e.local[0], e.local[1], e.local[2] };
    if (!loc[0] && t->implied_local)
        t->implied_local(v, s, loc);
    if (loc[0]) {
        for (int d = 0; d < 3; d++) {
            if (loc[d] < 1 || loc[d] > ctx->max_item[d]) {
                snprintf(why, why_len, "local size %zu in dimension %d exceeds the device's %zu", loc[d], d,
                         ctx->max_item[d]);
                return false;
            }
            prod *= loc[d];
        }
        if (prod > ctx->max_wg) {
            snprintf(why, why_len, "work-group of %zu exceeds the device's %zu", prod, ctx->max_wg);
            return false;
        }
    }
    size_t lmem = t->local_mem ? t->local_mem(v, s) : 0;
    if (lmem > ctx->local_mem) {
        snprintf(why, why_len, "needs %zu bytes of local memory, the device has %llu", lmem,
                 (unsigned long long)ctx->local_mem);
        return false;
    }
    if (!build_check || !t->file || (t->kernels_algo > 0 && algo_of(t, v) != t->kernels_algo))
        return true;
    for (int k = 0; k < 4 && t->kernels[k]; k++) {
        cl_kernel kern = clsynth_kernel_get(ctx, t->file, t->kernels[k], e.options);
        if (!kern) {
            snprintf(why, why_len, "kernel %s does not build: %.150s", t->kernels[k], ctx->err.msg);
            clsynth_ctx_clear_error(ctx);
            return false;
        }
        if (loc[0]) {
            size_t kmax = clsynth_kernel_max_wg(ctx, kern, t->kernels[k]);
            if (kmax == 0) {
                clsynth_ctx_clear_error(ctx);
                snprintf(why, why_len, "cannot query CL_KERNEL_WORK_GROUP_SIZE of %s", t->kernels[k]);
                return false;
            }
            if (prod > kmax) {
                snprintf(why, why_len, "work-group of %zu exceeds CL_KERNEL_WORK_GROUP_SIZE %zu of %s", prod, kmax,
                         t->kernels[k]);
                return false;
            }
        }
    }
    return true;
}

unsigned clsynth_tunable_src_hash(const clsynth_tunable *t)
{
    const char *src = t->file ? clsynth_kernel_source(t->file) : NULL;
    if (!src)
        return 0;
    uint64_t h = clsynth_fnv1a(CLSYNTH_FNV_SEED, src, strlen(src));
    unsigned x = (unsigned)(h ^ (h >> 32));
    return x ? x : 1;
}
