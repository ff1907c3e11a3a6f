/* `mpirun -np 2 clsynth train` against `clsynth train` on one process, on a
 * tiny synthetic dataset (8 scenes, 64x64, tiny networks), through the whole
 * tool path: MPI, shards of each global batch, gradient averaging,
 * synchronized batch norm, rank 0's run folder, resume, failures.
 *
 * Equivalence is checked step by step from one state with the rule of
 * tests/step_compare.h (why not "every parameter within 1e-5 after N steps":
 * see there): 2 ranks x batch 1 against 1 process x batch 2
 *   - with synchronized batch norm in G and D: after step 1 from the same
 *     initialization, and after step 2 when the one-process run resumes from
 *     the 2-rank run's step-1 checkpoint (resume across world sizes), every
 *     buffer (running statistics, spectral-norm u and v) and the logged losses
 *     included; G's running means at --lr 0 (a step is G's step, then D's on
 *     the updated G, whose forward updates G's running statistics again:
 *     biases that feed only normalizations, exempt by the step rule, shift
 *     those means by momentum x their +-lr noise steps; tests/test_data_parallel.c);
 *   - with instance norm only: after step 1;
 *   - with per-rank batch norm: equals 1 x 2 with instance norm (one sample's
 *     batch statistics are its instance statistics; SPADE generator, whose
 *     norm has no parameters) and differs from 1 x 2 with batch norm;
 *   - a 2-rank run resumed after step 1 ends bit-identical to an
 *     uninterrupted one;
 *   - rank 0 alone prints and writes, world.txt records the processes.
 * Run safety (rank 0 takes the decisions, every rank follows):
 *   - training into a run without --continue_train is refused once, with
 *     rank 0's message; every rank exits with 1, nothing is trained or changed;
 *   - --overwrite moves the old run aside once;
 *   - a resume whose latest.ckpt is damaged falls back to the newest numbered
 *     checkpoint on every rank: the run ends bit-identical to an
 *     uninterrupted one, losses.csv rows 1..3 once each.
 * Failures:
 *   - rank 1 killed (SIGKILL) mid-run: mpirun ends rank 0 within seconds and
 *     names rank 1 and the signal; the latest checkpoint loads;
 *   - rank 1 failing (a device that does not exist): every rank stops with a
 *     message naming rank 1 and the cause;
 *   - SIGTERM to rank 1 only: every rank stops at the same iteration, rank 0
 *     saves that iteration, exit status 128 + 15;
 *   - commands that do not run data-parallel refuse an MPI launch, `bench
 *     checkpoint` included.
 *
 * Skipped (exit status 77) when clsynth is built without MPI or no mpirun is
 * found. mpirun runs with --allow-run-as-root --oversubscribe. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clcore/params.h"
#include "nets/model.h"
#include "cliutil.h"
#include "step_compare.h"
#include "testutil.h"

static char bin[PATH_MAX], mpirun[PATH_MAX];

#define COMMON                                                                                                       \
    "--dataroot mpi_test/data --checkpoints_dir mpi_test/ck --preset tiny --crop_size 64 --ngf 4 --ndf 4 "          \
    "--nef 4 --nhidden 8 --no_vgg_loss --seed 5 --display_freq 1000000 --print_freq 1 --save_latest_freq 1"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void pause_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    nanosleep(&ts, NULL);
}

static int sh(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs `clsynth train COMMON <args>` (ranks > 1: under mpirun) into log; returns the exit status. */
static int train(int ranks, const char *args, const char *log)
{
    char cmd[4 * PATH_MAX];
    if (ranks > 1)
        snprintf(cmd, sizeof cmd, "'%s' --allow-run-as-root --oversubscribe -np %d '%s' train " COMMON " %s > %s 2>&1",
                 mpirun, ranks, bin, args, log);
    else
        snprintf(cmd, sizeof cmd, "'%s' train " COMMON " %s > %s 2>&1", bin, args, log);
    return sh(cmd);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = calloc((size_t)n + 1, 1);
    ck_assert_ptr_nonnull(b);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = 0;
    fclose(f);
    return b;
}

static void assert_ran(int rc, const char *what, const char *log)
{
    if (rc != 0) {
        char *t = slurp(log);
        ck_abort_msg("%s exited with %d:\n%s", what, rc, t);
    }
}

/* ---- checkpoints as host arrays ---- */

typedef struct run_state {
    clsynth_ctx *ctx;
    clsynth_model *m;
    clsynth_test_net_state net[2]; /* G, D */
    float *buffers[2];             /* every buffer of G and D, concatenated */
    size_t n_buffers[2];
    uint64_t step;
} run_state;

static void load_state(clsynth_ctx *ctx, const char *path, run_state *s)
{
    memset(s, 0, sizeof *s);
    s->ctx = ctx;
    clsynth_options o;
    clsynth_err err;
    ck_assert_msg(clsynth_model_checkpoint_options(path, &o, &err) == 0, "%s", err.msg);
    s->m = clsynth_model_create(ctx, &o, &err);
    ck_assert_msg(s->m != NULL, "%s: %s", path, err.msg);
    ck_assert_msg(clsynth_model_load(ctx, s->m, path, &s->step, NULL, NULL, &err) == 0, "%s", err.msg);
    const char *which[2] = { "G", "D" };
    for (int i = 0; i < 2; i++) {
        clsynth_param_group *g = clsynth_model_group(s->m, which[i]);
        ck_assert_msg(clsynth_test_net_state_get(ctx, g, &s->net[i]) == 0, "%s", ctx->err.msg);
        for (int b = 0; b < g->n_buffers; b++)
            s->n_buffers[i] += g->buffers[b]->numel;
        s->buffers[i] = malloc((s->n_buffers[i] + 1) * sizeof(float));
        size_t at = 0;
        for (int b = 0; b < g->n_buffers; b++) {
            ck_assert_int_eq(clsynth_tensor_download(ctx, g->buffers[b], s->buffers[i] + at), 0);
            at += g->buffers[b]->numel;
        }
    }
}

static void free_state(run_state *s)
{
    for (int i = 0; i < 2; i++) {
        clsynth_test_net_state_free(&s->net[i]);
        free(s->buffers[i]);
    }
    clsynth_model_free(s->ctx, s->m);
}

/* Which buffers assert_same_step compares (within 1e-5 + 1e-4 |ref|). */
typedef enum { BUFFERS_NONE, BUFFERS_ALL, BUFFERS_BUT_G_MEANS } buffers_rule;

static bool is_g_running_mean(const char *name)
{
    size_t n = strlen(name), k = strlen(".running_mean");
    return strncmp(name, "G.", 2) == 0 && n >= k && strcmp(name + n - k, ".running_mean") == 0;
}

/* a matches ref by the step rule (G and D) and in the buffers of rule. */
static void assert_same_step(const char *what, const run_state *a, const run_state *ref, buffers_rule rule)
{
    char msg[1024];
    size_t ex[2];
    for (int i = 0; i < 2; i++)
        ck_assert_msg(clsynth_test_same_step(i ? "D" : "G", &a->net[i], &ref->net[i], &ex[i], msg, sizeof msg) == 0,
                      "%s: %s", what, msg);
    printf("%s: same step (%zu of G, %zu of D exempt: noise gradients)\n", what, ex[0], ex[1]);
    const char *which[2] = { "G", "D" };
    for (int i = 0; rule != BUFFERS_NONE && i < 2; i++) {
        ck_assert_int_eq(a->n_buffers[i], ref->n_buffers[i]);
        const clsynth_param_group *g = clsynth_model_group(a->m, which[i]);
        size_t at = 0;
        for (int b = 0; b < g->n_buffers; b++) {
            const clsynth_tensor *t = g->buffers[b];
            if (!(rule == BUFFERS_BUT_G_MEANS && is_g_running_mean(t->name))) {
                char w[512];
                snprintf(w, sizeof w, "%s: %s", what, t->name);
                clsynth_test_assert_close(w, a->buffers[i] + at, ref->buffers[i] + at, t->numel, 1e-5, 1e-4);
            }
            at += t->numel;
        }
    }
}

static void assert_identical(const char *what, const run_state *a, const run_state *b)
{
    for (int i = 0; i < 2; i++) {
        const clsynth_test_net_state *x = &a->net[i], *y = &b->net[i];
        ck_assert_msg(x->n == y->n && memcmp(x->p, y->p, x->n * sizeof(float)) == 0 &&
                          memcmp(x->m, y->m, x->n * sizeof(float)) == 0 && memcmp(x->v, y->v, x->n * sizeof(float)) == 0,
                      "%s: %s parameters or Adam moments differ", what, i ? "D" : "G");
        ck_assert_msg(a->n_buffers[i] == b->n_buffers[i] &&
                          memcmp(a->buffers[i], b->buffers[i], a->n_buffers[i] * sizeof(float)) == 0,
                      "%s: %s buffers differ", what, i ? "D" : "G");
    }
}

/* Row `iteration` of a losses.csv: the six losses. */
static void losses_row(const char *csv, int iteration, double out[6])
{
    char *t = slurp(csv);
    char *line = strchr(t, '\n');
    for (; line && *line; line = strchr(line + 1, '\n')) {
        int it, ep;
        double sec;
        if (sscanf(line + 1, "%d,%d,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &it, &ep, &sec, &out[0], &out[1], &out[2], &out[3],
                   &out[4], &out[5]) == 9 &&
            it == iteration) {
            free(t);
            return;
        }
    }
    free(t);
    ck_abort_msg("%s has no row for iteration %d", csv, iteration);
}

static void copy_file(const char *from, const char *to)
{
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\" && cp '%s' '%s'", to, from, to);
    ck_assert_int_eq(sh(cmd), 0);
}

static clsynth_ctx *ctx;

static void setup(void) { ctx = clsynth_test_ctx(); }
static void teardown(void)
{
    clsynth_ctx_free(ctx);
    ctx = NULL;
}

/* ---- equivalence ---- */

/* 2 ranks x 1 for two steps, 1 x 2 for one step and 1 x 2 resumed from the
 * 2-rank step-1 checkpoint for the second, at extra options `more`, into runs
 * <tag>2, <tag>1 and <tag>1r; compares steps 1 and 2 with rule. */
static void sync_two_steps(const char *tag, const char *more, buffers_rule rule)
{
    const char *norms = "--norm_G spectralspadesyncbatch3x3 --norm_D spectralsyncbatch";
    char args[512], log[128], what[128], from[128], to[128];
    snprintf(args, sizeof args, "%s %s --batchSize 1 --max_iters 2 --name %s2", norms, more, tag);
    snprintf(log, sizeof log, "mpi_test/%s2.log", tag);
    assert_ran(train(2, args, log), "2 ranks", log);
    snprintf(args, sizeof args, "%s %s --batchSize 2 --max_iters 1 --name %s1", norms, more, tag);
    snprintf(log, sizeof log, "mpi_test/%s1.log", tag);
    assert_ran(train(1, args, log), "1 process", log);
    /* the one process continues from the 2 ranks' step 1 */
    snprintf(from, sizeof from, "mpi_test/ck/%s2/iter_0000001.ckpt", tag);
    snprintf(to, sizeof to, "mpi_test/ck/%s1r/latest.ckpt", tag);
    copy_file(from, to);
    snprintf(args, sizeof args, "%s %s --batchSize 2 --max_iters 2 --name %s1r --continue_train", norms, more, tag);
    snprintf(log, sizeof log, "mpi_test/%s1r.log", tag);
    assert_ran(train(1, args, log), "1 process resumed", log);

    run_state two1, two2, one1, one2;
    load_state(ctx, from, &two1);
    snprintf(from, sizeof from, "mpi_test/ck/%s1/iter_0000001.ckpt", tag);
    load_state(ctx, from, &one1);
    snprintf(what, sizeof what, "sync batch norm%s%s, step 1", *more ? " " : "", more);
    assert_same_step(what, &two1, &one1, rule);
    snprintf(from, sizeof from, "mpi_test/ck/%s2/iter_0000002.ckpt", tag);
    load_state(ctx, from, &two2);
    snprintf(from, sizeof from, "mpi_test/ck/%s1r/iter_0000002.ckpt", tag);
    load_state(ctx, from, &one2);
    ck_assert(two2.step == 2 && one2.step == 2);
    snprintf(what, sizeof what, "sync batch norm%s%s, step 2 from the 2-rank checkpoint", *more ? " " : "", more);
    assert_same_step(what, &two2, &one2, rule);
    free_state(&two1);
    free_state(&two2);
    free_state(&one1);
    free_state(&one2);
}

START_TEST(sync_batch_norm_two_ranks_equal_one_process_step_by_step_and_across_resume)
{
    sync_two_steps("sync", "", BUFFERS_BUT_G_MEANS);
    double l2[6], l1[6];
    losses_row("mpi_test/ck/sync2/losses.csv", 1, l2);
    losses_row("mpi_test/ck/sync1/losses.csv", 1, l1);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(fabs(l2[i] - l1[i]) <= 1e-5 + 1e-4 * fabs(l1[i]), "logged loss %d: %g on 2 ranks, %g on one",
                      i, l2[i], l1[i]);
    /* rank 0 alone prints: one progress line per iteration, one parameter line */
    char *log = slurp("mpi_test/sync2.log");
    int progress = 0, params = 0;
    for (char *p = log; (p = strstr(p, "] it 1/")); p++)
        progress++;
    for (char *p = log; (p = strstr(p, "parameters: G")); p++)
        params++;
    ck_assert_msg(progress == 1 && params == 1, "%d progress lines for iteration 1 and %d parameter lines:\n%s",
                  progress, params, log);
    free(log);
    char *world = slurp("mpi_test/ck/sync2/world.txt");
    ck_assert_msg(strstr(world, "world_size=2\n") && strstr(world, "global_batch=2\n") && strstr(world, "rank1_device="),
                  "world.txt:\n%s", world);
    free(world);
}
END_TEST

/* Both D steps on the same G: every buffer, G's running means too. */
START_TEST(sync_batch_norm_at_lr_0_every_buffer_equal_step_by_step)
{
    sync_two_steps("synclr0", "--lr 0", BUFFERS_ALL);
}
END_TEST

START_TEST(instance_norm_two_ranks_equal_one_process)
{
    const char *norms = "--norm_G spectralspadeinstance3x3 --norm_D spectralinstance --max_iters 1";
    char args[512];
    snprintf(args, sizeof args, "%s --batchSize 1 --name inst2", norms);
    assert_ran(train(2, args, "mpi_test/inst2.log"), "2 ranks", "mpi_test/inst2.log");
    snprintf(args, sizeof args, "%s --batchSize 2 --name inst1", norms);
    assert_ran(train(1, args, "mpi_test/inst1.log"), "1 process", "mpi_test/inst1.log");
    run_state a, b;
    load_state(ctx, "mpi_test/ck/inst2/latest.ckpt", &a);
    load_state(ctx, "mpi_test/ck/inst1/latest.ckpt", &b);
    assert_same_step("instance norm", &a, &b, BUFFERS_ALL);
    free_state(&a);
    free_state(&b);
}
END_TEST

START_TEST(per_rank_batch_norm_is_each_ranks_own)
{
    /* --lr 0: D's step then sees the same G in both runs. With the default lr, G's first Adam
     * step is lr * sign(g) for every weight, also for those whose gradients are at rounding
     * level, and those signs differ between the runs; D's hinge terms near their kink then flip
     * on the changed fake (D.enc1's gradient was seen 5 % off on one machine, no op wrong).
     * test_data_parallel's one-process version of this case runs at --lr 0 for the same reason. */
    const char *common = "--netG spade --norm_D spectralinstance --max_iters 1 --lr 0";
    char args[512];
    snprintf(args, sizeof args, "%s --norm_G spadebatch3x3 --batchSize 1 --name bn2", common);
    assert_ran(train(2, args, "mpi_test/bn2.log"), "2 ranks", "mpi_test/bn2.log");
    snprintf(args, sizeof args, "%s --norm_G spadeinstance3x3 --batchSize 2 --name bn1i", common);
    assert_ran(train(1, args, "mpi_test/bn1i.log"), "1 process, instance norm", "mpi_test/bn1i.log");
    snprintf(args, sizeof args, "%s --norm_G spadebatch3x3 --batchSize 2 --name bn1b", common);
    assert_ran(train(1, args, "mpi_test/bn1b.log"), "1 process, batch norm", "mpi_test/bn1b.log");
    run_state a, inst, bn;
    load_state(ctx, "mpi_test/ck/bn2/latest.ckpt", &a);
    load_state(ctx, "mpi_test/ck/bn1i/latest.ckpt", &inst);
    load_state(ctx, "mpi_test/ck/bn1b/latest.ckpt", &bn);
    assert_same_step("per-rank batch norm of one sample vs instance norm", &a, &inst, BUFFERS_NONE);
    char msg[1024];
    ck_assert_msg(clsynth_test_same_step("G", &a.net[0], &bn.net[0], NULL, msg, sizeof msg) != 0,
                  "per-rank batch norm matched batch norm of the global batch");
    free_state(&a);
    free_state(&inst);
    free_state(&bn);
}
END_TEST

START_TEST(resumed_two_rank_run_is_bit_identical_to_an_uninterrupted_one)
{
    const char *norms = "--norm_G spectralspadesyncbatch3x3 --norm_D spectralsyncbatch --batchSize 1";
    char args[512];
    snprintf(args, sizeof args, "%s --max_iters 2 --name whole", norms);
    assert_ran(train(2, args, "mpi_test/whole.log"), "uninterrupted", "mpi_test/whole.log");
    snprintf(args, sizeof args, "%s --max_iters 1 --name parts", norms);
    assert_ran(train(2, args, "mpi_test/parts1.log"), "first part", "mpi_test/parts1.log");
    snprintf(args, sizeof args, "%s --max_iters 2 --name parts --continue_train", norms);
    assert_ran(train(2, args, "mpi_test/parts2.log"), "resumed part", "mpi_test/parts2.log");
    char *log = slurp("mpi_test/parts2.log");
    ck_assert_msg(strstr(log, "resuming from mpi_test/ck/parts/latest.ckpt at iteration 1"), "%s", log);
    free(log);
    run_state a, b;
    load_state(ctx, "mpi_test/ck/whole/latest.ckpt", &a);
    load_state(ctx, "mpi_test/ck/parts/latest.ckpt", &b);
    assert_identical("resumed 2-rank run", &b, &a);
    free_state(&a);
    free_state(&b);
}
END_TEST

/* ---- run safety: rank 0 decides, every rank follows ---- */

static int count_of(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* `mpirun -np 2 sh -c 'clsynth train COMMON <args>; echo "rank R exit S"'`
 * into log: the line of each rank says how its clsynth ended. */
static int train_each_rank_reporting(const char *args, const char *log)
{
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "'%s' --allow-run-as-root --oversubscribe -np 2 sh -c \"'%s' train " COMMON " %s; "
             "echo rank \\$OMPI_COMM_WORLD_RANK exit \\$?\" > %s 2>&1",
             mpirun, bin, args, log);
    return sh(cmd);
}

START_TEST(existing_run_without_continue_train_is_refused_once_and_every_rank_exits_non_zero)
{
    assert_ran(train(2, "--batchSize 1 --max_iters 2 --name kept", "mpi_test/kept1.log"), "first run",
               "mpi_test/kept1.log");
    char *before = slurp("mpi_test/ck/kept/losses.csv");
    train_each_rank_reporting("--batchSize 1 --max_iters 4 --name kept", "mpi_test/kept2.log");
    char *log = slurp("mpi_test/kept2.log");
    ck_assert_msg(count_of(log, "already holds a training run") == 1 &&
                      strstr(log, "clsynth train: rank 0 of 2: mpi_test/ck/kept already holds a training run"),
                  "rank 0's refusal is not there exactly once:\n%s", log);
    ck_assert_msg(strstr(log, "rank 0 exit 1\n") && strstr(log, "rank 1 exit 1\n"), "not every rank exited with 1:\n%s",
                  log);
    ck_assert_msg(!strstr(log, "MPI_ABORT") && !strstr(log, "] it 1/"), "the job was aborted or trained:\n%s", log);
    char *after = slurp("mpi_test/ck/kept/losses.csv");
    ck_assert_msg(strcmp(before, after) == 0, "losses.csv changed:\n%s", after);
    ck_assert_msg(access("mpi_test/ck/kept/iter_0000003.ckpt", F_OK) != 0, "the refused run saved a checkpoint");
    run_state s;
    load_state(ctx, "mpi_test/ck/kept/latest.ckpt", &s);
    ck_assert(s.step == 2);
    free_state(&s);
    free(before);
    free(after);
    free(log);
}
END_TEST

START_TEST(overwrite_moves_the_old_run_aside_once)
{
    assert_ran(train(2, "--batchSize 1 --max_iters 1 --name over", "mpi_test/over1.log"), "first run",
               "mpi_test/over1.log");
    assert_ran(train(2, "--batchSize 1 --max_iters 1 --name over --overwrite", "mpi_test/over2.log"), "overwrite",
               "mpi_test/over2.log");
    char *log = slurp("mpi_test/over2.log");
    ck_assert_msg(count_of(log, "--overwrite: moved the previous run") == 1, "%s", log);
    free(log);
    ck_assert_int_eq(sh("test $(ls -d mpi_test/ck/over.old-* | wc -l) -eq 1 && "
                        "test -f mpi_test/ck/over.old-*/iter_0000001.ckpt && test -f mpi_test/ck/over/latest.ckpt"),
                     0);
}
END_TEST

START_TEST(resume_falls_back_from_a_damaged_latest_and_every_rank_resumes_from_that_step)
{
    const char *norms = "--norm_G spectralspadesyncbatch3x3 --norm_D spectralsyncbatch --batchSize 1";
    char args[512];
    snprintf(args, sizeof args, "%s --max_iters 3 --name fbwhole", norms);
    assert_ran(train(2, args, "mpi_test/fbwhole.log"), "uninterrupted", "mpi_test/fbwhole.log");
    snprintf(args, sizeof args, "%s --max_iters 2 --name fb", norms);
    assert_ran(train(2, args, "mpi_test/fb1.log"), "first part", "mpi_test/fb1.log");
    /* a latest.ckpt cut short (its own file: iter_0000002.ckpt stays whole) */
    ck_assert_int_eq(sh("head -c 4096 mpi_test/ck/fb/latest.ckpt > mpi_test/ck/fb/cut && "
                        "mv mpi_test/ck/fb/cut mpi_test/ck/fb/latest.ckpt"),
                     0);
    snprintf(args, sizeof args, "%s --max_iters 3 --name fb --continue_train", norms);
    assert_ran(train(2, args, "mpi_test/fb2.log"), "resumed part", "mpi_test/fb2.log");
    char *log = slurp("mpi_test/fb2.log");
    ck_assert_msg(count_of(log, "latest.ckpt was skipped") == 1 &&
                      count_of(log, "resuming from mpi_test/ck/fb/iter_0000002.ckpt at iteration 2") == 1 &&
                      count_of(log, "] it 3/3") == 1 && !strstr(log, "] it 1/"),
                  "%s", log);
    free(log);
    char why[256];
    ck_assert_msg(clsynth_test_csv_rows("mpi_test/ck/fb/losses.csv", why, sizeof why) == 3, "losses.csv: %s", why);
    run_state a, b;
    load_state(ctx, "mpi_test/ck/fbwhole/latest.ckpt", &a);
    load_state(ctx, "mpi_test/ck/fb/latest.ckpt", &b);
    ck_assert(b.step == 3);
    /* a rank that had started anywhere else would have drawn other samples */
    assert_identical("2-rank run resumed from iter_0000002.ckpt", &b, &a);
    free_state(&a);
    free_state(&b);
}
END_TEST

/* ---- failures ---- */

/* Starts `mpirun -np 2 clsynth train ...` in the background with output to log. */
static pid_t start_job(const char *args, const char *log)
{
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "exec '%s' --allow-run-as-root --oversubscribe -np 2 '%s' train " COMMON " %s > %s 2>&1",
             mpirun, bin, args, log);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* pid of rank r from its "rank r of 2 (local ..., pid P)" line, waiting up to 120 s. */
static pid_t rank_pid(const char *log, int r)
{
    char key[64];
    snprintf(key, sizeof key, "rank %d of 2 (local", r);
    for (double t0 = now_s(); now_s() - t0 < 120; pause_s(0.1)) {
        char *t = slurp(log), *p = strstr(t, key);
        if (p && (p = strstr(p, "pid "))) {
            pid_t pid = (pid_t)atol(p + 4);
            free(t);
            return pid;
        }
        free(t);
    }
    ck_abort_msg("no line for rank %d in %s", r, log);
    return -1;
}

static void wait_for_file(const char *path, double timeout)
{
    for (double t0 = now_s(); now_s() - t0 < timeout; pause_s(0.1))
        if (access(path, F_OK) == 0)
            return;
    ck_abort_msg("%s did not appear within %.0f s", path, timeout);
}

/* Waits for pid up to timeout seconds; returns its wait status, or -1 (then kills it). */
static int wait_job(pid_t pid, double timeout, double *took)
{
    double t0 = now_s();
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            *took = now_s() - t0;
            return st;
        }
        if (now_s() - t0 > timeout) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            *took = now_s() - t0;
            return -1;
        }
        pause_s(0.05);
    }
}

START_TEST(killed_rank_ends_the_job_within_seconds_and_the_checkpoint_loads)
{
    pid_t job = start_job("--batchSize 1 --max_iters 100000 --name killed", "mpi_test/killed.log");
    pid_t r1 = rank_pid("mpi_test/killed.log", 1);
    wait_for_file("mpi_test/ck/killed/iter_0000002.ckpt", 180);
    ck_assert_int_eq(kill(r1, SIGKILL), 0);
    double took;
    int st = wait_job(job, 30, &took);
    char *log = slurp("mpi_test/killed.log");
    ck_assert_msg(st != -1, "the job was still running %.0f s after rank 1 was killed:\n%s", took, log);
    ck_assert_msg(took < 10, "the job took %.1f s to end after rank 1 was killed", took);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 0, "mpirun exited with %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    ck_assert_msg(strstr(log, "rank 1") && strstr(log, "signal 9"), "the output does not name rank 1 and signal 9:\n%s",
                  log);
    printf("rank 1 killed: mpirun ended %.2f s later\n", took);
    free(log);
    run_state s;
    load_state(ctx, "mpi_test/ck/killed/latest.ckpt", &s);
    ck_assert(s.step >= 2);
    free_state(&s);
}
END_TEST

START_TEST(failing_rank_stops_every_rank_naming_itself_and_the_cause)
{
    double t0 = now_s();
    int rc = train(2, "--batchSize 1 --max_iters 3 --device 0,no-such-device --name failing", "mpi_test/failing.log");
    double took = now_s() - t0;
    char *log = slurp("mpi_test/failing.log");
    ck_assert_msg(rc != 0, "the job succeeded:\n%s", log);
    ck_assert_msg(strstr(log, "rank 1 of 2") && strstr(log, "no-such-device") && strstr(log, "stops every rank"),
                  "the output does not name rank 1 and the cause:\n%s", log);
    ck_assert_msg(took < 60, "the job took %.0f s to stop", took);
    ck_assert_msg(access("mpi_test/ck/failing/latest.ckpt", F_OK) != 0, "a checkpoint was written");
    free(log);
}
END_TEST

START_TEST(other_commands_refuse_to_run_as_several_processes)
{
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "'%s' --allow-run-as-root --oversubscribe -np 2 '%s' devices > mpi_test/devices.log 2>&1",
             mpirun, bin);
    int rc = sh(cmd);
    char *log = slurp("mpi_test/devices.log");
    ck_assert_msg(rc != 0 && strstr(log, "only 'train' and 'bench train' run data-parallel"), "%s", log);
    free(log);
}
END_TEST

START_TEST(checkpoint_benchmark_refuses_to_run_as_several_processes)
{
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "'%s' --allow-run-as-root --oversubscribe -np 2 '%s' bench checkpoint --dir mpi_test/bench "
             "> mpi_test/bench.log 2>&1",
             mpirun, bin);
    int rc = sh(cmd);
    char *log = slurp("mpi_test/bench.log");
    ck_assert_msg(rc != 0 && strstr(log, "the checkpoint benchmark is one process"), "%s", log);
    ck_assert_msg(access("mpi_test/bench", F_OK) != 0, "the benchmark wrote into --dir:\n%s", log);
    free(log);
}
END_TEST

START_TEST(sigterm_to_one_rank_stops_every_rank_after_saving)
{
    pid_t job = start_job("--batchSize 1 --max_iters 100000 --name termed", "mpi_test/termed.log");
    pid_t r1 = rank_pid("mpi_test/termed.log", 1);
    wait_for_file("mpi_test/ck/termed/iter_0000002.ckpt", 180);
    ck_assert_int_eq(kill(r1, SIGTERM), 0);
    double took;
    int st = wait_job(job, 120, &took);
    char *log = slurp("mpi_test/termed.log");
    ck_assert_msg(st != -1, "the job did not stop:\n%s", log);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGTERM, "mpirun exited with %d:\n%s",
                  WIFEXITED(st) ? WEXITSTATUS(st) : -1, log);
    ck_assert_msg(strstr(log, "rank 1 received signal 15; every rank stopped after saving"), "%s", log);
    free(log);
    run_state s;
    load_state(ctx, "mpi_test/ck/termed/latest.ckpt", &s);
    char last[PATH_MAX];
    snprintf(last, sizeof last, "mpi_test/ck/termed/iter_%07llu.ckpt", (unsigned long long)s.step);
    ck_assert_msg(access(last, F_OK) == 0, "latest.ckpt (iteration %llu) is not the last numbered checkpoint",
                  (unsigned long long)s.step);
    free_state(&s);
}
END_TEST

/* ---- setup ---- */

static int find_tools(void)
{
    const char *env = getenv("CLSYNTH_BIN");
    if (env && *env) {
        snprintf(bin, sizeof bin, "%s", env);
    } else {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
            return -1;
        self[n] = 0;
        *strrchr(self, '/') = 0;
        snprintf(bin, sizeof bin, "%s/../clsynth", self);
    }
    char cmd[2 * PATH_MAX], out[4096] = "";
    snprintf(cmd, sizeof cmd, "'%s' train --help 2>&1", bin);
    FILE *p = popen(cmd, "r");
    if (p) {
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = 0;
        pclose(p);
    }
    if (!strstr(out, "MPI compiled in (")) {
        printf("test_mpi skipped: %s was built without MPI (configure with libopenmpi-dev installed)\n", bin);
        return 77;
    }
    const char *m = getenv("CLSYNTH_MPIEXEC");
    if (m && *m && access(m, X_OK) == 0) {
        snprintf(mpirun, sizeof mpirun, "%s", m);
    } else {
        FILE *w = popen("command -v mpirun", "r");
        if (!w || !fgets(mpirun, sizeof mpirun, w))
            mpirun[0] = 0;
        if (w)
            pclose(w);
        mpirun[strcspn(mpirun, "\n")] = 0;
    }
    if (!mpirun[0]) {
        printf("test_mpi skipped: no mpirun found (install openmpi-bin)\n");
        return 77;
    }
    return 0;
}

int main(void)
{
    int rc = find_tools();
    if (rc)
        return rc == 77 ? 77 : 1;
    char cmd[2 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "rm -rf mpi_test && mkdir -p mpi_test && '%s' dataset synth --out mpi_test/data --count 8 "
                              "--val_count 2 --size 64x64 --seed 3 > mpi_test/data.log 2>&1",
             bin);
    if (sh(cmd) != 0) {
        fprintf(stderr, "test_mpi: cannot write the dataset (see mpi_test/data.log)\n");
        return 1;
    }
    Suite *s = suite_create("mpi");
    TCase *tc = tcase_create("mpi");
    tcase_set_timeout(tc, 900);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, sync_batch_norm_two_ranks_equal_one_process_step_by_step_and_across_resume);
    tcase_add_test(tc, sync_batch_norm_at_lr_0_every_buffer_equal_step_by_step);
    tcase_add_test(tc, instance_norm_two_ranks_equal_one_process);
    tcase_add_test(tc, per_rank_batch_norm_is_each_ranks_own);
    tcase_add_test(tc, resumed_two_rank_run_is_bit_identical_to_an_uninterrupted_one);
    tcase_add_test(tc, existing_run_without_continue_train_is_refused_once_and_every_rank_exits_non_zero);
    tcase_add_test(tc, overwrite_moves_the_old_run_aside_once);
    tcase_add_test(tc, resume_falls_back_from_a_damaged_latest_and_every_rank_resumes_from_that_step);
    tcase_add_test(tc, killed_rank_ends_the_job_within_seconds_and_the_checkpoint_loads);
    tcase_add_test(tc, failing_rank_stops_every_rank_naming_itself_and_the_cause);
    tcase_add_test(tc, other_commands_refuse_to_run_as_several_processes);
    tcase_add_test(tc, checkpoint_benchmark_refuses_to_run_as_several_processes);
    tcase_add_test(tc, sigterm_to_one_rank_stops_every_rank_after_saving);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
