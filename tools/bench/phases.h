/*
 * phases.h - the phases of a broker run: publish every record, drive the
 * granted requests, and check the database afterwards. See phases.c.
 */
#ifndef ONCE_TOOLS_BENCH_PHASES_H
#define ONCE_TOOLS_BENCH_PHASES_H

#include <sys/types.h>

#include "conn.h"
#include "home.h"
#include "report.h"

/* The signed record of subject i, as a Publish body (*body malloc'ed). */
int make_publish_body(const once_keypair *issuer, unsigned long i,
                      uint8_t **body, size_t *len);

/* The most publishes one issuer connection keeps in flight: --publish-
 * window is split over connections of at most this many each, all of the
 * issuer department (whose own limit, max_in_flight_per_department, is
 * 1024 by default). The split was made when onced's ROUTER dropped
 * answers past about 500 unread on one connection; it keeps twice the
 * department's limit since (server.c, router_send_queue), and the split
 * stays so that publish figures compare with those measured before. */
#define PUBLISH_CONNECTION_WINDOW 256
#define PUBLISH_MAX_WINDOW 1024
#define PUBLISH_MAX_CONNECTIONS \
    (PUBLISH_MAX_WINDOW / PUBLISH_CONNECTION_WINDOW)

/* Publishes the --records signed records the home lacks through
 * ceil(--publish-window / 256) pipelined issuer connections in ctx,
 * record i on connection i mod their number, keeping --publish-window in
 * flight in all; fills r's publish figures, onced's CPU meanwhile
 * included. 0, or -1 noted (any refusal fails the run). */
int run_publishes(bench_home *h, void *ctx, results *r);

/* Signs the request envelopes of clients[0..--clients), connects those
 * not connected yet in ctx and drives them for --seconds; fills r's
 * request, latency and CPU figures. 0 only when every answer was a
 * Response and each client's sample verifies with exactly the granted
 * fields. */
int run_requests(bench_home *h, void *ctx, conn *clients, results *r);

/* Signs per_conn new request envelopes, each for a random record, on
 * every connection of clients[0..n) (conn_renew: the seqs go on), on
 * --threads threads. 0, or -1 noted. */
int presign(conn *clients, size_t n, size_t per_conn);

/* Decodes c's sample answer and checks it as a requester would: the
 * issuer's signature, the digests, exactly the granted fields. 0 when it
 * passes (or c has no sample), -1 noted. */
int check_sample(const conn *c, const uint8_t issuer_pk[32]);

/* CPU seconds (user + system) process pid, or this one, has used. */
double process_cpu_seconds(pid_t pid);
double self_cpu_seconds(void);

/* onced's and the bench's CPU seconds at the start of a timed phase; at
 * its end, cpu_cores_since() gives the cores each used over wall seconds
 * (every phase reports both). */
typedef struct cpu_mark {
    double broker;
    double bench;
} cpu_mark;
cpu_mark cpu_mark_now(pid_t broker);
void cpu_cores_since(const cpu_mark *m, pid_t broker, double wall,
                     double *broker_cores, double *bench_cores);

/* After the broker stopped: 0 when its database holds exactly `expected`
 * records, else -1 noted. */
int check_durable(const bench_home *h, unsigned long expected);

#endif
