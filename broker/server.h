/*
 * server.h - onced's I/O thread and its pool of workers. See server.c.
 */
#ifndef ONCE_SERVER_H
#define ONCE_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "config.h"
#include "conn_limit.h"
#include "once/once.h"
#include "replay.h"
#include "reply.h"
#include "store.h"

typedef struct server server;

typedef struct server_options {
    const broker_config *cfg;
    store *db;
    const struct subscriptions *subs; /* subscriptions.c's tables */
    replay *replay;
    broker_identity *identity;
    const once_keypair *broker_key;
    const uint8_t *audit_key;       /* AUDIT_KEY_BYTES, copied */
    void *zmq_ctx;
    conn_limit *connections;        /* the ZAP handler's, told whose each
                                     * connection is */
} server_options;

/* Binds the inproc endpoints, starts the workers, binds the ROUTER on
 * cfg->listen (the ZAP handler must already be bound) and starts the I/O
 * thread. The endpoint bound is written to bound (for tcp://...:*). */
int server_start(server **out, const server_options *opt, char *bound,
                 size_t bound_cap, once_error *err);

/* Stops reading new messages, waits until every message read has been
 * answered (publishes committed), closes the ROUTER and joins the I/O
 * thread. Waits 20 s at most, 5 s after broker_fail (a dead thread never
 * answers): 0 when everything was answered, -1 when it gave up. */
int server_drain(server *srv);

/* Joins the workers, which return once the context is shut down, and frees
 * the server. */
void server_free(server *srv);

#endif
