/*
 * console.c - the operator's console: listener, routing and access.
 *
 * Operators watch a broker through one HTTP listener, `console_listen` in
 * once.conf (default 127.0.0.1:7780; empty turns it off), served by
 * libmicrohttpd on ONE thread of its own (MHD_USE_INTERNAL_POLLING_THREAD,
 * no thread per connection). It serves:
 *
 *   /healthz, /readyz   200 "ok" or 503 and the reasons (console_api.c);
 *                       open, so load balancers and systemd can probe them
 *   /metrics            Prometheus text: metrics.c and kpi.c
 *   /api/v1/...         JSON (console_api.c)
 *   /                   the dashboard, one page built into the binary
 *
 * Read-only. Every path answers GET (and HEAD) only; nothing here writes
 * the database or changes the broker. Its reads are LMDB read
 * transactions, which never wait for the writer and never make it wait,
 * and the data path's counters (metrics.c) are atomics: a scrape, however
 * slow, does not slow an exchange. The KPI tables (kpi.c) are touched only
 * by this thread, because only one thread serves the console.
 *
 * Access. Everything but /healthz, /readyz and the dashboard page itself
 * needs `Authorization: Bearer TOKEN` with the token in HOME/console.token
 * (32 random bytes as 64 hex digits, mode 0600, written by `oncectl init`;
 * `oncectl console token` replaces it, and onced reads it at start). The
 * page holds no data: it asks the operator for the token once, keeps it in
 * the browser's localStorage and sends it with every request it makes. The
 * comparison is constant-time (console_input.c), so timing tells nothing
 * about the token. The file is opened with O_NOFOLLOW
 * and refused unless it is a regular file readable by its owner only; a
 * console without a usable token logs why and answers 401 to everything
 * but the health checks, while the broker itself runs on. A listen address
 * that cannot be bound, however, stops onced at start: an operator who
 * configured a console must not find out from a missing dashboard.
 *
 * Limits, since a console port is still an outside door: at most
 * CONNECTION_LIMIT connections, each closed after CONNECTION_TIMEOUT idle
 * seconds; request bodies are refused (405: nothing here takes one);
 * libmicrohttpd bounds request lines and headers by its per-connection
 * memory (MEMORY_LIMIT). Query arguments are parsed strictly by
 * console_api.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "console.h"
#include "console_dashboard.h"
#include "envelope.h"
#include "diag.h"

#define CONNECTION_LIMIT 64
#define CONNECTION_TIMEOUT 30
#define MEMORY_LIMIT (32 * 1024)
#define API_PREFIX "/api/v1/"

struct console {
    struct MHD_Daemon *daemon;
    console_state st;
    bool has_token;
    uint8_t token[CONSOLE_TOKEN_CHARS];
};

/* Reads HOME/console.token into c->token. False, with a log line saying
 * why, when there is no usable token. */
static bool load_token(console *c, const char *home)
{
    char path[PATH_MAX + 32], text[CONSOLE_TOKEN_CHARS + 2];
    struct stat st;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", home, CONSOLE_TOKEN_FILE);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        diag_warn("console", "no token (%s: %s): only /healthz and /readyz "
                 "are served; make one with 'oncectl console token' and "
                 "restart onced", path, strerror(errno));
        return false;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        (st.st_mode & 077) != 0 || st.st_uid != geteuid()) {
        close(fd);
        diag_error("console", "%s must be a regular file of this user with "
                  "mode 0600; only /healthz and /readyz are served", path);
        return false;
    }
    n = read(fd, text, sizeof(text));
    close(fd);
    if (n < 0 || !console_token_valid(text, (size_t)n)) {
        sodium_memzero(text, sizeof(text));
        diag_error("console", "%s does not hold a token (64 hex digits); "
                  "only /healthz and /readyz are served", path);
        return false;
    }
    memcpy(c->token, text, CONSOLE_TOKEN_CHARS);
    sodium_memzero(text, sizeof(text));
    return true;
}

static bool authorized(console *c, struct MHD_Connection *conn)
{
    return c->has_token &&
           console_bearer_ok(MHD_lookup_connection_value(
                                 conn, MHD_HEADER_KIND,
                                 MHD_HTTP_HEADER_AUTHORIZATION),
                             c->token);
}

void console_answer_text(console_answer *out, int status, const char *text)
{
    out->status = status;
    out->content_type = "text/plain; charset=utf-8";
    out->len = strlen(text);
    out->body = malloc(out->len + 1);
    if (out->body == NULL) {
        out->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        out->len = 0;
        return;
    }
    memcpy(out->body, text, out->len + 1);
}

static enum MHD_Result send_answer(struct MHD_Connection *conn,
                                   console_answer *a, bool page)
{
    struct MHD_Response *r;
    enum MHD_Result rc;

    if (a->body == NULL)
        r = MHD_create_response_from_buffer(0, (void *)"",
                                            MHD_RESPMEM_PERSISTENT);
    else
        r = MHD_create_response_from_buffer(a->len, a->body,
                                            MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(a->body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            a->content_type != NULL ? a->content_type
                                                    : "text/plain");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    if (page)
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'none'; script-src "
                                "'unsafe-inline'; style-src 'unsafe-inline'; "
                                "connect-src 'self'; img-src data:; "
                                "frame-ancestors 'none'");
    if (a->status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"once console\"");
    if (a->status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    rc = MHD_queue_response(conn, (unsigned)a->status, r);
    MHD_destroy_response(r);
    return rc;
}

static const char *query_arg(void *ctx, const char *key)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    console *c = cls;
    console_answer a = { 0, NULL, 0, NULL };
    bool page = false;

    (void)version;
    (void)upload_data;
    /* The first call only announces the request: answer on it, unless
     * a body follows, which nothing here takes. */
    if (*req_cls == NULL) {
        *req_cls = c;
        if (*upload_data_size == 0 &&
            (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0))
            goto route;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* discarded */
        return MHD_YES;
    }
    console_answer_text(&a, MHD_HTTP_METHOD_NOT_ALLOWED,
                        "the console is read-only: GET only\n");
    return send_answer(conn, &a, false);

route:
    if (strcmp(url, "/healthz") == 0) {
        console_health(&c->st, false, &a);
    } else if (strcmp(url, "/readyz") == 0) {
        console_health(&c->st, true, &a);
    } else if (strcmp(url, "/") == 0) {
        /* The page holds no data; what it fetches needs the token. */
        a.status = MHD_HTTP_OK;
        a.content_type = "text/html; charset=utf-8";
        a.len = console_dashboard_html_len;
        a.body = malloc(a.len);
        if (a.body == NULL)
            return MHD_NO;
        memcpy(a.body, console_dashboard_html, a.len);
        page = true;
    } else if (!authorized(c, conn)) {
        console_answer_text(&a, MHD_HTTP_UNAUTHORIZED,
                            c->has_token ? "a bearer token is required "
                            "(HOME/console.token)\n"
                            : "the console has no token: run 'oncectl "
                            "console token' and restart onced\n");
    } else if (strcmp(url, "/metrics") == 0) {
        console_metrics(&c->st, &a);
    } else if (strncmp(url, API_PREFIX, sizeof(API_PREFIX) - 1) == 0) {
        console_api_get(&c->st, url + sizeof(API_PREFIX) - 1, query_arg,
                        conn, &a);
    } else {
        console_answer_text(&a, MHD_HTTP_NOT_FOUND, "not found\n");
    }
    return send_answer(conn, &a, page);
}

int console_start(console **out, const console_options *opt, once_error *err)
{
    struct sockaddr_storage addr;
    socklen_t addr_len;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
    console *c;
    bool v6;
    int rc;

    *out = NULL;
    if (opt->cfg->console_listen[0] == '\0')
        return 0;
    if (config_console_address(opt->cfg->console_listen, &addr,
                               &addr_len) < 0)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "console_listen '%s' is not ADDRESS:PORT",
                              opt->cfg->console_listen);
    v6 = addr.ss_family == AF_INET6;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    c->st.cfg = opt->cfg;
    c->st.db = opt->db;
    c->st.log = opt->log;
    c->st.connections = opt->connections;
    c->st.started_ms = once_now_ms();
    if ((rc = kpi_init(&c->st.kpi, err)) < 0) {
        free(c);
        return rc;
    }
    c->has_token = load_token(c, opt->cfg->home);
    if (v6)
        flags |= MHD_USE_IPv6;
    c->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, c,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MEMORY_LIMIT,
        MHD_OPTION_END);
    if (c->daemon == NULL) {
        rc = once_error_set(err, ONCE_ERR_IO, "cannot serve the console on "
                            "%s (console_listen; empty turns it off): %s",
                            opt->cfg->console_listen, strerror(errno));
        console_stop(c);
        return rc;
    }
    diag_info("console", "serving on http://%s/%s", opt->cfg->console_listen,
             c->has_token ? "" : " (health checks only: no token)");
    *out = c;
    return 0;
}

void console_stop(console *c)
{
    if (c == NULL)
        return;
    if (c->daemon != NULL)
        MHD_stop_daemon(c->daemon);
    kpi_free(&c->st.kpi);
    sodium_memzero(c->token, sizeof(c->token));
    free(c);
}
