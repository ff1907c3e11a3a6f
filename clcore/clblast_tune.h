/* CLBlast GEMM tuning through CLBlastOverrideParameters, bounded.
 *
 * CLBlast keeps every program it compiles in memory, and on PoCL one GEMM
 * program takes seconds to build and hundreds of MB; its own tuner grew past
 * 23 GB. So every parameter set is measured in a child process (the clsynth
 * binary re-executed in worker mode) under an address-space limit
 * (setrlimit) and a time limit, and only a few candidates are tried:
 *
 *   phase 1  Xgemm (indirect) candidates, GemmRoutine forced indirect;
 *   phase 2  XgemmDirect candidates, GemmRoutine forced direct;
 *   phase 3  the XGEMM_MIN_INDIRECT_SIZE threshold that best splits the
 *            model's shapes between the two winners.
 *
 * The objective is the total time of the model's GEMM shapes (weighted by
 * how often they run), each checked against a host reference. The winners
 * are stored in the tuning database as records "clblast.Xgemm",
 * "clblast.XgemmDirect", "clblast.GemmRoutine" (shape "sgemm", options
 * "-DNAME=value ...") and applied with CLBlastOverrideParameters whenever the
 * database loads, so a device missing from CLBlast's own database still gets
 * tuned GEMMs. CLBlast's parameters are per device, not per shape. */
#ifndef CLSYNTH_CLBLAST_TUNE_H
#define CLSYNTH_CLBLAST_TUNE_H

#include <stdbool.h>
#include <stddef.h>

#include "clcore/context.h"

typedef struct clsynth_gemm_shape {
    int m, n, k;
    bool ta, tb;     /* row-major op(A), op(B) as the conv op calls CLBlastSgemm */
    double weight;   /* calls per training step */
} clsynth_gemm_shape;

/* Parameter sets: "NAME=v,NAME=v,..." strings; "" = CLBlast's own. */
typedef struct clsynth_clblast_params {
    char xgemm[256];
    char xgemm_direct[192];
    char routine[64];  /* "XGEMM_MIN_INDIRECT_SIZE=v" */
} clsynth_clblast_params;

typedef struct clsynth_clblast_worker_cfg {
    const char *exe;            /* program to run in worker mode (NULL: /proc/self/exe) */
    const char *const *argv;    /* arguments that select worker mode, e.g. {"tune", "--clblast-worker"} */
    int argc;
    size_t mem_limit;           /* address-space limit of the child (0: 6 GiB) */
    double timeout_s;           /* per worker run (0: 300) */
} clsynth_clblast_worker_cfg;

typedef struct clsynth_clblast_tune_opts {
    double budget_s;            /* wall clock for the whole CLBlast search */
    int repeats;                /* timed calls per shape (median), default 3 */
    int max_shapes;             /* the heaviest shapes kept (default 24) */
    unsigned seed;
    bool verbose;               /* one line per candidate on stderr */
    clsynth_clblast_worker_cfg worker;
} clsynth_clblast_tune_opts;

typedef struct clsynth_clblast_tune_result {
    double default_ms, tuned_ms; /* weighted total of the shapes, CLBlast default vs tuned */
    int tried, failed;
    bool improved;
    clsynth_clblast_params best;
} clsynth_clblast_tune_result;

/* The GEMMs (forward, dW, dX; per sample) that clsynth_conv2d's im2col+GEMM
 * path runs for a conv2d shape key "N..C..H..W..O..K..x..S..P..", appended to
 * shapes (merged with equal ones). Returns the new count. */
size_t clsynth_conv_gemm_shapes(const char *conv_key, double uses, clsynth_gemm_shape *shapes, size_t n,
                                size_t cap);

/* Runs the search and stores the winners in the database (when better than
 * CLBlast's default by 3%). */
int clsynth_clblast_tune(clsynth_ctx *ctx, const clsynth_gemm_shape *shapes, size_t n,
                         const clsynth_clblast_tune_opts *opts, clsynth_clblast_tune_result *res);

/* Measures shapes under params (NULL: CLBlast's defaults) in a worker; ms[i]
 * receives the median of shape i (negative: failed or wrong result). */
int clsynth_clblast_measure(clsynth_ctx *ctx, const clsynth_gemm_shape *shapes, size_t n,
                            const clsynth_clblast_params *params, int repeats,
                            const clsynth_clblast_worker_cfg *worker, double *ms);

/* Worker mode: argv after the selecting arguments. Prints "shape <i> <ms> <err>"
 * lines and "ok" on stdout; returns the exit status. */
int clsynth_clblast_worker_main(int argc, char **argv);

/* The stored parameters of this device (from the database), if any. */
bool clsynth_clblast_stored(clsynth_ctx *ctx, clsynth_clblast_params *out);

#endif
