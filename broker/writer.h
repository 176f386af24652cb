/*
 * writer.h - the one thread that writes the database: publishes and
 * revocations, and the exchange log, group committed. See writer.c.
 */
#ifndef ONCE_WRITER_H
#define ONCE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "audit_hash.h"
#include "auditlog.h"
#include "diag.h"
#include "once/once.h"
#include "replay.h"
#include "reply.h"
#include "store.h"

/* What a worker learned about an exchange for its LogLeaf (docs/AUDIT.md);
 * the writer adds the decision, the error and the leaf's place. Strings are
 * "" and the has_ flags false for what the broker refused before knowing. */
typedef struct leaf_facts {
    uint64_t time;
    int kind;                      /* KIND_PUBLISH, KIND_REVOKE, KIND_REQUEST */
    char department[ONCE_MAX_NAME + 1];
    char record_type[ONCE_MAX_NAME + 1];
    bool has_subject_hash;
    uint8_t subject_hash[AUDIT_SUBJECT_HASH_BYTES];
    char purpose[ONCE_MAX_PURPOSE + 1];
    char case_id[ONCE_MAX_CASE_ID + 1];
    char user[ONCE_MAX_USER + 1];  /* a request's acting official, or "" */
    uint64_t record_version;
    bool has_record_digest;
    uint8_t record_digest[32];
    uint8_t envelope_digest[32];
} leaf_facts;

/* One exchange on its way to the writer, made by a worker, freed by the
 * writer: a publish or revocation to store, or the answer of a request or a
 * refusal that only needs its leaf committed before it may leave. One
 * allocation holds the struct, the record, the answer and the evidence. */
typedef struct write_job {
    zmq_msg_t routing_id;          /* the connection to answer */
    char sender[ONCE_MAX_NAME + 1];
    uint64_t session;
    uint64_t seq;                  /* the envelope's, answered by reply_to */
    uint64_t sent_at;              /* the envelope's, keys its stored answer */
    leaf_facts leaf;
    char subject[ONCE_MAX_SUBJECT + 1]; /* of a record to store */
    char subject_tag[DIAG_SUBJECT_TAG_CHARS];
    uint8_t *stored;               /* the StoredRecord to put, or none */
    size_t stored_len;
    int answer_kind;               /* KIND_RESPONSE or KIND_ERROR */
    int refusal;                   /* the error code of a KIND_ERROR answer */
    uint8_t *answer;               /* the body sent once durable */
    size_t answer_len;
    uint8_t *evidence;             /* the envelope bytes as received */
    size_t evidence_len;
    bool want_proof;               /* the receipt carries a proof */
    bool no_leaf;                  /* a notice acknowledgement: stored,
                                      not logged, answered without a
                                      receipt (notices.c) */
    int scope;                     /* of a subscribe or unsubscribe */
    uint64_t acked;                /* of an acknowledgement: its cursor */
    uint32_t credit;               /* ... and the credit it grants */
    bool replay_admitted;          /* its answer is kept for retries */
    bool store_reply;              /* ... and in the replies table */
    bool rebuildable;              /* a granted request's answer, kept as
                                      what rebuilds it (replies.c) */
    uint64_t disclosed;            /* ... its disclosures, a bit each */
    uint64_t received_ns;          /* monotonic_ns() when the ROUTER
                                      delivered it; 0: not measured */
    /* Filled by the writer. */
    int result;                    /* 0 or -code: the database failed */
    once_error error;
    uint8_t *own_answer;           /* malloc'd refusal the writer made */
    bool created_record;           /* its publish stored a new record */
    uint64_t leaf_index;
    uint8_t *leaf_bytes;           /* malloc'd LogLeaf as appended */
    size_t leaf_len;
    uint8_t *reply;                /* malloc'd body with its receipt */
    size_t reply_len;
    int reply_kind;
} write_job;

/* A job with room for the three byte strings; NULL when out of memory.
 * routing_id is initialised empty. */
write_job *write_job_new(size_t stored_len, size_t answer_len,
                         size_t evidence_len);
void write_job_free(write_job *job);

typedef struct writer writer;

typedef struct writer_options {
    void *zmq_ctx;
    store *db;
    const auditlog *log;
    replay *rp;
    broker_identity *id;
    const once_keypair *log_key;   /* copied; signs checkpoints */
    const char *origin;            /* the checkpoints' origin line */
    unsigned group_max;            /* jobs of one transaction at most */
    unsigned checkpoint_interval_ms; /* 0: a checkpoint per commit */
    unsigned skew_seconds;         /* the clock window, which bounds how
                                      long answers are kept (replay.c) */
    unsigned high_water_percent;   /* of the map: publishes stop above */
    const struct subscriptions *subs; /* notices' tables (subscriptions.c) */
} writer_options;

/* Binds SERVER_WRITES_ENDPOINT and starts the thread. */
int writer_start(writer **out, const writer_options *opt, once_error *err);

/* Joins the thread, which returns once the context is shut down, and
 * frees the writer. */
void writer_join(writer *w);

#endif
