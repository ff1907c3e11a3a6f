/* The tape: recording, backward in reverse order, gradient allocation. */
#include "clcore/autograd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct clsynth_tape {
    clsynth_node *nodes;
    int count, cap;
    clsynth_tensor **release_at; /* backward: per node, the activations freed after it */
    clsynth_tensor **drop_at;    /* ... and the stashed tensors whose float value is freed after it */
    int release_cap;
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
    free(ctx->tape->release_at);
    free(ctx->tape->drop_at);
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
    for (int i = 0; i < n_in; i++) {
        char reader[64];
        snprintf(reader, sizeof reader, "op %s", op);
        if (in[i] && clsynth_tensor_readable(ctx, in[i], reader))
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

/* A new gradient tensor for t, its contents undefined. */
static clsynth_tensor *new_grad(clsynth_ctx *ctx, clsynth_tensor *t)
{
    char name[64];
    snprintf(name, sizeof name, "grad(%.50s)", t->name);
    clsynth_tensor *g = (t->flags & CLSYNTH_T_PERSISTENT)
                            ? clsynth_tensor_new_persistent(ctx, name, t->n, t->c, t->h, t->w)
                            : clsynth_tensor_new(ctx, name, t->n, t->c, t->h, t->w);
    if (!g)
        return NULL;
    g->flags |= CLSYNTH_T_GRAD;
    t->grad = g;
    return g;
}

clsynth_tensor *clsynth_grad_of(clsynth_ctx *ctx, clsynth_tensor *t)
{
    if (!t || ctx->failed)
        return NULL;
    if (t->grad)
        return t->grad;
    clsynth_tensor *g = new_grad(ctx, t);
    return g && clsynth_tensor_fill(ctx, g, 0.0f) == 0 ? g : NULL;
}

clsynth_tensor *clsynth_grad_for_write(clsynth_ctx *ctx, clsynth_tensor *t, int *accumulate)
{
    if (!t || ctx->failed)
        return NULL;
    *accumulate = t->grad != NULL;
    return t->grad ? t->grad : new_grad(ctx, t);
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
    int acc; /* the seed is set, whatever the gradient held (the fill writes every element) */
    clsynth_tensor *g = clsynth_grad_for_write(ctx, loss, &acc);
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

/* Lowers the first use of t (and of the tensor owning a view's memory) to node i. */
static void mark_use(clsynth_tensor *t, int i)
{
    if (!t)
        return;
    if (t->first_use > i)
        t->first_use = i;
    if (t->base && t->base->first_use > i)
        t->base->first_use = i;
}

/* Plans the backward's frees, as PyTorch frees a saved tensor once its last
 * backward use is done: every activation goes on the list of the lowest tape
 * node that uses it (as input, output or saved tensor, itself or through a
 * view of it), to be freed with its gradient after that node's backward.
 * Activations no node uses (intermediates of no-grad passes, values the
 * caller read) are freed now. Gradients are freed with their tensors. */
/* Lowers the lowest reader of t's value (itself or the tensor owning a view's memory) to node i. */
static void mark_value_use(clsynth_tensor *t, int i)
{
    if (!t)
        return;
    clsynth_tensor *owner = t->base ? t->base : t;
    if (owner->value_use > i)
        owner->value_use = i;
}

static int plan_releases(clsynth_ctx *ctx, clsynth_tape *tp)
{
    if (tp->count > tp->release_cap) {
        clsynth_tensor **grown = realloc(tp->release_at, sizeof *grown * (size_t)tp->count);
        if (grown)
            tp->release_at = grown;
        clsynth_tensor **grown_d = grown ? realloc(tp->drop_at, sizeof *grown_d * (size_t)tp->count) : NULL;
        if (!grown || !grown_d)
            return clsynth_ctx_fail(ctx, "out of host memory planning the backward of %d ops", tp->count);
        tp->drop_at = grown_d;
        tp->release_cap = tp->count;
    }
    for (int i = 0; i < tp->count; i++)
        tp->release_at[i] = tp->drop_at[i] = NULL;
    for (clsynth_tensor *t = ctx->live; t; t = t->next_live)
        t->first_use = t->value_use = tp->count;
    for (int i = tp->count - 1; i >= 0; i--) {
        clsynth_node *nd = &tp->nodes[i];
        mark_use(nd->out, i);
        for (int k = 0; k < nd->n_in; k++)
            mark_use(nd->in[k], i);
        for (int k = 0; k < 4; k++)
            mark_use(nd->saved[k], i);
        if (!nd->out_unread)
            mark_value_use(nd->out, i);
        for (int k = 0; k < nd->n_in; k++)
            mark_value_use(nd->in[k], i);
        for (int k = 0; k < 4; k++)
            mark_value_use(nd->saved[k], i);
    }
    clsynth_tensor *dead = NULL;
    for (clsynth_tensor *t = ctx->live; t; t = t->next_live) {
        if (t->flags & CLSYNTH_T_GRAD)
            continue; /* freed with its tensor (or at the end) */
        /* a stashed tensor whose last value reader comes before (runs after)
         * nodes that only hold it: its float block goes after that reader */
        if ((t->flags & CLSYNTH_T_HALF) && t->value_use < tp->count && t->value_use > t->first_use) {
            t->next_drop = tp->drop_at[t->value_use];
            tp->drop_at[t->value_use] = t;
        }
        if (t->first_use < tp->count) {
            t->next_release = tp->release_at[t->first_use];
            tp->release_at[t->first_use] = t;
        } else {
            t->next_release = dead;
            dead = t;
        }
    }
    while (dead) {
        clsynth_tensor *next = dead->next_release;
        clsynth_tensor_release(ctx, dead);
        dead = next;
    }
    return 0;
}

/* Frees what a backward function made besides gradients (its temporaries):
 * every activation newer than serial `mark` that is not a gradient. New
 * tensors are at the head of the activation list. */
static void release_temporaries(clsynth_ctx *ctx, unsigned long mark)
{
    clsynth_tensor *t = ctx->live;
    while (t && t->serial > mark) {
        clsynth_tensor *next = t->next_live;
        if (!(t->flags & CLSYNTH_T_GRAD))
            clsynth_tensor_release(ctx, t);
        t = next;
    }
}

/* Back to float storage, t itself or the tensor owning a view's memory. */
static int unstash(clsynth_ctx *ctx, clsynth_tensor *t)
{
    if (!t)
        return 0;
    clsynth_tensor *owner = t->base ? t->base : t;
    return (owner->flags & CLSYNTH_T_HALF) ? clsynth_tensor_to_float(ctx, owner) : 0;
}

/* Every tensor a node's backward reads, as float, right before it runs. */
static int unstash_node(clsynth_ctx *ctx, clsynth_node *nd)
{
    int rc = nd->out_unread ? 0 : unstash(ctx, nd->out);
    for (int k = 0; k < nd->n_in; k++)
        rc |= unstash(ctx, nd->in[k]);
    for (int k = 0; k < 4; k++)
        rc |= unstash(ctx, nd->saved[k]);
    return rc ? -1 : 0;
}

int clsynth_stash_newer_as_half(clsynth_ctx *ctx, unsigned long mark, clsynth_tensor *const *keep, int n_keep)
{
    if (ctx->failed)
        return -1;
    if (clsynth_half_storage_check(ctx, "half-precision activations (--half_activations)"))
        return -1;
    clsynth_tape *tp = ctx->tape;
    if (!tp || tp->count == 0) { /* no backward to come: nothing but keep[] is read again */
        clsynth_release_newer(ctx, mark, keep, n_keep);
        return 0;
    }
    /* first_use is the backward's scratch; here 1 marks what some node
     * reads, among the tensors newer than mark (the newest head the list) */
    for (clsynth_tensor *t = ctx->live; t && t->serial > mark; t = t->next_live)
        t->first_use = 0;
    for (int i = 0; i < tp->count; i++) {
        clsynth_node *nd = &tp->nodes[i];
        clsynth_tensor *refs[1 + CLSYNTH_NODE_MAX_IN + 4];
        int n = 0;
        refs[n++] = nd->out;
        for (int k = 0; k < nd->n_in; k++)
            refs[n++] = nd->in[k];
        for (int k = 0; k < 4; k++)
            refs[n++] = nd->saved[k];
        for (int k = 0; k < n; k++) {
            clsynth_tensor *r = refs[k];
            if (r && r->serial > mark)
                r->first_use = 1; /* a view too: the node holds it */
            if (r && r->base && r->base->serial > mark)
                r->base->first_use = 1;
        }
    }
    for (clsynth_tensor *t = ctx->live, *next; t && t->serial > mark; t = next) {
        next = t->next_live;
        if (t->flags & (CLSYNTH_T_GRAD | CLSYNTH_T_HALF | CLSYNTH_T_PERSISTENT))
            continue;
        bool kept = false;
        for (int k = 0; k < n_keep && !kept; k++)
            kept = keep[k] && (keep[k] == t || keep[k]->base == t);
        if (kept)
            continue;
        if (t->first_use != 1) { /* read by neither the rest of the forward nor the backward */
            if (!t->grad)
                clsynth_tensor_release(ctx, t);
        } else if (t->block && t->numel >= CLSYNTH_STASH_MIN_NUMEL && clsynth_tensor_to_half(ctx, t))
            return -1;
    }
    return 0;
}

static int run_tape(clsynth_ctx *ctx)
{
    clsynth_tape *tp = ctx->tape;
    if (plan_releases(ctx, tp)) {
        clsynth_tape_clear(ctx);
        return -1;
    }
    for (int i = tp->count - 1; i >= 0; i--) {
        clsynth_node *nd = &tp->nodes[i];
        if (nd->out->grad) { /* else no gradient reached this op */
            if (unstash_node(ctx, nd)) {
                clsynth_wrap(&ctx->err, "backward of op %s", nd->op);
                clsynth_tape_clear(ctx);
                return -1;
            }
            unsigned long mark = ctx->tensor_serial;
            if (nd->backward(ctx, nd)) {
                if (!ctx->failed)
                    clsynth_ctx_fail(ctx, "backward of op %s failed", nd->op);
                clsynth_wrap(&ctx->err, "backward of op %s", nd->op);
                clsynth_tape_clear(ctx);
                return -1;
            }
            release_temporaries(ctx, mark);
        }
        for (clsynth_tensor *t = tp->drop_at[i]; t; t = t->next_drop)
            clsynth_tensor_drop_value(ctx, t);
        for (clsynth_tensor *t = tp->release_at[i], *next; t; t = next) {
            next = t->next_release;
            clsynth_tensor_release(ctx, t);
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
