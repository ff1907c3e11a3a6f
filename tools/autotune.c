/* Tuning the recorded (kernel, shape) jobs: CLBlast's GEMM first (its speed
 * decides between the conv algorithms), then every job, within one budget
 * (see tools/autotune.h). */
#include "tools/autotune.h"

#include <stdlib.h>
#include <string.h>

#include "clcore/clblast_tune.h"
#include "clcore/kdefs.h"
#include "clcore/tensor.h"
#include "clcore/tunedb.h"
#include "clcore/tuner.h"
#include "tools/clblast_worker.h"

void clsynth_autotune_opts_default(clsynth_autotune_opts *o)
{
    memset(o, 0, sizeof *o);
    o->budget_s = 600;
    o->started_s = clsynth_now_s();
    o->clblast_share = 0.35f;
    o->repeats = 5;
    o->out = stdout;
}

typedef struct bar {
    bool tty;
    double budget;
} bar;

static void progress(void *user, const clsynth_tune_progress *p)
{
    bar *b = user;
    const clsynth_tune_result *r = p->r;
    int width = 30, fill = p->jobs ? (int)((double)(p->job + (p->job_done ? 1 : 0)) / (double)p->jobs * width) : 0;
    char line[400];
    char barbuf[40];
    for (int i = 0; i < width; i++)
        barbuf[i] = i < fill ? '#' : '.';
    barbuf[width] = 0;
    if (p->job_done) {
        const char *st = r->status == CLSYNTH_TUNE_TUNED ? "tuned" : r->status == CLSYNTH_TUNE_DEFAULT_BEST ? "default"
                       : r->status == CLSYNTH_TUNE_ALREADY ? "done before" : r->status == CLSYNTH_TUNE_NO_TIME
                       ? "no time" : "FAILED";
        if ((r->status == CLSYNTH_TUNE_ALREADY || r->status == CLSYNTH_TUNE_NO_TIME) && !b->tty)
            return; /* a resumed run, the budget's end: one summary line says how many */
        snprintf(line, sizeof line, "[%s] %zu/%zu %-22s %-34s %-11s %8.3f -> %8.3f ms %s", barbuf, p->job + 1,
                 p->jobs, p->j->def->key, p->j->shape, st, r->default_ms, r->best_ms,
                 r->status == CLSYNTH_TUNE_FAILED ? r->note : r->best_desc);
        fprintf(stderr, "%s%s\n", b->tty ? "\r\033[K" : "", line);
    } else if (b->tty) {
        snprintf(line, sizeof line, "[%s] %zu/%zu %s %s: candidate %d/%d, %.0f/%.0f s", barbuf, p->job + 1, p->jobs,
                 p->j->def->key, p->j->shape, p->candidate, p->candidates, p->elapsed_s, b->budget);
        fprintf(stderr, "\r\033[K%s", line);
    }
}

/* CLBlast's parameters for the GEMM shapes of the recorded convs, unless stored. */
static void tune_clblast(clsynth_ctx *ctx, const clsynth_autotune_opts *o, const clsynth_tune_job *jobs, size_t njobs,
                         double left)
{
    clsynth_gemm_shape shapes[256];
    size_t ns = 0;
    for (size_t j = 0; j < njobs; j++)
        if (jobs[j].def == &clsynth_kdef_conv2d)
            ns = clsynth_conv_gemm_shapes(jobs[j].shape, (double)(jobs[j].uses ? jobs[j].uses : 1), shapes, ns,
                                          sizeof shapes / sizeof shapes[0]);
    clsynth_clblast_params have;
    if (!ns)
        return;
    if (!o->retune && clsynth_clblast_stored(ctx, &have)) {
        fprintf(o->out, "CLBlast GEMM: tuned before (use --retune to redo)\n");
        return;
    }
    if (left <= 60) {
        fprintf(o->out, "CLBlast GEMM: skipped (budget)\n");
        return;
    }
    clsynth_clblast_tune_opts co;
    memset(&co, 0, sizeof co);
    co.budget_s = left * o->clblast_share;
    co.repeats = 3;
    co.max_shapes = 24;
    co.verbose = true;
    static const char *const wargv[] = { "tune", "--clblast-worker" };
    clsynth_clblast_worker worker = { NULL, wargv, 2, 0, 0 };
    co.measure = clsynth_clblast_measure_in_worker;
    co.user = &worker;
    clsynth_clblast_tune_result cr;
    fprintf(o->out, "CLBlast GEMM: searching Xgemm / XgemmDirect parameters over %zu GEMM shapes (%.0f s)...\n",
            ns < 24 ? ns : 24, co.budget_s);
    fflush(o->out);
    if (clsynth_clblast_tune(ctx, shapes, ns, &co, &cr)) {
        fprintf(stderr, "clsynth: CLBlast tuning failed: %s\n", ctx->err.msg);
        clsynth_ctx_clear_error(ctx);
        return;
    }
    fprintf(o->out, "CLBlast GEMM: default %.3f ms, tuned %.3f ms (%d candidates, %d failed)%s\n", cr.default_ms,
            cr.tuned_ms, cr.tried, cr.failed, cr.improved ? ": stored" : ": default kept");
    if (cr.improved) {
        clsynth_tunedb_save(ctx, NULL);
        clsynth_tunedb_apply_clblast(ctx);
    }
}

/* whether key is one of the comma-separated list */
static bool listed(const char *list, const char *key)
{
    const size_t len = strlen(key);
    for (const char *p = list; *p;) {
        const size_t n = strcspn(p, ",");
        if (n == len && strncmp(p, key, n) == 0)
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}

int clsynth_autotune_recorded(clsynth_ctx *ctx, const clsynth_autotune_opts *o)
{
    clsynth_tune_job *jobs = NULL;
    size_t njobs = 0, unknown = 0;
    if (clsynth_tune_jobs_from_recorded(ctx, &jobs, &njobs, &unknown))
        return -1;
    if (o->kernels) {
        size_t kept = 0;
        for (size_t j = 0; j < njobs; j++)
            if (listed(o->kernels, jobs[j].def->key))
                jobs[kept++] = jobs[j];
        njobs = kept;
    }
    fprintf(o->out, "%zu (kernel, shape) jobs to tune (%zu looked-up keys have no tuner harness); %.1f s of the "
                    "budget used so far\n",
            njobs, unknown, clsynth_now_s() - o->started_s);
    if (!o->no_clblast)
        tune_clblast(ctx, o, jobs, njobs, o->budget_s - (clsynth_now_s() - o->started_s));

    clsynth_tune_opts to;
    clsynth_tune_opts_default(&to);
    to.budget_s = o->budget_s - (clsynth_now_s() - o->started_s);
    if (to.budget_s < 1)
        to.budget_s = 1;
    to.repeats = o->repeats;
    to.retune = o->retune;
    bar b = { o->progress_bar, to.budget_s };
    to.progress = progress;
    to.user = &b;
    clsynth_tune_result *res = calloc(njobs ? njobs : 1, sizeof *res);
    if (!res) {
        free(jobs);
        return clsynth_ctx_fail(ctx, "out of host memory");
    }
    int trc = clsynth_tune_run(ctx, jobs, njobs, &to, res);
    int counts[6] = { 0 };
    double sum_def = 0, sum_best = 0;
    for (size_t j = 0; j < njobs; j++) {
        counts[res[j].status]++;
        if (res[j].status == CLSYNTH_TUNE_TUNED || res[j].status == CLSYNTH_TUNE_DEFAULT_BEST) {
            sum_def += res[j].default_ms * (double)(jobs[j].uses ? jobs[j].uses : 1);
            sum_best += res[j].best_ms * (double)(jobs[j].uses ? jobs[j].uses : 1);
        }
    }
    char path[800];
    clsynth_tunedb_path(ctx, path, sizeof path);
    fprintf(o->out, "%d tuned, %d kept their default, %d done before, %d out of time, %d failed, in %.0f s (budget "
                    "%.0f s)\n",
            counts[CLSYNTH_TUNE_TUNED], counts[CLSYNTH_TUNE_DEFAULT_BEST], counts[CLSYNTH_TUNE_ALREADY],
            counts[CLSYNTH_TUNE_NO_TIME], counts[CLSYNTH_TUNE_FAILED], clsynth_now_s() - o->started_s, o->budget_s);
    if (sum_def > 0)
        fprintf(o->out, "tuned jobs, per-op time summed as the step runs them: %.2f ms -> %.2f ms (%.2fx)\n", sum_def,
                sum_best, sum_def / sum_best);
    fprintf(o->out, "database: %s\n", path);
    fflush(o->out);
    free(res);
    free(jobs);
    return trc;
}

void clsynth_autotune_first_step_begin(clsynth_ctx *ctx)
{
    clsynth_tunedb_recorded_clear(ctx);
    clsynth_tunedb_record(ctx, true);
}

void clsynth_autotune_first_step_end(clsynth_ctx *ctx, double budget_s, double *spent_s)
{
    double t0 = clsynth_now_s();
    clsynth_tunedb_record(ctx, false);
    clsynth_autotune_opts o;
    clsynth_autotune_opts_default(&o);
    o.budget_s = budget_s;
    o.started_s = t0;
    printf("--autotune %.0f: tuning the shapes of the first iteration\n", budget_s);
    fflush(stdout);
    if (clsynth_autotune_recorded(ctx, &o)) {
        fprintf(stderr, "clsynth train: --autotune: %s; training goes on with what was tuned\n", ctx->err.msg);
        clsynth_ctx_clear_error(ctx);
    }
    clsynth_tunedb_recorded_clear(ctx);
    clsynth_pool_trim(ctx); /* the tuner's inputs; the next step takes its own blocks again */
    *spent_s = clsynth_now_s() - t0;
    printf("--autotune: %.1f s (not counted in the iteration times)\n", *spent_s);
    fflush(stdout);
}

int clsynth_mpi_world_size(void)
{
    static const char *const vars[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE" }; /* Open MPI; MPICH, Intel MPI, srun */
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) {
            int n = atoi(v);
            if (n > 1)
                return n;
        }
    }
    return 1;
}
