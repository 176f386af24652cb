/*
 * record_internal.h - record helpers shared by libonce's client and the
 * broker (not installed). See record.c for the record format and its rules.
 */
#ifndef ONCE_RECORD_INTERNAL_H
#define ONCE_RECORD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "once/once.h"
#include "once.pb-c.h"

/* Builds a record from decoded protobuf pieces (a Publish's, a Response's or
 * a StoredRecord's), copying everything it keeps, so the pieces may be freed
 * afterwards. The header bytes are kept exactly as received. Checks shape
 * only (as once_record_parse): the header must pass record_header_parse, the
 * signature must be 64 bytes (else -ONCE_ERR_BAD_SIGNATURE), each
 * disclosure needs a 16-byte salt, a valid name and a value of at most
 * ONCE_MAX_FIELD_VALUE bytes. Whether the signature verifies and the
 * disclosures match the header is once_record_verify()'s job. */
int record_from_parts(once_record **out, const Once__SignedRecord *rec,
                      Once__Disclosure *const *disclosures, size_t n,
                      once_error *err);

/* Unpacks a serialized RecordHeader and checks its shape: type and issuer
 * are names ([a-z0-9._-], 1..ONCE_MAX_NAME), subject is 1..ONCE_MAX_SUBJECT
 * visible ASCII characters, no string holds a NUL byte, version >= 1,
 * valid_until is 0 or not before valid_from, status is VALID or REVOKED, a
 * revocation has no fields, only a revocation has a reason (clean text of
 * at most ONCE_MAX_REASON bytes), at most ONCE_MAX_FIELDS fields with unique
 * valid names and 32-byte digests. Returns 0 and *out (free it with
 * once__record_header__free_unpacked(*out, NULL)), -ONCE_ERR_MALFORMED when
 * the bytes do not decode, -ONCE_ERR_TOO_LARGE over ONCE_MAX_MESSAGE, or
 * -ONCE_ERR_INVALID_RECORD. Does not check the signature. */
int record_header_parse(const uint8_t *header, size_t len,
                        Once__RecordHeader **out, once_error *err);

/* The digest a header holds for a disclosure:
 * SHA-256(salt || u32be(len(name)) || name || u32be(len) || value).
 * Returns 0, or -ONCE_ERR_TOO_LARGE when a length does not fit a u32. */
int record_disclosure_digest(const uint8_t salt[ONCE_SALT_BYTES],
                             const char *name, const uint8_t *value,
                             size_t len, uint8_t out[ONCE_DIGEST_BYTES]);

/* True when name is 1..ONCE_MAX_NAME characters of [a-z0-9._-], starting
 * with a letter or digit: the rule for department ids,
 * record types, issuers and field names. */
bool record_name_is_valid(const char *name);

/* A once.Publish message that points into a signed record instead of
 * copying it, to pack the record into a Publish body, or its `record` into a
 * Revoke body. It holds every disclosure of r. Valid while r lives and
 * where it was filled: its members point at each other, so do not copy it. */
typedef struct record_publish_view {
    Once__Publish publish;
    Once__SignedRecord record;
    Once__Disclosure disclosures[ONCE_MAX_FIELDS];
    Once__Disclosure *disclosure_ptrs[ONCE_MAX_FIELDS];
} record_publish_view;

/* Fills v from r. Returns 0, or -ONCE_ERR_INVALID_ARGUMENT when r is not
 * signed. */
int record_publish_view_init(record_publish_view *v, const once_record *r,
                             once_error *err);

#endif
