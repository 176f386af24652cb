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
