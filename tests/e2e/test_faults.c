/*
 * test_faults.c - what onced does after a failure of its own.
 *
 * These tests run onced-faults, the broker built with the test-only
 * failures of broker/faults.h, chosen per test with ONCED_FAULTS:
 *
 *   - a group commit that fails answers INTERNAL, and that answer is kept
 *     nowhere: the retry of the same bytes is executed and succeeds
 *     (before, the failure was remembered as the envelope's answer, so no
 *     retry could ever succeed);
 *   - a refusal that cannot be handed to the writer, to be logged, is
 *     answered UNAVAILABLE, never sent as if it had been logged; the retry
 *     gets the logged refusal with its receipt;
 *   - an answer whose hand-over to the I/O thread a signal interrupts
 *     is handed over again, not lost: the client gets it at once, not
 *     only by a retry after its timeout;
 *   - a writer that dies leaves messages nobody will answer: the broker
 *     stops by itself and exits 1 instead of waiting for them forever.
 *     A broker that hangs fails this test by meson's timeout.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "harness.h"

#define LICENCE "business-licence"
#define PURPOSE "tax-registration"
#define ANSWER_TIMEOUT_MS 20000

static e2e_broker broker;
static e2e_dept market, tax, police;
static e2e_raw raw;
static uint64_t session;

/* A broker home with market supervision issuing licences, tax allowed to
 * read them and police not; onced-faults started with faults. */
static void start(const char *faults)
{
    assert_int_equal(e2e_init(&broker), 0);
    assert_int_equal(e2e_dept_add(&broker, &market, "market-supervision"), 0);
    assert_int_equal(e2e_dept_add(&broker, &tax, "tax"), 0);
    assert_int_equal(e2e_dept_add(&broker, &police, "police"), 0);
    assert_int_equal(e2e_oncectl(&broker, "type", "add", LICENCE, "--issuer",
                                 market.id, "--subject", "enterprise",
                                 "--fields", "name", NULL), 0);
    assert_int_equal(e2e_oncectl(&broker, "grant", "add", "--requester",
                                 tax.id, "--type", LICENCE, "--purpose",
                                 PURPOSE, "--fields", "name", NULL), 0);
    assert_int_equal(setenv("ONCED_FAULTS", faults, 1), 0);
    assert_int_equal(e2e_start(&broker, &market, "--workers", "2", NULL), 0);
    unsetenv("ONCED_FAULTS");
    session = e2e_session();
}

static int teardown(void **state)
{
    (void)state;
    e2e_raw_close(&raw);
    memset(&raw, 0, sizeof(raw));
    e2e_cleanup(&broker);
    return 0;
}

static uint8_t *publish_envelope(const e2e_dept *d, uint64_t seq,
                                 const char *subject, size_t *len)
{
    once_record *r = NULL;
    once_error err;
    uint8_t *body, *env;
    size_t body_len;

    assert_int_equal(once_record_new(&r, LICENCE, subject, 1, d->id, 0, 0,
                                     &err), 0);
    assert_int_equal(once_record_add_text(r, "name", "Faulty Co.", &err), 0);
    assert_int_equal(once_record_sign(r, &d->kp, &err), 0);
    assert_int_equal(once_record_serialize(r, &body, &body_len, &err), 0);
    once_record_free(r);
    assert_int_equal(e2e_envelope(&env, len, d->id, session, seq,
                                  once_now_ms(), ONCE__KIND__KIND_PUBLISH,
                                  body, body_len, &d->kp), 0);
    free(body);
    return env;
}

/* Sends bytes and returns the answer to seq. */
static Once__Envelope *call(const uint8_t *bytes, size_t len, uint64_t seq)
{
    Once__Envelope *reply = NULL;

    assert_int_equal(e2e_raw_send(&raw, bytes, len), 0);
    if (e2e_raw_recv(&raw, ANSWER_TIMEOUT_MS, &reply) != 1) {
        e2e_dump_log(&broker);
        fail_msg("no answer from the broker");
    }
    assert_int_equal(reply->reply_to, seq);
    return reply;
}

/* Whether an answer carries a Receipt. */
static bool has_receipt(const Once__Envelope *reply)
{
    bool found;

    if (reply->kind == ONCE__KIND__KIND_ERROR) {
        Once__Error *e = once__error__unpack(NULL, reply->body.len,
                                             reply->body.data);

        assert_non_null(e);
        found = e->receipt != NULL;
        once__error__free_unpacked(e, NULL);
    } else {
        Once__Response *r = once__response__unpack(NULL, reply->body.len,
                                                   reply->body.data);

        assert_non_null(r);
        found = r->receipt != NULL;
        once__response__free_unpacked(r, NULL);
    }
    return found;
}

static void test_failed_commit_is_retried(void **state)
{
    Once__Envelope *reply;
    once_client *reader = NULL;
    once_record *rec = NULL;
    char subject[19];
    once_error err;
    uint8_t *env;
    size_t len;

    (void)state;
    start("commit=1");
    assert_int_equal(e2e_raw_open(&raw, &broker, &market.kp), 0);
    e2e_uscc(subject, 5500001);
    env = publish_envelope(&market, 1, subject, &len);

    reply = call(env, len, 1);
    assert_int_equal(e2e_reply_code(reply), ONCE_ERR_INTERNAL);
    assert_false(has_receipt(reply));
    once__envelope__free_unpacked(reply, NULL);
    assert_true(e2e_log_contains(&broker, "injected fault: commit"));

    /* The same bytes again: stored this time, with a receipt. */
    reply = call(env, len, 1);
    assert_int_equal(e2e_reply_code(reply), 0);
    assert_true(has_receipt(reply));
    once__envelope__free_unpacked(reply, NULL);
    free(env);

    assert_int_equal(e2e_client(&broker, &tax, &reader, &err), 0);
    assert_int_equal(once_client_request(reader, LICENCE, subject, PURPOSE,
                                         "F-1", 0, &rec, &err), 0);
    once_record_free(rec);
    once_client_close(reader);
    assert_int_equal(e2e_stop(&broker), 0);
}

static void test_unlogged_refusal_is_unavailable(void **state)
{
    Once__Envelope *reply;
    char subject[19];
    uint8_t *body, *env;
    size_t body_len, len;

    (void)state;
    start("hand-off=1");
    assert_int_equal(e2e_raw_open(&raw, &broker, &police.kp), 0);
    e2e_uscc(subject, 5500002);
    /* Police has no grant: NO_GRANT, a refusal that is logged. */
    assert_int_equal(e2e_request_body(&body, &body_len, LICENCE, subject,
                                      PURPOSE, "F-2", 0), 0);
    assert_int_equal(e2e_envelope(&env, &len, police.id, session, 1,
                                  once_now_ms(), ONCE__KIND__KIND_REQUEST,
                                  body, body_len, &police.kp), 0);
    free(body);

    /* Its leaf cannot be written: not NO_GRANT as if logged. */
    reply = call(env, len, 1);
    assert_int_equal(e2e_reply_code(reply), ONCE_ERR_UNAVAILABLE);
    assert_false(has_receipt(reply));
    once__envelope__free_unpacked(reply, NULL);

    /* The retry is logged and gets the refusal with its receipt. */
    reply = call(env, len, 1);
    assert_int_equal(e2e_reply_code(reply), ONCE_ERR_NO_GRANT);
    assert_true(has_receipt(reply));
    once__envelope__free_unpacked(reply, NULL);
    free(env);
    assert_int_equal(e2e_stop(&broker), 0);
}

static void test_interrupted_answer_is_delivered(void **state)
{
    Once__Envelope *reply;
    char subject[19];
    uint8_t *env;
    size_t len;

    (void)state;
    /* The writer's hand-over of the answer is interrupted twice in a
     * row: it is tried until it goes. */
    start("reply-interrupted=2");
    assert_int_equal(e2e_raw_open(&raw, &broker, &market.kp), 0);
    e2e_uscc(subject, 5500004);
    env = publish_envelope(&market, 1, subject, &len);
    /* Sent once: a lost answer fails here by the timeout. */
    reply = call(env, len, 1);
    assert_int_equal(e2e_reply_code(reply), 0);
    assert_true(has_receipt(reply));
    once__envelope__free_unpacked(reply, NULL);
    free(env);
    assert_true(e2e_log_contains(&broker, "injected fault: reply-interrupted"));
    assert_int_equal(e2e_stop(&broker), 0);
}

static void test_writer_death_stops_the_broker(void **state)
{
    char subject[19];
    uint8_t *env;
    size_t len;
    int status;

    (void)state;
    start("writer-dies");
    assert_int_equal(e2e_raw_open(&raw, &broker, &market.kp), 0);
    e2e_uscc(subject, 5500003);
    env = publish_envelope(&market, 1, subject, &len);
    /* Never answered: the writer dies with it. */
    assert_int_equal(e2e_raw_send(&raw, env, len), 0);
    free(env);

    while (waitpid(broker.pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    broker.pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 1) {
        e2e_dump_log(&broker);
        fail_msg("onced did not exit 1 after its writer died");
    }
    assert_true(e2e_log_contains(&broker, "gave up on 1 messages"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_failed_commit_is_retried, teardown),
        cmocka_unit_test_teardown(test_unlogged_refusal_is_unavailable,
                                  teardown),
        cmocka_unit_test_teardown(test_interrupted_answer_is_delivered,
                                  teardown),
        cmocka_unit_test_teardown(test_writer_death_stops_the_broker,
                                  teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
