/*
 * test_replies.c - the durable `replies` table and its pruning by the
 * envelopes' sent_at, on a real LMDB environment.
 *
 * Pruning deletes oldest first, never more than asked, never an answer of
 * an envelope sent at or after the cut-off; answers with equal times go in
 * key order; a reopened store prunes what it stored before; an answer is
 * found only under its own sent_at; and a key that answered other bytes
 * reads as 1.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "replay.h"
#include "temp_store.h"

typedef temp_store fixture;

/* One stored answer of the tests: who sent what, and when. */
typedef struct entry {
    const char *sender;
    uint64_t session;
    uint64_t seq;
    uint64_t sent_at_ms;
} entry;

/* A digest and a body that differ for every (sender, session, seq). */
static void digest_of(const entry *e, uint8_t digest[32])
{
    size_t i;

    for (i = 0; i < 32; i++)
        digest[i] = (uint8_t)(e->sender[0] + e->session * 7 + e->seq * 13 + i);
}

static void body_of(const entry *e, char *body, size_t cap)
{
    snprintf(body, cap, "answer of %s/%llu/%llu", e->sender,
             (unsigned long long)e->session, (unsigned long long)e->seq);
}

static void put(store *s, const entry *e)
{
    uint8_t digest[32];
    char body[128];
    once_error err;
    MDB_txn *txn;

    digest_of(e, digest);
    body_of(e, body, sizeof(body));
    assert_int_equal(store_begin(s, 0, &txn, &err), 0);
    if (replay_reply_put(txn, s, e->sent_at_ms, e->sender, e->session,
                         e->seq, digest, ONCE__KIND__KIND_RESPONSE,
                         (const uint8_t *)body, strlen(body), &err) < 0) {
        mdb_txn_abort(txn);
        fail_msg("replay_reply_put: %s", err.message);
    }
    assert_int_equal(store_commit(txn, &err), 0);
}

/* Prunes in its own committed transaction; returns how many went. */
static size_t prune(store *s, uint64_t before_ms, size_t max)
{
    size_t pruned = (size_t)-1;
    once_error err;
    MDB_txn *txn;

    assert_int_equal(store_begin(s, 0, &txn, &err), 0);
    if (replay_reply_prune(txn, s, before_ms, max, &pruned, &err) < 0) {
        mdb_txn_abort(txn);
        fail_msg("replay_reply_prune: %s", err.message);
    }
    assert_int_equal(store_commit(txn, &err), 0);
    return pruned;
}

/* replay_reply_find's verdict on e's own bytes; on 0, checks the body. */
static int find(store *s, const entry *e)
{
    Once__StoredReply *m;
    uint8_t digest[32];
    char body[128];
    once_error err;
    MDB_txn *txn;
    int rc;

    digest_of(e, digest);
    body_of(e, body, sizeof(body));
    assert_int_equal(store_begin(s, 1, &txn, &err), 0);
    rc = replay_reply_find(txn, s, e->sent_at_ms, e->sender, e->session,
                           e->seq, digest, NULL, &m, &err);
    if (rc == 0) {
        assert_non_null(m);
        assert_int_equal(m->kind, ONCE__KIND__KIND_RESPONSE);
        assert_int_equal(m->body.len, strlen(body));
        assert_memory_equal(m->body.data, body, m->body.len);
        once__stored_reply__free_unpacked(m, NULL);
    } else {
        assert_null(m);
    }
    mdb_txn_abort(txn);
    return rc;
}

static size_t replies_count(store *s)
{
    once_error err;
    MDB_stat st;
    MDB_txn *txn;

    assert_int_equal(store_begin(s, 1, &txn, &err), 0);
    assert_int_equal(mdb_stat(txn, s->replies, &st), MDB_SUCCESS);
    mdb_txn_abort(txn);
    return st.ms_entries;
}

/* Stored out of time order; ties at 2000 ms go by key: "beta" < "gamma". */
static const entry entries[] = {
    { "gamma", 5, 1, 2000 },
    { "alpha", 1, 1, 4000 },
    { "beta", 9, 3, 2000 },
    { "alpha", 1, 2, 1000 },
    { "alpha", 2, 1, 3000 },
    { "delta", 1, 1, 5000 },
};
#define N_ENTRIES (sizeof(entries) / sizeof(entries[0]))
#define GAMMA 0
#define ALPHA_4000 1
#define BETA 2
#define ALPHA_1000 3
#define ALPHA_3000 4
#define DELTA 5

static void put_all(store *s)
{
    size_t i;

    for (i = 0; i < N_ENTRIES; i++)
        put(s, &entries[i]);
    assert_int_equal(replies_count(s), N_ENTRIES);
}

static void assert_present(store *s, const int *gone, size_t n_gone)
{
    size_t i, j;

    for (i = 0; i < N_ENTRIES; i++) {
        int expected = 0;

        for (j = 0; j < n_gone; j++)
            if ((size_t)gone[j] == i)
                expected = -ONCE_ERR_NOT_FOUND;
        if (find(s, &entries[i]) != expected)
            fail_msg("entry %zu (%s/%llu/%llu at %llu ms) should be %s", i,
                     entries[i].sender,
                     (unsigned long long)entries[i].session,
                     (unsigned long long)entries[i].seq,
                     (unsigned long long)entries[i].sent_at_ms,
                     expected == 0 ? "found" : "gone");
    }
    assert_int_equal(replies_count(s), N_ENTRIES - n_gone);
}

static void test_prune_oldest_first_and_bounded(void **state)
{
    fixture *f = *state;
    static const int after_first[] = { ALPHA_1000, BETA };
    static const int after_second[] = { ALPHA_1000, BETA, GAMMA, ALPHA_3000 };

    put_all(&f->s);
    assert_present(&f->s, NULL, 0);

    /* Four are older than 4000 ms; two are asked for: the oldest, then the
     * first of the two at 2000 ms in key order. */
    assert_int_equal(prune(&f->s, 4000, 2), 2);
    assert_present(&f->s, after_first, 2);

    /* The rest of the eligible ones; the one sent at exactly 4000 ms is
     * not older than the cut-off and stays, as does the newest. */
    assert_int_equal(prune(&f->s, 4000, 100), 2);
    assert_present(&f->s, after_second, 4);

    /* Nothing more below the same cut-off. */
    assert_int_equal(prune(&f->s, 4000, 100), 0);
    assert_present(&f->s, after_second, 4);
}

/* Whether the oldest entry is before the cut-off, in a read transaction. */
static bool expired(store *s, uint64_t before_ms)
{
    once_error err;
    MDB_txn *txn;
    bool result;

    assert_int_equal(store_begin(s, 1, &txn, &err), 0);
    result = replay_reply_expired(txn, s, before_ms);
    mdb_txn_abort(txn);
    return result;
}

static void test_prune_max_zero_and_early_cutoff(void **state)
{
    fixture *f = *state;

    assert_false(expired(&f->s, UINT64_MAX));
    put_all(&f->s);
    assert_false(expired(&f->s, 1000)); /* the oldest was sent at 1000 */
    assert_true(expired(&f->s, 1001));
    assert_int_equal(prune(&f->s, UINT64_MAX, 0), 0);
    assert_int_equal(prune(&f->s, 1000, 100), 0); /* 1000 is not < 1000 */
    assert_int_equal(prune(&f->s, 0, 100), 0);
    assert_present(&f->s, NULL, 0);
}

static void test_prune_empty(void **state)
{
    fixture *f = *state;

    assert_int_equal(prune(&f->s, UINT64_MAX, 100), 0);
    assert_int_equal(replies_count(&f->s), 0);
}

static void test_equal_times(void **state)
{
    fixture *f = *state;
    static const entry same[] = {
        { "c-dept", 1, 1, 7000 },
        { "a-dept", 1, 1, 7000 },
        { "b-dept", 1, 1, 7000 },
        { "a-dept", 1, 2, 7000 },
    };
    size_t i;

    for (i = 0; i < 4; i++)
        put(&f->s, &same[i]);
    assert_int_equal(prune(&f->s, 7000, 100), 0);
    /* Same time: key order, a-dept/1/1, a-dept/1/2, b-dept, then c-dept. */
    assert_int_equal(prune(&f->s, 7001, 3), 3);
    assert_int_equal(find(&f->s, &same[1]), -ONCE_ERR_NOT_FOUND);
    assert_int_equal(find(&f->s, &same[3]), -ONCE_ERR_NOT_FOUND);
    assert_int_equal(find(&f->s, &same[2]), -ONCE_ERR_NOT_FOUND);
    assert_int_equal(find(&f->s, &same[0]), 0);
    assert_int_equal(prune(&f->s, 7001, 3), 1);
    assert_int_equal(find(&f->s, &same[0]), -ONCE_ERR_NOT_FOUND);
    assert_int_equal(replies_count(&f->s), 0);
}

/* A reopened store prunes what was stored before. */
static void test_prune_after_reopen(void **state)
{
    fixture *f = *state;
    static const int gone[] = { ALPHA_1000, BETA, GAMMA, ALPHA_3000,
                                ALPHA_4000 };
    once_error err;

    put_all(&f->s);
    store_close(&f->s);
    if (store_open(&f->s, f->dir, 0, &err) < 0)
        fail_msg("store_open: %s", err.message);
    assert_int_equal(prune(&f->s, 5000, 100), 5);
    assert_present(&f->s, gone, 5);
}

/* A retry is the same bytes, so the same sent_at: an envelope with
 * another sent_at is another envelope, whose answer is not there. */
static void test_found_only_under_its_sent_at(void **state)
{
    fixture *f = *state;
    static const entry e = { "alpha", 3, 7, 1000 };
    entry later = e;

    put(&f->s, &e);
    assert_int_equal(find(&f->s, &e), 0);
    later.sent_at_ms = 1001;
    assert_int_equal(find(&f->s, &later), -ONCE_ERR_NOT_FOUND);
}

static void test_digest_mismatch(void **state)
{
    fixture *f = *state;
    static const entry e = { "alpha", 3, 7, 1000 };
    Once__StoredReply *m = NULL;
    uint8_t other[32];
    once_error err;
    MDB_txn *txn;

    put(&f->s, &e);
    assert_int_equal(find(&f->s, &e), 0);
    digest_of(&e, other);
    other[31] ^= 1;
    assert_int_equal(store_begin(&f->s, 1, &txn, &err), 0);
    assert_int_equal(replay_reply_find(txn, &f->s, e.sent_at_ms, e.sender,
                                       e.session, e.seq, other, NULL, &m,
                                       &err),
                     1);
    assert_null(m);
    mdb_txn_abort(txn);
}

/* A granted request's answer is kept as what rebuilds it: the record
 * version, the disclosures a bit each, the leaf index, and no body; a
 * version of 0 is refused. */
static void test_rebuilt_answer(void **state)
{
    fixture *f = *state;
    static const entry e = { "tax", 9, 4, 2000 };
    Once__StoredReply *m = NULL;
    uint8_t digest[32];
    once_error err;
    MDB_txn *txn;

    digest_of(&e, digest);
    assert_int_equal(store_begin(&f->s, 0, &txn, &err), 0);
    assert_int_equal(replay_reply_put_rebuilt(txn, &f->s, e.sent_at_ms,
                                              e.sender, e.session, e.seq,
                                              digest, 0, 1, 5, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(replay_reply_put_rebuilt(txn, &f->s, e.sent_at_ms,
                                              e.sender, e.session, e.seq,
                                              digest, 3,
                                              UINT64_C(0x8000000000000005),
                                              123456, &err), 0);
    assert_int_equal(store_commit(txn, &err), 0);
    assert_int_equal(store_begin(&f->s, 1, &txn, &err), 0);
    assert_int_equal(replay_reply_find(txn, &f->s, e.sent_at_ms, e.sender,
                                       e.session, e.seq, digest, NULL, &m,
                                       &err), 0);
    assert_non_null(m);
    assert_int_equal(m->kind, ONCE__KIND__KIND_RESPONSE);
    assert_int_equal(m->body.len, 0);
    assert_int_equal(m->record_version, 3);
    assert_true(m->disclosed == UINT64_C(0x8000000000000005));
    assert_int_equal(m->leaf_index, 123456);
    once__stored_reply__free_unpacked(m, NULL);
    mdb_txn_abort(txn);
}

/* Current entries are left alone; a table holding a key of the layout
 * that began with the sender is emptied. */
static void test_upgrade_old_layout(void **state)
{
    fixture *f = *state;
    static const entry e = { "alpha", 3, 7, 1000 };
    static const char old_key[] = "tax\0\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\2";
    MDB_val key = { sizeof(old_key) - 1, (void *)old_key };
    MDB_val val = { 1, (void *)"x" };
    size_t dropped = 99;
    once_error err;
    MDB_txn *txn;

    put(&f->s, &e);
    assert_int_equal(store_begin(&f->s, 0, &txn, &err), 0);
    assert_int_equal(replay_replies_upgrade(txn, &f->s, &dropped, &err), 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(mdb_put(txn, f->s.replies, &key, &val, 0), MDB_SUCCESS);
    assert_int_equal(replay_replies_upgrade(txn, &f->s, &dropped, &err), 0);
    assert_int_equal(dropped, 2);
    assert_int_equal(store_commit(txn, &err), 0);
    assert_int_equal(replies_count(&f->s), 0);
    assert_int_equal(find(&f->s, &e), -ONCE_ERR_NOT_FOUND);
}

static void test_cutoff(void **state)
{
    (void)state;
    /* skew 300 s: kept while sent_at is within 300 s plus the margin. */
    assert_int_equal(replay_reply_cutoff(10000000, 300000),
                     10000000 - 300000 - REPLAY_REPLY_MARGIN_MS);
    assert_int_equal(replay_reply_cutoff(300000 + REPLAY_REPLY_MARGIN_MS + 1,
                                         300000), 1);
    assert_int_equal(replay_reply_cutoff(300000 + REPLAY_REPLY_MARGIN_MS,
                                         300000), 0);
    assert_int_equal(replay_reply_cutoff(5, 300000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMP_STORE_TEST(test_prune_oldest_first_and_bounded),
        TEMP_STORE_TEST(test_prune_max_zero_and_early_cutoff),
        TEMP_STORE_TEST(test_prune_empty),
        TEMP_STORE_TEST(test_equal_times),
        TEMP_STORE_TEST(test_prune_after_reopen),
        TEMP_STORE_TEST(test_found_only_under_its_sent_at),
        TEMP_STORE_TEST(test_digest_mismatch),
        TEMP_STORE_TEST(test_rebuilt_answer),
        TEMP_STORE_TEST(test_upgrade_old_layout),
        cmocka_unit_test(test_cutoff),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
