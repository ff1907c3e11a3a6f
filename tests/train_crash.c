#include "train_crash.h"

#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cliutil.h"
#include "io/checkpoint.h"

#define DATA "crash_data"
#define CK "crash_ck"

static pid_t start_training(const char *name, long max_iters, int k)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "exec '%s' train --dataroot " DATA " --checkpoints_dir " CK " --name %s " CLSYNTH_TEST_TINY_RUN
             " --save_latest_freq 1 --max_iters %ld --continue_train > " CK "/%s.log%d 2>&1",
             clsynth_test_bin(), name, max_iters, name, k);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Complete rows of losses.csv (1, 2, ... in order after the header; a last
 * line torn by the kill is allowed: resume drops it). */
static long complete_rows(const char *path)
{
    char *s = clsynth_test_slurp(path);
    if (!s)
        return -1; /* killed before the run folder had one */
    ck_assert_msg(strncmp(s, "iteration,", 10) == 0, "%s has no header: %.80s", path, s);
    long n = 0;
    for (char *p = strchr(s, '\n'); p && p[1]; p = strchr(p, '\n')) {
        p++;
        if (!strchr(p, '\n'))
            break; /* torn */
        long it = strtol(p, NULL, 10);
        ck_assert_msg(it == n + 1, "%s: row %ld has iteration %ld", path, n + 1, it);
        n++;
    }
    free(s);
    return n;
}

/* Every checkpoint in the run loads; returns the highest iteration among them
 * (-1: none). Keeps the disk bounded: numbered checkpoints older than the
 * newest two go after they were checked. */
static long check_checkpoints(const char *run, int round)
{
    DIR *d = opendir(run);
    if (!d)
        return -1;
    long best = -1, steps[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".ckpt") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", run, e->d_name);
        clsynth_err err;
        clsynth_checkpoint *ck = clsynth_checkpoint_load(path, &err);
        ck_assert_msg(ck, "after kill %d: %s", round, err.msg);
        long s = (long)ck->step;
        clsynth_checkpoint_free(ck);
        if (s > best)
            best = s;
        if (strncmp(e->d_name, "iter_", 5) == 0 && n < 4096)
            steps[n++] = s;
    }
    closedir(d);
    for (int i = 0; i < n; i++) {
        int newer = 0;
        for (int j = 0; j < n; j++)
            newer += steps[j] > steps[i];
        if (newer >= 2) {
            char path[1024];
            snprintf(path, sizeof path, "%s/iter_%07ld.ckpt", run, steps[i]);
            unlink(path);
        }
    }
    return best;
}

int clsynth_test_kill_and_resume(const char *name, int kills, uint64_t seed)
{
    clsynth_test_tiny_dataset(DATA);
    ck_assert_int_eq(clsynth_test_sh("mkdir -p " CK " && rm -rf " CK "/%s " CK "/%s.log*", name, name), 0);
    char run[512], csv[600];
    snprintf(run, sizeof run, CK "/%s", name);
    snprintf(csv, sizeof csv, "%s/losses.csv", run);
    uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
    int after_first_save = 0;
    for (int k = 0; k < kills; k++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        /* 0.3 .. 5 s: from the start-up (context, memory estimate, resume) into training */
        long ms = 300 + (long)((s >> 33) % 4700);
        pid_t pid = start_training(name, 1000000, k);
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        int st = 0;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "kill %d: the run ended by itself (status %d): see "
                      CK "/%s.log%d", k, st, name, k);
        long step = check_checkpoints(run, k);
        long rows = complete_rows(csv);
        ck_assert_msg(step < 0 || rows >= step, "after kill %d at %ld ms: losses.csv has %ld rows, the newest "
                      "checkpoint is at iteration %ld", k, ms, rows, step);
        after_first_save += step >= 0;
    }
    /* a clean finish: two iterations past the newest checkpoint */
    long step = check_checkpoints(run, kills);
    long budget = (step > 0 ? step : 0) + 2;
    pid_t pid = start_training(name, budget, kills);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the final resume failed (status %d): see " CK "/%s.log%d",
                  st, name, kills);
    char why[512] = "";
    long rows = clsynth_test_csv_rows(csv, why, sizeof why);
    ck_assert_msg(rows == budget, "losses.csv after the final resume: %s (%ld rows, want %ld)", why, rows, budget);
    ck_assert_int_eq(check_checkpoints(run, kills + 1), budget);
    ck_assert_msg(clsynth_test_sh("ls %s/*.tmp.* %s/web/*.tmp.* > /dev/null 2>&1", run, run) != 0,
                  "temporary files are left in %s", run);
    return after_first_save;
}
