/*
 * writer.h - the one thread that writes the database: publishes and
 * revocations, group committed. See writer.c.
 */
#ifndef ONCE_WRITER_H
#define ONCE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "log.h"
#include "once/once.h"
#include "replay.h"
#include "server.h"
#include "store.h"

/* A validated publish or revocation on its way to the writer, made by a
 * worker, freed by the writer. One allocation holds the struct and both
 * encoded messages. */
typedef struct write_job {
    zmq_msg_t routing_id;          /* the connection to answer */
    char sender[ONCE_MAX_NAME + 1];
    uint64_t session;
    uint64_t seq;                  /* the envelope's, answered by reply_to */
    uint8_t envelope_digest[32];
    int kind;                      /* KIND_PUBLISH or KIND_REVOKE */
    char type[ONCE_MAX_NAME + 1];
    char subject[ONCE_MAX_SUBJECT + 1];
    uint64_t version;
    char subject_tag[LOG_SUBJECT_TAG_CHARS];
    uint8_t *stored;               /* the StoredRecord to put */
    size_t stored_len;
    uint8_t *answer;               /* the Response sent once durable */
    size_t answer_len;
    bool replay_admitted;          /* its answer is kept for retries */
    /* Filled by the writer. */
    int result;                    /* 0 or -code */
    once_error error;
} write_job;

/* A job with room for stored_len and answer_len bytes; NULL when out of
 * memory. routing_id is initialised empty. */
write_job *write_job_new(size_t stored_len, size_t answer_len);
void write_job_free(write_job *job);

typedef struct writer writer;

/* Binds SERVER_WRITES_ENDPOINT and starts the thread. group_max bounds the
 * jobs of one transaction. */
int writer_start(writer **out, void *zmq_ctx, store *db, replay *rp,
                 broker_identity *id, unsigned group_max, once_error *err);

/* Joins the thread, which returns once the context is shut down, and
 * frees the writer. */
void writer_join(writer *w);

#endif
