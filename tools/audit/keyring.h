/*
 * keyring.h - the department keys of an export (keys.txt) and when each
 * was valid.
 *
 * See keyring.c.
 */
#ifndef ONCE_TOOLS_AUDIT_KEYRING_H
#define ONCE_TOOLS_AUDIT_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "once/once.h"
#include "report.h"

typedef struct dept_key {
    char id[ONCE_MAX_NAME + 1];
    uint8_t pk[ONCE_PUBLIC_KEY_BYTES];
    uint64_t from, until; /* until 0: still valid */
} dept_key;

typedef struct keyring {
    dept_key *keys;
    size_t n;
} keyring;

/* Loads keys.txt below dirfd into k, sorted by department; a line that
 * does not parse, or a missing file, is a problem in problems. */
void keys_load(int dirfd, keyring *k, report *problems);

/* The keys of department id: [*first, *first + *count). */
void keys_of(const keyring *k, const char *id, size_t *first, size_t *count);

/* Whether keyring k holds this very key for department id. */
bool keys_hold(const keyring *k, const char *id,
               const uint8_t pk[ONCE_PUBLIC_KEY_BYTES]);

#endif
