/*
 * notices.h - notices to subscribers: what the writer does for them in
 * its transaction and after its commit, the encoding of a NoticeBatch,
 * and the fan-out thread that pushes them. See notices.c.
 */
#ifndef ONCE_NOTICES_H
#define ONCE_NOTICES_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "reply.h"
#include "store.h"
#include "subscriptions.h"
#include "writer.h"

/* The writer's PUSH to the fan-out: committed events and registrations. */
#define NOTICES_IN_ENDPOINT "inproc://onced-notices"
/* The fan-out's PAIR with the I/O thread: [routing id][envelope] to push;
 * back, [routing id] of a connection a push could not reach. */
#define NOTICES_IO_ENDPOINT "inproc://onced-notices-io"

/* The NoticeBatch of dept's notices after `after` (at most max), with
 * acked as its cursor, encoded into out; *count notices in it. */
int notices_batch_encode(MDB_txn *txn, const subscriptions *t,
                         const store *s, const char *dept, uint64_t after,
                         size_t max, uint64_t acked, byte_buffer *out,
                         size_t *count, uint64_t *scanned_to,
                         once_error *err);

/* In the writer's transaction, after job's leaf is appended: the event of
 * a granted publish or revoke, the held record of a granted request, the
 * subscription a subscribe or unsubscribe makes or cancels, the cursor of
 * an acknowledgement. */
int notices_commit_job(MDB_txn *txn, const subscriptions *t, write_job *job,
                       once_error *err);

/* After the commit: tells the fan-out (sock, a PUSH connected to
 * NOTICES_IN_ENDPOINT) about new events and the connections the group's
 * acknowledgements registered. Never blocks. */
void notices_committed(void *sock, write_job *const *group, size_t n);

typedef struct notices notices;

/* Binds the two endpoints and starts the fan-out thread, which ends once
 * the ZeroMQ context is shut down. */
int notices_start(notices **out, void *zmq_ctx, const store *db,
                  const subscriptions *t, broker_identity *id,
                  once_error *err);
void notices_join(notices *n);

#endif
