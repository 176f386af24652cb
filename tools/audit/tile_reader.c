/*
 * tile_reader.c - the hash tiles of an export as Merkle tree nodes.
 *
 * prove and consistency build RFC 9162 proofs from an export, with the
 * same code the broker builds them with (lib/merkle_nodes.c), which asks
 * for tree nodes by level and index. Here they come from the hash tiles:
 * a node of level h is the tile hash at level h / 8 when h is a multiple
 * of 8, otherwise the root of the 2^(h % 8) tile hashes it spans. Proof
 * nodes of one proof lie in one tile per level, so one tile per level is
 * cached. Whatever the tiles say, the proof is then checked against the
 * signed checkpoint before it is trusted.
 */
#include "tile_reader.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export_dir.h"
#include "once/once.h"

int tile_node(void *ctx, unsigned h, uint64_t k, merkle_hash out)
{
    tile_reader *r = ctx;
    unsigned level = h / TLOG_TILE_HEIGHT, span = 1u << (h % TLOG_TILE_HEIGHT);
    uint64_t first = k << (h % TLOG_TILE_HEIGHT);
    uint64_t t = first / TLOG_TILE_WIDTH;
    unsigned pos = (unsigned)(first % TLOG_TILE_WIDTH);
    char path[TLOG_PATH_MAX], prefix[16];
    size_t len;
    int rc;

    if (level >= TLOG_MAX_LEVELS)
        return -ONCE_ERR_INVALID_ARGUMENT;
    if (!r->cache[level].loaded || r->cache[level].index != t) {
        free(r->cache[level].data);
        r->cache[level].loaded = 0;
        r->cache[level].data = NULL;
        r->cache[level].width = tlog_tile_width(r->size, level, t);
        level_prefix(prefix, sizeof(prefix), level);
        tile_path(path, prefix, t, r->cache[level].width);
        rc = read_at(r->dirfd, path, &r->cache[level].data, &len);
        if (rc < 0) {
            snprintf(r->why, sizeof(r->why), "cannot read %s: %s", path,
                     strerror(-rc));
            return -ONCE_ERR_IO;
        }
        if (len != (size_t)r->cache[level].width * MERKLE_HASH_BYTES) {
            snprintf(r->why, sizeof(r->why), "%s holds %zu bytes, not %u "
                     "hashes", path, len, r->cache[level].width);
            return -ONCE_ERR_MALFORMED;
        }
        r->cache[level].loaded = 1;
        r->cache[level].index = t;
    }
    if (pos + span > r->cache[level].width) {
        snprintf(r->why, sizeof(r->why), "tile level %u index %" PRIu64
                 " is too narrow", level, t);
        return -ONCE_ERR_MALFORMED;
    }
    merkle_root((const merkle_hash *)r->cache[level].data + pos, span, out);
    return 0;
}

void tile_reader_free(tile_reader *r)
{
    unsigned i;

    for (i = 0; i < TLOG_MAX_LEVELS; i++)
        free(r->cache[i].data);
}
