/*
 * main.c - once-spool: start-up, configuration, signals, the main loop.
 *
 * The configuration is one INI file, [spool] section, read by
 * adapters/common/startup.c like the gateway's (the keys both have by
 * adapters/common/config.c, the spool's own by own_entry): unknown keys
 * are errors, relative paths are relative to the file. Start-up refuses,
 * with exit status 2 and one line saying why, what cannot work: a key file
 * others can read, spool directories others can open or on more than one
 * filesystem, a second spool on the same directories.
 *
 * The loop is one thread. It watches outbox/ and requests/ with inotify
 * (a file renamed in, or closed after writing) and, on every event and
 * once at start, makes a pass: first the files already in work/ (taken
 * before a crash or a kill), then every file the queues hold, oldest name
 * first, each taken and finished by job_run. A file the broker could not
 * answer for good stops the pass; the loop tries again after a delay that
 * doubles from RETRY_MIN_MS to RETRY_MAX_MS, or at the next event.
 *
 * SIGTERM and SIGINT arrive through a signalfd, which the loop reads
 * between files: the file in hand is finished (its answer written, its
 * rename done), then the spool exits 0. A kill -9 at any other moment is
 * what the idempotency state is for (job.c).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "spool.h"

#ifndef ONCE_VERSION
#define ONCE_VERSION "unknown"
#endif

#define DEFAULT_CONFIG "/etc/once/spool.conf"
#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 30000
/* Connections: the worker's and the directory refresh's. */
#define SPOOL_POOL 2

static const char usage_text[] =
    "Usage: once-spool [--config FILE]\n"
    "       once-spool import FILE.csv --type T --subject-column C\n"
    "                         [--version N] [--config FILE]\n"
    "\n"
    "once-spool connects a department system that can only write and read\n"
    "files to the once broker. It publishes the records the system puts in\n"
    "outbox/ and makes the requests it puts in requests/, one JSON file\n"
    "each, and moves every file, exactly once, to sent/ (with the receipt,\n"
    "or the verified answer in answers/) or to failed/ (with a\n"
    "NAME.problem.json). It holds the department's key and checks every\n"
    "record it hands over against the issuer's signature.\n"
    "docs/ADAPTERS.md (\"The file spool\") is the guide.\n"
    "\n"
    "A file is taken once it has its final name: write it as .NAME or\n"
    "NAME.tmp, then rename it. Names starting with '.' or ending in .tmp\n"
    "are never taken.\n"
    "\n"
    ADAPTER_USAGE_OPTIONS(DEFAULT_CONFIG)
    "\n"
    "Configuration ([spool] section; paths relative to the file):\n"
    ADAPTER_USAGE_KEYS
    "  spool_directory   outbox/, requests/, work/, sent/, answers/,\n"
    "                    failed/ under it, created 0700 (required)\n"
    "  max_file_bytes    largest file taken (default 1048576)\n"
    "  notices           off (default); on: notices of the department's\n"
    "                    subscriptions as files in notices/; held,\n"
    "                    held:TYPE, type:TYPE: subscribe to those first\n"
    "\n"
    "once-spool import publishes one record for every row of a CSV file\n"
    "(back-filling what the department already holds), resumably; see\n"
    "once-spool import --help.\n"
    "\n"
    "Exit status: 0 after SIGTERM or SIGINT, 1 on a runtime failure, 2 on a\n"
    "usage or configuration error.\n";

/* The spool's own keys (adapter_program.own_entry). */
static int own_entry(void *user, adapter_ini *ini, const char *name,
                     const char *value)
{
    spool_config *cfg = user;

    if (strcmp(name, "spool_directory") == 0)
        return adapter_ini_path(ini, cfg->spool_dir, value);
    if (strcmp(name, "notices") == 0) {
        if (notices_config(cfg, value) == 0)
            return 1;
        snprintf(ini->problem, sizeof(ini->problem), "notices must be off, "
                 "on, held, held:TYPE or type:TYPE");
        return 0;
    }
    if (strcmp(name, "max_file_bytes") == 0)
        return adapter_ini_size(ini, name, value, 1024, ONCE_MAX_MESSAGE,
                                &cfg->max_file);
    return -1;
}

/* The spool's own keys work together (adapter_program.check). */
static int check(void *user, const char *path)
{
    spool_config *cfg = user;

    if (cfg->spool_dir[0] != '\0')
        return 0;
    fprintf(stderr, "once-spool: %s needs spool_directory\n", path);
    return -1;
}

static const adapter_program program = {
    "once-spool", "spool", DEFAULT_CONFIG, usage_text, ONCE_VERSION,
    own_entry, check
};

static void defaults(spool_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->base.timeout_ms = SPOOL_DEFAULT_TIMEOUT_MS;
    cfg->max_file = SPOOL_DEFAULT_MAX_FILE;
}

int spool_load_config(spool_config *cfg, const char *path)
{
    defaults(cfg);
    return adapter_read_config(&program, path, &cfg->base, cfg);
}

/* Whether SIGTERM or SIGINT is pending (read from the signalfd). */
static bool stop_asked(int sigfd)
{
    struct signalfd_siginfo si;

    return read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si);
}

enum pass_end { PASS_IDLE, PASS_RETRY, PASS_STOP };

/* Every file of dirfd (work/ when take is false, a queue otherwise). */
static int pass_dir(spool *s, enum spool_queue q, int dirfd, bool take,
                    int sigfd, enum pass_end *end, once_error *err)
{
    enum job_result result;
    char **names;
    size_t count, i;
    int rc;

    if ((rc = dirs_list(dirfd, &names, &count, err)) < 0)
        return rc;
    for (i = 0; i < count && *end == PASS_IDLE; i++) {
        if (stop_asked(sigfd)) {
            *end = PASS_STOP;
            break;
        }
        if (take) {
            rc = dirs_take(&s->dirs, q, names[i], err);
            /* Gone, or its name is in work/ (someone put a file there):
             * left where it is. */
            if (rc == -ONCE_ERR_NOT_FOUND || rc == -ONCE_ERR_EXISTS) {
                if (rc == -ONCE_ERR_EXISTS)
                    adapter_log("warn", "%s", err->message);
                rc = 0;
                continue;
            }
            if (rc < 0)
                break;
        }
        if ((rc = job_run(s, q, names[i], &result, err)) < 0)
            break;
        if (result == JOB_RETRY)
            *end = PASS_RETRY;
    }
    for (i = 0; i < count; i++)
        free(names[i]);
    free(names);
    return rc < 0 ? rc : 0;
}

static int pass(spool *s, int sigfd, enum pass_end *end, once_error *err)
{
    int q, rc;

    *end = PASS_IDLE;
    for (q = 0; q < 2 && *end == PASS_IDLE; q++)
        if ((rc = pass_dir(s, q, s->dirs.work[q], false, sigfd, end,
                           err)) < 0)
            return rc;
    for (q = 0; q < 2 && *end == PASS_IDLE; q++)
        if ((rc = pass_dir(s, q, s->dirs.in[q], true, sigfd, end, err)) < 0)
            return rc;
    return 0;
}

static int run(spool *s, int sigfd, once_error *err)
{
    char events[4096] __attribute__((aligned(__alignof__(struct
                                                          inotify_event))));
    int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC), delay = 0, q, rc;
    struct pollfd fds[2];
    enum pass_end end;

    if (ino < 0)
        return once_error_set(err, ONCE_ERR_IO, "inotify: %s",
                              strerror(errno));
    for (q = 0; q < 2; q++) {
        char path[32];

        /* The watch is set before the first pass, so no file is missed. */
        snprintf(path, sizeof(path), "/proc/self/fd/%d", s->dirs.in[q]);
        if (inotify_add_watch(ino, path, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
            close(ino);
            return once_error_set(err, ONCE_ERR_IO, "inotify: %s",
                                  strerror(errno));
        }
    }
    fds[0] = (struct pollfd){ .fd = ino, .events = POLLIN };
    fds[1] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
    for (;;) {
        if ((rc = pass(s, sigfd, &end, err)) < 0 || end == PASS_STOP)
            break;
        if (end == PASS_RETRY)
            delay = delay == 0 ? RETRY_MIN_MS
                               : delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS
                                                          : delay * 2;
        else
            delay = 0;
        if (poll(fds, 2, end == PASS_RETRY ? delay : -1) < 0 &&
            errno != EINTR) {
            rc = once_error_set(err, ONCE_ERR_IO, "poll: %s",
                                strerror(errno));
            break;
        }
        if (fds[1].revents & POLLIN) {
            rc = 0;
            break;
        }
        while (read(ino, events, sizeof(events)) > 0)
            ;
    }
    close(ino);
    return rc;
}

int main(int argc, char **argv)
{
    static spool s;
    sigset_t signals;
    once_error err;
    int sigfd, status;

    if (argc > 1 && strcmp(argv[1], "import") == 0)
        return import_main(argc - 1, argv + 1);
    s.dirs = (spool_dirs){ .root = -1, .in = { -1, -1 },
                           .work = { -1, -1 }, .sent = -1, .answers = -1,
                           .failed = -1, .notices = -1 };
    defaults(&s.cfg);
    if ((status = adapter_begin(argc, argv, &program, &s.cfg.base, &s.cfg,
                                &signals)) >= 0)
        return status;
    status = ADAPTER_EXIT_USAGE;
    sigfd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd < 0) {
        fprintf(stderr, "once-spool: signalfd: %s\n", strerror(errno));
        return ADAPTER_EXIT_RUNTIME;
    }
    if (adapter_open_local(&s.core, &s.cfg.base, &err) < 0 ||
        dirs_open(&s.dirs, s.cfg.spool_dir, &err) < 0 ||
        (s.cfg.notices &&
         dirs_open_notices(&s.dirs, s.cfg.spool_dir, &err) < 0)) {
        fprintf(stderr, "once-spool: %s\n", err.message);
        goto out;
    }
    status = ADAPTER_EXIT_RUNTIME;
    if (adapter_connect(&s.core, &s.cfg.base, SPOOL_POOL, true, &err) < 0) {
        adapter_log("error", "%s", err.message);
        goto out;
    }
    if (notices_start(&s, &err) < 0) {
        adapter_log("error", "%s", err.message);
        goto out;
    }
    adapter_log("info", "department %s spooling %s to %s",
                s.cfg.base.department, s.cfg.spool_dir,
                s.cfg.base.broker_endpoint);
    if (run(&s, sigfd, &err) < 0) {
        adapter_log("error", "%s", err.message);
        goto out;
    }
    adapter_log("info", "stopped");
    status = EXIT_SUCCESS;
out:
    notices_stop();
    adapter_close(&s.core);
    dirs_close(&s.dirs);
    close(sigfd);
    return status;
}
