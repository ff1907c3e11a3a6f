/* The evaluation segmenter (see segmenter.h): a small U-Net built from the
 * differentiable ops of clcore/ops.h, one parameter group "S". */
#include "nets/segmenter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/autograd.h"
#include "clcore/ops.h"
#include "io/checkpoint.h"
#include "io/loader.h"

#define SEG_BN_MOMENTUM 0.1f
#define SEG_BN_EPS 1e-5f

/* 3x3 conv (no bias) -> batch norm (affine) -> ReLU. */
typedef struct seg_cbr {
    clsynth_tensor *w;             /* (cout, cin, 3, 3) */
    clsynth_tensor *gamma, *beta;  /* (1, cout, 1, 1) */
    clsynth_tensor *rmean, *rvar;  /* (1, cout, 1, 1) buffers */
    int stride;
} seg_cbr;

enum { L_E0A, L_E0B, L_E1A, L_E1B, L_E2A, L_E2B, L_E3A, L_E3B, L_D2, L_D1, L_D0, L_COUNT };

static const char *layer_names[L_COUNT] = { "enc0a", "enc0b", "enc1a", "enc1b", "enc2a", "enc2b",
                                            "enc3a", "enc3b", "dec2", "dec1", "dec0" };

struct clsynth_segmenter {
    clsynth_ctx *ctx;
    clsynth_segmenter_cfg cfg;
    clsynth_param_group *g;
    seg_cbr l[L_COUNT];
    clsynth_tensor *cls_w, *cls_b; /* (K, nf, 1, 1), (1, K, 1, 1) */
    float *label_f;                /* host scratch for float labels */
    size_t label_cap;
    float *feat_host;              /* host scratch for enc3 */
    size_t feat_cap;
};

void clsynth_segmenter_cfg_defaults(clsynth_segmenter_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->label_nc = 0;
    c->nf = 16;
    c->ignore = 255;
    c->lr = 1e-3f;
}

static int declare_cbr(clsynth_segmenter *s, int idx, int cin, int cout, int stride)
{
    clsynth_ctx *ctx = s->ctx;
    char name[64];
    seg_cbr *l = &s->l[idx];
    l->stride = stride;
    snprintf(name, sizeof name, "%s.w", layer_names[idx]);
    l->w = clsynth_group_param(ctx, s->g, name, cout, cin, 3, 3);
    snprintf(name, sizeof name, "%s.gamma", layer_names[idx]);
    l->gamma = clsynth_group_param(ctx, s->g, name, 1, cout, 1, 1);
    snprintf(name, sizeof name, "%s.beta", layer_names[idx]);
    l->beta = clsynth_group_param(ctx, s->g, name, 1, cout, 1, 1);
    snprintf(name, sizeof name, "%s.running_mean", layer_names[idx]);
    l->rmean = clsynth_group_buffer(ctx, s->g, name, 1, cout, 1, 1);
    snprintf(name, sizeof name, "%s.running_var", layer_names[idx]);
    l->rvar = clsynth_group_buffer(ctx, s->g, name, 1, cout, 1, 1);
    return ctx->failed ? -1 : 0;
}

static clsynth_tensor *cbr_forward(clsynth_segmenter *s, const seg_cbr *l, clsynth_tensor *x, bool training)
{
    clsynth_ctx *ctx = s->ctx;
    clsynth_tensor *y = clsynth_conv2d(ctx, x, l->w, NULL, l->stride, 1);
    y = clsynth_batch_norm(ctx, y, l->gamma, l->beta, l->rmean, l->rvar, training, SEG_BN_MOMENTUM, SEG_BN_EPS);
    return clsynth_relu(ctx, y);
}

clsynth_segmenter *clsynth_segmenter_create(clsynth_ctx *ctx, const clsynth_segmenter_cfg *cfg, uint64_t seed)
{
    if (!ctx || ctx->failed)
        return NULL;
    if (cfg->label_nc < 2 || cfg->label_nc > 1024) {
        clsynth_ctx_fail(ctx, "segmenter: label_nc %d (need 2..1024)", cfg->label_nc);
        return NULL;
    }
    if (cfg->nf < 1 || cfg->nf > 256) {
        clsynth_ctx_fail(ctx, "segmenter: nf %d (need 1..256)", cfg->nf);
        return NULL;
    }
    clsynth_segmenter *s = calloc(1, sizeof *s);
    if (!s) {
        clsynth_ctx_fail(ctx, "segmenter: out of memory");
        return NULL;
    }
    s->ctx = ctx;
    s->cfg = *cfg;
    const int nf = cfg->nf, K = cfg->label_nc;
    s->g = clsynth_group_new(ctx, "S");
    if (!s->g)
        goto fail;
    s->g->lr = cfg->lr;
    s->g->beta1 = 0.9f;
    s->g->beta2 = 0.999f;
    if (declare_cbr(s, L_E0A, 3, nf, 1) || declare_cbr(s, L_E0B, nf, nf, 1) ||
        declare_cbr(s, L_E1A, nf, 2 * nf, 2) || declare_cbr(s, L_E1B, 2 * nf, 2 * nf, 1) ||
        declare_cbr(s, L_E2A, 2 * nf, 4 * nf, 2) || declare_cbr(s, L_E2B, 4 * nf, 4 * nf, 1) ||
        declare_cbr(s, L_E3A, 4 * nf, 8 * nf, 2) || declare_cbr(s, L_E3B, 8 * nf, 8 * nf, 1) ||
        declare_cbr(s, L_D2, 12 * nf, 4 * nf, 1) || declare_cbr(s, L_D1, 6 * nf, 2 * nf, 1) ||
        declare_cbr(s, L_D0, 3 * nf, nf, 1))
        goto fail;
    s->cls_w = clsynth_group_param(ctx, s->g, "cls.w", K, nf, 1, 1);
    s->cls_b = clsynth_group_param(ctx, s->g, "cls.b", 1, K, 1, 1);
    if (ctx->failed || clsynth_group_finalize(ctx, s->g))
        goto fail;
    /* finalize zero-fills: weights get xavier, gamma and running_var 1. */
    for (int i = 0; i < L_COUNT; i++) {
        if (clsynth_init_xavier(ctx, s->l[i].w, sqrtf(2.0f), seed, (uint64_t)i + 1) ||
            clsynth_tensor_fill(ctx, s->l[i].gamma, 1.0f) || clsynth_tensor_fill(ctx, s->l[i].rvar, 1.0f))
            goto fail;
    }
    if (clsynth_init_xavier(ctx, s->cls_w, 1.0f, seed, 100))
        goto fail;
    return s;
fail:
    clsynth_segmenter_free(s);
    return NULL;
}

void clsynth_segmenter_free(clsynth_segmenter *s)
{
    if (!s)
        return;
    if (s->g)
        clsynth_group_free(s->ctx, s->g);
    free(s->label_f);
    free(s->feat_host);
    free(s);
}

const clsynth_segmenter_cfg *clsynth_segmenter_config(const clsynth_segmenter *s) { return &s->cfg; }
clsynth_param_group *clsynth_segmenter_group(clsynth_segmenter *s) { return s->g; }
int clsynth_segmenter_feature_dim(const clsynth_segmenter *s) { return 8 * s->cfg.nf; }
size_t clsynth_segmenter_num_params(const clsynth_segmenter *s) { return s->g->total; }
long clsynth_segmenter_steps(const clsynth_segmenter *s) { return s->g->step; }

clsynth_tensor *clsynth_segmenter_forward(clsynth_segmenter *s, clsynth_tensor *image, bool training,
                                          clsynth_tensor **features)
{
    clsynth_ctx *ctx = s->ctx;
    if (ctx->failed || !image)
        return NULL;
    if (image->c != 3 || image->h % 8 || image->w % 8 || image->h < 8 || image->w < 8) {
        char b[128];
        clsynth_ctx_fail(ctx, "segmenter: input %s must be (N, 3, H, W) with H and W multiples of 8",
                         clsynth_tensor_describe(image, b, sizeof b));
        return NULL;
    }
    clsynth_tensor *e0 = cbr_forward(s, &s->l[L_E0B], cbr_forward(s, &s->l[L_E0A], image, training), training);
    clsynth_tensor *e1 = cbr_forward(s, &s->l[L_E1B], cbr_forward(s, &s->l[L_E1A], e0, training), training);
    clsynth_tensor *e2 = cbr_forward(s, &s->l[L_E2B], cbr_forward(s, &s->l[L_E2A], e1, training), training);
    clsynth_tensor *e3 = cbr_forward(s, &s->l[L_E3B], cbr_forward(s, &s->l[L_E3A], e2, training), training);
    clsynth_tensor *c2[2] = { clsynth_upsample_bilinear2x(ctx, e3), e2 };
    clsynth_tensor *d2 = cbr_forward(s, &s->l[L_D2], clsynth_concat(ctx, c2, 2), training);
    clsynth_tensor *c1[2] = { clsynth_upsample_bilinear2x(ctx, d2), e1 };
    clsynth_tensor *d1 = cbr_forward(s, &s->l[L_D1], clsynth_concat(ctx, c1, 2), training);
    clsynth_tensor *c0[2] = { clsynth_upsample_bilinear2x(ctx, d1), e0 };
    clsynth_tensor *d0 = cbr_forward(s, &s->l[L_D0], clsynth_concat(ctx, c0, 2), training);
    clsynth_tensor *logits = clsynth_conv2d(ctx, d0, s->cls_w, s->cls_b, 1, 0); /* (N, K, H, W) */
    if (features)
        *features = e3;
    return ctx->failed ? NULL : logits;
}

static float *labels_to_float(clsynth_segmenter *s, const int32_t *label, size_t n)
{
    if (n > s->label_cap) {
        float *p = realloc(s->label_f, n * sizeof *p);
        if (!p) {
            clsynth_ctx_fail(s->ctx, "segmenter: out of host memory for %zu labels", n);
            return NULL;
        }
        s->label_f = p;
        s->label_cap = n;
    }
    for (size_t i = 0; i < n; i++)
        s->label_f[i] = (float)label[i];
    return s->label_f;
}

int clsynth_segmenter_train_step(clsynth_segmenter *s, const float *image, const int32_t *label, int n,
                                 int h, int w, float *loss)
{
    clsynth_ctx *ctx = s->ctx;
    if (ctx->failed)
        return -1;
    float *lf = labels_to_float(s, label, (size_t)n * h * w);
    if (!lf)
        return -1;
    clsynth_tensor *x = clsynth_tensor_from_host(ctx, "segmenter.image", n, 3, h, w, image); /* (N, 3, H, W) */
    clsynth_tensor *y = clsynth_tensor_from_host(ctx, "segmenter.label", n, 1, h, w, lf);    /* (N, 1, H, W) */
    clsynth_tensor *logits = clsynth_segmenter_forward(s, x, true, NULL);
    clsynth_tensor *l = clsynth_cross_entropy(ctx, logits, y, s->cfg.ignore);
    if (!l) {
        clsynth_tape_clear(ctx);
        clsynth_release_activations(ctx);
        return -1;
    }
    if (loss && clsynth_scalar(ctx, l, loss))
        return -1;
    if (clsynth_group_zero_grad(ctx, s->g) || clsynth_backward(ctx, l) || clsynth_adam_step(ctx, s->g))
        return -1;
    return 0;
}

int clsynth_segmenter_predict(clsynth_segmenter *s, const float *image, int n, int h, int w, float *logits,
                              float *features)
{
    clsynth_ctx *ctx = s->ctx;
    if (ctx->failed)
        return -1;
    int rc = -1;
    clsynth_no_grad_begin(ctx);
    clsynth_tensor *x = clsynth_tensor_from_host(ctx, "segmenter.image", n, 3, h, w, image);
    clsynth_tensor *feat = NULL;
    clsynth_tensor *out = clsynth_segmenter_forward(s, x, false, &feat);
    if (!out)
        goto done;
    if (logits && clsynth_tensor_download(ctx, out, logits))
        goto done;
    if (features) {
        /* Spatial mean of enc3 on the host: (N, 8nf, h/8, w/8) -> (N, 8nf). */
        size_t need = feat->numel;
        if (need > s->feat_cap) {
            float *p = realloc(s->feat_host, need * sizeof *p);
            if (!p) {
                clsynth_ctx_fail(ctx, "segmenter: out of host memory for features");
                goto done;
            }
            s->feat_host = p;
            s->feat_cap = need;
        }
        if (clsynth_tensor_download(ctx, feat, s->feat_host))
            goto done;
        const size_t hw = CLSYNTH_HW(feat);
        for (int i = 0; i < feat->n * feat->c; i++) {
            double sum = 0.0;
            for (size_t k = 0; k < hw; k++)
                sum += s->feat_host[(size_t)i * hw + k];
            features[i] = (float)(sum / (double)hw);
        }
    }
    rc = 0;
done:
    clsynth_no_grad_end(ctx);
    clsynth_release_activations(ctx);
    return rc;
}

int clsynth_segmenter_score_dataset(clsynth_segmenter *s, const clsynth_dataset *ds, int batch,
                                    int max_images, clsynth_confusion *conf, clsynth_feature_stats *feats)
{
    clsynth_ctx *ctx = s->ctx;
    if (ctx->failed)
        return -1;
    if (conf->k != s->cfg.label_nc)
        return clsynth_ctx_fail(ctx, "segmenter: confusion matrix has %d classes, the segmenter %d", conf->k,
                                s->cfg.label_nc);
    if (feats && feats->dim != clsynth_segmenter_feature_dim(s))
        return clsynth_ctx_fail(ctx, "segmenter: feature statistics of dimension %d, the segmenter has %d",
                                feats->dim, clsynth_segmenter_feature_dim(s));
    clsynth_loader_opts lo = { .batch_size = batch < 1 ? 1 : batch, .seed = 0, .shuffle = 0, .prefetch = 2 };
    clsynth_err err;
    clsynth_loader *l = clsynth_loader_create(ds, &lo, &err);
    if (!l)
        return clsynth_ctx_fail(ctx, "segmenter: %s", err.msg);
    float *logits = NULL, *f = NULL;
    size_t cap = 0;
    int done = 0, rc = 0;
    const clsynth_batch *b;
    while (max_images <= 0 || done < max_images) {
        int got = clsynth_loader_next(l, &b, &err);
        if (got < 0) {
            rc = clsynth_ctx_fail(ctx, "segmenter: %s", err.msg);
            break;
        }
        if (got == 0)
            break;
        int n = b->n;
        if (max_images > 0 && n > max_images - done)
            n = max_images - done;
        size_t need = (size_t)n * s->cfg.label_nc * b->h * b->w;
        if (need > cap) {
            free(logits);
            free(f);
            logits = malloc(need * sizeof *logits);
            f = malloc((size_t)n * clsynth_segmenter_feature_dim(s) * sizeof *f);
            cap = need;
            if (!logits || !f) {
                rc = clsynth_ctx_fail(ctx, "segmenter: out of host memory for a batch of logits");
                break;
            }
        }
        if (clsynth_segmenter_predict(s, b->image, n, b->h, b->w, logits, feats ? f : NULL)) {
            rc = -1;
            break;
        }
        const size_t hw = (size_t)b->h * b->w;
        for (int i = 0; i < n && !rc; i++)
            if (clsynth_confusion_add_logits(conf, b->label + i * hw, logits + (size_t)i * s->cfg.label_nc * hw,
                                             b->h, b->w, &err))
                rc = clsynth_ctx_fail(ctx, "segmenter: sample %d: %s", (int)b->index[i], err.msg);
        if (rc)
            break;
        if (feats)
            clsynth_feature_stats_add(feats, f, n);
        done += n;
    }
    clsynth_loader_free(l);
    free(logits);
    free(f);
    return rc ? -1 : done;
}

/* ---- checkpoints ---- */

int clsynth_segmenter_save(clsynth_segmenter *s, const char *path, const char *extra_config)
{
    clsynth_ctx *ctx = s->ctx;
    if (ctx->failed)
        return -1;
    clsynth_param_group *g = s->g;
    int nt = g->n_params + g->n_buffers + 2;
    clsynth_ckpt_tensor_in *ts = calloc((size_t)nt, sizeof *ts);
    float **data = calloc((size_t)nt, sizeof *data);
    int rc = -1;
    if (!ts || !data) {
        clsynth_ctx_fail(ctx, "segmenter save: out of memory");
        goto done;
    }
    for (int i = 0; i < nt; i++) {
        clsynth_tensor *t = i < g->n_params ? g->params[i]
                            : i < g->n_params + g->n_buffers ? g->buffers[i - g->n_params]
                            : i == nt - 2 ? g->adam_m : g->adam_v;
        data[i] = malloc(t->numel * sizeof(float));
        if (!data[i]) {
            clsynth_ctx_fail(ctx, "segmenter save: out of memory for %s", t->name);
            goto done;
        }
        if (clsynth_tensor_download(ctx, t, data[i]))
            goto done;
        ts[i].name = i < nt - 2 ? t->name : i == nt - 2 ? "S.adam_m" : "S.adam_v";
        ts[i].tag = i < g->n_params ? "param" : i < nt - 2 ? "buffer" : i == nt - 2 ? "adam_m" : "adam_v";
        ts[i].ndim = 4;
        ts[i].shape[0] = t->n;
        ts[i].shape[1] = t->c;
        ts[i].shape[2] = t->h;
        ts[i].shape[3] = t->w;
        ts[i].data = data[i];
    }
    char config[1024];
    snprintf(config, sizeof config, "kind=segmenter\nlabel_nc=%d\nnf=%d\nignore=%d\nlr=%.9g\n%s",
             s->cfg.label_nc, s->cfg.nf, s->cfg.ignore, (double)s->cfg.lr, extra_config ? extra_config : "");
    const uint64_t rng[4] = { 0, 0, 0, 0 };
    clsynth_err err;
    if (clsynth_checkpoint_save(path, config, (uint64_t)g->step, rng, ts, nt, &err)) {
        clsynth_ctx_fail(ctx, "segmenter save: %s", err.msg);
        goto done;
    }
    rc = 0;
done:
    if (data)
        for (int i = 0; i < nt; i++)
            free(data[i]);
    free(data);
    free(ts);
    return rc;
}

static int config_int(const clsynth_checkpoint *ck, const char *key, int *out)
{
    char buf[64];
    if (clsynth_checkpoint_config_get(ck, key, buf, sizeof buf))
        return -1;
    char *end;
    long v = strtol(buf, &end, 10);
    if (end == buf)
        return -1;
    *out = (int)v;
    return 0;
}

static int load_tensor(clsynth_ctx *ctx, const clsynth_checkpoint *ck, const char *name, clsynth_tensor *t)
{
    const int shape[4] = { t->n, t->c, t->h, t->w };
    const clsynth_ckpt_tensor *ct;
    clsynth_err err;
    if (clsynth_checkpoint_expect(ck, name, 4, shape, &ct, &err))
        return clsynth_ctx_fail(ctx, "segmenter load: %s", err.msg);
    return clsynth_tensor_upload(ctx, t, ct->data);
}

clsynth_segmenter *clsynth_segmenter_load(clsynth_ctx *ctx, const char *path)
{
    if (!ctx || ctx->failed)
        return NULL;
    clsynth_err err;
    clsynth_checkpoint *ck = clsynth_checkpoint_load(path, &err);
    if (!ck) {
        clsynth_ctx_fail(ctx, "segmenter load: %s", err.msg);
        return NULL;
    }
    clsynth_segmenter *s = NULL;
    char kind[32], lr[64];
    clsynth_segmenter_cfg cfg;
    clsynth_segmenter_cfg_defaults(&cfg);
    if (clsynth_checkpoint_config_get(ck, "kind", kind, sizeof kind) || strcmp(kind, "segmenter") != 0 ||
        config_int(ck, "label_nc", &cfg.label_nc) || config_int(ck, "nf", &cfg.nf) ||
        config_int(ck, "ignore", &cfg.ignore)) {
        clsynth_ctx_fail(ctx, "segmenter load: %s is not a segmenter checkpoint (config lacks kind=segmenter, "
                         "label_nc, nf or ignore)", path);
        goto done;
    }
    if (!clsynth_checkpoint_config_get(ck, "lr", lr, sizeof lr))
        cfg.lr = strtof(lr, NULL);
    s = clsynth_segmenter_create(ctx, &cfg, 0);
    if (!s)
        goto done;
    clsynth_param_group *g = s->g;
    for (int i = 0; i < g->n_params; i++)
        if (load_tensor(ctx, ck, g->params[i]->name, g->params[i]))
            goto fail;
    for (int i = 0; i < g->n_buffers; i++)
        if (load_tensor(ctx, ck, g->buffers[i]->name, g->buffers[i]))
            goto fail;
    if (load_tensor(ctx, ck, "S.adam_m", g->adam_m) || load_tensor(ctx, ck, "S.adam_v", g->adam_v))
        goto fail;
    g->step = (long)ck->step;
    goto done;
fail:
    clsynth_segmenter_free(s);
    s = NULL;
done:
    clsynth_checkpoint_free(ck);
    return s;
}
