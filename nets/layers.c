/* Convolution, normalization and conv → norm → LeakyReLU layers. */
#include "nets/layers.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/autograd.h"
#include "clcore/ops.h"

const char *clsynth_layer_name(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return buf;
}

int clsynth_norm_parse(const char *s, const char *option, clsynth_norm_cfg *out, clsynth_err *err)
{
    const char *p = s;
    out->spectral = false;
    out->kind = CLSYNTH_NORM_NONE;
    if (strncmp(p, "spectral", 8) == 0) {
        out->spectral = true;
        p += 8;
    }
    if (strncmp(p, "spade", 5) == 0)
        p += 5;
    size_t n = strlen(p);
    if (n >= 3 && strcmp(p + n - 3, "3x3") == 0)
        n -= 3;
    if (n == 5 && strncmp(p, "batch", 5) == 0)
        out->kind = CLSYNTH_NORM_BATCH;
    else if ((n == 9 && strncmp(p, "syncbatch", 9) == 0) || (n == 10 && strncmp(p, "sync_batch", 10) == 0))
        out->kind = CLSYNTH_NORM_SYNCBATCH; /* "sync_batch": the authors' spelling (spectralsync_batch), whose
                                            SynchronizedBatchNorm2d this is */
    else if (n == 8 && strncmp(p, "instance", 8) == 0)
        out->kind = CLSYNTH_NORM_INSTANCE;
    else if ((n == 4 && strncmp(p, "none", 4) == 0) || n == 0)
        out->kind = CLSYNTH_NORM_NONE;
    else
        return clsynth_fail(err, "%s: '%s' is not a normalization (expected [spectral][spade]"
                                 "batch|syncbatch|sync_batch|instance|none[3x3], e.g. spectralinstance)",
                            option, s);
    return 0;
}

/* ---- convolution ---- */

int clsynth_conv_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int cin, int cout,
                   int k, int stride, int pad, bool bias, bool spectral, clsynth_conv *out)
{
    char buf[64];
    memset(out, 0, sizeof *out);
    out->cin = cin;
    out->cout = cout;
    out->k = k;
    out->stride = stride;
    out->pad = pad;
    out->w = clsynth_group_param(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.w", name), cout, cin, k, k);
    if (bias)
        out->b = clsynth_group_param(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.b", name), 1, cout, 1, 1);
    if (spectral) {
        out->u = clsynth_group_buffer(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.u", name), 1, cout, 1, 1);
        out->v = clsynth_group_buffer(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.v", name), 1, cin * k * k, 1, 1);
    }
    return ctx->failed ? -1 : 0;
}

/* The conv's weight, spectral-normalized when it has a u: the forward's set
 * output, else normalized alone. */
static clsynth_tensor *conv_weight(const clsynth_forward_mode *f, const clsynth_conv *c)
{
    if (!c->u)
        return c->w;
    clsynth_tensor *w = clsynth_sn_set_output(f->sn, c->w);
    return w ? w : clsynth_spectral_norm(f->ctx, c->w, c->u, c->v, f->update_u);
}

/* y = conv(x, sn(w)) + b   x (N, cin, H, W) -> (N, cout, H', W') */
clsynth_tensor *clsynth_conv_forward(const clsynth_forward_mode *f, const clsynth_conv *c, clsynth_tensor *x)
{
    return clsynth_conv_forward_epi(f, c, x, NULL);
}

/* y = act((conv(x, sn(w)) + b) * gate) + residual, one fused op */
clsynth_tensor *clsynth_conv_forward_epi(const clsynth_forward_mode *f, const clsynth_conv *c, clsynth_tensor *x,
                                      const clsynth_conv_epilogue *e)
{
    return clsynth_conv2d_fused(f->ctx, x, conv_weight(f, c), c->b, c->stride, c->pad, e);
}

int clsynth_linear_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int in, int out,
                     bool bias, bool spectral, clsynth_conv *outl)
{
    return clsynth_conv_make(ctx, g, name, in, out, 1, 1, 0, bias, spectral, outl);
}

/* x (N, in...) -> (N, out, 1, 1) */
clsynth_tensor *clsynth_linear_forward(const clsynth_forward_mode *f, const clsynth_conv *c, clsynth_tensor *x)
{
    return clsynth_linear(f->ctx, x, conv_weight(f, c), c->b);
}

/* ---- normalization ---- */

int clsynth_norm_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, clsynth_norm_kind kind,
                   int c, bool affine, clsynth_norm *out)
{
    char buf[64];
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->c = c;
    if (kind == CLSYNTH_NORM_NONE)
        return 0;
    if (affine) {
        out->gamma = clsynth_group_param(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.gamma", name), 1, c, 1, 1);
        out->beta = clsynth_group_param(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.beta", name), 1, c, 1, 1);
    }
    if (clsynth_norm_is_batch(kind)) {
        out->running_mean =
            clsynth_group_buffer(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.running_mean", name), 1, c, 1, 1);
        out->running_var =
            clsynth_group_buffer(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.running_var", name), 1, c, 1, 1);
    }
    return ctx->failed ? -1 : 0;
}

clsynth_tensor *clsynth_norm_forward(const clsynth_forward_mode *f, const clsynth_norm *n, clsynth_tensor *x)
{
    switch (n->kind) {
    case CLSYNTH_NORM_BATCH:
        return clsynth_batch_norm(f->ctx, x, n->gamma, n->beta, n->running_mean, n->running_var,
                                  f->training, CLSYNTH_BN_MOMENTUM, CLSYNTH_NORM_EPS);
    case CLSYNTH_NORM_SYNCBATCH:
        return clsynth_sync_batch_norm(f->ctx, x, n->gamma, n->beta, n->running_mean, n->running_var,
                                       f->training, CLSYNTH_BN_MOMENTUM, CLSYNTH_NORM_EPS);
    case CLSYNTH_NORM_INSTANCE:
        return clsynth_instance_norm(f->ctx, x, n->gamma, n->beta, CLSYNTH_NORM_EPS);
    case CLSYNTH_NORM_NONE:
    default:
        return x;
    }
}

/* ---- conv → norm → LeakyReLU ---- */

int clsynth_cna_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int cin, int cout,
                  int k, int stride, int pad, clsynth_norm_cfg cfg, bool act, clsynth_cna *out)
{
    char buf[64];
    memset(out, 0, sizeof *out);
    out->act = act;
    bool has_norm = cfg.kind != CLSYNTH_NORM_NONE;
    if (clsynth_conv_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.conv", name), cin, cout, k, stride, pad,
                       !has_norm, cfg.spectral, &out->conv))
        return -1;
    return clsynth_norm_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "%s.norm", name), cfg.kind, cout,
                          clsynth_norm_is_batch(cfg.kind), &out->norm);
}

clsynth_tensor *clsynth_cna_forward(const clsynth_forward_mode *f, const clsynth_cna *l, clsynth_tensor *x)
{
    if (l->norm.kind == CLSYNTH_NORM_NONE && l->act) {
        /* conv -> bias -> LeakyReLU in one op */
        const clsynth_conv_epilogue e = { CLSYNTH_ACT_LEAKY_RELU, CLSYNTH_LRELU_SLOPE, NULL, NULL };
        return clsynth_conv_forward_epi(f, &l->conv, x, &e);
    }
    clsynth_tensor *y = clsynth_conv_forward(f, &l->conv, x);
    if (!l->act)
        return clsynth_norm_forward(f, &l->norm, y);
    const clsynth_norm *n = &l->norm;
    switch (n->kind) { /* norm -> LeakyReLU in one op */
    case CLSYNTH_NORM_BATCH:
        return clsynth_batch_norm_lrelu(f->ctx, y, n->gamma, n->beta, n->running_mean, n->running_var, f->training,
                                        CLSYNTH_BN_MOMENTUM, CLSYNTH_NORM_EPS, CLSYNTH_LRELU_SLOPE);
    case CLSYNTH_NORM_SYNCBATCH:
        return clsynth_sync_batch_norm_lrelu(f->ctx, y, n->gamma, n->beta, n->running_mean, n->running_var,
                                             f->training, CLSYNTH_BN_MOMENTUM, CLSYNTH_NORM_EPS, CLSYNTH_LRELU_SLOPE);
    case CLSYNTH_NORM_INSTANCE:
        return clsynth_instance_norm_lrelu(f->ctx, y, n->gamma, n->beta, CLSYNTH_NORM_EPS, CLSYNTH_LRELU_SLOPE);
    case CLSYNTH_NORM_NONE:
    default:
        return clsynth_leaky_relu(f->ctx, y, CLSYNTH_LRELU_SLOPE);
    }
}

/* ---- initialization ---- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int clsynth_init_group(clsynth_ctx *ctx, clsynth_param_group *g, uint64_t seed, uint64_t stream_base)
{
    if (ctx->failed)
        return -1;
    for (int i = 0; i < g->n_params; i++) {
        clsynth_tensor *p = g->params[i];
        int rc;
        if (ends_with(p->name, ".w"))
            rc = clsynth_init_xavier(ctx, p, 0.02f, seed, stream_base + (uint64_t)i);
        else if (ends_with(p->name, ".gamma"))
            rc = clsynth_tensor_fill(ctx, p, 1.0f);
        else
            rc = clsynth_tensor_fill(ctx, p, 0.0f); /* ".b", ".beta" */
        if (rc)
            return -1;
    }
    float *host = NULL;
    size_t cap = 0;
    for (int i = 0; i < g->n_buffers; i++) {
        clsynth_tensor *b = g->buffers[i];
        int rc = 0;
        if (ends_with(b->name, ".running_var")) {
            rc = clsynth_tensor_fill(ctx, b, 1.0f);
        } else if (ends_with(b->name, ".u")) {
            /* u ~ N(0, 1), normalized as PyTorch's spectral_norm does */
            if (b->numel > cap) {
                float *grown = realloc(host, b->numel * sizeof *host);
                if (!grown) {
                    free(host);
                    return clsynth_ctx_fail(ctx, "out of host memory");
                }
                host = grown;
                cap = b->numel;
            }
            rc = clsynth_rand_normal(ctx, b, 0.0f, 1.0f, seed, stream_base + 100000u + (uint64_t)i);
            if (!rc)
                rc = clsynth_tensor_download(ctx, b, host);
            if (!rc) {
                double s = 0;
                for (size_t j = 0; j < b->numel; j++)
                    s += (double)host[j] * host[j];
                float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 1.0f;
                for (size_t j = 0; j < b->numel; j++)
                    host[j] *= inv;
                rc = clsynth_tensor_upload(ctx, b, host);
            }
        } else {
            rc = clsynth_tensor_fill(ctx, b, 0.0f); /* ".v" too, set below */
        }
        if (rc) {
            free(host);
            return -1;
        }
    }
    free(host);
    return clsynth_init_spectral_v(ctx, g, NULL);
}

/* The weight ("<prefix>.w") and u ("<prefix>.u") of a ".v" buffer. */
static int sn_partners(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_tensor *v, clsynth_tensor **w,
                       clsynth_tensor **u)
{
    char name[160];
    size_t n = strlen(v->name);
    if (n < 2 || n + 1 > sizeof name)
        return clsynth_ctx_fail(ctx, "spectral norm: buffer name '%s'", v->name);
    memcpy(name, v->name, n + 1);
    name[n - 1] = 'w';
    *w = clsynth_group_find(g, name);
    name[n - 1] = 'u';
    *u = clsynth_group_find(g, name);
    if (!*w || !*u)
        return clsynth_ctx_fail(ctx, "spectral norm: '%s' has no weight or u beside it", v->name);
    return 0;
}

int clsynth_init_spectral_v(clsynth_ctx *ctx, clsynth_param_group *g, const bool *which)
{
    if (ctx->failed)
        return -1;
    for (int i = 0; i < g->n_buffers; i++) {
        clsynth_tensor *v = g->buffers[i], *w = NULL, *u = NULL;
        if (!ends_with(v->name, ".v") || (which && !which[i]))
            continue;
        if (sn_partners(ctx, g, v, &w, &u) || clsynth_spectral_norm_init_v(ctx, w, u, v))
            return -1;
    }
    return 0;
}

int clsynth_sn_collect(clsynth_ctx *ctx, clsynth_param_group *g, int first_buffer, const char *name,
                       clsynth_sn_set **out)
{
    *out = NULL;
    if (ctx->failed)
        return -1;
    for (int i = first_buffer; i < g->n_buffers; i++) {
        clsynth_tensor *v = g->buffers[i], *w = NULL, *u = NULL;
        if (!ends_with(v->name, ".v"))
            continue;
        if (!*out && !(*out = clsynth_sn_set_new(ctx, name)))
            return -1;
        if (sn_partners(ctx, g, v, &w, &u) || clsynth_sn_set_add(ctx, *out, w, u, v))
            return -1;
    }
    return 0;
}

int clsynth_forward_stash(const clsynth_forward_mode *f, unsigned long mark, clsynth_tensor *const *keep, int n_keep)
{
    if (f->ctx->failed)
        return -1;
    if (!f->stash_half)
        return 0;
    if (f->ctx->no_grad > 0) { /* nothing recorded: the stretch's other tensors are dead */
        clsynth_release_newer(f->ctx, mark, keep, n_keep);
        return 0;
    }
    return clsynth_stash_newer_as_half(f->ctx, mark, keep, n_keep);
}

int clsynth_sn_forward(const clsynth_forward_mode *f, clsynth_sn_set *s, clsynth_forward_mode *out)
{
    *out = *f;
    out->sn = s;
    return s && !clsynth_spectral_norm_set(f->ctx, s, f->update_u) ? -1 : 0;
}
