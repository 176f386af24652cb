/*
 * main.c - once-gateway: start-up, configuration, signals, shutdown.
 *
 * The configuration is one INI file ([gateway] section, read with inih
 * like onced's once.conf; the keys the spool has too are read by
 * adapters/common/config.c); relative paths in it are relative to the
 * file's directory. Every key is checked and an unknown key is an error,
 * so a misspelt setting is never silently replaced by a default. Start-up
 * refuses, with exit status 2 and one line saying why, a configuration
 * that cannot work: a key file others can read, a tokens file others can
 * read, a non-loopback listen address without TLS.
 *
 * SIGTERM and SIGINT stop the gateway: it stops accepting connections,
 * finishes the calls in flight (up to SHUTDOWN_GRACE_MS), closes its broker
 * connections and exits 0. Signals are taken with sigwait in the main
 * thread; every other thread has them blocked.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>
#include <sodium.h>

#include "gateway.h"

#ifndef ONCE_VERSION
#define ONCE_VERSION "unknown"
#endif

#define DEFAULT_CONFIG "/etc/once/gateway.conf"
#define SHUTDOWN_GRACE_MS 30000
#define EXIT_USAGE 2
#define EXIT_RUNTIME 1

static const char usage_text[] =
    "Usage: once-gateway [--config FILE]\n"
    "\n"
    "once-gateway is the REST/JSON gateway a department runs beside its own\n"
    "systems. It holds the department's key, talks to the once broker\n"
    "through libonce, and offers the API of openapi.yaml (served at\n"
    "GET /v1/openapi.yaml): publish, revoke and request records, the\n"
    "catalogue of what the department may do, health and metrics. Every\n"
    "record it hands over has had its issuer's signature and every disclosed\n"
    "field checked. docs/ADAPTERS.md is the guide.\n"
    "\n"
    "Options:\n"
    "  --config FILE   the configuration (default " DEFAULT_CONFIG ")\n"
    "  --help          this text\n"
    "  --version       the version\n"
    "\n"
    "Configuration ([gateway] section; paths relative to the file):\n"
    "  department        this department's id at the broker (required)\n"
    "  key               its secret key file, 0600 (required)\n"
    "  broker            the broker's endpoint: tcp://HOST:PORT, ipc://PATH\n"
    "  broker_key        the broker's public key file (broker.pub)\n"
    "  log_origin        the broker's log origin; when set, receipt proofs\n"
    "                    are verified (optional)\n"
    "  listen            numeric address and port, e.g. 127.0.0.1:8080 or\n"
    "                    [::1]:8080 (port 0: any free port); a non-loopback\n"
    "                    address needs TLS\n"
    "  tokens            the callers' tokens file, 0600 (required)\n"
    "  tls_certificate   PEM certificate, with tls_key: serve HTTPS\n"
    "  tls_key           PEM private key\n"
    "  pool_size         broker connections (default 4, at most 256)\n"
    "  timeout_ms        per broker call (default 5000)\n"
    "  max_body_bytes    largest request body (default 2097152)\n"
    "  state_directory   Idempotency-Key state, created 0700 (required)\n"
    "\n"
    "Exit status: 0 after SIGTERM or SIGINT, 1 on a runtime failure, 2 on a\n"
    "usage or configuration error.\n";

typedef struct parse_state {
    gateway_config *cfg;
    adapter_ini ini;
} parse_state;

/* "HOST:PORT" or "[V6]:PORT". */
static int set_listen(parse_state *st, const char *value)
{
    gateway_config *cfg = st->cfg;
    const char *colon, *host = value;
    size_t host_len;
    unsigned long port;

    if (value[0] == '[') {
        const char *close = strchr(value, ']');

        if (close == NULL || close[1] != ':')
            goto bad;
        host = value + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(value, ':');
        if (colon == NULL)
            goto bad;
        host_len = (size_t)(colon - value);
    }
    if (host_len == 0 || host_len >= sizeof(cfg->listen_host))
        goto bad;
    memcpy(cfg->listen_host, host, host_len);
    cfg->listen_host[host_len] = '\0';
    if (!adapter_ini_number(&st->ini, "the listen port", colon + 1, 0, 65535,
                            &port))
        return 0;
    cfg->listen_port = (unsigned)port;
    return 1;
bad:
    snprintf(st->ini.problem, sizeof(st->ini.problem), "listen must be "
             "HOST:PORT or [IPV6]:PORT");
    return 0;
}

static int ini_entry(void *user, const char *section, const char *name,
                     const char *value)
{
    parse_state *st = user;
    gateway_config *cfg = st->cfg;
    unsigned long n;
    int rc;

    if (strcmp(section, "gateway") != 0) {
        snprintf(st->ini.problem, sizeof(st->ini.problem),
                 "unknown section [%s]", section);
        return 0;
    }
    if ((rc = adapter_config_entry(&st->ini, &cfg->base, name, value)) >= 0)
        return rc;
    if (strcmp(name, "listen") == 0)
        return set_listen(st, value);
    if (strcmp(name, "tokens") == 0)
        return adapter_ini_path(&st->ini, cfg->tokens_path, value);
    if (strcmp(name, "tls_certificate") == 0)
        return adapter_ini_path(&st->ini, cfg->tls_cert_path, value);
    if (strcmp(name, "tls_key") == 0)
        return adapter_ini_path(&st->ini, cfg->tls_key_path, value);
    if (strcmp(name, "pool_size") == 0) {
        if (!adapter_ini_number(&st->ini, name, value, 1, GATEWAY_MAX_POOL,
                                &n))
            return 0;
        cfg->pool_size = (unsigned)n;
        return 1;
    }
    if (strcmp(name, "max_body_bytes") == 0) {
        if (!adapter_ini_number(&st->ini, name, value, 1024,
                                64ul * 1024 * 1024, &n))
            return 0;
        cfg->max_body = n;
        return 1;
    }
    snprintf(st->ini.problem, sizeof(st->ini.problem), "unknown key %s",
             name);
    return 0;
}

static int load_config(gateway_config *cfg, const char *path)
{
    parse_state st;
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    cfg->pool_size = GATEWAY_DEFAULT_POOL;
    cfg->base.timeout_ms = GATEWAY_DEFAULT_TIMEOUT_MS;
    cfg->max_body = GATEWAY_DEFAULT_MAX_BODY;
    snprintf(cfg->listen_host, sizeof(cfg->listen_host), "127.0.0.1");
    cfg->listen_port = 8080;
    snprintf(cfg->config_path, sizeof(cfg->config_path), "%s", path);
    adapter_ini_init(&st.ini, path);
    st.cfg = cfg;
    rc = ini_parse(path, ini_entry, &st);
    if (rc < 0) {
        fprintf(stderr, "once-gateway: cannot read %s: %s\n", path,
                rc == -1 ? strerror(errno) : "out of memory");
        return -1;
    }
    if (rc > 0) {
        fprintf(stderr, "once-gateway: %s line %d: %s\n", path, rc,
                st.ini.problem[0] != '\0' ? st.ini.problem : "syntax error");
        return -1;
    }
    if (adapter_config_check(&st.ini, &cfg->base) < 0 ||
        cfg->tokens_path[0] == '\0') {
        fprintf(stderr, "once-gateway: %s needs department, key, broker, "
                "broker_key, tokens and state_directory\n", path);
        return -1;
    }
    if ((cfg->tls_cert_path[0] == '\0') != (cfg->tls_key_path[0] == '\0')) {
        fprintf(stderr, "once-gateway: %s: tls_certificate and tls_key go "
                "together\n", path);
        return -1;
    }
    return 0;
}

/* 0 to run, 1 to exit 0, -1 for a usage error. */
static int parse_args(int argc, char **argv, const char **config)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int opt;

    *config = DEFAULT_CONFIG;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            *config = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 1;
        case 'V':
            printf("once-gateway %s\n", ONCE_VERSION);
            return 1;
        default:
            fputs(usage_text, stderr);
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "once-gateway: unexpected argument %s\n",
                argv[optind]);
        return -1;
    }
    return 0;
}

/* Everything that does not need the network: keys, tokens, state. */
static int open_local(gateway *gw, once_error *err)
{
    int rc;

    if ((rc = once_keypair_load(&gw->key, gw->cfg.base.key_path, err)) < 0 ||
        (rc = once_public_key_load(gw->broker_pk, gw->cfg.base.broker_key_path,
                                   err)) < 0 ||
        (rc = tokens_load(&gw->tokens, gw->cfg.tokens_path, err)) < 0 ||
        (rc = state_open(&gw->state, gw->cfg.base.state_dir, err)) < 0)
        return rc;
    return 0;
}

static void close_all(gateway *gw)
{
    dircache_close(gw->dir);
    pool_close(gw->pool);
    state_close(gw->state);
    tokens_free(&gw->tokens);
    once_keypair_wipe(&gw->key);
}

int main(int argc, char **argv)
{
    static gateway gw;
    const char *config;
    sigset_t signals;
    once_error err;
    int sig, status = EXIT_RUNTIME;

    switch (parse_args(argc, argv, &config)) {
    case 1:
        return EXIT_SUCCESS;
    case -1:
        return EXIT_USAGE;
    default:
        break;
    }
    adapter_log_init("gateway");
    if (load_config(&gw.cfg, config) < 0)
        return EXIT_USAGE;
    if (once_init() < 0) {
        fprintf(stderr, "once-gateway: cannot initialise libsodium\n");
        return EXIT_RUNTIME;
    }
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (open_local(&gw, &err) < 0) {
        fprintf(stderr, "once-gateway: %s\n", err.message);
        close_all(&gw);
        return EXIT_USAGE;
    }
    if (pool_open(&gw.pool, gw.cfg.base.broker_endpoint,
                  gw.cfg.base.department, gw.cfg.pool_size,
                  gw.cfg.base.timeout_ms, &gw.key, gw.broker_pk, &err) < 0 ||
        dircache_open(&gw.dir, gw.pool, &err) < 0) {
        adapter_log("error", "%s", err.message);
        goto out;
    }
    if (http_start(&gw, &err) < 0) {
        fprintf(stderr, "once-gateway: %s\n", err.message);
        status = err.code == ONCE_ERR_INVALID_ARGUMENT ? EXIT_USAGE
                                                       : EXIT_RUNTIME;
        goto out;
    }
    adapter_log("info", "department %s listening on %s port %u (%s), %u "
                "broker connections to %s", gw.cfg.base.department,
                gw.cfg.listen_host, http_bound_port(),
                gw.cfg.tls_cert_path[0] ? "https" : "http", gw.cfg.pool_size,
                gw.cfg.base.broker_endpoint);
    while (sigwait(&signals, &sig) != 0)
        ;
    adapter_log("info", "%s received: finishing the calls in flight",
                sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_stop(SHUTDOWN_GRACE_MS);
    status = EXIT_SUCCESS;
    adapter_log("info", "stopped");
out:
    close_all(&gw);
    return status;
}
