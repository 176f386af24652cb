/*
 * evidence.h - what the exchange log keeps as a leaf's evidence when it
 * does not keep the envelope: the omitted-evidence marker.
 *
 * Internal to libonce, the broker and once-audit. See evidence.c and
 * docs/AUDIT.md ("Evidence").
 */
#ifndef ONCE_EVIDENCE_H
#define ONCE_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A refusal keeps its envelope as evidence when the envelope is at most
 * this many bytes (every well-formed request and revocation is), else the
 * marker. Granted exchanges always keep their envelope. */
#define EVIDENCE_REFUSAL_MAX 1024

/* "ONCE-EVIDENCE-OMITTED-V1" and a 0x00 byte. */
#define EVIDENCE_OMITTED_PREFIX "ONCE-EVIDENCE-OMITTED-V1"
#define EVIDENCE_OMITTED_PREFIX_BYTES 25
/* prefix || u64be(envelope size) || SHA-256(envelope) */
#define EVIDENCE_OMITTED_BYTES (EVIDENCE_OMITTED_PREFIX_BYTES + 8 + 32)

/* Writes the marker of an envelope of `size` bytes whose SHA-256 is
 * digest. */
void evidence_omitted_encode(uint8_t out[EVIDENCE_OMITTED_BYTES],
                             uint64_t size, const uint8_t digest[32]);

/* True when p[0..len) is a marker: sets *size and digest. */
bool evidence_omitted_parse(const uint8_t *p, size_t len, uint64_t *size,
                            uint8_t digest[32]);

#endif
