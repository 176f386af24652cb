/*
 * monotonic.h - the one monotonic clock of the broker's programs.
 *
 * Internal to libonce and its tools. See monotonic.c.
 */
#ifndef ONCE_MONOTONIC_H
#define ONCE_MONOTONIC_H

#include <stdint.h>

/* Nanoseconds on CLOCK_MONOTONIC, from an arbitrary start. */
uint64_t monotonic_ns(void);

#endif
