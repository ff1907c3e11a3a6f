/* The VAE image encoder (the authors' ConvEncoder: 6 stride-2 convs, --ngf
 * wide unless --nef says otherwise): img (N, 3, H, W) → μ, log σ² (N, z_dim, 1, 1).
 * As the authors, the image is first resized to 256×256, bilinear
 * (align_corners = false; Cityscapes' 256×512 is squeezed to 256×256), so the
 * convs end at 4×4 whatever the crop size. (The authors drop the sixth conv
 * below a 256 crop, which then cannot feed their 4×4 linear layers; here it
 * is always there, so small crops work.) */
#include <stdio.h>

#include "clcore/ops.h"
#include "nets/generator.h"

int clsynth_encoder_make(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_options *o, clsynth_encoder *out,
                      clsynth_err *err)
{
    const int first_buffer = g->n_buffers;
    clsynth_norm_cfg cfg;
    if (clsynth_norm_parse(o->norm_E, "--norm_E", &cfg, err))
        return -1;
    char buf[64];
    int nef = clsynth_options_encoder_width(o);
    const int mult[6] = { 1, 2, 4, 8, 8, 8 };
    int h = CLSYNTH_ENC_SIZE, w = CLSYNTH_ENC_SIZE;
    int cin = 3;
    for (int i = 0; i < 6; i++) { /* (nef·mult, cin, 3, 3) stride 2 */
        clsynth_cna_make(ctx, g, clsynth_layer_name(buf, sizeof buf, "E.layer%d", i + 1), cin, nef * mult[i], 3, 2, 1, cfg,
                      true, &out->layer[i]);
        cin = nef * mult[i];
        h = (h + 2 - 3) / 2 + 1;
        w = (w + 2 - 3) / 2 + 1;
    }
    int in = cin * h * w;
    out->z_dim = o->z_dim;
    /* (z_dim, 8nef·h·w, 1, 1) each */
    clsynth_linear_make(ctx, g, "E.fc_mu", in, o->z_dim, true, false, &out->fc_mu);
    clsynth_linear_make(ctx, g, "E.fc_var", in, o->z_dim, true, false, &out->fc_var);
    if (ctx->failed || clsynth_sn_collect(ctx, g, first_buffer, "E", &out->sn))
        return clsynth_fail(err, "%s", ctx->err.msg);
    return 0;
}

int clsynth_encoder_forward(const clsynth_forward_mode *f_in, const clsynth_encoder *e, clsynth_tensor *img,
                            clsynth_tensor **mu, clsynth_tensor **logvar)
{
    clsynth_forward_mode fm; /* with every spectral-normalized weight normalized, all at once */
    if (clsynth_sn_forward(f_in, e->sn, &fm))
        return -1;
    const clsynth_forward_mode *f = &fm;
    clsynth_tensor *x = img;
    if (img->h != CLSYNTH_ENC_SIZE || img->w != CLSYNTH_ENC_SIZE)
        x = clsynth_resize_bilinear(f->ctx, img, CLSYNTH_ENC_SIZE, CLSYNTH_ENC_SIZE); /* (N, 3, 256, 256) */
    for (int i = 0; i < 6; i++)
        x = clsynth_cna_forward(f, &e->layer[i], x); /* (N, nef·mult, H/2^(i+1), W/2^(i+1)) */
    *mu = clsynth_linear_forward(f, &e->fc_mu, x);    /* (N, z_dim, 1, 1) */
    *logvar = clsynth_linear_forward(f, &e->fc_var, x);
    return f->ctx->failed ? -1 : 0;
}
