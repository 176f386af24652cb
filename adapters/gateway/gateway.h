/*
 * gateway.h - once-gateway's modules and what they share.
 *
 * once-gateway is the daemon a department runs beside its own systems: it
 * holds the department's key and speaks REST/JSON to those systems and
 * CurveZMQ to the broker, through libonce. One module a file:
 *
 *   main.c       start-up, the configuration file, signals, shutdown
 *   tokens.c     the callers' bearer tokens (a 0600 file)
 *   http.c       libmicrohttpd glue: bodies, auth, problems, metrics, log
 *   routes.c     the /v1 API itself
 *   notices.c    subscriptions and the long poll of notices
 *   sub_path.c   a subscription's path (fuzzed)
 *   webhook.c    notices POSTed, signed, to the department's URL
 *
 * and, shared with once-spool, adapters/common/ (common.h): the pool of
 * broker connections HTTP threads borrow, the directory cache, the
 * Idempotency-Key state in LMDB, request bodies to records, answers as
 * JSON, the configuration keys both have, log lines.
 *
 * The API is specified in openapi.yaml (embedded as gateway_openapi).
 */
#ifndef ONCE_GATEWAY_H
#define ONCE_GATEWAY_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common.h"
#include "once/once.h"

/* ---- configuration (main.c) ------------------------------------------ */

#define GATEWAY_DEFAULT_POOL 4
#define GATEWAY_MAX_POOL 256
/* Record requests (GET) are pipelined on request_lanes connections of
 * their own (lanes.c); 0 sends them on the pool's, one at a time. */
#define GATEWAY_DEFAULT_LANES 1
#define GATEWAY_MAX_LANES 16
#define GATEWAY_DEFAULT_TIMEOUT_MS 5000
#define GATEWAY_DEFAULT_MAX_BODY (2 * 1024 * 1024)

typedef struct gateway_config {
    adapter_config base;         /* department, key, broker, state */
    char listen_host[64];
    unsigned listen_port;
    char tokens_path[PATH_MAX];
    char tls_cert_path[PATH_MAX];
    char tls_key_path[PATH_MAX];
    unsigned pool_size;
    unsigned request_lanes;
    size_t max_body;
    char webhook_url[1024];      /* notice_webhook; "" : none */
    char webhook_secret_path[PATH_MAX];
    unsigned webhook_attempts;   /* before a notice is put aside */
    unsigned webhook_backoff_ms; /* the first retry's delay, doubling */
} gateway_config;

/* ---- tokens (tokens.c) ------------------------------------------------ */

enum gateway_op {
    OP_PUBLISH = 1u << 0,
    OP_REVOKE = 1u << 1,
    OP_REQUEST = 1u << 2,
    OP_CATALOGUE = 1u << 3,
    OP_METRICS = 1u << 4,
    OP_NOTICES = 1u << 5         /* subscriptions and the long poll */
};

typedef struct token_entry {
    uint8_t hash[32];           /* SHA-256 of the token */
    char caller[ONCE_MAX_NAME + 1];
    unsigned ops;
} token_entry;

typedef struct token_table {
    token_entry *entries;
    size_t count;
} token_table;

/* Reads the tokens file: lines "TOKEN CALLER OPS", OPS a comma list of
 * publish, revoke, request, catalogue, metrics, notices (or *); #
 * comments. The
 * file must be a regular file that group and others cannot read. */
int tokens_load(token_table *t, const char *path, once_error *err);
/* The entry whose token is presented, compared in constant time over all
 * entries; NULL when none. */
const token_entry *tokens_find(const token_table *t, const char *presented);
void tokens_free(token_table *t);

/* ---- the HTTP side (http.c, routes.c) --------------------------------- */

typedef struct gateway {
    gateway_config cfg;
    adapter_core core;           /* key, broker key, state, pool, directory */
    lanes *lanes;                /* the record requests; NULL: the pool */
    token_table tokens;
    _Atomic uint64_t last_version;   /* default versions only grow */
} gateway;

/* One HTTP exchange as the routes see it. */
typedef struct http_call {
    gateway *gw;
    const char *method;
    const char *path;            /* unescaped, without the query */
    const char *body;
    size_t body_len;
    const token_entry *caller;   /* NULL for unauthenticated routes */
    void *connection;            /* struct MHD_Connection */
    const char *route;           /* metrics label, set by the router */
    /* The answer. */
    int status;
    char *content_type;          /* static string */
    char *response;              /* malloc'd */
    size_t response_len;
    char code[40];               /* problem code, "" on success */
    char retry_after[16];
    char location[512];
} http_call;

/* A query or header value of the call, NULL when absent. */
const char *http_query(http_call *c, const char *name);
const char *http_header(http_call *c, const char *name);

/* Answers with a JSON document (taken) and status. */
void http_json(http_call *c, int status, json_t *doc);
/* Answers with an RFC 9457 problem: code is the stable name (a once error
 * name, or one of the gateway's own), detail a sentence for people. */
void http_problem(http_call *c, int status, const char *code,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Answers a libonce failure (-code, err) with the status the OpenAPI table
 * gives its code (adapter_http_status). */
void http_once_problem(http_call *c, int rc, const once_error *err);

/* Routes one authenticated call (routes.c). */
void routes_dispatch(http_call *c);
/* The ops a route needs; 0 for the open ones. Sets c->route. */
unsigned routes_required_ops(http_call *c);

int http_start(gateway *gw, once_error *err);
/* Stops accepting, lets calls in flight finish (up to grace_ms), stops. */
void http_stop(unsigned grace_ms);
/* The port bound (for port 0 in the configuration). */
unsigned http_bound_port(void);

/* Subscriptions and notices (notices.c). The watcher of pushes, with a
 * connection of its own: 0 or -code. */
#define GATEWAY_MAX_NOTICE_WAIT_S 30
#define GATEWAY_MAX_NOTICES 64
int notices_start(gateway *gw, once_error *err);
/* What a subscription's path names (sub_path.c): 0, or -1 when it is not
 * one of notices.c's subscription paths. */
typedef struct sub_path {
    once_subscription_scope scope;
    char type[ONCE_MAX_NAME + 1];
    char subject[ONCE_MAX_SUBJECT + 1];   /* "" unless ONCE_SCOPE_SUBJECT */
} sub_path;
int sub_path_parse(const char *path, sub_path *out);
/* Stops the watcher and wakes every long poll (they answer at once). */
void notices_stop(void);
/* 1 when c is one of notices.c's routes (c->route set), else 0. */
int notices_route(http_call *c);
void notices_dispatch(http_call *c);

/* Webhooks (webhook.c): when notice_webhook is set, the thread that POSTs
 * the department's notices there. 0 or -code. */
int webhook_start(gateway *gw, once_error *err);
void webhook_stop(void);
void webhook_metrics(uint64_t *delivered, uint64_t *failed, uint64_t *dead,
                     uint64_t *pending);

/* Metrics (http.c): rendered in the Prometheus text format. */
char *metrics_render(size_t *len);

/* The embedded openapi.yaml. */
extern const char gateway_openapi[];
extern const size_t gateway_openapi_len;

#endif
