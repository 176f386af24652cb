/*
 * monotonic.h - milliseconds on CLOCK_MONOTONIC, the clock the broker's
 * threads pace themselves by (log-line budgets, checkpoint intervals,
 * the drain deadline): it never jumps when the wall clock is set, so an
 * interval measured on it is never negative or stretched. Wall-clock time
 * (once_now_ms) is for what is written down or sent.
 */
#ifndef ONCE_MONOTONIC_H
#define ONCE_MONOTONIC_H

#include <stdint.h>
#include <time.h>

static inline uint64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
