/*
 * evidence.c - the omitted-evidence marker of the exchange log.
 *
 * Every leaf of the log has evidence next to it: the department's signed
 * envelope, which lets an auditor check that the department really sent
 * what the leaf says. For granted exchanges that is the point of the log,
 * and their envelopes are bounded by the protocol. A refusal's envelope,
 * though, is whatever a department chose to send, up to 1 MiB: one
 * connection sending refused envelopes padded to the limit made the broker
 * keep 74 MB/s of them, append-only and forever, and filled its map in
 * seconds. A refusal grants nothing and the leaf's envelope_digest pins
 * the envelope either way, so for a refusal whose envelope is over
 * EVIDENCE_REFUSAL_MAX bytes the broker keeps this marker instead:
 *
 *     "ONCE-EVIDENCE-OMITTED-V1" 0x00 || u64be(size) || SHA-256(envelope)
 *
 * 65 bytes. No envelope can be mistaken for it: its first byte, 'O'
 * (0x4f), would be the key of field 9 with wire type 7, which protobuf
 * does not have, so a marker never decodes as an Envelope and an envelope
 * never parses as a marker. The department holds the envelope it sent
 * and can still produce it; the digest in the marker and in the leaf
 * must agree.
 */
#include "evidence.h"

#include <string.h>

void evidence_omitted_encode(uint8_t out[EVIDENCE_OMITTED_BYTES],
                             uint64_t size, const uint8_t digest[32])
{
    uint8_t *be = out + EVIDENCE_OMITTED_PREFIX_BYTES;
    int i;

    memcpy(out, EVIDENCE_OMITTED_PREFIX, EVIDENCE_OMITTED_PREFIX_BYTES);
    for (i = 0; i < 8; i++)
        be[i] = (uint8_t)(size >> (56 - 8 * i));
    memcpy(be + 8, digest, 32);
}

bool evidence_omitted_parse(const uint8_t *p, size_t len, uint64_t *size,
                            uint8_t digest[32])
{
    uint64_t v = 0;
    int i;

    if (len != EVIDENCE_OMITTED_BYTES ||
        memcmp(p, EVIDENCE_OMITTED_PREFIX, EVIDENCE_OMITTED_PREFIX_BYTES) != 0)
        return false;
    for (i = 0; i < 8; i++)
        v = v << 8 | p[EVIDENCE_OMITTED_PREFIX_BYTES + i];
    *size = v;
    memcpy(digest, p + EVIDENCE_OMITTED_PREFIX_BYTES + 8, 32);
    return true;
}
