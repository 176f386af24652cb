/*
 * answer.c - what an adapter answers, as JSON: the same documents from the
 * gateway (HTTP bodies) and the spool (files in answers/, sent/, failed/).
 *
 * A requested record is handed over only after adapter_verify_record: the
 * issuer is found in the broker's signed directory (dircache.c; refreshed
 * once if the issuer is not in it yet), the directory lists it as an
 * issuer of the record's type, and the issuer's signature and every
 * disclosure's digest verify (once_record_verify). The answer then says
 * what was verified (the issuer key used, the directory's digest) beside
 * the fields and the receipt. Field values that are not UTF-8 (records
 * published by other means than an adapter) go in base64 under
 * binary_fields.
 *
 * Refusals are RFC 9457 problems whose `code` is the stable once error
 * name; adapter_http_status is the table x-once-error-status of
 * adapters/gateway/openapi.yaml, which the spool's problem.json files use
 * too, so one table serves both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common.h"

json_t *adapter_hex_json(const uint8_t *p, size_t n)
{
    char *hex = malloc(2 * n + 1);
    json_t *s;

    if (hex == NULL)
        return NULL;
    once_hex_encode(hex, p, n);
    s = json_string(hex);
    free(hex);
    return s;
}

json_t *adapter_receipt_json(const once_receipt *r, int proof_verified)
{
    json_t *o = json_object(), *proof;
    size_t i;

    if (o == NULL)
        return NULL;
    json_object_set_new(o, "leaf_index", json_integer((json_int_t)
                                                      r->leaf_index));
    if (r->has_proof) {
        proof = json_array();
        for (i = 0; i < r->proof_len; i++)
            json_array_append_new(proof, adapter_hex_json(r->proof[i], 32));
        json_object_set_new(o, "checkpoint",
                            json_stringn(r->checkpoint, r->checkpoint_len));
        json_object_set_new(o, "inclusion_proof", proof);
        json_object_set_new(o, "leaf", adapter_hex_json(r->leaf, r->leaf_len));
        json_object_set_new(o, "proof_verified",
                            json_boolean(proof_verified));
    }
    return o;
}

static const char *status_name(once_record_status s)
{
    return s == ONCE_STATUS_REVOKED ? "revoked" : "valid";
}

json_t *adapter_problem_json(int status, const char *code,
                             const char *detail)
{
    char type[96];

    snprintf(type, sizeof(type), "urn:once:error:%s", code);
    return json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title",
                     code, "status", status, "detail", detail, "code", code);
}

json_t *adapter_write_json(const char *type, const char *subject,
                           uint64_t version, bool revocation,
                           const char *issuer, const once_receipt *r,
                           int proof_verified)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:o}", "type", type,
                     "subject", subject, "version", (json_int_t)version,
                     "status", revocation ? "revoked" : "valid", "issuer",
                     issuer, "receipt", adapter_receipt_json(r,
                                                             proof_verified));
}

/* The disclosed fields of r: text as strings; values that are not UTF-8
 * (records published by other means than the gateway) in base64 under
 * binary_fields. */
static void fields_json(json_t *doc, const once_record *r)
{
    json_t *fields = json_object(), *binary = json_object();
    const uint8_t *value;
    size_t i, len;

    for (i = 0; i < once_record_field_count(r); i++) {
        const char *name = once_record_field_name(r, i);
        json_t *text;

        if (once_record_field_value(r, name, &value, &len) < 0)
            continue;
        text = json_stringn((const char *)value, len);
        if (text != NULL) {
            json_object_set_new(fields, name, text);
        } else {
            size_t cap = sodium_base64_encoded_len(
                len, sodium_base64_VARIANT_ORIGINAL);
            char *b64 = malloc(cap);

            if (b64 == NULL)
                continue;
            sodium_bin2base64(b64, cap, value, len,
                              sodium_base64_VARIANT_ORIGINAL);
            json_object_set_new(binary, name, json_string(b64));
            free(b64);
        }
    }
    json_object_set_new(doc, "fields", fields);
    if (json_object_size(binary) > 0)
        json_object_set_new(doc, "binary_fields", binary);
    else
        json_decref(binary);
}

int adapter_verify_record(dircache *d, const once_record *r,
                          uint8_t pk[ONCE_PUBLIC_KEY_BYTES],
                          uint8_t dir_digest[ONCE_DIGEST_BYTES],
                          once_error *err)
{
    const char *issuer = once_record_issuer(r);
    once_directory_department dep;
    const once_directory *dir;
    once_directory_type t;
    bool listed = false;
    once_error why;
    size_t i, k;
    int rc = -ONCE_ERR_UNKNOWN_SENDER, attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        dir = dircache_get(d, attempt > 0, &why);
        if (dir == NULL)
            return once_error_set(err, ONCE_ERR_UNAVAILABLE, "no directory "
                                  "of issuers' keys from the broker: %s",
                                  why.message);
        rc = once_directory_find_department(dir, issuer, &dep);
        if (rc == 0)
            break;
        dircache_release(d);
    }
    if (rc < 0)
        return once_error_set(err, ONCE_ERR_UNKNOWN_SENDER, "the record's "
                              "issuer %s is not in the broker's directory",
                              issuer);
    for (i = 0; i < once_directory_type_count(dir) && !listed; i++) {
        if (once_directory_type_at(dir, i, &t) < 0 ||
            strcmp(t.name, once_record_type(r)) != 0)
            continue;
        for (k = 0; k < t.issuer_count; k++)
            listed = listed || strcmp(t.issuers[k], issuer) == 0;
    }
    memcpy(pk, dep.public_key, ONCE_PUBLIC_KEY_BYTES);
    memcpy(dir_digest, once_directory_digest(dir), ONCE_DIGEST_BYTES);
    dircache_release(d);
    if (!listed)
        return once_error_set(err, ONCE_ERR_NOT_ISSUER, "the directory does "
                              "not list %s as an issuer of %s records",
                              issuer, once_record_type(r));
    rc = once_record_verify(r, pk, &why);
    if (rc < 0)
        return once_error_set(err, -rc, "the record from the broker does "
                              "not verify: %s", why.message);
    return 0;
}

json_t *adapter_record_json(const once_record *r,
                            const uint8_t pk[ONCE_PUBLIC_KEY_BYTES],
                            const uint8_t dir_digest[ONCE_DIGEST_BYTES],
                            const once_receipt *receipt, int proof_verified)
{
    json_t *verified, *doc;

    verified = json_pack("{s:b, s:I, s:o, s:o}", "issuer_signature", 1,
                         "disclosures",
                         (json_int_t)once_record_disclosure_count(r),
                         "issuer_key",
                         adapter_hex_json(pk, ONCE_PUBLIC_KEY_BYTES),
                         "directory",
                         adapter_hex_json(dir_digest, ONCE_DIGEST_BYTES));
    doc = json_pack("{s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:o, s:o}",
                    "type", once_record_type(r), "subject",
                    once_record_subject(r), "version",
                    (json_int_t)once_record_version(r), "status",
                    status_name(once_record_status_of(r)), "issuer",
                    once_record_issuer(r), "issued_at",
                    (json_int_t)once_record_issued_at(r), "valid_from",
                    (json_int_t)once_record_valid_from(r), "valid_until",
                    (json_int_t)once_record_valid_until(r), "verified",
                    verified, "receipt",
                    adapter_receipt_json(receipt, proof_verified));
    /* The issuer's reason, from the revocation's signed header. */
    if (doc != NULL && once_record_reason(r)[0] != '\0')
        json_object_set_new(doc, "reason", json_string(once_record_reason(r)));
    if (doc != NULL)
        fields_json(doc, r);
    return doc;
}

bool adapter_answer_is_final(int rc)
{
    int code = rc < 0 ? -rc : rc;

    return !(code >= ONCE_ERR_INVALID_ARGUMENT ||
             code == ONCE_ERR_QUOTA_EXCEEDED || code == ONCE_ERR_UNAVAILABLE ||
             code == ONCE_ERR_INTERNAL || code == ONCE_ERR_STORAGE_FULL ||
             code == ONCE_ERR_CLOCK_SKEW);
}

int adapter_http_status(int code)
{
    switch (code < 0 ? -code : code) {
    case ONCE_ERR_MISSING_PURPOSE:
    case ONCE_ERR_INVALID_SUBJECT:
    case ONCE_ERR_INVALID_TEXT:
    case ONCE_ERR_INVALID_ARGUMENT:
        return 400;
    case ONCE_ERR_NOT_ISSUER:
    case ONCE_ERR_NO_GRANT:
    case ONCE_ERR_SUSPENDED:
        return 403;
    case ONCE_ERR_UNKNOWN_TYPE:
    case ONCE_ERR_NOT_FOUND:
        return 404;
    case ONCE_ERR_REPLAY:
    case ONCE_ERR_STALE_VERSION:
    case ONCE_ERR_EXISTS:
        return 409;
    case ONCE_ERR_TOO_LARGE:
        return 413;
    case ONCE_ERR_INVALID_RECORD:
        return 422;
    case ONCE_ERR_QUOTA_EXCEEDED:
        return 429;
    case ONCE_ERR_NO_MEMORY:
    case ONCE_ERR_CRYPTO:
    case ONCE_ERR_BAD_KEY_FILE:
        return 500;
    case ONCE_ERR_MALFORMED:
    case ONCE_ERR_BAD_SIGNATURE:
    case ONCE_ERR_SENDER_MISMATCH:
    case ONCE_ERR_UNSUPPORTED:
        return 502;
    case ONCE_ERR_UNKNOWN_SENDER:
    case ONCE_ERR_CLOCK_SKEW:
    case ONCE_ERR_INTERNAL:
    case ONCE_ERR_UNAVAILABLE:
    case ONCE_ERR_IO:
    case ONCE_ERR_CONNECT:
    case ONCE_ERR_TOO_MANY_IN_FLIGHT:
        return 503;
    case ONCE_ERR_TIMEOUT:
        return 504;
    case ONCE_ERR_STORAGE_FULL:
        return 507;
    default:
        return 500;
    }
}

