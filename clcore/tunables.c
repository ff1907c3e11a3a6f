/* The registry of tunable kernels (see clcore/tunables.h), written from what
 * the ops declare in their kernel-file headers (kernels/) and their clsynth_tune_lookup
 * calls. Shape keys are the ops' own:
 *
 *   conv2d, conv_fwd_direct, conv_bwd_data_direct, conv_bwd_weight_direct
 *       "N<n>.C<cin>.H<h>.W<w>.O<cout>.K<kh>x<kw>.S<s>.P<p>"   (clcore/ops_conv.c)
 *   dwconv_fwd, dwconv_bwd          "<N*C>x<H>x<W>"            (clcore/ops_dwconv.c)
 *   norm_partial_stats, norm_partial_dsums  "G=<groups>,M=<values per group>" (clcore/ops_norm.c)
 *   reduce_groups                   "k<ceil log2 K>r<ceil log2 R>" (clcore/reduce.c)
 *
 * Each harness builds deterministic inputs at the shape and runs the public op
 * (forcing the algorithm where a kernel belongs to one), so a candidate is
 * measured exactly as the model runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/ops.h"
#include "clcore/reduce.h"
#include "clcore/tunables.h"

/* ------------------------------------------------------------ helpers */

static clsynth_tensor *input(clsynth_ctx *ctx, const char *name, int n, int c, int h, int w, unsigned seed,
                             float scale)
{
    clsynth_tensor *t = clsynth_tensor_new_persistent(ctx, name, n, c, h, w);
    if (!t)
        return NULL;
    float *host = malloc(t->numel * sizeof *host);
    if (!host) {
        clsynth_ctx_fail(ctx, "out of host memory");
        clsynth_tensor_free(ctx, t);
        return NULL;
    }
    uint64_t s = 0x243f6a8885a308d3ULL ^ ((uint64_t)seed * 0x9e3779b97f4a7c15ULL);
    for (size_t i = 0; i < t->numel; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        host[i] = scale * (float)((double)(s >> 40) / 16777216.0 * 2.0 - 1.0);
    }
    int rc = clsynth_tensor_upload(ctx, t, host);
    free(host);
    if (rc) {
        clsynth_tensor_free(ctx, t);
        return NULL;
    }
    return t;
}

static int add_input(clsynth_ctx *ctx, clsynth_tbench *b, clsynth_tensor *t)
{
    if (!t)
        return -1;
    b->in[b->n_in++] = t;
    (void)ctx;
    return 0;
}

static int pow2_ceil_i(int x)
{
    int p = 1;
    while (p < x)
        p *= 2;
    return p;
}

/* ------------------------------------------------------------ conv2d */

enum { CV_N, CV_C, CV_H, CV_W, CV_O, CV_KH, CV_KW, CV_S, CV_P };

static int conv_parse(const char *shape, int s[CLSYNTH_TP_MAX_SHAPE])
{
    char tail = 0;
    if (sscanf(shape, "N%d.C%d.H%d.W%d.O%d.K%dx%d.S%d.P%d%c", &s[CV_N], &s[CV_C], &s[CV_H], &s[CV_W], &s[CV_O],
               &s[CV_KH], &s[CV_KW], &s[CV_S], &s[CV_P], &tail) != 9)
        return -1;
    for (int i = 0; i <= CV_S; i++)
        if (s[i] < 1 || s[i] > 65536)
            return -1;
    if (s[CV_P] < 0 || s[CV_H] + 2 * s[CV_P] < s[CV_KH] || s[CV_W] + 2 * s[CV_P] < s[CV_KW])
        return -1;
    return 9;
}

static int conv_out(int in, int k, int st, int p) { return (in + 2 * p - k) / st + 1; }

static int conv_setup(clsynth_ctx *ctx, clsynth_tbench *b)
{
    const int *s = b->s;
    const float ws = 1.0f / (float)(s[CV_C] * s[CV_KH] * s[CV_KW]);
    if (add_input(ctx, b, input(ctx, "tune.x", s[CV_N], s[CV_C], s[CV_H], s[CV_W], 1, 1.0f)) ||
        add_input(ctx, b, input(ctx, "tune.w", s[CV_O], s[CV_C], s[CV_KH], s[CV_KW], 2, ws)) ||
        add_input(ctx, b, input(ctx, "tune.b", 1, s[CV_O], 1, 1, 3, 0.1f)))
        return -1;
    double oh = conv_out(s[CV_H], s[CV_KH], s[CV_S], s[CV_P]), ow = conv_out(s[CV_W], s[CV_KW], s[CV_S], s[CV_P]);
    b->flops = 2.0 * s[CV_N] * s[CV_O] * oh * ow * s[CV_C] * s[CV_KH] * s[CV_KW];
    b->bytes = 4.0 * ((double)s[CV_N] * s[CV_C] * s[CV_H] * s[CV_W] + (double)s[CV_N] * s[CV_O] * oh * ow +
                      (double)s[CV_O] * s[CV_C] * s[CV_KH] * s[CV_KW]);
    return 0;
}

static clsynth_tensor *conv_auto(clsynth_ctx *ctx, clsynth_tbench *b)
{
    return clsynth_conv2d(ctx, b->in[0], b->in[1], b->in[2], b->s[CV_S], b->s[CV_P]);
}

static clsynth_tensor *conv_direct(clsynth_ctx *ctx, clsynth_tbench *b)
{
    return clsynth_conv2d_algo(ctx, b->in[0], b->in[1], b->in[2], b->s[CV_S], b->s[CV_P], CLSYNTH_CONV_DIRECT);
}

/* conv_fwd_direct: params COUT_PER_ITEM, CIN_CHUNK, local (TILE_W, TILE_H) */
static size_t conv_fwd_lmem(const int *v, const int *s)
{
    int lw = v[2], lh = v[3];
    if (lw == 0) { /* the op's default tile: 16x16 or the output, pow2 */
        int ow = conv_out(s[CV_W], s[CV_KW], s[CV_S], s[CV_P]), oh = conv_out(s[CV_H], s[CV_KH], s[CV_S], s[CV_P]);
        lw = pow2_ceil_i(ow) < 16 ? pow2_ceil_i(ow) : 16;
        lh = pow2_ceil_i(oh) < 16 ? pow2_ceil_i(oh) : 16;
    }
    int cc = v[1] < s[CV_C] ? v[1] : s[CV_C];
    size_t ph = (size_t)(lh - 1) * (size_t)s[CV_S] + (size_t)s[CV_KH];
    size_t pw = (size_t)(lw - 1) * (size_t)s[CV_S] + (size_t)s[CV_KW];
    return (size_t)cc * ph * pw * sizeof(float);
}

static bool conv_fwd_valid(const int *v, const int *s)
{
    /* no more output channels per item than the layer has (beyond the next power of two) */
    if (v[0] > pow2_ceil_i(s[CV_O]))
        return false;
    /* chunks beyond Cin are the same configuration as Cin */
    if (v[1] > pow2_ceil_i(s[CV_C]))
        return false;
    /* a tile much wider than the output only idles */
    int ow = conv_out(s[CV_W], s[CV_KW], s[CV_S], s[CV_P]), oh = conv_out(s[CV_H], s[CV_KH], s[CV_S], s[CV_P]);
    if (v[2] && (v[2] > 2 * pow2_ceil_i(ow) || v[3] > 2 * pow2_ceil_i(oh)))
        return false;
    return true;
}

static bool conv_bwd_valid(const int *v, const int *s)
{
    return v[0] <= pow2_ceil_i(s[CV_C]) || v[0] == 1;
}

static bool conv_bwdw_valid(const int *v, const int *s)
{
    return v[0] <= pow2_ceil_i(s[CV_O]) || v[0] == 1;
}

/* ------------------------------------------------------------ dwconv */

static int dw_parse(const char *shape, int s[CLSYNTH_TP_MAX_SHAPE])
{
    char tail = 0;
    if (sscanf(shape, "%dx%dx%d%c", &s[0], &s[1], &s[2], &tail) != 3 || s[0] < 1 || s[1] < 1 || s[2] < 1)
        return -1;
    return 3;
}

static int dw_setup(clsynth_ctx *ctx, clsynth_tbench *b)
{
    const int C = b->s[0], H = b->s[1], W = b->s[2];
    if (add_input(ctx, b, input(ctx, "tune.x", 1, C, H, W, 1, 1.0f)) ||
        add_input(ctx, b, input(ctx, "tune.k", 1, 9 * C, H, W, 2, 0.3f)))
        return -1;
    b->flops = 18.0 * C * H * W;
    b->bytes = 4.0 * 11.0 * C * H * W;
    return 0;
}

static clsynth_tensor *dw_forward(clsynth_ctx *ctx, clsynth_tbench *b)
{
    return clsynth_cond_dwconv(ctx, b->in[0], b->in[1]);
}

/* params VW, TILE_W, TILE_H; the kernels require local (TILE_W/VW, TILE_H, 1) */
static bool dw_valid(const int *v, const int *s)
{
    if (v[1] < v[0] || v[1] % v[0])
        return false;
    /* tiles much larger than the image only idle */
    if (v[1] > 2 * pow2_ceil_i(s[2]) && v[1] > v[0])
        return false;
    if (v[2] > 2 * pow2_ceil_i(s[1]) && v[2] > 1)
        return false;
    return true;
}

static void dw_local(const int *v, const int *s, size_t local[3])
{
    (void)s;
    local[0] = (size_t)(v[1] / v[0]);
    local[1] = (size_t)v[2];
    local[2] = 1;
}

static size_t dw_fwd_lmem(const int *v, const int *s)
{
    (void)s;
    return (size_t)(v[1] + 2) * (size_t)(v[2] + 2) * sizeof(float);
}

static size_t dw_bwd_lmem(const int *v, const int *s) { return 2 * dw_fwd_lmem(v, s); }

/* ------------------------------------------------------------ norm */

static int norm_parse(const char *shape, int s[CLSYNTH_TP_MAX_SHAPE])
{
    char tail = 0;
    if (sscanf(shape, "G=%d,M=%d%c", &s[0], &s[1], &tail) != 2 || s[0] < 1 || s[1] < 2)
        return -1;
    return 2;
}

static int norm_setup(clsynth_ctx *ctx, clsynth_tbench *b)
{
    /* batch norm of x (1, G, 1, M): G groups of M values, as the op's key says */
    if (add_input(ctx, b, input(ctx, "tune.x", 1, b->s[0], 1, b->s[1], 1, 2.0f)))
        return -1;
    b->bytes = 12.0 * b->s[0] * (double)b->s[1];
    return 0;
}

static clsynth_tensor *norm_forward(clsynth_ctx *ctx, clsynth_tbench *b)
{
    return clsynth_batch_norm(ctx, b->in[0], NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f);
}

/* params NORM_VPT, local */
static bool norm_valid(const int *v, const int *s)
{
    /* more values per chunk than a group has is the same as fewer */
    return (long)v[0] * (v[1] ? v[1] : 1) <= 4L * pow2_ceil_i(s[1]) || v[0] == 1;
}

static size_t norm_stats_lmem(const int *v, const int *s)
{
    (void)s;
    return (size_t)(v[1] ? v[1] : 256) * 12;
}

static size_t norm_dsums_lmem(const int *v, const int *s)
{
    (void)s;
    return (size_t)(v[1] ? v[1] : 256) * 8;
}

/* ------------------------------------------------------------ reduce */

static int reduce_parse(const char *shape, int s[CLSYNTH_TP_MAX_SHAPE])
{
    char tail = 0;
    if (sscanf(shape, "k%dr%d%c", &s[0], &s[1], &tail) != 2 || s[0] < 0 || s[1] < 0 || s[0] + s[1] > 28)
        return -1;
    return 2;
}

static int reduce_setup(clsynth_ctx *ctx, clsynth_tbench *b)
{
    /* K outputs of R values each: x (1, 1, K, R) summed over its last dim; the
     * class's largest member (K = 2^k, R = 2^r) */
    int K = 1 << b->s[0], R = 1 << b->s[1];
    if (add_input(ctx, b, input(ctx, "tune.x", 1, 1, K, R, 1, 1.0f)))
        return -1;
    b->bytes = 4.0 * K * (double)R;
    return 0;
}

static clsynth_tensor *reduce_forward(clsynth_ctx *ctx, clsynth_tbench *b)
{
    clsynth_tensor *x = b->in[0];
    clsynth_tensor *y = clsynth_tensor_new(ctx, "tune.sum", 1, 1, x->h, 1); /* (1, 1, K, 1) */
    if (!y || clsynth_reduce_sum_to(ctx, x, y, 1.0f, 0.0f))
        return NULL;
    return y;
}

static size_t reduce_lmem(const int *v, const int *s)
{
    (void)s;
    return (size_t)(v[0] ? v[0] : 256) * sizeof(float);
}

/* ------------------------------------------------------------ registry */

#define LOCAL_DEFAULT 0

static const clsynth_tunable registry[] = {
    {
        .key = "conv2d", .op = "clsynth_conv2d", .backward = true,
        .before = { "conv_fwd_direct", "conv_bwd_data_direct", "conv_bwd_weight_direct" },
        .n_params = 1,
        .params = { { "ALGO", CLSYNTH_TP_ALGO, 2, { CLSYNTH_CONV_DIRECT, CLSYNTH_CONV_IM2COL_GEMM }, 0 } },
        .parse = conv_parse, .setup = conv_setup, .forward = conv_auto,
    },
    {
        .key = "conv_fwd_direct", .file = "conv.cl", .kernels = { "conv_fwd_direct" }, .op = "clsynth_conv2d",
        .dims = 3, .backward = false, .n_params = 4,
        .params = {
            { "COUT_PER_ITEM", CLSYNTH_TP_DEFINE, 5, { 4, 1, 2, 8, 16 }, 0 },
            { "CIN_CHUNK", CLSYNTH_TP_DEFINE, 6, { 8, 1, 2, 4, 16, 32 }, 0 },
            { "TILE_W", CLSYNTH_TP_LOCAL0, 6, { LOCAL_DEFAULT, 4, 8, 16, 32, 64 }, 0 },
            { "TILE_H", CLSYNTH_TP_LOCAL1, 5, { 1, 2, 4, 8, 16 }, 0 },
        },
        .parse = conv_parse, .valid = conv_fwd_valid, .local_mem = conv_fwd_lmem, .setup = conv_setup,
        .forward = conv_direct,
    },
    {
        .key = "conv_bwd_data_direct", .file = "conv.cl", .kernels = { "conv_bwd_data_direct" },
        .op = "clsynth_conv2d (backward, dx)", .dims = 3, .backward = true, .grad_mask = 1u << 0, .n_params = 3,
        .params = {
            { "COUT_PER_ITEM", CLSYNTH_TP_DEFINE, 5, { 4, 1, 2, 8, 16 }, 0 },
            { "LOCAL_X", CLSYNTH_TP_LOCAL0, 6, { LOCAL_DEFAULT, 4, 8, 16, 32, 64 }, 0 },
            { "LOCAL_Y", CLSYNTH_TP_LOCAL1, 5, { 1, 2, 4, 8, 16 }, 0 },
        },
        .parse = conv_parse, .valid = conv_bwd_valid, .setup = conv_setup, .forward = conv_direct,
    },
    {
        .key = "conv_bwd_weight_direct", .file = "conv.cl", .kernels = { "conv_bwd_weight_direct" },
        .op = "clsynth_conv2d (backward, dw)", .dims = 2, .backward = true, .grad_mask = 1u << 1, .n_params = 3,
        .params = {
            { "COUT_PER_ITEM", CLSYNTH_TP_DEFINE, 5, { 4, 1, 2, 8, 16 }, 0 },
            { "LOCAL_X", CLSYNTH_TP_LOCAL0, 7, { LOCAL_DEFAULT, 8, 16, 32, 64, 128, 256 }, 0 },
            { "LOCAL_Y", CLSYNTH_TP_LOCAL1, 4, { 1, 2, 4, 8 }, 0 },
        },
        .parse = conv_parse, .valid = conv_bwdw_valid, .setup = conv_setup, .forward = conv_direct,
    },
    {
        .key = "dwconv_fwd", .file = "dwconv.cl", .kernels = { "dwconv_fwd" }, .op = "clsynth_cond_dwconv",
        .dims = 3, .backward = false, .n_params = 3,
        .params = {
            { "VW", CLSYNTH_TP_DEFINE, 5, { 1, 2, 4, 8, 16 }, 0 },
            { "TILE_W", CLSYNTH_TP_DEFINE, 6, { 8, 16, 32, 64, 128, 256 }, 0 },
            { "TILE_H", CLSYNTH_TP_DEFINE, 6, { 1, 2, 4, 8, 16, 32 }, 0 },
        },
        .implied_local = dw_local,
        .parse = dw_parse, .valid = dw_valid, .local_mem = dw_fwd_lmem, .setup = dw_setup, .forward = dw_forward,
    },
    {
        .key = "dwconv_bwd", .file = "dwconv.cl", .kernels = { "dwconv_bwd" }, .op = "clsynth_cond_dwconv (backward)",
        .dims = 3, .backward = true, .n_params = 3,
        .params = {
            { "VW", CLSYNTH_TP_DEFINE, 5, { 1, 2, 4, 8, 16 }, 0 },
            { "TILE_W", CLSYNTH_TP_DEFINE, 6, { 8, 16, 32, 64, 128, 256 }, 0 },
            { "TILE_H", CLSYNTH_TP_DEFINE, 6, { 1, 2, 4, 8, 16, 32 }, 0 },
        },
        .implied_local = dw_local,
        .parse = dw_parse, .valid = dw_valid, .local_mem = dw_bwd_lmem, .setup = dw_setup, .forward = dw_forward,
    },
    {
        .key = "norm_partial_stats", .file = "norm.cl", .kernels = { "norm_partial_stats", "norm_finalize_stats" },
        .op = "clsynth_batch_norm / clsynth_instance_norm", .dims = 1, .backward = false, .n_params = 2,
        .params = {
            { "NORM_VPT", CLSYNTH_TP_DEFINE, 7, { 8, 1, 2, 4, 16, 32, 64 }, 0 },
            { "LOCAL", CLSYNTH_TP_LOCAL0, 7, { LOCAL_DEFAULT, 16, 32, 64, 128, 256, 512 }, 0 },
        },
        .parse = norm_parse, .valid = norm_valid, .local_mem = norm_stats_lmem, .setup = norm_setup,
        .forward = norm_forward,
    },
    {
        .key = "norm_partial_dsums", .file = "norm.cl", .kernels = { "norm_partial_dsums", "norm_finalize_dsums" },
        .op = "clsynth_batch_norm / clsynth_instance_norm (backward)", .dims = 1, .backward = true,
        .n_params = 2,
        .params = {
            { "NORM_VPT", CLSYNTH_TP_DEFINE, 7, { 8, 1, 2, 4, 16, 32, 64 }, 0 },
            { "LOCAL", CLSYNTH_TP_LOCAL0, 7, { LOCAL_DEFAULT, 16, 32, 64, 128, 256, 512 }, 0 },
        },
        .parse = norm_parse, .valid = norm_valid, .local_mem = norm_dsums_lmem, .setup = norm_setup,
        .forward = norm_forward,
    },
    {
        .key = "reduce_groups", .file = "reduce.cl", .kernels = { "reduce_groups" }, .op = "clsynth_reduce_to",
        .dims = 2, .backward = false, .n_params = 1,
        .params = { { "LOCAL", CLSYNTH_TP_LOCAL0, 8, { LOCAL_DEFAULT, 16, 32, 64, 128, 256, 512, 1024 }, 0 } },
        .parse = reduce_parse, .local_mem = reduce_lmem, .setup = reduce_setup, .forward = reduce_forward,
    },
};

const clsynth_tunable *clsynth_tunables(int *count)
{
    *count = (int)(sizeof registry / sizeof registry[0]);
    return registry;
}

const clsynth_tunable *clsynth_tunable_find(const char *key)
{
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strcmp(registry[i].key, key) == 0)
            return &registry[i];
    return NULL;
}
