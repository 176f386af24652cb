/*
 * test_pipeline.c - pipelined requests (once_client_request_send and
 * once_client_request_receive): several requests in flight on one
 * connection, each answer handed back exactly once with the ticket of the
 * request it answers.
 *
 * Against a real onced: a batch of granted and refused requests sent
 * before any is received; a synchronous call between sends and receives;
 * the client's limit of ONCE_MAX_IN_FLIGHT; requests sent while the broker
 * is down (each ends with TIMEOUT, none waits longer than its attempts);
 * the broker killed and restarted with requests in flight (each ends
 * once, answered); and 128 requests in flight on four connections, whose
 * answers the writer hands back a group at a time, all answered and
 * counted by the broker as answered when it stops.
 *
 * Against a fake broker (a CURVE ROUTER in this test, which the test
 * drives step by step): answers in the reverse order of the requests, a
 * late answer to nothing in flight, an answer about another record than
 * the one asked for, and a request never answered, re-sent with the very
 * same bytes until its attempts are spent. The real broker cannot be made
 * to answer out of order on purpose, so this is where the matching by
 * reply_to is shown. And once_client_wake from another thread, which
 * makes a receive waiting for a request that is not answered return.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <pthread.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"

#define TYPE "licence"
#define PURPOSE "tax-check"
#define PUBLISHED 8

static e2e_broker broker;
static e2e_dept market, tax;
static char subjects[PUBLISHED][19];

static int setup(void **state)
{
    once_error err;
    unsigned i;

    (void)state;
    if (e2e_init(&broker) != 0 || e2e_dept_add(&broker, &market, "market") ||
        e2e_dept_add(&broker, &tax, "tax") != 0 ||
        e2e_enterprise_type(&broker, TYPE, &market, "name", &tax, PURPOSE,
                            "name") != 0 ||
        e2e_start(&broker, &market, "--workers", "3", NULL) != 0)
        return -1;
    for (i = 0; i < PUBLISHED; i++) {
        e2e_uscc(subjects[i], 9100 + i);
        if (e2e_publish_name(&broker, &market, TYPE, subjects[i], subjects[i],
                             &err) != 0) {
            fprintf(stderr, "publish: %s\n", err.message);
            return -1;
        }
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_cleanup(&broker);
    return 0;
}

static void open_client(once_client **c, const char *endpoint,
                        const uint8_t *broker_pk, int timeout_ms,
                        int retries)
{
    once_client_options opt = { .timeout_ms = timeout_ms,
                                .retries = retries };
    once_error err;

    assert_int_equal(once_client_open(c, endpoint, tax.id, &tax.kp,
                                      broker_pk, &opt, &err), 0);
}

/* What a request in flight expects: the subject (granted) or a code. */
typedef struct expected {
    uint64_t ticket;
    const char *subject;
    int code;
    int received;
    const once_log_info *proof; /* verify the receipt's proof with it */
} expected;

static expected *find(expected *e, size_t n, uint64_t ticket)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (e[i].ticket == ticket)
            return &e[i];
    }
    fail_msg("ticket %llu was never handed out", (unsigned long long)ticket);
    return NULL;
}

/* Receives n answers and checks each against what its ticket expects:
 * every ticket exactly once, granted records verified with the issuer's
 * key and about the subject asked for, refusals with their code and a
 * logged receipt. */
static void receive_all(once_client *c, expected *e, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        once_receipt receipt = { 0 };
        once_record *r = NULL;
        uint64_t ticket = 0;
        once_error err;
        expected *x;
        int rc;

        rc = once_client_request_receive(c, -1, &ticket, &r, &receipt, &err);
        assert_true(ticket != 0);
        x = find(e, n, ticket);
        assert_int_equal(x->received, 0);
        x->received = 1;
        assert_int_equal(rc, -x->code);
        assert_true(receipt.logged);
        if (x->code == 0) {
            assert_non_null(r);
            assert_string_equal(once_record_subject(r), x->subject);
            assert_int_equal(once_record_verify(r, market.kp.public_key,
                                                &err), 0);
            if (x->proof != NULL)
                assert_int_equal(once_receipt_verify(&receipt,
                                                     x->proof->public_key,
                                                     x->proof->origin, &err),
                                 0);
        } else {
            assert_null(r);
        }
        once_record_free(r);
        once_receipt_clear(&receipt);
    }
}

static void send_ok(once_client *c, const char *subject, const char *purpose,
                    expected *x, int code)
{
    once_error err;

    assert_int_equal(once_client_request_send(c, NULL, TYPE, subject,
                                              purpose, "CASE-1", 0, 0,
                                              &x->ticket, &err), 0);
    assert_true(x->ticket != 0);
    x->subject = subject;
    x->code = code;
    x->received = 0;
    x->proof = NULL;
}

/* Granted and refused requests, all sent before any is received. */
static void test_batch_answered_and_matched(void **state)
{
    expected e[PUBLISHED + 2];
    char unknown[19];
    once_client *c;
    once_record *r = NULL;
    uint64_t ticket = 1;
    once_error err;
    size_t i;

    (void)state;
    open_client(&c, broker.endpoint, broker.broker_pk, 15000, 1);
    e2e_uscc(unknown, 9999);
    for (i = 0; i < PUBLISHED; i++)
        send_ok(c, subjects[i], PURPOSE, &e[i], 0);
    send_ok(c, unknown, PURPOSE, &e[PUBLISHED], ONCE_ERR_NOT_FOUND);
    send_ok(c, subjects[0], "marketing", &e[PUBLISHED + 1],
            ONCE_ERR_NO_GRANT);
    assert_int_equal(once_client_in_flight(c), PUBLISHED + 2);
    receive_all(c, e, PUBLISHED + 2);
    assert_int_equal(once_client_in_flight(c), 0);
    /* Nothing left: a receive says so at once, about no request. */
    assert_int_equal(once_client_request_receive(c, -1, &ticket, &r, NULL,
                                                 &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(ticket, 0);
    assert_null(r);
    once_client_close(c);
}

/* A receive that does not wait (timeout 0) still takes the answers that
 * have arrived on the socket: a caller polling with 0 gets its record,
 * not the request's TIMEOUT after the broker answered every attempt. */
static void test_receive_without_waiting(void **state)
{
    struct timespec pause = { 0, 1000000 };
    once_client *c;
    once_record *r = NULL;
    uint64_t sent, ticket = 0;
    once_error err;
    int rc;

    (void)state;
    open_client(&c, broker.endpoint, broker.broker_pk, 200, 1);
    assert_int_equal(once_client_ping(c, &err), 0);
    assert_int_equal(once_client_request_send(c, NULL, TYPE, subjects[0],
                                              PURPOSE, "CASE-1", 0, 0, &sent,
                                              &err), 0);
    do {
        rc = once_client_request_receive(c, 0, &ticket, &r, NULL, &err);
        if (ticket == 0) {
            assert_int_equal(rc, -ONCE_ERR_TIMEOUT);
            nanosleep(&pause, NULL);
        }
    } while (ticket == 0);
    assert_int_equal(ticket, sent);
    assert_int_equal(rc, 0);
    assert_non_null(r);
    assert_string_equal(once_record_subject(r), subjects[0]);
    once_record_free(r);
    assert_int_equal(once_client_in_flight(c), 0);
    once_client_close(c);
}

/* A refusal of the arguments happens before anything is sent. */
static void test_send_refusals(void **state)
{
    once_client *c;
    uint64_t ticket = 7;
    once_error err;

    (void)state;
    open_client(&c, broker.endpoint, broker.broker_pk, 15000, 1);
    assert_int_equal(once_client_request_send(c, NULL, TYPE, "", PURPOSE,
                                              "C", 0, 0, &ticket, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(ticket, 0);
    assert_int_equal(once_client_request_send(c, "", TYPE, subjects[0],
                                              PURPOSE, "C", 0, 0, &ticket,
                                              &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_client_request_send(c, NULL, TYPE, subjects[0],
                                              "bad\npurpose", "C", 0, 0,
                                              &ticket, &err),
                     -ONCE_ERR_INVALID_TEXT);
    assert_int_equal(once_client_in_flight(c), 0);
    once_client_close(c);
}

/* A synchronous call between sends and receives gets its own answer and
 * leaves the others for their receive; a proof asked for in a pipelined
 * request verifies. */
static void test_sync_call_between(void **state)
{
    once_log_info info;
    expected e[3];
    once_client *c;
    once_record *r = NULL;
    once_error err;

    (void)state;
    open_client(&c, broker.endpoint, broker.broker_pk, 15000, 1);
    assert_int_equal(once_client_ping_ex(c, &info, &err), 0);
    send_ok(c, subjects[1], PURPOSE, &e[0], 0);
    send_ok(c, subjects[2], PURPOSE, &e[1], 0);
    assert_int_equal(once_client_request_send(c, "official-7", TYPE,
                                              subjects[3], PURPOSE, "C", 0,
                                              1, &e[2].ticket, &err), 0);
    e[2].subject = subjects[3];
    e[2].code = 0;
    e[2].received = 0;
    e[2].proof = &info;
    assert_int_equal(once_client_request_ex(c, TYPE, subjects[4], PURPOSE,
                                            "C", 0, 0, &r, NULL, &err), 0);
    assert_string_equal(once_record_subject(r), subjects[4]);
    once_record_free(r);
    assert_int_equal(once_client_in_flight(c), 3);
    receive_all(c, e, 3);
    once_client_close(c);
}

/* At the limit, one more is refused with a stable code, nothing sent;
 * receiving one makes room. */
static void test_in_flight_limit(void **state)
{
    expected e[ONCE_MAX_IN_FLIGHT];
    once_client *c;
    once_record *r = NULL;
    uint64_t ticket = 5;
    once_error err;
    size_t i;

    (void)state;
    open_client(&c, broker.endpoint, broker.broker_pk, 15000, 1);
    for (i = 0; i < ONCE_MAX_IN_FLIGHT; i++)
        send_ok(c, subjects[i % PUBLISHED], PURPOSE, &e[i], 0);
    assert_int_equal(once_client_request_send(c, NULL, TYPE, subjects[0],
                                              PURPOSE, "C", 0, 0, &ticket,
                                              &err),
                     -ONCE_ERR_TOO_MANY_IN_FLIGHT);
    assert_int_equal(ticket, 0);
    assert_string_equal(once_error_name(err.code), "TOO_MANY_IN_FLIGHT");
    /* The synchronous calls count against the same limit. */
    assert_int_equal(once_client_ping(c, &err), -ONCE_ERR_TOO_MANY_IN_FLIGHT);
    assert_int_equal(once_client_in_flight(c), ONCE_MAX_IN_FLIGHT);
    assert_int_equal(once_client_request_receive(c, -1, &ticket, &r, NULL,
                                                 &err), 0);
    find(e, ONCE_MAX_IN_FLIGHT, ticket)->received = 1;
    once_record_free(r);
    assert_int_equal(once_client_ping(c, &err), 0);
    for (i = 0; i < ONCE_MAX_IN_FLIGHT && e[i].ticket != ticket; i++)
        ;
    send_ok(c, subjects[0], PURPOSE, &e[i], 0);
    receive_all(c, e, ONCE_MAX_IN_FLIGHT);
    once_client_close(c);
}

/* The broker down: a receive bounded by its own timeout returns about no
 * request; each request ends with TIMEOUT after its attempts, once; after
 * the restart the same client is answered again. */
static void test_broker_down(void **state)
{
    uint64_t tickets[3], ticket = 9;
    int seen[3] = { 0 };
    once_client *c;
    once_record *r = NULL;
    once_error err;
    size_t i, j;
    int rc;

    (void)state;
    open_client(&c, broker.endpoint, broker.broker_pk, 200, 1);
    assert_int_equal(once_client_ping(c, &err), 0);
    assert_int_equal(e2e_stop(&broker), 0);
    for (i = 0; i < 3; i++)
        assert_int_equal(once_client_request_send(c, NULL, TYPE, subjects[i],
                                                  PURPOSE, "C", 0, 0,
                                                  &tickets[i], &err), 0);
    assert_int_equal(once_client_request_receive(c, 0, &ticket, &r, NULL,
                                                 &err),
                     -ONCE_ERR_TIMEOUT);
    assert_int_equal(ticket, 0);
    assert_int_equal(once_client_in_flight(c), 3);
    for (i = 0; i < 3; i++) {
        assert_int_equal(once_client_request_receive(c, -1, &ticket, &r,
                                                     NULL, &err),
                         -ONCE_ERR_TIMEOUT);
        assert_null(r);
        for (j = 0; j < 3 && tickets[j] != ticket; j++)
            ;
        assert_true(j < 3);
        assert_int_equal(seen[j], 0);
        seen[j] = 1;
    }
    assert_int_equal(once_client_in_flight(c), 0);
    assert_int_equal(e2e_start(&broker, &market, "--workers", "3", NULL), 0);
    /* The same client reconnects by itself (ZeroMQ's reconnect interval
     * has grown while the broker was away: a few short calls may time
     * out first). */
    for (i = 0; i < 100; i++) {
        rc = once_client_request_ex(c, TYPE, subjects[0], PURPOSE, "C", 0,
                                    0, &r, NULL, &err);
        if (rc != -ONCE_ERR_TIMEOUT)
            break;
    }
    assert_int_equal(rc, 0);
    once_record_free(r);
    once_client_close(c);
}

/* The broker killed with requests in flight and started again: every
 * request ends once, answered (the lost ones are re-sent as the same
 * bytes, which the new broker executes or answers from its table). */
static void test_broker_restart_in_flight(void **state)
{
    expected e[2 * PUBLISHED];
    once_client *c;
    once_error err;
    size_t i;

    (void)state;
    open_client(&c, broker.endpoint, broker.broker_pk, 1000, 30);
    assert_int_equal(once_client_ping(c, &err), 0);
    for (i = 0; i < PUBLISHED; i++)
        send_ok(c, subjects[i], PURPOSE, &e[i], 0);
    e2e_kill(&broker);
    for (i = PUBLISHED; i < 2 * PUBLISHED; i++)
        send_ok(c, subjects[i - PUBLISHED], PURPOSE, &e[i], 0);
    assert_int_equal(e2e_start(&broker, &market, "--workers", "3", NULL), 0);
    receive_all(c, e, 2 * PUBLISHED);
    once_client_close(c);
}

/* The counts of onced's last "stopped: N messages received, M answers
 * sent, D dropped" line. */
static void stopped_counts(unsigned long long *received,
                           unsigned long long *answered,
                           unsigned long long *dropped)
{
    char line[1024];
    const char *at;
    FILE *f = fopen(broker.log_path, "r");
    int found = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        if ((at = strstr(line, "stopped: ")) != NULL &&
            sscanf(at, "stopped: %llu messages received, %llu answers sent, "
                   "%llu dropped", received, answered, dropped) == 3)
            found = 1;
    }
    fclose(f);
    assert_true(found);
}

/* Many requests in flight on several connections at once: the writer
 * commits them in groups and hands each group's answers to the I/O thread
 * as one message (writer.c, reply.c). Every request is answered once,
 * granted and refused ones alike, and the broker's own count agrees: it
 * stops at once, 0, with every message it received answered. */
static void test_group_answers(void **state)
{
    enum { CLIENTS = 4 };
    expected e[CLIENTS][ONCE_MAX_IN_FLIGHT];
    once_client *c[CLIENTS];
    unsigned long long received, answered, dropped;
    char unknown[19];
    size_t i, k;

    (void)state;
    e2e_uscc(unknown, 9998);
    for (k = 0; k < CLIENTS; k++)
        open_client(&c[k], broker.endpoint, broker.broker_pk, 15000, 1);
    for (i = 0; i < ONCE_MAX_IN_FLIGHT; i++) {
        for (k = 0; k < CLIENTS; k++) {
            if (i % 5 == 4)
                send_ok(c[k], unknown, PURPOSE, &e[k][i],
                        ONCE_ERR_NOT_FOUND);
            else
                send_ok(c[k], subjects[(i + k) % PUBLISHED], PURPOSE,
                        &e[k][i], 0);
        }
    }
    for (k = 0; k < CLIENTS; k++) {
        receive_all(c[k], e[k], ONCE_MAX_IN_FLIGHT);
        once_client_close(c[k]);
    }
    assert_int_equal(e2e_stop(&broker), 0);
    stopped_counts(&received, &answered, &dropped);
    assert_true(received >= CLIENTS * ONCE_MAX_IN_FLIGHT);
    assert_true(answered == received);
    assert_true(dropped == 0);
    assert_int_equal(e2e_start(&broker, &market, "--workers", "3", NULL), 0);
}

/* A department may have max_in_flight_per_department (1024 by default)
 * envelopes in flight, on one connection if it likes: their answers must
 * all wait for it on the ROUTER, even when it reads none of them until it
 * has sent the last: none is dropped as "the department's connection is
 * not reading", none is refused, each comes once. */
static void test_one_connection_full_window(void **state)
{
    enum { SENT = 1024 };
    static bool seen[SENT + 1];
    uint64_t session = e2e_session(), seq;
    Once__Envelope *reply;
    uint8_t *body, *env;
    size_t body_len, env_len, got = 0;
    int one_answer = 1;
    e2e_raw raw;

    (void)state;
    memset(seen, 0, sizeof(seen));
    assert_int_equal(e2e_raw_open(&raw, &broker, &tax.kp), 0);
    /* The client's own queue holds one answer, so the broker must keep
     * nearly all of them: with libzmq's default of 1,000 queued it
     * dropped the last 24. */
    assert_int_equal(zmq_setsockopt(raw.sock, ZMQ_RCVHWM, &one_answer,
                                    sizeof(one_answer)), 0);
    for (seq = 1; seq <= SENT; seq++) {
        assert_int_equal(e2e_request_body(&body, &body_len, TYPE,
                                          subjects[seq % PUBLISHED], PURPOSE,
                                          "CASE-1", 0), 0);
        assert_int_equal(e2e_envelope(&env, &env_len, tax.id, session, seq,
                                      once_now_ms(), ONCE__KIND__KIND_REQUEST,
                                      body, body_len, &tax.kp), 0);
        assert_int_equal(e2e_raw_send(&raw, env, env_len), 0);
        free(body);
        free(env);
    }
    /* Time for the broker to answer them all while nobody reads: no
     * assertion depends on it, a slower broker only tests less. */
    sleep(3);
    while (got < SENT && e2e_raw_recv(&raw, 10000, &reply) == 1) {
        assert_true(reply->reply_to >= 1 && reply->reply_to <= SENT);
        assert_false(seen[reply->reply_to]);
        seen[reply->reply_to] = true;
        assert_int_equal(e2e_reply_code(reply), 0);
        once__envelope__free_unpacked(reply, NULL);
        got++;
    }
    e2e_raw_close(&raw);
    assert_int_equal(got, SENT);
}

/* ---- a fake broker, to answer out of order --------------------------- */

typedef struct fake {
    void *ctx, *router;
    char endpoint[PATH_MAX + 8];
    once_keypair kp;
    uint8_t id[256];
    size_t id_len;
} fake;

static void fake_open(fake *f)
{
    char secret[41];
    int one = 1, zero = 0;

    assert_int_equal(once_keypair_generate(&f->kp), 0);
    assert_int_equal(once_curve_secret_z85(secret, &f->kp), 0);
    snprintf(f->endpoint, sizeof(f->endpoint), "ipc://%s/fake.sock",
             broker.dir);
    f->ctx = zmq_ctx_new();
    f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
    assert_int_equal(zmq_setsockopt(f->router, ZMQ_CURVE_SERVER, &one,
                                    sizeof(one)), 0);
    assert_int_equal(zmq_setsockopt(f->router, ZMQ_CURVE_SECRETKEY, secret,
                                    40), 0);
    assert_int_equal(zmq_setsockopt(f->router, ZMQ_LINGER, &zero,
                                    sizeof(zero)), 0);
    assert_int_equal(zmq_bind(f->router, f->endpoint), 0);
}

static void fake_close(fake *f)
{
    zmq_close(f->router);
    zmq_ctx_term(f->ctx);
    once_keypair_wipe(&f->kp);
}

/* Receives one envelope from the client (waiting up to 10 s): its bytes
 * in *bytes (malloc'd) and decoded. */
static Once__Envelope *fake_recv(fake *f, uint8_t **bytes, size_t *len)
{
    zmq_pollitem_t item = { f->router, 0, ZMQ_POLLIN, 0 };
    zmq_msg_t id, msg;
    Once__Envelope *e;

    assert_int_equal(zmq_poll(&item, 1, 10000), 1);
    zmq_msg_init(&id);
    zmq_msg_init(&msg);
    assert_true(zmq_msg_recv(&id, f->router, 0) >= 0);
    assert_true(zmq_msg_recv(&msg, f->router, 0) >= 0);
    assert_true(zmq_msg_size(&id) <= sizeof(f->id));
    memcpy(f->id, zmq_msg_data(&id), zmq_msg_size(&id));
    f->id_len = zmq_msg_size(&id);
    *len = zmq_msg_size(&msg);
    *bytes = malloc(*len);
    assert_non_null(*bytes);
    memcpy(*bytes, zmq_msg_data(&msg), *len);
    zmq_msg_close(&id);
    zmq_msg_close(&msg);
    e = envelope_unpack(*bytes, *len);
    assert_non_null(e);
    return e;
}

/* Answers reply_to with a Response holding a record about subject,
 * signed by the market's key. */
static void fake_answer(fake *f, uint64_t reply_to, const char *subject)
{
    Once__Envelope reply = ONCE__ENVELOPE__INIT;
    Once__Response response = ONCE__RESPONSE__INIT;
    Once__Receipt receipt = ONCE__RECEIPT__INIT;
    Once__Publish *p;
    once_record *r = NULL;
    uint8_t *record_bytes, *body, *packed;
    size_t record_len, body_len, packed_len;
    once_error err;

    assert_int_equal(once_record_new(&r, TYPE, subject, 1, market.id, 0, 0,
                                     &err), 0);
    assert_int_equal(once_record_add_text(r, "name", subject, &err), 0);
    assert_int_equal(once_record_sign(r, &market.kp, &err), 0);
    assert_int_equal(once_record_serialize(r, &record_bytes, &record_len,
                                           &err), 0);
    once_record_free(r);
    p = once__publish__unpack(NULL, record_len, record_bytes);
    assert_non_null(p);
    response.type = TYPE;
    response.subject = (char *)subject;
    response.version = 1;
    response.record = p->record;
    response.disclosures = p->disclosures;
    response.n_disclosures = p->n_disclosures;
    receipt.leaf_index = reply_to;
    response.receipt = &receipt;
    body_len = once__response__get_packed_size(&response);
    body = malloc(body_len);
    assert_non_null(body);
    once__response__pack(&response, body);
    reply.version = ENVELOPE_VERSION;
    reply.sender = "fake";
    reply.session = 1;
    reply.seq = reply_to;
    reply.kind = ONCE__KIND__KIND_RESPONSE;
    reply.reply_to = reply_to;
    reply.body.data = body;
    reply.body.len = body_len;
    assert_int_equal(envelope_pack(&reply, &packed, &packed_len), 0);
    assert_int_equal(zmq_send(f->router, f->id, f->id_len, ZMQ_SNDMORE),
                     (int)f->id_len);
    assert_int_equal(zmq_send(f->router, packed, packed_len, 0),
                     (int)packed_len);
    free(packed);
    free(body);
    free(record_bytes);
    once__publish__free_unpacked(p, NULL);
}

/* Answers in another order than the requests, each matched to its
 * ticket; a late answer to nothing in flight dropped; an answer about
 * another record refused for its request alone; a request never answered
 * re-sent as the same bytes, then TIMEOUT for its ticket. */
static void test_out_of_order(void **state)
{
    uint64_t tickets[4], seqs[4], ticket;
    uint8_t *bytes[4], *again;
    size_t lens[4], again_len;
    int seen[4] = { 0 }, copies = 0;
    once_receipt receipt = { 0 };
    once_record *r = NULL;
    once_client *c;
    once_error err;
    fake f;
    int i, j, rc;

    (void)state;
    fake_open(&f);
    open_client(&c, f.endpoint, f.kp.public_key, 500, 2);
    for (i = 0; i < 4; i++) {
        Once__Envelope *e;

        assert_int_equal(once_client_request_send(c, NULL, TYPE, subjects[i],
                                                  PURPOSE, "C", 0, 0,
                                                  &tickets[i], &err), 0);
        e = fake_recv(&f, &bytes[i], &lens[i]);
        assert_int_equal(e->kind, ONCE__KIND__KIND_REQUEST);
        seqs[i] = e->seq;
        once__envelope__free_unpacked(e, NULL);
    }
    /* A late answer to nothing in flight, then the third, the first, and
     * for the second a record about another subject than asked. The
     * fourth is never answered. */
    fake_answer(&f, seqs[3] + 100, subjects[3]);
    fake_answer(&f, seqs[2], subjects[2]);
    fake_answer(&f, seqs[0], subjects[0]);
    fake_answer(&f, seqs[1], subjects[5]);
    for (i = 0; i < 4; i++) {
        rc = once_client_request_receive(c, -1, &ticket, &r, &receipt, &err);
        for (j = 0; j < 4 && tickets[j] != ticket; j++)
            ;
        assert_true(j < 4);
        assert_int_equal(seen[j], 0);
        seen[j] = 1;
        if (j == 0 || j == 2) {
            assert_int_equal(rc, 0);
            assert_string_equal(once_record_subject(r), subjects[j]);
            assert_int_equal(receipt.leaf_index, seqs[j]);
        } else {
            assert_int_equal(rc, j == 1 ? -ONCE_ERR_INVALID_RECORD
                                        : -ONCE_ERR_TIMEOUT);
            assert_null(r);
        }
        once_record_free(r);
        r = NULL;
    }
    assert_int_equal(once_client_in_flight(c), 0);
    /* What reached the fake after the first sends: copies only, and the
     * unanswered request exactly twice more (its two retries). */
    while (copies < 2) {
        once__envelope__free_unpacked(fake_recv(&f, &again, &again_len),
                                      NULL);
        for (j = 0; j < 4; j++) {
            if (again_len == lens[j] &&
                memcmp(again, bytes[j], lens[j]) == 0)
                break;
        }
        assert_true(j < 4);
        copies += j == 3;
        free(again);
    }
    for (i = 0; i < 4; i++)
        free(bytes[i]);
    once_receipt_clear(&receipt);
    once_client_close(c);
    fake_close(&f);
}

static void *wake_later(void *c)
{
    usleep(100 * 1000);
    once_client_wake(c);
    return NULL;
}

/* A wake made before a receive makes it return at once; one made by
 * another thread while it waits makes it return then: both with TIMEOUT
 * about no request, which stays in flight. */
static void test_wake(void **state)
{
    once_client *c;
    once_record *r = NULL;
    uint64_t ticket;
    once_error err;
    pthread_t waker;
    uint8_t *bytes;
    size_t len;
    fake f;

    (void)state;
    fake_open(&f);
    open_client(&c, f.endpoint, f.kp.public_key, 120000, 0);
    assert_int_equal(once_client_request_send(c, NULL, TYPE, subjects[0],
                                              PURPOSE, "C", 0, 0, &ticket,
                                              &err), 0);
    once__envelope__free_unpacked(fake_recv(&f, &bytes, &len), NULL);
    free(bytes);
    once_client_wake(c);
    assert_int_equal(once_client_request_receive(c, -1, &ticket, &r, NULL,
                                                 &err),
                     -ONCE_ERR_TIMEOUT);
    assert_int_equal(ticket, 0);
    assert_int_equal(pthread_create(&waker, NULL, wake_later, c), 0);
    assert_int_equal(once_client_request_receive(c, -1, &ticket, &r, NULL,
                                                 &err),
                     -ONCE_ERR_TIMEOUT);
    assert_int_equal(ticket, 0);
    assert_string_equal(err.message, "woken by once_client_wake");
    pthread_join(waker, NULL);
    assert_int_equal(once_client_in_flight(c), 1);
    once_client_close(c);
    fake_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_answered_and_matched),
        cmocka_unit_test(test_send_refusals),
        cmocka_unit_test(test_receive_without_waiting),
        cmocka_unit_test(test_sync_call_between),
        cmocka_unit_test(test_in_flight_limit),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_wake),
        cmocka_unit_test(test_group_answers),
        cmocka_unit_test(test_one_connection_full_window),
        cmocka_unit_test(test_broker_down),
        cmocka_unit_test(test_broker_restart_in_flight),
    };

    once_init();
    return cmocka_run_group_tests(tests, setup, teardown);
}
