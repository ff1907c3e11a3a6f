/* The generator frame shared by "condconv" and "spade": start tensor, block
 * schedule with nearest upsampling, output conv (see nets/generator.h). */
#include <stdio.h>
#include <string.h>

#include "clcore/ops.h"
#include "nets/generator.h"

static const char *const BLOCK_NAMES[CLSYNTH_G_BLOCKS] = { "head_0", "G_middle_0", "G_middle_1", "up_0",
                                                        "up_1",   "up_2",       "up_3" };
static const int BLOCK_FIN[CLSYNTH_G_BLOCKS] = { 16, 16, 16, 16, 8, 4, 2 };  /* × nf */
static const int BLOCK_FOUT[CLSYNTH_G_BLOCKS] = { 16, 16, 16, 8, 4, 2, 1 }; /* × nf */

int clsynth_generator_make(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_options *o, clsynth_generator *G,
                        clsynth_err *err)
{
    memset(G, 0, sizeof *G);
    const int first_buffer = g->n_buffers;
    clsynth_norm_cfg cfg;
    if (clsynth_norm_parse(o->norm_G, "--norm_G", &cfg, err))
        return -1;
    if (strcmp(o->netG, "condconv") == 0)
        G->kind = CLSYNTH_G_CONDCONV;
    else if (strcmp(o->netG, "spade") == 0)
        G->kind = CLSYNTH_G_SPADE;
    else
        return clsynth_fail(err, "--netG: unknown generator '%s' (condconv, spade)", o->netG);
    int nf = G->nf = o->ngf;
    G->semantic_nc = clsynth_options_semantic_nc(o);
    G->num_up = clsynth_options_num_up(o);
    G->use_vae = o->use_vae;
    G->z_dim = o->z_dim;
    int h, w;
    clsynth_options_image_size(o, &h, &w);
    G->sw = w >> G->num_up;
    G->sh = h >> G->num_up;
    if (G->sw < 1 || G->sh < 1 || (G->sw << G->num_up) != w || (G->sh << G->num_up) != h)
        return clsynth_fail(err, "generator: image %dx%d is not a multiple of 2^%d (--crop_size %d, "
                                 "--aspect_ratio %g, --num_upsampling_layers %s)",
                            w, h, G->num_up, o->data.crop_size, o->data.aspect_ratio, o->num_upsampling_layers);
    bool more = G->num_up == 6;

    /* start: linear (16nf·sh·sw, z_dim, 1, 1) or conv (16nf, snc, 3, 3) */
    if (G->use_vae)
        clsynth_linear_make(ctx, g, "fc", o->z_dim, 16 * nf * G->sh * G->sw, true, false, &G->fc);
    else
        clsynth_conv_make(ctx, g, "fc", G->semantic_nc, 16 * nf, 3, 1, 1, true, false, &G->fc);

    int cond_nc = G->semantic_nc;
    if (G->kind == CLSYNTH_G_CONDCONV) {
        clsynth_wpred_make(ctx, g, "wp", G->semantic_nc, nf, G->num_up + 1, cfg, !o->no_pyramid, &G->wp);
        cond_nc = G->semantic_nc + nf;
    }
    for (int b = 0; b < CLSYNTH_G_BLOCKS; b++) {
        G->block_name[b] = BLOCK_NAMES[b];
        G->up_before[b] = b == 0 ? false : b == 2 ? more : true;
        int fin = BLOCK_FIN[b] * nf, fout = BLOCK_FOUT[b] * nf;
        if (G->kind == CLSYNTH_G_CONDCONV)
            clsynth_ccblock_make(ctx, g, BLOCK_NAMES[b], fin, fout, cond_nc, o->nhidden, cfg, !o->no_cond_attention,
                              &G->cc[b]);
        else
            clsynth_spadeblock_make(ctx, g, BLOCK_NAMES[b], fin, fout, cond_nc, o->nhidden, cfg, &G->sp[b]);
    }
    /* conv_img (3, nf, 3, 3) */
    clsynth_conv_make(ctx, g, "conv_img", nf, 3, 3, 1, 1, true, false, &G->conv_img);
    if (ctx->failed || clsynth_sn_collect(ctx, g, first_buffer, "G", &G->sn))
        return clsynth_fail(err, "%s", ctx->err.msg);
    return 0;
}

/* --half_activations: after the start tensor and after each block, what the
 * stretch since `mark` made goes to half storage, but for x and the pyramid
 * (what the next blocks read). */
static int stash(const clsynth_forward_mode *f, unsigned long mark, clsynth_tensor *x, clsynth_tensor *const *segout)
{
    clsynth_tensor *keep[1 + CLSYNTH_WP_MAX_LEVELS] = { x };
    for (int l = 0; l < CLSYNTH_WP_MAX_LEVELS; l++)
        keep[1 + l] = segout[l];
    return clsynth_forward_stash(f, mark, keep, 1 + CLSYNTH_WP_MAX_LEVELS);
}

/* Pyramid level whose size is (h, w): H / 2^level. */
static int level_of(const clsynth_tensor *seg, int h, int levels)
{
    for (int l = 0; l < levels; l++)
        if ((seg->h >> l) == h)
            return l;
    return -1;
}

clsynth_tensor *clsynth_generator_forward(const clsynth_forward_mode *f_in, const clsynth_generator *G,
                                       clsynth_tensor *seg, clsynth_tensor *z)
{
    clsynth_ctx *ctx = f_in->ctx;
    if (ctx->failed || !seg)
        return NULL;
    if (seg->c != G->semantic_nc || seg->h != G->sh << G->num_up || seg->w != G->sw << G->num_up) {
        char d[96];
        clsynth_ctx_fail(ctx, "generator: seg %s, expected (N, %d, %d, %d)", clsynth_tensor_describe(seg, d, sizeof d),
                         G->semantic_nc, G->sh << G->num_up, G->sw << G->num_up);
        return NULL;
    }
    int N = seg->n, nf = G->nf;
    clsynth_forward_mode fm; /* with every spectral-normalized weight normalized, all at once */
    if (clsynth_sn_forward(f_in, G->sn, &fm))
        return NULL;
    const clsynth_forward_mode *f = &fm;
    const unsigned long mark = ctx->tensor_serial; /* the normalized weights are older: every block reads them */

    /* start tensor x (N, 16nf, sh, sw) */
    clsynth_tensor *x;
    if (G->use_vae) {
        if (!z || z->n != N || z->c * z->h * z->w != G->z_dim) {
            clsynth_ctx_fail(ctx, "generator: --use_vae needs z (N=%d, %d, 1, 1)", N, G->z_dim);
            return NULL;
        }
        x = clsynth_linear_forward(f, &G->fc, z);                     /* (N, 16nf·sh·sw, 1, 1) */
        x = clsynth_reshape(ctx, x, N, 16 * nf, G->sh, G->sw);     /* (N, 16nf, sh, sw) */
    } else {
        clsynth_tensor *small = clsynth_resize_nearest(ctx, seg, G->sh, G->sw); /* (N, snc, sh, sw) */
        x = clsynth_conv_forward(f, &G->fc, small);                   /* (N, 16nf, sh, sw) */
    }

    /* weight-prediction pyramid: segout[l] (N, nf, H/2^l, W/2^l) */
    clsynth_tensor *segout[CLSYNTH_WP_MAX_LEVELS] = { 0 };
    if (G->kind == CLSYNTH_G_CONDCONV && clsynth_wpred_forward(f, &G->wp, seg, segout))
        return NULL;
    if (stash(f, mark, x, segout))
        return NULL;

    for (int b = 0; b < CLSYNTH_G_BLOCKS; b++) {
        if (G->up_before[b])
            x = clsynth_upsample_nearest2x(ctx, x);
        if (!x)
            return NULL;
        clsynth_tensor *seg_b = clsynth_resize_nearest(ctx, seg, x->h, x->w); /* (N, snc, h, w) */
        if (G->kind == CLSYNTH_G_CONDCONV) {
            int l = level_of(seg, x->h, G->wp.levels);
            if (l < 0) {
                clsynth_ctx_fail(ctx, "generator: block %s at %dx%d has no pyramid level", G->block_name[b],
                                 x->h, x->w);
                return NULL;
            }
            clsynth_tensor *parts[2] = { seg_b, segout[l] };
            clsynth_tensor *cond = clsynth_concat(ctx, parts, 2); /* (N, snc + nf, h, w) */
            x = clsynth_ccblock_forward(f, &G->cc[b], x, cond);
        } else {
            x = clsynth_spadeblock_forward(f, &G->sp[b], x, seg_b);
        }
        if (!x || stash(f, mark, x, segout))
            return NULL;
    }
    x = clsynth_leaky_relu(ctx, x, CLSYNTH_LRELU_SLOPE);
    const clsynth_conv_epilogue out = { CLSYNTH_ACT_TANH, 0.0f, NULL, NULL };
    return clsynth_conv_forward_epi(f, &G->conv_img, x, &out); /* tanh(conv) (N, 3, H, W) */
}
