/*
 * pool.c - an adapter's connections to the broker.
 *
 * A once_client is one ZeroMQ socket and may be used by one thread at a
 * time, and each call blocks until its answer. An adapter keeps size of
 * them, each its own CURVE session, and a thread borrows one for the
 * length of one call: the gateway's HTTP threads (libmicrohttpd runs as
 * many threads as there are connections, so a borrower rarely waits), the
 * spool's one worker and its directory refreshes.
 *
 * A connection whose call timed out may still receive the late answer,
 * and libonce matches answers by seq only: the pool replaces such a
 * connection with a fresh one (a new session) rather than risk handing
 * the next borrower a stale answer.
 *
 * A thread that blocks on a connection for long (the gateway's notice
 * watcher waits for pushes) opens one of its own with pool_open_extra,
 * with the pool's parameters, rather than keep one of the pool's.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common.h"

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    once_client **free_list;
    size_t free_count;
    size_t size;
    char endpoint[256];
    char department[ONCE_MAX_NAME + 1];
    once_keypair key;
    uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES];
    once_client_options options;
};

static int open_one(pool *p, once_client **c, once_error *err)
{
    return once_client_open(c, p->endpoint, p->department, &p->key,
                            p->broker_pk, &p->options, err);
}

int pool_open(pool **out, const char *endpoint, const char *department,
              unsigned size, unsigned timeout_ms, const once_keypair *kp,
              const uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES],
              once_error *err)
{
    pool *p = calloc(1, sizeof(*p));
    int rc;

    *out = NULL;
    if (p == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    p->free_list = calloc(size, sizeof(*p->free_list));
    if (p->free_list == NULL) {
        free(p);
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    snprintf(p->endpoint, sizeof(p->endpoint), "%s", endpoint);
    snprintf(p->department, sizeof(p->department), "%s", department);
    memcpy(&p->key, kp, sizeof(p->key));
    memcpy(p->broker_pk, broker_pk, sizeof(p->broker_pk));
    p->options.timeout_ms = (int)timeout_ms;
    /* One attempt per call: the caller decides about retries (the
     * gateway's HTTP client, the spool's retry of a file), and a slow
     * broker is reported within the configured time. */
    p->options.retries = 0;
    p->size = size;
    while (p->free_count < p->size) {
        if ((rc = open_one(p, &p->free_list[p->free_count], err)) < 0) {
            pool_close(p);
            return rc;
        }
        p->free_count++;
    }
    *out = p;
    return 0;
}

once_client *pool_borrow(pool *p)
{
    once_client *c;

    pthread_mutex_lock(&p->lock);
    while (p->free_count == 0)
        pthread_cond_wait(&p->freed, &p->lock);
    c = p->free_list[--p->free_count];
    pthread_mutex_unlock(&p->lock);
    return c;
}

void pool_return(pool *p, once_client *c, bool broken)
{
    once_client *fresh = NULL;
    once_error err;

    /* Opening only sets up a socket (it connects in the background), so
     * it fails only for want of memory: then the old connection stays. */
    if (broken) {
        if (open_one(p, &fresh, &err) == 0) {
            once_client_close(c);
            c = fresh;
        } else {
            adapter_log("error", "cannot replace a broker connection: %s",
                        err.message);
        }
    }
    pthread_mutex_lock(&p->lock);
    p->free_list[p->free_count++] = c;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

int pool_open_extra(pool *p, once_client **out, once_error *err)
{
    return open_one(p, out, err);
}

void pool_close(pool *p)
{
    if (p == NULL)
        return;
    while (p->free_count > 0)
        once_client_close(p->free_list[--p->free_count]);
    free(p->free_list);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->freed);
    once_keypair_wipe(&p->key);
    sodium_memzero(p, sizeof(*p));
    free(p);
}
