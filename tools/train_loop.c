#include "tools/train_loop.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clcore/autograd.h"
#include "clcore/comm.h"
#include "clcore/tensor.h"
#include "io/atomic.h"
#include "io/dataset.h"
#include "io/grid.h"
#include "io/loader.h"
#include "nets/model.h"
#include "nets/model_dist.h"
#include "tools/results.h"
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
    sigaction(SIGUSR1, &sa, NULL); /* mpirun forwards SIGUSR1 to every rank */
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

static int save_checkpoints(clsynth_ctx *ctx, clsynth_model *m, const char *run_dir, long it, int epoch,
                            uint64_t seed, bool numbered, char *last, size_t last_len, clsynth_err *err)
{
    uint64_t rng[4] = { seed, 0, 0, 0 };
    char path[1200];
    /* data-parallel: every rank checks that it holds rank 0's state; rank 0 writes */
    if (clsynth_model_check_same(ctx, m))
        return clsynth_fail(err, "before saving iteration %ld: %s", it, ctx->err.msg);
    if (clsynth_comm_rank(ctx) != 0)
        return 0;
    if (numbered) {
        snprintf(path, sizeof path, "%s/iter_%07ld.ckpt", run_dir, it);
        if (clsynth_model_save(ctx, m, path, (uint64_t)it, epoch, rng, err))
            return -1;
    }
    snprintf(path, sizeof path, "%s/latest.ckpt", run_dir);
    if (clsynth_model_save(ctx, m, path, (uint64_t)it, epoch, rng, err))
        return -1;
    snprintf(last, last_len, "%s", path);
    return 0;
}

int clsynth_run_training(clsynth_ctx *ctx, clsynth_options *o, clsynth_train_result *res, clsynth_err *err)
{
    memset(res, 0, sizeof *res);
    stop_requested = 0;
    o->data.is_train = 1;
    if (clsynth_data_opts_finalize(&o->data, err))
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
    const bool writer = clsynth_comm_rank(ctx) == 0; /* rank 0 alone writes the run folder */
    if (writer && clsynth_mkdirs(web, err)) {
        clsynth_dataset_free(ds);
        return -1;
    }

    int rc = -1;
    clsynth_loader *loader = NULL;
    FILE *csv = NULL;
    float *label_f = NULL;
    clsynth_model *m = clsynth_model_create(ctx, o, err);
    if (!m)
        goto done;
    uint64_t start_step = 0;
    int start_epoch = 1;
    char path[1300];
    if (o->continue_train && writer) {
        snprintf(path, sizeof path, "%s/latest.ckpt", res->run_dir);
        if (access(path, R_OK) == 0) {
            if (clsynth_model_load(ctx, m, path, &start_step, &start_epoch, NULL, err))
                goto done;
            printf("resuming %s at iteration %llu (epoch %d)\n", path, (unsigned long long)start_step, start_epoch);
        } else {
            printf("--continue_train: no checkpoint at %s yet, starting from scratch\n", path);
        }
    }
    /* data-parallel: every rank starts from rank 0's model (fresh or resumed) and position */
    int64_t start[2] = { (int64_t)start_step, start_epoch };
    if (clsynth_comm_broadcast(ctx, start, sizeof start, 0, CLSYNTH_COMM_STATE) || clsynth_model_broadcast(ctx, m, 0)) {
        clsynth_fail(err, "sharing rank 0's model: %s", ctx->err.msg);
        goto done;
    }
    start_step = (uint64_t)start[0];
    start_epoch = (int)start[1];
    size_t pg, pd, pe;
    clsynth_model_param_counts(m, &pg, &pd, &pe);
    if (writer) {
        char *text = clsynth_options_to_text(o);
        snprintf(path, sizeof path, "%s/options.txt", res->run_dir);
        int wrc = text ? write_text(path, text, err) : clsynth_fail(err, "out of memory");
        free(text);
        if (wrc)
            goto done;
        char counts[256];
        snprintf(counts, sizeof counts, "G %zu\nD %zu\nE %zu\n", pg, pd, pe);
        snprintf(path, sizeof path, "%s/params.txt", res->run_dir);
        if (write_text(path, counts, err))
            goto done;
        printf("parameters: G %zu, D %zu%s", pg, pd, pe ? "" : "\n");
        if (pe)
            printf(", E %zu\n", pe);
        if (*clsynth_model_notice(m))
            printf("%s\n", clsynth_model_notice(m));
    }
    if (clsynth_train_record_world(ctx, res->run_dir, o, start_step > 0, err))
        goto done;

    clsynth_loader_opts lo = { .batch_size = o->batchSize, .seed = (uint64_t)o->seed, .shuffle = 1, .prefetch = 3,
                               .start_epoch = 0, .rank = clsynth_comm_rank(ctx), .world = clsynth_comm_size(ctx) };
    /* Resume: the loader's order depends only on (seed, epoch, position), so
     * restart at the epoch of start_step and skip the batches already used. */
    loader = clsynth_loader_create(ds, &lo, err);
    if (!loader)
        goto done;
    int bpe = clsynth_loader_batches_per_epoch(loader);
    if (bpe <= 0) {
        clsynth_fail(err, "dataset %s has fewer samples (%d) than --batchSize %d x %d ranks", o->data.dataroot,
                     ds->n, o->batchSize, clsynth_comm_size(ctx));
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

    snprintf(path, sizeof path, "%s/losses.csv", res->run_dir);
    bool fresh_csv = start_step == 0 || access(path, F_OK) != 0;
    csv = writer ? fopen(path, fresh_csv ? "w" : "a") : NULL;
    if (writer && !csv) {
        clsynth_fail(err, "cannot write %s: %s", path, strerror(errno));
        goto done;
    }
    if (csv && fresh_csv)
        fprintf(csv, "iteration,epoch,seconds,G_GAN,G_GAN_Feat,G_VGG,KLD,D_real,D_fake\n");
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
        if (upload_batch(ctx, b, label_f, with_edges, &t) == 0)
            seg = clsynth_model_seg(ctx, m, t.labels, t.edges);
        if (!seg || clsynth_train_step(ctx, m, seg, t.image, &l) || clsynth_train_average_losses(ctx, &l)) {
            clsynth_fail(err, "iteration %ld: %s", it + 1, ctx->err.msg);
            if (res->last_checkpoint[0] == 0 && start_step > 0)
                snprintf(res->last_checkpoint, sizeof res->last_checkpoint, "%s/latest.ckpt", res->run_dir);
            goto done;
        }
        it++;
        res->new_iterations++;
        double el = now_s() - t0;
        if (csv)
            fprintf(csv, "%ld,%d,%.3f,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", it, cur_epoch, el, l.G_GAN, l.G_GAN_Feat,
                    l.G_VGG, l.KLD, l.D_real, l.D_fake);
        if (writer && (tty || it % (o->print_freq > 0 ? o->print_freq : 100) == 0 || it == total))
            progress(stderr, tty, it, total, el, res->new_iterations / (el > 0 ? el : 1), &l, cur_epoch);
        if (writer && o->display_freq > 0 && it % o->display_freq == 0) {
            fflush(csv);
            snprintf(path, sizeof path, "%s/iter_%07ld.png", web, it);
            if (save_grid(ctx, m, b, label_f, with_edges, path, err))
                goto done;
        }
        if (o->save_latest_freq > 0 && it % o->save_latest_freq == 0 &&
            save_checkpoints(ctx, m, res->run_dir, it, cur_epoch, (uint64_t)o->seed, true, res->last_checkpoint,
                             sizeof res->last_checkpoint, err))
            goto done;
    }
    if (tty && writer)
        fputc('\n', stderr);
    res->stop_signal = vote.signal;
    res->stop_rank = vote.signal_rank;
    if (it > (long)start_step &&
        save_checkpoints(ctx, m, res->run_dir, it, cur_epoch ? cur_epoch : start_epoch, (uint64_t)o->seed, true,
                         res->last_checkpoint, sizeof res->last_checkpoint, err))
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
    if (csv && fclose(csv) && rc == 0)
        rc = clsynth_fail(err, "cannot write %s/losses.csv: %s", res->run_dir, strerror(errno));
    free(label_f);
    clsynth_loader_free(loader);
    clsynth_model_free(ctx, m);
    clsynth_dataset_free(ds);
    return rc;
}
