/*
 * client.c - the department side of the wire: one CURVE-encrypted DEALER
 * socket to the broker, and blocking calls that send one signed envelope and
 * wait for its answer.
 *
 * Identity. The department's Ed25519 key signs every envelope (the broker
 * keeps them as evidence) and, converted to Curve25519, is the CurveZMQ
 * client key, so the broker's ZAP handler knows which department is on the
 * connection before any message arrives.
 *
 * Retries. Each client picks a random session id at open; seq counts up
 * within the session. A call whose answer does not arrive within the
 * timeout re-sends the very same bytes (same session, same seq, same
 * signature). The broker treats a repeated envelope as a retry and answers
 * with its original answer, for publishes even across a broker restart, so a
 * retry can never publish twice. Answers to earlier, abandoned attempts that
 * arrive late are recognised by reply_to and dropped. A caller that must
 * retry across its own restarts keeps the envelope itself
 * (once_client_prepare_write) and sends those bytes again on any client of
 * the department (once_client_send_prepared).
 *
 * Refusals at the handshake. A broker that does not know our key (or has
 * suspended it) refuses the CURVE handshake; without help the caller would
 * only see a timeout. A socket monitor reports the failed handshake so the
 * caller gets UNKNOWN_SENDER with a readable message instead.
 *
 * The socket is used by one thread at a time, as ZeroMQ requires.
 *
 * Flights. Every envelope sent is a flight in a table of at most
 * ONCE_MAX_IN_FLIGHT: its bytes (for re-sending), the deadline of its
 * attempt, and once ended its answer or its failure, kept until its caller
 * collects it. A synchronous call is a flight sent and waited for at once
 * (client_exchange); the pipelined requests (client_pipeline.c) send
 * several and collect them as they end. While any caller waits, the one
 * receiving loop (wait_for_broker) puts each answer into the flight whose
 * seq its reply_to names, re-sends the flights whose attempt timed out and
 * ends with TIMEOUT those out of attempts, so that every flight ends and
 * no answer is lost to a caller waiting for another one.
 *
 * This file is the connection and the session: opening and closing the
 * socket, sealing an envelope with the next seq, the flights and the one
 * loop that receives. Everything that receives from the socket is here, so
 * a message the broker sends unasked has one place to be handled. The public
 * calls that build the bodies (publish, revoke, request, ping, prepared
 * envelopes) are in client_calls.c, receipts in receipt.c; they reach this
 * file only through client_internal.h.
 *
 * Pushes. A subscriber's connection also carries notices the broker sends
 * unasked (KIND_NOTICES with reply_to 0, PROTOCOL.md 4.9). They can arrive
 * while a call waits for its answer, so the one receiving loop hands them
 * to the subscriber's queue (client_notices.c, bounded) instead of taking
 * them for an answer or dropping them, and client_wait_push waits for
 * them alone. The monitor also counts completed handshakes: a subscriber
 * registers again for pushes on each new connection (a broker restart, a
 * reconnect), since the broker's registration was of the old one.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zmq.h>

#include "client_internal.h"
#include "digest.h"
#include "envelope.h"
#include "once/once.h"
#include "socket_monitor.h"
#include "text_check.h"

#define CLIENT_DEFAULT_TIMEOUT_MS 5000
#define CLIENT_DEFAULT_RETRIES 2
#define CLIENT_HEARTBEAT_IVL_MS 10000
#define CLIENT_HEARTBEAT_TIMEOUT_MS 30000

/* An envelope sent and not yet handed back to its caller: sent (and
 * re-sent after each timeout) until its answer or its failure ends it,
 * kept until the caller collects it. What the caller gets (the envelope,
 * its answer) is in a, handed over as is; a.seq 0 marks a free slot. */
typedef struct client_flight {
    client_answer a;         /* a.reply NULL once ended: failure */
    int attempts_left;
    uint64_t deadline_ms;    /* of the current attempt */
    int ended;               /* an answer (reply) or a failure is in */
    once_error failure;
} client_flight;

struct once_client {
    void *context;
    void *socket;
    void *monitor;      /* PAIR receiving the DEALER's handshake events */
    char department_id[ONCE_MAX_NAME + 1];
    once_keypair keypair;
    uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES];
    uint64_t session;
    uint64_t next_seq;
    int timeout_ms;
    int retries;
    uint64_t connections;            /* handshakes completed so far */
    struct client_notices *notices;  /* client_notices.c; NULL until used */
    client_flight flights[ONCE_MAX_IN_FLIGHT];
    size_t in_flight;                /* slots of flights in use */
    int wake_fd;                     /* eventfd of once_client_wake */
};

static int set_socket_option(void *sock, int option, const void *value,
                             size_t len, once_error *err)
{
    if (zmq_setsockopt(sock, option, value, len) != 0)
        return once_error_set(err, ONCE_ERR_CONNECT,
                              "cannot set socket option %d: %s", option,
                              zmq_strerror(errno));
    return 0;
}

static int set_int_option(void *sock, int option, int value, once_error *err)
{
    return set_socket_option(sock, option, &value, sizeof(value), err);
}

static int configure_curve(once_client *c, const uint8_t broker_pk[32],
                           once_error *err)
{
    char server_public[41], client_public[41], client_secret[41];
    int rc;

    if (once_curve_public_z85(server_public, broker_pk) < 0 ||
        once_curve_public_z85(client_public, c->keypair.public_key) < 0 ||
        once_curve_secret_z85(client_secret, &c->keypair) < 0) {
        rc = once_error_set(err, ONCE_ERR_CRYPTO,
                            "cannot derive CurveZMQ keys from the Ed25519 keys");
        goto out;
    }
    rc = set_socket_option(c->socket, ZMQ_CURVE_SERVERKEY, server_public, 40,
                           err);
    if (rc == 0)
        rc = set_socket_option(c->socket, ZMQ_CURVE_PUBLICKEY, client_public,
                               40, err);
    if (rc == 0)
        rc = set_socket_option(c->socket, ZMQ_CURVE_SECRETKEY, client_secret,
                               40, err);
out:
    sodium_memzero(client_secret, sizeof(client_secret));
    return rc;
}

static int open_monitor(once_client *c, once_error *err)
{
    char address[64];

    snprintf(address, sizeof(address), "inproc://once-client-monitor-%p",
             (void *)c);
    if (zmq_socket_monitor(c->socket, address,
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               ZMQ_EVENT_HANDSHAKE_SUCCEEDED) != 0)
        return once_error_set(err, ONCE_ERR_CONNECT,
                              "cannot monitor the broker connection: %s",
                              zmq_strerror(errno));
    c->monitor = zmq_socket(c->context, ZMQ_PAIR);
    if (c->monitor == NULL || zmq_connect(c->monitor, address) != 0)
        return once_error_set(err, ONCE_ERR_CONNECT,
                              "cannot connect the connection monitor: %s",
                              zmq_strerror(errno));
    return set_int_option(c->monitor, ZMQ_LINGER, 0, err);
}

/* The broker refuses text that is not clean (PROTOCOL.md 9.4); a C caller
 * gets the same code here, before anything is signed or sent. */
int client_clean_text(const char *what, const char *value, once_error *err)
{
    if (!text_is_clean_utf8((const uint8_t *)value, strlen(value)))
        return once_error_set(err, ONCE_ERR_INVALID_TEXT,
                              "%s is not clean text: UTF-8 without control "
                              "characters", what);
    return 0;
}

int once_client_open(once_client **out, const char *endpoint,
                     const char *department_id, const once_keypair *kp,
                     const uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES],
                     const once_client_options *options, once_error *err)
{
    once_client *c;
    int rc;

    *out = NULL;
    if (endpoint == NULL || department_id == NULL || kp == NULL ||
        broker_pk == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "endpoint, department id, key pair and broker "
                              "key are required");
    if (strlen(department_id) == 0 || strlen(department_id) > ONCE_MAX_NAME)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "department id must be 1..%d characters",
                              ONCE_MAX_NAME);
    if ((rc = client_clean_text("department id", department_id, err)) < 0)
        return rc;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    c->wake_fd = -1;
    memcpy(&c->keypair, kp, sizeof(c->keypair));
    memcpy(c->broker_pk, broker_pk, sizeof(c->broker_pk));
    snprintf(c->department_id, sizeof(c->department_id), "%s", department_id);
    c->timeout_ms = CLIENT_DEFAULT_TIMEOUT_MS;
    c->retries = CLIENT_DEFAULT_RETRIES;
    if (options != NULL) {
        if (options->timeout_ms > 0)
            c->timeout_ms = options->timeout_ms;
        if (options->retries >= 0)
            c->retries = options->retries;
    }
    do
        randombytes_buf(&c->session, sizeof(c->session));
    while (c->session == 0);
    c->next_seq = 1;
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->wake_fd < 0) {
        rc = once_error_set(err, ONCE_ERR_IO, "cannot make an eventfd: %s",
                            strerror(errno));
        goto fail;
    }

    c->context = zmq_ctx_new();
    if (c->context == NULL) {
        rc = once_error_set(err, ONCE_ERR_CONNECT,
                            "cannot create a ZeroMQ context: %s",
                            zmq_strerror(errno));
        goto fail;
    }
    c->socket = zmq_socket(c->context, ZMQ_DEALER);
    if (c->socket == NULL) {
        rc = once_error_set(err, ONCE_ERR_CONNECT,
                            "cannot create a socket: %s", zmq_strerror(errno));
        goto fail;
    }
    if ((rc = configure_curve(c, broker_pk, err)) < 0 ||
        (rc = set_int_option(c->socket, ZMQ_LINGER, 0, err)) < 0 ||
        (rc = set_int_option(c->socket, ZMQ_HEARTBEAT_IVL,
                             CLIENT_HEARTBEAT_IVL_MS, err)) < 0 ||
        (rc = set_int_option(c->socket, ZMQ_HEARTBEAT_TIMEOUT,
                             CLIENT_HEARTBEAT_TIMEOUT_MS, err)) < 0 ||
        (rc = set_int_option(c->socket, ZMQ_RECONNECT_IVL, 100, err)) < 0 ||
        (rc = set_int_option(c->socket, ZMQ_RECONNECT_IVL_MAX, 5000, err)) < 0 ||
        (rc = open_monitor(c, err)) < 0)
        goto fail;
    if (zmq_connect(c->socket, endpoint) != 0) {
        rc = once_error_set(err, ONCE_ERR_CONNECT,
                            "cannot connect to %s: %s", endpoint,
                            zmq_strerror(errno));
        goto fail;
    }
    *out = c;
    return 0;
fail:
    once_client_close(c);
    return rc;
}

void once_client_close(once_client *c)
{
    size_t i;

    if (c == NULL)
        return;
    /* Flights not collected: their answers are dropped with the client. */
    for (i = 0; i < ONCE_MAX_IN_FLIGHT; i++)
        client_answer_free(&c->flights[i].a);
    if (c->socket != NULL) {
        zmq_socket_monitor(c->socket, NULL, 0);
        zmq_close(c->socket);
    }
    if (c->monitor != NULL)
        zmq_close(c->monitor);
    if (c->context != NULL)
        zmq_ctx_term(c->context);
    client_notices_free(c->notices);
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    once_keypair_wipe(&c->keypair);
    sodium_memzero(c, sizeof(*c));
    free(c);
}

/* The flight of seq, or NULL. */
static client_flight *flight_of(once_client *c, uint64_t seq)
{
    size_t i;

    for (i = 0; i < ONCE_MAX_IN_FLIGHT && seq != 0; i++) {
        if (c->flights[i].a.seq == seq)
            return &c->flights[i];
    }
    return NULL;
}

static void flight_end(client_flight *f, int code, const char *message)
{
    f->ended = 1;
    once_error_set(&f->failure, code, "%s", message);
}

/* A failure of the connection itself (a refused handshake, a socket that
 * no longer polls) ends every flight not yet ended with it: each is handed
 * back with its ticket, none waits for an answer that cannot come. */
static void flights_fail(once_client *c, const once_error *why)
{
    size_t i;

    for (i = 0; i < ONCE_MAX_IN_FLIGHT; i++) {
        if (c->flights[i].a.seq != 0 && !c->flights[i].ended)
            flight_end(&c->flights[i], why->code, why->message);
    }
}

static int flight_send_bytes(once_client *c, client_flight *f,
                             once_error *err)
{
    if (zmq_send(c->socket, f->a.packed, f->a.packed_len, 0) < 0)
        return once_error_set(err, ONCE_ERR_IO, "send failed: %s",
                              zmq_strerror(errno));
    f->deadline_ms = once_now_ms() + (uint64_t)c->timeout_ms;
    return 0;
}

/* Re-sends each flight whose attempt timed out (the same bytes: the
 * broker answers a copy with the original's answer), or ends it with
 * TIMEOUT after its last attempt. Returns the earliest deadline left. */
static uint64_t flights_expire(once_client *c, uint64_t now)
{
    uint64_t earliest = UINT64_MAX;
    size_t i;

    for (i = 0; i < ONCE_MAX_IN_FLIGHT; i++) {
        client_flight *f = &c->flights[i];
        once_error why;

        if (f->a.seq == 0 || f->ended)
            continue;
        if (f->deadline_ms <= now) {
            if (f->attempts_left == 0) {
                once_error_set(&why, ONCE_ERR_TIMEOUT,
                               "no answer from the broker after %d "
                               "attempt(s) of %d ms",
                               c->retries + 1, c->timeout_ms);
                flight_end(f, why.code, why.message);
                continue;
            }
            f->attempts_left--;
            if (flight_send_bytes(c, f, &why) < 0) {
                flight_end(f, why.code, why.message);
                continue;
            }
        }
        if (f->deadline_ms < earliest)
            earliest = f->deadline_ms;
    }
    return earliest;
}

/* Hands one envelope from the broker to where it belongs: a push of
 * notices to the subscriber's queue (returns 2), the answer to a flight
 * into that flight (1); an answer to nothing in flight (a late answer to
 * an attempt already answered, or to a flight already ended) is dropped
 * (0). <0 on an undecodable envelope. */
static int dispatch(once_client *c, const uint8_t *data, size_t len,
                    once_error *err)
{
    Once__Envelope *e = envelope_unpack(data, len);
    client_flight *f;
    int rc = 1;

    if (e == NULL)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "the broker sent an undecodable answer");
    if (e->reply_to == 0 && e->kind == ONCE__KIND__KIND_NOTICES) {
        client_notices_received(c, &c->notices, e->body.data, e->body.len);
        rc = 2;
        goto out;
    }
    f = flight_of(c, e->reply_to);
    if (f == NULL || f->ended) {
        rc = 0;
        goto out;
    }
    f->a.reply = malloc(e->body.len > 0 ? e->body.len : 1);
    if (f->a.reply == NULL) {
        flight_end(f, ONCE_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    if (e->body.len > 0)
        memcpy(f->a.reply, e->body.data, e->body.len);
    f->a.reply_len = e->body.len;
    f->a.reply_kind = e->kind;
    f->ended = 1;
out:
    once__envelope__free_unpacked(e, NULL);
    return rc;
}

/* What a wait waits for: one flight (seq), any flight, or a push. */
typedef enum wait_for { WAIT_FLIGHT, WAIT_ANY_FLIGHT, WAIT_PUSH } wait_for;

static int wait_done(once_client *c, wait_for what, uint64_t seq)
{
    size_t i;

    if (what == WAIT_FLIGHT)
        return flight_of(c, seq)->ended;
    if (what == WAIT_ANY_FLIGHT) {
        for (i = 0; i < ONCE_MAX_IN_FLIGHT; i++) {
            if (c->flights[i].a.seq != 0 && c->flights[i].ended)
                return 1;
        }
    }
    return 0;
}

/* The one loop that receives from the broker. Waits until what it waits
 * for happened (1), until deadline (0) or, waiting for any flight, until
 * once_client_wake (3); meanwhile every answer goes to
 * its flight, every push to the subscriber's queue, and flights are
 * re-sent or timed out. A failure of the connection ends every flight;
 * waiting for a push, it is returned as -code. */
static int wait_for_broker(once_client *c, wait_for what, uint64_t seq,
                           uint64_t deadline, once_error *err)
{
    for (;;) {
        /* Only a receive of any flight is woken (once_client_wake): the
         * wake stays for it while a synchronous call waits. */
        zmq_pollitem_t items[3] = {
            {c->socket, 0, ZMQ_POLLIN, 0},
            {c->monitor, 0, ZMQ_POLLIN, 0},
            {NULL, c->wake_fd, ZMQ_POLLIN, 0},
        };
        uint64_t now = once_now_ms(), wake;
        once_error why;
        int rc;

        wake = flights_expire(c, now);
        if (wait_done(c, what, seq))
            return 1;
        if (deadline < wake)
            wake = deadline;
        /* Past the deadline, what has already arrived is still read
         * (poll without waiting): a wait of 0 ms takes the answers
         * queued on the socket, and ends only once none is left. */
        rc = zmq_poll(items, what == WAIT_ANY_FLIGHT ? 3 : 2,
                      wake == UINT64_MAX ? -1
                      : wake > now ? (long)(wake - now) : 0);
        if (rc == 0 && now >= deadline)
            return 0;
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            once_error_set(&why, ONCE_ERR_IO, "poll failed: %s",
                           zmq_strerror(errno));
            goto failed;
        }
        if (what == WAIT_ANY_FLIGHT && (items[2].revents & ZMQ_POLLIN)) {
            uint64_t count;

            if (read(c->wake_fd, &count, sizeof(count)) == sizeof(count))
                return 3;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            int event = socket_monitor_event(c->monitor, ZMQ_DONTWAIT);

            if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
                c->connections++;
            } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
                once_error_set(&why, ONCE_ERR_UNKNOWN_SENDER,
                               "the broker refused this department's key at "
                               "the handshake (not registered, or "
                               "suspended)");
                goto failed;
            } else if (event != 0) {
                once_error_set(&why, ONCE_ERR_CONNECT,
                               "the CurveZMQ handshake with the broker "
                               "failed (wrong broker key?)");
                goto failed;
            }
        }
        if (items[0].revents & ZMQ_POLLIN) {
            zmq_msg_t msg;

            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, c->socket, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&msg);
                if (errno == EINTR || errno == EAGAIN)
                    continue;
                once_error_set(&why, ONCE_ERR_IO, "receive failed: %s",
                               zmq_strerror(errno));
                goto failed;
            }
            rc = dispatch(c, zmq_msg_data(&msg), zmq_msg_size(&msg), &why);
            zmq_msg_close(&msg);
            if (rc < 0)
                goto failed;
            if (rc == 2 && what == WAIT_PUSH)
                return 1;
        }
        continue;
    failed:
        flights_fail(c, &why);
        if (what == WAIT_PUSH)
            return once_error_set(err, why.code, "%s", why.message);
    }
}

int client_flight_send(once_client *c, int kind, const uint8_t *packed,
                       size_t packed_len, uint64_t seq, once_error *err)
{
    client_flight *f = NULL;
    size_t i;
    int rc;

    if (seq == 0 || flight_of(c, seq) != NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "an envelope of seq %llu is already in flight "
                              "on this client",
                              (unsigned long long)seq);
    for (i = 0; i < ONCE_MAX_IN_FLIGHT && f == NULL; i++) {
        if (c->flights[i].a.seq == 0)
            f = &c->flights[i];
    }
    if (f == NULL)
        return once_error_set(err, ONCE_ERR_TOO_MANY_IN_FLIGHT,
                              "this client has %d envelopes in flight, its "
                              "limit; receive an answer first",
                              ONCE_MAX_IN_FLIGHT);
    f->a.packed = malloc(packed_len > 0 ? packed_len : 1);
    if (f->a.packed == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    memcpy(f->a.packed, packed, packed_len);
    f->a.packed_len = packed_len;
    f->a.kind = kind;
    f->attempts_left = c->retries;
    if ((rc = flight_send_bytes(c, f, err)) < 0) {
        free(f->a.packed);
        memset(f, 0, sizeof(*f));
        return rc;
    }
    f->a.seq = seq;
    c->in_flight++;
    return 0;
}

/* Hands an ended flight over to *out and frees its slot. */
static int flight_collect(once_client *c, client_flight *f,
                          client_answer *out, once_error *err)
{
    int rc = f->a.reply != NULL ? 0 : -f->failure.code;

    *out = f->a;
    if (rc < 0)
        once_error_set(err, f->failure.code, "%s", f->failure.message);
    memset(f, 0, sizeof(*f));
    c->in_flight--;
    return rc;
}

int client_flight_wait(once_client *c, uint64_t seq, int timeout_ms,
                       client_answer *out, once_error *err)
{
    client_flight *f = NULL;
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                       : once_now_ms() + (uint64_t)timeout_ms;
    size_t i;

    memset(out, 0, sizeof(*out));
    if (seq != 0 && flight_of(c, seq) == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "no envelope of seq %llu is in flight",
                              (unsigned long long)seq);
    if (c->in_flight == 0)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "nothing is in flight on this client");
    switch (wait_for_broker(c, seq != 0 ? WAIT_FLIGHT : WAIT_ANY_FLIGHT,
                            seq, deadline, err)) {
    case 0:
        return once_error_set(err, ONCE_ERR_TIMEOUT,
                              "no answer ended within %d ms", timeout_ms);
    case 3:
        return once_error_set(err, ONCE_ERR_TIMEOUT,
                              "woken by once_client_wake");
    }
    if (seq != 0)
        f = flight_of(c, seq);
    /* Any flight: the lowest seq among those ended, so that answers that
     * arrived together come back in the order they were asked. */
    for (i = 0; i < ONCE_MAX_IN_FLIGHT && seq == 0; i++) {
        client_flight *g = &c->flights[i];

        if (g->a.seq != 0 && g->ended && (f == NULL || g->a.seq < f->a.seq))
            f = g;
    }
    return flight_collect(c, f, out, err);
}

void client_answer_free(client_answer *a)
{
    free(a->packed);
    free(a->reply);
    memset(a, 0, sizeof(*a));
}

void once_client_wake(once_client *c)
{
    uint64_t one = 1;

    /* A full counter already wakes: nothing to add. */
    if (c != NULL && write(c->wake_fd, &one, sizeof(one)) < 0)
        return;
}

size_t client_in_flight(const once_client *c)
{
    return c->in_flight;
}

/* Turns an Error body into -code with the broker's message, and its
 * receipt into *receipt. */
static int answer_error(const uint8_t *body, size_t len,
                        once_receipt *receipt, once_error *err)
{
    Once__Error *e = once__error__unpack(NULL, len, body);
    int rc;

    if (e == NULL)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "the broker sent an undecodable error");
    if (client_receipt_copy(receipt, e->receipt, NULL) < 0)
        once_receipt_clear(receipt); /* the refusal matters more */
    if ((int)e->code <= 0 || (int)e->code >= (int)ONCE_ERR_INVALID_ARGUMENT)
        rc = once_error_set(err, ONCE_ERR_MALFORMED,
                            "the broker sent an unknown error code %d",
                            (int)e->code);
    else
        rc = once_error_set(err, (int)e->code, "%s: %s",
                            once_error_name((int)e->code),
                            e->message ? e->message : "");
    once__error__free_unpacked(e, NULL);
    return rc;
}

/* Signs an envelope of `kind` carrying body with the next seq of c's
 * session; *packed is malloc'd. */
int client_seal(once_client *c, int kind, const uint8_t *body,
                       size_t body_len, uint8_t **packed, size_t *packed_len,
                       uint64_t *seq, once_error *err)
{
    Once__Envelope e = ONCE__ENVELOPE__INIT;
    uint8_t signature[ONCE_SIGNATURE_BYTES];
    int rc;

    e.version = ENVELOPE_VERSION;
    e.sender = c->department_id;
    e.session = c->session;
    e.seq = c->next_seq++;
    e.sent_at = once_now_ms();
    e.kind = (Once__Kind)kind;
    e.body.data = (uint8_t *)body;
    e.body.len = body_len;
    if ((rc = envelope_sign(&e, &c->keypair, signature)) < 0)
        return once_error_set(err, rc, "cannot sign the envelope");
    if ((rc = envelope_pack(&e, packed, packed_len)) < 0)
        return once_error_set(err, rc, "cannot encode the envelope");
    *seq = e.seq;
    return 0;
}

int client_answer_body(client_answer *a, int rc, int answer_kind,
                       uint8_t **answer, size_t *answer_len,
                       once_receipt *receipt, once_error *err)
{
    if (receipt != NULL && a->packed != NULL)
        digest_sha256(receipt->envelope_digest, a->packed, a->packed_len);
    if (rc < 0)
        goto out;
    if (a->reply_kind == ONCE__KIND__KIND_ERROR) {
        rc = answer_error(a->reply, a->reply_len, receipt, err);
    } else if (a->reply_kind != answer_kind) {
        rc = once_error_set(err, ONCE_ERR_MALFORMED,
                            "the broker answered with kind %d",
                            a->reply_kind);
    } else {
        *answer = a->reply;
        *answer_len = a->reply_len;
        a->reply = NULL;
    }
out:
    client_answer_free(a);
    return rc;
}

/* Sends packed (an envelope of kind and seq) as a flight and waits for
 * that flight alone: a synchronous call is a flight received at once. */
int client_exchange(once_client *c, int kind, const uint8_t *packed,
                    size_t packed_len, uint64_t seq, int answer_kind,
                    uint8_t **answer, size_t *answer_len,
                    once_receipt *receipt, once_error *err)
{
    client_answer a;
    int rc;

    if ((rc = client_flight_send(c, kind, packed, packed_len, seq, err)) < 0)
        return rc;
    rc = client_flight_wait(c, seq, -1, &a, err);
    return client_answer_body(&a, rc, answer_kind, answer, answer_len,
                              receipt, err);
}

int client_call(once_client *c, int kind, const uint8_t *body,
                size_t body_len, int answer_kind, uint8_t **answer,
                size_t *answer_len, once_receipt *receipt, once_error *err)
{
    uint8_t *packed = NULL;
    size_t packed_len;
    uint64_t seq;
    int rc;

    if ((rc = client_seal(c, kind, body, body_len, &packed,
                          &packed_len, &seq, err)) < 0)
        return rc;
    rc = client_exchange(c, kind, packed, packed_len, seq, answer_kind,
                         answer, answer_len, receipt, err);
    free(packed);
    return rc;
}

int client_wait_push(once_client *c, int timeout_ms, once_error *err)
{
    return wait_for_broker(c, WAIT_PUSH, 0,
                           once_now_ms() + (uint64_t)timeout_ms, err);
}

uint64_t client_connections(const once_client *c)
{
    return c->connections;
}

struct client_notices **client_notices_of(once_client *c)
{
    return &c->notices;
}

const char *client_department(const once_client *c)
{
    return c->department_id;
}

const uint8_t *client_broker_key(const once_client *c)
{
    return c->broker_pk;
}
