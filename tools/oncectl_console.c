/*
 * oncectl_console.c - oncectl's commands for the operator's console.
 *
 *   oncectl init            also writes HOME/console.token (through
 *                           oncectl_console_token_write)
 *   oncectl console token   replaces the token; onced reads it at start
 *   oncectl status          one screen: health, log head, map, exchanges,
 *                           KPIs, refusals, departments
 *   oncectl top             the same screen, redrawn every two seconds,
 *                           until q
 *
 * The token is 32 random bytes as 64 hex digits, mode 0600. A new home's
 * is created with O_CREAT|O_EXCL|O_NOFOLLOW (file_create_new), so a file or
 * link planted in its place is refused rather than followed; a replacement
 * is written beside it and renamed over it (file_write_atomic, in the home
 * opened without following a link), so onced, a browser or Prometheus
 * never reads half a token.
 *
 * status and top read the console API of the running onced
 * (console_listen in HOME/once.conf, with the token from HOME), not the
 * database: they show what the broker itself reports (its health, its
 * rates and latency, which only the running process knows), and they work
 * on a machine that can reach the console but not the broker's disk. HTTP
 * is libcurl's and JSON jansson's; answers are bounded (MAX_ANSWER) and a
 * field missing from an answer prints as "-".
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "config.h"
#include "file_io.h"
#include "oncectl_console.h"

#define EXIT_FAILED 1
#define TOKEN_FILE "console.token"
#define TOKEN_BYTES 32
#define TOKEN_CHARS (2 * TOKEN_BYTES)
#define MAX_ANSWER (8u << 20)
#define HTTP_TIMEOUT_S 5L
#define TOP_DEPARTMENTS 12

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;

    fputs("oncectl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- the token ---------------------------------------------------------- */

int oncectl_console_token_write(const char *home, bool replace)
{
    uint8_t raw[TOKEN_BYTES];
    char text[TOKEN_CHARS + 2], path[PATH_MAX];
    once_error err;
    int dir, rc;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", home, TOKEN_FILE) >=
        sizeof(path)) {
        say("path %s/%s is too long", home, TOKEN_FILE);
        return -1;
    }
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(text, sizeof(text), raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
    text[TOKEN_CHARS] = '\n';
    if (!replace) {
        rc = file_create_new(path, text, TOKEN_CHARS + 1, 0600);
        if (rc < 0)
            say("cannot create %s: %s", path, strerror(-rc));
    } else if ((dir = file_dir_open(AT_FDCWD, home, 0, 0700, 0, NULL,
                                    &err)) < 0) {
        rc = dir;
        say("%s", err.message);
    } else {
        rc = file_write_atomic(dir, TOKEN_FILE, text, TOKEN_CHARS + 1, 0600,
                               1, home, &err);
        close(dir);
        if (rc < 0)
            say("%s", err.message);
    }
    sodium_memzero(text, sizeof(text));
    return rc < 0 ? -1 : 0;
}

int oncectl_console_token(const char *home)
{
    if (oncectl_console_token_write(home, true) < 0)
        return EXIT_FAILED;
    printf("wrote a new console token to %s/%s; restart onced to use it, "
           "and give it to the dashboard and to Prometheus "
           "(credentials_file)\n", home, TOKEN_FILE);
    return 0;
}

/* ---- the console API ---------------------------------------------------- */

typedef struct client {
    CURL *curl;
    char base[CONFIG_ENDPOINT_MAX + 16];
    struct curl_slist *headers;
} client;

typedef struct buffer {
    char *data;
    size_t len;
} buffer;

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    buffer *b = arg;
    size_t add = size * n;
    char *grown;

    if (add > MAX_ANSWER - b->len)
        return 0; /* curl fails the transfer */
    grown = realloc(b->data, b->len + add + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + b->len, data, add);
    b->data = grown;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

/* Reads the home's console_listen and token and prepares the client. */
static int client_open(client *c, const char *home)
{
    char why[PATH_MAX + 256], path[PATH_MAX + 32];
    char token[TOKEN_CHARS + 2], header[TOKEN_CHARS + 32];
    const char *host;
    broker_config cfg;
    ssize_t n;
    int fd;

    memset(c, 0, sizeof(*c));
    if (config_read_home(&cfg, home, why, sizeof(why)) < 0) {
        say("%s", why);
        return -1;
    }
    if (cfg.console_listen[0] == '\0') {
        say("the console is off (console_listen is empty in %s/once.conf)",
            home);
        return -1;
    }
    /* A console bound to every address is reached on loopback. */
    host = cfg.console_listen;
    if (strncmp(host, "0.0.0.0:", 8) == 0)
        snprintf(c->base, sizeof(c->base), "http://127.0.0.1:%s", host + 8);
    else if (strncmp(host, "[::]:", 5) == 0)
        snprintf(c->base, sizeof(c->base), "http://[::1]:%s", host + 5);
    else
        snprintf(c->base, sizeof(c->base), "http://%s", host);
    snprintf(path, sizeof(path), "%s/%s", home, TOKEN_FILE);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        say("cannot read %s: %s (make one with 'oncectl console token')",
            path, strerror(errno));
        return -1;
    }
    n = read(fd, token, sizeof(token));
    close(fd);
    if (n < TOKEN_CHARS) {
        say("%s does not hold a token", path);
        return -1;
    }
    snprintf(header, sizeof(header), "Authorization: Bearer %.*s",
             TOKEN_CHARS, token);
    sodium_memzero(token, sizeof(token));
    c->curl = curl_easy_init();
    c->headers = curl_slist_append(NULL, header);
    sodium_memzero(header, sizeof(header));
    if (c->curl == NULL || c->headers == NULL) {
        say("out of memory");
        return -1;
    }
    return 0;
}

static void client_close(client *c)
{
    curl_slist_free_all(c->headers);
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
}

/* GET path: the body (malloc'd) and the HTTP status, or -1. */
static int get(client *c, const char *path, buffer *out, long *status)
{
    char url[sizeof(c->base) + 64];
    CURLcode rc;

    out->data = NULL;
    out->len = 0;
    snprintf(url, sizeof(url), "%s%s", c->base, path);
    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, HTTP_TIMEOUT_S);
    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    rc = curl_easy_perform(c->curl);
    if (rc != CURLE_OK) {
        say("cannot reach the console at %s: %s", c->base,
            curl_easy_strerror(rc));
        free(out->data);
        out->data = NULL;
        return -1;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

static json_t *get_json(client *c, const char *name)
{
    char path[64];
    json_error_t jerr;
    buffer b;
    long status = 0;
    json_t *root;

    snprintf(path, sizeof(path), "/api/v1/%s", name);
    if (get(c, path, &b, &status) < 0)
        return NULL;
    if (status != 200) {
        say("the console answered %ld to %s%s%s", status, path,
            b.data != NULL ? ": " : "", b.data != NULL ? b.data : "");
        free(b.data);
        return NULL;
    }
    root = json_loadb(b.data != NULL ? b.data : "", b.len, 0, &jerr);
    free(b.data);
    if (root == NULL)
        say("the console's %s is not JSON: %s", path, jerr.text);
    return root;
}

/* ---- the screen ----------------------------------------------------------- */

static json_int_t num(json_t *o, const char *path)
{
    json_t *v = o;
    char key[64];
    const char *p = path, *dot;

    while (v != NULL && p != NULL) {
        dot = strchr(p, '.');
        snprintf(key, sizeof(key), "%.*s",
                 (int)(dot != NULL ? (size_t)(dot - p) : strlen(p)), p);
        v = json_object_get(v, key);
        p = dot != NULL ? dot + 1 : NULL;
    }
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

static double real(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);

    if (b != NULL)
        v = json_object_get(v, b);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static const char *text(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : "-";
}

/* The q-th quantile of a cumulative histogram [{le, count}], in seconds,
 * by linear interpolation inside the bucket; -1 without observations. */
static double quantile(json_t *buckets, double q)
{
    size_t n = json_array_size(buckets), i;
    double prev_le = 0, prev_count = 0, total, want;

    if (n == 0)
        return -1;
    total = (double)num(json_array_get(buckets, n - 1), "count");
    if (total == 0)
        return -1;
    want = q * total;
    for (i = 0; i < n; i++) {
        json_t *b = json_array_get(buckets, i);
        double count = (double)num(b, "count");
        json_t *le = json_object_get(b, "le");

        if (count >= want) {
            if (!json_is_number(le))
                return prev_le;
            return prev_le + (json_number_value(le) - prev_le) *
                   (count > prev_count ? (want - prev_count) /
                                         (count - prev_count) : 1);
        }
        if (json_is_number(le))
            prev_le = json_number_value(le);
        prev_count = count;
    }
    return prev_le;
}

typedef struct rate_state {
    json_int_t total;
    json_int_t now_ms;
} rate_state;

static int print_screen(client *c, rate_state *rate)
{
    json_t *st = get_json(c, "status"), *k = NULL, *d = NULL, *list, *v;
    buffer ready = { NULL, 0 };
    long ready_status = 0;
    const char *key;
    json_int_t total;
    size_t i;
    double p50, p99;
    int rc = -1;

    if (st == NULL || (k = get_json(c, "kpis")) == NULL ||
        (d = get_json(c, "departments")) == NULL ||
        get(c, "/readyz", &ready, &ready_status) < 0)
        goto out;
    printf("%s (once %s), up %lld s: %s", text(st, "name"),
           text(st, "version"), (long long)num(st, "uptime_seconds"),
           ready_status == 200 ? "ready\n" : "NOT READY\n");
    if (ready_status != 200 && ready.data != NULL)
        printf("  %s", ready.data);
    printf("log          %lld leaves, %lld under the newest signed "
           "checkpoint; oldest unsigned waited %.1f s\n",
           (long long)num(st, "log.tree_size"),
           (long long)num(st, "log.checkpoint_size"),
           real(st, "log", "unsigned_age_seconds"));
    printf("map          %.1f%% of %lld MiB used\n",
           100 * real(st, "map", "used_ratio"),
           (long long)(num(st, "map.size_bytes") >> 20));
    total = num(st, "since_start.granted") + num(st, "since_start.refused");
    printf("exchanges    since start %lld granted, %lld refused",
           (long long)num(st, "since_start.granted"),
           (long long)num(st, "since_start.refused"));
    if (rate != NULL && rate->now_ms != 0 &&
        num(st, "now_ms") > rate->now_ms)
        printf("; %.1f/s", (double)(total - rate->total) * 1000.0 /
               (double)(num(st, "now_ms") - rate->now_ms));
    p50 = quantile(json_object_get(json_object_get(st, "since_start"),
                                   "latency_buckets"), 0.5);
    p99 = quantile(json_object_get(json_object_get(st, "since_start"),
                                   "latency_buckets"), 0.99);
    if (p50 >= 0)
        printf("; latency p50 %.2f ms, p99 %.2f ms", p50 * 1000,
               p99 * 1000);
    printf("\n");
    if (rate != NULL) {
        rate->total = total;
        rate->now_ms = num(st, "now_ms");
    }
    printf("copies avoided %lld; sharing rate %.1f%% of %lld requests; "
           "%lld publishes\n", (long long)num(k, "copies_avoided.total"),
           100 * real(k, "sharing_rate", NULL), (long long)num(k, "requests"),
           (long long)num(k, "publishes"));
    printf("participation  %lld registered: %lld publish, %lld request, "
           "%lld idle 30 days\n",
           (long long)num(k, "participation.registered"),
           (long long)num(k, "participation.publishing"),
           (long long)num(k, "participation.requesting"),
           (long long)num(k, "participation.idle_30_days"));
    printf("refusals    ");
    json_object_foreach(json_object_get(k, "refusals_by_code"), key, v)
        printf(" %s %lld", key, (long long)json_integer_value(v));
    printf("%s\n", json_object_size(json_object_get(k, "refusals_by_code"))
                       ? "" : " none");
    printf("\n%-24s %-9s %10s %10s %8s\n", "DEPARTMENT", "STATUS",
           "PUBLISHES", "GRANTED", "REFUSED");
    list = json_object_get(d, "departments");
    for (i = 0; i < json_array_size(list) && i < TOP_DEPARTMENTS; i++) {
        v = json_array_get(list, i);
        printf("%-24.24s %-9s %10lld %10lld %8lld\n", text(v, "id"),
               text(v, "status"), (long long)num(v, "publishes"),
               (long long)num(v, "requests_granted"),
               (long long)num(v, "refusals"));
    }
    if (json_array_size(list) > TOP_DEPARTMENTS)
        printf("... and %zu more\n", json_array_size(list) - TOP_DEPARTMENTS);
    rc = 0;
out:
    free(ready.data);
    json_decref(st);
    json_decref(k);
    json_decref(d);
    return rc;
}

int oncectl_status(const char *home)
{
    client c;
    int rc = EXIT_FAILED;

    curl_global_init(CURL_GLOBAL_NOTHING);
    if (client_open(&c, home) == 0 && print_screen(&c, NULL) == 0)
        rc = 0;
    client_close(&c);
    curl_global_cleanup();
    return rc;
}

static volatile sig_atomic_t top_stop;

static void on_signal(int sig)
{
    (void)sig;
    top_stop = 1;
}

/* Waits up to ms for a key; true when it was q (or the input ended). */
static bool quit_key(int ms)
{
    struct pollfd p = { STDIN_FILENO, POLLIN, 0 };
    char ch;

    if (poll(&p, 1, ms) <= 0)
        return false;
    if (read(STDIN_FILENO, &ch, 1) != 1)
        return true;
    return ch == 'q' || ch == 'Q';
}

int oncectl_top(const char *home, unsigned interval_ms, unsigned iterations)
{
    bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    struct termios saved, raw;
    struct sigaction sa;
    rate_state rate = { 0, 0 };
    unsigned shown = 0;
    client c;
    int rc = 0;

    curl_global_init(CURL_GLOBAL_NOTHING);
    if (client_open(&c, home) < 0) {
        client_close(&c);
        curl_global_cleanup();
        return EXIT_FAILED;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
        raw = saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    } else {
        tty = false;
    }
    while (!top_stop) {
        if (tty)
            fputs("\033[H\033[2J", stdout);
        else if (shown > 0)
            fputs("\n", stdout);
        if (print_screen(&c, &rate) < 0)
            rc = EXIT_FAILED;
        if (tty)
            fputs("\n(q quits)", stdout);
        fflush(stdout);
        shown++;
        if (rc != 0 || (iterations > 0 && shown >= iterations))
            break;
        if (tty ? quit_key((int)interval_ms)
                : usleep(interval_ms * 1000u) != 0 && top_stop)
            break;
    }
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        fputs("\n", stdout);
    }
    client_close(&c);
    curl_global_cleanup();
    return rc;
}
