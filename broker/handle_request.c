/*
 * handle_request.c - a department's request for a record: after worker.c's
 * checks of the envelope, the request's body (wire_check.c), the grant
 * that lets the requester see the type's fields (policy.c), the record
 * (registry.c) and the disclosures the grant allows, answered through the
 * writer once the request's leaf is durable (answer.c). A request is
 * logged whether it is granted or refused.
 */



#include <stdio.h>

#include "digest.h"
#include "registry.h"
#include "worker.h"
#include "wire_check.h"


/* A stored record and the status in its signed header. */
typedef struct served_record {
    Once__StoredRecord *stored;
    Once__RecordStatus status;
    uint64_t version;
} served_record;

static int load_record(job *j, const char *type, const char *subject,
                       uint64_t version, served_record *out)
{
    worker *w = j->w;
    Once__RecordHeader *h;
    once_error err;
    MDB_val val;
    int rc;

    rc = registry_get_record(w->txn, w->srv->db, type, subject, version, &val,
                             &out->version, &err);
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return rc;
    }
    out->stored = once__stored_record__unpack(&w->alloc, val.mv_size,
                                              val.mv_data);
    if (out->stored == NULL || out->stored->record == NULL) {
        refuse(j, ONCE_ERR_INTERNAL, "version %llu of this %s record is "
               "stored corrupt", (unsigned long long)out->version, type);
        return -ONCE_ERR_INTERNAL;
    }
    h = once__record_header__unpack(&w->alloc,
                                     out->stored->record->header.len,
                                     out->stored->record->header.data);
    if (h == NULL) {
        refuse(j, ONCE_ERR_INTERNAL, "the stored header of version %llu of "
               "this %s record does not decode",
               (unsigned long long)out->version, type);
        return -ONCE_ERR_INTERNAL;
    }
    out->status = h->status;
    return 0;
}

void handle_request(job *j)
{
    worker *w = j->w;
    Once__Envelope *e = j->env;
    Once__Disclosure *granted[ONCE_MAX_FIELDS];
    Once__Response response = ONCE__RESPONSE__INIT;
    Once__Request *q;
    served_record rec;
    record_type type;
    grant g;
    once_error err;
    size_t i, len;
    int rc;

    rc = wire_check_request(e->body.data, e->body.len, &w->alloc, &q, &err);
    if (q != NULL)
        j->want_proof = q->want_proof;
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return;
    }
    snprintf(j->leaf.record_type, sizeof(j->leaf.record_type), "%s",
             q->type);
    snprintf(j->leaf.purpose, sizeof(j->leaf.purpose), "%s", q->purpose);
    snprintf(j->leaf.case_id, sizeof(j->leaf.case_id), "%s", q->case_id);
    snprintf(j->leaf.user, sizeof(j->leaf.user), "%s", q->user);
    audit_subject_hash(w->srv->audit_key, q->type, q->subject,
                       j->leaf.subject_hash);
    j->leaf.has_subject_hash = true;
    rc = policy_type_get(w->txn, w->srv->db, q->type, &type, &err);
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return;
    }
    diag_subject_tag(j->tag, q->type, q->subject);
    rc = once_subject_validate(type.subject_kind, q->subject, &err);
    if (rc < 0) {
        refuse(j, ONCE_ERR_INVALID_SUBJECT, "%s", err.message);
        return;
    }
    rc = policy_grant_get(w->txn, w->srv->db, e->sender, q->type, q->purpose,
                          &g, &err);
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return;
    }
    /* The latest version decides: once revoked, a record is answered with
     * its revocation, whichever version is asked for. */
    if (load_record(j, q->type, q->subject, 0, &rec) < 0)
        return;
    if (rec.status != ONCE__RECORD_STATUS__STATUS_REVOKED &&
        q->version != 0 && q->version != rec.version &&
        load_record(j, q->type, q->subject, q->version, &rec) < 0)
        return;

    j->leaf.record_version = rec.version;
    digest_sha256(j->leaf.record_digest, rec.stored->record->header.data,
                  rec.stored->record->header.len);
    j->leaf.has_record_digest = true;
    response.type = q->type;
    response.subject = q->subject;
    response.version = rec.version;
    response.status = rec.status;
    response.record = rec.stored->record;
    response.disclosures = granted;
    if (rec.status == ONCE__RECORD_STATUS__STATUS_VALID) {
        for (i = 0; i < rec.stored->n_disclosures && i < ONCE_MAX_FIELDS;
             i++) {
            Once__Disclosure *d = rec.stored->disclosures[i];

            if (policy_grant_allows_field(&g, d->name))
                granted[response.n_disclosures++] = d;
        }
    }
    len = once__response__get_packed_size(&response);
    if (byte_buffer_reserve(&w->answer, len) < 0) {
        refuse(j, ONCE_ERR_INTERNAL, "out of memory for the answer");
        return;
    }
    w->answer.len = once__response__pack(&response, w->answer.data);
    diag_debug("worker", "served %s v%llu%s to %s for %s: %zu of %zu fields",
              q->type, (unsigned long long)rec.version,
              rec.status == ONCE__RECORD_STATUS__STATUS_REVOKED ? " (revoked)"
                                                                : "",
              e->sender, q->purpose, response.n_disclosures,
              rec.stored->n_disclosures);
    if (!answer_logged(j, ONCE__KIND__KIND_RESPONSE, 0, w->answer.data,
                       w->answer.len))
        refuse(j, ONCE_ERR_INTERNAL, "the broker cannot log the answer now");
}
