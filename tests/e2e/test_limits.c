/*
 * test_limits.c - end to end: what one department may hold of the broker
 * (issue 7). A department at its cap of open connections is refused at
 * the handshake while another department connects and is answered, and a
 * closed connection gives its place back; a department whose messages
 * would hold more unanswered bytes than its share is refused with
 * QUOTA_EXCEEDED, answering the right seq, while others are served;
 * refused handshakes of unknown keys are logged at a limited rate.
 *
 * The broker runs with small limits written into its once.conf, and on
 * tcp://127.0.0.1 rather than the harness's ipc:// socket: the broker
 * counts a department's idle connections by their peer address, whose
 * form differs between the two transports, and TCP is what departments
 * use. Nothing here asserts how long anything took: every wait is for an
 * event or an answer, with a generous bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "harness.h"

#define ANSWER_TIMEOUT_MS 20000
#define CONNECTION_CAP 6
#define DEPARTMENT_PENDING_KB 64
/* More than zap.c logs in one window (LOG_BURST). */
#define UNKNOWN_KEY_ATTEMPTS 40
#define UNKNOWN_KEY_LINE "belongs to no registered department"

static e2e_broker broker;
static e2e_dept market, tax, flood, stranger;

/* A TCP port on 127.0.0.1 that was free a moment ago. */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int setup(void **state)
{
    int port;

    (void)state;
    if (e2e_init(&broker) != 0 ||
        e2e_dept_add(&broker, &market, "market-supervision") != 0 ||
        e2e_dept_add(&broker, &tax, "tax") != 0 ||
        e2e_dept_add(&broker, &flood, "flood") != 0 ||
        e2e_dept_keys(&broker, &stranger, "stranger") != 0 ||
        e2e_configure(&broker, "max_connections_per_department = %d\n"
                      "department_pending_kb = %d\n", CONNECTION_CAP,
                      DEPARTMENT_PENDING_KB) != 0)
        return -1;
    port = free_port();
    if (port < 0)
        return -1;
    snprintf(broker.endpoint, sizeof(broker.endpoint), "tcp://127.0.0.1:%d",
             port);
    return e2e_start(&broker, &market, "--workers", "2", "--listen",
                     broker.endpoint, NULL);
}

static int teardown(void **state)
{
    (void)state;
    e2e_cleanup(&broker);
    return 0;
}

/* Opens a raw connection for d and returns how its handshake ended:
 * ZMQ_EVENT_HANDSHAKE_SUCCEEDED or ZMQ_EVENT_HANDSHAKE_FAILED_AUTH. */
static int connect_raw(e2e_raw *r, const e2e_dept *d)
{
    int event;

    assert_int_equal(e2e_raw_open(r, &broker, &d->kp), 0);
    event = e2e_raw_wait_event(r, ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                                      ZMQ_EVENT_HANDSHAKE_FAILED_AUTH,
                               ANSWER_TIMEOUT_MS);
    if (event == 0) {
        e2e_dump_log(&broker);
        fail_msg("no handshake result for %s", d->id);
    }
    return event;
}

/* Sends a signed envelope of kind with body on r and returns the answer's
 * code (0 for a Response), checking that it answers seq. */
static int call(e2e_raw *r, const e2e_dept *d, uint64_t session,
                uint64_t seq, int kind, const uint8_t *body, size_t len)
{
    Once__Envelope *reply = NULL;
    uint8_t *env;
    size_t env_len;
    int code;

    assert_int_equal(e2e_envelope(&env, &env_len, d->id, session, seq,
                                  once_now_ms(), kind, body, len, &d->kp),
                     0);
    assert_int_equal(e2e_raw_send(r, env, env_len), 0);
    free(env);
    if (e2e_raw_recv(r, ANSWER_TIMEOUT_MS, &reply) != 1) {
        e2e_dump_log(&broker);
        fail_msg("no answer for %s", d->id);
    }
    assert_int_equal(reply->reply_to, seq);
    code = e2e_reply_code(reply);
    once__envelope__free_unpacked(reply, NULL);
    return code;
}

static int ping(e2e_raw *r, const e2e_dept *d, uint64_t session,
                uint64_t seq)
{
    return call(r, d, session, seq, ONCE__KIND__KIND_PING, NULL, 0);
}

static void test_connection_cap(void **state)
{
    e2e_raw held[CONNECTION_CAP], extra, other;
    uint64_t session = e2e_session();
    int i, event, attempt;

    (void)state;
    /* Half of them used, half idle: both kinds count. */
    for (i = 0; i < CONNECTION_CAP; i++) {
        assert_int_equal(connect_raw(&held[i], &flood),
                         ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
        if (i % 2 == 0)
            assert_int_equal(ping(&held[i], &flood, session, (uint64_t)i + 1),
                             0);
    }
    for (i = 0; i < 3; i++) {
        assert_int_equal(connect_raw(&extra, &flood),
                         ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
        e2e_raw_close(&extra);
    }
    /* Another department connects and is answered. */
    assert_int_equal(connect_raw(&other, &tax),
                     ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    assert_int_equal(ping(&other, &tax, e2e_session(), 1), 0);
    e2e_raw_close(&other);
    assert_true(e2e_log_contains(&broker, "department flood holds 6 "
                                          "connections open"));

    /* A closed connection, idle or used, gives its place back once the
     * broker has seen it close. */
    for (i = 0; i < 2; i++) {
        e2e_raw_close(&held[i]);
        for (attempt = 0; attempt < 200; attempt++) {
            event = connect_raw(&held[i], &flood);
            if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
                break;
            e2e_raw_close(&held[i]);
        }
        assert_int_equal(event, ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    }
    assert_int_equal(connect_raw(&extra, &flood),
                     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    e2e_raw_close(&extra);
    for (i = 0; i < CONNECTION_CAP; i++)
        e2e_raw_close(&held[i]);
}

/* A message that would put its department over its share of unanswered
 * bytes is refused QUOTA_EXCEEDED, answering its seq; the department's
 * smaller messages and other departments are served. */
static void test_department_pending_share(void **state)
{
    size_t big = (DEPARTMENT_PENDING_KB + 16) * 1024;
    uint8_t *body = calloc(1, big);
    uint64_t session = e2e_session();
    e2e_raw r, other;

    (void)state;
    assert_non_null(body);
    assert_int_equal(connect_raw(&r, &flood), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    assert_int_equal(call(&r, &flood, session, 1, ONCE__KIND__KIND_REQUEST,
                          body, big),
                     ONCE_ERR_QUOTA_EXCEEDED);
    assert_int_equal(ping(&r, &flood, session, 2), 0);
    assert_int_equal(connect_raw(&other, &tax),
                     ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    assert_int_equal(ping(&other, &tax, e2e_session(), 1), 0);
    e2e_raw_close(&other);
    e2e_raw_close(&r);
    free(body);
    assert_true(e2e_log_contains(&broker, "department_pending_kb"));
}

static unsigned log_lines_with(const char *text)
{
    char line[4096];
    unsigned n = 0;
    FILE *f = fopen(broker.log_path, "r");

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, text) != NULL)
            n++;
    fclose(f);
    return n;
}

static void test_unknown_keys_rate_limited(void **state)
{
    e2e_raw r;
    int i;

    (void)state;
    for (i = 0; i < UNKNOWN_KEY_ATTEMPTS; i++) {
        assert_int_equal(connect_raw(&r, &stranger),
                         ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
        e2e_raw_close(&r);
    }
    assert_true(log_lines_with(UNKNOWN_KEY_LINE) > 0);
    assert_true(log_lines_with(UNKNOWN_KEY_LINE) <= 10);
    /* The broker still serves, and says at exit what it left out. */
    assert_int_equal(connect_raw(&r, &tax), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    assert_int_equal(ping(&r, &tax, e2e_session(), 1), 0);
    e2e_raw_close(&r);
    assert_int_equal(e2e_stop(&broker), 0);
    assert_true(e2e_log_contains(&broker, "more refusal lines (unknown key)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connection_cap),
        cmocka_unit_test(test_department_pending_share),
        cmocka_unit_test(test_unknown_keys_rate_limited),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
