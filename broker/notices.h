/*
 * notices.h - notices to subscribers: what the writer does for them in
 * its transaction and after its commit, the encoding of a NoticeBatch,
 * and the fan-out thread that pushes them. See notices.c.
 */
#ifndef ONCE_NOTICES_H
#define ONCE_NOTICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "held_buffer.h"
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
 * a granted publish or revoke, the held record of a granted request (only
 * when put_held: otherwise held_buffer.c keeps it after the commit), the
 * subscription a subscribe or unsubscribe makes or cancels, the cursor of
 * an acknowledgement. */
int notices_commit_job(MDB_txn *txn, const subscriptions *t, write_job *job,
                       bool put_held, once_error *err);

/* Before a group: whether it may make a notice event (a publish or
 * revoke to store), and how many copies its granted requests may give. */
bool notices_group_events(write_job *const *group, size_t n);
size_t notices_group_copies(write_job *const *group, size_t n);
/* After the commit of a group whose copies were not put: adds them to b,
 * which had room for notices_group_copies of them. */
int notices_held_collect(held_buffer *b, write_job *const *group, size_t n,
                         uint64_t now_ms, once_error *err);

/* After the commit: tells the fan-out (sock, a PUSH connected to
 * NOTICES_IN_ENDPOINT) about new events and the connections the group's
 * acknowledgements registered. Never blocks. */
void notices_committed(void *sock, write_job *const *group, size_t n);

/* Pruning the events no department can be notified of any more
 * (subscriptions_prune), by the writer, in transactions of their own:
 * at most NOTICES_PRUNE_BATCH events each, one NOTICES_PRUNE_INTERVAL_MS
 * after a group that could have made events prunable, and every
 * NOTICES_PRUNE_AGAIN_MS while a backlog lasts. */
#define NOTICES_PRUNE_BATCH 1000
#define NOTICES_PRUNE_INTERVAL_MS 1000
#define NOTICES_PRUNE_AGAIN_MS 100

typedef struct notices_pruner {
    bool wanted;      /* a step may find events to delete */
    uint64_t due_ms;  /* monotonic time of the next step */
} notices_pruner;

/* Wanted at start, for what the last run left. */
void notices_pruner_init(notices_pruner *p, uint64_t now_ms);
/* After a commit: wanted once a group stored an event, an
 * acknowledgement or a cancellation. */
void notices_prune_note(notices_pruner *p, write_job *const *group, size_t n,
                        uint64_t now_ms);
/* Milliseconds until the next step, 0 when due, -1 when none is wanted. */
long notices_prune_wait(const notices_pruner *p, uint64_t now_ms);
/* One step when due (now_ms UINT64_MAX: when wanted at all, as the
 * writer stops): a transaction of its own, committed only when it deleted
 * something. */
void notices_prune_step(notices_pruner *p, const store *db,
                        const subscriptions *t, uint64_t now_ms);

/* Puts the copies granted since the last flush into `notice_held`, with
 * the mark, in a transaction of its own (held_buffer.c): when due, or,
 * stopping, when anything is left. On failure the next try is a second
 * later; the copies stay in memory meanwhile, and the log has them. */
void notices_held_step(held_buffer *b, const store *db, const auditlog *log,
                       const subscriptions *t, bool stopping);

typedef struct notices notices;

/* Binds the two endpoints and starts the fan-out thread, which ends once
 * the ZeroMQ context is shut down. */
int notices_start(notices **out, void *zmq_ctx, const store *db,
                  const subscriptions *t, broker_identity *id,
                  once_error *err);
void notices_join(notices *n);

#endif
