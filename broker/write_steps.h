/*
 * write_steps.h - what one job puts into its group's transaction
 * (write_steps.c says why they are apart from writer.c).
 */
#ifndef ONCE_WRITE_STEPS_H
#define ONCE_WRITE_STEPS_H

#include <lmdb.h>

#include "auditlog.h"
#include "byte_buffer.h"
#include "store.h"
#include "writer.h"

/* Stores the job's record (a publish or revocation). A refusal for the
 * job's own reason replaces its answer (encoded with scratch) and returns
 * 0; a negative code means the transaction must be aborted. */
int write_step_record(MDB_txn *txn, store *db, byte_buffer *scratch,
                      write_job *job, once_error *err);

/* Encodes the job's LogLeaf into job->leaf_bytes and appends it with its
 * envelope as evidence; sets job->leaf_index. */
int write_step_leaf(MDB_txn *txn, const auditlog *log, write_job *job,
                    once_error *err);

/* Makes job->reply, the answer followed by its receipt (with the
 * checkpoint note and an inclusion proof to tree_size when the job asked
 * for one), and keeps it for a retry when it is to be kept. */
int write_step_reply(MDB_txn *txn, store *db, const auditlog *log,
                     uint64_t tree_size, const char *note, size_t note_len,
                     write_job *job, once_error *err);

#endif
