/*
 * metrics.h - the data path's counters, written by the broker's threads
 * without locks and read by the console (console.c). See metrics.c.
 */
#ifndef ONCE_METRICS_H
#define ONCE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "auditlog.h"
#include "store.h"

struct write_job;

/* Once, before any thread starts: the process start time. */
void metrics_init(void);

/* The queues between the threads (server.c), each depth the difference
 * of what went in and what came out. I/O thread: n jobs passed to the
 * workers; n answers (or tokens) taken off the answer queue. */
void metrics_dispatched(uint64_t n);
void metrics_forwarded(uint64_t n);
/* Worker: one job taken off its queue. */
void metrics_job_taken(void);
/* Worker: one exchange handed to the writer. */
void metrics_to_writer(void);
/* Worker or writer: one answer (or token) handed back to the I/O thread
 * (reply.c). */
void metrics_handed_back(void);

/* An answer handed back (or, in the I/O thread, sent) for a message the
 * ROUTER delivered at received_ns (0: not measured): the request
 * latency. */
void metrics_answered(uint64_t received_ns);

/* Why a refusal was answered without a leaf of the exchange log. */
typedef enum metrics_unlogged_reason {
    UNLOGGED_REFUSAL_BUDGET,   /* over the department's logged refusals */
    UNLOGGED_PENDING_SHARE,    /* over its share of unanswered bytes */
    UNLOGGED_UNATTRIBUTED,     /* not attributable to a department's
                                  publish, revoke or request */
    UNLOGGED_LOG_UNAVAILABLE,  /* could not be handed to the writer */
    UNLOGGED_NOT_COMMITTED,    /* the writer did not commit it (a failed
                                  transaction, the high-water mark) */
    UNLOGGED_REASONS
} metrics_unlogged_reason;

void metrics_unlogged(metrics_unlogged_reason why);

/* Writer: a group of n jobs whose transaction began at started_ns has
 * been committed, or failed (each job's result says which). Counts every
 * exchange by kind, decision and code, the records it created per type,
 * the group's size and the commit's duration. */
void metrics_committed(struct write_job *const *group, size_t n,
                       uint64_t started_ns);

/* Once at start, before the writer runs: the records stored per type,
 * which the writer then keeps up to date (one walk of the `latest`
 * table). */
int metrics_records_seed(const store *db, once_error *err);

/* Notices (docs/PROTOCOL.md 4.9, notice_metrics.c). Once at start, before the console
 * runs: the tables whose events and subscriptions the store's exposition
 * counts. Writer: n events stored, n acknowledgements committed, n
 * events pruned. Fan-out (pushed) or worker (pulled): n notices delivered
 * to dept. */
struct subscriptions;
void metrics_notices_tables(const struct subscriptions *t);
void metrics_notice_events(uint64_t n);
void metrics_notice_acks(uint64_t n);
void metrics_notice_events_pruned(uint64_t n);
void metrics_notices_delivered(const char *dept, bool pushed, uint64_t n);
/* Their exposition (notice_metrics.c): the counters, with the data
 * path's; the events stored and the subscriptions by scope, read in
 * txn, with the store's. */
void metrics_write_notices(FILE *out);
int metrics_write_notice_store(FILE *out, MDB_txn *txn, once_error *err);

/* The depths of the queues between the threads. */
typedef struct metrics_queues {
    uint64_t workers;  /* jobs passed to the workers, not yet taken */
    uint64_t writer;   /* exchanges handed to the writer, not committed */
    uint64_t answers;  /* answers handed back, not yet sent on */
} metrics_queues;

void metrics_queues_get(metrics_queues *out);

/* What /healthz and /readyz judge the writer by. */
typedef struct metrics_writer_state {
    uint64_t queued;            /* handed to the writer, not yet committed */
    uint64_t last_commit_ns;    /* monotonic; 0 before the first commit */
    uint64_t failed_groups;     /* transactions the database refused */
    int last_failure_code;      /* once code of the newest failure, or 0 */
    uint64_t last_failure_ns;   /* monotonic time of it */
} metrics_writer_state;

void metrics_writer_state_get(metrics_writer_state *out);

#define METRICS_LATENCY_BUCKETS 14

/* What the dashboard shows live: exchanges since start and the latency
 * histogram (cumulative counts, the last one +Inf). */
typedef struct metrics_live {
    uint64_t granted, refused;
    uint64_t latency_le[METRICS_LATENCY_BUCKETS + 1];
    const double *latency_bounds;
    size_t n_bounds;
} metrics_live;

void metrics_live_get(metrics_live *out);

/* The log's head: its size, the newest signed checkpoint (note points
 * into txn's map) and how long the oldest unsigned leaf has waited. */
typedef struct metrics_log {
    uint64_t tree_size;
    uint64_t signed_size;
    MDB_val note;              /* mv_size 0 when none is signed */
    uint64_t unsigned_age_ms;
} metrics_log;

int metrics_log_state(MDB_txn *txn, const auditlog *log, metrics_log *out,
                      once_error *err);

/* Prometheus text exposition (version 0.0.4) of the data-path counters,
 * the process metrics (from /proc/self) and the database's: the LMDB map,
 * its reader slots, records, the log's size, its newest checkpoint and
 * how long its oldest unsigned leaf has waited, read in txn. */
void metrics_write_data_path(FILE *out);
void metrics_write_process(FILE *out);
int metrics_write_store(FILE *out, MDB_txn *txn, const store *db,
                        const auditlog *log, unsigned high_water_percent,
                        once_error *err);

/* The map's size and the bytes used in it (last page used times the page
 * size), for the health checks and the status API. */
void metrics_map_use(const store *db, uint64_t *used, uint64_t *size);

#endif
