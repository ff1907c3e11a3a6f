/* Fixtures of the tests of nets/ (test_options, test_model,
 * test_model_gradients, test_training, test_model_checkpoint): tiny model
 * options, two scenes of rectangles with one colour per class, and the steps
 * around them. Failures are Check assertions that name what failed. */
#ifndef CLSYNTH_TESTS_NETS_FIXTURE_H
#define CLSYNTH_TESTS_NETS_FIXTURE_H

#include "clcore/context.h"
#include "clcore/tensor.h"
#include "nets/model.h"
#include "nets/options.h"

#define CLSYNTH_TEST_LABEL_NC 4

/* Tiny options: label_nc 4 + edge channel = semantic_nc 5; ngf/ndf/nef 4,
 * z_dim 8, nhidden 8, batch 2, seed 7, crop x crop images. */
void clsynth_test_tiny_options(clsynth_options *o, int crop);

/* Two scenes of rectangles (sky, road, vegetation and one car each, the car
 * placed differently per sample): labels (N,1,H,W) as float ids, instance
 * edges (N,1,H,W), and images (N,3,H,W) with one colour (plus a ramp) per
 * class. */
typedef struct clsynth_test_scene {
    int n, h, w;
    float *labels, *edges, *images;
} clsynth_test_scene;

void clsynth_test_scene_make(clsynth_test_scene *s, int n, int h, int w);
void clsynth_test_scene_free(clsynth_test_scene *s);

/* Persistent seg and real tensors of scene s for model m. */
void clsynth_test_scene_tensors(clsynth_ctx *ctx, clsynth_model *m, const clsynth_test_scene *s,
                                clsynth_tensor **seg, clsynth_tensor **real);

clsynth_model *clsynth_test_model(clsynth_ctx *ctx, const clsynth_options *o);

/* A parameter group's flat data on the host (malloc'ed). */
float *clsynth_test_download_group(clsynth_ctx *ctx, clsynth_param_group *g);

void clsynth_test_assert_shape(clsynth_ctx *ctx, const clsynth_tensor *t, int n, int c, int h, int w,
                               const char *what);

/* k training steps of m on (seg, real), each asserted to succeed. */
void clsynth_test_run_steps(clsynth_ctx *ctx, clsynth_model *m, clsynth_tensor *seg, clsynth_tensor *real, int k);

#endif
