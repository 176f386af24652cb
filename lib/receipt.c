/*
 * receipt.c - what a department keeps of the broker's word that a request
 * or a write is in the log: the leaf index, and on request (want_proof) the
 * signed checkpoint, the inclusion proof and the leaf itself.
 *
 * A receipt is worth something only if the department can check it without
 * trusting the broker later: once_receipt_verify checks the checkpoint's
 * signature with the log's key, that the leaf names the digest of the very
 * envelope this client sent (client_exchange records it before sending), and
 * that the proof leads from the leaf to the checkpoint's root. The client
 * core (client.c) fills a receipt from an Error answer, the calls
 * (client_calls.c) from a Response; both go through client_receipt_copy,
 * which bounds what the broker sent before it allocates for it.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "checkpoint.h"
#include "client_internal.h"
#include "merkle.h"
#include "once/once.h"

void once_receipt_clear(once_receipt *receipt)
{
    if (receipt == NULL)
        return;
    free(receipt->checkpoint);
    free(receipt->proof);
    free(receipt->leaf);
    memset(receipt, 0, sizeof(*receipt));
}

int client_receipt_copy(once_receipt *out, const Once__Receipt *in,
                        once_error *err)
{
    size_t i;

    if (out == NULL || in == NULL)
        return 0;
    out->logged = 1;
    out->leaf_index = in->leaf_index;
    if (in->checkpoint.len == 0)
        return 0;
    if (in->n_proof > 64 || in->leaf.len == 0)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "the broker sent a receipt with a checkpoint "
                              "but no usable proof or leaf");
    out->checkpoint = malloc(in->checkpoint.len + 1);
    out->proof = malloc(in->n_proof > 0 ? in->n_proof * 32 : 1);
    out->leaf = malloc(in->leaf.len);
    if (out->checkpoint == NULL || out->proof == NULL || out->leaf == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    memcpy(out->checkpoint, in->checkpoint.data, in->checkpoint.len);
    out->checkpoint[in->checkpoint.len] = '\0';
    out->checkpoint_len = in->checkpoint.len;
    for (i = 0; i < in->n_proof; i++) {
        if (in->proof[i].len != 32)
            return once_error_set(err, ONCE_ERR_MALFORMED,
                                  "the broker sent a proof hash of %zu "
                                  "bytes", in->proof[i].len);
        memcpy(out->proof[i], in->proof[i].data, 32);
    }
    out->proof_len = in->n_proof;
    memcpy(out->leaf, in->leaf.data, in->leaf.len);
    out->leaf_len = in->leaf.len;
    out->has_proof = 1;
    return 0;
}

int once_receipt_verify(const once_receipt *receipt,
                        const uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES],
                        const char *origin, once_error *err)
{
    Once__LogLeaf *leaf;
    merkle_hash leaf_hash;
    once_error why;
    checkpoint cp;
    int rc;

    if (receipt == NULL || broker_pk == NULL || origin == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "receipt, broker key and origin are required");
    if (!receipt->has_proof)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "the receipt carries no proof; ask for one "
                              "with want_proof");
    rc = checkpoint_verify(receipt->checkpoint, receipt->checkpoint_len,
                           origin, broker_pk, &cp, &why);
    if (rc < 0)
        return once_error_set(err, ONCE_ERR_BAD_SIGNATURE,
                              "the receipt's checkpoint: %s", why.message);
    leaf = once__log_leaf__unpack(NULL, receipt->leaf_len, receipt->leaf);
    if (leaf == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "the receipt's leaf does not decode");
    rc = leaf->envelope_digest.len == 32 &&
         sodium_memcmp(leaf->envelope_digest.data, receipt->envelope_digest,
                       32) == 0;
    once__log_leaf__free_unpacked(leaf, NULL);
    if (!rc)
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "the receipt's leaf is about another envelope "
                              "than the one this client sent");
    merkle_leaf_hash(receipt->leaf, receipt->leaf_len, leaf_hash);
    if (merkle_verify_inclusion(receipt->leaf_index, cp.size, leaf_hash,
                                (const merkle_hash *)receipt->proof,
                                receipt->proof_len, cp.root) < 0)
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "the inclusion proof of leaf %llu does not "
                              "lead to the checkpoint's root (size %llu)",
                              (unsigned long long)receipt->leaf_index,
                              (unsigned long long)cp.size);
    return 0;
}
