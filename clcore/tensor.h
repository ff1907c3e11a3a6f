/* Device tensors: float32, up to 4-D, always stored NCHW-contiguous as
 * (n, c, h, w) with unused leading dims = 1. A tensor is a view of a cl_mem at
 * an element offset, so kernels take every tensor as (global float *p, int off).
 *
 * Lifetime: tensors made with clsynth_tensor_new are *activations*: the
 * context frees them all at clsynth_release_activations() (called by
 * clsynth_backward) unless clsynth_tensor_keep() was called; during
 * clsynth_backward each one is freed as soon as no remaining tape node needs
 * it (see clcore/autograd.h). Persistent tensors
 * (parameters, optimizer state, inputs a caller keeps) are freed by
 * clsynth_tensor_free. Device memory comes from a pool of reused blocks
 * (clcore/pool.c), so a repeated training step allocates nothing new after the first. */
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
    CLSYNTH_T_GRAD = 1u << 4,       /* an activation's gradient (clsynth_grad_of): freed with it */
    CLSYNTH_T_HALF = 1u << 5,       /* its block holds half values, kept for the backward
                                       (clsynth_stash_newer_as_half): no op may read it as float */
    CLSYNTH_T_STASHED = 1u << 6,    /* was stored as half at some point (stays set) */
    CLSYNTH_T_GONE = 1u << 7,       /* a stashed tensor whose value the backward has no reader left
                                       for: its block is freed, its gradient stays (clcore/autograd.c) */
};

typedef struct clsynth_tensor {
    char name[64];
    int ndim;        /* 1..4, for messages; storage is always (n, c, h, w) */
    int n, c, h, w;
    size_t numel;
    cl_mem mem;
    size_t off;      /* element offset into mem */
    struct clsynth_block *block; /* owning pool block (NULL for views) */
    struct clsynth_block *half_exp; /* CLSYNTH_T_HALF: the power-of-two exponent of each run of 16
                                       values block holds as half (a byte each, kernels/half.cl) */
    struct clsynth_tensor *grad; /* d(loss)/d(this), same shape; NULL until needed */
    unsigned flags;
    struct clsynth_tensor *next_live, *prev_live; /* context's activation list */
    struct clsynth_tensor *base; /* a view's tensor that owns the memory (NULL: not a view) */
    unsigned long serial;        /* creation order within the context */
    /* scratch of clsynth_backward: the lowest tape node that uses it, and its
     * release list */
    int first_use;
    struct clsynth_tensor *next_release;
    int value_use; /* ... the lowest node that reads its value (not only its shape and gradient) */
    struct clsynth_tensor *next_drop;
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
/* Frees one activation now, with its gradient if that is an activation too
 * (a persistent tensor is left alone). For clsynth_backward, which knows when
 * nothing needs it any more. */
void clsynth_tensor_release(clsynth_ctx *ctx, clsynth_tensor *t);
/* Frees the activations made after serial `mark` (a value of
 * ctx->tensor_serial) except keep[0..n_keep) (NULL entries allowed) and the
 * tensors whose memory a kept view uses: the intermediates of a pass whose
 * outputs are all that is needed (a no-grad pass, which records nothing on
 * the tape). */
void clsynth_release_newer(clsynth_ctx *ctx, unsigned long mark, clsynth_tensor *const *keep, int n_keep);

/* Half-precision storage of activations (clcore/stash.c, kernels/half.cl),
 * for clsynth_stash_newer_as_half (clcore/autograd.h) and the backward.
 * 0 when the device reports cl_khr_fp16, else -1 with a message naming
 * `what`, the device and the missing extension. */
int clsynth_half_storage_check(clsynth_ctx *ctx, const char *what);
/* Moves an activation that owns its block to half storage and sets
 * CLSYNTH_T_HALF: a new block of numel halves of x 2^k, k a power of two
 * per run of 16 elements that brings the run's largest |x| into
 * [2^14, 2^15) (so 1e-10 activations keep 11 bits), rounded to nearest even,
 * and a block t->half_exp of the runs' exponents (kernels/half.cl); the
 * float block goes back to the pool. The half block is exactly the size of
 * a float tensor of numel / 2, which the pool serves from the same list. */
int clsynth_tensor_to_half(clsynth_ctx *ctx, clsynth_tensor *t);
/* The reverse: a fresh float block holding the half values (exact), for a
 * reader; the views of t on the activation list follow it. No-op on float. */
int clsynth_tensor_to_float(clsynth_ctx *ctx, clsynth_tensor *t);
/* Frees the float block of a stashed tensor that no reader of its value is
 * left for (CLSYNTH_T_GONE; the tensor and its gradient stay). */
void clsynth_tensor_drop_value(clsynth_ctx *ctx, clsynth_tensor *t);
/* 0 if t (or the tensor owning a view's memory) is stored as float, else
 * -1 with a message naming the reader and the tensor. */
int clsynth_tensor_readable(clsynth_ctx *ctx, const clsynth_tensor *t, const char *reader);

/* Device-memory pool statistics. The pool never reserves more than the
 * device's global memory: an allocation past it fails with a message (before
 * a driver that allocates lazily, like PoCL, would abort on first use). */
/* What a pooled block holds, from the name it was asked for under (tensor
 * names: "<group>.params", "<group>.grads", "<group>.adam_m" / "adam_v" are a
 * parameter group's flat buffers, "grad(...)" an activation's gradient). */
typedef enum clsynth_pool_kind {
    CLSYNTH_POOL_PARAMS,     /* parameter groups' flat weights */
    CLSYNTH_POOL_PARAM_GRADS,/* parameter groups' flat gradients */
    CLSYNTH_POOL_ADAM,       /* Adam's m and v */
    CLSYNTH_POOL_GRADS,      /* gradients of activations */
    CLSYNTH_POOL_COLUMNS,    /* im2col column buffers */
    CLSYNTH_POOL_OTHER,      /* activations, buffers, inputs, everything else */
    CLSYNTH_POOL_KINDS
} clsynth_pool_kind;
const char *clsynth_pool_kind_name(clsynth_pool_kind k);

typedef struct clsynth_pool_stats {
    unsigned long device_allocs; /* clCreateBuffer calls so far */
    size_t bytes_in_use;         /* handed out to tensors now */
    size_t bytes_reserved;       /* allocated from the device (in use + free lists) */
    size_t peak_bytes_reserved;
    size_t peak_bytes_in_use;    /* since the last reset_peak */
    size_t largest_block;        /* largest block handed out since the last reset_peak */
    size_t kind_in_use[CLSYNTH_POOL_KINDS];         /* bytes_in_use by kind, now */
    size_t kind_at_peak[CLSYNTH_POOL_KINDS];        /* ... at the moment of peak_bytes_in_use */
    size_t free_at_peak_reserved;                   /* free-list bytes when peak_bytes_reserved was set */
} clsynth_pool_stats;
clsynth_pool_stats clsynth_pool_get_stats(const clsynth_ctx *ctx);
/* Returns every free block to the device. */
void clsynth_pool_trim(clsynth_ctx *ctx);
/* Restarts peak_bytes_reserved from bytes_reserved, peak_bytes_in_use from
 * bytes_in_use and largest_block from 0 (to measure one stretch of work). */
void clsynth_pool_reset_peak(clsynth_ctx *ctx);

/* internal */
int clsynth_pool_create(clsynth_ctx *ctx);
void clsynth_pool_destroy(clsynth_ctx *ctx);
/* Raw pooled buffer (for flat parameter storage etc.); name used in errors. */
struct clsynth_block *clsynth_pool_get(clsynth_ctx *ctx, size_t bytes, const char *name);
void clsynth_pool_put(clsynth_ctx *ctx, struct clsynth_block *b);
cl_mem clsynth_block_mem(const struct clsynth_block *b);

#endif
