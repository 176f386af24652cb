/*
 * fuzz_key.h - the fixed issuer key of the fuzz targets and their seeds.
 *
 * The seed corpora are signed with this key, so that a target run on a seed
 * (or on a mutation that leaves the signed bytes alone) gets past the
 * signature check into the disclosure checks behind it. fuzz_sign_check is
 * what the targets of the adapters' JSON do with a record they accepted.
 */
#ifndef ONCE_FUZZ_KEY_H
#define ONCE_FUZZ_KEY_H

#include <stdlib.h>
#include <string.h>

#include "once/once.h"

static inline void fuzz_key(once_keypair *kp)
{
    uint8_t seed[32];

    memset(seed, 0x11, sizeof(seed));
    once_keypair_from_seed(kp, seed);
}

/* r, unsigned, signs with the fuzz key, verifies, and survives
 * serialization and parsing; aborts otherwise. */
static inline void fuzz_sign_check(once_record *r)
{
    once_record *again = NULL;
    once_keypair kp;
    uint8_t *bytes;
    size_t len;

    fuzz_key(&kp);
    if (once_record_sign(r, &kp, NULL) < 0 ||
        once_record_verify(r, kp.public_key, NULL) < 0 ||
        once_record_serialize(r, &bytes, &len, NULL) < 0)
        abort();
    if (once_record_parse(&again, bytes, len, NULL) < 0 ||
        once_record_verify(again, kp.public_key, NULL) < 0)
        abort();
    free(bytes);
    once_record_free(again);
}

#endif
