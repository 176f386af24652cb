/*
 * zap.h - the ZAP handler: which CURVE keys may connect to the broker.
 * See zap.c.
 */
#ifndef ONCE_ZAP_H
#define ONCE_ZAP_H

#include <zmq.h>

#include "conn_limit.h"
#include "once/once.h"
#include "store.h"

/* Where the ROUTER's monitor (zmq_socket_monitor) publishes the events
 * the handler counts connections by. */
#define ZAP_ROUTER_MONITOR "inproc://onced-router-monitor"
/* The events it needs. */
#define ZAP_ROUTER_EVENTS                                                    \
    (ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED |                           \
     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |                                  \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)

typedef struct zap zap;

/* Binds inproc://zeromq.zap.01 in zmq_ctx and starts the handler thread,
 * which admits at most max_connections open connections per department.
 * Call before any CURVE server socket of the context binds: libzmq admits
 * every key when no handler is bound. */
int zap_start(zap **out, void *zmq_ctx, const store *db,
              unsigned max_connections, once_error *err);

/* The connection table, which the I/O thread tells whose each connection
 * is (conn_limit_seen). Lives until zap_join. */
conn_limit *zap_connections(zap *z);

/* Joins the thread, which returns once the context is shut down, and frees
 * the handler. */
void zap_join(zap *z);

#endif
