/*
 * verifier.h - what the passes of `once-audit verify` share.
 *
 * verify.c reads the command line and runs the passes in order, each in
 * its own file:
 *
 *   verify_checkpoints.c  reads and verifies every signed checkpoint and
 *                         picks the tree size to check to;
 *   verify_state.c        adds the checkpoint kept by an earlier run
 *                         (--since), and keeps one for the next (--save);
 *   verify_tree.c         recomputes the tree from the entry bundles,
 *                         compares every hash tile and checkpoint, and
 *                         says which side was changed;
 *   verify_evidence.c     checks every leaf against the envelope its
 *                         department signed.
 *
 * The verifier below is the state they hand on: the checkpoints (with
 * whether each matched the recomputed tree), which entry bundles the tree
 * pass hashed and their digests (so that the evidence pass checks the very
 * same leaves), and the problems found so far. The thread pool is shared,
 * so that the threads are started once.
 */
#ifndef ONCE_TOOLS_AUDIT_VERIFIER_H
#define ONCE_TOOLS_AUDIT_VERIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "audit_hash.h"
#include "checkpoint.h"
#include "digest.h"
#include "export_dir.h"
#include "keyring.h"
#include "once/once.h"
#include "pool.h"
#include "report.h"
#include "sealed_evidence.h"

typedef struct cp_item {
    char label[48];       /* "checkpoint" or "checkpoints/<size>" */
    char file_name[24];   /* in checkpoints/: a decimal u64 (20 digits) */
    uint64_t named_size;  /* from the file name; UINT64_MAX for checkpoint */
    uint8_t *text;
    size_t len;
    int valid;            /* signature verified and note parsed */
    checkpoint cp;
    char why[ONCE_ERROR_MESSAGE_MAX + 64];
    int checked, match_a, match_b;
} cp_item;

typedef struct verifier {
    export_dir x;
    uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES];
    char origin[CHECKPOINT_MAX_ORIGIN + 1];
    int have_audit_key;
    uint8_t audit_key[AUDIT_KEY_BYTES];
    int threads;
    pool pool;
    uint64_t size;          /* the tree size everything is checked to */
    uint64_t from;          /* leaves below may lack entries (--from) */
    /* --since: the signatures of leaves below evidence_from were checked
     * by an earlier run with the keys in kept_keys. */
    uint64_t evidence_from;
    keyring kept_keys;
    size_t problems;        /* printed so far */
    report found;           /* main thread's, printed at stage ends */

    cp_item *cps;
    size_t ncps;

    /* tree pass */
    uint8_t *entries_ok;    /* per bundle: entries present and parsed */
    /* per bundle: SHA-256 of the entries the tree pass hashed, so that the
     * evidence pass checks the very same leaves */
    uint8_t (*entries_digest)[DIGEST_SHA256_BYTES];
    uint64_t pruned_until;  /* leaves before this have no entry bundles */
    uint64_t tiles_checked;

    /* evidence pass */
    keyring keys;
    audit_evidence evidence; /* plain or sealed, and the key to open it */
} verifier;

/* verify_checkpoints.c */

/* Loads the checkpoint file and checkpoints/<size>, checks signatures on
 * the pool, sets v->size, and sorts v->cps (checkpoints_sort). 0, or -1
 * when no checkpoint verifies. The ones that do not are problems. */
int load_checkpoints(verifier *v);

/* Sorts v->cps as the tree pass walks them: the valid ones by size. */
void checkpoints_sort(verifier *v);

/* verify_state.c */

/* --since: adds the state's checkpoint to v->cps and loads its keys into
 * v->kept_keys; a state that does not verify is a problem. */
void load_state(verifier *v, const char *path);

/* The size of the kept checkpoint when the tree pass found its root to be
 * the root of the entry bundles at its size, else 0. */
uint64_t kept_size_confirmed(const verifier *v);

/* --save: keeps the export's checkpoint and keys.txt in directory path. */
int save_state(const verifier *v, const char *path, once_error *err);

/* verify_tree.c */

/* The tree pass, with its findings in v->found and reported through
 * v->problems. 0, or -1 when the tree could not be recomputed to the end
 * (the checkpoints past that point are then not checked). */
int verify_tree(verifier *v);

/* verify_evidence.c */

/* Whether the evidence can be read: in plain, or sealed to the auditor
 * whose key was given. 0, or -1 with the reason in why. */
int evidence_readable(verifier *v, char *why, size_t why_cap);

/* The evidence pass over every bundle the tree pass read; adds to the
 * counts of envelopes checked, of refusals without a signature to check,
 * and of signatures an earlier run checked (--since). */
void run_evidence_pass(verifier *v, uint64_t *checked,
                       uint64_t *unauthenticated, uint64_t *pinned);

#endif
