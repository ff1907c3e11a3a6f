/* VGG19 up to relu5_1 with frozen weights from a clsynth checkpoint file. */
#include "nets/vgg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/autograd.h"
#include "clcore/ops.h"
#include "clcore/params.h"
#include "io/checkpoint.h"
#include "nets/layers.h"

static const struct {
    const char *name;
    int cin, cout;
    int pool_before; /* 2×2 max pool before this conv */
    int feature;     /* index of the feature taken after its ReLU, or -1 */
} LAYERS[CLSYNTH_VGG_LAYERS] = {
    { "conv1_1", 3, 64, 0, 0 },     { "conv1_2", 64, 64, 0, -1 },   { "conv2_1", 64, 128, 1, 1 },
    { "conv2_2", 128, 128, 0, -1 }, { "conv3_1", 128, 256, 1, 2 },  { "conv3_2", 256, 256, 0, -1 },
    { "conv3_3", 256, 256, 0, -1 }, { "conv3_4", 256, 256, 0, -1 }, { "conv4_1", 256, 512, 1, 3 },
    { "conv4_2", 512, 512, 0, -1 }, { "conv4_3", 512, 512, 0, -1 }, { "conv4_4", 512, 512, 0, -1 },
    { "conv5_1", 512, 512, 1, 4 },
};
static const float FEAT_WEIGHTS[CLSYNTH_VGG_FEATS] = { 1.0f / 32, 1.0f / 16, 1.0f / 8, 1.0f / 4, 1.0f };

struct clsynth_vgg {
    clsynth_param_group *g;
    clsynth_tensor *w[CLSYNTH_VGG_LAYERS], *b[CLSYNTH_VGG_LAYERS];
    clsynth_tensor *scale, *shift; /* (1, 3, 1, 1): x' = x · scale + shift */
};

void clsynth_vgg_layer(int i, const char **name, int *cin, int *cout)
{
    *name = LAYERS[i].name;
    *cin = LAYERS[i].cin;
    *cout = LAYERS[i].cout;
}

void clsynth_vgg_free(clsynth_ctx *ctx, clsynth_vgg *v)
{
    if (!v)
        return;
    clsynth_group_free(ctx, v->g);
    free(v);
}

clsynth_vgg *clsynth_vgg_load(clsynth_ctx *ctx, const char *path, clsynth_err *err)
{
    clsynth_checkpoint *ck = clsynth_checkpoint_load(path, err);
    if (!ck)
        return NULL;
    clsynth_vgg *v = calloc(1, sizeof *v);
    if (!v) {
        clsynth_checkpoint_free(ck);
        clsynth_fail(err, "out of host memory");
        return NULL;
    }
    char name[64];
    v->g = clsynth_group_new(ctx, "vgg");
    for (int i = 0; i < CLSYNTH_VGG_LAYERS; i++) {
        /* weight (cout, cin, 3, 3), bias (1, cout, 1, 1) */
        v->w[i] = clsynth_group_param(ctx, v->g, clsynth_layer_name(name, sizeof name, "%s.weight", LAYERS[i].name),
                                      LAYERS[i].cout, LAYERS[i].cin, 3, 3);
        v->b[i] = clsynth_group_param(ctx, v->g, clsynth_layer_name(name, sizeof name, "%s.bias", LAYERS[i].name), 1,
                                      LAYERS[i].cout, 1, 1);
    }
    v->scale = clsynth_group_buffer(ctx, v->g, "norm_scale", 1, 3, 1, 1);
    v->shift = clsynth_group_buffer(ctx, v->g, "norm_shift", 1, 3, 1, 1);
    if (ctx->failed || clsynth_group_finalize(ctx, v->g)) {
        clsynth_fail(err, "vgg: %s", ctx->err.msg);
        goto fail;
    }
    clsynth_group_set_requires_grad(v->g, false);
    for (int i = 0; i < CLSYNTH_VGG_LAYERS; i++) {
        const clsynth_ckpt_tensor *t;
        int ws[4] = { LAYERS[i].cout, LAYERS[i].cin, 3, 3 }, bs[1] = { LAYERS[i].cout };
        if (clsynth_checkpoint_expect(ck, v->w[i]->name, 4, ws, &t, err))
            goto fail_wrap;
        if (clsynth_tensor_upload(ctx, v->w[i], t->data))
            goto fail_ctx;
        if (clsynth_checkpoint_expect(ck, v->b[i]->name, 1, bs, &t, err))
            goto fail_wrap;
        if (clsynth_tensor_upload(ctx, v->b[i], t->data))
            goto fail_ctx;
    }
    const float mean[3] = { 0.485f, 0.456f, 0.406f }, std[3] = { 0.229f, 0.224f, 0.225f };
    float scale[3], shift[3];
    for (int c = 0; c < 3; c++) { /* ((x + 1) / 2 - mean) / std */
        scale[c] = 0.5f / std[c];
        shift[c] = (0.5f - mean[c]) / std[c];
    }
    if (clsynth_tensor_upload(ctx, v->scale, scale) || clsynth_tensor_upload(ctx, v->shift, shift))
        goto fail_ctx;
    clsynth_checkpoint_free(ck);
    return v;
fail_wrap:
    clsynth_wrap(err, "VGG19 weights");
    goto fail;
fail_ctx:
    clsynth_fail(err, "VGG19 weights '%s': %s", path, ctx->err.msg);
fail:
    clsynth_checkpoint_free(ck);
    clsynth_vgg_free(ctx, v);
    return NULL;
}

int clsynth_vgg_features(clsynth_ctx *ctx, const clsynth_vgg *v, clsynth_tensor *x,
                         clsynth_tensor *feats[CLSYNTH_VGG_FEATS])
{
    x = clsynth_add(ctx, clsynth_mul(ctx, x, v->scale), v->shift); /* (N, 3, H, W) ImageNet-normalized */
    for (int i = 0; i < CLSYNTH_VGG_LAYERS; i++) {
        if (LAYERS[i].pool_before)
            x = clsynth_max_pool(ctx, x, 2, 2);
        const clsynth_conv_epilogue relu = { CLSYNTH_ACT_RELU, 0.0f, NULL, NULL };
        x = clsynth_conv2d_fused(ctx, x, v->w[i], v->b[i], 1, 1, &relu); /* (N, cout, h, w) */
        if (LAYERS[i].feature >= 0)
            feats[LAYERS[i].feature] = x;
    }
    return ctx->failed ? -1 : 0;
}

clsynth_tensor *clsynth_vgg_loss(clsynth_ctx *ctx, const clsynth_vgg *v, clsynth_tensor *fake, clsynth_tensor *real)
{
    clsynth_tensor *ff[CLSYNTH_VGG_FEATS], *fr[CLSYNTH_VGG_FEATS];
    if (clsynth_vgg_features(ctx, v, fake, ff))
        return NULL;
    clsynth_no_grad_begin(ctx);
    int rc = clsynth_vgg_features(ctx, v, real, fr);
    clsynth_no_grad_end(ctx);
    if (rc)
        return NULL;
    clsynth_tensor *loss = NULL;
    for (int i = 0; i < CLSYNTH_VGG_FEATS; i++) {
        clsynth_tensor *t = clsynth_scale(ctx, clsynth_l1_loss(ctx, ff[i], fr[i]), FEAT_WEIGHTS[i]);
        loss = loss ? clsynth_add(ctx, loss, t) : t;
    }
    return loss;
}
