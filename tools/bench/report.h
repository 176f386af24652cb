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
    uint64_t requests_ok;        /* answered with a Response in time */
    uint64_t requests_total;     /* all answers, including after the deadline */
    uint64_t errors;
    double request_seconds;
    double requests_per_s;
    double p50_us, p99_us, p999_us, max_us;
    double broker_cpu_cores;
    double bench_cpu_cores;
    bool presigned_exhausted;
    size_t presigned;
    double presign_seconds;
} results;

/* The first "model name" of /proc/cpuinfo, or "unknown CPU". */
void read_cpu_model(char *out, size_t cap);

/* Sorts the n latencies in microseconds and sets r's p50, p99, p99.9 and
 * maximum from them. */
void report_latencies(results *r, uint32_t *latency_us, size_t n);

void print_text(const results *r);
void print_json(const results *r);

#endif
