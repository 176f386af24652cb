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
 * transaction can only be aborted; the error handed up names the setting to
 * raise. Every request writes too (its log leaf and its stored answer), so
 * the broker does not wait for that: the writer refuses publishes once
 * store_usage passes a high-water mark below the map size (writer.c), and
 * requests go on in the room left. Every other LMDB failure becomes
 * ONCE_ERR_IO with LMDB's own text and what was being done, so an operator
 * reading the log knows which step failed.
 *
 * Reader slots. Every read transaction holds one of the environment's
 * slots, and onced's workers hold theirs for the broker's lifetime, beside
 * its ZAP handler, oncectl, exports and audits. LMDB's default of 126 is
 * all but used up by the largest pool of workers config.c allows (96), so
 * every process asks for STORE_MAX_READERS. The slots live in LMDB's lock
 * file, sized by the first process that opens the environment when no
 * other has it open; all openers ask for the same number, so it is what a
 * home gets. onced checks at start that its workers leave
 * STORE_READERS_RESERVED slots to the others (onced.c).
 *
 * One broker per database. LMDB lets any number of processes write one
 * environment, one transaction at a time, which is what lets oncectl
 * change policy under a running broker. Two brokers on one database,
 * though, would each keep their own replay windows and answers in memory
 * and both execute a department's envelope (a second leaf, a second
 * answer). So onced holds an exclusive flock(2) on STORE_LOCK_FILE in the
 * database directory for as long as it runs; a second onced fails to take
 * it and stops before it opens anything. flock rather than fcntl locks: a
 * flock belongs to the open file, so no other close(2) in the process can
 * drop it, and the kernel releases it when the process dies, kill -9
 * included, so a stale file never blocks a restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

/* Eight tables here and the log's five (auditlog.c) today; room for later
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
                              "reached); nothing can be stored or logged, "
                              "requests included, until map_size_mb in the "
                              "broker's configuration is raised and the "
                              "broker restarted", what);
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
        { "record_counts", &s->record_counts },
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
        rc = mdb_env_set_maxreaders(s->env, STORE_MAX_READERS);
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

int store_lock(const char *dir, int *fd, once_error *err)
{
    char pid[32];
    struct stat st;
    ssize_t n;
    int dfd, lfd, rc;

    *fd = -1;
    if ((rc = make_directory(dir, err)) < 0)
        return rc;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return once_error_set(err, ONCE_ERR_IO, "cannot open database "
                              "directory %s: %s", dir, strerror(errno));
    /* Not O_EXCL: the file outlives each run, and the lock, not the file,
     * says whether a broker runs. O_NOFOLLOW and the checks below refuse
     * anything but a regular file of ours in its place. */
    lfd = openat(dfd, STORE_LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW |
                                           O_NONBLOCK | O_CLOEXEC, 0600);
    close(dfd);
    if (lfd < 0)
        return once_error_set(err, ONCE_ERR_IO, "cannot open %s/%s: %s", dir,
                              STORE_LOCK_FILE, strerror(errno));
    if (fstat(lfd, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != geteuid()) {
        close(lfd);
        return once_error_set(err, ONCE_ERR_IO, "%s/%s is not a regular "
                              "file of this user", dir, STORE_LOCK_FILE);
    }
    if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno;
        n = pread(lfd, pid, sizeof(pid) - 1, 0);
        close(lfd);
        if (rc != EWOULDBLOCK)
            return once_error_set(err, ONCE_ERR_IO, "cannot lock %s/%s: %s",
                                  dir, STORE_LOCK_FILE, strerror(rc));
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        return once_error_set(err, ONCE_ERR_EXISTS, "another onced (pid %s) "
                              "runs on the database %s; one broker per "
                              "database: stop it first",
                              pid[0] != '\0' ? pid : "unknown", dir);
    }
    /* For the message above; the lock holds whether or not this lands. */
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(lfd, 0) < 0 || pwrite(lfd, pid, (size_t)n, 0) != n) {
        rc = errno;
        close(lfd);
        return once_error_set(err, ONCE_ERR_IO, "cannot write %s/%s: %s",
                              dir, STORE_LOCK_FILE, strerror(rc));
    }
    *fd = lfd;
    return 0;
}

void store_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

int store_usage_bound(const store *s, size_t *bound, size_t *map_size)
{
    MDB_envinfo info;
    MDB_stat st;

    if (mdb_env_info(s->env, &info) != MDB_SUCCESS ||
        mdb_env_stat(s->env, &st) != MDB_SUCCESS)
        return -1;
    *bound = (info.me_last_pgno + 1) * st.ms_psize;
    *map_size = info.me_mapsize;
    return 0;
}

int store_walk(MDB_txn *txn, MDB_dbi dbi, const MDB_val *from,
               size_t prefix_len, store_walk_fn fn, void *arg,
               const char *what, once_error *err)
{
    MDB_cursor *cur;
    MDB_val key, val;
    int rc, ret = 0;

    rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != MDB_SUCCESS)
        return store_error(rc, what, err);
    if (from != NULL)
        key = *from;
    for (rc = mdb_cursor_get(cur, &key, &val,
                             from != NULL ? MDB_SET_RANGE : MDB_FIRST);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (prefix_len > 0 &&
            (key.mv_size < prefix_len ||
             memcmp(key.mv_data, from->mv_data, prefix_len) != 0))
            break;
        if ((ret = fn(&key, &val, arg)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (ret != 0)
        return ret;
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return store_error(rc, what, err);
    return 0;
}

int store_usage(const store *s, size_t *used, once_error *err)
{
    size_t free_pages = 0, pages, count;
    MDB_envinfo info;
    MDB_cursor *cur;
    MDB_val key, val;
    MDB_txn *txn;
    MDB_stat st;
    int rc;

    if ((rc = store_begin(s, 1, &txn, err)) < 0)
        return rc;
    mdb_env_info(s->env, &info);
    rc = mdb_env_stat(s->env, &st);
    /* Table 0 is LMDB's free list: each entry, a transaction's freed
     * pages, is a count followed by that many page numbers. */
    if (rc == MDB_SUCCESS)
        rc = mdb_cursor_open(txn, 0, &cur);
    if (rc != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        return store_error(rc, "cannot read the free list", err);
    }
    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == MDB_SUCCESS) {
        if (val.mv_size >= sizeof(count)) {
            memcpy(&count, val.mv_data, sizeof(count));
            free_pages += count;
        }
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc != MDB_NOTFOUND)
        return store_error(rc, "cannot read the free list", err);
    pages = info.me_last_pgno + 1;
    *used = (pages - (free_pages < pages ? free_pages : pages)) * st.ms_psize;
    return 0;
}
