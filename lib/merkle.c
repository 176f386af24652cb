/*
 * merkle.c - the Merkle tree of RFC 9162 (Certificate Transparency 2.0),
 * which the exchange log is built on.
 *
 * Leaves are hashed as SHA-256(0x00 || leaf) and interior nodes as
 * SHA-256(0x01 || left || right); the prefixes keep a leaf from ever being
 * taken for a node. A tree of n leaves splits at k, the largest power of two
 * below n, so every tree is a fixed shape for its size and a tree only ever
 * grows on the right.
 *
 * The proof builders here work on an array of leaf hashes: they are the
 * reference the tests and the offline auditor use. The verifiers follow
 * RFC 9162 2.1.3.2 and 2.1.4.2 step by step, including the edge cases that
 * published verifiers have got wrong: an index at or past the tree size, a
 * proof with hashes left over, equal sizes, a first size above the second,
 * and size 0.
 *
 * Leaf and node hashes are nearly all the work of recomputing a tree, which
 * the auditor does for every leaf of an export and the broker for every
 * append, so they use nettle's SHA-256 with the CPU's SHA instructions, as
 * digest.c explains; tests/log/test_merkle checks the RFC 6962 vectors.
 */
#include "merkle.h"

#include <string.h>

#include <nettle/sha2.h>
#include <sodium.h>

#include "digest.h"

void merkle_leaf_hash(const uint8_t *data, size_t len, merkle_hash out)
{
    struct sha256_ctx st;
    static const uint8_t prefix = 0x00;

    sha256_init(&st);
    sha256_update(&st, 1, &prefix);
    if (len > 0)
        sha256_update(&st, len, data);
    sha256_digest(&st, MERKLE_HASH_BYTES, out);
}

void merkle_node_hash(const merkle_hash left, const merkle_hash right,
                      merkle_hash out)
{
    struct sha256_ctx st;
    static const uint8_t prefix = 0x01;

    sha256_init(&st);
    sha256_update(&st, 1, &prefix);
    sha256_update(&st, MERKLE_HASH_BYTES, left);
    sha256_update(&st, MERKLE_HASH_BYTES, right);
    sha256_digest(&st, MERKLE_HASH_BYTES, out);
}

void merkle_empty_root(merkle_hash out)
{
    digest_sha256(out, NULL, 0);
}

/* Largest power of two strictly below n (n >= 2). */
static uint64_t split_point(uint64_t n)
{
    uint64_t k = 1;

    while (k << 1 < n)
        k <<= 1;
    return k;
}

void merkle_root(const merkle_hash *leaves, uint64_t n, merkle_hash out)
{
    merkle_hash left, right;
    uint64_t k;

    if (n == 0) {
        merkle_empty_root(out);
        return;
    }
    if (n == 1) {
        memcpy(out, leaves[0], MERKLE_HASH_BYTES);
        return;
    }
    k = split_point(n);
    merkle_root(leaves, k, left);
    merkle_root(leaves + k, n - k, right);
    merkle_node_hash(left, right, out);
}

static void append_hash(merkle_hash *proof, size_t *len, const merkle_hash h)
{
    memcpy(proof[*len], h, MERKLE_HASH_BYTES);
    (*len)++;
}

/* PATH(m, D[n]) of RFC 9162 2.1.3.1, deepest hash first. */
static void inclusion_path(const merkle_hash *leaves, uint64_t n, uint64_t m,
                           merkle_hash *proof, size_t *len)
{
    merkle_hash sibling;
    uint64_t k;

    if (n <= 1)
        return;
    k = split_point(n);
    if (m < k) {
        inclusion_path(leaves, k, m, proof, len);
        merkle_root(leaves + k, n - k, sibling);
    } else {
        inclusion_path(leaves + k, n - k, m - k, proof, len);
        merkle_root(leaves, k, sibling);
    }
    append_hash(proof, len, sibling);
}

int merkle_inclusion_proof(const merkle_hash *leaves, uint64_t n,
                           uint64_t index, merkle_hash *proof,
                           size_t *proof_len)
{
    *proof_len = 0;
    if (index >= n)
        return -1;
    inclusion_path(leaves, n, index, proof, proof_len);
    return 0;
}

/* SUBPROOF(m, D[n], b) of RFC 9162 2.1.4.1. */
static void consistency_subproof(const merkle_hash *leaves, uint64_t m,
                                 uint64_t n, int complete_subtree,
                                 merkle_hash *proof, size_t *len)
{
    merkle_hash h;
    uint64_t k;

    if (m == n) {
        if (!complete_subtree) {
            merkle_root(leaves, n, h);
            append_hash(proof, len, h);
        }
        return;
    }
    k = split_point(n);
    if (m <= k) {
        consistency_subproof(leaves, m, k, complete_subtree, proof, len);
        merkle_root(leaves + k, n - k, h);
    } else {
        consistency_subproof(leaves + k, m - k, n - k, 0, proof, len);
        merkle_root(leaves, k, h);
    }
    append_hash(proof, len, h);
}

int merkle_consistency_proof(const merkle_hash *leaves, uint64_t m,
                             uint64_t n, merkle_hash *proof,
                             size_t *proof_len)
{
    *proof_len = 0;
    if (m == 0 || m > n)
        return -1;
    consistency_subproof(leaves, m, n, 1, proof, proof_len);
    return 0;
}

int merkle_verify_inclusion(uint64_t index, uint64_t size,
                            const merkle_hash leaf_hash,
                            const merkle_hash *proof, size_t proof_len,
                            const merkle_hash root)
{
    merkle_hash r;
    uint64_t fn = index, sn;
    size_t i;

    if (index >= size)
        return -1;
    sn = size - 1;
    memcpy(r, leaf_hash, MERKLE_HASH_BYTES);
    for (i = 0; i < proof_len; i++) {
        if (sn == 0)
            return -1;
        if ((fn & 1) || fn == sn) {
            merkle_node_hash(proof[i], r, r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            merkle_node_hash(r, proof[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return -1;
    return sodium_memcmp(r, root, MERKLE_HASH_BYTES) == 0 ? 0 : -1;
}

int merkle_verify_consistency(uint64_t size1, uint64_t size2,
                              const merkle_hash root1,
                              const merkle_hash root2,
                              const merkle_hash *proof, size_t proof_len)
{
    merkle_hash fr, sr;
    uint64_t fn, sn;
    size_t i = 0;

    if (size1 > size2)
        return -1;
    if (size1 == size2)
        return proof_len == 0 &&
                       sodium_memcmp(root1, root2, MERKLE_HASH_BYTES) == 0
                   ? 0
                   : -1;
    if (size1 == 0)
        return proof_len == 0 ? 0 : -1;
    if (proof_len == 0)
        return -1;
    /* A first tree that is a complete subtree is its own first hash. */
    if ((size1 & (size1 - 1)) == 0) {
        memcpy(fr, root1, MERKLE_HASH_BYTES);
    } else {
        memcpy(fr, proof[0], MERKLE_HASH_BYTES);
        i = 1;
    }
    memcpy(sr, fr, MERKLE_HASH_BYTES);
    fn = size1 - 1;
    sn = size2 - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    for (; i < proof_len; i++) {
        if (sn == 0)
            return -1;
        if ((fn & 1) || fn == sn) {
            merkle_node_hash(proof[i], fr, fr);
            merkle_node_hash(proof[i], sr, sr);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            merkle_node_hash(sr, proof[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return -1;
    if (sodium_memcmp(fr, root1, MERKLE_HASH_BYTES) != 0 ||
        sodium_memcmp(sr, root2, MERKLE_HASH_BYTES) != 0)
        return -1;
    return 0;
}
