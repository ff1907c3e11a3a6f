/* The crash-safety check shared by test_train_crash (CI: a few kills) and
 * test_slow_train_crash (many): a training run that saves every iteration is
 * killed with SIGKILL at random moments and resumed each time; after every
 * kill, every checkpoint left must load and losses.csv must be well formed and
 * cover the newest checkpoint's iteration; at the end a clean resume must
 * reach its budget with exactly one row per iteration and no temporary file
 * left. */
#ifndef CLSYNTH_TEST_TRAIN_CRASH_H
#define CLSYNTH_TEST_TRAIN_CRASH_H

#include <stdint.h>

/* Returns the number of kills that landed after the first checkpoint. */
int clsynth_test_kill_and_resume(const char *name, int kills, uint64_t seed);

#endif
