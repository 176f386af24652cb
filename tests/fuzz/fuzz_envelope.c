/*
 * fuzz_envelope.c - what the broker and the client do first with a frame
 * from the network: read its seq without decoding (as the broker's I/O
 * thread does for the refusals it answers itself), unpack the envelope,
 * build its signing input, check its signature, then decode its body as
 * the message its kind names.
 *
 * Nothing before the signature check may trust any length or string of the
 * frame, and the bodies are decoded as the broker would decode them, so the
 * record paths a Publish, Revoke or Response leads to are covered as well.
 * Properties checked besides not crashing: the signing input has the
 * documented length, the decoded fields pack to bytes that unpack to the
 * same signing input, and the seq read without decoding is the decoded one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "fuzz_key.h"
#include "once.pb-c.h"
#include "record_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_body(const Once__Envelope *e, const uint8_t *pk)
{
    const uint8_t *body = e->body.len > 0 ? e->body.data : (const uint8_t *)"";
    once_record *r = NULL;

    switch (e->kind) {
    case ONCE__KIND__KIND_PUBLISH:
        if (once_record_parse(&r, body, e->body.len, NULL) == 0)
            (void)once_record_verify(r, pk, NULL);
        break;
    case ONCE__KIND__KIND_REVOKE: {
        Once__Revoke *m = once__revoke__unpack(NULL, e->body.len, body);

        if (m != NULL) {
            if (record_from_parts(&r, m->record, NULL, 0, NULL) == 0)
                (void)once_record_verify(r, pk, NULL);
            once__revoke__free_unpacked(m, NULL);
        }
        break;
    }
    case ONCE__KIND__KIND_RESPONSE: {
        Once__Response *m = once__response__unpack(NULL, e->body.len, body);

        if (m != NULL) {
            if (m->record != NULL &&
                record_from_parts(&r, m->record, m->disclosures,
                                  m->n_disclosures, NULL) == 0)
                (void)once_record_verify(r, pk, NULL);
            once__response__free_unpacked(m, NULL);
        }
        break;
    }
    case ONCE__KIND__KIND_REQUEST: {
        Once__Request *m = once__request__unpack(NULL, e->body.len, body);

        if (m != NULL)
            once__request__free_unpacked(m, NULL);
        break;
    }
    case ONCE__KIND__KIND_ERROR: {
        Once__Error *m = once__error__unpack(NULL, e->body.len, body);

        if (m != NULL)
            once__error__free_unpacked(m, NULL);
        break;
    }
    default:
        break;
    }
    once_record_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static once_keypair key;
    static int ready;
    Once__Envelope copy = ONCE__ENVELOPE__INIT, *e, *again;
    uint8_t *input, *input_again, *packed;
    size_t input_len, input_again_len, packed_len, sender_len;
    uint64_t peeked;

    if (!ready) {
        if (once_init() < 0)
            abort();
        fuzz_key(&key);
        ready = 1;
    }
    e = envelope_unpack(data, size);
    /* The broker's I/O thread reads the seq of a refused envelope this
     * way: never past the end, and the seq protobuf-c decodes. */
    if (envelope_peek_seq(data, size, &peeked) == 0 && e != NULL &&
        peeked != e->seq)
        abort();
    if (e == NULL)
        return 0;
    (void)envelope_verify(e, key.public_key);
    if (envelope_signing_input(e, &input, &input_len) == 0) {
        sender_len = strlen(e->sender);
        if (input_len != ENVELOPE_DOMAIN_BYTES + 4 + 4 + sender_len + 8 + 8 +
                             8 + 4 + 8 + 4 + e->body.len)
            abort();
        /* Rebuild from the decoded fields only: protobuf-c keeps unknown
         * fields (even malformed ones, such as field number 0) and may
         * write them back in a form it does not read, and no once program
         * re-sends a received envelope. */
        copy.version = e->version;
        copy.sender = e->sender;
        copy.session = e->session;
        copy.seq = e->seq;
        copy.sent_at = e->sent_at;
        copy.kind = e->kind;
        copy.reply_to = e->reply_to;
        copy.body = e->body;
        copy.signature = e->signature;
        if (envelope_pack(&copy, &packed, &packed_len) < 0)
            abort();
        again = envelope_unpack(packed, packed_len);
        if (again == NULL)
            abort();
        if (envelope_signing_input(again, &input_again, &input_again_len) < 0)
            abort();
        if (input_again_len != input_len ||
            memcmp(input_again, input, input_len) != 0)
            abort();
        free(input_again);
        once__envelope__free_unpacked(again, NULL);
        free(packed);
        free(input);
    }
    decode_body(e, key.public_key);
    once__envelope__free_unpacked(e, NULL);
    return 0;
}
