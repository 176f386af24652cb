/*
 * io.c - onced's I/O thread: reads the ROUTER, charges each message to
 * its department and hands it to the workers, and sends their answers,
 * the writer's and the notices' fan-out's out on the ROUTER. server.c
 * says what the thread does and why (threads, limits, metrics, the
 * accounting server_drain relies on); this file is how.
 *
 * Waiting. The thread waits on three sockets: the answers (and
 * server_drain's STOP), the notices' pushes, and the ROUTER (or, with a
 * job held because every worker's queue is full, the workers' queue).
 * When it reads the ROUTER and every socket is drained (io_loop below),
 * it sleeps in one poll(2) on their descriptors rather than in zmq_poll:
 * at a few thousand requests a second, when it sleeps between most
 * messages, zmq_poll's questions to every socket were most of its system
 * calls (docs/PERFORMANCE.md, "Fewer wake-ups").
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "server.h"
#include "worker.h"
#include "wire_schema.h"

/* Messages moved per wake-up in each direction before looking at the
 * other; keeps answers flowing while requests pour in. */
#define IO_BATCH 64
/* At most one log line per department this often about refusals over its
 * share of memory, and one about the broker's whole budget. */
#define QUOTA_LOG_INTERVAL_MS 10000

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
 * hypervisor), which at a thousand requests a second was half the
 * thread's system calls (docs/PERFORMANCE.md). A send on a socket may take in libzmq's notice of a
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

void *io_main(void *arg)
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

