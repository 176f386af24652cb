/*
 * machine_limits.c - the three limits a broker cannot beat on this machine,
 * measured in the same run as the broker so that its figures can be
 * quoted as ratios to them (a rate alone moves with the CPU, the disk and
 * whatever else runs):
 *
 *   Ed25519 verifications per second: the broker verifies every envelope,
 *     so requests/s can never exceed verify/s x cores;
 *   a raw ZeroMQ DEALER/ROUTER echo over the broker's transport, plain and
 *     with CURVE: the cost of moving the messages at all;
 *   durable LMDB commits per second (one small write transaction, fsync):
 *     what a publish costs without group commit.
 *
 * Each runs for --limit-seconds. Nothing here talks to onced.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/vfs.h>

#include <lmdb.h>
#include <sodium.h>
#include <zmq.h>

#include "bench.h"
#include "envelope.h"
#include "machine_limits.h"
#include "once.pb-c.h"
#include "once/once.h"

#define TMPFS_MAGIC_NUMBER 0x01021994

/* ------------------------------------------------------------------------
 * Limit 1: Ed25519 verifications per second
 * ---------------------------------------------------------------------- */

typedef struct verify_job {
    const uint8_t *pk;
    const uint8_t *sig;
    const uint8_t *msg;
    size_t len;
    uint64_t deadline;
    uint64_t count;
    bool failed;
} verify_job;

static void *verify_thread(void *arg)
{
    verify_job *j = arg;

    while (monotonic_ns() < j->deadline) {
        for (int i = 0; i < 32; i++) {
            if (crypto_sign_verify_detached(j->sig, j->msg, j->len, j->pk) !=
                0)
                j->failed = true;
        }
        j->count += 32;
    }
    return NULL;
}

/* Verifications per second over `seconds` on `threads` threads. The
 * message is the signing input of a typical request envelope. */
static int measure_verify(int threads, double seconds, const uint8_t *msg,
                          size_t len, double *rate)
{
    once_keypair kp;
    uint8_t sig[ONCE_SIGNATURE_BYTES];
    pthread_t tid[64];
    verify_job jobs[64];
    uint64_t start, total = 0;
    int i, started = 0;
    bool failed = false;

    if (threads > 64)
        threads = 64;
    once_keypair_generate(&kp);
    crypto_sign_detached(sig, NULL, msg, len, kp.secret_key);
    start = monotonic_ns();
    for (i = 0; i < threads; i++) {
        jobs[i] = (verify_job){kp.public_key, sig, msg, len,
                               start + seconds_ns(seconds), 0, false};
        if (pthread_create(&tid[i], NULL, verify_thread, &jobs[i]) != 0)
            break;
        started++;
    }
    for (i = 0; i < started; i++) {
        pthread_join(tid[i], NULL);
        total += jobs[i].count;
        failed |= jobs[i].failed;
    }
    once_keypair_wipe(&kp);
    if (started == 0 || failed)
        return -1;
    *rate = (double)total / ((double)(monotonic_ns() - start) / 1e9);
    return 0;
}

/* ------------------------------------------------------------------------
 * Limit 2: ZeroMQ DEALER/ROUTER echo
 * ---------------------------------------------------------------------- */

typedef struct curve_keys {
    char server_public[41], server_secret[41];
    char client_public[41], client_secret[41];
} curve_keys;

typedef struct echo_server {
    void *ctx;
    void *sock;
    atomic_bool stop;
} echo_server;

static void *echo_thread(void *arg)
{
    echo_server *s = arg;
    zmq_pollitem_t item = {s->sock, 0, ZMQ_POLLIN, 0};

    while (!atomic_load(&s->stop)) {
        if (zmq_poll(&item, 1, 50) <= 0)
            continue;
        for (;;) {
            zmq_msg_t id, payload;

            zmq_msg_init(&id);
            if (zmq_msg_recv(&id, s->sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&id);
                break;
            }
            zmq_msg_init(&payload);
            if (zmq_msg_recv(&payload, s->sock, 0) < 0) {
                zmq_msg_close(&id);
                zmq_msg_close(&payload);
                break;
            }
            zmq_msg_send(&id, s->sock, ZMQ_SNDMORE);
            zmq_msg_send(&payload, s->sock, 0);
        }
    }
    return NULL;
}

/* Round trips per second with `dealers` DEALER sockets each keeping
 * `window` messages of `size` bytes in flight, against one ROUTER echoing
 * from its own thread and context (as a separate broker process would). */
static int measure_echo(const char *endpoint_base, bool curve, int dealers,
                        int window, size_t size, double seconds, double *rate)
{
    echo_server server = {0};
    pthread_t tid;
    void *client_ctx = NULL, *socks[64] = {0};
    zmq_pollitem_t items[64];
    char endpoint[512];
    size_t len = sizeof(endpoint);
    curve_keys keys;
    uint8_t *payload = NULL;
    uint64_t count = 0, start, deadline;
    int i, rc = -1, warm = 0;
    bool thread_started = false;

    if (dealers > 64)
        dealers = 64;
    zmq_curve_keypair(keys.server_public, keys.server_secret);
    zmq_curve_keypair(keys.client_public, keys.client_secret);
    payload = calloc(1, size);
    server.ctx = zmq_ctx_new();
    client_ctx = zmq_ctx_new();
    if (payload == NULL || server.ctx == NULL || client_ctx == NULL)
        goto out;
    server.sock = zmq_socket(server.ctx, ZMQ_ROUTER);
    if (server.sock == NULL || set_int(server.sock, ZMQ_LINGER, 0) != 0 ||
        set_int(server.sock, ZMQ_SNDHWM, 100000) != 0 ||
        set_int(server.sock, ZMQ_RCVHWM, 100000) != 0)
        goto out;
    if (curve && (set_int(server.sock, ZMQ_CURVE_SERVER, 1) != 0 ||
                  zmq_setsockopt(server.sock, ZMQ_CURVE_SECRETKEY,
                                 keys.server_secret, 40) != 0))
        goto out;
    if (zmq_bind(server.sock, endpoint_base) != 0 ||
        zmq_getsockopt(server.sock, ZMQ_LAST_ENDPOINT, endpoint, &len) != 0)
        goto out;
    atomic_store(&server.stop, false);
    if (pthread_create(&tid, NULL, echo_thread, &server) != 0)
        goto out;
    thread_started = true;

    for (i = 0; i < dealers; i++) {
        socks[i] = zmq_socket(client_ctx, ZMQ_DEALER);
        if (socks[i] == NULL || set_int(socks[i], ZMQ_LINGER, 0) != 0)
            goto out;
        if (curve && (zmq_setsockopt(socks[i], ZMQ_CURVE_SERVERKEY,
                                     keys.server_public, 40) != 0 ||
                      zmq_setsockopt(socks[i], ZMQ_CURVE_PUBLICKEY,
                                     keys.client_public, 40) != 0 ||
                      zmq_setsockopt(socks[i], ZMQ_CURVE_SECRETKEY,
                                     keys.client_secret, 40) != 0))
            goto out;
        if (zmq_connect(socks[i], endpoint) != 0)
            goto out;
        items[i] = (zmq_pollitem_t){socks[i], 0, ZMQ_POLLIN, 0};
    }
    /* Warm up: one round trip per socket, so handshakes are not timed. */
    for (i = 0; i < dealers; i++)
        zmq_send(socks[i], payload, size, 0);
    deadline = monotonic_ns() + seconds_ns(10);
    while (warm < dealers && monotonic_ns() < deadline) {
        if (zmq_poll(items, dealers, 100) <= 0)
            continue;
        for (i = 0; i < dealers; i++) {
            if ((items[i].revents & ZMQ_POLLIN) &&
                zmq_recv(socks[i], payload, size, ZMQ_DONTWAIT) >= 0)
                warm++;
        }
    }
    if (warm < dealers)
        goto out;

    start = monotonic_ns();
    deadline = start + seconds_ns(seconds);
    for (i = 0; i < dealers; i++) {
        for (int w = 0; w < window; w++)
            zmq_send(socks[i], payload, size, 0);
    }
    while (monotonic_ns() < deadline) {
        if (zmq_poll(items, dealers, 100) <= 0)
            continue;
        for (i = 0; i < dealers; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            while (zmq_recv(socks[i], payload, size, ZMQ_DONTWAIT) >= 0) {
                count++;
                zmq_send(socks[i], payload, size, 0);
            }
        }
    }
    *rate = (double)count / ((double)(monotonic_ns() - start) / 1e9);
    rc = 0;
out:
    for (i = 0; i < dealers; i++) {
        if (socks[i] != NULL)
            zmq_close(socks[i]);
    }
    if (thread_started) {
        atomic_store(&server.stop, true);
        pthread_join(tid, NULL);
    }
    if (server.sock != NULL)
        zmq_close(server.sock);
    if (client_ctx != NULL)
        zmq_ctx_term(client_ctx);
    if (server.ctx != NULL)
        zmq_ctx_term(server.ctx);
    free(payload);
    sodium_memzero(&keys, sizeof(keys));
    return rc;
}

/* ------------------------------------------------------------------------
 * Limit 3: durable LMDB commits
 * ---------------------------------------------------------------------- */

/* Commits per second of one write transaction holding one 16-byte key and a
 * 256-byte value, with LMDB's default durability (fsync on commit). */
static int measure_lmdb(const char *dir, double seconds, double *rate)
{
    MDB_env *env = NULL;
    MDB_dbi dbi;
    MDB_txn *txn;
    uint8_t key[16] = {0}, value[256];
    uint64_t start, deadline, n = 0;

    memset(value, 0x5a, sizeof(value));
    if (mkdir(dir, 0700) != 0 || mdb_env_create(&env) != 0 ||
        mdb_env_set_mapsize(env, (size_t)64 << 20) != 0 ||
        mdb_env_open(env, dir, 0, 0600) != 0)
        goto fail;
    start = monotonic_ns();
    deadline = start + seconds_ns(seconds);
    while (monotonic_ns() < deadline) {
        MDB_val k = {sizeof(key), key}, v = {sizeof(value), value};

        memcpy(key, &n, sizeof(n));
        if (mdb_txn_begin(env, NULL, 0, &txn) != 0)
            goto fail;
        if (mdb_dbi_open(txn, NULL, 0, &dbi) != 0 ||
            mdb_put(txn, dbi, &k, &v, 0) != 0) {
            mdb_txn_abort(txn);
            goto fail;
        }
        if (mdb_txn_commit(txn) != 0)
            goto fail;
        n++;
    }
    *rate = (double)n / ((double)(monotonic_ns() - start) / 1e9);
    mdb_env_close(env);
    return 0;
fail:
    if (env != NULL)
        mdb_env_close(env);
    return -1;
}

/* ------------------------------------------------------------------------
 * All three
 * ---------------------------------------------------------------------- */

int measure_limits(const char *dir, results *r)
{
    Once__Envelope e = ONCE__ENVELOPE__INIT;
    Once__Request req = ONCE__REQUEST__INIT;
    char endpoint[PATH_MAX + 16], lmdb_dir[PATH_MAX + 16], subject[19];
    uint8_t body[256], *input = NULL;
    size_t input_len;
    struct statfs fs;

    make_subject(12345, subject);
    req.type = (char *)"business-licence";
    req.subject = subject;
    req.purpose = (char *)"tax-registration";
    req.case_id = (char *)"CASE-2026-0000001";
    e.version = ENVELOPE_VERSION;
    e.sender = (char *)"tax-bureau";
    e.session = 0x1122334455667788ull;
    e.seq = 1;
    e.sent_at = once_now_ms();
    e.kind = ONCE__KIND__KIND_REQUEST;
    e.body.len = once__request__get_packed_size(&req);
    e.body.data = body;
    once__request__pack(&req, body);
    if (envelope_signing_input(&e, &input, &input_len) < 0)
        return -1;
    r->verify_message_bytes = input_len;

    note("measuring ed25519 verify (%.1f s, 1 thread)", opt.limit_seconds);
    if (measure_verify(1, opt.limit_seconds, input, input_len,
                       &r->verify_per_core) < 0)
        goto fail;
    note("measuring ed25519 verify (%.1f s, %d threads)", opt.limit_seconds,
         r->cores);
    if (measure_verify(r->cores, opt.limit_seconds, input, input_len,
                       &r->verify_all_cores) < 0)
        goto fail;
    free(input);
    input = NULL;

    if (opt.tcp)
        snprintf(endpoint, sizeof(endpoint), "tcp://127.0.0.1:*");
    else
        snprintf(endpoint, sizeof(endpoint), "ipc://%s/echo.sock", dir);
    note("measuring zeromq echo, plain (%.1f s)", opt.limit_seconds);
    if (measure_echo(endpoint, false, 4, 64, 256, opt.limit_seconds,
                     &r->echo_plain) < 0) {
        note("the zeromq echo failed: %s", zmq_strerror(errno));
        return -1;
    }
    note("measuring zeromq echo, curve (%.1f s)", opt.limit_seconds);
    if (!zmq_has("curve") ||
        measure_echo(endpoint, true, 4, 64, 256, opt.limit_seconds,
                     &r->echo_curve) < 0) {
        note("the zeromq CURVE echo failed (libzmq without CURVE?)");
        return -1;
    }

    if (path_join(lmdb_dir, sizeof(lmdb_dir), dir, "lmdb-commit") < 0)
        return -1;
    note("measuring lmdb durable commits (%.1f s)", opt.limit_seconds);
    if (measure_lmdb(lmdb_dir, opt.limit_seconds, &r->lmdb_commits) < 0) {
        note("the lmdb commit measurement failed in %s", lmdb_dir);
        return -1;
    }
    if (statfs(dir, &fs) == 0 && fs.f_type == TMPFS_MAGIC_NUMBER)
        snprintf(r->fs_note, sizeof(r->fs_note),
                 "; tmpfs: fsync is free, use --dir");
    return 0;
fail:
    free(input);
    note("the ed25519 measurement failed");
    return -1;
}
