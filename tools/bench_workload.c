/* Synthetic model workload for tune and bench (see tools/bench_workload.h). */
#include "tools/bench_workload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/autograd.h"
#include "clcore/tunedb.h"

static clsynth_tensor *host_tensor(clsynth_ctx *ctx, const char *name, int n, int c, int h, int w, int kind,
                                   int classes, uint64_t seed)
{
    clsynth_tensor *t = clsynth_tensor_new_persistent(ctx, name, n, c, h, w);
    if (!t)
        return NULL;
    float *x = malloc(t->numel * sizeof *x);
    if (!x) {
        clsynth_tensor_free(ctx, t);
        clsynth_ctx_fail(ctx, "out of host memory");
        return NULL;
    }
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < t->numel; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(s >> 40) / 16777216.0;
        /* labels: blocks of 8x8 pixels share a class, like segments */
        if (kind == 0) {
            size_t px = i % (size_t)w, py = (i / (size_t)w) % (size_t)h, img = i / ((size_t)w * h);
            uint64_t b = (img * 1315423911u) ^ ((py / 8) * 2654435761u) ^ ((px / 8) * 97u);
            x[i] = (float)(b % (uint64_t)classes);
        } else if (kind == 1) {
            x[i] = u < 0.1 ? 1.0f : 0.0f;
        } else {
            x[i] = (float)(2.0 * u - 1.0);
        }
    }
    int rc = clsynth_tensor_upload(ctx, t, x);
    free(x);
    if (rc) {
        clsynth_tensor_free(ctx, t);
        return NULL;
    }
    return t;
}

int clsynth_workload_init(clsynth_ctx *ctx, int argc, char **argv, clsynth_workload *wl, clsynth_err *err)
{
    memset(wl, 0, sizeof *wl);
    clsynth_options_defaults(&wl->opt);
    if (clsynth_options_parse(&wl->opt, argc, argv, err))
        return -1;
    clsynth_data_opts *d = &wl->opt.data;
    if (d->label_nc <= 0) {
        const char *m = d->dataset_mode;
        d->label_nc = strcmp(m, "ade20k") == 0 ? 150 : strcmp(m, "coco") == 0 ? 182 : 35;
    }
    if (d->crop_size <= 0)
        d->crop_size = 256;
    if (d->aspect_ratio <= 0)
        d->aspect_ratio = 1.0f;
    if (clsynth_options_validate(&wl->opt, err))
        return -1;
    wl->m = clsynth_model_create(ctx, &wl->opt, err);
    if (!wl->m)
        return -1;
    clsynth_options_image_size(&wl->opt, &wl->h, &wl->w);
    wl->n = wl->opt.batchSize > 0 ? wl->opt.batchSize : 1;
    wl->labels = host_tensor(ctx, "bench.labels", wl->n, 1, wl->h, wl->w, 0, d->label_nc, 1);
    if (!d->no_instance)
        wl->edges = host_tensor(ctx, "bench.edges", wl->n, 1, wl->h, wl->w, 1, 0, 2);
    wl->real = host_tensor(ctx, "bench.real", wl->n, 3, wl->h, wl->w, 2, 0, 3);
    if (!wl->labels || !wl->real || (!d->no_instance && !wl->edges)) {
        clsynth_fail(err, "%s", ctx->err.msg);
        clsynth_workload_free(ctx, wl);
        return -1;
    }
    return 0;
}

void clsynth_workload_free(clsynth_ctx *ctx, clsynth_workload *wl)
{
    clsynth_tensor_free(ctx, wl->labels);
    clsynth_tensor_free(ctx, wl->edges);
    clsynth_tensor_free(ctx, wl->real);
    if (wl->m)
        clsynth_model_free(ctx, wl->m);
    memset(wl, 0, sizeof *wl);
}

int clsynth_workload_train_step(clsynth_ctx *ctx, clsynth_workload *wl)
{
    clsynth_tensor *seg = clsynth_model_seg(ctx, wl->m, wl->labels, wl->edges);
    clsynth_losses losses;
    if (!seg || clsynth_train_step(ctx, wl->m, seg, wl->real, &losses))
        return -1;
    return clsynth_finish(ctx);
}

int clsynth_workload_infer(clsynth_ctx *ctx, clsynth_workload *wl)
{
    clsynth_no_grad_begin(ctx);
    clsynth_tensor *seg = clsynth_model_seg(ctx, wl->m, wl->labels, wl->edges);
    clsynth_tensor *y = seg ? clsynth_model_generate(ctx, wl->m, seg, NULL) : NULL;
    clsynth_no_grad_end(ctx);
    int rc = y ? clsynth_finish(ctx) : -1;
    clsynth_tape_clear(ctx);
    clsynth_release_activations(ctx);
    return rc;
}

int clsynth_workload_record(clsynth_ctx *ctx, clsynth_workload *wl)
{
    clsynth_tunedb_recorded_clear(ctx);
    clsynth_tunedb_record(ctx, true);
    int rc = clsynth_workload_train_step(ctx, wl);
    if (rc == 0)
        rc = clsynth_workload_infer(ctx, wl);
    clsynth_tunedb_record(ctx, false);
    return rc;
}

int clsynth_parse_emulate(const char *spec, size_t *wg, unsigned long long *local)
{
    *wg = 0;
    *local = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return -1;
        *eq = 0;
        char *end = NULL;
        unsigned long long v = strtoull(eq + 1, &end, 10);
        if (end == eq + 1 || v == 0)
            return -1;
        if (*end == 'k' || *end == 'K')
            v *= 1024, end++;
        else if (*end == 'm' || *end == 'M')
            v *= 1024 * 1024, end++;
        if (*end)
            return -1;
        if (strcmp(tok, "wg") == 0)
            *wg = (size_t)v;
        else if (strcmp(tok, "local") == 0)
            *local = v;
        else
            return -1;
    }
    return 0;
}
