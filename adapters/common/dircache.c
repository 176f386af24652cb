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
 *
 * A failed refresh (the broker down: it took a whole timeout to find out)
 * starts a back-off: no new attempt for DIRCACHE_BACKOFF_FIRST_MS, doubling
 * after each failure up to DIRCACHE_BACKOFF_MAX_MS, back to none after a
 * success. Without it every call that finds the directory due would wait
 * a full timeout again, one after the other behind the refresh lock, and a
 * gateway with the broker gone would answer nothing for minutes instead
 * of 503 at once. In between, a call uses the kept directory while it is
 * not stale (ONCE_DIRECTORY_MAX_SKEW_MS), else it fails at once with
 * ONCE_ERR_UNAVAILABLE. The attempts and failures are counted for
 * /metrics, and dircache_backoff_ms lets /v1/health say "broker
 * unreachable" without waiting for a ping of its own.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "monotonic.h"

#define DIRCACHE_BACKOFF_FIRST_MS 1000u
#define DIRCACHE_BACKOFF_MAX_MS 30000u

struct dircache {
    pthread_rwlock_t lock;       /* guards current */
    pthread_mutex_t refreshing;  /* one refresh at a time; guards backoff */
    once_directory *current;
    pool *pool;
    _Atomic uint64_t confirmed_at;   /* monotonic ms, 0 never */
    _Atomic uint64_t retry_at;       /* monotonic ms; 0: last refresh ok */
    unsigned backoff_ms;             /* the last interval, 0 after success */
    _Atomic uint64_t attempts;       /* refreshes tried, for /metrics */
    _Atomic uint64_t failures;
};

/* Whether the back-off after a failed refresh still runs at now. */
static bool backing_off(dircache *d, uint64_t now)
{
    uint64_t retry = atomic_load(&d->retry_at);

    return retry != 0 && now < retry;
}

/* Fetches a new directory and swaps it in; a failure starts or doubles
 * the back-off. Called with d->refreshing held. */
static int refresh(dircache *d, once_error *err)
{
    once_directory *fresh = NULL, *old;
    once_client *c;
    int rc;

    atomic_fetch_add(&d->attempts, 1);
    c = pool_borrow(d->pool);
    pthread_rwlock_rdlock(&d->lock);
    rc = once_client_directory(c, d->current, &fresh, err);
    pthread_rwlock_unlock(&d->lock);
    pool_return(d->pool, c, rc == -ONCE_ERR_TIMEOUT);
    if (rc < 0) {
        d->backoff_ms = d->backoff_ms == 0 ? DIRCACHE_BACKOFF_FIRST_MS
                        : d->backoff_ms >= DIRCACHE_BACKOFF_MAX_MS / 2
                            ? DIRCACHE_BACKOFF_MAX_MS
                            : 2 * d->backoff_ms;
        atomic_store(&d->retry_at, monotonic_ms() + d->backoff_ms);
        atomic_fetch_add(&d->failures, 1);
        return rc;
    }
    d->backoff_ms = 0;
    atomic_store(&d->retry_at, 0);
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
     * first call after the back-off retries. */
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
    uint64_t confirmed = atomic_load(&d->confirmed_at), now = monotonic_ms();
    bool due = force || confirmed == 0 ||
               now - confirmed > ADAPTER_DIRECTORY_REFRESH_MS;
    bool failed = false;

    if (due && !backing_off(d, now)) {
        pthread_mutex_lock(&d->refreshing);
        /* Another thread may have refreshed, or failed to, while this one
         * waited. */
        if (atomic_load(&d->confirmed_at) == confirmed &&
            !backing_off(d, monotonic_ms()) && refresh(d, err) < 0) {
            adapter_log("warn", "cannot refresh the directory: %s; next "
                        "attempt in %u ms", err->message, d->backoff_ms);
            failed = true;
        }
        pthread_mutex_unlock(&d->refreshing);
    }
    pthread_rwlock_rdlock(&d->lock);
    if (d->current != NULL &&
        (atomic_load(&d->retry_at) == 0 ||
         monotonic_ms() - atomic_load(&d->confirmed_at) <=
             ONCE_DIRECTORY_MAX_SKEW_MS))
        return d->current;
    pthread_rwlock_unlock(&d->lock);
    /* A refresh that failed in this call has set err. */
    if (!failed)
        once_error_set(err, ONCE_ERR_UNAVAILABLE, "%s",
                       atomic_load(&d->retry_at) != 0
                           ? "broker unreachable: the last directory "
                             "refresh failed, the next is not due yet"
                           : "no directory yet");
    return NULL;
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

uint64_t dircache_backoff_ms(dircache *d)
{
    uint64_t now = monotonic_ms(), retry = atomic_load(&d->retry_at);

    return retry > now ? retry - now : 0;
}

void dircache_counts(dircache *d, uint64_t *attempts, uint64_t *failures)
{
    *attempts = atomic_load(&d->attempts);
    *failures = atomic_load(&d->failures);
}
