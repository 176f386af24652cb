/*
 * wire_schema.c - checks protobuf bytes from outside against the shape
 * once.proto gives them, before protobuf-c decodes them.
 *
 * protobuf-c accepts more than once.proto says, and what it accepts costs
 * or misleads:
 *
 *   - every occurrence of a repeated field is an allocation, made before
 *     anyone can count them: a 1 MiB Publish of two-byte empty
 *     disclosures decodes into half a million structures before the
 *     broker could refuse more than 64;
 *   - fields once.proto does not define are kept (unknown_fields), so an
 *     envelope padded with them is accepted, and bytes no signature covers
 *     would enter the evidence digest the log keeps;
 *   - a singular field sent twice is taken from its last copy (a message
 *     from both, merged), which another implementation may read otherwise;
 *   - a string is not checked at all: a NUL byte cuts it short in C, and
 *     bytes that are not UTF-8 make a log leaf that strict proto3 parsers
 *     refuse; control characters forge rows wherever it is printed.
 *
 * So the broker (and libonce, for a record header it receives) first walks
 * the bytes with a small description of the message, the one hand-written
 * walker of protobuf wire format in the code base: no allocation, each
 * field checked against its number, wire type and count, strings against
 * the text rule (text_check.c), nested messages in turn. Only bytes that
 * pass are handed to protobuf-c, which then allocates a bounded amount.
 * The nesting is that of the descriptions (at most two levels), so the
 * recursion is bounded whatever the bytes say.
 *
 * The descriptions are written by hand, because they say more than
 * once.proto does (how many of a repeated field, which bytes are text),
 * but their field numbers, names, types and labels are once.proto's:
 * wire_schema_check holds each table against the descriptor protoc-c
 * generated from once.proto, and onced runs it at start-up (and the unit
 * tests in every build), so an edit of once.proto that the tables do not
 * follow stops the broker instead of silently refusing, or letting
 * through, what the new schema says.
 */
#include "wire_schema.h"

#include <stdbool.h>
#include <string.h>

#include "once.pb-c.h"
#include "text_check.h"

/* A table and its length, for a wire_message. */
#define WIRE_FIELDS(fields) fields, sizeof(fields) / sizeof((fields)[0])

static const wire_field envelope_fields[] = {
    {1, "version", WIRE_VARINT, 1, NULL},
    {2, "sender", WIRE_TEXT, 1, NULL},
    {3, "session", WIRE_VARINT, 1, NULL},
    {4, "seq", WIRE_VARINT, 1, NULL},
    {5, "sent_at", WIRE_VARINT, 1, NULL},
    {6, "kind", WIRE_VARINT, 1, NULL},
    {7, "reply_to", WIRE_VARINT, 1, NULL},
    {8, "body", WIRE_BYTES, 1, NULL},
    {9, "signature", WIRE_BYTES, 1, NULL},
};
const wire_message wire_envelope = {
    "Envelope", WIRE_FIELDS(envelope_fields), &once__envelope__descriptor};

static const wire_field request_fields[] = {
    {1, "type", WIRE_TEXT, 1, NULL},
    {2, "subject", WIRE_TEXT, 1, NULL},
    {3, "purpose", WIRE_TEXT, 1, NULL},
    {4, "case_id", WIRE_TEXT, 1, NULL},
    {5, "version", WIRE_VARINT, 1, NULL},
    {6, "want_proof", WIRE_VARINT, 1, NULL},
    {7, "user", WIRE_TEXT, 1, NULL},
};
const wire_message wire_request = {
    "Request", WIRE_FIELDS(request_fields), &once__request__descriptor};

/* The header is bytes here: it is checked as a RecordHeader by
 * record_header_parse, which every reader of a record goes through. */
static const wire_field signed_record_fields[] = {
    {1, "header", WIRE_BYTES, 1, NULL},
    {2, "signature", WIRE_BYTES, 1, NULL},
};
static const wire_message wire_signed_record = {
    "SignedRecord", WIRE_FIELDS(signed_record_fields),
    &once__signed_record__descriptor};

static const wire_field disclosure_fields[] = {
    {1, "salt", WIRE_BYTES, 1, NULL},
    {2, "name", WIRE_TEXT, 1, NULL},
    {3, "value", WIRE_BYTES, 1, NULL},
};
static const wire_message wire_disclosure = {
    "Disclosure", WIRE_FIELDS(disclosure_fields),
    &once__disclosure__descriptor};

static const wire_field publish_fields[] = {
    {1, "record", WIRE_MESSAGE, 1, &wire_signed_record},
    {2, "disclosures", WIRE_MESSAGE, ONCE_MAX_FIELDS, &wire_disclosure},
    {3, "want_proof", WIRE_VARINT, 1, NULL},
};
const wire_message wire_publish = {
    "Publish", WIRE_FIELDS(publish_fields), &once__publish__descriptor};

static const wire_field revoke_fields[] = {
    {1, "record", WIRE_MESSAGE, 1, &wire_signed_record},
    {2, "want_proof", WIRE_VARINT, 1, NULL},
};
const wire_message wire_revoke = {
    "Revoke", WIRE_FIELDS(revoke_fields), &once__revoke__descriptor};

static const wire_field field_digest_fields[] = {
    {1, "name", WIRE_TEXT, 1, NULL},
    {2, "digest", WIRE_BYTES, 1, NULL},
};
static const wire_message wire_field_digest = {
    "FieldDigest", WIRE_FIELDS(field_digest_fields),
    &once__field_digest__descriptor};

static const wire_field record_header_fields[] = {
    {1, "type", WIRE_TEXT, 1, NULL},
    {2, "subject", WIRE_TEXT, 1, NULL},
    {3, "version", WIRE_VARINT, 1, NULL},
    {4, "issuer", WIRE_TEXT, 1, NULL},
    {5, "issued_at", WIRE_VARINT, 1, NULL},
    {6, "valid_from", WIRE_VARINT, 1, NULL},
    {7, "valid_until", WIRE_VARINT, 1, NULL},
    {8, "status", WIRE_VARINT, 1, NULL},
    {9, "fields", WIRE_MESSAGE, ONCE_MAX_FIELDS, &wire_field_digest},
    {10, "reason", WIRE_TEXT, 1, NULL},
};
const wire_message wire_record_header = {
    "RecordHeader", WIRE_FIELDS(record_header_fields),
    &once__record_header__descriptor};

static const wire_field directory_request_fields[] = {
    {1, "known_digest", WIRE_BYTES, 1, NULL},
};
const wire_message wire_directory_request = {
    "DirectoryRequest", WIRE_FIELDS(directory_request_fields),
    &once__directory_request__descriptor};

static const wire_field subscribe_fields[] = {
    {1, "scope", WIRE_VARINT, 1, NULL},
    {2, "type", WIRE_TEXT, 1, NULL},
    {3, "subject", WIRE_TEXT, 1, NULL},
};
const wire_message wire_subscribe = {
    "Subscribe", WIRE_FIELDS(subscribe_fields), &once__subscribe__descriptor};

static const wire_field notice_ack_fields[] = {
    {1, "acked", WIRE_VARINT, 1, NULL},
    {2, "credit", WIRE_VARINT, 1, NULL},
};
const wire_message wire_notice_ack = {
    "NoticeAck", WIRE_FIELDS(notice_ack_fields),
    &once__notice_ack__descriptor};

static const wire_field notices_pull_fields[] = {
    {1, "after", WIRE_VARINT, 1, NULL},
    {2, "limit", WIRE_VARINT, 1, NULL},
};
const wire_message wire_notices_pull = {
    "NoticesPull", WIRE_FIELDS(notices_pull_fields),
    &once__notices_pull__descriptor};

/* What the broker sends a subscriber (PROTOCOL.md 4.9), checked by
 * libonce before it decodes a push or an answer. */
static const wire_field notice_fields[] = {
    {1, "leaf_index", WIRE_VARINT, 1, NULL},
    {2, "type", WIRE_TEXT, 1, NULL},
    {3, "subject", WIRE_TEXT, 1, NULL},
    {4, "version", WIRE_VARINT, 1, NULL},
    {5, "event", WIRE_VARINT, 1, NULL},
};
static const wire_message wire_notice = {
    "Notice", WIRE_FIELDS(notice_fields), &once__notice__descriptor};

static const wire_field notice_batch_fields[] = {
    {1, "notices", WIRE_MESSAGE, WIRE_MAX_NOTICES, &wire_notice},
    {2, "scanned_to", WIRE_VARINT, 1, NULL},
    {3, "acked", WIRE_VARINT, 1, NULL},
};
const wire_message wire_notice_batch = {
    "NoticeBatch", WIRE_FIELDS(notice_batch_fields),
    &once__notice_batch__descriptor};

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t value = 0;
    unsigned shift;

    for (shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;

        value |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *v = value;
            return true;
        }
    }
    return false;
}

int wire_peek_varint(const uint8_t *p, size_t len, uint32_t number,
                     uint64_t *out)
{
    const uint8_t *end = p + len;
    uint64_t key, v;

    *out = 0;
    if (len == 0) /* p may be NULL */
        return 0;
    while (p < end) {
        if (!read_varint(&p, end, &key))
            return -1;
        switch (key & 7) {
        case 0:
            if (!read_varint(&p, end, &v))
                return -1;
            if (key >> 3 == number)
                *out = v;
            break;
        case 1:
            if (end - p < 8)
                return -1;
            p += 8;
            break;
        case 2:
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return -1;
            p += v;
            break;
        case 5:
            if (end - p < 4)
                return -1;
            p += 4;
            break;
        default:
            return -1;
        }
    }
    return 0;
}

/* The walk of one message. Returns 0 or the -code of a fault in the
 * structure; a string that is not clean text only sets *bad_text (and err,
 * for the first one), so that the whole structure is checked either way. */
static int walk(const uint8_t *p, size_t len, const wire_message *m,
                once_error *err, bool *bad_text)
{
    const uint8_t *end;
    unsigned counts[WIRE_MAX_FIELDS] = {0};
    uint64_t key, n;
    size_t i;
    int rc;

    if (len == 0) /* p may be NULL */
        return 0;
    end = p + len;
    while (p < end) {
        const wire_field *f = NULL;

        if (!read_varint(&p, end, &key))
            return once_error_set(err, ONCE_ERR_MALFORMED, "the %s is not "
                                  "protobuf wire format", m->name);
        for (i = 0; i < m->n_fields; i++)
            if (m->fields[i].number == key >> 3)
                f = &m->fields[i];
        if (f == NULL)
            return once_error_set(err, ONCE_ERR_MALFORMED, "the %s holds "
                                  "field %llu, which once.proto does not "
                                  "define for it", m->name,
                                  (unsigned long long)(key >> 3));
        if ((key & 7) != (f->kind == WIRE_VARINT ? 0u : 2u))
            return once_error_set(err, ONCE_ERR_MALFORMED, "the %s's %s has "
                                  "the wrong wire type", m->name, f->name);
        i = (size_t)(f - m->fields);
        if (++counts[i] > f->max_count)
            return f->max_count == 1
                       ? once_error_set(err, ONCE_ERR_MALFORMED, "the %s's "
                                        "%s appears more than once",
                                        m->name, f->name)
                       : once_error_set(err, ONCE_ERR_TOO_LARGE, "the %s "
                                        "holds more than %u %s", m->name,
                                        f->max_count, f->name);
        if (!read_varint(&p, end, &n) ||
            (f->kind != WIRE_VARINT && n > (uint64_t)(end - p)))
            return once_error_set(err, ONCE_ERR_MALFORMED, "the %s's %s is "
                                  "cut short", m->name, f->name);
        if (f->kind == WIRE_VARINT)
            continue;
        if (f->kind == WIRE_TEXT && !*bad_text &&
            !text_is_clean_utf8(p, (size_t)n)) {
            *bad_text = true;
            once_error_set(err, ONCE_ERR_INVALID_TEXT, "the %s's %s is not "
                           "clean text (UTF-8 without control characters)",
                           m->name, f->name);
        }
        if (f->kind == WIRE_MESSAGE &&
            (rc = walk(p, (size_t)n, f->message, err, bad_text)) < 0)
            return rc;
        p += n;
    }
    return 0;
}

int wire_check(const uint8_t *p, size_t len, const wire_message *m,
               once_error *err)
{
    bool bad_text = false;
    int rc = walk(p, len, m, err, &bad_text);

    if (rc < 0)
        return rc;
    return bad_text ? -ONCE_ERR_INVALID_TEXT : 0;
}

/* Whether a field's kind in the table fits its type in once.proto. Only
 * varints and length-delimited fields are walked: a fixed-width type, or
 * a repeated scalar (packed by proto3, so length-delimited), does not fit
 * until the walker learns it. */
static bool kind_fits(const wire_field *f, const ProtobufCFieldDescriptor *d)
{
    switch (d->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_BOOL:
    case PROTOBUF_C_TYPE_ENUM:
        return f->kind == WIRE_VARINT && d->label != PROTOBUF_C_LABEL_REPEATED;
    case PROTOBUF_C_TYPE_STRING:
        return f->kind == WIRE_TEXT;
    case PROTOBUF_C_TYPE_BYTES:
        return f->kind == WIRE_BYTES;
    case PROTOBUF_C_TYPE_MESSAGE:
        return f->kind == WIRE_MESSAGE && f->message != NULL &&
               f->message->descriptor == d->descriptor;
    default:
        return false;
    }
}

int wire_schema_check(const wire_message *m, once_error *err)
{
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    size_t i, k;
    int rc;

    if (desc == NULL || strcmp(m->name, desc->short_name) != 0)
        return once_error_set(err, ONCE_ERR_INTERNAL, "the wire table %s "
                              "is not once.proto's message of that name",
                              m->name);
    if (m->n_fields != desc->n_fields || m->n_fields > WIRE_MAX_FIELDS)
        return once_error_set(err, ONCE_ERR_INTERNAL, "the wire table %s "
                              "has %zu fields, once.proto's %s has %u",
                              m->name, m->n_fields, desc->short_name,
                              desc->n_fields);
    for (i = 0; i < m->n_fields; i++) {
        const wire_field *f = &m->fields[i];
        const ProtobufCFieldDescriptor *d =
            protobuf_c_message_descriptor_get_field(desc, f->number);

        for (k = 0; k < i; k++)
            if (m->fields[k].number == f->number)
                return once_error_set(err, ONCE_ERR_INTERNAL, "the wire "
                                      "table %s has field %u twice",
                                      m->name, f->number);
        if (d == NULL)
            return once_error_set(err, ONCE_ERR_INTERNAL, "the wire table "
                                  "%s has field %u (%s), which once.proto "
                                  "does not define", m->name, f->number,
                                  f->name);
        if (strcmp(f->name, d->name) != 0)
            return once_error_set(err, ONCE_ERR_INTERNAL, "field %u of %s "
                                  "is %s in once.proto, %s in the wire "
                                  "table", f->number, m->name, d->name,
                                  f->name);
        if (!kind_fits(f, d) ||
            (d->label == PROTOBUF_C_LABEL_REPEATED) != (f->max_count > 1) ||
            f->max_count == 0)
            return once_error_set(err, ONCE_ERR_INTERNAL, "the wire table's "
                                  "%s.%s does not fit once.proto's type or "
                                  "label", m->name, f->name);
        if (f->kind == WIRE_MESSAGE &&
            (rc = wire_schema_check(f->message, err)) < 0)
            return rc;
    }
    return 0;
}

int wire_schema_check_all(once_error *err)
{
    static const wire_message *const all[] = {
        &wire_envelope, &wire_request, &wire_publish, &wire_revoke,
        &wire_record_header, &wire_directory_request, &wire_subscribe,
        &wire_notice_ack, &wire_notices_pull, &wire_notice_batch,
    };
    size_t i;
    int rc;

    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if ((rc = wire_schema_check(all[i], err)) < 0)
            return rc;
    return 0;
}
