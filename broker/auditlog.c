/*
 * auditlog.c - the exchange log's storage: an append-only RFC 9162 Merkle
 * tree kept in LMDB next to the records it describes.
 *
 * Why the tree lives in the broker's own LMDB environment: the promise is
 * that no answer leaves the broker before its leaf is durable. With the
 * leaves, the tree nodes and the checkpoint in the same environment as the
 * records, the writer thread commits a whole group of exchanges (records,
 * replies, leaves, nodes, one new signed checkpoint) in one transaction and
 * one fsync. Either all of it is on disk or none of it is; after a crash the
 * tree is exactly the one the last signed checkpoint describes, and a
 * checkpoint can never be durable without the leaves under it.
 *
 * Why nodes are stored: a receipt needs an inclusion proof to a signed
 * checkpoint, an auditor a consistency proof between two, and an export the
 * hash tiles. Recomputing those from the leaves costs O(n) hashes, which a
 * log of millions of exchanges cannot pay per request. So the log keeps
 * the hash of every complete, aligned subtree: leaf i is node (0, i), and
 * node (l + 1, j) = H(node(l, 2j), node(l, 2j + 1)) completes the moment
 * leaf (2j + 2) << l - 1 arrives. Any tree size's root, and every RFC 9162
 * proof, is then a fold of at most 64 nodes (merkle_nodes.c explains why).
 * These are also exactly the hashes C2SP tlog-tiles publishes: tile level
 * L holds the nodes of level 8L.
 *
 * Why only the levels from AUDITLOG_STORED_LEVEL (4) up are stored: all
 * levels make two 32-byte hashes per leaf, about 210 bytes a leaf in LMDB
 * with keys and page headers, more than the leaf itself, and the writer
 * paid them on every exchange before the answer could leave. A node below
 * level 4 covers at most 8 leaves, which are stored anyway and next to
 * each other in log_leaves, so it is recomputed when asked for (one cursor
 * walk, at most 8 leaf hashes and 7 node hashes); from level 4 up a node
 * is stored the moment its subtree completes, which makes one stored node
 * per 8 leaves. A root then costs at most 15 leaf hashes, an inclusion
 * proof at most 15 more than before (its four lowest siblings), and the
 * export's level-0 tile one leaf hash per leaf; the writer's append hashes
 * the 16 leaves of a level-4 subtree when the 16th arrives, as much
 * hashing as storing every level did. Homes written before this hold the
 * lower levels as well: they are never read (a computed node equals the
 * stored one) and never relied upon, and their next appends store only
 * levels from 4 up, the same nodes either way. The reverse does not hold:
 * an older broker needs every level and stops, loudly, on a home this
 * one has appended to.
 *
 * Why checkpoints are stored and checked before signing: the one thing a
 * log must never do is sign two different roots for the same size, since
 * that is what a split view (different histories shown to different
 * parties) looks like to an auditor. Signing is deterministic (Ed25519), so
 * the stored checkpoint for a size is returned as is when asked again, and
 * if the stored one disagrees with the tree we refuse loudly: it means the
 * tables were damaged or changed behind the broker's back.
 *
 * Keys are big-endian so that LMDB's byte order is index order: the leaves,
 * evidence and checkpoint tables are only ever appended to, with MDB_APPEND.
 * It puts the key after the last one without searching and, when the last
 * page is full, starts a new page instead of splitting it in the middle,
 * so the pages stay full and a commit writes fewer of them. It refuses,
 * with MDB_KEYEXIST, a key not above the last one, which cannot happen:
 * the next leaf index is log_meta's size, committed in the same
 * transaction as the leaves (an aborted group leaves neither), and the
 * next checkpoint is for the current size, which no stored checkpoint
 * exceeds. A refusal is reported as damage. Exports and checkpoint walks
 * are range scans.
 */
#include "auditlog.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "checkpoint.h"

#define NODE_KEY_BYTES 9
#define META_SIZE_KEY "size"

static void node_key(uint8_t key[NODE_KEY_BYTES], unsigned level,
                     uint64_t index)
{
    key[0] = (uint8_t)level;
    store_put_u64be(key + 1, index);
}

int auditlog_open(auditlog *log, const store *s, once_error *err)
{
    static const struct {
        const char *name;
        size_t offset;
    } tables[] = {
        {"log_leaves", offsetof(auditlog, leaves)},
        {"log_evidence", offsetof(auditlog, evidence)},
        {"log_nodes", offsetof(auditlog, nodes)},
        {"log_checkpoints", offsetof(auditlog, checkpoints)},
        {"log_meta", offsetof(auditlog, meta)},
    };
    MDB_txn *txn;
    size_t i;
    int rc;

    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0)
        return store_error(rc, "cannot begin the log's set-up transaction",
                           err);
    for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        MDB_dbi *dbi = (MDB_dbi *)((char *)log + tables[i].offset);

        rc = mdb_dbi_open(txn, tables[i].name, MDB_CREATE, dbi);
        if (rc == MDB_DBS_FULL) {
            mdb_txn_abort(txn);
            return once_error_set(err, ONCE_ERR_INTERNAL,
                                  "cannot open table %s: the LMDB "
                                  "environment allows too few named tables "
                                  "(raise maxdbs in store.c)",
                                  tables[i].name);
        }
        if (rc != 0) {
            mdb_txn_abort(txn);
            return store_error(rc, tables[i].name, err);
        }
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0)
        return store_error(rc, "cannot commit the log's tables", err);
    return 0;
}

int auditlog_size(MDB_txn *txn, const auditlog *log, uint64_t *size,
                  once_error *err)
{
    MDB_val key = {sizeof(META_SIZE_KEY) - 1, (void *)META_SIZE_KEY}, val;
    int rc = mdb_get(txn, log->meta, &key, &val);

    if (rc == MDB_NOTFOUND) {
        *size = 0;
        return 0;
    }
    if (rc != 0)
        return store_error(rc, "cannot read the log size", err);
    if (val.mv_size != 8)
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "the log size in log_meta is damaged");
    *size = store_get_u64be(val.mv_data);
    return 0;
}

/* One leaf hash per leaf of a subtree, for leaf_each. */
typedef struct subtree_leaves {
    merkle_hash *hashes;
    uint64_t first;
} subtree_leaves;

static int hash_leaf(uint64_t index, const MDB_val *leaf, void *arg)
{
    subtree_leaves *t = arg;

    merkle_leaf_hash(leaf->mv_data, leaf->mv_size,
                     t->hashes[index - t->first]);
    return 0;
}

/* Node (level, index), level <= AUDITLOG_STORED_LEVEL, from its leaves.
 * -ONCE_ERR_NOT_FOUND when a leaf of it is not stored (yet). */
static int node_from_leaves(MDB_txn *txn, const auditlog *log, unsigned level,
                            uint64_t index, merkle_hash out, once_error *err)
{
    merkle_hash hashes[(size_t)1 << AUDITLOG_STORED_LEVEL];
    subtree_leaves t = {hashes, index << level};
    uint64_t width = (uint64_t)1 << level, i;
    int rc;

    if (index >= (UINT64_MAX >> level)) /* past any log, and (index+1)<<level
                                           would wrap */
        return once_error_set(err, ONCE_ERR_NOT_FOUND,
                              "log node (level %u, index %llu) is past the "
                              "log", level, (unsigned long long)index);
    rc = auditlog_leaf_each(txn, log, t.first, t.first + width, hash_leaf, &t,
                            err);
    if (rc < 0)
        return rc;
    for (; width > 1; width >>= 1)
        for (i = 0; i < width / 2; i++)
            merkle_node_hash(hashes[2 * i], hashes[2 * i + 1], hashes[i]);
    memcpy(out, hashes[0], MERKLE_HASH_BYTES);
    return 0;
}

int auditlog_node(MDB_txn *txn, const auditlog *log, unsigned level,
                  uint64_t index, merkle_hash out, once_error *err)
{
    uint8_t k[NODE_KEY_BYTES];
    MDB_val key = {sizeof(k), k}, val;
    int rc;

    if (level < AUDITLOG_STORED_LEVEL)
        return node_from_leaves(txn, log, level, index, out, err);
    node_key(k, level, index);
    rc = mdb_get(txn, log->nodes, &key, &val);
    if (rc == MDB_NOTFOUND)
        return once_error_set(err, ONCE_ERR_NOT_FOUND,
                              "log node (level %u, index %llu) is not stored",
                              level, (unsigned long long)index);
    if (rc != 0)
        return store_error(rc, "cannot read a log node", err);
    if (val.mv_size != MERKLE_HASH_BYTES)
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "log node (level %u, index %llu) is damaged",
                              level, (unsigned long long)index);
    memcpy(out, val.mv_data, MERKLE_HASH_BYTES);
    return 0;
}

static int put_node(MDB_txn *txn, const auditlog *log, unsigned level,
                    uint64_t index, const merkle_hash hash, once_error *err)
{
    uint8_t k[NODE_KEY_BYTES];
    MDB_val key = {sizeof(k), k}, val = {MERKLE_HASH_BYTES, (void *)hash};
    int rc;

    node_key(k, level, index);
    rc = mdb_put(txn, log->nodes, &key, &val, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "log node (level %u, index %llu) exists "
                              "already: log_nodes and log_meta disagree",
                              level, (unsigned long long)index);
    if (rc != 0)
        return store_error(rc, "cannot store a log node", err);
    return 0;
}

/* Stores value under the next index of an append-only table. */
static int put_indexed(MDB_txn *txn, MDB_dbi dbi, uint64_t index,
                       const uint8_t *data, size_t len, const char *what,
                       once_error *err)
{
    uint8_t k[8];
    MDB_val key = {sizeof(k), k}, val = {len, (void *)data};
    int rc;

    store_put_u64be(k, index);
    rc = mdb_put(txn, dbi, &key, &val, MDB_APPEND | MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "%s %llu exists already: the log tables "
                              "disagree about the log size",
                              what, (unsigned long long)index);
    if (rc != 0)
        return store_error(rc, what, err);
    return 0;
}

int auditlog_append(MDB_txn *txn, const auditlog *log, const uint8_t *leaf,
                    size_t leaf_len, const uint8_t *evidence,
                    size_t evidence_len, uint64_t *index, once_error *err)
{
    uint8_t size_be[8];
    MDB_val key = {sizeof(META_SIZE_KEY) - 1, (void *)META_SIZE_KEY};
    MDB_val val = {sizeof(size_be), size_be};
    merkle_hash hash, left;
    uint64_t size, i;
    unsigned level;
    int rc;

    if (leaf == NULL || leaf_len == 0 || leaf_len > AUDITLOG_MAX_LEAF)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a log leaf must be 1..%d bytes",
                              AUDITLOG_MAX_LEAF);
    if (evidence == NULL || evidence_len == 0 ||
        evidence_len > AUDITLOG_MAX_EVIDENCE)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "log evidence must be 1..%d bytes",
                              AUDITLOG_MAX_EVIDENCE);
    rc = auditlog_size(txn, log, &size, err);
    if (rc < 0)
        return rc;
    rc = put_indexed(txn, log->leaves, size, leaf, leaf_len, "log leaf", err);
    if (rc == 0)
        rc = put_indexed(txn, log->evidence, size, evidence, evidence_len,
                         "log evidence", err);
    if (rc < 0)
        return rc;
    /* Leaf `size` completes a stored subtree when it ends a run of
     * 2^AUDITLOG_STORED_LEVEL leaves, and then one more per further
     * trailing one-bit of its index; the left half of each is stored. */
    i = size >> AUDITLOG_STORED_LEVEL;
    if (((size + 1) & (((uint64_t)1 << AUDITLOG_STORED_LEVEL) - 1)) == 0) {
        rc = node_from_leaves(txn, log, AUDITLOG_STORED_LEVEL, i, hash, err);
        if (rc == 0)
            rc = put_node(txn, log, AUDITLOG_STORED_LEVEL, i, hash, err);
        for (level = AUDITLOG_STORED_LEVEL; rc == 0 && (i & 1);
             level++, i >>= 1) {
            rc = auditlog_node(txn, log, level, i - 1, left, err);
            if (rc == 0) {
                merkle_node_hash(left, hash, hash);
                rc = put_node(txn, log, level + 1, i >> 1, hash, err);
            }
        }
    }
    if (rc < 0)
        return rc;
    store_put_u64be(size_be, size + 1);
    rc = mdb_put(txn, log->meta, &key, &val, 0);
    if (rc != 0)
        return store_error(rc, "cannot store the log size", err);
    *index = size;
    return 0;
}

/* merkle_node_fn over the stored nodes; the error goes to ctx->err. */
typedef struct node_reader {
    MDB_txn *txn;
    const auditlog *log;
    once_error *err;
} node_reader;

static int read_node(void *ctx, unsigned level, uint64_t index,
                     merkle_hash out)
{
    node_reader *r = ctx;
    int rc = auditlog_node(r->txn, r->log, level, index, out, r->err);

    /* Every node a root or proof of a size up to the current one asks for
     * is complete, so a missing one means damage, not a caller error. */
    if (rc == -ONCE_ERR_NOT_FOUND)
        return once_error_set(r->err, ONCE_ERR_INTERNAL,
                              "log node (level %u, index %llu) is missing "
                              "from log_nodes or log_leaves",
                              level, (unsigned long long)index);
    return rc;
}

/* Checks that `size` does not exceed the current size. */
static int check_size(MDB_txn *txn, const auditlog *log, uint64_t size,
                      once_error *err)
{
    uint64_t current;
    int rc = auditlog_size(txn, log, &current, err);

    if (rc < 0)
        return rc;
    if (size > current)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "tree size %llu is past the log's %llu leaves",
                              (unsigned long long)size,
                              (unsigned long long)current);
    return 0;
}

int auditlog_root(MDB_txn *txn, const auditlog *log, uint64_t size,
                  merkle_hash root, once_error *err)
{
    node_reader r = {txn, log, err};
    int rc = check_size(txn, log, size, err);

    if (rc < 0)
        return rc;
    return merkle_nodes_root(read_node, &r, size, root);
}

int auditlog_inclusion_proof(MDB_txn *txn, const auditlog *log,
                             uint64_t index, uint64_t size, merkle_hash *proof,
                             size_t *proof_len, once_error *err)
{
    node_reader r = {txn, log, err};
    int rc = check_size(txn, log, size, err);

    *proof_len = 0;
    if (rc < 0)
        return rc;
    if (index >= size)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "leaf %llu is not in a tree of %llu leaves",
                              (unsigned long long)index,
                              (unsigned long long)size);
    return merkle_nodes_inclusion_proof(read_node, &r, index, size, proof,
                                        proof_len);
}

int auditlog_consistency_proof(MDB_txn *txn, const auditlog *log, uint64_t m,
                               uint64_t n, merkle_hash *proof,
                               size_t *proof_len, once_error *err)
{
    node_reader r = {txn, log, err};
    int rc = check_size(txn, log, n, err);

    *proof_len = 0;
    if (rc < 0)
        return rc;
    if (m == 0 || m > n)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "no consistency proof from size %llu to %llu",
                              (unsigned long long)m, (unsigned long long)n);
    return merkle_nodes_consistency_proof(read_node, &r, m, n, proof,
                                          proof_len);
}

int auditlog_checkpoint_get(MDB_txn *txn, const auditlog *log, uint64_t size,
                            MDB_val *note, once_error *err)
{
    uint8_t k[8];
    MDB_val key = {sizeof(k), k};
    int rc;

    store_put_u64be(k, size);
    rc = mdb_get(txn, log->checkpoints, &key, note);
    if (rc == MDB_NOTFOUND)
        return once_error_set(err, ONCE_ERR_NOT_FOUND,
                              "no checkpoint is stored for tree size %llu",
                              (unsigned long long)size);
    if (rc != 0)
        return store_error(rc, "cannot read a checkpoint", err);
    return 0;
}

int auditlog_sign_checkpoint(MDB_txn *txn, const auditlog *log,
                             const char *origin, const once_keypair *kp,
                             char *note, size_t note_cap, once_error *err)
{
    uint8_t k[8];
    MDB_val key = {sizeof(k), k}, stored, val;
    checkpoint c, old;
    once_error gerr, verr;
    int rc, len;

    if (strlen(origin) > CHECKPOINT_MAX_ORIGIN)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "checkpoint origin is over %d bytes",
                              CHECKPOINT_MAX_ORIGIN);
    memset(&c, 0, sizeof(c));
    strcpy(c.origin, origin);
    rc = auditlog_size(txn, log, &c.size, err);
    if (rc == 0)
        rc = auditlog_root(txn, log, c.size, c.root, err);
    if (rc < 0)
        return rc;
    rc = auditlog_checkpoint_get(txn, log, c.size, &stored, &gerr);
    if (rc < 0 && rc != -ONCE_ERR_NOT_FOUND) {
        if (err != NULL)
            *err = gerr;
        return rc;
    }
    if (rc == 0) {
        if (checkpoint_verify(stored.mv_data, stored.mv_size, origin,
                              kp->public_key, &old, &verr) < 0)
            return once_error_set(err, ONCE_ERR_INTERNAL,
                                  "the stored checkpoint for tree size %llu "
                                  "is not one this key signed as %s (%s); "
                                  "refusing to sign another",
                                  (unsigned long long)c.size, origin,
                                  verr.message);
        if (old.size != c.size ||
            sodium_memcmp(old.root, c.root, MERKLE_HASH_BYTES) != 0)
            return once_error_set(err, ONCE_ERR_INTERNAL,
                                  "the tree of size %llu no longer has the "
                                  "root its stored checkpoint signed; "
                                  "refusing to sign a second root for it",
                                  (unsigned long long)c.size);
        if (stored.mv_size >= note_cap)
            return once_error_set(err, ONCE_ERR_TOO_LARGE,
                                  "checkpoint does not fit in %zu bytes",
                                  note_cap);
        memcpy(note, stored.mv_data, stored.mv_size);
        note[stored.mv_size] = '\0';
        return (int)stored.mv_size;
    }
    len = checkpoint_sign(&c, origin, kp, note, note_cap, err);
    if (len < 0)
        return len;
    store_put_u64be(k, c.size);
    val.mv_size = (size_t)len;
    val.mv_data = note;
    rc = mdb_put(txn, log->checkpoints, &key, &val,
                 MDB_APPEND | MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "a checkpoint for a tree larger than %llu "
                              "leaves is stored: the log tables disagree",
                              (unsigned long long)c.size);
    if (rc != 0)
        return store_error(rc, "cannot store a checkpoint", err);
    return len;
}

/* Positions a cursor on the checkpoint with the largest size <= max. */
static int floor_entry(MDB_cursor *cur, uint64_t max_size, MDB_val *key,
                       MDB_val *val)
{
    uint8_t k[8];
    int rc;

    store_put_u64be(k, max_size);
    key->mv_size = sizeof(k);
    key->mv_data = k;
    rc = mdb_cursor_get(cur, key, val, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND)
        return mdb_cursor_get(cur, key, val, MDB_LAST);
    if (rc != 0)
        return rc;
    if (key->mv_size == 8 && store_get_u64be(key->mv_data) == max_size)
        return 0;
    return mdb_cursor_get(cur, key, val, MDB_PREV);
}

int auditlog_checkpoint_floor(MDB_txn *txn, const auditlog *log,
                              uint64_t max_size, uint64_t *size,
                              MDB_val *note, once_error *err)
{
    MDB_cursor *cur;
    MDB_val key;
    int rc;

    rc = mdb_cursor_open(txn, log->checkpoints, &cur);
    if (rc != 0)
        return store_error(rc, "cannot read the checkpoints", err);
    rc = floor_entry(cur, max_size, &key, note);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return once_error_set(err, ONCE_ERR_NOT_FOUND,
                              "no checkpoint is stored for a tree size up to "
                              "%llu",
                              (unsigned long long)max_size);
    if (rc != 0)
        return store_error(rc, "cannot read the checkpoints", err);
    if (key.mv_size != 8)
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "a key in log_checkpoints is damaged");
    *size = store_get_u64be(key.mv_data);
    return 0;
}

int auditlog_checkpoint_latest(MDB_txn *txn, const auditlog *log,
                               uint64_t *size, MDB_val *note, once_error *err)
{
    return auditlog_checkpoint_floor(txn, log, UINT64_MAX, size, note, err);
}

int auditlog_checkpoint_each(MDB_txn *txn, const auditlog *log, uint64_t from,
                             uint64_t to,
                             int (*fn)(uint64_t size, const MDB_val *note,
                                       void *arg),
                             void *arg, once_error *err)
{
    MDB_cursor *cur;
    MDB_val key, val;
    uint8_t k[8];
    uint64_t size;
    int rc;

    rc = mdb_cursor_open(txn, log->checkpoints, &cur);
    if (rc != 0)
        return store_error(rc, "cannot read the checkpoints", err);
    store_put_u64be(k, from);
    key.mv_size = sizeof(k);
    key.mv_data = k;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (key.mv_size != 8) {
            mdb_cursor_close(cur);
            return once_error_set(err, ONCE_ERR_INTERNAL,
                                  "a key in log_checkpoints is damaged");
        }
        size = store_get_u64be(key.mv_data);
        if (size > to)
            break;
        rc = fn(size, &val, arg);
        if (rc != 0) {
            mdb_cursor_close(cur);
            return rc;
        }
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_error(rc, "cannot read the checkpoints", err);
    return 0;
}

static int get_indexed(MDB_txn *txn, MDB_dbi dbi, uint64_t index,
                       MDB_val *out, const char *what, once_error *err)
{
    uint8_t k[8];
    MDB_val key = {sizeof(k), k};
    int rc;

    store_put_u64be(k, index);
    rc = mdb_get(txn, dbi, &key, out);
    if (rc == MDB_NOTFOUND)
        return once_error_set(err, ONCE_ERR_NOT_FOUND, "no %s at index %llu",
                              what, (unsigned long long)index);
    if (rc != 0)
        return store_error(rc, what, err);
    return 0;
}

int auditlog_leaf_get(MDB_txn *txn, const auditlog *log, uint64_t index,
                      MDB_val *leaf, once_error *err)
{
    return get_indexed(txn, log->leaves, index, leaf, "log leaf", err);
}

int auditlog_evidence_get(MDB_txn *txn, const auditlog *log, uint64_t index,
                          MDB_val *evidence, once_error *err)
{
    return get_indexed(txn, log->evidence, index, evidence, "log evidence",
                       err);
}

int auditlog_leaf_each(MDB_txn *txn, const auditlog *log, uint64_t from,
                       uint64_t to,
                       int (*fn)(uint64_t index, const MDB_val *leaf,
                                 void *arg),
                       void *arg, once_error *err)
{
    uint8_t k[8];
    MDB_val key = {sizeof(k), k}, val;
    MDB_cursor *cur;
    uint64_t index;
    int rc, ret = 0;

    if (from >= to)
        return 0;
    if ((rc = mdb_cursor_open(txn, log->leaves, &cur)) != 0)
        return store_error(rc, "log leaf", err);
    store_put_u64be(k, from);
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_KEY);
    for (index = from; rc == 0 && index < to; index++) {
        /* Keys are u64be indexes, so the next key is the next leaf. */
        if (key.mv_size != 8 || store_get_u64be(key.mv_data) != index)
            break;
        if ((ret = fn(index, &val, arg)) != 0)
            break;
        if (index + 1 < to)
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (ret != 0)
        return ret;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_error(rc, "log leaf", err);
    if (index < to)
        return once_error_set(err, ONCE_ERR_NOT_FOUND, "no log leaf at index "
                              "%llu", (unsigned long long)index);
    return 0;
}
