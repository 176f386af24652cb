/*
 * conn.c - pipelined connections to the broker and the threads that drive
 * them.
 *
 * A few driver threads poll all the connections rather than one thread per
 * connection: on a small machine, dozens of client threads mostly measure
 * the scheduler. The connections are still independent clients to the
 * broker: separate CURVE sessions, separate departments, separate replay
 * windows.
 *
 * Answers are matched by reply_to; an answer to nothing outstanding counts
 * as an error (the broker answered twice or invented a reply_to). Every
 * answer's latency is kept for the percentiles, every Error's code and the
 * first one's message for the report, and the first Response's body as the
 * sample that phases.c verifies as a requester would.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zmq.h>

#include "bench.h"
#include "conn.h"
#include "envelope.h"

/* An answer that takes longer than this means the broker has stopped. */
#define STALL_NS (15ull * 1000000000ull)

int conn_reserve(conn *c, size_t n_env, size_t bytes)
{
    c->offset = calloc(n_env, sizeof(*c->offset));
    c->length = calloc(n_env, sizeof(*c->length));
    c->sent_ns = calloc(n_env, sizeof(*c->sent_ns));
    c->latency_us = calloc(n_env, sizeof(*c->latency_us));
    c->blob = malloc(bytes);
    c->cap_env = n_env;
    c->blob_cap = bytes;
    if (c->offset == NULL || c->length == NULL || c->sent_ns == NULL ||
        c->latency_us == NULL || c->blob == NULL)
        return -1;
    return 0;
}

int conn_renew(conn *c, size_t n_env, size_t bytes)
{
    c->seq_base += c->n_env;
    free(c->blob);
    free(c->offset);
    free(c->length);
    free(c->sent_ns);
    free(c->latency_us);
    c->blob = NULL;
    c->offset = NULL;
    c->length = NULL;
    c->sent_ns = NULL;
    c->latency_us = NULL;
    c->blob_len = 0;
    c->n_env = c->cap_env = 0;
    c->n_latency = c->next = c->outstanding = 0;
    c->late_sends = c->max_lag_ns = 0;
    c->ok = c->ok_in_time = c->errors = 0;
    memset(c->error_codes, 0, sizeof(c->error_codes));
    return conn_reserve(c, n_env, bytes);
}

/* Signs an envelope of `kind` carrying body and appends it to c. */
int conn_add_envelope(conn *c, Once__Kind kind, const uint8_t *body,
                             size_t body_len)
{
    Once__Envelope e = ONCE__ENVELOPE__INIT;
    uint8_t sig[ONCE_SIGNATURE_BYTES];
    size_t len;

    if (c->n_env == c->cap_env)
        return -1;
    e.version = ENVELOPE_VERSION;
    e.sender = c->dept;
    e.session = c->session;
    e.seq = c->seq_base + c->n_env + 1;
    e.sent_at = once_now_ms();
    e.kind = kind;
    e.body.data = (uint8_t *)body;
    e.body.len = body_len;
    if (envelope_sign(&e, &c->key, sig) < 0)
        return -1;
    len = once__envelope__get_packed_size(&e);
    if (c->blob_len + len > c->blob_cap) {
        size_t cap = c->blob_cap * 2 + len;
        uint8_t *b = realloc(c->blob, cap);

        if (b == NULL)
            return -1;
        c->blob = b;
        c->blob_cap = cap;
    }
    once__envelope__pack(&e, c->blob + c->blob_len);
    c->offset[c->n_env] = c->blob_len;
    c->length[c->n_env] = (uint32_t)len;
    c->blob_len += len;
    c->n_env++;
    return 0;
}

int conn_connect(conn *c, void *ctx, const char *endpoint,
                        const uint8_t broker_pk[32])
{
    char server[41], public[41], secret[41];
    int rc = -1;

    c->sock = zmq_socket(ctx, ZMQ_DEALER);
    if (c->sock == NULL)
        return -1;
    if (once_curve_public_z85(server, broker_pk) < 0 ||
        once_curve_public_z85(public, c->key.public_key) < 0 ||
        once_curve_secret_z85(secret, &c->key) < 0)
        goto out;
    if (zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, server, 40) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, public, 40) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, secret, 40) != 0 ||
        set_int(c->sock, ZMQ_LINGER, 0) != 0 ||
        set_int(c->sock, ZMQ_SNDHWM, 100000) != 0 ||
        set_int(c->sock, ZMQ_RCVHWM, 100000) != 0 ||
        zmq_connect(c->sock, endpoint) != 0)
        goto out;
    rc = 0;
out:
    sodium_memzero(secret, sizeof(secret));
    return rc;
}

void conn_free(conn *c)
{
    if (c->sock != NULL)
        zmq_close(c->sock);
    free(c->blob);
    free(c->offset);
    free(c->length);
    free(c->sent_ns);
    free(c->latency_us);
    free(c->sample);
    once_keypair_wipe(&c->key);
    memset(c, 0, sizeof(*c));
}

static int conn_send_next(conn *c)
{
    size_t i = c->next;

    c->sent_ns[i] = monotonic_ns();
    if (zmq_send(c->sock, c->blob + c->offset[i], c->length[i], 0) < 0)
        return -1;
    c->next++;
    c->outstanding++;
    return 0;
}

int conn_send_due(conn *c, uint64_t due_ns)
{
    size_t i = c->next;
    uint64_t now;

    if (zmq_send(c->sock, c->blob + c->offset[i], c->length[i],
                 ZMQ_DONTWAIT) < 0)
        return errno == EAGAIN ? 1 : -1;
    now = monotonic_ns();
    if (now > due_ns + 1000000)
        c->late_sends++;
    if (now > due_ns && now - due_ns > c->max_lag_ns)
        c->max_lag_ns = now - due_ns;
    c->sent_ns[i] = due_ns;
    c->next++;
    c->outstanding++;
    return 0;
}

static void conn_record_error(conn *c, const uint8_t *body, size_t len)
{
    Once__Error *e = once__error__unpack(NULL, len, body);
    int code = e != NULL ? (int)e->code : 0;

    c->errors++;
    c->error_codes[code >= 0 && code < 32 ? code : 0]++;
    if (c->first_error[0] == '\0')
        snprintf(c->first_error, sizeof(c->first_error), "%s: %s",
                 once_error_name(code),
                 e != NULL && e->message != NULL ? e->message
                                                 : "(undecodable Error)");
    if (e != NULL)
        once__error__free_unpacked(e, NULL);
}

/* An answer to nothing outstanding means the broker answered something
 * twice or invented a reply_to. */
int conn_answer(conn *c, const uint8_t *data, size_t len, uint64_t deadline)
{
    Once__Envelope *e = envelope_unpack(data, len);
    uint64_t now = monotonic_ns();
    size_t i;

    if (e == NULL) {
        c->errors++;
        snprintf(c->first_error, sizeof(c->first_error),
                 "undecodable answer of %zu bytes", len);
        return -1;
    }
    if (e->reply_to <= c->seq_base || e->reply_to > c->seq_base + c->next ||
        c->sent_ns[e->reply_to - c->seq_base - 1] == 0) {
        once__envelope__free_unpacked(e, NULL);
        c->errors++;
        snprintf(c->first_error, sizeof(c->first_error),
                 "answer to seq %" PRIu64 ", which is not outstanding",
                 e->reply_to);
        return -1;
    }
    i = (size_t)(e->reply_to - c->seq_base - 1);
    c->latency_us[c->n_latency++] = (uint32_t)((now - c->sent_ns[i]) / 1000);
    c->sent_ns[i] = 0;
    c->outstanding--;
    if (e->kind == ONCE__KIND__KIND_RESPONSE) {
        c->ok++;
        if (deadline == 0 || now <= deadline)
            c->ok_in_time++;
        if (c->sample == NULL && (c->sample = malloc(e->body.len + 1))) {
            memcpy(c->sample, e->body.data, e->body.len);
            c->sample_len = e->body.len;
        }
    } else if (e->kind == ONCE__KIND__KIND_ERROR) {
        conn_record_error(c, e->body.data, e->body.len);
    } else {
        c->errors++;
        snprintf(c->first_error, sizeof(c->first_error),
                 "answer of kind %d", (int)e->kind);
    }
    once__envelope__free_unpacked(e, NULL);
    return 0;
}

/* One driver thread: keeps `window` envelopes in flight on each of its
 * connections until the deadline (0: until every envelope is answered),
 * then collects the answers still outstanding. */
typedef struct driver {
    conn *conns;
    size_t n;
    size_t window;
    uint64_t deadline;
    bool failed;
    char failure[256];
} driver;

static void *drive(void *arg)
{
    driver *d = arg;
    zmq_pollitem_t *items = calloc(d->n, sizeof(*items));
    uint64_t last_progress = monotonic_ns();
    size_t i;

    if (items == NULL) {
        d->failed = true;
        snprintf(d->failure, sizeof(d->failure), "out of memory");
        return NULL;
    }
    for (i = 0; i < d->n; i++) {
        conn *c = &d->conns[i];

        items[i] = (zmq_pollitem_t){c->sock, 0, ZMQ_POLLIN, 0};
        while (c->outstanding < d->window && c->next < c->n_env)
            if (conn_send_next(c) < 0)
                goto send_failed;
    }
    for (;;) {
        uint64_t now = monotonic_ns();
        bool sending = d->deadline == 0 || now < d->deadline;
        bool busy = false;

        for (i = 0; i < d->n; i++) {
            if (d->conns[i].outstanding > 0 ||
                (sending && d->conns[i].next < d->conns[i].n_env))
                busy = true;
        }
        if (!busy)
            break;
        if (now - last_progress > STALL_NS) {
            d->failed = true;
            snprintf(d->failure, sizeof(d->failure),
                     "no answer from the broker for %llu s",
                     (unsigned long long)(STALL_NS / 1000000000ull));
            break;
        }
        if (zmq_poll(items, (int)d->n, 100) <= 0)
            continue;
        for (i = 0; i < d->n; i++) {
            conn *c = &d->conns[i];

            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            for (;;) {
                zmq_msg_t m;

                zmq_msg_init(&m);
                if (zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) < 0) {
                    zmq_msg_close(&m);
                    break;
                }
                conn_answer(c, zmq_msg_data(&m), zmq_msg_size(&m),
                            d->deadline);
                zmq_msg_close(&m);
                last_progress = monotonic_ns();
                if ((d->deadline == 0 || last_progress < d->deadline) &&
                    c->next < c->n_env && c->outstanding < d->window &&
                    conn_send_next(c) < 0)
                    goto send_failed;
            }
        }
    }
    free(items);
    return NULL;
send_failed:
    d->failed = true;
    snprintf(d->failure, sizeof(d->failure), "send failed: %s",
             zmq_strerror(errno));
    free(items);
    return NULL;
}

/* Runs `threads` drivers over conns[0..n) and returns 0, or -1 with the
 * first failure printed. */
int run_drivers(conn *conns, size_t n, size_t threads, size_t window,
                       uint64_t deadline)
{
    driver d[64];
    pthread_t tid[64];
    size_t t, started = 0, per;
    int rc = 0;

    if (threads > n)
        threads = n;
    if (threads > 64)
        threads = 64;
    per = (n + threads - 1) / threads;
    for (t = 0; t < threads && t * per < n; t++) {
        size_t first = t * per;

        d[t] = (driver){conns + first, n - first < per ? n - first : per,
                        window, deadline, false, ""};
        if (pthread_create(&tid[t], NULL, drive, &d[t]) != 0)
            break;
        started++;
    }
    if (started == 0)
        return -1;
    for (t = 0; t < started; t++) {
        pthread_join(tid[t], NULL);
        if (d[t].failed && rc == 0) {
            note("%s", d[t].failure);
            rc = -1;
        }
    }
    return rc;
}

