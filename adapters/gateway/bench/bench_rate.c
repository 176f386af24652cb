/*
 * bench_rate.c - the gateway's latency at a fixed rate (open loop).
 *
 *   gateway-bench-rate URL TOKEN RATE SECONDS MAX_IN_FLIGHT
 *
 * wrk keeps its connections busy and measures how fast the gateway can
 * go; a department's systems do not wait for each other, they call when an
 * official clicks. So this driver sends GET URL on a fixed schedule, call
 * i due at start + i / RATE, over at most MAX_IN_FLIGHT keep-alive
 * connections (libcurl's multi interface, one thread), and measures each
 * latency from the moment the call was due, not from when it could be
 * sent: a gateway that falls behind is charged for the wait it causes
 * (no coordinated omission). A call that could not start on time because
 * every connection was busy still counts from its due time, and is counted
 * as late.
 *
 * Prints the achieved rate, how many answers were not 200, how many calls
 * started late, and p50/p90/p99/max in ms. bench.sh runs it at half the
 * rate wrk reached, for issue 9's "p50/p99 at half the maximum rate".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "monotonic.h"

#define MAX_CALLS 2000000

typedef struct call {
    CURL *easy;
    double due;          /* seconds, monotonic_ns() / 1e9 */
    int busy;
} call;

static double now(void)
{
    return (double)monotonic_ns() / 1e9;
}

static size_t discard(char *data, size_t size, size_t n, void *user)
{
    (void)data;
    (void)user;
    return size * n;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, size_t n, double p)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t)(p * (double)(n - 1) + 0.5);
    return sorted[i];
}

int main(int argc, char **argv)
{
    struct curl_slist *headers = NULL;
    char auth[512];
    double rate, seconds, start, end, *latency;
    size_t sent = 0, done = 0, late = 0, failed = 0, i;
    long in_flight_max;
    call *calls;
    CURLM *multi;
    int running;

    if (argc != 6 || (rate = atof(argv[3])) <= 0 ||
        (seconds = atof(argv[4])) <= 0 ||
        (in_flight_max = atol(argv[5])) <= 0 || in_flight_max > 4096 ||
        rate * seconds > MAX_CALLS) {
        fprintf(stderr, "usage: gateway-bench-rate URL TOKEN RATE SECONDS "
                "MAX_IN_FLIGHT (RATE x SECONDS at most %d)\n", MAX_CALLS);
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", argv[2]);
    headers = curl_slist_append(NULL, auth);
    calls = calloc((size_t)in_flight_max, sizeof(*calls));
    latency = malloc((size_t)(rate * seconds + 1) * sizeof(*latency));
    multi = curl_multi_init();
    if (headers == NULL || calls == NULL || latency == NULL || multi == NULL)
        return 1;
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, in_flight_max);
    for (i = 0; i < (size_t)in_flight_max; i++) {
        calls[i].easy = curl_easy_init();
        if (calls[i].easy == NULL)
            return 1;
        curl_easy_setopt(calls[i].easy, CURLOPT_URL, argv[1]);
        curl_easy_setopt(calls[i].easy, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(calls[i].easy, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(calls[i].easy, CURLOPT_PRIVATE, &calls[i]);
    }

    start = now();
    end = start + seconds;
    for (;;) {
        double t = now(), next_due;
        CURLMsg *msg;
        int left, timeout_ms;

        /* Start every call that is due, while a connection is free. */
        while (sent < (size_t)(rate * seconds) &&
               start + (double)sent / rate <= t) {
            call *c = NULL;

            for (i = 0; i < (size_t)in_flight_max && c == NULL; i++)
                if (!calls[i].busy)
                    c = &calls[i];
            if (c == NULL)
                break;
            c->due = start + (double)sent / rate;
            if (t - c->due > 0.001)
                late++;
            c->busy = 1;
            curl_multi_add_handle(multi, c->easy);
            sent++;
        }
        curl_multi_perform(multi, &running);
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            call *c;
            long status = 0;

            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &c);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
                              &status);
            if (msg->data.result != CURLE_OK || status != 200)
                failed++;
            latency[done++] = now() - c->due;
            curl_multi_remove_handle(multi, c->easy);
            c->busy = 0;
        }
        if (sent == (size_t)(rate * seconds) && running == 0)
            break;
        if (now() > end + 30) /* answers that never come */
            break;
        next_due = start + (double)sent / rate - now();
        timeout_ms = next_due > 0 ? (int)(next_due * 1000) : 0;
        curl_multi_poll(multi, NULL, 0, timeout_ms > 100 ? 100 : timeout_ms,
                        NULL);
    }
    qsort(latency, done, sizeof(*latency), by_value);
    printf("rate: %.0f requests/s asked, %.0f answered/s, %zu not 200, "
           "%zu started late\n", rate, (double)done / (now() - start),
           failed, late);
    printf("latency from due time: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, "
           "max %.2f ms\n", percentile(latency, done, 0.50) * 1e3,
           percentile(latency, done, 0.90) * 1e3,
           percentile(latency, done, 0.99) * 1e3,
           done > 0 ? latency[done - 1] * 1e3 : 0.0);
    for (i = 0; i < (size_t)in_flight_max; i++) {
        if (calls[i].busy)
            curl_multi_remove_handle(multi, calls[i].easy);
        curl_easy_cleanup(calls[i].easy);
    }
    curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
    free(calls);
    free(latency);
    curl_global_cleanup();
    return failed == 0 && done == sent ? 0 : 1;
}
