/* Generic handling of kernel descriptors (clcore/kdef.h): defaults per device
 * class, the candidate space, values <-> build options and database fields
 * (the one "-DNAME=value" parser), legality against limits, source hashes. */
#include "clcore/kdef.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/program.h"

/* ------------------------------------------------------------ defaults */

static bool class_matches(const char *cls, const clsynth_device_info *dev)
{
    if (strcmp(cls, clsynth_device_class(dev)) == 0)
        return true;
    if (strcmp(cls, "cpu") == 0)
        return (dev->type & CL_DEVICE_TYPE_CPU) != 0;
    if (strcmp(cls, "gpu") == 0)
        return (dev->type & CL_DEVICE_TYPE_GPU) != 0;
    if (strcmp(cls, "accelerator") == 0)
        return (dev->type & CL_DEVICE_TYPE_ACCELERATOR) != 0;
    return false;
}

void clsynth_kdef_defaults(const clsynth_kdef *d, const clsynth_device_info *dev, int *v)
{
    for (int i = 0; i < d->n_params; i++) {
        const clsynth_ktunable *p = &d->params[i];
        v[i] = p->def;
        for (int c = 0; c < CLSYNTH_K_MAX_CLASS && p->by_class[c].cls; c++)
            if (dev && class_matches(p->by_class[c].cls, dev)) {
                v[i] = p->by_class[c].value;
                break;
            }
    }
}

/* ------------------------------------------------------------ values */

bool clsynth_ktunable_legal(const clsynth_ktunable *p, int x)
{
    if (p->n == 0)
        return x >= p->lo && x <= p->hi;
    for (int j = 0; j < p->n; j++)
        if (p->values[j] == x)
            return true;
    return false;
}

static int value_of_kind(const clsynth_kdef *d, const int *v, clsynth_kkind kind, bool *has)
{
    for (int i = 0; i < d->n_params; i++)
        if (d->params[i].kind == kind) {
            if (has)
                *has = true;
            return v[i];
        }
    if (has)
        *has = false;
    return 0;
}

bool clsynth_kdef_param_active(const clsynth_kdef *d, const int *v, int i)
{
    const clsynth_ktunable *p = &d->params[i];
    if (p->only_algo > 0 && value_of_kind(d, v, CLSYNTH_K_ALGO, NULL) != p->only_algo)
        return false;
    if (p->kind == CLSYNTH_K_LOCAL1 || p->kind == CLSYNTH_K_LOCAL2) {
        bool has = false;
        if (value_of_kind(d, v, CLSYNTH_K_LOCAL0, &has) == 0 && has)
            return false;
    }
    return true;
}

bool clsynth_kdef_values_ok(const clsynth_kdef *d, const int *v, const void *shape, char *why, size_t len)
{
    for (int i = 0; i < d->n_params; i++)
        if (!clsynth_ktunable_legal(&d->params[i], v[i])) {
            snprintf(why, len, "%s=%d is not a legal value", d->params[i].name, v[i]);
            return false;
        }
    if (d->valid && shape && !d->valid(v, shape)) {
        snprintf(why, len, "violates the kernel's constraints");
        return false;
    }
    return true;
}

size_t clsynth_kdef_space(const clsynth_kdef *d)
{
    size_t n = 1;
    for (int i = 0; i < d->n_params; i++)
        n *= (size_t)(d->params[i].n > 0 ? d->params[i].n : 1);
    return n;
}

bool clsynth_kdef_decode(const clsynth_kdef *d, size_t idx, int *v)
{
    size_t rest = idx;
    int vi[CLSYNTH_K_MAX_PARAMS];
    for (int i = 0; i < d->n_params; i++) {
        const clsynth_ktunable *p = &d->params[i];
        size_t n = (size_t)(p->n > 0 ? p->n : 1);
        vi[i] = (int)(rest % n);
        rest /= n;
        v[i] = p->n > 0 ? p->values[vi[i]] : p->def;
    }
    if (rest)
        return false;
    /* an inactive parameter has one canonical encoding: its first value */
    for (int i = 0; i < d->n_params; i++)
        if (!clsynth_kdef_param_active(d, v, i) && vi[i] != 0)
            return false;
    return true;
}

/* ------------------------------------------------------------ options and fields */

static void append(char *out, size_t len, size_t *used, const char *name, int value)
{
    int w = snprintf(out + *used, len - *used, "%s-D%s=%d", *used ? " " : "", name, value);
    if (w > 0 && (size_t)w < len - *used)
        *used += (size_t)w;
}

void clsynth_kdef_options(const clsynth_kdef *d, const int *v, char *out, size_t len)
{
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < d->n_params; i++)
        if (d->params[i].kind == CLSYNTH_K_DEFINE && clsynth_kdef_param_active(d, v, i))
            append(out, len, &used, d->params[i].name, v[i]);
}

void clsynth_kdef_to_fields(const clsynth_kdef *d, const int *v, char *opts, size_t len, size_t local[3], int *algo)
{
    size_t used = 0;
    opts[0] = 0;
    local[0] = local[1] = local[2] = 0;
    *algo = 0;
    for (int i = 0; i < d->n_params; i++) {
        const clsynth_ktunable *p = &d->params[i];
        if (!clsynth_kdef_param_active(d, v, i))
            continue;
        switch (p->kind) {
        case CLSYNTH_K_DEFINE:
        case CLSYNTH_K_HOST:
            append(opts, len, &used, p->name, v[i]);
            break;
        case CLSYNTH_K_LOCAL0: local[0] = (size_t)v[i]; break;
        case CLSYNTH_K_LOCAL1: local[1] = (size_t)v[i]; break;
        case CLSYNTH_K_LOCAL2: local[2] = (size_t)v[i]; break;
        case CLSYNTH_K_ALGO: *algo = v[i]; break;
        }
    }
    if (local[0]) {
        for (int k = 1; k < 3; k++)
            if (!local[k])
                local[k] = 1;
    } else {
        local[1] = local[2] = 0;
    }
}

static int param_index(const clsynth_kdef *d, const char *name, size_t n)
{
    for (int i = 0; i < d->n_params; i++)
        if (strlen(d->params[i].name) == n && strncmp(d->params[i].name, name, n) == 0)
            return i;
    return -1;
}

bool clsynth_kdef_from_fields(const clsynth_kdef *d, const char *opts, const size_t local[3], int algo, int *v,
                              char *why, size_t len)
{
    bool seen[CLSYNTH_K_MAX_PARAMS] = { false };
    for (int i = 0; i < d->n_params; i++)
        v[i] = d->params[i].n > 0 && !clsynth_ktunable_legal(&d->params[i], d->params[i].def)
                   ? d->params[i].values[0]
                   : d->params[i].def;
    /* opts: "-DNAME=integer" tokens separated by spaces, nothing else */
    const char *p = opts ? opts : "";
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *tok = p;
        while (*p && *p != ' ')
            p++;
        size_t tlen = (size_t)(p - tok);
        const char *eq = memchr(tok, '=', tlen);
        if (tlen < 4 || tok[0] != '-' || tok[1] != 'D' || !eq || eq == tok + 2) {
            snprintf(why, len, "'%.*s' is not of the form -DNAME=value", (int)(tlen > 40 ? 40 : tlen), tok);
            return false;
        }
        int i = param_index(d, tok + 2, (size_t)(eq - tok - 2));
        if (i < 0 || (d->params[i].kind != CLSYNTH_K_DEFINE && d->params[i].kind != CLSYNTH_K_HOST)) {
            snprintf(why, len, "%.*s is not a tunable of %s", (int)(eq - tok - 2 > 40 ? 40 : eq - tok - 2), tok + 2,
                     d->key);
            return false;
        }
        char num[24];
        size_t nl = (size_t)(p - eq - 1);
        char *end = NULL;
        if (nl == 0 || nl >= sizeof num) {
            snprintf(why, len, "%s has no integer value", d->params[i].name);
            return false;
        }
        memcpy(num, eq + 1, nl);
        num[nl] = 0;
        errno = 0;
        long x = strtol(num, &end, 10);
        if (errno || *end || x < -2147483647L || x > 2147483647L) {
            snprintf(why, len, "%s=%s is not an integer", d->params[i].name, num);
            return false;
        }
        if (seen[i]) {
            snprintf(why, len, "%s is given twice", d->params[i].name);
            return false;
        }
        seen[i] = true;
        v[i] = (int)x;
    }
    for (int i = 0; i < d->n_params; i++) {
        const clsynth_ktunable *t = &d->params[i];
        size_t x;
        switch (t->kind) {
        case CLSYNTH_K_LOCAL0: x = local[0]; break;
        case CLSYNTH_K_LOCAL1: x = local[0] ? local[1] : (size_t)v[i]; break;
        case CLSYNTH_K_LOCAL2: x = local[0] ? local[2] : (size_t)v[i]; break;
        case CLSYNTH_K_ALGO: x = (size_t)algo; break;
        default: continue;
        }
        if (x > 65536) {
            snprintf(why, len, "%s=%zu is out of range", t->name, x);
            return false;
        }
        v[i] = (int)x;
    }
    /* dimensions the descriptor has no parameter for must be 1 (or 0 = unset) */
    bool has_local[3] = { false, false, false };
    for (int i = 0; i < d->n_params; i++)
        if (d->params[i].kind >= CLSYNTH_K_LOCAL0 && d->params[i].kind <= CLSYNTH_K_LOCAL2)
            has_local[d->params[i].kind - CLSYNTH_K_LOCAL0] = true;
    for (int k = 0; k < 3; k++)
        if (!has_local[k] && local[k] > 1) {
            snprintf(why, len, "a local size in dimension %d, which %s does not tune", k, d->key);
            return false;
        }
    bool has_algo = false;
    value_of_kind(d, v, CLSYNTH_K_ALGO, &has_algo);
    if (!has_algo && algo) {
        snprintf(why, len, "algo=%d, but %s has no algorithm choice", algo, d->key);
        return false;
    }
    for (int i = 0; i < d->n_params; i++) {
        if (!clsynth_kdef_param_active(d, v, i)) {
            if (d->params[i].n > 0)
                v[i] = d->params[i].values[0]; /* the canonical value, as clsynth_kdef_decode */
            continue;
        }
        if (!clsynth_ktunable_legal(&d->params[i], v[i])) {
            snprintf(why, len, "%s=%d is not a legal value", d->params[i].name, v[i]);
            return false;
        }
    }
    return true;
}

void clsynth_kdef_describe(const clsynth_kdef *d, const int *v, char *out, size_t len)
{
    size_t used = 0;
    out[0] = 0;
    bool local_done = false;
    for (int i = 0; i < d->n_params && used < len; i++) {
        const clsynth_ktunable *p = &d->params[i];
        if (!clsynth_kdef_param_active(d, v, i))
            continue;
        int w = 0;
        if (p->kind == CLSYNTH_K_DEFINE || p->kind == CLSYNTH_K_HOST || p->kind == CLSYNTH_K_ALGO) {
            w = snprintf(out + used, len - used, "%s%s=%d", used ? " " : "", p->name, v[i]);
        } else if (!local_done) {
            char opts[256];
            size_t l[3];
            int a;
            clsynth_kdef_to_fields(d, v, opts, sizeof opts, l, &a);
            local_done = true;
            if (l[0])
                w = snprintf(out + used, len - used, "%slocal=%zux%zux%zu", used ? " " : "", l[0], l[1], l[2]);
            else
                w = snprintf(out + used, len - used, "%slocal=auto", used ? " " : "");
        }
        if (w > 0)
            used += (size_t)w < len - used ? (size_t)w : len - used - 1;
    }
    if (!out[0])
        snprintf(out, len, "default");
}

/* ------------------------------------------------------------ limits */

clsynth_klimits clsynth_klimits_of(const clsynth_ctx *ctx)
{
    clsynth_klimits l;
    l.max_wg = ctx->max_wg;
    for (int d = 0; d < 3; d++)
        l.max_item[d] = ctx->max_item[d];
    l.local_mem = ctx->local_mem;
    l.dev = &ctx->dev;
    return l;
}

bool clsynth_kdef_fits(const clsynth_kdef *d, const int *v, const void *shape, const clsynth_klimits *lim,
                       size_t local[3], size_t *local_mem, char *why, size_t len)
{
    local[0] = local[1] = local[2] = 0;
    if (d->local_size && !d->local_size(v, shape, lim, local)) {
        snprintf(why, len, "no work-group fits the limits (%zu items, %llu bytes of local memory)", lim->max_wg,
                 (unsigned long long)lim->local_mem);
        return false;
    }
    if (local[0]) {
        size_t prod = 1;
        for (int k = 0; k < 3; k++) {
            size_t l = local[k] ? local[k] : 1;
            if (l > lim->max_item[k]) {
                snprintf(why, len, "local size %zu in dimension %d exceeds the limit %zu", l, k, lim->max_item[k]);
                return false;
            }
            prod *= l;
        }
        if (prod > lim->max_wg) {
            snprintf(why, len, "work-group of %zu items exceeds the limit %zu", prod, lim->max_wg);
            return false;
        }
    }
    size_t lm = d->local_mem ? d->local_mem(v, shape, local) : 0;
    if (lm > lim->local_mem) {
        snprintf(why, len, "needs %zu bytes of local memory, the limit is %llu", lm,
                 (unsigned long long)lim->local_mem);
        return false;
    }
    if (local_mem)
        *local_mem = lm;
    return true;
}

/* ------------------------------------------------------------ misc */

int clsynth_kbench_input(clsynth_ctx *ctx, clsynth_kbench *b, const char *name, int n, int c, int h, int w,
                         unsigned seed, float scale)
{
    if ((size_t)b->n_in >= sizeof b->in / sizeof b->in[0])
        return clsynth_ctx_fail(ctx, "harness: more than %zu inputs", sizeof b->in / sizeof b->in[0]);
    clsynth_tensor *t = clsynth_tensor_new_persistent(ctx, name, n, c, h, w);
    if (!t)
        return -1;
    float *host = malloc(t->numel * sizeof *host);
    if (!host) {
        clsynth_tensor_free(ctx, t);
        return clsynth_ctx_fail(ctx, "out of host memory");
    }
    uint64_t s = 0x243f6a8885a308d3ULL ^ ((uint64_t)seed * 0x9e3779b97f4a7c15ULL);
    for (size_t i = 0; i < t->numel; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        host[i] = scale * (float)((double)(s >> 40) / 16777216.0 * 2.0 - 1.0);
    }
    int rc = clsynth_tensor_upload(ctx, t, host);
    free(host);
    if (rc) {
        clsynth_tensor_free(ctx, t);
        return -1;
    }
    b->in[b->n_in++] = t;
    return 0;
}

static void shape_key(const clsynth_kdef *d, const void *base, int n, int i, char *key, size_t len)
{
    key[0] = 0;
    if (i >= 0 && i < n && base && d->format)
        d->format((const char *)base + (size_t)i * d->shape_size, key, len);
}

const void *clsynth_kdef_test_shape(const clsynth_kdef *d, int i)
{
    return i >= 0 && i < d->n_test_shapes ? (const char *)d->test_shapes + (size_t)i * d->shape_size : NULL;
}

void clsynth_kdef_test_key(const clsynth_kdef *d, int i, char *key, size_t len)
{
    shape_key(d, d->test_shapes, d->n_test_shapes, i, key, len);
}

void clsynth_kdef_bench_key(const clsynth_kdef *d, int i, char *key, size_t len)
{
    shape_key(d, d->bench_shapes, d->n_bench_shapes, i, key, len);
}
