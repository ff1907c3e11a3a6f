/* Crash safety in the CI suite: a training run saving every iteration is
 * killed with SIGKILL 3 times at random moments and resumed (see
 * tests/train_crash.h; test_slow_train_crash does it 25 times). */
#include "testutil.h"
#include "train_crash.h"

START_TEST(kill_9_at_random_moments_loses_no_checkpoint_and_no_loss_row)
{
    clsynth_test_kill_and_resume("ci", 3, 11);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("train_crash");
    TCase *tc = tcase_create("train_crash");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, kill_9_at_random_moments_loses_no_checkpoint_and_no_loss_row);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return clsynth_test_run(suite()); }
