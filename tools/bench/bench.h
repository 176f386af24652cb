/*
 * bench.h - what every part of once-bench shares: the options, the fixed
 * shape of the benchmark's data, progress notes and clocks.
 *
 * once-bench measures this machine's limits and a real onced against them
 * in one run (main.c says how, and how the parts fit together). The
 * helpers are in bench.c. The
 * options are one global, read-only after main.c has parsed them, because
 * every phase reads several of them and passing them around would only add
 * noise; nothing writes them after parsing.
 */
#ifndef ONCE_TOOLS_BENCH_BENCH_H
#define ONCE_TOOLS_BENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "monotonic.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2

/* The record type the bench publishes and requests: four text fields, of
 * which every requester is granted the first two. */
#define BENCH_TYPE "bench-licence"
#define BENCH_ISSUER "bench-issuer"
#define BENCH_PURPOSE "benchmark"
#define BENCH_FIELDS 4
#define BENCH_GRANTED 2

extern const char *const bench_field_names[BENCH_FIELDS];

typedef struct options {
    const char *onced;
    const char *dir;
    unsigned long records;
    unsigned long clients;
    unsigned long threads;
    unsigned long window;
    unsigned long publish_window;
    unsigned long workers;
    double seconds;
    double warmup_seconds; /* closed loop: uncounted requests first */
    double limit_seconds;
    unsigned long max_presigned;
    bool tcp;
    bool json;
    bool limits_only;
    bool keep;
    bool console;          /* the broker's console on, scraped every second */
    double rate;           /* --rate: open loop at this many requests/s */
    bool find_max_rate;
    double p99_target_ms;
    double phase_seconds;  /* --find-max-rate: each step */
    double start_rate;     /* --find-max-rate: the first step, and warm-up */
    unsigned long preload; /* --preload: records stored without the wire */
    const char *reuse;     /* --reuse: the kept run directory to run on */
    unsigned long idle_subscribers; /* idle.c: N idle against none */
    unsigned long idle_rounds;      /* ... A B pairs */
    unsigned long notice_fanout;    /* fanout.c: N subscribers reading */
    unsigned long notice_records;   /* ... and the records revoked */
    double notice_rate;             /* ... revokes/s; 0: back to back */
} options;

/* The command line, parsed by main.c before anything else runs. */
extern options opt;

/* Progress goes to stderr, prefixed "once-bench: ", so that stdout holds
 * only the report. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Seconds as nanoseconds of monotonic_ns() (lib/monotonic.h). */
uint64_t seconds_ns(double s);

/* a/b into out; -1 when it does not fit. */
int path_join(char *out, size_t cap, const char *a, const char *b);

/* A valid Unified Social Credit Code for every index: "91350100", nine
 * characters spelling i in base 31 over the code's alphabet, and the check
 * character. */
void make_subject(unsigned long i, char out[19]);

/* zmq_setsockopt of an int option. */
int set_int(void *sock, int option, int value);

#endif
