/*
 * once-bench.c - how fast a once broker is, measured against what this
 * machine can do at all.
 *
 * A requests-per-second figure alone says little: it moves with the CPU,
 * the disk and whatever else runs. So once-bench measures, in the same run,
 * the three limits a broker cannot beat and quotes the broker against them:
 *
 *   Ed25519 verifications per second: the broker verifies every envelope,
 *     so requests/s can never exceed verify/s x cores;
 *   a raw ZeroMQ DEALER/ROUTER echo over the broker's transport, plain and
 *     with CURVE: the cost of moving the messages at all;
 *   durable LMDB commits per second (one small write transaction, fsync):
 *     what a publish costs without group commit.
 *
 * Then it builds a broker home in a temporary directory with the storage
 * API (the broker key, one issuer and one requester department per client,
 * a record type and grants), starts the real onced on it, publishes
 * --records signed records, and drives --clients concurrent connections
 * with signed, granted requests for random records for --seconds.
 *
 * The clients are raw pipelined DEALER sockets with CURVE, one session and
 * one department key each, keeping --window requests outstanding. Every
 * envelope is built and signed before the timed phase starts, because the
 * bench runs on the broker's machine and client-side signing would
 * otherwise take CPU from the broker and be counted against it. A few
 * driver threads poll all the connections rather than one thread per
 * connection, for the same reason: on a small machine, dozens of client
 * threads mostly measure the scheduler. The connections are still
 * independent clients to the broker: separate CURVE sessions, separate
 * departments, separate replay windows.
 *
 * Answers are matched by reply_to; every answer must be a Response (an
 * Error is a bug in the bench's setup or in the broker, and makes the exit
 * status non-zero). One answer per connection is decoded and its record
 * verified against the issuer's key and checked to hold exactly the granted
 * fields, so a broker that answers fast but wrongly does not pass. After
 * the run the broker is stopped with SIGTERM and must exit 0, and the
 * database must hold every acknowledged record.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>
#include <zmq.h>

#include "envelope.h"
#include "once.pb-c.h"
#include "once/once.h"
#include "policy.h"
#include "record_internal.h"
#include "registry.h"
#include "store.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2

#define BENCH_TYPE "bench-licence"
#define BENCH_ISSUER "bench-issuer"
#define BENCH_PURPOSE "benchmark"
#define BENCH_FIELDS 4
#define BENCH_GRANTED 2
#define TMPFS_MAGIC_NUMBER 0x01021994

/* An answer that takes longer than this means the broker has stopped. */
#define STALL_NS (15ull * 1000000000ull)

static const char *const field_names[BENCH_FIELDS] = {
    "name", "address", "registered_capital", "legal_representative"};

typedef struct options {
    const char *onced;
    const char *dir;
    unsigned long records;
    unsigned long clients;
    unsigned long threads;
    unsigned long window;
    unsigned long publish_window;
    unsigned long workers;
    double seconds;
    double limit_seconds;
    unsigned long max_presigned;
    bool tcp;
    bool json;
    bool limits_only;
    bool keep;
} options;

static options opt = {
    .records = 10000,
    .clients = 32,
    .threads = 2,
    .window = 8,
    .publish_window = 256,
    .workers = 0,
    .seconds = 10.0,
    .limit_seconds = 1.5,
    .max_presigned = 1000000,
};

static void die_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void die_usage(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "once-bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(once-bench --help describes the options)\n");
    exit(EXIT_USAGE);
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Progress goes to stderr so that stdout holds only the report. */
static void note(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "once-bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t seconds_ns(double s)
{
    return (uint64_t)(s * 1e9);
}

/* ------------------------------------------------------------------------
 * Limit 1: Ed25519 verifications per second
 * ---------------------------------------------------------------------- */

typedef struct verify_job {
    const uint8_t *pk;
    const uint8_t *sig;
    const uint8_t *msg;
    size_t len;
    uint64_t deadline;
    uint64_t count;
    bool failed;
} verify_job;

static void *verify_thread(void *arg)
{
    verify_job *j = arg;

    while (mono_ns() < j->deadline) {
        for (int i = 0; i < 32; i++) {
            if (crypto_sign_verify_detached(j->sig, j->msg, j->len, j->pk) !=
                0)
                j->failed = true;
        }
        j->count += 32;
    }
    return NULL;
}

/* Verifications per second over `seconds` on `threads` threads. The
 * message is the signing input of a typical request envelope. */
static int measure_verify(int threads, double seconds, const uint8_t *msg,
                          size_t len, double *rate)
{
    once_keypair kp;
    uint8_t sig[ONCE_SIGNATURE_BYTES];
    pthread_t tid[64];
    verify_job jobs[64];
    uint64_t start, total = 0;
    int i, started = 0;
    bool failed = false;

    if (threads > 64)
        threads = 64;
    once_keypair_generate(&kp);
    crypto_sign_detached(sig, NULL, msg, len, kp.secret_key);
    start = mono_ns();
    for (i = 0; i < threads; i++) {
        jobs[i] = (verify_job){kp.public_key, sig, msg, len,
                               start + seconds_ns(seconds), 0, false};
        if (pthread_create(&tid[i], NULL, verify_thread, &jobs[i]) != 0)
            break;
        started++;
    }
    for (i = 0; i < started; i++) {
        pthread_join(tid[i], NULL);
        total += jobs[i].count;
        failed |= jobs[i].failed;
    }
    once_keypair_wipe(&kp);
    if (started == 0 || failed)
        return -1;
    *rate = (double)total / ((double)(mono_ns() - start) / 1e9);
    return 0;
}

/* ------------------------------------------------------------------------
 * Limit 2: ZeroMQ DEALER/ROUTER echo
 * ---------------------------------------------------------------------- */

typedef struct curve_keys {
    char server_public[41], server_secret[41];
    char client_public[41], client_secret[41];
} curve_keys;

typedef struct echo_server {
    void *ctx;
    void *sock;
    atomic_bool stop;
} echo_server;

static void *echo_thread(void *arg)
{
    echo_server *s = arg;
    zmq_pollitem_t item = {s->sock, 0, ZMQ_POLLIN, 0};

    while (!atomic_load(&s->stop)) {
        if (zmq_poll(&item, 1, 50) <= 0)
            continue;
        for (;;) {
            zmq_msg_t id, payload;

            zmq_msg_init(&id);
            if (zmq_msg_recv(&id, s->sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&id);
                break;
            }
            zmq_msg_init(&payload);
            if (zmq_msg_recv(&payload, s->sock, 0) < 0) {
                zmq_msg_close(&id);
                zmq_msg_close(&payload);
                break;
            }
            zmq_msg_send(&id, s->sock, ZMQ_SNDMORE);
            zmq_msg_send(&payload, s->sock, 0);
        }
    }
    return NULL;
}

static int set_int(void *sock, int option, int value)
{
    return zmq_setsockopt(sock, option, &value, sizeof(value));
}

/* Round trips per second with `dealers` DEALER sockets each keeping
 * `window` messages of `size` bytes in flight, against one ROUTER echoing
 * from its own thread and context (as a separate broker process would). */
static int measure_echo(const char *endpoint_base, bool curve, int dealers,
                        int window, size_t size, double seconds, double *rate)
{
    echo_server server = {0};
    pthread_t tid;
    void *client_ctx = NULL, *socks[64] = {0};
    zmq_pollitem_t items[64];
    char endpoint[512];
    size_t len = sizeof(endpoint);
    curve_keys keys;
    uint8_t *payload = NULL;
    uint64_t count = 0, start, deadline;
    int i, rc = -1, warm = 0;
    bool thread_started = false;

    if (dealers > 64)
        dealers = 64;
    zmq_curve_keypair(keys.server_public, keys.server_secret);
    zmq_curve_keypair(keys.client_public, keys.client_secret);
    payload = calloc(1, size);
    server.ctx = zmq_ctx_new();
    client_ctx = zmq_ctx_new();
    if (payload == NULL || server.ctx == NULL || client_ctx == NULL)
        goto out;
    server.sock = zmq_socket(server.ctx, ZMQ_ROUTER);
    if (server.sock == NULL || set_int(server.sock, ZMQ_LINGER, 0) != 0 ||
        set_int(server.sock, ZMQ_SNDHWM, 100000) != 0 ||
        set_int(server.sock, ZMQ_RCVHWM, 100000) != 0)
        goto out;
    if (curve && (set_int(server.sock, ZMQ_CURVE_SERVER, 1) != 0 ||
                  zmq_setsockopt(server.sock, ZMQ_CURVE_SECRETKEY,
                                 keys.server_secret, 40) != 0))
        goto out;
    if (zmq_bind(server.sock, endpoint_base) != 0 ||
        zmq_getsockopt(server.sock, ZMQ_LAST_ENDPOINT, endpoint, &len) != 0)
        goto out;
    atomic_store(&server.stop, false);
    if (pthread_create(&tid, NULL, echo_thread, &server) != 0)
        goto out;
    thread_started = true;

    for (i = 0; i < dealers; i++) {
        socks[i] = zmq_socket(client_ctx, ZMQ_DEALER);
        if (socks[i] == NULL || set_int(socks[i], ZMQ_LINGER, 0) != 0)
            goto out;
        if (curve && (zmq_setsockopt(socks[i], ZMQ_CURVE_SERVERKEY,
                                     keys.server_public, 40) != 0 ||
                      zmq_setsockopt(socks[i], ZMQ_CURVE_PUBLICKEY,
                                     keys.client_public, 40) != 0 ||
                      zmq_setsockopt(socks[i], ZMQ_CURVE_SECRETKEY,
                                     keys.client_secret, 40) != 0))
            goto out;
        if (zmq_connect(socks[i], endpoint) != 0)
            goto out;
        items[i] = (zmq_pollitem_t){socks[i], 0, ZMQ_POLLIN, 0};
    }
    /* Warm up: one round trip per socket, so handshakes are not timed. */
    for (i = 0; i < dealers; i++)
        zmq_send(socks[i], payload, size, 0);
    deadline = mono_ns() + seconds_ns(10);
    while (warm < dealers && mono_ns() < deadline) {
        if (zmq_poll(items, dealers, 100) <= 0)
            continue;
        for (i = 0; i < dealers; i++) {
            if ((items[i].revents & ZMQ_POLLIN) &&
                zmq_recv(socks[i], payload, size, ZMQ_DONTWAIT) >= 0)
                warm++;
        }
    }
    if (warm < dealers)
        goto out;

    start = mono_ns();
    deadline = start + seconds_ns(seconds);
    for (i = 0; i < dealers; i++) {
        for (int w = 0; w < window; w++)
            zmq_send(socks[i], payload, size, 0);
    }
    while (mono_ns() < deadline) {
        if (zmq_poll(items, dealers, 100) <= 0)
            continue;
        for (i = 0; i < dealers; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            while (zmq_recv(socks[i], payload, size, ZMQ_DONTWAIT) >= 0) {
                count++;
                zmq_send(socks[i], payload, size, 0);
            }
        }
    }
    *rate = (double)count / ((double)(mono_ns() - start) / 1e9);
    rc = 0;
out:
    for (i = 0; i < dealers; i++) {
        if (socks[i] != NULL)
            zmq_close(socks[i]);
    }
    if (thread_started) {
        atomic_store(&server.stop, true);
        pthread_join(tid, NULL);
    }
    if (server.sock != NULL)
        zmq_close(server.sock);
    if (client_ctx != NULL)
        zmq_ctx_term(client_ctx);
    if (server.ctx != NULL)
        zmq_ctx_term(server.ctx);
    free(payload);
    sodium_memzero(&keys, sizeof(keys));
    return rc;
}

/* ------------------------------------------------------------------------
 * Limit 3: durable LMDB commits
 * ---------------------------------------------------------------------- */

/* Commits per second of one write transaction holding one 16-byte key and a
 * 256-byte value, with LMDB's default durability (fsync on commit). */
static int measure_lmdb(const char *dir, double seconds, double *rate)
{
    MDB_env *env = NULL;
    MDB_dbi dbi;
    MDB_txn *txn;
    uint8_t key[16] = {0}, value[256];
    uint64_t start, deadline, n = 0;

    memset(value, 0x5a, sizeof(value));
    if (mkdir(dir, 0700) != 0 || mdb_env_create(&env) != 0 ||
        mdb_env_set_mapsize(env, (size_t)64 << 20) != 0 ||
        mdb_env_open(env, dir, 0, 0600) != 0)
        goto fail;
    start = mono_ns();
    deadline = start + seconds_ns(seconds);
    while (mono_ns() < deadline) {
        MDB_val k = {sizeof(key), key}, v = {sizeof(value), value};

        memcpy(key, &n, sizeof(n));
        if (mdb_txn_begin(env, NULL, 0, &txn) != 0)
            goto fail;
        if (mdb_dbi_open(txn, NULL, 0, &dbi) != 0 ||
            mdb_put(txn, dbi, &k, &v, 0) != 0) {
            mdb_txn_abort(txn);
            goto fail;
        }
        if (mdb_txn_commit(txn) != 0)
            goto fail;
        n++;
    }
    *rate = (double)n / ((double)(mono_ns() - start) / 1e9);
    mdb_env_close(env);
    return 0;
fail:
    if (env != NULL)
        mdb_env_close(env);
    return -1;
}

/* ------------------------------------------------------------------------
 * Pipelined connections to the broker
 * ---------------------------------------------------------------------- */

/* One DEALER connection with its own department key and session, and the
 * envelopes it will send, signed in advance. Envelope i has seq i + 1. */
typedef struct conn {
    char dept[ONCE_MAX_NAME + 1];
    once_keypair key;
    uint64_t session;
    void *sock;

    uint8_t *blob;       /* the signed envelopes, back to back */
    size_t blob_len, blob_cap;
    size_t *offset;      /* envelope i is blob[offset[i] .. +length[i]) */
    uint32_t *length;
    size_t n_env, cap_env;

    uint64_t *sent_ns;   /* send time of envelope i, 0 once answered */
    uint32_t *latency_us;
    size_t n_latency;
    size_t next;         /* next envelope to send */
    size_t outstanding;

    uint64_t ok, ok_in_time, errors;
    uint64_t error_codes[32];
    char first_error[ONCE_ERROR_MESSAGE_MAX + 64];
    uint8_t *sample;     /* the body of the first Response */
    size_t sample_len;
} conn;

static int conn_reserve(conn *c, size_t n_env, size_t bytes)
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

/* Signs an envelope of `kind` carrying body and appends it to c. */
static int conn_add_envelope(conn *c, Once__Kind kind, const uint8_t *body,
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
    e.seq = c->n_env + 1;
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

static int conn_connect(conn *c, void *ctx, const char *endpoint,
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

static void conn_free(conn *c)
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

    c->sent_ns[i] = mono_ns();
    if (zmq_send(c->sock, c->blob + c->offset[i], c->length[i], 0) < 0)
        return -1;
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

/* Handles one answer frame. Returns -1 for an answer that matches nothing
 * sent (the broker answered something twice or invented a reply_to). */
static int conn_answer(conn *c, const uint8_t *data, size_t len,
                       uint64_t deadline)
{
    Once__Envelope *e = envelope_unpack(data, len);
    uint64_t now = mono_ns();
    size_t i;

    if (e == NULL) {
        c->errors++;
        snprintf(c->first_error, sizeof(c->first_error),
                 "undecodable answer of %zu bytes", len);
        return -1;
    }
    if (e->reply_to == 0 || e->reply_to > c->next ||
        c->sent_ns[e->reply_to - 1] == 0) {
        once__envelope__free_unpacked(e, NULL);
        c->errors++;
        snprintf(c->first_error, sizeof(c->first_error),
                 "answer to seq %" PRIu64 ", which is not outstanding",
                 e->reply_to);
        return -1;
    }
    i = e->reply_to - 1;
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
    uint64_t last_progress = mono_ns();
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
        uint64_t now = mono_ns();
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
                last_progress = mono_ns();
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
static int run_drivers(conn *conns, size_t n, size_t threads, size_t window,
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

/* ------------------------------------------------------------------------
 * The broker home and the broker process
 * ---------------------------------------------------------------------- */

typedef struct bench_home {
    char dir[PATH_MAX];      /* the temporary directory of the whole run */
    char home[PATH_MAX];     /* the broker home in it */
    char endpoint[PATH_MAX + 32];
    char log_path[PATH_MAX];
    once_keypair broker;
    once_keypair issuer;
    pid_t pid;
} bench_home;

static int path_join(char *out, size_t cap, const char *a, const char *b)
{
    return (size_t)snprintf(out, cap, "%s/%s", a, b) < cap ? 0 : -1;
}

/* A valid Unified Social Credit Code for every index: "91350100", nine
 * characters spelling i in base 31 over the code's alphabet, and the check
 * character. */
static void make_subject(unsigned long i, char out[19])
{
    static const char alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    int k;

    memcpy(out, "91350100", 8);
    for (k = 16; k >= 8; k--) {
        out[k] = alphabet[i % 31];
        i /= 31;
    }
    out[17] = '\0';
    once_uscc_check_char(out, &out[17]);
    out[18] = '\0';
}

/* A loopback port nothing listens on now, for onced to bind. Another
 * program could take it before onced does; onced then fails to start and
 * says so, and the run can be repeated. */
static int free_tcp_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    if (fd < 0)
        return -1;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void requester_id(size_t i, char *out, size_t cap)
{
    snprintf(out, cap, "bench-requester-%03zu", i);
}

static int write_config(const bench_home *h)
{
    char path[PATH_MAX + 16];
    FILE *f;

    if (path_join(path, sizeof(path), h->home, "once.conf") < 0 ||
        (f = fopen(path, "w")) == NULL)
        return -1;
    fprintf(f,
            "# written by once-bench\n"
            "[broker]\n"
            "name = once-bench-broker\n"
            "listen = %s\n"
            "key = broker.key\n"
            "audit_key = audit.key\n"
            "log_origin = once-bench/exchange-log\n"
            "database = db\n"
            "map_size_mb = 4096\n"
            "workers = %lu\n"
            "skew_seconds = 300\n"
            "group_commit_max = 256\n"
            "log_level = warn\n",
            h->endpoint, opt.workers);
    return fclose(f) == 0 ? 0 : -1;
}

/* The broker home: keys, config, and in the database the issuer, one
 * requester department per client, the record type and a grant of two of
 * its four fields to every requester. */
static int make_home(bench_home *h, conn *clients, size_t n_clients)
{
    char key_path[PATH_MAX + 16], pub_path[PATH_MAX + 16], db[PATH_MAX + 16];
    record_type t;
    store s;
    MDB_txn *txn = NULL;
    once_error err;
    size_t i;
    int rc;

    if (path_join(h->home, sizeof(h->home), h->dir, "home") < 0 ||
        mkdir(h->home, 0700) != 0)
        return -1;
    if (opt.tcp) {
        int port = free_tcp_port();

        if (port < 0)
            return -1;
        snprintf(h->endpoint, sizeof(h->endpoint), "tcp://127.0.0.1:%d",
                 port);
    } else
        snprintf(h->endpoint, sizeof(h->endpoint), "ipc://%s/broker.sock",
                 h->dir);
    if (once_keypair_generate(&h->broker) < 0 ||
        once_keypair_generate(&h->issuer) < 0 ||
        path_join(key_path, sizeof(key_path), h->home, "broker.key") < 0 ||
        path_join(pub_path, sizeof(pub_path), h->home, "broker.pub") < 0 ||
        path_join(db, sizeof(db), h->home, "db") < 0 ||
        path_join(h->log_path, sizeof(h->log_path), h->dir, "onced.log") < 0)
        return -1;
    if (once_keypair_save(&h->broker, key_path, pub_path, &err) < 0) {
        note("cannot write the broker key: %s", err.message);
        return -1;
    }
    /* The audit key has a secret key file's format. */
    {
        once_keypair audit;
        int saved;

        if (once_keypair_generate(&audit) < 0 ||
            path_join(key_path, sizeof(key_path), h->home, "audit.key") < 0 ||
            path_join(pub_path, sizeof(pub_path), h->home, "audit.pub") < 0)
            return -1;
        saved = once_keypair_save(&audit, key_path, pub_path, &err);
        once_keypair_wipe(&audit);
        if (saved < 0) {
            note("cannot write the audit key: %s", err.message);
            return -1;
        }
    }
    if (write_config(h) < 0)
        return -1;
    if (store_open(&s, db, (size_t)4096 << 20, &err) < 0) {
        note("cannot create the database: %s", err.message);
        return -1;
    }
    if ((rc = store_begin(&s, 0, &txn, &err)) < 0)
        goto out;
    if ((rc = policy_department_add(txn, &s, BENCH_ISSUER, "Bench issuer",
                                    h->issuer.public_key, &err)) < 0)
        goto abort;
    for (i = 0; i < n_clients; i++) {
        if ((rc = policy_department_add(txn, &s, clients[i].dept,
                                        "Bench requester",
                                        clients[i].key.public_key,
                                        &err)) < 0)
            goto abort;
    }
    memset(&t, 0, sizeof(t));
    snprintf(t.name, sizeof(t.name), "%s", BENCH_TYPE);
    snprintf(t.issuers[0], sizeof(t.issuers[0]), "%s", BENCH_ISSUER);
    t.issuer_count = 1;
    t.subject_kind = ONCE_SUBJECT_ENTERPRISE;
    for (i = 0; i < BENCH_FIELDS; i++)
        snprintf(t.fields[i], sizeof(t.fields[i]), "%s", field_names[i]);
    t.field_count = BENCH_FIELDS;
    if ((rc = policy_type_add(txn, &s, &t, &err)) < 0)
        goto abort;
    for (i = 0; i < n_clients; i++) {
        grant g;

        memset(&g, 0, sizeof(g));
        snprintf(g.requester, sizeof(g.requester), "%s", clients[i].dept);
        snprintf(g.type, sizeof(g.type), "%s", BENCH_TYPE);
        snprintf(g.purpose, sizeof(g.purpose), "%s", BENCH_PURPOSE);
        for (size_t f = 0; f < BENCH_GRANTED; f++)
            snprintf(g.fields[f], sizeof(g.fields[f]), "%s", field_names[f]);
        g.field_count = BENCH_GRANTED;
        if ((rc = policy_grant_add(txn, &s, &g, &err)) < 0)
            goto abort;
    }
    rc = store_commit(txn, &err);
    txn = NULL;
    goto out;
abort:
    mdb_txn_abort(txn);
out:
    store_close(&s);
    if (rc < 0)
        note("cannot set up the broker's policy: %s", err.message);
    return rc < 0 ? -1 : 0;
}

static const char *find_onced(char *buf, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n;
    char *slash;

    if (opt.onced != NULL)
        return opt.onced;
    if (getenv("ONCED") != NULL && getenv("ONCED")[0] != '\0')
        return getenv("ONCED");
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    slash = strrchr(self, '/');
    if (slash == NULL)
        return NULL;
    *slash = '\0';
    if ((size_t)snprintf(buf, cap, "%s/../broker/onced", self) >= cap)
        return NULL;
    return buf;
}

static void print_log_tail(const bench_home *h)
{
    char line[1024];
    FILE *f = fopen(h->log_path, "r");
    long size;

    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, size > 4096 ? size - 4096 : 0, SEEK_SET);
    fprintf(stderr, "--- end of %s ---\n", h->log_path);
    while (fgets(line, sizeof(line), f) != NULL)
        fputs(line, stderr);
    fprintf(stderr, "---\n");
    fclose(f);
}

static int start_broker(bench_home *h, const char *onced)
{
    int fd;

    if (access(onced, X_OK) != 0) {
        note("cannot run the broker %s: %s (give --onced PATH or set ONCED)",
             onced, strerror(errno));
        return -1;
    }
    h->pid = fork();
    if (h->pid < 0)
        return -1;
    if (h->pid == 0) {
        fd = open(h->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execl(onced, onced, "--home", h->home, (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", onced, strerror(errno));
        _exit(127);
    }
    return 0;
}

/* True while the broker process runs; reaps it when it has exited. */
static bool broker_running(bench_home *h, int *status)
{
    if (h->pid <= 0)
        return false;
    if (waitpid(h->pid, status, WNOHANG) == h->pid) {
        h->pid = 0;
        return false;
    }
    return true;
}

/* Pings the broker as the issuer until it answers (up to 20 s). */
static int wait_broker_ready(bench_home *h)
{
    once_client_options o = {.timeout_ms = 500, .retries = 0};
    uint64_t deadline = mono_ns() + seconds_ns(20);
    once_client *c = NULL;
    once_error err = {0};
    int status;

    while (mono_ns() < deadline) {
        if (!broker_running(h, &status)) {
            once_client_close(c);
            note("the broker ended during start-up (%s %d)",
                 WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            return -1;
        }
        if (c == NULL &&
            once_client_open(&c, h->endpoint, BENCH_ISSUER, &h->issuer,
                             h->broker.public_key, &o, &err) < 0) {
            note("cannot open a client: %s", err.message);
            return -1;
        }
        if (once_client_ping(c, &err) == 0) {
            once_client_close(c);
            return 0;
        }
        if (err.code != ONCE_ERR_TIMEOUT && err.code != ONCE_ERR_CONNECT) {
            note("the broker refused a ping: %s", err.message);
            once_client_close(c);
            return -1;
        }
        if (err.code == ONCE_ERR_CONNECT) {
            once_client_close(c);
            c = NULL;
            usleep(100000);
        }
    }
    once_client_close(c);
    note("the broker did not answer a ping within 20 s");
    return -1;
}

/* SIGTERM, then up to 30 s for a clean exit; 0 only when it exits 0. */
static int stop_broker(bench_home *h)
{
    uint64_t deadline = mono_ns() + seconds_ns(30);
    int status = 0;

    if (h->pid <= 0)
        return -1;
    kill(h->pid, SIGTERM);
    while (mono_ns() < deadline) {
        pid_t r = waitpid(h->pid, &status, WNOHANG);

        if (r == h->pid) {
            h->pid = 0;
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
            note("the broker ended with %s %d after SIGTERM",
                 WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            return -1;
        }
        usleep(20000);
    }
    note("the broker did not exit within 30 s of SIGTERM; killing it");
    kill(h->pid, SIGKILL);
    waitpid(h->pid, &status, 0);
    h->pid = 0;
    return -1;
}

/* CPU seconds (user + system) the process has used so far. */
static double process_cpu_seconds(pid_t pid)
{
    char path[64], buf[2048], *p;
    unsigned long long utime, stime;
    FILE *f;
    size_t n;
    int field;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces; the fields after it don't. */
    if ((p = strrchr(buf, ')')) == NULL)
        return -1;
    p++;
    for (field = 3; field < 14 && p != NULL; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL || sscanf(p, " %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------------------
 * Building the envelopes
 * ---------------------------------------------------------------------- */

/* The signed record of subject i, as a Publish body. */
static int make_publish_body(const once_keypair *issuer, unsigned long i,
                             uint8_t **body, size_t *len)
{
    char subject[19], value[128];
    once_record *r = NULL;
    once_error err;
    int rc;

    make_subject(i, subject);
    if ((rc = once_record_new(&r, BENCH_TYPE, subject, 1, BENCH_ISSUER,
                              once_now_ms(), 0, &err)) < 0)
        goto out;
    for (size_t f = 0; f < BENCH_FIELDS && rc == 0; f++) {
        snprintf(value, sizeof(value), "%s of enterprise %lu", field_names[f],
                 i);
        rc = once_record_add_text(r, field_names[f], value, &err);
    }
    if (rc == 0)
        rc = once_record_sign(r, issuer, &err);
    if (rc == 0)
        rc = once_record_serialize(r, body, len, &err);
out:
    if (rc < 0)
        note("cannot build record %lu: %s", i, err.message);
    once_record_free(r);
    return rc;
}

typedef struct presign_job {
    conn *conns;
    size_t n;
    size_t per_conn;
    unsigned long records;
    uint64_t seed;
    int rc;
} presign_job;

static uint64_t xorshift64(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Signs per_conn request envelopes, each for a random record, on every
 * connection of the job. */
static void *presign_requests(void *arg)
{
    presign_job *j = arg;

    for (size_t k = 0; k < j->n; k++) {
        conn *c = &j->conns[k];
        uint64_t rng = j->seed + k * 0x9e3779b97f4a7c15ull + 1;

        if (conn_reserve(c, j->per_conn, j->per_conn * 200) < 0) {
            j->rc = -1;
            return NULL;
        }
        for (size_t i = 0; i < j->per_conn; i++) {
            Once__Request r = ONCE__REQUEST__INIT;
            char subject[19], case_id[ONCE_MAX_CASE_ID];
            uint8_t body[256];
            size_t len;

            make_subject(xorshift64(&rng) % j->records, subject);
            snprintf(case_id, sizeof(case_id), "BENCH-%s-%zu", c->dept, i);
            r.type = (char *)BENCH_TYPE;
            r.subject = subject;
            r.purpose = (char *)BENCH_PURPOSE;
            r.case_id = case_id;
            len = once__request__get_packed_size(&r);
            if (len > sizeof(body)) {
                j->rc = -1;
                return NULL;
            }
            once__request__pack(&r, body);
            if (conn_add_envelope(c, ONCE__KIND__KIND_REQUEST, body, len) <
                0) {
                j->rc = -1;
                return NULL;
            }
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------
 * Results
 * ---------------------------------------------------------------------- */

typedef struct results {
    int cores;
    char cpu_model[128];
    char fs_note[64];
    size_t verify_message_bytes;
    double verify_per_core;
    double verify_all_cores;     /* measured with one thread per core */
    double echo_plain;
    double echo_curve;
    double lmdb_commits;

    bool broker_ran;
    unsigned long records;
    double publish_seconds;
    double publishes_per_s;
    uint64_t requests_ok;        /* answered with a Response in time */
    uint64_t requests_total;     /* all answers, including after the deadline */
    uint64_t errors;
    double request_seconds;
    double requests_per_s;
    double p50_us, p99_us, p999_us, max_us;
    double broker_cpu_cores;
    double bench_cpu_cores;
    bool presigned_exhausted;
    size_t presigned;
    double presign_seconds;
} results;

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static double percentile(const uint32_t *sorted, size_t n, double q)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t)(q * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

static void read_cpu_model(char *out, size_t cap)
{
    char line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");

    snprintf(out, cap, "unknown CPU");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *colon = strchr(line, ':');

        if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
            colon++;
            while (*colon == ' ' || *colon == '\t')
                colon++;
            colon[strcspn(colon, "\n")] = '\0';
            snprintf(out, cap, "%s", colon);
            break;
        }
    }
    fclose(f);
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0;
}

static void print_text(const results *r)
{
    printf("once-bench: %d core%s, %s\n", r->cores, r->cores == 1 ? "" : "s",
           r->cpu_model);
    printf("caveat: the broker and this bench share the machine's %d "
           "core%s;\n        the broker's figures are lower than on a "
           "machine of its own.\n", r->cores, r->cores == 1 ? "" : "s");
    printf("\nmachine limits\n");
    printf("  %-36s %12.0f /s   (%zu-byte message, 1 thread)\n",
           "ed25519 verify, per core", r->verify_per_core,
           r->verify_message_bytes);
    printf("  %-36s %12.0f /s   (per core x %d)\n",
           "ed25519 verify, all cores", r->verify_per_core * r->cores,
           r->cores);
    printf("  %-36s %12.0f /s   (measured, %d threads)\n",
           "ed25519 verify, all cores", r->verify_all_cores, r->cores);
    printf("  %-36s %12.0f /s   (%s, 4 dealers x 64 in flight, 256 B)\n",
           "zeromq echo, plain", r->echo_plain, opt.tcp ? "tcp" : "ipc");
    printf("  %-36s %12.0f /s   (%s, same, CURVE)\n", "zeromq echo, curve",
           r->echo_curve, opt.tcp ? "tcp" : "ipc");
    printf("  %-36s %12.0f /s   (one put per txn, fsync%s)\n",
           "lmdb durable commits", r->lmdb_commits, r->fs_note);
    if (!r->broker_ran) {
        printf("\nbroker run skipped (--limits-only)\n");
        return;
    }
    printf("\nbroker run (%lu records, %lu clients x window %lu, %lu driver "
           "threads, onced workers %lu%s)\n", r->records, opt.clients,
           opt.window, opt.threads, opt.workers == 0 ? (unsigned long)r->cores
                                                     : opt.workers,
           opt.workers == 0 ? " = cores" : "");
    /* The log cannot be turned off: these are the rates with it. */
    printf("  %-36s %12s      (every publish and request is a leaf, "
           "committed before its answer; a signed checkpoint each second)\n",
           "exchange log", "on");
    printf("  %-36s %12.0f /s   (%lu in %.2f s, window %lu)\n", "publishes",
           r->publishes_per_s, r->records, r->publish_seconds,
           opt.publish_window);
    printf("  %-36s %12.0f /s   (%" PRIu64 " in %.2f s)\n",
           "granted requests", r->requests_per_s, r->requests_ok,
           r->request_seconds);
    printf("  %-36s %8.0f / %.0f / %.0f us   (max %.0f)\n",
           "latency p50 / p99 / p99.9", r->p50_us, r->p99_us, r->p999_us,
           r->max_us);
    printf("  %-36s %12" PRIu64 "\n", "errors", r->errors);
    printf("  %-36s %12.2f     (bench: %.2f)\n", "cpu cores used by onced",
           r->broker_cpu_cores, r->bench_cpu_cores);
    printf("  %-36s %12zu     (signed in %.1f s before the timed phase%s)\n",
           "pre-signed request envelopes", r->presigned, r->presign_seconds,
           r->presigned_exhausted ? "; ran out early" : "");
    printf("\nratios\n");
    printf("  %-44s %8.3f\n", "requests/s / (verify/s per core x cores)",
           ratio(r->requests_per_s, r->verify_per_core * r->cores));
    printf("  %-44s %8.3f\n", "requests/s / zeromq curve echo/s",
           ratio(r->requests_per_s, r->echo_curve));
    printf("  %-44s %8.3f\n", "requests/s / zeromq plain echo/s",
           ratio(r->requests_per_s, r->echo_plain));
    printf("  %-44s %8.3f\n", "publishes/s / lmdb durable commits/s",
           ratio(r->publishes_per_s, r->lmdb_commits));
}

static void print_json(const results *r)
{
    printf("{\n");
    printf("  \"machine\": {\"cores\": %d, \"cpu\": \"", r->cores);
    for (const char *p = r->cpu_model; *p; p++)
        if (*p != '"' && *p != '\\')
            putchar(*p);
    printf("\", \"shared_with_broker\": true},\n");
    printf("  \"limits\": {\"ed25519_verify_per_core\": %.0f, "
           "\"ed25519_verify_all_cores\": %.0f, "
           "\"ed25519_verify_all_cores_measured\": %.0f, "
           "\"verify_message_bytes\": %zu, "
           "\"zmq_echo_plain\": %.0f, \"zmq_echo_curve\": %.0f, "
           "\"transport\": \"%s\", \"lmdb_durable_commits\": %.0f},\n",
           r->verify_per_core, r->verify_per_core * r->cores,
           r->verify_all_cores, r->verify_message_bytes, r->echo_plain,
           r->echo_curve, opt.tcp ? "tcp" : "ipc", r->lmdb_commits);
    if (r->broker_ran) {
        printf("  \"broker\": {\"records\": %lu, \"clients\": %lu, "
               "\"window\": %lu, \"threads\": %lu, \"seconds\": %.3f, "
               "\"publishes_per_s\": %.1f, \"requests\": %" PRIu64 ", "
               "\"answers_total\": %" PRIu64 ", "
               "\"requests_per_s\": %.1f, \"latency_us\": {\"p50\": %.0f, "
               "\"p99\": %.0f, \"p99.9\": %.0f, \"max\": %.0f}, "
               "\"errors\": %" PRIu64 ", \"broker_cpu_cores\": %.2f, "
               "\"bench_cpu_cores\": %.2f, \"presigned\": %zu, "
               "\"presigned_exhausted\": %s},\n",
               r->records, opt.clients, opt.window, opt.threads,
               r->request_seconds, r->publishes_per_s, r->requests_ok,
               r->requests_total, r->requests_per_s, r->p50_us, r->p99_us, r->p999_us,
               r->max_us, r->errors, r->broker_cpu_cores, r->bench_cpu_cores,
               r->presigned, r->presigned_exhausted ? "true" : "false");
        printf("  \"ratios\": {\"requests_per_verify_capacity\": %.4f, "
               "\"requests_per_zmq_curve_echo\": %.4f, "
               "\"requests_per_zmq_plain_echo\": %.4f, "
               "\"publishes_per_lmdb_commit\": %.4f}\n",
               ratio(r->requests_per_s, r->verify_per_core * r->cores),
               ratio(r->requests_per_s, r->echo_curve),
               ratio(r->requests_per_s, r->echo_plain),
               ratio(r->publishes_per_s, r->lmdb_commits));
    } else {
        printf("  \"broker\": null,\n  \"ratios\": null\n");
    }
    printf("}\n");
}

/* ------------------------------------------------------------------------
 * The runs
 * ---------------------------------------------------------------------- */

static int measure_limits(const bench_home *h, results *r)
{
    Once__Envelope e = ONCE__ENVELOPE__INIT;
    Once__Request req = ONCE__REQUEST__INIT;
    char endpoint[PATH_MAX + 16], lmdb_dir[PATH_MAX + 16], subject[19];
    uint8_t body[256], *input = NULL;
    size_t input_len;
    struct statfs fs;

    make_subject(12345, subject);
    req.type = (char *)"business-licence";
    req.subject = subject;
    req.purpose = (char *)"tax-registration";
    req.case_id = (char *)"CASE-2026-0000001";
    e.version = ENVELOPE_VERSION;
    e.sender = (char *)"tax-bureau";
    e.session = 0x1122334455667788ull;
    e.seq = 1;
    e.sent_at = once_now_ms();
    e.kind = ONCE__KIND__KIND_REQUEST;
    e.body.len = once__request__get_packed_size(&req);
    e.body.data = body;
    once__request__pack(&req, body);
    if (envelope_signing_input(&e, &input, &input_len) < 0)
        return -1;
    r->verify_message_bytes = input_len;

    note("measuring ed25519 verify (%.1f s, 1 thread)", opt.limit_seconds);
    if (measure_verify(1, opt.limit_seconds, input, input_len,
                       &r->verify_per_core) < 0)
        goto fail;
    note("measuring ed25519 verify (%.1f s, %d threads)", opt.limit_seconds,
         r->cores);
    if (measure_verify(r->cores, opt.limit_seconds, input, input_len,
                       &r->verify_all_cores) < 0)
        goto fail;
    free(input);
    input = NULL;

    if (opt.tcp)
        snprintf(endpoint, sizeof(endpoint), "tcp://127.0.0.1:*");
    else
        snprintf(endpoint, sizeof(endpoint), "ipc://%s/echo.sock", h->dir);
    note("measuring zeromq echo, plain (%.1f s)", opt.limit_seconds);
    if (measure_echo(endpoint, false, 4, 64, 256, opt.limit_seconds,
                     &r->echo_plain) < 0) {
        note("the zeromq echo failed: %s", zmq_strerror(errno));
        return -1;
    }
    note("measuring zeromq echo, curve (%.1f s)", opt.limit_seconds);
    if (!zmq_has("curve") ||
        measure_echo(endpoint, true, 4, 64, 256, opt.limit_seconds,
                     &r->echo_curve) < 0) {
        note("the zeromq CURVE echo failed (libzmq without CURVE?)");
        return -1;
    }

    if (path_join(lmdb_dir, sizeof(lmdb_dir), h->dir, "lmdb-commit") < 0)
        return -1;
    note("measuring lmdb durable commits (%.1f s)", opt.limit_seconds);
    if (measure_lmdb(lmdb_dir, opt.limit_seconds, &r->lmdb_commits) < 0) {
        note("the lmdb commit measurement failed in %s", lmdb_dir);
        return -1;
    }
    if (statfs(h->dir, &fs) == 0 && fs.f_type == TMPFS_MAGIC_NUMBER)
        snprintf(r->fs_note, sizeof(r->fs_note),
                 "; tmpfs: fsync is free, use --dir");
    return 0;
fail:
    free(input);
    note("the ed25519 measurement failed");
    return -1;
}

/* Publishes every record through one pipelined issuer connection. */
static int run_publishes(bench_home *h, void *ctx, results *r)
{
    conn issuer = {0};
    uint64_t start, last = 0;
    int rc = -1;

    snprintf(issuer.dept, sizeof(issuer.dept), "%s", BENCH_ISSUER);
    issuer.key = h->issuer;
    do
        randombytes_buf(&issuer.session, sizeof(issuer.session));
    while (issuer.session == 0);
    if (conn_reserve(&issuer, opt.records, opt.records * 900) < 0)
        goto out;
    note("signing %lu records", opt.records);
    for (unsigned long i = 0; i < opt.records; i++) {
        uint8_t *body;
        size_t len;

        if (make_publish_body(&h->issuer, i, &body, &len) < 0)
            goto out;
        rc = conn_add_envelope(&issuer, ONCE__KIND__KIND_PUBLISH, body, len);
        free(body);
        if (rc < 0)
            goto out;
    }
    rc = -1;
    if (conn_connect(&issuer, ctx, h->endpoint, h->broker.public_key) < 0)
        goto out;
    note("publishing %lu records", opt.records);
    start = mono_ns();
    if (run_drivers(&issuer, 1, 1, opt.publish_window, 0) < 0)
        goto out;
    last = mono_ns();
    r->publish_seconds = (double)(last - start) / 1e9;
    r->publishes_per_s = (double)issuer.ok / r->publish_seconds;
    r->errors += issuer.errors;
    if (issuer.errors > 0) {
        note("%" PRIu64 " publishes refused; first: %s", issuer.errors,
             issuer.first_error);
        goto out;
    }
    rc = 0;
out:
    conn_free(&issuer);
    return rc;
}

/* Decodes one granted answer and checks it as a requester would: the
 * issuer's signature, the digests, and exactly the granted fields. */
static int check_sample(const conn *c, const uint8_t issuer_pk[32])
{
    Once__Response *resp;
    once_record *rec = NULL;
    once_error err = {0};
    int rc = -1;

    if (c->sample == NULL)
        return 0;
    resp = once__response__unpack(NULL, c->sample_len, c->sample);
    if (resp == NULL || resp->record == NULL) {
        note("%s: a Response without a record", c->dept);
        goto out;
    }
    if (record_from_parts(&rec, resp->record, resp->disclosures,
                          resp->n_disclosures, &err) < 0 ||
        once_record_verify(rec, issuer_pk, &err) < 0) {
        note("%s: the answer's record does not verify: %s", c->dept,
             err.message);
        goto out;
    }
    if (once_record_field_count(rec) != BENCH_FIELDS ||
        once_record_disclosure_count(rec) != BENCH_GRANTED) {
        note("%s: the answer discloses %zu of %zu fields; the grant allows "
             "%d", c->dept, once_record_disclosure_count(rec),
             once_record_field_count(rec), BENCH_GRANTED);
        goto out;
    }
    for (size_t f = 0; f < BENCH_GRANTED; f++) {
        const uint8_t *v;
        size_t len;

        if (once_record_field_value(rec, field_names[f], &v, &len) < 0) {
            note("%s: granted field %s not disclosed", c->dept,
                 field_names[f]);
            goto out;
        }
    }
    rc = 0;
out:
    once_record_free(rec);
    if (resp != NULL)
        once__response__free_unpacked(resp, NULL);
    return rc;
}

static int run_requests(bench_home *h, void *ctx, conn *clients, results *r)
{
    presign_job jobs[64];
    pthread_t tid[64];
    size_t threads = opt.threads > 64 ? 64 : opt.threads, per, t, started = 0;
    size_t per_conn, total_latency = 0, i;
    double budget, cpu0_broker, cpu0_self, wall;
    uint64_t start, deadline, presign_start;
    uint32_t *all = NULL;
    int rc = -1;

    /* Enough envelopes for the broker to verify at the machine's full
     * verify rate for the whole run, and a quarter more: it cannot go
     * faster than that. */
    budget = 1.25 * r->verify_per_core * r->cores * opt.seconds;
    if (budget > (double)opt.max_presigned)
        budget = (double)opt.max_presigned;
    per_conn = (size_t)(budget / (double)opt.clients) + 1;
    if (per_conn < opt.window * 2)
        per_conn = opt.window * 2;
    note("signing %zu request envelopes on %zu threads", per_conn * opt.clients,
         threads);
    presign_start = mono_ns();
    per = (opt.clients + threads - 1) / threads;
    for (t = 0; t < threads && t * per < opt.clients; t++) {
        size_t first = t * per;

        jobs[t] = (presign_job){clients + first,
                                opt.clients - first < per ? opt.clients - first
                                                          : per,
                                per_conn, opt.records, 0x5eed0000 + t, 0};
        if (pthread_create(&tid[t], NULL, presign_requests, &jobs[t]) != 0)
            break;
        started++;
    }
    for (t = 0; t < started; t++) {
        pthread_join(tid[t], NULL);
        if (jobs[t].rc < 0) {
            note("cannot sign the request envelopes (out of memory?)");
            return -1;
        }
    }
    if (started == 0)
        return -1;
    r->presign_seconds = (double)(mono_ns() - presign_start) / 1e9;
    r->presigned = per_conn * opt.clients;

    for (i = 0; i < opt.clients; i++) {
        if (conn_connect(&clients[i], ctx, h->endpoint,
                         h->broker.public_key) < 0) {
            note("cannot connect client %zu: %s", i, zmq_strerror(errno));
            return -1;
        }
    }
    note("running %lu clients for %.1f s", opt.clients, opt.seconds);
    cpu0_broker = process_cpu_seconds(h->pid);
    cpu0_self = self_cpu_seconds();
    start = mono_ns();
    deadline = start + seconds_ns(opt.seconds);
    if (run_drivers(clients, opt.clients, threads, opt.window, deadline) < 0)
        return -1;
    wall = (double)(mono_ns() - start) / 1e9;
    r->broker_cpu_cores = (process_cpu_seconds(h->pid) - cpu0_broker) / wall;
    r->bench_cpu_cores = (self_cpu_seconds() - cpu0_self) / wall;

    for (i = 0; i < opt.clients; i++) {
        conn *c = &clients[i];

        r->requests_ok += c->ok_in_time;
        r->requests_total += c->ok;
        r->errors += c->errors;
        total_latency += c->n_latency;
        if (c->next == c->n_env)
            r->presigned_exhausted = true;
        if (c->errors > 0)
            note("%s: %" PRIu64 " errors; first: %s", c->dept, c->errors,
                 c->first_error);
    }
    /* Throughput counts the answers received by the deadline, over the
     * planned duration; when the pre-signed envelopes ran out early, over
     * the time to the last answer. */
    r->request_seconds = r->presigned_exhausted ? wall : opt.seconds;
    r->requests_per_s = (double)r->requests_ok / r->request_seconds;
    all = malloc((total_latency + 1) * sizeof(*all));
    if (all == NULL)
        return -1;
    total_latency = 0;
    for (i = 0; i < opt.clients; i++) {
        memcpy(all + total_latency, clients[i].latency_us,
               clients[i].n_latency * sizeof(*all));
        total_latency += clients[i].n_latency;
    }
    qsort(all, total_latency, sizeof(*all), compare_u32);
    r->p50_us = percentile(all, total_latency, 0.50);
    r->p99_us = percentile(all, total_latency, 0.99);
    r->p999_us = percentile(all, total_latency, 0.999);
    r->max_us = total_latency > 0 ? all[total_latency - 1] : 0;
    free(all);

    rc = r->errors > 0 ? -1 : 0;
    for (i = 0; i < opt.clients && rc == 0; i++)
        rc = check_sample(&clients[i], h->issuer.public_key);
    return rc;
}

/* After the broker stopped: every acknowledged record is in the database. */
static int check_durable(const bench_home *h, unsigned long expected)
{
    char db[PATH_MAX + 16];
    size_t records = 0, versions = 0;
    once_error err = {0};
    MDB_txn *txn;
    store s;
    int rc;

    if (path_join(db, sizeof(db), h->home, "db") < 0 ||
        store_open(&s, db, (size_t)4096 << 20, &err) < 0) {
        note("cannot reopen the database: %s", err.message);
        return -1;
    }
    rc = store_begin(&s, 1, &txn, &err);
    if (rc == 0) {
        rc = registry_count(txn, &s, &records, &versions, &err);
        mdb_txn_abort(txn);
    }
    store_close(&s);
    if (rc < 0 || records != expected) {
        note("the database holds %zu records after the run, expected %lu%s%s",
             records, expected, rc < 0 ? ": " : "", rc < 0 ? err.message : "");
        return -1;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type,
                        struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes the temporary directory this program made with mkdtemp, without
 * following symbolic links. */
static void remove_tree(const char *dir)
{
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        note("could not remove all of %s", dir);
}

static void usage(FILE *f)
{
    fprintf(f,
"usage: once-bench [OPTIONS]\n"
"\n"
"Measures this machine's limits and a real onced against them, in one run.\n"
"\n"
"Machine limits (each measured for --limit-seconds):\n"
"  ed25519 verify     crypto_sign_verify_detached over the signing input of a\n"
"                     typical request envelope: 1 thread (per core), and one\n"
"                     thread per online CPU; the ratio uses per core x cores\n"
"  zeromq echo        4 DEALERs x 64 messages of 256 bytes in flight against\n"
"                     a ROUTER echoing from its own thread and context, over\n"
"                     the broker's transport (ipc, or tcp with --tcp), plain\n"
"                     and with CURVE\n"
"  lmdb commits       write transactions of one 16-byte key and 256-byte\n"
"                     value, each committed with fsync (LMDB's default)\n"
"\n"
"Broker run: a broker home in a temporary directory (the broker key, one\n"
"issuer, one requester department per client, type '" BENCH_TYPE "' with 4\n"
"fields, grants of 2 of them for purpose '" BENCH_PURPOSE "'); onced started on it;\n"
"--records signed records published through one pipelined connection\n"
"(publishes/s); then --clients CURVE connections, each its own department\n"
"and session, keep --window signed requests for random records in flight\n"
"for --seconds. Envelopes are signed before the timed phase so client-side\n"
"crypto is not measured; --threads driver threads poll the connections.\n"
"Prints requests/s, latency p50/p99/p99.9, errors, the CPU onced used, and\n"
"the ratios to the limits. One answer per client is verified as a requester\n"
"would (issuer signature, digests, only the granted fields).\n"
"\n"
"Options:\n"
"  --onced PATH          the broker (default: $ONCED, else ../broker/onced\n"
"                        next to this program)\n"
"  --records N           records to publish (default 10000)\n"
"  --clients N           concurrent client connections (default 32)\n"
"  --window N            requests in flight per connection (default 8)\n"
"  --publish-window N    publishes in flight (default 256)\n"
"  --threads N           client driver and signing threads (default 2)\n"
"  --seconds S           length of the request phase (default 10)\n"
"  --workers N           onced worker threads (default 0: one per CPU)\n"
"  --limit-seconds S     length of each limit measurement (default 1.5)\n"
"  --max-presigned N     cap on pre-signed request envelopes (default 1000000)\n"
"  --tcp                 use tcp on 127.0.0.1 instead of ipc\n"
"  --dir DIR             where to make the temporary directory (default\n"
"                        $TMPDIR or /tmp); it holds the LMDB files, so its\n"
"                        file system decides the commit rate\n"
"  --keep                keep the temporary directory and print its path\n"
"  --limits-only         measure the machine limits only, start no broker\n"
"  --json                print the results as JSON instead of text\n"
"  -h, --help            this text\n"
"\n"
"Exit status: 0 when the run completed and every answer was as expected;\n"
"1 when the broker failed (did not start, stopped answering, did not exit\n"
"0 on SIGTERM, lost an acknowledged record) or any answer was an error or\n"
"failed verification; 2 on a usage error.\n"
"\n"
"The broker and the bench share the machine's cores: on a small machine the\n"
"broker's figures are a lower bound of what it does on a machine of its own.\n");
}

static unsigned long parse_count(const char *name, const char *s,
                                 unsigned long min, unsigned long max)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max ||
        s[0] == '-')
        die_usage("%s must be a whole number from %lu to %lu, not '%s'",
                  name, min, max, s);
    return v;
}

static double parse_seconds(const char *name, const char *s)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0.1 && v <= 3600))
        die_usage("%s must be a number of seconds from 0.1 to 3600, not "
                  "'%s'", name, s);
    return v;
}

static void parse_options(int argc, char **argv)
{
    enum {
        O_ONCED = 256, O_RECORDS, O_CLIENTS, O_WINDOW, O_PUBLISH_WINDOW,
        O_THREADS, O_SECONDS, O_WORKERS, O_LIMIT_SECONDS, O_MAX_PRESIGNED,
        O_TCP, O_DIR, O_KEEP, O_LIMITS_ONLY, O_JSON
    };
    static const struct option longopts[] = {
        {"onced", required_argument, NULL, O_ONCED},
        {"records", required_argument, NULL, O_RECORDS},
        {"clients", required_argument, NULL, O_CLIENTS},
        {"window", required_argument, NULL, O_WINDOW},
        {"publish-window", required_argument, NULL, O_PUBLISH_WINDOW},
        {"threads", required_argument, NULL, O_THREADS},
        {"seconds", required_argument, NULL, O_SECONDS},
        {"workers", required_argument, NULL, O_WORKERS},
        {"limit-seconds", required_argument, NULL, O_LIMIT_SECONDS},
        {"max-presigned", required_argument, NULL, O_MAX_PRESIGNED},
        {"tcp", no_argument, NULL, O_TCP},
        {"dir", required_argument, NULL, O_DIR},
        {"keep", no_argument, NULL, O_KEEP},
        {"limits-only", no_argument, NULL, O_LIMITS_ONLY},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_ONCED: opt.onced = optarg; break;
        case O_RECORDS:
            opt.records = parse_count("--records", optarg, 1, 10000000);
            break;
        case O_CLIENTS:
            opt.clients = parse_count("--clients", optarg, 1, 999);
            break;
        case O_WINDOW:
            opt.window = parse_count("--window", optarg, 1, 1000);
            break;
        case O_PUBLISH_WINDOW:
            opt.publish_window =
                parse_count("--publish-window", optarg, 1, 10000);
            break;
        case O_THREADS:
            opt.threads = parse_count("--threads", optarg, 1, 64);
            break;
        case O_SECONDS:
            opt.seconds = parse_seconds("--seconds", optarg);
            break;
        case O_WORKERS:
            opt.workers = parse_count("--workers", optarg, 0, 256);
            break;
        case O_LIMIT_SECONDS:
            opt.limit_seconds = parse_seconds("--limit-seconds", optarg);
            break;
        case O_MAX_PRESIGNED:
            opt.max_presigned =
                parse_count("--max-presigned", optarg, 1, 100000000);
            break;
        case O_TCP: opt.tcp = true; break;
        case O_DIR: opt.dir = optarg; break;
        case O_KEEP: opt.keep = true; break;
        case O_LIMITS_ONLY: opt.limits_only = true; break;
        case O_JSON: opt.json = true; break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            die_usage("unknown option");
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
}

int main(int argc, char **argv)
{
    static bench_home h;
    static results r;
    char onced_buf[PATH_MAX + 32];
    const char *onced = NULL, *base;
    conn *clients = NULL;
    void *ctx = NULL;
    int rc = EXIT_FAILED;
    size_t i;

    parse_options(argc, argv);
    if (once_init() < 0) {
        note("cannot initialise libsodium");
        return EXIT_FAILED;
    }
    signal(SIGPIPE, SIG_IGN);
    r.cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (r.cores < 1)
        r.cores = 1;
    read_cpu_model(r.cpu_model, sizeof(r.cpu_model));
    if (!opt.limits_only) {
        onced = find_onced(onced_buf, sizeof(onced_buf));
        if (onced == NULL || access(onced, X_OK) != 0)
            die_usage("cannot find an executable onced (%s); give --onced "
                      "PATH or set ONCED", onced ? onced : "no path");
    }
    base = opt.dir;
    if (base == NULL)
        base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    if ((size_t)snprintf(h.dir, sizeof(h.dir), "%s/once-bench-XXXXXX",
                         base) >= sizeof(h.dir) - 64 ||
        mkdtemp(h.dir) == NULL) {
        note("cannot make a temporary directory in %s: %s", base,
             strerror(errno));
        return EXIT_FAILED;
    }

    if (measure_limits(&h, &r) < 0)
        goto out;
    if (opt.limits_only) {
        rc = 0;
        goto report;
    }

    clients = calloc(opt.clients, sizeof(*clients));
    if (clients == NULL)
        goto out;
    for (i = 0; i < opt.clients; i++) {
        requester_id(i, clients[i].dept, sizeof(clients[i].dept));
        once_keypair_generate(&clients[i].key);
        do
            randombytes_buf(&clients[i].session, sizeof(clients[i].session));
        while (clients[i].session == 0);
    }
    if (make_home(&h, clients, opt.clients) < 0)
        goto out;
    note("starting %s on %s", onced, h.endpoint);
    if (start_broker(&h, onced) < 0 || wait_broker_ready(&h) < 0)
        goto broker_failed;
    r.broker_ran = true;
    r.records = opt.records;
    ctx = zmq_ctx_new();
    if (ctx == NULL)
        goto broker_failed;
    if (run_publishes(&h, ctx, &r) < 0)
        goto broker_failed;
    if (run_requests(&h, ctx, clients, &r) < 0)
        goto broker_failed;
    for (i = 0; i < opt.clients; i++)
        conn_free(&clients[i]);
    zmq_ctx_term(ctx);
    ctx = NULL;
    note("stopping the broker");
    if (stop_broker(&h) < 0)
        goto broker_failed;
    if (check_durable(&h, opt.records) < 0)
        goto broker_failed;
    rc = 0;
report:
    if (opt.json)
        print_json(&r);
    else
        print_text(&r);
    goto out;
broker_failed:
    if (h.pid > 0) {
        kill(h.pid, SIGKILL);
        waitpid(h.pid, NULL, 0);
        h.pid = 0;
    }
    print_log_tail(&h);
    if (r.broker_ran) {
        if (opt.json)
            print_json(&r);
        else
            print_text(&r);
    }
    note("FAILED");
out:
    if (clients != NULL) {
        for (i = 0; i < opt.clients; i++)
            conn_free(&clients[i]);
        free(clients);
    }
    if (ctx != NULL)
        zmq_ctx_term(ctx);
    once_keypair_wipe(&h.broker);
    once_keypair_wipe(&h.issuer);
    if (opt.keep)
        note("kept %s", h.dir);
    else if (h.dir[0] != '\0')
        remove_tree(h.dir);
    return rc;
}
