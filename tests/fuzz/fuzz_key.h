/*
 * fuzz_key.h - the fixed issuer key of the fuzz targets and their seeds.
 *
 * The seed corpora are signed with this key, so that a target run on a seed
 * (or on a mutation that leaves the signed bytes alone) gets past the
 * signature check into the disclosure checks behind it.
 */
#ifndef ONCE_FUZZ_KEY_H
#define ONCE_FUZZ_KEY_H

#include <string.h>

#include "once/once.h"

static inline void fuzz_key(once_keypair *kp)
{
    uint8_t seed[32];

    memset(seed, 0x11, sizeof(seed));
    once_keypair_from_seed(kp, seed);
}

#endif
