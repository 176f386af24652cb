/*
 * wire_schema.h - checks protobuf bytes from outside against the shape
 * once.proto gives them, before protobuf-c decodes them.
 *
 * Internal to libonce, the broker and the tools. See wire_schema.c.
 */
#ifndef ONCE_WIRE_SCHEMA_H
#define ONCE_WIRE_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "once/once.h"

typedef enum wire_kind {
    WIRE_VARINT,  /* integers, bools, enums: wire type 0 */
    WIRE_BYTES,   /* bytes: wire type 2, anything */
    WIRE_TEXT,    /* string: wire type 2, text_is_clean_utf8 */
    WIRE_MESSAGE  /* a nested message: wire type 2, checked in turn */
} wire_kind;

struct wire_message;
struct ProtobufCMessageDescriptor;

typedef struct wire_field {
    uint32_t number;
    const char *name;             /* as in once.proto, for messages */
    wire_kind kind;
    unsigned max_count;           /* 1: singular; else repeated, at most */
    const struct wire_message *message; /* of a WIRE_MESSAGE */
} wire_field;

typedef struct wire_message {
    const char *name;
    const wire_field *fields;
    size_t n_fields;              /* at most WIRE_MAX_FIELDS */
    /* What protoc-c generated from once.proto for this message: the
     * table above must describe exactly its fields (wire_schema_check). */
    const struct ProtobufCMessageDescriptor *descriptor;
} wire_message;

#define WIRE_MAX_FIELDS 16

/* The messages a department sends (docs/PROTOCOL.md 2 and 4). */
extern const wire_message wire_envelope;
extern const wire_message wire_request;
extern const wire_message wire_publish;
extern const wire_message wire_revoke;
extern const wire_message wire_record_header;
extern const wire_message wire_directory_request;
extern const wire_message wire_subscribe;
extern const wire_message wire_notice_ack;
extern const wire_message wire_notices_pull;
/* ... and one the broker sends a subscriber: at most WIRE_MAX_NOTICES
 * notices (the broker sends at most 64 a batch). */
#define WIRE_MAX_NOTICES 256
extern const wire_message wire_notice_batch;

/* Walks p[0..len) as the message m, without allocating. Returns 0 when
 * every field is one m defines, with its wire type, a singular field
 * appears at most once, a repeated one at most max_count times, every
 * WIRE_TEXT field is clean text and every nested message passes the same
 * checks. Otherwise sets err and returns -ONCE_ERR_MALFORMED (not protobuf
 * wire format, a field m does not define, a wrong wire type, a singular
 * field twice), -ONCE_ERR_TOO_LARGE (a repeated field over its count) or
 * -ONCE_ERR_INVALID_TEXT. The structure is checked to the end before a
 * string's text is held against it: after INVALID_TEXT (only) the bytes
 * are safe to decode, e.g. to answer the envelope's seq. */
int wire_check(const uint8_t *p, size_t len, const wire_message *m,
               once_error *err);

/* Reads the varint field number of any message without decoding it or
 * checking it against a table: skips every other field (all wire types),
 * the last occurrence counts. For a caller that must answer bytes it has
 * not decoded (envelope_peek_seq). 0 with *out (0 when the field is
 * absent), or -1 when p is not a well-formed sequence of protobuf
 * fields. */
int wire_peek_varint(const uint8_t *p, size_t len, uint32_t number,
                     uint64_t *out);

/* Checks m, and every message nested in it, against the descriptor
 * protoc-c generated from once.proto: the same name, the same fields by
 * number, each with once.proto's name, a kind that fits its type (integer
 * types and enums are WIRE_VARINT, string WIRE_TEXT, bytes WIRE_BYTES, a
 * message WIRE_MESSAGE of that message) and a count that fits its label
 * (repeated above 1, else 1). The tables are written by hand, so this is
 * what stops an edit of once.proto from silently changing what the walker
 * accepts. 0, or -ONCE_ERR_INTERNAL with the first difference in err. */
int wire_schema_check(const wire_message *m, once_error *err);

/* wire_schema_check of every message above: run by onced at start-up,
 * which refuses to run on a mismatch, and by the unit tests. */
int wire_schema_check_all(once_error *err);

#endif
