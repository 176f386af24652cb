/*
 * handle_subscribe.c - a department's subscriptions and notices
 * (docs/PROTOCOL.md 4.9), after worker.c's checks of the envelope:
 * subscribe and unsubscribe, which are logged exchanges like a request
 * and go to the writer with their leaf; the list of subscriptions and a
 * pull of notices, answered from the worker's read transaction; and an
 * acknowledgement, which the writer stores without a leaf and which
 * registers the connection for pushes (notices.c).
 *
 * A subscription to a type or a subject needs a grant of the department
 * on that type (for some purpose): no department learns from a notice
 * that a subject exists unless it could request it. The grant is looked
 * at again for every notice (subscriptions.c), so withdrawing it stops
 * the notices. A subscription to the records held needs none: they are
 * the ones its grants gave it. Cancelling needs no grant either.
 *
 * The subject of a one-subject subscription is personal data: the leaf
 * carries its keyed hash, as a request's does, and log lines its tag.
 */

#include <stdio.h>
#include <string.h>

#include "metrics.h"
#include "notices.h"
#include "worker.h"
#include "wire_check.h"

static const char *scope_name(int scope)
{
    switch (scope) {
    case ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE: return "type";
    case ONCE__SUBSCRIPTION_SCOPE__SCOPE_SUBJECT: return "subject";
    case ONCE__SUBSCRIPTION_SCOPE__SCOPE_HELD: return "held";
    default: return "";
    }
}

/* The checks of a subscribe; 0 when it may be stored. */
static int check_subscribe(job *j, const Once__Subscribe *s)
{
    worker *w = j->w;
    record_type type;
    once_error err;
    size_t n;
    int rc;

    if (s->type[0] != '\0') {
        rc = policy_type_get(w->txn, w->srv->db, s->type, &type, &err);
        if (rc == 0 && s->scope == ONCE__SUBSCRIPTION_SCOPE__SCOPE_SUBJECT &&
            once_subject_validate(type.subject_kind, s->subject, &err) < 0)
            rc = -ONCE_ERR_INVALID_SUBJECT;
        if (rc == 0 && s->scope != ONCE__SUBSCRIPTION_SCOPE__SCOPE_HELD)
            rc = policy_grant_covers_type(w->txn, w->srv->db, j->env->sender,
                                          s->type, &err);
        if (rc < 0) {
            refuse(j, rc, "%s", err.message);
            return rc;
        }
    }
    if (subscriptions_get(w->txn, w->srv->subs, j->env->sender, s->scope,
                          s->type, s->subject, NULL, &err) == 0)
        return 0; /* subscribing again renews it */
    rc = subscriptions_count(w->txn, w->srv->subs, j->env->sender,
                             SUBSCRIPTIONS_MAX_PER_DEPARTMENT, &n, &err);
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return rc;
    }
    if (n >= SUBSCRIPTIONS_MAX_PER_DEPARTMENT) {
        refuse(j, ONCE_ERR_TOO_LARGE, "department %s holds %d subscriptions, "
               "the most allowed; cancel one first", j->env->sender,
               SUBSCRIPTIONS_MAX_PER_DEPARTMENT);
        return -ONCE_ERR_TOO_LARGE;
    }
    return 0;
}

void handle_subscription(job *j)
{
    worker *w = j->w;
    bool subscribe = j->env->kind == ONCE__KIND__KIND_SUBSCRIBE;
    Once__Response response = ONCE__RESPONSE__INIT;
    Once__Subscribe *s;
    write_job *wj;
    once_error err;
    int rc;

    rc = wire_check_subscribe(j->env->body.data, j->env->body.len, &w->alloc,
                              &s, &err);
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return;
    }
    snprintf(j->leaf.record_type, sizeof(j->leaf.record_type), "%s",
             s->type);
    snprintf(j->leaf.purpose, sizeof(j->leaf.purpose), "%s",
             scope_name(s->scope));
    if (s->subject[0] != '\0') {
        audit_subject_hash(w->srv->audit_key, s->type, s->subject,
                           j->leaf.subject_hash);
        j->leaf.has_subject_hash = true;
        diag_subject_tag(j->tag, s->type, s->subject);
    }
    if (subscribe && check_subscribe(j, s) < 0)
        return;
    if (!subscribe &&
        (rc = subscriptions_get(w->txn, w->srv->subs, j->env->sender,
                                s->scope, s->type, s->subject, NULL, &err)) <
            0) {
        refuse(j, rc, rc == -ONCE_ERR_NOT_FOUND
                          ? "department %s has no such subscription"
                          : "cannot read the subscriptions of %s",
               j->env->sender);
        return;
    }
    response.type = s->type;
    response.subject = s->subject;
    wj = write_job_new(0, once__response__get_packed_size(&response), j->len);
    if (wj == NULL) {
        refuse(j, ONCE_ERR_INTERNAL, "out of memory for the subscription");
        return;
    }
    once__response__pack(&response, wj->answer);
    wj->scope = s->scope;
    snprintf(wj->subject, sizeof(wj->subject), "%s", s->subject);
    to_writer(j, wj, ONCE__KIND__KIND_RESPONSE, 0);
    if (!j->answered)
        refuse(j, ONCE_ERR_INTERNAL, "the broker cannot store now");
}

typedef struct list_state {
    Once__Subscription *items[SUBSCRIPTIONS_MAX_PER_DEPARTMENT];
    Once__Subscription copies[SUBSCRIPTIONS_MAX_PER_DEPARTMENT];
    char names[SUBSCRIPTIONS_MAX_PER_DEPARTMENT][2][ONCE_MAX_SUBJECT + 1];
    size_t n;
} list_state;

static int list_one(const char *dept, const Once__Subscription *s, void *arg)
{
    list_state *l = arg;
    Once__Subscription *c = &l->copies[l->n];

    (void)dept;
    if (l->n >= SUBSCRIPTIONS_MAX_PER_DEPARTMENT)
        return 1;
    *c = *s;
    snprintf(l->names[l->n][0], sizeof(l->names[0][0]), "%s", s->type);
    snprintf(l->names[l->n][1], sizeof(l->names[0][1]), "%s", s->subject);
    c->type = l->names[l->n][0];
    c->subject = l->names[l->n][1];
    l->items[l->n++] = c;
    return 0;
}

void handle_subscriptions_list(job *j)
{
    worker *w = j->w;
    Once__SubscriptionList list = ONCE__SUBSCRIPTION_LIST__INIT;
    list_state *l;
    once_error err;
    size_t len;
    int rc;

    if (j->env->body.len != 0) {
        refuse(j, ONCE_ERR_MALFORMED, "a list of subscriptions has an empty "
               "body");
        return;
    }
    l = w->alloc.alloc(w->alloc.allocator_data, sizeof(*l));
    if (l == NULL) {
        refuse(j, ONCE_ERR_INTERNAL, "out of memory for the list");
        return;
    }
    l->n = 0;
    rc = subscriptions_list(w->txn, w->srv->subs, j->env->sender, list_one,
                            l, &err);
    if (rc >= 0)
        rc = subscriptions_cursor_get(w->txn, w->srv->subs, j->env->sender,
                                      &list.acked, &err);
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return;
    }
    list.subscriptions = l->items;
    list.n_subscriptions = l->n;
    len = once__subscription_list__get_packed_size(&list);
    if (byte_buffer_reserve(&w->answer, len) < 0) {
        refuse(j, ONCE_ERR_INTERNAL, "out of memory for the list");
        return;
    }
    w->answer.len = once__subscription_list__pack(&list, w->answer.data);
    answer(j, ONCE__KIND__KIND_SUBSCRIPTIONS, w->answer.data, w->answer.len);
}

void handle_notices_pull(job *j)
{
    worker *w = j->w;
    Once__NoticesPull *p;
    uint64_t acked, scanned_to;
    once_error err;
    size_t count;
    int rc;

    rc = wire_check_notices_pull(j->env->body.data, j->env->body.len,
                                 &w->alloc, &p, &err);
    if (rc >= 0)
        rc = subscriptions_cursor_get(w->txn, w->srv->subs, j->env->sender,
                                      &acked, &err);
    if (rc >= 0)
        rc = notices_batch_encode(w->txn, w->srv->subs, w->srv->db,
                                  j->env->sender, p->after, p->limit, acked,
                                  &w->answer, &count, &scanned_to, &err);
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return;
    }
    /* Counted before the answer leaves: whoever got it sees it counted. */
    metrics_notices_delivered(j->env->sender, false, count);
    answer(j, ONCE__KIND__KIND_NOTICES, w->answer.data, w->answer.len);
}

void handle_notice_ack(job *j)
{
    worker *w = j->w;
    Once__NoticeBatch batch = ONCE__NOTICE_BATCH__INIT;
    Once__NoticeAck *a;
    uint64_t stored, last;
    once_error err;
    write_job *wj;
    bool any;
    int rc;

    rc = wire_check_notice_ack(j->env->body.data, j->env->body.len,
                               &w->alloc, &a, &err);
    if (rc >= 0)
        rc = subscriptions_cursor_get(w->txn, w->srv->subs, j->env->sender,
                                      &stored, &err);
    if (rc >= 0)
        rc = subscriptions_last_event(w->txn, w->srv->subs, &last, &any,
                                      &err);
    if (rc < 0) {
        refuse(j, rc, "%s", err.message);
        return;
    }
    /* A cursor only grows: one beyond the log would silence the
     * department for good. */
    if (a->acked > (any ? last : 0)) {
        refuse(j, ONCE_ERR_NOT_FOUND, "there is no notice at leaf %llu yet; "
               "acknowledge the leaf index of a notice received",
               (unsigned long long)a->acked);
        return;
    }
    batch.acked = a->acked > stored ? a->acked : stored;
    /* The job carries the envelope like every other (to_writer copies
     * it); nothing keeps it, since there is no leaf. */
    wj = write_job_new(0, once__notice_batch__get_packed_size(&batch),
                       j->len);
    if (wj == NULL) {
        refuse(j, ONCE_ERR_INTERNAL, "out of memory for the "
               "acknowledgement");
        return;
    }
    once__notice_batch__pack(&batch, wj->answer);
    wj->no_leaf = true;
    wj->acked = a->acked;
    wj->credit = a->credit > NOTICES_MAX_CREDIT ? NOTICES_MAX_CREDIT
                                                : a->credit;
    j->keep_reply = false; /* not logged: nothing in the replies table */
    to_writer(j, wj, ONCE__KIND__KIND_NOTICES, 0);
    if (!j->answered)
        refuse(j, ONCE_ERR_INTERNAL, "the broker cannot store now");
}
