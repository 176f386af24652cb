/*
 * refusal_budget.h - how many refusals of each department the exchange
 * log takes: a token bucket per department. See refusal_budget.c.
 */
#ifndef ONCE_REFUSAL_BUDGET_H
#define ONCE_REFUSAL_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "once/once.h"

typedef struct refusal_budget refusal_budget;

/* A bucket of `burst` logged refusals per department, refilled evenly at
 * `burst` per window_seconds. burst 1 to 1000000, window_seconds 1 to
 * 86400. */
int refusal_budget_create(refusal_budget **out, unsigned burst,
                          unsigned window_seconds, once_error *err);
void refusal_budget_free(refusal_budget *b);

/* Whether a logged refusal with this code is charged to the budget: not
 * the broker's own failures (INTERNAL, STORAGE_FULL, UNAVAILABLE) nor the
 * answers read from the stored records to a department entitled to ask
 * (NOT_FOUND, STALE_VERSION). See refusal_budget.c. */
bool refusal_budget_counts(int code);

/* Asks to log a refusal with code of department at monotonic time now_ms.
 * True: log it (one unit was taken when the code counts). False: the
 * department is over its budget; the refusal is counted as not logged
 * (with a log line at most every 10 s per department), and *wait_ms says
 * when the next one could be logged. Safe from any thread. */
bool refusal_budget_take(refusal_budget *b, const char *department, int code,
                         uint64_t now_ms, uint64_t *wait_ms);

/* Refusals of department answered over its budget since the start. */
uint64_t refusal_budget_unlogged(refusal_budget *b, const char *department);

/* The settings, for messages. */
unsigned refusal_budget_burst(const refusal_budget *b);
unsigned refusal_budget_window_seconds(const refusal_budget *b);

#endif
