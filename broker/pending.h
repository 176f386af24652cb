/*
 * pending.h - the bytes of messages onced has read and not yet answered,
 * per department and in all. Used by the I/O thread only. See pending.c.
 */
#ifndef ONCE_PENDING_H
#define ONCE_PENDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "once/once.h"

typedef struct pending_dept {
    char id[ONCE_MAX_NAME + 1];
    size_t bytes;          /* read, not answered */
    uint64_t refused;      /* refused since the last log line */
    uint64_t last_log_ms;  /* monotonic */
} pending_dept;

typedef struct pending {
    pending_dept *depts;
    size_t count;
    size_t cap;
    size_t total;
    size_t limit;          /* all departments: reading stops at this */
    size_t dept_limit;     /* one department: its messages are refused */
} pending;

void pending_init(pending *p, size_t limit, size_t dept_limit);
void pending_free(pending *p);

/* Charges a message of len bytes from department dept. 0: charged, and
 * the routing id frame rid now carries what pending_release needs (the
 * workers and the writer hand it back with the answer). -ONCE_ERR_QUOTA_
 * EXCEEDED: the department would hold more than dept_limit; nothing was
 * charged and *d is its entry, for the refusal. -ONCE_ERR_NO_MEMORY. */
int pending_charge(pending *p, const char *dept, size_t len, zmq_msg_t *rid,
                   pending_dept **d);

/* Releases what the routing id frame rid of an answer (or of an empty
 * token, which is the frame alone) was charged, and puts the routing id
 * the ROUTER knows back into rid. -1 when rid carries no charge. */
int pending_release(pending *p, zmq_msg_t *rid);

/* The length of the routing id the ROUTER knows at the start of a
 * charged frame rid (0 when it carries no charge): what the notice
 * fan-out keeps to push to that connection later (notices.c). */
size_t pending_routing_id_len(const zmq_msg_t *rid);

/* True when all departments together hold limit bytes or more: the I/O
 * thread reads no more until answers go out. */
bool pending_full(const pending *p);

#endif
