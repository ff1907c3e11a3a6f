/* `clsynth train --autotune S`: the first iteration's (kernel, shape) lookups
 * are tuned within S seconds into the device's tuning database, training then
 * goes on and completes, a second run finds the stored shapes done, and MPI
 * runs are refused before anything is written (every rank would tune the same
 * shapes into one file). Runs the clsynth binary on the tiny dataset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cliutil.h"
#include "testutil.h"

#define DATA "at_data"
#define CK "at_ck"
#define DB "at_tune.txt"

static int train(const char *name, const char *env, const char *extra, const char *log)
{
    clsynth_test_tiny_dataset(DATA);
    return clsynth_test_sh("rm -rf " CK "/%s && mkdir -p " CK " && %s CLSYNTH_TUNE_FILE=" DB " '%s' train --dataroot " DATA
                           " --checkpoints_dir " CK " --name %s " CLSYNTH_TEST_TINY_RUN " %s > %s 2>&1",
                           name, env, clsynth_test_bin(), name, extra, log);
}

static void assert_has(const char *path, const char *text)
{
    char *s = clsynth_test_slurp(path);
    ck_assert_msg(s && strstr(s, text), "%s lacks \"%s\"; it says:\n%s", path, text, s ? s : "(nothing)");
    free(s);
}

/* the count before `what` in the tuner's summary line, e.g. "3 done before" */
static long summary_count(const char *path, const char *what)
{
    char *s = clsynth_test_slurp(path);
    ck_assert_msg(s != NULL, "cannot read %s", path);
    char *at = strstr(s, what);
    ck_assert_msg(at != NULL, "%s has no \"%s\":\n%s", path, what, s);
    while (at > s && at[-1] == ' ')
        at--;
    while (at > s && at[-1] >= '0' && at[-1] <= '9')
        at--;
    long n = strtol(at, NULL, 10);
    free(s);
    return n;
}

START_TEST(autotune_tunes_the_first_step_into_the_database_then_trains)
{
    ck_assert_int_eq(clsynth_test_sh("rm -f " DB), 0);
    /* 20 s: under load, with PoCL's kernel cache cold, the first jobs' CLBlast
     * builds took a 5 s budget (two jobs cut short, nothing stored) */
    ck_assert_int_eq(train("a", "", "--max_iters 3 --autotune 20", CK "/a.log1"), 0);
    assert_has(CK "/a.log1", "--autotune 20: tuning the shapes of the first iteration");
    assert_has(CK "/a.log1", "database: " DB);
    assert_has(CK "/a.log1", "3 iterations (3 new)");
    long stored = summary_count(CK "/a.log1", " tuned, ") + summary_count(CK "/a.log1", " kept their default");
    ck_assert_msg(stored > 0, "nothing tuned within the budget");
    assert_has(DB, "clsynth-tunedb 1");
    assert_has(DB, "conv"); /* the convolutions of the step are among the shapes tuned first */
    ck_assert(clsynth_test_exists(CK "/a/latest.ckpt"));

    /* the same shapes again: what the first run stored is not tuned again */
    ck_assert_int_eq(train("a", "", "--max_iters 2 --autotune 5", CK "/a.log2"), 0);
    ck_assert_int_gt(summary_count(CK "/a.log2", " done before"), 0);
    assert_has(CK "/a.log2", "2 iterations (2 new)");
}
END_TEST

START_TEST(autotune_under_mpi_is_refused_before_anything_is_written)
{
    ck_assert_int_eq(clsynth_test_sh("rm -f " DB), 0);
    ck_assert_int_ne(train("m", "OMPI_COMM_WORLD_SIZE=2", "--max_iters 1 --autotune 5", CK "/m.log"), 0);
    assert_has(CK "/m.log", "--autotune is not supported under MPI (2 ranks)");
    ck_assert(!clsynth_test_exists(CK "/m"));
    ck_assert(!clsynth_test_exists(DB));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("train_autotune");
    TCase *tc = tcase_create("train_autotune");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, autotune_tunes_the_first_step_into_the_database_then_trains);
    tcase_add_test(tc, autotune_under_mpi_is_refused_before_anything_is_written);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return clsynth_test_run(suite()); }
