/*
 * pool.h - a fixed thread pool that runs fn(arg, i) for i in [0, count).
 *
 * See pool.c.
 */
#ifndef ONCE_TOOLS_AUDIT_POOL_H
#define ONCE_TOOLS_AUDIT_POOL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pool {
    pthread_t *threads;
    int nthreads;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    void (*fn)(void *arg, size_t i);
    void *arg;
    size_t count, next, finished;
    uint64_t round;
    int stop;
} pool;

/* Starts threads - 1 workers: the calling thread is the last one. 0, or
 * -1 when a thread cannot be started. */
int pool_start(pool *p, int threads);

/* Runs fn(arg, i) for every i in [0, count) on the workers and the
 * calling thread; returns when all are done. */
void pool_run(pool *p, void (*fn)(void *, size_t), void *arg, size_t count);

/* Stops and joins the workers. */
void pool_stop(pool *p);

#endif
