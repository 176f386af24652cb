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
 * so a send is a memcpy into libzmq. The driver sleeps in epoll on the
 * sockets' ZMQ_FDs with a nanosecond timeout to the next due time (not
 * zmq_poll's milliseconds, which would add up to 1 ms of lag to every
 * request), sends every request due by then in one pass, in due order,
 * and drains only the sockets that signalled or may have lost their
 * signal to a send. The bench shares the broker's cores, so what a
 * wake-up costs is kept small: one epoll wait whatever the number of
 * connections (ppoll over every socket cost a fifth of the bench's CPU at
 * 6,000/s), a cursor over the schedule instead of a scan of every
 * connection, and one clock reading per pass for all its sends and the
 * answers drained after them (docs/PERFORMANCE.md, "Publishes: two
 * signatures each, and the bench's own CPU"). Whether the schedule was
 * kept is measured, not assumed: each send's lag after its due time
 * (against the clock read after the pass, so never less than it was), the
 * latest lag and the sends more than 1 ms late are reported per phase,
 * and the report says "schedule NOT kept" when more than 1% of the sends
 * were late.
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
#include <sys/epoll.h>
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
/* A send later than this after its due time is late. */
#define LATE_NS 1000000ull
/* Sends accounted per clock reading: a pass of more reads it again. */
#define PASS_SENDS 64

/* One driver thread's share: connections first .. first + n of total. */
typedef struct open_driver {
    conn *conns;
    size_t first, n, total;
    size_t planned;          /* requests due in the phase, all connections */
    double period_ns;        /* 1e9 / rate */
    uint64_t start;
    uint64_t last_answer;
    uint64_t late_sends;     /* sent more than LATE_NS after due */
    uint64_t max_lag_ns;     /* the latest send after its due time */
    bool no_pwait2;          /* the kernel lacks epoll_pwait2 */
    bool failed;
    char failure[256];
} open_driver;

/* Where a driver is in its part of the schedule: the driver's requests,
 * in the order they fall due, are round after round of its connections
 * first .. first + n - 1; request `round` of connection first + k is
 * global request first + k + round x total. */
typedef struct schedule_cursor {
    size_t k, round;
    size_t left;             /* of the driver's requests, not sent yet */
} schedule_cursor;

/* Requests of the phase that fall to global connection g. */
static size_t planned_for(const open_driver *d, size_t g)
{
    return d->planned > g ? (d->planned - g + d->total - 1) / d->total : 0;
}

static uint64_t due_time(const open_driver *d, size_t g, size_t i)
{
    return d->start + (uint64_t)((double)(g + i * d->total) * d->period_ns);
}

/* Moves the cursor on to a request that exists, unless none is left. */
static void cursor_seek(const open_driver *d, schedule_cursor *s)
{
    while (s->left > 0 && s->round >= planned_for(d, d->first + s->k)) {
        if (++s->k == d->n) {
            s->k = 0;
            s->round++;
        }
    }
}

/* The request under the cursor was sent: on to the next one. */
static void cursor_next(const open_driver *d, schedule_cursor *s)
{
    s->left--;
    if (++s->k == d->n) {
        s->k = 0;
        s->round++;
    }
    cursor_seek(d, s);
}

/* Counts sends whose due times are due[0..n) as sent at `now`, a clock
 * reading after them: when they were sent at the latest. */
static void count_lateness(open_driver *d, const uint64_t *due, size_t n,
                           uint64_t now)
{
    for (size_t i = 0; i < n && now > due[i]; i++) {
        if (now - due[i] > LATE_NS)
            d->late_sends++;
        if (now - due[i] > d->max_lag_ns)
            d->max_lag_ns = now - due[i];
    }
}

/* Receives every answer waiting on c, as received at `now`; adds to
 * *outstanding the change in c's requests in flight. */
static int drain(open_driver *d, conn *c, uint64_t now, size_t *outstanding)
{
    size_t before = c->outstanding;

    for (;;) {
        zmq_msg_t m;

        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            *outstanding = *outstanding + c->outstanding - before;
            return errno == EAGAIN ? 0 : -1;
        }
        conn_answer_at(c, zmq_msg_data(&m), zmq_msg_size(&m), 0, now);
        zmq_msg_close(&m);
        d->last_answer = now;
    }
}

/* Waits for a socket to signal, at most until `until` (monotonic ns):
 * epoll_pwait2 for its nanosecond timeout (epoll_wait's milliseconds
 * would add up to 1 ms of lag to every send), or, on a kernel without it,
 * ppoll on the epoll descriptor and then epoll_wait without waiting. */
static int wait_until(open_driver *d, int epfd, struct epoll_event *ev,
                      int max_events, uint64_t until, uint64_t now)
{
    struct timespec ts = {0, 0};
    struct pollfd pfd = {epfd, POLLIN, 0};
    int n;

    if (until > now) {
        ts.tv_sec = (time_t)((until - now) / 1000000000ull);
        ts.tv_nsec = (long)((until - now) % 1000000000ull);
    }
    if (!d->no_pwait2) {
        n = epoll_pwait2(epfd, ev, max_events, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n < 0 && errno == EINTR ? 0 : n;
        d->no_pwait2 = true;
    }
    if (ppoll(&pfd, 1, &ts, NULL) < 0)
        return errno == EINTR ? 0 : -1;
    n = epoll_wait(epfd, ev, max_events, 0);
    return n < 0 && errno == EINTR ? 0 : n;
}

static void *drive_open(void *arg)
{
    open_driver *d = arg;
    struct epoll_event *ev = calloc(d->n, sizeof(*ev));
    bool *look = calloc(d->n, sizeof(*look));
    uint64_t last_progress = monotonic_ns(), pass_due[PASS_SENDS];
    schedule_cursor cur = {0, 0, 0};
    size_t k, outstanding = 0;
    int epfd = epoll_create1(EPOLL_CLOEXEC);

    if (ev == NULL || look == NULL || epfd < 0)
        goto failed;
    for (k = 0; k < d->n; k++) {
        struct epoll_event e = {.events = EPOLLIN, .data.u64 = k};
        size_t len = sizeof(int);
        int fd;

        if (zmq_getsockopt(d->conns[k].sock, ZMQ_FD, &fd, &len) != 0 ||
            epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) != 0)
            goto failed;
        look[k] = true;
        cur.left += planned_for(d, d->first + k);
    }
    cursor_seek(d, &cur);
    for (;;) {
        uint64_t now = monotonic_ns(), next_due = UINT64_MAX;
        size_t in_pass = 0, sent = 0;
        int n_ev;

        /* Every request due by now, in the order they fell due. */
        while (cur.left > 0) {
            conn *c = &d->conns[cur.k];
            uint64_t due = due_time(d, d->first + cur.k, cur.round);
            size_t had = c->outstanding;
            int rc;

            if (due > now) {
                next_due = due;
                break;
            }
            if ((rc = conn_send_due(c, due)) < 0)
                goto failed;
            /* A send processes the socket's commands, which may take
             * the signal of an answer that arrived: a socket with
             * requests in flight is looked at after a send. With none
             * in flight no answer can be waiting, and the look (a
             * failed receive, two system calls in libzmq) is spared. */
            if (rc == 1 || had > 0)
                look[cur.k] = true;
            if (rc == 1) {  /* at the high-water mark: retry soon */
                next_due = now + 100000;
                break;
            }
            outstanding++;
            sent++;
            pass_due[in_pass++] = due;
            if (in_pass == PASS_SENDS) {
                count_lateness(d, pass_due, in_pass, monotonic_ns());
                in_pass = 0;
            }
            cursor_next(d, &cur);
        }
        /* One clock reading for the pass's sends and for the answers
         * drained next, which arrived by then (or, the few that come
         * while the sockets are drained, microseconds after it). */
        if (sent > 0) {
            now = monotonic_ns();
            count_lateness(d, pass_due, in_pass, now);
        }
        for (k = 0; k < d->n; k++) {
            if (!look[k])
                continue;
            if (drain(d, &d->conns[k], now, &outstanding) < 0)
                goto failed;
            look[k] = false;
        }
        if (cur.left == 0 && outstanding == 0)
            break;
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
        /* A ZMQ_FD signals a change, not a message: a socket is looked
         * at (drained until EAGAIN, which rearms it) after it signalled
         * and after a send that may have taken the signal (above). Only
         * those: draining every socket every time costs a poll(2) inside
         * libzmq per socket. epoll, unlike ppoll over every socket,
         * costs the same however many connections there are. */
        if ((n_ev = wait_until(d, epfd, ev, (int)d->n, next_due, now)) <
            0)
            goto failed;
        for (int i = 0; i < n_ev; i++)
            look[ev[i].data.u64] = true;
    }
    close(epfd);
    free(ev);
    free(look);
    return NULL;
failed:
    d->failed = true;
    snprintf(d->failure, sizeof(d->failure), "open-loop driver: %s",
             zmq_strerror(errno));
    if (epfd >= 0)
        close(epfd);
    free(ev);
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
    double cpu0_broker, cpu0_self, wall;
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
    cpu0_broker = process_cpu_seconds(h->pid);
    cpu0_self = self_cpu_seconds();
    /* A little ahead, so the first sends are not late by the threads'
     * start. */
    start = monotonic_ns() + 2000000;
    for (t = 0; t < threads && t * per < opt.clients; t++) {
        size_t first = t * per;

        d[t] = (open_driver){clients + first, first,
                             opt.clients - first < per ? opt.clients - first
                                                       : per,
                             opt.clients, planned, 1e9 / rate, start, 0, 0,
                             0, false, false, ""};
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
        p->late_sends += d[t].late_sends;
        if ((double)d[t].max_lag_ns / 1000 > p->max_lag_us)
            p->max_lag_us = (double)d[t].max_lag_ns / 1000;
    }
    if (started == 0 || started * per < opt.clients)
        rc = -1;
    wall = (double)((last > start ? last : monotonic_ns()) - start) / 1e9;
    p->broker_cpu_cores = (process_cpu_seconds(h->pid) - cpu0_broker) / wall;
    p->bench_cpu_cores = (self_cpu_seconds() - cpu0_self) / wall;
    for (i = 0; i < opt.clients; i++) {
        conn *c = &clients[i];

        p->answered += c->ok;
        p->errors += c->errors;
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
