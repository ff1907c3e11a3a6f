/* Helpers for tests that run the clsynth binary (training runs, resume). */
#ifndef CLSYNTH_TEST_CLIUTIL_H
#define CLSYNTH_TEST_CLIUTIL_H

#include <stdbool.h>
#include <stddef.h>

/* The clsynth binary next to the tests folder of the build, or $CLSYNTH_BIN
 * (fails the test when there is none). */
const char *clsynth_test_bin(void);

/* Runs a shell command (printf-style); returns its exit status, or 128+signal
 * when a signal ended it. */
int clsynth_test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The whole file as a NUL-terminated string (malloc'ed), or NULL. */
char *clsynth_test_slurp(const char *path);
/* True when the file contains text. */
bool clsynth_test_file_has(const char *path, const char *text);
bool clsynth_test_exists(const char *path);

/* Checks losses.csv: a header line, then rows 1, 2, ... n in order, each
 * complete. Returns n (0: only a header), or -1 with *why filled. */
long clsynth_test_csv_rows(const char *path, char *why, size_t why_len);

/* Writes the synthetic dataset of the training tests (32x32, 4 + 2 scenes)
 * into dir unless it is there. */
void clsynth_test_tiny_dataset(const char *dir);

/* The flags of a tiny, fast training run on that dataset (no VGG, 32x32). */
#define CLSYNTH_TEST_TINY_RUN                                                                                     \
    "--preset tiny --crop_size 32 --load_size 32 --ngf 4 --ndf 4 --nhidden 8 --batchSize 2 --no_vgg_loss "        \
    "--display_freq 1000000 --print_freq 1000000"

#endif
