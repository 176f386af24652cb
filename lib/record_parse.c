/*
 * record_parse.c - records that come from outside: a Publish's, a
 * Response's, a stored record's bytes, decoded and checked for shape, and
 * once_record_verify, which checks them against the issuer's key.
 *
 * Received records (parsed from a Publish, or assembled from a Response by
 * the client) are checked for shape when they are decoded -- every size is
 * bounded, names follow the name rule, the header decodes and is
 * consistent -- because those bytes come from outside. Whether the
 * signature verifies and the disclosures match the header is left to
 * once_record_verify(), the one place that decides it.
 *
 * protobuf-c keeps a string with a NUL byte in it and hands it out
 * truncated at the NUL, so another implementation would read a different
 * type or subject from the same signed header; it also keeps fields
 * once.proto does not define and allocates for every repeated field before
 * anyone can count them. So a header's bytes are first walked with
 * wire_check (wire_schema.c): only the fields of a RecordHeader, each once,
 * at most ONCE_MAX_FIELDS digests, clean text in every string.
 *
 * The format itself, and why a received header is kept as bytes and never
 * re-serialized, is in record.c.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "envelope.h"
#include "record_internal.h"
#include "record_layout.h"
#include "wire_schema.h"

static int check_header(const Once__RecordHeader *h, once_error *err)
{
    size_t i, j;

    if (!record_name_is_valid(h->type))
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "record type is not a valid name");
    if (!record_subject_is_valid(h->subject))
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "record subject must be 1-%d visible ASCII "
                              "characters", ONCE_MAX_SUBJECT);
    if (!record_name_is_valid(h->issuer))
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "record issuer is not a valid name");
    if (h->version == 0)
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "record version must be at least 1");
    if (h->valid_until != 0 && h->valid_until < h->valid_from)
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "record validity ends before it starts");
    if (h->status != ONCE__RECORD_STATUS__STATUS_VALID &&
        h->status != ONCE__RECORD_STATUS__STATUS_REVOKED)
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "record status must be VALID or REVOKED");
    /* A reason is the issuer's word on why a record was revoked; on a
     * valid record it would be signed text no reader looks for. Its text
     * was walked as clean already (wire_record_header). */
    if (h->reason[0] != '\0' &&
        h->status != ONCE__RECORD_STATUS__STATUS_REVOKED)
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "only a revocation has a reason");
    if (strlen(h->reason) > ONCE_MAX_REASON)
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "the revocation's reason is over %d bytes",
                              ONCE_MAX_REASON);
    if (h->status == ONCE__RECORD_STATUS__STATUS_REVOKED && h->n_fields > 0)
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "a revocation has no fields");
    if (h->n_fields > ONCE_MAX_FIELDS)
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "record has more than %d fields",
                              ONCE_MAX_FIELDS);
    for (i = 0; i < h->n_fields; i++) {
        const Once__FieldDigest *f = h->fields[i];

        if (f == NULL || !record_name_is_valid(f->name))
            return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                                  "record field %zu has no valid name", i + 1);
        if (f->digest.len != ONCE_DIGEST_BYTES)
            return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                                  "digest of field %s is not %d bytes",
                                  f->name, ONCE_DIGEST_BYTES);
        for (j = 0; j < i; j++) {
            if (strcmp(h->fields[j]->name, f->name) == 0)
                return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                                      "field %s appears twice in the record "
                                      "header", f->name);
        }
    }
    return 0;
}

int record_header_parse(const uint8_t *header, size_t len,
                        Once__RecordHeader **out, once_error *err)
{
    Once__RecordHeader *h;
    once_error shape;
    int rc;

    *out = NULL;
    if (len > ONCE_MAX_MESSAGE)
        return once_error_set(err, ONCE_ERR_TOO_LARGE,
                              "record header is larger than %d bytes",
                              ONCE_MAX_MESSAGE);
    if (header == NULL || len == 0)
        header = record_no_bytes;
    /* Walked before protobuf-c allocates anything for it. */
    rc = wire_check(header, len, &wire_record_header, &shape);
    if (rc < 0)
        return once_error_set(err, rc == -ONCE_ERR_MALFORMED
                                       ? ONCE_ERR_MALFORMED
                                       : ONCE_ERR_INVALID_RECORD,
                              "record header: %s", shape.message);
    h = once__record_header__unpack(NULL, len, header);
    if (h == NULL)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "record header does not decode");
    if ((rc = check_header(h, err)) < 0) {
        once__record_header__free_unpacked(h, NULL);
        return rc;
    }
    *out = h;
    return 0;
}

/* Fills r's header fields from a checked header. */
static void take_header(once_record *r, const Once__RecordHeader *h)
{
    size_t i;

    /* check_header bounded every length, so these copies fit. */
    strcpy(r->type, h->type);
    strcpy(r->subject, h->subject);
    strcpy(r->issuer, h->issuer);
    strcpy(r->reason, h->reason);
    r->version = h->version;
    r->issued_at = h->issued_at;
    r->valid_from = h->valid_from;
    r->valid_until = h->valid_until;
    r->status = h->status == ONCE__RECORD_STATUS__STATUS_REVOKED
                    ? ONCE_STATUS_REVOKED
                    : ONCE_STATUS_VALID;
    r->n_fields = h->n_fields;
    for (i = 0; i < h->n_fields; i++) {
        strcpy(r->fields[i].name, h->fields[i]->name);
        memcpy(r->fields[i].digest, h->fields[i]->digest.data,
               ONCE_DIGEST_BYTES);
    }
}

int record_from_parts(once_record **out, const Once__SignedRecord *rec,
                      Once__Disclosure *const *disclosures, size_t n,
                      once_error *err)
{
    Once__RecordHeader *h;
    once_record *r;
    size_t i;
    int rc;

    if (out == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "an output pointer is required");
    *out = NULL;
    if (rec == NULL || (disclosures == NULL && n > 0))
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "the message holds no signed record");
    if (n > ONCE_MAX_FIELDS)
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "more than %d disclosures", ONCE_MAX_FIELDS);
    if (rec->signature.len != ONCE_SIGNATURE_BYTES)
        return once_error_set(err, ONCE_ERR_BAD_SIGNATURE,
                              "record signature is not %d bytes",
                              ONCE_SIGNATURE_BYTES);
    for (i = 0; i < n; i++) {
        const Once__Disclosure *d = disclosures[i];

        if (d == NULL)
            return once_error_set(err, ONCE_ERR_MALFORMED,
                                  "disclosure %zu is missing", i + 1);
        if (d->salt.len != ONCE_SALT_BYTES)
            return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                                  "disclosure %zu has no %d-byte salt", i + 1,
                                  ONCE_SALT_BYTES);
        if (!record_name_is_valid(d->name))
            return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                                  "disclosure %zu has no valid field name",
                                  i + 1);
        if (d->value.len > ONCE_MAX_FIELD_VALUE)
            return once_error_set(err, ONCE_ERR_TOO_LARGE,
                                  "value of field %s is over %d bytes",
                                  d->name, ONCE_MAX_FIELD_VALUE);
    }
    if ((rc = record_header_parse(rec->header.data, rec->header.len, &h,
                                  err)) < 0)
        return rc;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        goto no_memory;
    take_header(r, h);
    once__record_header__free_unpacked(h, NULL);
    h = NULL;
    r->signing_input = malloc(RECORD_DOMAIN_BYTES + rec->header.len);
    if (r->signing_input == NULL)
        goto no_memory;
    memcpy(r->signing_input, RECORD_DOMAIN, RECORD_DOMAIN_BYTES);
    if (rec->header.len > 0)
        memcpy(r->signing_input + RECORD_DOMAIN_BYTES, rec->header.data,
               rec->header.len);
    r->header_len = rec->header.len;
    memcpy(r->signature, rec->signature.data, ONCE_SIGNATURE_BYTES);
    for (i = 0; i < n; i++) {
        const Once__Disclosure *d = disclosures[i];
        record_disclosure *dst = &r->disclosures[i];

        if (record_disclosure_set(dst, d->name, d->value.data, d->value.len) < 0)
            goto no_memory;
        memcpy(dst->salt, d->salt.data, ONCE_SALT_BYTES);
        r->n_disclosures++;
    }
    *out = r;
    return 0;

no_memory:
    if (h != NULL)
        once__record_header__free_unpacked(h, NULL);
    once_record_free(r);
    return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
}

int once_record_parse(once_record **out, const uint8_t *buf, size_t len,
                      once_error *err)
{
    Once__Publish *p;
    int rc;

    if (out == NULL || (buf == NULL && len > 0))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a buffer and an output pointer are required");
    *out = NULL;
    if (len > ONCE_MAX_MESSAGE)
        return once_error_set(err, ONCE_ERR_TOO_LARGE,
                              "record message is larger than %d bytes",
                              ONCE_MAX_MESSAGE);
    if ((rc = wire_check(len > 0 ? buf : record_no_bytes, len, &wire_publish,
                         err)) < 0)
        return rc;
    p = once__publish__unpack(NULL, len, len > 0 ? buf : record_no_bytes);
    if (p == NULL)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "not a decodable record (once.Publish)");
    rc = record_from_parts(out, p->record, p->disclosures, p->n_disclosures,
                           err);
    once__publish__free_unpacked(p, NULL);
    return rc;
}

/* ---- checking ---- */

static const record_field *find_field(const once_record *r, const char *name)
{
    size_t i;

    for (i = 0; i < r->n_fields; i++) {
        if (strcmp(r->fields[i].name, name) == 0)
            return &r->fields[i];
    }
    return NULL;
}

int once_record_verify(const once_record *r,
                       const uint8_t issuer_pk[ONCE_PUBLIC_KEY_BYTES],
                       once_error *err)
{
    uint8_t digest[ONCE_DIGEST_BYTES];
    size_t i, j;

    if (r == NULL || issuer_pk == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a record and the issuer's key are required");
    if (r->signing_input == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "the record is not signed");
    if (crypto_sign_verify_detached(r->signature, r->signing_input,
                                    RECORD_DOMAIN_BYTES + r->header_len,
                                    issuer_pk) != 0)
        return once_error_set(err, ONCE_ERR_BAD_SIGNATURE,
                              "the issuer's signature on the record does "
                              "not verify");
    /* The header's shape was checked when it was decoded (or it was
     * encoded here from checked fields); what is left is the disclosures. */
    for (i = 0; i < r->n_disclosures; i++) {
        const record_disclosure *d = &r->disclosures[i];
        const record_field *f = find_field(r, d->name);

        for (j = 0; j < i; j++) {
            if (strcmp(r->disclosures[j].name, d->name) == 0)
                return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                                      "field %s is disclosed twice", d->name);
        }
        if (f == NULL)
            return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                                  "disclosed field %s is not in the signed "
                                  "header", d->name);
        if (record_disclosure_digest(d->salt, d->name, d->value, d->len,
                                     digest) < 0 ||
            sodium_memcmp(digest, f->digest, sizeof(digest)) != 0)
            return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                                  "disclosed value of field %s does not "
                                  "match its signed digest", d->name);
    }
    return 0;
}
