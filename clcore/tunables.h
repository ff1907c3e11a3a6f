/* The registry of tunable kernels: for every kernel key that an op passes to
 * clsynth_tune_lookup, the names and legal values of its tunables, the
 * constraints between them, the local memory a configuration needs, and a
 * small harness that runs the public op at a shape key (so the tuner tunes
 * ops, exactly as the model calls them, and checks each candidate's result
 * against the op's default configuration).
 *
 * A candidate is one value per parameter. Parameters are compile-time -D
 * defines, local-size dimensions (0 in dimension 0 = the launch helper's
 * default) or the algorithm number of a multi-algorithm op. The registry is
 * data: the tuner (clcore/tuner.c) is generic, and tests can pass their own
 * clsynth_tunable tables. */
#ifndef CLSYNTH_TUNABLES_H
#define CLSYNTH_TUNABLES_H

#include <stdbool.h>
#include <stddef.h>

#include "clcore/context.h"
#include "clcore/tensor.h"
#include "clcore/tune.h"

enum clsynth_tparam_kind {
    CLSYNTH_TP_DEFINE = 0, /* "-DNAME=value" in entry.options */
    CLSYNTH_TP_LOCAL0,     /* entry.local[0] (0 = launch default for every dimension) */
    CLSYNTH_TP_LOCAL1,     /* entry.local[1] */
    CLSYNTH_TP_LOCAL2,     /* entry.local[2] */
    CLSYNTH_TP_ALGO,       /* entry.algo */
};

#define CLSYNTH_TP_MAX_VALUES 12
#define CLSYNTH_TP_MAX_PARAMS 8
#define CLSYNTH_TP_MAX_SHAPE 12

typedef struct clsynth_tparam {
    const char *name;
    int kind;
    int n;                               /* number of legal values */
    int values[CLSYNTH_TP_MAX_VALUES];   /* in increasing order (guided search walks neighbours) */
    int only_algo;                       /* > 0: varies only when the ALGO parameter equals it;
                                            otherwise held at values[0] */
} clsynth_tparam;

/* An op instance the tuner can run: persistent inputs, a persistent seed for
 * backward and persistent copies of the results compared with the reference. */
typedef struct clsynth_tbench {
    int s[CLSYNTH_TP_MAX_SHAPE];   /* the parsed shape key */
    int ns;
    clsynth_tensor *in[6];         /* persistent inputs (requires-grad where backward runs) */
    int n_in;
    double flops, bytes;           /* work of one run, for GFLOP/s and GB/s (0 = unknown) */
} clsynth_tbench;

typedef struct clsynth_tunable {
    const char *key;           /* kernel key passed to clsynth_tune_lookup */
    const char *file;          /* kernels/<file> holding its kernels */
    const char *kernels[4];    /* kernel functions built with the candidate options */
    int kernels_algo;          /* > 0: kernels[] run only when the ALGO parameter equals it */
    const char *op;            /* the public op it belongs to (documentation, bench) */
    int dims;                  /* launch dimensions of the tuned local size (0: none tuned) */
    bool backward;             /* the kernel runs in the op's backward: runs include it */
    unsigned grad_mask;        /* with backward: bit i set = in[i] requires grad (0: all) */
    const char *before[4];     /* keys to tune at the same shape first (e.g. conv2d's
                                  algorithm after its direct kernels) */
    int n_params;
    clsynth_tparam params[CLSYNTH_TP_MAX_PARAMS];
    /* Parses a shape key into s[] (returns the count, or -1 when the key has
     * another format). */
    int (*parse)(const char *shape, int s[CLSYNTH_TP_MAX_SHAPE]);
    /* Extra constraints between values at a shape (NULL: none). v[i] is the
     * value of params[i]. */
    bool (*valid)(const int *v, const int *s);
    /* The work-group a configuration launches with when it sets no explicit
     * local size but implies one (e.g. reqd_work_group_size from its -D
     * values); NULL: the launch helper's default (always legal). */
    void (*implied_local)(const int *v, const int *s, size_t local[3]);
    /* Local memory in bytes a configuration needs (NULL: none). */
    size_t (*local_mem)(const int *v, const int *s);
    /* Harness: creates the inputs of the op at the parsed shape (b->s), and
     * runs the forward op, returning its output (an activation). */
    int (*setup)(clsynth_ctx *ctx, clsynth_tbench *b);
    clsynth_tensor *(*forward)(clsynth_ctx *ctx, clsynth_tbench *b);
} clsynth_tunable;

/* The built-in registry (NULL-key terminated is not used: count given). */
const clsynth_tunable *clsynth_tunables(int *count);
/* The registry entry of a kernel key, or NULL. */
const clsynth_tunable *clsynth_tunable_find(const char *key);

/* Number of candidates in the full (unconstrained) space. */
size_t clsynth_tunable_space(const clsynth_tunable *t);
/* Decodes candidate number idx (0 .. space-1) into values v[]. Returns false
 * for a duplicate encoding (a parameter held by only_algo, or a local
 * dimension while dimension 0 is the default). */
bool clsynth_tunable_decode(const clsynth_tunable *t, size_t idx, int *v);
/* The lookup entry of values v: options "-DA=1 -DB=2", local, algo. */
void clsynth_tunable_entry(const clsynth_tunable *t, const int *v, clsynth_tune_entry *e);
/* Values of an entry (inverse of clsynth_tunable_entry); false if an entry
 * value is not among the parameter's legal values. */
bool clsynth_tunable_values(const clsynth_tunable *t, const clsynth_tune_entry *e, int *v);
/* Human-readable "A=1 B=2 local=8x8x1 algo=2" for messages. */
void clsynth_tunable_describe(const clsynth_tunable *t, const int *v, char *out, size_t len);

/* Legality of values v at the parsed shape s on this context: value lists,
 * constraints, local size against the device (ctx->max_wg, max_item) and the
 * built kernels' CL_KERNEL_WORK_GROUP_SIZE, local memory against
 * ctx->local_mem. Builds the kernels (clsynth_kernel_get) when
 * build_check is set. Returns true when legal; otherwise false with the
 * reason in why (ctx error state is left clean). */
bool clsynth_tunable_legal(clsynth_ctx *ctx, const clsynth_tunable *t, const int *v, const int *s,
                           bool build_check, char *why, size_t why_len);

/* FNV-1a of the kernel source (0 when the file is unknown): a tuned entry
 * whose source hash differs is stale. */
unsigned clsynth_tunable_src_hash(const clsynth_tunable *t);

#endif
