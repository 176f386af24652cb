/*
 * report.h - what once-bench measured, and how it prints it.
 *
 * Every phase fills its part of one `results`; main.c prints it once at
 * the end, as text for a reader or as JSON for a script (--json), with the
 * broker's figures quoted as ratios to the machine's limits. See report.c.
 */
#ifndef ONCE_TOOLS_BENCH_REPORT_H
#define ONCE_TOOLS_BENCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Percentiles of n latencies, in microseconds. */
typedef struct latency_summary {
    size_t n;
    double p50, p90, p99, p999, max;
} latency_summary;

/* One open-loop phase: requests due at `rate` per second for `seconds`
 * (see openloop.c). */
typedef struct open_phase {
    double rate;                 /* the schedule */
    double seconds;
    uint64_t due;                /* requests the schedule held */
    uint64_t answered;           /* Responses */
    uint64_t errors;
    double achieved;             /* Responses / (last answer - start) */
    latency_summary latency;     /* from each request's due time */
    uint64_t late_sends;         /* sent more than 1 ms after due */
    double max_lag_us;           /* the latest send after its due time */
    double broker_cpu_cores, bench_cpu_cores;
    bool pass;                   /* --find-max-rate: p99 within target */
} open_phase;

#define MAX_OPEN_PHASES 40

typedef struct results {
    int cores;
    char cpu_model[128];
    char fs_note[64];
    size_t verify_message_bytes;
    double verify_per_core;
    double verify_all_cores;     /* measured with one thread per core */
    double echo_plain;
    double echo_curve;
    double lmdb_commits;

    bool broker_ran;
    unsigned long records;
    double publish_seconds;
    double publishes_per_s;
    size_t publish_connections;
    double publish_broker_cpu_cores; /* onced's, during the publishes */
    double publish_bench_cpu_cores;
    uint64_t requests_ok;        /* answered with a Response in time */
    uint64_t requests_total;     /* all answers, including after the deadline */
    uint64_t errors;
    double request_seconds;
    double requests_per_s;
    double p50_us, p99_us, p999_us, max_us;
    double broker_cpu_cores;
    double bench_cpu_cores;
    double console_cpu_cores;    /* --console: onced's console thread */
    bool presigned_exhausted;
    size_t presigned;
    double presign_seconds;

    /* --rate and --find-max-rate (openloop.c) */
    bool open_loop;
    open_phase phases[MAX_OPEN_PHASES];  /* in the order run */
    size_t n_phases;
    bool max_found;              /* some rate passed */
    double max_rate;             /* the highest rate that passed */
    open_phase at_half;          /* --find-max-rate: max_rate / 2 */
} results;

/* The first "model name" of /proc/cpuinfo, or "unknown CPU". */
void read_cpu_model(char *out, size_t cap);

/* Sorts the n latencies in microseconds and sets r's p50, p99, p99.9 and
 * maximum from them. */
void report_latencies(results *r, uint32_t *latency_us, size_t n);

/* Sorts the n latencies and summarises them. */
void summarize_latencies(uint32_t *latency_us, size_t n, latency_summary *s);

void print_text(const results *r);
void print_json(const results *r);

#endif
