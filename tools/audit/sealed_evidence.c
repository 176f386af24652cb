/*
 * sealed_evidence.c - once-audit's side of evidence sealed to an auditor.
 *
 * An export's evidence (the envelopes departments signed) is personal
 * data. `oncectl log export --evidence-to AUDITOR.pub` seals each evidence
 * bundle to one auditor's key (lib/evidence_seal.c) and names that key in
 * evidence-sealed/auditor.pub; `once-audit verify --evidence-key
 * AUDITOR.key` opens them, in memory only: the plain envelopes never touch
 * the auditor's disk.
 *
 * The key file the export names is only a hint for the messages: what
 * decides is whether the bundle opens with the auditor's secret key, and
 * then whether each envelope's SHA-256 is the one in its signed leaf. A
 * key that is not the one named is refused up front, with both keys
 * printed, rather than as one failure per bundle.
 */
#include "sealed_evidence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "evidence_seal.h"

#define KEY_HEX (2 * ONCE_PUBLIC_KEY_BYTES)

static int is_lower_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int audit_evidence_load_key(audit_evidence *e, const char *key_path,
                            char *why, size_t why_cap)
{
    once_error err;

    memset(e, 0, sizeof(*e));
    if (key_path == NULL)
        return 0;
    if (once_keypair_load(&e->key, key_path, &err) < 0) {
        snprintf(why, why_cap, "--evidence-key: %s", err.message);
        return -1;
    }
    e->have_key = 1;
    return 0;
}

int audit_evidence_prepare(audit_evidence *e, const uint8_t *recipient,
                           size_t recipient_len, char *why, size_t why_cap)
{
    char ours[KEY_HEX + 1], named[KEY_HEX + 1];
    size_t i;

    e->sealed = recipient != NULL;
    if (!e->sealed)
        return 0;
    /* Printed, so only hex digits of it. */
    for (i = 0; i < KEY_HEX && i < recipient_len &&
                is_lower_hex(recipient[i]); i++)
        named[i] = (char)recipient[i];
    named[i] = '\0';
    if (!e->have_key) {
        snprintf(why, why_cap, "%s: the evidence is sealed to the auditor "
                 "key %s; give its secret key with --evidence-key to check "
                 "the evidence", AUDIT_SEALED_DIR, named);
        return -1;
    }
    once_hex_encode(ours, e->key.public_key, ONCE_PUBLIC_KEY_BYTES);
    if (i != KEY_HEX || strcmp(ours, named) != 0) {
        snprintf(why, why_cap, "%s: the evidence is sealed to the auditor "
                 "key %s, not to the --evidence-key's %s", AUDIT_SEALED_DIR,
                 named, ours);
        return -1;
    }
    return 0;
}

const char *audit_evidence_dir(const audit_evidence *e)
{
    return e->sealed ? AUDIT_SEALED_DIR : "evidence";
}

int audit_evidence_unwrap(const audit_evidence *e, uint8_t **data,
                          size_t *len, char *why, size_t why_cap)
{
    once_error err;
    uint8_t *plain;

    if (!e->sealed)
        return 0;
    if (*len < EVIDENCE_SEAL_OVERHEAD) {
        snprintf(why, why_cap, "shorter than a sealed box");
        return -1;
    }
    /* +1: the caller's files are NUL-terminated, and malloc(0) is odd. */
    plain = malloc(*len - EVIDENCE_SEAL_OVERHEAD + 1);
    if (plain == NULL) {
        snprintf(why, why_cap, "out of memory");
        return -1;
    }
    if (evidence_open(&e->key, *data, *len, plain, &err) < 0) {
        snprintf(why, why_cap, "%s", err.message);
        free(plain);
        return -1;
    }
    free(*data);
    *len -= EVIDENCE_SEAL_OVERHEAD;
    plain[*len] = '\0';
    *data = plain;
    return 0;
}

void audit_evidence_clear(audit_evidence *e)
{
    once_keypair_wipe(&e->key);
}
