/*
 * socket_monitor.c - reading ZeroMQ socket monitor events.
 *
 * A CURVE handshake the broker's ZAP handler refuses shows up on the
 * client only as a monitor event (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH), never
 * as a message: the client library reads it to report UNKNOWN_SENDER
 * instead of a timeout, and the end-to-end tests read it to check that a
 * handshake was refused. The broker reads its ROUTER's events for the
 * file descriptors of connections opened and closed (conn_limit.c). An
 * event is two frames, 6 bytes (u16 event in host order, u32 value) and
 * then the endpoint; the second is drained so the next read starts at the
 * next event.
 */
#include "socket_monitor.h"

#include <stdint.h>
#include <string.h>

#include <zmq.h>

int socket_monitor_event(void *monitor, int flags)
{
    uint32_t value;

    return socket_monitor_read(monitor, flags, &value);
}

int socket_monitor_read(void *monitor, int flags, uint32_t *value)
{
    zmq_msg_t frame;
    uint16_t event = 0;
    int more;

    *value = 0;
    zmq_msg_init(&frame);
    if (zmq_msg_recv(&frame, monitor, flags) < 0) {
        zmq_msg_close(&frame);
        return 0;
    }
    if (zmq_msg_size(&frame) >= 6) {
        memcpy(&event, zmq_msg_data(&frame), sizeof(event));
        memcpy(value, (uint8_t *)zmq_msg_data(&frame) + 2, sizeof(*value));
    } else if (zmq_msg_size(&frame) >= 2) {
        memcpy(&event, zmq_msg_data(&frame), sizeof(event));
    }
    more = zmq_msg_more(&frame);
    zmq_msg_close(&frame);
    while (more) {
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, monitor, 0) < 0) {
            zmq_msg_close(&frame);
            break;
        }
        more = zmq_msg_more(&frame);
        zmq_msg_close(&frame);
    }
    return event;
}
