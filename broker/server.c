/*
 * server.c - onced's I/O thread and its pool of workers.
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
 * same answer (replay.c).
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
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "metrics.h"
#include "notices.h"
#include "server.h"
#include "worker.h"
#include "wire_schema.h"
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
/* Messages moved per wake-up in each direction before looking at the
 * other; keeps answers flowing while requests pour in. */
#define IO_BATCH 64
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
/* At most one log line per department this often about refusals over its
 * share of memory, and one about the broker's whole budget. */
#define QUOTA_LOG_INTERVAL_MS 10000

/* ---- the server ------------------------------------------------------- */

/* ---- the I/O thread -------------------------------------------------- */

/* The one job the I/O thread holds while every worker queue is full. */
typedef struct held_job {
    zmq_msg_t parts[3];
    bool full;
} held_job;

/* What the I/O thread knows between wake-ups. A socket is drained when
 * the last thing done on it was a receive that found nothing: libzmq then
 * signals the socket's descriptor (ZMQ_FD) when a message comes, so the
 * thread may sleep in one poll(2) on the three descriptors. zmq_poll asks
 * every socket again before it sleeps and after it wakes, two system
 * calls a socket each time (on a virtual machine each a trip through the
 * hypervisor), which at a few thousand requests a second was most of the
 * thread's CPU. A send on a socket may take in libzmq's notice of a
 * message come meanwhile without receiving it, and then the descriptor
 * stays quiet: so a send on the ROUTER clears its flag, and a socket not
 * drained is tried before the thread sleeps. */
typedef struct io_loop {
    uint64_t received;
    uint64_t answered;
    uint64_t dropped;
    bool term;                /* the context is ending */
    bool answers_drained;     /* replies_in */
    bool notices_drained;
    bool router_drained;
    int fd[3];                /* ZMQ_FD of replies_in, notices, router */
} io_loop;

/* The seq a refusal of payload answers without decoding it: as for every
 * refusal (PROTOCOL.md 3.1), the seq when the frame is an envelope in the
 * sense of check 3, else 0. Neither step allocates. */
static uint64_t refused_seq(const zmq_msg_t *payload)
{
    const uint8_t *bytes = zmq_msg_data((zmq_msg_t *)payload);
    size_t len = zmq_msg_size((zmq_msg_t *)payload);
    uint64_t seq;
    once_error err;
    int rc = wire_check(bytes, len, &wire_envelope, &err);

    if ((rc == 0 || rc == -ONCE_ERR_INVALID_TEXT) &&
        envelope_peek_seq(bytes, len, &seq) == 0)
        return seq;
    return 0;
}

/* Refuses a message of department d that would take it over its share
 * of unanswered bytes, answering its seq, and frees it at once. */
static void refuse_over_share(server *srv, zmq_msg_t *rid, zmq_msg_t *payload,
                              pending_dept *d, uint64_t received_ns)
{
    char message[ONCE_ERROR_MESSAGE_MAX];
    uint64_t seq = refused_seq(payload), now = monotonic_ms();
    zmq_msg_t reply;

    snprintf(message, sizeof(message), "department %s has %zu bytes of "
             "messages waiting for answers; this one (%zu bytes) would "
             "take it over its share of %zu", d->id, d->bytes,
             zmq_msg_size(payload), srv->pending.dept_limit);
    d->refused++;
    if (now - d->last_log_ms >= QUOTA_LOG_INTERVAL_MS || d->refused == 1) {
        diag_info("server", "refused %llu message%s of department %s with "
                 "QUOTA_EXCEEDED: over its share of unanswered bytes "
                 "(department_pending_kb = %zu)",
                 (unsigned long long)d->refused, d->refused == 1 ? "" : "s",
                 d->id, srv->pending.dept_limit / 1024);
        d->refused = 0;
        d->last_log_ms = now;
    }
    if (error_body(&srv->io_answer, ONCE_ERR_QUOTA_EXCEEDED, message) < 0 ||
        reply_message(srv->identity, ONCE__KIND__KIND_ERROR, seq,
                      srv->io_answer.data, srv->io_answer.len, &reply) < 0) {
        diag_error("server", "out of memory for a refusal");
        return;
    }
    metrics_unlogged(UNLOGGED_PENDING_SHARE);
    if (zmq_msg_send(rid, srv->router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_msg_send(&reply, srv->router, ZMQ_DONTWAIT) < 0)
        zmq_msg_close(&reply);
    else
        metrics_answered(received_ns);
}

/* Reads one message off the ROUTER into held. Returns 1 when held is
 * full, 0 when nothing is waiting, 2 when a message was dropped or
 * refused. */
static int read_message(server *srv, held_job *held, io_loop *io)
{
    zmq_msg_t *rid = &held->parts[0], *meta = &held->parts[1];
    zmq_msg_t *payload = &held->parts[2], extra;
    const char *user_id;
    pending_dept *dept;
    uint8_t flags = 0, *frame;
    uint64_t received_ns;
    size_t id_len;
    int rc;

    zmq_msg_init(rid);
    if (zmq_msg_recv(rid, srv->router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(rid);
        io->router_drained = errno == EAGAIN;
        io->term |= errno == ETERM;
        if (errno != EAGAIN && errno != EINTR && errno != ETERM) {
            diag_error("server", "cannot receive: %s", zmq_strerror(errno));
            broker_fail();
        }
        return 0;
    }
    /* The start of the request latency (metrics.c). */
    received_ns = monotonic_ns();
    zmq_msg_init(payload);
    if (!zmq_msg_more(rid) || zmq_msg_recv(payload, srv->router, 0) < 0) {
        zmq_msg_close(rid);
        zmq_msg_close(payload);
        return 2;
    }
    if (zmq_msg_more(payload)) {
        bool more;

        /* PROTOCOL.md: one frame per message. The rest is read and
         * dropped; the worker answers MALFORMED. */
        flags |= JOB_MULTIPART;
        do {
            zmq_msg_init(&extra);
            if (zmq_msg_recv(&extra, srv->router, 0) < 0) {
                zmq_msg_close(&extra);
                break;
            }
            more = zmq_msg_more(&extra);
            zmq_msg_close(&extra);
        } while (more);
    }
    io->received++;
    /* ZAP admitted the connection and named its department. A message
     * without one would mean the handler was bypassed: never serve it. */
    user_id = zmq_msg_gets(payload, "User-Id");
    id_len = user_id != NULL ? strlen(user_id) : 0;
    if (id_len == 0 || id_len > ONCE_MAX_NAME) {
        diag_warn("server", "dropped a message from a connection without an "
                 "admitted department");
        zmq_msg_close(rid);
        zmq_msg_close(payload);
        io->dropped++;
        return 2;
    }
    /* Whose connection this is, for the connection cap (conn_limit.c). */
    conn_limit_seen(srv->connections, zmq_msg_get(payload, ZMQ_SRCFD),
                    user_id);
    rc = pending_charge(&srv->pending, user_id, zmq_msg_size(payload), rid,
                        &dept);
    if (rc < 0) {
        if (rc == -ONCE_ERR_QUOTA_EXCEEDED)
            refuse_over_share(srv, rid, payload, dept, received_ns);
        else
            diag_error("server", "out of memory; dropped a message");
        zmq_msg_close(rid);
        zmq_msg_close(payload);
        io->dropped++;
        return 2;
    }
    if (zmq_msg_init_size(meta, JOB_ID_OFFSET + id_len) != 0) {
        diag_error("server", "out of memory; dropped a message");
        pending_release(&srv->pending, rid);
        zmq_msg_close(rid);
        zmq_msg_close(payload);
        io->dropped++;
        return 2;
    }
    frame = zmq_msg_data(meta);
    frame[0] = flags;
    memcpy(frame + JOB_STAMP_OFFSET, &received_ns, sizeof(received_ns));
    memcpy(frame + JOB_ID_OFFSET, user_id, id_len);
    held->full = true;
    return 1;
}

/* Passes the held job to a worker: 0, or -1 when every queue is full. */
static int dispatch(server *srv, held_job *held)
{
    if (zmq_msg_send(&held->parts[0], srv->jobs_out,
                     ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        if (errno != EAGAIN) {
            diag_error("server", "cannot pass a job to the workers: %s",
                      zmq_strerror(errno));
            broker_fail();
        }
        return -1;
    }
    /* The rest of a multipart message is queued with its first part. */
    zmq_msg_send(&held->parts[1], srv->jobs_out, ZMQ_SNDMORE);
    zmq_msg_send(&held->parts[2], srv->jobs_out, 0);
    zmq_msg_close(&held->parts[0]);
    zmq_msg_close(&held->parts[1]);
    zmq_msg_close(&held->parts[2]);
    held->full = false;
    return 0;
}

/* Sends one answer out on the ROUTER; takes rid and reply. */
static void send_answer(server *srv, zmq_msg_t *rid, zmq_msg_t *reply,
                        io_loop *io)
{
    io->router_drained = false;
    if (zmq_msg_send(rid, srv->router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        if (errno == EHOSTUNREACH)
            diag_info("server", "a department disconnected before its "
                     "answer was sent; a retry gets the same answer");
        else
            diag_warn("server", "dropped an answer: the department's "
                     "connection is not reading (%s)", zmq_strerror(errno));
        io->dropped++;
        zmq_msg_close(rid);
        zmq_msg_close(reply);
        return;
    }
    zmq_msg_send(reply, srv->router, ZMQ_DONTWAIT);
    zmq_msg_close(rid);
    zmq_msg_close(reply);
    io->answered++;
}

/* Moves up to IO_BATCH messages of answers to the ROUTER. A message is
 * [routing id] (a token: nothing to send), [routing id][reply] (a
 * worker's answer), or the writer's answers of a group, pairs of
 * [routing id][reply] in one message with an empty reply for a token
 * (reply.c); an empty frame alone is server_drain's STOP, which sets
 * *stop. Returns how many jobs the answers complete. */
static uint64_t forward_answers(server *srv, io_loop *io, bool *stop)
{
    uint64_t done = 0;
    zmq_msg_t rid, reply;
    bool more;
    int i;

    for (i = 0; i < IO_BATCH; i++) {
        zmq_msg_init(&rid);
        if (zmq_msg_recv(&rid, srv->replies_in, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&rid);
            io->answers_drained = errno == EAGAIN;
            io->term |= errno == ETERM;
            return done;
        }
        if (zmq_msg_size(&rid) == 0 && !zmq_msg_more(&rid)) {
            zmq_msg_close(&rid);
            *stop = true;
            continue;
        }
        for (;;) { /* each [routing id][reply] of the message */
            done++;
            more = zmq_msg_more(&rid);
            if (pending_release(&srv->pending, &rid) < 0)
                diag_error("server", "an answer came back without its "
                          "charge; its bytes stay counted");
            if (!more) { /* a job with nothing to send */
                zmq_msg_close(&rid);
                break;
            }
            zmq_msg_init(&reply);
            if (zmq_msg_recv(&reply, srv->replies_in, 0) < 0) {
                zmq_msg_close(&reply);
                zmq_msg_close(&rid);
                break;
            }
            more = zmq_msg_more(&reply);
            if (zmq_msg_size(&reply) > 0) {
                send_answer(srv, &rid, &reply, io);
            } else { /* a token within a group */
                zmq_msg_close(&rid);
                zmq_msg_close(&reply);
            }
            if (!more)
                break;
            zmq_msg_init(&rid);
            if (zmq_msg_recv(&rid, srv->replies_in, 0) < 0) {
                zmq_msg_close(&rid);
                break;
            }
        }
    }
    io->answers_drained = false; /* IO_BATCH: there may be more */
    return done;
}

/* Sends the notices the fan-out pushes (notices.c) out on the ROUTER,
 * never blocking. A push that cannot go out (the connection is gone, or
 * its queue is full because it does not read) is dropped, and its
 * routing id goes back to the fan-out, which forgets the connection: the
 * subscriber resumes from its cursor when it registers again. Pushes are
 * no jobs: they carry no charge and no part in the drain's count. */
static void forward_notices(server *srv, io_loop *io)
{
    int i;

    for (i = 0; i < IO_BATCH; i++) {
        zmq_msg_t rid, push;

        zmq_msg_init(&rid);
        if (zmq_msg_recv(&rid, srv->notices, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&rid);
            io->notices_drained = errno == EAGAIN;
            io->term |= errno == ETERM;
            return;
        }
        zmq_msg_init(&push);
        if (!zmq_msg_more(&rid) ||
            zmq_msg_recv(&push, srv->notices, 0) < 0) {
            zmq_msg_close(&push);
            zmq_msg_close(&rid);
            continue;
        }
        io->router_drained = false;
        if (zmq_send(srv->router, zmq_msg_data(&rid), zmq_msg_size(&rid),
                     ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_msg_send(&push, srv->router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&push);
            zmq_msg_send(&rid, srv->notices, ZMQ_DONTWAIT);
        }
        zmq_msg_close(&rid);
    }
    io->notices_drained = false; /* IO_BATCH: there may be more */
}

/* True when the messages read and not answered reached pending_kb: then
 * nothing more is read until answers free bytes. Says so in the log, at
 * most every QUOTA_LOG_INTERVAL_MS. */
static bool io_budget_reached(server *srv)
{
    uint64_t now;

    if (!pending_full(&srv->pending))
        return false;
    now = monotonic_ms();
    if (now - srv->pending_full_logged_ms >= QUOTA_LOG_INTERVAL_MS) {
        diag_warn("server", "%zu bytes of messages wait for answers, the most "
                 "allowed (pending_kb = %zu): reading no more until answers "
                 "go out", srv->pending.total, srv->pending.limit / 1024);
        srv->pending_full_logged_ms = now;
    }
    return true;
}

/* Waits until something is to be done, and says what in ready: answers
 * (or the STOP), notices, and the ROUTER to read or, with a job held, the
 * workers' queue to take it. When the thread reads the ROUTER and every
 * socket is drained (io_loop), that is one poll(2) on their descriptors;
 * a socket not drained is tried without waiting; while the thread does
 * not read the ROUTER (a job held, the budget reached, stopping), which
 * is rare, zmq_poll as before. Returns 0, 1 to wait again (a signal), or
 * -1 when the thread is to end. */
static int io_wait(server *srv, io_loop *io, const held_job *held,
                   bool reading, bool ready[3])
{
    zmq_pollitem_t items[3];
    int n = 0, rc, i;

    if (reading && io->answers_drained && io->notices_drained &&
        io->router_drained) {
        struct pollfd fds[3];

        for (i = 0; i < 3; i++)
            fds[i] = (struct pollfd){ io->fd[i], POLLIN, 0 };
        rc = poll(fds, 3, -1);
        if (rc < 0 && errno == EINTR)
            return 1;
        if (rc < 0) {
            diag_error("server", "poll failed: %s", strerror(errno));
            broker_fail();
            return -1;
        }
        for (i = 0; i < 3; i++)
            ready[i] = fds[i].revents != 0;
        return 0;
    }
    if (reading) {
        ready[0] = !io->answers_drained;
        ready[1] = !io->notices_drained;
        ready[2] = !io->router_drained;
        return 0;
    }
    items[n++] = (zmq_pollitem_t){ srv->replies_in, 0, ZMQ_POLLIN, 0 };
    items[n++] = (zmq_pollitem_t){ srv->notices, 0, ZMQ_POLLIN, 0 };
    if (held->full)
        items[n++] = (zmq_pollitem_t){ srv->jobs_out, 0, ZMQ_POLLOUT, 0 };
    rc = zmq_poll(items, n, -1);
    if (rc < 0 && errno == EINTR)
        return 1;
    if (rc < 0) {
        if (errno == ETERM) /* start-up failed after this started */
            return -1;
        diag_error("server", "poll failed: %s", zmq_strerror(errno));
        broker_fail();
        return -1;
    }
    /* What zmq_poll took in is received below, or tried again. */
    io->answers_drained = io->notices_drained = io->router_drained = false;
    for (i = 0; i < 3; i++)
        ready[i] = i < n && items[i].revents != 0;
    return 0;
}

static void *io_main(void *arg)
{
    server *srv = arg;
    held_job held = { .full = false };
    io_loop io = { .received = 0 };
    uint64_t in_flight = 0, done, dispatched;
    bool stopping = false;
    void *sockets[3] = { srv->replies_in, srv->notices, srv->router };
    size_t size;
    int i, rc;

    pthread_setname_np(pthread_self(), "onced-io"); /* for top -H, perf */
    for (i = 0; i < 3; i++) {
        size = sizeof(io.fd[i]);
        if (zmq_getsockopt(sockets[i], ZMQ_FD, &io.fd[i], &size) != 0) {
            diag_error("server", "cannot get a socket's descriptor: %s",
                      zmq_strerror(errno));
            broker_fail();
            stopping = true; /* answers what is in flight: nothing */
        }
    }
    for (;;) {
        bool stop = false, ready[3], reading;

        if (stopping && !held.full && in_flight == 0)
            break;
        reading = !held.full && !stopping && !io_budget_reached(srv);
        rc = io_wait(srv, &io, &held, reading, ready);
        if (rc > 0)
            continue;
        if (rc < 0)
            break;
        if (ready[0]) {
            done = forward_answers(srv, &io, &stop);
            in_flight -= done;
            metrics_forwarded(done);
        }
        if (stop && stopping) { /* the drain's deadline passed */
            diag_error("server", "gave up on %llu messages in flight",
                      (unsigned long long)(in_flight + held.full));
            break;
        }
        if (stop) {
            stopping = true;
            diag_info("server", "no longer reading new messages; %llu in "
                     "flight", (unsigned long long)(in_flight + held.full));
        }
        if (ready[1])
            forward_notices(srv, &io);
        if (io.term)
            break;
        if (!ready[2] || (!held.full && !reading))
            continue;
        dispatched = 0;
        if (held.full && dispatch(srv, &held) == 0)
            dispatched++;
        for (i = 0; i < IO_BATCH && !held.full && !stopping &&
                    !pending_full(&srv->pending);
             i++) {
            /* Cleared unless the ROUTER is read until nothing is left. */
            io.router_drained = false;
            rc = read_message(srv, &held, &io);
            if (rc == 0)
                break;
            if (rc == 1 && dispatch(srv, &held) == 0)
                dispatched++;
        }
        in_flight += dispatched;
        metrics_dispatched(dispatched);
        if (io.term)
            break;
    }
    if (held.full) {
        zmq_msg_close(&held.parts[0]);
        zmq_msg_close(&held.parts[1]);
        zmq_msg_close(&held.parts[2]);
    }
    /* Linger lets the last answers reach the network. */
    zmq_close(srv->router);
    srv->router = NULL;
    diag_info("server", "stopped: %llu messages received, %llu answers sent, "
             "%llu dropped", (unsigned long long)io.received,
             (unsigned long long)io.answered,
             (unsigned long long)io.dropped);
    return NULL;
}

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
