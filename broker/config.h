/*
 * config.h - onced's settings: the [broker] section of once.conf and the
 * command-line options that override it. See config.c.
 */
#ifndef ONCE_CONFIG_H
#define ONCE_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "checkpoint.h"
#include "diag.h"
#include "once/once.h"

#define CONFIG_ENDPOINT_MAX 256
/* What `oncectl init` writes and a home without once.conf runs with. */
#define CONFIG_DEFAULT_HOME "/var/lib/once"
#define CONFIG_DEFAULT_NAME "once-broker"
#define CONFIG_DEFAULT_LISTEN "tcp://127.0.0.1:7700"
/* The operator's console (console.c): HTTP, loopback by default. */
#define CONFIG_DEFAULT_CONSOLE_LISTEN "127.0.0.1:7780"
/* 16 GiB: address space, not memory or disk (onced.c, check_disk); about
 * seven million records with their publishes (docs/PERFORMANCE.md). */
#define CONFIG_DEFAULT_MAP_SIZE_MB 16384
#define CONFIG_DEFAULT_HIGH_WATER_PERCENT 90
/* Each worker holds an LMDB reader slot; LMDB's default table has 126 and
 * oncectl and the ZAP handler need some too. */
#define CONFIG_MAX_WORKERS 96
/* Sessions the replay table remembers for all departments together (its
 * memory bound, about 1.5 KiB each): a department's own limit is at most
 * this. */
#define CONFIG_MAX_SESSIONS 65536

typedef struct broker_config {
    char config_path[PATH_MAX]; /* the file read, "" when none was */
    char home[PATH_MAX];        /* directory relative paths start from */
    char name[ONCE_MAX_NAME + 1];
    char listen[CONFIG_ENDPOINT_MAX];
    char key_path[PATH_MAX];
    char database[PATH_MAX];
    size_t map_size_mb;
    unsigned high_water_percent; /* publishes stop above this much of it */
    unsigned workers;           /* resolved: never 0 */
    unsigned skew_seconds;
    unsigned group_commit_max;
    unsigned checkpoint_interval_ms;
    /* Per-department shares of the replay table (replay.c). */
    unsigned max_sessions_per_department;
    unsigned max_in_flight_per_department;
    /* Refusals of one department the exchange log takes: a burst of
     * this many, refilled at as many per window (refusal_budget.c). */
    unsigned max_logged_refusals_per_department;
    unsigned logged_refusals_window_seconds;
    diag_level diag_level;
    /* The exchange log's settings (docs/AUDIT.md), which oncectl init
     * writes: read and checked here so a home's once.conf is accepted as
     * a whole. */
    char audit_key_path[PATH_MAX];
    char log_origin[CHECKPOINT_MAX_ORIGIN + 1];
    /* What one department may hold of the broker (docs/OPERATIONS.md,
     * "Limits"): connections open, and bytes of messages read but not yet
     * answered, of which all departments together hold at most
     * pending_kb. */
    unsigned max_connections_per_department;
    size_t pending_kb;
    size_t department_pending_kb;
    /* The console's ADDRESS:PORT, "" when it is off. */
    char console_listen[CONFIG_ENDPOINT_MAX];
} broker_config;

typedef enum config_result {
    CONFIG_RUN = 0,    /* cfg is complete: start the broker */
    CONFIG_EXIT = 1,   /* --help or --version was printed: exit 0 */
    CONFIG_USAGE = 2   /* a message was printed to stderr: exit 2 */
} config_result;

/* A tcp://HOST:PORT or ipc://PATH endpoint onced can bind and once.conf
 * can hold. */
bool config_endpoint_is_valid(const char *ep);

/* A numeric ADDRESS:PORT or [IPV6]:PORT (console_listen) as a socket
 * address: 0, or -1 when it is not one. */
int config_console_address(const char *listen, struct sockaddr_storage *addr,
                           socklen_t *len);

/* Parses argv, reads the configuration file and applies the overrides.
 * Prints what went wrong, or the help or version text, itself. */
config_result config_load(broker_config *cfg, int argc, char **argv);

/* What `onced --home HOME` runs with, without command-line overrides:
 * HOME/once.conf (the defaults when there is none) checked by the same
 * rules. For oncectl, which opens the same database. 0, or -1 with a
 * message in why. */
int config_read_home(broker_config *cfg, const char *home, char *why,
                     size_t why_cap);

#endif
