/*
 * kpi.h - what the exchange achieves, computed from its log: copies
 * avoided, the sharing rate, refusals by code, publish freshness,
 * participation, per department and type. Owned by the console thread.
 * See kpi.c.
 */
#ifndef ONCE_KPI_H
#define ONCE_KPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "auditlog.h"
#include "store.h"

#define KPI_CODES 128
#define KPI_MAX_NAMES 1024     /* departments, and types, tracked by name */
#define KPI_MAX_DAYS 400       /* newest days kept */
#define KPI_MINUTES 60         /* the throughput chart's window */
#define KPI_FRESHNESS_BUCKETS 10
#define KPI_NAME_SLOTS 2048    /* a table's name index, twice its rows */

/* Counts of one department or one type. For a type, requests_granted is
 * its copies avoided; for a department, that of its requests. */
typedef struct kpi_counts {
    char name[ONCE_MAX_NAME + 1];
    uint64_t publishes;        /* granted publishes (record versions) */
    uint64_t revokes;          /* granted revocations */
    uint64_t requests_granted;
    uint64_t requests_refused;
    uint64_t refused;          /* every refusal, of any kind */
    uint64_t last_seen_ms;     /* newest leaf's time */
} kpi_counts;

typedef struct kpi_day {
    uint64_t day;              /* days since 1970-01-01, UTC */
    uint64_t copies_avoided;
    uint64_t requests;
    uint64_t publishes;
    uint64_t refused;
} kpi_day;

typedef struct kpi_minute {
    uint64_t minute;           /* minutes since the epoch */
    uint64_t granted;
    uint64_t refused;
} kpi_minute;

/* A table of kpi_counts and its index by name: open addressing, a slot
 * holding a row's number plus one (0: free). */
typedef struct kpi_table {
    kpi_counts *rows;          /* KPI_MAX_NAMES, the last is "(other)" */
    size_t n;
    uint16_t *slots;           /* KPI_NAME_SLOTS */
} kpi_table;

typedef struct kpi {
    uint64_t next_index;       /* leaves before it are counted */
    uint64_t first_leaf_ms;
    uint64_t publishes, revokes, requests_granted, requests_refused;
    uint64_t refused_by_code[KPI_CODES];
    kpi_table departments;     /* by the sending department */
    kpi_table types;           /* by record type */
    kpi_day *days;             /* KPI_MAX_DAYS, oldest first */
    size_t n_days;
    kpi_minute minutes[KPI_MINUTES]; /* by minute % KPI_MINUTES */
    /* Publish freshness: a record's issued_at to its publish's leaf. */
    uint64_t freshness_buckets[KPI_FRESHNESS_BUCKETS + 1];
    uint64_t freshness_sum_ms;
    uint64_t freshness_count;
    /* Where each leaf (and a publish's evidence) is decoded, reset after
     * each: no malloc per field. */
    arena decode;
    uint8_t *decode_block;
} kpi;

extern const double kpi_freshness_bounds[KPI_FRESHNESS_BUCKETS];

int kpi_init(kpi *k, once_error *err);
void kpi_free(kpi *k);

/* Counts the leaves added since the last call, at most max_leaves of
 * them (the rest next time), in txn. */
int kpi_update(kpi *k, MDB_txn *txn, const auditlog *log, size_t max_leaves,
               once_error *err);

/* The row of name in t (departments or types), NULL when it has none. */
const kpi_counts *kpi_find(const kpi_table *t, const char *name);

/* Granted requests over all requests, 0 when there are none. */
double kpi_sharing_rate(const kpi *k);

/* The median publish freshness in seconds, estimated from the buckets
 * (their upper bound), -1 without publishes. */
double kpi_freshness_median(const kpi *k);

/* The log-derived series of /metrics (Prometheus text). */
void kpi_write_metrics(const kpi *k, FILE *out);

/* A label value or JSON-free text made safe for the exposition format. */
void kpi_write_label(FILE *out, const char *value);

#endif
