/*
 * gateway.h - once-gateway's modules and what they share.
 *
 * once-gateway is the daemon a department runs beside its own systems: it
 * holds the department's key and speaks REST/JSON to those systems and
 * CurveZMQ to the broker, through libonce. One module a file:
 *
 *   main.c       start-up, the configuration file, signals, shutdown
 *   tokens.c     the callers' bearer tokens (a 0600 file)
 *   pool.c       the pool of broker connections HTTP threads borrow
 *   dircache.c   the broker's signed directory, kept fresh
 *   state.c      Idempotency-Key state in LMDB (the signed envelopes)
 *   json_record.c  request bodies to records (the fuzzed parser)
 *   http.c       libmicrohttpd glue: bodies, auth, problems, metrics, log
 *   routes.c     the /v1 API itself
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

#include "once/once.h"

/* ---- configuration (main.c) ------------------------------------------ */

#define GATEWAY_MAX_ORIGIN 255
#define GATEWAY_DEFAULT_POOL 4
#define GATEWAY_MAX_POOL 256
#define GATEWAY_DEFAULT_TIMEOUT_MS 5000
#define GATEWAY_DEFAULT_MAX_BODY (2 * 1024 * 1024)
#define GATEWAY_DIRECTORY_REFRESH_MS 30000

typedef struct gateway_config {
    char config_path[PATH_MAX];
    char department[ONCE_MAX_NAME + 1];
    char key_path[PATH_MAX];
    char broker_endpoint[256];
    char broker_key_path[PATH_MAX];
    char log_origin[GATEWAY_MAX_ORIGIN + 1];   /* "" : proofs not checked */
    char listen_host[64];
    unsigned listen_port;
    char tokens_path[PATH_MAX];
    char tls_cert_path[PATH_MAX];
    char tls_key_path[PATH_MAX];
    char state_dir[PATH_MAX];
    unsigned pool_size;
    unsigned timeout_ms;
    size_t max_body;
} gateway_config;

/* ---- tokens (tokens.c) ------------------------------------------------ */

enum gateway_op {
    OP_PUBLISH = 1u << 0,
    OP_REVOKE = 1u << 1,
    OP_REQUEST = 1u << 2,
    OP_CATALOGUE = 1u << 3,
    OP_METRICS = 1u << 4
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
 * publish, revoke, request, catalogue, metrics (or *); # comments. The
 * file must be a regular file that group and others cannot read. */
int tokens_load(token_table *t, const char *path, once_error *err);
/* The entry whose token is presented, compared in constant time over all
 * entries; NULL when none. */
const token_entry *tokens_find(const token_table *t, const char *presented);
void tokens_free(token_table *t);

/* ---- the connection pool (pool.c) ------------------------------------- */

typedef struct pool pool;

int pool_open(pool **out, const gateway_config *cfg, const once_keypair *kp,
              const uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES],
              once_error *err);
/* Waits for a free connection. */
once_client *pool_borrow(pool *p);
/* Gives c back; broken (its last call timed out, so a late answer may
 * still arrive on it) makes the pool replace it with a new connection. */
void pool_return(pool *p, once_client *c, bool broken);
void pool_close(pool *p);

/* ---- the directory (dircache.c) --------------------------------------- */

typedef struct dircache dircache;

int dircache_open(dircache **out, pool *p, once_error *err);
void dircache_close(dircache *d);
/* The current directory, refreshed first when older than the refresh
 * interval or when force is set; released with dircache_release. NULL
 * with err when none could be had. */
const once_directory *dircache_get(dircache *d, bool force, once_error *err);
void dircache_release(dircache *d);
/* Milliseconds since the directory was last confirmed by the broker;
 * UINT64_MAX when never. */
uint64_t dircache_age_ms(dircache *d);

/* ---- idempotency state (state.c) -------------------------------------- */

typedef struct gw_state gw_state;

/* What is kept under one caller's Idempotency-Key. */
typedef struct idem_entry {
    uint8_t fingerprint[32];   /* SHA-256 of method, path and body */
    uint8_t *envelope;         /* the signed envelope, sent as is */
    size_t envelope_len;
    int status;                /* 0: no final answer yet */
    char *answer;              /* the JSON answered, when status != 0 */
    uint64_t version;          /* the record version in the envelope */
} idem_entry;

int state_open(gw_state **out, const char *dir, once_error *err);
void state_close(gw_state *s);
/* 0 with *e filled (free with idem_entry_clear), -ONCE_ERR_NOT_FOUND. */
int state_get(gw_state *s, const char *caller, const char *key,
              idem_entry *e, once_error *err);
/* Writes e under (caller, key) durably. */
int state_put(gw_state *s, const char *caller, const char *key,
              const idem_entry *e, once_error *err);
void idem_entry_clear(idem_entry *e);
/* Marks (caller, key) in use by a request of this process: false when
 * another request holds it. */
bool state_claim(gw_state *s, const char *caller, const char *key);
void state_unclaim(gw_state *s, const char *caller, const char *key);

/* ---- request bodies (json_record.c) ----------------------------------- */

#define GATEWAY_MAX_REASON 256

/* Parses a publish body {"fields": {...}, "version", "valid_from",
 * "valid_until"} into a new unsigned record of type and subject issued by
 * issuer; version 0 in the body's absence is replaced by default_version.
 * On a refusal where names the member at fault ("fields.name"). */
int json_publish_record(const char *body, size_t len, const char *type,
                        const char *subject, const char *issuer,
                        uint64_t default_version, once_record **out,
                        char *where, size_t where_cap, once_error *err);
/* Parses a revocation body {"reason", "version"} into a new unsigned
 * revocation; *reason gets a copy of the reason (free it). */
int json_revocation_record(const char *body, size_t len, const char *type,
                           const char *subject, const char *issuer,
                           uint64_t default_version, once_record **out,
                           char **reason, char *where, size_t where_cap,
                           once_error *err);

/* ---- the HTTP side (http.c, routes.c) --------------------------------- */

typedef struct gateway {
    gateway_config cfg;
    once_keypair key;            /* wiped at exit */
    uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES];
    token_table tokens;
    pool *pool;
    dircache *dir;
    gw_state *state;
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
 * gives its code. */
void http_once_problem(http_call *c, int rc, const once_error *err);
/* The HTTP status of a once error code (the table of openapi.yaml). */
int http_status_of(int code);

/* Routes one authenticated call (routes.c). */
void routes_dispatch(http_call *c);
/* The ops a route needs; 0 for the open ones. Sets c->route. */
unsigned routes_required_ops(http_call *c);

int http_start(gateway *gw, once_error *err);
/* Stops accepting, lets calls in flight finish (up to grace_ms), stops. */
void http_stop(unsigned grace_ms);
/* The port bound (for port 0 in the configuration). */
unsigned http_bound_port(void);

/* Metrics (http.c): rendered in the Prometheus text format. */
char *metrics_render(size_t *len);

/* The embedded openapi.yaml. */
extern const char gateway_openapi[];
extern const size_t gateway_openapi_len;

/* Log lines on stderr: "LEVEL gateway: message". Never a subject. */
void gw_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
