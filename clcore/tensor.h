/* Device tensors: float32, up to 4-D, always stored NCHW-contiguous as
 * (n, c, h, w) with unused leading dims = 1. A tensor is a view of a cl_mem at
 * an element offset, so kernels take every tensor as (global float *p, int off).
 *
 * Lifetime: tensors made with clsynth_tensor_new are *activations*: the
 * context frees them all at clsynth_release_activations() (called by
 * clsynth_backward) unless clsynth_tensor_keep() was called. Persistent tensors
 * (parameters, optimizer state, inputs a caller keeps) are freed by
 * clsynth_tensor_free. Device memory comes from a pool of exact-size blocks, so
 * a repeated training step allocates nothing new after the first. */
#ifndef CLSYNTH_TENSOR_H
#define CLSYNTH_TENSOR_H

#include <stdbool.h>
#include <stddef.h>

#include "clcore/context.h"

struct clsynth_block;

enum {
    CLSYNTH_T_REQUIRES_GRAD = 1u << 0,
    CLSYNTH_T_PARAM = 1u << 1,      /* trainable parameter (in a param group) */
    CLSYNTH_T_PERSISTENT = 1u << 2, /* not released with the activations */
    CLSYNTH_T_VIEW = 1u << 3,       /* does not own its block */
};

typedef struct clsynth_tensor {
    char name[64];
    int ndim;        /* 1..4, for messages; storage is always (n, c, h, w) */
    int n, c, h, w;
    size_t numel;
    cl_mem mem;
    size_t off;      /* element offset into mem */
    struct clsynth_block *block; /* owning pool block (NULL for views) */
    struct clsynth_tensor *grad; /* d(loss)/d(this), same shape; NULL until needed */
    unsigned flags;
    struct clsynth_tensor *next_live; /* context's activation list */
} clsynth_tensor;

#define CLSYNTH_HW(t) ((size_t)(t)->h * (size_t)(t)->w)

/* New activation tensor (uninitialized contents). The name is copied. */
clsynth_tensor *clsynth_tensor_new(clsynth_ctx *ctx, const char *name, int n, int c, int h, int w);
/* New persistent tensor: freed only by clsynth_tensor_free. */
clsynth_tensor *clsynth_tensor_new_persistent(clsynth_ctx *ctx, const char *name, int n, int c,
                                              int h, int w);
/* Same shape as t, zero-filled activation. */
clsynth_tensor *clsynth_tensor_zeros_like(clsynth_ctx *ctx, const char *name, const clsynth_tensor *t);
/* Makes an activation survive clsynth_release_activations. */
void clsynth_tensor_keep(clsynth_ctx *ctx, clsynth_tensor *t);
void clsynth_tensor_free(clsynth_ctx *ctx, clsynth_tensor *t);

/* A view of numel elements of t starting at element `start`, with a new shape
 * (n*c*h*w must fit inside t). The view is released with the activations unless kept. */
clsynth_tensor *clsynth_tensor_view(clsynth_ctx *ctx, clsynth_tensor *t, const char *name,
                                    size_t start, int n, int c, int h, int w);
/* Samples [first, first+count) along N, as a view. */
clsynth_tensor *clsynth_tensor_batch_slice(clsynth_ctx *ctx, clsynth_tensor *t, int first, int count);

int clsynth_tensor_upload(clsynth_ctx *ctx, clsynth_tensor *t, const float *host);
int clsynth_tensor_download(clsynth_ctx *ctx, const clsynth_tensor *t, float *host);
int clsynth_tensor_fill(clsynth_ctx *ctx, clsynth_tensor *t, float value);
/* dst <- src (same numel). */
int clsynth_tensor_copy(clsynth_ctx *ctx, clsynth_tensor *dst, const clsynth_tensor *src);
/* Activation tensor holding a copy of host data. */
clsynth_tensor *clsynth_tensor_from_host(clsynth_ctx *ctx, const char *name, int n, int c, int h,
                                         int w, const float *host);

bool clsynth_same_shape(const clsynth_tensor *a, const clsynth_tensor *b);
/* "name (2, 3, 5, 7)" into buf. */
const char *clsynth_tensor_describe(const clsynth_tensor *t, char *buf, size_t len);

/* Frees every activation not kept. Called at the end of each step. */
void clsynth_release_activations(clsynth_ctx *ctx);

/* Device-memory pool statistics. The pool never reserves more than the
 * device's global memory: an allocation past it fails with a message (before
 * a driver that allocates lazily, like PoCL, would abort on first use). */
typedef struct clsynth_pool_stats {
    unsigned long device_allocs; /* clCreateBuffer calls so far */
    size_t bytes_in_use;         /* handed out to tensors now */
    size_t bytes_reserved;       /* allocated from the device (in use + free lists) */
    size_t peak_bytes_reserved;
    size_t largest_block;        /* largest block handed out since the last reset_peak */
} clsynth_pool_stats;
clsynth_pool_stats clsynth_pool_get_stats(const clsynth_ctx *ctx);
/* Returns every free block to the device. */
void clsynth_pool_trim(clsynth_ctx *ctx);
/* Restarts peak_bytes_reserved from bytes_reserved and largest_block from 0
 * (to measure one stretch of work). */
void clsynth_pool_reset_peak(clsynth_ctx *ctx);

/* internal */
int clsynth_pool_create(clsynth_ctx *ctx);
void clsynth_pool_destroy(clsynth_ctx *ctx);
/* Raw pooled buffer (for flat parameter storage etc.); name used in errors. */
struct clsynth_block *clsynth_pool_get(clsynth_ctx *ctx, size_t bytes, const char *name);
void clsynth_pool_put(clsynth_ctx *ctx, struct clsynth_block *b);
cl_mem clsynth_block_mem(const struct clsynth_block *b);

#endif
