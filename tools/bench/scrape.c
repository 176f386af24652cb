/*
 * scrape.c - once-bench --console: the console on and scraped every second
 * while the requests run, to measure what watching the broker costs it.
 *
 * The question the console must answer well is "does monitoring slow the
 * exchange down?". The answer is measured, not argued: with --console the
 * broker home gets a console on a free loopback port and a token, and
 * during the request phase this thread fetches /metrics with the token
 * once a second, like a Prometheus with scrape_interval 1s, and every
 * other second what an open dashboard fetches on each redraw (/readyz and
 * the status, kpis, departments and exchanges APIs, dashboard.html). Each
 * answer also brings the console's KPIs up to date from the log. Comparing
 * the requests/s of runs with and without --console
 * (tools/bench/console-overhead.sh alternates them) gives the console's
 * cost; on a machine shared with other work, the console thread's own CPU
 * (console_thread_cpu_seconds, reported as console_cpu_cores) says the
 * same more steadily. HTTP is libcurl's, as in oncectl.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dirent.h>

#include <curl/curl.h>

#include "bench.h"
#include "scrape.h"

#define SCRAPE_INTERVAL_NS 1000000000ull
#define DASHBOARD_EVERY 2     /* scrapes: the dashboard redraws every 2 s */
/* The thread libmicrohttpd names for its one polling thread (console.c). */
#define CONSOLE_THREAD "MHD-single"

/* What the dashboard fetches on each redraw (dashboard.html, refresh()). */
static const char *const dashboard_paths[] = {
    "/api/v1/status", "/api/v1/kpis", "/api/v1/departments",
    "/api/v1/exchanges?limit=15", "/readyz",
};

struct scraper {
    pthread_t thread;
    atomic_bool stop;
    char base[64];            /* http://127.0.0.1:PORT */
    char header[128];
    uint64_t made, failed, last_bytes; /* read after the join */
};

static size_t count_bytes(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    *(uint64_t *)arg += size * n;
    return size * n;
}

/* One GET of base+path with the token; true when answered 200. */
static bool fetch(scraper *s, CURL *curl, struct curl_slist *headers,
                  const char *path, uint64_t *bytes)
{
    char url[160];
    long status = 0;

    snprintf(url, sizeof(url), "%s%s", s->base, path);
    *bytes = 0;
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, count_bytes);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, bytes);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    return curl_easy_perform(curl) == CURLE_OK &&
           curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) ==
               CURLE_OK && status == 200;
}

static void *scrape_main(void *arg)
{
    scraper *s = arg;
    struct curl_slist *headers = curl_slist_append(NULL, s->header);
    CURL *curl = curl_easy_init();
    uint64_t next = monotonic_ns(), round = 0;
    size_t i;

    while (curl != NULL && headers != NULL && !atomic_load(&s->stop)) {
        uint64_t bytes = 0, ignored, now;

        if (fetch(s, curl, headers, "/metrics", &bytes)) {
            s->made++;
            s->last_bytes = bytes;
        } else {
            s->failed++;
        }
        if (round++ % DASHBOARD_EVERY == 0)
            for (i = 0; i < sizeof(dashboard_paths) / sizeof(*dashboard_paths);
                 i++)
                if (!fetch(s, curl, headers, dashboard_paths[i], &ignored))
                    s->failed++;
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

/* The thread's time on a CPU, in ns, from schedstat: /proc's stat counts
 * clock ticks (10 ms), too coarse for a thread that runs a few ms a
 * second. */
static double thread_cpu_seconds(pid_t pid, const char *tid)
{
    char path[320];
    unsigned long long ns;
    FILE *f;
    int n;

    snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", (int)pid, tid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fscanf(f, "%llu", &ns);
    fclose(f);
    return n == 1 ? (double)ns / 1e9 : -1;
}

double console_thread_cpu_seconds(pid_t pid)
{
    char path[320], comm[32];
    struct dirent *e;
    double cpu = -1;
    DIR *dir;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    if ((dir = opendir(path)) == NULL)
        return -1;
    while (cpu < 0 && (e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)pid,
                 e->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        if (fgets(comm, sizeof(comm), f) != NULL &&
            strncmp(comm, CONSOLE_THREAD "\n", sizeof(CONSOLE_THREAD)) == 0)
            cpu = thread_cpu_seconds(pid, e->d_name);
        fclose(f);
    }
    closedir(dir);
    return cpu;
}

int scraper_start(scraper **out, const bench_home *h)
{
    scraper *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (s == NULL)
        return -1;
    snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d",
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
