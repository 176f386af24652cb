/*
 * worker.h - what onced's I/O thread, its workers and the handlers of each
 * kind share, internal to the broker: the server and worker state, one job
 * (a message being answered), and the answering of a job (answer.c). See
 * server.c for the threads, worker.c for the checks every message passes.
 */
#ifndef ONCE_WORKER_H
#define ONCE_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <zmq.h>

#include "arena.h"
#include "audit_hash.h"
#include "config.h"
#include "conn_limit.h"
#include "diag.h"
#include "envelope.h"
#include "monotonic.h"
#include "pending.h"
#include "policy.h"
#include "refusal_budget.h"
#include "replay.h"
#include "reply.h"
#include "store.h"
#include "subscriptions.h"
#include "writer.h"

typedef struct server server;

/* The job frame between the envelope's routing id and its bytes:
 * [flags][received_ns][department id], received_ns in host order (the
 * frame never leaves the process). */
#define JOB_MULTIPART 0x01   /* flags: the message had more frames */
#define JOB_STAMP_OFFSET 1
#define JOB_ID_OFFSET (1 + sizeof(uint64_t))

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
    const subscriptions *subs; /* subscriptions.c's tables */
    replay *replay;
    refusal_budget *refusals; /* logged refusals per department */
    broker_identity *identity;
    void *router;
    void *jobs_out;     /* PUSH to the workers */
    void *replies_in;   /* PULL from the workers and the writer */
    void *notices;      /* PAIR: pushes from the fan-out (notices.c) */
    void *control_main; /* PUSH: server_drain's STOP, an empty frame, to
                           replies_in */
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
    bool rebuildable; /* a granted request: its answer is kept as what
                         rebuilds it (replies.c) */
    uint64_t disclosed; /* ... the disclosures it granted, a bit each */
    leaf_facts leaf;
    department dept;
    char tag[DIAG_SUBJECT_TAG_CHARS]; /* subject tag, "" when none */
    uint64_t received_ns; /* when the ROUTER delivered it (metrics.c) */
} job;

/* io.c: the I/O thread's body; arg is the server. */
void *io_main(void *arg);

/* worker.c: gives w its arena and read transaction (its sockets are the
 * server's to make), the thread's body, and what worker_prepare took. */
int worker_prepare(worker *w, once_error *err);
void *worker_main(void *arg);
void worker_release(worker *w);

/* handle_request.c and handle_write.c: the kinds' own checks and work,
 * after worker.c's checks of the envelope. */
void handle_request(job *j);
/* Answers the retry j of a granted request with the answer rebuilt from
 * its stored form (replies.c), the same bytes as the original's; refuses
 * it when that cannot be done (the envelope is not a request, or the
 * record version is gone, which never happens: versions are kept). */
void request_answer_rebuild(job *j, const Once__StoredReply *stored);
void handle_write(job *j);
/* handle_subscribe.c: subscriptions and notices (PROTOCOL.md 4.9). */
void handle_subscription(job *j);
void handle_subscriptions_list(job *j);
void handle_notices_pull(job *j);
void handle_notice_ack(job *j);

/* answer.c: the answering of a job. */
const char *kind_name(int kind);
bool is_logged_kind(int kind);
/* Hands a prepared write job to the writer, which answers once its leaf
 * is durable; j->answered says whether it took it. */
void to_writer(job *j, write_job *wj, int answer_kind, int refusal);
bool answer_logged(job *j, int kind, int refusal, const uint8_t *body,
                   size_t len);
void answer(job *j, int kind, const uint8_t *body, size_t len);
/* Refuses j with code and a message for people, logged as the rules in
 * worker.c say. */
void refuse(job *j, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
