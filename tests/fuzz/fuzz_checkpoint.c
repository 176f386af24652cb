/*
 * fuzz_checkpoint.c - checkpoint_verify on arbitrary bytes.
 *
 * Auditors and departments read checkpoints from files and receipts, so the
 * signed-note parser takes outside bytes. Beyond not crashing: a refusal
 * fills the error, and an accepted note must be one this key really signed,
 * so re-signing what was parsed must give back a note that verifies too.
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
    checkpoint parsed, again;
    int len;

    if (!ready) {
        if (once_init() < 0)
            abort();
        fuzz_key(&key);
        ready = 1;
    }
    if (checkpoint_verify((const char *)data, size, "fuzz.example/log",
                          key.public_key, &parsed, &err) < 0) {
        if (err.code == 0 || err.message[0] == '\0')
            abort();
        return 0;
    }
    len = checkpoint_sign(&parsed, "fuzz.example/log", &key, note,
                          sizeof(note), NULL);
    if (len < 0 || checkpoint_verify(note, (size_t)len, "fuzz.example/log",
                                     key.public_key, &again, NULL) < 0)
        abort();
    if (again.size != parsed.size ||
        memcmp(again.root, parsed.root, sizeof(again.root)) != 0)
        abort();
    return 0;
}
