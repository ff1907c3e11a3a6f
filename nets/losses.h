/* Training losses of CC-FPSE / SPADE (spec "Losses and training"). Each
 * returns a (1,1,1,1) tensor on the tape, already multiplied by its weight. */
#ifndef CLSYNTH_NETS_LOSSES_H
#define CLSYNTH_NETS_LOSSES_H

#include <stdbool.h>

#include "nets/discriminator.h"

/* D hinge loss averaged over the score maps:
 * real: mean_k mean(relu(1 - D_k)); fake: mean_k mean(relu(1 + D_k)). */
clsynth_tensor *clsynth_loss_d_hinge(clsynth_ctx *ctx, const clsynth_d_out *d, bool real);
/* G hinge loss averaged over the score maps: mean_k -mean(D_k(fake)). */
clsynth_tensor *clsynth_loss_g_hinge(clsynth_ctx *ctx, const clsynth_d_out *fake);
/* Feature matching: lambda · Σ_i weight_i · L1(feat_i(fake), feat_i(real));
 * the real features must not require grad (computed without grad). */
clsynth_tensor *clsynth_loss_feat(clsynth_ctx *ctx, const clsynth_d_out *fake, const clsynth_d_out *real, float lambda);
/* lambda · KL(N(mu, exp(logvar)) || N(0, 1)) summed over every element. */
clsynth_tensor *clsynth_loss_kld(clsynth_ctx *ctx, clsynth_tensor *mu, clsynth_tensor *logvar, float lambda);

#endif
