/*
 * test_notices.c - subscriptions and notices (docs/PROTOCOL.md 4.9)
 * against a real onced.
 *
 * A broker home where market supervision issues business licences, the
 * tax bureau and a bank may request them and the police may not. What is
 * checked:
 *   - a subscriber offline while a licence is revoked gets the revocation
 *     when it comes back, and not again once it acknowledged it;
 *   - a kill -9 of the broker after a revoke was committed and before its
 *     notice could be pushed (the subscriber gave no credit) loses
 *     nothing: after the restart the subscriber gets it;
 *   - 200 subscribers (40 departments, 5 connections each) all get the
 *     notice of one revocation;
 *   - a subscriber that never reads does not stop another from getting
 *     every notice, and can still pull all of them afterwards;
 *   - after a reconnect the notices not acknowledged come again with the
 *     same leaf index, the acknowledged ones do not;
 *   - an acknowledgement without credit (once_client_notice_ack_pull, the
 *     gateway's) moves the cursor and answers it, and the connection's
 *     next notice_next registers again;
 *   - more acknowledgements without credit than the department has
 *     push registrations (16), each from another connection, take none:
 *     the department's watcher still gets its notice;
 *   - a department without a grant on the type cannot subscribe to it,
 *     and its subscription to the records it holds yields nothing;
 *   - subscribe and cancel are leaves of the log (receipts, the list,
 *     once-audit verifies the export), and the refusals have their codes;
 *     `oncectl subscriptions` lists them without printing a subject.
 * Waiting for a notice uses a timeout only as a bound on a failure;
 * absence is checked with pulls, whose answers are deterministic.
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

#define LICENCE "business-licence"
#define PURPOSE "account-opening"
/* A bound on how long a notice may take to arrive, never a measurement. */
#define NOTICE_WAIT_MS 20000
#define MANY_DEPARTMENTS 40
#define CONNECTIONS_EACH 5
#define BURST 300
/* More than the broker's push registrations per department (16,
 * docs/PROTOCOL.md 4.9). */
#define ACK_ONLY_CONNECTIONS 20

static e2e_broker broker;
static e2e_dept market, tax, bank, police;

static int setup(void **state)
{
    (void)state;
    assert_int_equal(e2e_init(&broker), 0);
    assert_int_equal(e2e_dept_add(&broker, &market, "market-supervision"), 0);
    assert_int_equal(e2e_dept_add(&broker, &tax, "tax"), 0);
    assert_int_equal(e2e_dept_add(&broker, &bank, "bank"), 0);
    assert_int_equal(e2e_dept_add(&broker, &police, "police"), 0);
    assert_int_equal(e2e_enterprise_type(&broker, LICENCE, &market, "name",
                                         &tax, PURPOSE, "name"), 0);
    assert_int_equal(e2e_oncectl(&broker, "grant", "add", "--requester",
                                 bank.id, "--type", LICENCE, "--purpose",
                                 PURPOSE, "--fields", "name", NULL), 0);
    assert_int_equal(e2e_start(&broker, &market, "--workers", "2", NULL), 0);
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
                          "Notice Test Co.");
}

/* Revokes subject at version; returns the revoke's leaf index. */
static uint64_t revoke(const char *subject, uint64_t version)
{
    once_error err;
    uint64_t leaf;

    if (e2e_revoke(&broker, &market, LICENCE, subject, version, &leaf, &err) < 0)
        fail_msg("revoke: %s", err.message);
    return leaf;
}

static void request(once_client *c, const char *subject)
{
    once_record *r = NULL;
    once_error err;

    if (once_client_request(c, LICENCE, subject, PURPOSE, "CASE-1", 0, &r,
                            &err) < 0)
        fail_msg("request: %s", err.message);
    once_record_free(r);
}

static void next_notice(once_client *c, once_notice *n)
{
    once_error err;

    if (once_client_notice_next(c, NOTICE_WAIT_MS, n, &err) < 0) {
        e2e_dump_log(&broker);
        fail_msg("notice_next: %s", err.message);
    }
}

static void test_offline_subscriber_resumes(void **state)
{
    char subject[19];
    once_client *c;
    once_notice n, none[4];
    once_error err;
    uint64_t leaf;

    (void)state;
    e2e_uscc(subject, 1101);
    publish(subject);
    e2e_open_client(&broker, &tax, &c);
    request(c, subject);
    assert_int_equal(once_client_subscribe(c, ONCE_SCOPE_HELD, NULL, NULL,
                                           NULL, &err), 0);
    once_client_close(c); /* offline during the revoke */

    leaf = revoke(subject, 2);

    e2e_open_client(&broker, &tax, &c);
    next_notice(c, &n);
    assert_int_equal(n.leaf_index, leaf);
    assert_int_equal(n.event, ONCE_NOTICE_REVOKED);
    assert_string_equal(n.type, LICENCE);
    assert_string_equal(n.subject, subject);
    assert_int_equal(n.version, 2);
    assert_int_equal(once_client_notice_ack(c, n.leaf_index, &err), 0);
    once_client_close(c);

    /* Acknowledged: a new connection gets nothing more after the cursor. */
    e2e_open_client(&broker, &tax, &c);
    {
        once_subscription *subs;
        size_t count;
        uint64_t acked;

        assert_int_equal(once_client_subscriptions(c, &subs, &count, &acked,
                                                   &err), 0);
        assert_int_equal(acked, leaf);
        free(subs);
        assert_int_equal(e2e_pull_notices(c, acked, none, 4), 0);
    }
    once_client_close(c);
}

/* Registers a raw connection of d for pushes with credit, as a client in
 * another language would (PROTOCOL.md 4.9): one NOTICE_ACK, answered by a
 * NOTICES batch. */
static void raw_register(e2e_raw *r, const e2e_dept *d, uint32_t credit)
{
    Once__NoticeAck a = ONCE__NOTICE_ACK__INIT;
    uint8_t body[32], *env;
    size_t body_len, env_len;
    Once__Envelope *reply;

    assert_int_equal(e2e_raw_open(r, &broker, &d->kp), 0);
    a.credit = credit;
    body_len = once__notice_ack__pack(&a, body);
    assert_int_equal(e2e_envelope(&env, &env_len, d->id, e2e_session(), 1,
                                  once_now_ms(), ONCE__KIND__KIND_NOTICE_ACK,
                                  body, body_len, &d->kp), 0);
    assert_int_equal(e2e_raw_send(r, env, env_len), 0);
    free(env);
    assert_int_equal(e2e_raw_recv(r, NOTICE_WAIT_MS, &reply), 1);
    assert_int_equal(reply->kind, ONCE__KIND__KIND_NOTICES);
    once__envelope__free_unpacked(reply, NULL);
}

static void test_kill9_between_revoke_and_delivery(void **state)
{
    char subject[19];
    once_client *c;
    once_notice n;
    once_error err;
    uint64_t leaf;
    e2e_raw r;

    (void)state;
    e2e_uscc(subject, 1202);
    publish(subject);
    e2e_open_client(&broker, &bank, &c);
    assert_int_equal(once_client_subscribe(c, ONCE_SCOPE_SUBJECT, LICENCE,
                                           subject, NULL, &err), 0);
    once_client_close(c);
    /* A connection registered with no credit: nothing can be pushed to
     * it, so the revoke below is committed and not delivered. */
    raw_register(&r, &bank, 0);

    leaf = revoke(subject, 2);
    e2e_kill(&broker);
    e2e_raw_close(&r);
    assert_int_equal(e2e_start(&broker, &market, "--workers", "2", NULL), 0);

    e2e_open_client(&broker, &bank, &c);
    next_notice(c, &n);
    assert_int_equal(n.leaf_index, leaf);
    assert_int_equal(n.event, ONCE_NOTICE_REVOKED);
    assert_string_equal(n.subject, subject);
    once_client_close(c);
}

static void test_two_hundred_subscribers(void **state)
{
    static e2e_dept depts[MANY_DEPARTMENTS];
    static once_client *clients[MANY_DEPARTMENTS * CONNECTIONS_EACH];
    char subject[19], id[32];
    once_error err;
    uint64_t leaf;
    size_t i, k;

    (void)state;
    e2e_uscc(subject, 1303);
    publish(subject);
    for (i = 0; i < MANY_DEPARTMENTS; i++) {
        snprintf(id, sizeof(id), "subscriber-%02zu", i);
        assert_int_equal(e2e_dept_add(&broker, &depts[i], id), 0);
        assert_int_equal(e2e_oncectl(&broker, "grant", "add", "--requester",
                                     id, "--type", LICENCE, "--purpose",
                                     PURPOSE, "--fields", "name", NULL), 0);
    }
    for (i = 0; i < MANY_DEPARTMENTS; i++) {
        for (k = 0; k < CONNECTIONS_EACH; k++) {
            once_client *c;

            e2e_open_client(&broker, &depts[i], &c);
            clients[i * CONNECTIONS_EACH + k] = c;
            if (k == 0 &&
                once_client_subscribe(c, ONCE_SCOPE_TYPE, LICENCE, NULL,
                                      NULL, &err) < 0)
                fail_msg("subscribe: %s", err.message);
            /* Registers this connection: acknowledges nothing yet. */
            if (once_client_notice_ack(c, 0, &err) < 0)
                fail_msg("register: %s", err.message);
        }
    }
    leaf = revoke(subject, 2);
    for (i = 0; i < MANY_DEPARTMENTS * CONNECTIONS_EACH; i++) {
        once_notice n;

        next_notice(clients[i], &n);
        assert_int_equal(n.leaf_index, leaf);
        assert_int_equal(n.event, ONCE_NOTICE_REVOKED);
    }
    for (i = 0; i < MANY_DEPARTMENTS * CONNECTIONS_EACH; i++)
        once_client_close(clients[i]);
}

static void test_slow_subscriber_does_not_hold_others(void **state)
{
    static once_notice pulled[BURST + 8];
    size_t i;
    once_client *c, *slow;
    uint64_t first = 0, last = 0;
    once_error err;
    e2e_raw r;

    (void)state;
    e2e_open_client(&broker, &tax, &c);
    assert_int_equal(once_client_subscribe(c, ONCE_SCOPE_TYPE, LICENCE, NULL,
                                           NULL, &err), 0);
    e2e_open_client(&broker, &bank, &slow);
    assert_int_equal(once_client_subscribe(slow, ONCE_SCOPE_TYPE, LICENCE,
                                           NULL, NULL, &err), 0);
    once_client_close(slow);
    /* The bank registers with the most credit and never reads. */
    raw_register(&r, &bank, 1024);

    for (i = 0; i < BURST; i++) {
        char subject[19];
        once_notice n;

        e2e_uscc(subject, 20000 + (unsigned)i);
        publish(subject);
        next_notice(c, &n);
        assert_string_equal(n.subject, subject);
        assert_int_equal(n.event, ONCE_NOTICE_NEW_VERSION);
        assert_true(n.leaf_index > last);
        if (i == 0)
            first = n.leaf_index;
        last = n.leaf_index;
        if (i % 50 == 49)
            assert_int_equal(once_client_notice_ack(c, last, &err), 0);
    }
    once_client_close(c);
    e2e_raw_close(&r);
    /* The bank missed nothing: every notice is there to pull. */
    e2e_open_client(&broker, &bank, &slow);
    assert_int_equal(e2e_pull_notices(slow, first - 1, pulled, BURST + 8),
                     BURST);
    assert_int_equal(pulled[0].leaf_index, first);
    assert_int_equal(pulled[BURST - 1].leaf_index, last);
    once_client_close(slow);
}

static void test_duplicates_after_reconnect(void **state)
{
    char s1[19], s2[19];
    once_client *c;
    once_notice n1, n2, again;
    once_error err;

    (void)state;
    e2e_uscc(s1, 1401);
    e2e_uscc(s2, 1402);
    e2e_open_client(&broker, &tax, &c);
    assert_int_equal(once_client_subscribe(c, ONCE_SCOPE_TYPE, LICENCE, NULL,
                                           NULL, &err), 0);
    publish(s1);
    publish(s2);
    next_notice(c, &n1);
    next_notice(c, &n2);
    assert_true(n1.leaf_index < n2.leaf_index);
    assert_string_equal(n1.subject, s1);
    assert_string_equal(n2.subject, s2);
    assert_int_equal(once_client_notice_ack(c, n1.leaf_index, &err), 0);
    once_client_close(c); /* n2 received, not acknowledged */

    e2e_open_client(&broker, &tax, &c);
    next_notice(c, &again);
    assert_int_equal(again.leaf_index, n2.leaf_index);
    assert_string_equal(again.subject, s2);
    once_client_close(c);
}

/* once_client_notice_ack_pull: the cursor moves and comes back, without
 * credit for the connection; a later notice_next on it registers again
 * (else it would wait for pushes the broker no longer sends). */
static void test_ack_without_pushes(void **state)
{
    char s1[19], s2[19];
    once_client *c;
    once_notice n1, n2;
    once_subscription *subs = NULL;
    size_t count = 0;
    once_error err;
    uint64_t cursor = 0, acked = 0;

    (void)state;
    e2e_uscc(s1, 1501);
    e2e_uscc(s2, 1502);
    e2e_open_client(&broker, &tax, &c);
    assert_int_equal(once_client_subscribe(c, ONCE_SCOPE_TYPE, LICENCE, NULL,
                                           NULL, &err), 0);
    publish(s1);
    next_notice(c, &n1);
    assert_string_equal(n1.subject, s1);
    assert_int_equal(once_client_notice_ack_pull(c, n1.leaf_index, &cursor,
                                                 &err), 0);
    assert_int_equal(cursor, n1.leaf_index);
    assert_int_equal(once_client_subscriptions(c, &subs, &count, &acked,
                                               &err), 0);
    free(subs);
    assert_int_equal(acked, n1.leaf_index);
    /* Below the cursor changes nothing; beyond the newest is refused. */
    assert_int_equal(once_client_notice_ack_pull(c, 0, &cursor, &err), 0);
    assert_int_equal(cursor, n1.leaf_index);
    assert_int_equal(once_client_notice_ack_pull(c, 1u << 30, NULL, &err),
                     -ONCE_ERR_NOT_FOUND);
    publish(s2);
    next_notice(c, &n2);
    assert_string_equal(n2.subject, s2);
    assert_true(n2.leaf_index > n1.leaf_index);
    once_client_close(c);
}

/* A gateway's pooled connections acknowledge with credit 0
 * (once_client_notice_ack_pull) and never read pushes: they must not
 * replace its watcher's registration. The watcher registered (it got n1)
 * before the acknowledgements, which reach the fan-out before the next
 * event; had they taken entries, the watcher's would be the oldest and
 * dropped, and its notice_next would wait out NOTICE_WAIT_MS (libonce
 * registers again only after 30 s). */
static void test_ack_only_connections_take_no_slot(void **state)
{
    char s1[19], s2[19];
    once_client *watcher, *pooled;
    once_notice n1, n2;
    once_error err;
    uint64_t cursor = 0;
    int i;

    (void)state;
    e2e_uscc(s1, 1601);
    e2e_uscc(s2, 1602);
    e2e_open_client(&broker, &tax, &watcher);
    assert_int_equal(once_client_subscribe(watcher, ONCE_SCOPE_TYPE, LICENCE,
                                           NULL, NULL, &err), 0);
    publish(s1);
    next_notice(watcher, &n1);
    assert_string_equal(n1.subject, s1);
    for (i = 0; i < ACK_ONLY_CONNECTIONS; i++) {
        e2e_open_client(&broker, &tax, &pooled);
        assert_int_equal(once_client_notice_ack_pull(pooled, n1.leaf_index,
                                                     &cursor, &err), 0);
        assert_int_equal(cursor, n1.leaf_index);
        once_client_close(pooled);
    }
    publish(s2);
    next_notice(watcher, &n2);
    assert_string_equal(n2.subject, s2);
    assert_int_equal(n2.event, ONCE_NOTICE_NEW_VERSION);
    assert_true(n2.leaf_index > n1.leaf_index);
    once_client_close(watcher);
}

static void test_no_grant_gets_nothing(void **state)
{
    char subject[19];
    once_notice none[4];
    once_client *c;
    once_record *r = NULL;
    once_error err;
    uint64_t leaf;

    (void)state;
    e2e_uscc(subject, 1501);
    publish(subject);
    e2e_open_client(&broker, &police, &c);
    assert_int_equal(once_client_subscribe(c, ONCE_SCOPE_TYPE, LICENCE, NULL,
                                           NULL, &err), -ONCE_ERR_NO_GRANT);
    assert_int_equal(once_client_subscribe(c, ONCE_SCOPE_SUBJECT, LICENCE,
                                           subject, NULL, &err),
                     -ONCE_ERR_NO_GRANT);
    /* The records it holds: none, since its requests are refused. */
    assert_int_equal(once_client_request(c, LICENCE, subject, PURPOSE, "C-1",
                                         0, &r, &err), -ONCE_ERR_NO_GRANT);
    assert_int_equal(once_client_subscribe(c, ONCE_SCOPE_HELD, NULL, NULL,
                                           NULL, &err), 0);
    leaf = revoke(subject, 2);
    assert_int_equal(e2e_pull_notices(c, 0, none, 4), 0);
    {
        size_t count;
        uint64_t scanned_to;

        /* Looked at up to the revoke, and found nothing for the police. */
        assert_int_equal(once_client_notices_pull(c, 0, none, 4, &count,
                                                  &scanned_to, &err), 0);
        assert_int_equal(count, 0);
        assert_int_equal(scanned_to, leaf);
    }
    once_client_close(c);
}

static void test_subscriptions_are_leaves(void **state)
{
    char subject[19], dir[PATH_MAX], *out = NULL;
    once_subscription *subs = NULL;
    once_receipt sub, cancel;
    const char *audit = getenv("ONCE_AUDIT");
    once_client *c;
    once_error err;
    size_t count;

    (void)state;
    memset(&sub, 0, sizeof(sub));
    memset(&cancel, 0, sizeof(cancel));
    e2e_uscc(subject, 1601);
    e2e_open_client(&broker, &tax, &c);
    assert_int_equal(once_client_subscribe(c, ONCE_SCOPE_SUBJECT, LICENCE,
                                           subject, &sub, &err), 0);
    assert_true(sub.logged);
    assert_int_equal(once_client_subscriptions(c, &subs, &count, NULL, &err),
                     0);
    assert_int_equal(count, 1);
    assert_int_equal(subs[0].scope, ONCE_SCOPE_SUBJECT);
    assert_string_equal(subs[0].type, LICENCE);
    assert_string_equal(subs[0].subject, subject);
    assert_int_equal(subs[0].leaf_index, sub.leaf_index);
    free(subs);
    /* The operator's listing names it without printing the subject. */
    if (e2e_run(&out, "'%s' --home '%s' subscriptions", getenv("ONCECTL"),
                broker.home) != 0)
        fail_msg("oncectl subscriptions: %s", out);
    assert_non_null(strstr(out, "(one subject)"));
    assert_non_null(strstr(out, tax.id));
    assert_null(strstr(out, subject));
    free(out);
    out = NULL;
    assert_int_equal(once_client_unsubscribe(c, ONCE_SCOPE_SUBJECT, LICENCE,
                                             subject, &cancel, &err), 0);
    assert_true(cancel.logged);
    assert_true(cancel.leaf_index > sub.leaf_index);
    assert_int_equal(once_client_subscriptions(c, &subs, &count, NULL, &err),
                     0);
    assert_int_equal(count, 0);
    /* Refusals, logged as well. */
    assert_int_equal(once_client_unsubscribe(c, ONCE_SCOPE_SUBJECT, LICENCE,
                                             subject, &cancel, &err),
                     -ONCE_ERR_NOT_FOUND);
    assert_true(cancel.logged);
    assert_int_equal(once_client_subscribe(c, ONCE_SCOPE_TYPE, "no-such-type",
                                           NULL, NULL, &err),
                     -ONCE_ERR_UNKNOWN_TYPE);
    assert_int_equal(once_client_subscribe(c, ONCE_SCOPE_SUBJECT, LICENCE,
                                           "91350100M000100Y40", NULL, &err),
                     -ONCE_ERR_INVALID_SUBJECT);
    assert_int_equal(once_client_notice_ack(c, 1u << 30, &err),
                     -ONCE_ERR_NOT_FOUND);
    once_client_close(c);
    once_receipt_clear(&sub);
    once_receipt_clear(&cancel);

    /* once-audit checks the subscribe and unsubscribe leaves against
     * their evidence. */
    snprintf(dir, sizeof(dir), "%s/export", broker.dir);
    assert_int_equal(e2e_oncectl(&broker, "log", "export", dir, NULL), 0);
    assert_non_null(audit);
    if (e2e_run(&out, "'%s' verify '%s' --key '%s/broker.pub'", audit, dir,
                broker.home) != 0)
        fail_msg("once-audit: %s", out);
    free(out);
}

static void test_malformed_subscription(void **state)
{
    Once__Subscribe s = ONCE__SUBSCRIBE__INIT;
    uint8_t body[64], *env;
    size_t body_len, env_len;
    Once__Envelope *reply;
    e2e_raw r;

    (void)state;
    assert_int_equal(e2e_raw_open(&r, &broker, &tax.kp), 0);
    s.scope = ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE;
    s.type = LICENCE;
    s.subject = "91350100M000100Y43"; /* a type subscription has none */
    body_len = once__subscribe__pack(&s, body);
    assert_int_equal(e2e_envelope(&env, &env_len, tax.id, e2e_session(), 1,
                                  once_now_ms(), ONCE__KIND__KIND_SUBSCRIBE,
                                  body, body_len, &tax.kp), 0);
    assert_int_equal(e2e_raw_send(&r, env, env_len), 0);
    free(env);
    assert_int_equal(e2e_raw_recv(&r, NOTICE_WAIT_MS, &reply), 1);
    assert_int_equal(e2e_reply_code(reply), ONCE_ERR_MALFORMED);
    once__envelope__free_unpacked(reply, NULL);
    e2e_raw_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_offline_subscriber_resumes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_kill9_between_revoke_and_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_hundred_subscribers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_slow_subscriber_does_not_hold_others, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_after_reconnect,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_without_pushes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_ack_only_connections_take_no_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_grant_gets_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_subscriptions_are_leaves, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malformed_subscription, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
