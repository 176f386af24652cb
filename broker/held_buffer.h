/*
 * held_buffer.h - the records departments were granted, kept in memory by
 * the writer until they are put into `notice_held` in order, the mark up
 * to which that table is complete, and its repair from the log at start.
 * See held_buffer.c.
 */
#ifndef ONCE_HELD_BUFFER_H
#define ONCE_HELD_BUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "auditlog.h"
#include "store.h"
#include "subscriptions.h"

/* Distinct entries kept in memory at most; at HELD_FLUSH_AT a flush of
 * its own is due at once, and HELD_FLUSH_AFTER_MS after the first entry
 * otherwise. */
#define HELD_BUFFER_MAX 16384
#define HELD_FLUSH_AT (HELD_BUFFER_MAX / 2)
#define HELD_FLUSH_AFTER_MS 1000
/* Leaves the mark may fall behind the log (refused requests add nothing
 * to flush) before a flush writes it anyway: what a start replays. */
#define HELD_MARK_LAG_MAX 65536
/* Leaves replayed per transaction at start. */
#define HELD_REPLAY_BATCH 65536

typedef struct held_buffer held_buffer;

int held_buffer_new(held_buffer **out, once_error *err);
void held_buffer_free(held_buffer *b);

/* Entries in memory, and whether n more fit. */
size_t held_buffer_count(const held_buffer *b);
bool held_buffer_room(const held_buffer *b, size_t n);

/* Adds (type, subject hash, dept) unless it is in memory already; now_ms
 * (monotonic) starts the flush delay of a first entry. -ONCE_ERR_TOO_LARGE
 * when full (held_buffer_room says so beforehand) or a name is too long. */
int held_buffer_add(held_buffer *b, const char *type,
                    const uint8_t hash[AUDIT_SUBJECT_HASH_BYTES],
                    const char *dept, uint64_t now_ms, once_error *err);

/* In txn: puts every entry into `notice_held` in key order with
 * MDB_NOOVERWRITE. The buffer keeps its entries until
 * held_buffer_flushed, after the commit. */
int held_buffer_flush(MDB_txn *txn, const subscriptions *t, held_buffer *b,
                      once_error *err);
/* In txn: stores the mark, `through`: every leaf below it has its entry
 * in the table once txn commits. */
int held_mark_put(MDB_txn *txn, const subscriptions *t, uint64_t through,
                  once_error *err);
/* After that commit: empties the buffer; the mark is `through`. */
void held_buffer_flushed(held_buffer *b, uint64_t through);
/* After a failed or skipped flush: none is due before
 * HELD_FLUSH_AFTER_MS from now. */
void held_buffer_defer(held_buffer *b, uint64_t now_ms);

/* The log's size after a commit that added no entry to the table and
 * none to the buffer as it will be flushed (a group of refusals, say):
 * the mark may be written up to it. */
void held_buffer_committed(held_buffer *b, uint64_t tree_size);

/* Whether a flush would store anything: entries, or a mark behind the
 * log. */
bool held_buffer_pending(const held_buffer *b);

/* Milliseconds until a flush of its own is due, 0 when it is, -1 when
 * none is wanted. */
long held_buffer_wait(const held_buffer *b, uint64_t now_ms);

/* The mark: the number of leaves whose entries are all in the table.
 * *found false when none is stored (a home of an older version). */
int held_mark_get(MDB_txn *txn, const subscriptions *t, uint64_t *through,
                  bool *found, once_error *err);

/* At start, before the writer takes jobs: puts the entries of the granted
 * request leaves from the mark to the end of the log into the table, in
 * transactions of HELD_REPLAY_BATCH leaves, and moves the mark to the
 * end. Without a mark (a home of an older version, whose table is
 * complete as of its last commit) only stores the mark at the end.
 * *replayed: the leaves read; *entries: the entries put (new or not);
 * *had_mark: whether a mark was stored. */
int held_recover(const store *db, const auditlog *log,
                 const subscriptions *t, uint64_t *replayed, size_t *entries,
                 bool *had_mark, once_error *err);

#endif
