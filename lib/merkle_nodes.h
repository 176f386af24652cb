/*
 * merkle_nodes.h - RFC 9162 roots and proofs computed from stored subtree
 * hashes instead of from every leaf.
 *
 * Internal to libonce and its tools: the broker's log reads the nodes from
 * LMDB, once-audit from the hash tiles of an export. See merkle_nodes.c.
 */
#ifndef ONCE_MERKLE_NODES_H
#define ONCE_MERKLE_NODES_H

#include <stddef.h>
#include <stdint.h>

#include "merkle.h"

/* Proofs never hold more hashes than the tree has levels. */
#define MERKLE_MAX_PROOF 64

/* Fills out with the hash of the complete subtree at `level` covering
 * leaves [index << level, (index + 1) << level): the leaf hash at level 0.
 * Returns 0 or a negative once error code, which the callers pass on. */
typedef int (*merkle_node_fn)(void *ctx, unsigned level, uint64_t index,
                              merkle_hash out);

/* MTH of the first `size` leaves, in at most 64 node reads. */
int merkle_nodes_root(merkle_node_fn node, void *ctx, uint64_t size,
                      merkle_hash out);

/* The same proofs as merkle_inclusion_proof and merkle_consistency_proof,
 * hash for hash. proof must hold MERKLE_MAX_PROOF hashes. Return 0, a
 * negative error from `node`, or -ONCE_ERR_INVALID_ARGUMENT for an index
 * at or past size, or m outside 1..n. */
int merkle_nodes_inclusion_proof(merkle_node_fn node, void *ctx,
                                 uint64_t index, uint64_t size,
                                 merkle_hash *proof, size_t *proof_len);
int merkle_nodes_consistency_proof(merkle_node_fn node, void *ctx,
                                   uint64_t m, uint64_t n, merkle_hash *proof,
                                   size_t *proof_len);

#endif
