/*
 * reply.h - what the workers and the writer share to answer departments:
 * the inproc endpoints between onced's threads, the broker's reply
 * identity, Error bodies, reply envelopes and
 * their hand-off to the I/O thread, and the run's failure flag. See
 * reply.c.
 */
#ifndef ONCE_REPLY_H
#define ONCE_REPLY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "byte_buffer.h"
#include "once/once.h"

/* Replies from the workers and the writer to the I/O thread. */
#define SERVER_REPLIES_ENDPOINT "inproc://onced-replies"
/* Jobs from the I/O thread to the workers. */
#define SERVER_JOBS_ENDPOINT "inproc://onced-jobs"
/* Exchanges to log (and publishes and revocations to store) from the
 * workers to the writer. */
#define SERVER_WRITES_ENDPOINT "inproc://onced-writes"

/* Who the broker's replies come from: its name, a random session per run
 * and a counter, as PROTOCOL.md 2.2 describes. */
typedef struct broker_identity {
    char name[ONCE_MAX_NAME + 1];
    uint64_t session;
    _Atomic uint64_t next_seq;
} broker_identity;

/* Encodes an Error{code, message} into b. Codes that are not wire codes
 * (libonce's local ones, from 100) become INTERNAL. */
int error_body(byte_buffer *b, int code, const char *message);

/* True for the codes that say the broker could not act, so nothing was
 * done: INTERNAL, STORAGE_FULL, UNAVAILABLE (and the local codes, which
 * go out as INTERNAL). Such an answer is never kept for a retry of the
 * envelope (replay_release), which may then succeed. */
bool error_is_failure(int code);

/* Builds a reply envelope of kind (KIND_RESPONSE or KIND_ERROR) answering
 * reply_to, with body, into msg (initialised here). */
int reply_message(broker_identity *id, int kind, uint64_t reply_to,
                  const uint8_t *body, size_t len, zmq_msg_t *msg);

/* Sends [routing id][reply] to the I/O thread on sock (a PUSH connected to
 * SERVER_REPLIES_ENDPOINT). Takes routing_id. Returns 0 or -1. */
int send_reply(void *sock, zmq_msg_t *routing_id, zmq_msg_t *reply);

/* Sends [routing id][reply] as one pair of a message of several, which
 * the I/O thread takes with one wake-up (the writer's answers of a group):
 * more says another pair follows; reply NULL sends an empty frame, the
 * token of a job with nothing to send. Takes routing_id and reply. A
 * failure (only when the context ends) leaves the message unfinished.
 * Returns 0 or -1. */
int send_reply_part(void *sock, zmq_msg_t *routing_id, zmq_msg_t *reply,
                    bool more);

/* Sends the routing id frame alone to the I/O thread on sock: the token of
 * a job that has no answer to send, which still accounts for the job and
 * gives back the bytes it was charged (pending.c). Takes routing_id.
 * Returns 0 or -1. */
int send_token(void *sock, zmq_msg_t *routing_id);

/* Marks the run as failed and asks the main thread to stop (SIGUSR1). For
 * failures no single message caused: a socket that stopped working. */
void broker_fail(void);
bool broker_failed(void);

#endif
