/*
 * tlog_tiles.h - the C2SP tlog-tiles layout: which tiles a tree has and
 * where they live.
 *
 * Internal to libonce and its tools: the broker's export writes this layout
 * and once-audit reads it. See tlog_tiles.c.
 */
#ifndef ONCE_TLOG_TILES_H
#define ONCE_TLOG_TILES_H

#include <stddef.h>
#include <stdint.h>

#include "once/once.h"

#define TLOG_TILE_HEIGHT 8
#define TLOG_TILE_WIDTH 256
/* Tile levels 0..7 cover trees of up to 2^64 leaves. */
#define TLOG_MAX_LEVELS 8
/* Bytes of the big-endian length in front of each entry of an entry bundle
 * (tile/entries: a leaf is at most 65,535 bytes) and of an evidence bundle
 * (evidence: an envelope may be longer). */
#define TLOG_ENTRY_LENGTH_BYTES 2
#define TLOG_EVIDENCE_LENGTH_BYTES 4
/* Longest path: "tile/entries/" plus seven "xNNN/" groups, "NNN.p/255". */
#define TLOG_PATH_MAX 96

/* Number of hashes at tile level `level` in a tree of `size` leaves: the
 * complete subtrees of height 8 * level. */
uint64_t tlog_level_hashes(uint64_t size, unsigned level);

/* Width of tile `index` at `level`: 256 for a full tile, 1..255 for the
 * partial rightmost one, 0 when the tree has no such tile. Entry bundles
 * have the widths of the level-0 tiles. */
unsigned tlog_tile_width(uint64_t size, unsigned level, uint64_t index);

/* Number of tiles (full and partial) at `level`. */
uint64_t tlog_tile_count(uint64_t size, unsigned level);

/* Writes "<prefix>/<N>" for a full tile or "<prefix>/<N>.p/<W>" for a
 * partial one, N in 3-digit groups with an x before all but the last
 * (1234067 -> x001/x234/067). prefix is e.g. "tile/0" or "tile/entries".
 * Returns 0, or -1 when out is too small. */
int tlog_tile_path(char *out, size_t cap, const char *prefix, uint64_t index,
                   unsigned width);

/* Splits a bundle that must hold exactly `count` (at most TLOG_TILE_WIDTH)
 * entries, each a big-endian length of length_bytes (1..4) bytes and then
 * that many bytes: entry i is data[offsets[i]] .. data[offsets[i] +
 * lengths[i] - 1]. offsets and lengths hold count items. Returns 0, or
 * -ONCE_ERR_MALFORMED when the bundle holds fewer entries, a truncated one
 * or bytes after the last, -ONCE_ERR_INVALID_ARGUMENT for a count or
 * length_bytes out of range; err says which. */
int tlog_bundle_split(const uint8_t *data, size_t len, unsigned count,
                      unsigned length_bytes, size_t *offsets, size_t *lengths,
                      once_error *err);

#endif
