/*
 * writer.c - the one thread that writes the database: publishes and
 * revocations, group committed.
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
 * is stored.
 *
 * Failures. A job that cannot be stored for its own reason (its version is
 * no longer above the latest, because another publish of the same record
 * got in first) gets its Error, which is stored as its answer too, and the
 * rest of the group goes on: registry_put_record checks before it writes,
 * so such a refusal leaves the transaction clean. A failure of the database
 * itself (the map is full, an I/O error) aborts the transaction: every job
 * of the group gets STORAGE_FULL or INTERNAL, nothing of it is stored, and
 * the broker keeps serving reads, which never need the writer.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "writer.h"

/* A group also ends once its records add up to this many bytes, to keep
 * LMDB's dirty page list and the commit's latency bounded. */
#define GROUP_MAX_BYTES (64u * 1024 * 1024)

struct writer {
    pthread_t thread;
    void *jobs;      /* PULL: write_job pointers from the workers */
    void *replies;   /* PUSH: answers to the I/O thread */
    store *db;
    replay *rp;
    broker_identity *id;
    unsigned group_max;
    write_job **group;
    byte_buffer error;
};

write_job *write_job_new(size_t stored_len, size_t answer_len)
{
    write_job *job;

    if (stored_len > SIZE_MAX - sizeof(*job) - answer_len)
        return NULL;
    job = malloc(sizeof(*job) + stored_len + answer_len);
    if (job == NULL)
        return NULL;
    memset(job, 0, sizeof(*job));
    zmq_msg_init(&job->routing_id);
    job->stored = (uint8_t *)(job + 1);
    job->stored_len = stored_len;
    job->answer = job->stored + stored_len;
    job->answer_len = answer_len;
    return job;
}

void write_job_free(write_job *job)
{
    if (job == NULL)
        return;
    zmq_msg_close(&job->routing_id);
    free(job);
}

/* Puts one job's record and answer. Returns 0 when the transaction is
 * still usable (the job stored, or refused for its own reason with
 * job->result set), or a negative code when the database failed and the
 * transaction must be aborted (err says why). */
static int put_job(writer *w, MDB_txn *txn, write_job *job, once_error *err)
{
    int rc;

    rc = registry_put_record(txn, w->db, job->type, job->subject,
                             job->version, job->stored, job->stored_len,
                             &job->error);
    if (rc == -ONCE_ERR_STORAGE_FULL || rc == -ONCE_ERR_IO ||
        rc == -ONCE_ERR_NO_MEMORY) {
        *err = job->error;
        return rc;
    }
    job->result = rc;
    if (rc == 0)
        return replay_reply_put(txn, w->db, job->sender, job->session,
                                job->seq, job->envelope_digest,
                                ONCE__KIND__KIND_RESPONSE, job->answer,
                                job->answer_len, err);
    if (error_body(&w->error, rc, job->error.message) < 0)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    return replay_reply_put(txn, w->db, job->sender, job->session, job->seq,
                            job->envelope_digest, ONCE__KIND__KIND_ERROR,
                            w->error.data, w->error.len, err);
}

static void fail_group(write_job **group, size_t n, int rc,
                       const once_error *err)
{
    size_t i;

    log_error("writer", "stored none of %zu records: %s", n, err->message);
    for (i = 0; i < n; i++) {
        group[i]->result = rc;
        group[i]->error = *err;
    }
}

static void commit_group(writer *w, write_job **group, size_t n)
{
    once_error err;
    MDB_txn *txn;
    size_t i;
    int rc;

    rc = store_begin(w->db, 0, &txn, &err);
    if (rc < 0) {
        fail_group(group, n, rc, &err);
        return;
    }
    for (i = 0; i < n; i++) {
        rc = put_job(w, txn, group[i], &err);
        if (rc < 0)
            break;
    }
    if (rc < 0) {
        mdb_txn_abort(txn);
        fail_group(group, n, rc, &err);
        return;
    }
    /* Durable here: the environment is opened without MDB_NOSYNC. */
    rc = store_commit(txn, &err);
    if (rc < 0)
        fail_group(group, n, rc, &err);
}

/* Sends a job's answer and keeps it for a retry. */
static void answer_job(writer *w, write_job *job)
{
    const uint8_t *body = job->answer;
    size_t len = job->answer_len;
    int kind = ONCE__KIND__KIND_RESPONSE;
    zmq_msg_t reply;

    if (job->result == 0) {
        log_debug("writer", "%s %s v%llu, subject #%s, from %s",
                  job->kind == ONCE__KIND__KIND_REVOKE ? "revoked" : "stored",
                  job->type, (unsigned long long)job->version,
                  job->subject_tag, job->sender);
    } else {
        (job->result == -ONCE_ERR_STALE_VERSION ? log_info : log_warn)(
            "writer", "refused %s from %s (session %016llx seq %llu, "
            "subject #%s): %s: %s",
            job->kind == ONCE__KIND__KIND_REVOKE ? "revoke" : "publish",
            job->sender, (unsigned long long)job->session,
            (unsigned long long)job->seq, job->subject_tag,
            once_error_name(job->result < -ONCE_ERR_UNAVAILABLE
                                ? ONCE_ERR_INTERNAL
                                : job->result),
            job->error.message);
        if (error_body(&w->error, job->result, job->error.message) < 0) {
            log_error("writer", "out of memory for an error answer");
            body = NULL;
        } else {
            body = w->error.data;
            len = w->error.len;
            kind = ONCE__KIND__KIND_ERROR;
        }
    }
    if (body == NULL ||
        reply_message(w->id, kind, job->seq, body, len, &reply) < 0) {
        /* Still one message per job, so shutdown's accounting holds. */
        zmq_send(w->replies, NULL, 0, 0);
        return;
    }
    if (job->replay_admitted)
        replay_finish(w->rp, job->sender, job->session, job->seq, kind, body,
                      len);
    if (send_reply(w->replies, &job->routing_id, &reply) < 0)
        log_error("writer", "cannot pass an answer to the I/O thread: %s",
                  zmq_strerror(errno));
}

/* Receives one job pointer; flags 0 blocks. */
static int receive_job(writer *w, write_job **job, int flags)
{
    for (;;) {
        int n = zmq_recv(w->jobs, job, sizeof(*job), flags);

        if (n == (int)sizeof(*job))
            return 0;
        if (n >= 0) {
            log_error("writer", "dropped a malformed job (%d bytes)", n);
            continue;
        }
        if (errno != EINTR)
            return -1;
    }
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    write_job *job;
    size_t n, bytes, i;

    while (receive_job(w, &job, 0) == 0) {
        n = 0;
        bytes = 0;
        do {
            w->group[n++] = job;
            bytes += job->stored_len;
        } while (n < w->group_max && bytes < GROUP_MAX_BYTES &&
                 receive_job(w, &job, ZMQ_DONTWAIT) == 0);
        commit_group(w, w->group, n);
        for (i = 0; i < n; i++) {
            answer_job(w, w->group[i]);
            write_job_free(w->group[i]);
        }
    }
    if (errno != ETERM) {
        log_error("writer", "cannot receive: %s", zmq_strerror(errno));
        broker_fail();
    }
    return NULL;
}

int writer_start(writer **out, void *zmq_ctx, store *db, replay *rp,
                 broker_identity *id, unsigned group_max, once_error *err)
{
    writer *w;
    int rc, linger = 0;

    *out = NULL;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    w->db = db;
    w->rp = rp;
    w->id = id;
    w->group_max = group_max > 0 ? group_max : 1;
    w->group = calloc(w->group_max, sizeof(*w->group));
    w->jobs = zmq_socket(zmq_ctx, ZMQ_PULL);
    w->replies = zmq_socket(zmq_ctx, ZMQ_PUSH);
    if (w->group == NULL || w->jobs == NULL || w->replies == NULL ||
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
    free(w->group);
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
    byte_buffer_free(&w->error);
    free(w->group);
    free(w);
}
