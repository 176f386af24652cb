/*
 * console.h - the operator's console: an HTTP listener on its own thread
 * serving /metrics, /healthz, /readyz, the JSON API and the dashboard.
 * Read-only. See console.c (listener, routing, access) and console_api.c
 * (the JSON answers and the health checks).
 */
#ifndef ONCE_CONSOLE_H
#define ONCE_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auditlog.h"
#include "config.h"
#include "conn_limit.h"
#include "console_input.h"
#include "kpi.h"
#include "store.h"

#define CONSOLE_TOKEN_FILE "console.token"

typedef struct console console;

typedef struct console_options {
    const broker_config *cfg;  /* console_listen, home, names, intervals */
    const store *db;
    const auditlog *log;
    conn_limit *connections;   /* who is connected now (conn_limit.c) */
} console_options;

/* Reads HOME/console.token, binds cfg->console_listen and starts the
 * thread. A missing or unsafe token file is logged and leaves only
 * /healthz and /readyz open; a listen address that cannot be bound is an
 * error. */
int console_start(console **out, const console_options *opt, once_error *err);
/* Stops the thread (closing its connections) and frees the console. */
void console_stop(console *c);

/* ---- shared by console.c and console_api.c (the console thread) ------ */

typedef struct console_state {
    const broker_config *cfg;
    const store *db;
    const auditlog *log;
    conn_limit *connections;
    kpi kpi;
    uint64_t started_ms;       /* Unix ms */
} console_state;

/* An answer: malloc'd body, its content type and HTTP status. */
typedef struct console_answer {
    int status;
    char *body;
    size_t len;
    const char *content_type;
} console_answer;

/* GET /api/v1/NAME with query arguments read through arg(ctx, key)
 * (NULL when absent). */
typedef const char *(*console_arg_fn)(void *ctx, const char *key);
void console_api_get(console_state *st, const char *name, console_arg_fn arg,
                     void *ctx, console_answer *out);
/* /healthz (ready false) or /readyz (ready true): 200 "ok" or 503 with
 * one reason a line. */
void console_health(console_state *st, bool ready, console_answer *out);
/* /metrics. */
void console_metrics(console_state *st, console_answer *out);

/* Text answers; body NULL and status 500 when out of memory. */
void console_answer_text(console_answer *out, int status, const char *text);

#endif
