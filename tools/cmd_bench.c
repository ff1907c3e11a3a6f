/* clsynth bench: per-op default vs tuned times (GFLOP/s, GB/s), CLBlast SGEMM
 * rates (1024^3 and the model's GEMM shapes, CLBlast default vs tuned), full
 * training-step and inference throughput with peak device memory and launches
 * per step, clsynth_gemm's algorithms against OpenBLAS (tools/bench_gemm.c;
 * `bench gemm` runs only that part), all tagged
 * with the device identity; --json writes them, --compare prints a markdown
 * table of several JSON files side by side (cross-device, cross-vendor).
 *
 * "default" = every tuned lookup off (the ops' built-in defaults, CLBlast's
 * own parameters); "tuned" = the device's tuning database. CLBlast overrides
 * are process-wide and cannot be undone, so every default measurement runs
 * before the first tuned one. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/clblast_tune.h"
#include "clcore/kdef.h"
#include "clcore/tunedb.h"
#include "clcore/tuner.h"
#include "tools/bench_checkpoint.h"
#include "tools/bench_conv.h"
#include "tools/bench_dist.h"
#include "tools/bench_gemm.h"
#include "tools/bench_step.h"
#include "tools/bench_workload.h"
#include "tools/clblast_worker.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/dist.h"

/* ------------------------------------------------------------ op rows */

typedef struct op_row {
    const clsynth_kdef *t;
    char shape[96];
    double def_ms, tuned_ms, flops, bytes;
    bool has_tuned; /* the database has an entry for it */
    bool ok;
} op_row;

/* The descriptors' bench shapes (representative CC-FPSE shapes: 256 channels
 * at 32x32 and 64 at 128x128, batch 1 and 4); --quick drops the large ones. */
static size_t op_rows(op_row *rows, size_t cap, bool quick)
{
    int nd = 0;
    const clsynth_kdef *const *defs = clsynth_kdefs(&nd);
    size_t n = 0;
    for (int d = 0; d < nd; d++) {
        if (!defs[d]->run)
            continue; /* CLBlast's kernels: measured as SGEMM below */
        for (int i = 0; i < defs[d]->n_bench_shapes && n < cap; i++) {
            char key[CLSYNTH_K_KEY_MAX];
            clsynth_kdef_bench_key(defs[d], i, key, sizeof key);
            if (quick && (strstr(key, "N4.") || strstr(key, "1024x") || strstr(key, "256x128")))
                continue;
            memset(&rows[n], 0, sizeof rows[n]);
            rows[n].t = defs[d];
            snprintf(rows[n].shape, sizeof rows[n].shape, "%s", key);
            n++;
        }
    }
    return n;
}

/* flops of one harness run: a backward run of conv2d does the forward and two
 * more GEMM-sized products; a conv kernel of the backward (the direct and
 * implicit-GEMM dx and dw kernels, Winograd's forward + dx) the forward and one */
static double run_flops(const op_row *r)
{
    if (strcmp(r->t->key, "conv2d") == 0)
        return 3 * r->flops;
    if (strncmp(r->t->key, "conv_", 5) == 0 && r->t->backward)
        return 2 * r->flops;
    return r->flops;
}

/* ------------------------------------------------------------ JSON */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s >= 32)
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fputs("null", f);
}

/* Value of "key": in a one-line JSON object (number or string). */
static bool jget(const char *line, const char *key, char *out, size_t len)
{
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(line, pat);
    if (!p)
        return false;
    p += strlen(pat);
    size_t n = 0;
    if (*p == '"') {
        p++;
        while (*p && *p != '"' && n + 1 < len) {
            if (*p == '\\' && p[1])
                p++;
            out[n++] = *p++;
        }
    } else {
        while (*p && *p != ',' && *p != '}' && n + 1 < len)
            out[n++] = *p++;
    }
    out[n] = 0;
    return true;
}

static double jnum(const char *line, const char *key)
{
    char b[64];
    if (!jget(line, key, b, sizeof b) || strcmp(b, "null") == 0)
        return NAN;
    return atof(b);
}

/* ------------------------------------------------------------ compare */

#define MAX_FILES 8
#define MAX_ROWS 128

typedef struct bench_file {
    char device[300], cls[32];
    double sgemm_def, sgemm_tuned;
    char rkey[MAX_ROWS][160];
    double rdef[MAX_ROWS], rtuned[MAX_ROWS];
    int nrows;
    char train[160];
    double step_def, step_tuned, ips_def, ips_tuned, infer_def, infer_tuned, peak;
} bench_file;

static int read_bench(const char *path, bench_file *b)
{
    memset(b, 0, sizeof *b);
    b->sgemm_def = b->sgemm_tuned = b->step_def = b->step_tuned = NAN;
    b->ips_def = b->ips_tuned = b->infer_def = b->infer_tuned = b->peak = NAN;
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "clsynth bench: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[4096];
    bool magic = false;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "\"clsynth_bench\""))
            magic = true;
        if (strstr(line, "\"device\": {")) {
            char name[128] = "", vendor[128] = "", driver[64] = "";
            jget(line, "name", name, sizeof name);
            jget(line, "vendor", vendor, sizeof vendor);
            jget(line, "driver", driver, sizeof driver);
            jget(line, "class", b->cls, sizeof b->cls);
            snprintf(b->device, sizeof b->device, "%s (%s, driver %s)", name, vendor, driver);
        } else if (strstr(line, "\"sgemm1024\": {")) {
            b->sgemm_def = jnum(line, "default_gflops");
            b->sgemm_tuned = jnum(line, "tuned_gflops");
        } else if (strstr(line, "{\"kernel\": ") && b->nrows < MAX_ROWS) {
            char k[64] = "", s[96] = "";
            jget(line, "kernel", k, sizeof k);
            jget(line, "shape", s, sizeof s);
            snprintf(b->rkey[b->nrows], sizeof b->rkey[0], "%s %s", k, s);
            b->rdef[b->nrows] = jnum(line, "default_ms");
            b->rtuned[b->nrows] = jnum(line, "tuned_ms");
            b->nrows++;
        } else if (strstr(line, "{\"gemm_m\": ") && b->nrows < MAX_ROWS) {
            char m[16] = "", n[16] = "", k[16] = "", ta[8] = "", tb[8] = "";
            jget(line, "gemm_m", m, sizeof m);
            jget(line, "gemm_n", n, sizeof n);
            jget(line, "gemm_k", k, sizeof k);
            jget(line, "ta", ta, sizeof ta);
            jget(line, "tb", tb, sizeof tb);
            snprintf(b->rkey[b->nrows], sizeof b->rkey[0], "sgemm %sx%sx%s%s%s", m, n, k,
                     strcmp(ta, "1") == 0 ? " A^T" : "", strcmp(tb, "1") == 0 ? " B^T" : "");
            b->rdef[b->nrows] = jnum(line, "default_ms");
            b->rtuned[b->nrows] = jnum(line, "tuned_ms");
            b->nrows++;
        } else if (strstr(line, "\"train\": {")) {
            char preset[32] = "", batch[16] = "", h[16] = "", w[16] = "";
            jget(line, "preset", preset, sizeof preset);
            jget(line, "batch", batch, sizeof batch);
            jget(line, "h", h, sizeof h);
            jget(line, "w", w, sizeof w);
            snprintf(b->train, sizeof b->train, "%s %sx%s batch %s", preset, h, w, batch);
            b->step_def = jnum(line, "default_step_ms");
            b->step_tuned = jnum(line, "tuned_step_ms");
            b->ips_def = jnum(line, "default_train_images_per_s");
            b->ips_tuned = jnum(line, "tuned_train_images_per_s");
            b->infer_def = jnum(line, "default_infer_images_per_s");
            b->infer_tuned = jnum(line, "tuned_infer_images_per_s");
            b->peak = jnum(line, "peak_device_mib");
        }
    }
    fclose(f);
    if (!magic) {
        fprintf(stderr, "clsynth bench: %s is not a clsynth bench JSON file\n", path);
        return -1;
    }
    return 0;
}

static void cell_pair(char *out, size_t len, double a, double b, const char *fmt)
{
    char x[32] = "-", y[32] = "-";
    if (isfinite(a))
        snprintf(x, sizeof x, fmt, a);
    if (isfinite(b))
        snprintf(y, sizeof y, fmt, b);
    snprintf(out, len, "%s / %s", x, y);
}

static int compare(int n, char **paths)
{
    bench_file *bf = calloc((size_t)n, sizeof *bf);
    if (!bf)
        return 1;
    for (int i = 0; i < n; i++)
        if (read_bench(paths[i], &bf[i])) {
            free(bf);
            return 1;
        }
    printf("| | ");
    for (int i = 0; i < n; i++)
        printf("%s (%s) | ", bf[i].device, bf[i].cls);
    printf("\n|---|");
    for (int i = 0; i < n; i++)
        printf("---|");
    printf("\n");
    char c[96];
    printf("| SGEMM 1024³ GFLOP/s, CLBlast default / tuned | ");
    for (int i = 0; i < n; i++) {
        cell_pair(c, sizeof c, bf[i].sgemm_def, bf[i].sgemm_tuned, "%.1f");
        printf("%s | ", c);
    }
    printf("\n");
    /* union of row keys, in first-seen order */
    char (*keys)[160] = calloc((size_t)n * MAX_ROWS, sizeof *keys);
    int nk = 0;
    for (int i = 0; keys && i < n; i++)
        for (int r = 0; r < bf[i].nrows; r++) {
            int k = 0;
            while (k < nk && strcmp(keys[k], bf[i].rkey[r]) != 0)
                k++;
            if (k == nk)
                snprintf(keys[nk++], sizeof keys[0], "%s", bf[i].rkey[r]);
        }
    for (int k = 0; k < nk; k++) {
        printf("| %s: ms default / tuned | ", keys[k]);
        for (int i = 0; i < n; i++) {
            int r = 0;
            while (r < bf[i].nrows && strcmp(bf[i].rkey[r], keys[k]) != 0)
                r++;
            if (r == bf[i].nrows)
                printf("- | ");
            else {
                cell_pair(c, sizeof c, bf[i].rdef[r], bf[i].rtuned[r], "%.3f");
                printf("%s | ", c);
            }
        }
        printf("\n");
    }
    free(keys);
    const struct { const char *label; size_t off_a, off_b; const char *fmt; } tr[] = {
        { "training step ms, default / tuned", offsetof(bench_file, step_def), offsetof(bench_file, step_tuned), "%.1f" },
        { "training images/s, default / tuned", offsetof(bench_file, ips_def), offsetof(bench_file, ips_tuned), "%.3f" },
        { "inference images/s (G), default / tuned", offsetof(bench_file, infer_def), offsetof(bench_file, infer_tuned),
          "%.3f" },
    };
    printf("| training configuration | ");
    for (int i = 0; i < n; i++)
        printf("%s | ", bf[i].train[0] ? bf[i].train : "-");
    printf("\n");
    for (size_t t = 0; t < sizeof tr / sizeof tr[0]; t++) {
        printf("| %s | ", tr[t].label);
        for (int i = 0; i < n; i++) {
            double a = *(const double *)((const char *)&bf[i] + tr[t].off_a);
            double b = *(const double *)((const char *)&bf[i] + tr[t].off_b);
            cell_pair(c, sizeof c, a, b, tr[t].fmt);
            printf("%s | ", c);
        }
        printf("\n");
    }
    printf("| peak device memory MiB | ");
    for (int i = 0; i < n; i++) {
        if (isfinite(bf[i].peak))
            printf("%.0f | ", bf[i].peak);
        else
            printf("- | ");
    }
    printf("\n");
    free(bf);
    return 0;
}

/* ------------------------------------------------------------ measuring */

typedef struct train_res {
    bool done;
    double step_def, step_tuned, infer_def, infer_tuned; /* ms */
    double launches_def, gemms_def, launches_tuned, gemms_tuned; /* per training step */
    double peak_mib;
    int n, h, w;
    char preset[16];
} train_res;

static int time_steps(clsynth_ctx *ctx, clsynth_workload *wl, int steps, double *step_ms, double *infer_ms,
                      double *launches, double *gemms)
{
    /* warm-up: compiles kernels (CLBlast's too) and fills the pool */
    if (clsynth_workload_train_step(ctx, wl) || clsynth_workload_infer(ctx, wl))
        return -1;
    double t0 = clsynth_now_s();
    unsigned long l0 = ctx->launches, g0 = ctx->gemm_calls;
    for (int i = 0; i < steps; i++)
        if (clsynth_workload_train_step(ctx, wl))
            return -1;
    *step_ms = (clsynth_now_s() - t0) * 1e3 / steps;
    *launches = (double)(ctx->launches - l0) / steps;
    *gemms = (double)(ctx->gemm_calls - g0) / steps;
    t0 = clsynth_now_s();
    for (int i = 0; i < steps; i++)
        if (clsynth_workload_infer(ctx, wl))
            return -1;
    *infer_ms = (clsynth_now_s() - t0) * 1e3 / steps;
    return 0;
}

/* bench gemm: the GEMM products one training step (and one inference) of
 * the model flags (default --preset tiny) looks up, as rows (malloc'ed;
 * NULL with a message on stderr) */
static clsynth_bench_gemm_row *record_gemm_rows(clsynth_ctx *ctx, int model_argc, char **model_argv, size_t *n)
{
    char *tiny[] = { "--preset", "tiny" };
    clsynth_workload wl;
    clsynth_err err;
    if (clsynth_workload_init(ctx, model_argc ? model_argc : 2, model_argc ? model_argv : tiny, &wl, &err)) {
        fprintf(stderr, "clsynth bench: model: %s\n", err.msg);
        return NULL;
    }
    printf("model: preset '%s', %dx%d, batch %d; recording the GEMM products of one training step...\n",
           wl.opt.preset[0] ? wl.opt.preset : "(none)", wl.h, wl.w, wl.n);
    fflush(stdout);
    const int rc = clsynth_workload_record(ctx, &wl);
    clsynth_workload_free(ctx, &wl);
    clsynth_tune_job *jobs = NULL;
    size_t njobs = 0, unknown = 0;
    if (rc || clsynth_tune_jobs_from_recorded(ctx, &jobs, &njobs, &unknown)) {
        fprintf(stderr, "clsynth bench: recording the step: %s\n", ctx->err.msg);
        return NULL;
    }
    clsynth_bench_gemm_row *rows = calloc(njobs + 1, sizeof *rows);
    if (rows)
        *n = clsynth_bench_gemm_rows_recorded(ctx, jobs, njobs, "training step + inference", rows, njobs + 1);
    else
        fprintf(stderr, "clsynth bench: out of memory\n");
    free(jobs);
    clsynth_pool_trim(ctx);
    return rows;
}

/* bench conv: every conv algorithm at the conv2d shapes one training step
 * (and one inference) of the model flags looks up */
static int bench_conv(clsynth_ctx *ctx, int model_argc, char **model_argv, int repeats)
{
    char *tiny[] = { "--preset", "tiny" };
    clsynth_workload wl;
    clsynth_err err;
    if (clsynth_workload_init(ctx, model_argc ? model_argc : 2, model_argc ? model_argv : tiny, &wl, &err)) {
        fprintf(stderr, "clsynth bench: model: %s\n", err.msg);
        return -1;
    }
    printf("model: preset '%s', %dx%d, batch %d; recording the conv shapes of one training step...\n",
           wl.opt.preset[0] ? wl.opt.preset : "(none)", wl.h, wl.w, wl.n);
    fflush(stdout);
    const int rc = clsynth_workload_record(ctx, &wl);
    clsynth_workload_free(ctx, &wl);
    clsynth_tune_job *jobs = NULL;
    size_t njobs = 0, unknown = 0;
    if (rc || clsynth_tune_jobs_from_recorded(ctx, &jobs, &njobs, &unknown) ||
        clsynth_bench_conv(ctx, jobs, njobs, repeats, 2)) {
        fprintf(stderr, "clsynth bench conv: %s\n", ctx->err.msg);
        free(jobs);
        return -1;
    }
    free(jobs);
    return 0;
}

int clsynth_cmd_bench(int argc, char **argv)
{
    const char *what = "all", *json = NULL, *device = NULL, *emulate = NULL, *v = NULL;
    int repeats = 5, steps = 3;
    float tune_budget = 0;
    bool quick = false, no_clblast = false;
    if (argc > 1 && strcmp(argv[1], "checkpoint") == 0) {
        const char *var;
        int launched = clsynth_dist_launcher_size(&var);
        if (launched > 1) { /* the copies would time each other's disk writes into the same --dir */
            fprintf(stderr, "clsynth bench checkpoint: started as one of %d processes by an MPI launcher (%s); "
                            "under mpirun only 'clsynth bench train' runs, the checkpoint benchmark is one process\n",
                    launched, var);
            return 2;
        }
        return clsynth_bench_checkpoint(argc - 1, argv + 1); /* tools/bench_checkpoint.c */
    }
    if (argc > 1 && strcmp(argv[1], "step") == 0)
        return clsynth_bench_step(argc - 1, argv + 1); /* tools/bench_step.c */
    char **model_argv = calloc((size_t)argc + 1, sizeof *model_argv);
    int model_argc = 0, rc = 2;
    if (!model_argv)
        return 1;
    for (int i = 1; i < argc; i++) {
        int m;
        if (strcmp(argv[i], "--compare") == 0) {
            free(model_argv);
            if (argc - i - 1 < 1) {
                fprintf(stderr, "clsynth bench: --compare needs JSON files\n");
                return 2;
            }
            return compare(argc - i - 1 > MAX_FILES ? MAX_FILES : argc - i - 1, argv + i + 1);
        }
        if (i == 1 && (strcmp(argv[i], "ops") == 0 || strcmp(argv[i], "train") == 0 || strcmp(argv[i], "all") == 0 ||
                       strcmp(argv[i], "gemm") == 0 || strcmp(argv[i], "conv") == 0)) {
            what = argv[i];
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--json", &json)) != 0) {
            if (m < 0)
                goto bad_value;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--device", &device)) != 0) {
            if (m < 0)
                goto bad_value;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--emulate", &emulate)) != 0) {
            if (m < 0)
                goto bad_value;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--repeats", &v)) != 0) {
            if (m < 0 || clsynth_cli_int("clsynth bench", "--repeats", v, 1, 50, &repeats))
                goto out;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--steps", &v)) != 0) {
            if (m < 0 || clsynth_cli_int("clsynth bench", "--steps", v, 1, 1000, &steps))
                goto out;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--tune-budget", &v)) != 0) {
            if (m < 0 || clsynth_cli_float("clsynth bench", "--tune-budget", v, &tune_budget))
                goto out;
        } else if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (strcmp(argv[i], "--no-clblast") == 0) {
            no_clblast = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: clsynth bench [ops|train|gemm|conv|all] [--json FILE] [--device SPEC] [--emulate wg=N,local=B]\n"
                   "                     [--repeats N] [--steps N] [--quick] [--no-clblast] [--tune-budget S]\n"
                   "                     [model flags]\n"
                   "       clsynth bench --compare A.json B.json ...\n"
                   "       clsynth bench checkpoint [--preset small] [--dir DIR] [--repeats N] [model flags]\n"
                   "       clsynth bench step [--steps N] [--warmup W] [--infer N] [--infer-batch B] [--json FILE]\n"
                   "                          [--profile] [model flags]\n"
                   "ops: each tunable op at representative CC-FPSE shapes and CLBlast SGEMM, default vs tuned\n"
                   "     (--tune-budget S first tunes those shapes that the database lacks; --no-clblast skips\n"
                   "     the SGEMM rows, which take minutes on slow devices such as rusticl's llvmpipe);\n"
                   "train: full training step and G inference of the model flags (default --preset tiny);\n"
                   "       under mpirun -np K: the data-parallel step, its communication time, bytes and share\n"
                   "       (%s);\n"
                   "gemm: clsynth_gemm's algorithms at the GEMM products of one training step (and inference)\n"
                   "     of the model flags against OpenBLAS on host arrays (ops: at the representative convs);\n"
                   "conv: every conv algorithm (direct, im2col_gemm, igemm, winograd; dnnl and dnnl_plain: oneDNN\n"
                   "     blocked and in NCHW, CPU devices) at the conv shapes of one training step of the model\n"
                   "     flags, forward + backward, beside the default choice;\n"
                   "checkpoint: checkpoint save (latest + hard-linked numbered copy) and load times (one process);\n"
                   "step: training steps (each printed) and inference as training runs them (tuning as\n"
                   "      installed), pool peaks and peak RSS (tools/bench_vs_torch.py reads its --json).\n",
                   clsynth_dist_build_info());
            rc = 0;
            goto out;
        } else {
            model_argv[model_argc++] = argv[i];
        }
        continue;
    bad_value:
        fprintf(stderr, "clsynth bench: %s needs a value\n", argv[i]);
        goto out;
    }
    const bool do_gemm = strcmp(what, "train") != 0, do_ops = do_gemm && strcmp(what, "gemm") != 0,
               do_train = strcmp(what, "train") == 0 || strcmp(what, "all") == 0;
    /* under mpirun: the data-parallel training step (tools/bench_dist.c) */
    clsynth_err err;
    clsynth_dist dist;
    if (clsynth_dist_init(&dist, &err)) {
        fprintf(stderr, "clsynth bench: %s\n", err.msg);
        rc = 1;
        goto out;
    }
    if (dist.size > 1) {
        if (strcmp(what, "train") != 0)
            rc = clsynth_dist_abort(&dist, "bench", 2, "under mpirun only 'clsynth bench train' runs (the "
                                                       "data-parallel step); ops benchmarks run on one process");
        else
            rc = clsynth_bench_train_distributed(&dist, device, model_argc, model_argv, steps, json);
        goto out;
    }
    size_t wg = 0;
    unsigned long long lm = 0;
    if (emulate && clsynth_parse_emulate(emulate, &wg, &lm)) {
        fprintf(stderr, "clsynth bench: --emulate '%s': expected wg=N,local=BYTES[K|M]\n", emulate);
        goto out;
    }
    clsynth_ctx *ctx = clsynth_ctx_create(device, &err);
    if (!ctx) {
        fprintf(stderr, "clsynth bench: %s\n", err.msg);
        rc = 1;
        goto out;
    }
    rc = 1;
    clsynth_ctx_emulate_limits(ctx, wg, lm);
    ctx->quiet = true;
    if (strcmp(what, "conv") == 0) {
        printf("device: %s | %s | %s | driver %s\n", ctx->dev.platform_name, ctx->dev.vendor, ctx->dev.name,
               ctx->dev.driver);
        rc = bench_conv(ctx, model_argc, model_argv, repeats) ? 1 : 0;
        clsynth_ctx_free(ctx);
        goto out;
    }
    printf("device: %s | %s | %s | driver %s | class %s | max work-group %zu | local memory %llu\n",
           ctx->dev.platform_name, ctx->dev.vendor, ctx->dev.name, ctx->dev.driver, clsynth_device_class(&ctx->dev),
           ctx->max_wg, (unsigned long long)ctx->local_mem);

    op_row rows[64];
    size_t nrows = do_ops ? op_rows(rows, 64, quick) : 0;
    /* lookups off from the start: loading the database with them on would apply
     * its CLBlast parameters to this process before the defaults are measured
     * (the tuner reads the database's entries directly; it needs no lookups) */
    clsynth_tunedb_set_enabled(ctx, false);
    clsynth_tunedb_load(ctx);
    /* optional: tune the representative shapes the database lacks */
    if (nrows && tune_budget > 0) {
        clsynth_tune_job jobs[64];
        size_t nj = 0;
        for (size_t i = 0; i < nrows; i++) {
            jobs[nj].def = rows[i].t;
            snprintf(jobs[nj].shape, sizeof jobs[nj].shape, "%s", rows[i].shape);
            jobs[nj].uses = 1;
            nj++;
        }
        clsynth_tune_opts o;
        clsynth_tune_opts_default(&o);
        o.budget_s = tune_budget;
        printf("tuning %zu representative shapes (%.0f s)...\n", nj, (double)tune_budget);
        fflush(stdout);
        if (clsynth_tune_run(ctx, jobs, nj, &o, NULL)) {
            fprintf(stderr, "clsynth bench: tuning failed: %s\n", ctx->err.msg);
            clsynth_ctx_clear_error(ctx);
        }
    }
    /* defaults first (see the file comment); lookups are still off */
    /* the stored CLBlast parameters (device database, else the class file), read
     * with lookups off (nothing applied in this process); the workers measure them */
    clsynth_clblast_params tuned_params;
    const bool have_tuned_gemm = do_ops && clsynth_clblast_stored(ctx, &tuned_params);

    /* GEMM: 1024^3 and the model's GEMM shapes at the representative convs */
    clsynth_gemm_shape gs[64];
    size_t ngs = 0;
    gs[ngs++] = (clsynth_gemm_shape){ 1024, 1024, 1024, false, false, 1 };
    if (do_ops)
        for (size_t i = 0; i < nrows; i++)
            if (strcmp(rows[i].t->key, "conv2d") == 0)
                ngs = clsynth_conv_gemm_shapes(rows[i].shape, 1, gs, ngs, 64);
    double gdef[64], gtun[64];
    static const char *const wargv[] = { "tune", "--clblast-worker" };
    clsynth_clblast_worker wc = { NULL, wargv, 2, 0, 600 };
    for (size_t i = 0; i < ngs; i++)
        gdef[i] = gtun[i] = NAN;
    if (do_ops && no_clblast) {
        printf("CLBlast SGEMM not measured (--no-clblast)\n");
    } else if (do_ops) {
        printf("measuring CLBlast SGEMM (%zu shapes) in a worker process...\n", ngs);
        fflush(stdout);
        if (clsynth_clblast_measure(ctx, gs, ngs, NULL, 3, &wc, gdef)) {
            fprintf(stderr, "clsynth bench: %s\n", ctx->err.msg);
            clsynth_ctx_clear_error(ctx);
        }
        if (have_tuned_gemm && clsynth_clblast_measure(ctx, gs, ngs, &tuned_params, 3, &wc, gtun)) {
            fprintf(stderr, "clsynth bench: %s\n", ctx->err.msg);
            clsynth_ctx_clear_error(ctx);
        }
    }
    /* every GEMM algorithm of clsynth_gemm against OpenBLAS: ops at the
     * products of the representative convs, gemm at those of the model's step */
    clsynth_bench_gemm_row *grows = NULL;
    size_t ngrows = 0;
    if (do_ops) {
        const char *convs[64];
        size_t nc = 0;
        for (size_t i = 0; i < nrows && nc < 64; i++)
            if (strcmp(rows[i].t->key, "conv2d") == 0)
                convs[nc++] = rows[i].shape;
        grows = calloc(64, sizeof *grows);
        ngrows = grows ? clsynth_bench_gemm_rows(ctx, convs, nc, grows, 64) : 0;
    } else if (do_gemm) {
        grows = record_gemm_rows(ctx, model_argc, model_argv, &ngrows);
        if (!grows)
            goto done;
    }
    if (ngrows) {
        printf("measuring the GEMM algorithms at %zu products...\n", ngrows);
        fflush(stdout);
        clsynth_bench_gemm_measure(ctx, grows, ngrows, repeats, 2);
    }
    double sgemm_rate = gdef[0] > 0 ? 2.0 * 1024 * 1024 * 1024 / (gdef[0] * 1e6) : NAN;
    const double gemm_rate = clsynth_bench_gemm_default_rate(grows, ngrows);
    if (isfinite(gemm_rate) && !(gemm_rate <= sgemm_rate))
        sgemm_rate = gemm_rate;
    if (have_tuned_gemm && gtun[0] > 0 && 2.0 * 1024 * 1024 * 1024 / (gtun[0] * 1e6) > sgemm_rate)
        sgemm_rate = 2.0 * 1024 * 1024 * 1024 / (gtun[0] * 1e6);

    /* ops, default configuration */
    for (size_t i = 0; i < nrows; i++) {
        op_row *r = &rows[i];
        r->def_ms = r->tuned_ms = NAN;
        if (clsynth_tune_measure(ctx, r->t, r->shape, NULL, repeats, NULL, NULL, &r->def_ms, &r->flops, &r->bytes)) {
            fprintf(stderr, "clsynth bench: %s at %s: %s\n", r->t->key, r->shape, ctx->err.msg);
            clsynth_ctx_clear_error(ctx);
            r->def_ms = NAN;
            continue;
        }
        r->ok = true;
    }
    /* training, default configuration */
    train_res tr;
    memset(&tr, 0, sizeof tr);
    clsynth_workload wl;
    bool have_wl = false;
    if (do_train) {
        char *tiny[] = { "--preset", "tiny" };
        char **av = model_argc ? model_argv : tiny;
        int ac = model_argc ? model_argc : 2;
        if (clsynth_workload_init(ctx, ac, av, &wl, &err)) {
            fprintf(stderr, "clsynth bench: model: %s\n", err.msg);
        } else {
            have_wl = true;
            tr.n = wl.n;
            tr.h = wl.h;
            tr.w = wl.w;
            snprintf(tr.preset, sizeof tr.preset, "%s", wl.opt.preset);
            printf("training step of preset '%s' %dx%d batch %d: default configuration...\n", tr.preset, tr.h, tr.w,
                   tr.n);
            fflush(stdout);
            if (time_steps(ctx, &wl, steps, &tr.step_def, &tr.infer_def, &tr.launches_def, &tr.gemms_def)) {
                fprintf(stderr, "clsynth bench: training step failed: %s\n", ctx->err.msg);
                clsynth_ctx_clear_error(ctx);
            } else {
                tr.done = true;
            }
        }
    }
    /* tuned */
    clsynth_tunedb_set_enabled(ctx, true);
    for (size_t i = 0; i < nrows; i++) {
        op_row *r = &rows[i];
        clsynth_tune_record rec;
        r->has_tuned = clsynth_tunedb_get(ctx, r->t->key, r->shape, &rec) && !clsynth_tune_record_is_default(&rec);
        bool uses_gemm = strcmp(r->t->key, "conv2d") == 0 && have_tuned_gemm;
        if (!r->ok)
            continue;
        if (!r->has_tuned && !uses_gemm) {
            r->tuned_ms = r->def_ms; /* nothing tuned: the same configuration */
            continue;
        }
        if (clsynth_tune_measure(ctx, r->t, r->shape, NULL, repeats, NULL, NULL, &r->tuned_ms, NULL, NULL)) {
            fprintf(stderr, "clsynth bench: %s at %s (tuned): %s\n", r->t->key, r->shape, ctx->err.msg);
            clsynth_ctx_clear_error(ctx);
            r->tuned_ms = NAN;
        }
    }
    if (have_wl && tr.done) {
        printf("training step: tuned configuration...\n");
        fflush(stdout);
        if (time_steps(ctx, &wl, steps, &tr.step_tuned, &tr.infer_tuned, &tr.launches_tuned, &tr.gemms_tuned)) {
            fprintf(stderr, "clsynth bench: tuned training step failed: %s\n", ctx->err.msg);
            clsynth_ctx_clear_error(ctx);
            tr.step_tuned = tr.infer_tuned = NAN;
        }
        tr.peak_mib = (double)clsynth_pool_get_stats(ctx).peak_bytes_reserved / (1024.0 * 1024.0);
    }
    if (have_wl)
        clsynth_workload_free(ctx, &wl);

    /* report */
    if (do_ops) {
        printf("\nCLBlast SGEMM (ms, GFLOP/s), CLBlast default vs tuned%s:\n",
               have_tuned_gemm ? "" : " (no tuned CLBlast parameters in the database)");
        printf("  %-26s %10s %8s %10s %8s\n", "m x n x k", "default", "GF/s", "tuned", "GF/s");
        for (size_t i = 0; i < ngs; i++) {
            double f = 2.0 * gs[i].m * (double)gs[i].n * gs[i].k;
            char shp[64];
            snprintf(shp, sizeof shp, "%dx%dx%d%s%s", gs[i].m, gs[i].n, gs[i].k, gs[i].ta ? " A^T" : "",
                     gs[i].tb ? " B^T" : "");
            printf("  %-26s %10.3f %8.1f %10.3f %8.1f\n", shp, gdef[i], f / (gdef[i] * 1e6), gtun[i],
                   f / (gtun[i] * 1e6));
        }
    }
    if (do_gemm)
        clsynth_bench_gemm_print(grows, ngrows);
    if (do_ops) {
        printf("\nops (median of %d runs; conv2d = forward + backward of the op; GEMM%% = conv GFLOP/s over the\n"
               "device's SGEMM 1024^3 rate %.1f GFLOP/s, its default GEMM algorithm or tuned CLBlast):\n", repeats,
               sgemm_rate);
        printf("  %-23s %-33s %10s %10s %7s %8s %8s %6s\n", "kernel", "shape", "default", "tuned", "speedup", "GF/s",
               "GB/s", "GEMM%");
        for (size_t i = 0; i < nrows; i++) {
            const op_row *r = &rows[i];
            double best = isfinite(r->tuned_ms) ? r->tuned_ms : r->def_ms;
            double gf = r->flops > 0 ? run_flops(r) / (best * 1e6) : NAN;
            double gb = r->bytes > 0 ? r->bytes / (best * 1e6) : NAN;
            char pct[16] = "";
            if (isfinite(gf) && isfinite(sgemm_rate) && strncmp(r->t->key, "conv", 4) == 0)
                snprintf(pct, sizeof pct, "%.0f%%", 100 * gf / sgemm_rate);
            printf("  %-23s %-33s %10.3f %10.3f %6.2fx %8.2f %8.2f %6s%s\n", r->t->key, r->shape, r->def_ms,
                   r->tuned_ms, r->def_ms / r->tuned_ms, gf, gb, pct, r->has_tuned ? "" : "  (not tuned)");
        }
    }
    if (tr.done) {
        printf("\ntraining (preset '%s', %dx%d, batch %d, %d steps):\n", tr.preset, tr.h, tr.w, tr.n, steps);
        printf("  step: default %.1f ms (%.3f images/s), tuned %.1f ms (%.3f images/s), speedup %.2fx\n",
               tr.step_def, tr.n * 1e3 / tr.step_def, tr.step_tuned, tr.n * 1e3 / tr.step_tuned,
               tr.step_def / tr.step_tuned);
        printf("  inference (G): default %.3f images/s, tuned %.3f images/s\n", tr.n * 1e3 / tr.infer_def,
               tr.n * 1e3 / tr.infer_tuned);
        printf("  per training step: default %.0f launches (%.0f GEMM calls), tuned %.0f launches (%.0f GEMM calls)\n",
               tr.launches_def, tr.gemms_def, tr.launches_tuned, tr.gemms_tuned);
        printf("  peak device memory (pool): %.1f MiB\n", tr.peak_mib);
    }
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) {
            fprintf(stderr, "clsynth bench: cannot write %s: %s\n", json, strerror(errno));
            goto done;
        }
        fprintf(f, "{\n\"clsynth_bench\": 1,\n\"device\": {\"platform\": ");
        json_str(f, ctx->dev.platform_name);
        fprintf(f, ", \"vendor\": ");
        json_str(f, ctx->dev.vendor);
        fprintf(f, ", \"name\": ");
        json_str(f, ctx->dev.name);
        fprintf(f, ", \"driver\": ");
        json_str(f, ctx->dev.driver);
        fprintf(f, ", \"class\": ");
        json_str(f, clsynth_device_class(&ctx->dev));
        fprintf(f, ", \"compute_units\": %u, \"max_wg\": %zu, \"local_mem\": %llu, \"global_mem\": %llu},\n",
                ctx->dev.compute_units, ctx->max_wg, (unsigned long long)ctx->local_mem,
                (unsigned long long)ctx->dev.global_mem);
        fprintf(f, "\"emulated\": %s,\n", emulate ? "true" : "false");
        if (do_ops) {
            fprintf(f, "\"sgemm1024\": {\"default_gflops\": ");
            json_num(f, gdef[0] > 0 ? 2.0 * 1024 * 1024 * 1024 / (gdef[0] * 1e6) : NAN);
            fprintf(f, ", \"tuned_gflops\": ");
            json_num(f, gtun[0] > 0 ? 2.0 * 1024 * 1024 * 1024 / (gtun[0] * 1e6) : NAN);
            fprintf(f, "},\n\"gemm\": [\n");
            for (size_t i = 1; i < ngs; i++) {
                fprintf(f, "{\"gemm_m\": %d, \"gemm_n\": %d, \"gemm_k\": %d, \"ta\": %d, \"tb\": %d, \"default_ms\": ",
                        gs[i].m, gs[i].n, gs[i].k, gs[i].ta, gs[i].tb);
                json_num(f, gdef[i] > 0 ? gdef[i] : NAN);
                fprintf(f, ", \"tuned_ms\": ");
                json_num(f, gtun[i] > 0 ? gtun[i] : NAN);
                fprintf(f, "}%s\n", i + 1 < ngs ? "," : "");
            }
            fprintf(f, "],\n");
        }
        if (do_gemm) {
            fprintf(f, "\"gemm_algos\": [\n");
            clsynth_bench_gemm_json(f, grows, ngrows);
            fprintf(f, "],\n");
        }
        if (do_ops) {
            fprintf(f, "\"ops\": [\n");
            for (size_t i = 0; i < nrows; i++) {
                const op_row *r = &rows[i];
                double best = isfinite(r->tuned_ms) ? r->tuned_ms : r->def_ms;
                fprintf(f, "{\"kernel\": ");
                json_str(f, r->t->key);
                fprintf(f, ", \"shape\": ");
                json_str(f, r->shape);
                fprintf(f, ", \"default_ms\": ");
                json_num(f, r->def_ms);
                fprintf(f, ", \"tuned_ms\": ");
                json_num(f, r->tuned_ms);
                fprintf(f, ", \"speedup\": ");
                json_num(f, r->def_ms / r->tuned_ms);
                fprintf(f, ", \"gflops\": ");
                json_num(f, r->flops > 0 ? run_flops(r) / (best * 1e6) : NAN);
                fprintf(f, ", \"gbps\": ");
                json_num(f, r->bytes > 0 ? r->bytes / (best * 1e6) : NAN);
                fprintf(f, ", \"tuned\": %s}%s\n", r->has_tuned ? "true" : "false", i + 1 < nrows ? "," : "");
            }
            fprintf(f, "],\n");
        }
        if (tr.done) {
            fprintf(f, "\"train\": {\"preset\": ");
            json_str(f, tr.preset);
            fprintf(f, ", \"batch\": %d, \"h\": %d, \"w\": %d, \"default_step_ms\": ", tr.n, tr.h, tr.w);
            json_num(f, tr.step_def);
            fprintf(f, ", \"tuned_step_ms\": ");
            json_num(f, tr.step_tuned);
            fprintf(f, ", \"default_train_images_per_s\": ");
            json_num(f, tr.n * 1e3 / tr.step_def);
            fprintf(f, ", \"tuned_train_images_per_s\": ");
            json_num(f, tr.n * 1e3 / tr.step_tuned);
            fprintf(f, ", \"default_infer_images_per_s\": ");
            json_num(f, tr.n * 1e3 / tr.infer_def);
            fprintf(f, ", \"tuned_infer_images_per_s\": ");
            json_num(f, tr.n * 1e3 / tr.infer_tuned);
            fprintf(f, ", \"default_launches_per_step\": ");
            json_num(f, tr.launches_def);
            fprintf(f, ", \"default_gemm_calls_per_step\": ");
            json_num(f, tr.gemms_def);
            fprintf(f, ", \"tuned_launches_per_step\": ");
            json_num(f, tr.launches_tuned);
            fprintf(f, ", \"tuned_gemm_calls_per_step\": ");
            json_num(f, tr.gemms_tuned);
            fprintf(f, ", \"peak_device_mib\": ");
            json_num(f, tr.peak_mib);
            fprintf(f, "},\n");
        }
        fprintf(f, "\"end\": true\n}\n");
        fclose(f);
        printf("\nwrote %s\n", json);
    }
    rc = 0;
done:
    free(grows);
    clsynth_ctx_free(ctx);
    clsynth_dist_finalize(&dist, NULL);
out:
    free(model_argv);
    return rc;
}
