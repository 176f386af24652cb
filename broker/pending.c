/*
 * pending.c - the bytes of messages onced has read and not yet answered,
 * per department and in all.
 *
 * Why. A message read off the ROUTER stays in memory until its answer
 * leaves: in the job queues, in a worker, in the writer's group commit.
 * Counting messages (the queues' high-water marks) does not bound that
 * memory, since a frame may be up to 5 MiB (server.c), so the I/O thread
 * also counts bytes (DESIGN.md, "Sharing fairly"):
 *
 *   - one department may hold at most `department_pending_kb`: a message
 *     that would take it over is refused at once with QUOTA_EXCEEDED and
 *     freed, so a department flooding the broker cannot take the memory
 *     the others need, and the I/O thread goes on reading (and refusing)
 *     rather than letting the flood queue up in libzmq;
 *   - all together hold at most `pending_kb` (plus the one message that
 *     reached it): then the I/O thread stops reading until answers free
 *     bytes, and back-pressure reaches the clients through ZeroMQ's
 *     queues, as when every worker is busy.
 *
 * How a charge finds its way back. The routing id frame travels with the
 * job to a worker, maybe on to the writer, and comes back with the answer
 * (or alone, as the empty token of a job with nothing to send). The charge
 * rides at its end: CHARGE_BYTES appended to the routing id the ROUTER
 * gave, the department's index and the bytes charged, and is cut off again
 * before the answer goes out. No table of jobs in flight is needed, and
 * nothing outside this file reads the frame's bytes.
 *
 * Only the I/O thread calls these functions: no lock. Departments are a
 * short list (the registered ones that sent something), searched in order.
 */
#include <stdlib.h>
#include <string.h>

#include "pending.h"

/* u32 department index, u32 bytes (frames are at most 5 MiB). */
#define CHARGE_BYTES 8

void pending_init(pending *p, size_t limit, size_t dept_limit)
{
    memset(p, 0, sizeof(*p));
    p->limit = limit;
    p->dept_limit = dept_limit;
}

void pending_free(pending *p)
{
    free(p->depts);
    memset(p, 0, sizeof(*p));
}

static pending_dept *find(pending *p, const char *dept, uint32_t *index)
{
    size_t i;

    for (i = 0; i < p->count; i++) {
        if (strcmp(p->depts[i].id, dept) == 0) {
            *index = (uint32_t)i;
            return &p->depts[i];
        }
    }
    if (p->count == p->cap) {
        size_t cap = p->cap != 0 ? p->cap * 2 : 16;
        pending_dept *grown = realloc(p->depts, cap * sizeof(*grown));

        if (grown == NULL)
            return NULL;
        p->depts = grown;
        p->cap = cap;
    }
    memset(&p->depts[i], 0, sizeof(p->depts[i]));
    memcpy(p->depts[i].id, dept, strnlen(dept, ONCE_MAX_NAME));
    p->count++;
    *index = (uint32_t)i;
    return &p->depts[i];
}

int pending_charge(pending *p, const char *dept, size_t len, zmq_msg_t *rid,
                   pending_dept **d)
{
    size_t rid_len = zmq_msg_size(rid);
    uint32_t index, charged = (uint32_t)len;
    zmq_msg_t with;
    uint8_t *out;

    *d = find(p, dept, &index);
    if (*d == NULL || len > UINT32_MAX)
        return -ONCE_ERR_NO_MEMORY;
    if (len > p->dept_limit - (*d)->bytes) /* bytes <= dept_limit */
        return -ONCE_ERR_QUOTA_EXCEEDED;
    if (zmq_msg_init_size(&with, rid_len + CHARGE_BYTES) != 0)
        return -ONCE_ERR_NO_MEMORY;
    out = zmq_msg_data(&with);
    memcpy(out, zmq_msg_data(rid), rid_len);
    memcpy(out + rid_len, &index, sizeof(index));
    memcpy(out + rid_len + sizeof(index), &charged, sizeof(charged));
    zmq_msg_move(rid, &with);
    (*d)->bytes += len;
    p->total += len;
    return 0;
}

size_t pending_routing_id_len(const zmq_msg_t *rid)
{
    size_t len = zmq_msg_size((zmq_msg_t *)rid);

    return len >= CHARGE_BYTES ? len - CHARGE_BYTES : 0;
}

int pending_release(pending *p, zmq_msg_t *rid)
{
    size_t len = zmq_msg_size(rid);
    const uint8_t *in = zmq_msg_data(rid);
    uint32_t index, charged;
    zmq_msg_t bare;

    if (len < CHARGE_BYTES)
        return -1;
    memcpy(&index, in + len - CHARGE_BYTES, sizeof(index));
    memcpy(&charged, in + len - sizeof(charged), sizeof(charged));
    if (index >= p->count || p->depts[index].bytes < charged ||
        p->total < charged)
        return -1;
    p->depts[index].bytes -= charged;
    p->total -= charged;
    if (zmq_msg_init_size(&bare, len - CHARGE_BYTES) != 0)
        return 0; /* released; the caller sends with the longer id, which
                   * the ROUTER cannot route: the answer is dropped */
    memcpy(zmq_msg_data(&bare), in, len - CHARGE_BYTES);
    zmq_msg_move(rid, &bare);
    return 0;
}

bool pending_full(const pending *p)
{
    return p->total >= p->limit;
}
