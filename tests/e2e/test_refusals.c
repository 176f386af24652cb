/*
 * test_refusals.c - end to end: the budget of logged refusals per
 * department (issue 7, item 5; broker/refusal_budget.c).
 *
 * A department refused over and over used to add a leaf to the
 * append-only log for every refusal, without limit. The broker runs with
 * max_logged_refusals_per_department = BUDGET and a window of a day, so
 * nothing refills during the test (the refill itself is unit-tested with
 * a made-up clock, tests/storage/test_refusal_budget.c). Department
 * `flood` sends more refused requests than its budget: the first BUDGET
 * are logged, with receipts; the rest, and a badly signed envelope, are
 * answered QUOTA_EXCEEDED naming the limit, with no receipt and no leaf,
 * and the same bytes sent again are refused the same way (not REPLAY:
 * the refusal is not the envelope's answer). Its NOT_FOUND and its
 * granted request are still logged, as are another department's
 * refusal and grant. The leaf indices in the receipts show the log grew
 * by exactly the logged exchanges. Nothing here is timed.
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
#define PURPOSE "tax-registration"
#define OTHER_PURPOSE "curiosity"
#define ANSWER_TIMEOUT_MS 20000
#define BUDGET 4
#define OVER 3

static e2e_broker broker;
static e2e_dept market, tax, flood;
static char published[19], missing[19];

static int setup(void **state)
{
    once_error err;

    (void)state;
    e2e_uscc(published, 7900001);
    e2e_uscc(missing, 7900002);
    if (e2e_init(&broker) != 0 ||
        e2e_dept_add(&broker, &market, "market-supervision") != 0 ||
        e2e_dept_add(&broker, &tax, "tax") != 0 ||
        e2e_dept_add(&broker, &flood, "flood") != 0 ||
        e2e_enterprise_type(&broker, LICENCE, &market, "name", &tax, PURPOSE,
                            "name") != 0 ||
        e2e_oncectl(&broker, "grant", "add", "--requester", flood.id,
                    "--type", LICENCE, "--purpose", PURPOSE, "--fields",
                    "name", NULL) != 0 ||
        e2e_configure(&broker, "max_logged_refusals_per_department = %d\n"
                      "logged_refusals_window_seconds = 86400\n",
                      BUDGET) != 0 ||
        e2e_start(&broker, &market, NULL) != 0)
        return -1;
    return e2e_publish_name(&broker, &market, LICENCE, published,
                            "Budget Co.", &err);
}

static int teardown(void **state)
{
    (void)state;
    e2e_cleanup(&broker);
    return 0;
}

/* What came back for one envelope. */
typedef struct outcome {
    int code;          /* 0 for a Response */
    int64_t leaf;      /* the receipt's leaf index, -1 without a receipt */
    char message[ONCE_ERROR_MESSAGE_MAX];
} outcome;

static outcome send_bytes(e2e_raw *r, const uint8_t *env, size_t len,
                          uint64_t seq)
{
    Once__Envelope *reply = NULL;
    Once__Receipt *receipt = NULL;
    outcome o = { .leaf = -1 };

    assert_int_equal(e2e_raw_send(r, env, len), 0);
    if (e2e_raw_recv(r, ANSWER_TIMEOUT_MS, &reply) != 1) {
        e2e_dump_log(&broker);
        fail_msg("no answer for seq %llu", (unsigned long long)seq);
    }
    assert_int_equal(reply->reply_to, seq);
    o.code = e2e_reply_code(reply);
    if (reply->kind == ONCE__KIND__KIND_ERROR) {
        Once__Error *e = once__error__unpack(NULL, reply->body.len,
                                             reply->body.data);

        assert_non_null(e);
        snprintf(o.message, sizeof(o.message), "%s", e->message);
        receipt = e->receipt;
        if (receipt != NULL)
            o.leaf = (int64_t)receipt->leaf_index;
        once__error__free_unpacked(e, NULL);
    } else {
        Once__Response *resp = once__response__unpack(NULL, reply->body.len,
                                                      reply->body.data);

        assert_non_null(resp);
        receipt = resp->receipt;
        if (receipt != NULL)
            o.leaf = (int64_t)receipt->leaf_index;
        once__response__free_unpacked(resp, NULL);
    }
    once__envelope__free_unpacked(reply, NULL);
    return o;
}

/* A request of d, signed by signer, on its own session; *bytes keeps the
 * envelope when not NULL (free it). */
static outcome request(e2e_raw *r, const e2e_dept *d,
                       const once_keypair *signer, const char *subject,
                       const char *purpose, uint8_t **bytes, size_t *len)
{
    uint8_t *body, *env;
    size_t body_len, env_len;
    outcome o;

    assert_int_equal(e2e_request_body(&body, &body_len, LICENCE, subject,
                                      purpose, "B-1", 0), 0);
    assert_int_equal(e2e_envelope(&env, &env_len, d->id, e2e_session(), 1,
                                  once_now_ms(), ONCE__KIND__KIND_REQUEST,
                                  body, body_len, signer), 0);
    free(body);
    o = send_bytes(r, env, env_len, 1);
    if (bytes != NULL) {
        *bytes = env;
        *len = env_len;
    } else {
        free(env);
    }
    return o;
}

static void assert_over_budget(const outcome *o, const char *would_be)
{
    char limit[64];

    assert_int_equal(o->code, ONCE_ERR_QUOTA_EXCEEDED);
    assert_int_equal(o->leaf, -1);
    snprintf(limit, sizeof(limit), "max_logged_refusals_per_department = %d",
             BUDGET);
    if (strstr(o->message, limit) == NULL ||
        strstr(o->message, would_be) == NULL)
        fail_msg("unexpected message: %s", o->message);
}

static void test_refusals_over_the_budget_are_not_logged(void **state)
{
    e2e_raw rt, rf;
    outcome o, first;
    uint8_t *kept;
    size_t kept_len;
    int64_t next;
    int i;

    (void)state;
    assert_int_equal(e2e_raw_open(&rt, &broker, &tax.kp), 0);
    assert_int_equal(e2e_raw_open(&rf, &broker, &flood.kp), 0);

    first = request(&rt, &tax, &tax.kp, published, PURPOSE, NULL, NULL);
    assert_int_equal(first.code, 0);
    assert_true(first.leaf >= 0);
    next = first.leaf + 1;

    /* Within the budget: logged, each with the next leaf. */
    for (i = 0; i < BUDGET; i++) {
        o = request(&rf, &flood, &flood.kp, published, OTHER_PURPOSE, NULL,
                    NULL);
        assert_int_equal(o.code, ONCE_ERR_NO_GRANT);
        assert_int_equal(o.leaf, next++);
    }
    /* Over it: QUOTA_EXCEEDED, no receipt, no leaf. */
    for (i = 0; i < OVER; i++) {
        o = request(&rf, &flood, &flood.kp, published, OTHER_PURPOSE,
                    i == 0 ? &kept : NULL, &kept_len);
        assert_over_budget(&o, "NO_GRANT");
    }
    /* Not the envelope's answer: the same bytes are refused the same
     * way, not as a replay. */
    o = send_bytes(&rf, kept, kept_len, 1);
    assert_over_budget(&o, "NO_GRANT");
    free(kept);
    /* A refusal logged before the replay check counts too. */
    o = request(&rf, &flood, &tax.kp, published, PURPOSE, NULL, NULL);
    assert_over_budget(&o, "BAD_SIGNATURE");

    /* What the department was entitled to ask is still logged: a record
     * that is not there, and a grant. */
    o = request(&rf, &flood, &flood.kp, missing, PURPOSE, NULL, NULL);
    assert_int_equal(o.code, ONCE_ERR_NOT_FOUND);
    assert_int_equal(o.leaf, next++);
    o = request(&rf, &flood, &flood.kp, published, PURPOSE, NULL, NULL);
    assert_int_equal(o.code, 0);
    assert_int_equal(o.leaf, next++);

    /* Another department's refusals and grants go on being logged. */
    o = request(&rt, &tax, &tax.kp, published, OTHER_PURPOSE, NULL, NULL);
    assert_int_equal(o.code, ONCE_ERR_NO_GRANT);
    assert_int_equal(o.leaf, next++);
    o = request(&rt, &tax, &tax.kp, published, PURPOSE, NULL, NULL);
    assert_int_equal(o.code, 0);
    assert_int_equal(o.leaf, next++);

    /* The log grew by the BUDGET refusals and the four other exchanges,
     * nothing more; onced's log counts what it left out. */
    assert_int_equal(next - first.leaf - 1, BUDGET + 4);
    e2e_raw_close(&rt);
    e2e_raw_close(&rf);
    assert_int_equal(e2e_stop(&broker), 0);
    if (!e2e_log_contains(&broker, "department flood is over its budget of "
                                   "logged refusals"))
        fail_msg("no log line about the refusals left out of the log");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals_over_the_budget_are_not_logged),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
