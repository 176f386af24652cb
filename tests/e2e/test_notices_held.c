/*
 * test_notices_held.c - the records a department holds are indexed off
 * the request's commit (broker/held_buffer.c), and a SCOPE_HELD
 * subscriber still gets every notice PROTOCOL.md 4.9 promises it.
 *
 * The broker is onced-faults with held-flush: its flushes of the copies
 * granted in a transaction of their own (a second after the first) never
 * happen, so what is checked does not depend on timing:
 *   - a copy granted just before a revoke is matched by that revoke's
 *     notice: the revoke's group puts the copies in memory first; a
 *     record the subscriber never requested gives it no notice;
 *   - a request-only group's commit leaves `notice_held` alone: after a
 *     kill -9 that follows a granted request, the table is empty and its
 *     mark below the log's size;
 *   - after that kill -9 the restart puts the copy from the log, and the
 *     revoke that follows reaches the subscriber.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auditlog.h"
#include "harness.h"
#include "held_buffer.h"
#include "store.h"
#include "subscriptions.h"

#define LICENCE "business-licence"
#define PURPOSE "account-opening"
/* A bound on how long a notice may take to arrive, never a measurement. */
#define NOTICE_WAIT_MS 20000
#define NO_FLUSH "held-flush=1000000"

static e2e_broker broker;
static e2e_dept market, tax;

static void start(void)
{
    assert_int_equal(setenv("ONCED_FAULTS", NO_FLUSH, 1), 0);
    assert_int_equal(e2e_start(&broker, &market, "--workers", "2", NULL), 0);
    unsetenv("ONCED_FAULTS");
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(e2e_init(&broker), 0);
    assert_int_equal(e2e_dept_add(&broker, &market, "market-supervision"), 0);
    assert_int_equal(e2e_dept_add(&broker, &tax, "tax"), 0);
    assert_int_equal(e2e_enterprise_type(&broker, LICENCE, &market, "name",
                                         &tax, PURPOSE, "name"), 0);
    start();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_cleanup(&broker);
    return 0;
}

static void publish(const char *subject)
{
    e2e_must_publish_name(&broker, &market, LICENCE, subject,
                          "Held Test Co.");
}

/* Revokes subject (version 2); returns the revoke's leaf index. */
static uint64_t revoke(const char *subject)
{
    once_error err;
    uint64_t leaf;

    if (e2e_revoke(&broker, &market, LICENCE, subject, 2, &leaf, &err) < 0)
        fail_msg("revoke: %s", err.message);
    return leaf;
}

/* tax subscribes to the records it holds, then requests subject. */
static void subscribe_and_request(const char *subject)
{
    once_client *c;
    once_record *r = NULL;
    once_error err;

    e2e_open_client(&broker, &tax, &c);
    if (once_client_subscribe(c, ONCE_SCOPE_HELD, NULL, NULL, NULL,
                              &err) < 0 ||
        once_client_request(c, LICENCE, subject, PURPOSE, "CASE-H", 0, &r,
                            &err) < 0)
        fail_msg("subscribe and request: %s", err.message);
    once_record_free(r);
    once_client_close(c);
}

static void next_notice(once_notice *n)
{
    once_client *c;
    once_error err;

    e2e_open_client(&broker, &tax, &c);
    if (once_client_notice_next(c, NOTICE_WAIT_MS, n, &err) < 0) {
        e2e_dump_log(&broker);
        fail_msg("notice_next: %s", err.message);
    }
    once_client_close(c);
}

static void test_copy_granted_just_before_a_revoke(void **state)
{
    char held_subject[19], other[19];
    once_notice n, all[4];
    once_client *c;
    uint64_t leaf, other_leaf;

    (void)state;
    e2e_uscc(held_subject, 3101);
    e2e_uscc(other, 3102);
    publish(held_subject);
    publish(other);
    subscribe_and_request(held_subject);
    other_leaf = revoke(other); /* tax never requested it */
    leaf = revoke(held_subject);
    next_notice(&n);
    assert_int_equal(n.leaf_index, leaf);
    assert_int_equal(n.event, ONCE_NOTICE_REVOKED);
    assert_string_equal(n.subject, held_subject);
    e2e_open_client(&broker, &tax, &c);
    assert_int_equal(e2e_pull_notices(c, 0, all, 4), 1);
    assert_int_equal(all[0].leaf_index, leaf);
    assert_true(other_leaf < leaf);
    once_client_close(c);
    assert_int_equal(e2e_stop(&broker), 0);
}

/* The entries of `notice_held`, its mark and the log's size, read from
 * the stopped broker's tables. */
static void tables(size_t *entries, uint64_t *mark, uint64_t *size)
{
    char db_path[PATH_MAX + 8];
    subscriptions t;
    auditlog log;
    once_error err;
    MDB_txn *txn;
    MDB_stat st;
    bool found;
    store s;

    snprintf(db_path, sizeof(db_path), "%s/db", broker.home);
    if (store_open(&s, db_path, 0, &err) < 0 ||
        subscriptions_open(&t, &s, &err) < 0 ||
        auditlog_open(&log, &s, &err) < 0 ||
        store_begin(&s, 1, &txn, &err) < 0)
        fail_msg("cannot open the broker's tables: %s", err.message);
    assert_int_equal(mdb_stat(txn, t.held, &st), 0);
    *entries = st.ms_entries;
    assert_int_equal(held_mark_get(txn, &t, mark, &found, &err), 0);
    assert_true(found);
    assert_int_equal(auditlog_size(txn, &log, size, &err), 0);
    mdb_txn_abort(txn);
    store_close(&s);
}

static void test_kill9_before_the_flush(void **state)
{
    char subject[19];
    once_notice n;
    uint64_t leaf, mark, size;
    size_t entries;

    (void)state;
    e2e_uscc(subject, 3201);
    publish(subject);
    subscribe_and_request(subject);
    e2e_kill(&broker);
    /* The request's group put nothing in the table; the copy was in
     * memory only, and the log has it above the mark. */
    tables(&entries, &mark, &size);
    assert_int_equal(entries, 0);
    assert_int_equal(size, 3); /* publish, subscribe, request */
    assert_true(mark < size);

    start();
    leaf = revoke(subject);
    next_notice(&n);
    assert_int_equal(n.leaf_index, leaf);
    assert_int_equal(n.event, ONCE_NOTICE_REVOKED);
    assert_string_equal(n.subject, subject);
    assert_int_equal(e2e_stop(&broker), 0);
    tables(&entries, &mark, &size);
    assert_int_equal(entries, 1);
    assert_int_equal(mark, size);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_copy_granted_just_before_a_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_before_the_flush, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
