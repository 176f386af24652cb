/*
 * record.c - issuer-signed records with selective disclosure.
 *
 * A department publishes a record once; other departments receive only the
 * fields their grants allow and must still be able to check, without
 * trusting the broker, that the issuer said exactly that. So the issuer does
 * not sign the field values. It signs a header that holds, for each field, a
 * digest of a disclosure (salt, name, value):
 *
 *     digest = SHA-256(salt[16] || u32be(len(name)) || name
 *                               || u32be(len(value)) || value)
 *     signature = Ed25519(issuer, "ONCE-RECORD-V1" 0x00 || header bytes)
 *
 * as in ISO 18013-5 (mDL) and SD-JWT. The broker hands a requester the
 * signed header and the granted disclosures; the requester checks the
 * signature and that each disclosure hashes to the digest the header lists
 * under its name. The random salt (16 bytes, one per field) keeps withheld
 * values from being guessed from their digests: a field like a gender or a
 * district has few possible values, and an unsalted digest would disclose it.
 * Lengths are encoded so that no (name, value) pair can be shifted into
 * another with the same bytes.
 *
 * The header is a serialized once.RecordHeader and a record keeps it as
 * bytes, exactly as signed: protobuf serialization is not canonical across
 * implementations, so a received header is never re-serialized, and the
 * fields read from it are only ever a decoding of those bytes. To verify
 * without copying, the bytes are stored after the domain prefix, so the
 * buffer is the signing input itself.
 *
 * A record is built, then signed, then immutable. Received records (parsed
 * from a Publish, or assembled from a Response by the client) are checked for
 * shape when they are decoded -- every size is bounded, names follow the
 * name rule, the header decodes and is consistent -- because those bytes
 * come from outside. Whether the signature verifies and the disclosures
 * match the header is left to once_record_verify(), the one place that
 * decides it.
 *
 * protobuf-c keeps a string with a NUL byte in it and hands it out
 * truncated at the NUL, so another implementation would read a different
 * type or subject from the same signed header; it also keeps fields
 * once.proto does not define and allocates for every repeated field before
 * anyone can count them. So a header's bytes are first walked with
 * wire_check (wire_schema.c): only the fields of a RecordHeader, each once,
 * at most ONCE_MAX_FIELDS digests, clean text in every string.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "envelope.h"
#include "record_internal.h"
#include "wire_schema.h"

/* The values of one record must leave room, within one ONCE_MAX_MESSAGE
 * envelope, for the header (at most 64 names and digests), the disclosures'
 * salts and names, and the envelope's own fields: 64 KiB is several times
 * what those take. */
#define RECORD_MAX_VALUE_BYTES (ONCE_MAX_MESSAGE - 64 * 1024)

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
static const uint8_t no_bytes[1];

bool record_name_is_valid(const char *name)
{
    size_t i;

    if (name == NULL || name[0] == '\0')
        return false;
    for (i = 0; name[i] != '\0'; i++) {
        char c = name[i];

        if (i >= ONCE_MAX_NAME)
            return false;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            continue;
        if (i > 0 && (c == '.' || c == '_' || c == '-'))
            continue;
        return false;
    }
    return true;
}

/* 1..ONCE_MAX_SUBJECT visible ASCII characters: no spaces, no control
 * characters, nothing a log line or a database key could misread. */
static bool subject_is_valid(const char *subject)
{
    size_t i;

    if (subject == NULL || subject[0] == '\0')
        return false;
    for (i = 0; subject[i] != '\0'; i++) {
        if (i >= ONCE_MAX_SUBJECT)
            return false;
        if (subject[i] < 0x21 || subject[i] > 0x7e)
            return false;
    }
    return true;
}

static void put_u32be(uint8_t p[4], uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int record_disclosure_digest(const uint8_t salt[ONCE_SALT_BYTES],
                             const char *name, const uint8_t *value,
                             size_t len, uint8_t out[ONCE_DIGEST_BYTES])
{
    crypto_hash_sha256_state st;
    size_t name_len = strlen(name);
    uint8_t be[4];

    if (name_len > UINT32_MAX || len > UINT32_MAX)
        return -ONCE_ERR_TOO_LARGE;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, salt, ONCE_SALT_BYTES);
    put_u32be(be, (uint32_t)name_len);
    crypto_hash_sha256_update(&st, be, 4);
    crypto_hash_sha256_update(&st, (const uint8_t *)name, name_len);
    put_u32be(be, (uint32_t)len);
    crypto_hash_sha256_update(&st, be, 4);
    crypto_hash_sha256_update(&st, len > 0 ? value : no_bytes, len);
    crypto_hash_sha256_final(&st, out);
    return 0;
}

static int check_header(const Once__RecordHeader *h, once_error *err)
{
    size_t i, j;

    if (!record_name_is_valid(h->type))
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "record type is not a valid name");
    if (!subject_is_valid(h->subject))
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
        header = no_bytes;
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

/* ---- building ---- */

static int record_new(once_record **out, const char *type, const char *subject,
                      uint64_t version, const char *issuer,
                      uint64_t valid_from, uint64_t valid_until,
                      once_record_status status, once_error *err)
{
    once_record *r;

    if (out == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "an output pointer is required");
    *out = NULL;
    if (!record_name_is_valid(type))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "record type must be 1-%d characters of "
                              "a-z 0-9 . _ -", ONCE_MAX_NAME);
    if (!subject_is_valid(subject))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "record subject must be 1-%d visible ASCII "
                              "characters", ONCE_MAX_SUBJECT);
    if (!record_name_is_valid(issuer))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "issuer must be 1-%d characters of a-z 0-9 . _ -",
                              ONCE_MAX_NAME);
    if (version == 0)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "record version must be at least 1");
    if (valid_until != 0 && valid_until < valid_from)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "valid_until is before valid_from");
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    strcpy(r->type, type);
    strcpy(r->subject, subject);
    strcpy(r->issuer, issuer);
    r->version = version;
    r->valid_from = valid_from;
    r->valid_until = valid_until;
    r->status = status;
    *out = r;
    return 0;
}

int once_record_new(once_record **out, const char *type, const char *subject,
                    uint64_t version, const char *issuer, uint64_t valid_from,
                    uint64_t valid_until, once_error *err)
{
    return record_new(out, type, subject, version, issuer, valid_from,
                      valid_until, ONCE_STATUS_VALID, err);
}

int once_record_new_revocation(once_record **out, const char *type,
                               const char *subject, uint64_t version,
                               const char *issuer, once_error *err)
{
    return record_new(out, type, subject, version, issuer, 0, 0,
                      ONCE_STATUS_REVOKED, err);
}

/* Copies value into a fresh disclosure slot d. */
static int disclosure_set(record_disclosure *d, const char *name,
                          const uint8_t *value, size_t len)
{
    d->value = malloc(len > 0 ? len : 1);
    if (d->value == NULL)
        return -ONCE_ERR_NO_MEMORY;
    if (len > 0)
        memcpy(d->value, value, len);
    d->len = len;
    strcpy(d->name, name);
    return 0;
}

int once_record_add_field(once_record *r, const char *name,
                          const uint8_t *value, size_t value_len,
                          once_error *err)
{
    size_t i;

    if (r == NULL || (value == NULL && value_len > 0))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a record and a value are required");
    if (r->signing_input != NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "the record is signed and can no longer "
                              "change");
    if (r->status != ONCE_STATUS_VALID)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a revocation has no fields");
    if (!record_name_is_valid(name))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "field name must be 1-%d characters of "
                              "a-z 0-9 . _ -", ONCE_MAX_NAME);
    for (i = 0; i < r->n_fields; i++) {
        if (strcmp(r->fields[i].name, name) == 0)
            return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                                  "field %s is already in the record", name);
    }
    if (r->n_fields >= ONCE_MAX_FIELDS)
        return once_error_set(err, ONCE_ERR_TOO_LARGE,
                              "a record has at most %d fields",
                              ONCE_MAX_FIELDS);
    if (value_len > ONCE_MAX_FIELD_VALUE)
        return once_error_set(err, ONCE_ERR_TOO_LARGE,
                              "value of field %s is over %d bytes", name,
                              ONCE_MAX_FIELD_VALUE);
    if (value_len > RECORD_MAX_VALUE_BYTES - r->value_bytes)
        return once_error_set(err, ONCE_ERR_TOO_LARGE,
                              "the record's values would not fit in one "
                              "%d-byte message", ONCE_MAX_MESSAGE);
    if (disclosure_set(&r->disclosures[r->n_disclosures], name, value,
                       value_len) < 0)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    r->n_disclosures++;
    strcpy(r->fields[r->n_fields++].name, name);
    r->value_bytes += value_len;
    return 0;
}

int once_record_add_text(once_record *r, const char *name, const char *value,
                         once_error *err)
{
    if (value == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a value is required");
    return once_record_add_field(r, name, (const uint8_t *)value,
                                 strlen(value), err);
}

int once_record_sign(once_record *r, const once_keypair *issuer,
                     once_error *err)
{
    Once__RecordHeader h = ONCE__RECORD_HEADER__INIT;
    Once__FieldDigest digests[ONCE_MAX_FIELDS];
    Once__FieldDigest *digest_ptrs[ONCE_MAX_FIELDS];
    size_t i, header_len;

    if (r == NULL || issuer == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a record and the issuer's key are required");
    if (r->signing_input != NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "the record is already signed");
    for (i = 0; i < r->n_fields; i++) {
        record_disclosure *d = &r->disclosures[i];

        randombytes_buf(d->salt, sizeof(d->salt));
        record_disclosure_digest(d->salt, d->name, d->value, d->len,
                                 r->fields[i].digest);
        once__field_digest__init(&digests[i]);
        digests[i].name = r->fields[i].name;
        digests[i].digest.data = r->fields[i].digest;
        digests[i].digest.len = ONCE_DIGEST_BYTES;
        digest_ptrs[i] = &digests[i];
    }
    r->issued_at = once_now_ms();
    h.type = r->type;
    h.subject = r->subject;
    h.version = r->version;
    h.issuer = r->issuer;
    h.issued_at = r->issued_at;
    h.valid_from = r->valid_from;
    h.valid_until = r->valid_until;
    h.status = r->status == ONCE_STATUS_REVOKED
                   ? ONCE__RECORD_STATUS__STATUS_REVOKED
                   : ONCE__RECORD_STATUS__STATUS_VALID;
    h.n_fields = r->n_fields;
    h.fields = r->n_fields > 0 ? digest_ptrs : NULL;
    header_len = once__record_header__get_packed_size(&h);
    r->signing_input = malloc(RECORD_DOMAIN_BYTES + header_len);
    if (r->signing_input == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    memcpy(r->signing_input, RECORD_DOMAIN, RECORD_DOMAIN_BYTES);
    once__record_header__pack(&h, r->signing_input + RECORD_DOMAIN_BYTES);
    r->header_len = header_len;
    crypto_sign_detached(r->signature, NULL, r->signing_input,
                         RECORD_DOMAIN_BYTES + header_len, issuer->secret_key);
    return 0;
}

/* ---- copies, received records ---- */

void once_record_free(once_record *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->n_disclosures; i++)
        free(r->disclosures[i].value);
    free(r->signing_input);
    free(r);
}

/* A new record holding r's header and signature and no disclosures. */
static int copy_signed_header(const once_record *r, once_record **out)
{
    once_record *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return -ONCE_ERR_NO_MEMORY;
    c->signing_input = malloc(RECORD_DOMAIN_BYTES + r->header_len);
    if (c->signing_input == NULL) {
        free(c);
        return -ONCE_ERR_NO_MEMORY;
    }
    memcpy(c->signing_input, r->signing_input,
           RECORD_DOMAIN_BYTES + r->header_len);
    c->header_len = r->header_len;
    memcpy(c->signature, r->signature, sizeof(c->signature));
    memcpy(c->type, r->type, sizeof(c->type));
    memcpy(c->subject, r->subject, sizeof(c->subject));
    memcpy(c->issuer, r->issuer, sizeof(c->issuer));
    c->version = r->version;
    c->issued_at = r->issued_at;
    c->valid_from = r->valid_from;
    c->valid_until = r->valid_until;
    c->status = r->status;
    c->n_fields = r->n_fields;
    memcpy(c->fields, r->fields, r->n_fields * sizeof(r->fields[0]));
    *out = c;
    return 0;
}

int once_record_disclose(const once_record *r, const char *const *names,
                         size_t count, once_record **out, once_error *err)
{
    once_record *c;
    size_t i, j;

    if (out == NULL || r == NULL || (names == NULL && count > 0))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a record, names and an output are required");
    *out = NULL;
    for (j = 0; j < count; j++) {
        if (names[j] == NULL)
            return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                                  "field name %zu is NULL", j + 1);
    }
    if (r->signing_input == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "only a signed record can be disclosed");
    if (copy_signed_header(r, &c) < 0)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    /* Walk the record's disclosures, not the names, so that a name given
     * twice is disclosed once. */
    for (i = 0; i < r->n_disclosures; i++) {
        const record_disclosure *d = &r->disclosures[i];
        record_disclosure *dst = &c->disclosures[c->n_disclosures];

        for (j = 0; j < count; j++) {
            if (strcmp(names[j], d->name) == 0)
                break;
        }
        if (j == count)
            continue;
        if (disclosure_set(dst, d->name, d->value, d->len) < 0) {
            once_record_free(c);
            return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
        }
        memcpy(dst->salt, d->salt, sizeof(dst->salt));
        c->n_disclosures++;
    }
    *out = c;
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

        if (disclosure_set(dst, d->name, d->value.data, d->value.len) < 0)
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
    if ((rc = wire_check(len > 0 ? buf : no_bytes, len, &wire_publish,
                         err)) < 0)
        return rc;
    p = once__publish__unpack(NULL, len, len > 0 ? buf : no_bytes);
    if (p == NULL)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "not a decodable record (once.Publish)");
    rc = record_from_parts(out, p->record, p->disclosures, p->n_disclosures,
                           err);
    once__publish__free_unpacked(p, NULL);
    return rc;
}

int record_publish_view_init(record_publish_view *v, const once_record *r,
                             once_error *err)
{
    size_t i;

    if (r == NULL || r->signing_input == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "only a signed record can be sent");
    once__publish__init(&v->publish);
    once__signed_record__init(&v->record);
    v->record.header.data = r->signing_input + RECORD_DOMAIN_BYTES;
    v->record.header.len = r->header_len;
    v->record.signature.data = (uint8_t *)r->signature;
    v->record.signature.len = ONCE_SIGNATURE_BYTES;
    for (i = 0; i < r->n_disclosures; i++) {
        const record_disclosure *d = &r->disclosures[i];
        Once__Disclosure *w = &v->disclosures[i];

        once__disclosure__init(w);
        w->salt.data = (uint8_t *)d->salt;
        w->salt.len = ONCE_SALT_BYTES;
        w->name = (char *)d->name;
        w->value.data = d->value;
        w->value.len = d->len;
        v->disclosure_ptrs[i] = w;
    }
    v->publish.record = &v->record;
    v->publish.n_disclosures = r->n_disclosures;
    v->publish.disclosures = r->n_disclosures > 0 ? v->disclosure_ptrs : NULL;
    return 0;
}

int once_record_serialize(const once_record *r, uint8_t **buf, size_t *len,
                          once_error *err)
{
    record_publish_view v;
    size_t packed_len;
    int rc;

    if (buf == NULL || len == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "output pointers are required");
    if ((rc = record_publish_view_init(&v, r, err)) < 0)
        return rc;
    packed_len = once__publish__get_packed_size(&v.publish);
    *buf = malloc(packed_len > 0 ? packed_len : 1);
    if (*buf == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    once__publish__pack(&v.publish, *buf);
    *len = packed_len;
    return 0;
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

/* ---- accessors ---- */

const char *once_record_type(const once_record *r)
{
    return r != NULL ? r->type : NULL;
}

const char *once_record_subject(const once_record *r)
{
    return r != NULL ? r->subject : NULL;
}

const char *once_record_issuer(const once_record *r)
{
    return r != NULL ? r->issuer : NULL;
}

uint64_t once_record_version(const once_record *r)
{
    return r != NULL ? r->version : 0;
}

once_record_status once_record_status_of(const once_record *r)
{
    return r != NULL ? r->status : ONCE_STATUS_UNSPECIFIED;
}

uint64_t once_record_issued_at(const once_record *r)
{
    return r != NULL ? r->issued_at : 0;
}

uint64_t once_record_valid_from(const once_record *r)
{
    return r != NULL ? r->valid_from : 0;
}

uint64_t once_record_valid_until(const once_record *r)
{
    return r != NULL ? r->valid_until : 0;
}

size_t once_record_field_count(const once_record *r)
{
    return r != NULL ? r->n_fields : 0;
}

const char *once_record_field_name(const once_record *r, size_t i)
{
    return r != NULL && i < r->n_fields ? r->fields[i].name : NULL;
}

int once_record_field_value(const once_record *r, const char *name,
                            const uint8_t **value, size_t *len)
{
    size_t i;

    if (r == NULL || name == NULL || value == NULL || len == NULL)
        return -ONCE_ERR_INVALID_ARGUMENT;
    for (i = 0; i < r->n_disclosures; i++) {
        if (strcmp(r->disclosures[i].name, name) == 0) {
            *value = r->disclosures[i].value;
            *len = r->disclosures[i].len;
            return 0;
        }
    }
    return -ONCE_ERR_NOT_FOUND;
}

size_t once_record_disclosure_count(const once_record *r)
{
    return r != NULL ? r->n_disclosures : 0;
}
