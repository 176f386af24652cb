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
 * Accounting. Every job handed to a worker comes back to the I/O thread as
 * exactly one message: the answer, or a token when there is nothing to
 * send (a duplicate of an envelope whose answer is on its way): the job's
 * routing id frame alone, which carries its charge back. That is what
 * lets server_drain wait until every message read has been answered, and
 * publishes committed, before the broker exits; it waits up to a
 * deadline, since a thread that died (broker_fail) never answers its
 * share.
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
#include <signal.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit_hash.h"
#include "digest.h"
#include "directory.h"
#include "envelope.h"
#include "evidence.h"
#include "faults.h"
#include "diag.h"
#include "metrics.h"
#include "pending.h"
#include "policy.h"
#include "record_internal.h"
#include "refusal_budget.h"
#include "registry.h"
#include "server.h"
#include "wire_check.h"
#include "wire_schema.h"
#include "writer.h"
#include "zap.h"

#define CONTROL_ENDPOINT "inproc://onced-control"
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
#define WORKER_ARENA_BYTES (128 * 1024)
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

/* First byte of the job frame that carries the department id. */
#define JOB_MULTIPART 0x01

/* ---- a bump allocator for protobuf-c ----------------------------------- */

typedef struct overflow_block {
    struct overflow_block *next;
    max_align_t data[];
} overflow_block;

typedef struct arena {
    uint8_t *base;
    size_t size;
    size_t used;
    overflow_block *overflow; /* what did not fit, freed at reset */
} arena;

static void *arena_alloc(void *data, size_t size)
{
    arena *a = data;
    size_t rounded = (size + alignof(max_align_t) - 1) &
                     ~(alignof(max_align_t) - 1);
    overflow_block *o;

    if (rounded >= size && rounded <= a->size - a->used) {
        void *p = a->base + a->used;

        a->used += rounded;
        return p;
    }
    if (size > SIZE_MAX - sizeof(overflow_block))
        return NULL;
    o = malloc(sizeof(overflow_block) + size);
    if (o == NULL)
        return NULL;
    o->next = a->overflow;
    a->overflow = o;
    return o->data;
}

/* Everything is released at once by arena_reset. */
static void arena_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

static void arena_reset(arena *a)
{
    while (a->overflow != NULL) {
        overflow_block *next = a->overflow->next;

        free(a->overflow);
        a->overflow = next;
    }
    a->used = 0;
}

/* ---- the server ------------------------------------------------------- */

typedef struct worker {
    struct server *srv;
    unsigned index;
    pthread_t thread;
    bool started;
    void *jobs;     /* PULL from the I/O thread */
    void *replies;  /* PUSH to the I/O thread */
    void *writes;   /* PUSH to the writer */
    MDB_txn *txn;   /* read transaction, renewed per message */
    arena arena;
    ProtobufCAllocator alloc;
    byte_buffer answer;   /* encoded Response or Error */
    byte_buffer scratch;  /* record signing input */
} worker;

struct server {
    const broker_config *cfg;
    store *db;
    replay *replay;
    refusal_budget *refusals; /* logged refusals per department */
    broker_identity *identity;
    void *router;
    void *jobs_out;     /* PUSH to the workers */
    void *replies_in;   /* PULL from the workers and the writer */
    void *control;      /* PAIR: STOP from server_drain */
    void *control_main; /* the main thread's end */
    pthread_t io_thread;
    bool io_started;
    worker *workers;
    unsigned worker_count;
    conn_limit *connections;
    pending pending;       /* the I/O thread's */
    byte_buffer io_answer; /* the I/O thread's refusals */
    uint64_t pending_full_logged_ms;
    uint64_t skew_ms;
    uint8_t audit_key[AUDIT_KEY_BYTES];
    /* The answer to every ping: a Response naming the exchange log, its
     * origin and checkpoint key (PROTOCOL.md 4.4). Made at start. */
    byte_buffer ping_answer;
    once_keypair directory_key; /* signs directories (directory.c) */
};

/* One message being answered by a worker. */
typedef struct job {
    worker *w;
    zmq_msg_t *routing_id;
    char user_id[ONCE_MAX_NAME + 1];
    const uint8_t *bytes;
    size_t len;
    Once__Envelope *env;
    uint64_t reply_to;
    uint8_t digest[32];
    bool admitted;  /* replay window marked it: record its answer */
    bool finished;  /* its flight ended, or the writer will end it */
    bool answered;  /* answered, or handed to the writer */
    bool logged;    /* a publish, revoke or request from a known sender */
    bool verified;  /* the envelope signature verified */
    bool keep_reply; /* store the answer in the replies table */
    bool failure;   /* refused for the broker's own failure: kept nowhere */
    bool want_proof;
    leaf_facts leaf;
    department dept;
    char tag[DIAG_SUBJECT_TAG_CHARS]; /* subject tag, "" when none */
    uint64_t received_ns; /* for the latency metric (metrics.c) */
} job;

static const char *kind_name(int kind)
{
    switch (kind) {
    case ONCE__KIND__KIND_PUBLISH: return "publish";
    case ONCE__KIND__KIND_REVOKE: return "revoke";
    case ONCE__KIND__KIND_REQUEST: return "request";
    case ONCE__KIND__KIND_PING: return "ping";
    default: return "message";
    }
}

static bool is_logged_kind(int kind)
{
    return kind == ONCE__KIND__KIND_PUBLISH ||
           kind == ONCE__KIND__KIND_REVOKE || kind == ONCE__KIND__KIND_REQUEST;
}

/* Hands a prepared write job to the writer with everything the job knows
 * for its leaf; the writer answers once the leaf is durable. */
static void to_writer(job *j, write_job *wj, int answer_kind, int refusal)
{
    worker *w = j->w;

    snprintf(wj->sender, sizeof(wj->sender), "%s", j->env->sender);
    wj->session = j->env->session;
    wj->seq = j->env->seq;
    wj->sent_at = j->env->sent_at;
    wj->leaf = j->leaf;
    wj->leaf.time = once_now_ms();
    wj->leaf.kind = j->env->kind;
    snprintf(wj->leaf.department, sizeof(wj->leaf.department), "%s",
             j->env->sender);
    memcpy(wj->leaf.envelope_digest, j->digest, sizeof(j->digest));
    if (wj->evidence_len < j->len) /* answer_logged left it out */
        evidence_omitted_encode(wj->evidence, j->len, j->digest);
    else
        memcpy(wj->evidence, j->bytes, j->len);
    memcpy(wj->subject_tag, j->tag, sizeof(wj->subject_tag));
    wj->answer_kind = answer_kind;
    wj->refusal = refusal;
    wj->want_proof = j->want_proof;
    wj->replay_admitted = j->admitted && !j->finished;
    /* A failure is logged, but a retry is to be executed again. */
    wj->store_reply = j->admitted && j->keep_reply &&
                      !(answer_kind == ONCE__KIND__KIND_ERROR &&
                        error_is_failure(refusal));
    wj->received_ns = j->received_ns;
    zmq_msg_move(&wj->routing_id, j->routing_id);
    if (fault_take(FAULT_HAND_OFF) ||
        zmq_send(w->writes, &wj, sizeof(wj), 0) != (int)sizeof(wj)) {
        /* The caller answers UNAVAILABLE, unlogged (refuse). */
        diag_error("worker", "cannot pass an exchange to the writer: %s",
                  zmq_strerror(errno));
        zmq_msg_move(j->routing_id, &wj->routing_id);
        write_job_free(wj);
        return;
    }
    j->answered = true; /* the writer answers */
    j->finished = true; /* and ends the envelope's flight */
    metrics_to_writer();
}

/* Logs an answer that stores nothing (a request's, or a refusal) and
 * sends it once its leaf is committed. False when out of memory. A
 * refusal's envelope over EVIDENCE_REFUSAL_MAX bytes is not kept, only its
 * size and digest (evidence.c): what a department may make the log keep
 * forever by being refused stays small. */
static bool answer_logged(job *j, int kind, int refusal, const uint8_t *body,
                          size_t len)
{
    write_job *wj = write_job_new(0, len,
                                  refusal != 0 && j->len > EVIDENCE_REFUSAL_MAX
                                      ? EVIDENCE_OMITTED_BYTES
                                      : j->len);

    if (wj == NULL)
        return false;
    memcpy(wj->answer, body, len);
    to_writer(j, wj, kind, refusal);
    return j->answered;
}

/* Sends an answer and, for an envelope the replay window admitted, keeps it
 * for a retry. */
static void answer(job *j, int kind, const uint8_t *body, size_t len)
{
    worker *w = j->w;
    zmq_msg_t reply;

    j->answered = true;
    if (j->admitted && !j->finished && j->failure)
        replay_release(w->srv->replay, j->env->sender, j->env->session,
                       j->env->seq);
    else if (j->admitted && !j->finished)
        replay_finish(w->srv->replay, j->env->sender, j->env->session,
                      j->env->seq, kind, body, len);
    j->finished = true;
    if (reply_message(w->srv->identity, kind, j->reply_to, body, len,
                      &reply) < 0) {
        diag_error("worker", "out of memory for an answer");
        j->answered = false; /* the token still accounts for the job */
        return;
    }
    if (send_reply(w->replies, j->routing_id, &reply) < 0)
        diag_error("worker", "cannot pass an answer to the I/O thread: %s",
                  zmq_strerror(errno));
}

/* Refusals that suggest a broken or hostile client, rather than a policy
 * decision, are logged as warnings. */
static bool suspicious(int code)
{
    switch (code) {
    case ONCE_ERR_MALFORMED:
    case ONCE_ERR_INVALID_TEXT:
    case ONCE_ERR_BAD_SIGNATURE:
    case ONCE_ERR_SENDER_MISMATCH:
    case ONCE_ERR_REPLAY:
    case ONCE_ERR_CLOCK_SKEW:
    case ONCE_ERR_TOO_LARGE:
    case ONCE_ERR_UNSUPPORTED:
    case ONCE_ERR_INTERNAL:
    case ONCE_ERR_STORAGE_FULL:
        return true;
    default:
        return false;
    }
}

/* A refusal is logged when the envelope names a department and a logged
 * kind, and the evidence will bear the leaf out: the sender's key verifies
 * the envelope, or the refusal is that it does not (BAD_SIGNATURE), or the
 * sender is not a department at all (UNKNOWN_SENDER, which has no key). */
static bool refusal_is_logged(job *j, int code)
{
    worker *w = j->w;
    department d;
    once_error err;

    if (!j->logged)
        return false;
    if (j->verified || code == ONCE_ERR_UNKNOWN_SENDER ||
        code == ONCE_ERR_BAD_SIGNATURE)
        return true;
    if (policy_department_get(w->txn, w->srv->db, j->env->sender, &d,
                              &err) < 0 ||
        envelope_verify(j->env, d.public_key) < 0)
        return false;
    j->verified = true;
    return true;
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Answers a logged refusal over its department's budget (refusal_budget.c)
 * QUOTA_EXCEEDED instead, unlogged; the budget counts it and writes the
 * log lines, so a flood adds neither leaves nor a line each. Like a
 * failure it is not the envelope's answer: the same bytes may come
 * again. */
static void refuse_over_budget(job *j, int code, uint64_t wait_ms)
{
    char message[ONCE_ERROR_MESSAGE_MAX];
    worker *w = j->w;

    /* wait_ms is below a day (logged_refusals_window_seconds). */
    snprintf(message, sizeof(message), "%s is over its budget of logged "
             "refusals (max_logged_refusals_per_department = %u per %u s): "
             "this %s refusal was not logged; retry in %u s", j->user_id,
             refusal_budget_burst(w->srv->refusals),
             refusal_budget_window_seconds(w->srv->refusals),
             once_error_name(code), (unsigned)((wait_ms + 999) / 1000));
    j->failure = true;
    if (error_body(&w->answer, ONCE_ERR_QUOTA_EXCEEDED, message) < 0) {
        diag_error("worker", "out of memory for an error answer");
        return;
    }
    answer(j, ONCE__KIND__KIND_ERROR, w->answer.data, w->answer.len);
}

static void refuse(job *j, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(job *j, int code, const char *fmt, ...)
{
    char message[ONCE_ERROR_MESSAGE_MAX];
    worker *w = j->w;
    uint64_t wait_ms;
    bool logged;
    va_list ap;

    if (code < 0)
        code = -code;
    if (code >= ONCE_ERR_INVALID_ARGUMENT)
        code = ONCE_ERR_INTERNAL;
    /* The budget is the connection's department's: it sent the bytes. */
    logged = refusal_is_logged(j, code);
    if (logged && !refusal_budget_take(w->srv->refusals, j->user_id, code,
                                       monotonic_ms(), &wait_ms)) {
        refuse_over_budget(j, code, wait_ms);
        return;
    }
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    (suspicious(code) ? diag_warn : diag_info)(
        "worker", "refused %s from %s (session %016llx seq %llu%s%s): %s: %s",
        kind_name(j->env != NULL ? (int)j->env->kind : 0), j->user_id,
        (unsigned long long)(j->env != NULL ? j->env->session : 0),
        (unsigned long long)j->reply_to, j->tag[0] ? ", subject #" : "",
        j->tag, once_error_name(code), message);
    j->failure = error_is_failure(code);
    if (error_body(&w->answer, code, message) < 0) {
        diag_error("worker", "out of memory for an error answer");
        return;
    }
    if (logged) {
        if (answer_logged(j, ONCE__KIND__KIND_ERROR, code, w->answer.data,
                          w->answer.len))
            return;
        /* A refusal that must be logged leaves only with its leaf; without
         * one the broker did nothing it can answer for. */
        j->failure = true;
        if (error_body(&w->answer, ONCE_ERR_UNAVAILABLE, "the broker "
                       "cannot log this exchange now; send it again "
                       "later") < 0) {
            diag_error("worker", "out of memory for an error answer");
            return;
        }
    }
    answer(j, ONCE__KIND__KIND_ERROR, w->answer.data, w->answer.len);
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

/* ---- requests -------------------------------------------------------- */

/* A stored record and the status in its signed header. */
typedef struct served_record {
    Once__StoredRecord *stored;
    Once__RecordStatus status;
    uint64_t version;
} served_record;

static int load_record(job *j, const char *type, const char *subject,
                       uint64_t version, served_record *out)
{
    worker *w = j->w;
    Once__RecordHeader *h;
    once_error err;
    MDB_val val;
    int rc;

    rc = registry_get_record(w->txn, w->srv->db, type, subject, version, &val,
                             &out->version, &err);
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return rc;
    }
    out->stored = once__stored_record__unpack(&w->alloc, val.mv_size,
                                              val.mv_data);
    if (out->stored == NULL || out->stored->record == NULL) {
        refuse(j, ONCE_ERR_INTERNAL, "version %llu of this %s record is "
               "stored corrupt", (unsigned long long)out->version, type);
        return -ONCE_ERR_INTERNAL;
    }
    h = once__record_header__unpack(&w->alloc,
                                     out->stored->record->header.len,
                                     out->stored->record->header.data);
    if (h == NULL) {
        refuse(j, ONCE_ERR_INTERNAL, "the stored header of version %llu of "
               "this %s record does not decode",
               (unsigned long long)out->version, type);
        return -ONCE_ERR_INTERNAL;
    }
    out->status = h->status;
    return 0;
}

static void handle_request(job *j)
{
    worker *w = j->w;
    Once__Envelope *e = j->env;
    Once__Disclosure *granted[ONCE_MAX_FIELDS];
    Once__Response response = ONCE__RESPONSE__INIT;
    Once__Request *q;
    served_record rec;
    record_type type;
    grant g;
    once_error err;
    size_t i, len;
    int rc;

    rc = wire_check_request(e->body.data, e->body.len, &w->alloc, &q, &err);
    if (q != NULL)
        j->want_proof = q->want_proof;
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return;
    }
    snprintf(j->leaf.record_type, sizeof(j->leaf.record_type), "%s",
             q->type);
    snprintf(j->leaf.purpose, sizeof(j->leaf.purpose), "%s", q->purpose);
    snprintf(j->leaf.case_id, sizeof(j->leaf.case_id), "%s", q->case_id);
    audit_subject_hash(w->srv->audit_key, q->type, q->subject,
                       j->leaf.subject_hash);
    j->leaf.has_subject_hash = true;
    rc = policy_type_get(w->txn, w->srv->db, q->type, &type, &err);
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return;
    }
    diag_subject_tag(j->tag, q->type, q->subject);
    rc = once_subject_validate(type.subject_kind, q->subject, &err);
    if (rc < 0) {
        refuse(j, ONCE_ERR_INVALID_SUBJECT, "%s", err.message);
        return;
    }
    rc = policy_grant_get(w->txn, w->srv->db, e->sender, q->type, q->purpose,
                          &g, &err);
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return;
    }
    /* The latest version decides: once revoked, a record is answered with
     * its revocation, whichever version is asked for. */
    if (load_record(j, q->type, q->subject, 0, &rec) < 0)
        return;
    if (rec.status != ONCE__RECORD_STATUS__STATUS_REVOKED &&
        q->version != 0 && q->version != rec.version &&
        load_record(j, q->type, q->subject, q->version, &rec) < 0)
        return;

    j->leaf.record_version = rec.version;
    digest_sha256(j->leaf.record_digest, rec.stored->record->header.data,
                  rec.stored->record->header.len);
    j->leaf.has_record_digest = true;
    response.type = q->type;
    response.subject = q->subject;
    response.version = rec.version;
    response.status = rec.status;
    response.record = rec.stored->record;
    response.disclosures = granted;
    if (rec.status == ONCE__RECORD_STATUS__STATUS_VALID) {
        for (i = 0; i < rec.stored->n_disclosures && i < ONCE_MAX_FIELDS;
             i++) {
            Once__Disclosure *d = rec.stored->disclosures[i];

            if (policy_grant_allows_field(&g, d->name))
                granted[response.n_disclosures++] = d;
        }
    }
    len = once__response__get_packed_size(&response);
    if (byte_buffer_reserve(&w->answer, len) < 0) {
        refuse(j, ONCE_ERR_INTERNAL, "out of memory for the answer");
        return;
    }
    w->answer.len = once__response__pack(&response, w->answer.data);
    diag_debug("worker", "served %s v%llu%s to %s for %s: %zu of %zu fields",
              q->type, (unsigned long long)rec.version,
              rec.status == ONCE__RECORD_STATUS__STATUS_REVOKED ? " (revoked)"
                                                                : "",
              e->sender, q->purpose, response.n_disclosures,
              rec.stored->n_disclosures);
    if (!answer_logged(j, ONCE__KIND__KIND_RESPONSE, 0, w->answer.data,
                       w->answer.len))
        refuse(j, ONCE_ERR_INTERNAL, "the broker cannot log the answer now");
}

/* ---- publishes and revocations ---------------------------------------- */

static int verify_record_signature(worker *w, const Once__SignedRecord *rec,
                                   const uint8_t pk[ONCE_PUBLIC_KEY_BYTES])
{
    size_t len = RECORD_DOMAIN_BYTES + rec->header.len;

    if (rec->signature.len != ONCE_SIGNATURE_BYTES)
        return -ONCE_ERR_BAD_SIGNATURE;
    if (byte_buffer_reserve(&w->scratch, len) < 0)
        return -ONCE_ERR_NO_MEMORY;
    memcpy(w->scratch.data, RECORD_DOMAIN, RECORD_DOMAIN_BYTES);
    memcpy(w->scratch.data + RECORD_DOMAIN_BYTES, rec->header.data,
           rec->header.len);
    if (crypto_sign_verify_detached(rec->signature.data, w->scratch.data, len,
                                    pk) != 0)
        return -ONCE_ERR_BAD_SIGNATURE;
    return 0;
}

/* Every header field has exactly one disclosure, which matches its
 * digest. */
static int check_disclosures(job *j, const Once__RecordHeader *h,
                             Once__Disclosure *const *disclosures, size_t n)
{
    bool seen[ONCE_MAX_FIELDS] = { false };
    uint8_t digest[ONCE_DIGEST_BYTES];
    size_t i, k;

    if (n != h->n_fields) {
        refuse(j, ONCE_ERR_INVALID_RECORD, "the record has %zu fields but "
               "%zu disclosures; every field needs exactly one", h->n_fields,
               n);
        return -1;
    }
    for (i = 0; i < n; i++) {
        const Once__Disclosure *d = disclosures[i];

        if (d->value.len > ONCE_MAX_FIELD_VALUE) {
            refuse(j, ONCE_ERR_TOO_LARGE, "a field value is over %d bytes",
                   ONCE_MAX_FIELD_VALUE);
            return -1;
        }
        if (d->salt.len != ONCE_SALT_BYTES || !record_name_is_valid(d->name)) {
            refuse(j, ONCE_ERR_INVALID_RECORD, "disclosure %zu needs a "
                   "%d-byte salt and a valid field name", i + 1,
                   ONCE_SALT_BYTES);
            return -1;
        }
        for (k = 0; k < h->n_fields; k++)
            if (strcmp(h->fields[k]->name, d->name) == 0)
                break;
        if (k == h->n_fields || seen[k]) {
            refuse(j, ONCE_ERR_INVALID_RECORD, "disclosure %s is %s",
                   d->name, k == h->n_fields ? "not a field of the record"
                                             : "given twice");
            return -1;
        }
        if (record_disclosure_digest(d->salt.data, d->name, d->value.data,
                                     d->value.len, digest) < 0 ||
            sodium_memcmp(digest, h->fields[k]->digest.data,
                          ONCE_DIGEST_BYTES) != 0) {
            refuse(j, ONCE_ERR_INVALID_RECORD, "disclosure %s does not match "
                   "its digest in the signed header", d->name);
            return -1;
        }
        seen[k] = true;
    }
    return 0;
}

/* Encodes the record to store and the answer, and hands both to the
 * writer. */
static void hand_to_writer(job *j, const Once__RecordHeader *h,
                           Once__SignedRecord *rec,
                           Once__Disclosure **disclosures, size_t n)
{
    Once__StoredRecord stored = ONCE__STORED_RECORD__INIT;
    Once__Response response = ONCE__RESPONSE__INIT;
    write_job *wj;

    stored.record = rec;
    stored.disclosures = disclosures;
    stored.n_disclosures = n;
    stored.stored_at = once_now_ms();
    response.type = h->type;
    response.subject = h->subject;
    response.version = h->version;
    response.status = h->status;
    wj = write_job_new(once__stored_record__get_packed_size(&stored),
                       once__response__get_packed_size(&response), j->len);
    if (wj == NULL) {
        refuse(j, ONCE_ERR_INTERNAL, "out of memory for the publish");
        return;
    }
    once__stored_record__pack(&stored, wj->stored);
    once__response__pack(&response, wj->answer);
    snprintf(wj->subject, sizeof(wj->subject), "%s", h->subject);
    to_writer(j, wj, ONCE__KIND__KIND_RESPONSE, 0);
    if (!j->answered)
        refuse(j, ONCE_ERR_INTERNAL, "the broker cannot store now");
}

static void handle_write(job *j)
{
    worker *w = j->w;
    Once__Envelope *e = j->env;
    bool publish = e->kind == ONCE__KIND__KIND_PUBLISH;
    Once__RecordStatus wanted = publish ? ONCE__RECORD_STATUS__STATUS_VALID
                                        : ONCE__RECORD_STATUS__STATUS_REVOKED;
    Once__Disclosure **disclosures = NULL;
    Once__SignedRecord *rec = NULL;
    Once__RecordHeader *h = NULL;
    record_type type;
    once_error err;
    uint64_t latest;
    size_t n = 0, i;
    int rc;

    if (publish) {
        Once__Publish *p;

        rc = wire_check_publish(e->body.data, e->body.len, &w->alloc, &p,
                                &err);
        if (p != NULL) {
            rec = p->record;
            disclosures = p->disclosures;
            n = p->n_disclosures;
            j->want_proof = p->want_proof;
        }
    } else {
        Once__Revoke *r;

        rc = wire_check_revoke(e->body.data, e->body.len, &w->alloc, &r,
                               &err);
        if (r != NULL) {
            rec = r->record;
            j->want_proof = r->want_proof;
        }
    }
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return;
    }
    rc = record_header_parse(rec->header.data, rec->header.len, &h, &err);
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return;
    }
    diag_subject_tag(j->tag, h->type, h->subject);
    snprintf(j->leaf.record_type, sizeof(j->leaf.record_type), "%s",
             h->type);
    j->leaf.record_version = h->version;
    digest_sha256(j->leaf.record_digest, rec->header.data, rec->header.len);
    j->leaf.has_record_digest = true;
    audit_subject_hash(w->srv->audit_key, h->type, h->subject,
                       j->leaf.subject_hash);
    j->leaf.has_subject_hash = true;
    rc = policy_type_get(w->txn, w->srv->db, h->type, &type, &err);
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        goto out;
    }
    if (!policy_type_has_issuer(&type, e->sender)) {
        refuse(j, ONCE_ERR_NOT_ISSUER, "department %s is not an issuer of "
               "%s records", e->sender, h->type);
        goto out;
    }
    if (strcmp(h->issuer, e->sender) != 0) {
        refuse(j, ONCE_ERR_INVALID_RECORD, "the record names %s as its "
               "issuer, not the sender %s", h->issuer, e->sender);
        goto out;
    }
    if (h->status != wanted) {
        refuse(j, ONCE_ERR_INVALID_RECORD, publish
               ? "a publish carries a valid record; send a revocation as a "
                 "revoke"
               : "a revoke carries a record with the REVOKED status");
        goto out;
    }
    rc = once_subject_validate(type.subject_kind, h->subject, &err);
    if (rc < 0) {
        refuse(j, ONCE_ERR_INVALID_SUBJECT, "%s", err.message);
        goto out;
    }
    for (i = 0; i < h->n_fields; i++) {
        if (!policy_type_has_field(&type, h->fields[i]->name)) {
            refuse(j, ONCE_ERR_INVALID_RECORD, "%s is not a field of %s "
                   "records", h->fields[i]->name, h->type);
            goto out;
        }
    }
    rc = verify_record_signature(w, rec, j->dept.public_key);
    if (rc < 0) {
        refuse(j, rc, "the record's issuer signature does not verify with "
               "department %s's key", e->sender);
        goto out;
    }
    if (check_disclosures(j, h, disclosures, n) < 0)
        goto out;
    rc = registry_latest_version(w->txn, w->srv->db, h->type, h->subject,
                                 &latest, &err);
    if (rc == -ONCE_ERR_NOT_FOUND && !publish) {
        refuse(j, ONCE_ERR_NOT_FOUND, "no version of this %s record was "
               "published; there is nothing to revoke", h->type);
        goto out;
    }
    if (rc < 0 && rc != -ONCE_ERR_NOT_FOUND) {
        refuse(j, rc, "%s", err.message);
        goto out;
    }
    if (rc == 0 && h->version <= latest) {
        refuse(j, ONCE_ERR_STALE_VERSION, "version %llu of this %s record is "
               "not above the latest, %llu", (unsigned long long)h->version,
               h->type, (unsigned long long)latest);
        goto out;
    }
    hand_to_writer(j, h, rec, disclosures, n);
out:
    once__record_header__free_unpacked(h, NULL);
}

/* ---- one message ----------------------------------------------------- */

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
    default:
        handle_write(j);
        break;
    }
}

/* Receives one job: [routing id][flags, department id][envelope]. */
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

static void *worker_main(void *arg)
{
    worker *w = arg;
    zmq_msg_t parts[3];

    while (receive_job(w, parts) == 0) {
        const uint8_t *meta = zmq_msg_data(&parts[1]);
        size_t meta_len = zmq_msg_size(&parts[1]);
        job j;
        int rc;

        memset(&j, 0, sizeof(j));
        j.w = w;
        j.received_ns = metrics_now_ns();
        j.routing_id = &parts[0];
        j.bytes = zmq_msg_data(&parts[2]);
        j.len = zmq_msg_size(&parts[2]);
        if (meta_len >= 2 && meta_len <= 1 + ONCE_MAX_NAME)
            memcpy(j.user_id, meta + 1, meta_len - 1);
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

/* ---- the I/O thread -------------------------------------------------- */

/* The one job the I/O thread holds while every worker queue is full. */
typedef struct held_job {
    zmq_msg_t parts[3];
    bool full;
} held_job;

typedef struct io_stats {
    uint64_t received;
    uint64_t answered;
    uint64_t dropped;
} io_stats;

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
                              pending_dept *d)
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
    if (zmq_msg_send(rid, srv->router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_msg_send(&reply, srv->router, ZMQ_DONTWAIT) < 0)
        zmq_msg_close(&reply);
}

/* Reads one message off the ROUTER into held. Returns 1 when held is
 * full, 0 when nothing is waiting, 2 when a message was dropped or
 * refused. */
static int read_message(server *srv, held_job *held, io_stats *stats)
{
    zmq_msg_t *rid = &held->parts[0], *meta = &held->parts[1];
    zmq_msg_t *payload = &held->parts[2], extra;
    const char *user_id;
    pending_dept *dept;
    uint8_t flags = 0;
    size_t id_len;
    int rc;

    zmq_msg_init(rid);
    if (zmq_msg_recv(rid, srv->router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(rid);
        if (errno != EAGAIN && errno != EINTR) {
            diag_error("server", "cannot receive: %s", zmq_strerror(errno));
            broker_fail();
        }
        return 0;
    }
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
    stats->received++;
    /* ZAP admitted the connection and named its department. A message
     * without one would mean the handler was bypassed: never serve it. */
    user_id = zmq_msg_gets(payload, "User-Id");
    id_len = user_id != NULL ? strlen(user_id) : 0;
    if (id_len == 0 || id_len > ONCE_MAX_NAME) {
        diag_warn("server", "dropped a message from a connection without an "
                 "admitted department");
        zmq_msg_close(rid);
        zmq_msg_close(payload);
        stats->dropped++;
        return 2;
    }
    /* Whose connection this is, for the connection cap (conn_limit.c). */
    conn_limit_seen(srv->connections, zmq_msg_get(payload, ZMQ_SRCFD),
                    user_id);
    rc = pending_charge(&srv->pending, user_id, zmq_msg_size(payload), rid,
                        &dept);
    if (rc < 0) {
        if (rc == -ONCE_ERR_QUOTA_EXCEEDED)
            refuse_over_share(srv, rid, payload, dept);
        else
            diag_error("server", "out of memory; dropped a message");
        zmq_msg_close(rid);
        zmq_msg_close(payload);
        stats->dropped++;
        return 2;
    }
    if (zmq_msg_init_size(meta, 1 + id_len) != 0) {
        diag_error("server", "out of memory; dropped a message");
        pending_release(&srv->pending, rid);
        zmq_msg_close(rid);
        zmq_msg_close(payload);
        stats->dropped++;
        return 2;
    }
    ((uint8_t *)zmq_msg_data(meta))[0] = flags;
    memcpy((uint8_t *)zmq_msg_data(meta) + 1, user_id, id_len);
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

/* Moves up to IO_BATCH answers to the ROUTER. Returns how many jobs they
 * complete. */
static uint64_t forward_answers(server *srv, io_stats *stats)
{
    uint64_t done = 0;
    zmq_msg_t rid, reply;
    int i, more;

    for (i = 0; i < IO_BATCH; i++) {
        zmq_msg_init(&rid);
        if (zmq_msg_recv(&rid, srv->replies_in, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&rid);
            break;
        }
        done++;
        more = zmq_msg_more(&rid);
        if (pending_release(&srv->pending, &rid) < 0)
            diag_error("server", "an answer came back without its charge; "
                      "its bytes stay counted");
        if (!more) { /* a job with nothing to send */
            zmq_msg_close(&rid);
            continue;
        }
        zmq_msg_init(&reply);
        if (zmq_msg_recv(&reply, srv->replies_in, 0) < 0) {
            zmq_msg_close(&reply);
            zmq_msg_close(&rid);
            continue;
        }
        if (zmq_msg_send(&rid, srv->router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            if (errno == EHOSTUNREACH)
                diag_info("server", "a department disconnected before its "
                         "answer was sent; a retry gets the same answer");
            else
                diag_warn("server", "dropped an answer: the department's "
                         "connection is not reading (%s)",
                         zmq_strerror(errno));
            stats->dropped++;
            zmq_msg_close(&rid);
            zmq_msg_close(&reply);
            continue;
        }
        zmq_msg_send(&reply, srv->router, ZMQ_DONTWAIT);
        zmq_msg_close(&rid);
        zmq_msg_close(&reply);
        stats->answered++;
    }
    return done;
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

static void *io_main(void *arg)
{
    server *srv = arg;
    held_job held = { .full = false };
    io_stats stats = { 0, 0, 0 };
    uint64_t in_flight = 0;
    bool stopping = false;

    for (;;) {
        zmq_pollitem_t items[3];
        int n = 0, i, rc;

        if (stopping && !held.full && in_flight == 0)
            break;
        items[n++] = (zmq_pollitem_t){ srv->control, 0, ZMQ_POLLIN, 0 };
        items[n++] = (zmq_pollitem_t){ srv->replies_in, 0, ZMQ_POLLIN, 0 };
        if (held.full)
            items[n++] = (zmq_pollitem_t){ srv->jobs_out, 0, ZMQ_POLLOUT, 0 };
        else if (!stopping && !io_budget_reached(srv))
            items[n++] = (zmq_pollitem_t){ srv->router, 0, ZMQ_POLLIN, 0 };
        rc = zmq_poll(items, n, -1);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ETERM) /* start-up failed after this started */
                break;
            diag_error("server", "poll failed: %s", zmq_strerror(errno));
            broker_fail();
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            zmq_msg_t stop;

            zmq_msg_init(&stop);
            zmq_msg_recv(&stop, srv->control, ZMQ_DONTWAIT);
            zmq_msg_close(&stop);
            if (stopping) { /* the drain's deadline passed */
                diag_error("server", "gave up on %llu messages in flight",
                          (unsigned long long)(in_flight + held.full));
                break;
            }
            stopping = true;
            diag_info("server", "no longer reading new messages; %llu in "
                     "flight", (unsigned long long)(in_flight + held.full));
        }
        if (items[1].revents & ZMQ_POLLIN)
            in_flight -= forward_answers(srv, &stats);
        if (n < 3 || items[2].revents == 0)
            continue;
        if (held.full && dispatch(srv, &held) == 0)
            in_flight++;
        for (i = 0; i < IO_BATCH && !held.full && !stopping &&
                    !pending_full(&srv->pending);
             i++) {
            rc = read_message(srv, &held, &stats);
            if (rc == 0)
                break;
            if (rc == 1 && dispatch(srv, &held) == 0)
                in_flight++;
        }
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
             "%llu dropped", (unsigned long long)stats.received,
             (unsigned long long)stats.answered,
             (unsigned long long)stats.dropped);
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
    w->arena.base = malloc(WORKER_ARENA_BYTES);
    if (w->arena.base == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    w->arena.size = WORKER_ARENA_BYTES;
    w->alloc.alloc = arena_alloc;
    w->alloc.free = arena_free;
    w->alloc.allocator_data = &w->arena;
    if ((rc = store_begin(srv->db, 1, &w->txn, err)) < 0)
        return rc;
    mdb_txn_reset(w->txn);
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
    srv->control = make_socket(opt->zmq_ctx, ZMQ_PAIR, CONTROL_ENDPOINT, true,
                               0, 0, err, &rc);
    if (srv->control == NULL)
        return rc;
    srv->control_main = make_socket(opt->zmq_ctx, ZMQ_PAIR, CONTROL_ENDPOINT,
                                    false, 0, 0, err, &rc);
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
    if (zmq_send(srv->control_main, "STOP", 4, 0) < 0)
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
        if (zmq_send(srv->control_main, "STOP", 4, 0) < 0)
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
        if (w->txn != NULL)
            mdb_txn_abort(w->txn);
        arena_reset(&w->arena);
        free(w->arena.base);
        byte_buffer_free(&w->answer);
        byte_buffer_free(&w->scratch);
    }
    free(srv->workers);
    close_socket(&srv->router);
    close_socket(&srv->jobs_out);
    close_socket(&srv->replies_in);
    close_socket(&srv->control);
    close_socket(&srv->control_main);
    pending_free(&srv->pending);
    refusal_budget_free(srv->refusals);
    byte_buffer_free(&srv->io_answer);
    sodium_memzero(srv->audit_key, sizeof(srv->audit_key));
    byte_buffer_free(&srv->ping_answer);
    once_keypair_wipe(&srv->directory_key);
    free(srv);
}
