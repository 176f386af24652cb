/*
 * test_subscriptions.c - subscriptions.c on a real LMDB environment: which
 * events reach which department (docs/PROTOCOL.md 4.9), the cursor, and
 * the list.
 *
 * Departments tax and bank hold grants on licence, police none; the
 * events are put as the writer puts them, at made-up leaf indexes. What
 * is checked: a subscription matches only the events after its own leaf;
 * a type, a subject and the records held each match what they say and
 * nothing else; a department without a grant on the type gets nothing
 * whatever it subscribed to, and withdrawing a grant stops the notices at
 * once; a scan stops at its limits and says how far it looked; the
 * cursor only grows; subscribing again keeps the first leaf; the list
 * walks one department or all; a record a department holds already is
 * not written again; pruning deletes only what every subscribing
 * department acknowledged, never the newest event.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"
#include "subscriptions.h"
#include "temp_store.h"

#define LICENCE "licence"
#define OTHER "permit"
#define SUB_A "91350100M000100Y43"
#define SUB_B "91110108100000008B"

typedef struct fixture {
    char dir[PATH_MAX];
    store s;
    subscriptions t;
} fixture;

static void hash_of(uint8_t h[AUDIT_SUBJECT_HASH_BYTES], const char *subject)
{
    memset(h, 0, AUDIT_SUBJECT_HASH_BYTES);
    memcpy(h, subject, strlen(subject) < AUDIT_SUBJECT_HASH_BYTES
                           ? strlen(subject)
                           : AUDIT_SUBJECT_HASH_BYTES);
}

static void grant_on(fixture *f, MDB_txn *txn, const char *dept,
                     const char *type)
{
    grant g;
    once_error err;

    memset(&g, 0, sizeof(g));
    snprintf(g.requester, sizeof(g.requester), "%s", dept);
    snprintf(g.type, sizeof(g.type), "%s", type);
    snprintf(g.purpose, sizeof(g.purpose), "checks");
    snprintf(g.fields[0], sizeof(g.fields[0]), "name");
    g.field_count = 1;
    assert_int_equal(policy_grant_add(txn, &f->s, &g, &err), 0);
}

static int setup(void **state)
{
    static fixture f;
    const char *depts[] = { "amr", "tax", "bank", "police" };
    once_keypair kp;
    record_type rt;
    once_error err;
    MDB_txn *txn;
    size_t i;

    memset(&f, 0, sizeof(f));
    if (temp_store_open(f.dir, sizeof(f.dir), &f.s) < 0 ||
        subscriptions_open(&f.t, &f.s, &err) < 0)
        return -1;
    txn = temp_store_begin(&f.s, 0);
    for (i = 0; i < 4; i++) {
        assert_int_equal(once_keypair_generate(&kp), 0);
        assert_int_equal(policy_department_add(txn, &f.s, depts[i], NULL,
                                               kp.public_key, &err), 0);
    }
    for (i = 0; i < 2; i++) {
        memset(&rt, 0, sizeof(rt));
        snprintf(rt.name, sizeof(rt.name), "%s", i == 0 ? LICENCE : OTHER);
        snprintf(rt.issuers[0], sizeof(rt.issuers[0]), "amr");
        rt.issuer_count = 1;
        rt.subject_kind = ONCE_SUBJECT_ENTERPRISE;
        snprintf(rt.fields[0], sizeof(rt.fields[0]), "name");
        rt.field_count = 1;
        assert_int_equal(policy_type_add(txn, &f.s, &rt, &err), 0);
    }
    grant_on(&f, txn, "tax", LICENCE);
    grant_on(&f, txn, "tax", OTHER);
    grant_on(&f, txn, "bank", LICENCE);
    temp_store_commit(txn);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    temp_store_close(f->dir, &f->s);
    return 0;
}

static void event(fixture *f, MDB_txn *txn, uint64_t leaf, const char *type,
                  const char *subject, uint64_t version, bool revoked)
{
    uint8_t h[AUDIT_SUBJECT_HASH_BYTES];
    once_error err;

    hash_of(h, subject);
    assert_int_equal(subscriptions_event_put(txn, &f->t, leaf, h, type,
                                             subject, version, revoked, &err),
                     0);
}

static void subscribe(fixture *f, MDB_txn *txn, const char *dept, int scope,
                      const char *type, const char *subject, uint64_t leaf)
{
    once_error err;

    assert_int_equal(subscriptions_put(txn, &f->t, dept, scope, type, subject,
                                       leaf, 1000 + leaf, &err), 0);
}

typedef struct seen {
    uint64_t leaves[16];
    size_t n;
} seen;

static int remember(const notice *n, void *arg)
{
    seen *s = arg;

    if (s->n < 16)
        s->leaves[s->n++] = n->leaf_index;
    return 0;
}

/* The leaves of dept's notices after `after`, with the scan's end. */
static seen scan(fixture *f, const char *dept, uint64_t after, size_t max,
                 size_t max_events, uint64_t *scanned_to)
{
    seen s = { { 0 }, 0 };
    uint64_t to;
    once_error err;
    MDB_txn *txn = temp_store_begin(&f->s, 1);

    assert_int_equal(subscriptions_scan(txn, &f->t, &f->s, dept, after, max,
                                        max_events, remember, &s, &to, &err),
                     0);
    mdb_txn_abort(txn);
    if (scanned_to != NULL)
        *scanned_to = to;
    return s;
}

static void test_scopes_match_what_they_say(void **state)
{
    fixture *f = *state;
    MDB_txn *txn = temp_store_begin(&f->s, 0);
    uint8_t h[AUDIT_SUBJECT_HASH_BYTES];
    once_error err;
    uint64_t to;
    seen s;

    event(f, txn, 1, LICENCE, SUB_A, 1, false);      /* before any */
    subscribe(f, txn, "tax", ONCE__SUBSCRIPTION_SCOPE__SCOPE_SUBJECT,
              LICENCE, SUB_B, 2);
    subscribe(f, txn, "bank", ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE, LICENCE,
              "", 3);
    hash_of(h, SUB_A);
    assert_int_equal(subscriptions_held_put(txn, &f->t, OTHER, h, "tax",
                                            &err), 0);
    subscribe(f, txn, "tax", ONCE__SUBSCRIPTION_SCOPE__SCOPE_HELD, "", "",
              4);
    event(f, txn, 5, LICENCE, SUB_A, 2, false);      /* bank */
    event(f, txn, 6, LICENCE, SUB_B, 1, false);      /* tax (subject), bank */
    event(f, txn, 7, OTHER, SUB_A, 1, false);        /* tax (held) */
    event(f, txn, 8, OTHER, SUB_B, 1, true);         /* nobody */
    temp_store_commit(txn);

    s = scan(f, "tax", 0, 64, 4096, &to);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.leaves[0], 6);
    assert_int_equal(s.leaves[1], 7);
    assert_int_equal(to, 8);
    s = scan(f, "bank", 0, 64, 4096, NULL);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.leaves[0], 5);
    assert_int_equal(s.leaves[1], 6);
    /* After 6: only what follows. */
    s = scan(f, "bank", 6, 64, 4096, &to);
    assert_int_equal(s.n, 0);
    assert_int_equal(to, 8);
    /* Nothing after the last event: scanned_to stays. */
    s = scan(f, "bank", 8, 64, 4096, &to);
    assert_int_equal(to, 8);
    /* Limits: one notice, or two events looked at. */
    s = scan(f, "tax", 0, 1, 4096, &to);
    assert_int_equal(s.n, 1);
    assert_int_equal(to, 6);
    s = scan(f, "tax", 0, 64, 2, &to);
    assert_int_equal(s.n, 0);
    assert_int_equal(to, 5);
}

static void test_no_grant_no_notice(void **state)
{
    fixture *f = *state;
    MDB_txn *txn = temp_store_begin(&f->s, 0);
    once_error err;
    seen s;

    subscribe(f, txn, "police", ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE, LICENCE,
              "", 1);
    subscribe(f, txn, "bank", ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE, LICENCE,
              "", 2);
    event(f, txn, 3, LICENCE, SUB_A, 1, false);
    temp_store_commit(txn);
    assert_int_equal(scan(f, "police", 0, 64, 4096, NULL).n, 0);
    assert_int_equal(scan(f, "bank", 0, 64, 4096, NULL).n, 1);

    txn = temp_store_begin(&f->s, 0);
    assert_int_equal(policy_grant_revoke(txn, &f->s, "bank", LICENCE,
                                         "checks", &err), 0);
    temp_store_commit(txn);
    s = scan(f, "bank", 0, 64, 4096, NULL);
    assert_int_equal(s.n, 0);
}

static void test_cursor_only_grows(void **state)
{
    fixture *f = *state;
    MDB_txn *txn = temp_store_begin(&f->s, 0);
    once_error err;
    uint64_t acked;

    assert_int_equal(subscriptions_cursor_get(txn, &f->t, "tax", &acked,
                                              &err), 0);
    assert_int_equal(acked, 0);
    assert_int_equal(subscriptions_cursor_put(txn, &f->t, "tax", 40, &err),
                     0);
    assert_int_equal(subscriptions_cursor_put(txn, &f->t, "tax", 12, &err),
                     0);
    assert_int_equal(subscriptions_cursor_get(txn, &f->t, "tax", &acked,
                                              &err), 0);
    assert_int_equal(acked, 40);
    assert_int_equal(subscriptions_cursor_get(txn, &f->t, "bank", &acked,
                                              &err), 0);
    assert_int_equal(acked, 0);
    temp_store_commit(txn);
}

static int count_one(const char *dept, const Once__Subscription *s,
                     void *arg)
{
    size_t *n = arg;

    (void)dept;
    (void)s;
    (*n)++;
    return 0;
}

static void test_renew_list_cancel(void **state)
{
    fixture *f = *state;
    MDB_txn *txn = temp_store_begin(&f->s, 0);
    uint64_t leaf;
    once_error err;
    size_t n = 0;

    subscribe(f, txn, "tax", ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE, LICENCE,
              "", 5);
    subscribe(f, txn, "tax", ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE, LICENCE,
              "", 9);
    subscribe(f, txn, "bank", ONCE__SUBSCRIPTION_SCOPE__SCOPE_SUBJECT,
              LICENCE, SUB_A, 10);
    assert_int_equal(subscriptions_get(txn, &f->t, "tax",
                                       ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE,
                                       LICENCE, "", &leaf, &err), 0);
    assert_int_equal(leaf, 5); /* renewed, not moved */
    assert_int_equal(subscriptions_list(txn, &f->t, NULL, count_one, &n,
                                        &err), 0);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(subscriptions_count(txn, &f->t, "tax", 256, &n, &err),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(subscriptions_del(txn, &f->t, "tax",
                                       ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE,
                                       LICENCE, "", &err), 0);
    assert_int_equal(subscriptions_del(txn, &f->t, "tax",
                                       ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE,
                                       LICENCE, "", &err),
                     -ONCE_ERR_NOT_FOUND);
    n = 0;
    assert_int_equal(subscriptions_list(txn, &f->t, "tax", count_one, &n,
                                        &err), 0);
    assert_int_equal(n, 0);
    temp_store_commit(txn);
}

static size_t last_txnid(fixture *f)
{
    MDB_envinfo info;

    assert_int_equal(mdb_env_info(f->s.env, &info), 0);
    return info.me_last_txnid;
}

/* A granted request for a copy the department holds already writes
 * nothing: the transaction stays clean, so its commit writes no page and
 * no new meta page (LMDB commits a clean write transaction as a no-op). */
static void test_held_again_writes_nothing(void **state)
{
    fixture *f = *state;
    uint8_t h[AUDIT_SUBJECT_HASH_BYTES];
    once_error err;
    MDB_txn *txn;
    size_t before;

    hash_of(h, SUB_A);
    txn = temp_store_begin(&f->s, 0);
    assert_int_equal(subscriptions_held_put(txn, &f->t, LICENCE, h, "tax",
                                            &err), 0);
    temp_store_commit(txn);
    before = last_txnid(f);
    txn = temp_store_begin(&f->s, 0);
    assert_int_equal(subscriptions_held_put(txn, &f->t, LICENCE, h, "tax",
                                            &err), 0);
    temp_store_commit(txn);
    assert_int_equal(last_txnid(f), before);
    /* A copy not held yet is stored. */
    txn = temp_store_begin(&f->s, 0);
    assert_int_equal(subscriptions_held_put(txn, &f->t, LICENCE, h, "bank",
                                            &err), 0);
    temp_store_commit(txn);
    assert_int_equal(last_txnid(f), before + 1);
}

static size_t prune(fixture *f, size_t max, bool *more)
{
    MDB_txn *txn = temp_store_begin(&f->s, 0);
    once_error err;
    size_t n;

    assert_int_equal(subscriptions_prune(txn, &f->t, max, &n, more, &err),
                     0);
    temp_store_commit(txn);
    return n;
}

static size_t stored(fixture *f)
{
    MDB_txn *txn = temp_store_begin(&f->s, 1);
    once_error err;
    size_t n;

    assert_int_equal(subscriptions_events_stored(txn, &f->t, &n, &err), 0);
    mdb_txn_abort(txn);
    return n;
}

/* Events at or below the lowest cursor of the departments holding a
 * subscription go, in batches, never the newest; a department without
 * a subscription does not hold them back. */
static void test_prune_below_every_cursor(void **state)
{
    fixture *f = *state;
    MDB_txn *txn = temp_store_begin(&f->s, 0);
    once_error err;
    bool more;
    uint64_t i;

    for (i = 1; i <= 6; i++)
        event(f, txn, i, LICENCE, SUB_A, i, false);
    temp_store_commit(txn);
    /* Nobody subscribes: all but the newest can go, two at a time. */
    assert_int_equal(prune(f, 2, &more), 2);
    assert_true(more);
    assert_int_equal(prune(f, 100, &more), 3);
    assert_false(more);
    assert_int_equal(stored(f), 1);

    txn = temp_store_begin(&f->s, 0);
    subscribe(f, txn, "tax", ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE, LICENCE,
              "", 7);
    subscribe(f, txn, "bank", ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE, LICENCE,
              "", 8);
    for (i = 9; i <= 12; i++)
        event(f, txn, i, LICENCE, SUB_A, i, false);
    assert_int_equal(subscriptions_cursor_put(txn, &f->t, "tax", 12, &err),
                     0);
    assert_int_equal(subscriptions_cursor_put(txn, &f->t, "bank", 9, &err),
                     0);
    assert_int_equal(subscriptions_cursor_put(txn, &f->t, "police", 1, &err),
                     0); /* no subscription: not counted */
    temp_store_commit(txn);
    /* The bank acknowledged 9: 6 and 9 go, 10 to 12 stay. */
    assert_int_equal(prune(f, 100, &more), 2);
    assert_int_equal(stored(f), 3);
    assert_int_equal(scan(f, "bank", 9, 64, 4096, NULL).n, 3);
    /* The bank cancels: only tax's cursor counts; 12 is the newest. */
    txn = temp_store_begin(&f->s, 0);
    assert_int_equal(subscriptions_del(txn, &f->t, "bank",
                                       ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE,
                                       LICENCE, "", &err), 0);
    temp_store_commit(txn);
    assert_int_equal(prune(f, 100, &more), 2);
    assert_int_equal(stored(f), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scopes_match_what_they_say,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_grant_no_notice, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cursor_only_grows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_renew_list_cancel, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_held_again_writes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_prune_below_every_cursor, setup,
                                        teardown),
    };

    if (once_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
