/*
 * server.c - onced's I/O thread and its pool of workers: what they do,
 * and their start and stop. The I/O thread's body is io.c.
 *
 * Threads. ZeroMQ sockets are not thread-safe, so one I/O thread owns the
 * ROUTER that departments connect to. It does no crypto and no disk I/O: it
 * reads [routing id, envelope] off the ROUTER, reads the connection's ZAP
 * User-Id (the department id zap.c admitted) off the envelope frame, and
 * pushes the job to the workers over inproc; answers come back over another
 * inproc socket and go out on the ROUTER. Everything slow happens in the
 * workers, which run in parallel: decoding, Ed25519 verification (about 50
 * microseconds, the dominant cost of a request), the replay window, policy
 * and registry reads in an LMDB read transaction (readers never block each
 * other or the writer). Every publish, revoke and request, granted or
 * refused, is a leaf of the exchange log, and no answer may leave before
 * its leaf is on disk: so the worker decides and encodes the answer, and
 * hands it with the leaf's facts and the envelope (the evidence) to the one
 * writer thread (writer.c), which group commits records and leaves, signs
 * a checkpoint when one is due and only then sends the answers with their
 * receipts. The keyed subject hash is computed here, in parallel.
 *
 *      departments -- ROUTER [I/O thread] --jobs--> [worker] x N
 *                                ^                     |    \
 *                                +------answers--------+     -> [writer]
 *                                +------answers----------------/
 *
 * Nothing blocks the I/O thread: its sends are non-blocking. When every
 * worker's queue is full it keeps the one job it holds and stops reading
 * the ROUTER until a worker takes it, so back-pressure reaches the clients
 * through ZeroMQ's own queues rather than through unbounded memory. An answer
 * for a connection that is gone (ZMQ_ROUTER_MANDATORY reports it) or that
 * does not read is dropped with a log line; the client's retry gets the
 * same answer (replay.c). "Does not read" means more answers queued than
 * twice its department's envelopes in flight (router_send_queue): a
 * client that keeps within its limit never loses one.
 *
 * Limits. For each message read the I/O thread tells the connection table
 * whose connection it came on (conn_limit.c, which the ZAP handler caps
 * connections per department by) and charges its bytes to its department
 * until it is answered (pending.c). A message that would take its
 * department over its share is refused QUOTA_EXCEEDED on the spot, without
 * a worker, so a department flooding the broker is read and refused rather
 * than left to fill ZeroMQ's queues; once all departments together hold
 * the whole budget, the I/O thread stops reading, as when the workers are
 * busy.
 *
 * Metrics. The I/O thread stamps each message with the monotonic time it
 * read it off the ROUTER; the stamp travels in the job frame to the
 * worker and on to the writer, and the request latency runs from it to
 * the answer handed back (metrics.c). It adds what it passed to the
 * workers and took off the answer queue once per batch, for the queue
 * depths; nothing it does waits for the console.
 *
 * Accounting. Every job handed to a worker comes back to the I/O thread as
 * exactly one answer: the answer, or a token when there is nothing to
 * send (a duplicate of an envelope whose answer is on its way): the job's
 * routing id frame alone, which carries its charge back. The writer sends
 * a group's answers as one message of [routing id][reply] pairs, a token
 * there an empty reply (reply.c): one wake-up of this thread a group. That is what
 * lets server_drain wait until every message read has been answered, and
 * publishes committed, before the broker exits; it waits up to a
 * deadline, since a thread that died (broker_fail) never answers its
 * share. The STOP comes on the answers' socket too, as an empty frame,
 * so the thread polls three sockets, not four: every socket polled costs
 * each wake-up two system calls in libzmq.
 *
 * The checks, in order, and what a worker keeps across messages: see
 * worker.c; the request handling is handle_request.c, publishes and
 * revocations handle_write.c, answers and refusals answer.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "notices.h"
#include "server.h"
#include "worker.h"
#include "zap.h"

/* ROUTER frames above this are dropped by libzmq, which also disconnects
 * the peer, unanswered: it never hands them over. Under CURVE the limit
 * applies to the encrypted MESSAGE command, 33 bytes more than the
 * envelope, so the largest envelope delivered is 5 242 847 bytes
 * (PROTOCOL.md 8). Between ONCE_MAX_MESSAGE and that the broker answers
 * TOO_LARGE, so a client that built a record too big for the protocol
 * (the library allows 64 fields of 64 KiB) is told so rather than cut
 * off. A larger limit would not help: libzmq would hold the whole frame
 * first, and each connection may queue ROUTER_QUEUE_PER_CONNECTION. */
#define SERVER_MAX_FRAME (5 * ONCE_MAX_MESSAGE)
/* Jobs queued per worker: small, so a worker busy with a large publish does
 * not sit on requests that idle workers could take. */
#define JOB_QUEUE_PER_WORKER 16
#define ROUTER_LINGER_MS 2000
/* How long server_drain waits for the messages in flight: after a stop,
 * well within systemd's TimeoutStopSec (deploy/onced.service); after a
 * failure, only for what the threads still alive can answer. */
#define DRAIN_DEADLINE_MS 20000
#define DRAIN_AFTER_FAILURE_MS 5000
/* Messages queued per connection before libzmq stops reading it: ample
 * for pipelining, and it bounds what one department can make the broker
 * hold (frames are up to SERVER_MAX_FRAME). */
#define ROUTER_QUEUE_PER_CONNECTION 128
/* Answers and pushes queued for one connection before libzmq reports the
 * connection full (EAGAIN under ZMQ_ROUTER_MANDATORY) and the answer is
 * dropped. libzmq's default, 1000 messages, is below the 1024 envelopes a
 * department may have in flight by default: a client within its limit
 * that read slowly lost answers (e2e-pipeline
 * test_one_connection_full_window). Twice the department's limit, because
 * libzmq's writer learns what the connection's engine took off the queue
 * only every half high-water mark (its low-water mark), so it may count
 * up to half the mark of messages already gone; the margin is for notice
 * pushes. It also bounds what a connection that sends and never reads
 * makes the broker hold (docs/OPERATIONS.md). */
static int router_send_queue(unsigned max_in_flight_per_department)
{
    return 2 * (int)max_in_flight_per_department + 64;
}
/* ZMTP heartbeats on every connection: a PING after this long without
 * traffic, and the connection is dropped when nothing (not even the PONG)
 * came back within HEARTBEAT_TIMEOUT_MS. A peer that vanished without
 * closing (a cable pulled, a host powered off) so gives its descriptor and
 * its place in its department's connection cap back. The TTL asks the
 * client to drop its side too when the broker goes silent. */
#define HEARTBEAT_IVL_MS 10000
#define HEARTBEAT_TIMEOUT_MS 30000
#define HEARTBEAT_TTL_MS 60000
/* A connection that has not finished its CURVE handshake by then is
 * dropped (libzmq's default is 30 s). */
#define HANDSHAKE_IVL_MS 10000

/* ---- start and stop -------------------------------------------------- */

static int set_int(void *sock, int option, int value)
{
    return zmq_setsockopt(sock, option, &value, sizeof(value));
}

static void *make_socket(void *ctx, int type, const char *endpoint, bool bind,
                         int hwm_option, int hwm, once_error *err, int *rc)
{
    void *s = zmq_socket(ctx, type);

    if (s == NULL || set_int(s, ZMQ_LINGER, 0) != 0 ||
        (hwm_option != 0 && set_int(s, hwm_option, hwm) != 0) ||
        (bind ? zmq_bind(s, endpoint) : zmq_connect(s, endpoint)) != 0) {
        *rc = once_error_set(err, ONCE_ERR_IO, "cannot %s %s: %s",
                             bind ? "bind" : "connect", endpoint,
                             zmq_strerror(errno));
        if (s != NULL)
            zmq_close(s);
        return NULL;
    }
    return s;
}

static int open_router(server *srv, const once_keypair *key, void *ctx,
                       char *bound, size_t bound_cap, once_error *err)
{
    char secret[41];
    int64_t max_frame = SERVER_MAX_FRAME;
    size_t len = bound_cap;
    int rc = 0;

    srv->router = zmq_socket(ctx, ZMQ_ROUTER);
    if (srv->router == NULL)
        return once_error_set(err, ONCE_ERR_IO, "cannot create the ROUTER: "
                              "%s", zmq_strerror(errno));
    if (once_curve_secret_z85(secret, key) < 0)
        return once_error_set(err, ONCE_ERR_CRYPTO, "cannot derive the "
                              "broker's CURVE key from its key");
    if (set_int(srv->router, ZMQ_CURVE_SERVER, 1) != 0 ||
        zmq_setsockopt(srv->router, ZMQ_CURVE_SECRETKEY, secret, 40) != 0 ||
        zmq_setsockopt(srv->router, ZMQ_ZAP_DOMAIN, "once", 4) != 0 ||
        set_int(srv->router, ZMQ_ROUTER_MANDATORY, 1) != 0 ||
        zmq_setsockopt(srv->router, ZMQ_MAXMSGSIZE, &max_frame,
                       sizeof(max_frame)) != 0 ||
        set_int(srv->router, ZMQ_RCVHWM, ROUTER_QUEUE_PER_CONNECTION) != 0 ||
        set_int(srv->router, ZMQ_SNDHWM, router_send_queue(
                    srv->cfg->max_in_flight_per_department)) != 0 ||
        set_int(srv->router, ZMQ_LINGER, ROUTER_LINGER_MS) != 0 ||
        set_int(srv->router, ZMQ_HEARTBEAT_IVL, HEARTBEAT_IVL_MS) != 0 ||
        set_int(srv->router, ZMQ_HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS) !=
            0 ||
        set_int(srv->router, ZMQ_HEARTBEAT_TTL, HEARTBEAT_TTL_MS) != 0 ||
        set_int(srv->router, ZMQ_HANDSHAKE_IVL, HANDSHAKE_IVL_MS) != 0 ||
        /* Before the bind, so no connection is missed. */
        zmq_socket_monitor(srv->router, ZAP_ROUTER_MONITOR,
                           ZAP_ROUTER_EVENTS) != 0)
        rc = once_error_set(err, ONCE_ERR_IO, "cannot configure the ROUTER: "
                            "%s", zmq_strerror(errno));
    sodium_memzero(secret, sizeof(secret));
    if (rc < 0)
        return rc;
    if (zmq_bind(srv->router, srv->cfg->listen) != 0)
        return once_error_set(err, ONCE_ERR_IO, "cannot listen on %s: %s",
                              srv->cfg->listen, zmq_strerror(errno));
    if (zmq_getsockopt(srv->router, ZMQ_LAST_ENDPOINT, bound, &len) != 0)
        snprintf(bound, bound_cap, "%s", srv->cfg->listen);
    return 0;
}

static int start_worker(server *srv, worker *w, void *ctx, once_error *err)
{
    int rc = 0;

    w->srv = srv;
    w->jobs = make_socket(ctx, ZMQ_PULL, SERVER_JOBS_ENDPOINT, false,
                          ZMQ_RCVHWM, JOB_QUEUE_PER_WORKER, err, &rc);
    if (w->jobs == NULL)
        return rc;
    w->replies = make_socket(ctx, ZMQ_PUSH, SERVER_REPLIES_ENDPOINT, false, 0,
                             0, err, &rc);
    if (w->replies == NULL)
        return rc;
    w->writes = make_socket(ctx, ZMQ_PUSH, SERVER_WRITES_ENDPOINT, false, 0,
                            0, err, &rc);
    if (w->writes == NULL)
        return rc;
    if ((rc = worker_prepare(w, err)) < 0)
        return rc;
    rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0)
        return once_error_set(err, ONCE_ERR_IO, "cannot start a worker: %s",
                              strerror(rc));
    w->started = true;
    return 0;
}

/* The Response every ping gets: the log's origin and the key that signs
 * its checkpoints (the broker's key), so a client can verify receipts
 * with nothing it was not told over the broker's own channel. */
static int make_ping_answer(server *srv, const uint8_t log_pk[32])
{
    Once__Response r = ONCE__RESPONSE__INIT;
    size_t len;

    r.log_origin = (char *)srv->cfg->log_origin;
    r.log_public_key.data = (uint8_t *)log_pk;
    r.log_public_key.len = ONCE_PUBLIC_KEY_BYTES;
    len = once__response__get_packed_size(&r);
    if (byte_buffer_reserve(&srv->ping_answer, len) < 0)
        return -ONCE_ERR_NO_MEMORY;
    srv->ping_answer.len = once__response__pack(&r, srv->ping_answer.data);
    return 0;
}

int server_start(server **out, const server_options *opt, char *bound,
                 size_t bound_cap, once_error *err)
{
    server *srv;
    unsigned i;
    int rc = 0;

    *out = NULL;
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    *out = srv;
    srv->cfg = opt->cfg;
    srv->db = opt->db;
    srv->subs = opt->subs;
    srv->replay = opt->replay;
    if ((rc = refusal_budget_create(
             &srv->refusals, opt->cfg->max_logged_refusals_per_department,
             opt->cfg->logged_refusals_window_seconds, err)) < 0)
        return rc;
    srv->identity = opt->identity;
    srv->connections = opt->connections;
    pending_init(&srv->pending, opt->cfg->pending_kb * 1024,
                 opt->cfg->department_pending_kb * 1024);
    srv->pending_full_logged_ms = 0;
    srv->skew_ms = (uint64_t)opt->cfg->skew_seconds * 1000u;
    memcpy(srv->audit_key, opt->audit_key, sizeof(srv->audit_key));
    if ((rc = make_ping_answer(srv, opt->broker_key->public_key)) < 0)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    memcpy(&srv->directory_key, opt->broker_key, sizeof(srv->directory_key));
    srv->replies_in = make_socket(opt->zmq_ctx, ZMQ_PULL,
                                  SERVER_REPLIES_ENDPOINT, true, 0, 0, err,
                                  &rc);
    if (srv->replies_in == NULL)
        return rc;
    srv->jobs_out = make_socket(opt->zmq_ctx, ZMQ_PUSH, SERVER_JOBS_ENDPOINT,
                                true, ZMQ_SNDHWM, JOB_QUEUE_PER_WORKER, err,
                                &rc);
    if (srv->jobs_out == NULL)
        return rc;
    srv->notices = make_socket(opt->zmq_ctx, ZMQ_PAIR, NOTICES_IO_ENDPOINT,
                               false, 0, 0, err, &rc);
    if (srv->notices == NULL)
        return rc;
    srv->control_main = make_socket(opt->zmq_ctx, ZMQ_PUSH,
                                    SERVER_REPLIES_ENDPOINT, false, 0, 0, err,
                                    &rc);
    if (srv->control_main == NULL)
        return rc;
    /* Bound before any thread starts, so a busy port fails start-up
     * cleanly. Messages that arrive meanwhile wait in the socket. */
    if ((rc = open_router(srv, opt->broker_key, opt->zmq_ctx, bound,
                          bound_cap, err)) < 0)
        return rc;
    srv->workers = calloc(opt->cfg->workers, sizeof(worker));
    if (srv->workers == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    for (i = 0; i < opt->cfg->workers; i++) {
        srv->workers[i].index = i;
        srv->worker_count = i + 1;
        if ((rc = start_worker(srv, &srv->workers[i], opt->zmq_ctx, err)) < 0)
            return rc;
    }
    rc = pthread_create(&srv->io_thread, NULL, io_main, srv);
    if (rc != 0)
        return once_error_set(err, ONCE_ERR_IO, "cannot start the I/O "
                              "thread: %s", strerror(rc));
    srv->io_started = true;
    return 0;
}

int server_drain(server *srv)
{
    unsigned ms = broker_failed() ? DRAIN_AFTER_FAILURE_MS : DRAIN_DEADLINE_MS;
    struct timespec deadline;
    int rc = 0;

    if (srv == NULL || !srv->io_started)
        return 0;
    if (zmq_send(srv->control_main, "", 0, 0) < 0) /* STOP */
        diag_error("server", "cannot ask the I/O thread to stop: %s",
                  zmq_strerror(errno));
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    if (pthread_timedjoin_np(srv->io_thread, NULL, &deadline) != 0) {
        /* A thread that died leaves its jobs unanswered for good. A second
         * message makes the I/O thread stop waiting for them; their
         * clients get no answer and retry, and nothing was acknowledged
         * that is not durable. */
        diag_error("server", "the messages in flight were not all answered "
                  "within %u ms", ms);
        if (zmq_send(srv->control_main, "", 0, 0) < 0)
            diag_error("server", "cannot ask the I/O thread to stop: %s",
                      zmq_strerror(errno));
        pthread_join(srv->io_thread, NULL);
        rc = -1;
    }
    srv->io_started = false;
    return rc;
}

static void close_socket(void **sock)
{
    if (*sock != NULL) {
        zmq_close(*sock);
        *sock = NULL;
    }
}

void server_free(server *srv)
{
    unsigned i;

    if (srv == NULL)
        return;
    server_drain(srv);
    for (i = 0; i < srv->worker_count; i++) {
        worker *w = &srv->workers[i];

        if (w->started)
            pthread_join(w->thread, NULL);
        close_socket(&w->jobs);
        close_socket(&w->replies);
        close_socket(&w->writes);
        worker_release(w);
    }
    free(srv->workers);
    close_socket(&srv->router);
    close_socket(&srv->jobs_out);
    close_socket(&srv->replies_in);
    close_socket(&srv->notices);
    close_socket(&srv->control_main);
    pending_free(&srv->pending);
    refusal_budget_free(srv->refusals);
    byte_buffer_free(&srv->io_answer);
    sodium_memzero(srv->audit_key, sizeof(srv->audit_key));
    byte_buffer_free(&srv->ping_answer);
    once_keypair_wipe(&srv->directory_key);
    free(srv);
}
