/*
 * tlog_tiles.c - the arithmetic and the paths of C2SP tlog-tiles
 * (https://c2sp.org/tlog-tiles), the static layout the exchange log is
 * exported in.
 *
 * The layout cuts the tree into tiles of height 8: a tile at level L holds
 * up to 256 consecutive hashes of complete subtrees of 2^(8L) leaves, and a
 * full tile is hashed into one hash of the level above. Only the rightmost
 * tile of each level may be partial, and it is named with its width, so a
 * file's name alone says how much of the tree it covers and a full tile,
 * once written, never changes. Entry bundles use the level-0 numbering.
 *
 * The tile number is written in 3-digit groups, all but the last prefixed
 * with 'x' (x001/x234/067), so that no directory holds more than 1000
 * entries and a number's directory never collides with a file name.
 *
 * Entry and evidence bundles are the one part of the layout with inner
 * structure: a row of length-prefixed entries. An auditor reads them from
 * an export someone else made, so splitting one checks every length against
 * what is left before using it, and accepts a bundle only when it holds
 * exactly the entries its name promises and nothing after them: a byte
 * more or less is a bundle changed after the export, not one to guess at.
 */
#include "tlog_tiles.h"

#include <stdio.h>
#include <string.h>

uint64_t tlog_level_hashes(uint64_t size, unsigned level)
{
    if (level >= TLOG_MAX_LEVELS)
        return 0;
    return size >> (TLOG_TILE_HEIGHT * level);
}

unsigned tlog_tile_width(uint64_t size, unsigned level, uint64_t index)
{
    uint64_t hashes = tlog_level_hashes(size, level);
    uint64_t full = hashes / TLOG_TILE_WIDTH;

    if (index < full)
        return TLOG_TILE_WIDTH;
    if (index == full)
        return (unsigned)(hashes % TLOG_TILE_WIDTH);
    return 0;
}

uint64_t tlog_tile_count(uint64_t size, unsigned level)
{
    uint64_t hashes = tlog_level_hashes(size, level);

    return hashes / TLOG_TILE_WIDTH + (hashes % TLOG_TILE_WIDTH != 0);
}

int tlog_tile_path(char *out, size_t cap, const char *prefix, uint64_t index,
                   unsigned width)
{
    unsigned groups[7];
    size_t ngroups = 0, len;
    int n;

    do {
        groups[ngroups++] = (unsigned)(index % 1000);
        index /= 1000;
    } while (index > 0);
    n = snprintf(out, cap, "%s/", prefix);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    len = (size_t)n;
    while (ngroups > 1) {
        n = snprintf(out + len, cap - len, "x%03u/", groups[--ngroups]);
        if (n < 0 || (size_t)n >= cap - len)
            return -1;
        len += (size_t)n;
    }
    if (width > 0 && width < TLOG_TILE_WIDTH)
        n = snprintf(out + len, cap - len, "%03u.p/%u", groups[0], width);
    else
        n = snprintf(out + len, cap - len, "%03u", groups[0]);
    if (n < 0 || (size_t)n >= cap - len)
        return -1;
    return 0;
}

int tlog_bundle_split(const uint8_t *data, size_t len, unsigned count,
                      unsigned length_bytes, size_t *offsets, size_t *lengths,
                      once_error *err)
{
    size_t pos = 0, n;
    unsigned i, j;

    if (count > TLOG_TILE_WIDTH || length_bytes < 1 || length_bytes > 4)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a bundle holds up to %d entries with 1- to "
                              "4-byte lengths", TLOG_TILE_WIDTH);
    for (i = 0; i < count; i++) {
        if (len - pos < length_bytes)
            return once_error_set(err, ONCE_ERR_MALFORMED,
                                  "ends after %u of %u entries", i, count);
        for (n = 0, j = 0; j < length_bytes; j++)
            n = (n << 8) | data[pos + j];
        pos += length_bytes;
        if (len - pos < n)
            return once_error_set(err, ONCE_ERR_MALFORMED,
                                  "entry %u runs past the end", i);
        offsets[i] = pos;
        lengths[i] = n;
        pos += n;
    }
    if (pos != len)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "%zu bytes follow the last of %u entries",
                              len - pos, count);
    return 0;
}
