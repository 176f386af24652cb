/*
 * envelope.c - the envelope signing input, signatures and framing.
 *
 * Every message between a department and the broker is one ZeroMQ frame
 * holding a serialized once.Envelope. A department signs each envelope with
 * its Ed25519 key; the broker keeps the signed bytes as evidence.
 *
 * Protobuf serialization is not canonical (field order, default values and
 * unknown fields may differ between implementations), so the signature never
 * covers a re-serialized message. It covers a byte string built here from
 * the decoded fields, with fixed-width big-endian integers and length
 * prefixed strings, and the body exactly as it was sent:
 *
 *     "ONCE-ENVELOPE-V1" 0x00            17 bytes, domain separation
 *     version                            u32
 *     len(sender) sender                 u32, bytes
 *     session                            u64
 *     seq                                u64
 *     sent_at                            u64
 *     kind                               u32
 *     reply_to                           u64
 *     len(body) body                     u32, bytes
 *
 * docs/PROTOCOL.md gives the same layout with a worked example that the
 * tests check byte for byte.
 */
#include "envelope.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "wire_schema.h"

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    p = put_u32(p, (uint32_t)(v >> 32));
    return put_u32(p, (uint32_t)v);
}

int envelope_signing_input(const Once__Envelope *e, uint8_t **out,
                           size_t *out_len)
{
    size_t sender_len = e->sender ? strlen(e->sender) : 0;
    size_t body_len = e->body.len;
    size_t len;
    uint8_t *buf, *p;

    if (sender_len > ONCE_MAX_NAME || body_len > ONCE_MAX_MESSAGE)
        return -ONCE_ERR_TOO_LARGE;
    len = ENVELOPE_DOMAIN_BYTES + 4 + 4 + sender_len + 8 + 8 + 8 + 4 + 8 +
          4 + body_len;
    buf = malloc(len);
    if (buf == NULL)
        return -ONCE_ERR_NO_MEMORY;
    memcpy(buf, ENVELOPE_DOMAIN, ENVELOPE_DOMAIN_BYTES);
    p = buf + ENVELOPE_DOMAIN_BYTES;
    p = put_u32(p, e->version);
    p = put_u32(p, (uint32_t)sender_len);
    if (sender_len > 0)
        memcpy(p, e->sender, sender_len);
    p += sender_len;
    p = put_u64(p, e->session);
    p = put_u64(p, e->seq);
    p = put_u64(p, e->sent_at);
    p = put_u32(p, (uint32_t)e->kind);
    p = put_u64(p, e->reply_to);
    p = put_u32(p, (uint32_t)body_len);
    if (body_len > 0)
        memcpy(p, e->body.data, body_len);
    *out = buf;
    *out_len = len;
    return 0;
}

int envelope_sign(Once__Envelope *e, const once_keypair *kp,
                  uint8_t sig_storage[ONCE_SIGNATURE_BYTES])
{
    uint8_t *input;
    size_t input_len;
    int rc = envelope_signing_input(e, &input, &input_len);

    if (rc < 0)
        return rc;
    crypto_sign_detached(sig_storage, NULL, input, input_len, kp->secret_key);
    free(input);
    e->signature.data = sig_storage;
    e->signature.len = ONCE_SIGNATURE_BYTES;
    return 0;
}

int envelope_verify(const Once__Envelope *e,
                    const uint8_t pk[ONCE_PUBLIC_KEY_BYTES])
{
    uint8_t *input;
    size_t input_len;
    int rc;

    if (e->signature.len != ONCE_SIGNATURE_BYTES)
        return -ONCE_ERR_BAD_SIGNATURE;
    rc = envelope_signing_input(e, &input, &input_len);
    if (rc < 0)
        return rc;
    rc = crypto_sign_verify_detached(e->signature.data, input, input_len, pk);
    free(input);
    return rc == 0 ? 0 : -ONCE_ERR_BAD_SIGNATURE;
}

int envelope_pack(const Once__Envelope *e, uint8_t **out, size_t *out_len)
{
    size_t len = once__envelope__get_packed_size(e);
    uint8_t *buf = malloc(len > 0 ? len : 1);

    if (buf == NULL)
        return -ONCE_ERR_NO_MEMORY;
    once__envelope__pack(e, buf);
    *out = buf;
    *out_len = len;
    return 0;
}

Once__Envelope *envelope_unpack(const uint8_t *buf, size_t len)
{
    if (len > ONCE_MAX_MESSAGE)
        return NULL;
    return once__envelope__unpack(NULL, len, buf);
}

int envelope_peek_seq(const uint8_t *buf, size_t len, uint64_t *seq)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name(
            &once__envelope__descriptor, "seq");

    return wire_peek_varint(buf, len, field->id, seq);
}

uint64_t once_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *envelope_kind_name(int kind, const char *unknown)
{
    switch (kind) {
    case ONCE__KIND__KIND_PUBLISH: return "publish";
    case ONCE__KIND__KIND_REVOKE: return "revoke";
    case ONCE__KIND__KIND_REQUEST: return "request";
    case ONCE__KIND__KIND_PING: return "ping";
    case ONCE__KIND__KIND_SUBSCRIBE: return "subscribe";
    case ONCE__KIND__KIND_UNSUBSCRIBE: return "unsubscribe";
    case ONCE__KIND__KIND_SUBSCRIPTIONS_LIST: return "subscriptions list";
    case ONCE__KIND__KIND_NOTICE_ACK: return "notice ack";
    case ONCE__KIND__KIND_NOTICES_PULL: return "notices pull";
    default: return unknown;
    }
}
