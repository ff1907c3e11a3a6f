/* CLBlast GEMM tuning (see clcore/clblast_tune.h). */
#include "clcore/clblast_tune.h"

#include <clblast_c.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clcore/tensor.h"
#include "clcore/tunedb.h"
#include "clcore/tuner.h"

#define MAX_P 16

/* ------------------------------------------------------------ parameter spaces */

typedef struct pspace {
    const char *kernel; /* CLBlast kernel name */
    int n;
    const char *names[MAX_P];
    int nv[MAX_P];
    int vals[MAX_P][6];
} pspace;

static const pspace XGEMM = {
    "Xgemm", 16,
    { "GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB", "NDIMC", "NWG", "SA", "SB", "STRM", "STRN",
      "VWM", "VWN" },
    { 1, 1, 2, 2, 3, 3, 4, 3, 3, 4, 2, 2, 2, 2, 4, 4 },
    { { 0 }, { 1 }, { 16, 32 }, { 2, 8 }, { 8, 16, 32 }, { 8, 16, 32 }, { 16, 32, 64, 128 }, { 8, 16, 32 },
      { 8, 16, 32 }, { 16, 32, 64, 128 }, { 0, 1 }, { 0, 1 }, { 0, 1 }, { 0, 1 }, { 1, 2, 4, 8 }, { 1, 2, 4, 8 } },
};

static const pspace XGEMM_DIRECT = {
    "XgemmDirect", 10,
    { "KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD", "PADA", "PADB", "VWMD", "VWND", "WGD" },
    { 3, 3, 3, 3, 3, 2, 2, 4, 4, 4 },
    { { 2, 8, 16 }, { 8, 16, 32 }, { 8, 16, 32 }, { 8, 16, 32 }, { 8, 16, 32 }, { 0, 1 }, { 0, 1 }, { 1, 2, 4, 8 },
      { 1, 2, 4, 8 }, { 8, 16, 32, 64 } },
};

enum { X_GEMMK, X_KREG, X_KWG, X_KWI, X_MDIMA, X_MDIMC, X_MWG, X_NDIMB, X_NDIMC, X_NWG, X_SA, X_SB, X_STRM, X_STRN,
       X_VWM, X_VWN };
enum { D_KWID, D_MDIMAD, D_MDIMCD, D_NDIMBD, D_NDIMCD, D_PADA, D_PADB, D_VWMD, D_VWND, D_WGD };

/* The legality rules of CLBlast's own tuners (GEMMK = 0), plus the device's
 * work-group and local-memory limits. */
static bool xgemm_legal(const int *v, const clsynth_ctx *ctx)
{
    if (v[X_KWG] % v[X_KWI] || v[X_MWG] % (v[X_MDIMC] * v[X_VWM]) || v[X_NWG] % (v[X_NDIMC] * v[X_VWN]) ||
        v[X_MWG] % (v[X_MDIMA] * v[X_VWM]) || v[X_NWG] % (v[X_NDIMB] * v[X_VWN]))
        return false;
    int threads = v[X_MDIMC] * v[X_NDIMC];
    if (threads % v[X_MDIMA] || threads % v[X_NDIMB] || v[X_KWG] % (threads / v[X_MDIMA]) ||
        v[X_KWG] % (threads / v[X_NDIMB]))
        return false;
    if ((v[X_STRM] && !v[X_SA]) || (v[X_STRN] && !v[X_SB]))
        return false; /* strides only matter with local memory: one canonical form */
    size_t lmem = ((size_t)v[X_SA] * (size_t)v[X_KWG] * (size_t)v[X_MWG] +
                   (size_t)v[X_SB] * (size_t)v[X_KWG] * (size_t)v[X_NWG]) * sizeof(float);
    return (size_t)threads <= ctx->max_wg && (size_t)v[X_MDIMC] <= ctx->max_item[0] &&
           (size_t)v[X_NDIMC] <= ctx->max_item[1] && lmem <= ctx->local_mem;
}

static bool direct_legal(const int *v, const clsynth_ctx *ctx)
{
    int w = v[D_WGD];
    if (w % v[D_KWID] || w % (v[D_MDIMCD] * v[D_VWMD]) || w % (v[D_NDIMCD] * v[D_VWND]) ||
        w % (v[D_MDIMAD] * v[D_VWMD]) || w % (v[D_NDIMBD] * v[D_VWND]))
        return false;
    int threads = v[D_MDIMCD] * v[D_NDIMCD];
    if (threads % v[D_MDIMAD] || threads % v[D_NDIMBD] || w % (threads / v[D_MDIMAD]) ||
        w % (threads / v[D_NDIMBD]))
        return false;
    size_t lmem = ((size_t)w * (size_t)(w + v[D_PADA]) + (size_t)w * (size_t)(w + v[D_PADB])) * sizeof(float);
    return (size_t)threads <= ctx->max_wg && (size_t)v[D_MDIMCD] <= ctx->max_item[0] &&
           (size_t)v[D_NDIMCD] <= ctx->max_item[1] && lmem <= ctx->local_mem;
}

static void params_string(const pspace *ps, const int *v, char *out, size_t len)
{
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < ps->n && used < len; i++) {
        int w = snprintf(out + used, len - used, "%s%s=%d", i ? "," : "", ps->names[i], v[i]);
        if (w > 0)
            used += (size_t)w;
    }
}

/* Parses "A=1,B=2" (or "-DA=1 -DB=2") into names/values; returns the count or -1. */
static int parse_params(const char *s, char names[MAX_P][32], size_t *values)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        if (p[0] == '-' && p[1] == 'D')
            p += 2;
        const char *eq = strchr(p, '=');
        if (!eq || n >= MAX_P || eq - p <= 0 || eq - p >= 32)
            return -1;
        memcpy(names[n], p, (size_t)(eq - p));
        names[n][eq - p] = 0;
        char *end = NULL;
        long v = strtol(eq + 1, &end, 10);
        if (end == eq + 1 || v < 0)
            return -1;
        values[n++] = (size_t)v;
        p = end;
    }
    return n;
}

static int override(cl_device_id dev, const char *kernel, const char *params, char *why, size_t why_len)
{
    char names[MAX_P][32];
    size_t values[MAX_P];
    int n = parse_params(params, names, values);
    if (n <= 0) {
        snprintf(why, why_len, "bad %s parameters '%s'", kernel, params);
        return -1;
    }
    const char *np[MAX_P];
    for (int i = 0; i < n; i++)
        np[i] = names[i];
    CLBlastStatusCode st = CLBlastOverrideParameters(dev, kernel, CLBlastPrecisionSingle, (size_t)n, np, values);
    if (st != CLBlastSuccess) {
        snprintf(why, why_len, "CLBlastOverrideParameters(%s) failed: %d", kernel, (int)st);
        return -1;
    }
    return 0;
}

static void to_options(const char *params, char *out, size_t len)
{
    size_t used = 0;
    out[0] = 0;
    char names[MAX_P][32];
    size_t values[MAX_P];
    int n = parse_params(params, names, values);
    for (int i = 0; i < n && used < len; i++) {
        int w = snprintf(out + used, len - used, "%s-D%s=%zu", i ? " " : "", names[i], values[i]);
        if (w > 0)
            used += (size_t)w;
    }
}

static void from_options(const char *options, char *out, size_t len)
{
    size_t used = 0;
    out[0] = 0;
    char names[MAX_P][32];
    size_t values[MAX_P];
    int n = parse_params(options, names, values);
    for (int i = 0; i < n && used < len; i++) {
        int w = snprintf(out + used, len - used, "%s%s=%zu", i ? "," : "", names[i], values[i]);
        if (w > 0)
            used += (size_t)w;
    }
}

static const char *const DB_KEYS[3] = { "clblast.Xgemm", "clblast.XgemmDirect", "clblast.GemmRoutine" };

bool clsynth_clblast_stored(clsynth_ctx *ctx, clsynth_clblast_params *out)
{
    memset(out, 0, sizeof *out);
    bool any = false;
    clsynth_tune_record r;
    if (clsynth_tunedb_get(ctx, DB_KEYS[0], "sgemm", &r)) {
        from_options(r.e.options, out->xgemm, sizeof out->xgemm);
        any = true;
    }
    if (clsynth_tunedb_get(ctx, DB_KEYS[1], "sgemm", &r)) {
        from_options(r.e.options, out->xgemm_direct, sizeof out->xgemm_direct);
        any = true;
    }
    if (clsynth_tunedb_get(ctx, DB_KEYS[2], "sgemm", &r)) {
        from_options(r.e.options, out->routine, sizeof out->routine);
        any = true;
    }
    return any;
}

int clsynth_tunedb_apply_clblast(clsynth_ctx *ctx)
{
    clsynth_clblast_params p;
    if (!clsynth_clblast_stored(ctx, &p))
        return 0;
    const char *sets[3] = { p.xgemm, p.xgemm_direct, p.routine };
    const char *kernels[3] = { "Xgemm", "XgemmDirect", "GemmRoutine" };
    int rc = 0;
    for (int i = 0; i < 3; i++) {
        char why[160];
        if (sets[i][0] && override(ctx->dev.id, kernels[i], sets[i], why, sizeof why)) {
            clsynth_warn(ctx, "tuned CLBlast parameters not applied: %s", why);
            rc = -1;
        }
    }
    return rc;
}

/* ------------------------------------------------------------ shapes */

size_t clsynth_conv_gemm_shapes(const char *key, double uses, clsynth_gemm_shape *shapes, size_t n, size_t cap)
{
    int N, C, H, W, O, KH, KW, S, P;
    char tail;
    if (sscanf(key, "N%d.C%d.H%d.W%d.O%d.K%dx%d.S%d.P%d%c", &N, &C, &H, &W, &O, &KH, &KW, &S, &P, &tail) != 9 ||
        S < 1)
        return n;
    int OH = (H + 2 * P - KH) / S + 1, OW = (W + 2 * P - KW) / S + 1;
    if (OH < 1 || OW < 1)
        return n;
    int rows = C * KH * KW, pix = OH * OW;
    /* the op's column buffer holds at most 64 MiB: larger images run in pixel chunks */
    long maxp = (64L << 20) / (4L * rows);
    if (maxp < 64)
        maxp = 64;
    if (pix > maxp)
        pix = (int)maxp;
    const clsynth_gemm_shape g[3] = {
        { O, pix, rows, false, false, 0 },  /* forward: y = W col */
        { O, rows, pix, false, true, 0 },   /* dW += dy col^T */
        { rows, pix, O, true, false, 0 },   /* dcol = W^T dy */
    };
    double per = uses * N * ((double)OH * OW / pix);
    for (int i = 0; i < 3; i++) {
        size_t j = 0;
        while (j < n && !(shapes[j].m == g[i].m && shapes[j].n == g[i].n && shapes[j].k == g[i].k &&
                          shapes[j].ta == g[i].ta && shapes[j].tb == g[i].tb))
            j++;
        if (j < n) {
            shapes[j].weight += per;
        } else if (n < cap) {
            shapes[n] = g[i];
            shapes[n].weight = per;
            n++;
        }
    }
    return n;
}

/* ------------------------------------------------------------ worker */

static double host_dot(const float *A, const float *B, const clsynth_gemm_shape *s, int i, int j)
{
    double acc = 0;
    for (int p = 0; p < s->k; p++) {
        float a = s->ta ? A[(size_t)p * s->m + i] : A[(size_t)i * s->k + p];
        float b = s->tb ? B[(size_t)j * s->k + p] : B[(size_t)p * s->n + j];
        acc += (double)a * b;
    }
    return acc;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int clsynth_clblast_worker_main(int argc, char **argv)
{
    const char *device = NULL, *xg = "", *xd = "", *rt = "", *shapes_s = "";
    int repeats = 3;
    for (int i = 0; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--device") == 0) device = argv[i + 1];
        else if (strcmp(argv[i], "--xgemm") == 0) xg = argv[i + 1];
        else if (strcmp(argv[i], "--direct") == 0) xd = argv[i + 1];
        else if (strcmp(argv[i], "--routine") == 0) rt = argv[i + 1];
        else if (strcmp(argv[i], "--shapes") == 0) shapes_s = argv[i + 1];
        else if (strcmp(argv[i], "--repeats") == 0) repeats = atoi(argv[i + 1]);
    }
    if (repeats < 1 || repeats > 50)
        repeats = 3;
    clsynth_gemm_shape sh[64];
    int ns = 0;
    for (const char *p = shapes_s; *p && ns < 64;) {
        int m, n, k, ta, tb, used = 0;
        if (sscanf(p, "%d,%d,%d,%d,%d%n", &m, &n, &k, &ta, &tb, &used) != 5 || m < 1 || n < 1 || k < 1) {
            printf("error bad shapes '%s'\n", shapes_s);
            return 2;
        }
        sh[ns++] = (clsynth_gemm_shape){ m, n, k, ta != 0, tb != 0, 1 };
        p += used;
        if (*p == ';')
            p++;
    }
    clsynth_err err;
    clsynth_ctx *ctx = clsynth_ctx_create(device, &err);
    if (!ctx) {
        printf("error %s\n", err.msg);
        return 1;
    }
    ctx->quiet = true;
    char why[200];
    if ((xg[0] && override(ctx->dev.id, "Xgemm", xg, why, sizeof why)) ||
        (xd[0] && override(ctx->dev.id, "XgemmDirect", xd, why, sizeof why)) ||
        (rt[0] && override(ctx->dev.id, "GemmRoutine", rt, why, sizeof why))) {
        printf("error %s\n", why);
        clsynth_ctx_free(ctx);
        return 1;
    }
    size_t maxa = 1, maxb = 1, maxc = 1;
    for (int i = 0; i < ns; i++) {
        size_t a = (size_t)sh[i].m * sh[i].k, b = (size_t)sh[i].k * sh[i].n, c = (size_t)sh[i].m * sh[i].n;
        maxa = a > maxa ? a : maxa;
        maxb = b > maxb ? b : maxb;
        maxc = c > maxc ? c : maxc;
    }
    float *ha = malloc(maxa * sizeof *ha), *hb = malloc(maxb * sizeof *hb), *hc = malloc(maxc * sizeof *hc);
    clsynth_tensor *A = clsynth_tensor_new_persistent(ctx, "gemm.A", 1, 1, 1, (int)maxa);
    clsynth_tensor *B = clsynth_tensor_new_persistent(ctx, "gemm.B", 1, 1, 1, (int)maxb);
    clsynth_tensor *C = clsynth_tensor_new_persistent(ctx, "gemm.C", 1, 1, 1, (int)maxc);
    int rc = 1;
    if (!ha || !hb || !hc || !A || !B || !C) {
        printf("error allocation: %s\n", ctx->err.msg);
        goto done;
    }
    uint64_t s = 42;
    for (size_t i = 0; i < maxa; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        ha[i] = (float)((double)(s >> 40) / 16777216.0 - 0.5);
    }
    for (size_t i = 0; i < maxb; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        hb[i] = (float)((double)(s >> 40) / 16777216.0 - 0.5);
    }
    if (clsynth_tensor_upload(ctx, A, ha) || clsynth_tensor_upload(ctx, B, hb)) {
        printf("error upload: %s\n", ctx->err.msg);
        goto done;
    }
    for (int i = 0; i < ns; i++) {
        const clsynth_gemm_shape *g = &sh[i];
        size_t lda = g->ta ? (size_t)g->m : (size_t)g->k, ldb = g->tb ? (size_t)g->k : (size_t)g->n;
        double ts[50];
        for (int r = 0; r <= repeats; r++) {
            cl_event e0 = NULL, e1 = NULL;
            clFinish(ctx->queue);
            double w0 = clsynth_now_s();
            clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, &e0);
            CLBlastStatusCode st = CLBlastSgemm(CLBlastLayoutRowMajor, g->ta ? CLBlastTransposeYes : CLBlastTransposeNo,
                                                g->tb ? CLBlastTransposeYes : CLBlastTransposeNo, (size_t)g->m,
                                                (size_t)g->n, (size_t)g->k, 1.0f, A->mem, 0, lda, B->mem, 0, ldb,
                                                0.0f, C->mem, 0, (size_t)g->n, &ctx->queue, NULL);
            clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, &e1);
            clFinish(ctx->queue);
            double wall = (clsynth_now_s() - w0) * 1e3;
            cl_ulong t0 = 0, t1 = 0;
            if (e0 && e1 && clGetEventProfilingInfo(e0, CL_PROFILING_COMMAND_END, sizeof t0, &t0, NULL) == CL_SUCCESS &&
                clGetEventProfilingInfo(e1, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) == CL_SUCCESS && t1 > t0)
                wall = (double)(t1 - t0) * 1e-6;
            if (e0)
                clReleaseEvent(e0);
            if (e1)
                clReleaseEvent(e1);
            if (st != CLBlastSuccess) {
                printf("error CLBlastSgemm %d\n", (int)st);
                goto done;
            }
            if (r > 0)
                ts[r - 1] = wall;
        }
        /* check 48 sampled elements against a double-precision host product */
        if (clsynth_tensor_download(ctx, C, hc)) {
            printf("error download: %s\n", ctx->err.msg);
            goto done;
        }
        double worst = 0;
        for (int q = 0; q < 48; q++) {
            int ii = (int)(((unsigned)q * 2654435761u) % (unsigned)g->m);
            int jj = (int)(((unsigned)q * 40503u + 7u) % (unsigned)g->n);
            double ref = host_dot(ha, hb, g, ii, jj);
            double e = fabs((double)hc[(size_t)ii * g->n + jj] - ref) / (1e-3 * sqrt((double)g->k) + 1e-4 * fabs(ref));
            if (!(e <= worst))
                worst = isnan(e) ? INFINITY : (e > worst ? e : worst);
        }
        qsort(ts, (size_t)repeats, sizeof ts[0], cmp_d);
        printf("shape %d %.6f %.4g\n", i, ts[repeats / 2], worst);
        fflush(stdout);
    }
    printf("ok\n");
    rc = 0;
done:
    clsynth_tensor_free(ctx, A);
    clsynth_tensor_free(ctx, B);
    clsynth_tensor_free(ctx, C);
    free(ha);
    free(hb);
    free(hc);
    clsynth_ctx_free(ctx);
    return rc;
}

/* ------------------------------------------------------------ parent side */

static int run_worker(clsynth_ctx *ctx, const clsynth_clblast_worker_cfg *wc, const clsynth_gemm_shape *shapes,
                      size_t n, const clsynth_clblast_params *p, int repeats, double *ms, char *why, size_t why_len)
{
    for (size_t i = 0; i < n; i++)
        ms[i] = -1;
    char dev[16], rep[16];
    snprintf(dev, sizeof dev, "%d", ctx->dev.index);
    snprintf(rep, sizeof rep, "%d", repeats);
    char *shp = malloc(n * 48 + 1);
    if (!shp)
        return clsynth_ctx_fail(ctx, "out of host memory");
    size_t used = 0;
    shp[0] = 0;
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(shp + used, 48, "%s%d,%d,%d,%d,%d", i ? ";" : "", shapes[i].m, shapes[i].n,
                                 shapes[i].k, shapes[i].ta, shapes[i].tb);
    const char *exe = wc && wc->exe ? wc->exe : "/proc/self/exe";
    const char *argv[40];
    int a = 0;
    argv[a++] = exe;
    for (int i = 0; wc && i < wc->argc && a < 24; i++)
        argv[a++] = wc->argv[i];
    argv[a++] = "--device"; argv[a++] = dev;
    argv[a++] = "--xgemm"; argv[a++] = p ? p->xgemm : "";
    argv[a++] = "--direct"; argv[a++] = p ? p->xgemm_direct : "";
    argv[a++] = "--routine"; argv[a++] = p ? p->routine : "";
    argv[a++] = "--shapes"; argv[a++] = shp;
    argv[a++] = "--repeats"; argv[a++] = rep;
    argv[a] = NULL;
    int fds[2];
    if (pipe(fds)) {
        free(shp);
        return clsynth_ctx_fail(ctx, "pipe failed: %s", strerror(errno));
    }
    size_t limit = wc && wc->mem_limit ? wc->mem_limit : ((size_t)6 << 30);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        free(shp);
        return clsynth_ctx_fail(ctx, "fork failed: %s", strerror(errno));
    }
    if (pid == 0) {
#if !defined(__SANITIZE_ADDRESS__)
        /* (AddressSanitizer reserves terabytes of address space: no limit then) */
        struct rlimit rl = { limit, limit };
        setrlimit(RLIMIT_AS, &rl);
#endif
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        setenv("CLSYNTH_QUIET", "1", 1);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    free(shp);
    double timeout = wc && wc->timeout_s > 0 ? wc->timeout_s : 300;
    double t0 = clsynth_now_s();
    char buf[8192];
    size_t len = 0;
    bool timed_out = false;
    for (;;) {
        double left = timeout - (clsynth_now_s() - t0);
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd pf = { fds[0], POLLIN, 0 };
        int pr = poll(&pf, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t r = read(fds[0], buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len >= sizeof buf - 1)
            break;
    }
    close(fds[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    buf[len] = 0;
    bool ok = false;
    why[0] = 0;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int i;
        double t, e;
        if (sscanf(line, "shape %d %lf %lf", &i, &t, &e) == 3 && i >= 0 && (size_t)i < n)
            ms[i] = e <= 1.0 ? t : -2; /* -2: wrong result */
        else if (strcmp(line, "ok") == 0)
            ok = true;
        else if (strncmp(line, "error ", 6) == 0)
            snprintf(why, why_len, "%s", line + 6);
    }
    if (timed_out)
        snprintf(why, why_len, "timed out after %.0f s", timeout);
    else if (!ok && !why[0]) {
        if (WIFSIGNALED(status))
            snprintf(why, why_len, "worker killed by signal %d (memory limit %zu MiB?)", WTERMSIG(status),
                     limit >> 20);
        else
            snprintf(why, why_len, "worker exited with status %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    for (size_t i = 0; ok && i < n; i++)
        if (ms[i] == -2) {
            snprintf(why, why_len, "wrong result at shape %zu (m %d n %d k %d)", i, shapes[i].m, shapes[i].n,
                     shapes[i].k);
            ok = false;
        }
    return ok ? 0 : 1;
}

int clsynth_clblast_measure(clsynth_ctx *ctx, const clsynth_gemm_shape *shapes, size_t n,
                            const clsynth_clblast_params *params, int repeats,
                            const clsynth_clblast_worker_cfg *worker, double *ms)
{
    char why[256];
    int rc = run_worker(ctx, worker, shapes, n, params, repeats, ms, why, sizeof why);
    if (rc < 0)
        return -1;
    if (rc)
        return clsynth_ctx_fail(ctx, "CLBlast GEMM measurement failed: %s", why);
    return 0;
}

static double weighted(const clsynth_gemm_shape *s, const double *ms, size_t n)
{
    double t = 0;
    for (size_t i = 0; i < n; i++) {
        if (ms[i] < 0)
            return INFINITY;
        t += ms[i] * (s[i].weight > 0 ? s[i].weight : 1);
    }
    return t;
}

static unsigned long rnd(unsigned long long *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned long)(*s >> 33);
}

/* A random legal point of ps near `base` (NULL: anywhere); false after many tries. */
static bool sample(const pspace *ps, const clsynth_ctx *ctx, bool (*legal)(const int *, const clsynth_ctx *),
                   const int *base, unsigned long long *rs, int *v)
{
    for (int tries = 0; tries < 20000; tries++) {
        for (int i = 0; i < ps->n; i++) {
            if (base && rnd(rs) % 3 != 0) {
                v[i] = base[i]; /* keep most parameters, move some */
                continue;
            }
            v[i] = ps->vals[i][rnd(rs) % (unsigned)ps->nv[i]];
        }
        if (legal(v, ctx) && (!base || memcmp(v, base, sizeof(int) * (size_t)ps->n) != 0))
            return true;
    }
    return false;
}

/* Searches one space; the other two parameter sets stay as in fixed. */
static void search_space(clsynth_ctx *ctx, const clsynth_clblast_tune_opts *o, const clsynth_gemm_shape *sh,
                         size_t n, const pspace *ps, bool (*legal)(const int *, const clsynth_ctx *),
                         clsynth_clblast_params *fixed, char *slot, size_t slot_len, double deadline,
                         double eval_cost, unsigned long long *rs, double *best_ms_out, double *best_per_shape,
                         clsynth_clblast_tune_result *res)
{
    int best[MAX_P], v[MAX_P];
    bool have = false;
    double best_t = INFINITY;
    double *ms = malloc(n * sizeof *ms);
    if (!ms)
        return;
    for (int round = 0; clsynth_now_s() + eval_cost <= deadline && round < 64; round++) {
        /* first half of the rounds explores, then local moves around the best */
        if (!sample(ps, ctx, legal, have && round >= 3 && rnd(rs) % 3 ? best : NULL, rs, v))
            break;
        params_string(ps, v, slot, slot_len);
        char why[256];
        double t0 = clsynth_now_s();
        int rc = run_worker(ctx, &o->worker, sh, n, fixed, o->repeats, ms, why, sizeof why);
        double cost = clsynth_now_s() - t0;
        if (cost > eval_cost)
            eval_cost = cost;
        res->tried++;
        double t = rc == 0 ? weighted(sh, ms, n) : INFINITY;
        if (o->verbose)
            fprintf(stderr, "  clblast %s %s: %s%.3f ms%s%s\n", ps->kernel, slot, rc ? "failed " : "",
                    isinf(t) ? 0.0 : t, rc ? ": " : "", rc ? why : "");
        if (rc < 0)
            clsynth_ctx_clear_error(ctx);
        if (rc) {
            res->failed++;
            continue;
        }
        if (t < best_t) {
            best_t = t;
            memcpy(best, v, sizeof best);
            memcpy(best_per_shape, ms, n * sizeof *ms);
            have = true;
        }
    }
    if (have)
        params_string(ps, best, slot, slot_len);
    else
        slot[0] = 0;
    *best_ms_out = best_t;
    free(ms);
}

static int put_params(clsynth_ctx *ctx, const char *key, const char *params, double ms, double default_ms)
{
    clsynth_tune_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.kernel, sizeof r.kernel, "%s", key);
    snprintf(r.shape, sizeof r.shape, "sgemm");
    to_options(params, r.e.options, sizeof r.e.options);
    r.ms = ms;
    r.default_ms = default_ms;
    return clsynth_tunedb_put(ctx, &r);
}

static int cmp_heavy(const void *a, const void *b)
{
    const clsynth_gemm_shape *x = a, *y = b;
    double fx = (double)x->m * x->n * x->k * x->weight, fy = (double)y->m * y->n * y->k * y->weight;
    return fx > fy ? -1 : fx < fy;
}

int clsynth_clblast_tune(clsynth_ctx *ctx, const clsynth_gemm_shape *shapes_in, size_t n_in,
                         const clsynth_clblast_tune_opts *opts, clsynth_clblast_tune_result *res)
{
    memset(res, 0, sizeof *res);
    clsynth_clblast_tune_opts o = *opts;
    if (o.repeats < 1)
        o.repeats = 3;
    size_t maxs = o.max_shapes > 0 ? (size_t)o.max_shapes : 24;
    clsynth_gemm_shape *sh = malloc((n_in ? n_in : 1) * sizeof *sh);
    double *ms = malloc((n_in ? n_in : 1) * 3 * sizeof *ms);
    if (!sh || !ms) {
        free(sh);
        free(ms);
        return clsynth_ctx_fail(ctx, "out of host memory");
    }
    memcpy(sh, shapes_in, n_in * sizeof *sh);
    qsort(sh, n_in, sizeof *sh, cmp_heavy);
    size_t n = n_in < maxs ? n_in : maxs;
    double *ind = ms + n_in, *dir = ms + 2 * n_in;
    double start = clsynth_now_s(), deadline = start + (o.budget_s > 0 ? o.budget_s : 600);
    unsigned long long rs = o.seed ? o.seed : 1234567;
    char why[256];
    int rc = 0;
    if (n == 0)
        goto out;
    /* CLBlast's own parameters: the baseline */
    if (run_worker(ctx, &o.worker, sh, n, NULL, o.repeats, ms, why, sizeof why)) {
        if (ctx->failed)
            rc = -1;
        else
            rc = clsynth_ctx_fail(ctx, "CLBlast GEMM with its default parameters failed: %s", why);
        goto out;
    }
    res->default_ms = weighted(sh, ms, n);
    double eval_cost = clsynth_now_s() - start;
    if (o.verbose)
        fprintf(stderr, "  clblast default: %.3f ms over %zu shapes (one evaluation %.1f s)\n", res->default_ms, n,
                eval_cost);
    double left = deadline - clsynth_now_s();
    /* phase 1: indirect kernel, always used */
    clsynth_clblast_params cur;
    memset(&cur, 0, sizeof cur);
    snprintf(cur.routine, sizeof cur.routine, "XGEMM_MIN_INDIRECT_SIZE=0");
    double t_ind = INFINITY, t_dir = INFINITY;
    search_space(ctx, &o, sh, n, &XGEMM, xgemm_legal, &cur, cur.xgemm, sizeof cur.xgemm,
                 clsynth_now_s() + 0.5 * (left - eval_cost), eval_cost, &rs, &t_ind, ind, res);
    /* phase 2: direct kernel, always used */
    snprintf(cur.routine, sizeof cur.routine, "XGEMM_MIN_INDIRECT_SIZE=100000");
    search_space(ctx, &o, sh, n, &XGEMM_DIRECT, direct_legal, &cur, cur.xgemm_direct, sizeof cur.xgemm_direct,
                 deadline - eval_cost, eval_cost, &rs, &t_dir, dir, res);
    if (isinf(t_ind) && isinf(t_dir))
        goto out;
    /* phase 3: threshold that splits the shapes best (direct when m*n*k < T^3) */
    long best_T = isinf(t_dir) ? 0 : (isinf(t_ind) ? 100000 : 0);
    double best_total = INFINITY;
    for (size_t c = 0; c <= n + 1; c++) {
        long T = c == 0 ? 0 : c == n + 1 ? 100000 : (long)ceil(cbrt((double)sh[c - 1].m * sh[c - 1].n * sh[c - 1].k)) + 1;
        double total = 0;
        for (size_t i = 0; i < n; i++) {
            bool direct = (double)sh[i].m * sh[i].n * sh[i].k < (double)T * T * T;
            double t = direct ? dir[i] : ind[i];
            if (isinf(direct ? t_dir : t_ind)) {
                total = INFINITY;
                break;
            }
            total += t * (sh[i].weight > 0 ? sh[i].weight : 1);
        }
        if (total < best_total) {
            best_total = total;
            best_T = T;
        }
    }
    snprintf(cur.routine, sizeof cur.routine, "XGEMM_MIN_INDIRECT_SIZE=%ld", best_T);
    /* verify the combination as it will run */
    if (run_worker(ctx, &o.worker, sh, n, &cur, o.repeats, ms, why, sizeof why)) {
        if (ctx->failed) {
            clsynth_ctx_clear_error(ctx);
        }
        if (o.verbose)
            fprintf(stderr, "  clblast combination failed: %s\n", why);
        goto out;
    }
    res->tuned_ms = weighted(sh, ms, n);
    res->best = cur;
    if (o.verbose)
        fprintf(stderr, "  clblast tuned: %.3f ms (default %.3f ms)\n", res->tuned_ms, res->default_ms);
    if (res->tuned_ms < res->default_ms * 0.97) {
        res->improved = true;
        if (put_params(ctx, DB_KEYS[0], cur.xgemm[0] ? cur.xgemm : "", res->tuned_ms, res->default_ms) ||
            put_params(ctx, DB_KEYS[1], cur.xgemm_direct, res->tuned_ms, res->default_ms) ||
            put_params(ctx, DB_KEYS[2], cur.routine, res->tuned_ms, res->default_ms))
            rc = -1;
    }
out:
    free(sh);
    free(ms);
    return rc;
}
