/*
 * evidence_seal.h - evidence bundles sealed to one auditor's key.
 *
 * Internal to libonce and its tools. See evidence_seal.c.
 */
#ifndef ONCE_EVIDENCE_SEAL_H
#define ONCE_EVIDENCE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "once/once.h"

/* A sealed bundle is this many bytes longer than the bundle. */
#define EVIDENCE_SEAL_OVERHEAD crypto_box_SEALBYTES

/* Seals len bytes to the auditor's Ed25519 public key into out, which
 * holds len + EVIDENCE_SEAL_OVERHEAD bytes. 0, or -ONCE_ERR_CRYPTO when
 * the key is not a valid Ed25519 point. */
int evidence_seal(const uint8_t auditor_pk[ONCE_PUBLIC_KEY_BYTES],
                  const uint8_t *plain, size_t len, uint8_t *out,
                  once_error *err);

/* Opens a sealed bundle with the auditor's key pair into out, which holds
 * len - EVIDENCE_SEAL_OVERHEAD bytes. 0, or -ONCE_ERR_MALFORMED when it is
 * shorter than the overhead, -ONCE_ERR_CRYPTO when it was not sealed to
 * this key or was changed. */
int evidence_open(const once_keypair *auditor, const uint8_t *sealed,
                  size_t len, uint8_t *out, once_error *err);

#endif
