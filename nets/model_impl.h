/* The model struct, shared by nets/model.c and nets/trainer.c (internal). */
#ifndef CLSYNTH_NETS_MODEL_IMPL_H
#define CLSYNTH_NETS_MODEL_IMPL_H

#include "nets/discriminator.h"
#include "nets/generator.h"
#include "nets/model.h"
#include "nets/vgg.h"

struct clsynth_model {
    clsynth_options opt;
    clsynth_param_group *G; /* generator, and the encoder under "G.E." */
    clsynth_param_group *D;
    clsynth_generator gen;
    clsynth_encoder enc;       /* with --use_vae */
    clsynth_disc disc;
    clsynth_vgg *vgg;       /* NULL: no VGG loss */
    int epoch;
    uint64_t rng_counter;   /* stream counter for the model's own noise (VAE) */
    clsynth_tensor *in_seg, *in_real; /* persistent copies of a train step's inputs */
    char notice[256];
};

/* Stream numbers of the model's RNG draws (Philox streams of o->seed). */
#define CLSYNTH_STREAM_INIT_G 0x100000000ull
#define CLSYNTH_STREAM_INIT_D 0x200000000ull
#define CLSYNTH_STREAM_NOISE 0x300000000ull

/* z for the generator: encoded from real (reparameterized) with --use_vae
 * when real is given, N(0,1) when not; NULL without --use_vae. mu/logvar
 * (may be NULL) receive the encoder outputs. */
clsynth_tensor *clsynth_model_z(const clsynth_forward_mode *f, clsynth_model *m, int n, clsynth_tensor *real,
                             clsynth_tensor **mu, clsynth_tensor **logvar);

#endif
