/* A communicator whose ranks are threads of one process (tests only): the
 * collectives of clcore/comm.h over shared memory and a barrier, so tests can
 * run K ranks, each with its own OpenCL context, without MPI. Reductions sum
 * in rank order, so every rank gets bit-identical results. */
#ifndef CLSYNTH_TEST_COMM_THREADS_H
#define CLSYNTH_TEST_COMM_THREADS_H

#include <stdbool.h>

#include "clcore/comm.h"

typedef struct clsynth_test_world clsynth_test_world;

clsynth_test_world *clsynth_test_world_new(int size);
/* serialized: only one rank thread runs at a time, the others wait at a
 * collective (for code that is not thread-safe, such as CLBlast's first call
 * on a context); the collectives are the same. */
clsynth_test_world *clsynth_test_world_new_serialized(int size, bool serialized);
void clsynth_test_world_free(clsynth_test_world *w);

/* Runs fn(rank, comm, user) on `size` threads, one communicator each (bucket
 * size bucket_elems, 0 = default), and joins them. Returns the number of ranks
 * whose fn returned non-zero; fn must not call Check's assertions (they are
 * not thread-safe): collect results in user and assert after the run. */
typedef int (*clsynth_test_rank_fn)(int rank, clsynth_comm *comm, void *user);
int clsynth_test_world_run(clsynth_test_world *w, size_t bucket_elems, clsynth_test_rank_fn fn, void *user);

#endif
