/*
 * client_calls.c - the public calls of the client (once.h): publish,
 * revoke, request and ping, and the prepared envelopes of a write.
 *
 * Each call checks its arguments as the broker would (clean text, sizes), so
 * that a C caller gets the broker's code before anything is signed or sent,
 * builds the body of its kind, and hands it to the client core (client.c,
 * through client_internal.h), which seals it into an envelope with the next
 * seq, sends it and waits for the matching answer. What comes back is a
 * Response: checked here against what was asked (the version written),
 * its receipt copied out by receipt.c. Requests are built and checked in
 * client_pipeline.c, where the synchronous request is a pipelined one
 * received at once.
 *
 * Prepared envelopes. A caller that must retry a write across its own
 * restarts asks for the sealed envelope (once_client_prepare_write), keeps
 * it, and sends those very bytes on any client of the department
 * (once_client_send_prepared): the broker answers a repeated envelope with
 * its first answer, so the write happens once. They share write_body with
 * publish and revoke, so a prepared write is byte for byte what
 * once_client_publish_ex would have sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "client_internal.h"
#include "envelope.h"
#include "once/once.h"
#include "record_internal.h"

int client_response_decode(uint8_t *answer, size_t answer_len,
                           Once__Response **out, once_receipt *receipt,
                           once_error *err)
{
    int rc;

    *out = once__response__unpack(NULL, answer_len, answer);
    free(answer);
    if (*out == NULL)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "the broker sent an undecodable response");
    if ((rc = client_receipt_copy(receipt, (*out)->receipt, err)) < 0) {
        once__response__free_unpacked(*out, NULL);
        *out = NULL;
        return rc;
    }
    return 0;
}

/* Calls and expects a Response; decodes it into *out (caller frees). */
static int call_for_response(once_client *c, Once__Kind kind,
                             const uint8_t *body, size_t body_len,
                             Once__Response **out, once_receipt *receipt,
                             once_error *err)
{
    uint8_t *answer = NULL;
    size_t answer_len = 0;
    int rc;

    once_receipt_clear(receipt);
    rc = client_call(c, kind, body, body_len, ONCE__KIND__KIND_RESPONSE,
                     &answer, &answer_len, receipt, err);
    if (rc < 0)
        return rc;
    return client_response_decode(answer, answer_len, out, receipt, err);
}

int once_client_publish(once_client *c, const once_record *r, once_error *err)
{
    return once_client_publish_ex(c, r, 0, NULL, err);
}

/* Sets Publish.want_proof (field 3) on a serialized Publish: a varint
 * field appended to a message is that message with the field. */
static int append_want_proof(uint8_t **body, size_t *len, unsigned field,
                             once_error *err)
{
    uint8_t *grown = realloc(*body, *len + 2);

    if (grown == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    grown[*len] = (uint8_t)(field << 3);
    grown[*len + 1] = 1;
    *body = grown;
    *len += 2;
    return 0;
}

/* The body of the envelope that writes r: a Publish for a VALID record, a
 * Revoke for a revocation. *body is malloc'd. */
static int write_body(const once_record *r, int want_proof, Once__Kind *kind,
                      uint8_t **body, size_t *body_len, once_error *err)
{
    Once__Revoke revoke = ONCE__REVOKE__INIT;
    record_publish_view view;
    int rc;

    if (once_record_status_of(r) == ONCE_STATUS_VALID) {
        *kind = ONCE__KIND__KIND_PUBLISH;
        if ((rc = once_record_serialize(r, body, body_len, err)) < 0)
            return rc;
        if (want_proof &&
            (rc = append_want_proof(body, body_len, 3, err)) < 0) {
            free(*body);
            *body = NULL;
        }
        return rc;
    }
    *kind = ONCE__KIND__KIND_REVOKE;
    if ((rc = record_publish_view_init(&view, r, err)) < 0)
        return rc;
    revoke.record = &view.record;
    revoke.want_proof = want_proof != 0;
    *body_len = once__revoke__get_packed_size(&revoke);
    *body = malloc(*body_len > 0 ? *body_len : 1);
    if (*body == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    once__revoke__pack(&revoke, *body);
    return 0;
}

/* Publishes or revokes r, which must have the status wanted. */
static int write_record(once_client *c, const once_record *r,
                        once_record_status wanted, int want_proof,
                        once_receipt *receipt, once_error *err)
{
    Once__Response *response = NULL;
    Once__Kind kind;
    uint8_t *body;
    size_t body_len;
    int rc;

    once_receipt_clear(receipt);
    if (c == NULL || r == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "client and record are required");
    if (once_record_status_of(r) != wanted)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              wanted == ONCE_STATUS_VALID
                                  ? "publish takes a valid record; use "
                                    "once_client_revoke for a revocation"
                                  : "revoke takes a record made by "
                                    "once_record_new_revocation");
    if ((rc = write_body(r, want_proof, &kind, &body, &body_len, err)) < 0)
        return rc;
    rc = call_for_response(c, kind, body, body_len, &response, receipt, err);
    free(body);
    if (rc < 0)
        return rc;
    if (wanted == ONCE_STATUS_VALID &&
        response->version != once_record_version(r))
        rc = once_error_set(err, ONCE_ERR_MALFORMED,
                            "the broker acknowledged version %llu, not %llu",
                            (unsigned long long)response->version,
                            (unsigned long long)once_record_version(r));
    once__response__free_unpacked(response, NULL);
    return rc;
}

int once_client_publish_ex(once_client *c, const once_record *r,
                           int want_proof, once_receipt *receipt,
                           once_error *err)
{
    return write_record(c, r, ONCE_STATUS_VALID, want_proof, receipt, err);
}

int once_client_revoke(once_client *c, const once_record *revocation,
                       once_error *err)
{
    return once_client_revoke_ex(c, revocation, 0, NULL, err);
}

int once_client_revoke_ex(once_client *c, const once_record *revocation,
                          int want_proof, once_receipt *receipt,
                          once_error *err)
{
    return write_record(c, revocation, ONCE_STATUS_REVOKED, want_proof,
                        receipt, err);
}

int once_client_prepare_write(once_client *c, const once_record *r,
                              int want_proof, uint8_t **envelope,
                              size_t *envelope_len, once_error *err)
{
    Once__Kind kind;
    uint8_t *body;
    size_t body_len;
    uint64_t seq;
    int rc;

    if (c == NULL || r == NULL || envelope == NULL || envelope_len == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "client, record and output are required");
    *envelope = NULL;
    if ((rc = write_body(r, want_proof, &kind, &body, &body_len, err)) < 0)
        return rc;
    rc = client_seal(c, kind, body, body_len, envelope, envelope_len, &seq,
                     err);
    free(body);
    return rc;
}

int once_client_send_prepared(once_client *c, const uint8_t *envelope,
                              size_t envelope_len, once_receipt *receipt,
                              once_error *err)
{
    Once__Response *response = NULL;
    Once__Envelope *e;
    uint8_t *answer = NULL;
    size_t answer_len = 0;
    uint64_t seq;
    int kind, rc;

    once_receipt_clear(receipt);
    if (c == NULL || envelope == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "client and envelope are required");
    e = envelope_unpack(envelope, envelope_len);
    if (e == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "not a decodable envelope");
    rc = strcmp(e->sender, client_department(c)) == 0 &&
         (e->kind == ONCE__KIND__KIND_PUBLISH ||
          e->kind == ONCE__KIND__KIND_REVOKE);
    seq = e->seq;
    kind = (int)e->kind;
    once__envelope__free_unpacked(e, NULL);
    if (!rc)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "the envelope is not a publish or revoke of "
                              "department %s", client_department(c));
    rc = client_exchange(c, kind, envelope, envelope_len, seq,
                         ONCE__KIND__KIND_RESPONSE, &answer, &answer_len,
                         receipt, err);
    if (rc < 0)
        return rc;
    if ((rc = client_response_decode(answer, answer_len, &response, receipt,
                              err)) < 0)
        return rc;
    once__response__free_unpacked(response, NULL);
    return 0;
}

int once_client_request(once_client *c, const char *type, const char *subject,
                        const char *purpose, const char *case_id,
                        uint64_t version, once_record **out, once_error *err)
{
    return once_client_request_ex(c, type, subject, purpose, case_id,
                                  version, 0, out, NULL, err);
}

int once_client_request_ex(once_client *c, const char *type,
                           const char *subject, const char *purpose,
                           const char *case_id, uint64_t version,
                           int want_proof, once_record **out,
                           once_receipt *receipt, once_error *err)
{
    return client_request_call(c, NULL, type, subject, purpose, case_id,
                               version, want_proof, out, receipt, err);
}

int once_client_request_as(once_client *c, const char *user,
                           const char *type, const char *subject,
                           const char *purpose, const char *case_id,
                           uint64_t version, int want_proof,
                           once_record **out, once_receipt *receipt,
                           once_error *err)
{
    /* Asking "as" nobody is a caller's bug (an unset variable, an empty
     * header passed on): refused, rather than logged as a request that
     * names no official. */
    if (user == NULL || user[0] == '\0') {
        once_receipt_clear(receipt);
        if (out != NULL)
            *out = NULL;
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "the acting user is required (without one, "
                              "use once_client_request_ex)");
    }
    return client_request_call(c, user, type, subject, purpose, case_id,
                               version, want_proof, out, receipt, err);
}

int once_client_ping(once_client *c, once_error *err)
{
    return once_client_ping_ex(c, NULL, err);
}

_Static_assert(ONCE_MAX_LOG_ORIGIN == CHECKPOINT_MAX_ORIGIN,
               "once_log_info holds any origin a checkpoint may have");

int once_client_ping_ex(once_client *c, once_log_info *info,
                        once_error *err)
{
    Once__Response *response = NULL;
    int rc;

    if (c == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "client is required");
    rc = call_for_response(c, ONCE__KIND__KIND_PING, NULL, 0, &response,
                           NULL, err);
    if (rc < 0)
        return rc;
    if (info != NULL) {
        if (!checkpoint_origin_is_valid(response->log_origin) ||
            response->log_public_key.len != ONCE_PUBLIC_KEY_BYTES) {
            rc = once_error_set(err, ONCE_ERR_MALFORMED,
                                "the broker's ping answer does not name its "
                                "log");
        } else {
            snprintf(info->origin, sizeof(info->origin), "%s",
                     response->log_origin);
            memcpy(info->public_key, response->log_public_key.data,
                   ONCE_PUBLIC_KEY_BYTES);
        }
    }
    once__response__free_unpacked(response, NULL);
    return rc;
}
