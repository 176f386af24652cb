/*
 * record_layout.h - what a once_record holds, shared by the files of the
 * record module and by no one else: record.c (the format, building,
 * signing, accessors), record_parse.c (records that come from outside:
 * decoding, shape checks, verification) and record_disclose.c (handing a
 * signed record on). The broker and the client see a record only through
 * once.h and record_internal.h. See record.c for the format.
 */
#ifndef ONCE_RECORD_LAYOUT_H
#define ONCE_RECORD_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "once/once.h"

typedef struct record_field {
    char name[ONCE_MAX_NAME + 1];
    uint8_t digest[ONCE_DIGEST_BYTES];
} record_field;

typedef struct record_disclosure {
    uint8_t salt[ONCE_SALT_BYTES];
    char name[ONCE_MAX_NAME + 1];
    uint8_t *value; /* malloc'd, never NULL, even for an empty value */
    size_t len;
} record_disclosure;

struct once_record {
    char type[ONCE_MAX_NAME + 1];
    char subject[ONCE_MAX_SUBJECT + 1];
    char issuer[ONCE_MAX_NAME + 1];
    uint64_t version;
    uint64_t issued_at;
    uint64_t valid_from;
    uint64_t valid_until;
    once_record_status status;
    /* A revocation's reason, "" when none (PROTOCOL.md 4.2): clean text
     * of at most ONCE_MAX_REASON bytes, signed with the header. */
    char reason[ONCE_MAX_REASON + 1];

    /* The header's fields. While a record is built, fields[i] and
     * disclosures[i] describe the same field; the digests are filled in by
     * once_record_sign. */
    size_t n_fields;
    record_field fields[ONCE_MAX_FIELDS];
    size_t n_disclosures;
    record_disclosure disclosures[ONCE_MAX_FIELDS];
    size_t value_bytes; /* sum of the values added while building */

    /* NULL until signed or received: RECORD_DOMAIN || header bytes, the
     * exact input of the signature; the header starts at
     * signing_input + RECORD_DOMAIN_BYTES. */
    uint8_t *signing_input;
    size_t header_len;
    uint8_t signature[ONCE_SIGNATURE_BYTES];
};

/* Stands in for a NULL buffer of length 0, so that no NULL pointer reaches
 * protobuf-c or pointer arithmetic. */
extern const uint8_t record_no_bytes[1];

/* 1..ONCE_MAX_SUBJECT visible ASCII characters: no spaces, no control
 * characters, nothing a log line or a database key could misread. */
bool record_subject_is_valid(const char *subject);

/* Copies value into a fresh disclosure slot d under name (a valid name).
 * Returns 0 or -ONCE_ERR_NO_MEMORY. */
int record_disclosure_set(record_disclosure *d, const char *name,
                          const uint8_t *value, size_t len);

#endif
