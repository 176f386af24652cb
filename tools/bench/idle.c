/*
 * idle.c - once-bench --idle-subscribers N: the request rate with N idle
 * subscribers connected against none, in the same run (issue 11: a slow
 * or absent subscriber must never slow the broker or other departments;
 * docs/PERFORMANCE.md, "Notices").
 *
 * The request phase (run_requests, phases.c) runs 2 x --idle-rounds
 * times, alternating A B A B: A with no subscriber connected, B with N
 * subscriber departments connected as libonce clients, each subscribed to
 * the bench's type and registered for pushes (subscriber_open), and then
 * never reading again, as a stuck department system would. Alternating
 * within one run, on one broker and one database, lets whatever else
 * loads the machine fall on both sides alike, as tools/bench/ab.sh and
 * scale.sh do across runs; the last line is median-ratio.py's: the
 * medians of each side and their ratio (the target is at least 0.95).
 * Each phase also gives its requests per second of CPU onced used, as
 * scale.sh does: on a loaded machine onced gets a varying share of the
 * cores, and this moves less with it.
 *
 * Between phases the subscribers are closed (A) or opened again (B): the
 * subscriptions stay, they are durable, so in A the broker holds the
 * subscriptions and no registered connection. The requesters' connections
 * stay open across phases; each phase signs its own envelopes before it
 * starts (run_requests). Requests make no notices, so an idle subscriber
 * costs the broker what it holds for it, not deliveries: --notice-fanout
 * measures those.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "phases.h"
#include "subscribers.h"

static int median_compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(const double *v, size_t n)
{
    double sorted[MAX_IDLE_ROUNDS];

    memcpy(sorted, v, n * sizeof(*v));
    qsort(sorted, n, sizeof(*sorted), median_compare);
    return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

static void close_all(once_client **subs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        once_client_close(subs[i]);
        subs[i] = NULL;
    }
}

int run_idle_comparison(bench_home *h, void *ctx, conn *clients,
                        const conn *subs, results *r, idle_results *out)
{
    size_t n = opt.idle_subscribers, round, i;
    once_client **open = calloc(n, sizeof(*open));
    results base = *r;
    double per_cpu;
    int rc = -1, side;

    memset(out, 0, sizeof(*out));
    out->subscribers = n;
    out->rounds = opt.idle_rounds;
    if (open == NULL)
        return -1;
    for (round = 0; round < opt.idle_rounds; round++) {
        for (side = 0; side < 2; side++) {
            if (side == 1) {
                note("round %zu: connecting %zu idle subscribers", round + 1,
                     n);
                for (i = 0; i < n; i++)
                    if (subscriber_open(h, &subs[i], &open[i]) < 0)
                        goto out;
            }
            note("round %zu: requests with %s", round + 1,
                 side ? "idle subscribers" : "no subscriber");
            *r = base;
            if (run_requests(h, ctx, clients, r) < 0)
                goto out;
            per_cpu = r->broker_cpu_cores > 0
                          ? r->requests_per_s / r->broker_cpu_cores : 0;
            if (side == 0) {
                out->none_rate[round] = r->requests_per_s;
                out->none_p99[round] = r->p99_us;
                out->none_per_cpu[round] = per_cpu;
            } else {
                out->idle_rate[round] = r->requests_per_s;
                out->idle_p99[round] = r->p99_us;
                out->idle_per_cpu[round] = per_cpu;
                close_all(open, n);
            }
        }
    }
    out->none_median = median(out->none_rate, out->rounds);
    out->idle_median = median(out->idle_rate, out->rounds);
    out->none_per_cpu_median = median(out->none_per_cpu, out->rounds);
    out->idle_per_cpu_median = median(out->idle_per_cpu, out->rounds);
    rc = 0;
out:
    close_all(open, n);
    free(open);
    return rc;
}

void print_idle(const idle_results *ir)
{
    size_t i;

    printf("\nIdle subscribers (%zu connected, subscribed and registered, "
           "never reading; alternating with none)\n", ir->subscribers);
    for (i = 0; i < ir->rounds; i++)
        printf("  round %zu  none %10.1f requests/s (p99 %.0f us, %.0f per "
               "onced cpu-s)  idle %10.1f requests/s (p99 %.0f us, %.0f per "
               "onced cpu-s)  ratio %.3f\n", i + 1, ir->none_rate[i],
               ir->none_p99[i], ir->none_per_cpu[i], ir->idle_rate[i],
               ir->idle_p99[i], ir->idle_per_cpu[i],
               ir->none_rate[i] > 0 ? ir->idle_rate[i] / ir->none_rate[i] : 0);
    printf("median none %.1f, idle %.1f requests/s: ratio idle/none %.3f "
           "(target >= 0.95)\n", ir->none_median, ir->idle_median,
           ir->none_median > 0 ? ir->idle_median / ir->none_median : 0);
    printf("per onced cpu-s: median none %.1f, idle %.1f requests/s: ratio "
           "idle/none %.3f\n", ir->none_per_cpu_median,
           ir->idle_per_cpu_median,
           ir->none_per_cpu_median > 0
               ? ir->idle_per_cpu_median / ir->none_per_cpu_median : 0);
}
