/*
 * directory_signing.h - the signing input of the broker's signed directory, shared
 * by the broker that signs it (broker/directory.c) and libonce that checks
 * it (lib/directory.c). Internal: not installed. See docs/PROTOCOL.md 4.8.
 */
#ifndef ONCE_DIRECTORY_SIGNING_H
#define ONCE_DIRECTORY_SIGNING_H

#include <stddef.h>
#include <stdint.h>

#include "once/once.h"

/* Domain separation prefix of the directory signature, NUL included. */
#define DIRECTORY_DOMAIN "ONCE-DIRECTORY-V1"
#define DIRECTORY_DOMAIN_BYTES 18
/* The longest signing input: prefix, u32 length, department, u64, digest. */
#define DIRECTORY_SIGNING_INPUT_MAX \
    (DIRECTORY_DOMAIN_BYTES + 4 + ONCE_MAX_NAME + 8 + ONCE_DIGEST_BYTES)

/* Writes "ONCE-DIRECTORY-V1\0" || u32be(len(department)) || department ||
 * u64be(issued_at) || digest into out (DIRECTORY_SIGNING_INPUT_MAX bytes)
 * and returns its length, or 0 when department is over ONCE_MAX_NAME. */
size_t directory_signing_input(uint8_t out[DIRECTORY_SIGNING_INPUT_MAX],
                               const char *department, uint64_t issued_at,
                               const uint8_t digest[ONCE_DIGEST_BYTES]);

#endif
