/*
 * zap.h - the ZAP handler: which CURVE keys may connect to the broker.
 * See zap.c.
 */
#ifndef ONCE_ZAP_H
#define ONCE_ZAP_H

#include "once/once.h"
#include "store.h"

typedef struct zap zap;

/* Binds inproc://zeromq.zap.01 in zmq_ctx and starts the handler thread.
 * Call before any CURVE server socket of the context binds: libzmq admits
 * every key when no handler is bound. */
int zap_start(zap **out, void *zmq_ctx, const store *db, once_error *err);

/* Joins the thread, which returns once the context is shut down, and frees
 * the handler. */
void zap_join(zap *z);

#endif
