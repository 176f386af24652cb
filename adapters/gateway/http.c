/*
 * http.c - the gateway's HTTP side, on libmicrohttpd: bodies, callers,
 * problems, metrics and the access log. What each route does is routes.c.
 *
 * Threads. libmicrohttpd runs one thread per connection: a route blocks
 * for the broker's answer (a pooled once_client, pool.c), so a slow call
 * holds only its own connection. Connections are capped
 * (HTTP_MAX_CONNECTIONS) and idle ones closed after HTTP_IDLE_SECONDS.
 *
 * Bodies. A PUT or POST body is read into memory up to max_body bytes; a
 * Content-Length above it is answered 413 before the body is read, and a
 * chunked body that grows past it is dropped and answered 413 at its end.
 * PUT and POST must be application/json (415 otherwise), but for the
 * routes that read no body (notices.c's: the path or query says it all).
 *
 * Callers. Every route but /v1/health and /v1/openapi.yaml needs
 * "Authorization: Bearer TOKEN" with a token of the tokens file (tokens.c)
 * allowed the route's operation: 401 without a known token, 403 without
 * the operation. The access log line names the caller, the route, the
 * status and the problem code, never the path: it holds the subject.
 *
 * Problems. Every refusal is application/problem+json (RFC 9457) with a
 * `code` member: a once error name (adapter_http_status gives its status,
 * the table of openapi.yaml) or one of the gateway's own names for refusals of
 * HTTP itself (UNAUTHORIZED, FORBIDDEN, NO_ROUTE, METHOD_NOT_ALLOWED,
 * UNSUPPORTED_MEDIA_TYPE, IDEMPOTENCY_CONFLICT).
 *
 * Metrics. Counters per route and status and a latency histogram per
 * route, atomics written by the connection threads, read by /metrics;
 * beside them the directory's age and its refreshes tried and failed
 * (dircache.c counts them: the back-off after a failure shows as attempts
 * that stop growing while requests go on).
 *
 * Shutdown. http_stop stops accepting connections, waits until the calls
 * in flight have been answered and only then stops the daemon.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "gateway.h"
#include "monotonic.h"

#define HTTP_MAX_CONNECTIONS 512
#define HTTP_IDLE_SECONDS 60
#define HTTP_MAX_PEM (64 * 1024)

/* ---- metrics ---------------------------------------------------------- */

static const char *const route_names[] = {
    "publish", "revoke", "request", "catalogue", "health", "openapi",
    "metrics", "subscriptions", "notices", "notice_ack", "unmatched",
};
#define ROUTE_COUNT (sizeof(route_names) / sizeof(route_names[0]))
#define STATUS_SLOTS 600
static const double bucket_bounds[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
#define BUCKETS (sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))

static struct {
    _Atomic uint64_t by_status[ROUTE_COUNT][STATUS_SLOTS];
    _Atomic uint64_t buckets[ROUTE_COUNT][BUCKETS];
    _Atomic uint64_t count[ROUTE_COUNT];
    _Atomic uint64_t micros[ROUTE_COUNT];
} metrics;

static size_t route_index(const char *route)
{
    size_t i;

    for (i = 0; route != NULL && i < ROUTE_COUNT - 1; i++)
        if (strcmp(route_names[i], route) == 0)
            return i;
    return ROUTE_COUNT - 1;
}

static void metrics_observe(const char *route, int status, double seconds)
{
    size_t r = route_index(route), b;

    if (status > 0 && status < STATUS_SLOTS)
        atomic_fetch_add(&metrics.by_status[r][status], 1);
    for (b = 0; b < BUCKETS; b++)
        if (seconds <= bucket_bounds[b])
            atomic_fetch_add(&metrics.buckets[r][b], 1);
    atomic_fetch_add(&metrics.count[r], 1);
    atomic_fetch_add(&metrics.micros[r], (uint64_t)(seconds * 1e6));
}

static gateway *the_gateway;
static struct MHD_Daemon *daemon_handle;
static _Atomic int in_flight;
static char tls_cert[HTTP_MAX_PEM + 1], tls_key[HTTP_MAX_PEM + 1];

char *metrics_render(size_t *len)
{
    size_t cap = 64 * 1024, used = 0, r, b;
    uint64_t age = the_gateway != NULL ? dircache_age_ms(the_gateway->core.dir)
                                       : UINT64_MAX;
    uint64_t attempts = 0, failures = 0;
    char *out = malloc(cap);
    uint64_t wd, wf, wdead, wpend;
    int s, n;

#define EMIT(...)                                                         \
    do {                                                                  \
        n = snprintf(out + used, cap - used, __VA_ARGS__);                \
        if (n < 0 || (size_t)n >= cap - used) {                           \
            char *grown = realloc(out, cap * 2);                          \
            if (grown == NULL) {                                          \
                free(out);                                                \
                return NULL;                                              \
            }                                                             \
            out = grown;                                                  \
            cap *= 2;                                                     \
            n = snprintf(out + used, cap - used, __VA_ARGS__);            \
        }                                                                 \
        used += (size_t)n;                                                \
    } while (0)

    if (out == NULL)
        return NULL;
    EMIT("# HELP once_gateway_requests_total HTTP requests answered, by "
         "route and status.\n# TYPE once_gateway_requests_total counter\n");
    for (r = 0; r < ROUTE_COUNT; r++)
        for (s = 100; s < STATUS_SLOTS; s++) {
            uint64_t v = atomic_load(&metrics.by_status[r][s]);

            if (v != 0)
                EMIT("once_gateway_requests_total{route=\"%s\",status="
                     "\"%d\"} %llu\n", route_names[r], s,
                     (unsigned long long)v);
        }
    EMIT("# HELP once_gateway_request_duration_seconds Time from a "
         "request's headers to its answer.\n"
         "# TYPE once_gateway_request_duration_seconds histogram\n");
    for (r = 0; r < ROUTE_COUNT; r++) {
        uint64_t count = atomic_load(&metrics.count[r]);

        if (count == 0)
            continue;
        for (b = 0; b < BUCKETS; b++)
            EMIT("once_gateway_request_duration_seconds_bucket{route=\"%s\","
                 "le=\"%g\"} %llu\n", route_names[r], bucket_bounds[b],
                 (unsigned long long)atomic_load(&metrics.buckets[r][b]));
        EMIT("once_gateway_request_duration_seconds_bucket{route=\"%s\","
             "le=\"+Inf\"} %llu\n", route_names[r],
             (unsigned long long)count);
        EMIT("once_gateway_request_duration_seconds_sum{route=\"%s\"} "
             "%.6f\n", route_names[r],
             (double)atomic_load(&metrics.micros[r]) / 1e6);
        EMIT("once_gateway_request_duration_seconds_count{route=\"%s\"} "
             "%llu\n", route_names[r], (unsigned long long)count);
    }
    EMIT("# HELP once_gateway_in_flight Requests being answered.\n"
         "# TYPE once_gateway_in_flight gauge\nonce_gateway_in_flight %d\n",
         atomic_load(&in_flight));
    webhook_metrics(&wd, &wf, &wdead, &wpend);
    EMIT("# HELP once_gateway_webhook_deliveries_total Notices POSTed to "
         "notice_webhook, by result.\n"
         "# TYPE once_gateway_webhook_deliveries_total counter\n"
         "once_gateway_webhook_deliveries_total{result=\"delivered\"} %llu\n"
         "once_gateway_webhook_deliveries_total{result=\"failed\"} %llu\n"
         "# HELP once_gateway_webhook_pending Notices taken from the broker "
         "and not yet delivered or put aside.\n"
         "# TYPE once_gateway_webhook_pending gauge\n"
         "once_gateway_webhook_pending %llu\n"
         "# HELP once_gateway_webhook_dead_letters_total Notices put aside "
         "after the last attempt.\n"
         "# TYPE once_gateway_webhook_dead_letters_total counter\n"
         "once_gateway_webhook_dead_letters_total %llu\n",
         (unsigned long long)wd, (unsigned long long)wf,
         (unsigned long long)wpend, (unsigned long long)wdead);
    if (age != UINT64_MAX)
        EMIT("# HELP once_gateway_directory_age_seconds Time since the "
             "broker last confirmed the directory.\n"
             "# TYPE once_gateway_directory_age_seconds gauge\n"
             "once_gateway_directory_age_seconds %.3f\n",
             (double)age / 1000.0);
    if (the_gateway != NULL)
        dircache_counts(the_gateway->core.dir, &attempts, &failures);
    EMIT("# HELP once_gateway_directory_refreshes_total Directory refreshes "
         "tried, by result.\n"
         "# TYPE once_gateway_directory_refreshes_total counter\n"
         "once_gateway_directory_refreshes_total{result=\"ok\"} %llu\n"
         "once_gateway_directory_refreshes_total{result=\"failed\"} %llu\n",
         (unsigned long long)(attempts - failures),
         (unsigned long long)failures);
#undef EMIT
    *len = used;
    return out;
}

/* ---- answers ---------------------------------------------------------- */

void http_json(http_call *c, int status, json_t *doc)
{
    free(c->response);
    c->response = doc != NULL
        ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(6))
        : NULL;
    json_decref(doc);
    if (c->response == NULL) {
        c->status = 500;
        snprintf(c->code, sizeof(c->code), "NO_MEMORY");
        c->content_type = "text/plain";
        return;
    }
    c->response_len = strlen(c->response);
    c->status = status;
    c->content_type = "application/json";
}

void http_problem(http_call *c, int status, const char *code,
                  const char *fmt, ...)
{
    char detail[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    http_json(c, status, adapter_problem_json(status, code, detail));
    if (c->status == status) {
        c->content_type = "application/problem+json";
        snprintf(c->code, sizeof(c->code), "%s", code);
    }
}

void http_once_problem(http_call *c, int rc, const once_error *err)
{
    int status = adapter_http_status(rc);

    http_problem(c, status, once_error_name(rc), "%s",
                 err != NULL ? err->message : "");
    if (status == 503)
        snprintf(c->retry_after, sizeof(c->retry_after), "5");
}

/* ---- requests --------------------------------------------------------- */

typedef struct connection_state {
    char *body;
    size_t len, cap;
    bool too_large;
    uint64_t started_ns; /* monotonic_ns() when the request began */
} connection_state;

const char *http_query(http_call *c, const char *name)
{
    return MHD_lookup_connection_value(c->connection, MHD_GET_ARGUMENT_KIND,
                                       name);
}

const char *http_header(http_call *c, const char *name)
{
    return MHD_lookup_connection_value(c->connection, MHD_HEADER_KIND, name);
}

static bool body_method(const char *method)
{
    return strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0;
}

static bool is_json(const char *content_type)
{
    size_t n = strlen("application/json");

    return content_type != NULL &&
           strncasecmp(content_type, "application/json", n) == 0 &&
           (content_type[n] == '\0' || content_type[n] == ';' ||
            content_type[n] == ' ');
}

/* Authenticates, checks the body's framing, and routes. */
static void serve(http_call *c, connection_state *st)
{
    unsigned ops = routes_required_ops(c);
    const char *auth;

    if (ops != 0) {
        auth = http_header(c, MHD_HTTP_HEADER_AUTHORIZATION);
        if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0 ||
            (c->caller = tokens_find(&c->gw->tokens, auth + 7)) == NULL) {
            http_problem(c, 401, "UNAUTHORIZED", "this route needs "
                         "Authorization: Bearer with a token of the "
                         "gateway's tokens file");
            return;
        }
        if ((c->caller->ops & ops) == 0) {
            http_problem(c, 403, "FORBIDDEN", "caller %s may not use %s",
                         c->caller->caller, c->route);
            return;
        }
    }
    /* PUT of a subscription has no body: its path says it all; nor has
     * POST /v1/notices/ack (its query does). */
    if (body_method(c->method) && strcmp(c->route, "subscriptions") != 0 &&
        strcmp(c->route, "notice_ack") != 0) {
        if (st->too_large) {
            http_problem(c, 413, "TOO_LARGE", "the body is over %zu bytes",
                         c->gw->cfg.max_body);
            return;
        }
        if (!is_json(http_header(c, MHD_HTTP_HEADER_CONTENT_TYPE))) {
            http_problem(c, 415, "UNSUPPORTED_MEDIA_TYPE", "the body must "
                         "be application/json");
            return;
        }
    }
    routes_dispatch(c);
}

static enum MHD_Result send_answer(struct MHD_Connection *conn, http_call *c)
{
    struct MHD_Response *r;
    enum MHD_Result ok;

    r = MHD_create_response_from_buffer(c->response_len,
                                        c->response != NULL ? c->response
                                                            : (char *)"",
                                        MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            c->content_type != NULL ? c->content_type
                                                    : "text/plain");
    /* Answers may hold personal data: no cache keeps them. */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (c->retry_after[0] != '\0')
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER,
                                c->retry_after);
    if (c->location[0] != '\0')
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, c->location);
    ok = MHD_queue_response(conn, (unsigned)c->status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    gateway *gw = cls;
    connection_state *st = *con_cls;
    http_call c;
    enum MHD_Result ok;
    double seconds;

    (void)version;
    if (st == NULL) {
        const char *length;

        st = calloc(1, sizeof(*st));
        if (st == NULL)
            return MHD_NO;
        st->started_ns = monotonic_ns();
        atomic_fetch_add(&in_flight, 1);
        *con_cls = st;
        length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length != NULL && strtoull(length, NULL, 10) > gw->cfg.max_body)
            st->too_large = true;
        if (!st->too_large)
            return MHD_YES;
        /* Answered below without reading the body. */
    } else if (*upload_data_size != 0) {
        size_t n = *upload_data_size;

        *upload_data_size = 0;
        if (st->too_large || st->len + n > gw->cfg.max_body) {
            st->too_large = true;
            free(st->body);
            st->body = NULL;
            st->len = st->cap = 0;
            return MHD_YES;
        }
        if (st->len + n + 1 > st->cap) {
            size_t cap = st->cap == 0 ? 4096 : st->cap;
            char *grown;

            while (cap < st->len + n + 1)
                cap *= 2;
            grown = realloc(st->body, cap);
            if (grown == NULL)
                return MHD_NO;
            st->body = grown;
            st->cap = cap;
        }
        memcpy(st->body + st->len, upload_data, n);
        st->len += n;
        st->body[st->len] = '\0';
        return MHD_YES;
    }

    memset(&c, 0, sizeof(c));
    c.gw = gw;
    c.method = method;
    c.path = url;
    c.body = st->body != NULL ? st->body : "";
    c.body_len = st->len;
    c.connection = conn;
    serve(&c, st);
    ok = send_answer(conn, &c);
    seconds = (double)(monotonic_ns() - st->started_ns) / 1e9;
    metrics_observe(c.route, c.status, seconds);
    adapter_log("info", "access caller=%s method=%s route=%s status=%d "
                "code=%s ms=%.1f", c.caller != NULL ? c.caller->caller : "-",
                method, c.route != NULL ? c.route : "unmatched", c.status,
                c.code[0] != '\0' ? c.code : "-", seconds * 1000.0);
    free(c.response);
    return ok;
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe)
{
    connection_state *st = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (st == NULL)
        return;
    free(st->body);
    free(st);
    *con_cls = NULL;
    atomic_fetch_sub(&in_flight, 1);
}

/* ---- start and stop ---------------------------------------------------- */

static int read_pem(const char *path, char *out, once_error *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t n;
    size_t used = 0;

    if (fd < 0)
        return once_error_set(err, ONCE_ERR_IO, "cannot open %s: %s", path,
                              strerror(errno));
    while ((n = read(fd, out + used, HTTP_MAX_PEM - used)) > 0)
        used += (size_t)n;
    close(fd);
    if (n < 0 || used == HTTP_MAX_PEM)
        return once_error_set(err, ONCE_ERR_IO, "cannot read %s (or over "
                              "%d bytes)", path, HTTP_MAX_PEM);
    out[used] = '\0';
    return 0;
}

int http_start(gateway *gw, once_error *err)
{
    struct sockaddr_storage addr;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    bool tls = gw->cfg.tls_cert_path[0] != '\0';
    bool loopback;
    int rc;

    memset(&addr, 0, sizeof(addr));
    if (inet_pton(AF_INET, gw->cfg.listen_host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)gw->cfg.listen_port);
        loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    } else if (inet_pton(AF_INET6, gw->cfg.listen_host, &v6->sin6_addr) ==
               1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)gw->cfg.listen_port);
        loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
        flags |= MHD_USE_IPv6;
    } else {
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "listen: %s "
                              "is not a numeric IPv4 or IPv6 address",
                              gw->cfg.listen_host);
    }
    if (!loopback && !tls)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "refusing to "
                              "listen on %s without TLS: set "
                              "tls_certificate and tls_key, or listen on a "
                              "loopback address", gw->cfg.listen_host);
    if (tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
            return once_error_set(err, ONCE_ERR_UNSUPPORTED, "this "
                                  "libmicrohttpd has no TLS support");
        if ((rc = read_pem(gw->cfg.tls_cert_path, tls_cert, err)) < 0 ||
            (rc = read_pem(gw->cfg.tls_key_path, tls_key, err)) < 0)
            return rc;
        flags |= MHD_USE_TLS;
    }
    the_gateway = gw;
    daemon_handle = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, gw,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_SECONDS,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        /* Without TLS the list ends here and the rest is not read. */
        tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, tls_cert,
        MHD_OPTION_HTTPS_MEM_KEY, tls_key, MHD_OPTION_END);
    /* GnuTLS has parsed the key into its own credentials while the daemon
     * started: the PEM text of the secret is not needed again. */
    sodium_memzero(tls_key, sizeof(tls_key));
    if (daemon_handle == NULL)
        return once_error_set(err, ONCE_ERR_IO, "cannot listen on %s port "
                              "%u (in use, or TLS files not usable)",
                              gw->cfg.listen_host, gw->cfg.listen_port);
    return 0;
}

unsigned http_bound_port(void)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(daemon_handle, MHD_DAEMON_INFO_BIND_PORT);

    return info != NULL ? info->port : 0;
}

void http_stop(unsigned grace_ms)
{
    struct timespec pause = { 0, 10 * 1000 * 1000 };
    unsigned waited = 0;
    MHD_socket listener;

    if (daemon_handle == NULL)
        return;
    listener = MHD_quiesce_daemon(daemon_handle);
    if (listener != MHD_INVALID_SOCKET)
        close(listener);
    while (atomic_load(&in_flight) > 0 && waited < grace_ms) {
        nanosleep(&pause, NULL);
        waited += 10;
    }
    if (atomic_load(&in_flight) > 0)
        adapter_log("warn", "%d call(s) still in flight after %u ms; stopping",
                    atomic_load(&in_flight), grace_ms);
    MHD_stop_daemon(daemon_handle);
    daemon_handle = NULL;
}
