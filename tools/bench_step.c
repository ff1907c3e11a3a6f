/* clsynth bench step [--steps N] [--warmup W] [--infer N] [--infer-batch B]
 *                    [--json FILE] [--device SPEC] [--profile] [model flags]
 *
 * Times the configuration as `clsynth train` runs it (the tuning database as
 * installed, nothing switched off): W warm-up training steps, then N timed
 * ones, each printed as it ends (so a first step that differs from the rest
 * shows); then G inference (no grad, eval mode) at the batch given. Reports
 * the device pool's peaks (reserved, in use, and what was in use by kind at
 * the in-use peak) and the process's peak resident set (VmHWM, which on a CPU
 * device covers device buffers and CLBlast's temporaries too). --json writes
 * it all for tools/bench_vs_torch.py; --profile prints the per-kernel device
 * time of every step (launches wait for their events, so steps get slower). */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "clcore/autograd.h"
#include "clcore/params.h"
#include "clcore/tunedb.h"
#include "clcore/tuner.h"
#include "tools/bench_step.h"
#include "tools/bench_workload.h"
#include "tools/cli.h"

/* kB value of a "Name:   123 kB" line of /proc/self/status, in bytes; 0 if absent. */
static size_t proc_status_bytes(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    size_t len = strlen(field), v = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            v = (size_t)strtoull(line + len + 1, NULL, 10) * 1024;
            break;
        }
    fclose(f);
    return v;
}

/* A JSON string (quotes, backslashes and newlines escaped, other control
 * characters dropped). */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '\n') {
            fputs("\\n", f);
            continue;
        }
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s >= 32)
            fputc(*s, f);
    }
    fputc('"', f);
}

/* Process CPU seconds (user, system; all threads) and page faults so far. */
typedef struct proc_usage {
    double user, sys;
    long minflt, majflt, nivcsw;
} proc_usage;

static proc_usage usage_now(void)
{
    struct rusage ru;
    proc_usage u = { 0, 0, 0, 0, 0 };
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        u.user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6;
        u.sys = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
        u.minflt = ru.ru_minflt;
        u.majflt = ru.ru_majflt;
        u.nivcsw = ru.ru_nivcsw;
    }
    return u;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double *c = malloc((size_t)n * sizeof *c);
    if (!c || n <= 0) {
        free(c);
        return 0;
    }
    memcpy(c, v, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_double);
    double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

/* One G inference on the first `batch` samples of the workload's inputs. */
static int infer(clsynth_ctx *ctx, clsynth_workload *wl, int batch)
{
    clsynth_no_grad_begin(ctx);
    clsynth_tensor *labels = clsynth_tensor_batch_slice(ctx, wl->labels, 0, batch);
    clsynth_tensor *edges = wl->edges ? clsynth_tensor_batch_slice(ctx, wl->edges, 0, batch) : NULL;
    clsynth_tensor *seg = labels ? clsynth_model_seg(ctx, wl->m, labels, edges) : NULL;
    clsynth_tensor *y = seg ? clsynth_model_generate(ctx, wl->m, seg, NULL) : NULL;
    clsynth_no_grad_end(ctx);
    int rc = y ? clsynth_finish(ctx) : -1;
    clsynth_tape_clear(ctx);
    clsynth_release_activations(ctx);
    return rc;
}

/* Subnormal floats in a parameter group's weights, gradients and Adam moments
 * (they make x86 arithmetic slow where the kernel does not flush them). */
static int print_denormals(clsynth_ctx *ctx, clsynth_model *m)
{
    const char *groups[] = { "G", "D" };
    for (int gi = 0; gi < 2; gi++) {
        clsynth_param_group *g = clsynth_model_group(m, groups[gi]);
        clsynth_tensor *ts[4] = { g->flat_data, g->flat_grad, g->adam_m, g->adam_v };
        const char *what[4] = { "weights", "gradients", "Adam m", "Adam v" };
        float *h = malloc(g->total * sizeof *h);
        if (!h)
            return -1;
        printf("  subnormals in %s:", groups[gi]);
        for (int k = 0; k < 4; k++) {
            if (clsynth_tensor_download(ctx, ts[k], h)) {
                free(h);
                return -1;
            }
            size_t sub = 0, zero = 0;
            for (size_t i = 0; i < g->total; i++) {
                if (h[i] == 0.0f)
                    zero++;
                else if (fabsf(h[i]) < FLT_MIN)
                    sub++;
            }
            printf("%s %s %zu (%.2f%%, zeros %.2f%%)", k ? "," : "", what[k], sub, 100.0 * sub / g->total,
                   100.0 * zero / g->total);
        }
        printf(" of %zu\n", g->total);
        free(h);
    }
    return 0;
}

/* Subnormal census of the activations (and their gradients) a step releases,
 * by tensor name. */
#define CENSUS_NAMES 256
typedef struct census {
    char name[CENSUS_NAMES][64];
    size_t sub[CENSUS_NAMES], total[CENSUS_NAMES];
    int n;
    float *buf;
    size_t cap;
} census;

static void census_hook(clsynth_ctx *ctx, const clsynth_tensor *t, void *user)
{
    census *c = user;
    if (t->numel > c->cap) {
        float *grown = realloc(c->buf, t->numel * sizeof *grown);
        if (!grown)
            return;
        c->buf = grown;
        c->cap = t->numel;
    }
    if (clsynth_tensor_download(ctx, t, c->buf))
        return;
    size_t sub = 0;
    for (size_t i = 0; i < t->numel; i++)
        if (c->buf[i] != 0.0f && fabsf(c->buf[i]) < FLT_MIN)
            sub++;
    int k = 0;
    while (k < c->n && strcmp(c->name[k], t->name) != 0)
        k++;
    if (k == c->n) {
        if (c->n == CENSUS_NAMES)
            k = CENSUS_NAMES - 1; /* the rest share the last row */
        else
            snprintf(c->name[c->n++], sizeof c->name[0], "%s", t->name);
    }
    c->sub[k] += sub;
    c->total[k] += t->numel;
}

static void census_print(census *c)
{
    size_t sub = 0, total = 0;
    for (int k = 0; k < c->n; k++) {
        sub += c->sub[k];
        total += c->total[k];
    }
    printf("  subnormals in the step's activations and their gradients: %zu of %zu (%.3f%%)\n", sub, total,
           total ? 100.0 * sub / total : 0);
    for (int shown = 0; shown < 8; shown++) { /* the largest counts */
        int best = -1;
        for (int k = 0; k < c->n; k++)
            if (c->sub[k] && (best < 0 || c->sub[k] > c->sub[best]))
                best = k;
        if (best < 0)
            break;
        printf("    %-40s %zu of %zu (%.2f%%)\n", c->name[best], c->sub[best], c->total[best],
               100.0 * c->sub[best] / c->total[best]);
        c->sub[best] = 0;
    }
    c->n = 0;
    memset(c->sub, 0, sizeof c->sub);
    memset(c->total, 0, sizeof c->total);
}

static void print_profile(clsynth_ctx *ctx, const char *what)
{
    if (!ctx->profile_launches)
        return;
    fprintf(stderr, "---- kernel device time, %s\n", what);
    clsynth_kprofile_print(ctx, stderr);
    clsynth_kprofile_free(ctx);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: clsynth bench step [--steps N] [--warmup W] [--infer N] [--infer-batch B] [--json FILE]\n"
               "                          [--device SPEC] [--profile] [--denormals] [model flags, default --preset tiny]\n"
               "Times W warm-up and N training steps (each printed), then N G inferences at batch B (default:\n"
               "the training batch), with the tuning database as training uses it; prints the pool's peaks and\n"
               "the process's peak RSS. --steps 0 --warmup 0 --infer 0 only describes the configuration (the\n"
               "JSON then holds the resolved options and the parameter counts). --denormals counts the\n"
               "subnormal values of the weights, gradients and Adam moments after every step.\n");
}

int clsynth_bench_step(int argc, char **argv)
{
    const char *json = NULL, *device = NULL, *v = NULL;
    int steps = 3, warmup = 1, n_infer = 3, infer_batch = 0;
    bool profile = false, denormals = false;
    char **model_argv = calloc((size_t)argc + 2, sizeof *model_argv);
    int model_argc = 0, rc = 2;
    if (!model_argv)
        return 1;
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = clsynth_cli_value(argc, argv, &i, "--json", &json)) != 0 ||
            (m = clsynth_cli_value(argc, argv, &i, "--device", &device)) != 0) {
            if (m < 0)
                goto bad_value;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--steps", &v)) != 0) {
            if (m < 0 || clsynth_cli_int("clsynth bench step", "--steps", v, 0, 100000, &steps))
                goto out;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--warmup", &v)) != 0) {
            if (m < 0 || clsynth_cli_int("clsynth bench step", "--warmup", v, 0, 100000, &warmup))
                goto out;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--infer", &v)) != 0) {
            if (m < 0 || clsynth_cli_int("clsynth bench step", "--infer", v, 0, 100000, &n_infer))
                goto out;
        } else if ((m = clsynth_cli_value(argc, argv, &i, "--infer-batch", &v)) != 0) {
            if (m < 0 || clsynth_cli_int("clsynth bench step", "--infer-batch", v, 1, 1 << 20, &infer_batch))
                goto out;
        } else if (strcmp(argv[i], "--profile") == 0) {
            profile = true;
        } else if (strcmp(argv[i], "--denormals") == 0) {
            denormals = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        } else {
            model_argv[model_argc++] = argv[i];
        }
        continue;
    bad_value:
        fprintf(stderr, "clsynth bench step: %s needs a value\n", argv[i]);
        goto out;
    }
    if (model_argc == 0) {
        model_argv[model_argc++] = "--preset";
        model_argv[model_argc++] = "tiny";
    }
    clsynth_err err;
    clsynth_ctx *ctx = clsynth_ctx_create(device, &err);
    if (!ctx) {
        fprintf(stderr, "clsynth bench step: %s\n", err.msg);
        rc = 1;
        goto out;
    }
    rc = 1;
    if (profile)
        ctx->profile_launches = true;
    census *cen = denormals ? calloc(1, sizeof *cen) : NULL;
    if (cen) {
        ctx->release_hook = census_hook;
        ctx->release_hook_user = cen;
    }
    clsynth_workload wl;
    if (clsynth_workload_init(ctx, model_argc, model_argv, &wl, &err)) {
        fprintf(stderr, "clsynth bench step: model: %s\n", err.msg);
        goto done;
    }
    if (infer_batch == 0)
        infer_batch = wl.n;
    if (infer_batch > wl.n) {
        fprintf(stderr, "clsynth bench step: --infer-batch %d exceeds the training batch %d\n", infer_batch, wl.n);
        clsynth_workload_free(ctx, &wl);
        rc = 2;
        goto done;
    }
    size_t pg, pd, pe;
    clsynth_model_param_counts(wl.m, &pg, &pd, &pe);
    const char *cls = clsynth_device_class(&ctx->dev);
    printf("device: %s | %s | driver %s | class %s; tuning entries: device %zu, class %zu\n", ctx->dev.platform_name,
           ctx->dev.name, ctx->dev.driver, cls, clsynth_tunedb_count(ctx), clsynth_tunedb_class_count(ctx));
    printf("model: preset '%s', %dx%d, batch %d, parameters G %zu D %zu E %zu\n",
           wl.opt.preset[0] ? wl.opt.preset : "(none)", wl.h, wl.w, wl.n, pg, pd, pe);
    fflush(stdout);
    print_profile(ctx, "model creation");
    int total = warmup + steps;
    double *cpu = calloc((size_t)total + 1, sizeof *cpu);
    double *st = calloc((size_t)total + 1, sizeof *st), *inf = calloc((size_t)(n_infer + 1), sizeof *inf);
    if (!st || !inf || !cpu) {
        free(cpu);
        free(st);
        free(inf);
        clsynth_workload_free(ctx, &wl);
        goto done;
    }
    int ok = 1;
    for (int i = 0; i < total && ok; i++) {
        double t0 = clsynth_now_s();
        proc_usage u0 = usage_now();
        if (clsynth_workload_train_step(ctx, &wl)) {
            fprintf(stderr, "clsynth bench step: training step %d: %s\n", i + 1, ctx->err.msg);
            ok = 0;
            break;
        }
        st[i] = clsynth_now_s() - t0;
        proc_usage u1 = usage_now();
        cpu[i] = u1.user - u0.user + u1.sys - u0.sys;
        clsynth_pool_stats ps = clsynth_pool_get_stats(ctx);
        printf("step %d%s: %.3f s (pool: %.1f MiB reserved, peak %.1f MiB, %lu device allocations; RSS %.1f MiB; "
               "CPU user %.1f s sys %.1f s, page faults %ld minor %ld major, %ld involuntary switches)\n",
               i + 1, i < warmup ? " (warm-up)" : "", st[i], ps.bytes_reserved / 1048576.0,
               ps.peak_bytes_reserved / 1048576.0, ps.device_allocs, proc_status_bytes("VmRSS") / 1048576.0,
               u1.user - u0.user, u1.sys - u0.sys, u1.minflt - u0.minflt, u1.majflt - u0.majflt,
               u1.nivcsw - u0.nivcsw);
        if (cen)
            census_print(cen);
        if (denormals && print_denormals(ctx, wl.m)) {
            fprintf(stderr, "clsynth bench step: %s\n", ctx->err.msg);
            ok = 0;
            break;
        }
        fflush(stdout);
        char what[32];
        snprintf(what, sizeof what, "training step %d", i + 1);
        print_profile(ctx, what);
    }
    double ips = 0;
    if (ok && n_infer > 0) {
        if (infer(ctx, &wl, infer_batch)) /* warm-up: eval-mode shapes at this batch */
            ok = 0;
        for (int i = 0; i < n_infer && ok; i++) {
            double t0 = clsynth_now_s();
            if (infer(ctx, &wl, infer_batch))
                ok = 0;
            inf[i] = clsynth_now_s() - t0;
        }
        if (!ok)
            fprintf(stderr, "clsynth bench step: inference: %s\n", ctx->err.msg);
        else
            ips = infer_batch / median(inf, n_infer);
        print_profile(ctx, "inference");
    }
    clsynth_pool_stats ps = clsynth_pool_get_stats(ctx);
    size_t hwm = proc_status_bytes("VmHWM"), rss = proc_status_bytes("VmRSS");
    double med = steps > 0 ? median(st + warmup, steps) : 0;
    if (ok) {
        if (steps > 0)
            printf("training step: first %.3f s, median of the %d after %d warm-up: %.3f s (%.3f images/s)\n", st[0],
                   steps, warmup, med, wl.n / med);
        if (n_infer > 0)
            printf("inference (G, batch %d): %.3f images/s (median of %d)\n", infer_batch, ips, n_infer);
        printf("pool: peak reserved %.1f MiB (free lists then %.1f MiB), peak in use %.1f MiB:", 
               ps.peak_bytes_reserved / 1048576.0, ps.free_at_peak_reserved / 1048576.0,
               ps.peak_bytes_in_use / 1048576.0);
        for (int k = 0; k < CLSYNTH_POOL_KINDS; k++)
            printf("%s %s %.1f", k ? "," : "", clsynth_pool_kind_name((clsynth_pool_kind)k),
                   ps.kind_at_peak[k] / 1048576.0);
        printf("\nprocess: peak RSS %.1f MiB, RSS now %.1f MiB\n", hwm / 1048576.0, rss / 1048576.0);
    }
    if (ok && json) {
        FILE *f = fopen(json, "w");
        if (!f) {
            fprintf(stderr, "clsynth bench step: cannot write %s: %s\n", json, strerror(errno));
            ok = 0;
        } else {
            fprintf(f, "{\"clsynth_bench_step\": 1, \"device\": ");
            json_str(f, ctx->dev.name);
            fprintf(f, ", \"platform\": ");
            json_str(f, ctx->dev.platform_name);
            fprintf(f, ", \"driver\": ");
            json_str(f, ctx->dev.driver);
            fprintf(f, ", \"class\": ");
            json_str(f, cls);
            fprintf(f, ", \"tuning_entries\": %zu, \"class_entries\": %zu,\n \"preset\": ",
                    clsynth_tunedb_count(ctx), clsynth_tunedb_class_count(ctx));
            json_str(f, wl.opt.preset);
            char *opts = clsynth_options_to_text(&wl.opt);
            fprintf(f, ", \"semantic_nc\": %d, \"options\": ", clsynth_options_semantic_nc(&wl.opt));
            json_str(f, opts ? opts : "");
            free(opts);
            fprintf(f, ",\n \"batch\": %d, \"h\": %d, \"w\": %d, \"params_G\": %zu, \"params_D\": %zu, "
                       "\"params_E\": %zu,\n \"steps_s\": [",
                    wl.n, wl.h, wl.w, pg, pd, pe);
            for (int i = 0; i < total; i++)
                fprintf(f, "%s%.6f", i ? ", " : "", st[i]);
            fprintf(f, "], \"steps_cpu_s\": [");
            for (int i = 0; i < total; i++)
                fprintf(f, "%s%.3f", i ? ", " : "", cpu[i]);
            fprintf(f, "], \"warmup\": %d, \"step_median_s\": %.6f,\n \"infer_batch\": %d, \"infer_s\": [",
                    warmup, med, infer_batch);
            for (int i = 0; i < n_infer; i++)
                fprintf(f, "%s%.6f", i ? ", " : "", inf[i]);
            fprintf(f, "], \"infer_images_per_s\": %.6f,\n \"pool_peak_reserved\": %zu, \"pool_free_at_peak\": %zu, "
                       "\"pool_peak_in_use\": %zu, \"pool_at_peak\": {",
                    ips, ps.peak_bytes_reserved, ps.free_at_peak_reserved, ps.peak_bytes_in_use);
            for (int k = 0; k < CLSYNTH_POOL_KINDS; k++)
                fprintf(f, "%s\"%s\": %zu", k ? ", " : "", clsynth_pool_kind_name((clsynth_pool_kind)k),
                        ps.kind_at_peak[k]);
            fprintf(f, "},\n \"rss_peak\": %zu, \"rss_end\": %zu}\n", hwm, rss);
            if (fclose(f)) {
                fprintf(stderr, "clsynth bench step: writing %s: %s\n", json, strerror(errno));
                ok = 0;
            }
        }
    }
    free(st);
    free(cpu);
    free(inf);
    clsynth_workload_free(ctx, &wl);
    rc = ok ? 0 : 1;
done:
    ctx->release_hook = NULL;
    if (cen)
        free(cen->buf);
    free(cen);
    clsynth_ctx_free(ctx);
out:
    free(model_argv);
    return rc;
}
