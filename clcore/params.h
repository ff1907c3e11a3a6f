/* Parameter groups: every trainable tensor of a network (G or D) is a view
 * into one flat data buffer, with its gradient a view into one flat gradient
 * buffer, so Adam is one kernel over the whole group (as in llm.c). Groups also
 * hold named non-trainable state (batch-norm running stats, spectral-norm u
 * and v), all of it views into one more flat buffer.
 *
 * Use: clsynth_group_new → clsynth_group_param / clsynth_group_buffer for every
 * layer (tensors have no storage yet) → clsynth_group_finalize (allocates and
 * zero-fills) → initialise values → train. */
#ifndef CLSYNTH_PARAMS_H
#define CLSYNTH_PARAMS_H

#include <stdbool.h>

#include "clcore/context.h"
#include "clcore/tensor.h"

typedef struct clsynth_param_group {
    char name[32];
    clsynth_tensor **params;
    int n_params, cap_params;
    clsynth_tensor **buffers; /* non-trainable persistent state: views into buffer_block */
    int n_buffers, cap_buffers;
    struct clsynth_block *buffer_block; /* every buffer, in declaration order (NULL: none) */
    size_t total;             /* elements in all params */
    bool finalized;
    struct clsynth_block *data_block, *grad_block, *m_block, *v_block;
    clsynth_tensor *flat_data, *flat_grad, *adam_m, *adam_v; /* (1,1,1,total) views */
    struct clsynth_param_pack *packs; /* parameters laid out side by side (clsynth_group_pack) */
    int n_packs, cap_packs;
    /* Adam settings and state */
    float lr, beta1, beta2, eps;
    long step;
} clsynth_param_group;

clsynth_param_group *clsynth_group_new(clsynth_ctx *ctx, const char *name);
void clsynth_group_free(clsynth_ctx *ctx, clsynth_param_group *g);

/* Declares a trainable parameter "group.name" of the given shape. */
clsynth_tensor *clsynth_group_param(clsynth_ctx *ctx, clsynth_param_group *g, const char *name,
                                    int n, int c, int h, int w);
/* Declares a non-trainable state tensor. */
clsynth_tensor *clsynth_group_buffer(clsynth_ctx *ctx, clsynth_param_group *g, const char *name,
                                     int n, int c, int h, int w);
/* Lays the declared parameters members[0..n) out side by side, in this order,
 * in the flat data and gradient buffers, and returns one more parameter
 * tensor over all of them (storage and gradient views from finalize on):
 * axis 0 stacks them along n (their c, h, w equal: conv weights with their
 * output channels concatenated), axis 1 along c (n = 1, h, w equal: biases).
 * A parameter belongs to at most one pack. The declaration order stays the
 * group's canonical order (initialization streams, checkpoints: see
 * clsynth_group_canonical); only the storage offsets move. */
clsynth_tensor *clsynth_group_pack(clsynth_ctx *ctx, clsynth_param_group *g, const char *name,
                                   clsynth_tensor *const *members, int n, int axis);
/* Storage order <-> declaration order of a flat (total) array such as the
 * Adam moments: to_canonical 1 copies flat[p->off ...] of each parameter in
 * declaration order into out, 0 the reverse. Identity without packs. */
void clsynth_group_canonical(const clsynth_param_group *g, const float *in, float *out, bool to_canonical);
/* Allocates storage for all declared tensors, zero-filled. */
int clsynth_group_finalize(clsynth_ctx *ctx, clsynth_param_group *g);

int clsynth_group_zero_grad(clsynth_ctx *ctx, clsynth_param_group *g);
/* Turns requires-grad on or off for every parameter (freeze D while stepping G). */
void clsynth_group_set_requires_grad(clsynth_param_group *g, bool on);
/* Looks a parameter or buffer up by its full name "group.name". */
clsynth_tensor *clsynth_group_find(clsynth_param_group *g, const char *name);

#endif
