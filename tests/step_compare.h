/* Comparing two training runs after a step from the same state (tests only).
 *
 * Why not "every parameter within 1e-5": Adam's first steps move each
 * parameter by about lr * sign(gradient). Some gradients are zero in exact
 * arithmetic (a bias followed by a normalization over its channel: the norm
 * removes it) and come out as float32 rounding noise of either sign, so such a
 * parameter moves by +-lr on noise in any two runs that round differently
 * (here lr is 1e-4 to 4e-4). And the model is so sensitive to rounding that
 * one process perturbed by 1e-6 in one input pixel drifts by up to 6e-4 in its
 * parameters after 3 steps (measured while writing tests/test_data_parallel.c:
 * its networks, one process of batch 2, run twice with one pixel of the second
 * sample changed by 1e-6; 3e-5 at lr 1e-5, so the drift follows lr). The
 * equivalence of two runs is therefore checked step by step from one state:
 *   gradients (Adam's m, which is the step's gradient with beta1 = 0) within
 *     floor + 1e-4 * max |m_ref| of the parameter tensor, floor = 1e-6 *
 *     max |m_ref| of the network (an element's rounding error follows the
 *     size of the terms summed into it, not its own size);
 *     (gradient magnitudes: a missing 1/K of averaging shows here, Adam's
 *     update itself is scale-free);
 *   Adam's v within the gradient's tolerance carried through
 *     v = beta2 v' + (1 - beta2) g^2 (the same v' before the step);
 *   every parameter within 1e-5, except elements whose gradient is below the
 *     floor in both runs (counted; those take their +-lr step on noise). */
#ifndef CLSYNTH_TEST_STEP_COMPARE_H
#define CLSYNTH_TEST_STEP_COMPARE_H

#include <stddef.h>

#include "clcore/context.h"
#include "clcore/params.h"

typedef struct clsynth_test_net_state {
    const clsynth_param_group *g; /* names and offsets */
    size_t n;
    float *p, *m, *v;             /* parameters and Adam moments, (n) each */
} clsynth_test_net_state;

/* Downloads g's state (no Check assertions: usable from rank threads). */
int clsynth_test_net_state_get(clsynth_ctx *ctx, const clsynth_param_group *g, clsynth_test_net_state *s);
void clsynth_test_net_state_free(clsynth_test_net_state *s);

/* 0 when a matches ref by the rule above; else -1 with msg naming the network,
 * the parameter, the element and the values. *exempt (may be NULL) receives
 * the number of parameters exempt from the 1e-5 check. */
int clsynth_test_same_step(const char *what, const clsynth_test_net_state *a, const clsynth_test_net_state *ref,
                           size_t *exempt, char *msg, size_t cap);

#endif
