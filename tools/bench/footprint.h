/*
 * footprint.h - onced's resident memory and the bytes of each LMDB table
 * of a bench home, before and after a run. See footprint.c.
 */
#ifndef ONCE_TOOLS_BENCH_FOOTPRINT_H
#define ONCE_TOOLS_BENCH_FOOTPRINT_H

#include <stdint.h>
#include <sys/types.h>

#include "home.h"

#define FOOTPRINT_TABLES 9

typedef struct footprint {
    uint64_t file_bytes;                 /* data.mdb's size */
    uint64_t entries[FOOTPRINT_TABLES];
    uint64_t bytes[FOOTPRINT_TABLES];    /* pages x page size */
    unsigned depth[FOOTPRINT_TABLES];    /* of the B-tree */
} footprint;

/* Notes onced's VmRSS, VmHWM, RssAnon and RssFile from /proc. */
void footprint_rss(pid_t pid);

/* Reads every table's entries and pages while no broker writes. 0 or -1. */
int footprint_db(const bench_home *h, footprint *fp);

/* Notes each table: entries, depth, bytes, bytes per record, and what the
 * run added per leaf it appended (per exchange). */
void footprint_print(const footprint *before, const footprint *after);

#endif
