/*
 * tile_reader.h - the hash tiles of an export as Merkle tree nodes.
 *
 * See tile_reader.c.
 */
#ifndef ONCE_TOOLS_AUDIT_TILE_READER_H
#define ONCE_TOOLS_AUDIT_TILE_READER_H

#include <stdint.h>

#include "merkle.h"
#include "tlog_tiles.h"

/* Set dirfd and size after zeroing it; why says what went wrong when
 * tile_node fails. */
typedef struct tile_reader {
    int dirfd;
    uint64_t size;
    struct {
        int loaded;
        uint64_t index;
        uint8_t *data;
        unsigned width;
    } cache[TLOG_MAX_LEVELS];
    char why[256];
} tile_reader;

/* A merkle_node_fn (merkle_nodes.h) with a tile_reader as ctx. */
int tile_node(void *ctx, unsigned h, uint64_t k, merkle_hash out);

void tile_reader_free(tile_reader *r);

#endif
