/*
 * monotonic.c - the one monotonic clock of the broker's programs.
 *
 * Durations, deadlines and rates (how long an audit pass took, when a
 * child onced must be ready, a benchmark's latencies) are measured on
 * CLOCK_MONOTONIC, which no operator or NTP step moves: a wall clock set
 * back by a minute would otherwise make a deadline never come or a rate
 * infinite. Wall-clock time, for what is signed and logged, is
 * once_now_ms (envelope.c). In nanoseconds, since the benchmark's
 * latencies are microseconds; the callers convert.
 */
#include "monotonic.h"

#include <time.h>

uint64_t monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
