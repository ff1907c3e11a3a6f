/* Plain-C reference of one torch.optim.Adam step (no weight decay), in double. */
#ifndef CLSYNTH_REF_ADAM_H
#define CLSYNTH_REF_ADAM_H

#include <stddef.h>

/* t is the step number after incrementing (1 for the first step). */
void ref_adam_step(float *p, const float *g, float *m, float *v, size_t n, double lr, double beta1, double beta2,
                   double eps, long t);

#endif
