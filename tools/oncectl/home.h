/*
 * home.h - the broker home oncectl works on, and its database.
 *
 * See home.c.
 */
#ifndef ONCE_TOOLS_ONCECTL_HOME_H
#define ONCE_TOOLS_ONCECTL_HOME_H

#include <stdbool.h>

#include "auditlog.h"
#include "cli.h"
#include "store.h"

/* The home every command works on: --home, else $ONCE_HOME, else
 * CONFIG_DEFAULT_HOME (main.c sets it); oncectl_home_given when it came
 * from --home. */
extern const char *oncectl_home;
extern bool oncectl_home_given;

/* Opens the home's database and the log's tables in it; -1 with a
 * message. auditlog_open commits a short write transaction (it creates
 * the tables of a home onced has not run in yet); LMDB lets it wait its
 * turn beside a running onced, and everything after it only reads. */
int open_home_log(store *s, auditlog *log);

/* One change or read on the home's database, in txn. 0, > 0 for a
 * refusal already reported, or a negative error code with err set. */
typedef int (*txn_fn)(MDB_txn *txn, const store *s, void *arg,
                      once_error *err);

/* Runs op in one transaction on the home's database and commits it when
 * the transaction is writable. Prints the error and returns EXIT_FAILED
 * when anything fails, else EXIT_SUCCESS. */
int with_database(int read_only, txn_fn op, void *arg);

/* A list command: no options, no arguments, one read transaction. */
int run_list(const command *cmd, int argc, char **argv, txn_fn list);

#endif
