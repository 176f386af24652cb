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

/* Publishes --records signed records through one pipelined issuer
 * connection in ctx; fills r's publish figures. 0, or -1 noted (any
 * refusal fails the run). */
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

/* After the broker stopped: 0 when its database holds exactly `expected`
 * records, else -1 noted. */
int check_durable(const bench_home *h, unsigned long expected);

#endif
