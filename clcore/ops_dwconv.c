/* Conditional depthwise 3x3 convolution (kernels/dwconv.cl): each sample,
 * channel and pixel has its own 3x3 kernel, predicted by the generator's
 * weight-prediction network.
 *
 * Memory: the op never materializes the 9x unfold of x that the reference
 * PyTorch code builds. Forward: y (N,C,H,W) is the only allocation; x is read
 * about once (through a local-memory tile with a 1-pixel halo), k (N,9C,H,W)
 * once, y written once: ~11.3 floats of traffic per output pixel with the
 * default 32x8 tile. Backward: one fused kernel reads dy (tile with halo), x
 * (tile, only when dk is needed) and k (once, only when dx is needed) and
 * accumulates into dx and dk in place (gather form, no atomics); nothing is
 * allocated besides the gradients themselves (zero-filled by clsynth_grad_of
 * on first use). The forward saves nothing extra for backward: x and k are
 * the op's inputs. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "clcore/launch.h"
#include "clcore/ops.h"
#include "clcore/program.h"
#include "clcore/tune.h"

#define DW_FILE "dwconv.cl"
#define DW_TILE_MAX 256

typedef struct dw_cfg {
    char options[96];
    int vw, tile_w, tile_h;
    int tiles;        /* local-memory tiles: 1 forward, 2 backward */
    size_t local[3];  /* always (TILE_W/VW, TILE_H, 1) */
    size_t local_mem; /* bytes of __local used by the kernel */
} dw_cfg;

static int opt_int(const char *options, const char *name, int fallback)
{
    char pat[32];
    snprintf(pat, sizeof pat, "-D%s=", name);
    const char *p = strstr(options, pat);
    if (!p)
        return fallback;
    int v = fallback;
    if (sscanf(p + strlen(pat), "%d", &v) != 1)
        return fallback;
    return v;
}

static size_t tile_bytes(int tw, int th, int tiles)
{
    return (size_t)tiles * (size_t)(tw + 2) * (size_t)(th + 2) * sizeof(float);
}

static bool dw_legal(int vw, int tw, int th)
{
    return (vw == 1 || vw == 2 || vw == 4 || vw == 8 || vw == 16) && tw >= vw && tw <= DW_TILE_MAX &&
           tw % vw == 0 && th >= 1 && th <= DW_TILE_MAX;
}

/* Defaults per device class: CPUs (PoCL) need explicit vectors to stream
 * (measured on 2 shared AVX-512 cores: VW 8, 64x8 tiles = 8x8 work-items); GPUs get
 * two pixels per work-item and 64x8 tiles (32x8 = 256 work-items). */
static void dw_defaults(clsynth_ctx *ctx, int *vw, int *tw, int *th)
{
    if (ctx->dev.type & CL_DEVICE_TYPE_CPU) {
        *vw = 8;
        *tw = 64;
        *th = 8;
    } else {
        *vw = 2;
        *tw = 64;
        *th = 8;
    }
}

/* Tunables for kernel kname ("dwconv_fwd" or "dwconv_bwd") at x's shape
 * (VW, TILE_W, TILE_H; the local size follows from them, so a tuned local
 * size is ignored):
 * the tuning database if it has an entry (shape key "NCxHxW", e.g.
 * "64x128x128"), else the device-class defaults, shrunk until the tiles fit
 * the device's local memory. */
static int dw_config(clsynth_ctx *ctx, const clsynth_tensor *x, const char *kname, int tiles, dw_cfg *cfg)
{
    char key[64];
    snprintf(key, sizeof key, "%dx%dx%d", x->n * x->c, x->h, x->w);
    clsynth_tune_entry e;
    memset(&e, 0, sizeof e);
    int vw, tw, th;
    dw_defaults(ctx, &vw, &tw, &th);
    /* no idle work-items on images smaller than the default tile */
    if (x->w < tw)
        tw = (x->w + vw - 1) / vw * vw;
    if (x->h < th)
        th = x->h;
    if (clsynth_tune_lookup(ctx, kname, key, &e)) {
        int tvw = opt_int(e.options, "VW", vw), ttw = opt_int(e.options, "TILE_W", tw),
            tth = opt_int(e.options, "TILE_H", th);
        if (dw_legal(tvw, ttw, tth) && tile_bytes(ttw, tth, tiles) <= ctx->local_mem) {
            vw = tvw;
            tw = ttw;
            th = tth;
        } else {
            clsynth_warn(ctx, "%s: tuned VW=%d TILE_W=%d TILE_H=%d at %s is illegal here; using defaults",
                         kname, tvw, ttw, tth, key);
        }
    }
    /* shrink to the local memory and the work-group limits: first the height, then the width */
    while ((tile_bytes(tw, th, tiles) > ctx->local_mem || (size_t)(tw / vw) * (size_t)th > ctx->max_wg ||
            (size_t)(tw / vw) > ctx->max_item[0] || (size_t)th > ctx->max_item[1]) &&
           (th > 1 || tw > 1)) {
        if (th > 1)
            th = (th + 1) / 2;
        else if (tw > vw)
            tw = tw / 2 / vw * vw < vw ? vw : tw / 2 / vw * vw;
        else
            tw = vw = vw / 2;
    }
    if (tile_bytes(tw, th, tiles) > ctx->local_mem)
        return clsynth_ctx_fail(ctx, "%s: the device's %llu bytes of local memory cannot hold a 1x1 tile",
                                kname, (unsigned long long)ctx->local_mem);
    snprintf(cfg->options, sizeof cfg->options, "-DVW=%d -DTILE_W=%d -DTILE_H=%d", vw, tw, th);
    cfg->vw = vw;
    cfg->tile_w = tw;
    cfg->tile_h = th;
    cfg->tiles = tiles;
    cfg->local_mem = tile_bytes(tw, th, tiles);
    return 0;
}

/* The kernels' required local size is (TILE_W/VW, TILE_H, 1): shrink the
 * tile (height first) until it fits the kernel's, the device's and the
 * emulated limits. The kernel is compiled first with the tile the local
 * memory allows; when its CL_KERNEL_WORK_GROUP_SIZE forces a smaller tile it
 * is fetched again with the new options. */
static cl_kernel dw_kernel(clsynth_ctx *ctx, const char *kname, dw_cfg *cfg)
{
    for (int tries = 0; tries < 32; tries++) {
        cl_kernel k = clsynth_kernel_get(ctx, DW_FILE, kname, cfg->options);
        if (!k)
            return NULL;
        size_t kmax = clsynth_kernel_max_wg(ctx, k, kname);
        if (kmax == 0)
            return NULL;
        size_t lx = (size_t)(cfg->tile_w / cfg->vw), ly = (size_t)cfg->tile_h;
        if (lx * ly <= kmax && lx <= ctx->max_item[0] && ly <= ctx->max_item[1]) {
            cfg->local[0] = lx;
            cfg->local[1] = ly;
            cfg->local[2] = 1;
            return k;
        }
        if (ly > 1 && (ly > ctx->max_item[1] || ly >= lx))
            cfg->tile_h = (cfg->tile_h + 1) / 2;
        else if (lx > 1)
            cfg->tile_w = (int)((lx + 1) / 2) * cfg->vw;
        else
            break;
        snprintf(cfg->options, sizeof cfg->options, "-DVW=%d -DTILE_W=%d -DTILE_H=%d", cfg->vw, cfg->tile_w,
                 cfg->tile_h);
        cfg->local_mem = tile_bytes(cfg->tile_w, cfg->tile_h, cfg->tiles);
    }
    clsynth_ctx_fail(ctx, "%s: no tile fits the device's work-group limits", kname);
    return NULL;
}

static void dw_global(const clsynth_tensor *x, const dw_cfg *cfg, size_t g[3])
{
    g[0] = (size_t)((x->w + cfg->tile_w - 1) / cfg->tile_w) * cfg->local[0];
    g[1] = (size_t)((x->h + cfg->tile_h - 1) / cfg->tile_h) * cfg->local[1];
    g[2] = (size_t)x->n * (size_t)x->c;
}

static int dwconv_backward(clsynth_ctx *ctx, clsynth_node *nd)
{
    clsynth_tensor *x = nd->in[0], *kt = nd->in[1], *dy = nd->out->grad;
    int need_dx = (x->flags & CLSYNTH_T_REQUIRES_GRAD) != 0;
    int need_dk = (kt->flags & CLSYNTH_T_REQUIRES_GRAD) != 0;
    if (!need_dx && !need_dk)
        return 0;
    clsynth_tensor *dx = need_dx ? clsynth_grad_of(ctx, x) : dy;
    clsynth_tensor *dk = need_dk ? clsynth_grad_of(ctx, kt) : dy;
    if (!dx || !dk)
        return -1;
    dw_cfg cfg;
    if (dw_config(ctx, x, "dwconv_bwd", 2, &cfg))
        return -1;
    cl_kernel k = dw_kernel(ctx, "dwconv_bwd", &cfg);
    if (!k)
        return -1;
    clsynth_args a = clsynth_args_begin(ctx, k, "dwconv_bwd");
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, kt);
    clsynth_arg_tensor(&a, dy);
    clsynth_arg_tensor(&a, dx);
    clsynth_arg_tensor(&a, dk);
    clsynth_arg_int(&a, need_dx);
    clsynth_arg_int(&a, need_dk);
    clsynth_arg_int(&a, x->n * x->c);
    clsynth_arg_int(&a, x->c);
    clsynth_arg_int(&a, x->h);
    clsynth_arg_int(&a, x->w);
    size_t g[3];
    dw_global(x, &cfg, g);
    return clsynth_launch(&a, 3, g, cfg.local, cfg.local_mem, NULL);
}

clsynth_tensor *clsynth_cond_dwconv(clsynth_ctx *ctx, clsynth_tensor *x, clsynth_tensor *k)
{
    if (ctx->failed || !x || !k)
        return NULL;
    char bx[160], bk[160];
    if (k->n != x->n || (long)k->c != 9L * x->c || k->h != x->h || k->w != x->w) {
        clsynth_ctx_fail(ctx, "cond_dwconv: kernels %s must be (N, 9C, H, W) = (%d, %ld, %d, %d) for input %s",
                         clsynth_tensor_describe(k, bk, sizeof bk), x->n, 9L * x->c, x->h, x->w,
                         clsynth_tensor_describe(x, bx, sizeof bx));
        return NULL;
    }
    clsynth_tensor *y = clsynth_tensor_new(ctx, "cond_dwconv", x->n, x->c, x->h, x->w); /* (N, C, H, W) */
    if (!y)
        return NULL;
    dw_cfg cfg;
    if (dw_config(ctx, x, "dwconv_fwd", 1, &cfg))
        return NULL;
    cl_kernel kern = dw_kernel(ctx, "dwconv_fwd", &cfg);
    if (!kern)
        return NULL;
    clsynth_args a = clsynth_args_begin(ctx, kern, "dwconv_fwd");
    clsynth_arg_tensor(&a, x);
    clsynth_arg_tensor(&a, k);
    clsynth_arg_tensor(&a, y);
    clsynth_arg_int(&a, x->n * x->c);
    clsynth_arg_int(&a, x->c);
    clsynth_arg_int(&a, x->h);
    clsynth_arg_int(&a, x->w);
    size_t g[3];
    dw_global(x, &cfg, g);
    if (clsynth_launch(&a, 3, g, cfg.local, cfg.local_mem, NULL))
        return NULL;
    clsynth_tensor *in[2] = { x, k };
    clsynth_tape_record(ctx, "cond_dwconv", dwconv_backward, y, in, 2);
    return ctx->failed ? NULL : y;
}
