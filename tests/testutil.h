/* Helpers shared by the Check tests. */
#ifndef CLSYNTH_TESTUTIL_H
#define CLSYNTH_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "clcore/autograd.h"
#include "clcore/context.h"
#include "clcore/tensor.h"

/* Runs the suite (CK_NORMAL output) and returns 0 when every test passed. */
int clsynth_test_run(Suite *s);

/* The main of a test file: the tests as one suite and test case `name`,
 * each with a fresh context in *ctx (clsynth_test_ctx before, freed after;
 * ctx NULL: none) and a timeout of timeout_s seconds (1800 under Oclgrind).
 *   return clsynth_test_main("norm", &ctx, 300, CLSYNTH_TEST_LIST(a, b, c));
 * Returns the exit status. */
int clsynth_test_main(const char *name, clsynth_ctx **ctx, int timeout_s, const TTest *const *tests, int n);
/* As clsynth_test_main, but one test case per test, named as the test, so
 * CK_RUN_CASE=<test name> runs one (slow implementations run a file's tests
 * one at a time this way). */
int clsynth_test_main_cases(const char *name, clsynth_ctx **ctx, int timeout_s, const TTest *const *tests, int n);
#define CLSYNTH_TEST_LIST(...)                    \
    (const TTest *const[]){ __VA_ARGS__ },         \
        (int)(sizeof((const TTest *const[]){ __VA_ARGS__ }) / sizeof(const TTest *))

/* Path to ../shared next to the source tree (from CLSYNTH_SHARED_DIR), or NULL. */
const char *clsynth_test_shared_dir(void);

/* True when running under Oclgrind (CLSYNTH_OCLGRIND set): use small shapes. */
int clsynth_test_under_oclgrind(void);

/* True when CLSYNTH_TEST_QUICK is set and not "0": the suite runs on a slow
 * implementation (rusticl in CI, about 20x PoCL's time per launch). Tests then
 * run fewer or smaller cases; a test left out says so with
 * clsynth_test_skip_in_quick_mode. */
int clsynth_test_quick(void);

/* In quick mode prints "<what>: left out under CLSYNTH_TEST_QUICK ..." and
 * returns 1 (the caller returns); else returns 0. */
int clsynth_test_skip_in_quick_mode(const char *what);

/* Context on the default device (CLSYNTH_DEVICE honoured), quiet; fails the test on error. */
clsynth_ctx *clsynth_test_ctx(void);

/* Writes a tuning-database file for vendor / device / driver (NULLs: the
 * context's device) holding `entries` (entry lines); fails the test on error. */
void clsynth_test_write_tunedb(const clsynth_ctx *ctx, const char *path, const char *vendor, const char *device,
                               const char *driver, const char *entries);

/* Deterministic host data: uniform in [lo, hi) from a seed. */
void clsynth_test_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed);

/* Persistent input tensor that requires grad, filled from host data. */
clsynth_tensor *clsynth_test_input(clsynth_ctx *ctx, const char *name, int n, int c, int h, int w,
                                   const float *host);

/* From now on every activation ctx releases is first filled with NaN, so a
 * computation that reads one after its release (a backward that frees too
 * early) gives NaN instead of the right value. Counts them in *n (may be NULL). */
void clsynth_test_poison_releases(clsynth_ctx *ctx, unsigned long *n);

/* Downloads t into a new malloc'ed array (fails the test on error). */
float *clsynth_test_download(clsynth_ctx *ctx, const clsynth_tensor *t);

/* Max |a-b| / (atol + rtol*|b|) over n elements; <= 1 means within tolerance.
 * *worst receives the index of the worst element. */
double clsynth_test_compare(const float *a, const float *b, size_t n, double atol, double rtol, size_t *worst);

/* Asserts a (device) matches b (reference) within atol + rtol*|b|, naming what. */
void clsynth_test_assert_close(const char *what, const float *a, const float *b, size_t n, double atol,
                               double rtol);

/* Gradient check by central finite differences.
 *   fn builds the forward pass from the inputs and returns the output tensor.
 *   The scalar checked is L = sum(out * R) for a fixed random R, computed in
 *   double on the host; analytic gradients come from clsynth_backward_with(out, R).
 *   For each input, up to `samples` elements (spread over the tensor) are
 *   perturbed by +-eps. Passes when |analytic - numeric| <= atol + rtol*|numeric|
 *   for every sampled element; otherwise fails the test naming the input,
 *   element, both values. Inputs must be persistent tensors (clsynth_test_input). */
typedef clsynth_tensor *(*clsynth_test_forward_fn)(clsynth_ctx *ctx, clsynth_tensor **inputs, void *user);
void clsynth_test_gradcheck(clsynth_ctx *ctx, const char *what, clsynth_test_forward_fn fn,
                            clsynth_tensor **inputs, int n_inputs, void *user, float eps, double atol,
                            double rtol, int samples);

/* Runs fn's backward twice without zeroing the inputs' gradients and asserts
 * every gradient doubled (backward functions must accumulate). */
void clsynth_test_check_accumulates(clsynth_ctx *ctx, const char *what, clsynth_test_forward_fn fn,
                                    clsynth_tensor **in, int n_in, void *user);

/* Path of the clsynth binary: $CLSYNTH_BIN, else ../clsynth beside the test
 * executable's folder (the build tree). Asserts that it is executable. */
const char *clsynth_test_binary(void);

/* Rewrites the version field of a checkpoint file (io/checkpoint.h) and its
 * CRC, e.g. to make a file as an older build wrote it. */
void clsynth_test_set_checkpoint_version(const char *path, uint32_t version);

#endif
