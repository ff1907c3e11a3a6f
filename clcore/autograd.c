/* The tape: recording, backward in reverse order, gradient allocation. */
#include "clcore/autograd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct clsynth_tape {
    clsynth_node *nodes;
    int count, cap;
} clsynth_tape;

int clsynth_tape_create(clsynth_ctx *ctx)
{
    ctx->tape = calloc(1, sizeof *ctx->tape);
    return ctx->tape ? 0 : clsynth_ctx_fail(ctx, "out of host memory");
}

void clsynth_tape_clear(clsynth_ctx *ctx)
{
    clsynth_tape *tp = ctx->tape;
    if (!tp)
        return;
    for (int i = 0; i < tp->count; i++)
        free(tp->nodes[i].extra);
    tp->count = 0;
}

void clsynth_tape_destroy(clsynth_ctx *ctx)
{
    if (!ctx->tape)
        return;
    clsynth_tape_clear(ctx);
    free(ctx->tape->nodes);
    free(ctx->tape);
    ctx->tape = NULL;
}

int clsynth_tape_size(const clsynth_ctx *ctx) { return ctx->tape ? ctx->tape->count : 0; }

bool clsynth_grad_needed(const clsynth_ctx *ctx, clsynth_tensor *const *in, int n_in)
{
    if (ctx->no_grad > 0)
        return false;
    for (int i = 0; i < n_in; i++)
        if (in[i] && (in[i]->flags & CLSYNTH_T_REQUIRES_GRAD))
            return true;
    return false;
}

clsynth_node *clsynth_tape_record(clsynth_ctx *ctx, const char *op, clsynth_backward_fn backward,
                                  clsynth_tensor *out, clsynth_tensor *const *in, int n_in)
{
    if (ctx->failed || !out || !clsynth_grad_needed(ctx, in, n_in))
        return NULL;
    if (n_in > CLSYNTH_NODE_MAX_IN) {
        clsynth_ctx_fail(ctx, "op %s: %d inputs, the tape holds at most %d", op, n_in, CLSYNTH_NODE_MAX_IN);
        return NULL;
    }
    clsynth_tape *tp = ctx->tape;
    if (tp->count == tp->cap) {
        int cap = tp->cap ? tp->cap * 2 : 256;
        clsynth_node *grown = realloc(tp->nodes, sizeof *grown * (size_t)cap);
        if (!grown) {
            clsynth_ctx_fail(ctx, "out of host memory recording op %s", op);
            return NULL;
        }
        tp->nodes = grown;
        tp->cap = cap;
    }
    clsynth_node *nd = &tp->nodes[tp->count++];
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->backward = backward;
    nd->out = out;
    nd->n_in = n_in;
    for (int i = 0; i < n_in; i++)
        nd->in[i] = in[i];
    out->flags |= CLSYNTH_T_REQUIRES_GRAD;
    return nd;
}

clsynth_tensor *clsynth_grad_of(clsynth_ctx *ctx, clsynth_tensor *t)
{
    if (!t || ctx->failed)
        return NULL;
    if (t->grad)
        return t->grad;
    char name[64];
    snprintf(name, sizeof name, "grad(%.50s)", t->name);
    clsynth_tensor *g = (t->flags & CLSYNTH_T_PERSISTENT)
                            ? clsynth_tensor_new_persistent(ctx, name, t->n, t->c, t->h, t->w)
                            : clsynth_tensor_new(ctx, name, t->n, t->c, t->h, t->w);
    if (!g || clsynth_tensor_fill(ctx, g, 0.0f))
        return NULL;
    t->grad = g;
    return g;
}

static int run_tape(clsynth_ctx *ctx);

int clsynth_backward(clsynth_ctx *ctx, clsynth_tensor *loss)
{
    if (ctx->failed || !loss)
        return -1;
    if (loss->numel != 1)
        return clsynth_ctx_fail(ctx, "backward from '%s': the loss must have one element, it has %zu",
                                loss->name, loss->numel);
    if (!(loss->flags & CLSYNTH_T_REQUIRES_GRAD))
        return clsynth_ctx_fail(ctx, "backward from '%s': it does not depend on anything that requires grad",
                                loss->name);
    clsynth_tensor *g = clsynth_grad_of(ctx, loss);
    if (!g || clsynth_tensor_fill(ctx, g, 1.0f))
        return -1;
    return run_tape(ctx);
}

int clsynth_backward_with(clsynth_ctx *ctx, clsynth_tensor *out, const clsynth_tensor *grad_out)
{
    if (ctx->failed || !out || !grad_out)
        return -1;
    if (!clsynth_same_shape(out, grad_out))
        return clsynth_ctx_fail(ctx, "backward from '%s': seed gradient '%s' has another shape", out->name,
                                grad_out->name);
    if (!(out->flags & CLSYNTH_T_REQUIRES_GRAD))
        return clsynth_ctx_fail(ctx, "backward from '%s': it does not depend on anything that requires grad",
                                out->name);
    clsynth_tensor *g = clsynth_grad_of(ctx, out);
    if (!g || clsynth_tensor_copy(ctx, g, grad_out))
        return -1;
    return run_tape(ctx);
}

static int run_tape(clsynth_ctx *ctx)
{
    clsynth_tape *tp = ctx->tape;
    for (int i = tp->count - 1; i >= 0; i--) {
        clsynth_node *nd = &tp->nodes[i];
        if (!nd->out->grad)
            continue; /* no gradient reached this op */
        if (nd->backward(ctx, nd)) {
            if (!ctx->failed)
                clsynth_ctx_fail(ctx, "backward of op %s failed", nd->op);
            clsynth_wrap(&ctx->err, "backward of op %s", nd->op);
            clsynth_tape_clear(ctx);
            return -1;
        }
    }
    clsynth_tape_clear(ctx);
    clsynth_release_activations(ctx);
    return 0;
}

clsynth_tensor *clsynth_detach(clsynth_ctx *ctx, clsynth_tensor *t)
{
    if (!t || ctx->failed)
        return NULL;
    char name[64];
    snprintf(name, sizeof name, "detach(%.48s)", t->name);
    return clsynth_tensor_view(ctx, t, name, 0, t->n, t->c, t->h, t->w);
}
