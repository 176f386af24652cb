/*
 * answer.c - how a worker answers a job: directly (answer), through the
 * writer once the exchange's leaf is durable (answer_logged, to_writer),
 * or with a refusal (refuse).
 *
 * Every publish, revoke, request, subscribe and unsubscribe, granted or
 * refused, is a leaf of the
 * exchange log, and no answer may leave before its leaf is on disk, so a
 * logged answer goes to the writer (writer.c) with the leaf's facts and
 * the envelope as evidence. A refusal is logged when the envelope names a
 * department and a logged kind and the evidence will bear the leaf out;
 * a department's logged refusals are within its budget
 * (refusal_budget.c), over which they are answered QUOTA_EXCEEDED,
 * unlogged and unkept. Every refusal answered without a leaf is counted
 * by why (metrics_unlogged), and every answer sent here by its latency
 * (metrics_answered). A failure of the broker's own (INTERNAL,
 * STORAGE_FULL, UNAVAILABLE) is never kept for a retry, which may then
 * succeed.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "evidence.h"
#include "faults.h"
#include "metrics.h"
#include "worker.h"


const char *kind_name(int kind)
{
    return envelope_kind_name(kind, "message");
}

bool is_logged_kind(int kind)
{
    return kind == ONCE__KIND__KIND_PUBLISH ||
           kind == ONCE__KIND__KIND_REVOKE ||
           kind == ONCE__KIND__KIND_REQUEST ||
           kind == ONCE__KIND__KIND_SUBSCRIBE ||
           kind == ONCE__KIND__KIND_UNSUBSCRIBE;
}

/* Hands a prepared write job to the writer with everything the job knows
 * for its leaf; the writer answers once the leaf is durable. */
/* Passes the job's pointer to the writer, again when a signal interrupted
 * the send (the PUSH blocks while the writer's queue is full). */
static int hand_to_writer(void *writes, write_job *wj)
{
    for (;;) {
        if (zmq_send(writes, &wj, sizeof(wj), 0) == (int)sizeof(wj))
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

void to_writer(job *j, write_job *wj, int answer_kind, int refusal)
{
    worker *w = j->w;

    snprintf(wj->sender, sizeof(wj->sender), "%s", j->env->sender);
    wj->session = j->env->session;
    wj->seq = j->env->seq;
    wj->sent_at = j->env->sent_at;
    wj->leaf = j->leaf;
    wj->leaf.time = once_now_ms();
    wj->leaf.kind = j->env->kind;
    snprintf(wj->leaf.department, sizeof(wj->leaf.department), "%s",
             j->env->sender);
    memcpy(wj->leaf.envelope_digest, j->digest, sizeof(j->digest));
    if (wj->evidence_len < j->len) /* answer_logged left it out */
        evidence_omitted_encode(wj->evidence, j->len, j->digest);
    else
        memcpy(wj->evidence, j->bytes, j->len);
    memcpy(wj->subject_tag, j->tag, sizeof(wj->subject_tag));
    wj->answer_kind = answer_kind;
    wj->refusal = refusal;
    wj->want_proof = j->want_proof;
    wj->replay_admitted = j->admitted && !j->finished;
    /* A failure is logged, but a retry is to be executed again. */
    wj->store_reply = j->admitted && j->keep_reply &&
                      !(answer_kind == ONCE__KIND__KIND_ERROR &&
                        error_is_failure(refusal));
    wj->rebuildable = j->rebuildable;
    wj->disclosed = j->disclosed;
    wj->received_ns = j->received_ns;
    zmq_msg_move(&wj->routing_id, j->routing_id);
    if (fault_take(FAULT_HAND_OFF) || hand_to_writer(w->writes, wj) < 0) {
        /* The caller answers UNAVAILABLE, unlogged (refuse). */
        diag_error("worker", "cannot pass an exchange to the writer: %s",
                  zmq_strerror(errno));
        zmq_msg_move(j->routing_id, &wj->routing_id);
        write_job_free(wj);
        return;
    }
    j->answered = true; /* the writer answers */
    j->finished = true; /* and ends the envelope's flight */
    metrics_to_writer();
}

/* Logs an answer that stores nothing (a request's, or a refusal) and
 * sends it once its leaf is committed. False when out of memory. A
 * refusal's envelope over EVIDENCE_REFUSAL_MAX bytes is not kept, only its
 * size and digest (evidence.c): what a department may make the log keep
 * forever by being refused stays small. */
bool answer_logged(job *j, int kind, int refusal, const uint8_t *body,
                          size_t len)
{
    write_job *wj = write_job_new(0, len,
                                  refusal != 0 && j->len > EVIDENCE_REFUSAL_MAX
                                      ? EVIDENCE_OMITTED_BYTES
                                      : j->len);

    if (wj == NULL)
        return false;
    memcpy(wj->answer, body, len);
    to_writer(j, wj, kind, refusal);
    return j->answered;
}

/* Sends an answer and, for an envelope the replay window admitted, keeps it
 * for a retry. */
void answer(job *j, int kind, const uint8_t *body, size_t len)
{
    worker *w = j->w;
    zmq_msg_t reply;

    j->answered = true;
    if (j->admitted && !j->finished && j->failure)
        replay_release(w->srv->replay, j->env->sender, j->env->session,
                       j->env->seq);
    else if (j->admitted && !j->finished)
        replay_finish(w->srv->replay, j->env->sender, j->env->session,
                      j->env->seq, kind, body, len);
    j->finished = true;
    if (reply_message(w->srv->identity, kind, j->reply_to, body, len,
                      &reply) < 0) {
        diag_error("worker", "out of memory for an answer");
        j->answered = false; /* the token still accounts for the job */
        return;
    }
    if (send_reply(w->replies, j->routing_id, &reply) < 0)
        diag_error("worker", "cannot pass an answer to the I/O thread: %s",
                  zmq_strerror(errno));
    else
        metrics_answered(j->received_ns);
}

/* Refusals that suggest a broken or hostile client, rather than a policy
 * decision, are logged as warnings. */
static bool suspicious(int code)
{
    switch (code) {
    case ONCE_ERR_MALFORMED:
    case ONCE_ERR_INVALID_TEXT:
    case ONCE_ERR_BAD_SIGNATURE:
    case ONCE_ERR_SENDER_MISMATCH:
    case ONCE_ERR_REPLAY:
    case ONCE_ERR_CLOCK_SKEW:
    case ONCE_ERR_TOO_LARGE:
    case ONCE_ERR_UNSUPPORTED:
    case ONCE_ERR_INTERNAL:
    case ONCE_ERR_STORAGE_FULL:
        return true;
    default:
        return false;
    }
}

/* A refusal is logged when the envelope names a department and a logged
 * kind, and the evidence will bear the leaf out: the sender's key verifies
 * the envelope, or the refusal is that it does not (BAD_SIGNATURE), or the
 * sender is not a department at all (UNKNOWN_SENDER, which has no key). */
static bool refusal_is_logged(job *j, int code)
{
    worker *w = j->w;
    department d;
    once_error err;

    if (!j->logged)
        return false;
    if (j->verified || code == ONCE_ERR_UNKNOWN_SENDER ||
        code == ONCE_ERR_BAD_SIGNATURE)
        return true;
    if (policy_department_get(w->txn, w->srv->db, j->env->sender, &d,
                              &err) < 0 ||
        envelope_verify(j->env, d.public_key) < 0)
        return false;
    j->verified = true;
    return true;
}

/* Answers a logged refusal over its department's budget (refusal_budget.c)
 * QUOTA_EXCEEDED instead, unlogged; the budget counts it and writes the
 * log lines, so a flood adds neither leaves nor a line each. Like a
 * failure it is not the envelope's answer: the same bytes may come
 * again. */
static void refuse_over_budget(job *j, int code, uint64_t wait_ms)
{
    char message[ONCE_ERROR_MESSAGE_MAX];
    worker *w = j->w;

    /* wait_ms is below a day (logged_refusals_window_seconds). */
    snprintf(message, sizeof(message), "%s is over its budget of logged "
             "refusals (max_logged_refusals_per_department = %u per %u s): "
             "this %s refusal was not logged; retry in %u s", j->user_id,
             refusal_budget_burst(w->srv->refusals),
             refusal_budget_window_seconds(w->srv->refusals),
             once_error_name(code), (unsigned)((wait_ms + 999) / 1000));
    j->failure = true;
    metrics_unlogged(UNLOGGED_REFUSAL_BUDGET);
    if (error_body(&w->answer, ONCE_ERR_QUOTA_EXCEEDED, message) < 0) {
        diag_error("worker", "out of memory for an error answer");
        return;
    }
    answer(j, ONCE__KIND__KIND_ERROR, w->answer.data, w->answer.len);
}

void refuse(job *j, int code, const char *fmt, ...)
{
    char message[ONCE_ERROR_MESSAGE_MAX];
    worker *w = j->w;
    uint64_t wait_ms;
    bool logged;
    va_list ap;

    if (code < 0)
        code = -code;
    if (code >= ONCE_ERR_INVALID_ARGUMENT)
        code = ONCE_ERR_INTERNAL;
    /* The budget is the connection's department's: it sent the bytes. */
    logged = refusal_is_logged(j, code);
    if (logged && !refusal_budget_take(w->srv->refusals, j->user_id, code,
                                       monotonic_ms(), &wait_ms)) {
        refuse_over_budget(j, code, wait_ms);
        return;
    }
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    (suspicious(code) ? diag_warn : diag_info)(
        "worker", "refused %s from %s (session %016llx seq %llu%s%s): %s: %s",
        kind_name(j->env != NULL ? (int)j->env->kind : 0), j->user_id,
        (unsigned long long)(j->env != NULL ? j->env->session : 0),
        (unsigned long long)j->reply_to, j->tag[0] ? ", subject #" : "",
        j->tag, once_error_name(code), message);
    j->failure = error_is_failure(code);
    if (error_body(&w->answer, code, message) < 0) {
        diag_error("worker", "out of memory for an error answer");
        return;
    }
    if (!logged) {
        metrics_unlogged(UNLOGGED_UNATTRIBUTED);
    } else {
        if (answer_logged(j, ONCE__KIND__KIND_ERROR, code, w->answer.data,
                          w->answer.len))
            return;
        metrics_unlogged(UNLOGGED_LOG_UNAVAILABLE);
        /* A refusal that must be logged leaves only with its leaf; without
         * one the broker did nothing it can answer for. */
        j->failure = true;
        if (error_body(&w->answer, ONCE_ERR_UNAVAILABLE, "the broker "
                       "cannot log this exchange now; send it again "
                       "later") < 0) {
            diag_error("worker", "out of memory for an error answer");
            return;
        }
    }
    answer(j, ONCE__KIND__KIND_ERROR, w->answer.data, w->answer.len);
}
