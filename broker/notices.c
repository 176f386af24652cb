/*
 * notices.c - delivering notices (docs/PROTOCOL.md 4.9): the writer's part
 * in its transaction and after its commit, and the fan-out thread that
 * pushes notices over the departments' connections within their credit.
 *
 * What is durable. Everything a notice is made of commits with the leaf
 * it comes from (subscriptions.c): the event of a publish or revoke, the
 * subscription of a subscribe leaf, the cursor of an acknowledgement. So
 * a kill -9 between a revoke and its delivery loses nothing: the event
 * is in the table, the subscriber's cursor is below it, and the next
 * registration or pull finds it. The one exception is the record a
 * request granted, which the log has anyway: the writer keeps it in
 * memory and puts it into `held` no later than the transaction of the
 * next event (held_buffer.c), and a start puts what a kill -9 lost from
 * the log.
 *
 * Who is pushed to. A connection gets pushes once it has registered: an
 * acknowledgement (KIND_NOTICE_ACK) names the department's cursor and
 * grants the connection a credit, the number of notices the broker may
 * push to it. After the writer committed the acknowledgement it passes
 * (department, routing id, cursor, credit) here. An acknowledgement with
 * credit 0 sets a registered connection's credit to 0 (it keeps its
 * entry) and takes no entry for any other connection, so the pooled
 * connections of a gateway that only acknowledge
 * (once_client_notice_ack_pull) never replace its watcher. Each push
 * spends credit; at zero the broker stops pushing to that connection
 * until it is granted more, and the notices wait in the events table,
 * not in memory. A connection's state is a fixed-size entry (routing id, department, the
 * last leaf pushed, credit), NOTICES_MAX_PER_DEPARTMENT per department and
 * NOTICES_MAX_SUBSCRIBERS in all, the oldest registration replaced when
 * full: a slow or absent subscriber costs one entry and never a queue.
 * Its notices are read from the table when it has credit, so it catches
 * up from the log whenever it comes back.
 *
 * The thread. The fan-out owns one LMDB read transaction, renewed per
 * pass, and no socket the data path uses: it sends [routing id][envelope]
 * to the I/O thread over an inproc PAIR (the I/O thread owns the ROUTER,
 * server.c), never blocking; when that pipe is full it waits and tries
 * again, so a burst of notices queues at most the pipe's high-water mark.
 * The I/O thread sends a routing id back when a push could not go out
 * (the connection is gone or not reading); that entry is dropped, and the
 * subscriber resumes from its cursor once it registers again. Every
 * pass gives each registered connection at most one batch, in turn, so
 * one department's backlog does not hold up another's notices. Nothing
 * here is on the request path: the writer's only cost is a non-blocking
 * send after its commit, dropped when the fan-out is behind (the next
 * pass reads the newest event from the table anyway).
 *
 * At least once. A push that was lost (a broker restart, a dropped
 * connection) is pushed again after the next registration, from the
 * cursor; notices pushed but not acknowledged before a reconnect come
 * again with the same leaf index, which the subscriber uses to skip what
 * it has seen.
 *
 * Pruning. The events nobody can be notified of any more are deleted by
 * the writer (subscriptions_prune), never inside a group's transaction:
 * a step is a transaction of its own, deletes at most
 * NOTICES_PRUNE_BATCH events, and is made NOTICES_PRUNE_INTERVAL_MS after
 * a group that stored an event, an acknowledgement or a cancellation
 * (what can make events prunable), then every NOTICES_PRUNE_AGAIN_MS
 * while a backlog lasts, whether the writer is busy (after a group's
 * answers left) or idle (its poll wakes up for it). A step that finds
 * nothing is aborted, so it costs no fsync; one that deletes costs one,
 * at most ten a second. A stopping writer makes the step it has pending.
 *
 * Subjects in notices are personal data: they travel only inside the
 * department's CURVE connection and never reach a log line here.
 */
#include "notices.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "faults.h"
#include "metrics.h"
#include "monotonic.h"
#include "pending.h"

/* Registered connections, all departments together, and per department
 * (several processes of one department may subscribe). */
#define NOTICES_MAX_SUBSCRIBERS 4096
#define NOTICES_MAX_PER_DEPARTMENT 16
/* A ROUTER routing id is 5 bytes unless a client sets its own (libzmq
 * caps them at 255). */
#define NOTICES_RID_MAX 255
/* Pushes waiting in the pipe to the I/O thread. */
#define NOTICES_PIPE_HWM 1024
/* After the pipe was full, or a database error, wait this long. */
#define NOTICES_BACKOFF_MS 10

#define MSG_EVENT 'E'
#define MSG_REGISTER 'R'

/* ---- the NoticeBatch ---------------------------------------------------- */

typedef struct collected {
    Once__Notice items[NOTICES_MAX_PER_BATCH];
    Once__Notice *ptrs[NOTICES_MAX_PER_BATCH];
    char types[NOTICES_MAX_PER_BATCH][ONCE_MAX_NAME + 1];
    char subjects[NOTICES_MAX_PER_BATCH][ONCE_MAX_SUBJECT + 1];
    size_t n;
} collected;

static int collect(const notice *n, void *arg)
{
    collected *c = arg;
    Once__Notice *m = &c->items[c->n];

    if (c->n >= NOTICES_MAX_PER_BATCH)
        return 1;
    once__notice__init(m);
    snprintf(c->types[c->n], sizeof(c->types[0]), "%s", n->type);
    snprintf(c->subjects[c->n], sizeof(c->subjects[0]), "%s", n->subject);
    m->leaf_index = n->leaf_index;
    m->type = c->types[c->n];
    m->subject = c->subjects[c->n];
    m->version = n->version;
    m->event = (Once__NoticeEvent)n->event;
    c->ptrs[c->n] = m;
    c->n++;
    return 0;
}

int notices_batch_encode(MDB_txn *txn, const subscriptions *t,
                         const store *s, const char *dept, uint64_t after,
                         size_t max, uint64_t acked, byte_buffer *out,
                         size_t *count, uint64_t *scanned_to,
                         once_error *err)
{
    Once__NoticeBatch b = ONCE__NOTICE_BATCH__INIT;
    collected *c = malloc(sizeof(*c));
    size_t len;
    int rc;

    *count = 0;
    if (c == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    c->n = 0;
    if (max == 0 || max > NOTICES_MAX_PER_BATCH)
        max = NOTICES_MAX_PER_BATCH;
    rc = subscriptions_scan(txn, t, s, dept, after, max, NOTICES_MAX_SCANNED,
                            collect, c, scanned_to, err);
    if (rc >= 0) {
        b.notices = c->ptrs;
        b.n_notices = c->n;
        b.scanned_to = *scanned_to;
        b.acked = acked;
        len = once__notice_batch__get_packed_size(&b);
        if (byte_buffer_reserve(out, len) < 0) {
            rc = once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
        } else {
            out->len = once__notice_batch__pack(&b, out->data);
            *count = c->n;
        }
    }
    free(c);
    return rc < 0 ? rc : 0;
}

/* ---- the writer's part ------------------------------------------------- */

/* A job the writer will commit with a granted answer and a subject. */
static bool granted(const write_job *job)
{
    return job->result == 0 && job->answer_kind != ONCE__KIND__KIND_ERROR &&
           job->leaf.has_subject_hash;
}

/* A job whose committed leaf makes an event, or gives a copy. */
static bool makes_event(const write_job *job)
{
    return granted(job) && job->stored_len > 0 &&
           (job->leaf.kind == ONCE__KIND__KIND_PUBLISH ||
            job->leaf.kind == ONCE__KIND__KIND_REVOKE);
}

static bool gives_copy(const write_job *job)
{
    return granted(job) && job->leaf.kind == ONCE__KIND__KIND_REQUEST;
}

bool notices_group_events(write_job *const *group, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (makes_event(group[i]))
            return true;
    return false;
}

size_t notices_group_copies(write_job *const *group, size_t n)
{
    size_t i, copies = 0;

    for (i = 0; i < n; i++)
        copies += gives_copy(group[i]);
    return copies;
}

int notices_held_collect(held_buffer *b, write_job *const *group, size_t n,
                         uint64_t now_ms, once_error *err)
{
    size_t i;
    int rc;

    for (i = 0; i < n; i++) {
        const write_job *job = group[i];

        if (gives_copy(job) &&
            (rc = held_buffer_add(b, job->leaf.record_type,
                                  job->leaf.subject_hash, job->sender,
                                  now_ms, err)) < 0)
            return rc;
    }
    return 0;
}

int notices_commit_job(MDB_txn *txn, const subscriptions *t, write_job *job,
                       bool put_held, once_error *err)
{
    const leaf_facts *f = &job->leaf;
    int rc;

    if (job->answer_kind == ONCE__KIND__KIND_ERROR || job->result < 0)
        return 0;
    switch (f->kind) {
    case ONCE__KIND__KIND_PUBLISH:
    case ONCE__KIND__KIND_REVOKE:
        if (job->stored_len == 0 || !f->has_subject_hash)
            return 0;
        return subscriptions_event_put(txn, t, job->leaf_index,
                                       f->subject_hash, f->record_type,
                                       job->subject, f->record_version,
                                       f->kind == ONCE__KIND__KIND_REVOKE,
                                       err);
    case ONCE__KIND__KIND_REQUEST:
        if (!put_held || !f->has_subject_hash)
            return 0;
        return subscriptions_held_put(txn, t, f->record_type,
                                      f->subject_hash, job->sender, err);
    case ONCE__KIND__KIND_SUBSCRIBE:
        return subscriptions_put(txn, t, job->sender, job->scope,
                                 f->record_type, job->subject,
                                 job->leaf_index, f->time, err);
    case ONCE__KIND__KIND_UNSUBSCRIBE:
        /* Checked by the worker; one cancelled meanwhile is as good. */
        rc = subscriptions_del(txn, t, job->sender, job->scope,
                               f->record_type, job->subject, err);
        return rc == -ONCE_ERR_NOT_FOUND ? 0 : rc;
    case ONCE__KIND__KIND_NOTICE_ACK:
        if ((rc = subscriptions_cursor_put(txn, t, job->sender, job->acked,
                                           err)) < 0)
            return rc;
        return subscriptions_cursor_get(txn, t, job->sender, &job->acked,
                                        err);
    default:
        return 0;
    }
}

void notices_committed(void *sock, write_job *const *group, size_t n)
{
    uint8_t msg[1 + 8 + 4 + 1 + ONCE_MAX_NAME + NOTICES_RID_MAX];
    uint64_t last = 0, events = 0, acks = 0;
    bool any = false;
    size_t i;

    for (i = 0; i < n; i++) {
        write_job *job = group[i];
        size_t dl, rl;

        if (job->result < 0 || job->reply_kind == ONCE__KIND__KIND_ERROR)
            continue;
        if ((job->leaf.kind == ONCE__KIND__KIND_PUBLISH ||
             job->leaf.kind == ONCE__KIND__KIND_REVOKE) &&
            job->stored_len > 0) {
            last = job->leaf_index;
            any = true;
            events += job->leaf.has_subject_hash;
        }
        if (job->leaf.kind != ONCE__KIND__KIND_NOTICE_ACK)
            continue;
        acks++;
        dl = strlen(job->sender);
        /* The frame carries its charge after the routing id (pending.c). */
        rl = pending_routing_id_len(&job->routing_id);
        if (rl == 0 || rl > NOTICES_RID_MAX || dl > ONCE_MAX_NAME)
            continue;
        msg[0] = MSG_REGISTER;
        store_put_u64be(msg + 1, job->acked);
        msg[9] = (uint8_t)(job->credit >> 24);
        msg[10] = (uint8_t)(job->credit >> 16);
        msg[11] = (uint8_t)(job->credit >> 8);
        msg[12] = (uint8_t)job->credit;
        msg[13] = (uint8_t)dl;
        memcpy(msg + 14, job->sender, dl);
        memcpy(msg + 14 + dl, zmq_msg_data(&job->routing_id), rl);
        if (zmq_send(sock, msg, 14 + dl + rl, ZMQ_DONTWAIT) < 0)
            diag_warn("notices", "the fan-out is behind: a registration of "
                     "%s was dropped; its next acknowledgement registers "
                     "it", job->sender);
    }
    metrics_notice_events(events);
    metrics_notice_acks(acks);
    if (!any)
        return;
    msg[0] = MSG_EVENT;
    store_put_u64be(msg + 1, last);
    zmq_send(sock, msg, 9, ZMQ_DONTWAIT); /* a drop is repaired next pass */
}

/* ---- pruning the events ------------------------------------------------ */

void notices_pruner_init(notices_pruner *p, uint64_t now_ms)
{
    p->wanted = true;
    p->due_ms = now_ms;
}

void notices_prune_note(notices_pruner *p, write_job *const *group, size_t n,
                        uint64_t now_ms)
{
    size_t i;

    if (p->wanted)
        return;
    for (i = 0; i < n; i++) {
        const write_job *job = group[i];
        int kind = job->leaf.kind;

        if (job->result < 0 || job->reply_kind == ONCE__KIND__KIND_ERROR)
            continue;
        if (kind == ONCE__KIND__KIND_NOTICE_ACK ||
            kind == ONCE__KIND__KIND_UNSUBSCRIBE ||
            ((kind == ONCE__KIND__KIND_PUBLISH ||
              kind == ONCE__KIND__KIND_REVOKE) && job->stored_len > 0)) {
            p->wanted = true;
            p->due_ms = now_ms + NOTICES_PRUNE_INTERVAL_MS;
            return;
        }
    }
}

long notices_prune_wait(const notices_pruner *p, uint64_t now_ms)
{
    if (!p->wanted)
        return -1;
    return p->due_ms > now_ms ? (long)(p->due_ms - now_ms) : 0;
}

void notices_prune_step(notices_pruner *p, const store *db,
                        const subscriptions *t, uint64_t now_ms)
{
    once_error err;
    MDB_txn *txn;
    size_t deleted = 0;
    bool more = false;
    int rc;

    if (notices_prune_wait(p, now_ms) != 0)
        return;
    rc = store_begin(db, 0, &txn, &err);
    if (rc >= 0) {
        rc = subscriptions_prune(txn, t, NOTICES_PRUNE_BATCH, &deleted, &more,
                                 &err);
        if (rc >= 0 && deleted > 0)
            rc = store_commit(txn, &err);
        else
            mdb_txn_abort(txn);
        if (rc >= 0)
            metrics_notice_events_pruned(deleted);
    }
    if (rc < 0) {
        /* Tried again an interval later, not in a busy loop. */
        diag_error("notices", "cannot prune notice events: %s", err.message);
        more = true;
        if (now_ms < UINT64_MAX - NOTICES_PRUNE_INTERVAL_MS)
            p->due_ms = now_ms + NOTICES_PRUNE_INTERVAL_MS;
    } else if (now_ms < UINT64_MAX - NOTICES_PRUNE_AGAIN_MS) {
        p->due_ms = now_ms + NOTICES_PRUNE_AGAIN_MS;
    }
    p->wanted = more;
}

/* ---- the records held -------------------------------------------------- */

void notices_held_step(held_buffer *b, const store *db, const auditlog *log,
                       const subscriptions *t, bool stopping)
{
    uint64_t now = monotonic_ms(), size = 0;
    once_error err;
    MDB_txn *txn;
    int rc;

    if (stopping ? !held_buffer_pending(b) : held_buffer_wait(b, now) != 0)
        return;
    if (fault_take(FAULT_HELD_FLUSH)) {
        held_buffer_defer(b, now);
        return;
    }
    rc = store_begin(db, 0, &txn, &err);
    if (rc >= 0) {
        rc = auditlog_size(txn, log, &size, &err);
        if (rc >= 0)
            rc = held_buffer_flush(txn, t, b, &err);
        if (rc >= 0)
            rc = held_mark_put(txn, t, size, &err);
        if (rc >= 0)
            rc = store_commit(txn, &err);
        else
            mdb_txn_abort(txn);
    }
    if (rc < 0) {
        /* Tried again a second later; the log has the copies anyway. */
        diag_error("notices", "cannot index the records held: %s",
                  err.message);
        held_buffer_defer(b, now);
        return;
    }
    held_buffer_flushed(b, size);
}

/* ---- the fan-out thread ------------------------------------------------ */

typedef struct subscriber {
    bool used;
    char dept[ONCE_MAX_NAME + 1];
    uint8_t rid[NOTICES_RID_MAX];
    size_t rid_len;
    uint64_t sent;     /* leaves up to here were pushed or passed over */
    uint32_t credit;
    uint64_t order;    /* of registration, to replace the oldest */
} subscriber;

struct notices {
    pthread_t thread;
    bool started;
    void *in;    /* PULL from the writer */
    void *io;    /* PAIR with the I/O thread */
    const store *db;
    const subscriptions *t;
    broker_identity *id;
    MDB_txn *txn;
    subscriber subs[NOTICES_MAX_SUBSCRIBERS];
    uint64_t next_order;
    uint64_t last_event;
    bool any_event;
    byte_buffer batch;
};

static subscriber *find_rid(notices *n, const uint8_t *rid, size_t len)
{
    size_t i;

    for (i = 0; i < NOTICES_MAX_SUBSCRIBERS; i++)
        if (n->subs[i].used && n->subs[i].rid_len == len &&
            memcmp(n->subs[i].rid, rid, len) == 0)
            return &n->subs[i];
    return NULL;
}

/* A free entry for dept: an unused one, else the department's oldest
 * when it is at its cap, else the oldest of all. */
static subscriber *free_entry(notices *n, const char *dept)
{
    subscriber *oldest = NULL, *oldest_dept = NULL, *unused = NULL;
    size_t i, in_dept = 0;

    for (i = 0; i < NOTICES_MAX_SUBSCRIBERS; i++) {
        subscriber *s = &n->subs[i];

        if (!s->used) {
            if (unused == NULL)
                unused = s;
            continue;
        }
        if (oldest == NULL || s->order < oldest->order)
            oldest = s;
        if (strcmp(s->dept, dept) == 0) {
            in_dept++;
            if (oldest_dept == NULL || s->order < oldest_dept->order)
                oldest_dept = s;
        }
    }
    if (in_dept >= NOTICES_MAX_PER_DEPARTMENT)
        return oldest_dept;
    return unused != NULL ? unused : oldest;
}

static void on_register(notices *n, const uint8_t *m, size_t len)
{
    uint64_t acked;
    uint32_t credit;
    size_t dl;
    subscriber *s;
    char dept[ONCE_MAX_NAME + 1];

    if (len < 14)
        return;
    acked = store_get_u64be(m + 1);
    credit = (uint32_t)m[9] << 24 | (uint32_t)m[10] << 16 |
             (uint32_t)m[11] << 8 | m[12];
    dl = m[13];
    if (dl == 0 || dl > ONCE_MAX_NAME || len <= 14 + dl ||
        len - 14 - dl > NOTICES_RID_MAX)
        return;
    memcpy(dept, m + 14, dl);
    dept[dl] = '\0';
    s = find_rid(n, m + 14 + dl, len - 14 - dl);
    if (credit == 0 && (s == NULL || strcmp(s->dept, dept) != 0)) {
        /* An acknowledgement without credit from a connection that holds
         * no registration only moved the cursor: it takes no entry, so a
         * pool of such connections cannot push out the department's
         * watcher. An entry of another department under this routing id
         * is stale (the id is this connection's now) and is dropped. */
        if (s != NULL)
            s->used = false;
        return;
    }
    if (s != NULL && strcmp(s->dept, dept) == 0) {
        if (acked > s->sent)
            s->sent = acked;
    } else {
        if (s == NULL)
            s = free_entry(n, dept);
        memset(s, 0, sizeof(*s));
        s->used = true;
        memcpy(s->dept, dept, dl + 1);
        s->rid_len = len - 14 - dl;
        memcpy(s->rid, m + 14 + dl, s->rid_len);
        s->sent = acked;
    }
    s->credit = credit > NOTICES_MAX_CREDIT ? NOTICES_MAX_CREDIT : credit;
    s->order = ++n->next_order;
}

static void read_inputs(notices *n)
{
    uint8_t m[1 + 8 + 4 + 1 + ONCE_MAX_NAME + NOTICES_RID_MAX];
    int len;

    while ((len = zmq_recv(n->in, m, sizeof(m), ZMQ_DONTWAIT)) >= 0) {
        if (len > (int)sizeof(m))
            continue;
        if (m[0] == MSG_EVENT && len == 9) {
            uint64_t last = store_get_u64be(m + 1);

            if (!n->any_event || last > n->last_event)
                n->last_event = last;
            n->any_event = true;
        } else if (m[0] == MSG_REGISTER) {
            on_register(n, m, (size_t)len);
        }
    }
    while ((len = zmq_recv(n->io, m, sizeof(m), ZMQ_DONTWAIT)) >= 0) {
        subscriber *s;

        if (len > (int)sizeof(m))
            continue;
        s = find_rid(n, m, (size_t)len);
        if (s != NULL)
            s->used = false;
    }
}

static bool has_work(const notices *n, const subscriber *s)
{
    return s->used && s->credit > 0 && n->any_event &&
           s->sent < n->last_event;
}

/* Pushes one batch to s. Returns 1 when the pipe is full, -1 on a
 * database error, 0 otherwise. */
static int push_one(notices *n, subscriber *s)
{
    uint64_t scanned_to;
    size_t count;
    once_error err;
    zmq_msg_t rid, env;

    if (notices_batch_encode(n->txn, n->t, n->db, s->dept, s->sent,
                             s->credit, 0, &n->batch, &count, &scanned_to,
                             &err) < 0) {
        diag_error("notices", "cannot read the notices of %s: %s", s->dept,
                  err.message);
        return -1;
    }
    if (count == 0) {
        s->sent = scanned_to;
        return 0;
    }
    if (reply_message(n->id, ONCE__KIND__KIND_NOTICES, 0, n->batch.data,
                      n->batch.len, &env) < 0)
        return -1;
    zmq_msg_init_size(&rid, s->rid_len);
    memcpy(zmq_msg_data(&rid), s->rid, s->rid_len);
    if (zmq_msg_send(&rid, n->io, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&rid);
        zmq_msg_close(&env);
        return 1;
    }
    /* A PAIR takes the rest of a message once it took its first frame. */
    if (zmq_msg_send(&env, n->io, 0) < 0)
        zmq_msg_close(&env);
    s->sent = scanned_to;
    s->credit -= count < s->credit ? (uint32_t)count : s->credit;
    metrics_notices_delivered(s->dept, true, count);
    return 0;
}

/* One pass: a batch for each connection with work. Returns true when
 * work is left, *backoff when the pass stopped early. */
static bool pass(notices *n, bool *backoff)
{
    once_error err;
    bool left = false;
    size_t i;
    int rc;

    *backoff = false;
    if (mdb_txn_renew(n->txn) != MDB_SUCCESS) {
        *backoff = true;
        return true;
    }
    {
        uint64_t last;
        bool any;

        if (subscriptions_last_event(n->txn, n->t, &last, &any, &err) == 0 &&
            any && (!n->any_event || last > n->last_event)) {
            n->last_event = last;
            n->any_event = true;
        }
    }
    for (i = 0; i < NOTICES_MAX_SUBSCRIBERS && !*backoff; i++) {
        if (!has_work(n, &n->subs[i]))
            continue;
        rc = push_one(n, &n->subs[i]);
        if (rc != 0)
            *backoff = true;
        left = left || has_work(n, &n->subs[i]);
    }
    mdb_txn_reset(n->txn);
    return left || *backoff;
}

static void *notices_main(void *arg)
{
    notices *n = arg;
    bool work = true, backoff = false;

    for (;;) {
        zmq_pollitem_t items[2] = {
            { n->in, 0, ZMQ_POLLIN, 0 },
            { n->io, 0, ZMQ_POLLIN, 0 },
        };
        int rc = zmq_poll(items, 2, !work ? -1 : backoff ? NOTICES_BACKOFF_MS
                                                         : 0);

        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            break;
        read_inputs(n);
        work = pass(n, &backoff);
    }
    if (errno != ETERM) {
        diag_error("notices", "the fan-out stopped: %s", zmq_strerror(errno));
        broker_fail();
    }
    return NULL;
}

int notices_start(notices **out, void *zmq_ctx, const store *db,
                  const subscriptions *t, broker_identity *id,
                  once_error *err)
{
    notices *n;
    int rc, linger = 0, hwm = NOTICES_PIPE_HWM;

    *out = NULL;
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    n->db = db;
    n->t = t;
    n->id = id;
    if ((rc = store_begin(db, 1, &n->txn, err)) < 0) {
        free(n);
        return rc;
    }
    mdb_txn_reset(n->txn);
    n->in = zmq_socket(zmq_ctx, ZMQ_PULL);
    n->io = zmq_socket(zmq_ctx, ZMQ_PAIR);
    if (n->in == NULL || n->io == NULL ||
        zmq_setsockopt(n->in, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_setsockopt(n->io, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_setsockopt(n->io, ZMQ_SNDHWM, &hwm, sizeof(hwm)) != 0 ||
        zmq_bind(n->in, NOTICES_IN_ENDPOINT) != 0 ||
        zmq_bind(n->io, NOTICES_IO_ENDPOINT) != 0) {
        rc = once_error_set(err, ONCE_ERR_IO, "cannot set up the notice "
                            "fan-out: %s", zmq_strerror(errno));
        goto fail;
    }
    rc = pthread_create(&n->thread, NULL, notices_main, n);
    if (rc != 0) {
        rc = once_error_set(err, ONCE_ERR_IO, "cannot start the notice "
                            "fan-out: %s", strerror(rc));
        goto fail;
    }
    n->started = true;
    *out = n;
    return 0;
fail:
    if (n->in != NULL)
        zmq_close(n->in);
    if (n->io != NULL)
        zmq_close(n->io);
    mdb_txn_abort(n->txn);
    free(n);
    return rc;
}

void notices_join(notices *n)
{
    if (n == NULL)
        return;
    if (n->started)
        pthread_join(n->thread, NULL);
    zmq_close(n->in);
    zmq_close(n->io);
    mdb_txn_abort(n->txn);
    byte_buffer_free(&n->batch);
    free(n);
}
