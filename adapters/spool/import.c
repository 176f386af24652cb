/*
 * import.c - `once-spool import FILE.csv --type T --subject-column C`:
 * back-fills the records a department already holds, one per CSV row.
 *
 * The first row names the columns: column C holds the subject, every
 * other column is a field of the record (its name the field's). Each
 * following row becomes a record of type T issued by the configured
 * department, signed and published like an outbox file, with the spool's
 * idempotency state (the same configuration and state directory), so an
 * import interrupted at any moment (Ctrl-C, kill -9, a reboot) is resumed
 * by running the same command again:
 *
 *  - a row's key is SHA-256("import", NUL, the file's digest, T, NUL, the
 *    row's number): the same file gives the same keys;
 *  - its signed envelope is kept before it is sent, its answer as soon as
 *    it is final; rows with an answer are skipped on a resume, a row with
 *    only an envelope sends those bytes again (the broker answers with the
 *    original answer);
 *  - every record of one file has the same version: --version N, or the
 *    file's modification time in milliseconds. A row whose state is gone
 *    (kept 24 hours) and whose record is already at the broker is then
 *    refused STALE_VERSION, never published as a second version.
 *
 * The whole file is parsed before anything is sent: a malformed file is
 * refused with the row at fault and nothing published. A row the broker
 * refuses is reported on stderr (its number and code, never its subject)
 * and the import goes on. On a terminal, a progress line shows the rows
 * done, the rate and the time left.
 *
 * Rows go in batches of IMPORT_ROWS_PER_CONNECTION per connection
 * (--connections N, default IMPORT_DEFAULT_CONNECTIONS, each its own
 * once_client and CURVE session from the pool, adapters/common/pool.c):
 * the batch's new envelopes are committed to the state in one
 * transaction before any is sent, N threads send them at once (each
 * borrowing a connection, so N publishes are in flight), and the answers
 * are committed in one transaction after the last. One row a time cost a
 * broker round trip and two fsyncs; a batch costs two fsyncs and its
 * rows' round trips shared by N connections. Exactly once as before: an
 * envelope is durable before it is first sent, whichever thread sends
 * it, and a resumed run sends the very bytes kept. The count of rows done
 * (the progress line, "interrupted at row N") moves past a batch only
 * when the answers of all its rows are committed; a row answered after
 * an unanswered one in an interrupted batch is kept answered, and skipped
 * on the resume. A batch holds at most IMPORT_MAX_CONNECTIONS x
 * IMPORT_ROWS_PER_CONNECTION envelopes signed on one session, well inside
 * the broker's replay window of 1024 (docs/PROTOCOL.md 6.1), so sending
 * them out of order is never REPLAY.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "monotonic.h"
#include "spool.h"

#define EXIT_USAGE 2
#define EXIT_RUNTIME 1
#define EXIT_REFUSED 3
#define PROGRESS_EVERY_MS 250
#define RETRY_MAX_MS 30000
#define IMPORT_DEFAULT_CONNECTIONS 8
#define IMPORT_MAX_CONNECTIONS 64
#define IMPORT_ROWS_PER_CONNECTION 8

static const char import_usage[] =
    "Usage: once-spool import FILE.csv --type T --subject-column C\n"
    "                         [--version N] [--connections N] [--config FILE]\n"
    "\n"
    "Publishes one record of type T for every row of FILE.csv. The first\n"
    "row names the columns: column C holds the subject, every other column\n"
    "is a field. All records get version N (default: the file's\n"
    "modification time in milliseconds). Interrupted, it resumes where it\n"
    "was when run again with the same file and options: rows already\n"
    "answered are skipped, none is published twice. Rows the broker\n"
    "refuses are listed on stderr by number. --connections N (1 to 64,\n"
    "default 8) publishes go to the broker at once, each on its own\n"
    "connection.\n"
    "\n"
    "Exit status: 0 when every row is published, 3 when some were refused,\n"
    "1 on an interruption or a runtime failure (run it again), 2 on a\n"
    "usage error or a malformed file.\n";

typedef struct import_run {
    spool_config cfg;
    adapter_core core;                /* no directory */
    const char *type;
    const char *column;               /* the subject column's name */
    uint64_t version;
    uint8_t digest[32];
    size_t subject_column;
    csv_row header;
    unsigned connections;             /* publishes in flight */
    uint64_t rows, done, published, before, refused;
} import_run;

/* One row of a batch on its way to its final answer. */
typedef struct batch_row {
    csv_row csv;
    uint64_t n;                       /* 1 for the first after the header */
    char key[65];
    idem_entry e;
    bool answered_before;             /* its state had the answer */
    bool prepared_now;                /* signed in this run */
    bool published_now;               /* published in this run */
} batch_row;

/* The rows sent together; sender threads take them in turn (next). */
typedef struct import_batch {
    import_run *im;
    batch_row *rows;
    size_t count, cap;
    const char **keys;                /* for state_put_many */
    const idem_entry **entries;
    _Atomic size_t next;
    atomic_bool out_of_memory;
} import_batch;

/* Set by SIGINT and SIGTERM, read by the sender threads too: a lock-free
 * atomic, which a signal handler may store. */
static atomic_int interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void row_key(const import_run *im, uint64_t row, char hex[65])
{
    crypto_hash_sha256_state h;
    uint8_t be[8], key[32];
    int i;

    for (i = 0; i < 8; i++)
        be[i] = (uint8_t)(row >> (56 - 8 * i));
    crypto_hash_sha256_init(&h);
    crypto_hash_sha256_update(&h, (const uint8_t *)"import", 7);
    crypto_hash_sha256_update(&h, im->digest, sizeof(im->digest));
    crypto_hash_sha256_update(&h, (const uint8_t *)im->type,
                              strlen(im->type) + 1);
    crypto_hash_sha256_update(&h, be, sizeof(be));
    crypto_hash_sha256_final(&h, key);
    once_hex_encode(hex, key, sizeof(key));
}

static void progress(const import_run *im, uint64_t started, bool last)
{
    double seconds = (double)(monotonic_ms() - started) / 1000.0;
    double rate = seconds > 0 ? (double)(im->done - im->before) / seconds
                              : 0;
    double left = rate > 0 ? (double)(im->rows - im->done) / rate : 0;

    fprintf(stderr, "\r%llu/%llu rows  %.0f rows/s  ETA %lum%02lus   %s",
            (unsigned long long)im->done, (unsigned long long)im->rows, rate,
            (unsigned long)left / 60, (unsigned long)left % 60,
            last ? "\n" : "");
}

/* Builds row's record and its envelope into e. 0, or the row's refusal
 * in e (status set). */
static int prepare_row(import_run *im, uint64_t n, const csv_row *row,
                       idem_entry *e, once_error *err)
{
    once_record *r = NULL;
    once_client *c;
    once_error why;
    size_t i;
    int rc;

    if (row->count != im->header.count) {
        once_error_set(&why, ONCE_ERR_INVALID_ARGUMENT, "the row has %zu "
                       "columns, the header %zu", row->count,
                       im->header.count);
        rc = -ONCE_ERR_INVALID_ARGUMENT;
        goto refused;
    }
    rc = once_record_new(&r, im->type, row->field[im->subject_column],
                         im->version, im->cfg.base.department, 0, 0, &why);
    for (i = 0; rc == 0 && i < row->count; i++)
        if (i != im->subject_column)
            rc = once_record_add_text(r, im->header.field[i], row->field[i],
                                      &why);
    if (rc == 0)
        rc = once_record_sign(r, &im->core.key, &why);
    if (rc < 0)
        goto refused;
    e->version = im->version;
    c = pool_borrow(im->core.pool);
    rc = once_client_prepare_write(c, r, 0, &e->envelope, &e->envelope_len,
                                   err);
    pool_return(im->core.pool, c, false);
    once_record_free(r);
    return rc;
refused:
    once_record_free(r);
    e->status = adapter_http_status(rc);
    e->answer = strdup(once_error_name(rc));
    fprintf(stderr, "\nrow %llu refused: %s: %s\n", (unsigned long long)n,
            once_error_name(rc), why.message);
    return e->answer != NULL ? 0 : once_error_set(err, ONCE_ERR_NO_MEMORY,
                                                  "out of memory");
}

/* Sends row's kept envelope until its answer is final (e's status set),
 * retrying what may get another answer; leaves the status 0 when
 * interrupted. 0, or -ONCE_ERR_NO_MEMORY. Runs in a sender thread. */
static int send_row(import_run *im, batch_row *row)
{
    idem_entry *e = &row->e;
    once_error why;
    int rc, delay = 500;

    while (e->status == 0) {
        once_client *c = pool_borrow(im->core.pool);

        rc = once_client_send_prepared(c, e->envelope, e->envelope_len, NULL,
                                       &why);
        pool_return(im->core.pool, c, rc == -ONCE_ERR_TIMEOUT);
        if (adapter_answer_is_final(rc)) {
            free(e->answer);
            e->answer = strdup(rc == 0 ? "published" : once_error_name(rc));
            if (e->answer == NULL)
                return -ONCE_ERR_NO_MEMORY;
            e->status = rc == 0 ? 201 : adapter_http_status(rc);
            row->published_now = rc == 0;
            if (rc < 0)
                fprintf(stderr, "\nrow %llu refused: %s: %s\n",
                        (unsigned long long)row->n, once_error_name(rc),
                        why.message);
            return 0;
        }
        if (interrupted)
            return 0;
        adapter_log("warn", "row %llu: broker: %s; retrying in %d ms",
                    (unsigned long long)row->n, once_error_name(rc), delay);
        usleep((useconds_t)delay * 1000u);
        delay = delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay * 2;
    }
    return 0;
}

/* A sender thread: takes the batch's rows in turn until none is left. */
static void *sender(void *arg)
{
    import_batch *b = arg;
    size_t i;

    while (!interrupted && (i = atomic_fetch_add(&b->next, 1)) < b->count)
        if (b->rows[i].e.status == 0 && send_row(b->im, &b->rows[i]) < 0)
            atomic_store(&b->out_of_memory, true);
    return NULL;
}

/* The rows of b whose entry is to be committed (want(row)) in one
 * transaction. */
static int commit_rows(import_run *im, import_batch *b,
                       bool (*want)(const batch_row *), once_error *err)
{
    size_t i, n = 0;

    for (i = 0; i < b->count; i++)
        if (want(&b->rows[i])) {
            b->keys[n] = b->rows[i].key;
            b->entries[n++] = &b->rows[i].e;
        }
    return state_put_many(im->core.state, "import", b->keys, b->entries, n,
                          err);
}

static bool newly_signed(const batch_row *row)
{
    return row->prepared_now;
}

static bool newly_answered(const batch_row *row)
{
    return !row->answered_before && row->e.status != 0;
}

/* The batch's rows to their final answers: their state looked up, the
 * rows not signed before signed and their envelopes committed in one
 * transaction (durable before any is sent, as for an outbox file), sent
 * by up to im->connections threads at once, and the answers committed in
 * one transaction. 0, 1 when interrupted (the rows without an answer keep
 * their envelope for the next run), or -code. */
static int run_batch(import_run *im, import_batch *b, once_error *err)
{
    pthread_t threads[IMPORT_MAX_CONNECTIONS];
    size_t i, started = 0, to_send = 0;
    int rc;

    for (i = 0; i < b->count; i++) {
        batch_row *row = &b->rows[i];

        row_key(im, row->n, row->key);
        rc = state_get(im->core.state, "import", row->key, &row->e, err);
        if (rc < 0 && rc != -ONCE_ERR_NOT_FOUND)
            return rc;
        if (rc == 0 && row->e.status != 0) {
            row->answered_before = true;
            continue;
        }
        if (row->e.envelope == NULL) {
            if ((rc = prepare_row(im, row->n, &row->csv, &row->e, err)) < 0)
                return rc;
            row->prepared_now = row->e.status == 0;
        }
        to_send += row->e.status == 0;
    }
    if ((rc = commit_rows(im, b, newly_signed, err)) < 0)
        return rc;
    atomic_store(&b->next, 0);
    atomic_store(&b->out_of_memory, false);
    for (i = 0; i < im->connections && i < to_send; i++) {
        if (pthread_create(&threads[i], NULL, sender, b) != 0)
            break;
        started++;
    }
    if (started == 0 && to_send > 0)
        sender(b);          /* no thread to be had: this one sends */
    for (i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    /* Every answer had is kept, also when interrupted or out of memory. */
    if ((rc = commit_rows(im, b, newly_answered, err)) < 0)
        return rc;
    if (atomic_load(&b->out_of_memory))
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    for (i = 0; i < b->count; i++) {
        const batch_row *row = &b->rows[i];

        if (row->e.status == 0)
            return 1;
        im->done++;
        im->before += row->answered_before;
        im->published += row->published_now;
        im->refused += row->e.status >= 300;
    }
    return 0;
}

static void batch_clear(import_batch *b)
{
    size_t i;

    for (i = 0; i < b->count; i++) {
        idem_entry_clear(&b->rows[i].e);
        b->rows[i].e = (idem_entry){ 0 };
        b->rows[i].answered_before = false;
        b->rows[i].prepared_now = false;
        b->rows[i].published_now = false;
    }
    b->count = 0;
}

static void batch_free(import_batch *b)
{
    size_t i;

    batch_clear(b);
    for (i = 0; i < b->cap; i++)
        csv_row_clear(&b->rows[i].csv);
    free(b->rows);
    free(b->keys);
    free(b->entries);
}

static int parse_import_args(int argc, char **argv, const char **config,
                             const char **file, import_run *im)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "type", required_argument, NULL, 't' },
        { "subject-column", required_argument, NULL, 's' },
        { "version", required_argument, NULL, 'v' },
        { "connections", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    unsigned long n;
    char *end;
    int opt;

    *config = "/etc/once/spool.conf";
    optind = 1;
    im->connections = IMPORT_DEFAULT_CONNECTIONS;
    while ((opt = getopt_long(argc, argv, "c:t:s:v:n:h", options, NULL)) !=
           -1) {
        switch (opt) {
        case 'c':
            *config = optarg;
            break;
        case 't':
            im->type = optarg;
            break;
        case 's':
            im->column = optarg;
            break;
        case 'v':
            errno = 0;
            im->version = strtoull(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || optarg[0] < '1' ||
                optarg[0] > '9')
                goto usage;
            break;
        case 'n':
            errno = 0;
            n = strtoul(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || optarg[0] < '1' ||
                optarg[0] > '9' || n > IMPORT_MAX_CONNECTIONS)
                goto usage;
            im->connections = (unsigned)n;
            break;
        case 'h':
            fputs(import_usage, stdout);
            return 1;
        default:
            goto usage;
        }
    }
    if (optind + 1 != argc || im->type == NULL || im->column == NULL)
        goto usage;
    *file = argv[optind];
    return 0;
usage:
    fputs(import_usage, stderr);
    return -1;
}

/* Maps file: 0, or -1 after saying why. */
static int map_file(const char *file, import_run *im, const char **data,
                    size_t *len)
{
    struct stat st;
    int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_size == 0) {
        fprintf(stderr, "once-spool import: %s: %s\n", file,
                fd < 0 ? strerror(errno) : "not a regular file with rows");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *len = (size_t)st.st_size;
    *data = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (*data == MAP_FAILED) {
        fprintf(stderr, "once-spool import: %s: %s\n", file, strerror(errno));
        return -1;
    }
    if (im->version == 0)
        im->version = (uint64_t)st.st_mtim.tv_sec * 1000u +
                      (uint64_t)st.st_mtim.tv_nsec / 1000000u;
    crypto_hash_sha256(im->digest, (const uint8_t *)*data, *len);
    return 0;
}

/* The header, then every row parsed once: 0, or -1 after saying why. */
static int check_file(import_run *im, const char *data, size_t len,
                      size_t *first_row)
{
    const char *column = im->column;
    size_t pos = 0, i;
    csv_row row = { 0 };
    once_error err;
    int rc;

    rc = csv_next_row(data, len, &pos, &im->header, &err);
    if (rc <= 0) {
        fprintf(stderr, "once-spool import: the header: %s\n",
                rc < 0 ? err.message : "missing");
        return -1;
    }
    for (i = 0; i < im->header.count &&
                strcmp(im->header.field[i], column) != 0; i++)
        ;
    if (i == im->header.count) {
        fprintf(stderr, "once-spool import: no column %s in the header\n",
                column);
        return -1;
    }
    im->subject_column = i;
    *first_row = pos;
    while ((rc = csv_next_row(data, len, &pos, &row, &err)) == 1)
        im->rows++;
    csv_row_clear(&row);
    if (rc < 0) {
        fprintf(stderr, "once-spool import: row %llu: %s; nothing was "
                "published\n", (unsigned long long)im->rows + 1, err.message);
        return -1;
    }
    return 0;
}

static int run_rows(import_run *im, const char *data, size_t len, size_t pos,
                    once_error *err)
{
    uint64_t started = monotonic_ms(), shown = 0;
    bool tty = isatty(STDERR_FILENO);
    import_batch b = { .im = im };
    int rc = 0;

    b.cap = (size_t)im->connections * IMPORT_ROWS_PER_CONNECTION;
    b.rows = calloc(b.cap, sizeof(*b.rows));
    b.keys = calloc(b.cap, sizeof(*b.keys));
    b.entries = calloc(b.cap, sizeof(*b.entries));
    if (b.rows == NULL || b.keys == NULL || b.entries == NULL) {
        batch_free(&b);
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    }
    while (!interrupted && rc == 0) {
        while (b.count < b.cap &&
               (rc = csv_next_row(data, len, &pos, &b.rows[b.count].csv,
                                  err)) == 1) {
            b.rows[b.count].n = im->done + b.count + 1;
            b.count++;
        }
        if (rc < 0 || b.count == 0)
            break;
        rc = run_batch(im, &b, err);
        batch_clear(&b);
        if (tty && (monotonic_ms() - shown >= PROGRESS_EVERY_MS || rc != 0)) {
            progress(im, started, false);
            shown = monotonic_ms();
        }
    }
    if (tty)
        progress(im, started, true);
    batch_free(&b);
    return rc < 0 ? rc : interrupted || rc == 1 ? 1 : 0;
}

int import_main(int argc, char **argv)
{
    static import_run im;
    const char *config, *file, *data = NULL;
    struct sigaction sa;
    size_t len = 0, first_row;
    once_error err;
    int rc, status = EXIT_USAGE;

    if ((rc = parse_import_args(argc, argv, &config, &file, &im)) != 0)
        return rc > 0 ? EXIT_SUCCESS : EXIT_USAGE;
    adapter_log_init("spool import");
    if (spool_load_config(&im.cfg, config) < 0 || once_init() < 0)
        return EXIT_USAGE;
    if (map_file(file, &im, &data, &len) < 0 ||
        check_file(&im, data, len, &first_row) < 0)
        goto out;
    if (adapter_open_local(&im.core, &im.cfg.base, &err) < 0) {
        fprintf(stderr, "once-spool import: %s\n", err.message);
        goto out;
    }
    status = EXIT_RUNTIME;
    if (adapter_connect(&im.core, &im.cfg.base, im.connections, false,
                        &err) < 0) {
        fprintf(stderr, "once-spool import: %s\n", err.message);
        goto out;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = run_rows(&im, data, len, first_row, &err);
    printf("import: %llu rows: %llu published now, %llu answered before, "
           "%llu refused\n", (unsigned long long)im.rows,
           (unsigned long long)im.published, (unsigned long long)im.before,
           (unsigned long long)im.refused);
    if (rc < 0)
        fprintf(stderr, "once-spool import: %s\n", err.message);
    else if (rc > 0)
        fprintf(stderr, "once-spool import: interrupted at row %llu; run "
                "the same command again to resume\n",
                (unsigned long long)im.done + 1);
    else
        status = im.refused > 0 ? EXIT_REFUSED : EXIT_SUCCESS;
out:
    adapter_close(&im.core);
    csv_row_clear(&im.header);
    if (data != NULL)
        munmap((void *)data, len);
    return status;
}
