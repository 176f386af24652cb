/*
 * test_auditlog.c - the log's LMDB storage against the reference Merkle
 * code: roots and proofs from stored nodes equal merkle.c's for every size
 * across the first tile boundary, checkpoints are never signed twice with
 * different roots, and an aborted transaction leaves no trace. Nodes below
 * AUDITLOG_STORED_LEVEL are computed, not stored, and a home written when
 * every level was stored goes on with the same roots and proofs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "audit_hash.h"
#include "auditlog.h"
#include "checkpoint.h"
#include "merkle.h"
#include "store.h"
#include "temp_dir.h"

#define ORIGIN "once.test/log"
#define LEAVES 300

typedef struct fixture {
    char dir[PATH_MAX];
    store s;
    auditlog log;
    merkle_hash hashes[LEAVES];
    once_keypair key;
} fixture;

static void leaf_bytes(uint64_t i, char *buf, size_t cap, size_t *len)
{
    /* Lengths vary so leaves do not all hash the same number of blocks. */
    int n = snprintf(buf, cap, "leaf %llu %.*s", (unsigned long long)i,
                     (int)(i % 97), "abcdefghijklmnopqrstuvwxyzabcdefghijklmn"
                                   "opqrstuvwxyzabcdefghijklmnopqrstuvwxyzab"
                                   "cdefghijklmnopqrstuvwxyz");
    *len = (size_t)n;
}

static void append_leaves(fixture *f, MDB_txn *txn, uint64_t from,
                          uint64_t to)
{
    char leaf[256], evidence[64];
    size_t len;
    uint64_t i, index;
    once_error err;

    for (i = from; i < to; i++) {
        leaf_bytes(i, leaf, sizeof(leaf), &len);
        snprintf(evidence, sizeof(evidence), "evidence %llu",
                 (unsigned long long)i);
        assert_int_equal(auditlog_append(txn, &f->log, (uint8_t *)leaf, len,
                                         (uint8_t *)evidence,
                                         strlen(evidence), &index, &err),
                         0);
        assert_int_equal(index, i);
        merkle_leaf_hash((uint8_t *)leaf, len, f->hashes[i]);
    }
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    uint8_t seed[32];
    once_error err;

    if (f == NULL || once_init() < 0)
        return -1;
    if (temp_dir_make(f->dir, sizeof(f->dir), "test-auditlog") < 0)
        return -1;
    if (store_open(&f->s, f->dir, 64u << 20, &err) < 0) {
        fprintf(stderr, "store_open: %s\n", err.message);
        return -1;
    }
    if (auditlog_open(&f->log, &f->s, &err) < 0) {
        fprintf(stderr, "auditlog_open: %s\n", err.message);
        return -1;
    }
    memset(seed, 0x42, sizeof(seed));
    once_keypair_from_seed(&f->key, seed);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    store_close(&f->s);
    temp_dir_remove(f->dir);
    free(f);
    return 0;
}

static void test_empty_log(void **state)
{
    fixture *f = *state;
    merkle_hash root, empty;
    uint64_t size;
    MDB_txn *txn;
    MDB_val v;

    assert_int_equal(store_begin(&f->s, 1, &txn, NULL), 0);
    assert_int_equal(auditlog_size(txn, &f->log, &size, NULL), 0);
    assert_int_equal(size, 0);
    assert_int_equal(auditlog_root(txn, &f->log, 0, root, NULL), 0);
    merkle_root(NULL, 0, empty);
    assert_memory_equal(root, empty, MERKLE_HASH_BYTES);
    assert_int_equal(auditlog_root(txn, &f->log, 1, root, NULL),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(auditlog_leaf_get(txn, &f->log, 0, &v, NULL),
                     -ONCE_ERR_NOT_FOUND);
    assert_int_equal(auditlog_checkpoint_latest(txn, &f->log, &size, &v, NULL),
                     -ONCE_ERR_NOT_FOUND);
    mdb_txn_abort(txn);
}

/* The root of every tree size 0..last equals the reference builder's. */
static void check_roots_to(fixture *f, MDB_txn *txn, uint64_t last)
{
    merkle_hash root, ref;
    uint64_t n;

    for (n = 0; n <= last; n++) {
        assert_int_equal(auditlog_root(txn, &f->log, n, root, NULL), 0);
        merkle_root(f->hashes, n, ref);
        assert_memory_equal(root, ref, MERKLE_HASH_BYTES);
    }
}

static void check_proofs_at(fixture *f, MDB_txn *txn, uint64_t n)
{
    merkle_hash root, proof[MERKLE_MAX_PROOF], ref[64];
    size_t len, ref_len;
    uint64_t i, m;

    assert_int_equal(auditlog_root(txn, &f->log, n, root, NULL), 0);
    for (i = 0; i < n; i++) {
        assert_int_equal(auditlog_inclusion_proof(txn, &f->log, i, n, proof,
                                                  &len, NULL),
                         0);
        assert_int_equal(merkle_inclusion_proof(f->hashes, n, i, ref,
                                                &ref_len),
                         0);
        assert_int_equal(len, ref_len);
        assert_memory_equal(proof, ref, len * MERKLE_HASH_BYTES);
        assert_int_equal(merkle_verify_inclusion(i, n, f->hashes[i], proof,
                                                 len, root),
                         0);
    }
    for (m = 1; m <= n; m++) {
        merkle_hash old_root;

        assert_int_equal(auditlog_consistency_proof(txn, &f->log, m, n, proof,
                                                    &len, NULL),
                         0);
        assert_int_equal(merkle_consistency_proof(f->hashes, m, n, ref,
                                                  &ref_len),
                         0);
        assert_int_equal(len, ref_len);
        assert_memory_equal(proof, ref, len * MERKLE_HASH_BYTES);
        assert_int_equal(auditlog_root(txn, &f->log, m, old_root, NULL), 0);
        assert_int_equal(merkle_verify_consistency(m, n, old_root, root, proof,
                                                   len),
                         0);
    }
}

static void test_roots_and_proofs_match_reference(void **state)
{
    /* Sizes around the powers of two and the tile boundary at 256. */
    static const uint64_t proof_sizes[] = {1,   2,   3,   4,   5,   7,   8,
                                           9,   15,  16,  17,  31,  32,  33,
                                           63,  64,  65,  127, 128, 129, 255,
                                           256, 257, 258, 299, 300};
    fixture *f = *state;
    merkle_hash root, ref;
    MDB_txn *txn;
    uint64_t n, size;
    size_t i;

    /* Several commits, like the broker's group commits. */
    for (n = 0; n < LEAVES; n += 37) {
        assert_int_equal(store_begin(&f->s, 0, &txn, NULL), 0);
        append_leaves(f, txn, n, n + 37 < LEAVES ? n + 37 : LEAVES);
        assert_int_equal(store_commit(txn, NULL), 0);
    }
    assert_int_equal(store_begin(&f->s, 1, &txn, NULL), 0);
    assert_int_equal(auditlog_size(txn, &f->log, &size, NULL), 0);
    assert_int_equal(size, LEAVES);
    check_roots_to(f, txn, LEAVES);
    for (i = 0; i < sizeof(proof_sizes) / sizeof(proof_sizes[0]); i++)
        check_proofs_at(f, txn, proof_sizes[i]);
    /* Nodes are stored for complete subtrees only. */
    assert_int_equal(auditlog_node(txn, &f->log, 8, 0, root, NULL), 0);
    merkle_root(f->hashes, 256, ref);
    assert_memory_equal(root, ref, MERKLE_HASH_BYTES);
    assert_int_equal(auditlog_node(txn, &f->log, 8, 1, root, NULL),
                     -ONCE_ERR_NOT_FOUND);
    assert_int_equal(auditlog_node(txn, &f->log, 2, 74, root, NULL), 0);
    assert_int_equal(auditlog_node(txn, &f->log, 2, 75, root, NULL),
                     -ONCE_ERR_NOT_FOUND);
    mdb_txn_abort(txn);
}

/* The raw log_nodes entry (level, index), as auditlog.c keys it. */
static int raw_node(MDB_txn *txn, fixture *f, unsigned level, uint64_t index,
                    MDB_val *v)
{
    uint8_t key[9];
    MDB_val k = {sizeof(key), key};
    int i;

    key[0] = (uint8_t)level;
    for (i = 0; i < 8; i++)
        key[1 + i] = (uint8_t)(index >> (56 - 8 * i));
    return mdb_get(txn, f->log.nodes, &k, v);
}

static void test_low_levels_are_computed(void **state)
{
    fixture *f = *state;
    merkle_hash h, ref;
    MDB_txn *txn;
    MDB_val v;
    uint64_t n;
    unsigned level;

    /* Commits of 7: level-4 subtrees complete in the middle of one. */
    for (n = 0; n < 40; n += 7) {
        assert_int_equal(store_begin(&f->s, 0, &txn, NULL), 0);
        append_leaves(f, txn, n, n + 7 < 40 ? n + 7 : 40);
        assert_int_equal(store_commit(txn, NULL), 0);
    }
    assert_int_equal(store_begin(&f->s, 1, &txn, NULL), 0);
    for (level = 0; level < AUDITLOG_STORED_LEVEL; level++)
        assert_int_equal(raw_node(txn, f, level, 0, &v), MDB_NOTFOUND);
    assert_int_equal(raw_node(txn, f, 4, 0, &v), 0);
    merkle_root(f->hashes, 16, ref);
    assert_memory_equal(v.mv_data, ref, MERKLE_HASH_BYTES);
    assert_int_equal(raw_node(txn, f, 4, 1, &v), 0);
    merkle_root(f->hashes + 16, 16, ref);
    assert_memory_equal(v.mv_data, ref, MERKLE_HASH_BYTES);
    assert_int_equal(raw_node(txn, f, 5, 0, &v), 0);
    merkle_root(f->hashes, 32, ref);
    assert_memory_equal(v.mv_data, ref, MERKLE_HASH_BYTES);
    assert_int_equal(raw_node(txn, f, 4, 2, &v), MDB_NOTFOUND);
    /* Asked for, the low levels are the hashes of their leaves. */
    assert_int_equal(auditlog_node(txn, &f->log, 0, 39, h, NULL), 0);
    assert_memory_equal(h, f->hashes[39], MERKLE_HASH_BYTES);
    assert_int_equal(auditlog_node(txn, &f->log, 3, 4, h, NULL), 0);
    merkle_root(f->hashes + 32, 8, ref);
    assert_memory_equal(h, ref, MERKLE_HASH_BYTES);
    assert_int_equal(auditlog_node(txn, &f->log, 3, 5, h, NULL),
                     -ONCE_ERR_NOT_FOUND);
    assert_int_equal(auditlog_node(txn, &f->log, 2, UINT64_MAX / 2, h, NULL),
                     -ONCE_ERR_NOT_FOUND);
    check_roots_to(f, txn, 40);
    mdb_txn_abort(txn);
}

/* Stores every node of levels 0..AUDITLOG_STORED_LEVEL-1 complete within
 * the first n leaves, as the log did before it stopped storing them. */
static void store_low_levels(fixture *f, MDB_txn *txn, uint64_t n)
{
    uint8_t key[9];
    merkle_hash h;
    MDB_val k = {sizeof(key), key}, v = {MERKLE_HASH_BYTES, h};
    unsigned level;
    uint64_t j;
    int i;

    for (level = 0; level < AUDITLOG_STORED_LEVEL; level++)
        for (j = 0; (j + 1) << level <= n; j++) {
            merkle_root(f->hashes + (j << level), (uint64_t)1 << level, h);
            key[0] = (uint8_t)level;
            for (i = 0; i < 8; i++)
                key[1 + i] = (uint8_t)(j >> (56 - 8 * i));
            assert_int_equal(mdb_put(txn, f->log.nodes, &k, &v,
                                     MDB_NOOVERWRITE),
                             0);
        }
}

static void test_home_with_every_level(void **state)
{
    static const uint64_t sizes[] = {1, 37, 47, 48, 64, 255, 256, 257, 300};
    fixture *f = *state;
    char note[CHECKPOINT_MAX_NOTE];
    MDB_txn *txn;
    uint64_t n;
    size_t i;

    /* A home of 37 leaves with the nodes of every level, and a checkpoint. */
    assert_int_equal(store_begin(&f->s, 0, &txn, NULL), 0);
    append_leaves(f, txn, 0, 37);
    store_low_levels(f, txn, 37);
    assert_true(auditlog_sign_checkpoint(txn, &f->log, ORIGIN, &f->key, note,
                                         sizeof(note), NULL) > 0);
    assert_int_equal(store_commit(txn, NULL), 0);
    /* It goes on past level-4, level-8 and tile boundaries. */
    for (n = 37; n < LEAVES; n += 29) {
        assert_int_equal(store_begin(&f->s, 0, &txn, NULL), 0);
        append_leaves(f, txn, n, n + 29 < LEAVES ? n + 29 : LEAVES);
        assert_true(auditlog_sign_checkpoint(txn, &f->log, ORIGIN, &f->key,
                                             note, sizeof(note), NULL) > 0);
        assert_int_equal(store_commit(txn, NULL), 0);
    }
    assert_int_equal(store_begin(&f->s, 1, &txn, NULL), 0);
    check_roots_to(f, txn, LEAVES);
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        check_proofs_at(f, txn, sizes[i]);
    mdb_txn_abort(txn);
}

static void test_proof_arguments_are_checked(void **state)
{
    fixture *f = *state;
    merkle_hash proof[MERKLE_MAX_PROOF];
    size_t len;
    MDB_txn *txn;

    assert_int_equal(store_begin(&f->s, 0, &txn, NULL), 0);
    append_leaves(f, txn, 0, 10);
    assert_int_equal(auditlog_inclusion_proof(txn, &f->log, 10, 10, proof,
                                              &len, NULL),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(auditlog_inclusion_proof(txn, &f->log, 0, 11, proof,
                                              &len, NULL),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(auditlog_consistency_proof(txn, &f->log, 0, 5, proof,
                                                &len, NULL),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(auditlog_consistency_proof(txn, &f->log, 6, 5, proof,
                                                &len, NULL),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(auditlog_consistency_proof(txn, &f->log, 5, 11, proof,
                                                &len, NULL),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(auditlog_consistency_proof(txn, &f->log, 5, 5, proof,
                                                &len, NULL),
                     0);
    assert_int_equal(len, 0);
    mdb_txn_abort(txn);
}

static void test_sizes_of_leaves_and_evidence(void **state)
{
    fixture *f = *state;
    static uint8_t big[AUDITLOG_MAX_LEAF + 1];
    uint64_t index;
    MDB_txn *txn;
    MDB_val v;

    assert_int_equal(store_begin(&f->s, 0, &txn, NULL), 0);
    assert_int_equal(auditlog_append(txn, &f->log, big, 0, big, 1, &index,
                                     NULL),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(auditlog_append(txn, &f->log, big, sizeof(big), big, 1,
                                     &index, NULL),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(auditlog_append(txn, &f->log, big, 1, big, 0, &index,
                                     NULL),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(auditlog_append(txn, &f->log, big, AUDITLOG_MAX_LEAF,
                                     (const uint8_t *)"e", 1, &index, NULL),
                     0);
    assert_int_equal(index, 0);
    assert_int_equal(auditlog_leaf_get(txn, &f->log, 0, &v, NULL), 0);
    assert_int_equal(v.mv_size, AUDITLOG_MAX_LEAF);
    assert_int_equal(auditlog_evidence_get(txn, &f->log, 0, &v, NULL), 0);
    assert_int_equal(v.mv_size, 1);
    assert_memory_equal(v.mv_data, "e", 1);
    mdb_txn_abort(txn);
}

static void test_checkpoints(void **state)
{
    fixture *f = *state;
    char note[CHECKPOINT_MAX_NOTE], again[CHECKPOINT_MAX_NOTE];
    checkpoint c;
    merkle_hash root;
    uint64_t size;
    MDB_txn *txn;
    MDB_val v;
    int len, len2;

    assert_int_equal(store_begin(&f->s, 0, &txn, NULL), 0);
    len = auditlog_sign_checkpoint(txn, &f->log, ORIGIN, &f->key, note,
                                   sizeof(note), NULL);
    assert_true(len > 0); /* size 0 */
    append_leaves(f, txn, 0, 5);
    len = auditlog_sign_checkpoint(txn, &f->log, ORIGIN, &f->key, note,
                                   sizeof(note), NULL);
    assert_true(len > 0);
    assert_int_equal(checkpoint_verify(note, (size_t)len, ORIGIN,
                                       f->key.public_key, &c, NULL),
                     0);
    assert_int_equal(c.size, 5);
    merkle_root(f->hashes, 5, root);
    assert_memory_equal(c.root, root, MERKLE_HASH_BYTES);
    /* Asking again at the same size returns the stored note. */
    len2 = auditlog_sign_checkpoint(txn, &f->log, ORIGIN, &f->key, again,
                                    sizeof(again), NULL);
    assert_int_equal(len2, len);
    assert_string_equal(again, note);
    append_leaves(f, txn, 5, 9);
    assert_true(auditlog_sign_checkpoint(txn, &f->log, ORIGIN, &f->key, note,
                                         sizeof(note), NULL) > 0);
    assert_int_equal(store_commit(txn, NULL), 0);

    assert_int_equal(store_begin(&f->s, 1, &txn, NULL), 0);
    assert_int_equal(auditlog_checkpoint_get(txn, &f->log, 5, &v, NULL), 0);
    assert_int_equal(v.mv_size, (size_t)len);
    assert_memory_equal(v.mv_data, again, v.mv_size);
    assert_int_equal(auditlog_checkpoint_get(txn, &f->log, 6, &v, NULL),
                     -ONCE_ERR_NOT_FOUND);
    assert_int_equal(auditlog_checkpoint_latest(txn, &f->log, &size, &v,
                                                NULL),
                     0);
    assert_int_equal(size, 9);
    assert_int_equal(auditlog_checkpoint_floor(txn, &f->log, 8, &size, &v,
                                               NULL),
                     0);
    assert_int_equal(size, 5);
    assert_int_equal(auditlog_checkpoint_floor(txn, &f->log, 0, &size, &v,
                                               NULL),
                     0);
    assert_int_equal(size, 0);
    mdb_txn_abort(txn);
}

static int count_checkpoint(uint64_t size, const MDB_val *note, void *arg)
{
    uint64_t *sizes = arg;

    (void)note;
    sizes[++sizes[0]] = size;
    return 0;
}

static void test_checkpoint_walk(void **state)
{
    fixture *f = *state;
    char note[CHECKPOINT_MAX_NOTE];
    uint64_t sizes[8] = {0}, n;
    MDB_txn *txn;

    assert_int_equal(store_begin(&f->s, 0, &txn, NULL), 0);
    for (n = 1; n <= 4; n++) {
        append_leaves(f, txn, (n - 1) * 3, n * 3);
        assert_true(auditlog_sign_checkpoint(txn, &f->log, ORIGIN, &f->key,
                                             note, sizeof(note), NULL) > 0);
    }
    assert_int_equal(auditlog_checkpoint_each(txn, &f->log, 4, 9,
                                              count_checkpoint, sizes, NULL),
                     0);
    assert_int_equal(sizes[0], 2);
    assert_int_equal(sizes[1], 6);
    assert_int_equal(sizes[2], 9);
    mdb_txn_abort(txn);
}

static void test_never_two_roots_for_one_size(void **state)
{
    fixture *f = *state;
    char note[CHECKPOINT_MAX_NOTE], forged[CHECKPOINT_MAX_NOTE];
    uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 3};
    MDB_val k = {sizeof(key), key}, v;
    once_keypair other;
    once_error err;
    checkpoint c;
    MDB_txn *txn;
    uint8_t seed[32];
    int len;

    assert_int_equal(store_begin(&f->s, 0, &txn, NULL), 0);
    append_leaves(f, txn, 0, 3);
    /* Someone stored a checkpoint for size 3 over another root. */
    memset(&c, 0, sizeof(c));
    strcpy(c.origin, ORIGIN);
    c.size = 3;
    memset(c.root, 0x5a, sizeof(c.root));
    len = checkpoint_sign(&c, ORIGIN, &f->key, forged, sizeof(forged), NULL);
    assert_true(len > 0);
    v.mv_size = (size_t)len;
    v.mv_data = forged;
    assert_int_equal(mdb_put(txn, f->log.checkpoints, &k, &v, 0), 0);
    assert_int_equal(auditlog_sign_checkpoint(txn, &f->log, ORIGIN, &f->key,
                                              note, sizeof(note), &err),
                     -ONCE_ERR_INTERNAL);
    assert_non_null(strstr(err.message, "second root"));
    /* Or one signed by another key. */
    memset(seed, 0x17, sizeof(seed));
    once_keypair_from_seed(&other, seed);
    merkle_root(f->hashes, 3, c.root);
    len = checkpoint_sign(&c, ORIGIN, &other, forged, sizeof(forged), NULL);
    v.mv_size = (size_t)len;
    v.mv_data = forged;
    assert_int_equal(mdb_put(txn, f->log.checkpoints, &k, &v, 0), 0);
    assert_int_equal(auditlog_sign_checkpoint(txn, &f->log, ORIGIN, &f->key,
                                              note, sizeof(note), &err),
                     -ONCE_ERR_INTERNAL);
    /* The genuine one is accepted and returned. */
    len = checkpoint_sign(&c, ORIGIN, &f->key, forged, sizeof(forged), NULL);
    v.mv_size = (size_t)len;
    v.mv_data = forged;
    assert_int_equal(mdb_put(txn, f->log.checkpoints, &k, &v, 0), 0);
    assert_int_equal(auditlog_sign_checkpoint(txn, &f->log, ORIGIN, &f->key,
                                              note, sizeof(note), &err),
                     len);
    assert_string_equal(note, forged);
    mdb_txn_abort(txn);
}

static void test_aborted_transaction_leaves_no_trace(void **state)
{
    fixture *f = *state;
    char note[CHECKPOINT_MAX_NOTE];
    merkle_hash before, after;
    uint64_t size;
    MDB_txn *txn;
    MDB_val v;

    assert_int_equal(store_begin(&f->s, 0, &txn, NULL), 0);
    append_leaves(f, txn, 0, 20);
    assert_true(auditlog_sign_checkpoint(txn, &f->log, ORIGIN, &f->key, note,
                                         sizeof(note), NULL) > 0);
    assert_int_equal(store_commit(txn, NULL), 0);
    assert_int_equal(store_begin(&f->s, 1, &txn, NULL), 0);
    assert_int_equal(auditlog_root(txn, &f->log, 20, before, NULL), 0);
    mdb_txn_abort(txn);

    assert_int_equal(store_begin(&f->s, 0, &txn, NULL), 0);
    append_leaves(f, txn, 20, 300);
    assert_true(auditlog_sign_checkpoint(txn, &f->log, ORIGIN, &f->key, note,
                                         sizeof(note), NULL) > 0);
    mdb_txn_abort(txn);

    assert_int_equal(store_begin(&f->s, 1, &txn, NULL), 0);
    assert_int_equal(auditlog_size(txn, &f->log, &size, NULL), 0);
    assert_int_equal(size, 20);
    assert_int_equal(auditlog_root(txn, &f->log, 20, after, NULL), 0);
    assert_memory_equal(before, after, MERKLE_HASH_BYTES);
    assert_int_equal(auditlog_leaf_get(txn, &f->log, 20, &v, NULL),
                     -ONCE_ERR_NOT_FOUND);
    assert_int_equal(auditlog_evidence_get(txn, &f->log, 20, &v, NULL),
                     -ONCE_ERR_NOT_FOUND);
    assert_int_equal(auditlog_node(txn, &f->log, 0, 20, after, NULL),
                     -ONCE_ERR_NOT_FOUND);
    assert_int_equal(auditlog_checkpoint_get(txn, &f->log, 300, &v, NULL),
                     -ONCE_ERR_NOT_FOUND);
    assert_int_equal(auditlog_checkpoint_latest(txn, &f->log, &size, &v,
                                                NULL),
                     0);
    assert_int_equal(size, 20);
    mdb_txn_abort(txn);

    /* The log goes on where the committed part ended, and its checkpoints
     * (appended with MDB_APPEND) after the last committed one. */
    assert_int_equal(store_begin(&f->s, 0, &txn, NULL), 0);
    append_leaves(f, txn, 20, 21);
    assert_true(auditlog_sign_checkpoint(txn, &f->log, ORIGIN, &f->key, note,
                                         sizeof(note), NULL) > 0);
    assert_int_equal(store_commit(txn, NULL), 0);
    /* And so it does after a restart. */
    store_close(&f->s);
    assert_int_equal(store_open(&f->s, f->dir, 64u << 20, NULL), 0);
    assert_int_equal(auditlog_open(&f->log, &f->s, NULL), 0);
    assert_int_equal(store_begin(&f->s, 0, &txn, NULL), 0);
    append_leaves(f, txn, 21, 40);
    assert_true(auditlog_sign_checkpoint(txn, &f->log, ORIGIN, &f->key, note,
                                         sizeof(note), NULL) > 0);
    assert_int_equal(store_commit(txn, NULL), 0);
    assert_int_equal(store_begin(&f->s, 1, &txn, NULL), 0);
    assert_int_equal(auditlog_checkpoint_latest(txn, &f->log, &size, &v,
                                                NULL),
                     0);
    assert_int_equal(size, 40);
    assert_int_equal(auditlog_root(txn, &f->log, 40, after, NULL), 0);
    merkle_root(f->hashes, 40, before);
    assert_memory_equal(before, after, MERKLE_HASH_BYTES);
    mdb_txn_abort(txn);
}

static void test_checkpoint_past_the_tree(void **state)
{
    fixture *f = *state;
    char note[CHECKPOINT_MAX_NOTE];
    uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0x03, 0xe8};
    MDB_val k = {sizeof(key), key}, v = {4, "note"};
    once_error err;
    MDB_txn *txn;

    /* A checkpoint for 1,000 leaves in a log of 5 is damage: the log
     * refuses to append one for 5 below it. */
    assert_int_equal(store_begin(&f->s, 0, &txn, NULL), 0);
    append_leaves(f, txn, 0, 5);
    assert_int_equal(mdb_put(txn, f->log.checkpoints, &k, &v, 0), 0);
    assert_int_equal(auditlog_sign_checkpoint(txn, &f->log, ORIGIN, &f->key,
                                              note, sizeof(note), &err),
                     -ONCE_ERR_INTERNAL);
    assert_non_null(strstr(err.message, "disagree"));
    mdb_txn_abort(txn);
}

static void test_subject_hash(void **state)
{
    uint8_t key[AUDIT_KEY_BYTES], out[32], expect[32], msg[64];
    crypto_auth_hmacsha256_state st;
    const char *type = "business-licence", *subject = "91350100M000100Y43";
    size_t tlen = strlen(type), slen = strlen(subject);

    (void)state;
    memset(key, 0x33, sizeof(key));
    memcpy(msg, type, tlen);
    msg[tlen] = 0x00;
    memcpy(msg + tlen + 1, subject, slen);
    crypto_auth_hmacsha256_init(&st, key, sizeof(key));
    crypto_auth_hmacsha256_update(&st, msg, tlen + 1 + slen);
    crypto_auth_hmacsha256_final(&st, expect);
    audit_subject_hash(key, type, subject, out);
    assert_memory_equal(out, expect, 32);
    /* The type is part of the hash. */
    audit_subject_hash(key, "id-record", subject, out);
    assert_memory_not_equal(out, expect, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_log, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_roots_and_proofs_match_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_low_levels_are_computed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_home_with_every_level, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proof_arguments_are_checked,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sizes_of_leaves_and_evidence,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_walk, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_never_two_roots_for_one_size,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_aborted_transaction_leaves_no_trace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_past_the_tree, setup,
                                        teardown),
        cmocka_unit_test(test_subject_hash),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
