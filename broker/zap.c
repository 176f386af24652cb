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
 * The handler never logs a full key; refusals name the key's first bytes in
 * hex and the peer address, which is what an operator needs to find the
 * misconfigured client.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zmq.h>

#include "log.h"
#include "policy.h"
#include "server.h"
#include "zap.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_MAX_FRAMES 8
#define ZAP_FRAME_MAX 256
#define CURVE_KEY_BYTES 32

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
    const store *db;
    MDB_txn *txn;       /* reset between requests */
    key_table keys;
};

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
            log_error("zap", "out of memory rebuilding the key table");
        else
            log_error("zap", "cannot list departments: %s", err.message);
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
 * 400 with the reason in text. */
static int decide(zap *z, const uint8_t curve[CURVE_KEY_BYTES],
                  char user_id[ONCE_MAX_NAME + 1], const char **text,
                  const char *address)
{
    char hex[17];
    const key_entry *e;
    department d;
    once_error err;
    int rc, attempt;

    once_hex_encode(hex, curve, 8);
    rc = mdb_txn_renew(z->txn);
    if (rc != MDB_SUCCESS) {
        log_error("zap", "cannot read the database: %s", mdb_strerror(rc));
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
        log_info("zap", "refused a connection from %s: key %s... belongs "
                 "to no registered department", address, hex);
        *text = "unknown key";
        return 400;
    }
    if (d.status != DEPARTMENT_ACTIVE) {
        log_info("zap", "refused a connection from %s: department %s is "
                 "suspended", address, d.id);
        *text = "department suspended";
        return 400;
    }
    snprintf(user_id, ONCE_MAX_NAME + 1, "%s", d.id);
    log_debug("zap", "admitted department %s from %s", d.id, address);
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

static void *zap_main(void *arg)
{
    zap *z = arg;
    zap_request req;

    for (;;) {
        char user_id[ONCE_MAX_NAME + 1] = "";
        char address[64];
        const char *text;
        char code[4];
        int status;

        if (read_request(z, &req) < 0) {
            /* Without a handler libzmq would admit every key; the I/O
             * thread would still drop their messages (no User-Id), but a
             * broker that lost its gatekeeper stops. */
            if (errno != ETERM) {
                log_error("zap", "cannot receive: %s", zmq_strerror(errno));
                broker_fail();
            }
            break;
        }
        /* version, request id, domain, address, identity, mechanism,
         * credentials... */
        if (req.count < 6 || !frame_is(&req, 0, "1.0") || req.truncated) {
            log_warn("zap", "malformed ZAP request (%zu frames)", req.count);
            status = 400;
            text = "malformed ZAP request";
        } else {
            snprintf(address, sizeof(address), "%.*s",
                     (int)(req.len[3] < sizeof(address) - 1
                               ? req.len[3]
                               : sizeof(address) - 1),
                     (const char *)req.frame[3]);
            if (address[0] == '\0')
                snprintf(address, sizeof(address), "a local peer");
            if (!frame_is(&req, 5, "CURVE") || req.count != 7 ||
                req.len[6] != CURVE_KEY_BYTES) {
                log_warn("zap", "refused a connection from %s: not CURVE",
                         address);
                status = 400;
                text = "CURVE required";
            } else {
                status = decide(z, req.frame[6], user_id, &text, address);
            }
        }
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
            log_error("zap", "cannot answer a ZAP request: %s",
                      zmq_strerror(errno));
        }
    }
    zmq_close(z->socket);
    z->socket = NULL;
    return NULL;
}

int zap_start(zap **out, void *zmq_ctx, const store *db, once_error *err)
{
    zap *z;
    int rc, linger = 0;

    *out = NULL;
    z = calloc(1, sizeof(*z));
    if (z == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    z->db = db;
    rc = store_begin(db, 1, &z->txn, err);
    if (rc < 0) {
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
    mdb_txn_abort(z->txn);
    free(z);
    return rc;
}

void zap_join(zap *z)
{
    if (z == NULL)
        return;
    pthread_join(z->thread, NULL);
    mdb_txn_abort(z->txn);
    free(z->keys.entries);
    free(z);
}
