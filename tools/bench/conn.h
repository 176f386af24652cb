/*
 * conn.h - pipelined connections to the broker, as once-bench drives them.
 *
 * A conn is one raw DEALER socket with CURVE: its own department key, its
 * own session, and the envelopes it will send, all signed before the timed
 * phase (signing on the broker's machine would take CPU from the broker
 * and be counted against it). Driver threads keep a window of them in
 * flight and match each answer to its envelope by reply_to. See conn.c.
 */
#ifndef ONCE_TOOLS_BENCH_CONN_H
#define ONCE_TOOLS_BENCH_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "once.pb-c.h"
#include "once/once.h"

/* One DEALER connection with its own department key and session, and the
 * envelopes it will send, signed in advance. Envelope i has seq
 * seq_base + i + 1: an open-loop run signs a new batch for each phase
 * (conn_renew), continuing the session's sequence. */
typedef struct conn {
    char dept[ONCE_MAX_NAME + 1];
    once_keypair key;
    uint64_t session;
    void *sock;

    uint8_t *blob;       /* the signed envelopes, back to back */
    size_t blob_len, blob_cap;
    size_t *offset;      /* envelope i is blob[offset[i] .. +length[i]) */
    uint32_t *length;
    size_t n_env, cap_env;
    uint64_t seq_base;   /* envelopes of earlier batches */

    uint64_t *sent_ns;   /* send time of envelope i, 0 once answered */
    uint32_t *latency_us;
    size_t n_latency;
    size_t next;         /* next envelope to send */
    size_t outstanding;

    uint64_t late_sends; /* open loop: sent more than 1 ms after due */
    uint64_t max_lag_ns; /* open loop: the latest send after its due time */
    uint64_t ok, ok_in_time, errors;
    uint64_t error_codes[32];
    char first_error[ONCE_ERROR_MESSAGE_MAX + 64];
    uint8_t *sample;     /* the body of the first Response */
    size_t sample_len;
} conn;

/* Room for n_env envelopes of about bytes in all; -1 when out of memory
 * (conn_free releases what was allocated). */
int conn_reserve(conn *c, size_t n_env, size_t bytes);
/* Drops c's envelopes (none may be outstanding) and makes room for a new
 * batch of n_env, whose seqs follow the old ones; the counts of answers,
 * errors and lateness start again from zero (first_error and sample stay).
 * On a fresh conn it is conn_reserve. -1 when out of memory. */
int conn_renew(conn *c, size_t n_env, size_t bytes);
/* Signs an envelope of `kind` carrying body as c's next seq and appends
 * it; -1 when c is full or out of memory. */
int conn_add_envelope(conn *c, Once__Kind kind, const uint8_t *body,
                      size_t body_len);
/* Opens c's DEALER in ctx with c's CURVE keys and connects it. */
int conn_connect(conn *c, void *ctx, const char *endpoint,
                 const uint8_t broker_pk[32]);
/* Closes the socket, frees everything and wipes the key; c is zeroed. */
void conn_free(conn *c);

/* Sends c's next envelope now, counting its latency from due_ns (a
 * monotonic_ns() time, at most now): a request the sender could not send on
 * time still counts from when it was due. 0 sent, 1 when the socket would
 * block (nothing sent), -1 on failure. */
int conn_send_due(conn *c, uint64_t due_ns);
/* Handles one answer frame (deadline as in run_drivers, 0 for none);
 * -1 for an answer that matches nothing outstanding. */
int conn_answer(conn *c, const uint8_t *data, size_t len, uint64_t deadline);

/* Runs `threads` driver threads over conns[0..n), each keeping `window`
 * envelopes in flight on each of its connections until deadline (a
 * monotonic_ns() time; 0: until every envelope is answered), then collecting
 * the answers still outstanding. Returns 0, or -1 with the first failure
 * noted (a broker silent for 15 s, a failed send). */
int run_drivers(conn *conns, size_t n, size_t threads, size_t window,
                uint64_t deadline);

#endif
