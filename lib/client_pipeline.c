/*
 * client_pipeline.c - requests: the pipelined calls (once_client_request_send
 * and once_client_request_receive) and the synchronous request, which is
 * one of them sent and received at once.
 *
 * Why pipelining. A synchronous request keeps the connection idle while the
 * broker verifies, decides, logs and answers; a gateway serving many
 * callers would need one connection (one CURVE handshake, one session in
 * the broker's tables) per request it has in hand. The protocol lets a
 * client keep several envelopes outstanding on one connection and match
 * answers by reply_to (PROTOCOL.md 1 and 2.3); the broker verifies them on
 * several workers and its replay window admits seqs out of order (6.2).
 *
 * One path. The client core (client.c) keeps the envelopes in flight, each
 * with its bytes for re-sending, its deadline and, once ended, its answer
 * or its failure. A send here checks the arguments as the broker would,
 * builds the Request, seals it with the next seq and hands it to the core;
 * the seq is the caller's ticket. A receive takes the next ended flight
 * from the core and makes of it exactly what the synchronous call makes:
 * the Error as -code with its receipt, the Response's receipt, the record
 * parsed and checked against what was asked. What was asked is read back
 * from the envelope the flight kept (the very bytes signed), so nothing
 * else has to be remembered per request. once_client_request_ex and _as
 * are request_send followed by request_end on the flight of that seq.
 *
 * Bounds. The core holds at most ONCE_MAX_IN_FLIGHT flights: 32, the
 * answers the broker keeps in memory per session for recognising a retry
 * (broker/replay.c's REPLAY_SLOTS), so that a re-sent request is
 * recognised without a lookup in its table. Answered or not, a flight
 * holds its slot until it is received, so the memory held for answers
 * not yet taken is bounded too.
 */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "envelope.h"
#include "once/once.h"
#include "record_internal.h"

static int check_text(const char *what, const char *value, size_t max,
                      once_error *err)
{
    if (value == NULL || value[0] == '\0')
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "%s is required", what);
    if (strlen(value) > max)
        return once_error_set(err, ONCE_ERR_TOO_LARGE,
                              "%s is longer than %zu bytes", what, max);
    return client_clean_text(what, value, err);
}

/* Checks a request's arguments as the broker would, and sends it as a
 * flight: *seq is its ticket. user NULL names no official. */
int client_request_send(once_client *c, const char *user, const char *type,
                        const char *subject, const char *purpose,
                        const char *case_id, uint64_t version,
                        int want_proof, uint64_t *seq, once_error *err)
{
    Once__Request request = ONCE__REQUEST__INIT;
    uint8_t *body, *packed = NULL;
    size_t body_len, packed_len;
    int rc;

    *seq = 0;
    if ((rc = check_text("type", type, ONCE_MAX_NAME, err)) < 0 ||
        (rc = check_text("subject", subject, ONCE_MAX_SUBJECT, err)) < 0)
        return rc;
    /* A missing purpose or case id is checked by the broker, which logs
     * the refusal; the client bounds their size and their text. */
    if ((purpose && strlen(purpose) > ONCE_MAX_PURPOSE) ||
        (case_id && strlen(case_id) > ONCE_MAX_CASE_ID))
        return once_error_set(err, ONCE_ERR_TOO_LARGE,
                              "purpose or case id over its size limit");
    if ((purpose && (rc = client_clean_text("purpose", purpose, err)) < 0) ||
        (case_id && (rc = client_clean_text("case id", case_id, err)) < 0))
        return rc;
    if (user != NULL &&
        (rc = check_text("the acting user", user, ONCE_MAX_USER, err)) < 0)
        return rc;
    /* "" (no user) is left out of the encoding: the body, and so the
     * broker's leaf, is the request of before the field. */
    request.user = (char *)(user ? user : "");
    request.type = (char *)type;
    request.subject = (char *)subject;
    request.purpose = (char *)(purpose ? purpose : "");
    request.case_id = (char *)(case_id ? case_id : "");
    request.version = version;
    request.want_proof = want_proof != 0;
    body_len = once__request__get_packed_size(&request);
    body = malloc(body_len > 0 ? body_len : 1);
    if (body == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    once__request__pack(&request, body);
    rc = client_seal(c, ONCE__KIND__KIND_REQUEST, body, body_len, &packed,
                     &packed_len, seq, err);
    free(body);
    if (rc == 0)
        rc = client_flight_send(c, ONCE__KIND__KIND_REQUEST, packed,
                                packed_len, *seq, err);
    free(packed);
    if (rc < 0)
        *seq = 0;
    return rc;
}

/* The Request an ended flight carried: what its answer must be about. */
static Once__Request *asked(const client_answer *a, once_error *err)
{
    Once__Envelope *e = envelope_unpack(a->packed, a->packed_len);
    Once__Request *request = NULL;

    if (e != NULL && e->kind == ONCE__KIND__KIND_REQUEST)
        request = once__request__unpack(NULL, e->body.len, e->body.data);
    once__envelope__free_unpacked(e, NULL);
    if (request == NULL)
        once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                       "the envelope in flight is not a request");
    return request;
}

/* Makes of an ended request flight (rc: what client_flight_wait returned)
 * what a request returns: *out, the receipt, or -code. Frees a. */
static int request_end(client_answer *a, int rc, once_record **out,
                       once_receipt *receipt, once_error *err)
{
    Once__Request *request = NULL;
    Once__Response *response = NULL;
    uint8_t *answer = NULL;
    size_t answer_len = 0;

    if (rc == 0 && (request = asked(a, err)) == NULL)
        rc = -ONCE_ERR_INVALID_ARGUMENT;
    rc = client_answer_body(a, rc, ONCE__KIND__KIND_RESPONSE, &answer,
                            &answer_len, receipt, err);
    if (rc == 0)
        rc = client_response_decode(answer, answer_len, &response, receipt,
                                    err);
    if (rc < 0)
        goto out;
    if (response->record == NULL) {
        rc = once_error_set(err, ONCE_ERR_MALFORMED,
                            "the broker's answer holds no record");
        goto out;
    }
    rc = record_from_parts(out, response->record, response->disclosures,
                           response->n_disclosures, err);
    if (rc == 0 && (strcmp(once_record_type(*out), request->type) != 0 ||
                    strcmp(once_record_subject(*out), request->subject) !=
                        0)) {
        once_record_free(*out);
        *out = NULL;
        rc = once_error_set(err, ONCE_ERR_INVALID_RECORD,
                            "the broker answered with another record than "
                            "the one requested");
    }
out:
    if (response != NULL)
        once__response__free_unpacked(response, NULL);
    if (request != NULL)
        once__request__free_unpacked(request, NULL);
    return rc;
}

int client_request_call(once_client *c, const char *user, const char *type,
                        const char *subject, const char *purpose,
                        const char *case_id, uint64_t version,
                        int want_proof, once_record **out,
                        once_receipt *receipt, once_error *err)
{
    client_answer a;
    uint64_t seq;
    int rc;

    /* A refusal before anything is sent must not leave an earlier
     * receipt looking like this call's. */
    once_receipt_clear(receipt);
    if (out == NULL || c == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "client and output are required");
    *out = NULL;
    if ((rc = client_request_send(c, user, type, subject, purpose, case_id,
                                  version, want_proof, &seq, err)) < 0)
        return rc;
    rc = client_flight_wait(c, seq, -1, &a, err);
    return request_end(&a, rc, out, receipt, err);
}

int once_client_request_send(once_client *c, const char *user,
                             const char *type, const char *subject,
                             const char *purpose, const char *case_id,
                             uint64_t version, int want_proof,
                             uint64_t *ticket, once_error *err)
{
    if (c == NULL || ticket == NULL) {
        if (ticket != NULL)
            *ticket = 0;
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "client and ticket are required");
    }
    return client_request_send(c, user, type, subject, purpose, case_id,
                               version, want_proof, ticket, err);
}

int once_client_request_receive(once_client *c, int timeout_ms,
                                uint64_t *ticket, once_record **out,
                                once_receipt *receipt, once_error *err)
{
    client_answer a;
    int rc;

    once_receipt_clear(receipt);
    if (ticket != NULL)
        *ticket = 0;
    if (out != NULL)
        *out = NULL;
    if (c == NULL || ticket == NULL || out == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "client, ticket and output are required");
    rc = client_flight_wait(c, 0, timeout_ms, &a, err);
    if (a.seq == 0)
        return rc;
    *ticket = a.seq;
    return request_end(&a, rc, out, receipt, err);
}

size_t once_client_in_flight(const once_client *c)
{
    return c != NULL ? client_in_flight(c) : 0;
}
