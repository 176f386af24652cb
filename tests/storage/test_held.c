/*
 * test_held.c - held_buffer.c on a real LMDB environment with a real
 * exchange log: the copies granted kept in memory, put into
 * `notice_held` in order, the mark, and the repair from the log at start.
 *
 * What is checked:
 *   - an entry is kept once however often it is added, a flush puts
 *     every entry and the mark, and a flush of entries the table holds
 *     already dirties no page of it;
 *   - a flush is due a second after the first entry, at once at half
 *     the bound, never while nothing is in memory and the mark is up to
 *     date, and not again before a second after one that failed;
 *   - the start puts the entries of the granted request leaves after the
 *     mark, and only those (not a refused request, a publish, a request
 *     without a subject hash, a leaf that does not decode), across more
 *     leaves than one read of the log, and moves the mark to the end;
 *   - a home without a mark (a version that put each entry with its
 *     leaf) is not replayed: its mark is stored at the log's size.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auditlog.h"
#include "held_buffer.h"
#include "subscriptions.h"
#include "temp_store.h"

#define LICENCE "licence"

typedef struct fixture {
    char dir[PATH_MAX];
    store s;
    subscriptions t;
    auditlog log;
} fixture;

static void hash_of(uint8_t h[AUDIT_SUBJECT_HASH_BYTES], unsigned n)
{
    memset(h, 0, AUDIT_SUBJECT_HASH_BYTES);
    h[0] = (uint8_t)(n >> 8);
    h[1] = (uint8_t)n;
    h[31] = 0x5a;
}

static int setup(void **state)
{
    static fixture f;
    once_error err;

    memset(&f, 0, sizeof(f));
    if (temp_store_open(f.dir, sizeof(f.dir), &f.s) < 0 ||
        subscriptions_open(&f.t, &f.s, &err) < 0 ||
        auditlog_open(&f.log, &f.s, &err) < 0)
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    temp_store_close(f->dir, &f->s);
    return 0;
}

static bool held(fixture *f, const char *type, unsigned subject,
                 const char *dept)
{
    uint8_t k[SUBSCRIPTIONS_HELD_KEY_MAX], h[AUDIT_SUBJECT_HASH_BYTES];
    MDB_txn *txn = temp_store_begin(&f->s, 1);
    MDB_val key, val;
    int rc;

    hash_of(h, subject);
    key.mv_size = subscriptions_held_key(k, type, h, dept);
    key.mv_data = k;
    rc = mdb_get(txn, f->t.held, &key, &val);
    mdb_txn_abort(txn);
    return rc == MDB_SUCCESS;
}

static size_t held_entries(fixture *f)
{
    MDB_txn *txn = temp_store_begin(&f->s, 1);
    MDB_stat st;

    assert_int_equal(mdb_stat(txn, f->t.held, &st), 0);
    mdb_txn_abort(txn);
    return st.ms_entries;
}

static uint64_t mark(fixture *f, bool *found)
{
    MDB_txn *txn = temp_store_begin(&f->s, 1);
    once_error err;
    uint64_t through;

    assert_int_equal(held_mark_get(txn, &f->t, &through, found, &err), 0);
    mdb_txn_abort(txn);
    return through;
}

static void add(held_buffer *b, unsigned subject, const char *dept,
                uint64_t now_ms)
{
    uint8_t h[AUDIT_SUBJECT_HASH_BYTES];
    once_error err;

    hash_of(h, subject);
    assert_int_equal(held_buffer_add(b, LICENCE, h, dept, now_ms, &err), 0);
}

/* Flushes b with the mark `through` in a transaction of its own. */
static void flush(fixture *f, held_buffer *b, uint64_t through)
{
    MDB_txn *txn = temp_store_begin(&f->s, 0);
    once_error err;

    assert_int_equal(held_buffer_flush(txn, &f->t, b, &err), 0);
    assert_int_equal(held_mark_put(txn, &f->t, through, &err), 0);
    temp_store_commit(txn);
    held_buffer_flushed(b, through);
}

static void test_kept_once_flushed_in_order(void **state)
{
    fixture *f = *state;
    held_buffer *b;
    once_error err;
    MDB_txn *txn;
    bool found;
    unsigned i;

    assert_int_equal(held_buffer_new(&b, &err), 0);
    for (i = 0; i < 3; i++) {
        add(b, 300 - i, "tax", 5);
        add(b, 300 - i, "bank", 5);
        add(b, 300 - i, "tax", 6); /* again: kept once */
    }
    assert_int_equal(held_buffer_count(b), 6);
    assert_false(held(f, LICENCE, 300, "tax"));
    flush(f, b, 9);
    assert_int_equal(held_buffer_count(b), 0);
    assert_int_equal(held_entries(f), 6);
    assert_true(held(f, LICENCE, 298, "bank"));
    assert_int_equal(mark(f, &found), 9);
    assert_true(found);

    /* The same copies again: the puts find them and touch no page, so
     * without a mark the transaction stays clean and its commit writes
     * nothing (LMDB commits a clean write transaction as a no-op). */
    for (i = 0; i < 3; i++)
        add(b, 300 - i, "tax", 7);
    assert_int_equal(held_buffer_count(b), 3); /* the flush forgot them */
    {
        MDB_envinfo before, after;

        assert_int_equal(mdb_env_info(f->s.env, &before), 0);
        txn = temp_store_begin(&f->s, 0);
        assert_int_equal(held_buffer_flush(txn, &f->t, b, &err), 0);
        temp_store_commit(txn);
        assert_int_equal(mdb_env_info(f->s.env, &after), 0);
        assert_int_equal(after.me_last_txnid, before.me_last_txnid);
    }
    held_buffer_flushed(b, 10);
    held_buffer_free(b);
}

static void test_when_a_flush_is_due(void **state)
{
    held_buffer *b;
    once_error err;
    unsigned i;

    (void)state;
    assert_int_equal(held_buffer_new(&b, &err), 0);
    held_buffer_committed(b, 100); /* the mark as the start left it */
    assert_int_equal(held_buffer_wait(b, 1000), -1);
    assert_false(held_buffer_pending(b));
    add(b, 1, "tax", 1000);
    assert_int_equal(held_buffer_wait(b, 1000), HELD_FLUSH_AFTER_MS);
    assert_int_equal(held_buffer_wait(b, 1000 + HELD_FLUSH_AFTER_MS), 0);
    /* A failed flush is tried again a second later, not at once. */
    held_buffer_defer(b, 1000 + HELD_FLUSH_AFTER_MS);
    assert_int_equal(held_buffer_wait(b, 1000 + HELD_FLUSH_AFTER_MS),
                     HELD_FLUSH_AFTER_MS);
    held_buffer_flushed(b, 101);
    assert_int_equal(held_buffer_wait(b, 5000), -1);
    /* Half the bound: due at once. */
    for (i = 0; i < HELD_FLUSH_AT; i++)
        add(b, i, "bank", 9000);
    assert_int_equal(held_buffer_wait(b, 9000), 0);
    assert_false(held_buffer_room(b, HELD_BUFFER_MAX - HELD_FLUSH_AT + 1));
    assert_true(held_buffer_room(b, HELD_BUFFER_MAX - HELD_FLUSH_AT));
    held_buffer_flushed(b, 200);
    /* Nothing in memory, but the mark far behind the log: due. */
    held_buffer_committed(b, 200 + HELD_MARK_LAG_MAX);
    assert_true(held_buffer_pending(b));
    assert_int_equal(held_buffer_wait(b, 9500), 0);
    held_buffer_free(b);
}

/* Appends a LogLeaf as the writer would. */
static void leaf(fixture *f, MDB_txn *txn, int kind, const char *dept,
                 unsigned subject, bool granted)
{
    Once__LogLeaf l = ONCE__LOG_LEAF__INIT;
    uint8_t h[AUDIT_SUBJECT_HASH_BYTES], buf[512], digest[32] = { 1 };
    once_error err;
    uint64_t index;

    hash_of(h, subject);
    l.time = 1;
    l.kind = (Once__Kind)kind;
    l.department = (char *)dept;
    l.record_type = LICENCE;
    if (subject != 0) {
        l.subject_hash.data = h;
        l.subject_hash.len = sizeof(h);
    }
    l.decision = granted ? ONCE__DECISION__DECISION_GRANTED
                         : ONCE__DECISION__DECISION_REFUSED;
    l.error = granted ? ONCE__ERROR_CODE__ERROR_NONE
                      : ONCE__ERROR_CODE__ERROR_NOT_FOUND;
    l.envelope_digest.data = digest;
    l.envelope_digest.len = sizeof(digest);
    assert_int_equal(auditlog_append(txn, &f->log, buf,
                                     once__log_leaf__pack(&l, buf),
                                     (const uint8_t *)"e", 1, &index, &err),
                     0);
}

static void recover(fixture *f, uint64_t *replayed, size_t *entries,
                    bool *had_mark)
{
    once_error err;

    assert_int_equal(held_recover(&f->s, &f->log, &f->t, replayed, entries,
                                  had_mark, &err), 0);
}

static void test_start_replays_after_the_mark(void **state)
{
    fixture *f = *state;
    MDB_txn *txn;
    uint64_t replayed, index;
    size_t entries;
    bool had_mark, found;
    once_error err;
    unsigned i;

    /* A home of this version: its mark at 0 (held_recover on the empty
     * log, as the first start makes it). */
    recover(f, &replayed, &entries, &had_mark);
    assert_false(had_mark);
    assert_int_equal(mark(f, &found), 0);
    assert_true(found);

    txn = temp_store_begin(&f->s, 0);
    leaf(f, txn, ONCE__KIND__KIND_PUBLISH, "amr", 1, true);
    leaf(f, txn, ONCE__KIND__KIND_REQUEST, "tax", 1, true);
    leaf(f, txn, ONCE__KIND__KIND_REQUEST, "bank", 1, false); /* refused */
    leaf(f, txn, ONCE__KIND__KIND_REQUEST, "police", 0, true); /* no hash */
    assert_int_equal(auditlog_append(txn, &f->log, (const uint8_t *)"\xff",
                                     1, (const uint8_t *)"e", 1, &index,
                                     &err), 0); /* does not decode */
    /* More than one read of the log (1,024 leaves), with repeats. */
    for (i = 0; i < 2500; i++)
        leaf(f, txn, ONCE__KIND__KIND_REQUEST, "tax", 2 + i % 1500, true);
    temp_store_commit(txn);

    recover(f, &replayed, &entries, &had_mark);
    assert_true(had_mark);
    assert_int_equal(replayed, 2505);
    assert_int_equal(entries, 2501);
    assert_true(held(f, LICENCE, 1, "tax"));
    assert_false(held(f, LICENCE, 1, "bank"));
    assert_false(held(f, LICENCE, 1, "amr"));
    assert_true(held(f, LICENCE, 1500, "tax"));
    assert_int_equal(held_entries(f), 1 + 1500);
    assert_int_equal(mark(f, &found), 2505);

    /* Nothing after the mark: nothing to do. */
    recover(f, &replayed, &entries, &had_mark);
    assert_int_equal(replayed, 0);
    assert_int_equal(mark(f, &found), 2505);
}

static void test_old_home_is_complete(void **state)
{
    fixture *f = *state;
    MDB_txn *txn = temp_store_begin(&f->s, 0);
    uint64_t replayed;
    size_t entries;
    bool had_mark, found;

    /* An older version put each entry with its leaf and kept no mark. */
    leaf(f, txn, ONCE__KIND__KIND_REQUEST, "tax", 7, true);
    {
        uint8_t h[AUDIT_SUBJECT_HASH_BYTES];
        once_error err;

        hash_of(h, 7);
        assert_int_equal(subscriptions_held_put(txn, &f->t, LICENCE, h,
                                                "tax", &err), 0);
    }
    leaf(f, txn, ONCE__KIND__KIND_REQUEST, "bank", 8, true);
    temp_store_commit(txn);
    /* (bank's entry left out, to see that nothing is replayed) */
    recover(f, &replayed, &entries, &had_mark);
    assert_false(had_mark);
    assert_int_equal(replayed, 0);
    assert_int_equal(entries, 0);
    assert_int_equal(mark(f, &found), 2);
    assert_true(found);
    assert_false(held(f, LICENCE, 8, "bank"));
    assert_true(held(f, LICENCE, 7, "tax"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kept_once_flushed_in_order,
                                        setup, teardown),
        cmocka_unit_test(test_when_a_flush_is_due),
        cmocka_unit_test_setup_teardown(test_start_replays_after_the_mark,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_home_is_complete, setup,
                                        teardown),
    };

    if (once_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
