/*
 * wire_check.c - the broker's decoding of what a department sends, before
 * any policy: the envelope of a frame and the body of its kind.
 *
 * Every byte here is hostile and nothing is known yet about who sent it,
 * so this module only looks at the bytes: no database, no keys, no clock.
 * That keeps it a pure function a fuzz target can drive
 * (tests/fuzz/fuzz_wire_check.c) and leaves server.c the decisions that
 * need the broker's state.
 *
 * Each message is first walked with its description from once.proto
 * (wire_check in lib/wire_schema.c), which allocates nothing: fields
 * once.proto does not define are refused (they would be unsigned bytes in
 * the evidence digest, or bytes a strict reader sees and protobuf-c
 * hides), a singular field may appear once, a repeated one is counted
 * before protobuf-c allocates a structure for each, and every string must
 * be clean text (text_check.c). Only then does protobuf-c decode, into the
 * worker's arena, an amount bounded by the description. A message that
 * passes the structure but has a string that is not clean text is still
 * decoded, so the answer can name the envelope's seq and a body's
 * want_proof is honoured on the refusal.
 *
 * The order of the checks is PROTOCOL.md's (sections 3.1 and 4): the
 * first that fails is the answer.
 */
#include "wire_check.h"

#include <string.h>

#include "envelope.h"
#include "wire_schema.h"

/* Walks bytes as m and, when the structure is sound (it passes, or only
 * a string is not clean text), decodes them with protobuf-c's descriptor
 * d into alloc. Returns the walk's code, or MALFORMED with refusal as
 * the message when protobuf-c still cannot decode them; *out is the
 * decoded message, or NULL when there is none. */
static int walk_and_decode(const uint8_t *bytes, size_t len,
                           const wire_message *m,
                           const ProtobufCMessageDescriptor *d,
                           ProtobufCAllocator *alloc, const char *refusal,
                           ProtobufCMessage **out, once_error *err)
{
    int rc = wire_check(bytes, len, m, err);

    *out = NULL;
    if ((rc == 0 || rc == -ONCE_ERR_INVALID_TEXT) &&
        (*out = protobuf_c_message_unpack(d, alloc, len, bytes)) == NULL)
        rc = once_error_set(err, ONCE_ERR_MALFORMED, "%s", refusal);
    return rc;
}

int wire_check_envelope(const uint8_t *bytes, size_t len,
                        ProtobufCAllocator *alloc, Once__Envelope **out,
                        once_error *err)
{
    ProtobufCMessage *decoded;
    Once__Envelope *e;
    int rc;

    /* Walked and decoded even when too large, for the seq to answer; the
     * walk keeps the decoding bounded whatever the size. */
    rc = walk_and_decode(bytes, len, &wire_envelope,
                         &once__envelope__descriptor, alloc,
                         "not a decodable envelope", &decoded, err);
    *out = e = (Once__Envelope *)decoded;
    if (len > ONCE_MAX_MESSAGE)
        return once_error_set(err, ONCE_ERR_TOO_LARGE, "the envelope is %zu "
                              "bytes; the limit is %d", len,
                              ONCE_MAX_MESSAGE);
    if (rc < 0)
        return rc;
    if (e->version != ENVELOPE_VERSION)
        return once_error_set(err, ONCE_ERR_UNSUPPORTED, "protocol version "
                              "%u is not supported; this broker speaks "
                              "version %u", e->version, ENVELOPE_VERSION);
    if (e->kind != ONCE__KIND__KIND_PUBLISH &&
        e->kind != ONCE__KIND__KIND_REVOKE &&
        e->kind != ONCE__KIND__KIND_REQUEST &&
        e->kind != ONCE__KIND__KIND_PING &&
        e->kind != ONCE__KIND__KIND_DIRECTORY_REQUEST &&
        e->kind != ONCE__KIND__KIND_SUBSCRIBE &&
        e->kind != ONCE__KIND__KIND_UNSUBSCRIBE &&
        e->kind != ONCE__KIND__KIND_SUBSCRIPTIONS_LIST &&
        e->kind != ONCE__KIND__KIND_NOTICE_ACK &&
        e->kind != ONCE__KIND__KIND_NOTICES_PULL)
        return once_error_set(err, ONCE_ERR_UNSUPPORTED, "a department may "
                              "not send kind %d", (int)e->kind);
    if (e->session == 0)
        return once_error_set(err, ONCE_ERR_MALFORMED, "the session must not "
                              "be 0");
    if (e->seq == 0)
        return once_error_set(err, ONCE_ERR_MALFORMED, "seq starts at 1");
    if (e->reply_to != 0)
        return once_error_set(err, ONCE_ERR_MALFORMED, "a department's "
                              "envelope has reply_to 0");
    if (strlen(e->sender) > ONCE_MAX_NAME)
        return once_error_set(err, ONCE_ERR_TOO_LARGE, "the sender is over "
                              "%d bytes", ONCE_MAX_NAME);
    return 0;
}

int wire_check_request(const uint8_t *body, size_t len,
                       ProtobufCAllocator *alloc, Once__Request **out,
                       once_error *err)
{
    ProtobufCMessage *decoded;
    Once__Request *q;
    int rc;

    rc = walk_and_decode(body, len, &wire_request,
                         &once__request__descriptor, alloc,
                         "the request body does not decode", &decoded, err);
    *out = q = (Once__Request *)decoded;
    if (rc < 0)
        return rc;
    if (q->purpose[0] == '\0' || q->case_id[0] == '\0')
        return once_error_set(err, ONCE_ERR_MISSING_PURPOSE, "a request "
                              "needs a purpose and a case id");
    if (strlen(q->purpose) > ONCE_MAX_PURPOSE ||
        strlen(q->case_id) > ONCE_MAX_CASE_ID ||
        strlen(q->type) > ONCE_MAX_NAME ||
        strlen(q->subject) > ONCE_MAX_SUBJECT)
        return once_error_set(err, ONCE_ERR_TOO_LARGE, "purpose, case id, "
                              "type or subject is over its limit (%d, %d, "
                              "%d, %d bytes)", ONCE_MAX_PURPOSE,
                              ONCE_MAX_CASE_ID, ONCE_MAX_NAME,
                              ONCE_MAX_SUBJECT);
    if (strlen(q->user) > ONCE_MAX_USER)
        return once_error_set(err, ONCE_ERR_TOO_LARGE, "the acting user is "
                              "over %d bytes", ONCE_MAX_USER);
    return 0;
}

int wire_check_publish(const uint8_t *body, size_t len,
                       ProtobufCAllocator *alloc, Once__Publish **out,
                       once_error *err)
{
    ProtobufCMessage *decoded;
    Once__Publish *p;
    int rc;

    rc = walk_and_decode(body, len, &wire_publish,
                         &once__publish__descriptor, alloc,
                         "the publish body does not decode", &decoded, err);
    *out = p = (Once__Publish *)decoded;
    if (rc < 0)
        return rc;
    if (p->record == NULL)
        return once_error_set(err, ONCE_ERR_MALFORMED, "the publish carries "
                              "no record");
    return 0;
}

int wire_check_revoke(const uint8_t *body, size_t len,
                      ProtobufCAllocator *alloc, Once__Revoke **out,
                      once_error *err)
{
    ProtobufCMessage *decoded;
    Once__Revoke *r;
    int rc;

    rc = walk_and_decode(body, len, &wire_revoke,
                         &once__revoke__descriptor, alloc,
                         "the revoke body does not decode", &decoded, err);
    *out = r = (Once__Revoke *)decoded;
    if (rc < 0)
        return rc;
    if (r->record == NULL)
        return once_error_set(err, ONCE_ERR_MALFORMED, "the revoke carries "
                              "no record");
    return 0;
}

int wire_check_subscribe(const uint8_t *body, size_t len,
                         ProtobufCAllocator *alloc, Once__Subscribe **out,
                         once_error *err)
{
    ProtobufCMessage *decoded;
    Once__Subscribe *s;
    int rc;

    rc = walk_and_decode(body, len, &wire_subscribe,
                         &once__subscribe__descriptor, alloc,
                         "the subscription does not decode", &decoded, err);
    *out = s = (Once__Subscribe *)decoded;
    if (rc < 0)
        return rc;
    if (strlen(s->type) > ONCE_MAX_NAME ||
        strlen(s->subject) > ONCE_MAX_SUBJECT)
        return once_error_set(err, ONCE_ERR_TOO_LARGE, "type or subject is "
                              "over its limit (%d, %d bytes)", ONCE_MAX_NAME,
                              ONCE_MAX_SUBJECT);
    switch (s->scope) {
    case ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE:
        if (s->type[0] == '\0' || s->subject[0] != '\0')
            return once_error_set(err, ONCE_ERR_MALFORMED, "a subscription "
                                  "to a type names the type and no subject");
        return 0;
    case ONCE__SUBSCRIPTION_SCOPE__SCOPE_SUBJECT:
        if (s->type[0] == '\0' || s->subject[0] == '\0')
            return once_error_set(err, ONCE_ERR_MALFORMED, "a subscription "
                                  "to a subject names its type and subject");
        return 0;
    case ONCE__SUBSCRIPTION_SCOPE__SCOPE_HELD:
        if (s->subject[0] != '\0')
            return once_error_set(err, ONCE_ERR_MALFORMED, "a subscription "
                                  "to the records held names no subject");
        return 0;
    default:
        return once_error_set(err, ONCE_ERR_MALFORMED, "unknown subscription "
                              "scope %d", (int)s->scope);
    }
}

int wire_check_notice_ack(const uint8_t *body, size_t len,
                          ProtobufCAllocator *alloc, Once__NoticeAck **out,
                          once_error *err)
{
    ProtobufCMessage *decoded;
    int rc;

    rc = walk_and_decode(body, len, &wire_notice_ack,
                         &once__notice_ack__descriptor, alloc,
                         "the acknowledgement does not decode", &decoded,
                         err);
    *out = (Once__NoticeAck *)decoded;
    return rc;
}

int wire_check_notices_pull(const uint8_t *body, size_t len,
                            ProtobufCAllocator *alloc,
                            Once__NoticesPull **out, once_error *err)
{
    ProtobufCMessage *decoded;
    int rc;

    rc = walk_and_decode(body, len, &wire_notices_pull,
                         &once__notices_pull__descriptor, alloc,
                         "the pull does not decode", &decoded, err);
    *out = (Once__NoticesPull *)decoded;
    return rc;
}
