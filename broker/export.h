/*
 * export.h - writes the exchange log as a self-contained directory for
 * auditors (C2SP tlog-tiles plus evidence, checkpoints and keys).
 *
 * Layout (docs/AUDIT.md has the byte formats):
 *
 *   checkpoint                  signed checkpoint of the exported tree
 *   tile/<L>/<N>[.p/<W>]        hash tiles
 *   tile/entries/<N>[.p/<W>]    leaves: u16be length || LogLeaf bytes each
 *   checkpoints/<size>          every stored checkpoint in the range
 *   keys.txt                    department keys and their validity
 *   README.txt                  what the auditor does with it
 *
 * and the evidence, personal data, either
 *
 *   evidence/<N>[.p/<W>]        envelopes: u32be length || bytes each,
 *                               directories 0700, files 0600
 *
 * or, sealed to one auditor's key (lib/evidence_seal.c),
 *
 *   evidence-sealed/auditor.pub the auditor's public key
 *   evidence-sealed/<N>[.p/<W>] each a sealed box of the bundle above
 */
#ifndef ONCE_EXPORT_H
#define ONCE_EXPORT_H

#include <stdint.h>

#include "auditlog.h"
#include "once/once.h"
#include "store.h"

typedef struct export_options {
    /* Leaves [start, end): see export_log. */
    uint64_t start, end;
    /* NULL: the evidence in plain under evidence/. Otherwise the auditor's
     * Ed25519 public key, to which every evidence bundle is sealed. */
    const uint8_t *seal_to;
    /* When set, called after each tile, bundle or batch of checkpoints,
     * while the export holds no LMDB snapshot: `what` names the part,
     * done of total are done. */
    void (*progress)(void *arg, const char *what, uint64_t done,
                     uint64_t total);
    void *progress_arg;
} export_options;

/* Exports the tree of `end` leaves with the entries and evidence of leaves
 * [start, end), beside a live broker. The tree size is fixed at the start
 * and everything below it is immutable in the log, so the export reads in
 * short read transactions, one per tile or bundle, and never holds an LMDB
 * snapshot while it writes files: a large export does not keep the broker
 * from reusing pages.
 *
 * The exported tree size is the largest one with a signed checkpoint that
 * is <= end (end 0: the newest checkpoint); it is the size in DIR/checkpoint
 * afterwards. start is rounded down to a multiple of 256, so bundles are
 * whole; the hash tiles always cover the whole tree, so an export of a
 * range still lets the auditor check every checkpoint.
 *
 * DIR (created 0755 when missing) must be the caller's and writable by no
 * one else; every directory below it is opened without following links,
 * and every file is created with O_EXCL | O_NOFOLLOW (lib/file_io.c); a
 * link found anywhere is refused. Public parts are 0644 in 0755
 * directories; plain evidence 0600 in 0700 ones.
 *
 * DIR may hold an earlier export of the same log, which is then extended:
 * full tiles and bundles already there must be byte-identical (they are
 * immutable; sealed bundles, sealed anew each time, are kept), partial
 * ones are replaced by fuller ones, and the checkpoint file moves forward.
 * Refused with -ONCE_ERR_EXISTS: a DIR whose checkpoint is not one this
 * log signed, a DIR already holding a newer tree, a start past DIR's tree
 * size (a gap), plain evidence where sealed is asked for and the reverse,
 * evidence sealed to another key. Every file is written to a temporary
 * name and renamed; the checkpoint file is written last, after the rest is
 * synced, so a crashed export never names data it lacks. */
int export_log(const store *s, const auditlog *log, const char *dir,
               const export_options *opt, once_error *err);

#endif
