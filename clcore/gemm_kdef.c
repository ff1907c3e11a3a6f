/* The "gemm" descriptor: the algorithm of every GEMM the ops run
 * (clcore/gemm.h), per product shape. Its harness runs clsynth_gemm itself
 * (C = A B + 0.5 C0 + bias per row, so beta and the epilogue are covered),
 * forward only.
 *
 * Defaults (measured, platforms.md "GEMM algorithms and the batched
 * convolution"): on PoCL's and Intel's CPU devices the host BLAS (OpenBLAS
 * 0.3.21 ran the tiny step's 274 products in 73 ms against CLBlast's 777 ms
 * with its defaults on the 2-core machine); elsewhere CLBlast, whose
 * kernels are the device's own. Strided-batched CLBlast is a candidate for
 * the tuner only (on PoCL it ran at about half of CLBlastSgemm's rate and
 * compiles for another 10 s). */
#include <stdio.h>
#include <string.h>

#include "clcore/gemm.h"
#include "clcore/kdefs.h"

static int mm_format(const void *shape, char *key, size_t len)
{
    const clsynth_matmul_shape *s = shape;
    return snprintf(key, len, "M%d.N%d.K%d.%c%c.%c%d", s->m, s->n, s->k, s->ta ? 'T' : 'N', s->tb ? 'T' : 'N',
                    s->sum ? 'S' : 'B', s->batch);
}

static bool mm_parse(const char *key, void *shape)
{
    clsynth_matmul_shape *s = shape;
    char ta = 0, tb = 0, bs = 0, tail = 0;
    memset(s, 0, sizeof *s);
    if (sscanf(key, "M%d.N%d.K%d.%c%c.%c%d%c", &s->m, &s->n, &s->k, &ta, &tb, &bs, &s->batch, &tail) != 7)
        return false;
    if ((ta != 'N' && ta != 'T') || (tb != 'N' && tb != 'T') || (bs != 'B' && bs != 'S'))
        return false;
    s->ta = ta == 'T';
    s->tb = tb == 'T';
    s->sum = bs == 'S';
    const int pos[] = { s->m, s->n, s->k, s->batch };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i] < 1 || pos[i] > (1 << 24))
            return false;
    return !(s->sum && s->batch < 2); /* a summed batch of one is written B1 */
}

/* Sizes that are multiples of nothing, every transposition, a batch of
 * separate products and a summed one; the first is the smallest. */
static const clsynth_matmul_shape test_shapes[] = {
    { 5, 7, 3, 0, 0, 1, 0 },    { 17, 33, 9, 1, 0, 1, 0 }, { 3, 65, 129, 0, 1, 3, 0 },
    { 9, 13, 70, 0, 1, 4, 1 },  { 33, 10, 5, 1, 1, 2, 0 },
};

/* The products of the representative convs (256 channels at 32x32 and 64 at
 * 128x128, 3x3; forward, dW, dX columns) and 1024^3. */
static const clsynth_matmul_shape bench_shapes[] = {
    { 1024, 1024, 1024, 0, 0, 1, 0 }, { 256, 1024, 2304, 0, 0, 1, 0 }, { 64, 16384, 576, 0, 0, 1, 0 },
    { 64, 576, 16384, 0, 1, 1, 0 },   { 576, 16384, 64, 1, 0, 1, 0 },
};

static bool mm_valid(const int *v, const void *shape)
{
    const clsynth_matmul_shape *s = shape;
    /* one strided call makes separate outputs only */
    return v[GEMM_ALGO] != CLSYNTH_GEMM_CLBLAST_STRIDED || (s->batch > 1 && !s->sum);
}

static bool mm_device_ok(const clsynth_device_info *dev, const int *v, char *why, size_t len)
{
    if (v[GEMM_ALGO] != CLSYNTH_GEMM_HOST_BLAS || clsynth_gemm_host_capable(dev))
        return true;
    snprintf(why, len, "the host-BLAS GEMM needs a host-CPU device (PoCL, Intel's CPU runtime, rusticl); this is "
                       "a device of class %s", clsynth_device_class(dev));
    return false;
}

/* ------------------------------------------------------------ harness */

static void stored(int trans, int rows, int cols, int *r, int *c)
{
    *r = trans ? cols : rows;
    *c = trans ? rows : cols;
}

static int mm_setup(clsynth_ctx *ctx, clsynth_kbench *b)
{
    const clsynth_matmul_shape *s = (const clsynth_matmul_shape *)&b->shape;
    int ar, ac, br, bc;
    stored(s->ta, s->m, s->k, &ar, &ac);
    stored(s->tb, s->k, s->n, &br, &bc);
    if (clsynth_kbench_input(ctx, b, "tune.a", s->batch, 1, ar, ac, 1, 1.0f) ||
        clsynth_kbench_input(ctx, b, "tune.b", s->batch, 1, br, bc, 2, 1.0f) ||
        clsynth_kbench_input(ctx, b, "tune.c0", s->sum ? 1 : s->batch, 1, s->m, s->n, 3, 1.0f) ||
        clsynth_kbench_input(ctx, b, "tune.bias", 1, 1, 1, s->m, 4, 1.0f))
        return -1;
    b->flops = 2.0 * s->m * (double)s->n * s->k * s->batch;
    b->bytes = 4.0 * s->batch * ((double)s->m * s->k + (double)s->k * s->n) + 8.0 * (s->sum ? 1 : s->batch) * s->m * s->n;
    return 0;
}

/* C = A B + 0.5 C0 + bias (per row) into a new tensor */
static clsynth_tensor *mm_run(clsynth_ctx *ctx, clsynth_kbench *b, clsynth_kforce *force)
{
    const clsynth_matmul_shape *s = (const clsynth_matmul_shape *)&b->shape;
    clsynth_tensor *A = b->in[0], *B = b->in[1], *C0 = b->in[2];
    clsynth_tensor *c = clsynth_tensor_new(ctx, "gemm.c", C0->n, C0->c, C0->h, C0->w);
    if (!c || clsynth_tensor_copy(ctx, c, C0))
        return NULL;
    const clsynth_gemm_op g = {
        .ta = s->ta, .tb = s->tb, .m = (size_t)s->m, .n = (size_t)s->n, .k = (size_t)s->k, .alpha = 1.0f, .beta = 0.5f,
        .a = { A->mem, A->off, (size_t)A->w, CLSYNTH_HW(A) }, .b = { B->mem, B->off, (size_t)B->w, CLSYNTH_HW(B) },
        .c = { c->mem, c->off, (size_t)s->n, s->sum ? 0 : (size_t)s->m * (size_t)s->n },
        .batch = (size_t)s->batch, .sum_batch = s->sum != 0, .bias = b->in[3]->mem, .bias_off = b->in[3]->off,
    };
    return clsynth_gemm(ctx, "gemm harness", &g, force) ? NULL : c;
}

const clsynth_kdef clsynth_kdef_gemm = {
    .key = "gemm", .op = "clsynth_gemm (every op's GEMM)", .tune_first = true, .n_params = 1,
    .revision = "CLBlast; host BLAS on mapped buffers; strided-batched CLBlast",
    .params = {
#ifdef CLSYNTH_HAVE_CBLAS
        { .name = "ALGO", .kind = CLSYNTH_K_ALGO, .n = 3,
          .values = { CLSYNTH_GEMM_CLBLAST, CLSYNTH_GEMM_HOST_BLAS, CLSYNTH_GEMM_CLBLAST_STRIDED },
          .def = CLSYNTH_GEMM_CLBLAST,
          .by_class = { { "pocl-cpu", CLSYNTH_GEMM_HOST_BLAS }, { "intel-cpu", CLSYNTH_GEMM_HOST_BLAS } } },
#else
        { .name = "ALGO", .kind = CLSYNTH_K_ALGO, .n = 2, .values = { CLSYNTH_GEMM_CLBLAST, CLSYNTH_GEMM_CLBLAST_STRIDED },
          .def = CLSYNTH_GEMM_CLBLAST },
#endif
    },
    .shape_size = sizeof(clsynth_matmul_shape), .format = mm_format, .parse = mm_parse,
    .valid = mm_valid, .device_ok = mm_device_ok,
    .test_shapes = test_shapes, .n_test_shapes = 5,
    .bench_shapes = bench_shapes, .n_bench_shapes = 5,
    .setup = mm_setup, .run = mm_run,
};
