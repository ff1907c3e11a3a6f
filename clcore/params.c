/* Parameter groups with flat data/gradient/Adam buffers. */
#include "clcore/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct clsynth_param_pack {
    clsynth_tensor *view;     /* the parameter over all members */
    clsynth_tensor **members; /* in storage order */
    int n;
} clsynth_param_pack;

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

static bool is_param(const clsynth_param_group *g, const clsynth_tensor *t)
{
    for (int i = 0; i < g->n_params; i++)
        if (g->params[i] == t)
            return true;
    return false;
}

static int pack_of(const clsynth_param_group *g, const clsynth_tensor *t)
{
    for (int k = 0; k < g->n_packs; k++)
        for (int i = 0; i < g->packs[k].n; i++)
            if (g->packs[k].members[i] == t)
                return k;
    return -1;
}

clsynth_tensor *clsynth_group_pack(clsynth_ctx *ctx, clsynth_param_group *g, const char *name,
                                   clsynth_tensor *const *members, int n, int axis)
{
    if (ctx->failed || !g)
        return NULL;
    if (g->finalized) {
        clsynth_ctx_fail(ctx, "group %s: pack '%s' declared after the group was finalized", g->name, name);
        return NULL;
    }
    if (n < 1 || (axis != 0 && axis != 1)) {
        clsynth_ctx_fail(ctx, "group %s: pack '%s' of %d members along axis %d (need >= 1 member, axis 0 or 1)",
                         g->name, name, n, axis);
        return NULL;
    }
    int total = 0;
    for (int i = 0; i < n; i++) {
        const clsynth_tensor *m = members[i], *m0 = members[0];
        if (!m || !is_param(g, m)) {
            clsynth_ctx_fail(ctx, "group %s: pack '%s': member %d is not a parameter of the group", g->name, name,
                             i);
            return NULL;
        }
        if (pack_of(g, m) >= 0) {
            clsynth_ctx_fail(ctx, "group %s: pack '%s': '%s' is in a pack already", g->name, name, m->name);
            return NULL;
        }
        for (int j = 0; j < i; j++)
            if (members[j] == m) {
                clsynth_ctx_fail(ctx, "group %s: pack '%s': '%s' listed twice", g->name, name, m->name);
                return NULL;
            }
        const bool fits = axis == 0 ? m->c == m0->c && m->h == m0->h && m->w == m0->w
                                    : m->n == 1 && m0->n == 1 && m->h == m0->h && m->w == m0->w;
        if (!fits) {
            clsynth_ctx_fail(ctx, "group %s: pack '%s': '%s' (%d, %d, %d, %d) does not stack with '%s' (%d, %d, %d, "
                                  "%d) along axis %d", g->name, name, m->name, m->n, m->c, m->h, m->w, m0->name,
                             m0->n, m0->c, m0->h, m0->w, axis);
            return NULL;
        }
        total += axis == 0 ? m->n : m->c;
    }
    if (g->n_packs == g->cap_packs) {
        int nc = g->cap_packs ? g->cap_packs * 2 : 16;
        clsynth_param_pack *grown = realloc(g->packs, sizeof *grown * (size_t)nc);
        if (!grown) {
            clsynth_ctx_fail(ctx, "out of host memory");
            return NULL;
        }
        g->packs = grown;
        g->cap_packs = nc;
    }
    clsynth_param_pack *pk = &g->packs[g->n_packs];
    pk->view = calloc(1, sizeof *pk->view);
    pk->members = malloc(sizeof *pk->members * (size_t)n);
    if (!pk->view || !pk->members) {
        free(pk->view);
        free(pk->members);
        clsynth_ctx_fail(ctx, "out of host memory");
        return NULL;
    }
    memcpy(pk->members, members, sizeof *pk->members * (size_t)n);
    pk->n = n;
    g->n_packs++;
    clsynth_tensor *t = pk->view, *m0 = members[0];
    snprintf(t->name, sizeof t->name, "%s.%s", g->name, name);
    t->ndim = 4;
    t->n = axis == 0 ? total : 1;
    t->c = axis == 0 ? m0->c : total;
    t->h = m0->h;
    t->w = m0->w;
    t->numel = (size_t)t->n * t->c * t->h * t->w;
    t->flags = m0->flags;
    return t;
}

void clsynth_group_canonical(const clsynth_param_group *g, const float *in, float *out, bool to_canonical)
{
    size_t pos = 0;
    for (int i = 0; i < g->n_params; i++) {
        const clsynth_tensor *p = g->params[i];
        if (to_canonical)
            memcpy(out + pos, in + p->off, p->numel * sizeof *out);
        else
            memcpy(out + p->off, in + pos, p->numel * sizeof *out);
        pos += p->numel;
    }
    if (pos < g->total) /* a group without parameters: its one padding element */
        out[pos] = in[pos];
}

/* The gradient tensor of a parameter p placed at its offset: a view into the grad block. */
static int attach_grad(clsynth_ctx *ctx, const clsynth_param_group *g, clsynth_tensor *p)
{
    p->grad = calloc(1, sizeof *p->grad);
    if (!p->grad)
        return clsynth_ctx_fail(ctx, "out of host memory");
    *p->grad = *p;
    snprintf(p->grad->name, sizeof p->grad->name, "grad(%.50s)", p->name);
    p->grad->mem = clsynth_block_mem(g->grad_block);
    p->grad->grad = NULL;
    p->grad->flags = CLSYNTH_T_PERSISTENT | CLSYNTH_T_PARAM | CLSYNTH_T_VIEW;
    return 0;
}

static int place(clsynth_ctx *ctx, const clsynth_param_group *g, clsynth_tensor *p, size_t *off)
{
    p->mem = clsynth_block_mem(g->data_block);
    p->off = *off;
    *off += p->numel;
    return attach_grad(ctx, g, p);
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
    /* declaration order, except that a pack's members go side by side where its
     * first-declared member would be */
    size_t off = 0;
    for (int i = 0; i < g->n_params; i++) {
        clsynth_tensor *p = g->params[i];
        if (p->grad)
            continue; /* placed with its pack */
        const int k = pack_of(g, p);
        if (k < 0) {
            if (place(ctx, g, p, &off))
                return -1;
            continue;
        }
        clsynth_param_pack *pk = &g->packs[k];
        pk->view->mem = clsynth_block_mem(g->data_block);
        pk->view->off = off;
        for (int j = 0; j < pk->n; j++)
            if (place(ctx, g, pk->members[j], &off))
                return -1;
        if (attach_grad(ctx, g, pk->view))
            return -1;
    }
    /* buffers side by side in one block too, in declaration order: kernels
     * that work on many of them at once (the spectral norm of a whole
     * network, clcore/ops_spectral_set.c) find them in one cl_mem */
    size_t buffers_total = 0;
    for (int i = 0; i < g->n_buffers; i++)
        buffers_total += g->buffers[i]->numel;
    if (buffers_total) {
        snprintf(name, sizeof name, "%s.buffers", g->name);
        g->buffer_block = clsynth_pool_get(ctx, buffers_total * sizeof(float), name);
        if (!g->buffer_block)
            return -1;
    }
    off = 0;
    for (int i = 0; i < g->n_buffers; i++) {
        clsynth_tensor *b = g->buffers[i];
        b->mem = clsynth_block_mem(g->buffer_block);
        b->off = off;
        b->flags |= CLSYNTH_T_VIEW;
        off += b->numel;
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

static void set_grad_flag(clsynth_tensor *t, bool on)
{
    if (on)
        t->flags |= CLSYNTH_T_REQUIRES_GRAD;
    else
        t->flags &= ~(unsigned)CLSYNTH_T_REQUIRES_GRAD;
}

void clsynth_group_set_requires_grad(clsynth_param_group *g, bool on)
{
    for (int i = 0; i < g->n_params; i++)
        set_grad_flag(g->params[i], on);
    for (int k = 0; k < g->n_packs; k++)
        set_grad_flag(g->packs[k].view, on);
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
    for (int i = 0; i < g->n_buffers; i++)
        free(g->buffers[i]);
    if (g->buffer_block)
        clsynth_pool_put(ctx, g->buffer_block);
    for (int k = 0; k < g->n_packs; k++) {
        free(g->packs[k].view->grad);
        free(g->packs[k].view);
        free(g->packs[k].members);
    }
    free(g->packs);
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
