/*
 * metrics.c - the data path's counters and their Prometheus exposition.
 *
 * The console (console.c) must never make an exchange wait, so nothing here
 * takes a lock. Every counter is a C11 atomic, incremented with relaxed
 * ordering by the thread that sees the event and read, also relaxed, by the
 * console thread when it is scraped. A relaxed increment is one locked add
 * on x86 and never blocks; a scrape may see a counter of one group before
 * another's, which Prometheus tolerates (each series is monotonic on its
 * own, and that is all a counter promises).
 *
 * Where the events come from. The one place that sees every logged
 * exchange is the writer, after it committed the group (or failed to): it
 * makes a single call, metrics_committed, with the whole group. From each
 * job it counts the exchange by kind, decision and error code and the
 * record it created, if any, under its type; from the group its size and
 * the duration of its transaction. The log-derived series (kpi.c) and the
 * exchange counters count the same logged exchanges; refusals answered
 * without a leaf are counted apart, by reason (metrics_unlogged), where
 * they are decided.
 *
 * Request latency is measured from the moment the I/O thread read the
 * message off the ROUTER (received_ns: it stamps the job, server.c, and
 * the stamp travels with it to the worker and the writer) to the moment
 * its answer is handed back to the I/O thread for sending: by the worker
 * for what it answers itself, by the writer after the commit for logged
 * exchanges (metrics_answered). Every answered message counts, pings and
 * refusals included; the I/O thread's own QUOTA_EXCEEDED refusals count
 * when sent.
 *
 * Queue depths are differences of two counters, one bumped by each side:
 * the workers' queue (jobs the I/O thread passed on, less those a worker
 * took), the writer's (handed to it, less committed) and the answers'
 * (answers and tokens handed back, less those the I/O thread took off).
 * The I/O thread adds its counts once per batch, on a cache line of its
 * own, so it pays one uncontended add per batch and never waits.
 *
 * Records per type are a table the writer appends to and the console
 * reads without a lock: seeded at start from the counts registry.c keeps
 * (metrics_records_seed, before the writer runs), then bumped by the
 * writer for each record a committed publish created. A new row's name is
 * written before the row count that makes it visible is released, and
 * names never change, so the console reads a consistent prefix. Types are
 * catalogue names; past TYPE_SLOTS of them, the rest share one
 * "(other)" row.
 *
 * Labels are bounded: kinds are the three logged ones, decisions two, and
 * codes the protocol's (below CODE_SLOTS; anything else counts as
 * INTERNAL). Per-department and per-type series come from the log in
 * kpi.c, whose tables the console thread owns, so no string ever has to be
 * shared between threads here.
 *
 * Histograms keep one atomic count per bucket (not cumulative) and are
 * summed at exposition into Prometheus' cumulative _bucket series, with
 * _sum in seconds (kept in nanoseconds) and _count.
 *
 * Process metrics are the standard ones Prometheus client libraries
 * export (process_cpu_seconds_total, process_resident_memory_bytes,
 * process_open_fds, process_start_time_seconds, ...), read from
 * /proc/self at scrape time.
 */
#include <dirent.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "counter.h"
#include "envelope.h"
#include "kpi.h"
#include "metrics.h"
#include "monotonic.h"
#include "registry.h"
#include "writer.h"

#define KIND_SLOTS 3         /* publish, revoke, request */
#define DECISION_SLOTS 2     /* granted, refused */
#define CODE_SLOTS 128       /* wire codes (< 100) and local ones */

#define TYPE_SLOTS 1024
#define OTHER_TYPE "(other)"

static const double latency_bounds[METRICS_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10,
};
static const double group_bounds[] = {
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536,
};
#define LATENCY_BUCKETS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))
#define GROUP_BUCKETS (sizeof(group_bounds) / sizeof(group_bounds[0]))

typedef struct histogram {
    const double *bounds;
    size_t n_bounds;
    counter buckets[LATENCY_BUCKETS + 1]; /* the last is +Inf */
    counter sum;                          /* ns, or units for sizes */
    counter count;
} histogram;

/* What the I/O thread bumps, apart from what the other threads do. */
static struct {
    alignas(64) counter dispatched;
    counter forwarded;
} io;

typedef struct type_records {
    char name[ONCE_MAX_NAME + 1];
    counter records;
} type_records;

/* Appended to by the writer only (and seeded before it runs). */
static struct {
    type_records rows[TYPE_SLOTS]; /* the last is "(other)" once full */
    _Atomic size_t count;
} types;

static struct {
    alignas(64) counter exchanges[KIND_SLOTS][DECISION_SLOTS][CODE_SLOTS];
    counter unlogged[UNLOGGED_REASONS];
    histogram latency;
    histogram group_size;
    histogram commit_duration;
    counter taken;
    counter handed_back;
    counter to_writer;
    counter committed_jobs;
    counter commits;
    counter failed_groups;
    _Atomic int last_failure_code;
    counter last_failure_ns;
    counter last_commit_ns;
    uint64_t start_time_ms; /* written once before any thread starts */
} m = {
    .latency = { .bounds = latency_bounds, .n_bounds = LATENCY_BUCKETS },
    .group_size = { .bounds = group_bounds, .n_bounds = GROUP_BUCKETS },
    .commit_duration = { .bounds = latency_bounds,
                         .n_bounds = LATENCY_BUCKETS },
};

static const char *const kind_labels[KIND_SLOTS] = {
    "publish", "revoke", "request"};
static const char *const decision_labels[DECISION_SLOTS] = {
    "granted", "refused"};
static const char *const unlogged_labels[UNLOGGED_REASONS] = {
    "refusal_budget", "pending_share", "unattributed", "log_unavailable",
    "not_committed"};


void metrics_init(void)
{
    m.start_time_ms = once_now_ms();
}

void metrics_dispatched(uint64_t n)
{
    if (n != 0)
        counter_add(&io.dispatched, n);
}

void metrics_forwarded(uint64_t n)
{
    if (n != 0)
        counter_add(&io.forwarded, n);
}

void metrics_job_taken(void)
{
    counter_add(&m.taken, 1);
}

void metrics_to_writer(void)
{
    counter_add(&m.to_writer, 1);
}

void metrics_handed_back(void)
{
    counter_add(&m.handed_back, 1);
}

void metrics_unlogged(metrics_unlogged_reason why)
{
    if ((unsigned)why < UNLOGGED_REASONS)
        counter_add(&m.unlogged[why], 1);
}

/* value in the histogram's unit: seconds for durations (given in ns and
 * compared as such), a count for sizes. */
static void observe(histogram *h, uint64_t value, double scale)
{
    size_t i = 0;

    while (i < h->n_bounds && (double)value * scale > h->bounds[i])
        i++;
    counter_add(&h->buckets[i], 1);
    counter_add(&h->sum, value);
    counter_add(&h->count, 1);
}

void metrics_answered(uint64_t received_ns)
{
    uint64_t now;

    if (received_ns == 0)
        return;
    now = monotonic_ns();
    if (received_ns <= now)
        observe(&m.latency, now - received_ns, 1e-9);
}

/* The writer's (or, before it runs, the seed's): adds n records of type. */
static void records_add(const char *type, uint64_t n)
{
    size_t count = atomic_load_explicit(&types.count, memory_order_relaxed);
    size_t i;

    for (i = 0; i < count; i++)
        if (strcmp(types.rows[i].name, type) == 0) {
            counter_add(&types.rows[i].records, n);
            return;
        }
    if (count == TYPE_SLOTS) {
        counter_add(&types.rows[TYPE_SLOTS - 1].records, n);
        return;
    }
    snprintf(types.rows[count].name, sizeof(types.rows[count].name), "%s",
             count == TYPE_SLOTS - 1 ? OTHER_TYPE : type);
    atomic_store_explicit(&types.rows[count].records, n,
                          memory_order_relaxed);
    atomic_store_explicit(&types.count, count + 1, memory_order_release);
}

static int seed_type(const char *type, uint64_t records, void *arg)
{
    (void)arg;
    records_add(type, records);
    return 0;
}

int metrics_records_seed(const store *db, once_error *err)
{
    MDB_txn *txn;
    int rc;

    if ((rc = store_begin(db, 1, &txn, err)) < 0)
        return rc;
    rc = registry_count_types(txn, db, seed_type, NULL, err);
    mdb_txn_abort(txn);
    return rc;
}

static int kind_slot(int kind)
{
    switch (kind) {
    case ONCE__KIND__KIND_PUBLISH: return 0;
    case ONCE__KIND__KIND_REVOKE: return 1;
    case ONCE__KIND__KIND_REQUEST: return 2;
    default: return -1;
    }
}

void metrics_committed(struct write_job *const *group, size_t n,
                       uint64_t started_ns)
{
    uint64_t now = monotonic_ns();
    bool failed = false;
    size_t i;

    for (i = 0; i < n; i++) {
        const write_job *job = group[i];
        int kind = kind_slot(job->leaf.kind), code = 0, decision = 0;

        if (job->result < 0) {
            code = -job->result;
            decision = 1;
            failed = true;
        } else if (job->reply_kind == ONCE__KIND__KIND_ERROR) {
            code = job->refusal;
            decision = 1;
        }
        if (code < 0 || code >= CODE_SLOTS)
            code = ONCE_ERR_INTERNAL;
        if (kind >= 0)
            counter_add(&m.exchanges[kind][decision][code], 1);
        if (job->result < 0)
            metrics_unlogged(UNLOGGED_NOT_COMMITTED);
        else if (job->created_record)
            records_add(job->leaf.record_type, 1);
    }
    observe(&m.group_size, n, 1);
    observe(&m.commit_duration, now - started_ns, 1e-9);
    counter_add(&m.committed_jobs, n);
    if (failed) {
        counter_add(&m.failed_groups, 1);
        atomic_store_explicit(&m.last_failure_code, -group[0]->result,
                              memory_order_relaxed);
        atomic_store_explicit(&m.last_failure_ns, now, memory_order_relaxed);
    } else {
        counter_add(&m.commits, 1);
        atomic_store_explicit(&m.last_commit_ns, now, memory_order_relaxed);
    }
}

void metrics_live_get(metrics_live *out)
{
    uint64_t cumulative = 0;
    int k, c;
    size_t i;

    memset(out, 0, sizeof(*out));
    for (k = 0; k < KIND_SLOTS; k++) {
        out->granted += counter_get(&m.exchanges[k][0][0]);
        for (c = 0; c < CODE_SLOTS; c++)
            out->refused += counter_get(&m.exchanges[k][1][c]);
    }
    for (i = 0; i <= LATENCY_BUCKETS; i++) {
        cumulative += counter_get(&m.latency.buckets[i]);
        out->latency_le[i] = cumulative;
    }
    out->latency_bounds = latency_bounds;
    out->n_bounds = LATENCY_BUCKETS;
}

/* What came out first: a depth can then only be overstated by what went
 * in meanwhile, never underflow. */
static uint64_t depth(counter *in, counter *out)
{
    uint64_t done = counter_get(out), taken = counter_get(in);

    return taken > done ? taken - done : 0;
}

void metrics_queues_get(metrics_queues *out)
{
    out->workers = depth(&io.dispatched, &m.taken);
    out->writer = depth(&m.to_writer, &m.committed_jobs);
    out->answers = depth(&m.handed_back, &io.forwarded);
}

void metrics_writer_state_get(metrics_writer_state *out)
{
    out->queued = depth(&m.to_writer, &m.committed_jobs);
    out->last_commit_ns = counter_get(&m.last_commit_ns);
    out->failed_groups = counter_get(&m.failed_groups);
    out->last_failure_code =
        atomic_load_explicit(&m.last_failure_code, memory_order_relaxed);
    out->last_failure_ns = counter_get(&m.last_failure_ns);
}

/* ---- exposition --------------------------------------------------------- */

static void write_histogram(FILE *out, const char *name, const char *help,
                            histogram *h, double scale)
{
    uint64_t cumulative = 0;
    size_t i;

    fprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (i = 0; i <= h->n_bounds; i++) {
        cumulative += counter_get(&h->buckets[i]);
        if (i < h->n_bounds)
            fprintf(out, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i],
                    (unsigned long long)cumulative);
        else
            fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name,
                    (unsigned long long)cumulative);
    }
    fprintf(out, "%s_sum %.9g\n%s_count %llu\n", name,
            (double)counter_get(&h->sum) * scale, name,
            (unsigned long long)counter_get(&h->count));
}

void metrics_write_data_path(FILE *out)
{
    metrics_writer_state ws;
    metrics_queues q;
    size_t i, n;
    int k, d, c, r;

    fputs("# HELP once_exchanges_total Logged exchanges answered since "
          "start, by kind, decision and error code.\n"
          "# TYPE once_exchanges_total counter\n", out);
    for (k = 0; k < KIND_SLOTS; k++)
        for (d = 0; d < DECISION_SLOTS; d++)
            for (c = 0; c < CODE_SLOTS; c++) {
                uint64_t v = counter_get(&m.exchanges[k][d][c]);

                /* Granted series always exist, so rates start at 0. */
                if (v == 0 && !(d == 0 && c == 0))
                    continue;
                fprintf(out, "once_exchanges_total{kind=\"%s\","
                        "decision=\"%s\",code=\"%s\"} %llu\n",
                        kind_labels[k], decision_labels[d],
                        c == 0 ? "NONE" : once_error_name(c),
                        (unsigned long long)v);
            }
    fputs("# HELP once_exchanges_unlogged_total Refusals answered without "
          "a leaf of the exchange log since start, by reason.\n"
          "# TYPE once_exchanges_unlogged_total counter\n", out);
    for (r = 0; r < UNLOGGED_REASONS; r++)
        fprintf(out, "once_exchanges_unlogged_total{reason=\"%s\"} %llu\n",
                unlogged_labels[r], (unsigned long long)counter_get(&m.unlogged[r]));
    write_histogram(out, "once_request_duration_seconds",
                    "From the ROUTER delivering a message to its answer "
                    "handed back for sending (after the commit, for logged "
                    "exchanges).", &m.latency, 1e-9);
    write_histogram(out, "once_commit_group_size",
                    "Exchanges per group commit (one LMDB transaction).",
                    &m.group_size, 1);
    write_histogram(out, "once_commit_duration_seconds",
                    "Duration of a group commit, fsync included.",
                    &m.commit_duration, 1e-9);
    metrics_writer_state_get(&ws);
    metrics_queues_get(&q);
    fprintf(out,
            "# HELP once_queue_depth Messages waiting between onced's "
            "threads: for a worker, for the writer, and answers for the "
            "I/O thread.\n"
            "# TYPE once_queue_depth gauge\n"
            "once_queue_depth{queue=\"workers\"} %llu\n"
            "once_queue_depth{queue=\"writer\"} %llu\n"
            "once_queue_depth{queue=\"answers\"} %llu\n"
            "# HELP once_commit_failures_total Group commits the database "
            "refused (map full, I/O error).\n"
            "# TYPE once_commit_failures_total counter\n"
            "once_commit_failures_total %llu\n",
            (unsigned long long)q.workers, (unsigned long long)q.writer,
            (unsigned long long)q.answers,
            (unsigned long long)ws.failed_groups);
    n = atomic_load_explicit(&types.count, memory_order_acquire);
    fputs("# HELP once_records Records (type and subject) stored, by "
          "type.\n# TYPE once_records gauge\n", out);
    for (i = 0; i < n; i++) {
        fputs("once_records{type=\"", out);
        kpi_write_label(out, types.rows[i].name);
        fprintf(out, "\"} %llu\n",
                (unsigned long long)counter_get(&types.rows[i].records));
    }
    metrics_write_notices(out);
}

/* Open file descriptors: the entries of /proc/self/fd, less the one
 * opendir itself holds. */
static long open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;

    if (dir == NULL)
        return -1;
    while ((e = readdir(dir)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(dir);
    return n - 1;
}

void metrics_write_process(FILE *out)
{
    unsigned long utime = 0, stime = 0, vsize = 0;
    long rss = 0, ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    long fds = open_fds(), max_fds = sysconf(_SC_OPEN_MAX);
    char buf[1024], *p;
    FILE *f = fopen("/proc/self/stat", "re");
    size_t len = 0;

    if (f != NULL) {
        len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
    }
    buf[len] = '\0';
    /* Fields after the command name, which may hold spaces and ')'. */
    p = strrchr(buf, ')');
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu "
               "%*d %*d %*d %*d %*d %*d %*u %lu %ld", &utime, &stime, &vsize,
               &rss) != 4)
        return;
    fprintf(out,
            "# HELP process_cpu_seconds_total User and system CPU time.\n"
            "# TYPE process_cpu_seconds_total counter\n"
            "process_cpu_seconds_total %.2f\n"
            "# HELP process_resident_memory_bytes Resident memory.\n"
            "# TYPE process_resident_memory_bytes gauge\n"
            "process_resident_memory_bytes %ld\n"
            "# HELP process_virtual_memory_bytes Virtual memory.\n"
            "# TYPE process_virtual_memory_bytes gauge\n"
            "process_virtual_memory_bytes %lu\n"
            "# HELP process_open_fds Open file descriptors.\n"
            "# TYPE process_open_fds gauge\n"
            "process_open_fds %ld\n"
            "# HELP process_max_fds Limit of open file descriptors.\n"
            "# TYPE process_max_fds gauge\n"
            "process_max_fds %ld\n"
            "# HELP process_start_time_seconds Start time, Unix seconds.\n"
            "# TYPE process_start_time_seconds gauge\n"
            "process_start_time_seconds %.3f\n",
            (double)(utime + stime) / (double)(ticks > 0 ? ticks : 100),
            rss * page, vsize, fds, max_fds,
            (double)m.start_time_ms / 1000.0);
}

/* mdb_reader_list prints a header, then one line per slot held (a
 * worker's reset read transaction keeps its slot), or one line saying
 * there is none. */
static int count_reader_line(const char *msg, void *ctx)
{
    unsigned *lines = ctx;

    if (strncmp(msg, "(no active readers)", 19) != 0)
        (*lines)++;
    return 0;
}

static unsigned readers_used(const store *db)
{
    unsigned lines = 0;

    if (mdb_reader_list(db->env, count_reader_line, &lines) < 0)
        return 0;
    return lines > 0 ? lines - 1 : 0;
}

void metrics_map_use(const store *db, uint64_t *used, uint64_t *size)
{
    size_t bound = 0, map = 0, in_use;
    once_error err;

    *used = *size = 0;
    if (store_usage_bound(db, &bound, &map) < 0)
        return;
    /* What the writer's high-water mark is judged by (store.c): the pages
     * in use less LMDB's free list; the bound if that cannot be read. */
    *used = store_usage(db, &in_use, &err) == 0 ? in_use : bound;
    *size = map;
}

int metrics_log_state(MDB_txn *txn, const auditlog *log,
                      metrics_log *out, once_error *err)
{
    MDB_val leaf;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = auditlog_size(txn, log, &out->tree_size, err)) < 0)
        return rc;
    rc = auditlog_checkpoint_latest(txn, log, &out->signed_size, &out->note,
                                    err);
    if (rc < 0 && rc != -ONCE_ERR_NOT_FOUND)
        return rc;
    /* The oldest leaf no signed checkpoint covers yet: how long it has
     * waited is what checkpoint_interval_ms bounds. */
    if (out->signed_size < out->tree_size &&
        auditlog_leaf_get(txn, log, out->signed_size, &leaf, err) == 0) {
        Once__LogLeaf *l = once__log_leaf__unpack(NULL, leaf.mv_size,
                                                  leaf.mv_data);
        uint64_t now = once_now_ms();

        if (l != NULL && l->time < now)
            out->unsigned_age_ms = now - l->time;
        once__log_leaf__free_unpacked(l, NULL);
    }
    return 0;
}

int metrics_write_store(FILE *out, MDB_txn *txn, const store *db,
                        const auditlog *log, unsigned high_water_percent,
                        once_error *err)
{
    uint64_t used, size;
    size_t versions = 0;
    MDB_envinfo info;
    metrics_log ls;
    int rc;

    metrics_map_use(db, &used, &size);
    if (mdb_env_info(db->env, &info) != MDB_SUCCESS)
        memset(&info, 0, sizeof(info));
    if ((rc = metrics_log_state(txn, log, &ls, err)) < 0 ||
        (rc = registry_count(txn, db, NULL, &versions, err)) < 0)
        return rc;
    fprintf(out,
            "# HELP once_lmdb_map_size_bytes The LMDB map size.\n"
            "# TYPE once_lmdb_map_size_bytes gauge\n"
            "once_lmdb_map_size_bytes %llu\n"
            "# HELP once_lmdb_map_used_bytes Bytes in use in the map (pages "
            "in use less LMDB's free list).\n"
            "# TYPE once_lmdb_map_used_bytes gauge\n"
            "once_lmdb_map_used_bytes %llu\n"
            "# HELP once_lmdb_map_high_water_bytes Where publishes stop "
            "(high_water_percent of the map).\n"
            "# TYPE once_lmdb_map_high_water_bytes gauge\n"
            "once_lmdb_map_high_water_bytes %llu\n"
            "# HELP once_lmdb_readers_used LMDB reader slots in use.\n"
            "# TYPE once_lmdb_readers_used gauge\n"
            "once_lmdb_readers_used %u\n"
            "# HELP once_lmdb_readers_max LMDB reader slots.\n"
            "# TYPE once_lmdb_readers_max gauge\n"
            "once_lmdb_readers_max %u\n"
            "# HELP once_record_versions Record versions stored.\n"
            "# TYPE once_record_versions gauge\n"
            "once_record_versions %zu\n"
            "# HELP once_log_tree_size Leaves in the exchange log.\n"
            "# TYPE once_log_tree_size gauge\n"
            "once_log_tree_size %llu\n"
            "# HELP once_log_checkpoint_size Tree size of the newest signed "
            "checkpoint.\n"
            "# TYPE once_log_checkpoint_size gauge\n"
            "once_log_checkpoint_size %llu\n"
            "# HELP once_log_unsigned_age_seconds How long the oldest leaf "
            "not under a signed checkpoint has waited; 0 when all are.\n"
            "# TYPE once_log_unsigned_age_seconds gauge\n"
            "once_log_unsigned_age_seconds %.3f\n",
            (unsigned long long)size, (unsigned long long)used,
            (unsigned long long)(high_water_percent < 100
                                     ? size / 100 * high_water_percent
                                     : size),
            readers_used(db), info.me_maxreaders, versions,
            (unsigned long long)ls.tree_size,
            (unsigned long long)ls.signed_size,
            (double)ls.unsigned_age_ms / 1000.0);
    if ((rc = metrics_write_notice_store(out, txn, err)) < 0)
        return rc;
    return 0;
}
