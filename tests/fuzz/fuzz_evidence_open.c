/*
 * fuzz_evidence_open.c - evidence_open on arbitrary bytes.
 *
 * once-audit opens every sealed evidence bundle of the export it is
 * handed (lib/evidence_seal.c), and an export is outside bytes. With the
 * fixed key as the auditor's (the seeds are sealed to it): a refusal
 * fills the error, MALFORMED below a sealed box's overhead and CRYPTO
 * above; and the input itself, sealed to the key, opens to exactly the
 * input again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evidence_seal.h"
#include "fuzz_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static once_keypair key;
    static int have_key;
    once_error err = {0};
    uint8_t *out, *sealed;

    if (!have_key) {
        if (once_init() < 0)
            abort();
        fuzz_key(&key);
        have_key = 1;
    }
    out = malloc(size + 1);
    sealed = malloc(size + EVIDENCE_SEAL_OVERHEAD);
    if (out == NULL || sealed == NULL)
        abort();
    if (evidence_open(&key, data, size, out, &err) < 0 &&
        (err.message[0] == '\0' ||
         err.code != (size < EVIDENCE_SEAL_OVERHEAD ? ONCE_ERR_MALFORMED
                                                   : ONCE_ERR_CRYPTO)))
        abort();
    if (evidence_seal(key.public_key, data, size, sealed, NULL) < 0 ||
        evidence_open(&key, sealed, size + EVIDENCE_SEAL_OVERHEAD, out,
                      NULL) < 0 ||
        (size > 0 && memcmp(out, data, size) != 0))
        abort();
    free(out);
    free(sealed);
    return 0;
}
