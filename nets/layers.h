/* Building blocks shared by every network in nets/: a convolution (optionally
 * spectral-normalized), a normalization layer and their combination
 * conv → norm → LeakyReLU(0.2) used by the pyramids, encoders and
 * discriminators.
 *
 * A layer is declared into a parameter group (clsynth_group_param /
 * clsynth_group_buffer) before the group is finalized; its tensors are then
 * views into the group's flat buffers. Names are "<prefix>.w", "<prefix>.b",
 * "<prefix>.u" and "<prefix>.v" (spectral-norm left and right singular
 * vectors, buffers: PyTorch's weight_u and weight_v),
 * "<prefix>.gamma", "<prefix>.beta", "<prefix>.running_mean",
 * "<prefix>.running_var"; clsynth_init_group() initializes a group from those
 * suffixes. */
#ifndef CLSYNTH_NETS_LAYERS_H
#define CLSYNTH_NETS_LAYERS_H

#include <stdbool.h>
#include <stdint.h>

#include "clcore/context.h"
#include "clcore/error.h"
#include "clcore/params.h"
#include "clcore/tensor.h"

struct clsynth_sn_set;

/* How a forward pass runs. */
typedef struct clsynth_forward_mode {
    clsynth_ctx *ctx;
    bool training; /* batch norm: batch statistics + running-stat update (else running stats) */
    bool update_u; /* spectral norm: one power iteration (v, then u) before normalizing;
                      else the stored u and v give sigma, as PyTorch's eval */
    struct clsynth_sn_set *sn; /* the network's spectral-normalized weights, normalized together at
                                  the start of its forward (clsynth_sn_forward); NULL, or a conv not
                                  in it: the conv normalizes its own weight (clsynth_spectral_norm) */
    bool stash_half; /* --half_activations: the networks store what only their backward reads as
                        half at their block boundaries (clsynth_forward_stash) */
} clsynth_forward_mode;

typedef enum clsynth_norm_kind {
    CLSYNTH_NORM_NONE = 0,
    CLSYNTH_NORM_BATCH,     /* "batch": statistics of this process's batch */
    CLSYNTH_NORM_INSTANCE,
    CLSYNTH_NORM_SYNCBATCH, /* "syncbatch" (and the authors' "sync_batch"): statistics over every
                            rank of a data-parallel run (clsynth_sync_batch_norm); in one
                            process the same as "batch" */
} clsynth_norm_kind;

/* Batch norm of either kind (affine, running statistics). */
static inline bool clsynth_norm_is_batch(clsynth_norm_kind k) { return k == CLSYNTH_NORM_BATCH || k == CLSYNTH_NORM_SYNCBATCH; }

/* A parsed --norm_G / --norm_D / --norm_E string, SPADE style:
 * ["spectral"] ["spade"] ("batch" | "syncbatch" | "sync_batch" | "instance" | "none") ["3x3"],
 * e.g. "spectralinstance", "spectralspadesyncbatch3x3". */
typedef struct clsynth_norm_cfg {
    bool spectral;
    clsynth_norm_kind kind;
} clsynth_norm_cfg;

int clsynth_norm_parse(const char *s, const char *option, clsynth_norm_cfg *out, clsynth_err *err);

#define CLSYNTH_LRELU_SLOPE 0.2f
#define CLSYNTH_BN_MOMENTUM 0.1f
#define CLSYNTH_NORM_EPS 1e-5f

/* ---- convolution ---- */
typedef struct clsynth_conv {
    clsynth_tensor *w; /* (cout, cin, k, k) */
    clsynth_tensor *b; /* (1, cout, 1, 1) or NULL */
    clsynth_tensor *u; /* (1, cout, 1, 1) spectral-norm left vector, or NULL */
    clsynth_tensor *v; /* (1, cin·k·k, 1, 1) spectral-norm right vector, or NULL */
    int cin, cout, k, stride, pad;
} clsynth_conv;

int clsynth_conv_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int cin, int cout,
                   int k, int stride, int pad, bool bias, bool spectral, clsynth_conv *out);
clsynth_tensor *clsynth_conv_forward(const clsynth_forward_mode *f, const clsynth_conv *c, clsynth_tensor *x);
/* The conv with a fused epilogue (clsynth_conv2d_fused): act((conv + b) * gate) + residual. */
struct clsynth_conv_epilogue;
clsynth_tensor *clsynth_conv_forward_epi(const clsynth_forward_mode *f, const clsynth_conv *c, clsynth_tensor *x,
                                      const struct clsynth_conv_epilogue *e);

/* A linear layer is a clsynth_conv with k = 1 applied to a flattened input. */
int clsynth_linear_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int in, int out,
                     bool bias, bool spectral, clsynth_conv *outl);
clsynth_tensor *clsynth_linear_forward(const clsynth_forward_mode *f, const clsynth_conv *c, clsynth_tensor *x);

/* ---- normalization ---- */
typedef struct clsynth_norm {
    clsynth_norm_kind kind;
    int c;
    clsynth_tensor *gamma, *beta;            /* (1, c, 1, 1) when affine, else NULL */
    clsynth_tensor *running_mean, *running_var; /* (1, c, 1, 1) batch norm only */
} clsynth_norm;

int clsynth_norm_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, clsynth_norm_kind kind,
                   int c, bool affine, clsynth_norm *out);
clsynth_tensor *clsynth_norm_forward(const clsynth_forward_mode *f, const clsynth_norm *n, clsynth_tensor *x);

/* ---- conv → norm → LeakyReLU(0.2) (SPADE's get_nonspade_norm_layer + activation) ----
 * The conv has a bias only without a norm (a bias before a norm has no
 * effect, SPADE removes it); the norm is affine for batch norm and not for
 * instance norm, as SPADE's get_nonspade_norm_layer. */
typedef struct clsynth_cna {
    clsynth_conv conv;
    clsynth_norm norm;
    bool act;
} clsynth_cna;

int clsynth_cna_make(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int cin, int cout,
                  int k, int stride, int pad, clsynth_norm_cfg cfg, bool act, clsynth_cna *out);
clsynth_tensor *clsynth_cna_forward(const clsynth_forward_mode *f, const clsynth_cna *l, clsynth_tensor *x);

/* Initializes every tensor of a finalized group from its name: ".w" xavier
 * normal (gain 0.02, stream = stream_base + index), ".b"/".beta"/
 * ".running_mean" 0, ".gamma"/".running_var" 1, ".u" N(0,1) normalized,
 * ".v" = normalize(Wᵀu) of its weight (clsynth_spectral_norm_init_v; PyTorch
 * draws a random v, which only an eval forward before any training step
 * would see). */
int clsynth_init_group(clsynth_ctx *ctx, clsynth_param_group *g, uint64_t seed, uint64_t stream_base);
/* ".v" <- normalize(Wᵀu) from the group's current weights and u, for every
 * ".v" buffer i with which[i] (which NULL: all of them). */
int clsynth_init_spectral_v(clsynth_ctx *ctx, clsynth_param_group *g, const bool *which);

/* The spectral-normalized convs declared in g from buffer index first_buffer
 * on (a network's: g->n_buffers before its make) as a new set (*out NULL
 * when there are none), for clsynth_sn_forward. */
int clsynth_sn_collect(clsynth_ctx *ctx, clsynth_param_group *g, int first_buffer, const char *name,
                       struct clsynth_sn_set **out);
/* *out = *f with the weights of s normalized now, all at once (one power
 * iteration first when f->update_u), for the convs of the network's forward
 * to use: each weight once per forward, as each conv normalizing its own
 * would. s NULL (a network without spectral norm): out->sn NULL. */
int clsynth_sn_forward(const clsynth_forward_mode *f, struct clsynth_sn_set *s, clsynth_forward_mode *out);

/* A network's block boundary under f->stash_half (--half_activations): what
 * its forward made since serial `mark` (ctx->tensor_serial before the
 * stretch) that only the backward reads goes to half storage, except
 * keep[0..n_keep) (what the rest of the forward reads; NULLs allowed):
 * clsynth_stash_newer_as_half; in a no-grad pass it frees them instead
 * (clsynth_release_newer). Without stash_half: nothing. Returns 0 or -1. */
int clsynth_forward_stash(const clsynth_forward_mode *f, unsigned long mark, clsynth_tensor *const *keep, int n_keep);

/* "name" formatted into a caller buffer (layer names are built from parts). */
const char *clsynth_layer_name(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
