/*
 * zap.c - the ZAP handler: which CURVE keys may connect to the broker.
 *
 * libzmq asks a ZAP handler (RFC 27/ZAP, a REP socket on the fixed inproc
 * endpoint inproc://zeromq.zap.01 of the socket's context) about every new
 * CURVE connection, after the handshake proved the client holds the secret
 * half of the key it presents. This handler admits a connection only when
 * the key belongs to a registered department whose status is active, and
 * answers with the department id as the ZAP User-Id. libzmq then attaches
 * that id to every message of the connection, and the workers refuse any
 * envelope whose signed sender is not it.
 *
 * Two libzmq 4.3 behaviours shape this file. A CURVE server whose context
 * has no handler bound admits every key, so zap_start binds before the
 * ROUTER exists (onced.c keeps that order). And the handler runs on the
 * broker's side of every handshake, so it answers from LMDB directly, never
 * from state that could go stale: a department suspended with oncectl is
 * refused at its next connection without a restart.
 *
 * Keys. A department's CurveZMQ key is derived from its Ed25519 key
 * (crypto_sign_ed25519_pk_to_curve25519); the map loses the sign of the
 * Edwards x coordinate, so the broker cannot go from the presented Curve25519
 * key back to the Ed25519 key that policy.c indexes. This handler keeps a
 * table from derived Curve25519 key to department id, sorted for binary
 * search, and rebuilds it from policy_department_list whenever a key is not
 * in it, so a department added with oncectl is admitted at once. The
 * rebuild derives keys only for departments not already in the table, so an
 * unknown key costs one walk of the departments, not one key derivation per
 * department. The table only says which department a key claims to be;
 * every admission then reads that department afresh (status, and that its
 * stored key is still the one the table was built from).
 *
 * Connections. An admitted key is also refused once its department holds
 * `max_connections_per_department` connections open (conn_limit.c). To
 * count them this thread also reads the ROUTER's monitor events, and reads
 * every event already sent before it decides about a request: libzmq
 * sends a connection's ACCEPTED as it hands the connection to an I/O
 * thread, several network round trips (the CURVE handshake) before that
 * connection's ZAP request, so it is counted by then.
 *
 * The handler never logs a full key; refusals name the key's first bytes in
 * hex and the peer address, which is what an operator needs to find the
 * misconfigured client. Refusal lines are rate-limited per cause (unknown
 * key, suspended, over the cap, malformed): at most LOG_BURST in each
 * LOG_INTERVAL_MS, then one line saying how many were left out, so a
 * client that retries an unknown key thousands of times cannot flood the
 * log (or the disk under it).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <zmq.h>

#include "diag.h"
#include "monotonic.h"
#include "policy.h"
#include "reply.h"
#include "socket_monitor.h"
#include "zap.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_MAX_FRAMES 8
#define ZAP_FRAME_MAX 256
#define CURVE_KEY_BYTES 32
/* Refusal lines per cause and interval before they are counted instead. */
#define LOG_BURST 10
#define LOG_INTERVAL_MS 60000

/* The causes whose log lines are limited separately, so a flood of one
 * does not hide the others. */
enum {
    REFUSED_UNKNOWN,
    REFUSED_SUSPENDED,
    REFUSED_OVER_CAP,
    REFUSED_MALFORMED,
    REFUSED_CAUSES
};

typedef struct log_limit {
    uint64_t window_start; /* monotonic ms */
    unsigned lines;        /* written in this window */
    unsigned long suppressed;
} log_limit;

typedef struct key_entry {
    uint8_t curve[CURVE_KEY_BYTES];
    uint8_t ed[ONCE_PUBLIC_KEY_BYTES];
    char id[ONCE_MAX_NAME + 1];
} key_entry;

typedef struct key_table {
    key_entry *entries;
    size_t count;
    size_t cap;
} key_table;

struct zap {
    pthread_t thread;
    void *socket;
    void *monitor;      /* PAIR: the ROUTER's monitor events */
    const store *db;
    MDB_txn *txn;       /* reset between requests */
    key_table keys;
    conn_limit *connections;
    log_limit limits[REFUSED_CAUSES];
};

static const char *const cause_text[REFUSED_CAUSES] = {
    "unknown key", "suspended department", "over the connection cap",
    "malformed or not CURVE",
};

/* Ends the windows that are over, saying how many lines each left out. */
static void log_limit_roll(zap *z, uint64_t now)
{
    int i;

    for (i = 0; i < REFUSED_CAUSES; i++) {
        log_limit *l = &z->limits[i];

        if (now - l->window_start < LOG_INTERVAL_MS)
            continue;
        if (l->suppressed > 0)
            diag_info("zap", "suppressed %lu more refusal lines (%s) in the "
                     "last %d s", l->suppressed, cause_text[i],
                     LOG_INTERVAL_MS / 1000);
        l->window_start = now;
        l->lines = 0;
        l->suppressed = 0;
    }
}

/* True when a refusal line of this cause may be written now. */
static bool log_allowed(zap *z, int cause)
{
    log_limit *l = &z->limits[cause];

    log_limit_roll(z, monotonic_ms());
    if (l->lines < LOG_BURST) {
        l->lines++;
        return true;
    }
    l->suppressed++;
    return false;
}

/* How long poll may sleep before a window with left-out lines ends: -1
 * when none has any. */
static long log_limit_timeout(const zap *z, uint64_t now)
{
    long timeout = -1;
    int i;

    for (i = 0; i < REFUSED_CAUSES; i++) {
        const log_limit *l = &z->limits[i];
        uint64_t end = l->window_start + LOG_INTERVAL_MS;
        long left;

        if (l->suppressed == 0)
            continue;
        left = end > now ? (long)(end - now) : 0;
        if (timeout < 0 || left < timeout)
            timeout = left;
    }
    return timeout;
}

/* Reads every monitor event sent so far into the connection table. */
static void read_monitor(zap *z)
{
    char dept[ONCE_MAX_NAME + 1];
    uint32_t value;
    int event;

    while ((event = socket_monitor_read(z->monitor, ZMQ_DONTWAIT, &value)) !=
           0) {
        switch (event) {
        case ZMQ_EVENT_ACCEPTED:
            conn_limit_accepted(z->connections, (int)value);
            break;
        case ZMQ_EVENT_DISCONNECTED:
            conn_limit_closed(z->connections, (int)value, dept);
            if (dept[0] != '\0')
                diag_debug("zap", "a connection of department %s closed",
                          dept);
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            if (log_allowed(z, REFUSED_MALFORMED))
                diag_info("zap", "a connection failed its handshake (%s)",
                         event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                             ? "protocol error"
                             : "timed out or closed");
            break;
        default:
            break;
        }
    }
}

/* One ZAP request, frames copied out (all are short). */
typedef struct zap_request {
    uint8_t frame[ZAP_MAX_FRAMES][ZAP_FRAME_MAX];
    size_t len[ZAP_MAX_FRAMES];
    size_t count;
    bool truncated;
} zap_request;

static int compare_entries(const void *a, const void *b)
{
    return memcmp(((const key_entry *)a)->curve,
                  ((const key_entry *)b)->curve, CURVE_KEY_BYTES);
}

static const key_entry *find_key(const key_table *t,
                                 const uint8_t curve[CURVE_KEY_BYTES])
{
    key_entry probe;

    if (t->count == 0)
        return NULL;
    memcpy(probe.curve, curve, CURVE_KEY_BYTES);
    return bsearch(&probe, t->entries, t->count, sizeof(key_entry),
                   compare_entries);
}

typedef struct rebuild {
    const key_table *old;
    key_table fresh;
    bool failed;
} rebuild;

static int add_department(const department *d, void *arg)
{
    rebuild *rb = arg;
    key_entry *e;
    size_t i;

    if (rb->fresh.count == rb->fresh.cap) {
        size_t cap = rb->fresh.cap ? rb->fresh.cap * 2 : 64;
        key_entry *grown = realloc(rb->fresh.entries, cap * sizeof(*grown));

        if (grown == NULL) {
            rb->failed = true;
            return 1;
        }
        rb->fresh.entries = grown;
        rb->fresh.cap = cap;
    }
    e = &rb->fresh.entries[rb->fresh.count];
    memcpy(e->ed, d->public_key, ONCE_PUBLIC_KEY_BYTES);
    snprintf(e->id, sizeof(e->id), "%s", d->id);
    for (i = 0; i < rb->old->count; i++) {
        if (memcmp(rb->old->entries[i].ed, d->public_key,
                   ONCE_PUBLIC_KEY_BYTES) == 0) {
            memcpy(e->curve, rb->old->entries[i].curve, CURVE_KEY_BYTES);
            rb->fresh.count++;
            return 0;
        }
    }
    /* policy_department_add refuses keys that do not convert. */
    if (crypto_sign_ed25519_pk_to_curve25519(e->curve, d->public_key) == 0)
        rb->fresh.count++;
    return 0;
}

/* Rebuilds the table from the departments table, in z->txn. */
static int rebuild_keys(zap *z)
{
    once_error err;
    rebuild rb;
    int rc;

    memset(&rb, 0, sizeof(rb));
    rb.old = &z->keys;
    rc = policy_department_list(z->txn, z->db, add_department, &rb, &err);
    if (rc != 0 || rb.failed) {
        free(rb.fresh.entries);
        if (rb.failed)
            diag_error("zap", "out of memory rebuilding the key table");
        else
            diag_error("zap", "cannot list departments: %s", err.message);
        return -1;
    }
    if (rb.fresh.count > 0)
        qsort(rb.fresh.entries, rb.fresh.count, sizeof(key_entry),
              compare_entries);
    free(z->keys.entries);
    z->keys = rb.fresh;
    return 0;
}

/* Decides about a CURVE key: 200 with the department id in user_id, or
 * 400 with the reason in text. address is for the log, raw_address the
 * ZAP request's address frame as sent. */
static int decide(zap *z, const uint8_t curve[CURVE_KEY_BYTES],
                  char user_id[ONCE_MAX_NAME + 1], const char **text,
                  const char *address, const char *raw_address)
{
    char hex[17];
    const key_entry *e;
    department d;
    once_error err;
    unsigned open;
    int rc, attempt;

    once_hex_encode(hex, curve, 8);
    rc = mdb_txn_renew(z->txn);
    if (rc != MDB_SUCCESS) {
        diag_error("zap", "cannot read the database: %s", mdb_strerror(rc));
        *text = "broker cannot read its database";
        return 500;
    }
    for (attempt = 0; attempt < 2; attempt++) {
        e = find_key(&z->keys, curve);
        if (e == NULL) {
            if (attempt == 0 && rebuild_keys(z) == 0)
                continue;
            break;
        }
        rc = policy_department_get(z->txn, z->db, e->id, &d, &err);
        if (rc == 0 &&
            memcmp(d.public_key, e->ed, ONCE_PUBLIC_KEY_BYTES) == 0)
            break;
        /* Gone or re-keyed since the table was built: look again. */
        e = NULL;
        if (attempt == 0 && rebuild_keys(z) == 0)
            continue;
        break;
    }
    mdb_txn_reset(z->txn);
    if (e == NULL) {
        if (log_allowed(z, REFUSED_UNKNOWN))
            diag_info("zap", "refused a connection from %s: key %s... "
                     "belongs to no registered department", address, hex);
        *text = "unknown key";
        return 400;
    }
    if (d.status != DEPARTMENT_ACTIVE) {
        if (log_allowed(z, REFUSED_SUSPENDED))
            diag_info("zap", "refused a connection from %s: department %s "
                     "is suspended", address, d.id);
        *text = "department suspended";
        return 400;
    }
    if (!conn_limit_admit(z->connections, raw_address, d.id, &open)) {
        if (log_allowed(z, REFUSED_OVER_CAP))
            diag_info("zap", "refused a connection from %s: department %s "
                     "holds %u connections open, the most allowed "
                     "(max_connections_per_department)", address, d.id,
                     open);
        *text = "too many connections";
        return 400;
    }
    snprintf(user_id, ONCE_MAX_NAME + 1, "%s", d.id);
    diag_debug("zap", "admitted department %s from %s (%u connections open)",
              d.id, address, open);
    *text = "OK";
    return 200;
}

/* Reads one multipart request. Returns 0, or -1 when the socket stopped
 * working (errno says why; ETERM when the context is shutting down). */
static int read_request(zap *z, zap_request *req)
{
    zmq_msg_t frame;
    int more = 1;

    memset(req, 0, sizeof(*req));
    while (more) {
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, z->socket, 0) < 0) {
            int e = errno;

            zmq_msg_close(&frame);
            if (e == EINTR)
                continue;
            errno = e;
            return -1;
        }
        if (req->count < ZAP_MAX_FRAMES) {
            size_t len = zmq_msg_size(&frame);

            if (len > ZAP_FRAME_MAX) {
                len = ZAP_FRAME_MAX;
                req->truncated = true;
            }
            memcpy(req->frame[req->count], zmq_msg_data(&frame), len);
            req->len[req->count] = len;
            req->count++;
        } else {
            req->truncated = true;
        }
        more = zmq_msg_more(&frame);
        zmq_msg_close(&frame);
    }
    return 0;
}

static int send_frame(void *sock, const void *data, size_t len, int more)
{
    return zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0) < 0 ? -1 : 0;
}

static bool frame_is(const zap_request *req, size_t i, const char *text)
{
    size_t len = strlen(text);

    return req->len[i] == len && memcmp(req->frame[i], text, len) == 0;
}

/* Waits for a ZAP request, counting monitor events meanwhile and ending
 * rate-limit windows on time. Returns 0, or -1 when the socket stopped
 * working (errno says why; ETERM when the context is shutting down). */
static int wait_request(zap *z)
{
    for (;;) {
        zmq_pollitem_t items[2] = {
            { z->socket, 0, ZMQ_POLLIN, 0 },
            { z->monitor, 0, ZMQ_POLLIN, 0 },
        };
        uint64_t now = monotonic_ms();

        log_limit_roll(z, now);
        if (zmq_poll(items, 2, log_limit_timeout(z, now)) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (items[1].revents & ZMQ_POLLIN)
            read_monitor(z);
        if (items[0].revents & ZMQ_POLLIN) {
            /* Every event sent before this request, its connection's
             * ACCEPTED among them. */
            read_monitor(z);
            return 0;
        }
    }
}

/* Answers one request; 400 with a reason unless decide admits the key. */
static int answer_request(zap *z, const zap_request *req, char *user_id,
                          const char **text)
{
    char address[CONN_ADDRESS_MAX], raw[CONN_ADDRESS_MAX];
    size_t raw_len;

    /* version, request id, domain, address, identity, mechanism,
     * credentials... */
    if (req->count < 6 || !frame_is(req, 0, "1.0") || req->truncated) {
        if (log_allowed(z, REFUSED_MALFORMED))
            diag_warn("zap", "malformed ZAP request (%zu frames)", req->count);
        *text = "malformed ZAP request";
        return 400;
    }
    raw_len = req->len[3] < sizeof(raw) - 1 ? req->len[3] : sizeof(raw) - 1;
    memcpy(raw, req->frame[3], raw_len);
    raw[raw_len] = '\0';
    snprintf(address, sizeof(address), "%s",
             raw[0] != '\0' ? raw : "a local peer");
    if (!frame_is(req, 5, "CURVE") || req->count != 7 ||
        req->len[6] != CURVE_KEY_BYTES) {
        if (log_allowed(z, REFUSED_MALFORMED))
            diag_warn("zap", "refused a connection from %s: not CURVE",
                     address);
        *text = "CURVE required";
        return 400;
    }
    return decide(z, req->frame[6], user_id, text, address, raw);
}

static void *zap_main(void *arg)
{
    zap *z = arg;
    zap_request req;

    for (;;) {
        char user_id[ONCE_MAX_NAME + 1] = "";
        const char *text;
        char code[4];
        int status;

        if (wait_request(z) < 0 || read_request(z, &req) < 0) {
            /* Without a handler libzmq would admit every key; the I/O
             * thread would still drop their messages (no User-Id), but a
             * broker that lost its gatekeeper stops. */
            if (errno != ETERM) {
                diag_error("zap", "cannot receive: %s", zmq_strerror(errno));
                broker_fail();
            }
            break;
        }
        status = answer_request(z, &req, user_id, &text);
        snprintf(code, sizeof(code), "%d", status);
        /* The reply echoes the request id (frame 1) even for a malformed
         * request, so libzmq can match it and fail that handshake. */
        if (send_frame(z->socket, "1.0", 3, 1) < 0 ||
            send_frame(z->socket, req.count > 1 ? req.frame[1] : NULL,
                       req.count > 1 ? req.len[1] : 0, 1) < 0 ||
            send_frame(z->socket, code, 3, 1) < 0 ||
            send_frame(z->socket, text, strlen(text), 1) < 0 ||
            send_frame(z->socket, user_id, strlen(user_id), 1) < 0 ||
            send_frame(z->socket, NULL, 0, 0) < 0) {
            if (errno == ETERM)
                break;
            diag_error("zap", "cannot answer a ZAP request: %s",
                      zmq_strerror(errno));
        }
    }
    log_limit_roll(z, monotonic_ms() + LOG_INTERVAL_MS);
    zmq_close(z->socket);
    z->socket = NULL;
    zmq_close(z->monitor);
    z->monitor = NULL;
    return NULL;
}

int zap_start(zap **out, void *zmq_ctx, const store *db,
              unsigned max_connections, once_error *err)
{
    zap *z;
    int rc, linger = 0, unlimited = 0;

    *out = NULL;
    z = calloc(1, sizeof(*z));
    if (z == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    z->db = db;
    z->limits[0].window_start = monotonic_ms();
    for (rc = 1; rc < REFUSED_CAUSES; rc++)
        z->limits[rc].window_start = z->limits[0].window_start;
    rc = conn_limit_new(&z->connections, max_connections, err);
    if (rc < 0) {
        free(z);
        return rc;
    }
    rc = store_begin(db, 1, &z->txn, err);
    if (rc < 0) {
        conn_limit_free(z->connections);
        free(z);
        return rc;
    }
    mdb_txn_reset(z->txn);
    z->socket = zmq_socket(zmq_ctx, ZMQ_REP);
    if (z->socket == NULL ||
        zmq_setsockopt(z->socket, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_bind(z->socket, ZAP_ENDPOINT) != 0) {
        rc = once_error_set(err, ONCE_ERR_IO,
                            "cannot bind the ZAP handler on %s: %s",
                            ZAP_ENDPOINT, zmq_strerror(errno));
        goto fail;
    }
    /* Connected before the ROUTER's monitor binds (inproc allows that).
     * No high-water mark: libzmq's I/O threads block rather than drop an
     * event when the monitor's queue is full, and a lost event would
     * leave a connection counted for good. */
    z->monitor = zmq_socket(zmq_ctx, ZMQ_PAIR);
    if (z->monitor == NULL ||
        zmq_setsockopt(z->monitor, ZMQ_LINGER, &linger, sizeof(linger)) !=
            0 ||
        zmq_setsockopt(z->monitor, ZMQ_RCVHWM, &unlimited,
                       sizeof(unlimited)) != 0 ||
        zmq_connect(z->monitor, ZAP_ROUTER_MONITOR) != 0) {
        rc = once_error_set(err, ONCE_ERR_IO,
                            "cannot connect to the ROUTER's monitor: %s",
                            zmq_strerror(errno));
        goto fail;
    }
    rc = pthread_create(&z->thread, NULL, zap_main, z);
    if (rc != 0) {
        rc = once_error_set(err, ONCE_ERR_IO,
                            "cannot start the ZAP thread: %s", strerror(rc));
        goto fail;
    }
    *out = z;
    return 0;
fail:
    if (z->socket != NULL)
        zmq_close(z->socket);
    if (z->monitor != NULL)
        zmq_close(z->monitor);
    mdb_txn_abort(z->txn);
    conn_limit_free(z->connections);
    free(z);
    return rc;
}

conn_limit *zap_connections(zap *z)
{
    return z->connections;
}

void zap_join(zap *z)
{
    if (z == NULL)
        return;
    pthread_join(z->thread, NULL);
    mdb_txn_abort(z->txn);
    conn_limit_free(z->connections);
    free(z->keys.entries);
    free(z);
}
