/*
 * socket_monitor.h - reading ZeroMQ socket monitor events.
 *
 * Internal to libonce and its tests. See socket_monitor.c.
 */
#ifndef ONCE_SOCKET_MONITOR_H
#define ONCE_SOCKET_MONITOR_H

#include <stdint.h>

/* Receives one event from a monitor PAIR socket (zmq_socket_monitor) and
 * returns its number (ZMQ_EVENT_*), or 0 when none could be received;
 * flags as for zmq_msg_recv (ZMQ_DONTWAIT to poll). */
int socket_monitor_event(void *monitor, int flags);

/* The same, with the event's value (a file descriptor for ACCEPTED and
 * DISCONNECTED, a status or errno for the handshake failures) in *value. */
int socket_monitor_read(void *monitor, int flags, uint32_t *value);

#endif
