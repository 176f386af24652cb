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
 * A revocation is a record with status REVOKED, no fields, and optionally
 * the issuer's reason (PROTOCOL.md 4.2). The reason is in the header, not
 * in the Revoke body beside it: so the issuer signs it, the broker keeps it
 * with the revocation without a store of its own, and every requester gets
 * it inside the signed revocation and checks it with the issuer's key
 * rather than taking the broker's word. An empty reason is left out of the
 * encoding, so a revocation without one is the header of before the field.
 *
 * A record is built (once_record_new, once_record_add_field), then signed
 * (once_record_sign), then immutable; this file holds those steps, the
 * digest both sides compute, and the accessors. Records that come from
 * outside are decoded and checked in record_parse.c, a signed record is
 * handed on (fewer disclosures, the Publish encoding) by record_disclose.c;
 * the three share record_layout.h.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "envelope.h"
#include "record_internal.h"
#include "record_layout.h"
#include "text_check.h"

/* The values of one record must leave room, within one ONCE_MAX_MESSAGE
 * envelope, for the header (at most 64 names and digests), the disclosures'
 * salts and names, and the envelope's own fields: 64 KiB is several times
 * what those take. */
#define RECORD_MAX_VALUE_BYTES (ONCE_MAX_MESSAGE - 64 * 1024)

const uint8_t record_no_bytes[1];

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
bool record_subject_is_valid(const char *subject)
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
    crypto_hash_sha256_update(&st, len > 0 ? value : record_no_bytes, len);
    crypto_hash_sha256_final(&st, out);
    return 0;
}

/* ---- building ---- */

static int record_new(once_record **out, const char *type, const char *subject,
                      uint64_t version, const char *issuer,
                      uint64_t valid_from, uint64_t valid_until,
                      once_record_status status, const char *reason,
                      once_error *err)
{
    once_record *r;

    if (out == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "an output pointer is required");
    *out = NULL;
    /* The reason is refused here as the broker and every reader would
     * refuse the signed header, before anything is signed. */
    if (strlen(reason) > ONCE_MAX_REASON)
        return once_error_set(err, ONCE_ERR_TOO_LARGE,
                              "the reason is over %d bytes", ONCE_MAX_REASON);
    if (!text_is_clean_utf8((const uint8_t *)reason, strlen(reason)))
        return once_error_set(err, ONCE_ERR_INVALID_TEXT,
                              "the reason is not clean text (UTF-8 without "
                              "control characters)");
    if (!record_name_is_valid(type))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "record type must be 1-%d characters of "
                              "a-z 0-9 . _ -", ONCE_MAX_NAME);
    if (!record_subject_is_valid(subject))
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
    strcpy(r->reason, reason);
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
                      valid_until, ONCE_STATUS_VALID, "", err);
}

int once_record_new_revocation(once_record **out, const char *type,
                               const char *subject, uint64_t version,
                               const char *issuer, once_error *err)
{
    return record_new(out, type, subject, version, issuer, 0, 0,
                      ONCE_STATUS_REVOKED, "", err);
}

int once_record_new_revocation_reason(once_record **out, const char *type,
                                      const char *subject, uint64_t version,
                                      const char *issuer, const char *reason,
                                      once_error *err)
{
    if (reason == NULL || reason[0] == '\0') {
        if (out != NULL)
            *out = NULL;
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a reason is required (without one, use "
                              "once_record_new_revocation)");
    }
    return record_new(out, type, subject, version, issuer, 0, 0,
                      ONCE_STATUS_REVOKED, reason, err);
}

int record_disclosure_set(record_disclosure *d, const char *name,
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
    if (record_disclosure_set(&r->disclosures[r->n_disclosures], name, value,
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
    /* "" is left out of the encoding: a revocation without a reason is
     * the header of before the field. */
    h.reason = r->reason;
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

/* ---- freeing, accessors ---- */

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

const char *once_record_reason(const once_record *r)
{
    return r != NULL ? r->reason : NULL;
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
