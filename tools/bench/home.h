/*
 * home.h - the broker once-bench runs: its home in the run's temporary
 * directory, and the onced process on it. See home.c.
 */
#ifndef ONCE_TOOLS_BENCH_HOME_H
#define ONCE_TOOLS_BENCH_HOME_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include "conn.h"
#include "once/once.h"

typedef struct bench_home {
    char dir[PATH_MAX];      /* the temporary directory of the whole run */
    char home[PATH_MAX];     /* the broker home in it */
    char endpoint[PATH_MAX + 32];
    char log_path[PATH_MAX];
    once_keypair broker;
    once_keypair issuer;
    pid_t pid;
    int console_port;        /* with --console; 0 otherwise */
    char console_token[65];  /* ... and its token, 64 hex digits */
    unsigned long stored;    /* records in the database before publishing:
                                preloaded, or kept from an earlier run */
} bench_home;

/* "bench-requester-NNN", the department of client i. */
void requester_id(size_t i, char *out, size_t cap);

/* Makes the broker home in h->dir: the broker and audit keys, once.conf
 * (listening on ipc in h->dir, or a free loopback tcp port with --tcp),
 * and in the database the issuer, the departments of clients[0..n) with
 * their keys, the record type and a grant of its first BENCH_GRANTED
 * fields to every client. Returns 0, or -1 with the reason noted. */
int make_home(bench_home *h, conn *clients, size_t n_clients);

/* The onced to run: --onced, else $ONCED, else ../../broker/onced from
 * this program's directory, where the build tree has it (buf holds that
 * path); NULL when none can be named. */
const char *find_onced(char *buf, size_t cap);

/* Starts onced on h's home, its output in h->log_path, and waits until it
 * answers a ping from the issuer (up to 20 s). 0, or -1 noted. */
int broker_start(bench_home *h, const char *onced);
/* SIGTERM and up to 30 s for the broker to exit; 0 only when it exits 0. */
int broker_stop(bench_home *h);
/* After a failure: kills the broker if it runs and shows its log's end. */
void broker_abandon(bench_home *h);

/* Removes the temporary directory of the run, without following symbolic
 * links. */
void remove_tree(const char *dir);

#endif
