/*
 * handle_write.c - a department's publish or revocation: after worker.c's
 * checks of the envelope, the body (wire_check.c), the record's signature
 * by the publisher, its disclosures against the header's digests, and the
 * registry's rules, then the record is handed to the writer (writer.c),
 * which stores it with its leaf in one commit and answers once both are
 * durable. The keyed subject hash is computed here, in parallel, not in
 * the writer.
 */

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "digest.h"
#include "record_internal.h"
#include "registry.h"
#include "worker.h"
#include "wire_check.h"


static int verify_record_signature(worker *w, const Once__SignedRecord *rec,
                                   const uint8_t pk[ONCE_PUBLIC_KEY_BYTES])
{
    size_t len = RECORD_DOMAIN_BYTES + rec->header.len;

    if (rec->signature.len != ONCE_SIGNATURE_BYTES)
        return -ONCE_ERR_BAD_SIGNATURE;
    if (byte_buffer_reserve(&w->scratch, len) < 0)
        return -ONCE_ERR_NO_MEMORY;
    memcpy(w->scratch.data, RECORD_DOMAIN, RECORD_DOMAIN_BYTES);
    memcpy(w->scratch.data + RECORD_DOMAIN_BYTES, rec->header.data,
           rec->header.len);
    if (crypto_sign_verify_detached(rec->signature.data, w->scratch.data, len,
                                    pk) != 0)
        return -ONCE_ERR_BAD_SIGNATURE;
    return 0;
}

/* Every header field has exactly one disclosure, which matches its
 * digest. */
static int check_disclosures(job *j, const Once__RecordHeader *h,
                             Once__Disclosure *const *disclosures, size_t n)
{
    bool seen[ONCE_MAX_FIELDS] = { false };
    uint8_t digest[ONCE_DIGEST_BYTES];
    size_t i, k;

    if (n != h->n_fields) {
        refuse(j, ONCE_ERR_INVALID_RECORD, "the record has %zu fields but "
               "%zu disclosures; every field needs exactly one", h->n_fields,
               n);
        return -1;
    }
    for (i = 0; i < n; i++) {
        const Once__Disclosure *d = disclosures[i];

        if (d->value.len > ONCE_MAX_FIELD_VALUE) {
            refuse(j, ONCE_ERR_TOO_LARGE, "a field value is over %d bytes",
                   ONCE_MAX_FIELD_VALUE);
            return -1;
        }
        if (d->salt.len != ONCE_SALT_BYTES || !record_name_is_valid(d->name)) {
            refuse(j, ONCE_ERR_INVALID_RECORD, "disclosure %zu needs a "
                   "%d-byte salt and a valid field name", i + 1,
                   ONCE_SALT_BYTES);
            return -1;
        }
        for (k = 0; k < h->n_fields; k++)
            if (strcmp(h->fields[k]->name, d->name) == 0)
                break;
        if (k == h->n_fields || seen[k]) {
            refuse(j, ONCE_ERR_INVALID_RECORD, "disclosure %s is %s",
                   d->name, k == h->n_fields ? "not a field of the record"
                                             : "given twice");
            return -1;
        }
        if (record_disclosure_digest(d->salt.data, d->name, d->value.data,
                                     d->value.len, digest) < 0 ||
            sodium_memcmp(digest, h->fields[k]->digest.data,
                          ONCE_DIGEST_BYTES) != 0) {
            refuse(j, ONCE_ERR_INVALID_RECORD, "disclosure %s does not match "
                   "its digest in the signed header", d->name);
            return -1;
        }
        seen[k] = true;
    }
    return 0;
}

/* Encodes the record to store and the answer, and hands both to the
 * writer. */
static void hand_to_writer(job *j, const Once__RecordHeader *h,
                           Once__SignedRecord *rec,
                           Once__Disclosure **disclosures, size_t n)
{
    Once__StoredRecord stored = ONCE__STORED_RECORD__INIT;
    Once__Response response = ONCE__RESPONSE__INIT;
    write_job *wj;

    stored.record = rec;
    stored.disclosures = disclosures;
    stored.n_disclosures = n;
    stored.stored_at = once_now_ms();
    response.type = h->type;
    response.subject = h->subject;
    response.version = h->version;
    response.status = h->status;
    wj = write_job_new(once__stored_record__get_packed_size(&stored),
                       once__response__get_packed_size(&response), j->len);
    if (wj == NULL) {
        refuse(j, ONCE_ERR_INTERNAL, "out of memory for the publish");
        return;
    }
    once__stored_record__pack(&stored, wj->stored);
    once__response__pack(&response, wj->answer);
    snprintf(wj->subject, sizeof(wj->subject), "%s", h->subject);
    to_writer(j, wj, ONCE__KIND__KIND_RESPONSE, 0);
    if (!j->answered)
        refuse(j, ONCE_ERR_INTERNAL, "the broker cannot store now");
}

void handle_write(job *j)
{
    worker *w = j->w;
    Once__Envelope *e = j->env;
    bool publish = e->kind == ONCE__KIND__KIND_PUBLISH;
    Once__RecordStatus wanted = publish ? ONCE__RECORD_STATUS__STATUS_VALID
                                        : ONCE__RECORD_STATUS__STATUS_REVOKED;
    Once__Disclosure **disclosures = NULL;
    Once__SignedRecord *rec = NULL;
    Once__RecordHeader *h = NULL;
    record_type type;
    once_error err;
    uint64_t latest;
    size_t n = 0, i;
    int rc;

    if (publish) {
        Once__Publish *p;

        rc = wire_check_publish(e->body.data, e->body.len, &w->alloc, &p,
                                &err);
        if (p != NULL) {
            rec = p->record;
            disclosures = p->disclosures;
            n = p->n_disclosures;
            j->want_proof = p->want_proof;
        }
    } else {
        Once__Revoke *r;

        rc = wire_check_revoke(e->body.data, e->body.len, &w->alloc, &r,
                               &err);
        if (r != NULL) {
            rec = r->record;
            j->want_proof = r->want_proof;
        }
    }
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return;
    }
    rc = record_header_parse(rec->header.data, rec->header.len, &h, &err);
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return;
    }
    diag_subject_tag(j->tag, h->type, h->subject);
    snprintf(j->leaf.record_type, sizeof(j->leaf.record_type), "%s",
             h->type);
    j->leaf.record_version = h->version;
    digest_sha256(j->leaf.record_digest, rec->header.data, rec->header.len);
    j->leaf.has_record_digest = true;
    audit_subject_hash(w->srv->audit_key, h->type, h->subject,
                       j->leaf.subject_hash);
    j->leaf.has_subject_hash = true;
    rc = policy_type_get(w->txn, w->srv->db, h->type, &type, &err);
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        goto out;
    }
    if (!policy_type_has_issuer(&type, e->sender)) {
        refuse(j, ONCE_ERR_NOT_ISSUER, "department %s is not an issuer of "
               "%s records", e->sender, h->type);
        goto out;
    }
    if (strcmp(h->issuer, e->sender) != 0) {
        refuse(j, ONCE_ERR_INVALID_RECORD, "the record names %s as its "
               "issuer, not the sender %s", h->issuer, e->sender);
        goto out;
    }
    if (h->status != wanted) {
        refuse(j, ONCE_ERR_INVALID_RECORD, publish
               ? "a publish carries a valid record; send a revocation as a "
                 "revoke"
               : "a revoke carries a record with the REVOKED status");
        goto out;
    }
    rc = once_subject_validate(type.subject_kind, h->subject, &err);
    if (rc < 0) {
        refuse(j, ONCE_ERR_INVALID_SUBJECT, "%s", err.message);
        goto out;
    }
    for (i = 0; i < h->n_fields; i++) {
        if (!policy_type_has_field(&type, h->fields[i]->name)) {
            refuse(j, ONCE_ERR_INVALID_RECORD, "%s is not a field of %s "
                   "records", h->fields[i]->name, h->type);
            goto out;
        }
    }
    rc = verify_record_signature(w, rec, j->dept.public_key);
    if (rc < 0) {
        refuse(j, rc, "the record's issuer signature does not verify with "
               "department %s's key", e->sender);
        goto out;
    }
    if (check_disclosures(j, h, disclosures, n) < 0)
        goto out;
    rc = registry_latest_version(w->txn, w->srv->db, h->type, h->subject,
                                 &latest, &err);
    if (rc == -ONCE_ERR_NOT_FOUND && !publish) {
        refuse(j, ONCE_ERR_NOT_FOUND, "no version of this %s record was "
               "published; there is nothing to revoke", h->type);
        goto out;
    }
    if (rc < 0 && rc != -ONCE_ERR_NOT_FOUND) {
        refuse(j, rc, "%s", err.message);
        goto out;
    }
    if (rc == 0 && h->version <= latest) {
        refuse(j, ONCE_ERR_STALE_VERSION, "version %llu of this %s record is "
               "not above the latest, %llu", (unsigned long long)h->version,
               h->type, (unsigned long long)latest);
        goto out;
    }
    hand_to_writer(j, h, rec, disclosures, n);
out:
    once__record_header__free_unpacked(h, NULL);
}
