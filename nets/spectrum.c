/* Power spectra of image sets through clFFT (see spectrum.h). Images are
 * converted to gray on the host, uploaded in batches, transformed by one baked
 * real-to-Hermitian plan per (h, w, batch), and read back; the azimuthal
 * average is a cheap host loop over the half-plane. Where clFFT cannot build
 * its kernels for a size, the same transform runs on kernels/dft.cl. */
#include "nets/spectrum.h"

#include <clFFT.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/launch.h"
#include "clcore/program.h"

/* clFFT's runtime is process-wide: set it up with the first engine, tear it
 * down with the last (see the header). */
static pthread_mutex_t clfft_lock = PTHREAD_MUTEX_INITIALIZER;
static int clfft_users;

struct clsynth_spectrum {
    clsynth_ctx *ctx;
    int setup;                 /* holds one clfft_users reference */
    int force_dft;             /* CLSYNTH_FFT=dft */
    clfftPlanHandle plan;
    int have_plan;             /* a baked clFFT plan for (ph, pw, pbatch) */
    int have_dft;              /* else the DFT kernels' twiddles and scratch for it */
    int ph, pw, pbatch;        /* size the buffers (and the plan) are for */
    cl_mem in, out, tmp;       /* (pbatch, h, w) real; (pbatch, h, w/2+1) complex; clFFT scratch */
    cl_mem tw_w, tw_h, rows;   /* DFT: twiddle tables (w and h entries), row transforms */
    float *host_in, *host_out;
    const char *backend;       /* of the last transform: "clFFT", "dft" or "none" */
};

static const char *clfft_status_name(clfftStatus s)
{
    switch (s) {
    case CLFFT_BUGCHECK: return "CLFFT_BUGCHECK";
    case CLFFT_NOTIMPLEMENTED: return "CLFFT_NOTIMPLEMENTED";
    case CLFFT_TRANSPOSED_NOTIMPLEMENTED: return "CLFFT_TRANSPOSED_NOTIMPLEMENTED";
    case CLFFT_FILE_NOT_FOUND: return "CLFFT_FILE_NOT_FOUND";
    case CLFFT_FILE_CREATE_FAILURE: return "CLFFT_FILE_CREATE_FAILURE";
    case CLFFT_VERSION_MISMATCH: return "CLFFT_VERSION_MISMATCH";
    case CLFFT_INVALID_PLAN: return "CLFFT_INVALID_PLAN";
    case CLFFT_DEVICE_NO_DOUBLE: return "CLFFT_DEVICE_NO_DOUBLE";
    case CLFFT_DEVICE_MISMATCH: return "CLFFT_DEVICE_MISMATCH";
    default: return NULL;
    }
}

/* Reports a failed clFFT call by name; clFFT statuses below 4096 are OpenCL codes. */
static int clfft_fail(clsynth_ctx *ctx, const char *call, clfftStatus st)
{
    const char *name = clfft_status_name(st);
    if (name)
        return clsynth_ctx_fail(ctx, "%s failed: %s (%d)", call, name, (int)st);
    return clsynth_cl_fail(ctx, call, "clFFT", (cl_int)st);
}

clsynth_spectrum *clsynth_spectrum_create(clsynth_ctx *ctx)
{
    if (!ctx || ctx->failed)
        return NULL;
    clsynth_spectrum *s = calloc(1, sizeof *s);
    if (!s) {
        clsynth_ctx_fail(ctx, "spectrum: out of memory");
        return NULL;
    }
    s->ctx = ctx;
    s->backend = "none";
    const char *mode = getenv("CLSYNTH_FFT");
    if (mode && *mode && strcmp(mode, "clfft") != 0 && strcmp(mode, "dft") != 0) {
        clsynth_ctx_fail(ctx, "CLSYNTH_FFT=%s: expected clfft (the default, falling back to dft where clFFT "
                              "cannot build) or dft", mode);
        free(s);
        return NULL;
    }
    s->force_dft = mode && strcmp(mode, "dft") == 0;
    pthread_mutex_lock(&clfft_lock);
    clfftStatus st = CLFFT_SUCCESS;
    if (clfft_users == 0) {
        /* Filled by hand: clFFT's clfftInitSetupData is a C99 inline
         * definition without an external one. */
        clfftSetupData sd;
        memset(&sd, 0, sizeof sd);
        sd.major = clfftVersionMajor;
        sd.minor = clfftVersionMinor;
        sd.patch = clfftVersionPatch;
        st = clfftSetup(&sd);
    }
    if (st == CLFFT_SUCCESS) {
        clfft_users++;
        s->setup = 1;
    }
    pthread_mutex_unlock(&clfft_lock);
    if (st != CLFFT_SUCCESS) {
        clfft_fail(ctx, "clfftSetup", st);
        free(s);
        return NULL;
    }
    return s;
}

static void release_plan(clsynth_spectrum *s)
{
    if (s->have_plan)
        clfftDestroyPlan(&s->plan); /* status ignored: nothing to do about it here */
    s->have_plan = s->have_dft = 0;
    cl_mem *mems[] = { &s->in, &s->out, &s->tmp, &s->tw_w, &s->tw_h, &s->rows };
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++) {
        if (*mems[i])
            clReleaseMemObject(*mems[i]);
        *mems[i] = NULL;
    }
    free(s->host_in);
    free(s->host_out);
    s->host_in = s->host_out = NULL;
    s->ph = s->pw = s->pbatch = 0;
}

void clsynth_spectrum_free(clsynth_spectrum *s)
{
    if (!s)
        return;
    release_plan(s);
    if (s->setup) {
        pthread_mutex_lock(&clfft_lock);
        if (--clfft_users == 0)
            clfftTeardown();
        pthread_mutex_unlock(&clfft_lock);
    }
    free(s);
}

/* Batch size for h x w images: about 4M floats of input per transform. */
static int batch_for(int h, int w)
{
    size_t per = (size_t)h * (size_t)w;
    size_t b = ((size_t)4 << 20) / (per ? per : 1);
    if (b < 1)
        b = 1;
    if (b > 32)
        b = 32;
    return (int)b;
}

/* clFFT's status when it could not compile or run its generated program: the
 * device's compiler rejected clFFT's source, so clsynth's DFT kernels take
 * over (any other failure is reported). */
static int clfft_cannot_build(clfftStatus st)
{
    switch ((int)st) {
    case CL_BUILD_PROGRAM_FAILURE:
    case CL_COMPILER_NOT_AVAILABLE:
    case CL_INVALID_BUILD_OPTIONS:
    case CL_INVALID_PROGRAM:
    case CL_INVALID_PROGRAM_EXECUTABLE:
    case CL_INVALID_KERNEL_NAME:
    case CL_INVALID_KERNEL_DEFINITION:
        return 1;
    default:
        return 0;
    }
}

#define CLFFT_TRY(call)                                                          \
    do {                                                                         \
        clfftStatus clsynth_st_ = (call);                                        \
        if (clsynth_st_ != CLFFT_SUCCESS) {                                      \
            *failed_call = #call;                                                \
            return clsynth_st_;                                                  \
        }                                                                        \
    } while (0)

/* Creates and bakes clFFT's plan for the buffers of make_plan; on failure
 * returns the status and names the call in *failed_call. */
static clfftStatus clfft_bake(clsynth_spectrum *s, int h, int w, int batch, const char **failed_call)
{
    clsynth_ctx *ctx = s->ctx;
    const int wc = w / 2 + 1;
    size_t lengths[2] = { (size_t)w, (size_t)h }; /* clFFT: fastest dimension first */
    size_t in_strides[2] = { 1, (size_t)w }, out_strides[2] = { 1, (size_t)wc };
    CLFFT_TRY(clfftCreateDefaultPlan(&s->plan, ctx->context, CLFFT_2D, lengths));
    s->have_plan = 1;
    CLFFT_TRY(clfftSetPlanPrecision(s->plan, CLFFT_SINGLE));
    CLFFT_TRY(clfftSetLayout(s->plan, CLFFT_REAL, CLFFT_HERMITIAN_INTERLEAVED));
    CLFFT_TRY(clfftSetResultLocation(s->plan, CLFFT_OUTOFPLACE));
    CLFFT_TRY(clfftSetPlanInStride(s->plan, CLFFT_2D, in_strides));
    CLFFT_TRY(clfftSetPlanOutStride(s->plan, CLFFT_2D, out_strides));
    CLFFT_TRY(clfftSetPlanDistance(s->plan, (size_t)h * w, (size_t)h * wc));
    CLFFT_TRY(clfftSetPlanBatchSize(s->plan, (size_t)batch));
    CLFFT_TRY(clfftBakePlan(s->plan, 1, &ctx->queue, NULL, NULL));
    size_t tmp_bytes = 0;
    CLFFT_TRY(clfftGetTmpBufSize(s->plan, &tmp_bytes));
    if (tmp_bytes) {
        cl_int e;
        s->tmp = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, tmp_bytes, NULL, &e);
        if (e != CL_SUCCESS) {
            *failed_call = "clCreateBuffer (clFFT scratch)";
            return (clfftStatus)e;
        }
    }
    return CLFFT_SUCCESS;
}

/* Twiddle table of length len: (cos, sin)(2 pi m / len), computed in double. */
static cl_mem twiddles(clsynth_ctx *ctx, int len)
{
    float *t = malloc(sizeof(float) * 2 * (size_t)len);
    if (!t) {
        clsynth_ctx_fail(ctx, "spectrum: out of host memory for %d twiddles", len);
        return NULL;
    }
    for (int m = 0; m < len; m++) {
        double a = 6.283185307179586476925 * (double)m / (double)len; /* 2 pi m / len */
        t[2 * m] = (float)cos(a);
        t[2 * m + 1] = (float)sin(a);
    }
    cl_int e;
    cl_mem b = clCreateBuffer(ctx->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof(float) * 2 * (size_t)len,
                              t, &e);
    free(t);
    if (e != CL_SUCCESS) {
        clsynth_cl_fail(ctx, "clCreateBuffer (spectrum twiddles)", "dft_rows", e);
        return NULL;
    }
    return b;
}

/* Switches the current size to the DFT kernels (drops a clFFT plan). */
static int use_dft(clsynth_spectrum *s)
{
    clsynth_ctx *ctx = s->ctx;
    if (s->have_plan)
        clfftDestroyPlan(&s->plan);
    s->have_plan = 0;
    if (s->tmp)
        clReleaseMemObject(s->tmp);
    s->tmp = NULL;
    cl_int e;
    size_t rows_bytes = (size_t)s->pbatch * s->ph * (s->pw / 2 + 1) * 2 * sizeof(float);
    s->rows = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, rows_bytes, NULL, &e);
    if (e != CL_SUCCESS)
        return clsynth_cl_fail(ctx, "clCreateBuffer (spectrum rows)", "dft_rows", e);
    if (!(s->tw_w = twiddles(ctx, s->pw)) || !(s->tw_h = twiddles(ctx, s->ph)))
        return -1;
    s->have_dft = 1;
    return 0;
}

/* clFFT could not build its program for this size: say so once, use the DFT. */
static int fall_back(clsynth_spectrum *s, const char *call, clfftStatus st)
{
    clsynth_warn(s->ctx, "spectrum: clFFT cannot build its %dx%d transform on this device (%s: %s); "
                         "using clsynth's DFT kernels (kernels/dft.cl) instead",
                 s->pw, s->ph, call, clsynth_cl_error_name((cl_int)st));
    return use_dft(s);
}

static int make_plan(clsynth_spectrum *s, int h, int w, int batch)
{
    clsynth_ctx *ctx = s->ctx;
    if ((s->have_plan || s->have_dft) && s->ph == h && s->pw == w && s->pbatch == batch)
        return 0;
    release_plan(s);
    const int wc = w / 2 + 1;
    size_t in_n = (size_t)batch * h * w, out_n = (size_t)batch * h * wc * 2;
    s->host_in = malloc(in_n * sizeof(float));
    s->host_out = malloc(out_n * sizeof(float));
    if (!s->host_in || !s->host_out)
        return clsynth_ctx_fail(ctx, "spectrum: out of host memory for a batch of %d images %dx%d", batch, h, w);
    cl_int e;
    s->in = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, in_n * sizeof(float), NULL, &e);
    if (e != CL_SUCCESS)
        return clsynth_cl_fail(ctx, "clCreateBuffer (spectrum input)", "clFFT", e);
    s->out = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, out_n * sizeof(float), NULL, &e);
    if (e != CL_SUCCESS)
        return clsynth_cl_fail(ctx, "clCreateBuffer (spectrum output)", "clFFT", e);
    s->ph = h;
    s->pw = w;
    s->pbatch = batch;
    if (s->force_dft)
        return use_dft(s);
    const char *call = "clFFT";
    clfftStatus st = clfft_bake(s, h, w, batch, &call);
    if (st == CLFFT_SUCCESS)
        return 0;
    if (clfft_cannot_build(st))
        return fall_back(s, call, st);
    return clfft_fail(ctx, call, st);
}

/* The DFT kernels over the first n images of s->in into s->out. */
static int dft_run(clsynth_spectrum *s, int n)
{
    clsynth_ctx *ctx = s->ctx;
    const int h = s->ph, w = s->pw, wc = w / 2 + 1;
    const size_t global[3] = { (size_t)wc, (size_t)h, (size_t)n };
    clsynth_args a = clsynth_args_begin(ctx, clsynth_kernel_get(ctx, "dft.cl", "dft_rows", NULL), "dft_rows");
    clsynth_arg_mem(&a, s->in);
    clsynth_arg_mem(&a, s->tw_w);
    clsynth_arg_mem(&a, s->rows);
    clsynth_arg_int(&a, n);
    clsynth_arg_int(&a, h);
    clsynth_arg_int(&a, w);
    clsynth_arg_int(&a, wc);
    if (clsynth_launch(&a, 3, global, NULL, 0, NULL))
        return -1;
    a = clsynth_args_begin(ctx, clsynth_kernel_get(ctx, "dft.cl", "dft_cols", NULL), "dft_cols");
    clsynth_arg_mem(&a, s->rows);
    clsynth_arg_mem(&a, s->tw_h);
    clsynth_arg_mem(&a, s->out);
    clsynth_arg_int(&a, n);
    clsynth_arg_int(&a, h);
    clsynth_arg_int(&a, wc);
    return clsynth_launch(&a, 3, global, NULL, 0, NULL);
}

/* Transforms the first n (<= pbatch) images in host_in into host_out. */
static int run_batch(clsynth_spectrum *s, int n)
{
    clsynth_ctx *ctx = s->ctx;
    size_t per = (size_t)s->ph * s->pw;
    size_t out_bytes = (size_t)n * s->ph * (s->pw / 2 + 1) * 2 * sizeof(float);
    /* The whole batch is uploaded, a short one padded with zeros: clFFT's real
     * transforms pack pairs of real sequences into one complex transform, so an
     * uninitialized (possibly Inf/NaN) neighbour would leak into image n-1. */
    if (n < s->pbatch)
        memset(s->host_in + (size_t)n * per, 0, (size_t)(s->pbatch - n) * per * sizeof(float));
    CLSYNTH_CL(ctx, clEnqueueWriteBuffer(ctx->queue, s->in, CL_TRUE, 0, (size_t)s->pbatch * per * sizeof(float),
                                         s->host_in, 0, NULL, NULL),
               "clFFT");
    if (s->have_plan) {
        clfftStatus st = clfftEnqueueTransform(s->plan, CLFFT_FORWARD, 1, &ctx->queue, 0, NULL, NULL, &s->in,
                                               &s->out, s->tmp);
        /* Some implementations compile clFFT's program only now. */
        if (st != CLFFT_SUCCESS && !clfft_cannot_build(st))
            return clfft_fail(ctx, "clfftEnqueueTransform", st);
        if (st != CLFFT_SUCCESS && fall_back(s, "clfftEnqueueTransform", st))
            return -1;
    }
    if (!s->have_plan && dft_run(s, n))
        return -1;
    s->backend = s->have_plan ? "clFFT" : "dft";
    CLSYNTH_CL(ctx, clEnqueueReadBuffer(ctx->queue, s->out, CL_TRUE, 0, out_bytes, s->host_out, 0, NULL, NULL),
               "clFFT");
    return 0;
}

static int check_size(clsynth_ctx *ctx, int h, int w)
{
    if (h < 2 || w < 2 || h > 16384 || w > 16384)
        return clsynth_ctx_fail(ctx, "spectrum: image size %dx%d (need 2..16384)", w, h);
    for (int k = 0; k < 2; k++) {
        int v = k ? w : h;
        static const int radix[] = { 2, 3, 5, 7, 11, 13 };
        for (int r = 0; r < 6; r++)
            while (v % radix[r] == 0)
                v /= radix[r];
        if (v != 1)
            return clsynth_ctx_fail(ctx, "spectrum: %s %d has a prime factor clFFT does not support "
                                    "(radices 2, 3, 5, 7, 11, 13)", k ? "width" : "height", k ? w : h);
    }
    return 0;
}

int clsynth_spectrum_rfft2(clsynth_spectrum *s, const float *in, int n, int h, int w, float *out)
{
    clsynth_ctx *ctx = s->ctx;
    if (ctx->failed)
        return -1;
    if (check_size(ctx, h, w))
        return -1;
    int batch = batch_for(h, w);
    if (make_plan(s, h, w, batch))
        return -1;
    size_t per_in = (size_t)h * w, per_out = (size_t)h * (w / 2 + 1) * 2;
    for (int i0 = 0; i0 < n; i0 += batch) {
        int m = n - i0 < batch ? n - i0 : batch;
        memcpy(s->host_in, in + (size_t)i0 * per_in, (size_t)m * per_in * sizeof(float));
        if (run_batch(s, m))
            return -1;
        memcpy(out + (size_t)i0 * per_out, s->host_out, (size_t)m * per_out * sizeof(float));
    }
    return 0;
}

const char *clsynth_spectrum_backend(const clsynth_spectrum *s) { return s->backend; }

int clsynth_spectrum_bin(int h, int w, int ky, int kx)
{
    int fy = ky <= h / 2 ? ky : ky - h;
    int fx = kx <= w / 2 ? kx : kx - w;
    int S = h < w ? h : w;
    double f = sqrt((double)fx * fx / ((double)w * w) + (double)fy * fy / ((double)h * h));
    int b = (int)floor(f * S + 0.5);
    return b <= S / 2 ? b : -1;
}

int clsynth_profile_init(clsynth_radial_profile *p, int h, int w, clsynth_err *err)
{
    memset(p, 0, sizeof *p);
    if (h < 2 || w < 2)
        return clsynth_fail(err, "radial profile: image size %dx%d is too small", w, h);
    p->h = h;
    p->w = w;
    p->nbins = (h < w ? h : w) / 2 + 1;
    p->sum = calloc((size_t)p->nbins, sizeof *p->sum);
    if (!p->sum)
        return clsynth_fail(err, "radial profile: out of memory");
    return 0;
}

void clsynth_profile_free(clsynth_radial_profile *p)
{
    if (!p)
        return;
    free(p->sum);
    memset(p, 0, sizeof *p);
}

int clsynth_spectrum_accumulate(clsynth_spectrum *s, clsynth_radial_profile *p, const float *images,
                                int n, int c)
{
    clsynth_ctx *ctx = s->ctx;
    if (ctx->failed)
        return -1;
    if (c != 1 && c != 3)
        return clsynth_ctx_fail(ctx, "spectrum: images with %d channels (need 1 or 3)", c);
    const int h = p->h, w = p->w, wc = w / 2 + 1, nb = p->nbins;
    if (check_size(ctx, h, w))
        return -1;
    int batch = batch_for(h, w);
    if (make_plan(s, h, w, batch))
        return -1;
    const size_t hw = (size_t)h * w;
    double *bsum = malloc((size_t)nb * sizeof *bsum), *bcnt = malloc((size_t)nb * sizeof *bcnt);
    int *bin = malloc((size_t)h * wc * sizeof *bin);
    if (!bsum || !bcnt || !bin) {
        free(bsum);
        free(bcnt);
        free(bin);
        return clsynth_ctx_fail(ctx, "spectrum: out of host memory");
    }
    memset(bcnt, 0, (size_t)nb * sizeof *bcnt);
    for (int ky = 0; ky < h; ky++)
        for (int kx = 0; kx < wc; kx++) {
            int b = clsynth_spectrum_bin(h, w, ky, kx);
            bin[(size_t)ky * wc + kx] = b;
            /* Columns with a mirror in the missing half count twice. */
            int twice = kx > 0 && !(w % 2 == 0 && kx == w / 2);
            if (b >= 0)
                bcnt[b] += twice ? 2.0 : 1.0;
        }
    int rc = 0;
    for (int i0 = 0; i0 < n && !rc; i0 += batch) {
        int m = n - i0 < batch ? n - i0 : batch;
        for (int i = 0; i < m; i++) {
            const float *img = images + (size_t)(i0 + i) * c * hw;
            float *g = s->host_in + (size_t)i * hw;
            double mean = 0.0;
            for (size_t k = 0; k < hw; k++) {
                float v = c == 1 ? img[k] : 0.299f * img[k] + 0.587f * img[hw + k] + 0.114f * img[2 * hw + k];
                g[k] = v;
                mean += v;
            }
            mean /= (double)hw;
            for (size_t k = 0; k < hw; k++)
                g[k] = (float)(g[k] - mean);
        }
        if (run_batch(s, m)) {
            rc = -1;
            break;
        }
        for (int i = 0; i < m; i++) {
            const float *F = s->host_out + (size_t)i * h * wc * 2;
            memset(bsum, 0, (size_t)nb * sizeof *bsum);
            for (int ky = 0; ky < h; ky++)
                for (int kx = 0; kx < wc; kx++) {
                    size_t k = (size_t)ky * wc + kx;
                    int b = bin[k];
                    if (b < 0)
                        continue;
                    double re = F[2 * k], im = F[2 * k + 1];
                    int twice = kx > 0 && !(w % 2 == 0 && kx == w / 2);
                    bsum[b] += (twice ? 2.0 : 1.0) * (re * re + im * im) / (double)hw;
                }
            for (int b = 0; b < nb; b++)
                p->sum[b] += bcnt[b] > 0 ? bsum[b] / bcnt[b] : 0.0;
            p->images++;
        }
    }
    free(bsum);
    free(bcnt);
    free(bin);
    return rc;
}

int clsynth_profile_log_power(const clsynth_radial_profile *p, double *out, clsynth_err *err)
{
    if (p->images < 1)
        return clsynth_fail(err, "radial profile: no images accumulated");
    for (int b = 0; b < p->nbins; b++) {
        double v = p->sum[b] / (double)p->images;
        out[b] = v > 1e-30 ? log10(v) : -30.0;
    }
    return 0;
}

int clsynth_spectral_distance(const clsynth_radial_profile *a, const clsynth_radial_profile *b,
                              int lo, int hi, double *out, clsynth_err *err)
{
    if (a->h != b->h || a->w != b->w)
        return clsynth_fail(err, "spectral distance: image sizes differ (%dx%d vs %dx%d)", a->w, a->h,
                            b->w, b->h);
    if (lo == 0 && hi == 0) {
        lo = 1;
        hi = a->nbins;
    }
    if (lo < 1)
        lo = 1;
    if (hi > a->nbins)
        hi = a->nbins;
    if (lo >= hi)
        return clsynth_fail(err, "spectral distance: empty bin range [%d, %d)", lo, hi);
    double *la = malloc((size_t)a->nbins * sizeof *la), *lb = malloc((size_t)a->nbins * sizeof *lb);
    int rc = -1;
    if (!la || !lb)
        clsynth_fail(err, "spectral distance: out of memory");
    else if (!clsynth_profile_log_power(a, la, err) && !clsynth_profile_log_power(b, lb, err)) {
        double sum = 0.0;
        for (int k = lo; k < hi; k++)
            sum += fabs(la[k] - lb[k]);
        *out = sum / (hi - lo);
        rc = 0;
    }
    free(la);
    free(lb);
    return rc;
}
