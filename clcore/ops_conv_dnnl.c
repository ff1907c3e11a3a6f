/* The oneDNN algorithm of conv2d (CLSYNTH_CONV_DNNL): where the OpenCL device
 * is the host CPU (PoCL, Intel's CPU runtime, rusticl on llvmpipe), its
 * buffers live in host memory, and oneDNN's CPU convolutions (the library
 * PyTorch's CPU convolutions run on) can read and write them in place, as the
 * host-BLAS GEMM does (clcore/gemm_host.c, clcore/hostmap.h).
 *
 * Why a library and not our kernels: oneDNN JIT-compiles register-blocked
 * AVX2/AVX-512 convolutions for the exact shape, in a channel-blocked layout,
 * with no column buffer. On the 2-core AVX-512 EPYC of platforms.md the
 * convs of a training step, forward + backward (`clsynth bench conv`), took
 * 166 ms against 269 ms for im2col + OpenBLAS at the tiny preset and 4,557
 * against 7,991 ms at small; OpenCL C 1.2 on PoCL reaches neither the ISA
 * nor the JIT's blocking.
 *
 * One call: map x, w, b and y (or dy, dx, dw), reorder the operands from our
 * layouts (NCHW activations, OIHW weights) to the layouts the primitive chose
 * (format "any"), run it, reorder the result back, unmap. The conv2d tunable
 * DNNL_LAYOUT keeps the activations in NCHW instead (CONV2D_DNNL_PLAIN: no
 * reorders of x and y, oneDNN's GEMM-based primitive; the default for a
 * plain 1x1 conv, whose blocked reorders cost more than the conv). The result's
 * reorder carries a sum post-op where the gradient is accumulated (dx += ..,
 * dw += ..), so no extra pass adds it. The reordered copies live in one host
 * scratch arena per context (the size of the largest conv's operands).
 *
 * Primitives are created once per (pass, shape, bias) and kept in a list per
 * context (creation JIT-compiles: milliseconds); the backward primitives take
 * a forward-training descriptor as their hint, as oneDNN requires.
 *
 * Deterministic: oneDNN's f32 direct convolutions give the same bits for the
 * same inputs and thread count (tests/test_conv_dnnl.c checks it). Threads:
 * Debian's oneDNN runs on OpenMP (libgomp), all cores by default
 * (OMP_NUM_THREADS to change it); as with the host BLAS, the map drains the
 * OpenCL queue first, so the two never compute at the same time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/hostmap.h"
#include "clcore/launch.h"
#include "clcore/ops_conv_impl.h"

bool clsynth_conv_dnnl_capable(const clsynth_device_info *dev)
{
#ifdef CLSYNTH_HAVE_DNNL
    return clsynth_device_host_memory(dev);
#else
    (void)dev;
    return false;
#endif
}

bool clsynth_conv_dnnl_applies(const clsynth_conv_shape *s)
{
    /* oneDNN wants OH = (H + pl + pr - KH) / stride + 1 exactly, pr >= 0: a
     * stride that leaves input rows unread (floor division) shortens the
     * right padding below zero where pad is smaller than stride - 1 */
    const int oh = clsynth_conv_oh(s), ow = clsynth_conv_ow(s);
    return (oh - 1) * s->stride + s->kh - s->h - s->pad >= 0 && (ow - 1) * s->stride + s->kw - s->w - s->pad >= 0;
}

#ifdef CLSYNTH_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

enum { PASS_FWD, PASS_BWD_DATA, PASS_BWD_WEIGHTS };
/* the roles of a conv's three tensors: x / dx, w / dw, y / dy */
enum { R_SRC, R_WEI, R_DST, N_ROLES };

typedef struct prim {
    int pass;
    bool bias;
    bool plain; /* CONV2D_DNNL_PLAIN: x and y (dx, dy) stay NCHW */
    clsynth_conv_geom g;
    dnnl_primitive_t conv;
    dnnl_memory_desc_t user[N_ROLES]; /* ours: nchw, oihw, nchw */
    dnnl_memory_desc_t own[N_ROLES];  /* the primitive's */
    bool same[N_ROLES];               /* own == user: no reorder */
    dnnl_primitive_t to_own[N_ROLES]; /* inputs: user -> own (NULL when same) */
    dnnl_primitive_t to_user[2];      /* the output: own -> user, [1] adding to it (made on first use) */
    size_t off[N_ROLES], scratch;     /* own copies in the arena (bytes) */
    struct prim *next;
} prim;

typedef struct clsynth_dnnl {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    prim *prims;
    void *arena;
    size_t arena_size;
} clsynth_dnnl;

static int dnnl_fail(clsynth_ctx *ctx, const char *call, const char *what, dnnl_status_t s)
{
    return clsynth_ctx_fail(ctx, "%s: oneDNN %s failed: %s", what, call, dnnl_status2str(s));
}

#define DNNL_CK(ctx, call, what)                                  \
    do {                                                          \
        dnnl_status_t s_ = (call);                                \
        if (s_ != dnnl_success)                                   \
            return dnnl_fail((ctx), #call, (what), s_);           \
    } while (0)

static clsynth_dnnl *state(clsynth_ctx *ctx, const char *what)
{
    if (ctx->dnnl)
        return ctx->dnnl;
    clsynth_dnnl *d = calloc(1, sizeof *d);
    if (!d) {
        clsynth_ctx_fail(ctx, "%s: out of host memory", what);
        return NULL;
    }
    dnnl_status_t s = dnnl_engine_create(&d->engine, dnnl_cpu, 0);
    if (s == dnnl_success && (s = dnnl_stream_create(&d->stream, d->engine, dnnl_stream_default_flags)) != dnnl_success)
        dnnl_engine_destroy(d->engine);
    if (s != dnnl_success) {
        free(d);
        dnnl_fail(ctx, "dnnl_engine_create/dnnl_stream_create", what, s);
        return NULL;
    }
    ctx->dnnl = d;
    return d;
}

/* frees what was made so far (prim_get's failures too) */
static void prim_free(prim *p)
{
    if (p->conv)
        dnnl_primitive_destroy(p->conv);
    for (int r = 0; r < N_ROLES; r++)
        if (p->to_own[r])
            dnnl_primitive_destroy(p->to_own[r]);
    for (int k = 0; k < 2; k++)
        if (p->to_user[k])
            dnnl_primitive_destroy(p->to_user[k]);
    free(p);
}

void clsynth_conv_dnnl_free(clsynth_ctx *ctx)
{
    clsynth_dnnl *d = ctx->dnnl;
    if (!d)
        return;
    for (prim *p = d->prims, *n; p; p = n) {
        n = p->next;
        prim_free(p);
    }
    dnnl_stream_destroy(d->stream);
    dnnl_engine_destroy(d->engine);
    free(d->arena);
    free(d);
    ctx->dnnl = NULL;
}

static int md_init(clsynth_ctx *ctx, dnnl_memory_desc_t *md, int n, int c, int h, int w, dnnl_format_tag_t tag,
                   const char *what)
{
    const dnnl_dims_t dims = { n, c, h, w };
    DNNL_CK(ctx, dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag), what);
    return 0;
}

/* The three tensors' descriptors at g: ours (tag nchw/oihw), or what the
 * primitive may choose ("any"; the activations stay nchw when plain). */
static int mds(clsynth_ctx *ctx, const clsynth_conv_geom *g, bool any, bool plain, dnnl_memory_desc_t md[N_ROLES],
               const char *what)
{
    const dnnl_format_tag_t act = any && !plain ? dnnl_format_tag_any : dnnl_nchw;
    return md_init(ctx, &md[R_SRC], g->N, g->Cin, g->H, g->W, act, what) ||
           md_init(ctx, &md[R_WEI], g->Cout, g->Cin, g->KH, g->KW, any ? dnnl_format_tag_any : dnnl_oihw, what) ||
           md_init(ctx, &md[R_DST], g->N, g->Cout, g->OH, g->OW, act, what);
}

/* Strides and paddings of g; the right padding makes oneDNN's output size
 * ours (clsynth_conv_dnnl_applies: never negative). */
typedef struct window {
    dnnl_dims_t strides, pl, pr;
} window;

static window window_of(const clsynth_conv_geom *g)
{
    return (window){ { g->stride, g->stride },
                     { g->pad, g->pad },
                     { (g->OH - 1) * g->stride + g->KH - g->H - g->pad, (g->OW - 1) * g->stride + g->KW - g->W - g->pad } };
}

static int fwd_pd(clsynth_ctx *ctx, clsynth_dnnl *d, const clsynth_conv_geom *g, bool bias, bool plain,
                  dnnl_primitive_desc_t *pd, const char *what)
{
    dnnl_memory_desc_t any[N_ROLES], bmd;
    if (mds(ctx, g, true, plain, any, what))
        return -1;
    const dnnl_dims_t bd = { g->Cout };
    DNNL_CK(ctx, dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x), what);
    const window wd = window_of(g);
    dnnl_convolution_desc_t cd;
    DNNL_CK(ctx,
            dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &any[R_SRC],
                                               &any[R_WEI], bias ? &bmd : NULL, &any[R_DST], wd.strides, wd.pl,
                                               wd.pr),
            what);
    DNNL_CK(ctx, dnnl_primitive_desc_create(pd, &cd, NULL, d->engine, NULL), what);
    return 0;
}

static int reorder(clsynth_ctx *ctx, clsynth_dnnl *d, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                   bool add, dnnl_primitive_t *out, const char *what)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_status_t s = dnnl_success;
    if (add) {
        if ((s = dnnl_primitive_attr_create(&attr)) == dnnl_success && (s = dnnl_post_ops_create(&po)) == dnnl_success &&
            (s = dnnl_post_ops_append_sum(po, 1.0f)) == dnnl_success)
            s = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    dnnl_primitive_desc_t pd = NULL;
    if (s == dnnl_success)
        s = dnnl_reorder_primitive_desc_create(&pd, from, d->engine, to, d->engine, attr);
    if (s == dnnl_success)
        s = dnnl_primitive_create(out, pd);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return s == dnnl_success ? 0 : dnnl_fail(ctx, "reorder", what, s);
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* The primitive of (pass, g, bias, layout): from the list, or made and added. */
static prim *prim_get(clsynth_ctx *ctx, clsynth_dnnl *d, int pass, const clsynth_conv_geom *g, bool bias, bool plain,
                      const char *what)
{
    for (prim *p = d->prims; p; p = p->next)
        if (p->pass == pass && p->bias == bias && p->plain == plain && memcmp(&p->g, g, sizeof *g) == 0)
            return p;
    prim *p = calloc(1, sizeof *p);
    if (!p) {
        clsynth_ctx_fail(ctx, "%s: out of host memory", what);
        return NULL;
    }
    p->pass = pass;
    p->bias = bias;
    p->plain = plain;
    p->g = *g;
    dnnl_primitive_desc_t hint = NULL, pd = NULL;
    int rc = mds(ctx, g, false, false, p->user, what) || fwd_pd(ctx, d, g, bias, plain, &hint, what);
    if (!rc && pass == PASS_FWD) {
        pd = hint;
        hint = NULL;
    } else if (!rc) {
        dnnl_memory_desc_t any[N_ROLES];
        const window wd = window_of(g);
        dnnl_convolution_desc_t cd;
        dnnl_status_t s = mds(ctx, g, true, plain, any, what) ? dnnl_runtime_error : dnnl_success;
        if (s == dnnl_success)
            s = pass == PASS_BWD_DATA
                    ? dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &any[R_SRC], &any[R_WEI],
                                                               &any[R_DST], wd.strides, wd.pl, wd.pr)
                    : dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &any[R_SRC],
                                                                  &any[R_WEI], NULL, &any[R_DST], wd.strides, wd.pl,
                                                                  wd.pr);
        if (s == dnnl_success)
            s = dnnl_primitive_desc_create(&pd, &cd, NULL, d->engine, hint);
        if (s != dnnl_success)
            rc = ctx->failed ? -1 : dnnl_fail(ctx, "backward convolution descriptor", what, s);
    }
    if (!rc) {
        static const dnnl_query_t q[3][N_ROLES] = {
            { dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md },
            { dnnl_query_diff_src_md, dnnl_query_weights_md, dnnl_query_diff_dst_md },
            { dnnl_query_src_md, dnnl_query_diff_weights_md, dnnl_query_diff_dst_md },
        };
        const int out = pass == PASS_FWD ? R_DST : pass == PASS_BWD_DATA ? R_SRC : R_WEI;
        for (int r = 0; r < N_ROLES && !rc; r++) {
            p->own[r] = *dnnl_primitive_desc_query_md(pd, q[pass][r], 0);
            p->same[r] = dnnl_memory_desc_equal(&p->own[r], &p->user[r]);
            p->off[r] = p->scratch;
            p->scratch += align64(dnnl_memory_desc_get_size(&p->own[r]));
            if (r != out && !p->same[r])
                rc = reorder(ctx, d, &p->user[r], &p->own[r], false, &p->to_own[r], what);
        }
        dnnl_status_t s = rc ? dnnl_success : dnnl_primitive_create(&p->conv, pd);
        if (s != dnnl_success)
            rc = dnnl_fail(ctx, "dnnl_primitive_create", what, s);
    }
    if (hint)
        dnnl_primitive_desc_destroy(hint);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (rc) {
        prim_free(p);
        return NULL;
    }
    p->next = d->prims;
    d->prims = p;
    return p;
}

static int arena_fit(clsynth_ctx *ctx, clsynth_dnnl *d, size_t bytes, const char *what)
{
    if (bytes <= d->arena_size)
        return 0;
    free(d->arena);
    d->arena_size = 0;
    if (!(d->arena = aligned_alloc(64, align64(bytes))))
        return clsynth_ctx_fail(ctx, "%s: out of host memory (%zu bytes of oneDNN layouts)", what, bytes);
    d->arena_size = align64(bytes);
    return 0;
}

/* One pass on mapped pointers: ptr[r] the user tensor of role r, bias or
 * NULL; the output role accumulates into its tensor when `add`. */
static int execute(clsynth_ctx *ctx, clsynth_dnnl *d, prim *p, float *const ptr[N_ROLES], float *bias, bool add,
                   const char *what)
{
    const int out = p->pass == PASS_FWD ? R_DST : p->pass == PASS_BWD_DATA ? R_SRC : R_WEI;
    if (add && !p->to_user[1] && reorder(ctx, d, &p->own[out], &p->user[out], true, &p->to_user[1], what))
        return -1;
    if (!add && !p->same[out] && !p->to_user[0] &&
        reorder(ctx, d, &p->own[out], &p->user[out], false, &p->to_user[0], what))
        return -1;
    if (arena_fit(ctx, d, p->scratch, what))
        return -1;
    dnnl_memory_t user[N_ROLES] = { 0 }, own[N_ROLES] = { 0 }, mb = NULL;
    dnnl_status_t s = dnnl_success;
    for (int r = 0; r < N_ROLES && s == dnnl_success; r++) {
        s = dnnl_memory_create(&user[r], &p->user[r], d->engine, ptr[r]);
        /* the output goes straight to our tensor when its layout is ours and nothing is added */
        const bool direct = p->same[r] && !(r == out && add);
        if (s == dnnl_success)
            s = direct ? dnnl_success
                       : dnnl_memory_create(&own[r], &p->own[r], d->engine, (char *)d->arena + p->off[r]);
    }
    if (s == dnnl_success && bias) {
        dnnl_memory_desc_t bmd;
        const dnnl_dims_t bd = { p->g.Cout };
        s = dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x);
        if (s == dnnl_success)
            s = dnnl_memory_create(&mb, &bmd, d->engine, bias);
    }
    const char *call = "dnnl_memory_create";
    for (int r = 0; r < N_ROLES && s == dnnl_success; r++)
        if (r != out && own[r]) {
            dnnl_exec_arg_t a[2] = { { DNNL_ARG_FROM, user[r] }, { DNNL_ARG_TO, own[r] } };
            s = dnnl_primitive_execute(p->to_own[r], d->stream, 2, a);
            call = "reorder to the convolution's layout";
        }
    if (s == dnnl_success) {
        dnnl_memory_t m[N_ROLES];
        for (int r = 0; r < N_ROLES; r++)
            m[r] = own[r] ? own[r] : user[r];
        dnnl_exec_arg_t a[4];
        int n = 0;
        if (p->pass == PASS_FWD) {
            a[n++] = (dnnl_exec_arg_t){ DNNL_ARG_SRC, m[R_SRC] };
            a[n++] = (dnnl_exec_arg_t){ DNNL_ARG_WEIGHTS, m[R_WEI] };
            a[n++] = (dnnl_exec_arg_t){ DNNL_ARG_DST, m[R_DST] };
            if (mb)
                a[n++] = (dnnl_exec_arg_t){ DNNL_ARG_BIAS, mb };
        } else if (p->pass == PASS_BWD_DATA) {
            a[n++] = (dnnl_exec_arg_t){ DNNL_ARG_DIFF_DST, m[R_DST] };
            a[n++] = (dnnl_exec_arg_t){ DNNL_ARG_WEIGHTS, m[R_WEI] };
            a[n++] = (dnnl_exec_arg_t){ DNNL_ARG_DIFF_SRC, m[R_SRC] };
        } else {
            a[n++] = (dnnl_exec_arg_t){ DNNL_ARG_SRC, m[R_SRC] };
            a[n++] = (dnnl_exec_arg_t){ DNNL_ARG_DIFF_DST, m[R_DST] };
            a[n++] = (dnnl_exec_arg_t){ DNNL_ARG_DIFF_WEIGHTS, m[R_WEI] };
        }
        s = dnnl_primitive_execute(p->conv, d->stream, n, a);
        call = "convolution";
    }
    if (s == dnnl_success && own[out]) {
        dnnl_exec_arg_t a[2] = { { DNNL_ARG_FROM, own[out] }, { DNNL_ARG_TO, user[out] } };
        s = dnnl_primitive_execute(p->to_user[add ? 1 : 0], d->stream, 2, a);
        call = "reorder to our layout";
    }
    if (s == dnnl_success) {
        s = dnnl_stream_wait(d->stream);
        call = "dnnl_stream_wait";
    }
    for (int r = 0; r < N_ROLES; r++) {
        if (user[r])
            dnnl_memory_destroy(user[r]);
        if (own[r])
            dnnl_memory_destroy(own[r]);
    }
    if (mb)
        dnnl_memory_destroy(mb);
    return s == dnnl_success ? 0 : dnnl_fail(ctx, call, what, s);
}

/* Maps the pass's tensors (t[r] of role r, NULL when absent), runs it, unmaps. */
static int run_pass(clsynth_ctx *ctx, const clsynth_conv_call *c, int pass, clsynth_tensor *const t[N_ROLES],
                    const clsynth_tensor *bias, bool add, const char *profile_name)
{
    if (ctx->failed)
        return -1;
    const clsynth_conv_shape s = clsynth_conv_shape_of(&c->g);
    if (!clsynth_conv_dnnl_capable(&ctx->dev))
        return clsynth_ctx_fail(ctx, "%s: the oneDNN convolution needs a host-CPU device (PoCL, Intel's CPU runtime, "
                                     "rusticl); this is a device of class %s",
                                c->what, clsynth_device_class(&ctx->dev));
    if (!clsynth_conv_dnnl_applies(&s))
        return clsynth_ctx_fail(ctx, "%s: the oneDNN convolution cannot take stride %d with pad %d at %dx%d "
                                     "(input rows past the last window): another algorithm runs it",
                                c->what, s.stride, s.pad, s.h, s.w);
    double t0;
    if (clsynth_host_call_begin(ctx, &t0))
        return -1;
    clsynth_dnnl *d = state(ctx, c->what);
    const bool plain = c->cfg->v[CONV2D_DNNL_LAYOUT] == CONV2D_DNNL_PLAIN;
    prim *p = d ? prim_get(ctx, d, pass, &c->g, bias != NULL, plain, c->what) : NULL;
    if (!p)
        return -1;
    const int out = pass == PASS_FWD ? R_DST : pass == PASS_BWD_DATA ? R_SRC : R_WEI;
    clsynth_hostmap m = { 0 };
    for (int r = 0; r < N_ROLES; r++)
        clsynth_hostmap_add(&m, t[r]->mem, t[r]->off, t[r]->numel, r == out);
    if (bias)
        clsynth_hostmap_add(&m, bias->mem, bias->off, bias->numel, false);
    if (clsynth_hostmap_map(ctx, &m, c->what))
        return -1;
    float *ptr[N_ROLES];
    for (int r = 0; r < N_ROLES; r++)
        ptr[r] = clsynth_hostmap_at(&m, t[r]->mem, t[r]->off);
    float *pb = bias ? clsynth_hostmap_at(&m, bias->mem, bias->off) : NULL;
    int rc = execute(ctx, d, p, ptr, pb, add, c->what);
    if (clsynth_hostmap_unmap(ctx, &m, c->what))
        rc = -1;
    return rc ? -1 : clsynth_host_call_end(ctx, profile_name, t0);
}

static int conv_dnnl_forward(clsynth_ctx *ctx, const clsynth_conv_call *c)
{
    clsynth_tensor *const t[N_ROLES] = { c->x, c->w, c->y };
    return run_pass(ctx, c, PASS_FWD, t, c->b, false, "host oneDNN conv forward");
}

static int conv_dnnl_backward(clsynth_ctx *ctx, const clsynth_conv_call *c)
{
    if (c->dx) {
        clsynth_tensor *const t[N_ROLES] = { c->dx, c->w, c->dy };
        if (run_pass(ctx, c, PASS_BWD_DATA, t, NULL, !c->dx_fresh, "host oneDNN conv bwd data"))
            return -1;
    }
    if (c->dw) {
        clsynth_tensor *const t[N_ROLES] = { c->x, c->dw, c->dy };
        if (run_pass(ctx, c, PASS_BWD_WEIGHTS, t, NULL, true, "host oneDNN conv bwd weights"))
            return -1;
    }
    return 0;
}

#else

void clsynth_conv_dnnl_free(clsynth_ctx *ctx) { (void)ctx; }

static int no_dnnl(clsynth_ctx *ctx, const clsynth_conv_call *c)
{
    return clsynth_ctx_fail(ctx, "%s: the oneDNN convolution was asked for, but this build has no oneDNN "
                                 "(configure with it: Debian package libdnnl-dev)",
                            c->what);
}

static int conv_dnnl_forward(clsynth_ctx *ctx, const clsynth_conv_call *c) { return no_dnnl(ctx, c); }
static int conv_dnnl_backward(clsynth_ctx *ctx, const clsynth_conv_call *c) { return no_dnnl(ctx, c); }

#endif

const clsynth_conv_impl clsynth_conv_impl_dnnl = {
    .name = "dnnl",
    .forward = conv_dnnl_forward,
    .backward = conv_dnnl_backward,
    .stores_dx = true,
};
