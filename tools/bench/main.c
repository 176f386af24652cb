/*
* main.c - once-bench: how fast a once broker is, measured against what this
 * machine can do at all.
 *
 * A requests-per-second figure alone says little: it moves with the CPU,
 * the disk and whatever else runs. So once-bench measures, in the same run,
 * the three limits a broker cannot beat and quotes the broker against them:
 *
 *   Ed25519 verifications per second: the broker verifies every envelope,
 *     so requests/s can never exceed verify/s x cores;
 *   a raw ZeroMQ DEALER/ROUTER echo over the broker's transport, plain and
 *     with CURVE: the cost of moving the messages at all;
 *   durable LMDB commits per second (one small write transaction, fsync):
 *     what a publish costs without group commit.
 *
 * Then it builds a broker home in a temporary directory with the storage
 * API (the broker key, one issuer and one requester department per client,
 * a record type and grants), starts the real onced on it, publishes
 * --records signed records, and drives --clients concurrent connections
 * with signed, granted requests for random records for --seconds.
 *
 * The clients are raw pipelined DEALER sockets with CURVE, one session and
 * one department key each, keeping --window requests outstanding. Every
 * envelope is built and signed before the timed phase starts, because the
 * bench runs on the broker's machine and client-side signing would
 * otherwise take CPU from the broker and be counted against it. A few
 * driver threads poll all the connections rather than one thread per
 * connection, for the same reason: on a small machine, dozens of client
 * threads mostly measure the scheduler. The connections are still
 * independent clients to the broker: separate CURVE sessions, separate
 * departments, separate replay windows.
 *
 * Answers are matched by reply_to; every answer must be a Response (an
 * Error is a bug in the bench's setup or in the broker, and makes the exit
 * status non-zero). One answer per connection is decoded and its record
 * verified against the issuer's key and checked to hold exactly the granted
 * fields, so a broker that answers fast but wrongly does not pass. After
 * the run the broker is stopped with SIGTERM and must exit 0, and the
 * database must hold every acknowledged record.
 *
 * The parts, one file each under tools/bench/: machine_limits.c (the
 * three limits), home.c (the broker home and the onced process, through
 * onced_process.c, which the end-to-end test harness shares), conn.c (the
 * pipelined connections and their driver threads), phases.c (publishes,
 * requests and the checks), openloop.c (--rate and --find-max-rate: the
 * open-loop schedule and the search), report.c (text and JSON), scrape.c
 * (--console: the console scraped every second, the dashboard's fetches
 * every other), preload.c (--preload: records stored without the wire),
 * reuse.c (--reuse: a kept home run again), footprint.c (onced's memory,
 * the bytes of each table), idle.c (--idle-subscribers: the request rate
 * with idle subscribers against none), fanout.c (--notice-fanout: notices
 * to subscribers that read them), bench.c (helpers).
 * This file holds the command line and the order of the run.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "bench.h"
#include "conn.h"
#include "footprint.h"
#include "home.h"
#include "machine_limits.h"
#include "openloop.h"
#include "phases.h"
#include "preload.h"
#include "report.h"
#include "reuse.h"
#include "scrape.h"
#include "subscribers.h"

options opt = {
    .records = 10000,
    .clients = 32,
    .threads = 2,
    .window = 8,
    .publish_window = PUBLISH_MAX_WINDOW,
    .workers = 0,
    .seconds = 10.0,
    .limit_seconds = 1.5,
    .max_presigned = 1000000,
    .p99_target_ms = 3.0,
    .phase_seconds = 2.0,
    .start_rate = 1000,
    .idle_rounds = 2,
    .notice_records = 100,
};

static void die_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void die_usage(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "once-bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(once-bench --help describes the options)\n");
    exit(EXIT_USAGE);
}

static void usage(FILE *f)
{
    fprintf(f,
"usage: once-bench [OPTIONS]\n"
"\n"
"Measures this machine's limits and a real onced against them, in one run.\n"
"\n"
"Machine limits (each measured for --limit-seconds):\n"
"  ed25519 verify     crypto_sign_verify_detached over the signing input of a\n"
"                     typical request envelope: 1 thread (per core), and one\n"
"                     thread per online CPU; the ratio uses per core x cores\n"
"  zeromq echo        4 DEALERs x 64 messages of 256 bytes in flight against\n"
"                     a ROUTER echoing from its own thread and context, over\n"
"                     the broker's transport (ipc, or tcp with --tcp), plain\n"
"                     and with CURVE\n"
"  lmdb commits       write transactions of one 16-byte key and 256-byte\n"
"                     value, each committed with fsync (LMDB's default)\n"
"\n"
"Broker run: a broker home in a temporary directory (the broker key, one\n"
"issuer, one requester department per client, type '" BENCH_TYPE "' with 4\n"
"fields, grants of 2 of them for purpose '" BENCH_PURPOSE "'); onced started on it;\n"
"--records signed records published through pipelined connections\n"
"(publishes/s, and the CPU onced used meanwhile; a publish carries two\n"
"signatures, its envelope's and the record's, so its ratio is to half of\n"
"verify/s per core x cores); then --clients CURVE connections, each its\n"
"own department and session, keep --window signed requests for random\n"
"records in flight for --seconds. Envelopes are signed before the timed\n"
"phase so client-side crypto is not measured; --threads driver threads\n"
"poll the connections.\n"
"Prints requests/s, latency p50/p99/p99.9, errors, the CPU onced used, and\n"
"the ratios to the limits. One answer per client is verified as a requester\n"
"would (issuer signature, digests, only the granted fields).\n"
"\n"
"Open loop (instead of the closed loop above): with --rate R, request k is\n"
"due at k/R seconds and goes out on connection k mod --clients, whether\n"
"or not earlier answers came back; each latency counts from the due time,\n"
"so a sender that falls behind adds its lag instead of hiding it. Prints\n"
"the achieved rate, p50/p90/p99/p99.9/max, and whether the schedule was\n"
"kept (sends more than 1 ms late; NOT kept when over 1%%). --window is not\n"
"used: a connection has any number of requests in flight. With\n"
"--find-max-rate, phases of --phase-seconds double the rate from\n"
"--start-rate while p99 <= --p99-target-ms with no refusal, then bisect to\n"
"within 5%%, never above verify/s per core x cores; then one phase of\n"
"--seconds at half the rate found. Each phase signs its envelopes first.\n"
"\n"
"Options:\n"
"  --onced PATH          the broker (default: $ONCED, else\n"
"                        ../../broker/onced from this program's directory,\n"
"                        as in the build tree)\n"
"  --records N           records in the home, requested uniformly: published\n"
"                        (or preloaded, --preload) (default 10000)\n"
"  --clients N           concurrent client connections (default 32)\n"
"  --window N            requests in flight per connection (default 8)\n"
"  --publish-window N    publishes in flight, on connections of at most 256\n"
"                        each, all the issuer's (1 to 1024, the broker's\n"
"                        max_in_flight_per_department; default 1024)\n"
"  --threads N           client driver and signing threads (default 2)\n"
"  --seconds S           length of the request phase (default 10)\n"
"  --warmup-seconds S    closed loop: requests for S seconds before the\n"
"                        request phase, not counted (default 0: none); a\n"
"                        new onced first reads a byte of each cached page of\n"
"                        its database (about 2 us a page here, 12 s for 20\n"
"                        GB), and at a large registry its requests cost more\n"
"                        until that pass has ended\n"
"  --workers N           onced worker threads (default 0: one per CPU)\n"
"  --limit-seconds S     length of each limit measurement (default 1.5)\n"
"  --max-presigned N     cap on pre-signed request envelopes (default 1000000;\n"
"                        in the open loop, per phase: rate x its seconds)\n"
"  --tcp                 use tcp on 127.0.0.1 instead of ipc\n"
"  --dir DIR             where to make the temporary directory (default\n"
"                        $TMPDIR or /tmp); it holds the LMDB files, so its\n"
"                        file system decides the commit rate\n"
"  --keep                keep the temporary directory and print its path;\n"
"                        it also holds the departments' keys, for --reuse\n"
"  --preload N           store the first N of the --records records straight\n"
"                        into the database before onced starts, as a publish\n"
"                        stores them (signed records, log leaves, evidence),\n"
"                        in large transactions: minutes for millions; the\n"
"                        rest are published (0 to 100000000, default 0)\n"
"  --reuse DIR           run on the home a run kept with --keep in DIR\n"
"                        (its once.conf, records and keys; --records at\n"
"                        least what it holds, which is the default); publish\n"
"                        only the records it lacks. Every run prints onced's\n"
"                        memory and each table's bytes per record and per\n"
"                        exchange (docs/PERFORMANCE.md, Scale of the registry)\n"
"  --limits-only         measure the machine limits only, start no broker\n"
"  --json                print the results as JSON instead of text\n"
"  --rate R              open loop at R requests/s (see above)\n"
"  --find-max-rate       search for the highest rate within the p99 target\n"
"  --p99-target-ms MS    the target of --find-max-rate (default 3)\n"
"  --phase-seconds S     each step of --find-max-rate (default 2)\n"
"  --start-rate R        the first step of --find-max-rate, and the rate of\n"
"                        the uncounted 0.5 s warm-up of both (default 1000)\n"
"  --console             turn onced's console on (a loopback port, a token)\n"
"                        and fetch /metrics every second during the request\n"
"                        phase, as Prometheus would, and every other second\n"
"                        what an open dashboard fetches; reports the console\n"
"                        thread's CPU; compare with a run without\n"
"                        (tools/bench/console-overhead.sh)\n"
"  --idle-subscribers N  run the request phase 2 x --idle-rounds times,\n"
"                        alternating: with no subscriber, then with N\n"
"                        subscriber departments connected through\n"
"                        libonce, subscribed to the bench's type and\n"
"                        registered for notices, never reading; prints\n"
"                        each phase and the ratio of the medians\n"
"                        idle/none (1 to %d)\n"
"  --idle-rounds N       the pairs of --idle-subscribers (default 2: A B A B;\n"
"                        1 to %d)\n"
"  --notice-fanout N     after the request phase, N subscribers that read\n"
"                        their notices (libonce, a thread each); the issuer\n"
"                        revokes --notice-records records one after the\n"
"                        other; prints notices/s fanned out and the latency\n"
"                        from each revoke's reply to each notice, p50/p99\n"
"                        (1 to %d)\n"
"  --notice-records K    the records --notice-fanout revokes (default 100,\n"
"                        at most --records)\n"
"  --notice-rate R       --notice-fanout's revokes at R a second (default 0:\n"
"                        each as soon as the last was answered); a low\n"
"                        rate measures the latency of one revoke's\n"
"                        fan-out, back to back the notices/s\n"
"  -h, --help            this text\n"
"\n"
"Exit status: 0 when the run completed and every answer was as expected;\n"
"1 when the broker failed (did not start, stopped answering, did not exit\n"
"0 on SIGTERM, lost an acknowledged record), any answer was an error or\n"
"failed verification, or a subscriber could not subscribe or missed a\n"
"notice; 2 on a usage error.\n"
"\n"
"The broker and the bench share the machine's cores: on a small machine the\n"
"broker's figures are a lower bound of what it does on a machine of its own.\n",
            MAX_SUBSCRIBERS, MAX_IDLE_ROUNDS, MAX_SUBSCRIBERS);
}

static unsigned long parse_count(const char *name, const char *s,
                                 unsigned long min, unsigned long max)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max ||
        s[0] == '-')
        die_usage("%s must be a whole number from %lu to %lu, not '%s'",
                  name, min, max, s);
    return v;
}

static double parse_seconds(const char *name, const char *s)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0.1 && v <= 3600))
        die_usage("%s must be a number of seconds from 0.1 to 3600, not "
                  "'%s'", name, s);
    return v;
}

static double parse_rate(const char *name, const char *s, double min,
                         double max)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max))
        die_usage("%s must be a number from %g to %g, not '%s'", name, min,
                  max, s);
    return v;
}

static void parse_options(int argc, char **argv)
{
    enum {
        O_ONCED = 256, O_RECORDS, O_CLIENTS, O_WINDOW, O_PUBLISH_WINDOW,
        O_THREADS, O_SECONDS, O_WORKERS, O_LIMIT_SECONDS, O_MAX_PRESIGNED,
        O_TCP, O_DIR, O_KEEP, O_LIMITS_ONLY, O_JSON, O_CONSOLE, O_RATE,
        O_FIND_MAX_RATE, O_P99_TARGET_MS, O_PHASE_SECONDS, O_START_RATE,
        O_PRELOAD, O_REUSE, O_IDLE_SUBSCRIBERS, O_IDLE_ROUNDS,
        O_NOTICE_FANOUT, O_NOTICE_RECORDS, O_NOTICE_RATE, O_WARMUP_SECONDS
    };
    static const struct option longopts[] = {
        {"onced", required_argument, NULL, O_ONCED},
        {"records", required_argument, NULL, O_RECORDS},
        {"clients", required_argument, NULL, O_CLIENTS},
        {"window", required_argument, NULL, O_WINDOW},
        {"publish-window", required_argument, NULL, O_PUBLISH_WINDOW},
        {"threads", required_argument, NULL, O_THREADS},
        {"seconds", required_argument, NULL, O_SECONDS},
        {"warmup-seconds", required_argument, NULL, O_WARMUP_SECONDS},
        {"workers", required_argument, NULL, O_WORKERS},
        {"limit-seconds", required_argument, NULL, O_LIMIT_SECONDS},
        {"max-presigned", required_argument, NULL, O_MAX_PRESIGNED},
        {"tcp", no_argument, NULL, O_TCP},
        {"dir", required_argument, NULL, O_DIR},
        {"keep", no_argument, NULL, O_KEEP},
        {"limits-only", no_argument, NULL, O_LIMITS_ONLY},
        {"json", no_argument, NULL, O_JSON},
        {"console", no_argument, NULL, O_CONSOLE},
        {"rate", required_argument, NULL, O_RATE},
        {"find-max-rate", no_argument, NULL, O_FIND_MAX_RATE},
        {"p99-target-ms", required_argument, NULL, O_P99_TARGET_MS},
        {"phase-seconds", required_argument, NULL, O_PHASE_SECONDS},
        {"start-rate", required_argument, NULL, O_START_RATE},
        {"preload", required_argument, NULL, O_PRELOAD},
        {"reuse", required_argument, NULL, O_REUSE},
        {"idle-subscribers", required_argument, NULL, O_IDLE_SUBSCRIBERS},
        {"idle-rounds", required_argument, NULL, O_IDLE_ROUNDS},
        {"notice-fanout", required_argument, NULL, O_NOTICE_FANOUT},
        {"notice-records", required_argument, NULL, O_NOTICE_RECORDS},
        {"notice-rate", required_argument, NULL, O_NOTICE_RATE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool records_given = false;
    int ch;

    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_ONCED: opt.onced = optarg; break;
        case O_RECORDS:
            opt.records = parse_count("--records", optarg, 1, 100000000);
            records_given = true;
            break;
        case O_CLIENTS:
            opt.clients = parse_count("--clients", optarg, 1, 999);
            break;
        case O_WINDOW:
            opt.window = parse_count("--window", optarg, 1, 1000);
            break;
        case O_PUBLISH_WINDOW:
            opt.publish_window =
                parse_count("--publish-window", optarg, 1,
                            PUBLISH_MAX_WINDOW);
            break;
        case O_THREADS:
            opt.threads = parse_count("--threads", optarg, 1, 64);
            break;
        case O_SECONDS:
            opt.seconds = parse_seconds("--seconds", optarg);
            break;
        case O_WARMUP_SECONDS:
            opt.warmup_seconds = parse_seconds("--warmup-seconds", optarg);
            break;
        case O_WORKERS:
            opt.workers = parse_count("--workers", optarg, 0, 256);
            break;
        case O_LIMIT_SECONDS:
            opt.limit_seconds = parse_seconds("--limit-seconds", optarg);
            break;
        case O_MAX_PRESIGNED:
            opt.max_presigned =
                parse_count("--max-presigned", optarg, 1, 100000000);
            break;
        case O_TCP: opt.tcp = true; break;
        case O_DIR: opt.dir = optarg; break;
        case O_KEEP: opt.keep = true; break;
        case O_LIMITS_ONLY: opt.limits_only = true; break;
        case O_JSON: opt.json = true; break;
        case O_CONSOLE: opt.console = true; break;
        case O_RATE:
            opt.rate = parse_rate("--rate", optarg, 1, 10000000);
            break;
        case O_FIND_MAX_RATE: opt.find_max_rate = true; break;
        case O_P99_TARGET_MS:
            opt.p99_target_ms =
                parse_rate("--p99-target-ms", optarg, 0.01, 60000);
            break;
        case O_PHASE_SECONDS:
            opt.phase_seconds = parse_seconds("--phase-seconds", optarg);
            break;
        case O_START_RATE:
            opt.start_rate = parse_rate("--start-rate", optarg, 1, 10000000);
            break;
        case O_PRELOAD:
            opt.preload = parse_count("--preload", optarg, 0, 100000000);
            break;
        case O_REUSE: opt.reuse = optarg; break;
        case O_IDLE_SUBSCRIBERS:
            opt.idle_subscribers = parse_count("--idle-subscribers", optarg,
                                               1, MAX_SUBSCRIBERS);
            break;
        case O_IDLE_ROUNDS:
            opt.idle_rounds = parse_count("--idle-rounds", optarg, 1,
                                          MAX_IDLE_ROUNDS);
            break;
        case O_NOTICE_FANOUT:
            opt.notice_fanout = parse_count("--notice-fanout", optarg, 1,
                                            MAX_SUBSCRIBERS);
            break;
        case O_NOTICE_RECORDS:
            opt.notice_records = parse_count("--notice-records", optarg, 1,
                                             100000000);
            break;
        case O_NOTICE_RATE:
            opt.notice_rate = parse_rate("--notice-rate", optarg, 0.1, 100000);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            die_usage("unknown option");
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    if (opt.rate > 0 && opt.find_max_rate)
        die_usage("--rate and --find-max-rate exclude each other");
    if (opt.warmup_seconds > 0 && (opt.rate > 0 || opt.find_max_rate))
        die_usage("--warmup-seconds is the closed loop's: not with --rate "
                  "or --find-max-rate");
    if (opt.rate * opt.seconds > (double)opt.max_presigned)
        die_usage("--rate %g for --seconds %g needs %.0f signed envelopes, "
                  "more than --max-presigned %lu", opt.rate, opt.seconds,
                  opt.rate * opt.seconds, opt.max_presigned);
    if (opt.preload > opt.records && records_given)
        die_usage("--preload %lu is more than --records %lu", opt.preload,
                  opt.records);
    if (opt.preload > opt.records)
        opt.records = opt.preload;
    if (opt.reuse != NULL && (opt.preload > 0 || opt.tcp || opt.console))
        die_usage("--reuse keeps the home as it was made: no --preload, "
                  "--tcp or --console with it");
    if ((opt.idle_subscribers > 0 || opt.notice_fanout > 0) &&
        (opt.reuse != NULL || opt.json || opt.rate > 0 || opt.find_max_rate ||
         opt.limits_only))
        die_usage("--idle-subscribers and --notice-fanout run on a new home "
                  "in the closed loop, with a text report: no --reuse, "
                  "--json, --rate, --find-max-rate or --limits-only");
    if (opt.notice_fanout > 0 && opt.notice_records > opt.records)
        die_usage("--notice-records %lu is more than --records %lu",
                  opt.notice_records, opt.records);
    /* --reuse: --records defaults to what the home holds (main). */
    if (opt.reuse != NULL && !records_given)
        opt.records = 0;
}

int main(int argc, char **argv)
{
    static bench_home h;
    static results r;
    static idle_results idle;
    static fanout_results fanout;
    char onced_buf[PATH_MAX + 32];
    const char *onced = NULL, *base;
    conn *clients = NULL;
    void *ctx = NULL;
    scraper *scrape = NULL;
    footprint before, after;
    uint64_t scrapes, scrape_failures, scrape_bytes;
    int rc = EXIT_FAILED;
    size_t i, n_subs;

    parse_options(argc, argv);
    /* The subscribers' departments follow the requesters' in clients[]. */
    n_subs = opt.idle_subscribers > opt.notice_fanout ? opt.idle_subscribers
                                                      : opt.notice_fanout;
    if (once_init() < 0) {
        note("cannot initialise libsodium");
        return EXIT_FAILED;
    }
    signal(SIGPIPE, SIG_IGN);
    r.cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (r.cores < 1)
        r.cores = 1;
    read_cpu_model(r.cpu_model, sizeof(r.cpu_model));
    if (!opt.limits_only) {
        onced = find_onced(onced_buf, sizeof(onced_buf));
        if (onced == NULL || access(onced, X_OK) != 0)
            die_usage("cannot find an executable onced (%s); give --onced "
                      "PATH or set ONCED", onced ? onced : "no path");
    }
    base = opt.dir;
    if (base == NULL)
        base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    if (opt.reuse != NULL) {
        if ((size_t)snprintf(h.dir, sizeof(h.dir), "%s", opt.reuse) >=
            sizeof(h.dir) - 64)
            die_usage("--reuse: the path is too long");
        bench_reuse_clear(h.dir);
    } else if ((size_t)snprintf(h.dir, sizeof(h.dir), "%s/once-bench-XXXXXX",
                                base) >= sizeof(h.dir) - 64 ||
               mkdtemp(h.dir) == NULL) {
        note("cannot make a temporary directory in %s: %s", base,
             strerror(errno));
        return EXIT_FAILED;
    }

    if (measure_limits(h.dir, &r) < 0)
        goto out;
    if (opt.limits_only) {
        rc = 0;
        goto report;
    }

    clients = calloc(opt.clients + n_subs, sizeof(*clients));
    if (clients == NULL)
        goto out;
    for (i = 0; i < opt.clients + n_subs; i++) {
        if (i < opt.clients)
            requester_id(i, clients[i].dept, sizeof(clients[i].dept));
        else
            subscriber_id(i - opt.clients, clients[i].dept,
                          sizeof(clients[i].dept));
        if (opt.reuse == NULL)
            once_keypair_generate(&clients[i].key);
        do
            randombytes_buf(&clients[i].session, sizeof(clients[i].session));
        while (clients[i].session == 0);
    }
    if (opt.reuse != NULL) {
        if (bench_home_reuse(&h, clients, opt.clients, &h.stored) < 0)
            goto out;
        if (opt.records == 0)
            opt.records = h.stored;
        if (opt.records == 0 || opt.records < h.stored) {
            note("%s holds %lu records: --records must be at least that, "
                 "and at least 1", h.dir, h.stored);
            goto out;
        }
    } else {
        if (make_home(&h, clients, opt.clients + n_subs) < 0)
            goto out;
        if (opt.preload > 0 && preload_records(&h, opt.preload) < 0)
            goto out;
        h.stored = opt.preload;
        if (opt.keep && bench_keys_save(&h, clients, opt.clients) < 0)
            goto out;
    }
    if (footprint_db(&h, &before) < 0)
        goto out;
    note("starting %s on %s", onced, h.endpoint);
    if (broker_start(&h, onced) < 0)
        goto broker_failed;
    r.broker_ran = true;
    r.records = opt.records;
    ctx = zmq_ctx_new();
    if (ctx == NULL)
        goto broker_failed;
    if (run_publishes(&h, ctx, &r) < 0)
        goto broker_failed;
    if (opt.console && scraper_start(&scrape, &h) < 0)
        goto broker_failed;
    if (opt.rate > 0 || opt.find_max_rate) {
        if (run_open_loop(&h, ctx, clients, &r) < 0)
            goto broker_failed;
    } else if (opt.idle_subscribers > 0) {
        if (run_idle_comparison(&h, ctx, clients, clients + opt.clients, &r,
                                &idle) < 0)
            goto broker_failed;
    } else if (run_requests(&h, ctx, clients, &r) < 0)
        goto broker_failed;
    if (opt.notice_fanout > 0 &&
        run_notice_fanout(&h, clients + opt.clients, &fanout) < 0)
        goto broker_failed;
    if (opt.console) {
        scraper_stop(scrape, &scrapes, &scrape_failures, &scrape_bytes);
        scrape = NULL;
        note("console scraped %llu times (%llu failed), last page %llu "
             "bytes", (unsigned long long)scrapes,
             (unsigned long long)scrape_failures,
             (unsigned long long)scrape_bytes);
        if (scrapes == 0 || scrape_failures > 0)
            goto broker_failed;
    }
    footprint_rss(h.pid);
    for (i = 0; i < opt.clients; i++)
        conn_free(&clients[i]);
    zmq_ctx_term(ctx);
    ctx = NULL;
    note("stopping the broker");
    if (broker_stop(&h) < 0)
        goto broker_failed;
    if (check_durable(&h, opt.records) < 0)
        goto broker_failed;
    if (footprint_db(&h, &after) == 0)
        footprint_print(&before, &after);
    rc = 0;
report:
    if (opt.json)
        print_json(&r);
    else
        print_text(&r);
    if (opt.idle_subscribers > 0)
        print_idle(&idle);
    if (opt.notice_fanout > 0)
        print_fanout(&fanout);
    goto out;
broker_failed:
    scraper_stop(scrape, &scrapes, &scrape_failures, &scrape_bytes);
    broker_abandon(&h);
    if (r.broker_ran) {
        if (opt.json)
            print_json(&r);
        else
            print_text(&r);
    }
    note("FAILED");
out:
    if (clients != NULL) {
        for (i = 0; i < opt.clients + n_subs; i++)
            conn_free(&clients[i]);
        free(clients);
    }
    if (ctx != NULL)
        zmq_ctx_term(ctx);
    once_keypair_wipe(&h.broker);
    once_keypair_wipe(&h.issuer);
    if (opt.keep || opt.reuse != NULL)
        note("kept %s", h.dir);
    else if (h.dir[0] != '\0')
        remove_tree(h.dir);
    return rc;
}
