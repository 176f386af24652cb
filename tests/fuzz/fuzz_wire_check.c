/*
 * fuzz_wire_check.c - the broker's own decoding of what a department
 * sends (broker/wire_check.c), the code every frame from the network
 * reaches before any key or policy is looked at.
 *
 * The input is tried as an envelope and, since a body is whatever bytes
 * the envelope carries, also as each body a department sends (Request,
 * Publish, Revoke, Subscribe, NoticeAck, NoticesPull), the way the worker
 * would go on: a Publish or Revoke that passes leads to
 * record_header_parse of its header. Properties
 * checked besides not crashing or leaking:
 *   - a message is decoded exactly when the check passed or failed only
 *     on text, and a decoded message holds no field once.proto does not
 *     define (protobuf-c would keep it in unknown_fields);
 *   - an envelope that passes has version 1, a department's kind, session
 *     and seq not 0, reply_to 0, and a sender of at most ONCE_MAX_NAME
 *     bytes; a Publish holds at most ONCE_MAX_FIELDS disclosures; a
 *     Request that passes has a purpose and a case id within their
 *     limits; a Subscribe that passes has a known scope with the names it
 *     takes (PROTOCOL.md 4.9).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "once.pb-c.h"
#include "record_internal.h"
#include "wire_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int property)
{
    if (!property)
        abort();
}

/* The decoded message exists exactly when the bytes were safe to decode,
 * and then holds only known fields. */
static void decoded_as_promised(int rc, const ProtobufCMessage *m)
{
    int safe = rc == 0 || rc == -ONCE_ERR_INVALID_TEXT;

    if (m == NULL) {
        require(!safe || rc == -ONCE_ERR_MALFORMED);
        return;
    }
    require(m->n_unknown_fields == 0);
}

static void header_of(const Once__SignedRecord *rec)
{
    Once__RecordHeader *h = NULL;

    if (record_header_parse(rec->header.data, rec->header.len, &h, NULL) ==
        0) {
        require(h != NULL && h->n_fields <= ONCE_MAX_FIELDS);
        require(h->base.n_unknown_fields == 0);
        once__record_header__free_unpacked(h, NULL);
    }
}

static void subscription_bodies(const uint8_t *data, size_t size)
{
    Once__Subscribe *s;
    Once__NoticeAck *a;
    Once__NoticesPull *p;
    int rc;

    rc = wire_check_subscribe(data, size, NULL, &s, NULL);
    decoded_as_promised(rc, s != NULL ? &s->base : NULL);
    if (rc == 0)
        require(strlen(s->type) <= ONCE_MAX_NAME &&
                strlen(s->subject) <= ONCE_MAX_SUBJECT &&
                ((s->scope == ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE &&
                  s->type[0] != '\0' && s->subject[0] == '\0') ||
                 (s->scope == ONCE__SUBSCRIPTION_SCOPE__SCOPE_SUBJECT &&
                  s->type[0] != '\0' && s->subject[0] != '\0') ||
                 (s->scope == ONCE__SUBSCRIPTION_SCOPE__SCOPE_HELD &&
                  s->subject[0] == '\0')));
    if (s != NULL)
        once__subscribe__free_unpacked(s, NULL);
    rc = wire_check_notice_ack(data, size, NULL, &a, NULL);
    decoded_as_promised(rc, a != NULL ? &a->base : NULL);
    if (a != NULL)
        once__notice_ack__free_unpacked(a, NULL);
    rc = wire_check_notices_pull(data, size, NULL, &p, NULL);
    decoded_as_promised(rc, p != NULL ? &p->base : NULL);
    if (p != NULL)
        once__notices_pull__free_unpacked(p, NULL);
}

static void bodies(const uint8_t *data, size_t size)
{
    Once__Request *q;
    Once__Publish *p;
    Once__Revoke *r;
    int rc;

    rc = wire_check_request(data, size, NULL, &q, NULL);
    decoded_as_promised(rc, q != NULL ? &q->base : NULL);
    if (rc == 0)
        require(q->purpose[0] != '\0' && q->case_id[0] != '\0' &&
                strlen(q->purpose) <= ONCE_MAX_PURPOSE &&
                strlen(q->case_id) <= ONCE_MAX_CASE_ID);
    if (q != NULL)
        once__request__free_unpacked(q, NULL);

    rc = wire_check_publish(data, size, NULL, &p, NULL);
    decoded_as_promised(rc, p != NULL ? &p->base : NULL);
    if (p != NULL) {
        require(p->n_disclosures <= ONCE_MAX_FIELDS);
        if (rc == 0)
            header_of(p->record);
        once__publish__free_unpacked(p, NULL);
    }

    rc = wire_check_revoke(data, size, NULL, &r, NULL);
    decoded_as_promised(rc, r != NULL ? &r->base : NULL);
    if (r != NULL) {
        if (rc == 0)
            header_of(r->record);
        once__revoke__free_unpacked(r, NULL);
    }
    subscription_bodies(data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t empty[1];
    Once__Envelope *e;
    int rc;

    if (size == 0)
        data = empty; /* never a NULL pointer into protobuf-c */
    rc = wire_check_envelope(data, size, NULL, &e, NULL);
    decoded_as_promised(rc, e != NULL ? &e->base : NULL);
    if (rc == 0) {
        require(e->version == ENVELOPE_VERSION && e->session != 0 &&
                e->seq != 0 && e->reply_to == 0 &&
                strlen(e->sender) <= ONCE_MAX_NAME);
        require(e->kind == ONCE__KIND__KIND_PUBLISH ||
                e->kind == ONCE__KIND__KIND_REVOKE ||
                e->kind == ONCE__KIND__KIND_REQUEST ||
                e->kind == ONCE__KIND__KIND_PING ||
                e->kind == ONCE__KIND__KIND_DIRECTORY_REQUEST ||
                e->kind == ONCE__KIND__KIND_SUBSCRIBE ||
                e->kind == ONCE__KIND__KIND_UNSUBSCRIBE ||
                e->kind == ONCE__KIND__KIND_SUBSCRIPTIONS_LIST ||
                e->kind == ONCE__KIND__KIND_NOTICE_ACK ||
                e->kind == ONCE__KIND__KIND_NOTICES_PULL);
        if (e->body.len > 0)
            bodies(e->body.data, e->body.len);
    }
    if (e != NULL)
        once__envelope__free_unpacked(e, NULL);
    bodies(data, size);
    return 0;
}
