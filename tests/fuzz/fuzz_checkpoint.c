/*
 * fuzz_checkpoint.c - checkpoint_verify, checkpoint_parse_unverified and
 * checkpoint_note_origin on arbitrary bytes.
 *
 * Auditors and departments read checkpoints from files and receipts, so the
 * signed-note parser takes outside bytes. Beyond not crashing: a refusal
 * fills the error, and an accepted note must be one this key really signed,
 * so re-signing what was parsed must give back a note that verifies too.
 * And it must be the same bytes: the body and this key's signature line
 * (Ed25519 is deterministic), so a checkpoint has one spelling only and a
 * byte-for-byte comparison of two copies means what it should. The
 * unverified parsers must agree with it: what verifies parses to the same
 * checkpoint unverified, and what parses has that origin line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "fuzz_key.h"
#include "once/once.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static once_keypair key;
    static int ready;
    char note[CHECKPOINT_MAX_NOTE];
    once_error err = {0};
    char origin[CHECKPOINT_MAX_ORIGIN + 1];
    checkpoint parsed, again, unverified;
    const char *body_end;
    size_t body_len;
    int len;

    if (!ready) {
        if (once_init() < 0)
            abort();
        fuzz_key(&key);
        ready = 1;
    }
    if (checkpoint_parse_unverified((const char *)data, size, &unverified,
                                    &err) == 0) {
        if (checkpoint_note_origin((const char *)data, size, origin,
                                   sizeof(origin)) < 0 ||
            strcmp(origin, unverified.origin) != 0)
            abort();
    } else if (err.code == 0 || err.message[0] == '\0') {
        abort();
    } else {
        unverified.size = UINT64_MAX;
    }
    memset(&err, 0, sizeof(err));
    if (checkpoint_verify((const char *)data, size, "fuzz.example/log",
                          key.public_key, &parsed, &err) < 0) {
        if (err.code == 0 || err.message[0] == '\0')
            abort();
        return 0;
    }
    if (unverified.size != parsed.size ||
        memcmp(unverified.root, parsed.root, sizeof(parsed.root)) != 0 ||
        strcmp(unverified.origin, parsed.origin) != 0)
        abort();
    len = checkpoint_sign(&parsed, "fuzz.example/log", &key, note,
                          sizeof(note), NULL);
    if (len < 0 || checkpoint_verify(note, (size_t)len, "fuzz.example/log",
                                     key.public_key, &again, NULL) < 0)
        abort();
    if (again.size != parsed.size ||
        memcmp(again.root, parsed.root, sizeof(again.root)) != 0)
        abort();
    body_end = memmem(note, (size_t)len, "\n\n", 2);
    if (body_end == NULL)
        abort();
    body_len = (size_t)(body_end - note) + 2;
    if (size < body_len || memcmp(data, note, body_len) != 0 ||
        memmem(data + body_len, size - body_len, note + body_len,
               (size_t)len - body_len) == NULL)
        abort();
    return 0;
}
