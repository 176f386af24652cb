/*
 * export.h - writes the exchange log as a self-contained directory for
 * auditors (C2SP tlog-tiles plus evidence, checkpoints and keys).
 *
 * Layout (docs/AUDIT.md has the byte formats):
 *
 *   checkpoint                  signed checkpoint of the exported tree
 *   tile/<L>/<N>[.p/<W>]        hash tiles
 *   tile/entries/<N>[.p/<W>]    leaves: u16be length || LogLeaf bytes each
 *   evidence/<N>[.p/<W>]        envelopes: u32be length || bytes each
 *   checkpoints/<size>          every stored checkpoint in the range
 *   keys.txt                    department keys and their validity
 *   README.txt                  what the auditor does with it
 */
#ifndef ONCE_EXPORT_H
#define ONCE_EXPORT_H

#include <stdint.h>

#include "auditlog.h"
#include "once/once.h"
#include "store.h"

/* Exports the tree of `end` leaves with the entries and evidence of leaves
 * [start, end), in one read transaction of its own (so it runs beside a
 * live broker and sees one consistent log).
 *
 * The exported tree size is the largest one with a signed checkpoint that
 * is <= end (end 0: the newest checkpoint); it is the size in DIR/checkpoint
 * afterwards. start is rounded down to a multiple of 256, so bundles are
 * whole; the hash tiles always cover the whole tree, so an export of a
 * range still lets the auditor check every checkpoint.
 *
 * DIR may hold an earlier export of the same log, which is then extended:
 * full tiles and bundles already there must be byte-identical (they are
 * immutable), partial ones are replaced by fuller ones, and the checkpoint
 * file moves forward. Refused with -ONCE_ERR_EXISTS: a DIR whose checkpoint
 * is not one this log signed, a DIR already holding a newer tree, a start
 * past DIR's tree size (a gap). Every file is written to a temporary name
 * and renamed; the checkpoint file is written last, after the rest is
 * synced, so a crashed export never names data it lacks. */
int export_log(const store *s, const auditlog *log, const char *dir,
               uint64_t start, uint64_t end, once_error *err);

#endif
