/*
 * startup.c - how an adapter starts and stops: its command line, its
 * configuration file, its keys, state and broker connections, its
 * signals. once-gateway and once-spool differ only in the keys of their
 * own and in what they serve once started.
 *
 * The configuration is one INI file read with inih, like onced's
 * once.conf, in the adapter's own section ([gateway], [spool]); any other
 * section, and any unknown key, is an error. Refusals are one line on
 * stderr naming the file and the line.
 *
 * Signals: SIGTERM and SIGINT are blocked in every thread (each adapter
 * takes them synchronously: sigwait, a signalfd); SIGPIPE is ignored.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "common.h"

int adapter_parse_args(int argc, char **argv, const adapter_program *p,
                       const char **config)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int opt;

    *config = p->default_config;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            *config = optarg;
            break;
        case 'h':
            fputs(p->usage, stdout);
            return 1;
        case 'V':
            printf("%s %s\n", p->name, p->version);
            return 1;
        default:
            fputs(p->usage, stderr);
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "%s: unexpected argument %s\n", p->name,
                argv[optind]);
        return -1;
    }
    return 0;
}

typedef struct read_state {
    const adapter_program *program;
    adapter_config *base;
    adapter_ini ini;
    void *user;
} read_state;

static int ini_entry(void *user, const char *section, const char *name,
                     const char *value)
{
    read_state *st = user;
    int rc;

    if (strcmp(section, st->program->section) != 0) {
        snprintf(st->ini.problem, sizeof(st->ini.problem),
                 "unknown section [%s]", section);
        return 0;
    }
    if ((rc = adapter_config_entry(&st->ini, st->base, name, value)) >= 0 ||
        (rc = st->program->own_entry(st->user, &st->ini, name, value)) >= 0)
        return rc;
    snprintf(st->ini.problem, sizeof(st->ini.problem), "unknown key %s",
             name);
    return 0;
}

int adapter_read_config(const adapter_program *p, const char *path,
                        adapter_config *base, void *user)
{
    read_state st;
    int rc;

    memset(&st, 0, sizeof(st));
    st.program = p;
    st.base = base;
    st.user = user;
    adapter_ini_init(&st.ini, path);
    rc = ini_parse(path, ini_entry, &st);
    if (rc < 0) {
        fprintf(stderr, "%s: cannot read %s: %s\n", p->name, path,
                rc == -1 ? strerror(errno) : "out of memory");
        return -1;
    }
    if (rc > 0 || adapter_config_check(&st.ini, base) < 0) {
        if (rc > 0)
            fprintf(stderr, "%s: %s line %d: %s\n", p->name, path, rc,
                    st.ini.problem[0] != '\0' ? st.ini.problem
                                              : "syntax error");
        else
            fprintf(stderr, "%s: %s: %s\n", p->name, path, st.ini.problem);
        return -1;
    }
    return p->check(user, path);
}

int adapter_begin(int argc, char **argv, const adapter_program *p,
                  adapter_config *base, void *user, sigset_t *signals)
{
    const char *config;

    switch (adapter_parse_args(argc, argv, p, &config)) {
    case 1:
        return EXIT_SUCCESS;
    case -1:
        return ADAPTER_EXIT_USAGE;
    default:
        break;
    }
    adapter_log_init(p->section);
    if (adapter_read_config(p, config, base, user) < 0)
        return ADAPTER_EXIT_USAGE;
    if (once_init() < 0) {
        fprintf(stderr, "%s: cannot initialise libsodium\n", p->name);
        return ADAPTER_EXIT_RUNTIME;
    }
    sigemptyset(signals);
    sigaddset(signals, SIGTERM);
    sigaddset(signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    return -1;
}

int adapter_open_local(adapter_core *a, const adapter_config *cfg,
                       once_error *err)
{
    int rc;

    if ((rc = once_keypair_load(&a->key, cfg->key_path, err)) < 0 ||
        (rc = once_public_key_load(a->broker_pk, cfg->broker_key_path,
                                   err)) < 0 ||
        (rc = state_open(&a->state, cfg->state_dir,
                         (uint64_t)cfg->idempotency_hours * 3600 * 1000,
                         err)) < 0)
        return rc;
    return 0;
}

int adapter_connect(adapter_core *a, const adapter_config *cfg,
                    unsigned connections, bool directory, once_error *err)
{
    int rc = pool_open(&a->pool, cfg->broker_endpoint, cfg->department,
                       connections, cfg->timeout_ms, &a->key, a->broker_pk,
                       err);

    if (rc == 0 && directory)
        rc = dircache_open(&a->dir, a->pool, err);
    return rc;
}

void adapter_close(adapter_core *a)
{
    dircache_close(a->dir);
    pool_close(a->pool);
    state_close(a->state);
    once_keypair_wipe(&a->key);
    a->dir = NULL;
    a->pool = NULL;
    a->state = NULL;
}
