/*
 * sealed_evidence.h - once-audit's side of evidence sealed to an auditor.
 *
 * See sealed_evidence.c.
 */
#ifndef ONCE_TOOLS_AUDIT_SEALED_EVIDENCE_H
#define ONCE_TOOLS_AUDIT_SEALED_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "once/once.h"

#define AUDIT_SEALED_DIR "evidence-sealed"
#define AUDIT_SEALED_KEY_FILE AUDIT_SEALED_DIR "/auditor.pub"

typedef struct audit_evidence {
    int sealed;        /* the export's evidence is sealed */
    int have_key;      /* --evidence-key was given and loaded */
    once_keypair key;  /* the auditor's key pair */
} audit_evidence;

/* Loads the auditor's secret key file (--evidence-key, may be NULL).
 * 0, or -1 with the reason in why (a usage error: the file is not a
 * secret key file, or is readable by others). */
int audit_evidence_load_key(audit_evidence *e, const char *key_path,
                            char *why, size_t why_cap);

/* Decides how the export's evidence is read, from the contents of its
 * evidence-sealed/auditor.pub (NULL when there is none). 0 when the
 * evidence can be checked; -1 when it cannot, with the reason in why (a
 * FAIL line): sealed and no key given, or sealed to another key. */
int audit_evidence_prepare(audit_evidence *e, const uint8_t *recipient,
                           size_t recipient_len, char *why, size_t why_cap);

/* The directory the evidence bundles are in. */
const char *audit_evidence_dir(const audit_evidence *e);

/* Replaces *data (malloc'd, *len bytes, as read from the bundle file)
 * with the bundle it holds: itself in plain, opened when sealed. 0, or -1
 * with the reason in why. */
int audit_evidence_unwrap(const audit_evidence *e, uint8_t **data,
                          size_t *len, char *why, size_t why_cap);

void audit_evidence_clear(audit_evidence *e);

#endif
