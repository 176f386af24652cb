/*
 * reply.c - the making and sending of answers, shared by the workers
 * (worker.c, handle_request.c, handle_write.c) and the writer (writer.c),
 * so that the writer needs nothing of the server and the arrows between
 * the broker's files run one way.
 *
 * An answer is an envelope from the broker's identity (a name, a random
 * session per run and a counter, PROTOCOL.md 2.2) of kind RESPONSE or
 * ERROR, whose reply_to is the seq it answers. It goes to the I/O thread
 * over the inproc PUSH socket each thread keeps, as [routing id][reply];
 * a job with nothing to send goes back as its routing id alone (a token),
 * which still accounts for it (pending.c). The writer sends a group's
 * answers as one message of such pairs (send_reply_part), a token there
 * an empty reply frame: one wake-up of the I/O thread a group, not one an
 * answer. Each one handed back is
 * counted for the depth of the answer queue (metrics.c). Error bodies
 * carry only wire codes: libonce's local codes (from 100) go out as
 * INTERNAL.
 *
 * broker_fail is for failures no single message caused (a socket that
 * stopped working): it marks the run as failed and asks the main thread
 * to stop, which then drains what the threads still alive can answer.
 */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"
#include "faults.h"
#include "metrics.h"
#include "reply.h"

static _Atomic int run_failed;

void broker_fail(void)
{
    atomic_store(&run_failed, 1);
    kill(getpid(), SIGUSR1);
}

bool broker_failed(void)
{
    return atomic_load(&run_failed) != 0;
}

int error_body(byte_buffer *b, int code, const char *message)
{
    Once__Error e = ONCE__ERROR__INIT;
    size_t len;

    if (code < 0)
        code = -code;
    if (code < ONCE_ERR_MALFORMED || code >= ONCE_ERR_INVALID_ARGUMENT)
        code = ONCE_ERR_INTERNAL;
    e.code = (Once__ErrorCode)code;
    e.message = (char *)message;
    len = once__error__get_packed_size(&e);
    if (byte_buffer_reserve(b, len) < 0)
        return -1;
    b->len = once__error__pack(&e, b->data);
    return 0;
}

bool error_is_failure(int code)
{
    if (code < 0)
        code = -code;
    return code == ONCE_ERR_INTERNAL || code == ONCE_ERR_STORAGE_FULL ||
           code == ONCE_ERR_UNAVAILABLE || code >= ONCE_ERR_INVALID_ARGUMENT;
}

int reply_message(broker_identity *id, int kind, uint64_t reply_to,
                  const uint8_t *body, size_t len, zmq_msg_t *msg)
{
    Once__Envelope e = ONCE__ENVELOPE__INIT;
    size_t size;

    e.version = ENVELOPE_VERSION;
    e.sender = id->name;
    e.session = id->session;
    e.seq = atomic_fetch_add(&id->next_seq, 1);
    e.sent_at = once_now_ms();
    e.kind = (Once__Kind)kind;
    e.reply_to = reply_to;
    e.body.data = (uint8_t *)body;
    e.body.len = len;
    size = once__envelope__get_packed_size(&e);
    if (zmq_msg_init_size(msg, size) != 0)
        return -1;
    once__envelope__pack(&e, zmq_msg_data(msg));
    return 0;
}

/* Passes one frame, again when a signal interrupted the send: the
 * inproc PUSH blocks while the I/O thread's queue is full, and SIGTERM,
 * SIGHUP or SIGUSR1 arriving then must not lose the answer, which the
 * client would only get again by a retry after its timeout, and which the
 * I/O thread would go on counting as pending (pending.c). */
static int send_frame(void *sock, zmq_msg_t *frame, int flags)
{
    for (;;) {
        if (fault_take(FAULT_REPLY_INTERRUPTED)) {
            errno = EINTR;
        } else if (zmq_msg_send(frame, sock, flags) >= 0) {
            return 0;
        }
        if (errno != EINTR)
            return -1;
    }
}

int send_reply_part(void *sock, zmq_msg_t *routing_id, zmq_msg_t *reply,
                    bool more)
{
    zmq_msg_t none;

    if (reply == NULL) {
        zmq_msg_init(&none);
        reply = &none;
    }
    if (send_frame(sock, routing_id, ZMQ_SNDMORE) < 0) {
        zmq_msg_close(reply);
        return -1;
    }
    if (send_frame(sock, reply, more ? ZMQ_SNDMORE : 0) < 0) {
        zmq_msg_close(reply);
        return -1;
    }
    metrics_handed_back();
    return 0;
}

int send_reply(void *sock, zmq_msg_t *routing_id, zmq_msg_t *reply)
{
    return send_reply_part(sock, routing_id, reply, false);
}

int send_token(void *sock, zmq_msg_t *routing_id)
{
    if (send_frame(sock, routing_id, 0) < 0) {
        zmq_msg_close(routing_id);
        return -1;
    }
    metrics_handed_back();
    return 0;
}
