/*
 * reuse.h - once-bench --reuse DIR: a run against the home an earlier run
 * kept, with the departments' keys it saved. See reuse.c.
 */
#ifndef ONCE_TOOLS_BENCH_REUSE_H
#define ONCE_TOOLS_BENCH_REUSE_H

#include <stddef.h>

#include "conn.h"
#include "home.h"

/* Removes what the earlier run's machine-limit measurement left in dir
 * (its LMDB environment, which the next one makes afresh). */
void bench_reuse_clear(const char *dir);

/* With --keep: the issuer's and clients[0..n)'s keys into h->dir/keys. */
int bench_keys_save(const bench_home *h, const conn *clients, size_t n);

/* Fills h from the kept run directory --reuse names (its home, endpoint,
 * broker and issuer keys) and clients[0..n)'s keys, and counts the records
 * its database holds into *stored. 0, or -1 noted. */
int bench_home_reuse(bench_home *h, conn *clients, size_t n,
                     unsigned long *stored);

#endif
