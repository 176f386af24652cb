/*
 * counter.h - the console's counters: a uint64_t that the thread which
 * sees an event bumps and the console thread reads, with no lock.
 *
 * Relaxed atomics are enough: a counter orders nothing else, and a scrape
 * that sees one counter of a group a moment before another is as right as
 * Prometheus needs (metrics.c). On x86 the add is one locked instruction
 * and the load a plain one, so counting costs the request path almost
 * nothing and never waits for the console.
 */
#ifndef ONCE_COUNTER_H
#define ONCE_COUNTER_H

#include <stdatomic.h>
#include <stdint.h>

typedef _Atomic uint64_t counter;

static inline void counter_add(counter *c, uint64_t v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static inline uint64_t counter_get(counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

#endif
