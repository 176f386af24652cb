/*
 * writer.c - the one thread that writes the database: publishes,
 * revocations and the exchange log, group committed.
 *
 * LMDB allows one write transaction at a time, and a durable commit costs
 * an fsync, which on most disks takes longer than verifying a hundred
 * signatures. So every write goes through this one thread, which takes all
 * the validated jobs that are waiting (up to group_commit_max), stores them
 * in ONE transaction and commits it once: one fsync makes the whole group
 * durable. Under load groups grow by themselves; alone, a publish is
 * committed as soon as it arrives.
 *
 * A publish is acknowledged only after its commit returned: the answers of
 * a group are sent after the commit, never before. If the broker dies
 * before that, nothing was acknowledged and the client's retry (the same
 * envelope) stores it; if it dies after the commit but before the answer
 * left, the retry finds the answer in the `replies` table, which is written
 * in the same transaction as the record (replay.c), and no second version
 * is stored. Each commit also deletes a few answers of envelopes too old
 * for any copy to pass the clock check, so that table stays about one skew
 * window of traffic long.
 *
 * The exchange log. Every publish, revoke and request, granted or refused,
 * is one leaf of the log (auditlog.c, docs/AUDIT.md), and no answer may
 * leave before its leaf is durable. So requests and logged refusals come
 * here too, already answered by a worker: the writer only appends their
 * leaves. For each group it appends every job's leaf with its envelope as
 * evidence, signs a checkpoint of the new tree with the broker key when one
 * is due (below), adds each answer's receipt (the leaf index; with a proof,
 * the checkpoint, the inclusion proof and the leaf bytes) and stores that
 * answer for retries (a granted request's without a proof as what rebuilds
 * it: replies.c), all in the same transaction, then commits once.
 *
 * Checkpoint cadence. A group signs a checkpoint when one of its envelopes
 * asked for a proof (its receipt needs a checkpoint that holds its leaf),
 * or when the newest checkpoint is checkpoint_interval_ms old; an idle
 * writer signs the pending one when the interval runs out, and a stopping
 * writer signs the last one. Signing after every commit would make
 * checkpoints the auditor's main cost: one Ed25519 check per ~37 leaves
 * under load and per leaf when traffic is light (a broker log of 1.1 M
 * leaves signed that way carried 29,719 checkpoints, 2/3 of the work of
 * `once-audit verify`'s tree pass), and ~250 bytes of storage per commit,
 * for statements nobody received: a receipt without a proof carries only
 * the leaf index. With the interval every leaf is still under a signed
 * checkpoint within checkpoint_interval_ms of its commit, and whoever wants
 * a proof at once asks for it. checkpoint_interval_ms = 0 restores one per
 * commit. A receipt is appended to the answer as protobuf field
 * bytes (Response.receipt = 7, Error.receipt = 3): protobuf defines a
 * message followed by more fields as the message with those fields, so the
 * workers' encoded answers are never decoded again here.
 *
 * High water. Every request writes too: its leaf, its evidence and its
 * answer kept for retries. So publishes stop before the map is full: once
 * the data in the map (store_usage: the pages up to the highest written,
 * less LMDB's free list) reaches high_water_percent of it, a group's
 * publishes are answered STORAGE_FULL and the rest of the group, requests
 * and revocations, goes on in the room left. Like the STORAGE_FULL of a
 * full map, that answer carries no receipt and is neither logged nor kept:
 * the broker did not act on the publish, whose retry, the same bytes, is
 * executed once there is room, and a department publishing on regardless
 * spends none of the room kept for requests. The check costs two reads of LMDB's
 * header while the file is below the mark, and a walk of the free list in
 * a read transaction of its own, before the group's, above it; usage is
 * seen as of the last commit, so a group may go over the mark by its own
 * size. If the map fills anyway, every write fails as below.
 *
 * Notices. In the same transaction, notices.c puts what subscriptions
 * need beside each leaf (the event of a publish or revoke, a
 * subscription, an acknowledgement's cursor: an acknowledgement is the
 * one job stored without a leaf), and after the commit it tells the
 * fan-out thread, without blocking, what is new. The record a request
 * granted is not put in its group's transaction: it is derived data (the
 * leaf has it), kept in memory after the commit and put in key order in
 * the transaction of the next group that makes an event, before that
 * group's work, or in a transaction of its own about a second later,
 * never in a request-only group (held_buffer.c). A group whose copies
 * might not fit in memory puts them itself.
 * The events nobody can be notified of any more are deleted here too,
 * but never in a group's transaction: a step of at most a thousand, in a
 * transaction of its own, about a second after a group that could have
 * made some prunable, whether the writer is busy or idle (notices.c).
 *
 * Failures. A job that cannot be stored for its own reason (its version is
 * no longer above the latest, because another publish of the same record
 * got in first) gets its Error, which is stored as its answer too, and the
 * rest of the group goes on: registry_put_record checks before it writes,
 * so such a refusal leaves the transaction clean. A failure of the database
 * itself (the map is full, an I/O error) aborts the transaction: every job
 * of the group gets STORAGE_FULL or INTERNAL without a receipt, nothing of
 * it is stored or logged, and in particular no record is served, since a
 * request's answer may leave only with its leaf. Such a failure answer is
 * kept nowhere, neither in `replies` nor in memory (replay_release): the
 * envelope had no effect, and its retry, the same bytes, is executed
 * afresh and may succeed. Likewise a refusal with such a code that a
 * worker made and this thread logs is logged but not kept.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "envelope.h"
#include "faults.h"
#include "metrics.h"
#include "monotonic.h"
#include "notices.h"
#include "write_steps.h"
#include "writer.h"

/* A group also ends once its records add up to this many bytes, to keep
 * LMDB's dirty page list and the commit's latency bounded. */
#define GROUP_MAX_BYTES (64u * 1024 * 1024)

struct writer {
    pthread_t thread;
    void *jobs;      /* PULL: write_job pointers from the workers */
    void *replies;   /* PUSH: answers to the I/O thread */
    void *notices;   /* PUSH: committed events to the fan-out */
    store *db;
    const subscriptions *subs;
    const auditlog *log;
    replay *rp;
    broker_identity *id;
    once_keypair log_key;
    char origin[CHECKPOINT_MAX_ORIGIN + 1];
    unsigned group_max;
    write_job **group;
    byte_buffer error;
    char note[CHECKPOINT_MAX_NOTE];
    size_t note_len;
    uint64_t tree_size;   /* after the group being committed */
    uint64_t skew_ms;            /* how long a retry can still arrive */
    uint64_t checkpoint_interval_ms;
    uint64_t last_checkpoint_ms; /* monotonic time of the newest one */
    bool checkpoint_pending;     /* leaves committed since the newest one */
    unsigned high_water_percent;
    bool above_high_water;       /* as last seen, to log the changes */
    notices_pruner pruner;
    held_buffer *held;           /* copies granted, not yet in the table */
};

write_job *write_job_new(size_t stored_len, size_t answer_len,
                         size_t evidence_len)
{
    write_job *job;

    if (stored_len > ONCE_MAX_MESSAGE * 5 || answer_len > ONCE_MAX_MESSAGE * 5 ||
        evidence_len > ONCE_MAX_MESSAGE * 5)
        return NULL;
    job = malloc(sizeof(*job) + stored_len + answer_len + evidence_len);
    if (job == NULL)
        return NULL;
    memset(job, 0, sizeof(*job));
    zmq_msg_init(&job->routing_id);
    job->stored = (uint8_t *)(job + 1);
    job->stored_len = stored_len;
    job->answer = job->stored + stored_len;
    job->answer_len = answer_len;
    job->evidence = job->answer + answer_len;
    job->evidence_len = evidence_len;
    job->answer_kind = ONCE__KIND__KIND_RESPONSE;
    return job;
}

void write_job_free(write_job *job)
{
    if (job == NULL)
        return;
    zmq_msg_close(&job->routing_id);
    free(job->own_answer);
    free(job->leaf_bytes);
    free(job->reply);
    free(job);
}

static void fail_group(write_job **group, size_t n, int rc,
                       const once_error *err)
{
    size_t i;

    diag_error("writer", "logged none of %zu exchanges: %s", n, err->message);
    for (i = 0; i < n; i++) {
        group[i]->result = rc;
        group[i]->error = *err;
        free(group[i]->reply);
        group[i]->reply = NULL;
    }
}

/* Drops stored answers no retry can reach any more (replay.c), at most a
 * few per stored one so the table shrinks as fast as it grows and no
 * commit does much more work than its group. In a nested transaction:
 * a failure here is logged and costs only the pruning, never the group. */
static void prune_replies(writer *w, MDB_txn *txn, size_t n)
{
    uint64_t cutoff = replay_reply_cutoff(once_now_ms(), w->skew_ms);
    once_error err;
    MDB_txn *child;
    int rc;

    /* A nested transaction costs LMDB a few MiB of bookkeeping: only
     * when something has expired. */
    if (!replay_reply_expired(txn, w->db, cutoff))
        return;
    rc = mdb_txn_begin(mdb_txn_env(txn), txn, 0, &child);
    if (rc != MDB_SUCCESS) {
        diag_warn("writer", "cannot prune stored answers: %s",
                 mdb_strerror(rc));
        return;
    }
    rc = replay_reply_prune(child, w->db, cutoff, 4 * n, NULL, &err);
    if (rc == 0)
        rc = store_commit(child, &err);
    else
        mdb_txn_abort(child);
    if (rc < 0)
        diag_warn("writer", "cannot prune stored answers: %s", err.message);
}

static bool checkpoint_due(const writer *w, uint64_t now_ms)
{
    return now_ms - w->last_checkpoint_ms >= w->checkpoint_interval_ms;
}

/* Signs the checkpoint of the current tree into w->note, inside txn. */
static int sign_checkpoint(writer *w, MDB_txn *txn, once_error *err)
{
    int rc = auditlog_sign_checkpoint(txn, w->log, w->origin, &w->log_key,
                                      w->note, sizeof(w->note), err);

    if (rc >= 0)
        w->note_len = (size_t)rc;
    return rc;
}

/* Whether the data in the map has reached the high-water mark; logs when
 * that changes. When LMDB cannot tell, the last answer stands. */
static bool above_high_water(writer *w)
{
    size_t bound, map_size, used = 0, mark;
    once_error err;
    bool above;

    if (w->high_water_percent >= 100 ||
        store_usage_bound(w->db, &bound, &map_size) < 0)
        return w->above_high_water;
    mark = map_size / 100 * w->high_water_percent;
    if (bound < mark) {
        above = false;
    } else if (store_usage(w->db, &used, &err) < 0) {
        diag_warn("writer", "cannot measure the database: %s", err.message);
        return w->above_high_water;
    } else {
        above = used >= mark;
    }
    if (above && !w->above_high_water)
        diag_warn("writer", "the database holds %zu MiB of its %zu MiB, "
                 "%u%% or more: publishes are refused with STORAGE_FULL so "
                 "that requests go on; raise map_size_mb and restart",
                 used >> 20, map_size >> 20, w->high_water_percent);
    else if (!above && w->above_high_water)
        diag_info("writer", "the database is below %u%% of its map again: "
                 "publishes are stored", w->high_water_percent);
    w->above_high_water = above;
    return above;
}

/* Answers the group's publishes STORAGE_FULL, unlogged, when the map is
 * above the high-water mark. Returns how many jobs go on. */
static size_t stop_publishes(writer *w, write_job **group, size_t n)
{
    size_t i, left = n;
    bool checked = false, above = false;

    for (i = 0; i < n; i++) {
        write_job *job = group[i];

        if (job->leaf.kind != ONCE__KIND__KIND_PUBLISH ||
            job->stored_len == 0 ||
            job->answer_kind != ONCE__KIND__KIND_RESPONSE)
            continue;
        if (!checked) {
            above = above_high_water(w);
            checked = true;
        }
        if (!above)
            return n;
        job->result = once_error_set(
            &job->error, ONCE_ERR_STORAGE_FULL, "the database is %u%% full "
            "(high_water_percent): publishes are refused so that requests "
            "go on; the operator must raise map_size_mb and restart the "
            "broker", w->high_water_percent);
        diag_info("writer", "refused publish from %s (session %016llx seq "
                 "%llu, subject #%s): STORAGE_FULL: above the high-water "
                 "mark", job->sender, (unsigned long long)job->session,
                 (unsigned long long)job->seq, job->subject_tag);
        left--;
    }
    return left;
}

/* One transaction: the records, the leaves, a checkpoint when one is due,
 * the answers with their receipts. Jobs whose result is already a failure
 * (stop_publishes) take no part. */
static void commit_group(writer *w, write_job **group, size_t n)
{
    uint64_t now = monotonic_ms();
    bool sign = checkpoint_due(w, now), events, put_held;
    once_error err;
    MDB_txn *txn;
    size_t i;
    int rc;

    if (stop_publishes(w, group, n) == 0)
        return;
    for (i = 0; i < n; i++)
        sign = sign || (group[i]->want_proof && group[i]->result == 0);
    /* The copies granted before an event are in the table it commits
     * with (held_buffer.c); a request-only group leaves them in memory,
     * unless they might not fit. */
    events = notices_group_events(group, n);
    put_held = events ||
               !held_buffer_room(w->held, notices_group_copies(group, n));
    rc = store_begin(w->db, 0, &txn, &err);
    if (rc < 0) {
        fail_group(group, n, rc, &err);
        return;
    }
    if (events)
        rc = held_buffer_flush(txn, w->subs, w->held, &err);
    for (i = 0; i < n && rc >= 0; i++) {
        if (group[i]->result < 0)
            continue;
        rc = write_step_record(txn, w->db, &w->error, group[i], &err);
        if (rc >= 0 && !group[i]->no_leaf)
            rc = write_step_leaf(txn, w->log, group[i], &err);
        if (rc >= 0)
            rc = notices_commit_job(txn, w->subs, group[i], put_held, &err);
    }
    if (rc >= 0)
        rc = auditlog_size(txn, w->log, &w->tree_size, &err);
    if (rc >= 0 && events)
        rc = held_mark_put(txn, w->subs, w->tree_size, &err);
    if (rc >= 0 && sign)
        rc = sign_checkpoint(w, txn, &err);
    for (i = 0; i < n && rc >= 0; i++)
        if (group[i]->result == 0)
            rc = write_step_reply(txn, w->db, w->log, w->tree_size, w->note,
                                  w->note_len, group[i], &err);
    if (rc < 0) {
        mdb_txn_abort(txn);
        fail_group(group, n, rc, &err);
        return;
    }
    prune_replies(w, txn, n);
    if (fault_take(FAULT_COMMIT)) {
        mdb_txn_abort(txn);
        rc = once_error_set(&err, ONCE_ERR_IO, "cannot commit to the "
                            "database: injected fault");
    } else {
        /* Durable here: the environment is opened without MDB_NOSYNC. */
        rc = store_commit(txn, &err);
    }
    if (rc < 0) {
        fail_group(group, n, rc, &err);
        return;
    }
    if (sign)
        w->last_checkpoint_ms = now;
    w->checkpoint_pending = !sign;
    if (events)
        held_buffer_flushed(w->held, w->tree_size);
    else if (!put_held &&
             notices_held_collect(w->held, group, n, now, &err) < 0)
        diag_error("writer", "cannot keep the records held: %s",
                  err.message);
    held_buffer_committed(w->held, w->tree_size);
}

/* Signs the checkpoint the leaves committed since the newest one wait
 * for, in a transaction of its own. On failure the next try is one
 * interval later, so a full map does not turn into a busy loop. */
static void commit_pending_checkpoint(writer *w)
{
    once_error err;
    MDB_txn *txn;
    int rc;

    w->last_checkpoint_ms = monotonic_ms();
    rc = store_begin(w->db, 0, &txn, &err);
    if (rc >= 0) {
        rc = sign_checkpoint(w, txn, &err);
        if (rc >= 0)
            rc = store_commit(txn, &err);
        else
            mdb_txn_abort(txn);
    }
    if (rc < 0) {
        diag_error("writer", "cannot sign the pending checkpoint: %s",
                  err.message);
        return;
    }
    w->checkpoint_pending = false;
}

/* The work a writer does beside its groups, each step in a transaction
 * of its own and only when due: deleting events nobody can be notified
 * of, and putting the records held into their table. */
static void side_steps(writer *w)
{
    notices_prune_step(&w->pruner, w->db, w->subs, monotonic_ms());
    notices_held_step(w->held, w->db, w->log, w->subs, false);
}

/* The sooner of two waits, -1 meaning none. */
static long sooner(long a, long b)
{
    return a < 0 || (b >= 0 && b < a) ? b : a;
}

/* How long the writer may wait for a job: until the pending checkpoint, a
 * pruning step or a flush of the records held is due, or forever (-1)
 * when none is wanted. */
static long wait_ms(const writer *w)
{
    uint64_t now = monotonic_ms(), due;
    long checkpoint = -1, prune = notices_prune_wait(&w->pruner, now);

    if (w->checkpoint_pending) {
        due = w->last_checkpoint_ms + w->checkpoint_interval_ms;
        checkpoint = due > now ? (long)(due - now) : 0;
    }
    return sooner(sooner(checkpoint, prune),
                  held_buffer_wait(w->held, now));
}

/* Sends a job's answer and keeps it for a retry. A job whose group failed
 * is answered with that failure and no receipt: nothing of it was logged,
 * nothing of it was stored, and nothing of it is kept, so the retry of the
 * same bytes is executed afresh (replay_release). more: another answer of
 * the group follows in the same message (send_reply_part), so the I/O
 * thread wakes once a group, not once an answer. */
static void answer_job(writer *w, write_job *job, bool more)
{
    const uint8_t *body = job->reply;
    size_t len = job->reply_len;
    int kind = job->reply_kind;
    zmq_msg_t reply;
    bool failure;

    if (job->result < 0) {
        if (error_body(&w->error, job->result, job->error.message) < 0) {
            diag_error("writer", "out of memory for an error answer");
            body = NULL;
        } else {
            body = w->error.data;
            len = w->error.len;
            kind = ONCE__KIND__KIND_ERROR;
        }
    } else if (job->stored_len > 0 && kind == ONCE__KIND__KIND_RESPONSE) {
        diag_debug("writer", "%s %s v%llu, subject #%s, from %s, leaf %llu",
                  job->leaf.kind == ONCE__KIND__KIND_REVOKE ? "revoked"
                                                            : "stored",
                  job->leaf.record_type,
                  (unsigned long long)job->leaf.record_version,
                  job->subject_tag, job->sender,
                  (unsigned long long)job->leaf_index);
    }
    /* Ends the envelope's flight whatever follows (replay.c counts it
     * against its department until then). A failure is kept nowhere: the
     * retry of the same bytes is executed afresh. */
    failure = job->result < 0 || (kind == ONCE__KIND__KIND_ERROR &&
                                  error_is_failure(job->refusal));
    if (job->replay_admitted && (failure || body == NULL))
        replay_release(w->rp, job->sender, job->session, job->seq);
    else if (job->replay_admitted)
        replay_finish(w->rp, job->sender, job->session, job->seq, kind, body,
                      len);
    if (body == NULL ||
        reply_message(w->id, kind, job->seq, body, len, &reply) < 0) {
        /* Still one pair per job, so shutdown's accounting holds. */
        send_reply_part(w->replies, &job->routing_id, NULL, more);
        return;
    }
    if (send_reply_part(w->replies, &job->routing_id, &reply, more) < 0)
        diag_error("writer", "cannot pass an answer to the I/O thread: %s",
                  zmq_strerror(errno));
    else
        metrics_answered(job->received_ns);
}

/* Receives one job pointer; flags 0 blocks. */
static int receive_job(writer *w, write_job **job, int flags)
{
    for (;;) {
        int n = zmq_recv(w->jobs, job, sizeof(*job), flags);

        if (n == (int)sizeof(*job))
            return 0;
        if (n >= 0) {
            diag_error("writer", "dropped a malformed job (%d bytes)", n);
            continue;
        }
        if (errno != EINTR)
            return -1;
    }
}

/* Takes one more job for the group if one is waiting; *drained says when
 * none was (for next_job). */
static bool more_job(writer *w, write_job **job, bool *drained)
{
    if (receive_job(w, job, ZMQ_DONTWAIT) == 0)
        return true;
    *drained = errno == EAGAIN;
    return false;
}

/* Waits for the next job, signing the pending checkpoint when it falls
 * due first. -1 with errno ETERM once the broker stops.
 *
 * drained: the last receive on the jobs' socket found nothing. Then libzmq
 * signals the socket's descriptor (ZMQ_FD) when a job comes, and the
 * thread sleeps in one poll(2) on it: zmq_poll would ask the socket again
 * before and after sleeping, four system calls more a wake-up (server.c,
 * io_loop, says why that counts). The thread only receives on this
 * socket, so nothing else takes in libzmq's notice of a job. */
static int next_job(writer *w, write_job **job, bool drained)
{
    struct pollfd fd = { -1, POLLIN, 0 };
    size_t size = sizeof(fd.fd);

    if (zmq_getsockopt(w->jobs, ZMQ_FD, &fd.fd, &size) != 0)
        return -1;
    for (;;) {
        int rc;

        if (!drained) {
            if (receive_job(w, job, ZMQ_DONTWAIT) == 0)
                return 0;
            if (errno != EAGAIN)
                return -1;
        }
        rc = poll(&fd, 1, (int)wait_ms(w));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -1;
        drained = rc == 0; /* else what poll saw is received next */
        if (rc == 0) {
            if (w->checkpoint_pending &&
                monotonic_ms() >= w->last_checkpoint_ms +
                                      w->checkpoint_interval_ms)
                commit_pending_checkpoint(w);
            side_steps(w);
            continue;
        }
    }
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    write_job *job;
    size_t n, bytes, i;
    uint64_t started;
    bool drained = false; /* the last receive found nothing (next_job) */

    pthread_setname_np(pthread_self(), "onced-writer"); /* top -H, perf */
    while (next_job(w, &job, drained) == 0) {
        n = 0;
        bytes = 0;
        drained = false;
        do {
            w->group[n++] = job;
            bytes += job->stored_len + job->evidence_len;
        } while (n < w->group_max && bytes < GROUP_MAX_BYTES &&
                 more_job(w, &job, &drained));
        if (fault_take(FAULT_WRITER_DIES)) {
            diag_error("writer", "dying with %zu exchanges unanswered: "
                      "injected fault", n);
            for (i = 0; i < n; i++)
                write_job_free(w->group[i]);
            broker_fail();
            return NULL;
        }
        started = monotonic_ns();
        commit_group(w, w->group, n);
        metrics_committed(w->group, n, started);
        notices_committed(w->notices, w->group, n);
        notices_prune_note(&w->pruner, w->group, n, monotonic_ms());
        for (i = 0; i < n; i++) {
            answer_job(w, w->group[i], i + 1 < n);
            write_job_free(w->group[i]);
        }
        /* After the answers: a step never delays the group's. */
        side_steps(w);
    }
    if (errno != ETERM) {
        diag_error("writer", "cannot receive: %s", zmq_strerror(errno));
        broker_fail();
    }
    /* The export and the next start find every committed leaf signed,
     * and the step of pruning that was pending made. */
    if (w->checkpoint_pending)
        commit_pending_checkpoint(w);
    notices_prune_step(&w->pruner, w->db, w->subs, UINT64_MAX);
    notices_held_step(w->held, w->db, w->log, w->subs, true);
    return NULL;
}

int writer_start(writer **out, const writer_options *opt, once_error *err)
{
    writer *w;
    int rc, linger = 0;

    *out = NULL;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    w->db = opt->db;
    w->subs = opt->subs;
    notices_pruner_init(&w->pruner, monotonic_ms());
    w->log = opt->log;
    w->rp = opt->rp;
    w->id = opt->id;
    w->log_key = *opt->log_key;
    snprintf(w->origin, sizeof(w->origin), "%s", opt->origin);
    w->group_max = opt->group_max > 0 ? opt->group_max : 1;
    w->skew_ms = (uint64_t)opt->skew_seconds * 1000u;
    w->checkpoint_interval_ms = opt->checkpoint_interval_ms;
    w->high_water_percent = opt->high_water_percent;
    /* onced signed the checkpoint of the current tree before starting us. */
    w->last_checkpoint_ms = monotonic_ms();
    w->group = calloc(w->group_max, sizeof(*w->group));
    if ((rc = held_buffer_new(&w->held, err)) < 0)
        goto fail;
    w->jobs = zmq_socket(opt->zmq_ctx, ZMQ_PULL);
    w->replies = zmq_socket(opt->zmq_ctx, ZMQ_PUSH);
    w->notices = zmq_socket(opt->zmq_ctx, ZMQ_PUSH);
    if (w->group == NULL || w->jobs == NULL || w->replies == NULL ||
        w->notices == NULL ||
        zmq_setsockopt(w->notices, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_connect(w->notices, NOTICES_IN_ENDPOINT) != 0 ||
        zmq_setsockopt(w->jobs, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_setsockopt(w->replies, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_bind(w->jobs, SERVER_WRITES_ENDPOINT) != 0 ||
        zmq_connect(w->replies, SERVER_REPLIES_ENDPOINT) != 0) {
        rc = once_error_set(err, ONCE_ERR_IO, "cannot set up the writer: %s",
                            zmq_strerror(errno));
        goto fail;
    }
    rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc != 0) {
        rc = once_error_set(err, ONCE_ERR_IO, "cannot start the writer: %s",
                            strerror(rc));
        goto fail;
    }
    *out = w;
    return 0;
fail:
    if (w->jobs != NULL)
        zmq_close(w->jobs);
    if (w->replies != NULL)
        zmq_close(w->replies);
    if (w->notices != NULL)
        zmq_close(w->notices);
    free(w->group);
    held_buffer_free(w->held);
    once_keypair_wipe(&w->log_key);
    free(w);
    return rc;
}

void writer_join(writer *w)
{
    if (w == NULL)
        return;
    pthread_join(w->thread, NULL);
    zmq_close(w->jobs);
    zmq_close(w->replies);
    zmq_close(w->notices);
    byte_buffer_free(&w->error);
    free(w->group);
    held_buffer_free(w->held);
    once_keypair_wipe(&w->log_key);
    free(w);
}
