/*
 * audit_hash.h - the keyed subject hash of the exchange log, and the audit
 * key file it is keyed with.
 *
 * Internal to libonce and its tools: the broker writes subject hashes into
 * log leaves, once-audit recomputes them. See audit_hash.c.
 */
#ifndef ONCE_AUDIT_HASH_H
#define ONCE_AUDIT_HASH_H

#include <stdint.h>

#include "once/once.h"

#define AUDIT_KEY_BYTES 32
#define AUDIT_SUBJECT_HASH_BYTES 32

/* HMAC-SHA-256(key, type || 0x00 || subject). */
void audit_subject_hash(const uint8_t key[AUDIT_KEY_BYTES], const char *type,
                        const char *subject,
                        uint8_t out[AUDIT_SUBJECT_HASH_BYTES]);

/* Reads an audit key file: one line of 64 hex digits, mode 0600, exactly
 * like a secret key file (so `oncectl keygen` makes one). Refuses a file
 * group or others may read. */
int audit_key_load(uint8_t key[AUDIT_KEY_BYTES], const char *path,
                   once_error *err);

#endif
