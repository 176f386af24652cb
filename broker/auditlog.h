/*
 * auditlog.h - the exchange log: leaves, evidence, tree nodes and signed
 * checkpoints in the broker's LMDB environment.
 *
 * Tables (owned by auditlog.c; nothing else opens them):
 *
 *   log_leaves       u64be index -> LogLeaf bytes, exactly as hashed
 *   log_evidence     u64be index -> the envelope bytes as received
 *   log_nodes        u8 level, u64be index -> 32-byte hash of the complete
 *                    subtree over leaves [index << level, (index+1) << level),
 *                    for level >= AUDITLOG_STORED_LEVEL (lower ones are
 *                    recomputed from log_leaves; homes written before also
 *                    hold them, unread)
 *   log_checkpoints  u64be tree size -> signed note text (no NUL)
 *   log_meta         "size" -> u64be number of leaves
 *
 * Every function except auditlog_open works inside the caller's
 * transaction, so the broker's writer commits records, replies, leaves,
 * nodes and the new checkpoint in one LMDB transaction, and an aborted
 * transaction leaves no trace in the log. Read functions take a read-only
 * or a write transaction; MDB_val results point into the map and live as
 * long as the transaction.
 */
#ifndef ONCE_AUDITLOG_H
#define ONCE_AUDITLOG_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "merkle.h"
#include "merkle_nodes.h"
#include "once/once.h"
#include "store.h"

/* Entry bundles of the C2SP tlog-tiles export prefix each leaf with a
 * 16-bit length. */
#define AUDITLOG_MAX_LEAF 65535
#define AUDITLOG_MAX_EVIDENCE ONCE_MAX_MESSAGE

/* The lowest level of log_nodes the log stores (auditlog.c explains). */
#define AUDITLOG_STORED_LEVEL 4

typedef struct auditlog {
    MDB_dbi leaves;
    MDB_dbi evidence;
    MDB_dbi nodes;
    MDB_dbi checkpoints;
    MDB_dbi meta;
} auditlog;

/* Opens (creating) the five tables in a write transaction of its own. Call
 * once at start-up, before other threads use the environment, and not while
 * this thread holds a write transaction. */
int auditlog_open(auditlog *log, const store *s, once_error *err);

/* Appends one leaf (1..AUDITLOG_MAX_LEAF bytes) with its evidence
 * (1..AUDITLOG_MAX_EVIDENCE bytes): stores both and every subtree of level
 * AUDITLOG_STORED_LEVEL or more the leaf completes (none for 15 leaves in
 * 16, one in 8 on average). *index receives the leaf's index. */
int auditlog_append(MDB_txn *txn, const auditlog *log, const uint8_t *leaf,
                    size_t leaf_len, const uint8_t *evidence,
                    size_t evidence_len, uint64_t *index, once_error *err);

int auditlog_size(MDB_txn *txn, const auditlog *log, uint64_t *size,
                  once_error *err);

/* One node (see log_nodes above): stored, or below AUDITLOG_STORED_LEVEL
 * computed from its leaves. -ONCE_ERR_NOT_FOUND when that subtree is not
 * complete yet. */
int auditlog_node(MDB_txn *txn, const auditlog *log, unsigned level,
                  uint64_t index, merkle_hash out, once_error *err);

/* Root of the tree of the first `size` leaves, any size up to the current
 * one, from at most 64 nodes (at most 15 leaves for the low ones). */
int auditlog_root(MDB_txn *txn, const auditlog *log, uint64_t size,
                  merkle_hash root, once_error *err);

/* RFC 9162 proofs from the nodes, equal hash for hash to the reference
 * builders of merkle.c. proof holds MERKLE_MAX_PROOF hashes. Sizes above the
 * current one, index >= size and m outside 1..n are
 * -ONCE_ERR_INVALID_ARGUMENT. */
int auditlog_inclusion_proof(MDB_txn *txn, const auditlog *log,
                             uint64_t index, uint64_t size, merkle_hash *proof,
                             size_t *proof_len, once_error *err);
int auditlog_consistency_proof(MDB_txn *txn, const auditlog *log, uint64_t m,
                               uint64_t n, merkle_hash *proof,
                               size_t *proof_len, once_error *err);

/* Signs the checkpoint of the current size with key name = origin, stores
 * it and copies the note (NUL-terminated) into note. When a checkpoint of
 * this size is stored already, returns that one instead of signing again,
 * after checking that it is signed by kp as `origin` over the same root;
 * anything else is refused with -ONCE_ERR_INTERNAL, so the log never signs
 * two roots for one size. Returns the note's length or a negative error. */
int auditlog_sign_checkpoint(MDB_txn *txn, const auditlog *log,
                             const char *origin, const once_keypair *kp,
                             char *note, size_t note_cap, once_error *err);

/* Stored checkpoints. get: the one of exactly `size`; floor: the one with
 * the largest size <= max_size; latest: the newest. -ONCE_ERR_NOT_FOUND when
 * there is none. */
int auditlog_checkpoint_get(MDB_txn *txn, const auditlog *log, uint64_t size,
                            MDB_val *note, once_error *err);
int auditlog_checkpoint_floor(MDB_txn *txn, const auditlog *log,
                              uint64_t max_size, uint64_t *size,
                              MDB_val *note, once_error *err);
int auditlog_checkpoint_latest(MDB_txn *txn, const auditlog *log,
                               uint64_t *size, MDB_val *note,
                               once_error *err);
/* Calls fn for every stored checkpoint with from <= size <= to, in size
 * order; a non-zero return from fn stops the walk and is returned. */
int auditlog_checkpoint_each(MDB_txn *txn, const auditlog *log, uint64_t from,
                             uint64_t to,
                             int (*fn)(uint64_t size, const MDB_val *note,
                                       void *arg),
                             void *arg, once_error *err);

/* The leaf bytes and the evidence of leaf `index`, zero-copy.
 * -ONCE_ERR_NOT_FOUND past the end of the log. */
int auditlog_leaf_get(MDB_txn *txn, const auditlog *log, uint64_t index,
                      MDB_val *leaf, once_error *err);
int auditlog_evidence_get(MDB_txn *txn, const auditlog *log, uint64_t index,
                          MDB_val *evidence, once_error *err);

/* Calls fn with the bytes of every leaf from <= index < to, in order,
 * through one cursor (a leaf_get each would descend the tree each time);
 * a non-zero return from fn stops the walk and is returned.
 * -ONCE_ERR_NOT_FOUND when a leaf of the range is missing. */
int auditlog_leaf_each(MDB_txn *txn, const auditlog *log, uint64_t from,
                       uint64_t to,
                       int (*fn)(uint64_t index, const MDB_val *leaf,
                                 void *arg),
                       void *arg, once_error *err);

#endif
