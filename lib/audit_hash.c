/*
 * audit_hash.c - how the exchange log names a subject without writing down
 * its ID number.
 *
 * A log leaf must let an auditor answer "who read records about this
 * citizen", yet the log is exported to auditors and may travel further, and
 * a resident identity number or credit code must never appear in it. A plain
 * SHA-256 of the number would not do: an 18-digit resident ID has a birth
 * date, a region code and a check digit, so there are only some 10^10
 * plausible ones, and anyone could hash them all in an afternoon. The leaf
 * therefore holds HMAC-SHA-256 under a per-deployment audit key:
 *
 *     subject_hash = HMAC-SHA-256(audit key, type || 0x00 || subject)
 *
 * Whoever holds the audit key (the broker, and the auditor the deployment
 * trusts with it) can find the leaves of one subject; nobody else can tell
 * whose they are. The record type is hashed in so that one person's leaves
 * under different types are not linkable without the key either, and the
 * 0x00 keeps (type, subject) pairs from running into each other: type names
 * never contain a NUL.
 *
 * The audit key file has the format of a secret key file (64 hex digits,
 * mode 0600): it is a 32-byte secret like a key seed, and sharing the loader
 * keeps one set of permission checks and wiping for every secret the project
 * reads from disk.
 */
#include "audit_hash.h"

#include <string.h>

#include <sodium.h>

void audit_subject_hash(const uint8_t key[AUDIT_KEY_BYTES], const char *type,
                        const char *subject,
                        uint8_t out[AUDIT_SUBJECT_HASH_BYTES])
{
    crypto_auth_hmacsha256_state st;
    static const uint8_t separator = 0x00;

    crypto_auth_hmacsha256_init(&st, key, AUDIT_KEY_BYTES);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)type, strlen(type));
    crypto_auth_hmacsha256_update(&st, &separator, 1);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)subject,
                                  strlen(subject));
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

int audit_key_load(uint8_t key[AUDIT_KEY_BYTES], const char *path,
                   once_error *err)
{
    once_keypair kp;
    int rc;

    /* The first 32 bytes of the loaded secret key are the file's bytes. */
    rc = once_keypair_load(&kp, path, err);
    if (rc == 0)
        memcpy(key, kp.secret_key, AUDIT_KEY_BYTES);
    once_keypair_wipe(&kp);
    return rc;
}
