/*
 * job.c - one taken file (work/outbox/NAME or work/requests/NAME) to its
 * final answer, exactly once, whatever kill -9 interrupts.
 *
 * The file's idempotency key is SHA-256("outbox" or "requests", NUL, its
 * name, NUL, its content) in hex: the same file taken up again after a
 * restart has the same key; another file, or the same name with another
 * content, has another. Under that key the idempotency state
 * (adapters/common/state.c, LMDB, the gateway's) keeps:
 *
 *  - for a record to publish, the signed envelope, committed before it is
 *    first sent (once_client_prepare_write). A restart sends those very
 *    bytes again (once_client_send_prepared) and the broker answers a
 *    repeated envelope with its original answer (docs/PROTOCOL.md 6.3): the
 *    record never gets a second version, and the version a file without
 *    one gets (the clock in milliseconds, strictly growing) is fixed in
 *    the envelope;
 *    An envelope the broker no longer recognises (sent_at beyond its
 *    skew window: it was unreachable for minutes) is replaced by a new
 *    one of the same version, which the broker refuses (STALE_VERSION)
 *    if the first was stored. Entries are kept 24 hours: a file left in
 *    work/ longer than that is signed anew with a new version;
 *  - the final answer (status and JSON) as soon as it is known, for
 *    publishes and requests alike, so a restart between the answer and
 *    the rename that finishes the file writes the same answer and does not
 *    ask the broker again.
 *
 * An answer is final unless a retry of the same bytes may get another
 * (adapter_answer_is_final: no answer in time, the broker unavailable,
 * over quota, ...): then the file stays in work/ and the main loop tries
 * again later. A final refusal, and a file that does not parse, go to
 * failed/ with a problem.json whose status is the gateway's for that code.
 *
 * A requested record is handed over (answers/NAME) only when it verifies
 * against the broker's signed directory (adapter_verify_record): the same
 * check, and the same JSON, as the gateway's GET answer.
 *
 * Log lines name the file and the code, never the subject or a field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "spool.h"

static const char *const state_caller[2] = { "outbox", "requests" };

/* The name as a log may show it: control bytes as '?'. */
static void shown_name(char out[SPOOL_MAX_NAME + 1], const char *name)
{
    size_t i;

    for (i = 0; name[i] != '\0' && i < SPOOL_MAX_NAME; i++)
        out[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f
                     ? '?' : name[i];
    out[i] = '\0';
}

static void file_key(enum spool_queue q, const char *name, const char *data,
                     size_t len, char hex[65], uint8_t digest[32])
{
    crypto_hash_sha256_state h;
    uint8_t key[32];

    crypto_hash_sha256(digest, (const uint8_t *)data, len);
    crypto_hash_sha256_init(&h);
    crypto_hash_sha256_update(&h, (const uint8_t *)state_caller[q],
                              strlen(state_caller[q]) + 1);
    crypto_hash_sha256_update(&h, (const uint8_t *)name, strlen(name) + 1);
    crypto_hash_sha256_update(&h, (const uint8_t *)data, len);
    crypto_hash_sha256_final(&h, key);
    once_hex_encode(hex, key, sizeof(key));
}

static uint64_t next_version(spool *s)
{
    struct timespec ts;
    uint64_t now;

    clock_gettime(CLOCK_REALTIME, &ts);
    now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    s->last_version = now > s->last_version ? now : s->last_version + 1;
    return s->last_version;
}

/* e's answer: the problem for rc and message; *code its code (a static
 * string), so the log line need not parse the problem back. */
static void set_problem(idem_entry *e, const char **code, int rc,
                        const char *detail)
{
    json_t *doc;

    *code = once_error_name(rc);
    e->status = adapter_http_status(rc);
    doc = adapter_problem_json(e->status, *code, detail);
    free(e->answer);
    e->answer = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
}

static void set_answer(idem_entry *e, int status, json_t *doc)
{
    free(e->answer);
    e->answer = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    e->status = status;
    json_decref(doc);
}

static int proof_checked(spool *s, once_receipt *receipt)
{
    once_error ignored;

    return receipt->has_proof && s->cfg.base.log_origin[0] != '\0' &&
           once_receipt_verify(receipt, s->core.broker_pk, s->cfg.base.log_origin,
                               &ignored) == 0;
}

/* Publishes the outbox file data: 0 with e's answer set (and *code when
 * it is a problem), or JOB_RETRY. */
static int publish(spool *s, const char *key, const char *data, size_t len,
                   idem_entry *e, const char **code, once_error *err)
{
    once_receipt receipt = { 0 };
    once_record *r = NULL;
    once_client *c;
    char where[96], detail[ONCE_ERROR_MESSAGE_MAX + 100];
    once_error why;
    bool resigned = false, record_signed = false;
    int rc;

    /* A record signed before keeps its version (the envelope has it). */
    rc = spool_parse_record(data, len, s->cfg.base.department,
                            e->envelope != NULL ? e->version
                                                : next_version(s),
                            &r, where, sizeof(where), &why);
    if (rc < 0) {
        snprintf(detail, sizeof(detail), "%s: %s", where, why.message);
        set_problem(e, code, rc, detail);
        return 0;
    }
prepare:
    if (e->envelope == NULL) {
        if (!record_signed &&
            (rc = once_record_sign(r, &s->core.key, &why)) < 0) {
            once_record_free(r);
            set_problem(e, code, rc, why.message);
            return 0;
        }
        record_signed = true;
        e->version = once_record_version(r);
        c = pool_borrow(s->core.pool);
        rc = once_client_prepare_write(c, r, 1, &e->envelope,
                                       &e->envelope_len, err);
        pool_return(s->core.pool, c, false);
        /* Durable before the first attempt: a restart must find these
         * bytes, or the record would get a second version. */
        if (rc < 0 || (rc = state_put(s->core.state, state_caller[QUEUE_OUTBOX],
                                      key, e, err)) < 0) {
            once_record_free(r);
            return rc;
        }
    }
    c = pool_borrow(s->core.pool);
    rc = once_client_send_prepared(c, e->envelope, e->envelope_len, &receipt,
                                   &why);
    pool_return(s->core.pool, c, rc == -ONCE_ERR_TIMEOUT);
    if (rc == -ONCE_ERR_CLOCK_SKEW && !resigned) {
        /* The kept envelope is older than the broker's skew window (the
         * broker was unreachable that long), so the broker no longer
         * recognises it. A new envelope of the record with the same
         * version is stored only if the first never was: else it is
         * refused STALE_VERSION, never a second version. The record in
         * hand is the file's with that version (parsed with it above, or
         * the one just signed): it is signed, if it is not yet, and put in
         * a new envelope, without reading the file again. */
        adapter_log("warn", "the kept envelope is too old for the broker "
                    "(CLOCK_SKEW): signing it anew with the same version");
        free(e->envelope);
        e->envelope = NULL;
        e->envelope_len = 0;
        resigned = true;
        goto prepare;
    }
    if (!adapter_answer_is_final(rc)) {
        adapter_log("warn", "broker: %s (%s); will retry",
                    once_error_name(rc), why.message);
        rc = JOB_RETRY;
    } else if (rc == -ONCE_ERR_STALE_VERSION && resigned) {
        set_problem(e, code, rc, "this version is already at the broker: "
                    "this file was published before its answer was lost, or "
                    "a newer version was published since");
        rc = 0;
    } else if (rc < 0) {
        set_problem(e, code, rc, why.message);
        rc = 0;
    } else {
        set_answer(e, 201, adapter_write_json(
            once_record_type(r), once_record_subject(r), e->version, false,
            s->cfg.base.department, &receipt, proof_checked(s, &receipt)));
        rc = 0;
    }
    once_receipt_clear(&receipt);
    once_record_free(r);
    return rc;
}

/* Makes the request of file data: 0 with e's answer set (and *code when
 * it is a problem), or JOB_RETRY. */
static int request(spool *s, const char *data, size_t len, idem_entry *e,
                   const char **code)
{
    uint8_t pk[ONCE_PUBLIC_KEY_BYTES], dir_digest[ONCE_DIGEST_BYTES];
    once_receipt receipt = { 0 };
    once_record *r = NULL;
    spool_request q;
    once_client *c;
    char where[96], detail[ONCE_ERROR_MESSAGE_MAX + 100];
    once_error why;
    int rc, proof_ok = 0;

    rc = spool_parse_request(data, len, &q, where, sizeof(where), &why);
    if (rc < 0) {
        snprintf(detail, sizeof(detail), "%s: %s", where, why.message);
        set_problem(e, code, rc, detail);
        return 0;
    }
    c = pool_borrow(s->core.pool);
    rc = q.user[0] != '\0'
        ? once_client_request_as(c, q.user, q.type, q.subject, q.purpose,
                                 q.case_id, q.version, q.want_proof, &r,
                                 &receipt, &why)
        : once_client_request_ex(c, q.type, q.subject, q.purpose, q.case_id,
                                 q.version, q.want_proof, &r, &receipt, &why);
    pool_return(s->core.pool, c, rc == -ONCE_ERR_TIMEOUT);
    if (rc == 0)
        rc = adapter_verify_record(s->core.dir, r, pk, dir_digest, &why);
    if (rc == 0 && q.want_proof && receipt.has_proof &&
        s->cfg.base.log_origin[0] != '\0') {
        rc = once_receipt_verify(&receipt, s->core.broker_pk,
                                 s->cfg.base.log_origin, &why);
        proof_ok = rc == 0;
    }
    if (!adapter_answer_is_final(rc)) {
        adapter_log("warn", "broker: %s (%s); will retry",
                    once_error_name(rc), why.message);
        rc = JOB_RETRY;
    } else if (rc < 0) {
        set_problem(e, code, rc, why.message);
        rc = 0;
    } else {
        set_answer(e, 200, adapter_record_json(r, pk, dir_digest, &receipt,
                                               proof_ok));
    }
    once_receipt_clear(&receipt);
    once_record_free(r);
    return rc;
}

/* "failed CODE" with the problem's code (the detail may name values):
 * code when this run made the problem, else read from the problem kept in
 * the state before a restart. */
static void log_failure(enum spool_queue q, const char *shown,
                        const char *code, const char *problem)
{
    json_t *doc = code == NULL ? json_loads(problem, 0, NULL) : NULL;

    if (code == NULL)
        code = doc != NULL && json_is_string(json_object_get(doc, "code"))
                   ? json_string_value(json_object_get(doc, "code"))
                   : "?";
    adapter_log("info", "%s/%s: failed %s, see failed/", state_caller[q],
                shown, code);
    json_decref(doc);
}

int job_run(spool *s, enum spool_queue q, const char *name,
            enum job_result *result, once_error *err)
{
    char key[65], shown[SPOOL_MAX_NAME + 1], *data = NULL;
    const char *code = NULL;
    idem_entry e = { 0 };
    uint8_t digest[32];
    size_t len = 0;
    int rc;

    *result = JOB_DONE;
    shown_name(shown, name);
    rc = dirs_read(&s->dirs, q, name, s->cfg.max_file, &data, &len, err);
    if (rc == -ONCE_ERR_NOT_FOUND) {
        *result = JOB_GONE;
        return 0;
    }
    if (rc == -ONCE_ERR_TOO_LARGE || rc == -ONCE_ERR_EXISTS) {
        /* Over the limit, or not a regular file: refused as it is. */
        set_problem(&e, &code, rc, err->message);
        snprintf(key, sizeof(key), "%s", "0000000000000000");
        goto finish;
    }
    if (rc < 0)
        return rc;
    file_key(q, name, data, len, key, digest);
    rc = state_get(s->core.state, state_caller[q], key, &e, err);
    if (rc < 0 && rc != -ONCE_ERR_NOT_FOUND)
        goto out;
    if (rc == -ONCE_ERR_NOT_FOUND)
        memcpy(e.fingerprint, digest, sizeof(digest));
    if (e.status == 0) {
        rc = q == QUEUE_OUTBOX ? publish(s, key, data, len, &e, &code, err)
                               : request(s, data, len, &e, &code);
        if (rc == JOB_RETRY) {
            *result = JOB_RETRY;
            rc = 0;
            goto out;
        }
        if (rc < 0)
            goto out;
        if (e.answer == NULL) {
            rc = once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
            goto out;
        }
        /* The answer for good, kept before the file moves: a restart in
         * between finishes the file with it, without the broker. */
        if ((rc = state_put(s->core.state, state_caller[q], key, &e, err)) < 0)
            goto out;
    }
finish:
    rc = dirs_finish(&s->dirs, q, name, key, e.status >= 300, e.answer, err);
    if (rc == 0 && e.status >= 300)
        log_failure(q, shown, code, e.answer);
    else if (rc == 0)
        adapter_log("info", "%s/%s: %s", state_caller[q], shown,
                    q == QUEUE_OUTBOX ? "published" : "answered");
out:
    idem_entry_clear(&e);
    free(data);
    return rc;
}
