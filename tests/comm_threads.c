/* Thread-backed communicator for the tests (see comm_threads.h). */
#include "comm_threads.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct clsynth_test_world {
    int size;
    bool serialized;         /* one rank thread runs at a time (run lock held outside barriers) */
    pthread_mutex_t run;
    pthread_barrier_t barrier;
    const void **slot; /* each rank's published pointer for the current collective */
};

typedef struct rank_arg {
    clsynth_test_world *w;
    int rank;
    size_t bucket_elems;
    clsynth_test_rank_fn fn;
    void *user;
    int rc;
} rank_arg;

clsynth_test_world *clsynth_test_world_new(int size)
{
    return clsynth_test_world_new_serialized(size, false);
}

clsynth_test_world *clsynth_test_world_new_serialized(int size, bool serialized)
{
    clsynth_test_world *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->size = size;
    w->serialized = serialized;
    pthread_mutex_init(&w->run, NULL);
    w->slot = calloc((size_t)size, sizeof *w->slot);
    if (!w->slot || pthread_barrier_init(&w->barrier, NULL, (unsigned)size) != 0) {
        free(w->slot);
        free(w);
        return NULL;
    }
    return w;
}

void clsynth_test_world_free(clsynth_test_world *w)
{
    if (!w)
        return;
    pthread_barrier_destroy(&w->barrier);
    pthread_mutex_destroy(&w->run);
    free(w->slot);
    free(w);
}

/* Waits for every rank; a serialized world lets the others run meanwhile. */
static void wait_all(clsynth_test_world *w)
{
    if (w->serialized)
        pthread_mutex_unlock(&w->run);
    pthread_barrier_wait(&w->barrier);
    if (w->serialized)
        pthread_mutex_lock(&w->run);
}

static clsynth_test_world *world(clsynth_comm *c) { return c->impl; }

static int t_allreduce(clsynth_comm *c, void *buf, size_t count, clsynth_comm_type type)
{
    clsynth_test_world *w = world(c);
    const size_t esz = type == CLSYNTH_COMM_F32 ? 4 : 8;
    void *sum = malloc(count * esz);
    w->slot[c->rank] = buf;
    wait_all(w);
    if (sum) {
        for (size_t i = 0; i < count; i++) {
            if (type == CLSYNTH_COMM_F32) {
                float s = 0;
                for (int r = 0; r < w->size; r++)
                    s += ((const float *)w->slot[r])[i];
                ((float *)sum)[i] = s;
            } else if (type == CLSYNTH_COMM_F64) {
                double s = 0;
                for (int r = 0; r < w->size; r++)
                    s += ((const double *)w->slot[r])[i];
                ((double *)sum)[i] = s;
            } else {
                int64_t s = 0;
                for (int r = 0; r < w->size; r++)
                    s += ((const int64_t *)w->slot[r])[i];
                ((int64_t *)sum)[i] = s;
            }
        }
    }
    wait_all(w); /* everyone has read every buffer */
    if (!sum) {
        snprintf(c->err, sizeof c->err, "out of memory");
        return -1;
    }
    memcpy(buf, sum, count * esz);
    free(sum);
    return 0;
}

static int t_allgather(clsynth_comm *c, const void *send, void *recv, size_t bytes)
{
    clsynth_test_world *w = world(c);
    w->slot[c->rank] = send;
    wait_all(w);
    for (int r = 0; r < w->size; r++)
        memcpy((char *)recv + (size_t)r * bytes, w->slot[r], bytes);
    wait_all(w);
    return 0;
}

static int t_broadcast(clsynth_comm *c, void *buf, size_t bytes, int root)
{
    clsynth_test_world *w = world(c);
    if (c->rank == root)
        w->slot[root] = buf;
    wait_all(w);
    if (c->rank != root)
        memcpy(buf, w->slot[root], bytes);
    wait_all(w);
    return 0;
}

static const clsynth_comm_ops thread_ops = { t_allreduce, t_allgather, t_broadcast };

static void *rank_main(void *p)
{
    rank_arg *a = p;
    clsynth_comm comm;
    memset(&comm, 0, sizeof comm);
    comm.rank = a->rank;
    comm.size = a->w->size;
    comm.ops = &thread_ops;
    comm.impl = a->w;
    comm.bucket_elems = a->bucket_elems;
    if (a->w->serialized)
        pthread_mutex_lock(&a->w->run);
    a->rc = a->fn(a->rank, &comm, a->user);
    clsynth_comm_release(&comm);
    if (a->w->serialized)
        pthread_mutex_unlock(&a->w->run);
    return NULL;
}

int clsynth_test_world_run(clsynth_test_world *w, size_t bucket_elems, clsynth_test_rank_fn fn, void *user)
{
    pthread_t *th = calloc((size_t)w->size, sizeof *th);
    rank_arg *args = calloc((size_t)w->size, sizeof *args);
    if (!th || !args) {
        free(th);
        free(args);
        return w->size;
    }
    for (int r = 0; r < w->size; r++) {
        args[r] = (rank_arg){ w, r, bucket_elems, fn, user, 0 };
        if (pthread_create(&th[r], NULL, rank_main, &args[r]) != 0) {
            fprintf(stderr, "comm_threads: cannot start rank %d\n", r);
            abort(); /* the started ranks would wait at the barrier forever */
        }
    }
    int failed = 0;
    for (int r = 0; r < w->size; r++) {
        pthread_join(th[r], NULL);
        failed += args[r].rc != 0;
    }
    free(th);
    free(args);
    return failed;
}
