/*
 * socket_monitor.h - reading ZeroMQ socket monitor events.
 *
 * Internal to libonce and its tests. See socket_monitor.c.
 */
#ifndef ONCE_SOCKET_MONITOR_H
#define ONCE_SOCKET_MONITOR_H

/* Receives one event from a monitor PAIR socket (zmq_socket_monitor) and
 * returns its number (ZMQ_EVENT_*), or 0 when none could be received;
 * flags as for zmq_msg_recv (ZMQ_DONTWAIT to poll). */
int socket_monitor_event(void *monitor, int flags);

#endif
