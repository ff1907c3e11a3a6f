/* CLBlast GEMM tuning through CLBlastOverrideParameters, bounded.
 *
 * CLBlast keeps every program it compiles in memory, and on PoCL one GEMM
 * program takes seconds to build and hundreds of MB; its own tuner grew past
 * 23 GB. So every parameter set is measured in isolation by a measurement
 * function the caller provides (clsynth's runs the clsynth binary again in a
 * child process under an address-space and a time limit: tools/clblast_worker.c),
 * and only a few candidates are tried:
 *
 *   phase 1  Xgemm (indirect) candidates, GemmRoutine forced indirect;
 *   phase 2  XgemmDirect candidates, GemmRoutine forced direct;
 *   phase 3  the XGEMM_MIN_INDIRECT_SIZE threshold that best splits the
 *            model's shapes between the two winners.
 *
 * Candidates are drawn from the descriptors clsynth_kdef_clblast_xgemm,
 * _xgemm_direct and _gemm_routine (clcore/clblast_kdef.c: names, legal
 * values, CLBlast's rules) within the context's limits. The objective is the
 * total time of the model's GEMM shapes (weighted by how often they run),
 * each checked against a host reference. The winners are stored in the
 * tuning database as records "clblast.Xgemm", "clblast.XgemmDirect",
 * "clblast.GemmRoutine" (shape "sgemm") and applied whenever the database
 * loads (clcore/clblast_apply.c). CLBlast's parameters are per device, not
 * per shape. */
#ifndef CLSYNTH_CLBLAST_TUNE_H
#define CLSYNTH_CLBLAST_TUNE_H

#include <stdbool.h>
#include <stddef.h>

#include "clcore/context.h"
#include "clcore/kdef.h"

typedef struct clsynth_gemm_shape {
    int m, n, k;
    bool ta, tb;     /* row-major op(A), op(B) as the conv op calls CLBlastSgemm */
    double weight;   /* calls per training step */
} clsynth_gemm_shape;

/* A parameter set: has[k] = kernel k (0 Xgemm, 1 XgemmDirect, 2 GemmRoutine)
 * is overridden with the values v[k] of its descriptor; otherwise CLBlast's own. */
typedef struct clsynth_clblast_params {
    bool has[3];
    int v[3][CLSYNTH_K_MAX_PARAMS];
} clsynth_clblast_params;

/* Measures shapes under params in isolation: ms[i] receives the median of
 * shape i (negative: failed or wrong result). Returns 0; 1 when the
 * measurement failed (why says how); -1 on a fatal error (ctx->err). */
typedef int (*clsynth_clblast_measure_fn)(void *user, clsynth_ctx *ctx, const clsynth_gemm_shape *shapes, size_t n,
                                          const clsynth_clblast_params *params, int repeats, double *ms, char *why,
                                          size_t why_len);

typedef struct clsynth_clblast_tune_opts {
    double budget_s;            /* wall clock for the whole CLBlast search */
    int repeats;                /* timed calls per shape (median), default 3 */
    int max_shapes;             /* the heaviest shapes kept (default 24) */
    unsigned seed;
    bool verbose;               /* one line per candidate on stderr */
    clsynth_clblast_measure_fn measure;
    void *user;
} clsynth_clblast_tune_opts;

typedef struct clsynth_clblast_tune_result {
    double default_ms, tuned_ms; /* weighted total of the shapes, CLBlast default vs tuned */
    int tried, failed;
    bool improved;
    clsynth_clblast_params best;
} clsynth_clblast_tune_result;

/* The GEMMs (forward, dW, dX) that clsynth_conv2d's im2col+GEMM path runs
 * for a conv2d shape key under CLBlast (the merged layout, the default column
 * budget: clsynth_conv_gemm_products), appended to shapes (merged with equal
 * ones). Returns the new count. */
size_t clsynth_conv_gemm_shapes(const char *conv_key, double uses, clsynth_gemm_shape *shapes, size_t n,
                                size_t cap);

/* Runs the search and stores the winners in the database (when better than
 * CLBlast's default by 3%). */
int clsynth_clblast_tune(clsynth_ctx *ctx, const clsynth_gemm_shape *shapes, size_t n,
                         const clsynth_clblast_tune_opts *opts, clsynth_clblast_tune_result *res);

/* In this process: applies params (CLBlast keeps them for the process), runs
 * each shape repeats+1 times (the first is a warm-up) and checks 48 sampled
 * elements against a double-precision host product: ms[i] the median device
 * time, err[i] the worst error in units of the tolerance (<= 1: right).
 * Returns 0, or 1 with why. What a measurement worker runs. */
int clsynth_clblast_measure_here(clsynth_ctx *ctx, const clsynth_gemm_shape *shapes, size_t n,
                                 const clsynth_clblast_params *params, int repeats, double *ms, double *err,
                                 char *why, size_t why_len);

/* The stored parameters of this device (device or class entries), if any,
 * whether or not tuned lookups are on; applies nothing. */
bool clsynth_clblast_stored(clsynth_ctx *ctx, clsynth_clblast_params *out);
/* CLBlastOverrideParameters for kernel `which` (0..2) with values v. */
int clsynth_clblast_override(cl_device_id dev, int which, const int *v, char *why, size_t len);
/* The descriptor of kernel `which` (0..2). */
const clsynth_kdef *clsynth_clblast_kdef(int which);

#endif
