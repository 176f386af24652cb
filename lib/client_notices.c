/*
 * client_notices.c - the subscriber side of docs/PROTOCOL.md 4.9:
 * subscribe, unsubscribe, list, the next notice, acknowledge, pull.
 * An acknowledgement from a puller (once_client_notice_ack_pull) grants
 * credit 0: the connection it goes over, often a pooled one nobody reads
 * pushes from, gets none.
 *
 * Pushes and the queue. The broker pushes notices on the connection
 * within a credit the client grants (a NoticeAck). The client is
 * synchronous, so a push can arrive while another call waits for its
 * answer; the core (client.c) hands every push here, and its notices wait
 * in a ring of CLIENT_NOTICE_QUEUE entries for once_client_notice_next.
 * The queue cannot overflow with a broker that keeps to the protocol: the
 * client grants CLIENT_NOTICE_CREDIT only when its queue is empty, so at
 * most twice that is ever outstanding. Should a broker push more anyway,
 * the excess is dropped and counted, and the client registers again from
 * the department's cursor, which brings the dropped notices back (they
 * were never acknowledged).
 *
 * Registration. The broker pushes only on a connection that registered,
 * and forgets registrations when it restarts or the connection drops. So
 * notice_next registers (an acknowledgement of what the application last
 * acknowledged, with credit) on its first use, after every new handshake
 * the core counted, when half the credit is spent, and after
 * CLIENT_NOTICE_REFRESH_MS without a notice (a registration the broker
 * dropped unseen: one envelope per 30 s of quiet). The broker then
 * pushes from the department's cursor: notices this client already
 * returned may come again, and are skipped by their leaf index (each
 * stream of pushes comes in ascending leaf order).
 *
 * Every byte from the broker is checked against the NoticeBatch schema
 * (wire_schema.c) before protobuf-c decodes it (client_notice_batch_parse,
 * which tests/fuzz/fuzz_notice_batch.c drives). Subjects are personal
 * data and never printed here.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "envelope.h"
#include "wire_schema.h"

/* Notices waiting for once_client_notice_next, and the credit one
 * registration grants (PROTOCOL.md allows up to 1024). */
#define CLIENT_NOTICE_QUEUE 1024
#define CLIENT_NOTICE_CREDIT 256
/* A registration the broker may have dropped without the client seeing
 * it (a push it could not queue, more than 16 connections of the
 * department) is renewed after this long without a notice. */
#define CLIENT_NOTICE_REFRESH_MS 30000

struct client_notices {
    once_notice ring[CLIENT_NOTICE_QUEUE];
    size_t head, len;
    uint64_t dropped;         /* pushed beyond the queue */
    uint64_t returned;        /* the highest leaf index returned */
    bool any_returned;
    uint64_t acked;           /* the application's last acknowledgement */
    bool registered;
    uint64_t registered_on;   /* client_connections at the registration */
    uint64_t registered_at;   /* once_now_ms() of the registration or the
                                 last notice since */
    uint32_t credit_left;     /* as the client counts it */
};

static struct client_notices *queue_of(once_client *c)
{
    struct client_notices **q = client_notices_of(c);

    if (*q == NULL)
        *q = calloc(1, sizeof(**q));
    return *q;
}

void client_notices_free(struct client_notices *q)
{
    if (q == NULL)
        return;
    memset(q, 0, sizeof(*q)); /* subjects are personal data */
    free(q);
}

static void copy_notice(once_notice *out, const Once__Notice *n)
{
    memset(out, 0, sizeof(*out));
    out->leaf_index = n->leaf_index;
    strncpy(out->type, n->type, ONCE_MAX_NAME);
    strncpy(out->subject, n->subject, ONCE_MAX_SUBJECT);
    out->version = n->version;
    out->event = (once_notice_event)n->event;
}

int client_notice_batch_parse(const uint8_t *body, size_t len,
                              Once__NoticeBatch **out, once_error *err)
{
    Once__NoticeBatch *b;
    size_t i;
    int rc;

    *out = NULL;
    if ((rc = wire_check(body, len, &wire_notice_batch, err)) < 0)
        return rc;
    b = once__notice_batch__unpack(NULL, len, body);
    if (b == NULL)
        return once_error_set(err, ONCE_ERR_MALFORMED, "the broker sent an "
                              "undecodable batch of notices");
    for (i = 0; i < b->n_notices; i++) {
        const Once__Notice *n = b->notices[i];

        if (strlen(n->type) > ONCE_MAX_NAME ||
            strlen(n->subject) > ONCE_MAX_SUBJECT ||
            (n->event != ONCE__NOTICE_EVENT__NOTICE_EVENT_NEW_VERSION &&
             n->event != ONCE__NOTICE_EVENT__NOTICE_EVENT_REVOKED)) {
            once__notice_batch__free_unpacked(b, NULL);
            return once_error_set(err, ONCE_ERR_MALFORMED, "the broker sent "
                                  "a notice out of the protocol's bounds");
        }
    }
    *out = b;
    return 0;
}

void client_notices_received(once_client *c, struct client_notices **qp,
                             const uint8_t *body, size_t len)
{
    struct client_notices *q;
    Once__NoticeBatch *b;
    size_t i;

    (void)c;
    if (*qp == NULL)
        *qp = calloc(1, sizeof(**qp));
    q = *qp;
    if (q == NULL || client_notice_batch_parse(body, len, &b, NULL) < 0)
        return; /* not a registration's pushes we can keep: the cursor
                   brings them back */
    if (b->n_notices > 0)
        q->registered_at = once_now_ms();
    for (i = 0; i < b->n_notices; i++) {
        if (q->credit_left > 0)
            q->credit_left--;
        if (q->len == CLIENT_NOTICE_QUEUE) {
            q->dropped++;
            q->registered = false; /* resume from the cursor */
            continue;
        }
        copy_notice(&q->ring[(q->head + q->len) % CLIENT_NOTICE_QUEUE],
                    b->notices[i]);
        q->len++;
    }
    once__notice_batch__free_unpacked(b, NULL);
}

/* The next queued notice not returned before. */
static bool pop(struct client_notices *q, once_notice *out)
{
    while (q->len > 0) {
        once_notice *n = &q->ring[q->head];

        q->head = (q->head + 1) % CLIENT_NOTICE_QUEUE;
        q->len--;
        if (q->any_returned && n->leaf_index <= q->returned)
            continue;
        *out = *n;
        q->returned = n->leaf_index;
        q->any_returned = true;
        memset(n, 0, sizeof(*n));
        return true;
    }
    return false;
}

/* Sends a body of kind and parses the NoticeBatch that answers it. */
static int call_for_batch(once_client *c, int kind, const uint8_t *body,
                          size_t len, Once__NoticeBatch **b, once_error *err)
{
    uint8_t *answer = NULL;
    size_t answer_len = 0;
    int rc = client_call(c, kind, body, len, ONCE__KIND__KIND_NOTICES,
                         &answer, &answer_len, NULL, err);

    if (rc < 0)
        return rc;
    rc = client_notice_batch_parse(answer, answer_len, b, err);
    free(answer);
    return rc;
}

/* Sends a NoticeAck{acked, credit} and waits for its answer; *cursor
 * (may be NULL) is the department's cursor after it. */
static int send_ack(once_client *c, uint64_t acked, uint32_t credit,
                    uint64_t *cursor, once_error *err)
{
    Once__NoticeAck a = ONCE__NOTICE_ACK__INIT;
    Once__NoticeBatch *b;
    uint8_t body[32];
    int rc;

    a.acked = acked;
    a.credit = credit;
    rc = call_for_batch(c, ONCE__KIND__KIND_NOTICE_ACK, body,
                        once__notice_ack__pack(&a, body), &b, err);
    if (rc < 0)
        return rc;
    if (cursor != NULL)
        *cursor = b->acked;
    once__notice_batch__free_unpacked(b, NULL);
    return 0;
}

/* Registers this connection for pushes with a fresh credit. */
static int register_pushes(once_client *c, struct client_notices *q,
                           once_error *err)
{
    int rc = send_ack(c, q->acked, CLIENT_NOTICE_CREDIT, NULL, err);

    if (rc < 0)
        return rc;
    /* Counted after the answer came: that connection is registered. */
    q->registered = true;
    q->registered_on = client_connections(c);
    q->registered_at = once_now_ms();
    q->credit_left = CLIENT_NOTICE_CREDIT;
    return 0;
}

int once_client_notice_next(once_client *c, int timeout_ms, once_notice *out,
                            once_error *err)
{
    struct client_notices *q;
    uint64_t deadline;
    int rc;

    if (c == NULL || out == NULL || timeout_ms < 0)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "a client, a "
                              "notice and a timeout of 0 or more are "
                              "required");
    if ((q = queue_of(c)) == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    deadline = once_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t now, wait;

        if (pop(q, out))
            return 0;
        if (!q->registered || q->registered_on != client_connections(c) ||
            q->credit_left < CLIENT_NOTICE_CREDIT / 2 ||
            once_now_ms() - q->registered_at >= CLIENT_NOTICE_REFRESH_MS) {
            if ((rc = register_pushes(c, q, err)) < 0)
                return rc;
            if (pop(q, out))
                return 0;
        }
        now = once_now_ms();
        if (now >= deadline)
            return once_error_set(err, ONCE_ERR_TIMEOUT, "no notice within "
                                  "%d ms", timeout_ms);
        wait = deadline - now;
        if (q->registered_at + CLIENT_NOTICE_REFRESH_MS > now &&
            q->registered_at + CLIENT_NOTICE_REFRESH_MS - now < wait)
            wait = q->registered_at + CLIENT_NOTICE_REFRESH_MS - now;
        rc = client_wait_push(c, (int)wait, err);
        if (rc < 0)
            return rc;
    }
}

/* The two acknowledgements: with credit the connection is registered for
 * pushes (notice_next); with credit 0 the broker pushes nothing on it and
 * stops what it pushed before, so notice_next must register again. */
static int acknowledge(once_client *c, uint64_t leaf_index, uint32_t credit,
                       uint64_t *cursor, once_error *err)
{
    struct client_notices *q;
    int rc;

    if (c == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "a client is "
                              "required");
    if ((q = queue_of(c)) == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    rc = send_ack(c, leaf_index, credit, cursor, err);
    if (rc < 0)
        return rc;
    if (leaf_index > q->acked)
        q->acked = leaf_index;
    q->registered = credit > 0;
    if (credit > 0) {
        q->registered_on = client_connections(c);
        q->registered_at = once_now_ms();
        q->credit_left = credit;
    }
    return 0;
}

int once_client_notice_ack(once_client *c, uint64_t leaf_index,
                           once_error *err)
{
    return acknowledge(c, leaf_index, CLIENT_NOTICE_CREDIT, NULL, err);
}

int once_client_notice_ack_pull(once_client *c, uint64_t leaf_index,
                                uint64_t *cursor, once_error *err)
{
    return acknowledge(c, leaf_index, 0, cursor, err);
}

int once_client_notices_pull(once_client *c, uint64_t after, once_notice *out,
                             size_t cap, size_t *count, uint64_t *scanned_to,
                             once_error *err)
{
    Once__NoticesPull p = ONCE__NOTICES_PULL__INIT;
    Once__NoticeBatch *b;
    uint8_t body[32];
    size_t i;
    int rc;

    if (c == NULL || out == NULL || count == NULL || scanned_to == NULL ||
        cap == 0)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "a client and "
                              "room for notices are required");
    *count = 0;
    p.after = after;
    p.limit = cap > 64 ? 64 : (uint32_t)cap;
    rc = call_for_batch(c, ONCE__KIND__KIND_NOTICES_PULL, body,
                        once__notices_pull__pack(&p, body), &b, err);
    if (rc < 0)
        return rc;
    for (i = 0; i < b->n_notices && i < cap; i++)
        copy_notice(&out[i], b->notices[i]);
    *count = i;
    *scanned_to = b->scanned_to;
    once__notice_batch__free_unpacked(b, NULL);
    return 0;
}

/* ---- subscribe, unsubscribe, list ---------------------------------------- */

static int subscription_call(once_client *c, int kind,
                             once_subscription_scope scope, const char *type,
                             const char *subject, once_receipt *receipt,
                             once_error *err)
{
    Once__Subscribe s = ONCE__SUBSCRIBE__INIT;
    uint8_t body[2 * (ONCE_MAX_SUBJECT + 4) + 8], *answer = NULL;
    size_t answer_len = 0;
    Once__Response *r;
    int rc;

    if (c == NULL || scope < ONCE_SCOPE_TYPE || scope > ONCE_SCOPE_HELD)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "a client and "
                              "a scope are required");
    if (type == NULL)
        type = "";
    if (subject == NULL)
        subject = "";
    if (strlen(type) > ONCE_MAX_NAME || strlen(subject) > ONCE_MAX_SUBJECT)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "type or "
                              "subject over %d bytes", ONCE_MAX_NAME);
    if ((rc = client_clean_text("type", type, err)) < 0 ||
        (rc = client_clean_text("subject", subject, err)) < 0)
        return rc;
    s.scope = (Once__SubscriptionScope)scope;
    s.type = (char *)type;
    s.subject = (char *)subject;
    once_receipt_clear(receipt);
    rc = client_call(c, kind, body, once__subscribe__pack(&s, body),
                     ONCE__KIND__KIND_RESPONSE, &answer, &answer_len, receipt,
                     err);
    if (rc < 0)
        return rc;
    r = once__response__unpack(NULL, answer_len, answer);
    free(answer);
    if (r == NULL)
        return once_error_set(err, ONCE_ERR_MALFORMED, "the broker sent an "
                              "undecodable response");
    rc = client_receipt_copy(receipt, r->receipt, err);
    once__response__free_unpacked(r, NULL);
    return rc;
}

int once_client_subscribe(once_client *c, once_subscription_scope scope,
                          const char *type, const char *subject,
                          once_receipt *receipt, once_error *err)
{
    return subscription_call(c, ONCE__KIND__KIND_SUBSCRIBE, scope, type,
                             subject, receipt, err);
}

int once_client_unsubscribe(once_client *c, once_subscription_scope scope,
                            const char *type, const char *subject,
                            once_receipt *receipt, once_error *err)
{
    return subscription_call(c, ONCE__KIND__KIND_UNSUBSCRIBE, scope, type,
                             subject, receipt, err);
}

int once_client_subscriptions(once_client *c, once_subscription **out,
                              size_t *count, uint64_t *acked,
                              once_error *err)
{
    Once__SubscriptionList *l;
    uint8_t *answer = NULL;
    size_t answer_len = 0, i;
    int rc;

    if (c == NULL || out == NULL || count == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "a client and "
                              "room for the list are required");
    *out = NULL;
    *count = 0;
    rc = client_call(c, ONCE__KIND__KIND_SUBSCRIPTIONS_LIST, NULL, 0,
                     ONCE__KIND__KIND_SUBSCRIPTIONS, &answer, &answer_len,
                     NULL, err);
    if (rc < 0)
        return rc;
    l = once__subscription_list__unpack(NULL, answer_len, answer);
    free(answer);
    if (l == NULL)
        return once_error_set(err, ONCE_ERR_MALFORMED, "the broker sent an "
                              "undecodable list of subscriptions");
    if (l->n_subscriptions > 0 &&
        (*out = calloc(l->n_subscriptions, sizeof(**out))) == NULL) {
        once__subscription_list__free_unpacked(l, NULL);
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    }
    for (i = 0; i < l->n_subscriptions; i++) {
        const Once__Subscription *s = l->subscriptions[i];

        (*out)[i].scope = (once_subscription_scope)s->scope;
        strncpy((*out)[i].type, s->type, ONCE_MAX_NAME);
        strncpy((*out)[i].subject, s->subject, ONCE_MAX_SUBJECT);
        (*out)[i].leaf_index = s->leaf_index;
        (*out)[i].created_at = s->created_at;
    }
    *count = l->n_subscriptions;
    if (acked != NULL)
        *acked = l->acked;
    once__subscription_list__free_unpacked(l, NULL);
    return 0;
}
