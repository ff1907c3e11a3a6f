/* Spectral normalization of a set of weights together (kernels/spectral_set.cl):
 * clsynth_spectral_norm's math and semantics (clcore/ops_spectral.c) for every
 * spectral-normalized weight of a network in a fixed number of launches, 5 per
 * training forward (4 in eval) and 3 per backward whatever the number of
 * weights, instead of about 6 and 3 per weight. Its sums are the per-weight
 * kernels' sums in their order (see the kernel file): the same results, bit
 * for bit, with the same local size.
 *
 * The members' weights are views of one buffer (a parameter group's flat
 * data) with their gradients in one buffer (its flat gradient), their u and v
 * views of one buffer each (the group's buffer block). The outputs are views
 * into one flat activation, recorded as one tape node whose output is that
 * flat tensor: the views' gradients are views into its gradient (allocated
 * with the forward), so the convs' backwards all accumulate there and the
 * node, recorded before them, runs after all of them.
 *
 * A plan for the device's local size L is built at the first forward and kept:
 * an int table (descriptors and work-group assignments, see the kernel file)
 * uploaded once. Saved for backward: the u and v used and sigma (activations,
 * so that a later forward that updates u and v leaves an earlier node's
 * gradient alone). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/launch.h"
#include "clcore/ops.h"
#include "clcore/program.h"

#define SN_SET_FILE "spectral_set.cl"
#define SN_EPS 1e-12f
#define SN_DESC 12 /* ints per weight in the table, as the kernel file */
/* Consecutive elements per work-item of sn_set_scale and sn_set_dw: a
 * contiguous loop per item, which PoCL vectorizes (16: as fast as the
 * per-weight kernel there; one element per item ran 5x slower), still a
 * short run of 64 bytes for a GPU's item. */
#define SN_RUN 16
/* Lanes each item of the row kernels keeps (kernels/spectral_set.cl's
 * SN_MAX_LANES): a row of S lanes gets S / SN_LANES items. One item per lane
 * (the per-weight kernels' layout, up to 256 items per row) took 6x the time
 * on PoCL, which pays per item and barrier (W v of the tiny model's D: 0.30
 * against 0.05 ms); a GPU still has 16 items on a long row. */
#define SN_LANES 16

enum { SN_W, SN_DW, SN_U, SN_V, SN_ROWS, SN_COLS, SN_E, SN_R, SN_C, SN_S, SN_SC, SN_ITEMS };

static const char *const SN_KERNELS[] = { "sn_set_wtu",  "sn_set_normalize", "sn_set_wv",     "sn_set_finish",
                                          "sn_set_scale", "sn_set_rowdot",   "sn_set_coef",   "sn_set_dw" };
#define SN_N_KERNELS ((int)(sizeof SN_KERNELS / sizeof SN_KERNELS[0]))

struct clsynth_sn_set {
    char name[32];
    clsynth_tensor **w, **u, **v; /* members */
    int n, cap;
    /* the plan (0 / NULL until the first forward) */
    size_t L;
    struct clsynth_block *table;
    int n_col_groups, n_row_groups, n_chunks, col_at, row_at, chunk_at, chunk;
    int rows, cols;               /* sum of Cout, of K */
    size_t elems;                 /* sum of Cout K */
    size_t *e_off;                /* each member's first element in out */
    clsynth_tensor **out;         /* the latest forward's normalized weights */
};

clsynth_sn_set *clsynth_sn_set_new(clsynth_ctx *ctx, const char *name)
{
    clsynth_sn_set *s = calloc(1, sizeof *s);
    if (!s) {
        clsynth_ctx_fail(ctx, "out of host memory");
        return NULL;
    }
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

void clsynth_sn_set_free(clsynth_ctx *ctx, clsynth_sn_set *s)
{
    if (!s)
        return;
    if (s->table)
        clsynth_pool_put(ctx, s->table);
    free(s->w);
    free(s->u);
    free(s->v);
    free(s->e_off);
    free(s->out);
    free(s);
}

int clsynth_sn_set_add(clsynth_ctx *ctx, clsynth_sn_set *s, clsynth_tensor *w, clsynth_tensor *u, clsynth_tensor *v)
{
    if (ctx->failed || !s || !w || !u || !v)
        return -1;
    if (s->table)
        return clsynth_ctx_fail(ctx, "spectral_norm_set %s: '%s' added after the first forward", s->name, w->name);
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        clsynth_tensor **grown[4] = { realloc(s->w, sizeof *s->w * (size_t)cap),
                                      realloc(s->u, sizeof *s->u * (size_t)cap),
                                      realloc(s->v, sizeof *s->v * (size_t)cap),
                                      realloc(s->out, sizeof *s->out * (size_t)cap) };
        s->w = grown[0] ? grown[0] : s->w;
        s->u = grown[1] ? grown[1] : s->u;
        s->v = grown[2] ? grown[2] : s->v;
        s->out = grown[3] ? grown[3] : s->out;
        if (!grown[0] || !grown[1] || !grown[2] || !grown[3])
            return clsynth_ctx_fail(ctx, "out of host memory");
        s->cap = cap;
    }
    s->w[s->n] = w;
    s->u[s->n] = u;
    s->v[s->n] = v;
    s->out[s->n] = NULL;
    s->n++;
    return 0;
}

int clsynth_sn_set_size(const clsynth_sn_set *s) { return s ? s->n : 0; }

clsynth_tensor *clsynth_sn_set_output(const clsynth_sn_set *s, const clsynth_tensor *w)
{
    for (int i = 0; s && i < s->n; i++)
        if (s->w[i] == w)
            return s->out[i];
    return NULL;
}

/* The local size of every kernel of the set: a power of two within all their
 * limits, at most 256 (the per-weight kernels' cap). */
static size_t set_local(clsynth_ctx *ctx)
{
    size_t L = 256;
    for (int k = 0; k < SN_N_KERNELS; k++) {
        cl_kernel kr = clsynth_kernel_get(ctx, SN_SET_FILE, SN_KERNELS[k], NULL);
        size_t m = kr ? clsynth_kernel_max_wg(ctx, kr, SN_KERNELS[k]) : 0;
        if (!m)
            return 0;
        m = clsynth_reduction_local(m, ctx->max_item[0], ctx->local_mem, sizeof(cl_float), 256);
        if (m < L)
            L = m;
    }
    size_t p = 1;
    while (2 * p <= L)
        p *= 2;
    return p;
}

/* Lanes of a sum of n values: the per-weight kernels' local size, n rounded
 * up to a power of two, at most L. */
static int lanes(int n, size_t L)
{
    int p = 1;
    while (p < n && (size_t)p < L)
        p <<= 1;
    return p;
}

/* Items per row of the row kernels for a row of K values. */
static int row_items(int K, size_t L)
{
    const int S = lanes(K, L);
    return S > SN_LANES ? S / SN_LANES : 1;
}

/* Every member a view of the same buffers as the first, with shapes that fit. */
static int check_members(clsynth_ctx *ctx, const clsynth_sn_set *s)
{
    char bw[128], bx[128];
    for (int i = 0; i < s->n; i++) {
        const clsynth_tensor *w = s->w[i], *u = s->u[i], *v = s->v[i];
        const size_t K = w->numel / (size_t)w->n;
        if (!w->mem || !u->mem || !v->mem || !w->grad)
            return clsynth_ctx_fail(ctx, "spectral_norm_set %s: '%s' needs storage and a gradient (a parameter of a "
                                         "finalized group)", s->name, w->name);
        if (w->mem != s->w[0]->mem || w->grad->mem != s->w[0]->grad->mem || u->mem != s->u[0]->mem ||
            v->mem != s->v[0]->mem)
            return clsynth_ctx_fail(ctx, "spectral_norm_set %s: '%s' and '%s' do not share their buffers (members "
                                         "must be views of one weights, gradients, u and v buffer)",
                                    s->name, w->name, s->w[0]->name);
        if (u->numel != (size_t)w->n)
            return clsynth_ctx_fail(ctx, "spectral_norm_set %s: u %s must have Cout = %d elements for w %s", s->name,
                                    clsynth_tensor_describe(u, bx, sizeof bx), w->n,
                                    clsynth_tensor_describe(w, bw, sizeof bw));
        if (v->numel != K)
            return clsynth_ctx_fail(ctx, "spectral_norm_set %s: v %s must have Cin*KH*KW = %zu elements for w %s",
                                    s->name, clsynth_tensor_describe(v, bx, sizeof bx), K,
                                    clsynth_tensor_describe(w, bw, sizeof bw));
        if (w->off + w->numel > INT_MAX || w->grad->off + w->numel > INT_MAX || u->off + u->numel > INT_MAX ||
            v->off + v->numel > INT_MAX)
            return clsynth_ctx_fail(ctx, "spectral_norm_set %s: '%s' lies past the kernels' int offsets", s->name,
                                    w->name);
    }
    return 0;
}

/* Appends the pair (weight, first) to a list of work-group assignments. */
static void put_pair(int **at, int weight, int first)
{
    (*at)[0] = weight;
    (*at)[1] = first;
    *at += 2;
}

/* The int table for local size L: descriptors, then the (weight, first)
 * pairs of the column groups, row groups and element chunks. */
static int build_plan(clsynth_ctx *ctx, clsynth_sn_set *s, size_t L)
{
    if (check_members(ctx, s))
        return -1;
    const int chunk = (int)L * SN_RUN;
    size_t ncol = 0, nrow = 0, nchunk = 0, elems = 0, rows = 0, cols = 0;
    for (int i = 0; i < s->n; i++) {
        const int Cout = s->w[i]->n, K = (int)(s->w[i]->numel / (size_t)Cout);
        const int per = (int)L / row_items(K, L);
        ncol += ((size_t)K + L - 1) / L;
        nrow += ((size_t)Cout + (size_t)per - 1) / (size_t)per;
        nchunk += (s->w[i]->numel + (size_t)chunk - 1) / (size_t)chunk;
        elems += s->w[i]->numel;
        rows += (size_t)Cout;
        cols += (size_t)K;
    }
    const size_t total = (size_t)s->n * SN_DESC + 2 * (ncol + nrow + nchunk);
    if (elems > INT_MAX || total > INT_MAX)
        return clsynth_ctx_fail(ctx, "spectral_norm_set %s: %zu elements exceed the kernels' int index", s->name,
                                elems);
    int *tab = malloc(total * sizeof *tab);
    size_t *e_off = malloc(sizeof *e_off * (size_t)s->n);
    if (!tab || !e_off) {
        free(tab);
        free(e_off);
        return clsynth_ctx_fail(ctx, "out of host memory");
    }
    int *colp = tab + (size_t)s->n * SN_DESC, *rowp = colp + 2 * ncol, *chunkp = rowp + 2 * nrow;
    int e = 0, r = 0, c = 0;
    for (int i = 0; i < s->n; i++) {
        const clsynth_tensor *w = s->w[i];
        const int Cout = w->n, K = (int)(w->numel / (size_t)Cout), E = (int)w->numel;
        const int per = (int)L / row_items(K, L);
        const int d[SN_DESC] = { [SN_W] = (int)w->off,       [SN_DW] = (int)w->grad->off, [SN_U] = (int)s->u[i]->off,
                                 [SN_V] = (int)s->v[i]->off, [SN_ROWS] = Cout,           [SN_COLS] = K,
                                 [SN_E] = e,                 [SN_R] = r,                 [SN_C] = c,
                                 [SN_S] = lanes(K, L),       [SN_SC] = lanes(Cout, L),   [SN_ITEMS] = row_items(K, L) };
        memcpy(tab + (size_t)i * SN_DESC, d, sizeof d);
        for (int k = 0; k < K; k += (int)L)
            put_pair(&colp, i, k);
        for (int o = 0; o < Cout; o += per)
            put_pair(&rowp, i, o);
        for (int x = 0; x < E; x += chunk)
            put_pair(&chunkp, i, x);
        e_off[i] = (size_t)e;
        e += E;
        r += Cout;
        c += K;
    }
    char name[64];
    snprintf(name, sizeof name, "spectral_norm_set %s plan", s->name);
    struct clsynth_block *b = clsynth_pool_get(ctx, total * sizeof *tab, name);
    cl_int rc = b ? clEnqueueWriteBuffer(ctx->queue, clsynth_block_mem(b), CL_TRUE, 0, total * sizeof *tab, tab, 0,
                                         NULL, NULL)
                  : CL_SUCCESS;
    free(tab);
    if (!b || rc != CL_SUCCESS) {
        free(e_off);
        if (b)
            clsynth_pool_put(ctx, b);
        return b ? clsynth_cl_fail(ctx, "clEnqueueWriteBuffer", name, rc) : -1;
    }
    if (s->table)
        clsynth_pool_put(ctx, s->table);
    free(s->e_off);
    s->table = b;
    s->e_off = e_off;
    s->L = L;
    s->chunk = chunk;
    s->n_col_groups = (int)ncol;
    s->n_row_groups = (int)nrow;
    s->n_chunks = (int)nchunk;
    s->col_at = s->n * SN_DESC;
    s->row_at = s->col_at + 2 * (int)ncol;
    s->chunk_at = s->row_at + 2 * (int)nrow;
    s->elems = elems;
    s->rows = (int)rows;
    s->cols = (int)cols;
    return 0;
}

/* Starts a launch of one of the set's kernels. */
static clsynth_args begin(clsynth_ctx *ctx, const char *kname)
{
    return clsynth_args_begin(ctx, clsynth_kernel_get(ctx, SN_SET_FILE, kname, NULL), kname);
}

/* Launches `groups` work-groups of the set's local size; `local` adds the
 * trailing __local argument of L floats. */
static int launch(clsynth_args *a, const clsynth_sn_set *s, int groups, bool local)
{
    if (local)
        clsynth_arg_local(a, s->L * sizeof(cl_float));
    size_t g = s->L * (size_t)groups, l = s->L;
    return clsynth_launch(a, 1, &g, &l, local ? s->L * sizeof(cl_float) : 0, NULL);
}

static cl_mem table_mem(const clsynth_sn_set *s) { return clsynth_block_mem(s->table); }

static int sn_set_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    const clsynth_sn_set *s = *(clsynth_sn_set *const *)nd->extra;
    const clsynth_tensor *uu = nd->saved[0], *vu = nd->saved[1], *sigma = nd->saved[2];
    const clsynth_tensor *dwsn = nd->out->grad;
    clsynth_tensor *rows = clsynth_tensor_new(ctx, "spectral_norm_set.rowdot", 1, 1, 1, s->rows); /* (sum Cout) */
    clsynth_tensor *coef = clsynth_tensor_new(ctx, "spectral_norm_set.coef", 1, 1, 1, s->n);     /* (n) */
    if (!rows || !coef)
        return -1;
    if (s->L != (size_t)nd->iarg[0])
        return clsynth_ctx_fail(ctx, "spectral_norm_set %s: the plan changed between forward and backward", s->name);

    clsynth_args a = begin(ctx, "sn_set_rowdot");
    clsynth_arg_tensor(&a, dwsn);
    clsynth_arg_mem(&a, s->w[0]->mem);
    clsynth_arg_tensor(&a, rows);
    clsynth_arg_mem(&a, table_mem(s));
    clsynth_arg_int(&a, s->row_at);
    if (launch(&a, s, s->n_row_groups, true))
        return -1;

    a = begin(ctx, "sn_set_coef");
    clsynth_arg_tensor(&a, rows);
    clsynth_arg_tensor(&a, sigma);
    clsynth_arg_tensor(&a, coef);
    clsynth_arg_mem(&a, table_mem(s));
    if (launch(&a, s, s->n, true))
        return -1;

    a = begin(ctx, "sn_set_dw");
    clsynth_arg_tensor(&a, dwsn);
    clsynth_arg_tensor(&a, uu);
    clsynth_arg_tensor(&a, vu);
    clsynth_arg_tensor(&a, sigma);
    clsynth_arg_tensor(&a, coef);
    clsynth_arg_mem(&a, s->w[0]->grad->mem);
    clsynth_arg_mem(&a, table_mem(s));
    clsynth_arg_int(&a, s->chunk_at);
    clsynth_arg_int(&a, s->chunk);
    return launch(&a, s, s->n_chunks, false);
}

/* The forward's launches: v_used, u_used, sigma, out from W, u, v. */
static int forward_kernels(clsynth_ctx *ctx, const clsynth_sn_set *s, bool update, clsynth_tensor *vu,
                           clsynth_tensor *wv, clsynth_tensor *uu, clsynth_tensor *sigma, clsynth_tensor *out)
{
    cl_mem tab = table_mem(s);
    clsynth_args a;
    if (update) { /* v_used = W^T u from the previous u */
        a = begin(ctx, "sn_set_wtu");
        clsynth_arg_mem(&a, s->w[0]->mem);
        clsynth_arg_mem(&a, s->u[0]->mem);
        clsynth_arg_tensor(&a, vu);
        clsynth_arg_mem(&a, tab);
        clsynth_arg_int(&a, s->col_at);
        if (launch(&a, s, s->n_col_groups, false))
            return -1;
    }
    /* v_used normalized (and stored as v), or the stored v */
    a = begin(ctx, "sn_set_normalize");
    clsynth_arg_mem(&a, s->v[0]->mem);
    clsynth_arg_tensor(&a, vu);
    clsynth_arg_mem(&a, tab);
    clsynth_arg_int(&a, update ? 1 : 0);
    clsynth_arg_float(&a, SN_EPS);
    if (launch(&a, s, s->n, true))
        return -1;
    /* wv = W v_used */
    a = begin(ctx, "sn_set_wv");
    clsynth_arg_mem(&a, s->w[0]->mem);
    clsynth_arg_tensor(&a, vu);
    clsynth_arg_tensor(&a, wv);
    clsynth_arg_mem(&a, tab);
    clsynth_arg_int(&a, s->row_at);
    if (launch(&a, s, s->n_row_groups, true))
        return -1;
    /* u_used: normalize(W v) (stored as u), or the stored u; sigma = u_used . W v */
    a = begin(ctx, "sn_set_finish");
    clsynth_arg_tensor(&a, wv);
    clsynth_arg_mem(&a, s->u[0]->mem);
    clsynth_arg_tensor(&a, uu);
    clsynth_arg_tensor(&a, sigma);
    clsynth_arg_mem(&a, tab);
    clsynth_arg_int(&a, update ? 1 : 0);
    clsynth_arg_float(&a, SN_EPS);
    if (launch(&a, s, s->n, true))
        return -1;
    /* out = W / sigma */
    a = begin(ctx, "sn_set_scale");
    clsynth_arg_mem(&a, s->w[0]->mem);
    clsynth_arg_tensor(&a, sigma);
    clsynth_arg_tensor(&a, out);
    clsynth_arg_mem(&a, tab);
    clsynth_arg_int(&a, s->chunk_at);
    clsynth_arg_int(&a, s->chunk);
    return launch(&a, s, s->n_chunks, false);
}

/* The gradient of every output view is a view into the gradient of out, so
 * that all the convs' backwards accumulate into the one tensor the node reads. */
static int share_gradients(clsynth_ctx *ctx, clsynth_sn_set *s, clsynth_tensor *out)
{
    clsynth_tensor *gout = clsynth_grad_of(ctx, out); /* zero-filled */
    if (!gout)
        return -1;
    for (int i = 0; i < s->n; i++) {
        clsynth_tensor *o = s->out[i];
        char name[64];
        snprintf(name, sizeof name, "grad(%.50s)", o->name);
        clsynth_tensor *g = clsynth_tensor_view(ctx, gout, name, s->e_off[i], o->n, o->c, o->h, o->w);
        if (!g)
            return -1;
        g->flags |= CLSYNTH_T_GRAD;
        o->grad = g;
        o->flags |= CLSYNTH_T_REQUIRES_GRAD;
    }
    return 0;
}

/* Members require grad all together or not at all (a group's parameters do):
 * one node writes all their gradients. */
static int needs_grad(clsynth_ctx *ctx, const clsynth_sn_set *s, bool *grad)
{
    *grad = clsynth_grad_needed(ctx, s->w, s->n);
    const clsynth_tensor *with = NULL, *without = NULL;
    for (int i = 0; *grad && i < s->n; i++) {
        if (s->w[i]->flags & CLSYNTH_T_REQUIRES_GRAD)
            with = with ? with : s->w[i];
        else
            without = without ? without : s->w[i];
    }
    if (with && without)
        return clsynth_ctx_fail(ctx, "spectral_norm_set %s: '%s' does not require grad but '%s' does (members "
                                     "require grad together)", s->name, without->name, with->name);
    return 0;
}

clsynth_tensor *clsynth_spectral_norm_set(clsynth_ctx *ctx, clsynth_sn_set *s, bool update)
{
    if (ctx->failed || !s)
        return NULL;
    if (s->n == 0) {
        clsynth_ctx_fail(ctx, "spectral_norm_set %s: no members", s->name);
        return NULL;
    }
    for (int i = 0; i < s->n; i++)
        s->out[i] = NULL;
    const size_t L = set_local(ctx);
    if (!L || (L != s->L && build_plan(ctx, s, L)))
        return NULL;
    bool grad;
    if (needs_grad(ctx, s, &grad))
        return NULL;
    /* all flat, (1, 1, 1, n): */
    clsynth_tensor *vu = clsynth_tensor_new(ctx, "spectral_norm_set.v", 1, 1, 1, s->cols);      /* (sum K) */
    clsynth_tensor *wv = clsynth_tensor_new(ctx, "spectral_norm_set.wv", 1, 1, 1, s->rows);     /* (sum Cout) */
    clsynth_tensor *uu = clsynth_tensor_new(ctx, "spectral_norm_set.u", 1, 1, 1, s->rows);      /* (sum Cout) */
    clsynth_tensor *sigma = clsynth_tensor_new(ctx, "spectral_norm_set.sigma", 1, 1, 1, s->n);  /* (members) */
    clsynth_tensor *out = clsynth_tensor_new(ctx, "spectral_norm_set", 1, 1, 1, (int)s->elems); /* (sum Cout K) */
    if (!vu || !wv || !uu || !sigma || !out || forward_kernels(ctx, s, update, vu, wv, uu, sigma, out))
        return NULL;
    for (int i = 0; i < s->n; i++) {
        const clsynth_tensor *w = s->w[i];
        s->out[i] = clsynth_tensor_view(ctx, out, "spectral_norm", s->e_off[i], w->n, w->c, w->h, w->w); /* like w */
        if (!s->out[i])
            return NULL;
    }
    if (!grad)
        return out;
    clsynth_tensor *in[1] = { s->w[0] }; /* stands for all members (they require grad together) */
    clsynth_node *nd = clsynth_tape_record(ctx, "spectral_norm_set", sn_set_backward, out, in, 1);
    clsynth_sn_set **extra = nd ? malloc(sizeof *extra) : NULL;
    if (!nd || !extra) {
        if (!ctx->failed)
            clsynth_ctx_fail(ctx, "out of host memory");
        return NULL;
    }
    *extra = s;
    nd->extra = extra;
    nd->saved[0] = uu;
    nd->saved[1] = vu;
    nd->saved[2] = sigma;
    nd->iarg[0] = (int)s->L;
    return share_gradients(ctx, s, out) ? NULL : out;
}
