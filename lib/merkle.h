/*
 * merkle.h - RFC 9162 Merkle tree hashing and proof checking.
 *
 * Internal to libonce and its tools (the broker's log, once-audit). See
 * merkle.c.
 */
#ifndef ONCE_MERKLE_H
#define ONCE_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_BYTES 32

typedef uint8_t merkle_hash[MERKLE_HASH_BYTES];

/* SHA-256(0x00 || data) and SHA-256(0x01 || left || right). */
void merkle_leaf_hash(const uint8_t *data, size_t len, merkle_hash out);
void merkle_node_hash(const merkle_hash left, const merkle_hash right,
                      merkle_hash out);
/* MTH of the empty tree: SHA-256 of no bytes. */
void merkle_empty_root(merkle_hash out);

/* MTH over leaf hashes [0, n): SHA-256 of the empty string when n is 0. */
void merkle_root(const merkle_hash *leaves, uint64_t n, merkle_hash out);

/* Audit path of leaf `index` in the tree of the first n leaves (RFC 9162
 * 2.1.3.1). proof must hold 64 hashes; *proof_len receives the count.
 * Returns 0, or -1 when index >= n. */
int merkle_inclusion_proof(const merkle_hash *leaves, uint64_t n,
                           uint64_t index, merkle_hash *proof,
                           size_t *proof_len);

/* Consistency proof between the trees of the first m and n leaves (RFC 9162
 * 2.1.4.1), 0 < m <= n. Same output convention as above. */
int merkle_consistency_proof(const merkle_hash *leaves, uint64_t m,
                             uint64_t n, merkle_hash *proof,
                             size_t *proof_len);

/* RFC 9162 2.1.3.2. 0 when the proof places leaf_hash at index in a tree of
 * `size` leaves with root `root`; -1 otherwise (index >= size, a proof too
 * short or too long, a mismatch). */
int merkle_verify_inclusion(uint64_t index, uint64_t size,
                            const merkle_hash leaf_hash,
                            const merkle_hash *proof, size_t proof_len,
                            const merkle_hash root);

/* RFC 9162 2.1.4.2. 0 when the tree of size2 with root2 extends the tree
 * of size1 with root1. size1 > size2 fails; size1 == size2 needs an empty
 * proof and equal roots; size1 == 0 needs an empty proof. */
int merkle_verify_consistency(uint64_t size1, uint64_t size2,
                              const merkle_hash root1,
                              const merkle_hash root2,
                              const merkle_hash *proof, size_t proof_len);

#endif
