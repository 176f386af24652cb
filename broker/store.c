/*
 * store.c - the one LMDB environment of a broker home.
 *
 * Every module's tables live in one environment so that a record, the reply
 * kept for its idempotent retry and (later) its log leaf commit in one
 * transaction: one fsync makes all of them durable together, and a crash
 * leaves either all of them or none.
 *
 * LMDB is used as it is meant to be: readers never block and never copy,
 * one writer at a time per environment across processes. That last point is
 * what lets oncectl change departments, types and grants under a running
 * onced: both open the same directory, LMDB's lock file serialises their
 * write transactions, and the broker reads policy inside each request's
 * read transaction, so a committed change is seen by the next request.
 *
 * MDB_NOTLS is set because the broker's workers keep a read transaction
 * each and reset/renew it between requests; without it LMDB ties a reader
 * slot to the thread that began it. Every table is opened (and created) in
 * one write transaction at start-up, because a table handle opened in a
 * transaction that later aborts would be lost, and opening tables lazily
 * from several threads is not allowed.
 *
 * When the map is full LMDB fails the write with MDB_MAP_FULL and the
 * transaction can only be aborted. Readers are unaffected, so the broker
 * keeps answering requests; the error handed up names the setting to raise.
 * Every other LMDB failure becomes ONCE_ERR_IO with LMDB's own text and what
 * was being done, so an operator reading the log knows which step failed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "store.h"

/* Seven tables here and the log's five (auditlog.c) today; room for later
 * modules without a change to every broker home. */
#define STORE_MAX_TABLES 32

int store_error(int mdb_rc, const char *what, once_error *err)
{
    switch (mdb_rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_MAP_FULL:
        return once_error_set(err, ONCE_ERR_STORAGE_FULL,
                              "%s: the database is full (LMDB map size "
                              "reached); raise map_size_mb in the broker's "
                              "configuration and restart; reads are still "
                              "served", what);
    case MDB_MAP_RESIZED:
        return once_error_set(err, ONCE_ERR_IO,
                              "%s: another process grew the database beyond "
                              "this process's map size; use the same "
                              "map_size_mb everywhere and restart", what);
    case MDB_READERS_FULL:
        return once_error_set(err, ONCE_ERR_IO,
                              "%s: too many concurrent readers of the "
                              "database (%s)", what, mdb_strerror(mdb_rc));
    default:
        return once_error_set(err, ONCE_ERR_IO, "%s: %s", what,
                              mdb_strerror(mdb_rc));
    }
}

/* Creates dir with mode 0700 unless it exists; a broker home's database
 * holds every published record and is nobody else's to read. */
static int make_directory(const char *dir, once_error *err)
{
    struct stat st;

    if (mkdir(dir, 0700) == 0)
        return 0;
    if (errno != EEXIST)
        return once_error_set(err, ONCE_ERR_IO,
                              "cannot create database directory %s: %s", dir,
                              strerror(errno));
    if (stat(dir, &st) < 0)
        return once_error_set(err, ONCE_ERR_IO, "cannot stat %s: %s", dir,
                              strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return once_error_set(err, ONCE_ERR_IO,
                              "database path %s exists and is not a directory",
                              dir);
    return 0;
}

static int open_tables(store *s, once_error *err)
{
    const struct {
        const char *name;
        MDB_dbi *dbi;
    } tables[] = {
        { "departments", &s->departments },
        { "department_keys", &s->department_keys },
        { "types", &s->types },
        { "grants", &s->grants },
        { "records", &s->records },
        { "latest", &s->latest },
        { "replies", &s->replies },
    };
    char what[64];
    MDB_txn *txn;
    size_t i;
    int rc;

    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot open the database tables", err);
    for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        rc = mdb_dbi_open(txn, tables[i].name, MDB_CREATE, tables[i].dbi);
        if (rc != MDB_SUCCESS) {
            mdb_txn_abort(txn);
            snprintf(what, sizeof(what), "cannot open table %s",
                     tables[i].name);
            return store_error(rc, what, err);
        }
    }
    return store_error(mdb_txn_commit(txn), "cannot create the database tables",
                       err);
}

int store_open(store *s, const char *dir, size_t map_size, once_error *err)
{
    int rc, ret, dead;

    if (s == NULL || dir == NULL || dir[0] == '\0')
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a store and a database directory are required");
    memset(s, 0, sizeof(*s));
    ret = make_directory(dir, err);
    if (ret < 0)
        return ret;
    rc = mdb_env_create(&s->env);
    if (rc != MDB_SUCCESS) {
        s->env = NULL;
        return store_error(rc, "cannot create the LMDB environment", err);
    }
    rc = mdb_env_set_maxdbs(s->env, STORE_MAX_TABLES);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_mapsize(s->env, map_size != 0
                                             ? map_size
                                             : STORE_DEFAULT_MAP_SIZE);
    if (rc != MDB_SUCCESS) {
        ret = store_error(rc, "cannot configure the LMDB environment", err);
        goto fail;
    }
    rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0600);
    if (rc != MDB_SUCCESS) {
        ret = once_error_set(err, ONCE_ERR_IO,
                             "cannot open the database in %s: %s", dir,
                             mdb_strerror(rc));
        goto fail;
    }
    /* A process killed while reading leaves its reader slot behind; it
     * would pin old pages (the file grows) until cleared. */
    rc = mdb_reader_check(s->env, &dead);
    if (rc != MDB_SUCCESS) {
        ret = store_error(rc, "cannot clear stale database readers", err);
        goto fail;
    }
    ret = open_tables(s, err);
    if (ret < 0)
        goto fail;
    return 0;

fail:
    mdb_env_close(s->env);
    memset(s, 0, sizeof(*s));
    return ret;
}

void store_close(store *s)
{
    if (s == NULL || s->env == NULL)
        return;
    mdb_env_close(s->env);
    memset(s, 0, sizeof(*s));
}

int store_begin(const store *s, int read_only, MDB_txn **txn, once_error *err)
{
    int rc;

    if (s == NULL || s->env == NULL || txn == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "the store is not open");
    rc = mdb_txn_begin(s->env, NULL, read_only ? MDB_RDONLY : 0, txn);
    if (rc != MDB_SUCCESS) {
        *txn = NULL;
        return store_error(rc, read_only ? "cannot begin a read transaction"
                                         : "cannot begin a write transaction",
                           err);
    }
    return 0;
}

int store_commit(MDB_txn *txn, once_error *err)
{
    if (txn == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "no transaction to commit");
    /* LMDB frees the transaction whether or not the commit succeeds. */
    return store_error(mdb_txn_commit(txn), "cannot commit to the database",
                       err);
}
