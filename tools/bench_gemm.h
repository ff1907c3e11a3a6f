/* `clsynth bench ops`, GEMM part: every GEMM algorithm of this device
 * (clcore/gemm.h) at 1024^3 and at the GEMM products of the representative
 * convs, against OpenBLAS called directly on host arrays on the same cores
 * (the BLAS-class rate the goal "GEMM at the model's shapes >= 60 % of
 * OpenBLAS" refers to; absent from builds without the host BLAS). */
#ifndef CLSYNTH_BENCH_GEMM_H
#define CLSYNTH_BENCH_GEMM_H

#include <stdbool.h>
#include <stdio.h>

#include "clcore/context.h"
#include "clcore/kdefs.h"
#include "clcore/tuner.h"

#define CLSYNTH_BENCH_GEMM_ALGOS 4 /* clsynth_gemm_algo values 1..3, and OpenBLAS direct at [0] */

typedef struct clsynth_bench_gemm_row {
    clsynth_matmul_shape s;
    char key[CLSYNTH_K_KEY_MAX];
    const char *from;                      /* "1024^3" or the conv shape key it belongs to */
    int uses;                              /* runs per forward + backward of the convs it belongs to */
    double ms[CLSYNTH_BENCH_GEMM_ALGOS];   /* [0] OpenBLAS on host arrays, [a] clsynth_gemm algorithm a; NAN: n/a */
    int default_algo;                      /* what the resolver picks here */
} clsynth_bench_gemm_row;

/* The rows: 1024^3, then the products of each conv2d shape key in convs
 * (the layout the op's defaults pick on this device; a product shared by
 * several convs is one row with their runs summed). Returns the count. */
size_t clsynth_bench_gemm_rows(clsynth_ctx *ctx, const char *const *convs, size_t n_convs,
                               clsynth_bench_gemm_row *rows, size_t cap);

/* The rows: 1024^3, then the GEMM products a recorded step looked up (the
 * 'gemm' jobs of clsynth_tune_jobs_from_recorded, each with its lookups per
 * step as its runs; from = the given label). Returns the count. */
size_t clsynth_bench_gemm_rows_recorded(clsynth_ctx *ctx, const clsynth_tune_job *jobs, size_t n_jobs,
                                        const char *from, clsynth_bench_gemm_row *rows, size_t cap);

/* Measures every row: each legal algorithm (clsynth_gemm called with it
 * forced, C = A B, wall time including the wait for the device and the host
 * BLAS's maps) and OpenBLAS, `rounds` interleaved rounds of the median of
 * `repeats` runs, the fastest round kept. */
int clsynth_bench_gemm_measure(clsynth_ctx *ctx, clsynth_bench_gemm_row *rows, size_t n, int repeats, int rounds);

/* The table on stdout; the JSON array body (one object per line) to f. */
void clsynth_bench_gemm_print(const clsynth_bench_gemm_row *rows, size_t n);
void clsynth_bench_gemm_json(FILE *f, const clsynth_bench_gemm_row *rows, size_t n);

/* Over the conv products (rows[1..]), each weighted by its runs: the time of
 * the default algorithms and of OpenBLAS (ms per forward + backward of every
 * conv once); false when a row lacks either figure. */
bool clsynth_bench_gemm_totals(const clsynth_bench_gemm_row *rows, size_t n, double *default_ms, double *openblas_ms);

/* The default algorithm's GFLOP/s at 1024^3 (rows[0]), NAN when not measured. */
double clsynth_bench_gemm_default_rate(const clsynth_bench_gemm_row *rows, size_t n);

#endif
