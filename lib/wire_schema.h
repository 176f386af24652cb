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
} wire_message;

#define WIRE_MAX_FIELDS 16

/* The messages a department sends (docs/PROTOCOL.md 2 and 4). */
extern const wire_message wire_envelope;
extern const wire_message wire_request;
extern const wire_message wire_publish;
extern const wire_message wire_revoke;
extern const wire_message wire_record_header;
extern const wire_message wire_directory_request;

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

#endif
