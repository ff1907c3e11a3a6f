/* Parameter groups with flat data/gradient/Adam buffers. */
#include "clcore/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

clsynth_param_group *clsynth_group_new(clsynth_ctx *ctx, const char *name)
{
    clsynth_param_group *g = calloc(1, sizeof *g);
    if (!g) {
        clsynth_ctx_fail(ctx, "out of host memory");
        return NULL;
    }
    snprintf(g->name, sizeof g->name, "%s", name);
    g->lr = 1e-4f;
    g->beta1 = 0.0f;
    g->beta2 = 0.999f;
    g->eps = 1e-8f;
    return g;
}

static clsynth_tensor *declare(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int n, int c,
                               int h, int w, bool trainable)
{
    if (ctx->failed || !g)
        return NULL;
    if (g->finalized) {
        clsynth_ctx_fail(ctx, "group %s: '%s' declared after the group was finalized", g->name, name);
        return NULL;
    }
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0) {
        clsynth_ctx_fail(ctx, "group %s: '%s' has invalid shape (%d, %d, %d, %d)", g->name, name, n, c, h, w);
        return NULL;
    }
    char full[64];
    snprintf(full, sizeof full, "%s.%s", g->name, name);
    if (clsynth_group_find(g, full)) {
        clsynth_ctx_fail(ctx, "group %s: '%s' declared twice", g->name, full);
        return NULL;
    }
    clsynth_tensor ***list = trainable ? &g->params : &g->buffers;
    int *count = trainable ? &g->n_params : &g->n_buffers;
    int *cap = trainable ? &g->cap_params : &g->cap_buffers;
    if (*count == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        clsynth_tensor **grown = realloc(*list, sizeof *grown * (size_t)nc);
        if (!grown) {
            clsynth_ctx_fail(ctx, "out of host memory");
            return NULL;
        }
        *list = grown;
        *cap = nc;
    }
    clsynth_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        clsynth_ctx_fail(ctx, "out of host memory");
        return NULL;
    }
    snprintf(t->name, sizeof t->name, "%s", full);
    t->ndim = 4;
    t->n = n;
    t->c = c;
    t->h = h;
    t->w = w;
    t->numel = (size_t)n * c * h * w;
    t->flags = CLSYNTH_T_PERSISTENT | (trainable ? (CLSYNTH_T_PARAM | CLSYNTH_T_REQUIRES_GRAD) : 0);
    (*list)[(*count)++] = t;
    return t;
}

clsynth_tensor *clsynth_group_param(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int n, int c,
                                    int h, int w)
{
    return declare(ctx, g, name, n, c, h, w, true);
}

clsynth_tensor *clsynth_group_buffer(clsynth_ctx *ctx, clsynth_param_group *g, const char *name, int n, int c,
                                     int h, int w)
{
    return declare(ctx, g, name, n, c, h, w, false);
}

static clsynth_tensor *flat_view(clsynth_ctx *ctx, struct clsynth_block *b, const char *name, size_t total)
{
    clsynth_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        clsynth_ctx_fail(ctx, "out of host memory");
        return NULL;
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = 1;
    t->n = t->c = t->h = 1;
    t->w = (int)total;
    t->numel = total;
    t->mem = clsynth_block_mem(b);
    t->flags = CLSYNTH_T_PERSISTENT | CLSYNTH_T_VIEW;
    return t;
}

int clsynth_group_finalize(clsynth_ctx *ctx, clsynth_param_group *g)
{
    if (ctx->failed)
        return -1;
    if (g->finalized)
        return clsynth_ctx_fail(ctx, "group %s finalized twice", g->name);
    size_t total = 0;
    for (int i = 0; i < g->n_params; i++)
        total += g->params[i]->numel;
    if (total == 0)
        total = 1; /* a group without parameters still gets valid buffers */
    g->total = total;
    char name[64];
    size_t bytes = total * sizeof(float);
    struct clsynth_block **blocks[4] = { &g->data_block, &g->grad_block, &g->m_block, &g->v_block };
    clsynth_tensor **views[4] = { &g->flat_data, &g->flat_grad, &g->adam_m, &g->adam_v };
    const char *what[4] = { "params", "grads", "adam_m", "adam_v" };
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", g->name, what[i]);
        *blocks[i] = clsynth_pool_get(ctx, bytes, name);
        if (!*blocks[i] || !(*views[i] = flat_view(ctx, *blocks[i], name, total)))
            return -1;
        if (clsynth_tensor_fill(ctx, *views[i], 0.0f))
            return -1;
    }
    size_t off = 0;
    for (int i = 0; i < g->n_params; i++) {
        clsynth_tensor *p = g->params[i];
        p->mem = clsynth_block_mem(g->data_block);
        p->off = off;
        p->grad = calloc(1, sizeof *p->grad);
        if (!p->grad)
            return clsynth_ctx_fail(ctx, "out of host memory");
        *p->grad = *p;
        snprintf(p->grad->name, sizeof p->grad->name, "grad(%.50s)", p->name);
        p->grad->mem = clsynth_block_mem(g->grad_block);
        p->grad->grad = NULL;
        p->grad->flags = CLSYNTH_T_PERSISTENT | CLSYNTH_T_PARAM | CLSYNTH_T_VIEW;
        off += p->numel;
    }
    for (int i = 0; i < g->n_buffers; i++) {
        clsynth_tensor *b = g->buffers[i];
        b->block = clsynth_pool_get(ctx, b->numel * sizeof(float), b->name);
        if (!b->block)
            return -1;
        b->mem = clsynth_block_mem(b->block);
        if (clsynth_tensor_fill(ctx, b, 0.0f))
            return -1;
    }
    g->finalized = true;
    return 0;
}

int clsynth_group_zero_grad(clsynth_ctx *ctx, clsynth_param_group *g)
{
    return clsynth_tensor_fill(ctx, g->flat_grad, 0.0f);
}

void clsynth_group_set_requires_grad(clsynth_param_group *g, bool on)
{
    for (int i = 0; i < g->n_params; i++) {
        if (on)
            g->params[i]->flags |= CLSYNTH_T_REQUIRES_GRAD;
        else
            g->params[i]->flags &= ~(unsigned)CLSYNTH_T_REQUIRES_GRAD;
    }
}

clsynth_tensor *clsynth_group_find(clsynth_param_group *g, const char *name)
{
    for (int i = 0; i < g->n_params; i++)
        if (strcmp(g->params[i]->name, name) == 0)
            return g->params[i];
    for (int i = 0; i < g->n_buffers; i++)
        if (strcmp(g->buffers[i]->name, name) == 0)
            return g->buffers[i];
    return NULL;
}

void clsynth_group_free(clsynth_ctx *ctx, clsynth_param_group *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_params; i++) {
        free(g->params[i]->grad);
        free(g->params[i]);
    }
    for (int i = 0; i < g->n_buffers; i++) {
        clsynth_pool_put(ctx, g->buffers[i]->block);
        free(g->buffers[i]);
    }
    free(g->params);
    free(g->buffers);
    struct clsynth_block *blocks[4] = { g->data_block, g->grad_block, g->m_block, g->v_block };
    clsynth_tensor *views[4] = { g->flat_data, g->flat_grad, g->adam_m, g->adam_v };
    for (int i = 0; i < 4; i++) {
        if (blocks[i])
            clsynth_pool_put(ctx, blocks[i]);
        free(views[i]);
    }
    free(g);
}
