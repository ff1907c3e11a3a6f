/* The autotuner: for each (kernel descriptor, shape key) job it runs the
 * public op at that shape (the descriptor's harness) under its default
 * configuration (the reference) and under legal candidates, each passed to
 * the op explicitly (clsynth_kforce), checks every candidate's results against the reference,
 * times each with profiling events (warm-up first, then the median of
 * repeats) and stores the fastest in the tuning database.
 *
 * Search: spaces up to opts.exhaustive_max candidates are searched
 * exhaustively; larger ones by a guided search (a spread sample, then
 * coordinate descent from the best: each parameter moved to its neighbouring
 * values while that improves). Everything is bounded by a wall-clock budget,
 * shared fairly between the jobs still to run; jobs already tuned for the
 * current kernel source are skipped (resume). */
#ifndef CLSYNTH_TUNER_H
#define CLSYNTH_TUNER_H

#include <stdbool.h>
#include <stddef.h>

#include "clcore/context.h"
#include "clcore/kdef.h"
#include "clcore/tunedb.h"

typedef struct clsynth_tune_job {
    const clsynth_kdef *def;
    char shape[CLSYNTH_TUNE_SHAPE_MAX];
    unsigned long uses; /* how often the model looks it up per step (informative) */
} clsynth_tune_job;

typedef enum clsynth_tune_status {
    CLSYNTH_TUNE_PENDING = 0,
    CLSYNTH_TUNE_TUNED,        /* a candidate beat the default: stored */
    CLSYNTH_TUNE_DEFAULT_BEST, /* default kept (stored as such, so a resume skips it) */
    CLSYNTH_TUNE_ALREADY,      /* in the database already (resume) */
    CLSYNTH_TUNE_NO_TIME,      /* budget exhausted before or during the job */
    CLSYNTH_TUNE_FAILED,       /* the op failed at its default configuration, or the shape is unknown */
} clsynth_tune_status;

typedef struct clsynth_tune_result {
    clsynth_tune_status status;
    double default_ms, best_ms;  /* median device time of one run (forward, + backward if the kernel is in it) */
    int best[CLSYNTH_K_MAX_PARAMS]; /* the stored values (TUNED) */
    char best_desc[160];
    int legal, tried, illegal, mismatched, failed; /* candidate counts */
    char note[256];              /* why it failed / skipped */
} clsynth_tune_result;

typedef struct clsynth_tune_progress {
    size_t job, jobs;          /* current job (0-based) and count */
    const clsynth_tune_job *j;
    int candidate, candidates; /* candidates tried so far in this job, and the planned count */
    double elapsed_s, budget_s;
    const clsynth_tune_result *r;
    bool job_done;
} clsynth_tune_progress;

typedef struct clsynth_tune_opts {
    double budget_s;    /* wall-clock budget of the whole run; <= 0: none */
    int repeats;        /* timed runs per candidate (median); default 5 */
    int exhaustive_max; /* spaces up to this many legal candidates are searched exhaustively (default 48) */
    int max_candidates; /* cap per job (0: no cap beyond the budget) */
    double min_gain;    /* keep a candidate only when faster than the default by this fraction (0.03) */
    bool retune;        /* tune jobs already in the database too */
    bool save;          /* save the database after each job (resumable) */
    unsigned seed;
    void (*progress)(void *user, const clsynth_tune_progress *p);
    void *user;
} clsynth_tune_opts;

void clsynth_tune_opts_default(clsynth_tune_opts *o);

/* Tunes the jobs in order. results (may be NULL) receives one per job.
 * Returns 0 (individual job failures are in the results), -1 on a fatal error. */
int clsynth_tune_run(clsynth_ctx *ctx, const clsynth_tune_job *jobs, size_t n, const clsynth_tune_opts *opts,
                     clsynth_tune_result *results);

/* Whether values v are a candidate the tuner may run at shape (a key) on
 * this context: declared values and constraints, the work-group and local
 * memory within the context's limits and within the kernels'
 * CL_KERNEL_WORK_GROUP_SIZE (with build_check: the kernels built with v;
 * without: the bound of clsynth_kdef_kernel_wg_bound). False with why. */
bool clsynth_tune_legal(clsynth_ctx *ctx, const clsynth_kdef *def, const int *v, const char *shape,
                        bool build_check, char *why, size_t why_len);

/* Enumerates the legal candidates of def at shape (all, in candidate order).
 * v_out receives count * def->n_params values (malloc'ed). */
int clsynth_tune_enumerate(clsynth_ctx *ctx, const clsynth_kdef *def, const char *shape, bool build_check,
                           int **v_out, size_t *count);

/* Runs the op of def at shape once under force (NULL: as the op resolves
 * its configuration, from the database or the defaults), filling results
 * (host copies of the output and, for backward kernels, the input
 * gradients; malloc'ed, *n floats) and/or the median device time of
 * `repeats` runs after one warm-up (ms may be NULL). For tests and bench. */
int clsynth_tune_measure(clsynth_ctx *ctx, const clsynth_kdef *def, const char *shape, clsynth_kforce *force,
                         int repeats, float **results, size_t *n, double *ms, double *flops, double *bytes);

/* Compares a candidate's results with the reference: every element within
 * 1e-4 * max|ref| + 1e-3 * |ref|; NaN only where the reference has NaN.
 * Returns true when they match; *worst gets the worst error ratio. */
bool clsynth_tune_results_match(const float *cand, const float *ref, size_t n, double *worst);

/* Jobs of the shapes recorded by the database's recorder (clsynth_tunedb_record)
 * whose kernel has a descriptor with a harness; *n_unknown counts the
 * recorded keys without one. jobs is malloc'ed. */
int clsynth_tune_jobs_from_recorded(clsynth_ctx *ctx, clsynth_tune_job **jobs, size_t *n, size_t *n_unknown);

/* Monotonic seconds. */
double clsynth_now_s(void);

#endif
