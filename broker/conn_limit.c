/*
 * conn_limit.c - how many connections each department holds open, and the
 * cap the ZAP handler admits them under.
 *
 * Why. Every connection costs onced a file descriptor. A department that
 * opened more connections than onced has descriptors (1,100 idle ones
 * against the usual 1,024) locked every department out, and libzmq's
 * accept loop spun on EMFILE. So the ZAP handler refuses a department's
 * connection once it holds `max_connections_per_department` open (once.conf),
 * and onced raises its descriptor limit at start (onced.c).
 *
 * The hard part is knowing when a connection closes, and whose it was. With
 * libzmq 4.3's stable API nothing ties a ZAP request to a connection: the
 * request carries the peer's address (the host only, no port) but no file
 * descriptor, and the handshake events carry none either. What does carry
 * the descriptor: the ROUTER's monitor events ZMQ_EVENT_ACCEPTED and
 * ZMQ_EVENT_DISCONNECTED (libzmq sends DISCONNECTED before it closes the
 * descriptor, so for one descriptor number the events come in order even
 * when the number is reused), and every message, whose ZMQ_SRCFD is the
 * descriptor it came in on and whose User-Id is the department ZAP admitted.
 * From these the table keeps:
 *
 *   - for each open descriptor: "silent" (accepted, no message yet: in its
 *     handshake, refused and closing, or admitted and idle) or "seen" with
 *     the department its messages named;
 *   - per department, its seen connections: exact;
 *   - per peer address, its silent connections: exact;
 *   - per (address, department), admissions not seen yet ("pending").
 *
 * A department's count is its seen connections plus its pending
 * admissions. A pending admission becomes seen at the connection's first
 * message. When a silent connection closes, the table cannot tell whether
 * it was an admitted one, and of which department; but the pending
 * admissions of an address can never be more than its silent connections,
 * so whenever they are, the largest is cut until they are not. For an
 * address that only one department connects from -- the normal case, each
 * department's systems run on its own hosts -- that makes its count exact,
 * up to the connections still in their handshake (ZMQ_HANDSHAKE_IVL ends
 * those). Departments sharing one address (behind one NAT) can be charged
 * for each other's silent connections, at most as many as are open from
 * that address, and never once none is: no count outlives the connections
 * that could explain it.
 *
 * One mutex guards the table: the ZAP thread reads the monitor and admits,
 * the I/O thread marks messages seen (one lock and a compare per message),
 * and the console counts who is connected (once a scrape, a pass over
 * the departments without allocating or logging).
 */
#include <netdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conn_limit.h"
#include "diag.h"

enum { FD_FREE = 0, FD_SILENT, FD_SEEN };

typedef struct fd_entry {
    uint8_t state;
    uint32_t index; /* bucket when silent, department when seen */
} fd_entry;

typedef struct dept_slot {
    char id[ONCE_MAX_NAME + 1];
    unsigned seen;
} dept_slot;

typedef struct bucket {
    char address[CONN_ADDRESS_MAX];
    unsigned silent;
    bool used;
} bucket;

typedef struct pending {
    uint32_t bucket;
    uint32_t dept;
    unsigned count;
} pending;

struct conn_limit {
    pthread_mutex_t lock;
    unsigned cap;
    fd_entry *fds;
    size_t fd_cap;
    dept_slot *depts;
    size_t dept_count, dept_cap;
    bucket *buckets;
    size_t bucket_count, bucket_cap;
    pending *pend;
    size_t pend_count, pend_cap;
    bool warned_address;
};

/* Grows *array of *cap elements of size to hold need; false when out of
 * memory. */
static bool grow(void **array, size_t *cap, size_t size, size_t need)
{
    size_t n = *cap != 0 ? *cap : 16;
    void *p;

    if (need <= *cap)
        return true;
    while (n < need)
        n *= 2;
    p = realloc(*array, n * size);
    if (p == NULL)
        return false;
    memset((char *)p + *cap * size, 0, (n - *cap) * size);
    *array = p;
    *cap = n;
    return true;
}

int conn_limit_new(conn_limit **out, unsigned per_department, once_error *err)
{
    conn_limit *cl = calloc(1, sizeof(*cl));

    *out = NULL;
    if (cl == NULL || pthread_mutex_init(&cl->lock, NULL) != 0) {
        free(cl);
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    }
    cl->cap = per_department;
    *out = cl;
    return 0;
}

void conn_limit_free(conn_limit *cl)
{
    if (cl == NULL)
        return;
    pthread_mutex_destroy(&cl->lock);
    free(cl->fds);
    free(cl->depts);
    free(cl->buckets);
    free(cl->pend);
    free(cl);
}

unsigned conn_limit_cap(const conn_limit *cl)
{
    return cl->cap;
}

/* libzmq's own recipe (stream_engine_base.cpp, get_peer_address), so the
 * result equals the ZAP request's address frame. */
void conn_limit_peer_address(int fd, char out[CONN_ADDRESS_MAX])
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[64]; /* a numeric IPv6 address with a zone fits */

    out[0] = '\0';
    memset(&ss, 0, sizeof(ss));
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0 ||
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), NULL, 0,
                    NI_NUMERICHOST) != 0)
        return;
    if (ss.ss_family == AF_UNIX) {
        struct ucred cred;
        socklen_t size = sizeof(cred);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &size) == 0) {
            snprintf(out, CONN_ADDRESS_MAX, "%s:%u:%u:%d", host,
                     (unsigned)cred.uid, (unsigned)cred.gid, (int)cred.pid);
            return;
        }
    }
    snprintf(out, CONN_ADDRESS_MAX, "%s", host);
}

static long find_bucket(const conn_limit *cl, const char *address)
{
    size_t i;

    for (i = 0; i < cl->bucket_count; i++)
        if (cl->buckets[i].used &&
            strncmp(cl->buckets[i].address, address, CONN_ADDRESS_MAX - 1) ==
                0)
            return (long)i;
    return -1;
}

static long add_bucket(conn_limit *cl, const char *address)
{
    size_t i;

    for (i = 0; i < cl->bucket_count; i++)
        if (!cl->buckets[i].used)
            break;
    if (i == cl->bucket_count) {
        if (!grow((void **)&cl->buckets, &cl->bucket_cap, sizeof(bucket),
                  i + 1))
            return -1;
        cl->bucket_count++;
    }
    memset(&cl->buckets[i], 0, sizeof(bucket));
    snprintf(cl->buckets[i].address, CONN_ADDRESS_MAX, "%s", address);
    cl->buckets[i].used = true;
    return (long)i;
}

static long find_dept(conn_limit *cl, const char *dept, bool create)
{
    size_t i;

    for (i = 0; i < cl->dept_count; i++)
        if (strcmp(cl->depts[i].id, dept) == 0)
            return (long)i;
    if (!create || !grow((void **)&cl->depts, &cl->dept_cap,
                         sizeof(dept_slot), cl->dept_count + 1))
        return -1;
    snprintf(cl->depts[i].id, sizeof(cl->depts[i].id), "%s", dept);
    cl->depts[i].seen = 0;
    cl->dept_count++;
    return (long)i;
}

static pending *find_pending(conn_limit *cl, size_t b, size_t d, bool create)
{
    size_t i;

    for (i = 0; i < cl->pend_count; i++)
        if (cl->pend[i].bucket == b && cl->pend[i].dept == d)
            return &cl->pend[i];
    if (!create || !grow((void **)&cl->pend, &cl->pend_cap, sizeof(pending),
                         cl->pend_count + 1))
        return NULL;
    cl->pend[i] = (pending){ (uint32_t)b, (uint32_t)d, 0 };
    cl->pend_count++;
    return &cl->pend[i];
}

static void drop_empty_pending(conn_limit *cl)
{
    size_t i = 0;

    while (i < cl->pend_count) {
        if (cl->pend[i].count == 0)
            cl->pend[i] = cl->pend[--cl->pend_count];
        else
            i++;
    }
}

/* Cuts the bucket's pending admissions to its silent connections, largest
 * first, and frees the bucket once nothing is left in it. */
static void trim(conn_limit *cl, size_t b)
{
    for (;;) {
        pending *largest = NULL;
        unsigned total = 0;
        size_t i;

        for (i = 0; i < cl->pend_count; i++) {
            if (cl->pend[i].bucket != b)
                continue;
            total += cl->pend[i].count;
            if (largest == NULL || cl->pend[i].count > largest->count)
                largest = &cl->pend[i];
        }
        if (total <= cl->buckets[b].silent)
            break;
        largest->count--;
    }
    drop_empty_pending(cl);
    if (cl->buckets[b].silent == 0)
        cl->buckets[b].used = false;
}

static unsigned open_count(const conn_limit *cl, size_t d)
{
    unsigned n = cl->depts[d].seen;
    size_t i;

    for (i = 0; i < cl->pend_count; i++)
        if (cl->pend[i].dept == d)
            n += cl->pend[i].count;
    return n;
}

/* Forgets what fd was; the caller holds the lock. */
static void close_fd(conn_limit *cl, int fd, char dept[ONCE_MAX_NAME + 1])
{
    fd_entry *e;

    if (dept != NULL)
        dept[0] = '\0';
    if (fd < 0 || (size_t)fd >= cl->fd_cap)
        return;
    e = &cl->fds[fd];
    if (e->state == FD_SILENT) {
        cl->buckets[e->index].silent--;
        trim(cl, e->index);
    } else if (e->state == FD_SEEN) {
        cl->depts[e->index].seen--;
        if (dept != NULL)
            snprintf(dept, ONCE_MAX_NAME + 1, "%s", cl->depts[e->index].id);
    }
    e->state = FD_FREE;
}

void conn_limit_accepted(conn_limit *cl, int fd)
{
    char address[CONN_ADDRESS_MAX];
    long b;

    if (fd < 0)
        return;
    conn_limit_peer_address(fd, address);
    pthread_mutex_lock(&cl->lock);
    /* A number still in use means an event was missed: start afresh. */
    close_fd(cl, fd, NULL);
    if (!grow((void **)&cl->fds, &cl->fd_cap, sizeof(fd_entry),
              (size_t)fd + 1) ||
        ((b = find_bucket(cl, address)) < 0 &&
         (b = add_bucket(cl, address)) < 0)) {
        pthread_mutex_unlock(&cl->lock);
        diag_error("zap", "out of memory counting connections");
        return;
    }
    cl->buckets[b].silent++;
    cl->fds[fd] = (fd_entry){ FD_SILENT, (uint32_t)b };
    pthread_mutex_unlock(&cl->lock);
}

void conn_limit_closed(conn_limit *cl, int fd, char dept[ONCE_MAX_NAME + 1])
{
    pthread_mutex_lock(&cl->lock);
    close_fd(cl, fd, dept);
    pthread_mutex_unlock(&cl->lock);
}

bool conn_limit_admit(conn_limit *cl, const char *address, const char *dept,
                      unsigned *open)
{
    bool admitted = false, unmatched = false;
    pending *p;
    long d, b;

    pthread_mutex_lock(&cl->lock);
    d = find_dept(cl, dept, true);
    if (d < 0) {
        pthread_mutex_unlock(&cl->lock);
        diag_error("zap", "out of memory counting connections");
        *open = 0;
        return false;
    }
    *open = open_count(cl, (size_t)d);
    if (*open < cl->cap) {
        b = find_bucket(cl, address);
        if (b < 0) {
            /* Its ACCEPTED event comes a handshake before its ZAP
             * request (zap.c), so the address forms differ: the
             * admission is cut at once, the connection counted only once
             * it sends a message. Counting too few can let a department
             * past its cap; counting too many could lock it out. */
            unmatched = !cl->warned_address;
            cl->warned_address = true;
            b = add_bucket(cl, address);
        }
        p = b >= 0 ? find_pending(cl, (size_t)b, (size_t)d, true) : NULL;
        if (p != NULL) {
            p->count++;
            (*open)++;
            admitted = true;
            trim(cl, (size_t)b);
        }
    }
    pthread_mutex_unlock(&cl->lock);
    if (unmatched)
        diag_warn("zap", "no open connection from %s, which the ZAP request "
                 "names: connections that have sent nothing yet are not "
                 "counted against the cap", address);
    return admitted;
}

void conn_limit_seen(conn_limit *cl, int fd, const char *dept)
{
    fd_entry *e;
    pending *p;
    long d;

    if (fd < 0)
        return;
    pthread_mutex_lock(&cl->lock);
    if ((size_t)fd >= cl->fd_cap || cl->fds[fd].state == FD_FREE) {
        pthread_mutex_unlock(&cl->lock);
        return;
    }
    e = &cl->fds[fd];
    if (e->state == FD_SEEN && strcmp(cl->depts[e->index].id, dept) == 0) {
        pthread_mutex_unlock(&cl->lock);
        return;
    }
    d = find_dept(cl, dept, true);
    if (d < 0) {
        pthread_mutex_unlock(&cl->lock);
        return;
    }
    if (e->state == FD_SILENT) {
        uint32_t b = e->index;

        p = find_pending(cl, b, (size_t)d, false);
        if (p != NULL && p->count > 0)
            p->count--;
        cl->buckets[b].silent--;
        e->state = FD_SEEN;
        e->index = (uint32_t)d;
        cl->depts[d].seen++;
        trim(cl, b);
    } else {
        /* The number was reused while an older connection's message was
         * still queued: the newest message says whose it is. */
        cl->depts[e->index].seen--;
        e->index = (uint32_t)d;
        cl->depts[d].seen++;
    }
    pthread_mutex_unlock(&cl->lock);
}

unsigned conn_limit_open(conn_limit *cl, const char *dept)
{
    unsigned n = 0;
    long d;

    pthread_mutex_lock(&cl->lock);
    d = find_dept(cl, dept, false);
    if (d >= 0)
        n = open_count(cl, (size_t)d);
    pthread_mutex_unlock(&cl->lock);
    return n;
}

unsigned conn_limit_departments_connected(conn_limit *cl)
{
    unsigned n = 0;
    size_t d;

    pthread_mutex_lock(&cl->lock);
    for (d = 0; d < cl->dept_count; d++)
        if (open_count(cl, d) > 0)
            n++;
    pthread_mutex_unlock(&cl->lock);
    return n;
}
