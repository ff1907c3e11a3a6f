/* clsynth ablate resumes: a second run retrains and re-evaluates nothing; a
 * variant whose evaluation is missing is evaluated again without retraining;
 * a variant interrupted before its training finished resumes from its
 * checkpoint. Runs the clsynth binary next to the tests folder of the build
 * (or $CLSYNTH_BIN) on a tiny synthetic dataset: 32x32, 2 iterations. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static const char *bin;

static void find_binary(void) { bin = clsynth_test_binary(); }

static double mtime_of(const char *path)
{
    struct stat st;
    ck_assert_msg(stat(path, &st) == 0, "missing %s", path);
    return (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9;
}

static int run_ablate(const char *log)
{
    char cmd[PATH_MAX + 256];
    snprintf(cmd, sizeof cmd, "'%s' ablate --config abl_test/ablate.conf > %s 2>&1", bin, log);
    return system(cmd);
}

static int log_has(const char *log, const char *text)
{
    FILE *f = fopen(log, "r");
    if (!f)
        return 0;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return strstr(buf, text) != NULL;
}

START_TEST(ablate_resumes_without_retraining)
{
    find_binary();
    ck_assert_int_eq(system("rm -rf abl_test && mkdir -p abl_test"), 0);
    FILE *f = fopen("abl_test/ablate.conf", "w");
    ck_assert(f);
    fprintf(f, "# tiny ablation for the resume test\n"
               "out = abl_test/out\n"
               "dataroot = abl_test/data\n"
               "synth = 4 2 32x32 5\n"
               "common = --preset tiny --crop_size 32 --ngf 4 --ndf 4 --nhidden 8 --batchSize 2 --max_iters 2 "
               "--seed 3 --no_vgg_loss --display_freq 1000000 --print_freq 1 --save_latest_freq 1000000\n"
               "segmenter = --crop_size 32 --nf 2 --batchSize 2 --max_iters 2 --print_freq 1\n"
               "eval = --max_images 2 --batchSize 2 --samples 2\n"
               "variant full =\n"
               "variant no_cond_attention = --no_cond_attention\n");
    fclose(f);
    ck_assert_msg(run_ablate("abl_test/log1.txt") == 0, "first run failed: see abl_test/log1.txt");
    const char *files[] = { "abl_test/out/segmenter.ckpt", "abl_test/out/runs/full/latest.ckpt",
                            "abl_test/out/runs/full/eval.json", "abl_test/out/runs/no_cond_attention/latest.ckpt",
                            "abl_test/out/runs/no_cond_attention/eval.json", "abl_test/out/ablation.md",
                            "abl_test/out/ablation_grid.png" };
    double t[7];
    for (int i = 0; i < 7; i++)
        t[i] = mtime_of(files[i]);
    ck_assert(log_has("abl_test/out/ablation.md", "| full |"));
    ck_assert(log_has("abl_test/out/ablation.md", "| no_cond_attention |"));

    /* Second run: everything is done; nothing is retrained or re-evaluated. */
    sleep(1);
    ck_assert_msg(run_ablate("abl_test/log2.txt") == 0, "second run failed: see abl_test/log2.txt");
    ck_assert(log_has("abl_test/log2.txt", "segmenter abl_test/out/segmenter.ckpt exists: not retrained"));
    ck_assert(log_has("abl_test/log2.txt", "full: trained and evaluated before: skipped"));
    ck_assert(log_has("abl_test/log2.txt", "no_cond_attention: trained and evaluated before: skipped"));
    for (int i = 0; i < 5; i++)
        ck_assert_msg(mtime_of(files[i]) == t[i], "%s was rewritten by the second run", files[i]);

    /* A missing evaluation is redone without retraining. */
    ck_assert_int_eq(unlink("abl_test/out/runs/no_cond_attention/eval.json"), 0);
    ck_assert_msg(run_ablate("abl_test/log3.txt") == 0, "third run failed: see abl_test/log3.txt");
    ck_assert(log_has("abl_test/log3.txt", "no_cond_attention: evaluating"));
    ck_assert(!log_has("abl_test/log3.txt", "no_cond_attention: training"));
    ck_assert_msg(mtime_of(files[3]) == t[3], "the checkpoint of no_cond_attention was rewritten");
    ck_assert(mtime_of(files[4]) > t[4]);
    ck_assert_msg(mtime_of(files[2]) == t[2], "full was re-evaluated");

    /* Training interrupted (no train_done marker, a checkpoint left): resumes
     * from the checkpoint, which is already at the budget, then evaluates. */
    ck_assert_int_eq(unlink("abl_test/out/runs/full/train_done.txt"), 0);
    ck_assert_int_eq(unlink("abl_test/out/runs/full/eval.json"), 0);
    ck_assert_msg(run_ablate("abl_test/log4.txt") == 0, "fourth run failed: see abl_test/log4.txt");
    ck_assert(log_has("abl_test/log4.txt", "full: training, resumed from its checkpoint"));
    ck_assert_msg(mtime_of(files[1]) == t[1], "the full run trained again past its budget");
    ck_assert(log_has("abl_test/out/runs/full/train_done.txt", "iterations 2"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ablate");
    TCase *tc = tcase_create("ablate");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, ablate_resumes_without_retraining);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return clsynth_test_run(suite()); }
