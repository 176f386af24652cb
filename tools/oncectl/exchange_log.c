/*
 * exchange_log.c - `oncectl log status` and `oncectl log export`: the
 * exchange log of a broker home.
 *
 * status shows the log's size and its newest signed checkpoint, which an
 * operator keeps to show later (once-audit consistency) that the log only
 * grew. export writes the log for auditors (docs/AUDIT.md) through
 * broker/export.c, which reads it in short LMDB read transactions beside a
 * running onced, so an auditor's copy never needs the broker stopped, and
 * holds exactly the tree of one signed checkpoint. An export into a
 * directory holding an earlier one only writes what is new.
 *
 * oncectl never signs a checkpoint itself: only the broker, which checks
 * before every signature that it never signs two roots for one size,
 * does. So a log with nothing signed yet has nothing to export, and `log
 * export` says so instead of writing a directory no auditor could verify.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "commands.h"
#include "export.h"
#include "home.h"
#include "text_fields.h"
#include "tlog_tiles.h"

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

int cmd_log_status(const command *cmd, int argc, char **argv)
{
    uint64_t size, cp_size, count = 0;
    once_error err;
    MDB_txn *txn;
    MDB_val note;
    auditlog log;
    store s;
    int rc;

    if ((rc = arguments_only(cmd, argc, argv, 0, 0, "")) != OPT_END)
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

int cmd_log_export(const command *cmd, int argc, char **argv)
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
