/*
 * home.c - the broker once-bench measures: a broker home made for the run,
 * and the real onced started on it.
 *
 * The home is built directly with the storage API (as oncectl would, but
 * without a process per department): the broker key, the audit key, one
 * issuer and one requester department per client, each with its own key,
 * a record type of BENCH_FIELDS fields, and a grant of the first
 * BENCH_GRANTED of them to every requester. once.conf sets the workers
 * (--workers) and a map size big enough for any run.
 *
 * onced itself is a child process, run by onced_process.c (shared with
 * the end-to-end test harness): started with its output in a log in the
 * run's directory, ready when it answers a signed ping, stopped with
 * SIGTERM and expected to exit 0, because a broker that does not drain
 * cleanly under load is a failed run, however fast it was.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>

#include "bench.h"
#include "file_io.h"
#include "home.h"
#include "onced_process.h"
#include "policy.h"
#include "preload.h"
#include "store.h"

/* How long onced may take to answer its first ping, and to exit after
 * SIGTERM; how much of its log a failed run shows. */
#define BROKER_READY_SECONDS 20.0
#define BROKER_PROBE_TIMEOUT_MS 500
#define BROKER_STOP_SECONDS 30.0
#define BROKER_LOG_TAIL_BYTES 4096

/* A loopback port nothing listens on now, for onced to bind. Another
 * program could take it before onced does; onced then fails to start and
 * says so, and the run can be repeated. */
static int free_tcp_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    if (fd < 0)
        return -1;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

void requester_id(size_t i, char *out, size_t cap)
{
    snprintf(out, cap, "bench-requester-%03zu", i);
}

static int write_config(const bench_home *h)
{
    char path[PATH_MAX + 16], console[32] = "";
    FILE *f;

    if (h->console_port > 0)
        snprintf(console, sizeof(console), "127.0.0.1:%d", h->console_port);
    if (path_join(path, sizeof(path), h->home, "once.conf") < 0 ||
        (f = fopen(path, "w")) == NULL)
        return -1;
    fprintf(f,
            "# written by once-bench\n"
            "[broker]\n"
            "name = once-bench-broker\n"
            "listen = %s\n"
            "key = broker.key\n"
            "audit_key = audit.key\n"
            "log_origin = once-bench/exchange-log\n"
            "database = db\n"
            "map_size_mb = %zu\n"
            "workers = %lu\n"
            "skew_seconds = 300\n"
            "group_commit_max = 256\n"
            "log_level = warn\n"
            "console_listen = %s\n",
            h->endpoint, preload_map_size_mb(opt.preload), opt.workers,
            console);
    return fclose(f) == 0 ? 0 : -1;
}

/* With --console: a free loopback port for the console and its token in
 * HOME/console.token (0600), which the scraper (scrape.c) sends. */
static int make_console(bench_home *h)
{
    uint8_t raw[32];
    char path[PATH_MAX + 32], text[66];
    int rc;

    if (!opt.console)
        return 0;
    h->console_port = free_tcp_port();
    if (h->console_port < 0 ||
        path_join(path, sizeof(path), h->home, "console.token") < 0)
        return -1;
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(h->console_token, sizeof(h->console_token), raw,
                   sizeof(raw));
    snprintf(text, sizeof(text), "%s\n", h->console_token);
    rc = file_create_new(path, text, 65, 0600);
    if (rc < 0)
        note("cannot write %s: %s", path, strerror(-rc));
    return rc < 0 ? -1 : 0;
}

/* The broker home: keys, config, and in the database the issuer, one
 * requester department per client, the record type and a grant of two of
 * its four fields to every requester. */
int make_home(bench_home *h, conn *clients, size_t n_clients)
{
    char key_path[PATH_MAX + 16], pub_path[PATH_MAX + 16], db[PATH_MAX + 16];
    record_type t;
    store s;
    MDB_txn *txn = NULL;
    once_error err;
    size_t i;
    int rc;

    if (path_join(h->home, sizeof(h->home), h->dir, "home") < 0 ||
        mkdir(h->home, 0700) != 0)
        return -1;
    if (opt.tcp) {
        int port = free_tcp_port();

        if (port < 0)
            return -1;
        snprintf(h->endpoint, sizeof(h->endpoint), "tcp://127.0.0.1:%d",
                 port);
    } else
        snprintf(h->endpoint, sizeof(h->endpoint), "ipc://%s/broker.sock",
                 h->dir);
    if (once_keypair_generate(&h->broker) < 0 ||
        once_keypair_generate(&h->issuer) < 0 ||
        path_join(key_path, sizeof(key_path), h->home, "broker.key") < 0 ||
        path_join(pub_path, sizeof(pub_path), h->home, "broker.pub") < 0 ||
        path_join(db, sizeof(db), h->home, "db") < 0 ||
        path_join(h->log_path, sizeof(h->log_path), h->dir, "onced.log") < 0)
        return -1;
    if (once_keypair_save(&h->broker, key_path, pub_path, &err) < 0) {
        note("cannot write the broker key: %s", err.message);
        return -1;
    }
    /* The audit key has a secret key file's format. */
    {
        once_keypair audit;
        int saved;

        if (once_keypair_generate(&audit) < 0 ||
            path_join(key_path, sizeof(key_path), h->home, "audit.key") < 0 ||
            path_join(pub_path, sizeof(pub_path), h->home, "audit.pub") < 0)
            return -1;
        saved = once_keypair_save(&audit, key_path, pub_path, &err);
        once_keypair_wipe(&audit);
        if (saved < 0) {
            note("cannot write the audit key: %s", err.message);
            return -1;
        }
    }
    if (make_console(h) < 0 || write_config(h) < 0)
        return -1;
    if (store_open(&s, db, (size_t)4096 << 20, &err) < 0) {
        note("cannot create the database: %s", err.message);
        return -1;
    }
    if ((rc = store_begin(&s, 0, &txn, &err)) < 0)
        goto out;
    if ((rc = policy_department_add(txn, &s, BENCH_ISSUER, "Bench issuer",
                                    h->issuer.public_key, &err)) < 0)
        goto abort;
    for (i = 0; i < n_clients; i++) {
        if ((rc = policy_department_add(txn, &s, clients[i].dept,
                                        "Bench requester",
                                        clients[i].key.public_key,
                                        &err)) < 0)
            goto abort;
    }
    memset(&t, 0, sizeof(t));
    snprintf(t.name, sizeof(t.name), "%s", BENCH_TYPE);
    snprintf(t.issuers[0], sizeof(t.issuers[0]), "%s", BENCH_ISSUER);
    t.issuer_count = 1;
    t.subject_kind = ONCE_SUBJECT_ENTERPRISE;
    for (i = 0; i < BENCH_FIELDS; i++)
        snprintf(t.fields[i], sizeof(t.fields[i]), "%s",
                 bench_field_names[i]);
    t.field_count = BENCH_FIELDS;
    if ((rc = policy_type_add(txn, &s, &t, &err)) < 0)
        goto abort;
    for (i = 0; i < n_clients; i++) {
        grant g;

        memset(&g, 0, sizeof(g));
        snprintf(g.requester, sizeof(g.requester), "%s", clients[i].dept);
        snprintf(g.type, sizeof(g.type), "%s", BENCH_TYPE);
        snprintf(g.purpose, sizeof(g.purpose), "%s", BENCH_PURPOSE);
        for (size_t f = 0; f < BENCH_GRANTED; f++)
            snprintf(g.fields[f], sizeof(g.fields[f]), "%s",
                     bench_field_names[f]);
        g.field_count = BENCH_GRANTED;
        if ((rc = policy_grant_add(txn, &s, &g, &err)) < 0)
            goto abort;
    }
    rc = store_commit(txn, &err);
    txn = NULL;
    goto out;
abort:
    mdb_txn_abort(txn);
out:
    store_close(&s);
    if (rc < 0)
        note("cannot set up the broker's policy: %s", err.message);
    return rc < 0 ? -1 : 0;
}

const char *find_onced(char *buf, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n;
    char *slash;

    if (opt.onced != NULL)
        return opt.onced;
    if (getenv("ONCED") != NULL && getenv("ONCED")[0] != '\0')
        return getenv("ONCED");
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    slash = strrchr(self, '/');
    if (slash == NULL)
        return NULL;
    *slash = '\0';
    if ((size_t)snprintf(buf, cap, "%s/../../broker/onced", self) >= cap)
        return NULL;
    return buf;
}

int broker_start(bench_home *h, const char *onced)
{
    char *argv[] = {(char *)onced, "--home", h->home, NULL};
    once_error err = {0};

    if (access(onced, X_OK) != 0) {
        note("cannot run the broker %s: %s (give --onced PATH or set ONCED)",
             onced, strerror(errno));
        return -1;
    }
    h->pid = child_spawn(argv, h->log_path);
    if (h->pid < 0) {
        h->pid = 0;
        return -1;
    }
    if (onced_wait_ready(&h->pid, h->endpoint, BENCH_ISSUER, &h->issuer,
                         h->broker.public_key, BROKER_PROBE_TIMEOUT_MS,
                         BROKER_READY_SECONDS, &err) < 0) {
        note("%s", err.message);
        return -1;
    }
    return 0;
}

int broker_stop(bench_home *h)
{
    once_error err = {0};

    if (onced_stop(&h->pid, BROKER_STOP_SECONDS, &err) != 0) {
        note("%s", err.message);
        return -1;
    }
    return 0;
}

void broker_abandon(bench_home *h)
{
    onced_kill(&h->pid);
    log_file_print(h->log_path, "onced log", BROKER_LOG_TAIL_BYTES);
}

static int remove_entry(const char *path, const struct stat *st, int type,
                        struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes the temporary directory this program made with mkdtemp, without
 * following symbolic links. */
void remove_tree(const char *dir)
{
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        note("could not remove all of %s", dir);
}
