/* VGG19 perceptual loss (SPADE's VGGLoss): features relu1_1, relu2_1,
 * relu3_1, relu4_1, relu5_1 of an ImageNet-pretrained VGG19, weights
 * 1/32, 1/16, 1/8, 1/4, 1, L1 between the features of the fake and the real
 * image (real detached). Inputs in [-1, 1] are mapped to [0, 1] and
 * normalized with the ImageNet mean (0.485, 0.456, 0.406) and std
 * (0.229, 0.224, 0.225) first. (SPADE feeds [-1, 1] without normalization;
 * clsynth normalizes as the torchvision weights expect.)
 *
 * Weights file: a clsynth checkpoint (io/checkpoint.h, version 1), config
 * text "format=vgg19\n", step 0, holding 26 tensors
 *   vgg.convA_B.weight  ndim 4 (cout, cin, 3, 3)
 *   vgg.convA_B.bias    ndim 1 (cout)
 * for conv1_1 (64, 3), conv1_2 (64, 64), conv2_1 (128, 64), conv2_2 (128, 128),
 * conv3_1 (256, 128), conv3_2..conv3_4 (256, 256), conv4_1 (512, 256),
 * conv4_2..conv4_4 (512, 512), conv5_1 (512, 512) — torchvision's
 * vgg19().features indices 0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28.
 * tools/convert_vgg19.py writes it from torchvision's state dict. Extra
 * tensors are ignored; a missing one or a wrong shape is an error naming it. */
#ifndef CLSYNTH_NETS_VGG_H
#define CLSYNTH_NETS_VGG_H

#include "clcore/context.h"
#include "clcore/tensor.h"

#define CLSYNTH_VGG_LAYERS 13
#define CLSYNTH_VGG_FEATS 5

typedef struct clsynth_vgg clsynth_vgg;

clsynth_vgg *clsynth_vgg_load(clsynth_ctx *ctx, const char *path, clsynth_err *err);
void clsynth_vgg_free(clsynth_ctx *ctx, clsynth_vgg *v);

/* x (N, 3, H, W) in [-1, 1] → relu1_1 .. relu5_1 features. */
int clsynth_vgg_features(clsynth_ctx *ctx, const clsynth_vgg *v, clsynth_tensor *x,
                         clsynth_tensor *feats[CLSYNTH_VGG_FEATS]);

/* Σ_i w_i · L1(φ_i(fake), φ_i(real)) (1,1,1,1); the real features are
 * computed without grad. */
clsynth_tensor *clsynth_vgg_loss(clsynth_ctx *ctx, const clsynth_vgg *v, clsynth_tensor *fake,
                                 clsynth_tensor *real);

/* Layer table (for tools and tests): name "conv1_1", cin, cout. */
void clsynth_vgg_layer(int i, const char **name, int *cin, int *cout);

#endif
