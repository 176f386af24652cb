/*
 * wire_check.h - the broker's decoding of what a department sends, before
 * any policy: the envelope of a frame and the body of its kind. Pure
 * functions of the bytes, so a fuzz target calls them without a broker.
 * See wire_check.c.
 */
#ifndef ONCE_WIRE_CHECK_H
#define ONCE_WIRE_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "once/once.h"
#include "once.pb-c.h"

/* Each function returns 0, or the -code of the first check that fails with
 * a message in err. *out is the decoded message (from alloc; NULL: the
 * system allocator) whenever the bytes could be decoded safely, even on a
 * refusal, so the caller can answer the envelope's seq or honour a body's
 * want_proof; NULL otherwise. */

/* PROTOCOL.md 3.1 steps 2 to 7: at most ONCE_MAX_MESSAGE bytes
 * (TOO_LARGE); an Envelope with only its own fields, each once
 * (MALFORMED); a sender of clean text (INVALID_TEXT); version 1
 * and a kind a department sends (UNSUPPORTED); session, seq not 0 and
 * reply_to 0 (MALFORMED); a sender of at most ONCE_MAX_NAME bytes
 * (TOO_LARGE). A frame over the size is still decoded, when it can be
 * safely, for its seq. */
int wire_check_envelope(const uint8_t *bytes, size_t len,
                        ProtobufCAllocator *alloc, Once__Envelope **out,
                        once_error *err);

/* A Request body (PROTOCOL.md 4.3): only its fields (MALFORMED), clean
 * text (INVALID_TEXT), a purpose and a case id (MISSING_PURPOSE), each
 * string within its limit (TOO_LARGE). */
int wire_check_request(const uint8_t *body, size_t len,
                       ProtobufCAllocator *alloc, Once__Request **out,
                       once_error *err);

/* A Publish body (4.1): only its fields (MALFORMED), at most
 * ONCE_MAX_FIELDS disclosures, counted before decoding (TOO_LARGE), clean
 * disclosure names (INVALID_TEXT), a record (MALFORMED). */
int wire_check_publish(const uint8_t *body, size_t len,
                       ProtobufCAllocator *alloc, Once__Publish **out,
                       once_error *err);

/* A Revoke body (4.2): only its fields (MALFORMED), a record
 * (MALFORMED). */
int wire_check_revoke(const uint8_t *body, size_t len,
                      ProtobufCAllocator *alloc, Once__Revoke **out,
                      once_error *err);

/* A Subscribe body, of KIND_SUBSCRIBE and KIND_UNSUBSCRIBE (4.9): only
 * its fields (MALFORMED), clean text (INVALID_TEXT), type and subject
 * within their limits (TOO_LARGE), a known scope with the names it takes
 * and no other (MALFORMED). */
int wire_check_subscribe(const uint8_t *body, size_t len,
                         ProtobufCAllocator *alloc, Once__Subscribe **out,
                         once_error *err);

/* A NoticeAck and a NoticesPull body (4.9): only their fields
 * (MALFORMED); every value of their numbers is allowed here. */
int wire_check_notice_ack(const uint8_t *body, size_t len,
                          ProtobufCAllocator *alloc, Once__NoticeAck **out,
                          once_error *err);
int wire_check_notices_pull(const uint8_t *body, size_t len,
                            ProtobufCAllocator *alloc,
                            Once__NoticesPull **out, once_error *err);

#endif
