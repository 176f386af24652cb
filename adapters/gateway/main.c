/*
 * main.c - once-gateway: start-up, configuration, signals, shutdown.
 *
 * The configuration is one INI file, [gateway] section, read by
 * adapters/common/startup.c like once-spool's (the keys both have by
 * adapters/common/config.c, the gateway's own by own_entry); relative
 * paths in it are relative to the file's directory. Every key is checked and an unknown key is an error,
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gateway.h"

#ifndef ONCE_VERSION
#define ONCE_VERSION "unknown"
#endif

#define DEFAULT_CONFIG "/etc/once/gateway.conf"
#define SHUTDOWN_GRACE_MS 30000

static const char usage_text[] =
    "Usage: once-gateway [--config FILE]\n"
    "\n"
    "once-gateway is the REST/JSON gateway a department runs beside its own\n"
    "systems. It holds the department's key, talks to the once broker\n"
    "through libonce, and offers the API of openapi.yaml (served at\n"
    "GET /v1/openapi.yaml): publish, revoke and request records, the\n"
    "catalogue of what the department may do, subscriptions and a long\n"
    "poll of notices, health and metrics. Every\n"
    "record it hands over has had its issuer's signature and every disclosed\n"
    "field checked. docs/ADAPTERS.md is the guide.\n"
    "\n"
    ADAPTER_USAGE_OPTIONS(DEFAULT_CONFIG)
    "\n"
    "Configuration ([gateway] section; paths relative to the file):\n"
    ADAPTER_USAGE_KEYS
    "  listen            numeric address and port, e.g. 127.0.0.1:8080 or\n"
    "                    [::1]:8080 (port 0: any free port); a non-loopback\n"
    "                    address needs TLS\n"
    "  tokens            the callers' tokens file, 0600 (required)\n"
    "  tls_certificate   PEM certificate, with tls_key: serve HTTPS\n"
    "  tls_key           PEM private key\n"
    "  pool_size         broker connections (default 4, at most 256)\n"
    "  request_lanes     more connections that carry the record requests,\n"
    "                    up to 32 in flight on each (default 1, at most 16;\n"
    "                    0: requests take the pool's, one at a time)\n"
    "  max_body_bytes    largest request body (default 2097152)\n"
    "  notice_webhook    URL the department's notices are POSTed to,\n"
    "                    signed (Once-Signature); optional\n"
    "  notice_webhook_secret_file  the HMAC key, a 0600 file (with the URL)\n"
    "  notice_webhook_attempts     before a notice is put aside in the\n"
    "                    state directory (default 10)\n"
    "  notice_webhook_backoff_ms   first retry delay, doubling to 5 min\n"
    "                    (default 1000)\n"
    "\n"
    "Exit status: 0 after SIGTERM or SIGINT, 1 on a runtime failure, 2 on a\n"
    "usage or configuration error.\n";

/* "HOST:PORT" or "[V6]:PORT". */
static int set_listen(gateway_config *cfg, adapter_ini *ini,
                      const char *value)
{
    const char *colon, *host = value;
    size_t host_len;

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
    return adapter_ini_unsigned(ini, "the listen port", colon + 1, 0, 65535,
                                &cfg->listen_port);
bad:
    snprintf(ini->problem, sizeof(ini->problem), "listen must be "
             "HOST:PORT or [IPV6]:PORT");
    return 0;
}

/* The gateway's own keys (adapter_program.own_entry). */
static int own_entry(void *user, adapter_ini *ini, const char *name,
                     const char *value)
{
    gateway_config *cfg = user;

    if (strcmp(name, "listen") == 0)
        return set_listen(cfg, ini, value);
    if (strcmp(name, "tokens") == 0)
        return adapter_ini_path(ini, cfg->tokens_path, value);
    if (strcmp(name, "tls_certificate") == 0)
        return adapter_ini_path(ini, cfg->tls_cert_path, value);
    if (strcmp(name, "tls_key") == 0)
        return adapter_ini_path(ini, cfg->tls_key_path, value);
    if (strcmp(name, "pool_size") == 0)
        return adapter_ini_unsigned(ini, name, value, 1, GATEWAY_MAX_POOL,
                                    &cfg->pool_size);
    if (strcmp(name, "request_lanes") == 0)
        return adapter_ini_unsigned(ini, name, value, 0, GATEWAY_MAX_LANES,
                                    &cfg->request_lanes);
    if (strcmp(name, "notice_webhook") == 0) {
        if ((strncmp(value, "http://", 7) != 0 &&
             strncmp(value, "https://", 8) != 0) ||
            strlen(value) >= sizeof(cfg->webhook_url)) {
            snprintf(ini->problem, sizeof(ini->problem), "notice_webhook "
                     "must be an http:// or https:// URL");
            return 0;
        }
        snprintf(cfg->webhook_url, sizeof(cfg->webhook_url), "%s", value);
        return 1;
    }
    if (strcmp(name, "notice_webhook_secret_file") == 0)
        return adapter_ini_path(ini, cfg->webhook_secret_path, value);
    if (strcmp(name, "notice_webhook_attempts") == 0)
        return adapter_ini_unsigned(ini, name, value, 1, 100,
                                    &cfg->webhook_attempts);
    if (strcmp(name, "notice_webhook_backoff_ms") == 0)
        return adapter_ini_unsigned(ini, name, value, 100, 300000,
                                    &cfg->webhook_backoff_ms);
    if (strcmp(name, "max_body_bytes") == 0)
        return adapter_ini_size(ini, name, value, 1024, 64ul * 1024 * 1024,
                                &cfg->max_body);
    return -1;
}

/* The gateway's own keys work together (adapter_program.check). */
static int check(void *user, const char *path)
{
    gateway_config *cfg = user;

    if (cfg->tokens_path[0] == '\0') {
        fprintf(stderr, "once-gateway: %s needs tokens\n", path);
        return -1;
    }
    if ((cfg->webhook_url[0] == '\0') !=
        (cfg->webhook_secret_path[0] == '\0')) {
        fprintf(stderr, "once-gateway: %s: notice_webhook and "
                "notice_webhook_secret_file go together\n", path);
        return -1;
    }
    if ((cfg->tls_cert_path[0] == '\0') != (cfg->tls_key_path[0] == '\0')) {
        fprintf(stderr, "once-gateway: %s: tls_certificate and tls_key go "
                "together\n", path);
        return -1;
    }
    return 0;
}

static const adapter_program program = {
    "once-gateway", "gateway", DEFAULT_CONFIG, usage_text, ONCE_VERSION,
    own_entry, check
};

/* Everything that does not need the network: keys, tokens, state. */
static int open_local(gateway *gw, once_error *err)
{
    int rc;

    if ((rc = adapter_open_local(&gw->core, &gw->cfg.base, err)) < 0 ||
        (rc = tokens_load(&gw->tokens, gw->cfg.tokens_path, err)) < 0)
        return rc;
    return 0;
}

static void close_all(gateway *gw)
{
    notices_stop();
    webhook_stop();
    lanes_close(gw->lanes);
    gw->lanes = NULL;
    adapter_close(&gw->core);
    tokens_free(&gw->tokens);
}

int main(int argc, char **argv)
{
    static gateway gw;
    sigset_t signals;
    once_error err;
    int sig, status = ADAPTER_EXIT_RUNTIME;

    gw.cfg.pool_size = GATEWAY_DEFAULT_POOL;
    gw.cfg.request_lanes = GATEWAY_DEFAULT_LANES;
    gw.cfg.base.timeout_ms = GATEWAY_DEFAULT_TIMEOUT_MS;
    gw.cfg.max_body = GATEWAY_DEFAULT_MAX_BODY;
    gw.cfg.webhook_attempts = 10;
    gw.cfg.webhook_backoff_ms = 1000;
    snprintf(gw.cfg.listen_host, sizeof(gw.cfg.listen_host), "127.0.0.1");
    gw.cfg.listen_port = 8080;
    if ((status = adapter_begin(argc, argv, &program, &gw.cfg.base, &gw.cfg,
                                &signals)) >= 0)
        return status;
    status = ADAPTER_EXIT_RUNTIME;

    if (open_local(&gw, &err) < 0) {
        fprintf(stderr, "once-gateway: %s\n", err.message);
        close_all(&gw);
        return ADAPTER_EXIT_USAGE;
    }
    if (adapter_connect(&gw.core, &gw.cfg.base, gw.cfg.pool_size, true,
                        &err) < 0) {
        adapter_log("error", "%s", err.message);
        goto out;
    }
    if ((gw.cfg.request_lanes > 0 &&
         lanes_open(&gw.lanes, gw.core.pool, gw.cfg.request_lanes,
                    &err) < 0) ||
        notices_start(&gw, &err) < 0 || webhook_start(&gw, &err) < 0) {
        adapter_log("error", "%s", err.message);
        goto out;
    }
    if (http_start(&gw, &err) < 0) {
        fprintf(stderr, "once-gateway: %s\n", err.message);
        status = err.code == ONCE_ERR_INVALID_ARGUMENT ? ADAPTER_EXIT_USAGE
                                                       : ADAPTER_EXIT_RUNTIME;
        goto out;
    }
    adapter_log("info", "department %s listening on %s port %u (%s), %u "
                "broker connections and %u request lanes to %s",
                gw.cfg.base.department, gw.cfg.listen_host,
                http_bound_port(), gw.cfg.tls_cert_path[0] ? "https" : "http",
                gw.cfg.pool_size, gw.cfg.request_lanes,
                gw.cfg.base.broker_endpoint);
    while (sigwait(&signals, &sig) != 0)
        ;
    adapter_log("info", "%s received: finishing the calls in flight",
                sig == SIGTERM ? "SIGTERM" : "SIGINT");
    notices_stop();
    http_stop(SHUTDOWN_GRACE_MS);
    status = EXIT_SUCCESS;
    adapter_log("info", "stopped");
out:
    close_all(&gw);
    return status;
}
