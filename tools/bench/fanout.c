/*
 * fanout.c - once-bench --notice-fanout N: how fast the broker fans
 * notices out to N subscribers that read them, and how long after a
 * revoke each subscriber hears of it (issue 11; docs/PERFORMANCE.md,
 * "Notices").
 *
 * After the request phase, N subscriber departments connect as libonce
 * clients (subscriber_open: subscribed to the bench's type, registered for
 * pushes), each on a thread of its own that waits in
 * once_client_notice_next and notes when each notice arrived (the
 * monotonic clock is the machine's, shared by every thread), acknowledging
 * every 64 notices as a real subscriber would: a subscriber that never
 * acknowledges is sent again from its cursor whenever it renews its
 * credit. An acknowledgement is a call that waits for a durable write at
 * the broker, and the notices that arrive meanwhile wait in the client's
 * queue, as they would in any libonce subscriber; so that the 200 do not
 * all acknowledge after the same revoke, subscriber s acknowledges when
 * its count plus s is a multiple of 64 (and its last).
 *
 * Then an issuer client revokes the first K records (--notice-records),
 * one after the other, each revocation signed before its send, and notes
 * when each reply came and its leaf index (the receipt). Back to back
 * (the default) the revokes come as fast as the broker answers them and
 * the notices queue behind each other: that measures notices per second,
 * and latencies that include the queue. At --notice-rate R, revoke i is
 * sent at i/R seconds: at a low rate each revoke's fan-out is done before
 * the next, and the latency is that of one fan-out. A notice's
 * latency is the time from that reply to its arrival at the subscriber:
 * what a department waits after the issuer was told "done". A notice can
 * arrive before the issuer has read its reply (the broker sends both when
 * the leaf is durable); it counts as 0 and is counted apart. The fan-out
 * rate is the notices received over the time from the first revoke sent
 * to the last notice received, so it includes the revokes' own pace.
 *
 * Every subscriber must receive every one of the K notices, once (the
 * client skips a repeated leaf index): else the run fails. Subscribers,
 * the bench and the broker share the machine's cores, so on a small
 * machine these figures are a lower bound.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "bench.h"
#include "phases.h"
#include "subscribers.h"

/* A subscriber acknowledges every this many notices, and its last. */
#define ACK_EVERY 64
/* How long the readers may take to connect, and the fan-out may go on
 * without a new notice, before the run gives up. */
#define READY_SECONDS 60.0
#define STALL_SECONDS 60.0
#define NEXT_TIMEOUT_MS 100

void subscriber_id(size_t i, char *out, size_t cap)
{
    snprintf(out, cap, "bench-subscriber-%03zu", i);
}

int subscriber_open(const bench_home *h, const conn *d, once_client **out)
{
    once_error err = {0};
    once_notice n;
    int rc;

    *out = NULL;
    rc = once_client_open(out, h->endpoint, d->dept, &d->key,
                          h->broker.public_key, NULL, &err);
    if (rc == 0)
        rc = once_client_subscribe(*out, ONCE_SCOPE_TYPE, BENCH_TYPE, NULL,
                                   NULL, &err);
    if (rc == 0) {
        rc = once_client_notice_next(*out, 1, &n, &err);
        if (rc == -ONCE_ERR_TIMEOUT)
            rc = 0;
        sodium_memzero(&n, sizeof(n));
    }
    if (rc < 0) {
        note("subscriber %s: %s", d->dept, err.message);
        once_client_close(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

typedef struct reader {
    const bench_home *h;
    size_t index;            /* staggers the acknowledgements */
    const conn *dept;
    pthread_t thread;
    bool started;
    uint64_t *leaf;          /* the notices received, in order */
    uint64_t *at_ns;         /* ... and when */
    size_t cap;
    _Atomic size_t n;
    bool failed;
} reader;

static _Atomic size_t readers_ready;
static _Atomic bool readers_failed;
static _Atomic bool readers_stop;

static void *reader_main(void *arg)
{
    reader *rd = arg;
    once_client *c = NULL;
    once_error err = {0};
    once_notice n;
    uint64_t last = 0;
    size_t got = 0;
    int rc;

    if (subscriber_open(rd->h, rd->dept, &c) < 0) {
        rd->failed = true;
        atomic_store(&readers_failed, true);
        return NULL;
    }
    atomic_fetch_add(&readers_ready, 1);
    while (got < rd->cap && !atomic_load(&readers_stop)) {
        rc = once_client_notice_next(c, NEXT_TIMEOUT_MS, &n, &err);
        if (rc == -ONCE_ERR_TIMEOUT)
            continue;
        if (rc < 0) {
            note("subscriber %s: %s", rd->dept->dept, err.message);
            rd->failed = true;
            break;
        }
        if (n.event != ONCE_NOTICE_REVOKED || strcmp(n.type, BENCH_TYPE) != 0)
            continue;
        rd->at_ns[got] = monotonic_ns();
        rd->leaf[got] = n.leaf_index;
        last = n.leaf_index;
        got++;
        atomic_store(&rd->n, got);
        if ((got + rd->index) % ACK_EVERY == 0 &&
            once_client_notice_ack(c, last, &err) < 0) {
            note("subscriber %s: ack: %s", rd->dept->dept, err.message);
            rd->failed = true;
            break;
        }
    }
    if (!rd->failed && (got + rd->index) % ACK_EVERY != 0 && got > 0 &&
        once_client_notice_ack(c, last, &err) < 0) {
        note("subscriber %s: ack: %s", rd->dept->dept, err.message);
        rd->failed = true;
    }
    sodium_memzero(&n, sizeof(n));
    once_client_close(c);
    return NULL;
}

/* Sleeps until the monotonic time t_ns. */
static void sleep_until(uint64_t t_ns)
{
    uint64_t now = monotonic_ns();
    struct timespec ts;

    if (t_ns <= now)
        return;
    ts.tv_sec = (time_t)((t_ns - now) / 1000000000u);
    ts.tv_nsec = (long)((t_ns - now) % 1000000000u);
    nanosleep(&ts, NULL);
}

/* Revokes records 0..k one at a time (at --notice-rate, when given);
 * reply_ns[i] and leaf[i] from the reply of revoke i. */
static int revoke_records(const bench_home *h, size_t k, uint64_t *reply_ns,
                          uint64_t *leaf, uint64_t *first_send_ns)
{
    once_client *issuer = NULL;
    once_record *rv = NULL;
    once_receipt receipt = {0};
    once_error err = {0};
    char subject[19];
    size_t i;
    int rc;

    rc = once_client_open(&issuer, h->endpoint, BENCH_ISSUER, &h->issuer,
                          h->broker.public_key, NULL, &err);
    for (i = 0; rc == 0 && i < k; i++) {
        make_subject(i, subject);
        rc = once_record_new_revocation(&rv, BENCH_TYPE, subject, 2,
                                        BENCH_ISSUER, &err);
        if (rc == 0)
            rc = once_record_sign(rv, &h->issuer, &err);
        if (rc == 0 && i == 0)
            *first_send_ns = monotonic_ns();
        else if (rc == 0 && opt.notice_rate > 0)
            sleep_until(*first_send_ns +
                        (uint64_t)((double)i / opt.notice_rate * 1e9));
        if (rc == 0)
            rc = once_client_revoke_ex(issuer, rv, 0, &receipt, &err);
        reply_ns[i] = monotonic_ns();
        leaf[i] = receipt.leaf_index;
        once_record_free(rv);
        rv = NULL;
    }
    once_receipt_clear(&receipt);
    once_client_close(issuer);
    if (rc < 0)
        note("revoke %zu of %zu: %s", i, k, err.message);
    return rc < 0 ? -1 : 0;
}

/* The index of leaf in sorted[0..n), or n. */
static size_t find_leaf(const uint64_t *sorted, size_t n, uint64_t leaf)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (sorted[mid] < leaf)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && sorted[lo] == leaf ? lo : n;
}

/* Latencies, the last arrival and the count of early ones, from the
 * readers' notes. */
static int summarize(reader *rd, size_t n_readers, size_t k,
                     const uint64_t *reply_ns, const uint64_t *leaf,
                     uint64_t first_send_ns, fanout_results *out)
{
    uint32_t *lat = malloc((out->expected + 1) * sizeof(*lat));
    uint64_t last_ns = first_send_ns;
    size_t n_lat = 0, s, i, j;

    if (lat == NULL)
        return -1;
    for (s = 0; s < n_readers; s++) {
        size_t got = atomic_load(&rd[s].n);

        out->received += got;
        for (i = 0; i < got; i++) {
            j = find_leaf(leaf, k, rd[s].leaf[i]);
            if (j == k)
                continue;
            if (rd[s].at_ns[i] > last_ns)
                last_ns = rd[s].at_ns[i];
            if (rd[s].at_ns[i] <= reply_ns[j]) {
                out->before_reply++;
                lat[n_lat++] = 0;
            } else
                lat[n_lat++] = (uint32_t)((rd[s].at_ns[i] - reply_ns[j]) /
                                          1000u);
        }
    }
    summarize_latencies(lat, n_lat, &out->latency);
    free(lat);
    out->fanout_seconds = (double)(last_ns - first_send_ns) / 1e9;
    out->notices_per_s = out->fanout_seconds > 0
                             ? (double)out->received / out->fanout_seconds
                             : 0;
    return 0;
}

/* Sleeps 10 ms. */
static void nap(void)
{
    struct timespec ts = {0, 10 * 1000000L};

    nanosleep(&ts, NULL);
}

int run_notice_fanout(bench_home *h, const conn *subs, fanout_results *out)
{
    size_t n_readers = opt.notice_fanout, k = opt.notice_records, s, total;
    uint64_t *reply_ns = calloc(k, sizeof(*reply_ns));
    uint64_t *leaf = calloc(k, sizeof(*leaf));
    reader *rd = calloc(n_readers, sizeof(*rd));
    uint64_t first_send_ns = 0, since, last_total;
    double cpu0 = 0;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    out->subscribers = n_readers;
    out->revokes = k;
    out->expected = (uint64_t)n_readers * k;
    atomic_store(&readers_ready, 0);
    atomic_store(&readers_failed, false);
    atomic_store(&readers_stop, false);
    if (reply_ns == NULL || leaf == NULL || rd == NULL)
        goto out;
    note("connecting %zu subscribers that read their notices", n_readers);
    for (s = 0; s < n_readers; s++) {
        rd[s].h = h;
        rd[s].index = s;
        rd[s].dept = &subs[s];
        rd[s].cap = k;
        rd[s].leaf = calloc(k, sizeof(uint64_t));
        rd[s].at_ns = calloc(k, sizeof(uint64_t));
        if (rd[s].leaf == NULL || rd[s].at_ns == NULL ||
            pthread_create(&rd[s].thread, NULL, reader_main, &rd[s]) != 0)
            goto stop;
        rd[s].started = true;
    }
    since = monotonic_ns();
    while (atomic_load(&readers_ready) < n_readers) {
        if (atomic_load(&readers_failed) ||
            monotonic_ns() - since > seconds_ns(READY_SECONDS)) {
            note("the subscribers did not all connect (%zu of %zu)",
                 atomic_load(&readers_ready), n_readers);
            goto stop;
        }
        nap();
    }
    note("revoking %zu records, one after the other", k);
    cpu0 = process_cpu_seconds(h->pid);
    if (revoke_records(h, k, reply_ns, leaf, &first_send_ns) < 0)
        goto stop;
    out->revoke_seconds = (double)(reply_ns[k - 1] - first_send_ns) / 1e9;
    /* Until every notice came, or none for STALL_SECONDS. */
    last_total = 0;
    since = monotonic_ns();
    for (;;) {
        for (total = 0, s = 0; s < n_readers; s++)
            total += atomic_load(&rd[s].n);
        if (total == out->expected)
            break;
        if (total != last_total) {
            last_total = total;
            since = monotonic_ns();
        } else if (monotonic_ns() - since > seconds_ns(STALL_SECONDS)) {
            note("no notice for %.0f s: %zu of %llu arrived", STALL_SECONDS,
                 total, (unsigned long long)out->expected);
            break;
        }
        nap();
    }
    out->broker_cpu_seconds = process_cpu_seconds(h->pid) - cpu0;
    rc = 0;
stop:
    atomic_store(&readers_stop, true);
    for (s = 0; s < n_readers; s++) {
        if (rd[s].started) {
            pthread_join(rd[s].thread, NULL);
            if (rd[s].failed)
                rc = -1;
        }
    }
    if (rc == 0)
        rc = summarize(rd, n_readers, k, reply_ns, leaf, first_send_ns, out);
    if (rc == 0 && out->received != out->expected) {
        note("%llu of %llu notices arrived",
             (unsigned long long)out->received,
             (unsigned long long)out->expected);
        rc = -1;
    }
    for (s = 0; s < n_readers; s++) {
        free(rd[s].leaf);
        free(rd[s].at_ns);
    }
out:
    free(rd);
    free(leaf);
    free(reply_ns);
    return rc;
}

void print_fanout(const fanout_results *fr)
{
    printf("\nNotice fan-out (%zu subscribers reading with libonce, %zu "
           "records revoked one after the other, %s)\n", fr->subscribers,
           fr->revokes, opt.notice_rate > 0 ? "paced" : "back to back");
    printf("  revokes               %.1f revokes/s (%zu in %.3f s)\n",
           fr->revoke_seconds > 0 ? (double)fr->revokes / fr->revoke_seconds
                                  : 0, fr->revokes, fr->revoke_seconds);
    printf("  notices received      %llu of %llu\n",
           (unsigned long long)fr->received,
           (unsigned long long)fr->expected);
    printf("  notices fanned out    %.0f notices/s (first revoke sent to "
           "last notice: %.3f s)\n", fr->notices_per_s, fr->fanout_seconds);
    printf("  revoke-to-notice      p50 %.0f us  p90 %.0f us  p99 %.0f us  "
           "max %.0f us (from the revoke's reply)\n", fr->latency.p50,
           fr->latency.p90, fr->latency.p99, fr->latency.max);
    printf("  cpu used by onced     %.3f s (%.1f us a notice)\n",
           fr->broker_cpu_seconds,
           fr->received > 0 ? fr->broker_cpu_seconds * 1e6 /
                                  (double)fr->received : 0);
    printf("  before the reply      %llu notices arrived before the issuer "
           "read its reply (counted as 0 us)\n",
           (unsigned long long)fr->before_reply);
}
