/* No run is ever lost: `clsynth train` and `clsynth test` on run folders in
 * every state a user or a crash leaves them in (resume, --which_epoch,
 * --overwrite, losses.csv, stale temporary files, bad checkpoints, a full
 * disk, SIGHUP) and bad inputs that must be errors naming what is wrong.
 * Runs the clsynth binary next to the tests folder (or $CLSYNTH_BIN) on a
 * 32x32 synthetic dataset with a tiny model; each test has its own run. */
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cliutil.h"
#include "io/checkpoint.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define DATA "cli_data"
#define CK "cli_ck"

/* clsynth train on the tiny dataset into CK/name; output in CK/name.log<k>. */
static int train(const char *name, int k, const char *extra)
{
    clsynth_test_tiny_dataset(DATA);
    return clsynth_test_sh("'%s' train --dataroot " DATA " --checkpoints_dir " CK " --name %s " CLSYNTH_TEST_TINY_RUN
                           " %s > " CK "/%s.log%d 2>&1",
                           clsynth_test_bin(), name, extra, name, k);
}

static void fresh(const char *name)
{
    ck_assert_int_eq(clsynth_test_sh("mkdir -p " CK " && rm -rf " CK "/%s " CK "/%s.old-* " CK "/%s.log* " CK "/%s.res",
                                     name, name, name, name),
                     0);
}

static char logpath[256], path_buf[512];
static const char *log_of(const char *name, int k)
{
    snprintf(logpath, sizeof logpath, CK "/%s.log%d", name, k);
    return logpath;
}
static const char *in_run(const char *name, const char *file)
{
    snprintf(path_buf, sizeof path_buf, CK "/%s/%s", name, file);
    return path_buf;
}

static void assert_log_has(const char *name, int k, const char *text)
{
    const char *log = log_of(name, k);
    char *s = clsynth_test_slurp(log);
    ck_assert_msg(s && strstr(s, text), "%s lacks \"%s\"; it says:\n%s", log, text, s ? s : "(nothing)");
    free(s);
}

static long ckpt_step(const char *path)
{
    clsynth_err err;
    clsynth_checkpoint *ck = clsynth_checkpoint_load(path, &err);
    ck_assert_msg(ck, "%s", err.msg);
    long s = (long)ck->step;
    clsynth_checkpoint_free(ck);
    return s;
}

typedef struct file_id {
    ino_t ino;
    double mtime;
    off_t size;
} file_id;

static file_id id_of(const char *path)
{
    struct stat st;
    ck_assert_msg(stat(path, &st) == 0, "missing %s", path);
    file_id f = { st.st_ino, st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9, st.st_size };
    return f;
}

static void assert_unchanged(const char *path, file_id before)
{
    file_id now = id_of(path);
    ck_assert_msg(now.ino == before.ino && now.mtime == before.mtime && now.size == before.size,
                  "%s was replaced or rewritten", path);
}

static long csv_rows(const char *name)
{
    char why[512] = "";
    long n = clsynth_test_csv_rows(in_run(name, "losses.csv"), why, sizeof why);
    ck_assert_msg(n >= 0, "%s", why);
    return n;
}

/* Replaces path by a copy of itself cut to `keep` bytes (a new file: a hard
 * link of it elsewhere stays whole). */
static void damage_copy(const char *path, long keep)
{
    ck_assert_int_eq(clsynth_test_sh("head -c %ld '%s' > '%s.cut' && mv '%s.cut' '%s'", keep, path, path, path, path), 0);
}

/* ---- resume ------------------------------------------------------------ */

START_TEST(resume_without_latest_continues_from_the_newest_numbered_checkpoint)
{
    const char *r = "no_latest";
    fresh(r);
    ck_assert_int_eq(train(r, 1, "--max_iters 4 --save_latest_freq 2"), 0);
    file_id i2 = id_of(in_run(r, "iter_0000002.ckpt")), i4 = id_of(in_run(r, "iter_0000004.ckpt"));
    ck_assert_int_eq(unlink(in_run(r, "latest.ckpt")), 0);
    sleep(1);
    ck_assert_int_eq(train(r, 2, "--max_iters 6 --save_latest_freq 2 --continue_train"), 0);
    assert_log_has(r, 2, "latest.ckpt is missing");
    assert_log_has(r, 2, "resuming from " CK "/no_latest/iter_0000004.ckpt at iteration 4");
    assert_unchanged(in_run(r, "iter_0000002.ckpt"), i2);
    assert_unchanged(in_run(r, "iter_0000004.ckpt"), i4);
    ck_assert_int_eq(ckpt_step(in_run(r, "latest.ckpt")), 6);
    ck_assert_int_eq(csv_rows(r), 6);
}
END_TEST

START_TEST(resume_skips_a_damaged_latest_and_says_why)
{
    const char *r = "bad_latest";
    fresh(r);
    ck_assert_int_eq(train(r, 1, "--max_iters 4 --save_latest_freq 2"), 0);
    damage_copy(in_run(r, "latest.ckpt"), 3000);
    ck_assert_int_eq(train(r, 2, "--max_iters 5 --save_latest_freq 2 --continue_train"), 0);
    assert_log_has(r, 2, "latest.ckpt was skipped: " CK "/bad_latest/latest.ckpt: truncated or corrupt");
    assert_log_has(r, 2, "resuming from " CK "/bad_latest/iter_0000004.ckpt at iteration 4");
    ck_assert_int_eq(ckpt_step(in_run(r, "latest.ckpt")), 5);
    ck_assert_int_eq(csv_rows(r), 5);
}
END_TEST

START_TEST(resume_refuses_a_latest_that_is_not_a_file_naming_it)
{
    const char *r = "dir_latest";
    fresh(r);
    ck_assert_int_eq(train(r, 1, "--max_iters 2 --save_latest_freq 2"), 0);
    file_id i2 = id_of(in_run(r, "iter_0000002.ckpt"));
    ck_assert_int_eq(unlink(in_run(r, "latest.ckpt")), 0);
    ck_assert_int_eq(mkdir(in_run(r, "latest.ckpt"), 0755), 0);
    ck_assert_int_ne(train(r, 2, "--max_iters 3 --continue_train"), 0);
    assert_log_has(r, 2, CK "/dir_latest/latest.ckpt: is a directory, not a regular file");
    assert_unchanged(in_run(r, "iter_0000002.ckpt"), i2);
}
END_TEST

START_TEST(resume_never_restarts_a_run_whose_checkpoints_do_not_load)
{
    const char *r = "none_loads";
    fresh(r);
    ck_assert_int_eq(train(r, 1, "--max_iters 2 --save_latest_freq 1"), 0);
    damage_copy(in_run(r, "latest.ckpt"), 100);
    damage_copy(in_run(r, "iter_0000002.ckpt"), 200);
    damage_copy(in_run(r, "iter_0000001.ckpt"), 300);
    file_id csv = id_of(in_run(r, "losses.csv")), i1 = id_of(in_run(r, "iter_0000001.ckpt"));
    ck_assert_int_ne(train(r, 2, "--max_iters 3 --continue_train"), 0);
    assert_log_has(r, 2, "no checkpoint in " CK "/none_loads loads");
    assert_log_has(r, 2, "never restarted from scratch");
    assert_unchanged(in_run(r, "losses.csv"), csv);
    assert_unchanged(in_run(r, "iter_0000001.ckpt"), i1);
}
END_TEST

/* ---- --which_epoch ----------------------------------------------------- */

START_TEST(which_epoch_resumes_from_that_checkpoint_and_keeps_the_later_ones)
{
    const char *r = "which";
    fresh(r);
    ck_assert_int_eq(train(r, 1, "--max_iters 6 --save_latest_freq 2"), 0);
    ck_assert_int_eq(train(r, 2, "--max_iters 3 --save_latest_freq 2 --continue_train --which_epoch 2"), 0);
    assert_log_has(r, 2, "resuming from " CK "/which/iter_0000002.ckpt at iteration 2");
    assert_log_has(r, 2, "moved latest.ckpt, iter_0000006.ckpt, iter_0000004.ckpt");
    glob_t g;
    ck_assert_int_eq(glob(CK "/which/superseded-*/iter_0000006.ckpt", 0, NULL, &g), 0);
    ck_assert_int_eq(ckpt_step(g.gl_pathv[0]), 6);
    globfree(&g);
    ck_assert_int_eq(ckpt_step(in_run(r, "latest.ckpt")), 3);
    ck_assert_int_eq(csv_rows(r), 3);
}
END_TEST

START_TEST(which_epoch_unknown_is_an_error_listing_the_checkpoints)
{
    const char *r = "which_bad";
    fresh(r);
    ck_assert_int_eq(train(r, 1, "--max_iters 4 --save_latest_freq 2"), 0);
    file_id latest = id_of(in_run(r, "latest.ckpt"));
    ck_assert_int_ne(train(r, 2, "--max_iters 6 --continue_train --which_epoch 3"), 0);
    assert_log_has(r, 2, "--which_epoch 3: " CK "/which_bad has no checkpoint at iteration 3; it holds: "
                         "latest.ckpt (iteration 4), iter_0000004.ckpt, iter_0000002.ckpt");
    assert_unchanged(in_run(r, "latest.ckpt"), latest);
}
END_TEST

START_TEST(test_which_epoch_selects_the_checkpoint)
{
    const char *r = "test_which";
    fresh(r);
    ck_assert_int_eq(train(r, 1, "--max_iters 4 --save_latest_freq 2"), 0);
    const char *bin = clsynth_test_bin();
    ck_assert_int_eq(clsynth_test_sh("'%s' test --name %s --checkpoints_dir " CK " --which_epoch 2 --label_dir " DATA
                                     "/val_label --results_dir " CK "/%s.res > " CK "/%s.log2 2>&1",
                                     bin, r, r, r),
                     0);
    assert_log_has(r, 2, "synthesized with " CK "/test_which/iter_0000002.ckpt");
    ck_assert_int_ne(clsynth_test_sh("'%s' test --name %s --checkpoints_dir " CK " --which_epoch 7 --label_dir " DATA
                                     "/val_label --results_dir " CK "/%s.res > " CK "/%s.log3 2>&1",
                                     bin, r, r, r),
                     0);
    assert_log_has(r, 3, "has no checkpoint at iteration 7; it holds: latest.ckpt (iteration 4), iter_0000004.ckpt");
}
END_TEST

/* ---- an existing run without --continue_train ---------------------------- */

START_TEST(train_refuses_an_existing_run_without_continue_train)
{
    const char *r = "refuse";
    fresh(r);
    ck_assert_int_eq(train(r, 1, "--max_iters 2 --save_latest_freq 2"), 0);
    file_id latest = id_of(in_run(r, "latest.ckpt")), csv = id_of(in_run(r, "losses.csv"));
    ck_assert_int_ne(train(r, 2, "--max_iters 2"), 0);
    assert_log_has(r, 2, CK "/refuse already holds a training run");
    assert_log_has(r, 2, "--continue_train");
    assert_log_has(r, 2, "--overwrite");
    assert_unchanged(in_run(r, "latest.ckpt"), latest);
    assert_unchanged(in_run(r, "losses.csv"), csv);
}
END_TEST

START_TEST(overwrite_moves_the_old_run_aside)
{
    const char *r = "overwrite";
    fresh(r);
    ck_assert_int_eq(train(r, 1, "--max_iters 3 --save_latest_freq 3"), 0);
    ck_assert_int_eq(train(r, 2, "--max_iters 1 --overwrite"), 0);
    assert_log_has(r, 2, "--overwrite: moved the previous run");
    glob_t g;
    ck_assert_int_eq(glob(CK "/overwrite.old-*/latest.ckpt", 0, NULL, &g), 0);
    ck_assert_int_eq(ckpt_step(g.gl_pathv[0]), 3);
    char moved[600];
    snprintf(moved, sizeof moved, "%.*s", (int)(strlen(g.gl_pathv[0]) - strlen("/latest.ckpt")), g.gl_pathv[0]);
    globfree(&g);
    assert_log_has(r, 2, moved);
    ck_assert_int_eq(ckpt_step(in_run(r, "latest.ckpt")), 1);
    ck_assert_int_eq(csv_rows(r), 1);
}
END_TEST

/* ---- losses.csv and temporary files ------------------------------------ */

START_TEST(losses_csv_drops_rows_past_the_resumed_step)
{
    const char *r = "csv_rows";
    fresh(r);
    ck_assert_int_eq(train(r, 1, "--max_iters 4 --save_latest_freq 4"), 0);
    /* rows logged after the checkpoint, before a crash; the last one torn */
    FILE *f = fopen(in_run(r, "losses.csv"), "a");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "5,3,9.0,1,1,1,1,1,1\n6,3,9.5,1,1,1,1,1,1\n7,3,1");
    fclose(f);
    ck_assert_int_eq(train(r, 2, "--max_iters 6 --save_latest_freq 2 --continue_train"), 0);
    assert_log_has(r, 2, "dropped 2 rows past iteration 4");
    ck_assert_int_eq(csv_rows(r), 6);
    ck_assert(!clsynth_test_file_has(in_run(r, "losses.csv"), "9.5"));
}
END_TEST

static void touch_at(const char *path, time_t when)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f, "cannot write %s", path);
    fputs("partial checkpoint", f);
    fclose(f);
    struct timeval tv[2] = { { when, 0 }, { when, 0 } };
    ck_assert_int_eq(utimes(path, tv), 0);
}

START_TEST(stale_temporary_files_of_the_run_are_removed_at_start)
{
    const char *r = "stale";
    fresh(r);
    ck_assert_int_eq(train(r, 1, "--max_iters 2 --save_latest_freq 2"), 0);
    time_t hour_ago = time(NULL) - 3600, later = time(NULL) + 3600;
    const char *stale[] = { "latest.ckpt.tmp.AbC123", "iter_0000002.ckpt.tmp.x9Y8z7", "losses.csv.tmp.qwerty",
                            "web/iter_0000002.png.tmp.Q1w2E3" };
    const char *kept[] = { "notes.txt.tmp.AbC123", "latest.ckpt.tmp.toolong1", "mine.ckpt" };
    for (size_t i = 0; i < 4; i++)
        touch_at(in_run(r, stale[i]), hour_ago);
    for (size_t i = 0; i < 3; i++)
        touch_at(in_run(r, kept[i]), hour_ago);
    touch_at(in_run(r, "latest.ckpt.tmp.NeWeR1"), later); /* not older than the process */
    ck_assert_int_eq(train(r, 2, "--max_iters 3 --continue_train"), 0);
    assert_log_has(r, 2, "removed 4 temporary files");
    for (size_t i = 0; i < 4; i++)
        ck_assert_msg(!clsynth_test_exists(in_run(r, stale[i])), "%s was not removed", stale[i]);
    for (size_t i = 0; i < 3; i++)
        ck_assert_msg(clsynth_test_exists(in_run(r, kept[i])), "%s was removed", kept[i]);
    ck_assert(clsynth_test_exists(in_run(r, "latest.ckpt.tmp.NeWeR1")));
}
END_TEST

/* ---- bad checkpoints and options --------------------------------------- */

/* Writes a copy of src whose tensor `which` holds NaN at element 3. */
static void plant_nan(const char *src, const char *dst, const char *which)
{
    clsynth_err err;
    clsynth_checkpoint *ck = clsynth_checkpoint_load(src, &err);
    ck_assert_msg(ck, "%s", err.msg);
    clsynth_ckpt_tensor_in *in = calloc((size_t)ck->n_tensors, sizeof *in);
    int hit = 0;
    for (int i = 0; i < ck->n_tensors; i++) {
        clsynth_ckpt_tensor *t = &ck->tensors[i];
        if (strcmp(t->name, which) == 0 && t->count > 3) {
            t->data[3] = NAN;
            hit = 1;
        }
        in[i] = (clsynth_ckpt_tensor_in){ t->name, t->tag, t->ndim, { t->shape[0], t->shape[1], t->shape[2], t->shape[3] },
                                          t->data };
    }
    ck_assert_msg(hit, "no tensor %s in %s", which, src);
    ck_assert_msg(clsynth_checkpoint_save(dst, ck->config, ck->step, ck->rng, in, ck->n_tensors, &err) == 0, "%s",
                  err.msg);
    free(in);
    clsynth_checkpoint_free(ck);
}

START_TEST(non_finite_weights_are_refused_by_test_and_skipped_by_resume)
{
    const char *r = "nan";
    fresh(r);
    ck_assert_int_eq(train(r, 1, "--max_iters 2 --save_latest_freq 1"), 0);
    clsynth_err err;
    clsynth_checkpoint *ck = clsynth_checkpoint_load(in_run(r, "latest.ckpt"), &err);
    ck_assert_msg(ck, "%s", err.msg);
    char name[256];
    snprintf(name, sizeof name, "%s", ck->tensors[0].name);
    clsynth_checkpoint_free(ck);
    char nan_path[512];
    snprintf(nan_path, sizeof nan_path, CK "/nan.ckpt");
    plant_nan(in_run(r, "latest.ckpt"), nan_path, name);
    ck_assert_int_ne(clsynth_test_sh("'%s' test --checkpoint %s --label_dir " DATA "/val_label --results_dir " CK
                                     "/nan.res > " CK "/nan.log2 2>&1",
                                     clsynth_test_bin(), nan_path),
                     0);
    char want[400];
    snprintf(want, sizeof want, "tensor '%s' (param) holds NaN at element 3", name);
    assert_log_has(r, 2, want);
    glob_t g;
    ck_assert_int_ne(glob(CK "/nan.res/synthesized/*.png", 0, NULL, &g), 0);
    /* a NaN latest.ckpt (a new file: iter_2 stays good) is skipped on resume */
    ck_assert_int_eq(rename(nan_path, in_run(r, "latest.ckpt")), 0);
    ck_assert_int_eq(train(r, 3, "--max_iters 3 --continue_train"), 0);
    assert_log_has(r, 3, "latest.ckpt was skipped");
    assert_log_has(r, 3, "holds NaN at element 3");
    assert_log_has(r, 3, "resuming from " CK "/nan/iter_0000002.ckpt at iteration 2");
}
END_TEST

START_TEST(huge_crop_size_is_an_error_naming_the_option)
{
    const char *r = "huge";
    fresh(r);
    /* the address-space limit keeps a regression from eating the machine
     * (not under ASan, which reserves terabytes of shadow address space) */
    clsynth_test_tiny_dataset(DATA);
    int st = clsynth_test_sh("%s '%s' train --dataroot " DATA " --checkpoints_dir " CK " --name %s "
                             CLSYNTH_TEST_TINY_RUN " --crop_size 2048 --load_size 2048 --max_iters 1 > " CK
                             "/%s.log1 2>&1",
                             UNDER_ASAN ? "" : "ulimit -v 16000000;", clsynth_test_bin(), r, r);
    ck_assert_int_eq(st, 1);
    assert_log_has(r, 1, "needs an estimated");
    assert_log_has(r, 1, "lower --crop_size or --batchSize");
}
END_TEST

START_TEST(failed_save_names_the_intact_checkpoint_and_trims_losses_csv)
{
    const char *r = "disk_full";
    fresh(r);
    ck_assert_int_eq(train(r, 1, "--max_iters 2 --save_latest_freq 2"), 0);
    file_id latest = id_of(in_run(r, "latest.ckpt"));
    /* files may grow to half a checkpoint: the next save fails like on a full disk */
    long kb = (long)latest.size / 2048;
    clsynth_test_tiny_dataset(DATA);
    int st = clsynth_test_sh("bash -c \"ulimit -f %ld; exec '%s' train --dataroot " DATA " --checkpoints_dir " CK
                             " --name %s " CLSYNTH_TEST_TINY_RUN " --max_iters 5 --save_latest_freq 1 --continue_train\""
                             " > " CK "/%s.log2 2>&1",
                             kb, clsynth_test_bin(), r, r);
    ck_assert_int_eq(st, 1);
    assert_log_has(r, 2, "saving iteration 3 failed");
    assert_log_has(r, 2, "File too large");
    assert_log_has(r, 2, "the previous checkpoint " CK "/disk_full/latest.ckpt (iteration 2) is intact");
    assert_unchanged(in_run(r, "latest.ckpt"), latest);
    ck_assert_int_eq(csv_rows(r), 2);
    glob_t g;
    ck_assert_int_ne(glob(CK "/disk_full/*.tmp.*", 0, NULL, &g), 0);
}
END_TEST

START_TEST(sighup_saves_a_checkpoint_like_sigterm)
{
    const char *r = "sighup";
    fresh(r);
    clsynth_test_tiny_dataset(DATA);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "exec '%s' train --dataroot " DATA " --checkpoints_dir " CK " --name %s " CLSYNTH_TEST_TINY_RUN
                 " --print_freq 1 --max_iters 100000 --save_latest_freq 100000 > " CK "/%s.log1 2>&1",
                 clsynth_test_bin(), r, r);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* until two iterations ran */
    for (int i = 0; i < 600 && !clsynth_test_file_has(log_of(r, 1), "it 2/"); i++)
        nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
    ck_assert_msg(clsynth_test_file_has(log_of(r, 1), "it 2/"), "training did not start: see %s", log_of(r, 1));
    ck_assert_int_eq(kill(pid, SIGHUP), 0);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGHUP, "status %d (signalled: %d)", st, WIFSIGNALED(st));
    assert_log_has(r, 1, "stopped by signal 1 after saving");
    long step = ckpt_step(in_run(r, "latest.ckpt"));
    ck_assert_int_ge(step, 2);
    ck_assert_int_ge(csv_rows(r), step);
}
END_TEST

START_TEST(test_warns_when_a_label_has_no_image)
{
    const char *r = "no_image";
    fresh(r);
    ck_assert_int_eq(train(r, 1, "--max_iters 1"), 0);
    ck_assert_int_eq(clsynth_test_sh("rm -rf " CK "/imgs && cp -r " DATA "/val_img " CK "/imgs && rm " CK
                                     "/imgs/000001.png"),
                     0);
    ck_assert_int_eq(clsynth_test_sh("'%s' test --name %s --checkpoints_dir " CK " --label_dir " DATA
                                     "/val_label --image_dir " CK "/imgs --results_dir " CK "/%s.res > " CK
                                     "/%s.log2 2>&1",
                                     clsynth_test_bin(), r, r, r),
                     0);
    assert_log_has(r, 2, "warning: " DATA "/val_label/000001.png: no image " CK "/imgs/000001");
    assert_log_has(r, 2, "1 of 2 label maps have no image");
}
END_TEST

START_TEST(bad_inputs_name_what_is_wrong)
{
    const char *bin = clsynth_test_bin();
    ck_assert_int_eq(clsynth_test_sh("mkdir -p " CK), 0);
    /* a missing --dataroot is named as such, not as a missing --label_nc */
    ck_assert_int_ne(clsynth_test_sh("'%s' train --dataroot " CK "/no_such_data --checkpoints_dir " CK
                                     " --name x --preset tiny > " CK "/bad.log1 2>&1",
                                     bin),
                     0);
    ck_assert(clsynth_test_file_has(CK "/bad.log1", "--dataroot " CK "/no_such_data: No such file or directory"));
    /* malformed emulation limits are errors, not ignored */
    clsynth_test_tiny_dataset(DATA);
    ck_assert_int_ne(clsynth_test_sh("CLSYNTH_MAX_WG=25x '%s' train --dataroot " DATA " --checkpoints_dir " CK
                                     " --name x " CLSYNTH_TEST_TINY_RUN " > " CK "/bad.log2 2>&1",
                                     bin),
                     0);
    ck_assert(clsynth_test_file_has(CK "/bad.log2", "CLSYNTH_MAX_WG='25x' is not a size"));
    ck_assert_int_ne(clsynth_test_sh("CLSYNTH_MAX_LOCAL_MEM=-1 '%s' train --dataroot " DATA " --checkpoints_dir " CK
                                     " --name x " CLSYNTH_TEST_TINY_RUN " > " CK "/bad.log3 2>&1",
                                     bin),
                     0);
    ck_assert(clsynth_test_file_has(CK "/bad.log3", "CLSYNTH_MAX_LOCAL_MEM='-1' is not a size"));
    /* dataset synth creates the parents of --out */
    ck_assert_int_eq(clsynth_test_sh("rm -rf " CK "/nested && '%s' dataset synth --out " CK
                                     "/nested/a/b --count 1 --val_count 1 --size 16x16 > " CK "/bad.log4 2>&1",
                                     bin),
                     0);
    ck_assert(clsynth_test_exists(CK "/nested/a/b/classes.txt"));
    /* a checkpoint that cannot be opened says why */
    ck_assert_int_ne(clsynth_test_sh("'%s' test --checkpoint " CK "/no_such.ckpt --label_dir x --results_dir x > " CK
                                     "/bad.log5 2>&1",
                                     bin),
                     0);
    ck_assert(clsynth_test_file_has(CK "/bad.log5", CK "/no_such.ckpt: cannot open: No such file or directory"));
    /* an option is not the value of the one before it: this wrote a file named "--list" */
    ck_assert_int_ne(clsynth_test_sh("cd " CK " && '%s' tune --export-class --list > bad.log6 2>&1", bin), 0);
    ck_assert(clsynth_test_file_has(CK "/bad.log6", "--export-class needs a value"));
    ck_assert(!clsynth_test_exists(CK "/--list"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("train_cli");
    TCase *tc = tcase_create("train_cli");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, resume_without_latest_continues_from_the_newest_numbered_checkpoint);
    tcase_add_test(tc, resume_skips_a_damaged_latest_and_says_why);
    tcase_add_test(tc, resume_refuses_a_latest_that_is_not_a_file_naming_it);
    tcase_add_test(tc, resume_never_restarts_a_run_whose_checkpoints_do_not_load);
    tcase_add_test(tc, which_epoch_resumes_from_that_checkpoint_and_keeps_the_later_ones);
    tcase_add_test(tc, which_epoch_unknown_is_an_error_listing_the_checkpoints);
    tcase_add_test(tc, test_which_epoch_selects_the_checkpoint);
    tcase_add_test(tc, train_refuses_an_existing_run_without_continue_train);
    tcase_add_test(tc, overwrite_moves_the_old_run_aside);
    tcase_add_test(tc, losses_csv_drops_rows_past_the_resumed_step);
    tcase_add_test(tc, stale_temporary_files_of_the_run_are_removed_at_start);
    tcase_add_test(tc, non_finite_weights_are_refused_by_test_and_skipped_by_resume);
    tcase_add_test(tc, huge_crop_size_is_an_error_naming_the_option);
    tcase_add_test(tc, failed_save_names_the_intact_checkpoint_and_trims_losses_csv);
    tcase_add_test(tc, sighup_saves_a_checkpoint_like_sigterm);
    tcase_add_test(tc, test_warns_when_a_label_has_no_image);
    tcase_add_test(tc, bad_inputs_name_what_is_wrong);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return clsynth_test_run(suite()); }
