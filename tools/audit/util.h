/*
 * util.h - once-audit's small helpers: exit codes, allocation that cannot
 * fail, time, numbers from the command line, the broker's key file, and
 * how a leaf's kind, time and decision are written.
 *
 * See util.c.
 */
#ifndef ONCE_TOOLS_AUDIT_UTIL_H
#define ONCE_TOOLS_AUDIT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "once.pb-c.h"

/* once-audit's exit status: everything checked out, problems were found
 * (or the run could not go on), or the command line is wrong. */
#define EXIT_CLEAN 0
#define EXIT_PROBLEMS 1
#define EXIT_USAGE 2

/* malloc, calloc and realloc that end the process with EXIT_PROBLEMS and
 * a message when memory runs out; a size of 0 still returns a pointer. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);

/* Seconds on the monotonic clock. */
double now_seconds(void);

/* Prints "once-audit: WHAT: DONE of TOTAL leaves (P%)" to stderr, at most
 * once a second; *last holds the time of the previous line. */
void progress(const char *what, uint64_t done, uint64_t total, double *last);

/* A command-line argument or file name as a u64 in plain decimal. 0, or
 * -1 when it is not one. */
int parse_u64(const char *s, uint64_t *out);

/* ms since the epoch as 2024-05-01T12:00:00.000Z. */
void format_time(uint64_t ms, char out[32]);

/* envelope_kind_name (lib/envelope.c), "other" for an unknown kind. */
const char *kind_name(int kind);

/* Loads the broker's public key file; -1 with a message on stderr. */
int load_public_key(const char *path, uint8_t pk[32]);

/* Writes a leaf's decision as GRANTED, or as REFUSED and its error code
 * (REFUSED NO_GRANT). */
void put_decision(FILE *f, const Once__LogLeaf *leaf);

#endif
