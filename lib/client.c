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
 * This file is the connection and the session: opening and closing the
 * socket, sealing an envelope with the next seq, and the one loop that sends
 * it and waits for the answer whose reply_to is that seq (client_exchange,
 * wait_answer). Everything that receives from the socket is here, so a
 * message the broker sends unasked has one place to be handled. The public
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
    if (c == NULL)
        return;
    if (c->socket != NULL) {
        zmq_socket_monitor(c->socket, NULL, 0);
        zmq_close(c->socket);
    }
    if (c->monitor != NULL)
        zmq_close(c->monitor);
    if (c->context != NULL)
        zmq_ctx_term(c->context);
    client_notices_free(c->notices);
    once_keypair_wipe(&c->keypair);
    sodium_memzero(c, sizeof(*c));
    free(c);
}

/* Decodes an answer envelope into *reply_kind and a copy of its body.
 * Returns 1 when it answers seq, 2 when it is a push of notices (queued),
 * 0 when it is stale (an earlier attempt's answer), <0 on a malformed
 * answer. */
static int decode_answer(once_client *c, uint64_t seq, const uint8_t *data,
                         size_t len, int *reply_kind, uint8_t **body,
                         size_t *body_len, once_error *err)
{
    Once__Envelope *e = envelope_unpack(data, len);
    int rc = 1;

    if (e == NULL)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "the broker sent an undecodable answer");
    if (e->reply_to == 0 && e->kind == ONCE__KIND__KIND_NOTICES) {
        client_notices_received(c, &c->notices, e->body.data, e->body.len);
        rc = 2;
        goto out;
    }
    if (e->reply_to != seq) {
        rc = 0;
        goto out;
    }
    *reply_kind = e->kind;
    *body_len = e->body.len;
    *body = malloc(e->body.len > 0 ? e->body.len : 1);
    if (*body == NULL) {
        rc = once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    if (e->body.len > 0)
        memcpy(*body, e->body.data, e->body.len);
out:
    once__envelope__free_unpacked(e, NULL);
    return rc;
}

/* Waits up to timeout_ms for the answer to seq. Returns 1 with the answer,
 * 0 on timeout, <0 on an error. With seq 0 (no envelope has it) it waits
 * for a push instead, and returns 2 once one was queued. */
static int wait_answer(once_client *c, uint64_t seq, int timeout_ms,
                       int *reply_kind, uint8_t **body, size_t *body_len,
                       once_error *err)
{
    uint64_t deadline = once_now_ms() + (uint64_t)timeout_ms;

    for (;;) {
        zmq_pollitem_t items[2] = {
            {c->socket, 0, ZMQ_POLLIN, 0},
            {c->monitor, 0, ZMQ_POLLIN, 0},
        };
        uint64_t now = once_now_ms();
        int rc;

        if (now >= deadline)
            return 0;
        rc = zmq_poll(items, 2, (long)(deadline - now));
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            return once_error_set(err, ONCE_ERR_IO, "poll failed: %s",
                                  zmq_strerror(errno));
        }
        if (items[1].revents & ZMQ_POLLIN) {
            int event = socket_monitor_event(c->monitor, ZMQ_DONTWAIT);

            if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
                c->connections++;
                continue;
            }
            if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
                return once_error_set(err, ONCE_ERR_UNKNOWN_SENDER,
                                      "the broker refused this department's "
                                      "key at the handshake (not registered, "
                                      "or suspended)");
            if (event != 0)
                return once_error_set(err, ONCE_ERR_CONNECT,
                                      "the CurveZMQ handshake with the broker "
                                      "failed (wrong broker key?)");
        }
        if (items[0].revents & ZMQ_POLLIN) {
            zmq_msg_t msg;

            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, c->socket, 0) < 0) {
                zmq_msg_close(&msg);
                if (errno == EINTR || errno == EAGAIN)
                    continue;
                return once_error_set(err, ONCE_ERR_IO, "receive failed: %s",
                                      zmq_strerror(errno));
            }
            rc = decode_answer(c, seq, zmq_msg_data(&msg), zmq_msg_size(&msg),
                               reply_kind, body, body_len, err);
            zmq_msg_close(&msg);
            if (rc == 2 && seq != 0)
                continue;
            if (rc != 0)
                return rc;
        }
    }
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

/* Sends packed (an envelope of seq), waits for its answer (re-sending the
 * same bytes after each timeout) and returns the answer's body in *answer
 * (caller frees) when it is of answer_kind. An Error answer becomes
 * -code. */
int client_exchange(once_client *c, const uint8_t *packed,
                           size_t packed_len, uint64_t seq, int answer_kind,
                           uint8_t **answer, size_t *answer_len,
                           once_receipt *receipt, once_error *err)
{
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    int reply_kind = 0, attempt, rc = 0;

    if (receipt != NULL)
        digest_sha256(receipt->envelope_digest, packed, packed_len);
    for (attempt = 0; attempt <= c->retries && rc == 0; attempt++) {
        if (zmq_send(c->socket, packed, packed_len, 0) < 0) {
            rc = once_error_set(err, ONCE_ERR_IO, "send failed: %s",
                                zmq_strerror(errno));
            break;
        }
        rc = wait_answer(c, seq, c->timeout_ms, &reply_kind, &reply,
                         &reply_len, err);
    }
    if (rc == 0)
        return once_error_set(err, ONCE_ERR_TIMEOUT,
                              "no answer from the broker after %d attempt(s) "
                              "of %d ms",
                              c->retries + 1, c->timeout_ms);
    if (rc < 0)
        return rc;
    if (reply_kind == ONCE__KIND__KIND_ERROR) {
        rc = answer_error(reply, reply_len, receipt, err);
        free(reply);
        return rc;
    }
    if (reply_kind != answer_kind) {
        free(reply);
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "the broker answered with kind %d", reply_kind);
    }
    *answer = reply;
    *answer_len = reply_len;
    return 0;
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
    rc = client_exchange(c, packed, packed_len, seq, answer_kind, answer,
                         answer_len, receipt, err);
    free(packed);
    return rc;
}

int client_wait_push(once_client *c, int timeout_ms, once_error *err)
{
    uint8_t *body = NULL;
    size_t len = 0;
    int kind = 0, rc;

    rc = wait_answer(c, 0, timeout_ms, &kind, &body, &len, err);
    free(body); /* nothing answers seq 0: never set */
    return rc < 0 ? rc : rc == 2;
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
