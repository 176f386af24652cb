/*
 * bench_direct.c - the yardstick for the gateway's throughput: the same
 * requests made directly with libonce, as a C department system would.
 *
 *   gateway-bench-direct ENDPOINT DEPARTMENT KEY BROKER_PUB ISSUER_PUB
 *                        TYPE SUBJECT PURPOSE THREADS SECONDS [DEPTH]
 *
 * THREADS threads each open a once_client and, for SECONDS, request the
 * record and verify it with the issuer's key (what the gateway does for
 * each GET), one call in flight per connection, as the gateway's pool
 * does. Prints "direct: N requests/s" and the latency p50/p99 in ms.
 * bench.sh runs it and wrk against the gateway in one run.
 *
 * With DEPTH above 1 (at most ONCE_MAX_IN_FLIGHT), each connection keeps
 * DEPTH requests in flight instead (once_client_request_send and
 * _receive): one connection pipelined against several synchronous ones.
 * A latency is then from a request's send to its receive.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monotonic.h"
#include "once/once.h"

#define MAX_SAMPLES 1000000

static const char *endpoint, *department, *type, *subject, *purpose;
static once_keypair key;
static uint8_t broker_pk[32], issuer_pk[32];
static double deadline;
static double *samples;
static size_t sample_count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int failures;
static int depth = 1;

static double now(void)
{
    return (double)monotonic_ns() / 1e9;
}

static void record_result(int rc, double t0)
{
    pthread_mutex_lock(&lock);
    if (rc < 0)
        failures++;
    else if (sample_count < MAX_SAMPLES)
        samples[sample_count++] = now() - t0;
    pthread_mutex_unlock(&lock);
}

/* depth requests in flight on c until the deadline, then the rest
 * received. A client that sends only requests numbers them with
 * consecutive seqs, so ticket modulo twice the limit names a send time. */
static void pipelined(once_client *c)
{
    double sent_at[2 * ONCE_MAX_IN_FLIGHT];
    once_error err;

    while (now() < deadline || once_client_in_flight(c) > 0) {
        once_record *r = NULL;
        uint64_t ticket;
        int rc;

        while (now() < deadline && once_client_in_flight(c) < (size_t)depth) {
            double t0 = now();

            if (once_client_request_send(c, NULL, type, subject, purpose,
                                         "BENCH-1", 0, 0, &ticket, &err) < 0) {
                record_result(-1, t0);
                return;
            }
            sent_at[ticket % (2 * ONCE_MAX_IN_FLIGHT)] = t0;
        }
        rc = once_client_request_receive(c, -1, &ticket, &r, NULL, &err);
        if (ticket == 0) {
            record_result(-1, 0);
            return;
        }
        if (rc == 0)
            rc = once_record_verify(r, issuer_pk, &err);
        once_record_free(r);
        record_result(rc, sent_at[ticket % (2 * ONCE_MAX_IN_FLIGHT)]);
    }
}

static void *run(void *arg)
{
    once_client *c;
    once_error err;

    (void)arg;
    if (once_client_open(&c, endpoint, department, &key, broker_pk, NULL,
                         &err) < 0) {
        fprintf(stderr, "open: %s\n", err.message);
        pthread_mutex_lock(&lock);
        failures++;
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    if (depth > 1) {
        pipelined(c);
        once_client_close(c);
        return NULL;
    }
    while (now() < deadline) {
        double t0 = now();
        once_record *r = NULL;
        int rc = once_client_request(c, type, subject, purpose, "BENCH-1", 0,
                                     &r, &err);

        if (rc == 0)
            rc = once_record_verify(r, issuer_pk, &err);
        once_record_free(r);
        record_result(rc, t0);
    }
    once_client_close(c);
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    pthread_t threads[256];
    once_error err;
    int n, i, seconds;

    if (argc != 11 && argc != 12) {
        fprintf(stderr, "usage: gateway-bench-direct ENDPOINT DEPARTMENT "
                "KEY BROKER_PUB ISSUER_PUB TYPE SUBJECT PURPOSE THREADS "
                "SECONDS [DEPTH]\n");
        return 2;
    }
    endpoint = argv[1];
    department = argv[2];
    type = argv[6];
    subject = argv[7];
    purpose = argv[8];
    n = atoi(argv[9]);
    seconds = atoi(argv[10]);
    if (argc == 12)
        depth = atoi(argv[11]);
    if (n < 1 || n > 256 || seconds < 1 || depth < 1 ||
        depth > ONCE_MAX_IN_FLIGHT || once_init() < 0)
        return 2;
    if (once_keypair_load(&key, argv[3], &err) < 0 ||
        once_public_key_load(broker_pk, argv[4], &err) < 0 ||
        once_public_key_load(issuer_pk, argv[5], &err) < 0) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    samples = malloc(MAX_SAMPLES * sizeof(*samples));
    if (samples == NULL)
        return 1;
    deadline = now() + seconds;
    for (i = 0; i < n; i++)
        pthread_create(&threads[i], NULL, run, NULL);
    for (i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    qsort(samples, sample_count, sizeof(*samples), by_value);
    printf("direct: %.0f requests/s, p50 %.2f ms, p99 %.2f ms, %d failures\n",
           (double)sample_count / seconds,
           sample_count ? samples[sample_count / 2] * 1e3 : 0.0,
           sample_count ? samples[sample_count * 99 / 100] * 1e3 : 0.0,
           failures);
    once_keypair_wipe(&key);
    free(samples);
    return failures != 0;
}
