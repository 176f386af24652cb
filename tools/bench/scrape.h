/*
 * scrape.h - with --console, a Prometheus-like scraper of the broker's
 * console during the request phase. See scrape.c.
 */
#ifndef ONCE_TOOLS_BENCH_SCRAPE_H
#define ONCE_TOOLS_BENCH_SCRAPE_H

#include <stdint.h>
#include <sys/types.h>

#include "home.h"

typedef struct scraper scraper;

/* Starts a thread that GETs /metrics from h's console, with its token,
 * once a second, as a Prometheus with scrape_interval 1s would, and every
 * other second what an open dashboard fetches. 0, or -1 noted. */
int scraper_start(scraper **out, const bench_home *h);
/* Stops it; scrapes made and failed, and the size of the last page. */
void scraper_stop(scraper *s, uint64_t *made, uint64_t *failed,
                  uint64_t *last_bytes);

/* The CPU seconds onced's console thread (pid's thread named MHD-single)
 * has used; -1 when there is none. */
double console_thread_cpu_seconds(pid_t pid);

#endif
