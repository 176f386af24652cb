/*
 * config.c - onced's settings: the [broker] section of once.conf and the
 * command-line options that override it.
 *
 * A broker home (made by `oncectl init HOME`) holds once.conf; `onced
 * --home HOME` reads it, `onced --config FILE` reads another file. Paths in
 * the file (key, database) are relative to the file's directory, so a home
 * can be moved or mounted elsewhere without editing it. Without --home or
 * --config the home is $ONCE_HOME, else /var/lib/once, as for oncectl; a
 * home without once.conf runs on the defaults, which are what `oncectl
 * init` writes.
 *
 * Four options override the file, for the settings one changes per run:
 * --listen, --console-listen, --workers and --log-level.
 *
 * Validation is strict and says which line and which value is wrong: an
 * unknown key in [broker] is an error (a misspelt `skew_secods` would
 * otherwise silently run with the default), every number is range checked,
 * and problems found here exit with status 2 before anything is opened.
 * oncectl reads a home through config_read_home, so it opens the database
 * onced would, with the same map size, and refuses the once.conf onced
 * would refuse.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "policy.h"

#ifndef ONCE_VERSION
#define ONCE_VERSION "unknown"
#endif

#define DEFAULT_KEY "broker.key"
#define DEFAULT_DATABASE "db"
#define DEFAULT_AUDIT_KEY "audit.key"
#define DEFAULT_SKEW_SECONDS 300
#define DEFAULT_GROUP_COMMIT_MAX 256

#define MAX_SKEW_SECONDS 86400
#define MAX_GROUP_COMMIT 65536
/* A signed checkpoint covers every committed leaf within this long
 * (writer.c explains the cadence); at most an hour. */
#define DEFAULT_CHECKPOINT_INTERVAL_MS 1000
#define MAX_CHECKPOINT_INTERVAL_MS 3600000
/* One department's share of the replay table: sessions remembered (each
 * idle one for twice skew_seconds) and envelopes admitted but not yet
 * answered. Sixteen departments at their session limit fill the table. */
#define DEFAULT_MAX_SESSIONS_PER_DEPARTMENT 4096
#define DEFAULT_MAX_IN_FLIGHT_PER_DEPARTMENT 1024
#define MAX_IN_FLIGHT_PER_DEPARTMENT 1000000
/* Refusals of one department logged (each up to about 2 KB of the map,
 * kept for good): a burst of 60, then one a second. A day of a department
 * refused at that pace adds about 170 MB; past it, its refusals are
 * answered QUOTA_EXCEEDED and not logged (refusal_budget.c). */
#define DEFAULT_MAX_LOGGED_REFUSALS 60
#define DEFAULT_LOGGED_REFUSALS_WINDOW_SECONDS 60
#define MAX_LOGGED_REFUSALS 1000000
#define MAX_LOGGED_REFUSALS_WINDOW_SECONDS 86400
/* Enough for a department's adapters and their reconnects, far below the
 * descriptors onced has once it raised its limit (onced.c). */
#define DEFAULT_MAX_CONNECTIONS 64
#define MAX_CONNECTIONS 65536
/* Bytes of messages read and not yet answered: 256 MiB in all, 64 MiB per
 * department; 1 MiB is the largest message. */
#define DEFAULT_PENDING_KB (256u * 1024)
#define DEFAULT_DEPARTMENT_PENDING_KB (64u * 1024)
#define MIN_PENDING_KB 1024
#define MAX_PENDING_KB (64ull * 1024 * 1024)

static const char usage_text[] =
    "Usage: onced [--home DIR | --config FILE] [OPTIONS]\n"
    "\n"
    "onced is the once exchange broker. Department systems connect to it\n"
    "over CurveZMQ to publish issuer-signed records, revoke them, and request\n"
    "the fields their grants allow. It admits only registered, active\n"
    "department keys, checks every envelope's signature, sequence number and\n"
    "clock, answers requests from its LMDB registry, and acknowledges a\n"
    "publish only once it is on disk. Departments, record types and grants\n"
    "are managed with oncectl, also while onced runs.\n"
    "\n"
    "Options:\n"
    "  --home DIR         broker home made by 'oncectl init'; reads\n"
    "                     DIR/once.conf (default $ONCE_HOME, else "
    CONFIG_DEFAULT_HOME ")\n"
    "  --config FILE      read FILE instead; relative paths in it are\n"
    "                     relative to FILE's directory\n"
    "  --listen EP        ZeroMQ endpoint to bind: tcp://HOST:PORT or\n"
    "                     ipc://PATH (overrides 'listen')\n"
    "  --console-listen ADDRESS:PORT\n"
    "                     the operator's console (HTTP: /metrics, /healthz,\n"
    "                     /readyz, /api/v1/, the dashboard); empty turns it\n"
    "                     off (overrides 'console_listen', default\n"
    "                     " CONFIG_DEFAULT_CONSOLE_LISTEN ")\n"
    "  --workers N        worker threads, 0 = one per CPU (overrides\n"
    "                     'workers')\n"
    "  --log-level LEVEL  error, warn, info or debug (overrides 'log_level')\n"
    "  -h, --help         print this help and exit\n"
    "  -V, --version      print the version and exit\n"
    "\n"
    "Every exchange is a leaf of the signed exchange log (docs/AUDIT.md).\n"
    "SIGTERM or SIGINT stops taking new messages, finishes the ones in\n"
    "flight, commits, signs a checkpoint of the log and exits.\n"
    "Exit status: 0 clean stop, 1 runtime failure, 2 usage or configuration\n"
    "error.\n";

typedef struct parse_state {
    broker_config *cfg;
    char raw_key[PATH_MAX];
    char raw_database[PATH_MAX];
    char raw_audit_key[PATH_MAX];
    unsigned workers_setting;
    char problem[256];
} parse_state;

static config_result usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static config_result usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("onced: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'onced --help'.\n", stderr);
    return CONFIG_USAGE;
}

/* A decimal number in [min, max] and nothing else. */
static bool parse_number(const char *text, unsigned long long min,
                         unsigned long long max, unsigned long long *out)
{
    char *end;

    if (text[0] < '0' || text[0] > '9')
        return false;
    errno = 0;
    *out = strtoull(text, &end, 10);
    return errno == 0 && *end == '\0' && *out >= min && *out <= max;
}

static bool copy_text(char *dst, size_t cap, const char *src)
{
    size_t len = strlen(src);

    if (len >= cap)
        return false;
    memcpy(dst, src, len + 1);
    return true;
}

/* tcp:// and ipc:// are what a broker serves departments on; anything
 * else (inproc, pgm) cannot work, so it is refused before binding. Blanks,
 * control characters and the INI comment characters would not survive
 * being written into once.conf by oncectl init. */
bool config_endpoint_is_valid(const char *ep)
{
    size_t len = strlen(ep), i;

    if (len >= CONFIG_ENDPOINT_MAX)
        return false;
    for (i = 0; i < len; i++)
        if ((unsigned char)ep[i] <= ' ' || ep[i] == 0x7f || ep[i] == ';' ||
            ep[i] == '#')
            return false;
    if (strncmp(ep, "tcp://", 6) == 0)
        return len > 6 && strchr(ep + 6, ':') != NULL;
    if (strncmp(ep, "ipc://", 6) == 0)
        return len > 6;
    return false;
}

int config_console_address(const char *listen, struct sockaddr_storage *addr,
                           socklen_t *len)
{
    const char *colon = strrchr(listen, ':');
    char host[CONFIG_ENDPOINT_MAX];
    struct addrinfo hints, *res = NULL;
    size_t hlen;
    int rc = -1;

    if (colon == NULL || colon == listen || colon[1] == '\0' ||
        strlen(listen) >= CONFIG_ENDPOINT_MAX)
        return -1;
    hlen = (size_t)(colon - listen);
    if (listen[0] == '[') {
        if (hlen < 3 || listen[hlen - 1] != ']')
            return -1;
        snprintf(host, sizeof(host), "%.*s", (int)(hlen - 2), listen + 1);
    } else {
        snprintf(host, sizeof(host), "%.*s", (int)hlen, listen);
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL)
        return -1;
    if (res->ai_addrlen <= sizeof(*addr)) {
        memcpy(addr, res->ai_addr, res->ai_addrlen);
        *len = res->ai_addrlen;
        rc = 0;
    }
    freeaddrinfo(res);
    return rc;
}

static bool problem(parse_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool problem(parse_state *st, const char *fmt, ...)
{
    va_list ap;

    if (st->problem[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(st->problem, sizeof(st->problem), fmt, ap);
        va_end(ap);
    }
    return false;
}

/* The per-department limits; false when name is not one of them (and
 * then problem is not set). */
static bool apply_limit(parse_state *st, const char *name, const char *value,
                        bool *known)
{
    broker_config *cfg = st->cfg;
    unsigned long long n;

    *known = true;
    if (strcmp(name, "max_connections_per_department") == 0) {
        if (!parse_number(value, 1, MAX_CONNECTIONS, &n))
            return problem(st, "max_connections_per_department must be 1 "
                           "to %d", MAX_CONNECTIONS);
        cfg->max_connections_per_department = (unsigned)n;
        return true;
    }
    if (strcmp(name, "pending_kb") == 0) {
        if (!parse_number(value, MIN_PENDING_KB, MAX_PENDING_KB, &n))
            return problem(st, "pending_kb must be %d to %llu KiB",
                           MIN_PENDING_KB, MAX_PENDING_KB);
        cfg->pending_kb = (size_t)n;
        return true;
    }
    if (strcmp(name, "department_pending_kb") == 0) {
        if (!parse_number(value, 1, MAX_PENDING_KB, &n))
            return problem(st, "department_pending_kb must be 1 to %llu "
                           "KiB", MAX_PENDING_KB);
        cfg->department_pending_kb = (size_t)n;
        return true;
    }
    if (strcmp(name, "max_logged_refusals_per_department") == 0) {
        if (!parse_number(value, 1, MAX_LOGGED_REFUSALS, &n))
            return problem(st, "max_logged_refusals_per_department must be "
                           "1 to %d", MAX_LOGGED_REFUSALS);
        cfg->max_logged_refusals_per_department = (unsigned)n;
        return true;
    }
    if (strcmp(name, "logged_refusals_window_seconds") == 0) {
        if (!parse_number(value, 1, MAX_LOGGED_REFUSALS_WINDOW_SECONDS, &n))
            return problem(st, "logged_refusals_window_seconds must be 1 "
                           "to %d", MAX_LOGGED_REFUSALS_WINDOW_SECONDS);
        cfg->logged_refusals_window_seconds = (unsigned)n;
        return true;
    }
    *known = false;
    return false;
}

static bool apply_setting(parse_state *st, const char *name, const char *value)
{
    broker_config *cfg = st->cfg;
    unsigned long long n;

    if (strcmp(name, "name") == 0) {
        if (!policy_valid_name(value))
            return problem(st, "name must be 1 to %d characters of a-z 0-9 "
                           ". _ - starting with a letter or digit",
                           ONCE_MAX_NAME);
        return copy_text(cfg->name, sizeof(cfg->name), value);
    }
    if (strcmp(name, "listen") == 0) {
        if (!config_endpoint_is_valid(value))
            return problem(st, "listen must be a ZeroMQ endpoint such as "
                           CONFIG_DEFAULT_LISTEN " or "
                           "ipc:///run/once/broker.sock");
        return copy_text(cfg->listen, sizeof(cfg->listen), value);
    }
    if (strcmp(name, "console_listen") == 0) {
        struct sockaddr_storage addr;
        socklen_t len;

        if (value[0] != '\0' &&
            config_console_address(value, &addr, &len) < 0)
            return problem(st, "console_listen must be a numeric "
                           "ADDRESS:PORT such as "
                           CONFIG_DEFAULT_CONSOLE_LISTEN " or [::1]:7780, or "
                           "empty to turn the console off");
        return copy_text(cfg->console_listen, sizeof(cfg->console_listen),
                         value);
    }
    if (strcmp(name, "key") == 0) {
        if (value[0] == '\0' || !copy_text(st->raw_key, sizeof(st->raw_key),
                                           value))
            return problem(st, "key must be the path of the broker's "
                           "secret key file");
        return true;
    }
    if (strcmp(name, "database") == 0) {
        if (value[0] == '\0' ||
            !copy_text(st->raw_database, sizeof(st->raw_database), value))
            return problem(st, "database must be a directory path");
        return true;
    }
    if (strcmp(name, "map_size_mb") == 0) {
        if (!parse_number(value, 1, SIZE_MAX >> 20, &n))
            return problem(st, "map_size_mb must be a positive number of "
                           "MiB");
        cfg->map_size_mb = (size_t)n;
        return true;
    }
    /* The share of the map at which publishes stop, so that requests
     * and their log leaves go on in the rest (writer.c); 100 lets
     * publishes fill the map. */
    if (strcmp(name, "high_water_percent") == 0) {
        if (!parse_number(value, 10, 100, &n))
            return problem(st, "high_water_percent must be 10 to 100");
        cfg->high_water_percent = (unsigned)n;
        return true;
    }
    if (strcmp(name, "workers") == 0) {
        if (!parse_number(value, 0, CONFIG_MAX_WORKERS, &n))
            return problem(st, "workers must be 0 (one per CPU) to %d",
                           CONFIG_MAX_WORKERS);
        st->workers_setting = (unsigned)n;
        return true;
    }
    if (strcmp(name, "skew_seconds") == 0) {
        if (!parse_number(value, 1, MAX_SKEW_SECONDS, &n))
            return problem(st, "skew_seconds must be 1 to %d",
                           MAX_SKEW_SECONDS);
        cfg->skew_seconds = (unsigned)n;
        return true;
    }
    if (strcmp(name, "group_commit_max") == 0) {
        if (!parse_number(value, 1, MAX_GROUP_COMMIT, &n))
            return problem(st, "group_commit_max must be 1 to %d",
                           MAX_GROUP_COMMIT);
        cfg->group_commit_max = (unsigned)n;
        return true;
    }
    if (strcmp(name, "checkpoint_interval_ms") == 0) {
        if (!parse_number(value, 0, MAX_CHECKPOINT_INTERVAL_MS, &n))
            return problem(st, "checkpoint_interval_ms must be 0 (after "
                           "every commit) to %d", MAX_CHECKPOINT_INTERVAL_MS);
        cfg->checkpoint_interval_ms = (unsigned)n;
        return true;
    }
    if (strcmp(name, "max_sessions_per_department") == 0) {
        if (!parse_number(value, 1, CONFIG_MAX_SESSIONS, &n))
            return problem(st, "max_sessions_per_department must be 1 to %d",
                           CONFIG_MAX_SESSIONS);
        cfg->max_sessions_per_department = (unsigned)n;
        return true;
    }
    if (strcmp(name, "max_in_flight_per_department") == 0) {
        if (!parse_number(value, 1, MAX_IN_FLIGHT_PER_DEPARTMENT, &n))
            return problem(st, "max_in_flight_per_department must be 1 to %d",
                           MAX_IN_FLIGHT_PER_DEPARTMENT);
        cfg->max_in_flight_per_department = (unsigned)n;
        return true;
    }
    if (strcmp(name, "log_level") == 0) {
        if (diag_level_parse(value, &cfg->diag_level) < 0)
            return problem(st, "log_level must be error, warn, info or "
                           "debug");
        return true;
    }
    if (strcmp(name, "audit_key") == 0) {
        if (value[0] == '\0' ||
            !copy_text(st->raw_audit_key, sizeof(st->raw_audit_key), value))
            return problem(st, "audit_key must be the path of the audit key "
                           "file");
        return true;
    }
    if (strcmp(name, "log_origin") == 0) {
        if (!checkpoint_origin_is_valid(value))
            return problem(st, "log_origin must be 1 to %d printable ASCII "
                           "characters without spaces, '+', ';' or '#'",
                           CHECKPOINT_MAX_ORIGIN);
        return copy_text(cfg->log_origin, sizeof(cfg->log_origin), value);
    }
    {
        bool known, ok = apply_limit(st, name, value, &known);

        if (known)
            return ok;
    }
    return problem(st, "unknown setting '%s' in [broker]", name);
}

/* inih calls this for every name = value line; 0 marks the line bad. */
static int ini_entry(void *user, const char *section, const char *name,
                     const char *value)
{
    parse_state *st = user;

    if (strcmp(section, "broker") != 0)
        return problem(st, "unknown section [%s]; onced reads [broker]",
                       section);
    return apply_setting(st, name, value) ? 1 : 0;
}

/* dir/rel, or rel when it is absolute. */
static bool resolve_path(char *out, size_t cap, const char *dir,
                         const char *rel)
{
    int n;

    if (rel[0] == '/')
        n = snprintf(out, cap, "%s", rel);
    else
        n = snprintf(out, cap, "%s/%s", dir, rel);
    return n >= 0 && (size_t)n < cap;
}

static void set_defaults(broker_config *cfg, parse_state *st)
{
    memset(cfg, 0, sizeof(*cfg));
    memset(st, 0, sizeof(*st));
    st->cfg = cfg;
    strcpy(cfg->name, CONFIG_DEFAULT_NAME);
    strcpy(cfg->listen, CONFIG_DEFAULT_LISTEN);
    strcpy(cfg->console_listen, CONFIG_DEFAULT_CONSOLE_LISTEN);
    strcpy(st->raw_key, DEFAULT_KEY);
    strcpy(st->raw_database, DEFAULT_DATABASE);
    strcpy(st->raw_audit_key, DEFAULT_AUDIT_KEY);
    cfg->map_size_mb = CONFIG_DEFAULT_MAP_SIZE_MB;
    cfg->high_water_percent = CONFIG_DEFAULT_HIGH_WATER_PERCENT;
    cfg->skew_seconds = DEFAULT_SKEW_SECONDS;
    cfg->group_commit_max = DEFAULT_GROUP_COMMIT_MAX;
    cfg->checkpoint_interval_ms = DEFAULT_CHECKPOINT_INTERVAL_MS;
    cfg->max_sessions_per_department = DEFAULT_MAX_SESSIONS_PER_DEPARTMENT;
    cfg->max_in_flight_per_department = DEFAULT_MAX_IN_FLIGHT_PER_DEPARTMENT;
    cfg->diag_level = DIAG_LEVEL_INFO;
    cfg->max_connections_per_department = DEFAULT_MAX_CONNECTIONS;
    cfg->pending_kb = DEFAULT_PENDING_KB;
    cfg->department_pending_kb = DEFAULT_DEPARTMENT_PENDING_KB;
    cfg->max_logged_refusals_per_department = DEFAULT_MAX_LOGGED_REFUSALS;
    cfg->logged_refusals_window_seconds =
        DEFAULT_LOGGED_REFUSALS_WINDOW_SECONDS;
}

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        return 1;
    if (n > CONFIG_MAX_WORKERS)
        return CONFIG_MAX_WORKERS;
    return (unsigned)n;
}

/* Reads the file into cfg; 0, or -1 with why filled. A missing file is an
 * error only when it was named with --config. */
static int read_file(parse_state *st, const char *path, bool must_exist,
                     char *why, size_t why_cap)
{
    struct stat sb;
    int rc;

    if (stat(path, &sb) < 0) {
        if (errno == ENOENT && !must_exist)
            return 0;
        snprintf(why, why_cap, "cannot read configuration %s: %s", path,
                 strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(why, why_cap, "configuration %s is not a file", path);
        return -1;
    }
    rc = ini_parse(path, ini_entry, st);
    if (rc < 0) {
        snprintf(why, why_cap, "cannot read configuration %s: %s", path,
                 rc == -1 ? strerror(errno) : "out of memory");
        return -1;
    }
    if (rc > 0) {
        snprintf(why, why_cap, "%s line %d: %s", path, rc,
                 st->problem[0] != '\0' ? st->problem : "syntax error");
        return -1;
    }
    if (!copy_text(st->cfg->config_path, sizeof(st->cfg->config_path),
                   path)) {
        snprintf(why, why_cap, "configuration path too long");
        return -1;
    }
    return 0;
}

/* Turns the file's paths into paths from cfg->home and fills in what
 * defaults to other settings. */
static int finish(broker_config *cfg, const parse_state *st, char *why,
                  size_t why_cap)
{
    if (!resolve_path(cfg->key_path, sizeof(cfg->key_path), cfg->home,
                      st->raw_key) ||
        !resolve_path(cfg->database, sizeof(cfg->database), cfg->home,
                      st->raw_database) ||
        !resolve_path(cfg->audit_key_path, sizeof(cfg->audit_key_path),
                      cfg->home, st->raw_audit_key)) {
        snprintf(why, why_cap, "key, database or audit key path too long");
        return -1;
    }
    /* The log is named after the broker unless once.conf says otherwise,
     * as oncectl init does. */
    if (cfg->log_origin[0] == '\0')
        snprintf(cfg->log_origin, sizeof(cfg->log_origin), "%s", cfg->name);
    cfg->workers = st->workers_setting != 0 ? st->workers_setting
                                            : online_cpus();
    if (cfg->department_pending_kb > cfg->pending_kb) {
        snprintf(why, why_cap, "department_pending_kb (%zu) must not be "
                 "above pending_kb (%zu)", cfg->department_pending_kb,
                 cfg->pending_kb);
        return -1;
    }
    return 0;
}

/* HOME/once.conf read into a fresh cfg, relative to HOME. */
static int read_home(broker_config *cfg, parse_state *st, const char *home,
                     char *why, size_t why_cap)
{
    char path[PATH_MAX];

    set_defaults(cfg, st);
    if (!copy_text(cfg->home, sizeof(cfg->home), home) ||
        !resolve_path(path, sizeof(path), home, "once.conf")) {
        snprintf(why, why_cap, "home path too long");
        return -1;
    }
    return read_file(st, path, false, why, why_cap);
}

int config_read_home(broker_config *cfg, const char *home, char *why,
                     size_t why_cap)
{
    parse_state st;

    if (read_home(cfg, &st, home, why, why_cap) < 0)
        return -1;
    return finish(cfg, &st, why, why_cap);
}

config_result config_load(broker_config *cfg, int argc, char **argv)
{
    static const struct option options[] = {
        { "home", required_argument, NULL, 'H' },
        { "config", required_argument, NULL, 'c' },
        { "listen", required_argument, NULL, 'l' },
        { "console-listen", required_argument, NULL, 'C' },
        { "workers", required_argument, NULL, 'w' },
        { "log-level", required_argument, NULL, 'L' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *home = NULL, *config = NULL, *listen = NULL;
    const char *workers = NULL, *level = NULL, *console_listen = NULL;
    char why[PATH_MAX + 256];
    unsigned long long n;
    parse_state st;
    int opt, rc;

    set_defaults(cfg, &st);
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":hV", options, NULL)) != -1) {
        switch (opt) {
        case 'H': home = optarg; break;
        case 'c': config = optarg; break;
        case 'l': listen = optarg; break;
        case 'C': console_listen = optarg; break;
        case 'w': workers = optarg; break;
        case 'L': level = optarg; break;
        case 'h':
            fputs(usage_text, stdout);
            return CONFIG_EXIT;
        case 'V':
            printf("onced %s\n", ONCE_VERSION);
            return CONFIG_EXIT;
        case ':':
            return usage_error("option %s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (home != NULL && config != NULL)
        return usage_error("give --home or --config, not both");

    if (config != NULL) {
        const char *slash = strrchr(config, '/');

        if (slash == NULL)
            strcpy(cfg->home, ".");
        else if (slash == config)
            strcpy(cfg->home, "/");
        else if ((size_t)(slash - config) < sizeof(cfg->home))
            snprintf(cfg->home, sizeof(cfg->home), "%.*s",
                     (int)(slash - config), config);
        else
            return usage_error("configuration path too long");
        rc = read_file(&st, config, true, why, sizeof(why));
    } else {
        if (home == NULL)
            home = getenv("ONCE_HOME");
        if (home == NULL || home[0] == '\0')
            home = CONFIG_DEFAULT_HOME;
        rc = read_home(cfg, &st, home, why, sizeof(why));
    }
    if (rc < 0)
        return usage_error("%s", why);

    /* The command line wins over the file. */
    st.problem[0] = '\0';
    if (listen != NULL && !apply_setting(&st, "listen", listen))
        return usage_error("--listen: %s", st.problem);
    if (console_listen != NULL &&
        !apply_setting(&st, "console_listen", console_listen))
        return usage_error("--console-listen: %s", st.problem);
    if (workers != NULL) {
        if (!parse_number(workers, 0, CONFIG_MAX_WORKERS, &n))
            return usage_error("--workers must be 0 (one per CPU) to %d",
                               CONFIG_MAX_WORKERS);
        st.workers_setting = (unsigned)n;
    }
    if (level != NULL && diag_level_parse(level, &cfg->diag_level) < 0)
        return usage_error("--log-level must be error, warn, info or debug");
    if (finish(cfg, &st, why, sizeof(why)) < 0)
        return usage_error("%s", why);
    return CONFIG_RUN;
}
