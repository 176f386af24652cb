/*
 * init.c - `oncectl init` and `oncectl keygen`: a new broker home, and a
 * department's key pair.
 *
 * init makes everything onced needs to start, in a directory of mode 0700:
 * the broker's key pair, the audit key that keys the subject hashes of the
 * exchange log, an empty database, and a once.conf that explains each
 * setting. Every file is created new (O_EXCL|O_NOFOLLOW, lib/file_io.c),
 * never through a link planted at its name, and the secrets are 0600; a
 * home that already has a once.conf is refused, and an init that fails
 * halfway removes what it made, so that it can simply be run again.
 *
 * keygen writes a department's key pair for the department to keep; the
 * operator only ever gets the public half (dept add --key).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "audit_hash.h"
#include "checkpoint.h"
#include "commands.h"
#include "config.h"
#include "file_io.h"
#include "home.h"
#include "oncectl_console.h"

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
    "# Most the database can hold, in MiB: address space, not memory or\n"
    "# disk (the file grows as data is written); keep it below the disk's\n"
    "# room. When a publish is refused with STORAGE_FULL, raise it and\n"
    "# restart onced.\n"
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

int cmd_init(const command *cmd, int argc, char **argv)
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
        if (oncectl_home_given && strcmp(oncectl_home, argv[optind]) != 0)
            return usage_error(cmd, "two homes given: --home %s and %s",
                               oncectl_home, argv[optind]);
        oncectl_home = argv[optind];
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
    if (join_path(conf, sizeof(conf), oncectl_home, "once.conf") < 0 ||
        join_path(key, sizeof(key), oncectl_home, "broker.key") < 0 ||
        join_path(pub, sizeof(pub), oncectl_home, "broker.pub") < 0 ||
        join_path(audit_key, sizeof(audit_key), oncectl_home,
                  "audit.key") < 0 ||
        join_path(db, sizeof(db), oncectl_home, "db") < 0)
        return EXIT_FAILED;
    if (lstat(conf, &st) == 0) {
        say_error("%s already exists: %s is a broker home already; "
                  "refusing to overwrite it", conf, oncectl_home);
        return EXIT_FAILED;
    }

    if (mkdir(oncectl_home, 0700) == 0) {
        made_home = true;
    } else if (errno != EEXIST || stat(oncectl_home, &st) < 0 ||
               !S_ISDIR(st.st_mode)) {
        say_error("cannot create %s: %s", oncectl_home,
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

    if (oncectl_console_token_write(oncectl_home, false) < 0)
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
           oncectl_home, conf, key, pub, audit_key, db, listen, origin, hex);
    return EXIT_SUCCESS;

fail:
    /* Leave nothing half made, so that init can simply be run again. */
    if (made_db)
        remove_database(db);
    if (made_audit_key)
        unlink(audit_key);
    if (made_token) {
        char token[PATH_MAX];

        if (join_path(token, sizeof(token), oncectl_home,
                      "console.token") == 0)
            unlink(token);
    }
    if (made_keys) {
        unlink(pub);
        unlink(key);
    }
    if (made_home)
        rmdir(oncectl_home);
    return EXIT_FAILED;
}

/* ---- keygen -------------------------------------------------------------- */

int cmd_keygen(const command *cmd, int argc, char **argv)
{
    char pub[PATH_MAX], hex[2 * ONCE_PUBLIC_KEY_BYTES + 1];
    once_keypair kp;
    once_error err;
    int rc;

    if ((rc = arguments_only(cmd, argc, argv, 1, 1,
                             "OUT, the key file to write")) != OPT_END)
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
