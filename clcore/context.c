/* Context creation, limits, error reporting. */
#include "clcore/context.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/autograd.h"
#include "clcore/clblast_util.h"
#include "clcore/ops.h"
#include "clcore/program.h"
#include "clcore/tensor.h"

#include "clcore/kconfig.h"
#include "clcore/tunedb.h"

int clsynth_ctx_fail(clsynth_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err.msg, sizeof ctx->err.msg, fmt, ap);
    va_end(ap);
    ctx->failed = true;
    return -1;
}

int clsynth_cl_fail(clsynth_ctx *ctx, const char *call, const char *kernel, cl_int code)
{
    /* `call` may be the whole expression text: keep the function name only. */
    char fn[64];
    size_t n = strcspn(call, "( ");
    if (n >= sizeof fn)
        n = sizeof fn - 1;
    memcpy(fn, call, n);
    fn[n] = 0;
    if (kernel && *kernel)
        return clsynth_ctx_fail(ctx, "%s failed (kernel %s): %s", fn, kernel, clsynth_cl_error_name(code));
    return clsynth_ctx_fail(ctx, "%s failed: %s", fn, clsynth_cl_error_name(code));
}

void clsynth_ctx_clear_error(clsynth_ctx *ctx)
{
    ctx->failed = false;
    ctx->err.msg[0] = 0;
}

void clsynth_warn(clsynth_ctx *ctx, const char *fmt, ...)
{
    if (ctx && ctx->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("clsynth: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int clsynth_finish(clsynth_ctx *ctx)
{
    CLSYNTH_CL(ctx, clFinish(ctx->queue), NULL);
    return 0;
}

/* A size from the environment: digits with an optional K or M suffix; unset,
 * empty or 0 is 0 (the device's own limit). Anything else is an error naming
 * the variable and the value. */
static int env_size(const char *name, unsigned long long *out, clsynth_err *err)
{
    *out = 0;
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    unsigned long long mul = 1;
    if (end != v && (*end == 'k' || *end == 'K'))
        mul = 1024ULL, end++;
    else if (end != v && (*end == 'm' || *end == 'M'))
        mul = 1024ULL * 1024ULL, end++;
    if (errno || end == v || *end || v[0] == '-' || x > (1ULL << 40) / mul)
        return clsynth_fail(err, "%s='%s' is not a size (digits with an optional K or M suffix, e.g. 256 or 32K; "
                                 "0 or empty for the device's own limit)", name, v);
    *out = x * mul;
    return 0;
}

void clsynth_ctx_emulate_limits(clsynth_ctx *ctx, size_t max_wg, cl_ulong local_mem)
{
    if (max_wg && max_wg < ctx->max_wg)
        ctx->max_wg = max_wg;
    for (int i = 0; i < 3; i++)
        if (ctx->max_item[i] > ctx->max_wg)
            ctx->max_item[i] = ctx->max_wg;
    if (local_mem && local_mem < ctx->local_mem)
        ctx->local_mem = local_mem;
    clsynth_kconfig_invalidate(ctx);
}

static void resolve_cache_dir(clsynth_ctx *ctx)
{
    const char *v = getenv("CLSYNTH_CACHE_DIR");
    if (v && *v) {
        snprintf(ctx->cache_dir, sizeof ctx->cache_dir, "%s", v);
        return;
    }
    v = getenv("XDG_CACHE_HOME");
    if (v && *v) {
        snprintf(ctx->cache_dir, sizeof ctx->cache_dir, "%s/clsynth", v);
        return;
    }
    v = getenv("HOME");
    snprintf(ctx->cache_dir, sizeof ctx->cache_dir, "%s/.cache/clsynth", v && *v ? v : "/tmp");
}

clsynth_ctx *clsynth_ctx_create(const char *spec, clsynth_err *err)
{
    clsynth_device_info *devs = NULL;
    int count = 0, chosen = 0;
    if (!spec)
        spec = getenv("CLSYNTH_DEVICE");
    if (clsynth_devices_list(&devs, &count, err))
        return NULL;
    if (clsynth_device_select(devs, count, spec, &chosen, err)) {
        free(devs);
        return NULL;
    }
    clsynth_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        free(devs);
        clsynth_fail(err, "out of host memory");
        return NULL;
    }
    ctx->dev = devs[chosen];
    free(devs);

    cl_int rc;
    cl_context_properties props[] = { CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->dev.platform, 0 };
    ctx->context = clCreateContext(props, 1, &ctx->dev.id, NULL, NULL, &rc);
    if (rc != CL_SUCCESS) {
        clsynth_fail(err, "clCreateContext failed on '%s': %s", ctx->dev.name, clsynth_cl_error_name(rc));
        free(ctx);
        return NULL;
    }
    ctx->queue = clCreateCommandQueue(ctx->context, ctx->dev.id, CL_QUEUE_PROFILING_ENABLE, &rc);
    if (rc != CL_SUCCESS) {
        clsynth_fail(err, "clCreateCommandQueue failed on '%s': %s", ctx->dev.name, clsynth_cl_error_name(rc));
        clReleaseContext(ctx->context);
        free(ctx);
        return NULL;
    }
    clsynth_clblast_hold();
    ctx->clblast_held = true;
    ctx->max_wg = ctx->dev.max_wg;
    for (int i = 0; i < 3; i++)
        ctx->max_item[i] = ctx->dev.max_item[i];
    ctx->local_mem = ctx->dev.local_mem;
    unsigned long long env_wg, env_lmem;
    if (env_size("CLSYNTH_MAX_WG", &env_wg, err) || env_size("CLSYNTH_MAX_LOCAL_MEM", &env_lmem, err)) {
        clsynth_ctx_free(ctx);
        return NULL;
    }
    clsynth_ctx_emulate_limits(ctx, (size_t)env_wg, env_lmem);
    unsigned long long env_col;
    if (env_size("CLSYNTH_CONV_COL_BYTES", &env_col, err)) {
        clsynth_ctx_free(ctx);
        return NULL;
    }
    ctx->conv_col_bytes = (size_t)env_col;
    resolve_cache_dir(ctx);
    /* NVIDIA's driver keeps its own compiled-kernel cache; ours gains little there. */
    ctx->program_cache_on = strcmp(clsynth_device_class(&ctx->dev), "nvidia") != 0;
    const char *pc = getenv("CLSYNTH_PROGRAM_CACHE");
    if (pc && *pc)
        ctx->program_cache_on = strcmp(pc, "0") != 0;
    ctx->quiet = getenv("CLSYNTH_QUIET") != NULL;
    const char *prof = getenv("CLSYNTH_PROFILE");
    ctx->profile_launches = prof && *prof && strcmp(prof, "0") != 0;
    if (clsynth_pool_create(ctx) || clsynth_tape_create(ctx)) {
        clsynth_fail(err, "%s", ctx->err.msg);
        clsynth_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

void clsynth_ctx_free(clsynth_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->queue)
        clFinish(ctx->queue);
    const char *prof = getenv("CLSYNTH_PROFILE");
    if (prof && *prof && strcmp(prof, "0") != 0)
        clsynth_kprofile_print(ctx, stderr);
    clsynth_kprofile_free(ctx);
    clsynth_tape_destroy(ctx);
    clsynth_release_activations(ctx);
    clsynth_pool_destroy(ctx);
    clsynth_program_cache_free(ctx);
    clsynth_tunedb_free(ctx);
    clsynth_kconfig_free(ctx);
    clsynth_conv_dnnl_free(ctx);
    /* the last context clears CLBlast's program cache before the programs'
     * context goes: nothing is left to release at exit (clcore/clblast_util.h) */
    if (ctx->clblast_held) {
        int st = clsynth_clblast_unhold();
        if (st && !ctx->quiet)
            fprintf(stderr, "clsynth: CLBlastClearCache failed: %s\n", clsynth_clblast_status_name(st));
    }
    if (ctx->queue)
        clReleaseCommandQueue(ctx->queue);
    if (ctx->context)
        clReleaseContext(ctx->context);
    free(ctx);
}
