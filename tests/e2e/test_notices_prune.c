/*
 * test_notices_prune.c - the broker deletes the notice events nobody can
 * be notified of any more (broker/subscriptions.c, docs/PROTOCOL.md 4.9),
 * against a real onced.
 *
 * Two departments subscribe to a type and five records of it are
 * published: five events. One department acknowledges all five, the
 * other the first two. What is checked, by counting the events in the
 * broker's own LMDB tables after each stop (a stopping broker makes the
 * pruning step it has pending, so the count does not depend on timing):
 *   - the events both acknowledged are gone, the three the slower one did
 *     not acknowledge stay;
 *   - after a restart the slower department still gets those three
 *     notices, pushed and pulled, and nothing it had acknowledged;
 *   - once it acknowledged them too only the newest event is left (an
 *     acknowledgement is checked against it), and a later
 *     acknowledgement of it is still accepted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "store.h"
#include "subscriptions.h"

#define LICENCE "business-licence"
#define PURPOSE "account-opening"
/* A bound on how long a notice may take to arrive, never a measurement. */
#define NOTICE_WAIT_MS 20000
#define RECORDS 5

static e2e_broker broker;
static e2e_dept market, tax, bank;

static int setup(void **state)
{
    (void)state;
    assert_int_equal(e2e_init(&broker), 0);
    assert_int_equal(e2e_dept_add(&broker, &market, "market-supervision"), 0);
    assert_int_equal(e2e_dept_add(&broker, &tax, "tax"), 0);
    assert_int_equal(e2e_dept_add(&broker, &bank, "bank"), 0);
    assert_int_equal(e2e_enterprise_type(&broker, LICENCE, &market, "name",
                                         &tax, PURPOSE, "name"), 0);
    assert_int_equal(e2e_oncectl(&broker, "grant", "add", "--requester",
                                 bank.id, "--type", LICENCE, "--purpose",
                                 PURPOSE, "--fields", "name", NULL), 0);
    assert_int_equal(e2e_start(&broker, &market, NULL), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_cleanup(&broker);
    return 0;
}

/* The events in the stopped broker's tables. */
static size_t events_stored(void)
{
    char db_path[PATH_MAX + 8];
    subscriptions t;
    once_error err;
    MDB_txn *txn;
    size_t n = 0;
    store s;

    snprintf(db_path, sizeof(db_path), "%s/db", broker.home);
    if (store_open(&s, db_path, 0, &err) < 0 ||
        subscriptions_open(&t, &s, &err) < 0 ||
        store_begin(&s, 1, &txn, &err) < 0)
        fail_msg("cannot open the broker's tables: %s", err.message);
    if (subscriptions_events_stored(txn, &t, &n, &err) < 0)
        fail_msg("cannot count the events: %s", err.message);
    mdb_txn_abort(txn);
    store_close(&s);
    return n;
}

static void publish(unsigned n)
{
    char subject[19];

    e2e_uscc(subject, n);
    e2e_must_publish_name(&broker, &market, LICENCE, subject,
                          "Prune Test Co.");
}

static void subscribe(const e2e_dept *d)
{
    once_client *c;
    once_error err;

    e2e_open_client(&broker, d, &c);
    if (once_client_subscribe(c, ONCE_SCOPE_TYPE, LICENCE, NULL, NULL,
                              &err) < 0)
        fail_msg("subscribe: %s", err.message);
    once_client_close(c);
}

static void ack(const e2e_dept *d, uint64_t leaf)
{
    once_client *c;
    once_error err;

    e2e_open_client(&broker, d, &c);
    if (once_client_notice_ack(c, leaf, &err) < 0)
        fail_msg("ack %llu: %s", (unsigned long long)leaf, err.message);
    once_client_close(c);
}

static void test_acknowledged_events_are_pruned(void **state)
{
    once_notice all[RECORDS + 1], got[RECORDS + 1];
    once_client *c;
    once_error err;
    unsigned i;

    (void)state;
    subscribe(&tax);
    subscribe(&bank);
    for (i = 0; i < RECORDS; i++)
        publish(2100 + i);
    e2e_open_client(&broker, &tax, &c);
    assert_int_equal(e2e_pull_notices(c, 0, all, RECORDS + 1), RECORDS);
    once_client_close(c);
    ack(&tax, all[RECORDS - 1].leaf_index);
    ack(&bank, all[1].leaf_index);
    assert_int_equal(e2e_stop(&broker), 0);
    /* Both acknowledged the first two; the bank not the other three. */
    assert_int_equal(events_stored(), RECORDS - 2);

    assert_int_equal(e2e_start(&broker, &market, NULL), 0);
    e2e_open_client(&broker, &bank, &c);
    for (i = 2; i < RECORDS; i++) {
        if (once_client_notice_next(c, NOTICE_WAIT_MS, &got[i], &err) < 0) {
            e2e_dump_log(&broker);
            fail_msg("notice_next: %s", err.message);
        }
        assert_int_equal(got[i].leaf_index, all[i].leaf_index);
        assert_string_equal(got[i].subject, all[i].subject);
    }
    assert_int_equal(e2e_pull_notices(c, all[1].leaf_index, got, RECORDS + 1),
                     RECORDS - 2);
    for (i = 0; i < RECORDS - 2; i++)
        assert_int_equal(got[i].leaf_index, all[i + 2].leaf_index);
    assert_int_equal(once_client_notice_ack(c, all[RECORDS - 1].leaf_index,
                                            &err), 0);
    once_client_close(c);
    assert_int_equal(e2e_stop(&broker), 0);
    /* Everything acknowledged: the newest stays, for the check of an
     * acknowledgement. */
    assert_int_equal(events_stored(), 1);

    assert_int_equal(e2e_start(&broker, &market, NULL), 0);
    ack(&bank, all[RECORDS - 1].leaf_index);
    e2e_open_client(&broker, &bank, &c);
    assert_int_equal(e2e_pull_notices(c, 0, got, RECORDS + 1), 1);
    assert_int_equal(got[0].leaf_index, all[RECORDS - 1].leaf_index);
    once_client_close(c);
    assert_int_equal(e2e_stop(&broker), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_acknowledged_events_are_pruned,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
