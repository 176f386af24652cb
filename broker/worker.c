/*
 * worker.c - onced's workers: each takes jobs from the I/O thread
 * (server.c), checks the envelope and hands it to the handler of its kind
 * (handle_request.c, handle_write.c), or answers a ping itself.
 *
 * The checks, in order (docs/PROTOCOL.md): the department's share of
 * memory (in the I/O thread); one frame; then those that need only the
 * bytes, in wire_check.c: size; the envelope holds only its fields, each
 * once; a sender of clean text; version 1; a kind a
 * department may send; a non-zero session and seq, reply_to 0; then
 * sender equals the connection's department; the department exists and is
 * active (it may have been suspended since it connected); the signature;
 * the clock; the replay window, marked only after the signature verified,
 * with the department's limits on sessions and envelopes in flight
 * (replay.c: QUOTA_EXCEEDED, and only for that department). Then the
 * kind's own checks, which start with wire_check.c's decoding of the body
 * (its fields, their counts, clean text). Refusals are logged from the
 * sender check on (before it the envelope is not known to be a
 * department's), except a refusal whose envelope does not verify under the
 * sender's key for another reason than BAD_SIGNATURE: the log must not
 * attribute to a department an envelope it did not sign (docs/AUDIT.md,
 * the evidence rules). A logged refusal of a large envelope keeps only its
 * size and digest as evidence (answer_logged), and a department's
 * refusals are logged within its budget (refusal_budget.c); over it they
 * are answered QUOTA_EXCEEDED, unlogged and unkept. Every refusal is an
 * Error with a stable code and a message for people, and a log line (over
 * the budget, a count in one line every 10 s); nothing a
 * client sends can stop a worker. Messages never carry a subject (a credit
 * code or ID number): log lines name a record by diag_subject_tag instead.
 *
 * Memory. Each worker decodes protobuf into its own arena, reset after each
 * message, keeps its answer buffers across messages and keeps one LMDB read
 * transaction that it renews and resets, so a request costs few mallocs.
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "digest.h"
#include "directory.h"
#include "metrics.h"
#include "worker.h"
#include "wire_check.h"


#define WORKER_ARENA_BYTES (128 * 1024)

int worker_prepare(worker *w, once_error *err)
{
    uint8_t *block = malloc(WORKER_ARENA_BYTES);
    int rc;

    if (block == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    arena_init(&w->arena, block, WORKER_ARENA_BYTES);
    w->alloc = arena_allocator(&w->arena);
    if ((rc = store_begin(w->srv->db, 1, &w->txn, err)) < 0)
        return rc;
    mdb_txn_reset(w->txn);
    return 0;
}

void worker_release(worker *w)
{
    if (w->txn != NULL)
        mdb_txn_abort(w->txn);
    arena_reset(&w->arena);
    free(w->arena.base);
    byte_buffer_free(&w->answer);
    byte_buffer_free(&w->scratch);
}

/* The stored answer of a logged exchange: true when j was answered from
 * the replies table (the original answer, or REPLAY when that seq answered
 * other bytes), false when nothing is stored for it.
 *
 * fresh: the replay window said the original was answered, and so
 * committed, before this copy was checked, but the worker's read
 * transaction began earlier (when it took the job) and may predate that
 * commit; then a miss is looked up again in a new snapshot. */
static bool answer_from_table(job *j, bool fresh)
{
    worker *w = j->w;
    Once__StoredReply *stored;
    once_error err;
    int rc;

    rc = replay_reply_find(w->txn, w->srv->db, j->env->sent_at,
                           j->env->sender, j->env->session, j->env->seq,
                           j->digest, &w->alloc, &stored, &err);
    if (rc == -ONCE_ERR_NOT_FOUND && fresh) {
        mdb_txn_reset(w->txn);
        rc = mdb_txn_renew(w->txn);
        if (rc != MDB_SUCCESS) {
            refuse(j, ONCE_ERR_INTERNAL, "cannot read the database: %s",
                   mdb_strerror(rc));
            return true;
        }
        rc = replay_reply_find(w->txn, w->srv->db, j->env->sent_at,
                               j->env->sender, j->env->session, j->env->seq,
                               j->digest, &w->alloc, &stored, &err);
    }
    if (rc == -ONCE_ERR_NOT_FOUND)
        return false;
    j->keep_reply = false; /* the stored answer stays the original's */
    if (rc < 0) {
        refuse(j, ONCE_ERR_INTERNAL, "%s", err.message);
        return true;
    }
    if (rc == 1) {
        refuse(j, ONCE_ERR_REPLAY, "seq %llu of this session was already "
               "used by another envelope", (unsigned long long)j->env->seq);
        return true;
    }
    diag_debug("worker", "answered a retry of %s seq %llu from %s with its "
              "stored answer", kind_name(j->env->kind),
              (unsigned long long)j->env->seq, j->user_id);
    if (stored->record_version != 0)
        request_answer_rebuild(j, stored); /* a granted request's */
    else
        answer(j, stored->kind, stored->body.data, stored->body.len);
    return true;
}

/* Applies the replay window. Returns true when the envelope is to be
 * executed, false when it has been answered (or needs no answer). */
static bool check_replay(job *j)
{
    worker *w = j->w;
    Once__Envelope *e = j->env;
    replay_answer kept;
    /* Every logged exchange keeps its answer, receipt included, in the
     * replies table: a retry must get it again, never a second leaf. */
    bool write = is_logged_kind(e->kind);

    switch (replay_admit(w->srv->replay, e->sender, e->session, e->seq,
                         j->digest, monotonic_ms(), &kept)) {
    case REPLAY_ADMITTED:
        j->admitted = true;
        j->keep_reply = true;
        /* After a restart the window is empty; the table still knows the
         * publishes answered before it. */
        return !(write && answer_from_table(j, false));
    case REPLAY_IN_FLIGHT:
        diag_debug("worker", "dropped a copy of %s seq %llu from %s: the "
                  "original is being answered", kind_name(e->kind),
                  (unsigned long long)e->seq, j->user_id);
        return false;
    case REPLAY_ANSWERED:
        if (kept.body != NULL) {
            diag_debug("worker", "answered a retry of %s seq %llu from %s "
                      "with its original answer", kind_name(e->kind),
                      (unsigned long long)e->seq, j->user_id);
            answer(j, kept.kind, kept.body, kept.len);
            free(kept.body);
            return false;
        }
        /* The answer was not kept in memory (too large, over the budget,
         * or there was none). */
        return !(write && answer_from_table(j, true));
    case REPLAY_UNKNOWN:
        if (write && answer_from_table(j, true))
            return false;
        refuse(j, ONCE_ERR_REPLAY, "seq %llu of this session was already "
               "used, or is more than %d below the highest seen",
               (unsigned long long)e->seq, REPLAY_WINDOW);
        return false;
    case REPLAY_REFUSED:
        refuse(j, ONCE_ERR_REPLAY, "seq %llu of this session was already "
               "used by another envelope", (unsigned long long)e->seq);
        return false;
    case REPLAY_NO_ROOM:
        refuse(j, ONCE_ERR_UNAVAILABLE, "the broker is tracking too many "
               "sessions; retry later");
        return false;
    case REPLAY_OVER_SESSIONS:
        refuse(j, ONCE_ERR_QUOTA_EXCEEDED, "department %s is at its limit "
               "of %u sessions (max_sessions_per_department = %u); retry "
               "on a session it has, or once one has been idle for %llu s",
               e->sender, w->srv->cfg->max_sessions_per_department,
               w->srv->cfg->max_sessions_per_department,
               (unsigned long long)(2 * w->srv->skew_ms / 1000 + 1));
        return false;
    case REPLAY_OVER_IN_FLIGHT:
        refuse(j, ONCE_ERR_QUOTA_EXCEEDED, "department %s is at its limit "
               "of %u envelopes in flight (max_in_flight_per_department = "
               "%u); retry once answers arrive", e->sender,
               w->srv->cfg->max_in_flight_per_department,
               w->srv->cfg->max_in_flight_per_department);
        return false;
    }
    return false;
}

static void handle(job *j)
{
    worker *w = j->w;
    Once__Envelope *e;
    once_error err;
    uint64_t now, skew;
    int rc;

    rc = wire_check_envelope(j->bytes, j->len, &w->alloc, &e, &err);
    j->env = e;
    if (e != NULL)
        j->reply_to = e->seq;
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return;
    }
    digest_sha256(j->digest, j->bytes, j->len);
    /* From here on the envelope names a department: its refusals are
     * exchanges too, and logged. */
    j->logged = is_logged_kind(e->kind);
    if (strcmp(e->sender, j->user_id) != 0) {
        refuse(j, ONCE_ERR_SENDER_MISMATCH, "the envelope's sender is not "
               "%s, the department this connection's key belongs to",
               j->user_id);
        return;
    }
    rc = policy_department_get(w->txn, w->srv->db, e->sender, &j->dept, &err);
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return;
    }
    if (j->dept.status != DEPARTMENT_ACTIVE) {
        refuse(j, ONCE_ERR_SUSPENDED, "department %s is suspended",
               e->sender);
        return;
    }
    rc = envelope_verify(e, j->dept.public_key);
    if (rc < 0) {
        refuse(j, rc, rc == -ONCE_ERR_BAD_SIGNATURE
                          ? "the envelope signature does not verify with "
                            "department %s's key"
                          : "the envelope of %s cannot be checked",
               e->sender);
        return;
    }
    j->verified = true;
    now = once_now_ms();
    skew = e->sent_at > now ? e->sent_at - now : now - e->sent_at;
    if (skew > w->srv->skew_ms) {
        refuse(j, ONCE_ERR_CLOCK_SKEW, "sent_at is %llu s %s the broker's "
               "clock; the limit is %llu s",
               (unsigned long long)(skew / 1000),
               e->sent_at > now ? "ahead of" : "behind",
               (unsigned long long)(w->srv->skew_ms / 1000));
        return;
    }
    if (!check_replay(j))
        return;

    switch (e->kind) {
    case ONCE__KIND__KIND_PING:
        if (e->body.len != 0)
            refuse(j, ONCE_ERR_MALFORMED, "a ping has an empty body");
        else
            answer(j, ONCE__KIND__KIND_RESPONSE, w->srv->ping_answer.data,
                   w->srv->ping_answer.len);
        break;
    case ONCE__KIND__KIND_REQUEST:
        handle_request(j);
        break;
    case ONCE__KIND__KIND_DIRECTORY_REQUEST: {
        uint8_t *d = NULL;
        size_t len = 0;

        if ((rc = directory_answer(w->txn, w->srv->db, &w->srv->directory_key,
                                   e->sender, e->body.data, e->body.len, &d,
                                   &len, &err)) < 0)
            refuse(j, rc, "%s", err.message);
        else
            answer(j, ONCE__KIND__KIND_DIRECTORY, d, len);
        free(d);
        break;
    }
    case ONCE__KIND__KIND_SUBSCRIBE:
    case ONCE__KIND__KIND_UNSUBSCRIBE:
        handle_subscription(j);
        break;
    case ONCE__KIND__KIND_SUBSCRIPTIONS_LIST:
        handle_subscriptions_list(j);
        break;
    case ONCE__KIND__KIND_NOTICES_PULL:
        handle_notices_pull(j);
        break;
    case ONCE__KIND__KIND_NOTICE_ACK:
        handle_notice_ack(j);
        break;
    default:
        handle_write(j);
        break;
    }
}

/* Receives one job: [routing id][flags, received_ns, department id]
 * [envelope] (worker.h). */
static int receive_job(worker *w, zmq_msg_t parts[3])
{
    int i;

    for (i = 0; i < 3; i++) {
        zmq_msg_init(&parts[i]);
        while (zmq_msg_recv(&parts[i], w->jobs, 0) < 0) {
            if (errno != EINTR) {
                int k;

                for (k = 0; k <= i; k++)
                    zmq_msg_close(&parts[k]);
                return -1;
            }
        }
    }
    return 0;
}

void *worker_main(void *arg)
{
    worker *w = arg;
    zmq_msg_t parts[3];
    char name[16];

    /* For top -H and perf; 15 characters at most: index < 96. */
    snprintf(name, sizeof(name), "onced-worker-%u", w->index);
    pthread_setname_np(pthread_self(), name);
    while (receive_job(w, parts) == 0) {
        const uint8_t *meta = zmq_msg_data(&parts[1]);
        size_t meta_len = zmq_msg_size(&parts[1]);
        job j;
        int rc;

        metrics_job_taken();
        memset(&j, 0, sizeof(j));
        j.w = w;
        j.routing_id = &parts[0];
        j.bytes = zmq_msg_data(&parts[2]);
        j.len = zmq_msg_size(&parts[2]);
        if (meta_len > JOB_ID_OFFSET &&
            meta_len <= JOB_ID_OFFSET + ONCE_MAX_NAME) {
            memcpy(&j.received_ns, meta + JOB_STAMP_OFFSET,
                   sizeof(j.received_ns));
            memcpy(j.user_id, meta + JOB_ID_OFFSET, meta_len - JOB_ID_OFFSET);
        }
        rc = mdb_txn_renew(w->txn);
        if (rc != MDB_SUCCESS) {
            refuse(&j, ONCE_ERR_INTERNAL, "cannot read the database: %s",
                   mdb_strerror(rc));
        } else {
            if (meta_len >= 1 && (meta[0] & JOB_MULTIPART))
                refuse(&j, ONCE_ERR_MALFORMED, "send each envelope as one "
                       "frame");
            else
                handle(&j);
            mdb_txn_reset(w->txn);
        }
        /* An admitted envelope left unanswered (out of memory on the
         * way) still ends its flight, or its department would count it
         * forever; with no answer kept, a retry executes it afresh. */
        if (j.admitted && !j.finished)
            replay_release(w->srv->replay, j.env->sender, j.env->session,
                           j.env->seq);
        arena_reset(&w->arena);
        if (!j.answered && send_token(w->replies, &parts[0]) < 0)
            diag_error("worker", "cannot account a message to the I/O "
                      "thread: %s", zmq_strerror(errno));
        zmq_msg_close(&parts[0]);
        zmq_msg_close(&parts[1]);
        zmq_msg_close(&parts[2]);
    }
    if (errno != ETERM) {
        diag_error("worker", "worker %u cannot receive: %s", w->index,
                  zmq_strerror(errno));
        broker_fail();
    }
    return NULL;
}
