/*
 * home.c - the broker home oncectl works on, and its database.
 *
 * oncectl talks to the database, not to the broker. onced reads policy in
 * each request's read transaction, and LMDB lets the two processes share
 * the environment (one writer at a time, readers never blocked), so a
 * department suspended or a grant revoked here is in force from the
 * broker's next request, with no restart, reload signal or admin socket to
 * secure. The database location and map size come from HOME/once.conf, the
 * file onced reads, so both processes open the same environment with the
 * same map size.
 *
 * A home without a database is an error, never a new empty one: that
 * would hide a wrong --home. Each command's change is one transaction
 * (with_database), so it is in force whole or not at all.
 */
#include "home.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "config.h"

const char *oncectl_home;
bool oncectl_home_given;

/* Opens the database of the home, as onced would. A home without one is an
 * error rather than a new empty database: that would hide a wrong --home. */
static int open_home_store(store *s)
{
    char why[PATH_MAX + 256];
    broker_config cfg;
    once_error err;
    struct stat st;

    if (stat(oncectl_home, &st) < 0) {
        say_error("no broker home at %s (%s); create one with 'oncectl "
                  "--home %s init', or give --home or ONCE_HOME",
                  oncectl_home, strerror(errno), oncectl_home);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        say_error("broker home %s is not a directory", oncectl_home);
        return -1;
    }
    /* Without a once.conf the defaults apply, as for onced --home. */
    if (config_read_home(&cfg, oncectl_home, why, sizeof(why)) < 0) {
        say_error("%s", why);
        return -1;
    }
    if (stat(cfg.database, &st) < 0 || !S_ISDIR(st.st_mode)) {
        say_error("no database at %s; is %s a broker home? create one with "
                  "'oncectl --home %s init'", cfg.database, oncectl_home,
                  oncectl_home);
        return -1;
    }
    if (store_open(s, cfg.database, cfg.map_size_mb << 20, &err) < 0) {
        say_error("%s", err.message);
        return -1;
    }
    return 0;
}

int with_database(int read_only, txn_fn op, void *arg)
{
    once_error err;
    MDB_txn *txn;
    store s;
    int rc;

    if (open_home_store(&s) < 0)
        return EXIT_FAILED;
    rc = store_begin(&s, read_only, &txn, &err);
    if (rc == 0) {
        rc = op(txn, &s, arg, &err);
        if (rc != 0 || read_only)
            mdb_txn_abort(txn);
        else
            rc = store_commit(txn, &err);
    }
    store_close(&s);
    if (rc < 0) {
        say_error("%s", err.message);
        return EXIT_FAILED;
    }
    return rc > 0 ? EXIT_FAILED : EXIT_SUCCESS;
}

/* A list command: no options, no arguments, one read transaction. */
int run_list(const command *cmd, int argc, char **argv, txn_fn list)
{
    int rc;

    if ((rc = arguments_only(cmd, argc, argv, 0, 0, "")) != OPT_END)
        return rc;
    return with_database(1, list, NULL);
}

/* Opens the home's database and the log's tables in it. auditlog_open
 * commits a short write transaction (it creates the tables of a home onced
 * has not run in yet); LMDB lets it wait its turn beside a running onced,
 * and everything after it only reads. */
int open_home_log(store *s, auditlog *log)
{
    once_error err;

    if (open_home_store(s) < 0)
        return -1;
    if (auditlog_open(log, s, &err) < 0) {
        say_error("%s", err.message);
        store_close(s);
        return -1;
    }
    return 0;
}
