/*
 * conn_limit.h - how many connections each department holds open, and the
 * cap the ZAP handler admits them under. See conn_limit.c.
 */
#ifndef ONCE_CONN_LIMIT_H
#define ONCE_CONN_LIMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "once/once.h"

/* Long enough for any address libzmq hands the ZAP handler: an IPv6
 * address with a zone, or "localhost:UID:GID:PID" for ipc://. */
#define CONN_ADDRESS_MAX 112

typedef struct conn_limit conn_limit;

/* A table for at most per_department open connections per department. */
int conn_limit_new(conn_limit **out, unsigned per_department,
                   once_error *err);
void conn_limit_free(conn_limit *cl);

/* The ROUTER accepted a connection on fd (ZMQ_EVENT_ACCEPTED). */
void conn_limit_accepted(conn_limit *cl, int fd);

/* The connection on fd closed (ZMQ_EVENT_DISCONNECTED). When it had sent
 * a message, its department is written to dept (else dept is ""). */
void conn_limit_closed(conn_limit *cl, int fd, char dept[ONCE_MAX_NAME + 1]);

/* The ZAP handler's question for a key of department dept connecting from
 * address (ZAP's address frame): true when the department has fewer than
 * the cap open, and then the connection counts from now on. *open is the
 * number it holds, this one included when admitted. */
bool conn_limit_admit(conn_limit *cl, const char *address, const char *dept,
                      unsigned *open);

/* A message of department dept arrived on fd (ZMQ_SRCFD): from now on
 * that connection is known to be dept's. Cheap when it already was. */
void conn_limit_seen(conn_limit *cl, int fd, const char *dept);

/* The cap. */
unsigned conn_limit_cap(const conn_limit *cl);

/* For the console, under the table's lock (held for one pass over the
 * departments): the connections department dept holds open now, and the
 * number of departments that hold at least one. */
unsigned conn_limit_open(conn_limit *cl, const char *dept);
unsigned conn_limit_departments_connected(conn_limit *cl);

/* The peer address of fd in the form libzmq gives the ZAP handler (the
 * numeric host for tcp://, "localhost:UID:GID:PID" for ipc://), "" when
 * it has none. */
void conn_limit_peer_address(int fd, char out[CONN_ADDRESS_MAX]);

#endif
