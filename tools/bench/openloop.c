/*
 * openloop.c - once-bench at a fixed rate (--rate) and the search for the
 * highest rate whose p99 stays within a target (--find-max-rate).
 *
 * Why. The closed-loop run (phases.c) keeps every connection's window
 * full, so it measures the broker at saturation: its latency is mostly
 * queueing behind the window, and says nothing about how fast answers are
 * at the rate an operator actually runs. An open-loop run sends on a
 * schedule that does not wait for answers, as independent clients do.
 *
 * The schedule. Request k of a phase is due at start + k / rate; it goes
 * out on connection k mod clients, so each connection sends every
 * clients / rate seconds, staggered. Each latency is measured from the
 * time its request was due, not from when it was sent: a sender that falls
 * behind (the bench starved of CPU, a socket at its high-water mark) adds
 * its lag to the latencies instead of hiding it, which is the coordinated
 * omission a closed loop or a naive open loop makes.
 *
 * Keeping the schedule. The bench's connections are raw DEALER sockets
 * (conn.c) that may have any number of requests in flight, not libonce
 * clients, which are synchronous (one call outstanding each): one driver
 * thread can keep the schedule of many connections, and a slow answer
 * never delays the next send. Every envelope is signed before the phase,
 * so a send is a memcpy into libzmq. The driver sleeps in ppoll on the
 * sockets' ZMQ_FDs with a nanosecond timeout to the next due time (not
 * zmq_poll's milliseconds, which would add up to 1 ms of lag to every
 * request). Whether the schedule was kept is measured, not assumed: each
 * send's lag after its due time, the latest lag and the sends more than
 * 1 ms late are reported per phase, and the report says "schedule NOT
 * kept" when more than 1% of the sends were late.
 *
 * The search. Phases of --phase-seconds, after a short warm-up at
 * --start-rate that is not counted: the rate doubles from --start-rate
 * while p99 <= --p99-target-ms (and no request was refused), then bisects
 * between the last rate that passed and the first that failed until they
 * are within 5% (at most 8 steps). The rate cannot exceed the machine's
 * verify capacity (verify/s per core x cores, measured in the same run),
 * so the search never goes above it. Then one phase of --seconds at half
 * the rate found gives the latency an operator sees with headroom. Each
 * phase signs its own envelopes first (their seqs go on, so the broker's
 * replay window accepts them) and waits for every answer before the next.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "bench.h"
#include "conn.h"
#include "openloop.h"
#include "phases.h"

/* An answer that takes longer than this means the broker has stopped. */
#define STALL_NS (15ull * 1000000000ull)

/* One driver thread's share: connections first .. first + n of total. */
typedef struct open_driver {
    conn *conns;
    size_t first, n, total;
    size_t planned;          /* requests due in the phase, all connections */
    double period_ns;        /* 1e9 / rate */
    uint64_t start;
    uint64_t last_answer;
    bool failed;
    char failure[256];
} open_driver;

/* Requests of the phase that fall to global connection g. */
static size_t planned_for(const open_driver *d, size_t g)
{
    return d->planned > g ? (d->planned - g + d->total - 1) / d->total : 0;
}

static uint64_t due_time(const open_driver *d, size_t g, size_t i)
{
    return d->start + (uint64_t)((double)(g + i * d->total) * d->period_ns);
}

/* Receives every answer waiting on c. */
static int drain(open_driver *d, conn *c)
{
    for (;;) {
        zmq_msg_t m;

        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return errno == EAGAIN ? 0 : -1;
        }
        conn_answer(c, zmq_msg_data(&m), zmq_msg_size(&m), 0);
        zmq_msg_close(&m);
        d->last_answer = monotonic_ns();
    }
}

static void *drive_open(void *arg)
{
    open_driver *d = arg;
    struct pollfd *fds = calloc(d->n, sizeof(*fds));
    bool *look = calloc(d->n, sizeof(*look));
    uint64_t last_progress = monotonic_ns();
    size_t k;

    if (fds == NULL || look == NULL) {
        free(fds);
        free(look);
        d->failed = true;
        snprintf(d->failure, sizeof(d->failure), "out of memory");
        return NULL;
    }
    for (k = 0; k < d->n; k++) {
        int fd;
        size_t len = sizeof(fd);

        if (zmq_getsockopt(d->conns[k].sock, ZMQ_FD, &fd, &len) != 0)
            goto failed;
        fds[k] = (struct pollfd){fd, POLLIN, 0};
        look[k] = true;
    }
    for (;;) {
        uint64_t next_due = UINT64_MAX, now;
        bool busy = false;
        struct timespec ts;

        for (k = 0; k < d->n; k++) {
            conn *c = &d->conns[k];
            size_t g = d->first + k, planned = planned_for(d, g);

            while (c->next < planned) {
                uint64_t due = due_time(d, g, c->next);
                int rc;

                now = monotonic_ns();
                if (due > now) {
                    if (due < next_due)
                        next_due = due;
                    break;
                }
                if ((rc = conn_send_due(c, due)) < 0)
                    goto failed;
                look[k] = true;
                if (rc == 1) {  /* at the high-water mark: retry soon */
                    if (now + 100000 < next_due)
                        next_due = now + 100000;
                    break;
                }
            }
            if (look[k] && drain(d, c) < 0)
                goto failed;
            look[k] = false;
            if (c->next < planned || c->outstanding > 0)
                busy = true;
        }
        if (!busy)
            break;
        now = monotonic_ns();
        if (d->last_answer > last_progress)
            last_progress = d->last_answer;
        if (now - last_progress > STALL_NS) {
            d->failed = true;
            snprintf(d->failure, sizeof(d->failure),
                     "no answer from the broker for %llu s",
                     (unsigned long long)(STALL_NS / 1000000000ull));
            break;
        }
        if (next_due == UINT64_MAX)
            next_due = now + 100000000ull;
        if (next_due <= now)
            continue;
        ts.tv_sec = (time_t)((next_due - now) / 1000000000ull);
        ts.tv_nsec = (long)((next_due - now) % 1000000000ull);
        /* A ZMQ_FD signals a change, not a message: the socket is looked
         * at (drained until EAGAIN, which rearms it) after it signalled
         * and after every send on it, which may have taken the signal.
         * Draining every socket every time costs a poll(2) inside libzmq
         * per socket, which on a small machine made the bench late. */
        if (ppoll(fds, d->n, &ts, NULL) < 0 && errno != EINTR)
            goto failed;
        for (k = 0; k < d->n; k++)
            if (fds[k].revents != 0)
                look[k] = true;
    }
    free(fds);
    free(look);
    return NULL;
failed:
    d->failed = true;
    snprintf(d->failure, sizeof(d->failure), "open-loop driver: %s",
             zmq_strerror(errno));
    free(fds);
    free(look);
    return NULL;
}

/* One phase at `rate` for `seconds` over every client. */
static int run_phase(bench_home *h, conn *clients, double rate,
                     double seconds, open_phase *p)
{
    open_driver d[64];
    pthread_t tid[64];
    size_t threads = opt.threads, per, t, started = 0, total = 0, i;
    size_t planned = (size_t)(rate * seconds), per_conn;
    double wall;
    cpu_mark cpu0;
    uint64_t start, last = 0;
    uint32_t *all;
    int rc = 0;

    memset(p, 0, sizeof(*p));
    p->rate = rate;
    p->seconds = seconds;
    p->due = planned;
    if (rate * seconds > (double)opt.max_presigned) {
        note("%.0f/s for %.1f s needs %.0f signed envelopes, more than "
             "--max-presigned %lu", rate, seconds, rate * seconds,
             opt.max_presigned);
        return -1;
    }
    per_conn = (planned + opt.clients - 1) / opt.clients;
    if (presign(clients, opt.clients, per_conn ? per_conn : 1) < 0)
        return -1;
    if (threads > opt.clients)
        threads = opt.clients;
    if (threads > 64)
        threads = 64;
    per = (opt.clients + threads - 1) / threads;
    cpu0 = cpu_mark_now(h->pid);
    /* A little ahead, so the first sends are not late by the threads'
     * start. */
    start = monotonic_ns() + 2000000;
    for (t = 0; t < threads && t * per < opt.clients; t++) {
        size_t first = t * per;

        d[t] = (open_driver){clients + first, first,
                             opt.clients - first < per ? opt.clients - first
                                                       : per,
                             opt.clients, planned, 1e9 / rate, start, 0,
                             false, ""};
        if (pthread_create(&tid[t], NULL, drive_open, &d[t]) != 0)
            break;
        started++;
    }
    for (t = 0; t < started; t++) {
        pthread_join(tid[t], NULL);
        if (d[t].failed && rc == 0) {
            note("%s", d[t].failure);
            rc = -1;
        }
        if (d[t].last_answer > last)
            last = d[t].last_answer;
    }
    if (started == 0 || started * per < opt.clients)
        rc = -1;
    wall = (double)((last > start ? last : monotonic_ns()) - start) / 1e9;
    cpu_cores_since(&cpu0, h->pid, wall, &p->broker_cpu_cores,
                    &p->bench_cpu_cores);
    for (i = 0; i < opt.clients; i++) {
        conn *c = &clients[i];

        p->answered += c->ok;
        p->errors += c->errors;
        p->late_sends += c->late_sends;
        if ((double)c->max_lag_ns / 1000 > p->max_lag_us)
            p->max_lag_us = (double)c->max_lag_ns / 1000;
        total += c->n_latency;
        if (c->errors > 0)
            note("%s: %" PRIu64 " errors at %.0f/s; first: %s", c->dept,
                 c->errors, rate, c->first_error);
    }
    p->achieved = wall > 0 ? (double)p->answered / wall : 0;
    if ((all = malloc((total + 1) * sizeof(*all))) == NULL)
        return -1;
    total = 0;
    for (i = 0; i < opt.clients; i++) {
        memcpy(all + total, clients[i].latency_us,
               clients[i].n_latency * sizeof(*all));
        total += clients[i].n_latency;
    }
    summarize_latencies(all, total, &p->latency);
    free(all);
    p->pass = p->errors == 0 && p->answered == p->due &&
              p->latency.p99 <= opt.p99_target_ms * 1000;
    note("%8.0f/s for %.1f s: p50 %.0f us, p99 %.0f us, max %.0f us, %" PRIu64
         " errors, %" PRIu64 " sends > 1 ms late%s", rate, seconds,
         p->latency.p50, p->latency.p99, p->latency.max, p->errors,
         p->late_sends, opt.find_max_rate ? (p->pass ? ": pass" : ": fail")
                                          : "");
    return rc;
}

static int add_phase(results *r, const open_phase *p)
{
    if (r->n_phases == MAX_OPEN_PHASES)
        return -1;
    r->phases[r->n_phases++] = *p;
    return 0;
}

/* Doubling, then bisection; fills r->max_rate and r->at_half. */
static int find_max_rate(bench_home *h, conn *clients, results *r)
{
    double cap = r->verify_per_core * r->cores, lo = 0, hi = 0;
    double rate = opt.start_rate < cap ? opt.start_rate : cap;
    open_phase p;
    int steps;

    while (hi == 0) {
        if (run_phase(h, clients, rate, opt.phase_seconds, &p) < 0 ||
            add_phase(r, &p) < 0)
            return -1;
        if (!p.pass)
            hi = rate;
        else if (rate >= cap)
            break;
        else {
            lo = rate;
            rate = rate * 2 < cap ? rate * 2 : cap;
        }
    }
    if (hi == 0)
        lo = rate;
    for (steps = 0; hi > 0 && lo > 0 && hi / lo > 1.05 && steps < 8;
         steps++) {
        rate = (lo + hi) / 2;
        if (run_phase(h, clients, rate, opt.phase_seconds, &p) < 0 ||
            add_phase(r, &p) < 0)
            return -1;
        if (p.pass)
            lo = rate;
        else
            hi = rate;
    }
    if (lo == 0) {
        note("no rate from %.0f/s up kept p99 within %.1f ms",
             opt.start_rate, opt.p99_target_ms);
        return 0;
    }
    r->max_found = true;
    r->max_rate = lo;
    note("highest rate with p99 <= %.1f ms: %.0f/s; now %.1f s at half",
         opt.p99_target_ms, lo, opt.seconds);
    return run_phase(h, clients, lo / 2, opt.seconds, &r->at_half);
}

int run_open_loop(bench_home *h, void *ctx, conn *clients, results *r)
{
    open_phase warm;
    size_t i;
    int rc;

    r->open_loop = true;
    for (i = 0; i < opt.clients; i++) {
        if (conn_connect(&clients[i], ctx, h->endpoint,
                         h->broker.public_key) < 0) {
            note("cannot connect client %zu: %s", i, zmq_strerror(errno));
            return -1;
        }
    }
    /* Warm-up, not counted: the CURVE handshakes, the first sessions. */
    note("warming up at %.0f/s", opt.start_rate);
    if (run_phase(h, clients, opt.start_rate, 0.5, &warm) < 0)
        return -1;
    r->errors += warm.errors;
    if (opt.find_max_rate)
        rc = find_max_rate(h, clients, r);
    else
        rc = run_phase(h, clients, opt.rate, opt.seconds, &r->phases[0]);
    if (!opt.find_max_rate)
        r->n_phases = 1;
    /* Over the target refusals may be the broker's fair answer to
     * overload (QUOTA_EXCEEDED); at the rate reported they are failures. */
    if (opt.find_max_rate)
        r->errors += r->at_half.errors;
    else
        r->errors += r->phases[0].errors;
    if (rc == 0 && r->errors > 0)
        rc = -1;
    for (i = 0; i < opt.clients && rc == 0; i++)
        rc = check_sample(&clients[i], h->issuer.public_key);
    return rc;
}
