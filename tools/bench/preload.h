/*
 * preload.h - once-bench --preload N: records stored straight into the
 * broker home's database as a publish stores them, log leaves included.
 * See preload.c.
 */
#ifndef ONCE_TOOLS_BENCH_PRELOAD_H
#define ONCE_TOOLS_BENCH_PRELOAD_H

#include <stddef.h>

#include "home.h"

/* The map size a home of `records` preloaded records is given, in MiB:
 * room for them twice over and for the requests of many runs. */
size_t preload_map_size_mb(unsigned long records);

/* Stores records 0..n-1 (subject i is make_subject(i)), signed by h's
 * issuer, with their leaves and evidence, into h's database while no
 * broker runs. 0, or -1 noted. */
int preload_records(const bench_home *h, unsigned long n);

#endif
