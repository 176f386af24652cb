/*
 * evidence_seal.c - evidence bundles sealed to one auditor's key.
 *
 * The evidence of a log export (the envelopes departments signed) holds raw
 * subjects (credit codes, resident ID numbers) and disclosed field values:
 * personal data. In plain it stays on the broker's host, mode 0600. To let
 * an export travel (a copy to the auditor's office, a medium in the post),
 * `oncectl log export --evidence-to AUDITOR.pub` seals every evidence
 * bundle to that auditor's key, and only `once-audit verify --evidence-key
 * AUDITOR.key` opens them again.
 *
 * The auditor's key is an ordinary once key pair (`oncectl keygen`): an
 * Ed25519 key in the project's key file format. Its X25519 form is derived
 * the way the department keys' CurveZMQ keys are
 * (crypto_sign_ed25519_pk_to_curve25519 and _sk_to_curve25519), so the
 * auditor keeps one key file, and compares one public key with the
 * operator. A sealed bundle is libsodium's sealed box (crypto_box_seal:
 * an ephemeral X25519 key, XSalsa20-Poly1305) over the whole bundle file:
 * one key exchange per 256 envelopes, not per envelope, so opening costs
 * the auditor nothing next to the Ed25519 check of each envelope.
 *
 * A sealed box proves nothing about who sealed it; it need not: each
 * envelope's SHA-256 is in its leaf, which the signed checkpoints cover.
 */
#include "evidence_seal.h"

#include <string.h>

int evidence_seal(const uint8_t auditor_pk[ONCE_PUBLIC_KEY_BYTES],
                  const uint8_t *plain, size_t len, uint8_t *out,
                  once_error *err)
{
    uint8_t curve_pk[crypto_box_PUBLICKEYBYTES];

    if (crypto_sign_ed25519_pk_to_curve25519(curve_pk, auditor_pk) != 0)
        return once_error_set(err, ONCE_ERR_CRYPTO,
                              "the auditor's key is not a valid Ed25519 "
                              "public key");
    if (crypto_box_seal(out, plain, len, curve_pk) != 0)
        return once_error_set(err, ONCE_ERR_CRYPTO,
                              "cannot seal the evidence");
    return 0;
}

int evidence_open(const once_keypair *auditor, const uint8_t *sealed,
                  size_t len, uint8_t *out, once_error *err)
{
    uint8_t curve_pk[crypto_box_PUBLICKEYBYTES];
    uint8_t curve_sk[crypto_box_SECRETKEYBYTES];
    int rc = 0;

    if (len < EVIDENCE_SEAL_OVERHEAD)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "shorter than a sealed box");
    if (crypto_sign_ed25519_pk_to_curve25519(curve_pk,
                                             auditor->public_key) != 0 ||
        crypto_sign_ed25519_sk_to_curve25519(curve_sk,
                                             auditor->secret_key) != 0)
        rc = once_error_set(err, ONCE_ERR_CRYPTO,
                            "the auditor's key is not a valid Ed25519 key");
    else if (crypto_box_seal_open(out, sealed, len, curve_pk, curve_sk) != 0)
        rc = once_error_set(err, ONCE_ERR_CRYPTO,
                            "does not open with this auditor key (sealed to "
                            "another key, or changed)");
    sodium_memzero(curve_sk, sizeof(curve_sk));
    return rc;
}
