#include "tools/train_loop.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clcore/autograd.h"
#include "clcore/comm.h"
#include "clcore/fsutil.h"
#include "clcore/tensor.h"
#include "io/atomic.h"
#include "io/dataset.h"
#include "io/grid.h"
#include "io/loader.h"
#include "nets/footprint.h"
#include "nets/model.h"
#include "nets/model_dist.h"
#include "tools/autotune.h"
#include "tools/loss_log.h"
#include "tools/resume.h"
#include "tools/run_dir.h"
#include "tools/train_dist.h"

/* Set by the signal handler only; read by the loop. */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) { stop_requested = sig; }

void clsynth_train_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);  /* a closed terminal or ssh session: save like SIGTERM */
    sigaction(SIGUSR1, &sa, NULL); /* mpirun forwards SIGUSR1 to every rank */
    /* A file-size limit (ulimit -f) then fails the write with EFBIG, which is
     * reported like a full disk, instead of killing the process mid-save. */
    signal(SIGXFSZ, SIG_IGN);
}

int clsynth_train_check_options(const clsynth_options *o, clsynth_err *err)
{
    long step;
    if (clsynth_run_parse_which(o->which_epoch, &step, err))
        return -1;
    if (o->overwrite && o->continue_train)
        return clsynth_fail(err, "--overwrite starts a new run and --continue_train resumes one: choose one");
    if (step >= 0 && !o->continue_train)
        return clsynth_fail(err, "--which_epoch %s selects the checkpoint to resume from: it needs --continue_train",
                            o->which_epoch);
    int ranks = clsynth_mpi_world_size();
    if (o->autotune > 0 && ranks > 1) /* each rank would tune the same shapes into the same database file */
        return clsynth_fail(err, "--autotune is not supported under MPI (%d ranks): tune once before mpirun, e.g. "
                                 "`clsynth tune --budget %.0f` with the same model flags; every rank then reads the "
                                 "saved tuning database", ranks, o->autotune);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int write_text(const char *path, const char *text, clsynth_err *err)
{
    clsynth_atomic_file af;
    if (clsynth_atomic_open(&af, path, err))
        return -1;
    fputs(text, af.f);
    return clsynth_atomic_commit(&af, err);
}

/* Uploads a batch as device tensors (activations). */
typedef struct batch_tensors {
    clsynth_tensor *labels, *edges, *image;
} batch_tensors;

static int upload_batch(clsynth_ctx *ctx, const clsynth_batch *b, float *label_f, bool with_edges,
                        batch_tensors *t)
{
    size_t hw = (size_t)b->h * b->w;
    for (size_t i = 0; i < (size_t)b->n * hw; i++)
        label_f[i] = (float)b->label[i];
    t->labels = clsynth_tensor_from_host(ctx, "labels", b->n, 1, b->h, b->w, label_f);
    t->edges = with_edges ? clsynth_tensor_from_host(ctx, "edges", b->n, 1, b->h, b->w, b->edge) : NULL;
    t->image = clsynth_tensor_from_host(ctx, "real", b->n, 3, b->h, b->w, b->image);
    return ctx->failed ? -1 : 0;
}

static int save_grid(clsynth_ctx *ctx, clsynth_model *m, const clsynth_batch *b, float *label_f, bool with_edges,
                     const char *path, clsynth_err *err)
{
    batch_tensors t;
    float *fake = malloc((size_t)b->n * 3 * b->h * b->w * sizeof *fake);
    if (!fake)
        return clsynth_fail(err, "out of memory");
    clsynth_no_grad_begin(ctx);
    int rc = upload_batch(ctx, b, label_f, with_edges, &t);
    clsynth_tensor *seg = rc ? NULL : clsynth_model_seg(ctx, m, t.labels, t.edges);
    clsynth_tensor *y = clsynth_model_generate(ctx, m, seg, t.image);
    rc = clsynth_tensor_download(ctx, y, fake);
    clsynth_no_grad_end(ctx);
    clsynth_release_activations(ctx);
    if (rc) {
        free(fake);
        return clsynth_fail(err, "sample grid: %s", ctx->err.msg);
    }
    rc = clsynth_grid_write(path, b->n, b->h, b->w, b->label, fake, b->image, err);
    free(fake);
    return rc;
}

static void progress(FILE *f, bool tty, long it, long total, double elapsed, double ips, const clsynth_losses *l,
                     int epoch)
{
    char eta[32] = "?";
    if (total > 0 && ips > 0) {
        double s = (double)(total - it) / ips;
        snprintf(eta, sizeof eta, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    }
    char bar[21];
    int filled = total > 0 ? (int)(20.0 * (double)it / (double)total) : 0;
    for (int i = 0; i < 20; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[20] = 0;
    fprintf(f, "%s[%s] it %ld", tty ? "\r" : "", bar, it);
    if (total > 0)
        fprintf(f, "/%ld", total);
    fprintf(f, " ep %d | %.2f it/s | %.0fs ETA %s | G_GAN %.3f Feat %.3f VGG %.3f KLD %.3f D_real %.3f D_fake %.3f%s",
            epoch, ips, elapsed, eta, l->G_GAN, l->G_GAN_Feat, l->G_VGG, l->KLD, l->D_real, l->D_fake,
            tty ? "   " : "\n");
    fflush(f);
}

/* Refuses to train into a run folder that holds checkpoints unless resuming
 * or --overwrite (which moves the old run aside first); makes the folder,
 * locks it and removes what interrupted saves left. Returns the lock's fd. */
static int prepare_run_dir(const clsynth_options *o, const char *run_dir, time_t started, clsynth_err *err)
{
    clsynth_run_ckpts l;
    if (clsynth_run_ckpts_list(run_dir, &l, err))
        return -1;
    char have[1024], csv[1200];
    clsynth_run_ckpts_describe(&l, have, sizeof have);
    int n = l.n;
    clsynth_run_ckpts_free(&l);
    snprintf(csv, sizeof csv, "%s/losses.csv", run_dir);
    if (n > 0 && !o->continue_train && !o->overwrite)
        return clsynth_fail(err, "%s already holds a training run (%s). Add --continue_train to resume it, or "
                                 "--overwrite to start a new one (the old run is then moved to %s.old-<date>-<time>)",
                            run_dir, have, run_dir);
    if (o->overwrite && (n > 0 || access(csv, F_OK) == 0)) {
        int fd = clsynth_run_lock(run_dir, err); /* nobody may be training in it */
        if (fd < 0)
            return -1;
        char moved[1300];
        int rc = clsynth_run_move_aside(run_dir, moved, sizeof moved, err);
        clsynth_run_unlock(fd);
        if (rc)
            return -1;
        printf("--overwrite: moved the previous run (%s) to %s\n", have, moved);
    }
    char web[1200];
    snprintf(web, sizeof web, "%s/web", run_dir);
    if (clsynth_mkdirs(web, err))
        return -1;
    int fd = clsynth_run_lock(run_dir, err);
    if (fd >= 0)
        clsynth_run_remove_stale_temps(run_dir, started, stdout);
    return fd;
}

/* The newest checkpoint that is known good, for messages after a failure. */
typedef struct good_ckpt {
    char path[1200];
    long step; /* -1: none yet */
} good_ckpt;

/* A save failed: losses.csv goes back to the last good checkpoint and the
 * message says what is still there. */
static int save_failed(clsynth_loss_log *log, const good_ckpt *good, long it, clsynth_err *err)
{
    clsynth_err rb;
    int rolled = clsynth_loss_log_rollback(log, &rb) == 0;
    if (good->step < 0)
        return clsynth_wrap(err, "saving iteration %ld failed (this run has no checkpoint yet)%s%s", it,
                            rolled ? "" : "; also: ", rolled ? "" : rb.msg);
    return clsynth_wrap(err, "saving iteration %ld failed; the previous checkpoint %s (iteration %ld) is intact and "
                             "%s%s", it, good->path, good->step,
                        rolled ? "losses.csv ends at its iteration" : "losses.csv could not be cut back to it: ",
                        rolled ? "" : rb.msg);
}

/* latest.ckpt is written once (temporary file, fsync, rename); the numbered
 * iter_N.ckpt is a hard link to it (a copy where links are missing).
 * losses.csv is made durable first, so it always covers the newest checkpoint. */
static int save_checkpoint(clsynth_ctx *ctx, clsynth_model *m, const char *run_dir, long it, int epoch, uint64_t seed,
                           clsynth_loss_log *log, good_ckpt *good, clsynth_err *err)
{
    if (good->step == it)
        return 0; /* saved already (good->step is the same on every rank) */
    /* data-parallel: every rank checks that it holds rank 0's state; rank 0 alone writes */
    if (clsynth_model_check_same(ctx, m))
        return clsynth_fail(err, "before saving iteration %ld: %s", it, ctx->err.msg);
    if (clsynth_comm_rank(ctx) != 0) {
        good->step = it;
        return 0;
    }
    uint64_t rng[4] = { seed, 0, 0, 0 };
    char latest[1200], numbered[1200];
    snprintf(latest, sizeof latest, "%s/latest.ckpt", run_dir);
    snprintf(numbered, sizeof numbered, "%s/iter_%07ld.ckpt", run_dir, it);
    if (clsynth_loss_log_sync(log, err) || clsynth_model_save(ctx, m, latest, (uint64_t)it, epoch, rng, err))
        return save_failed(log, good, it, err);
    clsynth_loss_log_checkpointed(log);
    snprintf(good->path, sizeof good->path, "%s", latest);
    good->step = it;
    if (clsynth_atomic_link(latest, numbered, NULL, err))
        return clsynth_wrap(err, "iteration %ld is saved in %s, but its numbered copy is not", it, latest);
    return 0;
}

/* The end of the setup, reached by every rank whether its part worked or not
 * (rc): when any rank failed, every rank returns an error, the failing ones
 * with their own message, the others saying so in res (failed_elsewhere), and
 * nobody needs to abort the job. */
static int agree_setup(clsynth_ctx *ctx, int rc, clsynth_train_result *res, clsynth_err *err)
{
    int first;
    if (clsynth_train_agree(ctx, rc != 0, &first))
        return rc ? rc : clsynth_fail(err, "%s", ctx->err.msg); /* the others may not know: abort */
    if (first < 0)
        return 0;
    res->failed_together = true;
    if (rc)
        return rc;
    res->failed_elsewhere = true;
    return clsynth_fail(err, "rank %d could not start (its message says why)", first);
}

int clsynth_run_training(clsynth_ctx *ctx, clsynth_options *o, clsynth_train_result *res, clsynth_err *err)
{
    memset(res, 0, sizeof *res);
    res->last_step = -1;
    stop_requested = 0;
    time_t started = time(NULL);
    o->data.is_train = 1;
    if (clsynth_train_check_options(o, err) || clsynth_data_opts_finalize(&o->data, err))
        return -1;
    clsynth_dataset *ds = clsynth_dataset_open(&o->data, err);
    if (!ds)
        return -1;
    o->data = ds->opts; /* resolved label_nc, sizes */
    if (clsynth_options_validate(o, err)) {
        clsynth_dataset_free(ds);
        return -1;
    }
    /* data-parallel: the shards only make up the global batches if every rank reads the same dataset */
    if (clsynth_comm_check_same(ctx, (uint64_t)ds->n, "the number of training samples")) {
        clsynth_fail(err, "%s (every rank must read the same dataset)", ctx->err.msg);
        clsynth_dataset_free(ds);
        return -1;
    }
    snprintf(res->run_dir, sizeof res->run_dir, "%s/%s", o->checkpoints_dir, o->name);
    char web[1200];
    snprintf(web, sizeof web, "%s/web", res->run_dir);
    /* data-parallel: rank 0 alone looks at and writes the run folder: it takes
     * every decision about it (refusal, --overwrite, which checkpoint to resume
     * from, stale temporary files, the lock, losses.csv) and the other ranks
     * start from the model and position it broadcasts */
    const int rank = clsynth_comm_rank(ctx), world = clsynth_comm_size(ctx);
    const bool writer = rank == 0;

    int rc = -1, lock = -1;
    clsynth_loader *loader = NULL;
    clsynth_loss_log log = { 0 };
    float *label_f = NULL;
    clsynth_model *m = NULL;
    good_ckpt good = { "", -1 };
    clsynth_step_memory est;
    /* before the first step, before the real model exists, before the run
     * folder changes; on every rank, for its own device (the devices of the
     * ranks may differ) */
    int setup = 0;
    if (o->half_activations && clsynth_half_storage_check(ctx, "--half_activations")) {
        clsynth_fail(err, "%s", ctx->err.msg); /* before the memory estimate's step would say it, nested */
        clsynth_ctx_clear_error(ctx);
        setup = -1;
    }
    if (setup == 0)
        setup = clsynth_step_memory_check(ctx, o, &est, err);
    if (setup == 0) {
        if (world > 1)
            printf("rank %d: ", rank);
        printf("device memory: a training step needs about %.0f MiB of %.0f MiB\n", est.bytes / (1024.0 * 1024),
               (double)ctx->dev.global_mem / (1024.0 * 1024));
    }
    if (agree_setup(ctx, setup, res, err))
        goto done;
    if (writer && (lock = prepare_run_dir(o, res->run_dir, started, err)) < 0)
        setup = -1;
    if (setup == 0 && !(m = clsynth_model_create(ctx, o, err)))
        setup = -1;
    clsynth_resume_point from = { "", 0, 1 };
    if (setup == 0 && writer && o->continue_train &&
        clsynth_resume_load(ctx, m, res->run_dir, o->which_epoch, stdout, &from, err))
        setup = -1;
    char path[1300];
    size_t pg = 0, pd = 0, pe = 0;
    if (m)
        clsynth_model_param_counts(m, &pg, &pd, &pe);
    if (setup == 0 && writer) {
        char *text = clsynth_options_to_text(o);
        snprintf(path, sizeof path, "%s/options.txt", res->run_dir);
        setup = text ? write_text(path, text, err) : clsynth_fail(err, "out of memory");
        free(text);
    }
    if (setup == 0 && writer) {
        char counts[256];
        snprintf(counts, sizeof counts, "G %zu\nD %zu\nE %zu\n", pg, pd, pe);
        snprintf(path, sizeof path, "%s/params.txt", res->run_dir);
        setup = write_text(path, counts, err);
    }
    if (setup == 0 && writer) {
        printf("parameters: G %zu, D %zu%s", pg, pd, pe ? "" : "\n");
        if (pe)
            printf(", E %zu\n", pe);
        if (*clsynth_model_notice(m))
            printf("%s\n", clsynth_model_notice(m));
        setup = clsynth_loss_log_open(&log, res->run_dir, from.step, stdout, err);
    }
    fflush(stdout);
    if (agree_setup(ctx, setup, res, err))
        goto done;
    /* data-parallel: every rank starts from rank 0's model (fresh or resumed) and position */
    int64_t start[3] = { from.step, from.epoch, from.path[0] != 0 };
    if (clsynth_comm_broadcast(ctx, start, sizeof start, 0, CLSYNTH_COMM_STATE) || clsynth_model_broadcast(ctx, m, 0)) {
        clsynth_fail(err, "sharing rank 0's model: %s", ctx->err.msg);
        goto done;
    }
    uint64_t start_step = (uint64_t)start[0];
    int start_epoch = (int)start[1];
    if (start[2]) { /* the resumed checkpoint is the newest good one (its path is rank 0's to report) */
        snprintf(good.path, sizeof good.path, "%s", from.path);
        good.step = (long)start_step;
    }
    if (clsynth_train_record_world(ctx, res->run_dir, o, start_step > 0, err))
        goto done;

    clsynth_loader_opts lo = { .batch_size = o->batchSize, .seed = (uint64_t)o->seed, .shuffle = 1, .prefetch = 3,
                               .start_epoch = 0, .rank = rank, .world = world };
    /* Resume: the loader's order depends only on (seed, epoch, position), so
     * restart at the epoch of start_step and skip the batches already used. */
    loader = clsynth_loader_create(ds, &lo, err);
    if (!loader)
        goto done;
    int bpe = clsynth_loader_batches_per_epoch(loader);
    if (bpe <= 0) {
        clsynth_fail(err, "dataset %s has fewer samples (%d) than --batchSize %d x %d ranks", o->data.dataroot,
                     ds->n, o->batchSize, world);
        goto done;
    }
    if (start_step > 0) {
        clsynth_loader_free(loader);
        lo.start_epoch = (int)(start_step / (uint64_t)bpe);
        loader = clsynth_loader_create(ds, &lo, err);
        if (!loader)
            goto done;
        const clsynth_batch *skip;
        for (uint64_t k = 0; k < start_step % (uint64_t)bpe; k++)
            if (clsynth_loader_next(loader, &skip, err) != 1)
                goto done;
    }
    int total_epochs = o->niter + o->niter_decay;
    long total = (long)total_epochs * bpe;
    if (o->max_iters > 0 && (total <= 0 || o->max_iters < total))
        total = o->max_iters;

    bool tty = isatty(fileno(stderr));
    double t0 = now_s();
    long it = (long)start_step;
    int cur_epoch = 0;
    clsynth_losses l;
    memset(&l, 0, sizeof l);
    bool with_edges = !o->data.no_instance;
    clsynth_stop_vote vote;
    memset(&vote, 0, sizeof vote);
    for (;;) {
        if (total > 0 && it >= total)
            break;
        /* every rank takes the same decision (one process: the local one) */
        if (clsynth_train_vote_stop(ctx, (int)stop_requested, o->time_budget > 0 && now_s() - t0 >= o->time_budget,
                                    &vote)) {
            clsynth_fail(err, "iteration %ld: %s", it + 1, ctx->err.msg);
            goto done;
        }
        if (vote.stop)
            break;
        const clsynth_batch *b;
        int nx = clsynth_loader_next(loader, &b, err);
        if (nx != 1) {
            if (nx == 0)
                clsynth_fail(err, "data loader ended unexpectedly");
            goto done;
        }
        if (b->epoch + 1 != cur_epoch) {
            cur_epoch = b->epoch + 1;
            clsynth_model_set_epoch(m, cur_epoch);
        }
        float *grown = realloc(label_f, (size_t)b->n * b->h * b->w * sizeof *label_f);
        if (!grown) {
            clsynth_fail(err, "out of memory");
            goto done;
        }
        label_f = grown;
        batch_tensors t;
        clsynth_tensor *seg = NULL;
        bool tune_after = o->autotune > 0 && res->new_iterations == 0;
        if (tune_after)
            clsynth_autotune_first_step_begin(ctx);
        if (upload_batch(ctx, b, label_f, with_edges, &t) == 0)
            seg = clsynth_model_seg(ctx, m, t.labels, t.edges);
        if (!seg || clsynth_train_step(ctx, m, seg, t.image, &l) || clsynth_train_average_losses(ctx, &l)) {
            clsynth_fail(err, "iteration %ld: %s%s", it + 1, ctx->err.msg,
                         it == (long)start_step && strstr(ctx->err.msg, "out of device memory")
                             ? " (lower --crop_size or --batchSize)" : "");
            goto done;
        }
        if (tune_after) {
            double spent;
            clsynth_autotune_first_step_end(ctx, o->autotune, &spent);
            t0 += spent; /* iteration times and --time_budget leave the tuning out */
        }
        it++;
        res->new_iterations++;
        double el = now_s() - t0;
        if (writer)
            clsynth_loss_log_row(&log, it, cur_epoch, el, &l);
        if (writer && (tty || it % (o->print_freq > 0 ? o->print_freq : 100) == 0 || it == total))
            progress(stderr, tty, it, total, el, res->new_iterations / (el > 0 ? el : 1), &l, cur_epoch);
        if (writer && o->display_freq > 0 && it % o->display_freq == 0) {
            clsynth_loss_log_flush(&log);
            snprintf(path, sizeof path, "%s/iter_%07ld.png", web, it);
            if (save_grid(ctx, m, b, label_f, with_edges, path, err))
                goto done;
        }
        if (o->save_latest_freq > 0 && it % o->save_latest_freq == 0 &&
            save_checkpoint(ctx, m, res->run_dir, it, cur_epoch, (uint64_t)o->seed, &log, &good, err))
            goto done;
    }
    if (tty && writer)
        fputc('\n', stderr);
    res->stop_signal = vote.signal;
    res->stop_rank = vote.signal_rank;
    if (it > (long)start_step &&
        save_checkpoint(ctx, m, res->run_dir, it, cur_epoch ? cur_epoch : start_epoch, (uint64_t)o->seed, &log,
                        &good, err))
        goto done;
    /* data-parallel: no rank exits (mpirun would then end the job) before rank 0 has saved */
    int64_t saved = 1;
    if (clsynth_comm_broadcast(ctx, &saved, sizeof saved, 0, CLSYNTH_COMM_STATE)) {
        clsynth_fail(err, "after the last checkpoint: %s", ctx->err.msg);
        goto done;
    }
    res->iterations = it;
    res->epoch = cur_epoch ? cur_epoch : start_epoch;
    res->seconds = now_s() - t0;
    rc = 0;
done:
    if (clsynth_loss_log_close(&log, rc == 0 ? err : NULL) && rc == 0)
        rc = -1;
    if (good.path[0]) { /* rank 0 (the others know the step, not the file) */
        snprintf(res->last_checkpoint, sizeof res->last_checkpoint, "%s", good.path);
        res->last_step = good.step;
    }
    clsynth_run_unlock(lock);
    free(label_f);
    clsynth_loader_free(loader);
    clsynth_model_free(ctx, m);
    clsynth_dataset_free(ds);
    return rc;
}
