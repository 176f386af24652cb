/*
 * map_warm.h - at start, one pass over the database's map that reads a
 * byte of every page the page cache holds, so that the first requests of
 * a new onced do not each pay a first touch (map_warm.c says why).
 */
#ifndef ONCE_MAP_WARM_H
#define ONCE_MAP_WARM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct map_warm map_warm;

/* Where the map of s's data file starts in this process and how many of
 * its bytes are in use (the pages up to the highest one written, and no
 * further than the file's end). */
int map_warm_locate(const store *s, const uint8_t **base, size_t *bytes,
                    once_error *err);

/* The pass itself, in the calling thread: reads a byte of each page of
 * [map, map + bytes) that the page cache holds, and stops at the next
 * chunk once *stop is true (stop may be NULL). Returns the pages read,
 * and in *looked the pages looked at. */
size_t map_warm_read(const uint8_t *map, size_t bytes, atomic_bool *stop,
                     size_t *looked);

/* Starts the pass in a thread of its own; it logs what it did and ends.
 * The store must stay open until map_warm_stop. A map that cannot be
 * found is logged and left cold: the broker works the same, only its
 * first minutes are slower. *out is NULL then. */
void map_warm_start(map_warm **out, const store *s);

/* Stops the pass if it is still running, joins it and frees w (NULL is
 * allowed). Call before store_close. */
void map_warm_stop(map_warm *w);

#endif
