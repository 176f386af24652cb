/*
 * digest.h - SHA-256 of a byte string, with the CPU's SHA instructions.
 *
 * Internal to libonce and its tools. See digest.c.
 */
#ifndef ONCE_DIGEST_H
#define ONCE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define DIGEST_SHA256_BYTES 32

void digest_sha256(uint8_t out[DIGEST_SHA256_BYTES], const void *data,
                   size_t len);

#endif
