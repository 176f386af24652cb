/*
 * subscribers.h - once-bench's subscribers (docs/PROTOCOL.md 4.9): the
 * request rate with idle subscribers against none (--idle-subscribers,
 * idle.c) and the fan-out of notices to subscribers that read them
 * (--notice-fanout, fanout.c). subscriber_open, shared by both, is in
 * fanout.c.
 *
 * A subscriber is a libonce client, as a department's system would be:
 * its own department (made by make_home like the requesters, with a key
 * and a grant on the bench's type, so that it may subscribe to it), its
 * own CURVE connection and ZeroMQ context.
 */
#ifndef ONCE_TOOLS_BENCH_SUBSCRIBERS_H
#define ONCE_TOOLS_BENCH_SUBSCRIBERS_H

#include <stddef.h>

#include "conn.h"
#include "home.h"
#include "once/once.h"
#include "report.h"

/* At most this many subscribers: each is a client with its own ZeroMQ
 * context (an I/O thread), and with --notice-fanout a thread of its own. */
#define MAX_SUBSCRIBERS 500

/* "bench-subscriber-NNN", the department of subscriber i. */
void subscriber_id(size_t i, char *out, size_t cap);

/* Opens d's department as a libonce client on h's broker, subscribes it
 * to the bench's type (SCOPE_TYPE; again when it already is: that renews
 * it) and registers the connection for pushes (a first
 * once_client_notice_next, which finds nothing yet). 0, or -1 noted. */
int subscriber_open(const bench_home *h, const conn *d, once_client **out);

/* --idle-subscribers: the results of the alternating phases. */
#define MAX_IDLE_ROUNDS 10

typedef struct idle_results {
    size_t subscribers;
    size_t rounds;
    double none_rate[MAX_IDLE_ROUNDS], idle_rate[MAX_IDLE_ROUNDS];
    double none_p99[MAX_IDLE_ROUNDS], idle_p99[MAX_IDLE_ROUNDS];
    /* requests per second of CPU onced used: moves less with the share
     * of the cores a loaded machine gives onced */
    double none_per_cpu[MAX_IDLE_ROUNDS], idle_per_cpu[MAX_IDLE_ROUNDS];
    double none_median, idle_median;
    double none_per_cpu_median, idle_per_cpu_median;
} idle_results;

/* Runs the request phase (run_requests) 2 x --idle-rounds times,
 * alternating: without subscribers, then with subs[0..--idle-subscribers)
 * connected, subscribed and registered but never reading, and so on. r
 * holds the last phase's figures; out the rates of all. 0, or -1 noted. */
int run_idle_comparison(bench_home *h, void *ctx, conn *clients,
                        const conn *subs, results *r, idle_results *out);
void print_idle(const idle_results *ir);

/* --notice-fanout: what the fan-out measured. */
typedef struct fanout_results {
    size_t subscribers;
    size_t revokes;
    double revoke_seconds;       /* the sequential revokes, first to last */
    uint64_t expected, received; /* notices: subscribers x revokes */
    uint64_t before_reply;       /* arrived before the revoke's reply */
    double fanout_seconds;       /* first revoke sent to last notice */
    double notices_per_s;
    latency_summary latency;     /* revoke's reply to each notice, us */
    double broker_cpu_seconds;   /* onced, from the first revoke to the
                                    last notice */
} fanout_results;

/* Connects subs[0..--notice-fanout) as subscribers, each reading notices
 * on a thread of its own (acknowledging every 64), revokes the first
 * --notice-records records one after the other (at --notice-rate) through
 * a libonce issuer client, and waits until every subscriber had every
 * notice (or 60 s without progress). 0 when all arrived, else -1 noted. */
int run_notice_fanout(bench_home *h, const conn *subs, fanout_results *out);
void print_fanout(const fanout_results *fr);

#endif
