/*
 * oncectl.c - the operator's tool for a once broker home.
 *
 *     oncectl [--home HOME] COMMAND [ARGS]
 *
 * A broker home is a directory (mode 0700) holding once.conf, the broker's
 * key pair, the audit key and the LMDB database. `init` makes one; `keygen`
 * makes a department's key pair; `dept`, `type` and `grant` change the
 * policy tables in the database; `log status` and `log export` read the
 * exchange log in it. The console's commands (`console token`, `status`,
 * `top`) are in oncectl_console.c: `status` and `top` are the one
 * exception to "oncectl talks to the database", since they show what only
 * the running broker knows, through its console API.
 *
 * oncectl talks to the database, not to the broker. onced reads policy in
 * each request's read transaction, and LMDB lets the two processes share
 * the environment (one writer at a time, readers never blocked), so a
 * department suspended or a grant revoked here is in force from the
 * broker's next request, with no restart, reload signal or admin socket to
 * secure. The database location and map size come from HOME/once.conf, the
 * file onced reads, so both processes open the same environment with the
 * same map size.
 *
 * The same holds for the exchange log: `log export` reads it in short
 * LMDB read transactions beside a running onced (broker/export.c), so an
 * auditor's copy never needs the broker stopped, and holds exactly the
 * tree of one signed checkpoint. oncectl never signs a checkpoint
 * itself: only the broker, which checks before every signature that it
 * never signs two roots for one size, does. So a log with nothing signed
 * yet has nothing to export, and `log export` says so instead of writing
 * a directory no auditor could verify.
 *
 * The storage modules (policy.c, store.c) do all validation that depends
 * on the database and say why they refuse; this file checks the command
 * line, so that a typo is a usage error (exit 2) that names the bad
 * argument, while a refusal by the database (an existing id, an unknown
 * issuer) is an operational error (exit 1). Every message goes to stderr
 * prefixed "oncectl: "; stdout carries only results, so lists and keygen's
 * public key can be piped.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit_hash.h"
#include "auditlog.h"
#include "checkpoint.h"
#include "config.h"
#include "file_io.h"
#include "export.h"
#include "oncectl_console.h"
#include "policy.h"
#include "store.h"
#include "text_fields.h"
#include "tlog_tiles.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2


/* A key prefix is enough to tell keys apart by eye and to compare with a
 * .pub file; the whole key is in that file. */
#define KEY_PREFIX_BYTES 8

typedef struct command command;
typedef int (*command_fn)(const command *cmd, int argc, char **argv);

struct command {
    const char *group;    /* "dept", "type", "grant", or NULL */
    const char *name;
    const char *synopsis; /* after "oncectl " */
    const char *summary;  /* one line for the global help */
    const char *help;     /* the command's own --help text */
    command_fn run;
};

/* The home every command works on: --home, else $ONCE_HOME, else
 * CONFIG_DEFAULT_HOME. */
static const char *home;
static bool home_given;

static void say_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void say_error(const char *fmt, ...)
{
    va_list ap;

    fputs("oncectl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const char *command_word(const command *cmd, char *buf, size_t cap)
{
    if (cmd->group != NULL)
        snprintf(buf, cap, "%s %s", cmd->group, cmd->name);
    else
        snprintf(buf, cap, "%s", cmd->name);
    return buf;
}

static int usage_error(const command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints the problem and the command's synopsis; returns EXIT_USAGE. */
static int usage_error(const command *cmd, const char *fmt, ...)
{
    char word[32];
    va_list ap;

    fputs("oncectl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fprintf(stderr, "usage: oncectl [--home HOME] %s\n", cmd->synopsis);
    fprintf(stderr, "Try 'oncectl %s --help' for more.\n",
            command_word(cmd, word, sizeof(word)));
    return EXIT_USAGE;
}

static void print_command_help(const command *cmd)
{
    printf("usage: oncectl [--home HOME] %s\n\n%s", cmd->synopsis, cmd->help);
}

enum { OPT_END = -1, OPT_HELP = -2, OPT_BAD = -3 };

/* One getopt_long step with the messages and exit codes of this tool. -h
 * and --help are accepted by every command. */
static int next_option(const command *cmd, int argc, char **argv,
                       const struct option *longopts)
{
    int c = getopt_long(argc, argv, ":h", longopts, NULL);

    switch (c) {
    case 'h':
        print_command_help(cmd);
        return OPT_HELP;
    case '?':
        if (optopt != 0)
            usage_error(cmd, "unknown option '-%c'", optopt);
        else
            usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        return OPT_BAD;
    case ':':
        usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        return OPT_BAD;
    default:
        return c;
    }
}

/* Commands without options still take --help; returns OPT_END when only
 * positional arguments are left. */
static int no_options(const command *cmd, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    optind = 0;
    while ((c = next_option(cmd, argc, argv, longopts)) != OPT_END)
        if (c == OPT_HELP || c == OPT_BAD)
            return c;
    return OPT_END;
}

/* Checks the number of positional arguments left after the options. */
static int expect_args(const command *cmd, int argc, char **argv, int min,
                       int max, const char *what)
{
    int n = argc - optind;

    if (n < min)
        return usage_error(cmd, "missing %s", what);
    if (n > max)
        return usage_error(cmd, "unexpected argument '%s'",
                           argv[optind + max]);
    return 0;
}

static int check_name(const command *cmd, const char *what, const char *name)
{
    if (policy_valid_name(name))
        return 0;
    return usage_error(cmd, "invalid %s '%s': use 1 to %d characters of "
                       "a-z 0-9 . _ - starting with a letter or digit",
                       what, name, ONCE_MAX_NAME);
}

/* Appends the comma-separated names in arg to list (count entries so far,
 * at most max); each must follow the name rule. */
static int split_names(const command *cmd, const char *option,
                       const char *arg, char (*list)[ONCE_MAX_NAME + 1],
                       size_t *count, size_t max)
{
    const char *p = arg;

    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        if (len == 0)
            return usage_error(cmd, "empty name in %s '%s'", option, arg);
        if (*count == max)
            return usage_error(cmd, "%s takes at most %zu names", option,
                               max);
        if (len > ONCE_MAX_NAME)
            return usage_error(cmd, "name '%.*s' in %s is longer than %d "
                               "characters", (int)len, p, option,
                               ONCE_MAX_NAME);
        memcpy(list[*count], p, len);
        list[*count][len] = '\0';
        if (!policy_valid_name(list[*count]))
            return usage_error(cmd, "invalid name '%s' in %s: use 1 to %d "
                               "characters of a-z 0-9 . _ - starting with a "
                               "letter or digit", list[*count], option,
                               ONCE_MAX_NAME);
        (*count)++;
        if (end == NULL)
            return 0;
        p = end + 1;
    }
}

static int join_path(char *out, size_t cap, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, cap, "%s/%s", dir, name) >= cap) {
        say_error("path %s/%s is too long", dir, name);
        return -1;
    }
    return 0;
}

/* ---- the database of a broker home ------------------------------------- */

/* Opens the database of the home, as onced would. A home without one is an
 * error rather than a new empty database: that would hide a wrong --home. */
static int open_home_store(store *s)
{
    char why[PATH_MAX + 256];
    broker_config cfg;
    once_error err;
    struct stat st;

    if (stat(home, &st) < 0) {
        say_error("no broker home at %s (%s); create one with 'oncectl "
                  "--home %s init', or give --home or ONCE_HOME", home,
                  strerror(errno), home);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        say_error("broker home %s is not a directory", home);
        return -1;
    }
    /* Without a once.conf the defaults apply, as for onced --home. */
    if (config_read_home(&cfg, home, why, sizeof(why)) < 0) {
        say_error("%s", why);
        return -1;
    }
    if (stat(cfg.database, &st) < 0 || !S_ISDIR(st.st_mode)) {
        say_error("no database at %s; is %s a broker home? create one with "
                  "'oncectl --home %s init'", cfg.database, home, home);
        return -1;
    }
    if (store_open(s, cfg.database, cfg.map_size_mb << 20, &err) < 0) {
        say_error("%s", err.message);
        return -1;
    }
    return 0;
}

/* Runs op in one transaction on the home's database and commits it when
 * the transaction is writable. Prints the error and returns EXIT_FAILED
 * when anything fails. */
typedef int (*txn_fn)(MDB_txn *txn, const store *s, void *arg,
                      once_error *err);

static int with_database(int read_only, txn_fn op, void *arg)
{
    once_error err;
    MDB_txn *txn;
    store s;
    int rc;

    if (open_home_store(&s) < 0)
        return EXIT_FAILED;
    rc = store_begin(&s, read_only, &txn, &err);
    if (rc == 0) {
        rc = op(txn, &s, arg, &err);
        if (rc != 0 || read_only)
            mdb_txn_abort(txn);
        else
            rc = store_commit(txn, &err);
    }
    store_close(&s);
    if (rc < 0) {
        say_error("%s", err.message);
        return EXIT_FAILED;
    }
    return rc > 0 ? EXIT_FAILED : EXIT_SUCCESS;
}

/* A list command: no options, no arguments, one read transaction. */
static int run_list(const command *cmd, int argc, char **argv, txn_fn list)
{
    int rc;

    if ((rc = no_options(cmd, argc, argv)) != OPT_END)
        return rc == OPT_HELP ? EXIT_SUCCESS : EXIT_USAGE;
    if ((rc = expect_args(cmd, argc, argv, 0, 0, "")) != 0)
        return rc;
    return with_database(1, list, NULL);
}

/* ---- init ---------------------------------------------------------------- */

static const char config_template[] =
    "# once broker configuration, written by 'oncectl init'.\n"
    "# onced reads it ('onced --home' this file's directory); oncectl reads\n"
    "# database and map_size_mb from it. Relative paths are relative to this\n"
    "# file's directory. Restart onced after changing it.\n"
    "\n"
    "[broker]\n"
    "# The broker's name: the sender of its replies.\n"
    "name = %s\n"
    "# ZeroMQ endpoint the broker binds: tcp://ADDRESS:PORT or ipc://PATH.\n"
    "listen = %s\n"
    "# The broker's secret key (mode 0600); its public half is broker.pub,\n"
    "# which departments need to connect.\n"
    "key = broker.key\n"
    "# The LMDB database directory.\n"
    "database = db\n"
    "# Most the database can hold, in MiB. When a publish is refused with\n"
    "# STORAGE_FULL, raise it and restart onced.\n"
    "map_size_mb = %d\n"
    "# Publishes stop (STORAGE_FULL) once this share of map_size_mb is in\n"
    "# use, so requests and their log leaves go on in the rest.\n"
    "high_water_percent = 90\n"
    "# Threads verifying signatures and answering reads; 0 = one per CPU.\n"
    "workers = 0\n"
    "# Largest accepted difference, in seconds, between a sender's clock\n"
    "# and the broker's.\n"
    "skew_seconds = 300\n"
    "# Most publishes made durable by one LMDB commit (one fsync).\n"
    "group_commit_max = 256\n"
    "# Each department's share of the broker (docs/PROTOCOL.md 6.4): the\n"
    "# sessions remembered for it (each until idle for twice skew_seconds)\n"
    "# and its envelopes being answered at once. Over them, only that\n"
    "# department is refused, with QUOTA_EXCEEDED.\n"
    "max_sessions_per_department = 4096\n"
    "max_in_flight_per_department = 1024\n"
    "# Refusals of one department the exchange log takes: this many at\n"
    "# once, refilled at as many per logged_refusals_window_seconds. Over\n"
    "# it a refusal is answered QUOTA_EXCEEDED and not logged (grants,\n"
    "# NOT_FOUND and STALE_VERSION always are).\n"
    "max_logged_refusals_per_department = 60\n"
    "logged_refusals_window_seconds = 60\n"
    "# error, warn, info or debug.\n"
    "log_level = info\n"
    "\n"
    "# The exchange log (docs/AUDIT.md).\n"
    "# The audit key (32 random bytes, mode 0600) keys the hash that stands\n"
    "# for a subject's credit code or ID number in every log leaf, so that\n"
    "# the log never holds the number itself and nobody without the key can\n"
    "# tell whose exchanges a leaf records. Keep it as secret as broker.key\n"
    "# and back it up with it. The auditor who answers citizens' access\n"
    "# requests ('once-audit subject') needs a copy. Never replace it: the\n"
    "# leaves already logged stay hashed under the old key, and a lost key\n"
    "# makes them unsearchable for good.\n"
    "audit_key = audit.key\n"
    "# The log's name: the first line (origin) of every checkpoint the broker\n"
    "# signs, and the key name of the signature on it (C2SP tlog-checkpoint).\n"
    "# Auditors check every checkpoint under this one name, so settle it\n"
    "# before onced first starts and never change it afterwards. A name no\n"
    "# other log uses, such as once.example.gov/exchange-log, is best;\n"
    "# printable ASCII without spaces or '+'.\n"
    "log_origin = %s\n"
    "# Every committed leaf is under a signed checkpoint within this many\n"
    "# milliseconds; an answer that asks for a proof gets one at once.\n"
    "# 0 signs a checkpoint after every commit (more for auditors to check).\n"
    "checkpoint_interval_ms = 1000\n"
    "\n"
    "# The operator's console (HTTP): /metrics for Prometheus, /healthz and\n"
    "# /readyz, the JSON API under /api/v1/ and the dashboard at /. Read-\n"
    "# only; everything but the health checks and the page needs the token\n"
    "# in console.token. ADDRESS:PORT; empty turns it off. Keep it on\n"
    "# loopback or a management network.\n"
    "console_listen = " CONFIG_DEFAULT_CONSOLE_LISTEN "\n";

/* Never through anything already at path, a planted link included. */
static int write_new_file(const char *path, const char *text, mode_t mode)
{
    int rc = file_create_new(path, text, strlen(text), mode);

    if (rc < 0) {
        say_error("cannot create %s: %s", path, strerror(-rc));
        return -1;
    }
    return 0;
}

/* Removes an LMDB directory made by this run of init. */
static void remove_database(const char *db)
{
    char path[PATH_MAX + 16];

    snprintf(path, sizeof(path), "%s/data.mdb", db);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", db);
    unlink(path);
    rmdir(db);
}

/* The audit key is a secret like a key seed and has the secret key file
 * format (audit_key_load reads it as one), so it is saved as the seed of a
 * key pair made from 32 random bytes; no public half is written. */
static int write_audit_key(const char *path)
{
    uint8_t seed[AUDIT_KEY_BYTES];
    once_keypair kp;
    once_error err;
    int rc;

    randombytes_buf(seed, sizeof(seed));
    rc = once_keypair_from_seed(&kp, seed);
    sodium_memzero(seed, sizeof(seed));
    if (rc < 0)
        once_error_set(&err, ONCE_ERR_CRYPTO, "cannot make the audit key");
    else
        rc = once_keypair_save(&kp, path, NULL, &err);
    once_keypair_wipe(&kp);
    if (rc < 0) {
        say_error("%s", err.message);
        return -1;
    }
    return 0;
}

static int cmd_init(const command *cmd, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "name", required_argument, NULL, 'n' },
        { "log-origin", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *listen = CONFIG_DEFAULT_LISTEN, *name = CONFIG_DEFAULT_NAME;
    const char *origin = NULL;
    char conf[PATH_MAX], key[PATH_MAX], pub[PATH_MAX], db[PATH_MAX];
    char audit_key[PATH_MAX];
    char text[sizeof(config_template) + 1024];
    char hex[2 * ONCE_PUBLIC_KEY_BYTES + 1];
    bool made_home = false, made_keys = false, made_audit_key = false;
    bool made_token = false;
    bool made_db = false;
    struct stat st;
    once_keypair kp;
    once_error err;
    store s;
    int c, rc;

    optind = 0;
    while ((c = next_option(cmd, argc, argv, longopts)) != OPT_END) {
        switch (c) {
        case OPT_HELP:
            return EXIT_SUCCESS;
        case OPT_BAD:
            return EXIT_USAGE;
        case 'l':
            listen = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'o':
            origin = optarg;
            break;
        }
    }
    if ((rc = expect_args(cmd, argc, argv, 0, 1, "")) != 0)
        return rc;
    if (optind < argc) {
        if (home_given && strcmp(home, argv[optind]) != 0)
            return usage_error(cmd, "two homes given: --home %s and %s",
                               home, argv[optind]);
        home = argv[optind];
    }
    if (!config_endpoint_is_valid(listen))
        return usage_error(cmd, "invalid --listen '%s': give a ZeroMQ "
                           "endpoint such as %s", listen,
                           CONFIG_DEFAULT_LISTEN);
    if (!policy_valid_name(name))
        return usage_error(cmd, "invalid --name '%s': use 1 to %d characters "
                           "of a-z 0-9 . _ - starting with a letter or digit",
                           name, ONCE_MAX_NAME);
    /* A broker name is always a valid origin. */
    if (origin == NULL)
        origin = name;
    if (!checkpoint_origin_is_valid(origin))
        return usage_error(cmd, "invalid --log-origin '%s': use 1 to %d "
                           "printable ASCII characters without spaces, '+', "
                           "';' or '#', such as once.example.gov/exchange-log",
                           origin, CHECKPOINT_MAX_ORIGIN);
    if (join_path(conf, sizeof(conf), home, "once.conf") < 0 ||
        join_path(key, sizeof(key), home, "broker.key") < 0 ||
        join_path(pub, sizeof(pub), home, "broker.pub") < 0 ||
        join_path(audit_key, sizeof(audit_key), home, "audit.key") < 0 ||
        join_path(db, sizeof(db), home, "db") < 0)
        return EXIT_FAILED;
    if (lstat(conf, &st) == 0) {
        say_error("%s already exists: %s is a broker home already; "
                  "refusing to overwrite it", conf, home);
        return EXIT_FAILED;
    }

    if (mkdir(home, 0700) == 0) {
        made_home = true;
    } else if (errno != EEXIST || stat(home, &st) < 0 ||
               !S_ISDIR(st.st_mode)) {
        say_error("cannot create %s: %s", home,
                  errno == EEXIST ? "it exists and is not a directory"
                                  : strerror(errno));
        return EXIT_FAILED;
    }

    if (once_keypair_generate(&kp) < 0) {
        say_error("cannot generate the broker key");
        goto fail;
    }
    rc = once_keypair_save(&kp, key, pub, &err);
    once_hex_encode(hex, kp.public_key, ONCE_PUBLIC_KEY_BYTES);
    once_keypair_wipe(&kp);
    if (rc < 0) {
        say_error("%s", err.message);
        goto fail;
    }
    made_keys = true;

    if (write_audit_key(audit_key) < 0)
        goto fail;
    made_audit_key = true;

    if (oncectl_console_token_write(home, false) < 0)
        goto fail;
    made_token = true;

    if (lstat(db, &st) == 0) {
        say_error("%s already exists; refusing to reuse a database in a new "
                  "home", db);
        goto fail;
    }
    if (store_open(&s, db, (size_t)CONFIG_DEFAULT_MAP_SIZE_MB << 20,
                   &err) < 0) {
        say_error("%s", err.message);
        goto fail;
    }
    made_db = true;
    store_close(&s);

    snprintf(text, sizeof(text), config_template, name, listen,
             CONFIG_DEFAULT_MAP_SIZE_MB, origin);
    if (write_new_file(conf, text, 0644) < 0)
        goto fail;

    printf("created broker home %s\n"
           "  config       %s\n"
           "  broker key   %s (public key in %s)\n"
           "  audit key    %s\n"
           "  database     %s\n"
           "  listen       %s\n"
           "  log origin   %s\n"
           "broker public key: %s\n",
           home, conf, key, pub, audit_key, db, listen, origin, hex);
    return EXIT_SUCCESS;

fail:
    /* Leave nothing half made, so that init can simply be run again. */
    if (made_db)
        remove_database(db);
    if (made_audit_key)
        unlink(audit_key);
    if (made_token) {
        char token[PATH_MAX];

        if (join_path(token, sizeof(token), home, "console.token") == 0)
            unlink(token);
    }
    if (made_keys) {
        unlink(pub);
        unlink(key);
    }
    if (made_home)
        rmdir(home);
    return EXIT_FAILED;
}

/* ---- the console (oncectl_console.c) --------------------------------------- */

static int cmd_console_token(const command *cmd, int argc, char **argv)
{
    int rc = no_options(cmd, argc, argv);

    if (rc != OPT_END)
        return rc == OPT_HELP ? EXIT_SUCCESS : EXIT_USAGE;
    if ((rc = expect_args(cmd, argc, argv, 0, 0, "")) != 0)
        return rc;
    return oncectl_console_token(home);
}

static int cmd_status(const command *cmd, int argc, char **argv)
{
    int rc = no_options(cmd, argc, argv);

    if (rc != OPT_END)
        return rc == OPT_HELP ? EXIT_SUCCESS : EXIT_USAGE;
    if ((rc = expect_args(cmd, argc, argv, 0, 0, "")) != 0)
        return rc;
    return oncectl_status(home);
}

static int cmd_top(const command *cmd, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "iterations", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    unsigned long long n = 0;
    char *end;
    int c, rc;

    optind = 0;
    while ((c = next_option(cmd, argc, argv, longopts)) != OPT_END) {
        if (c == OPT_HELP)
            return EXIT_SUCCESS;
        if (c == OPT_BAD)
            return EXIT_USAGE;
        errno = 0;
        n = strtoull(optarg, &end, 10);
        if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' ||
            errno != 0 || n > 1000000)
            return usage_error(cmd, "--iterations takes 0 to 1000000");
    }
    if ((rc = expect_args(cmd, argc, argv, 0, 0, "")) != 0)
        return rc;
    return oncectl_top(home, 2000, (unsigned)n);
}

/* ---- keygen -------------------------------------------------------------- */

static int cmd_keygen(const command *cmd, int argc, char **argv)
{
    char pub[PATH_MAX], hex[2 * ONCE_PUBLIC_KEY_BYTES + 1];
    once_keypair kp;
    once_error err;
    int rc;

    if ((rc = no_options(cmd, argc, argv)) != OPT_END)
        return rc == OPT_HELP ? EXIT_SUCCESS : EXIT_USAGE;
    if ((rc = expect_args(cmd, argc, argv, 1, 1, "OUT, the key file to "
                          "write")) != 0)
        return rc;
    if ((size_t)snprintf(pub, sizeof(pub), "%s.pub", argv[optind]) >=
        sizeof(pub)) {
        say_error("path %s is too long", argv[optind]);
        return EXIT_FAILED;
    }
    if (once_keypair_generate(&kp) < 0) {
        say_error("cannot generate a key");
        return EXIT_FAILED;
    }
    rc = once_keypair_save(&kp, argv[optind], pub, &err);
    once_hex_encode(hex, kp.public_key, ONCE_PUBLIC_KEY_BYTES);
    once_keypair_wipe(&kp);
    if (rc < 0) {
        say_error("%s", err.message);
        return EXIT_FAILED;
    }
    printf("%s\n", hex);
    return EXIT_SUCCESS;
}

/* ---- dept ---------------------------------------------------------------- */

typedef struct dept_add_args {
    const char *id;
    const char *name;
    uint8_t public_key[ONCE_PUBLIC_KEY_BYTES];
} dept_add_args;

static int dept_add_txn(MDB_txn *txn, const store *s, void *arg,
                        once_error *err)
{
    dept_add_args *a = arg;

    return policy_department_add(txn, s, a->id, a->name, a->public_key, err);
}

static int cmd_dept_add(const command *cmd, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "key", required_argument, NULL, 'k' },
        { "name", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char hex[2 * KEY_PREFIX_BYTES + 1];
    const char *key_file = NULL;
    dept_add_args a = { NULL, NULL, { 0 } };
    once_error err;
    int c, rc;

    optind = 0;
    while ((c = next_option(cmd, argc, argv, longopts)) != OPT_END) {
        switch (c) {
        case OPT_HELP:
            return EXIT_SUCCESS;
        case OPT_BAD:
            return EXIT_USAGE;
        case 'k':
            key_file = optarg;
            break;
        case 'n':
            a.name = optarg;
            break;
        }
    }
    if ((rc = expect_args(cmd, argc, argv, 1, 1, "ID, the department id")))
        return rc;
    a.id = argv[optind];
    if ((rc = check_name(cmd, "department id", a.id)) != 0)
        return rc;
    if (key_file == NULL)
        return usage_error(cmd, "missing --key PUBFILE, the department's "
                           "public key file (from 'oncectl keygen')");
    if (once_public_key_load(a.public_key, key_file, &err) < 0) {
        say_error("%s", err.message);
        return EXIT_FAILED;
    }
    rc = with_database(0, dept_add_txn, &a);
    if (rc == EXIT_SUCCESS) {
        once_hex_encode(hex, a.public_key, KEY_PREFIX_BYTES);
        printf("added department %s (key %s)\n", a.id, hex);
    }
    return rc;
}

/* The list commands measure their columns in a first pass. */
static void widen(int *width, const char *text)
{
    int len = (int)strlen(text);

    if (len > *width)
        *width = len;
}

typedef struct dept_widths {
    int id;
} dept_widths;

static int dept_measure(const department *d, void *arg)
{
    dept_widths *w = arg;

    widen(&w->id, d->id);
    return 0;
}

static const char *status_name(department_status status)
{
    return status == DEPARTMENT_ACTIVE ? "active" : "suspended";
}

static int dept_print(const department *d, void *arg)
{
    const dept_widths *w = arg;
    char hex[2 * KEY_PREFIX_BYTES + 1];

    once_hex_encode(hex, d->public_key, KEY_PREFIX_BYTES);
    printf("%-*s  %-9s  %-16s  %s\n", w->id, d->id, status_name(d->status),
           hex, d->name);
    return 0;
}

static int dept_list_txn(MDB_txn *txn, const store *s, void *arg,
                         once_error *err)
{
    dept_widths w = { (int)strlen("ID") };
    int rc;

    (void)arg;
    rc = policy_department_list(txn, s, dept_measure, &w, err);
    if (rc != 0)
        return rc;
    printf("%-*s  %-9s  %-16s  %s\n", w.id, "ID", "STATUS", "KEY", "NAME");
    return policy_department_list(txn, s, dept_print, &w, err);
}

static int cmd_dept_list(const command *cmd, int argc, char **argv)
{
    return run_list(cmd, argc, argv, dept_list_txn);
}

typedef struct dept_status_args {
    const char *id;
    department_status status;
    bool unchanged;
} dept_status_args;

static int dept_status_txn(MDB_txn *txn, const store *s, void *arg,
                           once_error *err)
{
    dept_status_args *a = arg;
    department d;
    int rc;

    rc = policy_department_get(txn, s, a->id, &d, err);
    if (rc < 0)
        return rc;
    a->unchanged = d.status == a->status;
    if (a->unchanged)
        return 0;
    return policy_department_set_status(txn, s, a->id, a->status, err);
}

static int dept_set_status(const command *cmd, int argc, char **argv,
                           department_status status)
{
    dept_status_args a = { NULL, status, false };
    int rc;

    if ((rc = no_options(cmd, argc, argv)) != OPT_END)
        return rc == OPT_HELP ? EXIT_SUCCESS : EXIT_USAGE;
    if ((rc = expect_args(cmd, argc, argv, 1, 1, "ID, the department id")))
        return rc;
    a.id = argv[optind];
    if ((rc = check_name(cmd, "department id", a.id)) != 0)
        return rc;
    rc = with_database(0, dept_status_txn, &a);
    if (rc != EXIT_SUCCESS)
        return rc;
    if (a.unchanged)
        printf("department %s is already %s\n", a.id, status_name(status));
    else
        printf("department %s is now %s\n", a.id, status_name(status));
    return EXIT_SUCCESS;
}

static int cmd_dept_suspend(const command *cmd, int argc, char **argv)
{
    return dept_set_status(cmd, argc, argv, DEPARTMENT_SUSPENDED);
}

static int cmd_dept_resume(const command *cmd, int argc, char **argv)
{
    return dept_set_status(cmd, argc, argv, DEPARTMENT_ACTIVE);
}

/* ---- type ---------------------------------------------------------------- */

static int type_add_txn(MDB_txn *txn, const store *s, void *arg,
                        once_error *err)
{
    return policy_type_add(txn, s, arg, err);
}

static int cmd_type_add(const command *cmd, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "issuer", required_argument, NULL, 'i' },
        { "subject", required_argument, NULL, 's' },
        { "fields", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    record_type t;
    const char *subject = NULL;
    bool have_fields = false;
    int c, rc;

    memset(&t, 0, sizeof(t));
    optind = 0;
    while ((c = next_option(cmd, argc, argv, longopts)) != OPT_END) {
        switch (c) {
        case OPT_HELP:
            return EXIT_SUCCESS;
        case OPT_BAD:
            return EXIT_USAGE;
        case 'i':
            rc = split_names(cmd, "--issuer", optarg, t.issuers,
                             &t.issuer_count, POLICY_MAX_ISSUERS);
            if (rc != 0)
                return rc;
            break;
        case 's':
            subject = optarg;
            break;
        case 'f':
            rc = split_names(cmd, "--fields", optarg, t.fields,
                             &t.field_count, ONCE_MAX_FIELDS);
            if (rc != 0)
                return rc;
            have_fields = true;
            break;
        }
    }
    if ((rc = expect_args(cmd, argc, argv, 1, 1, "NAME, the record type")))
        return rc;
    if ((rc = check_name(cmd, "record type name", argv[optind])) != 0)
        return rc;
    strcpy(t.name, argv[optind]);
    if (t.issuer_count == 0)
        return usage_error(cmd, "missing --issuer, the department(s) that "
                           "may publish this type");
    if (subject == NULL)
        return usage_error(cmd, "missing --subject enterprise|person");
    if (once_subject_kind_parse(subject, &t.subject_kind) < 0)
        return usage_error(cmd, "invalid --subject '%s': use enterprise "
                           "(Unified Social Credit Code) or person "
                           "(resident identity number)", subject);
    if (!have_fields)
        return usage_error(cmd, "missing --fields, the record's field names");
    rc = with_database(0, type_add_txn, &t);
    if (rc == EXIT_SUCCESS)
        printf("added record type %s (%zu fields)\n", t.name, t.field_count);
    return rc;
}

/* Joins names with commas into out (large enough for max names). */
static const char *join_names(char *out, size_t cap,
                              const char (*names)[ONCE_MAX_NAME + 1],
                              size_t count)
{
    size_t i, len = 0;

    out[0] = '\0';
    for (i = 0; i < count; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s",
                                i > 0 ? "," : "", names[i]);
    return out;
}

typedef struct type_widths {
    int name, issuers;
} type_widths;

#define ISSUER_LIST_MAX (POLICY_MAX_ISSUERS * (ONCE_MAX_NAME + 1))
#define FIELD_LIST_MAX (ONCE_MAX_FIELDS * (ONCE_MAX_NAME + 1))

static int type_measure(const record_type *t, void *arg)
{
    type_widths *w = arg;
    char issuers[ISSUER_LIST_MAX];

    widen(&w->name, t->name);
    widen(&w->issuers, join_names(issuers, sizeof(issuers), t->issuers,
                                  t->issuer_count));
    return 0;
}

static int type_print(const record_type *t, void *arg)
{
    const type_widths *w = arg;
    char issuers[ISSUER_LIST_MAX], fields[FIELD_LIST_MAX];

    printf("%-*s  %-10s  %-*s  %s\n", w->name, t->name,
           once_subject_kind_name(t->subject_kind), w->issuers,
           join_names(issuers, sizeof(issuers), t->issuers, t->issuer_count),
           join_names(fields, sizeof(fields), t->fields, t->field_count));
    return 0;
}

static int type_list_txn(MDB_txn *txn, const store *s, void *arg,
                         once_error *err)
{
    type_widths w = { (int)strlen("NAME"), (int)strlen("ISSUERS") };
    int rc;

    (void)arg;
    rc = policy_type_list(txn, s, type_measure, &w, err);
    if (rc != 0)
        return rc;
    printf("%-*s  %-10s  %-*s  %s\n", w.name, "NAME", "SUBJECT", w.issuers,
           "ISSUERS", "FIELDS");
    return policy_type_list(txn, s, type_print, &w, err);
}

static int cmd_type_list(const command *cmd, int argc, char **argv)
{
    return run_list(cmd, argc, argv, type_list_txn);
}

/* ---- grant --------------------------------------------------------------- */

/* The options of grant add and grant revoke; revoke takes no --fields. */
static int parse_grant(const command *cmd, int argc, char **argv, grant *g,
                       bool with_fields)
{
    static const struct option longopts[] = {
        { "requester", required_argument, NULL, 'r' },
        { "type", required_argument, NULL, 't' },
        { "purpose", required_argument, NULL, 'p' },
        { "fields", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *requester = NULL, *type = NULL, *purpose = NULL;
    bool have_fields = false;
    int c, rc;

    memset(g, 0, sizeof(*g));
    optind = 0;
    while ((c = next_option(cmd, argc, argv, longopts)) != OPT_END) {
        switch (c) {
        case OPT_HELP:
            return OPT_HELP;
        case OPT_BAD:
            return EXIT_USAGE;
        case 'r':
            requester = optarg;
            break;
        case 't':
            type = optarg;
            break;
        case 'p':
            purpose = optarg;
            break;
        case 'f':
            if (!with_fields)
                return usage_error(cmd, "--fields is not an option of "
                                   "this command");
            rc = split_names(cmd, "--fields", optarg, g->fields,
                             &g->field_count, ONCE_MAX_FIELDS);
            if (rc != 0)
                return rc;
            have_fields = true;
            break;
        }
    }
    if ((rc = expect_args(cmd, argc, argv, 0, 0, "")) != 0)
        return rc;
    if (requester == NULL)
        return usage_error(cmd, "missing --requester, the department id");
    if ((rc = check_name(cmd, "--requester", requester)) != 0)
        return rc;
    if (type == NULL)
        return usage_error(cmd, "missing --type, the record type");
    if ((rc = check_name(cmd, "--type", type)) != 0)
        return rc;
    if (purpose == NULL || purpose[0] == '\0')
        return usage_error(cmd, "missing --purpose, the legal basis "
                           "requests must name");
    if (strlen(purpose) > ONCE_MAX_PURPOSE)
        return usage_error(cmd, "--purpose is longer than %d bytes",
                           ONCE_MAX_PURPOSE);
    if (with_fields && !have_fields)
        return usage_error(cmd, "missing --fields, the fields the requester "
                           "may read");
    strcpy(g->requester, requester);
    strcpy(g->type, type);
    strcpy(g->purpose, purpose);
    return 0;
}

static int grant_add_txn(MDB_txn *txn, const store *s, void *arg,
                         once_error *err)
{
    return policy_grant_add(txn, s, arg, err);
}

static int grant_revoke_txn(MDB_txn *txn, const store *s, void *arg,
                            once_error *err)
{
    const grant *g = arg;

    return policy_grant_revoke(txn, s, g->requester, g->type, g->purpose,
                               err);
}

/* grant add (with --fields) and grant revoke (without). */
static int grant_change(const command *cmd, int argc, char **argv, bool add)
{
    grant g;
    int rc;

    rc = parse_grant(cmd, argc, argv, &g, add);
    if (rc != 0)
        return rc == OPT_HELP ? EXIT_SUCCESS : rc;
    rc = with_database(0, add ? grant_add_txn : grant_revoke_txn, &g);
    if (rc != EXIT_SUCCESS)
        return rc;
    if (add)
        printf("granted %s %zu field(s) of %s for purpose \"%s\"\n",
               g.requester, g.field_count, g.type, g.purpose);
    else
        printf("revoked the grant of %s on %s for purpose \"%s\"\n",
               g.requester, g.type, g.purpose);
    return rc;
}

static int cmd_grant_add(const command *cmd, int argc, char **argv)
{
    return grant_change(cmd, argc, argv, true);
}

static int cmd_grant_revoke(const command *cmd, int argc, char **argv)
{
    return grant_change(cmd, argc, argv, false);
}

typedef struct grant_widths {
    int requester, type, fields;
} grant_widths;

static int grant_measure(const grant *g, void *arg)
{
    grant_widths *w = arg;
    char fields[FIELD_LIST_MAX];

    widen(&w->requester, g->requester);
    widen(&w->type, g->type);
    widen(&w->fields, join_names(fields, sizeof(fields), g->fields,
                                 g->field_count));
    return 0;
}

/* The purpose is free text (often not ASCII), so it comes last, where its
 * width cannot misalign the columns. */
static int grant_print(const grant *g, void *arg)
{
    const grant_widths *w = arg;
    char fields[FIELD_LIST_MAX];

    printf("%-*s  %-*s  %-*s  %s\n", w->requester, g->requester, w->type,
           g->type, w->fields,
           join_names(fields, sizeof(fields), g->fields, g->field_count),
           g->purpose);
    return 0;
}

static int grant_list_txn(MDB_txn *txn, const store *s, void *arg,
                          once_error *err)
{
    grant_widths w = { (int)strlen("REQUESTER"), (int)strlen("TYPE"),
                       (int)strlen("FIELDS") };
    int rc;

    (void)arg;
    rc = policy_grant_list(txn, s, grant_measure, &w, err);
    if (rc != 0)
        return rc;
    printf("%-*s  %-*s  %-*s  %s\n", w.requester, "REQUESTER", w.type, "TYPE",
           w.fields, "FIELDS", "PURPOSE");
    return policy_grant_list(txn, s, grant_print, &w, err);
}

static int cmd_grant_list(const command *cmd, int argc, char **argv)
{
    return run_list(cmd, argc, argv, grant_list_txn);
}

/* ---- log ----------------------------------------------------------------- */

/* Opens the home's database and the log's tables in it. auditlog_open
 * commits a short write transaction (it creates the tables of a home onced
 * has not run in yet); LMDB lets it wait its turn beside a running onced,
 * and everything after it only reads. */
static int open_home_log(store *s, auditlog *log)
{
    once_error err;

    if (open_home_store(s) < 0)
        return -1;
    if (auditlog_open(log, s, &err) < 0) {
        say_error("%s", err.message);
        store_close(s);
        return -1;
    }
    return 0;
}

/* Parses a leaf index or tree size given to option. */
static int parse_count(const command *cmd, const char *option,
                       const char *arg, uint64_t *out)
{
    if (text_parse_u64(arg, strlen(arg), out) < 0)
        return usage_error(cmd, "invalid %s '%s': give a number of leaves",
                           option, arg);
    return 0;
}

static int count_checkpoint(uint64_t size, const MDB_val *note, void *arg)
{
    (void)size;
    (void)note;
    (*(uint64_t *)arg)++;
    return 0;
}

static int first_checkpoint(uint64_t size, const MDB_val *note, void *arg)
{
    (void)note;
    *(uint64_t *)arg = size;
    return 1;
}

/* Prints a note as it is stored; every note ends with a newline. */
static void print_note(const MDB_val *note)
{
    fwrite(note->mv_data, 1, note->mv_size, stdout);
}

static int cmd_log_status(const command *cmd, int argc, char **argv)
{
    uint64_t size, cp_size, count = 0;
    once_error err;
    MDB_txn *txn;
    MDB_val note;
    auditlog log;
    store s;
    int rc;

    if ((rc = no_options(cmd, argc, argv)) != OPT_END)
        return rc == OPT_HELP ? EXIT_SUCCESS : EXIT_USAGE;
    if ((rc = expect_args(cmd, argc, argv, 0, 0, "")) != 0)
        return rc;
    if (open_home_log(&s, &log) < 0)
        return EXIT_FAILED;
    /* One read transaction: size, count and note describe one moment. */
    rc = store_begin(&s, 1, &txn, &err);
    if (rc == 0) {
        rc = auditlog_size(txn, &log, &size, &err);
        if (rc == 0)
            rc = auditlog_checkpoint_each(txn, &log, 0, UINT64_MAX,
                                          count_checkpoint, &count, &err);
        if (rc == 0) {
            rc = auditlog_checkpoint_latest(txn, &log, &cp_size, &note, &err);
            printf("log size      %" PRIu64 " leaves\n"
                   "checkpoints   %" PRIu64 " stored\n",
                   size, count);
            if (rc == -ONCE_ERR_NOT_FOUND) {
                printf("latest checkpoint: none yet (onced signs one when "
                       "it starts)\n");
                rc = 0;
            } else if (rc == 0) {
                printf("latest checkpoint, of tree size %" PRIu64, cp_size);
                if (cp_size < size)
                    printf(" (%" PRIu64 " newer leaves are not signed yet)",
                           size - cp_size);
                printf(":\n");
                print_note(&note);
            }
        }
        mdb_txn_abort(txn);
    }
    store_close(&s);
    if (rc < 0) {
        say_error("%s", err.message);
        return EXIT_FAILED;
    }
    return EXIT_SUCCESS;
}

/* Checks, before export_log runs, that the log has a signed checkpoint to
 * export, so that a log with nothing signed is refused with a message that
 * says why, and before DIR is created. *cp_size receives the size of the
 * checkpoint the export will start from (it may find a newer one). */
static int check_exportable(const store *s, const auditlog *log, uint64_t to,
                            uint64_t *cp_size)
{
    uint64_t size, oldest = 0;
    bool found = false;
    once_error err;
    MDB_txn *txn;
    MDB_val note;
    int rc;

    if (store_begin(s, 1, &txn, &err) < 0) {
        say_error("%s", err.message);
        return -1;
    }
    rc = auditlog_size(txn, log, &size, &err);
    if (rc == 0) {
        rc = auditlog_checkpoint_floor(txn, log, to ? to : UINT64_MAX,
                                       cp_size, &note, &err);
        found = rc == 0;
        /* Returns 1 when there is a checkpoint, above `to`. */
        if (rc == -ONCE_ERR_NOT_FOUND)
            rc = auditlog_checkpoint_each(txn, log, 0, UINT64_MAX,
                                          first_checkpoint, &oldest, &err);
    }
    mdb_txn_abort(txn);
    if (rc < 0) {
        say_error("%s", err.message);
        return -1;
    }
    if (found)
        return 0;
    if (rc == 1)
        say_error("no checkpoint of a tree of at most %" PRIu64 " leaves is "
                  "stored; the oldest is of %" PRIu64 " leaves", to, oldest);
    else if (size == 0)
        say_error("the log is empty and no checkpoint has been signed yet: "
                  "there is nothing an auditor could verify (onced signs a "
                  "checkpoint when it starts)");
    else
        say_error("the log has %" PRIu64 " leaves but no signed checkpoint "
                  "yet: there is nothing an auditor could verify", size);
    return -1;
}

/* Reads the checkpoint of an export in dir. 1 when there is one and its
 * tree size parses, 0 when there is none (or export_log will say what is
 * wrong with it), -1 when it cannot be read. */
static int read_export_checkpoint(const char *dir, char *note, size_t cap,
                                  size_t *len, uint64_t *size)
{
    char path[PATH_MAX];
    checkpoint found;
    ssize_t n;
    int fd;

    if (join_path(path, sizeof(path), dir, "checkpoint") < 0)
        return -1;
    /* Never through a link: export_log refuses one with a message. */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
            return 0;
        say_error("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    n = read(fd, note, cap);
    close(fd);
    if (n < 0) {
        say_error("cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    *len = (size_t)n;
    if (checkpoint_parse_unverified(note, (size_t)n, &found, NULL) < 0)
        return 0;
    *size = found.size;
    return 1;
}

typedef struct export_args {
    uint64_t from, to;
    bool from_given;
    const char *dir;
    const char *evidence_to; /* the auditor's public key file, or NULL */
} export_args;

static int parse_log_export(const command *cmd, int argc, char **argv,
                            export_args *a)
{
    static const struct option longopts[] = {
        { "from", required_argument, NULL, 'f' },
        { "to", required_argument, NULL, 't' },
        { "evidence-to", required_argument, NULL, 'e' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c, rc;

    memset(a, 0, sizeof(*a));
    optind = 0;
    while ((c = next_option(cmd, argc, argv, longopts)) != OPT_END) {
        switch (c) {
        case OPT_HELP:
            return OPT_HELP;
        case OPT_BAD:
            return EXIT_USAGE;
        case 'f':
            if ((rc = parse_count(cmd, "--from", optarg, &a->from)) != 0)
                return rc;
            a->from_given = true;
            break;
        case 't':
            if ((rc = parse_count(cmd, "--to", optarg, &a->to)) != 0)
                return rc;
            /* export_log reads end 0 as "the newest checkpoint". */
            if (a->to == 0)
                return usage_error(cmd, "--to takes a tree size of at "
                                   "least 1");
            break;
        case 'e':
            a->evidence_to = optarg;
            break;
        }
    }
    if ((rc = expect_args(cmd, argc, argv, 1, 1, "DIR, the directory to "
                          "export to")) != 0)
        return rc;
    a->dir = argv[optind];
    if (a->dir[0] == '\0')
        return usage_error(cmd, "DIR is empty");
    if (a->to != 0 && a->from >= a->to)
        return usage_error(cmd, "--from %" PRIu64 " is not below --to %"
                           PRIu64, a->from, a->to);
    return 0;
}

/* Progress on a terminal, at most once a second: a large export takes
 * minutes. */
static void export_progress(void *arg, const char *what, uint64_t done,
                            uint64_t total)
{
    time_t *last = arg, now = time(NULL);

    if (now == *last || total == 0)
        return;
    *last = now;
    fprintf(stderr, "\roncectl: exporting %s: %" PRIu64 " of %" PRIu64 "   ",
            what, done, total);
}

static int cmd_log_export(const command *cmd, int argc, char **argv)
{
    uint8_t auditor_pk[ONCE_PUBLIC_KEY_BYTES];
    export_options opt;
    time_t last = 0;
    char note[CHECKPOINT_MAX_NOTE + 1];
    uint64_t start, size, old_size = 0, available, count = 0;
    size_t note_len;
    bool extends;
    once_error err;
    MDB_txn *txn;
    export_args a;
    auditlog log;
    store s;
    int rc;

    rc = parse_log_export(cmd, argc, argv, &a);
    if (rc != 0)
        return rc == OPT_HELP ? EXIT_SUCCESS : rc;
    if (a.evidence_to != NULL &&
        once_public_key_load(auditor_pk, a.evidence_to, &err) < 0) {
        say_error("--evidence-to: %s", err.message);
        return EXIT_FAILED;
    }
    if (open_home_log(&s, &log) < 0)
        return EXIT_FAILED;
    if (check_exportable(&s, &log, a.to, &available) < 0)
        goto fail;
    rc = read_export_checkpoint(a.dir, note, sizeof(note) - 1, &note_len,
                                &old_size);
    if (rc < 0)
        goto fail;
    extends = rc == 1;
    /* Extending an export, only what is new needs writing: bundles before
     * the old size are there already (and the hash tiles, always written
     * whole, still show whether DIR holds this log). Not past the tree to
     * export, so that a DIR holding a newer tree is refused as that. */
    start = a.from;
    if (!a.from_given && extends)
        start = old_size < available ? old_size : available;
    start -= start % TLOG_TILE_WIDTH;

    memset(&opt, 0, sizeof(opt));
    opt.start = start;
    opt.end = a.to;
    opt.seal_to = a.evidence_to ? auditor_pk : NULL;
    if (isatty(STDERR_FILENO)) {
        opt.progress = export_progress;
        opt.progress_arg = &last;
    }
    rc = export_log(&s, &log, a.dir, &opt, &err);
    if (last != 0)
        fprintf(stderr, "\n");
    if (rc < 0) {
        say_error("%s", err.message);
        goto fail;
    }
    rc = read_export_checkpoint(a.dir, note, sizeof(note) - 1, &note_len,
                                &size);
    if (rc < 0)
        goto fail;
    if (rc == 0) {
        say_error("%s/checkpoint is missing or damaged after the export",
                  a.dir);
        goto fail;
    }
    note[note_len] = '\0';
    if (store_begin(&s, 1, &txn, &err) == 0) {
        rc = auditlog_checkpoint_each(txn, &log, start, size,
                                      count_checkpoint, &count, &err);
        mdb_txn_abort(txn);
    } else {
        rc = -1;
    }
    if (rc < 0) {
        say_error("%s", err.message);
        goto fail;
    }
    store_close(&s);

    printf("exported a tree of %" PRIu64 " leaves to %s\n", size, a.dir);
    if (size == 0)
        printf("  leaves       none: the tree is empty\n");
    else if (start >= size)
        printf("  leaves       none new\n");
    else
        printf("  leaves       %" PRIu64 " to %" PRIu64 ", with the "
               "envelopes behind them\n", start, size - 1);
    if (a.from_given && start != a.from)
        printf("               (--from %" PRIu64 " rounded down to a whole "
               "bundle of %d)\n", a.from, TLOG_TILE_WIDTH);
    printf("  checkpoints  %" PRIu64 " from tree size %" PRIu64
           " on, in %s/checkpoints/\n", count, start, a.dir);
    if (a.evidence_to != NULL)
        printf("  evidence     sealed to the auditor key %s, in "
               "%s/evidence-sealed/\n", a.evidence_to, a.dir);
    else
        printf("  evidence     in plain, personal data (mode 0600), in "
               "%s/evidence/: keep it on this host, or export with "
               "--evidence-to\n", a.dir);
    if (extends && size == old_size)
        printf("  extended     nothing: %s held this tree already\n",
               a.dir);
    else if (extends)
        printf("  extended     an export of %" PRIu64 " leaves\n", old_size);
    else if (start > 0)
        printf("  range        check it with 'once-audit verify %s --key "
               "broker.pub --from %" PRIu64 "'\n", a.dir, start);
    printf("checkpoint:\n%s", note);
    return EXIT_SUCCESS;

fail:
    store_close(&s);
    return EXIT_FAILED;
}

/* ---- dispatch ------------------------------------------------------------ */

static const command commands[] = {
    { NULL, "init",
      "init [DIR] [--listen EP] [--name NAME] [--log-origin ORIGIN]",
      "create a broker home: keys, database, once.conf",
      "Creates a broker home (DIR, or HOME; mode 0700) holding the broker's\n"
      "key pair (broker.key, mode 0600, and broker.pub), the audit key that\n"
      "keys the subject hashes in the exchange log (audit.key, mode 0600),\n"
      "an empty database (db/) and the configuration onced reads\n"
      "(once.conf). Refuses a home that already has a once.conf.\n"
      "\n"
      "Options:\n"
      "  --listen EP          ZeroMQ endpoint the broker binds\n"
      "                       (default " CONFIG_DEFAULT_LISTEN ")\n"
      "  --name NAME          the broker's name, the sender of its replies\n"
      "                       (default " CONFIG_DEFAULT_NAME ")\n"
      "  --log-origin ORIGIN  the exchange log's name, the first line of\n"
      "                       every signed checkpoint; never change it once\n"
      "                       onced has run (default: NAME)\n",
      cmd_init },
    { NULL, "keygen", "keygen OUT",
      "write a department key pair: OUT (0600) and OUT.pub",
      "Generates an Ed25519 key pair for a department: the secret key goes\n"
      "to OUT (mode 0600) and the public key to OUT.pub. Prints the public\n"
      "key in hex. Never overwrites an existing file. Give OUT.pub to the\n"
      "broker's operator for 'oncectl dept add'; OUT stays with the\n"
      "department's system.\n",
      cmd_keygen },
    { "dept", "add", "dept add ID --key PUBFILE [--name TEXT]",
      "register a department and its public key",
      "Registers department ID with the public key in PUBFILE (written by\n"
      "'oncectl keygen'). The department may connect from the next\n"
      "handshake on. An id or a key already registered is refused.\n"
      "\n"
      "Options:\n"
      "  --key PUBFILE   the department's public key file\n"
      "  --name TEXT     a human-readable name\n",
      cmd_dept_add },
    { "dept", "list", "dept list", "list departments",
      "Lists departments in id order: id, status (active or suspended), the\n"
      "first 16 hex digits of the public key, and name.\n",
      cmd_dept_list },
    { "dept", "suspend", "dept suspend ID",
      "refuse a department's connections and messages",
      "Suspends department ID: the broker refuses its new connections and\n"
      "answers its messages with SUSPENDED, from its next request on, until\n"
      "'oncectl dept resume ID'. Records it published stay available.\n",
      cmd_dept_suspend },
    { "dept", "resume", "dept resume ID", "admit a suspended department again",
      "Makes a suspended department ID active again.\n",
      cmd_dept_resume },
    { "type", "add",
      "type add NAME --issuer D1[,D2...] --subject enterprise|person "
      "--fields F1,F2,...",
      "add a record type to the catalogue",
      "Adds record type NAME to the catalogue. Only its issuers (registered\n"
      "departments) may publish or revoke records of it; its subjects are\n"
      "enterprises (Unified Social Credit Code) or persons (resident\n"
      "identity number); a record of it carries the named fields.\n"
      "\n"
      "Options:\n"
      "  --issuer D1[,D2...]          issuing department ids (repeatable)\n"
      "  --subject enterprise|person  what the records are about\n"
      "  --fields F1,F2,...           field names (repeatable)\n",
      cmd_type_add },
    { "type", "list", "type list", "list record types",
      "Lists record types: name, subject kind, issuers and fields.\n",
      cmd_type_list },
    { "grant", "add",
      "grant add --requester D --type T --purpose P --fields F1,F2,...",
      "let a department read fields of a type for a purpose",
      "Lets department D read the named fields of records of type T when\n"
      "its request gives purpose P (exactly). Without a grant a request is\n"
      "refused with NO_GRANT. To change the fields, revoke and add again.\n"
      "\n"
      "Options:\n"
      "  --requester D        the requesting department id\n"
      "  --type T             the record type\n"
      "  --purpose P          the purpose (legal basis), as requests give it\n"
      "  --fields F1,F2,...   the fields it may read (repeatable)\n",
      cmd_grant_add },
    { "grant", "list", "grant list", "list grants",
      "Lists grants by requester, type and purpose, with their fields.\n",
      cmd_grant_list },
    { "grant", "revoke", "grant revoke --requester D --type T --purpose P",
      "withdraw a grant",
      "Withdraws the grant of (D, T, P); the broker refuses D's next request\n"
      "for it with NO_GRANT.\n"
      "\n"
      "Options:\n"
      "  --requester D   the requesting department id\n"
      "  --type T        the record type\n"
      "  --purpose P     the purpose, exactly as granted\n",
      cmd_grant_revoke },
    { "log", "status", "log status",
      "show the exchange log's size and latest signed checkpoint",
      "Prints the number of leaves in the exchange log, the number of\n"
      "checkpoints the broker has signed, and the newest checkpoint (a C2SP\n"
      "signed note: origin, tree size, root hash, signature). Keep a copy\n"
      "of a checkpoint to show later, with 'once-audit consistency', that\n"
      "the log only grew. Reads the database; onced may be running.\n",
      cmd_log_status },
    { "log", "export",
      "log export DIR [--from N] [--to N] [--evidence-to AUDITOR.pub]",
      "write the exchange log to DIR for auditors",
      "Writes the exchange log to DIR for auditors, who check it offline\n"
      "with 'once-audit verify DIR --key broker.pub': the C2SP tlog-tiles\n"
      "layout (checkpoint, hash tiles, entry bundles), the evidence\n"
      "envelopes, every signed checkpoint and the department keys\n"
      "(docs/AUDIT.md). The tree exported is the newest one with a signed\n"
      "checkpoint (up to --to). Runs beside a running onced: the tree\n"
      "size is fixed at the start and read in short read transactions.\n"
      "\n"
      "The evidence (the signed envelopes) holds raw ID numbers and field\n"
      "values: personal data. It goes to DIR/evidence/ with mode 0600 in\n"
      "0700 directories, or, with --evidence-to, sealed to one auditor's\n"
      "key in DIR/evidence-sealed/, so the export can travel. The rest\n"
      "(tiles, entries, checkpoints, keys) is public: 0644. DIR must be\n"
      "yours and writable by nobody else, and a symbolic link anywhere in\n"
      "it is refused.\n"
      "\n"
      "A DIR holding an earlier export of this log is extended: only the\n"
      "leaves after it are written (unless --from says otherwise), full\n"
      "tiles already there must be identical, and the checkpoint moves\n"
      "forward. A DIR holding another log or a newer tree is refused, and\n"
      "so is a log without a signed checkpoint: nothing in it could be\n"
      "verified.\n"
      "\n"
      "Options:\n"
      "  --from N   write the leaves and evidence from leaf N on (rounded\n"
      "             down to a bundle of 256); hash tiles and checkpoints\n"
      "             always cover the whole tree\n"
      "  --to N     export the tree of the newest checkpoint of at most N\n"
      "             leaves instead of the newest one\n"
      "  --evidence-to AUDITOR.pub\n"
      "             seal the evidence to this auditor's public key (a key\n"
      "             pair from 'oncectl keygen'); 'once-audit verify\n"
      "             --evidence-key AUDITOR' opens it\n",
      cmd_log_export },
    { "console", "token", "console token",
      "replace the console's bearer token (console.token)",
      "Writes a new bearer token for the operator's console to\n"
      "HOME/console.token (32 random bytes as 64 hex digits, mode 0600),\n"
      "replacing the old one. onced reads it when it starts: restart it.\n"
      "Every console path but /healthz, /readyz and the dashboard page\n"
      "needs it as 'Authorization: Bearer TOKEN'.\n",
      cmd_console_token },
    { NULL, "status", "status",
      "one screen of the running broker's state, from its console",
      "Prints the running broker's health, log head, map use, exchanges\n"
      "since start (rate, latency), the KPIs (copies avoided, sharing\n"
      "rate, participation), refusals by code and its departments, read\n"
      "from its console (console_listen in once.conf, with the token in\n"
      "console.token).\n",
      cmd_status },
    { NULL, "top", "top [--iterations N]",
      "the status screen, live, every two seconds (q quits)",
      "Shows the 'oncectl status' screen every two seconds, with the\n"
      "exchange rate between screens, until q is pressed (or Ctrl-C).\n"
      "\n"
      "Options:\n"
      "  --iterations N   stop after N screens (0, the default: never)\n",
      cmd_top },
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static void print_usage(FILE *out)
{
    size_t i;

    fprintf(out,
            "usage: oncectl [--home HOME] COMMAND [ARGS]\n"
            "\n"
            "Administers a once broker home: its keys, its configuration, the\n"
            "policy in its database (departments, record types, grants) and\n"
            "the exchange log. Policy changes reach a running onced at its\n"
            "next request; no restart.\n"
            "\n"
            "Commands:\n");
    for (i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %s\n      %s\n", commands[i].synopsis,
                commands[i].summary);
    fprintf(out,
            "\n"
            "Options:\n"
            "  --home HOME   the broker home (default: $ONCE_HOME, else "
            CONFIG_DEFAULT_HOME ")\n"
            "  -h, --help    this help; 'oncectl COMMAND --help' for one "
            "command\n"
            "\n"
            "Exit status: 0 on success, 1 when the operation failed, 2 on a "
            "usage error.\n");
}

/* The commands of a group, for `oncectl dept` and `oncectl dept --help`. */
static void print_group(FILE *out, const char *group)
{
    size_t i;

    fprintf(out, "usage:\n");
    for (i = 0; i < COMMAND_COUNT; i++)
        if (commands[i].group != NULL && strcmp(commands[i].group, group) == 0)
            fprintf(out, "  oncectl [--home HOME] %s\n      %s\n",
                    commands[i].synopsis, commands[i].summary);
    fprintf(out, "Try 'oncectl %s COMMAND --help' for more.\n", group);
}

static bool is_group(const char *word)
{
    size_t i;

    for (i = 0; i < COMMAND_COUNT; i++)
        if (commands[i].group != NULL && strcmp(commands[i].group, word) == 0)
            return true;
    return false;
}

/* A list cut short by a full disk or a closed pipe is a failure, not a
 * success with less output. */
static int finish(int status)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        say_error("cannot write the output: %s", strerror(errno));
        return EXIT_FAILED;
    }
    return status;
}

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "home", required_argument, NULL, 'H' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *word, *sub;
    size_t i;
    int c;

    if (once_init() < 0) {
        say_error("cannot initialise libsodium");
        return EXIT_FAILED;
    }
    opterr = 0;
    /* '+': global options end at the command word; the command's own
     * options may then come in any order. */
    while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'H':
            if (optarg[0] == '\0') {
                say_error("--home needs a directory");
                return EXIT_USAGE;
            }
            home = optarg;
            home_given = true;
            break;
        case 'h':
            print_usage(stdout);
            return EXIT_SUCCESS;
        case ':':
            say_error("option '%s' needs a value", argv[optind - 1]);
            fprintf(stderr, "Try 'oncectl --help'.\n");
            return EXIT_USAGE;
        default:
            if (optopt != 0)
                say_error("unknown option '-%c'", optopt);
            else
                say_error("unknown option '%s'", argv[optind - 1]);
            fprintf(stderr, "Try 'oncectl --help'.\n");
            return EXIT_USAGE;
        }
    }
    if (home == NULL) {
        home = getenv("ONCE_HOME");
        if (home == NULL || home[0] == '\0')
            home = CONFIG_DEFAULT_HOME;
    }
    if (optind >= argc) {
        say_error("no command given");
        print_usage(stderr);
        return EXIT_USAGE;
    }
    argc -= optind;
    argv += optind;
    word = argv[0];
    if (strcmp(word, "help") == 0) {
        print_usage(stdout);
        return EXIT_SUCCESS;
    }

    sub = NULL;
    if (is_group(word)) {
        if (argc < 2) {
            say_error("'%s' needs a command", word);
            print_group(stderr, word);
            return EXIT_USAGE;
        }
        if (is_help(argv[1])) {
            print_group(stdout, word);
            return EXIT_SUCCESS;
        }
        sub = argv[1];
        argc--;
        argv++;
    }
    for (i = 0; i < COMMAND_COUNT; i++) {
        const command *cmd = &commands[i];

        if (sub != NULL ? cmd->group != NULL && strcmp(cmd->group, word) == 0 &&
                              strcmp(cmd->name, sub) == 0
                        : cmd->group == NULL && strcmp(cmd->name, word) == 0)
            return finish(cmd->run(cmd, argc, argv));
    }
    if (sub != NULL) {
        say_error("unknown command '%s %s'", word, sub);
        print_group(stderr, word);
    } else {
        say_error("unknown command '%s'", word);
        fprintf(stderr, "Try 'oncectl --help'.\n");
    }
    return EXIT_USAGE;
}
