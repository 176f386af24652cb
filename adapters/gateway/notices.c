/*
 * notices.c - subscriptions and notices over REST (docs/ADAPTERS.md,
 * "Notices"; the broker's side is docs/PROTOCOL.md 4.9).
 *
 *   GET    /v1/subscriptions                          list, and the cursor
 *   PUT    /v1/subscriptions/types/{type}             subscribe (or renew)
 *   PUT    /v1/subscriptions/subjects/{type}/{subject}
 *   PUT    /v1/subscriptions/held[/{type}]            the records held
 *   DELETE the same paths                             cancel
 *   GET    /v1/notices?after=N&wait=S&limit=L         long poll
 *   POST   /v1/notices/ack?through=N                  acknowledge
 *
 * A subscription is named by what it covers, so the path is the
 * subscription: PUT is idempotent (subscribing again renews it, as the
 * broker does) and DELETE cancels it. Nothing here parses a body (the
 * acknowledgement's number is a query parameter, read by the same strict
 * parser as after); the path is read by sub_path.c (fuzzed).
 *
 * Cursors. The broker keeps one acknowledgement cursor per department,
 * but several callers may share a gateway. The long poll therefore never
 * moves it: a caller owns its cursor, the `after` it passes, and the
 * gateway answers with notices_pull (which reads the log and does not
 * acknowledge). A caller that handled a batch passes its next_after the
 * next time; one that crashed passes the old value and gets the batch
 * again. The department's cursor is left to whoever acknowledges (a
 * libonce subscriber, once-spool's notices/, a webhook, or a caller of
 * POST /v1/notices/ack).
 *
 * That cursor is also what lets the broker forget: it deletes the events
 * at or below the lowest cursor of the departments that hold a
 * subscription (PROTOCOL.md 4.9), so a department that only long-polls
 * and never acknowledges keeps every event of every department in its
 * table for good. Callers that own their cursor therefore also
 * acknowledge: POST /v1/notices/ack?through=N once every caller of the
 * department has handled the notices up to N (with one caller, after
 * each batch, N the leaf_index of its last notice). The gateway cannot
 * know when that is, which is why it is the callers' call. It raises the
 * department's cursor (never lowers it; a leaf beyond the newest notice
 * is NOT_FOUND, 404) and answers with the cursor. The acknowledgement
 * goes over a pooled connection with credit 0
 * (once_client_notice_ack_pull): that connection's pushes would have no
 * reader, and the watcher's registration is its own.
 *
 * The wait. A long poll must not keep one of the pool's connections for
 * up to 30 s: a few waiting callers would starve every publish and
 * request. Each pull borrows a connection for one short call; between
 * pulls the caller sleeps on a condition variable. One watcher thread
 * holds a connection of its own (pool_open_extra), registered for pushes
 * (once_client_notice_next), and wakes the sleepers when a notice comes;
 * it does not acknowledge. A sleeper also pulls again every 5 s, so a
 * push the broker dropped (PROTOCOL.md 4.9: bounded queues) delays a
 * notice by at most that.
 *
 * A notice's subject is personal data: it goes to the authenticated
 * caller and nowhere else (no log line names it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "gateway.h"
#include "monotonic.h"

#define REPULL_MS 5000
#define PULLS_PER_ROUND 16

static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;      /* a notice came, or stopping */
    uint64_t generation;         /* notices pushed to the watcher */
    bool stopping;
    bool running;
    pthread_t thread;
    once_client *client;
} watch = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- the watcher -------------------------------------------------------- */

/* Waits on watch.changed until the monotonic time until_ms (lock held). */
static void wait_until(uint64_t until_ms)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(until_ms / 1000u);
    ts.tv_nsec = (long)(until_ms % 1000u) * 1000000L;
    pthread_cond_timedwait(&watch.changed, &watch.lock, &ts);
}

static void *watch_main(void *arg)
{
    once_notice n;
    once_error err;
    bool stopping = false, complained = false;
    int rc;

    (void)arg;
    while (!stopping) {
        rc = once_client_notice_next(watch.client, 1000, &n, &err);
        sodium_memzero(&n, sizeof(n));
        pthread_mutex_lock(&watch.lock);
        if (rc == 0) {
            watch.generation++;
            pthread_cond_broadcast(&watch.changed);
            complained = false;
        } else if (rc != -ONCE_ERR_TIMEOUT && !watch.stopping) {
            /* Refused or broken: the pollers still pull every 5 s. */
            if (!complained)
                adapter_log("warning", "notice watcher: %s", err.message);
            complained = true;
            wait_until(monotonic_ms() + 1000);
        }
        stopping = watch.stopping;
        pthread_mutex_unlock(&watch.lock);
    }
    return NULL;
}

int notices_start(gateway *gw, once_error *err)
{
    pthread_condattr_t attr;
    int rc;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&watch.changed, &attr);
    pthread_condattr_destroy(&attr);
    if ((rc = pool_open_extra(gw->core.pool, &watch.client, err)) < 0)
        return rc;
    if (pthread_create(&watch.thread, NULL, watch_main, NULL) != 0) {
        once_client_close(watch.client);
        watch.client = NULL;
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "cannot start the "
                              "notice watcher");
    }
    watch.running = true;
    return 0;
}

void notices_stop(void)
{
    pthread_mutex_lock(&watch.lock);
    watch.stopping = true;
    pthread_cond_broadcast(&watch.changed);
    pthread_mutex_unlock(&watch.lock);
    if (watch.running)
        pthread_join(watch.thread, NULL);
    watch.running = false;
    once_client_close(watch.client);
    watch.client = NULL;
}

/* ---- paths ------------------------------------------------------------- */

int notices_route(http_call *c)
{
    sub_path sp;

    if (strcmp(c->path, "/v1/notices") == 0) {
        c->route = "notices";
        return 1;
    }
    if (strcmp(c->path, "/v1/notices/ack") == 0) {
        c->route = "notice_ack";
        return 1;
    }
    if (strcmp(c->path, "/v1/subscriptions") == 0 ||
        sub_path_parse(c->path, &sp) == 0) {
        c->route = "subscriptions";
        return 1;
    }
    return 0;
}

/* ---- subscriptions ----------------------------------------------------- */

static const char *scope_name(once_subscription_scope s)
{
    return s == ONCE_SCOPE_TYPE ? "type"
         : s == ONCE_SCOPE_SUBJECT ? "subject" : "held";
}

static json_t *target_json(once_subscription_scope scope, const char *type,
                           const char *subject)
{
    json_t *o = json_pack("{s:s}", "scope", scope_name(scope));

    if (o != NULL && type[0] != '\0')
        json_object_set_new(o, "type", json_string(type));
    if (o != NULL && scope == ONCE_SCOPE_SUBJECT)
        json_object_set_new(o, "subject", json_string(subject));
    return o;
}

static void list_route(http_call *c)
{
    once_subscription *subs = NULL;
    once_client *client = pool_borrow(c->gw->core.pool);
    json_t *list, *o;
    uint64_t acked = 0;
    size_t count = 0, i;
    once_error err;
    int rc;

    rc = once_client_subscriptions(client, &subs, &count, &acked, &err);
    pool_return(c->gw->core.pool, client, rc == -ONCE_ERR_TIMEOUT);
    if (rc < 0) {
        http_once_problem(c, rc, &err);
        return;
    }
    list = json_array();
    for (i = 0; i < count; i++) {
        o = target_json(subs[i].scope, subs[i].type, subs[i].subject);
        json_object_set_new(o, "leaf_index",
                            json_integer((json_int_t)subs[i].leaf_index));
        json_object_set_new(o, "created_at",
                            json_integer((json_int_t)subs[i].created_at));
        json_array_append_new(list, o);
    }
    sodium_memzero(subs, count * sizeof(*subs));
    free(subs);
    http_json(c, 200, json_pack("{s:o, s:I}", "subscriptions", list, "acked",
                                (json_int_t)acked));
}

static void change_route(http_call *c, bool cancel)
{
    once_receipt receipt = { 0 };
    once_client *client;
    once_error err;
    sub_path sp;
    int rc;

    sub_path_parse(c->path, &sp);
    client = pool_borrow(c->gw->core.pool);
    rc = cancel ? once_client_unsubscribe(client, sp.scope, sp.type,
                                          sp.subject, &receipt, &err)
                : once_client_subscribe(client, sp.scope, sp.type,
                                        sp.subject, &receipt, &err);
    pool_return(c->gw->core.pool, client, rc == -ONCE_ERR_TIMEOUT);
    if (rc < 0) {
        http_once_problem(c, rc, &err);
    } else {
        http_json(c, 200, json_pack("{s:o, s:b, s:o}", "subscription",
                                    target_json(sp.scope, sp.type,
                                                sp.subject),
                                    "active", !cancel, "receipt",
                                    adapter_receipt_json(&receipt, 0)));
    }
    once_receipt_clear(&receipt);
}

/* ---- the long poll ----------------------------------------------------- */

/* A decimal query parameter in [min, max], def when absent: 0, or -1
 * with c answered. */
static int query_number(http_call *c, const char *name, uint64_t min,
                        uint64_t max, uint64_t def, uint64_t *out)
{
    const char *v = http_query(c, name);
    char *end;

    *out = def;
    if (v == NULL)
        return 0;
    errno = 0;
    *out = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 ||
        *out < min || *out > max) {
        http_problem(c, 400, "INVALID_ARGUMENT", "%s: must be an integer "
                     "from %llu to %llu", name, (unsigned long long)min,
                     (unsigned long long)max);
        return -1;
    }
    return 0;
}

/* Pulls after *after until a notice comes or the department is up to
 * date (at most PULLS_PER_ROUND pulls, each one short call on a pooled
 * connection); *after moves to where the next pull starts. */
static int pull_round(http_call *c, uint64_t *after, once_notice *out,
                      size_t cap, size_t *count, once_error *err)
{
    once_client *client;
    uint64_t scanned;
    int rc = 0, i;

    *count = 0;
    for (i = 0; i < PULLS_PER_ROUND; i++) {
        client = pool_borrow(c->gw->core.pool);
        rc = once_client_notices_pull(client, *after, out, cap, count,
                                      &scanned, err);
        pool_return(c->gw->core.pool, client, rc == -ONCE_ERR_TIMEOUT);
        if (rc < 0)
            return rc;
        if (*count > 0 || scanned == *after) {
            *after = scanned;
            return 0;
        }
        *after = scanned;
    }
    return 0;
}

static void poll_route(http_call *c)
{
    once_notice *out = NULL;
    uint64_t after, wait_s, limit, gen, deadline, until;
    size_t count = 0, i;
    bool stopping;
    json_t *list;
    once_error err;
    int rc;

    if (query_number(c, "after", 0, INT64_MAX, 0, &after) < 0 ||
        query_number(c, "wait", 0, GATEWAY_MAX_NOTICE_WAIT_S, 0,
                     &wait_s) < 0 ||
        query_number(c, "limit", 1, GATEWAY_MAX_NOTICES, GATEWAY_MAX_NOTICES,
                     &limit) < 0)
        return;
    out = calloc((size_t)limit, sizeof(*out));
    if (out == NULL) {
        http_problem(c, 500, "NO_MEMORY", "out of memory");
        return;
    }
    deadline = monotonic_ms() + wait_s * 1000u;
    for (;;) {
        pthread_mutex_lock(&watch.lock);
        gen = watch.generation;
        pthread_mutex_unlock(&watch.lock);
        rc = pull_round(c, &after, out, (size_t)limit, &count, &err);
        if (rc < 0) {
            http_once_problem(c, rc, &err);
            goto out;
        }
        if (count > 0 || monotonic_ms() >= deadline)
            break;
        /* Asleep until a push, the deadline, or the next pull. */
        until = monotonic_ms() + REPULL_MS;
        if (until > deadline)
            until = deadline;
        pthread_mutex_lock(&watch.lock);
        while (watch.generation == gen && !watch.stopping &&
               monotonic_ms() < until)
            wait_until(until);
        stopping = watch.stopping;
        pthread_mutex_unlock(&watch.lock);
        if (stopping)
            break;
    }
    list = json_array();
    for (i = 0; i < count; i++)
        json_array_append_new(list, json_pack(
            "{s:I, s:s, s:s, s:I, s:s}", "leaf_index",
            (json_int_t)out[i].leaf_index, "type", out[i].type, "subject",
            out[i].subject, "version", (json_int_t)out[i].version, "event",
            out[i].event == ONCE_NOTICE_REVOKED ? "revoked" : "new_version"));
    http_json(c, 200, json_pack("{s:o, s:I}", "notices", list, "next_after",
                                (json_int_t)after));
out:
    sodium_memzero(out, (size_t)limit * sizeof(*out));
    free(out);
}

/* ---- the acknowledgement ----------------------------------------------- */

static void ack_route(http_call *c)
{
    once_client *client;
    uint64_t through, cursor = 0;
    once_error err;
    int rc;

    if (http_query(c, "through") == NULL) {
        http_problem(c, 400, "INVALID_ARGUMENT", "through: required, the "
                     "leaf index every caller has handled the notices up "
                     "to");
        return;
    }
    if (query_number(c, "through", 0, INT64_MAX, 0, &through) < 0)
        return;
    client = pool_borrow(c->gw->core.pool);
    rc = once_client_notice_ack_pull(client, through, &cursor, &err);
    pool_return(c->gw->core.pool, client, rc == -ONCE_ERR_TIMEOUT);
    if (rc < 0) {
        http_once_problem(c, rc, &err);
        return;
    }
    http_json(c, 200, json_pack("{s:I}", "acked", (json_int_t)cursor));
}

void notices_dispatch(http_call *c)
{
    bool get = strcmp(c->method, "GET") == 0;

    if (strcmp(c->route, "notice_ack") == 0 &&
        strcmp(c->method, "POST") == 0)
        ack_route(c);
    else if (strcmp(c->route, "notices") == 0 && get)
        poll_route(c);
    else if (strcmp(c->route, "notices") == 0 ||
             strcmp(c->route, "notice_ack") == 0)
        http_problem(c, 405, "METHOD_NOT_ALLOWED", "%s is not allowed here",
                     c->method);
    else if (strcmp(c->path, "/v1/subscriptions") == 0 && get)
        list_route(c);
    else if (strcmp(c->path, "/v1/subscriptions") != 0 &&
             strcmp(c->method, "PUT") == 0)
        change_route(c, false);
    else if (strcmp(c->path, "/v1/subscriptions") != 0 &&
             strcmp(c->method, "DELETE") == 0)
        change_route(c, true);
    else
        http_problem(c, 405, "METHOD_NOT_ALLOWED", "%s is not allowed here",
                     c->method);
}
