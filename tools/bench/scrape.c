/*
 * scrape.c - once-bench --console: the console on and scraped every second
 * while the requests run, to measure what watching the broker costs it.
 *
 * The question the console must answer well is "does monitoring slow the
 * exchange down?". The answer is measured, not argued: with --console the
 * broker home gets a console on a free loopback port and a token, and
 * during the request phase this thread fetches /metrics with the token
 * once a second, like a Prometheus with scrape_interval 1s (each scrape
 * also brings the console's KPIs up to date from the log, which is the
 * console's biggest per-scrape cost). Comparing the requests/s of runs with
 * and without --console (tools/bench/console-overhead.sh alternates them)
 * gives the console's cost. HTTP is libcurl's, as in oncectl.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "bench.h"
#include "scrape.h"

#define SCRAPE_INTERVAL_NS 1000000000ull

struct scraper {
    pthread_t thread;
    atomic_bool stop;
    char url[96];
    char header[128];
    uint64_t made, failed, last_bytes; /* read after the join */
};

static size_t count_bytes(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    *(uint64_t *)arg += size * n;
    return size * n;
}

static void *scrape_main(void *arg)
{
    scraper *s = arg;
    struct curl_slist *headers = curl_slist_append(NULL, s->header);
    CURL *curl = curl_easy_init();
    uint64_t next = monotonic_ns();

    while (curl != NULL && headers != NULL && !atomic_load(&s->stop)) {
        uint64_t bytes = 0, now;
        long status = 0;

        curl_easy_reset(curl);
        curl_easy_setopt(curl, CURLOPT_URL, s->url);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, count_bytes);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &bytes);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, 5L);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        if (curl_easy_perform(curl) == CURLE_OK &&
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) ==
                CURLE_OK && status == 200) {
            s->made++;
            s->last_bytes = bytes;
        } else {
            s->failed++;
        }
        next += SCRAPE_INTERVAL_NS;
        /* Sleep to the next second in short steps, to stop promptly. */
        while (!atomic_load(&s->stop) && (now = monotonic_ns()) < next) {
            uint64_t left = next - now < 50000000u ? next - now : 50000000u;
            struct timespec ts = { 0, (long)left };

            nanosleep(&ts, NULL);
        }
    }
    curl_slist_free_all(headers);
    if (curl != NULL)
        curl_easy_cleanup(curl);
    return NULL;
}

int scraper_start(scraper **out, const bench_home *h)
{
    scraper *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (s == NULL)
        return -1;
    snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d/metrics",
             h->console_port);
    snprintf(s->header, sizeof(s->header), "Authorization: Bearer %s",
             h->console_token);
    atomic_init(&s->stop, false);
    curl_global_init(CURL_GLOBAL_NOTHING);
    if (pthread_create(&s->thread, NULL, scrape_main, s) != 0) {
        note("cannot start the console scraper");
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void scraper_stop(scraper *s, uint64_t *made, uint64_t *failed,
                  uint64_t *last_bytes)
{
    *made = *failed = *last_bytes = 0;
    if (s == NULL)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    *made = s->made;
    *failed = s->failed;
    *last_bytes = s->last_bytes;
    free(s);
    curl_global_cleanup();
}
