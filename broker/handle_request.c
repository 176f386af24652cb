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

/* Packs the Response of q from rec with the disclosures whose bit is set
 * in disclosed into the worker's answer buffer. The one encoder of a
 * request's answer, for the original and its rebuilt retry alike, so both
 * are the same bytes. */
static int pack_response(job *j, const Once__Request *q,
                         const served_record *rec, uint64_t disclosed,
                         size_t *n_disclosed)
{
    worker *w = j->w;
    Once__Disclosure *granted[ONCE_MAX_FIELDS];
    Once__Response response = ONCE__RESPONSE__INIT;
    size_t i, len;

    response.type = q->type;
    response.subject = q->subject;
    response.version = rec->version;
    response.status = rec->status;
    response.record = rec->stored->record;
    response.disclosures = granted;
    for (i = 0; i < rec->stored->n_disclosures && i < ONCE_MAX_FIELDS; i++)
        if (disclosed & (UINT64_C(1) << i))
            granted[response.n_disclosures++] = rec->stored->disclosures[i];
    *n_disclosed = response.n_disclosures;
    len = once__response__get_packed_size(&response);
    if (byte_buffer_reserve(&w->answer, len) < 0) {
        refuse(j, ONCE_ERR_INTERNAL, "out of memory for the answer");
        return -1;
    }
    w->answer.len = once__response__pack(&response, w->answer.data);
    return 0;
}

void handle_request(job *j)
{
    worker *w = j->w;
    Once__Envelope *e = j->env;
    Once__Request *q;
    served_record rec;
    record_type type;
    grant g;
    once_error err;
    uint64_t disclosed = 0;
    size_t i, n_disclosed;
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
    if (rec.status == ONCE__RECORD_STATUS__STATUS_VALID) {
        for (i = 0; i < rec.stored->n_disclosures && i < ONCE_MAX_FIELDS;
             i++)
            if (policy_grant_allows_field(&g, rec.stored->disclosures[i]->name))
                disclosed |= UINT64_C(1) << i;
    }
    if (pack_response(j, q, &rec, disclosed, &n_disclosed) < 0)
        return;
    j->rebuildable = true;
    j->disclosed = disclosed;
    diag_debug("worker", "served %s v%llu%s to %s for %s: %zu of %zu fields",
              q->type, (unsigned long long)rec.version,
              rec.status == ONCE__RECORD_STATUS__STATUS_REVOKED ? " (revoked)"
                                                                : "",
              e->sender, q->purpose, n_disclosed,
              rec.stored->n_disclosures);
    if (!answer_logged(j, ONCE__KIND__KIND_RESPONSE, 0, w->answer.data,
                       w->answer.len))
        refuse(j, ONCE_ERR_INTERNAL, "the broker cannot log the answer now");
}

/* The stored form (replies.c) holds the version, the disclosures and the
 * leaf index; the Request is the retry's own, the same bytes as the
 * original's (its digest matched). The receipt is appended as the writer
 * appends it (writer.c, make_reply): field 7, length, a Receipt of the
 * leaf index alone. */
void request_answer_rebuild(job *j, const Once__StoredReply *stored)
{
    worker *w = j->w;
    Once__Receipt receipt = ONCE__RECEIPT__INIT;
    Once__Request *q;
    served_record rec;
    once_error err;
    uint8_t *p;
    size_t n_disclosed, receipt_len;
    uint64_t v;

    if (j->env->kind != ONCE__KIND__KIND_REQUEST ||
        wire_check_request(j->env->body.data, j->env->body.len, &w->alloc,
                           &q, &err) < 0) {
        refuse(j, ONCE_ERR_INTERNAL, "the stored answer of this envelope is "
               "a request's, and the envelope is not a valid request");
        return;
    }
    if (load_record(j, q->type, q->subject, stored->record_version,
                    &rec) < 0 ||
        pack_response(j, q, &rec, stored->disclosed, &n_disclosed) < 0)
        return;
    receipt.leaf_index = stored->leaf_index;
    receipt_len = once__receipt__get_packed_size(&receipt);
    if (byte_buffer_reserve(&w->answer, w->answer.len + 1 + 10 +
                                            receipt_len) < 0) {
        refuse(j, ONCE_ERR_INTERNAL, "out of memory for the answer");
        return;
    }
    p = w->answer.data + w->answer.len;
    *p++ = (uint8_t)(7 << 3 | 2);
    for (v = receipt_len; v >= 0x80; v >>= 7)
        *p++ = (uint8_t)(v | 0x80);
    *p++ = (uint8_t)v;
    p += once__receipt__pack(&receipt, p);
    w->answer.len = (size_t)(p - w->answer.data);
    answer(j, ONCE__KIND__KIND_RESPONSE, w->answer.data, w->answer.len);
}
