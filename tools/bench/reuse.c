/*
 * reuse.c - once-bench --reuse DIR: a run against the broker home of an
 * earlier run kept with --keep, instead of a new one.
 *
 * Why: a home of ten million preloaded records takes minutes to build, and
 * the scale comparison (docs/PERFORMANCE.md, "Scale of the registry")
 * alternates runs against a small and a large home (A B A B) so that the
 * load other programs put on the machine falls on both alike. Each run
 * needs the keys of the departments the home was made for, so a kept run
 * leaves them in DIR/keys (the directory 0700, each secret key 0600, as
 * oncectl keygen writes them): the issuer's and every client's. The
 * broker's own key is in the home already.
 *
 * A reused home keeps its once.conf (its endpoint, workers and map size)
 * and its records: the run publishes only records it does not hold yet,
 * and its requests go to all of them. Every run adds its exchanges to the
 * home's log.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "bench.h"
#include "registry.h"
#include "reuse.h"
#include "store.h"

void bench_reuse_clear(const char *dir)
{
    char path[PATH_MAX + 16];

    if (path_join(path, sizeof(path), dir, "lmdb-commit") == 0 &&
        access(path, F_OK) == 0)
        remove_tree(path);
}

static int key_paths(const char *dir, const char *dept, char *secret,
                     char *public, size_t cap)
{
    if ((size_t)snprintf(secret, cap, "%s/keys/%s.key", dir, dept) >= cap ||
        (size_t)snprintf(public, cap, "%s/keys/%s.pub", dir, dept) >= cap)
        return -1;
    return 0;
}

int bench_keys_save(const bench_home *h, const conn *clients, size_t n)
{
    char dir[PATH_MAX + 16], secret[PATH_MAX + 128], public[PATH_MAX + 128];
    once_error err = {0};
    size_t i;

    if (path_join(dir, sizeof(dir), h->dir, "keys") < 0 ||
        mkdir(dir, 0700) != 0) {
        note("cannot make %s/keys: %s", h->dir, strerror(errno));
        return -1;
    }
    if (key_paths(h->dir, BENCH_ISSUER, secret, public, sizeof(secret)) < 0 ||
        once_keypair_save(&h->issuer, secret, public, &err) < 0)
        goto fail;
    for (i = 0; i < n; i++)
        if (key_paths(h->dir, clients[i].dept, secret, public,
                      sizeof(secret)) < 0 ||
            once_keypair_save(&clients[i].key, secret, public, &err) < 0)
            goto fail;
    return 0;
fail:
    note("cannot save the departments' keys: %s", err.message);
    return -1;
}

/* The endpoint the home's once.conf makes onced listen on. */
static int read_endpoint(bench_home *h)
{
    char path[PATH_MAX + 16], line[PATH_MAX + 64];
    FILE *f;
    int rc = -1;

    if (path_join(path, sizeof(path), h->home, "once.conf") < 0 ||
        (f = fopen(path, "r")) == NULL) {
        note("no once.conf in %s", h->home);
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strcspn(line, "\n");

        line[len] = '\0';
        if (strncmp(line, "listen = ", 9) == 0 &&
            len - 9 < sizeof(h->endpoint)) {
            memcpy(h->endpoint, line + 9, len - 9 + 1);
            rc = 0;
            break;
        }
    }
    fclose(f);
    if (rc < 0)
        note("%s names no endpoint (listen = ...)", path);
    return rc;
}

int bench_home_reuse(bench_home *h, conn *clients, size_t n,
                     unsigned long *stored)
{
    char secret[PATH_MAX + 128], public[PATH_MAX + 128], db[PATH_MAX + 16];
    size_t records = 0;
    once_error err = {0};
    MDB_txn *txn;
    store s;
    size_t i;
    int rc;

    if ((size_t)snprintf(h->dir, sizeof(h->dir), "%s", opt.reuse) >=
            sizeof(h->dir) - 64 ||
        path_join(h->home, sizeof(h->home), h->dir, "home") < 0 ||
        path_join(h->log_path, sizeof(h->log_path), h->dir, "onced.log") < 0 ||
        path_join(db, sizeof(db), h->home, "db") < 0 ||
        path_join(secret, sizeof(secret), h->home, "broker.key") < 0)
        return -1;
    if (read_endpoint(h) < 0)
        return -1;
    if (once_keypair_load(&h->broker, secret, &err) < 0)
        goto no_key;
    if (key_paths(h->dir, BENCH_ISSUER, secret, public, sizeof(secret)) < 0 ||
        once_keypair_load(&h->issuer, secret, &err) < 0)
        goto no_key;
    for (i = 0; i < n; i++)
        if (key_paths(h->dir, clients[i].dept, secret, public,
                      sizeof(secret)) < 0 ||
            once_keypair_load(&clients[i].key, secret, &err) < 0)
            goto no_key;
    if (store_open(&s, db, 0, &err) < 0) {
        note("cannot open %s: %s", db, err.message);
        return -1;
    }
    rc = store_begin(&s, 1, &txn, &err);
    if (rc == 0) {
        rc = registry_count(txn, &s, &records, NULL, &err);
        mdb_txn_abort(txn);
    }
    store_close(&s);
    if (rc < 0) {
        note("cannot count the records of %s: %s", db, err.message);
        return -1;
    }
    *stored = records;
    return 0;
no_key:
    note("cannot reuse %s (was it kept by once-bench --keep with at least "
         "--clients %zu?): %s", h->dir, n, err.message);
    return -1;
}
