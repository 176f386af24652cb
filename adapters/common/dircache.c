/*
 * dircache.c - the broker's signed directory as an adapter keeps it.
 *
 * The gateway and the spool verify every record they hand over with the
 * issuer's key, and the gateway answers /v1/catalogue, from the directory
 * the broker signs (docs/PROTOCOL.md 4.7). libonce checks the broker's
 * signature, the department it was made for, its age and its digest; this
 * module keeps the last good one and asks again, with its digest, when it
 * is older than ADAPTER_DIRECTORY_REFRESH_MS or when a caller forces it (a
 * record from an issuer the directory does not know yet). An unchanged
 * directory costs the broker one signature and comes back without content.
 *
 * Readers hold a read lock while they use the directory (a signature check
 * at most); a refresh fetches outside the lock and swaps under the write
 * lock, so readers never wait for the broker. A failed refresh keeps the
 * old directory: /v1/health reports it stale once it is older than the
 * freshness libonce demands (ONCE_DIRECTORY_MAX_SKEW_MS).
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "monotonic.h"

struct dircache {
    pthread_rwlock_t lock;       /* guards current */
    pthread_mutex_t refreshing;  /* one refresh at a time */
    once_directory *current;
    pool *pool;
    _Atomic uint64_t confirmed_at;   /* monotonic ms, 0 never */
};

/* Fetches a new directory and swaps it in. */
static int refresh(dircache *d, once_error *err)
{
    once_directory *fresh = NULL, *old;
    once_client *c;
    int rc;

    c = pool_borrow(d->pool);
    pthread_rwlock_rdlock(&d->lock);
    rc = once_client_directory(c, d->current, &fresh, err);
    pthread_rwlock_unlock(&d->lock);
    pool_return(d->pool, c, rc == -ONCE_ERR_TIMEOUT);
    if (rc < 0)
        return rc;
    pthread_rwlock_wrlock(&d->lock);
    old = d->current;
    d->current = fresh;
    pthread_rwlock_unlock(&d->lock);
    once_directory_free(old);
    atomic_store(&d->confirmed_at, monotonic_ms());
    return 0;
}

int dircache_open(dircache **out, pool *p, once_error *err)
{
    dircache *d = calloc(1, sizeof(*d));

    *out = NULL;
    if (d == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    pthread_rwlock_init(&d->lock, NULL);
    pthread_mutex_init(&d->refreshing, NULL);
    d->pool = p;
    *out = d;
    /* A broker that is down at start is not fatal: the adapter starts,
     * reports why it cannot serve (/v1/health, the spool's log), and the
     * next call retries. */
    if (refresh(d, err) < 0)
        adapter_log("warn", "no directory from the broker yet: %s",
                    err->message);
    return 0;
}

void dircache_close(dircache *d)
{
    if (d == NULL)
        return;
    once_directory_free(d->current);
    pthread_rwlock_destroy(&d->lock);
    pthread_mutex_destroy(&d->refreshing);
    free(d);
}

const once_directory *dircache_get(dircache *d, bool force, once_error *err)
{
    uint64_t confirmed = atomic_load(&d->confirmed_at);
    bool due = force || confirmed == 0 ||
               monotonic_ms() - confirmed > ADAPTER_DIRECTORY_REFRESH_MS;

    if (due) {
        pthread_mutex_lock(&d->refreshing);
        /* Another thread may have refreshed while this one waited. */
        if (atomic_load(&d->confirmed_at) == confirmed &&
            refresh(d, err) < 0)
            adapter_log("warn", "cannot refresh the directory: %s",
                        err->message);
        pthread_mutex_unlock(&d->refreshing);
    }
    pthread_rwlock_rdlock(&d->lock);
    if (d->current == NULL) {
        pthread_rwlock_unlock(&d->lock);
        if (!due)
            once_error_set(err, ONCE_ERR_UNAVAILABLE, "no directory yet");
        return NULL;
    }
    return d->current;
}

void dircache_release(dircache *d)
{
    pthread_rwlock_unlock(&d->lock);
}

uint64_t dircache_age_ms(dircache *d)
{
    uint64_t confirmed = atomic_load(&d->confirmed_at);

    return confirmed == 0 ? UINT64_MAX : monotonic_ms() - confirmed;
}
