/*
 * client_internal.h - the one interface between the parts of the client:
 * the core (client.c: the connection, the session, the loop that sends an
 * envelope and waits for the answer to its seq), the public calls
 * (client_calls.c), the requests, pipelined or not (client_pipeline.c),
 * receipts (receipt.c) and the directory calls (directory.c). Internal to libonce: libonce.map hides all of it.
 */
#ifndef ONCE_CLIENT_INTERNAL_H
#define ONCE_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "once/once.h"
#include "once.pb-c.h"

/* Signs an envelope of kind carrying body, sends it, waits for its answer
 * (re-sending the same bytes after each timeout) and returns the body of
 * an answer of answer_kind in *answer (malloc'd). An Error answer becomes
 * -code with the broker's message; receipt may be NULL. */
int client_call(once_client *c, int kind, const uint8_t *body,
                size_t body_len, int answer_kind, uint8_t **answer,
                size_t *answer_len, once_receipt *receipt, once_error *err);

/* The two halves of client_call, for a caller that keeps the envelope
 * (prepared writes). client_seal signs an envelope of kind carrying body
 * with the next seq of c's session: *packed (malloc'd) and its *seq.
 * client_exchange sends packed, an envelope of kind and seq, and waits for
 * its answer as client_call does; with a receipt, it records the digest
 * of packed in receipt->envelope_digest. */
int client_seal(once_client *c, int kind, const uint8_t *body,
                size_t body_len, uint8_t **packed, size_t *packed_len,
                uint64_t *seq, once_error *err);
int client_exchange(once_client *c, int kind, const uint8_t *packed,
                    size_t packed_len, uint64_t seq, int answer_kind,
                    uint8_t **answer, size_t *answer_len,
                    once_receipt *receipt, once_error *err);

/* Flights: the envelopes in flight on c, at most ONCE_MAX_IN_FLIGHT, each
 * matched to its answer by seq (PROTOCOL.md 2.3). Every call above is one
 * flight sent and waited for at once; the pipelined requests
 * (client_pipeline.c) send several before waiting.
 *
 * client_flight_send copies packed (an envelope of kind and seq) into a
 * free slot and sends it: -ONCE_ERR_TOO_MANY_IN_FLIGHT when there is none,
 * -ONCE_ERR_INVALID_ARGUMENT when seq is already in flight.
 * client_flight_wait waits until the flight of seq (0: any flight) has
 * ended, re-sending each flight's bytes after each of its timeouts, and
 * hands it over in *out, its slot free again: 0 with an answer (reply),
 * or -code for a flight that failed (TIMEOUT after its last attempt, a
 * connection failure), out->seq saying which. timeout_ms (<0: no limit
 * but the flights' own) bounds the wait for any flight: when it passes,
 * -ONCE_ERR_TIMEOUT with out->seq 0. Nothing in flight, or no flight of
 * seq: -ONCE_ERR_INVALID_ARGUMENT, out->seq 0. Free *out with
 * client_answer_free (or client_answer_body). */
typedef struct client_answer {
    uint64_t seq;
    int kind;              /* the kind of the envelope sent */
    uint8_t *packed;       /* the envelope sent */
    size_t packed_len;
    int reply_kind;
    uint8_t *reply;        /* the answer's body; NULL for a failure */
    size_t reply_len;
} client_answer;

int client_flight_send(once_client *c, int kind, const uint8_t *packed,
                       size_t packed_len, uint64_t seq, once_error *err);
int client_flight_wait(once_client *c, uint64_t seq, int timeout_ms,
                       client_answer *out, once_error *err);
void client_answer_free(client_answer *a);
size_t client_in_flight(const once_client *c);
/* What a call makes of an ended flight a (rc: what client_flight_wait
 * returned): with a receipt, the digest of the envelope sent; an Error
 * answer as -code with the broker's message and its receipt; an answer of
 * answer_kind as its body in *answer (malloc'd); another kind
 * -ONCE_ERR_MALFORMED. Frees a. */
int client_answer_body(client_answer *a, int rc, int answer_kind,
                       uint8_t **answer, size_t *answer_len,
                       once_receipt *receipt, once_error *err);

/* Decodes a Response body into *out (caller frees) and its receipt into
 * *receipt (may be NULL). Takes answer. */
int client_response_decode(uint8_t *answer, size_t answer_len,
                           Once__Response **out, once_receipt *receipt,
                           once_error *err);

/* Requests (client_pipeline.c). client_request_send checks a request's
 * arguments as the broker would (user NULL: no official) and sends it as
 * a flight, *seq its ticket; client_request_call is the synchronous
 * request: that, and the answer to that flight. */
int client_request_send(once_client *c, const char *user, const char *type,
                        const char *subject, const char *purpose,
                        const char *case_id, uint64_t version,
                        int want_proof, uint64_t *seq, once_error *err);
int client_request_call(once_client *c, const char *user, const char *type,
                        const char *subject, const char *purpose,
                        const char *case_id, uint64_t version,
                        int want_proof, once_record **out,
                        once_receipt *receipt, once_error *err);

/* The department id and the broker key c was opened with. */
const char *client_department(const once_client *c);
const uint8_t *client_broker_key(const once_client *c);

/* 0 when value is clean text (PROTOCOL.md 9.4), else -ONCE_ERR_INVALID_TEXT
 * naming what: the broker refuses such text, and a C caller gets the same
 * code before anything is signed or sent. */
int client_clean_text(const char *what, const char *value, once_error *err);

/* Copies a Receipt off the wire into out (already cleared; NULL: nothing
 * to do). Returns 0, -ONCE_ERR_MALFORMED for a checkpoint without a usable
 * proof or leaf, or -ONCE_ERR_NO_MEMORY; out may then hold a part, which
 * once_receipt_clear frees. */
int client_receipt_copy(once_receipt *out, const Once__Receipt *in,
                        once_error *err);

/* Notices pushed by the broker (client_notices.c). The core hands every
 * push it receives, while waiting for an answer or for pushes, to
 * client_notices_received, which queues its notices (bounded) in *q
 * (allocated on first use). client_wait_push waits up to timeout_ms for a
 * push: 1 when one was queued, 0 on timeout, or -code.
 * client_connections counts the handshakes completed with the broker, so
 * a subscriber knows when it is on a new connection. */
struct client_notices;
void client_notices_received(once_client *c, struct client_notices **q,
                             const uint8_t *body, size_t len);
void client_notices_free(struct client_notices *q);
int client_wait_push(once_client *c, int timeout_ms, once_error *err);
uint64_t client_connections(const once_client *c);
struct client_notices **client_notices_of(once_client *c);
/* Checks a NoticeBatch from the broker against its schema and bounds
 * (PROTOCOL.md 4.9) and decodes it into *out (free with
 * once__notice_batch__free_unpacked): 0, -ONCE_ERR_MALFORMED,
 * -ONCE_ERR_TOO_LARGE or -ONCE_ERR_INVALID_TEXT. err may be NULL. */
int client_notice_batch_parse(const uint8_t *body, size_t len,
                              Once__NoticeBatch **out, once_error *err);

#endif
