/*
 * scrape.h - with --console, a Prometheus-like scraper of the broker's
 * console during the request phase. See scrape.c.
 */
#ifndef ONCE_TOOLS_BENCH_SCRAPE_H
#define ONCE_TOOLS_BENCH_SCRAPE_H

#include <stdint.h>

#include "home.h"

typedef struct scraper scraper;

/* Starts a thread that GETs /metrics from h's console, with its token,
 * once a second, as a Prometheus with scrape_interval 1s would. 0, or -1
 * noted. */
int scraper_start(scraper **out, const bench_home *h);
/* Stops it; scrapes made and failed, and the size of the last page. */
void scraper_stop(scraper *s, uint64_t *made, uint64_t *failed,
                  uint64_t *last_bytes);

#endif
