/* Collectives between the processes (ranks) of one data-parallel run, behind a
 * small interface the core calls without knowing the transport: tools/ plugs
 * MPI in (tools/dist_mpi.c), the tests plug in threads. ctx->comm NULL (or a
 * communicator of size 1) is one process, and every function here is then a
 * no-op that returns 0, so single-process code paths stay exactly as they were.
 *
 * Device tensors travel through host memory in buckets of bucket_elems floats
 * (two staging buckets in all, reused), so averaging the gradients of a large
 * model never needs a second full copy of them: while bucket i is all-reduced
 * the device already copies bucket i+1 to the host.
 *
 * Semantics used by the trainer (PyTorch DistributedDataParallel's):
 *   gradients of every parameter group are averaged (sum / size) after backward;
 *   the optimizer then runs identically on every rank;
 *   buffers (running statistics, spectral-norm vectors) follow rank 0's;
 *   every rank must call the same collectives in the same order. */
#ifndef CLSYNTH_COMM_H
#define CLSYNTH_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "clcore/context.h"
#include "clcore/params.h"
#include "clcore/tensor.h"

typedef enum clsynth_comm_type { CLSYNTH_COMM_F32, CLSYNTH_COMM_F64, CLSYNTH_COMM_I64 } clsynth_comm_type;

/* What a collective is for, so the statistics can say where the bytes went. */
typedef enum clsynth_comm_kind {
    CLSYNTH_COMM_GRADS = 0, /* gradient averaging */
    CLSYNTH_COMM_NORM,      /* synchronized batch norm statistics and gradient sums */
    CLSYNTH_COMM_STATE,     /* model state, buffers, losses, stop flags, checks */
    CLSYNTH_COMM_KINDS
} clsynth_comm_kind;

typedef struct clsynth_comm_stats {
    unsigned long calls[CLSYNTH_COMM_KINDS];
    uint64_t bytes[CLSYNTH_COMM_KINDS];  /* payload this rank handed to the collectives */
    double seconds[CLSYNTH_COMM_KINDS];  /* wall time of the operations, device staging included */
    double wire_seconds[CLSYNTH_COMM_KINDS]; /* the part spent inside the transport's calls */
} clsynth_comm_stats;

struct clsynth_comm;

/* A transport. Each call returns 0, or -1 with a message in c->err. */
typedef struct clsynth_comm_ops {
    /* buf (count elements of type) becomes the element-wise sum over all ranks, in place */
    int (*allreduce_sum)(struct clsynth_comm *c, void *buf, size_t count, clsynth_comm_type type);
    /* recv (size * bytes) receives the `bytes` of every rank in rank order */
    int (*allgather)(struct clsynth_comm *c, const void *send, void *recv, size_t bytes);
    /* buf (bytes) is overwritten with root's on every rank */
    int (*broadcast)(struct clsynth_comm *c, void *buf, size_t bytes, int root);
} clsynth_comm_ops;

typedef struct clsynth_comm {
    int rank, size;
    const clsynth_comm_ops *ops;
    void *impl;            /* the transport's state */
    char err[256];         /* the transport's last failure */
    size_t bucket_elems;   /* floats per staging bucket; 0 = CLSYNTH_COMM_BUCKET_DEFAULT */
    clsynth_comm_stats stats;
    float *stage;          /* 2 buckets of host staging, allocated on first use */
    size_t stage_elems;
} clsynth_comm;

#define CLSYNTH_COMM_BUCKET_DEFAULT ((size_t)4 << 20) /* 4 Mi floats = 16 MiB per bucket */

/* Frees the staging memory (the owner of the communicator calls it). */
void clsynth_comm_release(clsynth_comm *c);
void clsynth_comm_reset_stats(clsynth_comm *c);

/* Rank and number of ranks of ctx's run (0 and 1 without a communicator). */
int clsynth_comm_rank(const clsynth_ctx *ctx);
int clsynth_comm_size(const clsynth_ctx *ctx);

/* Host-memory collectives; failures set ctx->err naming the operation and the rank. */
int clsynth_comm_allreduce_sum(clsynth_ctx *ctx, void *buf, size_t count, clsynth_comm_type type,
                               clsynth_comm_kind kind);
int clsynth_comm_allgather(clsynth_ctx *ctx, const void *send, void *recv, size_t bytes, clsynth_comm_kind kind);
int clsynth_comm_broadcast(clsynth_ctx *ctx, void *buf, size_t bytes, int root, clsynth_comm_kind kind);

/* Device tensors, bucketed through host memory. average: t = sum over ranks / size. */
int clsynth_comm_average_tensor(clsynth_ctx *ctx, clsynth_tensor *t, clsynth_comm_kind kind);
int clsynth_comm_broadcast_tensor(clsynth_ctx *ctx, clsynth_tensor *t, int root, clsynth_comm_kind kind);

/* Averages the flat gradient buffer of g over the ranks (after backward, before Adam). */
int clsynth_comm_average_grads(clsynth_ctx *ctx, clsynth_param_group *g);
/* Every buffer of g (running statistics, spectral-norm vectors) from root, in one message. */
int clsynth_comm_broadcast_buffers(clsynth_ctx *ctx, clsynth_param_group *g, int root);
/* The whole state of g from root: parameters, Adam moments and step, buffers. */
int clsynth_comm_broadcast_group(clsynth_ctx *ctx, clsynth_param_group *g, int root);

/* 64-bit FNV-1a hash of g's parameters, Adam moments, Adam step and buffers
 * (bit patterns, in declaration order): equal on two ranks iff their states are
 * identical (up to hash collisions). Works without a communicator. */
int clsynth_group_hash(clsynth_ctx *ctx, clsynth_param_group *g, uint64_t *hash);
/* Compares value across ranks: fails naming `what` and the first rank whose
 * value differs from rank 0's. */
int clsynth_comm_check_same(clsynth_ctx *ctx, uint64_t value, const char *what);

#endif
