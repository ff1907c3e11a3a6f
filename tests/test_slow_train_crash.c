/* Crash safety, the long version: 25 SIGKILLs at random moments of a training
 * run that saves every iteration, each followed by a resume (see
 * tests/train_crash.h). At least 20 of them must land after the first
 * checkpoint, so most kills hit a run with checkpoints to lose. */
#include "testutil.h"
#include "train_crash.h"

START_TEST(kill_9_twenty_five_times_loses_no_checkpoint_and_no_loss_row)
{
    int landed = clsynth_test_kill_and_resume("slow", 25, 2024);
    ck_assert_msg(landed >= 20, "only %d of 25 kills came after the first checkpoint", landed);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("slow_train_crash");
    TCase *tc = tcase_create("slow_train_crash");
    tcase_set_timeout(tc, 3000);
    tcase_add_test(tc, kill_9_twenty_five_times_loses_no_checkpoint_and_no_loss_row);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return clsynth_test_run(suite()); }
