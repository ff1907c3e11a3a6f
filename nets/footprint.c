/* Device memory of a training step, estimated before the first one: a huge
 * --crop_size must be an error naming the option, not an abort inside a
 * driver that allocates lazily (PoCL asserts when a buffer cannot be backed).
 *
 * Estimating by formula would mean a second description of every network
 * variant. Instead one step of a throwaway model of the same variant runs at
 * the smallest legal image size (batch 1 or 2), and the pool's peak is scaled:
 *   static (parameters, gradients, Adam moments, buffers)  x params_real / params_ref
 *   activations (peak - static)                            x (N H W) / (h w)
 *   the largest block, scaled the same way: room for CLBlast's padded operand
 *   copies, which it allocates outside the pool.
 * Column buffers of im2col are capped at 64 MB per conv, so at large sizes
 * the linear scaling errs on the high side. */
#include "nets/footprint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/autograd.h"
#include "clcore/tensor.h"
#include "nets/model.h"

/* Reference configuration `attempt` (0, 1, ...): the smallest crops the
 * variant accepts (multiples of 2^num_up whose height under aspect_ratio is
 * legal too), with a batch of 2 at the very smallest (batch norm needs more
 * than one value per channel, and the lowest level is 1x1 there). Returns 0
 * when there are no more attempts. */
static int reference_options(const clsynth_options *o, int attempt, clsynth_options *ref)
{
    static const int mult[] = { 1, 2, 2, 4 }, batch[] = { 2, 1, 2, 1 };
    if (attempt >= (int)(sizeof mult / sizeof mult[0]))
        return 0;
    *ref = *o;
    int unit = 1 << clsynth_options_num_up(o);
    for (int k = mult[attempt]; k <= 16; k++) {
        ref->batchSize = batch[attempt];
        ref->data.crop_size = ref->data.load_size = k * unit;
        int h, w;
        clsynth_options_image_size(ref, &h, &w);
        clsynth_err ignored;
        if (h >= unit && clsynth_options_validate(ref, &ignored) == 0)
            return 1;
    }
    return 0;
}

static int reference_step(clsynth_ctx *ctx, const clsynth_options *ref, size_t *static_bytes, size_t *peak,
                          size_t *largest, size_t *params, clsynth_err *err)
{
    int h, w, n = ref->batchSize;
    clsynth_options_image_size(ref, &h, &w);
    size_t hw = (size_t)h * w;
    float *zeros = calloc(3 * hw * (size_t)n, sizeof *zeros);
    if (!zeros)
        return clsynth_fail(err, "out of host memory");
    clsynth_pool_trim(ctx);
    size_t before = clsynth_pool_get_stats(ctx).bytes_reserved;
    clsynth_model *m = clsynth_model_create(ctx, ref, err);
    int rc = -1;
    if (!m)
        goto done;
    size_t pg, pd, pe;
    clsynth_model_param_counts(m, &pg, &pd, &pe);
    *params = pg + pd + pe;
    clsynth_pool_stats s = clsynth_pool_get_stats(ctx);
    *static_bytes = s.bytes_reserved - before;
    clsynth_pool_reset_peak(ctx);
    /* label 0 everywhere, no edges, black images: the shapes are what count */
    clsynth_tensor *labels = clsynth_tensor_from_host(ctx, "labels", n, 1, h, w, zeros);
    clsynth_tensor *edges =
        ref->data.no_instance ? NULL : clsynth_tensor_from_host(ctx, "edges", n, 1, h, w, zeros);
    clsynth_tensor *real = clsynth_tensor_from_host(ctx, "real", n, 3, h, w, zeros);
    clsynth_tensor *seg = ctx->failed ? NULL : clsynth_model_seg(ctx, m, labels, edges);
    clsynth_losses l;
    if (!seg || !real || clsynth_train_step(ctx, m, seg, real, &l)) {
        clsynth_fail(err, "memory estimate: a training step at %dx%d, batch %d failed: %s", h, w, n, ctx->err.msg);
        clsynth_ctx_clear_error(ctx);
        goto done;
    }
    s = clsynth_pool_get_stats(ctx);
    *peak = s.peak_bytes_reserved - before;
    *largest = s.largest_block;
    rc = 0;
done:
    clsynth_release_activations(ctx);
    clsynth_model_free(ctx, m);
    clsynth_pool_trim(ctx);
    free(zeros);
    return rc;
}

int clsynth_step_memory_estimate(clsynth_ctx *ctx, const clsynth_options *o, clsynth_step_memory *est,
                                 clsynth_err *err)
{
    memset(est, 0, sizeof *est);
    clsynth_options *ref = malloc(sizeof *ref);
    if (!ref)
        return clsynth_fail(err, "out of host memory");
    int rc = -1, h, w, rh = 0, rw = 0;
    size_t static_ref = 0, peak = 0, largest = 0, params_ref = 0, g = 0, d = 0, e = 0;
    clsynth_options_image_size(o, &h, &w);
    /* the first reference configuration whose step runs */
    int attempt = 0, ok = 0;
    while (!ok && reference_options(o, attempt++, ref))
        ok = reference_step(ctx, ref, &static_ref, &peak, &largest, &params_ref, err) == 0;
    if (!ok) {
        clsynth_wrap(err, "memory estimate: no reference size runs");
        goto done;
    }
    if (clsynth_model_count_params(ctx, o, &g, &d, &e, err))
        goto done;
    clsynth_options_image_size(ref, &rh, &rw);
    est->ref_h = rh;
    est->ref_w = rw;
    est->ref_batch = ref->batchSize;
    est->scale = (double)o->batchSize * h * w / ((double)ref->batchSize * rh * rw);
    double act = peak > static_ref ? (double)(peak - static_ref) : 0.0;
    double stat = params_ref ? (double)static_ref * (double)(g + d + e) / (double)params_ref : (double)static_ref;
    est->ref_bytes = peak;
    est->bytes = stat + act * est->scale + (double)largest * est->scale;
    rc = 0;
done:
    free(ref);
    return rc;
}

int clsynth_step_memory_check(clsynth_ctx *ctx, const clsynth_options *o, clsynth_step_memory *est,
                              clsynth_err *err)
{
    if (clsynth_step_memory_estimate(ctx, o, est, err))
        return -1;
    double global = (double)ctx->dev.global_mem;
    if (global <= 0 || est->bytes <= global)
        return 0;
    int h, w;
    clsynth_options_image_size(o, &h, &w);
    return clsynth_fail(err, "a training step at %dx%d (--crop_size %d), batch %d needs an estimated %.2f GiB of "
                             "device memory, but '%s' has %.2f GiB (measured %.1f MiB at %dx%d, batch %d, scaled by "
                             "%.0fx): lower --crop_size or --batchSize",
                        h, w, o->data.crop_size, o->batchSize, est->bytes / (1024.0 * 1024 * 1024), ctx->dev.name,
                        global / (1024.0 * 1024 * 1024), est->ref_bytes / (1024.0 * 1024), est->ref_h, est->ref_w,
                        est->ref_batch, est->scale);
}
