/* Reverse-mode autograd: a tape of recorded ops.
 *
 * An op that produces `out` from inputs records a node when grad mode is on
 * (ctx->no_grad == 0) and at least one input requires grad; `out` then
 * requires grad too. clsynth_backward(loss) seeds d(loss)/d(loss) = 1 and runs
 * the nodes' backward functions in reverse order. Backward functions
 * *accumulate* (+=) into the inputs' gradients, which clsynth_grad_of()
 * allocates zero-filled on first use; parameter gradients live in their
 * group's flat gradient buffer and persist until clsynth_group_zero_grad().
 * During backward each activation (with its gradient) is freed right after
 * the backward of the earliest node that uses it (as input, output, saved
 * tensor, or through a view), activations no node uses are freed before it
 * starts, and a backward function's temporaries after it returns, as PyTorch
 * frees saved tensors: the peak is the forward's activations, not twice that.
 * After backward the tape is cleared and the activations are released. */
#ifndef CLSYNTH_AUTOGRAD_H
#define CLSYNTH_AUTOGRAD_H

#include "clcore/context.h"
#include "clcore/tensor.h"

#define CLSYNTH_NODE_MAX_IN 8

struct clsynth_node;
typedef int (*clsynth_backward_fn)(clsynth_ctx *ctx, struct clsynth_node *node);

typedef struct clsynth_node {
    const char *op;                 /* op name, for messages */
    clsynth_backward_fn backward;
    clsynth_tensor *out;
    clsynth_tensor *in[CLSYNTH_NODE_MAX_IN];
    int n_in;
    clsynth_tensor *saved[4];       /* extra tensors saved by the forward */
    int iarg[8];                    /* op parameters */
    float farg[8];
    void *extra;                    /* op-owned memory, free()d with the node */
    struct clsynth_kforce *force;   /* the caller's forced kernel configuration, for the backward
                                       kernels (clcore/kdef.h; NULL: resolved as usual) */
    bool out_unread;                /* the backward reads out's shape and gradient only, not its
                                       values (conv2d): a stashed out is not brought back for it */
} clsynth_node;

/* True if the op should record: grad mode on and some input requires grad. */
bool clsynth_grad_needed(const clsynth_ctx *ctx, clsynth_tensor *const *in, int n_in);

/* Records a node for out = op(in...) and marks out as requiring grad. Returns
 * the node (to fill saved/iarg/farg/extra), or NULL when nothing needs
 * recording (or on failure, with ctx->failed set). */
clsynth_node *clsynth_tape_record(clsynth_ctx *ctx, const char *op, clsynth_backward_fn backward,
                                  clsynth_tensor *out, clsynth_tensor *const *in, int n_in);

/* Gradient tensor of t (zero-filled on first use). NULL on failure. */
clsynth_tensor *clsynth_grad_of(clsynth_ctx *ctx, clsynth_tensor *t);

/* The gradient of t for a backward whose kernel writes every element of it: a
 * new one is not zero-filled and *accumulate is 0 (the kernel stores its value),
 * an existing one gets *accumulate 1 (the kernel adds). This saves the fill
 * launch of most activations' gradients (about 450 of a tiny step's 3,000
 * launches were fills). NULL on failure. */
clsynth_tensor *clsynth_grad_for_write(clsynth_ctx *ctx, clsynth_tensor *t, int *accumulate);

/* loss must have one element. Runs the tape backwards, clears it and releases
 * the activations (keep what you need with clsynth_tensor_keep). */
int clsynth_backward(clsynth_ctx *ctx, clsynth_tensor *loss);

/* Runs the tape backwards seeding d(loss)/d(out) = grad_out (same shape as
 * out): the vector-Jacobian product of any op, used by gradient tests. Clears
 * the tape and releases the activations like clsynth_backward. */
int clsynth_backward_with(clsynth_ctx *ctx, clsynth_tensor *out, const clsynth_tensor *grad_out);

/* Half-precision storage of what only the backward reads (the
 * --half_activations training option; compute stays float everywhere).
 * Of the activations newer than serial `mark` (a value of ctx->tensor_serial)
 * other than keep[0..n_keep) (NULL entries allowed) and the tensors whose
 * memory a kept view uses (the caller promises that its forward reads
 * nothing else of that stretch any more; an op that does fails naming the
 * tensor):
 *   - those some recorded node reads in its backward (as out, input or saved
 *     tensor, itself or through a view) move to half storage
 *     (clsynth_tensor_to_half), except views, gradients and tensors of fewer
 *     than CLSYNTH_STASH_MIN_NUMEL elements, which stay float;
 *   - those no node reads are freed now, as the backward would free them
 *     first thing (with an empty tape, a no-grad pass: all of them, as
 *     clsynth_release_newer).
 * clsynth_backward brings each stashed tensor back to a fresh float block
 * right before the first backward function (in backward order) that reads
 * its value, frees that block after the last one (CLSYNTH_T_GONE: a node
 * that only holds it as its out_unread output may follow) and the tensor
 * with its gradient as before, after the last node that uses it. Fails (message naming the
 * device) where the device does not report cl_khr_fp16. The analogue of
 * clsynth_release_newer for a pass that records. */
#define CLSYNTH_STASH_MIN_NUMEL 8192 /* smaller tensors: four launches for < 16 KiB saved (at the tiny preset
                                        on Intel's CPU runtime 1024 stashed 345 tensors a step, 8192 210, for
                                        0.3 MiB more at the peak) */
int clsynth_stash_newer_as_half(clsynth_ctx *ctx, unsigned long mark, clsynth_tensor *const *keep, int n_keep);

/* Drops the tape without running it (e.g. after a no-grad evaluation). */
void clsynth_tape_clear(clsynth_ctx *ctx);

/* Number of recorded nodes (for tests). */
int clsynth_tape_size(const clsynth_ctx *ctx);

/* No-grad scopes nest. */
static inline void clsynth_no_grad_begin(clsynth_ctx *ctx) { ctx->no_grad++; }
static inline void clsynth_no_grad_end(clsynth_ctx *ctx) { ctx->no_grad--; }

/* A view of t that does not require grad (the forward value, cut from the graph). */
clsynth_tensor *clsynth_detach(clsynth_ctx *ctx, clsynth_tensor *t);

/* internal */
int clsynth_tape_create(clsynth_ctx *ctx);
void clsynth_tape_destroy(clsynth_ctx *ctx);

#endif
