/*
 * merkle_nodes.c - RFC 9162 roots and proofs from stored complete subtrees.
 *
 * merkle.c builds proofs from the array of every leaf hash, which is the
 * definition and costs O(n). A log that answers proofs while it grows, and
 * an auditor holding an export's hash tiles, both already have the hash of
 * every complete, aligned subtree: the node at level l and index i covers
 * leaves [i << l, (i + 1) << l). From those, any tree is cheap:
 *
 *   The tree of n leaves is the right fold of the complete subtrees in the
 *   binary decomposition of n. For n = 6 = 4 + 2 that is
 *   H(node(2, 0), node(1, 2)), which is what RFC 9162's split at the largest
 *   power of two below n produces, since the left part of every split is a
 *   complete subtree and the right part is again such a fold.
 *
 * The proof builders below follow RFC 9162 2.1.3.1 and 2.1.4.1 step by step,
 * like the reference ones in merkle.c, and only replace "MTH of this range
 * of leaves" by that fold. Every range they ask for starts at a multiple of
 * the power of two at or above its length, so each part of the fold is an
 * aligned complete subtree that the caller stores. Root: at most 64 node
 * reads; a proof: at most 64 ranges of at most 64 reads each, and far fewer
 * in practice (a left sibling is always a single node).
 */
#include "merkle_nodes.h"

#include <string.h>

#include "once/once.h"

/* MTH of leaves [start, start + count), start aligned as described above. */
static int range_hash(merkle_node_fn node, void *ctx, uint64_t start,
                      uint64_t count, merkle_hash out)
{
    merkle_hash parts[64];
    size_t nparts = 0, i;
    uint64_t pos = start;
    int level, rc;

    if (count == 0) {
        merkle_empty_root(out);
        return 0;
    }
    for (level = 63; level >= 0; level--) {
        if (!((count >> level) & 1))
            continue;
        rc = node(ctx, (unsigned)level, pos >> level, parts[nparts]);
        if (rc < 0)
            return rc;
        nparts++;
        pos += (uint64_t)1 << level;
    }
    memcpy(out, parts[nparts - 1], MERKLE_HASH_BYTES);
    for (i = nparts - 1; i-- > 0;)
        merkle_node_hash(parts[i], out, out);
    return 0;
}

int merkle_nodes_root(merkle_node_fn node, void *ctx, uint64_t size,
                      merkle_hash out)
{
    return range_hash(node, ctx, 0, size, out);
}

/* Appends MTH of leaves [start, start + count) to the proof. A proof
 * outgrows MERKLE_MAX_PROOF only for trees of more than 2^63 leaves, which
 * no log reaches but a forged size might claim. */
static int append_range(merkle_node_fn node, void *ctx, uint64_t start,
                        uint64_t count, merkle_hash *proof, size_t *len)
{
    int rc;

    if (*len >= MERKLE_MAX_PROOF)
        return -ONCE_ERR_INVALID_ARGUMENT;
    rc = range_hash(node, ctx, start, count, proof[*len]);
    if (rc < 0)
        return rc;
    (*len)++;
    return 0;
}

/* Largest power of two strictly below n (n >= 2), written so that sizes
 * above 2^63 do not overflow. */
static uint64_t split_point(uint64_t n)
{
    uint64_t k = 1;

    while (k <= (n - 1) >> 1)
        k <<= 1;
    return k;
}

/* PATH(m, D[start : start + n]), deepest hash first. */
static int inclusion_path(merkle_node_fn node, void *ctx, uint64_t start,
                          uint64_t n, uint64_t m, merkle_hash *proof,
                          size_t *len)
{
    uint64_t k;
    int rc;

    if (n <= 1)
        return 0;
    k = split_point(n);
    if (m < k) {
        rc = inclusion_path(node, ctx, start, k, m, proof, len);
        return rc < 0 ? rc
                      : append_range(node, ctx, start + k, n - k, proof, len);
    }
    rc = inclusion_path(node, ctx, start + k, n - k, m - k, proof, len);
    return rc < 0 ? rc : append_range(node, ctx, start, k, proof, len);
}

int merkle_nodes_inclusion_proof(merkle_node_fn node, void *ctx,
                                 uint64_t index, uint64_t size,
                                 merkle_hash *proof, size_t *proof_len)
{
    *proof_len = 0;
    if (index >= size)
        return -ONCE_ERR_INVALID_ARGUMENT;
    return inclusion_path(node, ctx, 0, size, index, proof, proof_len);
}

/* SUBPROOF(m, D[start : start + n], complete_subtree). */
static int consistency_subproof(merkle_node_fn node, void *ctx,
                                uint64_t start, uint64_t m, uint64_t n,
                                int complete_subtree, merkle_hash *proof,
                                size_t *len)
{
    uint64_t k;
    int rc;

    if (m == n)
        return complete_subtree
                   ? 0
                   : append_range(node, ctx, start, n, proof, len);
    k = split_point(n);
    if (m <= k) {
        rc = consistency_subproof(node, ctx, start, m, k, complete_subtree,
                                  proof, len);
        return rc < 0 ? rc
                      : append_range(node, ctx, start + k, n - k, proof, len);
    }
    rc = consistency_subproof(node, ctx, start + k, m - k, n - k, 0, proof,
                              len);
    return rc < 0 ? rc : append_range(node, ctx, start, k, proof, len);
}

int merkle_nodes_consistency_proof(merkle_node_fn node, void *ctx,
                                   uint64_t m, uint64_t n, merkle_hash *proof,
                                   size_t *proof_len)
{
    *proof_len = 0;
    if (m == 0 || m > n)
        return -ONCE_ERR_INVALID_ARGUMENT;
    return consistency_subproof(node, ctx, 0, m, n, 1, proof, proof_len);
}
