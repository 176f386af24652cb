/*
 * onced.c - the once broker: start-up, signals, shutdown.
 *
 * main() wires the modules together in the one order that is safe:
 *
 *   1. configuration (config.c); usage or configuration errors exit 2
 *      before anything is opened, a home that does not exist included;
 *   2. the lock on the database (store.c): a second onced on the same
 *      database exits 2 here, before it opens anything, since two brokers
 *      would both execute every envelope; oncectl and the tools do not
 *      take the lock and keep working beside the broker;
 *   3. the broker's key (HOME/broker.key) and the LMDB environment, whose
 *      reader slots must cover every worker with STORE_READERS_RESERVED
 *      to spare, and the one pass over its map (map_warm.c) in a thread
 *      that ends by itself, stopped before the environment closes;
 *   4. the ZAP handler (zap.c), bound BEFORE the ROUTER exists: libzmq
 *      admits every CURVE key on a context with no handler;
 *   5. the notice fan-out (notices.c) and the writer (writer.c), then the
 *      workers and the I/O thread
 *      (server.c), which binds the endpoint last;
 *   6. the operator's console (console.c), when console_listen is set:
 *      its own thread, read-only, started once the broker serves so
 *      /healthz never answers for a broker that is not up. It stops
 *      first, before the database closes under its read transactions.
 *
 * Signals. SIGTERM and SIGINT are blocked in every thread (they are
 * blocked here before any thread, libzmq's included, is created, and
 * threads inherit the mask) and taken synchronously by sigwait in the main
 * thread, so no handler runs in the middle of a worker. A thread whose
 * socket fails for good raises SIGUSR1 (broker_fail) to stop the broker
 * the same way, with exit status 1.
 *
 * Shutdown finishes what was started: the I/O thread stops reading new
 * messages, waits until every message it read has been answered -- which
 * for a publish means committed -- and closes the ROUTER, whose linger lets
 * the last answers out. Then the context is shut down, which returns the
 * idle workers, the writer and the ZAP handler from their blocking
 * receives, and the database is closed. A client whose message was still
 * queued in the ROUTER gets no answer and retries; nothing half-done is
 * left behind, because nothing was acknowledged before it was durable.
 * The wait has a deadline (server.c: 20 s after a signal, 5 s after a
 * thread failed, whose messages nobody will ever answer); a broker that
 * gives up on messages in flight exits 1.
 *
 * Exit status: 0 after a clean stop, 1 on a runtime failure, 2 on a usage
 * or configuration error.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <sodium.h>
#include <zmq.h>

#include "config.h"
#include "console.h"
#include "diag.h"
#include "held_buffer.h"
#include "map_warm.h"
#include "metrics.h"
#include "notices.h"
#include "registry.h"
#include "replay.h"
#include "server.h"
#include "store.h"
#include "subscriptions.h"
#include "wire_schema.h"
#include "writer.h"
#include "zap.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

/* The memory kept for answering retries; see replay.c. */
#define MAX_CACHED_ANSWER_BYTES (64u * 1024 * 1024)

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    default: return "a signal";
    }
}

/* libzmq's own I/O threads do the CURVE encryption of every message; one
 * per four workers keeps them off the critical path. */
static int zmq_io_threads(unsigned workers)
{
    unsigned n = 1 + workers / 4;

    return n > 4 ? 4 : (int)n;
}

/* Waits for SIGTERM or SIGINT (a clean stop) or SIGUSR1 (a thread
 * failed). SIGHUP is logged and ignored: there is nothing to reload,
 * policy changes apply without one. */
static void wait_for_stop(const sigset_t *signals)
{
    int sig;

    for (;;) {
        if (sigwait(signals, &sig) != 0)
            continue;
        if (sig == SIGUSR1) {
            if (broker_failed()) {
                diag_error("onced", "stopping after a failure");
                return;
            }
            continue;
        }
        if (sig == SIGHUP) {
            diag_info("onced", "SIGHUP ignored: policy changes made with "
                     "oncectl apply without a reload; restart to change "
                     "once.conf settings");
            continue;
        }
        diag_info("onced", "%s received: finishing the messages in flight",
                 signal_name(sig));
        return;
    }
}

/* Every connection is a file descriptor, and the usual soft limit of
 * 1,024 is below what departments may hold open (max_connections_per_
 * department each): raise it to the hard limit, which the operator sets
 * (LimitNOFILE in deploy/onced.service). */
static void raise_descriptor_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    /* The kernel refuses "unlimited" (fs.nr_open caps it). */
    if (rl.rlim_max == RLIM_INFINITY)
        rl.rlim_max = 1048576;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;

        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            diag_warn("onced", "cannot raise the open file limit from %llu: "
                     "%s", (unsigned long long)was, strerror(errno));
            return;
        }
    }
    diag_info("onced", "open file limit %llu",
             (unsigned long long)rl.rlim_cur);
}

/* Opens the exchange log and makes sure the current tree has a signed
 * checkpoint, so even an empty log exports and a first receipt has
 * something to be consistent with. Signing checks any stored checkpoint
 * of this size against the key and root first (auditlog.c), so a home
 * whose log was signed by another key or whose tables were changed fails
 * here, before anything is answered. The same transaction empties a
 * `replies` table of an older layout (replay.c) and stores the records'
 * counts per type where a home of an older version lacks them
 * (registry.c). */
static int open_log(auditlog *alog, store *db, const broker_config *cfg,
                    const once_keypair *key, once_error *err)
{
    char note[CHECKPOINT_MAX_NOTE];
    uint64_t size = 0;
    size_t dropped = 0;
    bool recounted = false;
    MDB_txn *txn;
    int rc;

    if ((rc = auditlog_open(alog, db, err)) < 0)
        return rc;
    if ((rc = store_begin(db, 0, &txn, err)) < 0)
        return rc;
    rc = auditlog_sign_checkpoint(txn, alog, cfg->log_origin, key, note,
                                  sizeof(note), err);
    if (rc >= 0)
        rc = auditlog_size(txn, alog, &size, err);
    if (rc >= 0)
        rc = replay_replies_upgrade(txn, db, &dropped, err);
    if (rc >= 0)
        rc = registry_recount_types(txn, db, &recounted, err);
    if (rc < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    if ((rc = store_commit(txn, err)) < 0)
        return rc;
    if (dropped > 0)
        diag_info("onced", "dropped %zu answers kept for retries in the "
                 "layout of an older version", dropped);
    if (recounted)
        diag_info("onced", "counted the records of each type once and "
                 "stored the counts (a home of an older version)");
    diag_info("onced", "exchange log %s: %llu leaves", cfg->log_origin,
             (unsigned long long)size);
    return 0;
}

/* Puts the copies granted by the request leaves after the mark of
 * `notice_held` into it, before the writer takes a job: what the last
 * run kept in memory when it was killed (held_buffer.c). */
static int recover_held(const store *db, const auditlog *alog,
                        const subscriptions *subs)
{
    uint64_t replayed;
    size_t entries;
    bool had_mark;
    once_error err;

    if (held_recover(db, alog, subs, &replayed, &entries, &had_mark,
                     &err) < 0) {
        diag_error("onced", "cannot index the records held from the log: "
                  "%s", err.message);
        return -1;
    }
    if (!had_mark)
        diag_info("onced", "stored the mark of the index of the records "
                 "held (a new home, or one of an older version, whose "
                 "index is complete as of its last commit)");
    else if (replayed > 0)
        diag_info("onced", "indexed the records held from %llu leaves of "
                 "the log (%zu granted requests) the last run had not",
                 (unsigned long long)replayed, entries);
    return 0;
}

/* A home (or the directory of --config's file) that is not there is a
 * configuration error, not something to run on defaults. */
static int check_home(const broker_config *cfg)
{
    struct stat st;
    const char *why = "not a directory";

    if (stat(cfg->home, &st) < 0)
        why = strerror(errno);
    else if (S_ISDIR(st.st_mode))
        return 0;
    fprintf(stderr, "onced: no broker home at %s (%s); make one with "
            "'oncectl init %s'\n", cfg->home, why, cfg->home);
    return -1;
}

/* Each worker keeps a reader slot for the broker's lifetime; the ZAP
 * handler, oncectl and exports need theirs besides. */
static int check_readers(const store *db, unsigned workers)
{
    unsigned int slots = 0;

    mdb_env_get_maxreaders(db->env, &slots);
    if (slots >= workers + STORE_READERS_RESERVED)
        return 0;
    diag_error("onced", "the database has %u reader slots, too few for %u "
              "workers and %d others; stop every process that has it open "
              "(an older oncectl sized them) and start again, or lower "
              "workers", slots, workers, STORE_READERS_RESERVED);
    return -1;
}

/* The map is address space: the file grows as data is written, up to
 * map_size_mb, whatever the disk holds. When the disk has less room than
 * the high-water mark needs, it fills first, and then every write fails
 * (requests included) with an I/O error instead of publishes stopping
 * with STORAGE_FULL at the mark: say so at start, once. */
static void check_disk(const store *db, const broker_config *cfg)
{
    struct statvfs fs;
    size_t bound, map_size;
    unsigned long long room, mark;

    if (statvfs(cfg->database, &fs) < 0 ||
        store_usage_bound(db, &bound, &map_size) < 0)
        return;
    room = (unsigned long long)fs.f_bavail * fs.f_frsize + bound;
    mark = (unsigned long long)map_size / 100 * cfg->high_water_percent;
    if (room < mark)
        diag_warn("onced", "the database's file system has room for %llu "
                 "MiB, less than the %llu MiB at which publishes stop "
                 "(high_water_percent %u of map_size_mb %zu): the disk "
                 "would fill first, and then every exchange fails; lower "
                 "map_size_mb or make room", room >> 20, mark >> 20,
                 cfg->high_water_percent, cfg->map_size_mb);
}

int main(int argc, char **argv)
{
    char bound[CONFIG_ENDPOINT_MAX + 64];
    broker_config cfg;
    broker_identity identity;
    once_keypair key;
    uint8_t audit_key[AUDIT_KEY_BYTES];
    auditlog alog;
    subscriptions subs;
    notices *fanout = NULL;
    once_error err;
    sigset_t signals;
    replay_limits limits;
    replay *rp = NULL;
    server *srv = NULL;
    writer *wr = NULL;
    zap *zh = NULL;
    console *con = NULL;
    map_warm *warm = NULL;
    void *ctx = NULL;
    store db;
    int status = EXIT_RUNTIME, rc, lock_fd = -1;

    switch (config_load(&cfg, argc, argv)) {
    case CONFIG_RUN:
        break;
    case CONFIG_EXIT:
        return EXIT_SUCCESS;
    default:
        return EXIT_USAGE;
    }
    if (check_home(&cfg) < 0)
        return EXIT_USAGE;
    if (once_init() < 0) {
        fprintf(stderr, "onced: cannot initialise libsodium\n");
        return EXIT_RUNTIME;
    }
    diag_init(cfg.diag_level);
    /* The hand-written wire tables must still be once.proto's (an edit of
     * the schema they do not follow would change what the broker admits). */
    if (wire_schema_check_all(&err) < 0) {
        diag_error("onced", "this build is inconsistent: %s", err.message);
        return EXIT_RUNTIME;
    }
    raise_descriptor_limit();
    metrics_init();

    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (store_lock(cfg.database, &lock_fd, &err) < 0) {
        diag_error("onced", "%s", err.message);
        return err.code == ONCE_ERR_EXISTS ? EXIT_USAGE : EXIT_RUNTIME;
    }
    if (once_keypair_load(&key, cfg.key_path, &err) < 0) {
        diag_error("onced", "cannot load the broker key: %s", err.message);
        store_unlock(lock_fd);
        return EXIT_RUNTIME;
    }
    if (audit_key_load(audit_key, cfg.audit_key_path, &err) < 0) {
        diag_error("onced", "cannot load the audit key (audit_key in the "
                  "configuration, made by oncectl init): %s", err.message);
        once_keypair_wipe(&key);
        store_unlock(lock_fd);
        return EXIT_RUNTIME;
    }
    if (store_open(&db, cfg.database, cfg.map_size_mb << 20, &err) < 0) {
        diag_error("onced", "%s", err.message);
        once_keypair_wipe(&key);
        sodium_memzero(audit_key, sizeof(audit_key));
        store_unlock(lock_fd);
        return EXIT_RUNTIME;
    }
    if (check_readers(&db, cfg.workers) < 0)
        goto out;
    check_disk(&db, &cfg);
    map_warm_start(&warm, &db);
    if (open_log(&alog, &db, &cfg, &key, &err) < 0 ||
        subscriptions_open(&subs, &db, &err) < 0) {
        diag_error("onced", "%s", err.message);
        goto out;
    }
    if (recover_held(&db, &alog, &subs) < 0)
        goto out;
    metrics_notices_tables(&subs);
    /* The records per type the writer keeps counting (metrics.c). */
    if (metrics_records_seed(&db, &err) < 0) {
        diag_error("onced", "cannot count the stored records: %s",
                  err.message);
        goto out;
    }
    /* Sessions are kept for twice the skew window: see replay.c. */
    limits.keep_ms = (uint64_t)cfg.skew_seconds * 2000u + 1000u;
    limits.max_sessions = CONFIG_MAX_SESSIONS;
    limits.max_sessions_per_department = cfg.max_sessions_per_department;
    limits.max_in_flight_per_department = cfg.max_in_flight_per_department;
    limits.max_cached_bytes = MAX_CACHED_ANSWER_BYTES;
    if (replay_create(&rp, &limits, &err) < 0) {
        diag_error("onced", "%s", err.message);
        goto out;
    }
    memset(&identity, 0, sizeof(identity));
    snprintf(identity.name, sizeof(identity.name), "%s", cfg.name);
    do
        randombytes_buf(&identity.session, sizeof(identity.session));
    while (identity.session == 0);
    atomic_init(&identity.next_seq, 1);

    ctx = zmq_ctx_new();
    if (ctx == NULL ||
        zmq_ctx_set(ctx, ZMQ_IO_THREADS, zmq_io_threads(cfg.workers)) != 0) {
        diag_error("onced", "cannot create the ZeroMQ context: %s",
                  zmq_strerror(errno));
        goto out;
    }
    {
        writer_options wopt = {
            .zmq_ctx = ctx, .db = &db, .log = &alog, .rp = rp,
            .id = &identity, .log_key = &key, .origin = cfg.log_origin,
            .group_max = cfg.group_commit_max,
            .checkpoint_interval_ms = cfg.checkpoint_interval_ms,
            .skew_seconds = cfg.skew_seconds,
            .high_water_percent = cfg.high_water_percent,
            .subs = &subs,
        };

        /* The fan-out binds the endpoints the writer and the I/O
         * thread connect to. */
        if (zap_start(&zh, ctx, &db, cfg.max_connections_per_department,
                      &err) < 0 ||
            notices_start(&fanout, ctx, &db, &subs, &identity, &err) < 0 ||
            writer_start(&wr, &wopt, &err) < 0) {
            diag_error("onced", "%s", err.message);
            goto out;
        }
    }
    {
        server_options opt = {
            .cfg = &cfg, .db = &db, .subs = &subs, .replay = rp,
            .identity = &identity,
            .broker_key = &key, .audit_key = audit_key, .zmq_ctx = ctx,
            .connections = zap_connections(zh),
        };

        rc = server_start(&srv, &opt, bound, sizeof(bound), &err);
    }
    /* The ROUTER holds the CURVE secret now, the writer its own copy of
     * the key and the workers theirs of the audit key. */
    once_keypair_wipe(&key);
    sodium_memzero(audit_key, sizeof(audit_key));
    if (rc < 0) {
        diag_error("onced", "%s", err.message);
        goto out;
    }
    diag_info("onced", "%s listening on %s: %u workers, database %s (map "
             "size %zu MiB, publishes up to %u%% of it), skew %u s, group "
             "commit up to %u, checkpoint every %u ms", cfg.name, bound,
             cfg.workers, cfg.database, cfg.map_size_mb,
             cfg.high_water_percent, cfg.skew_seconds, cfg.group_commit_max,
             cfg.checkpoint_interval_ms);
    {
        console_options copt = { .cfg = &cfg, .db = &db, .log = &alog,
                                 .connections = zap_connections(zh) };

        if (console_start(&con, &copt, &err) < 0) {
            diag_error("onced", "%s", err.message);
            server_drain(srv);
            goto out;
        }
    }

    wait_for_stop(&signals);
    rc = server_drain(srv);
    status = rc < 0 || broker_failed() ? EXIT_RUNTIME : EXIT_SUCCESS;

out:
    console_stop(con);
    once_keypair_wipe(&key);
    sodium_memzero(audit_key, sizeof(audit_key));
    if (ctx != NULL)
        zmq_ctx_shutdown(ctx);
    server_free(srv);
    writer_join(wr);
    notices_join(fanout);
    zap_join(zh);
    if (ctx != NULL)
        zmq_ctx_term(ctx);
    replay_destroy(rp);
    map_warm_stop(warm);
    store_close(&db);
    store_unlock(lock_fd);
    if (status == EXIT_SUCCESS)
        diag_info("onced", "stopped");
    return status;
}
