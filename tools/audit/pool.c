/*
 * pool.c - a fixed thread pool that runs fn(arg, i) for i in [0, count).
 *
 * once-audit's work comes in rounds: a batch of entry bundles to hash, a
 * batch of evidence bundles to check, the checkpoint files to verify. A
 * round is handed to the pool whole, the calling thread works along, and
 * pool_run returns when every task of the round is done, so that the
 * caller can merge the results in order before the next round. The
 * tasks of a round pick the next index under one mutex; a task is a
 * whole bundle (256 leaves), so the lock is taken rarely.
 */
#include "pool.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Runs tasks of the current round until none is left. Called locked. */
static void pool_drain(pool *p)
{
    while (p->next < p->count) {
        size_t i = p->next++;

        pthread_mutex_unlock(&p->mu);
        p->fn(p->arg, i);
        pthread_mutex_lock(&p->mu);
        if (++p->finished == p->count)
            pthread_cond_broadcast(&p->done);
    }
}

static void *pool_worker(void *arg)
{
    pool *p = arg;
    uint64_t seen = 0;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->round == seen)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->stop)
            break;
        seen = p->round;
        pool_drain(p);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int pool_start(pool *p, int threads)
{
    int i;

    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = xcalloc((size_t)threads, sizeof(pthread_t));
    /* The calling thread is one of the `threads` workers. */
    for (i = 0; i < threads - 1; i++) {
        if (pthread_create(&p->threads[i], NULL, pool_worker, p) != 0)
            return -1;
        p->nthreads++;
    }
    return 0;
}

void pool_run(pool *p, void (*fn)(void *, size_t), void *arg,
              size_t count)
{
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->count = count;
    p->next = 0;
    p->finished = 0;
    p->round++;
    pthread_cond_broadcast(&p->work);
    pool_drain(p);
    while (p->finished < p->count)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void pool_stop(pool *p)
{
    int i;

    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
}
