/*
 * monotonic.h - the one monotonic clock of the broker's programs.
 *
 * Internal to libonce, the broker and the tools. See monotonic.c.
 */
#ifndef ONCE_MONOTONIC_H
#define ONCE_MONOTONIC_H

#include <stdint.h>

/* Nanoseconds on CLOCK_MONOTONIC, from an arbitrary start. */
uint64_t monotonic_ns(void);

/* The same clock in milliseconds, which the broker's threads pace
 * themselves by (log-line budgets, checkpoint intervals, the drain
 * deadline): it never jumps when the wall clock is set. Wall-clock time
 * (once_now_ms) is for what is written down or sent. */
static inline uint64_t monotonic_ms(void)
{
    return monotonic_ns() / 1000000u;
}

#endif
