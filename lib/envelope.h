/*
 * envelope.h - signing, verifying and framing once envelopes.
 *
 * Internal to libonce and the broker (not installed). See envelope.c.
 */
#ifndef ONCE_ENVELOPE_H
#define ONCE_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "once/once.h"
#include "once.pb-c.h"

#define ENVELOPE_VERSION 1u
/* Domain separation prefix of the envelope signing input, NUL included. */
#define ENVELOPE_DOMAIN "ONCE-ENVELOPE-V1"
#define ENVELOPE_DOMAIN_BYTES 17
/* Domain separation prefix of a record header signature, NUL included. */
#define RECORD_DOMAIN "ONCE-RECORD-V1"
#define RECORD_DOMAIN_BYTES 15

/* Builds the exact byte string an envelope signature covers. *out is
 * malloc'd and owned by the caller. */
int envelope_signing_input(const Once__Envelope *e, uint8_t **out,
                           size_t *out_len);

/* Signs e in place: e->signature points into sig_storage, which must outlive
 * e's use. */
int envelope_sign(Once__Envelope *e, const once_keypair *kp,
                  uint8_t sig_storage[ONCE_SIGNATURE_BYTES]);

/* 0 when the signature is 64 bytes and verifies under pk, else
 * -ONCE_ERR_BAD_SIGNATURE. */
int envelope_verify(const Once__Envelope *e,
                    const uint8_t pk[ONCE_PUBLIC_KEY_BYTES]);

/* Serializes e into a malloc'd buffer owned by the caller. */
int envelope_pack(const Once__Envelope *e, uint8_t **out, size_t *out_len);

/* Unpacks with protobuf-c; NULL on malformed input or over
 * ONCE_MAX_MESSAGE. Free with once__envelope__free_unpacked(e, NULL). */
Once__Envelope *envelope_unpack(const uint8_t *buf, size_t len);

/* The seq of a serialized envelope without decoding it: a walk over its
 * top-level fields that allocates nothing and skips the body in one step,
 * for the I/O thread, which answers some refusals before any worker sees
 * the envelope. 0 with *seq (0 when the field is absent), or -1 when the
 * bytes are not a well-formed sequence of protobuf fields. Where
 * envelope_unpack decodes the bytes, both read the same seq. */
int envelope_peek_seq(const uint8_t *buf, size_t len, uint64_t *seq);

/* The name of a message kind as log lines, the console and once-audit's
 * reports spell it: publish, revoke, request, ping; unknown for any other
 * value (each caller says what an unknown kind reads as). */
const char *envelope_kind_name(int kind, const char *unknown);

/* Wall clock, Unix milliseconds. */
uint64_t once_now_ms(void);

#endif
