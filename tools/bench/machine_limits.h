/*
 * machine_limits.h - this machine's limits for a broker: Ed25519 verify, a raw
 * ZeroMQ echo, durable LMDB commits. See machine_limits.c.
 */
#ifndef ONCE_TOOLS_BENCH_MACHINE_LIMITS_H
#define ONCE_TOOLS_BENCH_MACHINE_LIMITS_H

#include "report.h"

/* Measures the three limits into r (r->cores must be set), using dir (the
 * run's temporary directory) for the echo's ipc socket and the LMDB
 * environment. Returns 0, or -1 with the reason noted. */
int measure_limits(const char *dir, results *r);

#endif
